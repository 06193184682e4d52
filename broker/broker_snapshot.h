/*  =========================================================================
    broker_snapshot - a copy of a shard for a follower whose entries were
    trimmed (issue 12; SPEC 5.37 SNAPSHOT, ARCHITECTURE "Cluster")

    broker_cluster.c decides when a follower needs one (what it lacks is
    no longer in the log, or it has a log we never had) and that it is
    out of the in-sync set first; this file sends the copy, part by part,
    one in flight, and applies one as a follower. The store does the
    reading and the writing (af_store_snap_*).
    =========================================================================
*/
#ifndef BROKER_SNAPSHOT_H_INCLUDED
#define BROKER_SNAPSHOT_H_INCLUDED

#include "broker_int.h"

//  Owner: send replica its copy of shard: the first part (taking the
//  copy now) if none is under way and fewer than AF_CLUSTER_SNAPSHOTS
//  are, else the next once the last is acked, or the same again after
//  repl_timeout.
void broker_snapshot_send (af_broker_t *self, uint32_t shard, replica_t *replica, int64_t now);

//  Owner: SNAPSHOT_ACK from follower `from`.
void broker_snapshot_ack (af_broker_t *self, const char *from, af_msg_t *ack);

//  Owner: replica's REPL_ACK while a copy is under way: at the copy's seq
//  or after it, the copy is done; below it, refused. Either way the copy
//  ends; true if it was done.
bool broker_snapshot_answered (af_broker_t *self, uint32_t shard, replica_t *replica, uint64_t seq);

//  Owner: end replica's copy, if any (it is forgotten, or we lost the shard).
void broker_snapshot_end (af_broker_t *self, replica_t *replica);

//  The part of replica's copy in flight, or -1 if none is under way.
int64_t broker_snapshot_part (replica_t *replica);

//  Follower: apply a SNAPSHOT from the shard's owner `from`; its answer
//  (SNAPSHOT_ACK or REPL_ACK) goes after our commit.
void broker_snapshot_apply (af_broker_t *self, const char *from, af_msg_t *msg);

//  Follower: is a copy of shard unfinished here? (Then we claim nothing.)
bool broker_snapshot_pending (af_broker_t *self, uint32_t shard);

//  broker_cluster.c: queue an answer to `peer` for after our commit:
//  REPL_ACK (part < 0; matched if our log is known to agree with the
//  owner's, the shard's `agreed`; or diverged: it does not) or
//  SNAPSHOT_ACK of part.
void broker_cluster_ack_later (af_broker_t *self, const char *peer, uint32_t shard, uint64_t epoch, uint64_t seq,
                               int64_t part, bool diverged);

#endif
