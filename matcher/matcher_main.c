/*  =========================================================================
    appferry-matcher - the matcher worker: resolves program IDs to the
    package that fits a device, from a read-only catalog, for the broker.

    Stateless over its catalog: any number of matchers may serve one
    broker (each announces a credit of concurrent requests), and a matcher
    that dies loses nothing, since the broker hands its requests to
    another. The worker dialog is in protocol/SPEC.md ("Worker dialog"),
    and protocol/af_worker runs it; this file is the matcher's options and
    its answer to RESOLVE.
    =========================================================================
*/
#include "af_catalog.h"
#include "af_msg.h"
#include "af_worker.h"

#include <getopt.h>
#include <sodium.h>

typedef struct {
    af_worker_options_t worker;     //  -b, -k, -c, --credit, --heartbeat, -v
    char catalog [512];
} config_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-matcher --broker ENDPOINT --broker-key FILE --catalog DIR --cert FILE [OPTIONS]\n"
"Serve package resolution for the broker from a catalog made by appferry-catalog.\n"
"\n"
"  -b, --broker ENDPOINT   the broker's worker endpoint (e.g. tcp://127.0.0.1:5671)\n"
"  -k, --broker-key FILE   the broker's public certificate (broker.cert)\n"
"  -C, --catalog DIR       catalog directory (opened read-only)\n"
"  -c, --cert FILE         this matcher's keypair: FILE (public) and FILE_secret;\n"
"                          created if missing, with its directory (mode 0700).\n"
"                          Copy FILE into the broker's worker keys directory\n"
"                          to allow this matcher.\n"
"      --credit N          requests the broker may give at once (default 16)\n"
"      --heartbeat MS      heartbeat interval (default 1000)\n"
"  -v, --verbose           log every request\n"
"  -h, --help              show this help and exit\n");
}

typedef struct {
    config_t *config;
    af_catalog_t *catalog;
} matcher_t;

//  RESOLVE: the package that fits the device, or why none does
static af_msg_t *
s_resolve (void *arg, af_msg_t *msg)
{
    config_t *config = ((matcher_t *) arg)->config;
    af_catalog_t *catalog = ((matcher_t *) arg)->catalog;
    char err [AF_MAX_REASON + 1];
    af_msg_t *reply = NULL;
    if (!msg->has_rid || !msg->has_device)
        reply = af_msg_error (AF_E_MALFORMED, msg->has_rid? msg->rid: NULL,
                              "RESOLVE to a worker needs rid and device");
    else
    if (af_device_validate (&msg->device, err, sizeof err) != AF_OK)
        reply = af_msg_error (AF_E_BAD_DEVICE, msg->rid, "%s", err);
    else {
        af_resolution_t resolution;
        //  A version asked for (a restore) and, on a no-fit, a recommendation
        //  if asked: neither touches the plain resolution's path
        af_resolution_t alternative;
        bool recommended = false;
        int code = *msg->version_name
                 ? af_catalog_resolve_version (catalog, msg->program, &msg->device, msg->version_name,
                                               msg->version_code, &resolution)
                 : af_catalog_resolve (catalog, msg->program, &msg->device, &resolution);
        if (code == AF_OK && msg->recommend && resolution.fit == AF_FIT_NONE)
            code = af_catalog_recommend (catalog, msg->program, &msg->device, &alternative, &recommended);
        if (code != AF_OK)
            reply = af_msg_error (AF_E_INTERNAL, msg->rid, "catalog read failed");
        else {
            reply = af_msg_new (AF_MSG_RESOLVED);
            reply->has_rid = true;
            memcpy (reply->rid, msg->rid, AF_ID_SIZE);
            snprintf (reply->program, sizeof reply->program, "%s", msg->program);
            reply->fit = (uint32_t) resolution.fit;
            reply->has_package = resolution.fit != AF_FIT_UNKNOWN_PROGRAM;
            reply->package = resolution.package;
            snprintf (reply->reason, sizeof reply->reason, "%s", resolution.reason);
            reply->has_alternative = recommended;
            if (recommended)
                reply->alternative = alternative.package;
            if (config->worker.verbose)
                zsys_info ("matcher: %s for %s %s: %s %s", msg->program, msg->device.platform,
                           msg->device.model, af_fit_name (resolution.fit),
                           resolution.fit == AF_FIT_NONE? resolution.reason: resolution.package.version_name);
        }
    }
    return reply;
}

//  Idle: hold no catalog snapshot while we wait
static void
s_idle (void *arg)
{
    af_catalog_release (((matcher_t *) arg)->catalog);
}

//  Read the options into config. -1 to go on, or the status to exit with:
//  0 after --help, 2 for a bad option.
static int
s_parse_options (int argc, char *argv [], config_t *config)
{
    static struct option options [] = {
        AF_WORKER_LONG_OPTIONS,
        { "catalog", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, AF_WORKER_SHORT "C:h", options, NULL)) != -1) {
        int taken = af_worker_option (&config->worker, opt, optarg, "appferry-matcher");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        switch (opt) {
            case 'C':
                if (af_worker_string_option (config->catalog, sizeof config->catalog, optarg, "appferry-matcher"))
                    return 2;
                break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc || !*config->catalog || !af_worker_options_check (&config->worker, "appferry-matcher")) {
        fprintf (stderr, "appferry-matcher: --broker, --broker-key, --catalog and --cert are required\n\n");
        s_usage (stderr);
        return 2;
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    config_t config = { .catalog = "" };
    af_worker_options_init (&config.worker, NULL, 16);
    int rc = s_parse_options (argc, argv, &config);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logident ("appferry-matcher");
    //  The keypair first: deploy/install.sh starts the matcher once to make it
    af_worker_config_t dialog = af_worker_options_config (&config.worker, "matcher", "appferry matcher");
    char err [1024];
    af_worker_t *worker = af_worker_new (&dialog, err, sizeof err);
    if (!worker) {
        fprintf (stderr, "appferry-matcher: %s\n", err);
        return 1;
    }
    af_catalog_t *catalog = af_catalog_new (config.catalog, false);
    if (!catalog) {
        fprintf (stderr, "appferry-matcher: cannot open catalog %s\n", config.catalog);
        af_worker_destroy (&worker);
        return 1;
    }
    matcher_t matcher = { &config, catalog };
    af_worker_set_handler (worker, AF_MSG_RESOLVE, s_resolve, &matcher);
    af_worker_set_idle (worker, s_idle, &matcher);
    zsys_info ("matcher: catalog %s", config.catalog);
    rc = af_worker_serve (worker, err, sizeof err);
    if (rc != AF_OK)
        fprintf (stderr, "appferry-matcher: %s\n", err);
    af_worker_destroy (&worker);
    af_catalog_destroy (&catalog);
    zsys_info ("matcher: stopped");
    return rc == AF_OK? 0: 1;
}
