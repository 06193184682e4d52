/*  =========================================================================
    appferry-broker - routes appferry traffic between device nodes and
    workers, and keeps accounts and devices. See README and
    deploy/appferry-broker.cfg.
    =========================================================================
*/
#include "af_broker.h"
#include "af_msg.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-broker [OPTIONS]\n"
"Route appferry messages between device nodes and workers; keep accounts\n"
"and devices in an LMDB store under the data directory.\n"
"\n"
"  -c, --config FILE       read settings from FILE (ZPL; see deploy/appferry-broker.cfg)\n"
"  -d, --data DIR          data directory: keypair, store, worker keys\n"
"                          (default /var/lib/appferry)\n"
"      --nodes ENDPOINT    where nodes connect (default tcp://*:5670)\n"
"      --workers ENDPOINT  where workers connect (default tcp://127.0.0.1:5671)\n"
"      --worker-keys DIR   certificates of allowed workers (default DATA/workers)\n"
"      --catalog DIR       the matcher's catalog directory: package files are\n"
"                          streamed from DIR/blobs/ for pushes (default: none)\n"
"      --heartbeat MS      heartbeat interval expected of peers (default 1000)\n"
"      --pwhash COST       Argon2id cost for new passwords: interactive (default),\n"
"                          moderate or min (tests only)\n"
"      --map-size MIB      the store's size limit (default 4096 MiB)\n"
"      --pw-per-source N   password checks one source address may start per\n"
"                          minute (default 60; load tests from one host need more)\n"
"      --max-per-source N  connections one source address may hold on each socket\n"
"                          (default 32; load tests from one host need more)\n"
"      --metrics HOST:PORT also serve the figures (Prometheus text) on\n"
"                          http://HOST:PORT/metrics, e.g. 127.0.0.1:9464\n"
"      --status            print the figures of the broker on DATA and exit\n"
"      --json              with --status: as JSON\n"
"      --watch SECONDS     with --status: again every SECONDS, until interrupted\n"
"      --cluster-status [DATA...]  print the shard map (owner, epoch, in-sync set)\n"
"                          a cluster member on -d DATA sees, with each follower's\n"
"                          lag from the owners' directories given (--json too)\n"
"      --drain             ask the cluster member running on -d DATA to drain:\n"
"                          hand every shard it owns to other brokers, then stop;\n"
"                          waits for it (exit 0 once it stopped drained). The\n"
"                          same as sending that broker SIGUSR1\n"
"  -v, --verbose           log every session change\n"
"  -h, --help              show this help and exit\n"
"      --version           show the version and exit\n"
"\n"
"Command-line options override the config file. On first start the broker\n"
"creates its CURVE keypair in DATA/broker.cert (public: give it to nodes)\n"
"and DATA/broker.cert_secret. It writes the endpoints it bound to DATA/endpoints\n"
"and its figures, once a second, to DATA/metrics.prom (what --status reads).\n");
}

enum { OPT_NODES = 1000, OPT_WORKERS, OPT_WORKER_KEYS, OPT_CATALOG, OPT_HEARTBEAT, OPT_PWHASH, OPT_MAP_SIZE,
       OPT_PW_PER_SOURCE, OPT_MAX_PER_SOURCE, OPT_VERSION, OPT_METRICS, OPT_STATUS, OPT_JSON, OPT_WATCH,
       OPT_CLUSTER_STATUS, OPT_DRAIN };

static struct option s_options [] = {
    { "config", required_argument, NULL, 'c' },
    { "data", required_argument, NULL, 'd' },
    { "nodes", required_argument, NULL, OPT_NODES },
    { "workers", required_argument, NULL, OPT_WORKERS },
    { "worker-keys", required_argument, NULL, OPT_WORKER_KEYS },
    { "catalog", required_argument, NULL, OPT_CATALOG },
    { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
    { "pwhash", required_argument, NULL, OPT_PWHASH },
    { "map-size", required_argument, NULL, OPT_MAP_SIZE },
    { "pw-per-source", required_argument, NULL, OPT_PW_PER_SOURCE },
    { "max-per-source", required_argument, NULL, OPT_MAX_PER_SOURCE },
    { "metrics", required_argument, NULL, OPT_METRICS },
    { "status", no_argument, NULL, OPT_STATUS },
    { "json", no_argument, NULL, OPT_JSON },
    { "watch", required_argument, NULL, OPT_WATCH },
    { "cluster-status", no_argument, NULL, OPT_CLUSTER_STATUS },
    { "drain", no_argument, NULL, OPT_DRAIN },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 }
};

//  What the command line asks besides the broker's settings
typedef struct {
    bool status, json;
    int watch_s;
    bool cluster_status;
    bool drain;
} asked_t;

//  A whole number within bounds for option name, or false (said why)
static bool
s_number (const char *name, const char *text, long min, long max, const char *unit, long *value)
{
    char *end;
    errno = 0;
    *value = strtol (text, &end, 10);
    if (errno || end == text || *end || *value < min || *value > max) {
        fprintf (stderr, "appferry-broker: --%s must be %ld..%ld%s\n", name, min, max, unit);
        return false;
    }
    return true;
}

//  First pass: --help, --version and the config file, so that the other
//  options can override it. -1 to go on, else the exit code
static int
s_first_pass (int argc, char *argv [], af_broker_config_t *config)
{
    char err [512];
    int opt;
    while ((opt = getopt_long (argc, argv, "c:d:vh", s_options, NULL)) != -1) {
        if (opt == 'h') {
            s_usage (stdout);
            return 0;
        }
        if (opt == OPT_VERSION) {
            printf ("appferry-broker %s, protocol %d\n", AF_VERSION, AF_PROTO_VERSION);
            return 0;
        }
        if (opt == '?') {
            s_usage (stderr);
            return 2;
        }
        if (opt == 'c' && af_broker_config_load (config, optarg, err, sizeof err)) {
            fprintf (stderr, "appferry-broker: %s\n", err);
            return 2;
        }
    }
    return -1;
}

//  One option of the second pass into config or asked; false if refused
static bool
s_option (int opt, af_broker_config_t *config, asked_t *asked)
{
    char *target = NULL;
    size_t size = 0;
    long n;
    bool ok = true;
    switch (opt) {
        case 'd': target = config->data_dir; size = sizeof config->data_dir; break;
        case OPT_NODES: target = config->nodes; size = sizeof config->nodes; break;
        case OPT_WORKERS: target = config->workers; size = sizeof config->workers; break;
        case OPT_WORKER_KEYS: target = config->worker_keys; size = sizeof config->worker_keys; break;
        case OPT_CATALOG: target = config->catalog; size = sizeof config->catalog; break;
        case OPT_METRICS: target = config->metrics; size = sizeof config->metrics; break;
        case OPT_STATUS: asked->status = true; break;
        case OPT_CLUSTER_STATUS: asked->cluster_status = true; break;
        case OPT_DRAIN: asked->drain = true; break;
        case OPT_JSON: asked->json = true; break;
        case 'v': config->verbose = true; break;
        case OPT_WATCH:
            if ((ok = s_number ("watch", optarg, 1, 86400, " seconds", &n)))
                asked->watch_s = (int) n;
            break;
        case OPT_HEARTBEAT:
            if ((ok = s_number ("heartbeat", optarg, 50, 600000, " ms", &n)))
                config->heartbeat_ms = (int) n;
            break;
        case OPT_PW_PER_SOURCE:
            if ((ok = s_number ("pw-per-source", optarg, 1, 1000000, "", &n)))
                config->pw_per_source = (int) n;
            break;
        case OPT_MAX_PER_SOURCE:
            if ((ok = s_number ("max-per-source", optarg, 1, 10000000, "", &n)))
                config->max_per_source = (size_t) n;
            break;
        case OPT_MAP_SIZE:
            if ((ok = s_number ("map-size", optarg, 1, 1024 * 1024, " MiB", &n)))
                config->map_mib = (int) n;
            break;
        case OPT_PWHASH:
            ok = af_broker_pwcost_parse (optarg, &config->pwcost) == 0;
            if (!ok)
                fprintf (stderr, "appferry-broker: --pwhash must be interactive, moderate or min\n");
            break;
        default: break;
    }
    if (target && (strlen (optarg) >= size || !*optarg)) {
        fprintf (stderr, "appferry-broker: option value too long or empty: %s\n", optarg);
        return false;
    }
    if (target)
        strcpy (target, optarg);
    return ok;
}

int
main (int argc, char *argv [])
{
    af_broker_config_t config;
    af_broker_config_defaults (&config);
    int rc = s_first_pass (argc, argv, &config);
    if (rc >= 0)
        return rc;
    asked_t asked = { false, false, 0, false, false };
    optind = 1;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:d:vh", s_options, NULL)) != -1)
        if (!s_option (opt, &config, &asked))
            return 2;
    if (asked.drain) {
        if (optind < argc || asked.status || asked.cluster_status || asked.json || asked.watch_s) {
            fprintf (stderr, "appferry-broker: --drain takes -d DATA (or --config) only\n");
            return 2;
        }
        return broker_cluster_drain (config.data_dir);
    }
    if (asked.cluster_status) {
        //  -d DATA first, then any other members' directories given
        const char *dirs [AF_CLUSTER_STATUS_DIRS];
        size_t count = 0;
        dirs [count++] = config.data_dir;
        while (optind < argc && count < AF_CLUSTER_STATUS_DIRS)
            dirs [count++] = argv [optind++];
        if (optind < argc || asked.status || asked.watch_s) {
            fprintf (stderr, "appferry-broker: --cluster-status takes at most %d directories, and no --status "
                     "or --watch\n", AF_CLUSTER_STATUS_DIRS);
            return 2;
        }
        return broker_cluster_status (dirs, count, asked.json);
    }
    if (optind < argc) {
        fprintf (stderr, "appferry-broker: unexpected argument '%s'\n", argv [optind]);
        s_usage (stderr);
        return 2;
    }
    if ((asked.json || asked.watch_s) && !asked.status && !asked.cluster_status) {
        fprintf (stderr, "appferry-broker: --json and --watch go with --status\n");
        return 2;
    }
    if (asked.status)
        return broker_status (config.data_dir, asked.json, asked.watch_s);
    if (sodium_init () < 0) {
        fprintf (stderr, "appferry-broker: libsodium failed to start\n");
        return 1;
    }
    //  A file size limit (RLIMIT_FSIZE) must fail a write with EFBIG, which
    //  the store and uploads report, not kill the broker
    signal (SIGXFSZ, SIG_IGN);
    //  SIGUSR1 (drain) is read from a signalfd by the reactor: blocked here,
    //  before libzmq and the broker's threads start and inherit the mask
    sigset_t usr1;
    sigemptyset (&usr1);
    sigaddset (&usr1, SIGUSR1);
    if (sigprocmask (SIG_BLOCK, &usr1, NULL)) {
        fprintf (stderr, "appferry-broker: cannot block SIGUSR1: %s\n", strerror (errno));
        return 1;
    }
    zsys_init ();
    zsys_set_logident ("appferry-broker");
    af_broker_t *broker = af_broker_new (&config);
    if (!broker) {
        fprintf (stderr, "appferry-broker: could not start (see the log above)\n");
        return 1;
    }
    af_broker_run (broker);
    af_broker_destroy (&broker);
    return 0;
}
