/*  =========================================================================
    appferry-node - the appferry daemon for one device. See README.
    =========================================================================
*/
#include "af_node.h"
#include "af_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-node --broker ENDPOINT --broker-key FILE --home DIR --device FILE.json [OPTIONS]\n"
"Run the appferry node for one device: keep a secure connection to the\n"
"broker, log in for the device, and serve the `appferry` command line.\n"
"\n"
"  -b, --broker ENDPOINT   broker endpoint, e.g. tcp://broker.example:5670\n"
"  -k, --broker-key FILE   the broker's public certificate (broker.cert)\n"
"  -H, --home DIR          node home: keypair, state, CLI socket (created)\n"
"  -D, --device FILE.json  device description (see README: bundletool device\n"
"                          spec keys plus platform, model, formFactor, screen size)\n"
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

int
main (int argc, char *argv [])
{
    enum { OPT_HEARTBEAT = 1000, OPT_DAEMON, OPT_VERSION, OPT_INSTALL_CMD, OPT_INSTALL_TIMEOUT,
           OPT_ATTEST, OPT_RATE, OPT_SYNC_MODE };
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
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    af_node_config_t config;
    af_node_config_defaults (&config);
    bool daemon = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "b:k:H:D:vh", options, NULL)) != -1) {
        char *target = NULL;
        size_t size = 0;
        switch (opt) {
            case 'b': target = config.broker; size = sizeof config.broker; break;
            case 'k': target = config.broker_key; size = sizeof config.broker_key; break;
            case 'H': target = config.home; size = sizeof config.home; break;
            case 'D': target = config.device_file; size = sizeof config.device_file; break;
            case 'v': config.verbose = true; break;
            case OPT_DAEMON: daemon = true; break;
            case OPT_INSTALL_CMD: target = config.install_cmd; size = sizeof config.install_cmd; break;
            case OPT_ATTEST: target = config.attest_file; size = sizeof config.attest_file; break;
            case OPT_INSTALL_TIMEOUT:
                config.install_timeout_s = atoi (optarg);
                if (config.install_timeout_s < 1 || config.install_timeout_s > 86400) {
                    fprintf (stderr, "appferry-node: --install-timeout must be 1..86400 s\n");
                    return 2;
                }
                break;
            case OPT_SYNC_MODE:
                if (!streq (optarg, "auto") && !streq (optarg, "manual")) {
                    fprintf (stderr, "appferry-node: --sync-mode must be auto or manual\n");
                    return 2;
                }
                config.sync_auto = streq (optarg, "auto");
                break;
            case OPT_RATE:
                config.rate_kib = atoi (optarg);
                if (config.rate_kib < 1 || config.rate_kib > 10000000) {
                    fprintf (stderr, "appferry-node: --rate-limit must be 1..10000000 KiB/s\n");
                    return 2;
                }
                break;
            case OPT_HEARTBEAT:
                config.heartbeat_ms = atoi (optarg);
                if (config.heartbeat_ms < 50 || config.heartbeat_ms > 600000) {
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
    if (optind < argc || !*config.broker || !*config.broker_key || !*config.home || !*config.device_file) {
        fprintf (stderr, "appferry-node: --broker, --broker-key, --home and --device are required\n\n");
        s_usage (stderr);
        return 2;
    }
    if (daemon && s_daemonize (config.home))
        return 1;
    if (sodium_init () < 0)
        return 1;
    //  A file size limit is an error to report (EFBIG), not a reason to die
    signal (SIGXFSZ, SIG_IGN);
    zsys_init ();
    zsys_set_logident ("appferry-node");
    char err [512];
    af_node_t *node = af_node_new (&config, err, sizeof err);
    if (!node) {
        fprintf (stderr, "appferry-node: %s\n", err);
        return 1;
    }
    af_node_run (node);
    af_node_destroy (&node);
    return 0;
}
