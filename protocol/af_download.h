/*  =========================================================================
    af_download - one package arriving in CHUNKs, checked as it comes

    The receiving half of the streamed transfer (protocol/SPEC.md
    "Transfer"). Chunks must arrive in order, each at most AF_MAX_CHUNK raw
    bytes, for the blob this download expects, never past its size; a
    compressed chunk must decompress to exactly the size it announces.
    Bytes go straight to a file in the node's incoming/ directory and into
    a running BLAKE2b-256; when the last byte is in, the hash must be the
    one the offer named. Anything else is an error with a reason, and the
    partial file is removed when the download is destroyed without being
    kept. Memory: one chunk buffer, whatever the package size.
    =========================================================================
*/
#ifndef AF_DOWNLOAD_H_INCLUDED
#define AF_DOWNLOAD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"

typedef struct _af_download_t af_download_t;

//  Start a download of the blob hash (64 hex) of total bytes into path
//  (created or truncated, mode 0600), or, path NULL, into no file: the
//  caller takes each chunk's bytes (af_download_last) and keeps them
//  itself. NULL with err on failure.
af_download_t *af_download_new (const char *path, const char *hash, uint64_t total,
                                char *err, size_t errlen);

//  Destroy; removes the file unless af_download_keep was called.
void af_download_destroy (af_download_t **self_p);

//  Take one CHUNK. Returns AF_OK (*complete when every byte is in and the
//  hash matches), AF_E_MALFORMED with err when the sender broke a rule (out
//  of order, a repeat, too large, past the end, bad compression, or, on the
//  last chunk, a hash that does not match: the sender's fault, not to be
//  retried as is), or AF_E_INTERNAL with err when this side could not
//  write the file (a full disk, a size limit: a 5xx, worth a retry later).
int af_download_chunk (af_download_t *self, const af_msg_t *chunk, bool *complete, char *err, size_t errlen);

//  The raw bytes of the chunk af_download_chunk took last (decompressed;
//  valid until the next call or destroy), *size of them; their offset is
//  af_download_received minus *size. NULL before the first chunk.
const uint8_t *af_download_last (af_download_t *self, uint32_t *size);

//  Bytes received and written so far (the offset to resume from)
uint64_t af_download_received (af_download_t *self);

//  Keep the file when the download is destroyed (it is being installed)
void af_download_keep (af_download_t *self);

//  Self test
void af_download_test (bool verbose);

#endif
