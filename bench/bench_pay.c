/*  =========================================================================
    bench_pay - paid installs per second, end to end, through the real
    broker, matcher and payments worker (the test processor)

    Each round is a fresh account: one source device that lists --programs
    paid programs (at most 1000, a LIST's limit), and --askers devices that
    buy them, each a share of the programs, --window requests in flight
    each. A paid install is: GET → the broker resolves the program for the
    asker (matcher) → PAY_INTENT (the ledger writes an intent) →
    PAYMENT_REQUIRED → PAY_CONFIRM → the ledger writes CHARGING, the test
    processor charges, the ledger writes PAID with the entitlement → PAID
    → the broker commits a push to the asker and its offer →
    PUSH_ACCEPTED. The worker group-commits: every request waiting on its
    socket is one batch (its intents in one synced commit, its charges in
    one commit of the processor's books, its outcomes in one more, shared
    with the next batch's intents when one is waiting); the broker gives it
    up to its credit (64 here) at once. Counted when PUSH_ACCEPTED arrives.
    At the end the ledger's totals are checked (exactly one charge per
    program and account), and the worker's own count of requests and
    batches is printed.

    Usage: bench_pay [--programs N] [--askers K] [--window W] [--rounds R]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include "af_msg.h"
#include "af_catalog.h"
#include "bench_util.h"

#define MAX_ASKERS 32

static int s_programs = 1000, s_askers = 4, s_window = 8, s_rounds = 3;

static int
s_catalog (const char *dir)
{
    af_catalog_t *catalog = af_catalog_new (dir, true);
    if (!catalog)
        return -1;
    af_catalog_entry_t *entries = (af_catalog_entry_t *) calloc ((size_t) s_programs, sizeof *entries);
    for (int i = 0; i < s_programs; i++) {
        af_catalog_entry_t *e = &entries [i];
        snprintf (e->package.program, sizeof e->package.program, "paid%06d", i);
        snprintf (e->package.platform, sizeof e->package.platform, "android");
        snprintf (e->package.version_name, sizeof e->package.version_name, "1.0");
        e->package.version_code = 1;
        e->fit.platform = (uint8_t) af_platform_from_name ("android");
        e->fit.version_code = 1;
        e->fit.os_min = 21;
        e->fit.price_cents = 199;
        memcpy (e->fit.currency, "EUR", AF_CURRENCY);
        randombytes_buf (e->fit.hash, sizeof e->fit.hash);
        e->fit.size = 100000;
    }
    char err [256];
    int rc = af_catalog_add (catalog, entries, (size_t) s_programs, err, sizeof err) == AF_OK? 0: -1;
    if (rc)
        fprintf (stderr, "bench_pay: catalog: %s\n", err);
    free (entries);
    af_catalog_destroy (&catalog);
    return rc;
}

//  The payments worker, allowed by the broker; 0 or -1
static int
s_start_payments (const char *dir, pid_t *pid)
{
    char path [PATH_MAX], line [512], workers_ep [256] = "", cert [PATH_MAX], key [PATH_MAX], ledger [PATH_MAX],
         log [PATH_MAX], allowed [PATH_MAX];
    snprintf (path, sizeof path, "%s/broker/endpoints", dir);
    FILE *file = fopen (path, "r");
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "workers=", 8) == 0)
            snprintf (workers_ep, sizeof workers_ep, "%.*s", (int) strcspn (line + 8, "\n"), line + 8);
    if (file)
        fclose (file);
    snprintf (cert, sizeof cert, "%s/payments.cert", dir);
    snprintf (key, sizeof key, "%s/broker/broker.cert", dir);
    snprintf (ledger, sizeof ledger, "%s/ledger", dir);
    snprintf (log, sizeof log, "%s/payments.log", dir);
    char *argv [] = { AF_PAYMENTS_PATH, "-b", workers_ep, "-k", key, "-c", cert, "-l", ledger,
                      "--heartbeat", "1000", "--credit", "64", NULL };
    *pid = bench_spawn (argv, log);
    if (!bench_wait_file (cert))
        return -1;
    zcert_t *loaded = zcert_load (cert);
    snprintf (allowed, sizeof allowed, "%s/broker/workers/payments.cert", dir);
    int rc = loaded && zcert_save_public (loaded, allowed) == 0? 0: -1;
    zcert_destroy (&loaded);
    //  It reconnects (its key allowed now) and sends READY: wait for the
    //  broker to say so of it and of the matcher, or round 1 would time
    //  the wait too
    snprintf (path, sizeof path, "%s/broker.log", dir);
    bool ready = false;
    for (int i = 0; rc == 0 && !ready && i < 1000; i++) {
        bool payments = false, matcher = false;
        file = fopen (path, "r");
        while (file && fgets (line, sizeof line, file)) {
            payments |= strstr (line, "ready for 'payments'") != NULL;
            matcher |= strstr (line, "ready for 'matcher'") != NULL;
        }
        if (file)
            fclose (file);
        ready = payments && matcher;
        if (!ready)
            zclock_sleep (10);
    }
    if (rc == 0 && !ready)
        fprintf (stderr, "bench_pay: the payments worker never got ready (%s)\n", path);
    return ready? rc: -1;
}

typedef struct {
    zsock_t *sock;
    int next, inflight, done, errors;
} asker_t;

static void
s_send_get (asker_t *a, const char *source)
{
    af_msg_t *get = af_msg_new (AF_MSG_GET);
    af_msg_set_rid_random (get);
    snprintf (get->program, sizeof get->program, "paid%06d", a->next);
    snprintf (get->device_id, sizeof get->device_id, "%s", source);
    af_msg_send (get, a->sock, NULL);
    af_msg_destroy (&get);
    a->next += s_askers;
    a->inflight++;
}

//  One answer for an asker: confirm a notice, count a transfer
static void
s_answer (asker_t *a, af_msg_t *msg, const char *source)
{
    if (msg->id == AF_MSG_PAYMENT_REQUIRED) {
        af_msg_t *confirm = af_msg_new (AF_MSG_PAY_CONFIRM);
        af_msg_set_rid_random (confirm);
        snprintf (confirm->intent, sizeof confirm->intent, "%s", msg->intent);
        snprintf (confirm->token, sizeof confirm->token, "tok_approve");
        af_msg_send (confirm, a->sock, NULL);
        af_msg_destroy (&confirm);
        return;
    }
    if (msg->id == AF_MSG_PUSH_ACCEPTED)
        a->done++;
    else {
        if (a->errors++ == 0)
            fprintf (stderr, "bench_pay: %s %u %s\n", af_msg_command_name (msg->id), msg->code, msg->reason);
    }
    a->inflight--;
    if (a->next < s_programs)
        s_send_get (a, source);
}

//  One round with a new account: paid installs per second, or -1
static double
s_round (const char *nodes_ep, const char *key, int round)
{
    char account [32], source [AF_ID_HEX + 1], id [AF_ID_HEX + 1];
    snprintf (account, sizeof account, "bench%d", round);
    zsock_t *src = bench_dealer (nodes_ep, key);
    af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
    snprintf (reg->account, sizeof reg->account, "%s", account);
    strcpy (reg->password, "bench password");
    af_msg_t *answer = src? bench_request (src, reg): NULL;
    af_msg_destroy (&reg);
    bool registered = answer && answer->id == AF_MSG_OK;
    af_msg_destroy (&answer);
    if (!registered || bench_login (src, account, "Source", source)) {
        zsock_destroy (&src);
        return -1;
    }
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    list->seq = 1;
    af_msg_set_app_count (list, (uint32_t) s_programs);
    for (int i = 0; i < s_programs; i++) {
        snprintf (list->apps [i].program, sizeof list->apps [i].program, "paid%06d", i);
        snprintf (list->apps [i].version_name, sizeof list->apps [i].version_name, "1.0");
    }
    af_msg_t *ok = bench_request (src, list);
    af_msg_destroy (&list);
    bool listed = ok && ok->id == AF_MSG_OK;
    af_msg_destroy (&ok);
    if (!listed)
        return -1;
    asker_t askers [MAX_ASKERS];
    memset (askers, 0, sizeof askers);
    zpoller_t *poller = zpoller_new (NULL);
    for (int k = 0; k < s_askers; k++) {
        askers [k].sock = bench_dealer (nodes_ep, key);
        if (!askers [k].sock || bench_login (askers [k].sock, account, "Asker", id))
            return -1;
        askers [k].next = k;
        zpoller_add (poller, askers [k].sock);
    }
    int64_t start = zclock_usecs ();
    for (int k = 0; k < s_askers; k++)
        for (int w = 0; w < s_window && askers [k].next < s_programs; w++)
            s_send_get (&askers [k], source);
    int done = 0, errors = 0;
    while (done + errors < s_programs) {
        zsock_t *ready = (zsock_t *) zpoller_wait (poller, 15000);
        if (!ready)
            break;
        for (int k = 0; k < s_askers; k++)
            if (askers [k].sock == ready) {
                af_msg_t *msg = bench_recv (ready);
                if (msg && msg->has_rid)
                    s_answer (&askers [k], msg, source);
                af_msg_destroy (&msg);
            }
        done = errors = 0;
        for (int k = 0; k < s_askers; k++) {
            done += askers [k].done;
            errors += askers [k].errors;
        }
    }
    double seconds = (zclock_usecs () - start) / 1e6;
    zpoller_destroy (&poller);
    for (int k = 0; k < s_askers; k++)
        zsock_destroy (&askers [k].sock);
    zsock_destroy (&src);
    printf ("round %d: %d paid installs in %.2f s: %.0f/s (%d errors)\n", round, done, seconds, done / seconds,
            errors);
    return done == s_programs? done / seconds: -1;
}

int
main (int argc, char *argv [])
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp (argv [i], "--programs")) s_programs = atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--askers")) s_askers = atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--window")) s_window = atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--rounds")) s_rounds = atoi (argv [i + 1]);
    }
    if (s_programs < 1 || s_programs > AF_MAX_APPS || s_askers < 1 || s_askers > MAX_ASKERS || s_window < 1
    ||  s_rounds < 1 || s_rounds > 9) {
        fprintf (stderr, "usage: bench_pay [--programs 1..1000] [--askers 1..32] [--window W] [--rounds 1..9]\n");
        return 2;
    }
    char dir [] = "/tmp/bench_pay_XXXXXX", catalog [PATH_MAX], nodes_ep [256], key [64];
    if (!mkdtemp (dir))
        return 1;
    snprintf (catalog, sizeof catalog, "%s/catalog", dir);
    pid_t broker = 0, matcher = 0, payments = 0;
    int rc = 1;
    double results [9];
    if (s_catalog (catalog) == 0 && bench_start_services (dir, catalog, &broker, &matcher, nodes_ep, key) == 0
    &&  s_start_payments (dir, &payments) == 0) {
        rc = 0;
        for (int r = 0; r < s_rounds && rc == 0; r++)
            if ((results [r] = s_round (nodes_ep, key, r + 1)) < 0)
                rc = 1;
    }
    bench_stop (payments);
    char cmd [PATH_MAX + 128];
    //  How the worker grouped its requests (its last log line)
    snprintf (cmd, sizeof cmd, "grep -o 'stopped; .*' %s/payments.log | sed 's/^stopped; /payments worker: /'", dir);
    if (rc == 0 && system (cmd) != 0)
        rc = 1;
    snprintf (cmd, sizeof cmd, "%s --status -l %s/ledger", AF_PAYMENTS_PATH, dir);
    if (rc == 0) {
        printf ("ledger: ");
        fflush (stdout);
        rc = system (cmd) == 0? 0: 1;
        for (int i = 1; i < s_rounds; i++)         //  sort, for the median
            for (int j = i; j > 0 && results [j] < results [j - 1]; j--) {
                double t = results [j]; results [j] = results [j - 1]; results [j - 1] = t;
            }
        printf ("median: %.0f paid installs/s (%d askers, %d in flight each; target >= 1,000/s)\n",
                results [s_rounds / 2], s_askers, s_window);
    }
    bench_stop (matcher);
    bench_stop (broker);
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    if (system (cmd) != 0)
        rc = 1;
    return rc;
}
