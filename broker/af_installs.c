/*  =========================================================================
    af_installs - each device's install list, per account

    See af_installs.h for the guarantees and the key layout.
    =========================================================================
*/
#include "af_installs.h"

#include <sodium.h>

#define KEY_MAX (AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + AF_MAX_PROGRAM)

struct _af_installs_t {
    af_store_t *store;
    MDB_dbi installs;
    MDB_dbi seqs;
    MDB_dbi history;
    MDB_dbi configs;
    MDB_dbi configs_prev;
};

af_installs_t *
af_installs_new (af_store_t *store)
{
    af_installs_t *self = (af_installs_t *) zmalloc (sizeof (af_installs_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "installs", 0, &self->installs)
    ||  af_store_dbi (store, "install_seq", 0, &self->seqs)
    ||  af_store_dbi (store, "history", 0, &self->history)
    ||  af_store_dbi (store, "configs", 0, &self->configs)
    ||  af_store_dbi (store, "configs_prev", 0, &self->configs_prev)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_installs_destroy (af_installs_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  account, 0x00, [device ID], [program]; 0 on a bad argument
static size_t
s_key (uint8_t *key, const char *account, const char *device_id, const char *program)
{
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return 0;
    memcpy (key, account, len + 1);
    len++;
    if (device_id) {
        if (af_id_from_hex (device_id, key + len))
            return 0;
        len += AF_ID_SIZE;
    }
    if (program) {
        size_t plen = strlen (program);
        if (plen == 0 || plen > AF_MAX_PROGRAM)
            return 0;
        memcpy (key + len, program, plen);
        len += plen;
    }
    return len;
}

static uint64_t
s_get_be64 (const uint8_t *p)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | p [i];
    return value;
}

static void
s_put_be64 (uint8_t *p, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        p [i] = (uint8_t) value;
}

static int
s_seq (af_installs_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t *seq)
{
    MDB_val value;
    int rc = af_store_get (txn, self->seqs, key, keylen, &value);
    *seq = rc == 0 && value.mv_size >= 8? s_get_be64 ((const uint8_t *) value.mv_data): 0;
    return rc == MDB_NOTFOUND? 0: rc;
}

//  The seq, and when the device last sent its whole list (0: keep it)
static int
s_put_seq (af_installs_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t seq,
           uint64_t list_at)
{
    uint8_t value [16];
    MDB_val old;
    if (list_at == 0 && af_store_get (txn, self->seqs, key, keylen, &old) == 0 && old.mv_size == 16)
        memcpy (&list_at, (const uint8_t *) old.mv_data + 8, 8);
    s_put_be64 (value, seq);
    memcpy (value + 8, &list_at, 8);
    return af_store_put (txn, self->seqs, key, keylen, value, sizeof value, 0);
}

//  Store one app as an encoded REPORT, in installs and in history
static int
s_put_app (af_installs_t *self, MDB_txn *txn, const char *account, const char *device_id,
           const af_app_t *app)
{
    af_msg_t *record = af_msg_new (AF_MSG_REPORT);
    strcpy (record->op, "install");
    snprintf (record->program, sizeof record->program, "%s", app->program);
    snprintf (record->version_name, sizeof record->version_name, "%s", app->version_name);
    record->version_code = app->version_code;
    snprintf (record->hash, sizeof record->hash, "%s", app->hash);
    record->at = app->at;
    zframe_t *frame = af_msg_encode (record);
    af_msg_destroy (&record);
    if (!frame)
        return -1;
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, device_id, app->program);
    int rc = keylen? af_store_put (txn, self->installs, key, keylen, zframe_data (frame), zframe_size (frame), 0): -1;
    keylen = rc? 0: s_key (key, account, NULL, app->program);
    if (rc == 0)
        rc = keylen? af_store_put (txn, self->history, key, keylen, zframe_data (frame), zframe_size (frame), 0): -1;
    zframe_destroy (&frame);
    return rc;
}

int
af_installs_report (af_installs_t *self, const char *account, const char *device_id, const af_msg_t *report)
{
    bool install = streq (report->op, "install");
    if (!install && !streq (report->op, "uninstall"))
        return -1;
    uint8_t skey [KEY_MAX];
    size_t skeylen = s_key (skey, account, device_id, NULL);
    if (!skeylen)
        return -1;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    uint64_t last = 0;
    if (rc == 0)
        rc = s_seq (self, txn, skey, skeylen, &last);
    if (rc == 0 && report->seq <= last) {
        af_store_abort (&txn);
        return 1;
    }
    if (rc == 0 && install) {
        af_app_t app;
        memset (&app, 0, sizeof app);
        snprintf (app.program, sizeof app.program, "%s", report->program);
        snprintf (app.version_name, sizeof app.version_name, "%s", report->version_name);
        app.version_code = report->version_code;
        snprintf (app.hash, sizeof app.hash, "%s", report->hash);
        app.at = report->at;
        rc = s_put_app (self, txn, account, device_id, &app);
    }
    else
    if (rc == 0) {
        uint8_t key [KEY_MAX];
        size_t keylen = s_key (key, account, device_id, report->program);
        rc = keylen? af_store_del (txn, self->installs, key, keylen): -1;
        if (rc == MDB_NOTFOUND)
            rc = 0;                     //  uninstalling what we never heard of
    }
    if (rc == 0)
        rc = s_put_seq (self, txn, skey, skeylen, report->seq, 0);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (&txn);
    return rc;
}

int
af_installs_replace (af_installs_t *self, const char *account, const char *device_id, const af_msg_t *list)
{
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen)
        return -1;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    uint64_t last = 0;
    if (rc == 0)
        rc = s_seq (self, txn, prefix, plen, &last);
    if (rc == 0 && list->seq < last) {
        af_store_abort (&txn);
        return 1;
    }
    //  Out with the old list...
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = mdb_cursor_open (txn, self->installs, &cursor);
    if (rc == 0) {
        MDB_val key = { plen, prefix }, value;
        int found = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (found == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            rc = mdb_cursor_del (cursor, 0);
            if (rc)
                break;
            found = mdb_cursor_get (cursor, &key, &value, MDB_GET_CURRENT);
            if (found == 0 && !(key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0))
                break;
            if (found)
                found = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    //  ...in with the new
    for (uint32_t i = 0; rc == 0 && i < list->app_count; i++)
        rc = s_put_app (self, txn, account, device_id, &list->apps [i]);
    if (rc == 0)
        rc = s_put_seq (self, txn, prefix, plen, list->seq, (uint64_t) zclock_time ());
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (&txn);
    return rc;
}

uint64_t
af_installs_list_at (af_installs_t *self, const char *account, const char *device_id)
{
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, device_id, NULL);
    uint64_t at = 0;
    MDB_txn *txn = NULL;
    MDB_val value;
    if (keylen && af_store_begin (self->store, false, &txn) == 0
    &&  af_store_get (txn, self->seqs, key, keylen, &value) == 0 && value.mv_size == 16)
        memcpy (&at, (const uint8_t *) value.mv_data + 8, 8);
    af_store_abort (&txn);
    return at;
}

uint64_t
af_installs_seq (af_installs_t *self, const char *account, const char *device_id)
{
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, device_id, NULL);
    uint64_t seq = 0;
    MDB_txn *txn = NULL;
    if (keylen && af_store_begin (self->store, false, &txn) == 0)
        s_seq (self, txn, key, keylen, &seq);
    af_store_abort (&txn);
    return seq;
}

//  Walk a prefix of a table, decoding each value
static int
s_walk (af_installs_t *self, MDB_dbi dbi, const uint8_t *prefix, size_t plen, size_t device_at,
        af_installs_fn *fn, void *arg)
{
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = mdb_cursor_open (txn, dbi, &cursor);
    int result = 0;
    if (rc == 0) {
        MDB_val key = { plen, (void *) prefix }, value;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            char device [AF_ID_HEX + 1] = "";
            if (device_at && key.mv_size >= device_at + AF_ID_SIZE)
                sodium_bin2hex (device, sizeof device, (const uint8_t *) key.mv_data + device_at, AF_ID_SIZE);
            af_msg_t *app = NULL;
            char err [AF_MAX_REASON + 1];
            if (af_msg_decode ((const uint8_t *) value.mv_data, value.mv_size, &app, err, sizeof err,
                               NULL, NULL) == AF_OK && app->id == AF_MSG_REPORT)
                result = fn (device, app, arg);
            else
                zsys_error ("installs: a record is corrupt; skipped");
            af_msg_destroy (&app);
            if (result)
                break;
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    af_store_abort (&txn);
    if (result)
        return result;
    return rc == MDB_NOTFOUND? 0: rc;
}

int
af_installs_each (af_installs_t *self, const char *account, const char *device_id,
                  af_installs_fn *fn, void *arg)
{
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen)
        return -1;
    return s_walk (self, self->installs, prefix, plen, strlen (account) + 1, fn, arg);
}

int
af_installs_history (af_installs_t *self, const char *account, af_installs_fn *fn, void *arg)
{
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, NULL, NULL);
    if (!plen)
        return -1;
    return s_walk (self, self->history, prefix, plen, 0, fn, arg);
}

//  --------------------------------------------------------------------------
//  Configurations

static int
s_config_write (MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t keylen, uint64_t at,
                const void *blob, size_t size)
{
    uint8_t *value = (uint8_t *) malloc (8 + size);
    if (!value)
        return -1;
    memcpy (value, &at, 8);
    memcpy (value + 8, blob, size);
    int rc = af_store_put (txn, dbi, key, keylen, value, 8 + size, 0);
    free (value);
    return rc;
}

int
af_installs_config_put (af_installs_t *self, const char *account, const char *program,
                        uint64_t at, const uint8_t *blob, size_t size)
{
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, NULL, program);
    if (!keylen)
        return -1;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    MDB_val current;
    int found = rc? rc: af_store_get (txn, self->configs, key, keylen, &current);
    uint64_t current_at = 0;
    if (found == 0 && current.mv_size >= 8)
        memcpy (&current_at, current.mv_data, 8);
    int outcome = 0;
    if (rc == 0 && found == 0 && at <= current_at) {
        //  Older (or as old): it loses, and is kept as the previous version
        rc = s_config_write (txn, self->configs_prev, key, keylen, at, blob, size);
        outcome = 1;
    }
    else
    if (rc == 0) {
        if (found == 0)
            rc = af_store_put (txn, self->configs_prev, key, keylen, current.mv_data, current.mv_size, 0);
        else
        if (found != MDB_NOTFOUND)
            rc = found;
        if (rc == 0)
            rc = s_config_write (txn, self->configs, key, keylen, at, blob, size);
    }
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (&txn);
    return rc? rc: outcome;
}

int
af_installs_config_get (af_installs_t *self, const char *account, const char *program,
                        bool previous, af_msg_t *msg)
{
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, NULL, program);
    if (!keylen)
        return MDB_NOTFOUND;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_val value, prev;
    if (rc == 0)
        rc = af_store_get (txn, previous? self->configs_prev: self->configs, key, keylen, &value);
    if (rc == 0 && value.mv_size > 8) {
        memcpy (&msg->at, value.mv_data, 8);
        free (msg->data);
        msg->data_size = (uint32_t) (value.mv_size - 8);
        msg->data = (uint8_t *) malloc (msg->data_size);
        if (msg->data)
            memcpy (msg->data, (const uint8_t *) value.mv_data + 8, msg->data_size);
        else
            rc = -1;
        msg->previous = previous;
        if (af_store_get (txn, self->configs_prev, key, keylen, &prev) == 0 && prev.mv_size >= 8)
            memcpy (&msg->prev_at, prev.mv_data, 8);
    }
    else
    if (rc == 0)
        rc = MDB_NOTFOUND;
    af_store_abort (&txn);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

static int
s_count (const char *device_id, const af_msg_t *app, void *arg)
{
    (void) device_id;
    (void) app;
    (*(int *) arg)++;
    return 0;
}

void
af_installs_test (bool verbose)
{
    if (verbose)
        printf (" * af_installs: ");
    char dir [] = "/tmp/af_installs_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    af_installs_t *self = af_installs_new (store);
    assert (self);
    const char *phone = "00000000000000000000000000000001";
    const char *tv = "00000000000000000000000000000002";
    af_msg_t *report = af_msg_new (AF_MSG_REPORT);
    strcpy (report->op, "install");
    strcpy (report->program, "weixin");
    strcpy (report->version_name, "8.0.48");
    report->seq = 1;
    assert (af_installs_report (self, "ana", phone, report) == 0);
    assert (af_installs_report (self, "ana", phone, report) == 1);      //  a resend changes nothing
    strcpy (report->program, "notes");
    report->seq = 2;
    assert (af_installs_report (self, "ana", phone, report) == 0);
    report->seq = 1;                                                    //  late and stale
    strcpy (report->op, "uninstall");
    assert (af_installs_report (self, "ana", phone, report) == 1);
    int count = 0;
    assert (af_installs_each (self, "ana", phone, s_count, &count) == 0 && count == 2);
    report->seq = 3;
    assert (af_installs_report (self, "ana", phone, report) == 0);
    count = 0;
    assert (af_installs_each (self, "ana", phone, s_count, &count) == 0 && count == 1);
    count = 0;
    assert (af_installs_history (self, "ana", s_count, &count) == 0 && count == 2);   //  notes remembered
    assert (af_installs_seq (self, "ana", phone) == 3);
    strcpy (report->op, "reinstall");
    report->seq = 4;
    assert (af_installs_report (self, "ana", phone, report) == -1);

    //  A whole list replaces the device's, and only that device's
    report->seq = 1;
    strcpy (report->op, "install");
    strcpy (report->program, "chess");
    assert (af_installs_report (self, "ana", tv, report) == 0);
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    list->seq = 10;
    af_msg_set_app_count (list, 2);
    strcpy (list->apps [0].program, "maps");
    strcpy (list->apps [1].program, "music");
    assert (af_installs_replace (self, "ana", phone, list) == 0);
    count = 0;
    assert (af_installs_each (self, "ana", phone, s_count, &count) == 0 && count == 2);
    count = 0;
    assert (af_installs_each (self, "ana", NULL, s_count, &count) == 0 && count == 3);
    assert (af_installs_seq (self, "ana", phone) == 10);
    assert (af_installs_list_at (self, "ana", phone) > 0);
    assert (af_installs_list_at (self, "ana", tv) == 0);
    list->seq = 9;
    assert (af_installs_replace (self, "ana", phone, list) == 1);
    count = 0;
    assert (af_installs_each (self, "bob", NULL, s_count, &count) == 0 && count == 0);

    //  Configurations: the newer wins, the other is kept as previous
    assert (af_installs_config_put (self, "ana", "notes", 2000, (const uint8_t *) "B", 1) == 0);
    assert (af_installs_config_put (self, "ana", "notes", 1000, (const uint8_t *) "A", 1) == 1);
    af_msg_t *config = af_msg_new (AF_MSG_CONFIG);
    assert (af_installs_config_get (self, "ana", "notes", false, config) == 0);
    assert (config->at == 2000 && config->data_size == 1 && config->data [0] == 'B' && config->prev_at == 1000);
    assert (af_installs_config_put (self, "ana", "notes", 3000, (const uint8_t *) "C", 1) == 0);
    assert (af_installs_config_get (self, "ana", "notes", true, config) == 0);
    assert (config->at == 2000 && config->data [0] == 'B');
    assert (af_installs_config_get (self, "bob", "notes", false, config) == MDB_NOTFOUND);
    af_msg_destroy (&config);

    af_msg_destroy (&list);
    af_msg_destroy (&report);
    af_installs_destroy (&self);
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
