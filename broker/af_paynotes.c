/*  =========================================================================
    af_paynotes - "paid for" / "installed from you": told once, durably

    See af_paynotes.h for the contract and the key layout.
    =========================================================================
*/
#include "af_paynotes.h"
#include "af_bytes.h"

#include <assert.h>
#include <czmq.h>
#include <sodium.h>

struct _af_paynotes_t {
    af_store_t *store;              //  not ours
    af_outbox_t *outbox;            //  not ours
    MDB_dbi dbi;                    //  paynotes: the keys
    MDB_dbi at;                     //  paynotes_at: per account, its count and its keys by time
    uint64_t keep_ms;
    uint8_t resume [AF_MAX_ACCOUNT + 1 + 8 + AF_ID_SIZE];   //  where the timer's sweep goes on
    size_t resume_len;              //  0: from the start
};

#define KEY_MAX     (AF_MAX_ACCOUNT + 1 + AF_ID_SIZE)
#define INDEX_MAX   (AF_MAX_ACCOUNT + 1 + 8 + AF_ID_SIZE)

af_paynotes_t *
af_paynotes_new (af_store_t *store, af_outbox_t *outbox)
{
    assert (store && outbox);
    af_paynotes_t *self = (af_paynotes_t *) zmalloc (sizeof (af_paynotes_t));
    assert (self);
    self->store = store;
    self->outbox = outbox;
    self->keep_ms = (uint64_t) AF_PAYNOTES_KEEP_S * 1000;
    if (af_store_dbi (store, "paynotes", 0, &self->dbi) || af_store_dbi (store, "paynotes_at", 0, &self->at))
        af_paynotes_destroy (&self);
    return self;
}

void
af_paynotes_destroy (af_paynotes_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
af_paynotes_set_keep (af_paynotes_t *self, uint64_t keep_ms)
{
    assert (self);
    self->keep_ms = keep_ms;
}

//  account 0x00: the prefix of its keys (and its count's key); 0 if the name is bad
static size_t
s_prefix (uint8_t *k, const char *account)
{
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return 0;
    memcpy (k, account, len);
    k [len] = 0;
    return len + 1;
}

//  The index entry of key queued at at: prefix, at BE, key
static size_t
s_index_key (uint8_t *k, const uint8_t *prefix, size_t plen, uint64_t at, const uint8_t *key)
{
    memcpy (k, prefix, plen);
    af_put_be64 (k + plen, at);
    memcpy (k + plen + 8, key, AF_ID_SIZE);
    return plen + 8 + AF_ID_SIZE;
}

static int
s_count_get (af_paynotes_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, uint64_t *count)
{
    MDB_val value;
    int rc = af_store_get (txn, self->at, prefix, plen, &value);
    *count = rc == 0 && value.mv_size == 8? af_get_le64 ((const uint8_t *) value.mv_data): 0;
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

static int
s_count_put (af_paynotes_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, uint64_t count)
{
    uint8_t bytes [8];
    af_put_le64 (bytes, count);
    int rc = count? af_store_put (txn, self->at, prefix, plen, bytes, sizeof bytes, 0):
                    af_store_del (txn, self->at, prefix, plen);
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

//  Forget one key: its index entry (index, ilen) and its record
static int
s_forget (af_paynotes_t *self, MDB_txn *txn, const uint8_t *index, size_t ilen, size_t plen)
{
    uint8_t k [KEY_MAX];
    memcpy (k, index, plen);
    memcpy (k + plen, index + plen + 8, AF_ID_SIZE);
    int rc = af_store_del (txn, self->at, index, ilen);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = af_store_del (txn, self->dbi, k, plen + AF_ID_SIZE);
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

//  The account's keys past keep_ms, and its oldest past AF_MAX_PAYNOTES,
//  forgotten (AF_PAYNOTES_SWEEP at most); *count kept right
static int
s_trim (af_paynotes_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, uint64_t now, uint64_t *count)
{
    //  The oldest first: collected, then deleted (no cursor over what changes)
    uint8_t (*old) [INDEX_MAX] = NULL;
    size_t nold = 0;
    MDB_cursor *cursor;
    if (mdb_cursor_open (txn, self->at, &cursor))
        return AF_E_INTERNAL;
    MDB_val k = { plen, (void *) prefix }, value;
    int rc = mdb_cursor_get (cursor, &k, &value, MDB_SET_RANGE);
    uint64_t left = *count;
    for (; rc == 0 && nold < AF_PAYNOTES_SWEEP; rc = mdb_cursor_get (cursor, &k, &value, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp (k.mv_data, prefix, plen))
            break;                      //  past the account's
        if (k.mv_size != plen + 8 + AF_ID_SIZE)
            continue;                   //  its count
        uint64_t at = 0;
        for (int i = 0; i < 8; i++)
            at = (at << 8) | ((const uint8_t *) k.mv_data) [plen + i];
        if (at + self->keep_ms > now && left <= AF_MAX_PAYNOTES)
            break;                      //  in time order: the rest are kept
        old = realloc (old, (nold + 1) * INDEX_MAX);
        assert (old);
        memcpy (old [nold++], k.mv_data, k.mv_size);
        left--;
    }
    mdb_cursor_close (cursor);
    int code = rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
    for (size_t i = 0; code == AF_OK && i < nold; i++)
        code = s_forget (self, txn, old [i], plen + 8 + AF_ID_SIZE, plen);
    if (code == AF_OK)
        *count -= nold;
    free (old);
    return code;
}

int
af_paynotes_put_at (af_paynotes_t *self, const char *account, const char *device_id, const uint8_t *key,
                    const void *notice, size_t size, uint64_t now, bool *queued)
{
    assert (self && account && device_id && key && notice);
    if (queued)
        *queued = false;
    uint8_t k [KEY_MAX], prefix [AF_MAX_ACCOUNT + 1];
    size_t plen = s_prefix (prefix, account);
    if (!plen)
        return AF_E_MALFORMED;
    memcpy (k, prefix, plen);
    memcpy (k + plen, key, AF_ID_SIZE);
    size_t klen = plen + AF_ID_SIZE;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, true, &txn))
        return AF_E_INTERNAL;
    MDB_val seen;
    int rc = af_store_get (txn, self->dbi, k, klen, &seen);
    int code = rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
    bool put = code == AF_OK && rc == MDB_NOTFOUND;
    if (put)
        code = af_outbox_put_txn (self->outbox, txn, account, device_id, notice, size, NULL);
    uint64_t count = 0;
    if (put && code == AF_OK)
        code = s_count_get (self, txn, prefix, plen, &count);
    if (put && code == AF_OK) {
        uint8_t at [8], index [INDEX_MAX];
        af_put_le64 (at, now);
        size_t ilen = s_index_key (index, prefix, plen, now, key);
        if (af_store_put (txn, self->dbi, k, klen, at, sizeof at, 0)
        ||  af_store_put (txn, self->at, index, ilen, "", 0, 0))
            code = AF_E_INTERNAL;
        count++;
    }
    if (put && code == AF_OK)
        code = s_trim (self, txn, prefix, plen, now, &count);
    if (put && code == AF_OK)
        code = s_count_put (self, txn, prefix, plen, count);
    if (code == AF_OK && put && af_store_commit (self->store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (self->store, &txn);
    if (code == AF_OK && queued)
        *queued = put;
    return code;
}

int
af_paynotes_put (af_paynotes_t *self, const char *account, const char *device_id, const uint8_t *key,
                 const void *notice, size_t size, bool *queued)
{
    return af_paynotes_put_at (self, account, device_id, key, notice, size, (uint64_t) zclock_time (), queued);
}

int
af_paynotes_count (af_paynotes_t *self, const char *account, size_t *count)
{
    assert (self && account && count);
    *count = 0;
    uint8_t prefix [AF_MAX_ACCOUNT + 1];
    size_t plen = s_prefix (prefix, account);
    if (!plen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    uint64_t n = 0;
    int code = s_count_get (self, txn, prefix, plen, &n);
    af_store_abort (self->store, &txn);
    *count = (size_t) n;
    return code;
}

int
af_paynotes_sweep (af_paynotes_t *self, uint64_t now, size_t max, af_paynotes_serves_fn *serves, void *arg,
                   size_t *removed)
{
    assert (self);
    if (removed)
        *removed = 0;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, true, &txn))
        return AF_E_INTERNAL;
    //  Read: the expired entries among the next max, collected
    uint8_t (*old) [INDEX_MAX] = NULL;
    size_t *lens = NULL, nold = 0, seen = 0;
    MDB_cursor *cursor;
    if (mdb_cursor_open (txn, self->at, &cursor)) {
        af_store_abort (self->store, &txn);
        return AF_E_INTERNAL;
    }
    MDB_val k = { self->resume_len, self->resume }, value;
    int rc = mdb_cursor_get (cursor, &k, &value, self->resume_len? MDB_SET_RANGE: MDB_FIRST);
    char account [AF_MAX_ACCOUNT + 1] = "";
    bool ours = false;
    for (; rc == 0 && seen < max; rc = mdb_cursor_get (cursor, &k, &value, MDB_NEXT), seen++) {
        const uint8_t *bytes = (const uint8_t *) k.mv_data;
        const uint8_t *nul = (const uint8_t *) memchr (bytes, 0, k.mv_size);
        size_t plen = nul? (size_t) (nul - bytes) + 1: 0;
        if (!plen || plen - 1 > AF_MAX_ACCOUNT || k.mv_size != plen + 8 + AF_ID_SIZE)
            continue;                   //  a count (or not ours to read)
        uint64_t at = 0;
        for (int i = 0; i < 8; i++)
            at = (at << 8) | bytes [plen + i];
        if (at + self->keep_ms > now)
            continue;
        if (strlen (account) != plen - 1 || memcmp (account, bytes, plen - 1)) {
            memcpy (account, bytes, plen);
            ours = !serves || serves (account, arg);
        }
        if (!ours)
            continue;
        old = realloc (old, (nold + 1) * INDEX_MAX);
        lens = (size_t *) realloc (lens, (nold + 1) * sizeof (size_t));
        assert (old && lens);
        memcpy (old [nold], bytes, k.mv_size);
        lens [nold++] = plen;
    }
    //  Where the next call goes on: the entry after the last one seen, or the start
    if (rc == 0 && k.mv_size <= sizeof self->resume) {
        memcpy (self->resume, k.mv_data, k.mv_size);
        self->resume_len = k.mv_size;
    }
    else
        self->resume_len = 0;
    mdb_cursor_close (cursor);
    int code = rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
    //  Write: each forgotten, its account's count one less
    for (size_t i = 0; code == AF_OK && i < nold; i++) {
        uint64_t count;
        code = s_forget (self, txn, old [i], lens [i] + 8 + AF_ID_SIZE, lens [i]);
        if (code == AF_OK)
            code = s_count_get (self, txn, old [i], lens [i], &count);
        if (code == AF_OK)
            code = s_count_put (self, txn, old [i], lens [i], count? count - 1: 0);
    }
    if (code == AF_OK && nold && af_store_commit (self->store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (self->store, &txn);
    if (code == AF_OK && removed)
        *removed = nold;
    free (old);
    free (lens);
    return code;
}

static bool
s_test_serves (const char *account, void *arg)
{
    (void) arg;
    return !streq (account, "eve");
}

void
af_paynotes_test (bool verbose)
{
    if (verbose)
        printf (" * af_paynotes: ");
    char dir [] = "/tmp/af_paynotes_test_XXXXXX";
    assert (mkdtemp (dir));
    const char *tablet = "fedcba9876543210fedcba9876543210";
    af_store_t *store = af_store_new (dir, 64 << 20, 8, false);
    assert (store);
    af_outbox_t *outbox = af_outbox_new (store);
    af_paynotes_t *self = af_paynotes_new (store, outbox);
    assert (outbox && self);
    uint8_t intent [AF_ID_SIZE], other [AF_ID_SIZE];
    randombytes_buf (intent, sizeof intent);
    randombytes_buf (other, sizeof other);
    bool queued;
    size_t n;
    //  Once per key, whatever is asked again; another key is another notice
    assert (af_paynotes_put (self, "ana", tablet, intent, "paid", 4, &queued) == AF_OK && queued);
    assert (af_paynotes_put (self, "ana", tablet, intent, "entitled", 8, &queued) == AF_OK && !queued);
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 1);
    assert (af_paynotes_put (self, "ana", tablet, other, "paid", 4, &queued) == AF_OK && queued);
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 2);
    //  Keys are per account
    assert (af_paynotes_put (self, "bob", tablet, intent, "paid", 4, &queued) == AF_OK && queued);
    //  Refused: nothing written
    assert (af_paynotes_put (self, "", tablet, other, "x", 1, &queued) == AF_E_MALFORMED && !queued);
    uint8_t third [AF_ID_SIZE];
    randombytes_buf (third, sizeof third);
    assert (af_paynotes_put (self, "ana", "not-a-device", third, "x", 1, &queued) == AF_E_MALFORMED);
    assert (af_paynotes_put (self, "ana", tablet, third, "x", 1, &queued) == AF_OK && queued);
    af_paynotes_destroy (&self);
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    //  The record survives a restart: still once
    store = af_store_new (dir, 64 << 20, 8, false);
    outbox = af_outbox_new (store);
    self = af_paynotes_new (store, outbox);
    assert (store && outbox && self);
    assert (af_paynotes_put (self, "ana", tablet, intent, "paid", 4, &queued) == AF_OK && !queued);
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 3);
    assert (af_paynotes_count (self, "ana", &n) == AF_OK && n == 3);

    //  Kept keep_ms: once within it, however late; after it, swept by the
    //  account's next notice, and a repeat is told again (SPEC 5.47)
    uint64_t keep = (uint64_t) AF_PAYNOTES_KEEP_S * 1000, t0 = 1000;
    uint8_t k1 [AF_ID_SIZE] = { 1 }, k2 [AF_ID_SIZE] = { 2 }, k3 [AF_ID_SIZE] = { 3 };
    assert (af_paynotes_put_at (self, "cy", tablet, k1, "x", 1, t0, &queued) == AF_OK && queued);
    assert (af_paynotes_put_at (self, "cy", tablet, k1, "x", 1, t0 + keep - 1, &queued) == AF_OK && !queued);
    assert (af_paynotes_put_at (self, "cy", tablet, k2, "x", 1, t0 + keep + 1, &queued) == AF_OK && queued);
    assert (af_paynotes_count (self, "cy", &n) == AF_OK && n == 1);
    assert (af_paynotes_put_at (self, "cy", tablet, k1, "x", 1, t0 + keep + 2, &queued) == AF_OK && queued);
    assert (af_paynotes_count (self, "cy", &n) == AF_OK && n == 2);

    //  The timer's sweep: only what is old, only accounts it may write,
    //  a few at a time, going on where it stopped
    assert (af_paynotes_put_at (self, "dan", tablet, k1, "x", 1, t0, &queued) == AF_OK && queued);
    assert (af_paynotes_put_at (self, "dan", tablet, k2, "x", 1, t0 + 1, &queued) == AF_OK && queued);
    assert (af_paynotes_put_at (self, "dan", tablet, k3, "x", 1, t0 + 20, &queued) == AF_OK && queued);
    assert (af_paynotes_put_at (self, "eve", tablet, k1, "x", 1, t0, &queued) == AF_OK && queued);
    uint64_t later = t0 + keep + 10;
    size_t removed = 0, total = 0;
    for (int round = 0; round < 20; round++) {
        assert (af_paynotes_sweep (self, later, 2, s_test_serves, NULL, &removed) == AF_OK && removed <= 2);
        total += removed;
    }
    //  dan's two old ones: eve's is not ours, the rest are not old
    assert (total == 2);
    assert (af_paynotes_count (self, "dan", &n) == AF_OK && n == 1);
    assert (af_paynotes_count (self, "cy", &n) == AF_OK && n == 2);
    assert (af_paynotes_count (self, "eve", &n) == AF_OK && n == 1);
    assert (af_paynotes_count (self, "ana", &n) == AF_OK && n == 3);
    assert (af_paynotes_put_at (self, "dan", tablet, k3, "x", 1, later, &queued) == AF_OK && !queued);
    assert (af_paynotes_put_at (self, "dan", tablet, k1, "x", 1, later, &queued) == AF_OK && queued);

    //  At most AF_MAX_PAYNOTES keys an account: past it, the oldest go
    const char *phone = "0123456789abcdef0123456789abcdef";
    assert (af_store_batch_begin (store) == 0);     //  one fsync, as the broker's group commit
    for (uint32_t i = 0; i < AF_MAX_PAYNOTES + 2; i++) {
        uint8_t k [AF_ID_SIZE] = { 9 };
        memcpy (k + 1, &i, sizeof i);
        assert (af_paynotes_put_at (self, "fay", i % 2? tablet: phone, k, "x", 1, t0 + i, &queued) == AF_OK
                && queued);
    }
    assert (af_store_batch_end (store) == 0);
    assert (af_paynotes_count (self, "fay", &n) == AF_OK && n == AF_MAX_PAYNOTES);
    uint8_t first [AF_ID_SIZE] = { 9 }, kept [AF_ID_SIZE] = { 9, 2 };
    assert (af_paynotes_put_at (self, "fay", phone, kept, "x", 1, t0 + AF_MAX_PAYNOTES + 2, &queued) == AF_OK
            && !queued);
    assert (af_paynotes_put_at (self, "fay", phone, first, "x", 1, t0 + AF_MAX_PAYNOTES + 2, &queued) == AF_OK
            && queued);
    assert (af_paynotes_count (self, "fay", &n) == AF_OK && n == AF_MAX_PAYNOTES);
    af_paynotes_destroy (&self);
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
