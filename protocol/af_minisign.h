/*  =========================================================================
    af_minisign - Ed25519 signatures in minisign's formats

    Publishers sign packages, and the store's root and online keys sign
    its metadata (af_trust), with Ed25519 (libsodium crypto_sign). The
    files are minisign's (https://jedisct1.github.io/minisign/), so a
    publisher can use Debian's `minisign` as well as `appferry-catalog`:

      public key   "untrusted comment: ..." line, then base64 of
                   "Ed" | key ID (8 bytes) | public key (32)
      secret key   "untrusted comment: ..." line, then base64 of
                   "Ed" | KDF "\0\0" (none) | "B2" | salt (32) | opslimit (8)
                   | memlimit (8) | key ID (8) | secret key (64) | checksum (32)
                   Only unencrypted keys are read (`minisign -G -W`, or
                   `minisign -C -W` to remove a password).
      signature    "untrusted comment: ..." line, base64 of
                   "ED" | key ID | Ed25519 (BLAKE2b-512 (file)) (prehashed,
                   what this class writes and minisign 0.11 writes), or
                   "Ed" | key ID | Ed25519 (file) (legacy, `minisign -l`);
                   then "trusted comment: TEXT", then base64 of
                   Ed25519 (signature | TEXT), the global signature that
                   makes the trusted comment trusted.

    A key ID is 8 random bytes; minisign shows it as 16 uppercase hex
    digits of the bytes read as a little-endian number (af_minisign_id).
    Verification checks the key ID first, so "signed by another key" and
    "altered" are told apart in the message.
    =========================================================================
*/
#ifndef AF_MINISIGN_H_INCLUDED
#define AF_MINISIGN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "af_limits.h"

#define AF_MINISIGN_KEYID_SIZE  8
#define AF_MINISIGN_KEYID_HEX   16
#define AF_MINISIGN_PUB_B64     56      //  base64 of the 42-byte public key
#define AF_MINISIGN_COMMENT     1024    //  longest comment line kept

typedef struct {
    uint8_t key_id [AF_MINISIGN_KEYID_SIZE];
    uint8_t pk [32];
} af_minisign_pub_t;

typedef struct {
    uint8_t key_id [AF_MINISIGN_KEYID_SIZE];
    uint8_t sk [64];                    //  libsodium's: seed, then public key
} af_minisign_sec_t;

//  A whole file of at most max bytes, NUL-terminated, in a new buffer
//  the caller frees (*len its size), or NULL with err and *code:
//  AF_E_NO_BLOB (no such file), AF_E_TOO_BIG, AF_E_INTERNAL
char *af_file_read (const char *path, size_t max, size_t *len, int *code, char *err, size_t errlen);

//  Write a whole file so that a crash leaves the old one or the new one,
//  on disk: path.tmp written (with mode) and fsynced, renamed over path,
//  then the directory fsynced (without it the rename itself may be lost,
//  and the old file come back). AF_OK, or AF_E_INTERNAL with err (the
//  temp file removed; if only the directory's sync failed, the new file
//  is in place but may not survive a crash).
int af_file_write (const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen);

//  A new keypair (random key ID).
void af_minisign_keygen (af_minisign_pub_t *pub, af_minisign_sec_t *sec);

//  The public half of a secret key.
void af_minisign_public (const af_minisign_sec_t *sec, af_minisign_pub_t *pub);

//  Key ID as minisign prints it: 16 uppercase hex digits and a NUL.
void af_minisign_id (const uint8_t *key_id, char *hex);

//  Parse a public key: a minisign public key file's text, or its bare
//  base64 line. AF_OK, or AF_E_MALFORMED with err.
int af_minisign_pub_parse (const char *text, size_t len, af_minisign_pub_t *pub, char *err, size_t errlen);

//  The base64 line of a public key (AF_MINISIGN_PUB_B64 + 1 bytes).
void af_minisign_pub_base64 (const af_minisign_pub_t *pub, char *b64);

//  Read and write key files. pub_load: AF_OK, AF_E_MALFORMED (not a
//  minisign public key), AF_E_INTERNAL (cannot read, errno's text in err).
//  sec_load: the same, and AF_E_MALFORMED for an encrypted key or a bad
//  checksum. save: the file is written whole (temp, fsync, rename), a
//  secret key with mode 0600; AF_OK or AF_E_INTERNAL with err.
int af_minisign_pub_load (const char *path, af_minisign_pub_t *pub, char *err, size_t errlen);
int af_minisign_sec_load (const char *path, af_minisign_sec_t *sec, char *err, size_t errlen);
int af_minisign_pub_save (const char *path, const af_minisign_pub_t *pub, char *err, size_t errlen);
int af_minisign_sec_save (const char *path, const af_minisign_sec_t *sec, char *err, size_t errlen);

//  Sign data (prehashed, "ED") with a trusted comment (one line, no
//  newline; "" is allowed). Returns the signature file's text (free it),
//  or NULL if the comment has a newline or is longer than
//  AF_MINISIGN_COMMENT.
char *af_minisign_sign (const af_minisign_sec_t *sec, const void *data, size_t size, const char *trusted);

//  The same for a BLAKE2b-512 digest already computed (64 bytes).
char *af_minisign_sign_hash (const af_minisign_sec_t *sec, const uint8_t *digest, const char *trusted);

//  BLAKE2b-512 of a file, as the prehashed format signs it, and its size.
//  AF_OK, or AF_E_INTERNAL with err (cannot read it).
int af_minisign_hash_file (const char *path, uint8_t *digest, uint64_t *size, char *err, size_t errlen);

//  Verify a signature file's text for data, by pub. AF_OK with the trusted
//  comment in trusted (if not NULL); AF_E_MALFORMED (not a minisign
//  signature), AF_E_FORBIDDEN (made by another key: both IDs in err; or it
//  does not verify: the data or the comment was altered). digest, if not
//  NULL, is the data's BLAKE2b-512 (then data may be NULL unless the
//  signature is a legacy one, which needs the bytes: AF_E_MALFORMED).
int af_minisign_verify (const af_minisign_pub_t *pub, const void *data, size_t size, const uint8_t *digest,
                        const char *sig, size_t sig_len, char *trusted, size_t trusted_size,
                        char *err, size_t errlen);

//  The key ID a signature claims (without verifying it). AF_OK or
//  AF_E_MALFORMED.
int af_minisign_sig_key_id (const char *sig, size_t sig_len, uint8_t *key_id);

//  Self test
void af_minisign_test (bool verbose);

#endif
