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

    Named database (in the registry's LMDB environment):
      paynotes    key: account (of the source), 0x00, notice key (16 bytes)
                  value: the time it was queued (8 bytes LE, ms)
    Written here only; never removed (one 24..85-byte record per GET that
    started a transfer).
    =========================================================================
*/
#ifndef AF_PAYNOTES_H_INCLUDED
#define AF_PAYNOTES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_store.h"
#include "af_outbox.h"

typedef struct _af_paynotes_t af_paynotes_t;

//  Open the database in an open, writable store. NULL on failure.
af_paynotes_t *af_paynotes_new (af_store_t *store, af_outbox_t *outbox);

//  Close. Sets *self_p to NULL.
void af_paynotes_destroy (af_paynotes_t **self_p);

//  Queue the encoded notice for device_id of account, unless a notice
//  with this key (AF_ID_SIZE bytes) was queued before; both in one write
//  transaction. *queued (may be NULL) says whether it was queued now.
//  Returns AF_OK, AF_E_MALFORMED (a bad account or device ID), AF_E_QUOTA
//  (the device's outbox is full) or AF_E_INTERNAL; on an error nothing is
//  written.
int af_paynotes_put (af_paynotes_t *self, const char *account, const char *device_id, const uint8_t *key,
                     const void *notice, size_t size, bool *queued);

void af_paynotes_test (bool verbose);

#endif
