/*  =========================================================================
    af_worker - the worker's half of the worker dialog (see af_worker.h)

    One DEALER, one poller, one loop: wait half a heartbeat for a message,
    answer it, PING when a heartbeat has passed since the last one, READY
    again when the broker asked for it and a heartbeat has passed since the
    last READY, and start over with a new socket when the broker has been
    silent too long. Sends never block (ZMQ_SNDTIMEO 0): with no
    connection a DEALER send would wait forever, and the loop must keep
    running to notice the silence.
    =========================================================================
*/
#include "af_worker.h"

#include <assert.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    af_worker_fn *fn;
    void *arg;
} handler_t;

struct _af_worker_t {
    char service [AF_MAX_NAME + 1];
    char broker [256];
    int credit, heartbeat_ms, liveness;
    zcert_t *cert, *broker_cert;
    handler_t handlers [AF_MSG_COUNT];
    af_worker_idle_fn *idle_fn;
    void *idle_arg;
    af_worker_batch_fn *batch_fn;
    void *batch_arg;
    size_t batch_max;
    af_msg_t *batch [AF_BATCH];         //  the requests of one batch
    af_msg_t *replies [AF_BATCH];       //  and their replies
    zsock_t *sock;
    int64_t last_announce;
    bool announce_due;                  //  the broker said DISCONNECT
};

//  --------------------------------------------------------------------------
//  The common options

void
af_worker_options_init (af_worker_options_t *options, const char *broker, int credit)
{
    assert (options);
    memset (options, 0, sizeof *options);
    if (broker)
        af_worker_string_option (options->broker, sizeof options->broker, broker, "af_worker");
    options->credit = credit;
    options->heartbeat_ms = AF_HEARTBEAT_MS;
    options->liveness = AF_HEARTBEAT_LIVENESS;
}

int
af_worker_string_option (char *target, size_t size, const char *arg, const char *program)
{
    if (!arg || !*arg || strlen (arg) >= size) {
        fprintf (stderr, "%s: option value too long or empty: %s\n", program, arg? arg: "");
        return -1;
    }
    memcpy (target, arg, strlen (arg) + 1);
    return 0;
}

//  A whole decimal number in 0..max, or -1
static long
s_number (const char *arg, long max)
{
    char *end;
    errno = 0;
    long n = arg? strtol (arg, &end, 10): -1;
    return arg && *arg && !*end && errno == 0 && n >= 0 && n <= max? n: -1;
}

int
af_worker_option (af_worker_options_t *options, int opt, const char *arg, const char *program)
{
    assert (options && program);
    long n;
    switch (opt) {
        case 'b': return af_worker_string_option (options->broker, sizeof options->broker, arg, program)? -1: 1;
        case 'k': return af_worker_string_option (options->broker_key, sizeof options->broker_key, arg, program)?
                         -1: 1;
        case 'c': return af_worker_string_option (options->cert, sizeof options->cert, arg, program)? -1: 1;
        case 'v': options->verbose = true; return 1;
        case AF_WORKER_OPT_CREDIT:
        case AF_WORKER_OPT_HEARTBEAT:
            if ((n = s_number (arg, 86400000)) < 0) {
                fprintf (stderr, "%s: --%s: not a number: %s\n", program,
                         opt == AF_WORKER_OPT_CREDIT? "credit": "heartbeat", arg? arg: "");
                return -1;
            }
            *(opt == AF_WORKER_OPT_CREDIT? &options->credit: &options->heartbeat_ms) = (int) n;
            return 1;
        default: return 0;
    }
}

bool
af_worker_options_check (const af_worker_options_t *options, const char *program)
{
    assert (options && program);
    if (!*options->broker || !*options->broker_key || !*options->cert) {
        fprintf (stderr, "%s: --broker, --broker-key and --cert are required\n", program);
        return false;
    }
    if (options->credit < 1 || options->credit > 1024 || options->heartbeat_ms < 50) {
        fprintf (stderr, "%s: --credit is 1..1024, --heartbeat at least 50 (ms)\n", program);
        return false;
    }
    return true;
}

af_worker_config_t
af_worker_options_config (const af_worker_options_t *options, const char *service, const char *role)
{
    af_worker_config_t config = { service, options->broker, options->broker_key, options->cert, role,
                                  options->credit, options->heartbeat_ms, options->liveness };
    return config;
}

int
af_worker_make_parent (const char *file, char *err, size_t errlen)
{
    assert (file);
    char dir [512];
    if (strlen (file) >= sizeof dir) {
        snprintf (err, errlen, "%s: path too long", file);
        return AF_E_INTERNAL;
    }
    snprintf (dir, sizeof dir, "%s", file);
    char *slash = strrchr (dir, '/');
    if (!slash || slash == dir)
        return AF_OK;                   //  the current directory, or /
    *slash = 0;
    for (char *p = dir + 1; ; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        struct stat st;
        if (mkdir (dir, 0700) && errno != EEXIST) {
            snprintf (err, errlen, "cannot create %s: %s", dir, strerror (errno));
            return AF_E_INTERNAL;
        }
        if (stat (dir, &st) || !S_ISDIR (st.st_mode)) {
            snprintf (err, errlen, "%s is not a directory", dir);
            return AF_E_INTERNAL;
        }
        *p = saved;
        if (!saved)
            return AF_OK;
    }
}

af_worker_t *
af_worker_new (const af_worker_config_t *config, char *err, size_t errlen)
{
    assert (config && config->service && config->broker && config->broker_key && config->cert);
    zcert_t *broker_cert = zcert_load (config->broker_key);
    if (!broker_cert) {
        snprintf (err, errlen, "cannot read %s", config->broker_key);
        return NULL;
    }
    char secret [600];
    snprintf (secret, sizeof secret, "%s_secret", config->cert);
    zcert_t *cert = zcert_load (secret);
    if (!cert) {
        char why [600];
        if (af_worker_make_parent (config->cert, why, sizeof why) != AF_OK) {
            snprintf (err, errlen, "cannot save keypair to %s: %s", config->cert, why);
            zcert_destroy (&broker_cert);
            return NULL;
        }
        cert = zcert_new ();
        if (cert)
            zcert_set_meta (cert, "role", "%s", config->role? config->role: config->service);
        if (!cert || zcert_save (cert, config->cert)) {
            snprintf (err, errlen, "cannot save keypair to %s: %s", config->cert, strerror (errno));
            zcert_destroy (&cert);
            zcert_destroy (&broker_cert);
            return NULL;
        }
        zsys_info ("%s: created keypair %s; copy it into the broker's worker keys directory",
                   config->service, config->cert);
    }
    af_worker_t *self = (af_worker_t *) zmalloc (sizeof (af_worker_t));
    assert (self);
    snprintf (self->service, sizeof self->service, "%s", config->service);
    snprintf (self->broker, sizeof self->broker, "%s", config->broker);
    self->credit = config->credit;
    self->heartbeat_ms = config->heartbeat_ms > 0? config->heartbeat_ms: AF_HEARTBEAT_MS;
    self->liveness = config->liveness > 0? config->liveness: AF_HEARTBEAT_LIVENESS;
    self->cert = cert;
    self->broker_cert = broker_cert;
    return self;
}

void
af_worker_destroy (af_worker_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        af_worker_t *self = *self_p;
        zsock_destroy (&self->sock);
        zcert_destroy (&self->cert);
        zcert_destroy (&self->broker_cert);
        free (self);
        *self_p = NULL;
    }
}

void
af_worker_set_handler (af_worker_t *self, af_msg_id_t command, af_worker_fn *fn, void *arg)
{
    assert (self && command > AF_MSG_NONE && command < AF_MSG_COUNT);
    self->handlers [command].fn = fn;
    self->handlers [command].arg = arg;
}

void
af_worker_set_batch (af_worker_t *self, af_worker_batch_fn *fn, void *arg, size_t max)
{
    assert (self && fn && max >= 1 && max <= AF_BATCH);
    self->batch_fn = fn;
    self->batch_arg = arg;
    self->batch_max = max;
}

int
af_worker_send (af_worker_t *self, af_msg_t **msg_p)
{
    assert (self && msg_p && *msg_p);
    int rc = self->sock && af_msg_send (*msg_p, self->sock, NULL) == 0? AF_OK: AF_E_UNAVAILABLE;
    af_msg_destroy (msg_p);
    return rc;
}

void
af_worker_set_idle (af_worker_t *self, af_worker_idle_fn *fn, void *arg)
{
    assert (self);
    self->idle_fn = fn;
    self->idle_arg = arg;
}

const char *
af_worker_public_key (af_worker_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}

//  Tell the broker this worker serves its service, with its credit and
//  heartbeat: on connecting, and again when the broker has forgotten it
static void
s_announce (af_worker_t *self)
{
    af_msg_t *ready = af_msg_new (AF_MSG_READY);
    snprintf (ready->service, sizeof ready->service, "%s", self->service);
    ready->credit = (uint32_t) self->credit;
    ready->heartbeat = (uint32_t) self->heartbeat_ms;
    af_msg_send (ready, self->sock, NULL);
    af_msg_destroy (&ready);
    self->last_announce = zclock_mono ();
    self->announce_due = false;
}

static int
s_connect (af_worker_t *self)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return -1;
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (self->broker_cert));
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, 0);
    zsock_set_maxmsgsize (sock, AF_MAX_ZMQ_MSG);
    zsock_set_sndhwm (sock, 100000);
    zsock_set_rcvhwm (sock, 100000);
    if (zsock_connect (sock, "%s", self->broker)) {
        zsock_destroy (&sock);
        return -1;
    }
    self->sock = sock;
    s_announce (self);
    return 0;
}

//  Answer a request, or refuse one this worker has no function for
static void
s_request (af_worker_t *self, af_msg_t *msg)
{
    handler_t *handler = &self->handlers [msg->id];
    af_msg_t *reply = NULL;
    if (handler->fn)
        reply = handler->fn (handler->arg, msg);
    else
    if (msg->has_rid) {
        zsys_warning ("%s: refused %s from the broker: not a request this service answers",
                      self->service, af_msg_command_name (msg->id));
        reply = af_msg_error (AF_E_UNKNOWN_COMMAND, msg->rid, "the %s service does not answer %s",
                              self->service, af_msg_command_name (msg->id));
    }
    if (reply && af_msg_send (reply, self->sock, NULL))
        zsys_warning ("%s: cannot send %s to the broker", self->service, af_msg_command_name (reply->id));
    af_msg_destroy (&reply);
}

//  Receive one message from the broker: 0 with *msg_p (NULL when it was
//  not readable, and dropped), or -1 if nothing could be received (the
//  socket is gone)
static int
s_recv_one (af_worker_t *self, af_msg_t **msg_p)
{
    *msg_p = NULL;
    zframe_t *frame = zframe_recv (self->sock);
    if (!frame)
        return -1;
    char err [AF_MAX_REASON + 1];
    int code = zframe_more (frame)? AF_E_MALFORMED:
        af_msg_decode (zframe_data (frame), zframe_size (frame), msg_p, err, sizeof err, NULL, NULL);
    zframe_destroy (&frame);
    if (code != AF_OK) {
        zsys_warning ("%s: dropped a message from the broker: %s", self->service, af_code_name (code));
        *msg_p = NULL;
    }
    return 0;
}

//  Act on a message of the dialog itself (DISCONNECT, ERROR, PONG): true
//  if it was one, false if it is a request
static bool
s_control (af_worker_t *self, af_msg_t *msg)
{
    if (msg->id == AF_MSG_DISCONNECT) {
        zsys_warning ("%s: broker said DISCONNECT (%s); announcing again", self->service, msg->reason);
        self->announce_due = true;
    }
    else
    if (msg->id == AF_MSG_ERROR)
        zsys_warning ("%s: broker error %s: %s", self->service, af_code_name ((int) msg->code), msg->reason);
    else
        return msg->id == AF_MSG_PONG;
    return true;
}

//  Every request waiting (up to batch_max), starting with msg (taken):
//  given to the batch function at once, then answered in order. -1 if the
//  socket went away meanwhile (what was taken is answered first)
static int
s_receive_batch (af_worker_t *self, af_msg_t *msg, bool *answered)
{
    size_t count = 0;
    int rc = 0;
    while (true) {
        if (msg && !s_control (self, msg))
            self->batch [count++] = msg;
        else
            af_msg_destroy (&msg);
        if (count >= self->batch_max || !(zsock_events (self->sock) & ZMQ_POLLIN))
            break;
        if ((rc = s_recv_one (self, &msg)) != 0)
            break;
    }
    *answered = count > 0;
    if (count == 0)
        return rc;
    memset (self->replies, 0, count * sizeof self->replies [0]);
    self->batch_fn (self->batch_arg, self->batch, count, self->replies);
    for (size_t i = 0; i < count; i++) {
        af_msg_t *reply = self->replies [i];
        if (!self->batch [i])
            assert (!reply);            //  kept by fn, answered later
        else
        if (!reply)
            s_request (self, self->batch [i]);
        else
        if (af_msg_send (reply, self->sock, NULL))
            zsys_warning ("%s: cannot send %s to the broker", self->service, af_msg_command_name (reply->id));
        af_msg_destroy (&reply);
        af_msg_destroy (&self->batch [i]);
    }
    return rc;
}

//  Receive what the broker sent and act on it: one message, or with a
//  batch function every request waiting. -1 if nothing could be received
//  (the socket is gone), else 0.
static int
s_receive (af_worker_t *self)
{
    af_msg_t *msg;
    if (s_recv_one (self, &msg))
        return -1;
    int rc = 0;
    bool answered = false;
    if (self->batch_fn)
        rc = s_receive_batch (self, msg, &answered);
    else {
        if (msg && !s_control (self, msg)) {
            s_request (self, msg);
            answered = true;
        }
        af_msg_destroy (&msg);
    }
    if (rc == 0 && (answered || self->batch_fn) && self->idle_fn && !(zsock_events (self->sock) & ZMQ_POLLIN))
        self->idle_fn (self->idle_arg);
    return rc;
}

int
af_worker_serve (af_worker_t *self, char *err, size_t errlen)
{
    assert (self);
    if (!self->sock && s_connect (self)) {
        snprintf (err, errlen, "cannot connect to %s", self->broker);
        return AF_E_INTERNAL;
    }
    zsys_info ("%s: serving %s (credit %d)", self->service, self->broker, self->credit);
    int64_t last_rx = zclock_mono (), last_ping = 0;
    zpoller_t *poller = zpoller_new (self->sock, NULL);
    int rc = AF_OK;
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, self->heartbeat_ms / 2);
        int64_t now = zclock_mono ();
        if (which == self->sock) {
            if (s_receive (self))
                break;
            last_rx = now;
        }
        else
        if (zpoller_terminated (poller))
            break;
        //  READY again when asked, at once, but not more than once a heartbeat
        if (self->announce_due && now - self->last_announce >= self->heartbeat_ms)
            s_announce (self);
        if (now - last_ping >= self->heartbeat_ms) {
            af_msg_t *ping = af_msg_new (AF_MSG_PING);
            af_msg_send (ping, self->sock, NULL);
            af_msg_destroy (&ping);
            last_ping = now;
        }
        if (now - last_rx > (int64_t) self->heartbeat_ms * self->liveness) {
            zsys_warning ("%s: broker silent; reconnecting", self->service);
            zpoller_destroy (&poller);
            zsock_destroy (&self->sock);
            if (s_connect (self)) {
                snprintf (err, errlen, "cannot connect to %s again", self->broker);
                rc = AF_E_INTERNAL;
                break;
            }
            poller = zpoller_new (self->sock, NULL);
            last_rx = now;
        }
    }
    if (self->sock) {
        af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
        af_msg_send (bye, self->sock, NULL);
        af_msg_destroy (&bye);
        zclock_sleep (20);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self->sock);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

//  The common options: taken, refused, checked (stderr gets the refusals)
static void
s_test_options (void)
{
    af_worker_options_t o;
    af_worker_options_init (&o, "tcp://127.0.0.1:5671", 16);
    assert (o.credit == 16 && o.heartbeat_ms == AF_HEARTBEAT_MS && o.liveness == AF_HEARTBEAT_LIVENESS);
    assert (!af_worker_options_check (&o, "test"));                    //  no key, no cert
    assert (af_worker_option (&o, 'k', "/etc/appferry/broker.cert", "test") == 1);
    assert (af_worker_option (&o, 'c', "/var/lib/w/worker.cert", "test") == 1);
    assert (af_worker_option (&o, 'v', NULL, "test") == 1 && o.verbose);
    assert (af_worker_option (&o, AF_WORKER_OPT_CREDIT, "64", "test") == 1 && o.credit == 64);
    assert (af_worker_option (&o, AF_WORKER_OPT_HEARTBEAT, "250", "test") == 1 && o.heartbeat_ms == 250);
    assert (af_worker_options_check (&o, "test"));
    assert (af_worker_option (&o, 'K', "x", "test") == 0);             //  not a common one
    assert (af_worker_option (&o, AF_WORKER_OPT_CREDIT, "12x", "test") == -1 && o.credit == 64);
    assert (af_worker_option (&o, AF_WORKER_OPT_CREDIT, "-1", "test") == -1);
    assert (af_worker_option (&o, 'b', "", "test") == -1);
    char longer [600];
    memset (longer, 'a', sizeof longer - 1);
    longer [sizeof longer - 1] = 0;
    assert (af_worker_option (&o, 'k', longer, "test") == -1 && streq (o.broker_key, "/etc/appferry/broker.cert"));
    assert (af_worker_option (&o, AF_WORKER_OPT_CREDIT, "1025", "test") == 1 && !af_worker_options_check (&o, "test"));
    o.credit = 1;
    o.heartbeat_ms = 49;
    assert (!af_worker_options_check (&o, "test"));
    af_worker_config_t config = af_worker_options_config (&o, "matcher", "appferry matcher");
    assert (streq (config.service, "matcher") && config.broker == o.broker && config.credit == 1);
}

void
af_worker_test (bool verbose)
{
    if (verbose)
        printf (" * af_worker: ");
    s_test_options ();
    char dir [] = "/tmp/af_worker_test.XXXXXX";
    assert (mkdtemp (dir));
    char broker_key [128], cert [128], secret [140], err [600];
    snprintf (broker_key, sizeof broker_key, "%s/broker.cert", dir);
    snprintf (cert, sizeof cert, "%s/keys/deeper/worker.cert", dir);
    snprintf (secret, sizeof secret, "%s_secret", cert);
    af_worker_config_t config = { "contacts", "tcp://127.0.0.1:9", broker_key, cert, "appferry test", 4, 1000, 3 };

    //  No broker certificate: refused, nothing made
    af_worker_t *worker = af_worker_new (&config, err, sizeof err);
    assert (!worker && strstr (err, "cannot read") && strstr (err, "broker.cert"));
    zcert_t *broker = zcert_new ();
    assert (broker && zcert_save_public (broker, broker_key) == 0);
    zcert_destroy (&broker);

    //  First start: the keypair and its directories (0700) are made
    worker = af_worker_new (&config, err, sizeof err);
    assert (worker);
    char key [AF_KEY_Z85 + 1];
    snprintf (key, sizeof key, "%s", af_worker_public_key (worker));
    af_worker_destroy (&worker);
    assert (worker == NULL);
    struct stat st;
    char keys [128];
    snprintf (keys, sizeof keys, "%s/keys/deeper", dir);
    assert (stat (keys, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 0777) == 0700);
    assert (stat (secret, &st) == 0);
    //  Second start: the same keypair
    worker = af_worker_new (&config, err, sizeof err);
    assert (worker && streq (af_worker_public_key (worker), key));
    af_worker_destroy (&worker);

    //  A file where a directory must go
    char blocked [160];
    snprintf (blocked, sizeof blocked, "%s/file/worker.cert", dir);
    char file [140];
    snprintf (file, sizeof file, "%s/file", dir);
    FILE *handle = fopen (file, "w");
    assert (handle);
    fclose (handle);
    assert (af_worker_make_parent (blocked, err, sizeof err) == AF_E_INTERNAL && strstr (err, "not a directory"));
    config.cert = blocked;
    assert (af_worker_new (&config, err, sizeof err) == NULL && strstr (err, "cannot save keypair"));
    assert (af_worker_make_parent ("worker.cert", err, sizeof err) == AF_OK);

    char path [200];
    snprintf (path, sizeof path, "%s/keys/deeper/worker.cert", dir);
    remove (path);
    remove (secret);
    remove (keys);
    snprintf (path, sizeof path, "%s/keys", dir);
    remove (path);
    remove (file);
    remove (broker_key);
    assert (rmdir (dir) == 0);
    if (verbose)
        printf ("OK\n");
}
