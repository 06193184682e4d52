/*  =========================================================================
    af_backups - each account's app backups

    See af_backups.h for the guarantees and the key layout.
    =========================================================================
*/
#include "af_backups.h"

#include <errno.h>
#include <unistd.h>

#define KEY_MAX (AF_MAX_ACCOUNT + 1 + AF_MAX_PROGRAM + 1 + AF_MAX_VERSION_NAME)

struct _af_backups_t {
    af_store_t *store;
    MDB_dbi backups;
    size_t max_count;               //  0: no limit
    uint64_t max_bytes;
};

af_backups_t *
af_backups_new (af_store_t *store)
{
    af_backups_t *self = (af_backups_t *) zmalloc (sizeof (af_backups_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "backups", 0, &self->backups)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_backups_destroy (af_backups_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
af_backups_set_quota (af_backups_t *self, size_t max_count, uint64_t max_bytes)
{
    assert (self);
    self->max_count = max_count;
    self->max_bytes = max_bytes;
}

//  account, 0x00 [, program, 0x00 [, versionName]]; 0 on a bad argument
static size_t
s_key (uint8_t *key, const char *account, const char *program, const char *version)
{
    size_t alen = strlen (account), plen = program? strlen (program): 0, vlen = version? strlen (version): 0;
    if (alen == 0 || alen > AF_MAX_ACCOUNT || plen > AF_MAX_PROGRAM || vlen > AF_MAX_VERSION_NAME
    ||  (version && (!plen || !vlen)))
        return 0;
    memcpy (key, account, alen + 1);
    size_t len = alen + 1;
    if (plen) {
        memcpy (key + len, program, plen + 1);
        len += plen + 1;
    }
    memcpy (key + len, version? version: "", vlen);
    return len + vlen;
}

//  Called for each backup under a prefix, decoded; return non-zero to stop
typedef int (s_each_fn) (af_msg_t *put, const MDB_val *key, size_t value_size, void *arg);

//  Each backup whose key starts with prefix, in key order. 0, or an LMDB
//  code, or what fn returned. A value that does not decode is logged and
//  skipped (it cannot be restored, and must not hide the others).
static int
s_each (af_backups_t *self, MDB_txn *txn, const uint8_t *prefix, size_t plen, s_each_fn *fn, void *arg)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->backups, &cursor);
    if (rc)
        return rc;
    MDB_val key = { plen, (void *) prefix }, value;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size > plen && memcmp (key.mv_data, prefix, plen) == 0) {
        af_msg_t *put = NULL;
        char err [AF_MAX_REASON + 1];
        if (af_msg_decode ((const uint8_t *) value.mv_data, value.mv_size, &put, err, sizeof err, NULL, NULL)
            != AF_OK || put->id != AF_MSG_BACKUP_PUT || put->backup_count != 1)
            zsys_warning ("backups: a stored backup does not decode (%s); skipped", err);
        else {
            int stop = fn (put, &key, value.mv_size, arg);
            if (stop) {
                af_msg_destroy (&put);
                mdb_cursor_close (cursor);
                return stop;
            }
        }
        af_msg_destroy (&put);
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return rc == MDB_NOTFOUND? 0: rc;
}

//  What a put needs to know: the account's usage, and the program's oldest
typedef struct {
    size_t count;
    uint64_t bytes;
    const char *program;
    size_t versions;                //  of the program
    uint8_t oldest [KEY_MAX];       //  its oldest version's key
    size_t oldest_len;
    uint64_t oldest_at;
    uint64_t oldest_size;
    const char *version;            //  the one being put
    uint64_t same_size;             //  its value's size, if it is there (0: new)
} usage_t;

static int
s_usage_one (af_msg_t *put, const MDB_val *key, size_t value_size, void *arg)
{
    usage_t *usage = (usage_t *) arg;
    const af_backup_t *entry = &put->backups [0];
    usage->count++;
    usage->bytes += value_size;
    if (!streq (entry->program, usage->program))
        return 0;
    if (streq (entry->version_name, usage->version))
        usage->same_size = value_size;
    usage->versions++;
    if (!usage->oldest_len || entry->at < usage->oldest_at) {
        memcpy (usage->oldest, key->mv_data, key->mv_size);
        usage->oldest_len = key->mv_size;
        usage->oldest_at = entry->at;
        usage->oldest_size = value_size;
    }
    return 0;
}

//  The value: the BACKUP_PUT as stored
static zframe_t *
s_value (const af_backup_t *entry, const uint8_t *config, size_t size)
{
    af_msg_t *put = af_msg_new (AF_MSG_BACKUP_PUT);
    af_msg_set_backup_count (put, 1);
    put->backups [0] = *entry;
    put->backups [0].config_size = (uint32_t) size;
    if (size) {
        put->data = (uint8_t *) malloc (size);
        assert (put->data);
        memcpy (put->data, config, size);
        put->data_size = (uint32_t) size;
    }
    zframe_t *frame = af_msg_encode (put);
    af_msg_destroy (&put);
    return frame;
}

int
af_backups_put (af_backups_t *self, const char *account, const af_backup_t *entry,
                const uint8_t *config, size_t size)
{
    assert (self && entry);
    uint8_t key [KEY_MAX], prefix [KEY_MAX];
    size_t keylen = s_key (key, account, entry->program, entry->version_name);
    size_t plen = s_key (prefix, account, NULL, NULL);
    if (!keylen || !*entry->program || size > AF_MAX_CONFIG)
        return AF_E_MALFORMED;
    zframe_t *value = s_value (entry, config, size);
    if (!value)
        return AF_E_MALFORMED;
    usage_t usage = { 0, 0, entry->program, 0, { 0 }, 0, 0, 0, entry->version_name, 0 };
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = s_each (self, txn, prefix, plen, s_usage_one, &usage);
    //  A program's ninth version replaces its oldest, and is no new backup
    bool replace_oldest = !usage.same_size && usage.versions >= AF_MAX_BACKUP_VERSIONS;
    size_t count = usage.count + (usage.same_size || replace_oldest? 0: 1);
    uint64_t bytes = usage.bytes - usage.same_size - (replace_oldest? usage.oldest_size: 0) + zframe_size (value);
    int code = AF_OK;
    if (rc == 0 && ((self->max_count && count > self->max_count)
                ||  (self->max_bytes && bytes > self->max_bytes && bytes > usage.bytes)))
        code = AF_E_QUOTA;
    if (rc == 0 && code == AF_OK && replace_oldest)
        rc = af_store_del (txn, self->backups, usage.oldest, usage.oldest_len);
    if (rc == 0 && code == AF_OK)
        rc = af_store_put (txn, self->backups, key, keylen, zframe_data (value), zframe_size (value), 0);
    if (rc == 0 && code == AF_OK)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    zframe_destroy (&value);
    return rc? af_store_code (rc): code;
}

//  Listing: each entry copied, then each program's newest first
static int
s_list_one (af_msg_t *put, const MDB_val *key, size_t value_size, void *arg)
{
    (void) key;
    (void) value_size;
    zlistx_t *entries = (zlistx_t *) arg;
    if (zlistx_size (entries) >= AF_MAX_BACKUPS)
        return 0;
    af_backup_t *entry = (af_backup_t *) malloc (sizeof (af_backup_t));
    assert (entry);
    *entry = put->backups [0];
    zlistx_add_end (entries, entry);
    return 0;
}

static int
s_newest_first (const void *a, const void *b)
{
    const af_backup_t *x = (const af_backup_t *) a, *y = (const af_backup_t *) b;
    int by_program = strcmp (x->program, y->program);
    if (by_program)
        return by_program;
    if (x->at != y->at)
        return x->at > y->at? -1: 1;
    return strcmp (x->version_name, y->version_name);
}

static void
s_entries_into (zlistx_t *entries, af_msg_t *list)
{
    af_msg_set_backup_count (list, (uint32_t) zlistx_size (entries));
    uint32_t i = 0;
    for (af_backup_t *entry = (af_backup_t *) zlistx_first (entries); entry;
         entry = (af_backup_t *) zlistx_next (entries))
        list->backups [i++] = *entry;
    if (list->backup_count)             //  qsort's base may not be NULL, even for none
        qsort (list->backups, list->backup_count, sizeof (af_backup_t), s_newest_first);
}

static void
s_free_entry (void **item)
{
    free (*item);
    *item = NULL;
}

int
af_backups_list (af_backups_t *self, const char *account, const char *program, af_msg_t *list)
{
    assert (self && list);
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, program && *program? program: NULL, NULL);
    if (!plen)
        return AF_E_MALFORMED;
    zlistx_t *entries = zlistx_new ();
    assert (entries);
    zlistx_set_destructor (entries, s_free_entry);
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    if (rc == 0)
        rc = s_each (self, txn, prefix, plen, s_list_one, entries);
    af_store_abort (self->store, &txn);
    if (rc == 0)
        s_entries_into (entries, list);
    zlistx_destroy (&entries);
    return af_store_code (rc);
}

int
af_backups_get (af_backups_t *self, const char *account, const char *program,
                const char *version_name, af_msg_t *list)
{
    assert (self && list);
    int code = af_backups_list (self, account, program, list);
    if (code != AF_OK)
        return code;
    if (!program || !*program || list->backup_count == 0)
        return AF_E_NO_BACKUP;
    //  The newest is first; else the version asked for
    const af_backup_t *chosen = NULL;
    for (uint32_t i = 0; i < list->backup_count && !chosen; i++)
        if (!version_name || !*version_name || streq (list->backups [i].version_name, version_name))
            chosen = &list->backups [i];
    if (!chosen)
        return AF_E_NO_VERSION;
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, program, chosen->version_name);
    MDB_txn *txn = NULL;
    MDB_val value;
    int rc = af_store_begin (self->store, false, &txn);
    int found = rc? rc: af_store_get (txn, self->backups, key, keylen, &value);
    af_msg_t *put = NULL;
    char err [AF_MAX_REASON + 1];
    if (found == 0 && af_msg_decode ((const uint8_t *) value.mv_data, value.mv_size, &put, err, sizeof err,
                                     NULL, NULL) != AF_OK)
        found = MDB_NOTFOUND;           //  cannot happen: listed means decoded
    af_store_abort (self->store, &txn);
    if (found) {
        af_msg_destroy (&put);
        return found == MDB_NOTFOUND? AF_E_NO_BACKUP: af_store_code (found);
    }
    af_msg_set_backup_count (list, 1);
    list->backups [0] = put->backups [0];
    free (list->data);
    list->data = put->data;
    list->data_size = put->data_size;
    put->data = NULL;
    af_msg_destroy (&put);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_entry (af_backup_t *entry, const char *program, const char *version, uint64_t at)
{
    memset (entry, 0, sizeof *entry);
    snprintf (entry->program, sizeof entry->program, "%s", program);
    snprintf (entry->version_name, sizeof entry->version_name, "%s", version);
    snprintf (entry->platform, sizeof entry->platform, "android");
    entry->version_code = at;
    entry->at = at;
}

void
af_backups_test (bool verbose)
{
    printf (" * af_backups: ");
    char dir [] = "/tmp/af_backups_test_XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    assert (store);
    af_backups_t *self = af_backups_new (store);
    assert (self);
    af_backup_t entry;
    af_msg_t *list = af_msg_new (AF_MSG_BACKUP_LIST);
    //  Nothing yet: no backup; bad names refused
    assert (af_backups_get (self, "ana", "weixin", NULL, list) == AF_E_NO_BACKUP);
    s_entry (&entry, "weixin", "", 1);
    assert (af_backups_put (self, "ana", &entry, NULL, 0) == AF_E_MALFORMED);
    //  Two versions, one with a configuration; the newest is the default
    s_entry (&entry, "weixin", "8.0.40", 100);
    assert (af_backups_put (self, "ana", &entry, (const uint8_t *) "sealed", 6) == AF_OK);
    s_entry (&entry, "weixin", "8.0.48", 200);
    assert (af_backups_put (self, "ana", &entry, NULL, 0) == AF_OK);
    assert (af_backups_get (self, "ana", "weixin", NULL, list) == AF_OK);
    assert (list->backup_count == 1 && streq (list->backups [0].version_name, "8.0.48") && list->data_size == 0);
    assert (af_backups_get (self, "ana", "weixin", "8.0.40", list) == AF_OK);
    assert (list->data_size == 6 && memcmp (list->data, "sealed", 6) == 0 && list->backups [0].config_size == 6);
    assert (af_backups_get (self, "ana", "weixin", "7.0", list) == AF_E_NO_VERSION && list->backup_count == 2);
    //  Another account sees none of them, even with a name that prefixes
    assert (af_backups_get (self, "an", "weixin", NULL, list) == AF_E_NO_BACKUP);
    assert (af_backups_list (self, "anab", NULL, list) == AF_OK && list->backup_count == 0);
    //  At most AF_MAX_BACKUP_VERSIONS versions: the oldest goes
    for (int i = 0; i < AF_MAX_BACKUP_VERSIONS; i++) {
        char version [16];
        snprintf (version, sizeof version, "9.%d", i);
        s_entry (&entry, "weixin", version, 300 + (uint64_t) i);
        assert (af_backups_put (self, "ana", &entry, NULL, 0) == AF_OK);
    }
    assert (af_backups_list (self, "ana", "weixin", list) == AF_OK);
    assert (list->backup_count == AF_MAX_BACKUP_VERSIONS);
    assert (af_backups_get (self, "ana", "weixin", "8.0.40", list) == AF_E_NO_VERSION);
    //  The account's quota: a new backup past it is refused, a replacement taken
    af_backups_set_quota (self, AF_MAX_BACKUP_VERSIONS + 1, 0);
    s_entry (&entry, "telegram", "10.1", 500);
    assert (af_backups_put (self, "ana", &entry, NULL, 0) == AF_OK);
    s_entry (&entry, "signal", "7.0", 600);
    assert (af_backups_put (self, "ana", &entry, NULL, 0) == AF_E_QUOTA);
    s_entry (&entry, "telegram", "10.1", 700);
    assert (af_backups_put (self, "ana", &entry, NULL, 0) == AF_OK);
    assert (af_backups_put (self, "bob", &entry, NULL, 0) == AF_OK);
    af_backups_set_quota (self, 0, 1);
    assert (af_backups_put (self, "bob", &entry, (const uint8_t *) "more", 4) == AF_E_QUOTA);
    assert (af_backups_list (self, "ana", NULL, list) == AF_OK && list->backup_count == AF_MAX_BACKUP_VERSIONS + 1);
    assert (streq (list->backups [0].program, "telegram") && streq (list->backups [1].version_name, "9.7"));
    af_msg_destroy (&list);
    af_backups_destroy (&self);
    af_store_destroy (&store);
    char path [256];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/lock.mdb", dir);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("(%d versions kept per program) ", AF_MAX_BACKUP_VERSIONS);
    printf ("OK\n");
}
