/*  =========================================================================
    broker_forward - FORWARD: a request about another broker's shard

    protocol/SPEC.md 5.37 is the message; docs/ARCHITECTURE.md "Friends"
    and "Between shards" the design. This is the asking side's half: a
    FORWARD goes to the owner of its shard as our view of the shard map
    names it, on our DEALER to that broker (the mesh REPL uses), and waits
    here, by its rid, for the FORWARD_REPLY the owner sends back on its
    own DEALER to us. Whatever happens, the caller's completion is called
    exactly once: with the answer, or with AF_E_UNAVAILABLE when the owner
    did not answer within AF_CLUSTER_FORWARD_MS (it died, it is stopped,
    the shard has no owner), so a node is answered 503 and tries again,
    never answered wrongly. An owner that says it no longer owns the shard
    (the map moved) makes us send again to the owner our map names then,
    at most AF_CLUSTER_FORWARD_TRIES times in all.

    Bounds: at most AF_CLUSTER_FORWARDS FORWARDs in flight to one broker
    (past that: AF_E_UNAVAILABLE at once); a FORWARD's body at most
    AF_MAX_FORWARD_BODY (the codec refuses more). The serving half, what
    each operation does on the owner, is in broker_xacct.c.
    =========================================================================
*/
#include "broker_xacct.h"

struct _forward_t {
    char hex [AF_ID_HEX + 1];       //  the rid, our key
    char peer [AF_CLUSTER_ID + 1];  //  where it went last ("" between sends)
    uint32_t shard;
    af_msg_t *request;              //  kept to send again
    bool held;                      //  the first send waits for our batch's commit
    uint32_t tries;
    bool again;                     //  the owner said it is not: send again at the tick
    char refused_by [AF_CLUSTER_ID + 1];    //  ... and that broker was it
    int64_t deadline;
    forward_fn *done;
    void *arg;
};

static void
s_forward_free (void **item)
{
    forward_t *fwd = (forward_t *) *item;
    if (fwd) {
        af_msg_destroy (&fwd->request);
        free (fwd);
        *item = NULL;
    }
}

//  Send it to the shard's owner as our map has it: AF_OK or AF_E_UNAVAILABLE
static int
s_send (af_broker_t *self, forward_t *fwd)
{
    shard_t *state = &self->shards [fwd->shard];
    peer_t *peer = *state->owner && !streq (state->owner, self->id)?
                   (peer_t *) zhashx_lookup (self->peers, state->owner): NULL;
    if (!peer || !peer->dealer || peer->forwards >= AF_CLUSTER_FORWARDS)
        return AF_E_UNAVAILABLE;
    fwd->request->epoch = state->epoch;
    zframe_t *frame = af_msg_encode (fwd->request);
    if (!frame || zframe_size (frame) > AF_MAX_MSG) {
        zframe_destroy (&frame);
        return AF_E_UNAVAILABLE;
    }
    if (broker_send_peer (self, peer->id, frame, fwd->held && fwd->tries == 0))
        return AF_E_UNAVAILABLE;
    snprintf (fwd->peer, sizeof fwd->peer, "%s", peer->id);
    peer->forwards++;
    fwd->tries++;
    fwd->again = false;
    return AF_OK;
}

//  It is no longer in flight to fwd->peer
static void
s_landed (af_broker_t *self, forward_t *fwd)
{
    peer_t *peer = *fwd->peer? (peer_t *) zhashx_lookup (self->peers, fwd->peer): NULL;
    if (peer && peer->forwards)
        peer->forwards--;
    *fwd->peer = 0;
}

//  Finish it: out of the table, then its completion (which may forward again)
static void
s_finish (af_broker_t *self, forward_t *fwd, int code, af_msg_t *reply)
{
    s_landed (self, fwd);
    forward_fn *done = fwd->done;
    void *arg = fwd->arg;
    zhashx_delete (self->forwards, fwd->hex);
    done (self, arg, code, reply);
}

int
broker_forward (af_broker_t *self, uint32_t shard, af_msg_t **request_p, bool held, forward_fn *done, void *arg)
{
    assert (self && request_p && *request_p && done);
    if (!self->cluster || shard >= self->shard_count) {
        af_msg_destroy (request_p);
        return AF_E_UNAVAILABLE;
    }
    if (!self->forwards) {
        self->forwards = zhashx_new ();
        zhashx_set_destructor (self->forwards, s_forward_free);
    }
    forward_t *fwd = (forward_t *) zmalloc (sizeof (forward_t));
    assert (fwd);
    fwd->request = *request_p;
    *request_p = NULL;
    af_msg_set_rid_random (fwd->request);
    fwd->request->shard = shard;
    sodium_bin2hex (fwd->hex, sizeof fwd->hex, fwd->request->rid, AF_ID_SIZE);
    fwd->shard = shard;
    fwd->held = held;
    fwd->deadline = zclock_mono () + AF_CLUSTER_FORWARD_MS;
    fwd->done = done;
    fwd->arg = arg;
    if (s_send (self, fwd) != AF_OK) {
        void *item = fwd;
        s_forward_free (&item);
        return AF_E_UNAVAILABLE;
    }
    zhashx_insert (self->forwards, fwd->hex, fwd);
    return AF_OK;
}

void
broker_forward_answer (af_broker_t *self, const char *from, af_msg_t *reply)
{
    char hex [AF_ID_HEX + 1];
    sodium_bin2hex (hex, sizeof hex, reply->rid, AF_ID_SIZE);
    forward_t *fwd = self->forwards && reply->has_rid? (forward_t *) zhashx_lookup (self->forwards, hex): NULL;
    if (!fwd || !streq (fwd->peer, from))
        return;                         //  late (answered by the timeout), or not for one in flight there
    if (reply->code == AF_FORWARD_NOT_OWNER) {
        //  Our map is behind (or theirs): the owner our map names next time
        s_landed (self, fwd);
        snprintf (fwd->refused_by, sizeof fwd->refused_by, "%s", from);
        if (fwd->tries >= AF_CLUSTER_FORWARD_TRIES || zclock_mono () >= fwd->deadline)
            s_finish (self, fwd, AF_E_UNAVAILABLE, NULL);
        else
        if (!streq (self->shards [fwd->shard].owner, from) && s_send (self, fwd) == AF_OK)
            ;                           //  sent to the owner we know now
        else
            fwd->again = true;          //  at the tick, once our map has moved on
        return;
    }
    s_finish (self, fwd, reply->code == 0? AF_OK: (int) reply->code, reply);
}

void
broker_forward_tick (af_broker_t *self, int64_t now)
{
    if (!self->forwards || zhashx_size (self->forwards) == 0)
        return;
    zlistx_t *ended = zlistx_new ();
    for (forward_t *fwd = (forward_t *) zhashx_first (self->forwards); fwd;
         fwd = (forward_t *) zhashx_next (self->forwards)) {
        if (now >= fwd->deadline)
            zlistx_add_end (ended, fwd);
        else
        if (fwd->again && *self->shards [fwd->shard].owner
        &&  !streq (self->shards [fwd->shard].owner, fwd->refused_by))
            s_send (self, fwd);         //  failing, the deadline decides
    }
    broker_batch_begin (self);
    for (forward_t *fwd = (forward_t *) zlistx_first (ended); fwd; fwd = (forward_t *) zlistx_next (ended)) {
        if (self->config.verbose)
            zsys_debug ("broker: FORWARD %s of shard %u: no answer from %s in %d ms", fwd->request->op, fwd->shard,
                        *fwd->peer? fwd->peer: "(no owner)", AF_CLUSTER_FORWARD_MS);
        s_finish (self, fwd, AF_E_UNAVAILABLE, NULL);
    }
    broker_batch_end (self);
    zlistx_destroy (&ended);
}

void
broker_forward_stop (af_broker_t *self)
{
    if (!self->forwards)
        return;
    //  Each completion once, with no answer (their nodes are gone too)
    while (zhashx_size (self->forwards)) {
        forward_t *fwd = (forward_t *) zhashx_first (self->forwards);
        s_finish (self, fwd, AF_E_UNAVAILABLE, NULL);
    }
    zhashx_destroy (&self->forwards);
}
