/*  =========================================================================
    broker_cluster_status - the shard map as one broker sees it, and
    `appferry-broker --cluster-status`

    Once a second a broker of a cluster writes DATA/cluster.json (a
    temporary file renamed over the last, so a reader never sees half of
    one): its ID, whether its lease is good, and for every shard the owner
    and epoch and in-sync set as etcd has them (the coordinator's watch),
    our role in it and our log's head, and, for a shard we own, each
    follower's acked seq, its lag (head - acked, in log entries), and
    whether it is in sync, joining (waited for on its way in) or has a
    REPL in flight. Only an owner knows its followers' lag, so the whole
    map with every lag is the owners' files together: --cluster-status
    reads the file of each data directory it is given and prints one line
    per shard, the lag from the file of the broker that owns it.

    Why a file and not etcd: lags change with every batch; etcd holds
    only what must survive a broker (ownership, the in-sync sets), and a
    reader of the shard map must not add writes to it. Why not the
    Prometheus snapshot: 256 shards x followers are many series for a
    figure an operator reads when something is wrong.
    =========================================================================
*/
#include "broker_int.h"

#include <jansson.h>

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
    if (!shard || state->role != SHARD_OWNER)
        return shard;
    json_t *followers = json_array ();
    for (uint32_t i = 0; followers && i < state->replica_count; i++) {
        replica_t *replica = &state->replicas [i];
        bool known = replica->acked != UINT64_MAX;
        json_array_append_new (followers, json_pack ("{s:s, s:I, s:I, s:b, s:b, s:b}", "id", replica->id,
            "acked", known? (json_int_t) replica->acked: (json_int_t) -1,
            "lag", known && replica->acked <= state->head? (json_int_t) (state->head - replica->acked): (json_int_t) -1,
            "inSync", replica->in_isr, "joining", replica->joining, "inFlight", replica->in_flight));
    }
    json_object_set_new (shard, "followers", followers);
    return shard;
}

void
broker_cluster_publish (af_broker_t *self)
{
    if (!self->cluster)
        return;
    json_t *root = json_pack ("{s:s, s:b, s:i, s:I}", "id", self->id, "leaseValid",
                              zclock_mono () < self->lease_until, "shards", (json_int_t) self->shard_count,
                              "at", (json_int_t) zclock_time ());
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
    json_t *line = json_pack ("{s:O, s:O, s:O, s:O}", "shard", json_object_get (shard, "shard"),
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
    printf ("%5lld  %-32s %8lld  %-33s", (long long) json_integer_value (json_object_get (line, "shard")),
            *owner? owner: "(none)", (long long) json_integer_value (json_object_get (line, "epoch")),
            *json_string_value (json_object_get (line, "isr"))? json_string_value (json_object_get (line, "isr")): "-");
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
    for (size_t i = 0; i < json_array_size (map); i++)
        s_print_shard (json_array_get (map, i), owners, json, out);
    if (json) {
        char *text = json_dumps (out, JSON_COMPACT);
        printf ("%s\n", text? text: "[]");
        free (text);
    }
    json_decref (out);
    json_decref (first);
    json_decref (owners);
    return 0;
}
