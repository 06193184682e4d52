/*  =========================================================================
    af_zap - the broker's ZAP handler (ZeroMQ RFC 27) for CURVE
    =========================================================================
*/
#include "af_zap.h"
#include "af_limits.h"

#include <dirent.h>

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

static void
s_reply (zsock_t *handler, zframe_t *request_id, const char *status, const char *text,
         const char *user_id)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_append (reply, &request_id);
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user_id);
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, handler);
}

void
af_zap_actor (zsock_t *pipe, void *args)
{
    const char *worker_dir = (const char *) args;
    zsock_t *handler = zsock_new (ZMQ_REP);
    assert (handler);
    if (zsock_bind (handler, "inproc://zeromq.zap.01")) {
        zsys_error ("zap: cannot bind ZAP handler: %s", zmq_strerror (zmq_errno ()));
        zsock_destroy (&handler);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        else
        if (which == handler) {
            zmsg_t *request = zmsg_recv (handler);
            if (!request)
                break;
            //  version, request id, domain, address, identity, mechanism, key
            if (zmsg_size (request) < 6) {
                zsys_warning ("zap: malformed ZAP request dropped");
                zmsg_destroy (&request);
                //  REP must answer something to stay in step
                zmsg_t *empty = zmsg_new ();
                zmsg_addstr (empty, "1.0");
                zmsg_addstr (empty, "");
                zmsg_addstr (empty, "500");
                zmsg_addstr (empty, "malformed");
                zmsg_addstr (empty, "");
                zmsg_addmem (empty, NULL, 0);
                zmsg_send (&empty, handler);
                continue;
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

            if (!streq (version, "1.0") || !streq (mechanism, "CURVE") || !*key) {
                zsys_warning ("zap: refused %s connection from %s: only CURVE is accepted",
                              mechanism, address);
                s_reply (handler, request_id, "400", "CURVE required", "");
            }
            else
            if (streq (domain, AF_ZAP_NODES))
                s_reply (handler, request_id, "200", "OK", key);
            else
            if (streq (domain, AF_ZAP_WORKERS) && worker_dir && s_worker_allowed (worker_dir, key))
                s_reply (handler, request_id, "200", "OK", key);
            else {
                zsys_warning ("zap: refused worker key %s from %s: no certificate with that key in %s",
                              key, address, worker_dir? worker_dir: "(none)");
                s_reply (handler, request_id, "400", "worker key not allowed", "");
            }
            zframe_destroy (&client_key);
            zstr_free (&version);
            zstr_free (&domain);
            zstr_free (&address);
            zstr_free (&identity);
            zstr_free (&mechanism);
            zmsg_destroy (&request);
        }
        else
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&handler);
}
