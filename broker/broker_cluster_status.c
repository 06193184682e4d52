/*  =========================================================================
    broker_cluster_status - the shard map as one broker sees it, and
    `appferry-broker --cluster-status`

    Once a second a broker of a cluster writes DATA/cluster.json (a
    temporary file renamed over the last, so a reader never sees half of
    one): its ID, whether its lease is good, and for every shard the owner
    and epoch and in-sync set as etcd has them (the coordinator's watch),
    our role in it and our log's head and first kept entry, and, for a shard we own, each
    follower's acked seq, its lag (head - acked, in log entries), whether
    its last ack was matched (its log known to agree with ours) or
    diverged (other entries at our seqs: it is sent a copy), and
    whether it is in sync, joining (waited for on its way in), has a
    REPL in flight or is being sent a copy of the shard (copyPart, the part
    in flight; -1 none). Only an owner knows its followers' lag, so the whole
    map with every lag is the owners' files together: --cluster-status
    reads the file of each data directory it is given and prints one line
    per shard, the lag from the file of the broker that owns it.

    `appferry-broker --drain` reads the same file: it signals the broker
    on the directory (SIGUSR1, to the pid in DATA/lock) and follows its
    map until the broker has stopped (it no longer holds DATA/lock); the
    file's "drain" says whether it refused, is draining, or drained.

    Why a file and not etcd: lags change with every batch; etcd holds
    only what must survive a broker (ownership, the in-sync sets), and a
    reader of the shard map must not add writes to it. Why not the
    Prometheus snapshot: 256 shards x followers are many series for a
    figure an operator reads when something is wrong.
    =========================================================================
*/
#include "broker_snapshot.h"

#include <jansson.h>
#include <signal.h>
#include <sys/file.h>

static const char *
s_role_name (shard_role_t role)
{
    return role == SHARD_OWNER? "owner": role == SHARD_FOLLOWER? "follower": "none";
}

static json_t *
s_shard_json (af_broker_t *self, uint32_t n)
{
    shard_t *state = &self->shards [n];
    json_t *shard = json_pack ("{s:i, s:s, s:s, s:I, s:s, s:I}", "shard", (json_int_t) n, "owner", state->owner,
                               "role", s_role_name (state->role), "epoch", (json_int_t) state->epoch,
                               "isr", state->isr, "head", (json_int_t) state->head);
    //  The log's first kept entry: what a follower behind it needs a copy for
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    uint64_t first = 0;
    if (shard && af_store_begin (store, false, &txn) == 0) {
        af_store_log_first (store, txn, n, &first);
        af_store_abort (store, &txn);
    }
    if (shard)
        json_object_set_new (shard, "first", json_integer ((json_int_t) first));
    if (!shard || state->role != SHARD_OWNER)
        return shard;
    json_t *followers = json_array ();
    for (uint32_t i = 0; followers && i < state->replica_count; i++) {
        replica_t *replica = &state->replicas [i];
        bool known = replica->acked != UINT64_MAX;
        json_array_append_new (followers, json_pack ("{s:s, s:I, s:I, s:b, s:b, s:b, s:b, s:b, s:i, s:I}", "id", replica->id,
            "acked", known? (json_int_t) replica->acked: (json_int_t) -1,
            "lag", known && replica->acked <= state->head? (json_int_t) (state->head - replica->acked): (json_int_t) -1,
            "matched", replica->matched, "diverged", replica->diverged,
            "inSync", replica->in_isr, "joining", replica->joining, "inFlight", replica->in_flight,
            "flights", (int) replica->flights,
            "copyPart", (json_int_t) broker_snapshot_part (replica)));
    }
    json_object_set_new (shard, "followers", followers);
    return shard;
}

void
broker_cluster_publish (af_broker_t *self)
{
    if (!self->cluster)
        return;
    json_t *root = json_pack ("{s:s, s:b, s:i, s:I, s:b, s:s}", "id", self->id, "leaseValid",
                              zclock_mono () < self->lease_until, "shards", (json_int_t) self->shard_count,
                              "at", (json_int_t) zclock_time (), "draining", self->draining, "drain", self->drain);
    json_t *map = json_array ();
    for (uint32_t n = 0; root && map && n < self->shard_count; n++)
        json_array_append_new (map, s_shard_json (self, n));
    json_object_set_new (root, "map", map);
    char path [600], tmp [610];
    snprintf (path, sizeof path, "%s/cluster.json", self->config.data_dir);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    if (!root || json_dump_file (root, tmp, JSON_COMPACT) || rename (tmp, path))
        zsys_warning ("broker: cannot write %s", path);
    json_decref (root);
}

//  --------------------------------------------------------------------------
//  --cluster-status

//  The map of each file, by shard; the owner's file gives the followers
static json_t *
s_load (const char *data_dir, char *err, size_t errlen)
{
    char path [600];
    snprintf (path, sizeof path, "%s/cluster.json", data_dir);
    json_error_t error;
    json_t *root = json_load_file (path, 0, &error);
    if (!root || !json_is_array (json_object_get (root, "map")) || !json_is_string (json_object_get (root, "id"))) {
        snprintf (err, errlen, "%s: %s", path, root? "not a shard map": error.text);
        json_decref (root);
        return NULL;
    }
    return root;
}

//  One line of the map: the shard as the first file has it, the followers
//  from the owner's file if given
static void
s_print_shard (json_t *shard, json_t *owners, bool json, json_t *out)
{
    const char *owner = json_string_value (json_object_get (shard, "owner"));
    json_t *from_owner = owner && *owner? json_object_get (owners, owner): NULL;
    //  A file not written by a broker of this version may lack any of them
    json_t *line = json_pack ("{s:O?, s:O?, s:O?, s:O?}", "shard", json_object_get (shard, "shard"),
                              "owner", json_object_get (shard, "owner"), "epoch", json_object_get (shard, "epoch"),
                              "isr", json_object_get (shard, "isr"));
    if (from_owner) {
        json_t *owned = json_array_get (json_object_get (from_owner, "map"),
                                        (size_t) json_integer_value (json_object_get (shard, "shard")));
        json_object_set (line, "head", json_object_get (owned, "head"));
        json_object_set (line, "followers", json_object_get (owned, "followers"));
    }
    if (json) {
        json_array_append_new (out, line);
        return;
    }
    const char *isr = json_string_value (json_object_get (line, "isr"));
    printf ("%5lld  %-32s %8lld  %-33s", (long long) json_integer_value (json_object_get (line, "shard")),
            owner && *owner? owner: "(none)", (long long) json_integer_value (json_object_get (line, "epoch")),
            isr && *isr? isr: "-");
    json_t *followers = json_object_get (line, "followers");
    if (!followers)
        printf ("  (lag: the owner's directory was not given)");
    for (size_t i = 0; i < json_array_size (followers); i++) {
        json_t *f = json_array_get (followers, i);
        printf ("  %.8s lag %lld%s%s", json_string_value (json_object_get (f, "id")),
                (long long) json_integer_value (json_object_get (f, "lag")),
                json_is_true (json_object_get (f, "inSync"))? " in-sync": "",
                json_is_true (json_object_get (f, "joining"))? " joining": "");
    }
    printf ("\n");
    json_decref (line);
}

int
broker_cluster_status (const char **data_dirs, size_t count, bool json)
{
    json_t *owners = json_object ();        //  broker ID -> its file
    json_t *first = NULL;
    for (size_t i = 0; i < count; i++) {
        char err [700];
        json_t *root = s_load (data_dirs [i], err, sizeof err);
        if (!root) {
            fprintf (stderr, "appferry-broker: --cluster-status: %s (is it a cluster member's directory?)\n", err);
            json_decref (owners);
            json_decref (first);
            return 1;
        }
        if (!first)
            first = json_incref (root);
        json_object_set_new (owners, json_string_value (json_object_get (root, "id")), root);
    }
    json_t *map = json_object_get (first, "map"), *out = json_array ();
    if (!json)
        printf ("shard  owner                               epoch  in-sync followers                   "
                "followers (from the owner: lag in log entries)\n");
    int rc = 0;
    for (size_t i = 0; i < json_array_size (map); i++) {
        json_t *shard = json_array_get (map, i);
        if (!json_is_object (shard) || !json_is_integer (json_object_get (shard, "shard"))) {
            fprintf (stderr, "appferry-broker: --cluster-status: entry %zu of the map is not a shard (skipped)\n", i);
            rc = 1;
            continue;
        }
        s_print_shard (shard, owners, json, out);
    }
    if (json) {
        char *text = json_dumps (out, JSON_COMPACT);
        printf ("%s\n", text? text: "[]");
        free (text);
    }
    json_decref (out);
    json_decref (first);
    json_decref (owners);
    return rc;
}

//  --------------------------------------------------------------------------
//  --drain

//  Is the lock on DATA/lock free (no broker runs there)? Taken and given
//  back at once
static bool
s_lock_free (int fd)
{
    if (flock (fd, LOCK_SH | LOCK_NB))
        return false;
    flock (fd, LOCK_UN);
    return true;
}

//  The shards the broker's map says it owns and follows
static void
s_drain_count (json_t *root, size_t *owned, size_t *followed)
{
    json_t *map = json_object_get (root, "map");
    *owned = *followed = 0;
    for (size_t i = 0; i < json_array_size (map); i++) {
        const char *role = json_string_value (json_object_get (json_array_get (map, i), "role"));
        *owned += role && streq (role, "owner");
        *followed += role && streq (role, "follower");
    }
}

int
broker_cluster_drain (const char *data_dir)
{
    char path [600], err [700];
    snprintf (path, sizeof path, "%s/lock", data_dir);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || s_lock_free (fd)) {
        fprintf (stderr, "appferry-broker: --drain: no broker runs on %s\n", data_dir);
        if (fd >= 0)
            close (fd);
        return 1;
    }
    char text [32] = "";
    ssize_t size = pread (fd, text, sizeof text - 1, 0);
    text [size > 0? size: 0] = 0;
    long pid = atol (text);
    json_t *root = s_load (data_dir, err, sizeof err);
    if (!root || pid <= 1) {
        fprintf (stderr, "appferry-broker: --drain: %s\n", root? "no pid in DATA/lock":
                 "not a cluster member (a single broker has no one to hand its accounts to)");
        json_decref (root);
        close (fd);
        return 1;
    }
    json_decref (root);
    int64_t asked = zclock_time ();
    if (kill ((pid_t) pid, SIGUSR1)) {
        fprintf (stderr, "appferry-broker: --drain: cannot signal pid %ld: %s\n", pid, strerror (errno));
        close (fd);
        return 1;
    }
    printf ("appferry-broker: asked the broker on %s (pid %ld) to drain\n", data_dir, pid);
    fflush (stdout);
    size_t owned = SIZE_MAX, followed = SIZE_MAX;
    int rc = -1;
    while (rc < 0) {
        bool stopped = s_lock_free (fd);
        //  Only a map written since we asked says anything of this drain
        root = s_load (data_dir, err, sizeof err);
        const char *drain = json_string_value (json_object_get (root, "drain"));
        bool fresh = json_integer_value (json_object_get (root, "at")) >= asked;
        if (stopped) {
            bool drained = fresh && drain && streq (drain, "drained");
            if (drained)
                printf ("appferry-broker: drained: the broker owned and followed no shard and stopped\n");
            else
                fprintf (stderr, "appferry-broker: --drain: the broker stopped before it was drained "
                         "(see its log)\n");
            rc = drained? 0: 1;
        }
        else
        if (fresh && drain && strncmp (drain, "refused", 7) == 0) {
            fprintf (stderr, "appferry-broker: --drain: the broker %s\n", drain);
            rc = 1;
        }
        else
        if (fresh) {
            size_t now_owned, now_followed;
            s_drain_count (root, &now_owned, &now_followed);
            if (now_owned != owned || now_followed != followed)
                printf ("appferry-broker: draining: %zu shards owned, %zu followed\n", now_owned, now_followed);
            fflush (stdout);
            owned = now_owned;
            followed = now_followed;
        }
        json_decref (root);
        if (rc < 0)
            zclock_sleep (200);
    }
    close (fd);
    return rc;
}
