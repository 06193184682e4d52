/*  =========================================================================
    node_getdata - a GET's user data, on both ends (S2.8 with S0.5; SPEC
    5.47 "With the user data")

    `get PROGRAM --from DEVICE --with-data` is the user's consent, on the
    asking device, to what `push PROGRAM --to ASKER --with-data` on the
    source is: the app's data (HOME/data/PROGRAM/) goes along. The broker
    tells the source through its outbox with a notice that has an ask and
    withData. The source here does what that push does (node_upload.c: the
    same packing, UPLOAD and PUSH), the PUSH naming the ask, and then
    answers the ask with its install record (node_record.c), saying why if
    no data went (none here, refused). The notice's item is acknowledged
    when the broker answered the RECORD_PUT, not before; a node killed on
    the way, a 5xx or a session that ends gets the item again at its next
    login and does it all again. Notices are answered one at a time, in
    the order they came (there is one upload at a time): a queue, once per
    item, moved on by each end and by the timer.

    So the source may push an ask's data more than once (it died after its
    PUSH and before its RECORD_PUT's answer), with other bytes if its data
    changed meanwhile; the broker refuses a push for an ask that is closed,
    but cannot know about one whose record has not come. The asker makes
    the import happen once: HOME/records/PROGRAM.json keeps, per ask, the
    push whose data is imported and its state, written durably before the
    data replaces the app's (intent before the effect). An offer of another
    push for an ask whose data is imported, or being imported, installs
    what it must and imports nothing; the same push offered again after a
    kill imports again if its import had not finished (the same bytes).
    =========================================================================
*/
#include "node_int.h"

//  --------------------------------------------------------------------------
//  The source's side

//  One notice to answer: its item, and a copy of what it said
typedef struct {
    char item [AF_ID_HEX + 1];
    af_msg_t *notice;
    bool started;                   //  its upload and push are under way
} data_ask_t;

static void
s_data_ask_free (void **item)
{
    data_ask_t *entry = (data_ask_t *) *item;
    if (entry) {
        af_msg_destroy (&entry->notice);
        free (entry);
        *item = NULL;
    }
}

void
node_getdata_new (af_node_t *self)
{
    self->data_asks = zlistx_new ();
    zlistx_set_destructor (self->data_asks, s_data_ask_free);
}

void
node_getdata_destroy (af_node_t *self)
{
    zlistx_destroy (&self->data_asks);
}

static data_ask_t *
s_find (af_node_t *self, const char *item)
{
    for (data_ask_t *entry = (data_ask_t *) zlistx_first (self->data_asks); entry;
         entry = (data_ask_t *) zlistx_next (self->data_asks))
        if (streq (entry->item, item))
            return entry;
    return NULL;
}

static void s_next (af_node_t *self);

//  The entry is done with (answered, or left for the item to come again)
static void
s_drop (af_node_t *self, data_ask_t *entry)
{
    void *handle = zlistx_find (self->data_asks, entry);
    if (handle)
        zlistx_delete (self->data_asks, handle);
    s_next (self);
}

//  The push's answer, or why it did not go: a 5xx, no answer or a session
//  gone leaves the notice for its next delivery; anything else is final,
//  and the install record follows, with why no data went if none did
static bool
s_pushed (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    data_ask_t *entry = s_find (self, pending->push);
    if (!entry)
        return true;
    if (!answer || (answer->id == AF_MSG_ERROR && (answer->code >= 500 || answer->code == AF_E_NOT_LOGGED_IN))) {
        zsys_warning ("node: the user data of %s for device %.8s did not go (%s); again when its notice comes again",
                      pending->program, entry->notice->device_id, answer? answer->reason: "no answer");
        s_drop (self, entry);
        return true;
    }
    char reason [AF_MAX_REASON + 1] = "";
    if (answer->id == AF_MSG_PUSH_ACCEPTED && answer->result_count == 1) {
        node_push_accepted (self, answer);
        const af_target_t *target = &answer->results [0];
        if (streq (target->state, "offered") || streq (target->state, "queued"))
            zsys_info ("node: the user data of %s goes to device %.8s (push %s)", pending->program,
                       target->device_id, answer->push_id);
        else
            snprintf (reason, sizeof reason, "its user data was not sent: %s (%s)", target->reason, target->state);
    }
    else
    if (answer->id == AF_MSG_ERROR && answer->code != AF_E_ANSWERED && answer->code != AF_E_ASK_EXPIRED)
        snprintf (reason, sizeof reason, "its user data was not sent: %s", answer->reason);
    else
    if (answer->id != AF_MSG_ERROR)
        snprintf (reason, sizeof reason, "its user data was not sent: unexpected %s from the broker",
                  af_msg_command_name (answer->id));
    //  A closed ask (469, 475): the record's answer says so, and ends it
    if (*reason)
        zsys_warning ("node: %s: %s", pending->program, reason);
    node_record_answer_ask (self, entry->notice, entry->item, reason);
    s_drop (self, entry);
    return true;
}

//  The first notice's turn, when no upload runs: pack, UPLOAD, PUSH
static void
s_next (af_node_t *self)
{
    data_ask_t *entry = (data_ask_t *) zlistx_first (self->data_asks);
    if (!entry || entry->started || self->upload || !self->logged_in)
        return;
    char program [AF_MAX_PROGRAM + 1];
    node_record_notice_program (entry->notice, program);
    if (af_program_check (program, NULL, 0) != AF_OK) {
        node_record_answer_ask (self, entry->notice, entry->item, NULL);    //  refused there, with why
        s_drop (self, entry);
        return;
    }
    entry->started = true;
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    af_strcopy (push->program, sizeof push->program, program);
    af_msg_add_target (push, entry->notice->device_id);
    af_strcopy (push->ask, sizeof push->ask, entry->notice->ask);
    push->with_data = true;
    node_attest (self, push);
    zsys_info ("node: device %.8s asked for %s with its user data (ask %s): sending it", entry->notice->device_id,
               program, entry->notice->ask);
    node_upload_start (self, push, s_pushed, REQ_SESSION | REQ_PER_SESSION, NULL, entry->item);
}

void
node_getdata_on_notice (af_node_t *self, const af_msg_t *notice, const char *item)
{
    if (s_find (self, item))
        return;                         //  delivered again while queued here
    if (zlistx_size (self->data_asks) >= NODE_MAX_DATA_ASKS) {
        zsys_warning ("node: %d notices with user data to send queued; item %s comes again at the next login",
                      NODE_MAX_DATA_ASKS, item);
        return;
    }
    data_ask_t *entry = (data_ask_t *) zmalloc (sizeof (data_ask_t));
    assert (entry);
    af_strcopy (entry->item, sizeof entry->item, item);
    entry->notice = af_msg_new (AF_MSG_NOTIFY);
    af_strcopy (entry->notice->device_id, sizeof entry->notice->device_id, notice->device_id);
    af_strcopy (entry->notice->kind, sizeof entry->notice->kind, notice->kind);
    af_strcopy (entry->notice->ask, sizeof entry->notice->ask, notice->ask);
    af_msg_set_body (entry->notice, notice->body, notice->body_size);
    entry->notice->with_data = true;
    zlistx_add_end (self->data_asks, entry);
    s_next (self);
}

void
node_getdata_tick (af_node_t *self)
{
    s_next (self);                      //  an upload of a push ended meanwhile
}

//  --------------------------------------------------------------------------
//  The asker's side: records/PROGRAM.json "data", one entry per ask

//  The entry for ask in doc's "data" (created, the oldest going past
//  NODE_DATA_KEEP, when create), or NULL
json_t *
node_getdata_entry (json_t *doc, const char *ask, bool create)
{
    json_t *data = json_object_get (doc, "data");
    size_t index;
    json_t *entry;
    json_array_foreach (data, index, entry) {
        const char *seen = json_string_value (json_object_get (entry, "ask"));
        if (seen && streq (seen, ask))
            return entry;
    }
    if (!create)
        return NULL;
    if (!json_is_array (data)) {
        data = json_array ();
        json_object_set_new (doc, "data", data);
    }
    while (json_array_size (data) >= NODE_DATA_KEEP)
        json_array_remove (data, 0);
    entry = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "ask", ask, "push", "", "from", "", "state", "",
                       "reason", "", "at", (json_int_t) zclock_time ());
    json_array_append_new (data, entry);
    return entry;
}

static json_t *
s_doc (af_node_t *self, const char *program, char *name, size_t namelen)
{
    snprintf (name, namelen, "records/%s.json", program);
    json_t *doc = node_json_load (self, name);
    if (!json_is_object (doc)) {
        json_decref (doc);
        doc = json_object ();
    }
    return doc;
}

bool
node_getdata_seen (af_node_t *self, const job_t *job, char *why, size_t whylen)
{
    if (!*job->ask)
        return false;
    char name [AF_MAX_PROGRAM + 32];
    json_t *doc = s_doc (self, job->program, name, sizeof name);
    json_t *entry = node_getdata_entry (doc, job->ask, false);
    const char *push = json_string_value (json_object_get (entry, "push"));
    const char *state = json_string_value (json_object_get (entry, "state"));
    bool seen = push && *push && state
             && (streq (state, "imported") || (streq (state, "importing") && !streq (push, job->push)));
    if (seen)
        snprintf (why, whylen, "the user data of this get (ask %.8s) came with push %.8s already; not imported "
                  "again", job->ask, push);
    json_decref (doc);
    return seen;
}

int
node_getdata_begin (af_node_t *self, const job_t *job, char *err, size_t errlen)
{
    char name [AF_MAX_PROGRAM + 32];
    json_t *doc = s_doc (self, job->program, name, sizeof name);
    json_t *entry = node_getdata_entry (doc, job->ask, true);
    json_object_set_new (entry, "push", json_string (job->push));
    json_object_set_new (entry, "from", json_string (job->from));
    json_object_set_new (entry, "state", json_string ("importing"));
    json_object_set_new (entry, "at", json_integer ((json_int_t) zclock_time ()));
    int code = zsys_dir_create ("%s/records", self->config.home) || node_json_save (self, name, doc)?
               AF_E_INTERNAL: AF_OK;
    if (code != AF_OK)
        snprintf (err, errlen, "cannot record the import in %s/%s", self->config.home, name);
    json_decref (doc);
    return code;
}

void
node_getdata_end (af_node_t *self, const job_t *job, int code, const char *err)
{
    char name [AF_MAX_PROGRAM + 32];
    json_t *doc = s_doc (self, job->program, name, sizeof name);
    json_t *entry = node_getdata_entry (doc, job->ask, true);
    json_object_set_new (entry, "state", json_string (code == AF_OK? "imported": "failed"));
    json_object_set_new (entry, "reason", json_string (code == AF_OK? "": err));
    json_object_set_new (entry, "at", json_integer ((json_int_t) zclock_time ()));
    if (node_json_save (self, name, doc))
        zsys_warning ("node: cannot record the import of %s's user data in %s", job->program, name);
    json_decref (doc);
    if (code == AF_OK)
        node_tell (self, "data", job->from, "%s: the user data of device %.8s was imported (it replaced what was "
                   "here)", job->program, job->from);
    else
        node_tell (self, "data", job->from, "%s: the user data of device %.8s was not imported: %s", job->program,
                   job->from, err);
}
