/*  =========================================================================
    fleet_actions - what a simulated user does: the mix of --mix

    One action at a time per device, drawn by weight from --mix:

    * report: install a program of --programs it lacks, or uninstall one
      it has (fleet_reports queues the REPORT);
    * sync: SYNC grouped (SPEC 5.31). The diff is checked: every device
      in its table is of the asker's account, and, when no report of the
      asker was pending, no program it has appears with holders (the
      broker's list of the asker is then exactly the asker's own);
    * notify: NOTIFY to another online device of its account, with a body
      naming the sender; the receiver checks the broker put the sender's
      device ID in it, and that the sender is of its own account;
    * push: PUSH of a program of --push to another device of its account
      (fleet_pushes follows the offer to its RESULT).

    An action that cannot happen (no other device in a one-device
    account, no --push) falls back to a report.
    =========================================================================
*/
#include "fleet_int.h"

bool
fleet_can_act (fleet_t *self, fleet_device_t *device)
{
    (void) self;
    return device->state == DEV_ONLINE && device->listed && device->caught_up && !device->acting
        && fleet_slot_free (device);
}

//  Another device of the account, from a random start: online ones only
//  for a notification; any that logged in once for a push
static fleet_device_t *
s_other (fleet_t *self, fleet_device_t *device, bool online)
{
    fleet_account_t *account = &self->accounts [device->account];
    if (account->count < 2)
        return NULL;
    uint32_t start = fleet_uniform (self, account->count);
    for (uint32_t i = 0; i < account->count; i++) {
        fleet_device_t *other = &self->devices [account->first + (start + i) % account->count];
        if (other != device && other->has_id && (!online || other->state == DEV_ONLINE))
            return other;
    }
    return NULL;
}

static void
s_act_report (fleet_t *self, fleet_device_t *device)
{
    bool uninstall = device->app_count && (fleet_uniform (self, 100) < 40 || device->app_count >= AF_MAX_APPS);
    if (!uninstall) {
        for (int tries = 0; tries < 8; tries++) {
            uint32_t program = fleet_uniform (self, self->list_programs);
            if (!fleet_app_find (device, program)) {
                fleet_report_install (self, device, program, "1.0", NULL);
                return;
            }
        }
        if (!device->app_count)
            return;
    }
    fleet_report_uninstall (self, device, device->apps [fleet_uniform (self, device->app_count)].program);
}

void
fleet_sync (fleet_t *self, fleet_device_t *device)
{
    af_msg_t *sync = af_msg_new (AF_MSG_SYNC);
    sync->grouped = true;
    fleet_req_t *req = fleet_request (self, device, FC_SYNC, sync, 0);
    if (req) {
        req->change = device->change;
        req->exact = device->queue_count == 0 && !device->report_open && !device->listing && !device->list_wanted;
        device->acting = true;
    }
    af_msg_destroy (&sync);
}

static bool
s_act_notify (fleet_t *self, fleet_device_t *device)
{
    fleet_device_t *target = s_other (self, device, true);
    if (!target)
        return false;
    af_msg_t *notify = af_msg_new (AF_MSG_NOTIFY);
    memcpy (notify->device_id, target->id, sizeof notify->device_id);
    snprintf (notify->kind, sizeof notify->kind, "fleet");
    uint8_t body [8];
    uint32_t counter = ++device->notify_counter;
    memcpy (body, &device->index, 4);
    memcpy (body + 4, &counter, 4);
    af_msg_set_body (notify, body, sizeof body);
    if (fleet_request (self, device, FC_NOTIFY, notify, target->index))
        device->acting = true;
    af_msg_destroy (&notify);
    return true;
}

static bool
s_act_push (fleet_t *self, fleet_device_t *device)
{
    fleet_device_t *target = s_other (self, device, false);
    if (!target || !self->push_count)
        return false;
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    uint32_t program = self->push_programs [fleet_uniform (self, self->push_count)];
    snprintf (push->program, sizeof push->program, "%s", self->programs [program]);
    af_msg_add_target (push, target->id);
    snprintf (push->node_version, sizeof push->node_version, "%s", AF_VERSION);
    fleet_req_t *req = fleet_request (self, device, FC_PUSH, push, target->index);
    if (req) {
        req->change = program;
        device->acting = true;
    }
    af_msg_destroy (&push);
    return true;
}

void
fleet_act (fleet_t *self, fleet_device_t *device)
{
    uint32_t total = 0;
    for (int i = 0; i < ACT_COUNT; i++)
        total += self->config.mix [i];
    uint32_t draw = total? fleet_uniform (self, total): 0;
    fleet_act_t act = ACT_REPORT;
    for (int i = 0; i < ACT_COUNT; i++) {
        if (draw < self->config.mix [i]) {
            act = (fleet_act_t) i;
            break;
        }
        draw -= self->config.mix [i];
    }
    self->stats.actions++;
    bool done = true;
    switch (act) {
        case ACT_SYNC: fleet_sync (self, device); break;
        case ACT_NOTIFY: done = s_act_notify (self, device); break;
        case ACT_PUSH: done = s_act_push (self, device); break;
        default: done = false; break;
    }
    if (!done)
        s_act_report (self, device);
}

//  --------------------------------------------------------------------------
//  Answers

void
fleet_sync_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    device->acting = false;
    if (!device->synced) {
        device->synced = true;
        self->first_syncs++;
    }
    if (msg->id == AF_MSG_ERROR) {
        fleet_error (self, device, FC_SYNC, msg, msg->code >= 500);
        return;
    }
    self->stats.syncs++;
    self->stats.sync_programs += msg->prog_count;
    for (uint32_t i = 0; i < msg->device_count; i++) {
        fleet_device_t *other = fleet_device_by_id (self, msg->devices [i].id);
        if (other && other->account != device->account)
            fleet_unexpected (self, device, "SYNC_DIFF names device %s of another account", msg->devices [i].id);
    }
    if (!req->exact || req->change != device->change)
        return;             //  the device's list moved since: nothing exact to check
    self->stats.sync_checked++;
    uint32_t *mark = self->scratch_marks;
    for (uint32_t i = 0; i < device->app_count; i++)
        mark [device->apps [i].program] = 1;
    for (uint32_t i = 0; i < msg->prog_count; i++) {
        const af_prog_t *prog = &msg->progs [i];
        size_t program = (size_t) zhashx_lookup (self->program_index, prog->program);
        if (program && mark [program - 1] && prog->holder_count)
            fleet_unexpected (self, device, "SYNC_DIFF lists '%s' as lacking, which the broker has in this "
                              "device's list", prog->program);
    }
    for (uint32_t i = 0; i < device->app_count; i++)
        mark [device->apps [i].program] = 0;
}

void
fleet_notify_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    (void) req;
    device->acting = false;
    if (msg->id == AF_MSG_OK)
        self->stats.notify_ok++;
    else
    if (msg->code == AF_E_UNAVAILABLE) {
        //  The target went offline since the device looked (SPEC 5.15)
        self->stats.notify_offline++;
        fleet_error (self, device, FC_NOTIFY, msg, true);
    }
    else
        fleet_error (self, device, FC_NOTIFY, msg, false);
}

void
fleet_on_notify (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    if (streq (msg->kind, "fleet")) {
        uint32_t sender = UINT32_MAX;
        if (msg->body_size == 8)
            memcpy (&sender, msg->body, 4);
        if (sender >= self->device_count) {
            fleet_unexpected (self, device, "a NOTIFY whose body is not one of ours (%u bytes)", msg->body_size);
            return;
        }
        fleet_device_t *from = &self->devices [sender];
        if (from->account != device->account)
            fleet_unexpected (self, device, "a NOTIFY from device %u of another account", sender);
        else
        if (!streq (msg->device_id, from->id))
            fleet_unexpected (self, device, "a NOTIFY from device %s names it %s", from->id, msg->device_id);
        else
            self->stats.notify_received++;
    }
    else
    if (streq (msg->kind, "installed"))
        self->stats.installed_notices++;
    else
        self->stats.other_notices++;
}

void
fleet_push_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg)
{
    device->acting = false;
    if (msg->id == AF_MSG_ERROR) {
        fleet_error (self, device, FC_PUSH, msg, msg->code >= 500);
        return;
    }
    fleet_device_t *target = &self->devices [req->arg];
    unsigned char id [AF_ID_SIZE];
    if (af_id_from_hex (msg->push_id, id) != AF_OK || msg->result_count != 1
    ||  !streq (msg->results [0].device_id, target->id) || !streq (msg->program, self->programs [req->change])) {
        fleet_unexpected (self, device, "PUSH_ACCEPTED does not answer the PUSH of %s to %s",
                          self->programs [req->change], target->id);
        return;
    }
    const char *state = msg->results [0].state;
    static const char *states [] = { "offered", "queued", "no-fit", "refused", "failed" };
    int which = -1;
    for (int i = 0; i < 5; i++)
        if (streq (state, states [i]))
            which = i;
    if (which < 0) {
        fleet_unexpected (self, device, "PUSH_ACCEPTED with target state '%s'", state);
        return;
    }
    self->stats.push_states [which]++;
    if (which == 3)
        fleet_unexpected (self, device, "a push to %s of its own account refused: %s", target->id,
                          msg->results [0].reason);
    if (which >= 2)
        return;             //  no-fit; failed (the matcher did not answer): nothing queued
    //  The target may have its offer already (it came on its own socket)
    fleet_push_t *push = fleet_push_find (self, msg->push_id, true);
    if (push->accepted) {
        fleet_unexpected (self, device, "PUSH_ACCEPTED with the ID of an earlier push, %s", msg->push_id);
        return;
    }
    if (push->initiator != UINT32_MAX && (push->initiator != device->index || push->target != target->index))
        fleet_unexpected (self, device, "push %s: its offer came from another device", msg->push_id);
    push->initiator = device->index;
    push->target = target->index;
    push->program = req->change;
    push->accepted = true;
    self->stats.offers_acked++;
    if (!push->result)
        self->open_offers++;
}
