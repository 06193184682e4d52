/*  =========================================================================
    appferry-catalog - import, resolve and list packages of a catalog
    =========================================================================
*/
#include <czmq.h>
#include "af_catalog.h"

#include <getopt.h>
#include <jansson.h>
#include <sodium.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-catalog --catalog DIR COMMAND [ARGS] [--json]\n"
"Manage the package catalog that appferry-matcher serves.\n"
"\n"
"Commands:\n"
"  import MANIFEST.json        add the manifest's packages (all or nothing);\n"
"                              format: matcher/MANIFEST.md\n"
"  resolve PROGRAM DEVICE.json which package of PROGRAM fits the device\n"
"  list                        every program and package\n"
"\n"
"Options:\n"
"  -C, --catalog DIR   catalog directory (created by import)\n"
"  -j, --json          print JSON\n"
"  -h, --help          show this help and exit\n"
"\n"
"Exit status: 0 done, 1 refused (import error, no fitting package), 2 usage.\n");
}

int
main (int argc, char *argv [])
{
    static struct option options [] = {
        { "catalog", required_argument, NULL, 'C' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL;
    bool json = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "C:jh", options, NULL)) != -1) {
        if (opt == 'C')
            dir = optarg;
        else
        if (opt == 'j')
            json = true;
        else
        if (opt == 'h') {
            s_usage (stdout);
            return 0;
        }
        else {
            s_usage (stderr);
            return 2;
        }
    }
    if (!dir || optind >= argc) {
        s_usage (stderr);
        return 2;
    }
    const char *command = argv [optind];
    int nargs = argc - optind - 1;
    if (!((streq (command, "import") && nargs == 1) || (streq (command, "resolve") && nargs == 2)
       || (streq (command, "list") && nargs == 0))) {
        fprintf (stderr, "appferry-catalog: unknown command or wrong arguments (see --help)\n");
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (stderr);
    af_catalog_t *catalog = af_catalog_new (dir, streq (command, "import"));
    if (!catalog) {
        fprintf (stderr, "appferry-catalog: cannot open the catalog in %s\n", dir);
        return 1;
    }
    int rc = 0;
    char err [1024];
    if (streq (command, "import")) {
        size_t count;
        if (af_catalog_import (catalog, argv [optind + 1], &count, err, sizeof err) != AF_OK) {
            fprintf (stderr, "appferry-catalog: nothing imported: %s\n", err);
            rc = 1;
        }
        else
            printf ("imported %zu package%s from %s\n", count, count == 1? "": "s", argv [optind + 1]);
    }
    else
    if (streq (command, "resolve")) {
        af_device_t device;
        af_resolution_t result;
        if (af_device_load (&device, argv [optind + 2], err, sizeof err) != AF_OK) {
            fprintf (stderr, "appferry-catalog: %s\n", err);
            rc = 1;
        }
        else
        if (af_catalog_resolve (catalog, argv [optind + 1], &device, &result) != AF_OK) {
            fprintf (stderr, "appferry-catalog: catalog read failed\n");
            rc = 1;
        }
        else {
            if (json) {
                json_t *doc = (json_t *) af_resolution_to_jansson (argv [optind + 1], &result);
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
            rc = result.fit == AF_FIT_PACKAGE || result.fit == AF_FIT_STORE_LINK? 0: 1;
        }
    }
    else
        rc = af_catalog_list (catalog, stdout, json) == AF_OK? 0: 1;
    af_catalog_destroy (&catalog);
    return rc;
}
