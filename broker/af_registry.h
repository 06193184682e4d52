/*  =========================================================================
    af_registry - accounts and their devices, durable in LMDB

    The broker's own state. Every key starts with the account name, so the
    broker can later be sharded by account with each shard owning a key
    range; device IDs are random 128-bit values, unique without any
    coordination. Each logical change (register, a device logging in, a
    device going offline) is one write transaction.

    Named databases in DATADIR/store (see docs/ARCHITECTURE.md):
      accounts  key: account name (UTF-8 bytes, no NUL)
                value: msgpack map { "pwhash": str (crypto_pwhash_str),
                                     "created": uint (unix ms) }
      devices   key: account name, 0x00, device ID (16 bytes)
                value: 40 bytes Z85 CURVE public key the device is bound to,
                       8 bytes created (unix ms, little-endian),
                       msgpack device map (as in protocol/SPEC.md)
      keys      key: account name, 0x00, Z85 CURVE public key (40 bytes)
                value: device ID (16 bytes)
    =========================================================================
*/
#ifndef AF_REGISTRY_H_INCLUDED
#define AF_REGISTRY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_device.h"
#include "af_store.h"

typedef struct _af_registry_t af_registry_t;

//  Argon2id cost for new password hashes (libsodium crypto_pwhash_str).
typedef struct {
    unsigned long long opslimit;
    size_t memlimit;
} af_pwcost_t;

//  Open the registry in dir (created if missing), its store at most
//  mapsize bytes (0: 4 GiB). NULL on failure (logged).
af_registry_t *af_registry_new (const char *dir, af_pwcost_t cost, size_t mapsize);

//  Close it. Sets *self_p to NULL.
void af_registry_destroy (af_registry_t **self_p);

//  Check an account name: 3..64 bytes of a-z 0-9 . _ -, starting with a
//  letter or digit. Returns 0, or -1 with a reason.
int af_registry_check_name (const char *account, char *err, size_t errlen);

//  Could an account with this name and password be created? The name and
//  password rules, and the name not taken. AF_OK, AF_E_MALFORMED (err
//  says which rule), AF_E_ACCOUNT_EXISTS.
int af_registry_check_new (af_registry_t *self, const char *account, const char *password,
                           char *err, size_t errlen);

//  Create an account with a password hash made elsewhere (af_hasher), in
//  one write transaction. AF_OK, AF_E_MALFORMED, AF_E_ACCOUNT_EXISTS (taken
//  meanwhile), AF_E_INTERNAL.
int af_registry_create (af_registry_t *self, const char *account, const char *pwhash,
                        char *err, size_t errlen);

//  The account's stored password hash (crypto_pwhash_STRBYTES bytes).
//  AF_OK, AF_E_NO_ACCOUNT, AF_E_INTERNAL.
int af_registry_pwhash (af_registry_t *self, const char *account, char *hash_out);

//  Create an account, hashing in this thread (tools, tests). Returns AF_OK, AF_E_ACCOUNT_EXISTS, AF_E_MALFORMED
//  (bad name or password, err says which), or AF_E_INTERNAL.
int af_registry_register (af_registry_t *self, const char *account, const char *password,
                          char *err, size_t errlen);

//  Verify a password in this thread (tools, tests). AF_OK, AF_E_NO_ACCOUNT, AF_E_BAD_PASSWORD, AF_E_INTERNAL.
int af_registry_verify (af_registry_t *self, const char *account, const char *password);

//  True if the account exists.
bool af_registry_exists (af_registry_t *self, const char *account);

//  Record a device logging in, in one transaction. If device_id is a
//  known device of the account it must be bound to key (else
//  AF_E_KEY_MISMATCH); an unknown device_id gives AF_E_NO_DEVICE. With an
//  empty device_id the device bound to key is reused, or a new device is
//  created (AF_E_TOO_MANY past AF_MAX_DEVICES). The description is
//  stored with lastSeen = now. On AF_OK id_out holds the device ID (hex).
int af_registry_login (af_registry_t *self, const char *account, const char *device_id,
                       const char *key, const af_device_t *device, uint64_t now,
                       char *id_out, char *err, size_t errlen);

//  The Z85 key a device is bound to (41-byte buffer). AF_OK, AF_E_NO_DEVICE.
int af_registry_device_key (af_registry_t *self, const char *account,
                            const char *device_id, char *key_out);

//  Read one device's description. AF_OK or AF_E_NO_DEVICE.
int af_registry_device (af_registry_t *self, const char *account,
                        const char *device_id, af_device_t *device);

//  Update a device's lastSeen. AF_OK, AF_E_NO_DEVICE, AF_E_INTERNAL.
int af_registry_touch (af_registry_t *self, const char *account,
                       const char *device_id, uint64_t now);

//  All devices of an account, in device ID order, into a new array the
//  caller frees. AF_OK (count may be 0) or AF_E_INTERNAL.
int af_registry_devices (af_registry_t *self, const char *account,
                         af_device_t **devices, uint32_t *count);

//  The registry's LMDB store, where the broker's other tables (outbox,
//  pushes) live too, so one transaction can span them.
af_store_t *af_registry_store (af_registry_t *self);

//  Self test
void af_registry_test (bool verbose);

#endif
