/*  =========================================================================
    appferry-catalog - import, resolve and list packages of a catalog
    =========================================================================
*/
#include <czmq.h>
#include "af_catalog.h"
#include "af_signer.h"
#include "af_trust.h"

#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <errno.h>
#include <unistd.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-catalog [--catalog DIR] COMMAND [ARGS] [OPTIONS]\n"
"Manage the package catalog that appferry-matcher serves, and its signatures.\n"
"\n"
"Commands (those with DIR need --catalog):\n"
"  import MANIFEST.json        add the manifest's packages (all or nothing); each\n"
"                              file needs FILE.minisig by a publisher trusted for\n"
"                              its program; format: matcher/MANIFEST.md     (DIR)\n"
"  resolve PROGRAM DEVICE.json which package of PROGRAM fits the device      (DIR)\n"
"  list                        every program and every version it has        (DIR)\n"
"  keygen [--root] OUT         a new key pair: OUT.key (0600) and OUT.pub; keep a\n"
"                              root key offline\n"
"  keygen --store              the catalog's online key, DIR/keys/store.{key,pub}\n"
"  sign --key KEY FILE...      sign files as a publisher: FILE.minisig (the same\n"
"                              as minisign -S -m FILE)\n"
"  root-sign --key ROOT.key --store-key PUB[,PUB] --publishers IN.json OUTDIR\n"
"                              with the root key: OUTDIR/root.json (the store keys)\n"
"                              and OUTDIR/publishers.json, signed\n"
"  trust ROOT.pub SRCDIR       install the root's documents from SRCDIR        (DIR)\n"
"  resign                      sign every program's targets again (a new store key,\n"
"                              or to renew them before they expire)          (DIR)\n"
"\n"
"Options:\n"
"  -C, --catalog DIR        catalog directory (created by import)\n"
"  -j, --json               print JSON\n"
"      --insecure-unsigned  import: allow unsigned packages into a catalog without\n"
"                           trust (tests, demos; devices refuse them)\n"
"      --expires SECONDS    how long what is signed is valid (targets: 30 days,\n"
"                           root documents: 365 days)\n"
"      --version N          root-sign: the documents' version (default: one more\n"
"                           than in OUTDIR)\n"
"  -h, --help               show this help and exit\n"
"\n"
"Exit status: 0 done, 1 refused (import error, no fitting package), 2 usage.\n");
}

typedef struct {
    const char *dir;
    bool json, insecure, root, store;
    uint64_t expires_s;
    uint64_t version;
    const char *key, *store_keys, *publishers;
    int argc;                       //  the command's arguments
    char **argv;
} options_t;

static int
s_import (af_catalog_t *catalog, options_t *o)
{
    char err [1024];
    size_t count;
    af_catalog_set_signing (catalog, o->insecure, o->expires_s);
    if (af_catalog_import (catalog, o->argv [0], &count, err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-catalog: nothing imported: %s\n", err);
        return 1;
    }
    printf ("imported %zu package%s from %s\n", count, count == 1? "": "s", o->argv [0]);
    return 0;
}

static int
s_resolve (af_catalog_t *catalog, options_t *o)
{
    char err [1024];
    af_device_t device;
    af_resolution_t result;
    if (af_device_load (&device, o->argv [1], err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-catalog: %s\n", err);
        return 1;
    }
    if (af_catalog_resolve (catalog, o->argv [0], &device, &result) != AF_OK) {
        fprintf (stderr, "appferry-catalog: catalog read failed\n");
        return 1;
    }
    if (o->json) {
        json_t *doc = (json_t *) af_resolution_to_jansson (o->argv [0], &result);
        char *text = json_dumps (doc, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("%s\n", text);
        free (text);
        json_decref (doc);
    }
    else
    if (result.fit == AF_FIT_PACKAGE)
        printf ("%s %s for %s%s%s: %llu bytes, package %s, file %s\n", result.package.program,
                result.package.version_name, result.package.platform, *result.package.abi? " ": "",
                result.package.abi, (unsigned long long) result.package.size,
                result.package.package_id, result.package.hash);
    else
    if (result.fit == AF_FIT_STORE_LINK)
        printf ("%s %s installs from its store: %s\n", result.package.program,
                result.package.version_name, result.package.store_link);
    else
        fprintf (stderr, "%s\n", result.reason);
    return result.fit == AF_FIT_PACKAGE || result.fit == AF_FIT_STORE_LINK? 0: 1;
}

static int
s_resign (af_catalog_t *catalog, options_t *o)
{
    char err [1024];
    size_t count;
    af_catalog_set_signing (catalog, false, o->expires_s);
    if (af_catalog_resign (catalog, &count, err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-catalog: resign: %s\n", err);
        return 1;
    }
    printf ("signed the targets of %zu program%s\n", count, count == 1? "": "s");
    return 0;
}

//  The commands that open the catalog
static int
s_catalog_command (const char *command, options_t *o)
{
    bool writes = !streq (command, "resolve") && !streq (command, "list");
    af_catalog_t *catalog = af_catalog_new (o->dir, writes);
    if (!catalog) {
        fprintf (stderr, "appferry-catalog: cannot open the catalog in %s\n", o->dir);
        return 1;
    }
    int rc;
    if (streq (command, "import"))
        rc = s_import (catalog, o);
    else
    if (streq (command, "resolve"))
        rc = s_resolve (catalog, o);
    else
    if (streq (command, "resign"))
        rc = s_resign (catalog, o);
    else
        rc = af_catalog_list (catalog, stdout, o->json) == AF_OK? 0: 1;
    af_catalog_destroy (&catalog);
    return rc;
}

//  keygen: OUT.key and OUT.pub, or the catalog's store key
static int
s_keygen (options_t *o)
{
    char base [4096], path [4200], err [1024];
    if (o->store) {
        if (!o->dir || o->argc != 0 || zsys_dir_create ("%s/keys", o->dir)) {
            fprintf (stderr, "appferry-catalog: keygen --store needs --catalog DIR (and no OUT)\n");
            return o->dir && o->argc == 0? 1: 2;
        }
        snprintf (base, sizeof base, "%s/keys/store", o->dir);
    }
    else
        snprintf (base, sizeof base, "%s", o->argv [0]);
    snprintf (path, sizeof path, "%s.key", base);
    if (access (path, F_OK) == 0) {
        fprintf (stderr, "appferry-catalog: %s exists; not replaced\n", path);
        return 1;
    }
    af_minisign_pub_t pub;
    af_minisign_sec_t sec;
    af_minisign_keygen (&pub, &sec);
    int code = af_minisign_sec_save (path, &sec, err, sizeof err);
    sodium_memzero (&sec, sizeof sec);
    snprintf (path, sizeof path, "%s.pub", base);
    if (code == AF_OK)
        code = af_minisign_pub_save (path, &pub, err, sizeof err);
    if (code != AF_OK) {
        fprintf (stderr, "appferry-catalog: keygen: %s\n", err);
        return 1;
    }
    char id [AF_MINISIGN_KEYID_HEX + 1];
    af_minisign_id (pub.key_id, id);
    printf ("key %s: %s.key (secret%s), %s.pub\n", id, base,
            o->root? "; keep it offline: it signs the store's keys": "", base);
    return 0;
}

//  sign --key KEY FILE...: FILE.minisig for each
static int
s_sign (options_t *o)
{
    char err [1024];
    af_minisign_sec_t sec;
    if (!o->key || af_minisign_sec_load (o->key, &sec, err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-catalog: sign: %s\n", o->key? err: "needs --key KEY");
        return o->key? 1: 2;
    }
    int rc = 0;
    for (int i = 0; i < o->argc && rc == 0; i++) {
        uint8_t digest [64];
        char trusted [600], path [4200];
        const char *base = strrchr (o->argv [i], '/');
        snprintf (trusted, sizeof trusted, "timestamp:%lld\tfile:%s", (long long) (zclock_time () / 1000),
                  base? base + 1: o->argv [i]);
        char *sig = NULL;
        if (af_minisign_hash_file (o->argv [i], digest, NULL, err, sizeof err) == AF_OK)
            sig = af_minisign_sign_hash (&sec, digest, trusted);
        snprintf (path, sizeof path, "%s.minisig", o->argv [i]);
        FILE *file = sig? fopen (path, "w"): NULL;
        if (!file || fputs (sig, file) < 0 || fclose (file)) {
            fprintf (stderr, "appferry-catalog: sign: %s\n", sig? strerror (errno): err);
            rc = 1;
        }
        free (sig);
    }
    sodium_memzero (&sec, sizeof sec);
    return rc;
}

//  root-sign: the root's two documents, signed, in OUTDIR
static int
s_root_sign (options_t *o)
{
    char err [1024], path [4200];
    af_minisign_sec_t sec;
    af_minisign_pub_t store [AF_MAX_STORE_KEYS];
    size_t store_count = 0;
    if (!o->key || !o->store_keys || !o->publishers) {
        fprintf (stderr, "appferry-catalog: root-sign needs --key, --store-key and --publishers\n");
        return 2;
    }
    int code = af_minisign_sec_load (o->key, &sec, err, sizeof err);
    char *list = strdup (o->store_keys), *save = NULL;
    for (char *name = strtok_r (list, ",", &save); name && code == AF_OK; name = strtok_r (NULL, ",", &save))
        if (store_count == AF_MAX_STORE_KEYS) {
            snprintf (err, sizeof err, "at most %d store keys", AF_MAX_STORE_KEYS);
            code = AF_E_TOO_BIG;
        }
        else
            code = af_minisign_pub_load (name, &store [store_count++], err, sizeof err);
    free (list);
    snprintf (path, sizeof path, "%s/root.json", o->argv [0]);
    json_error_t jerr;
    json_t *old = json_load_file (path, 0, &jerr);
    uint64_t version = o->version? o->version: (uint64_t) json_integer_value (json_object_get (old, "version")) + 1;
    json_decref (old);
    uint64_t expires = (uint64_t) zclock_time ()
                     + (o->expires_s? o->expires_s: (uint64_t) AF_TRUST_ROOT_DAYS * 86400) * 1000;
    char *root = NULL, *pubs = NULL;
    if (code == AF_OK && zsys_dir_create ("%s", o->argv [0])) {
        snprintf (err, sizeof err, "cannot create %s: %s", o->argv [0], strerror (errno));
        code = AF_E_INTERNAL;
    }
    if (code == AF_OK)
        code = af_trust_publishers_make (o->publishers, version, expires, &pubs, err, sizeof err);
    if (code == AF_OK)
        code = af_trust_root_make (store, store_count, version, expires, &root);
    if (code == AF_OK)
        code = af_trust_write_signed (path, root, &sec, err, sizeof err);
    snprintf (path, sizeof path, "%s/publishers.json", o->argv [0]);
    if (code == AF_OK)
        code = af_trust_write_signed (path, pubs, &sec, err, sizeof err);
    free (root);
    free (pubs);
    sodium_memzero (&sec, sizeof sec);
    if (code != AF_OK) {
        fprintf (stderr, "appferry-catalog: root-sign: %s\n", err);
        return 1;
    }
    printf ("signed root.json and publishers.json version %llu in %s\n", (unsigned long long) version, o->argv [0]);
    return 0;
}

static int
s_trust (options_t *o)
{
    char err [1024];
    if (af_signer_install (o->dir, o->argv [0], o->argv [1], err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-catalog: trust: %s\n", err);
        return 1;
    }
    printf ("installed the root's documents from %s\n", o->argv [1]);
    return 0;
}

//  The options; 0, or the exit status to leave with
static int
s_options (int argc, char *argv [], options_t *o)
{
    enum { O_INSECURE = 256, O_EXPIRES, O_VERSION, O_ROOT, O_STORE, O_STORE_KEY, O_KEY, O_PUBLISHERS };
    static struct option options [] = {
        { "catalog", required_argument, NULL, 'C' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { "insecure-unsigned", no_argument, NULL, O_INSECURE },
        { "expires", required_argument, NULL, O_EXPIRES }, { "version", required_argument, NULL, O_VERSION },
        { "root", no_argument, NULL, O_ROOT }, { "store", no_argument, NULL, O_STORE },
        { "store-key", required_argument, NULL, O_STORE_KEY },
        { "key", required_argument, NULL, O_KEY }, { "publishers", required_argument, NULL, O_PUBLISHERS },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "C:jh", options, NULL)) != -1) {
        char *end = NULL;
        if (opt == 'C')
            o->dir = optarg;
        else if (opt == 'j')
            o->json = true;
        else if (opt == 'h')
            return s_usage (stdout), -1;
        else if (opt == O_INSECURE)
            o->insecure = true;
        else if (opt == O_EXPIRES && (o->expires_s = strtoull (optarg, &end, 10)) > 0 && !*end)
            ;
        else if (opt == O_VERSION && (o->version = strtoull (optarg, &end, 10)) > 0 && !*end)
            ;
        else if (opt == O_ROOT)
            o->root = true;
        else if (opt == O_STORE)
            o->store = true;
        else if (opt == O_STORE_KEY)
            o->store_keys = optarg;
        else if (opt == O_KEY)
            o->key = optarg;
        else if (opt == O_PUBLISHERS)
            o->publishers = optarg;
        else
            return s_usage (stderr), 2;
    }
    return 0;
}

int
main (int argc, char *argv [])
{
    options_t o = { 0 };
    int rc = s_options (argc, argv, &o);
    if (rc)
        return rc < 0? 0: rc;
    if (optind >= argc) {
        s_usage (stderr);
        return 2;
    }
    const char *command = argv [optind];
    o.argc = argc - optind - 1;
    o.argv = argv + optind + 1;
    //  Each command, the arguments it takes, and whether it needs the catalog
    static const struct { const char *name; int args; bool catalog; } commands [] = {
        { "import", 1, true }, { "resolve", 2, true }, { "list", 0, true }, { "resign", 0, true },
        { "trust", 2, true }, { "keygen", -1, false }, { "sign", -2, false }, { "root-sign", 1, false },
    };
    size_t i = 0, n = sizeof commands / sizeof commands [0];
    while (i < n && !streq (commands [i].name, command))
        i++;
    bool args_ok = i < n && (commands [i].args >= 0? o.argc == commands [i].args
                           : commands [i].args == -1? o.argc <= 1: o.argc >= 1);
    if (!args_ok || (commands [i].catalog && !o.dir) || (streq (command, "keygen") && !o.store && o.argc != 1)) {
        fprintf (stderr, "appferry-catalog: unknown command or wrong arguments (see --help)\n");
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (stderr);
    if (streq (command, "keygen"))
        return s_keygen (&o);
    if (streq (command, "sign"))
        return s_sign (&o);
    if (streq (command, "root-sign"))
        return s_root_sign (&o);
    if (streq (command, "trust"))
        return s_trust (&o);
    return s_catalog_command (command, &o);
}
