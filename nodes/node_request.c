/*  =========================================================================
    node_request - requests to the broker and their answers

    A request is a message with a fresh rid, a completion callback, flags
    saying when it may go, a deadline, and the CLI client waiting for it
    (if any). The broker connection is a DEALER with ZMQ_IMMEDIATE, so a
    send while the broker is unreachable fails at once instead of piling
    up stale messages; a request that cannot go yet waits (unsent) and is
    sent, oldest first, as soon as its flags allow: one predicate,
    s_may_send, decides that for every request, at every change of state
    and every tick. Without flags a request needs only the connection
    (REGISTER, LOGIN); REQ_SESSION waits for LOGIN_OK, REQ_AFTER_REPORTS
    also for the reports queued before it to be confirmed (S1.8: the
    broker hears of this device's changes before it answers a SYNC).

    Every request ends exactly once: its answer, its deadline, or the end
    of its session (REQ_PER_SESSION); the callback runs then, and a CLI
    client that got no answer is told why. Every CLI request gets exactly
    one reply.
    =========================================================================
*/
#include "node_int.h"

#include <sodium.h>

static void
s_pending_free (void **item)
{
    pending_t *pending = (pending_t *) *item;
    if (pending) {
        zframe_destroy (&pending->client);
        af_msg_destroy (&pending->unsent);
        af_msg_destroy (&pending->sent);
        node_cli_destroy (&pending->retry);
        free (pending);
        *item = NULL;
    }
}

void
node_requests_new (af_node_t *self)
{
    self->requests = zlistx_new ();
    zlistx_set_destructor (self->requests, s_pending_free);
    self->pending = zhashx_new ();
}

void
node_requests_destroy (af_node_t *self)
{
    zhashx_destroy (&self->pending);
    zlistx_destroy (&self->requests);
}

//  May the request go now?
static bool
s_may_send (af_node_t *self, pending_t *pending)
{
    if (!self->connected)
        return false;
    if ((pending->flags & (REQ_SESSION | REQ_AFTER_REPORTS)) && !self->logged_in)
        return false;
    if ((pending->flags & REQ_AFTER_REPORTS) && self->catching_up)
        return false;
    return true;
}

pending_t *
node_request (af_node_t *self, node_answer_fn *on_answer, unsigned flags, zframe_t *client,
              af_msg_t *msg)
{
    assert (self);
    assert (on_answer);
    pending_t *pending = (pending_t *) zmalloc (sizeof (pending_t));
    assert (pending);
    af_msg_set_rid_random (msg);
    sodium_bin2hex (pending->hex, sizeof pending->hex, msg->rid, AF_ID_SIZE);
    pending->on_answer = on_answer;
    pending->flags = flags;
    pending->client = client? zframe_dup (client): NULL;
    int64_t now = zclock_mono ();
    pending->deadline = now + self->config.request_timeout_ms;
    if (s_may_send (self, pending) && node_send (self, msg) == 0)
        pending->sent = msg;
    else {
        pending->unsent = msg;
        //  Waiting for a connection or a login: a little, not the whole
        //  timeout; waiting for the reports: as long as an answer
        bool reports = self->connected && self->logged_in && (flags & REQ_AFTER_REPORTS) && self->catching_up;
        if (!reports && self->config.request_timeout_ms > NODE_UNSENT_WAIT_MS)
            pending->deadline = now + NODE_UNSENT_WAIT_MS;
    }
    pending->handle = zlistx_add_end (self->requests, pending);
    zhashx_insert (self->pending, pending->hex, pending);
    return pending;
}

void
node_requests_flush (af_node_t *self)
{
    for (pending_t *p = (pending_t *) zlistx_first (self->requests); p;
         p = (pending_t *) zlistx_next (self->requests))
        if (p->unsent && s_may_send (self, p) && node_send (self, p->unsent) == 0) {
            af_msg_destroy (&p->sent);
            p->sent = p->unsent;
            p->unsent = NULL;
            p->deadline = zclock_mono () + self->config.request_timeout_ms;
        }
}

void
node_requests_resend (af_node_t *self)
{
    int64_t now = zclock_mono ();
    for (pending_t *p = (pending_t *) zlistx_first (self->requests); p;
         p = (pending_t *) zlistx_next (self->requests))
        if (p->sent && !p->unsent) {
            p->unsent = p->sent;
            p->sent = NULL;
            p->deadline = now + self->config.request_timeout_ms;
        }
}

pending_t *
node_request_find (af_node_t *self, const char *hex)
{
    return (pending_t *) zhashx_lookup (self->pending, hex);
}

//  The request is finished: forget it
static void
s_request_delete (af_node_t *self, pending_t *pending)
{
    zhashx_delete (self->pending, pending->hex);
    zlistx_delete (self->requests, pending->handle);
}

//  End the requests a test selects, each with its callback (no answer)
static void
s_requests_end (af_node_t *self, bool (*test) (af_node_t *, pending_t *, int64_t), int64_t now)
{
    zlistx_t *ended = zlistx_new ();
    for (pending_t *p = (pending_t *) zlistx_first (self->requests); p;
         p = (pending_t *) zlistx_next (self->requests))
        if (test (self, p, now))
            zlistx_add_end (ended, p);
    for (pending_t *p = (pending_t *) zlistx_first (ended); p; p = (pending_t *) zlistx_next (ended)) {
        if (p->client && p->unsent && !self->connected)
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE,
                            "not connected to the broker at %s (is it running?)", self->endpoint);
        else
        if (p->client && p->unsent && !self->logged_in)
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE, "not logged in to the broker at %s%s%s",
                            self->endpoint, *self->login_error? ": ": " yet (logging in again)",
                            self->login_error);
        else
        if (p->client && p->unsent)
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE,
                            "the broker did not confirm this device's install reports within %d ms",
                            self->config.request_timeout_ms);
        else
        if (p->client)
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE, "the broker did not answer within %d ms",
                            self->config.request_timeout_ms);
        p->on_answer (self, p, NULL);
        s_request_delete (self, p);
    }
    zlistx_destroy (&ended);
}

static bool
s_expired (af_node_t *self, pending_t *pending, int64_t now)
{
    (void) self;
    return now > pending->deadline;
}

static bool
s_per_session (af_node_t *self, pending_t *pending, int64_t now)
{
    (void) self;
    (void) now;
    return (pending->flags & REQ_PER_SESSION) != 0;
}

void
node_requests_expire (af_node_t *self)
{
    s_requests_end (self, s_expired, zclock_mono ());
}

void
node_requests_session_end (af_node_t *self)
{
    s_requests_end (self, s_per_session, 0);
}

void
node_requests_answer (af_node_t *self, af_msg_t *answer)
{
    char hex [AF_ID_HEX + 1];
    sodium_bin2hex (hex, sizeof hex, answer->rid, AF_ID_SIZE);
    pending_t *pending = node_request_find (self, hex);
    if (!pending) {
        zsys_warning ("node: %s for an unknown request", af_msg_command_name (answer->id));
        return;
    }
    if (pending->on_answer (self, pending, answer))
        s_request_delete (self, pending);
    //  The broker no longer knows our session: whatever the request was
    if (answer->id == AF_MSG_ERROR && answer->code == AF_E_NOT_LOGGED_IN)
        node_session_end (self);
}

bool
node_answer_failed (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!answer)
        return true;                    //  the client was told why
    if (answer->id != AF_MSG_ERROR)
        return false;
    if (pending->client)
        node_ctl_reply (self, pending->client, false, node_error_doc ((int) answer->code, answer->reason));
    return true;
}
