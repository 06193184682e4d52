/*  =========================================================================
    af_userdata - a push's user data, kept in the store

    See af_userdata.h for the guarantees and the key layout.
    =========================================================================
*/
#include "af_userdata.h"
#include "af_bytes.h"

#include <czmq.h>
#include <errno.h>
#include <sodium.h>
#include <sys/stat.h>

#define BLOB_KEY    (AF_MAX_ACCOUNT + 1 + AF_HASH_SIZE)
#define UPLOAD_KEY  (AF_MAX_ACCOUNT + 1 + AF_ID_SIZE)
#define CHUNK_KEY   (UPLOAD_KEY + 8)
#define BLOB_VALUE  (8 + AF_ID_SIZE + 8)
#define UPLOAD_VALUE (8 + AF_HASH_SIZE + 8)

struct _af_userdata_t {
    af_store_t *store;
    MDB_dbi blobs;
    MDB_dbi uploads;
    MDB_dbi chunks;
};

af_userdata_t *
af_userdata_new (af_store_t *store)
{
    af_userdata_t *self = (af_userdata_t *) zmalloc (sizeof (af_userdata_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "data_blobs", 0, &self->blobs)
    ||  af_store_dbi (store, "data_uploads", 0, &self->uploads)
    ||  af_store_dbi (store, "data_chunks", AF_STORE_BYREF, &self->chunks)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_userdata_destroy (af_userdata_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  account, 0x00: its length, or 0 for a bad account
static size_t
s_prefix (uint8_t *key, const char *account)
{
    size_t alen = account? strlen (account): 0;
    if (alen == 0 || alen > AF_MAX_ACCOUNT)
        return 0;
    memcpy (key, account, alen + 1);
    return alen + 1;
}

//  account, 0x00, hash (binary): its length, or 0 for bad arguments
static size_t
s_blob_key (uint8_t *key, const char *account, const char *hash)
{
    size_t len = s_prefix (key, account);
    if (!len || !hash || af_hash_from_hex (hash, key + len) != AF_OK)
        return 0;
    return len + AF_HASH_SIZE;
}

static size_t
s_upload_key (uint8_t *key, const char *account, const uint8_t *id)
{
    size_t len = s_prefix (key, account);
    if (!len)
        return 0;
    memcpy (key + len, id, AF_ID_SIZE);
    return len + AF_ID_SIZE;
}

//  Delete every chunk of upload id (key: its upload key), in txn
static int
s_chunks_drop (af_userdata_t *self, MDB_txn *txn, const uint8_t *upload, size_t len)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->chunks, &cursor);
    while (rc == 0) {
        MDB_val key = { len, (void *) upload }, value;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        if (rc || key.mv_size != len + 8 || memcmp (key.mv_data, upload, len))
            break;
        rc = af_store_cursor_del (cursor);
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        mdb_cursor_close (cursor);
        return 0;
    }
    if (cursor)
        mdb_cursor_close (cursor);
    return rc;
}

//  Whether the chunks of upload id (key: its upload key) are all there,
//  one after the other from 0, adding up to size. 0 or an LMDB error
static int
s_whole (af_userdata_t *self, MDB_txn *txn, const uint8_t *upload, size_t len, uint64_t size, bool *whole)
{
    *whole = false;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->chunks, &cursor);
    if (rc)
        return rc;
    MDB_val key = { len, (void *) upload }, value;
    uint64_t at = 0;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == len + 8 && memcmp (key.mv_data, upload, len) == 0) {
        if (af_get_be64 ((const uint8_t *) key.mv_data + len) != at || value.mv_size == 0)
            break;                      //  a gap, or a repeat
        at += value.mv_size;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    *whole = at == size;
    return 0;
}

//  The record of account's blob (key given): size and upload ID
static int
s_record (af_userdata_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t *size, uint8_t *id)
{
    MDB_val value;
    int rc = af_store_get (txn, self->blobs, key, keylen, &value);
    if (rc == 0 && value.mv_size != BLOB_VALUE)
        rc = MDB_CORRUPTED;
    if (rc == 0) {
        *size = af_get_le64 ((const uint8_t *) value.mv_data);
        memcpy (id, (const uint8_t *) value.mv_data + 8, AF_ID_SIZE);
    }
    return rc;
}

int
af_userdata_begin (af_userdata_t *self, const char *account, const char *hash, uint64_t total,
                   uint64_t now, uint8_t *id)
{
    assert (self && id);
    uint8_t key [UPLOAD_KEY], blob [BLOB_KEY];
    if (!s_blob_key (blob, account, hash) || total == 0 || total > AF_MAX_DATA)
        return AF_E_MALFORMED;
    randombytes_buf (id, AF_ID_SIZE);
    size_t keylen = s_upload_key (key, account, id);
    uint8_t value [UPLOAD_VALUE];
    af_put_le64 (value, now);
    memcpy (value + 8, blob + strlen (account) + 1, AF_HASH_SIZE);
    af_put_le64 (value + 8 + AF_HASH_SIZE, total);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = af_store_put (txn, self->uploads, key, keylen, value, sizeof value, 0);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

int
af_userdata_chunk (af_userdata_t *self, const char *account, const uint8_t *id, uint64_t offset,
                   const void *data, size_t size)
{
    assert (self && id);
    uint8_t key [CHUNK_KEY];
    size_t keylen = s_upload_key (key, account, id);
    if (!keylen || size == 0 || size > AF_MAX_CHUNK || offset >= AF_MAX_DATA)
        return AF_E_MALFORMED;
    af_put_be64 (key + keylen, offset);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = af_store_put (txn, self->chunks, key, keylen + 8, data, size, 0);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

int
af_userdata_finish (af_userdata_t *self, const char *account, const uint8_t *id, uint64_t now)
{
    assert (self && id);
    uint8_t key [UPLOAD_KEY];
    size_t keylen = s_upload_key (key, account, id);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    MDB_val value;
    if (rc == 0)
        rc = af_store_get (txn, self->uploads, key, keylen, &value);
    if (rc == 0 && value.mv_size != UPLOAD_VALUE)
        rc = MDB_CORRUPTED;
    uint8_t blob [BLOB_KEY], record [BLOB_VALUE];
    size_t bloblen = 0;
    uint64_t total = 0;
    if (rc == 0) {
        total = af_get_le64 ((const uint8_t *) value.mv_data + 8 + AF_HASH_SIZE);
        bloblen = s_prefix (blob, account);
        memcpy (blob + bloblen, (const uint8_t *) value.mv_data + 8, AF_HASH_SIZE);
        bloblen += AF_HASH_SIZE;
    }
    bool whole = false;
    if (rc == 0)
        rc = s_whole (self, txn, key, keylen, total, &whole);
    MDB_val have;
    int found = rc? rc: af_store_get (txn, self->blobs, blob, bloblen, &have);
    if (rc == 0 && found && found != MDB_NOTFOUND)
        rc = found;
    if (rc == 0 && whole && found == MDB_NOTFOUND) {
        af_put_le64 (record, total);
        memcpy (record + 8, id, AF_ID_SIZE);
        af_put_le64 (record + 8 + AF_ID_SIZE, now);
        rc = af_store_put (txn, self->blobs, blob, bloblen, record, sizeof record, 0);
    }
    else
    if (rc == 0)
        rc = s_chunks_drop (self, txn, key, keylen);    //  not whole, or the account has it: ours go
    if (rc == 0)
        rc = af_store_del (txn, self->uploads, key, keylen);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    if (rc == 0 && !whole) {
        zsys_error ("userdata: an upload of '%s' finished with chunks missing: dropped", account);
        return AF_E_INTERNAL;
    }
    if (rc == MDB_NOTFOUND) {
        zsys_error ("userdata: no upload of '%s' to finish", account);
        return AF_E_INTERNAL;
    }
    return af_store_code (rc);
}

int
af_userdata_abandon (af_userdata_t *self, const char *account, const uint8_t *id)
{
    assert (self && id);
    uint8_t key [UPLOAD_KEY];
    size_t keylen = s_upload_key (key, account, id);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = s_chunks_drop (self, txn, key, keylen);
    if (rc == 0) {
        rc = af_store_del (txn, self->uploads, key, keylen);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

//  A read transaction (*txn_p) and the record of account's blob hash:
//  AF_OK with the transaction open, else AF_E_MALFORMED, AF_E_NO_BLOB or
//  AF_E_INTERNAL with none
static int
s_reading (af_userdata_t *self, const char *account, const char *hash, MDB_txn **txn_p, uint64_t *size,
           uint8_t *id)
{
    uint8_t blob [BLOB_KEY];
    size_t bloblen = s_blob_key (blob, account, hash);
    if (!bloblen)
        return AF_E_MALFORMED;
    int rc = af_store_begin (self->store, false, txn_p);
    if (rc == 0)
        rc = s_record (self, *txn_p, blob, bloblen, size, id);
    if (rc)
        af_store_abort (self->store, txn_p);
    return rc == MDB_NOTFOUND? AF_E_NO_BLOB: af_store_code (rc);
}

int
af_userdata_size (af_userdata_t *self, const char *account, const char *hash, uint64_t *size)
{
    assert (self && size);
    uint8_t id [AF_ID_SIZE] = { 0 }, upload [UPLOAD_KEY];
    MDB_txn *txn = NULL;
    int code = s_reading (self, account, hash, &txn, size, id);
    if (code != AF_OK)
        return code;
    bool whole = false;
    int rc = s_whole (self, txn, upload, s_upload_key (upload, account, id), *size, &whole);
    af_store_abort (self->store, &txn);
    return rc == 0 && !whole? AF_E_NO_BLOB: af_store_code (rc);
}

int
af_userdata_read (af_userdata_t *self, const char *account, const char *hash, uint64_t offset,
                  uint8_t *buffer, size_t want, size_t *got, uint64_t *total)
{
    assert (self && buffer && got && total);
    *got = 0;
    uint8_t id [AF_ID_SIZE], key [CHUNK_KEY];
    MDB_txn *txn = NULL;
    int code = s_reading (self, account, hash, &txn, total, id);
    if (code != AF_OK)
        return code;
    if (offset > *total) {
        af_store_abort (self->store, &txn);
        return AF_E_MALFORMED;
    }
    if (want > *total - offset)
        want = (size_t) (*total - offset);
    size_t len = s_upload_key (key, account, id);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->chunks, &cursor);
    //  The chunk holding offset: the last that starts at or before it
    af_put_be64 (key + len, offset);
    MDB_val k = { len + 8, key }, v;
    if (rc == 0 && want) {
        rc = mdb_cursor_get (cursor, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && (k.mv_size != len + 8 || memcmp (k.mv_data, key, len)
                    ||  af_get_be64 ((const uint8_t *) k.mv_data + len) > offset))
            rc = mdb_cursor_get (cursor, &k, &v, MDB_PREV);
        else
        if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get (cursor, &k, &v, MDB_LAST);
    }
    uint64_t at = offset;
    while (rc == 0 && *got < want) {
        uint64_t start = k.mv_size == len + 8 && memcmp (k.mv_data, key, len) == 0?
                         af_get_be64 ((const uint8_t *) k.mv_data + len): UINT64_MAX;
        if (start > at || start + v.mv_size <= at) {
            rc = MDB_NOTFOUND;          //  a gap: not whole
            break;
        }
        size_t from = (size_t) (at - start), n = v.mv_size - from;
        if (n > want - *got)
            n = want - *got;
        memcpy (buffer + *got, (const uint8_t *) v.mv_data + from, n);
        *got += n;
        at += n;
        if (*got < want)
            rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    if (cursor)
        mdb_cursor_close (cursor);
    af_store_abort (self->store, &txn);
    if (rc == MDB_NOTFOUND) {
        zsys_warning ("userdata: blob %.16s... of '%s' is not whole at %llu", hash, account,
                      (unsigned long long) at);
        *got = 0;
        return AF_E_NO_BLOB;
    }
    return af_store_code (rc);
}

int
af_userdata_remove (af_userdata_t *self, const char *account, const char *hash)
{
    assert (self);
    uint8_t blob [BLOB_KEY], id [AF_ID_SIZE], upload [UPLOAD_KEY];
    size_t bloblen = s_blob_key (blob, account, hash);
    if (!bloblen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    uint64_t size;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = s_record (self, txn, blob, bloblen, &size, id);
    if (rc == 0)
        rc = af_store_del (txn, self->blobs, blob, bloblen);
    if (rc == 0)
        rc = s_chunks_drop (self, txn, upload, s_upload_key (upload, account, id));
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return rc == MDB_NOTFOUND? AF_OK: af_store_code (rc);
}

int
af_userdata_usage (af_userdata_t *self, const char *account, size_t *count, uint64_t *bytes)
{
    assert (self && count && bytes);
    *count = 0;
    *bytes = 0;
    uint8_t prefix [UPLOAD_KEY];
    size_t plen = s_prefix (prefix, account);
    if (!plen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    for (int table = 0; rc == 0 && table < 2; table++) {
        MDB_cursor *cursor;
        rc = mdb_cursor_open (txn, table? self->uploads: self->blobs, &cursor);
        if (rc)
            break;
        MDB_val key = { plen, prefix }, value;
        size_t size_at = table? 8 + AF_HASH_SIZE: 0;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            if (value.mv_size >= size_at + 8) {
                (*count)++;
                *bytes += af_get_le64 ((const uint8_t *) value.mv_data + size_at);
            }
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

void
af_userdata_counts (af_userdata_t *self, size_t *blobs, size_t *uploads, size_t *chunks)
{
    assert (self && blobs && uploads && chunks);
    *blobs = *uploads = *chunks = 0;
    MDB_txn *txn = NULL;
    MDB_stat stat;
    if (af_store_begin (self->store, false, &txn))
        return;
    if (mdb_stat (txn, self->blobs, &stat) == 0)
        *blobs = stat.ms_entries;
    if (mdb_stat (txn, self->uploads, &stat) == 0)
        *uploads = stat.ms_entries;
    if (mdb_stat (txn, self->chunks, &stat) == 0)
        *chunks = stat.ms_entries;
    af_store_abort (self->store, &txn);
}

//  A key the sweep will remove: a blob's (hash) or an upload's (ID)
typedef struct {
    char account [AF_MAX_ACCOUNT + 1];
    bool blob;
    uint8_t id [AF_HASH_SIZE];
} doomed_t;

int
af_userdata_sweep (af_userdata_t *self, uint64_t now, uint64_t grace, const af_userdata_sweep_t *ask,
                   size_t max, size_t *removed)
{
    assert (self && ask && ask->ours && ask->live && ask->used);
    if (removed)
        *removed = 0;
    doomed_t *doomed = (doomed_t *) calloc (max? max: 1, sizeof (doomed_t));
    assert (doomed);
    size_t count = 0;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    for (int table = 0; rc == 0 && table < 2 && count < max; table++) {
        MDB_cursor *cursor;
        rc = mdb_cursor_open (txn, table? self->blobs: self->uploads, &cursor);
        if (rc)
            break;
        MDB_val key, value;
        size_t idlen = table? AF_HASH_SIZE: AF_ID_SIZE;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        while (rc == 0 && count < max) {
            const uint8_t *bytes = (const uint8_t *) key.mv_data;
            const uint8_t *nul = (const uint8_t *) memchr (bytes, 0, key.mv_size);
            size_t alen = nul? (size_t) (nul - bytes): 0;
            doomed_t *one = &doomed [count];
            if (alen && alen <= AF_MAX_ACCOUNT && key.mv_size == alen + 1 + idlen) {
                memcpy (one->account, bytes, alen);
                one->account [alen] = 0;
                one->blob = table == 1;
                memcpy (one->id, nul + 1, idlen);
                bool gone = false;
                if (!one->blob)
                    gone = ask->ours (ask->arg, one->account) && !ask->live (ask->arg, one->account, one->id);
                else
                if (value.mv_size == BLOB_VALUE
                &&  now - af_get_le64 ((const uint8_t *) value.mv_data + 8 + AF_ID_SIZE) >= grace
                &&  ask->ours (ask->arg, one->account)) {
                    char hex [AF_HASH_HEX + 1];
                    sodium_bin2hex (hex, sizeof hex, one->id, AF_HASH_SIZE);
                    gone = !ask->used (ask->arg, one->account, hex);
                }
                count += gone;
            }
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    af_store_abort (self->store, &txn);
    int code = af_store_code (rc);
    for (size_t i = 0; code == AF_OK && i < count; i++) {
        doomed_t *one = &doomed [i];
        if (one->blob) {
            char hex [AF_HASH_HEX + 1];
            sodium_bin2hex (hex, sizeof hex, one->id, AF_HASH_SIZE);
            zsys_info ("userdata: user data %.16s... of '%s' was never pushed; removing it", hex, one->account);
            code = af_userdata_remove (self, one->account, hex);
        }
        else
            code = af_userdata_abandon (self, one->account, one->id);
        if (code == AF_OK && removed)
            (*removed)++;
    }
    free (doomed);
    return code;
}

int
af_userdata_import (af_userdata_t *self, const char *account, const char *hash, const char *path,
                    uint64_t now)
{
    assert (self && path);
    uint64_t size;
    int code = af_userdata_size (self, account, hash, &size);
    if (code != AF_E_NO_BLOB)
        return code;                    //  it has it, or a bad argument
    FILE *file = fopen (path, "rb");
    if (!file) {
        zsys_error ("userdata: cannot read %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    uint8_t *buffer = (uint8_t *) malloc (AF_MAX_CHUNK);
    assert (buffer);
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, AF_HASH_SIZE);
    uint8_t id [AF_ID_SIZE];
    struct stat st;
    bool fits = fstat (fileno (file), &st) == 0 && st.st_size > 0 && st.st_size <= AF_MAX_DATA;
    code = fits? af_userdata_begin (self, account, hash, (uint64_t) st.st_size, now, id): AF_E_MALFORMED;
    uint64_t at = 0;
    size_t n;
    while (code == AF_OK && (n = fread (buffer, 1, AF_MAX_CHUNK, file)) > 0) {
        crypto_generichash_update (&state, buffer, n);
        code = af_userdata_chunk (self, account, id, at, buffer, n);
        at += n;
    }
    if (code == AF_OK && (ferror (file) || at != (uint64_t) st.st_size))
        code = AF_E_INTERNAL;
    uint8_t digest [AF_HASH_SIZE];
    char hex [AF_HASH_HEX + 1];
    crypto_generichash_final (&state, digest, sizeof digest);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    if (code == AF_OK && !streq (hex, hash))
        code = AF_E_MALFORMED;
    if (code == AF_OK)
        code = af_userdata_finish (self, account, id, now);
    else
    if (fits)
        af_userdata_abandon (self, account, id);
    free (buffer);
    fclose (file);
    return code;
}

//  --------------------------------------------------------------------------
//  Self test

static bool
s_test_ours (void *arg, const char *account)
{
    (void) arg;
    return !streq (account, "theirs");
}

static bool
s_test_live (void *arg, const char *account, const uint8_t *id)
{
    (void) account;
    return memcmp (id, (const uint8_t *) arg, AF_ID_SIZE) == 0;
}

static bool
s_test_used (void *arg, const char *account, const char *hash)
{
    (void) arg;
    (void) hash;
    return streq (account, "bob");
}

void
af_userdata_test (bool verbose)
{
    if (verbose)
        printf (" * af_userdata: ");
    char dir [] = "/tmp/af_userdata_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 64 << 20, 8, false);
    assert (store);
    af_userdata_t *data = af_userdata_new (store);
    assert (data);
    //  A blob of two and a half chunks, in the chunks a node would send
    size_t total = 2 * AF_MAX_CHUNK + AF_MAX_CHUNK / 2;
    uint8_t *bytes = (uint8_t *) malloc (total), *back = (uint8_t *) malloc (total);
    randombytes_buf (bytes, total);
    uint8_t digest [AF_HASH_SIZE];
    char hash [AF_HASH_HEX + 1];
    crypto_generichash (digest, sizeof digest, bytes, total, NULL, 0);
    sodium_bin2hex (hash, sizeof hash, digest, sizeof digest);
    uint8_t id [AF_ID_SIZE], other [AF_ID_SIZE];
    uint64_t size;
    size_t got, count;
    assert (af_userdata_begin (data, "ana", hash, total, 1000, id) == AF_OK);
    assert (af_userdata_begin (data, "ana", "not a hash", total, 1000, other) == AF_E_MALFORMED);
    assert (af_userdata_begin (data, "ana", hash, AF_MAX_DATA + 1ULL, 1000, other) == AF_E_MALFORMED);
    //  An upload in progress counts, with the size it announced
    assert (af_userdata_usage (data, "ana", &count, &size) == AF_OK && count == 1 && size == total);
    for (size_t at = 0; at < total; at += AF_MAX_CHUNK)
        assert (af_userdata_chunk (data, "ana", id, at, bytes + at,
                                   total - at < AF_MAX_CHUNK? total - at: AF_MAX_CHUNK) == AF_OK);
    //  Not a blob until it is finished
    assert (af_userdata_size (data, "ana", hash, &size) == AF_E_NO_BLOB);
    assert (af_userdata_finish (data, "ana", id, 2000) == AF_OK);
    assert (af_userdata_size (data, "ana", hash, &size) == AF_OK && size == total);
    assert (af_userdata_usage (data, "ana", &count, &size) == AF_OK && count == 1 && size == total);
    //  Another account does not have it (a hash is no secret)
    assert (af_userdata_size (data, "bob", hash, &size) == AF_E_NO_BLOB);
    uint64_t whole;
    assert (af_userdata_read (data, "bob", hash, 0, back, 10, &got, &whole) == AF_E_NO_BLOB);
    //  Read back in pieces that do not match the chunks
    size_t at = 0;
    while (at < total) {
        assert (af_userdata_read (data, "ana", hash, at, back + at, 100000, &got, &whole) == AF_OK);
        assert (whole == total && got > 0);
        at += got;
    }
    assert (at == total && memcmp (back, bytes, total) == 0);
    assert (af_userdata_read (data, "ana", hash, total, back, 10, &got, &whole) == AF_OK && got == 0);
    assert (af_userdata_read (data, "ana", hash, total + 1, back, 10, &got, &whole) == AF_E_MALFORMED);
    //  A second upload of the same blob drops its own chunks at the end
    assert (af_userdata_begin (data, "ana", hash, total, 3000, other) == AF_OK);
    assert (af_userdata_chunk (data, "ana", other, 0, bytes, AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_chunk (data, "ana", other, AF_MAX_CHUNK, bytes + AF_MAX_CHUNK, AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_chunk (data, "ana", other, 2 * AF_MAX_CHUNK, bytes + 2 * AF_MAX_CHUNK,
                               total - 2 * AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_finish (data, "ana", other, 3000) == AF_OK);
    assert (af_userdata_usage (data, "ana", &count, &size) == AF_OK && count == 1 && size == total);
    MDB_txn *txn;
    MDB_stat stat;
    MDB_dbi chunks;
    assert (af_store_dbi (store, "data_chunks", 0, &chunks) == 0);
    assert (af_store_begin (store, false, &txn) == 0 && mdb_stat (txn, chunks, &stat) == 0);
    af_store_abort (store, &txn);
    assert (stat.ms_entries == 3);
    //  An upload with a chunk missing is dropped at its end, not kept
    assert (af_userdata_begin (data, "cy", hash, total, 3000, other) == AF_OK);
    assert (af_userdata_chunk (data, "cy", other, 0, bytes, AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_chunk (data, "cy", other, 2 * AF_MAX_CHUNK, bytes + 2 * AF_MAX_CHUNK,
                               total - 2 * AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_finish (data, "cy", other, 3000) == AF_E_INTERNAL);
    assert (af_userdata_size (data, "cy", hash, &size) == AF_E_NO_BLOB);
    assert (af_userdata_usage (data, "cy", &count, &size) == AF_OK && count == 0);
    //  Abandoned: nothing of it stays
    assert (af_userdata_begin (data, "cy", hash, total, 3000, other) == AF_OK);
    assert (af_userdata_chunk (data, "cy", other, 0, bytes, AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_abandon (data, "cy", other) == AF_OK);
    assert (af_userdata_abandon (data, "cy", other) == AF_OK);
    assert (af_userdata_usage (data, "cy", &count, &size) == AF_OK && count == 0);
    assert (af_store_begin (store, false, &txn) == 0 && mdb_stat (txn, chunks, &stat) == 0);
    af_store_abort (store, &txn);
    assert (stat.ms_entries == 3);
    //  A record whose chunks are not all there is no blob (a follower
    //  that lacks a chunk deleted later: AF_STORE_BYREF)
    uint8_t key [CHUNK_KEY];
    size_t len = s_upload_key (key, "ana", id);
    af_put_be64 (key + len, AF_MAX_CHUNK);
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_store_del (txn, chunks, key, len + 8) == 0);
    assert (af_store_commit (store, &txn) == 0);
    assert (af_userdata_size (data, "ana", hash, &size) == AF_E_NO_BLOB);
    assert (af_userdata_read (data, "ana", hash, AF_MAX_CHUNK - 10, back, 100, &got, &whole) == AF_E_NO_BLOB);
    assert (af_userdata_read (data, "ana", hash, 10, back, 100, &got, &whole) == AF_OK && got == 100);
    assert (af_userdata_chunk (data, "ana", id, AF_MAX_CHUNK, bytes + AF_MAX_CHUNK, AF_MAX_CHUNK) == AF_OK);
    assert (af_userdata_size (data, "ana", hash, &size) == AF_OK);

    //  The sweep: uploads not live, blobs past the grace that no push names
    uint8_t live [AF_ID_SIZE], dead [AF_ID_SIZE], theirs [AF_ID_SIZE];
    assert (af_userdata_begin (data, "dan", hash, total, 3000, live) == AF_OK);
    assert (af_userdata_begin (data, "dan", hash, total, 3000, dead) == AF_OK);
    assert (af_userdata_chunk (data, "dan", dead, 0, bytes, 10) == AF_OK);
    assert (af_userdata_begin (data, "theirs", hash, total, 3000, theirs) == AF_OK);
    //  bob's is named by a push; ana's is not
    crypto_generichash (digest, sizeof digest, bytes, 10, NULL, 0);
    char small [AF_HASH_HEX + 1];
    sodium_bin2hex (small, sizeof small, digest, sizeof digest);
    assert (af_userdata_begin (data, "bob", small, 10, 1000, other) == AF_OK);
    assert (af_userdata_chunk (data, "bob", other, 0, bytes, 10) == AF_OK);
    assert (af_userdata_finish (data, "bob", other, 1000) == AF_OK);
    af_userdata_sweep_t ask = { s_test_ours, s_test_live, s_test_used, live };
    size_t removed;
    //  Within the grace only the dead upload goes; theirs is another broker's
    assert (af_userdata_sweep (data, 2500, 1000, &ask, 100, &removed) == AF_OK && removed == 1);
    assert (af_userdata_size (data, "ana", hash, &size) == AF_OK);
    assert (af_userdata_usage (data, "dan", &count, &size) == AF_OK && count == 1);
    assert (af_userdata_usage (data, "theirs", &count, &size) == AF_OK && count == 1);
    //  Past it ana's blob goes too, bob's stays (a push names it)
    assert (af_userdata_sweep (data, 3000, 1000, &ask, 100, &removed) == AF_OK && removed == 1);
    assert (af_userdata_size (data, "ana", hash, &size) == AF_E_NO_BLOB);
    assert (af_userdata_size (data, "bob", small, &size) == AF_OK && size == 10);
    assert (af_store_begin (store, false, &txn) == 0 && mdb_stat (txn, chunks, &stat) == 0);
    af_store_abort (store, &txn);
    assert (stat.ms_entries == 1);          //  bob's
    size_t blobs, uploads, pieces;
    af_userdata_counts (data, &blobs, &uploads, &pieces);
    assert (blobs == 1 && uploads == 2 && pieces == 1);    //  bob's; dan's live upload and theirs
    assert (af_userdata_remove (data, "bob", small) == AF_OK && af_userdata_remove (data, "bob", small) == AF_OK);

    //  A file from before: kept if its bytes have its hash
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/old", dir);
    FILE *file = fopen (path, "wb");
    assert (file && fwrite (bytes, 1, total, file) == total && fclose (file) == 0);
    assert (af_userdata_import (data, "eve", small, path, 5000) == AF_E_MALFORMED);
    assert (af_userdata_usage (data, "eve", &count, &size) == AF_OK && count == 0);
    assert (af_userdata_import (data, "eve", hash, path, 5000) == AF_OK);
    assert (af_userdata_import (data, "eve", hash, path, 5000) == AF_OK);
    assert (af_userdata_read (data, "eve", hash, 0, back, total, &got, &whole) == AF_OK && got == total
         && memcmp (back, bytes, total) == 0);
    unlink (path);

    free (bytes);
    free (back);
    af_userdata_destroy (&data);
    af_store_destroy (&store);
    zdir_t *tree = zdir_new (dir, NULL);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    if (verbose)
        printf ("OK\n");
}
