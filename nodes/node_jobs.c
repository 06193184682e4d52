/*  =========================================================================
    node_jobs - offers this device received, received and installed

    Every OFFER (in an outbox ITEM) becomes a job; jobs run one at a time
    in the order they arrived: fetch the package in CHUNKs under our
    credit (and the rate limit), check its hash, install it (built-in or
    the operator's command), fetch and import the user data if the push
    has some, then report DONE and keep the job until the broker's OK.
    Installs and imports run off the reactor (the built-in installer on a
    thread of its own, af_install_task_t; the command in its own process),
    polled by the tick, so the node goes on serving meanwhile; from the
    install's start to the job's outcome nothing else writes the program's
    files: an UNINSTALL of it that comes meanwhile waits in the job (and
    runs when its outcome is known), an uninstall here is refused. The
    offer is not acknowledged by the node: the broker's DONE handling ends
    it, so a node killed half-way gets the offer again after its next
    login and starts over (an install already recorded is a no-op). The
    user data of a GET's ask is imported from one push only (node_getdata.c
    records which before the import; another push of the ask imports
    nothing).
    =========================================================================
*/
#include "node_int.h"
#include "af_config.h"

#include <sodium.h>

void
node_job_free (void **item)
{
    job_t *job = (job_t *) *item;
    if (job) {
        af_download_destroy (&job->download);
        af_install_cmd_destroy (&job->cmd);
        if (job->task)
            zsys_info ("node: stopping the install of %s (push %s); it starts again after the next login",
                       job->program, job->push);
        af_install_task_destroy (&job->task);   //  stopped, or waited for
        zlistx_destroy (&job->after);           //  they come again after the next login
        if (*job->part)
            unlink (job->part);
        free (job->meta);
        free (job);
        *item = NULL;
    }
}

static job_t *
s_job_find (af_node_t *self, const char *push_id)
{
    for (job_t *job = (job_t *) zlistx_first (self->jobs); job; job = (job_t *) zlistx_next (self->jobs))
        if (streq (job->push, push_id))
            return job;
    return NULL;
}

//  The job that runs: the first, if it is the one named
static job_t *
s_job_running (af_node_t *self, const char *push_id)
{
    job_t *job = (job_t *) zlistx_first (self->jobs);
    return job && streq (job->push, push_id)? job: NULL;
}

//  --------------------------------------------------------------------------
//  The transitions. Each state is entered in one function: s_job_finish
//  (REPORTING), s_job_fetch (FETCHING), s_job_command (INSTALLING); a job
//  leaves the list when the broker confirms its DONE.

//  The UNINSTALLs that waited for the job's install, in the order they came
static void
s_job_after (af_node_t *self, job_t *job)
{
    zlistx_t *after = job->after;
    if (!after)
        return;
    job->after = NULL;
    for (af_msg_t *msg = (af_msg_t *) zlistx_first (after); msg; msg = (af_msg_t *) zlistx_next (after))
        node_uninstall_asked (self, msg);
    zlistx_destroy (&after);
}

//  The outcome is known: report it; the job stays until the broker's OK
static void
s_job_finish (af_node_t *self, job_t *job, const char *state, uint32_t files, const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

static void
s_job_finish (af_node_t *self, job_t *job, const char *state, uint32_t files, const char *format, ...)
{
    (void) self;
    char reason [AF_MAX_REASON + 1] = "";
    if (format) {
        va_list args;
        va_start (args, format);
        vsnprintf (reason, sizeof reason, format, args);
        va_end (args);
    }
    af_download_destroy (&job->download);
    af_install_cmd_destroy (&job->cmd);
    af_install_task_destroy (&job->task);
    if (*job->part) {
        unlink (job->part);
        job->part [0] = 0;
    }
    job->state = JOB_REPORTING;
    snprintf (job->outcome, sizeof job->outcome, "%s", state);
    snprintf (job->reason, sizeof job->reason, "%s", reason);
    job->files = files;
    if (streq (state, "failed"))
        zsys_warning ("node: push %s of %s failed: %s", job->push, job->program, reason);
    else
        zsys_info ("node: push %s: %s %s %s", job->push, job->program, job->package.version_name, state);
    job->reported_at = 0;               //  send now
    if (streq (state, "installed"))
        node_record_installed (self, job->program);     //  a GET's record waiting for it
    s_job_after (self, job);
}

static bool
s_fetch_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    //  Chunks are the answer; an ERROR says the broker cannot send them:
    //  for good (4xx), or not now (5xx: the stall timer asks again, from
    //  the byte we have, in NODE_STALL_MS; a node never gives up on a 5xx)
    job_t *job = s_job_running (self, pending->push);
    if (answer && answer->id == AF_MSG_ERROR && job && job->state == JOB_FETCHING
    &&  streq (job->fetch_rid, pending->hex)) {
        if (answer->code >= 500) {
            zsys_warning ("node: the broker cannot send %s now: %s (%s); asking again in %d s", job->program,
                          answer->reason, af_code_name ((int) answer->code), NODE_STALL_MS / 1000);
            job->owed = 0;
            job->last_chunk = zclock_mono ();
        }
        else
        if (job->data_phase)
            //  The package is in: what failed is the user data (as when
            //  it cannot be received, s_job_fetch)
            s_job_finish (self, job, "failed", job->files, "installed, but the broker cannot send the user "
                          "data: %s (%s)", answer->reason, af_code_name ((int) answer->code));
        else
            s_job_finish (self, job, "failed", 0, "the broker cannot send the package: %s (%s)",
                          answer->reason, af_code_name ((int) answer->code));
    }
    return true;
}

//  Ask for the blob being fetched, from the byte we have
static void
s_job_ask (af_node_t *self, job_t *job)
{
    af_msg_t *fetch = af_msg_new (AF_MSG_FETCH);
    snprintf (fetch->hash, sizeof fetch->hash, "%s", job->fetch_hash);
    fetch->offset = af_download_received (job->download);
    fetch->credit = NODE_CREDIT;
    job->refetched = fetch->offset > 0 || job->fetch_login != 0;
    job->fetch_login = self->logins;
    job->owed = 0;
    job->last_chunk = zclock_mono ();
    pending_t *pending = node_request (self, s_fetch_answer, REQ_SESSION | REQ_PER_SESSION, NULL, fetch);
    snprintf (pending->push, sizeof pending->push, "%s", job->push);
    memcpy (job->fetch_rid, pending->hex, sizeof job->fetch_rid);
}

static void s_on_package (af_node_t *self, job_t *job);
static void s_on_builtin_exit (af_node_t *self, job_t *job, int code, const char *why);
static void s_on_data_exit (af_node_t *self, job_t *job, int code, const char *why);

//  Receive a blob into incoming/: the package, or then the user data
static void
s_job_fetch (af_node_t *self, job_t *job, bool data)
{
    char err [AF_MAX_REASON + 1];
    af_download_destroy (&job->download);
    if (*job->part)
        unlink (job->part);
    job->data_phase = data;
    snprintf (job->part, sizeof job->part, "%s/incoming/%s.%s", self->config.home, job->push, data? "data": "part");
    snprintf (job->fetch_hash, sizeof job->fetch_hash, "%s", data? job->data_hash: job->package.hash);
    job->fetch_total = data? job->data_total: job->package.size;
    job->download = af_download_new (job->part, job->fetch_hash, job->fetch_total, err, sizeof err);
    if (!job->download) {
        if (data)
            s_job_finish (self, job, "failed", job->files, "installed, but the user data cannot be received: %s", err);
        else
            s_job_finish (self, job, "failed", 0, "%s", err);
        return;
    }
    job->state = JOB_FETCHING;
    if (!data && job->package.size == 0) {
        s_on_package (self, job);       //  nothing to receive
        return;
    }
    if (data)
        zsys_info ("node: receiving the user data of %s (%llu bytes)", job->program,
                   (unsigned long long) job->data_total);
    else
        zsys_info ("node: receiving %s %s (%llu bytes) for push %s", job->program, job->package.version_name,
                   (unsigned long long) job->package.size, job->push);
    s_job_ask (self, job);
}

//  Hand the package to the operator's command: the attempt recorded
//  first, the command under the guard (node_intent.c)
static void
s_job_command (af_node_t *self, job_t *job)
{
    char err [AF_MAX_REASON + 1], log [600];
    snprintf (job->info.method, sizeof job->info.method, "command");
    snprintf (log, sizeof log, "%s/install.log", self->config.home);
    if (node_intent_begin (self, job, err, sizeof err)) {
        s_job_finish (self, job, "failed", 0, "%s", err);
        return;
    }
    job->cmd = af_install_cmd_start (self->guarded_cmd, job->part, &job->info,
                                     self->config.install_timeout_s * 1000, log, err, sizeof err);
    if (!job->cmd) {
        node_intent_end (self);
        s_job_finish (self, job, "failed", 0, "%s", err);
    }
    else
        job->state = JOB_INSTALLING;
}

//  --------------------------------------------------------------------------
//  The steps: one function per event in a job's life

//  How many files the install record of a program lists
static uint32_t
s_record_files (af_node_t *self, const char *program)
{
    char path [700];
    snprintf (path, sizeof path, "%s/installed/%s.json", self->config.home, program);
    json_error_t jerr;
    json_t *record = json_load_file (path, 0, &jerr);
    uint32_t files = (uint32_t) json_array_size (json_object_get (record, "files"));
    json_decref (record);
    return files;
}

//  The package is installed: done, unless user data comes with it
static void
s_on_installed (af_node_t *self, job_t *job, uint32_t files)
{
    //  The account's configuration of the app, if any, follows it (S1.9)
    //  unless a restore brings its own (S4.6)
    uint8_t key [AF_CONFIG_KEY_SIZE];
    if (!node_backup_installed (self, job, "installed") && node_config_key (self, key))
        node_config_get (self, NULL, NODE_CONFIG_INSTALL, job->program, false);
    sodium_memzero (key, sizeof key);
    job->files = files;
    //  A GET's user data is imported by one push of its ask (node_getdata.c)
    char why [AF_MAX_REASON + 1];
    if (*job->data_hash && node_getdata_seen (self, job, why, sizeof why))
        s_job_finish (self, job, "installed", files, "%s", why);
    else
    if (*job->data_hash)
        s_job_fetch (self, job, true);
    else
        s_job_finish (self, job, "installed", files, NULL);
}

//  The package is in and verified: install it
static void
s_on_package (af_node_t *self, job_t *job)
{
    af_install_info_t *info = &job->info;
    memset (info, 0, sizeof *info);
    snprintf (info->program, sizeof info->program, "%s", job->program);
    snprintf (info->version_name, sizeof info->version_name, "%s", job->package.version_name);
    info->version_code = job->package.version_code;
    snprintf (info->hash, sizeof info->hash, "%s", job->package.hash);
    snprintf (info->push_id, sizeof info->push_id, "%s", job->push);
    info->installed_at = (uint64_t) zclock_time ();
    af_download_keep (job->download);
    af_download_destroy (&job->download);
    if (*self->config.install_cmd) {
        s_job_command (self, job);
        return;
    }
    char err [AF_MAX_REASON + 1];
    snprintf (info->method, sizeof info->method, "builtin");
    job->task = af_install_builtin_start (self->config.home, job->part, info, err, sizeof err);
    if (job->task) {
        job->state = JOB_INSTALLING;
        zsys_info ("node: installing %s %s", job->program, job->package.version_name);
        return;
    }
    zsys_warning ("node: %s; installing %s on the node's own thread", err, job->program);
    int code = af_install_builtin (self->config.home, job->part, info, err, sizeof err);
    s_on_builtin_exit (self, job, code, err);
}

//  The built-in install ended (code AF_OK: installed)
static void
s_on_builtin_exit (af_node_t *self, job_t *job, int code, const char *why)
{
    if (code != AF_OK)
        s_job_finish (self, job, "failed", 0, "%s", why);
    else {
        node_report (self, "install", &job->info);
        s_on_installed (self, job, s_record_files (self, job->program));
    }
}

//  The operator's command ended (code AF_OK: it installed): once the
//  outcome is recorded, the attempt is over
static void
s_on_command_exit (af_node_t *self, job_t *job, int code, const char *why)
{
    char err [AF_MAX_REASON + 1];
    if (code != AF_OK)
        s_job_finish (self, job, "failed", 0, "%s", why);
    else
    if (af_install_record_write (self->config.home, &job->info, NULL, err, sizeof err) != AF_OK)
        s_job_finish (self, job, "failed", 0, "installed, but %s", err);
    else {
        node_report (self, "install", &job->info);
        s_on_installed (self, job, 0);
    }
    node_intent_end (self);
}

//  The user data is in and verified: it replaces the app's data directory
static void
s_on_data (af_node_t *self, job_t *job)
{
    char err [AF_MAX_REASON + 1];
    af_download_keep (job->download);
    af_download_destroy (&job->download);
    //  A GET's: which push brings its ask's data is on disk before the data
    if (*job->ask && node_getdata_begin (self, job, err, sizeof err) != AF_OK) {
        node_getdata_end (self, job, AF_E_INTERNAL, err);
        s_job_finish (self, job, "failed", job->files, "installed, but the user data was not imported: %s", err);
        return;
    }
    job->task = af_install_data_start (self->config.home, "data", job->program, job->part, err, sizeof err);
    if (job->task) {
        job->state = JOB_INSTALLING;
        zsys_info ("node: importing the user data of %s", job->program);
        return;
    }
    zsys_warning ("node: %s; importing the user data of %s on the node's own thread", err, job->program);
    int code = af_install_data (self->config.home, "data", job->program, job->part, err, sizeof err);
    s_on_data_exit (self, job, code, err);
}

//  The user data's import ended (code AF_OK: imported)
static void
s_on_data_exit (af_node_t *self, job_t *job, int code, const char *why)
{
    if (*job->ask)
        node_getdata_end (self, job, code, why);
    if (code != AF_OK)
        s_job_finish (self, job, "failed", job->files, "installed, but the user data was not imported: %s", why);
    else
        s_job_finish (self, job, "installed", job->files, "with the user data of device %.8s", job->from);
}

//  The job's turn came: a store link is recorded, a package fetched
static void
s_on_start (af_node_t *self, job_t *job)
{
    if (job->fit == AF_FIT_STORE_LINK || !*job->package.hash) {
        //  Nothing to download: record the link for the user, report it
        char path [700];
        snprintf (path, sizeof path, "%s/links/%s.json", self->config.home, job->program);
        json_t *link = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "program", job->program,
                                  "storeLink", job->package.store_link, "versionName",
                                  job->package.version_name, "pushId", job->push, "from", job->from,
                                  "at", (json_int_t) zclock_time ());
        if (zsys_dir_create ("%s/links", self->config.home) || json_dump_file (link, path, JSON_COMPACT))
            s_job_finish (self, job, "failed", 0, "cannot record the store link in %s", path);
        else {
            node_backup_installed (self, job, "store-link");
            s_job_finish (self, job, "store-link", 0, "%s", job->package.store_link);
        }
        json_decref (link);
        return;
    }
    //  The same package installed already (a repeated offer, or the node
    //  stopped after installing and before the broker heard): nothing to
    //  install, but the record is reported again, as the node may have
    //  stopped between writing it and queueing its report (the broker
    //  applies a seq once, and a repeat changes nothing)
    af_install_info_t info;
    bool found;
    if (af_install_record_read (self->config.home, job->program, &info, &found) == AF_OK && found
    &&  streq (info.hash, job->package.hash)) {
        node_report (self, "install", &info);
        s_on_installed (self, job, 0);
        return;
    }
    //  Nothing is fetched before the store's signatures say it may be
    //  installed (node_trust.c)
    char why [AF_MAX_REASON + 1];
    if (node_trust_check (self, job, why, sizeof why))
        s_job_finish (self, job, "failed", 0, "%s", why);
    else
        s_job_fetch (self, job, false);
}

static bool
s_done_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    job_t *job = s_job_running (self, pending->push);
    if (!job || job->state != JOB_REPORTING || !streq (job->done_rid, pending->hex))
        return true;
    if (answer && answer->id == AF_MSG_OK)
        zlistx_delete (self->jobs, zlistx_cursor (self->jobs));
    else
    if (!answer)
        job->reported_at = 0;           //  lost with the session: again at the next
    //  An error: the broker could not store it; the tick reports again
    return true;
}

static void
s_job_send_done (af_node_t *self, job_t *job)
{
    af_msg_t *done = af_msg_new (AF_MSG_DONE);
    snprintf (done->push_id, sizeof done->push_id, "%s", job->push);
    snprintf (done->state, sizeof done->state, "%s", job->outcome);
    snprintf (done->version_name, sizeof done->version_name, "%s", job->package.version_name);
    snprintf (done->reason, sizeof done->reason, "%s", job->reason);
    done->files = job->files;
    pending_t *pending = node_request (self, s_done_answer, REQ_SESSION | REQ_PER_SESSION, NULL, done);
    snprintf (pending->push, sizeof pending->push, "%s", job->push);
    memcpy (job->done_rid, pending->hex, sizeof job->done_rid);
    job->reported_at = zclock_mono ();
}

//  Move the first job on, if it can move without an event
void
node_jobs_run (af_node_t *self)
{
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (!job || !self->logged_in)
        return;
    if (job->state == JOB_WAITING)
        s_on_start (self, job);
    if (job->state == JOB_REPORTING && job->reported_at == 0)
        s_job_send_done (self, job);
}

//  Return owed credit, as the rate limit allows
static void
s_job_credit (af_node_t *self, job_t *job)
{
    if (job->state != JOB_FETCHING || job->owed == 0)
        return;
    uint32_t give = job->owed;
    if (self->config.rate_kib) {
        int64_t now = zclock_mono ();
        double rate = (double) self->config.rate_kib * 1024;
        job->tokens += rate * (double) (now - job->tokens_at) / 1000;
        job->tokens_at = now;
        if (job->tokens > rate)
            job->tokens = rate;     //  no bursts beyond one second's worth
        give = 0;
        while (give < job->owed && job->tokens >= AF_MAX_CHUNK) {
            job->tokens -= AF_MAX_CHUNK;
            give++;
        }
    }
    if (give == 0)
        return;
    af_msg_t *credit = af_msg_new (AF_MSG_CREDIT);
    snprintf (credit->hash, sizeof credit->hash, "%s", job->fetch_hash);
    credit->credit = give;
    if (node_send (self, credit) == 0)
        job->owed -= give;
    af_msg_destroy (&credit);
}

void
node_jobs_chunk (af_node_t *self, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (!job || job->state != JOB_FETCHING || !streq (job->fetch_hash, msg->hash)) {
        zsys_warning ("node: dropped a chunk of %.16s...: no transfer of it is running", msg->hash);
        return;
    }
    char err [AF_MAX_REASON + 1];
    if (job->refetched && msg->offset < af_download_received (job->download)) {
        //  Sent for the FETCH before the last one, still in flight: we have
        //  these bytes, and the broker's new transfer does not count it
        return;
    }
    bool complete;
    int code = af_download_chunk (job->download, msg, &complete, err, sizeof err);
    job->last_chunk = zclock_mono ();
    if (code != AF_OK && job->data_phase)
        s_job_finish (self, job, "failed", job->files, "installed, but the user data failed: %s", err);
    else
    if (code != AF_OK)
        s_job_finish (self, job, "failed", 0, "%s", err);
    else
    if (complete && job->data_phase)
        s_on_data (self, job);
    else
    if (complete)
        s_on_package (self, job);
    else {
        job->owed++;
        s_job_credit (self, job);
    }
    node_jobs_run (self);
}

//  An OFFER: a new job, or one we are on already
static void
s_on_offer (af_node_t *self, af_msg_t *msg, const char *item)
{
    job_t *job = s_job_find (self, msg->push_id);
    if (job) {
        //  Delivered again after a reconnect: we are on it already (and
        //  asked again at the login, unless that FETCH is still to go)
        if (job->state == JOB_FETCHING && job == zlistx_first (self->jobs)
        &&  job->fetch_login != self->logins)
            s_job_ask (self, job);
        else
        if (job->state == JOB_REPORTING)
            job->reported_at = 0;
    }
    else
    if (zlistx_size (self->jobs) >= NODE_MAX_JOBS)
        zsys_warning ("node: %d offers queued; offer %s waits for redelivery", NODE_MAX_JOBS, msg->push_id);
    else {
        job = (job_t *) zmalloc (sizeof (job_t));
        assert (job);
        snprintf (job->push, sizeof job->push, "%s", msg->push_id);
        snprintf (job->program, sizeof job->program, "%s", msg->program);
        snprintf (job->from, sizeof job->from, "%s", msg->from);
        snprintf (job->item, sizeof job->item, "%s", item);
        job->package = msg->package;
        job->fit = msg->fit;
        snprintf (job->data_hash, sizeof job->data_hash, "%s", msg->data_hash);
        job->data_total = msg->data_total;
        snprintf (job->ask, sizeof job->ask, "%s", msg->ask);
        if (msg->body_size) {
            job->meta = (uint8_t *) malloc (msg->body_size);
            assert (job->meta);
            memcpy (job->meta, msg->body, msg->body_size);
            job->meta_size = msg->body_size;
        }
        job->state = JOB_WAITING;
        job->tokens_at = zclock_mono ();
        zlistx_add_end (self->jobs, job);
        zsys_info ("node: offered %s %s by device %s (push %s)", msg->program,
                   msg->package.version_name, msg->from, msg->push_id);
    }
    node_jobs_run (self);
}

//  A new session: a transfer under way lost its broker side with the old
//  one, and a DONE may not have arrived
void
node_jobs_login (af_node_t *self)
{
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (job && job->state == JOB_FETCHING)
        s_job_ask (self, job);
    else
    if (job && job->state == JOB_REPORTING)
        job->reported_at = 0;
}

//  Timer work for jobs: install commands, stalls, unanswered reports;
//  and the uninstalled apps' trees being removed
void
node_jobs_tick (af_node_t *self)
{
    af_install_task_t *reaper = (af_install_task_t *) zlistx_first (self->reapers);
    while (reaper) {
        char err [AF_MAX_REASON + 1] = "";
        bool running;
        if (af_install_task_poll (reaper, &running, NULL, err, sizeof err) != AF_OK)
            zsys_warning ("node: %s (it goes at the next start)", err);
        if (!running)
            zlistx_delete (self->reapers, zlistx_cursor (self->reapers));
        reaper = (af_install_task_t *) zlistx_next (self->reapers);
    }
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (!job)
        return;
    int64_t now = zclock_mono ();
    if (job->state == JOB_INSTALLING && job->task) {
        char err [AF_MAX_REASON + 1] = "";
        bool running;
        int code = af_install_task_poll (job->task, &running, NULL, err, sizeof err);
        if (!running) {
            af_install_task_destroy (&job->task);
            if (job->data_phase)
                s_on_data_exit (self, job, code, err);
            else
                s_on_builtin_exit (self, job, code, err);
        }
    }
    else
    if (job->state == JOB_INSTALLING) {
        char err [AF_MAX_REASON + 1];
        bool running;
        int code = af_install_cmd_poll (job->cmd, &running, err, sizeof err);
        if (!running)
            s_on_command_exit (self, job, code, err);
    }
    else
    if (job->state == JOB_FETCHING) {
        s_job_credit (self, job);
        //  Chunks in flight but none for a while: the broker lost the
        //  transfer (it restarted, or our connection changed); resume
        if (job->owed < NODE_CREDIT && self->logged_in && now - job->last_chunk > NODE_STALL_MS) {
            zsys_warning ("node: no chunk of %s for %d s; asking again from byte %llu", job->program,
                          NODE_STALL_MS / 1000, (unsigned long long) af_download_received (job->download));
            s_job_ask (self, job);
        }
    }
    else
    if (job->state == JOB_REPORTING && job->reported_at
    &&  now - job->reported_at > self->config.request_timeout_ms)
        job->reported_at = 0;           //  no OK came: report again
    node_jobs_run (self);
}

job_t *
node_jobs_installing (af_node_t *self, const char *program)
{
    //  From the install's start (its task or command) to the outcome,
    //  the user data's fetch and import included
    job_t *job = (job_t *) zlistx_first (self->jobs);
    if (job && streq (job->program, program)
    &&  (job->state == JOB_INSTALLING || (job->data_phase && job->state == JOB_FETCHING)))
        return job;
    return NULL;
}

//  An UNINSTALL of a program being installed: it runs once the install's
//  outcome is known (s_job_after); one that comes again meanwhile (after
//  a new login) is already there
static void
s_job_defer (job_t *job, const af_msg_t *uninstall)
{
    if (!job->after) {
        job->after = zlistx_new ();
        zlistx_set_destructor (job->after, (zlistx_destructor_fn *) af_msg_destroy);
    }
    for (af_msg_t *msg = (af_msg_t *) zlistx_first (job->after); msg; msg = (af_msg_t *) zlistx_next (job->after))
        if (streq (msg->push_id, uninstall->push_id))
            return;
    af_msg_t *copy = af_msg_new (AF_MSG_UNINSTALL);
    snprintf (copy->push_id, sizeof copy->push_id, "%s", uninstall->push_id);
    snprintf (copy->program, sizeof copy->program, "%s", uninstall->program);
    snprintf (copy->from, sizeof copy->from, "%s", uninstall->from);
    zlistx_add_end (job->after, copy);
    zsys_info ("node: device %.8s asked to uninstall %s, which is being installed (push %s): after that",
               uninstall->from, uninstall->program, job->push);
}

//  What is being received, for `appferry status`
json_t *
node_jobs_doc (af_node_t *self)
{
    json_t *receiving = json_array ();
    static const char *states [] = { "waiting", "receiving", "installing", "reporting" };
    for (job_t *job = (job_t *) zlistx_first (self->jobs); job; job = (job_t *) zlistx_next (self->jobs)) {
        json_t *entry = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I}",
            "pushId", job->push, "program", job->program, "versionName", job->package.version_name,
            "state", states [job->state],
            "bytes", (json_int_t) (job->download? af_download_received (job->download): 0),
            "total", (json_int_t) (job->fetch_total? job->fetch_total: job->package.size));
        if (job->state == JOB_INSTALLING && job->task) {
            char err [AF_MAX_REASON + 1];
            bool running;
            uint64_t entries = 0;
            af_install_task_poll (job->task, &running, &entries, err, sizeof err);
            json_object_set_new (entry, "what", json_string (job->data_phase? "data": "package"));
            json_object_set_new (entry, "entries", json_integer ((json_int_t) entries));
        }
        json_array_append_new (receiving, entry);
    }
    return receiving;
}

//  --------------------------------------------------------------------------
//  The outbox (protocol/SPEC.md 5.18): an ITEM carries an OFFER, a RESULT,
//  an UNINSTALL, a RECOMMENDATION or a NOTIFY (a GET's source told). An OFFER or an UNINSTALL is never acknowledged here:
//  the broker ends it when our DONE arrives (with its outcome, which it
//  passes on to the device that asked). A RESULT is done with at once.

void
node_on_item (af_node_t *self, af_msg_t **item_p)
{
    af_msg_t *item = *item_p;
    char err [AF_MAX_REASON + 1];
    af_msg_t *msg = NULL;
    int code = af_msg_decode (item->body, item->body_size, &msg, err, sizeof err, NULL, NULL);
    if (code == AF_OK && msg->id == AF_MSG_OFFER) {
        s_on_offer (self, msg, item->item);
        af_msg_destroy (&msg);
        return;
    }
    if (code == AF_OK && msg->id == AF_MSG_RESULT)
        node_push_result (self, msg);
    else
    if (code == AF_OK && msg->id == AF_MSG_RECOMMENDATION) {
        node_friends_on_item (self, msg, item->item);       //  ACKed once it is on disk
        af_msg_destroy (&msg);
        return;
    }
    else
    if (code == AF_OK && msg->id == AF_MSG_UNINSTALL) {
        //  Finished by its DONE, as an offer is (SPEC 5.32): no ACK
        job_t *job = node_jobs_installing (self, msg->program);
        if (job)
            s_job_defer (job, msg);
        else
            node_uninstall_asked (self, msg);
        af_msg_destroy (&msg);
        return;
    }
    else
    if (code == AF_OK && msg->id == AF_MSG_NOTIFY && *msg->ask) {
        //  GET's source told, with an ask: ACKed once it is answered (5.47a),
        //  after its user data went when it asks for that (node_getdata.c)
        node_pay_on_notice (self, &msg, item->item);
        if (msg && msg->with_data)
            node_getdata_on_notice (self, msg, item->item);
        else
        if (msg)
            node_record_answer_ask (self, msg, item->item, NULL);
        af_msg_destroy (&msg);
        return;
    }
    else
    if (code == AF_OK && msg->id == AF_MSG_RECORD) {
        node_record_on_item (self, msg, item->item);    //  ACKed once it is on disk
        af_msg_destroy (&msg);
        return;
    }
    else
    if (code == AF_OK && msg->id == AF_MSG_NOTIFY)
        node_pay_on_notice (self, &msg, item->item);      //  GET's source told (5.47)
    else
        //  Acknowledged anyway: a bad item must not block the queue
        zsys_warning ("node: dropped outbox item %s: %s", item->item,
                      code != AF_OK? err: "not an OFFER, RESULT, UNINSTALL, RECOMMENDATION or NOTIFY");
    af_msg_t *ack = af_msg_new (AF_MSG_ACK);
    memcpy (ack->item, item->item, sizeof ack->item);
    node_send (self, ack);
    af_msg_destroy (&ack);
    af_msg_destroy (&msg);
}
