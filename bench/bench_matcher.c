/*  =========================================================================
    bench_matcher - resolutions per second, in process, on one core

    Builds a catalog of PROGRAMS programs (default 100,000) with 3-5
    packages each (Android builds across ABIs, API ranges and densities, a
    TV build, a Windows build, an iOS store link) through the same record
    encoding as a manifest import, then resolves random (program, device)
    pairs from 8 device descriptions for a bounded time. As a baseline
    measured in the same run, it times bare mdb_get of the same keys: the
    floor that any LMDB-backed resolver pays.

    Usage: bench_matcher [--programs N] [--seconds S]
    Targets: at least 1,000,000 resolutions per second (issue 3); at most
    2,800 instructions per resolution counted by callgrind (issue 10; the
    command and how to read it are in bench/README.md).
    =========================================================================
*/
#include <czmq.h>
#include <lmdb.h>
#include <sodium.h>
#include "af_catalog.h"

static uint64_t s_state = 88172645463325252ULL;
static inline uint64_t
s_rand (void)
{
    s_state ^= s_state << 13;
    s_state ^= s_state >> 7;
    s_state ^= s_state << 17;
    return s_state;
}

static void
s_entry (af_catalog_entry_t *e, int program, const char *platform, uint64_t version,
         uint32_t os_min, uint32_t os_max, uint32_t abi_mask, uint8_t forms, uint16_t density)
{
    memset (e, 0, sizeof *e);
    snprintf (e->package.program, sizeof e->package.program, "prog%06d", program);
    snprintf (e->package.display, sizeof e->package.display, "Program %d", program);
    snprintf (e->package.platform, sizeof e->package.platform, "%s", platform);
    snprintf (e->package.version_name, sizeof e->package.version_name, "%llu.0", (unsigned long long) version);
    e->package.version_code = version;
    e->fit.platform = (uint8_t) af_platform_from_name (platform);
    e->fit.version_code = version;
    e->fit.os_min = os_min;
    e->fit.os_max = os_max;
    e->fit.abi_mask = abi_mask;
    e->fit.form_mask = forms;
    e->fit.density = density;
    if (streq (platform, "ios")) {
        e->fit.store_only = 1;
        snprintf (e->package.store_link, sizeof e->package.store_link,
                  "https://apps.example/ios/prog%06d", program);
    }
    else {
        randombytes_buf (e->fit.hash, sizeof e->fit.hash);
        e->fit.size = 1000000 + s_rand () % 50000000;
    }
}

//  Each timed phase ends at its deadline or after this many operations
static const uint64_t s_max_ops = 50000000;

//  Read the options. -1 to go on, or the status to exit with: 0 after
//  --help, 2 for a bad option.
static int
s_parse_options (int argc, char *argv [], int *programs, double *seconds)
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_matcher [--programs N] [--seconds S]\n"
                    "Resolutions per second, in process, on a generated catalog of N programs\n"
                    "(default 100000), beside bare mdb_get of the same keys.\n");
            return 0;
        }
        if (i + 1 < argc && streq (argv [i], "--programs"))
            *programs = atoi (argv [++i]);
        else
        if (i + 1 < argc && streq (argv [i], "--seconds"))
            *seconds = atof (argv [++i]);
        else {
            fprintf (stderr, "bench_matcher: unknown option or missing value: %s (see --help)\n", argv [i]);
            return 2;
        }
    }
    if (*programs < 1 || *programs > 10000000 || *seconds <= 0 || *seconds > 60) {
        fprintf (stderr, "usage: bench_matcher [--programs 1..10000000] [--seconds 0..60]\n");
        return 2;
    }
    return -1;
}

//  1. Build the catalog in dir in batches (one write transaction each). 0,
//  or -1 with a message printed.
static int
s_build_catalog (const char *dir, int programs)
{
    af_catalog_t *catalog = af_catalog_new (dir, true);
    assert (catalog);
    const uint32_t ARM64 = 1u << 2, V7A = 1u << 1, X86_64 = 1u << 4;
    const uint8_t PHONE_TABLET = (1 << AF_FORM_PHONE) | (1 << AF_FORM_TABLET), TV = 1 << AF_FORM_TV;
    size_t batch = 5000 * 5;
    af_catalog_entry_t *entries = (af_catalog_entry_t *) calloc (batch, sizeof (af_catalog_entry_t));
    assert (entries);
    int64_t start = zclock_usecs ();
    size_t total = 0, count = 0;
    char err [512];
    for (int p = 0; p < programs; p++) {
        uint64_t v = 100 + s_rand () % 1000;
        s_entry (&entries [count++], p, "android", v, 24, 0, ARM64, PHONE_TABLET, 480);
        s_entry (&entries [count++], p, "android", v, 24, 0, V7A, PHONE_TABLET, 320);
        if (p % 2 == 0)
            s_entry (&entries [count++], p, "android", v - 10, 21, 23, V7A | ARM64, 1 << AF_FORM_PHONE, 0);
        if (p % 3 == 0)
            s_entry (&entries [count++], p, "android", v, 28, 0, V7A | ARM64, TV, 0);
        if (p % 4 == 0)
            s_entry (&entries [count++], p, "windows", v, 10u << 20, 0, X86_64, 1 << AF_FORM_PC, 0);
        s_entry (&entries [count++], p, "ios", v, 15u << 20, 0, 0, 0, 0);
        if (count + 5 > batch || p == programs - 1) {
            if (af_catalog_add (catalog, entries, count, err, sizeof err) != AF_OK) {
                fprintf (stderr, "bench_matcher: %s\n", err);
                return -1;
            }
            total += count;
            count = 0;
        }
    }
    free (entries);
    af_catalog_destroy (&catalog);
    printf ("catalog: %d programs, %zu packages, built in %.1f s\n", programs, total,
            (zclock_usecs () - start) / 1e6);
    fflush (stdout);
    return 0;
}

//  The 8 devices the resolutions are for. 0, or -1 with a message printed.
static int
s_load_devices (af_device_t devices [8])
{
    static const char *devices_json [] = {
        "{\"platform\":\"android\",\"sdkVersion\":33,\"model\":\"Pixel 7\",\"formFactor\":\"phone\","
        "\"screenWidth\":1080,\"screenHeight\":2400,\"screenDensity\":420,\"supportedAbis\":[\"arm64-v8a\",\"armeabi-v7a\"]}",
        "{\"platform\":\"android\",\"sdkVersion\":30,\"model\":\"A10\",\"formFactor\":\"phone\","
        "\"screenWidth\":720,\"screenHeight\":1520,\"screenDensity\":280,\"supportedAbis\":[\"armeabi-v7a\"]}",
        "{\"platform\":\"android\",\"sdkVersion\":31,\"model\":\"Tab S7\",\"formFactor\":\"tablet\","
        "\"screenWidth\":1600,\"screenHeight\":2560,\"screenDensity\":274,\"supportedAbis\":[\"arm64-v8a\",\"armeabi-v7a\"]}",
        "{\"platform\":\"android\",\"sdkVersion\":31,\"model\":\"TV\",\"formFactor\":\"tv\","
        "\"screenWidth\":3840,\"screenHeight\":2160,\"screenDensity\":320,\"supportedAbis\":[\"armeabi-v7a\"]}",
        "{\"platform\":\"android\",\"sdkVersion\":22,\"model\":\"Old\",\"formFactor\":\"phone\","
        "\"screenWidth\":480,\"screenHeight\":800,\"screenDensity\":240,\"supportedAbis\":[\"armeabi-v7a\"]}",
        "{\"platform\":\"ios\",\"osVersion\":\"17.1\",\"model\":\"iPhone 13\",\"formFactor\":\"phone\","
        "\"screenWidth\":1170,\"screenHeight\":2532}",
        "{\"platform\":\"windows\",\"osVersion\":\"11\",\"model\":\"PC\",\"formFactor\":\"pc\","
        "\"screenWidth\":2560,\"screenHeight\":1440,\"supportedAbis\":[\"x86_64\"]}",
        "{\"platform\":\"macos\",\"osVersion\":\"14.1\",\"model\":\"Mac\",\"formFactor\":\"pc\","
        "\"screenWidth\":2560,\"screenHeight\":1664,\"supportedAbis\":[\"arm64-v8a\"]}"
    };
    char err [512];
    for (int i = 0; i < 8; i++)
        if (af_device_from_json (&devices [i], devices_json [i], err, sizeof err) != AF_OK) {
            fprintf (stderr, "device %d: %s\n", i, err);
            return -1;
        }
    return 0;
}

//  2. Baseline: bare mdb_get of the same keys in a reused read txn, for
//  seconds. Lookups per second, or -1 with a message printed.
static double
s_baseline (const char *dir, char (*names) [16], int programs, double seconds)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create (&env);
    mdb_env_set_maxdbs (env, 8);
    mdb_env_set_mapsize (env, (size_t) 16 << 30);
    if (mdb_env_open (env, dir, MDB_RDONLY, 0600) || mdb_txn_begin (env, NULL, MDB_RDONLY, &txn)
    ||  mdb_dbi_open (txn, "fit", 0, &dbi)) {
        fprintf (stderr, "bench_matcher: cannot open the catalog with LMDB\n");
        return -1;
    }
    //  A handle opened in a read transaction is kept only if it commits
    if (mdb_txn_commit (txn) || mdb_txn_begin (env, NULL, MDB_RDONLY, &txn)) {
        fprintf (stderr, "bench_matcher: cannot start a read transaction\n");
        return -1;
    }
    mdb_txn_reset (txn);
    uint64_t ops = 0, found = 0;
    int64_t start = zclock_usecs ();
    int64_t deadline = start + (int64_t) (seconds * 1e6);
    while (ops < s_max_ops) {
        for (int i = 0; i < 1000; i++, ops++) {
            mdb_txn_renew (txn);
            const char *name = names [s_rand () % (uint64_t) programs];
            MDB_val key = { strlen (name), (void *) name }, value;
            found += mdb_get (txn, dbi, &key, &value) == 0;
            mdb_txn_reset (txn);
        }
        if (zclock_usecs () > deadline)
            break;
    }
    double base_rate = ops / ((zclock_usecs () - start) / 1e6);
    mdb_txn_abort (txn);
    mdb_env_close (env);
    assert (found == ops);
    return base_rate;
}

//  3. Resolutions through af_catalog_resolve, read-only like a matcher, for
//  seconds, counting the outcomes in fits and the resolutions in *ops_p.
//  Resolutions per second, or -1 with a message printed.
static double
s_resolutions (const char *dir, char (*names) [16], int programs, const af_device_t devices [8],
               double seconds, uint64_t fits [4], uint64_t *ops_p)
{
    af_catalog_t *catalog = af_catalog_new (dir, false);
    assert (catalog);
    af_resolution_t result;
    uint64_t ops = 0;
    int64_t start = zclock_usecs ();
    int64_t deadline = start + (int64_t) (seconds * 1e6);
    while (ops < s_max_ops) {
        for (int i = 0; i < 1000; i++, ops++) {
            uint64_t r = s_rand ();
            if (af_catalog_resolve (catalog, names [r % (uint64_t) programs], &devices [(r >> 40) & 7], &result) != AF_OK) {
                fprintf (stderr, "bench_matcher: resolve failed\n");
                return -1;
            }
            fits [result.fit]++;
        }
        if (zclock_usecs () > deadline)
            break;
    }
    double rate = ops / ((zclock_usecs () - start) / 1e6);
    af_catalog_destroy (&catalog);
    *ops_p = ops;
    return rate;
}

int
main (int argc, char *argv [])
{
    int programs = 100000;
    double seconds = 3.0;
    int rc = s_parse_options (argc, argv, &programs, &seconds);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (stderr);
    char dir [] = "/tmp/af_bench_matcher_XXXXXX";
    assert (mkdtemp (dir));
    if (s_build_catalog (dir, programs))
        return 1;
    af_device_t devices [8];
    if (s_load_devices (devices))
        return 1;
    char (*names) [16] = calloc ((size_t) programs, 16);
    assert (names);
    for (int p = 0; p < programs; p++)
        snprintf (names [p], 16, "prog%06d", p);
    double base_rate = s_baseline (dir, names, programs, seconds);
    if (base_rate < 0)
        return 1;
    uint64_t fits [4] = { 0, 0, 0, 0 }, ops;
    double rate = s_resolutions (dir, names, programs, devices, seconds, fits, &ops);
    if (rate < 0)
        return 1;

    printf ("baseline, bare mdb_get of the program's fit records: %10.0f lookups/s\n", base_rate);
    printf ("af_catalog_resolve, 8 devices, random programs:      %10.0f resolutions/s\n", rate);
    printf ("ratio resolve / mdb_get: %.2f\n", rate / base_rate);
    printf ("outcomes: %llu package, %llu store link, %llu no fit, %llu unknown\n",
            (unsigned long long) fits [0], (unsigned long long) fits [1],
            (unsigned long long) fits [2], (unsigned long long) fits [3]);
    printf ("resolutions: %llu (under callgrind, divide its Collected count by this)\n",
            (unsigned long long) ops);
    printf ("target >= 1,000,000 resolutions/s on one core: %s\n", rate >= 1e6? "met": "NOT met");
    free (names);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (system (command) != 0)
        fprintf (stderr, "could not remove %s\n", dir);
    return 0;
}
