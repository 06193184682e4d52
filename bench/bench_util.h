/*  =========================================================================
    bench_util - what the end-to-end benchmarks share: child processes,
    their files and memory, and CURVE device connections to the broker
    =========================================================================
*/
#ifndef BENCH_UTIL_H_INCLUDED
#define BENCH_UTIL_H_INCLUDED

#include <czmq.h>
#include "af_msg.h"

//  Start argv [0] with stdout and stderr to log. The child's pid.
pid_t bench_spawn (char *const argv [], const char *log);

//  Wait up to 10 s for a file to exist and hold something.
bool bench_wait_file (const char *path);

//  A field of /proc/PID/status in KiB ("VmRSS:", "VmHWM:"), or -1.
long bench_status_kib (pid_t pid, const char *field);

//  SIGTERM, then SIGKILL after 3 s; reaps. pid <= 0 is ignored.
void bench_stop (pid_t pid);

//  A CURVE DEALER to endpoint, 5 s receive timeout. NULL on failure.
zsock_t *bench_dealer (const char *endpoint, const char *server_key);

//  Receive one appferry message; NULL on timeout or garbage.
af_msg_t *bench_recv (zsock_t *sock);

//  Send a request and wait for the reply with its rid (others dropped).
af_msg_t *bench_request (zsock_t *sock, af_msg_t *request);

//  A request that a cluster's broker may answer with REDIRECT (it does
//  not own the account's shard): followed, on a new connection to the
//  owner (*sock replaced; endpoint, if not NULL, 256 bytes, gets it), the
//  same request again, up to 20 hops (200 ms apart while a shard has no
//  owner). The answer (caller destroys), or NULL.
af_msg_t *bench_request_follow (zsock_t **sock, char *endpoint, af_msg_t *request, const char *server_key);

//  Log in to account as a new Android phone. 0, or -1 (printed).
int bench_login (zsock_t *sock, const char *account, const char *model, char *device_id);

//  The broker binary bench_start_services runs (the one built with the
//  benchmarks unless a --broker option sets another).
extern const char *bench_broker_path;

//  Start a broker (heartbeat 600 s, cheap passwords) and a matcher on
//  catalog_dir, under dir; fills the endpoints and the broker's key.
int bench_start_services (const char *dir, const char *catalog_dir, pid_t *broker, pid_t *matcher,
                          char *nodes_ep, char *broker_key);

//  Start a broker on dir (its log: dir.log) with config file cfg (NULL:
//  none): heartbeat 600 s, cheap passwords, no per-source limits; fills
//  its nodes endpoint (256 bytes). The pid, or -1 (printed).
pid_t bench_broker (const char *dir, const char *cfg, char *nodes_ep);

//  Start a cluster of members brokers (dir/c1 .. dir/cN, one keypair: c1's)
//  on etcd with shards shards, and wait up to 60 s until every shard has an
//  owner and an in-sync follower. pids gets every member's pid (-1: not
//  started), nodes_ep c1's nodes endpoint. 0, or -1 (printed).
#define BENCH_MAX_MEMBERS   8
int bench_cluster (const char *dir, const char *etcd, int shards, int members, pid_t *pids, char *nodes_ep);

#endif
