/*  =========================================================================
    bench_ledger - the payments ledger's charges per second, durable

    Each charge is what a paid install costs the payments worker: a
    request (a new intent: one synced commit), a confirmation (CHARGING:
    a synced commit; the test processor's charge: its own synced commit;
    PAID with the charge and the entitlement: a synced commit). So four
    fsyncs per charge, every one of them LMDB's default durable commit, in
    a temporary directory (on this machine's disk unless TMPDIR says
    otherwise). Prints each round's charges/s and the median; checks that
    the processor and the ledger both count exactly the charges made.

    Usage: bench_ledger [--seconds S] [--rounds R]
    =========================================================================
*/
#include <czmq.h>
#include "af_ledger.h"
#include "af_provider.h"

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

int
main (int argc, char *argv [])
{
    double seconds = 2;
    int rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp (argv [i], "--seconds"))
            seconds = atof (argv [i + 1]);
        else
        if (!strcmp (argv [i], "--rounds"))
            rounds = atoi (argv [i + 1]);
    }
    if (seconds <= 0 || rounds < 1 || rounds > 9) {
        fprintf (stderr, "usage: bench_ledger [--seconds S] [--rounds 1..9]\n");
        return 2;
    }
    const char *tmp = getenv ("TMPDIR")? getenv ("TMPDIR"): "/tmp";
    char dir [256], books [300], err [512];
    snprintf (dir, sizeof dir, "%s/bench_ledger_XXXXXX", tmp);
    if (!mkdtemp (dir))
        return 1;
    snprintf (books, sizeof books, "%s/books", dir);
    af_testpay_t *pay = af_testpay_new (books, err, sizeof err);
    af_provider_t provider = af_testpay_provider (pay);
    af_ledger_t *ledger = af_ledger_new (dir, &provider, err, sizeof err);
    if (!pay || !ledger) {
        fprintf (stderr, "bench_ledger: %s\n", err);
        return 1;
    }
    double results [9];
    size_t made = 0;
    for (int round = 0; round < rounds; round++) {
        int64_t start = zclock_usecs (), end = start + (int64_t) (seconds * 1e6);
        size_t count = 0;
        while (zclock_usecs () < end) {
            char program [32];
            snprintf (program, sizeof program, "app%zu", made++);
            af_intent_t intent, paid;
            bool entitled, found;
            uint64_t now = (uint64_t) zclock_time ();
            if (af_ledger_request (ledger, "bench", program, "", 499, "EUR", now, &intent, &entitled, err,
                                   sizeof err) != AF_OK
            ||  af_ledger_confirm (ledger, "bench", intent.id, "tok_approve", now, &paid, &found, err,
                                   sizeof err) != AF_OK
            ||  paid.state != AF_INTENT_PAID) {
                fprintf (stderr, "bench_ledger: %s\n", err);
                return 1;
            }
            count++;
        }
        results [round] = count / ((zclock_usecs () - start) / 1e6);
        printf ("round %d: %.0f charges/s (%zu)\n", round + 1, results [round], count);
    }
    size_t books_count, intents, charges, entitlements;
    if (af_testpay_charges (pay, &books_count) != AF_OK
    ||  af_ledger_totals (ledger, &intents, &charges, &entitlements) != AF_OK
    ||  books_count != made || charges != made || entitlements != made) {
        fprintf (stderr, "bench_ledger: the books disagree: %zu made, %zu charged, %zu recorded\n", made,
                 books_count, charges);
        return 1;
    }
    qsort (results, (size_t) rounds, sizeof results [0], s_compare);
    printf ("median: %.0f charges/s, 4 synced commits each (%zu charges, every one counted once by both "
            "the processor and the ledger)\n", results [rounds / 2], made);
    af_ledger_destroy (&ledger);
    af_testpay_destroy (&pay);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    return system (cmd) == 0? 0: 1;
}
