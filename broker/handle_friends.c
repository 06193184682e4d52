/*  =========================================================================
    handle_friends - contacts, friends, shares, pull and push (SPEC 5.35, 5.38-5.45)

    Issue 13 (S3, B4). A node turns its address book into tokens with the
    contacts service (CONTACTS_EVAL, routed here to the `contacts` workers
    under a per-account allowance) and uploads them (CONTACTS_PUT): the
    book, and the account's own numbers, which also go into the directory
    that turns a contact's token into the account that claims it. Two
    accounts are friends when their books share friends/min_common tokens
    and neither blocks the other; that is asked when needed, one pair at a
    time, never for all pairs. Apps are private until SHARE says friends
    or public. A pull (FRIEND_APPS) answers the apps a contact shows the
    asker; a push (RECOMMEND) queues a durable notice in every device's
    outbox of the contact; FRIEND_INSTALL is a push to the asking device
    itself, through the push path, with the matcher fitting this device.

    Refusals never tell "no such account" from "not friends": both are
    E_NOT_FRIENDS with the same reason. Every step into another account
    (its keys, or the directory's) goes through broker_xacct.c.
    =========================================================================
*/
#include "broker_xacct.h"

#define NOT_FRIENDS "this contact is not a friend of yours and shares nothing publicly"

//  An xacct code as the node's answer; true if it was an error (answered)
static bool
s_failed (af_broker_t *self, session_t *session, af_msg_t *msg, int code)
{
    if (code == AF_OK)
        return false;
    if (code == AF_E_UNAVAILABLE)
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "%s", XACCT_ELSEWHERE);
    else
    if (code == AF_E_QUOTA)
        broker_error (self, session, msg, AF_E_QUOTA, "a limit of the account: at most %d contacts, "
                      "%d own numbers, %d blocked or refused", AF_MAX_BOOK, AF_MAX_OWN_NUMBERS, AF_MAX_BLOCKS);
    else
        broker_error (self, session, msg, AF_E_INTERNAL, "the broker's store failed; try again later");
    return true;
}

//  A write to the session's own account, in one transaction
typedef int (own_write_fn) (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg);

static void
s_own_write (af_broker_t *self, session_t *session, af_msg_t *msg, own_write_fn *write, af_msg_t *reply)
{
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    int code = af_store_begin (store, true, &txn)? AF_E_INTERNAL: write (self, txn, session, msg);
    if (code == AF_OK && af_store_commit (store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (store, &txn);
    if (s_failed (self, session, msg, code))
        af_msg_destroy (&reply);
    else
    if (reply)
        broker_reply (self, session, msg, &reply);
    else
        broker_ok (self, session, msg);
}

//  --------------------------------------------------------------------------
//  CONTACTS_EVAL: to the contacts service, under the account's allowance

typedef struct {
    af_broker_t *broker;
    broker_caller_t caller;
} eval_t;

static void
s_evaluated (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    eval_t *eval = (eval_t *) arg;
    broker_answer (eval->broker, &eval->caller, reply_p);
    free (eval);
}

static int
s_charge (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    uint64_t used, free_at, now = (uint64_t) zclock_time ();
    int code = af_friends_eval_charge (self->friends, txn, session->account, msg->element_count,
                                       (uint64_t) self->config.eval_limit,
                                       (uint64_t) self->config.eval_window_s * 1000, now, &used, &free_at);
    if (code == AF_E_EVAL_LIMIT) {
        zsys_warning ("broker: refused CONTACTS_EVAL of %u from '%s': %llu of %d used", msg->element_count,
                      session->account, (unsigned long long) used, self->config.eval_limit);
        broker_error (self, session, msg, AF_E_EVAL_LIMIT, "the account may have %d contact numbers evaluated "
                      "per %d s and has used %llu; %u more are refused; the allowance is free again in %llu s",
                      self->config.eval_limit, self->config.eval_window_s, (unsigned long long) used,
                      msg->element_count, (unsigned long long) ((free_at - now) / 1000 + 1));
    }
    return code;
}

void
handle_contacts_eval (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (af_dispatch_room (self->dispatch) == 0) {
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the contacts queue is full; try again later");
        return;
    }
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    int code = af_store_begin (store, true, &txn)? AF_E_INTERNAL: s_charge (self, txn, session, msg);
    if (code == AF_OK && af_store_commit (store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (store, &txn);
    if (code == AF_E_EVAL_LIMIT || s_failed (self, session, msg, code))
        return;
    eval_t *eval = (eval_t *) zmalloc (sizeof (eval_t));
    assert (eval);
    eval->broker = self;
    broker_caller (&eval->caller, session, msg);
    af_msg_t *request = af_msg_new (AF_MSG_CONTACTS_EVAL);
    af_msg_set_element_count (request, msg->element_count);
    memcpy (request->elements, msg->elements, (size_t) msg->element_count * AF_OPRF_ELEMENT_SIZE);
    if (af_dispatch_submit (self->dispatch, "contacts", &request, s_evaluated, eval, 0) != AF_OK) {
        free (eval);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the contacts queue is full; try again later");
    }
}

//  --------------------------------------------------------------------------
//  CONTACTS_PUT: the book (replace, add) or the own numbers (own)

//  A set read in place, copied: a later write in the transaction may move
//  the page it points into (LMDB: valid until the next update)
static af_token_t *
s_copy (const af_token_t *tokens, size_t count)
{
    af_token_t *copy = (af_token_t *) malloc ((count + 1) * AF_CONTACT_TOKEN_SIZE);
    assert (copy);
    if (count)
        memcpy (copy, tokens, count * AF_CONTACT_TOKEN_SIZE);
    return copy;
}

static int
s_put_own (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    const af_token_t *set;
    size_t nold = 0, nnow = 0;
    int code = af_friends_set_get (self->friends, txn, session->account, AF_SET_OWN, &set, &nold);
    af_token_t *old = s_copy (set, code == AF_OK? nold: 0), *now = NULL;
    if (code == AF_OK)
        code = af_friends_set_put (self->friends, txn, session->account, AF_SET_OWN, true,
                                   (const af_token_t *) msg->elements, msg->element_count, AF_MAX_OWN_NUMBERS, NULL);
    if (code == AF_OK)
        code = af_friends_set_get (self->friends, txn, session->account, AF_SET_OWN, &set, &nnow);
    if (code == AF_OK) {
        now = s_copy (set, nnow);
        code = xacct_directory (self, txn, session->account, old, nold, now, nnow);
    }
    free (old);
    free (now);
    return code;
}

static int
s_put (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    if (streq (msg->op, "own"))
        return s_put_own (self, txn, session, msg);
    return af_friends_set_put (self->friends, txn, session->account, AF_SET_BOOK, streq (msg->op, "replace"),
                               (const af_token_t *) msg->elements, msg->element_count, AF_MAX_BOOK, NULL);
}

void
handle_contacts_put (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (!streq (msg->op, "replace") && !streq (msg->op, "add") && !streq (msg->op, "own"))
        broker_error (self, session, msg, AF_E_MALFORMED, "CONTACTS_PUT: 'op' is replace, add or own");
    else
        s_own_write (self, session, msg, s_put, NULL);
}

//  --------------------------------------------------------------------------
//  FRIENDS: which tokens of my book are friends

void
handle_friends (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    const af_token_t *book = NULL;
    size_t count = 0;
    int code = af_store_begin (store, false, &txn)? AF_E_INTERNAL:
               af_friends_set_get (self->friends, txn, session->account, AF_SET_BOOK, &book, &count);
    af_token_t *copy = (af_token_t *) malloc ((count + 1) * AF_CONTACT_TOKEN_SIZE);
    assert (copy);
    if (count)
        memcpy (copy, book, count * AF_CONTACT_TOKEN_SIZE);
    af_store_abort (store, &txn);
    af_msg_t *reply = af_msg_new (AF_MSG_FRIEND_LIST);
    af_msg_set_element_count (reply, AF_MAX_CONTACTS_EVAL);
    reply->element_count = 0;
    for (size_t i = 0; code == AF_OK && i < count && reply->element_count < AF_MAX_CONTACTS_EVAL; i++) {
        char other [AF_MAX_ACCOUNT + 1];
        bool found, friends;
        code = xacct_lookup (self, session->account, copy [i], other, &found, &friends);
        if (code == AF_OK && friends)
            memcpy (reply->elements [reply->element_count++], copy [i], AF_CONTACT_TOKEN_SIZE);
    }
    free (copy);
    if (s_failed (self, session, msg, code))
        af_msg_destroy (&reply);
    else
        broker_reply (self, session, msg, &reply);
}

//  --------------------------------------------------------------------------
//  BLOCK, SHARE, REFUSE: the account's own settings

static int
s_block (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    if (streq (msg->op, "unblock"))
        return af_friends_set_remove (self->friends, txn, session->account, AF_SET_BLOCKED, msg->elements [0]);
    return af_friends_set_put (self->friends, txn, session->account, AF_SET_BLOCKED, false,
                               (const af_token_t *) msg->elements, 1, AF_MAX_BLOCKS, NULL);
}

void
handle_block (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (!streq (msg->op, "block") && !streq (msg->op, "unblock"))
        broker_error (self, session, msg, AF_E_MALFORMED, "BLOCK: 'op' is block or unblock");
    else
        s_own_write (self, session, msg, s_block, NULL);
}

static int
s_share (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    af_share_t share;
    af_share_parse (msg->state, &share);
    return af_friends_share_set (self->friends, txn, session->account, msg->program, share);
}

void
handle_share (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_share_t share;
    if (af_share_parse (msg->state, &share) != AF_OK)
        broker_error (self, session, msg, AF_E_MALFORMED, "SHARE: 'state' is private, friends or public");
    else
        s_own_write (self, session, msg, s_share, NULL);
}

static int
s_share_entry (const char *program, af_share_t share, void *arg)
{
    af_msg_t *list = (af_msg_t *) arg;
    if (list->app_count >= AF_MAX_SHARES)
        return -1;
    af_app_t *app = &list->apps [list->app_count++];
    memset (app, 0, sizeof *app);
    snprintf (app->program, sizeof app->program, "%s", program);
    snprintf (app->share, sizeof app->share, "%s", af_share_name (share));
    return 0;
}

void
handle_shares (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    af_msg_t *reply = af_msg_new (AF_MSG_SHARE_LIST);
    af_msg_set_app_count (reply, AF_MAX_SHARES);
    reply->app_count = 0;
    int code = af_store_begin (store, false, &txn)? AF_E_INTERNAL:
               af_friends_shares (self->friends, txn, session->account, s_share_entry, reply);
    af_store_abort (store, &txn);
    if (s_failed (self, session, msg, code))
        af_msg_destroy (&reply);
    else
        broker_reply (self, session, msg, &reply);
}

static int
s_refuse (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    const char *account = session->account;
    if (streq (msg->op, "all") || streq (msg->op, "none")) {
        int code = af_friends_refuse_all_set (self->friends, txn, account, streq (msg->op, "all"));
        if (code == AF_OK && streq (msg->op, "none"))
            code = af_friends_set_put (self->friends, txn, account, AF_SET_REFUSED, true, NULL, 0, 0, NULL);
        return code;
    }
    if (streq (msg->op, "accept"))
        return af_friends_set_remove (self->friends, txn, account, AF_SET_REFUSED, msg->elements [0]);
    return af_friends_set_put (self->friends, txn, account, AF_SET_REFUSED, false,
                               (const af_token_t *) msg->elements, 1, AF_MAX_BLOCKS, NULL);
}

void
handle_refuse (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    bool named = streq (msg->op, "contact") || streq (msg->op, "accept");
    if (!named && !streq (msg->op, "all") && !streq (msg->op, "none"))
        broker_error (self, session, msg, AF_E_MALFORMED, "REFUSE: 'op' is all, none, contact or accept");
    else
    if (named && msg->element_count != 1)
        broker_error (self, session, msg, AF_E_MALFORMED, "REFUSE %s: name the contact by one token", msg->op);
    else
        s_own_write (self, session, msg, s_refuse, NULL);
}

//  --------------------------------------------------------------------------
//  FRIEND_APPS (pull), RECOMMEND (push), FRIEND_INSTALL

//  The account behind a contact the request names by the tokens of its
//  numbers: the first that is a friend, else the first found
static int
s_lookup (af_broker_t *self, session_t *session, af_msg_t *msg, char *other, bool *found, bool *friends)
{
    *found = *friends = false;
    int code = AF_OK;
    for (uint32_t i = 0; code == AF_OK && i < msg->element_count && !*friends; i++) {
        char account [AF_MAX_ACCOUNT + 1];
        bool one_found, one_friend;
        code = xacct_lookup (self, session->account, msg->elements [i], account, &one_found, &one_friend);
        if (code == AF_OK && one_found && (!*found || one_friend)) {
            snprintf (other, AF_MAX_ACCOUNT + 1, "%s", account);
            *found = true;
            *friends = one_friend;
        }
    }
    return code;
}

//  The contact a request names, and the apps it shows the asker (only
//  program, if given): AF_OK with list filled and *friends; else the
//  refusal was sent (true returned)
static bool
s_contact_apps (af_broker_t *self, session_t *session, af_msg_t *msg, const char *program, af_msg_t *list,
                char *other, bool *friends)
{
    bool found;
    int code = s_lookup (self, session, msg, other, &found, friends);
    if (code == AF_OK && found)
        code = xacct_shared_apps (self, other, *friends? AF_SHARE_FRIENDS: AF_SHARE_PUBLIC, program, list);
    if (s_failed (self, session, msg, code))
        return true;
    if (found && list->app_count)
        return false;
    if (found && *friends)
        broker_error (self, session, msg, AF_E_NOT_SHARED, program? "your friend does not share %s":
                      "your friend shares no app with friends%s", program? program: "");
    else
        broker_error (self, session, msg, AF_E_NOT_FRIENDS, NOT_FRIENDS);
    return true;
}

void
handle_friend_apps (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *reply = af_msg_new (AF_MSG_FRIEND_APP_LIST);
    char other [AF_MAX_ACCOUNT + 1];
    bool friends;
    if (s_contact_apps (self, session, msg, NULL, reply, other, &friends))
        af_msg_destroy (&reply);
    else
        broker_reply (self, session, msg, &reply);
}

//  What I recommend: an app on one of my devices, whoever the contact is
//  (asked first, so the answer says nothing of the contact); its
//  visibility into *share. false if refused (the node was told)
static bool
s_mine (af_broker_t *self, session_t *session, af_msg_t *msg, af_msg_t *note, af_share_t *share)
{
    af_msg_t *mine = af_msg_new (AF_MSG_FRIEND_APP_LIST);
    int code = xacct_shared_apps (self, session->account, AF_SHARE_PRIVATE, msg->program, mine);
    bool have = code == AF_OK && mine->app_count == 1;
    *share = AF_SHARE_PRIVATE;
    if (have) {
        af_share_parse (mine->apps [0].share, share);
        snprintf (note->version_name, sizeof note->version_name, "%s", mine->apps [0].version_name);
    }
    af_msg_destroy (&mine);
    if (s_failed (self, session, msg, code))
        return false;
    if (!have)
        broker_error (self, session, msg, AF_E_NOT_SHARED, "%s is on none of your devices", msg->program);
    return have;
}

//  The note the contact's devices get
static af_msg_t *
s_note (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *note = af_msg_new (AF_MSG_RECOMMENDATION);
    snprintf (note->account, sizeof note->account, "%s", session->account);
    snprintf (note->program, sizeof note->program, "%s", msg->program);
    note->at = (uint64_t) zclock_time ();
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    const af_token_t *own;
    size_t count = 0;
    if (af_store_begin (store, false, &txn) == 0
    &&  af_friends_set_get (self->friends, txn, session->account, AF_SET_OWN, &own, &count) == AF_OK && count) {
        af_msg_set_element_count (note, (uint32_t) count);
        memcpy (note->elements, own, count * AF_CONTACT_TOKEN_SIZE);
    }
    af_store_abort (store, &txn);
    return note;
}

void
handle_recommend (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *note = s_note (self, session, msg);
    af_share_t share;
    if (!s_mine (self, session, msg, note, &share)) {
        af_msg_destroy (&note);
        return;
    }
    //  To a friend whatever its visibility (recommending is sharing it
    //  with them); to anyone else only a public app. No account and no
    //  friend: the same refusal
    char other [AF_MAX_ACCOUNT + 1];
    bool found, friends, refused = false;
    int code = s_lookup (self, session, msg, other, &found, &friends);
    if (s_failed (self, session, msg, code) || !found || (!friends && share != AF_SHARE_PUBLIC)) {
        if (code == AF_OK)
            broker_error (self, session, msg, AF_E_NOT_FRIENDS, NOT_FRIENDS);
        af_msg_destroy (&note);
        return;
    }
    zframe_t *frame = af_msg_encode (note);
    af_msg_destroy (&note);
    code = frame? xacct_recommend (self, session->account, other, frame, &refused): AF_E_INTERNAL;
    zframe_destroy (&frame);
    if (s_failed (self, session, msg, code))
        return;
    if (refused) {
        zsys_info ("broker: recommendation of %s from '%s' refused by its recipient", msg->program, session->account);
        broker_error (self, session, msg, AF_E_REFUSED, "the contact does not accept recommendations from you; "
                      "nothing was sent");
    }
    else
        broker_ok (self, session, msg);
}

//  A friend install, waiting for the matcher's answer for this device
typedef struct {
    af_broker_t *broker;
    broker_caller_t caller;
    char program [AF_MAX_PROGRAM + 1];
} install_t;

static void
s_install_fit (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    install_t *install = (install_t *) arg;
    af_broker_t *self = install->broker;
    af_msg_t *reply = *reply_p;
    session_t *session = broker_session (self, install->caller.session);
    const uint8_t *rid = install->caller.has_rid? install->caller.rid: NULL;
    bool fits = reply && reply->id == AF_MSG_RESOLVED
             && (reply->fit == AF_FIT_PACKAGE || reply->fit == AF_FIT_STORE_LINK);
    if (!session || !session->logged_in)
        ;                               //  gone: nobody to answer
    else
    if (!fits && reply && reply->id == AF_MSG_ERROR)
        broker_error_rid (self, session, rid, (int) reply->code, "%s", reply->reason);
    else
    if (!fits)
        broker_error_rid (self, session, rid, reply && reply->fit == AF_FIT_UNKNOWN_PROGRAM? AF_E_UNKNOWN_PROGRAM:
                          AF_E_NO_FIT, "no package of %s fits this device: %s", install->program,
                          reply && *reply->reason? reply->reason: "the matcher did not say why");
    else
    if (reply->has_package && reply->package.price_cents > 0)
        broker_error_rid (self, session, rid, AF_E_PAYMENT_REQUIRED, "%s costs %u.%02u %s; a paid program cannot be "
                          "bought through a friend yet (only from a device of your own account: get --from)",
                          install->program, reply->package.price_cents / 100, reply->package.price_cents % 100,
                          reply->package.currency);
    else {
        //  The push path, to this device itself, as `install` does
        af_msg_t *push = af_msg_new (AF_MSG_PUSH);
        push->has_rid = install->caller.has_rid;
        memcpy (push->rid, install->caller.rid, AF_ID_SIZE);
        snprintf (push->program, sizeof push->program, "%s", install->program);
        af_msg_add_target (push, "self");
        handle_push (self, session, push);
        af_msg_destroy (&push);
    }
    free (install);
}

void
handle_friend_install (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    af_msg_t *list = af_msg_new (AF_MSG_FRIEND_APP_LIST);
    char other [AF_MAX_ACCOUNT + 1];
    bool friends;
    bool refused = s_contact_apps (self, session, msg, msg->program, list, other, &friends);
    af_msg_destroy (&list);
    if (refused)
        return;
    install_t *install = (install_t *) zmalloc (sizeof (install_t));
    assert (install);
    install->broker = self;
    broker_caller (&install->caller, session, msg);
    snprintf (install->program, sizeof install->program, "%s", msg->program);
    if (broker_resolve (self, msg->program, &session->device, s_install_fit, install, 0) != AF_OK) {
        free (install);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the matcher queue is full; try again later");
    }
}
