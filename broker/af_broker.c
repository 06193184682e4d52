/*  =========================================================================
    af_broker - the appferry broker: sessions, accounts, devices, workers

    Message flow. Every frame from a node is decoded by af_msg with its
    bounds; anything that does not decode gets an ERROR naming the problem
    (echoing the rid when one could be read) and the broker carries on.
    A session is created per connection (ROUTER routing ID) and remembers
    the CURVE key libzmq authenticated (User-Id, set by af_zap). After
    LOGIN the session is bound to one account and one device; a message
    claiming another account or device is refused with E_FORBIDDEN.

    Liveness. Nodes and workers PING every heartbeat; every message counts
    as a sign of life. A peer silent for heartbeat x liveness is dead: a
    node's device goes offline and its account's devices get a new list; a
    worker's requests go back to the queue.
    =========================================================================
*/
#include "af_broker.h"
#include "af_msg.h"
#include "af_zap.h"
#include "af_outbox.h"
#include "af_push.h"
#include "af_transfer.h"
#include "af_download.h"
#include "af_installs.h"

#include <errno.h>
#include <sodium.h>
#include <sys/stat.h>

typedef struct {
    char hex [32];                  //  routing ID in hex: sessions key
    zframe_t *routing;
    char key [AF_KEY_Z85 + 1];      //  CURVE key of the connection
    bool logged_in;
    char account [AF_MAX_ACCOUNT + 1];
    char device_id [AF_ID_HEX + 1];
    char online_key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
    af_device_t device;
    int64_t last_seen;
    char digest [AF_ID_HEX + 1];    //  of the device description, for sync's answer cache
    uint64_t sent_seq;              //  last outbox item sent on this connection
    uint32_t unacked;               //  items sent and not yet acknowledged
} session_t;

typedef struct {
    char hex [32];
    zframe_t *routing;
    char key [AF_KEY_Z85 + 1];
    char service [AF_MAX_NAME + 1];
    uint32_t credit;
    uint32_t inflight;
    int heartbeat_ms;               //  max (broker's, worker's READY)
    int64_t last_seen;
} worker_t;

typedef struct {
    int count;
    int64_t since;                  //  monotonic ms: start of the window
} failures_t;

//  A push waiting for the matcher's answer for each of its targets
typedef struct {
    char hex [AF_ID_HEX + 1];       //  push ID: push_jobs key
    char session [32];              //  the initiator's connection
    bool client_has_rid;
    uint8_t client_rid [AF_ID_SIZE];
    char account [AF_MAX_ACCOUNT + 1];
    char initiator [AF_ID_HEX + 1];
    af_msg_t *accepted;             //  PUSH_ACCEPTED being filled in
    af_msg_t **offers;              //  one OFFER per target with a package
    uint32_t outstanding;           //  matcher answers still to come
    char data_hash [AF_HASH_HEX + 1];   //  the push's user data, if any
    uint64_t data_total;
} push_job_t;

//  A SYNC waiting for the matcher's answer for each program it lacks
typedef struct {
    char hex [AF_ID_HEX + 1];       //  sync_jobs key (random)
    char session [32];
    bool client_has_rid;
    uint8_t client_rid [AF_ID_SIZE];
    af_msg_t *diff;                 //  SYNC_DIFF being filled in
    char (*programs) [AF_MAX_PROGRAM + 1];  //  distinct programs to resolve
    uint32_t program_count;
    uint32_t outstanding;
    char digest [AF_ID_HEX + 1];    //  of the asker's device description
    void *results;                  //  resolved_t per program (see below)
    zhashx_t *where;                //  program -> its index + 1
} sync_job_t;

//  One install, as the sync index holds it
typedef struct {
    char device_id [AF_ID_HEX + 1];     //  "" for history
    char program [AF_MAX_PROGRAM + 1];
    char version_name [AF_MAX_VERSION_NAME + 1];
    uint64_t version_code;
    uint64_t at;
} index_entry_t;

typedef struct {
    index_entry_t *entries;
    size_t count, alloc;
    size_t installs;                //  entries before this are installs, after: history
    //  Built once from the entries, so a diff costs what it returns:
    zhashx_t *programs;             //  program -> zlistx of its entries (installs
                                    //  first, then its history entry)
    zhashx_t *devices;              //  device ID -> zhashx set of its programs
} index_t;

//  A matcher answer kept for sync diffs (AF_RESOLVE_CACHE_MS)
typedef struct {
    uint32_t fit;
    char fit_version [AF_MAX_VERSION_NAME + 1];
    char reason [AF_MAX_REASON + 1];
    int64_t expires;
} resolved_t;

#define AF_RESOLVE_CACHE_MS     10000   //  how long a sync reuses a matcher answer
#define AF_RESOLVE_CACHE_MAX    100000  //  answers kept; beyond, all are dropped
#define AF_INDEX_CACHE_MAX      1024    //  accounts whose lists are kept in memory
#define AF_MAX_SYNC_JOBS        64      //  diffs being resolved at once; later SYNCs
                                        //  wait their turn, so memory stays bounded

//  A SYNC waiting for its turn
typedef struct {
    char session [32];
    bool has_rid;
    uint8_t rid [AF_ID_SIZE];
} sync_wait_t;

//  A blob a node is sending us (a push's user data)
typedef struct {
    char key [32 + AF_HASH_HEX + 2];    //  "session/hash"
    char session [32];
    uint8_t rid [AF_ID_SIZE];           //  the UPLOAD's, for the final answer
    bool has_rid;
    af_download_t *download;
    char part [700];
} upload_t;

typedef struct {
    char hex [AF_ID_HEX + 1];       //  broker's rid: requests key
    uint8_t rid [AF_ID_SIZE];
    char session [32];              //  requesting session (hex routing ID)
    bool client_has_rid;
    uint8_t client_rid [AF_ID_SIZE];
    char service [AF_MAX_NAME + 1];
    char worker [32];               //  assigned worker, "" while queued
    af_msg_t *msg;                  //  what to send the worker
    int64_t created;                //  monotonic ms, for hand-over order
    int64_t deadline;
    void *handle;                   //  in the queue while waiting, else NULL
    push_job_t *job;                //  the broker's own request for a push
    sync_job_t *sync;               //  ... or for a sync
    uint32_t target;                //  which of the job's targets or programs
} request_t;

struct _af_broker_t {
    af_broker_config_t config;
    zcert_t *cert;
    af_registry_t *registry;
    zactor_t *zap;
    zsock_t *frontend;
    zsock_t *backend;
    zloop_t *loop;
    zhashx_t *sessions;             //  routing hex -> session_t (owned)
    zhashx_t *online;               //  "account/device" -> session_t
    zhashx_t *workers;              //  routing hex -> worker_t (owned)
    zhashx_t *requests;             //  rid hex -> request_t (owned)
    zlistx_t *queue;                //  request_t waiting for a worker
    zhashx_t *failures;             //  account -> failures_t (wrong passwords)
    af_outbox_t *outbox;
    af_pushes_t *pushes;
    af_transfers_t *transfers;
    af_installs_t *installs;
    zhashx_t *sync_jobs;            //  rid hex -> sync_job_t (owned)
    zhashx_t *indexes;              //  account -> index_t: its install lists, read
                                    //  once, dropped at the account's next change
    zhashx_t *resolved;             //  "device digest/program" -> resolved_t
    zlistx_t *sync_waiting;         //  sync_wait_t, first come first served
    zhashx_t *push_jobs;            //  push ID hex -> push_job_t (owned)
    zhashx_t *uploads;              //  "session/hash" -> upload_t (owned)
    char data_dir [600];            //  DATA/data: blobs/ (received user data), incoming/
    char nodes_endpoint [256];
    char workers_endpoint [256];
};

//  --------------------------------------------------------------------------
//  Configuration

void
af_broker_config_defaults (af_broker_config_t *config)
{
    memset (config, 0, sizeof *config);
    snprintf (config->data_dir, sizeof config->data_dir, "/var/lib/appferry");
    snprintf (config->nodes, sizeof config->nodes, "tcp://*:5670");
    snprintf (config->workers, sizeof config->workers, "tcp://127.0.0.1:5671");
    config->heartbeat_ms = AF_HEARTBEAT_MS;
    config->liveness = AF_HEARTBEAT_LIVENESS;
    config->request_timeout_ms = AF_REQUEST_TIMEOUT_MS;
    config->pwcost.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    config->pwcost.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    config->max_sessions = 100000;
    config->max_queue = 100000;
    config->max_age_s = 86400;
    config->list_every_s = 86400;
}

static int
s_config_int (zconfig_t *root, const char *path, int min, int max, int *value,
              char *err, size_t errlen)
{
    char *text = zconfig_get (root, path, NULL);
    if (!text)
        return 0;
    char *end;
    errno = 0;
    long n = strtol (text, &end, 10);
    if (errno || *end || end == text || n < min || n > max) {
        snprintf (err, errlen, "%s: expected a number %d..%d, got '%s'", path, min, max, text);
        return -1;
    }
    *value = (int) n;
    return 0;
}

static int
s_config_str (zconfig_t *root, const char *path, char *buf, size_t size, char *err, size_t errlen)
{
    char *text = zconfig_get (root, path, NULL);
    if (!text)
        return 0;
    if (strlen (text) >= size || !*text) {
        snprintf (err, errlen, "%s: must be 1..%zu characters", path, size - 1);
        return -1;
    }
    strcpy (buf, text);
    return 0;
}

int
af_broker_config_load (af_broker_config_t *config, const char *path, char *err, size_t errlen)
{
    static const char *known [] = {
        "broker/data_dir", "broker/nodes", "broker/workers", "broker/heartbeat",
        "broker/liveness", "broker/request_timeout", "broker/max_sessions", "broker/max_queue",
        "broker/verbose", "broker/catalog", "broker/list_every", "security/pwhash", "security/worker_keys",
        "policy/min_node_version", "policy/require", "policy/max_age", NULL };
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        snprintf (err, errlen, "%s: cannot read or parse (ZPL format, see deploy/appferry-broker.cfg)", path);
        return -1;
    }
    int rc = -1;
    //  Every key must be known: a typo should not silently mean a default
    for (zconfig_t *section = zconfig_child (root); section; section = zconfig_next (section))
        for (zconfig_t *item = zconfig_child (section); item; item = zconfig_next (item)) {
            char full [256];
            snprintf (full, sizeof full, "%s/%s", zconfig_name (section), zconfig_name (item));
            bool found = false;
            for (int i = 0; known [i] && !found; i++)
                found = streq (known [i], full);
            if (!found) {
                snprintf (err, errlen, "%s: unknown setting '%s'", path, full);
                goto done;
            }
        }
    int max_sessions = (int) config->max_sessions, max_queue = (int) config->max_queue;
    int verbose = config->verbose;
    if (s_config_str (root, "broker/data_dir", config->data_dir, sizeof config->data_dir, err, errlen)
    ||  s_config_str (root, "broker/nodes", config->nodes, sizeof config->nodes, err, errlen)
    ||  s_config_str (root, "broker/workers", config->workers, sizeof config->workers, err, errlen)
    ||  s_config_str (root, "security/worker_keys", config->worker_keys, sizeof config->worker_keys, err, errlen)
    ||  s_config_int (root, "broker/heartbeat", 50, 600000, &config->heartbeat_ms, err, errlen)
    ||  s_config_int (root, "broker/liveness", 1, 100, &config->liveness, err, errlen)
    ||  s_config_int (root, "broker/request_timeout", 100, 3600000, &config->request_timeout_ms, err, errlen)
    ||  s_config_int (root, "broker/max_sessions", 1, 10000000, &max_sessions, err, errlen)
    ||  s_config_int (root, "broker/max_queue", 1, 10000000, &max_queue, err, errlen)
    ||  s_config_int (root, "broker/verbose", 0, 1, &verbose, err, errlen)
    ||  s_config_str (root, "broker/catalog", config->catalog, sizeof config->catalog, err, errlen)
    ||  s_config_str (root, "policy/min_node_version", config->min_node_version,
                      sizeof config->min_node_version, err, errlen)
    ||  s_config_str (root, "policy/require", config->require, sizeof config->require, err, errlen)
    ||  s_config_int (root, "policy/max_age", 1, 365 * 86400, &config->max_age_s, err, errlen)
    ||  s_config_int (root, "broker/list_every", 0, 365 * 86400, &config->list_every_s, err, errlen))
        goto done;
    uint32_t parsed;
    if (*config->min_node_version && af_version_parse (config->min_node_version, &parsed)) {
        snprintf (err, errlen, "policy/min_node_version: '%s' is not a dotted version", config->min_node_version);
        goto done;
    }
    config->max_sessions = (size_t) max_sessions;
    config->max_queue = (size_t) max_queue;
    config->verbose = verbose != 0;
    char *cost = zconfig_get (root, "security/pwhash", NULL);
    if (cost) {
        if (streq (cost, "interactive")) {
            config->pwcost.opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
            config->pwcost.memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
        }
        else
        if (streq (cost, "moderate")) {
            config->pwcost.opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
            config->pwcost.memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
        }
        else
        if (streq (cost, "min")) {
            config->pwcost.opslimit = crypto_pwhash_OPSLIMIT_MIN;
            config->pwcost.memlimit = crypto_pwhash_MEMLIMIT_MIN;
        }
        else {
            snprintf (err, errlen, "security/pwhash: expected interactive, moderate or min, got '%s'", cost);
            goto done;
        }
    }
    rc = 0;
done:
    zconfig_destroy (&root);
    return rc;
}

//  --------------------------------------------------------------------------
//  Sessions

static void
s_session_free (void **item)
{
    session_t *session = (session_t *) *item;
    if (session) {
        zframe_destroy (&session->routing);
        free (session);
        *item = NULL;
    }
}

static void
s_worker_free (void **item)
{
    worker_t *worker = (worker_t *) *item;
    if (worker) {
        zframe_destroy (&worker->routing);
        free (worker);
        *item = NULL;
    }
}

//  For items that are one plain allocation (failures_t, resolved_t)
static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_request_free (void **item)
{
    request_t *request = (request_t *) *item;
    if (request) {
        af_msg_destroy (&request->msg);
        free (request);
        *item = NULL;
    }
}

static void
s_push_job_free (void **item)
{
    push_job_t *job = (push_job_t *) *item;
    if (job) {
        for (uint32_t i = 0; job->offers && i < job->accepted->result_count; i++)
            af_msg_destroy (&job->offers [i]);
        free (job->offers);
        af_msg_destroy (&job->accepted);
        free (job);
        *item = NULL;
    }
}

static void
s_upload_free (void **item)
{
    upload_t *upload = (upload_t *) *item;
    if (upload) {
        af_download_destroy (&upload->download);    //  removes a partial file
        free (upload);
        *item = NULL;
    }
}

static void
s_send_node (af_broker_t *self, session_t *session, af_msg_t **msg_p)
{
    if (*msg_p) {
        if (af_msg_send (*msg_p, self->frontend, session->routing))
            zsys_warning ("broker: cannot send %s to node %s", af_msg_command_name ((*msg_p)->id),
                          session->hex);
        af_msg_destroy (msg_p);
    }
}

//  Send a device list to every online device of the account.
static void
s_broadcast_devices (af_broker_t *self, const char *account)
{
    af_device_t *devices;
    uint32_t count;
    if (af_registry_devices (self->registry, account, &devices, &count) != AF_OK) {
        zsys_error ("broker: cannot read the devices of '%s'", account);
        return;
    }
    char key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
    for (uint32_t i = 0; i < count; i++) {
        snprintf (key, sizeof key, "%s/%s", account, devices [i].id);
        devices [i].online = zhashx_lookup (self->online, key) != NULL;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!devices [i].online)
            continue;
        snprintf (key, sizeof key, "%s/%s", account, devices [i].id);
        session_t *session = (session_t *) zhashx_lookup (self->online, key);
        af_msg_t *msg = af_msg_new (AF_MSG_DEVICE_LIST);
        snprintf (msg->account, sizeof msg->account, "%s", account);
        if (af_msg_set_device_count (msg, count) == 0) {
            memcpy (msg->devices, devices, count * sizeof (af_device_t));
            s_send_node (self, session, &msg);
        }
        af_msg_destroy (&msg);
    }
    free (devices);
}

//  A session's device goes offline: index, lastSeen, and the others told.
static void
s_session_logout (af_broker_t *self, session_t *session)
{
    af_transfers_drop (self->transfers, session->hex);
    size_t len = strlen (session->hex);
    zlistx_t *gone = zlistx_new ();
    for (upload_t *upload = (upload_t *) zhashx_first (self->uploads); upload;
         upload = (upload_t *) zhashx_next (self->uploads))
        if (strncmp (upload->key, session->hex, len) == 0 && upload->key [len] == '/')
            zlistx_add_end (gone, upload->key);
    for (const char *key = (const char *) zlistx_first (gone); key; key = (const char *) zlistx_next (gone))
        zhashx_delete (self->uploads, key);
    zlistx_destroy (&gone);
    if (!session->logged_in)
        return;
    if (zhashx_lookup (self->online, session->online_key) == session)
        zhashx_delete (self->online, session->online_key);
    session->logged_in = false;
    af_registry_touch (self->registry, session->account, session->device_id, (uint64_t) zclock_time ());
    s_broadcast_devices (self, session->account);
    if (self->config.verbose)
        zsys_info ("broker: device %s of '%s' is offline", session->device_id, session->account);
}

static void
s_session_remove (af_broker_t *self, session_t *session)
{
    s_session_logout (self, session);
    zhashx_delete (self->sessions, session->hex);
}

//  --------------------------------------------------------------------------
//  Worker dispatch

static worker_t *
s_pick_worker (af_broker_t *self, const char *service)
{
    worker_t *best = NULL;
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers))
        if (streq (worker->service, service) && worker->inflight < worker->credit
        &&  (!best || worker->inflight < best->inflight))
            best = worker;
    return best;
}

static bool
s_any_credit (af_broker_t *self)
{
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers))
        if (worker->inflight < worker->credit)
            return true;
    return false;
}

//  Give queued requests to workers with free credit. The queue is walked
//  once from the front: each request is detached and either sent or put
//  back at the end, so waiting requests keep their order and no list
//  cursor is shared with deletions.
static void
s_dispatch (af_broker_t *self)
{
    size_t count = zlistx_size (self->queue);
    while (count-- && s_any_credit (self)) {
        request_t *request = (request_t *) zlistx_detach (self->queue, NULL);
        request->handle = NULL;
        worker_t *worker = s_pick_worker (self, request->service);
        if (worker) {
            memcpy (request->msg->rid, request->rid, AF_ID_SIZE);
            request->msg->has_rid = true;
            if (af_msg_send (request->msg, self->backend, worker->routing) == 0) {
                worker->inflight++;
                snprintf (request->worker, sizeof request->worker, "%s", worker->hex);
                continue;
            }
            zsys_warning ("broker: cannot send request %s to worker %s", request->hex, worker->hex);
        }
        request->handle = zlistx_add_end (self->queue, request);
    }
}

static void
s_reply_error (af_broker_t *self, session_t *session, int code, const uint8_t *rid, const char *reason)
{
    af_msg_t *error = af_msg_error (code, rid, "%s", reason);
    s_send_node (self, session, &error);
}

static void s_push_resolved (af_broker_t *self, push_job_t *job, uint32_t target, af_msg_t *reply);
static void s_sync_resolved (af_broker_t *self, sync_job_t *job, uint32_t index, af_msg_t *reply);
static void s_sync_start (af_broker_t *self, session_t *session, af_msg_t *msg, af_msg_t *diff,
                          uint32_t programs);
static request_t *s_resolve_for (af_broker_t *self, session_t *session, const char *program,
                                 const af_device_t *device, push_job_t *job, sync_job_t *sync, uint32_t target);
static void s_node_sync (af_broker_t *self, session_t *session, af_msg_t *msg);
static void s_deliver (af_broker_t *self, session_t *session);

//  Answer a request's client, then forget the request.
static void
s_request_finish (af_broker_t *self, request_t *request, af_msg_t **reply_p)
{
    session_t *session = (session_t *) zhashx_lookup (self->sessions, request->session);
    if (request->job || request->sync) {
        push_job_t *job = request->job;
        sync_job_t *sync = request->sync;
        uint32_t target = request->target;
        if (request->handle)
            zlistx_delete (self->queue, request->handle);
        zhashx_delete (self->requests, request->hex);
        if (job)
            s_push_resolved (self, job, target, *reply_p);
        else
            s_sync_resolved (self, sync, target, *reply_p);
        af_msg_destroy (reply_p);
        return;
    }
    if (session && *reply_p) {
        (*reply_p)->has_rid = request->client_has_rid;
        memcpy ((*reply_p)->rid, request->client_rid, AF_ID_SIZE);
        s_send_node (self, session, reply_p);
    }
    af_msg_destroy (reply_p);
    if (request->handle)
        zlistx_delete (self->queue, request->handle);
    zhashx_delete (self->requests, request->hex);
}

static int
s_compare_created (const void *a, const void *b)
{
    int64_t x = (*(request_t * const *) a)->created, y = (*(request_t * const *) b)->created;
    return x < y? -1: x > y;
}

static void
s_worker_remove (af_broker_t *self, worker_t *worker, const char *why)
{
    zsys_warning ("broker: worker %s (%s) removed: %s", worker->hex, worker->service, why);
    //  Hand its requests to others: back to the front of the queue, oldest
    //  first, ahead of requests that have not been tried yet
    size_t count = 0, total = 0;
    for (request_t *request = (request_t *) zhashx_first (self->requests); request;
         request = (request_t *) zhashx_next (self->requests))
        total += streq (request->worker, worker->hex);
    request_t **orphans = (request_t **) malloc (sizeof (request_t *) * (total + 1));
    assert (orphans);
    for (request_t *request = (request_t *) zhashx_first (self->requests); request;
         request = (request_t *) zhashx_next (self->requests))
        if (streq (request->worker, worker->hex))
            orphans [count++] = request;
    qsort (orphans, count, sizeof (request_t *), s_compare_created);
    while (count--) {
        orphans [count]->worker [0] = 0;
        orphans [count]->handle = zlistx_add_start (self->queue, orphans [count]);
    }
    free (orphans);
    zhashx_delete (self->workers, worker->hex);
    s_dispatch (self);
}

//  --------------------------------------------------------------------------
//  Node commands

static void
s_node_register (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1];
    int code = af_registry_register (self->registry, msg->account, msg->password, err, sizeof err);
    if (code != AF_OK) {
        zsys_warning ("broker: refused REGISTER '%s' from %.8s: %s", msg->account, session->key, err);
        s_reply_error (self, session, code, msg->has_rid? msg->rid: NULL, err);
        return;
    }
    zsys_info ("broker: registered account '%s'", msg->account);
    af_msg_t *reply = af_msg_new (AF_MSG_OK);
    reply->has_rid = msg->has_rid;
    memcpy (reply->rid, msg->rid, AF_ID_SIZE);
    s_send_node (self, session, &reply);
}

static void
s_node_login (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1];
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    int code = AF_OK;
    if (session->logged_in && (!streq (session->account, msg->account)
                           || (*msg->device_id && !streq (msg->device_id, session->device_id)))) {
        snprintf (err, sizeof err, "this connection is logged in as device %s of '%s'; send LOGOUT first",
                  session->device_id, session->account);
        code = AF_E_FORBIDDEN;
    }
    else
    if (af_device_validate (&msg->device, err, sizeof err))
        code = AF_E_BAD_DEVICE;
    else
    if (*msg->password) {
        failures_t *failures = (failures_t *) zhashx_lookup (self->failures, msg->account);
        if (failures && zclock_mono () - failures->since > AF_LOGIN_WINDOW_MS) {
            zhashx_delete (self->failures, msg->account);
            failures = NULL;
        }
        if (failures && failures->count >= AF_MAX_LOGIN_FAILURES) {
            snprintf (err, sizeof err, "%d wrong passwords for '%s'; try again in %d s",
                      failures->count, msg->account,
                      (int) ((failures->since + AF_LOGIN_WINDOW_MS - zclock_mono ()) / 1000) + 1);
            code = AF_E_RATE_LIMITED;
        }
        else {
            code = af_registry_verify (self->registry, msg->account, msg->password);
            if (code == AF_E_BAD_PASSWORD && zhashx_size (self->failures) < self->config.max_sessions) {
                if (!failures) {
                    failures = (failures_t *) zmalloc (sizeof (failures_t));
                    failures->since = zclock_mono ();
                    zhashx_insert (self->failures, msg->account, failures);
                }
                failures->count++;
            }
            else
            if (code == AF_OK && failures)
                zhashx_delete (self->failures, msg->account);
        }
    }
    else
    if (!*msg->device_id) {
        snprintf (err, sizeof err, "a password is needed to log in a device for the first time");
        code = AF_E_BAD_PASSWORD;
    }
    else
    if (!af_registry_exists (self->registry, msg->account))
        code = AF_E_NO_ACCOUNT;
    //  Without a password, the device's bound key is the credential: the
    //  registry refuses a device ID bound to another key.
    if (code == AF_E_NO_ACCOUNT)
        snprintf (err, sizeof err, "no account '%s'", msg->account);
    else
    if (code == AF_E_BAD_PASSWORD && *msg->password)
        snprintf (err, sizeof err, "wrong password for '%s'", msg->account);
    else
    if (code == AF_E_INTERNAL)
        snprintf (err, sizeof err, "internal error checking the password");

    char device_id [AF_ID_HEX + 1];
    if (code == AF_OK) {
        af_device_t device = msg->device;
        code = af_registry_login (self->registry, msg->account, msg->device_id, session->key,
                                  &device, (uint64_t) zclock_time (), device_id, err, sizeof err);
    }
    if (code != AF_OK) {
        zsys_warning ("broker: refused LOGIN to '%s' from %.8s: %s", msg->account, session->key, err);
        s_reply_error (self, session, code, rid, err);
        return;
    }
    //  One connection per device: an older connection of the same device
    //  loses its session (the node reconnected before the old one expired).
    char online_key [sizeof session->online_key];
    snprintf (online_key, sizeof online_key, "%s/%s", msg->account, device_id);
    session_t *older = (session_t *) zhashx_lookup (self->online, online_key);
    if (older && older != session) {
        zhashx_delete (self->online, online_key);
        older->logged_in = false;
        //  If that connection is still alive, it learns why its session ended
        af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
        snprintf (bye->reason, sizeof bye->reason, "device %s logged in on another connection", device_id);
        s_send_node (self, older, &bye);
        zsys_info ("broker: device %s of '%s' moved to a new connection", device_id, msg->account);
    }
    session->logged_in = true;
    snprintf (session->account, sizeof session->account, "%s", msg->account);
    snprintf (session->device_id, sizeof session->device_id, "%s", device_id);
    memcpy (session->online_key, online_key, sizeof online_key);
    session->device = msg->device;
    snprintf (session->device.id, sizeof session->device.id, "%s", device_id);
    //  Devices described the same way share the matcher's answers in syncs
    {
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
    }
    zhashx_update (self->online, online_key, session);
    zsys_info ("broker: device %s (%s) of '%s' logged in", device_id, msg->device.model, msg->account);

    af_msg_t *reply = af_msg_new (AF_MSG_LOGIN_OK);
    reply->has_rid = msg->has_rid;
    memcpy (reply->rid, msg->rid, AF_ID_SIZE);
    snprintf (reply->account, sizeof reply->account, "%s", msg->account);
    snprintf (reply->device_id, sizeof reply->device_id, "%s", device_id);
    reply->heartbeat = (uint32_t) self->config.heartbeat_ms;
    reply->report_seq = af_installs_seq (self->installs, msg->account, device_id);
    //  Now and then the whole list, to mend whatever a report might have missed
    uint64_t list_at = af_installs_list_at (self->installs, msg->account, device_id);
    reply->send_list = self->config.list_every_s > 0
                    && (uint64_t) zclock_time () - list_at > (uint64_t) self->config.list_every_s * 1000;
    s_send_node (self, session, &reply);
    s_broadcast_devices (self, session->account);
    //  Everything queued for the device, from the start of its outbox
    session->sent_seq = 0;
    session->unacked = 0;
    s_deliver (self, session);
}

static void
s_node_devices (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_device_t *devices;
    uint32_t count;
    if (af_registry_devices (self->registry, session->account, &devices, &count) != AF_OK) {
        s_reply_error (self, session, AF_E_INTERNAL, msg->has_rid? msg->rid: NULL,
                       "cannot read the device list");
        return;
    }
    af_msg_t *reply = af_msg_new (AF_MSG_DEVICE_LIST);
    reply->has_rid = msg->has_rid;
    memcpy (reply->rid, msg->rid, AF_ID_SIZE);
    snprintf (reply->account, sizeof reply->account, "%s", session->account);
    if (af_msg_set_device_count (reply, count) == 0) {
        for (uint32_t i = 0; i < count; i++) {
            char key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
            snprintf (key, sizeof key, "%s/%s", session->account, devices [i].id);
            devices [i].online = zhashx_lookup (self->online, key) != NULL;
        }
        memcpy (reply->devices, devices, count * sizeof (af_device_t));
    }
    free (devices);
    s_send_node (self, session, &reply);
}

static void
s_node_resolve (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    char err [AF_MAX_REASON + 1];
    if (msg->has_device && *msg->device.id && !streq (msg->device.id, session->device_id)) {
        //  A description may be of any device, but may not claim another's ID
        snprintf (err, sizeof err, "this session is device %s, not %s", session->device_id, msg->device.id);
        zsys_warning ("broker: refused RESOLVE from %s of '%s': %s", session->device_id, session->account, err);
        s_reply_error (self, session, AF_E_FORBIDDEN, rid, err);
        return;
    }
    if (msg->has_device && af_device_validate (&msg->device, err, sizeof err)) {
        s_reply_error (self, session, AF_E_BAD_DEVICE, rid, err);
        return;
    }
    if (zlistx_size (self->queue) >= self->config.max_queue) {
        zsys_warning ("broker: refused RESOLVE from '%s': queue full", session->account);
        s_reply_error (self, session, AF_E_UNAVAILABLE, rid, "the matcher queue is full; try again later");
        return;
    }
    request_t *request = s_resolve_for (self, session, msg->program,
                                        msg->has_device? &msg->device: &session->device, NULL, NULL, 0);
    request->client_has_rid = msg->has_rid;
    memcpy (request->client_rid, msg->rid, AF_ID_SIZE);
    s_dispatch (self);
}

//  Route a notification to another online device of the same account. A
//  NOTIFY with a rid is acknowledged (OK or ERROR); without one, routing
//  failures (target offline or unknown) are only logged, so a sender can
//  stream notifications cheaply. Session errors (not logged in) are
//  always answered.
static void
s_node_notify (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    char key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
    snprintf (key, sizeof key, "%s/%s", session->account, msg->device_id);
    session_t *target = (session_t *) zhashx_lookup (self->online, key);
    if (!target) {
        af_device_t device;
        bool known = af_registry_device (self->registry, session->account, msg->device_id, &device) == AF_OK;
        char err [AF_MAX_REASON + 1];
        snprintf (err, sizeof err, known? "device %s is offline": "device %s is not a device of this account",
                  msg->device_id);
        if (self->config.verbose || !known)
            zsys_warning ("broker: refused NOTIFY from %s of '%s': %s", session->device_id, session->account, err);
        if (rid)
            s_reply_error (self, session, known? AF_E_UNAVAILABLE: AF_E_NO_DEVICE, rid, err);
        return;
    }
    //  The target learns who sent it; the sender's rid stays with the sender
    memcpy (msg->device_id, session->device_id, sizeof msg->device_id);
    msg->has_rid = false;
    if (af_msg_send (msg, self->frontend, target->routing))
        zsys_warning ("broker: cannot deliver NOTIFY to %s", target->device_id);
    if (rid) {
        af_msg_t *ok = af_msg_new (AF_MSG_OK);
        ok->has_rid = true;
        memcpy (ok->rid, rid, AF_ID_SIZE);
        s_send_node (self, session, &ok);
    }
}

//  --------------------------------------------------------------------------
//  Outbox delivery (protocol/SPEC.md "Outbox items")

//  Unacknowledged items in flight per connection
#define AF_ITEM_WINDOW 64

static session_t *
s_online (af_broker_t *self, const char *account, const char *device_id)
{
    char key [AF_MAX_ACCOUNT + AF_ID_HEX + 2];
    snprintf (key, sizeof key, "%s/%s", account, device_id);
    return (session_t *) zhashx_lookup (self->online, key);
}

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
        s_send_node (deliver->broker, deliver->session, &msg);
    else
        zsys_error ("broker: outbox item %s of '%s' is too large to send", msg->item,
                    deliver->session->account);
    af_msg_destroy (&msg);
    deliver->session->sent_seq = item->seq;
    deliver->session->unacked++;
    return 0;
}

//  Send a logged-in device the outbox items it has not been sent on this
//  connection, in order, up to the window.
static void
s_deliver (af_broker_t *self, session_t *session)
{
    if (!session || !session->logged_in || session->unacked >= AF_ITEM_WINDOW)
        return;
    deliver_t deliver = { self, session };
    int rc = af_outbox_each (self->outbox, session->account, session->device_id, session->sent_seq,
                             AF_ITEM_WINDOW - session->unacked, s_deliver_item, &deliver);
    if (rc)
        zsys_error ("broker: cannot read the outbox of %s: %s", session->device_id, mdb_strerror (rc));
}

static void
s_item_done (af_broker_t *self, session_t *session)
{
    if (session->unacked)
        session->unacked--;
    s_deliver (self, session);
}

static void
s_reply_ok (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *ok = af_msg_new (AF_MSG_OK);
    ok->has_rid = msg->has_rid;
    memcpy (ok->rid, msg->rid, AF_ID_SIZE);
    s_send_node (self, session, &ok);
}

static void
s_node_ack (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    uint8_t item [AF_ID_SIZE];
    if (af_id_from_hex (msg->item, item)) {
        s_reply_error (self, session, AF_E_MALFORMED, msg->has_rid? msg->rid: NULL,
                       "ACK: 'item' must be an item ID (32 lowercase hex digits)");
        return;
    }
    int rc = af_outbox_ack (self->outbox, session->account, session->device_id, item);
    if (rc && rc != MDB_NOTFOUND)
        zsys_error ("broker: cannot remove item %s of %s: %s", msg->item, session->device_id,
                    mdb_strerror (rc));
    //  MDB_NOTFOUND: a repeated acknowledgement, or not this device's item;
    //  either way nothing changes
    s_item_done (self, session);
}

//  --------------------------------------------------------------------------
//  User data upload (protocol/SPEC.md "UPLOAD")

static bool
s_hash_hex (const char *hash)
{
    bool hex = strlen (hash) == AF_HASH_HEX;
    for (const char *p = hash; hex && *p; p++)
        hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    return hex;
}

//  Size of a received blob, or -1 if we do not have it
static int64_t
s_data_size (af_broker_t *self, const char *hash)
{
    char path [800];
    snprintf (path, sizeof path, "%s/blobs/%.2s/%s", self->data_dir, hash, hash);
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode)? (int64_t) st.st_size: -1;
}

static void
s_send_credit (af_broker_t *self, session_t *session, const char *hash, uint32_t credit, const uint8_t *rid)
{
    af_msg_t *msg = af_msg_new (AF_MSG_CREDIT);
    snprintf (msg->hash, sizeof msg->hash, "%s", hash);
    msg->credit = credit;
    if (rid) {
        memcpy (msg->rid, rid, AF_ID_SIZE);
        msg->has_rid = true;
    }
    s_send_node (self, session, &msg);
}

static void
s_node_upload (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    if (!s_hash_hex (msg->hash) || msg->total == 0 || msg->total > AF_MAX_DATA) {
        s_reply_error (self, session, AF_E_MALFORMED, rid, msg->total > AF_MAX_DATA?
                       "user data larger than 256 MiB": "UPLOAD needs a 64-hex hash and a size above 0");
        return;
    }
    if (s_data_size (self, msg->hash) == (int64_t) msg->total) {
        s_reply_ok (self, session, msg);        //  we have these bytes already
        return;
    }
    //  One upload per connection at a time: a new one replaces the old
    size_t len = strlen (session->hex);
    for (upload_t *old = (upload_t *) zhashx_first (self->uploads); old;
         old = (upload_t *) zhashx_next (self->uploads))
        if (strncmp (old->key, session->hex, len) == 0 && old->key [len] == '/') {
            zhashx_delete (self->uploads, old->key);
            break;                      //  there is at most one
        }
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    assert (upload);
    snprintf (upload->key, sizeof upload->key, "%s/%s", session->hex, msg->hash);
    snprintf (upload->session, sizeof upload->session, "%s", session->hex);
    upload->has_rid = msg->has_rid;
    memcpy (upload->rid, msg->rid, AF_ID_SIZE);
    snprintf (upload->part, sizeof upload->part, "%s/incoming/%s-%s.part", self->data_dir, session->hex,
              msg->hash);
    char err [AF_MAX_REASON + 1];
    upload->download = af_download_new (upload->part, msg->hash, msg->total, err, sizeof err);
    if (!upload->download) {
        free (upload);
        zsys_error ("broker: cannot receive an upload: %s", err);
        s_reply_error (self, session, AF_E_INTERNAL, rid, "cannot store the upload");
        return;
    }
    zhashx_update (self->uploads, upload->key, upload);     //  a repeat starts over
    s_send_credit (self, session, msg->hash, AF_MAX_CREDIT / 2, rid);
}

//  A chunk of an upload
static void
s_node_chunk (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    char key [32 + AF_HASH_HEX + 2], err [AF_MAX_REASON + 1];
    snprintf (key, sizeof key, "%s/%s", session->hex, msg->hash);
    upload_t *upload = (upload_t *) zhashx_lookup (self->uploads, key);
    if (!upload) {
        zsys_warning ("broker: refused a CHUNK from %s: no upload of %.16s... in progress",
                      session->device_id, msg->hash);
        s_reply_error (self, session, AF_E_MALFORMED, NULL, "CHUNK: no upload of this hash in progress");
        return;
    }
    const uint8_t *rid = upload->has_rid? upload->rid: NULL;
    int rc = af_download_chunk (upload->download, msg, err, sizeof err);
    if (rc == 0) {
        s_send_credit (self, session, msg->hash, 1, NULL);
        return;
    }
    if (rc == 1) {
        char dir [800], path [900];
        snprintf (dir, sizeof dir, "%s/blobs/%.2s", self->data_dir, msg->hash);
        snprintf (path, sizeof path, "%s/%s", dir, msg->hash);
        af_download_keep (upload->download);
        af_download_destroy (&upload->download);
        if (zsys_dir_create ("%s", dir) || rename (upload->part, path)) {
            zsys_error ("broker: cannot store an upload in %s: %s", path, strerror (errno));
            unlink (upload->part);
            s_reply_error (self, session, AF_E_INTERNAL, rid, "cannot store the upload");
        }
        else {
            zsys_info ("broker: stored %llu bytes of user data %.16s... from %s of '%s'",
                       (unsigned long long) msg->total, msg->hash, session->device_id, session->account);
            af_msg_t *ok = af_msg_new (AF_MSG_OK);
            ok->has_rid = upload->has_rid;
            memcpy (ok->rid, upload->rid, AF_ID_SIZE);
            s_send_node (self, session, &ok);
        }
    }
    else {
        zsys_warning ("broker: upload from %s of '%s' refused: %s", session->device_id, session->account, err);
        s_reply_error (self, session, AF_E_MALFORMED, rid, err);
    }
    zhashx_delete (self->uploads, key);
}

//  A NOTIFY from the broker, in the name of session's device, to every
//  other online device of its account (kind: "installed", "config")
static void
s_tell_others (af_broker_t *self, session_t *session, const char *kind, const char *body)
{
    af_device_t *devices;
    uint32_t count;
    if (af_registry_devices (self->registry, session->account, &devices, &count) != AF_OK)
        return;
    for (uint32_t i = 0; i < count; i++) {
        session_t *other = s_online (self, session->account, devices [i].id);
        if (!other || other == session)
            continue;
        af_msg_t *notify = af_msg_new (AF_MSG_NOTIFY);
        snprintf (notify->device_id, sizeof notify->device_id, "%s", session->device_id);
        snprintf (notify->kind, sizeof notify->kind, "%s", kind);
        af_msg_set_body (notify, body, strlen (body));
        s_send_node (self, other, &notify);
    }
    free (devices);
}

//  The broker's own RESOLVE of a program for a device, for a push job or a
//  sync job, queued like a node's
static request_t *
s_resolve_for (af_broker_t *self, session_t *session, const char *program, const af_device_t *device,
               push_job_t *job, sync_job_t *sync, uint32_t target)
{
    request_t *request = (request_t *) zmalloc (sizeof (request_t));
    assert (request);
    randombytes_buf (request->rid, AF_ID_SIZE);
    sodium_bin2hex (request->hex, sizeof request->hex, request->rid, AF_ID_SIZE);
    snprintf (request->session, sizeof request->session, "%s", session->hex);
    snprintf (request->service, sizeof request->service, "matcher");
    request->created = zclock_mono ();
    request->deadline = request->created + self->config.request_timeout_ms;
    request->msg = af_msg_new (AF_MSG_RESOLVE);
    snprintf (request->msg->program, sizeof request->msg->program, "%s", program);
    request->msg->has_device = true;
    request->msg->device = *device;
    request->job = job;
    request->sync = sync;
    request->target = target;
    zhashx_insert (self->requests, request->hex, request);
    request->handle = zlistx_add_end (self->queue, request);
    return request;
}

//  --------------------------------------------------------------------------
//  Install lists and sync (protocol/SPEC.md "REPORT", "LIST", "SYNC")

static void
s_sync_job_free (void **item)
{
    sync_job_t *job = (sync_job_t *) *item;
    if (job) {
        af_msg_destroy (&job->diff);
        free (job->programs);
        free (job->results);
        zhashx_destroy (&job->where);
        free (job);
        *item = NULL;
    }
}

static void
s_node_report (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    int rc = af_installs_report (self->installs, session->account, session->device_id, msg);
    if (rc == -1) {
        s_reply_error (self, session, AF_E_MALFORMED, rid, "REPORT: 'op' must be install or uninstall");
        return;
    }
    if (rc > 1) {
        zsys_error ("broker: cannot store a report of %s: %s", session->device_id, mdb_strerror (rc));
        s_reply_error (self, session, AF_E_INTERNAL, rid, "the report could not be stored; send it again");
        return;
    }
    if (rc == 0)
        zhashx_delete (self->indexes, session->account);   //  read again at the next sync
    if (rc == 0 && self->config.verbose)
        zsys_info ("broker: %s of '%s' reports %s %s (seq %llu)", session->device_id, session->account,
                   msg->op, msg->program, (unsigned long long) msg->seq);
    s_reply_ok (self, session, msg);        //  rc 1: a repeat, applied before
    //  The account's other online devices hear of a new install at once, so
    //  those in automatic mode can sync it (S1.9); offline ones sync at login
    if (rc == 0 && streq (msg->op, "install"))
        s_tell_others (self, session, "installed", msg->program);
}

static void
s_node_list (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    int rc = af_installs_replace (self->installs, session->account, session->device_id, msg);
    if (rc > 1 || rc < 0) {
        zsys_error ("broker: cannot store the list of %s", session->device_id);
        s_reply_error (self, session, AF_E_INTERNAL, rid, "the list could not be stored; send it again");
        return;
    }
    if (rc == 0)
        zhashx_delete (self->indexes, session->account);
    zsys_info ("broker: %s of '%s' sent its whole list (%u apps, seq %llu)%s", session->device_id,
               session->account, msg->app_count, (unsigned long long) msg->seq, rc == 1? ": stale, ignored": "");
    s_reply_ok (self, session, msg);
}

typedef struct {
    af_msg_t *list;
    uint32_t count;
} collect_t;

static int
s_collect_app (const char *device_id, const af_msg_t *app, void *arg)
{
    collect_t *collect = (collect_t *) arg;
    if (collect->count == collect->list->app_count)
        return 1;                               //  full
    af_app_t *out = &collect->list->apps [collect->count++];
    snprintf (out->program, sizeof out->program, "%s", app->program);
    snprintf (out->version_name, sizeof out->version_name, "%s", app->version_name);
    out->version_code = app->version_code;
    snprintf (out->hash, sizeof out->hash, "%s", app->hash);
    out->at = app->at;
    snprintf (out->device_id, sizeof out->device_id, "%s", device_id);
    return 0;
}

static void
s_node_apps (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    af_device_t device;
    if (af_registry_device (self->registry, session->account, msg->device_id, &device) != AF_OK) {
        s_reply_error (self, session, AF_E_NO_DEVICE, rid, "not a device of this account");
        return;
    }
    af_msg_t *reply = af_msg_new (AF_MSG_APP_LIST);
    reply->has_rid = msg->has_rid;
    memcpy (reply->rid, msg->rid, AF_ID_SIZE);
    snprintf (reply->device_id, sizeof reply->device_id, "%s", msg->device_id);
    af_msg_set_app_count (reply, AF_MAX_APPS);
    collect_t collect = { reply, 0 };
    af_installs_each (self->installs, session->account, msg->device_id, s_collect_app, &collect);
    reply->app_count = collect.count;
    s_send_node (self, session, &reply);
}

//  Every program answered: the diff goes to the device that asked
static void
s_sync_finish (af_broker_t *self, sync_job_t *job)
{
    //  Each entry gets its program's answer: one pass, one lookup each
    resolved_t *results = (resolved_t *) job->results;
    for (uint32_t i = 0; results && i < job->diff->app_count; i++) {
        af_app_t *app = &job->diff->apps [i];
        size_t at = (size_t) zhashx_lookup (job->where, app->program);
        if (at) {
            app->fit = results [at - 1].fit;
            memcpy (app->fit_version, results [at - 1].fit_version, sizeof app->fit_version);
            memcpy (app->reason, results [at - 1].reason, sizeof app->reason);
        }
    }
    session_t *session = (session_t *) zhashx_lookup (self->sessions, job->session);
    if (session) {
        job->diff->has_rid = job->client_has_rid;
        memcpy (job->diff->rid, job->client_rid, AF_ID_SIZE);
        s_send_node (self, session, &job->diff);
    }
    zhashx_delete (self->sync_jobs, job->hex);
    //  The next waiting SYNC whose device is still here
    while (zhashx_size (self->sync_jobs) < AF_MAX_SYNC_JOBS && zlistx_size (self->sync_waiting)) {
        sync_wait_t *wait = (sync_wait_t *) zlistx_first (self->sync_waiting);
        session_t *waiting = (session_t *) zhashx_lookup (self->sessions, wait->session);
        if (waiting && waiting->logged_in) {
            af_msg_t *sync = af_msg_new (AF_MSG_SYNC);
            sync->has_rid = wait->has_rid;
            memcpy (sync->rid, wait->rid, AF_ID_SIZE);
            zlistx_delete (self->sync_waiting, zlistx_cursor (self->sync_waiting));
            s_node_sync (self, waiting, sync);
            af_msg_destroy (&sync);
        }
        else
            zlistx_delete (self->sync_waiting, zlistx_cursor (self->sync_waiting));
    }
}

static void
s_sync_resolved (af_broker_t *self, sync_job_t *job, uint32_t index, af_msg_t *reply)
{
    const char *program = job->programs [index];
    resolved_t resolved;
    memset (&resolved, 0, sizeof resolved);
    if (reply && reply->id == AF_MSG_RESOLVED) {
        resolved.fit = reply->fit;
        snprintf (resolved.fit_version, sizeof resolved.fit_version, "%s",
                  reply->has_package? reply->package.version_name: "");
        snprintf (resolved.reason, sizeof resolved.reason, "%s", reply->reason);
        //  Kept a while for the next diffs of devices described the same way
        if (zhashx_size (self->resolved) >= AF_RESOLVE_CACHE_MAX)
            zhashx_purge (self->resolved);
        resolved_t *cached = (resolved_t *) malloc (sizeof (resolved_t));
        if (cached) {
            *cached = resolved;
            cached->expires = zclock_mono () + AF_RESOLVE_CACHE_MS;
            char key [AF_ID_HEX + AF_MAX_PROGRAM + 2];
            snprintf (key, sizeof key, "%s/%s", job->digest, program);
            zhashx_update (self->resolved, key, cached);
        }
    }
    else {
        resolved.fit = AF_FIT_NONE;
        snprintf (resolved.reason, sizeof resolved.reason, "could not ask the matcher: %s",
                  reply && *reply->reason? reply->reason: "no answer");
    }
    ((resolved_t *) job->results) [index] = resolved;
    if (job->outstanding && --job->outstanding == 0)
        s_sync_finish (self, job);
}

static void
s_index_free (void **item)
{
    index_t *index = (index_t *) *item;
    if (index) {
        zhashx_destroy (&index->programs);
        zhashx_destroy (&index->devices);
        free (index->entries);
        free (index);
        *item = NULL;
    }
}

static int
s_index_add (const char *device_id, const af_msg_t *app, void *arg)
{
    index_t *index = (index_t *) arg;
    if (index->count == index->alloc) {
        size_t alloc = index->alloc? 2 * index->alloc: 256;
        index_entry_t *entries = (index_entry_t *) realloc (index->entries, alloc * sizeof *entries);
        if (!entries)
            return -1;
        index->entries = entries;
        index->alloc = alloc;
    }
    index_entry_t *entry = &index->entries [index->count++];
    snprintf (entry->device_id, sizeof entry->device_id, "%s", device_id);
    snprintf (entry->program, sizeof entry->program, "%s", app->program);
    snprintf (entry->version_name, sizeof entry->version_name, "%s", app->version_name);
    entry->version_code = app->version_code;
    entry->at = app->at;
    return 0;
}

//  Resolve the diff's programs for the asker (from the cache where it can)
//  and answer when all are in. Takes diff.
static void
s_sync_start (af_broker_t *self, session_t *session, af_msg_t *msg, af_msg_t *diff, uint32_t programs)
{
    sync_job_t *job = (sync_job_t *) zmalloc (sizeof (sync_job_t));
    assert (job);
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (job->hex, sizeof job->hex, id, AF_ID_SIZE);
    snprintf (job->session, sizeof job->session, "%s", session->hex);
    job->client_has_rid = msg->has_rid;
    memcpy (job->client_rid, msg->rid, AF_ID_SIZE);
    job->diff = diff;
    memcpy (job->digest, session->digest, sizeof job->digest);
    //  programs: the distinct programs of the diff (at most its entries)
    job->programs = calloc (programs? programs: 1, sizeof *job->programs);
    job->results = calloc (programs? programs: 1, sizeof (resolved_t));
    job->where = zhashx_new ();
    assert (job->programs && job->results && job->where);
    resolved_t *results = (resolved_t *) job->results;
    uint32_t *ask = (uint32_t *) calloc (programs? programs: 1, sizeof (uint32_t));
    assert (ask);
    uint32_t asks = 0;
    int64_t now = zclock_mono ();
    for (uint32_t i = 0; i < diff->app_count; i++) {
        const char *program = diff->apps [i].program;
        if (zhashx_lookup (job->where, program))
            continue;
        uint32_t at = job->program_count++;
        memcpy (job->programs [at], program, AF_MAX_PROGRAM + 1);
        zhashx_insert (job->where, program, (void *) (size_t) (at + 1));
        char key [AF_ID_HEX + AF_MAX_PROGRAM + 2];
        snprintf (key, sizeof key, "%s/%s", job->digest, program);
        resolved_t *cached = (resolved_t *) zhashx_lookup (self->resolved, key);
        if (cached && cached->expires > now)
            results [at] = *cached;
        else
            ask [asks++] = at;
    }
    zhashx_insert (self->sync_jobs, job->hex, job);
    if (asks == 0 || zlistx_size (self->queue) + asks > self->config.max_queue) {
        for (uint32_t i = 0; i < asks; i++) {
            results [ask [i]].fit = AF_FIT_NONE;
            snprintf (results [ask [i]].reason, sizeof results [ask [i]].reason,
                      "the matcher queue is full; try again later");
        }
        free (ask);
        s_sync_finish (self, job);
        return;
    }
    for (uint32_t k = 0; k < asks; k++) {
        s_resolve_for (self, session, job->programs [ask [k]], &session->device, NULL, job, ask [k]);
        job->outstanding++;
    }
    free (ask);
    s_dispatch (self);
}

//  The account's install lists and history, from memory or read once
static index_t *
s_index (af_broker_t *self, const char *account)
{
    index_t *index = (index_t *) zhashx_lookup (self->indexes, account);
    if (index)
        return index;
    index = (index_t *) zmalloc (sizeof (index_t));
    assert (index);
    int rc = af_installs_each (self->installs, account, NULL, s_index_add, index);
    index->installs = index->count;
    if (rc == 0)
        rc = af_installs_history (self->installs, account, s_index_add, index);
    if (rc) {
        void *item = index;
        s_index_free (&item);
        return NULL;
    }
    index->programs = zhashx_new ();
    zhashx_set_destructor (index->programs, (zhashx_destructor_fn *) zlistx_destroy);
    index->devices = zhashx_new ();
    zhashx_set_destructor (index->devices, (zhashx_destructor_fn *) zhashx_destroy);
    for (size_t i = 0; i < index->count; i++) {
        index_entry_t *entry = &index->entries [i];
        zlistx_t *list = (zlistx_t *) zhashx_lookup (index->programs, entry->program);
        if (!list) {
            list = zlistx_new ();
            zhashx_insert (index->programs, entry->program, list);
        }
        zlistx_add_end (list, entry);
        if (i < index->installs) {
            zhashx_t *set = (zhashx_t *) zhashx_lookup (index->devices, entry->device_id);
            if (!set) {
                set = zhashx_new ();
                zhashx_insert (index->devices, entry->device_id, set);
            }
            zhashx_update (set, entry->program, (void *) 1);
        }
    }
    if (zhashx_size (self->indexes) >= AF_INDEX_CACHE_MAX)
        zhashx_purge (self->indexes);
    zhashx_insert (self->indexes, account, index);
    return index;
}

//  What the account's other devices have that this one lacks, and what the
//  account had that no device has now, each resolved for this device
static void
s_node_sync (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    if (zhashx_size (self->sync_jobs) >= AF_MAX_SYNC_JOBS) {
        if (zlistx_size (self->sync_waiting) >= self->config.max_queue) {
            s_reply_error (self, session, AF_E_UNAVAILABLE, rid, "too many syncs waiting; try again later");
            return;
        }
        sync_wait_t *wait = (sync_wait_t *) zmalloc (sizeof (sync_wait_t));
        assert (wait);
        snprintf (wait->session, sizeof wait->session, "%s", session->hex);
        wait->has_rid = msg->has_rid;
        memcpy (wait->rid, msg->rid, AF_ID_SIZE);
        zlistx_add_end (self->sync_waiting, wait);
        return;
    }
    index_t *index = s_index (self, session->account);
    if (!index) {
        s_reply_error (self, session, AF_E_INTERNAL, rid, "cannot read the account's install lists");
        return;
    }
    zhashx_t *mine = (zhashx_t *) zhashx_lookup (index->devices, session->device_id);
    //  Count first, so the diff holds exactly what it needs; then fill
    af_msg_t *diff = NULL;
    uint32_t count = 0, programs = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t n = 0;
        uint32_t cap = pass == 0? AF_MAX_DIFF + 1: AF_MAX_DIFF;    //  one more: is there more?
        for (zlistx_t *list = (zlistx_t *) zhashx_first (index->programs); list && n < cap;
             list = (zlistx_t *) zhashx_next (index->programs)) {
            index_entry_t *entry = (index_entry_t *) zlistx_first (list);
            if (mine && zhashx_lookup (mine, entry->program))
                continue;
            //  Each device that has it; or, if none has it now, its history
            bool installed = entry < index->entries + index->installs;
            programs += pass == 1;
            for (; entry && n < cap; entry = (index_entry_t *) zlistx_next (list)) {
                bool history = entry >= index->entries + index->installs;
                if (history && installed)
                    break;
                if (pass == 1) {
                    af_app_t *app = &diff->apps [n];
                    memcpy (app->program, entry->program, sizeof app->program);
                    memcpy (app->version_name, entry->version_name, sizeof app->version_name);
                    app->version_code = entry->version_code;
                    app->at = entry->at;
                    memcpy (app->device_id, history? "": entry->device_id, history? 1: sizeof app->device_id);
                }
                n++;
            }
        }
        if (pass == 0) {
            count = n > AF_MAX_DIFF? AF_MAX_DIFF: n;
            diff = af_msg_new (AF_MSG_SYNC_DIFF);
            af_msg_set_app_count (diff, count);
            diff->truncated = n > AF_MAX_DIFF;
        }
    }
    s_sync_start (self, session, msg, diff, programs);
}

//  --------------------------------------------------------------------------
//  Push (protocol/SPEC.md "Push")

//  The first policy rule the initiating device breaks, or NULL.
static const char *
s_policy_check (af_broker_t *self, af_msg_t *msg, char *why, size_t size)
{
    if (*self->config.min_node_version) {
        uint32_t want = 0, have = 0;
        af_version_parse (self->config.min_node_version, &want);
        if (!*msg->node_version || af_version_parse (msg->node_version, &have) || have < want) {
            snprintf (why, size, "node version %s is below the required %s",
                      *msg->node_version? msg->node_version: "(not reported)", self->config.min_node_version);
            return why;
        }
    }
    if (!*self->config.require)
        return NULL;
    char rules [sizeof self->config.require];
    snprintf (rules, sizeof rules, "%s", self->config.require);
    char *saved = NULL;
    for (char *rule = strtok_r (rules, ",", &saved); rule; rule = strtok_r (NULL, ",", &saved)) {
        while (*rule == ' ')
            rule++;
        size_t len = strlen (rule);
        while (len && rule [len - 1] == ' ')
            rule [--len] = 0;
        if (!len)
            continue;
        bool met = false;
        for (uint32_t i = 0; i < msg->attest_count && !met; i++)
            met = streq (msg->attest [i], rule);
        if (!met) {
            const char *eq = strchr (rule, '=');
            int name = eq? (int) (eq - rule): (int) len;
            for (uint32_t i = 0; i < msg->attest_count; i++)
                if (strncmp (msg->attest [i], rule, (size_t) name) == 0 && msg->attest [i][name] == '=') {
                    snprintf (why, size, "attestation %s required; the device reported %s", rule, msg->attest [i]);
                    return why;
                }
            snprintf (why, size, "attestation %s required; the device reported none", rule);
            return why;
        }
    }
    uint64_t now = (uint64_t) zclock_time ();
    uint64_t max_age = (uint64_t) self->config.max_age_s * 1000;
    if (msg->attest_time == 0 || msg->attest_time + max_age < now) {
        snprintf (why, size, "attestations are %s; at most %d s old accepted",
                  msg->attest_time? "too old": "undated", self->config.max_age_s);
        return why;
    }
    if (msg->attest_time > now + 300000) {
        snprintf (why, size, "attestations are dated in the future");
        return why;
    }
    return NULL;
}

static void
s_target_set (af_target_t *target, const char *state, const char *format, ...)
{
    snprintf (target->state, sizeof target->state, "%s", state);
    va_list args;
    va_start (args, format);
    vsnprintf (target->reason, sizeof target->reason, format, args);
    va_end (args);
}

//  Every target answered: record the push and its offers in one
//  transaction, answer the initiator, deliver to targets that are online.
static void
s_push_commit (af_broker_t *self, push_job_t *job)
{
    session_t *initiator = (session_t *) zhashx_lookup (self->sessions, job->session);
    int rc = af_pushes_create (self->pushes, job->account, job->initiator, job->accepted, job->offers);
    if (rc) {
        zsys_error ("broker: cannot record push %s of '%s': %s", job->hex, job->account,
                    rc > 0? mdb_strerror (rc): "bad record or a target's outbox is full");
        if (initiator)
            s_reply_error (self, initiator, AF_E_INTERNAL, job->client_has_rid? job->client_rid: NULL,
                           "the push could not be stored; nothing was sent");
    }
    else {
        zsys_info ("broker: push %s of '%s' by %s: %s to %u device(s)", job->hex, job->account,
                   job->initiator, job->accepted->program, job->accepted->result_count);
        af_msg_t *reply = af_msg_new (AF_MSG_PUSH_ACCEPTED);
        memcpy (reply->push_id, job->accepted->push_id, sizeof reply->push_id);
        memcpy (reply->program, job->accepted->program, sizeof reply->program);
        if (af_msg_set_result_count (reply, job->accepted->result_count) == 0)
            memcpy (reply->results, job->accepted->results,
                    job->accepted->result_count * sizeof (af_target_t));
        if (initiator) {
            reply->has_rid = job->client_has_rid;
            memcpy (reply->rid, job->client_rid, AF_ID_SIZE);
            s_send_node (self, initiator, &reply);
        }
        af_msg_destroy (&reply);
        for (uint32_t i = 0; i < job->accepted->result_count; i++)
            if (job->offers [i])
                s_deliver (self, s_online (self, job->account, job->accepted->results [i].device_id));
    }
    zhashx_delete (self->push_jobs, job->hex);
}

static void
s_push_resolved (af_broker_t *self, push_job_t *job, uint32_t index, af_msg_t *reply)
{
    af_target_t *target = &job->accepted->results [index];
    if (!reply || reply->id != AF_MSG_RESOLVED)
        s_target_set (target, "failed", "no package could be chosen: %s",
                      reply && *reply->reason? reply->reason: "the matcher did not answer");
    else
    if (reply->fit == AF_FIT_PACKAGE || reply->fit == AF_FIT_STORE_LINK) {
        af_msg_t *offer = af_msg_new (AF_MSG_OFFER);
        snprintf (offer->push_id, sizeof offer->push_id, "%s", job->hex);
        snprintf (offer->program, sizeof offer->program, "%s", job->accepted->program);
        snprintf (offer->from, sizeof offer->from, "%s", job->initiator);
        offer->fit = reply->fit;
        offer->has_package = true;
        offer->package = reply->package;
        if (reply->fit == AF_FIT_PACKAGE) {
            memcpy (offer->data_hash, job->data_hash, sizeof offer->data_hash);
            offer->data_total = job->data_total;
        }
        job->offers [index] = offer;
        bool online = s_online (self, job->account, target->device_id) != NULL;
        s_target_set (target, online? "offered": "queued", "%s", online? "":
                      "the device is offline; it gets the package when it next connects");
        snprintf (target->version_name, sizeof target->version_name, "%s", reply->package.version_name);
    }
    else
        s_target_set (target, "no-fit", "%s", *reply->reason? reply->reason: "no package fits this device");
    if (job->outstanding && --job->outstanding == 0)
        s_push_commit (self, job);
}

static void
s_node_push (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    char why [AF_MAX_REASON + 1];
    //  "self": the device installs from the server's store for itself (a
    //  sync pick, S1.4); the push policy guards pushes to other devices
    bool for_self = msg->target_count == 1 && streq (msg->targets [0], "self");
    if (for_self) {
        snprintf (msg->targets [0], sizeof msg->targets [0], "%s", session->device_id);
        msg->data_hash [0] = 0;
    }
    if (!for_self && s_policy_check (self, msg, why, sizeof why)) {
        zsys_warning ("broker: refused PUSH of '%s' from %s of '%s': policy: %s", msg->program,
                      session->device_id, session->account, why);
        s_reply_error (self, session, AF_E_POLICY, rid, why);
        return;
    }
    if (*msg->data_hash && (!s_hash_hex (msg->data_hash)
                        || s_data_size (self, msg->data_hash) != (int64_t) msg->data_total)) {
        s_reply_error (self, session, AF_E_MALFORMED, rid,
                       "the push's user data is not on the broker: UPLOAD it first");
        return;
    }
    af_device_t *devices;
    uint32_t count;
    if (af_registry_devices (self->registry, session->account, &devices, &count) != AF_OK) {
        s_reply_error (self, session, AF_E_INTERNAL, rid, "cannot read the account's devices");
        return;
    }
    //  The targets, each once, in the order given ("all": every other device)
    bool all = msg->target_count == 1 && streq (msg->targets [0], "all");
    uint32_t wanted = all? count: msg->target_count;
    if (zlistx_size (self->queue) + wanted > self->config.max_queue) {
        free (devices);
        s_reply_error (self, session, AF_E_UNAVAILABLE, rid, "the matcher queue is full; try again later");
        return;
    }
    push_job_t *job = (push_job_t *) zmalloc (sizeof (push_job_t));
    assert (job);
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (job->hex, sizeof job->hex, id, AF_ID_SIZE);
    snprintf (job->session, sizeof job->session, "%s", session->hex);
    job->client_has_rid = msg->has_rid;
    memcpy (job->client_rid, msg->rid, AF_ID_SIZE);
    snprintf (job->account, sizeof job->account, "%s", session->account);
    snprintf (job->initiator, sizeof job->initiator, "%s", session->device_id);
    job->accepted = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    snprintf (job->accepted->push_id, sizeof job->accepted->push_id, "%s", job->hex);
    snprintf (job->accepted->program, sizeof job->accepted->program, "%s", msg->program);
    af_msg_set_result_count (job->accepted, wanted);
    snprintf (job->data_hash, sizeof job->data_hash, "%s", msg->data_hash);
    job->data_total = msg->data_total;
    job->offers = (af_msg_t **) calloc (wanted? wanted: 1, sizeof (af_msg_t *));
    assert (job->offers);
    uint32_t n = 0;
    for (uint32_t i = 0; i < wanted; i++) {
        const char *target_id = all? devices [i].id: msg->targets [i];
        if (all && streq (target_id, session->device_id))
            continue;
        bool repeat = false;
        for (uint32_t j = 0; j < n && !repeat; j++)
            repeat = streq (job->accepted->results [j].device_id, target_id);
        if (repeat)
            continue;
        af_target_t *target = &job->accepted->results [n++];
        snprintf (target->device_id, sizeof target->device_id, "%s", target_id);
        const af_device_t *device = NULL;
        for (uint32_t j = 0; j < count && !device; j++)
            if (streq (devices [j].id, target_id))
                device = &devices [j];
        if (device)
            snprintf (target->name, sizeof target->name, "%s", device->name);
        if (streq (target_id, session->device_id) && !for_self)
            s_target_set (target, "refused", "a device cannot push to itself");
        else
        if (!device)
            s_target_set (target, "refused", "not a device of this account");
        else {
            //  The broker asks the matcher itself, with the target's own description
            s_resolve_for (self, session, msg->program, device, job, NULL, n - 1);
            job->outstanding++;
        }
    }
    job->accepted->result_count = n;
    free (devices);
    if (n == 0) {
        s_reply_error (self, session, AF_E_NO_DEVICE, rid, "the account has no other device to push to");
        void *item = job;
        s_push_job_free (&item);
        return;
    }
    zhashx_insert (self->push_jobs, job->hex, job);
    if (job->outstanding == 0)
        s_push_commit (self, job);          //  every target refused
    else
        s_dispatch (self);
}

//  An app's configuration, encrypted by the node (S1.6, S1.7)
static void
s_node_config_put (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    if (msg->at > (uint64_t) zclock_time () + AF_CONFIG_FUTURE_MS) {
        zsys_warning ("broker: refused a configuration of %s from %s of '%s': dated in the future",
                      msg->program, session->device_id, session->account);
        s_reply_error (self, session, AF_E_MALFORMED, rid,
                       "the configuration is dated more than 5 minutes in the future; check the device's clock");
        return;
    }
    int rc = af_installs_config_put (self->installs, session->account, msg->program, msg->at,
                                     msg->data, msg->data_size);
    if (rc < 0 || rc > 1) {
        s_reply_error (self, session, AF_E_INTERNAL, rid, "the configuration could not be stored");
        return;
    }
    zsys_info ("broker: configuration of %s from %s of '%s' (%u bytes): %s", msg->program, session->device_id,
               session->account, msg->data_size, rc? "older, kept as the previous version": "now current");
    s_reply_ok (self, session, msg);
    //  The others hear of it, so those sharing this app's configuration apply it
    if (rc == 0)
        s_tell_others (self, session, "config", msg->program);
}

static void
s_node_config_get (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    af_msg_t *reply = af_msg_new (AF_MSG_CONFIG);
    snprintf (reply->program, sizeof reply->program, "%s", msg->program);
    int rc = af_installs_config_get (self->installs, session->account, msg->program, msg->previous, reply);
    if (rc) {
        af_msg_destroy (&reply);
        if (rc == MDB_NOTFOUND)
            s_reply_error (self, session, AF_E_NO_CONFIG, rid, "no configuration stored for this program");
        else
            s_reply_error (self, session, AF_E_INTERNAL, rid, "cannot read the configuration");
        return;
    }
    reply->has_rid = msg->has_rid;
    memcpy (reply->rid, msg->rid, AF_ID_SIZE);
    s_send_node (self, session, &reply);
}

//  Uninstall a program on other devices of the account: one durable item
//  in each target's outbox, answered like a push with each target's state
static void
s_node_uninstall (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    af_device_t *devices;
    uint32_t count;
    if (msg->target_count == 0) {
        s_reply_error (self, session, AF_E_MALFORMED, rid, "UNINSTALL: name the target devices, or all");
        return;
    }
    if (af_registry_devices (self->registry, session->account, &devices, &count) != AF_OK) {
        s_reply_error (self, session, AF_E_INTERNAL, rid, "cannot read the account's devices");
        return;
    }
    bool all = msg->target_count == 1 && streq (msg->targets [0], "all");
    uint32_t wanted = all? count: msg->target_count;
    af_msg_t *reply = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (reply->push_id, sizeof reply->push_id, id, AF_ID_SIZE);
    snprintf (reply->program, sizeof reply->program, "%s", msg->program);
    af_msg_set_result_count (reply, wanted);
    char (*queue) [AF_ID_HEX + 1] = calloc (wanted? wanted: 1, AF_ID_HEX + 1);
    assert (queue);
    uint32_t n = 0, queued = 0;
    for (uint32_t i = 0; i < wanted; i++) {
        const char *target_id = all? devices [i].id: msg->targets [i];
        if (all && streq (target_id, session->device_id))
            continue;
        const af_device_t *device = NULL;
        for (uint32_t j = 0; j < count && !device; j++)
            if (streq (devices [j].id, target_id))
                device = &devices [j];
        af_target_t *target = &reply->results [n++];
        snprintf (target->device_id, sizeof target->device_id, "%s", target_id);
        if (device)
            snprintf (target->name, sizeof target->name, "%s", device->name);
        if (!device)
            s_target_set (target, "refused", "not a device of this account");
        else {
            bool online = s_online (self, session->account, target_id) != NULL;
            s_target_set (target, online? "offered": "queued", "%s", online? "":
                          "the device is offline; it uninstalls when it next connects");
            memcpy (queue [queued++], target_id, AF_ID_HEX + 1);
        }
    }
    reply->result_count = n;
    af_msg_t *item = af_msg_new (AF_MSG_UNINSTALL);
    memcpy (item->push_id, reply->push_id, sizeof item->push_id);
    snprintf (item->program, sizeof item->program, "%s", msg->program);
    snprintf (item->from, sizeof item->from, "%s", session->device_id);
    int rc = af_pushes_queue (self->pushes, session->account, (const char (*) [AF_ID_HEX + 1]) queue, queued, item);
    af_msg_destroy (&item);
    if (rc) {
        s_reply_error (self, session, AF_E_INTERNAL, rid, "the request could not be stored; nothing was sent");
        af_msg_destroy (&reply);
    }
    else {
        zsys_info ("broker: %s of '%s' asks %u device(s) to uninstall %s", session->device_id,
                   session->account, queued, msg->program);
        reply->has_rid = msg->has_rid;
        memcpy (reply->rid, msg->rid, AF_ID_SIZE);
        s_send_node (self, session, &reply);
        for (uint32_t i = 0; i < queued; i++)
            s_deliver (self, s_online (self, session->account, queue [i]));
    }
    free (queue);
    free (devices);
}

//  A target's outcome
static void
s_node_done (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    if (!streq (msg->state, "installed") && !streq (msg->state, "store-link") && !streq (msg->state, "failed")) {
        s_reply_error (self, session, AF_E_MALFORMED, rid,
                       "DONE: 'state' must be installed, store-link or failed");
        return;
    }
    char initiator [AF_ID_HEX + 1];
    int rc = af_pushes_done (self->pushes, session->account, session->device_id, msg, initiator);
    if (rc == 0) {
        zsys_info ("broker: push %s: device %s of '%s' reports %s%s%s", msg->push_id, session->device_id,
                   session->account, msg->state, *msg->reason? ": ": "", msg->reason);
        s_item_done (self, session);
        s_deliver (self, s_online (self, session->account, initiator));
    }
    else
    if (rc != MDB_NOTFOUND) {
        zsys_error ("broker: cannot record the outcome of push %s: %s", msg->push_id,
                    rc > 0? mdb_strerror (rc): "corrupt record");
        s_reply_error (self, session, AF_E_INTERNAL, rid, "the outcome could not be stored; send it again");
        return;
    }
    //  MDB_NOTFOUND: no such pending offer (a repeat after a crash): done already
    s_reply_ok (self, session, msg);
}

static void
s_node_fetch (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    const uint8_t *rid = msg->has_rid? msg->rid: NULL;
    char push [AF_ID_HEX + 1] = "", from [AF_ID_HEX + 1] = "";
    if (!af_pushes_offers_blob (self->pushes, session->account, session->device_id, msg->hash, push, from)) {
        zsys_warning ("broker: refused FETCH of %.16s from %s of '%s': no pending offer",
                      msg->hash, session->device_id, session->account);
        s_reply_error (self, session, AF_E_FORBIDDEN, rid, "no pending offer of this package for this device");
        return;
    }
    char tag [128], err [AF_MAX_REASON + 1];
    snprintf (tag, sizeof tag, "%s/%s/%s/%s", push, from, session->account, session->device_id);
    int code = af_transfers_fetch (self->transfers, session->hex, session->routing, msg->hash, msg->offset,
                                   msg->credit, tag, err, sizeof err);
    if (code != AF_OK) {
        zsys_warning ("broker: FETCH of %.16s for %s failed: %s", msg->hash, session->device_id, err);
        s_reply_error (self, session, code, rid, err);
    }
}

//  Chunks went to a target: tell the push's initiator, if it is online
static void
s_transfer_progress (void *arg, const char *session_hex, const char *tag, uint64_t sent, uint64_t total)
{
    (void) session_hex;
    af_broker_t *self = (af_broker_t *) arg;
    char push [AF_ID_HEX + 1], from [AF_ID_HEX + 1], account [AF_MAX_ACCOUNT + 1], device [AF_ID_HEX + 1];
    if (sscanf (tag, "%32[0-9a-f]/%32[0-9a-f]/%64[^/]/%32[0-9a-f]", push, from, account, device) != 4)
        return;
    session_t *initiator = s_online (self, account, from);
    if (!initiator)
        return;
    af_msg_t *progress = af_msg_new (AF_MSG_PROGRESS);
    memcpy (progress->push_id, push, sizeof push);
    memcpy (progress->device_id, device, sizeof device);
    progress->offset = sent;
    progress->total = total;
    s_send_node (self, initiator, &progress);
}

//  Receive one message from a ROUTER without waiting: the routing frame,
//  the body (NULL if there is none) and how many frames followed the body
//  (discarded; a message is one frame). -1 when nothing is queued.
static int
s_recv_frames (zsock_t *reader, zframe_t **routing, zframe_t **body, size_t *extra)
{
    *routing = zframe_recv (reader);
    *body = NULL;
    *extra = 0;
    if (!*routing)
        return -1;
    if (zframe_more (*routing))
        *body = zframe_recv (reader);
    if (*body && zframe_more (*body)) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        do {
            if (zmq_msg_recv (&part, zsock_resolve (reader), 0) == -1)
                break;
            (*extra)++;
        } while (zmq_msg_more (&part));
        zmq_msg_close (&part);
    }
    return 0;
}

static int
s_frontend_message (af_broker_t *self, zframe_t *routing, zframe_t *body, size_t extra)
{
    char hex [32];
    if (!routing || zframe_size (routing) > 15) {
        zframe_destroy (&routing);
        zframe_destroy (&body);
        return 0;
    }
    sodium_bin2hex (hex, sizeof hex, zframe_data (routing), zframe_size (routing));
    const char *user_id = body? zframe_meta (body, "User-Id"): NULL;
    session_t *session = (session_t *) zhashx_lookup (self->sessions, hex);
    if (!session) {
        if (!user_id || strlen (user_id) != AF_KEY_Z85
        ||  zhashx_size (self->sessions) >= self->config.max_sessions) {
            zsys_warning ("broker: dropped a message from %s: %s", hex,
                          !user_id || strlen (user_id) != AF_KEY_Z85? "no authenticated CURVE key":
                          "too many sessions (max_sessions)");
            goto done;
        }
        session = (session_t *) zmalloc (sizeof (session_t));
        assert (session);
        memcpy (session->hex, hex, sizeof hex);
        session->routing = zframe_dup (routing);
        memcpy (session->key, user_id, AF_KEY_Z85 + 1);
        zhashx_insert (self->sessions, hex, session);
    }
    else
    if (!user_id || !streq (user_id, session->key)) {
        zsys_warning ("broker: refused a message on session %s: key changed", hex);
        s_reply_error (self, session, AF_E_KEY_MISMATCH, NULL, "message key does not match the session");
        goto done;
    }
    session->last_seen = zclock_mono ();
    if (!body || extra + 1 > AF_MAX_FRAMES) {
        zsys_warning ("broker: refused a message from %.8s: expected exactly one frame", session->key);
        s_reply_error (self, session, AF_E_MALFORMED, NULL, "a message is exactly one frame");
        goto done;
    }
    char err [AF_MAX_REASON + 1];
    uint8_t rid [AF_ID_SIZE];
    bool has_rid;
    af_msg_t *msg = NULL;
    int code = af_msg_decode (zframe_data (body), zframe_size (body), &msg, err, sizeof err, rid, &has_rid);
    if (code != AF_OK) {
        zsys_warning ("broker: refused a message from %.8s: %s: %s", session->key, af_code_name (code), err);
        s_reply_error (self, session, code, has_rid? rid: NULL, err);
        goto done;
    }
    if (msg->id == AF_MSG_PING) {
        af_msg_t *pong = af_msg_new (AF_MSG_PONG);
        pong->logged_in = session->logged_in;
        s_send_node (self, session, &pong);
    }
    else
    if (msg->id == AF_MSG_REGISTER)
        s_node_register (self, session, msg);
    else
    if (msg->id == AF_MSG_LOGIN)
        s_node_login (self, session, msg);
    else
    if (msg->id == AF_MSG_LOGOUT || msg->id == AF_MSG_DEVICES || msg->id == AF_MSG_RESOLVE
    ||  msg->id == AF_MSG_NOTIFY || msg->id == AF_MSG_PUSH || msg->id == AF_MSG_ACK
    ||  msg->id == AF_MSG_FETCH || msg->id == AF_MSG_CREDIT || msg->id == AF_MSG_DONE
    ||  msg->id == AF_MSG_UPLOAD || msg->id == AF_MSG_CHUNK || msg->id == AF_MSG_REPORT
    ||  msg->id == AF_MSG_LIST || msg->id == AF_MSG_APPS || msg->id == AF_MSG_SYNC
    ||  msg->id == AF_MSG_UNINSTALL || msg->id == AF_MSG_CONFIG_PUT || msg->id == AF_MSG_CONFIG_GET) {
        const uint8_t *mrid = msg->has_rid? msg->rid: NULL;
        if (!session->logged_in)
            s_reply_error (self, session, AF_E_NOT_LOGGED_IN, mrid, "log in first");
        else
        if (msg->id == AF_MSG_CREDIT)
            af_transfers_credit (self->transfers, session->hex, msg->hash, msg->credit);
        else
        if (msg->id == AF_MSG_NOTIFY)
            s_node_notify (self, session, msg);
        else
        if (msg->id == AF_MSG_PUSH)
            s_node_push (self, session, msg);
        else
        if (msg->id == AF_MSG_ACK)
            s_node_ack (self, session, msg);
        else
        if (msg->id == AF_MSG_FETCH)
            s_node_fetch (self, session, msg);
        else
        if (msg->id == AF_MSG_DONE)
            s_node_done (self, session, msg);
        else
        if (msg->id == AF_MSG_UPLOAD)
            s_node_upload (self, session, msg);
        else
        if (msg->id == AF_MSG_REPORT)
            s_node_report (self, session, msg);
        else
        if (msg->id == AF_MSG_LIST)
            s_node_list (self, session, msg);
        else
        if (msg->id == AF_MSG_APPS)
            s_node_apps (self, session, msg);
        else
        if (msg->id == AF_MSG_SYNC)
            s_node_sync (self, session, msg);
        else
        if (msg->id == AF_MSG_UNINSTALL)
            s_node_uninstall (self, session, msg);
        else
        if (msg->id == AF_MSG_CONFIG_PUT)
            s_node_config_put (self, session, msg);
        else
        if (msg->id == AF_MSG_CONFIG_GET)
            s_node_config_get (self, session, msg);
        else
        if (msg->id == AF_MSG_CHUNK)
            s_node_chunk (self, session, msg);

        else
        if (msg->id == AF_MSG_LOGOUT) {
            s_session_logout (self, session);
            af_msg_t *ok = af_msg_new (AF_MSG_OK);
            ok->has_rid = msg->has_rid;
            memcpy (ok->rid, msg->rid, AF_ID_SIZE);
            s_send_node (self, session, &ok);
        }
        else
        if (msg->id == AF_MSG_DEVICES)
            s_node_devices (self, session, msg);
        else
            s_node_resolve (self, session, msg);
    }
    else {
        zsys_warning ("broker: refused %s from node %.8s: not a node request",
                      af_msg_command_name (msg->id), session->key);
        snprintf (err, sizeof err, "%s is not a request a node may send", af_msg_command_name (msg->id));
        s_reply_error (self, session, AF_E_UNKNOWN_COMMAND, msg->has_rid? msg->rid: NULL, err);
    }
    af_msg_destroy (&msg);
done:
    zframe_destroy (&routing);
    zframe_destroy (&body);
    return 0;
}


//  --------------------------------------------------------------------------
//  Worker messages

static void
s_send_worker (af_broker_t *self, zframe_t *routing, af_msg_t **msg_p)
{
    if (*msg_p)
        af_msg_send (*msg_p, self->backend, routing);
    af_msg_destroy (msg_p);
}

static int
s_backend_message (af_broker_t *self, zframe_t *routing, zframe_t *body, size_t extra)
{
    if (!routing || !body || zframe_size (routing) > 15) {
        zsys_warning ("broker: dropped a worker message without routing ID or body");
        goto done;
    }
    char hex [32];
    sodium_bin2hex (hex, sizeof hex, zframe_data (routing), zframe_size (routing));
    worker_t *worker = (worker_t *) zhashx_lookup (self->workers, hex);
    char err [AF_MAX_REASON + 1];
    uint8_t rid [AF_ID_SIZE];
    bool has_rid = false;
    af_msg_t *msg = NULL;
    int code = AF_E_MALFORMED;
    if (extra + 1 > AF_MAX_FRAMES)
        snprintf (err, sizeof err, "a message is exactly one frame");
    else
        code = af_msg_decode (zframe_data (body), zframe_size (body), &msg, err, sizeof err, rid, &has_rid);
    if (code != AF_OK) {
        zsys_warning ("broker: refused a worker message: %s: %s", af_code_name (code), err);
        af_msg_t *error = af_msg_error (code, has_rid? rid: NULL, "%s", err);
        s_send_worker (self, routing, &error);
        goto done;
    }
    if (msg->id == AF_MSG_READY) {
        if (!streq (msg->service, "matcher")) {
            zsys_warning ("broker: refused READY for unknown service '%s'", msg->service);
            af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
            snprintf (bye->reason, sizeof bye->reason, "unknown service '%s'", msg->service);
            s_send_worker (self, routing, &bye);
        }
        else {
            if (!worker) {
                worker = (worker_t *) zmalloc (sizeof (worker_t));
                assert (worker);
                memcpy (worker->hex, hex, sizeof hex);
                worker->routing = zframe_dup (routing);
                const char *key = zframe_meta (body, "User-Id");
                snprintf (worker->key, sizeof worker->key, "%s", key? key: "");
                zhashx_insert (self->workers, hex, worker);
                zsys_info ("broker: worker %s ready for '%s' (credit %u)", hex, msg->service,
                           msg->credit? msg->credit: 1);
            }
            snprintf (worker->service, sizeof worker->service, "%s", msg->service);
            worker->credit = msg->credit? msg->credit: 1;
            //  A worker beating slower than the broker is judged by its own pace
            worker->heartbeat_ms = (int) msg->heartbeat > self->config.heartbeat_ms?
                                   (int) msg->heartbeat: self->config.heartbeat_ms;
            worker->last_seen = zclock_mono ();
            s_dispatch (self);
        }
    }
    else
    if (!worker) {
        //  Not (or no longer) known: tell it to start over, as MDP does
        af_msg_t *bye = af_msg_new (AF_MSG_DISCONNECT);
        snprintf (bye->reason, sizeof bye->reason, "send READY first");
        s_send_worker (self, routing, &bye);
    }
    else {
        worker->last_seen = zclock_mono ();
        if (msg->id == AF_MSG_PING) {
            af_msg_t *pong = af_msg_new (AF_MSG_PONG);
            pong->logged_in = true;
            s_send_worker (self, routing, &pong);
        }
        else
        if (msg->id == AF_MSG_DISCONNECT)
            s_worker_remove (self, worker, "it disconnected");
        else
        if ((msg->id == AF_MSG_RESOLVED || msg->id == AF_MSG_ERROR) && msg->has_rid) {
            char rid_hex [AF_ID_HEX + 1];
            sodium_bin2hex (rid_hex, sizeof rid_hex, msg->rid, AF_ID_SIZE);
            request_t *request = (request_t *) zhashx_lookup (self->requests, rid_hex);
            if (request && streq (request->worker, worker->hex)) {
                if (worker->inflight)
                    worker->inflight--;
                s_request_finish (self, request, &msg);
            }
            else
                zsys_warning ("broker: worker %s answered unknown or reassigned request %s", hex, rid_hex);
            s_dispatch (self);
        }
        else
            zsys_warning ("broker: refused %s from worker %s", af_msg_command_name (msg->id), hex);
    }
    af_msg_destroy (&msg);
done:
    zframe_destroy (&routing);
    zframe_destroy (&body);
    return 0;
}

//  zloop wakes us once per poll; then we take up to AF_BATCH messages that
//  are already queued, so a busy broker pays one poll per batch, not one
//  per message, and the other sockets and timers still get their turn.
//  Both sockets have a receive timeout of 0, so the batch ends as soon as
//  the queue is empty (asking ZMQ_EVENTS instead costs a system call).
#define AF_BATCH 256

typedef int (message_fn) (af_broker_t *self, zframe_t *routing, zframe_t *body, size_t extra);

static void
s_batch (af_broker_t *self, zsock_t *reader, message_fn *handle)
{
    for (int i = 0; i < AF_BATCH; i++) {
        zframe_t *routing, *body;
        size_t extra;
        if (s_recv_frames (reader, &routing, &body, &extra))
            break;
        handle (self, routing, body, extra);
    }
}

static int
s_frontend_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_batch ((af_broker_t *) arg, reader, s_frontend_message);
    return 0;
}

static int
s_backend_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_batch ((af_broker_t *) arg, reader, s_backend_message);
    return 0;
}

//  --------------------------------------------------------------------------
//  Heartbeat timer: expire silent peers and stale requests

static int
s_timer_event (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    af_broker_t *self = (af_broker_t *) arg;
    int64_t now = zclock_mono ();
    int64_t expiry = (int64_t) self->config.heartbeat_ms * self->config.liveness;

    zlistx_t *dead = zlistx_new ();
    for (session_t *session = (session_t *) zhashx_first (self->sessions); session;
         session = (session_t *) zhashx_next (self->sessions))
        if (now - session->last_seen > expiry)
            zlistx_add_end (dead, session);
    for (session_t *session = (session_t *) zlistx_first (dead); session;
         session = (session_t *) zlistx_next (dead)) {
        if (session->logged_in)
            zsys_info ("broker: device %s of '%s' stopped answering; marked offline",
                       session->device_id, session->account);
        s_session_remove (self, session);
    }
    zlistx_purge (dead);
    for (worker_t *worker = (worker_t *) zhashx_first (self->workers); worker;
         worker = (worker_t *) zhashx_next (self->workers))
        if (now - worker->last_seen > (int64_t) worker->heartbeat_ms * self->config.liveness)
            zlistx_add_end (dead, worker);
    for (worker_t *worker = (worker_t *) zlistx_first (dead); worker;
         worker = (worker_t *) zlistx_next (dead))
        s_worker_remove (self, worker, "heartbeat expired");
    zlistx_purge (dead);
    for (request_t *request = (request_t *) zhashx_first (self->requests); request;
         request = (request_t *) zhashx_next (self->requests))
        if (now > request->deadline)
            zlistx_add_end (dead, request);
    for (request_t *request = (request_t *) zlistx_first (dead); request;
         request = (request_t *) zlistx_next (dead)) {
        worker_t *worker = *request->worker? (worker_t *) zhashx_lookup (self->workers, request->worker): NULL;
        if (worker && worker->inflight)
            worker->inflight--;
        zsys_warning ("broker: request %s for '%s' timed out", request->hex, request->service);
        af_msg_t *error = af_msg_error (AF_E_UNAVAILABLE, NULL,
            "no %s answered within %d ms", request->service, self->config.request_timeout_ms);
        s_request_finish (self, request, &error);
    }
    zlistx_destroy (&dead);
    //  Forget password failures whose window has passed
    zlistx_t *stale = zhashx_keys (self->failures);
    for (const char *account = (const char *) zlistx_first (stale); account;
         account = (const char *) zlistx_next (stale)) {
        failures_t *failures = (failures_t *) zhashx_lookup (self->failures, account);
        if (failures && now - failures->since > AF_LOGIN_WINDOW_MS)
            zhashx_delete (self->failures, account);
    }
    zlistx_destroy (&stale);
    return 0;
}

//  --------------------------------------------------------------------------
//  Life cycle

static zsock_t *
s_bind_curve (af_broker_t *self, const char *endpoint, const char *domain, char *actual, size_t size)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    if (!sock)
        return NULL;
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, domain);
    zsock_set_maxmsgsize (sock, AF_MAX_ZMQ_MSG);
    zsock_set_sndhwm (sock, 100000);
    zsock_set_rcvhwm (sock, 100000);
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 0);               //  see s_batch
    //  "host:*" asks for any free port. czmq would try 49152 upward in
    //  order, so two brokers starting at once (tests run in parallel) race
    //  for the same port; libzmq's ":0" lets the kernel choose instead.
    char bind_to [256];
    snprintf (bind_to, sizeof bind_to, "%s", endpoint);
    size_t len = strlen (bind_to);
    if (len > 2 && streq (bind_to + len - 2, ":*"))
        bind_to [len - 1] = '0';
    if (zmq_bind (zsock_resolve (sock), bind_to)) {
        zsys_error ("broker: cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    char *last = zsock_last_endpoint (sock);     //  owned by us
    snprintf (actual, size, "%s", last? last: endpoint);
    zstr_free (&last);
    return sock;
}

af_broker_t *
af_broker_new (const af_broker_config_t *config)
{
    af_broker_t *self = (af_broker_t *) zmalloc (sizeof (af_broker_t));
    assert (self);
    self->config = *config;
    if (!*self->config.worker_keys) {
        if (strlen (config->data_dir) + 9 > sizeof self->config.worker_keys) {
            zsys_error ("broker: data directory path too long");
            goto failed;
        }
        strcpy (self->config.worker_keys, config->data_dir);
        strcat (self->config.worker_keys, "/workers");
    }
    if (zsys_dir_create ("%s", config->data_dir) || zsys_dir_create ("%s", self->config.worker_keys)) {
        zsys_error ("broker: cannot create %s: %s", config->data_dir, strerror (errno));
        goto failed;
    }
    chmod (config->data_dir, 0700);
    //  Keypair: made once, kept in the data directory
    char path [600];
    snprintf (path, sizeof path, "%s/broker.cert_secret", config->data_dir);
    self->cert = zcert_load (path);
    if (!self->cert) {
        self->cert = zcert_new ();
        zcert_set_meta (self->cert, "role", "appferry broker");
        snprintf (path, sizeof path, "%s/broker.cert", config->data_dir);
        if (!self->cert || zcert_save (self->cert, path)) {
            zsys_error ("broker: cannot save keypair to %s", path);
            goto failed;
        }
        zsys_info ("broker: created keypair; nodes need %s", path);
    }
    snprintf (path, sizeof path, "%s/store", config->data_dir);
    self->registry = af_registry_new (path, config->pwcost);
    if (!self->registry)
        goto failed;
    self->outbox = af_outbox_new (af_registry_store (self->registry));
    self->pushes = self->outbox? af_pushes_new (af_registry_store (self->registry), self->outbox): NULL;
    self->installs = af_installs_new (af_registry_store (self->registry));
    if (!self->pushes || !self->installs)
        goto failed;
    self->zap = zactor_new (af_zap_actor, self->config.worker_keys);
    if (!self->zap)
        goto failed;
    self->frontend = s_bind_curve (self, config->nodes, AF_ZAP_NODES,
                                   self->nodes_endpoint, sizeof self->nodes_endpoint);
    self->backend = s_bind_curve (self, config->workers, AF_ZAP_WORKERS,
                                  self->workers_endpoint, sizeof self->workers_endpoint);
    if (!self->frontend || !self->backend)
        goto failed;
    snprintf (self->data_dir, sizeof self->data_dir, "%s/data", config->data_dir);
    if (zsys_dir_create ("%s/incoming", self->data_dir) || zsys_dir_create ("%s/blobs", self->data_dir)) {
        zsys_error ("broker: cannot create %s: %s", self->data_dir, strerror (errno));
        goto failed;
    }
    //  Uploads cut off by a previous stop are useless now
    {
        char incoming [700];
        snprintf (incoming, sizeof incoming, "%s/incoming", self->data_dir);
        zdir_t *dir = zdir_new (incoming, "-");
        zfile_t **parts = dir? zdir_flatten (dir): NULL;
        for (size_t i = 0; parts && parts [i]; i++)
            zfile_remove (parts [i]);
        zdir_flatten_free (&parts);
        zdir_destroy (&dir);
    }
    self->uploads = zhashx_new ();
    zhashx_set_destructor (self->uploads, s_upload_free);
    self->transfers = af_transfers_new (self->frontend, self->config.catalog, self->data_dir);
    if (!self->transfers)
        goto failed;
    af_transfers_set_progress (self->transfers, s_transfer_progress, self);
    self->push_jobs = zhashx_new ();
    zhashx_set_destructor (self->push_jobs, s_push_job_free);
    self->sync_jobs = zhashx_new ();
    zhashx_set_destructor (self->sync_jobs, s_sync_job_free);
    self->indexes = zhashx_new ();
    zhashx_set_destructor (self->indexes, s_index_free);
    self->resolved = zhashx_new ();
    zhashx_set_destructor (self->resolved, s_free_item);
    self->sync_waiting = zlistx_new ();
    zlistx_set_destructor (self->sync_waiting, s_free_item);
    self->sessions = zhashx_new ();
    zhashx_set_destructor (self->sessions, s_session_free);
    self->online = zhashx_new ();
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_free);
    self->requests = zhashx_new ();
    zhashx_set_destructor (self->requests, s_request_free);
    self->queue = zlistx_new ();
    self->failures = zhashx_new ();
    zhashx_set_destructor (self->failures, s_free_item);
    self->loop = zloop_new ();
    zloop_reader (self->loop, self->frontend, s_frontend_event, self);
    zloop_reader (self->loop, self->backend, s_backend_event, self);
    int tick = self->config.heartbeat_ms < 1000? self->config.heartbeat_ms: 1000;
    zloop_timer (self->loop, (size_t) tick, 0, s_timer_event, self);
    //  Write the bound endpoints where tests and operators can find them
    snprintf (path, sizeof path, "%s/endpoints", config->data_dir);
    FILE *file = fopen (path, "w");
    if (file) {
        fprintf (file, "nodes=%s\nworkers=%s\n", self->nodes_endpoint, self->workers_endpoint);
        fclose (file);
    }
    return self;
failed:
    af_broker_destroy (&self);
    return NULL;
}

void
af_broker_destroy (af_broker_t **self_p)
{
    assert (self_p);
    af_broker_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    zlistx_destroy (&self->queue);
    zhashx_destroy (&self->requests);
    zhashx_destroy (&self->push_jobs);
    zhashx_destroy (&self->sync_jobs);
    zhashx_destroy (&self->indexes);
    zhashx_destroy (&self->resolved);
    zlistx_destroy (&self->sync_waiting);
    af_installs_destroy (&self->installs);
    zhashx_destroy (&self->uploads);
    af_transfers_destroy (&self->transfers);
    af_pushes_destroy (&self->pushes);
    af_outbox_destroy (&self->outbox);
    zhashx_destroy (&self->failures);
    zhashx_destroy (&self->online);
    zhashx_destroy (&self->sessions);
    zhashx_destroy (&self->workers);
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    zactor_destroy (&self->zap);
    af_registry_destroy (&self->registry);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

int
af_broker_run (af_broker_t *self)
{
    zsys_info ("broker: serving nodes on %s, workers on %s", self->nodes_endpoint, self->workers_endpoint);
    zloop_start (self->loop);
    zsys_info ("broker: stopping");
    return 0;
}

const char *
af_broker_nodes_endpoint (af_broker_t *self)
{
    return self->nodes_endpoint;
}

const char *
af_broker_workers_endpoint (af_broker_t *self)
{
    return self->workers_endpoint;
}
