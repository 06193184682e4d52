/*  =========================================================================
    af_pin - hold a read transaction on an LMDB environment until killed

    LMDB reuses the pages a commit frees only once no reader can still see
    them. A reader held open from another process therefore makes every
    later write transaction take fresh pages, so a store whose map is full
    refuses every write: tests use it to make the broker's commits fail
    for real, on a real store, at a moment of their choosing.

    Usage: af_pin DIR   (prints "pinned" once the transaction is open)
    =========================================================================
*/
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: af_pin DIR\n");
        return 2;
    }
    MDB_env *env;
    MDB_txn *txn;
    int rc = mdb_env_create (&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (env, 64);
    if (rc == 0)
        rc = mdb_env_open (env, argv [1], MDB_RDONLY, 0600);
    if (rc == 0)
        rc = mdb_txn_begin (env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        fprintf (stderr, "af_pin: %s: %s\n", argv [1], mdb_strerror (rc));
        return 1;
    }
    signal (SIGTERM, s_on_signal);
    signal (SIGINT, s_on_signal);
    printf ("pinned\n");
    fflush (stdout);
    while (!s_stop)
        pause ();
    mdb_txn_abort (txn);
    mdb_env_close (env);
    return 0;
}
