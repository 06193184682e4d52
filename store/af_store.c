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

struct _af_store_t {
    MDB_env *env;
    bool readonly;
    char *dir;
    MDB_txn *batch;                 //  the open batch's write transaction, or NULL
    MDB_txn *child;                 //  the batch's open child (a write), or NULL
    unsigned lent;                  //  reads lent the child while it is open
    uint64_t batch_from;            //  writes when the open batch began
    af_store_stats_t stats;         //  what af_store_stats reports
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
        rc = mdb_env_open (self->env, dir, readonly? MDB_RDONLY: 0, 0600);
    if (rc) {
        zsys_error ("store: cannot open %s: %s", dir, mdb_strerror (rc));
        af_store_destroy (&self);
        return NULL;
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
    rc = mdb_dbi_open (txn, name, flags | (self->readonly? 0: MDB_CREATE), dbi);
    if (rc) {
        zsys_error ("store: cannot open database '%s' in %s: %s", name, self->dir, mdb_strerror (rc));
        af_store_abort (self, &txn);
        return rc;
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
    int rc = s_commit_durable (self, batch);
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

int
af_store_put (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen,
              const void *data, size_t size, unsigned flags)
{
    MDB_val k = { keylen, (void *) key };
    MDB_val v = { size, (void *) data };
    int rc = mdb_put (txn, dbi, &k, &v, flags);
    if (rc && rc != MDB_KEYEXIST)
        zsys_error ("store: put failed: %s", mdb_strerror (rc));
    return rc;
}

int
af_store_del (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen)
{
    MDB_val k = { keylen, (void *) key };
    int rc = mdb_del (txn, dbi, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        zsys_error ("store: del failed: %s", mdb_strerror (rc));
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

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

    //  A batch: children's writes seen inside it, a failed one undone alone,
    //  nothing left if the batch is dropped, everything once it ends
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

    char path [256];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/lock.mdb", dir);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
