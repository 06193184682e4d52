/*  =========================================================================
    node_cli - the `appferry` command line's side in the node

    The CLI sends a verb and its arguments as frames on HOME/node.sock (a
    ROUTER, mode 0600: only the device's user may drive the node). One
    table, s_verbs, says for every verb how many arguments it needs, what
    it needs first (a login, an account) and which function handles it;
    those checks are made once, before the handler runs, and a verb with
    no entry is refused. A handler answers at once from the node's state,
    or sends a request to the broker whose completion (s_*_answer, below
    it) answers the CLI. Every CLI request gets exactly one reply: "ok" or
    "error" and one JSON document (node_docs).
    =========================================================================
*/
#include "node_int.h"

//  What a verb needs before its handler runs
enum {
    CLI_LOGIN       = 1,            //  a login ("not logged in; run: appferry login")
    CLI_LOGIN_WHY   = 2,            //  a login, and the reason there is none
    CLI_ACCOUNT     = 4,            //  an account (logged in once; config keys)
};

static const char *s_run_login = "not logged in; run: appferry login ACCOUNT";

//  Why there is no login: the automatic login's error, or the connection
static const char *
s_why_not_logged_in (af_node_t *self)
{
    return *self->login_error? self->login_error:
           self->connected? s_run_login: "not connected to the broker (is it running?)";
}

//  Reply doc if the answer is the expected one, else say what came
static void
s_reply_if (af_node_t *self, pending_t *pending, af_msg_t *answer, af_msg_id_t expected, json_t *doc)
{
    if (answer->id == expected)
        node_ctl_reply (self, pending->client, true, doc);
    else {
        json_decref (doc);
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
    }
}

static void s_dispatch (af_node_t *self, cli_t *cli);

void
node_cli_destroy (cli_t **cli_p)
{
    cli_t *cli = *cli_p;
    if (cli) {
        zframe_destroy (&cli->client);
        zstr_free (&cli->verb);
        for (int i = 0; i < cli->args; i++)
            zstr_free (&cli->arg [i]);
        free (cli);
        *cli_p = NULL;
    }
}

static cli_t *
s_cli_dup (cli_t *cli)
{
    cli_t *copy = (cli_t *) zmalloc (sizeof (cli_t));
    assert (copy);
    copy->client = zframe_dup (cli->client);
    copy->verb = strdup (cli->verb);
    for (int i = 0; i < cli->args; i++)
        copy->arg [i] = strdup (cli->arg [i]);
    copy->args = cli->args;
    return copy;
}

//  The account's device list, asked for because a device was named that
//  is not in the one we hold: kept, and the CLI request run again
static bool
s_refresh_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_DEVICE_LIST) {
        s_reply_if (self, pending, answer, AF_MSG_DEVICE_LIST, NULL);
        return true;
    }
    node_devices_keep (self, answer);
    pending->retry->refreshed = true;
    s_dispatch (self, pending->retry);
    return true;
}

//  The devices named in specs (one, or comma-separated if many): their
//  IDs into ids. 1 found; 0 not all in the list we hold, which is asked
//  for again (the request runs again then); -1 refused (the CLI was told).
static int
s_named (af_node_t *self, cli_t *cli, const char *specs, bool many, char ids [][AF_ID_HEX + 1],
         uint32_t *count)
{
    char *copy = strdup (specs), *saved = NULL, err [AF_MAX_REASON + 1];
    *count = 0;
    int code = AF_OK;
    for (char *spec = many? strtok_r (copy, ",", &saved): copy; spec && code == AF_OK;
         spec = many? strtok_r (NULL, ",", &saved): NULL) {
        if (*count == AF_MAX_TARGETS) {
            snprintf (err, sizeof err, "more than %d devices named", AF_MAX_TARGETS);
            code = AF_E_MALFORMED;
        }
        else
            code = node_device_find (self, spec, many, ids [*count], err, sizeof err);
        if (code == AF_OK)
            (*count)++;
    }
    free (copy);
    if (code == AF_OK && *count == 0) {
        snprintf (err, sizeof err, "name at least one device, or all");
        code = AF_E_MALFORMED;
    }
    if (code == AF_E_NO_DEVICE && !cli->refreshed && self->logged_in) {
        pending_t *pending = node_request (self, s_refresh_answer, REQ_SESSION, cli->client,
                                           af_msg_new (AF_MSG_DEVICES));
        pending->retry = s_cli_dup (cli);
        return 0;
    }
    if (code != AF_OK) {
        node_ctl_error (self, cli->client, code, "%s", err);
        return -1;
    }
    return 1;
}

//  The one device named by spec, for the other CLI files (node_pay.c):
//  s_named with one device
int
node_cli_named (af_node_t *self, cli_t *cli, const char *spec, char id [AF_ID_HEX + 1])
{
    char ids [1][AF_ID_HEX + 1];
    uint32_t count;
    int rc = s_named (self, cli, spec, false, ids, &count);
    if (rc == 1)
        memcpy (id, ids [0], AF_ID_HEX + 1);
    return rc;
}

//  --------------------------------------------------------------------------
//  The node itself

static void
s_status (af_node_t *self, cli_t *cli)
{
    node_ctl_reply (self, cli->client, true, node_status_doc (self));
}

static void
s_stop (af_node_t *self, cli_t *cli)
{
    node_ctl_reply (self, cli->client, true, json_pack ("{s:b}", "stopped", 1));
    self->stopping = true;
}

//  --------------------------------------------------------------------------
//  Accounts

static bool
s_register_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer))
        s_reply_if (self, pending, answer, AF_MSG_OK, json_pack ("{s:b}", "registered", 1));
    return true;
}

static bool
s_login_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (answer && answer->id == AF_MSG_ERROR && answer->code == AF_E_REMOVED && *self->device_id) {
        node_forget_device (self);
        snprintf (answer->reason + strlen (answer->reason), sizeof answer->reason - strlen (answer->reason),
                  " (forgotten: log in again)");
    }
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id == AF_MSG_LOGIN_OK)
        node_login_ok (self, answer);
    s_reply_if (self, pending, answer, AF_MSG_LOGIN_OK, json_pack ("{s:s, s:s, s:s}",
                "account", answer->account, "deviceId", answer->device_id, "model", self->device.model));
    return true;
}

//  register ACCOUNT PASSWORD, login ACCOUNT PASSWORD
static void
s_account (af_node_t *self, cli_t *cli)
{
    const char *account = cli->arg [0], *password = cli->arg [1];
    if (strlen (account) > AF_MAX_ACCOUNT || strlen (password) > AF_MAX_PASSWORD) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "account or password too long");
        return;
    }
    bool login = streq (cli->verb, "login");
    af_msg_t *msg = af_msg_new (login? AF_MSG_LOGIN: AF_MSG_REGISTER);
    strcpy (msg->account, account);
    strcpy (msg->password, password);
    if (login) {
        //  Same account: keep our device ID. Another account: this
        //  connection must leave the first one before it logs in.
        if (streq (self->account, account))
            strcpy (msg->device_id, self->device_id);
        else {
            //  The user chose another account: do not log back in to the
            //  old one by key while this login is pending, or after it fails
            self->switching = true;
            if (self->logged_in) {
                af_msg_t *logout = af_msg_new (AF_MSG_LOGOUT);
                node_send (self, logout);
                af_msg_destroy (&logout);
                node_session_end (self);
            }
        }
        msg->device = self->device;
        msg->has_device = true;
        self->login_error [0] = 0;
    }
    node_request (self, login? s_login_answer: s_register_answer, 0, cli->client, msg);
}

static bool
s_logout_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id == AF_MSG_OK)
        node_logged_out (self);
    s_reply_if (self, pending, answer, AF_MSG_OK, json_pack ("{s:b}", "loggedOut", 1));
    return true;
}

static void
s_logout (af_node_t *self, cli_t *cli)
{
    node_request (self, s_logout_answer, REQ_SESSION, cli->client, af_msg_new (AF_MSG_LOGOUT));
}

//  --------------------------------------------------------------------------
//  Devices and notifications

static bool
s_devices_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer))
        s_reply_if (self, pending, answer, AF_MSG_DEVICE_LIST, node_devices_doc (self, answer, "broker"));
    return true;
}

//  devices [refresh]: the list the broker pushed, or asked for now
static void
s_devices (af_node_t *self, cli_t *cli)
{
    bool refresh = cli->arg [0] && streq (cli->arg [0], "refresh");
    if (self->list && !refresh)
        node_ctl_reply (self, cli->client, true, node_devices_doc (self, self->list, "pushed"));
    else
    if (!self->logged_in)
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "%s", s_why_not_logged_in (self));
    else
        node_request (self, s_devices_answer, REQ_SESSION, cli->client, af_msg_new (AF_MSG_DEVICES));
}

static bool
s_device_remove_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer))
        s_reply_if (self, pending, answer, AF_MSG_OK, json_pack ("{s:s, s:s}", "removed", pending->device,
                    "name", pending->device_name));
    return true;
}

//  device-remove DEVICE PASSWORD: another device of the account, for good
static void
s_device_remove (af_node_t *self, cli_t *cli)
{
    char id [AF_ID_HEX + 1], err [AF_MAX_REASON + 1];
    int code = node_device_find (self, cli->arg [0], false, id, err, sizeof err);
    if (code != AF_OK) {
        node_ctl_error (self, cli->client, code, "%s", err);
        return;
    }
    if (streq (id, self->device_id)) {
        node_ctl_error (self, cli->client, AF_E_FORBIDDEN, "this is the device itself: remove it from "
                        "another device of the account, or log it out");
        return;
    }
    const char *name = "";
    for (uint32_t i = 0; self->list && i < self->list->device_count; i++)
        if (streq (self->list->devices [i].id, id))
            name = self->list->devices [i].name;
    af_msg_t *msg = af_msg_new (AF_MSG_DEVICE_REMOVE);
    snprintf (msg->device_id, sizeof msg->device_id, "%s", id);
    snprintf (msg->password, sizeof msg->password, "%s", cli->arg [1]);
    pending_t *pending = node_request (self, s_device_remove_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->device, sizeof pending->device, "%s", id);
    snprintf (pending->device_name, sizeof pending->device_name, "%s", name);
}

static void
s_notifications (af_node_t *self, cli_t *cli)
{
    node_ctl_reply (self, cli->client, true, node_notifications_doc (self));
}

static bool
s_notify_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer))
        s_reply_if (self, pending, answer, AF_MSG_OK, json_pack ("{s:b}", "delivered", 1));
    return true;
}

//  notify DEVICE TEXT
static void
s_notify (af_node_t *self, cli_t *cli)
{
    const char *text = cli->arg [1];
    char ids [1][AF_ID_HEX + 1];
    uint32_t count;
    if (strlen (text) > AF_MAX_BODY) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "usage: notify DEVICE TEXT (at most %d bytes)",
                        AF_MAX_BODY);
        return;
    }
    if (s_named (self, cli, cli->arg [0], false, ids, &count) <= 0)
        return;
    af_msg_t *msg = af_msg_new (AF_MSG_NOTIFY);
    strcpy (msg->device_id, ids [0]);
    strcpy (msg->kind, "text");
    af_msg_set_body (msg, text, strlen (text));
    node_request (self, s_notify_answer, REQ_SESSION, cli->client, msg);
}

//  --------------------------------------------------------------------------
//  Packages: resolve, push, install, uninstall

static bool
s_resolve_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_RESOLVED) {
        s_reply_if (self, pending, answer, AF_MSG_RESOLVED, NULL);
        return true;
    }
    af_resolution_t resolution;
    memset (&resolution, 0, sizeof resolution);
    resolution.fit = (af_fit_t) answer->fit;
    if (answer->has_package)
        resolution.package = answer->package;
    snprintf (resolution.reason, sizeof resolution.reason, "%s", answer->reason);
    bool fits = answer->fit == AF_FIT_PACKAGE || answer->fit == AF_FIT_STORE_LINK;
    node_ctl_reply (self, pending->client, fits,
                    (json_t *) af_resolution_to_jansson (answer->program, &resolution));
    return true;
}

static void
s_resolve (af_node_t *self, cli_t *cli)
{
    const char *program = cli->arg [0];
    char err [AF_MAX_REASON + 1];
    if (!program) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "usage: resolve PROGRAM");
        return;
    }
    if (af_program_check (program, err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", program, err);
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_RESOLVE);
    strcpy (msg->program, program);
    node_request (self, s_resolve_answer, REQ_SESSION, cli->client, msg);
}

bool
node_cli_push_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!node_answer_failed (self, pending, answer))
        s_reply_if (self, pending, answer, AF_MSG_PUSH_ACCEPTED, answer->id == AF_MSG_PUSH_ACCEPTED?
                    json_deep_copy (node_push_accepted (self, answer)): NULL);
    return true;
}

//  A program and the devices named (or "all") from the CLI, into a PUSH or
//  an UNINSTALL. 1 done; 0 the device list is asked for first; -1 refused.
static int
s_program_targets (af_node_t *self, cli_t *cli, af_msg_t *msg)
{
    const char *program = cli->arg [0];
    char err [AF_MAX_REASON + 1];
    if (af_program_check (program, err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", program, err);
        return -1;
    }
    strcpy (msg->program, program);
    char ids [AF_MAX_TARGETS][AF_ID_HEX + 1];
    uint32_t count;
    int rc = s_named (self, cli, cli->arg [1], true, ids, &count);
    for (uint32_t i = 0; rc > 0 && i < count; i++)
        af_msg_add_target (msg, ids [i]);
    return rc;
}

//  push PROGRAM DEVICES [data]
static void
s_push (af_node_t *self, cli_t *cli)
{
    af_msg_t *msg = af_msg_new (AF_MSG_PUSH);
    if (s_program_targets (self, cli, msg) <= 0) {
        af_msg_destroy (&msg);
        return;
    }
    node_attest (self, msg);
    msg->with_data = cli->arg [2] && streq (cli->arg [2], "data");
    if (msg->with_data)
        node_upload_start (self, msg, node_cli_push_answer, REQ_SESSION, cli->client, NULL);
    else
        node_request (self, node_cli_push_answer, REQ_SESSION, cli->client, msg);
}

static void
s_push_status (af_node_t *self, cli_t *cli)
{
    json_t *push = node_push_find (self, cli->arg [0]);
    if (push)
        node_ctl_reply (self, cli->client, true, json_deep_copy (push));
    else
        node_ctl_error (self, cli->client, AF_E_NO_DEVICE, "no push %s known to this node", cli->arg [0]);
}

//  install PROGRAM: the package that fits this device, from the store
static void
s_install (af_node_t *self, cli_t *cli)
{
    const char *program = cli->arg [0];
    char err [AF_MAX_REASON + 1];
    if (af_program_check (program, err, sizeof err) != AF_OK)
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", program, err);
    else
        node_install_self (self, node_cli_push_answer, cli->client, program);
}

static void
s_installed (af_node_t *self, cli_t *cli)
{
    node_ctl_reply (self, cli->client, true, node_installed_doc (self));
}

static bool
s_uninstall_on_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    //  Kept with the pushes, so `status` shows each target's outcome
    if (answer->id == AF_MSG_PUSH_ACCEPTED) {
        json_t *entry = node_push_accepted (self, answer);
        json_object_set_new (entry, "kind", json_string ("uninstall"));
        node_pushes_save (self);
    }
    json_t *targets = json_array ();
    for (uint32_t i = 0; i < answer->result_count; i++) {
        af_target_t *t = &answer->results [i];
        json_array_append_new (targets, json_pack ("{s:s, s:s, s:s, s:s}", "deviceId", t->device_id,
                               "name", t->name, "state", t->state, "reason", t->reason));
    }
    s_reply_if (self, pending, answer, AF_MSG_PUSH_ACCEPTED,
                json_pack ("{s:s, s:o}", "program", answer->program, "targets", targets));
    return true;
}

//  uninstall PROGRAM: here; uninstall PROGRAM DEVICES: on other devices,
//  through their durable outboxes
static void
s_uninstall (af_node_t *self, cli_t *cli)
{
    char err [AF_MAX_REASON + 1] = "";
    if (!cli->arg [1]) {
        int rc = node_uninstall_local (self, cli->arg [0], err, sizeof err);
        if (rc != AF_OK)
            node_ctl_error (self, cli->client, rc, "%s", err);
        else
            node_ctl_reply (self, cli->client, true, json_pack ("{s:s, s:b}", "program", cli->arg [0],
                            "uninstalled", 1));
        return;
    }
    if (!self->logged_in) {
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "%s", s_run_login);
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_UNINSTALL);
    if (s_program_targets (self, cli, msg) <= 0)
        af_msg_destroy (&msg);
    else
        node_request (self, s_uninstall_on_answer, REQ_SESSION, cli->client, msg);
}

//  --------------------------------------------------------------------------
//  Install lists and sync

static bool
s_apps_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id == AF_MSG_SYNC_DIFF)
        af_msg_ungroup (answer);
    if (answer->id == AF_MSG_SYNC_DIFF || answer->id == AF_MSG_APP_LIST)
        node_ctl_reply (self, pending->client, true, node_apps_doc (self, answer));
    else
        s_reply_if (self, pending, answer, AF_MSG_APP_LIST, NULL);
    return true;
}

static void
s_sync (af_node_t *self, cli_t *cli)
{
    af_msg_t *sync = af_msg_new (AF_MSG_SYNC);
    sync->grouped = true;               //  a tenth of the bytes (SPEC 5.31)
    node_request (self, s_apps_answer, REQ_AFTER_REPORTS, cli->client, sync);
}

//  apps: this device's list; apps DEVICE: another's, as the broker has it
static void
s_apps (af_node_t *self, cli_t *cli)
{
    const char *device = cli->arg [0];
    if (!device) {
        af_msg_t *list = node_install_list (self);
        snprintf (list->device_id, sizeof list->device_id, "%s", self->device_id);
        node_ctl_reply (self, cli->client, true, node_apps_doc (self, list));
        af_msg_destroy (&list);
    }
    else
    if (!self->logged_in)
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "%s", s_run_login);
    else {
        char ids [1][AF_ID_HEX + 1];
        uint32_t count;
        if (s_named (self, cli, device, false, ids, &count) <= 0)
            return;
        af_msg_t *msg = af_msg_new (AF_MSG_APPS);
        strcpy (msg->device_id, ids [0]);
        node_request (self, s_apps_answer, REQ_AFTER_REPORTS, cli->client, msg);
    }
}

//  --------------------------------------------------------------------------
//  The verb table and the socket

static const struct {
    const char *verb;
    int args;                       //  arguments it needs at least
    unsigned needs;                 //  CLI_*
    cli_fn *handler;
} s_verbs [] = {
    { "status",         0, 0,               s_status },
    { "stop",           0, 0,               s_stop },
    { "register",       2, 0,               s_account },
    { "login",          2, 0,               s_account },
    { "logout",         0, CLI_LOGIN_WHY,   s_logout },
    { "devices",        0, 0,               s_devices },
    { "device-remove",  2, CLI_LOGIN,       s_device_remove },
    { "notifications",  0, 0,               s_notifications },
    { "notify",         2, CLI_LOGIN,       s_notify },
    { "resolve",        0, CLI_LOGIN_WHY,   s_resolve },
    { "push",           2, CLI_LOGIN,       s_push },
    { "push-status",    1, 0,               s_push_status },
    { "install",        1, CLI_LOGIN,       s_install },
    { "installed",      0, 0,               s_installed },
    { "uninstall",      1, 0,               s_uninstall },
    { "apps",           0, 0,               s_apps },
    { "sync",           0, CLI_LOGIN,       s_sync },
    { "browse",         1, CLI_LOGIN,       node_pay_browse },
    //  An account is enough: a get waits for the session (a broker that
    //  restarts, a login again) up to its deadline, as its retries do
    { "get",            2, CLI_ACCOUNT,     node_pay_get },
    { "pay-confirm",    2, CLI_ACCOUNT,     node_pay_confirm },
    { "purchases",      0, CLI_LOGIN,       node_pay_purchases },
    { "config-secret",  1, CLI_ACCOUNT,     node_config_secret },
    { "config-share",   1, CLI_ACCOUNT,     node_config_share },
    { "config-unshare", 1, CLI_ACCOUNT,     node_config_unshare },
    { "config-apply",   1, CLI_ACCOUNT,     node_config_fetch },
    { "config-show",    1, CLI_ACCOUNT,     node_config_fetch },
    //  Friends (node_friends.c)
    { "contacts-import", 1, CLI_LOGIN,      node_contacts_import },
    { "contacts-me",    1, CLI_LOGIN,       node_contacts_me },
    { "contacts-list",  0, 0,               node_contacts_list },
    { "friends",        0, CLI_LOGIN,       node_friends_list },
    { "block",          1, CLI_LOGIN,       node_friends_block },
    { "unblock",        1, CLI_LOGIN,       node_friends_block },
    { "refuse",         1, CLI_LOGIN,       node_friends_refuse },
    { "share",          2, CLI_LOGIN,       node_friends_share },
    { "share-list",     0, CLI_LOGIN,       node_friends_shares },
    { "friend-apps",    1, CLI_LOGIN,       node_friend_apps },
    { "recommend",      2, CLI_LOGIN,       node_friend_recommend },
    { "friend-install", 2, CLI_LOGIN,       node_friend_install },
    { "inbox",          0, 0,               node_friends_inbox },
    { "inbox-install",  1, CLI_LOGIN,       node_friends_inbox_install },
    //  Backups (node_backup.c)
    { "backup",         1, CLI_LOGIN,       node_backup },
    { "backups",        0, CLI_LOGIN,       node_backups },
    { "restore",        1, CLI_LOGIN,       node_restore },
};

//  Run one CLI request
static void
s_dispatch (af_node_t *self, cli_t *cli)
{
    size_t which = 0, count = sizeof s_verbs / sizeof s_verbs [0];
    while (which < count && !streq (s_verbs [which].verb, cli->verb))
        which++;
    if (which == count || cli->args < s_verbs [which].args)
        node_ctl_error (self, cli->client, AF_E_UNKNOWN_COMMAND, "unknown or incomplete command '%s'", cli->verb);
    else
    if ((s_verbs [which].needs & CLI_LOGIN) && !self->logged_in)
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "%s", s_run_login);
    else
    if ((s_verbs [which].needs & CLI_LOGIN_WHY) && !self->logged_in)
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "%s", s_why_not_logged_in (self));
    else
    if ((s_verbs [which].needs & CLI_ACCOUNT) && !*self->account)
        node_ctl_error (self, cli->client, AF_E_NOT_LOGGED_IN, "log in first: the key belongs to the account");
    else
        s_verbs [which].handler (self, cli);
}

int
node_cli_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    af_node_t *self = (af_node_t *) arg;
    zmsg_t *request = zmsg_recv (reader);
    if (!request)
        return 0;
    cli_t cli;
    memset (&cli, 0, sizeof cli);
    cli.client = zmsg_pop (request);
    size_t count = zmsg_size (request);
    bool sane = cli.client && count >= 1 && count <= NODE_CTL_MAX_FRAMES;
    for (zframe_t *f = zmsg_first (request); sane && f; f = zmsg_next (request))
        sane = zframe_size (f) <= NODE_CTL_MAX_FRAME;
    if (sane) {
        cli.verb = zmsg_popstr (request);
        while (zmsg_size (request))
            cli.arg [cli.args++] = zmsg_popstr (request);
        s_dispatch (self, &cli);
        zstr_free (&cli.verb);
        for (int i = 0; i < cli.args; i++)
            zstr_free (&cli.arg [i]);
    }
    else
    if (cli.client)
        node_ctl_error (self, cli.client, AF_E_MALFORMED, "a request is 1..%d frames of at most %d bytes",
                        NODE_CTL_MAX_FRAMES, NODE_CTL_MAX_FRAME);
    zframe_destroy (&cli.client);
    zmsg_destroy (&request);
    return self->stopping? -1: 0;
}
