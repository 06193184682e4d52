/*  =========================================================================
    appferry-node - the appferry daemon for one device. See README.
    =========================================================================
*/
#include "af_node.h"
#include "af_msg.h"
#include "af_adb.h"
#include "af_device.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-node --broker ENDPOINT --broker-key FILE --home DIR --device FILE.json [OPTIONS]\n"
"       appferry-node ... --device-from-adb [SERIAL] [OPTIONS]\n"
"       appferry-node --device FILE.json | --device-from-adb [SERIAL]  --print-device\n"
"Run the appferry node for one device: keep a secure connection to the\n"
"broker, log in for the device, and serve the `appferry` command line.\n"
"\n"
"  -b, --broker ENDPOINT   broker endpoint, e.g. tcp://broker.example:5670; a cluster:\n"
"                          several, comma-separated (REDIRECT picks the owner)\n"
"  -k, --broker-key FILE   the broker's public certificate (broker.cert)\n"
"  -H, --home DIR          node home: keypair, state, CLI socket (created)\n"
"  -D, --device FILE.json  device description (see README: a bundletool device\n"
"                          spec as it comes, or our keys: platform, model,\n"
"                          formFactor, screen size, ...)\n"
"      --device-from-adb [SERIAL]\n"
"                          instead of --device: describe the Android device adb\n"
"                          reaches (getprop, wm size, wm density; SERIAL as\n"
"                          `adb devices` lists it, needed when there are more),\n"
"                          written to HOME/device.json. $AF_ADB names the adb\n"
"                          program (default: adb, Debian's adb package)\n"
"      --print-device      print the description (with what was derived: model,\n"
"                          form factor, OS version) as JSON and exit\n"
"      --heartbeat MS      heartbeat interval (default 1000)\n"
"      --install-cmd CMD   install received packages with CMD instead of the\n"
"                          built-in installer: run by /bin/sh with the package\n"
"                          file as \"$1\" and AF_PACKAGE, AF_PROGRAM, AF_VERSION,\n"
"                          AF_HASH set; exit status 0 means installed\n"
"      --install-timeout S time limit of one install (default 300)\n"
"      --attest FILE       attestations for the broker's push policy: lines of\n"
"                          name=value (e.g. malware_scan=clean), dated by the\n"
"                          file's modification time\n"
"      --rate-limit KIB    receive packages at most this fast, in KiB/s\n"
"                          (default: no limit)\n"
"      --sync-mode MODE    auto: install here what the account's other devices\n"
"                          install, when a package fits; manual (default):\n"
"                          only list it (appferry sync)\n"
"      --root-key FILE     the store's root public key (minisign format, from\n"
"                          appferry-catalog keygen --root; default $AF_ROOT_KEY):\n"
"                          a package installs only if the store's signed\n"
"                          metadata chains to it. Without one no package installs\n"
"      --insecure-unsigned without a root key, install packages unchecked\n"
"                          (tests and demos only)\n"
"      --recommend         preference: a restore that nothing fits here gets\n"
"                          a recommendation (as restore --recommend)\n"
"      --daemon            detach and log to HOME/node.log\n"
"  -v, --verbose           log more\n"
"  -h, --help              show this help and exit\n"
"      --version           show the version and exit\n"
"\n"
"The node reconnects by itself. After one `appferry login` it logs in again\n"
"after restarts with its device key; no password is stored.\n");
}

//  Detach: the parent waits until the node's CLI socket appears (success)
//  or the child exits (failure, reported with the log's last line).
static int
s_daemonize (const char *home)
{
    if (zsys_dir_create ("%s", home)) {
        fprintf (stderr, "appferry-node: cannot create %s: %s\n", home, strerror (errno));
        return -1;
    }
    char log [600], sock [600];
    snprintf (log, sizeof log, "%s/node.log", home);
    snprintf (sock, sizeof sock, "%s/node.sock", home);
    unlink (sock);
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        for (int i = 0; i < 100; i++) {
            struct stat st;
            if (stat (sock, &st) == 0) {
                printf ("appferry-node: running as pid %d, log %s\n", (int) pid, log);
                exit (0);
            }
            int status;
            if (waitpid (pid, &status, WNOHANG) == pid) {
                fprintf (stderr, "appferry-node: failed to start; see %s\n", log);
                exit (1);
            }
            usleep (50000);
        }
        fprintf (stderr, "appferry-node: no CLI socket after 5 s; see %s\n", log);
        exit (1);
    }
    setsid ();
    int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open ("/dev/null", O_RDONLY);
    if (fd < 0 || null < 0)
        exit (1);
    dup2 (null, 0);
    dup2 (fd, 1);
    dup2 (fd, 2);
    close (fd);
    close (null);
    return 0;
}

//  Print a description as the JSON a --device file may hold. 0 or -1.
static int
s_print_device (const af_device_t *device)
{
    json_t *root = (json_t *) af_device_to_jansson (device, false);
    char *text = root? json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER): NULL;
    json_decref (root);
    if (!text)
        return -1;
    printf ("%s\n", text);
    free (text);
    return 0;
}

//  Write the description from adb to HOME/device.json (temp file, fsync,
//  rename) and point the node at it, so the node reads it the way it reads
//  any --device file. 0, or -1 with a message printed.
static int
s_save_device (const af_device_t *device, af_node_config_t *config)
{
    char path [sizeof config->device_file], tmp [sizeof config->device_file + 8];
    if (snprintf (path, sizeof path, "%s/device.json", config->home) >= (int) sizeof path) {
        fprintf (stderr, "appferry-node: --home path too long\n");
        return -1;
    }
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    if (zsys_dir_create ("%s", config->home)) {
        fprintf (stderr, "appferry-node: cannot create %s: %s\n", config->home, strerror (errno));
        return -1;
    }
    char *text = af_device_to_json (device);
    int fd = text? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600): -1;
    size_t len = text? strlen (text): 0;
    bool ok = fd >= 0 && write (fd, text, len) == (ssize_t) len && write (fd, "\n", 1) == 1
           && fsync (fd) == 0;
    if (fd >= 0 && close (fd))
        ok = false;
    free (text);
    if (!ok || rename (tmp, path)) {
        fprintf (stderr, "appferry-node: cannot write %s: %s\n", path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    strcpy (config->device_file, path);
    return 0;
}

//  What the command line asks for besides the node's configuration
typedef struct {
    bool daemon;                    //  --daemon
    bool from_adb;                  //  --device-from-adb
    const char *serial;             //  its SERIAL, or NULL
    bool print_device;              //  --print-device
} node_options_t;

//  Read the options into config and opts. -1 to go on, or the status to
//  exit with: 0 after --help or --version, 2 for a bad option.
static int
s_parse_options (int argc, char *argv [], af_node_config_t *config, node_options_t *opts)
{
    enum { OPT_HEARTBEAT = 1000, OPT_DAEMON, OPT_VERSION, OPT_INSTALL_CMD, OPT_INSTALL_TIMEOUT,
           OPT_ATTEST, OPT_RATE, OPT_SYNC_MODE, OPT_FROM_ADB, OPT_PRINT_DEVICE, OPT_ROOT_KEY,
           OPT_INSECURE, OPT_RECOMMEND };
    static struct option options [] = {
        { "broker", required_argument, NULL, 'b' },
        { "broker-key", required_argument, NULL, 'k' },
        { "home", required_argument, NULL, 'H' },
        { "device", required_argument, NULL, 'D' },
        { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
        { "daemon", no_argument, NULL, OPT_DAEMON },
        { "install-cmd", required_argument, NULL, OPT_INSTALL_CMD },
        { "install-timeout", required_argument, NULL, OPT_INSTALL_TIMEOUT },
        { "attest", required_argument, NULL, OPT_ATTEST },
        { "rate-limit", required_argument, NULL, OPT_RATE },
        { "sync-mode", required_argument, NULL, OPT_SYNC_MODE },
        { "device-from-adb", optional_argument, NULL, OPT_FROM_ADB },
        { "print-device", no_argument, NULL, OPT_PRINT_DEVICE },
        { "root-key", required_argument, NULL, OPT_ROOT_KEY },
        { "insecure-unsigned", no_argument, NULL, OPT_INSECURE },
        { "recommend", no_argument, NULL, OPT_RECOMMEND },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "b:k:H:D:vh", options, NULL)) != -1) {
        char *target = NULL;
        size_t size = 0;
        switch (opt) {
            case 'b': target = config->broker; size = sizeof config->broker; break;
            case 'k': target = config->broker_key; size = sizeof config->broker_key; break;
            case 'H': target = config->home; size = sizeof config->home; break;
            case 'D': target = config->device_file; size = sizeof config->device_file; break;
            case 'v': config->verbose = true; break;
            case OPT_DAEMON: opts->daemon = true; break;
            case OPT_PRINT_DEVICE: opts->print_device = true; break;
            case OPT_FROM_ADB:
                //  The serial may follow as the next word, as the usage
                //  says (getopt takes an optional one only after '=')
                opts->from_adb = true;
                opts->serial = optarg;
                if (!opts->serial && optind < argc && argv [optind][0] != '-')
                    opts->serial = argv [optind++];
                break;
            case OPT_INSTALL_CMD: target = config->install_cmd; size = sizeof config->install_cmd; break;
            case OPT_ATTEST: target = config->attest_file; size = sizeof config->attest_file; break;
            case OPT_ROOT_KEY: target = config->root_key; size = sizeof config->root_key; break;
            case OPT_INSECURE: config->insecure_unsigned = true; break;
            case OPT_RECOMMEND: config->restore_recommend = true; break;
            case OPT_INSTALL_TIMEOUT:
                config->install_timeout_s = atoi (optarg);
                if (config->install_timeout_s < 1 || config->install_timeout_s > 86400) {
                    fprintf (stderr, "appferry-node: --install-timeout must be 1..86400 s\n");
                    return 2;
                }
                break;
            case OPT_SYNC_MODE:
                if (!streq (optarg, "auto") && !streq (optarg, "manual")) {
                    fprintf (stderr, "appferry-node: --sync-mode must be auto or manual\n");
                    return 2;
                }
                config->sync_auto = streq (optarg, "auto");
                break;
            case OPT_RATE:
                config->rate_kib = atoi (optarg);
                if (config->rate_kib < 1 || config->rate_kib > 10000000) {
                    fprintf (stderr, "appferry-node: --rate-limit must be 1..10000000 KiB/s\n");
                    return 2;
                }
                break;
            case OPT_HEARTBEAT:
                config->heartbeat_ms = atoi (optarg);
                if (config->heartbeat_ms < 50 || config->heartbeat_ms > 600000) {
                    fprintf (stderr, "appferry-node: --heartbeat must be 50..600000 ms\n");
                    return 2;
                }
                break;
            case 'h': s_usage (stdout); return 0;
            case OPT_VERSION: printf ("appferry-node %s, protocol %d\n", AF_VERSION, AF_PROTO_VERSION); return 0;
            default: s_usage (stderr); return 2;
        }
        if (target) {
            if (strlen (optarg) >= size || !*optarg) {
                fprintf (stderr, "appferry-node: option value too long or empty: %s\n", optarg);
                return 2;
            }
            strcpy (target, optarg);
        }
    }
    return -1;
}

//  Refuse what the options do not say together: -1 to go on, or 2
static int
s_check_options (int argc, char *argv [], const af_node_config_t *config, const node_options_t *opts)
{
    if (optind < argc) {
        fprintf (stderr, "appferry-node: unexpected argument '%s'\n\n", argv [optind]);
        s_usage (stderr);
        return 2;
    }
    if (opts->from_adb && *config->device_file) {
        fprintf (stderr, "appferry-node: give --device or --device-from-adb, not both\n");
        return 2;
    }
    if (!opts->print_device && (!*config->broker || !*config->broker_key || !*config->home
                            ||  (!*config->device_file && !opts->from_adb))) {
        fprintf (stderr, "appferry-node: --broker, --broker-key, --home and --device are required "
                 "(or --device-from-adb instead of --device)\n\n");
        s_usage (stderr);
        return 2;
    }
    if (opts->print_device && !opts->from_adb && !*config->device_file) {
        fprintf (stderr, "appferry-node: --print-device needs --device FILE or --device-from-adb\n");
        return 2;
    }
    return -1;
}

int
main (int argc, char *argv [])
{
    af_node_config_t config;
    af_node_config_defaults (&config);
    node_options_t opts = { false, false, NULL, false };
    int rc = s_parse_options (argc, argv, &config, &opts);
    if (rc < 0)
        rc = s_check_options (argc, argv, &config, &opts);
    if (rc >= 0)
        return rc;
    char err [512];
    af_device_t device;
    if (opts.from_adb && af_adb_read (&device, getenv ("AF_ADB"), opts.serial, err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-node: --device-from-adb: %s\n", err);
        return 1;
    }
    if (opts.print_device) {
        if (!opts.from_adb && af_device_load (&device, config.device_file, err, sizeof err) != AF_OK) {
            fprintf (stderr, "appferry-node: %s\n", err);
            return 1;
        }
        return s_print_device (&device)? 1: 0;
    }
    if (opts.from_adb && s_save_device (&device, &config))
        return 1;
    if (opts.daemon && s_daemonize (config.home))
        return 1;
    if (sodium_init () < 0)
        return 1;
    //  A file size limit is an error to report (EFBIG), not a reason to die
    signal (SIGXFSZ, SIG_IGN);
    zsys_init ();
    zsys_set_logident ("appferry-node");
    if (opts.from_adb)
        zsys_info ("device from adb%s%s: %s (%s), written to %s",
                   opts.serial? " ": "", opts.serial? opts.serial: "",
                   device.model, device.form_factor, config.device_file);
    af_node_t *node = af_node_new (&config, err, sizeof err);
    if (!node) {
        fprintf (stderr, "appferry-node: %s\n", err);
        return 1;
    }
    af_node_run (node);
    af_node_destroy (&node);
    return 0;
}
