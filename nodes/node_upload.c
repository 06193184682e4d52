/*  =========================================================================
    node_upload - the user data of a push this device starts (S2.8)

    `push --with-data` packs HOME/data/PROGRAM/ into a tar in incoming/,
    names it by its BLAKE2b-256 and size, UPLOADs it to the broker in
    CHUNKs under the broker's credit (compressed when that helps), and
    sends the PUSH naming it once the broker said OK. One upload at a
    time; the CLI waits for the push's answer throughout.
    =========================================================================
*/
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <zstd.h>

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
            node_ctl_error (self, upload->client, AF_E_INTERNAL, "cannot read %s: %s", upload->path,
                         got < 0? strerror (errno): "it shrank");
            node_upload_free (&self->upload);
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
//  or ERROR. The CLI waits for the push's answer throughout.
static bool
s_upload_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    upload_t *upload = self->upload;
    if (!upload || !streq (upload->rid, pending->hex))
        return true;
    if (!answer) {
        node_ctl_error (self, upload->client, AF_E_UNAVAILABLE,
                        "the broker did not take the data within %d ms", self->config.request_timeout_ms);
        node_upload_free (&self->upload);
    }
    else
    if (answer->id == AF_MSG_CREDIT) {
        upload->credit += answer->credit;
        pending->deadline = zclock_mono () + self->config.request_timeout_ms;
        s_upload_pump (self);
        return false;                   //  the UPLOAD stays until OK
    }
    else
    if (answer->id == AF_MSG_OK) {
        node_request (self, node_cli_push_answer, REQ_SESSION, upload->client, upload->push);
        upload->push = NULL;
        node_upload_free (&self->upload);
    }
    else {
        node_ctl_error (self, upload->client, (int) answer->code, "the broker refused the data: %s",
                        answer->reason);
        node_upload_free (&self->upload);
    }
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

//  The CLI asked for a push with the app's data: pack it, then UPLOAD
void
node_upload_start (af_node_t *self, zframe_t *client, af_msg_t *push)
{
    char dir [600], err [AF_MAX_REASON + 1];
    snprintf (dir, sizeof dir, "%s/data/%s", self->config.home, push->program);
    struct stat st;
    if (stat (dir, &st) || !S_ISDIR (st.st_mode)) {
        node_ctl_error (self, client, AF_E_MALFORMED, "no data to send: %s is not a directory", dir);
        af_msg_destroy (&push);
        return;
    }
    if (self->upload) {
        node_ctl_error (self, client, AF_E_UNAVAILABLE, "another push's data is being sent; try again later");
        af_msg_destroy (&push);
        return;
    }
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    assert (upload);
    upload->fd = -1;
    upload->push = push;
    upload->client = zframe_dup (client);
    uint8_t rand [8];
    randombytes_buf (rand, sizeof rand);
    char tag [17];
    sodium_bin2hex (tag, sizeof tag, rand, sizeof rand);
    snprintf (upload->path, sizeof upload->path, "%s/incoming/data-%s.tar", self->config.home, tag);
    self->upload = upload;
    if (af_install_pack_dir (dir, upload->path, err, sizeof err) != AF_OK) {
        node_ctl_error (self, client, AF_E_MALFORMED, "cannot pack the data: %s", err);
        node_upload_free (&self->upload);
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
        node_ctl_error (self, client, AF_E_MALFORMED, upload->total > AF_MAX_DATA?
                     "the data is larger than 256 MiB": "cannot read the packed data");
        node_upload_free (&self->upload);
        return;
    }
    memcpy (push->data_hash, upload->hash, sizeof push->data_hash);
    push->data_total = upload->total;
    af_msg_t *msg = af_msg_new (AF_MSG_UPLOAD);
    memcpy (msg->hash, upload->hash, sizeof msg->hash);
    msg->total = upload->total;
    pending_t *pending = node_request (self, s_upload_answer, REQ_SESSION, NULL, msg);
    memcpy (upload->rid, pending->hex, sizeof upload->rid);
    zsys_info ("node: sending %llu bytes of %s's data to the broker", (unsigned long long) upload->total,
               push->program);
}

