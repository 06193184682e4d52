/*  =========================================================================
    af_config - an app's configuration, sealed on the node (S1.6, S1.7)

    A configuration is the files under HOME/config/PROGRAM/ (bookmarks,
    shortcuts, settings). It leaves the node only as ciphertext: packed
    into a tar, then sealed with libsodium's secretbox (XSalsa20-Poly1305)
    under the account's configuration key, which every device of the
    account derives from the account secret the user gives it (Argon2id,
    salted with the account name). The secret and the key never leave the
    user's devices; the broker stores and returns opaque blobs.

    Blob layout: nonce (24 bytes, random) then the secretbox ciphertext
    (the tar plus a 16-byte tag).
    =========================================================================
*/
#ifndef AF_CONFIG_H_INCLUDED
#define AF_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sodium.h>
#include "af_limits.h"

#define AF_CONFIG_KEY_SIZE  crypto_secretbox_KEYBYTES

//  Derive the account's configuration key from its secret. AF_OK, or
//  AF_E_INTERNAL with err (too little memory for Argon2id).
int af_config_derive (const char *account, const char *secret, uint8_t *key, char *err, size_t errlen);

//  Seal the directory dir: pack it into tmp_path (removed after), encrypt.
//  A new blob (caller frees) of at most AF_MAX_CONFIG bytes. AF_OK, or with
//  err AF_E_MALFORMED (empty: nothing to send), AF_E_TOO_BIG (too many
//  files, or larger than that packed), AF_E_INTERNAL (unreadable, or the
//  tar cannot be written): af_install_pack_dir's codes and the size's.
int af_config_seal (const uint8_t *key, const char *dir, const char *tmp_path,
                    uint8_t **blob, size_t *size, char *err, size_t errlen);

//  Open a blob and put it in place of HOME/config/PROGRAM/ (staged, then
//  swapped in). AF_OK, or with err and the configuration unchanged:
//  AF_E_MALFORMED ("cannot decrypt": another account secret, or tampered;
//  or refused by the installer's checks), AF_E_TOO_BIG (over the
//  installer's limits), AF_E_INTERNAL (cannot write).
int af_config_open (const uint8_t *key, const char *home, const char *program,
                    const uint8_t *blob, size_t size, char *err, size_t errlen);

//  The newest modification time (ms) of the files under dir; 0 if none.
uint64_t af_config_mtime (const char *dir);

//  Self test
void af_config_test (bool verbose);

#endif
