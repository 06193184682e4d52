/*  =========================================================================
    af_guesses - wrong passwords counted durably, per account and source

    See af_guesses.h for the rule and the key layout.
    =========================================================================
*/
#include "af_guesses.h"

#include <czmq.h>

#define MAX_SOURCE  64              //  bytes of a source address we keep
#define KEY_MAX     (AF_MAX_ACCOUNT + 1 + MAX_SOURCE)
#define VALUE_SIZE  12

struct _af_guesses_t {
    af_store_t *store;
    MDB_dbi guesses;
};

af_guesses_t *
af_guesses_new (af_store_t *store)
{
    af_guesses_t *self = (af_guesses_t *) zmalloc (sizeof (af_guesses_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "guesses", 0, &self->guesses)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_guesses_destroy (af_guesses_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static size_t
s_key (uint8_t *key, const char *account, const char *source)
{
    size_t alen = strlen (account), slen = strlen (source);
    if (alen == 0 || alen > AF_MAX_ACCOUNT)
        return 0;
    if (slen > MAX_SOURCE)
        slen = MAX_SOURCE;
    memcpy (key, account, alen + 1);
    memcpy (key + alen + 1, source, slen);
    return alen + 1 + slen;
}

//  The count and window start under a key, 0 if none or the window ended
static void
s_read (af_guesses_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t now,
        uint32_t *count, uint64_t *since)
{
    MDB_val value;
    *count = 0;
    *since = now;
    if (af_store_get (txn, self->guesses, key, keylen, &value) == 0 && value.mv_size == VALUE_SIZE) {
        uint32_t c;
        uint64_t s;
        memcpy (&c, value.mv_data, 4);
        memcpy (&s, (const uint8_t *) value.mv_data + 4, 8);
        if (now < s + AF_LOGIN_WINDOW_MS) {
            *count = c;
            *since = s;
        }
    }
}

int
af_guesses_check (af_guesses_t *self, const char *account, const char *source, uint64_t now,
                  char *err, size_t errlen)
{
    assert (self);
    uint8_t key [KEY_MAX], all [KEY_MAX];
    size_t keylen = s_key (key, account, source), alllen = s_key (all, account, "*");
    if (!keylen)
        return AF_OK;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, false, &txn))
        return AF_OK;
    uint32_t count, total;
    uint64_t since, all_since;
    s_read (self, txn, key, keylen, now, &count, &since);
    s_read (self, txn, all, alllen, now, &total, &all_since);
    af_store_abort (self->store, &txn);
    if (count >= AF_MAX_LOGIN_FAILURES) {
        snprintf (err, errlen, "%u wrong passwords for '%s' from here; try again in %d s", count, account,
                  (int) ((since + AF_LOGIN_WINDOW_MS - now) / 1000) + 1);
        return AF_E_RATE_LIMITED;
    }
    if (total >= AF_MAX_ACCOUNT_FAILURES) {
        snprintf (err, errlen, "%u wrong passwords for '%s' from many places; try again in %d s", total,
                  account, (int) ((all_since + AF_LOGIN_WINDOW_MS - now) / 1000) + 1);
        return AF_E_RATE_LIMITED;
    }
    return AF_OK;
}

static int
s_bump (af_guesses_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t now)
{
    uint32_t count;
    uint64_t since;
    s_read (self, txn, key, keylen, now, &count, &since);
    count++;
    uint8_t value [VALUE_SIZE];
    memcpy (value, &count, 4);
    memcpy (value + 4, &since, 8);
    return af_store_put (txn, self->guesses, key, keylen, value, sizeof value, 0);
}

int
af_guesses_failed (af_guesses_t *self, const char *account, const char *source, uint64_t now)
{
    assert (self);
    uint8_t key [KEY_MAX], all [KEY_MAX];
    size_t keylen = s_key (key, account, source), alllen = s_key (all, account, "*");
    if (!keylen)
        return AF_OK;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = s_bump (self, txn, key, keylen, now);
    if (rc == 0)
        rc = s_bump (self, txn, all, alllen, now);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

int
af_guesses_passed (af_guesses_t *self, const char *account, const char *source)
{
    assert (self);
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, source);
    if (!keylen)
        return AF_OK;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    MDB_val value;
    if (rc == 0 && af_store_get (txn, self->guesses, key, keylen, &value) == MDB_NOTFOUND) {
        af_store_abort (self->store, &txn);          //  nothing to clear: no write
        return AF_OK;
    }
    if (rc == 0)
        rc = af_store_del (txn, self->guesses, key, keylen);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

int
af_guesses_expire (af_guesses_t *self, uint64_t now, af_guesses_ours_fn *ours, void *arg)
{
    assert (self);
    MDB_txn *txn = NULL;
    MDB_cursor *cursor = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = mdb_cursor_open (txn, self->guesses, &cursor);
    size_t removed = 0;
    if (rc == 0) {
        MDB_val key, value;
        int found = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        while (found == 0 && rc == 0) {
            uint64_t since = 0;
            if (value.mv_size == VALUE_SIZE)
                memcpy (&since, (const uint8_t *) value.mv_data + 4, 8);
            //  The key starts with its account and a 0x00: another shard's
            //  keys are not ours to write (its owner sweeps them)
            const char *account = (const char *) key.mv_data;
            bool mine = !ours || (memchr (account, 0, key.mv_size) && ours (account, arg));
            if (mine && (value.mv_size != VALUE_SIZE || now >= since + AF_LOGIN_WINDOW_MS)) {
                rc = af_store_cursor_del (cursor);
                removed++;
            }
            found = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    if (rc == 0 && removed)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    return af_store_code (rc);
}

//  --------------------------------------------------------------------------
//  Self test

static bool
s_not_carol (const char *account, void *arg)
{
    (void) arg;
    return strcmp (account, "carol") != 0;
}

//  How many counts of account are stored
static size_t
s_stored (af_guesses_t *self, const char *account)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cursor = NULL;
    size_t count = 0;
    assert (af_store_begin (self->store, false, &txn) == 0);
    assert (mdb_cursor_open (txn, self->guesses, &cursor) == 0);
    MDB_val key, value;
    for (int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT))
        if (key.mv_size > strlen (account) && memcmp (key.mv_data, account, strlen (account) + 1) == 0)
            count++;
    mdb_cursor_close (cursor);
    af_store_abort (self->store, &txn);
    return count;
}

void
af_guesses_test (bool verbose)
{
    if (verbose)
        printf (" * af_guesses: ");
    char dir [] = "/tmp/af_guesses_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    af_guesses_t *self = af_guesses_new (store);
    assert (self);
    char err [256];
    uint64_t now = 1000000;
    for (int i = 0; i < AF_MAX_LOGIN_FAILURES; i++) {
        assert (af_guesses_check (self, "ana", "10.0.0.1", now, err, sizeof err) == AF_OK);
        assert (af_guesses_failed (self, "ana", "10.0.0.1", now) == AF_OK);
    }
    //  That source waits; the owner elsewhere does not; another account neither
    assert (af_guesses_check (self, "ana", "10.0.0.1", now, err, sizeof err) == AF_E_RATE_LIMITED);
    assert (strstr (err, "try again in 61 s"));
    assert (af_guesses_check (self, "ana", "10.0.0.2", now, err, sizeof err) == AF_OK);
    assert (af_guesses_check (self, "bob", "10.0.0.1", now, err, sizeof err) == AF_OK);
    //  Durable: the same counts in a new handle on the same store
    af_guesses_destroy (&self);
    af_store_destroy (&store);
    store = af_store_new (dir, 0, 16, false);
    self = af_guesses_new (store);
    assert (af_guesses_check (self, "ana", "10.0.0.1", now + 1000, err, sizeof err) == AF_E_RATE_LIMITED);
    //  The window ends: the same source may try again
    assert (af_guesses_check (self, "ana", "10.0.0.1", now + AF_LOGIN_WINDOW_MS, err, sizeof err) == AF_OK);
    //  Many sources together hit the account-wide bound
    for (int i = 0; i < AF_MAX_ACCOUNT_FAILURES; i++) {
        char source [32];
        snprintf (source, sizeof source, "10.1.%d.%d", i / 250, i % 250);
        assert (af_guesses_failed (self, "carol", source, now) == AF_OK);
    }
    assert (af_guesses_check (self, "carol", "10.9.9.9", now, err, sizeof err) == AF_E_RATE_LIMITED);
    assert (strstr (err, "many places"));
    //  The right password clears its source's count
    assert (af_guesses_passed (self, "ana", "10.0.0.1") == AF_OK);
    assert (af_guesses_check (self, "ana", "10.0.0.1", now + 1000, err, sizeof err) == AF_OK);
    //  Expired counts are removed, of the accounts that are ours only
    assert (af_guesses_failed (self, "dan", "10.0.0.9", now) == AF_OK);
    assert (af_guesses_expire (self, now + AF_LOGIN_WINDOW_MS, s_not_carol, NULL) == AF_OK);
    assert (s_stored (self, "carol") > 0 && s_stored (self, "dan") == 0);
    assert (af_guesses_expire (self, now + AF_LOGIN_WINDOW_MS, NULL, NULL) == AF_OK);
    assert (s_stored (self, "carol") == 0);
    assert (af_guesses_check (self, "carol", "10.9.9.9", now, err, sizeof err) == AF_OK);
    af_guesses_destroy (&self);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
