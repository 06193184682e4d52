/*  =========================================================================
    af_node - the device node: one per device, talks to the broker for it

    The broker connection is a DEALER with ZMQ_IMMEDIATE, so a send while
    the broker is unreachable fails at once instead of piling up stale
    messages; CLI requests that cannot be sent yet wait (unsent) until the
    connection is up or their deadline passes, and then get a clear error.
    Every CLI request gets exactly one reply: the broker's answer, or an
    error saying why there is none.
    =========================================================================
*/
#include "node_int.h"
#include "af_config.h"

#include <errno.h>
#include <sodium.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <zstd.h>

void
af_node_config_defaults (af_node_config_t *config)
{
    memset (config, 0, sizeof *config);
    config->heartbeat_ms = AF_HEARTBEAT_MS;
    config->liveness = AF_HEARTBEAT_LIVENESS;
    config->request_timeout_ms = AF_REQUEST_TIMEOUT_MS + 5000;
    config->install_timeout_s = 300;
}

static void
s_pending_free (void **item)
{
    pending_t *pending = (pending_t *) *item;
    if (pending) {
        zframe_destroy (&pending->client);
        af_msg_destroy (&pending->unsent);
        free (pending);
        *item = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Saved state

static void
s_state_save (af_node_t *self)
{
    char path [600], tmp [610];
    snprintf (path, sizeof path, "%s/node.state", self->config.home);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    if (!file) {
        zsys_error ("node: cannot write %s: %s", tmp, strerror (errno));
        return;
    }
    fprintf (file, "account=%s\ndevice_id=%s\nnext_seq=%llu\nacked_seq=%llu\n", self->account,
             self->device_id, (unsigned long long) self->next_seq, (unsigned long long) self->acked_seq);
    bool ok = fflush (file) == 0 && fsync (fileno (file)) == 0;
    ok = fclose (file) == 0 && ok;
    if (!ok || rename (tmp, path))
        zsys_error ("node: cannot save %s: %s", path, strerror (errno));
}

static void
s_state_load (af_node_t *self)
{
    char path [600];
    snprintf (path, sizeof path, "%s/node.state", self->config.home);
    FILE *file = fopen (path, "r");
    if (!file)
        return;
    char line [256];
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\r\n")] = 0;
        if (strncmp (line, "account=", 8) == 0 && strlen (line + 8) <= AF_MAX_ACCOUNT)
            strcpy (self->account, line + 8);
        else
        if (strncmp (line, "device_id=", 10) == 0 && strlen (line + 10) == AF_ID_HEX)
            strcpy (self->device_id, line + 10);
        else
        if (strncmp (line, "next_seq=", 9) == 0)
            self->next_seq = strtoull (line + 9, NULL, 10);
        else
        if (strncmp (line, "acked_seq=", 10) == 0)
            self->acked_seq = strtoull (line + 10, NULL, 10);
    }
    fclose (file);
    if (!*self->account || !*self->device_id)
        self->account [0] = self->device_id [0] = 0;
}

//  --------------------------------------------------------------------------
//  Replies to the CLI

static void
s_ctl_reply (af_node_t *self, zframe_t *client, bool ok, json_t *doc)
{
    char *text = json_dumps (doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    zframe_send (&client, self->ctl, ZFRAME_MORE | ZFRAME_REUSE);
    zstr_sendm (self->ctl, ok? "ok": "error");
    zstr_send (self->ctl, text? text: "{}");
    free (text);
    json_decref (doc);
}

static json_t *
s_error_doc (int code, const char *reason)
{
    return json_pack ("{s:s, s:i, s:s}", "error", af_code_name (code), "code", code, "reason", reason);
}

static void
s_ctl_error (af_node_t *self, zframe_t *client, int code, const char *format, ...)
{
    char reason [512];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    s_ctl_reply (self, client, false, s_error_doc (code, reason));
}

static json_t *
s_devices_doc (af_node_t *self, af_msg_t *list, const char *source)
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

//  What the broker's push policy checks: our version and the operator's
//  attestations (HOME-independent file of name=value lines, dated by mtime)
static void
s_attest (af_node_t *self, af_msg_t *msg)
{
    snprintf (msg->node_version, sizeof msg->node_version, "%s", AF_VERSION);
    if (!*self->config.attest_file)
        return;
    FILE *file = fopen (self->config.attest_file, "r");
    struct stat st;
    if (!file || fstat (fileno (file), &st)) {
        zsys_warning ("node: cannot read attestations from %s: %s", self->config.attest_file, strerror (errno));
        if (file)
            fclose (file);
        return;
    }
    msg->attest_time = (uint64_t) st.st_mtim.tv_sec * 1000 + (uint64_t) st.st_mtim.tv_nsec / 1000000;
    char line [256];
    while (fgets (line, sizeof line, file) && msg->attest_count < AF_MAX_ATTEST) {
        line [strcspn (line, "\r\n")] = 0;
        if (*line && *line != '#' && strchr (line, '=') && strlen (line) <= AF_MAX_ATTEST_LEN)
            strcpy (msg->attest [msg->attest_count++], line);
    }
    fclose (file);
}

//  Install records and store links, for `appferry installed`
static json_t *
s_installed_doc (af_node_t *self)
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
static json_t *
s_apps_doc (af_node_t *self, af_msg_t *msg)
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

static json_t *
s_status_doc (af_node_t *self)
{
    json_t *doc = json_pack ("{s:s, s:b, s:b, s:s, s:s, s:o, s:I, s:I}",
        "broker", self->config.broker,
        "connected", self->connected,
        "loggedIn", self->logged_in,
        "account", self->account,
        "deviceId", self->device_id,
        "device", (json_t *) af_device_to_jansson (&self->device, false),
        "devicesKnown", (json_int_t) (self->list? self->list->device_count: 0),
        "listsReceived", (json_int_t) self->lists_received);
    if (*self->login_error)
        json_object_set_new (doc, "loginError", json_string (self->login_error));
    json_object_set_new (doc, "pendingRequests", json_integer ((json_int_t) zhashx_size (self->pending)));
    //  Pushes: the ten most recent this device started, and what it receives
    json_t *pushes = json_array ();
    size_t count = json_array_size (self->pushes);
    for (size_t i = count > 10? count - 10: 0; i < count; i++)
        json_array_append (pushes, json_array_get (self->pushes, i));
    json_object_set_new (doc, "pushes", pushes);
    json_t *receiving = json_array ();
    static const char *states [] = { "waiting", "receiving", "installing", "reporting" };
    for (job_t *job = (job_t *) zlistx_first (self->jobs); job; job = (job_t *) zlistx_next (self->jobs))
        json_array_append_new (receiving, json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I}",
            "pushId", job->push, "program", job->program, "versionName", job->package.version_name,
            "state", states [job->state],
            "bytes", (json_int_t) (job->download? af_download_received (job->download): 0),
            "total", (json_int_t) (job->fetch_total? job->fetch_total: job->package.size)));
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

//  --------------------------------------------------------------------------
//  Broker connection

static int s_dealer_event (zloop_t *loop, zsock_t *reader, void *arg);

static int
s_connect (af_node_t *self)
{
    if (self->dealer) {
        zloop_reader_end (self->loop, self->dealer);
        zsock_destroy (&self->dealer);
    }
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer)
        return -1;
    zcert_apply (self->cert, self->dealer);
    zsock_set_curve_serverkey (self->dealer, zcert_public_txt (self->broker_cert));
    zsock_set_immediate (self->dealer, 1);
    zsock_set_sndtimeo (self->dealer, 0);
    zsock_set_linger (self->dealer, 0);
    zsock_set_maxmsgsize (self->dealer, AF_MAX_ZMQ_MSG);
    if (zsock_connect (self->dealer, "%s", self->config.broker)) {
        zsys_error ("node: cannot connect to %s: %s", self->config.broker, zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->connected = false;
    self->logged_in = false;
    self->last_rx = zclock_mono ();
    zloop_reader (self->loop, self->dealer, s_dealer_event, self);
    return 0;
}

static int
s_broker_send (af_node_t *self, af_msg_t *msg)
{
    return af_msg_send (msg, self->dealer, NULL);
}

//  Track a request; send it now or when connected. Takes msg.
static pending_t *
s_request (af_node_t *self, zframe_t *client, const char *verb, af_msg_t *msg)
{
    pending_t *pending = (pending_t *) zmalloc (sizeof (pending_t));
    assert (pending);
    af_msg_set_rid_random (msg);
    sodium_bin2hex (pending->hex, sizeof pending->hex, msg->rid, AF_ID_SIZE);
    pending->client = client? zframe_dup (client): NULL;
    snprintf (pending->verb, sizeof pending->verb, "%s", verb);
    pending->deadline = zclock_mono () + self->config.request_timeout_ms;
    if (self->connected && s_broker_send (self, msg) == 0)
        af_msg_destroy (&msg);
    else {
        //  Not connected: wait a little for the connection, not the whole timeout
        pending->unsent = msg;
        if (self->config.request_timeout_ms > NODE_UNSENT_WAIT_MS)
            pending->deadline = zclock_mono () + NODE_UNSENT_WAIT_MS;
    }
    zhashx_insert (self->pending, pending->hex, pending);
    return pending;
}

//  Track a request that waits for the install reports to go first
static pending_t *
s_request_held (af_node_t *self, zframe_t *client, const char *verb, af_msg_t *msg)
{
    if (!self->catching_up)
        return s_request (self, client, verb, msg);
    pending_t *pending = (pending_t *) zmalloc (sizeof (pending_t));
    assert (pending);
    af_msg_set_rid_random (msg);
    sodium_bin2hex (pending->hex, sizeof pending->hex, msg->rid, AF_ID_SIZE);
    pending->client = client? zframe_dup (client): NULL;
    snprintf (pending->verb, sizeof pending->verb, "%s", verb);
    pending->deadline = zclock_mono () + self->config.request_timeout_ms;
    pending->unsent = msg;
    zhashx_insert (self->pending, pending->hex, pending);
    return pending;
}

static void
s_login_by_key (af_node_t *self)
{
    if (!*self->account || !*self->device_id || *self->auto_login || *self->login_error
    ||  self->switching)
        return;
    af_msg_t *login = af_msg_new (AF_MSG_LOGIN);
    snprintf (login->account, sizeof login->account, "%s", self->account);
    snprintf (login->device_id, sizeof login->device_id, "%s", self->device_id);
    login->device = self->device;
    login->has_device = true;
    pending_t *pending = s_request (self, NULL, "auto-login", login);
    memcpy (self->auto_login, pending->hex, sizeof self->auto_login);
}

static void
s_flush_unsent (af_node_t *self)
{
    for (pending_t *p = (pending_t *) zhashx_first (self->pending); p;
         p = (pending_t *) zhashx_next (self->pending))
        if (p->unsent && !(self->catching_up && streq (p->verb, "sync"))
        &&  s_broker_send (self, p->unsent) == 0) {
            af_msg_destroy (&p->unsent);
            p->deadline = zclock_mono () + self->config.request_timeout_ms;
        }
}

static void s_on_item (af_node_t *self, af_msg_t *item);
static int s_uninstall_local (af_node_t *self, const char *program, char *err, size_t errlen);
static void s_auto_diff (af_node_t *self, af_msg_t *diff);
static void s_auto_sync (af_node_t *self);
static bool s_config_key (af_node_t *self, uint8_t *key);
static void s_config_answer (af_node_t *self, pending_t *pending, af_msg_t *msg);
static void s_config_get (af_node_t *self, zframe_t *client, const char *verb, const char *program, bool previous);
static void s_config_scan (af_node_t *self);
static json_t *s_apps_doc (af_node_t *self, af_msg_t *msg);
static json_t *s_config_doc (af_node_t *self, pending_t *pending, af_msg_t *msg, char *err, size_t errlen);
static void s_on_chunk (af_node_t *self, af_msg_t *msg);
static json_t *s_push_accepted (af_node_t *self, af_msg_t *msg);
static json_t *s_push_find (af_node_t *self, const char *push_id);
static json_t *s_push_target (json_t *push, const char *device_id, bool create);
static void s_jobs_run (af_node_t *self);
static void s_upload_pump (af_node_t *self);
static void s_reports_login (af_node_t *self, uint64_t broker_seq, bool send_list);
static void s_reports_answer (af_node_t *self, pending_t *pending, af_msg_t *msg);
static void s_reports_flush (af_node_t *self);
static void s_report (af_node_t *self, const char *op, const af_install_info_t *info);
static void s_upload_answer (af_node_t *self, pending_t *pending, af_msg_t *msg);
static void s_job_fetch (af_node_t *self, job_t *job);
static void s_job_report (af_node_t *self, job_t *job, const char *state, uint32_t files,
                          const char *format, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_answer (af_node_t *self, pending_t *pending, af_msg_t *msg)
{
    if (msg->id == AF_MSG_ERROR) {
        if (pending->client)
            s_ctl_reply (self, pending->client, false, s_error_doc ((int) msg->code, msg->reason));
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
        doc = s_devices_doc (self, msg, "broker");
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
        doc = json_deep_copy (s_push_accepted (self, msg));
    else
    if (msg->id == AF_MSG_SYNC_DIFF || msg->id == AF_MSG_APP_LIST)
        doc = s_apps_doc (self, msg);
    else
    if (msg->id == AF_MSG_CONFIG) {
        char err [AF_MAX_REASON + 1];
        doc = s_config_doc (self, pending, msg, err, sizeof err);
        if (!doc) {
            s_ctl_error (self, pending->client, AF_E_MALFORMED, "%s", err);
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
        s_ctl_reply (self, pending->client, fits, doc);
        return;
    }
    else {
        s_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                     af_msg_command_name (msg->id));
        return;
    }
    s_ctl_reply (self, pending->client, true, doc);
}

static int
s_dealer_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    af_node_t *self = (af_node_t *) arg;
    zframe_t *frame = zframe_recv (reader);
    if (!frame)
        return 0;
    bool more = zframe_more (frame);
    af_msg_t *msg = NULL;
    char err [AF_MAX_REASON + 1];
    int code = more? AF_E_MALFORMED:
        af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err, NULL, NULL);
    zframe_destroy (&frame);
    if (more) {
        zmsg_t *rest = zmsg_recv (reader);
        zmsg_destroy (&rest);
    }
    if (code != AF_OK) {
        zsys_warning ("node: dropped a message from the broker: %s", more? "multi-frame": err);
        return 0;
    }
    self->last_rx = zclock_mono ();
    if (!self->connected) {
        self->connected = true;
        zsys_info ("node: connected to %s", self->config.broker);
        s_flush_unsent (self);
    }
    if (msg->id == AF_MSG_PONG) {
        if (self->logged_in && !msg->logged_in) {
            zsys_info ("node: the broker lost our session (restarted?); logging in again");
            self->logged_in = false;
        }
        if (!self->logged_in)
            s_login_by_key (self);
    }
    else
    if (msg->id == AF_MSG_DISCONNECT) {
        //  Our device logged in on another connection (another process
        //  with our keypair?): do not fight over the session
        self->logged_in = false;
        snprintf (self->login_error, sizeof self->login_error, "disconnected by the broker: %s", msg->reason);
        zsys_warning ("node: %s; not logging in again until told to", self->login_error);
    }
    else
    if (msg->id == AF_MSG_DEVICE_LIST && !msg->has_rid) {
        //  Pushed on every change in the account's devices
        af_msg_destroy (&self->list);
        self->list = msg;
        msg = NULL;
        self->list_at = zclock_time ();
        self->lists_received++;
        if (self->config.verbose)
            zsys_info ("node: device list received (%u devices)", self->list->device_count);
    }
    else
    if (msg->id == AF_MSG_CHUNK)
        s_on_chunk (self, msg);
    else
    if (msg->id == AF_MSG_CREDIT && !msg->has_rid) {
        if (self->upload && streq (self->upload->hash, msg->hash)) {
            self->upload->credit += msg->credit;
            s_upload_pump (self);
        }
    }
    else
    if (msg->id == AF_MSG_ITEM)
        s_on_item (self, msg);
    else
    if (msg->id == AF_MSG_PROGRESS) {
        json_t *push = s_push_find (self, msg->push_id);
        json_t *target = push? s_push_target (push, msg->device_id, false): NULL;
        if (target) {
            json_object_set_new (target, "bytes", json_integer ((json_int_t) msg->offset));
            json_object_set_new (target, "total", json_integer ((json_int_t) msg->total));
        }
    }
    else
    if (msg->id == AF_MSG_NOTIFY) {
        //  Text bodies are shown as text, anything else as hex
        bool text = msg->body_size > 0;
        for (uint32_t i = 0; text && i < msg->body_size; i++)
            text = msg->body [i] >= 0x20 || msg->body [i] == '\n' || msg->body [i] == '\t';
        char *shown = (char *) malloc (2 * (size_t) msg->body_size + 1);
        assert (shown);
        if (text) {
            memcpy (shown, msg->body, msg->body_size);
            shown [msg->body_size] = 0;
        }
        else
            sodium_bin2hex (shown, 2 * (size_t) msg->body_size + 1, msg->body, msg->body_size);
        json_t *entry = json_pack ("{s:s, s:s, s:s, s:s, s:I}", "from", msg->device_id, "kind", msg->kind,
                                   text? "text": "hex", shown, "encoding", text? "text": "hex",
                                   "at", (json_int_t) zclock_time ());
        free (shown);
        if (entry) {
            json_array_append_new (self->inbox, entry);
            if (json_array_size (self->inbox) > NODE_MAX_INBOX)
                json_array_remove (self->inbox, 0);
        }
        self->notifications++;
        if (self->config.verbose)
            zsys_info ("node: notification '%s' from %s", msg->kind, msg->device_id);
        if (streq (msg->kind, "installed"))
            s_auto_sync (self);
        char program [AF_MAX_PROGRAM + 1] = "";
        if (streq (msg->kind, "config") && msg->body_size <= AF_MAX_PROGRAM) {
            memcpy (program, msg->body, msg->body_size);
            program [msg->body_size] = 0;
            if (json_object_get (json_object_get (self->shares, "shared"), program))
                s_config_get (self, NULL, "config-sync", program, false);
        }
    }
    else
    if (msg->has_rid) {
        char hex [AF_ID_HEX + 1];
        sodium_bin2hex (hex, sizeof hex, msg->rid, AF_ID_SIZE);
        pending_t *pending = (pending_t *) zhashx_lookup (self->pending, hex);
        if (!pending)
            zsys_warning ("node: %s for an unknown request", af_msg_command_name (msg->id));
        else {
            if (msg->id == AF_MSG_LOGIN_OK) {
                self->logged_in = true;
                self->logins++;
                self->switching = false;
                //  Beat at least as often as the broker expects
                if (msg->heartbeat >= 50 && (int) msg->heartbeat < self->heartbeat_ms)
                    self->heartbeat_ms = (int) msg->heartbeat;
                self->login_error [0] = 0;
                if (!streq (self->account, msg->account) || !streq (self->device_id, msg->device_id)) {
                    snprintf (self->account, sizeof self->account, "%s", msg->account);
                    snprintf (self->device_id, sizeof self->device_id, "%s", msg->device_id);
                    //  Another device: its reports start afresh
                    self->next_seq = 1;
                    self->acked_seq = 0;
                    af_reports_drop (self->reports, UINT64_MAX);
                    s_state_save (self);
                }
                zsys_info ("node: logged in to '%s' as device %s", self->account, self->device_id);
                s_reports_login (self, msg->report_seq, msg->send_list);
                s_auto_sync (self);
                //  A transfer under way lost its broker side with the old session
                job_t *job = (job_t *) zlistx_first (self->jobs);
                if (job && job->state == JOB_FETCHING)
                    s_job_fetch (self, job);
                else
                if (job && job->state == JOB_REPORTING)
                    job->reported_at = 0;
            }
            else
            if (streq (pending->verb, "fetch") && msg->id == AF_MSG_ERROR) {
                job_t *job = (job_t *) zlistx_first (self->jobs);
                if (job && job->state == JOB_FETCHING && streq (job->fetch_rid, hex))
                    s_job_report (self, job, "failed", 0, "the broker cannot send the package: %s (%s)",
                                  msg->reason, af_code_name ((int) msg->code));
            }
            else
            if (streq (pending->verb, "report") || streq (pending->verb, "list"))
                s_reports_answer (self, pending, msg);
            else
            if (streq (pending->verb, "auto-sync") && msg->id == AF_MSG_SYNC_DIFF)
                s_auto_diff (self, msg);
            else
            if (streq (pending->verb, "config-sync") || streq (pending->verb, "config-install"))
                s_config_answer (self, pending, msg);
            else
            if (streq (pending->verb, "config-put")) {
                if (msg->id == AF_MSG_OK)       //  did a newer version win meanwhile?
                    s_config_get (self, NULL, "config-sync", pending->program, false);
                else
                    zsys_warning ("node: the broker refused a configuration: %s", msg->reason);
            }
            else
            if (streq (pending->verb, "upload")) {
                s_upload_answer (self, pending, msg);
                if (msg->id == AF_MSG_CREDIT) {
                    af_msg_destroy (&msg);
                    return 0;           //  the UPLOAD stays pending until OK
                }
            }
            else
            if (streq (pending->verb, "done")) {
                job_t *job = (job_t *) zlistx_first (self->jobs);
                if (job && job->state == JOB_REPORTING && streq (job->done_rid, hex)) {
                    if (msg->id == AF_MSG_OK)
                        zlistx_delete (self->jobs, zlistx_cursor (self->jobs));
                    //  An error: the broker could not store it; report again later
                }
            }
            else
            if (msg->id == AF_MSG_ERROR && streq (pending->verb, "auto-login")) {
                snprintf (self->login_error, sizeof self->login_error, "%s: %s",
                          af_code_name ((int) msg->code), msg->reason);
                zsys_warning ("node: automatic login refused: %s (log in again with a password)",
                              self->login_error);
            }
            else
            if (msg->id == AF_MSG_ERROR && msg->code == AF_E_NOT_LOGGED_IN)
                self->logged_in = false;
            else
            if (msg->id == AF_MSG_OK && streq (pending->verb, "logout")) {
                self->logged_in = false;
                self->account [0] = self->device_id [0] = 0;
                af_msg_destroy (&self->list);
                s_state_save (self);
            }
            if (streq (pending->verb, "auto-login"))
                self->auto_login [0] = 0;
            s_answer (self, pending, msg);
            zhashx_delete (self->pending, hex);
            s_jobs_run (self);
        }
    }
    else
    if (msg->id == AF_MSG_ERROR)
        zsys_warning ("node: broker error %s: %s", af_code_name ((int) msg->code), msg->reason);
    af_msg_destroy (&msg);
    return 0;
}

//  A JSON document in the home: written whole (temp file, then rename), or
//  read (NULL if missing or unreadable, which is logged)
static void
s_json_save (af_node_t *self, const char *name, json_t *doc)
{
    char path [600], tmp [610];
    snprintf (path, sizeof path, "%s/%s", self->config.home, name);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file (doc, tmp, JSON_COMPACT) || rename (tmp, path))
        zsys_error ("node: cannot save %s: %s", path, strerror (errno));
}

static json_t *
s_json_load (af_node_t *self, const char *name)
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

//  --------------------------------------------------------------------------
//  Pushes this device started (protocol/SPEC.md "Push"): kept in
//  HOME/pushes.json so `appferry status` shows them after a restart

static void
s_pushes_save (af_node_t *self)
{
    while (json_array_size (self->pushes) > NODE_MAX_PUSHES)
        json_array_remove (self->pushes, 0);
    s_json_save (self, "pushes.json", self->pushes);
}

static void
s_pushes_load (af_node_t *self)
{
    json_t *doc = s_json_load (self, "pushes.json");
    if (json_is_array (doc)) {
        json_decref (self->pushes);
        self->pushes = doc;
    }
    else
        json_decref (doc);
}

static json_t *
s_push_find (af_node_t *self, const char *push_id)
{
    size_t index;
    json_t *entry;
    json_array_foreach (self->pushes, index, entry)
        if (streq (json_string_value (json_object_get (entry, "pushId"))? : "", push_id))
            return entry;
    return NULL;
}

static json_t *
s_push_target (json_t *push, const char *device_id, bool create)
{
    json_t *targets = json_object_get (push, "targets");
    size_t index;
    json_t *target;
    json_array_foreach (targets, index, target)
        if (streq (json_string_value (json_object_get (target, "deviceId"))? : "", device_id))
            return target;
    if (!create)
        return NULL;
    target = json_pack ("{s:s, s:s}", "deviceId", device_id, "state", "offered");
    json_array_append_new (targets, target);
    return target;
}

//  A push this device started was accepted: remember it
static json_t *
s_push_accepted (af_node_t *self, af_msg_t *msg)
{
    json_t *targets = json_array ();
    for (uint32_t i = 0; i < msg->result_count; i++) {
        af_target_t *t = &msg->results [i];
        json_array_append_new (targets, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
            "deviceId", t->device_id, "name", t->name, "state", t->state, "versionName", t->version_name,
            "reason", t->reason, "bytes", (json_int_t) 0, "total", (json_int_t) 0));
    }
    json_t *entry = json_pack ("{s:s, s:s, s:I, s:o}", "pushId", msg->push_id, "program", msg->program,
                               "at", (json_int_t) zclock_time (), "targets", targets);
    json_array_append_new (self->pushes, entry);
    s_pushes_save (self);
    return entry;                       //  borrowed: the list owns it
}

//  --------------------------------------------------------------------------
//  Offers this device received: one job each, handled one at a time in
//  the order they arrived

static void
s_job_free (void **item)
{
    job_t *job = (job_t *) *item;
    if (job) {
        af_download_destroy (&job->download);
        af_install_cmd_destroy (&job->cmd);
        if (*job->part)
            unlink (job->part);
        free (job);
        *item = NULL;
    }
}

static job_t *
s_job_find (af_node_t *self, const char *push_id)
{
    for (job_t *job = (job_t *) zlistx_first (self->jobs); job; job = (job_t *) zlistx_next (self->jobs))
        if (streq (job->push, push_id))
            return job;
    return NULL;
}

//  Report the job's outcome; the job stays until the broker's OK
static void
s_job_report (af_node_t *self, job_t *job, const char *state, uint32_t files, const char *format, ...)
{
    (void) self;
    char reason [AF_MAX_REASON + 1] = "";
    if (format) {
        va_list args;
        va_start (args, format);
        vsnprintf (reason, sizeof reason, format, args);
        va_end (args);
    }
    af_download_destroy (&job->download);
    af_install_cmd_destroy (&job->cmd);
    if (*job->part) {
        unlink (job->part);
        job->part [0] = 0;
    }
    job->state = JOB_REPORTING;
    snprintf (job->outcome, sizeof job->outcome, "%s", state);
    snprintf (job->reason, sizeof job->reason, "%s", reason);
    job->files = files;
    if (streq (state, "failed"))
        zsys_warning ("node: push %s of %s failed: %s", job->push, job->program, reason);
    else
        zsys_info ("node: push %s: %s %s %s", job->push, job->program, job->package.version_name, state);
    job->reported_at = 0;               //  send now
}

static void
s_job_send_done (af_node_t *self, job_t *job)
{
    af_msg_t *done = af_msg_new (AF_MSG_DONE);
    snprintf (done->push_id, sizeof done->push_id, "%s", job->push);
    snprintf (done->state, sizeof done->state, "%s", job->outcome);
    snprintf (done->version_name, sizeof done->version_name, "%s", job->package.version_name);
    snprintf (done->reason, sizeof done->reason, "%s", job->reason);
    done->files = job->files;
    pending_t *pending = s_request (self, NULL, "done", done);
    memcpy (job->done_rid, pending->hex, sizeof job->done_rid);
    job->reported_at = zclock_mono ();
}

static void
s_job_fetch (af_node_t *self, job_t *job)
{
    af_msg_t *fetch = af_msg_new (AF_MSG_FETCH);
    snprintf (fetch->hash, sizeof fetch->hash, "%s", job->fetch_hash);
    fetch->offset = af_download_received (job->download);
    fetch->credit = NODE_CREDIT;
    job->refetched = fetch->offset > 0 || job->fetch_login != 0;
    job->fetch_login = self->logins;
    job->owed = 0;
    job->last_chunk = zclock_mono ();
    pending_t *pending = s_request (self, NULL, "fetch", fetch);
    memcpy (job->fetch_rid, pending->hex, sizeof job->fetch_rid);
}

//  How many files the install record of a program lists
static uint32_t
s_record_files (af_node_t *self, const char *program)
{
    char path [700];
    snprintf (path, sizeof path, "%s/installed/%s.json", self->config.home, program);
    json_error_t jerr;
    json_t *record = json_load_file (path, 0, &jerr);
    uint32_t files = (uint32_t) json_array_size (json_object_get (record, "files"));
    json_decref (record);
    return files;
}

//  The package is installed: done, unless user data comes with it
static void
s_job_installed (af_node_t *self, job_t *job, uint32_t files)
{
    //  The account's configuration of the app, if any, follows it (S1.9)
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (s_config_key (self, key))
        s_config_get (self, NULL, "config-install", job->program, false);
    sodium_memzero (key, sizeof key);
    if (!*job->data_hash) {
        s_job_report (self, job, "installed", files, NULL);
        return;
    }
    char err [AF_MAX_REASON + 1];
    af_download_destroy (&job->download);
    if (*job->part)
        unlink (job->part);
    job->files = files;
    job->data_phase = true;
    snprintf (job->part, sizeof job->part, "%s/incoming/%s.data", self->config.home, job->push);
    snprintf (job->fetch_hash, sizeof job->fetch_hash, "%s", job->data_hash);
    job->fetch_total = job->data_total;
    job->download = af_download_new (job->part, job->data_hash, job->data_total, err, sizeof err);
    if (!job->download) {
        s_job_report (self, job, "failed", files, "installed, but the user data cannot be received: %s", err);
        return;
    }
    job->state = JOB_FETCHING;
    zsys_info ("node: receiving the user data of %s (%llu bytes)", job->program,
               (unsigned long long) job->data_total);
    s_job_fetch (self, job);
}

//  The user data is in and verified: it replaces the app's data directory
static void
s_job_import (af_node_t *self, job_t *job)
{
    char err [AF_MAX_REASON + 1];
    af_download_keep (job->download);
    af_download_destroy (&job->download);
    if (af_install_data (self->config.home, "data", job->program, job->part, err, sizeof err))
        s_job_report (self, job, "failed", job->files, "installed, but the user data was not imported: %s", err);
    else
        s_job_report (self, job, "installed", job->files, "with the user data of device %.8s", job->from);
}

//  The package is in and verified: install it
static void
s_job_install (af_node_t *self, job_t *job)
{
    af_install_info_t info;
    memset (&info, 0, sizeof info);
    snprintf (info.program, sizeof info.program, "%s", job->program);
    snprintf (info.version_name, sizeof info.version_name, "%s", job->package.version_name);
    info.version_code = job->package.version_code;
    snprintf (info.hash, sizeof info.hash, "%s", job->package.hash);
    snprintf (info.push_id, sizeof info.push_id, "%s", job->push);
    info.installed_at = (uint64_t) zclock_time ();
    char err [AF_MAX_REASON + 1];
    af_download_keep (job->download);
    af_download_destroy (&job->download);
    if (*self->config.install_cmd) {
        snprintf (info.method, sizeof info.method, "command");
        job->info = info;
        char log [600];
        snprintf (log, sizeof log, "%s/install.log", self->config.home);
        job->cmd = af_install_cmd_start (self->config.install_cmd, job->part, &info,
                                         self->config.install_timeout_s * 1000, log, err, sizeof err);
        if (!job->cmd)
            s_job_report (self, job, "failed", 0, "%s", err);
        else
            job->state = JOB_INSTALLING;
        return;
    }
    snprintf (info.method, sizeof info.method, "builtin");
    if (af_install_builtin (self->config.home, job->part, &info, err, sizeof err))
        s_job_report (self, job, "failed", 0, "%s", err);
    else {
        s_report (self, "install", &info);
        s_job_installed (self, job, s_record_files (self, job->program));
    }
}

//  Start the first job if none is running
static void
s_jobs_run (af_node_t *self)
{
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (!job || !self->logged_in)
        return;
    if (job->state == JOB_REPORTING) {
        if (job->reported_at == 0)
            s_job_send_done (self, job);
        return;
    }
    if (job->state != JOB_WAITING)
        return;
    char err [AF_MAX_REASON + 1];
    if (job->fit == AF_FIT_STORE_LINK || !*job->package.hash) {
        //  Nothing to download: record the link for the user, report it
        char path [700];
        snprintf (path, sizeof path, "%s/links/%s.json", self->config.home, job->program);
        json_t *link = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "program", job->program,
                                  "storeLink", job->package.store_link, "versionName",
                                  job->package.version_name, "pushId", job->push, "from", job->from,
                                  "at", (json_int_t) zclock_time ());
        if (zsys_dir_create ("%s/links", self->config.home) || json_dump_file (link, path, JSON_COMPACT))
            s_job_report (self, job, "failed", 0, "cannot record the store link in %s", path);
        else
            s_job_report (self, job, "store-link", 0, "%s", job->package.store_link);
        json_decref (link);
        return;
    }
    //  The same package installed already (a repeated offer, or the node
    //  stopped after installing and before the broker heard): a no-op
    af_install_info_t info;
    if (af_install_record_read (self->config.home, job->program, &info) == 0
    &&  streq (info.hash, job->package.hash)) {
        s_job_installed (self, job, 0);
        return;
    }
    snprintf (job->part, sizeof job->part, "%s/incoming/%s.part", self->config.home, job->push);
    snprintf (job->fetch_hash, sizeof job->fetch_hash, "%s", job->package.hash);
    job->fetch_total = job->package.size;
    job->download = af_download_new (job->part, job->package.hash, job->package.size, err, sizeof err);
    if (!job->download) {
        s_job_report (self, job, "failed", 0, "%s", err);
        return;
    }
    job->state = JOB_FETCHING;
    if (job->package.size == 0) {
        s_job_install (self, job);
        return;
    }
    zsys_info ("node: receiving %s %s (%llu bytes) for push %s", job->program, job->package.version_name,
               (unsigned long long) job->package.size, job->push);
    s_job_fetch (self, job);
}

//  Return owed credit, as the rate limit allows
static void
s_job_credit (af_node_t *self, job_t *job)
{
    if (job->state != JOB_FETCHING || job->owed == 0)
        return;
    uint32_t give = job->owed;
    if (self->config.rate_kib) {
        int64_t now = zclock_mono ();
        double rate = (double) self->config.rate_kib * 1024;
        job->tokens += rate * (double) (now - job->tokens_at) / 1000;
        job->tokens_at = now;
        if (job->tokens > rate)
            job->tokens = rate;     //  no bursts beyond one second's worth
        give = 0;
        while (give < job->owed && job->tokens >= AF_MAX_CHUNK) {
            job->tokens -= AF_MAX_CHUNK;
            give++;
        }
    }
    if (give == 0)
        return;
    af_msg_t *credit = af_msg_new (AF_MSG_CREDIT);
    snprintf (credit->hash, sizeof credit->hash, "%s", job->fetch_hash);
    credit->credit = give;
    if (s_broker_send (self, credit) == 0)
        job->owed -= give;
    af_msg_destroy (&credit);
}

static void
s_on_chunk (af_node_t *self, af_msg_t *msg)
{
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (!job || job->state != JOB_FETCHING || !streq (job->fetch_hash, msg->hash)) {
        zsys_warning ("node: dropped a chunk of %.16s...: no transfer of it is running", msg->hash);
        return;
    }
    char err [AF_MAX_REASON + 1];
    if (job->refetched && msg->offset < af_download_received (job->download)) {
        //  Sent for the FETCH before the last one, still in flight: we have
        //  these bytes, and the broker's new transfer does not count it
        return;
    }
    int rc = af_download_chunk (job->download, msg, err, sizeof err);
    job->last_chunk = zclock_mono ();
    if (rc < 0 && job->data_phase)
        s_job_report (self, job, "failed", job->files, "installed, but the user data failed: %s", err);
    else
    if (rc < 0)
        s_job_report (self, job, "failed", 0, "%s", err);
    else
    if (rc == 1 && job->data_phase)
        s_job_import (self, job);
    else
    if (rc == 1)
        s_job_install (self, job);
    else {
        job->owed++;
        s_job_credit (self, job);
    }
    s_jobs_run (self);
}

//  An outbox item: decode what it carries, act, acknowledge results
static void
s_on_item (af_node_t *self, af_msg_t *item)
{
    char err [AF_MAX_REASON + 1];
    af_msg_t *msg = NULL;
    int code = af_msg_decode (item->body, item->body_size, &msg, err, sizeof err, NULL, NULL);
    if (code == AF_OK && msg->id == AF_MSG_UNINSTALL) {
        char err [AF_MAX_REASON + 1];
        if (s_uninstall_local (self, msg->program, err, sizeof err))
            zsys_info ("node: device %.8s asked to uninstall %s: %s", msg->from, msg->program, err);
        af_msg_t *ack = af_msg_new (AF_MSG_ACK);
        memcpy (ack->item, item->item, sizeof ack->item);
        s_broker_send (self, ack);
        af_msg_destroy (&ack);
        af_msg_destroy (&msg);
        return;
    }
    if (code != AF_OK || (msg->id != AF_MSG_OFFER && msg->id != AF_MSG_RESULT)) {
        //  Acknowledge it anyway: a bad item must not block the queue
        zsys_warning ("node: dropped outbox item %s: %s", item->item,
                      code != AF_OK? err: "not an OFFER or RESULT");
        af_msg_t *ack = af_msg_new (AF_MSG_ACK);
        memcpy (ack->item, item->item, sizeof ack->item);
        s_broker_send (self, ack);
        af_msg_destroy (&ack);
        af_msg_destroy (&msg);
        return;
    }
    if (msg->id == AF_MSG_RESULT) {
        json_t *push = s_push_find (self, msg->push_id);
        if (!push) {
            //  Started before this node's pushes.json was lost: keep it anyway
            push = json_pack ("{s:s, s:s, s:I, s:[]}", "pushId", msg->push_id, "program", msg->program,
                              "at", (json_int_t) zclock_time (), "targets");
            json_array_append_new (self->pushes, push);
        }
        if (streq (msg->device_id, self->device_id))
            zhashx_delete (self->auto_installs, msg->program);
        json_t *target = s_push_target (push, msg->device_id, true);
        json_object_set_new (target, "state", json_string (msg->state));
        json_object_set_new (target, "versionName", json_string (msg->version_name));
        json_object_set_new (target, "reason", json_string (msg->reason));
        json_object_set_new (target, "finishedAt", json_integer ((json_int_t) zclock_time ()));
        s_pushes_save (self);
        zsys_info ("node: push %s of %s: device %s %s%s%s", msg->push_id, msg->program, msg->device_id,
                   msg->state, *msg->reason? ": ": "", msg->reason);
        af_msg_t *ack = af_msg_new (AF_MSG_ACK);
        memcpy (ack->item, item->item, sizeof ack->item);
        s_broker_send (self, ack);
        af_msg_destroy (&ack);
    }
    else {
        job_t *job = s_job_find (self, msg->push_id);
        if (job) {
            //  Delivered again after a reconnect: we are on it already (and
            //  asked again at the login, unless that FETCH is still to go)
            if (job->state == JOB_FETCHING && job == zlistx_first (self->jobs)
            &&  job->fetch_login != self->logins)
                s_job_fetch (self, job);
            else
            if (job->state == JOB_REPORTING)
                job->reported_at = 0;
        }
        else
        if (zlistx_size (self->jobs) >= NODE_MAX_JOBS)
            zsys_warning ("node: %d offers queued; offer %s waits for redelivery", NODE_MAX_JOBS, msg->push_id);
        else {
            job = (job_t *) zmalloc (sizeof (job_t));
            assert (job);
            snprintf (job->push, sizeof job->push, "%s", msg->push_id);
            snprintf (job->program, sizeof job->program, "%s", msg->program);
            snprintf (job->from, sizeof job->from, "%s", msg->from);
            snprintf (job->item, sizeof job->item, "%s", item->item);
            job->package = msg->package;
            job->fit = msg->fit;
            snprintf (job->data_hash, sizeof job->data_hash, "%s", msg->data_hash);
            job->data_total = msg->data_total;
            job->state = JOB_WAITING;
            job->tokens_at = zclock_mono ();
            zlistx_add_end (self->jobs, job);
            zsys_info ("node: offered %s %s by device %s (push %s)", msg->program,
                       msg->package.version_name, msg->from, msg->push_id);
        }
        s_jobs_run (self);
    }
    af_msg_destroy (&msg);
}

//  Timer work for jobs: install commands, stalls, unanswered reports
static void
s_jobs_tick (af_node_t *self)
{
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (!job)
        return;
    int64_t now = zclock_mono ();
    if (job->state == JOB_INSTALLING) {
        char err [AF_MAX_REASON + 1];
        int rc = af_install_cmd_poll (job->cmd, err, sizeof err);
        if (rc == 0) {
            if (af_install_record_write (self->config.home, &job->info, NULL, err, sizeof err))
                s_job_report (self, job, "failed", 0, "installed, but %s", err);
            else {
                s_report (self, "install", &job->info);
                s_job_installed (self, job, 0);
            }
        }
        else
        if (rc < 0)
            s_job_report (self, job, "failed", 0, "%s", err);
    }
    else
    if (job->state == JOB_FETCHING) {
        s_job_credit (self, job);
        //  Chunks in flight but none for a while: the broker lost the
        //  transfer (it restarted, or our connection changed); resume
        if (job->owed < NODE_CREDIT && self->logged_in && now - job->last_chunk > NODE_STALL_MS) {
            zsys_warning ("node: no chunk of %s for %d s; asking again from byte %llu", job->program,
                          NODE_STALL_MS / 1000, (unsigned long long) af_download_received (job->download));
            s_job_fetch (self, job);
        }
    }
    else
    if (job->state == JOB_REPORTING && job->reported_at
    &&  now - job->reported_at > self->config.request_timeout_ms)
        job->reported_at = 0;           //  no OK came: report again
    s_jobs_run (self);
}

//  --------------------------------------------------------------------------
//  User data sent with a push (S2.8): packed, uploaded to the broker under
//  its credit, then the PUSH names it

static void
s_upload_free (upload_t **upload_p)
{
    upload_t *upload = *upload_p;
    if (upload) {
        if (upload->fd >= 0)
            close (upload->fd);
        unlink (upload->path);
        af_msg_destroy (&upload->push);
        zframe_destroy (&upload->client);
        free (upload);
        *upload_p = NULL;
    }
}

//  Send the chunks the broker's credit allows
static void
s_upload_pump (af_node_t *self)
{
    upload_t *upload = self->upload;
    while (upload && upload->credit && upload->sent < upload->total) {
        size_t want = upload->total - upload->sent < AF_MAX_CHUNK?
                      (size_t) (upload->total - upload->sent): AF_MAX_CHUNK;
        ssize_t got = pread (upload->fd, self->chunk_raw, want, (off_t) upload->sent);
        if (got != (ssize_t) want) {
            s_ctl_error (self, upload->client, AF_E_INTERNAL, "cannot read %s: %s", upload->path,
                         got < 0? strerror (errno): "it shrank");
            s_upload_free (&self->upload);
            return;
        }
        af_msg_t *chunk = af_msg_new (AF_MSG_CHUNK);
        snprintf (chunk->hash, sizeof chunk->hash, "%s", upload->hash);
        chunk->offset = upload->sent;
        chunk->total = upload->total;
        chunk->size = (uint32_t) want;
        size_t packed = ZSTD_compress (self->chunk_packed, self->chunk_packed_size, self->chunk_raw, want, 1);
        chunk->zstd = !ZSTD_isError (packed) && packed < want;
        chunk->data = chunk->zstd? self->chunk_packed: self->chunk_raw;     //  borrowed
        chunk->data_size = (uint32_t) (chunk->zstd? packed: want);
        int rc = s_broker_send (self, chunk);
        chunk->data = NULL;
        af_msg_destroy (&chunk);
        if (rc)
            return;                     //  not connected: the request will time out
        upload->sent += want;
        upload->credit--;
    }
}

//  The CLI asked for a push with the app's data: pack it, then UPLOAD
static void
s_upload_start (af_node_t *self, zframe_t *client, af_msg_t *push)
{
    char dir [600], err [AF_MAX_REASON + 1];
    snprintf (dir, sizeof dir, "%s/data/%s", self->config.home, push->program);
    struct stat st;
    if (stat (dir, &st) || !S_ISDIR (st.st_mode)) {
        s_ctl_error (self, client, AF_E_MALFORMED, "no data to send: %s is not a directory", dir);
        af_msg_destroy (&push);
        return;
    }
    if (self->upload) {
        s_ctl_error (self, client, AF_E_UNAVAILABLE, "another push's data is being sent; try again later");
        af_msg_destroy (&push);
        return;
    }
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    assert (upload);
    upload->fd = -1;
    upload->push = push;
    upload->client = zframe_dup (client);
    uint8_t rand [8];
    randombytes_buf (rand, sizeof rand);
    char tag [17];
    sodium_bin2hex (tag, sizeof tag, rand, sizeof rand);
    snprintf (upload->path, sizeof upload->path, "%s/incoming/data-%s.tar", self->config.home, tag);
    self->upload = upload;
    if (af_install_pack_dir (dir, upload->path, err, sizeof err)) {
        s_ctl_error (self, client, AF_E_MALFORMED, "cannot pack the data: %s", err);
        s_upload_free (&self->upload);
        return;
    }
    //  Its hash and size name it on the broker
    upload->fd = open (upload->path, O_RDONLY | O_CLOEXEC);
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, AF_HASH_SIZE);
    ssize_t n = 0;
    while (upload->fd >= 0 && (n = read (upload->fd, self->chunk_raw, AF_MAX_CHUNK)) > 0) {
        crypto_generichash_update (&state, self->chunk_raw, (size_t) n);
        upload->total += (uint64_t) n;
    }
    uint8_t hash [AF_HASH_SIZE];
    crypto_generichash_final (&state, hash, sizeof hash);
    sodium_bin2hex (upload->hash, sizeof upload->hash, hash, sizeof hash);
    if (upload->fd < 0 || n < 0 || upload->total > AF_MAX_DATA) {
        s_ctl_error (self, client, AF_E_MALFORMED, upload->total > AF_MAX_DATA?
                     "the data is larger than 256 MiB": "cannot read the packed data");
        s_upload_free (&self->upload);
        return;
    }
    memcpy (push->data_hash, upload->hash, sizeof push->data_hash);
    push->data_total = upload->total;
    af_msg_t *msg = af_msg_new (AF_MSG_UPLOAD);
    memcpy (msg->hash, upload->hash, sizeof msg->hash);
    msg->total = upload->total;
    pending_t *pending = s_request (self, NULL, "upload", msg);
    memcpy (upload->rid, pending->hex, sizeof upload->rid);
    zsys_info ("node: sending %llu bytes of %s's data to the broker", (unsigned long long) upload->total,
               push->program);
}

//  The broker's answer to our UPLOAD: credit, then OK (it has the data)
//  or ERROR
static void
s_upload_answer (af_node_t *self, pending_t *pending, af_msg_t *msg)
{
    upload_t *upload = self->upload;
    if (!upload || !streq (upload->rid, pending->hex))
        return;
    if (msg->id == AF_MSG_CREDIT) {
        upload->credit += msg->credit;
        pending->deadline = zclock_mono () + self->config.request_timeout_ms;
        s_upload_pump (self);
    }
    else
    if (msg->id == AF_MSG_OK) {
        s_request (self, upload->client, "push", upload->push);
        upload->push = NULL;
        s_upload_free (&self->upload);
    }
    else {
        s_ctl_error (self, upload->client, (int) msg->code, "the broker refused the data: %s", msg->reason);
        s_upload_free (&self->upload);
    }
}

//  --------------------------------------------------------------------------
//  Install reports (S0.1, S0.2, S1.5, S1.8): every install and uninstall is
//  queued in HOME/reports/ with this device's own rising seq, and sent to
//  the broker in order, one at a time, each removed when the broker says
//  OK. After every login they go first, before any sync request.

//  Send the next queued report, if the broker is ready for it
static void
s_reports_flush (af_node_t *self)
{
    if (!self->logged_in || *self->report_rid || self->listing)
        return;
    af_report_t report;
    if (!af_reports_next (self->reports, self->acked_seq, &report)) {
        if (self->catching_up) {
            self->catching_up = false;
            //  Configuration edits made offline go next, then what others
            //  changed meanwhile comes back; then the held sync requests
            s_config_scan (self);
            const char *program;
            json_t *entry;
            json_object_foreach (json_object_get (self->shares, "shared"), program, entry)
                s_config_get (self, NULL, "config-sync", program, false);
            s_flush_unsent (self);
        }
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_REPORT);
    msg->seq = report.seq;
    snprintf (msg->op, sizeof msg->op, "%s", report.op);
    snprintf (msg->program, sizeof msg->program, "%s", report.program);
    snprintf (msg->version_name, sizeof msg->version_name, "%s", report.version_name);
    snprintf (msg->hash, sizeof msg->hash, "%s", report.hash);
    msg->version_code = report.version_code;
    msg->at = report.at;
    pending_t *pending = s_request (self, NULL, "report", msg);
    memcpy (self->report_rid, pending->hex, sizeof self->report_rid);
}

//  Queue a report of an install or uninstall on this device
static void
s_report (af_node_t *self, const char *op, const af_install_info_t *info)
{
    af_report_t report;
    memset (&report, 0, sizeof report);
    report.seq = self->next_seq++;
    s_state_save (self);
    snprintf (report.op, sizeof report.op, "%s", op);
    snprintf (report.program, sizeof report.program, "%s", info->program);
    snprintf (report.version_name, sizeof report.version_name, "%s", info->version_name);
    report.version_code = info->version_code;
    snprintf (report.hash, sizeof report.hash, "%s", info->hash);
    report.at = info->installed_at? info->installed_at: (uint64_t) zclock_time ();
    af_reports_add (self->reports, &report);
    s_reports_flush (self);
}

//  This device's install list, from its install records
static af_msg_t *
s_install_list (af_node_t *self)
{
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    json_t *doc = s_installed_doc (self);
    json_t *installed = json_object_get (doc, "installed");
    size_t count = json_array_size (installed) < AF_MAX_APPS? json_array_size (installed): AF_MAX_APPS;
    af_msg_set_app_count (list, (uint32_t) count);
    for (size_t i = 0; i < count; i++) {
        json_t *record = json_array_get (installed, i);
        af_app_t *app = &list->apps [i];
        const char *text;
        text = json_string_value (json_object_get (record, "program"));
        snprintf (app->program, sizeof app->program, "%s", text? text: "");
        text = json_string_value (json_object_get (record, "versionName"));
        snprintf (app->version_name, sizeof app->version_name, "%s", text? text: "");
        text = json_string_value (json_object_get (record, "hash"));
        snprintf (app->hash, sizeof app->hash, "%s", text? text: "");
        app->version_code = (uint64_t) json_integer_value (json_object_get (record, "versionCode"));
        app->at = (uint64_t) json_integer_value (json_object_get (record, "installedAt"));
    }
    json_decref (doc);
    return list;
}

//  After LOGIN_OK: the broker has applied our reports up to broker_seq.
//  If it knows less than we know it had (its store was lost), or more
//  than we ever sent (our home was lost), the whole list goes instead.
static void
s_reports_login (af_node_t *self, uint64_t broker_seq, bool send_list)
{
    self->report_rid [0] = 0;
    self->catching_up = true;
    //  First contact (nothing sent, nothing known) sends the list too, so
    //  apps installed before this device ever logged in are known
    if (broker_seq < self->acked_seq || broker_seq >= self->next_seq
    ||  (broker_seq == 0 && self->acked_seq == 0) || send_list) {
        uint64_t seq = broker_seq >= self->next_seq? broker_seq + 1: self->next_seq;
        self->next_seq = seq + 1;
        s_state_save (self);
        af_msg_t *list = s_install_list (self);
        list->seq = seq;
        zsys_info ("node: sending the whole install list (%s; the broker has our reports up to %llu, we sent up to %llu)",
                   send_list? "the broker asks for it": "to mend a lost state", (unsigned long long) broker_seq,
                   (unsigned long long) self->acked_seq);
        pending_t *pending = s_request (self, NULL, "list", list);
        memcpy (self->list_rid, pending->hex, sizeof self->list_rid);
        self->listing = true;
        return;
    }
    self->acked_seq = broker_seq;
    af_reports_drop (self->reports, broker_seq);
    s_reports_flush (self);
}

//  The broker's answer to a REPORT or LIST
static void
s_reports_answer (af_node_t *self, pending_t *pending, af_msg_t *msg)
{
    if (streq (pending->verb, "list") && streq (pending->hex, self->list_rid)) {
        self->listing = false;
        self->list_rid [0] = 0;
        if (msg->id == AF_MSG_OK) {
            self->acked_seq = self->next_seq - 1;
            s_state_save (self);
            af_reports_drop (self->reports, self->acked_seq);
        }
    }
    else
    if (streq (pending->verb, "report") && streq (pending->hex, self->report_rid)) {
        self->report_rid [0] = 0;
        af_report_t report;
        if (af_reports_next (self->reports, self->acked_seq, &report) && msg->id == AF_MSG_OK) {
            self->acked_seq = report.seq;
            s_state_save (self);
            af_reports_drop (self->reports, report.seq);
        }
        if (msg->id != AF_MSG_OK)
            zsys_warning ("node: the broker did not store a report: %s; sending it again later", msg->reason);
    }
    if (msg->id == AF_MSG_OK)
        s_reports_flush (self);
}

//  Uninstall a program here and report it. 0, or -1 with err.
static int
s_uninstall_local (af_node_t *self, const char *program, char *err, size_t errlen)
{
    af_install_info_t info;
    char path [700];
    if (strlen (program) > AF_MAX_PROGRAM || strchr (program, '/') || *program == '.'
    ||  af_install_record_read (self->config.home, program, &info)) {
        snprintf (err, errlen, "%s is not installed here", program);
        return -1;
    }
    snprintf (path, sizeof path, "%s/installed/%s.json", self->config.home, program);
    if (af_install_remove (self->config.home, program, err, errlen))
        return -1;
    if (unlink (path)) {
        snprintf (err, errlen, "cannot remove %s: %s", path, strerror (errno));
        return -1;
    }
    info.installed_at = (uint64_t) zclock_time ();
    s_report (self, "uninstall", &info);
    zsys_info ("node: uninstalled %s", program);
    return 0;
}

//  --------------------------------------------------------------------------
//  Configuration that follows the app (S1.6, S1.7, S1.9). HOME/config.key
//  holds the account's configuration key (derived from the account secret
//  the user gave this device); HOME/config-share.json the apps the user
//  agreed to share, with the time of the last version sent or applied, and
//  the apps whose account configuration waits for the user's yes.

static bool
s_config_key (af_node_t *self, uint8_t *key)
{
    char path [600];
    snprintf (path, sizeof path, "%s/config.key", self->config.home);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && read (fd, key, AF_CONFIG_KEY_SIZE) == AF_CONFIG_KEY_SIZE;
    if (fd >= 0)
        close (fd);
    return ok;
}

static void
s_config_save (af_node_t *self)
{
    s_json_save (self, "config-share.json", self->shares);
}

static void
s_config_load (af_node_t *self)
{
    json_t *doc = s_json_load (self, "config-share.json");
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
        s_config_save (self);
    }
}

static void
s_config_get (af_node_t *self, zframe_t *client, const char *verb, const char *program, bool previous)
{
    af_msg_t *msg = af_msg_new (AF_MSG_CONFIG_GET);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    msg->previous = previous;
    s_request (self, client, verb, msg);
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
    if (!at || at <= s_config_known (self, program) || !s_config_key (self, key))
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
    pending_t *pending = s_request (self, NULL, "config-put", msg);
    snprintf (pending->program, sizeof pending->program, "%s", program);
    zsys_info ("node: sent the configuration of %s (%zu bytes, sealed)", program, size);
}

//  Every shared app: send what changed (edits made offline go at login)
static void
s_config_scan (af_node_t *self)
{
    if (!self->logged_in || self->catching_up)
        return;
    const char *program;
    json_t *entry;
    json_object_foreach (json_object_get (self->shares, "shared"), program, entry)
        s_config_upload (self, program);
}

//  The account's configuration arrived; verb says why we asked
static void
s_config_answer (af_node_t *self, pending_t *pending, af_msg_t *msg)
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
        s_config_save (self);
        zsys_info ("node: the account has a configuration for %s; apply it with: appferry config apply %s",
                   msg->program, msg->program);
        return;
    }
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!s_config_key (self, key)) {
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
        s_config_save (self);
        zsys_info ("node: applied the account's configuration of %s", msg->program);
    }
}

//  `config apply`: apply now (the user said yes); `config show`: open the
//  version into a scratch directory and show its files
static json_t *
s_config_doc (af_node_t *self, pending_t *pending, af_msg_t *msg, char *err, size_t errlen)
{
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!s_config_key (self, key)) {
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
            s_config_save (self);
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

//  --------------------------------------------------------------------------
//  Automatic mode (S1.9): install here what the other devices have, when a
//  package fits, as they report it (and after every login)

static void
s_auto_sync (af_node_t *self)
{
    if (self->config.sync_auto && self->logged_in)
        s_request_held (self, NULL, "auto-sync", af_msg_new (AF_MSG_SYNC));
}

//  Ask the broker to install a program on this device, from the store
static pending_t *
s_install_self (af_node_t *self, zframe_t *client, const char *program)
{
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    snprintf (push->program, sizeof push->program, "%s", program);
    push->target_count = 1;
    strcpy (push->targets [0], "self");
    return s_request (self, client, "push", push);
}

static void
s_auto_diff (af_node_t *self, af_msg_t *diff)
{
    af_install_info_t info;
    for (uint32_t i = 0; i < diff->app_count; i++) {
        af_app_t *app = &diff->apps [i];
        //  What another device has now (not what the account once had), that fits
        if (!*app->device_id || (app->fit != AF_FIT_PACKAGE && app->fit != AF_FIT_STORE_LINK)
        ||  zhashx_lookup (self->auto_installs, app->program)
        ||  af_install_record_read (self->config.home, app->program, &info) == 0)
            continue;
        zhashx_insert (self->auto_installs, app->program, (void *) 1);
        zsys_info ("node: automatic mode: installing %s (device %.8s has it)", app->program, app->device_id);
        s_install_self (self, NULL, app->program);
    }
}

//  A program and a comma-separated list of devices (or "all") from the CLI,
//  into a PUSH or an UNINSTALL; err says what is wrong ("" if nothing)
static void
s_program_targets (af_msg_t *msg, const char *program, char *targets, char *err, size_t errlen)
{
    if (strlen (program) > AF_MAX_PROGRAM || !*program) {
        snprintf (err, errlen, "program ID must be 1..%d characters", AF_MAX_PROGRAM);
        return;
    }
    strcpy (msg->program, program);
    char *saved = NULL;
    for (char *t = strtok_r (targets, ",", &saved); t; t = strtok_r (NULL, ",", &saved)) {
        if (msg->target_count == AF_MAX_TARGETS || strlen (t) > AF_ID_HEX) {
            snprintf (err, errlen, "'%s' is not a device ID (or more than %d devices)", t, AF_MAX_TARGETS);
            return;
        }
        strcpy (msg->targets [msg->target_count++], t);
    }
    if (msg->target_count == 0)
        snprintf (err, errlen, "name at least one device, or all");
}

//  --------------------------------------------------------------------------
//  CLI commands

static int
s_ctl_event (zloop_t *loop, zsock_t *reader, void *arg)
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
            s_ctl_error (self, client, AF_E_MALFORMED, "a request is 1..%d frames of at most %d bytes",
                         NODE_CTL_MAX_FRAMES, NODE_CTL_MAX_FRAME);
        goto done;
    }
    char *verb = zmsg_popstr (request);
    char *arg1 = zmsg_popstr (request);
    char *arg2 = zmsg_popstr (request);
    char *arg3 = zmsg_popstr (request);

    if (streq (verb, "status"))
        s_ctl_reply (self, client, true, s_status_doc (self));
    else
    if (streq (verb, "stop")) {
        s_ctl_reply (self, client, true, json_pack ("{s:b}", "stopped", 1));
        self->stopping = true;
    }
    else
    if ((streq (verb, "register") || streq (verb, "login")) && arg1 && arg2) {
        if (strlen (arg1) > AF_MAX_ACCOUNT || strlen (arg2) > AF_MAX_PASSWORD)
            s_ctl_error (self, client, AF_E_MALFORMED, "account or password too long");
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
                        s_broker_send (self, logout);
                        af_msg_destroy (&logout);
                        self->logged_in = false;
                    }
                }
                msg->device = self->device;
                msg->has_device = true;
                self->login_error [0] = 0;
            }
            s_request (self, client, verb, msg);
        }
    }
    else
    if (streq (verb, "push") && arg1 && arg2) {
        if (!self->logged_in)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_PUSH);
            char err [AF_MAX_REASON + 1] = "";
            s_program_targets (msg, arg1, arg2, err, sizeof err);
            if (*err) {
                s_ctl_error (self, client, AF_E_MALFORMED, "%s", err);
                af_msg_destroy (&msg);
            }
            else {
                s_attest (self, msg);
                msg->with_data = arg3 && streq (arg3, "data");
                if (msg->with_data)
                    s_upload_start (self, client, msg);
                else
                    s_request (self, client, verb, msg);
            }
        }
    }
    else
    if (streq (verb, "push-status") && arg1) {
        json_t *push = s_push_find (self, arg1);
        if (push)
            s_ctl_reply (self, client, true, json_deep_copy (push));
        else
            s_ctl_error (self, client, AF_E_NO_DEVICE, "no push %s known to this node", arg1);
    }
    else
    if (streq (verb, "installed"))
        s_ctl_reply (self, client, true, s_installed_doc (self));
    else
    if (streq (verb, "sync") || (streq (verb, "apps") && arg1)) {
        if (!self->logged_in)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else
        if (streq (verb, "sync"))
            s_request_held (self, client, verb, af_msg_new (AF_MSG_SYNC));
        else
        if (strlen (arg1) != AF_ID_HEX)
            s_ctl_error (self, client, AF_E_MALFORMED, "'%s' is not a device ID", arg1);
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_APPS);
            strcpy (msg->device_id, arg1);
            s_request_held (self, client, verb, msg);
        }
    }
    else
    if (strncmp (verb, "config-", 7) == 0 && arg1) {
        uint8_t key [AF_CONFIG_KEY_SIZE];
        char path [600], err [AF_MAX_REASON + 1];
        bool program_ok = strlen (arg1) <= AF_MAX_PROGRAM && *arg1 && !strchr (arg1, '/') && *arg1 != '.';
        if (!*self->account)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "log in first: the key belongs to the account");
        else
        if (streq (verb, "config-secret")) {
            if (strlen (arg1) < 12)
                s_ctl_error (self, client, AF_E_MALFORMED, "the account secret must be at least 12 characters");
            else
            if (af_config_derive (self->account, arg1, key, err, sizeof err))
                s_ctl_error (self, client, AF_E_INTERNAL, "%s", err);
            else {
                snprintf (path, sizeof path, "%s/config.key", self->config.home);
                int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                bool ok = fd >= 0 && write (fd, key, sizeof key) == (ssize_t) sizeof key && fsync (fd) == 0;
                if (fd >= 0)
                    ok = close (fd) == 0 && ok;
                if (ok)
                    s_ctl_reply (self, client, true, json_pack ("{s:b}", "keySet", 1));
                else
                    s_ctl_error (self, client, AF_E_INTERNAL, "cannot write %s: %s", path, strerror (errno));
            }
            sodium_memzero (key, sizeof key);
        }
        else
        if (!program_ok)
            s_ctl_error (self, client, AF_E_MALFORMED, "'%s' is not a program ID", arg1);
        else
        if (!s_config_key (self, key))
            s_ctl_error (self, client, AF_E_MALFORMED, "set the account secret first: appferry config secret");
        else
        if (streq (verb, "config-share")) {
            json_t *shared = json_object_get (self->shares, "shared");
            if (!json_object_get (shared, arg1))
                json_object_set_new (shared, arg1, json_pack ("{s:I}", "at", (json_int_t) 0));
            s_config_save (self);
            //  Ours goes out if it is newer; the account's comes in if that is
            s_config_scan (self);
            if (self->logged_in)
                s_config_get (self, NULL, "config-sync", arg1, false);
            s_ctl_reply (self, client, true, json_pack ("{s:s, s:b}", "program", arg1, "shared", 1));
        }
        else
        if (streq (verb, "config-unshare")) {
            json_object_del (json_object_get (self->shares, "shared"), arg1);
            s_config_save (self);
            s_ctl_reply (self, client, true, json_pack ("{s:s, s:b}", "program", arg1, "shared", 0));
        }
        else
        if ((streq (verb, "config-apply") || streq (verb, "config-show")) && !self->logged_in)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not connected to the broker");
        else
        if (streq (verb, "config-apply") || streq (verb, "config-show"))
            s_config_get (self, client, verb, arg1, arg2 && streq (arg2, "previous"));
        else
            s_ctl_error (self, client, AF_E_UNKNOWN_COMMAND, "unknown config command");
        sodium_memzero (key, sizeof key);
    }
    else
    if (streq (verb, "install") && arg1) {
        if (!self->logged_in)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else
        if (strlen (arg1) > AF_MAX_PROGRAM || !*arg1)
            s_ctl_error (self, client, AF_E_MALFORMED, "program ID must be 1..%d characters", AF_MAX_PROGRAM);
        else
            s_install_self (self, client, arg1);
    }
    else
    if (streq (verb, "apps")) {
        af_msg_t *list = s_install_list (self);
        snprintf (list->device_id, sizeof list->device_id, "%s", self->device_id);
        s_ctl_reply (self, client, true, s_apps_doc (self, list));
        af_msg_destroy (&list);
    }
    else
    if (streq (verb, "uninstall") && arg1 && arg2) {
        //  On other devices: through their durable outboxes
        if (!self->logged_in)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_UNINSTALL);
            char err [AF_MAX_REASON + 1] = "";
            s_program_targets (msg, arg1, arg2, err, sizeof err);
            if (*err) {
                s_ctl_error (self, client, AF_E_MALFORMED, "%s", err);
                af_msg_destroy (&msg);
            }
            else
                s_request (self, client, "uninstall-on", msg);
        }
    }
    else
    if (streq (verb, "uninstall") && arg1) {
        char err [AF_MAX_REASON + 1];
        if (s_uninstall_local (self, arg1, err, sizeof err))
            s_ctl_error (self, client, AF_E_MALFORMED, "%s", err);
        else
            s_ctl_reply (self, client, true, json_pack ("{s:s, s:b}", "program", arg1, "uninstalled", 1));
    }
    else
    if (streq (verb, "notifications"))
        s_ctl_reply (self, client, true, json_pack ("{s:O, s:I}", "notifications", self->inbox,
                                                    "received", (json_int_t) self->notifications));
    else
    if (streq (verb, "notify") && arg1 && arg2) {
        if (!self->logged_in)
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "not logged in; run: appferry login ACCOUNT");
        else
        if (strlen (arg1) != AF_ID_HEX || strlen (arg2) > AF_MAX_BODY)
            s_ctl_error (self, client, AF_E_MALFORMED, "usage: notify DEVICE-ID TEXT");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_NOTIFY);
            strcpy (msg->device_id, arg1);
            strcpy (msg->kind, "text");
            af_msg_set_body (msg, arg2, strlen (arg2));
            s_request (self, client, verb, msg);
        }
    }
    else
    if (streq (verb, "logout") || streq (verb, "devices") || streq (verb, "resolve")) {
        if (!self->logged_in && !(streq (verb, "devices") && self->list))
            s_ctl_error (self, client, AF_E_NOT_LOGGED_IN, "%s",
                         *self->login_error? self->login_error:
                         self->connected? "not logged in; run: appferry login ACCOUNT":
                         "not connected to the broker (is it running?)");
        else
        if (streq (verb, "logout"))
            s_request (self, client, verb, af_msg_new (AF_MSG_LOGOUT));
        else
        if (streq (verb, "devices")) {
            if (self->list && !(arg1 && streq (arg1, "refresh")))
                s_ctl_reply (self, client, true, s_devices_doc (self, self->list, "pushed"));
            else
                s_request (self, client, verb, af_msg_new (AF_MSG_DEVICES));
        }
        else
        if (!arg1 || strlen (arg1) > AF_MAX_PROGRAM)
            s_ctl_error (self, client, AF_E_MALFORMED, "usage: resolve PROGRAM");
        else {
            af_msg_t *msg = af_msg_new (AF_MSG_RESOLVE);
            strcpy (msg->program, arg1);
            s_request (self, client, verb, msg);
        }
    }
    else
        s_ctl_error (self, client, AF_E_UNKNOWN_COMMAND, "unknown or incomplete command '%s'", verb);
    zstr_free (&verb);
    zstr_free (&arg1);
    zstr_free (&arg2);
    zstr_free (&arg3);
done:
    zframe_destroy (&client);
    zmsg_destroy (&request);
    return self->stopping? -1: 0;
}

//  --------------------------------------------------------------------------
//  Timer: heartbeats, reconnects, request deadlines

static int
s_timer_event (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    af_node_t *self = (af_node_t *) arg;
    int64_t now = zclock_mono ();
    if (self->connected && now - self->last_rx > (int64_t) self->heartbeat_ms * self->config.liveness) {
        zsys_warning ("node: broker silent for %d ms; reconnecting",
                      self->heartbeat_ms * self->config.liveness);
        s_connect (self);
    }
    //  Ping every heartbeat when connected; every tick until then
    if (!self->connected || now - self->last_ping >= self->heartbeat_ms) {
        af_msg_t *ping = af_msg_new (AF_MSG_PING);
        if (s_broker_send (self, ping) == 0)
            self->last_ping = now;
        else
        if (self->connected && zmq_errno () == EAGAIN) {
            zsys_warning ("node: lost the connection to %s", self->config.broker);
            self->connected = false;
            self->logged_in = false;
        }
        af_msg_destroy (&ping);
    }
    zlistx_t *expired = zlistx_new ();
    for (pending_t *p = (pending_t *) zhashx_first (self->pending); p;
         p = (pending_t *) zhashx_next (self->pending))
        if (now > p->deadline)
            zlistx_add_end (expired, p);
    for (pending_t *p = (pending_t *) zlistx_first (expired); p; p = (pending_t *) zlistx_next (expired)) {
        if (p->client && p->unsent)
            s_ctl_error (self, p->client, AF_E_UNAVAILABLE,
                         "not connected to the broker at %s (is it running?)", self->config.broker);
        else
        if (p->client)
            s_ctl_error (self, p->client, AF_E_UNAVAILABLE, "the broker did not answer within %d ms",
                         self->config.request_timeout_ms);
        if (streq (p->verb, "auto-login"))
            self->auto_login [0] = 0;
        if (streq (p->verb, "report") && streq (p->hex, self->report_rid))
            self->report_rid [0] = 0;
        if (streq (p->verb, "list") && streq (p->hex, self->list_rid))
            self->listing = false;
        zhashx_delete (self->pending, p->hex);
    }
    zlistx_destroy (&expired);
    s_jobs_tick (self);
    if (now - self->reports_at >= 1000) {
        self->reports_at = now;
        s_reports_flush (self);         //  retries what the broker did not take
    }
    if (now - self->config_at >= 1000) {
        self->config_at = now;
        s_config_scan (self);           //  edits of shared configurations go out
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Life cycle

af_node_t *
af_node_new (const af_node_config_t *config, char *err, size_t errlen)
{
    af_node_t *self = (af_node_t *) zmalloc (sizeof (af_node_t));
    assert (self);
    self->config = *config;
    self->heartbeat_ms = config->heartbeat_ms;
    char path [600];
    if (af_device_load (&self->device, config->device_file, err, errlen))
        goto failed;
    if (zsys_dir_create ("%s", config->home)) {
        snprintf (err, errlen, "cannot create home %s: %s", config->home, strerror (errno));
        goto failed;
    }
    chmod (config->home, 0700);
    self->broker_cert = zcert_load (config->broker_key);
    if (!self->broker_cert) {
        snprintf (err, errlen, "cannot read the broker's public key from %s", config->broker_key);
        goto failed;
    }
    snprintf (path, sizeof path, "%s/node.cert_secret", config->home);
    self->cert = zcert_load (path);
    if (!self->cert) {
        self->cert = zcert_new ();
        zcert_set_meta (self->cert, "role", "appferry node");
        snprintf (path, sizeof path, "%s/node.cert", config->home);
        if (!self->cert || zcert_save (self->cert, path)) {
            snprintf (err, errlen, "cannot save the node keypair to %s", path);
            goto failed;
        }
    }
    self->next_seq = 1;
    s_state_load (self);
    if (self->next_seq == 0)
        self->next_seq = 1;
    //  A package half received before a stop is useless: the offer comes
    //  again after login and starts over
    snprintf (path, sizeof path, "%s/incoming", config->home);
    zdir_t *incoming = zdir_new (path, "-");
    zfile_t **parts = incoming? zdir_flatten (incoming): NULL;
    for (size_t i = 0; parts && parts [i]; i++)
        zfile_remove (parts [i]);
    zdir_flatten_free (&parts);
    zdir_destroy (&incoming);
    if (zsys_dir_create ("%s/incoming", config->home) || zsys_dir_create ("%s/apps", config->home)
    ||  zsys_dir_create ("%s/installed", config->home)) {
        snprintf (err, errlen, "cannot create directories in %s: %s", config->home, strerror (errno));
        goto failed;
    }
    snprintf (path, sizeof path, "%s/reports", config->home);
    self->reports = af_reports_new (path);
    if (!self->reports) {
        snprintf (err, errlen, "cannot open the report queue %s", path);
        goto failed;
    }
    self->pushes = json_array ();
    s_pushes_load (self);
    self->jobs = zlistx_new ();
    zlistx_set_destructor (self->jobs, s_job_free);
    self->auto_installs = zhashx_new ();
    s_config_load (self);
    self->chunk_raw = (uint8_t *) malloc (AF_MAX_CHUNK);
    self->chunk_packed_size = ZSTD_compressBound (AF_MAX_CHUNK);
    self->chunk_packed = (uint8_t *) malloc (self->chunk_packed_size);
    assert (self->chunk_raw && self->chunk_packed);
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_pending_free);
    self->inbox = json_array ();
    self->loop = zloop_new ();

    //  The CLI socket: only this user may talk to the node
    snprintf (path, sizeof path, "%s/node.sock", config->home);
    if (strlen (path) >= sizeof (((struct sockaddr_un *) 0)->sun_path)) {
        snprintf (err, errlen, "home path too long for an ipc socket: %s", path);
        goto failed;
    }
    self->ctl = zsock_new (ZMQ_ROUTER);
    mode_t old = umask (0077);
    unlink (path);
    int rc = zsock_bind (self->ctl, "ipc://%s", path);
    umask (old);
    if (rc) {
        snprintf (err, errlen, "cannot bind ipc://%s: %s", path, zmq_strerror (zmq_errno ()));
        goto failed;
    }
    chmod (path, 0600);
    zloop_reader (self->loop, self->ctl, s_ctl_event, self);
    if (s_connect (self)) {
        snprintf (err, errlen, "cannot connect to the broker at %s", config->broker);
        goto failed;
    }
    zloop_timer (self->loop, NODE_TICK_MS, 0, s_timer_event, self);
    return self;
failed:
    af_node_destroy (&self);
    return NULL;
}

void
af_node_destroy (af_node_t **self_p)
{
    assert (self_p);
    af_node_t *self = *self_p;
    if (!self)
        return;
    if (self->ctl) {
        char path [600];
        snprintf (path, sizeof path, "%s/node.sock", self->config.home);
        zsock_destroy (&self->ctl);
        unlink (path);
    }
    zloop_destroy (&self->loop);
    zsock_destroy (&self->dealer);
    zhashx_destroy (&self->pending);
    af_msg_destroy (&self->list);
    json_decref (self->inbox);
    json_decref (self->pushes);
    af_reports_destroy (&self->reports);
    zlistx_destroy (&self->jobs);
    zhashx_destroy (&self->auto_installs);
    json_decref (self->shares);
    s_upload_free (&self->upload);
    free (self->chunk_raw);
    free (self->chunk_packed);
    zcert_destroy (&self->cert);
    zcert_destroy (&self->broker_cert);
    free (self);
    *self_p = NULL;
}

int
af_node_run (af_node_t *self)
{
    zsys_info ("node: device '%s' (%s %s), home %s, broker %s", self->device.name,
               self->device.platform, self->device.os_version, self->config.home, self->config.broker);
    if (*self->account)
        zsys_info ("node: will log in to '%s' as device %s", self->account, self->device_id);
    zloop_start (self->loop);
    //  A clean stop tells the broker at once rather than by heartbeat expiry
    if (self->logged_in) {
        af_msg_t *logout = af_msg_new (AF_MSG_LOGOUT);
        s_broker_send (self, logout);
        af_msg_destroy (&logout);
        zclock_sleep (50);
    }
    zsys_info ("node: stopped");
    return 0;
}
