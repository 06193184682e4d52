/*  =========================================================================
    af_pushes - durable push records and pending offers (S2.4-S2.7)

    A push is recorded, with an OFFER queued in each target's outbox, in
    one write transaction; a target's outcome (DONE) updates the record,
    removes the offer, acknowledges the offer's outbox item and queues the
    RESULT for the initiator, again in one transaction. So after any crash
    a push is either not there at all, or every offer is pending, or a
    target's outcome is recorded and its initiator's RESULT queued: never
    an install reported twice or lost.

    Named databases (in the registry's LMDB environment):
      pushes  key: account, 0x00, push ID (16 bytes)
              value: initiator device ID (16 bytes), created (8 bytes LE,
                     ms since the epoch), then an encoded PUSH_ACCEPTED
                     message: the program and every target's current state
      offers  key: account, 0x00, target device ID (16), push ID (16)
              value: outbox item ID (16 bytes), blob hash (64 hex chars, or
                     64 zero bytes for a store link), then the encoded OFFER
    =========================================================================
*/
#ifndef AF_PUSHES_H_INCLUDED
#define AF_PUSHES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"
#include "af_outbox.h"
#include "af_store.h"

typedef struct _af_pushes_t af_pushes_t;

//  Open the tables in an open, writable store. NULL on failure (logged).
af_pushes_t *af_pushes_new (af_store_t *store, af_outbox_t *outbox);

//  Close. Sets *self_p to NULL.
void af_pushes_destroy (af_pushes_t **self_p);

//  Record a new push in one write transaction: the record (accepted, a
//  PUSH_ACCEPTED naming every target and its state) and, for each target i
//  with offers [i] not NULL, an offer row and an outbox item carrying that
//  OFFER. Returns AF_OK, AF_E_MALFORMED (a bad argument), AF_E_QUOTA (a
//  target's outbox is full), or AF_E_INTERNAL; on an error nothing is
//  stored.
int af_pushes_create (af_pushes_t *self, const char *account, const char *initiator,
                      af_msg_t *accepted, af_msg_t **offers);

//  Queue the same encoded item in several devices' outboxes, in one write
//  transaction (an UNINSTALL for each target). Returns AF_OK,
//  AF_E_MALFORMED, AF_E_QUOTA or AF_E_INTERNAL; on error nothing is queued.
int af_pushes_queue (af_pushes_t *self, const char *account, const char (*devices) [AF_ID_HEX + 1],
                     uint32_t count, af_msg_t *item);

//  True if the device has a pending offer of the blob with this hash;
//  then the offer's push ID and initiator are written to push_out and
//  from_out (AF_ID_HEX + 1 bytes each; either may be NULL).
bool af_pushes_offers_blob (af_pushes_t *self, const char *account, const char *device_id,
                            const char *hash, char *push_out, char *from_out);

//  A target's outcome. If the device has a pending offer for done->push_id,
//  in one write transaction: the target's state (done->state, version,
//  reason) is recorded, the offer row removed, its outbox item
//  acknowledged, and a RESULT queued for the initiator, whose device ID is
//  written to initiator_out (AF_ID_HEX + 1 bytes). *found is false when
//  there is no such pending offer (a repeated DONE): nothing changes.
//  Returns AF_OK, AF_E_QUOTA (the initiator's outbox is full) or
//  AF_E_INTERNAL (a store failure or a corrupt record, logged).
int af_pushes_done (af_pushes_t *self, const char *account, const char *device_id,
                    const af_msg_t *done, char *initiator_out, bool *found);

//  Read a push record as its PUSH_ACCEPTED message (the caller destroys
//  it) and its initiator. Returns AF_OK (*record NULL if there is no such
//  push), AF_E_MALFORMED (not a push ID) or AF_E_INTERNAL.
int af_pushes_get (af_pushes_t *self, const char *account, const char *push_id,
                   af_msg_t **record, char *initiator_out);

//  Self test
void af_pushes_test (bool verbose);

#endif
