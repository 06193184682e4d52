/*  =========================================================================
    bench_trust - the signed store's costs (B1, S4.7)

    1. The device's check of one offer (af_trust_check: two Ed25519
       verifications over BLAKE2b-512 prehashes, two JSON parses, the
       target lookup), for a program with 8 and with 256 packages: what an
       install costs beyond hashing the file.
    2. appferry-catalog's import of 10,000 signed packages (1,000 programs
       of 10): files hashed and stored, each publisher signature checked,
       1,000 targets documents signed.
    =========================================================================
*/
#include <czmq.h>
#include "af_catalog.h"
#include "af_signer.h"
#include "af_trust.h"
#include <sodium.h>
#include <time.h>

//  CPU time of this thread, us: the machine may be shared, wall time is not the cost
static int64_t
s_cpu_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
s_check_us (af_minisign_pub_t *root_pub, const char *dir, const char *program, const af_target_entry_t *t, int rounds)
{
    uint8_t *bundle;
    size_t size;
    char err [300];
    assert (af_trust_bundle_load (dir, program, &bundle, &size, err, sizeof err) == AF_OK);
    af_trust_want_t want = { program, t->hash, t->size, t->version_code, (uint64_t) zclock_time (), NULL };
    int64_t start = s_cpu_us ();
    for (int i = 0; i < rounds; i++) {
        af_trust_seen_t seen = { 0, 0, "" };
        if (af_trust_check (root_pub, bundle, size, &want, &seen, err, sizeof err) != AF_OK) {
            fprintf (stderr, "bench_trust: %s\n", err);
            exit (1);
        }
    }
    double us = (double) (s_cpu_us () - start) / rounds;
    printf ("check of one offer, %s (metadata %zu bytes): %.1f us of CPU\n", program, size, us);
    free (bundle);
    return us;
}

static void
s_bench_check (const char *dir)
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
    const char *programs [] = { "small", "large" };
    size_t counts [] = { 8, 256 };
    for (int p = 0; p < 2; p++) {
        uint64_t version;
        snprintf (path, sizeof path, "%s/targets/%s.json", dir, programs [p]);
        text = af_trust_targets_make (path, programs [p], targets, counts [p], (uint64_t) zclock_time () + 86400000, &version);
        assert (text && af_trust_write_signed (path, text, &store_sec, err, sizeof err) == AF_OK);
        free (text);
        //  The last target listed: the lookup's worst case
        s_check_us (&root_pub, dir, programs [p], &targets [counts [p] - 1], 2000);
    }
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
    int64_t start = zclock_mono (), cpu = s_cpu_us ();
    assert (af_catalog_import (catalog, path, &imported, err, sizeof err) == AF_OK && imported == 10000);
    int64_t took = zclock_mono () - start;
    cpu = s_cpu_us () - cpu;
    printf ("import of 10,000 signed packages (1,000 programs): %.2f s (%.2f s of CPU, %.0f us a package)\n",
            (double) took / 1000, (double) cpu / 1e6, (double) cpu / 10000);
    af_catalog_destroy (&catalog);
}

int
main (void)
{
    assert (sodium_init () >= 0);
    zsys_init ();
    char dir [] = "/tmp/bench_trust.XXXXXX";
    assert (mkdtemp (dir));
    s_bench_check (dir);
    s_bench_import (dir);
    char cmd [100];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    return system (cmd) == 0? 0: 1;
}
