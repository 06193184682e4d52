/*  =========================================================================
    node_cli - the `appferry` command line's side in the node

    The CLI sends a verb and its arguments as frames on HOME/node.sock (a
    ROUTER, mode 0600: only the device's user may drive the node); the
    node answers each request once, with a JSON document (node_docs).
    =========================================================================
*/
#include "node_int.h"
#include "af_config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>

void
node_answer (af_node_t *self, pending_t *pending, af_msg_t *msg)
{
    if (msg->id == AF_MSG_ERROR) {
        if (pending->client)
            node_ctl_reply (self, pending->client, false, node_error_doc ((int) msg->code, msg->reason));
        return;
    }
    if (!pending->client)
        return;
    json_t *doc = NULL;
    if (msg->id == AF_MSG_OK && streq (pending->verb, "register"))
        doc = json_pack ("{s:b}", "registered", 1);
    else
    if (msg->id == AF_MSG_OK && streq (pending->verb, "logout"))
        doc = json_pack ("{s:b}", "loggedOut", 1);
    else
    if (msg->id == AF_MSG_OK && streq (pending->verb, "notify"))
        doc = json_pack ("{s:b}", "delivered", 1);
    else
    if (msg->id == AF_MSG_LOGIN_OK)
        doc = json_pack ("{s:s, s:s, s:s}", "account", msg->account, "deviceId", msg->device_id,
                         "model", self->device.model);
    else
    if (msg->id == AF_MSG_DEVICE_LIST)
        doc = node_devices_doc (self, msg, "broker");
    else
    if (msg->id == AF_MSG_PUSH_ACCEPTED && streq (pending->verb, "uninstall-on")) {
        json_t *targets = json_array ();
        for (uint32_t i = 0; i < msg->result_count; i++)
            json_array_append_new (targets, json_pack ("{s:s, s:s, s:s, s:s}", "deviceId", msg->results [i].device_id,
                "name", msg->results [i].name, "state", msg->results [i].state, "reason", msg->results [i].reason));
        doc = json_pack ("{s:s, s:o}", "program", msg->program, "targets", targets);
    }
    else
    if (msg->id == AF_MSG_PUSH_ACCEPTED)
        doc = json_deep_copy (node_push_accepted (self, msg));
    else
    if (msg->id == AF_MSG_SYNC_DIFF || msg->id == AF_MSG_APP_LIST)
        doc = node_apps_doc (self, msg);
    else
    if (msg->id == AF_MSG_CONFIG) {
        char err [AF_MAX_REASON + 1];
        doc = node_config_doc (self, pending, msg, err, sizeof err);
        if (!doc) {
            node_ctl_error (self, pending->client, AF_E_MALFORMED, "%s", err);
            return;
        }
    }
    else
    if (msg->id == AF_MSG_RESOLVED) {
        af_resolution_t resolution;
        memset (&resolution, 0, sizeof resolution);
        resolution.fit = (af_fit_t) msg->fit;
        if (msg->has_package)
            resolution.package = msg->package;
        snprintf (resolution.reason, sizeof resolution.reason, "%s", msg->reason);
        doc = (json_t *) af_resolution_to_jansson (msg->program, &resolution);
        bool fits = msg->fit == AF_FIT_PACKAGE || msg->fit == AF_FIT_STORE_LINK;
        node_ctl_reply (self, pending->client, fits, doc);
        return;
    }
    else {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                     af_msg_command_name (msg->id));
        return;
    }
    node_ctl_reply (self, pending->client, true, doc);
}

int
node_cli_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    af_node_t *self = (af_node_t *) arg;
    zmsg_t *request = zmsg_recv (reader);
    if (!request)
        return 0;
    zframe_t *client = zmsg_pop (request);
    size_t count = zmsg_size (request);
    bool sane = client && count >= 1 && count <= NODE_CTL_MAX_FRAMES;
    for (zframe_t *f = zmsg_first (request); sane && f; f = zmsg_next (request))
        sane = zframe_size (f) <= NODE_CTL_MAX_FRAME;
    if (!sane) {
        if (client)
            node_ctl_error (self, client, AF_E_MALFORMED, "a request is 1..%d frames of at most %d bytes",
                         NODE_CTL_MAX_FRAMES, NODE_CTL_MAX_FRAME);
        goto done;
    }
    char *verb = zmsg_popstr (request);
    char *arg1 = zmsg_popstr (request);
    char *arg2 = zmsg_popstr (request);
    char *arg3 = zmsg_popstr (request);

    if (streq (verb, "status"))
        node_ctl_reply (self, client, true, node_status_doc (self));
    else
    if (streq (verb, "stop")) {
        node_ctl_reply (self, client, true, json_pack ("{s:b}", "stopped", 1));
        self->stopping = true;
    }
    else
    if ((streq (verb, "register") || streq (verb, "login")) && arg1 && arg2) {
        if (strlen (arg1) > AF_MAX_ACCOUNT || strlen (arg2) > AF_MAX_PASSWORD)
            node_ctl_error (self, client, AF_E_MALFORMED, "account or password too long");
        else {
            bool login = streq (verb, "login");
            af_msg_t *msg = af_msg_new (login? AF_MSG_LOGIN: AF_MSG_REGISTER);
            strcpy (msg->account, arg1);
            strcpy (msg->password, arg2);
            if (login) {
                //  Same account: keep our device ID. Another account: this
                //  connection must leave the first one before it logs in.
                if (streq (self->account, arg1))
                    strcpy (msg->device_id, self->device_id);
                else {
                    //  The user chose another account: do not log back in
                    //  to the old one by key while this login is pending,
                    //  or after it fails
                    self->switching = true;
                    if (self->logged_in) {
                        af_msg_t *logout = af_msg_new (AF_MSG_LOGOUT);
                        node_send (self, logout);
                        af_msg_destroy (&logout);
                        self->logged_in = false;
                    }
                }
                msg->device = self->device;
                msg->has_device = true;
                self->login_error [0] = 0;
            }
            node_request (self, client, verb, msg);
        }
    }
    else
    if (streq (verb, "push") && arg1 && arg2) {
        if (!self->logged_in)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_PUSH);
            char err [AF_MAX_REASON + 1] = "";
            node_program_targets (msg, arg1, arg2, err, sizeof err);
            if (*err) {
                node_ctl_error (self, client, AF_E_MALFORMED, "%s", err);
                af_msg_destroy (&msg);
            }
            else {
                node_attest (self, msg);
                msg->with_data = arg3 && streq (arg3, "data");
                if (msg->with_data)
                    node_upload_start (self, client, msg);
                else
                    node_request (self, client, verb, msg);
            }
        }
    }
    else
    if (streq (verb, "push-status") && arg1) {
        json_t *push = node_push_find (self, arg1);
        if (push)
            node_ctl_reply (self, client, true, json_deep_copy (push));
        else
            node_ctl_error (self, client, AF_E_NO_DEVICE, "no push %s known to this node", arg1);
    }
    else
    if (streq (verb, "installed"))
        node_ctl_reply (self, client, true, node_installed_doc (self));
    else
    if (streq (verb, "sync") || (streq (verb, "apps") && arg1)) {
        if (!self->logged_in)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else
        if (streq (verb, "sync"))
            node_request_held (self, client, verb, af_msg_new (AF_MSG_SYNC));
        else
        if (strlen (arg1) != AF_ID_HEX)
            node_ctl_error (self, client, AF_E_MALFORMED, "'%s' is not a device ID", arg1);
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_APPS);
            strcpy (msg->device_id, arg1);
            node_request_held (self, client, verb, msg);
        }
    }
    else
    if (strncmp (verb, "config-", 7) == 0 && arg1) {
        uint8_t key [AF_CONFIG_KEY_SIZE];
        char path [600], err [AF_MAX_REASON + 1];
        bool program_ok = strlen (arg1) <= AF_MAX_PROGRAM && *arg1 && !strchr (arg1, '/') && *arg1 != '.';
        if (!*self->account)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "log in first: the key belongs to the account");
        else
        if (streq (verb, "config-secret")) {
            if (strlen (arg1) < 12)
                node_ctl_error (self, client, AF_E_MALFORMED, "the account secret must be at least 12 characters");
            else
            if (af_config_derive (self->account, arg1, key, err, sizeof err))
                node_ctl_error (self, client, AF_E_INTERNAL, "%s", err);
            else {
                snprintf (path, sizeof path, "%s/config.key", self->config.home);
                int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                bool ok = fd >= 0 && write (fd, key, sizeof key) == (ssize_t) sizeof key && fsync (fd) == 0;
                if (fd >= 0)
                    ok = close (fd) == 0 && ok;
                if (ok)
                    node_ctl_reply (self, client, true, json_pack ("{s:b}", "keySet", 1));
                else
                    node_ctl_error (self, client, AF_E_INTERNAL, "cannot write %s: %s", path, strerror (errno));
            }
            sodium_memzero (key, sizeof key);
        }
        else
        if (!program_ok)
            node_ctl_error (self, client, AF_E_MALFORMED, "'%s' is not a program ID", arg1);
        else
        if (!node_config_key (self, key))
            node_ctl_error (self, client, AF_E_MALFORMED, "set the account secret first: appferry config secret");
        else
        if (streq (verb, "config-share")) {
            json_t *shared = json_object_get (self->shares, "shared");
            if (!json_object_get (shared, arg1))
                json_object_set_new (shared, arg1, json_pack ("{s:I}", "at", (json_int_t) 0));
            node_config_save (self);
            //  Ours goes out if it is newer; the account's comes in if that is
            node_config_scan (self);
            if (self->logged_in)
                node_config_get (self, NULL, "config-sync", arg1, false);
            node_ctl_reply (self, client, true, json_pack ("{s:s, s:b}", "program", arg1, "shared", 1));
        }
        else
        if (streq (verb, "config-unshare")) {
            json_object_del (json_object_get (self->shares, "shared"), arg1);
            node_config_save (self);
            node_ctl_reply (self, client, true, json_pack ("{s:s, s:b}", "program", arg1, "shared", 0));
        }
        else
        if ((streq (verb, "config-apply") || streq (verb, "config-show")) && !self->logged_in)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not connected to the broker");
        else
        if (streq (verb, "config-apply") || streq (verb, "config-show"))
            node_config_get (self, client, verb, arg1, arg2 && streq (arg2, "previous"));
        else
            node_ctl_error (self, client, AF_E_UNKNOWN_COMMAND, "unknown config command");
        sodium_memzero (key, sizeof key);
    }
    else
    if (streq (verb, "install") && arg1) {
        if (!self->logged_in)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else
        if (strlen (arg1) > AF_MAX_PROGRAM || !*arg1)
            node_ctl_error (self, client, AF_E_MALFORMED, "program ID must be 1..%d characters", AF_MAX_PROGRAM);
        else
            node_install_self (self, client, arg1);
    }
    else
    if (streq (verb, "apps")) {
        af_msg_t *list = node_install_list (self);
        snprintf (list->device_id, sizeof list->device_id, "%s", self->device_id);
        node_ctl_reply (self, client, true, node_apps_doc (self, list));
        af_msg_destroy (&list);
    }
    else
    if (streq (verb, "uninstall") && arg1 && arg2) {
        //  On other devices: through their durable outboxes
        if (!self->logged_in)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_UNINSTALL);
            char err [AF_MAX_REASON + 1] = "";
            node_program_targets (msg, arg1, arg2, err, sizeof err);
            if (*err) {
                node_ctl_error (self, client, AF_E_MALFORMED, "%s", err);
                af_msg_destroy (&msg);
            }
            else
                node_request (self, client, "uninstall-on", msg);
        }
    }
    else
    if (streq (verb, "uninstall") && arg1) {
        char err [AF_MAX_REASON + 1];
        if (node_uninstall_local (self, arg1, err, sizeof err))
            node_ctl_error (self, client, AF_E_MALFORMED, "%s", err);
        else
            node_ctl_reply (self, client, true, json_pack ("{s:s, s:b}", "program", arg1, "uninstalled", 1));
    }
    else
    if (streq (verb, "notifications"))
        node_ctl_reply (self, client, true, json_pack ("{s:O, s:I}", "notifications", self->inbox,
                                                    "received", (json_int_t) self->notifications));
    else
    if (streq (verb, "notify") && arg1 && arg2) {
        if (!self->logged_in)
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else
        if (strlen (arg1) != AF_ID_HEX || strlen (arg2) > AF_MAX_BODY)
            node_ctl_error (self, client, AF_E_MALFORMED, "usage: notify DEVICE-ID TEXT");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_NOTIFY);
            strcpy (msg->device_id, arg1);
            strcpy (msg->kind, "text");
            af_msg_set_body (msg, arg2, strlen (arg2));
            node_request (self, client, verb, msg);
        }
    }
    else
    if (streq (verb, "logout") || streq (verb, "devices") || streq (verb, "resolve")) {
        if (!self->logged_in && !(streq (verb, "devices") && self->list))
            node_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "%s",
                         *self->login_error? self->login_error:
                         self->connected? "not logged in; run: appferry login ACCOUNT":
                         "not connected to the broker (is it running?)");
        else
        if (streq (verb, "logout"))
            node_request (self, client, verb, af_msg_new (AF_MSG_LOGOUT));
        else
        if (streq (verb, "devices")) {
            if (self->list && !(arg1 && streq (arg1, "refresh")))
                node_ctl_reply (self, client, true, node_devices_doc (self, self->list, "pushed"));
            else
                node_request (self, client, verb, af_msg_new (AF_MSG_DEVICES));
        }
        else
        if (!arg1 || strlen (arg1) > AF_MAX_PROGRAM)
            node_ctl_error (self, client, AF_E_MALFORMED, "usage: resolve PROGRAM");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_RESOLVE);
            strcpy (msg->program, arg1);
            node_request (self, client, verb, msg);
        }
    }
    else
        node_ctl_error (self, client, AF_E_UNKNOWN_COMMAND, "unknown or incomplete command '%s'", verb);
    zstr_free (&verb);
    zstr_free (&arg1);
    zstr_free (&arg2);
    zstr_free (&arg3);
done:
    zframe_destroy (&client);
    zmsg_destroy (&request);
    return self->stopping? -1: 0;
}
