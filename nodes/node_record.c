/*  =========================================================================
    node_record - the install record after a GET, on both ends (SPEC 5.47a)

    The source: a GET's notice in an outbox item carries an ask; the node
    exports its install record of the program (af_install_record_export)
    and answers RECORD_PUT with it, or with a code and a reason when it has
    none to give (not installed here any more, larger than the wire's
    AF_MAX_RECORD_MSG, unreadable), with why no user data went when the
    notice asked for it (node_getdata.c sends that first, then calls
    here). The notice's item is acknowledged once
    the broker answered (OK, or a 4xx: answered before, expired, unknown),
    not before: a node killed meanwhile, or a 5xx, gets the item again at
    its next login and answers again (the broker takes one answer per ask).

    The asker: a RECORD item is written to HOME/records/PROGRAM.json
    (af_file_write: synced, renamed) before it is acknowledged, then applied
    to the installed program (af_install_record_apply: only what the
    package declares) when no offer of the program is still being received
    or installed here; an install that finishes later applies it then
    (node_record_installed). A RECORD with a code (the source had none, or
    did not come in time) is shown and kept. Each item is handled once: the
    file keeps its item ID and state (pending, applied, failed, told). A
    pending record of a program that is not installed within
    NODE_RECORD_KEEP_S is dropped (logged) at the node's next start. The
    outcome goes to the notifications (kind "record").
    =========================================================================
*/
#include "node_int.h"

#include <sodium.h>

//  --------------------------------------------------------------------------
//  The source's side

static void
s_ack (af_node_t *self, const char *item)
{
    af_msg_t *ack = af_msg_new (AF_MSG_ACK);
    af_strcopy (ack->item, sizeof ack->item, item);
    node_send (self, ack);
    af_msg_destroy (&ack);
}

static bool
s_put_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (!answer)
        return true;                    //  the session ended: the item comes again
    if (answer->id == AF_MSG_OK)
        zsys_info ("node: install record of %s sent for the asking device", pending->program);
    else
    if (answer->id == AF_MSG_ERROR && answer->code >= 500) {
        zsys_warning ("node: the broker did not take the install record of %s: %s (%s); it is sent again when "
                      "the notice comes again", pending->program, answer->reason,
                      af_code_name ((int) answer->code));
        return true;
    }
    else
        zsys_info ("node: the ask for the install record of %s is closed: %s (%s)", pending->program,
                   answer->id == AF_MSG_ERROR? answer->reason: af_msg_command_name (answer->id),
                   answer->id == AF_MSG_ERROR? af_code_name ((int) answer->code): "");
    s_ack (self, pending->push);        //  the notice's item: answered for good
    return true;
}

//  The notice's body: "PROGRAM ASKER[ ACCOUNT]"
void
node_record_notice_program (const af_msg_t *notice, char program [AF_MAX_PROGRAM + 1])
{
    size_t len = 0;
    while (len < notice->body_size && len < AF_MAX_PROGRAM && notice->body [len] != ' ')
        len++;
    memcpy (program, notice->body, len);
    program [len] = 0;
}

void
node_record_answer_ask (af_node_t *self, const af_msg_t *notice, const char *item, const char *data_reason)
{
    char program [AF_MAX_PROGRAM + 1];
    node_record_notice_program (notice, program);
    af_msg_t *put = af_msg_new (AF_MSG_RECORD_PUT);
    af_strcopy (put->ask, sizeof put->ask, notice->ask);
    af_strcopy (put->program, sizeof put->program, program);
    af_strcopy (put->device_id, sizeof put->device_id, notice->device_id);
    char err [AF_MAX_REASON + 1] = "";
    json_t *record = NULL;
    int code = af_program_check (program, err, sizeof err) == AF_OK?
               af_install_record_export (self->config.home, program, &record, err, sizeof err): AF_E_MALFORMED;
    char *text = record? json_dumps (record, JSON_COMPACT): NULL;
    json_decref (record);
    if (code == AF_OK && (!text || strlen (text) > AF_MAX_RECORD_MSG)) {
        code = AF_E_TOO_BIG;
        snprintf (err, sizeof err, "its install record is larger than %d bytes", AF_MAX_RECORD_MSG);
    }
    //  Why the user data asked for does not come goes with the record, or
    //  after the reason there is none
    if (code == AF_OK) {
        put->data = (uint8_t *) text;
        put->data_size = (uint32_t) strlen (text);
        text = NULL;
        af_strcopy (put->reason, sizeof put->reason, data_reason? data_reason: "");
    }
    else {
        put->code = code >= 400 && code <= 599? (uint32_t) code: AF_E_INTERNAL;
        snprintf (put->reason, sizeof put->reason, "%s%s%s", err, data_reason && *data_reason? "; ": "",
                  data_reason? data_reason: "");
        zsys_warning ("node: no install record of %s to send: %s", program, err);
    }
    free (text);
    pending_t *pending = node_request (self, s_put_answer, REQ_SESSION | REQ_PER_SESSION, NULL, put);
    af_strcopy (pending->program, sizeof pending->program, program);
    af_strcopy (pending->push, sizeof pending->push, item);
}

//  --------------------------------------------------------------------------
//  The asker's side

static bool
s_busy (af_node_t *self, const char *program)
{
    for (job_t *job = (job_t *) zlistx_first (self->jobs); job; job = (job_t *) zlistx_next (self->jobs))
        if (streq (job->program, program) && job->state != JOB_REPORTING)
            return true;
    return false;
}

//  Apply program's pending record now if it can be: installed here, no
//  offer of it under way
static void
s_try (af_node_t *self, const char *program)
{
    char name [AF_MAX_PROGRAM + 32], err [AF_MAX_REASON + 1];
    snprintf (name, sizeof name, "records/%s.json", program);
    json_t *doc = node_json_load (self, name);
    const char *state = json_string_value (json_object_get (doc, "state"));
    if (!doc || !state || !streq (state, "pending") || s_busy (self, program)) {
        json_decref (doc);
        return;
    }
    af_install_info_t info;
    bool found = false;
    if (af_install_record_read (self->config.home, program, &info, &found) != AF_OK || !found) {
        json_decref (doc);
        return;                         //  not installed (yet): kept
    }
    const char *from = json_string_value (json_object_get (doc, "from"));
    int code = af_install_record_apply (self->config.home, program, json_object_get (doc, "record"), err,
                                        sizeof err);
    json_object_set_new (doc, "state", json_string (code == AF_OK? "applied": "failed"));
    json_object_set_new (doc, "reason", json_string (code == AF_OK? "": err));
    json_object_set_new (doc, "at", json_integer ((json_int_t) zclock_time ()));
    node_json_save (self, name, doc);
    if (code == AF_OK)
        node_tell (self, "record", from? from: "", "%s: the install record of device %.8s was applied", program,
                   from? from: "?");
    else
        node_tell (self, "record", from? from: "", "%s: the install record of device %.8s was not applied: %s",
                   program, from? from: "?", err);
    json_decref (doc);
}

//  With its record the source says why the user data the GET asked for
//  does not come (SPEC 5.47): kept with the ask's entry in doc, unless some
//  data came for it already; true if it is new (to tell)
static bool
s_data_note (json_t *doc, const af_msg_t *msg)
{
    if (msg->code || !*msg->reason || node_getdata_entry (doc, msg->ask, false))
        return false;
    json_t *entry = node_getdata_entry (doc, msg->ask, true);
    json_object_set_new (entry, "from", json_string (msg->device_id));
    json_object_set_new (entry, "state", json_string ("none"));
    json_object_set_new (entry, "reason", json_string (msg->reason));
    return true;
}

void
node_record_on_item (af_node_t *self, af_msg_t *msg, const char *item)
{
    char name [AF_MAX_PROGRAM + 32];
    snprintf (name, sizeof name, "records/%s.json", msg->program);
    json_t *seen = node_json_load (self, name);
    const char *seen_item = json_string_value (json_object_get (seen, "item"));
    bool again = seen_item && streq (seen_item, item);
    if (!again) {
        json_t *doc = json_pack ("{s:s, s:s, s:s, s:I, s:I}", "item", item, "ask", msg->ask, "from", msg->device_id,
                                 "received", (json_int_t) zclock_time (), "code", (json_int_t) msg->code);
        //  What came of the user data of this program's GETs stays
        if (json_is_array (json_object_get (seen, "data")))
            json_object_set (doc, "data", json_object_get (seen, "data"));
        json_t *record = NULL;
        json_error_t jerr;
        if (msg->data_size)
            record = json_loadb ((const char *) msg->data, msg->data_size, JSON_REJECT_DUPLICATES, &jerr);
        if (record && !msg->code)
            json_object_set_new (doc, "record", record);
        else
            json_decref (record);
        const char *state = record && !msg->code? "pending": "told";
        json_object_set_new (doc, "state", json_string (state));
        json_object_set_new (doc, "reason", json_string (msg->code? msg->reason: record? "":
                                                         "the record is not JSON"));
        bool no_data = s_data_note (doc, msg);
        if (zsys_dir_create ("%s/records", self->config.home) || node_json_save (self, name, doc)) {
            json_decref (doc);
            json_decref (seen);
            return;                     //  not acknowledged: it comes again
        }
        json_decref (doc);
        if (msg->code)
            node_tell (self, "record", msg->device_id, "%s: no install record from device %.8s: %s", msg->program,
                       msg->device_id, msg->reason);
        else
        if (!record)
            node_tell (self, "record", msg->device_id, "%s: the install record of device %.8s is not JSON; dropped",
                       msg->program, msg->device_id);
        if (no_data)
            node_tell (self, "data", msg->device_id, "%s: no user data came from device %.8s: %s", msg->program,
                       msg->device_id, msg->reason);
    }
    json_decref (seen);
    s_ack (self, item);
    s_try (self, msg->program);
}

void
node_record_installed (af_node_t *self, const char *program)
{
    s_try (self, program);
}

void
node_record_start (af_node_t *self)
{
    char dir [600];
    snprintf (dir, sizeof dir, "%s/records", self->config.home);
    zdir_t *records = zdir_new (dir, "-");
    zfile_t **files = records? zdir_flatten (records): NULL;
    uint64_t now = (uint64_t) zclock_time ();
    for (size_t i = 0; files && files [i]; i++) {
        const char *base = strrchr (zfile_filename (files [i], NULL), '/');
        char program [AF_MAX_PROGRAM + 1];
        size_t len = base? strlen (base + 1): 0;
        if (len <= 5 || len - 5 > AF_MAX_PROGRAM || !streq (base + 1 + len - 5, ".json"))
            continue;
        memcpy (program, base + 1, len - 5);
        program [len - 5] = 0;
        if (af_program_check (program, NULL, 0) != AF_OK)
            continue;
        char name [AF_MAX_PROGRAM + 32];
        snprintf (name, sizeof name, "records/%s.json", program);
        json_t *doc = node_json_load (self, name);
        const char *state = json_string_value (json_object_get (doc, "state"));
        uint64_t received = (uint64_t) json_integer_value (json_object_get (doc, "received"));
        if (state && streq (state, "pending") && received + (uint64_t) NODE_RECORD_KEEP_S * 1000 < now) {
            zsys_warning ("node: the install record of %s from device %s waited %d s for its install; dropped",
                          program, json_string_value (json_object_get (doc, "from")), NODE_RECORD_KEEP_S);
            json_object_set_new (doc, "state", json_string ("failed"));
            json_object_set_new (doc, "reason", json_string ("not installed here in time; dropped"));
            node_json_save (self, name, doc);
        }
        json_decref (doc);
        s_try (self, program);
    }
    zdir_flatten_free (&files);
    zdir_destroy (&records);
}
