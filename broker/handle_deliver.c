/*  =========================================================================
    handle_deliver - outbox items: ITEM out, ACK in (SPEC 5.18, 5.19, 8.6)

    What must reach a device that may be offline (a push's OFFER, a push's
    RESULT for its initiator, an UNINSTALL) waits in the device's durable
    outbox (af_outbox). After every login the broker sends the items from
    the start of the outbox, in order, at most AF_ITEM_WINDOW unfinished at
    a time; each finished item (an ACK, or a DONE for an offer) lets the
    next one go. The node deduplicates by item ID, so a resend after a
    reconnect is harmless.
    =========================================================================
*/
#include "broker_int.h"

typedef struct {
    af_broker_t *broker;
    session_t *session;
} deliver_t;

static int
s_deliver_item (const af_outbox_item_t *item, void *arg)
{
    deliver_t *deliver = (deliver_t *) arg;
    af_msg_t *msg = af_msg_new (AF_MSG_ITEM);
    sodium_bin2hex (msg->item, sizeof msg->item, item->id, AF_ID_SIZE);
    if (af_msg_set_body (msg, item->data, item->size) == 0)
        broker_send (deliver->broker, deliver->session, &msg);
    else
        zsys_error ("broker: outbox item %s of '%s' is too large to send", msg->item,
                    deliver->session->account);
    af_msg_destroy (&msg);
    deliver->session->sent_seq = item->seq;
    deliver->session->unacked++;
    return 0;
}

void
broker_deliver (af_broker_t *self, session_t *session)
{
    if (!session || !session->logged_in || session->unacked >= AF_ITEM_WINDOW)
        return;
    deliver_t deliver = { self, session };
    if (af_outbox_each (self->outbox, session->account, session->device_id, session->sent_seq,
                        AF_ITEM_WINDOW - session->unacked, s_deliver_item, &deliver) != AF_OK)
        zsys_error ("broker: cannot read the outbox of %s", session->device_id);
}

void
broker_item_done (af_broker_t *self, session_t *session)
{
    if (session->unacked)
        session->unacked--;
    broker_deliver (self, session);
}

//  The command an item carries (AF_MSG_NONE if it does not decode), and
//  the push it belongs to
typedef struct {
    af_msg_id_t command;
    char push_id [AF_ID_HEX + 1];
} peek_t;

static int
s_item_peek (const af_outbox_item_t *item, void *arg)
{
    peek_t *peek = (peek_t *) arg;
    af_msg_t *msg = NULL;
    char err [AF_MAX_REASON + 1];
    if (af_msg_decode (item->data, item->size, &msg, err, sizeof err, NULL, NULL) == AF_OK) {
        peek->command = msg->id;
        snprintf (peek->push_id, sizeof peek->push_id, "%s", msg->push_id);
    }
    af_msg_destroy (&msg);
    return 0;
}

void
handle_ack (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    uint8_t item [AF_ID_SIZE];
    if (af_id_from_hex (msg->item, item) != AF_OK) {
        broker_error (self, session, msg, AF_E_MALFORMED, "ACK: 'item' must be an item ID (32 lowercase hex digits)");
        return;
    }
    //  An offer ends with its outcome (DONE), which tells the initiator;
    //  an ACK would drop it and leave the push without a result for good
    peek_t peek = { AF_MSG_NONE, "" };
    bool found = false;
    af_outbox_find (self->outbox, session->account, session->device_id, item, s_item_peek, &peek, &found);
    af_msg_id_t command = peek.command;
    const char *push_id = peek.push_id;
    if (found && command == AF_MSG_OFFER) {
        zsys_warning ("broker: refused ACK of offer item %s from %s of '%s'", msg->item, session->device_id,
                      session->account);
        broker_error (self, session, msg, AF_E_FORBIDDEN,
                      "ACK: item %s is an OFFER; an offer is finished by DONE with its outcome", msg->item);
        return;
    }
    //  An UNINSTALL acknowledged rather than DONE (as version 1 nodes did):
    //  its outcome is taken to be "uninstalled", so the initiator hears
    if (found && command == AF_MSG_UNINSTALL) {
        af_msg_t *done = af_msg_new (AF_MSG_DONE);
        snprintf (done->push_id, sizeof done->push_id, "%s", push_id);
        snprintf (done->state, sizeof done->state, "uninstalled");
        char initiator [AF_ID_HEX + 1], freed [AF_HASH_HEX + 1];
        bool finished = false;
        if (*push_id && af_pushes_done (self->pushes, session->account, session->device_id, done, initiator,
                                        &finished, freed) == AF_OK && finished) {
            af_msg_destroy (&done);
            broker_item_done (self, session);
            broker_deliver (self, broker_online (self, session->account, initiator));
            return;
        }
        af_msg_destroy (&done);
    }
    //  Not found: a repeated acknowledgement, or not this device's item;
    //  either way nothing changes
    af_outbox_ack (self->outbox, session->account, session->device_id, item, NULL);
    broker_item_done (self, session);
}
