/*  =========================================================================
    handle_config - CONFIG_PUT, CONFIG_GET (SPEC 5.33; S1.6, S1.7, S1.9)

    App configurations that follow the app, sealed on the device with a
    key the broker never sees: the broker keeps the newer of two versions
    as current and the other as previous (af_configs), tells the account's
    other online devices when a new version becomes current (NOTIFY
    "config"), and returns either version on request.
    =========================================================================
*/
#include "broker_int.h"

void
handle_config_put (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (msg->at > (uint64_t) zclock_time () + AF_CONFIG_FUTURE_MS) {
        zsys_warning ("broker: refused a configuration of %s from %s of '%s': dated in the future",
                      msg->program, session->device_id, session->account);
        broker_error (self, session, msg, AF_E_MALFORMED,
                      "the configuration is dated more than 5 minutes in the future; check the device's clock");
        return;
    }
    bool current;
    int code = af_configs_put (self->configs, session->account, msg->program, msg->at, msg->data,
                               msg->data_size, &current);
    if (code != AF_OK) {
        broker_error (self, session, msg, code == AF_E_MALFORMED? code: AF_E_INTERNAL,
                      "the configuration could not be stored");
        return;
    }
    zsys_info ("broker: configuration of %s from %s of '%s' (%u bytes): %s", msg->program, session->device_id,
               session->account, msg->data_size, current? "now current": "older, kept as the previous version");
    broker_ok (self, session, msg);
    //  The others hear of it, so those sharing this app's configuration apply it
    if (current)
        broker_tell_others (self, session, "config", msg->program);
}

void
handle_config_get (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *reply = af_msg_new (AF_MSG_CONFIG);
    snprintf (reply->program, sizeof reply->program, "%s", msg->program);
    int code = af_configs_get (self->configs, session->account, msg->program, msg->previous, reply);
    if (code != AF_OK) {
        af_msg_destroy (&reply);
        if (code == AF_E_NO_CONFIG)
            broker_error (self, session, msg, AF_E_NO_CONFIG, "no configuration stored for this program");
        else
            broker_error (self, session, msg, code, "cannot read the configuration");
        return;
    }
    broker_reply (self, session, msg, &reply);
}
