/*  =========================================================================
    af_lists - each device's install list, per account (S0.1, S0.2, S1.5)

    Nodes report every install and uninstall with their own rising
    counter (seq); a report whose seq is not above the last one applied
    for that device changes nothing, so a report resent after a reconnect
    is harmless and one that arrives late cannot undo a newer one. A node
    may also send its whole list (LIST), which replaces what the broker
    has for it. Every program ever installed on a device of the account is
    remembered, so "apps the account had before" survives uninstalls.

    (The node's installer is af_install, in nodes/; this is the broker's
    record of what each device has.)

    Every function returns AF_OK or an AF_E_* code; a store failure is
    logged here and returned as AF_E_INTERNAL.

    Named databases (in the registry's LMDB environment):
      installs     key: account, 0x00, device ID (16 bytes), program
                   value: an encoded REPORT (program, version, hash, time)
      install_seq  key: account, 0x00, device ID (16 bytes)
                   value: last seq applied (8 bytes BE), time of the last
                   whole LIST (8 bytes LE, ms)
      history      key: account, 0x00, program
                   value: an encoded REPORT of its last install anywhere
    =========================================================================
*/
#ifndef AF_LISTS_H_INCLUDED
#define AF_LISTS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"
#include "af_store.h"

typedef struct _af_lists_t af_lists_t;

//  Open the tables in an open, writable store. NULL on failure (logged).
af_lists_t *af_lists_new (af_store_t *store);

//  Close. Sets *self_p to NULL.
void af_lists_destroy (af_lists_t **self_p);

//  Apply a REPORT (op "install" or "uninstall") of a device, in one write
//  transaction. *applied is false when the seq is not above the last one
//  applied (a repeat: nothing changed). Returns AF_OK, AF_E_MALFORMED (a
//  bad op, account, device ID or program), or AF_E_INTERNAL.
int af_lists_report (af_lists_t *self, const char *account, const char *device_id,
                     const af_msg_t *report, bool *applied);

//  Replace a device's whole list with a LIST's apps and take its seq.
//  *applied is false when the seq is below the last applied (a stale
//  list). Returns AF_OK, AF_E_MALFORMED, or AF_E_INTERNAL.
int af_lists_replace (af_lists_t *self, const char *account, const char *device_id,
                      const af_msg_t *list, bool *applied);

//  The last seq applied for a device (0: none) and when it last sent its
//  whole list (ms since the epoch; 0: never). Either pointer may be NULL.
//  Returns AF_OK, AF_E_MALFORMED, or AF_E_INTERNAL (then both are 0).
int af_lists_seq (af_lists_t *self, const char *account, const char *device_id,
                  uint64_t *seq, uint64_t *list_at);

//  Called for each app: device_id is "" for history entries. Return 0 to
//  go on, anything else to stop.
typedef int (af_lists_fn) (const char *device_id, const af_msg_t *app, void *arg);

//  Every app of every device of the account (device_id NULL), or of one
//  device, in key order, in one read transaction. Returns AF_OK (also when
//  fn stopped the walk), AF_E_MALFORMED, or AF_E_INTERNAL.
int af_lists_each (af_lists_t *self, const char *account, const char *device_id,
                   af_lists_fn *fn, void *arg);

//  Every program the account ever had installed, with its last install.
//  Whether device_id of account has program in its list (*found), by one
//  key lookup: AF_OK, AF_E_MALFORMED, or AF_E_INTERNAL (then *found false)
int af_lists_has (af_lists_t *self, const char *account, const char *device_id, const char *program,
                  bool *found);

int af_lists_history (af_lists_t *self, const char *account, af_lists_fn *fn, void *arg);

//  Drop a device's list and seq (it was removed from the account) inside
//  the caller's write transaction; the account's history stays. AF_OK,
//  AF_E_MALFORMED, AF_E_INTERNAL.
int af_lists_drop_txn (af_lists_t *self, MDB_txn *txn, const char *account, const char *device_id);

//  Self test
void af_lists_test (bool verbose);

#endif
