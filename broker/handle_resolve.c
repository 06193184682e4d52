/*  =========================================================================
    handle_resolve - RESOLVE from a node, and the broker's own (SPEC 5.7, 5.8)

    A node asks which package of a program fits a device (its own, by
    default, or any description that does not claim another device's ID).
    The broker hands the question to the matcher service through
    af_dispatch and gives the answer back with the node's own rid. Pushes
    and syncs ask the same way, for each target or program, with the
    stored description of the device concerned.
    =========================================================================
*/
#include "broker_int.h"

int
broker_resolve (af_broker_t *self, const char *program, const af_device_t *device,
                af_dispatch_fn *done, void *arg, uint32_t slot)
{
    af_msg_t *msg = af_msg_new (AF_MSG_RESOLVE);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    msg->has_device = true;
    msg->device = *device;
    return af_dispatch_submit (self->dispatch, "matcher", &msg, done, arg, slot);
}

//  A node's RESOLVE, waiting for the matcher
typedef struct {
    af_broker_t *broker;
    broker_caller_t caller;
} resolve_t;

static void
s_resolved (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    resolve_t *resolve = (resolve_t *) arg;
    broker_answer (resolve->broker, &resolve->caller, reply_p);
    free (resolve);
}

void
handle_resolve (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (msg->has_device && *msg->device.id && !streq (msg->device.id, session->device_id)) {
        //  A description may be of any device, but may not claim another's ID
        zsys_warning ("broker: refused RESOLVE from %s of '%s': claims device %s", session->device_id,
                      session->account, msg->device.id);
        broker_error (self, session, msg, AF_E_FORBIDDEN, "this session is device %s, not %s",
                      session->device_id, msg->device.id);
        return;
    }
    char err [AF_MAX_REASON + 1];
    if (msg->has_device && af_device_validate (&msg->device, err, sizeof err) != AF_OK) {
        broker_error (self, session, msg, AF_E_BAD_DEVICE, "%s", err);
        return;
    }
    resolve_t *resolve = (resolve_t *) zmalloc (sizeof (resolve_t));
    assert (resolve);
    resolve->broker = self;
    broker_caller (&resolve->caller, session, msg);
    if (broker_resolve (self, msg->program, msg->has_device? &msg->device: &session->device,
                        s_resolved, resolve, 0) != AF_OK) {
        free (resolve);
        zsys_warning ("broker: refused RESOLVE from '%s': queue full", session->account);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the matcher queue is full; try again later");
    }
}
