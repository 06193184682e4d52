/*  =========================================================================
    bench_xnotify - routed NOTIFY per second on a cluster of three brokers
    beside one broker alone (issue 12)

    Starts, under a temporary directory, one broker alone (no etcd) and a
    cluster of three (the etcd of --etcd, --shards shards, one follower
    each), and on each --accounts accounts (default 24) of two devices, a
    sender and a receiver. Each account's first device registers through
    the first broker and follows REDIRECT to its shard's owner; its second
    logs in there too, so on the cluster the accounts, and their routing,
    are spread over the three brokers as their shards fall. Then, in
    alternating rounds of --seconds each, every sender keeps --window
    NOTIFYs (64-byte body, no rid: SPEC 5.15) in flight towards its
    receiver, counted when the receiver has them; prints each round, the
    medians and their ratio (cluster / alone).

    What it shows on one machine: the cost of the cluster's routing (a
    session's account checked against the shard map on every message,
    brokers that also replicate and keep leases) and how the work spreads
    over three processes. On this 2-core machine the three brokers, the
    followers' replication and this client share two cores, so a ratio
    near or below 1 is the machine, not the design: the figure that scales
    with machines is the per-broker rate.

    Usage: bench_xnotify --etcd URL [--accounts N] [--seconds S] [--window W]
                         [--rounds R] [--shards N] [--broker PATH]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include "af_msg.h"
#include "bench_util.h"
#include "bench_stats.h"

#define MEMBERS         3
#define MAX_ACCOUNTS    200
#define MAX_ROUNDS      15

static int s_accounts = 24;
static int s_window = 64;
static double s_seconds = 3.0;
static int s_rounds = 3;
static int s_shards = 16;
static const char *s_etcd = NULL;

typedef struct {
    zsock_t *sender, *receiver;
    char to [AF_ID_HEX + 1];            //  the receiver's device ID
    char endpoint [256];                //  the broker both are logged in at
    long sent, received;
} pair_t;

//  An account of two devices at its shard's owner. 0, or -1 (printed).
static int
s_pair (pair_t *pair, const char *nodes_ep, const char *key, const char *account)
{
    char *endpoint = pair->endpoint, from [AF_ID_HEX + 1];
    snprintf (pair->endpoint, sizeof pair->endpoint, "%s", nodes_ep);
    pair->sender = bench_dealer (endpoint, key);
    af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
    snprintf (reg->account, sizeof reg->account, "%s", account);
    strcpy (reg->password, "bench password");
    af_msg_t *reply = pair->sender? bench_request_follow (&pair->sender, endpoint, reg, key): NULL;
    bool ok = reply && reply->id == AF_MSG_OK;
    af_msg_destroy (&reply);
    af_msg_destroy (&reg);
    pair->receiver = ok? bench_dealer (endpoint, key): NULL;
    if (!ok || !pair->receiver || bench_login (pair->sender, account, "Sender", from)
    ||  bench_login (pair->receiver, account, "Receiver", pair->to)) {
        fprintf (stderr, "bench_xnotify: %s could not register and log in two devices\n", account);
        return -1;
    }
    return 0;
}

static int
s_pairs (pair_t *pairs, const char *nodes_ep, const char *key, const char *prefix)
{
    for (int i = 0; i < s_accounts; i++) {
        char account [32];
        snprintf (account, sizeof account, "%s%d", prefix, i);
        if (s_pair (&pairs [i], nodes_ep, key, account))
            return -1;
    }
    return 0;
}

//  How the accounts fell over the brokers, printed
static void
s_spread (pair_t *pairs)
{
    zhashx_t *counts = zhashx_new ();
    for (int i = 0; i < s_accounts; i++)
        zhashx_update (counts, pairs [i].endpoint,
                       (void *) ((uintptr_t) zhashx_lookup (counts, pairs [i].endpoint) + 1));
    printf ("the cluster's accounts at their owners:");
    for (void *n = zhashx_first (counts); n; n = zhashx_next (counts))
        printf (" %s %zu", (const char *) zhashx_cursor (counts), (size_t) (uintptr_t) n);
    printf ("\n");
    zhashx_destroy (&counts);
}

static void
s_send (pair_t *pair, af_msg_t *notify)
{
    snprintf (notify->device_id, sizeof notify->device_id, "%s", pair->to);
    af_msg_send (notify, pair->sender, NULL);
    pair->sent++;
}

//  What a receiver has now: NOTIFYs counted, anything else dropped
static void
s_drain (pair_t *pair)
{
    while (true) {
        zmsg_t *zmsg = zmsg_recv_nowait (pair->receiver);
        if (!zmsg)
            break;
        zframe_t *frame = zmsg_last (zmsg);
        af_msg_t *msg = NULL;
        char err [AF_MAX_REASON + 1];
        if (frame && af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err, NULL, NULL)
                     == AF_OK && msg->id == AF_MSG_NOTIFY)
            pair->received++;
        af_msg_destroy (&msg);
        zmsg_destroy (&zmsg);
    }
}

//  One round: every sender keeps s_window in flight for s_seconds; then
//  what is in flight is waited for (up to 5 s). NOTIFYs received per
//  second, or -1 when the flow stopped.
static double
s_round (pair_t *pairs)
{
    zmq_pollitem_t items [MAX_ACCOUNTS];
    af_msg_t *notify = af_msg_new (AF_MSG_NOTIFY);
    snprintf (notify->kind, sizeof notify->kind, "bench");
    af_msg_set_body (notify, (const uint8_t *) "0123456789abcdef0123456789abcdef"
                                               "0123456789abcdef0123456789abcdef", 64);
    for (int i = 0; i < s_accounts; i++) {
        items [i] = (zmq_pollitem_t) { zsock_resolve (pairs [i].receiver), 0, ZMQ_POLLIN, 0 };
        pairs [i].sent = pairs [i].received = 0;
        while (pairs [i].sent < s_window)
            s_send (&pairs [i], notify);
    }
    int64_t start = zclock_usecs (), until = start + (int64_t) (s_seconds * 1e6), last_seen = start;
    long received = 0;
    while (true) {
        int64_t now = zclock_usecs ();
        bool go_on = now < until;
        long in_flight = 0;
        for (int i = 0; i < s_accounts; i++)
            in_flight += pairs [i].sent - pairs [i].received;
        if (!go_on && in_flight == 0)
            break;
        if (now - last_seen > 5000000) {
            fprintf (stderr, "bench_xnotify: nothing received for 5 s (%ld in flight)\n", in_flight);
            af_msg_destroy (&notify);
            return -1;
        }
        if (zmq_poll (items, s_accounts, 100) <= 0)
            continue;
        for (int i = 0; i < s_accounts; i++) {
            if (!(items [i].revents & ZMQ_POLLIN))
                continue;
            long had = pairs [i].received;
            s_drain (&pairs [i]);
            if (pairs [i].received > had)
                last_seen = zclock_usecs ();
            while (go_on && pairs [i].sent - pairs [i].received < s_window)
                s_send (&pairs [i], notify);
        }
    }
    for (int i = 0; i < s_accounts; i++)
        received += pairs [i].received;
    af_msg_destroy (&notify);
    return (double) received / ((double) (zclock_usecs () - start) / 1e6);
}

static int
s_run (pair_t *alone, pair_t *cluster)
{
    double a [MAX_ROUNDS], c [MAX_ROUNDS];
    for (int round = 0; round < s_rounds; round++) {
        a [round] = s_round (alone);
        c [round] = s_round (cluster);
        if (a [round] < 0 || c [round] < 0)
            return -1;
        printf ("round %d: one broker %.0f NOTIFYs/s, three brokers %.0f NOTIFYs/s (%.2f)\n", round + 1,
                a [round], c [round], c [round] / a [round]);
        fflush (stdout);
    }
    double ma = bench_median (a, s_rounds), mc = bench_median (c, s_rounds);
    printf ("median: one broker %.0f routed NOTIFYs/s, a cluster of three %.0f/s: ratio %.2f (%d accounts of "
            "two devices, %d in flight each; %d shards, one follower each)\n", ma, mc, mc / ma, s_accounts,
            s_window, s_shards);
    return 0;
}

static int
s_options (int argc, char *argv [])
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_xnotify --etcd URL [--accounts N] [--seconds S] [--window W] [--rounds R] "
                    "[--shards N] [--broker PATH]\nRouted NOTIFYs per second through one broker alone and "
                    "through a cluster of three,\nthe accounts spread over its brokers, in alternating "
                    "rounds.\n");
            exit (0);
        }
        if (i + 1 >= argc)
            return -1;
        const char *option = argv [i++], *value = argv [i];
        if (streq (option, "--etcd")) s_etcd = value;
        else if (streq (option, "--accounts")) s_accounts = atoi (value);
        else if (streq (option, "--seconds")) s_seconds = atof (value);
        else if (streq (option, "--window")) s_window = atoi (value);
        else if (streq (option, "--rounds")) s_rounds = atoi (value);
        else if (streq (option, "--shards")) s_shards = atoi (value);
        else if (streq (option, "--broker")) bench_broker_path = value;
        else return -1;
    }
    return !s_etcd || s_accounts < 1 || s_accounts > MAX_ACCOUNTS || s_seconds <= 0 || s_seconds > 60
        || s_window < 1 || s_window > 10000 || s_rounds < 1 || s_rounds > MAX_ROUNDS
        || s_shards < 1 || s_shards > 4096? -1: 0;
}

//  A broker's public key from its certificate under dir ("" if unreadable)
static void
s_key (const char *dir, char *key)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/broker.cert", dir);
    zcert_t *cert = zcert_load (path);
    snprintf (key, 64, "%s", cert? zcert_public_txt (cert): "");
    zcert_destroy (&cert);
}

int
main (int argc, char *argv [])
{
    if (s_options (argc, argv)) {
        fprintf (stderr, "bench_xnotify: --etcd URL is needed; --accounts 1..%d, --seconds 0..60, --window "
                 "1..10000, --rounds 1..%d, --shards 1..4096\n", MAX_ACCOUNTS, MAX_ROUNDS);
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (NULL);
    char dir [] = "/tmp/bench_xnotify_XXXXXX", alone_dir [PATH_MAX], c1_dir [PATH_MAX];
    char alone_ep [256], cluster_ep [256], alone_key [64], key [64];
    if (!mkdtemp (dir))
        return 1;
    snprintf (alone_dir, sizeof alone_dir, "%s/alone", dir);
    snprintf (c1_dir, sizeof c1_dir, "%s/c1", dir);
    pid_t alone = bench_broker (alone_dir, NULL, alone_ep), members [MEMBERS] = { -1, -1, -1 };
    static pair_t single [MAX_ACCOUNTS], cluster [MAX_ACCOUNTS];
    int rc = alone > 0? bench_cluster (dir, s_etcd, s_shards, MEMBERS, members, cluster_ep): -1;
    s_key (alone_dir, alone_key);
    s_key (c1_dir, key);
    if (rc == 0)
        rc = s_pairs (single, alone_ep, alone_key, "alone");
    if (rc == 0)
        rc = s_pairs (cluster, cluster_ep, key, "cluster");
    if (rc == 0)
        s_spread (cluster);
    if (rc == 0)
        rc = s_run (single, cluster);
    else
        fprintf (stderr, "bench_xnotify: could not set up (see %s)\n", dir);
    for (int i = 0; i < s_accounts; i++) {
        zsock_destroy (&single [i].sender);
        zsock_destroy (&single [i].receiver);
        zsock_destroy (&cluster [i].sender);
        zsock_destroy (&cluster [i].receiver);
    }
    for (int m = MEMBERS - 1; m >= 0; m--)
        bench_stop (members [m]);
    bench_stop (alone);
    if (rc == 0) {
        zdir_t *tree = zdir_new (dir, NULL);
        zdir_remove (tree, true);
        zdir_destroy (&tree);
    }
    return rc? 1: 0;
}
