/*  =========================================================================
    etcd_watch - af_etcd_watch_actor: one /v3/watch stream, its events on
    the actor's pipe (the messages are in af_etcd.h)

    The gateway turns etcd's bidirectional Watch RPC into one HTTP POST:
    the body is the WatchCreateRequest, and the answer, chunked, never
    ends: one JSON line per WatchResponse, {"result": {...}}, the first
    with "created", then events, or {"error": ...} if the stream fails.
    (When the body ends the gateway closes the request half only: the
    watch goes on.)

    One thread does everything: the actor's loop drives a libcurl multi
    handle and sleeps in curl_multi_poll on the stream's socket and the
    pipe's ZMQ_FD together, so $TERM is seen at once whatever the stream
    does. ZMQ_FD is edge-triggered: it only says "look", so the loop
    reads ZMQ_EVENTS after every send and before every sleep, and sleeps
    only when that says there is nothing to read (and nothing to send that
    could go). Events are sent without blocking: those the pipe does not
    take wait in a queue, and when AF_ETCD_WATCH_QUEUE wait, the write
    callback pauses the transfer (CURL_WRITEFUNC_PAUSE: libcurl keeps the
    bytes, TCP pushes back on etcd, etcd keeps the rest) until the queue is
    half empty. Nothing is ever dropped; a message of the stream is parsed
    whole, and its events queued together, so LOST's revision is one whose
    events all came.
    =========================================================================
*/
#include "etcd_int.h"

#include <assert.h>
#include <errno.h>

typedef struct {
    zsock_t *pipe;
    etcd_endpoints_t endpoints;
    size_t tried;                       //  endpoints tried so far
    char *body;                         //  the WatchCreateRequest
    int timeout_ms;
    int64_t start_revision;
    CURLM *multi;
    CURL *curl;                         //  the stream, or NULL
    struct curl_slist *headers;
    char curl_error [CURL_ERROR_SIZE];
    char *line;                         //  the stream message being read
    size_t line_size, line_max;
    etcd_arena_t arena;
    zlist_t *queue;                     //  zmsg_t *s the pipe did not take yet
    bool created;                       //  etcd said the watch is created
    bool paused;                        //  the write callback paused the stream
    bool failed;                        //  the callback found the stream bad: end it
    bool lost;                          //  LOST is queued: nothing more comes
    bool terminated;                    //  $TERM
    int64_t created_by;                 //  when waiting for "created" ends
    int64_t last_revision;              //  every event up to it has been queued
    char reason [1024];                 //  why the stream failed, endpoint by endpoint
} s_watch_t;

//  Queue one message for the pipe: type, key, value, revision
static void
s_queue (s_watch_t *self, const char *type, const void *key, size_t key_size, const void *value,
         size_t value_size, int64_t revision)
{
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    char number [24];
    snprintf (number, sizeof number, "%" PRId64, revision);
    if (zmsg_addstr (msg, type) || zmsg_addmem (msg, key, key_size) || zmsg_addmem (msg, value, value_size)
    ||  zmsg_addstr (msg, number))
        assert (false);
    if (zlist_append (self->queue, msg))
        assert (false);
}

static void
s_lose (s_watch_t *self, const char *reason)
{
    if (self->lost)
        return;
    s_queue (self, "LOST", "", 0, reason, strlen (reason), self->last_revision);
    self->lost = true;
}

//  Send what the queue holds while the pipe takes it, without blocking
static void
s_flush (s_watch_t *self)
{
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlist_first (self->queue))) {
        zframe_t *frame = zmsg_first (msg);
        //  The first frame goes or not; once it went, libzmq takes the
        //  rest of the message whatever its high-water mark
        if (zframe_send (&frame, self->pipe, ZFRAME_MORE | ZFRAME_REUSE | ZFRAME_DONTWAIT)) {
            if (errno != EAGAIN)
                self->terminated = true;    //  the context is going: stop
            return;
        }
        zframe_t *next = zmsg_next (msg);
        while (next) {
            frame = next;
            next = zmsg_next (msg);
            if (zframe_send (&frame, self->pipe, ZFRAME_REUSE | (next? ZFRAME_MORE: 0))) {
                self->terminated = true;
                return;
            }
        }
        zlist_remove (self->queue, msg);
        zmsg_destroy (&msg);
    }
}

//  One message of the stream (a line). False if it ends the stream: an
//  error, a cancel, or something etcd does not send (self->reason says).
static bool
s_message (s_watch_t *self, const char *line, size_t size)
{
    const char *endpoint = self->endpoints.url [self->tried - 1];
    json_error_t jerr;
    json_t *msg = json_loadb (line, size, JSON_REJECT_DUPLICATES, &jerr);
    json_t *result = json_object_get (msg, "result");
    json_t *error = json_object_get (msg, "error");
    bool ok = false;
    int code;
    const char *message;
    if (!json_is_object (msg))
        etcd_err_append (self->reason, sizeof self->reason, "%s: not etcd's JSON: %.80s", endpoint, line);
    else
    if (etcd_grpc_error (msg, &code, &message))
        etcd_err_append (self->reason, sizeof self->reason, "%s: etcd: %s (code %d)", endpoint, message, code);
    else
    if (error || !json_is_object (result))
        etcd_err_append (self->reason, sizeof self->reason, "%s: a watch message without a result", endpoint);
    else
        ok = true;
    //  Every message has a header, but the cancel of a compacted watch
    //  has no revision in it
    bool created, canceled;
    int64_t compacted, revision;
    json_t *header = json_object_get (result, "header");
    if (ok && (!etcd_bool (result, "created", &created) || !etcd_bool (result, "canceled", &canceled)
           ||  !etcd_int64 (result, "compact_revision", &compacted) || !json_is_object (header)
           ||  !etcd_int64 (header, "revision", &revision) || revision < 0
           ||  (created && revision < 1))) {
        etcd_err_append (self->reason, sizeof self->reason, "%s: a watch message not as documented", endpoint);
        ok = false;
    }
    //  A start revision etcd has compacted away makes it answer "created",
    //  then cancel at once with the first revision it still has
    if (ok && (canceled || compacted > 0)) {
        json_t *why = json_object_get (result, "cancel_reason");
        if (compacted > 0)
            etcd_err_append (self->reason, sizeof self->reason,
                             "%s: compacted: etcd keeps no events before revision %" PRId64, endpoint, compacted);
        else
            etcd_err_append (self->reason, sizeof self->reason, "%s: etcd canceled the watch: %s", endpoint,
                             json_is_string (why)? json_string_value (why): "no reason given");
        ok = false;
    }
    if (ok && !self->created) {
        if (!created) {
            etcd_err_append (self->reason, sizeof self->reason, "%s: a watch message before 'created'", endpoint);
            ok = false;
        }
        else {
            self->created = true;
            s_queue (self, "CREATED", "", 0, "", 0, revision);
        }
    }
    json_t *events = json_object_get (result, "events");
    if (ok && events && !json_is_array (events)) {
        etcd_err_append (self->reason, sizeof self->reason, "%s: a watch message with bad events", endpoint);
        ok = false;
    }
    //  Every event is checked before any is queued, so a message counts
    //  whole or not at all
    etcd_arena_reserve (&self->arena, size, 2 * json_array_size (events));
    size_t count = ok? json_array_size (events): 0;
    af_etcd_kv_t *kvs = count? (af_etcd_kv_t *) calloc (count, sizeof (af_etcd_kv_t)): NULL;
    bool *deletes = count? (bool *) calloc (count, sizeof (bool)): NULL;
    assert (count == 0 || (kvs && deletes));
    int64_t last = self->last_revision;
    for (size_t i = 0; ok && i < count; i++) {
        json_t *event = json_array_get (events, i);
        json_t *type = json_object_get (event, "type");
        char what [256] = "";
        //  mvccpb.Event.type: PUT is 0, so it is left out
        if (type && !(json_is_string (type)
                      && (streq (json_string_value (type), "PUT") || streq (json_string_value (type), "DELETE")))) {
            etcd_err_append (self->reason, sizeof self->reason, "%s: an event of unknown type", endpoint);
            ok = false;
        }
        else
        if (etcd_kv_decode (json_object_get (event, "kv"), &self->arena, &kvs [i], what, sizeof what) != AF_OK) {
            etcd_err_append (self->reason, sizeof self->reason, "%s: %s", endpoint, what);
            ok = false;
        }
        else
        if (kvs [i].mod_revision < last || kvs [i].mod_revision < self->start_revision) {
            etcd_err_append (self->reason, sizeof self->reason, "%s: an event of revision %" PRId64
                             " after %" PRId64 ": out of order", endpoint, kvs [i].mod_revision, last);
            ok = false;
        }
        else {
            deletes [i] = type && streq (json_string_value (type), "DELETE");
            last = kvs [i].mod_revision;
        }
    }
    for (size_t i = 0; ok && i < count; i++)
        s_queue (self, deletes [i]? "DELETE": "PUT", kvs [i].key, strlen (kvs [i].key),
                 deletes [i]? (const uint8_t *) "": kvs [i].value, deletes [i]? 0: kvs [i].value_size,
                 kvs [i].mod_revision);
    if (ok)
        self->last_revision = last;
    free (kvs);
    free (deletes);
    json_decref (msg);
    return ok;
}

static size_t
s_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_watch_t *self = (s_watch_t *) arg;
    size_t bytes = size * nmemb;
    if (self->failed)
        return 0;
    if (zlist_size (self->queue) >= AF_ETCD_WATCH_QUEUE) {
        self->paused = true;
        return CURL_WRITEFUNC_PAUSE;    //  libcurl delivers these bytes again later
    }
    if (bytes > AF_ETCD_MAX_ANSWER - self->line_size) {
        etcd_err_append (self->reason, sizeof self->reason, "%s: a watch message over %d bytes",
                         self->endpoints.url [self->tried - 1], AF_ETCD_MAX_ANSWER);
        self->failed = true;
        return 0;
    }
    if (self->line_size + bytes > self->line_max) {
        size_t max = self->line_max? self->line_max: 4096;
        while (max < self->line_size + bytes)
            max *= 2;
        char *bigger = (char *) realloc (self->line, max);
        assert (bigger);
        self->line = bigger;
        self->line_max = max;
    }
    memcpy (self->line + self->line_size, data, bytes);
    self->line_size += bytes;
    //  Each complete line is a message
    size_t start = 0;
    char *newline;
    while ((newline = (char *) memchr (self->line + start, '\n', self->line_size - start))) {
        size_t end = (size_t) (newline - self->line);
        if (end > start && !s_message (self, self->line + start, end - start)) {
            self->failed = true;
            return 0;
        }
        start = end + 1;
    }
    memmove (self->line, self->line + start, self->line_size - start);
    self->line_size -= start;
    return bytes;
}

//  Open the stream on the next endpoint
static void
s_start (s_watch_t *self)
{
    assert (!self->curl);
    assert (self->tried < self->endpoints.count);
    const char *endpoint = self->endpoints.url [self->tried++];
    char url [AF_ETCD_MAX_ENDPOINT + 16];
    snprintf (url, sizeof url, "%s/v3/watch", endpoint);
    self->curl = curl_easy_init ();
    assert (self->curl);
    etcd_curl_setup (self->curl, self->headers, self->curl_error);
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt (self->curl, CURLOPT_URL, url);
    rc |= curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, self->body);
    rc |= curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) strlen (self->body));
    rc |= curl_easy_setopt (self->curl, CURLOPT_CONNECTTIMEOUT_MS, (long) self->timeout_ms);
    rc |= curl_easy_setopt (self->curl, CURLOPT_WRITEFUNCTION, s_write);
    rc |= curl_easy_setopt (self->curl, CURLOPT_WRITEDATA, self);
    assert (rc == CURLE_OK);
    if (curl_multi_add_handle (self->multi, self->curl) != CURLM_OK)
        assert (false);
    self->created_by = zclock_mono () + self->timeout_ms;
    self->line_size = 0;
    self->paused = self->failed = false;
    self->curl_error [0] = 0;
}

//  The stream ended (why says how): before "created", try the next
//  endpoint; after, or with none left, LOST
static void
s_ended (s_watch_t *self, const char *why)
{
    const char *endpoint = self->endpoints.url [self->tried - 1];
    if (why)
        etcd_err_append (self->reason, sizeof self->reason, "%s: %s%s", endpoint,
                         self->created? "the stream broke: ": "", why);
    if (curl_multi_remove_handle (self->multi, self->curl) != CURLM_OK)
        assert (false);
    curl_easy_cleanup (self->curl);
    self->curl = NULL;
    if (!self->created && self->tried < self->endpoints.count)
        s_start (self);
    else
        s_lose (self, self->reason);
}

//  Did the transfer end (etcd closed it, the connection broke)?
static void
s_check_done (s_watch_t *self)
{
    CURLMsg *info;
    int left;
    while (self->curl && (info = curl_multi_info_read (self->multi, &left)))
        if (info->msg == CURLMSG_DONE && info->easy_handle == self->curl) {
            CURLcode rc = info->data.result;
            char why [CURL_ERROR_SIZE + 64];
            if (self->failed)
                *why = 0;               //  s_write said why
            else
            if (rc == CURLE_OK)
                snprintf (why, sizeof why, "the stream ended");
            else
                snprintf (why, sizeof why, "%s", self->curl_error [0]? self->curl_error: curl_easy_strerror (rc));
            s_ended (self, *why? why: NULL);
        }
}

static s_watch_t *
s_watch_new (zsock_t *pipe, const af_etcd_watch_t *args)
{
    s_watch_t *self = (s_watch_t *) zmalloc (sizeof (s_watch_t));
    assert (self);
    self->pipe = pipe;
    self->queue = zlist_new ();
    assert (self->queue);
    self->timeout_ms = args->timeout_ms > 0? args->timeout_ms: 1;
    self->start_revision = args->start_revision > 0? args->start_revision: 0;
    self->last_revision = self->start_revision > 0? self->start_revision - 1: 0;
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
        assert (false);
    self->multi = curl_multi_init ();
    assert (self->multi);
    self->headers = etcd_curl_headers ();
    char err [256] = "";
    if (etcd_endpoints_parse (&self->endpoints, args->endpoints, err, sizeof err) != AF_OK
    ||  etcd_key_check (args->key, err, sizeof err) != AF_OK) {
        s_lose (self, err);
        return self;
    }
    json_t *create = json_pack ("{s:o}", "key", etcd_json_bytes (args->key, strlen (args->key)));
    assert (create);
    if ((args->prefix && json_object_set_new (create, "range_end", etcd_json_prefix_end (args->key)))
    ||  (self->start_revision && json_object_set_new (create, "start_revision",
                                                      etcd_json_int64 (self->start_revision))))
        assert (false);
    json_t *request = json_pack ("{s:o}", "create_request", create);
    assert (request);
    self->body = json_dumps (request, JSON_COMPACT);
    assert (self->body);
    json_decref (request);
    return self;
}

static void
s_watch_destroy (s_watch_t **self_p)
{
    s_watch_t *self = *self_p;
    if (self->curl) {
        curl_multi_remove_handle (self->multi, self->curl);
        curl_easy_cleanup (self->curl);
    }
    curl_multi_cleanup (self->multi);
    curl_slist_free_all (self->headers);
    curl_global_cleanup ();
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlist_pop (self->queue)))
        zmsg_destroy (&msg);
    zlist_destroy (&self->queue);
    etcd_arena_free (&self->arena);
    free (self->line);
    free (self->body);
    free (self);
    *self_p = NULL;
}

void
af_etcd_watch_actor (zsock_t *pipe, void *args)
{
    assert (pipe);
    assert (args);
    s_watch_t *self = s_watch_new (pipe, (const af_etcd_watch_t *) args);
    zsock_signal (pipe, 0);             //  args are copied: zactor_new returns
    if (!self->lost)
        s_start (self);
    int pipe_fd = zsock_fd (pipe);
    while (!self->terminated) {
        //  Commands: $TERM, nothing else
        while (!self->terminated && (zsock_events (pipe) & ZMQ_POLLIN)) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = msg? zmsg_popstr (msg): NULL;
            if (!msg || (command && streq (command, "$TERM")))
                self->terminated = true;
            zstr_free (&command);
            zmsg_destroy (&msg);
        }
        if (self->terminated)
            break;
        s_flush (self);
        if (self->curl) {
            if (self->paused && zlist_size (self->queue) < AF_ETCD_WATCH_QUEUE / 2) {
                self->paused = false;
                if (curl_easy_pause (self->curl, CURLPAUSE_CONT) != CURLE_OK) {
                    etcd_err_append (self->reason, sizeof self->reason, "%s: cannot resume the stream",
                                     self->endpoints.url [self->tried - 1]);
                    self->failed = true;
                }
            }
            int running;
            if (curl_multi_perform (self->multi, &running) != CURLM_OK)
                assert (false);         //  only for a bad handle or no memory
            s_check_done (self);
            if (self->curl && self->failed)
                s_ended (self, NULL);
            if (self->curl && !self->created && zclock_mono () >= self->created_by) {
                char why [64];
                snprintf (why, sizeof why, "no watch created within %d ms", self->timeout_ms);
                s_ended (self, why);
            }
        }
        s_flush (self);
        //  Sleep only if ZMQ_EVENTS says so, right before: the pipe's fd
        //  only wakes us for what happens after this
        int events = zsock_events (pipe);
        if ((events & ZMQ_POLLIN) || (zlist_size (self->queue) > 0 && (events & ZMQ_POLLOUT)))
            continue;
        int64_t wait_ms = 1000;
        if (self->curl && !self->created) {
            int64_t left = self->created_by - zclock_mono ();
            wait_ms = left < 0? 0: left < wait_ms? left: wait_ms;
        }
        struct curl_waitfd wait = { pipe_fd, CURL_WAIT_POLLIN, 0 };
        if (curl_multi_poll (self->multi, &wait, 1, (int) wait_ms, NULL) != CURLM_OK)
            zclock_sleep (10);          //  poll(2) failed: no spinning, try again
    }
    s_watch_destroy (&self);
}
