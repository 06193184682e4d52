/*  =========================================================================
    handle_upload - UPLOAD and its CHUNKs: a push's user data (SPEC 5.27, S2.8)

    With `push --with-data` the initiator first uploads the app's data (a
    tar) to the broker: UPLOAD names the blob's hash and size, the broker
    answers with CREDIT, and the node sends CHUNKs under that credit, each
    checked by the same af_download as a node's downloads (offsets, sizes,
    zstd bounds, the whole-file hash at the end). The blob is kept in
    DATA/data/blobs/ACCOUNT/ by hash: it belongs to the account that sent
    it, so only that account's PUSH may name it and only that account's
    targets may fetch it (a hash is not a secret: it may be known to anyone
    who saw the same bytes). The PUSH that follows names it, and each
    target fetches it after its install. One upload per connection at a
    time: a new UPLOAD drops the one before, so a node cannot make the
    broker hold many receive buffers.
    =========================================================================
*/
#include "broker_int.h"

//  A blob a node is sending us
typedef struct {
    char session [2 * AF_MAX_ROUTING + 2];  //  uploads key
    char hash [AF_HASH_HEX + 1];
    broker_caller_t caller;                 //  the UPLOAD, for the final answer
    af_download_t *download;
    char part [700];
} upload_t;

void
broker_upload_free (void **item)
{
    upload_t *upload = (upload_t *) *item;
    if (upload) {
        af_download_destroy (&upload->download);    //  removes a partial file
        free (upload);
        *item = NULL;
    }
}

void
broker_uploads_drop (af_broker_t *self, session_t *session)
{
    zhashx_delete (self->uploads, session->hex);
}

bool
broker_hash_hex (const char *hash)
{
    bool hex = strlen (hash) == AF_HASH_HEX;
    for (const char *p = hash; hex && *p; p++)
        hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
    return hex;
}

int64_t
broker_data_size (af_broker_t *self, const char *account, const char *hash)
{
    char path [900];
    snprintf (path, sizeof path, "%s/blobs/%s/%.2s/%s", self->data_dir, account, hash, hash);
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode)? (int64_t) st.st_size: -1;
}

static void
s_send_credit (af_broker_t *self, session_t *session, const char *hash, uint32_t credit,
               const broker_caller_t *caller)
{
    af_msg_t *msg = af_msg_new (AF_MSG_CREDIT);
    snprintf (msg->hash, sizeof msg->hash, "%s", hash);
    msg->credit = credit;
    if (caller) {
        memcpy (msg->rid, caller->rid, AF_ID_SIZE);
        msg->has_rid = caller->has_rid;
    }
    broker_send (self, session, &msg);
}

void
handle_upload (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (!broker_hash_hex (msg->hash) || msg->total == 0 || msg->total > AF_MAX_DATA) {
        broker_error (self, session, msg, AF_E_MALFORMED, "%s", msg->total > AF_MAX_DATA?
                      "user data larger than 256 MiB": "UPLOAD needs a 64-hex hash and a size above 0");
        return;
    }
    if (broker_data_size (self, session->account, msg->hash) == (int64_t) msg->total) {
        broker_ok (self, session, msg);         //  we have these bytes already
        return;
    }
    broker_uploads_drop (self, session);        //  one at a time: a new one replaces the old
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    assert (upload);
    snprintf (upload->session, sizeof upload->session, "%s", session->hex);
    snprintf (upload->hash, sizeof upload->hash, "%s", msg->hash);
    broker_caller (&upload->caller, session, msg);
    snprintf (upload->part, sizeof upload->part, "%s/incoming/%s-%s.part", self->data_dir, session->hex,
              msg->hash);
    char err [AF_MAX_REASON + 1];
    upload->download = af_download_new (upload->part, msg->hash, msg->total, err, sizeof err);
    if (!upload->download) {
        free (upload);
        zsys_error ("broker: cannot receive an upload: %s", err);
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot store the upload");
        return;
    }
    zhashx_update (self->uploads, upload->session, upload);
    s_send_credit (self, session, msg->hash, AF_MAX_CREDIT / 2, &upload->caller);
}

//  The last chunk is in and the hash checked: keep the blob
static void
s_upload_keep (af_broker_t *self, session_t *session, upload_t *upload, uint64_t total)
{
    char dir [900], path [1000];
    snprintf (dir, sizeof dir, "%s/blobs/%s/%.2s", self->data_dir, session->account, upload->hash);
    snprintf (path, sizeof path, "%s/%s", dir, upload->hash);
    af_download_keep (upload->download);
    af_download_destroy (&upload->download);
    if (zsys_dir_create ("%s", dir) || rename (upload->part, path)) {
        zsys_error ("broker: cannot store an upload in %s: %s", path, strerror (errno));
        unlink (upload->part);
        broker_error_rid (self, session, upload->caller.has_rid? upload->caller.rid: NULL,
                          AF_E_INTERNAL, "cannot store the upload");
        return;
    }
    zsys_info ("broker: stored %llu bytes of user data %.16s... from %s of '%s'",
               (unsigned long long) total, upload->hash, session->device_id, session->account);
    af_msg_t *ok = af_msg_new (AF_MSG_OK);
    broker_answer (self, &upload->caller, &ok);
}

void
handle_chunk (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    upload_t *upload = (upload_t *) zhashx_lookup (self->uploads, session->hex);
    if (!upload || !streq (upload->hash, msg->hash)) {
        zsys_warning ("broker: refused a CHUNK from %s: no upload of %.16s... in progress",
                      session->device_id, msg->hash);
        broker_error (self, session, NULL, AF_E_MALFORMED, "CHUNK: no upload of this hash in progress");
        return;
    }
    char err [AF_MAX_REASON + 1];
    int rc = af_download_chunk (upload->download, msg, err, sizeof err);
    if (rc == 0) {
        s_send_credit (self, session, msg->hash, 1, NULL);
        return;
    }
    if (rc == 1)
        s_upload_keep (self, session, upload, msg->total);
    else
    if (af_download_local (upload->download)) {
        //  Our disk, not the node's bytes: a 5xx, so the node tries again later
        zsys_error ("broker: cannot store an upload from %s of '%s': %s", session->device_id,
                    session->account, err);
        broker_error_rid (self, session, upload->caller.has_rid? upload->caller.rid: NULL,
                          AF_E_INTERNAL, "the broker cannot store the upload: %s", err);
    }
    else {
        zsys_warning ("broker: upload from %s of '%s' refused: %s", session->device_id, session->account, err);
        broker_error_rid (self, session, upload->caller.has_rid? upload->caller.rid: NULL,
                          AF_E_MALFORMED, "%s", err);
    }
    zhashx_delete (self->uploads, session->hex);
}
