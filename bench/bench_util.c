/*  =========================================================================
    bench_util - what the end-to-end benchmarks share
    =========================================================================
*/
#include "bench_util.h"

#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>

#ifndef AF_BROKER_PATH
#   define AF_BROKER_PATH "appferry-broker"
#   define AF_MATCHER_PATH "appferry-matcher"
#endif

const char *bench_broker_path = AF_BROKER_PATH;

pid_t
bench_spawn (char *const argv [], const char *log)
{
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        execv (argv [0], argv);
        _exit (127);
    }
    return pid;
}

bool
bench_wait_file (const char *path)
{
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        if (stat (path, &st) == 0 && st.st_size > 0)
            return true;
        zclock_sleep (10);
    }
    return false;
}

long
bench_status_kib (pid_t pid, const char *field)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long kib = -1;
    if (!file)
        return -1;
    size_t len = strlen (field);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0)
            kib = atol (line + len);
    fclose (file);
    return kib;
}

void
bench_stop (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid (pid, NULL, WNOHANG) == pid)
            return;
        zclock_sleep (10);
    }
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
}

zsock_t *
bench_dealer (const char *endpoint, const char *server_key)
{
    zcert_t *cert = zcert_new ();
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!cert || !sock) {
        zcert_destroy (&cert);
        zsock_destroy (&sock);
        return NULL;
    }
    zcert_apply (cert, sock);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sock, server_key);
    zsock_set_sndhwm (sock, 100000);
    zsock_set_rcvhwm (sock, 100000);
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 5000);
    zsock_set_maxmsgsize (sock, AF_MAX_ZMQ_MSG);
    if (zsock_connect (sock, "%s", endpoint)) {
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

af_msg_t *
bench_recv (zsock_t *sock)
{
    zframe_t *frame = zframe_recv (sock);
    if (!frame)
        return NULL;
    af_msg_t *msg = NULL;
    char err [256];
    af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err, NULL, NULL);
    zframe_destroy (&frame);
    return msg;
}

af_msg_t *
bench_request (zsock_t *sock, af_msg_t *request)
{
    af_msg_set_rid_random (request);
    if (af_msg_send (request, sock, NULL))
        return NULL;
    for (int i = 0; i < 1000; i++) {
        af_msg_t *reply = bench_recv (sock);
        if (!reply)
            return NULL;
        if (reply->has_rid && memcmp (reply->rid, request->rid, AF_ID_SIZE) == 0)
            return reply;
        af_msg_destroy (&reply);
    }
    return NULL;
}

af_msg_t *
bench_request_follow (zsock_t **sock, char *endpoint, af_msg_t *request, const char *server_key)
{
    for (int hops = 0; hops < 20; hops++) {
        af_msg_t *reply = bench_request (*sock, request);
        if (!reply || reply->id != AF_MSG_REDIRECT)
            return reply;
        if (*reply->endpoint) {
            zsock_destroy (sock);
            *sock = bench_dealer (reply->endpoint, server_key);
            if (endpoint)
                snprintf (endpoint, 256, "%s", reply->endpoint);
        }
        else
            zclock_sleep (200);             //  no owner yet
        af_msg_destroy (&reply);
        if (!*sock)
            return NULL;
    }
    return NULL;
}

int
bench_login (zsock_t *sock, const char *account, const char *model, char *device_id)
{
    char json [512], err [256];
    snprintf (json, sizeof json,
        "{\"platform\":\"android\",\"sdkVersion\":33,\"model\":\"%s\",\"formFactor\":\"phone\","
        "\"screenWidth\":1080,\"screenHeight\":2400,\"screenDensity\":420,\"supportedAbis\":[\"arm64-v8a\"]}",
        model);
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    strcpy (msg->password, "bench password");
    msg->has_device = af_device_from_json (&msg->device, json, err, sizeof err) == AF_OK;
    af_msg_t *reply = bench_request (sock, msg);
    int rc = reply && reply->id == AF_MSG_LOGIN_OK? 0: -1;
    if (rc == 0)
        snprintf (device_id, AF_ID_HEX + 1, "%s", reply->device_id);
    else
        fprintf (stderr, "bench: login failed: %s\n", reply? reply->reason: "no reply");
    af_msg_destroy (&reply);
    af_msg_destroy (&msg);
    return rc;
}

//  Read "nodes=" and "workers=" of a broker's endpoints file (either
//  buffer may be NULL). 0, or -1 when the file cannot be read.
static int
s_endpoints (const char *path, char *nodes_ep, char *workers_ep)
{
    char line [512];
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\n")] = 0;
        if (nodes_ep && strncmp (line, "nodes=", 6) == 0)
            snprintf (nodes_ep, 256, "%s", line + 6);
        if (workers_ep && strncmp (line, "workers=", 8) == 0)
            snprintf (workers_ep, 256, "%s", line + 8);
    }
    fclose (file);
    return 0;
}

pid_t
bench_broker (const char *dir, const char *cfg, char *nodes_ep)
{
    char log [PATH_MAX], path [PATH_MAX];
    snprintf (log, sizeof log, "%s.log", dir);
    char *argv [] = { (char *) bench_broker_path, "-d", (char *) dir, "--nodes", "tcp://127.0.0.1:*",
        "--workers", "tcp://127.0.0.1:*", "--pwhash", "min", "--heartbeat", "600000", "--pw-per-source", "1000000",
        "--max-per-source", "1000000", cfg? "--config": NULL, (char *) cfg, NULL };
    pid_t pid = bench_spawn (argv, log);
    snprintf (path, sizeof path, "%s/endpoints", dir);
    if (!bench_wait_file (path) || s_endpoints (path, nodes_ep, NULL)) {
        fprintf (stderr, "bench: the broker did not start (%s)\n", log);
        bench_stop (pid);
        return -1;
    }
    return pid;
}

//  Is every shard owned, with an in-sync follower, in the members' maps?
static bool
s_cluster_ready (const char *dir, int shards, int members)
{
    json_t *maps [BENCH_MAX_MEMBERS] = { NULL };
    bool ready = true;
    for (int m = 0; m < members; m++) {
        char path [PATH_MAX];
        snprintf (path, sizeof path, "%s/c%d/cluster.json", dir, m + 1);
        maps [m] = json_load_file (path, 0, NULL);
        ready = ready && maps [m];
    }
    for (int s = 0; ready && s < shards; s++) {
        bool synced = false;
        for (int m = 0; m < members; m++) {
            json_t *shard = json_array_get (json_object_get (maps [m], "map"), (size_t) s);
            json_t *follower = json_array_get (json_object_get (shard, "followers"), 0);
            const char *role = json_string_value (json_object_get (shard, "role"));
            synced = synced || (role && streq (role, "owner") && json_is_true (json_object_get (follower, "inSync")));
        }
        ready = synced;
    }
    for (int m = 0; m < members; m++)
        json_decref (maps [m]);
    return ready;
}

int
bench_cluster (const char *dir, const char *etcd, int shards, int members, pid_t *pids, char *nodes_ep)
{
    assert (members >= 1 && members <= BENCH_MAX_MEMBERS);
    char cfg [PATH_MAX], path [PATH_MAX], ep [256];
    for (int m = 0; m < members; m++)
        pids [m] = -1;
    snprintf (cfg, sizeof cfg, "%s/cluster.cfg", dir);
    FILE *file = fopen (cfg, "w");
    if (!file)
        return -1;
    int written = fprintf (file, "cluster\n    etcd = %s\n    shards = %d\n", etcd, shards);
    if (fclose (file) || written < 0)
        return -1;
    snprintf (path, sizeof path, "%s/c1", dir);
    if ((pids [0] = bench_broker (path, cfg, nodes_ep)) < 0)
        return -1;
    //  One keypair for every member: c1's
    snprintf (path, sizeof path, "%s/c1/broker.cert", dir);
    zcert_t *cert = zcert_load (path);
    for (int m = 1; m < members; m++) {
        snprintf (path, sizeof path, "%s/c%d", dir, m + 1);
        if (!cert || zsys_dir_create ("%s", path))
            break;
        snprintf (path, sizeof path, "%s/c%d/broker.cert", dir, m + 1);
        if (zcert_save (cert, path))            //  and broker.cert_secret
            break;
        snprintf (path, sizeof path, "%s/c%d", dir, m + 1);
        pids [m] = bench_broker (path, cfg, ep);
    }
    zcert_destroy (&cert);
    for (int m = 0; m < members; m++)
        if (pids [m] <= 0)
            return -1;
    for (int tries = 0; tries < 600; tries++) {
        if (s_cluster_ready (dir, shards, members))
            return 0;
        zclock_sleep (100);
    }
    fprintf (stderr, "bench: the cluster's shards did not all get an owner and an in-sync follower\n");
    return -1;
}

int
bench_start_services (const char *dir, const char *catalog_dir, pid_t *broker, pid_t *matcher,
                      char *nodes_ep, char *broker_key)
{
    char broker_dir [PATH_MAX], path [PATH_MAX], log [PATH_MAX];
    snprintf (broker_dir, sizeof broker_dir, "%s/broker", dir);
    //  A long heartbeat: idle connections stay logged in between rounds
    char *broker_argv [] = { (char *) bench_broker_path, "-d", broker_dir, "--nodes", "tcp://127.0.0.1:*",
        "--workers", "tcp://127.0.0.1:*", "--pwhash", "min", "--heartbeat", "600000", "--pw-per-source", "1000000",
        "--max-per-source", "1000000", "--catalog", (char *) catalog_dir, NULL };
    //  AF_BENCH_WRAP runs the broker under another program, e.g. a script
    //  that execs valgrind --tool=callgrind "$@" to count its instructions
    char *wrapped [sizeof broker_argv / sizeof broker_argv [0] + 1];
    char *wrap = getenv ("AF_BENCH_WRAP");
    if (wrap && *wrap) {
        wrapped [0] = wrap;
        memcpy (wrapped + 1, broker_argv, sizeof broker_argv);
    }
    snprintf (log, sizeof log, "%s/broker.log", dir);
    *broker = bench_spawn (wrap && *wrap? wrapped: broker_argv, log);
    snprintf (path, sizeof path, "%s/endpoints", broker_dir);
    if (!bench_wait_file (path)) {
        fprintf (stderr, "bench: the broker did not start (%s)\n", log);
        return -1;
    }
    char workers_ep [256] = "";
    if (s_endpoints (path, nodes_ep, workers_ep))
        return -1;
    char cert_path [PATH_MAX], matcher_cert [PATH_MAX];
    snprintf (cert_path, sizeof cert_path, "%s/broker.cert", broker_dir);
    snprintf (matcher_cert, sizeof matcher_cert, "%s/matcher.cert", dir);
    char *matcher_argv [] = { AF_MATCHER_PATH, "-b", workers_ep, "-k", cert_path, "-C", (char *) catalog_dir,
                              "-c", matcher_cert, "--heartbeat", "1000", NULL };
    snprintf (log, sizeof log, "%s/matcher.log", dir);
    *matcher = bench_spawn (matcher_argv, log);
    if (!bench_wait_file (matcher_cert)) {
        fprintf (stderr, "bench: the matcher made no certificate (%s)\n", log);
        return -1;
    }
    snprintf (path, sizeof path, "%s/workers/matcher.cert", broker_dir);
    zcert_t *cert = zcert_load (matcher_cert);
    if (!cert || zcert_save_public (cert, path)) {
        zcert_destroy (&cert);
        return -1;
    }
    zcert_destroy (&cert);
    cert = zcert_load (cert_path);
    if (!cert)
        return -1;
    snprintf (broker_key, 41, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}
