/*  =========================================================================
    af_worker - the worker's half of the worker dialog (protocol/SPEC.md
    5.13, 5.14, 8.5, 10.6), Majordomo style, for every service

    Why: the matcher and the contacts service are both workers behind the
    broker, and everything but their answers is the same: a CURVE keypair
    made on first start (whose public half the operator copies into the
    broker's worker keys directory), a DEALER to the broker's backend,
    READY with the service and a credit, PING every heartbeat, READY again
    after the broker's DISCONNECT (at once, but not more than once a
    heartbeat, so a broker that refuses the service is not flooded),
    reconnecting when the broker has been silent for liveness heartbeats,
    and DISCONNECT when leaving. A worker program is its options, its own
    state, and one function per request command that returns the answer.

    A worker that commits its state once per batch of requests (the
    payments worker's ledger) sets a batch function instead: it is given
    every request waiting on the socket (bounded) at once, and the
    replies go out in order when it returns.

    A request whose command has no function, but has a rid, is answered
    ERROR 405 (the broker's request then ends at once rather than timing
    out); an ERROR from the broker is logged; anything else is ignored.
    =========================================================================
*/
#ifndef AF_WORKER_H_INCLUDED
#define AF_WORKER_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "af_msg.h"

typedef struct _af_worker_t af_worker_t;

typedef struct {
    const char *service;        //  "matcher", "contacts": in READY and as the logs' prefix
    const char *broker;         //  the broker's worker endpoint
    const char *broker_key;     //  the broker's public certificate file (broker.cert)
    const char *cert;           //  this worker's keypair: FILE (public) and FILE_secret
    const char *role;           //  the keypair's metadata when made ("appferry matcher")
    int credit;                 //  requests the broker may give at once (1..1024)
    int heartbeat_ms;           //  PING interval
    int liveness;               //  silent heartbeats before reconnecting
} af_worker_config_t;

//  Answer one request (not owned: do not destroy it). Returns the reply,
//  which the worker sends and destroys; it must carry the request's rid.
//  NULL sends nothing (the broker then times the request out).
typedef af_msg_t *(af_worker_fn) (void *arg, af_msg_t *request);

//  Answer a batch of requests at once (a worker that group-commits its
//  state, as the payments worker does): set replies [i] (carrying its
//  request's rid; the worker sends and destroys it), or leave it NULL:
//  that request then goes to its command's function (or is refused 405)
//  after fn returns, as without a batch. A request fn answers later
//  (with af_worker_send, from a later batch or the idle function) it
//  takes: it sets requests [i] to NULL and owns the message.
typedef void (af_worker_batch_fn) (void *arg, af_msg_t **requests, size_t count, af_msg_t **replies);

//  Called when the last request waiting has been answered (the matcher
//  lets go of its catalog snapshot then); with a batch function, whenever
//  nothing waits after a message (the payments worker records and
//  answers the batch it kept then)
typedef void (af_worker_idle_fn) (void *arg);

//  Load the broker's certificate and this worker's keypair, making the
//  keypair (and its directory, mode 0700, as af_worker_make_parent) the
//  first time. Connects nothing yet. NULL with err ("cannot read
//  /etc/appferry/broker.cert") if a key cannot be read or made. The config
//  strings are copied.
af_worker_t *af_worker_new (const af_worker_config_t *config, char *err, size_t errlen);

//  Destroy; sets *self_p to NULL.
void af_worker_destroy (af_worker_t **self_p);

//  Answer requests of this command with fn (one function per command).
void af_worker_set_handler (af_worker_t *self, af_msg_id_t command, af_worker_fn *fn, void *arg);

//  Give fn every request waiting on the socket, up to max (1..AF_BATCH)
//  at a time, before any of them is answered (see af_worker_batch_fn).
void af_worker_set_batch (af_worker_t *self, af_worker_batch_fn *fn, void *arg, size_t max);

//  Send msg (an answer a batch function kept for later) to the broker, and
//  destroy it. AF_OK, or AF_E_UNAVAILABLE when it cannot go (no
//  connection now: the broker times the request out).
int af_worker_send (af_worker_t *self, af_msg_t **msg_p);

//  Call fn when idle (see af_worker_idle_fn).
void af_worker_set_idle (af_worker_t *self, af_worker_idle_fn *fn, void *arg);

//  The worker's public key in Z85, for logs.
const char *af_worker_public_key (af_worker_t *self);

//  Connect, announce, and serve until interrupted (zsys_interrupted, as
//  SIGINT and SIGTERM set it), then say DISCONNECT. AF_OK, or
//  AF_E_INTERNAL with err when the socket cannot be made or connected.
int af_worker_serve (af_worker_t *self, char *err, size_t errlen);

//  Make the directory that will hold file, and any missing parent, each
//  mode 0700 (the directory of a secret). AF_OK if it exists afterwards,
//  or AF_E_INTERNAL with the reason in err.
int af_worker_make_parent (const char *file, char *err, size_t errlen);

//  --------------------------------------------------------------------------
//  The command-line options every worker takes: -b/--broker, -k/--broker-key,
//  -c/--cert, --credit, --heartbeat, -v/--verbose. A worker's main puts
//  AF_WORKER_LONG_OPTIONS in its getopt_long table and AF_WORKER_SHORT in
//  its short options, gives each option to af_worker_option first, and
//  checks the ranges with af_worker_options_check.
typedef struct {
    char broker [256];
    char broker_key [512];
    char cert [512];
    int credit;
    int heartbeat_ms;
    int liveness;
    bool verbose;
} af_worker_options_t;

#define AF_WORKER_OPT_CREDIT    1000
#define AF_WORKER_OPT_HEARTBEAT 1001
#define AF_WORKER_OPT_FIRST     1002        //  a worker's own long-only options start here
#define AF_WORKER_SHORT         "b:k:c:v"
#define AF_WORKER_LONG_OPTIONS \
    { "broker", required_argument, NULL, 'b' }, \
    { "broker-key", required_argument, NULL, 'k' }, \
    { "cert", required_argument, NULL, 'c' }, \
    { "credit", required_argument, NULL, AF_WORKER_OPT_CREDIT }, \
    { "heartbeat", required_argument, NULL, AF_WORKER_OPT_HEARTBEAT }, \
    { "verbose", no_argument, NULL, 'v' }

//  Options with the defaults: credit, the protocol's heartbeat and liveness
void af_worker_options_init (af_worker_options_t *options, const char *broker, int credit);

//  Take getopt's option opt (its argument arg) if it is one of the common
//  ones: 1 taken, 0 not one of them, -1 a bad value (said on stderr as
//  "program: ...")
int af_worker_option (af_worker_options_t *options, int opt, const char *arg, const char *program);

//  Copy a string option's value into target (size bytes): 0, or -1 (said
//  on stderr) when it is empty or too long
int af_worker_string_option (char *target, size_t size, const char *arg, const char *program);

//  Whether the common options are complete and in range (broker-key and
//  cert given, credit 1..1024, heartbeat at least 50 ms); else false, said
//  on stderr
bool af_worker_options_check (const af_worker_options_t *options, const char *program);

//  The dialog's config from the options (its strings point into options)
af_worker_config_t af_worker_options_config (const af_worker_options_t *options, const char *service,
                                             const char *role);

//  Self test: the keypair made once and then reused, its directory's
//  mode, and the refusals (no broker certificate, a file where the
//  directory should be). The dialog is tested against the real broker:
//  every integration test runs the matcher on this class, and
//  tests/it_contacts_worker.sh the contacts service.
void af_worker_test (bool verbose);

#endif
