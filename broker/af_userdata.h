/*  =========================================================================
    af_userdata - a push's user data, kept in the store (S2.8, SPEC 5.27)

    With `push --with-data` a node UPLOADs its app's data (a tar) before
    the PUSH that names it. The broker keeps it here, in the store, not in
    files beside it: so in a cluster it is in the shard's replication log
    like everything else of the account, on the in-sync followers before
    the upload is acknowledged, in every copy a new follower starts from,
    and on whichever broker owns the shard after a failover or a move.

    An upload writes each chunk as it arrives, under an upload ID of its
    own (random, 128 bits), and the blob's record (its hash, size and that
    ID) once the last chunk is in and the whole hash checked. So a key of
    data_chunks is written once and never changes, which lets the log keep
    it by reference (AF_STORE_BYREF): a 256 MiB blob is not kept a second
    time in the log. Two uploads of one hash by one account never write
    each other's chunks; the second to finish drops its own. A reader
    (af_userdata_size, af_userdata_read) trusts a record only if its
    chunks are all there, one after the other, adding up to its size.

    A blob belongs to the account that uploaded it: every key starts with
    the account, so only its pushes may name it and only its devices fetch
    it. Uploads nobody is sending any more (the connection went, the broker
    restarted, the shard moved) and blobs no push named within the grace
    are removed by af_userdata_sweep.

    Every function returns AF_OK or an AF_E_* code; a store failure is
    logged here and returned as AF_E_INTERNAL.

    Named databases (in the broker's store):
      data_blobs    key: account, 0x00, hash (32 bytes)
                    value: size (8 bytes LE), upload ID (16), stored at
                    (8 bytes LE, ms)
      data_uploads  key: account, 0x00, upload ID (16 bytes)
                    value: started at (8 bytes LE, ms), hash (32), size
                    (8 bytes LE): an upload not finished
      data_chunks   key: account, 0x00, upload ID (16), offset (8 bytes BE)
                    value: the raw bytes at offset (at most AF_MAX_CHUNK);
                    logged by reference
    =========================================================================
*/
#ifndef AF_USERDATA_H_INCLUDED
#define AF_USERDATA_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_limits.h"
#include "af_store.h"

typedef struct _af_userdata_t af_userdata_t;

//  Open the tables in an open, writable store. NULL on failure (logged).
af_userdata_t *af_userdata_new (af_store_t *store);

//  Close. Sets *self_p to NULL.
void af_userdata_destroy (af_userdata_t **self_p);

//  Begin an upload of the blob hash (64 lowercase hex) of total bytes
//  (1 to AF_MAX_DATA) for account, at now (ms): *id (AF_ID_SIZE bytes)
//  is its new ID. AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_userdata_begin (af_userdata_t *self, const char *account, const char *hash, uint64_t total,
                       uint64_t now, uint8_t *id);

//  Keep size bytes (1 to AF_MAX_CHUNK) at offset of upload id: checked
//  already (af_download). AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_userdata_chunk (af_userdata_t *self, const char *account, const uint8_t *id, uint64_t offset,
                       const void *data, size_t size);

//  The last chunk of upload id is in and the hash checked: record the
//  blob, at now (ms), unless the account has it already (then this
//  upload's chunks go). AF_OK; AF_E_INTERNAL (a chunk is missing, the
//  store failed: the upload is dropped, the node may send it again).
int af_userdata_finish (af_userdata_t *self, const char *account, const uint8_t *id, uint64_t now);

//  Drop an upload that will not finish: its chunks and its record.
//  AF_OK (none is no error), AF_E_INTERNAL.
int af_userdata_abandon (af_userdata_t *self, const char *account, const uint8_t *id);

//  The size of account's blob hash, if it has it whole. AF_OK,
//  AF_E_NO_BLOB, AF_E_MALFORMED (not a hash), AF_E_INTERNAL.
int af_userdata_size (af_userdata_t *self, const char *account, const char *hash, uint64_t *size);

//  Up to want bytes of account's blob hash from offset into buffer: *got
//  of them (fewer only at its end), *total its size. AF_OK, AF_E_NO_BLOB
//  (no such blob, or not whole), AF_E_MALFORMED (offset past the end, not
//  a hash), AF_E_INTERNAL.
int af_userdata_read (af_userdata_t *self, const char *account, const char *hash, uint64_t offset,
                      uint8_t *buffer, size_t want, size_t *got, uint64_t *total);

//  Remove account's blob hash (no push needs it now). AF_OK (none is no
//  error), AF_E_MALFORMED, AF_E_INTERNAL.
int af_userdata_remove (af_userdata_t *self, const char *account, const char *hash);

//  What account holds: blobs and uploads in progress, and their bytes
//  (an upload counts with the size it announced). AF_OK, AF_E_INTERNAL.
int af_userdata_usage (af_userdata_t *self, const char *account, size_t *count, uint64_t *bytes);

//  The sweep's questions to its caller: whether account's keys are ours
//  to write (a cluster member's shards); whether upload id is still being
//  sent to us; whether a push still names blob hash (64 hex)
typedef struct {
    bool (*ours) (void *arg, const char *account);
    bool (*live) (void *arg, const char *account, const uint8_t *id);
    bool (*used) (void *arg, const char *account, const char *hash);
    void *arg;
} af_userdata_sweep_t;

//  Blobs, uploads not finished and chunks in the store (every account
//  and shard it holds), counted without a walk.
void af_userdata_counts (af_userdata_t *self, size_t *blobs, size_t *uploads, size_t *chunks);

//  Remove what nobody will use, of the accounts that are ours: uploads
//  not live, and blobs stored more than grace ms before now that no push
//  names; at most max of them (the rest next time). *removed (may be
//  NULL) how many went. AF_OK, AF_E_INTERNAL.
int af_userdata_sweep (af_userdata_t *self, uint64_t now, uint64_t grace, const af_userdata_sweep_t *ask,
                       size_t max, size_t *removed);

//  Keep the file at path as account's blob hash, at now (ms), if its
//  bytes have that hash (a broker from before user data lived in the
//  store). AF_OK (kept, or the account has it), AF_E_MALFORMED (not that
//  hash, too large), AF_E_INTERNAL.
int af_userdata_import (af_userdata_t *self, const char *account, const char *hash, const char *path,
                        uint64_t now);

//  Self test
void af_userdata_test (bool verbose);

#endif
