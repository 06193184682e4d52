/*  =========================================================================
    af_transfers - streaming blobs to nodes in chunks, under credit (S2.6)

    A node FETCHes a blob (by content hash) from an offset with some
    credit; the broker sends that many CHUNKs, each at most AF_MAX_CHUNK
    raw bytes, and one more for each chunk of CREDIT the node returns. So
    a transfer holds at most AF_MAX_CREDIT chunks in the broker's socket
    queue whatever the blob's size or the receiver's speed.

    The socket is a ROUTER with ZMQ_ROUTER_MANDATORY and a send timeout
    of 0: when libzmq's short queue for the receiver is full, a chunk is
    refused (EAGAIN) and the transfer waits, its offset and credit as they
    were, until af_transfers_resume sends on; so no chunk is lost, sent
    twice or sent without credit. A receiver that is gone (EHOSTUNREACH)
    ends its transfer.

    Chunks are read with pread from the blob store (the matcher's catalog
    directory, DIR/blobs/ab/abcd...), or, for a push's user data, through
    the reader the broker gives (af_userdata, in its store), compressed with zstd level 1 and
    sent raw when that does not make them smaller. An encoded CHUNK names
    the blob and offset, not the receiver, so the same encoded message is
    sent to every target fetching that blob: a small cache of recent
    chunks (AF_CHUNK_CACHE) shares one reference-counted ZeroMQ message
    among all of them, so the bytes are read and compressed once.
    =========================================================================
*/
#ifndef AF_TRANSFERS_H_INCLUDED
#define AF_TRANSFERS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "af_limits.h"

//  Encoded chunks kept for other receivers of the same blob
#define AF_CHUNK_CACHE  32

typedef struct _af_transfers_t af_transfers_t;

//  Who a transfer is for: handed back, as given to fetch, to the progress
//  function (the engine itself only needs the session)
typedef struct {
    char account [AF_MAX_ACCOUNT + 1];
    char device_id [AF_ID_HEX + 1];     //  the receiving device
    char push_id [AF_ID_HEX + 1];       //  the push the blob belongs to
    char initiator [AF_ID_HEX + 1];     //  the device that started the push
} af_transfer_for_t;

//  Called after chunks of a transfer were sent, at most every
//  AF_PROGRESS_MS and once when the last chunk went: who it is for, bytes
//  sent so far and the blob's size.
typedef void (af_transfer_progress_fn) (void *arg, const af_transfer_for_t *target,
                                        uint64_t sent, uint64_t total);
#define AF_PROGRESS_MS  250

//  Where user data is read from (the broker's af_userdata): the size of
//  account's blob hash, and want bytes of it from offset into buffer.
//  Each returns AF_OK, AF_E_NO_BLOB (the account has no such blob) or
//  another AF_E_* code.
typedef struct {
    int (*size) (void *arg, const char *account, const char *hash, uint64_t *size);
    int (*read) (void *arg, const char *account, const char *hash, uint64_t offset, uint8_t *buffer,
                 size_t want);
    void *arg;
} af_transfers_reader_t;

//  Create the engine. Chunks go out on sock (a ROUTER) to the routing IDs
//  given; blobs are read from blob_dir/blobs/ (the catalog's packages;
//  "" = none), then through reader (may be NULL: none) as user data the
//  broker received from the receiving device's account.
af_transfers_t *af_transfers_new (zsock_t *sock, const char *blob_dir, const af_transfers_reader_t *reader);

//  Destroy; closes every open blob. Sets *self_p to NULL.
void af_transfers_destroy (af_transfers_t **self_p);

//  Be told about progress.
void af_transfers_set_progress (af_transfers_t *self, af_transfer_progress_fn *fn, void *arg);

//  Start streaming the blob hash (64 lowercase hex) to session (its
//  routing frame is copied) from offset, with credit chunks. A FETCH for
//  a blob the session is already receiving restarts it at the new offset.
//  Returns AF_OK, or AF_E_MALFORMED (bad hash or offset past the end),
//  AF_E_NO_BLOB (no such file in the store), AF_E_INTERNAL (cannot read
//  it), AF_E_UNAVAILABLE (AF_MAX_TRANSFERS files are being sent, or
//  AF_MAX_SESSION_TRANSFERS to this session: each holds a descriptor),
//  with err saying so.
//  target (copied; may be NULL) is handed back to the progress function.
int af_transfers_fetch (af_transfers_t *self, const char *session, zframe_t *routing,
                        const char *hash, uint64_t offset, uint32_t credit,
                        const af_transfer_for_t *target, char *err, size_t errlen);

//  Return credit for a running transfer and send what it allows. AF_OK,
//  or AF_E_MALFORMED if the session has no such transfer (finished ones
//  included: the node returns credit as it writes, after the last chunk
//  went, and that is not an error, so the caller may ignore this code).
int af_transfers_credit (af_transfers_t *self, const char *session, const char *hash, uint32_t credit);

//  Forget every transfer of a session (it went away).
void af_transfers_drop (af_transfers_t *self, const char *session);

//  Transfers waiting for room in their receiver's queue
size_t af_transfers_stalled (af_transfers_t *self);

//  Send on for every waiting transfer, as far as the queues take it.
//  Returns how many still wait.
size_t af_transfers_resume (af_transfers_t *self);

//  Transfers running now
size_t af_transfers_active (af_transfers_t *self);

//  Bytes read from blob files and encoded chunks sent, since creation
void af_transfers_stats (af_transfers_t *self, uint64_t *bytes_read, uint64_t *chunks_sent);

//  Self test
void af_transfers_test (bool verbose);

#endif
