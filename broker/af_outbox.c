/*  =========================================================================
    af_outbox - durable, ordered, per-device queues in the broker's store

    See af_outbox.h for the contract and the key layout.
    =========================================================================
*/
#include "af_outbox.h"
#include "af_bytes.h"

#include <assert.h>
#include <czmq.h>
#include <sodium.h>

struct _af_outbox_t {
    af_store_t *store;              //  not ours
    MDB_dbi items;
    MDB_dbi ids;
};

#define HEADER (AF_ID_SIZE + 8)     //  item ID, put time

af_outbox_t *
af_outbox_new (af_store_t *store)
{
    assert (store);
    af_outbox_t *self = (af_outbox_t *) zmalloc (sizeof (af_outbox_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "outbox", 0, &self->items)
    ||  af_store_dbi (store, "outbox_ids", 0, &self->ids))
        af_outbox_destroy (&self);
    return self;
}

void
af_outbox_destroy (af_outbox_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  Key prefix: account, 0x00, device ID (16 bytes). Returns its length, or
//  0 for a bad account or device ID.
static size_t
s_prefix (uint8_t *key, const char *account, const char *device_id)
{
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT || af_id_from_hex (device_id, key + len + 1) != AF_OK)
        return 0;
    memcpy (key, account, len);
    key [len] = 0;
    return len + 1 + AF_ID_SIZE;
}

//  The device's last item's seq (0 if none) and count, in txn
static int
s_last (af_outbox_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, uint64_t *last, int64_t *count)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->items, &cursor);
    if (rc)
        return rc;
    *last = 0;
    *count = 0;
    uint8_t start [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    memcpy (start, prefix, plen);
    memset (start + plen, 0, 8);
    MDB_val key = { plen + 8, start }, value;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == plen + 8 && memcmp (key.mv_data, prefix, plen) == 0) {
        *last = af_get_be64 ((const uint8_t *) key.mv_data + plen);
        (*count)++;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return rc == MDB_NOTFOUND? 0: rc;
}

//  The queue's meta record under its bare prefix: the last seq ever
//  given (so numbers keep rising after the queue was emptied) and how many
//  items it holds, 8 bytes BE each, so a put or an ack costs a lookup, not
//  a walk of the queue. A store written before the count was kept has the
//  seq alone (8 bytes): the queue is counted once, and the record
//  rewritten with its count by the next change.
static int
s_meta_get (af_outbox_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, uint64_t *last, int64_t *count)
{
    MDB_val meta;
    int rc = af_store_get (txn, self->items, prefix, plen, &meta);
    if (rc == 0 && meta.mv_size == 16) {
        *last = af_get_be64 ((const uint8_t *) meta.mv_data);
        *count = (int64_t) af_get_be64 ((const uint8_t *) meta.mv_data + 8);
        return 0;
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    uint64_t kept = rc == 0 && meta.mv_size == 8? af_get_be64 ((const uint8_t *) meta.mv_data): 0;
    rc = s_last (self, txn, prefix, plen, last, count);
    if (rc == 0 && kept > *last)
        *last = kept;
    return rc;
}

static int
s_meta_put (af_outbox_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, uint64_t last, int64_t count)
{
    uint8_t meta [16];
    af_put_be64 (meta, last);
    af_put_be64 (meta + 8, (uint64_t) count);
    return af_store_put (txn, self->items, prefix, plen, meta, sizeof meta, 0);
}

//  Our code for an internal result: -1 is a bad argument, -2 a full
//  queue, else LMDB's (logged here)
static int
s_code (int rc, const char *what)
{
    if (rc == -1)
        return AF_E_MALFORMED;
    if (rc == -2)
        return AF_E_QUOTA;
    if (rc)
        zsys_error ("outbox: cannot %s: %s", what, mdb_strerror (rc));
    return af_store_code (rc);
}

static int
s_put (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id,
       const void *data, size_t size, uint8_t *id_out)
{
    uint8_t key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    size_t plen = s_prefix (key, account, device_id);
    if (plen == 0 || size > AF_MAX_MSG)
        return -1;
    uint64_t last;
    int64_t count;
    int rc = s_meta_get (self, txn, key, plen, &last, &count);
    if (rc)
        return rc;
    if (count >= AF_MAX_OUTBOX)
        return -2;
    rc = s_meta_put (self, txn, key, plen, last + 1, count + 1);
    if (rc)
        return rc;
    af_put_be64 (key + plen, last + 1);

    uint8_t *value = (uint8_t *) malloc (HEADER + size);
    assert (value);
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    memcpy (value, id, AF_ID_SIZE);
    uint64_t now = (uint64_t) zclock_time ();
    memcpy (value + AF_ID_SIZE, &now, 8);           //  little-endian host (af_catalog checks)
    if (size)
        memcpy (value + HEADER, data, size);
    rc = af_store_put (txn, self->items, key, plen + 8, value, HEADER + size, MDB_NOOVERWRITE);
    free (value);
    if (rc)
        return rc;

    //  Index: account, 0x00, item ID -> device ID, seq
    size_t alen = strlen (account);
    uint8_t id_key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    memcpy (id_key, account, alen + 1);
    memcpy (id_key + alen + 1, id, AF_ID_SIZE);
    rc = af_store_put (txn, self->ids, id_key, alen + 1 + AF_ID_SIZE, key + alen + 1, AF_ID_SIZE + 8,
                       MDB_NOOVERWRITE);
    if (rc == 0 && id_out)
        memcpy (id_out, id, AF_ID_SIZE);
    return rc;
}

int
af_outbox_put_txn (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id,
                   const void *data, size_t size, uint8_t *id_out)
{
    assert (self && txn);
    return s_code (s_put (self, txn, account, device_id, data, size, id_out), "queue an item");
}

int
af_outbox_put (af_outbox_t *self, const char *account, const char *device_id,
               const void *data, size_t size, uint8_t *id_out)
{
    assert (self);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = s_put (self, txn, account, device_id, data, size, id_out);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return s_code (rc, "queue an item");
}

int
af_outbox_each (af_outbox_t *self, const char *account, const char *device_id,
                uint64_t after, size_t limit, af_outbox_fn *fn, void *arg)
{
    assert (self && fn);
    uint8_t start [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    size_t plen = s_prefix (start, account, device_id);
    if (plen == 0)
        return AF_E_MALFORMED;
    if (after == UINT64_MAX)
        return AF_OK;
    af_put_be64 (start + plen, after + 1);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = mdb_cursor_open (txn, self->items, &cursor);
    if (rc) {
        af_store_abort (self->store, &txn);
        return s_code (rc, "read an outbox");
    }
    MDB_val key = { plen + 8, start }, value;
    size_t done = 0;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == plen + 8 && memcmp (key.mv_data, start, plen) == 0
       &&  (limit == 0 || done < limit)) {
        if (value.mv_size < HEADER) {
            zsys_error ("outbox: an item of '%s' is corrupt (%zu bytes); skipped", account, value.mv_size);
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
            continue;
        }
        af_outbox_item_t item;
        memcpy (item.id, value.mv_data, AF_ID_SIZE);
        memcpy (&item.put_ms, (const uint8_t *) value.mv_data + AF_ID_SIZE, 8);
        item.seq = af_get_be64 ((const uint8_t *) key.mv_data + plen);
        item.data = (const uint8_t *) value.mv_data + HEADER;
        item.size = value.mv_size - HEADER;
        done++;
        if (fn (&item, arg))
            break;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    af_store_abort (self->store, &txn);
    return s_code (rc == MDB_NOTFOUND? 0: rc, "read an outbox");
}

static int
s_ack (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id,
       const uint8_t *item_id)
{
    uint8_t prefix [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    size_t plen = s_prefix (prefix, account, device_id);
    if (plen == 0)
        return -1;
    size_t alen = strlen (account);
    uint8_t id_key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    memcpy (id_key, account, alen + 1);
    memcpy (id_key + alen + 1, item_id, AF_ID_SIZE);
    MDB_val where;
    int rc = af_store_get (txn, self->ids, id_key, alen + 1 + AF_ID_SIZE, &where);
    //  The item must be queued for this very device
    if (rc == 0 && (where.mv_size != AF_ID_SIZE + 8 || memcmp (where.mv_data, prefix + alen + 1, AF_ID_SIZE)))
        rc = MDB_NOTFOUND;
    uint64_t last = 0;
    int64_t count = 0;
    if (rc == 0)
        rc = s_meta_get (self, txn, prefix, plen, &last, &count);
    if (rc == 0) {
        memcpy (prefix + plen, (const uint8_t *) where.mv_data + AF_ID_SIZE, 8);
        rc = af_store_del (txn, self->items, prefix, plen + 8);
    }
    if (rc == 0)
        rc = af_store_del (txn, self->ids, id_key, alen + 1 + AF_ID_SIZE);
    if (rc == 0)
        rc = s_meta_put (self, txn, prefix, plen, last, count > 0? count - 1: 0);
    return rc;
}

int
af_outbox_ack_txn (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id,
                   const uint8_t *item_id, bool *removed)
{
    assert (self && txn && item_id);
    int rc = s_ack (self, txn, account, device_id, item_id);
    if (removed)
        *removed = rc == 0;
    return s_code (rc == MDB_NOTFOUND? 0: rc, "remove an item");
}

int
af_outbox_ack (af_outbox_t *self, const char *account, const char *device_id, const uint8_t *item_id,
               bool *removed)
{
    assert (self && item_id);
    if (removed)
        *removed = false;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = s_ack (self, txn, account, device_id, item_id);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    if (removed)
        *removed = rc == 0;
    return s_code (rc == MDB_NOTFOUND? 0: rc, "remove an item");
}

int
af_outbox_find (af_outbox_t *self, const char *account, const char *device_id, const uint8_t *item_id,
                af_outbox_fn *fn, void *arg, bool *found)
{
    assert (self && item_id && fn && found);
    *found = false;
    uint8_t key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    size_t plen = s_prefix (key, account, device_id);
    if (plen == 0)
        return AF_E_MALFORMED;
    size_t alen = strlen (account);
    uint8_t id_key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    memcpy (id_key, account, alen + 1);
    memcpy (id_key + alen + 1, item_id, AF_ID_SIZE);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_val where, value;
    if (rc == 0)
        rc = af_store_get (txn, self->ids, id_key, alen + 1 + AF_ID_SIZE, &where);
    //  It must be queued for this very device
    if (rc == 0 && (where.mv_size != AF_ID_SIZE + 8 || memcmp (where.mv_data, key + alen + 1, AF_ID_SIZE)))
        rc = MDB_NOTFOUND;
    if (rc == 0) {
        memcpy (key + plen, (const uint8_t *) where.mv_data + AF_ID_SIZE, 8);
        rc = af_store_get (txn, self->items, key, plen + 8, &value);
    }
    if (rc == 0 && value.mv_size >= HEADER) {
        af_outbox_item_t item;
        memcpy (item.id, value.mv_data, AF_ID_SIZE);
        memcpy (&item.put_ms, (const uint8_t *) value.mv_data + AF_ID_SIZE, 8);
        item.seq = af_get_be64 (key + plen);
        item.data = (const uint8_t *) value.mv_data + HEADER;
        item.size = value.mv_size - HEADER;
        *found = true;
        fn (&item, arg);
    }
    af_store_abort (self->store, &txn);
    return s_code (rc == MDB_NOTFOUND? 0: rc, "read an item");
}

int
af_outbox_purge_txn (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id)
{
    assert (self && txn);
    uint8_t prefix [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    size_t plen = s_prefix (prefix, account, device_id);
    if (plen == 0)
        return AF_E_MALFORMED;
    size_t alen = strlen (account);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->items, &cursor);
    if (rc == 0) {
        MDB_val key = { plen, prefix }, value;
        int found = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && found == 0 && key.mv_size >= plen && memcmp (key.mv_data, prefix, plen) == 0) {
            //  Each item's index entry too (the bare prefix holds no item)
            if (key.mv_size == plen + 8 && value.mv_size >= HEADER) {
                uint8_t id_key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
                memcpy (id_key, account, alen + 1);
                memcpy (id_key + alen + 1, value.mv_data, AF_ID_SIZE);
                rc = af_store_del (txn, self->ids, id_key, alen + 1 + AF_ID_SIZE);
                if (rc == MDB_NOTFOUND)
                    rc = 0;
            }
            if (rc == 0)
                rc = af_store_cursor_del (cursor);
            if (rc == 0)
                found = mdb_cursor_get (cursor, &key, &value, MDB_GET_CURRENT);
            if (rc == 0 && found == 0 && key.mv_size >= plen && memcmp (key.mv_data, prefix, plen) == 0)
                continue;
            if (rc == 0 && found)
                found = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
            else
                break;
        }
        mdb_cursor_close (cursor);
    }
    return s_code (rc, "drop an outbox");
}

int
af_outbox_count (af_outbox_t *self, const char *account, const char *device_id, size_t *count)
{
    assert (self && count);
    *count = 0;
    uint8_t prefix [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + 8];
    size_t plen = s_prefix (prefix, account, device_id);
    if (plen == 0)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    uint64_t last;
    int64_t n = 0;
    if (rc == 0)
        rc = s_meta_get (self, txn, prefix, plen, &last, &n);
    af_store_abort (self->store, &txn);
    if (rc == 0)
        *count = (size_t) n;
    return s_code (rc, "count an outbox");
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    char seen [8][16];
    uint64_t seqs [8];
    uint8_t ids [8][AF_ID_SIZE];
    int count;
    int stop_at;
} collect_t;

static int
s_collect (const af_outbox_item_t *item, void *arg)
{
    collect_t *c = (collect_t *) arg;
    assert (c->count < 8 && item->size < 16);
    memcpy (c->seen [c->count], item->data, item->size);
    c->seen [c->count][item->size] = 0;
    c->seqs [c->count] = item->seq;
    memcpy (c->ids [c->count], item->id, AF_ID_SIZE);
    c->count++;
    return c->count == c->stop_at? 7: 0;
}

void
af_outbox_test (bool verbose)
{
    if (verbose)
        printf (" * af_outbox: ");
    char dir [] = "/tmp/af_outbox_test_XXXXXX";
    assert (mkdtemp (dir));
    const char *phone = "0123456789abcdef0123456789abcdef";
    const char *tablet = "fedcba9876543210fedcba9876543210";

    af_store_t *store = af_store_new (dir, 16 << 20, 8, false);
    assert (store);
    af_outbox_t *outbox = af_outbox_new (store);
    assert (outbox);
    size_t n;
    bool removed;

    //  Items come back in the order they were put, per device and account
    uint8_t first [AF_ID_SIZE], id [AF_ID_SIZE];
    assert (af_outbox_put (outbox, "ana", phone, "one", 3, first) == AF_OK);
    assert (af_outbox_put (outbox, "ana", tablet, "other", 5, NULL) == AF_OK);
    assert (af_outbox_put (outbox, "ana", phone, "two", 3, NULL) == AF_OK);
    assert (af_outbox_put (outbox, "bob", phone, "bob's", 5, NULL) == AF_OK);
    assert (af_outbox_put (outbox, "ana", phone, "three", 5, id) == AF_OK);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 3);
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 1);
    assert (af_outbox_count (outbox, "bob", phone, &n) == AF_OK && n == 1);
    collect_t c = { .stop_at = 0 };
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, &c) == AF_OK);
    assert (c.count == 3 && streq (c.seen [0], "one") && streq (c.seen [1], "two") && streq (c.seen [2], "three"));
    assert (c.seqs [0] < c.seqs [1] && c.seqs [1] < c.seqs [2]);
    assert (memcmp (c.ids [0], first, AF_ID_SIZE) == 0 && memcmp (c.ids [2], id, AF_ID_SIZE) == 0);

    //  after, limit, and a callback that stops
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "ana", phone, c.seqs [0] + 1, 1, s_collect, &c) == AF_OK);
    assert (c.count == 1 && streq (c.seen [0], "two"));
    memset (&c, 0, sizeof c);
    c.stop_at = 2;
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, &c) == AF_OK && c.count == 2);

    //  Find by ID: only the device the item is for sees it
    bool found;
    memset (&c, 0, sizeof c);
    assert (af_outbox_find (outbox, "ana", phone, first, s_collect, &c, &found) == AF_OK && found);
    assert (c.count == 1 && streq (c.seen [0], "one"));
    assert (af_outbox_find (outbox, "ana", tablet, first, s_collect, &c, &found) == AF_OK && !found);
    assert (af_outbox_find (outbox, "bob", phone, first, s_collect, &c, &found) == AF_OK && !found);

    //  Acks: only by the device the item is for; a repeat removes nothing
    assert (af_outbox_ack (outbox, "ana", tablet, first, &removed) == AF_OK && !removed);
    assert (af_outbox_ack (outbox, "bob", phone, first, &removed) == AF_OK && !removed);
    assert (af_outbox_ack (outbox, "ana", phone, first, &removed) == AF_OK && removed);
    assert (af_outbox_ack (outbox, "ana", phone, first, &removed) == AF_OK && !removed);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 2);

    //  Removing the middle or the last keeps the order; numbers never go
    //  back, not even after the queue was emptied
    assert (af_outbox_ack (outbox, "ana", phone, id, &removed) == AF_OK && removed);
    assert (af_outbox_put (outbox, "ana", phone, "four", 4, NULL) == AF_OK);
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, &c) == AF_OK);
    assert (c.count == 2 && streq (c.seen [0], "two") && streq (c.seen [1], "four"));
    assert (c.seqs [0] < c.seqs [1] && c.seqs [1] == 4);
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "ana", tablet, 0, 0, s_collect, &c) == AF_OK && c.count == 1);
    assert (af_outbox_ack (outbox, "ana", tablet, c.ids [0], &removed) == AF_OK && removed);
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 0);
    assert (af_outbox_put (outbox, "ana", tablet, "again", 5, NULL) == AF_OK);
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "ana", tablet, 0, 0, s_collect, &c) == AF_OK);
    assert (c.count == 1 && c.seqs [0] == 2 && streq (c.seen [0], "again"));

    //  Bad arguments
    assert (af_outbox_put (outbox, "ana", "XYZ", "x", 1, NULL) == AF_E_MALFORMED);
    assert (af_outbox_put (outbox, "ana", "0123456789ABCDEF0123456789ABCDEF", "x", 1, NULL) == AF_E_MALFORMED);
    assert (af_outbox_put (outbox, "", phone, "x", 1, NULL) == AF_E_MALFORMED);
    assert (af_outbox_count (outbox, "ana", "short", &n) == AF_E_MALFORMED);

    //  A removed device's whole queue goes, index entries included
    assert (af_outbox_put (outbox, "bob", tablet, "t1", 2, NULL) == AF_OK);
    assert (af_outbox_put (outbox, "bob", tablet, "t2", 2, id) == AF_OK);
    MDB_txn *purge = NULL;
    assert (af_store_begin (store, true, &purge) == 0);
    assert (af_outbox_purge_txn (outbox, purge, "bob", tablet) == AF_OK);
    assert (af_store_commit (store, &purge) == 0);
    assert (af_outbox_count (outbox, "bob", tablet, &n) == AF_OK && n == 0);
    assert (af_outbox_count (outbox, "bob", phone, &n) == AF_OK && n == 1);
    assert (af_outbox_find (outbox, "bob", tablet, id, s_collect, &c, &found) == AF_OK && !found);

    //  A queue's count is kept, not walked: an item acked twice counts once;
    //  a store from before the count (the last seq alone, 8 bytes) is
    //  counted once and carries on from its seq
    assert (af_outbox_put (outbox, "cy", phone, "c1", 2, id) == AF_OK);
    assert (af_outbox_put (outbox, "cy", phone, "c2", 2, NULL) == AF_OK);
    assert (af_outbox_ack (outbox, "cy", phone, id, &removed) == AF_OK && removed);
    assert (af_outbox_ack (outbox, "cy", phone, id, &removed) == AF_OK && !removed);
    assert (af_outbox_count (outbox, "cy", phone, &n) == AF_OK && n == 1);
    uint8_t legacy_key [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE], legacy [8];
    size_t legacy_len = s_prefix (legacy_key, "cy", phone);
    af_put_be64 (legacy, 7);
    MDB_txn *old_txn = NULL;
    assert (af_store_begin (store, true, &old_txn) == 0);
    assert (af_store_put (old_txn, outbox->items, legacy_key, legacy_len, legacy, sizeof legacy, 0) == 0);
    assert (af_store_commit (store, &old_txn) == 0);
    assert (af_outbox_count (outbox, "cy", phone, &n) == AF_OK && n == 1);
    assert (af_outbox_put (outbox, "cy", phone, "c3", 2, NULL) == AF_OK);
    assert (af_outbox_count (outbox, "cy", phone, &n) == AF_OK && n == 2);
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "cy", phone, 0, 0, s_collect, &c) == AF_OK);
    assert (c.count == 2 && c.seqs [0] == 2 && c.seqs [1] == 8);

    //  Durable: a new store on the same directory sees the same queue
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    store = af_store_new (dir, 16 << 20, 8, false);
    outbox = af_outbox_new (store);
    assert (outbox);
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, &c) == AF_OK);
    assert (c.count == 2 && streq (c.seen [0], "two") && streq (c.seen [1], "four"));
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 1);
    assert (af_outbox_put (outbox, "ana", phone, "five", 4, NULL) == AF_OK);
    memset (&c, 0, sizeof c);
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, &c) == AF_OK);
    assert (c.count == 3 && c.seqs [2] == 5);

    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
