/*  =========================================================================
    handle_record - RECORD_PUT; the asks' deadlines (SPEC 5.47a)

    A GET's transfer tells the source device through its outbox (handle_pay,
    af_paynotes) and, in the same group commit, opens an ask (af_asks): the
    asker waits for the source's install record. The source's node answers
    with RECORD_PUT: its record, or a code and a reason when it has none to
    give. Everything in it is hostile: the ask must be this device's, for
    this program and this asker, and open; the record must be a record. The
    asker's RECORD item is queued with the ask's closing, in one write
    transaction of the batch, and OK goes after the commit: so a repeated
    RECORD_PUT, or a broker killed after the OK, gives the asker one RECORD.

    An ask whose source never comes expires on the broker's timer, which
    reads the asks in deadline order (af_asks_sweep) for each shard this
    broker owns: the asker gets a RECORD with E_ASK_EXPIRED saying its
    install kept its defaults. The package install never waited.

    broker_record_queue is the one place a RECORD is queued for its asker.
    When the asker's account lives on another broker of a cluster (a GET
    from a friend there: the friend's broker opened the ask with the
    forwarded notice), the asks' queue (broker_xrecord.c) writes an intent
    instead of the outbox item, in the same transaction, and the RECORD
    goes through FORWARD record after the commit (xrecord_sent); the
    answer and the expiry are the same code either way.
    =========================================================================
*/
#include "broker_xacct.h"
#include <jansson.h>
#include "af_record.h"

int
broker_ask_open (af_broker_t *self, const broker_notice_t *notice)
{
    af_ask_t ask;
    memset (&ask, 0, sizeof ask);
    af_strcopy (ask.account, sizeof ask.account, notice->account);
    memcpy (ask.id, notice->key, AF_ID_SIZE);
    af_strcopy (ask.source, sizeof ask.source, notice->device_id);
    af_strcopy (ask.asker, sizeof ask.asker, notice->asker);
    af_strcopy (ask.asker_account, sizeof ask.asker_account, notice->asker_account);
    af_strcopy (ask.program, sizeof ask.program, notice->program);
    ask.deadline = (uint64_t) zclock_time () + (uint64_t) self->config.record_wait_s * 1000;
    bool opened = false;
    int code = af_asks_open (self->asks, &ask, &opened);
    if (code == AF_OK && opened)
        zsys_info ("broker: ask %s: %s of '%s' waits up to %d s for the record of %s from %s of '%s'",
                   notice->item && *notice->item->ask? notice->item->ask: "?", notice->asker, notice->asker_account,
                   self->config.record_wait_s, notice->program, notice->device_id, notice->account);
    return code;
}

int
broker_record_queue (af_broker_t *self, const char *account, const uint8_t *id, const char *source,
                     const char *program, const char *asker, af_msg_t *record)
{
    zframe_t *frame = af_msg_encode (record);
    if (!frame || zframe_size (frame) > AF_MAX_ITEM) {
        zframe_destroy (&frame);
        return AF_E_MALFORMED;
    }
    af_ask_t ask;
    int code = af_asks_answer (self->asks, account, id, source, program, asker, zframe_data (frame),
                               zframe_size (frame), &ask);
    if (code == AF_OK)
        xrecord_sent (self, &ask, zframe_data (frame), zframe_size (frame));
    zframe_destroy (&frame);
    return code;
}

int
broker_record_check (const af_msg_t *msg, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *record = json_loadb ((const char *) msg->data, msg->data_size, JSON_REJECT_DUPLICATES, &jerr);
    int code = AF_OK;
    if (!record || !json_is_object (record)) {
        snprintf (err, errlen, "field 'record': not a JSON object%s%s", record? "": ": ", record? "": jerr.text);
        code = AF_E_MALFORMED;
    }
    const char *program = record? json_string_value (json_object_get (record, "program")): NULL;
    if (code == AF_OK && (!program || !streq (program, msg->program))) {
        snprintf (err, errlen, "field 'record': its program is not '%s'", msg->program);
        code = AF_E_MALFORMED;
    }
    char why [AF_MAX_REASON + 1];
    if (code == AF_OK && af_install_record_check (record, why, sizeof why) != AF_OK) {
        snprintf (err, errlen, "field 'record': %s", why);
        code = AF_E_MALFORMED;
    }
    json_decref (record);
    return code;
}

void
handle_record_put (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    uint8_t id [AF_ID_SIZE], asker [AF_ID_SIZE];
    char err [AF_MAX_REASON + 1];
    if (af_id_from_hex (msg->ask, id) != AF_OK || af_id_from_hex (msg->device_id, asker) != AF_OK) {
        broker_error (self, session, msg, AF_E_MALFORMED, "fields 'ask' and 'deviceId': 32 lowercase hex digits");
        return;
    }
    bool has_record = msg->data_size > 0, has_code = msg->code != 0;
    if (has_record == has_code) {
        broker_error (self, session, msg, AF_E_MALFORMED, "send either the record, or a code and a reason");
        return;
    }
    if (has_record && broker_record_check (msg, err, sizeof err) != AF_OK) {
        zsys_warning ("broker: refused RECORD_PUT %s from %s of '%s': %s", msg->ask, session->device_id,
                      session->account, err);
        broker_error (self, session, msg, AF_E_MALFORMED, "%s", err);
        return;
    }
    af_msg_t *record = af_msg_new (AF_MSG_RECORD);
    af_strcopy (record->ask, sizeof record->ask, msg->ask);
    af_strcopy (record->program, sizeof record->program, msg->program);
    af_strcopy (record->device_id, sizeof record->device_id, session->device_id);
    if (has_record) {
        record->data = msg->data;               //  moved: the item is the record as sent
        record->data_size = msg->data_size;
        msg->data = NULL;
        msg->data_size = 0;
        //  With a record, a reason says why the user data asked for (a
        //  notice withData, 5.47) does not come
        memcpy (record->reason, msg->reason, sizeof record->reason);
    }
    else {
        record->code = msg->code;
        snprintf (record->reason, sizeof record->reason, "the source device %s has no record to send: %s",
                  session->device_id, *msg->reason? msg->reason: af_code_name ((int) msg->code));
    }
    int code = broker_record_queue (self, session->account, id, session->device_id, msg->program, msg->device_id,
                                    record);
    af_msg_destroy (&record);
    switch (code) {
        case AF_OK:
            zsys_info ("broker: ask %s: %s of '%s' %s for %s; queued for %s", msg->ask, session->device_id,
                       session->account, has_record? "sent its record": "has no record", msg->program,
                       msg->device_id);
            broker_ok (self, session, msg);
            return;
        case AF_E_NO_ASK:
            snprintf (err, sizeof err, "no ask %s for this device, %s and device %s", msg->ask, msg->program,
                      msg->device_id);
            break;
        case AF_E_ANSWERED:
            snprintf (err, sizeof err, "ask %s was answered before; nothing changed", msg->ask);
            break;
        case AF_E_ASK_EXPIRED:
            snprintf (err, sizeof err, "ask %s waited its %d s (get/record_wait) and the asker was told; "
                      "nothing changed", msg->ask, self->config.record_wait_s);
            break;
        case AF_E_QUOTA:
            snprintf (err, sizeof err, "the asker's queue is full; send it again later");
            break;
        case AF_E_MALFORMED:
            snprintf (err, sizeof err, "the record does not fit in an outbox item");
            code = AF_E_TOO_BIG;
            break;
        default:
            snprintf (err, sizeof err, "the record could not be stored; send it again");
            code = AF_E_INTERNAL;
    }
    zsys_warning ("broker: refused RECORD_PUT %s from %s of '%s': %s (%s)", msg->ask, session->device_id,
                  session->account, err, af_code_name (code));
    broker_error (self, session, msg, code, "%s", err);
}

//  --------------------------------------------------------------------------
//  The deadlines (the broker's timer)

//  The asker's RECORD for an ask whose source did not come in time
static zframe_t *
s_expired_frame (af_broker_t *self, const af_ask_t *ask)
{
    af_msg_t *record = af_msg_new (AF_MSG_RECORD);
    af_strcopy (record->ask, sizeof record->ask, ask->id_hex);
    af_strcopy (record->program, sizeof record->program, ask->program);
    af_strcopy (record->device_id, sizeof record->device_id, ask->source);
    record->code = AF_E_ASK_EXPIRED;
    snprintf (record->reason, sizeof record->reason, "the source device %s was not online within %d s "
              "(get/record_wait); %s was installed with its defaults", ask->source, self->config.record_wait_s,
              ask->program);
    zframe_t *frame = af_msg_encode (record);
    af_msg_destroy (&record);
    return frame;
}

static zframe_t *
s_expired_item (const af_ask_t *ask, void *arg)
{
    zsys_info ("broker: ask %s: %s of '%s' did not send its record of %s in time; %s of '%s' is told",
               ask->id_hex, ask->source, ask->account, ask->program, ask->asker, ask->asker_account);
    return s_expired_frame ((af_broker_t *) arg, ask);
}

//  After the sweep's commit: the same RECORD again (it depends on nothing
//  but the ask), for an asker on another broker
static void
s_expired_told (const af_ask_t *ask, void *arg)
{
    af_broker_t *self = (af_broker_t *) arg;
    zframe_t *frame = s_expired_frame (self, ask);
    if (frame)
        xrecord_sent (self, ask, zframe_data (frame), zframe_size (frame));
    zframe_destroy (&frame);
}

void
broker_asks_tick (af_broker_t *self)
{
    uint64_t now = (uint64_t) zclock_time ();
    uint32_t shards = self->cluster? self->shard_count: 1;
    for (uint32_t shard = 0; shard < shards; shard++) {
        if (self->cluster && (self->shards [shard].role != SHARD_OWNER || self->shards [shard].leaving))
            continue;
        if (af_asks_sweep (self->asks, shard, now, AF_ASKS_SWEEP, s_expired_item, s_expired_told, self, NULL)
            != AF_OK)
            zsys_error ("broker: cannot expire the asks of shard %u", shard);
    }
}
