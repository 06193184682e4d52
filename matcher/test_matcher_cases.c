/*  =========================================================================
    test_matcher_cases - the resolver against a table of cases

    Imports tests/data/matcher/manifest.json into a fresh catalog and runs
    every case of cases.json: a device (one of the named devices, with
    fields overridden by "with"), a program, and the expected outcome: fit
    kind, and the versionName, ABI, store link or exact reason. Then checks
    that each bad manifest imports nothing and names the entry and line,
    and that re-importing is idempotent and stores each file once.
    =========================================================================
*/
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>
#include "af_catalog.h"

static int s_passed, s_failed;

static void
s_result (bool ok, const char *name, const char *detail)
{
    if (ok)
        s_passed++;
    else
        s_failed++;
    printf ("%s - %s%s%s\n", ok? "ok": "not ok", name, ok? "": ": ", ok? "": detail);
}

static int
s_count_blobs (const char *dir)
{
    char command [1024];
    snprintf (command, sizeof command, "find '%s/blobs' -type f | wc -l", dir);
    FILE *pipe = popen (command, "r");
    int count = -1;
    if (pipe) {
        if (fscanf (pipe, "%d", &count) != 1)
            count = -1;
        pclose (pipe);
    }
    return count;
}

//  One case of the table: build its device, resolve its program, compare
//  what is expected
static void
s_run_case (af_catalog_t *catalog, json_t *devices, json_t *c)
{
    char err [1024];
    const char *name = json_string_value (json_object_get (c, "name"));
    const char *program = json_string_value (json_object_get (c, "program"));
    json_t *device_json = json_deep_copy (json_object_get (devices,
                              json_string_value (json_object_get (c, "device"))));
    assert (name && program && device_json);
    if (json_object_get (c, "with"))
        json_object_update (device_json, json_object_get (c, "with"));
    char *text = json_dumps (device_json, 0);
    json_decref (device_json);
    af_device_t device;
    char detail [1400] = "";
    if (af_device_from_json (&device, text, err, sizeof err) != AF_OK) {
        snprintf (detail, sizeof detail, "bad device in the table: %s", err);
        s_result (false, name, detail);
        free (text);
        return;
    }
    free (text);
    af_resolution_t result;
    if (af_catalog_resolve (catalog, program, &device, &result) != AF_OK) {
        s_result (false, name, "resolve failed");
        return;
    }
    bool ok = true;
    const char *want;
    if ((want = json_string_value (json_object_get (c, "fit"))) && strcmp (want, af_fit_name (result.fit)))
        ok = false;
    if ((want = json_string_value (json_object_get (c, "versionName")))
    &&  strcmp (want, result.package.version_name))
        ok = false;
    if ((want = json_string_value (json_object_get (c, "abi"))) && strcmp (want, result.package.abi))
        ok = false;
    if ((want = json_string_value (json_object_get (c, "storeLink")))
    &&  strcmp (want, result.package.store_link))
        ok = false;
    if ((want = json_string_value (json_object_get (c, "reason"))) && strcmp (want, result.reason))
        ok = false;
    snprintf (detail, sizeof detail, "got fit=%s version=%s abi=%s link=%s reason='%s'",
              af_fit_name (result.fit), result.package.version_name, result.package.abi,
              result.package.store_link, result.reason);
    s_result (ok, name, detail);
}

//  Bad manifests: nothing imported, the error names entry and line, and
//  the code is the case's ("code", when the case gives one)
static void
s_check_bad_manifests (af_catalog_t *catalog, json_t *table, const char *data)
{
    char path [1024], err [1024] = "";
    size_t index;
    json_t *c;
    json_array_foreach (json_object_get (table, "bad"), index, c) {
        const char *file = json_string_value (json_object_get (c, "file"));
        snprintf (path, sizeof path, "%s/%s", data, file);
        size_t imported = 0;
        int code = af_catalog_import (catalog, path, &imported, err, sizeof err);
        const char *want = json_string_value (json_object_get (c, "code"));
        bool ok = code != AF_OK && imported == 0 && (!want || strcmp (af_code_name (code), want) == 0);
        size_t k;
        json_t *expect;
        json_array_foreach (json_object_get (c, "expect"), k, expect)
            ok = ok && strstr (err, json_string_value (expect)) != NULL;
        af_device_t device;
        af_resolution_t result;
        af_device_from_json (&device, "{\"platform\":\"linux\",\"osVersion\":\"6\",\"model\":\"x\","
                             "\"formFactor\":\"pc\",\"screenWidth\":10,\"screenHeight\":10}", err + 512, 256);
        af_catalog_resolve (catalog, "bad", &device, &result);
        ok = ok && result.fit == AF_FIT_UNKNOWN_PROGRAM;        //  nothing of it imported
        char name [256];
        snprintf (name, sizeof name, "%s imports nothing and names the entry", file);
        s_result (ok, name, err);
    }
}

//  Idempotent re-import; each distinct file stored once
static void
s_check_reimport (af_catalog_t *catalog, const char *catdir, const char *data)
{
    char path [1024], err [1024];
    int blobs = s_count_blobs (catdir);
    snprintf (path, sizeof path, "%s/manifest.json", data);
    size_t imported = 0;
    int code = af_catalog_import (catalog, path, &imported, err, sizeof err);
    char detail [128];
    snprintf (detail, sizeof detail, "blobs before %d, after %d", blobs, s_count_blobs (catdir));
    //  26 packages, 2 of them store links: 24 files but 20 distinct ones
    //  (some packages share a file), each stored once although the bad
    //  manifests named some of them again
    s_result (code == AF_OK && imported == 26 && blobs == 20 && s_count_blobs (catdir) == 20,
              "re-import is idempotent; the 20 distinct files are stored once", detail);
    af_device_t device;
    af_resolution_t result;
    af_device_from_json (&device, "{\"platform\":\"android\",\"sdkVersion\":33,\"model\":\"x\","
                         "\"formFactor\":\"phone\",\"screenWidth\":1080,\"screenHeight\":2400,"
                         "\"screenDensity\":420,\"supportedAbis\":[\"arm64-v8a\"]}", err, sizeof err);
    af_catalog_resolve (catalog, "maps", &device, &result);
    s_result (result.fit == AF_FIT_PACKAGE && strcmp (result.package.version_name, "1.0.0-arm64") == 0,
              "after re-import the same package is chosen", result.package.version_name);
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: test_matcher_cases DATA-DIR\n");
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (stderr);
    const char *data = argv [1];
    char path [1024], err [1024];
    char dir [] = "/tmp/af_matcher_cases_XXXXXX";
    assert (mkdtemp (dir));
    char catdir [512];
    snprintf (catdir, sizeof catdir, "%s/catalog", dir);
    af_catalog_t *catalog = af_catalog_new (catdir, true);
    af_catalog_set_signing (catalog, true, 0);      //  what resolves is tested here, not who signed
    assert (catalog);
    snprintf (path, sizeof path, "%s/manifest.json", data);
    size_t imported = 0;
    s_result (af_catalog_import (catalog, path, &imported, err, sizeof err) == AF_OK && imported == 26,
              "import the test manifest (26 packages)", err);

    snprintf (path, sizeof path, "%s/cases.json", data);
    json_error_t jerr;
    json_t *table = json_load_file (path, JSON_REJECT_DUPLICATES, &jerr);
    if (!table) {
        fprintf (stderr, "%s: line %d: %s\n", path, jerr.line, jerr.text);
        return 1;
    }
    json_t *devices = json_object_get (table, "devices");
    size_t index;
    json_t *c;
    json_array_foreach (json_object_get (table, "cases"), index, c)
        s_run_case (catalog, devices, c);
    s_check_bad_manifests (catalog, table, data);
    s_check_reimport (catalog, catdir, data);

    json_decref (table);
    af_catalog_destroy (&catalog);
    char command [600];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (system (command) != 0)
        fprintf (stderr, "could not remove %s\n", dir);
    printf ("%d passed, %d failed\n", s_passed, s_failed);
    return s_failed? 1: 0;
}
