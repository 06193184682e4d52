/*  =========================================================================
    etcd_int.h - what af_etcd.c (the calls) and etcd_watch.c (the watch
    actor) share: endpoint lists, the JSON mapping of etcd's messages
    (base64 bytes, int64 as strings, zero values left out), libcurl setup

    Not part of the interface: only the cluster library's files include it.
    =========================================================================
*/
#ifndef ETCD_INT_H_INCLUDED
#define ETCD_INT_H_INCLUDED

#include "af_etcd.h"
#include <curl/curl.h>
#include <jansson.h>

//  libcurl 7.84 made curl_global_init thread-safe (we call it per client
//  and per watch, from any thread); 7.85 has CURLOPT_PROTOCOLS_STR, 7.68
//  curl_multi_poll. Debian 12 has 7.88.
#if LIBCURL_VERSION_NUM < 0x075500
#   error "af_etcd needs libcurl 7.85 or later"
#endif

//  An endpoint list, parsed
typedef struct {
    char url [AF_ETCD_MAX_ENDPOINTS][AF_ETCD_MAX_ENDPOINT + 1];
    size_t count;
} etcd_endpoints_t;

//  Parse a comma-separated list of http://HOST:PORT. AF_OK, or
//  AF_E_MALFORMED with err.
int etcd_endpoints_parse (etcd_endpoints_t *eps, const char *list, char *err, size_t errlen);

//  A key we are given: 1 to AF_ETCD_MAX_KEY bytes. AF_OK, AF_E_MALFORMED
//  (empty) or AF_E_TOO_BIG, with err.
int etcd_key_check (const char *key, char *err, size_t errlen);

//  JSON values of a request: bytes as base64, an int64 as a string, the
//  range_end that makes key a prefix (key with its last byte below 0xff
//  incremented and the rest cut; "\0", every key from key on, if all are
//  0xff). Never NULL (allocation failure is asserted).
json_t *etcd_json_bytes (const void *data, size_t size);
json_t *etcd_json_int64 (int64_t number);
json_t *etcd_json_prefix_end (const char *prefix);

//  Set *out from the int64 field name of obj: a decimal string, 0 when the
//  field is missing (its zero value). False if it is there but not such a
//  string.
bool etcd_int64 (json_t *obj, const char *name, int64_t *out);

//  Set *out from the bool field name of obj (false when missing). False if
//  it is there but not a boolean.
bool etcd_bool (json_t *obj, const char *name, bool *out);

//  Where decoded keys and values go: one block, big enough for every
//  decoded byte of the text they came from (base64 shrinks), plus a NUL
//  after each
typedef struct {
    uint8_t *data;
    size_t size, used;
} etcd_arena_t;

//  Make arena hold the bytes decoded from an answer of text_size bytes
//  with at most items keys (grown, never shrunk; emptied)
void etcd_arena_reserve (etcd_arena_t *arena, size_t text_size, size_t items);
void etcd_arena_free (etcd_arena_t *arena);

//  Decode the mvccpb.KeyValue kv into *out, its key and value in arena.
//  AF_OK; AF_E_INTERNAL (not an object, a bad field, a key that is empty,
//  over AF_ETCD_MAX_KEY or holds a NUL) or AF_E_TOO_BIG (a value over
//  AF_ETCD_MAX_VALUE), with err.
int etcd_kv_decode (json_t *kv, etcd_arena_t *arena, af_etcd_kv_t *out, char *err, size_t errlen);

//  The header revision of an answer: AF_OK, or AF_E_INTERNAL with err if
//  it has no header with a revision >= 1 (every etcd answer has one).
int etcd_header_revision (json_t *answer, int64_t *revision, char *err, size_t errlen);

//  True if answer is etcd's error, with its gRPC code and message: a
//  call's {"error", "code", "message"} or a stream's {"error": {"grpc_code",
//  "message"}} (message points into answer)
bool etcd_grpc_error (json_t *answer, int *code, const char **message);

//  The options every request of ours has: no signals, http only, no
//  redirects, JSON, no "Expect: 100-continue" wait, TCP keepalive of
//  AF_ETCD_KEEPALIVE_S. headers is the list to set (the caller frees it
//  with curl_slist_free_all after the handle).
void etcd_curl_setup (CURL *curl, struct curl_slist *headers, char *errbuf);
struct curl_slist *etcd_curl_headers (void);

//  Set err (errlen bytes; nothing if err is NULL) printf-style
void etcd_err_set (char *err, size_t errlen, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Append printf-style text to err (errlen bytes), "; " first if err is
//  not empty; nothing if err is NULL.
void etcd_err_append (char *err, size_t errlen, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
