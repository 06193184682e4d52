/*  =========================================================================
    af_paynotes - "paid for" / "installed from you": told once, durably

    See af_paynotes.h for the contract and the key layout.
    =========================================================================
*/
#include "af_paynotes.h"

#include <assert.h>
#include <czmq.h>
#include <sodium.h>

struct _af_paynotes_t {
    af_store_t *store;              //  not ours
    af_outbox_t *outbox;            //  not ours
    MDB_dbi dbi;
};

af_paynotes_t *
af_paynotes_new (af_store_t *store, af_outbox_t *outbox)
{
    assert (store && outbox);
    af_paynotes_t *self = (af_paynotes_t *) zmalloc (sizeof (af_paynotes_t));
    assert (self);
    self->store = store;
    self->outbox = outbox;
    if (af_store_dbi (store, "paynotes", 0, &self->dbi))
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

int
af_paynotes_put (af_paynotes_t *self, const char *account, const char *device_id, const uint8_t *key,
                 const void *notice, size_t size, bool *queued)
{
    assert (self && account && device_id && key && notice);
    if (queued)
        *queued = false;
    uint8_t k [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return AF_E_MALFORMED;
    memcpy (k, account, len);
    k [len] = 0;
    memcpy (k + len + 1, key, AF_ID_SIZE);
    size_t klen = len + 1 + AF_ID_SIZE;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, true, &txn))
        return AF_E_INTERNAL;
    MDB_val seen;
    int rc = af_store_get (txn, self->dbi, k, klen, &seen);
    int code = rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
    bool put = code == AF_OK && rc == MDB_NOTFOUND;
    if (put)
        code = af_outbox_put_txn (self->outbox, txn, account, device_id, notice, size, NULL);
    if (put && code == AF_OK) {
        uint8_t at [8];
        uint64_t now = (uint64_t) zclock_time ();
        for (int i = 0; i < 8; i++)
            at [i] = (uint8_t) (now >> (8 * i));
        if (af_store_put (txn, self->dbi, k, klen, at, sizeof at, 0))
            code = AF_E_INTERNAL;
    }
    if (code == AF_OK && put && af_store_commit (self->store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (self->store, &txn);
    if (code == AF_OK && queued)
        *queued = put;
    return code;
}

void
af_paynotes_test (bool verbose)
{
    if (verbose)
        printf (" * af_paynotes: ");
    char dir [] = "/tmp/af_paynotes_test_XXXXXX";
    assert (mkdtemp (dir));
    const char *tablet = "fedcba9876543210fedcba9876543210";
    af_store_t *store = af_store_new (dir, 16 << 20, 8, false);
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
    store = af_store_new (dir, 16 << 20, 8, false);
    outbox = af_outbox_new (store);
    self = af_paynotes_new (store, outbox);
    assert (store && outbox && self);
    assert (af_paynotes_put (self, "ana", tablet, intent, "paid", 4, &queued) == AF_OK && !queued);
    assert (af_outbox_count (outbox, "ana", tablet, &n) == AF_OK && n == 3);
    af_paynotes_destroy (&self);
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
