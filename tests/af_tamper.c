/*  =========================================================================
    af_tamper - change a backup record in a broker's store, as a
    compromised broker would

    The node authenticates each backup record with the account secret
    (SPEC 5.48); a test proves it by changing the record where the broker
    keeps it, on a real store, while the broker runs (LMDB takes writers
    from several processes under its lock), and checking that a restore
    refuses it.

    Usage:
      af_tamper DIR set ACCOUNT PROGRAM VERSION FIELD VALUE
            FIELD is versionName, versionCode, name or at; the record is
            decoded, changed and stored again under the same key
      af_tamper DIR copy ACCOUNT PROGRAM VERSION TO_PROGRAM TO_VERSION
            the record, byte for byte, stored under another key as well
      af_tamper DIR config ACCOUNT PROGRAM VERSION TEXT
            its sealed configuration replaced by TEXT ("" removes it)
    =========================================================================
*/
#include <czmq.h>
#include <lmdb.h>
#include "af_msg.h"

static size_t
s_key (char *key, size_t size, const char *account, const char *program, const char *version)
{
    int n = snprintf (key, size, "%s%c%s%c%s", account, 0, program, 0, version);
    return n > 0 && (size_t) n < size? (size_t) n: 0;
}

int
main (int argc, char *argv [])
{
    if (argc < 7 || (streq (argv [2], "set") && argc != 8) || (streq (argv [2], "copy") && argc != 8)
    ||  (streq (argv [2], "config") && argc != 7)) {
        fprintf (stderr, "usage: af_tamper DIR set ACCOUNT PROGRAM VERSION FIELD VALUE\n"
                         "       af_tamper DIR copy ACCOUNT PROGRAM VERSION TO_PROGRAM TO_VERSION\n"
                         "       af_tamper DIR config ACCOUNT PROGRAM VERSION TEXT\n");
        return 2;
    }
    const char *dir = argv [1], *op = argv [2];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create (&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (env, 64);
    if (rc == 0)
        rc = mdb_env_open (env, dir, MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_txn_begin (env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open (txn, "backups", 0, &dbi);
    if (rc) {
        fprintf (stderr, "af_tamper: %s: %s\n", dir, mdb_strerror (rc));
        return 1;
    }
    char key [400], to [400];
    MDB_val k = { s_key (key, sizeof key, argv [3], argv [4], argv [5]), key }, value;
    rc = k.mv_size? mdb_get (txn, dbi, &k, &value): MDB_BAD_VALSIZE;
    if (rc) {
        fprintf (stderr, "af_tamper: no backup %s %s of '%s': %s\n", argv [4], argv [5], argv [3], mdb_strerror (rc));
        mdb_txn_abort (txn);
        return 1;
    }
    if (streq (op, "copy")) {
        MDB_val t = { s_key (to, sizeof to, argv [3], argv [6], argv [7]), to };
        rc = t.mv_size? mdb_put (txn, dbi, &t, &value, 0): MDB_BAD_VALSIZE;
    }
    else {
        af_msg_t *put = NULL;
        char err [300];
        if (af_msg_decode ((const uint8_t *) value.mv_data, value.mv_size, &put, err, sizeof err, NULL, NULL) != AF_OK
        ||  put->backup_count != 1) {
            fprintf (stderr, "af_tamper: the record does not decode: %s\n", err);
            mdb_txn_abort (txn);
            return 1;
        }
        af_backup_t *b = &put->backups [0];
        if (streq (op, "config")) {
            free (put->data);
            put->data_size = (uint32_t) strlen (argv [6]);
            put->data = put->data_size? (uint8_t *) strdup (argv [6]): NULL;
            b->config_size = put->data_size;
        }
        else
        if (streq (argv [6], "versionName"))
            snprintf (b->version_name, sizeof b->version_name, "%s", argv [7]);
        else
        if (streq (argv [6], "versionCode"))
            b->version_code = strtoull (argv [7], NULL, 10);
        else
        if (streq (argv [6], "name"))
            snprintf (b->name, sizeof b->name, "%s", argv [7]);
        else
        if (streq (argv [6], "at"))
            b->at = strtoull (argv [7], NULL, 10);
        else {
            fprintf (stderr, "af_tamper: cannot set '%s'\n", argv [6]);
            af_msg_destroy (&put);
            mdb_txn_abort (txn);
            return 2;
        }
        zframe_t *frame = af_msg_encode (put);
        af_msg_destroy (&put);
        if (!frame) {
            fprintf (stderr, "af_tamper: the changed record does not encode\n");
            mdb_txn_abort (txn);
            return 1;
        }
        MDB_val changed = { zframe_size (frame), zframe_data (frame) };
        rc = mdb_put (txn, dbi, &k, &changed, 0);
        zframe_destroy (&frame);
    }
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    else
        mdb_txn_abort (txn);
    mdb_env_close (env);
    if (rc) {
        fprintf (stderr, "af_tamper: %s\n", mdb_strerror (rc));
        return 1;
    }
    return 0;
}
