/*  =========================================================================
    af_dispatch - the broker's worker core, Majordomo style

    See af_dispatch.h. Data: one queue per service (requests waiting, in
    arrival order), the workers of each service, every open request by its
    broker-side rid (a fresh random ID: a worker never sees a node's rid),
    and every open request in creation order. All requests share one
    timeout, so creation order is deadline order: expiring them is a walk
    from the oldest that stops at the first still in time.
    =========================================================================
*/
#include "af_dispatch.h"

#include <sodium.h>

typedef struct _service_t service_t;

typedef struct {
    char hex [32];                  //  routing ID in hex: workers key
    zframe_t *routing;
    char key [AF_KEY_Z85 + 1];      //  its CURVE key, for the log
    service_t *service;
    uint32_t credit;
    uint32_t inflight;
    int heartbeat_ms;               //  max (ours, the worker's READY)
    int64_t last_seen;
} worker_t;

struct _service_t {
    char name [AF_MAX_NAME + 1];
    zlistx_t *queue;                //  request_t waiting, oldest first
    zlistx_t *workers;              //  worker_t of this service (not owned)
};

typedef struct {
    char hex [AF_ID_HEX + 1];       //  our rid: requests key
    uint8_t rid [AF_ID_SIZE];
    service_t *service;
    worker_t *worker;               //  NULL while queued
    af_msg_t *msg;                  //  what the worker gets
    af_dispatch_fn *done;
    void *arg;
    uint32_t slot;
    int64_t created;                //  monotonic ms
    void *queued;                   //  handle in service->queue, or NULL
    void *aged;                     //  handle in self->by_age
} request_t;

struct _af_dispatch_t {
    zsock_t *backend;               //  not ours
    af_dispatch_config_t config;
    zhashx_t *services;             //  name -> service_t (owned)
    zhashx_t *workers;              //  routing hex -> worker_t (owned)
    zhashx_t *requests;             //  rid hex -> request_t (owned)
    zlistx_t *by_age;               //  request_t, oldest first
    size_t waiting;                 //  requests in some queue
};

static void
s_service_free (void **item)
{
    service_t *service = (service_t *) *item;
    if (service) {
        zlistx_destroy (&service->queue);
        zlistx_destroy (&service->workers);
        free (service);
        *item = NULL;
    }
}

static void
s_worker_free (void **item)
{
    worker_t *worker = (worker_t *) *item;
    if (worker) {
        zframe_destroy (&worker->routing);
        free (worker);
        *item = NULL;
    }
}

static void
s_request_free (void **item)
{
    request_t *request = (request_t *) *item;
    if (request) {
        af_msg_destroy (&request->msg);
        free (request);
        *item = NULL;
    }
}

af_dispatch_t *
af_dispatch_new (zsock_t *backend, const af_dispatch_config_t *config)
{
    assert (backend && config);
    af_dispatch_t *self = (af_dispatch_t *) zmalloc (sizeof (af_dispatch_t));
    assert (self);
    self->backend = backend;
    self->config = *config;
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_free);
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_free);
    self->requests = zhashx_new ();
    zhashx_set_destructor (self->requests, s_request_free);
    self->by_age = zlistx_new ();
    assert (self->services && self->workers && self->requests && self->by_age);
    return self;
}

void
af_dispatch_destroy (af_dispatch_t **self_p)
{
    assert (self_p);
    af_dispatch_t *self = *self_p;
    if (self) {
        zlistx_destroy (&self->by_age);
        zhashx_destroy (&self->requests);
        zhashx_destroy (&self->workers);
        zhashx_destroy (&self->services);
        free (self);
        *self_p = NULL;
    }
}

void
af_dispatch_service (af_dispatch_t *self, const char *name)
{
    assert (self && name && strlen (name) <= AF_MAX_NAME);
    if (zhashx_lookup (self->services, name))
        return;
    service_t *service = (service_t *) zmalloc (sizeof (service_t));
    assert (service);
    snprintf (service->name, sizeof service->name, "%s", name);
    service->queue = zlistx_new ();
    service->workers = zlistx_new ();
    assert (service->queue && service->workers);
    zhashx_insert (self->services, name, service);
}

static void
s_send (af_dispatch_t *self, zframe_t *routing, af_msg_t **msg_p)
{
    if (*msg_p && af_msg_send (*msg_p, self->backend, routing))
        zsys_warning ("broker: cannot send %s to a worker", af_msg_command_name ((*msg_p)->id));
    af_msg_destroy (msg_p);
}

//  The service's live worker with free credit and the fewest in flight
static worker_t *
s_pick (service_t *service)
{
    worker_t *best = NULL;
    for (worker_t *worker = (worker_t *) zlistx_first (service->workers); worker;
         worker = (worker_t *) zlistx_next (service->workers))
        if (worker->inflight < worker->credit && (!best || worker->inflight < best->inflight))
            best = worker;
    return best;
}

//  Send a request to a worker: true if it went
static bool
s_assign (af_dispatch_t *self, request_t *request, worker_t *worker)
{
    memcpy (request->msg->rid, request->rid, AF_ID_SIZE);
    request->msg->has_rid = true;
    if (af_msg_send (request->msg, self->backend, worker->routing)) {
        zsys_warning ("broker: cannot send request %s to worker %s", request->hex, worker->hex);
        return false;
    }
    worker->inflight++;
    request->worker = worker;
    return true;
}

//  Give a service's waiting requests to its workers while they have credit.
//  The one invariant of the queues: after every event, a service's queue is
//  empty or none of its workers has free credit. So every event that adds
//  work (submit, a removed worker's requests coming back) or frees credit
//  (an answer, a timeout, READY, a refused late answer) ends here; a queue
//  left behind while credit is free would wait for good, since nothing
//  else moves it (issue 11: a timeout freed credit and nothing pumped).
static void
s_pump (af_dispatch_t *self, service_t *service)
{
    while (zlistx_size (service->queue)) {
        worker_t *worker = s_pick (service);
        if (!worker)
            break;
        request_t *request = (request_t *) zlistx_first (service->queue);
        if (!s_assign (self, request, worker))
            break;                      //  the socket refuses: try at the next event
        zlistx_delete (service->queue, request->queued);
        request->queued = NULL;
        self->waiting--;
    }
}

int
af_dispatch_submit (af_dispatch_t *self, const char *service_name, af_msg_t **msg_p,
                    af_dispatch_fn *done, void *arg, uint32_t slot)
{
    assert (self && msg_p && *msg_p && done);
    service_t *service = (service_t *) zhashx_lookup (self->services, service_name);
    if (!service || self->waiting >= self->config.max_queue) {
        if (service)
            zsys_warning ("broker: the %s queue is full (%zu waiting)", service_name, self->waiting);
        af_msg_destroy (msg_p);
        return AF_E_UNAVAILABLE;
    }
    request_t *request = (request_t *) zmalloc (sizeof (request_t));
    assert (request);
    randombytes_buf (request->rid, AF_ID_SIZE);
    sodium_bin2hex (request->hex, sizeof request->hex, request->rid, AF_ID_SIZE);
    request->service = service;
    request->msg = *msg_p;
    *msg_p = NULL;
    request->done = done;
    request->arg = arg;
    request->slot = slot;
    request->created = zclock_mono ();
    zhashx_insert (self->requests, request->hex, request);
    request->aged = zlistx_add_end (self->by_age, request);
    //  Behind those waiting before it, then to a worker if one has credit
    request->queued = zlistx_add_end (service->queue, request);
    self->waiting++;
    s_pump (self, service);
    return AF_OK;
}

size_t
af_dispatch_room (af_dispatch_t *self)
{
    assert (self);
    return self->waiting >= self->config.max_queue? 0: self->config.max_queue - self->waiting;
}

//  Forget a request and call its completion with reply (taken); the
//  credit it held goes to the next waiting request
static void
s_finish (af_dispatch_t *self, request_t *request, af_msg_t **reply_p)
{
    service_t *service = request->service;
    if (request->worker && request->worker->inflight)
        request->worker->inflight--;
    if (request->queued) {
        zlistx_delete (request->service->queue, request->queued);
        self->waiting--;
    }
    zlistx_delete (self->by_age, request->aged);
    af_dispatch_fn *done = request->done;
    void *arg = request->arg;
    uint32_t slot = request->slot;
    zhashx_delete (self->requests, request->hex);
    done (arg, slot, reply_p);
    af_msg_destroy (reply_p);
    s_pump (self, service);
}

static int
s_compare_created (const void *a, const void *b)
{
    int64_t x = (*(request_t * const *) a)->created, y = (*(request_t * const *) b)->created;
    return x < y? -1: x > y;
}

static void
s_worker_remove (af_dispatch_t *self, worker_t *worker, const char *why)
{
    zsys_warning ("broker: worker %s (%s) removed: %s", worker->hex,
                  worker->service? worker->service->name: "no service", why);
    service_t *service = worker->service;
    if (service) {
        //  Hand its requests to others: back to the front of the queue,
        //  oldest first, ahead of requests that were never tried
        size_t count = 0;
        request_t **orphans = (request_t **) malloc (sizeof (request_t *) * (worker->inflight + 1));
        assert (orphans);
        for (request_t *request = (request_t *) zhashx_first (self->requests); request;
             request = (request_t *) zhashx_next (self->requests))
            if (request->worker == worker && count < worker->inflight)
                orphans [count++] = request;
        qsort (orphans, count, sizeof (request_t *), s_compare_created);
        while (count--) {
            orphans [count]->worker = NULL;
            orphans [count]->queued = zlistx_add_start (service->queue, orphans [count]);
            self->waiting++;
        }
        free (orphans);
        void *handle = zlistx_find (service->workers, worker);
        if (handle)
            zlistx_delete (service->workers, handle);
    }
    zhashx_delete (self->workers, worker->hex);
    if (service)
        s_pump (self, service);
}

static void
s_disconnect (af_dispatch_t *self, zframe_t *routing, const char *reason)
{
    af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
    snprintf (bye->reason, sizeof bye->reason, "%s", reason);
    s_send (self, routing, &bye);
}

static void
s_ready (af_dispatch_t *self, worker_t *worker, const char *hex, zframe_t *routing, zframe_t *body,
         af_msg_t *msg)
{
    service_t *service = (service_t *) zhashx_lookup (self->services, msg->service);
    if (!service) {
        zsys_warning ("broker: refused READY for unknown service '%s'", msg->service);
        char reason [AF_MAX_REASON + 1];
        snprintf (reason, sizeof reason, "unknown service '%s'", msg->service);
        s_disconnect (self, routing, reason);
        return;
    }
    if (worker && worker->service != service) {
        s_worker_remove (self, worker, "it offered another service");
        worker = NULL;
    }
    if (!worker) {
        worker = (worker_t *) zmalloc (sizeof (worker_t));
        assert (worker);
        snprintf (worker->hex, sizeof worker->hex, "%s", hex);
        worker->routing = zframe_dup (routing);
        const char *key = zframe_meta (body, "User-Id");
        snprintf (worker->key, sizeof worker->key, "%s", key? key: "");
        worker->service = service;
        zhashx_insert (self->workers, hex, worker);
        zlistx_add_end (service->workers, worker);
        zsys_info ("broker: worker %s ready for '%s' (credit %u)", hex, msg->service,
                   msg->credit? msg->credit: 1);
    }
    worker->credit = msg->credit? msg->credit: 1;
    //  A worker beating slower than the broker is judged by its own pace
    worker->heartbeat_ms = (int) msg->heartbeat > self->config.heartbeat_ms?
                           (int) msg->heartbeat: self->config.heartbeat_ms;
    worker->last_seen = zclock_mono ();
    s_pump (self, service);
}

static void
s_answer (af_dispatch_t *self, worker_t *worker, af_msg_t **msg_p)
{
    char rid_hex [AF_ID_HEX + 1];
    sodium_bin2hex (rid_hex, sizeof rid_hex, (*msg_p)->rid, AF_ID_SIZE);
    request_t *request = (request_t *) zhashx_lookup (self->requests, rid_hex);
    if (!request || request->worker != worker) {
        //  Late (timed out) or reassigned: the worker is free of it
        zsys_warning ("broker: worker %s answered unknown or reassigned request %s", worker->hex, rid_hex);
        s_pump (self, worker->service);
        return;
    }
    s_finish (self, request, msg_p);
}

void
af_dispatch_message (af_dispatch_t *self, zframe_t **routing_p, zframe_t **body_p, size_t extra)
{
    assert (self && routing_p && body_p);
    zframe_t *routing = *routing_p, *body = *body_p;
    af_msg_t *msg = NULL;
    if (!routing || !body || zframe_size (routing) > 15) {
        zsys_warning ("broker: dropped a worker message without routing ID or body");
        goto done;
    }
    char hex [32];
    sodium_bin2hex (hex, sizeof hex, zframe_data (routing), zframe_size (routing));
    worker_t *worker = (worker_t *) zhashx_lookup (self->workers, hex);
    char err [AF_MAX_REASON + 1];
    uint8_t rid [AF_ID_SIZE];
    bool has_rid = false;
    int code = AF_E_MALFORMED;
    if (extra + 1 > AF_MAX_FRAMES)
        snprintf (err, sizeof err, "a message is exactly one frame");
    else
        code = af_msg_decode (zframe_data (body), zframe_size (body), &msg, err, sizeof err, rid, &has_rid);
    if (code != AF_OK) {
        zsys_warning ("broker: refused a worker message: %s: %s", af_code_name (code), err);
        af_msg_t *error = af_msg_error (code, has_rid? rid: NULL, "%s", err);
        s_send (self, routing, &error);
        goto done;
    }
    if (msg->id == AF_MSG_READY)
        s_ready (self, worker, hex, routing, body, msg);
    else
    if (!worker)
        //  Not (or no longer) known: tell it to start over, as MDP does
        s_disconnect (self, routing, "send READY first");
    else {
        worker->last_seen = zclock_mono ();
        if (msg->id == AF_MSG_PING) {
            af_msg_t *pong = af_msg_new (AF_MSG_PONG);
            pong->logged_in = true;
            s_send (self, routing, &pong);
        }
        else
        if (msg->id == AF_MSG_DISCONNECT)
            s_worker_remove (self, worker, "it disconnected");
        else
        if (msg->has_rid && (msg->id == AF_MSG_RESOLVED || msg->id == AF_MSG_CONTACTS_EVALUATED
                         ||  msg->id == AF_MSG_ERROR || msg->id == AF_MSG_PAYMENT_REQUIRED
                         ||  msg->id == AF_MSG_PAID || msg->id == AF_MSG_PURCHASE_LIST))
            s_answer (self, worker, &msg);
        else
            zsys_warning ("broker: refused %s from worker %s", af_msg_command_name (msg->id), hex);
    }
done:
    af_msg_destroy (&msg);
    zframe_destroy (routing_p);
    zframe_destroy (body_p);
}

void
af_dispatch_tick (af_dispatch_t *self, int64_t now)
{
    assert (self);
    zlistx_t *dead = zlistx_new ();
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers))
        if (now - worker->last_seen > (int64_t) worker->heartbeat_ms * self->config.liveness)
            zlistx_add_end (dead, worker);
    for (worker_t *worker = (worker_t *) zlistx_first (dead); worker;
         worker = (worker_t *) zlistx_next (dead))
        s_worker_remove (self, worker, "heartbeat expired");
    zlistx_destroy (&dead);
    //  Oldest first; the first one in time ends the walk
    request_t *request;
    while ((request = (request_t *) zlistx_first (self->by_age))
       &&  now - request->created > self->config.request_timeout_ms) {
        zsys_warning ("broker: request %s for '%s' timed out", request->hex, request->service->name);
        af_msg_t *error = af_msg_error (AF_E_UNAVAILABLE, NULL, "no %s answered within %d ms",
                                        request->service->name, self->config.request_timeout_ms);
        s_finish (self, request, &error);
    }
}

void
af_dispatch_stats (af_dispatch_t *self, size_t *workers, size_t *waiting, size_t *inflight)
{
    assert (self);
    if (workers)
        *workers = zhashx_size (self->workers);
    if (waiting)
        *waiting = self->waiting;
    if (inflight)
        *inflight = zhashx_size (self->requests) - self->waiting;
}

//  --------------------------------------------------------------------------
//  Self test: a real ROUTER and DEALER workers over inproc

typedef struct {
    int calls;
    uint32_t last_slot;
    int last_id;
    int last_code;
} seen_t;

static void
s_test_done (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    seen_t *seen = (seen_t *) arg;
    seen->calls++;
    seen->last_slot = slot;
    seen->last_id = *reply_p? (int) (*reply_p)->id: 0;
    seen->last_code = *reply_p? (int) (*reply_p)->code: 0;
}

//  Deliver whatever the ROUTER has to the dispatcher
static void
s_test_drain (af_dispatch_t *self, zsock_t *router)
{
    zpoller_t *poller = zpoller_new (router, NULL);
    while (zpoller_wait (poller, 20)) {
        zframe_t *routing = zframe_recv (router);
        zframe_t *body = routing && zframe_more (routing)? zframe_recv (router): NULL;
        af_dispatch_message (self, &routing, &body, 0);
    }
    zpoller_destroy (&poller);
}

static af_msg_t *
s_test_recv (zsock_t *worker)
{
    zpoller_t *poller = zpoller_new (worker, NULL);
    af_msg_t *msg = NULL;
    if (zpoller_wait (poller, 500)) {
        zframe_t *frame = zframe_recv (worker);
        char err [256];
        if (frame)
            assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err,
                                   NULL, NULL) == AF_OK);
        zframe_destroy (&frame);
    }
    zpoller_destroy (&poller);
    return msg;
}

static void
s_test_send (zsock_t *worker, af_msg_t **msg_p)
{
    assert (af_msg_send (*msg_p, worker, NULL) == 0);
    af_msg_destroy (msg_p);
}

static void
s_test_ready (zsock_t *worker, const char *service, uint32_t credit)
{
    af_msg_t *ready = af_msg_new (AF_MSG_READY);
    snprintf (ready->service, sizeof ready->service, "%s", service);
    ready->credit = credit;
    s_test_send (worker, &ready);
}

static af_msg_t *
s_test_request (const char *program)
{
    af_msg_t *msg = af_msg_new (AF_MSG_RESOLVE);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    return msg;
}

static af_msg_t *
s_test_answer (const uint8_t *rid)
{
    af_msg_t *answer = af_msg_new (AF_MSG_RESOLVED);
    memcpy (answer->rid, rid, AF_ID_SIZE);
    answer->has_rid = true;
    snprintf (answer->program, sizeof answer->program, "any");
    answer->fit = AF_FIT_NONE;
    snprintf (answer->reason, sizeof answer->reason, "a test answer");
    return answer;
}

//  Issue 11's stall: a worker falls behind, its requests time out and
//  their late answers are refused, while newer requests wait. The credit
//  the timeouts freed must move the queue; on the old code nothing did,
//  and every later request only joined the queue behind them.
static void
s_test_timeouts_pump_the_queue (void)
{
    zsock_t *router = zsock_new_router ("inproc://af_dispatch_stall");
    assert (router);
    //  A long heartbeat: the worker stays alive across the ticks below
    af_dispatch_config_t config = { .heartbeat_ms = 60000, .liveness = 3, .request_timeout_ms = 1000,
                                    .max_queue = 8 };
    af_dispatch_t *self = af_dispatch_new (router, &config);
    af_dispatch_service (self, "matcher");
    seen_t seen = { 0 };
    zsock_t *worker = zsock_new_dealer (">inproc://af_dispatch_stall");
    assert (worker);
    s_test_ready (worker, "matcher", 2);
    s_test_drain (self, router);

    //  Two go to the worker (its whole credit), two wait behind them
    const char *programs [] = { "one", "two", "three", "four" };
    for (uint32_t i = 0; i < 2; i++) {
        af_msg_t *msg = s_test_request (programs [i]);
        assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, i) == AF_OK);
    }
    int64_t first_sent = zclock_mono ();
    zclock_sleep (5);
    for (uint32_t i = 2; i < 4; i++) {
        af_msg_t *msg = s_test_request (programs [i]);
        assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, i) == AF_OK);
    }
    size_t workers, waiting, inflight;
    af_dispatch_stats (self, &workers, &waiting, &inflight);
    assert (workers == 1 && waiting == 2 && inflight == 2);
    uint8_t late [2][AF_ID_SIZE];
    for (int i = 0; i < 2; i++) {
        af_msg_t *got = s_test_recv (worker);
        assert (got && streq (got->program, programs [i]));
        memcpy (late [i], got->rid, AF_ID_SIZE);
        af_msg_destroy (&got);
    }

    //  The worker is behind: the first two time out, the others do not yet
    af_dispatch_tick (self, first_sent + config.request_timeout_ms + 1);
    assert (seen.calls == 2 && seen.last_code == AF_E_UNAVAILABLE);
    //  ... and their late answers are refused
    for (int i = 0; i < 2; i++) {
        af_msg_t *answer = s_test_answer (late [i]);
        s_test_send (worker, &answer);
    }
    s_test_drain (self, router);
    assert (seen.calls == 2);

    //  The waiting two went to the worker, in order
    for (int i = 2; i < 4; i++) {
        af_msg_t *got = s_test_recv (worker);
        assert (got && got->id == AF_MSG_RESOLVE && streq (got->program, programs [i]));
        af_msg_t *answer = s_test_answer (got->rid);
        af_msg_destroy (&got);
        s_test_send (worker, &answer);
    }
    s_test_drain (self, router);
    assert (seen.calls == 4 && seen.last_slot == 3 && seen.last_id == AF_MSG_RESOLVED);
    //  A new request goes at once
    af_msg_t *msg = s_test_request ("five");
    assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, 4) == AF_OK);
    af_msg_t *got = s_test_recv (worker);
    assert (got && streq (got->program, "five"));
    af_msg_destroy (&got);
    af_dispatch_stats (self, &workers, &waiting, &inflight);
    assert (waiting == 0 && inflight == 1);

    af_dispatch_destroy (&self);
    zsock_destroy (&worker);
    zsock_destroy (&router);
}

void
af_dispatch_test (bool verbose)
{
    if (verbose)
        printf (" * af_dispatch: ");
    zsock_t *router = zsock_new_router ("inproc://af_dispatch_test");
    assert (router);
    af_dispatch_config_t config = { .heartbeat_ms = 50, .liveness = 2, .request_timeout_ms = 2000,
                                    .max_queue = 3 };
    af_dispatch_t *self = af_dispatch_new (router, &config);
    af_dispatch_service (self, "matcher");
    seen_t seen = { 0 };

    //  No worker yet: requests wait, up to max_queue
    af_msg_t *msg = s_test_request ("one");
    assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, 1) == AF_OK && !msg);
    msg = s_test_request ("two");
    assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, 2) == AF_OK);
    assert (af_dispatch_room (self) == 1);
    msg = s_test_request ("x");
    assert (af_dispatch_submit (self, "payments", &msg, s_test_done, &seen, 9) == AF_E_UNAVAILABLE && !msg);

    //  A worker with credit 1 gets the oldest; an unknown service is refused
    zsock_t *a = zsock_new_dealer (">inproc://af_dispatch_test");
    zsock_t *b = zsock_new_dealer (">inproc://af_dispatch_test");
    assert (a && b);
    s_test_ready (b, "nothing", 1);
    s_test_drain (self, router);
    af_msg_t *got = s_test_recv (b);
    assert (got && got->id == AF_MSG_DISCONNECT);
    af_msg_destroy (&got);
    s_test_ready (a, "matcher", 1);
    s_test_drain (self, router);
    got = s_test_recv (a);
    assert (got && got->id == AF_MSG_RESOLVE && streq (got->program, "one") && got->has_rid);
    size_t workers, waiting, inflight;
    af_dispatch_stats (self, &workers, &waiting, &inflight);
    assert (workers == 1 && waiting == 1 && inflight == 1);

    //  Its answer completes the request (by our rid) and frees the credit
    af_msg_t *answer = s_test_answer (got->rid);
    af_msg_destroy (&got);
    s_test_send (a, &answer);
    s_test_drain (self, router);
    assert (seen.calls == 1 && seen.last_slot == 1 && seen.last_id == AF_MSG_RESOLVED);
    got = s_test_recv (a);
    assert (got && streq (got->program, "two"));
    uint8_t two_rid [AF_ID_SIZE];
    memcpy (two_rid, got->rid, AF_ID_SIZE);
    af_msg_destroy (&got);

    //  An answer from a worker that does not hold the request is dropped
    s_test_ready (b, "matcher", 2);
    s_test_drain (self, router);
    answer = s_test_answer (two_rid);
    s_test_send (b, &answer);
    s_test_drain (self, router);
    assert (seen.calls == 1);

    //  a goes silent: after heartbeat x liveness it is removed and its
    //  request goes to b, ahead of a newer one
    msg = s_test_request ("three");
    assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, 3) == AF_OK);
    got = s_test_recv (b);                  //  b had free credit: "three" went at once
    assert (got && streq (got->program, "three"));
    af_msg_destroy (&got);
    for (int i = 0; i < 4; i++) {
        zclock_sleep (40);
        af_msg_t *ping = af_msg_new (AF_MSG_PING);
        s_test_send (b, &ping);
        s_test_drain (self, router);
        got = s_test_recv (b);              //  PONG
        assert (got && got->id == AF_MSG_PONG);
        af_msg_destroy (&got);
    }
    af_dispatch_tick (self, zclock_mono ());
    got = s_test_recv (b);
    assert (got && streq (got->program, "two"));
    af_msg_destroy (&got);
    af_dispatch_stats (self, &workers, &waiting, &inflight);
    assert (workers == 1 && waiting == 0 && inflight == 2);
    //  a is unknown now: whatever it sends, it is told to start over
    answer = s_test_answer (two_rid);
    s_test_send (a, &answer);
    s_test_drain (self, router);
    got = s_test_recv (a);
    assert (got && got->id == AF_MSG_DISCONNECT && seen.calls == 1);
    af_msg_destroy (&got);

    //  A worker's ERROR is an answer too; the rest time out as E_UNAVAILABLE
    answer = af_msg_error (AF_E_UNKNOWN_PROGRAM, two_rid, "no such program");
    s_test_send (b, &answer);
    s_test_drain (self, router);
    assert (seen.calls == 2 && seen.last_slot == 2 && seen.last_id == AF_MSG_ERROR
            && seen.last_code == AF_E_UNKNOWN_PROGRAM);
    af_dispatch_tick (self, zclock_mono () + config.request_timeout_ms + 1);
    assert (seen.calls == 3 && seen.last_slot == 3 && seen.last_code == AF_E_UNAVAILABLE);
    af_dispatch_stats (self, &workers, &waiting, &inflight);
    assert (waiting == 0 && inflight == 0);

    //  Requests open at destruction are dropped, not completed
    msg = s_test_request ("four");
    assert (af_dispatch_submit (self, "matcher", &msg, s_test_done, &seen, 4) == AF_OK);
    af_dispatch_destroy (&self);
    assert (seen.calls == 3);
    zsock_destroy (&a);
    zsock_destroy (&b);
    zsock_destroy (&router);

    s_test_timeouts_pump_the_queue ();
    if (verbose)
        printf ("OK\n");
}
