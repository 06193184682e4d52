/*  =========================================================================
    bench_sync - sync diffs per second through the real broker and
    matcher

    A catalog of --programs Android programs (400) is built in process;
    the real appferry-broker and appferry-matcher serve it.

    One account of --devices devices (20), each reporting its install
    list (LIST) of --apps programs (300) drawn at random from the catalog
    (--common N of them the same on every device). One device then asks
    SYNC with --window requests in flight for --seconds; every SYNC_DIFF
    lists what the other 19 have that it lacks, each program resolved for
    it by the matcher. Prints diffs per second and the entries per diff.
    By default it runs twice: a family's devices (all but 10 apps in
    common), then random lists.

    The login storm that was its second part is gone: its figure measured
    its own client (one linear search per message, one socket per poll
    wake-up: 21-26 s for 1,000 devices the broker had served in 5 s).
    appferry-fleet (fleet/, bench/README.md "The fleet") simulates such
    storms, and far larger ones, without that cost.

    Target from issue 5: at least 5,000 diffs per second on a 2-core
    machine.

    Diffs are asked grouped by program (SYNC grouped: true), as nodes ask;
    --flat asks for the flat form of protocol version 1 instead.

    Usage: bench_sync [--devices N] [--apps N] [--programs N] [--seconds S]
                      [--window W] [--common N] [--flat] [--broker PATH]

    --broker PATH runs another appferry-broker binary (an older build, to
    compare old and new in one session).
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include "af_msg.h"
#include "af_catalog.h"
#include "bench_util.h"

static int s_devices = 20;
static int s_apps = 300;
static int s_programs = 400;
static double s_seconds = 5;
static int s_window = 16;
static int s_common = -1;           //  apps every device has; -1: two runs, 290 and 0
static bool s_flat = false;         //  ask for the flat diff of version 1, not the grouped one

//  A device's list: apps random programs, as a LIST message
static af_msg_t *
s_list (void)
{
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    list->seq = 1;
    af_msg_set_app_count (list, (uint32_t) s_apps);
    uint8_t *taken = (uint8_t *) calloc ((size_t) s_programs, 1);
    for (int i = 0; i < s_apps; i++) {
        int program = i;                //  the common ones first
        if (i >= s_common)
            do
                program = s_common + (int) randombytes_uniform ((uint32_t) (s_programs - s_common));
            while (taken [program]);
        taken [program] = 1;
        snprintf (list->apps [i].program, sizeof list->apps [i].program, "prog%06d", program);
        snprintf (list->apps [i].version_name, sizeof list->apps [i].version_name, "1.0");
        list->apps [i].version_code = 1;
    }
    free (taken);
    return list;
}

static int
s_catalog (const char *dir)
{
    af_catalog_t *catalog = af_catalog_new (dir, true);
    if (!catalog)
        return -1;
    af_catalog_entry_t *entries = (af_catalog_entry_t *) calloc ((size_t) s_programs, sizeof *entries);
    for (int i = 0; i < s_programs; i++) {
        af_catalog_entry_t *e = &entries [i];
        snprintf (e->package.program, sizeof e->package.program, "prog%06d", i);
        snprintf (e->package.display, sizeof e->package.display, "Program %d", i);
        snprintf (e->package.platform, sizeof e->package.platform, "android");
        snprintf (e->package.version_name, sizeof e->package.version_name, "1.0");
        e->package.version_code = 1;
        e->fit.platform = (uint8_t) af_platform_from_name ("android");
        e->fit.version_code = 1;
        e->fit.os_min = (uint32_t) (21 + i % 15);       //  some need a newer Android than others
        randombytes_buf (e->fit.hash, sizeof e->fit.hash);
        e->fit.size = 1000000;
    }
    char err [256];
    int rc = af_catalog_add (catalog, entries, (size_t) s_programs, err, sizeof err) == AF_OK? 0: -1;
    if (rc)
        fprintf (stderr, "bench_sync: catalog: %s\n", err);
    free (entries);
    af_catalog_destroy (&catalog);
    return rc;
}

static int
s_register (zsock_t *sock, const char *account)
{
    af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
    snprintf (reg->account, sizeof reg->account, "%s", account);
    strcpy (reg->password, "bench password");
    af_msg_t *reply = bench_request (sock, reg);
    int rc = reply && reply->id == AF_MSG_OK? 0: -1;
    af_msg_destroy (&reply);
    af_msg_destroy (&reg);
    return rc;
}

//  Part 1: diffs per second from one device of a full account
static int
s_diffs (const char *nodes_ep, const char *key, const char *account)
{
    zsock_t *socks [64] = { NULL };
    int rc = -1;
    char id [AF_ID_HEX + 1];
    for (int i = 0; i < s_devices; i++) {
        char model [32];
        snprintf (model, sizeof model, "Sync device %d", i);
        socks [i] = bench_dealer (nodes_ep, key);
        if (!socks [i] || (i == 0 && s_register (socks [0], account))
        ||  bench_login (socks [i], account, model, id))
            goto done;
        af_msg_t *list = s_list ();
        af_msg_t *ok = bench_request (socks [i], list);
        bool stored = ok && ok->id == AF_MSG_OK;
        af_msg_destroy (&ok);
        af_msg_destroy (&list);
        if (!stored)
            goto done;
    }
    //  Warm up: the first diff also tells how big a diff is
    af_msg_t *sync = af_msg_new (AF_MSG_SYNC);
    sync->grouped = !s_flat;
    af_msg_t *diff = bench_request (socks [0], sync);
    af_msg_destroy (&sync);
    if (!diff || diff->id != AF_MSG_SYNC_DIFF) {
        fprintf (stderr, "bench_sync: no diff: %s\n", diff? diff->reason: "no answer");
        af_msg_destroy (&diff);
        goto done;
    }
    uint32_t programs = diff->prog_count;
    af_msg_ungroup (diff);
    uint32_t entries = diff->app_count;
    bool truncated = diff->truncated;
    af_msg_destroy (&diff);
    size_t bytes = 0;

    int64_t start = zclock_usecs (), end = start + (int64_t) (s_seconds * 1e6);
    long sent = 0, received = 0;
    zsock_set_rcvtimeo (socks [0], 5000);
    while (zclock_usecs () < end) {
        while (sent - received < s_window) {
            sync = af_msg_new (AF_MSG_SYNC);
            sync->grouped = !s_flat;
            af_msg_set_rid_random (sync);
            af_msg_send (sync, socks [0], NULL);
            af_msg_destroy (&sync);
            sent++;
        }
        //  The first diff was decoded and checked; the rest are counted by
        //  their command name (the encoder writes it first), so the client,
        //  which shares this machine's two cores with the broker, costs less
        zframe_t *frame = zframe_recv (socks [0]);
        if (!frame) {
            fprintf (stderr, "bench_sync: no diff for 5 s\n");
            goto done;
        }
        size_t head = zframe_size (frame) < 32? zframe_size (frame): 32;
        bytes = zframe_size (frame);
        received += memmem (zframe_data (frame), head, "SYNC_DIFF", 9) != NULL;
        zframe_destroy (&frame);
    }
    double seconds = (double) (zclock_usecs () - start) / 1e6;
    printf ("diffs: %d devices x %d apps of %d programs, %d the same on every device: %u entries per diff%s\n",
            s_devices, s_apps, s_programs, s_common, entries, truncated? " (truncated)": "");
    if (s_flat)
        printf ("diffs: flat (version 1 form), %zu bytes each\n", bytes);
    else
        printf ("diffs: grouped by program, %u programs, %zu bytes each\n", programs, bytes);
    printf ("diffs: %.0f per second (%ld in %.1f s, %d in flight; target >= 5000)\n", received / seconds,
            received, seconds, s_window);
    rc = 0;
done:
    for (int i = 0; i < 64; i++)
        zsock_destroy (&socks [i]);
    return rc;
}

int
main (int argc, char *argv [])
{
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc? argv [i + 1]: NULL;
        int value = next? atoi (next): 0;
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_sync [--devices N] [--apps N] [--programs N] [--seconds S] [--window W]\n"
                    "                  [--common N] [--flat] [--broker PATH]\n"
                    "Sync diffs per second through the real broker and matcher (an account of N devices,\n"
                    "default 20, with 300 apps each of 400 programs). Login storms: appferry-fleet\n"
                    "(bench/README.md). --common N: every\n"
                    "device has the same first N programs, the rest at random (default: two runs,\n"
                    "apps-10 common, like a family's devices, then 0, lists drawn at random).\n");
            return 0;
        }
        else
        if (streq (argv [i], "--devices") && value >= 2 && value <= 64)
            s_devices = value, i++;
        else
        if (streq (argv [i], "--apps") && value >= 1 && value <= AF_MAX_APPS)
            s_apps = value, i++;
        else
        if (streq (argv [i], "--programs") && value >= 1 && value <= 100000)
            s_programs = value, i++;
        else
        if (streq (argv [i], "--seconds") && next && atof (next) > 0)
            s_seconds = atof (next), i++;
        else
        if (streq (argv [i], "--window") && value >= 1 && value <= 1000)
            s_window = value, i++;
        else
        if (streq (argv [i], "--common") && value >= 0 && value <= AF_MAX_APPS)
            s_common = value, i++;
        else
        if (streq (argv [i], "--flat"))
            s_flat = true;
        else
        if (streq (argv [i], "--broker") && next)
            bench_broker_path = next, i++;
        else {
            fprintf (stderr, "bench_sync: bad option '%s' (see --help)\n", argv [i]);
            return 2;
        }
    }
    if (s_apps > s_programs || s_common > s_apps) {       //  s_common -1: both runs
        fprintf (stderr, "bench_sync: --common <= --apps <= --programs, please\n");
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    char dir [] = "/tmp/appferry-bench-sync.XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    char catalog [PATH_MAX], nodes_ep [256] = "", key [64] = "", cmd [PATH_MAX + 16];
    snprintf (catalog, sizeof catalog, "%s/catalog", dir);
    pid_t broker = 0, matcher = 0;
    int rc = 1;
    if (s_catalog (catalog) || bench_start_services (dir, catalog, &broker, &matcher, nodes_ep, key))
        goto done;
    zclock_sleep (500);                 //  the matcher's handshake
    printf ("bench_sync: %d-core machine\n", (int) sysconf (_SC_NPROCESSORS_ONLN));
    if (s_common >= 0) {
        if (s_diffs (nodes_ep, key, "syncbench"))
            goto done;
    }
    else {
        //  A family whose devices share most apps, then lists drawn at random
        s_common = s_apps - 10 > 0? s_apps - 10: 0;
        if (s_diffs (nodes_ep, key, "syncfamily"))
            goto done;
        s_common = 0;
        if (s_diffs (nodes_ep, key, "syncrandom"))
            goto done;
    }
    printf ("broker peak resident memory: %.1f MiB\n", bench_status_kib (broker, "VmHWM:") / 1024.0);
    rc = 0;
done:
    bench_stop (matcher);
    bench_stop (broker);
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    if (system (cmd))
        fprintf (stderr, "bench_sync: could not remove %s\n", dir);
    return rc;
}
