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

//  Delete the item a cursor is on (mdb_cursor_del), logged like
//  af_store_del. Returns 0 or an LMDB error (logged).
int af_store_cursor_del (MDB_cursor *cursor);

//  --------------------------------------------------------------------------
//  The replication log (cluster mode; docs/ARCHITECTURE.md "Cluster")
//
//  Once enabled, every put and delete made through this class (put, del,
//  cursor_del) in a database opened with af_store_dbi is also appended,
//  in the same transaction, to the log of the shard of its key
//  (af_shard_of_key): so the log and the data never disagree, and no
//  caller can forget. Entries are numbered per shard from 1, without
//  gaps; each is stamped with the shard's current epoch.

#define AF_STORE_MAX_DBS        64              //  database handles we name
#define AF_STORE_LOG_DB         "log"           //  the log's own database
#define AF_STORE_MAX_KEY        511             //  LMDB's key size limit
#define AF_STORE_MAX_ENTRY      (4 << 20)       //  one entry from another broker

//  A flag of af_store_dbi: the log keeps a put in this database by
//  reference (its key, not its value), and the value is read from the
//  database when the entry leaves the store (af_store_log_read,
//  af_store_snap_entry): one that is gone by then leaves as a delete. So
//  large values (a push's user data) are not kept twice for the log's
//  cluster/log_keep entries. For databases whose value at a key never
//  changes while the key exists (a key is put once, or again with the
//  same bytes, and deleted), so that the value read later is the value
//  put. A follower may then lack a key between its put and a delete
//  that came later (when the two reached it in different REPLs): a
//  reader must check that what it reads is whole (af_userdata counts a
//  blob's chunks against its record's size).
#define AF_STORE_BYREF          0x80000000u

//  Log every change from now on, for shards shards. Call once, after the
//  classes opened their databases. AF_OK or AF_E_INTERNAL.
int af_store_log_enable (af_store_t *self, uint32_t shards);

//  The shards the last batch logged changes for (until the next
//  batch_begin; entries of a child that was aborted may still count).
size_t af_store_log_written (af_store_t *self, const uint32_t **shards);

//  Whether this store may change shard (the broker owns it): a change of
//  a shard not owned is refused (logged; the put or delete fails with
//  EACCES), so a broker never writes what another owns. None at first.
void af_store_log_own (af_store_t *self, uint32_t shard, bool owned);

//  The epoch stamped on the entries written for shard from now on.
void af_store_log_epoch (af_store_t *self, uint32_t shard, uint64_t epoch);

//  The last seq of shard in txn (0: none) and, if epoch is not NULL, the
//  epoch of that entry. AF_OK or AF_E_INTERNAL.
int af_store_log_head (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq, uint64_t *epoch);

//  The epoch of shard's entry seq in txn: *epoch 0 if there is none (seq
//  0, trimmed, past the head). Every entry has an epoch of 1 or more (an
//  etcd mod_revision) and one owner per epoch gives each seq once, so two
//  logs whose entries at one seq have the same epoch hold the same entry
//  there, and (each entry applied only after its predecessor was found
//  to agree so) the same entries before it (SPEC 5.37 REPL prevEpoch).
//  AF_OK or AF_E_INTERNAL.
int af_store_log_epoch_at (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, uint64_t *epoch);

//  The epoch an entry (af_store_log_read's, or a REPL's) is stamped with;
//  0 if it is not an entry.
uint64_t af_store_entry_epoch (const void *entry, size_t size);

//  Called for each entry af_store_log_read finds; AF_OK to go on, any
//  other code stops the read and is returned by it.
typedef int (af_store_log_fn) (uint64_t seq, const void *entry, size_t size, void *arg);

//  The entries of shard after seq `after`, in order, at most max_entries
//  and max_bytes (at least one, if there is one). AF_OK, AF_E_INTERNAL or
//  what fn returned.
int af_store_log_read (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t after, size_t max_entries,
                       size_t max_bytes, af_store_log_fn *fn, void *arg);

//  Apply an entry of shard that another broker wrote, as entry seq: if seq
//  is the next one (*applied true), its change and the entry itself are
//  written in txn, unlogged, under the same seq; a repeat or a gap writes
//  nothing (*applied false; *head is the last seq there is, so the caller
//  asks for what follows it). AF_OK; AF_E_MALFORMED (not an entry, a
//  database this store lacks, a key of another shard), AF_E_TOO_BIG,
//  AF_E_FORBIDDEN (stamped with an epoch older than the last entry's),
//  AF_E_INTERNAL: then nothing is written.
int af_store_log_apply (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, const void *entry,
                        size_t size, bool *applied, uint64_t *head);

//  Remove shard's entries up to seq upto, but never its last one.
//  AF_OK or AF_E_INTERNAL; *removed (may be NULL) how many went.
int af_store_log_trim (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t upto, size_t *removed);

//  --------------------------------------------------------------------------
//  Shard snapshots: a copy of one shard for a follower that needs entries
//  the log no longer has (SPEC 5.37 SNAPSHOT; ARCHITECTURE "Cluster")
//
//  The owner's side reads every key of the shard (af_shard_of_key) in
//  every logged database, in one read transaction of its own (not the
//  open batch: the copy is of what is on disk, at one log seq), in
//  parts. The follower's side applies the parts so that it never has a
//  half copy at a head it could ack: part 0 clears the shard (its keys
//  and its log) and records "a copy at seq S, next part 1" in the log
//  database (key 0xFF 0xFF and the shard, 2 bytes BE: no shard's log
//  key), in the transaction that writes the part; the last part writes
//  the owner's log entry S into the log and deletes that record, so the
//  shard's head is 0 until the copy is whole, and S after.

typedef struct _af_store_snap_t af_store_snap_t;

//  Begin a copy of shard, its records stamped with epoch: a read
//  transaction opened now. NULL (logged) if it cannot be opened.
af_store_snap_t *af_store_snap_new (af_store_t *self, uint32_t shard, uint64_t epoch);

//  End a copy (its read transaction). Sets *self_p to NULL.
void af_store_snap_destroy (af_store_snap_t **self_p);

//  The shard's log head the copy is at (0: the shard has no log).
uint64_t af_store_snap_seq (af_store_snap_t *self);

//  The next part's records into buffer (capacity bytes, at least
//  AF_MAX_REPL): each is size (4 bytes LE) and a log entry that puts the
//  key (af_store_log_apply's form), up to max bytes (at least one record
//  if there is one), reading at most AF_CLUSTER_SNAPSHOT_SCAN keys. *used
//  the bytes written (0 is possible before the end); *done once every
//  key has been read. AF_OK; AF_E_TOO_BIG (one record over capacity);
//  AF_E_INTERNAL.
int af_store_snap_next (af_store_snap_t *self, uint8_t *buffer, size_t capacity, size_t max, size_t *used,
                        bool *done);

//  The log entry at the copy's seq (valid until destroy). AF_OK or
//  AF_E_INTERNAL (there is none).
int af_store_snap_entry (af_store_snap_t *self, const void **entry, size_t *size);

//  What af_store_snap_apply did with a part
typedef enum {
    AF_STORE_SNAP_APPLIED,          //  written; more parts to come
    AF_STORE_SNAP_REPEAT,           //  this part is on disk already: nothing written
    AF_STORE_SNAP_DONE,             //  the last part: the shard's head is seq now
    AF_STORE_SNAP_OUT_OF_ORDER      //  not the next part of the copy we have: nothing written
} af_store_snap_outcome_t;

//  Apply part `part` of a copy of shard at seq, epoch, in txn: its
//  records (af_store_snap_next's form), and if entry is not NULL (the last
//  part) the log entry at seq. Part 0 first deletes every key of the
//  shard in every logged database and its log. AF_OK (*outcome says);
//  AF_E_MALFORMED (a record not a put of this shard in a database we
//  have, seq 0): then abort txn; AF_E_INTERNAL.
int af_store_snap_apply (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t seq, uint64_t epoch,
                         uint32_t part, const void *records, size_t size, const void *entry, size_t entry_size,
                         af_store_snap_outcome_t *outcome);

//  The seq of the copy of shard in progress in txn (0: none). AF_OK or
//  AF_E_INTERNAL.
int af_store_snap_pending (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq);

//  Give up an unfinished copy of shard in txn: its keys, its log and the
//  record go (the log resumes from seq 1 on it). AF_OK or AF_E_INTERNAL.
int af_store_snap_abandon (af_store_t *self, MDB_txn *txn, uint32_t shard);

//  The first seq of shard's log in txn (0: none). AF_OK or AF_E_INTERNAL.
int af_store_log_first (af_store_t *self, MDB_txn *txn, uint32_t shard, uint64_t *seq);

//  The error contract of the classes built on this one: an LMDB code (0,
//  or an error af_store has already logged with its context) mapped to
//  ours, AF_OK or AF_E_INTERNAL. MDB_NOTFOUND is the caller's to handle
//  before it maps (it is an answer, not a failure).
int af_store_code (int rc);

//  Self test
void af_store_test (bool verbose);

#endif
