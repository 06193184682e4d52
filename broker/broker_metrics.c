/*  =========================================================================
    broker_metrics - the broker's figures: what it publishes, and --status

    Once a second the timer calls broker_metrics_publish: the counters the
    handlers keep in self->stats, the sizes of the broker's tables, what
    the store did (af_store_stats) and the process' memory, as one
    Prometheus snapshot (af_metrics) in DATA/metrics.prom and, if
    broker/metrics names an address, on GET /metrics there.

    `appferry-broker --status` (broker_status) reads that file back twice,
    one snapshot apart, and prints the gauges and the rates between the
    two: an operator's `vmstat 1` for one broker. It never talks to the
    broker; it tells whether one runs from DATA/lock (the running broker
    holds it), so it also works on a stopped broker's directory, showing
    the last figures it published. The metric names below are the
    contract both halves and any dashboard share (README, "Watching a
    broker").
    =========================================================================
*/
#include "broker_int.h"

#include <jansson.h>
#include <time.h>

//  Writes per group commit, as histogram bucket bounds
static const double s_commit_bounds [AF_COMMIT_BUCKETS - 1] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };

void
broker_stats_commit (af_broker_t *self, uint64_t writes)
{
    size_t bucket = 0;
    while (bucket < AF_COMMIT_BUCKETS - 1 && (double) writes > s_commit_bounds [bucket])
        bucket++;
    self->stats.commit_sizes [bucket]++;
}

void
broker_stats_error (af_broker_t *self, int code)
{
    if (code >= AF_CODE_FIRST && code <= AF_CODE_LAST)
        self->stats.errors [code - AF_CODE_FIRST]++;
}

//  --------------------------------------------------------------------------
//  Publishing (the reactor, once a second)

//  Resident memory of this process, bytes (0 if /proc cannot tell)
static uint64_t
s_rss_bytes (void)
{
    FILE *file = fopen ("/proc/self/statm", "r");
    unsigned long pages = 0, resident = 0;
    if (file) {
        if (fscanf (file, "%lu %lu", &pages, &resident) != 2)
            resident = 0;
        fclose (file);
    }
    return (uint64_t) resident * (uint64_t) sysconf (_SC_PAGESIZE);
}

static void
s_metric (af_metrics_t *metrics, const char *name, af_metric_type_t type, const char *help, double value)
{
    af_metrics_family (metrics, name, type, help);
    af_metrics_value (metrics, NULL, value);
}

static void
s_publish_traffic (af_broker_t *self, af_metrics_t *metrics)
{
    const broker_stats_t *stats = &self->stats;
    s_metric (metrics, "appferry_sessions", AF_METRIC_GAUGE, "connections with a session",
              (double) zhashx_size (self->sessions));
    s_metric (metrics, "appferry_sessions_limit", AF_METRIC_GAUGE, "max_sessions",
              (double) self->config.max_sessions);
    s_metric (metrics, "appferry_devices_online", AF_METRIC_GAUGE, "logged-in devices",
              (double) zhashx_size (self->online));
    s_metric (metrics, "appferry_logins_total", AF_METRIC_COUNTER, "logins accepted",
              (double) stats->logins);
    s_metric (metrics, "appferry_login_failures_total", AF_METRIC_COUNTER, "logins refused",
              (double) stats->login_failures);
    s_metric (metrics, "appferry_registrations_total", AF_METRIC_COUNTER, "accounts registered",
              (double) stats->registrations);
    s_metric (metrics, "appferry_messages_received_total", AF_METRIC_COUNTER, "messages from nodes",
              (double) stats->messages_in);
    s_metric (metrics, "appferry_messages_sent_total", AF_METRIC_COUNTER, "messages to nodes",
              (double) stats->messages_out);
    s_metric (metrics, "appferry_sessions_refused_total", AF_METRIC_COUNTER,
              "connections refused a session (max_sessions, no CURVE key)", (double) stats->refused);
    s_metric (metrics, "appferry_sessions_dropped_total", AF_METRIC_COUNTER,
              "sessions dropped because their peer did not read (AF_MAX_PEER_QUEUE)", (double) stats->dropped);
    size_t queued = 0;
    for (session_t *session = (session_t *) zhashx_first (self->backlog); session;
         session = (session_t *) zhashx_next (self->backlog))
        queued += session->queued;
    s_metric (metrics, "appferry_send_queue_bytes", AF_METRIC_GAUGE,
              "bytes waiting in the sessions' own queues (libzmq's were full)", (double) queued);
    s_metric (metrics, "appferry_send_queues", AF_METRIC_GAUGE, "sessions with bytes waiting",
              (double) zhashx_size (self->backlog));
    s_metric (metrics, "appferry_batches_total", AF_METRIC_COUNTER, "reactor wake-ups that read messages",
              (double) stats->batches);
    af_metrics_family (metrics, "appferry_errors_total", AF_METRIC_COUNTER, "ERROR answers sent, by code");
    for (int code = AF_CODE_FIRST; code <= AF_CODE_LAST; code++)
        if (stats->errors [code - AF_CODE_FIRST]) {
            char labels [64];
            snprintf (labels, sizeof labels, "code=\"%d\",name=\"%s\"", code, af_code_name (code));
            af_metrics_value (metrics, labels, (double) stats->errors [code - AF_CODE_FIRST]);
        }
}

static void
s_publish_work (af_broker_t *self, af_metrics_t *metrics)
{
    size_t workers = 0, waiting = 0, inflight = 0;
    af_dispatch_stats (self->dispatch, &workers, &waiting, &inflight);
    s_metric (metrics, "appferry_workers", AF_METRIC_GAUGE, "matcher workers connected", (double) workers);
    s_metric (metrics, "appferry_worker_requests_waiting", AF_METRIC_GAUGE,
              "requests waiting for a worker", (double) waiting);
    s_metric (metrics, "appferry_worker_requests_inflight", AF_METRIC_GAUGE,
              "requests a worker holds", (double) inflight);
    s_metric (metrics, "appferry_password_checks_waiting", AF_METRIC_GAUGE,
              "Argon2id jobs queued or running", (double) af_hasher_pending (self->hasher));
    s_metric (metrics, "appferry_sync_jobs", AF_METRIC_GAUGE, "diffs being resolved",
              (double) zhashx_size (self->sync_jobs));
    s_metric (metrics, "appferry_push_jobs", AF_METRIC_GAUGE, "pushes waiting for the matcher",
              (double) zhashx_size (self->push_jobs));
    s_metric (metrics, "appferry_uploads", AF_METRIC_GAUGE, "user-data uploads under way",
              (double) zhashx_size (self->uploads));
    size_t blobs, uploads, chunks;
    af_userdata_counts (self->userdata, &blobs, &uploads, &chunks);
    s_metric (metrics, "appferry_userdata_blobs", AF_METRIC_GAUGE,
              "user-data blobs in the store (every shard it holds)", (double) blobs);
    s_metric (metrics, "appferry_userdata_unfinished", AF_METRIC_GAUGE,
              "uploads begun in the store and not finished", (double) uploads);
    s_metric (metrics, "appferry_userdata_chunks", AF_METRIC_GAUGE,
              "chunks of user data in the store, finished or not", (double) chunks);
}

static void
s_publish_store (af_broker_t *self, af_metrics_t *metrics)
{
    af_store_stats_t store;
    af_store_stats (af_registry_store (self->registry), &store);
    s_metric (metrics, "appferry_store_writes_total", AF_METRIC_COUNTER,
              "write transactions (durable changes) committed", (double) store.writes);
    s_metric (metrics, "appferry_store_commits_total", AF_METRIC_COUNTER,
              "commits to disk, one fsync each", (double) store.commits);
    s_metric (metrics, "appferry_store_commit_failures_total", AF_METRIC_COUNTER,
              "commits that failed", (double) store.failures);
    s_metric (metrics, "appferry_store_commit_seconds_total", AF_METRIC_COUNTER,
              "time spent committing", (double) store.commit_us / 1e6);
    s_metric (metrics, "appferry_store_used_bytes", AF_METRIC_GAUGE, "store pages in use",
              (double) store.used_bytes);
    s_metric (metrics, "appferry_store_limit_bytes", AF_METRIC_GAUGE, "the store's map size",
              (double) store.map_bytes);
    af_metrics_family (metrics, "appferry_commit_writes", AF_METRIC_HISTOGRAM,
                       "changes carried by one group commit");
    af_metrics_histogram (metrics, s_commit_bounds, self->stats.commit_sizes, AF_COMMIT_BUCKETS,
                          (double) store.batched);
}

void
broker_metrics_publish (af_broker_t *self)
{
    af_metrics_t *metrics = self->metrics;
    af_metrics_begin (metrics);
    s_metric (metrics, "appferry_time_seconds", AF_METRIC_GAUGE, "when this snapshot was taken",
              (double) zclock_time () / 1000.0);
    s_metric (metrics, "appferry_start_time_seconds", AF_METRIC_GAUGE, "when the broker started",
              (double) self->started_at / 1000.0);
    s_metric (metrics, "appferry_resident_bytes", AF_METRIC_GAUGE, "resident memory", (double) s_rss_bytes ());
    s_publish_traffic (self, metrics);
    s_publish_work (self, metrics);
    s_publish_store (self, metrics);
    af_metrics_publish (metrics);
}

//  --------------------------------------------------------------------------
//  --status: read the figures back

//  Is a broker running on data_dir? The pid in *pid when it is
static bool
s_running (const char *data_dir, int *pid)
{
    char path [600];
    snprintf (path, sizeof path, "%s/lock", data_dir);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    *pid = 0;
    if (fd < 0)
        return false;
    bool running = flock (fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    char text [32] = "";
    ssize_t len = pread (fd, text, sizeof text - 1, 0);
    text [len > 0? len: 0] = 0;
    *pid = atoi (text);
    close (fd);
    return running;
}

//  The next snapshot after one taken at `after` (0: any), within timeout_ms
static zhashx_t *
s_snapshot (const char *file, double after, int timeout_ms, char *err, size_t errlen)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (true) {
        zhashx_t *values = af_metrics_read (file, err, errlen);
        if (values && af_metrics_get (values, "appferry_time_seconds", 0) > after)
            return values;
        zhashx_destroy (&values);
        if (zclock_mono () >= until)
            return NULL;
        zclock_sleep (100);
    }
}

typedef struct {
    const char *label;              //  what --status prints
    const char *key;                //  JSON key
    const char *metric;             //  counter it is the rate of
} rate_t;

static const rate_t s_rates [] = {
    { "logins", "logins", "appferry_logins_total" },
    { "messages in", "messagesIn", "appferry_messages_received_total" },
    { "messages out", "messagesOut", "appferry_messages_sent_total" },
    { "durable changes", "writes", "appferry_store_writes_total" },
    { "commits (fsyncs)", "commits", "appferry_store_commits_total" },
    { "errors", "errors", NULL },
};

static double
s_errors (zhashx_t *values)
{
    double sum = 0;
    for (double *value = (double *) zhashx_first (values); value; value = (double *) zhashx_next (values))
        if (strncmp ((const char *) zhashx_cursor (values), "appferry_errors_total{", 22) == 0)
            sum += *value;
    return sum;
}

static double
s_rate (zhashx_t *a, zhashx_t *b, const rate_t *rate)
{
    double seconds = af_metrics_get (b, "appferry_time_seconds", 0) - af_metrics_get (a, "appferry_time_seconds", 0);
    if (!a || seconds <= 0)
        return 0;
    double delta = rate->metric? af_metrics_get (b, rate->metric, 0) - af_metrics_get (a, rate->metric, 0):
                   s_errors (b) - s_errors (a);
    return delta / seconds;
}

static void
s_print_json (zhashx_t *a, zhashx_t *b, bool running, int pid)
{
    json_t *root = json_object ();
    json_object_set_new (root, "running", json_boolean (running));
    if (running)
        json_object_set_new (root, "pid", json_integer (pid));
    json_t *values = json_object ();
    for (double *value = (double *) zhashx_first (b); value; value = (double *) zhashx_next (b))
        json_object_set_new (values, (const char *) zhashx_cursor (b), json_real (*value));
    json_object_set_new (root, "values", values);
    if (a) {
        json_t *rates = json_object ();
        for (size_t i = 0; i < sizeof s_rates / sizeof s_rates [0]; i++)
            json_object_set_new (rates, s_rates [i].key, json_real (s_rate (a, b, &s_rates [i])));
        json_object_set_new (root, "perSecond", rates);
    }
    char *text = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
    printf ("%s\n", text);
    free (text);
    json_decref (root);
}

static void
s_print_text (zhashx_t *a, zhashx_t *b, const char *data_dir, bool running, int pid)
{
    //  a is NULL when no second snapshot came: no rates then
#define V(name) af_metrics_get (b, name, 0)
    time_t taken = (time_t) V ("appferry_time_seconds");
    double up = V ("appferry_time_seconds") - V ("appferry_start_time_seconds");
    char when [64];
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime (&taken));
    if (running && a)
        printf ("appferry-broker on %s: running (pid %d), up %ldh %02ldm\n", data_dir, pid,
                (long) up / 3600, (long) up % 3600 / 60);
    else
    if (running)
        printf ("appferry-broker on %s: running (pid %d) but it published nothing new for %.0f s "
                "(stuck, or its timer cannot keep up); its last figures, from %s:\n", data_dir, pid,
                (double) zclock_time () / 1000 - V ("appferry_time_seconds"), when);
    else
        printf ("appferry-broker on %s: not running; its last figures, from %s:\n", data_dir, when);
    double sessions = V ("appferry_sessions");
    printf ("  sessions        %.0f of at most %.0f; devices online %.0f\n", sessions,
            V ("appferry_sessions_limit"), V ("appferry_devices_online"));
    printf ("  memory          %.1f MiB resident", V ("appferry_resident_bytes") / 1048576);
    if (sessions > 0)
        printf (", %.1f KiB per session", V ("appferry_resident_bytes") / 1024 / sessions);
    printf ("\n  store           %.1f MiB used of %.0f MiB\n", V ("appferry_store_used_bytes") / 1048576,
            V ("appferry_store_limit_bytes") / 1048576);
    double commits = V ("appferry_commit_writes_count");
    printf ("  group commits   %.0f, %.1f changes each, %.2f ms each\n", commits,
            commits > 0? V ("appferry_commit_writes_sum") / commits: 0,
            V ("appferry_store_commits_total") > 0?
            V ("appferry_store_commit_seconds_total") * 1000 / V ("appferry_store_commits_total"): 0);
    printf ("  send queues     %.0f sessions with %.1f KiB waiting; %.0f dropped for not reading\n",
            V ("appferry_send_queues"), V ("appferry_send_queue_bytes") / 1024,
            V ("appferry_sessions_dropped_total"));
    printf ("  waiting         %.0f password checks, %.0f matcher requests (%.0f workers), %.0f diffs\n",
            V ("appferry_password_checks_waiting"), V ("appferry_worker_requests_waiting"),
            V ("appferry_workers"), V ("appferry_sync_jobs"));
    if (a) {
        printf ("  per second     ");
        for (size_t i = 0; i < sizeof s_rates / sizeof s_rates [0]; i++)
            printf ("%s %s %.1f", i? ",": "", s_rates [i].label, s_rate (a, b, &s_rates [i]));
        printf ("\n");
    }
    printf ("  errors sent     %.0f in all", s_errors (b));
    for (double *value = (double *) zhashx_first (b); value; value = (double *) zhashx_next (b)) {
        const char *key = (const char *) zhashx_cursor (b);
        const char *name = strstr (key, "name=\"");
        if (strncmp (key, "appferry_errors_total{", 22) == 0 && name)
            printf (", %.*s %.0f", (int) strcspn (name + 6, "\""), name + 6, *value);
    }
    printf ("\n");
#undef V
}

int
broker_status (const char *data_dir, bool json, int watch_s)
{
    char file [600], err [700];
    snprintf (file, sizeof file, "%s/metrics.prom", data_dir);
    int pid;
    bool running = s_running (data_dir, &pid);
    zhashx_t *a = s_snapshot (file, 0, 0, err, sizeof err);
    if (!a) {
        fprintf (stderr, "appferry-broker: no figures in %s: %s\n", data_dir, *err? err: "none yet");
        return 1;
    }
    do {
        //  A broker publishes every AF_METRICS_MS: the next snapshot gives the rates
        zhashx_t *b = running? s_snapshot (file, af_metrics_get (a, "appferry_time_seconds", 0),
                                           3 * AF_METRICS_MS, err, sizeof err): NULL;
        if (json)
            s_print_json (b? a: NULL, b? b: a, running, pid);
        else
            s_print_text (b? a: NULL, b? b: a, data_dir, running, pid);
        fflush (stdout);
        if (!b)
            break;
        zhashx_destroy (&a);
        a = b;
        if (watch_s > 1)
            zclock_sleep ((watch_s - 1) * 1000);
    } while (watch_s > 0 && !zsys_interrupted);
    zhashx_destroy (&a);
    return 0;
}
