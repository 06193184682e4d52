/*  =========================================================================
    af_node - the device node: one per device, talks to the broker for it

    This file is the node's frame: its life cycle, the connection to the
    broker, the login and the session, the dispatch of what the broker
    sends on its own (a table indexed by command; answers go to their
    requests, node_request.c), and the timer (heartbeats, reconnects,
    deadlines, retries). What the node does is in one file per concern,
    over node_int.h: node_cli (the CLI socket and its verb table),
    node_docs (the JSON the CLI gets), node_jobs (offers received),
    node_upload (user data sent with a push), node_getdata (a GET's user
    data, on both ends), node_reports (install reports), node_config
    (shared configurations), node_pushes (pushes this device starts,
    automatic mode), node_notify (notifications).

    The node reconnects by itself: it PINGs every heartbeat; silence for
    heartbeat x liveness drops and re-creates the connection; a PONG that
    says the connection has no session (the broker restarted) triggers a
    LOGIN by key with the saved device ID. Whatever ends a session (that
    PONG, DISCONNECT, an ERROR 440, a new connection, a LOGOUT) goes
    through node_session_end, which drops the requests the node makes
    again after the next login.
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

//  --------------------------------------------------------------------------
//  Saved state: HOME/node.state

void
node_state_save (af_node_t *self)
{
    char path [600], text [300], err [AF_MAX_REASON + 1];
    snprintf (path, sizeof path, "%s/node.state", self->config.home);
    int len = snprintf (text, sizeof text, "account=%s\ndevice_id=%s\nnext_seq=%llu\nacked_seq=%llu\n", self->account,
                        self->device_id, (unsigned long long) self->next_seq, (unsigned long long) self->acked_seq);
    //  Whole and durable, the directory too: a rename lost in a crash
    //  would bring back an older next_seq, and seqs would be used twice
    if (af_file_write (path, text, (size_t) len, 0600, err, sizeof err) != AF_OK)
        zsys_error ("node: cannot save node.state: %s", err);
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
//  Broker connection

static int s_dealer_event (zloop_t *loop, zsock_t *reader, void *arg);

//  The brokers given: one endpoint, or several (a cluster), comma-separated
static int
s_endpoints (af_node_t *self, char *err, size_t errlen)
{
    const char *at = self->config.broker;
    while (*at) {
        size_t len = strcspn (at, ",");
        const char *start = at;
        while (len && (*start == ' ' || *start == '\t'))
            start++, len--;
        while (len && (start [len - 1] == ' ' || start [len - 1] == '\t'))
            len--;
        if (len == 0 || len > AF_MAX_ENDPOINT || self->endpoint_count == NODE_MAX_ENDPOINTS) {
            snprintf (err, errlen, "broker endpoints: at most %d, each 1..%d characters, comma-separated",
                      NODE_MAX_ENDPOINTS, AF_MAX_ENDPOINT);
            return -1;
        }
        memcpy (self->endpoints [self->endpoint_count], start, len);
        self->endpoints [self->endpoint_count++][len] = 0;
        at += strcspn (at, ",");
        at += *at == ',';
    }
    if (self->endpoint_count == 0) {
        snprintf (err, errlen, "no broker endpoint");
        return -1;
    }
    snprintf (self->endpoint, sizeof self->endpoint, "%s", self->endpoints [0]);
    return 0;
}

void
node_redirect (af_node_t *self, af_msg_t *msg)
{
    if (++self->redirects > NODE_MAX_REDIRECTS) {
        //  Sent round in circles (a shard map on the move): a pause
        zsys_warning ("node: %u redirects without a login; waiting %d ms", self->redirects - 1,
                      NODE_REDIRECT_WAIT_MS);
        self->redirects = 0;
        node_requests_resend (self, 0);
        self->reconnect_at = zclock_mono () + NODE_REDIRECT_WAIT_MS;
        return;
    }
    if (!*msg->endpoint) {
        //  A failover or a hand-off under way: the same broker is asked
        //  again in a second, on this connection (SPEC 5.36). A new one
        //  each second would be a CURVE handshake each, from every device
        //  of the shard, on the brokers that are about to take it over
        zsys_info ("node: %s says shard %u has no owner yet; asking it again in %d ms", self->endpoint,
                   msg->shard, NODE_REDIRECT_WAIT_MS);
        if (!msg->has_rid && self->logged_in)
            node_session_end (self);        //  our session there is gone: we log in again by key
        node_requests_resend (self, NODE_REDIRECT_WAIT_MS);
        return;
    }
    zsys_info ("node: %s says shard %u is owned by %s (epoch %llu); going there", self->endpoint, msg->shard,
               msg->endpoint, (unsigned long long) msg->epoch);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", msg->endpoint);
    node_requests_resend (self, 0);
    self->reconnect_at = zclock_mono ();    //  at the next tick: not from inside the socket's own reader
}

//  A new connection (at start, and after a silence): what was sent on the
//  old one will not be answered
static int
s_connect (af_node_t *self)
{
    if (self->dealer) {
        zloop_reader_end (self->loop, self->dealer);
        zsock_destroy (&self->dealer);
    }
    self->connected = false;
    node_session_end (self);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer)
        return -1;
    zcert_apply (self->cert, self->dealer);
    zsock_set_curve_serverkey (self->dealer, zcert_public_txt (self->broker_cert));
    zsock_set_immediate (self->dealer, 1);
    zsock_set_sndtimeo (self->dealer, 0);
    zsock_set_linger (self->dealer, 0);
    zsock_set_maxmsgsize (self->dealer, AF_MAX_ZMQ_MSG);
    int reconnect_ms = self->heartbeat_ms < NODE_RECONNECT_MAX_IVL_MS? self->heartbeat_ms:
                       NODE_RECONNECT_MAX_IVL_MS;
    zsock_set_reconnect_ivl (self->dealer, reconnect_ms);
    zsock_set_reconnect_ivl_max (self->dealer, reconnect_ms * NODE_RECONNECT_BACKOFF);
    self->reconnect_at = 0;
    if (zsock_connect (self->dealer, "%s", self->endpoint)) {
        zsys_error ("node: cannot connect to %s: %s", self->endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->last_rx = zclock_mono ();
    zloop_reader (self->loop, self->dealer, s_dealer_event, self);
    return 0;
}

int
node_send (af_node_t *self, af_msg_t *msg)
{
    return af_msg_send (msg, self->dealer, NULL);
}

//  --------------------------------------------------------------------------
//  Login and session (protocol/SPEC.md 8.3)

void
node_session_end (af_node_t *self)
{
    self->logged_in = false;
    node_requests_session_end (self);
}

//  LOGIN_OK, to our own LOGIN or the user's: the session is open
void
node_login_ok (af_node_t *self, af_msg_t *msg)
{
    self->logged_in = true;
    self->logins++;
    self->redirects = 0;
    self->switching = false;
    //  Beat at least as often as the broker expects
    if (msg->heartbeat >= 50 && (int) msg->heartbeat < self->heartbeat_ms)
        self->heartbeat_ms = (int) msg->heartbeat;
    self->login_error [0] = 0;
    self->login_retry [0] = 0;
    self->login_failures = 0;
    self->login_retry_at = 0;
    snprintf (self->standby, sizeof self->standby, "%s",
              strncmp (msg->endpoint, "tcp://", 6) || streq (msg->endpoint, self->endpoint)? "": msg->endpoint);
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
    //  The reports first, then what waited for the session
    node_reports_login (self, msg->report_seq, msg->send_list);
    node_auto_sync (self);
    node_jobs_login (self);
    node_requests_renew (self);
    node_requests_flush (self);
}

//  The user logged out: no automatic login after
void
node_logged_out (af_node_t *self)
{
    node_session_end (self);
    self->account [0] = self->device_id [0] = 0;
    af_msg_destroy (&self->list);
    node_state_save (self);
}

//  After an automatic login the broker could not serve (5xx): the wait
//  before the next (node_backoff_ms)
static int
s_login_backoff (af_node_t *self)
{
    return node_backoff_ms (self->login_failures, NODE_LOGIN_RETRY_MIN_MS, NODE_LOGIN_RETRY_MAX_MS);
}

//  The answer to our own LOGIN. A 4xx says it will fail again as it is
//  (unknown account or device, another key, ...): the node stops logging
//  in by itself until the user logs in with a password, and status says
//  why. A 5xx says the broker's side failed (a full disk, say): the node
//  tries again after a back-off.
static bool
s_auto_login_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    (void) pending;
    self->auto_login [0] = 0;
    if (answer && answer->id == AF_MSG_LOGIN_OK)
        node_login_ok (self, answer);
    else
    if (answer && answer->id == AF_MSG_ERROR && answer->code >= 500) {
        self->login_failures++;
        int wait = s_login_backoff (self);
        self->login_retry_at = zclock_mono () + wait;
        snprintf (self->login_retry, sizeof self->login_retry, "%s: %s",
                  af_code_name ((int) answer->code), answer->reason);
        zsys_warning ("node: automatic login failed: %s; trying again in %d ms", self->login_retry, wait);
    }
    else
    if (answer && answer->id == AF_MSG_ERROR) {
        if (answer->code == AF_E_REMOVED)
            node_forget_device (self);
        snprintf (self->login_error, sizeof self->login_error, "%s: %s",
                  af_code_name ((int) answer->code), answer->reason);
        self->login_retry [0] = 0;
        zsys_warning ("node: automatic login refused: %s (log in again with a password)",
                      self->login_error);
    }
    return true;
}

void
node_forget_device (af_node_t *self)
{
    zsys_warning ("node: device %s was removed from '%s'; forgetting its ID (a login with the "
                  "password adds this device again as a new one)", self->device_id, self->account);
    self->device_id [0] = 0;
    node_state_save (self);
}

//  Log in again by key with the saved device ID (no password)
static void
s_login_by_key (af_node_t *self)
{
    if (!*self->account || !*self->device_id || *self->auto_login || *self->login_error
    ||  self->switching || zclock_mono () < self->login_retry_at)
        return;
    af_msg_t *login = af_msg_new (AF_MSG_LOGIN);
    snprintf (login->account, sizeof login->account, "%s", self->account);
    snprintf (login->device_id, sizeof login->device_id, "%s", self->device_id);
    login->device = self->device;
    login->has_device = true;
    pending_t *pending = node_request (self, s_auto_login_answer, 0, NULL, login);
    if (self->login_failures)
        zsys_info ("node: logging in again to '%s' (attempt %u)", self->account, self->login_failures + 1);
    memcpy (self->auto_login, pending->hex, sizeof self->auto_login);
}

//  --------------------------------------------------------------------------
//  What the broker sends on its own (not answers), by command

static void
s_on_pong (af_node_t *self, af_msg_t **msg_p)
{
    if (self->logged_in && !(*msg_p)->logged_in) {
        zsys_info ("node: the broker lost our session (restarted?); logging in again");
        node_session_end (self);
    }
    if (!self->logged_in)
        s_login_by_key (self);
}

static void
s_on_disconnect (af_node_t *self, af_msg_t **msg_p)
{
    //  Our device logged in on another connection (another process with
    //  our keypair?): do not fight over the session
    node_session_end (self);
    snprintf (self->login_error, sizeof self->login_error, "disconnected by the broker: %s", (*msg_p)->reason);
    zsys_warning ("node: %s; not logging in again until told to", self->login_error);
}

//  Pushed on every change in the account's devices: kept
static void
s_on_device_list (af_node_t *self, af_msg_t **msg_p)
{
    af_msg_destroy (&self->list);
    self->list = *msg_p;
    *msg_p = NULL;
    self->list_at = zclock_time ();
    self->lists_received++;
    if (self->config.verbose)
        zsys_info ("node: device list received (%u devices)", self->list->device_count);
}

static const struct {
    node_pushed_fn *handle;
    bool or_answer;                 //  with a rid it answers a request instead
} s_pushed [AF_MSG_COUNT] = {
    [AF_MSG_PONG]           = { s_on_pong, false },
    [AF_MSG_DISCONNECT]     = { s_on_disconnect, false },
    [AF_MSG_DEVICE_LIST]    = { s_on_device_list, true },
    [AF_MSG_NOTIFY]         = { node_on_notify, false },
    [AF_MSG_ITEM]           = { node_on_item, false },
    [AF_MSG_CHUNK]          = { node_jobs_chunk, false },
    [AF_MSG_CREDIT]         = { node_upload_credit, true },
    [AF_MSG_PROGRESS]       = { node_push_progress, false },
};

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
        zsys_info ("node: connected to %s", self->endpoint);
        node_requests_flush (self);
    }
    node_pushed_fn *handle = s_pushed [msg->id].handle;
    if (msg->id == AF_MSG_REDIRECT)
        node_redirect (self, msg);      //  an answer or not: the request goes again, there
    else
    if (handle && !(s_pushed [msg->id].or_answer && msg->has_rid))
        handle (self, &msg);
    else
    if (msg->has_rid) {
        node_requests_answer (self, msg);
        node_jobs_run (self);
    }
    else
    if (msg->id == AF_MSG_ERROR)
        zsys_warning ("node: broker error %s: %s", af_code_name ((int) msg->code), msg->reason);
    else
        zsys_warning ("node: unexpected %s from the broker", af_msg_command_name (msg->id));
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
    //  Silence: one broker we wait for (libzmq reconnects by itself); of
    //  several (a cluster) the next, connected or not: the one we know
    //  may be gone for good, and any other sends us to its successor
    bool silent = now - self->last_rx > (int64_t) self->heartbeat_ms * self->config.liveness;
    if (silent && (self->connected || self->endpoint_count > 1 || *self->standby)) {
        //  With several brokers (a cluster) the next one: the owner of our
        //  shard may be gone, and any broker sends us to its successor.
        //  First the one our LOGIN_OK named as the successor (its standby,
        //  SPEC 5.3): our LOGIN waits there for its claim. Once
        if (*self->standby) {
            snprintf (self->endpoint, sizeof self->endpoint, "%s", self->standby);
            self->standby [0] = 0;
        }
        else
        if (self->endpoint_count > 1) {
            self->endpoint_at = (self->endpoint_at + 1) % self->endpoint_count;
            snprintf (self->endpoint, sizeof self->endpoint, "%s", self->endpoints [self->endpoint_at]);
        }
        zsys_warning ("node: broker silent for %d ms; reconnecting to %s",
                      self->heartbeat_ms * self->config.liveness, self->endpoint);
        s_connect (self);
    }
    if (self->reconnect_at && now >= self->reconnect_at) {
        zsys_info ("node: trying %s again", self->endpoint);
        s_connect (self);
    }
    //  Ping every heartbeat when connected; every tick until then
    if (!self->connected || now - self->last_ping >= self->heartbeat_ms) {
        af_msg_t *ping = af_msg_new (AF_MSG_PING);
        if (node_send (self, ping) == 0)
            self->last_ping = now;
        else
        if (self->connected && zmq_errno () == EAGAIN) {
            zsys_warning ("node: lost the connection to %s", self->endpoint);
            self->connected = false;
            node_session_end (self);
        }
        af_msg_destroy (&ping);
    }
    node_requests_expire (self);
    node_jobs_tick (self);
    node_getdata_tick (self);
    if (now - self->reports_at >= NODE_REPORTS_RETRY_MS) {
        self->reports_at = now;
        node_reports_flush (self);      //  retries what the broker did not take
    }
    if (now - self->config_at >= NODE_CONFIG_SCAN_MS) {
        self->config_at = now;
        node_config_scan (self);        //  edits of shared configurations go out
    }
    node_requests_flush (self);         //  whatever may go now
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
    if (s_endpoints (self, err, errlen))
        goto failed;
    char path [600];
    if (af_device_load (&self->device, config->device_file, err, errlen) != AF_OK)
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
    self->reapers = zlistx_new ();
    zlistx_set_destructor (self->reapers, (zlistx_destructor_fn *) af_install_task_destroy);
    zlistx_set_destructor (self->jobs, node_job_free);
    //  An install command may have been running when the node stopped:
    //  it must be gone before anything can be installed again; and what
    //  installs and removals stopped half-way left is removed
    if (node_trust_setup (self, err, errlen) || node_intent_setup (self, err, errlen)
    ||  node_intent_recover (self, err, errlen))
        goto failed;
    char why [AF_MAX_REASON + 1];
    size_t stale;
    if (af_install_clean_stale (config->home, &stale, why, sizeof why) != AF_OK)
        zsys_warning ("node: %s", why);
    else
    if (stale > 0)
        zsys_info ("node: removed %zu leftovers of installs stopped half-way", stale);
    self->auto_installs = zhashx_new ();
    node_config_load (self);
    self->chunk_raw = (uint8_t *) malloc (AF_MAX_CHUNK);
    self->chunk_packed_size = ZSTD_compressBound (AF_MAX_CHUNK);
    self->chunk_packed = (uint8_t *) malloc (self->chunk_packed_size);
    assert (self->chunk_raw && self->chunk_packed);
    node_requests_new (self);
    node_getdata_new (self);
    self->inbox = json_array ();
    node_record_start (self);           //  GET records kept for an install (5.47a)
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
    node_requests_destroy (self);
    node_friends_destroy (self);
    af_msg_destroy (&self->list);
    json_decref (self->inbox);
    json_decref (self->pushes);
    af_reports_destroy (&self->reports);
    zlistx_destroy (&self->jobs);
    zlistx_destroy (&self->reapers);    //  stopped: the rest goes at the next start
    zhashx_destroy (&self->auto_installs);
    json_decref (self->shares);
    node_upload_free (&self->upload);
    node_getdata_destroy (self);
    free (self->chunk_raw);
    free (self->chunk_packed);
    zcert_destroy (&self->cert);
    zcert_destroy (&self->broker_cert);
    json_decref (self->trust);
    if (self->trust_cache)
        af_trust_cache_destroy (&self->trust_cache);
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
    return AF_OK;
}
