/*  =========================================================================
    node_config - configuration that follows the app (S1.6, S1.7, S1.9)

    HOME/config.key holds the account's configuration key (derived from
    the account secret the user gave this device); HOME/config-share.json
    the apps the user agreed to share, with the time of the last version
    sent or applied, and the apps whose account configuration waits for
    the user's yes. A shared app's configuration is sealed (af_config) and
    sent when its newest file passes that time; a newer version from
    another device replaces ours.
    =========================================================================
*/
#include "node_int.h"
#include "af_config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>

bool
node_config_key (af_node_t *self, uint8_t *key)
{
    char path [600];
    snprintf (path, sizeof path, "%s/config.key", self->config.home);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && read (fd, key, AF_CONFIG_KEY_SIZE) == AF_CONFIG_KEY_SIZE;
    if (fd >= 0)
        close (fd);
    return ok;
}

void
node_config_save (af_node_t *self)
{
    node_json_save (self, "config-share.json", self->shares);
}

void
node_config_load (af_node_t *self)
{
    json_t *doc = node_json_load (self, "config-share.json");
    json_decref (self->shares);
    self->shares = json_is_object (doc)? doc: json_pack ("{s:{}, s:{}}", "shared", "pending");
    if (!json_is_object (json_object_get (self->shares, "shared")))
        json_object_set_new (self->shares, "shared", json_object ());
    if (!json_is_object (json_object_get (self->shares, "pending")))
        json_object_set_new (self->shares, "pending", json_object ());
    if (doc && doc != self->shares)
        json_decref (doc);
}

//  Time of the version this node last sent or applied for a program
static uint64_t
s_config_known (af_node_t *self, const char *program)
{
    json_t *entry = json_object_get (json_object_get (self->shares, "shared"), program);
    return (uint64_t) json_integer_value (json_object_get (entry, "at"));
}

static void
s_config_set_known (af_node_t *self, const char *program, uint64_t at)
{
    json_t *shared = json_object_get (self->shares, "shared");
    if (json_object_get (shared, program)) {
        json_object_set_new (json_object_get (shared, program), "at", json_integer ((json_int_t) at));
        node_config_save (self);
    }
}

//  Did a newer version win meanwhile?
static bool
s_put_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (answer && answer->id == AF_MSG_OK)
        node_config_get (self, NULL, NODE_CONFIG_SYNC, pending->program, false);
    else
    if (answer)
        zsys_warning ("node: the broker refused a configuration: %s", answer->reason);
    return true;
}

//  Send a shared app's configuration if it changed since we last sent or
//  applied one
static void
s_config_upload (af_node_t *self, const char *program)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    char dir [600], tmp [700], err [AF_MAX_REASON + 1];
    snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, program);
    uint64_t at = af_config_mtime (dir);
    if (!at || at <= s_config_known (self, program) || !node_config_key (self, key))
        return;
    snprintf (tmp, sizeof tmp, "%s/incoming/config-out-%s.tar", self->config.home, program);
    uint8_t *blob;
    size_t size;
    if (af_config_seal (key, dir, tmp, &blob, &size, err, sizeof err) != AF_OK) {
        zsys_warning ("node: cannot send the configuration of %s: %s", program, err);
        sodium_memzero (key, sizeof key);
        return;
    }
    sodium_memzero (key, sizeof key);
    af_msg_t *msg = af_msg_new (AF_MSG_CONFIG_PUT);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    msg->at = at;
    msg->data = blob;
    msg->data_size = (uint32_t) size;
    //  Counted as sent now, so a slow answer does not send it twice
    s_config_set_known (self, program, at);
    pending_t *pending = node_request (self, s_put_answer, REQ_SESSION, NULL, msg);
    snprintf (pending->program, sizeof pending->program, "%s", program);
    zsys_info ("node: sent the configuration of %s (%zu bytes, sealed)", program, size);
}

//  Every shared app: send what changed (edits made offline go at login)
void
node_config_scan (af_node_t *self)
{
    if (!self->logged_in || self->catching_up)
        return;
    const char *program;
    json_t *entry;
    json_object_foreach (json_object_get (self->shares, "shared"), program, entry)
        s_config_upload (self, program);
}

//  Open a version of the account's configuration of a program into
//  HOME/config/PROGRAM: it is then the one this node knows. 0, or -1 with err.
static int
s_config_apply (af_node_t *self, af_msg_t *msg, char *err, size_t errlen)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!node_config_key (self, key)) {
        snprintf (err, errlen, "set the account secret first: appferry config secret");
        return -1;
    }
    int rc = af_config_open (key, self->config.home, msg->program, msg->data, msg->data_size, err, errlen)
             == AF_OK? 0: -1;
    sodium_memzero (key, sizeof key);
    if (rc == 0) {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, msg->program);
        uint64_t now = af_config_mtime (dir);
        s_config_set_known (self, msg->program, now > msg->at? now: msg->at);
        json_object_del (json_object_get (self->shares, "pending"), msg->program);
        node_config_save (self);
    }
    return rc;
}

//  A newer version from another device replaces ours
static bool
s_sync_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    (void) pending;
    char dir [600], err [AF_MAX_REASON + 1];
    if (!answer || answer->id != AF_MSG_CONFIG)
        return true;
    snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, answer->program);
    if (answer->at <= af_config_mtime (dir))
        return true;
    if (s_config_apply (self, answer, err, sizeof err))
        zsys_warning ("node: configuration of %s not applied: %s", answer->program, err);
    else
        zsys_info ("node: applied the account's configuration of %s", answer->program);
    return true;
}

//  After an install the account's version replaces the default one,
//  asking first in manual mode
static bool
s_install_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    (void) pending;
    char err [AF_MAX_REASON + 1];
    if (!answer || answer->id != AF_MSG_CONFIG)
        return true;
    if (!self->config.sync_auto) {
        json_object_set_new (json_object_get (self->shares, "pending"), answer->program,
                             json_integer ((json_int_t) answer->at));
        node_config_save (self);
        zsys_info ("node: the account has a configuration for %s; apply it with: appferry config apply %s",
                   answer->program, answer->program);
    }
    else
    if (s_config_apply (self, answer, err, sizeof err))
        zsys_warning ("node: configuration of %s not applied: %s", answer->program, err);
    else
        zsys_info ("node: applied the account's configuration of %s", answer->program);
    return true;
}

//  `config apply`: the user said yes
static bool
s_apply_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    char err [AF_MAX_REASON + 1];
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_CONFIG)
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
    else
    if (s_config_apply (self, answer, err, sizeof err))
        node_ctl_error (self, pending->client, AF_E_MALFORMED, "%s", err);
    else
        node_ctl_reply (self, pending->client, true, json_pack ("{s:s, s:I, s:b}", "program", answer->program,
                        "at", (json_int_t) answer->at, "applied", 1));
    return true;
}

//  `config show`: the version opened under a scratch name, read, removed
static bool
s_show_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    char err [AF_MAX_REASON + 1];
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_CONFIG) {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
        return true;
    }
    if (!node_config_key (self, key)) {
        node_ctl_error (self, pending->client, AF_E_MALFORMED, "set the account secret first: appferry config secret");
        return true;
    }
    char scratch [AF_MAX_PROGRAM + 32], dir [700];
    snprintf (scratch, sizeof scratch, "%s%s", AF_INSTALL_SCRATCH, answer->program);
    snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, scratch);
    int code = af_config_open (key, self->config.home, scratch, answer->data, answer->data_size, err, sizeof err);
    sodium_memzero (key, sizeof key);
    if (code != AF_OK) {
        node_ctl_error (self, pending->client, AF_E_MALFORMED, "%s", err);
        return true;
    }
    json_t *files = json_object ();
    zdir_t *tree = zdir_new (dir, "-");
    zfile_t **list = tree? zdir_flatten (tree): NULL;
    for (size_t i = 0; list && list [i] && i < NODE_SHOW_FILES; i++) {
        const char *name = zfile_filename (list [i], NULL);
        char text [NODE_SHOW_FILE_BYTES + 1] = "";
        FILE *file = fopen (name, "r");
        size_t n = file? fread (text, 1, sizeof text - 1, file): 0;
        text [n] = 0;
        if (file)
            fclose (file);
        json_object_set_new (files, name + strlen (dir) + 1, json_string (text));
    }
    zdir_flatten_free (&list);
    if (tree)
        zdir_remove (tree, true);
    zdir_destroy (&tree);
    rmdir (dir);
    node_ctl_reply (self, pending->client, true, json_pack ("{s:s, s:I, s:I, s:b, s:o}",
                    "program", answer->program, "at", (json_int_t) answer->at,
                    "prevAt", (json_int_t) answer->prev_at, "previous", answer->previous, "files", files));
    return true;
}

void
node_config_get (af_node_t *self, zframe_t *client, node_config_why_t why, const char *program, bool previous)
{
    static node_answer_fn *answers [] = { s_sync_answer, s_install_answer, s_apply_answer, s_show_answer };
    af_msg_t *msg = af_msg_new (AF_MSG_CONFIG_GET);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    msg->previous = previous;
    pending_t *pending = node_request (self, answers [why], REQ_SESSION, client, msg);
    snprintf (pending->program, sizeof pending->program, "%s", program);
}

//  --------------------------------------------------------------------------
//  The CLI's `config` commands (the account is checked by the verb table)

//  config secret SECRET: the account's key, derived here, kept in config.key
void
node_config_secret (af_node_t *self, cli_t *cli)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    char path [600], err [AF_MAX_REASON + 1];
    const char *secret = cli->arg [0];
    if (strlen (secret) < 12)
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "the account secret must be at least 12 characters");
    else
    if (af_config_derive (self->account, secret, key, err, sizeof err) != AF_OK)
        node_ctl_error (self, cli->client, AF_E_INTERNAL, "%s", err);
    else {
        snprintf (path, sizeof path, "%s/config.key", self->config.home);
        int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = fd >= 0 && write (fd, key, sizeof key) == (ssize_t) sizeof key && fsync (fd) == 0;
        if (fd >= 0)
            ok = close (fd) == 0 && ok;
        if (ok)
            node_ctl_reply (self, cli->client, true, json_pack ("{s:b}", "keySet", 1));
        else
            node_ctl_error (self, cli->client, AF_E_INTERNAL, "cannot write %s: %s", path, strerror (errno));
    }
    sodium_memzero (key, sizeof key);
}

//  The program a config command names, if it may be one and the device
//  has the account's key; else the CLI is told and false
static bool
s_config_program (af_node_t *self, cli_t *cli)
{
    const char *program = cli->arg [0];
    uint8_t key [AF_CONFIG_KEY_SIZE];
    char err [AF_MAX_REASON + 1];
    if (af_program_check (program, err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", program, err);
        return false;
    }
    bool keyed = node_config_key (self, key);
    sodium_memzero (key, sizeof key);
    if (!keyed)
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "set the account secret first: appferry config secret");
    return keyed;
}

//  config share PROGRAM: the user's consent (S1.9)
void
node_config_share (af_node_t *self, cli_t *cli)
{
    if (!s_config_program (self, cli))
        return;
    const char *program = cli->arg [0];
    json_t *shared = json_object_get (self->shares, "shared");
    if (!json_object_get (shared, program))
        json_object_set_new (shared, program, json_pack ("{s:I}", "at", (json_int_t) 0));
    node_config_save (self);
    //  Ours goes out if it is newer; the account's comes in if that is
    node_config_scan (self);
    if (self->logged_in)
        node_config_get (self, NULL, NODE_CONFIG_SYNC, program, false);
    node_ctl_reply (self, cli->client, true, json_pack ("{s:s, s:b}", "program", program, "shared", 1));
}

void
node_config_unshare (af_node_t *self, cli_t *cli)
{
    if (!s_config_program (self, cli))
        return;
    json_object_del (json_object_get (self->shares, "shared"), cli->arg [0]);
    node_config_save (self);
    node_ctl_reply (self, cli->client, true, json_pack ("{s:s, s:b}", "program", cli->arg [0], "shared", 0));
}

//  config apply PROGRAM, config show PROGRAM [previous]
void
node_config_fetch (af_node_t *self, cli_t *cli)
{
    if (!s_config_program (self, cli))
        return;
    if (!self->logged_in)
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "not connected to the broker");
    else
        node_config_get (self, cli->client, streq (cli->verb, "config-apply")? NODE_CONFIG_APPLY: NODE_CONFIG_SHOW,
                         cli->arg [0], cli->arg [1] && streq (cli->arg [1], "previous"));
}
