/*  =========================================================================
    broker_int.h - what the broker's handlers share

    The broker is one single-threaded reactor split by concern, the way
    Mosquitto and Redis split theirs: af_broker.c owns the life cycle, the
    sockets, batch receive, the timer and the command table; broker_send.c
    group commit and everything that goes out to nodes; one
    handle_*.c file per protocol concern implements its commands in the
    order protocol/SPEC.md gives them; storage lives in classes (af_registry,
    af_outbox, af_pushes, af_lists, af_configs) and the worker core in
    af_dispatch. This header holds the broker and session structs and the
    helpers every handler uses, so each of those is written once.

    A handler runs with a session that the command table has checked
    (logged in, if the command needs it); it answers through the reply
    helpers, which echo the request's rid, and never blocks.
    =========================================================================
*/
#ifndef BROKER_INT_H_INCLUDED
#define BROKER_INT_H_INCLUDED

#include "af_broker.h"
#include "af_msg.h"
#include "af_zap.h"
#include "af_outbox.h"
#include "af_paynotes.h"
#include "af_asks.h"
#include "af_pushes.h"
#include "af_transfers.h"
#include "af_download.h"
#include "af_lists.h"
#include "af_configs.h"
#include "af_userdata.h"
#include "af_backups.h"
#include "af_dispatch.h"
#include "af_syncindex.h"
#include "af_hasher.h"
#include "af_guesses.h"
#include "af_peers.h"
#include "af_loglimit.h"
#include "af_metrics.h"
#include "af_friends.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

//  One connection of a node (a ROUTER routing ID)
typedef struct {
    char hex [2 * AF_MAX_ROUTING + 2];  //  routing ID in hex: sessions key
    zframe_t *routing;
    char key [AF_KEY_Z85 + 1];      //  CURVE key of the connection
    bool logged_in;
    char account [AF_MAX_ACCOUNT + 1];
    char device_id [AF_ID_HEX + 1];
    char online_key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
    af_device_t device;
    int64_t last_seen;
    char digest [AF_ID_HEX + 1];    //  af_syncindex_fit_key: sync's kept matcher answers
    uint64_t sent_seq;              //  last outbox item sent on this connection
    uint32_t unacked;               //  items sent and not yet acknowledged
    char peer [64];                 //  source address (ZeroMQ's Peer-Address)
    bool pw_busy;                   //  a password job of this connection runs
    uint32_t pw_count;              //  password jobs started this minute
    int64_t pw_since;               //  monotonic ms: start of that minute
    //  Sending (af_broker.c): what libzmq's short queue for the connection
    //  had no room for waits here, counted in bytes
    zlistx_t *queue;                //  encoded messages (zframe_t), oldest first
    size_t queued;                  //  their bytes, with held at most AF_MAX_PEER_QUEUE
    size_t held;                    //  bytes a batch holds for it until its commit
    bool dropped;                   //  it does not read: removed at the next safe point
    int fd;                         //  the connection's socket (ZMQ_SRCFD), -1 if unknown
    int port;                       //  its peer's port, to tell it from a later one on fd
    void *seen;                     //  its place in self->by_seen (zlistx handle)
    bool moved;                     //  its account's shard went to another broker
    void *parked;                   //  its LOGIN waiting for its shard's owner (self->parked handle)
} session_t;

//  The cluster (broker_cluster.c): another broker of it
typedef struct {
    char id [AF_CLUSTER_ID + 1];
    char nodes [AF_MAX_ENDPOINT + 1];   //  where its nodes connect
    char peers [AF_MAX_ENDPOINT + 1];   //  where brokers connect to it
    bool draining;
    zsock_t *dealer;                //  ours to it (NULL for ourselves)
    zsock_t *monitor;               //  ... its link's events (zmq_socket_monitor), or NULL
    bool down;                      //  ... its connection closed and not made again: dead, or cut off
    uint32_t forwards;              //  our FORWARDs to it awaiting an answer (broker_forward.c)
} peer_t;

//  A copy of a shard under way to a follower (broker_snapshot.c)
typedef struct _snapshot_t snapshot_t;

//  A follower of a shard we own
typedef struct {
    char id [AF_CLUSTER_ID + 1];
    uint64_t acked;                 //  its last REPL_ACK (UINT64_MAX: not heard yet)
    bool matched;                   //  ... said its log up to there agrees with ours: only then it counts
    bool diverged;                  //  ... said it does not: it needs a copy of the shard
    bool early;                     //  sent entries of the batch being committed (broker_cluster_precommit)
    bool needs_copy;                //  ... and that commit failed: it may hold entries we do not
    bool in_isr;                    //  in the shard's in-sync set (etcd)
    bool asking;                    //  an ISR change for it is with the coordinator
    bool in_flight;                 //  a REPL to it awaits its ack (flights > 0)
    uint32_t flights;               //  ... how many (AF_CLUSTER_REPL_WINDOW at most)
    struct {                        //  ... each, oldest first:
        uint64_t last;              //      its last seq (0: a probe)
        size_t bytes;               //      its entries' bytes
        int64_t at;                 //      when it went
    } flying [AF_CLUSTER_REPL_WINDOW];
    uint64_t sent_last;             //  the last seq of the newest in flight (0: a probe)
    uint64_t sent_head;             //  our log's head when it went
    int64_t owed_at;                //  when it last got a REPL with nothing unanswered (not a resend):
                                    //  it owes us an ack since then
    bool joining;                   //  on its way into the in-sync set: waited for
    uint64_t join_need;             //  ... and in it once it has acked this
    int64_t last_ack;
    int64_t since;                  //  when we began to track it
    uint64_t isr_rev;               //  etcd revision of our last change of its in_isr
    snapshot_t *snapshot;           //  a copy of the shard it is being sent, or NULL (owned)
} replica_t;

typedef enum { SHARD_NONE, SHARD_FOLLOWER, SHARD_OWNER } shard_role_t;

typedef struct {
    shard_role_t role;
    uint64_t epoch;                 //  the owner key's mod_revision
    char owner [AF_CLUSTER_ID + 1]; //  "" = none
    char isr [AF_CLUSTER_MAX_REPLICAS * (AF_CLUSTER_ID + 1) + 1];   //  as etcd has it
    bool born;                      //  it has had an owner
    uint64_t head;                  //  our log's last seq
    bool agreed;                    //  as follower: our log up to head is known to agree with the
                                    //  owner's at epoch (a REPL's prevEpoch matched, or its copy)
    replica_t replicas [AF_CLUSTER_MAX_REPLICAS];   //  as owner
    uint32_t replica_count;
    bool claiming, releasing;       //  asked of the coordinator
    bool leaving;                   //  handing off: requests are sent on
    char leaving_to [AF_CLUSTER_ID + 1];    //  ... to this wanted owner
    int64_t unowned_at;             //  zclock_mono when we saw it without an owner
} shard_t;

//  What the broker counts for its figures (broker_metrics.c); each only
//  grows while the broker runs
typedef struct {
    uint64_t messages_in;           //  from nodes
    uint64_t messages_out;          //  to nodes
    uint64_t logins;                //  accepted
    uint64_t login_failures;        //  refused
    uint64_t registrations;
    uint64_t refused;               //  connections refused a session
    uint64_t dropped;               //  sessions dropped: they did not read
    uint64_t batches;               //  reactor wake-ups that read messages
    uint64_t commit_sizes [AF_COMMIT_BUCKETS];  //  group commits by changes carried
    uint64_t errors [AF_CODE_LAST - AF_CODE_FIRST + 1];   //  ERRORs sent, by code
} broker_stats_t;

struct _af_broker_t {
    af_broker_config_t config;
    zcert_t *cert;
    af_registry_t *registry;
    zactor_t *zap;
    zsock_t *frontend;
    zsock_t *backend;
    zloop_t *loop;
    zhashx_t *sessions;             //  routing hex -> session_t (owned)
    zlistx_t *by_seen;              //  the sessions, least recently heard from first
    zframe_t *ping;                 //  a PING as nodes encode it, to answer without decoding
    zframe_t *pong [2];             //  the PONG for a session without and with a login
    zhashx_t *online;               //  "account/device" -> session_t
    zhashx_t *sources;              //  peer address -> password work this minute
    int64_t failures_at;            //  last expiry of password counts
    int64_t gc_at;                  //  last sweep of user data no push named
    int64_t heap_trim_at;           //  last malloc_trim
    af_hasher_t *hasher;            //  Argon2id threads
    af_guesses_t *guesses;          //  wrong passwords, durable
    af_dispatch_t *dispatch;        //  the workers
    af_outbox_t *outbox;
    af_paynotes_t *paynotes;        //  GET's notices to the source, once (handle_pay.c)
    af_asks_t *asks;                //  GET's asks for the source's record (handle_record.c)
    af_pushes_t *pushes;
    af_transfers_t *transfers;
    af_lists_t *lists;
    af_configs_t *configs;
    af_userdata_t *userdata;        //  pushes' user data (handle_upload.c)
    af_backups_t *backups;          //  handle_backup.c
    af_friends_t *friends;          //  contact tokens, visibility (handle_friends.c)
    af_syncindex_t *syncindex;      //  install lists in memory, matcher answers
    zhashx_t *sync_jobs;            //  job hex -> sync job (owned; handle_sync.c)
    zhashx_t *pay_jobs;             //  job hex -> GET/BROWSE/payment job (owned; handle_pay.c)
    zlistx_t *sync_waiting;         //  SYNCs waiting for their turn
    zhashx_t *push_jobs;            //  push ID hex -> push job (owned; handle_push.c)
    zhashx_t *uploads;              //  session hex -> upload (owned; handle_upload.c)
    char nodes_endpoint [256];
    char workers_endpoint [256];
    int lock_fd;                    //  DATA/lock, flock'ed: one broker per directory
    zhashx_t *backlog;              //  routing hex -> session_t with messages queued
    zhashx_t *banned;               //  routing hex -> int64_t until: dropped connections
    zlistx_t *dropping;             //  routing hex of dropped sessions, removed at a safe point
    int drain_timer;                //  zloop timer while anything waits to be sent, else -1
    af_loglimit_t *drop_log;        //  dropped peers, at most AF_LOG_REFUSALS lines a second
    char nodes_monitor [64];        //  inproc endpoints of the sockets' monitors (af_zap)
    char workers_monitor [64];
    zlistx_t *held;                 //  messages held until the batch's commit (broker_send.c)
    int batch_depth;                //  broker_batch_begin calls not yet ended
    bool batch_open;                //  a batch is open: changes wait for its commit
    uint64_t batch_writes;          //  the store's write count when it began
    broker_stats_t stats;           //  counters for the figures
    af_metrics_t *metrics;          //  DATA/metrics.prom, the optional listener
    int64_t metrics_at;             //  monotonic ms of the last snapshot
    int64_t started_at;             //  wall clock ms the broker started
    //  The cluster (broker_cluster.c); cluster false: a single broker
    bool cluster;
    char id [AF_CLUSTER_ID + 1];
    uint32_t shard_count;
    shard_t *shards;
    zhashx_t *peers;                //  ID -> peer_t (owned), ourselves too
    zsock_t *mesh;                  //  the ROUTER other brokers connect to
    char mesh_endpoint [256];
    zactor_t *coordinator;          //  af_coordinator: etcd
    int64_t lease_until;            //  zclock_mono: we may ack until then
    zlistx_t *units;                //  batches held for their followers
    zlistx_t *parked;               //  LOGINs waiting for their shards' owners, oldest first
    zlistx_t *acks;                 //  REPL_ACKs to send after our commit
    int64_t trim_at;
    uint32_t copies;                //  copies of shards we are sending (broker_snapshot.c)
    int64_t published_at;           //  the last DATA/cluster.json
    zhashx_t *forwards;             //  FORWARD rid hex -> forward_t awaiting its answer (broker_forward.c)
    int64_t resend_at;              //  the last resend of our unresolved intents
    int64_t members_at;             //  zclock_mono of the last change of the live set
    int64_t lease_since;            //  zclock_mono our present lease began
    bool draining;                  //  asked to drain (SIGUSR1, appferry-broker --drain)
    int64_t drain_log_at;           //  zclock_mono: what the drain waits for, last logged
    char drain [AF_MAX_REASON + 1]; //  "", "draining", "drained" or "refused: why"
    int drain_fd;                   //  the signalfd SIGUSR1 comes through, -1 if none
};

//  Run a decoded request of session through the command table (af_broker.c);
//  *msg_p is NULL after it if it was kept (a LOGIN parked for its shard's owner)
void broker_command (af_broker_t *self, session_t *session, af_msg_t **msg_p);

//  A handler of one node command
typedef void (broker_handler_fn) (af_broker_t *self, session_t *session, af_msg_t *msg);

//  --------------------------------------------------------------------------
//  broker_send.c: group commit, sending
//
//  Group commit: between begin and end every change is a child of one
//  store transaction and every message to a node is held; end commits it
//  with one fsync and then sends what was held (on a failed commit:
//  answers become ERROR 500, the rest is dropped). Calls nest; only the
//  outermost pair commits. Everything the reactor does runs inside one.
void broker_batch_begin (af_broker_t *self);
void broker_batch_end (af_broker_t *self);

//  Send an encoded message (taken) to another broker of the cluster on our
//  DEALER to it: at once, or (held, in a batch) once the batch's changes
//  are on disk and on the in-sync followers of its shards, as an answer
//  to a node is; what a refused batch held for a broker is dropped (the
//  asker's timeout answers for it). 0, or -1 (no such broker; libzmq
//  refused it).
int broker_send_peer (af_broker_t *self, const char *peer, zframe_t *frame, bool held);

//  Send a message to a session's connection and destroy it (NULL: nothing).
//  What libzmq cannot take yet waits in the session's queue and goes in
//  order; a session whose queue would pass AF_MAX_PEER_QUEUE bytes is
//  not reading: it is dropped (logged; removed at the next safe point, so
//  the caller's pointer stays valid until its handler returns).
void broker_send (af_broker_t *self, session_t *session, af_msg_t **msg_p);

//  The same without taking the message. 0 if sent or queued, -1 if not
//  (the session is dropped or its connection gone, the message cannot be
//  encoded or is larger than AF_MAX_MSG).
int broker_send_msg (af_broker_t *self, session_t *session, af_msg_t *msg);

//  The same for a message that says nothing of any change (a device's
//  NOTIFY): it goes at once, not after the batch's commit, unless the
//  batch holds something for session already (then after it, in order).
int broker_send_msg_now (af_broker_t *self, session_t *session, af_msg_t *msg);

//  The same for a message encoded already (taken); rid is the request's
//  it answers, or NULL, or BROKER_UNHELD: it says nothing of any change
//  (a PONG), so it goes at once, not after the batch's commit.
int broker_send_frame (af_broker_t *self, session_t *session, zframe_t *frame, const uint8_t *rid);
//  One object, compared by address: a string literal would be a different
//  object in each file unless the linker merges them (it does not under
//  AddressSanitizer, which then saw a 16-byte read of a 1-byte "")
extern const uint8_t broker_unheld [AF_ID_SIZE];
#define BROKER_UNHELD broker_unheld

//  Give libzmq what waits in the sessions' queues, and resume transfers
//  that waited for room; arm the retry timer while anything waits (a
//  queue libzmq would not take, a FETCH or CREDIT that met a full one).
//  Every event that may have sent ends with it.
void broker_drain_all (af_broker_t *self);
void broker_drain (af_broker_t *self, session_t *session);

//  Destructor of self->held's items.
void broker_held_free (void **item);

//  Send the reply to a request, echoing its rid.
void broker_reply (af_broker_t *self, session_t *session, const af_msg_t *request, af_msg_t **reply_p);

//  Answer a request with OK.
void broker_ok (af_broker_t *self, session_t *session, const af_msg_t *request);

//  Answer a request (may be NULL: no rid to echo) with ERROR code, reason.
void broker_error (af_broker_t *self, session_t *session, const af_msg_t *request, int code,
                   const char *format, ...) __attribute__ ((format (printf, 5, 6)));

//  The same with a rid given as bytes (NULL: none), for deferred answers.
void broker_error_rid (af_broker_t *self, session_t *session, const uint8_t *rid, int code,
                       const char *format, ...) __attribute__ ((format (printf, 5, 6)));

//  Send what a batch held (code AF_OK), or refuse it (AF_E_INTERNAL: its
//  commit failed; AF_E_UNAVAILABLE: we may no longer ack): answers become
//  that ERROR, news is dropped. Takes *held_p.
void broker_held_flush (af_broker_t *self, zlistx_t **held_p, int code);

//  --------------------------------------------------------------------------
//  broker_cluster.c: the cluster (single-broker mode: serves everything)

//  Start (cluster/etcd set) or not; 0, or -1 (logged).
int broker_cluster_start (af_broker_t *self);
void broker_cluster_stop (af_broker_t *self);

//  The shard of an account (0 for a single broker), and whether we serve it.
uint32_t broker_shard_of (af_broker_t *self, const char *account);
bool broker_cluster_serves (af_broker_t *self, const char *account, uint32_t *shard);

//  A batch's commit failed: the acks it queued for owners are dropped and
//  the heads of the shards we follow read again from the store.
void broker_cluster_failed (af_broker_t *self);

//  Send a REDIRECT for shard to the session, answering request (or not).
void broker_redirect (af_broker_t *self, session_t *session, const af_msg_t *request, uint32_t shard);

//  A LOGIN or REGISTER for shard, which has no owner we could send the
//  node to (none yet, a hand-off under way, or one whose link to us is
//  down): kept (takes *msg_p) and run again as soon as the shard has one,
//  or answered REDIRECT as before after AF_CLUSTER_PARK_MS. False if not
//  kept (another request, an owner to go to, one parked already).
bool broker_cluster_park (af_broker_t *self, session_t *session, uint32_t shard, af_msg_t **msg_p);
//  The session goes: what it had parked goes with it
void broker_cluster_unpark (af_broker_t *self, session_t *session);

//  The nodes endpoint of the broker that would take shard over if we went
//  (LOGIN_OK's standby, SPEC 5.3): its live in-sync follower first in rank
//  order; "" for a single broker or without one
const char *broker_cluster_standby (af_broker_t *self, uint32_t shard);

//  A batch is about to commit: its new entries go to the followers with
//  nothing in flight now, so their commits run beside ours.
void broker_cluster_precommit (af_broker_t *self);
//  A batch committed: its held messages go once its shards' followers
//  have it (takes *held_p); release what may go now; the timer's work.
void broker_cluster_committed (af_broker_t *self, zlistx_t **held_p);
void broker_cluster_release (af_broker_t *self);
//  Up to AF_BATCH messages already queued on the mesh, handled inside
//  the caller's batch: how many
int broker_cluster_mesh_take (af_broker_t *self);
void broker_cluster_tick (af_broker_t *self, int64_t now);
void broker_cluster_trim (af_broker_t *self);
//  DATA/cluster.json: the shard map as we see it (broker_cluster_status.c)
void broker_cluster_publish (af_broker_t *self);
zsock_t *broker_mesh_connect (af_broker_t *self, const char *endpoint);

//  --------------------------------------------------------------------------
//  af_broker.c: sessions

//  One batch of what waits on the nodes' socket and, in a cluster, on the
//  mesh (up to AF_BATCH messages of each), in one group commit: a broker
//  that owns and follows commits its own requests and the entries it
//  applies with one fsync. The mesh's first when it is the mesh that woke
//  us. How many messages the nodes' socket gave.
int broker_take_batch (af_broker_t *self, bool mesh_first);

//  Bind sock to endpoint ("host:*": any free port); the endpoint bound
//  in actual. 0, or -1 (logged).
int broker_bind (zsock_t *sock, const char *endpoint, char *actual, size_t size);

//  Remove the sessions dropped since the last safe point (the end of an
//  event, when no handler holds a session).
void broker_reap (af_broker_t *self);

//  The session of a connection by its routing hex, or NULL.
session_t *broker_session (af_broker_t *self, const char *hex);

//  The session of an online device, or NULL.
session_t *broker_online (af_broker_t *self, const char *account, const char *device_id);

//  broker_datadir.c: the data directory at start (each 0, or -1 logged)
int broker_lock (af_broker_t *self);
void broker_descriptors (af_broker_t *self);
int broker_keypair (af_broker_t *self);
int broker_open_store (af_broker_t *self);

//  The session of a message's connection, made on its first message; NULL
//  for a connection without an authenticated CURVE key or past
//  max_sessions (counted and logged).
session_t *broker_session_for (af_broker_t *self, const char *hex, zframe_t *routing, zframe_t *body,
                               const char *user_id);

//  Remove a session now: its device logged out, its indexes dropped.
//  Only where no handler holds it (the timer, broker_reap).
void broker_session_remove (af_broker_t *self, session_t *session);

//  The sessions table's destructor.
void broker_session_free (void **item);

//  True while messages of a dropped connection's routing ID are ignored.
bool broker_banned (af_broker_t *self, const char *hex);

//  A request's rid, kept for a deferred answer
typedef struct {
    char session [2 * AF_MAX_ROUTING + 2];
    bool has_rid;
    uint8_t rid [AF_ID_SIZE];
} broker_caller_t;

//  Remember who asked, and answer them later (the session may be gone:
//  then the reply is dropped). broker_answer takes *reply_p.
void broker_caller (broker_caller_t *caller, const session_t *session, const af_msg_t *request);
void broker_answer (af_broker_t *self, const broker_caller_t *caller, af_msg_t **reply_p);

//  --------------------------------------------------------------------------
//  broker_metrics.c: the figures

//  Count a group commit that carried writes changes; an ERROR sent.
void broker_stats_commit (af_broker_t *self, uint64_t writes);
void broker_stats_error (af_broker_t *self, int code);

//  Publish a snapshot of the figures (the timer, every AF_METRICS_MS).
void broker_metrics_publish (af_broker_t *self);

//  --------------------------------------------------------------------------
//  handle_account.c: REGISTER, LOGIN, LOGOUT, DEVICES, PING; device lists

void handle_ping (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_register (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_login (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_logout (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_devices (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_device_remove (af_broker_t *self, session_t *session, af_msg_t *msg);

//  Send the account's device list to every online device of the account.
void broker_broadcast_devices (af_broker_t *self, const char *account);

//  A session's device goes offline: transfers and uploads dropped, index,
//  lastSeen, and the others told. The session itself stays.
void broker_session_logout (af_broker_t *self, session_t *session);

//  Forget password failures whose window has passed (timer).
void broker_failures_expire (af_broker_t *self, int64_t now);

//  --------------------------------------------------------------------------
//  handle_notify.c: NOTIFY

void handle_notify (af_broker_t *self, session_t *session, af_msg_t *msg);

//  A NOTIFY from the broker, in the name of session's device, to every
//  other online device of its account (kind "installed", "config").
void broker_tell_others (af_broker_t *self, session_t *session, const char *kind, const char *body);

//  --------------------------------------------------------------------------
//  handle_deliver.c: outbox items (ITEM, ACK)

void handle_ack (af_broker_t *self, session_t *session, af_msg_t *msg);

//  Send a logged-in device (NULL: nothing) the outbox items it has not
//  been sent on this connection, in order, up to the window.
void broker_deliver (af_broker_t *self, session_t *session);

//  One item of the session's window is finished: send the next.
void broker_item_done (af_broker_t *self, session_t *session);

//  --------------------------------------------------------------------------
//  handle_resolve.c: RESOLVE

void handle_resolve (af_broker_t *self, session_t *session, af_msg_t *msg);

//  Ask the matcher which package of program fits device; done gets the
//  answer (see af_dispatch). Returns AF_OK or AF_E_UNAVAILABLE.
int broker_resolve (af_broker_t *self, const char *program, const af_device_t *device,
                    af_dispatch_fn *done, void *arg, uint32_t slot);

//  --------------------------------------------------------------------------
//  handle_push.c: PUSH, UNINSTALL, FETCH, CREDIT, DONE; PROGRESS

void handle_push (af_broker_t *self, session_t *session, af_msg_t *msg);

//  The push path for the broker's own pushes: entitled is true only when
//  the payments service has just said the account may have msg->program
//  (GET's transfer), so a paid package is offered without asking again.
//  handle_push is this with entitled false: a paid package is offered
//  only after broker_pay_entitled says yes (SPEC 5.16). notice (or NULL):
//  an item for another device, queued once by its key (af_paynotes) in
//  the group commit of the push's record, before it, and only if some
//  target is offered the package; its item is taken. A device_id of ""
//  (the account on another broker of the cluster): an intent to that
//  broker in the same commit instead (xnotice_send, broker_xnotice.c).
typedef struct {
    char account [AF_MAX_ACCOUNT + 1];  //  the device's account
    char device_id [AF_ID_HEX + 1];     //  "": its account's broker picks it
    uint8_t key [AF_ID_SIZE];           //  told once per key; the ask's ID
    af_msg_t *item;                     //  what it is told (a NOTIFY)
    //  The ask opened with it (handle_record.c): who waits for the record
    char asker_account [AF_MAX_ACCOUNT + 1];
    char asker [AF_ID_HEX + 1];
    char program [AF_MAX_PROGRAM + 1];
} broker_notice_t;
void broker_push (af_broker_t *self, session_t *session, af_msg_t *msg, bool entitled, broker_notice_t *notice);
void handle_uninstall (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_fetch (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_credit (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_done (af_broker_t *self, session_t *session, af_msg_t *msg);
void broker_push_jobs_free (void **item);

//  A push to the session's own device of the package a matcher's answer
//  (RESOLVED, fit 0 or 1; taken) names, answering caller with PUSH_ACCEPTED.
void broker_push_resolved (af_broker_t *self, session_t *session, const broker_caller_t *caller,
                           const char *program, af_msg_t **resolved_p);

//  True if a push waiting for the matcher names this user data.
bool broker_push_jobs_name (af_broker_t *self, const char *account, const char *hash);

//  Chunks went to a target: tell the push's initiator (af_transfers).
void broker_transfer_progress (void *arg, const af_transfer_for_t *target, uint64_t sent, uint64_t total);

//  --------------------------------------------------------------------------
//  handle_upload.c: UPLOAD, CHUNK (a push's user data)

void handle_upload (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_chunk (af_broker_t *self, session_t *session, af_msg_t *msg);
void broker_upload_free (void **item);

//  Drop the session's upload, if any (it went away).
void broker_uploads_drop (af_broker_t *self, session_t *session);

//  A batch with the session's chunks could not be committed (code 500) or
//  confirmed (503): its upload, if any, is answered ERROR code and dropped.
void broker_uploads_refuse (af_broker_t *self, session_t *session, int code);

//  True if hash is 64 lowercase hex digits.
bool broker_hash_hex (const char *hash);

//  Remove a blob of user data of account (no push needs it now).
void broker_data_remove (af_broker_t *self, const char *account, const char *hash);

//  Remove blobs that no push named within quota/data_grace (timer).
void broker_data_gc (af_broker_t *self);

//  Size of a blob of user data the broker holds for account, or -1.
int64_t broker_data_size (af_broker_t *self, const char *account, const char *hash);

//  How the transfer engine reads user data (from af_userdata).
af_transfers_reader_t broker_data_reader (af_broker_t *self);

//  User data left in files by a broker from before: into the store (at
//  start). 0 (what could not be moved is logged).
int broker_data_import (af_broker_t *self);

//  --------------------------------------------------------------------------
//  handle_sync.c: REPORT, LIST, APPS, SYNC

void handle_report (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_list (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_apps (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_sync (af_broker_t *self, session_t *session, af_msg_t *msg);
void broker_sync_jobs_free (void **item);

//  --------------------------------------------------------------------------
//  handle_pay.c: GET, PAY_CONFIRM, PURCHASES, BROWSE (paid apps)

void handle_get (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_pay_confirm (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_purchases (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_browse (af_broker_t *self, session_t *session, af_msg_t *msg);
void broker_pay_jobs_free (void **item);

//  Is the account entitled to program (it paid for it)? Asks the payments
//  service (PURCHASES naming the program); done (arg, code, reason) is
//  called once, later: AF_OK entitled; AF_E_PAYMENT_REQUIRED not; any
//  other code (AF_E_UNAVAILABLE: no answer in time) the service's failure,
//  with its reason. Returns AF_OK, or AF_E_UNAVAILABLE when the queue is
//  full (done is then never called).
typedef void (broker_entitled_fn) (void *arg, int code, const char *reason);
int broker_pay_entitled (af_broker_t *self, const char *account, const char *program,
                         broker_entitled_fn *done, void *arg);

//  --------------------------------------------------------------------------
//  handle_record.c: RECORD_PUT; the asks' deadlines (SPEC 5.47a)

void handle_record_put (af_broker_t *self, session_t *session, af_msg_t *msg);

//  Open the ask of a GET's notice (its key, source, asker and program),
//  waiting get/record_wait; an ask already open under the key stays as it
//  is. AF_OK, AF_E_MALFORMED or AF_E_INTERNAL (af_asks_open).
int broker_ask_open (af_broker_t *self, const broker_notice_t *notice);

//  The one place a RECORD (record: the message, not taken) is queued for
//  the asker of the open ask (account, id) of source for program and
//  asker, closing it in the same transaction, and delivered if the asker
//  is online (an asker on another broker: the intent that takes it there,
//  sent after the commit; broker_xrecord.c). AF_OK, AF_E_NO_ASK,
//  AF_E_ANSWERED, AF_E_ASK_EXPIRED, AF_E_QUOTA, AF_E_MALFORMED (it does
//  not fit in an item), AF_E_INTERNAL.
int broker_record_queue (af_broker_t *self, const char *account, const uint8_t *id, const char *source,
                         const char *program, const char *asker, af_msg_t *record);

//  Is msg's record (data, data_size) an install record of msg->program: a
//  JSON object naming it, of af_install_record_check's shape and bounds?
//  AF_OK, or AF_E_MALFORMED with err saying why.
int broker_record_check (const af_msg_t *msg, char *err, size_t errlen);

//  The timer: expire the asks past their deadline in the shards we own.
void broker_asks_tick (af_broker_t *self);

//  --------------------------------------------------------------------------
//  handle_config.c: CONFIG_PUT, CONFIG_GET

void handle_config_put (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_config_get (af_broker_t *self, session_t *session, af_msg_t *msg);

//  --------------------------------------------------------------------------
//  handle_backup.c: BACKUP_PUT, BACKUPS, BACKUP_GET, RESTORE (issue 15)

void handle_backup_put (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_backups (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_backup_get (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_restore (af_broker_t *self, session_t *session, af_msg_t *msg);

//  --------------------------------------------------------------------------
//  handle_friends.c: CONTACTS_EVAL, CONTACTS_PUT, FRIENDS, BLOCK, SHARE,
//  SHARES, FRIEND_APPS, RECOMMEND, REFUSE, FRIEND_INSTALL (issue 13); every
//  step into another account goes through broker_xacct.c

void handle_contacts_eval (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_contacts_put (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_friends (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_block (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_share (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_shares (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_friend_apps (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_recommend (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_refuse (af_broker_t *self, session_t *session, af_msg_t *msg);
void handle_friend_install (af_broker_t *self, session_t *session, af_msg_t *msg);

#endif
