/*  =========================================================================
    af_configs - each account's app configurations, sealed

    See af_configs.h for the guarantees and the key layout.
    =========================================================================
*/
#include "af_configs.h"

#include <errno.h>

#define KEY_MAX (AF_MAX_ACCOUNT + 1 + AF_MAX_PROGRAM)

struct _af_configs_t {
    af_store_t *store;
    MDB_dbi configs;
    MDB_dbi configs_prev;
    size_t max_programs;            //  0: no limit
    uint64_t max_bytes;
};

af_configs_t *
af_configs_new (af_store_t *store)
{
    af_configs_t *self = (af_configs_t *) zmalloc (sizeof (af_configs_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "configs", 0, &self->configs)
    ||  af_store_dbi (store, "configs_prev", 0, &self->configs_prev)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_configs_destroy (af_configs_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  account, 0x00, program; 0 on a bad argument
static size_t
s_key (uint8_t *key, const char *account, const char *program)
{
    size_t alen = strlen (account), plen = strlen (program);
    if (alen == 0 || alen > AF_MAX_ACCOUNT || plen == 0 || plen > AF_MAX_PROGRAM)
        return 0;
    memcpy (key, account, alen + 1);
    memcpy (key + alen + 1, program, plen);
    return alen + 1 + plen;
}

void
af_configs_set_quota (af_configs_t *self, size_t max_programs, uint64_t max_bytes)
{
    assert (self);
    self->max_programs = max_programs;
    self->max_bytes = max_bytes;
}

//  The account's programs with a current version, and the bytes of both
//  versions of all of them (values' sizes: no overflow page is read)
static int
s_usage (af_configs_t *self, MDB_txn *txn, const char *account, size_t *programs, uint64_t *bytes)
{
    *programs = 0;
    *bytes = 0;
    uint8_t prefix [KEY_MAX];
    size_t plen = strlen (account) + 1;
    memcpy (prefix, account, plen);
    for (int table = 0; table < 2; table++) {
        MDB_cursor *cursor;
        int rc = mdb_cursor_open (txn, table? self->configs_prev: self->configs, &cursor);
        if (rc)
            return rc;
        MDB_val key = { plen, prefix }, value;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            *programs += table == 0;
            *bytes += value.mv_size;
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
        if (rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

static int
s_write (MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t keylen, uint64_t at,
         const void *blob, size_t size)
{
    uint8_t *value = (uint8_t *) malloc (8 + size);
    if (!value)
        return ENOMEM;
    memcpy (value, &at, 8);
    if (size)
        memcpy (value + 8, blob, size);
    int rc = af_store_put (txn, dbi, key, keylen, value, 8 + size, 0);
    free (value);
    return rc;
}

int
af_configs_put (af_configs_t *self, const char *account, const char *program,
                uint64_t at, const uint8_t *blob, size_t size, bool *current)
{
    assert (self && current);
    *current = false;
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, program);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    MDB_val old;
    int found = rc? rc: af_store_get (txn, self->configs, key, keylen, &old);
    uint64_t old_at = 0;
    if (found == 0 && old.mv_size >= 8)
        memcpy (&old_at, old.mv_data, 8);
    bool newer = found == MDB_NOTFOUND || (found == 0 && at > old_at);
    if (rc == 0 && found && found != MDB_NOTFOUND)
        rc = found;
    //  The account's limits, as they will be after this put
    if (rc == 0 && (self->max_programs || self->max_bytes)) {
        size_t programs;
        uint64_t bytes;
        MDB_val prev;
        rc = s_usage (self, txn, account, &programs, &bytes);
        int has_prev = rc? rc: af_store_get (txn, self->configs_prev, key, keylen, &prev);
        uint64_t old_size = (found == 0? old.mv_size: 0) + (has_prev == 0? prev.mv_size: 0);
        uint64_t new_size = 8 + size + (found == 0? old.mv_size: 0);     //  either way: new + the other
        uint64_t after = bytes - old_size + new_size;
        bool too_many = found == MDB_NOTFOUND && self->max_programs && programs >= self->max_programs;
        bool too_big = self->max_bytes && after > self->max_bytes && after > bytes;
        if (rc == 0 && (too_many || too_big)) {
            af_store_abort (self->store, &txn);
            zsys_warning ("configs: '%s' is at its quota (%zu programs, %llu bytes)", account, programs,
                          (unsigned long long) bytes);
            return AF_E_QUOTA;
        }
    }
    if (rc == 0 && !newer)
        //  Older (or as old): it loses, and is kept as the previous version
        rc = s_write (txn, self->configs_prev, key, keylen, at, blob, size);
    else
    if (rc == 0) {
        if (found == 0)
            rc = af_store_put (txn, self->configs_prev, key, keylen, old.mv_data, old.mv_size, 0);
        if (rc == 0)
            rc = s_write (txn, self->configs, key, keylen, at, blob, size);
    }
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    if (rc) {
        zsys_error ("configs: cannot store %s of '%s': %s", program, account, mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    *current = newer;
    return AF_OK;
}

int
af_configs_get (af_configs_t *self, const char *account, const char *program,
                bool previous, af_msg_t *msg)
{
    assert (self && msg);
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, program);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_val value, prev;
    if (rc == 0)
        rc = af_store_get (txn, previous? self->configs_prev: self->configs, key, keylen, &value);
    if (rc == 0 && value.mv_size <= 8)
        rc = MDB_NOTFOUND;              //  nothing sealed in it: as good as none
    if (rc == 0) {
        memcpy (&msg->at, value.mv_data, 8);
        free (msg->data);
        msg->data_size = (uint32_t) (value.mv_size - 8);
        msg->data = (uint8_t *) malloc (msg->data_size);
        assert (msg->data);
        memcpy (msg->data, (const uint8_t *) value.mv_data + 8, msg->data_size);
        msg->previous = previous;
        msg->prev_at = 0;
        if (af_store_get (txn, self->configs_prev, key, keylen, &prev) == 0 && prev.mv_size >= 8)
            memcpy (&msg->prev_at, prev.mv_data, 8);
    }
    af_store_abort (self->store, &txn);
    if (rc == MDB_NOTFOUND)
        return AF_E_NO_CONFIG;
    if (rc)
        zsys_error ("configs: cannot read %s of '%s': %s", program, account, mdb_strerror (rc));
    return af_store_code (rc);
}

//  --------------------------------------------------------------------------
//  Self test

void
af_configs_test (bool verbose)
{
    if (verbose)
        printf (" * af_configs: ");
    char dir [] = "/tmp/af_configs_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    af_configs_t *self = af_configs_new (store);
    assert (self);
    bool current;
    //  The newer wins, the other is kept as previous, whatever the order
    assert (af_configs_put (self, "ana", "notes", 2000, (const uint8_t *) "B", 1, &current) == AF_OK && current);
    assert (af_configs_put (self, "ana", "notes", 1000, (const uint8_t *) "A", 1, &current) == AF_OK && !current);
    af_msg_t *config = af_msg_new (AF_MSG_CONFIG);
    assert (af_configs_get (self, "ana", "notes", false, config) == AF_OK);
    assert (config->at == 2000 && config->data_size == 1 && config->data [0] == 'B' && config->prev_at == 1000);
    //  As old as the current one: it loses too
    assert (af_configs_put (self, "ana", "notes", 2000, (const uint8_t *) "X", 1, &current) == AF_OK && !current);
    assert (af_configs_put (self, "ana", "notes", 3000, (const uint8_t *) "C", 1, &current) == AF_OK && current);
    assert (af_configs_get (self, "ana", "notes", true, config) == AF_OK);
    assert (config->at == 2000 && config->data [0] == 'B' && config->previous);
    assert (af_configs_get (self, "ana", "notes", false, config) == AF_OK && config->data [0] == 'C');
    //  Per account, per program
    assert (af_configs_get (self, "bob", "notes", false, config) == AF_E_NO_CONFIG);
    assert (af_configs_get (self, "ana", "chess", true, config) == AF_E_NO_CONFIG);
    assert (af_configs_get (self, "", "notes", false, config) == AF_E_MALFORMED);
    assert (af_configs_put (self, "ana", "", 1, (const uint8_t *) "A", 1, &current) == AF_E_MALFORMED);

    //  Quotas: programs with a configuration, and bytes of both versions
    af_configs_set_quota (self, 2, 0);
    assert (af_configs_put (self, "ana", "chess", 1, (const uint8_t *) "K", 1, &current) == AF_OK && current);
    assert (af_configs_put (self, "ana", "maps", 1, (const uint8_t *) "M", 1, &current) == AF_E_QUOTA);
    assert (af_configs_put (self, "ana", "chess", 2, (const uint8_t *) "L", 1, &current) == AF_OK);   //  not new
    assert (af_configs_put (self, "bob", "maps", 1, (const uint8_t *) "M", 1, &current) == AF_OK);    //  per account
    af_configs_set_quota (self, 0, 60);
    uint8_t big [64] = { 0 };
    assert (af_configs_put (self, "bob", "maps", 2, big, sizeof big, &current) == AF_E_QUOTA);
    assert (af_configs_get (self, "bob", "maps", false, config) == AF_OK && config->at == 1);   //  unchanged
    assert (af_configs_put (self, "bob", "maps", 3, big, 16, &current) == AF_OK);
    af_msg_destroy (&config);

    af_configs_destroy (&self);
    af_store_destroy (&store);
    char path [256];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/lock.mdb", dir);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
