/*  =========================================================================
    etcd_test - af_etcd's self-test, against a real etcd

    It starts the etcd binary (Debian's etcd-server) on two free loopback
    ports with a data directory in /tmp (killed with the test if the test
    fails: PR_SET_PDEATHSIG), drives every call against it,
    and kills it at the end to see a watch report LOST and a call fail
    with AF_E_UNAVAILABLE. Without an etcd on PATH the test fails: it
    cannot prove anything without one, and a skip would hide that.

    What real etcd cannot be made to send (garbage, wrong types, an answer
    too big, nothing at all) comes from a hostile server on loopback: a
    thread that accepts connections and answers each with the next of a
    list of raw HTTP answers, or a socket that listens and never accepts.
    =========================================================================
*/
#include "etcd_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_TIMEOUT_MS    2000            //  the clients' time limit against the real etcd

//  ---------------------------------------------------------------------
//  A real etcd, on loopback

typedef struct {
    pid_t pid;
    char dir [64];
    char endpoint [64];
} s_etcd_t;

static bool
s_on_path (const char *name)
{
    const char *path = getenv ("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn (path, ":");
        char file [512];
        snprintf (file, sizeof file, "%.*s/%s", (int) len, path, name);
        if (len > 0 && access (file, X_OK) == 0)
            return true;
        path += len;
        if (*path == ':')
            path++;
    }
    return false;
}

//  A loopback port nobody listens on now (the kernel's choice)
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    socklen_t len = sizeof addr;
    assert (getsockname (fd, (struct sockaddr *) &addr, &len) == 0);
    close (fd);
    return ntohs (addr.sin_port);
}

//  A socket that listens on loopback and never accepts: connections are
//  made (the kernel completes them) and never answered. Its port in *port.
static int
s_listen (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    assert (listen (fd, 16) == 0);
    socklen_t len = sizeof addr;
    assert (getsockname (fd, (struct sockaddr *) &addr, &len) == 0);
    *port = ntohs (addr.sin_port);
    return fd;
}

static void
s_etcd_start (s_etcd_t *etcd, bool verbose)
{
    if (!s_on_path ("etcd")) {
        fprintf (stderr, "\naf_etcd_test: FAILED: there is no etcd binary on PATH; install the Debian package "
                 "etcd-server (./run test installs it)\n");
        assert (!"etcd is not installed");
    }
    snprintf (etcd->dir, sizeof etcd->dir, "/tmp/af_etcd_test.XXXXXX");
    assert (mkdtemp (etcd->dir));
    //  Ports are free when chosen; another process may take one before
    //  etcd binds it, so a start that fails is tried again on others
    for (int attempt = 0; attempt < 3; attempt++) {
        int client_port = s_free_port (), peer_port = s_free_port ();
        char client [64], peer [64], cluster [96], data [96], log [96];
        snprintf (client, sizeof client, "http://127.0.0.1:%d", client_port);
        snprintf (peer, sizeof peer, "http://127.0.0.1:%d", peer_port);
        snprintf (cluster, sizeof cluster, "af-test=%s", peer);
        snprintf (data, sizeof data, "%s/data", etcd->dir);
        snprintf (log, sizeof log, "%s/etcd.log", etcd->dir);
        snprintf (etcd->endpoint, sizeof etcd->endpoint, "%s", client);
        etcd->pid = fork ();
        assert (etcd->pid >= 0);
        if (etcd->pid == 0) {
            //  An assertion that fails ends this process: etcd goes with
            //  it (its directory stays, with its log, for a look)
            if (prctl (PR_SET_PDEATHSIG, SIGKILL) || getppid () == 1)
                _exit (125);
            int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd < 0 || dup2 (fd, 1) < 0 || dup2 (fd, 2) < 0)
                _exit (126);
            execlp ("etcd", "etcd", "--name", "af-test", "--data-dir", data,
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", cluster, "--logger", "zap", "--log-outputs", "stderr",
                    "--log-level", "error", (char *) NULL);
            _exit (127);
        }
        //  Ready when it answers a read
        af_etcd_t *probe = af_etcd_new (etcd->endpoint, 500, NULL, 0);
        assert (probe);
        int64_t until = zclock_mono () + 20000;
        bool ready = false, exited = false;
        while (!ready && !exited && zclock_mono () < until) {
            af_etcd_kv_t kv;
            bool found;
            ready = af_etcd_get (probe, "/probe", &kv, &found, NULL, NULL, 0) == AF_OK;
            int status;
            exited = waitpid (etcd->pid, &status, WNOHANG) == etcd->pid;
            if (!ready && !exited)
                zclock_sleep (50);
        }
        af_etcd_destroy (&probe);
        if (ready) {
            if (verbose)
                printf ("(etcd at %s) ", etcd->endpoint);
            return;
        }
        if (!exited) {
            kill (etcd->pid, SIGKILL);
            waitpid (etcd->pid, NULL, 0);
        }
        fprintf (stderr, "af_etcd_test: etcd did not start on %s (attempt %d), see %s\n", client, attempt + 1, log);
        zdir_t *old = zdir_new (data, NULL);
        if (old) {
            zdir_remove (old, true);
            zdir_destroy (&old);
        }
    }
    assert (!"etcd does not start");
}

//  Stop etcd with signal, wait for it
static void
s_etcd_stop (s_etcd_t *etcd, int signal)
{
    if (etcd->pid <= 0)
        return;
    assert (kill (etcd->pid, signal) == 0);
    assert (waitpid (etcd->pid, NULL, 0) == etcd->pid);
    etcd->pid = 0;
}

static void
s_etcd_remove (s_etcd_t *etcd)
{
    zdir_t *dir = zdir_new (etcd->dir, NULL);
    assert (dir);
    zdir_remove (dir, true);
    zdir_destroy (&dir);
    assert (!zsys_file_exists (etcd->dir));
}

//  POST body to an endpoint's path with libcurl alone (what the client
//  does not do: compaction)
static void
s_raw_post (const char *endpoint, const char *path, const char *body)
{
    char url [128];
    snprintf (url, sizeof url, "%s%s", endpoint, path);
    CURL *curl = curl_easy_init ();
    assert (curl);
    FILE *sink = fopen ("/dev/null", "w");
    assert (sink);
    long status = 0;
    assert (curl_easy_setopt (curl, CURLOPT_URL, url) == CURLE_OK);
    assert (curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body) == CURLE_OK);
    assert (curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK);
    assert (curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 5000L) == CURLE_OK);
    assert (curl_easy_setopt (curl, CURLOPT_WRITEDATA, sink) == CURLE_OK);
    assert (curl_easy_perform (curl) == CURLE_OK);
    assert (curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK);
    assert (status == 200);
    fclose (sink);
    curl_easy_cleanup (curl);
}

//  ---------------------------------------------------------------------
//  A hostile server: each connection gets the next answer of the list
//  ("HUGE" is one over AF_ETCD_MAX_ANSWER) and is closed

typedef struct {
    int fd;
    const char **answers;
    size_t count;
    pthread_t thread;
} s_hostile_t;

//  Read one request: headers, then Content-Length bytes of body
static void
s_read_request (int fd)
{
    char buffer [16384];
    size_t have = 0;
    long body = -1;
    while (have < sizeof buffer - 1) {
        struct pollfd item = { fd, POLLIN, 0 };
        if (poll (&item, 1, 2000) != 1)
            return;
        ssize_t got = read (fd, buffer + have, sizeof buffer - 1 - have);
        if (got <= 0)
            return;
        have += (size_t) got;
        buffer [have] = 0;
        char *end = strstr (buffer, "\r\n\r\n");
        if (end && body < 0) {
            char *length = strcasestr (buffer, "Content-Length:");
            body = length? atol (length + 15): 0;
            body += (long) (end + 4 - buffer);
        }
        if (body >= 0 && (long) have >= body)
            return;
    }
}

static void *
s_hostile_run (void *arg)
{
    s_hostile_t *self = (s_hostile_t *) arg;
    for (size_t i = 0; i < self->count; i++) {
        int fd = accept (self->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        s_read_request (fd);
        const char *answer = self->answers [i];
        if (streq (answer, "HUGE")) {
            char head [128], block [65536];
            int size = snprintf (head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                                 AF_ETCD_MAX_ANSWER + 65536);
            memset (block, ' ', sizeof block);
            bool going = send (fd, head, (size_t) size, MSG_NOSIGNAL) == size;
            for (int sent = 0; going && sent < AF_ETCD_MAX_ANSWER + 65536; sent += (int) sizeof block)
                going = send (fd, block, sizeof block, MSG_NOSIGNAL) == (ssize_t) sizeof block;
        }
        else
        if (send (fd, answer, strlen (answer), MSG_NOSIGNAL) < 0)
            fprintf (stderr, "af_etcd_test: hostile server: %s\n", strerror (errno));
        close (fd);
    }
    return NULL;
}

static void
s_hostile_start (s_hostile_t *self, const char **answers, size_t count, char *endpoint, size_t size)
{
    int port;
    self->fd = s_listen (&port);
    self->answers = answers;
    self->count = count;
    snprintf (endpoint, size, "http://127.0.0.1:%d", port);
    assert (pthread_create (&self->thread, NULL, s_hostile_run, self) == 0);
}

static void
s_hostile_stop (s_hostile_t *self)
{
    assert (pthread_join (self->thread, NULL) == 0);
    close (self->fd);
}

//  ---------------------------------------------------------------------
//  Watch events, as the test reads them

typedef struct {
    char type [16];
    char key [AF_ETCD_MAX_KEY + 1];
    char value [AF_ETCD_MAX_VALUE + 1024];
    size_t value_size;
    int64_t revision;
} s_event_t;

//  The next message from watch within timeout_ms, or false
static bool
s_event (zactor_t *watch, int timeout_ms, s_event_t *event)
{
    zsock_t *sock = zactor_sock (watch);
    zsock_set_rcvtimeo (sock, timeout_ms);
    char *type = NULL;
    byte *key = NULL, *value = NULL;
    size_t key_size = 0, value_size = 0;
    uint64_t revision = 0;
    if (zsock_recv (sock, AF_ETCD_WATCH_PICTURE, &type, &key, &key_size, &value, &value_size, &revision))
        return false;
    assert (type);
    assert (key_size <= AF_ETCD_MAX_KEY && value_size < sizeof event->value);
    snprintf (event->type, sizeof event->type, "%s", type);
    memcpy (event->key, key? (char *) key: "", key_size);
    event->key [key_size] = 0;
    memcpy (event->value, value? (char *) value: "", value_size);
    event->value [value_size] = 0;
    event->value_size = value_size;
    event->revision = (int64_t) revision;
    free (type);
    free (key);
    free (value);
    return true;
}

//  The next event must be type for key (value, revision: when not NULL / 0)
static void
s_expect (zactor_t *watch, const char *type, const char *key, const char *value, int64_t revision)
{
    s_event_t event;
    if (!s_event (watch, 5000, &event)) {
        fprintf (stderr, "af_etcd_test: no %s event for %s\n", type, key);
        assert (false);
    }
    if (!streq (event.type, type) || !streq (event.key, key) || (value && !streq (event.value, value))
    ||  (revision && event.revision != revision)) {
        fprintf (stderr, "af_etcd_test: expected %s %s %s %" PRId64 ", got %s %s %s %" PRId64 "\n", type, key,
                 value? value: "", revision, event.type, event.key, event.value, event.revision);
        assert (false);
    }
}

static zactor_t *
s_watch (const char *endpoints, const char *key, bool prefix, int64_t start, int timeout_ms)
{
    af_etcd_watch_t args = { endpoints, key, prefix, start, timeout_ms };
    zactor_t *watch = zactor_new (af_etcd_watch_actor, &args);
    assert (watch);
    return watch;
}

//  ---------------------------------------------------------------------
//  Two claimers racing for one key, each with its own client and lease

typedef struct {
    const char *endpoint;
    const char *me;
    pthread_barrier_t *start;
    int64_t lease;
    bool claimed;
    int64_t revision;
    int rc;
} s_claimer_t;

static void *
s_claimer_run (void *arg)
{
    s_claimer_t *self = (s_claimer_t *) arg;
    char err [256];
    af_etcd_t *client = af_etcd_new (self->endpoint, S_TIMEOUT_MS, err, sizeof err);
    assert (client);
    assert (af_etcd_lease_grant (client, 30, &self->lease, NULL, err, sizeof err) == AF_OK);
    pthread_barrier_wait (self->start);
    self->rc = af_etcd_claim (client, "/t/owner", self->me, strlen (self->me), self->lease,
                              &self->claimed, &self->revision, err, sizeof err);
    af_etcd_destroy (&client);
    return NULL;
}

//  ---------------------------------------------------------------------
//  The parts of the test

static void
s_test_new (void)
{
    char err [256];
    const char *bad [] = {
        "", "127.0.0.1:2379", "https://127.0.0.1:2379", "http://127.0.0.1", "http://127.0.0.1:99999",
        "http://127.0.0.1:2379,,http://127.0.0.1:2380", "http://127.0.0.1:2379,", "http://:2379",
        "http://a b:1", "http://[::1:1", "http://127.0.0.1:2379/v3"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        *err = 0;
        assert (af_etcd_new (bad [i], 1000, err, sizeof err) == NULL);
        assert (*err);
    }
    char many [64 * (AF_ETCD_MAX_ENDPOINTS + 1)] = "";
    for (int i = 0; i <= AF_ETCD_MAX_ENDPOINTS; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%shttp://127.0.0.1:%d", i? ",": "", 2000 + i);
    assert (af_etcd_new (many, 1000, err, sizeof err) == NULL && strstr (err, "more than"));
    af_etcd_t *client = af_etcd_new ("http://localhost:2379/,http://[::1]:2379", 1000, err, sizeof err);
    assert (client);
    assert (streq (af_etcd_endpoint (client), "http://localhost:2379"));
    af_etcd_destroy (&client);
    assert (client == NULL);
}

//  What the client refuses before sending anything
static void
s_test_arguments (const char *endpoint)
{
    char err [256], key [AF_ETCD_MAX_KEY + 2];
    af_etcd_t *client = af_etcd_new (endpoint, S_TIMEOUT_MS, err, sizeof err);
    assert (client);
    af_etcd_kv_t kv;
    bool found, done;
    memset (key, 'k', sizeof key - 1);
    key [sizeof key - 1] = 0;
    assert (af_etcd_get (client, "", &kv, &found, NULL, err, sizeof err) == AF_E_MALFORMED);
    assert (af_etcd_get (client, key, &kv, &found, NULL, err, sizeof err) == AF_E_TOO_BIG);
    static uint8_t big [AF_ETCD_MAX_VALUE + 1];
    assert (af_etcd_put (client, "/t/big", big, sizeof big, 0, NULL, err, sizeof err) == AF_E_TOO_BIG);
    assert (strstr (err, "over"));
    const af_etcd_kv_t *kvs;
    size_t count;
    assert (af_etcd_range (client, "/t/", 0, &kvs, &count, NULL, NULL, err, sizeof err) == AF_E_MALFORMED);
    assert (af_etcd_range (client, "/t/", AF_ETCD_MAX_RANGE + 1, &kvs, &count, NULL, NULL, err, sizeof err)
            == AF_E_MALFORMED);
    af_etcd_op_t ops [AF_ETCD_MAX_TXN_OPS + 1];
    for (size_t i = 0; i < AF_ETCD_MAX_TXN_OPS + 1; i++)
        ops [i] = (af_etcd_op_t) { AF_ETCD_DELETE, "/t/x", NULL, 0, 0 };
    af_etcd_txn_t txn = { NULL, 0, ops, AF_ETCD_MAX_TXN_OPS + 1, NULL, 0 };
    assert (af_etcd_txn (client, &txn, &done, NULL, err, sizeof err) == AF_E_MALFORMED);
    int64_t lease;
    assert (af_etcd_lease_grant (client, 0, &lease, NULL, err, sizeof err) == AF_E_MALFORMED);
    assert (af_etcd_lease_grant (client, AF_ETCD_MAX_TTL_S + 1, &lease, NULL, err, sizeof err) == AF_E_MALFORMED);
    af_etcd_destroy (&client);
}

//  Nobody there, somebody who never answers: AF_E_UNAVAILABLE in time,
//  naming the endpoint; a write that may have gone says so
static void
s_test_unreachable (void)
{
    char err [512], closed [64], hung [64];
    snprintf (closed, sizeof closed, "http://127.0.0.1:%d", s_free_port ());
    int port, fd = s_listen (&port);
    snprintf (hung, sizeof hung, "http://127.0.0.1:%d", port);
    af_etcd_t *client = af_etcd_new (closed, 1000, err, sizeof err);
    assert (client);
    af_etcd_kv_t kv;
    bool found;
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (strstr (err, closed) && strstr (err, "cannot connect"));
    //  Not sent at all: not "outcome unknown", even for a write
    assert (af_etcd_put (client, "/t/a", "x", 1, 0, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (!strstr (err, "outcome unknown"));
    af_etcd_destroy (&client);

    client = af_etcd_new (hung, 300, err, sizeof err);
    assert (client);
    int64_t start = zclock_mono ();
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    int64_t took = zclock_mono () - start;
    assert (took >= 250 && took < 1000);
    assert (strstr (err, hung) && strstr (err, "no answer"));
    assert (af_etcd_put (client, "/t/a", "x", 1, 0, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (strstr (err, "outcome unknown"));
    bool done;
    assert (af_etcd_claim (client, "/t/a", "x", 1, 0, &done, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (strstr (err, "outcome unknown") && !done);
    af_etcd_destroy (&client);
    close (fd);
}

//  Answers that are not what the API documents
static void
s_test_hostile (void)
{
    //  status line and body of each answer; Content-Length is counted
    const char *raw [][2] = {
        { "200 OK", "not json!" },
        //  revision as a number, not a string
        { "200 OK", "{\"header\":{\"revision\":2}}" },
        //  a key that is not base64
        { "200 OK", "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"!!!\",\"mod_revision\":\"2\"}]}" },
        //  a key with a NUL byte (base64 of "/t\0a")
        { "200 OK", "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"L3QAYQ==\",\"mod_revision\":\"2\"}]}" },
        //  a get answered with another key ("/u/")
        { "200 OK", "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"L3Uv\",\"mod_revision\":\"2\"}]}" },
        { "500 Internal Server Error", "oops!" },
        { "503 Service Unavailable", "{\"error\":\"no leader\",\"code\":14,\"message\":\"etcdserver: no leader\"}" },
    };
    enum { RAW = sizeof raw / sizeof raw [0] };
    static char texts [RAW][512];
    const char *answers [RAW + 1];
    for (size_t i = 0; i < RAW; i++) {
        snprintf (texts [i], sizeof texts [i], "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", raw [i][0], strlen (raw [i][1]), raw [i][1]);
        answers [i] = texts [i];
    }
    answers [RAW] = "HUGE";
    size_t count = sizeof answers / sizeof answers [0];
    s_hostile_t hostile;
    char endpoint [64], err [512];
    s_hostile_start (&hostile, answers, count, endpoint, sizeof endpoint);
    af_etcd_t *client = af_etcd_new (endpoint, 2000, err, sizeof err);
    assert (client);
    af_etcd_kv_t kv;
    bool found;
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "not etcd's JSON") && strstr (err, endpoint));
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "header revision"));
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "not as documented"));
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "NUL"));
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "other keys") && !found);
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "HTTP 500"));
    //  etcd's "try later" is AF_E_UNAVAILABLE
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (strstr (err, "code 14"));
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_TOO_BIG);
    assert (strstr (err, "answer over"));
    af_etcd_destroy (&client);
    s_hostile_stop (&hostile);

    //  A watch given garbage reports LOST, with the reason; so does one
    //  whose stream turns into an error (the gateway's form for errors
    //  once the stream has begun), and a keepalive answered with one is
    //  etcd's "try later"
    const char *streams [] = {
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{garbage}\n",
        ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
         "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n"
         "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\"}}\n"),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
         "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\"}}\n"),
    };
    s_hostile_start (&hostile, streams, 3, endpoint, sizeof endpoint);
    zactor_t *watch = s_watch (endpoint, "/t/", true, 0, 2000);
    s_event_t event;
    assert (s_event (watch, 5000, &event) && streq (event.type, "LOST"));
    assert (strstr (event.value, "not etcd's JSON") && strstr (event.value, endpoint));
    zactor_destroy (&watch);
    watch = s_watch (endpoint, "/t/", true, 0, 2000);
    s_expect (watch, "CREATED", "", "", 5);
    assert (s_event (watch, 5000, &event) && streq (event.type, "LOST"));
    assert (strstr (event.value, "no leader (code 14)") && event.revision == 0);
    zactor_destroy (&watch);
    client = af_etcd_new (endpoint, 2000, err, sizeof err);
    assert (client);
    int64_t ttl;
    assert (af_etcd_lease_keepalive (client, 1, &ttl, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (strstr (err, "no leader") && ttl == 0);
    af_etcd_destroy (&client);
    s_hostile_stop (&hostile);
}

static void
s_test_keys (af_etcd_t *client)
{
    char err [512];
    af_etcd_kv_t kv;
    bool found;
    int64_t revision, first, second;
    //  Bytes, NULs and 0xff included, go and come back as they were
    const uint8_t bytes [] = { 0, 1, 0xff, 'a', 0, 0x80 };
    assert (af_etcd_put (client, "/t/k/bytes", bytes, sizeof bytes, 0, &first, err, sizeof err) == AF_OK);
    assert (af_etcd_get (client, "/t/k/bytes", &kv, &found, &revision, err, sizeof err) == AF_OK && found);
    assert (kv.value_size == sizeof bytes && memcmp (kv.value, bytes, sizeof bytes) == 0);
    assert (kv.value [kv.value_size] == 0 && streq (kv.key, "/t/k/bytes"));
    assert (kv.create_revision == first && kv.mod_revision == first && kv.version == 1 && kv.lease == 0);
    assert (revision == first);
    //  A change keeps create_revision, moves mod_revision and version
    assert (af_etcd_put (client, "/t/k/bytes", "text", 4, 0, &second, err, sizeof err) == AF_OK);
    assert (second > first);
    assert (af_etcd_get (client, "/t/k/bytes", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (streq ((const char *) kv.value, "text") && kv.value_size == 4);
    assert (kv.create_revision == first && kv.mod_revision == second && kv.version == 2);
    //  An empty value is a value
    assert (af_etcd_put (client, "/t/k/empty", NULL, 0, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_get (client, "/t/k/empty", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (kv.value_size == 0 && kv.value [0] == 0);
    //  Not there
    assert (af_etcd_get (client, "/t/k/none", &kv, &found, &revision, err, sizeof err) == AF_OK && !found);
    assert (revision >= second);
    //  A value of the largest size
    static uint8_t large [AF_ETCD_MAX_VALUE];
    randombytes_buf (large, sizeof large);
    assert (af_etcd_put (client, "/t/k/large", large, sizeof large, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_get (client, "/t/k/large", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (kv.value_size == sizeof large && memcmp (kv.value, large, sizeof large) == 0);

    //  Range: the prefix only, in key order, bounded, "more" past the bound
    const char *keys [] = { "/t/r/a", "/t/r/b", "/t/r/c", "/t/r/d", "/t/r/e" };
    for (size_t i = 0; i < 5; i++)
        assert (af_etcd_put (client, keys [4 - i], keys [4 - i], strlen (keys [4 - i]), 0, NULL, err, sizeof err)
                == AF_OK);
    assert (af_etcd_put (client, "/t/s", "outside", 7, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/r", "outside", 7, 0, NULL, err, sizeof err) == AF_OK);
    const af_etcd_kv_t *kvs;
    size_t count;
    bool more;
    assert (af_etcd_range (client, "/t/r/", 10, &kvs, &count, &more, &revision, err, sizeof err) == AF_OK);
    assert (count == 5 && !more);
    for (size_t i = 0; i < 5; i++)
        assert (streq (kvs [i].key, keys [i]) && streq ((const char *) kvs [i].value, keys [i]));
    int64_t snapshot = revision;
    assert (af_etcd_range (client, "/t/r/", 2, &kvs, &count, &more, &revision, err, sizeof err) == AF_OK);
    assert (count == 2 && more && streq (kvs [1].key, "/t/r/b") && revision == snapshot);
    assert (af_etcd_range (client, "/t/none/", 10, &kvs, &count, &more, NULL, err, sizeof err) == AF_OK);
    assert (count == 0 && !more);
    //  A prefix ending in 0xff: its end carries into the byte before
    assert (af_etcd_put (client, "/t/p\xff", "1", 1, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/p\xff\x01", "2", 1, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/q", "3", 1, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_range (client, "/t/p\xff", 10, &kvs, &count, NULL, NULL, err, sizeof err) == AF_OK);
    assert (count == 2);

    //  Delete: one key, then a prefix; the keys beside it stay
    int64_t deleted;
    assert (af_etcd_delete (client, "/t/r/a", false, &deleted, &revision, err, sizeof err) == AF_OK);
    assert (deleted == 1 && revision > snapshot);
    assert (af_etcd_delete (client, "/t/r/a", false, &deleted, NULL, err, sizeof err) == AF_OK && deleted == 0);
    assert (af_etcd_delete (client, "/t/r/", true, &deleted, NULL, err, sizeof err) == AF_OK && deleted == 4);
    assert (af_etcd_get (client, "/t/r", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (af_etcd_get (client, "/t/s", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
}

static void
s_test_txn (const char *endpoint, af_etcd_t *client)
{
    char err [512];
    af_etcd_kv_t kv;
    bool found, done;
    int64_t revision;

    //  Claims racing: two clients, two leases, one key; exactly one wins,
    //  and the key is the winner's, under the winner's lease
    pthread_barrier_t start;
    assert (pthread_barrier_init (&start, NULL, 2) == 0);
    s_claimer_t claimers [2] = { { endpoint, "broker-a", &start, 0, false, 0, 0 },
                                 { endpoint, "broker-b", &start, 0, false, 0, 0 } };
    pthread_t threads [2];
    for (int i = 0; i < 2; i++)
        assert (pthread_create (&threads [i], NULL, s_claimer_run, &claimers [i]) == 0);
    for (int i = 0; i < 2; i++)
        assert (pthread_join (threads [i], NULL) == 0);
    pthread_barrier_destroy (&start);
    assert (claimers [0].rc == AF_OK && claimers [1].rc == AF_OK);
    assert (claimers [0].claimed != claimers [1].claimed);
    s_claimer_t *winner = claimers [0].claimed? &claimers [0]: &claimers [1];
    s_claimer_t *loser = claimers [0].claimed? &claimers [1]: &claimers [0];
    assert (af_etcd_get (client, "/t/owner", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (streq ((const char *) kv.value, winner->me) && kv.lease == winner->lease);
    //  The claim's revision is the key's: the owner's epoch
    assert (kv.mod_revision == winner->revision && kv.create_revision == winner->revision);
    assert (loser->revision >= winner->revision);
    //  The winner's lease ends: its key goes, the loser claims, with a
    //  higher epoch
    assert (af_etcd_lease_revoke (client, winner->lease, err, sizeof err) == AF_OK);
    assert (af_etcd_claim (client, "/t/owner", loser->me, strlen (loser->me), loser->lease, &done, &revision,
                           err, sizeof err) == AF_OK && done);
    assert (revision > winner->revision);
    assert (af_etcd_lease_revoke (client, loser->lease, err, sizeof err) == AF_OK);

    //  Compare-and-swap: with the revision read it replaces, with a stale
    //  one it does not, and the value stays
    int64_t first, second;
    assert (af_etcd_put (client, "/t/cas", "v1", 2, 0, &first, err, sizeof err) == AF_OK);
    assert (af_etcd_swap (client, "/t/cas", first, "v2", 2, 0, &done, &second, err, sizeof err) == AF_OK);
    assert (done && second > first);
    assert (af_etcd_swap (client, "/t/cas", first, "v3", 2, 0, &done, &revision, err, sizeof err) == AF_OK);
    assert (!done && revision == second);
    assert (af_etcd_get (client, "/t/cas", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (streq ((const char *) kv.value, "v2") && kv.mod_revision == second);

    //  Delete if mine: not with another value, yes with mine
    assert (af_etcd_delete_if (client, "/t/cas", "v1", 2, &done, NULL, err, sizeof err) == AF_OK && !done);
    assert (af_etcd_get (client, "/t/cas", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (af_etcd_delete_if (client, "/t/cas", "v2", 2, &done, NULL, err, sizeof err) == AF_OK && done);
    assert (af_etcd_get (client, "/t/cas", &kv, &found, NULL, err, sizeof err) == AF_OK && !found);

    //  A transaction's failure branch runs when a compare fails: a put
    //  and a prefix delete, atomically, at one revision
    assert (af_etcd_put (client, "/t/txn/v", "x", 1, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/txn/d/1", "x", 1, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/txn/d/2", "x", 1, 0, NULL, err, sizeof err) == AF_OK);
    af_etcd_compare_t compares [] = {
        { AF_ETCD_VERSION, "/t/txn/v", 1, NULL, 0 },            //  holds
        { AF_ETCD_VALUE, "/t/txn/v", 0, "y", 1 },               //  does not
    };
    af_etcd_op_t then [] = { { AF_ETCD_PUT, "/t/txn/then", "t", 1, 0 } };
    af_etcd_op_t otherwise [] = {
        { AF_ETCD_PUT, "/t/txn/else", "e", 1, 0 },
        { AF_ETCD_DELETE_PREFIX, "/t/txn/d/", NULL, 0, 0 },
    };
    af_etcd_txn_t txn = { compares, 2, then, 1, otherwise, 2 };
    assert (af_etcd_txn (client, &txn, &done, &revision, err, sizeof err) == AF_OK && !done);
    assert (af_etcd_get (client, "/t/txn/then", &kv, &found, NULL, err, sizeof err) == AF_OK && !found);
    assert (af_etcd_get (client, "/t/txn/else", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (kv.mod_revision == revision);
    const af_etcd_kv_t *kvs;
    size_t count;
    assert (af_etcd_range (client, "/t/txn/d/", 10, &kvs, &count, NULL, NULL, err, sizeof err) == AF_OK);
    assert (count == 0);
    //  etcd's refusals are AF_E_INTERNAL with its message: one key twice
    af_etcd_op_t twice [] = { { AF_ETCD_PUT, "/t/txn/2", "a", 1, 0 }, { AF_ETCD_PUT, "/t/txn/2", "b", 1, 0 } };
    af_etcd_txn_t bad = { NULL, 0, twice, 2, NULL, 0 };
    assert (af_etcd_txn (client, &bad, &done, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "duplicate key") && strstr (err, endpoint));
}

static void
s_test_leases (const char *endpoint, af_etcd_t *client, bool verbose)
{
    char err [512];
    af_etcd_kv_t kv;
    bool found;
    int64_t lease, granted, ttl;

    //  A lease nobody keeps alive expires, and its keys go with it, as a
    //  watcher sees
    int64_t granted_at = zclock_mono ();
    assert (af_etcd_lease_grant (client, 2, &lease, &granted, err, sizeof err) == AF_OK);
    assert (lease != 0 && granted == 2);
    assert (af_etcd_lease_ttl (client, lease, &found, &ttl, &granted, err, sizeof err) == AF_OK);
    assert (found && ttl >= 1 && ttl <= 2 && granted == 2);
    int64_t put;
    assert (af_etcd_put (client, "/t/lease/owner", "me", 2, lease, &put, err, sizeof err) == AF_OK);
    assert (af_etcd_get (client, "/t/lease/owner", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (kv.lease == lease);
    zactor_t *watch = s_watch (endpoint, "/t/lease/owner", false, put + 1, 2000);
    s_expect (watch, "CREATED", "", NULL, 0);
    while (zclock_mono () - granted_at < 8000) {
        assert (af_etcd_get (client, "/t/lease/owner", &kv, &found, NULL, err, sizeof err) == AF_OK);
        if (!found)
            break;
        zclock_sleep (100);
    }
    int64_t lived = zclock_mono () - granted_at;
    assert (!found && lived >= 1500);
    if (verbose)
        printf ("(a 2 s lease expired after %" PRId64 " ms) ", lived);
    s_expect (watch, "DELETE", "/t/lease/owner", "", 0);
    zactor_destroy (&watch);
    //  Gone: keepalive says 0, time-to-live not found, revoke is no error,
    //  a put under it is refused
    assert (af_etcd_lease_keepalive (client, lease, &ttl, err, sizeof err) == AF_OK && ttl == 0);
    assert (af_etcd_lease_ttl (client, lease, &found, &ttl, NULL, err, sizeof err) == AF_OK && !found);
    assert (af_etcd_lease_revoke (client, lease, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/lease/owner", "me", 2, lease, NULL, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "lease not found"));

    //  Kept alive, it outlives its TTL; revoked, its keys go at once
    assert (af_etcd_lease_grant (client, 2, &lease, &granted, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/lease/kept", "me", 2, lease, NULL, err, sizeof err) == AF_OK);
    int64_t start = zclock_mono ();
    while (zclock_mono () - start < 3500) {
        assert (af_etcd_lease_keepalive (client, lease, &ttl, err, sizeof err) == AF_OK);
        assert (ttl == 2);
        zclock_sleep (500);
    }
    assert (af_etcd_get (client, "/t/lease/kept", &kv, &found, NULL, err, sizeof err) == AF_OK && found);
    assert (kv.lease == lease);
    assert (af_etcd_lease_revoke (client, lease, err, sizeof err) == AF_OK);
    assert (af_etcd_get (client, "/t/lease/kept", &kv, &found, NULL, err, sizeof err) == AF_OK && !found);
    assert (af_etcd_lease_keepalive (client, lease, &ttl, err, sizeof err) == AF_OK && ttl == 0);
}

//  Watches that stay: returns the one on /t/w/ for the kill at the end,
//  with *last the revision of its last event
static zactor_t *
s_test_watch (const char *endpoint, af_etcd_t *client, int64_t *last)
{
    char err [512];
    int64_t one, two, outside;
    //  From now on, a prefix: a put and a delete, in order, nothing else
    zactor_t *watch = s_watch (endpoint, "/t/w/", true, 0, 2000);
    s_expect (watch, "CREATED", "", "", 0);
    assert (af_etcd_put (client, "/t/w/a", "one", 3, 0, &one, err, sizeof err) == AF_OK);
    assert (af_etcd_put (client, "/t/x", "outside", 7, 0, &outside, err, sizeof err) == AF_OK);
    int64_t deleted;
    assert (af_etcd_delete (client, "/t/w/a", false, &deleted, &two, err, sizeof err) == AF_OK && deleted == 1);
    s_expect (watch, "PUT", "/t/w/a", "one", one);
    s_expect (watch, "DELETE", "/t/w/a", "", two);

    //  From a past revision, one key: the past comes first; $TERM stops it
    //  at once
    zactor_t *past = s_watch (endpoint, "/t/w/a", false, one, 2000);
    s_expect (past, "CREATED", "", "", 0);
    s_expect (past, "PUT", "/t/w/a", "one", one);
    s_expect (past, "DELETE", "/t/w/a", "", two);
    zclock_sleep (300);                 //  it sleeps, in curl_multi_poll
    int64_t start = zclock_mono ();
    zactor_destroy (&past);
    assert (zclock_mono () - start < 250);

    //  A reader that does not read: more events than the pipe and twice
    //  the queue hold, so the stream pauses and resumes; every one
    //  delivered, in order, none twice
    zactor_t *slow = s_watch (endpoint, "/t/slow/", true, 0, 2000);
    s_expect (slow, "CREATED", "", "", 0);
    enum { BATCH = AF_ETCD_MAX_TXN_OPS, BATCHES = (2 * AF_ETCD_WATCH_QUEUE + 2000) / AF_ETCD_MAX_TXN_OPS + 1 };
    static char names [BATCH][32];
    for (int b = 0; b < BATCHES; b++) {
        af_etcd_op_t ops [BATCH];
        for (int i = 0; i < BATCH; i++) {
            snprintf (names [i], sizeof names [i], "/t/slow/%05d", b * BATCH + i);
            ops [i] = (af_etcd_op_t) { AF_ETCD_PUT, names [i], "x", 1, 0 };
        }
        af_etcd_txn_t txn = { NULL, 0, ops, BATCH, NULL, 0 };
        bool done;
        assert (af_etcd_txn (client, &txn, &done, NULL, err, sizeof err) == AF_OK && done);
    }
    zclock_sleep (500);                 //  let the queue fill and the stream pause
    for (int n = 0; n < BATCHES * BATCH; n++) {
        char key [32];
        snprintf (key, sizeof key, "/t/slow/%05d", n);
        s_expect (slow, "PUT", key, "x", 0);
    }
    s_event_t event;
    assert (!s_event (slow, 200, &event));
    zactor_destroy (&slow);

    //  Compacted history: LOST, saying so
    char body [64];
    snprintf (body, sizeof body, "{\"revision\":\"%" PRId64 "\"}", two);
    s_raw_post (endpoint, "/v3/kv/compaction", body);
    zactor_t *old = s_watch (endpoint, "/t/w/", true, one, 2000);
    s_expect (old, "CREATED", "", "", 0);
    assert (s_event (old, 5000, &event) && streq (event.type, "LOST"));
    if (!strstr (event.value, "compacted") || event.revision != one - 1)
        fprintf (stderr, "LOST %s %" PRId64 " (one %" PRId64 ")\n", event.value, event.revision, one);
    assert (strstr (event.value, "compacted") && event.revision == one - 1);
    zactor_destroy (&old);

    //  Nobody there, or nobody answering: LOST, naming the endpoint;
    //  a list goes on to the next endpoint
    char closed [64], hung [64], list [256];
    snprintf (closed, sizeof closed, "http://127.0.0.1:%d", s_free_port ());
    int port, fd = s_listen (&port);
    snprintf (hung, sizeof hung, "http://127.0.0.1:%d", port);
    zactor_t *nowhere = s_watch (closed, "/t/w/", true, 0, 1000);
    assert (s_event (nowhere, 5000, &event) && streq (event.type, "LOST") && strstr (event.value, closed));
    zactor_destroy (&nowhere);
    start = zclock_mono ();
    nowhere = s_watch (hung, "/t/w/", true, 0, 300);
    assert (s_event (nowhere, 5000, &event) && streq (event.type, "LOST"));
    assert (strstr (event.value, "no watch created within 300 ms") && zclock_mono () - start < 1500);
    zactor_destroy (&nowhere);
    snprintf (list, sizeof list, "%s,%s,%s", closed, hung, endpoint);
    zactor_t *third = s_watch (list, "/t/w/", true, 0, 300);
    s_expect (third, "CREATED", "", "", 0);
    zactor_destroy (&third);
    close (fd);

    *last = two;
    return watch;
}

void
af_etcd_test (bool verbose)
{
    if (verbose)
        printf (" * af_etcd: ");
    s_test_new ();
    s_test_unreachable ();
    s_test_hostile ();

    s_etcd_t etcd;
    s_etcd_start (&etcd, verbose);
    s_test_arguments (etcd.endpoint);
    char err [512], list [256];
    //  A list whose first member is down: calls go on to the next, and
    //  start there the next time
    snprintf (list, sizeof list, "http://127.0.0.1:%d,%s", s_free_port (), etcd.endpoint);
    af_etcd_t *client = af_etcd_new (list, S_TIMEOUT_MS, err, sizeof err);
    assert (client);
    s_test_keys (client);
    assert (streq (af_etcd_endpoint (client), etcd.endpoint));
    s_test_txn (etcd.endpoint, client);
    s_test_leases (etcd.endpoint, client, verbose);
    int64_t last;
    zactor_t *watch = s_test_watch (etcd.endpoint, client, &last);

    //  etcd killed: the watch reports LOST at once, with the revision it
    //  got to; calls fail with AF_E_UNAVAILABLE, naming the endpoint
    int64_t start = zclock_mono ();
    s_etcd_stop (&etcd, SIGKILL);
    s_event_t event;
    assert (s_event (watch, 5000, &event));
    assert (streq (event.type, "LOST") && event.revision == last);
    assert (strstr (event.value, etcd.endpoint) && strstr (event.value, "the stream broke"));
    assert (zclock_mono () - start < 2000);
    zactor_destroy (&watch);
    af_etcd_kv_t kv;
    bool found;
    assert (af_etcd_get (client, "/t/a", &kv, &found, NULL, err, sizeof err) == AF_E_UNAVAILABLE);
    assert (strstr (err, etcd.endpoint));
    af_etcd_destroy (&client);
    s_etcd_remove (&etcd);
    if (verbose)
        printf ("OK\n");
}
