/*  =========================================================================
    broker_session - a connection's session: made on its first message,
    found by routing ID or by online device, removed at a safe point

    A session exists per ROUTER connection whose CURVE key libzmq
    authenticated (af_zap sets it as the message's User-Id); it is made
    on the connection's first message, up to max_sessions. Handlers never
    free one: a session to be dropped is marked and listed, and
    broker_reap removes it at the end of the event, when no handler holds
    it. by_seen keeps sessions in the order they were last heard from, so
    the heartbeat timer expires the silent ones from its front.
    =========================================================================
*/
#include "broker_int.h"

//  --------------------------------------------------------------------------
//  Finding sessions

session_t *
broker_session (af_broker_t *self, const char *hex)
{
    return (session_t *) zhashx_lookup (self->sessions, hex);
}

session_t *
broker_online (af_broker_t *self, const char *account, const char *device_id)
{
    char key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
    snprintf (key, sizeof key, "%s/%s", account, device_id);
    return (session_t *) zhashx_lookup (self->online, key);
}

//  --------------------------------------------------------------------------
//  Sessions

void
broker_session_free (void **item)
{
    session_t *session = (session_t *) *item;
    if (session) {
        zframe_destroy (&session->routing);
        zlistx_destroy (&session->queue);
        free (session);
        *item = NULL;
    }
}

void
broker_session_remove (af_broker_t *self, session_t *session)
{
    broker_session_logout (self, session);
    broker_cluster_unpark (self, session);
    zhashx_delete (self->backlog, session->hex);
    zlistx_delete (self->by_seen, session->seen);
    zhashx_delete (self->sessions, session->hex);
}

//  Remove the sessions dropped since the last safe point. Called at the
//  end of each event, when no handler holds a session; a removal that
//  drops another session (a device list it cannot take) is seen too.
void
broker_reap (af_broker_t *self)
{
    char *hex;
    while ((hex = (char *) zlistx_detach (self->dropping, NULL))) {
        session_t *session = broker_session (self, hex);
        if (session && session->dropped)
            broker_session_remove (self, session);
        free (hex);
    }
}

//  Messages from a dropped connection are ignored for a while
bool
broker_banned (af_broker_t *self, const char *hex)
{
    int64_t *until = (int64_t *) zhashx_lookup (self->banned, hex);
    if (!until)
        return false;
    if (zclock_mono () < *until)
        return true;
    zhashx_delete (self->banned, hex);
    return false;
}

//  The session of a message's connection, made on its first message: a
//  connection without an authenticated CURVE key gets none (NULL).
session_t *
broker_session_for (af_broker_t *self, const char *hex, zframe_t *routing, zframe_t *body, const char *user_id)
{
    session_t *session = broker_session (self, hex);
    if (session)
        return session;
    if (!user_id || strlen (user_id) != AF_KEY_Z85 || zhashx_size (self->sessions) >= self->config.max_sessions) {
        self->stats.refused++;
        if (af_loglimit_pass (self->drop_log, zclock_mono ()))
            zsys_warning ("broker: dropped a message from %s: %s", hex,
                          !user_id || strlen (user_id) != AF_KEY_Z85? "no authenticated CURVE key":
                          "too many sessions (max_sessions)");
        return NULL;
    }
    session = (session_t *) zmalloc (sizeof (session_t));
    assert (session);
    snprintf (session->hex, sizeof session->hex, "%s", hex);
    session->routing = zframe_dup (routing);
    memcpy (session->key, user_id, AF_KEY_Z85 + 1);
    const char *peer = zframe_meta (body, "Peer-Address");
    snprintf (session->peer, sizeof session->peer, "%s", peer? peer: "unknown");
    //  The connection's socket, to close it if the peer stops reading:
    //  ZMQ_SRCFD, which libzmq 4.3 keeps as the message property "__fd"
    //  (zmq_msg_get reads it from there). The descriptor may already be
    //  another connection's; its address and port must match the peer's
    //  now and again when it is closed.
    session->fd = -1;
    const char *fd = zframe_meta (body, "__fd");
    char address [AF_PEER_ADDRESS];
    int port;
    if (fd && af_peers_address (atoi (fd), address, sizeof address, &port) == 0 && streq (address, session->peer)) {
        session->fd = atoi (fd);
        session->port = port;
    }
    session->last_seen = zclock_mono ();
    session->seen = zlistx_add_end (self->by_seen, session);
    zhashx_insert (self->sessions, hex, session);
    return session;
}
