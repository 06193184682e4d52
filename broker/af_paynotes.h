/*  =========================================================================
    af_paynotes - "paid for" / "installed from you": told once, durably

    When a GET's transfer starts (SPEC 5.47), the device that has the app is
    told: "requested" (free), "paid" or "entitled". The notice is an item
    in that device's durable outbox (af_outbox), put in the broker's group
    commit batch before the push it belongs to, so the notice is on disk no
    later than the transfer and before the asker hears anything: a broker
    killed at any point loses neither. A GET or confirmation sent again
    (after a lost answer, a 5xx, a restart) would tell again; so each
    notice has a key (the payment intent's ID for "paid" and "entitled",
    which name the same intent; the GET's rid for a free one, which the
    node keeps for its retries), and a notice whose key was recorded is not
    queued again. The record outlives the item's acknowledgement.

    How long a key is kept (SPEC 5.47 "Told once, for how long"): a key
    only has to outlive every copy that could repeat it: a node asks
    again until its deadline (at most NODE_PAY_DEADLINE_MAX_S, an hour), a
    notice to another broker is sent again for at most AF_NOTICE_TRY_MS
    (a day), and an "entitled" GET names its old payment intent whenever
    it comes. So a key is kept keep_ms (quota/notice_keep, default
    AF_PAYNOTES_KEEP_S, 7 days; at least a day and an hour) and then
    swept; and an account keeps at most AF_MAX_PAYNOTES keys, the oldest
    going first past that. Within both, a notice is queued once per key;
    an "entitled" GET whose key was swept tells once more.

    Named databases (in the registry's LMDB environment; every key begins
    with the source account, so each lives in that account's shard):
      paynotes     key: account, 0x00, notice key (16 bytes)
                   value: the time it was queued (8 bytes LE, ms)
      paynotes_at  key: account, 0x00: the account's count of keys
                   (value 8 bytes LE); key: account, 0x00, the time it
                   was queued (8 bytes BE, ms), notice key (16 bytes):
                   the same keys in time order (value empty)
    Keys recorded before paynotes_at existed have no entry in it and are
    kept (none was ever deployed).
    =========================================================================
*/
#ifndef AF_PAYNOTES_H_INCLUDED
#define AF_PAYNOTES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_store.h"
#include "af_outbox.h"

typedef struct _af_paynotes_t af_paynotes_t;

//  Open the databases in an open, writable store; keys kept
//  AF_PAYNOTES_KEEP_S. NULL on failure.
af_paynotes_t *af_paynotes_new (af_store_t *store, af_outbox_t *outbox);

//  Keep keys keep_ms (ms) from now on.
void af_paynotes_set_keep (af_paynotes_t *self, uint64_t keep_ms);

//  Close. Sets *self_p to NULL.
void af_paynotes_destroy (af_paynotes_t **self_p);

//  Queue the encoded notice for device_id of account, unless a notice
//  with this key (AF_ID_SIZE bytes) was queued before; both in one write
//  transaction. *queued (may be NULL) says whether it was queued now.
//  Returns AF_OK, AF_E_MALFORMED (a bad account or device ID), AF_E_QUOTA
//  (the device's outbox is full) or AF_E_INTERNAL; on an error nothing is
//  written.
//  In the same transaction, the account's keys older than keep_ms, and
//  the oldest past AF_MAX_PAYNOTES, are forgotten (AF_PAYNOTES_SWEEP at
//  most at a time).
int af_paynotes_put (af_paynotes_t *self, const char *account, const char *device_id, const uint8_t *key,
                     const void *notice, size_t size, bool *queued);

//  The same at time now (ms since the epoch; the self-test's clock).
int af_paynotes_put_at (af_paynotes_t *self, const char *account, const char *device_id, const uint8_t *key,
                        const void *notice, size_t size, uint64_t now, bool *queued);

//  How many keys the account has. AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_paynotes_count (af_paynotes_t *self, const char *account, size_t *count);

//  The timer's sweep: look at up to max keys of the time index, going on
//  where the last call stopped (from the start again after the end), and
//  forget those older than keep_ms at now whose account serves says is
//  ours to write (NULL: every account). *removed (may be NULL): how many.
//  AF_OK or AF_E_INTERNAL.
typedef bool (af_paynotes_serves_fn) (const char *account, void *arg);
int af_paynotes_sweep (af_paynotes_t *self, uint64_t now, size_t max, af_paynotes_serves_fn *serves, void *arg,
                       size_t *removed);

void af_paynotes_test (bool verbose);

#endif
