/*  =========================================================================
    af_lists - each device's install list, per account

    See af_lists.h for the guarantees and the key layout. Internally,
    helpers return LMDB codes (and -1 for a bad argument or an encoding
    failure); the public functions map them once, at the end.
    =========================================================================
*/
#include "af_lists.h"
#include "af_bytes.h"

#include <sodium.h>

#define KEY_MAX (AF_MAX_ACCOUNT + 1 + AF_ID_SIZE + AF_MAX_PROGRAM)

struct _af_lists_t {
    af_store_t *store;
    MDB_dbi installs;
    MDB_dbi seqs;
    MDB_dbi history;
};

af_lists_t *
af_lists_new (af_store_t *store)
{
    af_lists_t *self = (af_lists_t *) zmalloc (sizeof (af_lists_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "installs", 0, &self->installs)
    ||  af_store_dbi (store, "install_seq", 0, &self->seqs)
    ||  af_store_dbi (store, "history", 0, &self->history)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_lists_destroy (af_lists_t **self_p)
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
        if (af_id_from_hex (device_id, key + len) != AF_OK)
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

//  Our code for an internal result: -1 is a bad argument, else LMDB's
static int
s_code (int rc, const char *what)
{
    if (rc == -1)
        return AF_E_MALFORMED;
    if (rc)
        zsys_error ("lists: cannot %s: %s", what, mdb_strerror (rc));
    return af_store_code (rc);
}

static int
s_seq (af_lists_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t *seq, uint64_t *list_at)
{
    MDB_val value;
    int rc = af_store_get (txn, self->seqs, key, keylen, &value);
    *seq = rc == 0 && value.mv_size >= 8? af_get_be64 ((const uint8_t *) value.mv_data): 0;
    if (list_at) {
        *list_at = 0;
        if (rc == 0 && value.mv_size == 16)
            memcpy (list_at, (const uint8_t *) value.mv_data + 8, 8);
    }
    return rc == MDB_NOTFOUND? 0: rc;
}

//  The seq, and when the device last sent its whole list (0: keep it)
static int
s_put_seq (af_lists_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, uint64_t seq,
           uint64_t list_at)
{
    uint8_t value [16];
    MDB_val old;
    if (list_at == 0 && af_store_get (txn, self->seqs, key, keylen, &old) == 0 && old.mv_size == 16)
        memcpy (&list_at, (const uint8_t *) old.mv_data + 8, 8);
    af_put_be64 (value, seq);
    memcpy (value + 8, &list_at, 8);
    return af_store_put (txn, self->seqs, key, keylen, value, sizeof value, 0);
}

//  Store one app as an encoded REPORT, in installs and in history
static int
s_put_app (af_lists_t *self, MDB_txn *txn, const char *account, const char *device_id,
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
af_lists_report (af_lists_t *self, const char *account, const char *device_id, const af_msg_t *report,
                 bool *applied)
{
    assert (self && report && applied);
    *applied = false;
    bool install = streq (report->op, "install");
    if (!install && !streq (report->op, "uninstall"))
        return AF_E_MALFORMED;
    uint8_t skey [KEY_MAX];
    size_t skeylen = s_key (skey, account, device_id, NULL);
    if (!skeylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    uint64_t last = 0;
    if (rc == 0)
        rc = s_seq (self, txn, skey, skeylen, &last, NULL);
    if (rc == 0 && report->seq <= last) {
        af_store_abort (self->store, &txn);
        return AF_OK;                   //  a repeat, applied before
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
    af_store_abort (self->store, &txn);
    *applied = rc == 0;
    return s_code (rc, "store a report");
}

int
af_lists_replace (af_lists_t *self, const char *account, const char *device_id, const af_msg_t *list,
                  bool *applied)
{
    assert (self && list && applied);
    *applied = false;
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    uint64_t last = 0;
    if (rc == 0)
        rc = s_seq (self, txn, prefix, plen, &last, NULL);
    if (rc == 0 && list->seq < last) {
        af_store_abort (self->store, &txn);
        return AF_OK;                   //  stale
    }
    //  Out with the old list...
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = mdb_cursor_open (txn, self->installs, &cursor);
    if (rc == 0) {
        MDB_val key = { plen, prefix }, value;
        int found = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (found == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            rc = af_store_cursor_del (cursor);
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
    af_store_abort (self->store, &txn);
    *applied = rc == 0;
    return s_code (rc, "store a whole list");
}

int
af_lists_seq (af_lists_t *self, const char *account, const char *device_id, uint64_t *seq, uint64_t *list_at)
{
    assert (self);
    uint64_t seq_value = 0, at_value = 0;
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, device_id, NULL);
    int rc = keylen? 0: -1;
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = af_store_begin (self->store, false, &txn);
    if (rc == 0)
        rc = s_seq (self, txn, key, keylen, &seq_value, &at_value);
    af_store_abort (self->store, &txn);
    if (rc)
        seq_value = at_value = 0;
    if (seq)
        *seq = seq_value;
    if (list_at)
        *list_at = at_value;
    return s_code (rc, "read a report seq");
}

int
af_lists_drop_txn (af_lists_t *self, MDB_txn *txn, const char *account, const char *device_id)
{
    assert (self && txn);
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen)
        return AF_E_MALFORMED;
    MDB_cursor *cursor = NULL;
    int rc = mdb_cursor_open (txn, self->installs, &cursor);
    if (rc == 0) {
        MDB_val key = { plen, prefix }, value;
        int found = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && found == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            rc = af_store_cursor_del (cursor);
            if (rc == 0)
                found = mdb_cursor_get (cursor, &key, &value, MDB_GET_CURRENT);
            if (rc == 0 && found == 0 && !(key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0))
                break;
            if (rc == 0 && found)
                found = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    if (rc == 0) {
        rc = af_store_del (txn, self->seqs, prefix, plen);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return s_code (rc, "drop a device's list");
}

//  Walk a prefix of a table, decoding each value
static int
s_walk (af_lists_t *self, MDB_dbi dbi, const uint8_t *prefix, size_t plen, size_t device_at,
        af_lists_fn *fn, void *arg)
{
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = mdb_cursor_open (txn, dbi, &cursor);
    if (rc == 0) {
        MDB_val key = { plen, (void *) prefix }, value;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
            char device [AF_ID_HEX + 1] = "";
            if (device_at && key.mv_size >= device_at + AF_ID_SIZE)
                sodium_bin2hex (device, sizeof device, (const uint8_t *) key.mv_data + device_at, AF_ID_SIZE);
            af_msg_t *app = NULL;
            char err [AF_MAX_REASON + 1];
            int result = 0;
            if (af_msg_decode ((const uint8_t *) value.mv_data, value.mv_size, &app, err, sizeof err,
                               NULL, NULL) == AF_OK && app->id == AF_MSG_REPORT)
                result = fn (device, app, arg);
            else
                zsys_error ("lists: a record is corrupt; skipped");
            af_msg_destroy (&app);
            if (result)
                break;
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    af_store_abort (self->store, &txn);
    return s_code (rc == MDB_NOTFOUND? 0: rc, "read install lists");
}

int
af_lists_each (af_lists_t *self, const char *account, const char *device_id,
               af_lists_fn *fn, void *arg)
{
    assert (self && fn);
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen)
        return AF_E_MALFORMED;
    return s_walk (self, self->installs, prefix, plen, strlen (account) + 1, fn, arg);
}

int
af_lists_has (af_lists_t *self, const char *account, const char *device_id, const char *program, bool *found)
{
    assert (self && device_id && program && found);
    *found = false;
    uint8_t key [KEY_MAX];
    size_t len = s_key (key, account, device_id, program);
    if (!len)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_val value;
    if (rc == 0)
        rc = af_store_get (txn, self->installs, key, len, &value);
    af_store_abort (self->store, &txn);
    *found = rc == 0;
    return s_code (rc == MDB_NOTFOUND? 0: rc, "read an install list");
}

int
af_lists_history (af_lists_t *self, const char *account, af_lists_fn *fn, void *arg)
{
    assert (self && fn);
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, NULL, NULL);
    if (!plen)
        return AF_E_MALFORMED;
    return s_walk (self, self->history, prefix, plen, 0, fn, arg);
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
af_lists_test (bool verbose)
{
    if (verbose)
        printf (" * af_lists: ");
    char dir [] = "/tmp/af_lists_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    af_lists_t *self = af_lists_new (store);
    assert (self);
    const char *phone = "00000000000000000000000000000001";
    const char *tv = "00000000000000000000000000000002";
    bool applied;
    af_msg_t *report = af_msg_new (AF_MSG_REPORT);
    strcpy (report->op, "install");
    strcpy (report->program, "weixin");
    strcpy (report->version_name, "8.0.48");
    report->seq = 1;
    assert (af_lists_report (self, "ana", phone, report, &applied) == AF_OK && applied);
    assert (af_lists_report (self, "ana", phone, report, &applied) == AF_OK && !applied);  //  a resend
    strcpy (report->program, "notes");
    report->seq = 2;
    assert (af_lists_report (self, "ana", phone, report, &applied) == AF_OK && applied);
    report->seq = 1;                                                    //  late and stale
    strcpy (report->op, "uninstall");
    assert (af_lists_report (self, "ana", phone, report, &applied) == AF_OK && !applied);
    int count = 0;
    assert (af_lists_each (self, "ana", phone, s_count, &count) == AF_OK && count == 2);
    report->seq = 3;
    assert (af_lists_report (self, "ana", phone, report, &applied) == AF_OK && applied);
    count = 0;
    assert (af_lists_each (self, "ana", phone, s_count, &count) == AF_OK && count == 1);
    bool found;
    assert (af_lists_has (self, "ana", phone, "weixin", &found) == AF_OK && found);
    assert (af_lists_has (self, "ana", phone, "notes", &found) == AF_OK && !found);     //  uninstalled
    assert (af_lists_has (self, "ana", tv, "weixin", &found) == AF_OK && !found);       //  another device
    assert (af_lists_has (self, "bob", phone, "weixin", &found) == AF_OK && !found);    //  another account
    assert (af_lists_has (self, "ana", phone, "weixi", &found) == AF_OK && !found);     //  a prefix is not it
    assert (af_lists_has (self, "ana", "not-an-id", "weixin", &found) == AF_E_MALFORMED && !found);
    count = 0;
    assert (af_lists_history (self, "ana", s_count, &count) == AF_OK && count == 2);   //  notes remembered
    uint64_t seq, list_at;
    assert (af_lists_seq (self, "ana", phone, &seq, NULL) == AF_OK && seq == 3);
    strcpy (report->op, "reinstall");
    report->seq = 4;
    assert (af_lists_report (self, "ana", phone, report, &applied) == AF_E_MALFORMED && !applied);
    strcpy (report->op, "install");
    assert (af_lists_report (self, "ana", "not-an-id", report, &applied) == AF_E_MALFORMED);
    assert (af_lists_each (self, "", NULL, s_count, &count) == AF_E_MALFORMED);

    //  A whole list replaces the device's, and only that device's
    report->seq = 1;
    strcpy (report->program, "chess");
    assert (af_lists_report (self, "ana", tv, report, &applied) == AF_OK && applied);
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    list->seq = 10;
    af_msg_set_app_count (list, 2);
    strcpy (list->apps [0].program, "maps");
    strcpy (list->apps [1].program, "music");
    assert (af_lists_replace (self, "ana", phone, list, &applied) == AF_OK && applied);
    count = 0;
    assert (af_lists_each (self, "ana", phone, s_count, &count) == AF_OK && count == 2);
    count = 0;
    assert (af_lists_each (self, "ana", NULL, s_count, &count) == AF_OK && count == 3);
    assert (af_lists_seq (self, "ana", phone, &seq, &list_at) == AF_OK && seq == 10 && list_at > 0);
    assert (af_lists_seq (self, "ana", tv, &seq, &list_at) == AF_OK && seq == 1 && list_at == 0);
    list->seq = 9;
    assert (af_lists_replace (self, "ana", phone, list, &applied) == AF_OK && !applied);
    count = 0;
    assert (af_lists_each (self, "bob", NULL, s_count, &count) == AF_OK && count == 0);

    //  A removed device's list and seq go; the account's history stays
    MDB_txn *txn = NULL;
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_lists_drop_txn (self, txn, "ana", phone) == AF_OK);
    assert (af_store_commit (store, &txn) == 0);
    count = 0;
    assert (af_lists_each (self, "ana", phone, s_count, &count) == AF_OK && count == 0);
    assert (af_lists_seq (self, "ana", phone, &seq, NULL) == AF_OK && seq == 0);
    count = 0;
    assert (af_lists_each (self, "ana", tv, s_count, &count) == AF_OK && count == 1);
    count = 0;
    assert (af_lists_history (self, "ana", s_count, &count) == AF_OK && count >= 4);

    af_msg_destroy (&list);
    af_msg_destroy (&report);
    af_lists_destroy (&self);
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
