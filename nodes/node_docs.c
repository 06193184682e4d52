/*  =========================================================================
    node_docs - the JSON the node answers the CLI with, and its JSON files

    Every CLI request gets one reply: "ok" or "error", then one JSON
    document. The documents are built here from the node's state (status,
    devices, installed, apps), so the text the CLI prints and the JSON a
    script reads come from one place. JSON files in the home (trust.json,
    backup.json, pushes.json, config-share.json, contacts.json) are
    written whole and durably: a temp file, fsync, rename, fsync of the
    home (af_file_write), so a crash leaves the old or the new one.
    =========================================================================
*/
#include "node_int.h"

#include <errno.h>
#include <sodium.h>

void
node_ctl_reply (af_node_t *self, zframe_t *client, bool ok, json_t *doc)
{
    char *text = json_dumps (doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    zframe_send (&client, self->ctl, ZFRAME_MORE | ZFRAME_REUSE);
    zstr_sendm (self->ctl, ok? "ok": "error");
    zstr_send (self->ctl, text? text: "{}");
    free (text);
    json_decref (doc);
}

json_t *
node_error_doc (int code, const char *reason)
{
    return json_pack ("{s:s, s:i, s:s}", "error", af_code_name (code), "code", code, "reason", reason);
}

void
node_ctl_error (af_node_t *self, zframe_t *client, int code, const char *format, ...)
{
    char reason [512];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    node_ctl_reply (self, client, false, node_error_doc (code, reason));
}

json_t *
node_devices_doc (af_node_t *self, af_msg_t *list, const char *source)
{
    json_t *devices = json_array ();
    for (uint32_t i = 0; list && i < list->device_count; i++) {
        json_t *device = (json_t *) af_device_to_jansson (&list->devices [i], true);
        json_object_set_new (device, "self", json_boolean (streq (list->devices [i].id, self->device_id)));
        json_array_append_new (devices, device);
    }
    return json_pack ("{s:s, s:s, s:s, s:o, s:I}", "account", self->account,
                      "deviceId", self->device_id, "source", source, "devices", devices,
                      "receivedAt", (json_int_t) self->list_at);
}

//  Install records and store links, for `appferry installed`
json_t *
node_installed_doc (af_node_t *self)
{
    json_t *doc = json_pack ("{s:[], s:[]}", "installed", "storeLinks");
    static const char *dirs [] = { "installed", "links" };
    for (int d = 0; d < 2; d++) {
        json_t *list = json_object_get (doc, d? "storeLinks": "installed");
        char path [600];
        snprintf (path, sizeof path, "%s/%s", self->config.home, dirs [d]);
        zdir_t *dir = zdir_new (path, "-");
        zfile_t **files = dir? zdir_flatten (dir): NULL;
        for (size_t i = 0; files && files [i]; i++) {
            const char *name = zfile_filename (files [i], NULL);
            size_t len = strlen (name);
            if (len < 5 || !streq (name + len - 5, ".json"))
                continue;
            json_error_t jerr;
            json_t *record = json_load_file (name, 0, &jerr);
            if (json_is_object (record))
                json_array_append (list, record);
            json_decref (record);
        }
        zdir_flatten_free (&files);
        zdir_destroy (&dir);
    }
    return doc;
}

//  An install list or a sync diff as JSON, with device names where known
json_t *
node_apps_doc (af_node_t *self, af_msg_t *msg)
{
    json_t *apps = json_array ();
    for (uint32_t i = 0; i < msg->app_count; i++) {
        af_app_t *app = &msg->apps [i];
        json_t *entry = json_pack ("{s:s, s:s, s:I, s:s, s:I}", "program", app->program,
                                   "versionName", app->version_name, "versionCode", (json_int_t) app->version_code,
                                   "hash", app->hash, "at", (json_int_t) app->at);
        if (msg->id == AF_MSG_SYNC_DIFF) {
            const char *name = "";
            for (uint32_t d = 0; self->list && d < self->list->device_count; d++)
                if (streq (self->list->devices [d].id, app->device_id))
                    name = self->list->devices [d].name;
            json_object_set_new (entry, "deviceId", json_string (app->device_id));
            json_object_set_new (entry, "deviceName", json_string (name));
            json_object_set_new (entry, "gone", json_boolean (!*app->device_id));
            json_object_set_new (entry, "fit", json_string (af_fit_name ((af_fit_t) app->fit)));
            json_object_set_new (entry, "fitVersion", json_string (app->fit_version));
            json_object_set_new (entry, "reason", json_string (app->reason));
        }
        json_array_append_new (apps, entry);
    }
    json_t *doc = json_pack ("{s:o}", "apps", apps);
    if (msg->id == AF_MSG_SYNC_DIFF)
        json_object_set_new (doc, "truncated", json_boolean (msg->truncated));
    else
        json_object_set_new (doc, "deviceId", json_string (msg->device_id));
    return doc;
}

json_t *
node_status_doc (af_node_t *self)
{
    json_t *doc = json_pack ("{s:s, s:b, s:b, s:s, s:s, s:o, s:I, s:I}",
        "broker", self->endpoint,
        "connected", self->connected,
        "loggedIn", self->logged_in,
        "account", self->account,
        "deviceId", self->device_id,
        "device", (json_t *) af_device_to_jansson (&self->device, false),
        "devicesKnown", (json_int_t) (self->list? self->list->device_count: 0),
        "listsReceived", (json_int_t) self->lists_received);
    if (*self->login_error)
        json_object_set_new (doc, "loginError", json_string (self->login_error));
    if (*self->login_retry && !self->logged_in) {
        int64_t wait = self->login_retry_at - zclock_mono ();
        json_object_set_new (doc, "loginRetry", json_pack ("{s:s, s:I, s:I}", "error", self->login_retry,
                             "attempts", (json_int_t) self->login_failures, "inMs", (json_int_t) (wait > 0? wait: 0)));
    }
    json_object_set_new (doc, "pendingRequests", json_integer ((json_int_t) zhashx_size (self->pending)));
    //  Pushes: the ten most recent this device started, and what it receives
    json_t *pushes = json_array ();
    size_t count = json_array_size (self->pushes);
    for (size_t i = count > NODE_STATUS_PUSHES? count - NODE_STATUS_PUSHES: 0; i < count; i++)
        json_array_append (pushes, json_array_get (self->pushes, i));
    json_object_set_new (doc, "pushes", pushes);
    json_t *receiving = node_jobs_doc (self);
    json_object_set_new (doc, "receiving", receiving);
    json_t *shared = json_array (), *waiting = json_array ();
    const char *program;
    json_t *entry;
    json_object_foreach (json_object_get (self->shares, "shared"), program, entry)
        json_array_append_new (shared, json_string (program));
    json_object_foreach (json_object_get (self->shares, "pending"), program, entry)
        json_array_append_new (waiting, json_string (program));
    json_object_set_new (doc, "configShared", shared);
    json_object_set_new (doc, "configWaiting", waiting);
    return doc;
}

//  A JSON document in the home: written whole and durably (af_file_write:
//  temp file, fsync, rename, fsync of the home), 0, or -1 logged; or read
//  (NULL if missing or unreadable, which is logged)
int
node_json_save (af_node_t *self, const char *name, json_t *doc)
{
    char path [600], err [AF_MAX_REASON + 1];
    snprintf (path, sizeof path, "%s/%s", self->config.home, name);
    char *text = json_dumps (doc, JSON_COMPACT);
    int code = text? af_file_write (path, text, strlen (text), 0600, err, sizeof err): AF_E_INTERNAL;
    if (!text)
        snprintf (err, sizeof err, "cannot encode %s", path);
    free (text);
    if (code != AF_OK) {
        zsys_error ("node: cannot save %s: %s", name, err);
        return -1;
    }
    return 0;
}

json_t *
node_json_load (af_node_t *self, const char *name)
{
    char path [600];
    snprintf (path, sizeof path, "%s/%s", self->config.home, name);
    if (!zsys_file_exists (path))
        return NULL;
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    if (!doc)
        zsys_warning ("node: ignoring unreadable %s: %s", path, jerr.text);
    return doc;
}
