/*  =========================================================================
    bench_transfer - package transfer throughput, to 1 and to 8 targets

    A package of random bytes (256 MiB unless --mib says otherwise) is
    imported into a fresh catalog, then sent to K receiving devices at
    once (K = 1, then 8), two ways, alternating, --rounds times:

      1. raw: this program re-executed as a child (--raw) with a CURVE
         ROUTER that streams the file to every receiver that asks, in
         256 KiB frames read with pread, 16 frames in flight per receiver,
         one more per frame the receiver acknowledges. No encoding, no
         hashing, no store. This is the baseline: plain ZeroMQ bulk sending
         of the same bytes over loopback.
      2. appferry: the real appferry-broker and appferry-matcher. An
         initiating device sends PUSH to the K targets; each target gets
         its OFFER from its outbox, FETCHes the package with credit 16,
         takes the CHUNKs (returning one credit per chunk) and sends DONE.
         The clock runs from the PUSH to the last target's last byte.

    Receivers are in-process CURVE DEALERs, one thread each, the same code
    path for both ways (they decode every CHUNK with the appferry codec;
    in the raw way they just count bytes). Prints MiB/s of package data
    delivered (K x size / time) for each way, the ratio, and the broker's
    resident memory before the first transfer and at its peak (VmHWM).
    Targets from issue 4: ratio at least 0.5, broker growth under 64 MiB.

    Usage: bench_transfer [--mib N] [--rounds R] [--seconds S] [--targets K]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "af_msg.h"
#include "bench_util.h"
#include "bench_stats.h"

#ifndef AF_CATALOG_PATH
#   define AF_CATALOG_PATH "appferry-catalog"
#endif

#define RAW_CHUNK   (256 * 1024)
#define RAW_CREDIT  16
#define MAX_TARGETS 8
#define MAX_ROUNDS  9

static int s_mib = 256;
static int s_rounds = 3;
static double s_seconds = 120;
static int s_targets_max = 8;

//  ---------------------------------------------------------------------
//  The raw sender (child process)

typedef struct {
    zframe_t *routing;
    uint64_t offset;
    int credit;
} stream_t;

static int
s_raw_server (const char *dir, const char *file)
{
    zsys_init ();
    int fd = open (file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat (fd, &st))
        return 1;
    uint64_t total = (uint64_t) st.st_size;
    zcert_t *cert = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zcert_apply (cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    zsock_set_linger (router, 0);
    if (zmq_bind (zsock_resolve (router), "tcp://127.0.0.1:0"))
        return 1;
    char *endpoint = zsock_last_endpoint (router);
    char path [PATH_MAX], tmp [PATH_MAX];
    snprintf (path, sizeof path, "%s/raw", dir);
    snprintf (tmp, sizeof tmp, "%s/raw.tmp", dir);
    FILE *out = fopen (tmp, "w");
    if (!out)
        return 1;
    fprintf (out, "%s\n%s\n", endpoint, zcert_public_txt (cert));
    fclose (out);
    rename (tmp, path);
    zstr_free (&endpoint);

    //  "GO" starts a stream for the sender; "C" returns one credit
    zhashx_t *streams = zhashx_new ();
    uint8_t *buffer = (uint8_t *) malloc (RAW_CHUNK);
    while (!zsys_interrupted) {
        zframe_t *routing = zframe_recv (router);
        zframe_t *body = routing? zframe_recv (router): NULL;
        if (!body)
            break;
        char key [64];
        sodium_bin2hex (key, sizeof key, zframe_data (routing), zframe_size (routing) < 31? zframe_size (routing): 31);
        stream_t *stream = (stream_t *) zhashx_lookup (streams, key);
        if (zframe_streq (body, "GO")) {
            if (!stream) {
                stream = (stream_t *) zmalloc (sizeof (stream_t));
                stream->routing = zframe_dup (routing);
                zhashx_insert (streams, key, stream);
            }
            stream->offset = 0;
            stream->credit = RAW_CREDIT;
        }
        else
        if (stream)
            stream->credit++;
        while (stream && stream->credit > 0 && stream->offset < total) {
            size_t want = total - stream->offset < RAW_CHUNK? (size_t) (total - stream->offset): RAW_CHUNK;
            if (pread (fd, buffer, want, (off_t) stream->offset) != (ssize_t) want)
                break;
            zframe_send (&stream->routing, router, ZFRAME_MORE | ZFRAME_REUSE);
            zmq_send (zsock_resolve (router), buffer, want, 0);
            stream->offset += want;
            stream->credit--;
        }
        zframe_destroy (&routing);
        zframe_destroy (&body);
    }
    for (stream_t *stream = (stream_t *) zhashx_first (streams); stream;
         stream = (stream_t *) zhashx_next (streams)) {
        zframe_destroy (&stream->routing);
        free (stream);
    }
    zhashx_destroy (&streams);
    free (buffer);
    zsock_destroy (&router);
    zcert_destroy (&cert);
    close (fd);
    return 0;
}

//  ---------------------------------------------------------------------
//  Receivers

typedef struct {
    zsock_t *sock;
    bool raw;
    uint64_t total;             //  bytes to receive
    uint64_t received;
    int64_t done_at;            //  zclock_usecs at the last byte
    bool failed;
    char why [256];
} receiver_t;

//  raw: "GO", count frames, "C" per frame
static void *
s_raw_receiver (void *arg)
{
    receiver_t *self = (receiver_t *) arg;
    void *sock = zsock_resolve (self->sock);
    zmq_send (sock, "GO", 2, 0);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (self->received < self->total) {
        if (zmq_msg_recv (&msg, sock, 0) == -1) {
            self->failed = true;
            snprintf (self->why, sizeof self->why, "no data for 5 s");
            break;
        }
        self->received += zmq_msg_size (&msg);
        zmq_send (sock, "C", 1, 0);
    }
    zmq_msg_close (&msg);
    self->done_at = zclock_usecs ();
    return NULL;
}

//  appferry: OFFER (in an ITEM), FETCH, CHUNKs with CREDIT, DONE
static void *
s_push_receiver (void *arg)
{
    receiver_t *self = (receiver_t *) arg;
    char push [AF_ID_HEX + 1] = "", hash [AF_HASH_HEX + 1] = "";
    while (!self->failed && (!*hash || self->received < self->total)) {
        af_msg_t *msg = bench_recv (self->sock);
        if (!msg) {
            self->failed = true;
            snprintf (self->why, sizeof self->why, "nothing from the broker for 5 s (%s)",
                      *hash? "during the transfer": "no offer");
            break;
        }
        if (msg->id == AF_MSG_ITEM && !*hash) {
            af_msg_t *offer = NULL;
            char err [256];
            if (af_msg_decode (msg->body, msg->body_size, &offer, err, sizeof err, NULL, NULL) == AF_OK
            &&  offer->id == AF_MSG_OFFER) {
                snprintf (push, sizeof push, "%s", offer->push_id);
                snprintf (hash, sizeof hash, "%s", offer->package.hash);
                af_msg_t *fetch = af_msg_new (AF_MSG_FETCH);
                strcpy (fetch->hash, hash);
                fetch->credit = AF_MAX_CREDIT;
                af_msg_set_rid_random (fetch);
                af_msg_send (fetch, self->sock, NULL);
                af_msg_destroy (&fetch);
            }
            af_msg_destroy (&offer);
        }
        else
        if (msg->id == AF_MSG_CHUNK && streq (msg->hash, hash)) {
            self->received += msg->size;
            af_msg_t *credit = af_msg_new (AF_MSG_CREDIT);
            strcpy (credit->hash, hash);
            credit->credit = 1;
            af_msg_send (credit, self->sock, NULL);
            af_msg_destroy (&credit);
        }
        else
        if (msg->id == AF_MSG_ERROR) {
            self->failed = true;
            snprintf (self->why, sizeof self->why, "%s", msg->reason);
        }
        af_msg_destroy (&msg);
    }
    self->done_at = zclock_usecs ();
    if (!self->failed) {
        af_msg_t *done = af_msg_new (AF_MSG_DONE);
        strcpy (done->push_id, push);
        strcpy (done->state, "installed");
        af_msg_t *ok = bench_request (self->sock, done);
        af_msg_destroy (&ok);
        af_msg_destroy (&done);
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Runs

//  One transfer to count receivers; returns MiB/s delivered, or -1
static double
s_run (zsock_t **socks, int count, bool raw, uint64_t size, zsock_t *initiator, char ids [][AF_ID_HEX + 1])
{
    receiver_t receivers [MAX_TARGETS];
    pthread_t threads [MAX_TARGETS];
    memset (receivers, 0, sizeof receivers);
    int64_t start = zclock_usecs ();
    if (!raw) {
        af_msg_t *push = af_msg_new (AF_MSG_PUSH);
        strcpy (push->program, "benchapp");
        for (int i = 0; i < count; i++)
            af_msg_add_target (push, ids [i]);
        af_msg_t *accepted = bench_request (initiator, push);
        bool ok = accepted && accepted->id == AF_MSG_PUSH_ACCEPTED;
        for (uint32_t i = 0; ok && i < accepted->result_count; i++)
            ok = streq (accepted->results [i].state, "offered");
        if (!ok)
            fprintf (stderr, "bench_transfer: push not accepted for every target: %s\n",
                     accepted && accepted->id == AF_MSG_ERROR? accepted->reason:
                     accepted && accepted->result_count? accepted->results [0].state: "no answer");
        af_msg_destroy (&accepted);
        af_msg_destroy (&push);
        if (!ok)
            return -1;
    }
    for (int i = 0; i < count; i++) {
        receivers [i].sock = socks [i];
        receivers [i].raw = raw;
        receivers [i].total = size;
        pthread_create (&threads [i], NULL, raw? s_raw_receiver: s_push_receiver, &receivers [i]);
    }
    int64_t end = start;
    bool failed = false;
    for (int i = 0; i < count; i++) {
        pthread_join (threads [i], NULL);
        if (receivers [i].failed) {
            fprintf (stderr, "bench_transfer: receiver %d failed: %s\n", i, receivers [i].why);
            failed = true;
        }
        if (receivers [i].done_at > end)
            end = receivers [i].done_at;
    }
    if (!raw) {
        //  The initiator's results: acknowledge them so its outbox stays empty
        zsock_set_rcvtimeo (initiator, 200);
        for (int got = 0; got < 100; got++) {
            af_msg_t *msg = bench_recv (initiator);
            if (!msg)
                break;
            if (msg->id == AF_MSG_ITEM) {
                af_msg_t *ack = af_msg_new (AF_MSG_ACK);
                strcpy (ack->item, msg->item);
                af_msg_send (ack, initiator, NULL);
                af_msg_destroy (&ack);
            }
            af_msg_destroy (&msg);
        }
        zsock_set_rcvtimeo (initiator, 5000);
    }
    if (failed || (end - start) / 1e6 > s_seconds)
        return -1;
    return (double) count * (double) size / 1048576.0 / ((double) (end - start) / 1e6);
}

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: bench_transfer [--mib N] [--rounds R] [--seconds S] [--targets K]\n"
"Package transfer throughput through the real broker, to 1 and to K targets\n"
"(default 8) at once, beside raw ZeroMQ bulk sending of the same bytes.\n"
"  --mib N       package size in MiB (default 256, 1..2048)\n"
"  --rounds R    alternating raw/broker rounds per target count (default 3, max 9)\n"
"  --seconds S   give up on a round that takes longer (default 120)\n"
"  --targets K   the larger target count (default 8, max 8)\n");
}

//  Read the options, or run as the raw sender child if told to. -1 to go
//  on, or the status to exit with: 0 after --help, 2 for a bad option, the
//  raw sender's own status.
static int
s_parse_options (int argc, char *argv [])
{
    if (argc == 4 && streq (argv [1], "--raw"))
        return s_raw_server (argv [2], argv [3]);
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc? argv [i + 1]: NULL;
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            s_usage (stdout);
            return 0;
        }
        else
        if (streq (argv [i], "--mib") && next && atoi (next) >= 1 && atoi (next) <= 2048)
            s_mib = atoi (argv [++i]);
        else
        if (streq (argv [i], "--rounds") && next && atoi (next) >= 1 && atoi (next) <= MAX_ROUNDS)
            s_rounds = atoi (argv [++i]);
        else
        if (streq (argv [i], "--seconds") && next && atof (next) > 0)
            s_seconds = atof (argv [++i]);
        else
        if (streq (argv [i], "--targets") && next && atoi (next) >= 1 && atoi (next) <= MAX_TARGETS)
            s_targets_max = atoi (argv [++i]);
        else {
            fprintf (stderr, "bench_transfer: bad option '%s'\n", argv [i]);
            s_usage (stderr);
            return 2;
        }
    }
    return -1;
}

//  The package (DIR/benchapp.tar, s_mib MiB of random bytes) and its
//  catalog (DIR/catalog). 0, or -1 with a message printed.
static int
s_make_package (const char *dir)
{
    char path [PATH_MAX], cmd [PATH_MAX * 2];
    snprintf (path, sizeof path, "%s/benchapp.tar", dir);
    FILE *file = fopen (path, "w");
    uint8_t *block = (uint8_t *) malloc (1 << 20);
    for (int i = 0; file && i < s_mib; i++) {
        randombytes_buf (block, 1 << 20);
        fwrite (block, 1, 1 << 20, file);
    }
    free (block);
    if (!file || fclose (file)) {
        fprintf (stderr, "bench_transfer: cannot write %s\n", path);
        return -1;
    }
    snprintf (path, sizeof path, "%s/manifest.json", dir);
    file = fopen (path, "w");
    fprintf (file, "[{\"program\":\"benchapp\",\"platform\":\"android\",\"versionCode\":1,"
                   "\"versionName\":\"1.0\",\"minSdk\":21,\"file\":\"benchapp.tar\"}]\n");
    fclose (file);
    snprintf (cmd, sizeof cmd, "%s --catalog %s/catalog import %s/manifest.json > %s/import.log 2>&1",
              AF_CATALOG_PATH, dir, dir, dir);
    if (system (cmd)) {
        fprintf (stderr, "bench_transfer: catalog import failed (%s/import.log)\n", dir);
        return -1;
    }
    return 0;
}

//  The processes of the benchmark and its connections to them
typedef struct {
    pid_t raw_pid, broker_pid, matcher_pid;
    char raw_ep [256], raw_key [64];        //  the raw sender's endpoint and key
    char nodes_ep [256], broker_key [64];   //  the broker's
    zsock_t *raw_socks [MAX_TARGETS];       //  the targets' connections to the raw sender
    zsock_t *targets [MAX_TARGETS];         //  ... and to the broker
    zsock_t *initiator;                     //  the device that pushes
    char ids [MAX_TARGETS][AF_ID_HEX + 1];  //  the targets' device IDs
} transfer_bench_t;

//  Start the raw sender, the broker and the matcher, and read where the
//  raw sender listens. 0, or -1 (a message printed for most causes).
static int
s_start_services (transfer_bench_t *self, const char *dir)
{
    char path [PATH_MAX], log [PATH_MAX];
    char self_path [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    self_path [n > 0? n: 0] = 0;
    snprintf (path, sizeof path, "%s/benchapp.tar", dir);
    char *raw_argv [] = { self_path, "--raw", (char *) dir, path, NULL };
    snprintf (log, sizeof log, "%s/raw.log", dir);
    self->raw_pid = bench_spawn (raw_argv, log);
    char catalog_dir [PATH_MAX];
    snprintf (catalog_dir, sizeof catalog_dir, "%s/catalog", dir);
    if (bench_start_services (dir, catalog_dir, &self->broker_pid, &self->matcher_pid,
                              self->nodes_ep, self->broker_key))
        return -1;
    snprintf (path, sizeof path, "%s/raw", dir);
    if (!bench_wait_file (path)) {
        fprintf (stderr, "bench_transfer: no raw sender\n");
        return -1;
    }
    FILE *file = fopen (path, "r");
    if (!file || !fgets (self->raw_ep, sizeof self->raw_ep, file)
    ||  !fgets (self->raw_key, sizeof self->raw_key, file)) {
        if (file)
            fclose (file);
        return -1;
    }
    fclose (file);
    self->raw_ep [strcspn (self->raw_ep, "\n")] = 0;
    self->raw_key [strcspn (self->raw_key, "\n")] = 0;
    return 0;
}

//  The devices: an initiator and the targets, in one account, once the
//  matcher answers. 0, or -1.
static int
s_connect_devices (transfer_bench_t *self)
{
    self->initiator = bench_dealer (self->nodes_ep, self->broker_key);
    af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
    strcpy (reg->account, "bench");
    strcpy (reg->password, "bench password");
    af_msg_t *reply = bench_request (self->initiator, reg);
    af_msg_destroy (&reg);
    bool registered = reply && reply->id == AF_MSG_OK;
    af_msg_destroy (&reply);
    char initiator_id [AF_ID_HEX + 1];
    if (!registered || bench_login (self->initiator, "bench", "Bench initiator", initiator_id)) {
        fprintf (stderr, "bench_transfer: cannot register or log in\n");
        return -1;
    }
    for (int i = 0; i < s_targets_max; i++) {
        char model [32];
        snprintf (model, sizeof model, "Bench target %d", i);
        self->targets [i] = bench_dealer (self->nodes_ep, self->broker_key);
        self->raw_socks [i] = bench_dealer (self->raw_ep, self->raw_key);
        if (!self->targets [i] || !self->raw_socks [i]
        ||  bench_login (self->targets [i], "bench", model, self->ids [i]))
            return -1;
    }
    //  The matcher must be ready before the first push
    for (int i = 0; i < 100; i++) {
        af_msg_t *resolve = af_msg_new (AF_MSG_RESOLVE);
        strcpy (resolve->program, "benchapp");
        af_msg_t *answer = bench_request (self->initiator, resolve);
        bool ready = answer && answer->id == AF_MSG_RESOLVED;
        af_msg_destroy (&answer);
        af_msg_destroy (&resolve);
        if (ready)
            break;
        zclock_sleep (100);
    }
    return 0;
}

//  Alternate raw and appferry rounds, to 1 target and to s_targets_max;
//  print each round, the medians, their ratio and the broker's memory. 0,
//  or -1 if a round failed.
static int
s_run_rounds (transfer_bench_t *self, uint64_t size)
{
    long rss_before = bench_status_kib (self->broker_pid, "VmRSS:");
    printf ("bench_transfer: %d MiB package, %d round%s per target count, %d-core machine\n",
            s_mib, s_rounds, s_rounds == 1? "": "s", (int) sysconf (_SC_NPROCESSORS_ONLN));

    int counts [2] = { 1, s_targets_max };
    double ratios [2] = { 0, 0 };
    for (int c = 0; c < (s_targets_max > 1? 2: 1); c++) {
        double raw [MAX_ROUNDS], broker [MAX_ROUNDS];
        for (int r = 0; r < s_rounds; r++) {
            raw [r] = s_run (self->raw_socks, counts [c], true, size, NULL, self->ids);
            broker [r] = s_run (self->targets, counts [c], false, size, self->initiator, self->ids);
            if (raw [r] < 0 || broker [r] < 0) {
                fprintf (stderr, "bench_transfer: round %d with %d target(s) failed or took over %.0f s\n",
                         r + 1, counts [c], s_seconds);
                return -1;
            }
            printf ("  round %d, %d target%s: raw %8.1f MiB/s   appferry %8.1f MiB/s\n", r + 1,
                    counts [c], counts [c] == 1? " ": "s", raw [r], broker [r]);
            fflush (stdout);
        }
        double raw_median = bench_median (raw, s_rounds), broker_median = bench_median (broker, s_rounds);
        ratios [c] = broker_median / raw_median;
        printf ("%d target%s: raw ZeroMQ %.1f MiB/s, appferry %.1f MiB/s, ratio %.2f (target >= 0.5)\n",
                counts [c], counts [c] == 1? " ": "s", raw_median, broker_median, ratios [c]);
    }
    long hwm = bench_status_kib (self->broker_pid, "VmHWM:");
    printf ("broker resident memory: %.1f MiB before, peak %.1f MiB, growth %.1f MiB (target < 64 MiB)\n",
            rss_before / 1024.0, hwm / 1024.0, (hwm - rss_before) / 1024.0);
    return 0;
}

int
main (int argc, char *argv [])
{
    int rc = s_parse_options (argc, argv);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    signal (SIGPIPE, SIG_IGN);

    char dir [] = "/tmp/appferry-bench-transfer.XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    transfer_bench_t bench;
    memset (&bench, 0, sizeof bench);
    uint64_t size = (uint64_t) s_mib << 20;
    rc = 1;
    if (s_make_package (dir) == 0
    &&  s_start_services (&bench, dir) == 0
    &&  s_connect_devices (&bench) == 0
    &&  s_run_rounds (&bench, size) == 0)
        rc = 0;
    for (int i = 0; i < MAX_TARGETS; i++) {
        zsock_destroy (&bench.targets [i]);
        zsock_destroy (&bench.raw_socks [i]);
    }
    zsock_destroy (&bench.initiator);
    bench_stop (bench.matcher_pid);
    bench_stop (bench.broker_pid);
    bench_stop (bench.raw_pid);
    char cmd [PATH_MAX * 2];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    if (system (cmd))
        fprintf (stderr, "bench_transfer: could not remove %s\n", dir);
    return rc;
}
