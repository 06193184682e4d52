/*  =========================================================================
    broker_intents - a write into another broker's shard, exactly once

    Three writes land in another account's keys, which in a cluster may be
    another broker's shard: a recommendation (RECOMMEND into every device's
    outbox of the recipient, broker_xacct.c), a friend's notice (GET from a
    contact: "friend-requested", ... into the outbox of the friend's device
    that has the program, broker_xnotice.c), and that friend's install
    record for the asker (the ask of that notice closed on the friend's
    broker: the RECORD into the asking device's outbox, broker_xrecord.c).
    All go the same way, built here once (for the record, "the asker"
    below is the friend's broker, writing in the friend's shard, the ask's):

    1. The asker writes a durable *intent* (its kind, an ID, the recipient
       account, the program and the payload to apply) into its own shard,
       the shard of the account that asked (af_friends xacct_intents), in
       the same group commit as its own side of the request; so it is
       replicated to that shard's followers before the node hears anything.
    2. After that commit, FORWARD (op by kind, intent = the ID, body = the
       payload) goes to the owner of the recipient's shard.
    3. The owner applies it idempotently by the ID (a recommendation: its
       applied-intent record; a notice, a record: af_paynotes' key) in its own group
       commit, and answers after its followers have it.
    4. The asker deletes the intent on a final answer. Until then, every
       AF_INTENT_RESEND_MS, whoever owns the asker's shard (the asker, or
       the follower that took it over after a SIGKILL) sends it again; if
       the recipient's shard is ours by then, it is applied here, by the
       same record, so once.

    What differs per kind is in the table below: the op, the function
    that applies it on our own store, which answers are final, whether a
    resend's answer is kept for the node's retry (a recommendation's node
    is told how it went; nobody waits for a notice or a record), and how long an
    intent is tried at most.
    =========================================================================
*/
#include "broker_xacct.h"

typedef struct {
    af_xintent_kind_t kind;
    const char *op;                 //  the FORWARD's op
    const char *noun;               //  for the log
    const char *done;               //  ... what a 0 says
    const char *yes;                //  ... what the answer's yes says
    xintent_apply_fn *apply;        //  on our own store (the recipient's shard is ours)
    bool keep;                      //  a resend's answer kept for the node's retry
    bool quota_final;               //  470 is an answer (nothing queued), not "try again"
    uint64_t try_ms;                //  an unanswered intent is given up this old (0: never)
} kind_t;

static const kind_t s_kinds [] = {
    { AF_XINTENT_RECOMMEND, "recommend", "recommendation", "queued", "refused", xacct_recommend_apply, true, true,
      0 },
    { AF_XINTENT_NOTICE, "notice", "notice", "told", "told before", xnotice_apply, false, false, AF_NOTICE_TRY_MS },
    { AF_XINTENT_RECORD, "record", "install record", "queued", "queued before", xrecord_apply, false, false,
      AF_NOTICE_TRY_MS },
};

static const kind_t *
s_kind (af_xintent_kind_t kind)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds [0]; i++)
        if (s_kinds [i].kind == kind)
            return &s_kinds [i];
    return NULL;
}

static const kind_t *
s_kind_of_op (const char *op)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds [0]; i++)
        if (streq (s_kinds [i].op, op))
            return &s_kinds [i];
    return NULL;
}

//  Whether the keys of account are ours
static bool
s_here (af_broker_t *self, const char *account)
{
    uint32_t shard;
    return broker_cluster_serves (self, account, &shard);
}

static af_store_t *
s_store (af_broker_t *self)
{
    return af_registry_store (self->registry);
}

bool
xintent_final (af_xintent_kind_t kind, int code)
{
    const kind_t *k = s_kind (kind);
    assert (k);
    return code != AF_E_UNAVAILABLE && code != AF_E_INTERNAL && (code != AF_E_QUOTA || k->quota_final);
}

int
xintent_forward (af_broker_t *self, af_xintent_kind_t kind, const uint8_t *id, const char *to, const char *program,
                 const void *payload, size_t size, bool held, forward_fn *done, void *arg)
{
    const kind_t *k = s_kind (kind);
    assert (k && size <= AF_MAX_ITEM);
    uint32_t shard;
    if (broker_cluster_serves (self, to, &shard))
        return AF_E_UNAVAILABLE;        //  ours: the resend applies it here
    af_msg_t *request = af_msg_new (AF_MSG_FORWARD);
    af_strcopy (request->op, sizeof request->op, k->op);
    af_strcopy (request->account, sizeof request->account, to);
    af_strcopy (request->program, sizeof request->program, program);
    sodium_bin2hex (request->intent, sizeof request->intent, id, AF_ID_SIZE);
    request->body = (uint8_t *) malloc (size + 1);
    assert (request->body);
    if (size)
        memcpy (request->body, payload, size);
    request->body_size = (uint32_t) size;
    return broker_forward (self, shard, &request, held, done, arg);
}

//  The first send of an intent nobody waits for, until its answer
typedef struct {
    const kind_t *kind;
    char from [AF_MAX_ACCOUNT + 1];
    char to [AF_MAX_ACCOUNT + 1];
    char program [AF_MAX_PROGRAM + 1];
    uint8_t id [AF_ID_SIZE];
} sent_t;

static void
s_sent (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    sent_t *sent = (sent_t *) arg;
    if (xintent_final (sent->kind->kind, code)) {
        xintent_resolved (self, sent->from, sent->id, false, 0, false);
        zsys_info ("broker: the %s of '%s' for '%s' about %s: %s", sent->kind->noun, sent->from, sent->to,
                   sent->program, code == AF_OK? (reply->yes? sent->kind->yes: sent->kind->done): af_code_name (code));
    }
    else
    if (self->config.verbose)
        zsys_debug ("broker: the %s of '%s' for '%s': %s; sent again", sent->kind->noun, sent->from, sent->to,
                    af_code_name (code));
    free (sent);
}

void
xintent_send (af_broker_t *self, af_xintent_kind_t kind, const char *from, const uint8_t *id, const char *to,
              const char *program, const void *payload, size_t size)
{
    const kind_t *k = s_kind (kind);
    assert (k);
    sent_t *sent = (sent_t *) zmalloc (sizeof (sent_t));
    assert (sent);
    sent->kind = k;
    af_strcopy (sent->from, sizeof sent->from, from);
    af_strcopy (sent->to, sizeof sent->to, to);
    af_strcopy (sent->program, sizeof sent->program, program);
    memcpy (sent->id, id, AF_ID_SIZE);
    //  After our commit; no owner now: the resend, within AF_INTENT_RESEND_MS
    if (xintent_forward (self, kind, id, to, program, payload, size, true, s_sent, sent) != AF_OK)
        free (sent);
    zsys_info ("broker: the %s of '%s' for '%s' about %s goes to the broker of its account", k->noun, from, to,
               program);
}

void
xintent_resolved (af_broker_t *self, const char *from, const uint8_t *id, bool answered, int code, bool yes)
{
    MDB_txn *txn = NULL;
    int rc = af_store_begin (s_store (self), true, &txn)? AF_E_INTERNAL:
             answered? af_friends_intent_answered (self->friends, txn, from, id, code, yes, (uint64_t) zclock_time ()):
             af_friends_intent_pending_del (self->friends, txn, from, id);
    if (rc == AF_OK && af_store_commit (s_store (self), &txn))
        rc = AF_E_INTERNAL;
    af_store_abort (s_store (self), &txn);
    if (rc != AF_OK)
        zsys_warning ("broker: cannot resolve an intent of '%s': it will be sent again (applied once)", from);
}

//  --------------------------------------------------------------------------
//  Sending again: the timer's work

//  One intent to send again (or forget)
typedef struct {
    const kind_t *kind;
    char from [AF_MAX_ACCOUNT + 1];
    char to [AF_MAX_ACCOUNT + 1];
    char program [AF_MAX_PROGRAM + 1];
    uint8_t id [AF_ID_SIZE];
    bool expired;                   //  answered and kept AF_INTENT_KEEP_MS, or tried its kind's try_ms
    bool answered;                  //  ... an answered one (nothing to warn about)
    uint8_t *payload;               //  copied out of the read transaction
    size_t size;
} resent_t;

typedef struct {
    af_broker_t *broker;
    int64_t now;
    zlistx_t *resents;              //  resent_t to send (or forget)
    size_t sends;
} resend_t;

static void
s_resent_free (resent_t **resent_p)
{
    resent_t *resent = *resent_p;
    if (resent) {
        free (resent->payload);
        free (resent);
        *resent_p = NULL;
    }
}

static int
s_intent_resend (const af_xintent_t *intent, void *arg)
{
    resend_t *resend = (resend_t *) arg;
    const kind_t *kind = s_kind (intent->kind);
    if (!kind || !s_here (resend->broker, intent->from))
        return 0;
    uint64_t now = (uint64_t) resend->now;
    bool expired = intent->answered? intent->at + AF_INTENT_KEEP_MS < now:
                   kind->try_ms && intent->at + kind->try_ms < now;
    if (!expired
    &&  (intent->answered || intent->at + AF_INTENT_RESEND_MS > now || intent->size > AF_MAX_ITEM))
        return 0;
    resent_t *resent = (resent_t *) zmalloc (sizeof (resent_t));
    assert (resent);
    resent->kind = kind;
    af_strcopy (resent->from, sizeof resent->from, intent->from);
    af_strcopy (resent->to, sizeof resent->to, intent->to);
    af_strcopy (resent->program, sizeof resent->program, intent->program);
    memcpy (resent->id, intent->id, AF_ID_SIZE);
    resent->expired = expired;
    resent->answered = intent->answered;
    zlistx_add_end (resend->resents, resent);
    if (expired)
        return 0;
    resent->payload = (uint8_t *) malloc (intent->size + 1);
    assert (resent->payload);
    if (intent->size)
        memcpy (resent->payload, intent->payload, intent->size);
    resent->size = intent->size;
    //  At most half the window to one broker per round: the rest next time
    return ++resend->sends >= AF_CLUSTER_FORWARDS / 2;
}

//  A resend's final answer: kept for the node's retry, or the intent forgotten
static void
s_resend_answered (af_broker_t *self, resent_t *resent, int code, bool yes)
{
    xintent_resolved (self, resent->from, resent->id, resent->kind->keep, code == AF_OK? 0: code, code == AF_OK && yes);
    zsys_info ("broker: the %s of '%s' to '%s' sent again was answered (%d%s%s)%s", resent->kind->noun,
               resent->from, resent->to, code == AF_OK? 0: code, code == AF_OK && yes? ", ": "",
               code == AF_OK && yes? resent->kind->yes: "", resent->kind->keep? ": kept for the node's retry": "");
}

static void
s_resent (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    resent_t *resent = (resent_t *) arg;
    if (xintent_final (resent->kind->kind, code))
        s_resend_answered (self, resent, code, code == AF_OK && reply->yes);
    s_resent_free (&resent);
}

//  One intent again: to the recipient's owner, or here if it is ours now
//  (the recipient's shard moved to us: applied once, by its record)
static void
s_resend_one (af_broker_t *self, resent_t *resent)
{
    if (s_here (self, resent->to)) {
        bool yes = false;
        int code = resent->kind->apply (self, resent->to, resent->program, resent->id, resent->payload, resent->size,
                                        &yes);
        if (xintent_final (resent->kind->kind, code))
            s_resend_answered (self, resent, code, yes);
        s_resent_free (&resent);
        return;
    }
    zsys_info ("broker: an unresolved %s of '%s' to '%s' sent again", resent->kind->noun, resent->from, resent->to);
    if (xintent_forward (self, resent->kind->kind, resent->id, resent->to, resent->program, resent->payload,
                         resent->size, false, s_resent, resent) != AF_OK)
        s_resent_free (&resent);        //  no owner to send it to: next round (done not called)
}

void
broker_xacct_resend (af_broker_t *self, int64_t now)
{
    if (!self->cluster || now - self->resend_at < AF_INTENT_RESEND_MS)
        return;
    self->resend_at = now;
    resend_t resend = { self, zclock_time (), zlistx_new (), 0 };
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn) == 0)
        af_friends_intent_pending_each (self->friends, txn, NULL, s_intent_resend, &resend);
    af_store_abort (s_store (self), &txn);
    resent_t *resent;
    broker_batch_begin (self);
    while ((resent = (resent_t *) zlistx_detach (resend.resents, NULL))) {
        if (resent->expired) {
            if (!resent->answered)
                zsys_warning ("broker: the %s of '%s' to '%s' (%s) had no answer in %" PRIu64 " s: given up",
                              resent->kind->noun, resent->from, resent->to, resent->program,
                              resent->kind->try_ms / 1000);
            xintent_resolved (self, resent->from, resent->id, false, 0, false);
            s_resent_free (&resent);
        }
        else
            s_resend_one (self, resent);
    }
    broker_batch_end (self);
    zlistx_destroy (&resend.resents);
}

//  --------------------------------------------------------------------------
//  The owner's side

int
xintent_serve (af_broker_t *self, af_msg_t *msg, af_msg_t *reply, bool *wrote)
{
    const kind_t *kind = s_kind_of_op (msg->op);
    uint8_t id [AF_ID_SIZE];
    if (!kind || !*msg->account || strlen (msg->intent) != AF_ID_HEX || !msg->body_size
    ||  msg->body_size > AF_MAX_ITEM || af_id_from_hex (msg->intent, id) != AF_OK)
        return AF_E_MALFORMED;
    *wrote = true;
    return kind->apply (self, msg->account, msg->program, id, msg->body, msg->body_size, &reply->yes);
}

bool
xintent_op (const char *op)
{
    return s_kind_of_op (op) != NULL;
}
