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
      however often it comes. With it, in the same group commit, it opens
      the ask (SPEC 5.47a) under the notice's key, for the asker the
      NOTIFY names (its deviceId, and the account its body ends with),
      and the queued notice carries it: the device answers RECORD_PUT
      here, and the record goes back by broker_xrecord.c. Answers: 0
      queued (yes: it had been before, nothing queued), 465 no device of
      the account has the program (nobody told: final), 470 that device's
      outbox is full (sent again later), 400 malformed (a notice that does
      not name its asker so included), 500 the store failed.

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

//  The ask a notice from another broker opens (SPEC 5.47a), from its
//  NOTIFY: the asker is its deviceId, and its body "PROGRAM ASKER ACCOUNT"
//  names the asker's account (as handle_pay.c writes it and the friend's
//  node reads it); false if the notice does not say that
static bool
s_notice_ask (const af_msg_t *notify, const char *to, const char *program, const uint8_t *key,
              broker_notice_t *notice)
{
    char body [AF_MAX_PROGRAM + AF_ID_HEX + AF_MAX_ACCOUNT + 3];
    if (notify->body_size >= sizeof body || memchr (notify->body, 0, notify->body_size))
        return false;
    memcpy (body, notify->body, notify->body_size);
    body [notify->body_size] = 0;
    char *asker = strchr (body, ' ');
    char *account = asker? strchr (asker + 1, ' '): NULL;
    if (!account || strchr (account + 1, ' '))
        return false;
    *asker++ = 0;
    *account++ = 0;
    uint8_t id [AF_ID_SIZE];
    if (!streq (body, program) || !streq (asker, notify->device_id) || af_id_from_hex (asker, id) != AF_OK
    ||  !*account || strlen (account) > AF_MAX_ACCOUNT || streq (account, to))
        return false;
    memset (notice, 0, sizeof *notice);
    af_strcopy (notice->account, sizeof notice->account, to);
    memcpy (notice->key, key, AF_ID_SIZE);
    af_strcopy (notice->asker_account, sizeof notice->asker_account, account);
    af_strcopy (notice->asker, sizeof notice->asker, asker);
    af_strcopy (notice->program, sizeof notice->program, program);
    return true;
}

int
xnotice_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *key, const void *item,
               size_t size, bool *told_before)
{
    *told_before = false;
    char err [AF_MAX_REASON + 1];
    af_msg_t *decoded = NULL;
    broker_notice_t notice;
    bool valid = size && size <= AF_MAX_ITEM && *program
              && af_msg_decode (item, size, &decoded, err, sizeof err, NULL, NULL) == AF_OK
              && decoded->id == AF_MSG_NOTIFY && strncmp (decoded->kind, "friend-", 7) == 0
              && s_notice_ask (decoded, to, program, key, &notice);
    char device [AF_ID_HEX + 1];
    int code = valid? xnotice_device (self, to, program, device): AF_E_MALFORMED;
    if (code == AF_E_NOT_THERE)
        zsys_info ("broker: a notice for '%s' about %s: no device of it has the program now; nobody told", to,
                   program);
    //  The ask first, as for a device of ours (handle_push.c), and the
    //  notice carries it: the friend's device answers here with its record
    //  (a resent notice opens nothing twice: the first ask stands)
    zframe_t *frame = NULL;
    if (code == AF_OK) {
        af_strcopy (notice.device_id, sizeof notice.device_id, device);
        sodium_bin2hex (decoded->ask, sizeof decoded->ask, key, AF_ID_SIZE);
        notice.item = decoded;
        code = broker_ask_open (self, &notice);
    }
    if (code == AF_OK && (!(frame = af_msg_encode (decoded)) || zframe_size (frame) > AF_MAX_ITEM))
        code = AF_E_MALFORMED;
    af_msg_destroy (&decoded);
    bool queued = false;
    if (code == AF_OK)
        code = af_paynotes_put (self->paynotes, to, device, key, zframe_data (frame), zframe_size (frame), &queued);
    zframe_destroy (&frame);
    if (code == AF_OK && queued) {
        zsys_info ("broker: a notice for %s of '%s' about %s, from another broker: queued", device, to, program);
        broker_deliver (self, broker_online (self, to, device));
    }
    *told_before = code == AF_OK && !queued;
    return code;
}

//  --------------------------------------------------------------------------
//  The asker's broker

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
    if (code == AF_OK)
        xintent_send (self, AF_XINTENT_NOTICE, from, notice->key, notice->account, program, zframe_data (frame),
                      zframe_size (frame));
    zframe_destroy (&frame);
    return code;
}
