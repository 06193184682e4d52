/*  =========================================================================
    af_asks - a GET's ask for the source's install record: durable, with a
    deadline (SPEC 5.47a)

    When a GET's source device is told (af_paynotes), the asker waits for
    that device's install record, which comes when the device is online:
    now, after its next login, or never. An ask is the broker's memory of
    that wait. It is opened in the group commit of the notice, answered by
    the source's RECORD_PUT, or expired by the broker's timer at its
    deadline; either way the asker gets exactly one item in its outbox,
    queued in the same write transaction as the ask's change of state, so
    a broker killed at any point leaves the ask open (nothing told) or
    closed with the asker's item queued, never one without the other.
    When the asker's account is not this broker's (a friend on another
    broker of a cluster), the item cannot go into its outbox here: the
    caller sets a queue (af_asks_set_queue) that writes, in that same
    transaction, what will take it there (the broker's intent); the
    answer and the sweep are the same code either way.

    The timer must not scan every ask on every tick. So each ask has an
    entry in a second database keyed by time, and a sweep reads that from
    its start while the time is past: the work is what is due. Every key
    of the broker starts with an account so that keys shard with accounts
    (af_shard_of_key); a time-ordered key cannot start with the ask's
    account, so it starts with a *due name* of the ask's shard instead:
    "~asks." and the smallest number N whose name falls in that shard
    (every broker computes the same; "~" starts no account name). The due
    entries of a shard then live in that shard, with its asks, and move,
    replicate and fail over with it.

    An answered or expired ask is kept AF_ASK_KEEP_MS, so that a late
    RECORD_PUT gets its own answer (E_ANSWERED, E_ASK_EXPIRED); its due
    entry then says when to remove it.

    Named databases (in the registry's LMDB environment):
      asks        key: source account, 0x00, ask ID (16 bytes)
                  value: state (1 byte: 0 open, 1 answered, 2 expired),
                         deadline (8 bytes LE, ms), due (8 bytes LE, ms:
                         the time of its due entry), source device ID (16),
                         asker device ID (16), asker account, 0x00,
                         program, 0x00
      asks_due    key: due name of the shard, 0x00, due (8 bytes BE, ms),
                       source account, 0x00, ask ID (16 bytes)
                  value: empty
    Written here only.
    =========================================================================
*/
#ifndef AF_ASKS_H_INCLUDED
#define AF_ASKS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "af_store.h"
#include "af_outbox.h"

typedef struct _af_asks_t af_asks_t;

typedef enum { AF_ASK_OPEN = 0, AF_ASK_ANSWERED = 1, AF_ASK_EXPIRED = 2 } af_ask_state_t;

//  One ask, as read back
typedef struct {
    char account [AF_MAX_ACCOUNT + 1];          //  the source's
    uint8_t id [AF_ID_SIZE];
    char id_hex [AF_ID_HEX + 1];
    af_ask_state_t state;
    uint64_t deadline;                          //  ms since the epoch
    uint64_t due;
    char source [AF_ID_HEX + 1];                //  the source device
    char asker [AF_ID_HEX + 1];                 //  the asking device
    char asker_account [AF_MAX_ACCOUNT + 1];
    char program [AF_MAX_PROGRAM + 1];
} af_ask_t;

//  Open the databases in an open, writable store; shards: the number of
//  shards keys are spread over (1 for a single broker). NULL on failure.
af_asks_t *af_asks_new (af_store_t *store, af_outbox_t *outbox, uint32_t shards);

//  Close. Sets *self_p to NULL.
void af_asks_destroy (af_asks_t **self_p);

//  Open an ask (fields of ask: account, id, source, asker, asker_account,
//  program, deadline), unless one with its account and ID exists: then
//  nothing changes (*opened false). One write transaction. AF_OK,
//  AF_E_MALFORMED (a bad account, device ID or program) or AF_E_INTERNAL.
int af_asks_open (af_asks_t *self, const af_ask_t *ask, bool *opened);

//  Where an asker's item goes, written in txn, the transaction that closes
//  its ask (so both or neither): by default the asker's outbox here; a
//  queue set here may write it elsewhere (the broker: an intent for the
//  asker's broker when another broker serves the asker's account). It
//  returns AF_OK, AF_E_QUOTA (no room now: an answer leaves the ask
//  open), AF_E_MALFORMED or AF_E_INTERNAL. queue NULL: the default again.
typedef int (af_asks_queue_fn) (MDB_txn *txn, const af_ask_t *ask, const void *item, size_t size, void *arg);
void af_asks_set_queue (af_asks_t *self, af_asks_queue_fn *queue, void *arg);

//  Read an ask: AF_OK with *found, or AF_E_MALFORMED, AF_E_INTERNAL.
int af_asks_get (af_asks_t *self, const char *account, const uint8_t *id, af_ask_t *ask, bool *found);

//  Answer the open ask (account, id) of device source for program and
//  asker: queue item (size bytes, an encoded message) for the asker (its
//  outbox, or the queue set) and mark the ask answered, in one write
//  transaction. *ask (may
//  be NULL) is the ask as it was. AF_OK; AF_E_NO_ASK (none with this ID
//  in account, or for another source device, program or asker);
//  AF_E_ANSWERED; AF_E_ASK_EXPIRED; AF_E_QUOTA (the asker's outbox is
//  full: the ask stays open); AF_E_MALFORMED; AF_E_INTERNAL. On an error
//  nothing is written.
int af_asks_answer (af_asks_t *self, const char *account, const uint8_t *id, const char *source,
                    const char *program, const char *asker, const void *item, size_t size, af_ask_t *ask);

//  The asker's item for an ask that expires: an encoded message in a new
//  frame, or NULL (then the ask expires with nothing queued, logged)
typedef zframe_t *(af_asks_item_fn) (const af_ask_t *ask, void *arg);

//  The sweep of shard at time now: at most limit due entries, oldest
//  first; an open ask past its deadline expires (make's item queued for
//  its asker, the ask marked expired, kept AF_ASK_KEEP_MS), a closed one
//  whose time is up is removed. One write transaction. *expired (may be
//  NULL): asks expired now; their askers' (account, device) are passed
//  to told (may be NULL) after the commit, to deliver. AF_OK or
//  AF_E_INTERNAL (nothing written).
typedef void (af_asks_told_fn) (const af_ask_t *ask, void *arg);
int af_asks_sweep (af_asks_t *self, uint32_t shard, uint64_t now, size_t limit, af_asks_item_fn *make,
                   af_asks_told_fn *told, void *arg, size_t *expired);

//  Asks of every state kept now (for the figures and tests). AF_OK or
//  AF_E_INTERNAL.
int af_asks_count (af_asks_t *self, size_t *count);

void af_asks_test (bool verbose);

#endif
