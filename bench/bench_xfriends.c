/*  =========================================================================
    bench_xfriends - FRIENDS across a cluster's brokers beside one broker

    What `appferry friends` costs when the asker's contacts live on other
    brokers (issue 13, SPEC 5.37 and 5.39): every token of the asker's
    book is looked up in its directory bucket, and each account found is
    checked for friendship with the asker, at the owners of the buckets'
    and the accounts' shards. Starts, under a temporary directory, one
    broker alone (no etcd) and a cluster of three (the etcd of --etcd,
    --shards shards, one follower each), and on each: --contacts accounts
    (500), each with one own number (its token into the directory) and a
    book holding two of the asker's tokens (a friend) for every other one
    and one (not a friend) for the rest; then the asker, with a book of
    all their numbers. On the cluster the asker's contacts, their buckets
    and their accounts are spread over the three brokers (the shards
    decide). Then --rounds FRIENDS requests (one at a time) to each,
    alternating; prints each, the medians and their ratio, and checks that
    both answer the same friends (half the book).

    Tokens are random 32-byte strings, put with CONTACTS_PUT: the brokers
    never see a number anyway, so no contacts service is needed.

    Usage: bench_xfriends --etcd URL [--contacts N] [--rounds R] [--shards N]
                          [--broker PATH]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include <jansson.h>
#include "af_msg.h"
#include "bench_util.h"
#include "bench_stats.h"

#define MEMBERS         3
#define MAX_CONTACTS    5000
#define MAX_ROUNDS      15
#define TOKEN           AF_CONTACT_TOKEN_SIZE

static int s_contacts = 500;
static int s_rounds = 5;
static int s_shards = 256;
static const char *s_etcd = NULL;

//  --------------------------------------------------------------------------
//  Accounts

//  An account registered and logged in; its connection (NULL on failure)
static zsock_t *
s_account (const char *nodes_ep, const char *key, const char *account)
{
    zsock_t *sock = bench_dealer (nodes_ep, key);
    af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
    snprintf (reg->account, sizeof reg->account, "%s", account);
    strcpy (reg->password, "bench password");
    af_msg_t *reply = sock? bench_request_follow (&sock, NULL, reg, key): NULL;
    bool ok = reply && reply->id == AF_MSG_OK;
    af_msg_destroy (&reply);
    af_msg_destroy (&reg);
    char id [AF_ID_HEX + 1];
    if (!ok || bench_login (sock, account, "Bench", id)) {
        fprintf (stderr, "bench_xfriends: %s could not register and log in\n", account);
        zsock_destroy (&sock);
    }
    return sock;
}

//  CONTACTS_PUT op with count tokens: true if answered OK
static bool
s_put (zsock_t *sock, const char *op, const uint8_t *tokens, size_t count)
{
    af_msg_t *msg = af_msg_new (AF_MSG_CONTACTS_PUT);
    snprintf (msg->op, sizeof msg->op, "%s", op);
    af_msg_set_element_count (msg, (uint32_t) count);
    memcpy (msg->elements, tokens, count * TOKEN);
    af_msg_t *reply = bench_request (sock, msg);
    bool ok = reply && reply->id == AF_MSG_OK;
    if (!ok)
        fprintf (stderr, "bench_xfriends: CONTACTS_PUT %s answered %s %s\n", op,
                 reply? af_msg_command_name (reply->id): "nothing", reply? reply->reason: "");
    af_msg_destroy (&reply);
    af_msg_destroy (&msg);
    return ok;
}

//  The contacts (own number tokens [i], books of the asker's friends hold
//  two of its tokens, the others one), then the asker; its connection
static zsock_t *
s_fill (const char *nodes_ep, const char *key, const char *prefix, const uint8_t *tokens)
{
    char account [AF_MAX_ACCOUNT + 1];
    for (int i = 0; i < s_contacts; i++) {
        snprintf (account, sizeof account, "%s%d", prefix, i);
        zsock_t *sock = s_account (nodes_ep, key, account);
        uint8_t book [2 * TOKEN];
        memcpy (book, tokens + (size_t) ((i + 1) % s_contacts) * TOKEN, TOKEN);
        memcpy (book + TOKEN, tokens + (size_t) ((i + 2) % s_contacts) * TOKEN, TOKEN);
        bool ok = sock && s_put (sock, "own", tokens + (size_t) i * TOKEN, 1)
               && s_put (sock, "replace", book, i % 2? 1: 2);
        zsock_destroy (&sock);
        if (!ok)
            return NULL;
    }
    snprintf (account, sizeof account, "%sasker", prefix);
    zsock_t *sock = s_account (nodes_ep, key, account);
    bool ok = sock != NULL;
    for (int at = 0; ok && at < s_contacts; at += AF_MAX_CONTACTS_EVAL) {
        int count = s_contacts - at < AF_MAX_CONTACTS_EVAL? s_contacts - at: AF_MAX_CONTACTS_EVAL;
        ok = s_put (sock, at? "add": "replace", tokens + (size_t) at * TOKEN, (size_t) count);
    }
    if (!ok)
        zsock_destroy (&sock);
    return sock;
}

//  One FRIENDS: its time in ms, the friends into *friends; -1 on failure
static double
s_friends (zsock_t *sock, const char *where, uint32_t *friends)
{
    af_msg_t *msg = af_msg_new (AF_MSG_FRIENDS);
    int64_t start = zclock_usecs ();
    af_msg_t *reply = bench_request (sock, msg);
    double ms = (double) (zclock_usecs () - start) / 1000;
    bool ok = reply && reply->id == AF_MSG_FRIEND_LIST;
    if (ok)
        *friends = reply->element_count;
    else
        fprintf (stderr, "bench_xfriends: FRIENDS on %s answered %s %u %s\n", where,
                 reply? af_msg_command_name (reply->id): "nothing", reply? reply->code: 0, reply? reply->reason: "");
    af_msg_destroy (&reply);
    af_msg_destroy (&msg);
    return ok? ms: -1;
}

static int
s_run (zsock_t *alone, zsock_t *cluster)
{
    double a [MAX_ROUNDS], c [MAX_ROUNDS];
    uint32_t fa = 0, fc = 0;
    for (int round = 0; round < s_rounds; round++) {
        a [round] = s_friends (alone, "one broker", &fa);
        c [round] = s_friends (cluster, "three brokers", &fc);
        if (a [round] < 0 || c [round] < 0)
            return -1;
        printf ("round %d: one broker %.1f ms, three brokers %.1f ms (%.1f x)\n", round + 1, a [round], c [round],
                c [round] / a [round]);
        fflush (stdout);
    }
    double ma = bench_median (a, s_rounds), mc = bench_median (c, s_rounds);
    printf ("median FRIENDS of a book of %d contacts: one broker %.1f ms, three brokers %.1f ms: %.1f x "
            "(%u and %u friends; %d shards)\n", s_contacts, ma, mc, mc / ma, fa, fc, s_shards);
    if (fa != fc || fa != (uint32_t) (s_contacts + 1) / 2) {
        fprintf (stderr, "bench_xfriends: the friends differ (%u alone, %u in the cluster, %d wanted)\n", fa, fc,
                 (s_contacts + 1) / 2);
        return -1;
    }
    return 0;
}

static int
s_options (int argc, char *argv [])
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_xfriends --etcd URL [--contacts N] [--rounds R] [--shards N] [--broker PATH]\n"
                    "FRIENDS of a book of N contacts on one broker and on a cluster of three, alternating.\n");
            exit (0);
        }
        if (i + 1 >= argc)
            return -1;
        const char *option = argv [i++], *value = argv [i];
        if (streq (option, "--etcd")) s_etcd = value;
        else if (streq (option, "--contacts")) s_contacts = atoi (value);
        else if (streq (option, "--rounds")) s_rounds = atoi (value);
        else if (streq (option, "--shards")) s_shards = atoi (value);
        else if (streq (option, "--broker")) bench_broker_path = value;
        else return -1;
    }
    return !s_etcd || s_contacts < 3 || s_contacts > MAX_CONTACTS || s_rounds < 1 || s_rounds > MAX_ROUNDS
        || s_shards < 1 || s_shards > 4096? -1: 0;
}

//  The broker key of a data directory, into key
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
        fprintf (stderr, "bench_xfriends: --etcd URL is needed; --contacts 3..%d, --rounds 1..%d, --shards 1..4096\n",
                 MAX_CONTACTS, MAX_ROUNDS);
        return 2;
    }
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logstream (NULL);
    char dir [] = "/tmp/bench_xfriends_XXXXXX", path [PATH_MAX], key [64], alone_key [64];
    char alone_ep [256], cluster_ep [256];
    if (!mkdtemp (dir))
        return 1;
    uint8_t *tokens = (uint8_t *) malloc ((size_t) s_contacts * TOKEN);
    assert (tokens);
    randombytes_buf (tokens, (size_t) s_contacts * TOKEN);
    snprintf (path, sizeof path, "%s/alone", dir);
    pid_t alone = bench_broker (path, NULL, alone_ep), members [MEMBERS] = { -1, -1, -1 };
    s_key (path, alone_key);
    int rc = alone > 0? bench_cluster (dir, s_etcd, s_shards, MEMBERS, members, cluster_ep): -1;
    snprintf (path, sizeof path, "%s/c1", dir);
    s_key (path, key);
    int64_t start = zclock_mono ();
    zsock_t *single = rc == 0? s_fill (alone_ep, alone_key, "alone", tokens): NULL;
    zsock_t *cluster = single? s_fill (cluster_ep, key, "cluster", tokens): NULL;
    if (cluster) {
        printf ("set up: %d contacts and the asker on each in %.1f s\n", s_contacts,
                (double) (zclock_mono () - start) / 1000);
        rc = s_run (single, cluster);
    }
    else
        rc = -1;
    if (rc)
        fprintf (stderr, "bench_xfriends: failed (see %s)\n", dir);
    zsock_destroy (&single);
    zsock_destroy (&cluster);
    for (int m = MEMBERS - 1; m >= 0; m--)
        bench_stop (members [m]);
    bench_stop (alone);
    free (tokens);
    if (rc == 0) {
        zdir_t *tree = zdir_new (dir, NULL);
        zdir_remove (tree, true);
        zdir_destroy (&tree);
    }
    return rc? 1: 0;
}
