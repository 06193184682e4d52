/*  =========================================================================
    af_metrics - what a server does, in Prometheus' text format

    An operator needs to see what a fleet does to a broker: sessions,
    logins a second, durable commits and how many changes each carried,
    bytes waiting to be sent. The broker's reactor builds one snapshot a
    second from its own counters (af_metrics_family / _value between
    _begin and _publish); publishing writes it to a file, atomically
    (written beside it, then renamed), and hands it to an optional HTTP
    listener. Both are Prometheus' text exposition format, version 0.0.4:
    the file is what node_exporter's textfile collector reads, the listener
    is what a Prometheus server scrapes, and `appferry-broker --status`
    reads the file back (af_metrics_read) to print a summary.

    The listener is libmicrohttpd's own thread: it only copies the last
    published text under a mutex, so a slow or hostile scraper never
    touches the reactor. It serves GET /metrics and nothing else, to at
    most AF_METRICS_CLIENTS clients at once, each for at most
    AF_METRICS_TIMEOUT_S seconds. Bind it to loopback (the default
    address is 127.0.0.1): the figures are not secret, but they are not
    everyone's business.
    =========================================================================
*/
#ifndef AF_METRICS_H_INCLUDED
#define AF_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

typedef struct _af_metrics_t af_metrics_t;

typedef enum { AF_METRIC_COUNTER, AF_METRIC_GAUGE, AF_METRIC_HISTOGRAM } af_metric_type_t;

//  Publish to file (NULL: no file) and, if listen is not NULL, serve HTTP
//  on listen: "HOST:PORT" with HOST an IPv4 address or [IPv6] in brackets,
//  PORT 0 for any free one. NULL with err on failure (a bad address, a
//  port in use).
af_metrics_t *af_metrics_new (const char *file, const char *listen, char *err, size_t errlen);

//  Stop the listener, free. Sets *self_p to NULL.
void af_metrics_destroy (af_metrics_t **self_p);

//  The URL the listener serves ("http://127.0.0.1:9464/metrics"), or ""
//  without one.
const char *af_metrics_url (af_metrics_t *self);

//  Start a snapshot.
void af_metrics_begin (af_metrics_t *self);

//  Start a family of values: name ([a-z_]+, "appferry_" first by our
//  convention), type, one line of help.
void af_metrics_family (af_metrics_t *self, const char *name, af_metric_type_t type, const char *help);

//  A value of the family just started; labels is NULL or a label set
//  without braces (code="404"), values known to need no escaping.
void af_metrics_value (af_metrics_t *self, const char *labels, double value);

//  The values of the histogram family just started: counts [i] events
//  were at most bounds [i] (and above bounds [i - 1]), for i below n - 1;
//  counts [n - 1] were above every bound; sum is their total. Written as
//  Prometheus wants it: cumulative NAME_bucket{le=...}, NAME_sum, NAME_count.
void af_metrics_histogram (af_metrics_t *self, const double *bounds, const uint64_t *counts, size_t n,
                           double sum);

//  The snapshot is complete: write the file and serve it. AF_OK, or
//  AF_E_INTERNAL if the file could not be written (logged once until it
//  can be again; the listener gets the snapshot anyway).
int af_metrics_publish (af_metrics_t *self);

//  Read a published file: a hash of "name" or "name{labels}" to the value
//  (double *, owned by the hash). NULL with err if it cannot be read or
//  is not the format (a line that is not a comment and has no value).
zhashx_t *af_metrics_read (const char *file, char *err, size_t errlen);

//  A value from af_metrics_read's hash, or fallback when it has none.
double af_metrics_get (zhashx_t *values, const char *key, double fallback);

//  Self test
void af_metrics_test (bool verbose);

#endif
