/*  =========================================================================
    af_dispatch - the broker's worker core, Majordomo style (SPEC 5.13, 8.5)

    Workers (the matcher today; contacts and payments to come) connect to
    the broker's backend ROUTER and offer one service each with READY and a
    credit: how many requests they may hold at once. The broker's handlers
    submit requests with a completion function; this class queues them per
    service in arrival order, gives each to the live worker of its service
    with free credit and the fewest requests in flight, and calls the
    completion exactly once: with the worker's answer (RESOLVED, or an
    ERROR it sent), or with an ERROR of its own when no worker answered
    within the request timeout (E_UNAVAILABLE). A timed-out request frees
    its worker's credit at once (a late answer is then refused), and every
    event that frees credit or adds work gives waiting requests to workers
    with credit, so a queue never waits while a worker could take it.

    A worker silent for heartbeat x liveness (the slower of the broker's
    and its own heartbeat) is removed; its requests go back to the front of
    their queue, oldest first, for another worker, and a late answer from
    it is dropped (the worker is told to send READY again). Each request is
    sent to one worker at a time; nothing here counts across requests, so
    the class needs no state beyond what is in flight.
    =========================================================================
*/
#ifndef AF_DISPATCH_H_INCLUDED
#define AF_DISPATCH_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "af_msg.h"

typedef struct _af_dispatch_t af_dispatch_t;

//  A request's completion: reply is the worker's answer or an ERROR; the
//  function may take it (set *reply_p to NULL), else it is destroyed after
//  the call. slot is the value given to submit (which target, which
//  program), so one context can serve many requests.
typedef void (af_dispatch_fn) (void *arg, uint32_t slot, af_msg_t **reply_p);

typedef struct {
    int heartbeat_ms;           //  PING interval expected of workers
    int liveness;               //  missed intervals before a worker is dead
    int request_timeout_ms;     //  a request with no answer gets E_UNAVAILABLE
    size_t max_queue;           //  requests waiting for a worker, all services
} af_dispatch_config_t;

//  Create the core over the backend ROUTER (not owned; messages go out
//  on it). NULL on failure.
af_dispatch_t *af_dispatch_new (zsock_t *backend, const af_dispatch_config_t *config);

//  Destroy. Requests still open are dropped without their completion
//  being called. Sets *self_p to NULL.
void af_dispatch_destroy (af_dispatch_t **self_p);

//  Accept READY for this service name (at most AF_MAX_NAME bytes). A
//  worker offering another service is told DISCONNECT.
void af_dispatch_service (af_dispatch_t *self, const char *service);

//  Submit a request (takes *msg_p, setting it to NULL): it goes to a
//  worker now if one has credit, else waits its turn. done is called
//  exactly once, later (never from inside submit). Returns AF_OK, or
//  AF_E_UNAVAILABLE when the queue is full or the service unknown (then
//  done is never called and the message is destroyed).
int af_dispatch_submit (af_dispatch_t *self, const char *service, af_msg_t **msg_p,
                        af_dispatch_fn *done, void *arg, uint32_t slot);

//  How many more requests the queue takes now (max_queue - waiting).
size_t af_dispatch_room (af_dispatch_t *self);

//  Handle one message from the backend socket: the routing frame, the body
//  (NULL if none; its User-Id metadata names the worker's key) and how
//  many further frames followed it. Takes both frames.
void af_dispatch_message (af_dispatch_t *self, zframe_t **routing_p, zframe_t **body_p, size_t extra);

//  Expire silent workers and requests past their deadline; call it every
//  heartbeat or more often. now is zclock_mono ().
void af_dispatch_tick (af_dispatch_t *self, int64_t now);

//  Counters for status: live workers, requests waiting and in flight.
void af_dispatch_stats (af_dispatch_t *self, size_t *workers, size_t *waiting, size_t *inflight);

//  Self test
void af_dispatch_test (bool verbose);

#endif
