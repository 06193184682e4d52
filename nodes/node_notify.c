/*  =========================================================================
    node_notify - notifications this device receives (NOTIFY)

    Another device of the account sent them through the broker (5.16), or
    the broker did on its own, or the node tells the user what came of a
    GET (node_tell): the last NODE_MAX_INBOX are kept in memory
    for `appferry notifications`. Two kinds make the node act: "installed"
    (another device installed something: automatic mode syncs, S1.9) and
    "config" (a newer configuration of a shared app: fetch it, S1.7).
    =========================================================================
*/
#include "node_int.h"

#include <sodium.h>

void
node_on_notify (af_node_t *self, af_msg_t **msg_p)
{
    af_msg_t *msg = *msg_p;
    //  Text bodies are shown as text, anything else as hex
    bool text = msg->body_size > 0;
    for (uint32_t i = 0; text && i < msg->body_size; i++)
        text = msg->body [i] >= 0x20 || msg->body [i] == '\n' || msg->body [i] == '\t';
    char *shown = (char *) malloc (2 * (size_t) msg->body_size + 1);
    assert (shown);
    if (text) {
        memcpy (shown, msg->body, msg->body_size);
        shown [msg->body_size] = 0;
    }
    else
        sodium_bin2hex (shown, 2 * (size_t) msg->body_size + 1, msg->body, msg->body_size);
    json_t *entry = json_pack ("{s:s, s:s, s:s, s:s, s:I}", "from", msg->device_id, "kind", msg->kind,
                               text? "text": "hex", shown, "encoding", text? "text": "hex",
                               "at", (json_int_t) zclock_time ());
    free (shown);
    if (entry) {
        json_array_append_new (self->inbox, entry);
        if (json_array_size (self->inbox) > NODE_MAX_INBOX)
            json_array_remove (self->inbox, 0);
    }
    self->notifications++;
    if (self->config.verbose)
        zsys_info ("node: notification '%s' from %s", msg->kind, msg->device_id);
    if (streq (msg->kind, "installed"))
        node_auto_sync (self);
    char program [AF_MAX_PROGRAM + 1] = "";
    if (streq (msg->kind, "config") && msg->body_size <= AF_MAX_PROGRAM) {
        memcpy (program, msg->body, msg->body_size);
        program [msg->body_size] = 0;
        if (json_object_get (json_object_get (self->shares, "shared"), program))
            node_config_get (self, NULL, NODE_CONFIG_SYNC, program, false);
    }
}

void
node_tell (af_node_t *self, const char *kind, const char *from, const char *format, ...)
{
    char text [AF_MAX_REASON * 2];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    af_msg_t *note = af_msg_new (AF_MSG_NOTIFY);
    af_strcopy (note->device_id, sizeof note->device_id, from);
    af_strcopy (note->kind, sizeof note->kind, kind);
    af_msg_set_body (note, text, strlen (text));
    zsys_info ("node: %s", text);
    node_on_notify (self, &note);
    af_msg_destroy (&note);
}

//  `appferry notifications`
json_t *
node_notifications_doc (af_node_t *self)
{
    return json_pack ("{s:O, s:I}", "notifications", self->inbox, "received", (json_int_t) self->notifications);
}
