/*  =========================================================================
    broker_snapshot - a copy of a shard for a follower whose entries were
    trimmed

    An owner keeps its log's last cluster/log_keep entries beyond what
    every follower it knows has acked; a broker added later (or one away
    for long) needs entries that are gone, and before this it stayed out
    of the in-sync set for good. So the owner sends it the shard itself
    (SPEC 5.37 SNAPSHOT, 10.16): every key of the shard in every database,
    read in one read transaction kept open for the copy (af_store_snap_*),
    at the log seq S of that transaction, in parts of at most
    AF_CLUSTER_SNAPSHOT_CHUNK bytes of records, one part in flight as with
    REPL, then a last part with the owner's log entry S; then REPL from S.

    Why a read transaction held for the whole copy and not a file copy
    (mdb_env_copyfd2): the store holds every shard the broker owns or
    follows, and a follower wants one shard of it; LMDB's read
    transactions cost the writer nothing but the pages they pin (the
    store grows while a long copy runs: a copy not answered for
    AF_CLUSTER_SNAPSHOT_IDLE_MS is dropped; at most AF_CLUSTER_SNAPSHOTS
    copies are sent at once, so a broker added to a cluster of 256 shards
    does not take as many read transactions, and parts, at once).

    The follower applies each part in its group commit and answers after
    the commit; the store keeps its head for the shard at 0 until the last
    part is on disk, so it acks nothing of the shard as having it before
    the copy is whole, and it claims nothing meanwhile. A follower killed
    in the middle keeps the parts it committed and their record: the
    owner's resend of the next part continues the copy; a part of
    another copy (the owner dropped this one, or is another broker now)
    is answered REPL_ACK 0, and the owner begins again from part 0.
    =========================================================================
*/
#include "broker_snapshot.h"

//  A copy under way to one follower
struct _snapshot_t {
    af_store_snap_t *snap;          //  the read transaction
    uint64_t epoch, seq;
    uint32_t part;                  //  the part in flight, or the next
    af_msg_t *msg;                  //  ... in flight (for resends), or NULL
    bool scanned;                   //  every key read: the next part is the last
    int64_t sent_at, heard_at;
    uint64_t bytes;                 //  records sent
};

static void
s_free (snapshot_t **copy_p)
{
    snapshot_t *copy = *copy_p;
    if (copy) {
        af_store_snap_destroy (&copy->snap);
        af_msg_destroy (&copy->msg);
        free (copy);
        *copy_p = NULL;
    }
}

void
broker_snapshot_end (af_broker_t *self, replica_t *replica)
{
    if (replica->snapshot) {
        assert (self->copies > 0);
        self->copies--;
    }
    s_free (&replica->snapshot);
}

int64_t
broker_snapshot_part (replica_t *replica)
{
    return replica->snapshot? (int64_t) replica->snapshot->part: -1;
}

//  The next part, into copy->msg; 0 or -1 (logged: the copy ends)
static int
s_part (af_broker_t *self, uint32_t shard, snapshot_t *copy)
{
    (void) self;
    af_msg_t *part = af_msg_new (AF_MSG_SNAPSHOT);
    part->shard = shard;
    part->epoch = copy->epoch;
    part->seq = copy->seq;
    part->part = copy->part;
    size_t used = 0;
    int code = AF_OK;
    if (!copy->scanned) {
        part->body = (uint8_t *) malloc (AF_MAX_REPL);
        assert (part->body);
        code = af_store_snap_next (copy->snap, part->body, AF_MAX_REPL, AF_CLUSTER_SNAPSHOT_CHUNK, &used,
                                   &copy->scanned);
        part->body_size = (uint32_t) used;
    }
    if (code == AF_OK && !used && copy->scanned) {
        //  The last part: no records, the log entry at the copy's seq
        const void *entry;
        size_t size;
        code = af_store_snap_entry (copy->snap, &entry, &size);
        if (code == AF_OK && size > AF_MAX_REPL)
            code = AF_E_TOO_BIG;
        if (code == AF_OK) {
            part->last = true;
            part->data = (uint8_t *) malloc (size);
            assert (part->data);
            memcpy (part->data, entry, size);
            part->data_size = (uint32_t) size;
        }
    }
    if (part->body && !part->body_size) {
        free (part->body);
        part->body = NULL;
    }
    if (code != AF_OK) {
        zsys_error ("broker: cannot read part %u of the copy of shard %u: %s", copy->part, shard, af_code_name (code));
        af_msg_destroy (&part);
        return -1;
    }
    copy->bytes += used;
    copy->msg = part;
    return 0;
}

void
broker_snapshot_send (af_broker_t *self, uint32_t shard, replica_t *replica, int64_t now)
{
    shard_t *state = &self->shards [shard];
    peer_t *peer = (peer_t *) zhashx_lookup (self->peers, replica->id);
    if (!peer || !peer->dealer)
        return;
    snapshot_t *copy = replica->snapshot;
    if (copy && copy->epoch != state->epoch) {
        broker_snapshot_end (self, replica);    //  taken under an epoch that is over: again
        copy = NULL;
    }
    if (copy && now - copy->heard_at > AF_CLUSTER_SNAPSHOT_IDLE_MS) {
        zsys_warning ("broker: %s has not answered the copy of shard %u for %d s: dropped; it begins again "
                      "once it answers", replica->id, shard, AF_CLUSTER_SNAPSHOT_IDLE_MS / 1000);
        broker_snapshot_end (self, replica);
        replica->acked = UINT64_MAX;    //  a probe asks it where it is
        return;
    }
    if (!copy && self->copies >= AF_CLUSTER_SNAPSHOTS)
        return;                         //  it waits for one of those to end
    if (!copy) {
        copy = (snapshot_t *) zmalloc (sizeof (snapshot_t));
        assert (copy);
        copy->epoch = state->epoch;
        copy->snap = af_store_snap_new (af_registry_store (self->registry), shard, state->epoch);
        copy->seq = copy->snap? af_store_snap_seq (copy->snap): 0;
        copy->heard_at = now;
        if (!copy->seq) {
            s_free (&copy);             //  (logged; or no log: nothing to copy)
            return;
        }
        replica->snapshot = copy;
        self->copies++;
        replica->in_flight = false;     //  what REPL had in flight is over
        replica->flights = 0;
        replica->sent_last = 0;
        replica->sent_head = copy->seq;
        zsys_info ("broker: sending %s a copy of shard %u at seq %" PRIu64 " (it has %" PRIu64 "; %s)", replica->id,
                   shard, copy->seq, replica->acked, replica->diverged? "other entries than ours at our seqs":
                   replica->acked != UINT64_MAX && replica->acked > copy->seq? "more than our log":
                   "our log begins after what it has");
    }
    if (copy->msg && now - copy->sent_at < self->config.cluster_repl_ms)
        return;                         //  one part in flight
    if (!copy->msg && s_part (self, shard, copy)) {
        broker_snapshot_end (self, replica);
        return;
    }
    if (af_msg_send (copy->msg, peer->dealer, NULL) == 0)
        copy->sent_at = now;
}

void
broker_snapshot_ack (af_broker_t *self, const char *from, af_msg_t *ack)
{
    shard_t *state = &self->shards [ack->shard];
    if (state->role != SHARD_OWNER || ack->epoch != state->epoch)
        return;
    replica_t *replica = NULL;
    for (uint32_t i = 0; i < state->replica_count; i++)
        if (streq (state->replicas [i].id, from))
            replica = &state->replicas [i];
    snapshot_t *copy = replica? replica->snapshot: NULL;
    if (!copy || !copy->msg || ack->seq != copy->seq || ack->part != copy->part)
        return;                         //  an answer to a part no longer in flight
    int64_t now = zclock_mono ();
    copy->heard_at = now;
    replica->last_ack = now;
    af_msg_destroy (&copy->msg);
    copy->part++;
    broker_snapshot_send (self, ack->shard, replica, now);
}

bool
broker_snapshot_answered (af_broker_t *self, uint32_t shard, replica_t *replica, uint64_t seq)
{
    snapshot_t *copy = replica->snapshot;
    if (!copy)
        return false;
    bool done = seq >= copy->seq;
    if (done)
        zsys_info ("broker: %s has the copy of shard %u at seq %" PRIu64 " (%u parts, %" PRIu64 " bytes): "
                   "the log follows", replica->id, shard, copy->seq, copy->part + 1, copy->bytes);
    else
        zsys_warning ("broker: %s refused part %u of the copy of shard %u (it is at %" PRIu64 "): "
                      "the copy begins again", replica->id, copy->part, shard, seq);
    broker_snapshot_end (self, replica);
    return done;
}

//  --------------------------------------------------------------------------
//  Follower

void
broker_snapshot_apply (af_broker_t *self, const char *from, af_msg_t *msg)
{
    shard_t *state = &self->shards [msg->shard];
    if (state->role != SHARD_FOLLOWER || !streq (state->owner, from) || msg->epoch != state->epoch) {
        if (af_loglimit_pass (self->drop_log, zclock_mono ()))
            zsys_warning ("broker: refused SNAPSHOT of shard %u from %s (epoch %" PRIu64 "): %s", msg->shard, from,
                          msg->epoch, state->role != SHARD_FOLLOWER? "we do not follow that shard":
                          !streq (state->owner, from)? "it is not the shard's owner":
                          msg->epoch < state->epoch? "an older epoch (fenced)": "an epoch we have not seen yet");
        return;
    }
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    if (af_store_begin (store, true, &txn))
        return;
    af_store_snap_outcome_t outcome = AF_STORE_SNAP_OUT_OF_ORDER;
    int code = msg->last && !msg->data? AF_E_MALFORMED:
               af_store_snap_apply (store, txn, msg->shard, msg->seq, msg->epoch, msg->part, msg->body,
                                    msg->body_size, msg->last? msg->data: NULL, msg->data_size, &outcome);
    uint64_t head = state->head;
    if (code == AF_OK && af_store_log_head (store, txn, msg->shard, &head, NULL) != AF_OK)
        code = AF_E_INTERNAL;
    if (code == AF_OK && af_store_commit (store, &txn) == 0) {
        state->head = head;
        //  Our log is the owner's once the copy is whole (its entry seq,
        //  after every key as the owner had them then), with nothing of
        //  ours before it: a log that diverged from the owner's is gone
        if (outcome == AF_STORE_SNAP_APPLIED && msg->part == 0) {
            state->agreed = false;
            zsys_info ("broker: receiving a copy of shard %u from %s at seq %" PRIu64 "; our copy of it is cleared",
                       msg->shard, from, msg->seq);
        }
        if (outcome == AF_STORE_SNAP_DONE) {
            state->agreed = true;
            zsys_info ("broker: applied the copy of shard %u from %s: %u parts, at seq %" PRIu64, msg->shard, from,
                       msg->part + 1, msg->seq);
        }
    }
    else {
        af_store_abort (store, &txn);
        outcome = AF_STORE_SNAP_OUT_OF_ORDER;
        zsys_warning ("broker: refused part %u of a copy of shard %u from %s: %s", msg->part, msg->shard, from,
                      af_code_name (code));
    }
    //  A part on disk: acked as such; the last, or one we cannot take:
    //  our head, as REPL_ACK (the owner goes on by the log from there, or
    //  begins the copy again)
    bool part_ack = outcome == AF_STORE_SNAP_APPLIED || outcome == AF_STORE_SNAP_REPEAT;
    broker_cluster_ack_later (self, from, msg->shard, msg->epoch, part_ack? msg->seq: state->head,
                              part_ack? (int64_t) msg->part: -1, false);
}

bool
broker_snapshot_pending (af_broker_t *self, uint32_t shard)
{
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    uint64_t seq = 0;
    if (af_store_begin (store, false, &txn) == 0) {
        if (af_store_snap_pending (store, txn, shard, &seq) != AF_OK)
            seq = 1;                    //  cannot tell: as if
        af_store_abort (store, &txn);
    }
    return seq != 0;
}
