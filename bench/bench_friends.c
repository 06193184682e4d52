/*  =========================================================================
    bench_friends - friendship checks a second, for address books of 500

    What the broker does for every pull, push and one-tap install before
    anything else (issue 13, S3.2): the contact's token looked up in the
    directory, then the two accounts' books compared (at least
    friends/min_common common tokens) and both block lists read. Here on
    a real LMDB store with af_friends, in process, on one core: ACCOUNTS
    accounts with books of BOOK tokens drawn from a pool of numbers small
    enough that some pairs are friends. Each check runs in a read
    transaction of its own (the broker's run in its batch's), so the
    figure includes LMDB's transaction cost.

    Usage: bench_friends [--accounts 2000] [--book 500] [--pool N] [--seconds 3]
    (--pool: the numbers books are drawn from; default 50 books' worth, so
    most pairs are friends and a check stops at the second common token;
    --pool 1000000 makes nearly all strangers: every check a whole merge)
    =========================================================================
*/
#include <czmq.h>
#include <getopt.h>
#include <sodium.h>
#include "af_friends.h"
#include "af_store.h"

static void
s_token (uint8_t *token, uint32_t number)
{
    crypto_generichash (token, AF_CONTACT_TOKEN_SIZE, (const uint8_t *) &number, sizeof number, NULL, 0);
}

//  ACCOUNTS books of BOOK numbers from a pool; each account's own number
static int
s_fill (af_store_t *store, af_friends_t *friends, int accounts, int book, uint32_t pool)
{
    MDB_txn *txn = NULL;
    if (af_store_begin (store, true, &txn))
        return -1;
    af_token_t *tokens = (af_token_t *) malloc ((size_t) book * AF_CONTACT_TOKEN_SIZE);
    assert (tokens);
    int rc = 0;
    for (int a = 0; a < accounts && rc == 0; a++) {
        char name [32];
        snprintf (name, sizeof name, "user%d", a);
        for (int i = 0; i < book; i++)
            s_token (tokens [i], randombytes_uniform (pool));
        af_token_t own;
        s_token (own, pool + (uint32_t) a);
        if (af_friends_set_put (friends, txn, name, AF_SET_BOOK, true, tokens, (size_t) book, AF_MAX_BOOK, NULL)
                != AF_OK
        ||  af_friends_set_put (friends, txn, name, AF_SET_OWN, true, &own, 1, AF_MAX_OWN_NUMBERS, NULL) != AF_OK
        ||  af_friends_dir_set (friends, txn, own, name, true) != AF_OK)
            rc = -1;
    }
    free (tokens);
    if (rc || af_store_commit (store, &txn)) {
        af_store_abort (store, &txn);
        return -1;
    }
    return 0;
}

//  One pull's check: the contact's token to its account, then friendship
static bool
s_check (af_store_t *store, af_friends_t *friends, int me, int contact, uint32_t pool, size_t *found)
{
    char name [32], accounts [4][AF_MAX_ACCOUNT + 1];
    snprintf (name, sizeof name, "user%d", me);
    af_token_t token;
    s_token (token, pool + (uint32_t) contact);
    MDB_txn *txn = NULL;
    if (af_store_begin (store, false, &txn))
        return false;
    size_t count = 0, common = 0;
    bool blocked = false, ok = af_friends_dir_find (friends, txn, token, accounts, 4, &count) == AF_OK && count == 1
        && af_friends_common (friends, txn, name, accounts [0], AF_FRIEND_MIN_COMMON, &common) == AF_OK
        && af_friends_blocked (friends, txn, name, accounts [0], &blocked) == AF_OK;
    af_store_abort (store, &txn);
    if (ok && common >= AF_FRIEND_MIN_COMMON && !blocked)
        (*found)++;
    return ok;
}

int
main (int argc, char *argv [])
{
    int accounts = 2000, book = 500;
    long pool_arg = 0;
    double seconds = 3;
    static struct option options [] = {
        { "accounts", required_argument, NULL, 'a' }, { "book", required_argument, NULL, 'b' },
        { "seconds", required_argument, NULL, 's' }, { "pool", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 } };
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (opt == 'a') accounts = atoi (optarg);
        else if (opt == 'b') book = atoi (optarg);
        else if (opt == 's') seconds = atof (optarg);
        else if (opt == 'p') pool_arg = atol (optarg);
        else { fprintf (stderr, "usage: bench_friends [--accounts N] [--book N] [--seconds S]\n"); return 2; }
    }
    if (accounts < 2 || book < 1 || book > AF_MAX_BOOK || seconds <= 0 || sodium_init () < 0)
        return 2;
    char dir [] = "/tmp/bench_friends.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, (size_t) 4 << 30, 16, false);
    af_friends_t *friends = store? af_friends_new (store): NULL;
    //  By default a pool of 50 books' worth of numbers: two random books
    //  of 500 then share about 10, so nearly every pair are friends
    uint32_t pool = pool_arg > 0 && pool_arg < 100000000? (uint32_t) pool_arg: (uint32_t) book * 50;
    int64_t start = zclock_usecs ();
    if (!friends || s_fill (store, friends, accounts, book, pool)) {
        fprintf (stderr, "bench_friends: cannot fill the store in %s\n", dir);
        return 1;
    }
    printf ("store: %d accounts, books of %d tokens from %u numbers, filled in %.1f s\n", accounts, book, pool,
            (double) (zclock_usecs () - start) / 1e6);
    size_t checks = 0, found = 0;
    start = zclock_usecs ();
    int64_t end = start + (int64_t) (seconds * 1e6);
    while (zclock_usecs () < end)
        for (int i = 0; i < 1000; i++, checks++)
            if (!s_check (store, friends, (int) randombytes_uniform ((uint32_t) accounts),
                          (int) randombytes_uniform ((uint32_t) accounts), pool, &found)) {
                fprintf (stderr, "bench_friends: a check failed\n");
                return 1;
            }
    double elapsed = (double) (zclock_usecs () - start) / 1e6;
    double rate = (double) checks / elapsed;
    printf ("friend checks: %zu in %.2f s: %.0f/s (%.1f us each), %zu of them friends\n", checks, elapsed, rate,
            1e6 / rate, found);
    printf ("target (issue 13): >= 10,000 checks/s for books of 500: %s\n", rate >= 10000? "met": "NOT met");
    af_friends_destroy (&friends);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (system (command) != 0)
        fprintf (stderr, "bench_friends: could not remove %s\n", dir);
    return 0;
}
