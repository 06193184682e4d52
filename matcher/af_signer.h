/*  =========================================================================
    af_signer - a catalog's trust: who may publish, and the store's key

    The catalog's side of the signed store (protocol/af_trust, SPEC 11).
    A catalog directory with trust installed holds:
      meta/root.pub                the root public key (`trust` installs it)
      meta/root.json(.minisig)     signed by the root: the store keys
      meta/publishers.json(.minisig)  signed by the root: publishers
      meta/targets/PROGRAM.json(.minisig)  signed by the store key, one per
                                   program, rewritten by every import
      keys/store.key, store.pub    the store's online key (0600), made by
                                   `appferry-catalog keygen --store`
    af_signer_new reads and checks all of it once; import then checks each
    package file's publisher signature (FILE.minisig) and signs targets.
    =========================================================================
*/
#ifndef AF_SIGNER_H_INCLUDED
#define AF_SIGNER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_trust.h"

typedef struct _af_signer_t af_signer_t;

//  Open a catalog's trust. AF_OK with *signer, or *signer NULL when the
//  catalog has none installed (no meta/root.pub); AF_E_MALFORMED /
//  AF_E_FORBIDDEN (a document does not verify, or the store key is not
//  one the root lists), AF_E_INTERNAL (cannot read), with err.
int af_signer_open (const char *catalog_dir, af_signer_t **signer, char *err, size_t errlen);
void af_signer_destroy (af_signer_t **self_p);

//  Check a package file's publisher signature (path.minisig) for program.
//  AF_OK with the publisher's key ID; AF_E_FORBIDDEN (no signature, a key
//  no publisher has, a publisher not trusted for program, a signature
//  that does not verify), AF_E_MALFORMED, AF_E_INTERNAL, each with err.
int af_signer_check_file (af_signer_t *self, const char *program, const char *path, uint8_t *key_id,
                          char *err, size_t errlen);

//  Sign the targets of a program (every signed package it has) as
//  meta/targets/PROGRAM.json, valid for expires_s seconds. AF_OK with the
//  new version; AF_E_FORBIDDEN (no store key, or one the root does not
//  list), AF_E_TOO_BIG, AF_E_INTERNAL, with err.
int af_signer_targets (af_signer_t *self, const char *program, const af_target_entry_t *targets, size_t count,
                       uint64_t expires_s, uint64_t *version, char *err, size_t errlen);

//  Install root-signed documents from src_dir (root.json, publishers.json
//  and their signatures) into a catalog, checked against root_pub_path,
//  refusing versions below those installed. AF_OK or a code with err.
int af_signer_install (const char *catalog_dir, const char *root_pub_path, const char *src_dir,
                       char *err, size_t errlen);

//  Self test
void af_signer_test (bool verbose);

#endif
