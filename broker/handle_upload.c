/*  =========================================================================
    handle_upload - UPLOAD and its CHUNKs: a push's user data (SPEC 5.27, S2.8)

    With `push --with-data` the initiator first uploads the app's data (a
    tar) to the broker: UPLOAD names the blob's hash and size, the broker
    answers with CREDIT, and the node sends CHUNKs under that credit, each
    checked by the same af_download as a node's downloads (offsets, sizes,
    zstd bounds, the whole-file hash at the end). Each chunk's bytes go
    into the store as they arrive (af_userdata: in the batch's group
    commit, so in a cluster into the shard's log), and the blob's record
    once the hash is checked; the final OK, held like every answer until
    its batch is on disk (and on the in-sync followers), says the blob is
    kept. It belongs to the account that sent it, so only that account's
    PUSH may name it and only that account's targets may fetch it (a hash
    is not a secret: it may be known to anyone who saw the same bytes).
    The PUSH that follows names it, and each target fetches it after its
    install. A blob is removed when the last pending offer naming it is
    done (af_pushes counts them), or, if no push ever named it,
    quota/data_grace after it arrived (broker_data_gc, which also drops
    uploads nobody is sending any more). An account holds at most
    quota/data_blobs blobs and quota/data_bytes bytes of them, uploads in
    progress included: an UPLOAD past either is refused with E_QUOTA. One
    upload per connection at a time: a new UPLOAD drops the one before, so
    a node cannot make the broker hold many.
    =========================================================================
*/
#include "broker_int.h"

#include <dirent.h>
#include <time.h>

//  A blob a node is sending us
typedef struct {
    char session [2 * AF_MAX_ROUTING + 2];  //  uploads key
    char account [AF_MAX_ACCOUNT + 1];
    char hash [AF_HASH_HEX + 1];
    uint8_t id [AF_ID_SIZE];                //  af_userdata's upload ID
    broker_caller_t caller;                 //  the UPLOAD, for the final answer
    af_download_t *download;                //  checks the chunks (no file)
} upload_t;

void
broker_upload_free (void **item)
{
    upload_t *upload = (upload_t *) *item;
    if (upload) {
        af_download_destroy (&upload->download);
        free (upload);
        *item = NULL;
    }
}

//  Drop the session's upload, and what of it is in the store (if its
//  shard is still ours: else its owner's sweep does)
static void
s_upload_drop (af_broker_t *self, const char *session_hex)
{
    upload_t *upload = (upload_t *) zhashx_lookup (self->uploads, session_hex);
    uint32_t shard;
    if (upload && broker_cluster_serves (self, upload->account, &shard)
    &&  af_userdata_abandon (self->userdata, upload->account, upload->id) != AF_OK)
        zsys_warning ("broker: cannot drop an unfinished upload of '%s' now; the sweep will", upload->account);
    zhashx_delete (self->uploads, session_hex);
}

void
broker_uploads_drop (af_broker_t *self, session_t *session)
{
    s_upload_drop (self, session->hex);
}

void
broker_uploads_refuse (af_broker_t *self, session_t *session, int code)
{
    upload_t *upload = (upload_t *) zhashx_lookup (self->uploads, session->hex);
    if (!upload)
        return;
    zsys_warning ("broker: the upload from %s of '%s' is refused: a commit of its chunks failed",
                  session->device_id, session->account);
    broker_error_rid (self, session, upload->caller.has_rid? upload->caller.rid: NULL, code, "%s",
                      code == AF_E_INTERNAL? "the broker could not store the upload (see its log): send it again":
                      "this broker can no longer confirm changes (it lost its cluster lease): send it again");
    s_upload_drop (self, session->hex);
}

bool
broker_hash_hex (const char *hash)
{
    return af_hash_from_hex (hash, NULL) == AF_OK;
}

int64_t
broker_data_size (af_broker_t *self, const char *account, const char *hash)
{
    uint64_t size;
    return af_userdata_size (self->userdata, account, hash, &size) == AF_OK? (int64_t) size: -1;
}

void
broker_data_remove (af_broker_t *self, const char *account, const char *hash)
{
    int code = af_userdata_remove (self->userdata, account, hash);
    if (code == AF_OK)
        zsys_info ("broker: removed user data %.16s... of '%s': no push needs it now", hash, account);
    else
        zsys_warning ("broker: cannot remove user data %.16s... of '%s' now (%s); the sweep will",
                      hash, account, af_code_name (code));
}

//  The sweep's questions (af_userdata_sweep)
static bool
s_ours (void *arg, const char *account)
{
    uint32_t shard;
    return broker_cluster_serves ((af_broker_t *) arg, account, &shard);
}

static bool
s_live (void *arg, const char *account, const uint8_t *id)
{
    af_broker_t *self = (af_broker_t *) arg;
    for (upload_t *upload = (upload_t *) zhashx_first (self->uploads); upload;
         upload = (upload_t *) zhashx_next (self->uploads))
        if (memcmp (upload->id, id, AF_ID_SIZE) == 0 && streq (upload->account, account))
            return true;
    return false;
}

static bool
s_used (void *arg, const char *account, const char *hash)
{
    af_broker_t *self = (af_broker_t *) arg;
    uint32_t refs = 1;
    return broker_push_jobs_name (self, account, hash)
        || af_pushes_blob_refs (self->pushes, account, hash, &refs) != AF_OK || refs > 0;
}

void
broker_data_gc (af_broker_t *self)
{
    af_userdata_sweep_t ask = { s_ours, s_live, s_used, self };
    if (af_userdata_sweep (self->userdata, (uint64_t) zclock_time (), (uint64_t) self->config.data_grace_s * 1000,
                           &ask, AF_DATA_SWEEP, NULL) != AF_OK)
        zsys_warning ("broker: cannot sweep user data: the store failed; next time");
}

//  The transfer engine reads user data through these (af_transfers_reader_t)
static int
s_reader_size (void *arg, const char *account, const char *hash, uint64_t *size)
{
    return af_userdata_size (((af_broker_t *) arg)->userdata, account, hash, size);
}

static int
s_reader_read (void *arg, const char *account, const char *hash, uint64_t offset, uint8_t *buffer, size_t want)
{
    size_t got;
    uint64_t total;
    int code = af_userdata_read (((af_broker_t *) arg)->userdata, account, hash, offset, buffer, want,
                                 &got, &total);
    return code == AF_OK && got != want? AF_E_NO_BLOB: code;
}

af_transfers_reader_t
broker_data_reader (af_broker_t *self)
{
    af_transfers_reader_t reader = { s_reader_size, s_reader_read, self };
    return reader;
}

//  User data a broker from before the store kept it left in files
//  (DATA/data/blobs/ACCOUNT/ab/HASH): into the store, then the files go.
//  A cluster member owns no shard yet at start, so it cannot write them:
//  it says so, and they stay for a start without the cluster
//  Each file of DATA/data/blobs/ACCOUNT/ab/ named by a hash: into the store
static void
s_import_dir (af_broker_t *self, const char *account, const char *dir, size_t *kept, size_t *left)
{
    DIR *files = opendir (dir);
    struct dirent *file;
    while (files && (file = readdir (files))) {
        char path [1200];
        snprintf (path, sizeof path, "%s/%s", dir, file->d_name);
        struct stat st;
        if (!broker_hash_hex (file->d_name) || lstat (path, &st) || !S_ISREG (st.st_mode))
            continue;
        int code = *self->config.etcd? AF_E_UNAVAILABLE:
                   af_userdata_import (self->userdata, account, file->d_name, path, (uint64_t) zclock_time ());
        if (code == AF_OK && unlink (path) == 0)
            (*kept)++;
        else {
            (*left)++;
            if (code != AF_E_UNAVAILABLE)
                zsys_warning ("broker: cannot move user data %s into the store: %s", path,
                              code == AF_OK? strerror (errno): af_code_name (code));
        }
    }
    if (files)
        closedir (files);
}

int
broker_data_import (af_broker_t *self)
{
    char root [700];
    snprintf (root, sizeof root, "%s/data/blobs", self->config.data_dir);
    DIR *accounts = opendir (root);
    if (!accounts)
        return 0;
    size_t kept = 0, left = 0;
    struct dirent *account;
    while ((account = readdir (accounts))) {
        if (*account->d_name == '.' || strlen (account->d_name) > AF_MAX_ACCOUNT)
            continue;
        char dir [900];
        snprintf (dir, sizeof dir, "%s/%s", root, account->d_name);
        DIR *fans = opendir (dir);
        struct dirent *fan;
        while (fans && (fan = readdir (fans))) {
            if (strlen (fan->d_name) != 2 || *fan->d_name == '.')
                continue;
            char sub [1000];
            snprintf (sub, sizeof sub, "%s/%s", dir, fan->d_name);
            s_import_dir (self, account->d_name, sub, &kept, &left);
        }
        if (fans)
            closedir (fans);
    }
    closedir (accounts);
    if (kept)
        zsys_info ("broker: moved %zu blobs of user data from %s into the store", kept, root);
    if (left)
        zsys_warning ("broker: %zu blobs of user data are still in %s%s", left, root, *self->config.etcd?
                      ": a cluster member cannot move them into the store; start this broker once "
                      "without cluster/etcd to move them": "");
    return 0;
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
    s_upload_drop (self, session->hex);         //  one at a time: a new one replaces the old
    size_t count;
    uint64_t bytes;
    int code = af_userdata_usage (self->userdata, session->account, &count, &bytes);
    if (code != AF_OK) {
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot store the upload now; send it again later");
        return;
    }
    if (count >= (size_t) self->config.quota_data_blobs
    ||  bytes + msg->total > (uint64_t) self->config.quota_data_mib << 20) {
        zsys_warning ("broker: refused UPLOAD from %s of '%s': quota (%zu blobs, %llu bytes held)",
                      session->device_id, session->account, count, (unsigned long long) bytes);
        broker_error (self, session, msg, AF_E_QUOTA, "the account holds %zu blobs of user data (%llu MiB) "
                      "waiting for pushes; at most %d blobs and %d MiB: let pending pushes finish first",
                      count, (unsigned long long) (bytes >> 20), self->config.quota_data_blobs,
                      self->config.quota_data_mib);
        return;
    }
    upload_t *upload = (upload_t *) zmalloc (sizeof (upload_t));
    assert (upload);
    snprintf (upload->session, sizeof upload->session, "%s", session->hex);
    snprintf (upload->account, sizeof upload->account, "%s", session->account);
    snprintf (upload->hash, sizeof upload->hash, "%s", msg->hash);
    broker_caller (&upload->caller, session, msg);
    char err [AF_MAX_REASON + 1];
    upload->download = af_download_new (NULL, msg->hash, msg->total, err, sizeof err);
    code = upload->download? af_userdata_begin (self->userdata, session->account, msg->hash, msg->total,
                                                (uint64_t) zclock_time (), upload->id): AF_E_INTERNAL;
    if (code != AF_OK) {
        af_download_destroy (&upload->download);
        free (upload);
        zsys_error ("broker: cannot receive an upload from %s of '%s': %s", session->device_id,
                    session->account, af_code_name (code));
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot store the upload now; send it again later");
        return;
    }
    zhashx_update (self->uploads, upload->session, upload);
    s_send_credit (self, session, msg->hash, AF_MAX_CREDIT / 2, &upload->caller);
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
    if (code == AF_OK) {
        uint32_t size;
        const uint8_t *bytes = af_download_last (upload->download, &size);
        code = af_userdata_chunk (self->userdata, upload->account, upload->id,
                                  af_download_received (upload->download) - size, bytes, size);
        if (code == AF_OK && complete)
            code = af_userdata_finish (self->userdata, upload->account, upload->id, (uint64_t) zclock_time ());
        if (code == AF_OK && !complete) {
            s_send_credit (self, session, msg->hash, 1, NULL);
            return;
        }
        if (code == AF_OK) {
            //  Held with the batch: sent once the blob is on disk (and,
            //  in a cluster, on the shard's in-sync followers)
            zsys_info ("broker: stored %llu bytes of user data %.16s... from %s of '%s'",
                       (unsigned long long) msg->total, upload->hash, session->device_id, session->account);
            af_msg_t *ok = af_msg_new (AF_MSG_OK);
            broker_answer (self, &upload->caller, &ok);
            zhashx_delete (self->uploads, session->hex);
            return;
        }
        snprintf (err, sizeof err, "the store failed (%s)", af_code_name (code));
        code = AF_E_INTERNAL;
    }
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
    s_upload_drop (self, session->hex);
}
