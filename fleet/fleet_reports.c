/*  =========================================================================
    fleet_reports - REPORT and LIST, as SPEC 5.28 and 5.29 ask of a node

    Each device keeps, in memory, what a node keeps on disk: its install
    list (the apps it has, each with the seq of the report or list that
    told the broker, which it sends as versionCode so the broker's list
    shows where each entry came from), its next seq and the last the
    broker confirmed, and a queue of reports not yet confirmed, sent in
    seq order one at a time, each after the OK of the one before.

    After every LOGIN_OK (fleet_reports_login) the node's rules apply:
    the broker's reportSeq below what it had confirmed means it lost
    acknowledged reports (counted lost: that is the crash rule broken),
    above anything sent means it applied reports never made; either, a
    first contact, or sendList, and the whole list goes (a LIST with a
    seq above every report) and replaces the queue. Otherwise the queue
    goes on from reportSeq: reports at or below it were applied though
    their OK was lost with the connection.

    Every report made is also in the fleet's log, with its fate (acked,
    applied without an answer, replaced by a list, lost), which the final
    check reads.
    =========================================================================
*/
#include "fleet_int.h"

fleet_app_t *
fleet_app_find (fleet_device_t *device, uint32_t program)
{
    for (uint32_t i = 0; i < device->app_count; i++)
        if (device->apps [i].program == program)
            return &device->apps [i];
    return NULL;
}

static void
s_app_set (fleet_device_t *device, uint32_t program, uint32_t marker)
{
    fleet_app_t *app = fleet_app_find (device, program);
    if (!app) {
        if (device->app_count == device->app_room) {
            device->app_room = device->app_room? device->app_room * 2: 8;
            device->apps = (fleet_app_t *) realloc (device->apps, device->app_room * sizeof (fleet_app_t));
            assert (device->apps);
        }
        app = &device->apps [device->app_count++];
        app->program = program;
    }
    app->marker = marker;
    device->change++;
}

static void
s_app_remove (fleet_device_t *device, uint32_t program)
{
    fleet_app_t *app = fleet_app_find (device, program);
    if (app) {
        *app = device->apps [--device->app_count];
        device->change++;
    }
}

//  Its first install list: --apps programs of --programs, at random.
//  Marker 0: the first LIST gives them its seq.
void
fleet_apps_initial (fleet_t *self, fleet_device_t *device)
{
    uint32_t want = self->config.apps < self->list_programs? self->config.apps: self->list_programs;
    uint32_t *taken = self->scratch_marks;
    while (device->app_count < want) {
        uint32_t program = fleet_uniform (self, self->list_programs);
        if (taken [program])
            continue;
        taken [program] = 1;
        s_app_set (device, program, 0);
    }
    for (uint32_t i = 0; i < device->app_count; i++)
        taken [device->apps [i].program] = 0;
}

//  --------------------------------------------------------------------------
//  The queue

static uint32_t
s_queue_at (fleet_device_t *device, uint32_t nth)
{
    return device->queue [(device->queue_head + nth) % FLEET_QUEUE_ROOM];
}

static void
s_queue_pop (fleet_t *self, fleet_device_t *device)
{
    assert (device->queue_count);
    device->queue_head = (device->queue_head + 1) % FLEET_QUEUE_ROOM;
    device->queue_count--;
    self->pending_reports--;
}

static bool
s_report (fleet_t *self, fleet_device_t *device, uint32_t program, bool install, const char *version,
          const char *hash, bool forced)
{
    if (device->queue_count >= (forced? FLEET_QUEUE_ROOM: FLEET_MAX_QUEUED)) {
        self->stats.reports_skipped++;
        return false;
    }
    if (self->log_count == self->log_room) {
        self->log_room = self->log_room? self->log_room * 2: 4096;
        self->log = (fleet_report_t *) realloc (self->log, self->log_room * sizeof (fleet_report_t));
        assert (self->log);
    }
    uint32_t index = (uint32_t) self->log_count++;
    fleet_report_t *report = &self->log [index];
    memset (report, 0, sizeof *report);
    report->device = device->index;
    report->program = program;
    report->seq = (uint32_t) device->next_seq++;
    report->op = install;
    report->status = REP_QUEUED;
    snprintf (report->version_name, sizeof report->version_name, "%s", version && *version? version: "1.0");
    snprintf (report->hash, sizeof report->hash, "%s", hash? hash: "");
    device->queue [(device->queue_head + device->queue_count) % FLEET_QUEUE_ROOM] = index;
    device->queue_count++;
    self->pending_reports++;
    if (install)
        s_app_set (device, program, report->seq);
    else
        s_app_remove (device, program);
    fleet_reports_next (self, device);
    return true;
}

bool
fleet_report_install (fleet_t *self, fleet_device_t *device, uint32_t program, const char *version, const char *hash)
{
    //  An install that came from an offer is reported whatever the queue
    //  holds (its room has space for every offer the window allows)
    return s_report (self, device, program, true, version, hash, hash && *hash);
}

bool
fleet_report_uninstall (fleet_t *self, fleet_device_t *device, uint32_t program)
{
    return s_report (self, device, program, false, NULL, NULL, false);
}

static void
s_send_list (fleet_t *self, fleet_device_t *device)
{
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    list->seq = device->list_seq;
    uint32_t count = device->app_count < AF_MAX_APPS? device->app_count: AF_MAX_APPS;
    af_msg_set_app_count (list, count);
    int64_t at = zclock_time ();
    for (uint32_t i = 0; i < count; i++) {
        fleet_app_t *app = &device->apps [i];
        if (!app->marker)
            app->marker = (uint32_t) device->list_seq;
        af_app_t *entry = &list->apps [i];
        snprintf (entry->program, sizeof entry->program, "%s", self->programs [app->program]);
        snprintf (entry->version_name, sizeof entry->version_name, "1.%u", app->marker);
        entry->version_code = app->marker;
        entry->at = (uint64_t) at;
    }
    if (fleet_request (self, device, FC_LIST, list, (uint32_t) device->list_seq)) {
        device->listing = true;
        device->list_wanted = false;
    }
    else
        device->report_retry_at = fleet_now () + FLEET_RETRY_MIN_MS;
    af_msg_destroy (&list);
}

void
fleet_reports_next (fleet_t *self, fleet_device_t *device)
{
    if (device->state != DEV_ONLINE || device->report_open || device->listing)
        return;
    if (device->list_wanted) {
        s_send_list (self, device);
        return;
    }
    if (device->queue_count == 0) {
        if (!device->caught_up) {
            //  The catch-up after LOGIN_OK is over: what waited for it goes
            device->caught_up = true;
            if (self->config.auto_sync && device->listed && self->phase <= PHASE_RUN && !device->acting)
                fleet_sync (self, device);
        }
        return;
    }
    uint32_t index = s_queue_at (device, 0);
    fleet_report_t *report = &self->log [index];
    af_msg_t *msg = af_msg_new (AF_MSG_REPORT);
    msg->seq = report->seq;
    snprintf (msg->op, sizeof msg->op, "%s", report->op? "install": "uninstall");
    snprintf (msg->program, sizeof msg->program, "%s", self->programs [report->program]);
    if (report->op) {
        snprintf (msg->version_name, sizeof msg->version_name, "%s", report->version_name);
        msg->version_code = report->seq;
        snprintf (msg->hash, sizeof msg->hash, "%s", report->hash);
    }
    msg->at = (uint64_t) zclock_time ();
    if (fleet_request (self, device, FC_REPORT, msg, index)) {
        device->report_open = true;
        report->status = REP_SENT;
    }
    else
        device->report_retry_at = fleet_now () + FLEET_RETRY_MIN_MS;
    af_msg_destroy (&msg);
}

//  Reports the broker has (its reportSeq says so): out of the queue
static void
s_drop_upto (fleet_t *self, fleet_device_t *device, uint64_t seq, fleet_rep_status_t status)
{
    while (device->queue_count && self->log [s_queue_at (device, 0)].seq <= seq) {
        fleet_report_t *report = &self->log [s_queue_at (device, 0)];
        report->status = (uint8_t) status;
        if (status == REP_APPLIED)
            self->stats.reports_applied_unanswered++;
        s_queue_pop (self, device);
    }
}

void
fleet_reports_login (fleet_t *self, fleet_device_t *device, uint64_t broker_seq, bool send_list)
{
    device->report_open = false;
    device->listing = false;
    device->caught_up = false;
    device->report_retry_at = 0;
    if (broker_seq < device->acked_seq) {
        //  The broker forgot reports it had acknowledged: the crash rule
        //  is broken. They are lost; the list below mends the broker.
        uint64_t lost = 0;
        for (size_t i = 0; i < self->log_count; i++) {       //  only ever on a loss
            fleet_report_t *report = &self->log [i];
            if (report->device == device->index && report->status == REP_ACKED && report->seq > broker_seq) {
                report->status = REP_LOST;
                lost++;
            }
        }
        self->stats.reports_lost_at_login += lost;
        fleet_unexpected (self, device, "LOGIN_OK.reportSeq %llu, but the broker had acknowledged reports up to "
                          "%llu: %llu acknowledged reports lost", (unsigned long long) broker_seq,
                          (unsigned long long) device->acked_seq, (unsigned long long) lost);
    }
    if (broker_seq >= device->next_seq)
        fleet_unexpected (self, device, "LOGIN_OK.reportSeq %llu: this device never sent a seq above %llu",
                          (unsigned long long) broker_seq, (unsigned long long) device->next_seq - 1);
    if (broker_seq < device->acked_seq || broker_seq >= device->next_seq
    ||  (broker_seq == 0 && device->acked_seq == 0) || send_list) {
        //  The whole list, under a seq above every report; it includes
        //  what the queue held
        if (device->listed)
            self->stats.lists_mended++;
        device->list_seq = broker_seq >= device->next_seq? broker_seq + 1: device->next_seq;
        device->next_seq = device->list_seq + 1;
        while (device->queue_count) {
            self->log [s_queue_at (device, 0)].status = REP_DROPPED;
            s_queue_pop (self, device);
        }
        device->list_wanted = true;
    }
    else {
        device->acked_seq = broker_seq;
        s_drop_upto (self, device, broker_seq, REP_APPLIED);
    }
    fleet_reports_next (self, device);
}

void
fleet_report_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    device->report_open = false;
    fleet_report_t *report = &self->log [req->arg];
    if (!device->queue_count || s_queue_at (device, 0) != req->arg) {
        fleet_unexpected (self, device, "an answer to REPORT seq %u, which is not the one open", report->seq);
        return;
    }
    if (msg->id == AF_MSG_OK) {
        report->status = REP_ACKED;
        self->stats.reports_acked++;
        if (report->seq > device->acked_seq)
            device->acked_seq = report->seq;
        s_queue_pop (self, device);
    }
    else
    if (msg->code >= 500) {
        //  Not stored: again after a while (SPEC 5.28)
        fleet_error (self, device, FC_REPORT, msg, true);
        report->status = REP_QUEUED;
        device->report_retry_at = fleet_now () + fleet_jittered (self, FLEET_RETRY_MIN_MS);
        return;
    }
    else {
        fleet_error (self, device, FC_REPORT, msg, false);
        report->status = REP_DROPPED;
        s_queue_pop (self, device);
    }
    fleet_reports_next (self, device);
}

void
fleet_list_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    device->listing = false;
    if (msg->id == AF_MSG_ERROR && msg->code >= 500) {
        fleet_error (self, device, FC_LIST, msg, true);
        device->list_wanted = true;
        device->report_retry_at = fleet_now () + fleet_jittered (self, FLEET_RETRY_MIN_MS);
        return;
    }
    if (msg->id == AF_MSG_ERROR)
        fleet_error (self, device, FC_LIST, msg, false);
    else {
        self->stats.lists_acked++;
        if (req->arg > device->acked_seq)
            device->acked_seq = req->arg;
    }
    if (!device->listed) {
        device->listed = true;
        self->first_logins++;
    }
    fleet_reports_next (self, device);
}

void
fleet_reports_abandon (fleet_t *self, fleet_device_t *device, fleet_req_t *req)
{
    if (req->cmd == FC_LIST) {
        device->listing = false;
        device->list_wanted = true;
    }
    else {
        device->report_open = false;
        if (req->arg < self->log_count && self->log [req->arg].status == REP_SENT)
            self->log [req->arg].status = REP_QUEUED;
    }
    //  Still logged in (a deadline passed): send it again after a while;
    //  otherwise the next LOGIN_OK decides
    if (device->state == DEV_ONLINE)
        device->report_retry_at = fleet_now () + FLEET_RETRY_MIN_MS;
}
