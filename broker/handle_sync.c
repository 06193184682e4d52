/*  =========================================================================
    handle_sync - REPORT, LIST, APPS, SYNC (SPEC 5.28-5.31)

    Install lists (S0.1, S0.2, S1.5, S1.8). Nodes report every install and
    uninstall with their own rising seq, or send their whole list; the
    broker applies each once (af_lists) and answers OK only once it is on
    disk: a report the broker could not store is E_INTERNAL, and the node
    keeps it and sends it again. An applied install is announced to the
    account's other online devices (NOTIFY "installed"), so those in
    automatic mode can follow (S1.9).

    SYNC (S1.2, S1.3) answers what the account's other devices have that
    the asker lacks, and what the account had that no device has now, each
    with its fit for the asker: the diff comes from af_syncindex, and the
    matcher is asked once per distinct program (kept answers are reused,
    shared by devices equal in what the matcher reads).
    At most AF_MAX_SYNC_JOBS diffs are being resolved at once; later SYNCs
    wait their turn, so memory stays bounded under a login storm.
    =========================================================================
*/
#include "broker_int.h"

//  A SYNC waiting for the matcher's answer for each program it lacks
typedef struct {
    af_broker_t *broker;
    char hex [AF_ID_HEX + 1];       //  sync_jobs key (random)
    broker_caller_t caller;
    af_sync_diff_t diff;            //  the SYNC_DIFF being filled in
    af_sync_answer_t *answers;      //  per program
    uint32_t outstanding;
    char digest [AF_ID_HEX + 1];    //  the asker's fit key (af_syncindex_fit_key)
} sync_job_t;

//  A SYNC waiting for its turn
typedef struct {
    broker_caller_t caller;
    bool grouped;
} sync_wait_t;

void
broker_sync_jobs_free (void **item)
{
    sync_job_t *job = (sync_job_t *) *item;
    if (job) {
        af_sync_diff_free (&job->diff);
        free (job->answers);
        free (job);
        *item = NULL;
    }
}

//  --------------------------------------------------------------------------
//  REPORT, LIST, APPS

void
handle_report (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (msg->seq == 0) {                //  SPEC 5.28: a device's reports count from 1
        broker_error (self, session, msg, AF_E_MALFORMED, "REPORT: seq must be 1 or more");
        return;
    }
    bool applied;
    int code = af_lists_report (self->lists, session->account, session->device_id, msg, &applied);
    if (code == AF_E_MALFORMED) {
        broker_error (self, session, msg, AF_E_MALFORMED, "REPORT: 'op' must be install or uninstall");
        return;
    }
    if (code != AF_OK) {
        zsys_error ("broker: cannot store a report of %s of '%s'", session->device_id, session->account);
        broker_error (self, session, msg, AF_E_INTERNAL, "the report could not be stored; send it again");
        return;
    }
    if (applied)
        af_syncindex_drop (self->syncindex, session->account);   //  read again at the next sync
    if (applied && self->config.verbose)
        zsys_info ("broker: %s of '%s' reports %s %s (seq %llu)", session->device_id, session->account,
                   msg->op, msg->program, (unsigned long long) msg->seq);
    broker_ok (self, session, msg);         //  not applied: a repeat, applied before
    //  The account's other online devices hear of a new install at once, so
    //  those in automatic mode can sync it (S1.9); offline ones sync at login
    if (applied && streq (msg->op, "install"))
        broker_tell_others (self, session, "installed", msg->program);
}

void
handle_list (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    bool applied;
    int code = af_lists_replace (self->lists, session->account, session->device_id, msg, &applied);
    if (code != AF_OK) {
        zsys_error ("broker: cannot store the list of %s", session->device_id);
        broker_error (self, session, msg, AF_E_INTERNAL, "the list could not be stored; send it again");
        return;
    }
    if (applied)
        af_syncindex_drop (self->syncindex, session->account);
    zsys_info ("broker: %s of '%s' sent its whole list (%u apps, seq %llu)%s", session->device_id,
               session->account, msg->app_count, (unsigned long long) msg->seq, applied? "": ": stale, ignored");
    broker_ok (self, session, msg);
}

static int
s_collect_app (const char *device_id, const af_msg_t *app, void *arg)
{
    af_msg_t *list = (af_msg_t *) arg;
    if (list->app_count == AF_MAX_APPS)
        return 1;                               //  full
    af_app_t *out = &list->apps [list->app_count++];
    af_strcopy (out->program, sizeof out->program, app->program);
    af_strcopy (out->version_name, sizeof out->version_name, app->version_name);
    out->version_code = app->version_code;
    af_strcopy (out->hash, sizeof out->hash, app->hash);
    out->at = app->at;
    af_strcopy (out->device_id, sizeof out->device_id, device_id);
    return 0;
}

void
handle_apps (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_device_t device;
    if (af_registry_device (self->registry, session->account, msg->device_id, &device) != AF_OK) {
        broker_error (self, session, msg, AF_E_NO_DEVICE, "not a device of this account");
        return;
    }
    af_msg_t *reply = af_msg_new (AF_MSG_APP_LIST);
    af_strcopy (reply->device_id, sizeof reply->device_id, msg->device_id);
    af_msg_set_app_count (reply, AF_MAX_APPS);
    reply->app_count = 0;
    if (af_lists_each (self->lists, session->account, msg->device_id, s_collect_app, reply) != AF_OK) {
        af_msg_destroy (&reply);
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot read the device's install list");
        return;
    }
    broker_reply (self, session, msg, &reply);
}

//  --------------------------------------------------------------------------
//  SYNC

static void s_sync_start (af_broker_t *self, session_t *session, af_msg_t *msg);

//  Start the next waiting SYNC whose device is still here
static void
s_sync_next (af_broker_t *self)
{
    while (zhashx_size (self->sync_jobs) < AF_MAX_SYNC_JOBS && zlistx_size (self->sync_waiting)) {
        sync_wait_t *wait = (sync_wait_t *) zlistx_first (self->sync_waiting);
        session_t *waiting = broker_session (self, wait->caller.session);
        if (waiting && waiting->logged_in) {
            af_msg_t *sync = af_msg_new (AF_MSG_SYNC);
            sync->has_rid = wait->caller.has_rid;
            memcpy (sync->rid, wait->caller.rid, AF_ID_SIZE);
            sync->grouped = wait->grouped;
            zlistx_delete (self->sync_waiting, zlistx_cursor (self->sync_waiting));
            s_sync_start (self, waiting, sync);
            af_msg_destroy (&sync);
        }
        else
            zlistx_delete (self->sync_waiting, zlistx_cursor (self->sync_waiting));
    }
}

//  Every program answered: each entry gets its program's answer, and the
//  diff goes to the device that asked
static void
s_sync_finish (af_broker_t *self, sync_job_t *job)
{
    af_msg_t *diff = job->diff.diff;
    for (uint32_t i = 0; i < diff->app_count; i++) {
        af_app_t *app = &diff->apps [i];
        const af_sync_answer_t *answer = &job->answers [job->diff.slot [i]];
        app->fit = answer->fit;
        memcpy (app->fit_version, answer->fit_version, sizeof app->fit_version);
        memcpy (app->reason, answer->reason, sizeof app->reason);
    }
    //  Grouped: once per program
    for (uint32_t i = 0; i < diff->prog_count; i++) {
        af_prog_t *prog = &diff->progs [i];
        const af_sync_answer_t *answer = &job->answers [i];
        prog->fit = answer->fit;
        memcpy (prog->fit_version, answer->fit_version, sizeof prog->fit_version);
        memcpy (prog->reason, answer->reason, sizeof prog->reason);
    }
    broker_answer (self, &job->caller, &job->diff.diff);
    zhashx_delete (self->sync_jobs, job->hex);
    s_sync_next (self);
}

//  The matcher's answer for one program (af_dispatch completion)
static void
s_sync_resolved (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    sync_job_t *job = (sync_job_t *) arg;
    af_msg_t *reply = *reply_p;
    af_sync_answer_t *answer = &job->answers [slot];
    memset (answer, 0, sizeof *answer);
    if (reply && reply->id == AF_MSG_RESOLVED) {
        answer->fit = reply->fit;
        snprintf (answer->fit_version, sizeof answer->fit_version, "%s",
                  reply->has_package? reply->package.version_name: "");
        snprintf (answer->reason, sizeof answer->reason, "%s", reply->reason);
        //  Kept a while for the next diffs of devices described the same way
        af_syncindex_remember (job->broker->syncindex, job->digest, job->diff.programs [slot], answer,
                               zclock_mono ());
    }
    else {
        answer->fit = AF_FIT_NONE;
        snprintf (answer->reason, sizeof answer->reason, "could not ask the matcher: %s",
                  reply && *reply->reason? reply->reason: "no answer");
    }
    if (job->outstanding && --job->outstanding == 0)
        s_sync_finish (job->broker, job);
}

//  Build the diff, answer what is kept, ask the matcher for the rest
static void
s_sync_start (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    sync_job_t *job = (sync_job_t *) zmalloc (sizeof (sync_job_t));
    assert (job);
    job->broker = self;
    if (af_syncindex_diff (self->syncindex, session->account, session->device_id, msg->grouped,
                           &job->diff) != AF_OK) {
        free (job);
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot read the account's install lists");
        return;
    }
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (job->hex, sizeof job->hex, id, AF_ID_SIZE);
    broker_caller (&job->caller, session, msg);
    memcpy (job->digest, session->digest, sizeof job->digest);
    uint32_t programs = job->diff.program_count;
    job->answers = (af_sync_answer_t *) calloc (programs? programs: 1, sizeof (af_sync_answer_t));
    uint32_t *ask = (uint32_t *) calloc (programs? programs: 1, sizeof (uint32_t));
    assert (job->answers && ask);
    uint32_t asks = 0;
    int64_t now = zclock_mono ();
    for (uint32_t i = 0; i < programs; i++)
        if (!af_syncindex_recall (self->syncindex, job->digest, job->diff.programs [i], now, &job->answers [i]))
            ask [asks++] = i;
    zhashx_insert (self->sync_jobs, job->hex, job);
    if (asks > af_dispatch_room (self->dispatch)) {
        for (uint32_t i = 0; i < asks; i++) {
            job->answers [ask [i]].fit = AF_FIT_NONE;
            snprintf (job->answers [ask [i]].reason, sizeof job->answers [ask [i]].reason,
                      "the matcher queue is full; try again later");
        }
        asks = 0;
    }
    for (uint32_t k = 0; k < asks; k++) {
        af_sync_answer_t *answer = &job->answers [ask [k]];
        if (broker_resolve (self, job->diff.programs [ask [k]], &session->device, s_sync_resolved,
                            job, ask [k]) == AF_OK)
            job->outstanding++;
        else {
            answer->fit = AF_FIT_NONE;
            snprintf (answer->reason, sizeof answer->reason, "the matcher queue is full; try again later");
        }
    }
    free (ask);
    if (job->outstanding == 0)
        s_sync_finish (self, job);
}

void
handle_sync (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (zhashx_size (self->sync_jobs) < AF_MAX_SYNC_JOBS) {
        s_sync_start (self, session, msg);
        return;
    }
    if (zlistx_size (self->sync_waiting) >= self->config.max_queue) {
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "too many syncs waiting; try again later");
        return;
    }
    sync_wait_t *wait = (sync_wait_t *) zmalloc (sizeof (sync_wait_t));
    assert (wait);
    broker_caller (&wait->caller, session, msg);
    wait->grouped = msg->grouped;
    zlistx_add_end (self->sync_waiting, wait);
}
