/*  =========================================================================
    bench_commit - durable requests per second through the real broker,
    beside a non-durable request on the same connections

    --devices devices (16) log in, each on its own CURVE
    connection, and keep one request in flight each, as nodes do: a node
    sends its next REPORT only after the OK of the one before (SPEC 5.28).
    Rounds alternate:
      durable   REPORT install of a new program: the broker answers OK
                only once the report is in its store, on disk
      control   CONFIG_GET of a program with no configuration: decoded,
                looked up in the store and answered E_NO_CONFIG, nothing
                written
    each for --seconds (2), --rounds (3) times. Prints each round, the
    medians and their ratio, and from the broker's own figures
    (DATA/metrics.prom) the changes it carried per commit to disk, the
    time a commit took and the share of the durable rounds spent in them
    (the broker's thread waits there; nothing else runs on it meanwhile).

    Target from issue 11: >= 20,000 durable REPORTs/s with 16 in flight,
    and >= 0.5 x the control of the same run.

    Each device is the only one of its account unless --per-account N
    says more: every REPORT is then also a NOTIFY "installed" to the
    account's other online devices, so the durable round does N times
    the sending.

    Usage: bench_commit [--devices N] [--seconds S] [--rounds R] [--per-account N]
                        [--broker PATH]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include "af_msg.h"
#include "af_catalog.h"
#include "bench_util.h"
#include "bench_stats.h"

#define MAX_DEVICES     256
#define MAX_ROUNDS      9

static int s_devices = 16;
static double s_seconds = 2;
static int s_rounds = 3;
static int s_per_account = 1;       //  devices per account

typedef struct {
    zsock_t *sock;
    uint64_t seq;                   //  the device's last REPORT seq
    uint64_t programs;              //  programs it reported so far
} device_t;

//  The next request of a device in a round
static af_msg_t *
s_request (device_t *device, bool durable)
{
    af_msg_t *msg;
    if (durable) {
        msg = af_msg_new (AF_MSG_REPORT);
        msg->seq = ++device->seq;
        snprintf (msg->op, sizeof msg->op, "install");
        snprintf (msg->program, sizeof msg->program, "bench.app%06" PRIu64, device->programs++);
        snprintf (msg->version_name, sizeof msg->version_name, "1.0");
        msg->version_code = 1;
    }
    else {
        msg = af_msg_new (AF_MSG_CONFIG_GET);
        snprintf (msg->program, sizeof msg->program, "bench.none");
    }
    af_msg_set_rid_random (msg);
    return msg;
}

//  One round: every device keeps one request in flight for s_seconds.
//  Answers per second, or -1 if an answer was not the expected one.
static double
s_round (device_t *devices, bool durable)
{
    zmq_pollitem_t items [MAX_DEVICES];
    for (int i = 0; i < s_devices; i++) {
        items [i] = (zmq_pollitem_t) { zsock_resolve (devices [i].sock), 0, ZMQ_POLLIN, 0 };
        af_msg_t *msg = s_request (&devices [i], durable);
        af_msg_send (msg, devices [i].sock, NULL);
        af_msg_destroy (&msg);
    }
    long answered = 0, in_flight = s_devices;
    int64_t start = zclock_usecs ();
    int64_t until = start + (int64_t) (s_seconds * 1e6);
    while (in_flight > 0) {
        if (zmq_poll (items, s_devices, 5000) <= 0) {
            fprintf (stderr, "bench_commit: no answer for 5 s\n");
            return -1;
        }
        bool go_on = zclock_usecs () < until;
        for (int i = 0; i < s_devices; i++) {
            if (!(items [i].revents & ZMQ_POLLIN))
                continue;
            af_msg_t *reply = bench_recv (devices [i].sock);
            if (reply && !reply->has_rid) {     //  news (a device list), not the answer
                af_msg_destroy (&reply);
                continue;
            }
            bool expected = reply && (durable? reply->id == AF_MSG_OK:
                            reply->id == AF_MSG_ERROR && reply->code == AF_E_NO_CONFIG);
            if (!expected) {
                fprintf (stderr, "bench_commit: %s answered %s %u %s\n", durable? "REPORT": "CONFIG_GET",
                         reply? af_msg_command_name (reply->id): "nothing", reply? reply->code: 0,
                         reply? reply->reason: "");
                af_msg_destroy (&reply);
                return -1;
            }
            af_msg_destroy (&reply);
            answered++;
            in_flight--;
            if (go_on) {
                af_msg_t *msg = s_request (&devices [i], durable);
                af_msg_send (msg, devices [i].sock, NULL);
                af_msg_destroy (&msg);
                in_flight++;
            }
        }
    }
    return (double) answered / ((double) (zclock_usecs () - start) / 1e6);
}

//  A value from the broker's figures, or 0
static double
s_figure (const char *data_dir, const char *name)
{
    char path [PATH_MAX], line [512];
    snprintf (path, sizeof path, "%s/broker/metrics.prom", data_dir);
    FILE *file = fopen (path, "r");
    double value = 0;
    size_t len = strlen (name);
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, name, len) == 0 && line [len] == ' ')
            value = atof (line + len + 1);
    if (file)
        fclose (file);
    return value;
}

static int
s_options (int argc, char *argv [])
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_commit [--devices N] [--seconds S] [--rounds R] [--per-account N] [--broker PATH]\n"
                    "Durable REPORTs per second, one in flight per device, beside a\n"
                    "non-durable CONFIG_GET of the same devices, in alternating rounds.\n");
            exit (0);
        }
        if (i + 1 >= argc)
            return -1;
        if (streq (argv [i], "--devices"))
            s_devices = atoi (argv [++i]);
        else
        if (streq (argv [i], "--seconds"))
            s_seconds = atof (argv [++i]);
        else
        if (streq (argv [i], "--rounds"))
            s_rounds = atoi (argv [++i]);
        else
        if (streq (argv [i], "--per-account"))
            s_per_account = atoi (argv [++i]);
        else
        if (streq (argv [i], "--broker"))
            bench_broker_path = argv [++i];
        else
            return -1;
    }
    return s_devices < 1 || s_devices > MAX_DEVICES || s_seconds <= 0 || s_seconds > 60
        || s_rounds < 1 || s_rounds > MAX_ROUNDS || s_per_account < 1 || s_per_account > AF_MAX_DEVICES? -1: 0;
}

//  The account and its devices, logged in
static int
s_devices_login (device_t *devices, const char *nodes_ep, const char *key)
{
    for (int i = 0; i < s_devices; i++) {
        devices [i].sock = bench_dealer (nodes_ep, key);
        if (!devices [i].sock)
            return -1;
        char account [32];
        snprintf (account, sizeof account, "bench%d", i / s_per_account);
        if (i % s_per_account == 0) {
            af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
            snprintf (reg->account, sizeof reg->account, "%s", account);
            strcpy (reg->password, "bench password");
            af_msg_t *reply = bench_request (devices [i].sock, reg);
            bool ok = reply && reply->id == AF_MSG_OK;
            af_msg_destroy (&reply);
            af_msg_destroy (&reg);
            if (!ok)
                return -1;
        }
        char model [32], id [AF_ID_HEX + 1];
        snprintf (model, sizeof model, "Bench %d", i);
        if (bench_login (devices [i].sock, account, model, id))
            return -1;
    }
    return 0;
}

static int
s_run (device_t *devices, const char *dir)
{
    double durable [MAX_ROUNDS], control [MAX_ROUNDS];
    double writes = s_figure (dir, "appferry_store_writes_total");
    double commits = s_figure (dir, "appferry_store_commits_total");
    double spent = s_figure (dir, "appferry_store_commit_seconds_total");
    int64_t durable_us = 0;             //  the durable rounds' time, all commits are in it
    for (int round = 0; round < s_rounds; round++) {
        int64_t started = zclock_usecs ();
        durable [round] = s_round (devices, true);
        durable_us += zclock_usecs () - started;
        control [round] = s_round (devices, false);
        if (durable [round] < 0 || control [round] < 0)
            return -1;
        printf ("round %d: durable REPORT %.0f/s, control CONFIG_GET %.0f/s (%.2f)\n", round + 1,
                durable [round], control [round], durable [round] / control [round]);
        fflush (stdout);
    }
    zclock_sleep (1500);                //  the broker's figures are a second old
    writes = s_figure (dir, "appferry_store_writes_total") - writes;
    commits = s_figure (dir, "appferry_store_commits_total") - commits;
    spent = s_figure (dir, "appferry_store_commit_seconds_total") - spent;
    double d = bench_median (durable, s_rounds), c = bench_median (control, s_rounds);
    printf ("median: durable %.0f REPORTs/s, control %.0f/s: ratio %.2f (%d devices, one in flight each; "
            "target >= 20000/s and >= 0.5)\n", d, c, d / c, s_devices);
    if (commits > 0)
        printf ("the broker: %.0f changes in %.0f commits to disk, %.1f per commit, %.2f ms per commit, "
                "%.0f%% of the durable rounds' time\n", writes, commits, writes / commits, spent * 1000 / commits,
                100 * spent / ((double) durable_us / 1e6));
    return 0;
}

int
main (int argc, char *argv [])
{
    if (s_options (argc, argv)) {
        fprintf (stderr, "bench_commit: --devices 1..%d, --seconds 0..60, --rounds 1..%d, --per-account 1..%d, "
                 "--broker PATH\n", MAX_DEVICES, MAX_ROUNDS, AF_MAX_DEVICES);
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (NULL);
    char dir [] = "/tmp/bench_commit_XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    char catalog [PATH_MAX], nodes_ep [256], key [64];
    snprintf (catalog, sizeof catalog, "%s/catalog", dir);
    af_catalog_t *empty = af_catalog_new (catalog, true);       //  the matcher needs one
    af_catalog_destroy (&empty);
    pid_t broker = 0, matcher = 0;
    device_t devices [MAX_DEVICES];
    memset (devices, 0, sizeof devices);
    int rc = bench_start_services (dir, catalog, &broker, &matcher, nodes_ep, key);
    if (rc == 0)
        rc = s_devices_login (devices, nodes_ep, key);
    if (rc == 0)
        rc = s_run (devices, dir);
    else
        fprintf (stderr, "bench_commit: could not set up (see %s)\n", dir);
    for (int i = 0; i < s_devices; i++)
        zsock_destroy (&devices [i].sock);
    bench_stop (matcher);
    bench_stop (broker);
    if (rc == 0) {
        zdir_t *tree = zdir_new (dir, NULL);
        zdir_remove (tree, true);
        zdir_destroy (&tree);
    }
    return rc? 1: 0;
}
