/*  =========================================================================
    fleet_device - one simulated device's dialog with the broker

    What a spec-only node does, in the order SPEC 8 describes it:

    * A new connection sends PING every 100 ms until its first answer
      (SPEC 8.1); then the device registers its account (the account's
      first device only, SPEC 5.1) or waits for that, and logs in: with
      the password the first time (no deviceId), by key afterwards.
    * After LOGIN_OK it beats at the smaller of --heartbeat and the
      broker's heartbeat, sends its queued reports first (fleet_reports),
      resends the outcomes of offers the broker had not confirmed, and
      with --auto-sync asks SYNC once the reports went.
    * A broker silent for heartbeat x liveness is gone: the socket is
      closed and a new one opened, on the next broker of --broker after a
      jittered wait. A PONG without loggedIn, or ERROR 440, means the
      session is gone (a broker restart: libzmq reconnected under us):
      log in again by key at once. A 5xx at login is retried with the
      node's back-off (1 s doubling to 60 s, upper half); a 4xx stops the
      device, as SPEC 8.3 says.

    Answers are matched to requests by rid; the rid carries the device's
    index and the slot, so finding the request costs nothing. Every
    answer is checked: its command against the request's, and its fields
    (account, device ID, the device's own entry in DEVICE_LIST).
    =========================================================================
*/
#include "fleet_int.h"

#include <math.h>

bool
fleet_device_is_online (fleet_device_t *device)
{
    return device->state == DEV_ONLINE;
}

//  Every state change goes through here, so the counters stay right
static void
s_state (fleet_t *self, fleet_device_t *device, fleet_state_t state)
{
    if (device->state == state)
        return;
    fleet_state_t before = (fleet_state_t) device->state;
    if (before == DEV_ONLINE)
        self->online--;
    if (before == DEV_AWAY)
        self->away--;
    if (before == DEV_FAILED)
        self->failed--;
    device->state = (uint8_t) state;
    if (state == DEV_AWAY)
        self->away++;
    if (state == DEV_FAILED)
        self->failed++;
    if (state == DEV_ONLINE)
        self->online++;
}

//  After a restart mark (SIGUSR1), the moment every device that is not
//  away has logged in again is the fleet's time back online
static void
s_back_online (fleet_t *self, fleet_device_t *device, int64_t now)
{
    if (self->restart_mark && device->login_at < self->restart_mark) {
        self->back_count++;
        if (self->back_count + self->away + self->failed >= self->device_count) {
            self->stats.back_online_ms = now - self->restart_mark;
            self->stats.back_online_devices = self->back_count;
            printf ("fleet: back online: %u devices logged in again %.2f s after the restart mark\n",
                    self->back_count, (double) self->stats.back_online_ms / 1000);
            fflush (stdout);
            self->restart_mark = 0;
        }
    }
    if (self->move_mark && device->displaced) {
        device->displaced = false;
        self->displaced_back++;
        self->displaced_last = now;
        fleet_hist_add (&self->stats.moved_hist, (uint64_t) (now - self->move_mark) * 1000);
    }
    device->login_at = now;
}

void
fleet_device_describe (fleet_t *self, fleet_device_t *device, af_device_t *out)
{
    char name [AF_MAX_NAME + 1];
    const fleet_model_t *model = &fleet_models [device->model];
    snprintf (name, sizeof name, "%s %s %u", self->accounts [device->account].name,
              af_form_name (model->form), device->index - self->accounts [device->account].first + 1);
    fleet_describe (model, self->config.seed ^ ((uint64_t) device->index * 0x9e3779b97f4a7c15ULL), name, out);
}

fleet_device_t *
fleet_device_by_id (fleet_t *self, const char *id)
{
    size_t index = (size_t) zhashx_lookup (self->device_ids, id);
    return index? &self->devices [index - 1]: NULL;
}

//  --------------------------------------------------------------------------
//  Requests

bool
fleet_slot_free (fleet_device_t *device)
{
    for (int i = 0; i < FLEET_REQ_SLOTS; i++)
        if (!device->req [i].used)
            return true;
    return false;
}

fleet_req_t *
fleet_request (fleet_t *self, fleet_device_t *device, fleet_cmd_t cmd, af_msg_t *msg, uint32_t arg)
{
    int slot = 0;
    while (slot < FLEET_REQ_SLOTS && device->req [slot].used)
        slot++;
    if (slot == FLEET_REQ_SLOTS)
        return NULL;
    fleet_req_t *req = &device->req [slot];
    memset (req, 0, sizeof *req);
    //  The rid names the device and the slot; the rest is random, so a
    //  reply to an older request in the same slot does not match
    uint64_t random = fleet_random (self);
    req->rid [0] = (uint8_t) device->index;
    req->rid [1] = (uint8_t) (device->index >> 8);
    req->rid [2] = (uint8_t) (device->index >> 16);
    req->rid [3] = (uint8_t) (device->index >> 24);
    req->rid [4] = (uint8_t) slot;
    memcpy (req->rid + 5, &random, 8);
    random = fleet_random (self);
    memcpy (req->rid + 13, &random, 3);
    memcpy (msg->rid, req->rid, AF_ID_SIZE);
    msg->has_rid = true;
    if (fleet_net_send (self, device, msg)) {
        self->stats.not_sent++;
        return NULL;
    }
    req->used = true;
    req->cmd = (uint8_t) cmd;
    req->sent_us = fleet_usecs ();
    req->deadline = cmd == FC_FETCH? 0: device->last_send + self->config.timeout_ms;
    req->last_recv_at_send = device->last_recv;
    req->arg = arg;
    self->stats.sent [cmd]++;
    return req;
}

//  A request that will get no answer: undo what waits on it
static void
s_abandon (fleet_t *self, fleet_device_t *device, fleet_req_t *req)
{
    switch (req->cmd) {
        case FC_REGISTER:
            self->accounts [device->account].registering = false;
            break;
        case FC_LIST:
        case FC_REPORT:
            fleet_reports_abandon (self, device, req);
            break;
        case FC_SYNC:
        case FC_NOTIFY:
        case FC_PUSH:
            device->acting = false;
            break;
        case FC_APPS:
            self->verify_open--;
            break;
        case FC_DONE:
            //  The outcome is known: it goes again (fleet_jobs_tick)
            if (device->job_count && device->jobs [0].push == req->ptr && device->jobs [0].stage == JOB_DONE_SENT) {
                device->jobs [0].stage = JOB_QUEUED;
                device->jobs [0].retry_at = fleet_now () + FLEET_RETRY_MIN_MS;
            }
            break;
        default:
            break;
    }
    req->used = false;
}

static void s_login_next (fleet_t *self, fleet_device_t *device);

void
fleet_device_session_lost (fleet_t *self, fleet_device_t *device, const char *why)
{
    bool was_online = device->state == DEV_ONLINE;
    for (int i = 0; i < FLEET_REQ_SLOTS; i++)
        if (device->req [i].used) {
            self->stats.abandoned [device->req [i].cmd]++;
            s_abandon (self, device, &device->req [i]);
        }
    fleet_jobs_lost (self, device);
    device->caught_up = false;
    device->acting = false;
    device->epoch++;
    if (was_online && self->move_mark && !device->displaced) {
        device->displaced = true;       //  moved by the broker's death: until its next LOGIN_OK
        self->displaced++;
    }
    if (was_online) {
        self->stats.sessions_lost++;
        device->logged_out_at = fleet_now ();
        if (self->config.verbose)
            zsys_info ("fleet: device %u lost its session: %s", device->index, why);
    }
}

void
fleet_device_drop (fleet_t *self, fleet_device_t *device, const char *why, bool away)
{
    fleet_device_session_lost (self, device, why);
    fleet_net_close (self, device);
    int64_t now = fleet_now ();
    uint32_t jitter = self->config.jitter_ms? fleet_uniform (self, self->config.jitter_ms): 0;
    device->reconnect_at = now + (away? self->config.vanish_ms: 0) + jitter;
    s_state (self, device, away? DEV_AWAY: DEV_OFF);
    fleet_reschedule (self, device);
}

//  --------------------------------------------------------------------------
//  Connecting, registering, logging in

//  A PING (its 13 bytes, encoded once). One that cannot go on a
//  connection thought up means libzmq has lost it (ZMQ_IMMEDIATE): the
//  session is gone with it, and the device pings every 100 ms on the same
//  socket, which libzmq reconnects, until an answer comes; so does the
//  reference node
static void
s_ping (fleet_t *self, fleet_device_t *device)
{
    if (fleet_net_send_raw (self, device, self->ping, self->ping_size) == 0) {
        if (!device->ping_sent_us) {
            device->ping_sent_us = fleet_usecs ();
            self->stats.sent [FC_PING]++;
        }
        return;
    }
    if (device->state != DEV_CONNECTING && self->endpoint_count > 1) {
        //  Of several brokers (a cluster) the next: this one may be gone for
        //  good, and any other sends the device to its successor
        self->stats.links_lost++;
        self->stats.moves_closed++;
        fleet_net_silent (self, device);
        fleet_device_drop (self, device, "the connection is gone", false);
        device->reconnect_at = fleet_now ();
        fleet_reschedule (self, device);
        return;
    }
    if (device->state != DEV_CONNECTING) {
        self->stats.links_lost++;
        fleet_device_session_lost (self, device, "the connection is gone");
        s_state (self, device, DEV_CONNECTING);
        device->connected_at = fleet_now ();
        device->ping_sent_us = 0;
    }
    device->next_ping = fleet_now () + FLEET_CONNECT_PING_MS;
}

static void
s_connect (fleet_t *self, fleet_device_t *device, int64_t now)
{
    if (fleet_net_open (self, device)) {
        //  Most likely the descriptor or socket limit: say so once in a while
        if (self->stats.connect_failures++ % 1000 == 0)
            fprintf (stderr, "fleet: cannot open a connection for device %u: %s%s\n", device->index,
                     zmq_strerror (errno), errno == EMFILE? " (the descriptor or ZMQ_MAX_SOCKETS limit)": "");
        device->reconnect_at = now + 1000;
        return;
    }
    self->stats.connects++;
    device->connected_at = now;
    device->last_recv = now;
    device->next_ping = now;
    device->ping_sent_us = 0;
    device->epoch++;
    s_state (self, device, DEV_CONNECTING);
    s_ping (self, device);
    device->next_ping = now + FLEET_CONNECT_PING_MS;
}

static void
s_backoff (fleet_t *self, fleet_device_t *device)
{
    device->backoff = device->backoff? device->backoff * 2: FLEET_RETRY_MIN_MS;
    if (device->backoff > FLEET_RETRY_MAX_MS)
        device->backoff = FLEET_RETRY_MAX_MS;
    device->retry_at = fleet_now () + fleet_jittered (self, device->backoff);
    s_state (self, device, DEV_BACKOFF);
}

static void
s_login_next (fleet_t *self, fleet_device_t *device)
{
    fleet_account_t *account = &self->accounts [device->account];
    if (!device->has_id && !account->registered) {
        if (!device->registrar || account->registering) {
            s_state (self, device, DEV_WAIT_ACCOUNT);
            return;
        }
        af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
        snprintf (reg->account, sizeof reg->account, "%s", account->name);
        snprintf (reg->password, sizeof reg->password, "%s", self->config.password);
        if (fleet_request (self, device, FC_REGISTER, reg, 0)) {
            account->registering = true;
            s_state (self, device, DEV_REGISTERING);
        }
        else
            s_backoff (self, device);
        af_msg_destroy (&reg);
        return;
    }
    af_msg_t *login = af_msg_new (AF_MSG_LOGIN);
    snprintf (login->account, sizeof login->account, "%s", account->name);
    if (device->has_id)
        memcpy (login->device_id, device->id, sizeof login->device_id);
    else
        snprintf (login->password, sizeof login->password, "%s", self->config.password);
    fleet_device_describe (self, device, &login->device);
    login->has_device = true;
    if (fleet_request (self, device, device->has_id? FC_LOGIN_KEY: FC_LOGIN_PW, login, 0))
        s_state (self, device, DEV_LOGGING_IN);
    else
        s_backoff (self, device);
    af_msg_destroy (&login);
}

//  The first answer on a new connection: it is up
static void
s_up (fleet_t *self, fleet_device_t *device)
{
    device->give_ups = 0;
    s_state (self, device, DEV_BACKOFF);        //  "up, not logged in"
    s_login_next (self, device);
}

static void
s_register_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    (void) req;
    fleet_account_t *account = &self->accounts [device->account];
    account->registering = false;
    if (msg->id == AF_MSG_ERROR && msg->code >= 500) {
        fleet_error (self, device, FC_REGISTER, msg, true);
        s_backoff (self, device);
        return;
    }
    if (msg->id == AF_MSG_ERROR && msg->code != AF_E_ACCOUNT_EXISTS) {
        //  The account will not exist: its devices waiting for it give up too
        fleet_error (self, device, FC_REGISTER, msg, false);
        for (uint32_t i = account->first; i < account->first + account->count; i++)
            if (self->devices [i].state == DEV_WAIT_ACCOUNT || &self->devices [i] == device)
                s_state (self, &self->devices [i], DEV_FAILED);
        return;
    }
    if (msg->id == AF_MSG_ERROR)
        //  Registered by an earlier run with the same --prefix: log in to it
        fleet_error (self, device, FC_REGISTER, msg, true);
    else
    if (msg->id != AF_MSG_OK)
        fleet_unexpected (self, device, "REGISTER answered with %s", af_msg_command_name (msg->id));
    account->registered = true;
    //  The account's other devices waited for this
    for (uint32_t i = account->first; i < account->first + account->count; i++)
        if (self->devices [i].state == DEV_WAIT_ACCOUNT)
            s_login_next (self, &self->devices [i]);
    s_login_next (self, device);
}

static void
s_login_ok (fleet_t *self, fleet_device_t *device, fleet_cmd_t cmd, af_msg_t *msg)
{
    fleet_account_t *account = &self->accounts [device->account];
    unsigned char id [AF_ID_SIZE];
    if (!streq (msg->account, account->name) || af_id_from_hex (msg->device_id, id) != AF_OK) {
        fleet_unexpected (self, device, "LOGIN_OK for account '%s', device '%s'", msg->account, msg->device_id);
        s_state (self, device, DEV_FAILED);
        return;
    }
    if (device->has_id && !streq (msg->device_id, device->id)) {
        fleet_unexpected (self, device, "LOGIN_OK by key gave device %s, not %s", msg->device_id, device->id);
        s_state (self, device, DEV_FAILED);
        return;
    }
    if (!device->has_id) {
        memcpy (device->id, msg->device_id, sizeof device->id);
        device->has_id = true;
        zhashx_insert (self->device_ids, device->id, (void *) (size_t) (device->index + 1));
    }
    if (cmd == FC_LOGIN_PW)
        self->stats.logins_pw++;
    else
        self->stats.logins_key++;
    //  Beat at the smaller of ours and the broker's (SPEC 8.1)
    device->beat = self->config.heartbeat_ms;
    if (msg->heartbeat && msg->heartbeat < device->beat)
        device->beat = msg->heartbeat;
    device->liveness = msg->liveness? msg->liveness: AF_HEARTBEAT_LIVENESS;
    //  Where to go first if this broker goes (SPEC 5.3 standby)
    int standby = strncmp (msg->endpoint, "tcp://", 6)? -1: fleet_net_endpoint (self, msg->endpoint);
    device->standby = (uint8_t) (standby >= 0 && (uint32_t) standby != device->broker? standby + 1: 0);
    device->backoff = 0;
    device->redirects = 0;
    device->epoch++;
    s_state (self, device, DEV_ONLINE);
    s_back_online (self, device, fleet_now ());
    fleet_reports_login (self, device, msg->report_seq, msg->send_list);
    fleet_jobs_login (self, device);
}

static void
s_login_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    if (device->state != DEV_LOGGING_IN)
        return;         //  a session lost meanwhile; a new LOGIN went
    if (msg->id == AF_MSG_LOGIN_OK) {
        s_login_ok (self, device, (fleet_cmd_t) req->cmd, msg);
        return;
    }
    if (msg->id == AF_MSG_ERROR && msg->code >= 500) {
        fleet_error (self, device, (fleet_cmd_t) req->cmd, msg, true);
        s_backoff (self, device);
        return;
    }
    if (msg->id == AF_MSG_ERROR)
        fleet_error (self, device, (fleet_cmd_t) req->cmd, msg, false);
    else
        fleet_unexpected (self, device, "LOGIN answered with %s", af_msg_command_name (msg->id));
    //  A 4xx: a node stops logging in by itself (SPEC 8.3)
    s_state (self, device, DEV_FAILED);
}

//  --------------------------------------------------------------------------
//  Messages without a request

static void
s_on_pong (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    if (device->ping_sent_us) {
        fleet_hist_add (&self->stats.latency [FC_PING], (uint64_t) (fleet_usecs () - device->ping_sent_us));
        self->stats.answered [FC_PING]++;
        device->ping_sent_us = 0;
    }
    if (device->state == DEV_ONLINE && !msg->logged_in) {
        //  The broker restarted (libzmq reconnected us) or expired us
        fleet_device_session_lost (self, device, "PONG without loggedIn");
        s_state (self, device, DEV_BACKOFF);
        s_login_next (self, device);
    }
}

static void
s_on_device_list (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    if (msg->has_rid)
        return;                 //  we never send DEVICES
    fleet_account_t *account = &self->accounts [device->account];
    if (!streq (msg->account, account->name))
        fleet_unexpected (self, device, "DEVICE_LIST of account '%s'", msg->account);
    bool self_seen = false;
    for (uint32_t i = 0; i < msg->device_count; i++) {
        const af_device_t *entry = &msg->devices [i];
        if (device->has_id && streq (entry->id, device->id))
            self_seen = entry->online || device->state != DEV_ONLINE;
        fleet_device_t *other = fleet_device_by_id (self, entry->id);
        if (other && other->account != device->account)
            fleet_unexpected (self, device, "DEVICE_LIST of '%s' lists device %s of account '%s'",
                              account->name, entry->id, self->accounts [other->account].name);
    }
    if (device->state == DEV_ONLINE && !self_seen)
        fleet_unexpected (self, device, "DEVICE_LIST without this device online");
}

static void
s_on_disconnect (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    //  Only one connection per device here: no newer login can exist
    fleet_unexpected (self, device, "DISCONNECT: %s", msg->reason);
    fleet_device_session_lost (self, device, "DISCONNECT");
    fleet_net_close (self, device);
    s_state (self, device, DEV_FAILED);
}

//  --------------------------------------------------------------------------
//  The dispatch: answers by the request's command, the rest by message

typedef void (answer_fn) (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);

static answer_fn *s_answers [FC_COUNT] = {
    [FC_REGISTER] = s_register_answer,
    [FC_LOGIN_PW] = s_login_answer,
    [FC_LOGIN_KEY] = s_login_answer,
    [FC_LIST] = fleet_list_answer,
    [FC_REPORT] = fleet_report_answer,
    [FC_SYNC] = fleet_sync_answer,
    [FC_NOTIFY] = fleet_notify_answer,
    [FC_PUSH] = fleet_push_answer,
    [FC_FETCH] = fleet_fetch_answer,
    [FC_DONE] = fleet_done_answer,
    [FC_APPS] = fleet_apps_answer,
};

//  What each request may be answered with, besides ERROR
static const af_msg_id_t s_answer_ids [FC_COUNT] = {
    [FC_REGISTER] = AF_MSG_OK, [FC_LOGIN_PW] = AF_MSG_LOGIN_OK, [FC_LOGIN_KEY] = AF_MSG_LOGIN_OK,
    [FC_LIST] = AF_MSG_OK, [FC_REPORT] = AF_MSG_OK, [FC_SYNC] = AF_MSG_SYNC_DIFF, [FC_NOTIFY] = AF_MSG_OK,
    [FC_PUSH] = AF_MSG_PUSH_ACCEPTED, [FC_FETCH] = AF_MSG_NONE, [FC_DONE] = AF_MSG_OK,
    [FC_APPS] = AF_MSG_APP_LIST,
};

//  The open request an answer's rid names, or NULL (counted: never sent,
//  or abandoned or timed out before)
static fleet_req_t *
s_request_of (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    uint32_t index = (uint32_t) msg->rid [0] | (uint32_t) msg->rid [1] << 8 | (uint32_t) msg->rid [2] << 16
                   | (uint32_t) msg->rid [3] << 24;
    uint8_t slot = msg->rid [4];
    if (index != device->index || slot >= FLEET_REQ_SLOTS) {
        fleet_unexpected (self, device, "%s with a rid this device never sent", af_msg_command_name (msg->id));
        return NULL;
    }
    fleet_req_t *req = &device->req [slot];
    if (!req->used || memcmp (req->rid, msg->rid, AF_ID_SIZE)) {
        self->stats.late [req->cmd]++;      //  abandoned or timed out before
        return NULL;
    }
    return req;
}

//  REDIRECT (SPEC 5.36), an answer or not: the request was not carried
//  out, and whatever was open goes again where the device goes: reports
//  stay queued and the next LOGIN_OK's reportSeq says which the broker
//  has (an acked one must be there: the new owner has the old one's log),
//  outcomes are sent again, offers come again from the outbox. To another
//  broker: a new connection, at once. No owner yet (or one found silent):
//  the same broker is asked again after a second, on the same connection.
static void
s_on_redirect (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    if (msg->has_rid) {
        fleet_req_t *req = s_request_of (self, device, msg);
        if (!req)
            return;                     //  a REDIRECT of a request given up: moved already
        fleet_hist_add (&self->stats.latency [req->cmd], (uint64_t) (fleet_usecs () - req->sent_us));
        self->stats.answered [req->cmd]++;
        s_abandon (self, device, req);
    }
    int target = fleet_net_redirect (self, device, msg);
    if (self->config.verbose)
        zsys_info ("fleet: device %u: REDIRECT of shard %u (epoch %llu) to '%s': %s", device->index, msg->shard,
                   (unsigned long long) msg->epoch, msg->endpoint, target >= 0? "going there": "waiting");
    if (target >= 0) {
        device->broker = (uint8_t) target;
        fleet_device_drop (self, device, "REDIRECT", false);
        device->reconnect_at = fleet_now ();
        fleet_reschedule (self, device);
        return;
    }
    fleet_device_session_lost (self, device, "REDIRECT");
    if (device->state == DEV_FAILED || device->state == DEV_OFF)
        return;
    s_state (self, device, DEV_BACKOFF);
    device->retry_at = fleet_now () + fleet_jittered (self, FLEET_REDIRECT_WAIT_MS);
}

static void
s_on_reply (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    fleet_req_t *req = s_request_of (self, device, msg);
    if (!req)
        return;
    fleet_req_t copy = *req;
    req->used = false;
    if (msg->id != AF_MSG_ERROR && msg->id != s_answer_ids [copy.cmd]) {
        fleet_unexpected (self, device, "%s answered with %s", fleet_cmd_name ((fleet_cmd_t) copy.cmd),
                          af_msg_command_name (msg->id));
        s_abandon (self, device, &copy);
        return;
    }
    fleet_hist_add (&self->stats.latency [copy.cmd], (uint64_t) (fleet_usecs () - copy.sent_us));
    self->stats.answered [copy.cmd]++;
    if (msg->id == AF_MSG_ERROR && msg->code == AF_E_NOT_LOGGED_IN && device->state == DEV_ONLINE) {
        //  The session went under us (SPEC 8.3): log in again, then resend
        fleet_error (self, device, (fleet_cmd_t) copy.cmd, msg, true);
        s_abandon (self, device, &copy);
        fleet_device_session_lost (self, device, "ERROR 440");
        s_state (self, device, DEV_BACKOFF);
        s_login_next (self, device);
        return;
    }
    s_answers [copy.cmd] (self, device, &copy, msg);
}

void
fleet_device_message (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    if (device->state == DEV_CONNECTING)
        s_up (self, device);            //  the first answer on this connection
    if (msg->id == AF_MSG_REDIRECT) {
        s_on_redirect (self, device, msg);
        return;
    }
    if (msg->has_rid && msg->id != AF_MSG_PONG) {
        s_on_reply (self, device, msg);
        return;
    }
    switch (msg->id) {
        case AF_MSG_PONG: s_on_pong (self, device, msg); break;
        case AF_MSG_DEVICE_LIST: s_on_device_list (self, device, msg); break;
        case AF_MSG_NOTIFY: fleet_on_notify (self, device, msg); break;
        case AF_MSG_ITEM: fleet_on_item (self, device, msg); break;
        case AF_MSG_CHUNK: fleet_on_chunk (self, device, msg); break;
        case AF_MSG_PROGRESS: self->stats.progress++; break;
        case AF_MSG_DISCONNECT: s_on_disconnect (self, device, msg); break;
        case AF_MSG_ERROR:
            fleet_unexpected (self, device, "ERROR %u (%s) without a rid: %s", msg->code,
                              af_code_name ((int) msg->code), msg->reason);
            break;
        default:
            fleet_unexpected (self, device, "the broker sent %s unasked", af_msg_command_name (msg->id));
            break;
    }
}

//  --------------------------------------------------------------------------
//  Time

static void
s_deadlines (fleet_t *self, fleet_device_t *device, int64_t now)
{
    for (int i = 0; i < FLEET_REQ_SLOTS; i++) {
        fleet_req_t *req = &device->req [i];
        if (!req->used || !req->deadline || req->deadline > now)
            continue;
        //  Nothing at all came since it went: the broker is silent, and the
        //  silence rule will reconnect. Otherwise the broker forgot it.
        //  Otherwise the broker is slower than a node waits: counted and
        //  shown, not a failure (nothing is lost by it; the final check
        //  sees whatever it did to the request)
        if (device->last_recv <= req->last_recv_at_send)
            self->stats.abandoned [req->cmd]++;
        else
        if (self->stats.timeouts [req->cmd]++ < 3 || self->config.verbose)
            printf ("fleet: timeout: device %u: %s not answered in %u ms while the broker answered others\n",
                    device->index, fleet_cmd_name ((fleet_cmd_t) req->cmd), self->config.timeout_ms);
        fleet_cmd_t cmd = (fleet_cmd_t) req->cmd;
        s_abandon (self, device, req);
        if (cmd == FC_SYNC && !device->synced) {
            device->synced = true;          //  its first diff will not come now
            self->first_syncs++;
        }
        if ((cmd == FC_LOGIN_PW || cmd == FC_LOGIN_KEY || cmd == FC_REGISTER)
        &&  (device->state == DEV_LOGGING_IN || device->state == DEV_REGISTERING))
            s_backoff (self, device);
    }
}

void
fleet_device_tick (fleet_t *self, fleet_device_t *device, int64_t now)
{
    switch (device->state) {
        case DEV_OFF:
        case DEV_AWAY:
            if (now >= device->reconnect_at)
                s_connect (self, device, now);
            break;
        case DEV_CONNECTING: {
            //  libzmq keeps trying this connection; only with another broker
            //  to try does a device give up on it (a storm of new sockets
            //  would only add handshakes to a broker already behind)
            //  A broker whose connections closed is left after a second;
            //  none is marked for this (a storm of handshakes is slow too)
            //  and each give-up doubles the next wait (to 80 s): in a
            //  storm every broker is slow, and a device that gave up starts
            //  its handshake again elsewhere, which only adds to the storm
            bool silent = fleet_net_is_silent (self, device->broker, now);
            int64_t wait = (int64_t) FLEET_CONNECT_GIVE_UP_MS << (device->give_ups < 3? device->give_ups: 3);
            if (self->endpoint_count > 1 && now - device->connected_at > (silent? FLEET_UNREACHABLE_MS: wait)) {
                self->stats.moves_unreachable++;
                if (!silent && device->give_ups < UINT8_MAX)
                    device->give_ups++;
                fleet_net_next_broker (self, device);
                fleet_device_drop (self, device, "no answer on a new connection", false);
                return;
            }
            if (now >= device->next_ping) {
                s_ping (self, device);
                device->next_ping = now + FLEET_CONNECT_PING_MS;
            }
            break;
        }
        case DEV_FAILED:
            break;
        default:
            if (now - device->last_recv > (int64_t) device->beat * device->liveness + device->beat) {
                self->stats.broker_gone++;
                fleet_net_next_broker (self, device);
                fleet_device_drop (self, device, "the broker is silent", false);
                return;
            }
            if (now - device->last_send >= device->beat && now >= device->next_ping) {
                s_ping (self, device);
                device->next_ping = now + device->beat;
            }
            if (device->state == DEV_BACKOFF && now >= device->retry_at)
                s_login_next (self, device);
            break;
    }
    s_deadlines (self, device, now);
    if (device->state == DEV_ONLINE) {
        if (device->report_retry_at && now >= device->report_retry_at) {
            device->report_retry_at = 0;
            fleet_reports_next (self, device);
        }
        fleet_jobs_tick (self, device, now);
        if (device->vanish_at && now >= device->vanish_at && self->phase == PHASE_RUN) {
            device->vanish_at = 0;
            device->vanished = true;
            self->stats.vanished++;
            fleet_device_drop (self, device, "vanished", true);
            return;
        }
        if (self->config.every_ms && self->phase == PHASE_RUN && device->next_action && now >= device->next_action) {
            //  Exponential waits: the devices' actions form a Poisson stream
            double u = ((double) (fleet_random (self) >> 11) + 1) / 9007199254740993.0;
            device->next_action = now + 1 + (int64_t) (-log (u) * self->config.every_ms);
            if (fleet_can_act (self, device))
                fleet_act (self, device);
            else
                self->stats.actions_skipped++;
        }
    }
    fleet_reschedule (self, device);
}
