/*  =========================================================================
    node_upload - the user data of a push this device starts (S2.8)

    `push --with-data`, and a GET's notice that asks for the data (the
    source's side, node_getdata.c), pack HOME/data/PROGRAM/ into a tar in
    incoming/, name it by its BLAKE2b-256 and size, UPLOAD it to the broker
    in CHUNKs under the broker's credit (compressed when that helps), and
    send the PUSH naming it once the broker said OK. One upload at a time.
    The push's completion hears how it ended: the PUSH's answer, or an
    ERROR when the data could not be packed or sent (this node's reason,
    or the broker's refusal of the UPLOAD), or no answer; its typed context
    (the CLI waiting, a notice's item) goes with it. The UPLOAD belongs to
    its session: a session that ends ends it (no answer), since the chunks
    went to a broker side that is gone.
    =========================================================================
*/
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <zstd.h>

//  The upload ended without the broker taking the data: the push's
//  completion hears it as it would hear the broker refuse it, an ERROR
//  (or no answer: code 0). The upload is freed.
static void
s_upload_end (af_node_t *self, upload_t *upload, int code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_upload_end (af_node_t *self, upload_t *upload, int code, const char *format, ...)
{
    if (self->upload == upload)
        self->upload = NULL;            //  the completion may start the next one
    char reason [AF_MAX_REASON + 1];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    pending_t context;
    memset (&context, 0, sizeof context);
    context.client = upload->client;    //  borrowed
    af_strcopy (context.program, sizeof context.program, upload->push->program);
    af_strcopy (context.push, sizeof context.push, upload->item);
    af_msg_t *error = code? af_msg_error (code, NULL, "%s", reason): NULL;
    if (!code && upload->client)
        node_ctl_error (self, upload->client, AF_E_UNAVAILABLE, "%s", reason);
    upload->on_answer (self, &context, error);
    af_msg_destroy (&error);
    node_upload_free (&upload);
}

void
node_upload_free (upload_t **upload_p)
{
    upload_t *upload = *upload_p;
    if (upload) {
        if (upload->fd >= 0)
            close (upload->fd);
        unlink (upload->path);
        af_msg_destroy (&upload->push);
        zframe_destroy (&upload->client);
        free (upload);
        *upload_p = NULL;
    }
}

//  Send the chunks the broker's credit allows
static void
s_upload_pump (af_node_t *self)
{
    upload_t *upload = self->upload;
    while (upload && upload->credit && upload->sent < upload->total) {
        size_t want = upload->total - upload->sent < AF_MAX_CHUNK?
                      (size_t) (upload->total - upload->sent): AF_MAX_CHUNK;
        ssize_t got = pread (upload->fd, self->chunk_raw, want, (off_t) upload->sent);
        if (got != (ssize_t) want) {
            s_upload_end (self, upload, AF_E_INTERNAL, "cannot read %s: %s", upload->path,
                          got < 0? strerror (errno): "it shrank");
            return;
        }
        af_msg_t *chunk = af_msg_new (AF_MSG_CHUNK);
        snprintf (chunk->hash, sizeof chunk->hash, "%s", upload->hash);
        chunk->offset = upload->sent;
        chunk->total = upload->total;
        chunk->size = (uint32_t) want;
        size_t packed = ZSTD_compress (self->chunk_packed, self->chunk_packed_size, self->chunk_raw, want, 1);
        chunk->zstd = !ZSTD_isError (packed) && packed < want;
        chunk->data = chunk->zstd? self->chunk_packed: self->chunk_raw;     //  borrowed
        chunk->data_size = (uint32_t) (chunk->zstd? packed: want);
        int rc = node_send (self, chunk);
        chunk->data = NULL;
        af_msg_destroy (&chunk);
        if (rc)
            return;                     //  not connected: the request will time out
        upload->sent += want;
        upload->credit--;
    }
}

//  The broker's answer to our UPLOAD: credit, then OK (it has the data)
//  or ERROR. The push's completion waits throughout.
static bool
s_upload_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    upload_t *upload = self->upload;
    if (!upload || !streq (upload->rid, pending->hex))
        return true;
    if (!answer)
        s_upload_end (self, upload, 0, "the broker did not take the data within %d ms (or the session ended)",
                      self->config.request_timeout_ms);
    else
    if (answer->id == AF_MSG_CREDIT) {
        upload->credit += answer->credit;
        pending->deadline = zclock_mono () + self->config.request_timeout_ms;
        s_upload_pump (self);
        return false;                   //  the UPLOAD stays until OK
    }
    else
    if (answer->id == AF_MSG_OK) {
        pending_t *push = node_request (self, upload->on_answer, upload->flags, upload->client, upload->push);
        af_strcopy (push->program, sizeof push->program, upload->push->program);
        af_strcopy (push->push, sizeof push->push, upload->item);
        upload->push = NULL;
        node_upload_free (&self->upload);
    }
    else
        s_upload_end (self, upload, answer->code >= 400 && answer->code <= 599? (int) answer->code: AF_E_INTERNAL,
                      "the broker refused the data: %s", answer->reason);
    return true;
}

//  Credit the broker sends for our chunks, beyond the UPLOAD's first
void
node_upload_credit (af_node_t *self, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    if (self->upload && streq (self->upload->hash, msg->hash)) {
        self->upload->credit += msg->credit;
        s_upload_pump (self);
    }
}

//  A push with the app's data: pack it, then UPLOAD
void
node_upload_start (af_node_t *self, af_msg_t *push, node_answer_fn *on_answer, unsigned flags, zframe_t *client,
                   const char *item)
{
    char dir [600], err [AF_MAX_REASON + 1];
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    assert (upload);
    upload->fd = -1;
    upload->push = push;
    upload->on_answer = on_answer;
    upload->flags = flags;
    upload->client = client? zframe_dup (client): NULL;
    af_strcopy (upload->item, sizeof upload->item, item? item: "");
    snprintf (dir, sizeof dir, "%s/data/%s", self->config.home, push->program);
    struct stat st;
    if (stat (dir, &st) || !S_ISDIR (st.st_mode)) {
        s_upload_end (self, upload, AF_E_MALFORMED, "no data to send: %s is not a directory", dir);
        return;
    }
    if (self->upload) {
        s_upload_end (self, upload, AF_E_UNAVAILABLE, "another push's data is being sent; try again later");
        return;
    }
    uint8_t rand [8];
    randombytes_buf (rand, sizeof rand);
    char tag [17];
    sodium_bin2hex (tag, sizeof tag, rand, sizeof rand);
    snprintf (upload->path, sizeof upload->path, "%s/incoming/data-%s.tar", self->config.home, tag);
    self->upload = upload;
    if (af_install_pack_dir (dir, upload->path, err, sizeof err) != AF_OK) {
        s_upload_end (self, upload, AF_E_MALFORMED, "cannot pack the data: %s", err);
        return;
    }
    //  Its hash and size name it on the broker
    upload->fd = open (upload->path, O_RDONLY | O_CLOEXEC);
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, AF_HASH_SIZE);
    ssize_t n = 0;
    while (upload->fd >= 0 && (n = read (upload->fd, self->chunk_raw, AF_MAX_CHUNK)) > 0) {
        crypto_generichash_update (&state, self->chunk_raw, (size_t) n);
        upload->total += (uint64_t) n;
    }
    uint8_t hash [AF_HASH_SIZE];
    crypto_generichash_final (&state, hash, sizeof hash);
    sodium_bin2hex (upload->hash, sizeof upload->hash, hash, sizeof hash);
    if (upload->fd < 0 || n < 0 || upload->total > AF_MAX_DATA) {
        s_upload_end (self, upload, AF_E_MALFORMED, "%s", upload->total > AF_MAX_DATA?
                      "the data is larger than 256 MiB": "cannot read the packed data");
        return;
    }
    memcpy (push->data_hash, upload->hash, sizeof push->data_hash);
    push->data_total = upload->total;
    af_msg_t *msg = af_msg_new (AF_MSG_UPLOAD);
    memcpy (msg->hash, upload->hash, sizeof msg->hash);
    msg->total = upload->total;
    pending_t *pending = node_request (self, s_upload_answer, REQ_SESSION | REQ_PER_SESSION, NULL, msg);
    memcpy (upload->rid, pending->hex, sizeof upload->rid);
    zsys_info ("node: sending %llu bytes of %s's data to the broker", (unsigned long long) upload->total,
               push->program);
}

