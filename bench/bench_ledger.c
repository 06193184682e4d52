/*  =========================================================================
    bench_ledger - the payments ledger's charges per second, durable

    Each charge is what a paid install costs the payments worker: a
    request (a new intent: one synced commit), a confirmation (CHARGING:
    a synced commit; the test processor's charge: its own synced commit;
    PAID with the charge and the entitlement: a synced commit). So four
    synced commits per charge when each request is its own batch, every
    one of them LMDB's default durable commit, in a temporary directory
    (on this machine's disk unless TMPDIR says otherwise); then the same
    with group commit (af_ledger_run): batches of 8 and of 32 requests,
    then their 8 or 32 confirmations, still four synced commits per batch.
    Prints each round's charges/s and the median per batch size; checks
    that the processor and the ledger both count exactly the charges made.

    Usage: bench_ledger [--seconds S] [--rounds R]
    =========================================================================
*/
#include <czmq.h>
#include "af_ledger.h"
#include "af_provider.h"
#include "bench_stats.h"

//  One round of --seconds: charges/s, with batches of batch requests
//  (1: af_ledger_request then af_ledger_confirm, each its own commits),
//  or -1 on a failure
static double
s_round (af_ledger_t *ledger, size_t batch, double seconds, size_t *made)
{
    af_ledger_op_t *ops = (af_ledger_op_t *) calloc (batch, sizeof *ops);
    char (*programs) [32] = calloc (batch, 32);
    char err [512];
    assert (ops && programs);
    int64_t start = zclock_usecs (), end = start + (int64_t) (seconds * 1e6);
    size_t count = 0;
    int rc = 0;
    while (rc == 0 && zclock_usecs () < end) {
        uint64_t now = (uint64_t) zclock_time ();
        //  The requests of the batch (new intents), then their confirmations
        for (size_t i = 0; i < batch; i++) {
            snprintf (programs [i], 32, "app%zu", (*made)++);
            af_ledger_op_t op = { .kind = AF_LEDGER_REQUEST, .account = "bench", .program = programs [i],
                                  .source = "", .amount = 499, .currency = "EUR" };
            ops [i] = op;
        }
        if (af_ledger_run (ledger, ops, batch, now, err, sizeof err) != AF_OK)
            rc = -1;
        for (size_t i = 0; rc == 0 && i < batch; i++) {
            if (ops [i].code != AF_OK || ops [i].intent.state != AF_INTENT_OPEN)
                rc = -1;
            af_ledger_op_t op = { .kind = AF_LEDGER_CONFIRM, .account = "bench", .token = "tok_approve" };
            op.intent = ops [i].intent;
            ops [i] = op;
            ops [i].intent_hex = ops [i].intent.id;
        }
        if (rc == 0 && af_ledger_run (ledger, ops, batch, now, err, sizeof err) != AF_OK)
            rc = -1;
        for (size_t i = 0; rc == 0 && i < batch; i++)
            if (ops [i].code != AF_OK || ops [i].intent.state != AF_INTENT_PAID)
                rc = -1;
        count += batch;
    }
    double result = count / ((zclock_usecs () - start) / 1e6);
    if (rc)
        fprintf (stderr, "bench_ledger: %s\n", err);
    free (ops);
    free (programs);
    return rc? -1: result;
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
    //  Batch sizes: one request per commit, then group commits of 8 and 32
    //  (what the payments worker takes from its socket under load)
    size_t batches [] = { 1, 8, 32 };
    size_t made = 0;
    for (size_t b = 0; b < sizeof batches / sizeof batches [0]; b++) {
        double results [9];
        for (int round = 0; round < rounds; round++) {
            if ((results [round] = s_round (ledger, batches [b], seconds, &made)) < 0)
                return 1;
            printf ("batch %zu, round %d: %.0f charges/s\n", batches [b], round + 1, results [round]);
        }
        printf ("batch %zu: median %.0f charges/s (%s)\n", batches [b], bench_median (results, rounds),
                batches [b] == 1?
                "4 synced commits each: intent, CHARGING, the processor's books, PAID":
                "4 synced commits per batch, whatever its size");
    }
    size_t books_count = 0, intents = 0, charges = 0, entitlements = 0;
    if (af_testpay_charges (pay, &books_count) != AF_OK
    ||  af_ledger_totals (ledger, &intents, &charges, &entitlements) != AF_OK
    ||  books_count != made || charges != made || entitlements != made) {
        fprintf (stderr, "bench_ledger: the books disagree: %zu made, %zu charged, %zu recorded\n", made,
                 books_count, charges);
        return 1;
    }
    printf ("%zu charges, every one counted once by both the processor and the ledger\n", made);
    af_ledger_destroy (&ledger);
    af_testpay_destroy (&pay);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    return system (cmd) == 0? 0: 1;
}
