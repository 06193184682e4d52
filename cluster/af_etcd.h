/*  =========================================================================
    af_etcd - a small client of etcd's v3 API, over its JSON gateway

    The broker cluster (issue 12) keeps shard ownership, leases and the
    shards' in-sync sets in etcd. This class is all the broker knows of
    etcd: get, range, put, delete, one transaction, leases, and a watch
    (af_etcd_watch_actor). It speaks etcd 3.4's grpc-gateway, not gRPC:
    POST http://HOST:PORT/v3/<service>/<method> with a JSON body, over
    HTTP/1.1 with libcurl, parsed with jansson. Only APIs etcd 3.4 has are
    used (3.3 served them under /v3beta, 3.2 under /v3alpha).

    The gateway's JSON is protobuf's JSON mapping, which has three traps
    this class hides: keys and values are bytes, so base64; int64 fields
    (revisions, lease IDs, TTLs) are JSON strings, since a lease ID does
    not fit a double; and a field at its zero value is left out, so a
    transaction that failed has no "succeeded", a PUT event no "type", a
    lease that is gone no "TTL", and a key that does not exist no "kvs".

    Blocking. Every call blocks its thread for up to timeout_ms in all,
    every endpoint tried included, and never longer: connect and total
    timeouts are set on each request, and libcurl uses no signals
    (CURLOPT_NOSIGNAL), so calls are safe in a threaded process. The
    broker calls it from its own cluster thread, never from the reactor.
    An af_etcd_t is used by one thread at a time (it holds one libcurl
    handle and one answer buffer); give each thread its own. The watch is
    an actor: its stream runs in the actor's thread, so the caller only
    reads its pipe.

    Endpoints. af_etcd_new takes a comma-separated list of etcd members.
    A call starts with the member that answered last and, when it cannot
    get an answer, goes on to the next while time is left; each member
    still to try gets its share of the time left to connect, and, if the
    request may go on, to answer (so a member that takes requests and
    never answers cannot use up the call). A request that
    never left this host (no connection) can always go on. One that may
    have reached a member (sent, then a timeout or a broken connection)
    goes on only if doing it twice is harmless: get, range, keepalive,
    time-to-live, revoke. Writes (put, delete, txn, grant) whose outcome
    is unknown fail with AF_E_UNAVAILABLE and say so: a claim repeated on
    another member would fail against the first attempt's own key. The
    caller reads back what happened.

    Return codes. Every function returning int returns one of these, with
    err (errlen bytes; err may be NULL) saying what failed; none returns
    -1. Which of them a function can return is listed with it.
      AF_OK             done
      AF_E_UNAVAILABLE  no answer: no endpoint could be reached or answered
                        within timeout_ms (err names each endpoint tried and
                        what failed, and "outcome unknown" when a write may
                        have been applied), or a member said it cannot serve
                        now (no leader, request timed out: gRPC codes 14, 4)
      AF_E_INTERNAL     etcd refused the request (err: etcd's message, e.g.
                        "etcdserver: requested lease not found" for a put or
                        txn under a lease that expired), or answered what its
                        API does not document (not JSON, a field of the
                        wrong type, bad base64, a key with a NUL byte)
      AF_E_TOO_BIG      a key, value or answer over its limit: a key over
                        AF_ETCD_MAX_KEY, a value over AF_ETCD_MAX_VALUE (one
                        we were given, or one etcd holds), an answer over
                        AF_ETCD_MAX_ANSWER bytes
      AF_E_MALFORMED    an argument out of range (an empty key, a TTL <= 0,
                        a range limit over AF_ETCD_MAX_RANGE, more than
                        AF_ETCD_MAX_TXN_OPS operations); nothing was sent
    NULL pointers where an object is required are programming errors and
    are asserted.

    Keys are C strings (1 to AF_ETCD_MAX_KEY bytes, no NUL inside: the
    cluster's keys are text); values are bytes (0 to AF_ETCD_MAX_VALUE).
    =========================================================================
*/
#ifndef AF_ETCD_H_INCLUDED
#define AF_ETCD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include "af_limits.h"

typedef struct _af_etcd_t af_etcd_t;

//  A key as etcd holds it (mvccpb.KeyValue). key and value point into the
//  client's answer buffer: they are valid until the next call on the same
//  af_etcd_t, as in LMDB. Both are NUL-terminated (value [value_size] is
//  0), so a text value can be used as a string.
typedef struct {
    const char *key;
    const uint8_t *value;
    size_t value_size;
    int64_t create_revision;            //  revision of the put that created it
    int64_t mod_revision;               //  revision of its last change
    int64_t version;                    //  changes since it was created (1 = new)
    int64_t lease;                      //  lease it is attached to, 0 for none
} af_etcd_kv_t;

//  ---------------------------------------------------------------------
//  Life cycle

//  A client of the etcd members in endpoints: "http://HOST:PORT" separated
//  by commas (at most AF_ETCD_MAX_ENDPOINTS, each at most
//  AF_ETCD_MAX_ENDPOINT bytes; a trailing '/' is dropped). No connection is
//  made here. Each later call blocks for at most timeout_ms (at least 1).
//  NULL with err if the list is empty, too long, or holds something that
//  is not such a URL (https is not supported: no TLS settings).
af_etcd_t *af_etcd_new (const char *endpoints, int timeout_ms, char *err, size_t errlen);

//  Close the connection, free. Sets *self_p to NULL.
void af_etcd_destroy (af_etcd_t **self_p);

//  The endpoint the next call tries first: the one that answered last.
const char *af_etcd_endpoint (af_etcd_t *self);

//  ---------------------------------------------------------------------
//  Keys. revision, when not NULL, is set to the store's revision in the
//  answer's header: after a write, it is the mod_revision of every key it
//  changed (etcd gives all changes of one request the same revision).

//  Read key. *found tells whether it exists; if so, *kv is filled (valid
//  until the next call). AF_OK, AF_E_UNAVAILABLE, AF_E_INTERNAL,
//  AF_E_TOO_BIG (etcd holds a value over AF_ETCD_MAX_VALUE),
//  AF_E_MALFORMED.
int af_etcd_get (af_etcd_t *self, const char *key, af_etcd_kv_t *kv, bool *found, int64_t *revision,
                 char *err, size_t errlen);

//  Read the keys starting with prefix (not empty), in key order, at most
//  limit of them (1 to AF_ETCD_MAX_RANGE). *kvs_p is set to an array of
//  *count keys (valid until the next call); *more (may be NULL) tells
//  whether keys past limit remain: read them with a longer prefix or a
//  new range after the last key. The header revision is the snapshot the
//  answer was read at: a watch from *revision + 1 misses nothing since.
//  AF_OK, AF_E_UNAVAILABLE, AF_E_INTERNAL, AF_E_TOO_BIG, AF_E_MALFORMED.
int af_etcd_range (af_etcd_t *self, const char *prefix, size_t limit, const af_etcd_kv_t **kvs_p,
                   size_t *count, bool *more, int64_t *revision, char *err, size_t errlen);

//  Set key to the value_size bytes at value (value may be NULL when
//  value_size is 0), attached to lease (0: none). A lease that no longer
//  exists makes etcd refuse the put (AF_E_INTERNAL, "lease not found").
//  AF_OK, AF_E_UNAVAILABLE (also: sent, outcome unknown), AF_E_INTERNAL,
//  AF_E_TOO_BIG, AF_E_MALFORMED.
int af_etcd_put (af_etcd_t *self, const char *key, const void *value, size_t value_size, int64_t lease,
                 int64_t *revision, char *err, size_t errlen);

//  Delete key, or with prefix every key starting with it (key not
//  empty). *deleted (may be NULL): how many keys went. AF_OK,
//  AF_E_UNAVAILABLE (also: outcome unknown), AF_E_INTERNAL, AF_E_TOO_BIG,
//  AF_E_MALFORMED.
int af_etcd_delete (af_etcd_t *self, const char *key, bool prefix, int64_t *deleted, int64_t *revision,
                    char *err, size_t errlen);

//  ---------------------------------------------------------------------
//  Transactions: if every compare holds, do the success operations, else
//  the failure ones, atomically. A compare is an equality; etcd reads a
//  key that does not exist as create_revision 0, mod_revision 0, version
//  0, so "K does not exist" is AF_ETCD_CREATE_REVISION equal to 0. etcd
//  refuses a transaction that changes one key twice.

typedef enum {
    AF_ETCD_CREATE_REVISION,            //  the key's create_revision equals number
    AF_ETCD_MOD_REVISION,               //  its mod_revision equals number
    AF_ETCD_VERSION,                    //  its version equals number
    AF_ETCD_VALUE                       //  its value is the value_size bytes at value
} af_etcd_target_t;

typedef struct {
    af_etcd_target_t target;
    const char *key;
    int64_t number;
    const void *value;
    size_t value_size;
} af_etcd_compare_t;

typedef enum {
    AF_ETCD_PUT,                        //  set key to value, under lease (0: none)
    AF_ETCD_DELETE,                     //  delete key
    AF_ETCD_DELETE_PREFIX               //  delete every key starting with key
} af_etcd_op_type_t;

typedef struct {
    af_etcd_op_type_t type;
    const char *key;
    const void *value;
    size_t value_size;
    int64_t lease;
} af_etcd_op_t;

typedef struct {
    const af_etcd_compare_t *compares;  //  all must hold (none: always true)
    size_t compare_count;
    const af_etcd_op_t *success;        //  done if they hold
    size_t success_count;
    const af_etcd_op_t *failure;        //  done if one does not
    size_t failure_count;
} af_etcd_txn_t;

//  Run txn (each list at most AF_ETCD_MAX_TXN_OPS). *succeeded tells
//  which branch ran. *revision (may be NULL) is the header revision: if
//  the branch that ran changed keys, it is their new mod_revision, so the
//  revision of an ownership key just claimed is its fencing epoch; if it
//  changed nothing, it is the store's current revision. AF_OK,
//  AF_E_UNAVAILABLE (never retried on another member after it was sent:
//  outcome unknown), AF_E_INTERNAL, AF_E_TOO_BIG, AF_E_MALFORMED.
int af_etcd_txn (af_etcd_t *self, const af_etcd_txn_t *txn, bool *succeeded, int64_t *revision,
                 char *err, size_t errlen);

//  The three transactions the cluster is built from, over af_etcd_txn
//  and with its return codes. Each sets *done (claimed, swapped,
//  deleted) and *revision as af_etcd_txn sets *succeeded and *revision.
//
//  Claim: create key with value under lease if it does not exist
//  (create_revision = 0). When *done, *revision is the key's mod_revision
//  and create_revision: the claim's epoch. When not, someone holds it:
//  af_etcd_get says who.
int af_etcd_claim (af_etcd_t *self, const char *key, const void *value, size_t value_size, int64_t lease,
                   bool *done, int64_t *revision, char *err, size_t errlen);

//  Compare-and-swap: replace key's value (under lease) if its mod_revision
//  is still mod_revision, i.e. nobody changed it since it was read.
int af_etcd_swap (af_etcd_t *self, const char *key, int64_t mod_revision, const void *value,
                  size_t value_size, int64_t lease, bool *done, int64_t *revision, char *err, size_t errlen);

//  Delete key if its value is still the value_size bytes at value (it is
//  mine): releasing an ownership without taking a successor's.
int af_etcd_delete_if (af_etcd_t *self, const char *key, const void *value, size_t value_size,
                       bool *done, int64_t *revision, char *err, size_t errlen);

//  ---------------------------------------------------------------------
//  Leases. A lease lives ttl seconds unless kept alive; when it expires or
//  is revoked, etcd deletes every key attached to it. etcd grants at
//  least its minimum TTL (1.5 election timeouts: 2 s with its defaults).

//  Grant a lease of ttl_s seconds (1 to AF_ETCD_MAX_TTL_S). *id is its ID
//  (never 0), *granted_ttl (may be NULL) the TTL etcd granted. AF_OK,
//  AF_E_UNAVAILABLE (also: outcome unknown; an unused lease expires by
//  itself), AF_E_INTERNAL, AF_E_MALFORMED.
int af_etcd_lease_grant (af_etcd_t *self, int64_t ttl_s, int64_t *id, int64_t *granted_ttl,
                         char *err, size_t errlen);

//  Keep lease id alive once: one request on /v3/lease/keepalive, its first
//  answer read. *ttl is the TTL it has again (its granted TTL), or 0 if
//  the lease is gone (expired or revoked): the keys under it are gone too,
//  and a holder must stop acting on them. AF_OK (check *ttl),
//  AF_E_UNAVAILABLE, AF_E_INTERNAL.
int af_etcd_lease_keepalive (af_etcd_t *self, int64_t id, int64_t *ttl, char *err, size_t errlen);

//  Revoke lease id: it and its keys are gone at once. A lease that is
//  already gone is not an error. AF_OK, AF_E_UNAVAILABLE, AF_E_INTERNAL.
int af_etcd_lease_revoke (af_etcd_t *self, int64_t id, char *err, size_t errlen);

//  How long lease id has left. *found tells whether it exists; if so,
//  *ttl (seconds left, rounded down: 0 in its last second) and
//  *granted_ttl (either may be NULL) are set. AF_OK, AF_E_UNAVAILABLE,
//  AF_E_INTERNAL.
int af_etcd_lease_ttl (af_etcd_t *self, int64_t id, bool *found, int64_t *ttl, int64_t *granted_ttl,
                       char *err, size_t errlen);

//  ---------------------------------------------------------------------
//  Watch: etcd's /v3/watch is a stream of JSON lines on one POST that
//  never ends. af_etcd_watch_actor holds it in the actor's thread:
//
//      af_etcd_watch_t args = { endpoints, "/appferry/shards/", true, rev + 1, 2000 };
//      zactor_t *watch = zactor_new (af_etcd_watch_actor, &args);
//
//  args is copied before zactor_new returns, which it does at once: the
//  stream is opened afterwards, in the actor. Each message on the pipe is
//  four frames, read with zsock_recv (watch, AF_ETCD_WATCH_PICTURE, &type,
//  &key, &key_size, &value, &value_size, &revision) (char *, byte *,
//  size_t, byte *, size_t, uint64_t; free type, key and value):
//
//      "CREATED" ""  ""      rev   the watch is in place; rev is the store's
//                                  revision then (events may follow from
//                                  before it, when start_revision is older)
//      "PUT"     key value   rev   key was set; rev is its mod_revision
//      "DELETE"  key ""      rev   key was deleted (or its lease ended) at rev
//      "LOST"    ""  reason  rev   the stream is gone, or could not be made
//                                  (reason says why, naming the endpoint);
//                                  rev is the last revision whose events all
//                                  came (start_revision - 1 if none did).
//                                  Nothing follows: the caller reads again
//                                  with af_etcd_range and starts a new
//                                  watch from its revision + 1 (a watch
//                                  from rev + 1 also misses nothing unless
//                                  etcd has compacted past it, which makes
//                                  it LOST again, "compacted")
//
//  Events come in revision order, each once. The actor opens the stream on
//  the first endpoint that answers (trying each in turn, each for up to
//  timeout_ms until etcd says the watch is created) and does not reopen
//  it: after LOST it only waits for $TERM. A stream that breaks (etcd
//  stopped, killed, or its connection reset) is noticed at once; a silent
//  peer (a network partition) by TCP keepalive within about
//  4 * AF_ETCD_KEEPALIVE_S; a frozen etcd (SIGSTOP) keeps its connection
//  and is not noticed: the caller's lease keepalives are what tell. A
//  caller that does not read makes the actor hold about
//  AF_ETCD_WATCH_QUEUE events (beyond what the pipe holds; one message
//  of the stream more at most) and then pause the stream (etcd keeps the
//  rest), so no event is dropped. $TERM stops it at once, whatever the
//  stream is doing (zactor_destroy).

#define AF_ETCD_WATCH_PICTURE   "sbb8"

typedef struct {
    const char *endpoints;              //  as af_etcd_new's
    const char *key;                    //  the key, or the prefix (not empty)
    bool prefix;                        //  watch every key starting with key
    int64_t start_revision;             //  first revision to report; 0: from now
    int timeout_ms;                     //  to connect and see the watch created
} af_etcd_watch_t;

//  The actor (see above); args is an af_etcd_watch_t *.
void af_etcd_watch_actor (zsock_t *pipe, void *args);

//  ---------------------------------------------------------------------
//  Self test: starts a real etcd (the etcd binary, Debian's etcd-server)
//  on free loopback ports in a temporary directory, and fails if there is
//  none.
void af_etcd_test (bool verbose);

#endif
