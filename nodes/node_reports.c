/*  =========================================================================
    node_reports - install reports and install lists (S0.1, S0.2, S1.5, S1.8)

    Every install and uninstall here is queued in HOME/reports/ (the
    af_reports class) with this device's own rising seq and sent to the
    broker in order, one at a time, each removed when the broker says OK.
    After every login they go first, before any sync request; when one
    side lost state (LOGIN_OK's reportSeq says which), or the broker asks,
    the whole install list goes instead.
    =========================================================================
*/
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>

static void s_report_next (af_node_t *self);
static void s_send_list (af_node_t *self, uint64_t seq, const char *why);

//  The broker's answer to a REPORT: stored, next; or not, again later
static bool
s_report_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!streq (pending->hex, self->report_rid))
        return true;                    //  from before a login; sent again since
    self->report_rid [0] = 0;
    if (answer && answer->id == AF_MSG_OK) {
        if (pending->seq > self->acked_seq) {
            self->acked_seq = pending->seq;
            node_state_save (self);
        }
        af_reports_drop (self->reports, pending->seq);
        s_report_next (self);
    }
    else
    if (answer)
        zsys_warning ("node: the broker did not store a report: %s; sending it again later", answer->reason);
    return true;
}

//  The broker's answer to a whole LIST: it replaces every report up to
//  the list's seq; reports queued after the list still go
static bool
s_list_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!streq (pending->hex, self->list_rid))
        return true;
    self->listing = false;
    self->list_rid [0] = 0;
    if (answer && answer->id == AF_MSG_OK) {
        if (pending->seq > self->acked_seq) {
            self->acked_seq = pending->seq;
            node_state_save (self);
        }
        af_reports_drop (self->reports, self->acked_seq);
        s_report_next (self);
    }
    return true;
}

//  Send the next queued report, if the broker is ready for it; when none
//  is left after a login, the catch-up is over
static void
s_report_next (af_node_t *self)
{
    if (!self->logged_in || *self->report_rid || self->listing)
        return;
    af_report_t report;
    if (!af_reports_next (self->reports, self->acked_seq, &report)) {
        if (af_reports_skipped (self->reports) > self->reports_mended) {
            //  What an unreadable report said is lost: the whole list mends it
            self->reports_mended = af_reports_skipped (self->reports);
            s_send_list (self, self->next_seq, "an unreadable report was skipped");
            return;
        }
        if (self->catching_up) {
            self->catching_up = false;
            //  Configuration edits made offline go next, then what others
            //  changed meanwhile comes back; then the held sync requests
            node_config_scan (self);
            const char *program;
            json_t *entry;
            json_object_foreach (json_object_get (self->shares, "shared"), program, entry)
                node_config_get (self, NULL, NODE_CONFIG_SYNC, program, false);
            node_requests_flush (self);
        }
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_REPORT);
    msg->seq = report.seq;
    snprintf (msg->op, sizeof msg->op, "%s", report.op);
    snprintf (msg->program, sizeof msg->program, "%s", report.program);
    snprintf (msg->version_name, sizeof msg->version_name, "%s", report.version_name);
    snprintf (msg->hash, sizeof msg->hash, "%s", report.hash);
    msg->version_code = report.version_code;
    msg->at = report.at;
    pending_t *pending = node_request (self, s_report_answer, REQ_SESSION | REQ_PER_SESSION, NULL, msg);
    pending->seq = report.seq;
    memcpy (self->report_rid, pending->hex, sizeof self->report_rid);
}

void
node_reports_flush (af_node_t *self)
{
    s_report_next (self);
}

//  Queue a report of an install or uninstall on this device
int
node_report (af_node_t *self, const char *op, const af_install_info_t *info)
{
    af_report_t report;
    memset (&report, 0, sizeof report);
    report.seq = self->next_seq++;
    node_state_save (self);
    snprintf (report.op, sizeof report.op, "%s", op);
    snprintf (report.program, sizeof report.program, "%s", info->program);
    snprintf (report.version_name, sizeof report.version_name, "%s", info->version_name);
    report.version_code = info->version_code;
    snprintf (report.hash, sizeof report.hash, "%s", info->hash);
    report.at = info->installed_at? info->installed_at: (uint64_t) zclock_time ();
    int rc = af_reports_add (self->reports, &report);
    node_reports_flush (self);
    return rc;
}

//  This device's install list, from its install records
af_msg_t *
node_install_list (af_node_t *self)
{
    af_msg_t *list = af_msg_new (AF_MSG_LIST);
    json_t *doc = node_installed_doc (self);
    json_t *installed = json_object_get (doc, "installed");
    size_t count = json_array_size (installed) < AF_MAX_APPS? json_array_size (installed): AF_MAX_APPS;
    af_msg_set_app_count (list, (uint32_t) count);
    for (size_t i = 0; i < count; i++) {
        json_t *record = json_array_get (installed, i);
        af_app_t *app = &list->apps [i];
        const char *text;
        text = json_string_value (json_object_get (record, "program"));
        snprintf (app->program, sizeof app->program, "%s", text? text: "");
        text = json_string_value (json_object_get (record, "versionName"));
        snprintf (app->version_name, sizeof app->version_name, "%s", text? text: "");
        text = json_string_value (json_object_get (record, "hash"));
        snprintf (app->hash, sizeof app->hash, "%s", text? text: "");
        app->version_code = (uint64_t) json_integer_value (json_object_get (record, "versionCode"));
        app->at = (uint64_t) json_integer_value (json_object_get (record, "installedAt"));
    }
    json_decref (doc);
    return list;
}

//  Send the whole install list under seq (a seq of its own, above every
//  report queued): the broker replaces what it has of this device with it
static void
s_send_list (af_node_t *self, uint64_t seq, const char *why)
{
    self->next_seq = seq + 1;
    node_state_save (self);
    af_msg_t *list = node_install_list (self);
    list->seq = seq;
    zsys_info ("node: sending the whole install list (%s)", why);
    pending_t *pending = node_request (self, s_list_answer, REQ_SESSION | REQ_PER_SESSION, NULL, list);
    pending->seq = seq;
    memcpy (self->list_rid, pending->hex, sizeof self->list_rid);
    self->listing = true;
}

//  After LOGIN_OK: the broker has applied our reports up to broker_seq.
//  If it knows less than we know it had (its store was lost), or more
//  than we ever sent (our home was lost), the whole list goes instead.
void
node_reports_login (af_node_t *self, uint64_t broker_seq, bool send_list)
{
    self->report_rid [0] = 0;
    self->list_rid [0] = 0;
    self->listing = false;
    self->catching_up = true;
    //  First contact (nothing sent, nothing known) sends the list too, so
    //  apps installed before this device ever logged in are known
    if (broker_seq < self->acked_seq || broker_seq >= self->next_seq
    ||  (broker_seq == 0 && self->acked_seq == 0) || send_list) {
        char why [200];
        snprintf (why, sizeof why, "%s; the broker has our reports up to %llu, we sent up to %llu",
                  send_list? "the broker asks for it": "to mend a lost state", (unsigned long long) broker_seq,
                  (unsigned long long) self->acked_seq);
        s_send_list (self, broker_seq >= self->next_seq? broker_seq + 1: self->next_seq, why);
        return;
    }
    self->acked_seq = broker_seq;
    af_reports_drop (self->reports, broker_seq);
    node_reports_flush (self);
}

//  Write a JSON document to path whole and durably (temp file, fsync,
//  rename). 0, or -1 with errno set.
static int
s_write_durably (json_t *doc, const char *path)
{
    char tmp [720];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    char *text = json_dumps (doc, JSON_COMPACT);
    int fd = text? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644): -1;
    size_t size = text? strlen (text): 0;
    bool ok = fd >= 0 && write (fd, text, size) == (ssize_t) size && fsync (fd) == 0;
    if (fd >= 0)
        ok = close (fd) == 0 && ok;
    ok = ok && rename (tmp, path) == 0;
    int saved = errno;
    free (text);
    if (!ok)
        unlink (tmp);
    errno = saved;
    return ok? 0: -1;
}

//  Uninstall a program here and report it. 0, or -1 with err.
//
//  The install record becomes the report: it is given the report's seq,
//  op and time (still a valid record), then moved into the queue in one
//  rename, so it leaves installed/ exactly when the report is queued. A
//  stop at any point leaves either the app recorded as installed (its
//  files may be gone; uninstalling again finishes it) or no record and
//  the report queued; never a record gone and its report lost.
int
node_uninstall_local (af_node_t *self, const char *program, char *err, size_t errlen)
{
    af_install_info_t info;
    char path [700];
    bool found = false;
    job_t *job = node_jobs_installing (self, program);
    if (job) {
        snprintf (err, errlen, "%s is being installed (push %s, version %s); uninstall it once that is done "
                  "(appferry status shows it)", program, job->push, job->package.version_name);
        return AF_E_UNAVAILABLE;
    }
    if (af_program_check (program, NULL, 0) != AF_OK
    ||  af_install_record_read (self->config.home, program, &info, &found) != AF_OK || !found) {
        snprintf (err, errlen, "%s is not installed here", program);
        return AF_E_MALFORMED;
    }
    //  The app's files are moved aside in one rename; removing them (a
    //  large app's take a while) is a task's, off the reactor
    char aside [AF_INSTALL_PATH];
    int rc = af_install_remove_aside (self->config.home, program, aside, sizeof aside, err, errlen);
    if (rc != AF_OK)
        return rc;
    af_install_task_t *reaper = *aside? af_install_reap_start (aside, err, errlen): NULL;
    if (reaper)
        zlistx_add_end (self->reapers, reaper);
    else
    if (*aside)
        zsys_warning ("node: %s; %s goes at the next start", err, aside);
    snprintf (path, sizeof path, "%s/installed/%s.json", self->config.home, program);
    json_error_t jerr;
    json_t *record = json_load_file (path, 0, &jerr);
    if (!json_is_object (record)) {
        snprintf (err, errlen, "cannot read %s: %s", path, jerr.text);
        json_decref (record);
        return AF_E_INTERNAL;
    }
    uint64_t seq = self->next_seq++;
    node_state_save (self);
    json_object_set_new (record, "seq", json_integer ((json_int_t) seq));
    json_object_set_new (record, "op", json_string ("uninstall"));
    json_object_set_new (record, "at", json_integer ((json_int_t) zclock_time ()));
    rc = s_write_durably (record, path);
    json_decref (record);
    if (rc || af_reports_adopt (self->reports, seq, path) != AF_OK) {
        snprintf (err, errlen, "cannot queue the report of the uninstall (%s); %s is still recorded as "
                  "installed", rc? strerror (errno): "see the log", program);
        return AF_E_INTERNAL;
    }
    node_reports_flush (self);
    zsys_info ("node: uninstalled %s", program);
    return AF_OK;
}

//  The broker has the outcome of an UNINSTALL item (or could not store it:
//  the item comes again after the next login, and the outcome with it)
static bool
s_uninstall_done_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    (void) self;
    (void) pending;
    if (answer && answer->id == AF_MSG_ERROR)
        zsys_warning ("node: the broker did not take an uninstall's outcome: %s", answer->reason);
    return true;
}

//  Another device asked for an uninstall here (through our outbox): do it,
//  and tell the broker the outcome (DONE), which tells that device
void
node_uninstall_asked (af_node_t *self, af_msg_t *uninstall)
{
    char err [AF_MAX_REASON + 1] = "";
    af_install_info_t info;
    bool found = false;
    bool had = af_program_check (uninstall->program, NULL, 0) == AF_OK
            && af_install_record_read (self->config.home, uninstall->program, &info, &found) == AF_OK && found;
    bool failed = had && node_uninstall_local (self, uninstall->program, err, sizeof err) != AF_OK;
    if (failed)
        zsys_warning ("node: device %.8s asked to uninstall %s: %s", uninstall->from, uninstall->program, err);
    else
    if (!had)
        zsys_info ("node: device %.8s asked to uninstall %s: it is not installed here", uninstall->from,
                   uninstall->program);
    af_msg_t *done = af_msg_new (AF_MSG_DONE);
    snprintf (done->push_id, sizeof done->push_id, "%s", uninstall->push_id);
    snprintf (done->state, sizeof done->state, "%s", failed? "failed": "uninstalled");
    snprintf (done->reason, sizeof done->reason, "%s", failed? err: had? "": "it was not installed");
    node_request (self, s_uninstall_done_answer, REQ_SESSION, NULL, done);
}
