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
    char broker [256];
    char broker_key [512];
    char catalog [512];
    char cert [512];
    int credit;
    int heartbeat_ms;
    int liveness;
    bool verbose;
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
            if (config->verbose)
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
    enum { OPT_CREDIT = 1000, OPT_HEARTBEAT };
    static struct option options [] = {
        { "broker", required_argument, NULL, 'b' },
        { "broker-key", required_argument, NULL, 'k' },
        { "catalog", required_argument, NULL, 'C' },
        { "cert", required_argument, NULL, 'c' },
        { "credit", required_argument, NULL, OPT_CREDIT },
        { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "b:k:C:c:vh", options, NULL)) != -1) {
        char *target = NULL;
        size_t size = 0;
        switch (opt) {
            case 'b': target = config->broker; size = sizeof config->broker; break;
            case 'k': target = config->broker_key; size = sizeof config->broker_key; break;
            case 'C': target = config->catalog; size = sizeof config->catalog; break;
            case 'c': target = config->cert; size = sizeof config->cert; break;
            case 'v': config->verbose = true; break;
            case OPT_CREDIT: config->credit = atoi (optarg); break;
            case OPT_HEARTBEAT: config->heartbeat_ms = atoi (optarg); break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
        if (target) {
            if (strlen (optarg) >= size || !*optarg) {
                fprintf (stderr, "appferry-matcher: option value too long or empty: %s\n", optarg);
                return 2;
            }
            strcpy (target, optarg);
        }
    }
    if (optind < argc || !*config->broker || !*config->broker_key || !*config->catalog || !*config->cert
    ||  config->credit < 1 || config->credit > 1024 || config->heartbeat_ms < 50) {
        fprintf (stderr, "appferry-matcher: --broker, --broker-key, --catalog and --cert are required; "
                 "--credit is 1..1024\n\n");
        s_usage (stderr);
        return 2;
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    config_t config = { .credit = 16, .heartbeat_ms = AF_HEARTBEAT_MS, .liveness = AF_HEARTBEAT_LIVENESS };
    int rc = s_parse_options (argc, argv, &config);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logident ("appferry-matcher");
    //  The keypair first: deploy/install.sh starts the matcher once to make it
    af_worker_config_t dialog = { "matcher", config.broker, config.broker_key, config.cert,
                                  "appferry matcher", config.credit, config.heartbeat_ms, config.liveness };
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
