/*  =========================================================================
    broker_datadir - what the broker's data directory holds, set up at
    start: the lock that keeps one broker per directory, the descriptor
    limit and max_sessions below it, the keypair, the store and the
    classes over it, and DATA/data (received user data, uploads)

    Called once each by af_broker_new, in that order; each says what went
    wrong (logged) and returns -1, and af_broker_new then gives up.
    =========================================================================
*/
#include "broker_xacct.h"
#include <sys/file.h>
#include <sys/resource.h>

//  One broker per data directory: an exclusive lock on DATA/lock, held for
//  the broker's life (the kernel drops it when the process dies, even by
//  kill -9), with the holder's pid in the file for the message
int
broker_lock (af_broker_t *self)
{
    char path [600];
    snprintf (path, sizeof path, "%s/lock", self->config.data_dir);
    self->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0) {
        zsys_error ("broker: cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    if (flock (self->lock_fd, LOCK_EX | LOCK_NB)) {
        char pid [32] = "";
        ssize_t n = pread (self->lock_fd, pid, sizeof pid - 1, 0);
        pid [n > 0? n: 0] = 0;
        pid [strcspn (pid, "\n")] = 0;
        zsys_error ("broker: another broker (pid %s) is running on %s; one data directory serves one broker",
                    *pid? pid: "?", self->config.data_dir);
        close (self->lock_fd);
        self->lock_fd = -1;
        return -1;
    }
    char pid [32];
    int len = snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
    if (ftruncate (self->lock_fd, 0) || pwrite (self->lock_fd, pid, (size_t) len, 0) != len)
        zsys_warning ("broker: cannot write the pid to %s", path);
    return 0;
}

//  The kernel caps every listen backlog at net.core.somaxconn (4,096 by
//  default): in a reconnect storm beyond it, devices whose SYNs are
//  dropped wait for their retransmits (1 s, then 3 s, 7 s...) while others
//  are served. Said at start when that cap is below max_sessions
static void
s_backlog_check (af_broker_t *self)
{
    FILE *file = fopen ("/proc/sys/net/core/somaxconn", "r");
    long somaxconn = 0;
    if (file) {
        if (fscanf (file, "%ld", &somaxconn) != 1)
            somaxconn = 0;
        fclose (file);
    }
    if (somaxconn > 0 && (size_t) somaxconn < self->config.max_sessions && somaxconn < AF_LISTEN_BACKLOG)
        zsys_info ("broker: the listen backlog is %ld (net.core.somaxconn), below max_sessions %zu: "
                   "a larger reconnect storm waits for SYN retransmits; raise net.core.somaxconn and "
                   "net.ipv4.tcp_max_syn_backlog for a big fleet (README, Deployment)", somaxconn,
                   self->config.max_sessions);
}

//  Every connection is a descriptor: raise the soft limit to the hard one
//  (as Redis does), and keep max_sessions below it, with room for the
//  store, the files being sent and the workers, so that accepting never
//  fails for want of one
void
broker_descriptors (af_broker_t *self)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return;
    if (limit.rlim_cur < limit.rlim_max) {
        rlim_t soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max == RLIM_INFINITY? (rlim_t) AF_MAX_SESSIONS * 2: limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit))
            limit.rlim_cur = soft;
    }
    size_t usable = limit.rlim_cur == RLIM_INFINITY? SIZE_MAX:
                    limit.rlim_cur > AF_FD_RESERVE + 16? (size_t) limit.rlim_cur - AF_FD_RESERVE: 16;
    if (self->config.max_sessions > usable) {
        zsys_warning ("broker: max_sessions lowered from %zu to %zu: the descriptor limit is %llu "
                      "(LimitNOFILE, ulimit -n) and %d are kept for the store, files being sent and workers",
                      self->config.max_sessions, usable, (unsigned long long) limit.rlim_cur, AF_FD_RESERVE);
        self->config.max_sessions = usable;
    }
    s_backlog_check (self);
}

//  The keypair: made once, kept in the data directory
int
broker_keypair (af_broker_t *self)
{
    char path [600];
    snprintf (path, sizeof path, "%s/broker.cert_secret", self->config.data_dir);
    self->cert = zcert_load (path);
    if (self->cert)
        return 0;
    self->cert = zcert_new ();
    zcert_set_meta (self->cert, "role", "appferry broker");
    snprintf (path, sizeof path, "%s/broker.cert", self->config.data_dir);
    if (!self->cert || zcert_save (self->cert, path)) {
        zsys_error ("broker: cannot save keypair to %s", path);
        return -1;
    }
    zsys_info ("broker: created keypair; nodes need %s", path);
    return 0;
}

//  The stores and the classes over them
int
broker_open_store (af_broker_t *self)
{
    char path [600];
    snprintf (path, sizeof path, "%s/store", self->config.data_dir);
    self->registry = af_registry_new (path, self->config.pwcost, (size_t) self->config.map_mib << 20);
    if (!self->registry)
        return -1;
    af_store_t *store = af_registry_store (self->registry);
    self->outbox = af_outbox_new (store);
    self->pushes = self->outbox? af_pushes_new (store, self->outbox): NULL;
    self->paynotes = self->outbox? af_paynotes_new (store, self->outbox): NULL;
    self->asks = self->outbox? af_asks_new (store, self->outbox, *self->config.etcd?
                                            (uint32_t) self->config.cluster_shards: 1): NULL;
    self->lists = af_lists_new (store);
    self->configs = af_configs_new (store);
    self->backups = af_backups_new (store);
    self->userdata = af_userdata_new (store);
    if (!self->pushes || !self->paynotes || !self->asks || !self->lists || !self->configs || !self->backups
    ||  !self->userdata)
        return -1;
    af_paynotes_set_keep (self->paynotes, (uint64_t) self->config.notice_keep_s * 1000);
    //  An ask's asker on another broker is told through an intent (a cluster)
    af_asks_set_queue (self->asks, xrecord_queue, self);
    af_backups_set_quota (self->backups, (size_t) self->config.quota_backups,
                          (uint64_t) self->config.quota_backup_mib << 20);
    af_configs_set_quota (self->configs, (size_t) self->config.quota_configs,
                          (uint64_t) self->config.quota_config_mib << 20);
    self->syncindex = af_syncindex_new (self->lists);
    self->guesses = af_guesses_new (store);
    self->friends = af_friends_new (store);
    return self->guesses && self->friends? 0: -1;
}
