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
//  Saved state: HOME/node.state

void
node_state_save (af_node_t *self)
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
//  Broker connection, requests, login

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

int
node_send (af_node_t *self, af_msg_t *msg)
{
    return af_msg_send (msg, self->dealer, NULL);
}

//  Track a request; send it now or when connected. Takes msg.
pending_t *
node_request (af_node_t *self, zframe_t *client, const char *verb, af_msg_t *msg)
{
    pending_t *pending = (pending_t *) zmalloc (sizeof (pending_t));
    assert (pending);
    af_msg_set_rid_random (msg);
    sodium_bin2hex (pending->hex, sizeof pending->hex, msg->rid, AF_ID_SIZE);
    pending->client = client? zframe_dup (client): NULL;
    snprintf (pending->verb, sizeof pending->verb, "%s", verb);
    pending->deadline = zclock_mono () + self->config.request_timeout_ms;
    if (self->connected && node_send (self, msg) == 0)
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
pending_t *
node_request_held (af_node_t *self, zframe_t *client, const char *verb, af_msg_t *msg)
{
    if (!self->catching_up)
        return node_request (self, client, verb, msg);
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
    pending_t *pending = node_request (self, NULL, "auto-login", login);
    memcpy (self->auto_login, pending->hex, sizeof self->auto_login);
}

void
node_flush_unsent (af_node_t *self)
{
    for (pending_t *p = (pending_t *) zhashx_first (self->pending); p;
         p = (pending_t *) zhashx_next (self->pending))
        if (p->unsent && !(self->catching_up && streq (p->verb, "sync"))
        &&  node_send (self, p->unsent) == 0) {
            af_msg_destroy (&p->unsent);
            p->deadline = zclock_mono () + self->config.request_timeout_ms;
        }
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
        node_flush_unsent (self);
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
        node_on_chunk (self, msg);
    else
    if (msg->id == AF_MSG_CREDIT && !msg->has_rid) {
        if (self->upload && streq (self->upload->hash, msg->hash)) {
            self->upload->credit += msg->credit;
            node_upload_pump (self);
        }
    }
    else
    if (msg->id == AF_MSG_ITEM)
        node_on_item (self, msg);
    else
    if (msg->id == AF_MSG_PROGRESS) {
        json_t *push = node_push_find (self, msg->push_id);
        json_t *target = push? node_push_target (push, msg->device_id, false): NULL;
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
            node_auto_sync (self);
        char program [AF_MAX_PROGRAM + 1] = "";
        if (streq (msg->kind, "config") && msg->body_size <= AF_MAX_PROGRAM) {
            memcpy (program, msg->body, msg->body_size);
            program [msg->body_size] = 0;
            if (json_object_get (json_object_get (self->shares, "shared"), program))
                node_config_get (self, NULL, "config-sync", program, false);
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
                    node_state_save (self);
                }
                zsys_info ("node: logged in to '%s' as device %s", self->account, self->device_id);
                node_reports_login (self, msg->report_seq, msg->send_list);
                node_auto_sync (self);
                //  A transfer under way lost its broker side with the old session
                job_t *job = (job_t *) zlistx_first (self->jobs);
                if (job && job->state == JOB_FETCHING)
                    node_job_fetch (self, job);
                else
                if (job && job->state == JOB_REPORTING)
                    job->reported_at = 0;
            }
            else
            if (streq (pending->verb, "fetch") && msg->id == AF_MSG_ERROR) {
                job_t *job = (job_t *) zlistx_first (self->jobs);
                if (job && job->state == JOB_FETCHING && streq (job->fetch_rid, hex))
                    node_job_report (self, job, "failed", 0, "the broker cannot send the package: %s (%s)",
                                  msg->reason, af_code_name ((int) msg->code));
            }
            else
            if (streq (pending->verb, "report") || streq (pending->verb, "list"))
                node_reports_answer (self, pending, msg);
            else
            if (streq (pending->verb, "auto-sync") && msg->id == AF_MSG_SYNC_DIFF)
                node_auto_diff (self, msg);
            else
            if (streq (pending->verb, "config-sync") || streq (pending->verb, "config-install"))
                node_config_answer (self, pending, msg);
            else
            if (streq (pending->verb, "config-put")) {
                if (msg->id == AF_MSG_OK)       //  did a newer version win meanwhile?
                    node_config_get (self, NULL, "config-sync", pending->program, false);
                else
                    zsys_warning ("node: the broker refused a configuration: %s", msg->reason);
            }
            else
            if (streq (pending->verb, "upload")) {
                node_upload_answer (self, pending, msg);
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
                node_state_save (self);
            }
            if (streq (pending->verb, "auto-login"))
                self->auto_login [0] = 0;
            node_answer (self, pending, msg);
            zhashx_delete (self->pending, hex);
            node_jobs_run (self);
        }
    }
    else
    if (msg->id == AF_MSG_ERROR)
        zsys_warning ("node: broker error %s: %s", af_code_name ((int) msg->code), msg->reason);
    af_msg_destroy (&msg);
    return 0;
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
        if (node_send (self, ping) == 0)
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
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE,
                         "not connected to the broker at %s (is it running?)", self->config.broker);
        else
        if (p->client)
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE, "the broker did not answer within %d ms",
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
    node_jobs_tick (self);
    if (now - self->reports_at >= 1000) {
        self->reports_at = now;
        node_reports_flush (self);         //  retries what the broker did not take
    }
    if (now - self->config_at >= 1000) {
        self->config_at = now;
        node_config_scan (self);           //  edits of shared configurations go out
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
    node_pushes_load (self);
    self->jobs = zlistx_new ();
    zlistx_set_destructor (self->jobs, node_job_free);
    self->auto_installs = zhashx_new ();
    node_config_load (self);
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
    zloop_reader (self->loop, self->ctl, node_cli_event, self);
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
    node_upload_free (&self->upload);
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
        node_send (self, logout);
        af_msg_destroy (&logout);
        zclock_sleep (50);
    }
    zsys_info ("node: stopped");
    return 0;
}
