/*  =========================================================================
    af_broker - the appferry broker: sessions, accounts, devices, workers

    One single-threaded zloop reactor serves two CURVE-secured ROUTER
    sockets: the node frontend and the worker backend. The broker owns the
    account registry (af_registry); online state lives only in memory and
    is rebuilt as nodes reconnect, so a restarted broker shows everyone
    offline until they are back. Workers follow a Majordomo-like dialog
    (READY, requests, PING/PONG, DISCONNECT) with a credit: a worker may
    hold up to `credit` requests at once. A request whose worker dies or
    leaves is handed to another; one that finds no worker within the
    request timeout is answered with E_UNAVAILABLE.

    All state is keyed by account (registry keys, online index), IDs are
    random, and nothing counts across accounts, so a later cluster can
    shard accounts over several brokers.
    =========================================================================
*/
#ifndef AF_BROKER_H_INCLUDED
#define AF_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "af_registry.h"

typedef struct {
    char data_dir [512];            //  broker.cert, store/, workers/
    char nodes [256];               //  endpoint nodes connect to (bind)
    char workers [256];             //  endpoint workers connect to (bind)
    char worker_keys [512];         //  dir of allowed worker certificates
    int heartbeat_ms;               //  PING interval expected from peers
    int liveness;                   //  missed intervals before a peer is dead
    int request_timeout_ms;         //  a worker request with no answer
    af_pwcost_t pwcost;             //  Argon2id cost for new passwords
    size_t max_sessions;            //  connections with a session record
    size_t max_queue;               //  requests waiting for a worker
    char catalog [512];             //  the matcher's catalog dir: package files
    int list_every_s;               //  ask a device for its whole list this often (0 = never)
    int map_mib;                    //  the store's LMDB map size, MiB: its size limit
    int pw_threads;                 //  Argon2id hashing threads
    int pw_per_source;              //  password jobs a source may start per minute
    //  Per-account storage limits (section quota)
    int quota_configs;              //  programs with a stored configuration
    int quota_config_mib;           //  bytes of configurations (both versions)
    int quota_data_blobs;           //  user-data blobs waiting for pushes
    int quota_data_mib;             //  bytes of them
    int quota_backups;              //  backups (every version of every program)
    int notice_keep_s;              //  a GET's notice key is kept this long (af_paynotes)
    int quota_backup_mib;           //  bytes of them, configurations included
    int data_grace_s;               //  a blob no push names is removed after this
    size_t max_per_source;          //  connections one address may hold on a socket
    //  Push policy (S2.3): what an initiating device must report
    char min_node_version [32];     //  "" = any
    char require [512];             //  "name=value, ..." attestations; "" = none
    int max_age_s;                  //  attestations older than this fail
    char metrics [64];              //  HOST:PORT of the Prometheus listener, "" = none
    //  The cluster (section cluster; docs/ARCHITECTURE.md "Cluster")
    char etcd [1024];               //  etcd endpoints: "" = a single broker, no cluster
    char cluster_id [AF_CLUSTER_ID + 1];    //  this broker's ID ("" = made once, kept in DATA/broker.id)
    char cluster_peers [256];       //  where the other brokers connect (bind)
    char cluster_advertise [256];   //  the nodes endpoint REDIRECTs name ("" = the bound one)
    int cluster_shards;
    int cluster_replicas;
    int cluster_lease_s;
    int cluster_repl_ms;
    int cluster_log_keep;
    //  Friends (sections contacts and friends; issue 13)
    int eval_limit;                 //  contact numbers evaluated per account per window
    int eval_window_s;              //  that window
    int friend_min_common;          //  contacts two books share to make friends
    //  GET (section get; SPEC 5.47a)
    int record_wait_s;              //  an ask waits this long for the source's record
    bool verbose;
} af_broker_config_t;

//  Fill a config with the documented defaults (deploy/appferry-broker.cfg).
void af_broker_config_defaults (af_broker_config_t *config);

//  Load a ZPL config file (czmq zconfig) over the current values. Returns
//  0, or -1 with err naming the problem (unknown key, bad value).
int af_broker_config_load (af_broker_config_t *config, const char *path,
                           char *err, size_t errlen);

//  An Argon2id cost by name: interactive, moderate or min. 0, or -1.
int af_broker_pwcost_parse (const char *text, af_pwcost_t *cost);

typedef struct _af_broker_t af_broker_t;

//  Create the broker: data directory, keypair (made on first start),
//  store, ZAP handler, sockets bound. NULL on failure (logged).
af_broker_t *af_broker_new (const af_broker_config_t *config);

//  Stop and free everything. Sets *self_p to NULL.
void af_broker_destroy (af_broker_t **self_p);

//  Serve until interrupted (SIGINT/SIGTERM). Returns 0.
int af_broker_run (af_broker_t *self);

//  --status: print the figures of the broker on data_dir (running or
//  not), as text or JSON; with watch_s > 0 again every watch_s seconds
//  until interrupted. 0, or 1 if there are none (message on stderr).
int broker_status (const char *data_dir, bool json, int watch_s);

//  --cluster-status: print the shard map (owner, epoch, in-sync set; each
//  follower's lag from the owner's own file) from DATA/cluster.json of
//  each of the count data directories (broker_cluster_status.c). 0, or 1
//  if a directory has no map (message on stderr).
int broker_cluster_status (const char **data_dirs, size_t count, bool json);

//  --drain: ask the cluster member running on data_dir (the pid in its
//  DATA/lock, which it holds) to drain, by SIGUSR1, and wait until it has
//  stopped, saying on stdout how many shards it still owns and follows.
//  0 once it stopped drained (its last DATA/cluster.json says so); 1 if
//  no broker runs there, it is not a cluster member, it refused (too few
//  brokers would stay: the reason on stderr), or it stopped otherwise.
int broker_cluster_drain (const char *data_dir);

//  The endpoints actually bound (with the real port if '*' was asked).
const char *af_broker_nodes_endpoint (af_broker_t *self);
const char *af_broker_workers_endpoint (af_broker_t *self);

#endif
