/*  =========================================================================
    handle_account - REGISTER, LOGIN, LOGOUT, DEVICES, PING (SPEC 5.1-5.10)

    Accounts and devices (S2.1, S2.2). REGISTER creates an account; the
    first LOGIN of a device carries the password and binds the device to
    the connection's CURVE key, later ones carry only the device ID and
    the key is the credential (SPEC 8.2). One connection per device: a
    newer login takes over and the older connection is told DISCONNECT
    (8.3). Whenever a device comes or goes, every online device of the
    account gets the new DEVICE_LIST (8.4).

    Password guessing is bounded per account: AF_MAX_LOGIN_FAILURES wrong
    passwords within AF_LOGIN_WINDOW_MS refuse further password logins to
    it until the window ends; key logins are not affected.
    =========================================================================
*/
#include "broker_int.h"

typedef struct {
    int count;
    int64_t since;                  //  monotonic ms: start of the window
} failures_t;

void
handle_ping (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    (void) msg;
    af_msg_t *pong = af_msg_new (AF_MSG_PONG);
    pong->logged_in = session->logged_in;
    broker_send (self, session, &pong);
}

void
handle_register (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1];
    int code = af_registry_register (self->registry, msg->account, msg->password, err, sizeof err);
    if (code != AF_OK) {
        zsys_warning ("broker: refused REGISTER '%s' from %.8s: %s", msg->account, session->key, err);
        broker_error (self, session, msg, code, "%s", err);
        return;
    }
    zsys_info ("broker: registered account '%s'", msg->account);
    broker_ok (self, session, msg);
}

//  --------------------------------------------------------------------------
//  LOGIN, in its steps: who may log in (the session, the description, the
//  credential), the registry's record, then the session and the news

//  A session logged in stays with its account and device
static int
s_login_session (session_t *session, af_msg_t *msg, char *err, size_t errlen)
{
    if (session->logged_in && (!streq (session->account, msg->account)
                           || (*msg->device_id && !streq (msg->device_id, session->device_id)))) {
        snprintf (err, errlen, "this connection is logged in as device %s of '%s'; send LOGOUT first",
                  session->device_id, session->account);
        return AF_E_FORBIDDEN;
    }
    return AF_OK;
}

//  The password, counted against guessing
static int
s_login_password (af_broker_t *self, af_msg_t *msg, char *err, size_t errlen)
{
    failures_t *failures = (failures_t *) zhashx_lookup (self->failures, msg->account);
    if (failures && zclock_mono () - failures->since > AF_LOGIN_WINDOW_MS) {
        zhashx_delete (self->failures, msg->account);
        failures = NULL;
    }
    if (failures && failures->count >= AF_MAX_LOGIN_FAILURES) {
        snprintf (err, errlen, "%d wrong passwords for '%s'; try again in %d s", failures->count, msg->account,
                  (int) ((failures->since + AF_LOGIN_WINDOW_MS - zclock_mono ()) / 1000) + 1);
        return AF_E_RATE_LIMITED;
    }
    int code = af_registry_verify (self->registry, msg->account, msg->password);
    if (code == AF_E_BAD_PASSWORD && zhashx_size (self->failures) < self->config.max_sessions) {
        if (!failures) {
            failures = (failures_t *) zmalloc (sizeof (failures_t));
            assert (failures);
            failures->since = zclock_mono ();
            zhashx_insert (self->failures, msg->account, failures);
        }
        failures->count++;
    }
    else
    if (code == AF_OK && failures)
        zhashx_delete (self->failures, msg->account);
    if (code == AF_E_NO_ACCOUNT)
        snprintf (err, errlen, "no account '%s'", msg->account);
    else
    if (code == AF_E_BAD_PASSWORD)
        snprintf (err, errlen, "wrong password for '%s'", msg->account);
    else
    if (code == AF_E_INTERNAL)
        snprintf (err, errlen, "internal error checking the password");
    return code;
}

//  May this LOGIN go ahead? Without a password, the device's bound key is
//  the credential: the registry refuses a device ID bound to another key.
static int
s_login_check (af_broker_t *self, session_t *session, af_msg_t *msg, char *err, size_t errlen)
{
    int code = s_login_session (session, msg, err, errlen);
    if (code == AF_OK && af_device_validate (&msg->device, err, errlen))
        code = AF_E_BAD_DEVICE;
    if (code != AF_OK)
        return code;
    if (*msg->password)
        return s_login_password (self, msg, err, errlen);
    if (!*msg->device_id) {
        snprintf (err, errlen, "a password is needed to log in a device for the first time");
        return AF_E_BAD_PASSWORD;
    }
    if (!af_registry_exists (self->registry, msg->account)) {
        snprintf (err, errlen, "no account '%s'", msg->account);
        return AF_E_NO_ACCOUNT;
    }
    return AF_OK;
}

//  The session becomes the device's, taking it over from an older one
static void
s_login_bind (af_broker_t *self, session_t *session, af_msg_t *msg, const char *device_id)
{
    char online_key [sizeof session->online_key];
    snprintf (online_key, sizeof online_key, "%s/%s", msg->account, device_id);
    session_t *older = (session_t *) zhashx_lookup (self->online, online_key);
    if (older && older != session) {
        zhashx_delete (self->online, online_key);
        older->logged_in = false;
        //  If that connection is still alive, it learns why its session ended
        af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
        snprintf (bye->reason, sizeof bye->reason, "device %s logged in on another connection", device_id);
        broker_send (self, older, &bye);
        zsys_info ("broker: device %s of '%s' moved to a new connection", device_id, msg->account);
    }
    session->logged_in = true;
    snprintf (session->account, sizeof session->account, "%s", msg->account);
    snprintf (session->device_id, sizeof session->device_id, "%s", device_id);
    memcpy (session->online_key, online_key, sizeof online_key);
    session->device = msg->device;
    snprintf (session->device.id, sizeof session->device.id, "%s", device_id);
    //  Devices described the same way share the matcher's answers in syncs
    af_device_t described = msg->device;
    described.id [0] = 0;
    described.last_seen = 0;
    described.online = false;
    zframe_t *packed = af_device_pack (&described);
    uint8_t digest [AF_ID_SIZE];
    crypto_generichash (digest, sizeof digest, packed? zframe_data (packed): NULL,
                        packed? zframe_size (packed): 0, NULL, 0);
    zframe_destroy (&packed);
    sodium_bin2hex (session->digest, sizeof session->digest, digest, sizeof digest);
    zhashx_update (self->online, online_key, session);
}

void
handle_login (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1] = "";
    char device_id [AF_ID_HEX + 1];
    int code = s_login_check (self, session, msg, err, sizeof err);
    if (code == AF_OK) {
        af_device_t device = msg->device;
        code = af_registry_login (self->registry, msg->account, msg->device_id, session->key,
                                  &device, (uint64_t) zclock_time (), device_id, err, sizeof err);
    }
    if (code != AF_OK) {
        zsys_warning ("broker: refused LOGIN to '%s' from %.8s: %s", msg->account, session->key, err);
        broker_error (self, session, msg, code, "%s", err);
        return;
    }
    s_login_bind (self, session, msg, device_id);
    zsys_info ("broker: device %s (%s) of '%s' logged in", device_id, msg->device.model, msg->account);

    af_msg_t *reply = af_msg_new (AF_MSG_LOGIN_OK);
    snprintf (reply->account, sizeof reply->account, "%s", msg->account);
    snprintf (reply->device_id, sizeof reply->device_id, "%s", device_id);
    reply->heartbeat = (uint32_t) self->config.heartbeat_ms;
    uint64_t list_at = 0;
    af_lists_seq (self->lists, msg->account, device_id, &reply->report_seq, &list_at);
    //  Now and then the whole list, to mend whatever a report might have missed
    reply->send_list = self->config.list_every_s > 0
                    && (uint64_t) zclock_time () - list_at > (uint64_t) self->config.list_every_s * 1000;
    broker_reply (self, session, msg, &reply);
    broker_broadcast_devices (self, session->account);
    //  Everything queued for the device, from the start of its outbox
    session->sent_seq = 0;
    session->unacked = 0;
    broker_deliver (self, session);
}

void
handle_logout (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    broker_session_logout (self, session);
    broker_ok (self, session, msg);
}

//  --------------------------------------------------------------------------
//  Device lists

//  The account's devices, each marked online or not; NULL on a store error
static af_device_t *
s_devices (af_broker_t *self, const char *account, uint32_t *count)
{
    af_device_t *devices;
    if (af_registry_devices (self->registry, account, &devices, count) != AF_OK)
        return NULL;
    for (uint32_t i = 0; i < *count; i++)
        devices [i].online = broker_online (self, account, devices [i].id) != NULL;
    return devices;
}

static af_msg_t *
s_device_list (const char *account, const af_device_t *devices, uint32_t count)
{
    af_msg_t *msg = af_msg_new (AF_MSG_DEVICE_LIST);
    snprintf (msg->account, sizeof msg->account, "%s", account);
    af_msg_set_device_count (msg, count);
    memcpy (msg->devices, devices, count * sizeof (af_device_t));
    return msg;
}

void
handle_devices (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    uint32_t count;
    af_device_t *devices = s_devices (self, session->account, &count);
    if (!devices) {
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot read the device list");
        return;
    }
    af_msg_t *reply = s_device_list (session->account, devices, count);
    free (devices);
    broker_reply (self, session, msg, &reply);
}

void
broker_broadcast_devices (af_broker_t *self, const char *account)
{
    uint32_t count;
    af_device_t *devices = s_devices (self, account, &count);
    if (!devices) {
        zsys_error ("broker: cannot read the devices of '%s'", account);
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        session_t *session = devices [i].online? broker_online (self, account, devices [i].id): NULL;
        if (session) {
            af_msg_t *msg = s_device_list (account, devices, count);
            broker_send (self, session, &msg);
        }
    }
    free (devices);
}

void
broker_session_logout (af_broker_t *self, session_t *session)
{
    af_transfers_drop (self->transfers, session->hex);
    broker_uploads_drop (self, session);
    if (!session->logged_in)
        return;
    if (zhashx_lookup (self->online, session->online_key) == session)
        zhashx_delete (self->online, session->online_key);
    session->logged_in = false;
    af_registry_touch (self->registry, session->account, session->device_id, (uint64_t) zclock_time ());
    broker_broadcast_devices (self, session->account);
    if (self->config.verbose)
        zsys_info ("broker: device %s of '%s' is offline", session->device_id, session->account);
}

void
broker_failures_expire (af_broker_t *self, int64_t now)
{
    zlistx_t *stale = zhashx_keys (self->failures);
    for (const char *account = (const char *) zlistx_first (stale); account;
         account = (const char *) zlistx_next (stale)) {
        failures_t *failures = (failures_t *) zhashx_lookup (self->failures, account);
        if (failures && now - failures->since > AF_LOGIN_WINDOW_MS)
            zhashx_delete (self->failures, account);
    }
    zlistx_destroy (&stale);
}
