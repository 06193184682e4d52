/*  =========================================================================
    af_metrics - what a server does, in Prometheus' text format

    The reactor writes a snapshot into `building`; publish swaps it with
    `served` under the mutex, so the listener's thread always copies a
    whole snapshot and the reactor never waits for more than that swap.
    =========================================================================
*/
#include "af_metrics.h"
#include "af_limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>

//  A growing text
typedef struct {
    char *data;
    size_t used, size;
} text_t;

struct _af_metrics_t {
    char *file;                     //  where snapshots go, or NULL
    bool file_failing;              //  the last write failed (logged)
    text_t building;                //  the snapshot being made (reactor)
    text_t served;                  //  the last one published (under lock)
    pthread_mutex_t lock;
    struct MHD_Daemon *daemon;      //  the listener, or NULL
    char url [128];
    char family [96];               //  the family values go to
};

static void
s_append (text_t *text, const char *format, ...)
{
    va_list args;
    while (true) {
        va_start (args, format);
        size_t room = text->size - text->used;
        int len = vsnprintf (text->data + text->used, room, format, args);
        va_end (args);
        assert (len >= 0);
        if ((size_t) len < room) {
            text->used += (size_t) len;
            return;
        }
        text->size = (text->size + (size_t) len + 1) * 2;
        text->data = (char *) realloc (text->data, text->size);
        assert (text->data);
    }
}

//  --------------------------------------------------------------------------
//  The listener (libmicrohttpd's thread)

static struct MHD_Response *
s_text_response (const char *text, size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (len, (void *) text, MHD_RESPMEM_MUST_COPY);
    if (response)
        MHD_add_response_header (response, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return response;
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) con_cls;
    af_metrics_t *self = (af_metrics_t *) cls;
    if (*upload_data_size)
        return MHD_NO;                  //  we take no bodies: close the connection
    unsigned status = MHD_HTTP_OK;
    const char *refusal = NULL;
    if (strcmp (method, "GET") && strcmp (method, "HEAD")) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        refusal = "only GET /metrics is served here\n";
    }
    else
    if (strcmp (url, "/metrics")) {
        status = MHD_HTTP_NOT_FOUND;
        refusal = "not found: the figures are at /metrics\n";
    }
    struct MHD_Response *response;
    if (refusal)
        response = s_text_response (refusal, strlen (refusal));
    else {
        pthread_mutex_lock (&self->lock);
        response = s_text_response (self->served.data? self->served.data: "",
                                    self->served.used);
        pthread_mutex_unlock (&self->lock);
    }
    if (!response)
        return MHD_NO;
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static void
s_mhd_log (void *cls, const char *format, va_list args)
{
    (void) cls;
    char line [256];
    vsnprintf (line, sizeof line, format, args);
    line [strcspn (line, "\n")] = 0;
    zsys_warning ("metrics: %s", line);
}

//  "HOST:PORT" into an address; -1 if it is not one
static int
s_parse_listen (const char *listen, struct sockaddr_storage *addr, socklen_t *addrlen, bool *ipv6)
{
    char host [64];
    const char *colon = strrchr (listen, ':');
    if (!colon || colon == listen || (size_t) (colon - listen) >= sizeof host)
        return -1;
    memcpy (host, listen, (size_t) (colon - listen));
    host [colon - listen] = 0;
    char *end;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        return -1;
    memset (addr, 0, sizeof *addr);
    *ipv6 = host [0] == '[';
    if (*ipv6) {
        size_t len = strlen (host);
        if (len < 3 || host [len - 1] != ']')
            return -1;
        host [len - 1] = 0;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons ((uint16_t) port);
        if (inet_pton (AF_INET6, host + 1, &in6->sin6_addr) != 1)
            return -1;
        *addrlen = sizeof *in6;
    }
    else {
        struct sockaddr_in *in4 = (struct sockaddr_in *) addr;
        in4->sin_family = AF_INET;
        in4->sin_port = htons ((uint16_t) port);
        if (inet_pton (AF_INET, host, &in4->sin_addr) != 1)
            return -1;
        *addrlen = sizeof *in4;
    }
    return 0;
}

static int
s_listen (af_metrics_t *self, const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool ipv6;
    if (s_parse_listen (listen, &addr, &addrlen, &ipv6)) {
        snprintf (err, errlen, "metrics address '%s' is not HOST:PORT (an IPv4 address, or [IPv6])", listen);
        return -1;
    }
    //  Poll or epoll, not select: the broker may hold far more than
    //  FD_SETSIZE descriptors, and a scraper's socket comes after them
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG
                   | (ipv6? MHD_USE_IPv6: 0);
    self->daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_answer, self,
                                     MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) AF_METRICS_CLIENTS,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) AF_METRICS_TIMEOUT_S,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, errlen, "cannot serve metrics on %s (address in use or not this host's?)", listen);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host [64];
    snprintf (host, sizeof host, "%.*s", (int) (strrchr (listen, ':') - listen), listen);
    snprintf (self->url, sizeof self->url, "http://%s:%u/metrics", host, info? (unsigned) info->port: 0);
    return 0;
}

//  --------------------------------------------------------------------------
//  The reactor's side

af_metrics_t *
af_metrics_new (const char *file, const char *listen, char *err, size_t errlen)
{
    af_metrics_t *self = (af_metrics_t *) zmalloc (sizeof (af_metrics_t));
    assert (self);
    pthread_mutex_init (&self->lock, NULL);
    if (file) {
        self->file = strdup (file);
        assert (self->file);
    }
    if (listen && *listen && s_listen (self, listen, err, errlen)) {
        af_metrics_destroy (&self);
        return NULL;
    }
    return self;
}

void
af_metrics_destroy (af_metrics_t **self_p)
{
    assert (self_p);
    af_metrics_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    pthread_mutex_destroy (&self->lock);
    free (self->building.data);
    free (self->served.data);
    free (self->file);
    free (self);
    *self_p = NULL;
}

const char *
af_metrics_url (af_metrics_t *self)
{
    assert (self);
    return self->url;
}

void
af_metrics_begin (af_metrics_t *self)
{
    assert (self);
    self->building.used = 0;
    *self->family = 0;
}

void
af_metrics_family (af_metrics_t *self, const char *name, af_metric_type_t type, const char *help)
{
    assert (self && name && help);
    assert (strlen (name) < sizeof self->family);
    strcpy (self->family, name);
    s_append (&self->building, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
              type == AF_METRIC_COUNTER? "counter": type == AF_METRIC_GAUGE? "gauge": "histogram");
}

void
af_metrics_value (af_metrics_t *self, const char *labels, double value)
{
    assert (self && *self->family);
    //  Integers as integers (most of ours are counts), the rest with
    //  enough digits to show (15 significant digits: no binary noise)
    char number [40];
    if (value > -1e15 && value < 1e15 && value == (double) (int64_t) value)
        snprintf (number, sizeof number, "%.0f", value);
    else
        snprintf (number, sizeof number, "%.15g", value);
    if (labels && *labels)
        s_append (&self->building, "%s{%s} %s\n", self->family, labels, number);
    else
        s_append (&self->building, "%s %s\n", self->family, number);
}

void
af_metrics_histogram (af_metrics_t *self, const double *bounds, const uint64_t *counts, size_t n,
                      double sum)
{
    assert (self && *self->family && n >= 1);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += counts [i];
        if (i < n - 1)
            s_append (&self->building, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", self->family, bounds [i], total);
        else
            s_append (&self->building, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", self->family, total);
    }
    s_append (&self->building, "%s_sum %.17g\n%s_count %" PRIu64 "\n", self->family, sum, self->family, total);
}

static int
s_write_file (af_metrics_t *self)
{
    char tmp [PATH_MAX];
    if (snprintf (tmp, sizeof tmp, "%s.tmp", self->file) >= (int) sizeof tmp)
        return -1;
    FILE *out = fopen (tmp, "w");
    if (!out)
        return -1;
    size_t wrote = fwrite (self->building.data? self->building.data: "", 1, self->building.used, out);
    if (fclose (out) || wrote != self->building.used || rename (tmp, self->file)) {
        remove (tmp);
        return -1;
    }
    return 0;
}

int
af_metrics_publish (af_metrics_t *self)
{
    assert (self);
    int code = AF_OK;
    if (self->file) {
        if (s_write_file (self)) {
            if (!self->file_failing)
                zsys_warning ("metrics: cannot write %s: %s", self->file, strerror (errno));
            self->file_failing = true;
            code = AF_E_INTERNAL;
        }
        else
            self->file_failing = false;
    }
    if (self->daemon) {
        pthread_mutex_lock (&self->lock);
        text_t swap = self->served;
        self->served = self->building;
        self->building = swap;
        pthread_mutex_unlock (&self->lock);
    }
    return code;
}

//  --------------------------------------------------------------------------
//  Reading a published file back

static void
s_free_value (void **item)
{
    free (*item);
    *item = NULL;
}

zhashx_t *
af_metrics_read (const char *file, char *err, size_t errlen)
{
    FILE *in = fopen (file, "r");
    if (!in) {
        snprintf (err, errlen, "cannot read %s: %s", file, strerror (errno));
        return NULL;
    }
    zhashx_t *values = zhashx_new ();
    zhashx_set_destructor (values, s_free_value);
    char line [512];
    int number = 0;
    while (fgets (line, sizeof line, in)) {
        number++;
        line [strcspn (line, "\n")] = 0;
        if (*line == '#' || !*line)
            continue;
        char *space = strrchr (line, ' ');
        char *end = NULL;
        double value = space? strtod (space + 1, &end): 0;
        if (!space || space == line || end == space + 1 || *end) {
            snprintf (err, errlen, "%s:%d: not a metric line", file, number);
            zhashx_destroy (&values);
            break;
        }
        *space = 0;
        double *copy = (double *) malloc (sizeof (double));
        assert (copy);
        *copy = value;
        zhashx_update (values, line, copy);
    }
    fclose (in);
    return values;
}

double
af_metrics_get (zhashx_t *values, const char *key, double fallback)
{
    double *value = values? (double *) zhashx_lookup (values, key): NULL;
    return value? *value: fallback;
}

//  --------------------------------------------------------------------------
//  Self test

//  GET path from 127.0.0.1:port; the whole answer (status line, headers,
//  body) in buf
static void
s_get (int port, const char *method, const char *path, char *buf, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    assert (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    char request [256];
    int len = snprintf (request, sizeof request, "%s %s HTTP/1.0\r\nHost: test\r\n\r\n", method, path);
    assert (write (fd, request, (size_t) len) == len);
    size_t used = 0;
    ssize_t got;
    while (used + 1 < size && (got = read (fd, buf + used, size - used - 1)) > 0)
        used += (size_t) got;
    buf [used] = 0;
    close (fd);
}

void
af_metrics_test (bool verbose)
{
    if (verbose)
        printf (" * af_metrics: ");
    char dir [] = "/tmp/af_metrics_test_XXXXXX";
    assert (mkdtemp (dir));
    char file [64], err [256] = "";
    snprintf (file, sizeof file, "%s/metrics.prom", dir);

    //  Addresses that are not HOST:PORT are refused with a reason
    const char *bad [] = { "9464", ":9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:70000",
                           "127.0.0.1:12x", "[::1:9464", "[]:1", NULL };
    for (int i = 0; bad [i]; i++) {
        *err = 0;
        assert (af_metrics_new (file, bad [i], err, sizeof err) == NULL);
        assert (strstr (err, "not HOST:PORT"));
    }

    af_metrics_t *metrics = af_metrics_new (file, "127.0.0.1:0", err, sizeof err);
    assert (metrics);
    const char *url = af_metrics_url (metrics);
    assert (strncmp (url, "http://127.0.0.1:", 17) == 0);
    int port = atoi (url + 17);
    assert (port > 0);

    //  A snapshot: the file has it, and so does the listener
    af_metrics_begin (metrics);
    af_metrics_family (metrics, "appferry_sessions", AF_METRIC_GAUGE, "connections with a session");
    af_metrics_value (metrics, NULL, 3);
    af_metrics_family (metrics, "appferry_errors_total", AF_METRIC_COUNTER, "errors sent, by code");
    af_metrics_value (metrics, "code=\"404\"", 12);
    af_metrics_value (metrics, "code=\"500\"", 1);
    af_metrics_family (metrics, "appferry_ratio", AF_METRIC_GAUGE, "a fraction");
    af_metrics_value (metrics, NULL, 0.25);
    af_metrics_family (metrics, "appferry_sizes", AF_METRIC_HISTOGRAM, "sizes");
    double bounds [] = { 1, 4 };
    uint64_t counts [] = { 2, 3, 1 };
    af_metrics_histogram (metrics, bounds, counts, 3, 2 * 1 + 3 * 3 + 9);
    assert (af_metrics_publish (metrics) == AF_OK);
    zhashx_t *values = af_metrics_read (file, err, sizeof err);
    assert (values);
    assert (af_metrics_get (values, "appferry_sessions", -1) == 3);
    assert (af_metrics_get (values, "appferry_errors_total{code=\"404\"}", -1) == 12);
    assert (af_metrics_get (values, "appferry_errors_total{code=\"500\"}", -1) == 1);
    assert (af_metrics_get (values, "appferry_ratio", -1) == 0.25);
    assert (af_metrics_get (values, "appferry_missing", -1) == -1);
    assert (af_metrics_get (values, "appferry_sizes_bucket{le=\"1\"}", -1) == 2);
    assert (af_metrics_get (values, "appferry_sizes_bucket{le=\"4\"}", -1) == 5);
    assert (af_metrics_get (values, "appferry_sizes_bucket{le=\"+Inf\"}", -1) == 6);
    assert (af_metrics_get (values, "appferry_sizes_sum", -1) == 20);
    assert (af_metrics_get (values, "appferry_sizes_count", -1) == 6);
    zhashx_destroy (&values);

    char answer [4096];
    s_get (port, "GET", "/metrics", answer, sizeof answer);
    assert (strstr (answer, "HTTP/1.0 200") || strstr (answer, "HTTP/1.1 200"));
    assert (strstr (answer, "text/plain; version=0.0.4"));
    assert (strstr (answer, "# TYPE appferry_sessions gauge\nappferry_sessions 3\n"));
    assert (strstr (answer, "appferry_errors_total{code=\"404\"} 12\n"));
    assert (strstr (answer, "# TYPE appferry_sizes histogram\n"));

    //  The next snapshot replaces the last one everywhere
    af_metrics_begin (metrics);
    af_metrics_family (metrics, "appferry_sessions", AF_METRIC_GAUGE, "connections with a session");
    af_metrics_value (metrics, NULL, 4);
    assert (af_metrics_publish (metrics) == AF_OK);
    s_get (port, "GET", "/metrics", answer, sizeof answer);
    assert (strstr (answer, "appferry_sessions 4\n") && !strstr (answer, "appferry_errors_total"));
    values = af_metrics_read (file, err, sizeof err);
    assert (values && zhashx_size (values) == 1 && af_metrics_get (values, "appferry_sessions", -1) == 4);
    zhashx_destroy (&values);

    //  Anything but GET /metrics is refused
    s_get (port, "GET", "/", answer, sizeof answer);
    assert (strstr (answer, " 404 "));
    s_get (port, "DELETE", "/metrics", answer, sizeof answer);
    assert (strstr (answer, " 405 "));

    //  The same port twice is refused
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    assert (af_metrics_new (NULL, listen, err, sizeof err) == NULL);
    assert (strstr (err, "cannot serve metrics"));
    af_metrics_destroy (&metrics);
    assert (metrics == NULL);

    //  A file that is not the format, or is not there, is an error
    FILE *out = fopen (file, "w");
    assert (out);
    fprintf (out, "# HELP x y\nappferry_sessions\n");
    fclose (out);
    assert (af_metrics_read (file, err, sizeof err) == NULL && strstr (err, ":2: not a metric line"));
    remove (file);
    assert (af_metrics_read (file, err, sizeof err) == NULL && strstr (err, "cannot read"));

    //  Without a listener, a file that cannot be written is AF_E_INTERNAL
    char nowhere [96];
    snprintf (nowhere, sizeof nowhere, "%s/no/such/dir/metrics.prom", dir);
    metrics = af_metrics_new (nowhere, NULL, err, sizeof err);
    assert (metrics && *af_metrics_url (metrics) == 0);
    af_metrics_begin (metrics);
    af_metrics_family (metrics, "appferry_sessions", AF_METRIC_GAUGE, "connections with a session");
    af_metrics_value (metrics, NULL, 1);
    assert (af_metrics_publish (metrics) == AF_E_INTERNAL);
    af_metrics_destroy (&metrics);
    zsys_dir_delete ("%s", dir);
    if (verbose)
        printf ("OK\n");
}
