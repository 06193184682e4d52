/*  =========================================================================
    node_devices - devices named as a person names them (issue 9, section 10)

    The CLI names devices in `push --to`, `uninstall --on`, `notify` and
    `apps --device`. The wire only carries device IDs (32 hex digits), so
    the node resolves what the user typed against the account's device
    list it holds (pushed by the broker on every change, or asked for
    again when a name is not in it): the device's name as `devices` shows
    it (exactly, else ignoring case), a prefix of its ID of at least
    NODE_MIN_ID_PREFIX hex digits (as git and docker accept), or the full
    ID, passed on as it is. A name or prefix that fits more than one
    device is refused, with the candidates listed. Nothing changes on the
    wire.
    =========================================================================
*/
#include "node_int.h"

#include <ctype.h>

//  The device list as the broker sent it, kept (a copy of list)
void
node_devices_keep (af_node_t *self, af_msg_t *list)
{
    af_msg_t *copy = af_msg_new (AF_MSG_DEVICE_LIST);
    assert (copy);
    snprintf (copy->account, sizeof copy->account, "%s", list->account);
    af_msg_set_device_count (copy, list->device_count);
    if (list->device_count)
        memcpy (copy->devices, list->devices, list->device_count * sizeof (af_device_t));
    af_msg_destroy (&self->list);
    self->list = copy;
    self->list_at = zclock_time ();
}

static bool
s_is_hex (const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (!isxdigit ((unsigned char) text [i]))
            return false;
    return length > 0;
}

//  The candidates that fit, listed for the error: "1a2b3c4d (Ana's tablet), ..."
static void
s_candidates (af_node_t *self, bool *fits, char *out, size_t size)
{
    size_t at = 0;
    *out = 0;
    for (uint32_t i = 0; i < self->list->device_count && at < size; i++)
        if (fits [i])
            at += (size_t) snprintf (out + at, size - at, "%s%.12s (%s)", at? ", ": "",
                                     self->list->devices [i].id, self->list->devices [i].name);
}

//  Which devices of the list fit spec by one rule: 0 name, 1 name
//  ignoring case, 2 ID prefix. Returns how many, marks them in fits.
static uint32_t
s_fit (af_node_t *self, const char *spec, int rule, bool *fits)
{
    uint32_t count = 0;
    char lower [AF_ID_HEX + 1] = "";
    if (rule == 2) {
        for (size_t i = 0; i < AF_ID_HEX && spec [i]; i++)
            lower [i] = (char) tolower ((unsigned char) spec [i]);
        lower [AF_ID_HEX] = 0;
    }
    for (uint32_t i = 0; self->list && i < self->list->device_count; i++) {
        const af_device_t *device = &self->list->devices [i];
        fits [i] = rule == 0? streq (device->name, spec):
                   rule == 1? strcasecmp (device->name, spec) == 0:
                               strncmp (device->id, lower, strlen (lower)) == 0;
        count += fits [i];
    }
    return count;
}

int
node_device_find (af_node_t *self, const char *spec, bool special, char *id, char *err, size_t errlen)
{
    size_t length = strlen (spec);
    *err = 0;
    if ((special && (streq (spec, "all") || streq (spec, "self")))
    ||  (length == AF_ID_HEX && s_is_hex (spec, length) && strspn (spec, "0123456789abcdef") == length)) {
        snprintf (id, AF_ID_HEX + 1, "%s", spec);     //  as it is: the broker decides
        return AF_OK;
    }
    bool fits [AF_MAX_DEVICES + 1];
    for (int rule = 0; rule < 3; rule++) {
        if (rule == 2 && !(s_is_hex (spec, length) && length <= AF_ID_HEX))
            break;
        if (rule == 2 && length < NODE_MIN_ID_PREFIX) {
            snprintf (err, errlen, "'%s': name a device by its name, or by at least %d hex digits of its ID",
                      spec, NODE_MIN_ID_PREFIX);
            return AF_E_MALFORMED;
        }
        uint32_t count = s_fit (self, spec, rule, fits);
        if (count == 1) {
            for (uint32_t i = 0; i < self->list->device_count; i++)
                if (fits [i])
                    snprintf (id, AF_ID_HEX + 1, "%s", self->list->devices [i].id);
            return AF_OK;
        }
        if (count > 1) {
            char candidates [AF_MAX_REASON + 1];
            s_candidates (self, fits, candidates, sizeof candidates);
            snprintf (err, errlen, "'%s' could be %u devices: %s; say which (more of its ID)",
                      spec, count, candidates);
            return AF_E_MALFORMED;
        }
    }
    snprintf (err, errlen, "'%s' is not a device of this account (appferry devices lists them)", spec);
    return AF_E_NO_DEVICE;
}
