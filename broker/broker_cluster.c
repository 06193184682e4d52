/*  =========================================================================
    broker_cluster - the reactor's side of the cluster (B6)

    docs/ARCHITECTURE.md "Cluster" is the design; this is its reactor
    half. The coordinator (af_cluster, a thread) talks to etcd and tells us
    over its pipe which brokers are alive, who owns each shard at which
    epoch with which in-sync followers, and until when our lease is
    certainly valid; we tell it what to claim, which followers to add to
    or remove from a shard's in-sync set, and what to give up. Everything
    else is here, in the reactor:

    - Serving. A request about an account of a shard we do not own is
      answered REDIRECT (shard, epoch, the owner's nodes endpoint); when
      we lose a shard, its sessions get an unsolicited REDIRECT and are
      logged out, without writing (the shard is no longer ours).
    - Replication. After each group commit the owner sends each follower
      of each shard the batch wrote its new log entries (REPL, one in
      flight per follower and shard, over the broker mesh); what the
      batch held for nodes waits until every in-sync follower has acked
      every shard the batch wrote, in batch order, and our lease is
      still good. A follower applies REPL in its own group commit and
      answers REPL_ACK after it. A follower silent for repl_timeout is
      removed from the in-sync set (through etcd) before anything waits
      for it no more. A follower that needs entries our log no longer
      has is sent a copy of the shard instead (broker_snapshot.c), then
      the log.
    - Placement. Every broker computes the same wanted placement (a
      rendezvous hash of shard and broker IDs over the live, non-draining
      brokers): the first is the shard's wanted owner, the next
      `replicas` its followers. We claim shards nobody owns that we may
      claim (we are in their in-sync set, or the shard was never owned
      and we are its wanted owner), and hand off a shard whose wanted
      owner is another, in-sync broker.

    Single-broker mode (no cluster/etcd) never calls any of this but
    broker_cluster_serves, which then says yes.
    =========================================================================
*/
#include "broker_xacct.h"
#include "broker_snapshot.h"
#include "af_shard.h"
#include "af_coordinator.h"
#include "af_linkwatch.h"

#include <signal.h>
#include <sys/signalfd.h>

static void s_free_item (void **item);
static uint64_t s_rank (uint32_t shard, const char *id);

//  A batch's held messages, waiting for its shards' followers
typedef struct {
    zlistx_t *held;
    uint32_t count;
    uint32_t shards [AF_CLUSTER_UNIT_SHARDS];
    uint64_t needs [AF_CLUSTER_UNIT_SHARDS];    //  each shard's head after the batch
    bool all;                                   //  more shards than fit: wait for all owned
} unit_t;

static void
s_unit_free (void **item)
{
    unit_t *unit = (unit_t *) *item;
    if (unit) {
        zlistx_destroy (&unit->held);
        free (unit);
        *item = NULL;
    }
}

static void
s_peer_free (void **item)
{
    peer_t *peer = (peer_t *) *item;
    if (peer) {
        //  The link's watch first, before either socket goes (the
        //  DEALER's teardown sends a DISCONNECTED: af_linkwatch.h)
        af_linkwatch_stop (peer->dealer, &peer->monitor);
        zsock_destroy (&peer->dealer);
        free (peer);
        *item = NULL;
    }
}

//  Tell the coordinator: a command and its arguments
static void
s_tell (af_broker_t *self, const char *command, uint32_t shard, const char *id, uint64_t epoch)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, command);
    zmsg_addstrf (msg, "%u", shard);
    if (id)
        zmsg_addstr (msg, id);
    zmsg_addstrf (msg, "%" PRIu64, epoch);
    zmsg_send (&msg, self->coordinator);
}

//  --------------------------------------------------------------------------
//  Serving

uint32_t
broker_shard_of (af_broker_t *self, const char *account)
{
    return self->cluster? af_shard_of (account, strlen (account), self->shard_count): 0;
}

bool
broker_cluster_serves (af_broker_t *self, const char *account, uint32_t *shard)
{
    *shard = broker_shard_of (self, account);
    return !self->cluster || (self->shards [*shard].role == SHARD_OWNER && !self->shards [*shard].leaving);
}

//  The nodes endpoint of a shard's owner, or "" (none now). While we hand
//  it off (and at our release, when nobody owns it for a moment): our
//  heir's, where a LOGIN waits for its claim (held logins, below), rather
//  than "no owner yet", which has the node ask again a second later
static const char *
s_owner_endpoint (af_broker_t *self, uint32_t shard)
{
    shard_t *state = &self->shards [shard];
    peer_t *owner = *state->owner? (peer_t *) zhashx_lookup (self->peers, state->owner): NULL;
    if (owner && !streq (state->owner, self->id))
        return owner->nodes;
    peer_t *heir = state->leaving && !streq (state->leaving_to, self->id)?
                   (peer_t *) zhashx_lookup (self->peers, state->leaving_to): NULL;
    return heir && heir->dealer && !heir->down? heir->nodes: "";
}

void
broker_redirect (af_broker_t *self, session_t *session, const af_msg_t *request, uint32_t shard)
{
    af_msg_t *redirect = af_msg_new (AF_MSG_REDIRECT);
    redirect->shard = shard;
    redirect->epoch = self->shards [shard].epoch;
    snprintf (redirect->endpoint, sizeof redirect->endpoint, "%s", s_owner_endpoint (self, shard));
    if (self->config.verbose)
        zsys_debug ("broker: %s for shard %u sent to %s", request? af_msg_command_name (request->id): "session",
                    shard, *redirect->endpoint? redirect->endpoint: "(no owner yet)");
    broker_reply (self, session, request, &redirect);
}

//  --------------------------------------------------------------------------
//  Parking: a LOGIN that has nowhere to go waits for its shard's owner
//
//  While a shard has no owner (a failover between the lease's end and the
//  claim, a hand-off), or its owner is a broker whose link to us is down
//  (killed: etcd keeps its ownership until its lease ends, and a REDIRECT
//  there sends the node to a closed port), a REDIRECT could only say "ask
//  again later": the node asks again after a second, and every device of
//  a failover comes back up to a second after its shard was taken. So a
//  LOGIN or REGISTER waits here instead, one per session, until the shard
//  has an owner the node can reach: then it runs as if it came then
//  (served, if that owner is us; else REDIRECT there). At most
//  AF_CLUSTER_PARK_MS, then it is answered REDIRECT as before. It costs
//  one decoded request per session that sent one, and nothing is written.

typedef struct {
    session_t *session;
    uint32_t shard;
    int64_t until;                  //  zclock_mono: answered REDIRECT then
    af_msg_t *msg;
} parked_t;

static void
s_parked_free (void **item)
{
    parked_t *parked = (parked_t *) *item;
    if (parked) {
        af_msg_destroy (&parked->msg);
        free (parked);
        *item = NULL;
    }
}

//  Could a node of shard be served, here or by a REDIRECT that leads to
//  a broker that answers?
static bool
s_owner_reachable (af_broker_t *self, uint32_t shard)
{
    shard_t *state = &self->shards [shard];
    if (state->role == SHARD_OWNER)
        return !state->leaving;
    peer_t *owner = *state->owner? (peer_t *) zhashx_lookup (self->peers, state->owner): NULL;
    return owner && owner->dealer && !owner->down;
}

bool
broker_cluster_park (af_broker_t *self, session_t *session, uint32_t shard, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    if (!self->cluster || session->parked || (msg->id != AF_MSG_LOGIN && msg->id != AF_MSG_REGISTER)
    ||  s_owner_reachable (self, shard))
        return false;
    parked_t *parked = (parked_t *) zmalloc (sizeof (parked_t));
    assert (parked);
    parked->session = session;
    parked->shard = shard;
    parked->until = zclock_mono () + AF_CLUSTER_PARK_MS;
    parked->msg = msg;
    *msg_p = NULL;
    session->parked = zlistx_add_end (self->parked, parked);
    if (self->config.verbose)
        zsys_debug ("broker: %s for shard %u waits for an owner it can be sent to", af_msg_command_name (msg->id),
                    shard);
    return true;
}

void
broker_cluster_unpark (af_broker_t *self, session_t *session)
{
    if (session->parked)
        zlistx_delete (self->parked, session->parked);
    session->parked = NULL;
}

//  Is a parked request's time up, or has its shard (one of shard's, unless
//  shard is UINT32_MAX) an owner to go to now?
static bool
s_parked_ready (af_broker_t *self, const parked_t *parked, uint32_t shard, int64_t now)
{
    return now >= parked->until
        || ((shard == UINT32_MAX || parked->shard == shard) && s_owner_reachable (self, parked->shard));
}

//  Run the parked requests whose shard has an owner to go to now, and
//  answer those whose time is up REDIRECT as before. In one batch, at a
//  safe point (no handler holds a session)
static void
s_unpark (af_broker_t *self, uint32_t shard, int64_t now)
{
    if (!self->parked || !zlistx_size (self->parked))
        return;
    //  By session, found again for each: running one LOGIN may remove
    //  another session (and what it parked)
    zlistx_t *ready = zlistx_new ();
    zlistx_set_destructor (ready, s_free_item);
    for (parked_t *parked = (parked_t *) zlistx_first (self->parked); parked;
         parked = (parked_t *) zlistx_next (self->parked))
        if (s_parked_ready (self, parked, shard, now))
            zlistx_add_end (ready, strdup (parked->session->hex));
    broker_batch_begin (self);
    for (char *hex = (char *) zlistx_first (ready); hex; hex = (char *) zlistx_next (ready)) {
        session_t *session = broker_session (self, hex);
        parked_t *parked = session && session->parked? (parked_t *) zlistx_handle_item (session->parked): NULL;
        if (!parked || !s_parked_ready (self, parked, shard, now))
            continue;
        if (session->dropped) {
            broker_cluster_unpark (self, session);
            continue;
        }
        af_msg_t *msg = parked->msg;
        uint32_t at = parked->shard;
        bool expired = !s_owner_reachable (self, at);
        parked->msg = NULL;
        broker_cluster_unpark (self, session);      //  frees parked
        if (expired)
            broker_redirect (self, session, msg, at);
        else
            broker_command (self, session, &msg);
        af_msg_destroy (&msg);
    }
    broker_batch_end (self);
    zlistx_destroy (&ready);
    broker_drain_all (self);
    broker_reap (self);
}

const char *
broker_cluster_standby (af_broker_t *self, uint32_t shard)
{
    if (!self->cluster || shard >= self->shard_count)
        return "";
    shard_t *state = &self->shards [shard];
    char list [sizeof state->isr];
    snprintf (list, sizeof list, "%s", state->isr);
    const peer_t *best = NULL;
    uint64_t best_rank = 0;
    //  Who claims when the owner dies: the first in rank order of the
    //  set's live members that do not drain (s_may_claim)
    for (char *save = NULL, *id = strtok_r (list, ",", &save); id; id = strtok_r (NULL, ",", &save)) {
        const peer_t *peer = streq (id, self->id)? NULL: (const peer_t *) zhashx_lookup (self->peers, id);
        uint64_t rank = peer? s_rank (shard, id): 0;
        if (peer && peer->dealer && !peer->down && !peer->draining && (!best || rank > best_rank)) {
            best = peer;
            best_rank = rank;
        }
    }
    return best? best->nodes: "";
}

//  We no longer own shard: its sessions go to its owner, unwritten (to
//  our heir, when we handed it off: s_owner_endpoint)
static void
s_shard_lost (af_broker_t *self, uint32_t shard)
{
    const char *endpoint = s_owner_endpoint (self, shard);
    zlistx_t *moving = zlistx_new ();
    for (session_t *session = (session_t *) zhashx_first (self->sessions); session;
         session = (session_t *) zhashx_next (self->sessions))
        if (session->logged_in && broker_shard_of (self, session->account) == shard)
            zlistx_add_end (moving, session);
    for (session_t *session = (session_t *) zlistx_first (moving); session;
         session = (session_t *) zlistx_next (moving)) {
        session->moved = true;          //  no lastSeen written: not ours to write
        broker_redirect (self, session, NULL, shard);
        broker_session_logout (self, session);
    }
    if (zlistx_size (moving))
        zsys_info ("broker: shard %u is no longer ours; %zu sessions sent to %s", shard, zlistx_size (moving),
                   *endpoint? endpoint: "its next owner");
    zlistx_destroy (&moving);
    af_syncindex_purge (self->syncindex);
}

//  --------------------------------------------------------------------------
//  Placement: a rendezvous hash, the same on every broker

static uint64_t
s_rank (uint32_t shard, const char *id)
{
    uint8_t input [4 + AF_CLUSTER_ID + 1], hash [8];
    memcpy (input, &shard, 4);
    size_t len = strlen (id);
    memcpy (input + 4, id, len);
    crypto_generichash (hash, sizeof hash, input, 4 + len, NULL, 0);
    uint64_t rank;
    memcpy (&rank, hash, sizeof rank);
    return rank;
}

//  The wanted replicas of shard, best first: up to 1 + replicas IDs
static uint32_t
s_wanted (af_broker_t *self, uint32_t shard, const char **wanted)
{
    uint32_t want = 1 + (uint32_t) self->config.cluster_replicas, count = 0;
    uint64_t ranks [1 + AF_CLUSTER_MAX_REPLICAS];
    for (peer_t *peer = (peer_t *) zhashx_first (self->peers); peer; peer = (peer_t *) zhashx_next (self->peers)) {
        if (peer->draining)
            continue;
        uint64_t rank = s_rank (shard, peer->id);
        uint32_t at = count < want? count++: want;
        while (at > 0 && ranks [at - 1] < rank) {
            if (at < want) {
                ranks [at] = ranks [at - 1];
                wanted [at] = wanted [at - 1];
            }
            at--;
        }
        if (at < want) {
            ranks [at] = rank;
            wanted [at] = peer->id;
        }
    }
    return count;
}

static bool
s_is_wanted (af_broker_t *self, uint32_t shard, const char *id, bool as_owner)
{
    const char *wanted [1 + AF_CLUSTER_MAX_REPLICAS];
    uint32_t count = s_wanted (self, shard, wanted);
    for (uint32_t i = 0; i < (as_owner? (count > 0): count); i++)
        if (streq (wanted [i], id))
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Replication, owner side

static replica_t *
s_replica (shard_t *state, const char *id, bool make)
{
    for (uint32_t i = 0; i < state->replica_count; i++)
        if (streq (state->replicas [i].id, id))
            return &state->replicas [i];
    if (!make || state->replica_count == AF_CLUSTER_MAX_REPLICAS)
        return NULL;
    replica_t *replica = &state->replicas [state->replica_count++];
    memset (replica, 0, sizeof *replica);
    snprintf (replica->id, sizeof replica->id, "%s", id);
    replica->acked = UINT64_MAX;        //  unknown until it answers
    replica->since = zclock_mono ();
    return replica;
}

//  We no longer own the shard: its followers are forgotten, copies too
static void
s_replicas_clear (af_broker_t *self, shard_t *state)
{
    for (uint32_t i = 0; i < state->replica_count; i++)
        broker_snapshot_end (self, &state->replicas [i]);
    state->replica_count = 0;
}

//  The log's head of a shard (after the last commit)
static uint64_t
s_head (af_broker_t *self, uint32_t shard)
{
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    uint64_t head = 0;
    if (af_store_begin (store, false, &txn) == 0) {
        af_store_log_head (store, txn, shard, &head, NULL);
        af_store_abort (store, &txn);
    }
    return head;
}

typedef struct {
    uint8_t *buffer;
    size_t used, room;              //  room: AF_MAX_REPL less what is in flight
    uint64_t first, last;
} framing_t;

//  Entries in a REPL body: each is its seq (8 bytes LE), size (4 bytes
//  LE) and bytes
static int
s_frame_entry (uint64_t seq, const void *entry, size_t size, void *arg)
{
    framing_t *framing = (framing_t *) arg;
    if (framing->used + 12 + size > framing->room)  //  full: the rest next time
        return framing->used || 12 + size <= AF_MAX_REPL? AF_E_TOO_BIG: AF_E_INTERNAL;
    memcpy (framing->buffer + framing->used, &seq, 8);
    uint32_t size32 = (uint32_t) size;
    memcpy (framing->buffer + framing->used + 8, &size32, 4);
    memcpy (framing->buffer + framing->used + 12, entry, size);
    framing->used += 12 + size;
    if (!framing->first)
        framing->first = seq;
    framing->last = seq;
    return AF_OK;
}

//  A follower needs what our log no longer has (or a log we never had):
//  a copy of the shard (broker_snapshot.c). Not to a member of the
//  in-sync set: by the time it has half a copy it has less than we
//  acked, so it leaves the set first (through etcd), as one that fell
//  behind would; it joins again as any follower, once caught up
static void
s_copy (af_broker_t *self, uint32_t shard, replica_t *replica, int64_t now)
{
    shard_t *state = &self->shards [shard];
    if (replica->asking)
        return;                         //  with the coordinator
    if (replica->in_isr) {
        replica->asking = true;
        zsys_warning ("broker: %s needs a copy of shard %u: removing it from the in-sync set first",
                      replica->id, shard);
        s_tell (self, "ISR_DEL", shard, replica->id, state->epoch);
        return;
    }
    replica->joining = false;
    broker_snapshot_send (self, shard, replica, now);
}

//  What was in flight to a follower is over: answered, or void
static void
s_flights_clear (replica_t *replica)
{
    replica->flights = 0;
    replica->in_flight = false;
    replica->sent_last = 0;
}

//  An ack of seq: the REPLs in flight it answers are over (a probe, by
//  any ack), the later ones still in flight
static void
s_flights_acked (replica_t *replica, uint64_t seq)
{
    uint32_t done = 0;
    while (done < replica->flights
       &&  (!replica->flying [done].last || replica->flying [done].last <= seq))
        done++;
    replica->flights -= done;
    memmove (replica->flying, replica->flying + done, replica->flights * sizeof replica->flying [0]);
    if (!replica->flights)
        s_flights_clear (replica);
}

//  Send a follower what it lacks of a shard. With nothing in flight, from
//  its last ack; else, to a follower known to agree that lacks only log
//  entries we have, the entries after the newest REPL in flight (up to
//  AF_CLUSTER_REPL_WINDOW of them, together at most AF_MAX_REPL bytes:
//  no more memory per follower and shard than one REPL), so that a busy
//  shard's next batch does not wait for the ack of the one before; the
//  follower takes them in order (one connection). After repl_timeout
//  without an ack of the oldest, all of them again from its last ack.
//  early: from the batch being committed (broker_cluster_precommit), and
//  only that plain case: anything else waits for the commit
static void
s_repl_send_at (af_broker_t *self, uint32_t shard, replica_t *replica, int64_t now, bool early)
{
    shard_t *state = &self->shards [shard];
    peer_t *peer = (peer_t *) zhashx_lookup (self->peers, replica->id);
    if (!peer || !peer->dealer)
        return;
    bool resend = replica->in_flight && now - replica->flying [0].at >= self->config.cluster_repl_ms;
    if (resend)
        s_flights_clear (replica);      //  unanswered: all again
    bool plain = !replica->snapshot && !replica->asking && !replica->diverged && !replica->needs_copy
              && replica->matched && replica->acked != UINT64_MAX;
    bool window = replica->in_flight;   //  a REPL after those in flight
    size_t flying = 0;
    for (uint32_t i = 0; i < replica->flights; i++)
        flying += replica->flying [i].bytes;
    if (window && (!plain || !replica->sent_last || replica->flights == AF_CLUSTER_REPL_WINDOW
               ||  flying >= AF_MAX_REPL || replica->sent_last >= state->head))
        return;
    if (early && (!plain || (window? replica->sent_last: replica->acked) >= state->head))
        return;
    if (replica->snapshot) {
        broker_snapshot_send (self, shard, replica, now);   //  a copy is under way: the log waits
        return;
    }
    //  Not heard from yet: an empty REPL asks it where it is
    bool known = replica->acked != UINT64_MAX;
    uint64_t from = window? replica->sent_last: known? replica->acked: state->head;
    if (!window && known && (replica->diverged || replica->needs_copy || (from > state->head && state->head))) {
        //  A log we never had (longer than ours, or with other entries at
        //  our seqs: an old owner back after a failover, or entries of a
        //  batch of ours whose commit failed): it needs the shard
        s_copy (self, shard, replica, now);
        return;
    }
    if (known && from >= state->head && (replica->matched || from > state->head))
        return;                         //  it has everything, and it agrees (or we have nothing)
    framing_t framing = { (uint8_t *) malloc (AF_MAX_REPL), 0, AF_MAX_REPL - flying, 0, 0 };
    assert (framing.buffer);
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    uint64_t prev = 0;                  //  the epoch of our entry `from`, for it to compare with its own
    int code = af_store_begin (store, false, &txn) == 0? AF_OK: AF_E_INTERNAL;
    if (code == AF_OK)
        code = af_store_log_epoch_at (store, txn, shard, from, &prev);
    if (code == AF_OK)
        code = af_store_log_read (store, txn, shard, from, AF_CLUSTER_REPL_ENTRIES, AF_MAX_REPL,
                                  s_frame_entry, &framing);
    af_store_abort (store, &txn);
    af_msg_t *repl = af_msg_new (AF_MSG_REPL);
    repl->shard = shard;
    repl->epoch = state->epoch;
    repl->seq = framing.first? framing.first: from + 1;
    repl->prev_epoch = prev;
    //  The entries are the message's body, handed over, not copied: not
    //  through af_msg_set_body, which refuses more than a NOTIFY's body
    //  (AF_MAX_BODY, 64 KiB) where REPL carries up to AF_MAX_REPL. (It once
    //  went through it unchecked: every REPL over 64 KiB went as an empty
    //  probe, and a follower more than ~450 entries behind never caught up.)
    if (framing.used) {
        free (repl->body);
        repl->body = framing.buffer;
        repl->body_size = (uint32_t) framing.used;
    }
    else
        free (framing.buffer);
    if (code == AF_E_INTERNAL && !framing.used)
        zsys_error ("broker: cannot read shard %u's log for %s", shard, replica->id);
    else
    if ((early || window) && (!framing.used || framing.first != from + 1 || !prev))
        ;                               //  not the plain case after all (or no room): later
    else
    if (known && code != AF_E_INTERNAL
    &&  ((framing.used && framing.first > from + 1) || (!framing.used && from + 1 <= state->head)
         || (from && !prev)))
        //  What it lacks is trimmed, or its last entry, which it would
        //  check against ours: it needs a copy of the shard
        s_copy (self, shard, replica, now);
    else
    if (af_msg_send (repl, peer->dealer, NULL) == 0) {
        if (!replica->flights && !resend)
            replica->owed_at = now;     //  it owes us an ack from now (s_tick_owner)
        replica->flying [replica->flights].last = framing.last;
        replica->flying [replica->flights].bytes = framing.used;
        replica->flying [replica->flights++].at = now;
        replica->in_flight = true;
        replica->sent_last = framing.last;
        replica->sent_head = state->head;
        replica->early = replica->early || early;
    }
    af_msg_destroy (&repl);
}

static void
s_repl_send (af_broker_t *self, uint32_t shard, replica_t *replica, int64_t now)
{
    s_repl_send_at (self, shard, replica, now, false);
}

//  A follower out of the in-sync set joins it in two steps. Under a steady
//  stream of writes it is never level with our head when its ack comes
//  (we committed more meanwhile), so "acked == head" may never hold. So:
//  once it has everything our log had when we sent it its last REPL, it
//  is *joining*: from then on every batch waits for its ack as for an
//  in-sync follower's (s_unit_ready), so whatever we release from now on
//  it has. What was released before is at most our head at that moment
//  (join_need); once it has acked that, it has every entry we ever
//  acknowledged to a node, and we ask etcd to add it. It is waited for
//  until etcd has answered (no batch is released without it meanwhile,
//  though etcd may already list it). A joining follower that falls
//  silent stops being waited for (s_tick_owner); nothing in etcd names it.
static void
s_join (af_broker_t *self, uint32_t shard, replica_t *replica)
{
    shard_t *state = &self->shards [shard];
    if (replica->in_isr || replica->asking || replica->snapshot || !replica->matched || replica->needs_copy)
        return;                         //  (an ack whose log is not known to agree with ours counts for nothing)
    //  Only a wanted follower joins. One just taken out of the set for not
    //  being wanted (it drains, or the placement moved on) still follows
    //  until it sees that, and its next ack, late, would put it back: a
    //  drained broker stopped while etcd had it in a set again
    if (!s_is_wanted (self, shard, replica->id, false))
        return;
    if (!replica->joining && replica->acked >= replica->sent_head) {
        replica->joining = true;
        replica->join_need = state->head;
    }
    if (replica->joining && replica->acked >= replica->join_need) {
        replica->asking = true;
        s_tell (self, "ISR_ADD", shard, replica->id, state->epoch);
    }
}

static void
s_repl_ack (af_broker_t *self, const char *from, af_msg_t *ack)
{
    shard_t *state = &self->shards [ack->shard];
    if (state->role != SHARD_OWNER || ack->epoch != state->epoch)
        return;                         //  for an epoch that is over
    //  A follower we want and do not track yet (its unasked ack came
    //  before we saw it in the cluster) is tracked from its ack
    replica_t *replica = s_replica (state, from, s_is_wanted (self, ack->shard, from, false));
    if (!replica)
        return;
    int64_t now = zclock_mono ();
    replica->acked = ack->seq;
    replica->matched = ack->matched && !ack->diverged;
    if (ack->diverged && !replica->diverged)
        zsys_warning ("broker: %s's log of shard %u (head %" PRIu64 ") has other entries than ours at the same "
                      "seqs: it is sent a copy of the shard", from, ack->shard, ack->seq);
    replica->diverged = ack->diverged;
    //  Only an ack known to agree with our log is heard: a follower that
    //  keeps answering without (a broker before prevEpoch, which checks
    //  nothing) is as one that is silent, out of the in-sync set after
    //  repl_timeout, rather than waited for by every batch for good
    if (replica->matched)
        replica->last_ack = now;
    //  During a copy a REPL_ACK ends it: done (it has the copy's seq), or
    //  refused (it restarted, or took another copy): we decide again. Not
    //  one that says it diverged: that answers a REPL sent before the
    //  copy (sent again after repl_timeout), the reason for the copy
    if (replica->snapshot && ack->diverged) {
        broker_cluster_release (self);
        return;
    }
    if (replica->snapshot) {
        if (broker_snapshot_answered (self, ack->shard, replica, ack->seq))
            replica->needs_copy = false;    //  what it held of a failed batch is gone with the copy
        s_flights_clear (replica);
        s_join (self, ack->shard, replica);
        s_repl_send (self, ack->shard, replica, now);
        broker_cluster_release (self);
        return;
    }
    //  Its log has other entries than ours at our seqs: it applied
    //  nothing, and needs the shard itself (s_repl_send sends the copy)
    if (replica->diverged) {
        s_flights_clear (replica);
        s_repl_send (self, ack->shard, replica, now);
        broker_cluster_release (self);
        return;
    }
    //  A matched ack below the newest REPL in flight answers those it
    //  covers (the window's older ones), which are over; the others stay
    //  in flight. An ack of one sent before a resend after repl_timeout
    //  covers nothing of the resend, so it lets nothing more go: else
    //  each timeout of a busy follower would add one more REPL, each up
    //  to AF_MAX_REPL bytes read and sent again, until owner and follower
    //  do nothing else. (A follower that checked our log once stays
    //  matched for our epoch.) One below the newest that is not matched
    //  says the follower took nothing of them (a gap, or it did not know
    //  us as the owner yet and has told us where it is unasked, SPEC
    //  5.37): none is in flight, and it is sent to again from its head at
    //  once, not after repl_timeout
    if (replica->in_flight && replica->sent_last && ack->seq < replica->sent_last && ack->matched) {
        s_flights_acked (replica, ack->seq);
        s_join (self, ack->shard, replica);
        s_repl_send (self, ack->shard, replica, now);  //  room in the window, maybe
        broker_cluster_release (self);
        return;
    }
    s_flights_clear (replica);
    s_join (self, ack->shard, replica);
    s_repl_send (self, ack->shard, replica, now);
    broker_cluster_release (self);
}

//  --------------------------------------------------------------------------
//  Replication, follower side

typedef struct {
    char peer [AF_CLUSTER_ID + 1];
    uint32_t shard;
    uint64_t epoch, seq;
    int64_t part;                   //  SNAPSHOT_ACK of that part; -1: REPL_ACK
    bool matched, diverged;         //  REPL_ACK: our log agrees with the owner's up to seq; or not
} ack_t;

void
broker_cluster_ack_later (af_broker_t *self, const char *peer, uint32_t shard, uint64_t epoch, uint64_t seq,
                          int64_t part, bool diverged)
{
    ack_t *ack = (ack_t *) zmalloc (sizeof (ack_t));
    assert (ack);
    snprintf (ack->peer, sizeof ack->peer, "%s", peer);
    ack->shard = shard;
    ack->epoch = epoch;
    ack->seq = seq;
    ack->part = part;
    ack->diverged = part < 0 && diverged;
    ack->matched = part < 0 && !diverged && self->shards [shard].agreed;
    zlistx_add_end (self->acks, ack);
}

//  The next entry of a REPL's body (SPEC 5.37: seq, 8 bytes; size, 4;
//  the entry) at *offset, which it moves past it. 1: an entry; 0: the end;
//  -1: an entry that runs past the body (malformed)
static int
s_repl_entry (const af_msg_t *repl, size_t *offset, uint64_t *seq, const uint8_t **entry, uint32_t *size)
{
    if (*offset + 12 > repl->body_size)
        return 0;
    memcpy (seq, repl->body + *offset, 8);
    memcpy (size, repl->body + *offset + 8, 4);
    if (*size > repl->body_size - *offset - 12)
        return -1;
    *entry = repl->body + *offset + 12;
    *offset += 12 + (size_t) *size;
    return 1;
}

//  Does our log agree with the owner's where a REPL meets it (SPEC 5.37
//  prevEpoch)? The REPL gives the epochs of the owner's entries from seq
//  - 1 (prevEpoch) to its last; we compare ours at our head, or at the
//  REPL's last entry when we are past it. One owner per epoch gives each
//  seq once, so the same epoch there is the same entry, and (every entry
//  of ours applied after such a check) the same log up to it. *at_head:
//  the comparison was at our head, so all of our log agrees (or not)
typedef enum { REPL_AGREES, REPL_DIVERGED, REPL_UNKNOWN } repl_check_t;

static repl_check_t
s_repl_check (af_store_t *store, MDB_txn *txn, const af_msg_t *repl, uint64_t head, bool *at_head)
{
    *at_head = false;
    uint64_t before = repl->seq? repl->seq - 1: 0;
    if (head < before)
        return REPL_UNKNOWN;            //  a gap: it says nothing of what we have
    uint64_t at = before, theirs = repl->prev_epoch, seq;
    size_t offset = 0;
    const uint8_t *entry;
    uint32_t size;
    //  (a malformed entry ends the walk here; the apply refuses it)
    while (s_repl_entry (repl, &offset, &seq, &entry, &size) == 1 && seq <= head) {
        at = seq;
        theirs = af_store_entry_epoch (entry, size);
    }
    *at_head = at == head;
    if (at == 0)
        return REPL_AGREES;             //  before the first entry: nothing to disagree on
    uint64_t ours = 0;
    if (!theirs || af_store_log_epoch_at (store, txn, repl->shard, at, &ours) != AF_OK || !ours)
        return REPL_UNKNOWN;            //  an owner before prevEpoch, or an entry we trimmed
    return ours == theirs? REPL_AGREES: REPL_DIVERGED;
}

static void
s_repl_apply (af_broker_t *self, const char *from, af_msg_t *repl)
{
    shard_t *state = &self->shards [repl->shard];
    if (state->role != SHARD_FOLLOWER || !streq (state->owner, from) || repl->epoch != state->epoch) {
        if (af_loglimit_pass (self->drop_log, zclock_mono ()))
            zsys_warning ("broker: refused REPL of shard %u from %s (epoch %" PRIu64 "): %s", repl->shard, from,
                          repl->epoch, state->role != SHARD_FOLLOWER? "we do not follow that shard":
                          !streq (state->owner, from)? "it is not the shard's owner":
                          repl->epoch < state->epoch? "an older epoch (fenced)": "an epoch we have not seen yet");
        return;
    }
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    if (af_store_begin (store, true, &txn))
        return;
    uint64_t head = state->head;
    size_t at = 0;
    int code = AF_OK;
    //  A copy of the shard left unfinished here (we restarted in the
    //  middle of one, or its owner went back to its log): what it wrote
    //  goes, and the log is applied from seq 1 or not at all (a gap: the
    //  owner, told our head 0, sends a copy again)
    uint64_t pending = 0;
    if (af_store_snap_pending (store, txn, repl->shard, &pending) != AF_OK
    ||  (pending && af_store_snap_abandon (store, txn, repl->shard) != AF_OK))
        code = AF_E_INTERNAL;
    else
    if (pending) {
        head = 0;
        zsys_info ("broker: an unfinished copy of shard %u is given up: the log from %s follows",
                   repl->shard, from);
    }
    //  Our log must agree with the owner's where the REPL begins: if it
    //  has other entries at those seqs (we owned the shard, wrote entries
    //  nobody acked, and another took it over and wrote its own), applying
    //  the owner's later ones on top would mix two histories. Nothing is
    //  applied; the owner, told we diverged, sends us the shard itself
    bool at_head = false;
    repl_check_t check = code == AF_OK? s_repl_check (store, txn, repl, head, &at_head): REPL_UNKNOWN;
    if (check == REPL_DIVERGED) {
        af_store_abort (store, &txn);
        state->agreed = false;
        zsys_warning ("broker: our log of shard %u (head %" PRIu64 ") is not that of its owner %s (epoch %"
                      PRIu64 "): other entries at the same seqs; nothing applied, it is to send us a copy",
                      repl->shard, state->head, from, repl->epoch);
        broker_cluster_ack_later (self, from, repl->shard, repl->epoch, state->head, -1, true);
        return;
    }
    if (check == REPL_AGREES && at_head)
        state->agreed = true;
    uint64_t seq;
    const uint8_t *entry;
    uint32_t size;
    int more;
    while (code == AF_OK && (more = s_repl_entry (repl, &at, &seq, &entry, &size)) != 0) {
        bool applied;
        code = more < 0? AF_E_MALFORMED:
               af_store_log_apply (store, txn, repl->shard, seq, entry, size, &applied, &head);
    }
    if (code == AF_OK && at != repl->body_size)
        code = AF_E_MALFORMED;          //  bytes left that are no entry
    if (code == AF_OK && af_store_commit (store, &txn) == 0)
        state->head = head;
    else {
        af_store_abort (store, &txn);
        zsys_warning ("broker: refused REPL of shard %u from %s: %s", repl->shard, from, af_code_name (code));
    }
    //  Acked after our commit (broker_cluster_committed): our head, so a
    //  gap or a refusal makes the owner send from where we are
    broker_cluster_ack_later (self, from, repl->shard, repl->epoch, state->head, -1, false);
}

static void
s_ack_send (af_broker_t *self, const ack_t *ack)
{
    peer_t *peer = (peer_t *) zhashx_lookup (self->peers, ack->peer);
    if (!peer || !peer->dealer)
        return;
    af_msg_t *msg = af_msg_new (ack->part < 0? AF_MSG_REPL_ACK: AF_MSG_SNAPSHOT_ACK);
    msg->part = ack->part < 0? 0: (uint32_t) ack->part;
    msg->shard = ack->shard;
    msg->epoch = ack->epoch;
    msg->seq = ack->seq;
    msg->matched = ack->matched;
    msg->diverged = ack->diverged;
    af_msg_send (msg, peer->dealer, NULL);
    af_msg_destroy (&msg);
}

static void
s_acks_send (af_broker_t *self, bool committed)
{
    ack_t *ack;
    while ((ack = (ack_t *) zlistx_detach (self->acks, NULL))) {
        if (committed)
            s_ack_send (self, ack);
        free (ack);
    }
}

//  A shard we follow has a new owner, or the same at a new epoch: it
//  learns where our log is now, unasked, rather than from the answer to
//  a probe we may have refused (it came before our watch showed us the
//  new owner) and it sends again only after repl_timeout. Not matched:
//  whether our log agrees with the new owner's is for its next REPL
//  (prevEpoch) to tell. Sent at once outside a batch (our head is on
//  disk), else after its commit
static void
s_ack_unasked (af_broker_t *self, uint32_t shard)
{
    shard_t *state = &self->shards [shard];
    if (self->batch_open) {
        broker_cluster_ack_later (self, state->owner, shard, state->epoch, state->head, -1, false);
        return;
    }
    ack_t ack = { .shard = shard, .epoch = state->epoch, .seq = state->head, .part = -1 };
    snprintf (ack.peer, sizeof ack.peer, "%s", state->owner);
    s_ack_send (self, &ack);
}

//  What the mesh has queued, up to AF_BATCH messages, each from broker
//  `from` (its routing frame), inside the caller's batch: how many
int
broker_cluster_mesh_take (af_broker_t *self)
{
    zsock_t *router = self->mesh;
    int i;
    for (i = 0; i < AF_BATCH; i++) {
        zframe_t *routing = zframe_recv (router);
        if (!routing)
            break;
        zframe_t *body = zframe_more (routing)? zframe_recv (router): NULL;
        char from [AF_CLUSTER_ID + 1] = "";
        if (zframe_size (routing) <= AF_CLUSTER_ID)
            memcpy (from, zframe_data (routing), zframe_size (routing));
        char err [AF_MAX_REASON + 1];
        af_msg_t *msg = NULL;
        if (body && zframe_more (body)) {
            zmsg_t *rest = zmsg_recv (router);
            zmsg_destroy (&rest);
        }
        else
        if (body && *from && zhashx_lookup (self->peers, from)
        &&  af_msg_decode (zframe_data (body), zframe_size (body), &msg, err, sizeof err, NULL, NULL) == AF_OK) {
            if (msg->id == AF_MSG_REPL && msg->shard < self->shard_count)
                s_repl_apply (self, from, msg);
            else
            if (msg->id == AF_MSG_REPL_ACK && msg->shard < self->shard_count)
                s_repl_ack (self, from, msg);
            else
            if (msg->id == AF_MSG_SNAPSHOT && msg->shard < self->shard_count)
                broker_snapshot_apply (self, from, msg);
            else
            if (msg->id == AF_MSG_SNAPSHOT_ACK && msg->shard < self->shard_count)
                broker_snapshot_ack (self, from, msg);
            else
            if (msg->id == AF_MSG_FORWARD && msg->shard < self->shard_count && msg->has_rid)
                broker_xacct_serve (self, from, msg);
            else
            if (msg->id == AF_MSG_FORWARD_REPLY)
                broker_forward_answer (self, from, msg);
        }
        else
        if (af_loglimit_pass (self->drop_log, zclock_mono ()))
            zsys_warning ("broker: dropped a message on the mesh from '%s'", *from? from: "?");
        af_msg_destroy (&msg);
        zframe_destroy (&routing);
        zframe_destroy (&body);
    }
    return i;
}

//  The mesh is readable: its messages first, and what the nodes sent
//  meanwhile, in one group commit (broker_take_batch)
static int
s_peer_event (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    (void) router;
    af_broker_t *self = (af_broker_t *) arg;
    broker_take_batch (self, true);
    broker_drain_all (self);
    broker_reap (self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Holding what a batch held until its followers have it

void
broker_cluster_failed (af_broker_t *self)
{
    //  The acks queued for the batch claim what is not on disk: none goes
    //  (each owner sends again after repl_timeout), and the heads of the
    //  shards we follow are what the store has, not what the batch applied
    s_acks_send (self, false);
    for (uint32_t shard = 0; shard < self->shard_count; shard++)
        if (self->shards [shard].role == SHARD_FOLLOWER)
            self->shards [shard].head = s_head (self, shard);
    //  The followers sent the batch's entries before the commit may have
    //  them on disk, and our next batch writes other entries at the same
    //  seqs under the same epoch, which no prevEpoch check can tell apart:
    //  each of them is counted for nothing (out of the in-sync set first)
    //  until a copy of the shard has replaced what it holds
    const uint32_t *written;
    size_t count = af_store_log_written (af_registry_store (self->registry), &written);
    for (size_t i = 0; i < count; i++) {
        shard_t *state = &self->shards [written [i]];
        if (state->role != SHARD_OWNER)
            continue;
        state->head = s_head (self, written [i]);
        for (uint32_t r = 0; r < state->replica_count; r++) {
            replica_t *replica = &state->replicas [r];
            if (replica->early) {
                replica->early = false;
                replica->needs_copy = true;
                zsys_warning ("broker: %s was sent entries of shard %u whose commit failed: it is sent a copy "
                              "of the shard", replica->id, written [i]);
            }
        }
    }
}

void
broker_cluster_precommit (af_broker_t *self)
{
    //  Our commit and the followers' run side by side, as a Raft leader
    //  writes its log while its followers write theirs: a REPL read from
    //  the batch's own transaction goes now to each follower with nothing
    //  in flight. Nothing is acknowledged until both the commit and the
    //  followers' acks are in (broker_cluster_committed, s_unit_ready). If
    //  we die first, a follower may have entries nobody was told of, as
    //  after a commit we made and never acked; if the commit fails, see
    //  broker_cluster_failed
    const uint32_t *written;
    size_t count = af_store_log_written (af_registry_store (self->registry), &written);
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < count; i++) {
        shard_t *state = &self->shards [written [i]];
        if (state->role != SHARD_OWNER || !state->replica_count)
            continue;
        state->head = s_head (self, written [i]);
        for (uint32_t r = 0; r < state->replica_count; r++)
            s_repl_send_at (self, written [i], &state->replicas [r], now, true);
    }
}

//  Has every in-sync follower of the unit's shards acked what it needs?
static bool
s_unit_ready (af_broker_t *self, unit_t *unit)
{
    for (uint32_t s = 0; s < (unit->all? self->shard_count: unit->count); s++) {
        uint32_t shard = unit->all? s: unit->shards [s];
        shard_t *state = &self->shards [shard];
        uint64_t need = unit->all? state->head: unit->needs [s];
        for (uint32_t i = 0; state->role == SHARD_OWNER && i < state->replica_count; i++) {
            replica_t *replica = &state->replicas [i];
            if ((replica->in_isr || replica->joining)
            &&  (replica->acked == UINT64_MAX || replica->acked < need || !replica->matched
                 || replica->needs_copy))
                return false;
        }
    }
    return true;
}

void
broker_cluster_release (af_broker_t *self)
{
    unit_t *unit;
    while ((unit = (unit_t *) zlistx_first (self->units)) && s_unit_ready (self, unit)) {
        unit = (unit_t *) zlistx_detach (self->units, NULL);
        //  Past our lease another may own these shards: we confirm nothing
        int code = zclock_mono () < self->lease_until? AF_OK: AF_E_UNAVAILABLE;
        broker_held_flush (self, &unit->held, code);
        void *item = unit;
        s_unit_free (&item);
    }
}

void
broker_cluster_committed (af_broker_t *self, zlistx_t **held_p)
{
    s_acks_send (self, true);
    unit_t *unit = (unit_t *) zmalloc (sizeof (unit_t));
    assert (unit);
    unit->held = *held_p;
    *held_p = NULL;
    const uint32_t *written;
    size_t count = af_store_log_written (af_registry_store (self->registry), &written);
    int64_t now = zclock_mono ();
    unit->all = count > AF_CLUSTER_UNIT_SHARDS;
    for (size_t i = 0; i < count; i++) {
        shard_t *state = &self->shards [written [i]];
        state->head = s_head (self, written [i]);
        if (!unit->all) {
            unit->shards [unit->count] = written [i];
            unit->needs [unit->count++] = state->head;
        }
        for (uint32_t r = 0; state->role == SHARD_OWNER && r < state->replica_count; r++) {
            state->replicas [r].early = false;
            s_repl_send (self, written [i], &state->replicas [r], now);
        }
    }
    zlistx_add_end (self->units, unit);
    broker_cluster_release (self);
}

//  --------------------------------------------------------------------------
//  What the coordinator tells us

static bool s_follow (af_broker_t *self, uint32_t shard);
static void s_claim_maybe (af_broker_t *self, uint32_t shard, int64_t now, bool at_once);

//  The link to another broker: libzmq tells its monitor when the
//  connection closes (the broker was killed, or its host cut off: long
//  before etcd ends its lease) and when one is made again. A LOGIN for a
//  shard it owns waits here meanwhile (parking, above) rather than being
//  sent to it
static int
s_link_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    af_broker_t *self = (af_broker_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    zframe_t *event = msg? zmsg_first (msg): NULL;
    peer_t *peer = NULL;
    for (peer_t *one = (peer_t *) zhashx_first (self->peers); one; one = (peer_t *) zhashx_next (self->peers))
        if (one->monitor == reader)
            peer = one;
    if (peer && event && zframe_size (event) >= 2) {
        uint16_t type;
        memcpy (&type, zframe_data (event), 2);
        if (type == ZMQ_EVENT_DISCONNECTED && !peer->down) {
            peer->down = true;
            zsys_info ("broker: the link to cluster member %s closed: logins for its shards wait here", peer->id);
        }
        else
        if (type == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && peer->down) {
            peer->down = false;
            zsys_info ("broker: the link to cluster member %s is up again", peer->id);
            s_unpark (self, UINT32_MAX, zclock_mono ());
        }
    }
    zmsg_destroy (&msg);
    return 0;
}

static void
s_peer_watch (af_broker_t *self, peer_t *peer)
{
    if (!peer->dealer)
        return;
    peer->monitor = af_linkwatch_start (peer->dealer, ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED,
                                        peer->id);
    if (peer->monitor && zloop_reader (self->loop, peer->monitor, s_link_event, self) == 0)
        return;
    zsys_warning ("broker: cannot watch the link to cluster member %s", peer->id);
    af_linkwatch_stop (peer->dealer, &peer->monitor);
}

static void
s_peer_forget (af_broker_t *self, const char *id)
{
    peer_t *peer = (peer_t *) zhashx_lookup (self->peers, id);
    if (peer && peer->monitor)
        zloop_reader_end (self->loop, peer->monitor);
    zhashx_delete (self->peers, id);
}

static void
s_on_brokers (af_broker_t *self, zmsg_t *msg)
{
    zhashx_t *seen = zhashx_new ();
    bool changed = false;
    char *id;
    while ((id = zmsg_popstr (msg))) {
        char *nodes = zmsg_popstr (msg), *peers = zmsg_popstr (msg), *draining = zmsg_popstr (msg);
        if (nodes && peers && draining && strlen (id) <= AF_CLUSTER_ID) {
            peer_t *peer = (peer_t *) zhashx_lookup (self->peers, id);
            if (peer && !streq (peer->peers, peers)) {
                s_peer_forget (self, id);               //  it moved: connect again
                peer = NULL;
            }
            if (!peer) {
                changed = true;
                peer = (peer_t *) zmalloc (sizeof (peer_t));
                assert (peer);
                snprintf (peer->id, sizeof peer->id, "%s", id);
                snprintf (peer->peers, sizeof peer->peers, "%s", peers);
                if (!streq (id, self->id)) {
                    peer->dealer = broker_mesh_connect (self, peers);
                    s_peer_watch (self, peer);
                }
                zhashx_insert (self->peers, id, peer);
                zsys_info ("broker: cluster member %s (nodes %s)", id, nodes);
            }
            if (!streq (peer->nodes, nodes) || peer->draining != streq (draining, "1"))
                changed = true;
            snprintf (peer->nodes, sizeof peer->nodes, "%s", nodes);
            peer->draining = streq (draining, "1");
            zhashx_insert (seen, id, peer);
        }
        zstr_free (&nodes);
        zstr_free (&peers);
        zstr_free (&draining);
        zstr_free (&id);
    }
    zlistx_t *gone = zhashx_keys (self->peers);
    for (char *key = (char *) zlistx_first (gone); key; key = (char *) zlistx_next (gone))
        if (!zhashx_lookup (seen, key)) {
            zsys_info ("broker: cluster member %s is gone", key);
            s_peer_forget (self, key);
            changed = true;
        }
    zlistx_destroy (&gone);
    zhashx_destroy (&seen);
    if (changed)
        self->members_at = zclock_mono ();  //  hand-offs wait until it has been stable for a lease
    int64_t now = zclock_mono ();
    for (uint32_t shard = 0; shard < self->shard_count; shard++) {
        if (s_follow (self, shard))     //  the wanted placement may have changed
            s_ack_unasked (self, shard);
        if (changed)
            s_claim_maybe (self, shard, now, true);
    }
}

//  Are we in shard's in-sync set, as etcd has it?
static bool
s_in_sync (af_broker_t *self, uint32_t shard)
{
    char needle [AF_CLUSTER_ID + 3], haystack [sizeof self->shards [shard].isr + 2];
    snprintf (needle, sizeof needle, ",%s,", self->id);
    snprintf (haystack, sizeof haystack, ",%s,", self->shards [shard].isr);
    return strstr (haystack, needle) != NULL;
}

//  Follow a shard we do not own if someone owns it and we are wanted for
//  it, or in its in-sync set (which its owner waits for). Again at every
//  change of the shard or of the brokers. true: we began to follow it
//  (the caller tells its owner where we are: a REPL it sent before we
//  followed was refused unanswered, and it would send again only after
//  repl_timeout, with every batch of the shard waiting for us if we are
//  in its in-sync set)
static bool
s_follow (af_broker_t *self, uint32_t shard)
{
    shard_t *state = &self->shards [shard];
    if (state->role == SHARD_OWNER)
        return false;
    bool follow = *state->owner && (s_is_wanted (self, shard, self->id, false) || s_in_sync (self, shard));
    bool began = follow && state->role != SHARD_FOLLOWER;
    if (began) {
        state->head = s_head (self, shard);
        state->agreed = false;          //  until a REPL of its owner finds it so
    }
    state->role = follow? SHARD_FOLLOWER: SHARD_NONE;
    return began;
}

static void
s_on_shard (af_broker_t *self, zmsg_t *msg)
{
    char *number = zmsg_popstr (msg), *owner = zmsg_popstr (msg), *epoch = zmsg_popstr (msg),
         *isr = zmsg_popstr (msg), *born = zmsg_popstr (msg), *revision = zmsg_popstr (msg);
    uint32_t shard = number? (uint32_t) atol (number): UINT32_MAX;
    if (shard < self->shard_count && owner && epoch && isr && born && revision) {
        shard_t *state = &self->shards [shard];
        bool was_owner = state->role == SHARD_OWNER;
        uint64_t at = (uint64_t) strtoull (revision, NULL, 10);
        if (!*owner && (*state->owner || !state->unowned_at))
            state->unowned_at = zclock_mono ();
        else
        if (*owner)
            state->unowned_at = 0;
        //  A new owner, or the same at a new epoch: what we knew of our log
        //  agreeing with the last one's says nothing of this one's
        uint64_t known = (uint64_t) strtoull (epoch, NULL, 10);
        bool moved = *owner && (!streq (owner, state->owner) || known != state->epoch);
        if (moved)
            state->agreed = false;
        snprintf (state->owner, sizeof state->owner, "%s", owner);
        state->born = streq (born, "1");
        if (*owner)
            state->epoch = known;
        //  The in-sync set as etcd has it: as owner we wait for each of them
        snprintf (state->isr, sizeof state->isr, "%s", isr);
        if (streq (owner, self->id)) {
            char list [sizeof state->isr];
            snprintf (list, sizeof list, "%s", isr);
            for (char *save = NULL, *one = strtok_r (list, ",", &save); one; one = strtok_r (NULL, ",", &save))
                if (!streq (one, self->id))     //  in it from when we followed: not our own follower
                    s_replica (state, one, true);
        }
        //  ... unless this SHARD is older than our own last change of a
        //  member (the coordinator's copy follows its watch, which may not
        //  have seen the change yet): a follower just added must be waited
        //  for, and one just removed must not come back
        for (uint32_t i = 0; i < state->replica_count; i++) {
            replica_t *replica = &state->replicas [i];
            char needle [AF_CLUSTER_ID + 3];
            snprintf (needle, sizeof needle, ",%s,", replica->id);
            char haystack [sizeof state->isr + 2];
            snprintf (haystack, sizeof haystack, ",%s,", isr);
            if (at >= replica->isr_rev)
                replica->in_isr = strstr (haystack, needle) != NULL;
        }
        if (streq (owner, self->id) && !was_owner) {
            state->role = SHARD_OWNER;
            state->head = s_head (self, shard);
            af_store_log_epoch (af_registry_store (self->registry), shard, state->epoch);
            af_store_log_own (af_registry_store (self->registry), shard, true);
            zsys_info ("broker: we own shard %u now (epoch %" PRIu64 ", log at %" PRIu64 ")", shard,
                       state->epoch, state->head);
        }
        else
        if (!streq (owner, self->id) && was_owner) {
            af_store_log_own (af_registry_store (self->registry), shard, false);
            state->role = SHARD_NONE;
            s_replicas_clear (self, state);
            s_shard_lost (self, shard);     //  (while leaving still says where it went)
            state->leaving = false;
        }
        bool began = s_follow (self, shard);
        if ((moved || began) && state->role == SHARD_FOLLOWER)
            s_ack_unasked (self, shard);
        s_claim_maybe (self, shard, zclock_mono (), true);
        broker_cluster_release (self);
        s_unpark (self, shard, zclock_mono ());     //  the LOGINs that waited for its owner
    }
    zstr_free (&number);
    zstr_free (&owner);
    zstr_free (&epoch);
    zstr_free (&isr);
    zstr_free (&born);
    zstr_free (&revision);
}

static void
s_on_isr_done (af_broker_t *self, zmsg_t *msg)
{
    char *number = zmsg_popstr (msg), *id = zmsg_popstr (msg), *what = zmsg_popstr (msg), *ok = zmsg_popstr (msg),
         *revision = zmsg_popstr (msg);
    uint32_t shard = number? (uint32_t) atol (number): UINT32_MAX;
    replica_t *replica = shard < self->shard_count && id? s_replica (&self->shards [shard], id, false): NULL;
    if (replica && what && ok && revision) {
        replica->asking = false;
        if (streq (what, "add"))
            replica->joining = false;   //  in the set now, or (the epoch moved on) not to be
        if (streq (ok, "ok")) {
            replica->in_isr = streq (what, "add");
            replica->isr_rev = (uint64_t) strtoull (revision, NULL, 10);
        }
        zsys_info ("broker: %s %s the in-sync set of shard %u%s", id, streq (what, "add")? "joined": "left",
                   shard, streq (ok, "ok")? "": " (not written: the epoch moved on)");
    }
    zstr_free (&number);
    zstr_free (&id);
    zstr_free (&what);
    zstr_free (&ok);
    zstr_free (&revision);
    broker_cluster_release (self);
}

static int
s_coordinator_event (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    af_broker_t *self = (af_broker_t *) arg;
    zmsg_t *msg = zmsg_recv (pipe);
    char *command = msg? zmsg_popstr (msg): NULL;
    if (!command)
        ;
    else
    if (streq (command, "LEASE")) {
        char *until = zmsg_popstr (msg);
        if (!self->lease_until)
            self->lease_since = zclock_mono ();     //  a new lease (at start, or after LOST)
        self->lease_until = until? (int64_t) strtoll (until, NULL, 10): 0;
        zstr_free (&until);
        broker_cluster_release (self);
    }
    else
    if (streq (command, "LOST")) {
        self->lease_until = 0;
        zsys_warning ("broker: our cluster lease is gone: we own nothing until we claim again");
        for (uint32_t shard = 0; shard < self->shard_count; shard++)
            if (self->shards [shard].role == SHARD_OWNER) {
                af_store_log_own (af_registry_store (self->registry), shard, false);
                self->shards [shard].role = SHARD_NONE;
                s_replicas_clear (self, &self->shards [shard]);
                self->shards [shard].leaving = false;
                s_shard_lost (self, shard);
            }
        broker_cluster_release (self);
    }
    else
    if (streq (command, "FATAL")) {
        char *reason = zmsg_popstr (msg);
        zsys_error ("broker: the cluster will not have us: %s", reason? reason: "?");
        zstr_free (&reason);
        zstr_free (&command);
        zmsg_destroy (&msg);
        return -1;                      //  ends the loop: the broker stops
    }
    else
    if (streq (command, "BROKERS"))
        s_on_brokers (self, msg);
    else
    if (streq (command, "SHARD"))
        s_on_shard (self, msg);
    else
    if (streq (command, "ISR_DONE"))
        s_on_isr_done (self, msg);
    else
    if (streq (command, "CLAIMED")) {
        char *number = zmsg_popstr (msg), *ok = zmsg_popstr (msg);
        uint32_t shard = number? (uint32_t) atol (number): UINT32_MAX;
        if (shard < self->shard_count)
            self->shards [shard].claiming = false;
        zstr_free (&number);
        zstr_free (&ok);
    }
    else
    if (streq (command, "RELEASED")) {
        char *number = zmsg_popstr (msg);
        uint32_t shard = number? (uint32_t) atol (number): UINT32_MAX;
        if (shard < self->shard_count)
            self->shards [shard].releasing = false;
        zstr_free (&number);
    }
    zstr_free (&command);
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  The mesh and the log's trimming

zsock_t *
broker_mesh_connect (af_broker_t *self, const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    zcert_apply (self->cert, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (self->cert));  //  one cluster key
    zsock_set_identity (dealer, self->id);
    zsock_set_linger (dealer, 0);
    zsock_set_sndtimeo (dealer, 0);
    zsock_set_sndhwm (dealer, AF_SOCKET_HWM);
    zsock_set_maxmsgsize (dealer, AF_MAX_ZMQ_MSG);
    if (zsock_connect (dealer, "%s", endpoint)) {
        zsys_error ("broker: cannot connect to the cluster member at %s", endpoint);
        zsock_destroy (&dealer);
    }
    return dealer;
}

//  Entries every follower we know has, beyond the last log_keep, go; a
//  follower keeps its last log_keep too, to serve when it is promoted. A
//  follower that needs what went (one we did not know then) is sent a
//  copy of the shard (s_copy, broker_snapshot.c)
void
broker_cluster_trim (af_broker_t *self)
{
    broker_batch_begin (self);
    af_store_t *store = af_registry_store (self->registry);
    for (uint32_t shard = 0; shard < self->shard_count; shard++) {
        shard_t *state = &self->shards [shard];
        uint64_t upto = state->head;
        for (uint32_t i = 0; state->role == SHARD_OWNER && i < state->replica_count; i++)
            if (state->replicas [i].acked < upto)
                upto = state->replicas [i].acked;       //  UINT64_MAX (unknown) keeps all
        if (state->role == SHARD_NONE || upto <= (uint64_t) self->config.cluster_log_keep)
            continue;
        upto -= (uint64_t) self->config.cluster_log_keep;
        MDB_txn *txn = NULL;
        if (af_store_begin (store, true, &txn))
            break;
        if (af_store_log_trim (store, txn, shard, upto, NULL) == AF_OK)
            af_store_commit (store, &txn);
        else
            af_store_abort (store, &txn);
    }
    broker_batch_end (self);
}

//  --------------------------------------------------------------------------
//  The tick: claims, hand-offs, followers that fell behind

//  Has the live set (members, their endpoints, who drains) stayed as it is
//  for a lease? A placement computed while brokers come and go (after an
//  etcd outage every lease ends at once, and each broker registers again
//  in its own time) is not one to move shards for: each move pauses the
//  shard and sends its devices elsewhere
static bool
s_stable (af_broker_t *self, int64_t now)
{
    return now - self->members_at >= (int64_t) self->config.cluster_lease_s * 1000;
}

//  Does a batch still held for its followers hold writes of shard?
static bool
s_shard_held (af_broker_t *self, uint32_t shard)
{
    for (unit_t *unit = (unit_t *) zlistx_first (self->units); unit; unit = (unit_t *) zlistx_next (self->units)) {
        if (unit->all)
            return true;
        for (uint32_t s = 0; s < unit->count; s++)
            if (unit->shards [s] == shard)
                return true;
    }
    return false;
}

//  Hand-off of a shard we own to its wanted owner `next` (ARCHITECTURE
//  "Moves"), when next is another broker in our in-sync set and the live
//  set is stable. First we stop taking requests for the shard (they are
//  answered REDIRECT, no owner yet: the node asks again shortly, and the
//  store refuses writes to it); once next has acked our log's head and no
//  batch held for followers holds the shard, we delete our owner key at
//  our epoch, and next claims it (it comes first in rank order, so it
//  does not wait: s_may_claim). Abandoned, and the shard served again, if
//  next leaves the in-sync set (it did not ack within repl_timeout) or
//  is no longer the wanted owner meanwhile. What it waits for, if it
//  waits, goes into why (a drain logs it: s_drain_log).
static void
s_handoff (af_broker_t *self, uint32_t shard, const char *next_id, int64_t now, char *why, size_t size)
{
    shard_t *state = &self->shards [shard];
    replica_t *next = next_id && !streq (next_id, self->id)? s_replica (state, next_id, false): NULL;
    bool fit = next && next->in_isr && !next->asking;
    uint64_t acked = next && next->acked != UINT64_MAX? next->acked: 0;
    *why = 0;
    if (next_id && streq (next_id, self->id))
        return;                         //  we are its wanted owner
    if (state->releasing) {
        snprintf (why, size, "its release is with etcd");
        return;
    }
    if (state->leaving) {
        if (!fit || !streq (next->id, state->leaving_to)) {
            zsys_warning ("broker: hand-off of shard %u to %s abandoned (%s): serving it again", shard,
                          state->leaving_to, fit? "another broker is wanted now": "it left the in-sync set");
            state->leaving = false;
            af_store_log_own (af_registry_store (self->registry), shard, true);
        }
        else
        if (next->acked != UINT64_MAX && next->acked >= state->head && next->matched && !s_shard_held (self, shard)) {
            state->releasing = true;
            s_tell (self, "RELEASE", shard, NULL, state->epoch);
        }
        else
            snprintf (why, size, "handing it to %s, which has acked %" PRIu64 " of our %" PRIu64 " entries%s",
                      next->id, acked, state->head, s_shard_held (self, shard)? " (a batch held for followers holds it)": "");
        return;
    }
    if (fit && s_stable (self, now)) {
        zsys_info ("broker: handing shard %u to %s", shard, next->id);
        state->leaving = true;          //  no new requests: they are sent on
        snprintf (state->leaving_to, sizeof state->leaving_to, "%s", next->id);
        af_store_log_own (af_registry_store (self->registry), shard, false);
        s_repl_send (self, shard, next, now);
    }
    else
    if (!next_id)
        snprintf (why, size, "no broker may take it");
    else
    if (!next)
        snprintf (why, size, "its next owner %s is not our follower yet", next_id);
    else
    if (!fit)
        snprintf (why, size, "its next owner %s is not in its in-sync set%s (acked %" PRIu64 " of our %" PRIu64
                  " entries%s)", next->id, next->asking? " yet (asked of etcd)": "", acked, state->head,
                  next->snapshot? ", taking a copy": next->joining? ", joining": "");
    else
        snprintf (why, size, "the live set changed %" PRId64 " ms ago, and hand-offs wait for %d ms of it unchanged",
                  now - self->members_at, self->config.cluster_lease_s * 1000);
}

//  May we claim shard, which nobody owns? One that never had an owner: if
//  we are its wanted owner. Else we must be in its in-sync set, and we
//  claim at once if we come first in rank order among the set's live,
//  non-draining members (the wanted owner, when it is in the set; if
//  none is, among the draining ones), else only once it has been without
//  an owner for AF_CLUSTER_CLAIM_GRACE_MS while we held a lease (the
//  first is slow, or sees another map). While our own lease is younger
//  than that grace, members of the set not live count as well: after an
//  etcd outage every lease ended at once and the brokers come back one
//  by one, and the first back would otherwise claim every shard it is in
//  sync for, only to hand each on once the others are back.
static bool
s_may_claim (af_broker_t *self, uint32_t shard, int64_t now)
{
    shard_t *state = &self->shards [shard];
    if (!state->born)
        return !self->draining && s_is_wanted (self, shard, self->id, true);
    if (!s_in_sync (self, shard) || broker_snapshot_pending (self, shard))
        return false;                   //  (half a copy: never, whatever etcd says)
    int64_t since = state->unowned_at > self->lease_since? state->unowned_at: self->lease_since;
    if (now - since >= AF_CLUSTER_CLAIM_GRACE_MS)
        return true;
    bool young = now - self->lease_since < AF_CLUSTER_CLAIM_GRACE_MS;
    char list [sizeof state->isr];
    snprintf (list, sizeof list, "%s", state->isr);
    const char *first [2] = { NULL, NULL };     //  the first not draining, the first draining
    uint64_t ranks [2] = { 0, 0 };
    for (char *save = NULL, *id = strtok_r (list, ",", &save); id; id = strtok_r (NULL, ",", &save)) {
        peer_t *peer = (peer_t *) zhashx_lookup (self->peers, id);
        bool us = streq (id, self->id);
        if (!peer && !us && !young)
            continue;                   //  not live: it cannot claim
        int tier = (us? self->draining: peer && peer->draining)? 1: 0;
        uint64_t rank = s_rank (shard, id);
        if (!first [tier] || rank > ranks [tier]) {
            first [tier] = id;
            ranks [tier] = rank;
        }
    }
    const char *claimer = first [0]? first [0]: first [1];
    return claimer && streq (claimer, self->id);
}

//  Claim shard if nobody owns it and we may: at every tick, and (at_once)
//  as soon as its owner goes or the live set changes (a claim a tick later
//  was up to a second more of a failover). A shard never owned waits for
//  the tick: at a cluster's first start the others have a moment to come,
//  or the first would claim every shard and hand half of them on. The
//  members of its in-sync set that are no longer in the cluster (the
//  owner that died) leave the set in the claim's own transaction: not
//  while our lease is young, when the live set we know may not be whole
static void
s_claim_maybe (af_broker_t *self, uint32_t shard, int64_t now, bool at_once)
{
    shard_t *state = &self->shards [shard];
    if (*state->owner || state->claiming || now >= self->lease_until || (at_once && !state->born)
    ||  !s_may_claim (self, shard, now))
        return;
    char gone [sizeof state->isr] = "", list [sizeof state->isr];
    size_t used = 0;
    snprintf (list, sizeof list, "%s", state->isr);
    bool young = now - self->lease_since < AF_CLUSTER_CLAIM_GRACE_MS;
    for (char *save = NULL, *id = strtok_r (list, ",", &save); id && !young; id = strtok_r (NULL, ",", &save))
        if (!streq (id, self->id) && !zhashx_lookup (self->peers, id))
            used += (size_t) snprintf (gone + used, sizeof gone - used, "%s%s", used? ",": "", id);
    state->claiming = true;
    s_tell (self, "CLAIM", shard, gone, 0);
}

//  A shard we own: its followers, the in-sync set, a hand-off (what that
//  waits for goes into why)
static void
s_tick_owner (af_broker_t *self, uint32_t shard, int64_t now, char *why, size_t size)
{
    shard_t *state = &self->shards [shard];
    const char *wanted [1 + AF_CLUSTER_MAX_REPLICAS];
    uint32_t count = s_wanted (self, shard, wanted);
    //  Our followers: the wanted ones (and whoever is in the in-sync set)
    for (uint32_t i = 0; i < count; i++)
        if (!streq (wanted [i], self->id))
            s_replica (state, wanted [i], true);
    //  ... and no others: one neither wanted nor in sync is forgotten
    for (uint32_t i = 0; i < state->replica_count; i++) {
        replica_t *replica = &state->replicas [i];
        if (!replica->in_isr && !replica->asking && !replica->joining && !s_is_wanted (self, shard, replica->id, false)) {
            broker_snapshot_end (self, replica);
            state->replicas [i] = state->replicas [--state->replica_count];
            i--;
        }
    }
    //  Every wanted follower in the set (then one no longer wanted can go)
    bool placed = s_stable (self, now);
    for (uint32_t i = 0; i < count; i++) {
        replica_t *replica = streq (wanted [i], self->id)? NULL: s_replica (state, wanted [i], false);
        if (replica && (!replica->in_isr || replica->asking))
            placed = false;
    }
    for (uint32_t i = 0; i < state->replica_count; i++) {
        replica_t *replica = &state->replicas [i];
        //  A follower level with us gets no REPL, so no ack calls s_join:
        //  one that was not wanted when it last acked joins now
        if (replica->acked != UINT64_MAX && !replica->in_flight)
            s_join (self, shard, replica);
        s_repl_send (self, shard, replica, now);
        //  Behind for too long (silent, or gone from the cluster): out of
        //  the in-sync set before we ack without it
        //  Silent: no ack for repl_timeout while it owes us one. Not since
        //  its last ack alone: a follower level with us gets nothing to
        //  ack, and one idle for longer than repl_timeout was taken out of
        //  the set at the first tick after the next write whose ack was
        //  not back yet (under load, often; issue 12's "live followers
        //  miss repl_timeout"). So from the REPL that it owes an ack for,
        //  if that is later (a resend after a timeout keeps the first)
        bool behind = replica->acked == UINT64_MAX || replica->acked < state->head || !replica->matched;
        int64_t heard = replica->last_ack > replica->since? replica->last_ack: replica->since;
        if (replica->in_flight && replica->owed_at > heard)
            heard = replica->owed_at;
        if (replica->joining && !replica->asking && behind && now - heard > self->config.cluster_repl_ms) {
            replica->joining = false;   //  not in etcd's set: no one to tell
            zsys_warning ("broker: %s has not acked shard %u for %d ms: it is not waited for while it catches up",
                          replica->id, shard, self->config.cluster_repl_ms);
        }
        //  A member of the set that is no longer a member of the cluster
        //  (its lease ended: the owner we took over from, dead) will never
        //  ack: out at once, not after repl_timeout, for every batch waits
        //  for it meanwhile, and batches are released in order
        bool gone = !zhashx_lookup (self->peers, replica->id);
        if (replica->in_isr && !replica->asking && gone) {
            replica->asking = true;
            zsys_info ("broker: %s is no longer in the cluster: removing it from the in-sync set of shard %u",
                       replica->id, shard);
            s_tell (self, "ISR_DEL", shard, replica->id, state->epoch);
        }
        if (replica->in_isr && behind && !replica->asking && now - heard > self->config.cluster_repl_ms) {
            replica->asking = true;
            zsys_warning ("broker: %s has not acked shard %u for %d ms: removing it from the in-sync set "
                          "(it has acked %" PRIu64 "%s of our %" PRIu64 "; %s)", replica->id, shard,
                          self->config.cluster_repl_ms, replica->acked == UINT64_MAX? 0: replica->acked,
                          replica->matched? "": ", not matched", state->head,
                          replica->in_flight? "REPLs to it unanswered": "nothing in flight to it");
            s_tell (self, "ISR_DEL", shard, replica->id, state->epoch);
        }
        //  In sync but no longer wanted (the placement moved on, or it is
        //  draining): out of the set once the wanted followers are all in
        //  it, so that the set is the placement again (and a draining
        //  broker ends up following nothing). Not while the live set
        //  moves: the placement may come back
        if (replica->in_isr && !replica->asking && placed && !s_is_wanted (self, shard, replica->id, false)) {
            replica->asking = true;
            zsys_info ("broker: %s is no longer wanted for shard %u: removing it from the in-sync set",
                       replica->id, shard);
            s_tell (self, "ISR_DEL", shard, replica->id, state->epoch);
        }
    }
    s_handoff (self, shard, count? wanted [0]: NULL, now, why, size);
}

//  While we drain, every AF_CLUSTER_DRAIN_LOG_MS: what each shard that
//  keeps us waits for (the first AF_CLUSTER_DRAIN_LOG_SHARDS of them, then
//  how many more), so that an operator sees why a drain takes its time.
//  why: what the hand-off of a shard we own waits for ("" if nothing)
static void
s_drain_log (af_broker_t *self, uint32_t shard, char *why, size_t size, uint32_t *waiting)
{
    shard_t *state = &self->shards [shard];
    if (!*why && state->role != SHARD_OWNER && s_in_sync (self, shard))
        snprintf (why, size, "we are in its in-sync set still: its owner %s takes us out once its wanted "
                  "followers are in it", *state->owner? state->owner: "(none yet)");
    if (*why && ++*waiting <= AF_CLUSTER_DRAIN_LOG_SHARDS)
        zsys_info ("broker: draining: shard %u waits: %s", shard, why);
}

void
broker_cluster_tick (af_broker_t *self, int64_t now)
{
    if (!self->cluster)
        return;
    bool report = self->draining && now - self->drain_log_at >= AF_CLUSTER_DRAIN_LOG_MS;
    uint32_t waiting = 0;
    for (uint32_t shard = 0; shard < self->shard_count; shard++) {
        shard_t *state = &self->shards [shard];
        char why [256] = "";
        if (state->role == SHARD_OWNER)
            s_tick_owner (self, shard, now, why, sizeof why);
        else
        s_claim_maybe (self, shard, now, false);
        if (report)
            s_drain_log (self, shard, why, sizeof why, &waiting);
    }
    if (report) {
        self->drain_log_at = now;
        uint32_t more = waiting > AF_CLUSTER_DRAIN_LOG_SHARDS? waiting - AF_CLUSTER_DRAIN_LOG_SHARDS: 0;
        if (more)
            zsys_info ("broker: draining: %u more shard%s", more, more == 1? " waits": "s wait");
    }
    if (now - self->published_at >= 1000) {
        self->published_at = now;
        broker_cluster_publish (self);
    }
    //  The log: what every follower has, beyond what we keep, goes
    int64_t every = 10000;
    if (now - self->trim_at >= every) {
        self->trim_at = now;
        broker_cluster_trim (self);
    }
    //  FORWARDs: timeouts, sends again; our unresolved intents
    broker_forward_tick (self, now);
    broker_xacct_resend (self, now);
    s_unpark (self, UINT32_MAX, now);   //  LOGINs whose time is up (and any with an owner now)
}

//  --------------------------------------------------------------------------
//  Draining (appferry-broker --drain, or SIGUSR1): wanted nowhere, we hand
//  every shard we own to its wanted owner by the hand-offs above, the
//  owners of the shards we follow take us out of their in-sync sets once
//  their wanted followers are in, and we stop when we own and follow
//  nothing

static void
s_drain_start (af_broker_t *self)
{
    if (self->draining) {
        zsys_info ("broker: asked to drain again: draining already");
        return;
    }
    //  Every shard needs an owner and its followers among those that stay
    size_t staying = 0;
    for (peer_t *peer = (peer_t *) zhashx_first (self->peers); peer; peer = (peer_t *) zhashx_next (self->peers))
        if (!peer->draining && !streq (peer->id, self->id))
            staying++;
    size_t needed = 1 + (size_t) self->config.cluster_replicas;
    if (staying < needed) {
        snprintf (self->drain, sizeof self->drain, "refused: %zu other broker%s would stay, and every shard needs "
                  "%zu (an owner and cluster/replicas = %d follower%s)", staying, staying == 1? "": "s", needed,
                  self->config.cluster_replicas, self->config.cluster_replicas == 1? "": "s");
        zsys_error ("broker: not draining: %s", self->drain + strlen ("refused: "));
    }
    else {
        self->draining = true;
        self->drain_log_at = zclock_mono ();   //  the first account of what it waits for: in a while
        snprintf (self->drain, sizeof self->drain, "draining");
        zstr_send (self->coordinator, "DRAIN");
        zsys_info ("broker: draining: handing off every shard we own, then stopping");
    }
    broker_cluster_publish (self);
}

static int
s_drain_signal (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    af_broker_t *self = (af_broker_t *) arg;
    struct signalfd_siginfo info;
    if (read (item->fd, &info, sizeof info) == (ssize_t) sizeof info && info.ssi_signo == SIGUSR1)
        s_drain_start (self);
    return 0;
}

//  Drained: etcd has us draining (so no one hands us anything), and we
//  own, follow, claim and hold nothing. Then the loop ends: the broker
//  stops, revoking its lease, and exits 0
static int
s_drain_check (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    af_broker_t *self = (af_broker_t *) arg;
    peer_t *us = self->draining? (peer_t *) zhashx_lookup (self->peers, self->id): NULL;
    if (!us || !us->draining || zlistx_size (self->units))
        return 0;
    for (uint32_t shard = 0; shard < self->shard_count; shard++) {
        shard_t *state = &self->shards [shard];
        if (state->role != SHARD_NONE || state->claiming || state->releasing || state->leaving
        ||  s_in_sync (self, shard))
            return 0;
    }
    snprintf (self->drain, sizeof self->drain, "drained");
    broker_cluster_publish (self);
    zsys_info ("broker: drained: we own and follow no shard; stopping");
    return -1;
}

//  --------------------------------------------------------------------------
//  Start and stop

//  Our ID: the configured one, or made once and kept in DATA/broker.id
static int
s_identity (af_broker_t *self)
{
    if (*self->config.cluster_id) {
        snprintf (self->id, sizeof self->id, "%s", self->config.cluster_id);
        return 0;
    }
    char path [600];
    snprintf (path, sizeof path, "%s/broker.id", self->config.data_dir);
    FILE *file = fopen (path, "r");
    if (file) {
        bool ok = fgets (self->id, sizeof self->id, file) != NULL;
        fclose (file);
        self->id [strcspn (self->id, "\n")] = 0;
        if (ok && strlen (self->id) == AF_CLUSTER_ID)
            return 0;
    }
    uint8_t id [AF_CLUSTER_ID / 2];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (self->id, sizeof self->id, id, sizeof id);
    file = fopen (path, "w");
    if (!file || fprintf (file, "%s\n", self->id) < 0 || fclose (file)) {
        zsys_error ("broker: cannot write %s", path);
        return -1;
    }
    return 0;
}

static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

int
broker_cluster_start (af_broker_t *self)
{
    self->drain_fd = -1;
    if (!*self->config.etcd)
        return 0;                       //  a single broker: it serves every account
    if (s_identity (self))
        return -1;
    self->cluster = true;
    self->shard_count = (uint32_t) self->config.cluster_shards;
    self->shards = (shard_t *) calloc (self->shard_count, sizeof (shard_t));
    assert (self->shards);
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, s_peer_free);
    self->units = zlistx_new ();
    self->parked = zlistx_new ();
    zlistx_set_destructor (self->parked, s_parked_free);
    zlistx_set_destructor (self->units, s_unit_free);
    self->acks = zlistx_new ();
    zlistx_set_destructor (self->acks, s_free_item);
    if (af_store_log_enable (af_registry_store (self->registry), self->shard_count) != AF_OK)
        return -1;
    //  The mesh: other brokers of the cluster hold our key, and only they
    self->mesh = zsock_new (ZMQ_ROUTER);
    assert (self->mesh);
    zcert_apply (self->cert, self->mesh);
    zsock_set_curve_server (self->mesh, 1);
    zsock_set_zap_domain (self->mesh, AF_ZAP_PEERS);
    //  A member that comes back (after an etcd outage every member is
    //  gone and back at once, and each connects a new DEALER to the
    //  others) connects under the ID its old connection still holds here
    //  until we notice that one closed: the new one takes it over. Without
    //  this the new connection was refused, its identity frame spent, and
    //  nothing it sent was heard (a follower whose acks never came back:
    //  out of in-sync sets for good after an outage)
    zsock_set_router_handover (self->mesh, 1);
    zsock_set_maxmsgsize (self->mesh, AF_MAX_ZMQ_MSG);
    zsock_set_rcvhwm (self->mesh, AF_SOCKET_HWM);
    zsock_set_linger (self->mesh, 0);
    zsock_set_rcvtimeo (self->mesh, 0);
    if (broker_bind (self->mesh, self->config.cluster_peers, self->mesh_endpoint, sizeof self->mesh_endpoint))
        return -1;
    const char *nodes = *self->config.cluster_advertise? self->config.cluster_advertise: self->nodes_endpoint;
    af_coordinator_args_t args = { self->config.etcd, self->id, nodes, self->mesh_endpoint,
                                   self->shard_count, self->config.cluster_lease_s };
    self->coordinator = zactor_new (af_coordinator_actor, &args);
    if (!self->coordinator)
        return -1;
    zloop_reader (self->loop, zactor_sock (self->coordinator), s_coordinator_event, self);
    zloop_reader (self->loop, self->mesh, s_peer_event, self);
    //  SIGUSR1 asks us to drain; it comes through a signalfd, so main
    //  blocks it before any thread starts (threads inherit the mask)
    sigset_t usr1;
    sigemptyset (&usr1);
    sigaddset (&usr1, SIGUSR1);
    self->drain_fd = signalfd (-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC);
    zmq_pollitem_t drain = { NULL, self->drain_fd, ZMQ_POLLIN, 0 };
    if (self->drain_fd < 0 || zloop_poller (self->loop, &drain, s_drain_signal, self)
    ||  zloop_timer (self->loop, 250, 0, s_drain_check, self) < 0) {
        zsys_error ("broker: cannot wait for SIGUSR1 (--drain): %s", strerror (errno));
        return -1;
    }
    self->members_at = zclock_mono ();
    zsys_info ("broker: cluster member %s: %u shards, etcd %s, mesh %s", self->id, self->shard_count,
               self->config.etcd, self->mesh_endpoint);
    //  DATA/cluster.json from the start, not from the first tick: it says
    //  --drain and --cluster-status that this is a member (a cluster that
    //  claims at once can be in sync before that tick)
    self->published_at = zclock_mono ();
    broker_cluster_publish (self);
    return 0;
}

void
broker_cluster_stop (af_broker_t *self)
{
    if (!self->cluster)
        return;
    broker_forward_stop (self);
    //  Our lease is revoked on the way out: the others take over at once
    zactor_destroy (&self->coordinator);
    if (self->drain_fd >= 0)
        close (self->drain_fd);         //  (the loop no longer runs)
    self->drain_fd = -1;
    zsock_destroy (&self->mesh);
    zhashx_destroy (&self->peers);
    for (parked_t *parked = (parked_t *) zlistx_first (self->parked); parked;
         parked = (parked_t *) zlistx_next (self->parked))
        parked->session->parked = NULL;
    zlistx_destroy (&self->parked);
    zlistx_destroy (&self->units);
    zlistx_destroy (&self->acks);
    for (uint32_t shard = 0; shard < self->shard_count; shard++)
        s_replicas_clear (self, &self->shards [shard]);
    free (self->shards);
    self->shards = NULL;
    self->cluster = false;
}
