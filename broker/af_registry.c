/*  =========================================================================
    af_registry - accounts and their devices, durable in LMDB

    Passwords are kept only as crypto_pwhash_str strings (Argon2id with a
    per-hash random salt); verification is constant-time inside libsodium.
    A device is bound to the CURVE key it first logged in with: that key,
    proven by the CURVE handshake, is what lets a node log in again after
    a reconnect without the user's password, and what stops another node
    from claiming the device.
    =========================================================================
*/
#include "af_registry.h"
#include "af_store.h"
#include "af_msg.h"

#include <assert.h>
#include <ctype.h>
#include <msgpack.h>
#include <sodium.h>
#include <time.h>

struct _af_registry_t {
    af_store_t *store;
    MDB_dbi accounts;
    MDB_dbi devices;
    MDB_dbi keys;
    MDB_dbi removed;
    af_pwcost_t cost;
};

#define DEVICE_HEADER (AF_KEY_Z85 + 8)

af_registry_t *
af_registry_new (const char *dir, af_pwcost_t cost, size_t mapsize)
{
    af_registry_t *self = (af_registry_t *) zmalloc (sizeof (af_registry_t));
    assert (self);
    self->cost = cost;
    self->store = af_store_new (dir, mapsize? mapsize: (size_t) 4 << 30, 32, false);
    if (!self->store
    ||  af_store_dbi (self->store, "accounts", 0, &self->accounts)
    ||  af_store_dbi (self->store, "devices", 0, &self->devices)
    ||  af_store_dbi (self->store, "keys", 0, &self->keys)
    ||  af_store_dbi (self->store, "removed", 0, &self->removed))
        af_registry_destroy (&self);
    return self;
}

void
af_registry_destroy (af_registry_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        af_store_destroy (&(*self_p)->store);
        free (*self_p);
        *self_p = NULL;
    }
}

int
af_registry_check_name (const char *account, char *err, size_t errlen)
{
    size_t len = strlen (account);
    bool ok = len >= AF_MIN_ACCOUNT && len <= AF_MAX_ACCOUNT
           && (islower ((unsigned char) account [0]) || isdigit ((unsigned char) account [0]));
    for (size_t i = 0; ok && i < len; i++) {
        char c = account [i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        snprintf (err, errlen, "account names are %d..%d characters of a-z 0-9 . _ -, "
                  "starting with a letter or digit", AF_MIN_ACCOUNT, AF_MAX_ACCOUNT);
        return -1;
    }
    return 0;
}

//  Device key: account 0x00 id(16)
static size_t
s_device_key (uint8_t *key, const char *account, const uint8_t *id)
{
    size_t len = strlen (account);
    memcpy (key, account, len);
    key [len] = 0;
    memcpy (key + len + 1, id, AF_ID_SIZE);
    return len + 1 + AF_ID_SIZE;
}

static size_t
s_keys_key (uint8_t *key, const char *account, const char *z85)
{
    size_t len = strlen (account);
    memcpy (key, account, len);
    key [len] = 0;
    memcpy (key + len + 1, z85, AF_KEY_Z85);
    return len + 1 + AF_KEY_Z85;
}

int
af_registry_check_new (af_registry_t *self, const char *account, const char *password,
                       char *err, size_t errlen)
{
    assert (self);
    if (af_registry_check_name (account, err, errlen))
        return AF_E_MALFORMED;
    size_t plen = strlen (password);
    if (plen < AF_MIN_PASSWORD || plen > AF_MAX_PASSWORD) {
        snprintf (err, errlen, "passwords are %d..%d bytes", AF_MIN_PASSWORD, AF_MAX_PASSWORD);
        return AF_E_MALFORMED;
    }
    if (af_registry_exists (self, account)) {
        snprintf (err, errlen, "account '%s' already exists", account);
        return AF_E_ACCOUNT_EXISTS;
    }
    return AF_OK;
}

int
af_registry_create (af_registry_t *self, const char *account, const char *pwhash, char *err, size_t errlen)
{
    assert (self && pwhash);
    if (af_registry_check_name (account, err, errlen))
        return AF_E_MALFORMED;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    msgpack_pack_str_with_body (&pk, "pwhash", 6);
    msgpack_pack_str_with_body (&pk, pwhash, strlen (pwhash));
    msgpack_pack_str_with_body (&pk, "created", 7);
    msgpack_pack_uint64 (&pk, (uint64_t) zclock_time ());

    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc == 0)
        rc = af_store_put (txn, self->accounts, account, strlen (account),
                           buffer.data, buffer.size, MDB_NOOVERWRITE);
    msgpack_sbuffer_destroy (&buffer);
    if (rc == MDB_KEYEXIST) {
        af_store_abort (self->store, &txn);
        snprintf (err, errlen, "account '%s' already exists", account);
        return AF_E_ACCOUNT_EXISTS;
    }
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    af_store_abort (self->store, &txn);
    if (rc) {
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

int
af_registry_register (af_registry_t *self, const char *account, const char *password,
                      char *err, size_t errlen)
{
    int code = af_registry_check_new (self, account, password, err, errlen);
    if (code != AF_OK)
        return code;
    char hash [crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str (hash, password, strlen (password), self->cost.opslimit, self->cost.memlimit)) {
        snprintf (err, errlen, "password hashing ran out of memory");
        return AF_E_INTERNAL;
    }
    return af_registry_create (self, account, hash, err, errlen);
}

bool
af_registry_exists (af_registry_t *self, const char *account)
{
    MDB_txn *txn = NULL;
    MDB_val value;
    bool exists = af_store_begin (self->store, false, &txn) == 0
               && af_store_get (txn, self->accounts, account, strlen (account), &value) == 0;
    af_store_abort (self->store, &txn);
    return exists;
}

int
af_registry_pwhash (af_registry_t *self, const char *account, char *hash_out)
{
    assert (self && hash_out);
    *hash_out = 0;
    MDB_txn *txn = NULL;
    MDB_val value;
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    int rc = af_store_get (txn, self->accounts, account, strlen (account), &value);
    if (rc) {
        af_store_abort (self->store, &txn);
        return rc == MDB_NOTFOUND? AF_E_NO_ACCOUNT: AF_E_INTERNAL;
    }
    //  Copy the hash out of the map before the transaction ends
    msgpack_zone zone;
    msgpack_zone_init (&zone, 256);
    msgpack_object root;
    size_t offset = 0;
    if (msgpack_unpack ((const char *) value.mv_data, value.mv_size, &offset, &zone, &root)
            == MSGPACK_UNPACK_SUCCESS && root.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < root.via.map.size; i++) {
            msgpack_object_kv *kv = &root.via.map.ptr [i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 6
            &&  memcmp (kv->key.via.str.ptr, "pwhash", 6) == 0
            &&  kv->val.type == MSGPACK_OBJECT_STR && kv->val.via.str.size < crypto_pwhash_STRBYTES) {
                memcpy (hash_out, kv->val.via.str.ptr, kv->val.via.str.size);
                hash_out [kv->val.via.str.size] = 0;
            }
        }
    }
    msgpack_zone_destroy (&zone);
    af_store_abort (self->store, &txn);
    if (!*hash_out) {
        zsys_error ("registry: account '%s' has a corrupt record", account);
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

int
af_registry_verify (af_registry_t *self, const char *account, const char *password)
{
    char hash [crypto_pwhash_STRBYTES];
    int code = af_registry_pwhash (self, account, hash);
    if (code != AF_OK)
        return code;
    return crypto_pwhash_str_verify (hash, password, strlen (password)) == 0? AF_OK: AF_E_BAD_PASSWORD;
}

static int
s_count_devices (af_registry_t *self, MDB_txn *txn, const char *account, uint32_t *count)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->devices, &cursor);
    if (rc)
        return rc;
    size_t plen = strlen (account) + 1;
    uint8_t prefix [AF_MAX_ACCOUNT + 1];
    memcpy (prefix, account, plen);
    MDB_val key = { plen, prefix }, value;
    *count = 0;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == plen + AF_ID_SIZE && memcmp (key.mv_data, prefix, plen) == 0) {
        (*count)++;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return rc == MDB_NOTFOUND? 0: rc;
}

int
af_registry_login (af_registry_t *self, const char *account, const char *device_id,
                   const char *key, const af_device_t *device, uint64_t now,
                   char *id_out, char *err, size_t errlen)
{
    assert (self);
    assert (strlen (key) == AF_KEY_Z85);
    uint8_t id [AF_ID_SIZE];
    uint8_t dkey [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    uint8_t kkey [AF_MAX_ACCOUNT + 1 + AF_KEY_Z85];
    size_t kkey_len = s_keys_key (kkey, account, key);
    uint64_t created = now;
    MDB_val value;
    MDB_txn *txn = NULL;
    int code = AF_E_INTERNAL;
    int rc = af_store_begin (self->store, true, &txn);
    if (rc)
        goto failed;
    if (af_store_get (txn, self->accounts, account, strlen (account), &value)) {
        snprintf (err, errlen, "no account '%s'", account);
        code = AF_E_NO_ACCOUNT;
        goto refused;
    }
    if (*device_id) {
        if (af_id_from_hex (device_id, id) != AF_OK) {
            snprintf (err, errlen, "device ID '%s' is not %d lowercase hex digits", device_id, AF_ID_HEX);
            code = AF_E_MALFORMED;
            goto refused;
        }
        rc = af_store_get (txn, self->devices, dkey, s_device_key (dkey, account, id), &value);
        MDB_val tomb;
        if (rc == MDB_NOTFOUND
        &&  af_store_get (txn, self->removed, dkey, s_device_key (dkey, account, id), &tomb) == 0
        &&  tomb.mv_size == 8 + AF_ID_SIZE) {
            uint64_t at;
            char by [AF_ID_HEX + 1];
            memcpy (&at, tomb.mv_data, 8);
            sodium_bin2hex (by, sizeof by, (const uint8_t *) tomb.mv_data + 8, AF_ID_SIZE);
            time_t when = (time_t) (at / 1000);
            char date [32];
            strftime (date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime (&when));
            snprintf (err, errlen, "device %s was removed from account '%s' by device %.8s on %s; "
                      "log in with the password to add this device again as a new one", device_id, account,
                      by, date);
            code = AF_E_REMOVED;
            goto refused;
        }
        if (rc == MDB_NOTFOUND) {
            snprintf (err, errlen, "device %s is not a device of account '%s'", device_id, account);
            code = AF_E_NO_DEVICE;
            goto refused;
        }
        if (rc)
            goto failed;
        if (value.mv_size < DEVICE_HEADER || memcmp (value.mv_data, key, AF_KEY_Z85) != 0) {
            snprintf (err, errlen, "device %s is bound to another key; this node's key "
                      "cannot claim it (remove node.state from the node's home to log in as a new device)",
                      device_id);
            code = AF_E_KEY_MISMATCH;
            goto refused;
        }
        memcpy (&created, (uint8_t *) value.mv_data + AF_KEY_Z85, 8);
    }
    else {
        rc = af_store_get (txn, self->keys, kkey, kkey_len, &value);
        if (rc == 0 && value.mv_size == AF_ID_SIZE) {
            memcpy (id, value.mv_data, AF_ID_SIZE);
            MDB_val old;
            if (af_store_get (txn, self->devices, dkey, s_device_key (dkey, account, id), &old) == 0
            &&  old.mv_size >= DEVICE_HEADER)
                memcpy (&created, (uint8_t *) old.mv_data + AF_KEY_Z85, 8);
        }
        else
        if (rc == MDB_NOTFOUND) {
            uint32_t count;
            if ((rc = s_count_devices (self, txn, account, &count)))
                goto failed;
            if (count >= AF_MAX_DEVICES) {
                snprintf (err, errlen, "account '%s' already has %d devices", account, AF_MAX_DEVICES);
                code = AF_E_TOO_MANY;
                goto refused;
            }
            randombytes_buf (id, AF_ID_SIZE);
        }
        else
            goto failed;
    }
    af_device_t record = *device;
    sodium_bin2hex (record.id, sizeof record.id, id, AF_ID_SIZE);
    record.online = false;
    record.last_seen = now;
    zframe_t *packed = af_device_pack (&record);
    size_t size = DEVICE_HEADER + zframe_size (packed);
    uint8_t *data = (uint8_t *) malloc (size);
    assert (data);
    memcpy (data, key, AF_KEY_Z85);
    memcpy (data + AF_KEY_Z85, &created, 8);
    memcpy (data + DEVICE_HEADER, zframe_data (packed), zframe_size (packed));
    zframe_destroy (&packed);
    rc = af_store_put (txn, self->devices, dkey, s_device_key (dkey, account, id), data, size, 0);
    free (data);
    if (rc == 0)
        rc = af_store_put (txn, self->keys, kkey, kkey_len, id, AF_ID_SIZE, 0);
    if (rc == 0)
        rc = af_store_commit (self->store, &txn);
    if (rc)
        goto failed;
    memcpy (id_out, record.id, AF_ID_HEX + 1);
    return AF_OK;

failed:
    snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
    code = AF_E_INTERNAL;
refused:
    af_store_abort (self->store, &txn);
    return code;
}

//  Read the device record; calls back with the raw value inside txn.
static int
s_read_device (af_registry_t *self, MDB_txn *txn, const char *account, const char *device_id,
               MDB_val *value)
{
    uint8_t id [AF_ID_SIZE];
    uint8_t dkey [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    if (af_id_from_hex (device_id, id) != AF_OK)
        return AF_E_NO_DEVICE;
    int rc = af_store_get (txn, self->devices, dkey, s_device_key (dkey, account, id), value);
    if (rc == MDB_NOTFOUND || (rc == 0 && value->mv_size < DEVICE_HEADER))
        return AF_E_NO_DEVICE;
    return rc? AF_E_INTERNAL: AF_OK;
}

int
af_registry_device_key (af_registry_t *self, const char *account, const char *device_id, char *key_out)
{
    MDB_txn *txn = NULL;
    MDB_val value;
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    int code = s_read_device (self, txn, account, device_id, &value);
    if (code == AF_OK) {
        memcpy (key_out, value.mv_data, AF_KEY_Z85);
        key_out [AF_KEY_Z85] = 0;
    }
    af_store_abort (self->store, &txn);
    return code;
}

int
af_registry_device (af_registry_t *self, const char *account, const char *device_id,
                    af_device_t *device)
{
    MDB_txn *txn = NULL;
    MDB_val value;
    char err [128];
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    int code = s_read_device (self, txn, account, device_id, &value);
    if (code == AF_OK
    &&  af_device_unpack ((uint8_t *) value.mv_data + DEVICE_HEADER, value.mv_size - DEVICE_HEADER,
                          device, err, sizeof err) != AF_OK) {
        zsys_error ("registry: device %s of '%s' has a corrupt record: %s", device_id, account, err);
        code = AF_E_INTERNAL;
    }
    af_store_abort (self->store, &txn);
    return code;
}

int
af_registry_touch (af_registry_t *self, const char *account, const char *device_id, uint64_t now)
{
    af_device_t device;
    char key [AF_KEY_Z85 + 1];
    int code = af_registry_device_key (self, account, device_id, key);
    if (code == AF_OK)
        code = af_registry_device (self, account, device_id, &device);
    if (code != AF_OK)
        return code;
    char id_out [AF_ID_HEX + 1], err [256];
    device.last_seen = now;
    return af_registry_login (self, account, device_id, key, &device, now, id_out, err, sizeof err);
}

int
af_registry_devices (af_registry_t *self, const char *account, af_device_t **devices, uint32_t *count)
{
    *devices = NULL;
    *count = 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cursor = NULL;
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    int rc = mdb_cursor_open (txn, self->devices, &cursor);
    if (rc) {
        af_store_abort (self->store, &txn);
        return AF_E_INTERNAL;
    }
    af_device_t *list = (af_device_t *) calloc (AF_MAX_DEVICES, sizeof (af_device_t));
    assert (list);
    size_t plen = strlen (account) + 1;
    uint8_t prefix [AF_MAX_ACCOUNT + 1];
    memcpy (prefix, account, plen);
    MDB_val key = { plen, prefix }, value;
    uint32_t n = 0;
    char err [128];
    rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == plen + AF_ID_SIZE && memcmp (key.mv_data, prefix, plen) == 0
       &&  n < AF_MAX_DEVICES) {
        if (value.mv_size >= DEVICE_HEADER
        &&  af_device_unpack ((uint8_t *) value.mv_data + DEVICE_HEADER, value.mv_size - DEVICE_HEADER,
                              &list [n], err, sizeof err) == AF_OK)
            n++;
        else
            zsys_error ("registry: skipping a corrupt device record of '%s'", account);
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    af_store_abort (self->store, &txn);
    if (rc && rc != MDB_NOTFOUND) {
        free (list);
        return AF_E_INTERNAL;
    }
    *devices = list;
    *count = n;
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

void
af_registry_test (bool verbose)
{
    if (verbose)
        printf (" * af_registry: ");
    char dir [] = "/tmp/af_registry_test_XXXXXX";
    assert (mkdtemp (dir));
    af_pwcost_t cost = { crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN };
    af_registry_t *registry = af_registry_new (dir, cost, 0);
    assert (registry);
    char err [256];

    assert (af_registry_register (registry, "ana", "secret-password", err, sizeof err) == AF_OK);
    assert (af_registry_register (registry, "ana", "other-password", err, sizeof err) == AF_E_ACCOUNT_EXISTS);
    assert (af_registry_register (registry, "Ana", "secret-password", err, sizeof err) == AF_E_MALFORMED);
    assert (af_registry_register (registry, "ab", "secret-password", err, sizeof err) == AF_E_MALFORMED);
    assert (af_registry_register (registry, "bob", "short", err, sizeof err) == AF_E_MALFORMED);
    assert (af_registry_verify (registry, "ana", "secret-password") == AF_OK);
    assert (af_registry_verify (registry, "ana", "secret-passwore") == AF_E_BAD_PASSWORD);
    assert (af_registry_verify (registry, "nobody", "secret-password") == AF_E_NO_ACCOUNT);

    af_device_t phone;
    memset (&phone, 0, sizeof phone);
    strcpy (phone.model, "Pixel 5");
    const char *key1 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const char *key2 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    char id [AF_ID_HEX + 1], id2 [AF_ID_HEX + 1];
    assert (af_registry_login (registry, "ana", "", key1, &phone, 1000, id, err, sizeof err) == AF_OK);
    assert (strlen (id) == AF_ID_HEX);
    //  Same key without an ID gets the same device back
    assert (af_registry_login (registry, "ana", "", key1, &phone, 2000, id2, err, sizeof err) == AF_OK);
    assert (strcmp (id, id2) == 0);
    //  Another key cannot claim it
    assert (af_registry_login (registry, "ana", id, key2, &phone, 3000, id2, err, sizeof err) == AF_E_KEY_MISMATCH);
    //  Unknown device, unknown account, bad ID
    assert (af_registry_login (registry, "ana", "00112233445566778899aabbccddeeff", key1, &phone, 1, id2, err, sizeof err) == AF_E_NO_DEVICE);
    assert (af_registry_login (registry, "zed", "", key1, &phone, 1, id2, err, sizeof err) == AF_E_NO_ACCOUNT);
    assert (af_registry_login (registry, "ana", "xyz", key1, &phone, 1, id2, err, sizeof err) == AF_E_MALFORMED);
    //  A second device
    strcpy (phone.model, "Tab S7");
    assert (af_registry_login (registry, "ana", "", key2, &phone, 4000, id2, err, sizeof err) == AF_OK);
    assert (strcmp (id, id2) != 0);

    af_device_t *list;
    uint32_t count;
    assert (af_registry_devices (registry, "ana", &list, &count) == AF_OK);
    assert (count == 2);
    free (list);
    assert (af_registry_devices (registry, "an", &list, &count) == AF_OK && count == 0);
    free (list);
    assert (af_registry_touch (registry, "ana", id, 9999) == AF_OK);
    af_device_t back;
    assert (af_registry_device (registry, "ana", id, &back) == AF_OK);
    assert (back.last_seen == 9999 && strcmp (back.model, "Pixel 5") == 0 && strcmp (back.id, id) == 0);
    char key [AF_KEY_Z85 + 1];
    assert (af_registry_device_key (registry, "ana", id2, key) == AF_OK && strcmp (key, key2) == 0);

    //  Survives reopen
    af_registry_destroy (&registry);
    registry = af_registry_new (dir, cost, 0);
    assert (af_registry_verify (registry, "ana", "secret-password") == AF_OK);
    assert (af_registry_devices (registry, "ana", &list, &count) == AF_OK && count == 2);
    free (list);
    af_registry_destroy (&registry);
    assert (registry == NULL);
    zsys_dir_delete ("%s", dir);
    char path [256];
    snprintf (path, sizeof path, "%s/data.mdb", dir); unlink (path);
    snprintf (path, sizeof path, "%s/lock.mdb", dir); unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}

int
af_registry_remove_txn (af_registry_t *self, MDB_txn *txn, const char *account, const char *device_id,
                        const char *by, uint64_t now)
{
    assert (self && txn);
    uint8_t id [AF_ID_SIZE], by_id [AF_ID_SIZE];
    if (af_id_from_hex (device_id, id) != AF_OK || af_id_from_hex (by, by_id) != AF_OK)
        return AF_E_MALFORMED;
    uint8_t dkey [AF_MAX_ACCOUNT + 1 + AF_ID_SIZE];
    size_t dkeylen = s_device_key (dkey, account, id);
    MDB_val value;
    int rc = af_store_get (txn, self->devices, dkey, dkeylen, &value);
    if (rc == MDB_NOTFOUND)
        return AF_E_NO_DEVICE;
    if (rc == 0 && value.mv_size < DEVICE_HEADER)
        rc = MDB_CORRUPTED;
    //  Its key no longer names it: the key is revoked
    uint8_t kkey [AF_MAX_ACCOUNT + 1 + AF_KEY_Z85];
    size_t kkeylen = rc? 0: s_keys_key (kkey, account, (const char *) value.mv_data);
    if (rc == 0) {
        rc = af_store_del (txn, self->keys, kkey, kkeylen);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = af_store_del (txn, self->devices, dkey, dkeylen);
    uint8_t tomb [8 + AF_ID_SIZE];
    memcpy (tomb, &now, 8);
    memcpy (tomb + 8, by_id, AF_ID_SIZE);
    if (rc == 0)
        rc = af_store_put (txn, self->removed, dkey, dkeylen, tomb, sizeof tomb, 0);
    if (rc)
        zsys_error ("registry: cannot remove device %s of '%s': %s", device_id, account, mdb_strerror (rc));
    return af_store_code (rc);
}

af_store_t *
af_registry_store (af_registry_t *self)
{
    return self->store;
}
