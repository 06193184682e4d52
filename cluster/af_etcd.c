/*  =========================================================================
    af_etcd - a small client of etcd's v3 API, over its JSON gateway

    One libcurl easy handle per client, so the HTTP/1.1 connection to the
    member that answered last is kept and reused; one answer buffer, read
    to at most AF_ETCD_MAX_ANSWER bytes and parsed whole; one arena the
    keys and values of an answer are decoded into, kept until the next call
    (what af_etcd_kv_t points at). Every call is s_call: POST the request
    to one endpoint after the other within the time left, and sort what
    happened into the contract's codes. etcd's errors come back from the
    gateway as an HTTP status with {"error", "code" (gRPC), "message"};
    only Unavailable (14) and DeadlineExceeded (4) mean "try later", the
    rest are refusals.

    The watch, which keeps its own handle in its own thread, is in
    etcd_watch.c; what both use (the JSON mapping, the curl options) in
    etcd_common.c; the self-test in etcd_test.c.
    =========================================================================
*/
#include "etcd_int.h"

#include <assert.h>

//  The largest answer a range of AF_ETCD_MAX_RANGE keys of the largest
//  size can make must fit in an answer: base64 makes 4 bytes of 3, and
//  each key comes with about 200 bytes of field names and revisions.
_Static_assert ((uint64_t) AF_ETCD_MAX_RANGE * ((AF_ETCD_MAX_KEY + AF_ETCD_MAX_VALUE + 4) / 3 * 4 + 256)
                + 4096 <= AF_ETCD_MAX_ANSWER, "AF_ETCD_MAX_ANSWER cannot hold a full range");

//  ---------------------------------------------------------------------
//  The client

struct _af_etcd_t {
    etcd_endpoints_t endpoints;
    size_t current;                     //  the one that answered last
    int timeout_ms;
    CURL *curl;
    struct curl_slist *headers;
    char curl_error [CURL_ERROR_SIZE];
    char *answer;                       //  the answer being read, NUL-terminated
    size_t answer_size, answer_max;
    bool answer_too_big;
    bool first_line;                    //  stop reading at the first newline
    json_t *parsed;                     //  the last answer, parsed (kvs point into arena)
    etcd_arena_t arena;
    af_etcd_kv_t *kvs;                  //  the last range's keys
    size_t kvs_max;
};

af_etcd_t *
af_etcd_new (const char *endpoints, int timeout_ms, char *err, size_t errlen)
{
    af_etcd_t *self = (af_etcd_t *) zmalloc (sizeof (af_etcd_t));
    assert (self);
    if (etcd_endpoints_parse (&self->endpoints, endpoints, err, errlen) != AF_OK) {
        free (self);
        return NULL;
    }
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        etcd_err_set (err, errlen, "libcurl cannot start");
        free (self);
        return NULL;
    }
    self->timeout_ms = timeout_ms > 0? timeout_ms: 1;
    self->curl = curl_easy_init ();
    assert (self->curl);
    self->headers = etcd_curl_headers ();
    etcd_curl_setup (self->curl, self->headers, self->curl_error);
    return self;
}

void
af_etcd_destroy (af_etcd_t **self_p)
{
    assert (self_p);
    af_etcd_t *self = *self_p;
    if (!self)
        return;
    curl_easy_cleanup (self->curl);
    curl_slist_free_all (self->headers);
    curl_global_cleanup ();
    json_decref (self->parsed);
    etcd_arena_free (&self->arena);
    free (self->answer);
    free (self->kvs);
    free (self);
    *self_p = NULL;
}

const char *
af_etcd_endpoint (af_etcd_t *self)
{
    assert (self);
    return self->endpoints.url [self->current];
}

static size_t
s_write (char *data, size_t size, size_t nmemb, void *arg)
{
    af_etcd_t *self = (af_etcd_t *) arg;
    size_t bytes = size * nmemb;
    if (bytes > AF_ETCD_MAX_ANSWER - self->answer_size) {
        self->answer_too_big = true;
        return 0;                       //  libcurl stops: CURLE_WRITE_ERROR
    }
    if (self->answer_size + bytes + 1 > self->answer_max) {
        size_t max = self->answer_max? self->answer_max: 4096;
        while (max < self->answer_size + bytes + 1)
            max *= 2;
        if (max > AF_ETCD_MAX_ANSWER + 1)
            max = AF_ETCD_MAX_ANSWER + 1;
        char *bigger = (char *) realloc (self->answer, max);
        assert (bigger);
        self->answer = bigger;
        self->answer_max = max;
    }
    memcpy (self->answer + self->answer_size, data, bytes);
    self->answer_size += bytes;
    self->answer [self->answer_size] = 0;
    if (self->first_line && memchr (data, '\n', bytes))
        return 0;                       //  the answer we wanted is in
    return bytes;
}

//  What became of one POST to one endpoint
typedef enum {
    S_ANSWERED,                         //  an HTTP answer is in self->answer
    S_NOT_SENT,                         //  no connection: nothing left this host
    S_LOST,                             //  sent, then no (whole) answer
    S_TOO_BIG                           //  the answer went over AF_ETCD_MAX_ANSWER
} s_post_t;

static s_post_t
s_post (af_etcd_t *self, const char *url, const char *body, long connect_ms, long total_ms,
        long *status, char *what, size_t whatlen)
{
    self->answer_size = 0;
    self->answer_too_big = false;
    if (self->answer)
        self->answer [0] = 0;
    self->curl_error [0] = 0;
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt (self->curl, CURLOPT_URL, url);
    rc |= curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, body);
    rc |= curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    rc |= curl_easy_setopt (self->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    rc |= curl_easy_setopt (self->curl, CURLOPT_TIMEOUT_MS, total_ms);
    rc |= curl_easy_setopt (self->curl, CURLOPT_WRITEFUNCTION, s_write);
    rc |= curl_easy_setopt (self->curl, CURLOPT_WRITEDATA, self);
    assert (rc == CURLE_OK);
    rc = curl_easy_perform (self->curl);
    long sent = 0;
    if (curl_easy_getinfo (self->curl, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK)
        sent = 1;                       //  cannot tell: assume it went
    if (curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
        *status = 0;
    if (rc == CURLE_WRITE_ERROR && self->first_line && !self->answer_too_big)
        rc = CURLE_OK;                  //  we stopped it after the first line
    if (rc == CURLE_OK)
        return S_ANSWERED;
    if (self->answer_too_big) {
        snprintf (what, whatlen, "answer over %d bytes", AF_ETCD_MAX_ANSWER);
        return S_TOO_BIG;
    }
    snprintf (what, whatlen, "%s", self->curl_error [0]? self->curl_error: curl_easy_strerror (rc));
    return sent == 0? S_NOT_SENT: S_LOST;
}

#define S_GRPC_NOT_FOUND        5
#define S_GRPC_DEADLINE         4
#define S_GRPC_UNAVAILABLE      14

#define S_REPEATABLE    1           //  may be sent again after it may have been applied
#define S_STREAM        2           //  the answer is a stream: its first message counts

//  POST request (taken) to path on the endpoints in turn, within the
//  time. AF_OK with the answer in self->parsed (an object; for a stream,
//  its first message's "result"); else the contract's code with err, and
//  *grpc_code (may be NULL) set when etcd refused it.
static int
s_call (af_etcd_t *self, const char *path, json_t *request, int flags, int *grpc_code,
        char *err, size_t errlen)
{
    bool repeatable = (flags & S_REPEATABLE) != 0;
    self->first_line = (flags & S_STREAM) != 0;
    if (err && errlen)
        *err = 0;
    if (grpc_code)
        *grpc_code = 0;
    json_decref (self->parsed);
    self->parsed = NULL;
    char *body = json_dumps (request, JSON_COMPACT);
    assert (body);
    json_decref (request);
    int64_t deadline = zclock_mono () + self->timeout_ms;
    size_t count = self->endpoints.count;
    int rc = AF_E_UNAVAILABLE;
    for (size_t tried = 0; tried < count; tried++) {
        size_t at = (self->current + tried) % count;
        const char *endpoint = self->endpoints.url [at];
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            etcd_err_append (err, errlen, "%s: not tried, %d ms are up", endpoint, self->timeout_ms);
            continue;
        }
        //  Each endpoint left may take its share of the time left to
        //  connect (one that drops our SYNs must not take it all) and, if
        //  the request can go on to the next, to answer (nor one that
        //  takes requests and never answers); a request that cannot go on
        //  has all the time left
        int64_t share = left / (int64_t) (count - tried);
        if (share < 100)
            share = left < 100? left: 100;
        int64_t connect_ms = share, total_ms = repeatable? share: left;
        char url [AF_ETCD_MAX_ENDPOINT + 64], what [CURL_ERROR_SIZE + 64];
        snprintf (url, sizeof url, "%s%s", endpoint, path);
        long status = 0;
        s_post_t outcome = s_post (self, url, body, (long) connect_ms, (long) total_ms, &status, what, sizeof what);
        if (outcome == S_TOO_BIG) {
            etcd_err_append (err, errlen, "%s%s: %s", endpoint, path, what);
            rc = AF_E_TOO_BIG;
            break;
        }
        if (outcome == S_NOT_SENT) {
            etcd_err_append (err, errlen, "%s: cannot connect: %s", endpoint, what);
            continue;
        }
        if (outcome == S_LOST) {
            if (repeatable) {
                etcd_err_append (err, errlen, "%s%s: no answer: %s", endpoint, path, what);
                continue;
            }
            etcd_err_append (err, errlen, "%s%s: sent, no answer (outcome unknown): %s", endpoint, path, what);
            break;
        }
        //  An answer: JSON, one object (a stream's first line)
        size_t size = self->answer_size;
        if (self->first_line) {
            char *newline = (char *) memchr (self->answer, '\n', size);
            if (newline)
                size = (size_t) (newline - self->answer);
        }
        json_error_t jerr;
        json_t *answer = size? json_loadb (self->answer, size, JSON_REJECT_DUPLICATES, &jerr): NULL;
        if (!json_is_object (answer)) {
            etcd_err_append (err, errlen, "%s%s: HTTP %ld, not etcd's JSON: %.80s", endpoint, path, status,
                             self->answer_size? self->answer: "(nothing)");
            json_decref (answer);
            rc = AF_E_INTERNAL;
            break;
        }
        int code = 0;
        const char *message = "no error message";
        if (etcd_grpc_error (answer, &code, &message) || status != 200) {
            if (grpc_code)
                *grpc_code = code;
            bool later = code == S_GRPC_UNAVAILABLE || code == S_GRPC_DEADLINE
                         || status == 503 || status == 504;
            etcd_err_append (err, errlen, "%s%s: etcd: %s (code %d, HTTP %ld)%s", endpoint, path, message, code,
                             status, later && !repeatable? ", outcome unknown": "");
            json_decref (answer);
            if (later && repeatable)
                continue;
            rc = later? AF_E_UNAVAILABLE: AF_E_INTERNAL;
            break;
        }
        //  A stream's message is {"result": ...}
        if (self->first_line) {
            json_t *result = json_object_get (answer, "result");
            if (!json_is_object (result)) {
                etcd_err_append (err, errlen, "%s%s: a stream message without a result", endpoint, path);
                json_decref (answer);
                rc = AF_E_INTERNAL;
                break;
            }
            json_incref (result);
            json_decref (answer);
            answer = result;
        }
        self->current = at;
        self->parsed = answer;
        free (body);
        if (err && errlen)
            *err = 0;
        return AF_OK;
    }
    free (body);
    return rc;
}

//  ---------------------------------------------------------------------
//  Keys

static int
s_value_check (const char *key, const void *value, size_t value_size, char *err, size_t errlen)
{
    int rc = etcd_key_check (key, err, errlen);
    if (rc != AF_OK)
        return rc;
    assert (value || value_size == 0);
    if (value_size > AF_ETCD_MAX_VALUE) {
        etcd_err_set (err, errlen, "value of %zu bytes for %s, over %d", value_size, key, AF_ETCD_MAX_VALUE);
        return AF_E_TOO_BIG;
    }
    return AF_OK;
}

//  Decode the kvs of the range answer in self->parsed into self->kvs
static int
s_kvs (af_etcd_t *self, size_t *count, char *err, size_t errlen)
{
    json_t *kvs = json_object_get (self->parsed, "kvs");
    *count = 0;
    if (!kvs)
        return AF_OK;
    if (!json_is_array (kvs) || json_array_size (kvs) > AF_ETCD_MAX_RANGE) {
        etcd_err_append (err, errlen, "etcd's range answer has a bad kvs list");
        return AF_E_INTERNAL;
    }
    size_t n = json_array_size (kvs);
    if (self->kvs_max < n) {
        free (self->kvs);
        self->kvs = (af_etcd_kv_t *) calloc (n, sizeof (af_etcd_kv_t));
        assert (self->kvs);
        self->kvs_max = n;
    }
    etcd_arena_reserve (&self->arena, self->answer_size, 2 * n);
    for (size_t i = 0; i < n; i++) {
        int rc = etcd_kv_decode (json_array_get (kvs, i), &self->arena, &self->kvs [i], err, errlen);
        if (rc != AF_OK)
            return rc;
    }
    *count = n;
    return AF_OK;
}

int
af_etcd_get (af_etcd_t *self, const char *key, af_etcd_kv_t *kv, bool *found, int64_t *revision,
             char *err, size_t errlen)
{
    assert (self);
    assert (kv);
    assert (found);
    *found = false;
    int rc = etcd_key_check (key, err, errlen);
    if (rc != AF_OK)
        return rc;
    json_t *request = json_pack ("{s:o}", "key", etcd_json_bytes (key, strlen (key)));
    assert (request);
    rc = s_call (self, "/v3/kv/range", request, S_REPEATABLE, NULL, err, errlen);
    int64_t header = 0;
    if (rc == AF_OK)
        rc = etcd_header_revision (self->parsed, &header, err, errlen);
    size_t count = 0;
    if (rc == AF_OK)
        rc = s_kvs (self, &count, err, errlen);
    if (rc == AF_OK && (count > 1 || (count == 1 && strcmp (self->kvs [0].key, key)))) {
        etcd_err_append (err, errlen, "etcd answered a get of %s with other keys", key);
        rc = AF_E_INTERNAL;
    }
    if (rc != AF_OK)
        return rc;
    if (count == 1) {
        *kv = self->kvs [0];
        *found = true;
    }
    if (revision)
        *revision = header;
    return AF_OK;
}

int
af_etcd_range (af_etcd_t *self, const char *prefix, size_t limit, const af_etcd_kv_t **kvs_p,
               size_t *count, bool *more, int64_t *revision, char *err, size_t errlen)
{
    assert (self);
    assert (kvs_p);
    assert (count);
    *kvs_p = NULL;
    *count = 0;
    int rc = etcd_key_check (prefix, err, errlen);
    if (rc != AF_OK)
        return rc;
    if (limit < 1 || limit > AF_ETCD_MAX_RANGE) {
        etcd_err_set (err, errlen, "range limit %zu is not 1 to %d", limit, AF_ETCD_MAX_RANGE);
        return AF_E_MALFORMED;
    }
    json_t *request = json_pack ("{s:o, s:o, s:o}", "key", etcd_json_bytes (prefix, strlen (prefix)),
                                 "range_end", etcd_json_prefix_end (prefix),
                                 "limit", etcd_json_int64 ((int64_t) limit));
    assert (request);
    rc = s_call (self, "/v3/kv/range", request, S_REPEATABLE, NULL, err, errlen);
    int64_t header = 0;
    bool has_more = false;
    if (rc == AF_OK)
        rc = etcd_header_revision (self->parsed, &header, err, errlen);
    if (rc == AF_OK && !etcd_bool (self->parsed, "more", &has_more)) {
        etcd_err_append (err, errlen, "etcd's range answer has a bad 'more'");
        rc = AF_E_INTERNAL;
    }
    size_t n = 0;
    if (rc == AF_OK)
        rc = s_kvs (self, &n, err, errlen);
    for (size_t i = 0; rc == AF_OK && i < n; i++)
        if (strncmp (self->kvs [i].key, prefix, strlen (prefix))
        ||  (i > 0 && strcmp (self->kvs [i - 1].key, self->kvs [i].key) >= 0)) {
            etcd_err_append (err, errlen, "etcd's range answer for %s has a key out of it or out of order: %s",
                             prefix, self->kvs [i].key);
            rc = AF_E_INTERNAL;
        }
    if (rc == AF_OK && n > limit) {
        etcd_err_append (err, errlen, "etcd's range answer has %zu keys, over the limit %zu", n, limit);
        rc = AF_E_INTERNAL;
    }
    if (rc != AF_OK)
        return rc;
    *kvs_p = self->kvs;
    *count = n;
    if (more)
        *more = has_more;
    if (revision)
        *revision = header;
    return AF_OK;
}

int
af_etcd_put (af_etcd_t *self, const char *key, const void *value, size_t value_size, int64_t lease,
             int64_t *revision, char *err, size_t errlen)
{
    assert (self);
    int rc = s_value_check (key, value, value_size, err, errlen);
    if (rc != AF_OK)
        return rc;
    json_t *request = json_pack ("{s:o, s:o, s:o}", "key", etcd_json_bytes (key, strlen (key)),
                                 "value", etcd_json_bytes (value, value_size), "lease", etcd_json_int64 (lease));
    assert (request);
    rc = s_call (self, "/v3/kv/put", request, 0, NULL, err, errlen);
    int64_t header = 0;
    if (rc == AF_OK)
        rc = etcd_header_revision (self->parsed, &header, err, errlen);
    if (rc == AF_OK && revision)
        *revision = header;
    return rc;
}

//  The DeleteRangeRequest of key, or of its prefix
static json_t *
s_delete_request (const char *key, bool prefix)
{
    json_t *request = json_pack ("{s:o}", "key", etcd_json_bytes (key, strlen (key)));
    assert (request);
    if (prefix && json_object_set_new (request, "range_end", etcd_json_prefix_end (key)))
        assert (false);
    return request;
}

int
af_etcd_delete (af_etcd_t *self, const char *key, bool prefix, int64_t *deleted, int64_t *revision,
                char *err, size_t errlen)
{
    assert (self);
    int rc = etcd_key_check (key, err, errlen);
    if (rc != AF_OK)
        return rc;
    rc = s_call (self, "/v3/kv/deleterange", s_delete_request (key, prefix), 0, NULL, err, errlen);
    int64_t header = 0, count = 0;
    if (rc == AF_OK)
        rc = etcd_header_revision (self->parsed, &header, err, errlen);
    if (rc == AF_OK && (!etcd_int64 (self->parsed, "deleted", &count) || count < 0)) {
        etcd_err_append (err, errlen, "etcd's delete answer has a bad 'deleted'");
        rc = AF_E_INTERNAL;
    }
    if (rc != AF_OK)
        return rc;
    if (deleted)
        *deleted = count;
    if (revision)
        *revision = header;
    return AF_OK;
}

//  ---------------------------------------------------------------------
//  Transactions

static int
s_ops (const af_etcd_op_t *ops, size_t count, json_t **list_p, char *err, size_t errlen)
{
    *list_p = NULL;
    if (count > AF_ETCD_MAX_TXN_OPS) {
        etcd_err_set (err, errlen, "%zu operations in a branch, over %d", count, AF_ETCD_MAX_TXN_OPS);
        return AF_E_MALFORMED;
    }
    assert (ops || count == 0);
    json_t *list = json_array ();
    assert (list);
    for (size_t i = 0; i < count; i++) {
        const af_etcd_op_t *op = &ops [i];
        int rc = op->type == AF_ETCD_PUT? s_value_check (op->key, op->value, op->value_size, err, errlen)
                                        : etcd_key_check (op->key, err, errlen);
        if (rc != AF_OK) {
            json_decref (list);
            return rc;
        }
        json_t *item;
        if (op->type == AF_ETCD_PUT)
            item = json_pack ("{s:{s:o, s:o, s:o}}", "request_put",
                              "key", etcd_json_bytes (op->key, strlen (op->key)),
                              "value", etcd_json_bytes (op->value, op->value_size),
                              "lease", etcd_json_int64 (op->lease));
        else {
            assert (op->type == AF_ETCD_DELETE || op->type == AF_ETCD_DELETE_PREFIX);
            item = json_pack ("{s:o}", "request_delete_range",
                              s_delete_request (op->key, op->type == AF_ETCD_DELETE_PREFIX));
        }
        assert (item);
        if (json_array_append_new (list, item))
            assert (false);
    }
    *list_p = list;
    return AF_OK;
}

static int
s_compares (const af_etcd_compare_t *compares, size_t count, json_t **list_p, char *err, size_t errlen)
{
    *list_p = NULL;
    if (count > AF_ETCD_MAX_TXN_OPS) {
        etcd_err_set (err, errlen, "%zu compares, over %d", count, AF_ETCD_MAX_TXN_OPS);
        return AF_E_MALFORMED;
    }
    assert (compares || count == 0);
    json_t *list = json_array ();
    assert (list);
    for (size_t i = 0; i < count; i++) {
        const af_etcd_compare_t *compare = &compares [i];
        int rc = compare->target == AF_ETCD_VALUE
                 ? s_value_check (compare->key, compare->value, compare->value_size, err, errlen)
                 : etcd_key_check (compare->key, err, errlen);
        if (rc != AF_OK) {
            json_decref (list);
            return rc;
        }
        //  Compare.target is the CompareTarget enum, by name; the value is
        //  in the field of that target
        const char *target = "CREATE", *field = "create_revision";
        if (compare->target == AF_ETCD_MOD_REVISION)
            target = "MOD", field = "mod_revision";
        else
        if (compare->target == AF_ETCD_VERSION)
            target = "VERSION", field = "version";
        else
        if (compare->target == AF_ETCD_VALUE)
            target = "VALUE", field = "value";
        else
            assert (compare->target == AF_ETCD_CREATE_REVISION);
        json_t *item = json_pack ("{s:s, s:s, s:o, s:o}", "result", "EQUAL", "target", target,
                                  "key", etcd_json_bytes (compare->key, strlen (compare->key)), field,
                                  compare->target == AF_ETCD_VALUE
                                  ? etcd_json_bytes (compare->value, compare->value_size)
                                  : etcd_json_int64 (compare->number));
        assert (item);
        if (json_array_append_new (list, item))
            assert (false);
    }
    *list_p = list;
    return AF_OK;
}

int
af_etcd_txn (af_etcd_t *self, const af_etcd_txn_t *txn, bool *succeeded, int64_t *revision,
             char *err, size_t errlen)
{
    assert (self);
    assert (txn);
    assert (succeeded);
    *succeeded = false;
    json_t *compare, *success, *failure;
    int rc = s_compares (txn->compares, txn->compare_count, &compare, err, errlen);
    if (rc != AF_OK)
        return rc;
    rc = s_ops (txn->success, txn->success_count, &success, err, errlen);
    if (rc != AF_OK) {
        json_decref (compare);
        return rc;
    }
    rc = s_ops (txn->failure, txn->failure_count, &failure, err, errlen);
    if (rc != AF_OK) {
        json_decref (compare);
        json_decref (success);
        return rc;
    }
    json_t *request = json_pack ("{s:o, s:o, s:o}", "compare", compare, "success", success, "failure", failure);
    assert (request);
    rc = s_call (self, "/v3/kv/txn", request, 0, NULL, err, errlen);
    int64_t header = 0;
    bool ran_success = false;
    if (rc == AF_OK)
        rc = etcd_header_revision (self->parsed, &header, err, errlen);
    if (rc == AF_OK && !etcd_bool (self->parsed, "succeeded", &ran_success)) {
        etcd_err_append (err, errlen, "etcd's txn answer has a bad 'succeeded'");
        rc = AF_E_INTERNAL;
    }
    //  One response per operation of the branch that ran; a put's carries
    //  the revision it was written at, which must be the header's
    size_t expected = ran_success? txn->success_count: txn->failure_count;
    json_t *responses = json_object_get (self->parsed, "responses");
    if (rc == AF_OK && (responses? !json_is_array (responses) || json_array_size (responses) != expected
                                 : expected != 0)) {
        etcd_err_append (err, errlen, "etcd's txn answer does not have one response per operation");
        rc = AF_E_INTERNAL;
    }
    for (size_t i = 0; rc == AF_OK && i < expected; i++) {
        json_t *put = json_object_get (json_array_get (responses, i), "response_put");
        int64_t put_revision;
        if (put && (rc = etcd_header_revision (put, &put_revision, err, errlen)) == AF_OK
        &&  put_revision != header) {
            etcd_err_append (err, errlen, "etcd's txn answer has a put at revision %" PRId64 ", not %" PRId64,
                             put_revision, header);
            rc = AF_E_INTERNAL;
        }
    }
    if (rc != AF_OK)
        return rc;
    *succeeded = ran_success;
    if (revision)
        *revision = header;
    return AF_OK;
}

int
af_etcd_claim (af_etcd_t *self, const char *key, const void *value, size_t value_size, int64_t lease,
               bool *done, int64_t *revision, char *err, size_t errlen)
{
    af_etcd_compare_t absent = { AF_ETCD_CREATE_REVISION, key, 0, NULL, 0 };
    af_etcd_op_t put = { AF_ETCD_PUT, key, value, value_size, lease };
    af_etcd_txn_t txn = { &absent, 1, &put, 1, NULL, 0 };
    return af_etcd_txn (self, &txn, done, revision, err, errlen);
}

int
af_etcd_swap (af_etcd_t *self, const char *key, int64_t mod_revision, const void *value,
              size_t value_size, int64_t lease, bool *done, int64_t *revision, char *err, size_t errlen)
{
    af_etcd_compare_t unchanged = { AF_ETCD_MOD_REVISION, key, mod_revision, NULL, 0 };
    af_etcd_op_t put = { AF_ETCD_PUT, key, value, value_size, lease };
    af_etcd_txn_t txn = { &unchanged, 1, &put, 1, NULL, 0 };
    return af_etcd_txn (self, &txn, done, revision, err, errlen);
}

int
af_etcd_delete_if (af_etcd_t *self, const char *key, const void *value, size_t value_size,
                   bool *done, int64_t *revision, char *err, size_t errlen)
{
    af_etcd_compare_t mine = { AF_ETCD_VALUE, key, 0, value, value_size };
    af_etcd_op_t delete = { AF_ETCD_DELETE, key, NULL, 0, 0 };
    af_etcd_txn_t txn = { &mine, 1, &delete, 1, NULL, 0 };
    return af_etcd_txn (self, &txn, done, revision, err, errlen);
}

//  ---------------------------------------------------------------------
//  Leases

int
af_etcd_lease_grant (af_etcd_t *self, int64_t ttl_s, int64_t *id, int64_t *granted_ttl,
                     char *err, size_t errlen)
{
    assert (self);
    assert (id);
    *id = 0;
    if (ttl_s < 1 || ttl_s > AF_ETCD_MAX_TTL_S) {
        etcd_err_set (err, errlen, "lease TTL %" PRId64 " s is not 1 to %d", ttl_s, AF_ETCD_MAX_TTL_S);
        return AF_E_MALFORMED;
    }
    json_t *request = json_pack ("{s:o}", "TTL", etcd_json_int64 (ttl_s));
    assert (request);
    int rc = s_call (self, "/v3/lease/grant", request, 0, NULL, err, errlen);
    if (rc != AF_OK)
        return rc;
    int64_t lease, ttl;
    json_t *error = json_object_get (self->parsed, "error");
    if (json_is_string (error) && json_string_length (error)) {
        etcd_err_append (err, errlen, "etcd: %s", json_string_value (error));
        return AF_E_INTERNAL;
    }
    if (!etcd_int64 (self->parsed, "ID", &lease) || !etcd_int64 (self->parsed, "TTL", &ttl)
    ||  lease == 0 || ttl < 1) {
        etcd_err_append (err, errlen, "etcd's lease grant answer has no ID or TTL");
        return AF_E_INTERNAL;
    }
    *id = lease;
    if (granted_ttl)
        *granted_ttl = ttl;
    return AF_OK;
}

int
af_etcd_lease_keepalive (af_etcd_t *self, int64_t id, int64_t *ttl, char *err, size_t errlen)
{
    assert (self);
    assert (ttl);
    *ttl = 0;
    json_t *request = json_pack ("{s:o}", "ID", etcd_json_int64 (id));
    assert (request);
    int rc = s_call (self, "/v3/lease/keepalive", request, S_REPEATABLE | S_STREAM, NULL, err, errlen);
    if (rc != AF_OK)
        return rc;
    int64_t answered, left;
    if (!etcd_int64 (self->parsed, "ID", &answered) || !etcd_int64 (self->parsed, "TTL", &left)
    ||  answered != id || left < 0) {
        etcd_err_append (err, errlen, "etcd's keepalive answer is not for lease %" PRId64, id);
        return AF_E_INTERNAL;
    }
    *ttl = left;                        //  0 (left out): the lease is gone
    return AF_OK;
}

int
af_etcd_lease_revoke (af_etcd_t *self, int64_t id, char *err, size_t errlen)
{
    assert (self);
    json_t *request = json_pack ("{s:o}", "ID", etcd_json_int64 (id));
    assert (request);
    int code;
    int rc = s_call (self, "/v3/lease/revoke", request, S_REPEATABLE, &code, err, errlen);
    if (rc == AF_E_INTERNAL && code == S_GRPC_NOT_FOUND) {
        if (err && errlen)
            *err = 0;
        return AF_OK;                   //  gone already: what was asked
    }
    int64_t header = 0;
    if (rc == AF_OK)
        rc = etcd_header_revision (self->parsed, &header, err, errlen);
    return rc;
}

int
af_etcd_lease_ttl (af_etcd_t *self, int64_t id, bool *found, int64_t *ttl, int64_t *granted_ttl,
                   char *err, size_t errlen)
{
    assert (self);
    assert (found);
    *found = false;
    json_t *request = json_pack ("{s:o}", "ID", etcd_json_int64 (id));
    assert (request);
    int rc = s_call (self, "/v3/lease/timetolive", request, S_REPEATABLE, NULL, err, errlen);
    if (rc != AF_OK)
        return rc;
    //  LeaseTimeToLiveResponse: TTL -1 for a lease that is not there;
    //  grantedTTL is the proto's own camel-case name
    int64_t left, granted;
    if (!etcd_int64 (self->parsed, "TTL", &left) || !etcd_int64 (self->parsed, "grantedTTL", &granted)
    ||  left < -1) {
        etcd_err_append (err, errlen, "etcd's time-to-live answer has a bad TTL");
        return AF_E_INTERNAL;
    }
    *found = left >= 0;
    if (ttl)
        *ttl = left >= 0? left: 0;
    if (granted_ttl)
        *granted_ttl = granted;
    return AF_OK;
}
