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
    target fetches it after its install. A blob is removed when the last
    pending offer naming it is done (af_pushes counts them), or, if no
    push ever named it, quota/data_grace after it arrived (broker_data_gc).
    An account holds at most quota/data_blobs blobs and quota/data_bytes
    bytes of them: an UPLOAD past either is refused with E_QUOTA. One upload per connection at a
    time: a new UPLOAD drops the one before, so a node cannot make the
    broker hold many receive buffers.
    =========================================================================
*/
#include "broker_int.h"

#include <dirent.h>
#include <time.h>

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

void
broker_data_remove (af_broker_t *self, const char *account, const char *hash)
{
    char path [900];
    snprintf (path, sizeof path, "%s/blobs/%s/%.2s/%s", self->data_dir, account, hash, hash);
    if (unlink (path) == 0)
        zsys_info ("broker: removed user data %.16s... of '%s': no push needs it now", hash, account);
    else
    if (errno != ENOENT)
        zsys_warning ("broker: cannot remove %s: %s", path, strerror (errno));
}

//  Call fn for every blob file of account (NULL: of every account)
typedef void (blob_fn) (af_broker_t *self, const char *account, const char *hash, const struct stat *st,
                        void *arg);

static void
s_blobs_each (af_broker_t *self, const char *only, blob_fn *fn, void *arg)
{
    char root [700];
    snprintf (root, sizeof root, "%s/blobs", self->data_dir);
    DIR *accounts = opendir (root);
    struct dirent *account;
    while (accounts && (account = readdir (accounts))) {
        if (*account->d_name == '.' || (only && !streq (only, account->d_name)))
            continue;
        char dir [900];
        snprintf (dir, sizeof dir, "%s/%s", root, account->d_name);
        DIR *fans = opendir (dir);
        struct dirent *fan;
        while (fans && (fan = readdir (fans))) {
            if (*fan->d_name == '.' || strlen (fan->d_name) != 2)
                continue;
            char sub [1000];
            snprintf (sub, sizeof sub, "%s/%s", dir, fan->d_name);
            DIR *files = opendir (sub);
            struct dirent *file;
            while (files && (file = readdir (files))) {
                char path [1100];
                snprintf (path, sizeof path, "%s/%s", sub, file->d_name);
                struct stat st;
                if (broker_hash_hex (file->d_name) && lstat (path, &st) == 0 && S_ISREG (st.st_mode))
                    fn (self, account->d_name, file->d_name, &st, arg);
            }
            if (files)
                closedir (files);
        }
        if (fans)
            closedir (fans);
    }
    if (accounts)
        closedir (accounts);
}

typedef struct {
    size_t count;
    uint64_t bytes;
} usage_t;

static void
s_usage_add (af_broker_t *self, const char *account, const char *hash, const struct stat *st, void *arg)
{
    (void) self;
    (void) account;
    (void) hash;
    usage_t *usage = (usage_t *) arg;
    usage->count++;
    usage->bytes += (uint64_t) st->st_size;
}

static void
s_gc_one (af_broker_t *self, const char *account, const char *hash, const struct stat *st, void *arg)
{
    time_t now = *(time_t *) arg;
    uint32_t refs = 1;
    if ((int64_t) (now - st->st_mtime) >= self->config.data_grace_s
    &&  !broker_push_jobs_name (self, account, hash)
    &&  af_pushes_blob_refs (self->pushes, account, hash, &refs) == AF_OK && refs == 0) {
        zsys_info ("broker: user data %.16s... of '%s' was never pushed; removing it", hash, account);
        broker_data_remove (self, account, hash);
    }
}

void
broker_data_gc (af_broker_t *self)
{
    time_t now = time (NULL);
    s_blobs_each (self, NULL, s_gc_one, &now);
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
    usage_t usage = { 0, 0 };
    s_blobs_each (self, session->account, s_usage_add, &usage);
    if (usage.count >= (size_t) self->config.quota_data_blobs
    ||  usage.bytes + msg->total > (uint64_t) self->config.quota_data_mib << 20) {
        zsys_warning ("broker: refused UPLOAD from %s of '%s': quota (%zu blobs, %llu bytes held)",
                      session->device_id, session->account, usage.count, (unsigned long long) usage.bytes);
        broker_error (self, session, msg, AF_E_QUOTA, "the account holds %zu blobs of user data (%llu MiB) "
                      "waiting for pushes; at most %d blobs and %d MiB: let pending pushes finish first",
                      usage.count, (unsigned long long) (usage.bytes >> 20), self->config.quota_data_blobs,
                      self->config.quota_data_mib);
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
    bool complete;
    int code = af_download_chunk (upload->download, msg, &complete, err, sizeof err);
    if (code == AF_OK && !complete) {
        s_send_credit (self, session, msg->hash, 1, NULL);
        return;
    }
    if (code == AF_OK)
        s_upload_keep (self, session, upload, msg->total);
    else
    if (code == AF_E_INTERNAL) {
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
