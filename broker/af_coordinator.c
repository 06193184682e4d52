/*  =========================================================================
    af_coordinator - the broker's cluster thread: everything it asks etcd

    See af_coordinator.h. One loop: the pipe (the reactor's requests), the
    watch's pipe (changes), the keeper's pipe (the lease kept alive) and a
    tick. A lost watch is made again after reading everything afresh; a
    lost lease is told, then replaced.

    The keeper is a thread of its own with an etcd client of its own: no
    other call, however slow, holds a keep-alive back. Every etcd call may
    take AF_CLUSTER_ETCD_TIMEOUT_MS (2 s) and a claim makes two, so one
    thread doing both could let a 3 s lease expire under a slow etcd while
    it had not failed once.
    =========================================================================
*/
#include "af_coordinator.h"
#include "af_etcd.h"
#include "af_limits.h"

#include <jansson.h>

#define PREFIX          "/appferry/"
#define MAX_ID          64

typedef struct {
    char owner [MAX_ID + 1];
    int64_t epoch;
    bool born;
    zlistx_t *isr;                  //  IDs (strings, owned)
    int64_t revision;               //  etcd's revision our copy of the shard is at
} shard_t;

typedef struct {
    zsock_t *pipe;
    af_coordinator_args_t args;
    char etcd [1024], id [MAX_ID + 1], nodes [AF_MAX_ENDPOINT + 1], peers [AF_MAX_ENDPOINT + 1];
    af_etcd_t *client;
    zactor_t *watch;
    zactor_t *keeper;               //  keeps lease alive (NULL: no lease)
    int64_t lease;                  //  0: none
    int64_t lease_until;            //  zclock_mono
    bool draining;
    bool drain_told;                //  our registration in etcd says so
    bool terminated;
    bool lost_watch;
    shard_t *shards;
    zhashx_t *brokers;              //  ID -> JSON text
    char err [512];
} self_t;

//  --------------------------------------------------------------------------
//  Telling the reactor

static void
s_send_shard (self_t *self, unsigned n)
{
    shard_t *shard = &self->shards [n];
    char isr [4096] = "";
    for (char *id = (char *) zlistx_first (shard->isr); id; id = (char *) zlistx_next (shard->isr)) {
        size_t len = strlen (isr);
        snprintf (isr + len, sizeof isr - len, "%s%s", len? ",": "", id);
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "SHARD");
    zmsg_addstrf (msg, "%u", n);
    zmsg_addstr (msg, shard->owner);
    zmsg_addstrf (msg, "%" PRId64, shard->epoch);
    zmsg_addstr (msg, isr);
    zmsg_addstr (msg, shard->born? "1": "0");
    zmsg_addstrf (msg, "%" PRId64, shard->revision);
    zmsg_send (&msg, self->pipe);
}

static void
s_send_brokers (self_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "BROKERS");
    for (char *text = (char *) zhashx_first (self->brokers); text; text = (char *) zhashx_next (self->brokers)) {
        json_t *json = json_loads (text, 0, NULL);
        const char *nodes = json_string_value (json_object_get (json, "nodes"));
        const char *peers = json_string_value (json_object_get (json, "peers"));
        if (nodes && peers) {
            zmsg_addstr (msg, (const char *) zhashx_cursor (self->brokers));
            zmsg_addstr (msg, nodes);
            zmsg_addstr (msg, peers);
            zmsg_addstr (msg, json_is_true (json_object_get (json, "draining"))? "1": "0");
        }
        json_decref (json);
    }
    zmsg_send (&msg, self->pipe);
}

//  --------------------------------------------------------------------------
//  What etcd holds

static void
s_shard_clear (shard_t *shard)
{
    shard->owner [0] = 0;
    shard->epoch = 0;
    shard->born = false;
    shard->revision = 0;
    zlistx_purge (shard->isr);
}

//  A key under PREFIX changed: our copy of it, and the reactor told.
//  value NULL: deleted.
static void
s_apply (self_t *self, const char *key, const uint8_t *value, size_t size, int64_t revision, bool tell)
{
    if (strncmp (key, PREFIX "brokers/", strlen (PREFIX "brokers/")) == 0) {
        const char *id = key + strlen (PREFIX "brokers/");
        if (value) {
            char *text = (char *) malloc (size + 1);
            assert (text);
            memcpy (text, value, size);
            text [size] = 0;
            zhashx_update (self->brokers, id, text);
        }
        else
            zhashx_delete (self->brokers, id);
        if (tell)
            s_send_brokers (self);
        return;
    }
    unsigned n;
    char rest [128] = "";
    if (sscanf (key, PREFIX "shards/%u/%127s", &n, rest) != 2 || n >= self->args.shards)
        return;
    shard_t *shard = &self->shards [n];
    if (revision > shard->revision)
        shard->revision = revision;
    if (streq (rest, "owner")) {
        if (value && size <= MAX_ID) {
            memcpy (shard->owner, value, size);
            shard->owner [size] = 0;
            shard->epoch = revision;
        }
        else
            shard->owner [0] = 0;
    }
    else
    if (streq (rest, "born"))
        shard->born = value != NULL;
    else
    if (strncmp (rest, "isr/", 4) == 0) {
        const char *id = rest + 4;
        void *handle = NULL;
        for (char *one = (char *) zlistx_first (shard->isr); one && !handle; one = (char *) zlistx_next (shard->isr))
            if (streq (one, id))
                handle = zlistx_cursor (shard->isr);
        if (value && !handle)
            zlistx_add_end (shard->isr, strdup (id));
        else
        if (!value && handle)
            zlistx_delete (shard->isr, handle);
    }
    if (tell)
        s_send_shard (self, n);
}

//  The keys under prefix into our copy; the revision they were read at
static int
s_read (self_t *self, const char *prefix, int64_t *revision, bool *more)
{
    const af_etcd_kv_t *kvs;
    size_t count;
    int code = af_etcd_range (self->client, prefix, AF_ETCD_MAX_RANGE, &kvs, &count, more, revision,
                              self->err, sizeof self->err);
    for (size_t i = 0; code == AF_OK && i < count; i++)
        s_apply (self, kvs [i].key, kvs [i].value, kvs [i].value_size, kvs [i].mod_revision, false);
    //  Every shard read is as etcd had it at the read's revision
    for (unsigned n = 0; code == AF_OK && n < self->args.shards; n++) {
        char shard [64];
        snprintf (shard, sizeof shard, PREFIX "shards/%04u/", n);
        if (strncmp (prefix, shard, strlen (prefix)) == 0 && *revision > self->shards [n].revision)
            self->shards [n].revision = *revision;
    }
    return code;
}

//  Everything under PREFIX, read afresh, then a watch from after it (a
//  cluster too big for one range is read shard by shard: at the same
//  revision or later, and the watch from the first one misses nothing)
static int
s_read_all (self_t *self)
{
    zhashx_purge (self->brokers);
    for (unsigned n = 0; n < self->args.shards; n++)
        s_shard_clear (&self->shards [n]);
    int64_t revision, later;
    bool more;
    int code = s_read (self, PREFIX, &revision, &more);
    if (code == AF_OK && more) {
        zhashx_purge (self->brokers);
        code = s_read (self, PREFIX "brokers/", &later, &more);
        for (unsigned n = 0; code == AF_OK && n < self->args.shards; n++) {
            char prefix [64];
            snprintf (prefix, sizeof prefix, PREFIX "shards/%04u/", n);
            s_shard_clear (&self->shards [n]);
            code = s_read (self, prefix, &later, &more);
        }
    }
    if (code != AF_OK)
        return code;
    s_send_brokers (self);
    for (unsigned n = 0; n < self->args.shards; n++)
        s_send_shard (self, n);
    af_etcd_watch_t watch = { self->etcd, PREFIX, true, revision + 1, AF_CLUSTER_ETCD_TIMEOUT_MS };
    self->watch = zactor_new (af_etcd_watch_actor, &watch);
    return self->watch? AF_OK: AF_E_INTERNAL;
}

static void
s_watch_event (self_t *self)
{
    char *type = NULL;
    byte *key = NULL, *value = NULL;
    size_t key_size = 0, value_size = 0;
    uint64_t revision = 0;
    if (zsock_recv (self->watch, AF_ETCD_WATCH_PICTURE, &type, &key, &key_size, &value, &value_size, &revision))
        return;
    char name [512] = "";
    if (key && key_size < sizeof name) {
        memcpy (name, key, key_size);
        name [key_size] = 0;
    }
    if (streq (type, "PUT"))
        s_apply (self, name, value, value_size, (int64_t) revision, true);
    else
    if (streq (type, "DELETE"))
        s_apply (self, name, NULL, 0, (int64_t) revision, true);
    else
    if (streq (type, "LOST")) {
        zsys_warning ("cluster: the watch on etcd was lost (%.*s); reading again", (int) value_size,
                      value? (char *) value: "");
        self->lost_watch = true;                //  destroyed by the loop; s_tick reads again
    }
    free (type);
    free (key);
    free (value);
}

//  --------------------------------------------------------------------------
//  The lease and our registration

static int
s_register (self_t *self)
{
    json_t *json = json_pack ("{s:s, s:s, s:b}", "nodes", self->nodes, "peers", self->peers,
                              "draining", self->draining);
    char *text = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    char key [256];
    snprintf (key, sizeof key, PREFIX "brokers/%s", self->id);
    int code = af_etcd_put (self->client, key, text, strlen (text), self->lease, NULL, self->err, sizeof self->err);
    free (text);
    return code;
}

static void
s_send_lease (self_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "LEASE");
    zmsg_addstrf (msg, "%" PRId64, self->lease_until);
    zmsg_send (&msg, self->pipe);
}

//  The keeper: one keep-alive every AF_CLUSTER_KEEPALIVE_MS (a quarter of
//  that after one failed: the lease's margin is a second), each success
//  told on its pipe as "ALIVE until" (the zclock_mono time the lease is
//  certainly valid until: sent + TTL - margin), the lease's end as "GONE" (etcd has no such lease: then nothing
//  more). Failures it logs itself, once past the time the lease is
//  certainly valid until: the cluster thread may be in a slow etcd call
//  of its own meanwhile, and the operator must hear of it then, not once
//  that call is over. A keep-alive etcd took over S_SLOW_MS to answer is
//  logged: it is what brings a lease to its end without one failure.
#define S_SLOW_MS 500

typedef struct {
    const char *etcd;
    int64_t lease;
    int64_t until;                  //  zclock_mono: valid until then, as granted
} keeper_args_t;

static void
s_keeper_actor (zsock_t *pipe, void *args)
{
    char etcd [1024], err [512];
    snprintf (etcd, sizeof etcd, "%s", ((keeper_args_t *) args)->etcd);
    int64_t lease = ((keeper_args_t *) args)->lease;
    af_etcd_t *client = af_etcd_new (etcd, AF_CLUSTER_ETCD_TIMEOUT_MS, err, sizeof err);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    int64_t due = zclock_mono () + AF_CLUSTER_KEEPALIVE_MS;
    int64_t until = ((keeper_args_t *) args)->until;
    bool gone = false, lapsed = false;
    while (true) {
        int64_t wait = gone? -1: due - zclock_mono ();
        void *which = zpoller_wait (poller, wait < 0 && !gone? 0: (int) wait);
        if (which == pipe || zpoller_terminated (poller))
            break;                      //  $TERM (or anything: it is only ever that)
        if (gone || zclock_mono () < due)
            continue;
        int64_t asked = zclock_mono (), ttl = 0;
        int code = client? af_etcd_lease_keepalive (client, lease, &ttl, err, sizeof err): AF_E_INTERNAL;
        int64_t took = zclock_mono () - asked;
        if (took > S_SLOW_MS)
            zsys_warning ("cluster: etcd took %" PRId64 " ms to keep our lease %" PRIx64 " alive", took, lease);
        if (code == AF_OK && ttl > 0) {
            until = asked + ttl * 1000 - AF_CLUSTER_LEASE_MARGIN_MS;
            char text [32];
            snprintf (text, sizeof text, "%" PRId64, until);
            zstr_sendx (pipe, "ALIVE", text, NULL);
            if (lapsed)
                zsys_info ("cluster: our lease %" PRIx64 " is kept alive again", lease);
            lapsed = false;
        }
        else
        if (code == AF_OK) {
            zstr_send (pipe, "GONE");
            gone = true;
        }
        else
        if (zclock_mono () > until && !lapsed) {
            lapsed = true;              //  said once, until a keep-alive works again
            zsys_warning ("cluster: cannot keep our lease alive (%s): confirming nothing until it is",
                          client? err: "no etcd client");
        }
        due = asked + (code == AF_OK? AF_CLUSTER_KEEPALIVE_MS: AF_CLUSTER_KEEPALIVE_MS / 4);
    }
    zpoller_destroy (&poller);
    af_etcd_destroy (&client);
}

static void
s_keeper_event (self_t *self)
{
    zmsg_t *msg = zmsg_recv (self->keeper);
    char *type = msg? zmsg_popstr (msg): NULL;
    if (type && streq (type, "ALIVE")) {
        char *until = zmsg_popstr (msg);
        self->lease_until = until? strtoll (until, NULL, 10): 0;
        s_send_lease (self);
        zstr_free (&until);
    }
    else
    if (type && streq (type, "GONE")) {
        zsys_warning ("cluster: our lease %" PRIx64 " is gone (expired): everything under it too", self->lease);
        zstr_send (self->pipe, "LOST");
        self->lease = 0;
        zactor_destroy (&self->keeper);         //  s_tick makes a new lease
    }
    zstr_free (&type);
    zmsg_destroy (&msg);
}

//  A new lease: granted, registered under, and told
static int
s_lease (self_t *self)
{
    int64_t asked = zclock_mono ();
    int64_t granted;
    int code = af_etcd_lease_grant (self->client, self->args.lease_ttl_s, &self->lease, &granted,
                                    self->err, sizeof self->err);
    if (code == AF_OK)
        code = s_register (self);
    if (code != AF_OK) {
        zsys_warning ("cluster: cannot get a lease from etcd: %s", self->err);
        self->lease = 0;
        return code;
    }
    self->lease_until = asked + granted * 1000 - AF_CLUSTER_LEASE_MARGIN_MS;
    self->drain_told = self->draining;
    keeper_args_t keeper = { self->etcd, self->lease, self->lease_until };
    zactor_destroy (&self->keeper);
    self->keeper = zactor_new (s_keeper_actor, &keeper);
    assert (self->keeper);
    s_send_lease (self);
    zsys_info ("cluster: broker %s has lease %" PRIx64 " (%" PRId64 " s)", self->id, self->lease, granted);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  What the reactor asks

static void
s_answer (self_t *self, const char *what, unsigned n, const char *id, const char *detail, bool ok,
          int64_t revision)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, what);
    zmsg_addstrf (msg, "%u", n);
    if (id)
        zmsg_addstr (msg, id);
    if (detail)
        zmsg_addstr (msg, detail);
    zmsg_addstr (msg, ok? "ok": "failed");
    zmsg_addstrf (msg, "%" PRId64, revision);
    zmsg_send (&msg, self->pipe);
}

static void
s_key (char *key, size_t size, unsigned n, const char *rest)
{
    snprintf (key, size, PREFIX "shards/%04u/%s", n, rest);
}

//  Take shard n if nobody owns it and we may: we are in its in-sync set
//  (etcd compares equalities only, so "isr/ID exists" is "isr/ID is still
//  at the mod_revision we just read"), or it has never had an owner. The
//  first owner also puts itself in the in-sync set, as an owner that came
//  from it stays in it: an owner is always in its shard's set. Else a
//  shard whose one follower was out of the set when its owner died could
//  never be claimed again, not even by that owner come back with every
//  entry it acked (a new owner removes a dead one from the set before it
//  acks without it, as any silent follower). gone: the members of the set
//  the reactor knows are no longer in the cluster (the owner that died,
//  comma-separated, or NULL): out of the set in the same transaction, so
//  that no batch of ours waits for them (else each shard taken over waited
//  for a transaction of its own after the claim, a second or more)
static bool
s_claim (self_t *self, unsigned n, const char *gone)
{
    char owner [256], born [256], isr [256];
    char dead [AF_CLUSTER_MAX_REPLICAS][256];
    s_key (owner, sizeof owner, n, "owner");
    s_key (born, sizeof born, n, "born");
    snprintf (isr, sizeof isr, PREFIX "shards/%04u/isr/%s", n, self->id);
    af_etcd_op_t ops [3 + AF_CLUSTER_MAX_REPLICAS] = {
        { AF_ETCD_PUT, owner, self->id, strlen (self->id), self->lease } };
    size_t count = 1;
    af_etcd_kv_t kv;
    bool found = false, done = false;
    if (af_etcd_get (self->client, isr, &kv, &found, NULL, self->err, sizeof self->err) != AF_OK)
        return false;
    if (!found) {
        ops [count++] = (af_etcd_op_t) { AF_ETCD_PUT, born, "1", 1, 0 };
        ops [count++] = (af_etcd_op_t) { AF_ETCD_PUT, isr, "", 0, 0 };
    }
    else {
        size_t deleted = 0;
        for (const char *at = gone? gone: ""; *at && deleted < AF_CLUSTER_MAX_REPLICAS; at += *at == ',') {
            size_t len = strcspn (at, ",");
            if (len && len <= AF_CLUSTER_ID && (len != strlen (self->id) || memcmp (at, self->id, len))) {
                snprintf (dead [deleted], sizeof dead [deleted], PREFIX "shards/%04u/isr/%.*s", n, (int) len, at);
                ops [count++] = (af_etcd_op_t) { AF_ETCD_DELETE, dead [deleted++], NULL, 0, 0 };
            }
            at += len;
        }
    }
    af_etcd_compare_t compares [2] = {
        { AF_ETCD_CREATE_REVISION, owner, 0, NULL, 0 },
        found? (af_etcd_compare_t) { AF_ETCD_MOD_REVISION, isr, kv.mod_revision, NULL, 0 }:
               (af_etcd_compare_t) { AF_ETCD_CREATE_REVISION, born, 0, NULL, 0 } };
    af_etcd_txn_t txn = { compares, 2, ops, count, NULL, 0 };
    return af_etcd_txn (self->client, &txn, &done, NULL, self->err, sizeof self->err) == AF_OK && done;
}

//  Change n's in-sync set, if n is still ours at epoch; *revision: the
//  change's (the reactor takes a SHARD older than it for stale)
static bool
s_isr (self_t *self, unsigned n, const char *id, int64_t epoch, bool add, int64_t *revision)
{
    char owner [256], isr [256];
    s_key (owner, sizeof owner, n, "owner");
    snprintf (isr, sizeof isr, PREFIX "shards/%04u/isr/%s", n, id);
    af_etcd_compare_t compares [2] = {
        { AF_ETCD_MOD_REVISION, owner, epoch, NULL, 0 },
        { AF_ETCD_VALUE, owner, 0, self->id, strlen (self->id) } };
    af_etcd_op_t op = { add? AF_ETCD_PUT: AF_ETCD_DELETE, isr, "", 0, 0 };
    af_etcd_txn_t txn = { compares, 2, &op, 1, NULL, 0 };
    bool done = false;
    return af_etcd_txn (self->client, &txn, &done, revision, self->err, sizeof self->err) == AF_OK && done;
}

static bool
s_release (self_t *self, unsigned n, int64_t epoch)
{
    char owner [256];
    s_key (owner, sizeof owner, n, "owner");
    af_etcd_compare_t compares [2] = {
        { AF_ETCD_MOD_REVISION, owner, epoch, NULL, 0 },
        { AF_ETCD_VALUE, owner, 0, self->id, strlen (self->id) } };
    af_etcd_op_t op = { AF_ETCD_DELETE, owner, NULL, 0, 0 };
    af_etcd_txn_t txn = { compares, 2, &op, 1, NULL, 0 };
    bool done = false;
    return af_etcd_txn (self->client, &txn, &done, NULL, self->err, sizeof self->err) == AF_OK && done;
}

static void
s_pipe_event (self_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    char *command = msg? zmsg_popstr (msg): NULL;
    char *number = msg? zmsg_popstr (msg): NULL;
    unsigned n = number? (unsigned) atol (number): 0;
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "DRAIN")) {
        //  Kept for every registration from now on, under any later lease
        self->draining = true;
        self->drain_told = false;       //  s_tick registers us again
    }
    else
    if (!self->lease || n >= self->args.shards)
        ;                               //  nothing we can do now: asked again later
    else
    if (streq (command, "CLAIM")) {
        char *gone = zmsg_popstr (msg);
        bool ok = s_claim (self, n, gone && *gone? gone: NULL);
        if (ok)
            zsys_info ("cluster: claimed shard %u%s%s", n, gone && *gone? ", out of its in-sync set: ": "",
                       gone && *gone? gone: "");
        s_answer (self, "CLAIMED", n, NULL, NULL, ok, 0);
        zstr_free (&gone);
    }
    else
    if (streq (command, "ISR_ADD") || streq (command, "ISR_DEL")) {
        char *id = zmsg_popstr (msg), *epoch = zmsg_popstr (msg);
        bool add = streq (command, "ISR_ADD");
        int64_t revision = 0;
        bool ok = id && epoch && s_isr (self, n, id, (int64_t) strtoll (epoch, NULL, 10), add, &revision);
        s_answer (self, "ISR_DONE", n, id? id: "", add? "add": "del", ok, ok? revision: 0);
        zstr_free (&id);
        zstr_free (&epoch);
    }
    else
    if (streq (command, "RELEASE")) {
        char *epoch = zmsg_popstr (msg);
        bool ok = epoch && s_release (self, n, (int64_t) strtoll (epoch, NULL, 10));
        s_answer (self, "RELEASED", n, NULL, NULL, ok, 0);
        zstr_free (&epoch);
    }
    zstr_free (&command);
    zstr_free (&number);
    zmsg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Start, the loop

//  The number of shards is the cluster's, fixed by the first broker
static int
s_shards_agreed (self_t *self)
{
    char value [16];
    snprintf (value, sizeof value, "%u", self->args.shards);
    bool done = false;
    int code = af_etcd_claim (self->client, PREFIX "cluster/shards", value, strlen (value), 0, &done, NULL,
                              self->err, sizeof self->err);
    if (code != AF_OK || done)
        return code;
    af_etcd_kv_t kv;
    bool found = false;
    code = af_etcd_get (self->client, PREFIX "cluster/shards", &kv, &found, NULL, self->err, sizeof self->err);
    if (code == AF_OK && found && (kv.value_size != strlen (value) || memcmp (kv.value, value, kv.value_size))) {
        snprintf (self->err, sizeof self->err, "the cluster has %.*s shards, this broker is configured for %u "
                  "(cluster/shards)", (int) kv.value_size, (const char *) kv.value, self->args.shards);
        return AF_E_FORBIDDEN;
    }
    return code;
}

static void
s_tick (self_t *self)
{
    if (!self->lease)
        s_lease (self);
    else
    if (self->draining && !self->drain_told) {
        self->drain_told = s_register (self) == AF_OK;
        if (self->drain_told)
            zsys_info ("cluster: broker %s is draining: wanted for no shard", self->id);
        else
            zsys_warning ("cluster: cannot mark us draining in etcd (%s): trying again", self->err);
    }
    if (!self->watch && s_read_all (self) != AF_OK)
        zsys_warning ("cluster: cannot read the cluster from etcd: %s", self->err);
}

void
af_coordinator_actor (zsock_t *pipe, void *args)
{
    self_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    self.args = *(const af_coordinator_args_t *) args;
    snprintf (self.etcd, sizeof self.etcd, "%s", self.args.etcd);
    snprintf (self.id, sizeof self.id, "%s", self.args.id);
    snprintf (self.nodes, sizeof self.nodes, "%s", self.args.nodes);
    snprintf (self.peers, sizeof self.peers, "%s", self.args.peers);
    self.args.etcd = self.etcd;
    self.brokers = zhashx_new ();
    zhashx_set_destructor (self.brokers, (zhashx_destructor_fn *) zstr_free);
    self.shards = (shard_t *) calloc (self.args.shards, sizeof (shard_t));
    assert (self.shards);
    for (unsigned n = 0; n < self.args.shards; n++) {
        self.shards [n].isr = zlistx_new ();
        zlistx_set_destructor (self.shards [n].isr, (zlistx_destructor_fn *) zstr_free);
    }
    self.client = af_etcd_new (self.etcd, AF_CLUSTER_ETCD_TIMEOUT_MS, self.err, sizeof self.err);
    zsock_signal (pipe, 0);
    int code = self.client? s_shards_agreed (&self): AF_E_MALFORMED;
    if (code == AF_E_FORBIDDEN || code == AF_E_MALFORMED) {
        zsys_error ("cluster: %s", self.err);
        zstr_sendx (pipe, "FATAL", self.err, NULL);
    }
    zpoller_t *poller = zpoller_new (pipe, NULL);
    while (!self.terminated) {
        //  The watch is polled while there is one (s_read_all makes it)
        zactor_t *watching = self.watch, *keeping = self.keeper;
        if (watching)
            zpoller_add (poller, watching);
        if (keeping)
            zpoller_add (poller, keeping);
        void *which = zpoller_wait (poller, AF_CLUSTER_TICK_MS);
        if (which == pipe)
            s_pipe_event (&self);
        else
        if (which && which == keeping)
            s_keeper_event (&self);
        else
        if (which && which == watching)
            s_watch_event (&self);
        if (watching)
            zpoller_remove (poller, watching);
        if (keeping)
            zpoller_remove (poller, keeping);
        if (zpoller_terminated (poller))
            break;
        if (self.lost_watch) {
            self.lost_watch = false;
            zactor_destroy (&self.watch);
        }
        s_tick (&self);
    }
    zpoller_destroy (&poller);
    zactor_destroy (&self.keeper);
    if (self.lease && self.client) {
        char err [256];
        af_etcd_lease_revoke (self.client, self.lease, err, sizeof err);    //  gone at once, not after the TTL
    }
    zactor_destroy (&self.watch);
    af_etcd_destroy (&self.client);
    for (unsigned n = 0; n < self.args.shards; n++)
        zlistx_destroy (&self.shards [n].isr);
    free (self.shards);
    zhashx_destroy (&self.brokers);
}
