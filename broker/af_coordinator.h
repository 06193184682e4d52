/*  =========================================================================
    af_coordinator - the broker's cluster thread: everything it asks etcd

    The reactor never waits for etcd (docs/ARCHITECTURE.md "Cluster"). This
    actor holds the broker's lease and keeps it alive, registers the
    broker under it, watches the cluster's keys, and runs the transactions
    the reactor asks for, each answered on the pipe. Every etcd call blocks
    this thread only (af_etcd), but for the keep-alives and the watch: each
    has a thread and an etcd client of its own, so a slow transaction never
    holds a keep-alive back past the lease.

    Keys, under /appferry/:
      cluster/shards        the number of shards (made by the first broker)
      brokers/ID            {"nodes": endpoint, "peers": endpoint,
                            "draining": bool}, under the broker's lease
      shards/NNNN/owner     the owner's ID, under its lease; mod_revision =
                            the shard's epoch
      shards/NNNN/born      "1" once the shard has had an owner
      shards/NNNN/isr/ID    "" for each in-sync follower (no lease)

    To the reactor (strings, one zmsg each):
      LEASE until           our lease is certainly valid until this
                            zclock_mono time (ms); sent after every keep-alive
      LOST                  our lease is gone (we own nothing); a new one is made
      BROKERS (id nodes peers draining)...   the live brokers, on each change
      SHARD n owner epoch isr born revision   a shard as etcd has it, on each
                            change (owner "" = none; isr comma-separated; born
                            0/1), at that etcd revision
      CLAIMED n ok|failed 0 the answer to CLAIM
      ISR_DONE n id add|del ok|failed revision   (the change's revision: a
                            SHARD sent after it may still be older)
      RELEASED n ok|failed 0
      FATAL reason          cannot go on (another number of shards): stop

    From the reactor:
      CLAIM n 0             take shard n if nobody owns it and we may:
                            we are in its in-sync set, or it was never owned
      ISR_ADD n id epoch    / ISR_DEL n id epoch: change n's in-sync set, if
                            we still own it at that epoch
      RELEASE n epoch       give n up (hand-off), if still ours at that epoch
      DRAIN                 mark us draining: wanted nowhere
    =========================================================================
*/
#ifndef AF_COORDINATOR_H_INCLUDED
#define AF_COORDINATOR_H_INCLUDED

#include <czmq.h>

typedef struct {
    const char *etcd;               //  etcd endpoints, comma-separated
    const char *id;                 //  this broker's ID
    const char *nodes;              //  the endpoint nodes are sent to
    const char *peers;              //  the endpoint other brokers connect to
    unsigned shards;
    int lease_ttl_s;
} af_coordinator_args_t;

//  zactor_new (af_coordinator_actor, &args): args copied before it returns.
void af_coordinator_actor (zsock_t *pipe, void *args);

#endif
