/*  =========================================================================
    node_pushes - the pushes this device starts (protocol/SPEC.md "Push")

    A push is accepted by the broker with each target's first state
    (PUSH_ACCEPTED), then each target's PROGRESS and final RESULT arrive;
    the node keeps the last pushes in HOME/pushes.json, so `appferry
    status` shows them after a restart. A PUSH carries what the broker's
    push policy checks (our version and the operator's attestations).
    Automatic mode (S1.9) is a push too: to this device, of what the
    account's other devices have.
    =========================================================================
*/
#include "node_int.h"

#include <errno.h>
#include <sys/stat.h>

//  What the broker's push policy checks: our version and the operator's
//  attestations (HOME-independent file of name=value lines, dated by mtime)
void
node_attest (af_node_t *self, af_msg_t *msg)
{
    snprintf (msg->node_version, sizeof msg->node_version, "%s", AF_VERSION);
    if (!*self->config.attest_file)
        return;
    FILE *file = fopen (self->config.attest_file, "r");
    struct stat st;
    if (!file || fstat (fileno (file), &st)) {
        zsys_warning ("node: cannot read attestations from %s: %s", self->config.attest_file, strerror (errno));
        if (file)
            fclose (file);
        return;
    }
    msg->attest_time = (uint64_t) st.st_mtim.tv_sec * 1000 + (uint64_t) st.st_mtim.tv_nsec / 1000000;
    char line [256];
    while (fgets (line, sizeof line, file) && msg->attest_count < AF_MAX_ATTEST) {
        line [strcspn (line, "\r\n")] = 0;
        if (*line && *line != '#' && strchr (line, '=') && strlen (line) <= AF_MAX_ATTEST_LEN)
            af_msg_add_attest (msg, line);
    }
    fclose (file);
}

void
node_pushes_save (af_node_t *self)
{
    while (json_array_size (self->pushes) > NODE_MAX_PUSHES)
        json_array_remove (self->pushes, 0);
    node_json_save (self, "pushes.json", self->pushes);
}

void
node_pushes_load (af_node_t *self)
{
    json_t *doc = node_json_load (self, "pushes.json");
    if (json_is_array (doc)) {
        json_decref (self->pushes);
        self->pushes = doc;
    }
    else
        json_decref (doc);
}

json_t *
node_push_find (af_node_t *self, const char *push_id)
{
    size_t index;
    json_t *entry;
    json_array_foreach (self->pushes, index, entry)
        if (streq (json_string_value (json_object_get (entry, "pushId"))? : "", push_id))
            return entry;
    return NULL;
}

json_t *
node_push_target (json_t *push, const char *device_id, bool create)
{
    json_t *targets = json_object_get (push, "targets");
    size_t index;
    json_t *target;
    json_array_foreach (targets, index, target)
        if (streq (json_string_value (json_object_get (target, "deviceId"))? : "", device_id))
            return target;
    if (!create)
        return NULL;
    target = json_pack ("{s:s, s:s}", "deviceId", device_id, "state", "offered");
    json_array_append_new (targets, target);
    return target;
}

//  A push this device started was accepted: remember it
json_t *
node_push_accepted (af_node_t *self, af_msg_t *msg)
{
    json_t *targets = json_array ();
    for (uint32_t i = 0; i < msg->result_count; i++) {
        af_target_t *t = &msg->results [i];
        json_t *target = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
            "deviceId", t->device_id, "name", t->name, "state", t->state, "versionName", t->version_name,
            "reason", t->reason, "bytes", (json_int_t) 0, "total", (json_int_t) 0);
        if (t->code)                    //  refused 402 (not bought), failed 503
            json_object_set_new (target, "code", json_integer (t->code));
        json_array_append_new (targets, target);
    }
    json_t *entry = json_pack ("{s:s, s:s, s:I, s:o}", "pushId", msg->push_id, "program", msg->program,
                               "at", (json_int_t) zclock_time (), "targets", targets);
    json_array_append_new (self->pushes, entry);
    node_pushes_save (self);
    return entry;                       //  borrowed: the list owns it
}

//  A target's progress, for `appferry status` and push --wait
void
node_push_progress (af_node_t *self, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    json_t *push = node_push_find (self, msg->push_id);
    json_t *target = push? node_push_target (push, msg->device_id, false): NULL;
    if (target) {
        json_object_set_new (target, "bytes", json_integer ((json_int_t) msg->offset));
        json_object_set_new (target, "total", json_integer ((json_int_t) msg->total));
    }
}

//  A target's final state (from our outbox)
void
node_push_result (af_node_t *self, af_msg_t *msg)
{
    json_t *push = node_push_find (self, msg->push_id);
    if (!push) {
        //  Started before this node's pushes.json was lost: keep it anyway
        push = json_pack ("{s:s, s:s, s:I, s:[]}", "pushId", msg->push_id, "program", msg->program,
                          "at", (json_int_t) zclock_time (), "targets");
        json_array_append_new (self->pushes, push);
    }
    if (streq (msg->device_id, self->device_id))
        zhashx_delete (self->auto_installs, msg->program);
    json_t *target = node_push_target (push, msg->device_id, true);
    json_object_set_new (target, "state", json_string (msg->state));
    json_object_set_new (target, "versionName", json_string (msg->version_name));
    json_object_set_new (target, "reason", json_string (msg->reason));
    json_object_set_new (target, "finishedAt", json_integer ((json_int_t) zclock_time ()));
    node_pushes_save (self);
    zsys_info ("node: push %s of %s: device %s %s%s%s", msg->push_id, msg->program, msg->device_id,
               msg->state, *msg->reason? ": ": "", msg->reason);
}

//  Ask the broker to install a program on this device, from the store
void
node_install_self (af_node_t *self, node_answer_fn *on_answer, zframe_t *client, const char *program)
{
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    snprintf (push->program, sizeof push->program, "%s", program);
    af_msg_add_target (push, "self");
    node_request (self, on_answer, REQ_SESSION, client, push);
}

//  --------------------------------------------------------------------------
//  Automatic mode (S1.9): install here what the other devices have, when a
//  package fits, as they report it (and after every login)

//  Offered: the RESULT will tell. Refused or failed at once (a paid
//  program the account has not bought: 402): logged, and tried again at
//  the next sync, so a purchase made meanwhile installs then
static bool
s_auto_install_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    (void) pending;
    if (!answer || answer->id != AF_MSG_PUSH_ACCEPTED || answer->result_count != 1)
        return true;
    af_target_t *target = &answer->results [0];
    if (!streq (target->state, "offered") && !streq (target->state, "queued")) {
        zsys_info ("node: automatic mode: %s not installed: %s %s", answer->program, target->state, target->reason);
        zhashx_delete (self->auto_installs, answer->program);
    }
    return true;
}

static bool
s_auto_diff (af_node_t *self, pending_t *pending, af_msg_t *diff)
{
    (void) pending;
    if (!diff || diff->id != AF_MSG_SYNC_DIFF)
        return true;
    af_msg_ungroup (diff);
    af_install_info_t info;
    bool found;
    for (uint32_t i = 0; i < diff->app_count; i++) {
        af_app_t *app = &diff->apps [i];
        //  What another device has now (not what the account once had), that fits
        if (!*app->device_id || (app->fit != AF_FIT_PACKAGE && app->fit != AF_FIT_STORE_LINK)
        ||  zhashx_lookup (self->auto_installs, app->program)
        ||  (af_install_record_read (self->config.home, app->program, &info, &found) == AF_OK && found))
            continue;
        zhashx_insert (self->auto_installs, app->program, (void *) 1);
        zsys_info ("node: automatic mode: installing %s (device %.8s has it)", app->program, app->device_id);
        node_install_self (self, s_auto_install_answer, NULL, app->program);
    }
    return true;
}

void
node_auto_sync (af_node_t *self)
{
    if (!self->config.sync_auto || !self->logged_in)
        return;
    af_msg_t *sync = af_msg_new (AF_MSG_SYNC);
    sync->grouped = true;
    node_request (self, s_auto_diff, REQ_AFTER_REPORTS, NULL, sync);
}
