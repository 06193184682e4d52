/*  =========================================================================
    af_outbox - durable, ordered, per-device queues in the broker's store

    What the broker must deliver to a device that may be offline (a push
    offer, the result of a push for its initiator, an uninstall request)
    goes into that device's outbox in the same write transaction as the
    change that caused it. Items are delivered in the order they were put,
    again after every reconnect, until the device acknowledges each one by
    its item ID; only then are they removed. Delivery is therefore at least
    once, and receivers deduplicate by item ID.

    No process-wide sequence: each device's queue numbers its own items
    (the last number given is kept under the queue's bare prefix, so
    numbers only rise), and every key starts with the account, so queues
    shard with accounts.

    Named databases (in the registry's LMDB environment):
      outbox      key: account, 0x00, device ID (16 bytes), seq (8 bytes BE)
                  value: item ID (16 bytes), put time (8 bytes LE, ms since
                         the epoch), payload (opaque; an encoded message)
                  key: account, 0x00, device ID (16 bytes)   (no seq)
                  value: the last seq given to the device (8 bytes BE),
                         the number of items queued (8 bytes BE; a store
                         from before has the seq alone, and is counted
                         once by its next change)
      outbox_ids  key: account, 0x00, item ID (16 bytes)
                  value: device ID (16 bytes), seq (8 bytes BE)
    =========================================================================
*/
#ifndef AF_OUTBOX_H_INCLUDED
#define AF_OUTBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_store.h"
#include "af_limits.h"

typedef struct _af_outbox_t af_outbox_t;

//  One queued item, as read back
typedef struct {
    uint8_t id [AF_ID_SIZE];
    uint64_t seq;               //  order within the device's queue
    uint64_t put_ms;            //  when it was queued
    const uint8_t *data;        //  payload; valid until the transaction ends
    size_t size;
} af_outbox_item_t;

//  Called for each item in order; return 0 to go on, anything else to stop
typedef int (af_outbox_fn) (const af_outbox_item_t *item, void *arg);

//  Open the outbox databases in an open, writable store. NULL on failure.
af_outbox_t *af_outbox_new (af_store_t *store);

//  Close. The store stays open. Sets *self_p to NULL.
void af_outbox_destroy (af_outbox_t **self_p);

//  Queue a payload for a device inside the caller's write transaction, so
//  it commits together with the change that caused it. device_id is the
//  32-hex device ID. Writes the new item's random ID to id_out (may be
//  NULL). Returns AF_OK, AF_E_MALFORMED (a bad argument), AF_E_QUOTA (the
//  queue holds AF_MAX_OUTBOX items), or AF_E_INTERNAL; on an error the
//  caller aborts its transaction.
int af_outbox_put_txn (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id,
                       const void *data, size_t size, uint8_t *id_out);

//  The same in a transaction of its own.
int af_outbox_put (af_outbox_t *self, const char *account, const char *device_id,
                   const void *data, size_t size, uint8_t *id_out);

//  Call fn for the device's items with seq > after, in order, at most
//  limit of them (0 = no limit), in one read transaction; fn returning
//  non-zero stops the walk. Returns AF_OK, AF_E_MALFORMED or AF_E_INTERNAL.
int af_outbox_each (af_outbox_t *self, const char *account, const char *device_id,
                    uint64_t after, size_t limit, af_outbox_fn *fn, void *arg);

//  Remove an acknowledged item: it must be in this account, and queued for
//  this device (a device cannot acknowledge another's items). *removed
//  (may be NULL) is false when there was no such item: unknown, another
//  device's, or already removed by a repeated ack. Returns AF_OK,
//  AF_E_MALFORMED or AF_E_INTERNAL.
int af_outbox_ack (af_outbox_t *self, const char *account, const char *device_id,
                   const uint8_t *item_id, bool *removed);

//  The same inside the caller's write transaction.
int af_outbox_ack_txn (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id,
                       const uint8_t *item_id, bool *removed);

//  Read one of the device's items by its ID: fn is called with it, in a
//  read transaction, if the item is queued for this device (*found).
//  Returns AF_OK, AF_E_MALFORMED or AF_E_INTERNAL.
int af_outbox_find (af_outbox_t *self, const char *account, const char *device_id, const uint8_t *item_id,
                    af_outbox_fn *fn, void *arg, bool *found);

//  Drop every item of a device (it was removed from the account) inside
//  the caller's write transaction. AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_outbox_purge_txn (af_outbox_t *self, MDB_txn *txn, const char *account, const char *device_id);

//  How many items are queued for a device. AF_OK, AF_E_MALFORMED or
//  AF_E_INTERNAL (then *count is 0).
int af_outbox_count (af_outbox_t *self, const char *account, const char *device_id, size_t *count);

//  Self test
void af_outbox_test (bool verbose);

#endif
