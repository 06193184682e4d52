/*  =========================================================================
    af_trust - the store's signed metadata (TUF, simplified) and its checks

    Who signs what (protocol/SPEC.md 11, "The signed store"):
      root key (offline)   root.json: the store's online keys, a version
                           that only rises, an expiry; and publishers.json:
                           each publisher's key and the programs it may
                           sign, its own version and expiry
      store key (online)   targets/PROGRAM.json: every package of the
                           program the catalog holds (platform, version,
                           hash, size, the publisher key that signed it),
                           a version that only rises, an expiry
      publisher keys       each package file (FILE.minisig), checked by
                           `appferry-catalog import` against publishers.json
    Every document is JSON, signed as the exact bytes of its file by a
    detached minisign signature (FILE.minisig, af_minisign), so no
    canonical form is needed and `minisign -V` can check any of them.

    The bundle: what travels with an OFFER (its `meta` field) so that the
    device can check the package without trusting the broker:
      msgpack map { "root": bin, "rootSig": bin, "targets": bin,
                    "targetsSig": bin }
    read from the catalog's meta/ directory (af_trust_bundle_load) and
    checked by the node against the root public key it was given
    (af_trust_check).
    =========================================================================
*/
#ifndef AF_TRUST_H_INCLUDED
#define AF_TRUST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"
#include "af_minisign.h"

//  The root document: which online keys may sign targets
typedef struct {
    uint64_t version;
    uint64_t expires;                   //  ms since the epoch
    size_t store_count;
    af_minisign_pub_t store [AF_MAX_STORE_KEYS];
} af_trust_root_t;

//  One publisher of publishers.json
typedef struct {
    char name [AF_MAX_DISPLAY + 1];
    af_minisign_pub_t key;
    size_t program_count;
    char programs [AF_MAX_PUBLISHER_PROGRAMS][AF_MAX_PROGRAM + 2];  //  a name, or a prefix and '*'
} af_publisher_t;

typedef struct {
    uint64_t version;
    uint64_t expires;
    size_t count;
    af_publisher_t *publishers;         //  owned: af_trust_publishers_free
} af_trust_publishers_t;

//  The "type" of each kind of document
#define AF_TRUST_TARGETS_TYPE   "appferry-targets"

//  One target of a targets document
typedef struct {
    char platform [AF_MAX_PLATFORM + 1];
    uint64_t version_code;
    char version_name [AF_MAX_VERSION_NAME + 1];
    char hash [AF_HASH_HEX + 1];
    uint64_t size;
    char publisher [AF_MINISIGN_KEYID_HEX + 1];     //  key ID that signed the file
} af_target_entry_t;

//  What the device was offered, to check against the bundle
typedef struct {
    const char *program;
    const char *hash;
    uint64_t size;
    uint64_t version_code;
    uint64_t now;                       //  ms since the epoch
    const char *version_name;           //  if not NULL: the target's versionName must be it
} af_trust_want_t;

//  The highest versions a device has seen (in: the last; out: the new)
typedef struct {
    uint64_t root;
    uint64_t targets;                   //  of the offer's program
    char key_id [AF_MINISIGN_KEYID_HEX + 1];    //  out: the publisher key that signed the target
} af_trust_seen_t;

//  Read a document and its FILE.minisig, and check the signature by one
//  of keys. A new buffer (NUL-terminated) in *text, with its length; or
//  AF_E_INTERNAL (cannot read), AF_E_MALFORMED (no signature, not
//  minisign, over AF_MAX_META_DOC), AF_E_FORBIDDEN (signed by no key
//  given, or altered), with err.
int af_trust_load_signed (const char *path, const af_minisign_pub_t *keys, size_t key_count,
                          char **text, size_t *len, char *err, size_t errlen);

//  Write text as path and its signature by sec as path.minisig (each
//  whole: temp file, fsync, rename; the signature last, so a reader that
//  finds a new document with the old signature refuses it and a later
//  write mends it). AF_OK or AF_E_INTERNAL with err.
int af_trust_write_signed (const char *path, const char *text, const af_minisign_sec_t *sec,
                           char *err, size_t errlen);

//  Parse documents (their signatures checked already). AF_OK or
//  AF_E_MALFORMED with err naming the field.
int af_trust_root_parse (const char *text, size_t len, af_trust_root_t *root, char *err, size_t errlen);
int af_trust_publishers_parse (const char *text, size_t len, af_trust_publishers_t *pubs,
                               char *err, size_t errlen);
void af_trust_publishers_free (af_trust_publishers_t *pubs);

//  The publisher with this key ID, or NULL.
const af_publisher_t *af_trust_publisher_find (const af_trust_publishers_t *pubs, const uint8_t *key_id);

//  Whether a publisher may sign program: a name in its list, or a prefix
//  ending in '*' ("com.tencent.*", "*").
bool af_trust_publisher_allows (const af_publisher_t *publisher, const char *program);

//  Make the two root documents' text (free them): root.json from the
//  store keys, publishers.json from an input array of { name, key (a
//  minisign public key line, or a .pub file below base_dir), programs }.
//  AF_OK, or AF_E_MALFORMED / AF_E_TOO_BIG / AF_E_INTERNAL with err.
int af_trust_root_make (const af_minisign_pub_t *store, size_t store_count, uint64_t version,
                        uint64_t expires, char **text);
int af_trust_publishers_make (const char *input_path, uint64_t version, uint64_t expires, char **text,
                              char *err, size_t errlen);

//  Make the targets document of a program, its version one more than the
//  one in the file at path (1 if none or unreadable). A new string; NULL
//  over AF_MAX_META_DOC.
char *af_trust_targets_make (const char *path, const char *program, const af_target_entry_t *targets,
                             size_t count, uint64_t expires, uint64_t *version);

//  The bundle for a program from a catalog's meta directory: a new buffer
//  in *bundle. AF_OK; AF_E_NO_BLOB (the catalog has no signed metadata
//  for the program); AF_E_INTERNAL (cannot read); AF_E_TOO_BIG (over
//  AF_MAX_META), with err.
int af_trust_bundle_load (const char *meta_dir, const char *program, uint8_t **bundle, size_t *size,
                          char *err, size_t errlen);

//  The checks of a targets document whose signature was verified already
//  (af_trust_check's last step): read in one pass (strict JSON; a known
//  member twice is refused, unknown members are skipped), of the type
//  and want->program, not expired, its version not below seen->targets,
//  and a target with want's hash, size, version code (and version name).
//  AF_OK with seen->targets and seen->key_id set; AF_E_FORBIDDEN or
//  AF_E_MALFORMED with err.
int af_trust_targets_check (const char *text, size_t len, const af_trust_want_t *want, af_trust_seen_t *seen,
                            char *err, size_t errlen);

//  What a device remembers between checks (one per root key): the root
//  document it verified last, parsed, and the BLAKE2b-512 digests of the
//  last AF_TRUST_CACHE_DOCS targets documents it verified, each with the
//  store key whose signature it checked. A document met again, byte for
//  byte, is not verified again; everything that depends on the moment
//  (expiry, the versions seen, whether the root still lists that store
//  key) is checked every time. Not thread-safe: one per checking thread.
typedef struct _af_trust_cache_t af_trust_cache_t;

//  A new, empty cache. Never NULL.
af_trust_cache_t *af_trust_cache_new (void);

//  Free it. Sets *self_p to NULL.
void af_trust_cache_destroy (af_trust_cache_t **self_p);

//  Documents a cache spared verifying, and those it verified (for tests).
void af_trust_cache_counts (af_trust_cache_t *self, uint64_t *spared, uint64_t *made);

//  Check a bundle for an offer: the root document signed by root_pub and
//  not expired, its version not below seen->root; the targets document
//  signed by a store key the root lists, for want->program, not expired,
//  its version not below seen->targets (rollback); and a target with
//  want's hash, size and version code (and version name, if want names
//  one). Signatures are verified over the documents' bytes before they
//  are parsed; with cache (may be NULL) a document verified before is
//  recognised by its digest instead. AF_OK with seen raised to the
//  bundle's versions and key_id the target's publisher key; or
//  AF_E_FORBIDDEN (a check failed: err names it), AF_E_MALFORMED (not a
//  bundle, or a document that does not parse).
int af_trust_check (const af_minisign_pub_t *root_pub, af_trust_cache_t *cache, const uint8_t *bundle,
                    size_t size, const af_trust_want_t *want, af_trust_seen_t *seen, char *err, size_t errlen);

//  Self test
void af_trust_test (bool verbose);

#endif
