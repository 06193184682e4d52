/*  =========================================================================
    node_friends - contacts, friends, shares, pull, push and the inbox (issue 13)

    The node's side of S3 and B4. `contacts import` reads an address book
    (af_contacts: vCard or CSV, numbers in E.164), blinds every distinct
    number (af_oprf), has the broker's contacts service evaluate them in
    requests of at most AF_MAX_CONTACTS_EVAL, unblinds, and uploads the
    tokens (the first AF_CONTACT_TOKEN_SIZE bytes of each output) with
    CONTACTS_PUT. Only tokens leave the device: names and numbers stay in
    HOME/contacts.json, which maps a friend's token back to the name the
    user gave it. `contacts me` does the same for the account's own
    numbers. A CONTACT on the command line is a name of that book (or one
    of its numbers); the broker is sent its tokens, never the name.

    A RECOMMENDATION arrives as an outbox item: it is written to
    HOME/inbox.json (synced, then renamed) before it is acknowledged, so
    a crash loses none, and one delivered twice is kept once (item ID).
    =========================================================================
*/
#include "node_int.h"
#include "af_contacts.h"
#include "af_phone.h"
#include "af_oprf.h"
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#define CONTACTS_FILE   "contacts.json"
#define INBOX_FILE      "inbox.json"
#define TOKEN           AF_CONTACT_TOKEN_SIZE
#define TOKEN_HEX       (2 * TOKEN)

typedef uint8_t af_token_t [TOKEN];

//  An import (or `contacts me`) on its way: numbers, blinds, tokens
typedef struct {
    bool own;                       //  contacts me: the account's own numbers
    af_contacts_t *book;            //  import: the parsed book (names)
    size_t count;                   //  distinct numbers
    char (*numbers) [AF_E164_SIZE];
    uint8_t (*blinds) [AF_OPRF_SCALAR_SIZE];
    af_token_t *tokens;
    size_t at;                      //  evaluated (then: uploaded) so far
    size_t sent;                    //  in the request in flight
    bool uploading;                 //  evaluated: now CONTACTS_PUTs
    bool put_first;                 //  the first (replacing) put went
    char country [8];
    char key_id [AF_OPRF_KEY_ID_HEX + 1];
    uint32_t refused;               //  items af_contacts refused
} import_t;

struct _node_friends_t {
    import_t *import;               //  at most one at a time
};

static void
s_import_free (import_t **import_p)
{
    import_t *import = *import_p;
    if (import) {
        af_contacts_destroy (&import->book);
        free (import->numbers);
        if (import->blinds)
            sodium_memzero (import->blinds, import->count * AF_OPRF_SCALAR_SIZE);
        free (import->blinds);
        free (import->tokens);
        free (import);
        *import_p = NULL;
    }
}

static node_friends_t *
s_friends (af_node_t *self)
{
    if (!self->friends) {
        self->friends = (node_friends_t *) zmalloc (sizeof (node_friends_t));
        assert (self->friends);
    }
    return self->friends;
}

void
node_friends_destroy (af_node_t *self)
{
    if (self->friends) {
        s_import_free (&self->friends->import);
        free (self->friends);
        self->friends = NULL;
    }
}

//  Write a JSON file whole and on disk before it replaces the old one
static int
s_save_synced (af_node_t *self, const char *name, json_t *doc)
{
    char path [600], tmp [610];
    snprintf (path, sizeof path, "%s/%s", self->config.home, name);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    char *text = json_dumps (doc, JSON_COMPACT);
    int fd = text? open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600): -1;
    size_t len = text? strlen (text): 0;
    bool ok = fd >= 0 && write (fd, text, len) == (ssize_t) len && fsync (fd) == 0;
    if (fd >= 0 && close (fd))
        ok = false;
    ok = ok && rename (tmp, path) == 0;
    free (text);
    if (!ok)
        zsys_error ("node: cannot save %s: %s", path, strerror (errno));
    return ok? 0: -1;
}

//  --------------------------------------------------------------------------
//  The book on this device, and contacts named on the command line

static json_t *
s_book_load (af_node_t *self)
{
    json_t *doc = node_json_load (self, CONTACTS_FILE);
    if (!json_is_object (doc)) {
        json_decref (doc);
        doc = json_pack ("{s:[], s:[]}", "contacts", "me");
    }
    return doc;
}

static void
s_hex (const uint8_t *token, char hex [TOKEN_HEX + 1])
{
    sodium_bin2hex (hex, TOKEN_HEX + 1, token, TOKEN);
}

//  The tokens of the contact spec names (its name, case aside, or one of
//  its numbers) into msg's tokens; its name into name. AF_OK, or
//  AF_E_NO_DEVICE / AF_E_MALFORMED with err.
static int
s_contact_tokens (af_node_t *self, const char *spec, af_msg_t *msg, char *name, size_t namelen, char *err,
                  size_t errlen)
{
    json_t *book = s_book_load (self);
    char e164 [AF_E164_SIZE] = "", why [AF_MAX_REASON + 1];
    const char *country = json_string_value (json_object_get (book, "country"));
    bool number = af_phone_normalize (spec, country? country: "", e164, why, sizeof why) == AF_OK;
    size_t index;
    json_t *contact, *found = NULL;
    json_array_foreach (json_object_get (book, "contacts"), index, contact) {
        const char *cname = json_string_value (json_object_get (contact, "name"));
        size_t i;
        json_t *n;
        if (cname && strcasecmp (cname, spec) == 0)
            found = contact;
        json_array_foreach (json_object_get (contact, "numbers"), i, n)
            if (number && json_string_value (n) && streq (json_string_value (n), e164))
                found = contact;
        if (found)
            break;
    }
    int code = AF_OK;
    json_t *tokens = found? json_object_get (found, "tokens"): NULL;
    if (!found) {
        snprintf (err, errlen, "'%s' is not in this device's address book (appferry contacts import FILE)", spec);
        code = AF_E_NO_DEVICE;
    }
    else {
        snprintf (name, namelen, "%s", json_string_value (json_object_get (found, "name")));
        size_t count = json_array_size (tokens) < AF_MAX_CONTACT_NUMBERS? json_array_size (tokens):
                       AF_MAX_CONTACT_NUMBERS;
        af_msg_set_element_count (msg, (uint32_t) (count? count: 1));
        msg->element_count = 0;
        for (size_t i = 0; i < count; i++) {
            const char *hex = json_string_value (json_array_get (tokens, i));
            size_t len;
            if (hex && sodium_hex2bin (msg->elements [msg->element_count], TOKEN, hex, strlen (hex),
                                       NULL, &len, NULL) == 0 && len == TOKEN)
                msg->element_count++;
        }
        if (msg->element_count == 0) {
            snprintf (err, errlen, "'%s' has no token: import the address book again", spec);
            code = AF_E_MALFORMED;
        }
    }
    json_decref (book);
    return code;
}

//  The name and number of the contact with token hex, or NULL
static json_t *
s_contact_of (json_t *book, const char *hex, const char **number)
{
    size_t index, i;
    json_t *contact, *token;
    json_array_foreach (json_object_get (book, "contacts"), index, contact)
        json_array_foreach (json_object_get (contact, "tokens"), i, token)
            if (json_string_value (token) && streq (json_string_value (token), hex)) {
                *number = json_string_value (json_array_get (json_object_get (contact, "numbers"), i));
                return contact;
            }
    return NULL;
}

//  --------------------------------------------------------------------------
//  contacts import FILE [COUNTRY], contacts me NUMBER[,NUMBER...] [COUNTRY]

static void s_import_next (af_node_t *self, zframe_t *client);

//  The book's contacts, each number with its token, as contacts.json keeps them
static json_t *
s_import_doc (af_node_t *self, import_t *import)
{
    json_t *doc = s_book_load (self);
    char hex [TOKEN_HEX + 1];
    if (import->own) {
        json_t *me = json_array ();
        for (size_t i = 0; i < import->count; i++) {
            s_hex (import->tokens [i], hex);
            json_array_append_new (me, json_pack ("{s:s, s:s}", "number", import->numbers [i], "token", hex));
        }
        json_object_set_new (doc, "me", me);
        return doc;
    }
    json_t *contacts = json_array ();
    for (size_t c = 0; c < af_contacts_size (import->book); c++) {
        const af_contact_t *contact = af_contacts_get (import->book, c);
        json_t *numbers = json_array (), *tokens = json_array ();
        for (uint32_t n = 0; n < contact->number_count; n++)
            for (size_t i = 0; i < import->count; i++)
                if (streq (import->numbers [i], contact->numbers [n])) {
                    s_hex (import->tokens [i], hex);
                    json_array_append_new (numbers, json_string (contact->numbers [n]));
                    json_array_append_new (tokens, json_string (hex));
                    break;
                }
        json_array_append_new (contacts, json_pack ("{s:s, s:o, s:o}", "name", contact->name,
                               "numbers", numbers, "tokens", tokens));
    }
    json_object_set_new (doc, "contacts", contacts);
    json_object_set_new (doc, "country", json_string (import->country));
    json_object_set_new (doc, "keyId", json_string (import->key_id));
    return doc;
}

//  The evaluated chunk: unblinded into tokens. AF_OK, or AF_E_MALFORMED
//  with *bad the first element refused
static int
s_import_finalize (import_t *import, af_msg_t *answer, size_t *bad)
{
    size_t chunk = import->sent;
    const uint8_t **inputs = (const uint8_t **) malloc ((chunk + 1) * sizeof *inputs);
    size_t *sizes = (size_t *) malloc ((chunk + 1) * sizeof *sizes);
    uint8_t (*outputs) [AF_OPRF_OUTPUT_SIZE] = malloc ((chunk + 1) * AF_OPRF_OUTPUT_SIZE);
    assert (inputs && sizes && outputs);
    for (size_t i = 0; i < chunk; i++) {
        inputs [i] = (const uint8_t *) import->numbers [import->at + i];
        sizes [i] = strlen (import->numbers [import->at + i]);
    }
    int code = af_oprf_finalize_batch (chunk, inputs, sizes,
                                       (const uint8_t (*) [AF_OPRF_SCALAR_SIZE]) (import->blinds + import->at),
                                       (const uint8_t (*) [AF_OPRF_ELEMENT_SIZE]) answer->elements, outputs, bad);
    for (size_t i = 0; code == AF_OK && i < chunk; i++)
        memcpy (import->tokens [import->at + i], outputs [i], TOKEN);
    sodium_memzero (outputs, chunk * AF_OPRF_OUTPUT_SIZE);
    free (outputs);
    free (sizes);
    free (inputs);
    return code;
}

static bool
s_import_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    import_t *import = s_friends (self)->import;
    if (node_answer_failed (self, pending, answer) || !import) {
        s_import_free (&s_friends (self)->import);
        return true;
    }
    size_t bad = 0;
    if (!import->uploading && answer->id == AF_MSG_CONTACTS_EVALUATED && answer->element_count == import->sent) {
        if (s_import_finalize (import, answer, &bad) != AF_OK) {
            node_ctl_error (self, pending->client, AF_E_MALFORMED, "the contacts service answered an invalid "
                            "element for number %zu: nothing was uploaded", import->at + bad + 1);
            s_import_free (&s_friends (self)->import);
            return true;
        }
        if (*import->key_id && !streq (import->key_id, answer->key_id))
            zsys_warning ("node: the contacts service's key changed during the import");
        snprintf (import->key_id, sizeof import->key_id, "%s", answer->key_id);
        import->at += import->sent;
        if (import->at == import->count) {
            import->uploading = true;
            import->at = 0;
        }
    }
    else
    if (import->uploading && answer->id == AF_MSG_OK)
        import->at += import->sent;
    else {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
        s_import_free (&s_friends (self)->import);
        return true;
    }
    s_import_next (self, pending->client);
    return true;
}

//  Everything is on the broker: keep the book here, tell the CLI
static void
s_import_done (af_node_t *self, zframe_t *client)
{
    import_t *import = s_friends (self)->import;
    json_t *doc = s_import_doc (self, import);
    node_json_save (self, CONTACTS_FILE, doc);
    json_t *reply = import->own?
        json_pack ("{s:O, s:s}", "me", json_object_get (doc, "me"), "keyId", import->key_id):
        json_pack ("{s:I, s:I, s:I, s:s}", "contacts", (json_int_t) af_contacts_size (import->book),
                   "numbers", (json_int_t) import->count, "refused", (json_int_t) import->refused,
                   "keyId", import->key_id);
    json_decref (doc);
    node_ctl_reply (self, client, true, reply);
    s_import_free (&s_friends (self)->import);
}

static void
s_import_next (af_node_t *self, zframe_t *client)
{
    import_t *import = s_friends (self)->import;
    size_t left = import->count - import->at;
    size_t chunk = left < AF_MAX_CONTACTS_EVAL? left: AF_MAX_CONTACTS_EVAL;
    if (import->uploading && import->put_first && left == 0) {
        s_import_done (self, client);
        return;
    }
    af_msg_t *msg;
    if (!import->uploading) {
        msg = af_msg_new (AF_MSG_CONTACTS_EVAL);
        af_msg_set_element_count (msg, (uint32_t) chunk);
        for (size_t i = 0; i < chunk; i++) {
            const char *number = import->numbers [import->at + i];
            af_oprf_blind ((const uint8_t *) number, strlen (number), import->blinds [import->at + i],
                           msg->elements [i]);
        }
    }
    else {
        //  The first put replaces the account's book (or own numbers); the rest add
        msg = af_msg_new (AF_MSG_CONTACTS_PUT);
        snprintf (msg->op, sizeof msg->op, "%s", import->own? "own": import->put_first? "add": "replace");
        af_msg_set_element_count (msg, (uint32_t) (chunk? chunk: 1));
        msg->element_count = (uint32_t) chunk;
        memcpy (msg->elements, import->tokens + import->at, chunk * TOKEN);
        import->put_first = true;
    }
    import->sent = chunk;
    node_request (self, s_import_answer, REQ_SESSION, client, msg);
}

//  Room for count numbers, their blinds and tokens
static import_t *
s_import_new (bool own, size_t count, const char *country)
{
    import_t *import = (import_t *) zmalloc (sizeof (import_t));
    assert (import);
    import->own = own;
    import->count = count;
    import->numbers = calloc (count + 1, AF_E164_SIZE);
    import->blinds = calloc (count + 1, AF_OPRF_SCALAR_SIZE);
    import->tokens = (af_token_t *) calloc (count + 1, TOKEN);
    assert (import->numbers && import->blinds && import->tokens);
    snprintf (import->country, sizeof import->country, "%s", country);
    import->uploading = count == 0;
    return import;
}

//  The default country: given, else the book's, else none
static const char *
s_country (af_node_t *self, cli_t *cli, int arg, char *buf, size_t size)
{
    if (cli->arg [arg] && *cli->arg [arg]) {
        snprintf (buf, size, "%s", cli->arg [arg]);
        return buf;
    }
    json_t *book = s_book_load (self);
    const char *country = json_string_value (json_object_get (book, "country"));
    snprintf (buf, size, "%s", country? country: "");
    json_decref (book);
    return buf;
}

void
node_contacts_import (af_node_t *self, cli_t *cli)
{
    node_friends_t *friends = s_friends (self);
    char err [AF_MAX_REASON + 1], country [8];
    if (friends->import) {
        node_ctl_error (self, cli->client, AF_E_UNAVAILABLE, "an address book is being imported; try again later");
        return;
    }
    af_contacts_t *book = NULL;
    int code = af_contacts_load (cli->arg [0], s_country (self, cli, 1, country, sizeof country), &book,
                                 err, sizeof err);
    if (code != AF_OK) {
        node_ctl_error (self, cli->client, code, "%s", err);
        return;
    }
    import_t *import = s_import_new (false, af_contacts_number_count (book), country);
    for (size_t i = 0; i < import->count; i++)
        snprintf (import->numbers [i], AF_E164_SIZE, "%s", af_contacts_number (book, i));
    af_contacts_stats_t stats;
    af_contacts_stats (book, &stats);
    import->refused = stats.refused;
    import->book = book;
    friends->import = import;
    s_import_next (self, cli->client);
}

void
node_contacts_me (af_node_t *self, cli_t *cli)
{
    node_friends_t *friends = s_friends (self);
    char err [AF_MAX_REASON + 1], country [8], numbers [AF_MAX_OWN_NUMBERS][AF_E164_SIZE];
    if (friends->import) {
        node_ctl_error (self, cli->client, AF_E_UNAVAILABLE, "an address book is being imported; try again later");
        return;
    }
    s_country (self, cli, 1, country, sizeof country);
    char *copy = strdup (cli->arg [0]), *saved = NULL;
    size_t count = 0;
    int code = AF_OK;
    for (char *text = strtok_r (copy, ",", &saved); text && code == AF_OK; text = strtok_r (NULL, ",", &saved)) {
        if (count == AF_MAX_OWN_NUMBERS) {
            snprintf (err, sizeof err, "at most %d own numbers", AF_MAX_OWN_NUMBERS);
            code = AF_E_MALFORMED;
        }
        else
        if (af_phone_normalize (text, country, numbers [count], err, sizeof err) == AF_OK)
            count++;
        else
            code = AF_E_MALFORMED;
    }
    free (copy);
    if (code != AF_OK) {
        node_ctl_error (self, cli->client, code, "%s: %s", cli->arg [0], err);
        return;
    }
    import_t *import = s_import_new (true, count, country);
    memcpy (import->numbers, numbers, count * AF_E164_SIZE);
    friends->import = import;
    s_import_next (self, cli->client);
}

void
node_contacts_list (af_node_t *self, cli_t *cli)
{
    json_t *book = s_book_load (self);
    json_t *doc = json_pack ("{s:[], s:O}", "contacts", "me", json_object_get (book, "me"));
    size_t index;
    json_t *contact;
    json_array_foreach (json_object_get (book, "contacts"), index, contact)
        json_array_append_new (json_object_get (doc, "contacts"), json_pack ("{s:O, s:O}",
                               "name", json_object_get (contact, "name"),
                               "numbers", json_object_get (contact, "numbers")));
    json_decref (book);
    node_ctl_reply (self, cli->client, true, doc);
}

//  --------------------------------------------------------------------------
//  friends, block, unblock

static bool
s_friends_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_FRIEND_LIST) {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
        return true;
    }
    json_t *book = s_book_load (self), *list = json_array ();
    for (uint32_t i = 0; i < answer->element_count; i++) {
        char hex [TOKEN_HEX + 1];
        const char *number = NULL;
        s_hex (answer->elements [i], hex);
        json_t *contact = s_contact_of (book, hex, &number);
        if (contact)
            json_array_append_new (list, json_pack ("{s:O, s:s}", "name", json_object_get (contact, "name"),
                                   "number", number? number: ""));
    }
    json_decref (book);
    node_ctl_reply (self, pending->client, true, json_pack ("{s:o}", "friends", list));
    return true;
}

void
node_friends_list (af_node_t *self, cli_t *cli)
{
    node_request (self, s_friends_answer, REQ_SESSION, cli->client, af_msg_new (AF_MSG_FRIENDS));
}

//  A request naming a contact of the book by its tokens; NULL if refused
//  (the CLI was told)
static af_msg_t *
s_contact_request (af_node_t *self, cli_t *cli, af_msg_id_t id, const char *spec, char *name, size_t namelen)
{
    char err [AF_MAX_REASON + 1];
    af_msg_t *msg = af_msg_new (id);
    int code = s_contact_tokens (self, spec, msg, name, namelen, err, sizeof err);
    if (code != AF_OK) {
        node_ctl_error (self, cli->client, code, "%s", err);
        af_msg_destroy (&msg);
    }
    return msg;
}

static bool
s_ok_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer) || !pending->client)
        return true;                    //  (no client: one of a contact's numbers, not the last)
    if (answer->id == AF_MSG_OK)
        node_ctl_reply (self, pending->client, true, json_pack ("{s:s, s:s}", "done", pending->device_name,
                        "program", pending->program));
    else
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
    return true;
}

//  block CONTACT, unblock CONTACT (the verb says which)
void
node_friends_block (af_node_t *self, cli_t *cli)
{
    char name [AF_MAX_CONTACT_NAME + 1];
    af_msg_t *msg = s_contact_request (self, cli, AF_MSG_BLOCK, cli->arg [0], name, sizeof name);
    if (!msg)
        return;
    snprintf (msg->op, sizeof msg->op, "%s", streq (cli->verb, "unblock")? "unblock": "block");
    //  Every number of the contact: one request each, the last one answers
    uint32_t count = msg->element_count;
    for (uint32_t i = 0; i + 1 < count; i++) {
        af_msg_t *one = af_msg_new (AF_MSG_BLOCK);
        snprintf (one->op, sizeof one->op, "%s", msg->op);
        af_msg_set_element_count (one, 1);
        memcpy (one->elements [0], msg->elements [i], TOKEN);
        node_request (self, s_ok_answer, REQ_SESSION, NULL, one);
    }
    memmove (msg->elements [0], msg->elements [count - 1], TOKEN);
    msg->element_count = 1;
    pending_t *pending = node_request (self, s_ok_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->device_name, sizeof pending->device_name, "%s %s", cli->verb, name);
}

//  refuse all | none | contact CONTACT | accept CONTACT
void
node_friends_refuse (af_node_t *self, cli_t *cli)
{
    const char *op = cli->arg [0];
    char name [AF_MAX_CONTACT_NAME + 1] = "";
    af_msg_t *msg;
    if (streq (op, "all") || streq (op, "none"))
        msg = af_msg_new (AF_MSG_REFUSE);
    else
    if ((streq (op, "contact") || streq (op, "accept")) && cli->arg [1])
        msg = s_contact_request (self, cli, AF_MSG_REFUSE, cli->arg [1], name, sizeof name);
    else {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "usage: refuse all|none|contact NAME|accept NAME");
        return;
    }
    if (!msg)
        return;
    snprintf (msg->op, sizeof msg->op, "%s", op);
    uint32_t count = msg->element_count;
    for (uint32_t i = 0; i + 1 < count; i++) {
        af_msg_t *one = af_msg_new (AF_MSG_REFUSE);
        snprintf (one->op, sizeof one->op, "%s", op);
        af_msg_set_element_count (one, 1);
        memcpy (one->elements [0], msg->elements [i], TOKEN);
        node_request (self, s_ok_answer, REQ_SESSION, NULL, one);
    }
    if (count > 1) {
        memmove (msg->elements [0], msg->elements [count - 1], TOKEN);
        msg->element_count = 1;
    }
    pending_t *pending = node_request (self, s_ok_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->device_name, sizeof pending->device_name, "refuse %s%s%s", op, *name? " ": "", name);
}

//  --------------------------------------------------------------------------
//  share PROGRAM private|friends|public, share-list

void
node_friends_share (af_node_t *self, cli_t *cli)
{
    char err [AF_MAX_REASON + 1];
    const char *state = cli->arg [1];
    if (af_program_check (cli->arg [0], err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", cli->arg [0], err);
        return;
    }
    if (!streq (state, "private") && !streq (state, "friends") && !streq (state, "public")) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "share PROGRAM --private|--friends|--public");
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_SHARE);
    snprintf (msg->program, sizeof msg->program, "%s", cli->arg [0]);
    snprintf (msg->state, sizeof msg->state, "%s", state);
    pending_t *pending = node_request (self, s_ok_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->program, sizeof pending->program, "%s", cli->arg [0]);
    snprintf (pending->device_name, sizeof pending->device_name, "%s", state);
}

//  An app list (SHARE_LIST, FRIEND_APP_LIST) as the CLI shows it
static bool
s_apps_answer (af_node_t *self, pending_t *pending, af_msg_t *answer)
{
    if (node_answer_failed (self, pending, answer))
        return true;
    if (answer->id != AF_MSG_SHARE_LIST && answer->id != AF_MSG_FRIEND_APP_LIST) {
        node_ctl_error (self, pending->client, AF_E_INTERNAL, "unexpected %s from the broker",
                        af_msg_command_name (answer->id));
        return true;
    }
    json_t *apps = json_array ();
    for (uint32_t i = 0; i < answer->app_count; i++)
        json_array_append_new (apps, json_pack ("{s:s, s:s, s:s}", "program", answer->apps [i].program,
                               "versionName", answer->apps [i].version_name, "share", answer->apps [i].share));
    node_ctl_reply (self, pending->client, true, json_pack ("{s:s, s:o}", "contact", pending->device_name,
                    "apps", apps));
    return true;
}

void
node_friends_shares (af_node_t *self, cli_t *cli)
{
    node_request (self, s_apps_answer, REQ_SESSION, cli->client, af_msg_new (AF_MSG_SHARES));
}

//  --------------------------------------------------------------------------
//  friend-apps CONTACT, recommend PROGRAM CONTACT, friend-install CONTACT PROGRAM

void
node_friend_apps (af_node_t *self, cli_t *cli)
{
    char name [AF_MAX_CONTACT_NAME + 1];
    af_msg_t *msg = s_contact_request (self, cli, AF_MSG_FRIEND_APPS, cli->arg [0], name, sizeof name);
    if (!msg)
        return;
    pending_t *pending = node_request (self, s_apps_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->device_name, sizeof pending->device_name, "%s", name);
}

void
node_friend_recommend (af_node_t *self, cli_t *cli)
{
    char name [AF_MAX_CONTACT_NAME + 1], err [AF_MAX_REASON + 1];
    if (af_program_check (cli->arg [0], err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", cli->arg [0], err);
        return;
    }
    af_msg_t *msg = s_contact_request (self, cli, AF_MSG_RECOMMEND, cli->arg [1], name, sizeof name);
    if (!msg)
        return;
    snprintf (msg->program, sizeof msg->program, "%s", cli->arg [0]);
    pending_t *pending = node_request (self, s_ok_answer, REQ_SESSION, cli->client, msg);
    snprintf (pending->program, sizeof pending->program, "%s", cli->arg [0]);
    snprintf (pending->device_name, sizeof pending->device_name, "recommended to %s", name);
}

void
node_friend_install (af_node_t *self, cli_t *cli)
{
    char name [AF_MAX_CONTACT_NAME + 1], err [AF_MAX_REASON + 1];
    if (af_program_check (cli->arg [1], err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "'%s': %s", cli->arg [1], err);
        return;
    }
    af_msg_t *msg = s_contact_request (self, cli, AF_MSG_FRIEND_INSTALL, cli->arg [0], name, sizeof name);
    if (!msg)
        return;
    snprintf (msg->program, sizeof msg->program, "%s", cli->arg [1]);
    node_request (self, node_cli_push_answer, REQ_SESSION, cli->client, msg);
}

//  --------------------------------------------------------------------------
//  The inbox: recommendations received

//  A RECOMMENDATION item: kept (once) on disk, then acknowledged
void
node_friends_on_item (af_node_t *self, af_msg_t *msg, const char *item)
{
    json_t *inbox = node_json_load (self, INBOX_FILE);
    if (!json_is_array (inbox)) {
        json_decref (inbox);
        inbox = json_array ();
    }
    bool seen = false;
    size_t index;
    json_t *entry;
    json_array_foreach (inbox, index, entry)
        seen |= streq (json_string_value (json_object_get (entry, "item"))? : "", item);
    int rc = 0;
    if (!seen) {
        json_t *tokens = json_array ();
        for (uint32_t i = 0; i < msg->element_count; i++) {
            char hex [TOKEN_HEX + 1];
            s_hex (msg->elements [i], hex);
            json_array_append_new (tokens, json_string (hex));
        }
        json_array_append_new (inbox, json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o}", "item", item,
                               "account", msg->account, "program", msg->program, "versionName", msg->version_name,
                               "at", (json_int_t) msg->at, "tokens", tokens));
        while (json_array_size (inbox) > NODE_MAX_RECOMMENDATIONS)
            json_array_remove (inbox, 0);
        rc = s_save_synced (self, INBOX_FILE, inbox);
        zsys_info ("node: recommendation of %s from '%s'", msg->program, msg->account);
    }
    json_decref (inbox);
    if (rc == 0) {
        af_msg_t *ack = af_msg_new (AF_MSG_ACK);
        snprintf (ack->item, sizeof ack->item, "%s", item);
        node_send (self, ack);
        af_msg_destroy (&ack);
    }
}

void
node_friends_inbox (af_node_t *self, cli_t *cli)
{
    json_t *inbox = node_json_load (self, INBOX_FILE), *book = s_book_load (self), *list = json_array ();
    size_t index, i;
    json_t *entry, *token;
    json_array_foreach (inbox, index, entry) {
        const char *from = NULL, *number = NULL;
        json_array_foreach (json_object_get (entry, "tokens"), i, token) {
            json_t *contact = json_string_value (token)? s_contact_of (book, json_string_value (token), &number): NULL;
            if (contact && !from)
                from = json_string_value (json_object_get (contact, "name"));
        }
        json_t *shown = json_deep_copy (entry);
        json_object_del (shown, "tokens");
        json_object_set_new (shown, "from", json_string (from? from: "(not in your address book)"));
        json_array_append_new (list, shown);
    }
    json_decref (inbox);
    json_decref (book);
    node_ctl_reply (self, cli->client, true, json_pack ("{s:o}", "inbox", list));
}

//  inbox install N: friend-install from the Nth recommendation of the
//  inbox (1 is the oldest, as `appferry inbox` numbers them), by the
//  tokens of its sender's own numbers that came with it: the sender need
//  not be in this device's book, the broker checks friendship or a public
//  share as for friend-install. The file is ours, but checked as any input.
void
node_friends_inbox_install (af_node_t *self, cli_t *cli)
{
    char *end = NULL, err [AF_MAX_REASON + 1];
    long n = strtol (cli->arg [0], &end, 10);
    json_t *inbox = node_json_load (self, INBOX_FILE);
    json_t *entry = json_is_array (inbox) && end && *end == '\0' && n >= 1 && n <= NODE_MAX_RECOMMENDATIONS?
                    json_array_get (inbox, (size_t) n - 1): NULL;
    const char *program = json_string_value (json_object_get (entry, "program"));
    json_t *tokens = json_object_get (entry, "tokens");
    if (!entry) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "there is no recommendation %s in the inbox "
                        "(appferry inbox lists them, numbered from 1)", cli->arg [0]);
        json_decref (inbox);
        return;
    }
    if (!program || af_program_check (program, err, sizeof err) != AF_OK) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "recommendation %ld names no valid program", n);
        json_decref (inbox);
        return;
    }
    af_msg_t *msg = af_msg_new (AF_MSG_FRIEND_INSTALL);
    snprintf (msg->program, sizeof msg->program, "%s", program);
    size_t count = json_array_size (tokens) < AF_MAX_CONTACT_NUMBERS? json_array_size (tokens):
                   AF_MAX_CONTACT_NUMBERS;
    af_msg_set_element_count (msg, (uint32_t) (count? count: 1));
    msg->element_count = 0;
    for (size_t i = 0; i < count; i++) {
        const char *hex = json_string_value (json_array_get (tokens, i));
        size_t len;
        if (hex && sodium_hex2bin (msg->elements [msg->element_count], TOKEN, hex, strlen (hex),
                                   NULL, &len, NULL) == 0 && len == TOKEN)
            msg->element_count++;
    }
    json_decref (inbox);
    if (msg->element_count == 0) {
        node_ctl_error (self, cli->client, AF_E_MALFORMED, "recommendation %ld carries no number of its sender", n);
        af_msg_destroy (&msg);
        return;
    }
    node_request (self, node_cli_push_answer, REQ_SESSION, cli->client, msg);
}

//  --------------------------------------------------------------------------
//  For node_pay.c (get --from CONTACT, browse --friend CONTACT)

int
node_friends_contact (af_node_t *self, const char *spec, af_msg_t *msg, char *name, size_t namelen, char *err,
                      size_t errlen)
{
    return s_contact_tokens (self, spec, msg, name, namelen, err, errlen);
}
