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

    A REQ_RETRY request (GET and PAY_CONFIRM, idempotent by their program
    and intent) does not end on a 5xx or on silence: it is sent again
    after a back-off (node_backoff_ms: doubling, capped, jittered, as the
    automatic login does), and again on every new session (a broker that
    was killed and restarted never answers what the old one took), until
    an answer that is not a 5xx or the user's deadline. Its CLI client is
    told each time why (a "progress" reply, then the final one).
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

int
node_backoff_ms (uint32_t failures, int min_ms, int max_ms)
{
    int wait = min_ms;
    for (uint32_t i = 1; i < failures && wait < max_ms; i++)
        wait *= 2;
    if (wait > max_ms)
        wait = max_ms;
    return wait / 2 + (int) randombytes_uniform ((uint32_t) (wait - wait / 2) + 1);
}

//  A request's deadline for an answer once sent: the request timeout, or
//  the user's deadline if that comes first
static int64_t
s_answer_deadline (af_node_t *self, pending_t *pending, int64_t now)
{
    int64_t deadline = now + self->config.request_timeout_ms;
    if (pending->retry_until && pending->retry_until < deadline)
        deadline = pending->retry_until;
    return deadline;
}

//  May the request go now?
static bool
s_may_send (af_node_t *self, pending_t *pending)
{
    if (!self->connected)
        return false;
    if (pending->not_before && zclock_mono () < pending->not_before)
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
    if (s_may_send (self, pending) && node_send (self, msg) == 0) {
        pending->sent = msg;
        pending->attempts = 1;
    }
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

pending_t *
node_request_retry (af_node_t *self, node_answer_fn *on_answer, unsigned flags, zframe_t *client,
                    af_msg_t *msg, int64_t retry_until)
{
    pending_t *pending = node_request (self, on_answer, flags | REQ_RETRY, client, msg);
    pending->retry_until = retry_until;
    //  Unsent, it waits for the connection up to the user's deadline
    pending->deadline = pending->sent? s_answer_deadline (self, pending, zclock_mono ()): retry_until;
    return pending;
}

//  Tell the request's CLI client that it is sent again, and why
static void
s_progress (af_node_t *self, pending_t *pending, int wait)
{
    if (!pending->client)
        return;
    json_t *doc = json_pack ("{s:s, s:s, s:i, s:i, s:s}", "retrying",
                             af_msg_command_name ((pending->unsent? pending->unsent: pending->sent)->id),
                             "reason", pending->retry_why, "inMs", wait, "attempt", (int) pending->attempts + 1,
                             "rid", pending->hex);
    char *text = json_dumps (doc, JSON_COMPACT);
    json_decref (doc);
    zframe_send (&pending->client, self->ctl, ZFRAME_MORE | ZFRAME_REUSE);
    zstr_sendm (self->ctl, "progress");
    zstr_send (self->ctl, text? text: "{}");
    free (text);
}

//  A REQ_RETRY request failed for why: send it again after a back-off if
//  its deadline allows. True if it will be sent again (it goes on).
static bool
s_retry (af_node_t *self, pending_t *pending, const char *why)
{
    int64_t now = zclock_mono ();
    if (!(pending->flags & REQ_RETRY) || now >= pending->retry_until)
        return false;
    int wait = node_backoff_ms (pending->attempts? pending->attempts: 1, NODE_PAY_RETRY_MIN_MS,
                                NODE_PAY_RETRY_MAX_MS);
    if (now + wait >= pending->retry_until)
        return false;                   //  it could not be answered in time
    if (pending->sent) {
        af_msg_destroy (&pending->unsent);
        pending->unsent = pending->sent;
        pending->sent = NULL;
    }
    pending->not_before = now + wait;
    pending->deadline = pending->retry_until;
    snprintf (pending->retry_why, sizeof pending->retry_why, "%s", why);
    zsys_warning ("node: %s (rid %s): %s; sending it again in %d ms (attempt %u)",
                  af_msg_command_name (pending->unsent->id), pending->hex, why, wait, pending->attempts + 1);
    s_progress (self, pending, wait);
    return true;
}

void
node_requests_renew (af_node_t *self)
{
    for (pending_t *p = (pending_t *) zlistx_first (self->requests); p;
         p = (pending_t *) zlistx_next (self->requests))
        if ((p->flags & REQ_RETRY) && p->sent && !p->unsent) {
            p->unsent = p->sent;
            p->sent = NULL;
            p->not_before = 0;
            p->deadline = p->retry_until;
            snprintf (p->retry_why, sizeof p->retry_why, "a new session with the broker (its answer to the "
                      "last one may be lost)");
            zsys_info ("node: %s (rid %s): %s; sending it again", af_msg_command_name (p->unsent->id), p->hex,
                       p->retry_why);
            s_progress (self, p, 0);
        }
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
            p->not_before = 0;
            p->attempts++;
            p->deadline = s_answer_deadline (self, p, zclock_mono ());
        }
}

void
node_requests_resend (af_node_t *self, int wait_ms)
{
    int64_t now = zclock_mono ();
    for (pending_t *p = (pending_t *) zlistx_first (self->requests); p;
         p = (pending_t *) zlistx_next (self->requests))
        if (p->sent && !p->unsent) {
            p->unsent = p->sent;
            p->sent = NULL;
            p->not_before = wait_ms? now + wait_ms: 0;
            p->deadline = now + wait_ms + self->config.request_timeout_ms;
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
        if (p->client && (p->flags & REQ_RETRY))
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE, "no answer by the deadline after %u attempt%s%s%s",
                            p->attempts, p->attempts == 1? "": "s", *p->retry_why? "; the last retry: ": "",
                            p->retry_why);
        else
        if (p->client)
            node_ctl_error (self, p->client, AF_E_UNAVAILABLE, "the broker did not answer within %d ms",
                            self->config.request_timeout_ms);
        p->on_answer (self, p, NULL);
        s_request_delete (self, p);
    }
    zlistx_destroy (&ended);
}

//  Past its deadline: ended, unless a REQ_RETRY request sent and not
//  answered goes again
static bool
s_expired (af_node_t *self, pending_t *pending, int64_t now)
{
    if (now <= pending->deadline)
        return false;
    if (pending->sent && (pending->flags & REQ_RETRY) && pending->deadline < pending->retry_until) {
        char why [64];
        snprintf (why, sizeof why, "no answer within %d ms", self->config.request_timeout_ms);
        if (s_retry (self, pending, why))
            return false;
    }
    return true;
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
    //  A 5xx for a request that may go again, or a session the broker
    //  does not know (a broker restarted): again, after a back-off. One
    //  that waits to go again already (a copy sent on an earlier session
    //  answered late) goes on waiting.
    char why [AF_MAX_REASON + 32];
    snprintf (why, sizeof why, "%s: %s", af_code_name ((int) answer->code), answer->reason);
    bool retriable = answer->id == AF_MSG_ERROR && (pending->flags & REQ_RETRY)
                  && (answer->code >= 500 || answer->code == AF_E_NOT_LOGGED_IN);
    bool again = retriable && (pending->sent? s_retry (self, pending, why):
                               pending->unsent && zclock_mono () < pending->retry_until);
    if (!again && pending->on_answer (self, pending, answer))
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
