/*  =========================================================================
    handle_account - REGISTER, LOGIN, LOGOUT, DEVICES, PING (SPEC 5.1-5.10)

    Accounts and devices (S2.1, S2.2). REGISTER creates an account; the
    first LOGIN of a device carries the password and binds the device to
    the connection's CURVE key, later ones carry only the device ID and
    the key is the credential (SPEC 8.2). One connection per device: a
    newer login takes over and the older connection is told DISCONNECT
    (8.3). Whenever a device comes or goes, every online device of the
    account gets the new DEVICE_LIST (8.4).

    Password work is Argon2id, about 0.1 s and 64 MiB a time, so it never
    runs in the reactor: REGISTER and a password LOGIN hand it to
    af_hasher's threads and finish when it is done. Each connection has one
    such job at a time and AF_PW_PER_CONNECTION a minute, each source
    address pw_per_source a minute; past these the answer is E_RATE_LIMITED,
    and E_UNAVAILABLE when the hashing threads are all busy with a full
    queue. Wrong passwords are counted durably per account and source
    (af_guesses); key logins are never limited.
    =========================================================================
*/
#include "broker_int.h"

//  Password work started by one source address, this minute
typedef struct {
    uint32_t count;
    int64_t since;                  //  monotonic ms: start of the window
} source_t;

//  A REGISTER or password LOGIN waiting for its Argon2id job
typedef struct {
    af_broker_t *broker;
    broker_caller_t caller;
    af_msg_t *msg;                  //  what was asked (the password wiped)
    char peer [sizeof ((session_t *) 0)->peer];
} pwjob_t;

static void
s_pwjob_free (pwjob_t **job_p)
{
    if (*job_p) {
        af_msg_destroy (&(*job_p)->msg);
        free (*job_p);
        *job_p = NULL;
    }
}

static pwjob_t *
s_pwjob_new (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    pwjob_t *job = (pwjob_t *) zmalloc (sizeof (pwjob_t));
    assert (job);
    job->broker = self;
    broker_caller (&job->caller, session, msg);
    snprintf (job->peer, sizeof job->peer, "%s", session->peer);
    job->msg = af_msg_new (msg->id);
    snprintf (job->msg->account, sizeof job->msg->account, "%s", msg->account);
    snprintf (job->msg->device_id, sizeof job->msg->device_id, "%s", msg->device_id);
    job->msg->has_device = msg->has_device;
    job->msg->device = msg->device;
    job->msg->has_rid = msg->has_rid;
    memcpy (job->msg->rid, msg->rid, AF_ID_SIZE);
    return job;
}

//  May this connection start password work now? AF_OK, or
//  AF_E_RATE_LIMITED with err. Counts it when it may.
static int
s_pw_admit (af_broker_t *self, session_t *session, char *err, size_t errlen)
{
    int64_t now = zclock_mono ();
    if (session->pw_busy) {
        snprintf (err, errlen, "a password check is already running on this connection; wait for its answer");
        return AF_E_RATE_LIMITED;
    }
    if (now - session->pw_since > 60000) {
        session->pw_since = now;
        session->pw_count = 0;
    }
    if (session->pw_count >= AF_PW_PER_CONNECTION) {
        snprintf (err, errlen, "%d password attempts on this connection in a minute; try again in %d s",
                  AF_PW_PER_CONNECTION, (int) ((session->pw_since + 60000 - now) / 1000) + 1);
        return AF_E_RATE_LIMITED;
    }
    source_t *source = (source_t *) zhashx_lookup (self->sources, session->peer);
    if (source && now - source->since > 60000) {
        source->since = now;
        source->count = 0;
    }
    if (!source) {
        if (zhashx_size (self->sources) >= self->config.max_sessions) {
            snprintf (err, errlen, "too many sources are signing in right now; try again in a minute");
            return AF_E_RATE_LIMITED;
        }
        source = (source_t *) zmalloc (sizeof (source_t));
        assert (source);
        source->since = now;
        zhashx_insert (self->sources, session->peer, source);
    }
    if (source->count >= (uint32_t) self->config.pw_per_source) {
        snprintf (err, errlen, "%d password attempts from %s in a minute; try again in %d s",
                  self->config.pw_per_source, session->peer, (int) ((source->since + 60000 - now) / 1000) + 1);
        return AF_E_RATE_LIMITED;
    }
    source->count++;
    session->pw_count++;
    return AF_OK;
}

//  The session a password job was for, no longer busy; NULL if it is gone
static session_t *
s_pw_session (pwjob_t *job)
{
    session_t *session = broker_session (job->broker, job->caller.session);
    if (session)
        session->pw_busy = false;
    return session;
}

void
handle_ping (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    (void) msg;
    af_msg_t *pong = af_msg_new (AF_MSG_PONG);
    pong->logged_in = session->logged_in;
    broker_send (self, session, &pong);
}

//  The new account's password is hashed: store the account
static void
s_registered_run (void *arg, int code, const char *hash)
{
    pwjob_t *job = (pwjob_t *) arg;
    af_broker_t *self = job->broker;
    session_t *session = s_pw_session (job);
    char err [AF_MAX_REASON + 1] = "cannot hash the password";
    if (code == AF_OK)
        code = af_registry_create (self->registry, job->msg->account, hash, err, sizeof err);
    if (code == AF_OK) {
        self->stats.registrations++;
        zsys_info ("broker: registered account '%s'", job->msg->account);
    }
    else
        zsys_warning ("broker: refused REGISTER '%s': %s", job->msg->account, err);
    if (session) {
        if (code == AF_OK)
            broker_ok (self, session, job->msg);
        else
            broker_error (self, session, job->msg, code, "%s", err);
    }
    s_pwjob_free (&job);
}

//  A password check's result, in a group commit of its own (broker_send.c)
static void
s_registered (void *arg, int code, const char *hash)
{
    af_broker_t *self = ((pwjob_t *) arg)->broker;
    broker_batch_begin (self);
    s_registered_run (arg, code, hash);
    broker_batch_end (self);
}

void
handle_register (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1];
    int code = af_registry_check_new (self->registry, msg->account, msg->password, err, sizeof err);
    if (code == AF_OK)
        code = s_pw_admit (self, session, err, sizeof err);
    if (code != AF_OK) {
        zsys_warning ("broker: refused REGISTER '%s' from %.8s: %s", msg->account, session->key, err);
        broker_error (self, session, msg, code, "%s", err);
        return;
    }
    pwjob_t *job = s_pwjob_new (self, session, msg);
    if (af_hasher_hash (self->hasher, msg->password, s_registered, job) != AF_OK) {
        s_pwjob_free (&job);
        zsys_warning ("broker: refused REGISTER '%s': every hashing thread is busy", msg->account);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the broker is busy checking passwords; try again shortly");
        return;
    }
    session->pw_busy = true;
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

//  May this LOGIN go ahead? Without a password, the device's bound key is
//  the credential: the registry refuses a device ID bound to another key.
//  With one, the password is checked later, off the reactor (s_verified).
static int
s_login_check (af_broker_t *self, session_t *session, af_msg_t *msg, char *err, size_t errlen)
{
    int code = s_login_session (session, msg, err, errlen);
    if (code == AF_OK && session->pw_busy) {
        snprintf (err, errlen, "a password check is already running on this connection; wait for its answer");
        code = AF_E_RATE_LIMITED;
    }
    if (code == AF_OK && af_device_validate (&msg->device, err, errlen) != AF_OK)
        code = AF_E_BAD_DEVICE;
    if (code != AF_OK || *msg->password)
        return code;
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
    //  Devices the matcher cannot tell apart share its answers in syncs
    af_syncindex_fit_key (&session->device, session->digest);
    zhashx_update (self->online, online_key, session);
}

//  The rest of a LOGIN whose credential is good: the registry's record,
//  the session bound, the answer and the news
static void
s_login_finish (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1] = "";
    char device_id [AF_ID_HEX + 1];
    af_device_t device = msg->device;
    int code = af_registry_login (self->registry, msg->account, msg->device_id, session->key,
                                  &device, (uint64_t) zclock_time (), device_id, err, sizeof err);
    if (code != AF_OK) {
        self->stats.login_failures++;
        zsys_warning ("broker: refused LOGIN to '%s' from %.8s: %s", msg->account, session->key, err);
        broker_error (self, session, msg, code, "%s", err);
        return;
    }
    s_login_bind (self, session, msg, device_id);
    self->stats.logins++;
    zsys_info ("broker: device %s (%s) of '%s' logged in", device_id, msg->device.model, msg->account);

    af_msg_t *reply = af_msg_new (AF_MSG_LOGIN_OK);
    snprintf (reply->account, sizeof reply->account, "%s", msg->account);
    snprintf (reply->device_id, sizeof reply->device_id, "%s", device_id);
    reply->heartbeat = (uint32_t) self->config.heartbeat_ms;
    reply->liveness = (uint32_t) self->config.liveness;
    uint64_t list_at = 0;
    af_lists_seq (self->lists, msg->account, device_id, &reply->report_seq, &list_at);
    //  Now and then the whole list, to mend whatever a report might have missed
    reply->send_list = self->config.list_every_s > 0
                    && (uint64_t) zclock_time () - list_at > (uint64_t) self->config.list_every_s * 1000;
    snprintf (reply->endpoint, sizeof reply->endpoint, "%s",
              broker_cluster_standby (self, broker_shard_of (self, msg->account)));
    broker_reply (self, session, msg, &reply);
    broker_broadcast_devices (self, session->account);
    //  Everything queued for the device, from the start of its outbox
    session->sent_seq = 0;
    session->unacked = 0;
    broker_deliver (self, session);
}

//  A LOGIN's password was checked
static void
s_verified_run (void *arg, int code, const char *hash)
{
    (void) hash;
    pwjob_t *job = (pwjob_t *) arg;
    af_broker_t *self = job->broker;
    af_msg_t *msg = job->msg;
    if (code == AF_E_BAD_PASSWORD)
        af_guesses_failed (self->guesses, msg->account, job->peer, (uint64_t) zclock_time ());
    else
    if (code == AF_OK)
        af_guesses_passed (self->guesses, msg->account, job->peer);
    session_t *session = s_pw_session (job);
    char err [AF_MAX_REASON + 1] = "";
    if (session && code == AF_OK)
        code = s_login_session (session, msg, err, sizeof err);
    if (!session)
        ;                               //  the connection went away meanwhile
    else
    if (code == AF_OK)
        s_login_finish (self, session, msg);
    else {
        if (code == AF_E_BAD_PASSWORD)
            snprintf (err, sizeof err, "wrong password for '%s'", msg->account);
        else
        if (code == AF_E_INTERNAL)
            snprintf (err, sizeof err, "internal error checking the password");
        self->stats.login_failures++;
        zsys_warning ("broker: refused LOGIN to '%s' from %.8s: %s", msg->account, session->key, err);
        broker_error (self, session, msg, code, "%s", err);
    }
    s_pwjob_free (&job);
}

//  A password check's result, in a group commit of its own (broker_send.c)
static void
s_verified (void *arg, int code, const char *hash)
{
    af_broker_t *self = ((pwjob_t *) arg)->broker;
    broker_batch_begin (self);
    s_verified_run (arg, code, hash);
    broker_batch_end (self);
}

//  A LOGIN with a password: limits, the stored hash, then the check
static int
s_login_password (af_broker_t *self, session_t *session, af_msg_t *msg, char *err, size_t errlen)
{
    int code = af_guesses_check (self->guesses, msg->account, session->peer, (uint64_t) zclock_time (),
                                 err, errlen);
    char stored [crypto_pwhash_STRBYTES];
    if (code == AF_OK)
        code = s_pw_admit (self, session, err, errlen);
    if (code == AF_OK) {
        code = af_registry_pwhash (self->registry, msg->account, stored);
        if (code == AF_E_NO_ACCOUNT)
            snprintf (err, errlen, "no account '%s'", msg->account);
        else
        if (code != AF_OK)
            snprintf (err, errlen, "internal error checking the password");
    }
    if (code != AF_OK)
        return code;
    pwjob_t *job = s_pwjob_new (self, session, msg);
    if (af_hasher_verify (self->hasher, stored, msg->password, s_verified, job) != AF_OK) {
        s_pwjob_free (&job);
        snprintf (err, errlen, "the broker is busy checking passwords; try again shortly");
        return AF_E_UNAVAILABLE;
    }
    session->pw_busy = true;
    return AF_OK;
}

void
handle_login (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1] = "";
    int code = s_login_check (self, session, msg, err, sizeof err);
    if (code == AF_OK && *msg->password) {
        code = s_login_password (self, session, msg, err, sizeof err);
        if (code == AF_OK)
            return;                     //  s_verified goes on
    }
    if (code != AF_OK) {
        self->stats.login_failures++;
        zsys_warning ("broker: refused LOGIN to '%s' from %.8s: %s", msg->account, session->key, err);
        broker_error (self, session, msg, code, "%s", err);
        return;
    }
    s_login_finish (self, session, msg);
}

void
handle_logout (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    broker_session_logout (self, session);
    broker_ok (self, session, msg);
}

//  --------------------------------------------------------------------------
//  DEVICE_REMOVE: a lost or sold device leaves the account (its key revoked)

//  Remove the device, in one write transaction: its record and key, its
//  outbox, its pending offers (each push's initiator learns "failed"), its
//  install list; then tell everyone
static int
s_remove_device (af_broker_t *self, session_t *session, const char *device_id)
{
    zlistx_t *freed = zlistx_new (), *initiators = zlistx_new ();
    zlistx_set_destructor (freed, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (initiators, (zlistx_destructor_fn *) zstr_free);
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    int code = af_store_code (af_store_begin (store, true, &txn));
    if (code == AF_OK)
        code = af_registry_remove_txn (self->registry, txn, session->account, device_id, session->device_id,
                                       (uint64_t) zclock_time ());
    if (code == AF_OK)
        code = af_outbox_purge_txn (self->outbox, txn, session->account, device_id);
    if (code == AF_OK)
        code = af_pushes_drop_target_txn (self->pushes, txn, session->account, device_id,
                                          "the device was removed from the account", freed, initiators);
    if (code == AF_OK)
        code = af_lists_drop_txn (self->lists, txn, session->account, device_id);
    if (code == AF_OK)
        code = af_store_code (af_store_commit (store, &txn));
    af_store_abort (store, &txn);
    if (code == AF_OK) {
        zsys_info ("broker: device %s of '%s' removed by %s", device_id, session->account, session->device_id);
        af_syncindex_drop (self->syncindex, session->account);
        for (const char *hash = (const char *) zlistx_first (freed); hash; hash = (const char *) zlistx_next (freed))
            broker_data_remove (self, session->account, hash);
        for (const char *initiator = (const char *) zlistx_first (initiators); initiator;
             initiator = (const char *) zlistx_next (initiators))
            broker_deliver (self, broker_online (self, session->account, initiator));
        //  If it is online it learns why, and is offline from now on
        session_t *removed = broker_online (self, session->account, device_id);
        if (removed) {
            af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
            snprintf (bye->reason, sizeof bye->reason, "this device was removed from account '%s' by device %s",
                      session->account, session->device_id);
            broker_send (self, removed, &bye);
            af_transfers_drop (self->transfers, removed->hex);
            broker_uploads_drop (self, removed);
            zhashx_delete (self->online, removed->online_key);
            removed->logged_in = false;
        }
        broker_broadcast_devices (self, session->account);
    }
    zlistx_destroy (&freed);
    zlistx_destroy (&initiators);
    return code;
}

//  The password of a DEVICE_REMOVE was checked
static void
s_removal_verified_run (void *arg, int code, const char *hash)
{
    (void) hash;
    pwjob_t *job = (pwjob_t *) arg;
    af_broker_t *self = job->broker;
    af_msg_t *msg = job->msg;
    if (code == AF_E_BAD_PASSWORD)
        af_guesses_failed (self->guesses, msg->account, job->peer, (uint64_t) zclock_time ());
    else
    if (code == AF_OK)
        af_guesses_passed (self->guesses, msg->account, job->peer);
    session_t *session = s_pw_session (job);
    if (session && session->logged_in && streq (session->account, msg->account)) {
        if (code == AF_OK)
            code = s_remove_device (self, session, msg->device_id);
        if (code == AF_OK)
            broker_ok (self, session, msg);
        else {
            zsys_warning ("broker: refused DEVICE_REMOVE of %s from %s of '%s': %s", msg->device_id,
                          session->device_id, session->account, af_code_name (code));
            broker_error (self, session, msg, code, "%s", code == AF_E_BAD_PASSWORD?
                          "wrong password; removing a device needs the account's password":
                          code == AF_E_NO_DEVICE? "not a device of this account (removed meanwhile?)":
                          "the device could not be removed; try again");
        }
    }
    s_pwjob_free (&job);
}

//  A password check's result, in a group commit of its own (broker_send.c)
static void
s_removal_verified (void *arg, int code, const char *hash)
{
    af_broker_t *self = ((pwjob_t *) arg)->broker;
    broker_batch_begin (self);
    s_removal_verified_run (arg, code, hash);
    broker_batch_end (self);
}

void
handle_device_remove (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1] = "";
    uint8_t id [AF_ID_SIZE];
    af_device_t device;
    int code = AF_OK;
    if (af_id_from_hex (msg->device_id, id) != AF_OK) {
        snprintf (err, sizeof err, "DEVICE_REMOVE: 'deviceId' must be a device ID (32 lowercase hex digits)");
        code = AF_E_MALFORMED;
    }
    else
    if (streq (msg->device_id, session->device_id)) {
        snprintf (err, sizeof err, "a device cannot remove itself: remove it from another device of the "
                  "account, or log it out");
        code = AF_E_FORBIDDEN;
    }
    else
    if (af_registry_device (self->registry, session->account, msg->device_id, &device) != AF_OK) {
        snprintf (err, sizeof err, "device %s is not a device of this account", msg->device_id);
        code = AF_E_NO_DEVICE;
    }
    else
        code = af_guesses_check (self->guesses, session->account, session->peer, (uint64_t) zclock_time (),
                                 err, sizeof err);
    if (code == AF_OK)
        code = s_pw_admit (self, session, err, sizeof err);
    char stored [crypto_pwhash_STRBYTES];
    if (code == AF_OK && af_registry_pwhash (self->registry, session->account, stored) != AF_OK) {
        snprintf (err, sizeof err, "internal error checking the password");
        code = AF_E_INTERNAL;
    }
    pwjob_t *job = NULL;
    if (code == AF_OK) {
        job = s_pwjob_new (self, session, msg);
        snprintf (job->msg->account, sizeof job->msg->account, "%s", session->account);
        if (af_hasher_verify (self->hasher, stored, msg->password, s_removal_verified, job) != AF_OK) {
            s_pwjob_free (&job);
            snprintf (err, sizeof err, "the broker is busy checking passwords; try again shortly");
            code = AF_E_UNAVAILABLE;
        }
    }
    if (code != AF_OK) {
        zsys_warning ("broker: refused DEVICE_REMOVE of %s from %s of '%s': %s", msg->device_id,
                      session->device_id, session->account, err);
        broker_error (self, session, msg, code, "%s", err);
        return;
    }
    session->pw_busy = true;
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
    if (session->moved)
        return;                         //  its shard is another broker's now: nothing of it is ours to write
    af_registry_touch (self->registry, session->account, session->device_id, (uint64_t) zclock_time ());
    broker_broadcast_devices (self, session->account);
    if (self->config.verbose)
        zsys_info ("broker: device %s of '%s' is offline", session->device_id, session->account);
}

//  Whether account's keys are ours to write (af_guesses_expire)
static bool
s_ours (const char *account, void *arg)
{
    uint32_t shard;
    return broker_cluster_serves ((af_broker_t *) arg, account, &shard);
}

void
broker_failures_expire (af_broker_t *self, int64_t now)
{
    //  Once a minute: source windows that ended, and stored wrong-password
    //  counts whose window ended
    if (now - self->failures_at < AF_LOGIN_WINDOW_MS)
        return;
    self->failures_at = now;
    zlistx_t *keys = zhashx_keys (self->sources);
    for (const char *peer = (const char *) zlistx_first (keys); peer; peer = (const char *) zlistx_next (keys)) {
        source_t *source = (source_t *) zhashx_lookup (self->sources, peer);
        if (source && now - source->since > 60000)
            zhashx_delete (self->sources, peer);
    }
    zlistx_destroy (&keys);
    //  The sweep crosses accounts, so shards: a cluster member sweeps the
    //  counts of the shards it owns (the others' owners sweep theirs)
    if (af_guesses_expire (self->guesses, (uint64_t) zclock_time (), self->cluster? s_ours: NULL, self) != AF_OK)
        zsys_warning ("broker: cannot remove ended wrong-password counts: the store failed; next minute");
}
