/*  =========================================================================
    bench_route - routed 64-byte messages per second, node -> broker -> node

    Two device connections in this process (CURVE DEALERs, one sender
    thread, one receiver thread) exchange NOTIFY messages with a 64-byte
    body and no request ID, twice:

      1. through a raw ZeroMQ ROUTER forwarder (this program re-executed
         as a child process with --forwarder): CURVE, the same socket
         options as the broker, no decoding, the payload frame moved to
         the receiver's identity untouched. This is the baseline.
      2. through the real appferry-broker binary (a child process with a
         fresh data directory): both devices register/log in, and every
         NOTIFY is decoded, checked against the session and the account's
         online index, re-encoded with the sender's device ID and routed.

    Both runs use the same flow control: the sender keeps at most WINDOW
    messages in flight, the receiver returns credit every 256 messages.
    Prints both rates, their ratio (target from issue 3: at least 0.5)
    and the broker's peak resident memory (VmHWM).

    Both pairs of connections stay up and the runs alternate, raw then
    broker, for ROUNDS rounds (default 3); the medians are compared.

    Usage: bench_route [--messages N] [--seconds S] [--window W] [--rounds R] [--broker PATH]
    =========================================================================
*/
#include <czmq.h>
#include <sodium.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>
#include "af_msg.h"
#include "bench_util.h"
#include "bench_stats.h"

#ifndef AF_BROKER_PATH
#   define AF_BROKER_PATH "appferry-broker"
#endif

#define CREDIT_EVERY 256

static int s_messages = 500000;
static double s_seconds = 10.0;
static int s_window = 2000;
static atomic_bool s_stop_receiver;
#define MAX_ROUNDS 9
static int s_rounds = 3;

//  ---------------------------------------------------------------------
//  The raw forwarder (child process)

static int
s_forwarder (const char *dir)
{
    zsys_init ();
    zcert_t *cert = zcert_new ();
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zcert_apply (cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    zsock_set_linger (router, 0);
    if (zmq_bind (zsock_resolve (router), "tcp://127.0.0.1:0")) {
        fprintf (stderr, "forwarder: bind: %s\n", zmq_strerror (zmq_errno ()));
        return 1;
    }
    char *endpoint = zsock_last_endpoint (router);
    char path [PATH_MAX], tmp [PATH_MAX];
    snprintf (path, sizeof path, "%s/forwarder", dir);
    snprintf (tmp, sizeof tmp, "%s/forwarder.tmp", dir);
    FILE *file = fopen (tmp, "w");
    if (!file)
        return 1;
    fprintf (file, "%s\n%s\n", endpoint, zcert_public_txt (cert));
    fclose (file);
    rename (tmp, path);
    zstr_free (&endpoint);

    //  The first message from a peer that is just "R" makes it the receiver;
    //  every other message goes to the receiver as it came.
    void *sock = zsock_resolve (router);
    zmq_msg_t receiver, identity, payload;
    zmq_msg_init (&receiver);
    bool have_receiver = false;
    while (!zsys_interrupted) {
        zmq_msg_init (&identity);
        zmq_msg_init (&payload);
        if (zmq_msg_recv (&identity, sock, 0) == -1 || zmq_msg_recv (&payload, sock, 0) == -1)
            break;
        if (zmq_msg_size (&payload) == 1 && *(char *) zmq_msg_data (&payload) == 'R') {
            zmq_msg_copy (&receiver, &identity);
            have_receiver = true;
            zmq_msg_send (&identity, sock, ZMQ_SNDMORE);    //  echo "R": known
            zmq_msg_send (&payload, sock, 0);
        }
        else
        if (have_receiver) {
            zmq_msg_t to;
            zmq_msg_init (&to);
            zmq_msg_copy (&to, &receiver);
            if (zmq_msg_send (&to, sock, ZMQ_SNDMORE) == -1 || zmq_msg_send (&payload, sock, 0) == -1)
                zmq_msg_close (&to);
        }
        zmq_msg_close (&identity);
        zmq_msg_close (&payload);
    }
    zmq_msg_close (&receiver);
    zsock_destroy (&router);
    zcert_destroy (&cert);
    return 0;
}

//  ---------------------------------------------------------------------
//  One measured run

typedef struct {
    zsock_t *sock;              //  the receiving device's connection
    zsock_t *credit;            //  PAIR back to the sender
    size_t expect_size;         //  size of a routed NOTIFY frame
    const uint8_t *ping;        //  PING to send every 500 ms, or NULL
    size_t ping_size;
    int received;
    int64_t last_at;            //  zclock_usecs of the last message
    bool stalled;
} receiver_t;

static void *
s_receiver (void *arg)
{
    receiver_t *self = (receiver_t *) arg;
    void *sock = zsock_resolve (self->sock);
    uint8_t buf [1024];
    int64_t next_ping = zclock_mono () + 500;
    int timeouts = 0;
    zsock_set_rcvtimeo (self->sock, 100);
    while (self->received < s_messages && !atomic_load (&s_stop_receiver)) {
        int size = zmq_recv (sock, buf, sizeof buf, 0);
        if (size == -1) {
            if (++timeouts > 50) {          //  5 s without a message
                self->stalled = true;
                break;
            }
        }
        else {
            timeouts = 0;
            if ((size_t) size == self->expect_size) {
                self->received++;
                self->last_at = zclock_usecs ();
                if (self->received % CREDIT_EVERY == 0 || self->received == s_messages)
                    zsock_send (self->credit, "i", self->received);
            }
        }
        if (self->ping && zclock_mono () >= next_ping) {
            zmq_send (sock, self->ping, self->ping_size, ZMQ_DONTWAIT);
            next_ping = zclock_mono () + 500;
        }
    }
    zsock_send (self->credit, "i", -1);
    return NULL;
}

//  Returns messages per second, or -1
static double
s_run (const char *name, zsock_t *sender, zsock_t *receiver, const uint8_t *payload, size_t size,
       size_t expect_size, const uint8_t *ping, size_t ping_size)
{
    static int runs = 0;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://credit-%d", ++runs);
    zsock_t *credit_rx = zsock_new (ZMQ_PAIR);
    zsock_t *credit_tx = zsock_new (ZMQ_PAIR);
    if (zsock_bind (credit_rx, "%s", endpoint) || zsock_connect (credit_tx, "%s", endpoint)) {
        fprintf (stderr, "bench_route: cannot set up the credit pipe\n");
        zsock_destroy (&credit_tx);
        zsock_destroy (&credit_rx);
        return -1;
    }
    receiver_t state = { receiver, credit_tx, expect_size, ping, ping_size, 0, 0, false };
    pthread_t thread;
    pthread_create (&thread, NULL, s_receiver, &state);

    void *sock = zsock_resolve (sender);
    int sent = 0, acked = 0;
    int64_t start = zclock_usecs ();
    int64_t deadline = start + (int64_t) (s_seconds * 1e6);
    bool done = false;
    while (!done) {
        while (sent < s_messages && sent - acked < s_window) {
            if (zmq_send (sock, payload, size, 0) == -1)
                break;
            sent++;
        }
        //  Wait for credit (blocking), then drain what else is there
        int value;
        if (zsock_recv (credit_rx, "i", &value))
            break;
        while (true) {
            if (value < 0) {
                done = true;
                break;
            }
            acked = value;
            if (acked >= s_messages)
                done = true;
            if (!(zsock_events (credit_rx) & ZMQ_POLLIN))
                break;
            if (zsock_recv (credit_rx, "i", &value))
                break;
        }
        if (zclock_usecs () > deadline)
            break;
    }
    //  Past the deadline: stop the receiver where it is
    if (!done)
        atomic_store (&s_stop_receiver, true);
    pthread_join (thread, NULL);
    atomic_store (&s_stop_receiver, false);
    zsock_destroy (&credit_tx);
    zsock_destroy (&credit_rx);
    if (state.stalled && state.received == 0) {
        fprintf (stderr, "bench_route: %s: nothing arrived\n", name);
        return -1;
    }
    double rate = state.received / ((state.last_at - start) / 1e6);
    printf ("%-44s %9d messages in %6.2f s: %10.0f msg/s\n", name, state.received,
            (state.last_at - start) / 1e6, rate);
    fflush (stdout);
    return rate;
}

//  Read the options, or run as the forwarder child if told to. -1 to go
//  on, or the status to exit with: 0 after --help, 2 for a bad option, the
//  forwarder's own status.
static int
s_parse_options (int argc, char *argv [], const char **broker_path)
{
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--forwarder") && i + 1 < argc)
            return s_forwarder (argv [i + 1]);
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: bench_route [--messages N] [--seconds S] [--window W] [--rounds R] [--broker PATH]\n"
                    "Routed 64-byte NOTIFY messages per second through the real broker,\n"
                    "beside a raw ZeroMQ CURVE ROUTER forwarder measured in the same run.\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf (stderr, "bench_route: %s needs a value (see --help)\n", argv [i]);
            return 2;
        }
        if (streq (argv [i], "--messages"))
            s_messages = atoi (argv [++i]);
        else
        if (streq (argv [i], "--seconds"))
            s_seconds = atof (argv [++i]);
        else
        if (streq (argv [i], "--window"))
            s_window = atoi (argv [++i]);
        else
        if (streq (argv [i], "--rounds"))
            s_rounds = atoi (argv [++i]);
        else
        if (streq (argv [i], "--broker"))
            *broker_path = argv [++i];
        else {
            fprintf (stderr, "bench_route: unknown option %s (see --help)\n", argv [i]);
            return 2;
        }
    }
    if (s_messages < 1000 || s_messages > 100000000 || s_seconds <= 0 || s_seconds > 120
    ||  s_window < 1 || s_window > 100000 || s_rounds < 1 || s_rounds > MAX_ROUNDS) {
        fprintf (stderr, "bench_route: --messages 1000.., --seconds 0..120, --window 1..100000, --rounds 1..9\n");
        return 2;
    }
    return -1;
}

//  The two pairs of connections, and what each pair's sender sends
typedef struct {
    zsock_t *ra, *rb;               //  through the raw forwarder: sender, receiver
    zsock_t *ba, *bb;               //  through the broker: sender, receiver
    zframe_t *raw_frame;            //  the NOTIFY the raw sender sends
    zframe_t *broker_frame;         //  the NOTIFY the broker's sender sends
    zframe_t *ping_frame;           //  a PING, the broker's receiver's keepalive
    size_t routed_size;             //  the size of the NOTIFY the broker routes
} route_bench_t;

//  1. The raw forwarder's pair of connections, once the forwarder has
//  written its endpoint and key to DIR/forwarder. 0, or -1 with a message
//  printed.
static int
s_connect_raw (route_bench_t *self, const char *dir, const char *fwd_log, af_msg_t *notify)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/forwarder", dir);
    if (!bench_wait_file (path)) {
        fprintf (stderr, "bench_route: the forwarder did not start (see %s)\n", fwd_log);
        return -1;
    }
    char endpoint [256] = "", key [64] = "";
    FILE *file = fopen (path, "r");
    if (!file || fscanf (file, "%255s %63s", endpoint, key) != 2) {
        fprintf (stderr, "bench_route: cannot read %s\n", path);
        if (file)
            fclose (file);
        return -1;
    }
    fclose (file);
    self->ra = bench_dealer (endpoint, key);
    self->rb = bench_dealer (endpoint, key);
    if (!self->ra || !self->rb)
        return -1;
    zstr_send (self->rb, "R");
    char *known = zstr_recv (self->rb);     //  the forwarder knows the receiver
    bool ok = known && streq (known, "R");
    zstr_free (&known);
    if (!ok) {
        fprintf (stderr, "bench_route: the forwarder did not answer\n");
        return -1;
    }
    self->raw_frame = af_msg_encode (notify);
    return 0;
}

//  2. The broker's pair: one account, two devices logged in, once the
//  broker has written its endpoints. 0, or -1 with a message printed.
static int
s_connect_broker (route_bench_t *self, const char *broker_dir, const char *broker_log, af_msg_t *notify)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/endpoints", broker_dir);
    if (!bench_wait_file (path)) {
        fprintf (stderr, "bench_route: the broker did not start (see %s)\n", broker_log);
        return -1;
    }
    char endpoint [256] = "", line [300];
    FILE *file = fopen (path, "r");
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "nodes=", 6) == 0)
            sscanf (line + 6, "%255s", endpoint);
    if (file)
        fclose (file);
    snprintf (path, sizeof path, "%s/broker.cert", broker_dir);
    zcert_t *broker_cert = zcert_load (path);
    if (!*endpoint || !broker_cert) {
        fprintf (stderr, "bench_route: cannot read the broker's endpoint or certificate\n");
        zcert_destroy (&broker_cert);
        return -1;
    }
    self->ba = bench_dealer (endpoint, zcert_public_txt (broker_cert));
    self->bb = bench_dealer (endpoint, zcert_public_txt (broker_cert));
    zcert_destroy (&broker_cert);
    if (!self->ba || !self->bb)
        return -1;
    af_msg_t *reg = af_msg_new (AF_MSG_REGISTER);
    snprintf (reg->account, sizeof reg->account, "bench");
    snprintf (reg->password, sizeof reg->password, "bench password");
    af_msg_t *reply = bench_request (self->ba, reg);
    bool registered = reply && reply->id == AF_MSG_OK;
    af_msg_destroy (&reply);
    af_msg_destroy (&reg);
    char a_id [AF_ID_HEX + 1], b_id [AF_ID_HEX + 1];
    if (!registered || bench_login (self->ba, "bench", "Sender", a_id) || bench_login (self->bb, "bench", "Receiver", b_id)) {
        fprintf (stderr, "bench_route: cannot register and log in (see %s)\n", broker_log);
        return -1;
    }
    snprintf (notify->device_id, sizeof notify->device_id, "%s", b_id);
    self->broker_frame = af_msg_encode (notify);
    //  What the receiver gets: the same NOTIFY naming the sender
    snprintf (notify->device_id, sizeof notify->device_id, "%s", a_id);
    zframe_t *routed = af_msg_encode (notify);
    self->routed_size = zframe_size (routed);
    zframe_destroy (&routed);
    return 0;
}

//  3. Alternate rounds, so both see the same machine; report medians and
//  the broker's peak memory. 0, or -1 if a round failed.
static int
s_run_rounds (route_bench_t *self, pid_t broker_pid)
{
    long hwm_before = bench_status_kib (broker_pid, "VmHWM:");
    double raw_rates [MAX_ROUNDS], broker_rates [MAX_ROUNDS];
    for (int round = 0; round < s_rounds; round++) {
        raw_rates [round] = s_run ("raw ZeroMQ ROUTER forwarder (CURVE)", self->ra, self->rb,
                                   zframe_data (self->raw_frame), zframe_size (self->raw_frame),
                                   zframe_size (self->raw_frame), NULL, 0);
        broker_rates [round] = s_run ("appferry-broker (decode, check, route)", self->ba, self->bb,
                                      zframe_data (self->broker_frame), zframe_size (self->broker_frame),
                                      self->routed_size,
                                      zframe_data (self->ping_frame), zframe_size (self->ping_frame));
        if (raw_rates [round] <= 0 || broker_rates [round] <= 0)
            return -1;
    }
    long hwm_after = bench_status_kib (broker_pid, "VmHWM:");
    double raw_rate = bench_median (raw_rates, s_rounds), broker_rate = bench_median (broker_rates, s_rounds);
    printf ("median of %d rounds: raw %.0f msg/s, broker %.0f msg/s\n", s_rounds, raw_rate, broker_rate);
    printf ("ratio broker / raw: %.2f (target >= 0.5: %s)\n", broker_rate / raw_rate,
            broker_rate / raw_rate >= 0.5? "met": "NOT met");
    printf ("broker peak resident memory: %.1f MiB before the runs, %.1f MiB after\n",
            hwm_before / 1024.0, hwm_after / 1024.0);
    return 0;
}

int
main (int argc, char *argv [])
{
    const char *broker_path = AF_BROKER_PATH;
    int rc = s_parse_options (argc, argv, &broker_path);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    char dir [] = "/tmp/af_bench_route_XXXXXX";
    if (!mkdtemp (dir))
        return 1;
    char self_path [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0)
        return 1;
    self_path [n] = 0;

    //  Start both children before this process creates any ZeroMQ context
    char *fwd_argv [] = { self_path, "--forwarder", dir, NULL };
    char fwd_log [PATH_MAX], broker_dir [PATH_MAX], broker_log [PATH_MAX];
    snprintf (fwd_log, sizeof fwd_log, "%s/forwarder.log", dir);
    snprintf (broker_dir, sizeof broker_dir, "%s/broker", dir);
    snprintf (broker_log, sizeof broker_log, "%s/broker.log", dir);
    pid_t fwd_pid = bench_spawn (fwd_argv, fwd_log);
    //  A long heartbeat (the longest the broker takes): the broker's devices
    //  send nothing during a raw round, which can last --seconds, and with
    //  a short one the broker expired them and the next round got nothing
    char *broker_argv [] = { (char *) broker_path, "-d", broker_dir, "--nodes", "tcp://127.0.0.1:*",
                             "--workers", "tcp://127.0.0.1:*", "--pwhash", "min", "--heartbeat", "600000",
                             NULL };
    pid_t broker_pid = bench_spawn (broker_argv, broker_log);

    zsys_init ();
    zsys_set_logstream (stderr);
    route_bench_t bench = { 0 };

    //  The device's NOTIFY as sent, and as the broker forwards it
    uint8_t body [64];
    randombytes_buf (body, sizeof body);
    af_msg_t *notify = af_msg_new (AF_MSG_NOTIFY);
    snprintf (notify->device_id, sizeof notify->device_id, "%032x", 0);
    snprintf (notify->kind, sizeof notify->kind, "bench");
    af_msg_set_body (notify, body, sizeof body);
    af_msg_t *ping = af_msg_new (AF_MSG_PING);
    bench.ping_frame = af_msg_encode (ping);

    int status = 1;
    if (s_connect_raw (&bench, dir, fwd_log, notify) == 0
    &&  s_connect_broker (&bench, broker_dir, broker_log, notify) == 0
    &&  s_run_rounds (&bench, broker_pid) == 0)
        status = 0;
    zsock_destroy (&bench.ra);
    zsock_destroy (&bench.rb);
    zsock_destroy (&bench.ba);
    zsock_destroy (&bench.bb);
    zframe_destroy (&bench.raw_frame);
    zframe_destroy (&bench.broker_frame);
    zframe_destroy (&bench.ping_frame);
    af_msg_destroy (&ping);
    af_msg_destroy (&notify);
    if (fwd_pid > 0)
        bench_stop (fwd_pid);
    if (broker_pid > 0)
        bench_stop (broker_pid);
    char command [PATH_MAX + 16];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (status == 0 && system (command) != 0)
        fprintf (stderr, "bench_route: could not remove %s\n", dir);
    if (status)
        fprintf (stderr, "bench_route: logs kept in %s\n", dir);
    return status;
}
