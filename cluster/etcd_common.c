/*  =========================================================================
    etcd_common - what the client (af_etcd.c) and the watch (etcd_watch.c)
    share: endpoint lists, protobuf's JSON mapping of etcd's messages
    (bytes as base64, int64 as decimal strings, zero values left out), the
    libcurl options every request has, err messages that pile up
    =========================================================================
*/
#include "etcd_int.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sodium.h>
#include <sys/socket.h>

void
etcd_err_append (char *err, size_t errlen, const char *format, ...)
{
    if (!err || errlen == 0)
        return;
    size_t used = strnlen (err, errlen);
    if (used >= errlen - 1)
        return;
    if (used > 0)
        used += snprintf (err + used, errlen - used, "; ");
    if (used >= errlen - 1)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err + used, errlen - used, format, args);
    va_end (args);
}

void
etcd_err_set (char *err, size_t errlen, const char *format, ...)
{
    if (!err || errlen == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, errlen, format, args);
    va_end (args);
}

int
etcd_endpoints_parse (etcd_endpoints_t *eps, const char *list, char *err, size_t errlen)
{
    assert (eps);
    eps->count = 0;
    if (!list || !*list) {
        etcd_err_set (err, errlen, "no etcd endpoint given");
        return AF_E_MALFORMED;
    }
    const char *p = list;
    while (true) {
        const char *comma = strchr (p, ',');
        size_t len = comma? (size_t) (comma - p): strlen (p);
        if (len > 0 && p [len - 1] == '/')
            len--;
        if (eps->count == AF_ETCD_MAX_ENDPOINTS) {
            etcd_err_set (err, errlen, "more than %d etcd endpoints", AF_ETCD_MAX_ENDPOINTS);
            return AF_E_MALFORMED;
        }
        if (len > AF_ETCD_MAX_ENDPOINT) {
            etcd_err_set (err, errlen, "etcd endpoint over %d bytes: %.40s...", AF_ETCD_MAX_ENDPOINT, p);
            return AF_E_MALFORMED;
        }
        char *url = eps->url [eps->count];
        memcpy (url, p, len);
        url [len] = 0;
        //  http://HOST:PORT: a host of letters, digits, '.', '-', or an
        //  IPv6 address in brackets, then a port of 1 to 5 digits
        const char *host = url + 7;
        const char *colon = strrchr (host, ':');
        bool good = strncmp (url, "http://", 7) == 0 && colon && colon > host
                    && strlen (colon + 1) >= 1 && strlen (colon + 1) <= 5
                    && strspn (colon + 1, "0123456789") == strlen (colon + 1)
                    && atoi (colon + 1) >= 1 && atoi (colon + 1) <= 65535;
        if (good && *host == '[')
            good = colon [-1] == ']' && colon - host > 2
                   && strspn (host + 1, "0123456789abcdefABCDEF:.") == (size_t) (colon - host - 2);
        else
        if (good)
            good = strspn (host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
                   == (size_t) (colon - host);
        if (!good) {
            etcd_err_set (err, errlen, "etcd endpoint '%s' is not http://HOST:PORT", url);
            return AF_E_MALFORMED;
        }
        eps->count++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return AF_OK;
}

int
etcd_key_check (const char *key, char *err, size_t errlen)
{
    assert (key);
    size_t len = strnlen (key, AF_ETCD_MAX_KEY + 1);
    if (len == 0) {
        etcd_err_set (err, errlen, "empty etcd key");
        return AF_E_MALFORMED;
    }
    if (len > AF_ETCD_MAX_KEY) {
        etcd_err_set (err, errlen, "etcd key over %d bytes: %.40s...", AF_ETCD_MAX_KEY, key);
        return AF_E_TOO_BIG;
    }
    return AF_OK;
}

json_t *
etcd_json_bytes (const void *data, size_t size)
{
    size_t b64_size = sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = (char *) malloc (b64_size);
    assert (b64);
    sodium_bin2base64 (b64, b64_size, (const unsigned char *) (data? data: ""), size,
                       sodium_base64_VARIANT_ORIGINAL);
    json_t *string = json_string (b64);
    assert (string);
    free (b64);
    return string;
}

json_t *
etcd_json_int64 (int64_t number)
{
    char text [24];
    snprintf (text, sizeof text, "%" PRId64, number);
    json_t *string = json_string (text);
    assert (string);
    return string;
}

json_t *
etcd_json_prefix_end (const char *prefix)
{
    assert (prefix);
    size_t len = strlen (prefix);
    uint8_t end [AF_ETCD_MAX_KEY + 1];
    assert (len <= AF_ETCD_MAX_KEY);
    memcpy (end, prefix, len);
    while (len > 0 && end [len - 1] == 0xff)
        len--;
    if (len == 0) {
        end [0] = 0;                    //  "\0": every key from prefix on
        return etcd_json_bytes (end, 1);
    }
    end [len - 1]++;
    return etcd_json_bytes (end, len);
}

bool
etcd_int64 (json_t *obj, const char *name, int64_t *out)
{
    *out = 0;
    json_t *field = json_object_get (obj, name);
    if (!field)
        return true;
    if (!json_is_string (field))
        return false;
    const char *text = json_string_value (field);
    size_t len = json_string_length (field);
    if (len == 0 || len > 20 || strlen (text) != len)
        return false;
    const char *digits = text [0] == '-'? text + 1: text;
    if (!*digits || strspn (digits, "0123456789") != strlen (digits))
        return false;
    errno = 0;
    char *end;
    long long value = strtoll (text, &end, 10);
    if (errno || *end)
        return false;
    *out = (int64_t) value;
    return true;
}

bool
etcd_bool (json_t *obj, const char *name, bool *out)
{
    *out = false;
    json_t *field = json_object_get (obj, name);
    if (!field)
        return true;
    if (!json_is_boolean (field))
        return false;
    *out = json_is_true (field);
    return true;
}

void
etcd_arena_reserve (etcd_arena_t *arena, size_t text_size, size_t items)
{
    size_t need = text_size + 2 * items + 16;
    if (arena->size < need) {
        free (arena->data);
        arena->data = (uint8_t *) malloc (need);
        assert (arena->data);
        arena->size = need;
    }
    arena->used = 0;
}

void
etcd_arena_free (etcd_arena_t *arena)
{
    free (arena->data);
    arena->data = NULL;
    arena->size = arena->used = 0;
}

//  Decode the base64 bytes field name of obj into arena, NUL after them;
//  a missing field is empty. False if it is not a string of standard
//  base64 (protobuf's JSON also allows the URL-safe alphabet and no
//  padding; the gateway writes neither) or does not fit.
static bool
s_bytes (json_t *obj, const char *name, etcd_arena_t *arena, const uint8_t **data, size_t *size)
{
    *data = arena->data + arena->used;
    *size = 0;
    json_t *field = json_object_get (obj, name);
    if (field) {
        if (!json_is_string (field))
            return false;
        const char *b64 = json_string_value (field);
        size_t b64_len = json_string_length (field);
        size_t room = arena->size - arena->used;
        if (room < 1)
            return false;
        const char *b64_end;
        if (sodium_base642bin (arena->data + arena->used, room - 1, b64, b64_len, NULL, size, &b64_end,
                               sodium_base64_VARIANT_ORIGINAL) != 0
        ||  b64_end != b64 + b64_len)
            return false;
    }
    else
    if (arena->used >= arena->size)
        return false;
    arena->data [arena->used + *size] = 0;
    arena->used += *size + 1;
    return true;
}

int
etcd_kv_decode (json_t *kv, etcd_arena_t *arena, af_etcd_kv_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    const uint8_t *key;
    size_t key_size;
    if (!json_is_object (kv)) {
        etcd_err_append (err, errlen, "etcd sent a key that is not an object");
        return AF_E_INTERNAL;
    }
    if (!s_bytes (kv, "key", arena, &key, &key_size)
    ||  !s_bytes (kv, "value", arena, &out->value, &out->value_size)
    ||  !etcd_int64 (kv, "create_revision", &out->create_revision)
    ||  !etcd_int64 (kv, "mod_revision", &out->mod_revision)
    ||  !etcd_int64 (kv, "version", &out->version)
    ||  !etcd_int64 (kv, "lease", &out->lease)) {
        etcd_err_append (err, errlen, "etcd sent a key with a field that is not as documented");
        return AF_E_INTERNAL;
    }
    out->key = (const char *) key;
    if (key_size == 0 || key_size > AF_ETCD_MAX_KEY || strlen (out->key) != key_size) {
        etcd_err_append (err, errlen, "etcd sent a key that is empty, over %d bytes or holds a NUL: %.40s",
                         AF_ETCD_MAX_KEY, out->key);
        return AF_E_INTERNAL;
    }
    if (out->value_size > AF_ETCD_MAX_VALUE) {
        etcd_err_append (err, errlen, "etcd holds a value of %zu bytes at %s, over the %d we take",
                         out->value_size, out->key, AF_ETCD_MAX_VALUE);
        return AF_E_TOO_BIG;
    }
    return AF_OK;
}

int
etcd_header_revision (json_t *answer, int64_t *revision, char *err, size_t errlen)
{
    json_t *header = json_object_get (answer, "header");
    if (!json_is_object (header) || !etcd_int64 (header, "revision", revision) || *revision < 1) {
        etcd_err_append (err, errlen, "etcd's answer has no header revision");
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  The gRPC code and message of an error answer, if it is one: a call's
//  {"error": TEXT, "code": N, "message": TEXT}, or, once a stream has
//  begun (HTTP 200 sent), {"error": {"grpc_code": N, "message": TEXT}}
bool
etcd_grpc_error (json_t *answer, int *code, const char **message)
{
    json_t *error = json_object_get (answer, "error");
    json_t *number = json_object_get (answer, "code");
    json_t *text = json_object_get (answer, "message");
    if (json_is_object (error)) {
        number = json_object_get (error, "grpc_code");
        text = json_object_get (error, "message");
    }
    else
    if (!json_is_string (error))
        return false;
    if (!json_is_integer (number))
        return false;
    *code = (int) json_integer_value (number);
    *message = json_is_string (text)? json_string_value (text)
             : json_is_string (error)? json_string_value (error): "no message";
    return true;
}

//  Keepalive on every connection: a peer that vanished without a word
//  (a partition) is given up after idle + 3 probes
static int
s_sockopt (void *clientp, curl_socket_t fd, curlsocktype purpose)
{
    (void) clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKOPT_OK;
    int on = 1, seconds = AF_ETCD_KEEPALIVE_S, probes = 3;
    if (setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on)
    ||  setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &seconds, sizeof seconds)
    ||  setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &seconds, sizeof seconds)
    ||  setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes))
        return CURL_SOCKOPT_ERROR;
    return CURL_SOCKOPT_OK;
}

struct curl_slist *
etcd_curl_headers (void)
{
    //  No "Expect: 100-continue": libcurl would wait up to a second for it
    //  before sending a body over 1 KiB
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    assert (headers);
    struct curl_slist *more = curl_slist_append (headers, "Expect:");
    assert (more);
    return more;
}

void
etcd_curl_setup (CURL *curl, struct curl_slist *headers, char *errbuf)
{
    //  Setting a known option on a handle only fails for lack of memory
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http");
    rc |= curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt (curl, CURLOPT_POST, 1L);
    rc |= curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    rc |= curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    rc |= curl_easy_setopt (curl, CURLOPT_SOCKOPTFUNCTION, s_sockopt);
    rc |= curl_easy_setopt (curl, CURLOPT_TCP_NODELAY, 1L);
    assert (rc == CURLE_OK);
}

