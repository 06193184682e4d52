/*  =========================================================================
    broker_send - what goes out to nodes: group commit, and queues bounded
    in bytes

    Group commit. Every change a handler makes is durable before anyone
    hears of it: the reactor opens one batch (af_store_batch_begin) around
    each thing it does (a batch of messages read from a socket, a timer
    tick, a finished password check), every write transaction of the
    handlers becomes a child of it, and every message to a node is held
    here. broker_batch_end commits the batch with one fsync, then sends
    what was held, in order. So a broker that takes 256 REPORTs in one
    wake-up pays one fsync for them, not 256, and the crash rule holds:
    nothing is acknowledged that is not on disk. If the commit fails
    (the disk is full, an I/O error), nothing of the batch is on disk:
    every held answer to a request becomes ERROR 500 with the request's
    rid (the node sends it again, SPEC 6), every held message that
    answers nothing (an ITEM, a NOTIFY, a device list) is dropped, and the
    sessions concerned have their deliveries start over from their
    outboxes and their accounts' install lists read again from the store,
    so nothing in memory claims what the disk does not have. Messages to
    workers and package chunks are not held: they carry no change.

    Bounded queues. A node's connection holds at most AF_PEER_HWM messages
    in libzmq (ROUTER_MANDATORY, send timeout 0: a full queue fails with
    EAGAIN instead of dropping); what does not fit waits in the session's
    own queue, in order, counted in bytes with what a batch holds for it.
    Past AF_MAX_PEER_QUEUE the peer is not reading: it is dropped (its
    queue freed now, its session at the next safe point, its connection
    shut down), see docs/ARCHITECTURE.md "Bounded memory per connection".
    =========================================================================
*/
#include "broker_int.h"

//  A message held until its batch's commit
typedef struct {
    char session [2 * AF_MAX_ROUTING + 2];
    zframe_t *frame;
    bool has_rid;                   //  an answer to a request: on a failed commit, ERROR 500
    uint8_t rid [AF_ID_SIZE];
    char peer [AF_CLUSTER_ID + 1];  //  not "": for this broker of the cluster (broker_send_peer)
} held_t;

void
broker_held_free (void **item)
{
    held_t *held = (held_t *) *item;
    if (held) {
        zframe_destroy (&held->frame);
        free (held);
        *item = NULL;
    }
}

static void s_drain (af_broker_t *self, session_t *session, bool *forced);

//  While anything waits to be sent: try again every AF_DRAIN_MS
static int
s_drain_event (zloop_t *loop, int timer_id, void *arg)
{
    af_broker_t *self = (af_broker_t *) arg;
    broker_drain_all (self);            //  the timer runs: this arms nothing
    broker_reap (self);
    if (!zhashx_size (self->backlog) && !af_transfers_stalled (self->transfers)) {
        zloop_timer_end (loop, timer_id);
        self->drain_timer = -1;
    }
    return 0;
}

//  The drain timer runs while anything waits: a session's queue libzmq
//  would not take, or a transfer whose FETCH or CREDIT met a full queue
static void
s_drain_arm (af_broker_t *self)
{
    if (self->drain_timer < 0 && self->loop
    &&  (zhashx_size (self->backlog) || af_transfers_stalled (self->transfers)))
        self->drain_timer = zloop_timer (self->loop, AF_DRAIN_MS, 0, s_drain_event, self);
}

static void
s_frame_free (void **item)
{
    zframe_t *frame = (zframe_t *) *item;
    zframe_destroy (&frame);
    *item = NULL;
}

//  One encoded message to a session's connection: 0 if sent (*frame_p is
//  taken), EAGAIN if libzmq's queue for it is full (kept), -1 if the
//  connection is gone (destroyed, as a ROUTER without MANDATORY would)
static int
s_send_once (af_broker_t *self, session_t *session, zframe_t **frame_p)
{
    if (zframe_send (&session->routing, self->frontend, ZFRAME_MORE | ZFRAME_REUSE)) {
        if (zmq_errno () == EAGAIN)
            return EAGAIN;
        if (self->config.verbose)
            zsys_debug ("broker: node %s is gone; a message for it is dropped", session->hex);
        zframe_destroy (frame_p);
        return -1;
    }
    //  Once a routing frame is taken, libzmq takes the rest of the message
    if (zframe_send (frame_p, self->frontend, 0)) {
        zframe_destroy (frame_p);
        return -1;
    }
    return 0;
}

//  The same, and if the queue is full, once more after reading libzmq's
//  commands: its I/O thread says a queue has room again by a command that
//  a sending thread reads at most once a millisecond, which would hold a
//  fast reader to 32 messages a millisecond. ZMQ_EVENTS reads them now.
//  *forced says it was done already (once per drain is enough).
static int
s_try_send (af_broker_t *self, session_t *session, zframe_t **frame_p, bool *forced)
{
    int rc = s_send_once (self, session, frame_p);
    if (rc == EAGAIN && !*forced) {
        *forced = true;
        zsock_events (self->frontend);
        rc = s_send_once (self, session, frame_p);
    }
    return rc;
}

//  The peer does not read: drop its queue now, the session at the next
//  safe point (s_reap), its connection if it is still the same one
static void
s_peer_drop (af_broker_t *self, session_t *session, size_t waiting)
{
    session->dropped = true;
    self->stats.dropped++;
    zlistx_destroy (&session->queue);
    session->queued = 0;
    zhashx_delete (self->backlog, session->hex);
    int64_t now = zclock_mono ();
    int64_t *until = (int64_t *) malloc (sizeof (int64_t));
    assert (until);
    *until = now + AF_PEER_BAN_MS;
    zhashx_update (self->banned, session->hex, until);
    bool closed = af_peers_shutdown (session->fd, session->peer, session->port) == 0;
    char *hex = strdup (session->hex);
    assert (hex);
    zlistx_add_end (self->dropping, hex);
    if (af_loglimit_pass (self->drop_log, now)) {
        char who [AF_MAX_ACCOUNT + AF_ID_HEX + 32];
        if (session->logged_in)
            snprintf (who, sizeof who, "device %s of '%s'", session->device_id, session->account);
        else
            snprintf (who, sizeof who, "key %.8s", session->key);
        zsys_warning ("broker: dropped the connection of %s from %s: it is not reading (%zu bytes waited for it, "
                      "over AF_MAX_PEER_QUEUE); %s", who, session->peer, waiting,
                      closed? "its connection is closed": "its messages are ignored for a minute");
    }
}

//  An encoded message to a session, now: after what waits in its queue,
//  into libzmq's queue if there is room, else into the session's own
static int
s_send_frame (af_broker_t *self, session_t *session, zframe_t *frame)
{
    size_t size = zframe_size (frame);
    bool forced = false;
    if (session->queue && zlistx_size (session->queue))
        s_drain (self, session, &forced);       //  what waits goes first, and may go now
    if (!session->queue || !zlistx_size (session->queue)) {
        int rc = s_try_send (self, session, &frame, &forced);
        if (rc != EAGAIN)
            return rc;
    }
    if (session->queued + session->held + size > AF_MAX_PEER_QUEUE) {
        zframe_destroy (&frame);
        s_peer_drop (self, session, session->queued + session->held + size);
        return -1;
    }
    if (!session->queue) {
        session->queue = zlistx_new ();
        assert (session->queue);
        zlistx_set_destructor (session->queue, s_frame_free);
    }
    if (self->config.verbose && !zlistx_size (session->queue))
        zsys_debug ("broker: libzmq's queue for node %s is full; messages wait in its session", session->hex);
    zlistx_add_end (session->queue, frame);
    session->queued += size;
    zhashx_insert (self->backlog, session->hex, session);      //  no change if there
    s_drain_arm (self);
    return 0;
}

//  msg encoded for session, or NULL (logged) if it cannot be or is larger
//  than a message may be
static zframe_t *
s_encode (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    assert (self);
    assert (msg);
    if (session->dropped)
        return NULL;
    zframe_t *frame = af_msg_encode (msg);
    if (!frame) {
        zsys_warning ("broker: cannot encode %s for node %s", af_msg_command_name (msg->id), session->hex);
        return NULL;
    }
    size_t size = zframe_size (frame);
    if (size > AF_MAX_MSG) {
        zsys_error ("broker: %s for node %s is %zu bytes, more than a message may be (%d); not sent",
                    af_msg_command_name (msg->id), session->hex, size, AF_MAX_MSG);
        zframe_destroy (&frame);
        return NULL;
    }
    return frame;
}

int
broker_send_msg (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    zframe_t *frame = s_encode (self, session, msg);
    return frame? broker_send_frame (self, session, frame, msg->has_rid? msg->rid: NULL): -1;
}

int
broker_send_msg_now (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    zframe_t *frame = s_encode (self, session, msg);
    if (!frame)
        return -1;
    //  After what this batch holds for session, if anything: the order of
    //  one session's messages is kept
    return broker_send_frame (self, session, frame, session->held? NULL: BROKER_UNHELD);
}

const uint8_t broker_unheld [AF_ID_SIZE] = { 0 };

int
broker_send_frame (af_broker_t *self, session_t *session, zframe_t *frame, const uint8_t *rid)
{
    if (session->dropped) {
        zframe_destroy (&frame);
        return -1;
    }
    size_t size = zframe_size (frame);
    self->stats.messages_out++;
    if (!self->batch_open || rid == BROKER_UNHELD)
        return s_send_frame (self, session, frame);
    //  In a batch: held until its changes are on disk
    if (session->queued + session->held + size > AF_MAX_PEER_QUEUE) {
        zframe_destroy (&frame);
        s_peer_drop (self, session, session->queued + session->held + size);
        return -1;
    }
    held_t *held = (held_t *) zmalloc (sizeof (held_t));
    assert (held);
    snprintf (held->session, sizeof held->session, "%s", session->hex);
    held->frame = frame;
    held->has_rid = rid != NULL;
    if (rid)
        memcpy (held->rid, rid, AF_ID_SIZE);
    session->held += size;
    zlistx_add_end (self->held, held);
    return 0;
}

//  A frame to another broker, on our DEALER to it
static int
s_peer_send (af_broker_t *self, const char *id, zframe_t **frame_p)
{
    peer_t *peer = self->peers? (peer_t *) zhashx_lookup (self->peers, id): NULL;
    int rc = peer && peer->dealer? zframe_send (frame_p, peer->dealer, ZFRAME_DONTWAIT): -1;
    zframe_destroy (frame_p);
    return rc;
}

int
broker_send_peer (af_broker_t *self, const char *peer, zframe_t *frame, bool held)
{
    if (!held || !self->batch_open)
        return s_peer_send (self, peer, &frame);
    held_t *item = (held_t *) zmalloc (sizeof (held_t));
    assert (item);
    snprintf (item->peer, sizeof item->peer, "%s", peer);
    item->frame = frame;
    zlistx_add_end (self->held, item);
    return 0;
}

void
broker_send (af_broker_t *self, session_t *session, af_msg_t **msg_p)
{
    if (*msg_p) {
        broker_send_msg (self, session, *msg_p);
        af_msg_destroy (msg_p);
    }
}

//  Give libzmq what waits in a session's queue, as far as it takes it
static void
s_drain (af_broker_t *self, session_t *session, bool *forced)
{
    while (session->queue && zlistx_size (session->queue)) {
        zframe_t *frame = (zframe_t *) zlistx_detach (session->queue, NULL);
        size_t size = zframe_size (frame);
        int rc = s_try_send (self, session, &frame, forced);
        if (rc == EAGAIN) {
            zlistx_add_start (session->queue, frame);
            return;
        }
        session->queued -= size;
        if (rc) {                       //  gone: nothing else can go either
            zlistx_purge (session->queue);
            session->queued = 0;
        }
    }
    zhashx_delete (self->backlog, session->hex);
}

void
broker_drain (af_broker_t *self, session_t *session)
{
    bool forced = false;
    s_drain (self, session, &forced);
}

//  Every session's queue, then the transfers that waited for room
void
broker_drain_all (af_broker_t *self)
{
    if (zhashx_size (self->backlog)) {
        zlistx_t *waiting = zlistx_new ();
        for (session_t *session = (session_t *) zhashx_first (self->backlog); session;
             session = (session_t *) zhashx_next (self->backlog))
            zlistx_add_end (waiting, session);
        bool forced = false;
        for (session_t *session = (session_t *) zlistx_first (waiting); session;
             session = (session_t *) zlistx_next (waiting))
            s_drain (self, session, &forced);
        zlistx_destroy (&waiting);
    }
    if (af_transfers_stalled (self->transfers))
        af_transfers_resume (self->transfers);
    s_drain_arm (self);
}

void
broker_reply (af_broker_t *self, session_t *session, const af_msg_t *request, af_msg_t **reply_p)
{
    if (*reply_p && request) {
        (*reply_p)->has_rid = request->has_rid;
        memcpy ((*reply_p)->rid, request->rid, AF_ID_SIZE);
    }
    broker_send (self, session, reply_p);
}

void
broker_ok (af_broker_t *self, session_t *session, const af_msg_t *request)
{
    af_msg_t *ok = af_msg_new (AF_MSG_OK);
    broker_reply (self, session, request, &ok);
}

static void
s_error (af_broker_t *self, session_t *session, const uint8_t *rid, int code, const char *format,
         va_list args)
{
    char reason [AF_MAX_REASON + 1];
    vsnprintf (reason, sizeof reason, format, args);
    broker_stats_error (self, code);
    af_msg_t *error = af_msg_error (code, rid, "%s", reason);
    broker_send (self, session, &error);
}

void
broker_error (af_broker_t *self, session_t *session, const af_msg_t *request, int code,
              const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_error (self, session, request && request->has_rid? request->rid: NULL, code, format, args);
    va_end (args);
}

void
broker_error_rid (af_broker_t *self, session_t *session, const uint8_t *rid, int code,
                  const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_error (self, session, rid, code, format, args);
    va_end (args);
}

void
broker_caller (broker_caller_t *caller, const session_t *session, const af_msg_t *request)
{
    snprintf (caller->session, sizeof caller->session, "%s", session->hex);
    caller->has_rid = request->has_rid;
    memcpy (caller->rid, request->rid, AF_ID_SIZE);
}

void
broker_answer (af_broker_t *self, const broker_caller_t *caller, af_msg_t **reply_p)
{
    session_t *session = broker_session (self, caller->session);
    if (session && *reply_p) {
        (*reply_p)->has_rid = caller->has_rid;
        memcpy ((*reply_p)->rid, caller->rid, AF_ID_SIZE);
        broker_send (self, session, reply_p);
    }
    af_msg_destroy (reply_p);
}


//  --------------------------------------------------------------------------
//  Group commit

void
broker_batch_begin (af_broker_t *self)
{
    if (self->batch_depth++)
        return;                         //  inside one already
    af_store_t *store = af_registry_store (self->registry);
    self->batch_writes = af_store_writes (store);
    //  Without a batch (it could not begin: logged) every change commits
    //  alone, and messages go at once, as they may then
    self->batch_open = af_store_batch_begin (store) == 0;
}

//  What a batch held cannot stand (its commit failed: code 500; or the
//  broker may no longer acknowledge: 503): an answer becomes ERROR code
//  with its rid, news is dropped, and the session is noted
static void
s_held_refused (af_broker_t *self, session_t *session, held_t *held, int code, zlistx_t *touched)
{
    if (!zlistx_find (touched, session))
        zlistx_add_end (touched, session);
    zframe_destroy (&held->frame);
    if (held->has_rid) {
        broker_stats_error (self, code);
        af_msg_t *error = af_msg_error (code, held->rid, "%s", code == AF_E_INTERNAL?
            "the broker could not store this (see its log): send it again":
            "this broker can no longer confirm changes (it lost its cluster lease): send it again");
        held->frame = af_msg_encode (error);
        af_msg_destroy (&error);
    }
}

void
broker_held_flush (af_broker_t *self, zlistx_t **held_p, int code)
{
    zlistx_t *list = *held_p;
    zlistx_t *touched = code != AF_OK? zlistx_new (): NULL;
    held_t *held;
    while ((held = (held_t *) zlistx_detach (list, NULL))) {
        if (*held->peer) {
            if (code == AF_OK)
                s_peer_send (self, held->peer, &held->frame);
            void *item = held;
            broker_held_free (&item);
            continue;
        }
        session_t *session = broker_session (self, held->session);
        if (session && !session->dropped) {
            session->held -= zframe_size (held->frame);
            if (code != AF_OK)
                s_held_refused (self, session, held, code, touched);
            if (held->frame)
                s_send_frame (self, session, held->frame);
            held->frame = NULL;
        }
        void *item = held;
        broker_held_free (&item);
    }
    zlistx_destroy (held_p);
    if (touched) {
        for (session_t *session = (session_t *) zlistx_first (touched); session;
             session = (session_t *) zlistx_next (touched))
            if (session->logged_in && !session->dropped) {
                af_syncindex_drop (self->syncindex, session->account);
                session->sent_seq = 0;          //  its outbox from the start, as after a login
                session->unacked = 0;
                broker_uploads_refuse (self, session, code);    //  its chunks are not all on disk
                broker_deliver (self, session);
            }
        zlistx_destroy (&touched);
    }
}

void
broker_batch_end (af_broker_t *self)
{
    assert (self->batch_depth > 0);
    if (--self->batch_depth)
        return;
    bool failed = false;
    if (self->batch_open) {
        af_store_t *store = af_registry_store (self->registry);
        uint64_t writes = af_store_writes (store) - self->batch_writes;
        if (self->cluster && writes)
            broker_cluster_precommit (self);
        self->batch_open = false;
        failed = af_store_batch_end (store) != 0;
        if (failed)
            zsys_error ("broker: a group commit of %" PRIu64 " changes failed; their %zu messages are "
                        "answered ERROR 500 or dropped", writes, zlistx_size (self->held));
        else
        if (writes)
            broker_stats_commit (self, writes);
    }
    //  What the batch held goes now; in a cluster, once the shard's
    //  in-sync followers have it too (broker_cluster.c)
    zlistx_t *held = self->held;
    self->held = zlistx_new ();
    zlistx_set_destructor (self->held, broker_held_free);
    if (failed && self->cluster)
        broker_cluster_failed (self);
    if (failed)
        broker_held_flush (self, &held, AF_E_INTERNAL);
    else
    if (self->cluster)
        broker_cluster_committed (self, &held);
    else
        broker_held_flush (self, &held, AF_OK);
}
