/*  =========================================================================
    fleet_pushes - pushes between the fleet's devices, from offer to result

    The registry holds every push one of our devices made, by push ID, and
    what became of it: accepted (PUSH_ACCEPTED said offered or queued),
    the target's outcome confirmed (its DONE answered OK), the initiator's
    RESULT received.

    A target simulates what a node does with an OFFER (SPEC 5.18-5.25):
    its offers become jobs, run one at a time in the order they came. A
    package offer (fit 0) is fetched under credit, every CHUNK checked
    (hash, total, offset, size, the zstd frame) and hashed as it comes;
    when the last byte is in, its BLAKE2b-256 must be the offer's hash.
    Then DONE installed, and once that is confirmed a REPORT install. A
    store link (fit 1) is DONE store-link. An OFFER is never acknowledged;
    a RESULT is, once recorded.

    Items come at least once: an offer seen again while its job runs is
    a repeat; after a reconnect, jobs whose outcome is unknown are dropped
    (the offers come again after LOGIN_OK), those with an outcome send
    their DONE again. An offer that comes after its DONE was confirmed is
    counted duplicated: the broker removed it in the transaction it
    confirmed, so it should never come again.
    =========================================================================
*/
#include "fleet_int.h"

#include <zstd.h>

fleet_push_t *
fleet_push_find (fleet_t *self, const char *id, bool create)
{
    fleet_push_t *push = (fleet_push_t *) zhashx_lookup (self->pushes, id);
    if (push || !create)
        return push;
    push = (fleet_push_t *) zmalloc (sizeof (fleet_push_t));
    assert (push);
    snprintf (push->id, sizeof push->id, "%s", id);
    push->initiator = push->target = UINT32_MAX;
    zhashx_insert (self->pushes, push->id, push);
    return push;
}

static void
s_ack (fleet_t *self, fleet_device_t *device, const char *item)
{
    af_msg_t *ack = af_msg_new (AF_MSG_ACK);
    snprintf (ack->item, sizeof ack->item, "%s", item);
    fleet_net_send (self, device, ack);
    af_msg_destroy (&ack);
}

//  --------------------------------------------------------------------------
//  Jobs

static void s_jobs_next (fleet_t *self, fleet_device_t *device);

static void
s_job_remove (fleet_t *self, fleet_device_t *device, uint32_t at)
{
    memmove (&device->jobs [at], &device->jobs [at + 1], (device->job_count - at - 1) * sizeof (fleet_job_t));
    device->job_count--;
    self->open_jobs--;
}

static void
s_download_free (fleet_t *self, fleet_device_t *device)
{
    free (device->download);
    device->download = NULL;
    for (int i = 0; i < FLEET_REQ_SLOTS; i++)
        if (device->req [i].used && device->req [i].cmd == FC_FETCH) {
            device->req [i].used = false;
            (void) self;
        }
}

static void
s_send_done (fleet_t *self, fleet_device_t *device, fleet_job_t *job, const char *reason)
{
    af_msg_t *done = af_msg_new (AF_MSG_DONE);
    snprintf (done->push_id, sizeof done->push_id, "%s", job->push->id);
    snprintf (done->state, sizeof done->state, "%s", job->state);
    snprintf (done->version_name, sizeof done->version_name, "%s", job->version_name);
    if (reason)
        snprintf (done->reason, sizeof done->reason, "%s", reason);
    fleet_req_t *req = fleet_request (self, device, FC_DONE, done, 0);
    if (req) {
        req->ptr = job->push;
        job->stage = JOB_DONE_SENT;
        job->retry_at = 0;
    }
    else {
        job->stage = JOB_QUEUED;
        job->retry_at = fleet_now () + FLEET_RETRY_MIN_MS;
    }
    af_msg_destroy (&done);
}

//  The outcome is known: say it
static void
s_job_outcome (fleet_t *self, fleet_device_t *device, fleet_job_t *job, const char *state, const char *reason)
{
    snprintf (job->state, sizeof job->state, "%s", state);
    s_send_done (self, device, job, reason);
}

static void
s_fetch (fleet_t *self, fleet_device_t *device, bool again)
{
    fleet_download_t *download = device->download;
    for (int i = 0; i < FLEET_REQ_SLOTS; i++)
        if (device->req [i].used && device->req [i].cmd == FC_FETCH)
            device->req [i].used = false;       //  replaced by this FETCH
    af_msg_t *fetch = af_msg_new (AF_MSG_FETCH);
    snprintf (fetch->hash, sizeof fetch->hash, "%s", download->hash);
    fetch->offset = download->received;
    fetch->credit = FLEET_CREDIT;
    download->refetched = again;
    download->last_chunk = fleet_now ();
    if (!fleet_request (self, device, FC_FETCH, fetch, 0))
        download->last_chunk -= FLEET_STALL_MS - FLEET_RETRY_MIN_MS;       //  again in a second
    af_msg_destroy (&fetch);
}

static void
s_jobs_next (fleet_t *self, fleet_device_t *device)
{
    if (!device->job_count || device->state != DEV_ONLINE)
        return;
    fleet_job_t *job = &device->jobs [0];
    if (job->stage != JOB_QUEUED || (job->retry_at && job->retry_at > fleet_now ()))
        return;
    if (*job->state)                            //  known already: say it (again)
        s_send_done (self, device, job, NULL);
    else
    if (job->fit == AF_FIT_STORE_LINK)
        s_job_outcome (self, device, job, "store-link", NULL);
    else
    if (job->fit != AF_FIT_PACKAGE) {
        fleet_unexpected (self, device, "an OFFER with fit %u", job->fit);
        s_job_outcome (self, device, job, "failed", "the offer's fit is neither a package nor a store link");
    }
    else {
        unsigned char hash [AF_HASH_SIZE];
        if (strlen (job->hash) != AF_HASH_HEX || sodium_hex2bin (hash, sizeof hash, job->hash, AF_HASH_HEX,
                                                                NULL, NULL, NULL) || job->size == 0) {
            fleet_unexpected (self, device, "an OFFER of a package without a hash or a size");
            s_job_outcome (self, device, job, "failed", "the offer names no package file");
            return;
        }
        fleet_download_t *download = (fleet_download_t *) zmalloc (sizeof (fleet_download_t));
        assert (download);
        crypto_generichash_init (&download->hash_state, NULL, 0, AF_HASH_SIZE);
        snprintf (download->hash, sizeof download->hash, "%s", job->hash);
        download->total = job->size;
        download->started_us = fleet_usecs ();
        device->download = download;
        job->stage = JOB_FETCHING;
        s_fetch (self, device, false);
    }
}

static void
s_download_failed (fleet_t *self, fleet_device_t *device, const char *reason)
{
    fleet_unexpected (self, device, "download failed: %s", reason);
    s_download_free (self, device);
    if (device->job_count && device->jobs [0].stage == JOB_FETCHING)
        s_job_outcome (self, device, &device->jobs [0], "failed", reason);
}

void
fleet_on_chunk (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    fleet_download_t *download = device->download;
    if (!download || !streq (msg->hash, download->hash)) {
        //  A FETCH replaced at a stall may still have chunks on the way
        if (!download || !download->refetched)
            fleet_unexpected (self, device, "a CHUNK of %.12s... for no download", msg->hash);
        return;
    }
    if (download->refetched && msg->offset < download->received)
        return;                                 //  SPEC 5.23: dropped, no credit back
    self->stats.chunks++;
    char reason [200] = "";
    if (msg->total != download->total)
        snprintf (reason, sizeof reason, "chunk total %llu, the offer says %llu", (unsigned long long) msg->total,
                  (unsigned long long) download->total);
    else
    if (msg->offset != download->received)
        snprintf (reason, sizeof reason, "chunk at %llu, %llu received", (unsigned long long) msg->offset,
                  (unsigned long long) download->received);
    else
    if (msg->size == 0 || msg->size > AF_MAX_CHUNK || msg->offset + msg->size > msg->total)
        snprintf (reason, sizeof reason, "chunk of %u bytes at %llu of %llu", msg->size,
                  (unsigned long long) msg->offset, (unsigned long long) msg->total);
    const uint8_t *bytes = msg->data;
    if (!*reason && msg->zstd) {
        unsigned long long declared = ZSTD_getFrameContentSize (msg->data, msg->data_size);
        size_t got = declared == msg->size?
            ZSTD_decompress (self->chunk_buffer, AF_MAX_CHUNK, msg->data, msg->data_size): 0;
        if (declared != msg->size || ZSTD_isError (got) || got != msg->size)
            snprintf (reason, sizeof reason, "a compressed chunk that does not yield its %u bytes", msg->size);
        bytes = self->chunk_buffer;
    }
    else
    if (!*reason && msg->data_size != msg->size)
        snprintf (reason, sizeof reason, "a chunk of %u bytes that says %u", msg->data_size, msg->size);
    if (*reason) {
        s_download_failed (self, device, reason);
        return;
    }
    crypto_generichash_update (&download->hash_state, bytes, msg->size);
    download->received += msg->size;
    download->last_chunk = fleet_now ();
    self->stats.chunk_bytes += msg->size;
    if (download->received < download->total) {
        af_msg_t *credit = af_msg_new (AF_MSG_CREDIT);
        snprintf (credit->hash, sizeof credit->hash, "%s", download->hash);
        credit->credit = 1;
        fleet_net_send (self, device, credit);
        af_msg_destroy (&credit);
        return;
    }
    unsigned char hash [AF_HASH_SIZE];
    char hex [AF_HASH_HEX + 1];
    crypto_generichash_final (&download->hash_state, hash, sizeof hash);
    sodium_bin2hex (hex, sizeof hex, hash, sizeof hash);
    if (!streq (hex, download->hash)) {
        self->stats.hash_mismatches++;
        s_download_failed (self, device, "the package's hash does not match the offer's");
        return;
    }
    fleet_hist_add (&self->stats.latency [FC_FETCH], (uint64_t) (fleet_usecs () - download->started_us));
    self->stats.answered [FC_FETCH]++;
    s_download_free (self, device);
    //  "Installed": the target has the package it was offered
    s_job_outcome (self, device, &device->jobs [0], "installed", NULL);
}

void
fleet_fetch_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    (void) req;
    if (!device->download)
        return;
    char reason [AF_MAX_REASON + 64];
    snprintf (reason, sizeof reason, "FETCH refused: %s", msg->reason);
    fleet_error (self, device, FC_FETCH, msg, false);
    s_download_failed (self, device, reason);
}

void
fleet_done_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    fleet_push_t *push = (fleet_push_t *) req->ptr;
    if (!device->job_count || device->jobs [0].push != push || device->jobs [0].stage != JOB_DONE_SENT) {
        fleet_unexpected (self, device, "an answer to DONE for a job not running");
        return;
    }
    fleet_job_t *job = &device->jobs [0];
    if (msg->id == AF_MSG_ERROR && msg->code >= 500) {
        fleet_error (self, device, FC_DONE, msg, true);
        job->stage = JOB_QUEUED;
        job->retry_at = fleet_now () + fleet_jittered (self, FLEET_RETRY_MIN_MS);
        return;
    }
    if (msg->id == AF_MSG_ERROR)
        fleet_error (self, device, FC_DONE, msg, false);
    else
    if (!push->done_ok) {
        push->done_ok = true;
        snprintf (push->done_state, sizeof push->done_state, "%s", job->state);
        if (streq (job->state, "installed")) {
            self->stats.installs++;
            fleet_report_install (self, device, push->program, job->version_name, job->hash);
        }
        else
        if (streq (job->state, "store-link"))
            self->stats.store_links++;
    }
    s_job_remove (self, device, 0);
    s_jobs_next (self, device);
}

//  --------------------------------------------------------------------------
//  Items

static void
s_offer (fleet_t *self, fleet_device_t *device, af_msg_t *offer)
{
    fleet_device_t *from = fleet_device_by_id (self, offer->from);
    if (!from || from->account != device->account) {
        fleet_unexpected (self, device, "an OFFER from %s, not a device of this account", offer->from);
        return;
    }
    fleet_push_t *push = fleet_push_find (self, offer->push_id, false);
    if (!push) {
        //  Its PUSH_ACCEPTED is still on the way to the initiator, or was
        //  lost with the initiator's connection
        push = fleet_push_find (self, offer->push_id, true);
        push->initiator = from->index;
        push->target = device->index;
        size_t program = (size_t) zhashx_lookup (self->program_index, offer->program);
        push->program = program? (uint32_t) program - 1: 0;
        if (!program)
            fleet_unexpected (self, device, "an OFFER of '%s', which the fleet never pushed", offer->program);
    }
    if (push->target != device->index || push->initiator != from->index) {
        fleet_unexpected (self, device, "an OFFER of push %s, made to another device", offer->push_id);
        return;
    }
    for (uint32_t i = 0; i < device->job_count; i++)
        if (device->jobs [i].push == push) {
            self->stats.offer_repeats++;        //  at least once (SPEC 5.18)
            return;
        }
    if (push->done_ok) {
        self->stats.offers_after_done++;
        fleet_unexpected (self, device, "the OFFER of push %s came again after its DONE was confirmed",
                          push->id);
    }
    if (device->job_count == FLEET_MAX_JOBS)
        return;                                 //  it comes again after the next login
    if (!device->jobs) {
        device->jobs = (fleet_job_t *) calloc (FLEET_MAX_JOBS, sizeof (fleet_job_t));
        assert (device->jobs);
    }
    fleet_job_t *job = &device->jobs [device->job_count++];
    memset (job, 0, sizeof *job);
    self->open_jobs++;
    job->push = push;
    job->fit = (uint8_t) offer->fit;
    job->size = offer->package.size;
    snprintf (job->hash, sizeof job->hash, "%s", offer->package.hash);
    snprintf (job->version_name, sizeof job->version_name, "%s", offer->package.version_name);
    if (push->done_ok)
        snprintf (job->state, sizeof job->state, "%s", push->done_state);    //  say it again, do nothing
    s_jobs_next (self, device);
}

static void
s_result (fleet_t *self, fleet_device_t *device, af_msg_t *result)
{
    fleet_push_t *push = fleet_push_find (self, result->push_id, false);
    if (!push) {
        self->stats.results_unknown++;          //  its PUSH's answer was lost with a connection
        return;
    }
    if (push->initiator != device->index) {
        fleet_unexpected (self, device, "the RESULT of push %s, made by another device", push->id);
        return;
    }
    if (push->target < self->device_count && !streq (result->device_id, self->devices [push->target].id))
        fleet_unexpected (self, device, "the RESULT of push %s names target %s", push->id, result->device_id);
    if (push->result) {
        self->stats.results_repeated++;         //  its ACK was lost with a connection
        return;
    }
    push->result = true;
    snprintf (push->result_state, sizeof push->result_state, "%s", result->state);
    self->stats.results++;
    if (push->accepted)
        self->open_offers--;
    if (push->done_ok && !streq (push->done_state, result->state))
        fleet_unexpected (self, device, "push %s: the target said %s, the RESULT says %s", push->id,
                          push->done_state, result->state);
}

void
fleet_on_item (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    af_msg_t *inner = NULL;
    char err [256];
    int code = af_msg_decode (msg->body, msg->body_size, &inner, err, sizeof err, NULL, NULL);
    if (code != AF_OK) {
        fleet_unexpected (self, device, "an ITEM that does not decode: %s", err);
        s_ack (self, device, msg->item);        //  so it does not block the queue
        return;
    }
    if (inner->id == AF_MSG_OFFER)
        s_offer (self, device, inner);          //  never acknowledged: DONE ends it
    else
    if (inner->id == AF_MSG_RESULT) {
        s_result (self, device, inner);
        s_ack (self, device, msg->item);
    }
    else {
        fleet_unexpected (self, device, "an ITEM holding %s", af_msg_command_name (inner->id));
        s_ack (self, device, msg->item);
    }
    af_msg_destroy (&inner);
}

//  --------------------------------------------------------------------------
//  Sessions

void
fleet_jobs_lost (fleet_t *self, fleet_device_t *device)
{
    if (device->download)
        s_download_free (self, device);
    //  Outcomes not known yet: the offers come again. Known ones: said again.
    uint32_t kept = 0;
    for (uint32_t i = 0; i < device->job_count; i++) {
        fleet_job_t *job = &device->jobs [i];
        if (*job->state) {
            job->stage = JOB_QUEUED;
            job->retry_at = 0;
            device->jobs [kept++] = *job;
        }
        else
            self->open_jobs--;
    }
    device->job_count = kept;
}

void
fleet_jobs_login (fleet_t *self, fleet_device_t *device)
{
    s_jobs_next (self, device);
}

void
fleet_jobs_tick (fleet_t *self, fleet_device_t *device, int64_t now)
{
    if (device->download && now - device->download->last_chunk >= FLEET_STALL_MS) {
        self->stats.refetches++;
        s_fetch (self, device, true);
    }
    if (device->job_count && device->jobs [0].stage == JOB_QUEUED && device->jobs [0].retry_at
    &&  now >= device->jobs [0].retry_at)
        s_jobs_next (self, device);
}

int64_t
fleet_jobs_deadline (fleet_device_t *device)
{
    int64_t when = INT64_MAX;
    if (device->download)
        when = device->download->last_chunk + FLEET_STALL_MS;
    if (device->job_count && device->jobs [0].stage == JOB_QUEUED && device->jobs [0].retry_at
    &&  device->jobs [0].retry_at < when)
        when = device->jobs [0].retry_at;
    return when;
}
