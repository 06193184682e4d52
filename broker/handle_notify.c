/*  =========================================================================
    handle_notify - NOTIFY (SPEC 5.15, 8.4)

    A notification goes to another online device of the sender's own
    account, carrying the sender's device ID; it is not queued (pushes
    are). A NOTIFY with a rid is acknowledged (OK or ERROR); without one,
    routing failures (target offline or unknown) are only logged, so a
    sender can stream notifications cheaply. The broker itself notifies an
    account's devices of an install or a new configuration (kind
    "installed", "config"), so those in automatic mode can follow.
    =========================================================================
*/
#include "broker_int.h"

void
handle_notify (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    //  The limit SPEC 5.15 gives, checked before the value reaches a key
    //  or a log line
    unsigned char id [AF_ID_SIZE];
    if (af_id_from_hex (msg->device_id, id) != AF_OK) {
        if (msg->has_rid)
            broker_error (self, session, msg, AF_E_MALFORMED, "NOTIFY: deviceId must be 32 lowercase hex digits");
        return;
    }
    session_t *target = broker_online (self, session->account, msg->device_id);
    if (!target) {
        af_device_t device;
        bool known = af_registry_device (self->registry, session->account, msg->device_id, &device) == AF_OK;
        char err [AF_MAX_REASON + 1];
        snprintf (err, sizeof err, known? "device %s is offline": "device %s is not a device of this account",
                  msg->device_id);
        if (self->config.verbose || !known)
            zsys_warning ("broker: refused NOTIFY from %s of '%s': %s", session->device_id, session->account, err);
        if (msg->has_rid)
            broker_error (self, session, msg, known? AF_E_UNAVAILABLE: AF_E_NO_DEVICE, "%s", err);
        return;
    }
    //  The target learns who sent it; the sender's rid stays with the sender
    bool has_rid = msg->has_rid;
    memcpy (msg->device_id, session->device_id, sizeof msg->device_id);
    msg->ask [0] = 0;                   //  only the broker's notices carry an ask (5.47a)
    msg->has_rid = false;
    //  A device's NOTIFY changes nothing stored, so nothing waits for a
    //  commit: it goes now. Held to the batch's end, a stream of them went
    //  out a batch (up to AF_BATCH) at a time into the receiver's queue of
    //  AF_PEER_HWM; the rest waited in its session queue, and once the
    //  sender's window was full only the retry timer drained it (one
    //  stream: 5-47 k msg/s instead of over 100 k, bench_route)
    if (broker_send_msg_now (self, target, msg))
        zsys_warning ("broker: cannot deliver NOTIFY to %s", target->device_id);
    msg->has_rid = has_rid;
    if (has_rid)
        broker_ok (self, session, msg);
}

void
broker_tell_others (af_broker_t *self, session_t *session, const char *kind, const char *body)
{
    af_device_t *devices;
    uint32_t count;
    if (af_registry_devices (self->registry, session->account, &devices, &count) != AF_OK)
        return;
    for (uint32_t i = 0; i < count; i++) {
        session_t *other = broker_online (self, session->account, devices [i].id);
        if (!other || other == session)
            continue;
        af_msg_t *notify = af_msg_new (AF_MSG_NOTIFY);
        snprintf (notify->device_id, sizeof notify->device_id, "%s", session->device_id);
        snprintf (notify->kind, sizeof notify->kind, "%s", kind);
        af_msg_set_body (notify, body, strlen (body));
        broker_send (self, other, &notify);
    }
    free (devices);
}
