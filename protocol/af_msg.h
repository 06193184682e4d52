/*  =========================================================================
    af_msg - the appferry wire protocol codec (protocol/SPEC.md)

    Every message is one ZeroMQ frame holding one msgpack map: the envelope
    keys "v" (protocol version), "cmd" (command name) and "rid" (16-byte
    request ID, echoed in replies) plus the command's own fields. One
    struct carries every command's fields, zproto-style; a table per
    command says which fields it has, their types, limits and whether they
    are required, and both the encoder and the decoder are driven by it,
    so the two cannot disagree.

    Decoding is strict and bounded: the frame size is checked, then a
    pre-scan walks the raw bytes checking every declared length against
    the bytes that remain, the nesting depth and the element count, before
    msgpack-c builds any object; only then are fields converted, with type
    and range checks. Any valid msgpack encoding of a value is accepted
    (a small number in a uint64, a short string in str32). A malformed
    message yields an error code and a reason naming the problem.
    =========================================================================
*/
#ifndef AF_MSG_H_INCLUDED
#define AF_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include "af_limits.h"
#include "af_device.h"
#include "af_package.h"

//  Bounded string copy into a fixed field; always terminates. The hot
//  paths (diffs, the matcher's answers) copy thousands of short strings
//  per request, where snprintf's format parsing cost a quarter of the time.
static inline void
af_strcopy (char *dest, size_t size, const char *src)
{
    size_t len = strnlen (src, size - 1);
    memcpy (dest, src, len);
    dest [len] = 0;
}

typedef enum {
    AF_MSG_NONE = 0,
    AF_MSG_REGISTER,        //  N->B  create an account
    AF_MSG_LOGIN,           //  N->B  open a session for this device
    AF_MSG_LOGIN_OK,        //  B->N  session open; device ID assigned
    AF_MSG_LOGOUT,          //  N->B  close the session
    AF_MSG_DEVICES,         //  N->B  ask for the account's device list
    AF_MSG_DEVICE_LIST,     //  B->N  the account's devices (reply or pushed)
    AF_MSG_RESOLVE,         //  N->B, B->W  which package fits this device
    AF_MSG_RESOLVED,        //  W->B, B->N  the answer
    AF_MSG_PING,            //  N->B, W->B  heartbeat
    AF_MSG_PONG,            //  B->N, B->W  heartbeat answer
    AF_MSG_OK,              //  B->N  success with nothing to say
    AF_MSG_ERROR,           //  any   failure: code + reason
    AF_MSG_READY,           //  W->B  worker offers a service
    AF_MSG_DISCONNECT,      //  B->W, W->B  going away
    AF_MSG_NOTIFY,          //  N->B->N  a notification to another device
    AF_MSG_PUSH,            //  N->B  send a program to devices of the account
    AF_MSG_PUSH_ACCEPTED,   //  B->N  the push ID and each target's first state
    AF_MSG_ITEM,            //  B->N  one durable outbox item (OFFER, RESULT)
    AF_MSG_ACK,             //  N->B  an outbox item is done with
    AF_MSG_OFFER,           //  (in ITEM) a package to install, for a target
    AF_MSG_RESULT,          //  (in ITEM) a target's final state, for the initiator
    AF_MSG_FETCH,           //  N->B  stream a blob from an offset
    AF_MSG_CHUNK,           //  B->N  one piece of a blob
    AF_MSG_CREDIT,          //  N->B  room for more chunks
    AF_MSG_DONE,            //  N->B  a target's outcome for a push
    AF_MSG_PROGRESS,        //  B->N  bytes sent to a target, for the initiator
    AF_MSG_UPLOAD,          //  N->B  store a blob (a push's user data) on the broker
    AF_MSG_REPORT,          //  N->B  one install or uninstall on this device
    AF_MSG_LIST,            //  N->B  this device's whole install list
    AF_MSG_APPS,            //  N->B  ask for one device's install list
    AF_MSG_APP_LIST,        //  B->N  a device's install list
    AF_MSG_SYNC,            //  N->B  what do the others have that I lack
    AF_MSG_SYNC_DIFF,       //  B->N  the answer
    AF_MSG_UNINSTALL,       //  N->B  uninstall on other devices; (in ITEM) do it
    AF_MSG_CONFIG_PUT,      //  N->B  an app's encrypted configuration
    AF_MSG_CONFIG_GET,      //  N->B  ask for it
    AF_MSG_CONFIG,          //  B->N  the answer
    AF_MSG_DEVICE_REMOVE,   //  N->B  remove another device of the account, revoking its key
    AF_MSG_CONTACTS_EVAL,   //  N->B, B->W  blinded contact numbers to evaluate (OPRF)
    AF_MSG_CONTACTS_EVALUATED,  //  W->B, B->N  the evaluated elements, in the same order
    AF_MSG_REDIRECT,        //  B->N  the account's shard is owned by another broker: go there
    AF_MSG_REPL,            //  B->B  a shard's log entries, owner to follower
    AF_MSG_REPL_ACK,        //  B->B  the follower has them, up to seq
    AF_MSG_PAY_INTENT,      //  B->W  a paid program is asked for: entitled, or a payment notice
    AF_MSG_PAYMENT_REQUIRED,//  W->B, B->N  the payment notice: program, price, currency, intent
    AF_MSG_PAY_CONFIRM,     //  N->B, B->W  the user confirms an intent with a payment token
    AF_MSG_PAID,            //  W->B  the intent is paid (now or before), or the account is entitled
    AF_MSG_PURCHASES,       //  N->B, B->W  the account's entitlements
    AF_MSG_PURCHASE_LIST,   //  W->B, B->N  the answer
    AF_MSG_GET,             //  N->B  install a program another device of the account has
    AF_MSG_BROWSE,          //  N->B  what another device has, with fit and price for me
    //  Friends (issue 13, SPEC 5.38-5.45)
    AF_MSG_CONTACTS_PUT,    //  N->B  contact tokens: the account's book, or its own number
    AF_MSG_FRIENDS,         //  N->B  which of my contacts are friends
    AF_MSG_FRIEND_LIST,     //  B->N  their tokens
    AF_MSG_BLOCK,           //  N->B  block (or unblock) a contact
    AF_MSG_SHARE,           //  N->B  an app's visibility for friends and others
    AF_MSG_SHARES,          //  N->B  ask for the account's visibilities
    AF_MSG_SHARE_LIST,      //  B->N  the answer
    AF_MSG_FRIEND_APPS,     //  N->B  a contact's shared apps (pull)
    AF_MSG_FRIEND_APP_LIST, //  B->N  the answer
    AF_MSG_RECOMMEND,       //  N->B  send a contact my share info for an app (push)
    AF_MSG_RECOMMENDATION,  //  (in ITEM) a contact's recommendation, for the receiver
    AF_MSG_REFUSE,          //  N->B  refuse recommendations from all, or a contact
    AF_MSG_FRIEND_INSTALL,  //  N->B  install a contact's shared app on this device
    //  Backups (issue 15, SPEC 5.48-5.50)
    AF_MSG_BACKUP_PUT,      //  N->B  back up an app: identity, version, sealed configuration
    AF_MSG_BACKUPS,         //  N->B  list the account's backups
    AF_MSG_BACKUP_GET,      //  N->B  one backup, with its configuration
    AF_MSG_BACKUP_LIST,     //  B->N  the answer to both
    AF_MSG_RESTORE,         //  N->B  install a backed-up app on this device
    //  Between brokers (SPEC 5.37)
    AF_MSG_FORWARD,         //  B->B  a request about another shard, to its owner
    AF_MSG_FORWARD_REPLY,   //  B->B  the owner's answer (rid: the FORWARD's)
    AF_MSG_SNAPSHOT,        //  B->B  a part of a copy of a shard, owner to a follower lacking trimmed entries
    AF_MSG_SNAPSHOT_ACK,    //  B->B  the follower has that part
    //  The source's install record after a GET (SPEC 5.47a)
    AF_MSG_RECORD_PUT,      //  N->B  the source answers an ask: its install record, or why not
    AF_MSG_RECORD,          //  (in ITEM) the source's record for the asker, or why none comes
    AF_MSG_COUNT
} af_msg_id_t;

//  One app of an install list or a sync diff
typedef struct {
    char program [AF_MAX_PROGRAM + 1];
    char version_name [AF_MAX_VERSION_NAME + 1];
    uint64_t version_code;
    char hash [AF_HASH_HEX + 1];                //  the installed package's hash
    uint64_t at;                                //  installed, ms since the epoch
    char device_id [AF_ID_HEX + 1];             //  SYNC_DIFF: a device that has it
    uint32_t fit;                               //  SYNC_DIFF: af_fit_t for the asker
    char fit_version [AF_MAX_VERSION_NAME + 1]; //  SYNC_DIFF: what would install there
    char reason [AF_MAX_REASON + 1];            //  SYNC_DIFF: why nothing fits
    uint32_t price;                             //  BROWSE: the package's price for the asker
    char currency [AF_CURRENCY + 1];            //  ... and its currency
    bool entitled;                              //  BROWSE: the account paid for it already
    char share [AF_MAX_STATE + 1];              //  SHARE_LIST, FRIEND_APP_LIST: its visibility
} af_app_t;

//  A device that has a program (grouped SYNC_DIFF)
typedef struct {
    uint32_t device;                            //  index into the message's devices
    char version_name [AF_MAX_VERSION_NAME + 1];
} af_holder_t;

//  One program of a grouped SYNC_DIFF: its fit for the asker, and the
//  devices that have it; one that no device has now has none, and had
//  the version the account had
typedef struct {
    char program [AF_MAX_PROGRAM + 1];
    uint32_t fit;                               //  af_fit_t for the asker
    char fit_version [AF_MAX_VERSION_NAME + 1]; //  what would install there
    char reason [AF_MAX_REASON + 1];            //  why nothing fits
    char had [AF_MAX_VERSION_NAME + 1];         //  no holder: the version it was
    uint32_t holder_count;
    af_holder_t *holders;                       //  owned
    bool has_on;                                //  decoded: 'on' was there
} af_prog_t;

//  One entitlement of an account (PURCHASE_LIST)
typedef struct {
    char program [AF_MAX_PROGRAM + 1];
    uint32_t price;                             //  minor units paid
    char currency [AF_CURRENCY + 1];
    char intent [AF_ID_HEX + 1];                //  the intent it was paid under
    uint64_t at;                                //  when, ms since the epoch
} af_purchase_t;
//  One backup of an app (S4.1): what identifies it, its version, who
//  made it; the configuration travels beside it (the message's data)
typedef struct {
    char program [AF_MAX_PROGRAM + 1];
    char name [AF_MAX_DISPLAY + 1];             //  display name
    char publisher [AF_MAX_DISPLAY + 1];
    char key_id [AF_KEY_ID_HEX + 1];            //  the publisher key that signed the package
    char platform [AF_MAX_PLATFORM + 1];        //  of the device backed up
    char version_name [AF_MAX_VERSION_NAME + 1];
    uint64_t version_code;
    char hash [AF_HASH_HEX + 1];                //  the package installed there
    uint64_t at;                                //  backed up, ms (the broker's clock)
    char device_id [AF_ID_HEX + 1];             //  the device backed up (the broker's word)
    uint32_t config_size;                       //  bytes of the sealed configuration, 0: none
    char backup_id [AF_ID_HEX + 1];             //  chosen by the device that backed up
    uint64_t created;                           //  ms, that device's clock
    char config_hash [AF_HASH_HEX + 1];         //  BLAKE2b-256 of the sealed configuration, "" if none
    char mac [AF_HASH_HEX + 1];                 //  keyed from the account secret (SPEC 5.48)
} af_backup_t;

//  One target of a push, as PUSH_ACCEPTED lists them
typedef struct {
    char device_id [AF_ID_HEX + 1];
    char name [AF_MAX_NAME + 1];                //  device name, for people
    char state [AF_MAX_STATE + 1];              //  see protocol/SPEC.md "Push"
    char version_name [AF_MAX_VERSION_NAME + 1];
    char reason [AF_MAX_REASON + 1];
    uint32_t code;                              //  refused, failed: an error code (402, 503) or 0
} af_target_t;

typedef struct {
    af_msg_id_t id;
    uint32_t version;                       //  "v"; set to AF_PROTO_VERSION by new
    bool has_rid;
    uint8_t rid [AF_ID_SIZE];               //  "rid"
    char account [AF_MAX_ACCOUNT + 1];
    char password [AF_MAX_PASSWORD + 1];
    char device_id [AF_ID_HEX + 1];
    char source_account [AF_MAX_ACCOUNT + 1];  //  PAY_INTENT, PAYMENT_REQUIRED, PAID: a friend's ("" own)
    bool has_device;
    af_device_t device;
    uint32_t device_count;
    af_device_t *devices;                   //  owned; DEVICE_LIST
    char program [AF_MAX_PROGRAM + 1];
    uint32_t fit;                           //  af_fit_t
    bool has_package;
    af_package_t package;
    char reason [AF_MAX_REASON + 1];
    uint32_t code;                          //  af_code_t
    uint32_t version_count;
    uint32_t versions [4];                  //  ERROR on E_VERSION
    char service [AF_MAX_NAME + 1];
    uint32_t credit;                        //  READY: concurrent requests
    uint32_t heartbeat;                     //  LOGIN_OK, READY: interval in ms
    uint32_t liveness;                      //  LOGIN_OK: missed intervals before the broker gives up
    bool logged_in;                         //  PONG: this connection has a session
    char kind [AF_MAX_KIND + 1];            //  NOTIFY: label ("text", ...)
    uint32_t body_size;
    uint8_t *body;                          //  owned; NOTIFY payload, ITEM message, OFFER meta
    char push_id [AF_ID_HEX + 1];           //  "push"
    char item [AF_ID_HEX + 1];              //  ITEM, ACK
    uint32_t target_count;
    char (*targets) [AF_ID_HEX + 1];        //  owned; PUSH, UNINSTALL: device IDs or "all"
    bool with_data;                         //  PUSH: it carries user data (informational); GET,
                                            //  PAY_CONFIRM, NOTIFY (in ITEM): the app's user data too
    char node_version [AF_MAX_VERSION_NAME + 1];
    uint32_t attest_count;
    char (*attest) [AF_MAX_ATTEST_LEN + 1]; //  owned; PUSH: "name=value"
    uint64_t attest_time;                   //  PUSH: when the values were measured, ms
    uint32_t result_count;
    af_target_t *results;                   //  owned; PUSH_ACCEPTED
    char state [AF_MAX_STATE + 1];          //  RESULT, DONE
    char version_name [AF_MAX_VERSION_NAME + 1];
    char from [AF_ID_HEX + 1];              //  OFFER: the initiating device
    char hash [AF_HASH_HEX + 1];            //  FETCH, CHUNK, CREDIT: the blob
    uint64_t offset;                        //  FETCH, CHUNK, PROGRESS
    uint64_t total;                         //  CHUNK, PROGRESS: blob size
    uint32_t size;                          //  CHUNK: raw bytes
    bool zstd;                              //  CHUNK: data is zstd-compressed
    uint32_t data_size;
    uint8_t *data;                          //  owned; CHUNK; RECORD_PUT, RECORD: the record (JSON text)
    uint32_t files;                         //  DONE: files written
    char data_hash [AF_HASH_HEX + 1];       //  PUSH, OFFER: the user data blob
    uint64_t data_total;                    //  PUSH, OFFER: its size
    uint64_t seq;                           //  REPORT, LIST: the device's own counter
    uint64_t report_seq;                    //  LOGIN_OK: last report the broker applied
    bool send_list;                         //  LOGIN_OK: send your whole list now
    char op [AF_MAX_OP + 1];                //  REPORT
    uint64_t version_code;                  //  REPORT
    uint64_t at;                            //  REPORT
    uint32_t app_count;
    af_app_t *apps;                         //  owned; LIST, APP_LIST, SYNC_DIFF
    bool truncated;                         //  SYNC_DIFF: more than AF_MAX_DIFF
    bool grouped;                           //  SYNC: answer grouped by program
    uint32_t prog_count;
    af_prog_t *progs;                       //  owned (their holders too); grouped SYNC_DIFF
    uint64_t prev_at;                       //  CONFIG: the previous version's time
    bool previous;                          //  CONFIG_GET, CONFIG: the previous version
    uint32_t element_count;
    uint8_t (*elements) [AF_OPRF_ELEMENT_SIZE]; //  owned; CONTACTS_EVAL, CONTACTS_EVALUATED
    char key_id [AF_OPRF_KEY_ID_HEX + 1];   //  CONTACTS_EVALUATED: the key's fingerprint
    uint32_t shard;                         //  REDIRECT, REPL, REPL_ACK, SNAPSHOT(_ACK), FORWARD
    uint32_t part;                          //  SNAPSHOT, SNAPSHOT_ACK: the part's number
    bool last;                              //  SNAPSHOT: the last part
    uint64_t epoch;                         //  REDIRECT, REPL, REPL_ACK, FORWARD(_REPLY): the owner's fencing token
    uint64_t prev_epoch;                    //  REPL: the epoch of the owner's entry seq - 1 (0: none)
    bool matched;                           //  REPL_ACK: the follower's log up to seq agrees with the owner's
    bool diverged;                          //  REPL_ACK: it does not (prevEpoch differs): nothing applied
    bool yes;                               //  FORWARD_REPLY: friends (op friends), refused (op recommend)
    char endpoint [AF_MAX_ENDPOINT + 1];    //  REDIRECT: the owner's nodes endpoint ("" = none now);
                                            //  LOGIN_OK: "standby", the broker that would take over
    char intent [AF_ID_HEX + 1];            //  PAYMENT_REQUIRED, PAY_CONFIRM, PAID: the payment intent
    char ask [AF_ID_HEX + 1];               //  NOTIFY (in ITEM), RECORD_PUT, RECORD: a GET's ask;
                                            //  PUSH, OFFER: the ask whose user data it carries
    char token [AF_MAX_PAY_TOKEN + 1];      //  PAY_CONFIRM: the payment token
    uint32_t price;                         //  PAY_INTENT, PAYMENT_REQUIRED, PAID: minor units
    char currency [AF_CURRENCY + 1];        //  ... its ISO 4217 code
    bool entitled;                          //  PAID: paid before, nothing charged now
    uint64_t expires;                       //  PAYMENT_REQUIRED: confirm before this (ms)
    uint32_t purchase_count;
    af_purchase_t *purchases;               //  owned; PURCHASE_LIST
    uint32_t backup_count;
    af_backup_t *backups;                   //  owned; BACKUP_PUT, BACKUP_LIST
    bool latest;                            //  RESTORE: the newest package, not the backed-up version
    bool recommend;                         //  RESOLVE, RESTORE: recommend another program on a no-fit
    bool has_alternative;
    af_package_t alternative;               //  RESOLVED: the recommended program's package
} af_msg_t;

//  Create a message of the given command, version AF_PROTO_VERSION.
af_msg_t *af_msg_new (af_msg_id_t id);

//  Destroy a message and what it owns; sets *self_p to NULL.
void af_msg_destroy (af_msg_t **self_p);

//  Command name ("LOGIN") for an ID, or "?" for none.
const char *af_msg_command_name (af_msg_id_t id);

//  Set a fresh random request ID.
void af_msg_set_rid_random (af_msg_t *self);

//  Copy size bytes into self->body. 0, or -1 over AF_MAX_BODY (asserts on OOM).
int af_msg_set_body (af_msg_t *self, const void *data, size_t size);

//  Add a target (a device ID, "all" or "self") to a PUSH or UNINSTALL, or
//  an attestation ("name=value") to a PUSH; at most AF_MAX_TARGETS and
//  AF_MAX_ATTEST (asserted: bound what you add). Copies at most the
//  field's length.
void af_msg_add_target (af_msg_t *self, const char *target);
void af_msg_add_attest (af_msg_t *self, const char *attest);

//  Allocate room for count apps in self->apps (asserts on OOM, as czmq does:
//  these cannot fail, so callers need not check).
void af_msg_set_app_count (af_msg_t *self, uint32_t count);

//  Room for count programs in a grouped SYNC_DIFF, and for count holders
//  of one of them; asserts on OOM.
void af_msg_set_prog_count (af_msg_t *self, uint32_t count);
void af_prog_set_holder_count (af_prog_t *prog, uint32_t count);

//  Turn a grouped SYNC_DIFF into the flat form: one app entry per (device,
//  program), device IDs from the message's device table, and one with no
//  device per program no device has now.
void af_msg_ungroup (af_msg_t *self);

//  Room for count OPRF elements in self->elements, zeroed (asserts on
//  OOM). The codec takes 1..AF_MAX_CONTACTS_EVAL of them.
void af_msg_set_element_count (af_msg_t *self, uint32_t count);

//  Room for count entitlements in self->purchases (asserts on OOM).
void af_msg_set_purchase_count (af_msg_t *self, uint32_t count);
//  Allocate room for count backups in self->backups, zeroed (asserts on OOM).
void af_msg_set_backup_count (af_msg_t *self, uint32_t count);

//  Allocate room for count targets in self->results (asserts on OOM).
void af_msg_set_result_count (af_msg_t *self, uint32_t count);

//  Allocate room for count devices in self->devices (asserts on OOM).
void af_msg_set_device_count (af_msg_t *self, uint32_t count);

//  Encode to a new frame. NULL if a required field is missing (logged).
zframe_t *af_msg_encode (af_msg_t *self);

//  Decode bytes. Returns AF_OK and *msg_p, or an error code with a reason
//  in err (and *msg_p NULL). When the envelope carried a readable rid,
//  it is copied to rid_out (if not NULL) and *has_rid set, so an error
//  reply can echo it even for an otherwise malformed message.
int af_msg_decode (const uint8_t *data, size_t size, af_msg_t **msg_p,
                   char *err, size_t errlen, uint8_t *rid_out, bool *has_rid);

//  Send on a socket; routing_id (may be NULL) is sent first for ROUTER
//  sockets and is not consumed. Returns 0 or -1.
int af_msg_send (af_msg_t *self, zsock_t *sock, zframe_t *routing_id);

//  Make an ERROR reply with code and printf-style reason, echoing rid.
af_msg_t *af_msg_error (int code, const uint8_t *rid, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Encode a device description alone as a msgpack map (the same map a
//  message carries), into a new frame. Used for stored device records.
zframe_t *af_device_pack (const af_device_t *device);

//  Decode a msgpack device map with the same bounds as a message.
//  AF_OK, or AF_E_MALFORMED with err set.
int af_device_unpack (const uint8_t *data, size_t size, af_device_t *device,
                      char *err, size_t errlen);

//  The same for a package map (stored catalog records): AF_OK or
//  AF_E_MALFORMED.
zframe_t *af_package_pack (const af_package_t *package);
int af_package_unpack (const uint8_t *data, size_t size, af_package_t *package,
                       char *err, size_t errlen);

//  Self test
void af_msg_test (bool verbose);

#endif
