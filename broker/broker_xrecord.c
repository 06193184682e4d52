/*  =========================================================================
    broker_xrecord - a friend's install record when the asker lives on
    another broker (SPEC 5.47a "From a contact")

    A GET from a contact on another broker of a cluster tells the friend's
    device through FORWARD notice (broker_xnotice.c); the friend's broker
    opens the ask with it, so the friend's device answers RECORD_PUT here,
    on the friend's broker, as it would for a GET from its own account.
    The asker's RECORD then has to go the other way: the asker's account,
    its outbox and its devices are another broker's keys. So the RECORD is
    an intent, as the notice was (broker_intents.c does both):

    * Friend's broker (xrecord_queue, the asks' queue, af_asks_set_queue):
      when the ask closes (answered by RECORD_PUT, or expired by the timer)
      and the asker's account is not ours, the asker's item is an intent of
      kind record instead of an outbox item, written in the SAME write
      transaction as the ask's change of state (both or neither), in the
      source's account (so in the ask's shard, replicated with it): its ID
      the ask's, recipient the asker's account, the program, payload the
      asker's device ID (16 bytes) and the encoded RECORD. After the commit
      (xrecord_sent) FORWARD record goes to the owner of the asker's shard;
      it is sent again every AF_INTENT_RESEND_MS until a final answer, by
      whoever owns the source's shard, and applied here by the same code
      if the asker's shard has come to us. An asker whose account is ours
      gets the item in its outbox at once, as before.

    * Asker's broker (xrecord_apply, FORWARD record or the resend here):
      trusts the peer for no more than the op allows: the payload must be
      a RECORD of the ask and program named, whose record is an install
      record of that program (the check RECORD_PUT makes), or a code; the
      device a device of the named account; at most AF_MAX_ITEM bytes. It
      goes into that device's outbox through af_paynotes, keyed by
      BLAKE2b-128 ("record" || ask ID) (its own name space among the
      account's notice keys), so once per ask however often it comes.
      Answers: 0 queued (yes: queued before, nothing now), 406 the device
      is no longer the account's (final: nobody to tell), 470 its outbox is
      full (sent again later), 400 malformed, 500 the store failed.
    =========================================================================
*/
#include "broker_xacct.h"

//  The intent's payload: the asker's device ID, then the encoded RECORD
#define XRECORD_HEAD    AF_ID_SIZE

static uint8_t *
s_payload (const af_ask_t *ask, const void *item, size_t size, size_t *total)
{
    *total = XRECORD_HEAD + size;
    if (*total > AF_MAX_ITEM)
        return NULL;
    uint8_t *payload = (uint8_t *) malloc (*total);
    assert (payload);
    if (af_id_from_hex (ask->asker, payload) != AF_OK) {
        free (payload);
        return NULL;
    }
    memcpy (payload + XRECORD_HEAD, item, size);
    return payload;
}

static bool
s_asker_here (af_broker_t *self, const af_ask_t *ask)
{
    uint32_t shard;
    return broker_cluster_serves (self, ask->asker_account, &shard);
}

//  --------------------------------------------------------------------------
//  The friend's broker

int
xrecord_queue (MDB_txn *txn, const af_ask_t *ask, const void *item, size_t size, void *arg)
{
    af_broker_t *self = (af_broker_t *) arg;
    if (s_asker_here (self, ask))
        return af_outbox_put_txn (self->outbox, txn, ask->asker_account, ask->asker, item, size, NULL);
    size_t total;
    uint8_t *payload = s_payload (ask, item, size, &total);
    if (!payload)
        return AF_E_MALFORMED;
    int code = af_friends_intent_pending_put (self->friends, txn, ask->account, AF_XINTENT_RECORD, ask->id,
                                              ask->asker_account, ask->program, (uint64_t) zclock_time (),
                                              payload, total);
    free (payload);
    return code;
}

void
xrecord_sent (af_broker_t *self, const af_ask_t *ask, const void *item, size_t size)
{
    if (s_asker_here (self, ask)) {
        broker_deliver (self, broker_online (self, ask->asker_account, ask->asker));
        return;
    }
    size_t total;
    uint8_t *payload = s_payload (ask, item, size, &total);
    if (payload)                        //  (else xrecord_queue refused it: nothing was written)
        xintent_send (self, AF_XINTENT_RECORD, ask->account, ask->id, ask->asker_account, ask->program, payload,
                      total);
    free (payload);
}

//  --------------------------------------------------------------------------
//  The asker's broker

//  Is item a RECORD of ask for program, as the friend's broker may send
//  one: the source's record (an install record of program) or a code?
static bool
s_record_valid (const void *item, size_t size, const char *program, const uint8_t *ask, char *source)
{
    char err [AF_MAX_REASON + 1], hex [AF_ID_HEX + 1];
    uint8_t id [AF_ID_SIZE];
    sodium_bin2hex (hex, sizeof hex, ask, AF_ID_SIZE);
    af_msg_t *record = NULL;
    bool valid = af_msg_decode (item, size, &record, err, sizeof err, NULL, NULL) == AF_OK
              && record->id == AF_MSG_RECORD && streq (record->ask, hex) && streq (record->program, program)
              && af_id_from_hex (record->device_id, id) == AF_OK
              && (record->data_size > 0) != (record->code != 0)
              && (record->code || broker_record_check (record, err, sizeof err) == AF_OK);
    if (valid)
        af_strcopy (source, AF_ID_HEX + 1, record->device_id);
    af_msg_destroy (&record);
    return valid;
}

int
xrecord_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *ask, const void *payload,
               size_t size, bool *queued_before)
{
    *queued_before = false;
    const uint8_t *bytes = (const uint8_t *) payload;
    char device [AF_ID_HEX + 1], source [AF_ID_HEX + 1];
    if (size <= XRECORD_HEAD || size > AF_MAX_ITEM || !*program
    ||  !s_record_valid (bytes + XRECORD_HEAD, size - XRECORD_HEAD, program, ask, source))
        return AF_E_MALFORMED;
    sodium_bin2hex (device, sizeof device, bytes, AF_ID_SIZE);
    af_device_t described;
    if (af_registry_device (self->registry, to, device, &described) != AF_OK) {
        zsys_info ("broker: the install record of %s from %s for %s of '%s': no such device now; nobody told",
                   program, source, device, to);
        return AF_E_NO_DEVICE;
    }
    //  Once per ask, in a name space of its own among the account's keys
    uint8_t key [AF_ID_SIZE];
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, sizeof key);
    crypto_generichash_update (&state, (const uint8_t *) "record", 6);
    crypto_generichash_update (&state, ask, AF_ID_SIZE);
    crypto_generichash_final (&state, key, sizeof key);
    bool queued = false;
    int code = af_paynotes_put (self->paynotes, to, device, key, bytes + XRECORD_HEAD, size - XRECORD_HEAD, &queued);
    if (code == AF_OK && queued) {
        zsys_info ("broker: the install record of %s from %s, from another broker: queued for %s of '%s'", program,
                   source, device, to);
        broker_deliver (self, broker_online (self, to, device));
    }
    *queued_before = code == AF_OK && !queued;
    return code;
}
