/*  =========================================================================
    handle_backup - BACKUP_PUT, BACKUPS, BACKUP_GET, RESTORE (SPEC 5.48-5.50)

    Issue 15 (S4.1-S4.6). A device backs up an app of its own: what
    identifies it, its version, and optionally its configuration sealed
    with the account secret (af_backups keeps several versions a program,
    under the account's quota). Any device of the account can list the
    backups and restore one: the broker checks there is a backup (of that
    version), asks the matcher for the package of that version, or the
    newest with `latest`, that fits the restoring device's own description
    (another platform's backup is matched by version name, SPEC 5.50), and
    pushes it to the device itself through the push path (the same offer,
    signed metadata, transfer, DONE and RESULT as any push). With nothing
    fitting the node gets the matcher's RESOLVED, with a recommendation
    of another program if it asked for one.

    The broker stores each record as the device sent it, with the MAC the
    device made from the account secret (SPEC 5.48), which the broker can
    neither make nor check: the restoring device checks it, so a record
    changed here is refused there (nodes/node_backup.c).

    The broker cannot make a device go back to an older version: the node
    accepts an older package only for a restore its user asked for, which
    it recorded before it sent RESTORE (nodes/node_backup.c).
    =========================================================================
*/
#include "broker_int.h"

//  A store code of af_backups as the node's answer
static void
s_failed (af_broker_t *self, session_t *session, af_msg_t *msg, int code, af_msg_t *list)
{
    if (code == AF_E_NO_BACKUP)
        broker_error (self, session, msg, AF_E_NO_BACKUP, "no backup of %s in account '%s' (appferry backup %s)",
                      msg->program, session->account, msg->program);
    else
    if (code == AF_E_NO_VERSION) {
        char versions [AF_MAX_REASON + 1] = "";
        size_t len = 0;
        for (uint32_t i = 0; i < list->backup_count && len < sizeof versions - 1; i++)
            len += (size_t) snprintf (versions + len, sizeof versions - len, "%s%s", i? ", ": "",
                                      list->backups [i].version_name);
        broker_error (self, session, msg, AF_E_NO_VERSION, "no backup of %s at version %s; backed up: %s",
                      msg->program, msg->version_name, versions);
    }
    else
    if (code == AF_E_QUOTA)
        broker_error (self, session, msg, AF_E_QUOTA, "a limit of the account: at most %d backups and %d MiB "
                      "of them (quota/backups, quota/backup_bytes)", self->config.quota_backups,
                      self->config.quota_backup_mib);
    else
        broker_error (self, session, msg, code == AF_E_MALFORMED? AF_E_MALFORMED: AF_E_INTERNAL, "%s",
                      code == AF_E_MALFORMED? "a backup names a program and a version":
                      "the broker's store failed; try again later");
}

//  --------------------------------------------------------------------------
//  BACKUP_PUT: the node says what it has; the broker says who and when

void
handle_backup_put (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (msg->backup_count != 1) {
        broker_error (self, session, msg, AF_E_MALFORMED, "BACKUP_PUT carries exactly one backup");
        return;
    }
    af_backup_t entry = msg->backups [0];
    snprintf (entry.device_id, sizeof entry.device_id, "%s", session->device_id);
    snprintf (entry.platform, sizeof entry.platform, "%s", session->device.platform);
    entry.at = (uint64_t) zclock_time ();
    snprintf (msg->program, sizeof msg->program, "%s", entry.program);
    int code = af_backups_put (self->backups, session->account, &entry, msg->data, msg->data_size);
    if (code != AF_OK) {
        s_failed (self, session, msg, code, NULL);
        return;
    }
    zsys_info ("broker: backup of %s %s by %s of '%s'%s", entry.program, entry.version_name,
               session->device_id, session->account, msg->data_size? " with its configuration": "");
    broker_ok (self, session, msg);
}

//  --------------------------------------------------------------------------
//  BACKUPS, BACKUP_GET

void
handle_backups (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *list = af_msg_new (AF_MSG_BACKUP_LIST);
    int code = af_backups_list (self->backups, session->account, msg->program, list);
    if (code != AF_OK) {
        s_failed (self, session, msg, code, list);
        af_msg_destroy (&list);
    }
    else
        broker_reply (self, session, msg, &list);
}

void
handle_backup_get (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *list = af_msg_new (AF_MSG_BACKUP_LIST);
    int code = af_backups_get (self->backups, session->account, msg->program, msg->version_name, list);
    if (code != AF_OK) {
        s_failed (self, session, msg, code, list);
        af_msg_destroy (&list);
    }
    else
        broker_reply (self, session, msg, &list);
}

//  --------------------------------------------------------------------------
//  RESTORE

//  A restore waiting for the matcher's answer for this device
typedef struct {
    af_broker_t *broker;
    broker_caller_t caller;
    char program [AF_MAX_PROGRAM + 1];
    char version [AF_MAX_VERSION_NAME + 1];     //  "" with latest
} restore_t;

static void
s_restore_fit (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    restore_t *restore = (restore_t *) arg;
    af_broker_t *self = restore->broker;
    af_msg_t *reply = *reply_p;
    session_t *session = broker_session (self, restore->caller.session);
    const uint8_t *rid = restore->caller.has_rid? restore->caller.rid: NULL;
    if (!session || !session->logged_in)
        ;                               //  gone: nobody to answer
    else
    if (!reply)
        broker_error_rid (self, session, rid, AF_E_UNAVAILABLE, "the matcher did not answer; try again later");
    else
    if (reply->id == AF_MSG_RESOLVED && (reply->fit == AF_FIT_PACKAGE || reply->fit == AF_FIT_STORE_LINK)) {
        zsys_info ("broker: restore of %s %s to %s of '%s'", restore->program, reply->package.version_name,
                   session->device_id, session->account);
        broker_push_resolved (self, session, &restore->caller, restore->program, reply_p);
    }
    else
        broker_answer (self, &restore->caller, reply_p);    //  RESOLVED (nothing fits) or ERROR
    free (restore);
}

void
handle_restore (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    //  There must be a backup, of the version named if one is
    af_msg_t *list = af_msg_new (AF_MSG_BACKUP_LIST);
    int code = af_backups_get (self->backups, session->account, msg->program, msg->version_name, list);
    if (code != AF_OK) {
        s_failed (self, session, msg, code, list);
        af_msg_destroy (&list);
        return;
    }
    const af_backup_t *backup = &list->backups [0];
    af_msg_t *resolve = af_msg_new (AF_MSG_RESOLVE);
    snprintf (resolve->program, sizeof resolve->program, "%s", msg->program);
    resolve->has_device = true;
    resolve->device = session->device;
    resolve->recommend = msg->recommend;
    if (!msg->latest) {
        //  The version backed up: by its name, and on its own platform by its code too
        snprintf (resolve->version_name, sizeof resolve->version_name, "%s", backup->version_name);
        if (streq (backup->platform, session->device.platform))
            resolve->version_code = backup->version_code;
    }
    restore_t *restore = (restore_t *) zmalloc (sizeof (restore_t));
    assert (restore);
    restore->broker = self;
    broker_caller (&restore->caller, session, msg);
    snprintf (restore->program, sizeof restore->program, "%s", msg->program);
    snprintf (restore->version, sizeof restore->version, "%s", resolve->version_name);
    af_msg_destroy (&list);
    if (af_dispatch_submit (self->dispatch, "matcher", &resolve, s_restore_fit, restore, 0) != AF_OK) {
        af_msg_destroy (&resolve);
        free (restore);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the matcher queue is full; try again later");
    }
}
