/*  =========================================================================
    af_broker - the appferry broker: life cycle, sockets, the command table

    Message flow. zloop wakes the broker once per poll of a socket; it then
    takes up to AF_BATCH queued messages from that socket before polling
    again. Every frame from a node is decoded by af_msg with its bounds;
    anything that does not decode gets an ERROR naming the problem
    (echoing the rid when one could be read) and the broker carries on.
    A session is created per connection (ROUTER routing ID) and remembers
    the CURVE key libzmq authenticated (User-Id, set by af_zap). Then the
    command table says what the command needs (a session, today) and which
    handler runs it; a command without an entry is E_UNKNOWN_COMMAND.
    Worker messages go to af_dispatch.

    Liveness. Nodes and workers PING every heartbeat; every message counts
    as a sign of life. A peer silent for heartbeat x liveness is dead: a
    node's device goes offline and its account's devices get a new list; a
    worker's requests go back to the queue (af_dispatch).

    Sending. libzmq bounds a connection's queue in messages, not bytes,
    and a ROUTER cannot close one peer's connection. So the frontend's
    queues are short (AF_PEER_HWM messages), ZMQ_ROUTER_MANDATORY makes a
    send to a full one fail at once (EAGAIN) instead of dropping it, and
    what did not fit waits in the session's own queue, counted in bytes,
    in order, until libzmq takes it: when the peer sends something, at the
    end of each batch of received messages, and every AF_DRAIN_MS while
    anything waits. A session with more than AF_MAX_PEER_QUEUE bytes
    waiting has a peer that does not read: it is dropped at the next safe
    point (between two events, when no handler holds it), its connection
    closed (af_peers_shutdown, checked against the connection's address
    and port) and its routing ID's messages ignored for AF_PEER_BAN_MS.
    Transfers send CHUNKs directly and wait on EAGAIN (af_transfers).
    Design and bounds: docs/ARCHITECTURE.md "Bounded memory per connection".

    Where each command is handled: docs/ARCHITECTURE.md "Where things are".
    =========================================================================
*/
#include "broker_int.h"
#include "af_linkwatch.h"

#ifdef __GLIBC__
#include <malloc.h>                 //  malloc_trim
#endif
#ifdef __linux__
#include <dirent.h>
#include <sys/syscall.h>
#endif

//  --------------------------------------------------------------------------
//  The command table (what a node may send)

#define NEEDS_SESSION   1           //  refused with E_NOT_LOGGED_IN before LOGIN

typedef struct {
    unsigned flags;
    broker_handler_fn *handler;
} command_t;

static const command_t s_commands [AF_MSG_COUNT] = {
    [AF_MSG_PING]       = { 0, handle_ping },
    [AF_MSG_REGISTER]   = { 0, handle_register },
    [AF_MSG_LOGIN]      = { 0, handle_login },
    [AF_MSG_LOGOUT]     = { NEEDS_SESSION, handle_logout },
    [AF_MSG_DEVICES]    = { NEEDS_SESSION, handle_devices },
    [AF_MSG_DEVICE_REMOVE] = { NEEDS_SESSION, handle_device_remove },
    [AF_MSG_RESOLVE]    = { NEEDS_SESSION, handle_resolve },
    [AF_MSG_NOTIFY]     = { NEEDS_SESSION, handle_notify },
    [AF_MSG_PUSH]       = { NEEDS_SESSION, handle_push },
    [AF_MSG_ACK]        = { NEEDS_SESSION, handle_ack },
    [AF_MSG_FETCH]      = { NEEDS_SESSION, handle_fetch },
    [AF_MSG_CREDIT]     = { NEEDS_SESSION, handle_credit },
    [AF_MSG_DONE]       = { NEEDS_SESSION, handle_done },
    [AF_MSG_UPLOAD]     = { NEEDS_SESSION, handle_upload },
    [AF_MSG_CHUNK]      = { NEEDS_SESSION, handle_chunk },
    [AF_MSG_REPORT]     = { NEEDS_SESSION, handle_report },
    [AF_MSG_LIST]       = { NEEDS_SESSION, handle_list },
    [AF_MSG_APPS]       = { NEEDS_SESSION, handle_apps },
    [AF_MSG_SYNC]       = { NEEDS_SESSION, handle_sync },
    [AF_MSG_UNINSTALL]  = { NEEDS_SESSION, handle_uninstall },
    [AF_MSG_CONFIG_PUT] = { NEEDS_SESSION, handle_config_put },
    [AF_MSG_CONFIG_GET] = { NEEDS_SESSION, handle_config_get },
    [AF_MSG_GET]        = { NEEDS_SESSION, handle_get },
    [AF_MSG_PAY_CONFIRM] = { NEEDS_SESSION, handle_pay_confirm },
    [AF_MSG_PURCHASES]  = { NEEDS_SESSION, handle_purchases },
    [AF_MSG_BROWSE]     = { NEEDS_SESSION, handle_browse },
    [AF_MSG_CONTACTS_EVAL] = { NEEDS_SESSION, handle_contacts_eval },
    [AF_MSG_CONTACTS_PUT] = { NEEDS_SESSION, handle_contacts_put },
    [AF_MSG_FRIENDS]    = { NEEDS_SESSION, handle_friends },
    [AF_MSG_BLOCK]      = { NEEDS_SESSION, handle_block },
    [AF_MSG_SHARE]      = { NEEDS_SESSION, handle_share },
    [AF_MSG_SHARES]     = { NEEDS_SESSION, handle_shares },
    [AF_MSG_FRIEND_APPS] = { NEEDS_SESSION, handle_friend_apps },
    [AF_MSG_RECOMMEND]  = { NEEDS_SESSION, handle_recommend },
    [AF_MSG_REFUSE]     = { NEEDS_SESSION, handle_refuse },
    [AF_MSG_FRIEND_INSTALL] = { NEEDS_SESSION, handle_friend_install },
    [AF_MSG_BACKUP_PUT] = { NEEDS_SESSION, handle_backup_put },
    [AF_MSG_BACKUPS]    = { NEEDS_SESSION, handle_backups },
    [AF_MSG_BACKUP_GET] = { NEEDS_SESSION, handle_backup_get },
    [AF_MSG_RESTORE]    = { NEEDS_SESSION, handle_restore },
    [AF_MSG_RECORD_PUT] = { NEEDS_SESSION, handle_record_put },
};

//  For items that are one plain allocation
static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

//  --------------------------------------------------------------------------
//  Receiving

//  Receive one message from a ROUTER without waiting: the routing frame,
//  the body (NULL if there is none) and how many frames followed the body
//  (discarded; a message is one frame). -1 when nothing is queued.
static int
s_recv_frames (zsock_t *reader, zframe_t **routing, zframe_t **body, size_t *extra)
{
    *routing = zframe_recv (reader);
    *body = NULL;
    *extra = 0;
    if (!*routing)
        return -1;
    if (zframe_more (*routing))
        *body = zframe_recv (reader);
    if (*body && zframe_more (*body)) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        do {
            if (zmq_msg_recv (&part, zsock_resolve (reader), 0) == -1)
                break;
            (*extra)++;
        } while (zmq_msg_more (&part));
        zmq_msg_close (&part);
    }
    return 0;
}

//  In a cluster, a request about an account of a shard another broker
//  owns is sent there (REDIRECT), or a LOGIN waits here for the shard's
//  owner while it has none we could send it to (broker_cluster_park);
//  true if it was
static bool
s_elsewhere (af_broker_t *self, session_t *session, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    if (!self->cluster)
        return false;
    const char *account = msg->id == AF_MSG_LOGIN || msg->id == AF_MSG_REGISTER? msg->account:
                          session->logged_in? session->account: NULL;
    uint32_t shard;
    if (!account || !*account || broker_cluster_serves (self, account, &shard))
        return false;
    if (!broker_cluster_park (self, session, shard, msg_p))
        broker_redirect (self, session, msg, shard);
    return true;
}

//  Run a decoded command through the table
void
broker_command (af_broker_t *self, session_t *session, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    const command_t *command = &s_commands [msg->id];
    if (!command->handler) {
        zsys_warning ("broker: refused %s from node %.8s: not a node request",
                      af_msg_command_name (msg->id), session->key);
        broker_error (self, session, msg, AF_E_UNKNOWN_COMMAND, "%s is not a request a node may send",
                      af_msg_command_name (msg->id));
    }
    else
    if ((command->flags & NEEDS_SESSION) && !session->logged_in)
        broker_error (self, session, msg, AF_E_NOT_LOGGED_IN, "log in first");
    else
    if (s_elsewhere (self, session, msg_p))
        ;                               //  a cluster's: REDIRECT to the shard's owner
    else
        command->handler (self, session, msg);
}

static void
s_frontend_message (af_broker_t *self, zframe_t *routing, zframe_t *body, size_t extra)
{
    if (!routing || zframe_size (routing) > AF_MAX_ROUTING)
        goto done;
    char hex [2 * AF_MAX_ROUTING + 2];
    sodium_bin2hex (hex, sizeof hex, zframe_data (routing), zframe_size (routing));
    if (zhashx_size (self->banned) && broker_banned (self, hex))
        goto done;
    const char *user_id = body? zframe_meta (body, "User-Id"): NULL;
    session_t *session = broker_session_for (self, hex, routing, body, user_id);
    if (!session)
        goto done;
    //  It sent something: it may be reading again, and what waits goes first
    if (session->queue && zlistx_size (session->queue))
        broker_drain (self, session);
    if (!user_id || !streq (user_id, session->key)) {
        zsys_warning ("broker: refused a message on session %s: key changed", hex);
        broker_error (self, session, NULL, AF_E_KEY_MISMATCH, "message key does not match the session");
        goto done;
    }
    session->last_seen = zclock_mono ();
    zlistx_move_end (self->by_seen, session->seen);        //  the timer's expiry reads from the front
    self->stats.messages_in++;
    if (!body || extra + 1 > AF_MAX_FRAMES) {
        zsys_warning ("broker: refused a message from %.8s: expected exactly one frame", session->key);
        broker_error (self, session, NULL, AF_E_MALFORMED, "a message is exactly one frame");
        goto done;
    }
    //  Most of what an idle fleet sends is PING: answered from a PONG
    //  encoded once, with nothing decoded or allocated but the frame
    if (zframe_eq (body, self->ping)) {
        broker_send_frame (self, session, zframe_dup (self->pong [session->logged_in]), BROKER_UNHELD);
        goto done;
    }
    char err [AF_MAX_REASON + 1];
    uint8_t rid [AF_ID_SIZE];
    bool has_rid;
    af_msg_t *msg = NULL;
    int code = af_msg_decode (zframe_data (body), zframe_size (body), &msg, err, sizeof err, rid, &has_rid);
    if (code != AF_OK) {
        zsys_warning ("broker: refused a message from %.8s: %s: %s", session->key, af_code_name (code), err);
        broker_error_rid (self, session, has_rid? rid: NULL, code, "%s", err);
        goto done;
    }
    broker_command (self, session, &msg);
    af_msg_destroy (&msg);
done:
    zframe_destroy (&routing);
    zframe_destroy (&body);
}

//  zloop wakes us once per poll; then we take up to AF_BATCH messages that
//  are already queued, so a busy broker pays one poll per batch, not one
//  per message, and the other sockets and timers still get their turn.
//  Both sockets have a receive timeout of 0, so the batch ends as soon as
//  the queue is empty (asking ZMQ_EVENTS instead costs a system call).
//  Up to AF_BATCH messages from the nodes' socket, inside the caller's
//  batch: how many
static int
s_frontend_take (af_broker_t *self)
{
    int i;
    for (i = 0; i < AF_BATCH; i++) {
        zframe_t *routing, *body;
        size_t extra;
        if (s_recv_frames (self->frontend, &routing, &body, &extra))
            break;
        s_frontend_message (self, routing, body, extra);
    }
    if (i)
        self->stats.batches++;
    return i;
}

int
broker_take_batch (af_broker_t *self, bool mesh_first)
{
    broker_batch_begin (self);
    if (self->mesh && mesh_first)
        broker_cluster_mesh_take (self);
    int i = s_frontend_take (self);
    if (self->mesh && !mesh_first)
        broker_cluster_mesh_take (self);
    broker_batch_end (self);
    return i;
}

static int
s_backend_batch (af_broker_t *self)
{
    int i;
    broker_batch_begin (self);
    for (i = 0; i < AF_BATCH; i++) {
        zframe_t *routing, *body;
        size_t extra;
        if (s_recv_frames (self->backend, &routing, &body, &extra))
            break;
        af_dispatch_message (self->dispatch, &routing, &body, extra);
    }
    broker_batch_end (self);
    return i;
}

static int
s_frontend_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    af_broker_t *self = (af_broker_t *) arg;
    broker_take_batch (self, false);
    broker_drain_all (self);
    broker_reap (self);
    return 0;
}

static int
s_backend_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    af_broker_t *self = (af_broker_t *) arg;
    s_backend_batch (self);
    broker_reap (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Heartbeat timer: expire silent peers and stale requests

//  Whether account's keys are ours to write (af_paynotes_sweep)
static bool
s_ours (const char *account, void *arg)
{
    uint32_t shard;
    return broker_cluster_serves ((af_broker_t *) arg, account, &shard);
}

static int
s_timer_event (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    af_broker_t *self = (af_broker_t *) arg;
    //  What peers sent while the broker was busy (a slow disk's fsync, a
    //  big diff) counts before anyone is judged silent: read it first
    for (int round = 0; round < AF_DRAIN_BATCHES && broker_take_batch (self, false) == AF_BATCH; round++)
        ;
    for (int round = 0; round < AF_DRAIN_BATCHES && s_backend_batch (self) == AF_BATCH; round++)
        ;
    broker_batch_begin (self);
    int64_t now = zclock_mono ();
    int64_t expiry = (int64_t) self->config.heartbeat_ms * self->config.liveness;
    //  by_seen is in the order sessions were last heard from: the silent
    //  ones are at its front, so a tick costs what expires, not a scan
    session_t *session;
    while ((session = (session_t *) zlistx_first (self->by_seen)) && now - session->last_seen > expiry) {
        if (session->parked || session->held) {
            //  Not silent: it waits for the answer to a LOGIN we hold
            //  (broker_cluster_park), for at most AF_CLUSTER_PARK_MS; or
            //  for answers a batch holds until the shard's followers have
            //  it, for at most repl_timeout and an etcd write (a node
            //  sends nothing while it waits for its LOGIN_OK: expired, it
            //  lost that answer, and a client waiting for it heard nothing)
            session->last_seen = now;
            zlistx_move_end (self->by_seen, session->seen);
            continue;
        }
        if (session->logged_in)
            zsys_info ("broker: device %s of '%s' stopped answering (nothing from it for %" PRId64 " ms); marked offline",
                       session->device_id, session->account, now - session->last_seen);
        broker_session_remove (self, session);
    }
    //  Bans that ended
    zlistx_t *ended = zlistx_new ();
    zlistx_set_destructor (ended, s_free_item);
    for (int64_t *until = (int64_t *) zhashx_first (self->banned); until;
         until = (int64_t *) zhashx_next (self->banned))
        if (now >= *until)
            zlistx_add_end (ended, strdup ((const char *) zhashx_cursor (self->banned)));
    for (const char *hex = (const char *) zlistx_first (ended); hex; hex = (const char *) zlistx_next (ended))
        zhashx_delete (self->banned, hex);
    zlistx_destroy (&ended);
    af_dispatch_tick (self->dispatch, now);
    broker_failures_expire (self, now);
    broker_asks_tick (self);
    int64_t every = (int64_t) self->config.data_grace_s * 1000 < 60000?
                    (int64_t) self->config.data_grace_s * 1000: 60000;
    if (now - self->gc_at >= every) {
        self->gc_at = now;
        broker_data_gc (self);
        if (af_paynotes_sweep (self->paynotes, (uint64_t) zclock_time (), AF_PAYNOTES_SWEEP, s_ours, self, NULL)
            != AF_OK)
            zsys_warning ("broker: cannot sweep old notice keys: the store failed; next time");
    }
    broker_batch_end (self);
    broker_cluster_tick (self, now);
    //  A login storm leaves megabytes of freed messages and handshakes in
    //  the middle of malloc's heaps, which free () never gives back (only
    //  a heap's top is): hand those pages to the kernel now and then (a
    //  few ms for 10,000 sessions; about 2.7 KiB per device after a storm)
    if (now - self->heap_trim_at >= AF_TRIM_MS) {
        self->heap_trim_at = now;
#ifdef __GLIBC__
        malloc_trim (0);
#endif
    }
    af_loglimit_flush (self->drop_log, now);
    broker_reap (self);
    if (now - self->metrics_at >= AF_METRICS_MS) {
        self->metrics_at = now;
        broker_metrics_publish (self);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Life cycle

//  A CURVE ROUTER, watched by af_zap through its monitor at monitor. The
//  frontend's queues are short and a send that does not fit fails at
//  once (see "Sending"); the backend serves listed workers only and keeps
//  libzmq's large queues.
static zsock_t *
s_router (af_broker_t *self, const char *domain, const char *monitor, bool nodes)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    if (!sock)
        return NULL;
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, domain);
    zsock_set_maxmsgsize (sock, AF_MAX_ZMQ_MSG);
    zsock_set_handshake_ivl (sock, AF_HANDSHAKE_MS);
    //  libzmq's default backlog, 100, overflows in a login storm and
    //  leaves devices in SYN back-off (the kernel caps it at somaxconn)
    zsock_set_backlog (sock, AF_LISTEN_BACKLOG);
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 0);               //  see s_frontend_event
    if (nodes) {
        zsock_set_sndhwm (sock, AF_PEER_HWM);
        zsock_set_rcvhwm (sock, AF_PEER_HWM);
        zsock_set_router_mandatory (sock, 1);
        zsock_set_sndtimeo (sock, 0);           //  EAGAIN, never a wait
    }
    else {
        zsock_set_sndhwm (sock, AF_SOCKET_HWM);
        zsock_set_rcvhwm (sock, AF_SOCKET_HWM);
    }
    if (zmq_socket_monitor (zsock_resolve (sock), monitor, AF_ZAP_EVENTS)) {
        zsys_error ("broker: cannot monitor the %s socket: %s", domain, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
    }
    return sock;
}

int
broker_bind (zsock_t *sock, const char *endpoint, char *actual, size_t size)
{
    //  "host:*" asks for any free port. czmq would try 49152 upward in
    //  order, so two brokers starting at once (tests run in parallel) race
    //  for the same port; libzmq's ":0" lets the kernel choose instead.
    char bind_to [256];
    snprintf (bind_to, sizeof bind_to, "%s", endpoint);
    size_t len = strlen (bind_to);
    if (len > 2 && streq (bind_to + len - 2, ":*"))
        bind_to [len - 1] = '0';
    if (zmq_bind (zsock_resolve (sock), bind_to)) {
        zsys_error ("broker: cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    char *last = zsock_last_endpoint (sock);     //  owned by us
    snprintf (actual, size, "%s", last? last: endpoint);
    zstr_free (&last);
    return 0;
}

//  The figures: DATA/metrics.prom, and the listener if one is configured
static int
s_metrics (af_broker_t *self)
{
    char path [600], err [256] = "";
    snprintf (path, sizeof path, "%s/metrics.prom", self->config.data_dir);
    self->metrics = af_metrics_new (path, *self->config.metrics? self->config.metrics: NULL, err, sizeof err);
    if (!self->metrics) {
        zsys_error ("broker: %s", err);
        return -1;
    }
    self->started_at = zclock_time ();
    if (*af_metrics_url (self->metrics))
        zsys_info ("broker: figures at %s", af_metrics_url (self->metrics));
    broker_metrics_publish (self);
    return 0;
}

static void
s_tables (af_broker_t *self)
{
    self->uploads = zhashx_new ();
    zhashx_set_destructor (self->uploads, broker_upload_free);
    self->push_jobs = zhashx_new ();
    zhashx_set_destructor (self->push_jobs, broker_push_jobs_free);
    self->sync_jobs = zhashx_new ();
    zhashx_set_destructor (self->sync_jobs, broker_sync_jobs_free);
    self->pay_jobs = zhashx_new ();
    zhashx_set_destructor (self->pay_jobs, broker_pay_jobs_free);
    self->sync_waiting = zlistx_new ();
    zlistx_set_destructor (self->sync_waiting, s_free_item);
    self->by_seen = zlistx_new ();
    af_msg_t *msg = af_msg_new (AF_MSG_PING);
    self->ping = af_msg_encode (msg);
    af_msg_destroy (&msg);
    for (int logged_in = 0; logged_in < 2; logged_in++) {
        msg = af_msg_new (AF_MSG_PONG);
        msg->logged_in = logged_in;
        self->pong [logged_in] = af_msg_encode (msg);
        af_msg_destroy (&msg);
    }
    assert (self->ping && self->pong [0] && self->pong [1]);
    self->sessions = zhashx_new ();
    zhashx_set_destructor (self->sessions, broker_session_free);
    self->online = zhashx_new ();
    self->sources = zhashx_new ();
    zhashx_set_destructor (self->sources, s_free_item);
    self->backlog = zhashx_new ();
    self->banned = zhashx_new ();
    zhashx_set_destructor (self->banned, s_free_item);
    self->held = zlistx_new ();
    zlistx_set_destructor (self->held, broker_held_free);
    self->dropping = zlistx_new ();
    zlistx_set_destructor (self->dropping, s_free_item);
    self->drain_timer = -1;
    self->drop_log = af_loglimit_new ("broker", "lines about dropped connections and messages", AF_LOG_REFUSALS);
}

//  A group commit blocks the broker's thread twice on the disk (LMDB
//  syncs the data pages, then writes the meta page with O_DSYNC), and
//  every node whose answer the batch holds waits for it. The disk takes
//  0.1-0.5 ms; but once it is done the thread must get a CPU back, and
//  with the kernel's EEVDF scheduler a woken thread waits for a busy
//  CPU's running task to use up its slice (about 3 ms on this 2-core
//  machine with two CPU-bound neighbours, measured: a loop of a 4 KiB
//  write, fdatasync and an O_DSYNC write, as LMDB commits one page, took
//  7.4 ms a round instead of 0.1). That, not the
//  disk, was most of a commit on a loaded machine (2-5 ms). A shorter
//  slice (Linux >= 6.12, custom slices for SCHED_OTHER; any user may ask
//  for one) lets the woken thread preempt at once; it gives no larger
//  share of the CPU. Every thread of the process gets it, so libzmq's I/O
//  thread, which carries the answers, too; threads made later inherit
//  it. On an older kernel the call fails or is ignored, and we carry on.
#ifdef __linux__
typedef struct {                    //  linux/sched/types.h, which clashes with sched.h
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
} sched_attr_t;
#endif

static void
s_short_slice (void)
{
#ifdef __linux__
    DIR *tasks = opendir ("/proc/self/task");
    if (!tasks)
        return;
    int set = 0, failed = 0, error = 0;
    struct dirent *entry;
    while ((entry = readdir (tasks))) {
        pid_t tid = (pid_t) atoi (entry->d_name);
        if (tid <= 0)
            continue;
        sched_attr_t attr;
        memset (&attr, 0, sizeof attr);
        attr.size = sizeof attr;        //  SCHED_ATTR_SIZE_VER0
        attr.sched_policy = SCHED_OTHER;
        attr.sched_runtime = AF_SCHED_SLICE_NS;
        if (syscall (SYS_sched_setattr, tid, &attr, 0) == 0)
            set++;
        else {
            failed++;
            error = errno;
        }
    }
    closedir (tasks);
    if (failed)
        zsys_info ("broker: could not shorten the scheduler slice of %d of %d threads: %s",
                   failed, set + failed, strerror (error));
#endif
}

af_broker_t *
af_broker_new (const af_broker_config_t *config)
{
    af_broker_t *self = (af_broker_t *) zmalloc (sizeof (af_broker_t));
    assert (self);
    self->config = *config;
    self->lock_fd = -1;
    if (!*self->config.worker_keys) {
        if (strlen (config->data_dir) + 9 > sizeof self->config.worker_keys) {
            zsys_error ("broker: data directory path too long");
            goto failed;
        }
        strcpy (self->config.worker_keys, config->data_dir);
        strcat (self->config.worker_keys, "/workers");
    }
    if (zsys_dir_create ("%s", config->data_dir) || zsys_dir_create ("%s", self->config.worker_keys)) {
        zsys_error ("broker: cannot create %s: %s", config->data_dir, strerror (errno));
        goto failed;
    }
    chmod (config->data_dir, 0700);
    s_tables (self);
    broker_descriptors (self);
    if (broker_lock (self) || broker_keypair (self) || broker_open_store (self))
        goto failed;
    //  The sockets, then the ZAP handler that watches them, then binding:
    //  no connection comes before its watcher
    snprintf (self->nodes_monitor, sizeof self->nodes_monitor, "inproc://af-monitor-nodes-%p", (void *) self);
    snprintf (self->workers_monitor, sizeof self->workers_monitor, "inproc://af-monitor-workers-%p", (void *) self);
    self->frontend = s_router (self, AF_ZAP_NODES, self->nodes_monitor, true);
    self->backend = s_router (self, AF_ZAP_WORKERS, self->workers_monitor, false);
    if (!self->frontend || !self->backend)
        goto failed;
    af_zap_args_t zap = { self->config.worker_keys, self->nodes_monitor, self->workers_monitor,
                          self->config.max_per_source, self->config.max_sessions,
                          *self->config.etcd? zcert_public_txt (self->cert): NULL };
    self->zap = zactor_new (af_zap_actor, &zap);
    if (!self->zap
    ||  broker_bind (self->frontend, config->nodes, self->nodes_endpoint, sizeof self->nodes_endpoint)
    ||  broker_bind (self->backend, config->workers, self->workers_endpoint, sizeof self->workers_endpoint)
    ||  broker_data_import (self))
        goto failed;
    af_transfers_reader_t reader = broker_data_reader (self);
    self->transfers = af_transfers_new (self->frontend, self->config.catalog, &reader);
    if (!self->transfers)
        goto failed;
    af_transfers_set_progress (self->transfers, broker_transfer_progress, self);
    af_dispatch_config_t dispatch = {
        .heartbeat_ms = config->heartbeat_ms, .liveness = config->liveness,
        .request_timeout_ms = config->request_timeout_ms, .max_queue = config->max_queue };
    self->dispatch = af_dispatch_new (self->backend, &dispatch);
    af_dispatch_service (self->dispatch, "matcher");
    af_dispatch_service (self->dispatch, "payments");
    af_dispatch_service (self->dispatch, "contacts");
    self->loop = zloop_new ();
    self->hasher = af_hasher_new (self->loop, (size_t) config->pw_threads, AF_PW_WAITING, config->pwcost);
    if (!self->hasher || s_metrics (self) || broker_cluster_start (self))
        goto failed;
    zloop_reader (self->loop, self->frontend, s_frontend_event, self);
    zloop_reader (self->loop, self->backend, s_backend_event, self);
    int tick = self->config.heartbeat_ms < 1000? self->config.heartbeat_ms: 1000;
    zloop_timer (self->loop, (size_t) tick, 0, s_timer_event, self);
    //  Write the bound endpoints where tests and operators can find them
    char path [600];
    snprintf (path, sizeof path, "%s/endpoints", config->data_dir);
    FILE *file = fopen (path, "w");
    if (file) {
        fprintf (file, "nodes=%s\nworkers=%s\n", self->nodes_endpoint, self->workers_endpoint);
        if (*af_metrics_url (self->metrics))
            fprintf (file, "metrics=%s\n", af_metrics_url (self->metrics));
        fclose (file);
    }
    s_short_slice ();
    return self;
failed:
    af_broker_destroy (&self);
    return NULL;
}

void
af_broker_destroy (af_broker_t **self_p)
{
    assert (self_p);
    af_broker_t *self = *self_p;
    if (!self)
        return;
    broker_cluster_stop (self);
    af_metrics_destroy (&self->metrics);
    af_hasher_destroy (&self->hasher);     //  its threads' readers are in the loop
    zloop_destroy (&self->loop);
    af_dispatch_destroy (&self->dispatch);
    zhashx_destroy (&self->push_jobs);
    zhashx_destroy (&self->sync_jobs);
    zhashx_destroy (&self->pay_jobs);
    zlistx_destroy (&self->sync_waiting);
    af_guesses_destroy (&self->guesses);
    af_friends_destroy (&self->friends);
    af_syncindex_destroy (&self->syncindex);
    af_configs_destroy (&self->configs);
    af_userdata_destroy (&self->userdata);
    af_backups_destroy (&self->backups);
    af_lists_destroy (&self->lists);
    zhashx_destroy (&self->uploads);
    af_transfers_destroy (&self->transfers);
    af_pushes_destroy (&self->pushes);
    af_asks_destroy (&self->asks);
    af_paynotes_destroy (&self->paynotes);
    af_outbox_destroy (&self->outbox);
    zhashx_destroy (&self->sources);
    zhashx_destroy (&self->online);
    zhashx_destroy (&self->backlog);
    zhashx_destroy (&self->banned);
    zlistx_destroy (&self->dropping);
    zlistx_destroy (&self->held);
    zlistx_destroy (&self->by_seen);
    zhashx_destroy (&self->sessions);
    zframe_destroy (&self->ping);
    zframe_destroy (&self->pong [0]);
    zframe_destroy (&self->pong [1]);
    af_loglimit_destroy (&self->drop_log);
    //  Their monitors stop before them, and before the ZAP handler closes
    //  the PAIRs that read them (af_linkwatch.h): their teardown sends
    //  events, and one sent to a closed PAIR would stop libzmq's I/O
    //  thread with the context still to be terminated
    af_linkwatch_stop (self->frontend, NULL);
    af_linkwatch_stop (self->backend, NULL);
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    zactor_destroy (&self->zap);
    af_registry_destroy (&self->registry);
    zcert_destroy (&self->cert);
    if (self->lock_fd >= 0)
        close (self->lock_fd);          //  releases the lock
    free (self);
    *self_p = NULL;
}

int
af_broker_run (af_broker_t *self)
{
    zsys_info ("broker: serving nodes on %s, workers on %s", self->nodes_endpoint, self->workers_endpoint);
    zloop_start (self->loop);
    zsys_info ("broker: stopping");
    return 0;
}

const char *
af_broker_nodes_endpoint (af_broker_t *self)
{
    return self->nodes_endpoint;
}

const char *
af_broker_workers_endpoint (af_broker_t *self)
{
    return self->workers_endpoint;
}
