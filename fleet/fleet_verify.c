/*  =========================================================================
    fleet_verify - the end of a run: what the broker kept, against what
    each device knows

    Once the fleet is quiet (every device back, every report confirmed,
    every accepted offer finished), each device asks APPS for its own
    install list and compares it with its own, program by program; each
    entry's versionCode is the seq of the report or list it came from, so
    a wrong entry tells which way it is wrong:

    * the device has the app, the broker's list does not: an acknowledged
      install is not there: lost;
    * the broker's entry comes from an older report than the device's
      last: an older report was applied over a newer one: duplicated;
    * the broker lists an app the device uninstalled: an install applied
      after the uninstall that undid it: duplicated.

    From the final lists alone the last two cannot be told from a newer
    acknowledged report that was never applied; they are counted
    duplicated, as "the broker's list disagrees with the device", and
    each is printed saying both. Either fails the run.

    The final line counts
      acked      REPORTs answered OK, and push targets accepted (offered
                 or queued in PUSH_ACCEPTED);
      delivered  acked REPORTs whose program the broker's list has as the
                 device has it, and accepted offers whose RESULT reached
                 the initiator (it is queued in the transaction that
                 records the target's outcome, so the offer reached it);
      lost       acked REPORTs the broker forgot (its reportSeq went
                 below what it had acknowledged, seen at a login), or
                 whose program is missing at the end; accepted offers
                 with no RESULT;
      duplicated the broker's list disagreeing with the device the other
                 way (above), and offers that came again after their
                 DONE was confirmed.
    =========================================================================
*/
#include "fleet_int.h"

void
fleet_verify_start (fleet_t *self)
{
    self->verify_next = 0;
    self->verify_open = 0;
    self->verify_done = 0;
}

//  Ask the next devices, FLEET_VERIFY_WINDOW at a time; a device not
//  online now is tried again on a later round
void
fleet_verify_step (fleet_t *self)
{
    uint32_t looked = 0;
    while (self->verify_open < FLEET_VERIFY_WINDOW && self->verify_done < self->device_count
    &&     looked++ < 4 * FLEET_VERIFY_WINDOW) {
        fleet_device_t *device = &self->devices [self->verify_next];
        self->verify_next = (self->verify_next + 1) % self->device_count;
        if (device->verified || device->state != DEV_ONLINE || !device->caught_up || !fleet_slot_free (device))
            continue;
        bool open = false;
        for (int i = 0; i < FLEET_REQ_SLOTS && !open; i++)
            open = device->req [i].used && device->req [i].cmd == FC_APPS;
        if (open)
            continue;
        af_msg_t *apps = af_msg_new (AF_MSG_APPS);
        memcpy (apps->device_id, device->id, sizeof apps->device_id);
        if (fleet_request (self, device, FC_APPS, apps, 0))
            self->verify_open++;
        af_msg_destroy (&apps);
    }
}

static void
s_bad (fleet_t *self, fleet_device_t *device, uint32_t program, bool lost, const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

static void
s_bad (fleet_t *self, fleet_device_t *device, uint32_t program, bool lost, const char *format, ...)
{
    device->bad = (uint32_t *) realloc (device->bad, (device->bad_count + 1) * sizeof (uint32_t));
    assert (device->bad);
    device->bad [device->bad_count++] = program;
    if (lost)
        self->stats.verify_lost++;
    else
        self->stats.verify_dup++;
    if (self->stats.verify_lost + self->stats.verify_dup <= 20 || self->config.verbose) {
        char text [400];
        va_list args;
        va_start (args, format);
        vsnprintf (text, sizeof text, format, args);
        va_end (args);
        printf ("fleet: %s: device %u (%s of '%s'), %s: %s\n", lost? "lost": "duplicated", device->index,
                device->id, self->accounts [device->account].name, self->programs [program], text);
    }
}

void
fleet_apps_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    (void) req;
    self->verify_open--;
    if (msg->id == AF_MSG_ERROR) {
        fleet_error (self, device, FC_APPS, msg, msg->code >= 500);
        if (msg->code < 500) {
            device->verified = true;            //  it cannot be checked: counted unverified
            self->verify_done++;
            self->stats.verify_unverified++;
        }
        return;
    }
    if (!streq (msg->device_id, device->id)) {
        fleet_unexpected (self, device, "APP_LIST of %s, asked for %s", msg->device_id, device->id);
        return;
    }
    device->verified = true;
    self->verify_done++;
    self->stats.verified++;
    uint64_t bad_before = self->stats.verify_lost + self->stats.verify_dup;
    //  The broker's entries, by program: its marker + 1
    uint32_t *mark = self->scratch_marks;
    for (uint32_t i = 0; i < msg->app_count; i++) {
        size_t program = (size_t) zhashx_lookup (self->program_index, msg->apps [i].program);
        if (!program) {
            fleet_unexpected (self, device, "APP_LIST has '%s', which no device of the fleet installs",
                              msg->apps [i].program);
            continue;
        }
        if (mark [program - 1])
            fleet_unexpected (self, device, "APP_LIST has '%s' twice", msg->apps [i].program);
        mark [program - 1] = (uint32_t) msg->apps [i].version_code + 1;
    }
    for (uint32_t i = 0; i < device->app_count; i++) {
        fleet_app_t *app = &device->apps [i];
        uint32_t broker = mark [app->program];
        mark [app->program] = 0;
        if (!broker)
            s_bad (self, device, app->program, true, "the device has it (seq %u), the broker's list does not",
                   app->marker);
        else
        if (broker - 1 != app->marker)
            s_bad (self, device, app->program, false, "the device's last report of it is seq %u, the broker's "
                   "entry is from seq %u: a report applied again over a newer one (or the newer one not "
                   "applied)", app->marker, broker - 1);
    }
    for (uint32_t i = 0; i < msg->app_count; i++) {
        size_t program = (size_t) zhashx_lookup (self->program_index, msg->apps [i].program);
        if (program && mark [program - 1]) {
            s_bad (self, device, (uint32_t) program - 1, false, "the device uninstalled it, the broker "
                   "lists it (from seq %u): an install applied again after its uninstall (or the uninstall "
                   "not applied)", mark [program - 1] - 1);
            mark [program - 1] = 0;
        }
    }
    if (self->stats.verify_lost + self->stats.verify_dup == bad_before)
        self->stats.verify_agree++;
}

static bool
s_is_bad (fleet_device_t *device, uint32_t program)
{
    for (uint32_t i = 0; i < device->bad_count; i++)
        if (device->bad [i] == program)
            return true;
    return false;
}

void
fleet_verify_finish (fleet_t *self)
{
    for (size_t i = 0; i < self->log_count; i++) {
        fleet_report_t *report = &self->log [i];
        if (report->status == REP_ACKED && !s_is_bad (&self->devices [report->device], report->program))
            self->stats.delivered_reports++;
    }
    for (fleet_push_t *push = (fleet_push_t *) zhashx_first (self->pushes); push;
         push = (fleet_push_t *) zhashx_next (self->pushes)) {
        if (!push->accepted)
            continue;
        if (push->result)
            self->stats.delivered_offers++;
        else {
            self->stats.lost_offers++;
            if (self->stats.lost_offers <= 20 || self->config.verbose)
                printf ("fleet: lost: push %s of %s from device %u to device %u: accepted, %s, no RESULT\n",
                        push->id, self->programs [push->program], push->initiator, push->target,
                        push->done_ok? "the target's DONE confirmed": "the target has not finished it");
        }
    }
    self->stats.verify_unverified += self->device_count - self->verify_done;
}
