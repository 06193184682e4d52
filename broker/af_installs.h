/*  =========================================================================
    af_installs - each device's install list, per account (S0.1, S0.2, S1.5)

    Nodes report every install and uninstall with their own rising
    counter (seq); a report whose seq is not above the last one applied
    for that device changes nothing, so a report resent after a reconnect
    is harmless and one that arrives late cannot undo a newer one. A node
    may also send its whole list (LIST), which replaces what the broker
    has for it. Every program ever installed on a device of the account is
    remembered, so "apps the account had before" survives uninstalls.

    Named databases (in the registry's LMDB environment):
      installs     key: account, 0x00, device ID (16 bytes), program
                   value: an encoded REPORT (program, version, hash, time)
      install_seq  key: account, 0x00, device ID (16 bytes)
                   value: last seq applied (8 bytes BE), time of the last
                   whole LIST (8 bytes LE, ms)
      history      key: account, 0x00, program
                   value: an encoded REPORT of its last install anywhere
      configs      key: account, 0x00, program
                   value: time (8 bytes LE, ms), the node's ciphertext
      configs_prev the same layout: the version that lost or was replaced
    =========================================================================
*/
#ifndef AF_INSTALLS_H_INCLUDED
#define AF_INSTALLS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"
#include "af_store.h"

typedef struct _af_installs_t af_installs_t;

//  Open the tables in an open, writable store. NULL on failure (logged).
af_installs_t *af_installs_new (af_store_t *store);

//  Close. Sets *self_p to NULL.
void af_installs_destroy (af_installs_t **self_p);

//  Apply a REPORT (op "install" or "uninstall") of a device, in one write
//  transaction. Returns 0 (applied), 1 (seq not above the last applied:
//  nothing changed), -1 (a bad op or argument), or an LMDB error.
int af_installs_report (af_installs_t *self, const char *account, const char *device_id,
                        const af_msg_t *report);

//  Replace a device's whole list with a LIST's apps and take its seq.
//  Returns 0, 1 (seq below the last applied: a stale list), -1, or an
//  LMDB error.
int af_installs_replace (af_installs_t *self, const char *account, const char *device_id,
                         const af_msg_t *list);

//  The last seq applied for a device (0: none).
uint64_t af_installs_seq (af_installs_t *self, const char *account, const char *device_id);

//  When the device last sent its whole list (ms since the epoch; 0: never).
uint64_t af_installs_list_at (af_installs_t *self, const char *account, const char *device_id);

//  Called for each app: device_id is "" for history entries
typedef int (af_installs_fn) (const char *device_id, const af_msg_t *app, void *arg);

//  Every app of every device of the account (device_id NULL), or of one
//  device, in key order. Returns 0, fn's non-zero value, or an LMDB error.
int af_installs_each (af_installs_t *self, const char *account, const char *device_id,
                      af_installs_fn *fn, void *arg);

//  Every program the account ever had installed, with its last install.
int af_installs_history (af_installs_t *self, const char *account, af_installs_fn *fn, void *arg);

//  Store an app's encrypted configuration (S1.6, S1.7), in one write
//  transaction: the newer time becomes the current version and the other
//  the previous one (the loser of a conflict is kept, not lost). The
//  broker never sees plaintext: blob is the node's ciphertext. Returns 0
//  (it is the current version now), 1 (older than the current one: kept
//  as the previous version), or an LMDB error.
int af_installs_config_put (af_installs_t *self, const char *account, const char *program,
                            uint64_t at, const uint8_t *blob, size_t size);

//  Read the current (or previous) configuration into msg (a CONFIG):
//  at, blob, prev_at. Returns 0, MDB_NOTFOUND, or an LMDB error.
int af_installs_config_get (af_installs_t *self, const char *account, const char *program,
                            bool previous, af_msg_t *msg);

//  Self test
void af_installs_test (bool verbose);

#endif
