/*  =========================================================================
    bench_trust - the signed store's costs (B1, S4.7)

    1. The device's check of one offer (af_trust_check: two minisign
       signatures, each two Ed25519 verifications, over BLAKE2b-512
       prehashes; the root document parsed, the targets document read for
       the one target), for a program with 8 and with 256 packages: what
       an install costs beyond hashing the file. Three cases: no cache (a
       device's first sight of both documents); a cache that knows the
       root only (a running device's first sight of a new targets
       document); a cache that knows both (the same documents again:
       their digests are known, nothing is verified again). Each also as
       a multiple of a baseline measured in the same run, one Ed25519
       verification, which follows the machine's load as the check does.
       --max-verifications R fails (exit 1) if a case costs more than R
       of them: ctest's bench_trust_check.
    2. appferry-catalog's import of 10,000 signed packages (1,000 programs
       of 10): files hashed and stored, each publisher signature checked,
       1,000 targets documents signed.
    =========================================================================
*/
#include <czmq.h>
#include "af_catalog.h"
#include "af_signer.h"
#include "af_trust.h"
#include "bench_stats.h"
#include <sodium.h>
#include <time.h>

//  CPU time of this thread, ns: the machine may be shared, wall time is not the cost
static int64_t
s_cpu_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  The baseline: one Ed25519 verification of a 64-byte digest, what each
//  minisign signature costs twice (the signature and its trusted comment).
//  Timed (two of them) just before each check, so that a ratio compares
//  two things the machine did at the same speed.
typedef struct {
    uint8_t pk [crypto_sign_PUBLICKEYBYTES], sig [crypto_sign_BYTES], digest [64];
} baseline_t;

static void
s_baseline_init (baseline_t *b)
{
    uint8_t sk [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (b->pk, sk);
    randombytes_buf (b->digest, sizeof b->digest);
    crypto_sign_detached (b->sig, NULL, b->digest, sizeof b->digest, sk);
}

//  One verification, ns (the mean of two)
static double
s_baseline_ns (const baseline_t *b)
{
    int64_t start = s_cpu_ns ();
    for (int k = 0; k < 2; k++)
        if (crypto_sign_verify_detached (b->sig, b->digest, sizeof b->digest, b->pk) != 0)
            exit (1);
    return (double) (s_cpu_ns () - start) / 2;
}

//  One check in each of the three cases below: three functions, so that
//  callgrind can count each (--toggle-collect='s_first_sight*'); never
//  inlined nor merged (gcc's noipa; clang has only noinline)
#if defined (__clang__)
#   define S_OPAQUE __attribute__ ((noinline))
#else
#   define S_OPAQUE __attribute__ ((noipa))
#endif
S_OPAQUE static int
s_first_sight (const af_minisign_pub_t *root_pub, const uint8_t *bundle, size_t size, const af_trust_want_t *want,
               char *err, size_t errlen)
{
    af_trust_seen_t seen = { 0, 0, "" };
    return af_trust_check (root_pub, NULL, bundle, size, want, &seen, err, errlen);
}

S_OPAQUE static int
s_root_known (const af_minisign_pub_t *root_pub, af_trust_cache_t *cache, const uint8_t *bundle, size_t size,
              const af_trust_want_t *want, char *err, size_t errlen)
{
    af_trust_seen_t seen = { 0, 0, "" };
    return af_trust_check (root_pub, cache, bundle, size, want, &seen, err, errlen);
}

S_OPAQUE static int
s_seen_before (const af_minisign_pub_t *root_pub, af_trust_cache_t *cache, const uint8_t *bundle, size_t size,
               const af_trust_want_t *want, char *err, size_t errlen)
{
    af_trust_seen_t seen = { 0, 0, "" };
    return af_trust_check (root_pub, cache, bundle, size, want, &seen, err, errlen);
}

//  The check of one offer: without a cache (the device's first sight of
//  both documents); with a cache that knows the root but not the targets
//  (what a running device pays for a new targets document: the root
//  changes rarely); and with one that knows both (the same documents again)
static bool
s_check_us (af_minisign_pub_t *root_pub, const char *dir, const char *program, const af_target_entry_t *t,
            const af_target_entry_t *warm_t, int rounds, const baseline_t *baseline, double max_verifications)
{
    static const char *passes [] = { "first sight (no cache)", "new targets, root known (cache)",
                                     "documents seen before (cache)" };
    uint8_t *bundle, *warm;
    size_t size, warm_size;
    char err [300] = "";
    assert (af_trust_bundle_load (dir, program, &bundle, &size, err, sizeof err) == AF_OK);
    assert (af_trust_bundle_load (dir, "warm", &warm, &warm_size, err, sizeof err) == AF_OK);
    af_trust_want_t want = { program, t->hash, t->size, t->version_code, (uint64_t) zclock_time (), NULL };
    af_trust_want_t want_warm = { "warm", warm_t->hash, warm_t->size, warm_t->version_code, want.now, NULL };
    af_trust_cache_t *cache = af_trust_cache_new ();
    bool ok = true;
    double *times = (double *) malloc (sizeof (double) * (size_t) rounds);
    double *ratios = (double *) malloc (sizeof (double) * (size_t) rounds);
    double *verify = (double *) malloc (sizeof (double) * (size_t) rounds);
    assert (times && ratios && verify);
    for (int pass = 0; pass < 3; pass++) {
        uint64_t spared_before, made_before;
        af_trust_cache_counts (cache, &spared_before, &made_before);
        for (int i = 0; i < rounds; i++) {
            int code;
            if (pass == 1) {
                af_trust_cache_destroy (&cache);
                cache = af_trust_cache_new ();
                af_trust_seen_t seen = { 0, 0, "" };
                if (af_trust_check (root_pub, cache, warm, warm_size, &want_warm, &seen, err, sizeof err) != AF_OK)
                    break;
            }
            verify [i] = s_baseline_ns (baseline);
            int64_t start = s_cpu_ns ();
            code = pass == 0? s_first_sight (root_pub, bundle, size, &want, err, sizeof err):
                   pass == 1? s_root_known (root_pub, cache, bundle, size, &want, err, sizeof err):
                              s_seen_before (root_pub, cache, bundle, size, &want, err, sizeof err);
            times [i] = (double) (s_cpu_ns () - start);
            ratios [i] = times [i] / verify [i];
            if (code != AF_OK)
                break;
        }
        uint64_t spared, made;
        af_trust_cache_counts (cache, &spared, &made);
        //  The cache did what it is for: the root known (and the targets
        //  verified) in pass 1, nothing verified again in pass 2
        if (*err || (pass == 1 && (spared != 1 || made != 3))
        ||  (pass == 2 && (spared - spared_before != 2 * (uint64_t) rounds || made != made_before))) {
            fprintf (stderr, "bench_trust: %s (cache: %llu spared, %llu verified)\n", err,
                     (unsigned long long) spared, (unsigned long long) made);
            exit (1);
        }
        double ns = bench_median (times, rounds), ratio = bench_median (ratios, rounds), base = bench_median (verify, rounds);
        printf ("check of one offer, %s (metadata %zu bytes), %s: %.1f us of CPU, %.2f verifications "
                "(one: %.1f us)\n", program, size, passes [pass], ns / 1000, ratio, base / 1000);
        if (max_verifications > 0 && ratio > max_verifications) {
            printf ("bench_trust: over %.1f verifications\n", max_verifications);
            ok = false;
        }
    }
    af_trust_cache_destroy (&cache);
    free (times);
    free (ratios);
    free (verify);
    free (bundle);
    free (warm);
    return ok;
}

static bool
s_bench_check (const char *dir, int rounds, const char *only, double max_verifications)
{
    af_minisign_pub_t root_pub, store_pub;
    af_minisign_sec_t root_sec, store_sec;
    af_minisign_keygen (&root_pub, &root_sec);
    af_minisign_keygen (&store_pub, &store_sec);
    char path [600], err [300], *text;
    assert (zsys_dir_create ("%s/targets", dir) == 0);
    snprintf (path, sizeof path, "%s/root.json", dir);
    af_trust_root_make (&store_pub, 1, 1, (uint64_t) zclock_time () + 86400000, &text);
    assert (af_trust_write_signed (path, text, &root_sec, err, sizeof err) == AF_OK);
    free (text);
    af_target_entry_t targets [256];
    for (int i = 0; i < 256; i++) {
        af_target_entry_t *t = &targets [i];
        snprintf (t->platform, sizeof t->platform, "android");
        t->version_code = (uint64_t) (256 - i);
        snprintf (t->version_name, sizeof t->version_name, "%d.0", 256 - i);
        uint8_t raw [AF_HASH_SIZE];
        crypto_generichash (raw, sizeof raw, (const uint8_t *) &i, sizeof i, NULL, 0);
        sodium_bin2hex (t->hash, sizeof t->hash, raw, sizeof raw);
        t->size = 100;
        snprintf (t->publisher, sizeof t->publisher, "0123456789ABCDEF");
    }
    bool ok = true;
    baseline_t baseline;
    s_baseline_init (&baseline);
    printf ("medians of %d rounds; verifications: the check's CPU time over one Ed25519 verification's, timed "
            "just before it\n", rounds);
    const char *programs [] = { "warm", "small", "large" };
    size_t counts [] = { 1, 8, 256 };
    for (int p = 0; p < 3; p++) {
        uint64_t version;
        snprintf (path, sizeof path, "%s/targets/%s.json", dir, programs [p]);
        text = af_trust_targets_make (path, programs [p], targets, counts [p], (uint64_t) zclock_time () + 86400000, &version);
        assert (text && af_trust_write_signed (path, text, &store_sec, err, sizeof err) == AF_OK);
        free (text);
        //  The last target listed: the lookup's worst case
        if (p > 0 && (!only || streq (only, programs [p])))
            ok = s_check_us (&root_pub, dir, programs [p], &targets [counts [p] - 1], &targets [0], rounds, &baseline,
                             max_verifications) && ok;
    }
    return ok;
}

static void
s_bench_import (const char *dir)
{
    char path [700], err [1000], *text;
    af_minisign_pub_t root_pub, store_pub, pub;
    af_minisign_sec_t root_sec, store_sec, sec;
    af_minisign_keygen (&root_pub, &root_sec);
    af_minisign_keygen (&store_pub, &store_sec);
    af_minisign_keygen (&pub, &sec);
    assert (zsys_dir_create ("%s/cat/keys", dir) == 0 && zsys_dir_create ("%s/docs", dir) == 0
         && zsys_dir_create ("%s/pkg", dir) == 0);
    snprintf (path, sizeof path, "%s/cat/keys/store.key", dir);
    assert (af_minisign_sec_save (path, &store_sec, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/root.pub", dir);
    assert (af_minisign_pub_save (path, &root_pub, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/pub.pub", dir);
    assert (af_minisign_pub_save (path, &pub, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/pubs-in.json", dir);
    FILE *file = fopen (path, "w");
    fprintf (file, "[{\"name\": \"Bench\", \"key\": \"pub.pub\", \"programs\": [\"*\"]}]");
    fclose (file);
    uint64_t far = (uint64_t) zclock_time () + 86400000;
    assert (af_trust_publishers_make (path, 1, far, &text, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/docs/publishers.json", dir);
    assert (af_trust_write_signed (path, text, &root_sec, err, sizeof err) == AF_OK);
    free (text);
    af_trust_root_make (&store_pub, 1, 1, far, &text);
    snprintf (path, sizeof path, "%s/docs/root.json", dir);
    assert (af_trust_write_signed (path, text, &root_sec, err, sizeof err) == AF_OK);
    free (text);
    char cat [700], root [700], docs [700];
    snprintf (cat, sizeof cat, "%s/cat", dir);
    snprintf (root, sizeof root, "%s/root.pub", dir);
    snprintf (docs, sizeof docs, "%s/docs", dir);
    assert (af_signer_install (cat, root, docs, err, sizeof err) == AF_OK);
    //  10,000 small package files, each signed by the publisher
    snprintf (path, sizeof path, "%s/manifest.json", dir);
    FILE *manifest = fopen (path, "w");
    fprintf (manifest, "[\n");
    for (int i = 0; i < 10000; i++) {
        char body [64], name [700];
        int n = snprintf (body, sizeof body, "package %d\n", i);
        snprintf (name, sizeof name, "%s/pkg/p%d.tar", dir, i);
        file = fopen (name, "w");
        fwrite (body, 1, (size_t) n, file);
        fclose (file);
        char *sig = af_minisign_sign (&sec, body, (size_t) n, "bench");
        strcat (name, ".minisig");
        file = fopen (name, "w");
        fputs (sig, file);
        fclose (file);
        free (sig);
        fprintf (manifest, "%s{\"program\": \"prog%d\", \"platform\": \"android\", \"versionCode\": %d, "
                 "\"versionName\": \"%d\", \"minSdk\": 21, \"file\": \"pkg/p%d.tar\"}\n", i? ",": "",
                 i / 10, i % 10 + 1, i % 10 + 1, i);
    }
    fprintf (manifest, "]\n");
    fclose (manifest);
    af_catalog_t *catalog = af_catalog_new (cat, true);
    assert (catalog);
    size_t imported;
    int64_t start = zclock_mono (), cpu = s_cpu_ns () / 1000;
    assert (af_catalog_import (catalog, path, &imported, err, sizeof err) == AF_OK && imported == 10000);
    int64_t took = zclock_mono () - start;
    cpu = s_cpu_ns () / 1000 - cpu;
    printf ("import of 10,000 signed packages (1,000 programs): %.2f s (%.2f s of CPU, %.0f us a package)\n",
            (double) took / 1000, (double) cpu / 1e6, (double) cpu / 10000);
    af_catalog_destroy (&catalog);
}

int
main (int argc, char *argv [])
{
    int rounds = 2000;
    bool import = true;
    const char *only = NULL;
    double max_verifications = 0;
    for (int i = 1; i < argc; i++)
        if (streq (argv [i], "--rounds") && i + 1 < argc)
            rounds = atoi (argv [++i]);
        else
        if (streq (argv [i], "--no-import"))
            import = false;
        else
        if (streq (argv [i], "--only") && i + 1 < argc)
            only = argv [++i];              //  small or large
        else
        if (streq (argv [i], "--max-verifications") && i + 1 < argc)
            max_verifications = atof (argv [++i]);  //  fail if a check costs more
        else {
            fprintf (stderr, "usage: bench_trust [--rounds N] [--no-import] [--only small|large] "
                     "[--max-verifications R]\n");
            return 2;
        }
    assert (sodium_init () >= 0);
    zsys_init ();
    char dir [] = "/tmp/bench_trust.XXXXXX";
    assert (mkdtemp (dir));
    bool ok = s_bench_check (dir, rounds, only, max_verifications);
    if (import)
        s_bench_import (dir);
    char cmd [100];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    return system (cmd) == 0 && ok? 0: 1;
}
