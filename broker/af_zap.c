/*  =========================================================================
    af_zap - the broker's ZAP handler (ZeroMQ RFC 27) for CURVE, and the
    watcher of both sockets' connections

    See af_zap.h. One thread, one poller: the actor pipe, the ZAP REP
    socket and a PAIR per watched socket's monitor. Monitor events are
    taken first and all at once, so the connection counts are current
    when a ZAP request is answered and a descriptor's DISCONNECTED is seen
    before a later ACCEPTED reuses it.
    =========================================================================
*/
#include "af_zap.h"
#include "af_limits.h"
#include "af_peers.h"
#include "af_loglimit.h"

#include <dirent.h>

//  One watched socket
typedef struct {
    const char *name;               //  "nodes", "workers"
    zsock_t *monitor;               //  PAIR on the socket's monitor
    af_peers_t *peers;
    char failure [160];             //  a handshake failure waiting for its DISCONNECTED
    bool unfinished;                //  ... and it was the handshake not finishing
} watch_t;

typedef struct {
    zsock_t *handler;               //  ZAP REP
    char worker_dir [512];          //  "" = no worker is allowed
    char peer_key [AF_KEY_Z85 + 1];  //  "" = no broker mesh
    watch_t watches [2];
    size_t watch_count;
    af_loglimit_t *log;             //  refusals, both sockets and ZAP
} zap_t;

//  True if dir holds a certificate (*.cert, public part) with this key.
static bool
s_worker_allowed (const char *dir, const char *key)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return false;
    bool found = false;
    struct dirent *entry;
    while (!found && (entry = readdir (handle))) {
        size_t len = strlen (entry->d_name);
        if (len < 6 || strcmp (entry->d_name + len - 5, ".cert") != 0)
            continue;
        char path [1024];
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        zcert_t *cert = zcert_load (path);
        if (cert) {
            found = streq (zcert_public_txt (cert), key);
            zcert_destroy (&cert);
        }
    }
    closedir (handle);
    return found;
}

//  --------------------------------------------------------------------------
//  The sockets' monitors

//  What a handshake failure event means, for the log
static void
s_failure_text (char *text, size_t size, uint16_t event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        snprintf (text, size, "its handshake did not finish");
    else
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf (text, size, "not a CURVE client (mechanism mismatch; NULL and PLAIN are refused)");
    else
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        snprintf (text, size, "its CURVE handshake failed (cryptographic error: a wrong broker key?)");
    else
        snprintf (text, size, "malformed handshake (ZMTP protocol error 0x%x)", value);
}

static void
s_watch_event (zap_t *self, watch_t *watch, uint16_t event, uint32_t value)
{
    int64_t now = zclock_mono ();
    if (event == ZMQ_EVENT_ACCEPTED) {
        int fd = (int) value;
        char address [AF_PEER_ADDRESS];
        int port;
        if (af_peers_address (fd, address, sizeof address, &port))
            return;                     //  closed already; not counted
        int code = af_peers_accept (watch->peers, fd, address, now);
        if (code == AF_OK)
            return;
        af_peers_shutdown (fd, address, port);
        if (!af_loglimit_pass (self->log, now))
            ;
        else
        if (code == AF_E_UNAVAILABLE)
            zsys_warning ("zap: refused a connection on %s from %s: the broker has %zu connections, its limit "
                          "(broker/max_sessions)", watch->name, address, af_peers_size (watch->peers));
        else
            zsys_warning ("zap: refused a connection on %s from %s: %zu connections from that address already "
                          "(security/max_per_source)", watch->name, address, af_peers_count (watch->peers, address));
    }
    else
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        s_failure_text (watch->failure, sizeof watch->failure, event, value);
        watch->unfinished = event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    }
    else
    if (event == ZMQ_EVENT_DISCONNECTED) {
        bool refused;
        int64_t age;
        const char *address = af_peers_close (watch->peers, (int) value, now, &refused, &age);
        if (*watch->failure && !refused && af_loglimit_pass (self->log, now)) {
            //  Unfinished: by the handshake timer, or the peer went away
            //  (a NULL or PLAIN client closes as soon as it reads the
            //  broker's greeting, often before the broker reads its own)
            char when [128] = "";
            if (address && watch->unfinished && age >= AF_HANDSHAKE_MS - 100)
                snprintf (when, sizeof when, " within %d s", AF_HANDSHAKE_MS / 1000);
            else
            if (address && watch->unfinished)
                snprintf (when, sizeof when, ": it closed after %lld ms, as a client that is not CURVE does "
                          "on reading the broker's greeting", (long long) age);
            zsys_warning ("zap: refused a connection on %s from %s: %s%s", watch->name,
                          address? address: "an address gone before it could be read", watch->failure, when);
        }
        watch->failure [0] = 0;
    }
    else
    if (event == ZMQ_EVENT_ACCEPT_FAILED && af_loglimit_pass (self->log, now))
        zsys_warning ("zap: cannot accept a connection on %s: %s", watch->name, strerror ((int) value));
}

//  Take every event waiting on a monitor (the PAIR has a receive timeout of 0)
static void
s_watch_drain (zap_t *self, watch_t *watch)
{
    zmsg_t *event;
    while ((event = zmsg_recv (watch->monitor))) {
        zframe_t *head = zmsg_first (event);
        if (head && zframe_size (head) == 6) {
            uint16_t id;
            uint32_t value;
            memcpy (&id, zframe_data (head), 2);
            memcpy (&value, zframe_data (head) + 2, 4);
            s_watch_event (self, watch, id, value);
        }
        zmsg_destroy (&event);
    }
}

static int
s_watch_open (watch_t *watch, const char *name, const char *endpoint, size_t max_per_source, size_t max_total)
{
    watch->name = name;
    watch->peers = af_peers_new (max_per_source, max_total);
    watch->monitor = zsock_new (ZMQ_PAIR);
    if (!watch->monitor)
        return -1;
    //  An event that does not fit is lost (the monitor sends without
    //  waiting); af_peers heals a lost DISCONNECTED when the descriptor
    //  comes back, but keep that rare
    zsock_set_rcvhwm (watch->monitor, 100000);
    zsock_set_rcvtimeo (watch->monitor, 0);
    return zsock_connect (watch->monitor, "%s", endpoint);
}

//  --------------------------------------------------------------------------
//  ZAP requests

static void
s_reply (zsock_t *handler, zframe_t **request_id, const char *status, const char *text,
         const char *user_id)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id && *request_id)
        zmsg_append (reply, request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user_id);
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, handler);
}

static void
s_zap_request (zap_t *self, zmsg_t *request)
{
    //  version, request id, domain, address, identity, mechanism, key
    if (zmsg_size (request) < 6) {
        zsys_warning ("zap: malformed ZAP request dropped");
        s_reply (self->handler, NULL, "500", "malformed", "");     //  REP must answer to stay in step
        return;
    }
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *client_key = zmsg_pop (request);
    char key [AF_KEY_Z85 + 1] = "";
    if (client_key && zframe_size (client_key) == 32)
        zmq_z85_encode (key, zframe_data (client_key), 32);
    int64_t now = zclock_mono ();

    if (!streq (version, "1.0") || !streq (mechanism, "CURVE") || !*key) {
        if (af_loglimit_pass (self->log, now))
            zsys_warning ("zap: refused a connection on %s from %s: %s, only CURVE is accepted", domain, address,
                          mechanism);
        s_reply (self->handler, &request_id, "400", "CURVE required", "");
    }
    else
    if (streq (domain, AF_ZAP_NODES))
        s_reply (self->handler, &request_id, "200", "OK", key);
    else
    if (streq (domain, AF_ZAP_PEERS) && *self->peer_key && streq (key, self->peer_key))
        s_reply (self->handler, &request_id, "200", "OK", key);     //  a broker of our cluster: our key
    else
    if (streq (domain, AF_ZAP_WORKERS) && *self->worker_dir && s_worker_allowed (self->worker_dir, key))
        s_reply (self->handler, &request_id, "200", "OK", key);
    else
    if (streq (domain, AF_ZAP_PEERS)) {
        if (af_loglimit_pass (self->log, now))
            zsys_warning ("zap: refused key %s (a connection on %s from %s): not the cluster's key", key, domain,
                          address);
        s_reply (self->handler, &request_id, "400", "not a broker of this cluster", "");
    }
    else {
        if (af_loglimit_pass (self->log, now))
            zsys_warning ("zap: refused worker key %s (a connection on %s from %s): no certificate with that key in %s",
                          key, domain, address, *self->worker_dir? self->worker_dir: "(none)");
        s_reply (self->handler, &request_id, "400", "worker key not allowed", "");
    }
    zframe_destroy (&request_id);
    zframe_destroy (&client_key);
    zstr_free (&version);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
}

//  --------------------------------------------------------------------------
//  The actor

void
af_zap_actor (zsock_t *pipe, void *args)
{
    const af_zap_args_t *given = (const af_zap_args_t *) args;
    zap_t self = { 0 };
    snprintf (self.worker_dir, sizeof self.worker_dir, "%s", given && given->worker_keys? given->worker_keys: "");
    snprintf (self.peer_key, sizeof self.peer_key, "%s", given && given->peer_key? given->peer_key: "");
    self.log = af_loglimit_new ("zap", "refused connections", AF_LOG_REFUSALS);
    self.handler = zsock_new (ZMQ_REP);
    bool ok = self.handler && zsock_bind (self.handler, "inproc://zeromq.zap.01") == 0;
    if (!ok)
        zsys_error ("zap: cannot bind ZAP handler: %s", zmq_strerror (zmq_errno ()));
    const char *endpoints [2] = { given? given->nodes_monitor: NULL, given? given->workers_monitor: NULL };
    const char *names [2] = { AF_ZAP_NODES, AF_ZAP_WORKERS };
    for (int i = 0; ok && i < 2; i++)
        if (endpoints [i]) {
            watch_t *watch = &self.watches [self.watch_count++];
            if (s_watch_open (watch, names [i], endpoints [i], given->max_per_source,
                              i == 0? given->max_nodes: 0)) {
                zsys_error ("zap: cannot watch %s: %s", endpoints [i], zmq_strerror (zmq_errno ()));
                ok = false;
            }
        }
    zpoller_t *poller = ok? zpoller_new (pipe, NULL): NULL;
    for (size_t i = 0; poller && i < self.watch_count; i++)
        zpoller_add (poller, self.watches [i].monitor);
    if (poller)
        zpoller_add (poller, self.handler);
    zsock_signal (pipe, poller? 0: 1);

    while (poller && !zsys_interrupted) {
        void *which = zpoller_wait (poller, 1000);
        //  Connections first, so counts are current for what follows
        for (size_t i = 0; i < self.watch_count; i++)
            s_watch_drain (&self, &self.watches [i]);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        else
        if (which == self.handler) {
            zmsg_t *request = zmsg_recv (self.handler);
            if (!request)
                break;
            s_zap_request (&self, request);
            zmsg_destroy (&request);
        }
        else
        if (!which && zpoller_terminated (poller))
            break;
        af_loglimit_flush (self.log, zclock_mono ());
    }
    zpoller_destroy (&poller);
    for (size_t i = 0; i < self.watch_count; i++) {
        zsock_destroy (&self.watches [i].monitor);
        af_peers_destroy (&self.watches [i].peers);
    }
    zsock_destroy (&self.handler);
    af_loglimit_destroy (&self.log);
}
