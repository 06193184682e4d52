/*  =========================================================================
    broker_xnotice - the friend told when the friend lives on another broker

    A GET from a contact tells the contact's device that has the program
    (SPEC 5.47 "The friend told": a NOTIFY "friend-requested", "-paid" or
    "-entitled" in its durable outbox, once per key, af_paynotes). When
    the contact's account is served here, handle_push.c queues it in the
    group commit of the transfer's push. When it lives on another broker's
    shard, that write is an intent (broker_intents.c), as a recommendation
    across brokers is:

    * Asker's broker (xnotice_send, from s_push_commit): the intent, kind
      notice, ID = the notice's key (the payment intent's ID, or the GET's
      rid), recipient = the contact's account, the program, payload = the
      encoded NOTIFY as handle_pay.c made it (carried as it is: whatever
      the item holds travels), into the asker's shard, in the push's
      group commit; so the asker's PUSH_ACCEPTED implies it is on disk
      and at that shard's followers. Then FORWARD notice, after the commit;
      deleted on a final answer, sent again every AF_INTENT_RESEND_MS
      until then, given up after AF_NOTICE_TRY_MS (logged). A second
      notice under the same key while the first is unresolved (a "paid"
      then "entitled" of one payment intent) keeps the first.

    * Contact's broker (xnotice_apply, FORWARD notice, or the asker's
      resend once the contact's shard is its own): trusts the peer for no
      more than the op allows: the payload must be a NOTIFY of a kind
      "friend-...", at most AF_MAX_ITEM bytes, and it goes only into the
      outbox of a device of the named account that has the named program
      (the first in its install list: the asker's broker does not know
      the contact's devices), through af_paynotes, so once per key
      however often it comes. Answers: 0 queued (yes: it had been
      before, nothing queued), 465 no device of the account has the
      program (nobody told: final), 470 that device's outbox is full (sent
      again later), 400 malformed, 500 the store failed.

    Nobody waits for the notice: the asker's GET was answered when its
    push committed; the notice follows as soon as the contact's broker
    answers, or within AF_INTENT_RESEND_MS of it coming back.
    =========================================================================
*/
#include "broker_xacct.h"

static af_store_t *
s_store (af_broker_t *self)
{
    return af_registry_store (self->registry);
}

//  --------------------------------------------------------------------------
//  The contact's broker

typedef struct {
    const char *program;
    char *device;
} where_t;

static int
s_where (const char *device_id, const af_msg_t *app, void *arg)
{
    where_t *where = (where_t *) arg;
    if (!*device_id || !streq (app->program, where->program))
        return 0;
    af_strcopy (where->device, AF_ID_HEX + 1, device_id);
    return 1;
}

int
xnotice_device (af_broker_t *self, const char *account, const char *program, char device [AF_ID_HEX + 1])
{
    *device = 0;
    where_t where = { program, device };
    if (af_lists_each (self->lists, account, NULL, s_where, &where) != AF_OK) {
        *device = 0;
        return AF_E_INTERNAL;
    }
    af_device_t described;
    if (*device && af_registry_device (self->registry, account, device, &described) != AF_OK)
        *device = 0;                    //  a list of a device that is gone: not one to tell
    return *device? AF_OK: AF_E_NOT_THERE;
}

int
xnotice_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *key, const void *item,
               size_t size, bool *told_before)
{
    *told_before = false;
    char err [AF_MAX_REASON + 1];
    af_msg_t *decoded = NULL;
    bool notice = size && size <= AF_MAX_ITEM && *program
               && af_msg_decode (item, size, &decoded, err, sizeof err, NULL, NULL) == AF_OK
               && decoded->id == AF_MSG_NOTIFY && strncmp (decoded->kind, "friend-", 7) == 0;
    af_msg_destroy (&decoded);
    if (!notice)
        return AF_E_MALFORMED;
    char device [AF_ID_HEX + 1];
    int code = xnotice_device (self, to, program, device);
    if (code == AF_E_NOT_THERE)
        zsys_info ("broker: a notice for '%s' about %s: no device of it has the program now; nobody told", to,
                   program);
    if (code != AF_OK)
        return code;
    bool queued = false;
    code = af_paynotes_put (self->paynotes, to, device, key, item, size, &queued);
    if (code == AF_OK && queued) {
        zsys_info ("broker: a notice for %s of '%s' about %s, from another broker: queued", device, to, program);
        broker_deliver (self, broker_online (self, to, device));
    }
    *told_before = code == AF_OK && !queued;
    return code;
}

//  --------------------------------------------------------------------------
//  The asker's broker

//  The first send's intent, until its answer
typedef struct {
    char from [AF_MAX_ACCOUNT + 1];
    char to [AF_MAX_ACCOUNT + 1];
    char program [AF_MAX_PROGRAM + 1];
    uint8_t key [AF_ID_SIZE];
} sent_t;

static void
s_sent (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    sent_t *sent = (sent_t *) arg;
    if (xintent_final (AF_XINTENT_NOTICE, code)) {
        xintent_resolved (self, sent->from, sent->key, false, 0, false);
        zsys_info ("broker: the notice of '%s' for '%s' about %s: %s", sent->from, sent->to, sent->program,
                   code == AF_OK? (reply->yes? "told before": "told"): af_code_name (code));
    }
    else
    if (self->config.verbose)
        zsys_debug ("broker: the notice of '%s' for '%s': %s; sent again", sent->from, sent->to, af_code_name (code));
    free (sent);
}

int
xnotice_send (af_broker_t *self, const char *from, const char *program, const broker_notice_t *notice)
{
    assert (self && from && program && notice && notice->item);
    zframe_t *frame = af_msg_encode (notice->item);
    if (!frame || zframe_size (frame) > AF_MAX_ITEM) {
        zframe_destroy (&frame);
        return AF_E_INTERNAL;
    }
    MDB_txn *txn = NULL;
    int code = af_store_begin (s_store (self), true, &txn)? AF_E_INTERNAL:
               af_friends_intent_pending_put (self->friends, txn, from, AF_XINTENT_NOTICE, notice->key,
                                              notice->account, program, (uint64_t) zclock_time (),
                                              zframe_data (frame), zframe_size (frame));
    if (code == AF_OK && af_store_commit (s_store (self), &txn))
        code = AF_E_INTERNAL;
    af_store_abort (s_store (self), &txn);
    if (code == AF_OK) {
        sent_t *sent = (sent_t *) zmalloc (sizeof (sent_t));
        assert (sent);
        af_strcopy (sent->from, sizeof sent->from, from);
        af_strcopy (sent->to, sizeof sent->to, notice->account);
        af_strcopy (sent->program, sizeof sent->program, program);
        memcpy (sent->key, notice->key, AF_ID_SIZE);
        //  After our commit; no owner now: the resend, within AF_INTENT_RESEND_MS
        if (xintent_forward (self, AF_XINTENT_NOTICE, notice->key, notice->account, program, zframe_data (frame),
                             zframe_size (frame), true, s_sent, sent) != AF_OK)
            free (sent);
        zsys_info ("broker: the notice of '%s' for '%s' about %s goes to the broker of its account", from,
                   notice->account, program);
    }
    zframe_destroy (&frame);
    return code;
}
