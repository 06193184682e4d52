/*  =========================================================================
    af_store - a small, strict layer over one LMDB environment

    Every piece of durable state in appferry lives in an LMDB environment:
    the broker's accounts and devices, the matcher's catalog. This class
    opens an environment in a directory (creating it), opens named
    databases, and wraps transactions so that every return code is checked
    and logged. The rule for callers: one write transaction per logical
    change, so a crash (even kill -9) leaves the old state or the new one,
    never half of it. Key layouts are documented in docs/ARCHITECTURE.md.

    Values are opaque bytes here; callers encode them (msgpack or packed
    little-endian records) and decode them with bounds.
    =========================================================================
*/
#ifndef AF_STORE_H_INCLUDED
#define AF_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <lmdb.h>
#include "af_limits.h"

typedef struct _af_store_t af_store_t;

//  Open (creating if needed, unless readonly) the environment in dir.
//  mapsize is the maximum size in bytes (sparse; 0 means 1 GiB). maxdbs
//  bounds the named databases. Returns NULL and logs why on failure.
af_store_t *af_store_new (const char *dir, size_t mapsize, unsigned maxdbs, bool readonly);

//  Close the environment. Sets *self_p to NULL.
void af_store_destroy (af_store_t **self_p);

//  The LMDB environment, for callers that need it directly.
MDB_env *af_store_env (af_store_t *self);

//  Open a named database, creating it when the store is writable. Call at
//  start-up, before other transactions. Returns 0 or an LMDB error code.
int af_store_dbi (af_store_t *self, const char *name, unsigned flags, MDB_dbi *dbi);

//  Begin a transaction. Returns 0 or an LMDB error (logged).
int af_store_begin (af_store_t *self, bool write, MDB_txn **txn_p);

//  Commit a write transaction and clear *txn_p (end a read one with
//  af_store_abort). Returns 0 or an LMDB error
//  (logged); on error the transaction is gone and nothing was written. In
//  a batch the changes are durable only when the batch ends.
int af_store_commit (af_store_t *self, MDB_txn **txn_p);

//  Abort a transaction if *txn_p is not NULL, and clear it.
void af_store_abort (af_store_t *self, MDB_txn **txn_p);

//  Group commit. Between batch_begin and batch_end every write transaction
//  begun is a child of one batch transaction: its commit merges into the
//  batch, its abort undoes only its own changes, and a read transaction is
//  the batch itself (so it sees the batch's changes). batch_end commits
//  the batch with one fsync: then, and only then, are its changes durable.
//  Single-threaded use only (the broker's reactor). Both return 0 or an
//  LMDB error (logged); a failed batch_end leaves nothing of the batch.
int af_store_batch_begin (af_store_t *self);
int af_store_batch_end (af_store_t *self);

//  Drop an open batch: nothing of it is written.
void af_store_batch_abort (af_store_t *self);

//  True while a batch is open.
bool af_store_in_batch (af_store_t *self);

//  Write transactions committed so far (children of batches included): a
//  caller compares two readings to tell whether some code wrote.
uint64_t af_store_writes (af_store_t *self);

//  What the store did since it opened, and how full it is
typedef struct {
    uint64_t writes;                //  write transactions committed (children of batches too)
    uint64_t commits;               //  commits that reached the disk (one fsync each)
    uint64_t failures;              //  commits that did not
    uint64_t commit_us;             //  time spent in those commits, microseconds
    uint64_t batches;               //  batches committed with changes in them
    uint64_t batched;               //  write transactions those batches carried
    uint64_t map_bytes;             //  the map size (the store's limit)
    uint64_t used_bytes;            //  pages in use up to the highest one, in bytes
} af_store_stats_t;

void af_store_stats (af_store_t *self, af_store_stats_t *stats);

//  Get a value. Returns 0 (found), MDB_NOTFOUND, or another LMDB error.
int af_store_get (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen, MDB_val *value);

//  Put a value. Returns 0 or an LMDB error (logged).
int af_store_put (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen,
                  const void *data, size_t size, unsigned flags);

//  Delete a key. Returns 0, MDB_NOTFOUND, or an LMDB error.
int af_store_del (MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen);

//  The error contract of the classes built on this one: an LMDB code (0,
//  or an error af_store has already logged with its context) mapped to
//  ours, AF_OK or AF_E_INTERNAL. MDB_NOTFOUND is the caller's to handle
//  before it maps (it is an answer, not a failure).
int af_store_code (int rc);

//  Self test
void af_store_test (bool verbose);

#endif
