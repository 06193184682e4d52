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
    building a tree (below, "The targets document"), and may keep an
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
#define S_TARGETS_TYPE  "appferry-targets"

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
    char *text = s_dump (json_pack ("{s:s, s:s, s:I, s:I, s:o}", "type", S_TARGETS_TYPE, "program", program,
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
//  The targets document, read in one pass
//
//  A program of 256 packages has a 46 KB targets document, and jansson's
//  tree of it (a hash table and an allocation per member) was 8.5 M of
//  the 12 M instructions of a check (bench_trust, callgrind). A device
//  needs one target of it, so this reader builds nothing: it checks the
//  whole text is JSON (RFC 8259: strings with valid escapes and UTF-8,
//  integers that fit, nesting at most AF_MAX_META_DEPTH, nothing after
//  the value), reads the head, and keeps the first target whose hash is
//  the one offered. A member it knows that appears twice is refused (so
//  two readers cannot see two documents); members it does not know are
//  read and skipped.

typedef struct {
    const char *at, *end;
    int depth;
} scan_t;

static void
s_ws (scan_t *s)
{
    while (s->at < s->end && (*s->at == ' ' || *s->at == '\n' || *s->at == '\r' || *s->at == '\t'))
        s->at++;
}

//  The next character (after white space) is c: consume it
static bool
s_take (scan_t *s, char c)
{
    s_ws (s);
    if (s->at < s->end && *s->at == c) {
        s->at++;
        return true;
    }
    return false;
}

static int
s_hex4 (scan_t *s, uint32_t *value)
{
    if (s->end - s->at < 4)
        return -1;
    *value = 0;
    for (int i = 0; i < 4; i++) {
        char c = *s->at++;
        int digit = c >= '0' && c <= '9'? c - '0': c >= 'a' && c <= 'f'? c - 'a' + 10: c >= 'A' && c <= 'F'? c - 'A' + 10: -1;
        if (digit < 0)
            return -1;
        *value = *value << 4 | (uint32_t) digit;
    }
    return 0;
}

//  One UTF-8 sequence starting at lead (consumed), strictly: no overlong
//  forms, no surrogates, nothing above U+10FFFF. Its length, or 0.
static size_t
s_utf8 (scan_t *s, unsigned char lead)
{
    size_t more = lead >= 0xC2 && lead <= 0xDF? 1: lead >= 0xE0 && lead <= 0xEF? 2: lead >= 0xF0 && lead <= 0xF4? 3: 0;
    if (!more || (size_t) (s->end - s->at) < more)
        return 0;
    const unsigned char *next = (const unsigned char *) s->at;
    for (size_t i = 0; i < more; i++)
        if ((next [i] & 0xC0) != 0x80)
            return 0;
    if ((lead == 0xE0 && next [0] < 0xA0) || (lead == 0xED && next [0] > 0x9F)
    ||  (lead == 0xF0 && next [0] < 0x90) || (lead == 0xF4 && next [0] > 0x8F))
        return 0;
    s->at += more;
    return more + 1;
}

//  Append count bytes to a string being read
static void
s_append (char *out, size_t size, size_t *n, bool *room, const char *from, size_t count)
{
    if (out && *room && *n + count < size) {
        memcpy (out + *n, from, count);
        *n += count;
    }
    else
        *room = false;
}

//  A string. Its bytes, unescaped, into out (size bytes, NUL-terminated)
//  unless out is NULL; *fits false if they did not fit. 0 or -1.
static int
s_string (scan_t *s, char *out, size_t size, bool *fits)
{
    s_ws (s);
    if (s->at >= s->end || *s->at != '"')
        return -1;
    s->at++;
    size_t n = 0;
    bool room = true;
    while (true) {
        //  A run of plain ASCII, copied at once: all a targets document has
        const char *run = s->at;
        while (s->at < s->end && (unsigned char) *s->at >= 0x20 && (unsigned char) *s->at < 0x80
               && *s->at != '"' && *s->at != '\\')
            s->at++;
        if (s->at > run)
            s_append (out, size, &n, &room, run, (size_t) (s->at - run));
        if (s->at >= s->end)
            return -1;
        const char *from = s->at;
        unsigned char c = (unsigned char) *s->at++;
        char bytes [4];
        size_t count;
        if (c == '"') {
            if (out)
                out [room? n: 0] = 0;
            if (fits)
                *fits = room;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->at >= s->end)
                return -1;
            uint32_t cp;
            char e = *s->at++;
            switch (e) {
                case '"': case '\\': case '/': cp = (uint32_t) e; break;
                case 'b': cp = '\b'; break;
                case 'f': cp = '\f'; break;
                case 'n': cp = '\n'; break;
                case 'r': cp = '\r'; break;
                case 't': cp = '\t'; break;
                case 'u':
                    if (s_hex4 (s, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                        return -1;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        uint32_t low;
                        if (s->end - s->at < 2 || s->at [0] != '\\' || s->at [1] != 'u')
                            return -1;
                        s->at += 2;
                        if (s_hex4 (s, &low) || low < 0xDC00 || low > 0xDFFF)
                            return -1;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    break;
                default:
                    return -1;
            }
            if (cp < 0x80)
                bytes [0] = (char) cp, count = 1;
            else
            if (cp < 0x800)
                bytes [0] = (char) (0xC0 | cp >> 6), bytes [1] = (char) (0x80 | (cp & 0x3F)), count = 2;
            else
            if (cp < 0x10000)
                bytes [0] = (char) (0xE0 | cp >> 12), bytes [1] = (char) (0x80 | (cp >> 6 & 0x3F)),
                bytes [2] = (char) (0x80 | (cp & 0x3F)), count = 3;
            else
                bytes [0] = (char) (0xF0 | cp >> 18), bytes [1] = (char) (0x80 | (cp >> 12 & 0x3F)),
                bytes [2] = (char) (0x80 | (cp >> 6 & 0x3F)), bytes [3] = (char) (0x80 | (cp & 0x3F)), count = 4;
            from = bytes;
        }
        else
        if ((count = s_utf8 (s, c)) == 0)
            return -1;
        s_append (out, size, &n, &room, from, count);
    }
}

//  A number; *integer true and *value set if it is an integer (no
//  fraction, no exponent) that fits in 63 bits. 0 or -1.
static int
s_number (scan_t *s, bool *integer, int64_t *value)
{
    s_ws (s);
    const char *p = s->at;
    bool negative = p < s->end && *p == '-';
    p += negative;
    if (p >= s->end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < s->end && p [1] >= '0' && p [1] <= '9'))
        return -1;
    uint64_t v = 0;
    bool over = false;
    while (p < s->end && *p >= '0' && *p <= '9') {
        over = over || v > (uint64_t) (INT64_MAX - (*p - '0')) / 10;
        v = v * 10 + (uint64_t) (*p++ - '0');
    }
    *integer = true;
    if (p < s->end && *p == '.') {
        if (++p >= s->end || *p < '0' || *p > '9')
            return -1;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        *integer = false;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return -1;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        *integer = false;
    }
    if (*integer && over)
        return -1;                      //  as jansson: an integer too big is an error
    s->at = p;
    *value = negative? -(int64_t) v: (int64_t) v;
    return 0;
}

static int s_skip (scan_t *s);

//  An object or array, its members skipped
static int
s_skip_nested (scan_t *s, bool object)
{
    if (++s->depth > AF_MAX_META_DEPTH)
        return -1;
    if (!s_take (s, object? '}': ']')) {
        do {
            if ((object && (s_string (s, NULL, 0, NULL) || !s_take (s, ':'))) || s_skip (s))
                return -1;
        } while (s_take (s, ','));
        if (!s_take (s, object? '}': ']'))
            return -1;
    }
    s->depth--;
    return 0;
}

//  Any value, read and dropped
static int
s_skip (scan_t *s)
{
    s_ws (s);
    if (s->at >= s->end)
        return -1;
    bool integer;
    int64_t value;
    size_t left = (size_t) (s->end - s->at);
    switch (*s->at) {
        case '"': return s_string (s, NULL, 0, NULL);
        case '{': s->at++; return s_skip_nested (s, true);
        case '[': s->at++; return s_skip_nested (s, false);
        case 't': return left >= 4 && memcmp (s->at, "true", 4) == 0? (s->at += 4, 0): -1;
        case 'f': return left >= 5 && memcmp (s->at, "false", 5) == 0? (s->at += 5, 0): -1;
        case 'n': return left >= 4 && memcmp (s->at, "null", 4) == 0? (s->at += 4, 0): -1;
        default:  return s_number (s, &integer, &value);
    }
}

//  A member's name, among names (its index), or -1 for another name; -2 if
//  the text is not a name and ':'. A known name seen before (bit set in
//  *seen) is an error too (-2).
static int
s_member (scan_t *s, const char *const *names, int count, uint32_t *seen)
{
    char name [32];
    bool fits;
    if (s_string (s, name, sizeof name, &fits) || !s_take (s, ':'))
        return -2;
    for (int i = 0; fits && i < count; i++)
        if (streq (name, names [i])) {
            if (*seen & (1u << i))
                return -2;
            *seen |= 1u << i;
            return i;
        }
    return -1;
}

//  A string member that must fit in out; an integer member
static int
s_str_field (scan_t *s, char *out, size_t size)
{
    bool fits;
    return s_string (s, out, size, &fits) == 0 && fits? 0: -1;
}

static int
s_int_field (scan_t *s, int64_t *value)
{
    bool integer;
    return s_number (s, &integer, value) == 0 && integer? 0: -1;
}

//  What the reader kept of a targets document
typedef struct {
    char type [32];
    char program [AF_MAX_PROGRAM + 1];
    int64_t version, expires;
    uint32_t seen;                      //  bits of the head's members read
    bool found;                         //  a target has the hash wanted
    uint32_t found_seen;                //  which of its members it had
    af_target_entry_t target;           //  that target
    char where [80];                    //  what did not parse
} targets_read_t;

enum { T_TYPE, T_PROGRAM, T_VERSION, T_EXPIRES, T_TARGETS };
enum { E_PLATFORM, E_CODE, E_NAME, E_HASH, E_SIZE, E_PUBLISHER };

//  One target object: kept if its hash is wanted and none was found yet
static int
s_target_read (scan_t *s, const char *hash, targets_read_t *read)
{
    static const char *const names [] = { "platform", "versionCode", "versionName", "hash", "size", "publisher" };
    af_target_entry_t t;
    int64_t code = -1, size = -1;
    uint32_t seen = 0;
    bool hash_fits = false;
    memset (&t, 0, sizeof t);
    if (!s_take (s, '{'))
        return -1;
    if (++s->depth > AF_MAX_META_DEPTH)
        return -1;
    if (!s_take (s, '}')) {
        do {
            int rc, member = s_member (s, names, 6, &seen);
            switch (member) {
                case -2:          return -1;
                case E_PLATFORM:  rc = s_str_field (s, t.platform, sizeof t.platform); break;
                case E_CODE:      rc = s_int_field (s, &code); break;
                case E_NAME:      rc = s_str_field (s, t.version_name, sizeof t.version_name); break;
                case E_HASH:      rc = s_string (s, t.hash, sizeof t.hash, &hash_fits); break;
                case E_SIZE:      rc = s_int_field (s, &size); break;
                case E_PUBLISHER: rc = s_str_field (s, t.publisher, sizeof t.publisher); break;
                default:          rc = s_skip (s);
            }
            if (rc)
                return -1;
        } while (s_take (s, ','));
        if (!s_take (s, '}'))
            return -1;
    }
    s->depth--;
    if (!read->found && hash_fits && streq (t.hash, hash)) {
        read->found = true;
        read->found_seen = seen;
        t.version_code = code < 0? UINT64_MAX: (uint64_t) code;
        t.size = size < 0? UINT64_MAX: (uint64_t) size;
        read->target = t;
    }
    return 0;
}

//  Read a targets document for the target of hash. 0, or -1 with
//  read->where naming the byte it stopped at.
static int
s_targets_read (const char *text, size_t len, const char *hash, targets_read_t *read)
{
    static const char *const names [] = { "type", "program", "version", "expires", "targets" };
    scan_t s = { text, text + len, 1 };
    memset (read, 0, sizeof *read);
    read->version = read->expires = -1;
    int rc = s_take (&s, '{')? 0: -1;
    if (rc == 0 && !s_take (&s, '}')) {
        do {
            int member = s_member (&s, names, 5, &read->seen);
            switch (member) {
                case -2:        rc = -1; break;
                case T_TYPE:    rc = s_str_field (&s, read->type, sizeof read->type); break;
                case T_PROGRAM: rc = s_str_field (&s, read->program, sizeof read->program); break;
                case T_VERSION: rc = s_int_field (&s, &read->version); break;
                case T_EXPIRES: rc = s_int_field (&s, &read->expires); break;
                case T_TARGETS:
                    rc = s_take (&s, '[')? 0: -1;
                    if (rc == 0 && !s_take (&s, ']')) {
                        do
                            rc = s_target_read (&s, hash, read);
                        while (rc == 0 && s_take (&s, ','));
                        if (rc == 0 && !s_take (&s, ']'))
                            rc = -1;
                    }
                    break;
                default:        rc = s_skip (&s);
            }
        } while (rc == 0 && s_take (&s, ','));
        if (rc == 0 && !s_take (&s, '}'))
            rc = -1;
    }
    s_ws (&s);
    if (rc == 0 && s.at != s.end)
        rc = -1;
    if (rc)
        snprintf (read->where, sizeof read->where, "not valid JSON, or a member twice or mistyped, at byte %zu",
                  (size_t) (s.at - text));
    return rc;
}

int
af_trust_targets_check (const char *text, size_t len, const af_trust_want_t *want, af_trust_seen_t *seen,
                        char *err, size_t errlen)
{
    assert (text && want && seen);
    targets_read_t read;
    if (s_targets_read (text, len, want->hash, &read))
        return snprintf (err, errlen, "targets metadata: %s", read.where), AF_E_MALFORMED;
    if (!(read.seen & (1u << T_TYPE)) || strcmp (read.type, S_TARGETS_TYPE))
        return snprintf (err, errlen, "not an %s document", S_TARGETS_TYPE), AF_E_MALFORMED;
    if (read.version < 1 || read.expires < 0)
        return snprintf (err, errlen, "%s: 'version' (1 or more) and 'expires' (ms) must be integers",
                         S_TARGETS_TYPE), AF_E_MALFORMED;
    uint64_t version = (uint64_t) read.version, expires = (uint64_t) read.expires;
    if (!(read.seen & (1u << T_PROGRAM)) || strcmp (read.program, want->program))
        return snprintf (err, errlen, "the signed targets are for program '%s', not '%s'",
                         read.seen & (1u << T_PROGRAM)? read.program: "?", want->program), AF_E_FORBIDDEN;
    if (expires <= want->now)
        return snprintf (err, errlen, "the targets metadata of '%s' (version %llu) expired %llu s ago", want->program,
                         (unsigned long long) version, (unsigned long long) ((want->now - expires) / 1000)), AF_E_FORBIDDEN;
    if (version < seen->targets)
        return snprintf (err, errlen, "rollback: the targets metadata of '%s' is version %llu, older than version "
                         "%llu seen already", want->program, (unsigned long long) version,
                         (unsigned long long) seen->targets), AF_E_FORBIDDEN;
    if (!read.found)
        return snprintf (err, errlen, "no signed target of '%s' has hash %.16s... (not a package of the store)",
                         want->program, want->hash), AF_E_FORBIDDEN;
    const af_target_entry_t *t = &read.target;
    if (t->size != want->size || t->version_code != want->version_code)
        return snprintf (err, errlen, "the offer's size or version of %.16s... differs from the signed target",
                         want->hash), AF_E_FORBIDDEN;
    if (want->version_name && (!(read.found_seen & (1u << E_NAME)) || strcmp (t->version_name, want->version_name)))
        return snprintf (err, errlen, "the offer's version name %s of %.16s... is not the signed target's",
                         want->version_name, want->hash), AF_E_FORBIDDEN;
    seen->targets = version;
    snprintf (seen->key_id, sizeof seen->key_id, "%s", t->publisher);
    return AF_OK;
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
