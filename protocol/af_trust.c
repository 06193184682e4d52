/*  =========================================================================
    af_trust - the store's signed metadata (TUF, simplified) and its checks

    Why this shape: the broker and the matcher are online and exposed, so
    neither may be able to make a device install something. The root key
    stays offline and only says which online store keys and which
    publisher keys count; the store key, on the catalog's machine, signs
    what the catalog holds; the device trusts only the root public key it
    was given. A stolen store key lets an attacker sign targets until the
    root removes that key (a new root.json with a higher version), and
    only until the documents it signed expire. Versions that only rise
    stop a replay of old metadata (a rollback) once a device has seen a
    newer one; expiry stops an attacker from freezing a device on old
    metadata forever.

    Parsing is strict: documents are bounded (AF_MAX_META_DOC), JSON
    duplicate keys are refused, every field is typed, and a document of
    one kind is never accepted as another (its "type"). Signatures are
    verified over the bytes before anything reads them. The device reads
    a targets document in one pass for the one target offered, without
    building a tree (af_trust_targets.c), and may keep an
    af_trust_cache of what it verified, so that an unchanged root and the
    same targets bytes are not verified again: at most 4 Ed25519
    verifications an offer, 2 once the root is known, none for documents
    seen before (bench_trust).
    =========================================================================
*/
#include <czmq.h>
#include "af_trust.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>

#define S_ROOT_TYPE     "appferry-root"
#define S_PUBS_TYPE     "appferry-publishers"

static int s_verify_doc (af_trust_cache_t *cache, const af_minisign_pub_t *keys, size_t key_count,
                         const uint8_t *digest, const char *text, size_t len, const char *sig, size_t sig_len,
                         const af_minisign_pub_t **by, char *err, size_t errlen);

int
af_trust_load_signed (const char *path, const af_minisign_pub_t *keys, size_t key_count,
                      char **text_p, size_t *len_p, char *err, size_t errlen)
{
    int code;
    size_t len, sig_len;
    char inner [300], sig_path [4200];
    char *text = af_file_read (path, AF_MAX_META_DOC, &len, &code, err, errlen);
    if (!text)
        return code == AF_E_NO_BLOB? AF_E_INTERNAL: code;
    snprintf (sig_path, sizeof sig_path, "%s.minisig", path);
    char *sig = af_file_read (sig_path, AF_MAX_SIGNATURE, &sig_len, &code, err, errlen);
    if (!sig) {
        free (text);
        return code == AF_E_NO_BLOB? AF_E_MALFORMED: code;
    }
    const af_minisign_pub_t *by;
    code = s_verify_doc (NULL, keys, key_count, NULL, text, len, sig, sig_len, &by, inner, sizeof inner);
    free (sig);
    if (code != AF_OK) {
        snprintf (err, errlen, "%s: %s", path, inner);
        free (text);
        return code;
    }
    *text_p = text;
    *len_p = len;
    return AF_OK;
}

int
af_trust_write_signed (const char *path, const char *text, const af_minisign_sec_t *sec,
                       char *err, size_t errlen)
{
    char trusted [4200], sig_path [4200];
    const char *base = strrchr (path, '/');
    snprintf (trusted, sizeof trusted, "file:%s", base? base + 1: path);
    char *sig = af_minisign_sign (sec, text, strlen (text), trusted);
    assert (sig);
    snprintf (sig_path, sizeof sig_path, "%s.minisig", path);
    int code = af_file_write (path, text, strlen (text), 0644, err, errlen);
    if (code == AF_OK)
        code = af_file_write (sig_path, sig, strlen (sig), 0644, err, errlen);
    free (sig);
    return code;
}

//  --------------------------------------------------------------------------
//  Documents

//  The common head: type, version, expires. 0 or -1 with err.
static int
s_head (json_t *doc, const char *type, uint64_t *version, uint64_t *expires, char *err, size_t errlen)
{
    json_t *t = json_object_get (doc, "type");
    json_t *v = json_object_get (doc, "version");
    json_t *e = json_object_get (doc, "expires");
    if (!json_is_object (doc) || !json_is_string (t) || strcmp (json_string_value (t), type)) {
        snprintf (err, errlen, "not an %s document", type);
        return -1;
    }
    if (!json_is_integer (v) || json_integer_value (v) < 1 || !json_is_integer (e) || json_integer_value (e) < 0) {
        snprintf (err, errlen, "%s: 'version' (1 or more) and 'expires' (ms) must be integers", type);
        return -1;
    }
    *version = (uint64_t) json_integer_value (v);
    *expires = (uint64_t) json_integer_value (e);
    return 0;
}

static int
s_key (json_t *value, af_minisign_pub_t *key, char *err, size_t errlen)
{
    if (!json_is_string (value))
        return snprintf (err, errlen, "a key must be a minisign public key string"), -1;
    return af_minisign_pub_parse (json_string_value (value), json_string_length (value), key, err, errlen) == AF_OK? 0: -1;
}

int
af_trust_root_parse (const char *text, size_t len, af_trust_root_t *root, char *err, size_t errlen)
{
    memset (root, 0, sizeof *root);
    json_error_t jerr;
    json_t *doc = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = s_head (doc, S_ROOT_TYPE, &root->version, &root->expires, err, errlen);
    json_t *store = json_object_get (doc, "store");
    if (rc == 0 && (!json_is_array (store) || json_array_size (store) < 1
                ||  json_array_size (store) > AF_MAX_STORE_KEYS)) {
        snprintf (err, errlen, "root: 'store' must list 1..%d store keys", AF_MAX_STORE_KEYS);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < json_array_size (store); i++)
        rc = s_key (json_array_get (store, i), &root->store [root->store_count++], err, errlen);
    json_decref (doc);
    return rc? AF_E_MALFORMED: AF_OK;
}

static int
s_publisher (json_t *obj, af_publisher_t *p, char *err, size_t errlen)
{
    json_t *name = json_object_get (obj, "name");
    json_t *programs = json_object_get (obj, "programs");
    if (!json_is_string (name) || json_string_length (name) == 0 || json_string_length (name) > AF_MAX_DISPLAY)
        return snprintf (err, errlen, "'name' must be 1..%d bytes", AF_MAX_DISPLAY), -1;
    snprintf (p->name, sizeof p->name, "%s", json_string_value (name));
    if (s_key (json_object_get (obj, "key"), &p->key, err, errlen))
        return -1;
    if (!json_is_array (programs) || json_array_size (programs) < 1
    ||  json_array_size (programs) > AF_MAX_PUBLISHER_PROGRAMS)
        return snprintf (err, errlen, "'programs' must list 1..%d names", AF_MAX_PUBLISHER_PROGRAMS), -1;
    for (size_t i = 0; i < json_array_size (programs); i++) {
        json_t *item = json_array_get (programs, i);
        if (!json_is_string (item) || json_string_length (item) == 0
        ||  json_string_length (item) > AF_MAX_PROGRAM + 1)
            return snprintf (err, errlen, "'programs' entry %zu is not a program ID or prefix*", i), -1;
        snprintf (p->programs [p->program_count++], sizeof p->programs [0], "%s", json_string_value (item));
    }
    return 0;
}

int
af_trust_publishers_parse (const char *text, size_t len, af_trust_publishers_t *pubs, char *err, size_t errlen)
{
    memset (pubs, 0, sizeof *pubs);
    json_error_t jerr;
    json_t *doc = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = s_head (doc, S_PUBS_TYPE, &pubs->version, &pubs->expires, err, errlen);
    json_t *list = json_object_get (doc, "publishers");
    if (rc == 0 && (!json_is_array (list) || json_array_size (list) > AF_MAX_PUBLISHERS)) {
        snprintf (err, errlen, "publishers: 'publishers' must be an array of at most %d", AF_MAX_PUBLISHERS);
        rc = -1;
    }
    if (rc == 0) {
        pubs->publishers = (af_publisher_t *) calloc (json_array_size (list) + 1, sizeof (af_publisher_t));
        assert (pubs->publishers);
    }
    for (size_t i = 0; rc == 0 && i < json_array_size (list); i++) {
        char inner [200];
        rc = s_publisher (json_array_get (list, i), &pubs->publishers [pubs->count++], inner, sizeof inner);
        if (rc)
            snprintf (err, errlen, "publishers: entry %zu: %s", i, inner);
    }
    json_decref (doc);
    if (rc)
        af_trust_publishers_free (pubs);
    return rc? AF_E_MALFORMED: AF_OK;
}

void
af_trust_publishers_free (af_trust_publishers_t *pubs)
{
    free (pubs->publishers);
    pubs->publishers = NULL;
    pubs->count = 0;
}

const af_publisher_t *
af_trust_publisher_find (const af_trust_publishers_t *pubs, const uint8_t *key_id)
{
    for (size_t i = 0; i < pubs->count; i++)
        if (memcmp (pubs->publishers [i].key.key_id, key_id, AF_MINISIGN_KEYID_SIZE) == 0)
            return &pubs->publishers [i];
    return NULL;
}

bool
af_trust_publisher_allows (const af_publisher_t *publisher, const char *program)
{
    for (size_t i = 0; i < publisher->program_count; i++) {
        const char *pattern = publisher->programs [i];
        size_t len = strlen (pattern);
        if (pattern [len - 1] == '*'? strncmp (pattern, program, len - 1) == 0: strcmp (pattern, program) == 0)
            return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Making documents

//  A document's text: indented for people, or compact (targets: a
//  program's 256 packages must fit in an OFFER's AF_MAX_META)
static char *
s_dump (json_t *doc, bool compact)
{
    char *text = json_dumps (doc, (compact? JSON_COMPACT: JSON_INDENT (1)) | JSON_PRESERVE_ORDER);
    json_decref (doc);
    assert (text);
    size_t len = strlen (text);
    char *lined = (char *) realloc (text, len + 2);
    assert (lined);
    memcpy (lined + len, "\n", 2);
    return lined;
}

int
af_trust_root_make (const af_minisign_pub_t *store, size_t store_count, uint64_t version,
                    uint64_t expires, char **text)
{
    assert (store_count >= 1 && store_count <= AF_MAX_STORE_KEYS);
    json_t *keys = json_array ();
    for (size_t i = 0; i < store_count; i++) {
        char b64 [AF_MINISIGN_PUB_B64 + 1];
        af_minisign_pub_base64 (&store [i], b64);
        json_array_append_new (keys, json_string (b64));
    }
    *text = s_dump (json_pack ("{s:s, s:I, s:I, s:o}", "type", S_ROOT_TYPE, "version", (json_int_t) version,
                               "expires", (json_int_t) expires, "store", keys), false);
    return AF_OK;
}

//  A publisher's key as the input gives it: a key line, or a .pub file
static int
s_input_key (json_t *value, const char *base_dir, char *b64, char *err, size_t errlen)
{
    af_minisign_pub_t key;
    char inner [300], path [4200];
    if (!json_is_string (value))
        return snprintf (err, errlen, "'key' must be a string"), AF_E_MALFORMED;
    const char *text = json_string_value (value);
    int code = af_minisign_pub_parse (text, strlen (text), &key, inner, sizeof inner);
    if (code != AF_OK) {
        snprintf (path, sizeof path, "%s%s%s", text [0] == '/'? "": base_dir, text [0] == '/'? "": "/", text);
        code = af_minisign_pub_load (path, &key, inner, sizeof inner);
    }
    if (code != AF_OK)
        return snprintf (err, errlen, "'key': %s", inner), code;
    af_minisign_pub_base64 (&key, b64);
    return AF_OK;
}

int
af_trust_publishers_make (const char *input_path, uint64_t version, uint64_t expires, char **text,
                          char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *input = json_load_file (input_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array (input)) {
        snprintf (err, errlen, "%s: %s", input_path, input? "expected an array of publishers": jerr.text);
        json_decref (input);
        return AF_E_MALFORMED;
    }
    char *copy = strdup (input_path);
    char *slash = strrchr (copy, '/');
    const char *base_dir = slash? (*slash = 0, copy): ".";
    json_t *list = json_array ();
    int code = AF_OK;
    for (size_t i = 0; code == AF_OK && i < json_array_size (input); i++) {
        json_t *entry = json_array_get (input, i);
        char b64 [AF_MINISIGN_PUB_B64 + 1], inner [400];
        code = s_input_key (json_object_get (entry, "key"), base_dir, b64, inner, sizeof inner);
        if (code == AF_OK) {
            json_t *out = json_pack ("{s:O?, s:s, s:O?}", "name", json_object_get (entry, "name"), "key", b64,
                                     "programs", json_object_get (entry, "programs"));
            json_array_append_new (list, out);
        }
        else
            snprintf (err, errlen, "%s: entry %zu: %s", input_path, i, inner);
    }
    free (copy);
    json_decref (input);
    if (code != AF_OK) {
        json_decref (list);
        return code;
    }
    *text = s_dump (json_pack ("{s:s, s:I, s:I, s:o}", "type", S_PUBS_TYPE, "version", (json_int_t) version,
                               "expires", (json_int_t) expires, "publishers", list), false);
    //  What we wrote must parse as what a reader expects
    af_trust_publishers_t pubs;
    char inner [300];
    if (af_trust_publishers_parse (*text, strlen (*text), &pubs, inner, sizeof inner) != AF_OK) {
        snprintf (err, errlen, "%s: %s", input_path, inner);
        free (*text);
        *text = NULL;
        return AF_E_MALFORMED;
    }
    af_trust_publishers_free (&pubs);
    return AF_OK;
}

//  The version of a targets document in a file (signature not checked:
//  the writer's own last version), 0 if none
static uint64_t
s_file_version (const char *path)
{
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    json_t *v = json_object_get (doc, "version");
    uint64_t version = json_is_integer (v) && json_integer_value (v) > 0? (uint64_t) json_integer_value (v): 0;
    json_decref (doc);
    return version;
}

char *
af_trust_targets_make (const char *path, const char *program, const af_target_entry_t *targets,
                       size_t count, uint64_t expires, uint64_t *version)
{
    *version = s_file_version (path) + 1;
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++) {
        const af_target_entry_t *t = &targets [i];
        json_array_append_new (list, json_pack ("{s:s, s:I, s:s, s:s, s:I, s:s}", "platform", t->platform,
            "versionCode", (json_int_t) t->version_code, "versionName", t->version_name, "hash", t->hash,
            "size", (json_int_t) t->size, "publisher", t->publisher));
    }
    char *text = s_dump (json_pack ("{s:s, s:s, s:I, s:I, s:o}", "type", AF_TRUST_TARGETS_TYPE, "program", program,
                                    "version", (json_int_t) *version, "expires", (json_int_t) expires,
                                    "targets", list), true);
    if (strlen (text) > AF_MAX_META - 4096) {
        free (text);
        return NULL;
    }
    return text;
}

//  --------------------------------------------------------------------------
//  The bundle

int
af_trust_bundle_load (const char *meta_dir, const char *program, uint8_t **bundle, size_t *size,
                      char *err, size_t errlen)
{
    static const char *keys [] = { "root", "rootSig", "targets", "targetsSig" };
    char paths [4][4200];
    snprintf (paths [0], sizeof paths [0], "%s/root.json", meta_dir);
    snprintf (paths [1], sizeof paths [1], "%s/root.json.minisig", meta_dir);
    snprintf (paths [2], sizeof paths [2], "%s/targets/%s.json", meta_dir, program);
    snprintf (paths [3], sizeof paths [3], "%s/targets/%s.json.minisig", meta_dir, program);
    char *parts [4] = { NULL };
    size_t lens [4];
    int code = AF_OK;
    for (int i = 0; i < 4 && code == AF_OK; i++)
        parts [i] = af_file_read (paths [i], AF_MAX_META, &lens [i], &code, err, errlen);
    if (code == AF_OK) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 4);
        for (int i = 0; i < 4; i++) {
            msgpack_pack_str_with_body (&pk, keys [i], strlen (keys [i]));
            msgpack_pack_bin_with_body (&pk, parts [i], lens [i]);
        }
        if (buffer.size > AF_MAX_META) {
            snprintf (err, errlen, "the metadata of '%s' is %zu bytes (at most %d)", program, buffer.size, AF_MAX_META);
            msgpack_sbuffer_destroy (&buffer);
            code = AF_E_TOO_BIG;
        }
        else {
            *bundle = (uint8_t *) buffer.data;
            *size = buffer.size;
        }
    }
    for (int i = 0; i < 4; i++)
        free (parts [i]);
    return code;
}

//  The bundle's four parts (pointers into the unpacked object)
typedef struct {
    const char *data [4];
    size_t size [4];
} parts_t;

static int
s_bundle_parts (const msgpack_object *obj, parts_t *parts, char *err, size_t errlen)
{
    static const char *keys [] = { "root", "rootSig", "targets", "targetsSig" };
    memset (parts, 0, sizeof *parts);
    if (obj->type != MSGPACK_OBJECT_MAP || obj->via.map.size != 4)
        return snprintf (err, errlen, "the metadata is not a map of 4 parts"), -1;
    for (uint32_t i = 0; i < 4; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr [i];
        int k = 0;
        while (k < 4 && !(kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen (keys [k])
                          && memcmp (kv->key.via.str.ptr, keys [k], kv->key.via.str.size) == 0))
            k++;
        if (k == 4 || kv->val.type != MSGPACK_OBJECT_BIN || parts->data [k])
            return snprintf (err, errlen, "the metadata's parts are not root, rootSig, targets, targetsSig"), -1;
        parts->data [k] = kv->val.via.bin.ptr;
        parts->size [k] = kv->val.via.bin.size;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The cache of verified documents

typedef struct {
    bool used;
    uint8_t digest [crypto_generichash_BYTES_MAX];      //  BLAKE2b-512 of the document
    af_minisign_pub_t key;                              //  the store key that signed it
} cached_doc_t;

struct _af_trust_cache_t {
    bool has_root;
    af_minisign_pub_t root_pub;         //  the key that verified root
    uint8_t root_digest [crypto_generichash_BYTES_MAX];
    af_trust_root_t root;
    cached_doc_t docs [AF_TRUST_CACHE_DOCS];
    size_t next;                        //  the slot the next document takes
    uint64_t spared, made;
};

af_trust_cache_t *
af_trust_cache_new (void)
{
    af_trust_cache_t *self = (af_trust_cache_t *) zmalloc (sizeof (af_trust_cache_t));
    assert (self);
    return self;
}

void
af_trust_cache_destroy (af_trust_cache_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
af_trust_cache_counts (af_trust_cache_t *self, uint64_t *spared, uint64_t *made)
{
    assert (self);
    *spared = self->spared;
    *made = self->made;
}

//  Verify a document by one of keys (the one its signature names; digest,
//  its BLAKE2b-512, may be NULL without a cache), unless the cache knows
//  it was signed by one of them. On success *by is the key that signed it.
static int
s_verify_doc (af_trust_cache_t *cache, const af_minisign_pub_t *keys, size_t key_count, const uint8_t *digest,
              const char *text, size_t len, const char *sig, size_t sig_len, const af_minisign_pub_t **by,
              char *err, size_t errlen)
{
    for (size_t i = 0; cache && i < AF_TRUST_CACHE_DOCS; i++) {
        const cached_doc_t *doc = &cache->docs [i];
        if (doc->used && memcmp (doc->digest, digest, sizeof doc->digest) == 0)
            for (size_t k = 0; k < key_count; k++)
                if (memcmp (&keys [k], &doc->key, sizeof doc->key) == 0) {
                    cache->spared++;
                    *by = &keys [k];
                    return AF_OK;
                }
    }
    uint8_t key_id [AF_MINISIGN_KEYID_SIZE];
    if (af_minisign_sig_key_id (sig, sig_len, key_id) != AF_OK)
        return snprintf (err, errlen, "not a minisign signature"), AF_E_MALFORMED;
    for (size_t k = 0; k < key_count; k++)
        if (memcmp (keys [k].key_id, key_id, AF_MINISIGN_KEYID_SIZE) == 0) {
            if (cache)
                cache->made++;
            int code = af_minisign_verify (&keys [k], text, len, digest, sig, sig_len, NULL, 0, err, errlen);
            *by = &keys [k];
            return code;
        }
    char id [AF_MINISIGN_KEYID_HEX + 1];
    af_minisign_id (key_id, id);
    snprintf (err, errlen, "signed by key %s, which is not a key trusted for it", id);
    return AF_E_FORBIDDEN;
}

//  The bundle's root document, verified and parsed, or from the cache
static int
s_root (const af_minisign_pub_t *root_pub, af_trust_cache_t *cache, const parts_t *parts, af_trust_root_t *root,
        char *err, size_t errlen)
{
    uint8_t digest [crypto_generichash_BYTES_MAX];
    crypto_generichash (digest, sizeof digest, (const uint8_t *) parts->data [0], parts->size [0], NULL, 0);
    if (cache && cache->has_root && memcmp (&cache->root_pub, root_pub, sizeof *root_pub) == 0
    &&  memcmp (cache->root_digest, digest, sizeof digest) == 0) {
        cache->spared++;
        *root = cache->root;
        return AF_OK;
    }
    const af_minisign_pub_t *by;
    int code = s_verify_doc (NULL, root_pub, 1, digest, parts->data [0], parts->size [0], parts->data [1],
                             parts->size [1], &by, err, errlen);
    if (code == AF_OK)
        code = af_trust_root_parse (parts->data [0], parts->size [0], root, err, errlen);
    if (code == AF_OK && cache) {
        cache->made++;
        cache->has_root = true;
        cache->root_pub = *root_pub;
        memcpy (cache->root_digest, digest, sizeof digest);
        cache->root = *root;
    }
    return code;
}

int
af_trust_check (const af_minisign_pub_t *root_pub, af_trust_cache_t *cache, const uint8_t *bundle, size_t size,
                const af_trust_want_t *want, af_trust_seen_t *seen, char *err, size_t errlen)
{
    assert (root_pub && want && seen);
    if (!bundle || size == 0)
        return snprintf (err, errlen, "the offer carries no signed metadata"), AF_E_FORBIDDEN;
    if (size > AF_MAX_META)
        return snprintf (err, errlen, "the metadata is over %d bytes", AF_MAX_META), AF_E_MALFORMED;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    parts_t parts;
    int code = AF_E_MALFORMED;
    char inner [300];
    if (msgpack_unpack_next (&unpacked, (const char *) bundle, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size)
        snprintf (err, errlen, "the metadata is not one msgpack value");
    else
    if (s_bundle_parts (&unpacked.data, &parts, err, errlen) == 0) {
        af_trust_root_t root;
        uint8_t digest [crypto_generichash_BYTES_MAX];
        const af_minisign_pub_t *by = NULL;
        if ((code = s_root (root_pub, cache, &parts, &root, inner, sizeof inner)) != AF_OK)
            snprintf (err, errlen, "root metadata: %s", inner);
        else
        if (root.expires <= want->now) {
            snprintf (err, errlen, "the root metadata (version %llu) expired %llu s ago",
                      (unsigned long long) root.version, (unsigned long long) ((want->now - root.expires) / 1000));
            code = AF_E_FORBIDDEN;
        }
        else
        if (root.version < seen->root) {
            snprintf (err, errlen, "rollback: the root metadata is version %llu, older than version %llu seen already",
                      (unsigned long long) root.version, (unsigned long long) seen->root);
            code = AF_E_FORBIDDEN;
        }
        else
        if (crypto_generichash (digest, sizeof digest, (const uint8_t *) parts.data [2], parts.size [2], NULL, 0),
            (code = s_verify_doc (cache, root.store, root.store_count, digest, parts.data [2], parts.size [2],
                                  parts.data [3], parts.size [3], &by, inner, sizeof inner)) != AF_OK)
            snprintf (err, errlen, "targets metadata: %s", inner);
        else {
            if (cache) {
                //  Verified: remember it, unless it is remembered already
                bool known = false;
                for (size_t i = 0; i < AF_TRUST_CACHE_DOCS && !known; i++)
                    known = cache->docs [i].used && memcmp (cache->docs [i].digest, digest, sizeof digest) == 0
                         && memcmp (&cache->docs [i].key, by, sizeof *by) == 0;
                if (!known) {
                    cached_doc_t *slot = &cache->docs [cache->next];
                    cache->next = (cache->next + 1) % AF_TRUST_CACHE_DOCS;
                    slot->used = true;
                    memcpy (slot->digest, digest, sizeof digest);
                    slot->key = *by;
                }
            }
            af_trust_seen_t next = { root.version, seen->targets, "" };
            code = af_trust_targets_check (parts.data [2], parts.size [2], want, &next, err, errlen);
            if (code == AF_OK)
                *seen = next;
        }
    }
    msgpack_unpacked_destroy (&unpacked);
    return code;
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    char dir [64];
    af_minisign_pub_t root_pub, store_pub;
    af_minisign_sec_t root_sec, store_sec;
    af_trust_cache_t *cache;            //  NULL: every check verifies everything
} fixture_t;

static void
s_publish (fixture_t *f, uint64_t root_version, uint64_t root_expires, const char *program, uint64_t expires,
           const af_minisign_sec_t *targets_key)
{
    char path [600], err [300], *text;
    snprintf (path, sizeof path, "%s/root.json", f->dir);
    af_trust_root_make (&f->store_pub, 1, root_version, root_expires, &text);
    assert (af_trust_write_signed (path, text, &f->root_sec, err, sizeof err) == AF_OK);
    free (text);
    af_target_entry_t target = { "android", 7, "1.7", "", 100, "" };
    memset (target.hash, 'a', AF_HASH_HEX);
    snprintf (path, sizeof path, "%s/targets/%s.json", f->dir, program);
    uint64_t version;
    text = af_trust_targets_make (path, program, &target, 1, expires, &version);
    assert (text && af_trust_write_signed (path, text, targets_key, err, sizeof err) == AF_OK);
    free (text);
}

static int
s_check (fixture_t *f, const char *program, uint64_t now, af_trust_seen_t *seen, char *err, size_t errlen)
{
    char hash [AF_HASH_HEX + 1];
    memset (hash, 'a', AF_HASH_HEX);
    hash [AF_HASH_HEX] = 0;
    uint8_t *bundle;
    size_t size;
    assert (af_trust_bundle_load (f->dir, program, &bundle, &size, err, errlen) == AF_OK);
    af_trust_want_t want = { program, hash, 100, 7, now, NULL };
    int code = af_trust_check (&f->root_pub, f->cache, bundle, size, &want, seen, err, errlen);
    free (bundle);
    return code;
}

//  The one-pass reader of targets documents: what jansson accepts, it
//  reads the same; what is not JSON, or names a member twice, it refuses
static void
s_test_reader (void)
{
    char hash [AF_HASH_HEX + 1], text [2000], err [300];
    memset (hash, 'a', AF_HASH_HEX);
    hash [AF_HASH_HEX] = 0;
    af_trust_want_t want = { "wei\u00e9", hash, 100, 7, 1000, "1.7" };
    const char *target = "{\"platform\":\"android\",\"versionCode\":7,\"versionName\":\"1.7\",\"hash\":\"%s\","
                         "\"size\":100,\"publisher\":\"0123456789ABCDEF\"%s}";
    struct { const char *head, *extra, *tail; int code; const char *says; } cases [] = {
        { "", "", "", AF_OK, NULL },
        //  unknown members of any type are skipped, white space anywhere
        { "\"note\": [1, -2.5e3, {\"x\": [true, false, null]}, \"\\\"\\ud83d\\ude00\"],", ", \"extra\": {}", " \n",
          AF_OK, NULL },
        { "\"program\":\"other\",", "", "", AF_E_MALFORMED, "at byte" },                 //  a member twice
        { "", ",\"hash\":\"b\"", "", AF_E_MALFORMED, "at byte" },                        //  in a target too
        { "", "", "x", AF_E_MALFORMED, "at byte" },                                         //  after the value
        { "\"n\": 99999999999999999999,", "", "", AF_E_MALFORMED, "at byte" },              //  too big an integer
        { "\"n\": 01,", "", "", AF_E_MALFORMED, "at byte" },
        { "\"n\": \"\\ud800\",", "", "", AF_E_MALFORMED, "at byte" },                     //  a lone surrogate
        { "\"n\": \"\xc0\xaf\",", "", "", AF_E_MALFORMED, "at byte" },                     //  overlong UTF-8
        { "\"n\": \"\x01\",", "", "", AF_E_MALFORMED, "at byte" },                          //  a control character
        { "\"n\": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]],", "", "", AF_E_MALFORMED, "at byte" }, //  too deep
        { "\"n\": [1,],", "", "", AF_E_MALFORMED, "at byte" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char one [600];
        snprintf (one, sizeof one, target, hash, cases [i].extra);
        snprintf (text, sizeof text, "{%s\"type\":\"appferry-targets\",\"program\":\"wei\\u00e9\",\"version\":3,"
                  "\"expires\":2000,\"targets\":[{\"hash\":\"bb\",\"size\":1},%s]}%s", cases [i].head, one, cases [i].tail);
        af_trust_seen_t seen = { 0, 0, "" };
        want.program = "wei\xc3\xa9";
        int code = af_trust_targets_check (text, strlen (text), &want, &seen, err, sizeof err);
        if (code != cases [i].code || (cases [i].says && !strstr (err, cases [i].says))) {
            printf ("case %zu: %d %s\n", i, code, err);
            assert (false);
        }
        assert (code != AF_OK || (seen.targets == 3 && streq (seen.key_id, "0123456789ABCDEF")));
        //  jansson agrees on what is JSON (it refuses duplicates as well)
        json_error_t jerr;
        json_t *doc = json_loadb (text, strlen (text), JSON_REJECT_DUPLICATES, &jerr);
        assert ((doc != NULL) == (code == AF_OK) || i == 10);   //  jansson nests deeper
        json_decref (doc);
    }
    //  Not a targets document; no target with the hash; a mistyped size
    snprintf (text, sizeof text, "{\"type\":\"appferry-root\",\"version\":1,\"expires\":1}");
    af_trust_seen_t seen = { 0, 0, "" };
    assert (af_trust_targets_check (text, strlen (text), &want, &seen, err, sizeof err) == AF_E_MALFORMED
            && strstr (err, "not an appferry-targets"));
    snprintf (text, sizeof text, "{\"type\":\"appferry-targets\",\"program\":\"x\",\"version\":1,\"expires\":9000,"
              "\"targets\":[{\"hash\":\"%s\",\"size\":\"100\",\"versionCode\":7}]}", hash);
    want.program = "x";
    assert (af_trust_targets_check (text, strlen (text), &want, &seen, err, sizeof err) == AF_E_MALFORMED);
    snprintf (text, sizeof text, "{\"type\":\"appferry-targets\",\"program\":\"x\",\"version\":1,\"expires\":9000,"
              "\"targets\":[{\"hash\":\"%s\",\"size\":100,\"versionCode\":8}]}", hash);
    assert (af_trust_targets_check (text, strlen (text), &want, &seen, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "differs"));
    want.hash = "cc";
    assert (af_trust_targets_check (text, strlen (text), &want, &seen, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "no signed target"));
}

static void s_test_chain (bool verbose, af_trust_cache_t *cache);

void
af_trust_test (bool verbose)
{
    printf (" * af_trust: ");
    s_test_reader ();
    s_test_chain (verbose, NULL);
    af_trust_cache_t *cache = af_trust_cache_new ();
    s_test_chain (verbose, cache);
    uint64_t spared, made;
    af_trust_cache_counts (cache, &spared, &made);
    assert (spared > 0 && made > 0);
    af_trust_cache_destroy (&cache);
    assert (cache == NULL);
    printf ("OK\n");
}

//  The chain's checks, with or without a cache: the same answers
static void
s_test_chain (bool verbose, af_trust_cache_t *cache)
{
    fixture_t f;
    f.cache = cache;
    snprintf (f.dir, sizeof f.dir, "/tmp/af_trust_test.XXXXXX");
    assert (mkdtemp (f.dir));
    assert (zsys_dir_create ("%s/targets", f.dir) == 0);
    af_minisign_keygen (&f.root_pub, &f.root_sec);
    af_minisign_keygen (&f.store_pub, &f.store_sec);
    char err [300];
    uint64_t now = 1700000000000, day = 86400000;
    af_trust_seen_t seen = { 0, 0, "" };

    //  A good chain passes and raises what was seen
    s_publish (&f, 1, now + day, "weixin", now + day, &f.store_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_OK);
    //  The version name, when asked, must be the signed target's (a restore's
    //  permission is given by it); the target's publisher key comes out
    {
        char hash [AF_HASH_HEX + 1];
        memset (hash, 'a', AF_HASH_HEX);
        hash [AF_HASH_HEX] = 0;
        uint8_t *bundle;
        size_t size;
        assert (af_trust_bundle_load (f.dir, "weixin", &bundle, &size, err, sizeof err) == AF_OK);
        af_trust_want_t named = { "weixin", hash, 100, 7, now, "9.9" };
        af_trust_seen_t again = seen;
        assert (af_trust_check (&f.root_pub, f.cache, bundle, size, &named, &again, err, sizeof err) == AF_E_FORBIDDEN
                && strstr (err, "version name 9.9"));
        named.version_name = "1.7";
        assert (af_trust_check (&f.root_pub, f.cache, bundle, size, &named, &again, err, sizeof err) == AF_OK);
        free (bundle);
    }
    assert (seen.root == 1 && seen.targets == 1);
    //  Expired targets, then expired root
    assert (s_check (&f, "weixin", now + 2 * day, &seen, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "expired"));
    //  Targets version 2, seen; the old version 1 replayed is a rollback
    char path [600], saved [700];
    snprintf (path, sizeof path, "%s/targets/weixin.json", f.dir);
    snprintf (saved, sizeof saved, "cp %s %s.v1 && cp %s.minisig %s.v1.minisig", path, path, path, path);
    assert (system (saved) == 0);
    s_publish (&f, 1, now + day, "weixin", now + day, &f.store_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_OK && seen.targets == 2);
    snprintf (saved, sizeof saved, "cp %s.v1 %s && cp %s.v1.minisig %s.minisig", path, path, path, path);
    assert (system (saved) == 0);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "rollback"));
    if (verbose)
        printf ("(%s) ", err);
    //  Targets signed by a key the root does not list: refused (a document
    //  of other bytes than the store signed: the same bytes are the store's,
    //  whoever signed them again, and a cache rightly knows them)
    af_minisign_pub_t rogue_pub;
    af_minisign_sec_t rogue_sec;
    af_minisign_keygen (&rogue_pub, &rogue_sec);
    s_publish (&f, 1, now + day, "weixin", now + day - 1, &rogue_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "not a key trusted"));
    //  Rotation: the root lists a new store key (root version 2); targets
    //  it signs pass, and those of the old key no longer do
    //  (and a document the old key signed, verified and cached before the
    //  rotation, does not pass again on the strength of the cache)
    af_minisign_sec_t old_sec = f.store_sec;
    s_publish (&f, 1, now + day, "weixin", now + day, &f.store_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_OK);
    snprintf (saved, sizeof saved, "cp %s %s.old && cp %s.minisig %s.old.minisig", path, path, path, path);
    assert (system (saved) == 0);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_OK);     //  from the cache, if any
    af_minisign_keygen (&f.store_pub, &f.store_sec);
    s_publish (&f, 2, now + day, "weixin", now + day, &f.store_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_OK && seen.root == 2);
    s_publish (&f, 2, now + day, "weixin", now + day, &old_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_E_FORBIDDEN);
    snprintf (saved, sizeof saved, "cp %s.old %s && cp %s.old.minisig %s.minisig", path, path, path, path);
    assert (system (saved) == 0);
    seen.targets = 0;
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "not a key trusted"));
    //  A root signed by another root key: refused
    fixture_t g = f;
    af_minisign_keygen (&g.root_pub, &g.root_sec);
    s_publish (&g, 3, now + day, "weixin", now + day, &g.store_sec);
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "root metadata"));
    //  Other programs' targets are not this one's; unknown hash; garbage
    s_publish (&f, 3, now + day, "other", now + day, &f.store_sec);
    snprintf (saved, sizeof saved, "cp %s/targets/other.json %s/targets/weixin.json && cp %s/targets/other.json.minisig "
              "%s/targets/weixin.json.minisig", f.dir, f.dir, f.dir, f.dir);
    assert (system (saved) == 0);
    seen.targets = 0;
    assert (s_check (&f, "weixin", now, &seen, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "for program 'other'"));
    af_trust_want_t want = { "other", "bbbb", 100, 7, now, NULL };
    uint8_t *bundle;
    size_t size;
    assert (af_trust_bundle_load (f.dir, "other", &bundle, &size, err, sizeof err) == AF_OK);
    assert (af_trust_check (&f.root_pub, f.cache, bundle, size, &want, &seen, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "no signed target"));
    bundle [size / 2] ^= 1;
    assert (af_trust_check (&f.root_pub, f.cache, bundle, size, &want, &seen, err, sizeof err) != AF_OK);
    free (bundle);
    assert (af_trust_check (&f.root_pub, f.cache, (const uint8_t *) "\x80", 1, &want, &seen, err, sizeof err) == AF_E_MALFORMED);
    assert (af_trust_check (&f.root_pub, f.cache, NULL, 0, &want, &seen, err, sizeof err) == AF_E_FORBIDDEN);
    assert (af_trust_bundle_load (f.dir, "absent", &bundle, &size, err, sizeof err) == AF_E_NO_BLOB);
    char cmd [200];
    snprintf (cmd, sizeof cmd, "rm -rf %s", f.dir);
    assert (system (cmd) == 0);
}
