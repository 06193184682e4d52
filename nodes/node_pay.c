/*  =========================================================================
    node_pay - paid apps from the CLI: browse, get, pay-confirm, purchases
    (S0.3-S0.7; protocol/SPEC.md 5.46, 5.47, 10.12)

    `get PROGRAM FROM` sends GET; FROM is a device of the account or,
    when it names none, a contact of the address book (its tokens: a
    friend's app; `--with-data` is refused then, user data never moves
    between people); from a device, `--with-data` asks for the app's user
    data too (GET withData; the source sends it, node_getdata.c). `browse
    CONTACT friend` browses a contact. A free app (or one the account paid
    for before) is answered PUSH_ACCEPTED: the package that fits this device
    comes from the server's store, as a sync pick does, and the CLI follows
    the push. A paid one is answered PAYMENT_REQUIRED: with a token given
    (`--confirm-payment`), the node confirms at once (PAY_CONFIRM) and the
    PAID transfer is answered PUSH_ACCEPTED; without one, the notice goes
    back to the CLI, which asks on a terminal and confirms with
    `pay-confirm INTENT TOKEN`. GET and PAY_CONFIRM are REQ_RETRY requests
    (node_request.c): a 5xx, no answer, or a new session (a broker killed
    and restarted) sends the same request again, after a jittered, capped
    back-off, until an answer that is not a 5xx or the user's deadline
    (the CLI's --timeout, the last argument of both verbs); the CLI is told
    each time. That is safe because both are idempotent: a GET asked again
    gets the same open intent (or "entitled"), a confirmation sent again
    charges nothing more (the payments service charges each intent at most
    once, SPEC 8.9). Both need an account, not a session: taken while the
    node logs in again, they wait for it up to the same deadline.
    =========================================================================
*/
#include "node_int.h"

//  The payment notice, for the CLI
static json_t *
s_notice_doc (const af_msg_t *notice)
{
    return json_pack ("{s:{s:s, s:I, s:s, s:s, s:s, s:I, s:s}}", "paymentRequired", "program", notice->program,
                      "price", (json_int_t) notice->price, "currency", notice->currency, "intent", notice->intent,
                      "deviceId", notice->device_id, "expires", (json_int_t) notice->expires,
                      "sourceAccount", notice->source_account);
}

//  GET's answer: the transfer, or the notice (confirmed at once with a token)
static bool
s_get_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (answer && answer->id == AF_MSG_PAYMENT_REQUIRED) {
        if (!*pending->token) {
            node_ctl_reply (self, pending->client, true, s_notice_doc (answer));
            return true;
        }
        zsys_info ("node: confirming payment %s for %s (%u %s)", answer->intent, answer->program, answer->price,
                   answer->currency);
        af_msg_t *confirm = af_msg_new (AF_MSG_PAY_CONFIRM);
        af_strcopy (confirm->intent, sizeof confirm->intent, answer->intent);
        af_strcopy (confirm->token, sizeof confirm->token, pending->token);
        confirm->with_data = pending->with_data;
        node_request_retry (self, node_cli_push_answer, REQ_SESSION, pending->client, confirm,
                            pending->retry_until);
        return true;
    }
    return node_cli_push_answer (self, pending, answer);
}

//  Is token one a payment processor could have issued? (SPEC 5.46)
static bool
s_token_valid (const char *token)
{
    size_t len = strnlen (token, AF_MAX_PAY_TOKEN + 1);
    for (size_t i = 0; i < len; i++)
        if (token [i] <= 0x20 || token [i] >= 0x7F)
            return false;
    return len >= 1 && len <= AF_MAX_PAY_TOKEN;
}

//  The user's deadline for a payment request: the verb's argument at index
//  (whole seconds, 1..NODE_PAY_DEADLINE_MAX_S; absent: the request
//  timeout), as a zclock_mono time; 0 (and the client told) if malformed
static int64_t
s_deadline (af_node_t *self, cli_t *cli, int index)
{
    long seconds = (self->config.request_timeout_ms + 999) / 1000;
    if (cli->args > index) {
        char *end = NULL;
        seconds = strtol (cli->arg [index], &end, 10);
        if (!*cli->arg [index] || *end || seconds < 1 || seconds > NODE_PAY_DEADLINE_MAX_S) {
            node_ctl_error (self, cli->client, AF_E_MALFORMED, "a deadline is 1..%d seconds",
                            NODE_PAY_DEADLINE_MAX_S);
            return 0;
        }
    }
    return zclock_mono () + (int64_t) seconds * 1000;
}

//  A GET or BROWSE naming a contact of the book, if spec is one of them
//  and not a device of the account (a device is looked for first); NULL
//  when it is not in the book
static af_msg_t *
s_contact (af_node_t *self, af_msg_id_t id, const char *spec, char *name, size_t namelen)
{
    char err [AF_MAX_REASON + 1], device [AF_ID_HEX + 1];
    if (node_device_find (self, spec, false, device, err, sizeof err) == AF_OK)
        return NULL;
    af_msg_t *msg = af_msg_new (id);
    if (node_friends_contact (self, spec, msg, name, namelen, err, sizeof err) != AF_OK || !msg->element_count)
        af_msg_destroy (&msg);
    return msg;
}

//  get PROGRAM FROM [TOKEN [DEADLINE [data]]] (TOKEN "": ask the user;
//  FROM a device of the account, or a contact of the book; data: the
//  app's user data too, from a device of the account: SPEC 5.47)
void
node_pay_get (af_node_t *self, cli_t *cli)
{
    char err [AF_MAX_REASON + 1], source [AF_ID_HEX + 1], name [AF_MAX_CONTACT_NAME + 1];
    const char *token = cli->args > 2? cli->arg [2]: "";
    int64_t deadline = s_deadline (self, cli, 3);
    if (!deadline)
        return;
    if (af_program_check (cli->arg [0], err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", cli->arg [0], err);
        return;
    }
    if (*token && !s_token_valid (token)) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "a payment token is 1..%d printable characters",
                        AF_MAX_PAY_TOKEN);
        return;
    }
    //  From a friend: the package from the server's store, nothing of
    //  theirs; an app's user data never moves between people (S0.5)
    bool with_data = cli->args > 4 && streq (cli->arg [4], "data");
    af_msg_t *get = s_contact (self, AF_MSG_GET, cli->arg [1], name, sizeof name);
    if (get && with_data) {
        node_ctl_error (self, cli->client, AF_E_FORBIDDEN, "--with-data: an app's user data never moves between "
                        "people; '%s' is a contact, not a device of your account (get it without --with-data)",
                        name);
        af_msg_destroy (&get);
        return;
    }
    if (!get) {
        if (node_cli_named (self, cli, cli->arg [1], source) <= 0)
            return;
        get = af_msg_new (AF_MSG_GET);
        af_strcopy (get->device_id, sizeof get->device_id, source);
        //  The user's consent, on this device of the account, to what
        //  push --with-data on the source is (S2.8): its data comes too
        get->with_data = with_data;
    }
    af_strcopy (get->program, sizeof get->program, cli->arg [0]);
    pending_t *pending = node_request_retry (self, s_get_answer, REQ_AFTER_REPORTS, cli->client, get, deadline);
    af_strcopy (pending->token, sizeof pending->token, token);
    pending->with_data = with_data;
}

//  pay-confirm INTENT TOKEN [DEADLINE [data]] (data: the get it confirms
//  asked for the app's user data too)
void
node_pay_confirm (af_node_t *self, cli_t *cli)
{
    uint8_t id [AF_ID_SIZE];
    int64_t deadline = s_deadline (self, cli, 2);
    if (!deadline)
        return;
    if (af_id_from_hex (cli->arg [0], id) != AF_OK || !s_token_valid (cli->arg [1])) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "pay-confirm INTENT TOKEN: an intent is 32 hex digits, "
                        "a token 1..%d printable characters", AF_MAX_PAY_TOKEN);
        return;
    }
    af_msg_t *confirm = af_msg_new (AF_MSG_PAY_CONFIRM);
    af_strcopy (confirm->intent, sizeof confirm->intent, cli->arg [0]);
    af_strcopy (confirm->token, sizeof confirm->token, cli->arg [1]);
    confirm->with_data = cli->args > 3 && streq (cli->arg [3], "data");
    node_request_retry (self, node_cli_push_answer, REQ_SESSION, cli->client, confirm, deadline);
}

//  --------------------------------------------------------------------------
//  browse, purchases

static bool
s_browse_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_APP_LIST) {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
        return true;
    }
    json_t *apps = json_array ();
    for (uint32_t i = 0; i < answer->app_count; i++) {
        af_app_t *app = &answer->apps [i];
        json_array_append_new (apps, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:s}", "program",
                               app->program, "versionName", app->version_name, "fit", af_fit_name ((af_fit_t) app->fit),
                               "fitVersion", app->fit_version, "reason", app->reason,
                               "price", (json_int_t) app->price, "currency", app->currency,
                               "entitled", app->entitled, "share", app->share));
    }
    node_ctl_reply (self, pending->client, true, json_pack ("{s:s, s:s, s:o}", "deviceId", answer->device_id,
                    "contact", pending->device_name, "apps", apps));
    return true;
}

//  browse DEVICE, or browse CONTACT friend
void
node_pay_browse (af_node_t *self, cli_t *cli)
{
    char source [AF_ID_HEX + 1], name [AF_MAX_CONTACT_NAME + 1], err [AF_MAX_REASON + 1];
    af_msg_t *browse = af_msg_new (AF_MSG_BROWSE);
    if (cli->args > 1 && streq (cli->arg [1], "friend")) {
        int code = node_friends_contact (self, cli->arg [0], browse, name, sizeof name, err, sizeof err);
        if (code != AF_OK) {
            node_ctl_error (self, cli->client, code, "%s", err);
            af_msg_destroy (&browse);
            return;
        }
        pending_t *pending = node_request (self, s_browse_answer, REQ_AFTER_REPORTS, cli->client, browse);
        snprintf (pending->device_name, sizeof pending->device_name, "%s", name);
        return;
    }
    if (node_cli_named (self, cli, cli->arg [0], source) <= 0) {
        af_msg_destroy (&browse);
        return;
    }
    af_strcopy (browse->device_id, sizeof browse->device_id, source);
    node_request (self, s_browse_answer, REQ_AFTER_REPORTS, cli->client, browse);
}

static bool
s_purchases_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_PURCHASE_LIST) {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
        return true;
    }
    json_t *list = json_array ();
    for (uint32_t i = 0; i < answer->purchase_count; i++) {
        af_purchase_t *p = &answer->purchases [i];
        json_array_append_new (list, json_pack ("{s:s, s:I, s:s, s:s, s:I}", "program", p->program,
                               "price", (json_int_t) p->price, "currency", p->currency, "intent", p->intent,
                               "at", (json_int_t) p->at));
    }
    node_ctl_reply (self, pending->client, true, json_pack ("{s:o}", "purchases", list));
    return true;
}

void
node_pay_purchases (af_node_t *self, cli_t *cli)
{
    node_request (self, s_purchases_answer, REQ_SESSION, cli->client, af_msg_new (AF_MSG_PURCHASES));
}

//  --------------------------------------------------------------------------
//  The source's side: a GET's notice ("requested", "paid", "entitled"),
//  an outbox item. Shown once per item ID, whatever the broker delivers
//  again (an ACK lost with a connection); acknowledged by the caller.
void
node_pay_on_notice (af_node_t *self, af_msg_t **msg_p, const char *item)
{
    size_t index;
    json_t *entry;
    json_array_foreach (self->inbox, index, entry) {
        const char *seen = json_string_value (json_object_get (entry, "item"));
        if (seen && streq (seen, item))
            return;                     //  delivered again: shown already
    }
    zsys_info ("node: told through the outbox: %s %.*s", (*msg_p)->kind, (int) (*msg_p)->body_size,
               (const char *) (*msg_p)->body);
    uint64_t seen = self->notifications;
    node_on_notify (self, msg_p);
    size_t size = json_array_size (self->inbox);
    if (self->notifications > seen && size > 0)
        json_object_set_new (json_array_get (self->inbox, size - 1), "item", json_string (item));
}
