/*  =========================================================================
    af_store - a small, strict layer over one LMDB environment

    LMDB gives us crash safety for free as long as each logical change is
    one write transaction; what it does not give is a caller that checks
    every return code. This class is the one place that opens environments
    and logs LMDB failures with context, so callers can simply propagate
    the code. We keep LMDB's default durability (fsync at commit): a
    committed change survives kill -9 and power loss.
    =========================================================================
*/
#include "af_store.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <czmq.h>
#include <msgpack.h>
#include "af_shard.h"
#include "af_bytes.h"

struct _af_store_t {
    MDB_env *env;
    bool readonly;
    char *dir;
    MDB_txn *batch;                 //  the open batch's write transaction, or NULL
    MDB_txn *child;                 //  the batch's open child (a write), or NULL
    unsigned lent;                  //  reads lent the child while it is open
    uint64_t batch_from;            //  writes when the open batch began
    af_store_stats_t stats;         //  what af_store_stats reports
    //  The replication log (cluster mode; docs/ARCHITECTURE.md "Cluster")
    uint32_t shards;                //  0: no log
    MDB_dbi log_dbi;
    uint64_t *epochs;               //  per shard: stamped on the entries written
    uint8_t *owned;                 //  per shard: ours to write
    uint8_t *touched;               //  per shard: written in the open batch
    uint32_t *written;              //  the shards written in the open batch ...
    uint32_t written_count;         //  ... how many
    char *names [AF_STORE_MAX_DBS]; //  database names by handle
    bool logged [AF_STORE_MAX_DBS]; //  ... and whether their changes are logged
    bool byref [AF_STORE_MAX_DBS];  //  ... and their puts by reference (AF_STORE_BYREF)
    char *fail_commit;              //  a test's fault: while this file exists, batches fail to commit
};

//  Commit a transaction that reaches the disk, timed for af_store_stats
static int
s_commit_durable (af_store_t *self, MDB_txn *txn)
{
    int64_t started = zclock_usecs ();
    int rc = mdb_txn_commit (txn);
    self->stats.commit_us += (uint64_t) (zclock_usecs () - started);
    if (rc)
        self->stats.failures++;
    else
        self->stats.commits++;
    return rc;
}

af_store_t *
af_store_new (const char *dir, size_t mapsize, unsigned maxdbs, bool readonly)
{
    assert (dir);
    if (!readonly && mkdir (dir, 0700) && errno != EEXIST) {
        zsys_error ("store: cannot create %s: %s", dir, strerror (errno));
        return NULL;
    }
    af_store_t *self = (af_store_t *) zmalloc (sizeof (af_store_t));
    assert (self);
    self->readonly = readonly;
    self->dir = strdup (dir);
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, maxdbs? maxdbs: 16);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, mapsize? mapsize: (size_t) 1 << 30);
    if (rc == 0)
        rc = mdb_env_set_maxreaders (self->env, 256);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, (readonly? MDB_RDONLY: 0) | MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_env_set_userctx (self->env, self);     //  af_store_put finds us from a txn
    if (rc) {
        zsys_error ("store: cannot open %s: %s", dir, mdb_strerror (rc));
        af_store_destroy (&self);
        return NULL;
    }
    //  A fault for tests (tests/it_cluster_commit_fail.sh), as a disk
    //  that fails a write would cause: while the file AF_STORE_FAIL_COMMIT
    //  names exists, every batch's commit fails with EIO
    const char *fail = getenv ("AF_STORE_FAIL_COMMIT");
    if (fail && *fail && !readonly) {
        self->fail_commit = strdup (fail);
        zsys_warning ("store: AF_STORE_FAIL_COMMIT is set: batches fail to commit while %s exists", fail);
    }
    //  Clear stale reader slots left by processes killed with -9
    int dead = 0;
    mdb_reader_check (self->env, &dead);
    return self;
}

void
af_store_destroy (af_store_t **self_p)
{
    assert (self_p);
    af_store_t *self = *self_p;
    if (self) {
        if (self->env)
            mdb_env_close (self->env);
        for (int i = 0; i < AF_STORE_MAX_DBS; i++)
            free (self->names [i]);
        free (self->epochs);
        free (self->touched);
        free (self->owned);
        free (self->written);
        free (self->fail_commit);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

int
af_store_code (int rc)
{
    return rc == 0? AF_OK: AF_E_INTERNAL;
}

MDB_env *
af_store_env (af_store_t *self)
{
    assert (self);
    return self->env;
}

int
af_store_dbi (af_store_t *self, const char *name, unsigned flags, MDB_dbi *dbi)
{
    assert (self);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self, !self->readonly, &txn);
    if (rc)
        return rc;
    bool byref = (flags & AF_STORE_BYREF) != 0;
    flags &= ~AF_STORE_BYREF;
    rc = mdb_dbi_open (txn, name, flags | (self->readonly? 0: MDB_CREATE), dbi);
    if (rc) {
        zsys_error ("store: cannot open database '%s' in %s: %s", name, self->dir, mdb_strerror (rc));
        af_store_abort (self, &txn);
        return rc;
    }
    assert (*dbi < AF_STORE_MAX_DBS);
    if (!self->names [*dbi]) {
        self->names [*dbi] = strdup (name);
        assert (self->names [*dbi]);
        self->logged [*dbi] = !streq (name, AF_STORE_LOG_DB);
        self->byref [*dbi] = byref && self->logged [*dbi];
    }
    return af_store_commit (self, &txn);
}

int
af_store_batch_begin (af_store_t *self)
{
    assert (self && !self->batch && !self->readonly);
    int rc = mdb_txn_begin (self->env, NULL, 0, &self->batch);
    if (rc) {
        zsys_error ("store: cannot begin a batch in %s: %s", self->dir, mdb_strerror (rc));
        self->batch = NULL;
    }
    self->batch_from = self->stats.writes;
    for (uint32_t i = 0; i < self->written_count; i++)
        self->touched [self->written [i]] = 0;
    self->written_count = 0;
    return rc;
}

int
af_store_batch_end (af_store_t *self)
{
    assert (self && self->batch && !self->child);
    MDB_txn *batch = self->batch;
    self->batch = NULL;
    uint64_t writes = self->stats.writes - self->batch_from;
    if (writes == 0) {
        mdb_txn_abort (batch);          //  nothing to write: no commit, no fsync
        return 0;
    }
    int rc;
    if (self->fail_commit && access (self->fail_commit, F_OK) == 0) {
        mdb_txn_abort (batch);
        self->stats.failures++;
        rc = EIO;
    }
    else
        rc = s_commit_durable (self, batch);
    if (rc)
        zsys_error ("store: a batch's commit failed in %s: %s", self->dir, mdb_strerror (rc));
    else {
        self->stats.batches++;
        self->stats.batched += writes;
    }
    return rc;
}

void
af_store_batch_abort (af_store_t *self)
{
    assert (self && !self->child);
    if (self->batch)
        mdb_txn_abort (self->batch);
    self->batch = NULL;
}

bool
af_store_in_batch (af_store_t *self)
{
    assert (self);
    return self->batch != NULL;
}

uint64_t
af_store_writes (af_store_t *self)
{
    assert (self);
    return self->stats.writes;
}

void
af_store_stats (af_store_t *self, af_store_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info (self->env, &info) == 0 && mdb_env_stat (self->env, &stat) == 0) {
        stats->map_bytes = info.me_mapsize;
        stats->used_bytes = (uint64_t) (info.me_last_pgno + 1) * stat.ms_psize;
    }
}

int
af_store_begin (af_store_t *self, bool write, MDB_txn **txn_p)
{
    assert (self);
    assert (txn_p);
    //  In a batch: reads see the batch's changes through its transaction;
    //  a write is a child transaction, so one that fails can be undone
    //  alone, and its commit only merges into the batch
    //  alone, and its commit only merges into the batch. A read while a
    //  child is open is lent the child: LMDB does not let a parent be
    //  used while it has a child, and the child sees what it wrote
    if (self->batch && !write) {
        *txn_p = self->child? self->child: self->batch;
        if (self->child)
            self->lent++;
        return 0;
    }
    assert (!self->child);              //  one write at a time, as without a batch
    int rc = mdb_txn_begin (self->env, self->batch, write? 0: MDB_RDONLY, txn_p);
    if (rc) {
        zsys_error ("store: cannot begin %s transaction in %s: %s",
                    write? "write": "read", self->dir, mdb_strerror (rc));
        *txn_p = NULL;
    }
    else
    if (self->batch)
        self->child = *txn_p;
    return rc;
}

int
af_store_commit (af_store_t *self, MDB_txn **txn_p)
{
    assert (self);
    assert (txn_p && *txn_p);
    if (*txn_p == self->batch || (*txn_p == self->child && self->lent)) {
        if (*txn_p == self->child)
            self->lent--;
        *txn_p = NULL;                  //  a read lent by the batch: nothing to do
        return 0;
    }
    MDB_txn *txn = *txn_p;
    *txn_p = NULL;
    if (txn == self->child)
        self->child = NULL;
    //  A child of the batch merges into it; anything else goes to disk
    int rc = self->batch? mdb_txn_commit (txn): s_commit_durable (self, txn);
    if (rc)
        zsys_error ("store: commit failed in %s: %s", self->dir, mdb_strerror (rc));
    else
        self->stats.writes++;
    return rc;
}

void
af_store_abort (af_store_t *self, MDB_txn **txn_p)
{
    assert (self && txn_p);
    if (*txn_p && *txn_p == self->child && self->lent)
        self->lent--;                   //  a read lent the open child
    else
    if (*txn_p && *txn_p != self->batch) {
        if (*txn_p == self->child)
            self->child = NULL;
        mdb_txn_abort (*txn_p);
    }
    *txn_p = NULL;
}

int
af_store_get (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen, MDB_val *value)
{
    MDB_val k = { keylen, (void *) key };
    int rc = mdb_get (txn, dbi, &k, value);
    if (rc && rc != MDB_NOTFOUND)
        zsys_error ("store: get failed: %s", mdb_strerror (rc));
    return rc;
}

static int s_log_change (MDB_txn *txn, MDB_dbi dbi, bool put, const MDB_val *key, const MDB_val *value);

int
af_store_put (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen,
              const void *data, size_t size, unsigned flags)
{
    MDB_val k = { keylen, (void *) key };
    MDB_val v = { size, (void *) data };
    int rc = mdb_put (txn, dbi, &k, &v, flags);
    if (rc && rc != MDB_KEYEXIST)
        zsys_error ("store: put failed: %s", mdb_strerror (rc));
    if (rc == 0) {
        MDB_val put = { size, (void *) data };
        rc = s_log_change (txn, dbi, true, &k, &put);
    }
    return rc;
}

int
af_store_del (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen)
{
    MDB_val k = { keylen, (void *) key };
    int rc = mdb_del (txn, dbi, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        zsys_error ("store: del failed: %s", mdb_strerror (rc));
    if (rc == 0)
        rc = s_log_change (txn, dbi, false, &k, NULL);
    return rc;
}

int
af_store_cursor_del (MDB_cursor *cursor)
{
    MDB_val key, value;
    int rc = mdb_cursor_get (cursor, &key, &value, MDB_GET_CURRENT);
    uint8_t copy [AF_STORE_MAX_KEY];
    if (rc == 0 && key.mv_size <= sizeof copy) {
        memcpy (copy, key.mv_data, key.mv_size);        //  the page may move once deleted
        key.mv_data = copy;
    }
    if (rc == 0)
        rc = mdb_cursor_del (cursor, 0);
    if (rc)
        zsys_error ("store: del failed: %s", mdb_strerror (rc));
    if (rc == 0)
        rc = s_log_change (mdb_cursor_txn (cursor), mdb_cursor_dbi (cursor), false, &key, NULL);
    return rc;
}

//  --------------------------------------------------------------------------
//  The replication log (cluster mode)
//
//  Key: shard (2 bytes BE), seq (8 bytes BE). Value: msgpack array
//  [epoch, op (0 put, 1 delete, 2 put by reference), database name, key
//  (bin), value (bin, op 0 only)]. Op 2 is a put in an AF_STORE_BYREF
//  database, kept without its value: it never leaves the store as such
//  (s_log_resolve makes it a 0 or a 1), so another broker's entries have
//  ops 0 and 1 only. Seqs of a shard start at 1 and have no gaps; the
//  last entry of a shard is never trimmed, so its seq is never given
//  again.

#define LOG_KEY     10

static void
s_log_key (uint8_t *out, uint32_t shard, uint64_t seq)
{
    out [0] = (uint8_t) (shard >> 8);
    out [1] = (uint8_t) shard;
    af_put_be64 (out + 2, seq);
}

static uint64_t
s_log_seq (const uint8_t *key)
{
    return af_get_be64 (key + 2);
}

//  The last seq of a shard in txn (0: none), and its entry if entry is not NULL
static int
s_log_head (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq, MDB_val *entry)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->log_dbi, &cursor);
    if (rc)
        return rc;
    uint8_t after [LOG_KEY];
    s_log_key (after, shard + 1, 0);
    MDB_val key = { sizeof after, after }, value;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    rc = rc == 0? mdb_cursor_get (cursor, &key, &value, MDB_PREV):
         rc == MDB_NOTFOUND? mdb_cursor_get (cursor, &key, &value, MDB_LAST): rc;
    *seq = 0;
    if (rc == 0 && key.mv_size == LOG_KEY
    &&  (((uint32_t) ((uint8_t *) key.mv_data) [0] << 8) | ((uint8_t *) key.mv_data) [1]) == shard) {
        *seq = s_log_seq ((const uint8_t *) key.mv_data);
        if (entry)
            *entry = value;
    }
    mdb_cursor_close (cursor);
    return rc == MDB_NOTFOUND? 0: rc;
}

//  An entry from another broker, checked: its parts, or AF_E_MALFORMED
typedef struct {
    uint64_t epoch;
    bool put;
    MDB_dbi dbi;
    MDB_val key, value;
} change_t;

//  The logged database an entry's name (a msgpack str) names, or
//  AF_STORE_MAX_DBS if this store has none of that name
static MDB_dbi
s_logged_dbi (af_store_t *self, const msgpack_object *name)
{
    for (MDB_dbi dbi = 0; dbi < AF_STORE_MAX_DBS; dbi++)
        if (self->names [dbi] && self->logged [dbi] && strlen (self->names [dbi]) == name->via.str.size
        &&  memcmp (self->names [dbi], name->via.str.ptr, name->via.str.size) == 0)
            return dbi;
    return AF_STORE_MAX_DBS;
}

#define OP_PUT      0
#define OP_DEL      1
#define OP_REF      2

//  An entry into out (cleared first): value for OP_PUT only
static void
s_entry_pack (msgpack_sbuffer *out, uint64_t epoch, int op, const char *name, const MDB_val *key,
              const MDB_val *value)
{
    msgpack_sbuffer_clear (out);
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, op == OP_PUT? 5: 4);
    msgpack_pack_uint64 (&packer, epoch);
    msgpack_pack_uint8 (&packer, (uint8_t) op);
    size_t len = strlen (name);
    msgpack_pack_str (&packer, len);
    msgpack_pack_str_body (&packer, name, len);
    msgpack_pack_bin (&packer, key->mv_size);
    msgpack_pack_bin_body (&packer, key->mv_data, key->mv_size);
    if (op == OP_PUT) {
        msgpack_pack_bin (&packer, value->mv_size);
        msgpack_pack_bin_body (&packer, value->mv_data, value->mv_size);
    }
}

//  An entry as it leaves the store: a put by reference (OP_REF) becomes a
//  put of the value its key has in txn now, or a delete if it has none,
//  into out (*resolved); any other entry is left as it is (not resolved).
//  0 or an LMDB error.
static int
s_log_resolve (af_store_t *self, MDB_txn *txn, const void *entry, size_t size, msgpack_sbuffer *out,
               bool *resolved)
{
    *resolved = false;
    //  A put by value is a 5-array (0x95), the rest 4-arrays: most entries
    //  are not looked into
    if (size < 3 || ((const uint8_t *) entry) [0] != 0x94)
        return 0;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = 0;
    if (msgpack_unpack_next (&unpacked, entry, size, NULL) == MSGPACK_UNPACK_SUCCESS) {
        msgpack_object *part = unpacked.data.via.array.ptr;
        if (unpacked.data.type == MSGPACK_OBJECT_ARRAY && unpacked.data.via.array.size == 4
        &&  part [0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && part [1].type == MSGPACK_OBJECT_POSITIVE_INTEGER
        &&  part [1].via.u64 == OP_REF && part [2].type == MSGPACK_OBJECT_STR && part [3].type == MSGPACK_OBJECT_BIN) {
            MDB_dbi dbi = s_logged_dbi (self, &part [2]);
            MDB_val key = { part [3].via.bin.size, (void *) part [3].via.bin.ptr }, value;
            rc = dbi == AF_STORE_MAX_DBS || !self->byref [dbi]? MDB_INCOMPATIBLE: mdb_get (txn, dbi, &key, &value);
            if (rc == 0 || rc == MDB_NOTFOUND) {
                s_entry_pack (out, part [0].via.u64, rc == 0? OP_PUT: OP_DEL, self->names [dbi], &key, &value);
                *resolved = true;
                rc = 0;
            }
            else
                zsys_error ("store: cannot read the value of a logged put in %s: %s", self->dir, mdb_strerror (rc));
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

//  Write an entry that came from another broker into our log at seq, in
//  the form we keep: a put in an AF_STORE_BYREF database by reference
static int
s_log_keep (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, const void *entry, size_t size,
            const change_t *change)
{
    msgpack_sbuffer ref;
    msgpack_sbuffer_init (&ref);
    if (change->put && self->byref [change->dbi]) {
        s_entry_pack (&ref, change->epoch, OP_REF, self->names [change->dbi], &change->key, NULL);
        entry = ref.data;
        size = ref.size;
    }
    uint8_t at [LOG_KEY];
    s_log_key (at, shard, seq);
    MDB_val k = { sizeof at, at }, v = { size, (void *) entry };
    int rc = mdb_put (txn, self->log_dbi, &k, &v, 0);
    msgpack_sbuffer_destroy (&ref);
    return rc;
}

static int
s_log_change (MDB_txn *txn, MDB_dbi dbi, bool put, const MDB_val *key, const MDB_val *value)
{
    af_store_t *self = (af_store_t *) mdb_env_get_userctx (mdb_txn_env (txn));
    if (!self || !self->shards || dbi >= AF_STORE_MAX_DBS || !self->logged [dbi])
        return 0;
    uint32_t shard = af_shard_of_key (key->mv_data, key->mv_size, self->shards);
    if (!self->owned [shard]) {
        zsys_error ("store: refused a change of shard %u in %s: this broker does not own it", shard, self->dir);
        return EACCES;
    }
    uint64_t head;
    int rc = s_log_head (self, txn, shard, &head, NULL);
    if (rc)
        return rc;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    s_entry_pack (&buffer, self->epochs [shard], !put? OP_DEL: self->byref [dbi]? OP_REF: OP_PUT,
                  self->names [dbi], key, value);
    uint8_t at [LOG_KEY];
    s_log_key (at, shard, head + 1);
    MDB_val k = { sizeof at, at }, v = { buffer.size, buffer.data };
    rc = mdb_put (txn, self->log_dbi, &k, &v, 0);
    if (rc == 0 && !self->touched [shard]) {
        self->touched [shard] = 1;
        self->written [self->written_count++] = shard;
    }
    msgpack_sbuffer_destroy (&buffer);
    if (rc)
        zsys_error ("store: cannot log a change in %s: %s", self->dir, mdb_strerror (rc));
    return rc;
}

int
af_store_log_enable (af_store_t *self, uint32_t shards)
{
    assert (self && shards >= 1 && shards <= AF_SHARDS_MAX && !self->shards);
    int rc = af_store_dbi (self, AF_STORE_LOG_DB, 0, &self->log_dbi);
    if (rc)
        return AF_E_INTERNAL;
    self->epochs = (uint64_t *) calloc (shards, sizeof (uint64_t));
    self->touched = (uint8_t *) calloc (shards, 1);
    self->owned = (uint8_t *) calloc (shards, 1);
    assert (self->owned);
    self->written = (uint32_t *) calloc (shards, sizeof (uint32_t));
    assert (self->epochs && self->touched && self->written);
    self->shards = shards;
    return AF_OK;
}

void
af_store_log_own (af_store_t *self, uint32_t shard, bool owned)
{
    assert (self && self->shards && shard < self->shards);
    self->owned [shard] = owned;
}

size_t
af_store_log_written (af_store_t *self, const uint32_t **shards)
{
    assert (self && shards);
    *shards = self->written;
    return self->shards? self->written_count: 0;
}

void
af_store_log_epoch (af_store_t *self, uint32_t shard, uint64_t epoch)
{
    assert (self && self->shards && shard < self->shards);
    self->epochs [shard] = epoch;
}

uint64_t
af_store_entry_epoch (const void *entry, size_t size)
{
    uint64_t epoch = 0;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    if (entry && size && msgpack_unpack_next (&unpacked, entry, size, NULL) == MSGPACK_UNPACK_SUCCESS
    &&  unpacked.data.type == MSGPACK_OBJECT_ARRAY && unpacked.data.via.array.size >= 1
    &&  unpacked.data.via.array.ptr [0].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        epoch = unpacked.data.via.array.ptr [0].via.u64;
    msgpack_unpacked_destroy (&unpacked);
    return epoch;
}

int
af_store_log_head (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq, uint64_t *epoch)
{
    assert (self && self->shards && shard < self->shards && seq);
    MDB_val entry = { 0, NULL };
    int rc = s_log_head (self, txn, shard, seq, &entry);
    if (epoch)
        *epoch = rc == 0 && *seq? af_store_entry_epoch (entry.mv_data, entry.mv_size): 0;
    return af_store_code (rc);
}

int
af_store_log_epoch_at (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, uint64_t *epoch)
{
    assert (self && self->shards && shard < self->shards && epoch);
    *epoch = 0;
    if (seq == 0)
        return AF_OK;                   //  before the first entry: there is none
    uint8_t at [LOG_KEY];
    s_log_key (at, shard, seq);
    MDB_val key = { sizeof at, at }, value;
    int rc = mdb_get (txn, self->log_dbi, &key, &value);
    if (rc == 0)
        *epoch = af_store_entry_epoch (value.mv_data, value.mv_size);
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

int
af_store_log_read (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t after, size_t max_entries,
                   size_t max_bytes, af_store_log_fn *fn, void *arg)
{
    assert (self && self->shards && shard < self->shards && fn);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->log_dbi, &cursor);
    if (rc)
        return AF_E_INTERNAL;
    uint8_t from [LOG_KEY];
    s_log_key (from, shard, after + 1);
    MDB_val key = { sizeof from, from }, value;
    size_t entries = 0, bytes = 0;
    int code = AF_OK;
    msgpack_sbuffer resolved;
    msgpack_sbuffer_init (&resolved);
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == LOG_KEY && memcmp (key.mv_data, from, 2) == 0 && entries < max_entries) {
        bool by_ref;
        rc = s_log_resolve (self, txn, value.mv_data, value.mv_size, &resolved, &by_ref);
        if (rc)
            break;
        if (by_ref)
            value = (MDB_val) { resolved.size, resolved.data };
        if (entries && bytes + value.mv_size > max_bytes)
            break;
        code = fn (s_log_seq ((const uint8_t *) key.mv_data), value.mv_data, value.mv_size, arg);
        if (code != AF_OK)
            break;
        entries++;
        bytes += value.mv_size;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    msgpack_sbuffer_destroy (&resolved);
    mdb_cursor_close (cursor);
    return code != AF_OK? code: rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}


static int
s_log_decode (af_store_t *self, msgpack_object *object, uint32_t shard, change_t *change)
{
    if (object->type != MSGPACK_OBJECT_ARRAY || object->via.array.size < 4 || object->via.array.size > 5)
        return AF_E_MALFORMED;
    msgpack_object *part = object->via.array.ptr;
    if (part [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || part [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  part [1].via.u64 > 1 || part [2].type != MSGPACK_OBJECT_STR || part [3].type != MSGPACK_OBJECT_BIN
    ||  part [3].via.bin.size == 0 || part [3].via.bin.size > AF_STORE_MAX_KEY)
        return AF_E_MALFORMED;
    change->epoch = part [0].via.u64;
    change->put = part [1].via.u64 == 0;
    if (change->put != (object->via.array.size == 5)
    ||  (change->put && part [4].type != MSGPACK_OBJECT_BIN))
        return AF_E_MALFORMED;
    change->dbi = s_logged_dbi (self, &part [2]);
    if (change->dbi == AF_STORE_MAX_DBS)
        return AF_E_MALFORMED;          //  a database this broker does not have
    change->key = (MDB_val) { part [3].via.bin.size, (void *) part [3].via.bin.ptr };
    if (af_shard_of_key (change->key.mv_data, change->key.mv_size, self->shards) != shard)
        return AF_E_MALFORMED;          //  not this shard's
    if (change->put)
        change->value = (MDB_val) { part [4].via.bin.size, (void *) part [4].via.bin.ptr };
    return AF_OK;
}

int
af_store_log_apply (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, const void *entry,
                    size_t size, bool *applied, uint64_t *head)
{
    assert (self && self->shards && shard < self->shards && applied && head);
    *applied = false;
    uint64_t epoch;
    int code = af_store_log_head (self, txn, shard, head, &epoch);
    if (code != AF_OK || seq != *head + 1)
        return code;                    //  a repeat, or a gap: nothing to do, head says where we are
    if (size > AF_STORE_MAX_ENTRY)
        return AF_E_TOO_BIG;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    change_t change;
    if (msgpack_unpack_next (&unpacked, entry, size, NULL) != MSGPACK_UNPACK_SUCCESS)
        code = AF_E_MALFORMED;
    else
        code = s_log_decode (self, &unpacked.data, shard, &change);
    if (code == AF_OK && change.epoch < epoch)
        code = AF_E_FORBIDDEN;          //  written under an epoch older than what we have
    int rc = 0;
    if (code == AF_OK) {
        rc = change.put? mdb_put (txn, change.dbi, &change.key, &change.value, 0):
                         mdb_del (txn, change.dbi, &change.key, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;                     //  deleted already: the same state
        if (rc == 0)
            rc = s_log_keep (self, txn, shard, seq, entry, size, &change);
        if (rc) {
            zsys_error ("store: cannot apply a change of shard %u in %s: %s", shard, self->dir, mdb_strerror (rc));
            code = AF_E_INTERNAL;
        }
        else {
            *applied = true;
            *head = seq;
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    return code;
}

int
af_store_log_trim (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t upto, size_t *removed)
{
    assert (self && self->shards && shard < self->shards);
    uint64_t head;
    int rc = s_log_head (self, txn, shard, &head, NULL);
    if (upto >= head)
        upto = head? head - 1: 0;       //  the last entry stays: its seq is never given again
    MDB_cursor *cursor;
    if (rc == 0)
        rc = mdb_cursor_open (txn, self->log_dbi, &cursor);
    if (rc)
        return AF_E_INTERNAL;
    uint8_t from [LOG_KEY];
    s_log_key (from, shard, 0);
    size_t count = 0;
    while (rc == 0) {                   //  seek again after each delete: the cursor is not trusted after one
        MDB_val key = { sizeof from, from }, value;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        if (rc || key.mv_size != LOG_KEY || memcmp (key.mv_data, from, 2)
        ||  s_log_seq ((const uint8_t *) key.mv_data) > upto)
            break;
        rc = mdb_cursor_del (cursor, 0);
        count += rc == 0;
    }
    mdb_cursor_close (cursor);
    if (removed)
        *removed = count;
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

//  --------------------------------------------------------------------------
//  Shard snapshots (SPEC 5.37 SNAPSHOT)

//  The record of a copy in progress: in the log database under 0xFF 0xFF
//  and the shard (no shard's log key starts so: shards < 4096); value
//  seq (8 bytes LE), epoch (8 bytes LE), next part (4 bytes LE)
#define SNAP_MARK       4
#define SNAP_MARK_SIZE  20

static void
s_snap_mark_key (uint8_t *out, uint32_t shard)
{
    out [0] = 0xFF;
    out [1] = 0xFF;
    out [2] = (uint8_t) (shard >> 8);
    out [3] = (uint8_t) shard;
}

//  The record: 0 (*seq 0 if none) or an LMDB error
static int
s_snap_mark_get (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq, uint64_t *epoch, uint32_t *next)
{
    uint8_t at [SNAP_MARK];
    s_snap_mark_key (at, shard);
    MDB_val key = { sizeof at, at }, value;
    int rc = mdb_get (txn, self->log_dbi, &key, &value);
    *seq = *epoch = 0;
    *next = 0;
    if (rc == 0 && value.mv_size == SNAP_MARK_SIZE) {
        memcpy (seq, value.mv_data, 8);
        memcpy (epoch, (uint8_t *) value.mv_data + 8, 8);
        memcpy (next, (uint8_t *) value.mv_data + 16, 4);
    }
    return rc == MDB_NOTFOUND? 0: rc;
}

static int
s_snap_mark_put (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, uint64_t epoch, uint32_t next)
{
    uint8_t at [SNAP_MARK], record [SNAP_MARK_SIZE];
    s_snap_mark_key (at, shard);
    memcpy (record, &seq, 8);
    memcpy (record + 8, &epoch, 8);
    memcpy (record + 16, &next, 4);
    MDB_val key = { sizeof at, at }, value = { sizeof record, record };
    return mdb_put (txn, self->log_dbi, &key, &value, 0);
}

static int
s_snap_mark_del (af_store_t *self, MDB_txn *txn, uint32_t shard)
{
    uint8_t at [SNAP_MARK];
    s_snap_mark_key (at, shard);
    MDB_val key = { sizeof at, at };
    int rc = mdb_del (txn, self->log_dbi, &key, NULL);
    return rc == MDB_NOTFOUND? 0: rc;
}

//  Delete every key of shard in every logged database, and its whole log
//  (its last entry too: a copy brings its own). 0 or an LMDB error
static int
s_snap_clear (af_store_t *self, MDB_txn *txn, uint32_t shard)
{
    int rc = 0;
    for (MDB_dbi dbi = 0; rc == 0 && dbi < AF_STORE_MAX_DBS; dbi++) {
        if (!self->names [dbi] || !self->logged [dbi])
            continue;
        MDB_cursor *cursor = NULL;
        rc = mdb_cursor_open (txn, dbi, &cursor);
        MDB_val key, value;
        if (rc == 0)
            rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        uint8_t copy [AF_STORE_MAX_KEY];
        while (rc == 0) {
            if (af_shard_of_key (key.mv_data, key.mv_size, self->shards) != shard) {
                rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
                continue;
            }
            //  Seek again after each delete (the cursor is not trusted after one)
            size_t len = key.mv_size <= sizeof copy? key.mv_size: sizeof copy;
            memcpy (copy, key.mv_data, len);
            rc = mdb_cursor_del (cursor, 0);
            key = (MDB_val) { len, copy };
            if (rc == 0)
                rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (cursor)
            mdb_cursor_close (cursor);
    }
    if (rc == 0) {
        MDB_cursor *cursor = NULL;
        rc = mdb_cursor_open (txn, self->log_dbi, &cursor);
        uint8_t from [LOG_KEY];
        s_log_key (from, shard, 0);
        while (rc == 0) {
            MDB_val key = { sizeof from, from }, value;
            rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
            if (rc || key.mv_size != LOG_KEY || memcmp (key.mv_data, from, 2))
                break;
            rc = mdb_cursor_del (cursor, 0);
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (cursor)
            mdb_cursor_close (cursor);
    }
    if (rc == 0)
        rc = s_snap_mark_del (self, txn, shard);
    if (rc)
        zsys_error ("store: cannot clear shard %u in %s: %s", shard, self->dir, mdb_strerror (rc));
    return rc;
}

struct _af_store_snap_t {
    af_store_t *store;
    MDB_txn *txn;                   //  our own read transaction
    uint32_t shard;
    uint64_t epoch, seq;
    MDB_dbi dbi;                    //  the database being read
    bool started;                   //  ... from after key, not from its first
    uint8_t key [AF_STORE_MAX_KEY];
    size_t keylen;
    bool done;
    msgpack_sbuffer entry;          //  the entry at seq, resolved (af_store_snap_entry)
};

af_store_snap_t *
af_store_snap_new (af_store_t *self, uint32_t shard, uint64_t epoch)
{
    assert (self && self->shards && shard < self->shards);
    af_store_snap_t *snap = (af_store_snap_t *) zmalloc (sizeof (af_store_snap_t));
    assert (snap);
    snap->store = self;
    msgpack_sbuffer_init (&snap->entry);
    snap->shard = shard;
    snap->epoch = epoch;
    //  Not af_store_begin: in a batch it would lend us the batch, which
    //  changes under us and holds what is not on disk yet. MDB_NOTLS lets
    //  this thread hold it beside the batch's write transaction
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &snap->txn);
    if (rc == 0)
        rc = s_log_head (self, snap->txn, shard, &snap->seq, NULL);
    if (rc) {
        zsys_error ("store: cannot begin a copy of shard %u in %s: %s", shard, self->dir, mdb_strerror (rc));
        af_store_snap_destroy (&snap);
    }
    return snap;
}

void
af_store_snap_destroy (af_store_snap_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        if ((*self_p)->txn)
            mdb_txn_abort ((*self_p)->txn);
        msgpack_sbuffer_destroy (&(*self_p)->entry);
        free (*self_p);
        *self_p = NULL;
    }
}

uint64_t
af_store_snap_seq (af_store_snap_t *self)
{
    assert (self);
    return self->seq;
}

int
af_store_snap_next (af_store_snap_t *self, uint8_t *buffer, size_t capacity, size_t max, size_t *used, bool *done)
{
    assert (self && buffer && used && done && capacity >= max);
    af_store_t *store = self->store;
    *used = 0;
    size_t scanned = 0;
    int code = AF_OK;
    msgpack_sbuffer record;
    msgpack_sbuffer_init (&record);
    while (!self->done && code == AF_OK && scanned < AF_CLUSTER_SNAPSHOT_SCAN) {
        if (self->dbi >= AF_STORE_MAX_DBS) {
            self->done = true;
            break;
        }
        if (!store->names [self->dbi] || !store->logged [self->dbi]) {
            self->dbi++;
            self->started = false;
            continue;
        }
        MDB_cursor *cursor;
        if (mdb_cursor_open (self->txn, self->dbi, &cursor)) {
            code = AF_E_INTERNAL;
            break;
        }
        MDB_val key = { self->keylen, self->key }, value;
        int rc = mdb_cursor_get (cursor, &key, &value, self->started? MDB_SET_RANGE: MDB_FIRST);
        if (rc == 0 && self->started && key.mv_size == self->keylen && memcmp (key.mv_data, self->key, self->keylen) == 0)
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);       //  sent already
        bool full = false;
        while (rc == 0 && scanned < AF_CLUSTER_SNAPSHOT_SCAN) {
            if (af_shard_of_key (key.mv_data, key.mv_size, store->shards) == self->shard) {
                msgpack_sbuffer_clear (&record);
                msgpack_packer packer;
                msgpack_packer_init (&packer, &record, msgpack_sbuffer_write);
                msgpack_pack_array (&packer, 5);
                msgpack_pack_uint64 (&packer, self->epoch);
                msgpack_pack_uint8 (&packer, 0);
                size_t len = strlen (store->names [self->dbi]);
                msgpack_pack_str (&packer, len);
                msgpack_pack_str_body (&packer, store->names [self->dbi], len);
                msgpack_pack_bin (&packer, key.mv_size);
                msgpack_pack_bin_body (&packer, key.mv_data, key.mv_size);
                msgpack_pack_bin (&packer, value.mv_size);
                msgpack_pack_bin_body (&packer, value.mv_data, value.mv_size);
                if (*used && *used + 4 + record.size > max) {
                    full = true;        //  the next part begins with it
                    break;
                }
                if (4 + record.size > capacity) {
                    zsys_error ("store: a key of shard %u in '%s' is too large for a copy (%zu bytes)",
                                self->shard, store->names [self->dbi], record.size);
                    code = AF_E_TOO_BIG;
                    break;
                }
                uint32_t size32 = (uint32_t) record.size;
                memcpy (buffer + *used, &size32, 4);
                memcpy (buffer + *used + 4, record.data, record.size);
                *used += 4 + record.size;
            }
            if (key.mv_size > sizeof self->key) {
                code = AF_E_INTERNAL;   //  LMDB's keys are at most 511 bytes
                break;
            }
            memcpy (self->key, key.mv_data, key.mv_size);
            self->keylen = key.mv_size;
            self->started = true;
            scanned++;
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
        if (code == AF_OK && rc && rc != MDB_NOTFOUND)
            code = AF_E_INTERNAL;
        if (code != AF_OK || full)
            break;
        if (rc == MDB_NOTFOUND) {
            self->dbi++;                //  this database is read
            self->started = false;
        }
    }
    msgpack_sbuffer_destroy (&record);
    *done = self->done;
    return code;
}

int
af_store_snap_entry (af_store_snap_t *self, const void **entry, size_t *size)
{
    assert (self && entry && size);
    uint64_t seq;
    MDB_val value = { 0, NULL };
    if (s_log_head (self->store, self->txn, self->shard, &seq, &value) || seq != self->seq || !seq)
        return AF_E_INTERNAL;
    bool by_ref;
    if (s_log_resolve (self->store, self->txn, value.mv_data, value.mv_size, &self->entry, &by_ref))
        return AF_E_INTERNAL;
    *entry = by_ref? self->entry.data: value.mv_data;
    *size = by_ref? self->entry.size: value.mv_size;
    return AF_OK;
}

//  A part's records, checked and put (unlogged)
static int
s_snap_put (af_store_t *self, MDB_txn *txn, uint32_t shard, const uint8_t *records, size_t size)
{
    size_t at = 0;
    int code = AF_OK;
    while (code == AF_OK && at < size) {
        uint32_t length;
        if (size - at < 4)
            return AF_E_MALFORMED;
        memcpy (&length, records + at, 4);
        if (length > size - at - 4)
            return AF_E_MALFORMED;
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        change_t change;
        if (msgpack_unpack_next (&unpacked, (const char *) records + at + 4, length, NULL) != MSGPACK_UNPACK_SUCCESS)
            code = AF_E_MALFORMED;
        else
            code = s_log_decode (self, &unpacked.data, shard, &change);
        if (code == AF_OK && !change.put)
            code = AF_E_MALFORMED;
        if (code == AF_OK && mdb_put (txn, change.dbi, &change.key, &change.value, 0)) {
            zsys_error ("store: cannot write a copy of shard %u in %s", shard, self->dir);
            code = AF_E_INTERNAL;
        }
        msgpack_unpacked_destroy (&unpacked);
        at += 4 + (size_t) length;
    }
    return code;
}

int
af_store_snap_apply (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, uint64_t epoch,
                     uint32_t part, const void *records, size_t size, const void *entry, size_t entry_size,
                     af_store_snap_outcome_t *outcome)
{
    assert (self && self->shards && shard < self->shards && outcome);
    *outcome = AF_STORE_SNAP_OUT_OF_ORDER;
    if (!seq || (size && !records) || (entry && (!entry_size || entry_size > AF_STORE_MAX_ENTRY)))
        return AF_E_MALFORMED;
    uint64_t have_seq, have_epoch;
    uint32_t next;
    if (s_snap_mark_get (self, txn, shard, &have_seq, &have_epoch, &next))
        return AF_E_INTERNAL;
    bool ours = have_seq == seq && have_epoch == epoch;
    if (ours && part < next) {
        *outcome = AF_STORE_SNAP_REPEAT;
        return AF_OK;
    }
    if (part == 0) {
        if (s_snap_clear (self, txn, shard))
            return AF_E_INTERNAL;
    }
    else
    if (!ours || part != next)
        return AF_OK;                   //  out of order: nothing written
    int code = s_snap_put (self, txn, shard, (const uint8_t *) records, size);
    if (code != AF_OK)
        return code;
    if (!entry) {
        if (s_snap_mark_put (self, txn, shard, seq, epoch, part + 1))
            return AF_E_INTERNAL;
        *outcome = AF_STORE_SNAP_APPLIED;
        return AF_OK;
    }
    //  The last part: the owner's entry at seq starts our log again (its
    //  change is in the copy already); checked as any entry is
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    change_t change;
    if (msgpack_unpack_next (&unpacked, entry, entry_size, NULL) != MSGPACK_UNPACK_SUCCESS)
        code = AF_E_MALFORMED;
    else
        code = s_log_decode (self, &unpacked.data, shard, &change);
    if (code == AF_OK
    &&  (s_log_keep (self, txn, shard, seq, entry, entry_size, &change) || s_snap_mark_del (self, txn, shard))) {
        zsys_error ("store: cannot end a copy of shard %u in %s", shard, self->dir);
        code = AF_E_INTERNAL;
    }
    msgpack_unpacked_destroy (&unpacked);
    if (code != AF_OK)
        return code;
    *outcome = AF_STORE_SNAP_DONE;
    return AF_OK;
}

int
af_store_snap_pending (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq)
{
    assert (self && self->shards && shard < self->shards && seq);
    uint64_t epoch;
    uint32_t next;
    return af_store_code (s_snap_mark_get (self, txn, shard, seq, &epoch, &next));
}

int
af_store_snap_abandon (af_store_t *self, MDB_txn *txn, uint32_t shard)
{
    assert (self && self->shards && shard < self->shards);
    return af_store_code (s_snap_clear (self, txn, shard));
}

int
af_store_log_first (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq)
{
    assert (self && self->shards && shard < self->shards && seq);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->log_dbi, &cursor);
    if (rc)
        return AF_E_INTERNAL;
    uint8_t from [LOG_KEY];
    s_log_key (from, shard, 0);
    MDB_val key = { sizeof from, from }, value;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    *seq = rc == 0 && key.mv_size == LOG_KEY && memcmp (key.mv_data, from, 2) == 0?
           s_log_seq ((const uint8_t *) key.mv_data): 0;
    mdb_cursor_close (cursor);
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

//  --------------------------------------------------------------------------
//  Self test

//  Two accounts in different shards of 16
static void
s_test_accounts (const char **one, const char **other)
{
    static const char *names [] = { "ana", "bob", "carol", "dan", "eve", "fay" };
    *one = names [0];
    for (int i = 1; i < 6; i++)
        if (af_shard_of (names [i], strlen (names [i]), 16) != af_shard_of ("ana", 3, 16)) {
            *other = names [i];
            return;
        }
    assert (false);
}

typedef struct {
    uint64_t seqs [16];
    uint8_t *entries [16];
    size_t sizes [16];
    size_t count;
} test_log_t;

static int
s_test_collect (uint64_t seq, const void *entry, size_t size, void *arg)
{
    test_log_t *log = (test_log_t *) arg;
    assert (log->count < 16);
    log->seqs [log->count] = seq;
    log->entries [log->count] = (uint8_t *) malloc (size);
    memcpy (log->entries [log->count], entry, size);
    log->sizes [log->count++] = size;
    return AF_OK;
}

static void
s_test_put (af_store_t *store, MDB_dbi dbi, const char *account, const char *rest, const char *value)
{
    uint8_t key [64];
    size_t len = strlen (account);
    memcpy (key, account, len + 1);
    memcpy (key + len + 1, rest, strlen (rest));
    MDB_txn *txn;
    assert (af_store_begin (store, true, &txn) == 0);
    if (value)
        assert (af_store_put (txn, dbi, key, len + 1 + strlen (rest), value, strlen (value), 0) == 0);
    else
        assert (af_store_del (txn, dbi, key, len + 1 + strlen (rest)) == 0);
    assert (af_store_commit (store, &txn) == 0);
}

//  The raw size of shard's entry seq as the log keeps it (not resolved)
static size_t
s_test_kept (af_store_t *store, uint32_t shard, uint64_t seq)
{
    MDB_txn *txn;
    assert (af_store_begin (store, false, &txn) == 0);
    uint8_t at [LOG_KEY];
    s_log_key (at, shard, seq);
    MDB_val key = { sizeof at, at }, value = { 0, NULL };
    assert (mdb_get (txn, store->log_dbi, &key, &value) == 0);
    size_t size = value.mv_size;
    af_store_abort (store, &txn);
    return size;
}

//  Puts by reference (AF_STORE_BYREF): kept small in the log, sent with
//  the value there is when they are read, as a delete once it is gone
static void
s_test_byref (const char *base)
{
    char owner_dir [PATH_MAX], follower_dir [PATH_MAX];
    snprintf (owner_dir, sizeof owner_dir, "%s/ref-owner", base);
    snprintf (follower_dir, sizeof follower_dir, "%s/ref-follower", base);
    af_store_t *owner = af_store_new (owner_dir, 16 << 20, 8, false);
    af_store_t *follower = af_store_new (follower_dir, 16 << 20, 8, false);
    MDB_dbi obig, fbig;
    assert (af_store_dbi (owner, "big", AF_STORE_BYREF, &obig) == 0
         && af_store_dbi (follower, "big", AF_STORE_BYREF, &fbig) == 0);
    assert (af_store_log_enable (owner, 16) == AF_OK && af_store_log_enable (follower, 16) == AF_OK);
    const char *ana, *other;
    s_test_accounts (&ana, &other);
    uint32_t shard = af_shard_of (ana, strlen (ana), 16);
    af_store_log_own (owner, shard, true);
    af_store_log_epoch (owner, shard, 3);
    size_t big = 200 * 1024;
    char *bytes = (char *) malloc (big + 1);
    assert (bytes);
    for (size_t i = 0; i < big; i++)
        bytes [i] = (char) ('a' + i % 26);
    bytes [big] = 0;
    s_test_put (owner, obig, ana, "1", bytes);      //  seq 1
    s_test_put (owner, obig, ana, "2", bytes);      //  seq 2, deleted at 3
    s_test_put (owner, obig, ana, "2", NULL);
    //  The log keeps the key, not the 200 KiB
    assert (s_test_kept (owner, shard, 1) < 64);
    //  Read, seq 1 carries its value and seq 2, gone since, is a delete
    MDB_txn *txn;
    test_log_t log = { .count = 0 };
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_read (owner, txn, shard, 0, 16, 4 << 20, s_test_collect, &log) == AF_OK);
    af_store_abort (owner, &txn);
    assert (log.count == 3 && log.sizes [0] > big && log.sizes [1] < 64 && log.entries [0][0] == 0x95);
    //  ... and max_bytes counts what is sent, not what is kept
    test_log_t first = { .count = 0 };
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_read (owner, txn, shard, 0, 16, big, s_test_collect, &first) == AF_OK);
    af_store_abort (owner, &txn);
    assert (first.count == 1);
    //  A follower applies them: the value in its database, a reference in its log
    bool applied;
    uint64_t head;
    assert (af_store_begin (follower, true, &txn) == 0);
    for (size_t i = 0; i < log.count; i++)
        assert (af_store_log_apply (follower, txn, shard, log.seqs [i], log.entries [i], log.sizes [i],
                                    &applied, &head) == AF_OK && applied);
    assert (af_store_commit (follower, &txn) == 0);
    assert (s_test_kept (follower, shard, 1) < 64);
    uint8_t key [64];
    memcpy (key, ana, strlen (ana) + 1);
    key [strlen (ana) + 1] = '1';
    MDB_val value;
    assert (af_store_begin (follower, false, &txn) == 0);
    assert (af_store_get (txn, fbig, key, strlen (ana) + 2, &value) == 0 && value.mv_size == big
         && memcmp (value.mv_data, bytes, big) == 0);
    //  ... and, promoted, sends it on with the value it holds
    test_log_t again = { .count = 0 };
    assert (af_store_log_read (follower, txn, shard, 0, 1, 4 << 20, s_test_collect, &again) == AF_OK);
    af_store_abort (follower, &txn);
    assert (again.count == 1 && again.sizes [0] == log.sizes [0]
         && memcmp (again.entries [0], log.entries [0], log.sizes [0]) == 0);
    //  A put by reference never comes from another broker
    uint8_t ref [64];
    memcpy (ref, "\x94\x03\x02\xa3" "big" "\xc4", 9);
    ref [9] = (uint8_t) (strlen (ana) + 2);
    memcpy (ref + 10, key, strlen (ana) + 2);
    assert (af_store_begin (follower, true, &txn) == 0);
    assert (af_store_log_apply (follower, txn, shard, 4, ref, 10 + strlen (ana) + 2, &applied, &head)
            == AF_E_MALFORMED && !applied);
    af_store_abort (follower, &txn);
    //  A copy's last entry comes resolved too
    s_test_put (owner, obig, ana, "3", bytes);
    af_store_snap_t *snap = af_store_snap_new (owner, shard, 3);
    const void *entry;
    size_t size;
    assert (snap && af_store_snap_entry (snap, &entry, &size) == AF_OK && size > big);
    af_store_snap_destroy (&snap);
    for (size_t i = 0; i < log.count; i++) {
        free (log.entries [i]);
        if (i < first.count)
            free (first.entries [i]);
        if (i < again.count)
            free (again.entries [i]);
    }
    free (bytes);
    af_store_destroy (&owner);
    af_store_destroy (&follower);
}

//  The replication log: an owner's changes, read and applied by a follower
static void
s_test_log (const char *base)
{
    char owner_dir [PATH_MAX], follower_dir [PATH_MAX];
    snprintf (owner_dir, sizeof owner_dir, "%s/owner", base);
    snprintf (follower_dir, sizeof follower_dir, "%s/follower", base);
    af_store_t *owner = af_store_new (owner_dir, 16 << 20, 8, false);
    af_store_t *follower = af_store_new (follower_dir, 16 << 20, 8, false);
    MDB_dbi odbi, fdbi;
    assert (af_store_dbi (owner, "things", 0, &odbi) == 0 && af_store_dbi (follower, "things", 0, &fdbi) == 0);
    assert (af_store_log_enable (owner, 16) == AF_OK && af_store_log_enable (follower, 16) == AF_OK);
    const char *ana, *other;
    s_test_accounts (&ana, &other);
    uint32_t shard = af_shard_of (ana, strlen (ana), 16);
    //  A shard not owned cannot be written
    MDB_txn *txn;
    uint8_t key [16];
    assert (af_store_begin (owner, true, &txn) == 0);
    memcpy (key, ana, strlen (ana) + 1);
    key [strlen (ana) + 1] = 'q';
    assert (af_store_put (txn, odbi, key, strlen (ana) + 2, "no", 2, 0) == EACCES);
    af_store_abort (owner, &txn);
    af_store_log_own (owner, shard, true);
    af_store_log_own (owner, af_shard_of (other, strlen (other), 16), true);
    af_store_log_epoch (owner, shard, 5);
    s_test_put (owner, odbi, ana, "x", "1");
    s_test_put (owner, odbi, ana, "y", "2");
    s_test_put (owner, odbi, other, "z", "3");      //  another shard's log
    s_test_put (owner, odbi, ana, "x", NULL);
    uint64_t head, epoch;
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_head (owner, txn, shard, &head, &epoch) == AF_OK && head == 3 && epoch == 5);
    test_log_t log = { .count = 0 };
    assert (af_store_log_read (owner, txn, shard, 0, 16, 1 << 20, s_test_collect, &log) == AF_OK);
    af_store_abort (owner, &txn);
    assert (log.count == 3 && log.seqs [0] == 1 && log.seqs [2] == 3);

    //  The follower applies them once, in order: a repeat or a gap does nothing
    bool applied;
    assert (af_store_begin (follower, true, &txn) == 0);
    assert (af_store_log_apply (follower, txn, shard, 1, log.entries [0], log.sizes [0], &applied, &head) == AF_OK);
    assert (applied && head == 1);
    assert (af_store_log_apply (follower, txn, shard, 1, log.entries [0], log.sizes [0], &applied, &head) == AF_OK);
    assert (!applied && head == 1);
    assert (af_store_log_apply (follower, txn, shard, 3, log.entries [2], log.sizes [2], &applied, &head) == AF_OK);
    assert (!applied && head == 1);
    //  Not an entry; an entry of another shard: refused, nothing written
    assert (af_store_log_apply (follower, txn, shard, 2, "garbage", 7, &applied, &head) == AF_E_MALFORMED);
    assert (af_store_log_apply (follower, txn, af_shard_of (other, strlen (other), 16), 1, log.entries [1],
                                log.sizes [1], &applied, &head) == AF_E_MALFORMED && !applied);
    for (int i = 1; i < 3; i++)
        assert (af_store_log_apply (follower, txn, shard, log.seqs [i], log.entries [i], log.sizes [i],
                                    &applied, &head) == AF_OK && applied);
    assert (af_store_commit (follower, &txn) == 0);
    //  The follower has the owner's data, and its log
    memcpy (key, ana, strlen (ana) + 1);
    MDB_val value;
    assert (af_store_begin (follower, false, &txn) == 0);
    key [strlen (ana) + 1] = 'y';
    assert (af_store_get (txn, fdbi, key, strlen (ana) + 2, &value) == 0 && value.mv_size == 1);
    key [strlen (ana) + 1] = 'x';
    assert (af_store_get (txn, fdbi, key, strlen (ana) + 2, &value) == MDB_NOTFOUND);
    assert (af_store_log_head (follower, txn, shard, &head, &epoch) == AF_OK && head == 3 && epoch == 5);
    //  ... each entry's epoch, what a REPL's prevEpoch is checked against
    assert (af_store_log_epoch_at (follower, txn, shard, 2, &epoch) == AF_OK && epoch == 5);
    assert (af_store_log_epoch_at (follower, txn, shard, 4, &epoch) == AF_OK && epoch == 0);
    assert (af_store_log_epoch_at (follower, txn, shard, 0, &epoch) == AF_OK && epoch == 0);
    af_store_abort (follower, &txn);
    assert (af_store_entry_epoch (log.entries [0], log.sizes [0]) == 5);
    assert (af_store_entry_epoch ("garbage", 7) == 0 && af_store_entry_epoch (NULL, 0) == 0);

    //  An entry under an older epoch than the last is refused (fencing)
    af_store_log_epoch (owner, shard, 4);
    s_test_put (owner, odbi, ana, "w", "old");
    test_log_t stale = { .count = 0 };
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_read (owner, txn, shard, 3, 16, 1 << 20, s_test_collect, &stale) == AF_OK);
    af_store_abort (owner, &txn);
    assert (stale.count == 1 && stale.seqs [0] == 4);
    assert (af_store_begin (follower, true, &txn) == 0);
    assert (af_store_log_apply (follower, txn, shard, 4, stale.entries [0], stale.sizes [0], &applied, &head)
            == AF_E_FORBIDDEN && !applied);
    af_store_abort (follower, &txn);

    //  In a batch, an aborted child's entries go with it: no gap
    af_store_log_epoch (owner, shard, 6);
    assert (af_store_batch_begin (owner) == 0);
    assert (af_store_begin (owner, true, &txn) == 0);
    memcpy (key, ana, strlen (ana) + 1);
    key [strlen (ana) + 1] = 'v';
    assert (af_store_put (txn, odbi, key, strlen (ana) + 2, "a", 1, 0) == 0);
    af_store_abort (owner, &txn);
    s_test_put (owner, odbi, ana, "v", "b");
    assert (af_store_batch_end (owner) == 0);
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_head (owner, txn, shard, &head, &epoch) == AF_OK && head == 5 && epoch == 6);
    af_store_abort (owner, &txn);

    //  A cursor's delete is logged too
    assert (af_store_begin (owner, true, &txn) == 0);
    MDB_cursor *cursor;
    assert (mdb_cursor_open (txn, odbi, &cursor) == 0);
    MDB_val k = { strlen (ana) + 2, key }, v;
    assert (mdb_cursor_get (cursor, &k, &v, MDB_SET) == 0);
    assert (af_store_cursor_del (cursor) == 0);
    mdb_cursor_close (cursor);
    assert (af_store_log_head (owner, txn, shard, &head, NULL) == AF_OK && head == 6);
    //  Trimming keeps the last entry, so its seq is never given again
    size_t removed;
    assert (af_store_log_trim (owner, txn, shard, 100, &removed) == AF_OK && removed == 5);
    assert (af_store_log_head (owner, txn, shard, &head, NULL) == AF_OK && head == 6);
    assert (af_store_log_epoch_at (owner, txn, shard, 5, &epoch) == AF_OK && epoch == 0);    //  trimmed
    assert (af_store_log_epoch_at (owner, txn, shard, 6, &epoch) == AF_OK && epoch == 6);
    assert (af_store_commit (owner, &txn) == 0);
    s_test_put (owner, odbi, ana, "u", "c");
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_head (owner, txn, shard, &head, NULL) == AF_OK && head == 7);
    af_store_abort (owner, &txn);

    for (size_t i = 0; i < log.count; i++)
        free (log.entries [i]);
    free (stale.entries [0]);
    af_store_destroy (&owner);
    af_store_destroy (&follower);
}

//  A copy of a shard: an owner whose log was trimmed, a follower with
//  stale keys of that shard and keys of another; the copy in small parts,
//  repeats and parts out of order, the follower restarted in the middle;
//  its head stays 0 until the last part, then is the copy's seq, and the
//  log continues from there
static void
s_test_snap (const char *base)
{
    char owner_dir [PATH_MAX], follower_dir [PATH_MAX];
    snprintf (owner_dir, sizeof owner_dir, "%s/snap_owner", base);
    snprintf (follower_dir, sizeof follower_dir, "%s/snap_follower", base);
    af_store_t *owner = af_store_new (owner_dir, 16 << 20, 8, false);
    af_store_t *follower = af_store_new (follower_dir, 16 << 20, 8, false);
    MDB_dbi odbi [2], fdbi [2];
    assert (af_store_dbi (owner, "things", 0, &odbi [0]) == 0 && af_store_dbi (owner, "others", 0, &odbi [1]) == 0);
    assert (af_store_dbi (follower, "things", 0, &fdbi [0]) == 0 && af_store_dbi (follower, "others", 0, &fdbi [1]) == 0);
    assert (af_store_log_enable (owner, 16) == AF_OK && af_store_log_enable (follower, 16) == AF_OK);
    const char *ana, *other;
    s_test_accounts (&ana, &other);
    uint32_t shard = af_shard_of (ana, strlen (ana), 16), other_shard = af_shard_of (other, strlen (other), 16);
    for (uint32_t s = 0; s < 16; s++) {
        af_store_log_own (owner, s, true);
        af_store_log_own (follower, s, true);
        af_store_log_epoch (owner, s, 7);
    }
    //  The owner: 40 keys of ana's shard in each database, one deleted,
    //  one of the other shard; its log trimmed to its last entries
    char rest [16], value [32];
    for (int i = 0; i < 40; i++) {
        snprintf (rest, sizeof rest, "k%02d", i);
        snprintf (value, sizeof value, "value %d of ana", i);
        s_test_put (owner, odbi [0], ana, rest, value);
        s_test_put (owner, odbi [1], ana, rest, "other");
    }
    s_test_put (owner, odbi [0], ana, "k05", NULL);
    s_test_put (owner, odbi [0], other, "z", "3");
    MDB_txn *txn;
    uint64_t head, first;
    assert (af_store_begin (owner, true, &txn) == 0);
    assert (af_store_log_head (owner, txn, shard, &head, NULL) == AF_OK && head == 81);
    assert (af_store_log_trim (owner, txn, shard, 75, NULL) == AF_OK);
    assert (af_store_log_first (owner, txn, shard, &first) == AF_OK && first == 76);
    assert (af_store_commit (owner, &txn) == 0);
    //  The follower: stale keys of ana's shard (one the owner does not
    //  have), its old log, and a key of the other shard, which stays
    s_test_put (follower, fdbi [0], ana, "k01", "stale");
    s_test_put (follower, fdbi [1], ana, "gone", "stale");
    s_test_put (follower, fdbi [0], other, "mine", "kept");

    //  The copy, in parts of about 200 bytes; the owner writes meanwhile
    //  (not in the copy: it is at seq 81)
    af_store_snap_t *snap = af_store_snap_new (owner, shard, 9);
    assert (snap && af_store_snap_seq (snap) == 81);
    s_test_put (owner, odbi [0], ana, "late", "after the copy");
    uint8_t *buffer = (uint8_t *) malloc (AF_MAX_REPL);
    assert (buffer);
    uint32_t part = 0;
    bool done = false;
    af_store_snap_outcome_t outcome;
    size_t records = 0;
    uint64_t pending;
    while (!done) {
        size_t used;
        assert (af_store_snap_next (snap, buffer, AF_MAX_REPL, 200, &used, &done) == AF_OK);
        assert (used > 0 || done);
        if (!used)
            break;
        for (size_t at = 0; at < used; records++) {
            uint32_t length;
            memcpy (&length, buffer + at, 4);
            at += 4 + length;
        }
        assert (af_store_begin (follower, true, &txn) == 0);
        assert (af_store_snap_apply (follower, txn, shard, 81, 9, part, buffer, used, NULL, 0, &outcome) == AF_OK);
        assert (outcome == AF_STORE_SNAP_APPLIED);
        assert (af_store_commit (follower, &txn) == 0);
        //  Half a copy: the shard's head is 0, the copy is pending
        assert (af_store_begin (follower, false, &txn) == 0);
        assert (af_store_log_head (follower, txn, shard, &head, NULL) == AF_OK && head == 0);
        assert (af_store_snap_pending (follower, txn, shard, &pending) == AF_OK && pending == 81);
        af_store_abort (follower, &txn);
        //  A repeat writes nothing; a part ahead, or of another copy, neither
        assert (af_store_begin (follower, true, &txn) == 0);
        assert (af_store_snap_apply (follower, txn, shard, 81, 9, part, buffer, used, NULL, 0, &outcome) == AF_OK);
        assert (outcome == AF_STORE_SNAP_REPEAT);
        assert (af_store_snap_apply (follower, txn, shard, 81, 9, part + 2, buffer, used, NULL, 0, &outcome) == AF_OK);
        assert (outcome == AF_STORE_SNAP_OUT_OF_ORDER);
        assert (af_store_snap_apply (follower, txn, shard, 90, 9, part + 1, buffer, used, NULL, 0, &outcome) == AF_OK);
        assert (outcome == AF_STORE_SNAP_OUT_OF_ORDER);
        //  Not a record of this shard: refused
        assert (af_store_snap_apply (follower, txn, other_shard, 81, 9, 0, buffer, used, NULL, 0, &outcome)
                == AF_E_MALFORMED);
        af_store_abort (follower, &txn);
        part++;
        if (part == 2) {
            //  The follower stops (kill -9 is the same: each part is one
            //  commit) and starts again: the copy goes on from part 2
            af_store_destroy (&follower);
            follower = af_store_new (follower_dir, 16 << 20, 8, false);
            assert (follower && af_store_dbi (follower, "things", 0, &fdbi [0]) == 0
                    && af_store_dbi (follower, "others", 0, &fdbi [1]) == 0
                    && af_store_log_enable (follower, 16) == AF_OK);
            assert (af_store_begin (follower, false, &txn) == 0);
            assert (af_store_snap_pending (follower, txn, shard, &pending) == AF_OK && pending == 81);
            assert (af_store_log_head (follower, txn, shard, &head, NULL) == AF_OK && head == 0);
            af_store_abort (follower, &txn);
        }
    }
    assert (part > 3 && records == 79);
    const void *entry;
    size_t entry_size;
    assert (af_store_snap_entry (snap, &entry, &entry_size) == AF_OK);
    assert (af_store_begin (follower, true, &txn) == 0);
    assert (af_store_snap_apply (follower, txn, shard, 81, 9, part, NULL, 0, entry, entry_size, &outcome) == AF_OK);
    assert (outcome == AF_STORE_SNAP_DONE);
    assert (af_store_commit (follower, &txn) == 0);
    af_store_snap_destroy (&snap);
    assert (snap == NULL);

    //  The follower has the owner's shard as of seq 81, and nothing stale
    uint8_t key [32];
    MDB_val got;
    assert (af_store_begin (follower, false, &txn) == 0);
    assert (af_store_log_head (follower, txn, shard, &head, NULL) == AF_OK && head == 81);
    assert (af_store_log_first (follower, txn, shard, &first) == AF_OK && first == 81);
    assert (af_store_snap_pending (follower, txn, shard, &pending) == AF_OK && pending == 0);
    size_t len = strlen (ana);
    memcpy (key, ana, len + 1);
    memcpy (key + len + 1, "k01", 3);
    assert (af_store_get (txn, fdbi [0], key, len + 4, &got) == 0 && got.mv_size == strlen ("value 1 of ana")
            && memcmp (got.mv_data, "value 1 of ana", got.mv_size) == 0);
    memcpy (key + len + 1, "k05", 3);
    assert (af_store_get (txn, fdbi [0], key, len + 4, &got) == MDB_NOTFOUND);
    memcpy (key + len + 1, "gone", 4);
    assert (af_store_get (txn, fdbi [1], key, len + 5, &got) == MDB_NOTFOUND);
    memcpy (key + len + 1, "late", 4);
    assert (af_store_get (txn, fdbi [0], key, len + 5, &got) == MDB_NOTFOUND);
    memcpy (key + len + 1, "k39", 3);
    assert (af_store_get (txn, fdbi [1], key, len + 4, &got) == 0);
    len = strlen (other);
    memcpy (key, other, len + 1);
    memcpy (key + len + 1, "mine", 4);
    assert (af_store_get (txn, fdbi [0], key, len + 5, &got) == 0);
    af_store_abort (follower, &txn);

    //  ... and the log continues from there
    test_log_t log = { .count = 0 };
    assert (af_store_begin (owner, false, &txn) == 0);
    assert (af_store_log_read (owner, txn, shard, 81, 16, 1 << 20, s_test_collect, &log) == AF_OK);
    af_store_abort (owner, &txn);
    assert (log.count == 1 && log.seqs [0] == 82);
    bool applied;
    assert (af_store_begin (follower, true, &txn) == 0);
    assert (af_store_log_apply (follower, txn, shard, 82, log.entries [0], log.sizes [0], &applied, &head) == AF_OK);
    assert (applied && head == 82);
    assert (af_store_commit (follower, &txn) == 0);
    free (log.entries [0]);

    //  A copy given up (the follower restarted, and the log resumes from
    //  1): the shard is empty, nothing pending; the other shard stays
    snap = af_store_snap_new (owner, shard, 9);
    size_t used;
    assert (snap && af_store_snap_next (snap, buffer, AF_MAX_REPL, 200, &used, &done) == AF_OK && used > 0);
    assert (af_store_begin (follower, true, &txn) == 0);
    assert (af_store_snap_apply (follower, txn, shard, 82, 9, 0, buffer, used, NULL, 0, &outcome) == AF_OK
            && outcome == AF_STORE_SNAP_APPLIED);
    assert (af_store_snap_abandon (follower, txn, shard) == AF_OK);
    assert (af_store_snap_pending (follower, txn, shard, &pending) == AF_OK && pending == 0);
    assert (af_store_log_head (follower, txn, shard, &head, NULL) == AF_OK && head == 0);
    MDB_cursor *cursor;
    assert (mdb_cursor_open (txn, fdbi [0], &cursor) == 0);
    MDB_val k, v;
    size_t left = 0;
    for (int rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT))
        left += af_shard_of_key (k.mv_data, k.mv_size, 16) == shard;
    mdb_cursor_close (cursor);
    assert (left == 0);
    memcpy (key + len + 1, "mine", 4);
    assert (af_store_get (txn, fdbi [0], key, len + 5, &got) == 0);
    assert (af_store_commit (follower, &txn) == 0);
    af_store_snap_destroy (&snap);
    free (buffer);
    af_store_destroy (&owner);
    af_store_destroy (&follower);
}

//  A batch: children's writes seen inside it, a failed one undone alone,
//  nothing left if the batch is dropped, everything once it ends
static void
s_test_batch (af_store_t *store, MDB_dbi things)
{
    MDB_txn *txn = NULL;
    MDB_val value;
    uint64_t writes = af_store_writes (store);
    assert (af_store_batch_begin (store) == 0 && af_store_in_batch (store));
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "c", 1, "cherry", 6, 0) == 0);
    assert (af_store_commit (store, &txn) == 0);
    assert (af_store_writes (store) == writes + 1);
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "d", 1, "date", 4, 0) == 0);
    af_store_abort (store, &txn);
    assert (af_store_begin (store, false, &txn) == 0);
    assert (af_store_get (txn, things, "c", 1, &value) == 0);
    assert (af_store_get (txn, things, "d", 1, &value) == MDB_NOTFOUND);
    af_store_abort (store, &txn);
    //  A read while a write is open in the batch sees that write, and
    //  ending the read leaves the write open
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "f", 1, "fig", 3, 0) == 0);
    MDB_txn *read = NULL;
    assert (af_store_begin (store, false, &read) == 0);
    assert (af_store_get (read, things, "f", 1, &value) == 0 && value.mv_size == 3);
    af_store_abort (store, &read);
    assert (af_store_put (txn, things, "g", 1, "grape", 5, 0) == 0);
    assert (af_store_begin (store, false, &read) == 0);
    assert (af_store_commit (store, &read) == 0);       //  a read "committed": nothing
    assert (af_store_commit (store, &txn) == 0);
    assert (af_store_begin (store, false, &read) == 0);
    assert (af_store_get (read, things, "g", 1, &value) == 0 && value.mv_size == 5);
    af_store_abort (store, &read);
    af_store_batch_abort (store);
    assert (!af_store_in_batch (store));
    assert (af_store_begin (store, false, &txn) == 0);
    assert (af_store_get (txn, things, "c", 1, &value) == MDB_NOTFOUND);
    af_store_abort (store, &txn);
    //  Two writes in a batch are one commit to disk; an empty batch is none
    af_store_stats_t before, after;
    af_store_stats (store, &before);
    assert (before.commits >= 2 && before.batches == 0 && before.failures == 0);
    assert (before.map_bytes == 16 << 20 && before.used_bytes > 0 && before.used_bytes < before.map_bytes);
    assert (af_store_batch_begin (store) == 0);
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "c", 1, "cherry", 6, 0) == 0);
    assert (af_store_commit (store, &txn) == 0);
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "e", 1, "elder", 5, 0) == 0);
    assert (af_store_commit (store, &txn) == 0);
    assert (af_store_batch_end (store) == 0);
    assert (af_store_batch_begin (store) == 0);
    assert (af_store_batch_end (store) == 0);
    af_store_stats (store, &after);
    assert (after.commits == before.commits + 1 && after.writes == before.writes + 2);
    assert (after.batches == 1 && after.batched == 2);
    assert (af_store_begin (store, false, &txn) == 0);
    assert (af_store_get (txn, things, "c", 1, &value) == 0 && value.mv_size == 6);
    af_store_abort (store, &txn);

}

void
af_store_test (bool verbose)
{
    if (verbose)
        printf (" * af_store: ");
    char dir [] = "/tmp/af_store_test_XXXXXX";
    assert (mkdtemp (dir));

    af_store_t *store = af_store_new (dir, 16 << 20, 4, false);
    assert (store);
    MDB_dbi things;
    assert (af_store_dbi (store, "things", 0, &things) == 0);

    //  A committed write is visible; an aborted one is not
    MDB_txn *txn = NULL;
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "a", 1, "apple", 5, 0) == 0);
    assert (af_store_commit (store, &txn) == 0);
    assert (txn == NULL);
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "b", 1, "banana", 6, 0) == 0);
    af_store_abort (store, &txn);
    assert (txn == NULL);
    af_store_abort (store, &txn);          //  idempotent

    assert (af_store_begin (store, false, &txn) == 0);
    MDB_val value;
    assert (af_store_get (txn, things, "a", 1, &value) == 0);
    assert (value.mv_size == 5 && memcmp (value.mv_data, "apple", 5) == 0);
    assert (af_store_get (txn, things, "b", 1, &value) == MDB_NOTFOUND);
    af_store_abort (store, &txn);

    //  NOOVERWRITE reports the existing key
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_put (txn, things, "a", 1, "avocado", 7, MDB_NOOVERWRITE) == MDB_KEYEXIST);
    assert (af_store_del (txn, things, "zz", 2) == MDB_NOTFOUND);
    assert (af_store_commit (store, &txn) == 0);

    s_test_batch (store, things);

    af_store_destroy (&store);
    s_test_log (dir);
    s_test_byref (dir);
    s_test_snap (dir);
    store = af_store_new (dir, 16 << 20, 4, false);
    assert (store && af_store_dbi (store, "things", 0, &things) == 0);

    //  Data survives close and reopen, including read-only
    af_store_destroy (&store);
    assert (store == NULL);
    store = af_store_new (dir, 16 << 20, 4, true);
    assert (store);
    assert (af_store_dbi (store, "things", 0, &things) == 0);
    assert (af_store_begin (store, false, &txn) == 0);
    assert (af_store_get (txn, things, "a", 1, &value) == 0);
    assert (value.mv_size == 5);
    af_store_abort (store, &txn);
    //  A database that does not exist cannot be created read-only
    MDB_dbi missing;
    assert (af_store_dbi (store, "missing", 0, &missing) == MDB_NOTFOUND);
    af_store_destroy (&store);

    //  A directory that cannot be created fails cleanly
    assert (af_store_new ("/proc/af_store_cannot", 0, 0, false) == NULL);

    zdir_t *tree = zdir_new (dir, NULL);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    if (verbose)
        printf ("OK\n");
}
