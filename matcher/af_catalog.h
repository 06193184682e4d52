/*  =========================================================================
    af_catalog - the package catalog and the resolver (the matcher's core)

    The catalog is its own LMDB environment plus a directory of package
    files stored by content hash. Resolution is the hot path of the
    matcher: one mdb_get returns every package of a program as an array of
    fixed-size "fit records" (everything the decision needs, no decoding),
    the winner is chosen in place, and only the answer is written out: the
    winner's package, or the closest package and its one no-fit reason,
    built once at the end without printf (about 2,700 instructions per
    resolution, 1,700 of them LMDB's lookup; see bench/README.md).
    Matchers open the catalog read-only and reuse one read transaction, so
    any number of them can serve one catalog; an import (one write
    transaction) is visible to them at their next request.

    Named databases (all values little-endian; this code requires a
    little-endian host, checked at compile time):
      programs  key: program ID
                value: msgpack map { name, publisher, category, votes }
      packages  key: program ID, 0x00, package ID (16 bytes)
                value: msgpack package map (protocol/SPEC.md "Package map")
      signers   key: program ID, 0x00, package ID (16 bytes)
                value: the key ID (8 bytes) of the publisher who signed it
      categories key: category, 0x00, UINT32_MAX - votes (4 bytes big-endian),
                program ID; value: empty. Programs by category, the most
                voted first: what a recommendation walks (af_catalog_recommend).
                Kept by each import; a program without a category has none.
      fit       key: program ID
                value: af_fit_head_t (8 bytes: count, offset of the text area),
                       then count af_fit_rec_t (104 bytes each), then the text
                       area: votes (4 bytes), name, publisher, category (each
                       NUL-terminated), then per package at rec.text:
                       versionName, storeLink (NUL-terminated). Resolution
                       needs nothing else, so it is one mdb_get.
    Trust: DIR/meta/ and DIR/keys/ (matcher/af_signer.h).
    Files: DIR/blobs/ab/ab01...ff (BLAKE2b-256 hex of the file), written via
    temp file + fsync + rename; the same bytes are stored once.
    =========================================================================
*/
#ifndef AF_CATALOG_H_INCLUDED
#define AF_CATALOG_H_INCLUDED

#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_device.h"
#include "af_package.h"
#include "af_minisign.h"

//  Longest time, in ms, one read snapshot serves resolutions
#define AF_CATALOG_SNAPSHOT_MS 50

//  ABIs the catalog knows, as bits of af_fit_rec_t.abi_mask
#define AF_ABI_COUNT 8
extern const char *af_abi_names [AF_ABI_COUNT];

//  One package as the resolver sees it: fixed size, packed, no pointers
typedef struct {            //  naturally aligned: no padding (checked)
    uint8_t package_id [AF_ID_SIZE];
    uint8_t hash [AF_HASH_SIZE];        //  zero for store-only packages
    uint64_t version_code;
    uint64_t size;
    uint32_t os_min;                    //  Android: API level; else af_version; 0 = none
    uint32_t os_max;                    //  0 = no maximum
    uint32_t abi_mask;                  //  bits of af_abi_names; 0 = any ABI
    uint32_t price_cents;
    uint16_t density_min, density_max;  //  dpi; 0 = no bound
    uint16_t density;                   //  target dpi for "nearest density"; 0 = none
    uint16_t min_short, min_long;       //  minimum screen sides in pixels; 0 = none
    uint8_t platform;                   //  af_platform_t
    uint8_t form_mask;                  //  bit (1 << af_form_t); 0 = every form factor
    uint8_t store_only;                 //  installs only from its platform's store
    char currency [AF_CURRENCY];        //  ISO 4217 code of price_cents, no NUL; zeros when free
    uint32_t text;                      //  offset of this package's strings in the text area
    uint32_t reserved2;
} af_fit_rec_t;

typedef struct {
    uint32_t count;                     //  fit records that follow
    uint32_t text;                      //  offset of the text area from the value's start
} af_fit_head_t;

//  A parsed manifest entry, ready to add
typedef struct {
    af_package_t package;               //  identity, display fields, hash, size
    af_fit_rec_t fit;                   //  constraints (package_id/hash filled by add)
    char file [PATH_MAX];               //  package file to store; "" if none
    int line;                           //  manifest line, for messages
    bool is_signed;                     //  signer holds the publisher's key ID
    uint8_t signer [AF_MINISIGN_KEYID_SIZE];
} af_catalog_entry_t;

typedef struct _af_catalog_t af_catalog_t;

//  Open the catalog in dir (created when writable). NULL on failure (logged).
af_catalog_t *af_catalog_new (const char *dir, bool writable);

//  Close it. Sets *self_p to NULL.
void af_catalog_destroy (af_catalog_t **self_p);

//  Import a JSON manifest (matcher/MANIFEST.md). All or nothing: every
//  entry is checked and every file hashed and stored before one write
//  transaction. AF_OK with *imported the number of packages, or with err
//  naming the manifest (and the entry and its line) and nothing imported:
//  AF_E_MALFORMED (not a JSON array of valid entries, or an entry's file
//  is not a regular file), AF_E_TOO_BIG (a manifest over AF_MAX_MANIFEST
//  bytes, a program with more than AF_MAX_PACKAGES_PER_PROGRAM packages),
//  AF_E_FORBIDDEN (the catalog is open read-only; a package file without
//  a valid signature by a publisher trusted for its program; a catalog
//  without trust and unsigned packages not allowed), AF_E_INTERNAL (the
//  manifest or a package file cannot be opened or read, errno's text in
//  err; or a store error, LMDB's).
int af_catalog_import (af_catalog_t *self, const char *manifest_path, size_t *imported,
                       char *err, size_t errlen);

//  Signing (protocol/af_trust, matcher/af_signer): a catalog with trust
//  installed checks every package file's publisher signature at import
//  and signs each imported program's targets, valid for expires_s
//  seconds (default AF_TRUST_TARGETS_DAYS days). A catalog without
//  trust refuses to import package files unless allow_unsigned is set.
void af_catalog_set_signing (af_catalog_t *self, bool allow_unsigned, uint64_t expires_s);

//  Sign the targets of every program again (a new store key, or to renew
//  their expiry). AF_OK with *signed_count, or a code of af_catalog_import
//  with err.
int af_catalog_resign (af_catalog_t *self, size_t *signed_count, char *err, size_t errlen);

//  Add parsed entries (what import does after parsing), in one write
//  transaction. An entry with a file has it hashed and stored; one without
//  keeps the hash and size it carries (tools, benchmarks). AF_OK, or with
//  err, nothing added, the codes of af_catalog_import but the manifest's.
int af_catalog_add (af_catalog_t *self, af_catalog_entry_t *entries, size_t count,
                    char *err, size_t errlen);

//  Resolve a program for a device. AF_OK with the result filled: its fit
//  says which outcome (a package, a store link, no fit with the reason, or
//  an unknown program, each an answer, not an error); or AF_E_INTERNAL on
//  a store error or a corrupt record (logged). Reads a snapshot of the
//  catalog that is reused by later calls for at most
//  AF_CATALOG_SNAPSHOT_MS, so an import becomes visible within that time;
//  call af_catalog_release when idle. The broker shares answers among
//  devices equal in the fields this reads (af_syncindex_fit_key): a field
//  read here must be in that key too.
int af_catalog_resolve (af_catalog_t *self, const char *program, const af_device_t *device,
                        af_resolution_t *result);

//  Resolve a version of a program for a device (a restore, S4.4): among
//  the packages for the device's platform whose versionName is
//  version_name, or, when none has that name and version_code is not 0,
//  whose versionCode is version_code, the one that fits, ranked as
//  af_catalog_resolve ranks; with none fitting, fit AF_FIT_NONE and the
//  reason ("version 8.0.40 has no package for iOS", "version 8.0.40 does
//  not fit: needs Android 10 or later; ..."). An empty version_name is
//  af_catalog_resolve. AF_OK or AF_E_INTERNAL, as af_catalog_resolve.
int af_catalog_resolve_version (af_catalog_t *self, const char *program, const af_device_t *device,
                                const char *version_name, uint64_t version_code, af_resolution_t *result);

//  A recommendation for a device no package of program fits (S4.5): the
//  program of program's category with the most votes (ties: the smaller
//  program ID) of those with a package that fits the device, trying at
//  most AF_RECOMMEND_TRIES of them. AF_OK with *found and alternative
//  (its resolution) when there is one; *found false when program is
//  unknown, has no category, or nothing of its category fits; or
//  AF_E_INTERNAL on a store error.
int af_catalog_recommend (af_catalog_t *self, const char *program, const af_device_t *device,
                          af_resolution_t *alternative, bool *found);

//  Drop the snapshot resolve holds, so an idle reader pins no old pages
//  and the next resolve sees the newest catalog.
void af_catalog_release (af_catalog_t *self);

//  Path of a stored package file, from its hash in hex (whether or not it
//  is stored). AF_OK, AF_E_MALFORMED (not 64 lowercase hex digits) or
//  AF_E_TOO_BIG (the path does not fit in size bytes).
int af_catalog_blob_path (af_catalog_t *self, const char *hash_hex, char *buf, size_t size);

//  Print the catalog (programs and packages), as text or one JSON document.
//  AF_OK, or AF_E_INTERNAL on a store error (logged).
int af_catalog_list (af_catalog_t *self, FILE *out, bool json);

//  Self test
void af_catalog_test (bool verbose);

#endif
