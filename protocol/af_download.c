/*  =========================================================================
    af_download - one package arriving in CHUNKs, checked as it comes
    =========================================================================
*/
#include "af_download.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <zstd.h>

struct _af_download_t {
    char path [600];
    char hash [AF_HASH_HEX + 1];
    uint64_t total;
    uint64_t received;
    int fd;
    bool keep;
    crypto_generichash_state state;
    uint8_t *buffer;                //  one decompressed chunk
    const uint8_t *last;            //  the last chunk's bytes (af_download_last)
    uint32_t last_size;
};

af_download_t *
af_download_new (const char *path, const char *hash, uint64_t total, char *err, size_t errlen)
{
    af_download_t *self = (af_download_t *) zmalloc (sizeof (af_download_t));
    assert (self);
    snprintf (self->path, sizeof self->path, "%s", path? path: "");
    snprintf (self->hash, sizeof self->hash, "%s", hash);
    self->total = total;
    self->buffer = (uint8_t *) malloc (AF_MAX_CHUNK);
    self->fd = path? open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600): -1;
    if (!path)
        self->keep = true;                  //  no file
    if ((path && self->fd < 0) || !self->buffer) {
        snprintf (err, errlen, "cannot create %s: %s", path? path: "a buffer", strerror (errno));
        self->keep = self->fd < 0;          //  nothing to remove
        af_download_destroy (&self);
        return NULL;
    }
    crypto_generichash_init (&self->state, NULL, 0, AF_HASH_SIZE);
    return self;
}

void
af_download_destroy (af_download_t **self_p)
{
    assert (self_p);
    af_download_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    if (!self->keep)
        unlink (self->path);
    free (self->buffer);
    free (self);
    *self_p = NULL;
}

int
af_download_chunk (af_download_t *self, const af_msg_t *chunk, bool *complete, char *err, size_t errlen)
{
    assert (self && chunk && complete);
    *complete = false;
    if (!streq (chunk->hash, self->hash)) {
        snprintf (err, errlen, "a chunk of another package arrived");
        return AF_E_MALFORMED;
    }
    if (chunk->total != self->total) {
        snprintf (err, errlen, "the package is %llu bytes, not the %llu the offer said",
                  (unsigned long long) chunk->total, (unsigned long long) self->total);
        return AF_E_MALFORMED;
    }
    if (chunk->offset != self->received) {
        snprintf (err, errlen, "chunk at offset %llu %s; expected offset %llu",
                  (unsigned long long) chunk->offset,
                  chunk->offset < self->received? "repeats bytes already received": "is out of order",
                  (unsigned long long) self->received);
        return AF_E_MALFORMED;
    }
    if (chunk->size == 0 || chunk->size > AF_MAX_CHUNK || chunk->offset + chunk->size > self->total) {
        snprintf (err, errlen, "chunk of %u bytes at %llu is too large or runs past the end",
                  chunk->size, (unsigned long long) chunk->offset);
        return AF_E_MALFORMED;
    }
    const uint8_t *bytes = chunk->data;
    if (chunk->zstd) {
        //  The frame must declare and yield exactly the announced size
        unsigned long long declared = ZSTD_getFrameContentSize (chunk->data, chunk->data_size);
        size_t n = declared == chunk->size?
                   ZSTD_decompress (self->buffer, AF_MAX_CHUNK, chunk->data, chunk->data_size): 0;
        if (declared != chunk->size || ZSTD_isError (n) || n != chunk->size) {
            snprintf (err, errlen, "chunk at %llu does not decompress to its %u bytes",
                      (unsigned long long) chunk->offset, chunk->size);
            return AF_E_MALFORMED;
        }
        bytes = self->buffer;
    }
    else
    if (chunk->data_size != chunk->size) {
        snprintf (err, errlen, "raw chunk at %llu has %u bytes, not %u", (unsigned long long) chunk->offset,
                  chunk->data_size, chunk->size);
        return AF_E_MALFORMED;
    }
    size_t done = self->fd < 0? chunk->size: 0;       //  no file: the caller keeps them
    while (done < chunk->size) {
        ssize_t n = write (self->fd, bytes + done, chunk->size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf (err, errlen, "cannot write the file: %s",
                      errno == ENOSPC? "the disk is full":
                      errno == EFBIG? "larger than this device allows (file size limit)": strerror (errno));
            return AF_E_INTERNAL;
        }
        done += (size_t) n;
    }
    crypto_generichash_update (&self->state, bytes, chunk->size);
    self->last = bytes;
    self->last_size = chunk->size;
    self->received += chunk->size;
    if (self->received < self->total)
        return AF_OK;
    uint8_t hash [AF_HASH_SIZE];
    char hex [AF_HASH_HEX + 1];
    crypto_generichash_final (&self->state, hash, sizeof hash);
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    if (!streq (hex, self->hash)) {
        snprintf (err, errlen, "the file's hash does not match (got %.16s..., expected %.16s...): "
                  "it was altered in the store or in transit", hex, self->hash);
        return AF_E_MALFORMED;
    }
    if (self->fd >= 0 && fsync (self->fd)) {
        snprintf (err, errlen, "cannot write the package: %s", strerror (errno));
        return AF_E_INTERNAL;
    }
    *complete = true;
    return AF_OK;
}

const uint8_t *
af_download_last (af_download_t *self, uint32_t *size)
{
    assert (self && size);
    *size = self->last_size;
    return self->last;
}

uint64_t
af_download_received (af_download_t *self)
{
    return self->received;
}

void
af_download_keep (af_download_t *self)
{
    self->keep = true;
}

//  --------------------------------------------------------------------------
//  Self test

static af_msg_t *
s_chunk (const char *hash, uint64_t total, uint64_t offset, const uint8_t *data, uint32_t size, bool zstd)
{
    af_msg_t *chunk = af_msg_new (AF_MSG_CHUNK);
    strcpy (chunk->hash, hash);
    chunk->total = total;
    chunk->offset = offset;
    chunk->size = size;
    if (zstd) {
        size_t bound = ZSTD_compressBound (size);
        chunk->data = (uint8_t *) malloc (bound);
        chunk->data_size = (uint32_t) ZSTD_compress (chunk->data, bound, data, size, 1);
        chunk->zstd = true;
    }
    else {
        chunk->data = (uint8_t *) malloc (size);
        memcpy (chunk->data, data, size);
        chunk->data_size = size;
    }
    return chunk;
}

void
af_download_test (bool verbose)
{
    bool complete;
    if (verbose)
        printf (" * af_download: ");
    char dir [] = "/tmp/af_download_test.XXXXXX";
    assert (mkdtemp (dir));
    char path [128], err [256];
    snprintf (path, sizeof path, "%s/x.part", dir);
    //  A package of one and a half chunks: half compressible, half random
    uint32_t total = AF_MAX_CHUNK + AF_MAX_CHUNK / 2;
    uint8_t *data = (uint8_t *) malloc (total);
    memset (data, 'a', AF_MAX_CHUNK);
    randombytes_buf (data + AF_MAX_CHUNK, total - AF_MAX_CHUNK);
    uint8_t raw [AF_HASH_SIZE];
    char hash [AF_HASH_HEX + 1];
    crypto_generichash (raw, sizeof raw, data, total, NULL, 0);
    sodium_bin2hex (hash, sizeof hash, raw, sizeof raw);

    //  In order: complete and verified
    af_download_t *download = af_download_new (path, hash, total, err, sizeof err);
    assert (download);
    af_msg_t *first = s_chunk (hash, total, 0, data, AF_MAX_CHUNK, true);
    af_msg_t *second = s_chunk (hash, total, AF_MAX_CHUNK, data + AF_MAX_CHUNK, total - AF_MAX_CHUNK, false);
    assert (first->data_size < AF_MAX_CHUNK);
    assert (af_download_chunk (download, first, &complete, err, sizeof err) == AF_OK && !complete);
    //  A repeat is refused, and refused without harm
    assert (af_download_chunk (download, first, &complete, err, sizeof err) == AF_E_MALFORMED && strstr (err, "repeats"));
    assert (af_download_received (download) == AF_MAX_CHUNK);
    assert (af_download_chunk (download, second, &complete, err, sizeof err) == AF_OK && complete);
    af_download_keep (download);
    af_download_destroy (&download);
    assert (zsys_file_exists (path));
    unlink (path);

    //  Into no file: each chunk's bytes, decompressed, are the caller's
    download = af_download_new (NULL, hash, total, err, sizeof err);
    uint32_t size;
    assert (download && af_download_last (download, &size) == NULL && size == 0);
    assert (af_download_chunk (download, first, &complete, err, sizeof err) == AF_OK && !complete);
    const uint8_t *bytes = af_download_last (download, &size);
    assert (size == AF_MAX_CHUNK && memcmp (bytes, data, size) == 0);
    assert (af_download_chunk (download, second, &complete, err, sizeof err) == AF_OK && complete);
    bytes = af_download_last (download, &size);
    assert (size == total - AF_MAX_CHUNK && memcmp (bytes, data + AF_MAX_CHUNK, size) == 0);
    assert (af_download_received (download) == total);
    af_download_destroy (&download);

    //  Out of order
    download = af_download_new (path, hash, total, err, sizeof err);
    assert (af_download_chunk (download, second, &complete, err, sizeof err) == AF_E_MALFORMED && strstr (err, "out of order"));
    af_download_destroy (&download);
    assert (!zsys_file_exists (path));          //  the partial file is gone

    //  A tampered byte: everything arrives, the hash check refuses it
    download = af_download_new (path, hash, total, err, sizeof err);
    second->data [100] ^= 1;
    assert (af_download_chunk (download, first, &complete, err, sizeof err) == AF_OK && !complete);
    assert (af_download_chunk (download, second, &complete, err, sizeof err) == AF_E_MALFORMED && strstr (err, "hash does not match"));
    af_download_destroy (&download);
    assert (!zsys_file_exists (path));

    //  A compressed chunk that lies about its size
    download = af_download_new (path, hash, total, err, sizeof err);
    first->size = AF_MAX_CHUNK - 1;
    assert (af_download_chunk (download, first, &complete, err, sizeof err) == AF_E_MALFORMED && strstr (err, "decompress"));
    af_download_destroy (&download);
    //  Another package's chunk, and a chunk past the end
    download = af_download_new (path, hash, total, err, sizeof err);
    first->size = AF_MAX_CHUNK;
    first->hash [0] = first->hash [0] == 'a'? 'b': 'a';
    assert (af_download_chunk (download, first, &complete, err, sizeof err) == AF_E_MALFORMED && strstr (err, "another"));
    af_download_destroy (&download);
    download = af_download_new (path, hash, 10, err, sizeof err);
    second->total = 10;
    second->offset = 0;
    assert (af_download_chunk (download, second, &complete, err, sizeof err) == AF_E_MALFORMED);
    af_download_destroy (&download);

    af_msg_destroy (&first);
    af_msg_destroy (&second);
    free (data);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
