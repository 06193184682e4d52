/*  =========================================================================
    bench_repl - what replication costs: durable requests per second with
    one follower beside none, in the same run

    Starts, under a temporary directory, one broker alone (no etcd: it
    owns every account and keeps no log) and a cluster of two (the etcd
    of --etcd, --shards shards, one follower each: every shard is owned by
    one of the two and followed by the other, so each broker is owner of
    about half and follower of the rest). --devices devices (16) log in to
    each, every device its own account, on the cluster at its shard's
    owner (following REDIRECT), and keep one REPORT in flight each, as
    nodes do (SPEC 5.28). A REPORT is answered OK only once it is on disk:
    alone, after the broker's group commit; in the cluster, after the
    owner's commit, the follower's commit of the REPL, and its REPL_ACK.
    Rounds alternate, alone and cluster, each --seconds (2), --rounds (3)
    times; prints how the devices fell on the two owners (the brokers'
    IDs are random, so the split is too: 10/6 and 5/11 in two runs), each
    round, the medians and their ratio.

    Target from issue 12: the cluster >= 0.5 x alone. Both share the
    machine's cores with the devices' client thread; the cluster's two
    brokers also share them with each other and with etcd (which is not
    on the path of a request: only leases and in-sync changes go there).

    Usage: bench_repl --etcd URL [--devices N] [--seconds S] [--rounds R]
                      [--shards N] [--broker PATH]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include <jansson.h>
#include "af_msg.h"
#include "bench_util.h"
#include "bench_stats.h"

#define MAX_DEVICES     256
#define MAX_ROUNDS      9
#define MEMBERS         2

static int s_devices = 16;
static double s_seconds = 2;
static int s_rounds = 3;
static int s_shards = 16;
static const char *s_etcd = NULL;

typedef struct {
    zsock_t *sock;
    uint64_t seq;
    char at [256];                  //  the broker it is logged in to
} device_t;

//  --------------------------------------------------------------------------
//  Devices

static int
s_login (device_t *devices, const char *nodes_ep, const char *key, const char *prefix)
{
    for (int i = 0; i < s_devices; i++) {
        devices [i].sock = bench_dealer (nodes_ep, key);
        if (!devices [i].sock)
            return -1;
        af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
        snprintf (reg->account, sizeof reg->account, "%s%d", prefix, i);
        strcpy (reg->password, "bench password");
        snprintf (devices [i].at, sizeof devices [i].at, "%s", nodes_ep);
        af_msg_t *reply = bench_request_follow (&devices [i].sock, devices [i].at, reg, key);
        bool ok = reply && reply->id == AF_MSG_OK;
        af_msg_destroy (&reply);
        char id [AF_ID_HEX + 1], model [32];
        snprintf (model, sizeof model, "Bench %d", i);
        if (!ok || bench_login (devices [i].sock, reg->account, model, id)) {
            fprintf (stderr, "bench_repl: %s could not register and log in\n", reg->account);
            af_msg_destroy (&reg);
            return -1;
        }
        af_msg_destroy (&reg);
    }
    return 0;
}

static void
s_report (device_t *device)
{
    af_msg_t *msg = af_msg_new (AF_MSG_REPORT);
    msg->seq = ++device->seq;
    snprintf (msg->op, sizeof msg->op, "install");
    snprintf (msg->program, sizeof msg->program, "bench.app%06" PRIu64, device->seq);
    snprintf (msg->version_name, sizeof msg->version_name, "1.0");
    msg->version_code = 1;
    af_msg_set_rid_random (msg);
    af_msg_send (msg, device->sock, NULL);
    af_msg_destroy (&msg);
}

//  One round: every device keeps one REPORT in flight for s_seconds.
//  OKs per second, or -1 on an answer that is not OK.
static double
s_round (device_t *devices)
{
    zmq_pollitem_t items [MAX_DEVICES];
    for (int i = 0; i < s_devices; i++) {
        items [i] = (zmq_pollitem_t) { zsock_resolve (devices [i].sock), 0, ZMQ_POLLIN, 0 };
        s_report (&devices [i]);
    }
    long answered = 0, in_flight = s_devices;
    int64_t start = zclock_usecs (), until = start + (int64_t) (s_seconds * 1e6);
    while (in_flight > 0) {
        if (zmq_poll (items, s_devices, 5000) <= 0) {
            fprintf (stderr, "bench_repl: no answer for 5 s\n");
            return -1;
        }
        bool go_on = zclock_usecs () < until;
        for (int i = 0; i < s_devices; i++) {
            if (!(items [i].revents & ZMQ_POLLIN))
                continue;
            af_msg_t *reply = bench_recv (devices [i].sock);
            if (reply && !reply->has_rid) {     //  news, not the answer
                af_msg_destroy (&reply);
                continue;
            }
            bool ok = reply && reply->id == AF_MSG_OK;
            if (!ok)
                fprintf (stderr, "bench_repl: REPORT answered %s %u %s\n", reply? af_msg_command_name (reply->id):
                         "nothing", reply? reply->code: 0, reply? reply->reason: "");
            af_msg_destroy (&reply);
            if (!ok)
                return -1;
            answered++;
            in_flight--;
            if (go_on) {
                s_report (&devices [i]);
                in_flight++;
            }
        }
    }
    return (double) answered / ((double) (zclock_usecs () - start) / 1e6);
}

//  --------------------------------------------------------------------------

static int
s_run (device_t *alone, device_t *cluster)
{
    double a [MAX_ROUNDS], c [MAX_ROUNDS], r [MAX_ROUNDS];
    for (int round = 0; round < s_rounds; round++) {
        a [round] = s_round (alone);
        c [round] = s_round (cluster);
        if (a [round] < 0 || c [round] < 0)
            return -1;
        r [round] = c [round] / a [round];
        printf ("round %d: no follower %.0f REPORTs/s, 1 follower %.0f REPORTs/s (%.2f)\n", round + 1, a [round],
                c [round], c [round] / a [round]);
        fflush (stdout);
    }
    double ma = bench_median (a, s_rounds), mc = bench_median (c, s_rounds);
    printf ("median: no follower %.0f durable REPORTs/s, 1 follower %.0f/s: ratio %.2f, median of the rounds' "
            "ratios %.2f (%d devices, one in flight each; %d shards; target >= 0.5)\n", ma, mc, mc / ma,
            bench_median (r, s_rounds), s_devices, s_shards);
    return 0;
}

static int
s_options (int argc, char *argv [])
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_repl --etcd URL [--devices N] [--seconds S] [--rounds R] [--shards N] "
                    "[--broker PATH]\nDurable REPORTs per second through one broker alone and through a cluster "
                    "of two\n(one follower per shard), in alternating rounds.\n");
            exit (0);
        }
        if (i + 1 >= argc)
            return -1;
        const char *option = argv [i++], *value = argv [i];
        if (streq (option, "--etcd")) s_etcd = value;
        else if (streq (option, "--devices")) s_devices = atoi (value);
        else if (streq (option, "--seconds")) s_seconds = atof (value);
        else if (streq (option, "--rounds")) s_rounds = atoi (value);
        else if (streq (option, "--shards")) s_shards = atoi (value);
        else if (streq (option, "--broker")) bench_broker_path = value;
        else return -1;
    }
    return !s_etcd || s_devices < 1 || s_devices > MAX_DEVICES || s_seconds <= 0 || s_seconds > 60
        || s_rounds < 1 || s_rounds > MAX_ROUNDS || s_shards < 1 || s_shards > 4096? -1: 0;
}

int
main (int argc, char *argv [])
{
    if (s_options (argc, argv)) {
        fprintf (stderr, "bench_repl: --etcd URL is needed; --devices 1..%d, --seconds 0..60, --rounds 1..%d, "
                 "--shards 1..4096\n", MAX_DEVICES, MAX_ROUNDS);
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (NULL);
    char dir [] = "/tmp/bench_repl_XXXXXX", alone_dir [PATH_MAX], key [64], alone_ep [256], cluster_ep [256];
    if (!mkdtemp (dir))
        return 1;
    snprintf (alone_dir, sizeof alone_dir, "%s/alone", dir);
    pid_t alone = bench_broker (alone_dir, NULL, alone_ep), members [MEMBERS] = { -1, -1 };
    device_t single [MAX_DEVICES], cluster [MAX_DEVICES];
    memset (single, 0, sizeof single);
    memset (cluster, 0, sizeof cluster);
    int rc = alone > 0? bench_cluster (dir, s_etcd, s_shards, MEMBERS, members, cluster_ep): -1;
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/c1/broker.cert", dir);
    zcert_t *cert = rc == 0? zcert_load (path): NULL;
    snprintf (key, sizeof key, "%s", cert? zcert_public_txt (cert): "");
    zcert_destroy (&cert);
    snprintf (path, sizeof path, "%s/broker.cert", alone_dir);
    zcert_t *alone_cert = rc == 0? zcert_load (path): NULL;
    char alone_key [64];
    snprintf (alone_key, sizeof alone_key, "%s", alone_cert? zcert_public_txt (alone_cert): "");
    zcert_destroy (&alone_cert);
    if (rc == 0)
        rc = s_login (single, alone_ep, alone_key, "alone");
    if (rc == 0)
        rc = s_login (cluster, cluster_ep, key, "cluster");
    if (rc == 0) {
        //  How the devices' accounts fell on the two owners: the cluster's
        //  figure depends on it (all on one, and the other only follows)
        int on_first = 0;
        for (int i = 0; i < s_devices; i++)
            on_first += streq (cluster [i].at, cluster [0].at);
        printf ("cluster: %d devices on one owner's shards, %d on the other's\n", on_first, s_devices - on_first);
        rc = s_run (single, cluster);
    }
    else
        fprintf (stderr, "bench_repl: could not set up (see %s)\n", dir);
    for (int i = 0; i < s_devices; i++) {
        zsock_destroy (&single [i].sock);
        zsock_destroy (&cluster [i].sock);
    }
    bench_stop (members [1]);
    bench_stop (members [0]);
    bench_stop (alone);
    if (rc == 0) {
        zdir_t *tree = zdir_new (dir, NULL);
        zdir_remove (tree, true);
        zdir_destroy (&tree);
    }
    return rc? 1: 0;
}
