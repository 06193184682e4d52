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

void
node_config_get (af_node_t *self, zframe_t *client, const char *verb, const char *program, bool previous)
{
    af_msg_t *msg = af_msg_new (AF_MSG_CONFIG_GET);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    msg->previous = previous;
    node_request (self, client, verb, msg);
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
    if (af_config_seal (key, dir, tmp, &blob, &size, err, sizeof err)) {
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
    pending_t *pending = node_request (self, NULL, "config-put", msg);
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

//  The account's configuration arrived; verb says why we asked
void
node_config_answer (af_node_t *self, pending_t *pending, af_msg_t *msg)
{
    if (msg->id != AF_MSG_CONFIG)
        return;
    char dir [600], err [AF_MAX_REASON + 1];
    snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, msg->program);
    bool sync = streq (pending->verb, "config-sync");
    bool after_install = streq (pending->verb, "config-install");
    //  A newer version from another device replaces ours; after an install
    //  the account's version replaces the default one, asking first in
    //  manual mode
    if (sync && msg->at <= af_config_mtime (dir))
        return;
    if (after_install && !self->config.sync_auto) {
        json_object_set_new (json_object_get (self->shares, "pending"), msg->program,
                             json_integer ((json_int_t) msg->at));
        node_config_save (self);
        zsys_info ("node: the account has a configuration for %s; apply it with: appferry config apply %s",
                   msg->program, msg->program);
        return;
    }
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!node_config_key (self, key)) {
        zsys_warning ("node: a configuration for %s is waiting, but this device has no account secret",
                      msg->program);
        return;
    }
    int rc = af_config_open (key, self->config.home, msg->program, msg->data, msg->data_size, err, sizeof err);
    sodium_memzero (key, sizeof key);
    if (rc)
        zsys_warning ("node: configuration of %s not applied: %s", msg->program, err);
    else {
        uint64_t now = af_config_mtime (dir);
        s_config_set_known (self, msg->program, now > msg->at? now: msg->at);
        json_object_del (json_object_get (self->shares, "pending"), msg->program);
        node_config_save (self);
        zsys_info ("node: applied the account's configuration of %s", msg->program);
    }
}

//  `config apply`: apply now (the user said yes); `config show`: open the
//  version into a scratch directory and show its files
json_t *
node_config_doc (af_node_t *self, pending_t *pending, af_msg_t *msg, char *err, size_t errlen)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!node_config_key (self, key)) {
        snprintf (err, errlen, "set the account secret first: appferry config secret");
        return NULL;
    }
    json_t *doc = NULL;
    if (streq (pending->verb, "config-apply")) {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, msg->program);
        if (af_config_open (key, self->config.home, msg->program, msg->data, msg->data_size, err, errlen) == 0) {
            uint64_t now = af_config_mtime (dir);
            s_config_set_known (self, msg->program, now > msg->at? now: msg->at);
            json_object_del (json_object_get (self->shares, "pending"), msg->program);
            node_config_save (self);
            doc = json_pack ("{s:s, s:I, s:b}", "program", msg->program, "at", (json_int_t) msg->at,
                             "applied", 1);
        }
    }
    else {
        //  Opened under a scratch name, read, removed
        char scratch [AF_MAX_PROGRAM + 32], dir [700];
        snprintf (scratch, sizeof scratch, ".show-%s", msg->program);
        snprintf (dir, sizeof dir, "%s/config/%s", self->config.home, scratch);
        if (af_config_open (key, self->config.home, scratch, msg->data, msg->data_size, err, errlen) == 0) {
            json_t *files = json_object ();
            zdir_t *tree = zdir_new (dir, "-");
            zfile_t **list = tree? zdir_flatten (tree): NULL;
            for (size_t i = 0; list && list [i] && i < 32; i++) {
                const char *name = zfile_filename (list [i], NULL);
                char text [4097] = "";
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
            doc = json_pack ("{s:s, s:I, s:I, s:b, s:o}", "program", msg->program, "at", (json_int_t) msg->at,
                             "prevAt", (json_int_t) msg->prev_at, "previous", msg->previous, "files", files);
        }
    }
    sodium_memzero (key, sizeof key);
    return doc;
}
