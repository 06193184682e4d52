/*  =========================================================================
    af_msg - the appferry wire protocol codec (protocol/SPEC.md)

    Three stages, each with its own bounds, so hostile input never reaches
    an allocation or a copy it could inflate:

    1. s_scan walks the raw msgpack bytes without building anything. It
       rejects reserved bytes, lengths larger than what remains, nesting
       deeper than AF_MAX_DEPTH and more than AF_MAX_ELEMENTS entries. An
       array header claiming 4 billion entries in a 10-byte message stops
       here, before msgpack-c would try to allocate room for them.
    2. msgpack-c unpacks the now-known-sane bytes into an object tree in a
       zone whose size is bounded by the message size.
    3. s_decode_map converts that tree into af_msg_t using the field table
       of the command: types must match, strings must fit their buffers,
       be UTF-8 and hold no NUL, numbers must be in range, keys must not
       repeat, required fields must be present, and every program field
       must hold a program ID (af_program_check: a name, never a path). Unknown keys are ignored
       so that later minor versions can add optional fields.
    =========================================================================
*/
#include "af_msg.h"

#include <assert.h>
#include <stdarg.h>
#include <msgpack.h>
#include <pthread.h>
#include <sodium.h>

//  Scratch memory reused by every encode and decode on a thread: the
//  broker's hot path then allocates no msgpack buffer or zone per message.
//  Each thread gets its own (freed when the thread ends); a buffer grown
//  past AF_SCRATCH_KEEP by one big message is shrunk again after it.
#define AF_SCRATCH_KEEP (64 * 1024)

//  The encoder's own msgpack writer: one growing buffer, each value in its
//  shortest encoding (what msgpack-c's packer writes, byte for byte), and
//  no callback per token: encoding a big SYNC_DIFF was half of a sync's cost
//  in msgpack_sbuffer_write calls.
typedef struct {
    uint8_t *data;
    size_t size;
    size_t alloc;
} pk_t;

typedef struct {
    pk_t buffer;
    msgpack_zone *zone;
} scratch_t;

static pthread_key_t s_scratch_key;
static pthread_once_t s_scratch_once = PTHREAD_ONCE_INIT;

static void
s_scratch_free (void *arg)
{
    scratch_t *scratch = (scratch_t *) arg;
    free (scratch->buffer.data);
    if (scratch->zone)
        msgpack_zone_free (scratch->zone);
    free (scratch);
}

static void
s_scratch_init (void)
{
    int rc = pthread_key_create (&s_scratch_key, s_scratch_free);
    assert (rc == 0);
}

//  This thread's scratch, or NULL on OOM
static scratch_t *
s_scratch (void)
{
    pthread_once (&s_scratch_once, s_scratch_init);
    scratch_t *scratch = (scratch_t *) pthread_getspecific (s_scratch_key);
    if (!scratch) {
        scratch = (scratch_t *) calloc (1, sizeof (scratch_t));
        if (!scratch)
            return NULL;
        scratch->zone = msgpack_zone_new (4096);
        if (!scratch->zone || pthread_setspecific (s_scratch_key, scratch)) {
            s_scratch_free (scratch);
            return NULL;
        }
    }
    return scratch;
}

//  Done with this thread's buffer: forget its contents, keep its memory
//  unless one big message grew it
static void
s_scratch_buffer_done (scratch_t *scratch)
{
    if (scratch->buffer.alloc > AF_SCRATCH_KEEP) {
        free (scratch->buffer.data);
        memset (&scratch->buffer, 0, sizeof scratch->buffer);
    }
    else
        scratch->buffer.size = 0;
}

//  --------------------------------------------------------------------------
//  Field tables

typedef enum {
    T_STR,          //  char buf [size]
    T_PROG,         //  char buf [size], a program ID (af_program_check)
    T_U32,          //  uint32_t, in [min, max]
    T_U64,          //  uint64_t
    T_BOOL,         //  bool
    T_STRS,         //  char buf [max][size], count at aux
    T_STRSP,        //  char (*buf) [size] (owned), count at aux, at most max
    T_U32S,         //  uint32_t [max], count at aux
    T_DEVICE,       //  af_device_t, presence flag at aux
    T_PACKAGE,      //  af_package_t, presence flag at aux
    T_BIN,          //  uint8_t * (owned), size (uint32_t) at aux, at most max
    T_BINS,         //  uint8_t (*buf) [size] (owned): an array of bin of exactly
                    //  size bytes each, count at aux, min..max entries
    T_MAPS,         //  an array of maps: elements of size bytes described by
                    //  sub (owned pointer), count at aux, at most max
    T_ON,           //  af_prog_t holders' devices, as an array of uint
    T_VERSIONS      //  af_prog_t holders' version names, as an array of str
} ftype_t;

typedef struct field_s {
    const char *key;
    uint8_t keylen;                 //  strlen (key), known at compile time
    ftype_t type;
    size_t offset;
    size_t size;            //  T_STR/T_STRS: buffer (stride) size; T_MAPS: element size;
                            //  T_BINS: each entry's exact size
    size_t aux;             //  count or presence flag offset
    uint64_t min, max;      //  value range, or length range, or count max
    bool required;
    const struct field_s *sub;      //  T_MAPS: the elements' fields
} field_t;

#define NOAUX ((size_t) -1)
#define STR(s,k,f,req) { k, sizeof (k) - 1, T_STR, offsetof (s, f), sizeof (((s *) 0)->f), NOAUX, 0, \
                         sizeof (((s *) 0)->f) - 1, req, NULL }
#define PROG(s,k,f,req) { k, sizeof (k) - 1, T_PROG, offsetof (s, f), sizeof (((s *) 0)->f), NOAUX, 0, \
                          sizeof (((s *) 0)->f) - 1, req, NULL }
#define U32(s,k,f,lo,hi,req) { k, sizeof (k) - 1, T_U32, offsetof (s, f), 0, NOAUX, lo, hi, req, NULL }
#define U64(s,k,f,req) { k, sizeof (k) - 1, T_U64, offsetof (s, f), 0, NOAUX, 0, UINT64_MAX, req, NULL }
#define BOOL(s,k,f) { k, sizeof (k) - 1, T_BOOL, offsetof (s, f), 0, NOAUX, 0, 1, false, NULL }
#define MAPS(s,k,f,count,type,sub,hi,req) { k, sizeof (k) - 1, T_MAPS, offsetof (s, f), sizeof (type), \
                                             offsetof (s, count), 0, hi, req, sub }
#define END { NULL, 0, T_STR, 0, 0, 0, 0, 0, false, NULL }

static const field_t s_device_fields [] = {
    STR (af_device_t, "id", id, false),
    STR (af_device_t, "name", name, false),
    STR (af_device_t, "platform", platform, false),
    STR (af_device_t, "osVersion", os_version, false),
    U32 (af_device_t, "sdkVersion", sdk, 0, AF_MAX_SDK, false),
    STR (af_device_t, "model", model, false),
    STR (af_device_t, "manufacturer", manufacturer, false),
    STR (af_device_t, "formFactor", form_factor, false),
    U32 (af_device_t, "screenWidth", screen_w, 0, AF_MAX_SCREEN, false),
    U32 (af_device_t, "screenHeight", screen_h, 0, AF_MAX_SCREEN, false),
    U32 (af_device_t, "screenDensity", density, 0, AF_MAX_DENSITY, false),
    { "supportedAbis", sizeof ("supportedAbis") - 1, T_STRS, offsetof (af_device_t, abis), AF_MAX_ABI + 1,
      offsetof (af_device_t, abi_count), 0, AF_MAX_ABIS, false, NULL },
    { "supportedLocales", sizeof ("supportedLocales") - 1, T_STRS, offsetof (af_device_t, locales), AF_MAX_LOCALE + 1,
      offsetof (af_device_t, locale_count), 0, AF_MAX_LOCALES, false, NULL },
    BOOL (af_device_t, "online", online),
    U64 (af_device_t, "lastSeen", last_seen, false),
    END
};

static const field_t s_package_fields [] = {
    PROG (af_package_t, "program", program, false),
    STR (af_package_t, "name", display, false),
    STR (af_package_t, "publisher", publisher, false),
    STR (af_package_t, "category", category, false),
    STR (af_package_t, "platform", platform, false),
    U64 (af_package_t, "versionCode", version_code, false),
    STR (af_package_t, "versionName", version_name, false),
    STR (af_package_t, "packageId", package_id, false),
    STR (af_package_t, "hash", hash, false),
    U64 (af_package_t, "size", size, false),
    STR (af_package_t, "abi", abi, false),
    STR (af_package_t, "storeLink", store_link, false),
    U32 (af_package_t, "price", price_cents, 0, AF_MAX_PRICE, false),
    STR (af_package_t, "currency", currency, false),
    U32 (af_package_t, "votes", votes, 0, UINT32_MAX, false),
    END
};

static const field_t s_target_fields [] = {
    STR (af_target_t, "deviceId", device_id, true),
    STR (af_target_t, "name", name, false),
    STR (af_target_t, "state", state, true),
    STR (af_target_t, "versionName", version_name, false),
    STR (af_target_t, "reason", reason, false),
    U32 (af_target_t, "code", code, 100, 999, false),
    END
};

//  A grouped SYNC_DIFF: a program's fit, and which devices have it, as
//  two arrays of one entry per device: its index in 'devices', its version
static const field_t s_prog_fields [] = {
    PROG (af_prog_t, "program", program, true),
    U32 (af_prog_t, "fit", fit, 0, AF_FIT_UNKNOWN_PROGRAM, false),
    STR (af_prog_t, "fitVersion", fit_version, false),
    STR (af_prog_t, "reason", reason, false),
    STR (af_prog_t, "had", had, false),
    { "on", 2, T_ON, offsetof (af_prog_t, holders), 0, offsetof (af_prog_t, holder_count), 0,
      AF_MAX_DEVICES, false, NULL },
    { "versions", 8, T_VERSIONS, offsetof (af_prog_t, holders), 0, offsetof (af_prog_t, holder_count), 0,
      AF_MAX_DEVICES, false, NULL },
    END
};

static const field_t s_app_fields [] = {
    PROG (af_app_t, "program", program, true),
    STR (af_app_t, "versionName", version_name, false),
    U64 (af_app_t, "versionCode", version_code, false),
    STR (af_app_t, "hash", hash, false),
    U64 (af_app_t, "at", at, false),
    STR (af_app_t, "deviceId", device_id, false),
    U32 (af_app_t, "fit", fit, 0, AF_FIT_UNKNOWN_PROGRAM, false),
    STR (af_app_t, "fitVersion", fit_version, false),
    STR (af_app_t, "reason", reason, false),
    U32 (af_app_t, "price", price, 0, AF_MAX_PRICE, false),
    STR (af_app_t, "currency", currency, false),
    BOOL (af_app_t, "entitled", entitled),
    STR (af_app_t, "share", share, false),
    END
};

static const field_t s_purchase_fields [] = {
    PROG (af_purchase_t, "program", program, true),
    U32 (af_purchase_t, "price", price, 1, AF_MAX_PRICE, true),
    STR (af_purchase_t, "currency", currency, true),
    STR (af_purchase_t, "intent", intent, true),
    U64 (af_purchase_t, "at", at, false),
    END
};

static const field_t s_backup_fields [] = {
    PROG (af_backup_t, "program", program, true),
    STR (af_backup_t, "name", name, false),
    STR (af_backup_t, "publisher", publisher, false),
    STR (af_backup_t, "keyId", key_id, false),
    STR (af_backup_t, "platform", platform, false),
    STR (af_backup_t, "versionName", version_name, true),
    U64 (af_backup_t, "versionCode", version_code, false),
    STR (af_backup_t, "hash", hash, false),
    U64 (af_backup_t, "at", at, false),
    STR (af_backup_t, "deviceId", device_id, false),
    U32 (af_backup_t, "configSize", config_size, 0, AF_MAX_CONFIG, false),
    STR (af_backup_t, "backupId", backup_id, false),
    U64 (af_backup_t, "created", created, false),
    STR (af_backup_t, "configHash", config_hash, false),
    STR (af_backup_t, "mac", mac, false),
    END
};

#define M af_msg_t
#define F_ACCOUNT(req)  STR (M, "account", account, req)
#define F_DEVICE(req)   { "device", sizeof ("device") - 1, T_DEVICE, offsetof (M, device), 0, offsetof (M, has_device), 0, 0, req, NULL }
#define F_PACKAGE       { "package", sizeof ("package") - 1, T_PACKAGE, offsetof (M, package), 0, offsetof (M, has_package), 0, 0, false, NULL }

static const field_t f_register [] = {
    F_ACCOUNT (true), STR (M, "password", password, true), END };
static const field_t f_login [] = {
    F_ACCOUNT (true), STR (M, "password", password, false),
    STR (M, "deviceId", device_id, false), F_DEVICE (true), END };
static const field_t f_login_ok [] = {
    F_ACCOUNT (true), STR (M, "deviceId", device_id, true),
    U32 (M, "heartbeat", heartbeat, 0, 3600000, false), U32 (M, "liveness", liveness, 0, 100, false),
    U64 (M, "reportSeq", report_seq, false), BOOL (M, "sendList", send_list),
    STR (M, "standby", endpoint, false), END };
static const field_t f_device_list [] = {
    F_ACCOUNT (false),
    MAPS (M, "devices", devices, device_count, af_device_t, s_device_fields, AF_MAX_DEVICES, true),
    END };
static const field_t f_resolve [] = {
    PROG (M, "program", program, true), F_DEVICE (false),
    STR (M, "versionName", version_name, false), U64 (M, "versionCode", version_code, false),
    BOOL (M, "recommend", recommend), END };
static const field_t f_resolved [] = {
    PROG (M, "program", program, true), U32 (M, "fit", fit, 0, AF_FIT_UNKNOWN_PROGRAM, true),
    F_PACKAGE, STR (M, "reason", reason, false),
    { "alternative", sizeof ("alternative") - 1, T_PACKAGE, offsetof (M, alternative), 0,
      offsetof (M, has_alternative), 0, 0, false, NULL },
    END };
static const field_t f_error [] = {
    U32 (M, "code", code, 100, 999, true), STR (M, "reason", reason, false),
    { "versions", sizeof ("versions") - 1, T_U32S, offsetof (M, versions), 0, offsetof (M, version_count), 1, 4, false, NULL },
    END };
static const field_t f_ready [] = {
    STR (M, "service", service, true), U32 (M, "credit", credit, 1, 1024, false),
    U32 (M, "heartbeat", heartbeat, 0, 3600000, false), END };
static const field_t f_reason [] = {
    STR (M, "reason", reason, false), END };
static const field_t f_pong [] = {
    BOOL (M, "loggedIn", logged_in), END };
static const field_t f_notify [] = {
    STR (M, "deviceId", device_id, true), STR (M, "kind", kind, false),
    { "body", sizeof ("body") - 1, T_BIN, offsetof (M, body), 0, offsetof (M, body_size), 0, AF_MAX_BODY, true, NULL },
    STR (M, "ask", ask, false), BOOL (M, "withData", with_data),
    END };
#define F_PUSH      STR (M, "push", push_id, true)
#define F_HASH      STR (M, "hash", hash, true)
static const field_t f_push [] = {
    PROG (M, "program", program, true),
    { "targets", sizeof ("targets") - 1, T_STRSP, offsetof (M, targets), AF_ID_HEX + 1, offsetof (M, target_count),
      1, AF_MAX_TARGETS, true, NULL },
    BOOL (M, "withData", with_data),
    STR (M, "nodeVersion", node_version, false),
    { "attest", sizeof ("attest") - 1, T_STRSP, offsetof (M, attest), AF_MAX_ATTEST_LEN + 1, offsetof (M, attest_count),
      0, AF_MAX_ATTEST, false, NULL },
    U64 (M, "attestTime", attest_time, false),
    STR (M, "dataHash", data_hash, false), U64 (M, "dataSize", data_total, false),
    STR (M, "ask", ask, false),
    END };
static const field_t f_push_accepted [] = {
    F_PUSH, PROG (M, "program", program, true),
    { "targets", sizeof ("targets") - 1, T_MAPS, offsetof (M, results), sizeof (af_target_t), offsetof (M, result_count), 0,
      AF_MAX_TARGETS, true, s_target_fields },
    END };
static const field_t f_item [] = {
    STR (M, "item", item, true),
    { "body", sizeof ("body") - 1, T_BIN, offsetof (M, body), 0, offsetof (M, body_size), 1, AF_MAX_ITEM, true, NULL },
    END };
static const field_t f_ack [] = {
    STR (M, "item", item, true), END };
static const field_t f_offer [] = {
    F_PUSH, PROG (M, "program", program, true), STR (M, "from", from, true),
    U32 (M, "fit", fit, AF_FIT_PACKAGE, AF_FIT_STORE_LINK, true),
    { "package", sizeof ("package") - 1, T_PACKAGE, offsetof (M, package), 0, offsetof (M, has_package), 0, 0, true, NULL },
    STR (M, "dataHash", data_hash, false), U64 (M, "dataSize", data_total, false),
    STR (M, "ask", ask, false),
    { "meta", sizeof ("meta") - 1, T_BIN, offsetof (M, body), 0, offsetof (M, body_size), 0, AF_MAX_META, false, NULL },
    END };
static const field_t f_result [] = {
    F_PUSH, PROG (M, "program", program, true), STR (M, "deviceId", device_id, true),
    STR (M, "state", state, true), STR (M, "versionName", version_name, false),
    STR (M, "reason", reason, false), END };
static const field_t f_fetch [] = {
    F_HASH, U64 (M, "offset", offset, false),
    U32 (M, "credit", credit, 1, AF_MAX_CREDIT, true), END };
static const field_t f_chunk [] = {
    F_HASH, U64 (M, "offset", offset, true), U64 (M, "total", total, true),
    U32 (M, "size", size, 1, AF_MAX_CHUNK, true), BOOL (M, "zstd", zstd),
    { "data", sizeof ("data") - 1, T_BIN, offsetof (M, data), 0, offsetof (M, data_size), 1, AF_MAX_CHUNK, true, NULL },
    END };
static const field_t f_credit [] = {
    F_HASH, U32 (M, "credit", credit, 1, AF_MAX_CREDIT, true), END };
static const field_t f_done [] = {
    F_PUSH, STR (M, "state", state, true), STR (M, "versionName", version_name, false),
    STR (M, "reason", reason, false), U32 (M, "files", files, 0, UINT32_MAX, false), END };
static const field_t f_progress [] = {
    F_PUSH, STR (M, "deviceId", device_id, true), U64 (M, "offset", offset, true),
    U64 (M, "total", total, true), END };
static const field_t f_upload [] = {
    F_HASH, U64 (M, "total", total, true), END };
#define F_APPS(max) MAPS (M, "apps", apps, app_count, af_app_t, s_app_fields, max, true)
static const field_t f_report [] = {
    U64 (M, "seq", seq, true), STR (M, "op", op, true), PROG (M, "program", program, true),
    STR (M, "versionName", version_name, false), U64 (M, "versionCode", version_code, false),
    STR (M, "hash", hash, false), U64 (M, "at", at, false), END };
static const field_t f_list [] = {
    U64 (M, "seq", seq, true), F_APPS (AF_MAX_APPS), END };
static const field_t f_apps [] = {
    STR (M, "deviceId", device_id, true), END };
static const field_t f_app_list [] = {
    STR (M, "deviceId", device_id, false), F_APPS (AF_MAX_APPS), END };   //  deviceId absent: a contact's (BROWSE)
static const field_t f_sync_diff [] = {
    MAPS (M, "apps", apps, app_count, af_app_t, s_app_fields, AF_MAX_DIFF, false),
    BOOL (M, "truncated", truncated),
    //  The grouped form (SYNC grouped: true)
    MAPS (M, "devices", devices, device_count, af_device_t, s_device_fields, AF_MAX_DEVICES, false),
    MAPS (M, "programs", progs, prog_count, af_prog_t, s_prog_fields, AF_MAX_DIFF, false),
    END };
static const field_t f_uninstall [] = {
    PROG (M, "program", program, true),
    { "targets", sizeof ("targets") - 1, T_STRSP, offsetof (M, targets), AF_ID_HEX + 1, offsetof (M, target_count),
      0, AF_MAX_TARGETS, false, NULL },
    STR (M, "push", push_id, false), STR (M, "from", from, false), END };
#define F_BLOB { "blob", sizeof ("blob") - 1, T_BIN, offsetof (M, data), 0, offsetof (M, data_size), 1, AF_MAX_CONFIG, true, NULL }
static const field_t f_config_put [] = {
    PROG (M, "program", program, true), U64 (M, "at", at, true), F_BLOB, END };
static const field_t f_config_get [] = {
    PROG (M, "program", program, true), BOOL (M, "previous", previous), END };
static const field_t f_config [] = {
    PROG (M, "program", program, true), U64 (M, "at", at, true), F_BLOB,
    U64 (M, "prevAt", prev_at, false), BOOL (M, "previous", previous), END };
static const field_t f_device_remove [] = {
    STR (M, "deviceId", device_id, true), STR (M, "password", password, true), END };
static const field_t f_sync [] = {
    BOOL (M, "grouped", grouped), END };
#define F_ELEMENTS { "elements", sizeof ("elements") - 1, T_BINS, offsetof (M, elements), AF_OPRF_ELEMENT_SIZE, \
                     offsetof (M, element_count), 1, AF_MAX_CONTACTS_EVAL, true, NULL }
static const field_t f_contacts_eval [] = {
    F_ELEMENTS, END };
static const field_t f_contacts_evaluated [] = {
    F_ELEMENTS, STR (M, "keyId", key_id, false), END };
static const field_t f_redirect [] = {
    U32 (M, "shard", shard, 0, 4095, true), U64 (M, "epoch", epoch, true),
    STR (M, "endpoint", endpoint, false), END };
static const field_t f_repl [] = {
    U32 (M, "shard", shard, 0, 4095, true), U64 (M, "epoch", epoch, true), U64 (M, "seq", seq, true),
    U64 (M, "prevEpoch", prev_epoch, false),
    { "entries", sizeof ("entries") - 1, T_BIN, offsetof (M, body), 0, offsetof (M, body_size), 0, AF_MAX_REPL, false, NULL },
    END };
static const field_t f_snapshot [] = {
    U32 (M, "shard", shard, 0, 4095, true), U64 (M, "epoch", epoch, true), U64 (M, "seq", seq, true),
    U32 (M, "part", part, 0, UINT32_MAX, true), BOOL (M, "last", last),
    { "entries", sizeof ("entries") - 1, T_BIN, offsetof (M, body), 0, offsetof (M, body_size), 0, AF_MAX_REPL, false, NULL },
    { "entry", sizeof ("entry") - 1, T_BIN, offsetof (M, data), 0, offsetof (M, data_size), 1, AF_MAX_REPL, false, NULL },
    END };
static const field_t f_snapshot_ack [] = {
    U32 (M, "shard", shard, 0, 4095, true), U64 (M, "epoch", epoch, true), U64 (M, "seq", seq, true),
    U32 (M, "part", part, 0, UINT32_MAX, true), END };
static const field_t f_repl_ack [] = {
    U32 (M, "shard", shard, 0, 4095, true), U64 (M, "epoch", epoch, true), U64 (M, "seq", seq, true),
    BOOL (M, "matched", matched), BOOL (M, "diverged", diverged), END };
#define F_PRICE(req)    U32 (M, "price", price, 1, AF_MAX_PRICE, req)
#define F_CURRENCY(req) STR (M, "currency", currency, req)
#define F_INTENT(req)   STR (M, "intent", intent, req)
#define F_SOURCE_ACCOUNT STR (M, "sourceAccount", source_account, false)
static const field_t f_pay_intent [] = {
    F_ACCOUNT (true), PROG (M, "program", program, true), STR (M, "deviceId", device_id, false),
    F_PRICE (true), F_CURRENCY (true), F_SOURCE_ACCOUNT, END };
static const field_t f_payment_required [] = {
    PROG (M, "program", program, true), F_PRICE (true), F_CURRENCY (true), F_INTENT (true),
    STR (M, "deviceId", device_id, false), U64 (M, "expires", expires, false), F_SOURCE_ACCOUNT, END };
static const field_t f_pay_confirm [] = {
    F_INTENT (true), STR (M, "token", token, true), F_ACCOUNT (false), BOOL (M, "withData", with_data), END };
static const field_t f_paid [] = {
    F_INTENT (true), PROG (M, "program", program, true), STR (M, "deviceId", device_id, false),
    F_PRICE (false), F_CURRENCY (false), BOOL (M, "entitled", entitled), F_SOURCE_ACCOUNT, END };
static const field_t f_purchases [] = {
    F_ACCOUNT (false), PROG (M, "program", program, false), END };
static const field_t f_purchase_list [] = {
    MAPS (M, "purchases", purchases, purchase_count, af_purchase_t, s_purchase_fields, AF_MAX_PURCHASES, true),
    END };
//  Friends: tokens are OPRF outputs cut to AF_CONTACT_TOKEN_SIZE bytes
#define F_TOKENS(min, max, req) { "tokens", sizeof ("tokens") - 1, T_BINS, offsetof (M, elements), \
                                  AF_CONTACT_TOKEN_SIZE, offsetof (M, element_count), min, max, req, NULL }
//  GET, BROWSE: a device of the account (deviceId) or a contact (tokens);
//  exactly one of them (the broker checks: 400); GET withData: the app's
//  user data too, from a device of the account only (403 with tokens)
static const field_t f_get [] = {
    PROG (M, "program", program, true), STR (M, "deviceId", device_id, false),
    F_TOKENS (0, AF_MAX_CONTACT_NUMBERS, false), BOOL (M, "withData", with_data), END };
static const field_t f_browse [] = {
    STR (M, "deviceId", device_id, false), F_TOKENS (0, AF_MAX_CONTACT_NUMBERS, false), END };
#define F_TOKEN     F_TOKENS (1, 1, true)
static const field_t f_contacts_put [] = {
    STR (M, "op", op, true), F_TOKENS (0, AF_MAX_CONTACTS_EVAL, false), END };
static const field_t f_friend_list [] = {
    F_TOKENS (0, AF_MAX_CONTACTS_EVAL, false), END };
static const field_t f_block [] = {
    STR (M, "op", op, true), F_TOKEN, END };
static const field_t f_share [] = {
    PROG (M, "program", program, true), STR (M, "state", state, true), END };
static const field_t f_share_list [] = {
    MAPS (M, "apps", apps, app_count, af_app_t, s_app_fields, AF_MAX_SHARES, true), END };
#define F_CONTACT   F_TOKENS (1, AF_MAX_CONTACT_NUMBERS, true)
static const field_t f_friend_apps [] = {
    F_CONTACT, END };
static const field_t f_friend_app_list [] = {
    MAPS (M, "apps", apps, app_count, af_app_t, s_app_fields, AF_MAX_SHARES, true), END };
static const field_t f_recommend [] = {
    F_CONTACT, PROG (M, "program", program, true), END };
static const field_t f_recommendation [] = {
    F_ACCOUNT (true), PROG (M, "program", program, true), STR (M, "versionName", version_name, false),
    F_TOKENS (0, AF_MAX_OWN_NUMBERS, false), U64 (M, "at", at, false), END };
static const field_t f_refuse [] = {
    STR (M, "op", op, true), F_TOKENS (0, 1, false), END };
//  Backups: the configuration is the sealed blob, as in CONFIG_PUT
#define F_CONFIG_BLOB { "config", sizeof ("config") - 1, T_BIN, offsetof (M, data), 0, offsetof (M, data_size), \
                        1, AF_MAX_CONFIG, false, NULL }
#define F_BACKUPS(hi, req) MAPS (M, "backups", backups, backup_count, af_backup_t, s_backup_fields, hi, req)
static const field_t f_backup_put [] = {
    F_BACKUPS (1, true), F_CONFIG_BLOB, END };
static const field_t f_backups [] = {
    PROG (M, "program", program, false), END };
static const field_t f_backup_get [] = {
    PROG (M, "program", program, true), STR (M, "versionName", version_name, false), END };
static const field_t f_backup_list [] = {
    F_BACKUPS (AF_MAX_BACKUPS, true), F_CONFIG_BLOB, END };
static const field_t f_restore [] = {
    PROG (M, "program", program, true), STR (M, "versionName", version_name, false),
    BOOL (M, "latest", latest), BOOL (M, "recommend", recommend), END };
//  Between brokers: the body is the operation's payload, up to
//  AF_MAX_FORWARD_BODY (an asker's sets; a directory answer's accounts)
#define F_FWD_BODY { "body", sizeof ("body") - 1, T_BIN, offsetof (M, body), 0, offsetof (M, body_size), 0, \
                     AF_MAX_FORWARD_BODY, false, NULL }
static const field_t f_forward [] = {
    U32 (M, "shard", shard, 0, 4095, true), U64 (M, "epoch", epoch, true), STR (M, "op", op, true),
    F_ACCOUNT (false), F_TOKENS (0, AF_MAX_CONTACTS_EVAL, false), PROG (M, "program", program, false),
    STR (M, "state", state, false), F_INTENT (false), F_FWD_BODY, END };
static const field_t f_forward_reply [] = {
    U32 (M, "code", code, 0, 999, true), STR (M, "reason", reason, false), U64 (M, "epoch", epoch, false),
    BOOL (M, "yes", yes), MAPS (M, "apps", apps, app_count, af_app_t, s_app_fields, AF_MAX_SHARES, false),
    F_FWD_BODY, END };
//  The source's install record (SPEC 5.47a): the record, or a code and a
//  reason; which of them is there is the broker's check (400)
#define F_RECORD { "record", sizeof ("record") - 1, T_BIN, offsetof (M, data), 0, offsetof (M, data_size), 1, \
                   AF_MAX_RECORD_MSG, false, NULL }
static const field_t f_record_put [] = {
    STR (M, "ask", ask, true), PROG (M, "program", program, true), STR (M, "deviceId", device_id, true),
    F_RECORD, U32 (M, "code", code, 400, 599, false), STR (M, "reason", reason, false), END };
static const field_t f_record [] = {
    STR (M, "ask", ask, true), PROG (M, "program", program, true), STR (M, "deviceId", device_id, true),
    F_RECORD, U32 (M, "code", code, 400, 599, false), STR (M, "reason", reason, false), END };
static const field_t f_none [] = { END };

typedef struct {
    const char *name;
    const field_t *fields;
} command_t;

static const command_t s_commands [AF_MSG_COUNT] = {
    [AF_MSG_NONE]        = { "?", f_none },
    [AF_MSG_REGISTER]    = { "REGISTER", f_register },
    [AF_MSG_LOGIN]       = { "LOGIN", f_login },
    [AF_MSG_LOGIN_OK]    = { "LOGIN_OK", f_login_ok },
    [AF_MSG_LOGOUT]      = { "LOGOUT", f_none },
    [AF_MSG_DEVICES]     = { "DEVICES", f_none },
    [AF_MSG_DEVICE_LIST] = { "DEVICE_LIST", f_device_list },
    [AF_MSG_RESOLVE]     = { "RESOLVE", f_resolve },
    [AF_MSG_RESOLVED]    = { "RESOLVED", f_resolved },
    [AF_MSG_PING]        = { "PING", f_none },
    [AF_MSG_PONG]        = { "PONG", f_pong },
    [AF_MSG_OK]          = { "OK", f_none },
    [AF_MSG_ERROR]       = { "ERROR", f_error },
    [AF_MSG_READY]       = { "READY", f_ready },
    [AF_MSG_DISCONNECT]  = { "DISCONNECT", f_reason },
    [AF_MSG_NOTIFY]      = { "NOTIFY", f_notify },
    [AF_MSG_PUSH]        = { "PUSH", f_push },
    [AF_MSG_PUSH_ACCEPTED] = { "PUSH_ACCEPTED", f_push_accepted },
    [AF_MSG_ITEM]        = { "ITEM", f_item },
    [AF_MSG_ACK]         = { "ACK", f_ack },
    [AF_MSG_OFFER]       = { "OFFER", f_offer },
    [AF_MSG_RESULT]      = { "RESULT", f_result },
    [AF_MSG_FETCH]       = { "FETCH", f_fetch },
    [AF_MSG_CHUNK]       = { "CHUNK", f_chunk },
    [AF_MSG_CREDIT]      = { "CREDIT", f_credit },
    [AF_MSG_DONE]        = { "DONE", f_done },
    [AF_MSG_PROGRESS]    = { "PROGRESS", f_progress },
    [AF_MSG_UPLOAD]      = { "UPLOAD", f_upload },
    [AF_MSG_REPORT]      = { "REPORT", f_report },
    [AF_MSG_LIST]        = { "LIST", f_list },
    [AF_MSG_APPS]        = { "APPS", f_apps },
    [AF_MSG_APP_LIST]    = { "APP_LIST", f_app_list },
    [AF_MSG_SYNC]        = { "SYNC", f_sync },
    [AF_MSG_SYNC_DIFF]   = { "SYNC_DIFF", f_sync_diff },
    [AF_MSG_UNINSTALL]   = { "UNINSTALL", f_uninstall },
    [AF_MSG_CONFIG_PUT]  = { "CONFIG_PUT", f_config_put },
    [AF_MSG_CONFIG_GET]  = { "CONFIG_GET", f_config_get },
    [AF_MSG_CONFIG]      = { "CONFIG", f_config },
    [AF_MSG_DEVICE_REMOVE] = { "DEVICE_REMOVE", f_device_remove },
    [AF_MSG_CONTACTS_EVAL] = { "CONTACTS_EVAL", f_contacts_eval },
    [AF_MSG_CONTACTS_EVALUATED] = { "CONTACTS_EVALUATED", f_contacts_evaluated },
    [AF_MSG_REDIRECT]    = { "REDIRECT", f_redirect },
    [AF_MSG_REPL]        = { "REPL", f_repl },
    [AF_MSG_REPL_ACK]    = { "REPL_ACK", f_repl_ack },
    [AF_MSG_PAY_INTENT]  = { "PAY_INTENT", f_pay_intent },
    [AF_MSG_PAYMENT_REQUIRED] = { "PAYMENT_REQUIRED", f_payment_required },
    [AF_MSG_PAY_CONFIRM] = { "PAY_CONFIRM", f_pay_confirm },
    [AF_MSG_PAID]        = { "PAID", f_paid },
    [AF_MSG_PURCHASES]   = { "PURCHASES", f_purchases },
    [AF_MSG_PURCHASE_LIST] = { "PURCHASE_LIST", f_purchase_list },
    [AF_MSG_GET]         = { "GET", f_get },
    [AF_MSG_BROWSE]      = { "BROWSE", f_browse },
    [AF_MSG_CONTACTS_PUT] = { "CONTACTS_PUT", f_contacts_put },
    [AF_MSG_FRIENDS]     = { "FRIENDS", f_none },
    [AF_MSG_FRIEND_LIST] = { "FRIEND_LIST", f_friend_list },
    [AF_MSG_BLOCK]       = { "BLOCK", f_block },
    [AF_MSG_SHARE]       = { "SHARE", f_share },
    [AF_MSG_SHARES]      = { "SHARES", f_none },
    [AF_MSG_SHARE_LIST]  = { "SHARE_LIST", f_share_list },
    [AF_MSG_FRIEND_APPS] = { "FRIEND_APPS", f_friend_apps },
    [AF_MSG_FRIEND_APP_LIST] = { "FRIEND_APP_LIST", f_friend_app_list },
    [AF_MSG_RECOMMEND]   = { "RECOMMEND", f_recommend },
    [AF_MSG_RECOMMENDATION] = { "RECOMMENDATION", f_recommendation },
    [AF_MSG_REFUSE]      = { "REFUSE", f_refuse },
    [AF_MSG_FRIEND_INSTALL] = { "FRIEND_INSTALL", f_recommend },
    [AF_MSG_BACKUP_PUT]  = { "BACKUP_PUT", f_backup_put },
    [AF_MSG_BACKUPS]     = { "BACKUPS", f_backups },
    [AF_MSG_BACKUP_GET]  = { "BACKUP_GET", f_backup_get },
    [AF_MSG_BACKUP_LIST] = { "BACKUP_LIST", f_backup_list },
    [AF_MSG_RESTORE]     = { "RESTORE", f_restore },
    [AF_MSG_FORWARD]     = { "FORWARD", f_forward },
    [AF_MSG_FORWARD_REPLY] = { "FORWARD_REPLY", f_forward_reply },
    [AF_MSG_SNAPSHOT]    = { "SNAPSHOT", f_snapshot },
    [AF_MSG_SNAPSHOT_ACK] = { "SNAPSHOT_ACK", f_snapshot_ack },
    [AF_MSG_RECORD_PUT]  = { "RECORD_PUT", f_record_put },
    [AF_MSG_RECORD]      = { "RECORD", f_record },
};

//  --------------------------------------------------------------------------
//  Life cycle

af_msg_t *
af_msg_new (af_msg_id_t id)
{
    assert (id > AF_MSG_NONE && id < AF_MSG_COUNT);
    af_msg_t *self = (af_msg_t *) calloc (1, sizeof (af_msg_t));
    if (self) {
        self->id = id;
        self->version = AF_PROTO_VERSION;
    }
    return self;
}

void
af_msg_destroy (af_msg_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->devices);
        free ((*self_p)->targets);
        free ((*self_p)->attest);
        free ((*self_p)->body);
        free ((*self_p)->results);
        free ((*self_p)->apps);
        for (uint32_t i = 0; (*self_p)->progs && i < (*self_p)->prog_count; i++)
            free ((*self_p)->progs [i].holders);
        free ((*self_p)->progs);
        free ((*self_p)->data);
        free ((*self_p)->elements);
        free ((*self_p)->purchases);
        free ((*self_p)->backups);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
af_msg_command_name (af_msg_id_t id)
{
    return id > AF_MSG_NONE && id < AF_MSG_COUNT? s_commands [id].name: "?";
}

void
af_msg_set_rid_random (af_msg_t *self)
{
    randombytes_buf (self->rid, sizeof self->rid);
    self->has_rid = true;
}

int
af_msg_set_body (af_msg_t *self, const void *data, size_t size)
{
    if (size > AF_MAX_BODY)
        return -1;
    uint8_t *body = (uint8_t *) malloc (size? size: 1);
    assert (body);
    if (size)
        memcpy (body, data, size);
    free (self->body);
    self->body = body;
    self->body_size = (uint32_t) size;
    return 0;
}

//  A strings array of a message, one more entry (at most max)
static void
s_add_string (char **array_p, uint32_t *count_p, size_t stride, uint32_t max, const char *text)
{
    assert (*count_p < max);
    if (*count_p == 0 || !*array_p) {
        *array_p = (char *) calloc (max, stride);
        assert (*array_p);
    }
    snprintf (*array_p + (*count_p)++ * stride, stride, "%s", text);
}

void
af_msg_add_target (af_msg_t *self, const char *target)
{
    assert (self && target);
    s_add_string ((char **) &self->targets, &self->target_count, AF_ID_HEX + 1, AF_MAX_TARGETS, target);
}

void
af_msg_add_attest (af_msg_t *self, const char *attest)
{
    assert (self && attest);
    s_add_string ((char **) &self->attest, &self->attest_count, AF_MAX_ATTEST_LEN + 1, AF_MAX_ATTEST, attest);
}

void
af_msg_set_app_count (af_msg_t *self, uint32_t count)
{
    af_app_t *apps = count? (af_app_t *) calloc (count, sizeof (af_app_t)): NULL;
    assert (apps || !count);
    free (self->apps);
    self->apps = apps;
    self->app_count = count;
}

void
af_msg_set_prog_count (af_msg_t *self, uint32_t count)
{
    af_prog_t *progs = count? (af_prog_t *) calloc (count, sizeof (af_prog_t)): NULL;
    assert (progs || !count);
    for (uint32_t i = 0; self->progs && i < self->prog_count; i++)
        free (self->progs [i].holders);
    free (self->progs);
    self->progs = progs;
    self->prog_count = count;
}

void
af_prog_set_holder_count (af_prog_t *prog, uint32_t count)
{
    af_holder_t *holders = count? (af_holder_t *) calloc (count, sizeof (af_holder_t)): NULL;
    assert (holders || !count);
    free (prog->holders);
    prog->holders = holders;
    prog->holder_count = count;
}

void
af_msg_ungroup (af_msg_t *self)
{
    assert (self && self->id == AF_MSG_SYNC_DIFF);
    if (self->prog_count == 0)
        return;
    //  One entry per holder, and one per program no device has now
    uint32_t entries = 0;
    for (uint32_t i = 0; i < self->prog_count; i++)
        entries += self->progs [i].holder_count? self->progs [i].holder_count: 1;
    af_msg_set_app_count (self, entries);
    uint32_t n = 0;
    for (uint32_t i = 0; i < self->prog_count; i++) {
        const af_prog_t *prog = &self->progs [i];
        uint32_t k = 0;
        do {
            af_app_t *app = &self->apps [n++];
            memcpy (app->program, prog->program, sizeof app->program);
            app->fit = prog->fit;
            memcpy (app->fit_version, prog->fit_version, sizeof app->fit_version);
            memcpy (app->reason, prog->reason, sizeof app->reason);
            if (prog->holder_count) {
                const af_holder_t *holder = &prog->holders [k];
                if (holder->device < self->device_count)
                    memcpy (app->device_id, self->devices [holder->device].id, sizeof app->device_id);
                memcpy (app->version_name, holder->version_name, sizeof app->version_name);
            }
            else
                memcpy (app->version_name, prog->had, sizeof app->version_name);
        } while (++k < prog->holder_count);
    }
}

void
af_msg_set_element_count (af_msg_t *self, uint32_t count)
{
    assert (self);
    uint8_t (*elements) [AF_OPRF_ELEMENT_SIZE] = count?
        (uint8_t (*) [AF_OPRF_ELEMENT_SIZE]) calloc (count, AF_OPRF_ELEMENT_SIZE): NULL;
    assert (elements || !count);
    free (self->elements);
    self->elements = elements;
    self->element_count = count;
}

void
af_msg_set_purchase_count (af_msg_t *self, uint32_t count)
{
    af_purchase_t *purchases = count? (af_purchase_t *) calloc (count, sizeof (af_purchase_t)): NULL;
    assert (purchases || !count);
    free (self->purchases);
    self->purchases = purchases;
    self->purchase_count = count;
}

void
af_msg_set_result_count (af_msg_t *self, uint32_t count)
{
    af_target_t *results = count? (af_target_t *) calloc (count, sizeof (af_target_t)): NULL;
    assert (results || !count);
    free (self->results);
    self->results = results;
    self->result_count = count;
}

void
af_msg_set_backup_count (af_msg_t *self, uint32_t count)
{
    af_backup_t *backups = count? (af_backup_t *) calloc (count, sizeof (af_backup_t)): NULL;
    assert (backups || !count);
    free (self->backups);
    self->backups = backups;
    self->backup_count = count;
}

void
af_msg_set_device_count (af_msg_t *self, uint32_t count)
{
    af_device_t *devices = count? (af_device_t *) calloc (count, sizeof (af_device_t)): NULL;
    assert (devices || !count);
    free (self->devices);
    self->devices = devices;
    self->device_count = count;
}

af_msg_t *
af_msg_error (int code, const uint8_t *rid, const char *format, ...)
{
    af_msg_t *self = af_msg_new (AF_MSG_ERROR);
    if (!self)
        return NULL;
    self->code = (uint32_t) code;
    if (rid) {
        memcpy (self->rid, rid, AF_ID_SIZE);
        self->has_rid = true;
    }
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof self->reason, format, args);
    va_end (args);
    if (code == AF_E_VERSION) {
        for (uint32_t v = AF_PROTO_VERSION_MIN; v <= AF_PROTO_VERSION_MAX && self->version_count < 4; v++)
            self->versions [self->version_count++] = v;
    }
    return self;
}

//  --------------------------------------------------------------------------
//  Encoding

//  Room for n more bytes at the end of the buffer (asserts on OOM, as
//  czmq does: an encoder that cannot grow cannot say anything useful)
static inline uint8_t *
s_pk_room (pk_t *pk, size_t n)
{
    if (pk->size + n > pk->alloc) {
        size_t alloc = pk->alloc? 2 * pk->alloc: 4096;
        while (alloc < pk->size + n)
            alloc *= 2;
        pk->data = (uint8_t *) realloc (pk->data, alloc);
        assert (pk->data);
        pk->alloc = alloc;
    }
    uint8_t *at = pk->data + pk->size;
    pk->size += n;
    return at;
}

static inline void
s_pk_be (uint8_t *p, uint64_t value, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, value >>= 8)
        p [i] = (uint8_t) value;
}

//  A header: one byte for small counts (fix | n), else a tag and 1, 2 or 4
//  bytes of count; tag8 0 means the type has no 1-byte form
static inline void
s_pk_head (pk_t *pk, uint32_t n, uint8_t fix, uint32_t fix_max, uint8_t tag8, uint8_t tag16, uint8_t tag32)
{
    if (fix && n <= fix_max)
        *s_pk_room (pk, 1) = (uint8_t) (fix | n);
    else
    if (tag8 && n < 256) {
        uint8_t *p = s_pk_room (pk, 2);
        p [0] = tag8;
        p [1] = (uint8_t) n;
    }
    else
    if (n < 65536) {
        uint8_t *p = s_pk_room (pk, 3);
        p [0] = tag16;
        s_pk_be (p + 1, n, 2);
    }
    else {
        uint8_t *p = s_pk_room (pk, 5);
        p [0] = tag32;
        s_pk_be (p + 1, n, 4);
    }
}

static inline void
s_pk_map (pk_t *pk, uint32_t n)
{
    s_pk_head (pk, n, 0x80, 15, 0, 0xde, 0xdf);
}

static inline void
s_pk_array (pk_t *pk, uint32_t n)
{
    s_pk_head (pk, n, 0x90, 15, 0, 0xdc, 0xdd);
}

static inline void
s_pk_uint (pk_t *pk, uint64_t value)
{
    if (value < 128)
        *s_pk_room (pk, 1) = (uint8_t) value;
    else {
        int bytes = value < 256? 1: value < 65536? 2: value <= UINT32_MAX? 4: 8;
        uint8_t *p = s_pk_room (pk, 1 + (size_t) bytes);
        p [0] = bytes == 1? 0xcc: bytes == 2? 0xcd: bytes == 4? 0xce: 0xcf;
        s_pk_be (p + 1, value, bytes);
    }
}

static inline void
s_pk_bool (pk_t *pk, bool value)
{
    *s_pk_room (pk, 1) = value? 0xc3: 0xc2;
}

static inline void
s_pack_str (pk_t *pk, const char *text)
{
    size_t len = strlen (text);
    s_pk_head (pk, (uint32_t) len, 0xa0, 31, 0xd9, 0xda, 0xdb);
    memcpy (s_pk_room (pk, len), text, len);
}

static inline void
s_pk_key (pk_t *pk, const field_t *f)
{
    //  Keys are at most AF_MAX_KEY (32) bytes: fixstr, or str8 for 32
    s_pk_head (pk, f->keylen, 0xa0, 31, 0xd9, 0xda, 0xdb);
    memcpy (s_pk_room (pk, f->keylen), f->key, f->keylen);
}

static inline void
s_pk_bin (pk_t *pk, const void *data, size_t size)
{
    s_pk_head (pk, (uint32_t) size, 0, 0, 0xc4, 0xc5, 0xc6);
    if (size)
        memcpy (s_pk_room (pk, size), data, size);
}

static bool
s_field_empty (const field_t *f, const uint8_t *base)
{
    const void *p = base + f->offset;
    switch (f->type) {
        case T_STR:
        case T_PROG:    return *(const char *) p == 0;
        case T_U32:     return *(const uint32_t *) p == 0;
        case T_U64:     return *(const uint64_t *) p == 0;
        case T_BOOL:    return !*(const bool *) p;
        case T_STRS:
        case T_STRSP:
        case T_U32S:
        case T_BIN:
        case T_BINS:
        case T_MAPS:
        case T_ON:
        case T_VERSIONS: return *(const uint32_t *) (base + f->aux) == 0;
        case T_DEVICE:
        case T_PACKAGE: return !*(const bool *) (base + f->aux);
    }
    return true;
}

static void s_encode_map (pk_t *pk, const field_t *fields, const uint8_t *base);

static void
s_encode_field (pk_t *pk, const field_t *f, const uint8_t *base)
{
    const uint8_t *p = base + f->offset;
    s_pk_key (pk, f);
    switch (f->type) {
        case T_STR:
        case T_PROG:
            s_pack_str (pk, (const char *) p);
            break;
        case T_U32:
            s_pk_uint (pk, *(const uint32_t *) p);
            break;
        case T_U64:
            s_pk_uint (pk, *(const uint64_t *) p);
            break;
        case T_BOOL:
            s_pk_bool (pk, *(const bool *) p);
            break;
        case T_STRS:
        case T_STRSP: {
            uint32_t count = *(const uint32_t *) (base + f->aux);
            const char *strings = f->type == T_STRS? (const char *) p: *(char * const *) p;
            s_pk_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                s_pack_str (pk, strings + i * f->size);
            break;
        }
        case T_U32S: {
            uint32_t count = *(const uint32_t *) (base + f->aux);
            s_pk_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                s_pk_uint (pk, ((const uint32_t *) p) [i]);
            break;
        }
        case T_DEVICE:
            s_encode_map (pk, s_device_fields, p);
            break;
        case T_PACKAGE:
            s_encode_map (pk, s_package_fields, p);
            break;
        case T_MAPS: {
            uint32_t count = *(const uint32_t *) (base + f->aux);
            const uint8_t *elements = *(uint8_t * const *) p;
            s_pk_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                s_encode_map (pk, f->sub, elements + i * f->size);
            break;
        }
        case T_ON:
        case T_VERSIONS: {
            uint32_t count = *(const uint32_t *) (base + f->aux);
            const af_holder_t *holders = *(af_holder_t * const *) p;
            s_pk_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                if (f->type == T_ON)
                    s_pk_uint (pk, holders [i].device);
                else
                    s_pack_str (pk, holders [i].version_name);
            break;
        }
        case T_BIN: {
            uint32_t size = *(const uint32_t *) (base + f->aux);
            s_pk_bin (pk, *(uint8_t * const *) p, size);
            break;
        }
        case T_BINS: {
            uint32_t count = *(const uint32_t *) (base + f->aux);
            const uint8_t *bins = *(uint8_t * const *) p;
            s_pk_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                s_pk_bin (pk, bins + i * f->size, f->size);
            break;
        }
    }
}

static void
s_encode_map (pk_t *pk, const field_t *fields, const uint8_t *base)
{
    //  Which fields go, decided once (a table has at most 32 fields)
    bool present [32];
    uint32_t count = 0, n = 0;
    for (const field_t *f = fields; f->key; f++, n++) {
        assert (n < 32);
        present [n] = f->required || !s_field_empty (f, base);
        count += present [n];
    }
    s_pk_map (pk, count);
    n = 0;
    for (const field_t *f = fields; f->key; f++, n++)
        if (present [n])
            s_encode_field (pk, f, base);
}

zframe_t *
af_msg_encode (af_msg_t *self)
{
    assert (self);
    assert (self->id > AF_MSG_NONE && self->id < AF_MSG_COUNT);
    const command_t *command = &s_commands [self->id];
    const uint8_t *base = (const uint8_t *) self;

    for (const field_t *f = command->fields; f->key; f++)
        if (f->required && s_field_empty (f, base) && f->type != T_U32
        &&  f->type != T_U64 && f->type != T_MAPS && f->type != T_BOOL && f->type != T_BIN
        &&  f->type != T_ON && f->type != T_VERSIONS) {
            zsys_error ("af_msg: %s without required field '%s'", command->name, f->key);
            return NULL;
        }
    scratch_t *scratch = s_scratch ();
    if (!scratch)
        return NULL;
    pk_t *pk = &scratch->buffer;
    size_t count = 2 + (self->has_rid? 1: 0);
    for (const field_t *f = command->fields; f->key; f++)
        if (f->required || !s_field_empty (f, base))
            count++;
    s_pk_map (pk, (uint32_t) count);
    s_pack_str (pk, "v");
    s_pk_uint (pk, self->version);
    s_pack_str (pk, "cmd");
    s_pack_str (pk, command->name);
    if (self->has_rid) {
        s_pack_str (pk, "rid");
        s_pk_bin (pk, self->rid, AF_ID_SIZE);
    }
    for (const field_t *f = command->fields; f->key; f++)
        if (f->required || !s_field_empty (f, base))
            s_encode_field (pk, f, base);

    zframe_t *frame = zframe_new (pk->data, pk->size);
    s_scratch_buffer_done (scratch);
    return frame;
}

int
af_msg_send (af_msg_t *self, zsock_t *sock, zframe_t *routing_id)
{
    zframe_t *frame = af_msg_encode (self);
    if (!frame)
        return -1;
    //  zframe_send keeps the frame when sending fails: free it here
    if ((routing_id && zframe_send (&routing_id, sock, ZFRAME_MORE | ZFRAME_REUSE))
    ||  zframe_send (&frame, sock, 0)) {
        zframe_destroy (&frame);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Stage 1: bounded scan of raw msgpack

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t elements;
    char *err;
    size_t errlen;
} scan_t;

static uint64_t
s_be (const uint8_t *p, int bytes)
{
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++)
        value = value << 8 | p [i];
    return value;
}

//  Skip n bytes of payload; fails if fewer remain
static int
s_skip (scan_t *s, uint64_t n)
{
    if (n > s->size - s->pos) {
        snprintf (s->err, s->errlen, "declared length %llu exceeds the %zu bytes that remain",
                  (unsigned long long) n, s->size - s->pos);
        return -1;
    }
    s->pos += (size_t) n;
    return 0;
}

static int
s_scan (scan_t *s, int depth)
{
    if (s->pos >= s->size) {
        snprintf (s->err, s->errlen, "truncated message");
        return -1;
    }
    uint8_t b = s->data [s->pos++];
    uint64_t items = 0;                 //  nested values to scan
    bool container = false;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if ((b & 0xf0) == 0x80) { items = 2 * (b & 0x0f); container = true; }
    else
    if ((b & 0xf0) == 0x90) { items = b & 0x0f; container = true; }
    else
    if ((b & 0xe0) == 0xa0)
        return s_skip (s, b & 0x1f);
    else {
        static const int lenbytes [] = {
            //  c4 c5 c6  c7 c8 c9  ca cb  cc cd ce cf  d0 d1 d2 d3
                1, 2, 4,  1, 2, 4,  0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            //  d4 d5 d6 d7 d8  d9 da db  dc dd  de df
                0, 0, 0, 0, 0,  1, 2, 4,  2, 4,  2, 4 };
        static const int fixed [] = {
                0, 0, 0,  1, 1, 1,  4, 8,  1, 2, 4, 8,  1, 2, 4, 8,
                2, 3, 5, 9, 17, 0, 0, 0,  0, 0,  0, 0 };
        if (b == 0xc1) {
            snprintf (s->err, s->errlen, "reserved byte 0xc1");
            return -1;
        }
        int index = b - 0xc4;
        int nlen = lenbytes [index];
        if (nlen == 0)
            return s_skip (s, (uint64_t) fixed [index]);
        if ((size_t) nlen > s->size - s->pos) {
            snprintf (s->err, s->errlen, "truncated message");
            return -1;
        }
        uint64_t n = s_be (s->data + s->pos, nlen);
        s->pos += (size_t) nlen;
        if (b >= 0xdc) {                //  array16/32, map16/32
            container = true;
            items = b >= 0xde? 2 * n: n;
        }
        else
            return s_skip (s, n + (uint64_t) fixed [index]);   //  ext adds a type byte
    }
    assert (container);
    if (depth >= AF_MAX_DEPTH) {
        snprintf (s->err, s->errlen, "nesting deeper than %d", AF_MAX_DEPTH);
        return -1;
    }
    //  Every value takes at least one byte: a count larger than what
    //  remains is a lie, caught before anything is allocated for it.
    if (items > s->size - s->pos) {
        snprintf (s->err, s->errlen, "declared %llu entries but only %zu bytes remain",
                  (unsigned long long) items, s->size - s->pos);
        return -1;
    }
    s->elements += (size_t) items;
    if (s->elements > AF_MAX_ELEMENTS) {
        snprintf (s->err, s->errlen, "more than %d entries", AF_MAX_ELEMENTS);
        return -1;
    }
    for (uint64_t i = 0; i < items; i++)
        if (s_scan (s, depth + 1))
            return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Stage 3: object tree to struct

static int
s_copy_str (const msgpack_object *o, char *buf, size_t size, const char *key,
            char *err, size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        snprintf (err, errlen, "field '%s': expected a string", key);
        return -1;
    }
    uint32_t len = o->via.str.size;
    if (len >= size) {
        snprintf (err, errlen, "field '%s': longer than %zu bytes", key, size - 1);
        return -1;
    }
    //  msgpack-c may give an empty string a NULL pointer (see s_decode_map)
    if (len && (memchr (o->via.str.ptr, 0, len)
            ||  !af_utf8_valid ((const uint8_t *) o->via.str.ptr, len))) {
        snprintf (err, errlen, "field '%s': not valid UTF-8 text", key);
        return -1;
    }
    if (len)
        memcpy (buf, o->via.str.ptr, len);
    buf [len] = 0;
    return 0;
}

static int
s_get_uint (const msgpack_object *o, uint64_t min, uint64_t max, uint64_t *value,
            const char *key, char *err, size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  o->via.u64 < min || o->via.u64 > max) {
        snprintf (err, errlen, "field '%s': expected an integer %llu..%llu", key,
                  (unsigned long long) min, (unsigned long long) max);
        return -1;
    }
    *value = o->via.u64;
    return 0;
}

static int s_decode_map (const msgpack_object *o, const field_t *fields, uint8_t *base,
                         const char *what, char *err, size_t errlen);

//  A grouped diff's program: 'on' and 'versions' are two views of its
//  holders; whichever comes first makes them, the other must agree
static int
s_decode_holders (const field_t *f, const msgpack_object *o, af_prog_t *prog, char *err, size_t errlen)
{
    uint32_t count = o->via.array.size;
    if (!prog->holders)
        af_prog_set_holder_count (prog, count);
    else
    if (prog->holder_count != count) {
        snprintf (err, errlen, "program '%s': 'on' and 'versions' differ in length", prog->program);
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *item = &o->via.array.ptr [i];
        uint64_t value;
        if (f->type == T_ON) {
            if (s_get_uint (item, 0, AF_MAX_DEVICES - 1, &value, f->key, err, errlen))
                return -1;
            prog->holders [i].device = (uint32_t) value;
        }
        else
        if (s_copy_str (item, prog->holders [i].version_name, sizeof prog->holders [i].version_name,
                        f->key, err, errlen))
            return -1;
    }
    if (f->type == T_ON)
        prog->has_on = true;
    return 0;
}

//  An array field: its count checked against the field's bounds, then its
//  elements (strings, numbers, or maps into a new array of structs)
static int
s_decode_array (const field_t *f, const msgpack_object *o, uint8_t *base, char *err, size_t errlen)
{
    uint8_t *p = base + f->offset;
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (err, errlen, "field '%s': expected an array", f->key);
        return -1;
    }
    uint32_t count = o->via.array.size;
    if (count < f->min || count > f->max) {
        snprintf (err, errlen, "field '%s': %s than %llu entries", f->key, count < f->min? "fewer": "more",
                  (unsigned long long) (count < f->min? f->min: f->max));
        return -1;
    }
    if (f->type == T_ON || f->type == T_VERSIONS)
        return s_decode_holders (f, o, (af_prog_t *) base, err, errlen);
    if (f->type == T_MAPS) {
        uint8_t *elements = count? (uint8_t *) calloc (count, f->size): NULL;
        if (count && !elements) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        *(uint8_t **) p = elements;
        *(uint32_t *) (base + f->aux) = count;
        for (uint32_t i = 0; i < count; i++)
            if (s_decode_map (&o->via.array.ptr [i], f->sub, elements + i * f->size, f->key, err, errlen))
                return -1;
        return 0;
    }
    if (f->type == T_BINS) {
        uint8_t *bins = count? (uint8_t *) calloc (count, f->size): NULL;
        if (count && !bins) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        *(uint8_t **) p = bins;
        *(uint32_t *) (base + f->aux) = count;
        for (uint32_t i = 0; i < count; i++) {
            const msgpack_object *item = &o->via.array.ptr [i];
            if (item->type != MSGPACK_OBJECT_BIN || item->via.bin.size != f->size) {
                snprintf (err, errlen, "field '%s': entry %u is not %zu bytes of binary", f->key, i, f->size);
                return -1;
            }
            memcpy (bins + i * f->size, item->via.bin.ptr, f->size);
        }
        return 0;
    }
    char *strings = (char *) p;
    if (f->type == T_STRSP) {
        strings = count? (char *) calloc (count, f->size): NULL;
        assert (strings || !count);
        *(char **) p = strings;
    }
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *item = &o->via.array.ptr [i];
        uint64_t value;
        if (f->type == T_STRS || f->type == T_STRSP) {
            if (s_copy_str (item, strings + i * f->size, f->size, f->key, err, errlen))
                return -1;
        }
        else {
            if (s_get_uint (item, 0, UINT32_MAX, &value, f->key, err, errlen))
                return -1;
            ((uint32_t *) p) [i] = (uint32_t) value;
        }
    }
    *(uint32_t *) (base + f->aux) = count;
    return 0;
}

static int
s_decode_field (const field_t *f, const msgpack_object *o, uint8_t *base, char *err, size_t errlen)
{
    uint8_t *p = base + f->offset;
    uint64_t value;
    switch (f->type) {
        case T_STR:
            return s_copy_str (o, (char *) p, f->size, f->key, err, errlen);
        case T_PROG: {
            //  Program IDs become file names on nodes: both ends refuse
            //  one that is not an ID, naming the field
            char why [128];
            if (s_copy_str (o, (char *) p, f->size, f->key, err, errlen))
                return -1;
            if (af_program_check ((const char *) p, why, sizeof why) != AF_OK) {
                snprintf (err, errlen, "field '%s': %s", f->key, why);
                return -1;
            }
            return 0;
        }
        case T_U32:
            if (s_get_uint (o, f->min, f->max, &value, f->key, err, errlen))
                return -1;
            *(uint32_t *) p = (uint32_t) value;
            return 0;
        case T_U64:
            if (s_get_uint (o, 0, UINT64_MAX, &value, f->key, err, errlen))
                return -1;
            *(uint64_t *) p = value;
            return 0;
        case T_BOOL:
            if (o->type != MSGPACK_OBJECT_BOOLEAN) {
                snprintf (err, errlen, "field '%s': expected true or false", f->key);
                return -1;
            }
            *(bool *) p = o->via.boolean;
            return 0;
        case T_STRS:
        case T_STRSP:
        case T_U32S:
        case T_MAPS:
        case T_BINS:
        case T_ON:
        case T_VERSIONS:
            return s_decode_array (f, o, base, err, errlen);
        case T_BIN: {
            if (o->type != MSGPACK_OBJECT_BIN) {
                snprintf (err, errlen, "field '%s': expected binary", f->key);
                return -1;
            }
            if (o->via.bin.size < f->min) {
                snprintf (err, errlen, "field '%s': fewer than %llu bytes", f->key,
                          (unsigned long long) f->min);
                return -1;
            }
            if (o->via.bin.size > f->max) {
                snprintf (err, errlen, "field '%s': more than %llu bytes", f->key,
                          (unsigned long long) f->max);
                return -1;
            }
            uint8_t *copy = (uint8_t *) malloc (o->via.bin.size? o->via.bin.size: 1);
            if (!copy) {
                snprintf (err, errlen, "out of memory");
                return -1;
            }
            if (o->via.bin.size)        //  an empty one may have a NULL pointer
                memcpy (copy, o->via.bin.ptr, o->via.bin.size);
            free (*(uint8_t **) p);
            *(uint8_t **) p = copy;
            *(uint32_t *) (base + f->aux) = o->via.bin.size;
            return 0;
        }
        case T_DEVICE:
        case T_PACKAGE:
            if (s_decode_map (o, f->type == T_DEVICE? s_device_fields: s_package_fields,
                              p, f->key, err, errlen))
                return -1;
            *(bool *) (base + f->aux) = true;
            return 0;
    }
    return -1;
}

//  Decode a map into base using the field table; envelope keys v/cmd/rid
//  are skipped at top level (what == NULL).
static int
s_decode_map (const msgpack_object *o, const field_t *fields, uint8_t *base,
              const char *what, char *err, size_t errlen)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        snprintf (err, errlen, "field '%s': expected a map", what? what: "message");
        return -1;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size > AF_MAX_KEY) {
            snprintf (err, errlen, "%s: map keys must be strings of at most %d bytes",
                      what? what: "message", AF_MAX_KEY);
            return -1;
        }
        const char *key = kv->key.via.str.ptr;
        uint32_t keylen = kv->key.via.str.size;
        //  msgpack-c gives an empty string a NULL pointer when nothing with
        //  a payload came before it in the buffer ({"":1, ...}): an empty
        //  key is checked by its length alone, never passed to memchr
        if (keylen && (!af_utf8_valid ((const uint8_t *) key, keylen) || memchr (key, 0, keylen))) {
            snprintf (err, errlen, "%s: map keys must be UTF-8 text", what? what: "message");
            return -1;
        }
        int index = 0;
        const field_t *f = fields;
        for (; f->key; f++, index++)
            if (strlen (f->key) == keylen && memcmp (f->key, key, keylen) == 0)
                break;
        if (!f->key)
            continue;               //  unknown keys are ignored (SPEC: extensibility)
        if (seen & (1ULL << index)) {
            snprintf (err, errlen, "field '%s' appears twice", f->key);
            return -1;
        }
        seen |= 1ULL << index;
        if (s_decode_field (f, &kv->val, base, err, errlen))
            return -1;
    }
    int index = 0;
    for (const field_t *f = fields; f->key; f++, index++)
        if (f->required && !(seen & (1ULL << index))) {
            snprintf (err, errlen, "field '%s' is missing", f->key);
            return -1;
        }
    return 0;
}

static const msgpack_object *
s_map_get (const msgpack_object *map, const char *key)
{
    size_t keylen = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == keylen
        &&  memcmp (kv->key.via.str.ptr, key, keylen) == 0)
            return &kv->val;
    }
    return NULL;
}

//  A grouped SYNC_DIFF holds together: every program with versions says
//  on which devices, and every device it names is in the table
static int
s_check_grouped (af_msg_t *self, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < self->prog_count; i++) {
        const af_prog_t *prog = &self->progs [i];
        if (prog->holder_count && !prog->has_on) {
            snprintf (err, errlen, "program '%s': 'versions' without 'on'", prog->program);
            return -1;
        }
        for (uint32_t k = 0; k < prog->holder_count; k++)
            if (prog->holders [k].device >= self->device_count) {
                snprintf (err, errlen, "program '%s': device %u is not in 'devices' (%u)", prog->program,
                          prog->holders [k].device, self->device_count);
                return -1;
            }
    }
    return 0;
}

int
af_msg_decode (const uint8_t *data, size_t size, af_msg_t **msg_p,
               char *err, size_t errlen, uint8_t *rid_out, bool *has_rid)
{
    assert (msg_p);
    *msg_p = NULL;
    if (has_rid)
        *has_rid = false;
    if (size > AF_MAX_MSG) {
        snprintf (err, errlen, "message of %zu bytes exceeds the limit of %d", size, AF_MAX_MSG);
        return AF_E_TOO_BIG;
    }
    if (size == 0) {
        snprintf (err, errlen, "empty message");
        return AF_E_MALFORMED;
    }
    scan_t scan = { data, size, 0, 0, err, errlen };
    if (s_scan (&scan, 0))
        return AF_E_MALFORMED;
    if (scan.pos != size) {
        snprintf (err, errlen, "%zu bytes of garbage after the message", size - scan.pos);
        return AF_E_MALFORMED;
    }
    scratch_t *scratch = s_scratch ();
    if (!scratch) {
        snprintf (err, errlen, "out of memory");
        return AF_E_INTERNAL;
    }
    msgpack_zone *zone = scratch->zone;
    int code = AF_E_MALFORMED;
    af_msg_t *self = NULL;
    msgpack_object root;
    size_t offset = 0;
    if (msgpack_unpack ((const char *) data, size, &offset, zone, &root) != MSGPACK_UNPACK_SUCCESS) {
        snprintf (err, errlen, "msgpack decoding failed");
        goto done;
    }
    if (root.type != MSGPACK_OBJECT_MAP) {
        snprintf (err, errlen, "message must be a map");
        goto done;
    }
    //  rid first (its first occurrence), so that even a rejected message
    //  gets an answer it can match
    const msgpack_object *rid = s_map_get (&root, "rid");
    if (rid && rid->type == MSGPACK_OBJECT_BIN && rid->via.bin.size == AF_ID_SIZE
    &&  rid_out && has_rid) {
        memcpy (rid_out, rid->via.bin.ptr, AF_ID_SIZE);
        *has_rid = true;
    }
    //  The envelope keys may appear once each (the field tables catch
    //  repeats of every other known key)
    for (int k = 0; k < 3; k++) {
        static const char *envelope [] = { "v", "cmd", "rid" };
        int seen = 0;
        size_t keylen = strlen (envelope [k]);
        for (uint32_t i = 0; i < root.via.map.size; i++) {
            const msgpack_object *key = &root.via.map.ptr [i].key;
            seen += key->type == MSGPACK_OBJECT_STR && key->via.str.size == keylen
                 && memcmp (key->via.str.ptr, envelope [k], keylen) == 0;
        }
        if (seen > 1) {
            snprintf (err, errlen, "field '%s' appears twice", envelope [k]);
            goto done;
        }
    }
    const msgpack_object *version = s_map_get (&root, "v");
    if (!version || version->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf (err, errlen, "field 'v' (protocol version) is missing or not an integer");
        goto done;
    }
    if (version->via.u64 < AF_PROTO_VERSION_MIN || version->via.u64 > AF_PROTO_VERSION_MAX) {
        snprintf (err, errlen, "protocol version %llu not supported; this peer speaks %d..%d",
                  (unsigned long long) version->via.u64, AF_PROTO_VERSION_MIN, AF_PROTO_VERSION_MAX);
        code = AF_E_VERSION;
        goto done;
    }
    if (rid && !(rid->type == MSGPACK_OBJECT_BIN && rid->via.bin.size == AF_ID_SIZE)) {
        snprintf (err, errlen, "field 'rid': expected %d bytes of binary", AF_ID_SIZE);
        goto done;
    }
    const msgpack_object *cmd = s_map_get (&root, "cmd");
    char name [32];
    if (!cmd || s_copy_str (cmd, name, sizeof name, "cmd", err, errlen)) {
        if (!cmd)
            snprintf (err, errlen, "field 'cmd' is missing");
        goto done;
    }
    af_msg_id_t id = AF_MSG_NONE;
    for (int i = AF_MSG_NONE + 1; i < AF_MSG_COUNT; i++)
        if (strcmp (s_commands [i].name, name) == 0)
            id = (af_msg_id_t) i;
    if (id == AF_MSG_NONE) {
        snprintf (err, errlen, "unknown command '%s'", name);
        code = AF_E_UNKNOWN_COMMAND;
        goto done;
    }
    self = af_msg_new (id);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        code = AF_E_INTERNAL;
        goto done;
    }
    self->version = (uint32_t) version->via.u64;
    if (rid) {
        memcpy (self->rid, rid->via.bin.ptr, AF_ID_SIZE);
        self->has_rid = true;
    }
    if (s_decode_map (&root, s_commands [id].fields, (uint8_t *) self, NULL, err, errlen)
    ||  (id == AF_MSG_SYNC_DIFF && s_check_grouped (self, err, errlen))) {
        af_msg_destroy (&self);
        goto done;
    }
    code = AF_OK;
    *msg_p = self;
done:
    msgpack_zone_clear (zone);
    return code;
}

static zframe_t *
s_pack_map (const field_t *fields, const void *base)
{
    pk_t pk = { NULL, 0, 0 };
    s_encode_map (&pk, fields, (const uint8_t *) base);
    zframe_t *frame = zframe_new (pk.data, pk.size);
    free (pk.data);
    return frame;
}

//  Decode one map with the same bounds as a message (it is nested once
//  fewer times than in a message, hence the starting depth).
static int
s_unpack_map (const uint8_t *data, size_t size, const field_t *fields, void *base, size_t base_size,
              const char *what, char *err, size_t errlen)
{
    memset (base, 0, base_size);
    scan_t scan = { data, size, 0, 0, err, errlen };
    if (size > AF_MAX_MSG || s_scan (&scan, AF_MAX_DEPTH - 2) || scan.pos != size) {
        snprintf (err, errlen, "%s record is malformed", what);
        return -1;
    }
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, 1024)) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    msgpack_object root;
    size_t offset = 0;
    int rc = -1;
    if (msgpack_unpack ((const char *) data, size, &offset, &zone, &root) == MSGPACK_UNPACK_SUCCESS)
        rc = s_decode_map (&root, fields, (uint8_t *) base, what, err, errlen);
    else
        snprintf (err, errlen, "%s record is malformed", what);
    msgpack_zone_destroy (&zone);
    return rc;
}

zframe_t *
af_device_pack (const af_device_t *device)
{
    return s_pack_map (s_device_fields, device);
}

int
af_device_unpack (const uint8_t *data, size_t size, af_device_t *device, char *err, size_t errlen)
{
    return s_unpack_map (data, size, s_device_fields, device, sizeof *device, "device", err, errlen)?
           AF_E_MALFORMED: AF_OK;
}

zframe_t *
af_package_pack (const af_package_t *package)
{
    return s_pack_map (s_package_fields, package);
}

int
af_package_unpack (const uint8_t *data, size_t size, af_package_t *package, char *err, size_t errlen)
{
    return s_unpack_map (data, size, s_package_fields, package, sizeof *package, "package", err, errlen)?
           AF_E_MALFORMED: AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

static af_msg_t *
s_roundtrip (af_msg_t *msg)
{
    zframe_t *frame = af_msg_encode (msg);
    assert (frame);
    af_msg_t *copy = NULL;
    char err [256];
    int rc = af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL);
    if (rc != AF_OK)
        printf ("roundtrip of %s failed: %s\n", af_msg_command_name (msg->id), err);
    assert (rc == AF_OK);
    zframe_destroy (&frame);
    return copy;
}

static int
s_decode_bytes (const void *data, size_t size, char *err, size_t errlen)
{
    af_msg_t *msg = NULL;
    int rc = af_msg_decode ((const uint8_t *) data, size, &msg, err, errlen, NULL, NULL);
    af_msg_destroy (&msg);
    return rc;
}

//  Encode msg, then check msgpack-c packs the same object to the same bytes:
//  the encoder writes what msgpack-c would, shortest forms included
static void
s_test_same_as_msgpack (af_msg_t *msg)
{
    zframe_t *frame = af_msg_encode (msg);
    assert (frame);
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    msgpack_object object;
    size_t offset = 0;
    assert (msgpack_unpack ((const char *) zframe_data (frame), zframe_size (frame), &offset, &zone, &object)
            == MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, object);
    assert (buffer.size == zframe_size (frame) && memcmp (buffer.data, zframe_data (frame), buffer.size) == 0);
    msgpack_sbuffer_destroy (&buffer);
    msgpack_zone_destroy (&zone);
    zframe_destroy (&frame);
}

//  Every command round-trips with its fields
static void
s_test_roundtrip_fields (void)
{
    af_msg_t *msg = af_msg_new (AF_MSG_LOGIN);
    af_msg_set_rid_random (msg);
    strcpy (msg->account, "ana");
    strcpy (msg->password, "correct horse");
    strcpy (msg->device.platform, "android");
    strcpy (msg->device.os_version, "11");
    msg->device.sdk = 30;
    strcpy (msg->device.model, "Pixel 5");
    msg->device.abi_count = 2;
    strcpy (msg->device.abis [0], "arm64-v8a");
    strcpy (msg->device.abis [1], "armeabi-v7a");
    msg->device.screen_w = 1080;
    msg->has_device = true;
    af_msg_t *copy = s_roundtrip (msg);
    assert (copy->id == AF_MSG_LOGIN);
    assert (memcmp (copy->rid, msg->rid, AF_ID_SIZE) == 0 && copy->has_rid);
    assert (strcmp (copy->password, "correct horse") == 0);
    assert (copy->has_device && memcmp (&copy->device, &msg->device, sizeof msg->device) == 0);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_DEVICE_LIST);
    strcpy (msg->account, "ana");
    af_msg_set_device_count (msg, 3);
    for (int i = 0; i < 3; i++) {
        snprintf (msg->devices [i].name, sizeof msg->devices [i].name, "device %d", i);
        msg->devices [i].online = i == 1;
        msg->devices [i].last_seen = 1700000000000ULL + (uint64_t) i;
    }
    copy = s_roundtrip (msg);
    assert (copy->device_count == 3);
    assert (memcmp (copy->devices, msg->devices, 3 * sizeof (af_device_t)) == 0);
    af_msg_destroy (&copy);
    //  An empty device list is still a list
    af_msg_set_device_count (msg, 0);
    copy = s_roundtrip (msg);
    assert (copy->device_count == 0 && copy->devices == NULL);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);

    //  REPL's prevEpoch and REPL_ACK's matched, diverged (SPEC 5.37); absent:
    //  0 and false, what a broker before them sends
    msg = af_msg_new (AF_MSG_REPL);
    msg->shard = 7;
    msg->epoch = 912;
    msg->seq = 52001;
    msg->prev_epoch = 911;
    copy = s_roundtrip (msg);
    assert (copy->shard == 7 && copy->epoch == 912 && copy->seq == 52001 && copy->prev_epoch == 911);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_REPL_ACK);
    msg->epoch = 912;
    msg->seq = 52000;
    msg->diverged = true;
    copy = s_roundtrip (msg);
    assert (copy->seq == 52000 && copy->diverged && !copy->matched);
    af_msg_destroy (&copy);
    msg->diverged = false;
    msg->matched = true;
    copy = s_roundtrip (msg);
    assert (copy->matched && !copy->diverged);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_RESOLVED);
    strcpy (msg->program, "weixin");
    msg->fit = AF_FIT_PACKAGE;
    msg->has_package = true;
    strcpy (msg->package.version_name, "8.0.48");
    msg->package.version_code = 1ULL << 40;
    msg->package.size = 123456789;
    copy = s_roundtrip (msg);
    assert (memcmp (&copy->package, &msg->package, sizeof msg->package) == 0);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_NOTIFY);
    strcpy (msg->device_id, "00112233445566778899aabbccddeeff");
    strcpy (msg->kind, "text");
    assert (af_msg_set_body (msg, "hello\0world", 11) == 0);
    copy = s_roundtrip (msg);
    assert (copy->body_size == 11 && memcmp (copy->body, "hello\0world", 11) == 0);
    assert (strcmp (copy->kind, "text") == 0);
    assert (!copy->with_data && !*copy->ask);
    af_msg_destroy (&copy);
    //  A GET's notice asking for the user data too (5.47)
    strcpy (msg->ask, "ffeeddccbbaa99887766554433221100");
    msg->with_data = true;
    copy = s_roundtrip (msg);
    assert (copy->with_data && streq (copy->ask, msg->ask));
    af_msg_destroy (&copy);
    assert (af_msg_set_body (msg, NULL, AF_MAX_BODY + 1) == -1);
    af_msg_destroy (&msg);
}

//  Push: targets and attestations as arrays, results as an array of maps
static void
s_test_roundtrip_push (void)
{
    af_msg_t *msg = af_msg_new (AF_MSG_PUSH);
    assert (msg);                       //  for GCC: -Warray-bounds sees the NULL path
    af_msg_t *copy;
    strcpy (msg->program, "weixin");
    af_msg_add_target (msg, "00112233445566778899aabbccddeeff");
    af_msg_add_target (msg, "ffeeddccbbaa99887766554433221100");
    af_msg_add_attest (msg, "malware_scan=clean");
    msg->attest_time = 1700000000123ULL;
    msg->with_data = true;
    strcpy (msg->node_version, "0.2.0");
    copy = s_roundtrip (msg);
    assert (copy->target_count == 2 && streq (copy->targets [1], msg->targets [1]));
    assert (copy->attest_count == 1 && streq (copy->attest [0], "malware_scan=clean"));
    assert (copy->attest_time == msg->attest_time && copy->with_data);
    assert (streq (copy->node_version, "0.2.0"));
    assert (!*copy->ask);
    af_msg_destroy (&copy);
    //  The user data a GET's source sends for its ask (5.47)
    strcpy (msg->ask, "00112233445566778899aabbccddeeff");
    copy = s_roundtrip (msg);
    assert (streq (copy->ask, msg->ask));
    af_msg_destroy (&copy);
    msg->ask [0] = 0;
    msg->target_count = 0;              //  at least one target
    zframe_t *frame = af_msg_encode (msg);
    assert (frame == NULL);
    af_msg_destroy (&msg);

    msg = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    strcpy (msg->push_id, "aa");
    strcpy (msg->program, "weixin");
    af_msg_set_result_count (msg, 2);
    strcpy (msg->results [0].device_id, "d0");
    strcpy (msg->results [0].state, "offered");
    strcpy (msg->results [1].device_id, "d1");
    strcpy (msg->results [1].state, "no-fit");
    strcpy (msg->results [1].reason, "needs Android 10 or later; device runs Android 9");
    copy = s_roundtrip (msg);
    assert (copy->result_count == 2);
    assert (memcmp (copy->results, msg->results, 2 * sizeof (af_target_t)) == 0);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
}

//  Install lists, chunks and errors
static void
s_test_roundtrip_lists_and_chunks (void)
{
    char err [256];
    af_msg_t *msg, *copy;
    zframe_t *frame;
    //  Install lists: an array of app maps
    msg = af_msg_new (AF_MSG_LIST);
    msg->seq = 7;
    af_msg_set_app_count (msg, 2);
    strcpy (msg->apps [0].program, "weixin");
    strcpy (msg->apps [0].version_name, "8.0.48");
    msg->apps [0].version_code = 2480;
    strcpy (msg->apps [1].program, "notes");
    msg->apps [1].at = 1700000000000ULL;
    copy = s_roundtrip (msg);
    assert (copy->seq == 7 && copy->app_count == 2);
    assert (memcmp (copy->apps, msg->apps, 2 * sizeof (af_app_t)) == 0);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);

    //  A chunk carries up to AF_MAX_CHUNK bytes and no more
    msg = af_msg_new (AF_MSG_CHUNK);
    strcpy (msg->hash, "ab");
    msg->offset = 1ULL << 33;
    msg->total = (1ULL << 33) + AF_MAX_CHUNK;
    msg->size = AF_MAX_CHUNK;
    msg->data = (uint8_t *) calloc (1, AF_MAX_CHUNK + 1);
    msg->data_size = AF_MAX_CHUNK;
    copy = s_roundtrip (msg);
    assert (copy->data_size == AF_MAX_CHUNK && copy->offset == msg->offset && !copy->zstd);
    af_msg_destroy (&copy);
    msg->data_size = AF_MAX_CHUNK + 1;
    frame = af_msg_encode (msg);
    assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL)
            == AF_E_MALFORMED && strstr (err, "data"));
    zframe_destroy (&frame);
    msg->data_size = 0;                 //  an empty chunk is refused too
    frame = af_msg_encode (msg);
    assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL)
            == AF_E_MALFORMED && strstr (err, "fewer"));
    zframe_destroy (&frame);
    af_msg_destroy (&msg);

    msg = af_msg_error (AF_E_VERSION, NULL, "nope %d", 7);
    copy = s_roundtrip (msg);
    assert (copy->code == AF_E_VERSION && copy->version_count == 1 && copy->versions [0] == 1);
    assert (strcmp (copy->reason, "nope 7") == 0 && !copy->has_rid);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
}

//  CONTACTS_EVAL and CONTACTS_EVALUATED: an array of 1..1000 bins of
//  exactly 32 bytes each, in order; anything else is refused, naming the
//  field (more entries, none, one of 31 or 33 bytes, a str for a bin)
static void
s_test_contacts_elements (void)
{
    char err [256];
    af_msg_t *msg = af_msg_new (AF_MSG_CONTACTS_EVAL), *copy;
    assert (msg);
    af_msg_set_rid_random (msg);
    af_msg_set_element_count (msg, AF_MAX_CONTACTS_EVAL);
    for (uint32_t i = 0; i < AF_MAX_CONTACTS_EVAL; i++)
        for (int k = 0; k < AF_OPRF_ELEMENT_SIZE; k++)
            msg->elements [i][k] = (uint8_t) (i * 7 + (uint32_t) k);
    copy = s_roundtrip (msg);
    assert (copy->id == AF_MSG_CONTACTS_EVAL && copy->element_count == AF_MAX_CONTACTS_EVAL);
    assert (memcmp (copy->elements, msg->elements, AF_MAX_CONTACTS_EVAL * AF_OPRF_ELEMENT_SIZE) == 0);
    af_msg_destroy (&copy);
    s_test_same_as_msgpack (msg);
    //  Encoded, 1,000 of them fit easily in a message
    zframe_t *frame = af_msg_encode (msg);
    assert (zframe_size (frame) < 40 * 1024);
    zframe_destroy (&frame);

    //  One more than the limit: refused by the decoder
    af_msg_set_element_count (msg, AF_MAX_CONTACTS_EVAL + 1);
    frame = af_msg_encode (msg);
    assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL)
            == AF_E_MALFORMED && strstr (err, "'elements'") && strstr (err, "more than 1000"));
    zframe_destroy (&frame);
    //  None: the encoder refuses to send it, and the decoder to take it
    af_msg_set_element_count (msg, 0);
    assert (af_msg_encode (msg) == NULL);
    uint8_t none [] = { 0x83, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd',
        0xad, 'C', 'O', 'N', 'T', 'A', 'C', 'T', 'S', '_', 'E', 'V', 'A', 'L',
        0xa8, 'e', 'l', 'e', 'm', 'e', 'n', 't', 's', 0x90 };
    assert (s_decode_bytes (none, sizeof none, err, sizeof err) == AF_E_MALFORMED && strstr (err, "fewer"));
    //  Missing altogether
    none [0] = 0x82;
    assert (s_decode_bytes (none, sizeof none - 10, err, sizeof err) == AF_E_MALFORMED && strstr (err, "missing"));
    none [0] = 0x83;
    //  One entry of the wrong size or type
    uint8_t one [sizeof none + 2 + 33];
    memcpy (one, none, sizeof none);
    one [sizeof none - 1] = 0x91;                       //  an array of one
    one [sizeof none] = 0xc4;                           //  bin 8
    for (int size = 31; size <= 33; size++) {
        one [sizeof none + 1] = (uint8_t) size;
        memset (one + sizeof none + 2, 0xab, (size_t) size);
        int rc = s_decode_bytes (one, sizeof none + 2 + (size_t) size, err, sizeof err);
        if (size == AF_OPRF_ELEMENT_SIZE)
            assert (rc == AF_OK);
        else
            assert (rc == AF_E_MALFORMED && strstr (err, "entry 0 is not 32 bytes of binary"));
    }
    one [sizeof none] = 0xd9;                           //  str 8 of 32 bytes: not a bin
    one [sizeof none + 1] = 32;
    memset (one + sizeof none + 2, 'a', 32);
    assert (s_decode_bytes (one, sizeof none + 2 + 32, err, sizeof err) == AF_E_MALFORMED);
    af_msg_destroy (&msg);

    //  The answer carries the key's fingerprint
    msg = af_msg_new (AF_MSG_CONTACTS_EVALUATED);
    assert (msg);
    af_msg_set_element_count (msg, 2);
    msg->elements [1][31] = 0x42;
    strcpy (msg->key_id, "0123456789abcdef");
    copy = s_roundtrip (msg);
    assert (copy->element_count == 2 && copy->elements [1][31] == 0x42 && copy->elements [0][0] == 0);
    assert (streq (copy->key_id, "0123456789abcdef"));
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
}

//  Every command encodes and decodes as itself
static void
s_test_every_command (void)
{
    char err [256];
    af_msg_t *msg, *copy;
    for (int id = AF_MSG_NONE + 1; id < AF_MSG_COUNT; id++) {
        msg = af_msg_new ((af_msg_id_t) id);
        strcpy (msg->account, "a"); strcpy (msg->password, "p"); strcpy (msg->device_id, "d");
        strcpy (msg->program, "p"); strcpy (msg->service, "s"); msg->code = 500;
        strcpy (msg->push_id, "q"); strcpy (msg->item, "i"); strcpy (msg->hash, "h");
        strcpy (msg->state, "queued"); strcpy (msg->from, "f"); strcpy (msg->op, "install");
        af_msg_add_target (msg, "all");
        msg->has_device = msg->has_package = true;
        msg->credit = msg->size = 1;
        assert (af_msg_set_body (msg, "x", 1) == 0);
        msg->data = (uint8_t *) strdup ("y");
        msg->data_size = 1;
        af_msg_set_element_count (msg, 1);
        strcpy (msg->intent, "n"); strcpy (msg->ask, "k"); strcpy (msg->token, "t"); strcpy (msg->currency, "EUR");
        msg->price = 1;
        copy = s_roundtrip (msg);
        assert (copy->id == (af_msg_id_t) id);
        assert (strcmp (af_msg_command_name (copy->id), s_commands [id].name) == 0);
        af_msg_destroy (&copy);
        af_msg_destroy (&msg);
    }
    //  Device records round-trip alone too
    {
        af_device_t device, back;
        memset (&device, 0, sizeof device);
        strcpy (device.model, "TV");
        device.locale_count = 1;
        strcpy (device.locales [0], "zh-CN");
        device.online = true;
        zframe_t *packed = af_device_pack (&device);
        assert (af_device_unpack (zframe_data (packed), zframe_size (packed), &back, err, sizeof err) == AF_OK);
        assert (memcmp (&device, &back, sizeof device) == 0);
        assert (af_device_unpack (zframe_data (packed), zframe_size (packed) - 1, &back, err, sizeof err) == AF_E_MALFORMED);
        zframe_destroy (&packed);
    }
    //  Encoding refuses a message missing a required string
    msg = af_msg_new (AF_MSG_REGISTER);
    assert (af_msg_encode (msg) == NULL);
    af_msg_destroy (&msg);
}

//  The payments commands: a PURCHASE_LIST round-trips; a price of 0 or
//  above AF_MAX_PRICE, or negative, is refused by the decoder
static void
s_test_payments (void)
{
    char err [256];
    af_msg_t *msg = af_msg_new (AF_MSG_PURCHASE_LIST), *copy;
    af_msg_set_purchase_count (msg, 2);
    strcpy (msg->purchases [0].program, "game");
    msg->purchases [0].price = 499;
    strcpy (msg->purchases [0].currency, "EUR");
    strcpy (msg->purchases [0].intent, "00112233445566778899aabbccddeeff");
    msg->purchases [0].at = 123;
    msg->purchases [1] = msg->purchases [0];
    strcpy (msg->purchases [1].program, "chess");
    copy = s_roundtrip (msg);
    assert (copy->purchase_count == 2 && !strcmp (copy->purchases [1].program, "chess"));
    assert (memcmp (&copy->purchases [0], &msg->purchases [0], sizeof (af_purchase_t)) == 0);
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
    //  GET and PAY_CONFIRM asking for the app's user data too (5.47)
    msg = af_msg_new (AF_MSG_GET);
    strcpy (msg->program, "notes");
    strcpy (msg->device_id, "00112233445566778899aabbccddeeff");
    copy = s_roundtrip (msg);
    assert (!copy->with_data);
    af_msg_destroy (&copy);
    msg->with_data = true;
    copy = s_roundtrip (msg);
    assert (copy->with_data && streq (copy->device_id, msg->device_id));
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_PAY_CONFIRM);
    strcpy (msg->intent, "00112233445566778899aabbccddeeff");
    strcpy (msg->token, "tok_approve");
    msg->with_data = true;
    copy = s_roundtrip (msg);
    assert (copy->with_data && streq (copy->token, "tok_approve"));
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
    //  Raw maps: PAY_INTENT with price 0, AF_MAX_PRICE + 1, -5
    uint8_t raw [96];
    const int64_t prices [] = { 0, AF_MAX_PRICE + 1, -5, 499 };
    for (size_t i = 0; i < 4; i++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 6);
        msgpack_pack_str_with_body (&pk, "v", 1); msgpack_pack_uint8 (&pk, 1);
        msgpack_pack_str_with_body (&pk, "cmd", 3); msgpack_pack_str_with_body (&pk, "PAY_INTENT", 10);
        msgpack_pack_str_with_body (&pk, "account", 7); msgpack_pack_str_with_body (&pk, "alice", 5);
        msgpack_pack_str_with_body (&pk, "program", 7); msgpack_pack_str_with_body (&pk, "game", 4);
        msgpack_pack_str_with_body (&pk, "price", 5); msgpack_pack_int64 (&pk, prices [i]);
        msgpack_pack_str_with_body (&pk, "currency", 8); msgpack_pack_str_with_body (&pk, "EUR", 3);
        assert (sbuf.size <= sizeof raw);
        memcpy (raw, sbuf.data, sbuf.size);
        af_msg_t *decoded = NULL;
        int rc = af_msg_decode (raw, sbuf.size, &decoded, err, sizeof err, NULL, NULL);
        assert (i < 3? rc == AF_E_MALFORMED && strstr (err, "price"): rc == AF_OK && decoded->price == 499);
        af_msg_destroy (&decoded);
        msgpack_sbuffer_destroy (&sbuf);
    }
}

//  Non-canonical encodings are accepted: v as uint64, cmd as str16
static void
s_test_noncanonical (void)
{
    char err [256];
    uint8_t raw [] = {
        0x82,
        0xa1, 'v', 0xcf, 0, 0, 0, 0, 0, 0, 0, 1,
        0xa3, 'c', 'm', 'd', 0xda, 0, 4, 'P', 'I', 'N', 'G' };
    af_msg_t *ping = NULL;
    assert (af_msg_decode (raw, sizeof raw, &ping, err, sizeof err, NULL, NULL) == AF_OK);
    assert (ping->id == AF_MSG_PING);
    af_msg_destroy (&ping);
}

//  Malformed inputs each get the right code and never crash
//  (the frame itself: its size, its structure, its version and command)
static void
s_test_malformed_frames (void)
{
    char err [256];
    uint8_t truncated [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm' };
    assert (s_decode_bytes (truncated, sizeof truncated, err, sizeof err) == AF_E_MALFORMED);
    uint8_t huge_array [] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00 };
    assert (s_decode_bytes (huge_array, sizeof huge_array, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "entries"));
    uint8_t huge_str [] = { 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a' };
    assert (s_decode_bytes (huge_str, sizeof huge_str, err, sizeof err) == AF_E_MALFORMED);
    uint8_t deep [] = { 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01 };
    assert (s_decode_bytes (deep, sizeof deep, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "nesting"));
    uint8_t reserved [] = { 0xc1 };
    assert (s_decode_bytes (reserved, sizeof reserved, err, sizeof err) == AF_E_MALFORMED);
    uint8_t not_map [] = { 0x93, 1, 2, 3 };
    assert (s_decode_bytes (not_map, sizeof not_map, err, sizeof err) == AF_E_MALFORMED);
    uint8_t no_version [] = { 0x81, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    assert (s_decode_bytes (no_version, sizeof no_version, err, sizeof err) == AF_E_MALFORMED);
    uint8_t v9 [] = { 0x82, 0xa1, 'v', 0x09, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    assert (s_decode_bytes (v9, sizeof v9, err, sizeof err) == AF_E_VERSION);
    assert (strstr (err, "1..1"));
    uint8_t unknown [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa4, 'B', 'O', 'O', 'M' };
    assert (s_decode_bytes (unknown, sizeof unknown, err, sizeof err) == AF_E_UNKNOWN_COMMAND);
    uint8_t garbage [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G', 0x00 };
    assert (s_decode_bytes (garbage, sizeof garbage, err, sizeof err) == AF_E_MALFORMED);
}

//  Malformed fields: a wrong type, a NUL or bad UTF-8 in a string, a key
//  twice (whose rid is still echoed), a required field missing; an
//  unknown extra key is not malformed
static void
s_test_malformed_fields (void)
{
    char err [256];
    //  REGISTER with account as an integer
    uint8_t wrong_type [] = { 0x84, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd',
        0xa8, 'R', 'E', 'G', 'I', 'S', 'T', 'E', 'R',
        0xa7, 'a', 'c', 'c', 'o', 'u', 'n', 't', 0x05,
        0xa8, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd', 0xa1, 'x' };
    assert (s_decode_bytes (wrong_type, sizeof wrong_type, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "account"));
    //  REGISTER with a NUL inside the password, and one with bad UTF-8
    uint8_t nul [] = { 0x84, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd',
        0xa8, 'R', 'E', 'G', 'I', 'S', 'T', 'E', 'R',
        0xa7, 'a', 'c', 'c', 'o', 'u', 'n', 't', 0xa1, 'a',
        0xa8, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd', 0xa2, 'x', 0 };
    assert (s_decode_bytes (nul, sizeof nul, err, sizeof err) == AF_E_MALFORMED);
    nul [sizeof nul - 1] = 0xff;
    assert (s_decode_bytes (nul, sizeof nul, err, sizeof err) == AF_E_MALFORMED);
    //  Duplicate key
    uint8_t dup [] = { 0x84, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd',
        0xa8, 'R', 'E', 'G', 'I', 'S', 'T', 'E', 'R',
        0xa7, 'a', 'c', 'c', 'o', 'u', 'n', 't', 0xa1, 'a',
        0xa7, 'a', 'c', 'c', 'o', 'u', 'n', 't', 0xa1, 'b' };
    assert (s_decode_bytes (dup, sizeof dup, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "twice"));
    uint8_t dup_cmd [] = { 0x83, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G',
        0xa3, 'c', 'm', 'd', 0xa4, 'B', 'O', 'O', 'M' };
    assert (s_decode_bytes (dup_cmd, sizeof dup_cmd, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "'cmd' appears twice"));
    //  ... and the rid of such a message is echoed (its first one)
    uint8_t dup_rid [] = { 0x84, 0xa1, 'v', 0x01, 0xa3, 'r', 'i', 'd', 0xc4, 16,
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G', 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    uint8_t echoed [AF_ID_SIZE];
    bool has_echo = false;
    af_msg_t *none = NULL;
    assert (af_msg_decode (dup_rid, sizeof dup_rid, &none, err, sizeof err, echoed, &has_echo)
            == AF_E_MALFORMED && !none);
    assert (has_echo && echoed [0] == 1 && echoed [15] == 16);
    //  Missing required field
    assert (s_decode_bytes (dup, sizeof dup - 9, err, sizeof err) != AF_OK);
    //  A valid message with an unknown extra key is accepted
    uint8_t extra [] = { 0x83, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G',
        0xa3, 'z', 'z', 'z', 0x92, 0x01, 0x02 };
    assert (s_decode_bytes (extra, sizeof extra, err, sizeof err) == AF_OK);
}

//  An empty string is where msgpack-c leaves the pointer NULL when
//  it is the buffer's first string: an empty key first, later, and
//  empty values are all plain data ({"":1, v:1, cmd:"PING"} is a
//  PING with an unknown key)
static void
s_test_empty_strings (void)
{
    char err [256];
    uint8_t empty_key_first [] = { 0x83, 0xa0, 0x01, 0xa1, 'v', 0x01,
        0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    assert (s_decode_bytes (empty_key_first, sizeof empty_key_first, err, sizeof err) == AF_OK);
    uint8_t empty_key_value_first [] = { 0x83, 0xa0, 0xa0, 0xa1, 'v', 0x01,
        0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G' };
    assert (s_decode_bytes (empty_key_value_first, sizeof empty_key_value_first,
                            err, sizeof err) == AF_OK);
    uint8_t empty_key_later [] = { 0x83, 0xa1, 'v', 0x01,
        0xa3, 'c', 'm', 'd', 0xa4, 'P', 'I', 'N', 'G', 0xa0, 0xa0 };
    assert (s_decode_bytes (empty_key_later, sizeof empty_key_later, err, sizeof err) == AF_OK);
    uint8_t empty_cmd [] = { 0x82, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd', 0xa0 };
    assert (s_decode_bytes (empty_cmd, sizeof empty_cmd, err, sizeof err) == AF_E_UNKNOWN_COMMAND);
    //  REGISTER with an empty password: decoded, "" is the value
    uint8_t empty_value [] = { 0x84, 0xa1, 'v', 0x01, 0xa3, 'c', 'm', 'd',
        0xa8, 'R', 'E', 'G', 'I', 'S', 'T', 'E', 'R',
        0xa7, 'a', 'c', 'c', 'o', 'u', 'n', 't', 0xa1, 'a',
        0xa8, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd', 0xa0 };
    {
        af_msg_t *reg = NULL;
        assert (af_msg_decode (empty_value, sizeof empty_value, &reg, err, sizeof err,
                               NULL, NULL) == AF_OK);
        assert (reg->id == AF_MSG_REGISTER && streq (reg->password, "") && streq (reg->account, "a"));
        af_msg_destroy (&reg);
    }
    //  And an empty map key inside a nested map, first in the buffer
    //  (a map as the root's first key is not a string: refused)
    uint8_t map_key [] = { 0x82, 0x81, 0xa0, 0x01, 0x01, 0xa1, 'v', 0x01 };
    assert (s_decode_bytes (map_key, sizeof map_key, err, sizeof err) == AF_E_MALFORMED);
}

//  A frame over AF_MAX_MSG is too big, an empty one malformed
static void
s_test_oversize (void)
{
    char err [256];
    //  Oversize
    uint8_t *big = (uint8_t *) calloc (1, AF_MAX_MSG + 1);
    assert (s_decode_bytes (big, AF_MAX_MSG + 1, err, sizeof err) == AF_E_TOO_BIG);
    free (big);
    assert (s_decode_bytes ("", 0, err, sizeof err) == AF_E_MALFORMED);
}

//  Program IDs: names, never paths. What is one (af_program_check)...
static void
s_test_program_check (void)
{
    char err [256];
    const char *good [] = { "weixin", "com.tencent.mm", "7zip", "a", "x_y-z.2",
        "a234567890123456789012345678901234567890123456789012345678901234", NULL };
    const char *bad [] = { "", ".", "..", "../etc", "a/b", "/etc", "a/../b", "a..b", ".hidden",
        "_x", "-x", "Weixin", "a b", "a\\b", "caf\xc3\xa9",
        "a2345678901234567890123456789012345678901234567890123456789012345", NULL };
    for (int i = 0; good [i]; i++)
        assert (af_program_check (good [i], err, sizeof err) == AF_OK);
    for (int i = 0; bad [i]; i++) {
        *err = 0;
        assert (af_program_check (bad [i], err, sizeof err) == AF_E_MALFORMED && strstr (err, "not a program ID"));
    }
    assert (af_program_check (NULL, NULL, 0) == AF_E_MALFORMED);
}

//  IDs from text: exactly AF_ID_HEX lowercase hex digits, AF_OK or
//  AF_E_MALFORMED (never a bare 0/-1, so a caller tests one thing)
static void
s_test_id_from_hex (void)
{
    uint8_t id [AF_ID_SIZE];
    assert (af_id_from_hex ("00112233445566778899aabbccddeeff", id) == AF_OK);
    assert (id [0] == 0x00 && id [1] == 0x11 && id [AF_ID_SIZE - 1] == 0xff);
    const char *bad [] = { "", "0011", "00112233445566778899AABBCCDDEEFF",
        "00112233445566778899aabbccddeef", "00112233445566778899aabbccddeeff0",
        "00112233445566778899aabbccddeefg", "0011223344556677 899aabbccddeeff", NULL };
    for (int i = 0; bad [i]; i++)
        assert (af_id_from_hex (bad [i], id) == AF_E_MALFORMED);
}

//  ... and every program field of every command refuses what is not one,
//  naming the field: the top-level field, an app map's, a package map's
static void
s_test_program_fields (void)
{
    char err [256];
    af_msg_t *msg, *copy = NULL;
    zframe_t *frame;
    for (int id = AF_MSG_NONE + 1; id < AF_MSG_COUNT; id++) {
        bool has_program = false;
        for (const field_t *f = s_commands [id].fields; f->key; f++)
            has_program |= f->type == T_PROG;
        if (!has_program)
            continue;
        msg = af_msg_new ((af_msg_id_t) id);
        assert (msg);
        snprintf (msg->device_id, sizeof msg->device_id, "d");
        snprintf (msg->push_id, sizeof msg->push_id, "q");
        snprintf (msg->from, sizeof msg->from, "f");
        snprintf (msg->state, sizeof msg->state, "queued");
        snprintf (msg->op, sizeof msg->op, "install");
        snprintf (msg->account, sizeof msg->account, "ana");
        af_msg_set_element_count (msg, 1);          //  a token, for the friends' commands
        snprintf (msg->intent, sizeof msg->intent, "n");    //  and what the payments' need
        snprintf (msg->ask, sizeof msg->ask, "k");           //  and the record's
        snprintf (msg->currency, sizeof msg->currency, "EUR");
        msg->price = 1;
        af_msg_add_target (msg, "all");
        msg->fit = AF_FIT_PACKAGE; msg->has_package = true;
        msg->data = (uint8_t *) strdup ("y");
        msg->data_size = 1;
        const char *hostile [] = { "../../etc", "a/b", "..", ".demo.new-00000000" };
        for (int i = 0; i < 4; i++) {
            strcpy (msg->program, hostile [i]);
            frame = af_msg_encode (msg);
            assert (frame);
            assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL)
                    == AF_E_MALFORMED);
            assert (strstr (err, "field 'program'") && strstr (err, "not a program ID"));
            assert (copy == NULL);
            zframe_destroy (&frame);
        }
        af_msg_destroy (&msg);
    }
    msg = af_msg_new (AF_MSG_SYNC_DIFF);
    af_msg_set_app_count (msg, 2);
    strcpy (msg->apps [0].program, "notes");
    strcpy (msg->apps [1].program, "../config");
    frame = af_msg_encode (msg);
    assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL)
            == AF_E_MALFORMED && strstr (err, "field 'program'"));
    zframe_destroy (&frame);
    af_msg_destroy (&msg);
    msg = af_msg_new (AF_MSG_RESOLVED);
    strcpy (msg->program, "notes");
    msg->has_package = true;
    strcpy (msg->package.program, "notes/../../x");
    frame = af_msg_encode (msg);
    assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err, NULL, NULL)
            == AF_E_MALFORMED && strstr (err, "field 'program'"));
    zframe_destroy (&frame);
    strcpy (msg->package.program, "notes");
    copy = s_roundtrip (msg);
    assert (streq (copy->package.program, "notes"));
    af_msg_destroy (&copy);
    af_msg_destroy (&msg);
}

//  Every truncation of a valid message fails cleanly
static void
s_test_truncations (void)
{
    char err [256];
    af_msg_t *msg;
    zframe_t *frame;
    msg = af_msg_new (AF_MSG_DEVICE_LIST);
    af_msg_set_device_count (msg, 2);
    strcpy (msg->devices [0].model, "Model");
    msg->devices [1].abi_count = 1;
    strcpy (msg->devices [1].abis [0], "x86");
    frame = af_msg_encode (msg);
    for (size_t cut = 0; cut < zframe_size (frame); cut++)
        assert (s_decode_bytes (zframe_data (frame), cut, err, sizeof err) != AF_OK);
    //  And every single-byte corruption is either accepted or rejected, never a crash
    uint8_t *bytes = (uint8_t *) malloc (zframe_size (frame));
    for (size_t at = 0; at < zframe_size (frame); at++)
        for (int value = 0; value < 256; value += 17) {
            memcpy (bytes, zframe_data (frame), zframe_size (frame));
            bytes [at] = (uint8_t) value;
            s_decode_bytes (bytes, zframe_size (frame), err, sizeof err);
        }
    free (bytes);
    zframe_destroy (&frame);
    af_msg_destroy (&msg);
}

//  Byte for byte what msgpack-c would write: every width of every type
static void
s_test_byte_for_byte (void)
{
    af_msg_t *diff = af_msg_new (AF_MSG_SYNC_DIFF);
    af_msg_set_rid_random (diff);
    af_msg_set_app_count (diff, 40);
    for (uint32_t i = 0; i < 40; i++) {
        af_app_t *app = &diff->apps [i];
        snprintf (app->program, sizeof app->program, "program-%u", i);
        memset (app->reason, 'r', i * 6 < AF_MAX_REASON? i * 6: AF_MAX_REASON);
        app->version_code = (uint64_t) 1 << (i + 20 < 64? i + 20: 63);
        app->at = (uint64_t) i * 100003;
        app->fit = i % 4;
    }
    diff->truncated = true;
    s_test_same_as_msgpack (diff);
    af_msg_destroy (&diff);
    af_msg_t *chunk = af_msg_new (AF_MSG_CHUNK);
    strcpy (chunk->hash, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    uint32_t sizes [] = { 1, 255, 256, 65535, 65536, 300000 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes [0]; k++) {
        chunk->data_size = chunk->size = sizes [k];
        chunk->total = (uint64_t) 1 << 40;
        chunk->offset = 65535;
        free (chunk->data);
        chunk->data = (uint8_t *) calloc (1, sizes [k]);
        s_test_same_as_msgpack (chunk);
    }
    af_msg_destroy (&chunk);
}

void
af_msg_test (bool verbose)
{
    if (verbose)
        printf (" * af_msg: ");
    s_test_roundtrip_fields ();
    s_test_roundtrip_push ();
    s_test_roundtrip_lists_and_chunks ();
    s_test_contacts_elements ();
    s_test_payments ();
    s_test_every_command ();
    s_test_noncanonical ();
    s_test_malformed_frames ();
    s_test_malformed_fields ();
    s_test_empty_strings ();
    s_test_oversize ();
    s_test_program_check ();
    s_test_id_from_hex ();
    s_test_program_fields ();
    s_test_truncations ();
    s_test_byte_for_byte ();
    if (verbose)
        printf ("OK\n");
}
