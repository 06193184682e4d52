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

//  Own numbers: the directory buckets on other brokers first (each
//  owner applies and answers after its followers have it), then our own
//  set and the buckets served here in one transaction. A failure between
//  leaves the other brokers' claims ahead of our set; the node's retry
//  writes the same claims again (setting a claim is idempotent)
static int
s_own_local (af_broker_t *self, MDB_txn *txn, xacct_job_t *job)
{
    int code = af_friends_set_put (self->friends, txn, job->me, AF_SET_OWN, true,
                                   (const af_token_t *) job->new_own, job->nnew, AF_MAX_OWN_NUMBERS, NULL);
    if (code == AF_OK)
        code = xacct_directory_local (self, txn, job->me, job->old_own, job->nold, job->new_own, job->nnew);
    return code;
}

static void
s_own_next (af_broker_t *self, xacct_job_t *job)
{
    if (job->code == AF_OK) {
        af_store_t *store = af_registry_store (self->registry);
        MDB_txn *txn = NULL;
        job->code = af_store_begin (store, true, &txn)? AF_E_INTERNAL: s_own_local (self, txn, job);
        if (job->code == AF_OK && af_store_commit (store, &txn))
            job->code = AF_E_INTERNAL;
        af_store_abort (store, &txn);
    }
    if (job->code == AF_OK) {
        af_msg_t *ok = af_msg_new (AF_MSG_OK);
        xacct_job_reply (self, job, &ok);
    }
    else
        xacct_job_fail (self, job, job->code);
    xacct_job_destroy (&job);
}

static void
s_put_own (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    xacct_job_t *job = xacct_job_new (session, msg, s_own_next);
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    const af_token_t *set = NULL;
    int code = af_store_begin (store, false, &txn)? AF_E_INTERNAL:
               af_friends_set_get (self->friends, txn, session->account, AF_SET_OWN, &set, &job->nold);
    job->old_own = (af_token_t *) malloc ((job->nold + 1) * AF_CONTACT_TOKEN_SIZE);
    assert (job->old_own);
    if (code == AF_OK && job->nold)
        memcpy (job->old_own, set, job->nold * AF_CONTACT_TOKEN_SIZE);
    af_store_abort (store, &txn);
    job->new_own = (af_token_t *) malloc ((job->ntokens + 1) * AF_CONTACT_TOKEN_SIZE);
    assert (job->new_own);
    if (job->ntokens)
        memcpy (job->new_own, job->tokens, job->ntokens * AF_CONTACT_TOKEN_SIZE);
    job->nnew = af_tokens_sort (job->new_own, job->ntokens);
    if (code == AF_OK && job->nnew > AF_MAX_OWN_NUMBERS)
        code = AF_E_QUOTA;              //  refused before anything is written anywhere
    if (code == AF_OK)
        code = xacct_directory_remote (self, job);
    if (code != XACCT_PENDING) {
        job->code = code;
        s_own_next (self, job);
    }
}

static int
s_put_book (af_broker_t *self, MDB_txn *txn, session_t *session, af_msg_t *msg)
{
    return af_friends_set_put (self->friends, txn, session->account, AF_SET_BOOK, streq (msg->op, "replace"),
                               (const af_token_t *) msg->elements, msg->element_count, AF_MAX_BOOK, NULL);
}

void
handle_contacts_put (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (!streq (msg->op, "replace") && !streq (msg->op, "add") && !streq (msg->op, "own"))
        broker_error (self, session, msg, AF_E_MALFORMED, "CONTACTS_PUT: 'op' is replace, add or own");
    else
    if (streq (msg->op, "own"))
        s_put_own (self, session, msg);
    else
        s_own_write (self, session, msg, s_put_book, NULL);
}

//  --------------------------------------------------------------------------
//  FRIENDS: which tokens of my book are friends

static void
s_friends_done (af_broker_t *self, xacct_job_t *job)
{
    if (job->code == AF_OK) {
        af_msg_t *reply = job->reply;
        for (size_t i = 0; i < job->nbook && reply->element_count < AF_MAX_CONTACTS_EVAL; i++)
            if (job->befriended [i])
                memcpy (reply->elements [reply->element_count++], job->book [i], AF_CONTACT_TOKEN_SIZE);
        xacct_job_reply (self, job, &job->reply);
    }
    else
        xacct_job_fail (self, job, job->code);
    xacct_job_destroy (&job);
}

void
handle_friends (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    xacct_job_t *job = xacct_job_new (session, msg, s_friends_done);
    af_store_t *store = af_registry_store (self->registry);
    MDB_txn *txn = NULL;
    const af_token_t *book = NULL;
    size_t count = 0;
    job->code = af_store_begin (store, false, &txn)? AF_E_INTERNAL:
                af_friends_set_get (self->friends, txn, session->account, AF_SET_BOOK, &book, &count);
    job->book = (af_token_t *) malloc ((count + 1) * AF_CONTACT_TOKEN_SIZE);
    assert (job->book);
    if (job->code == AF_OK && count)
        memcpy (job->book, book, count * AF_CONTACT_TOKEN_SIZE);
    job->nbook = job->code == AF_OK? count: 0;
    af_store_abort (store, &txn);
    job->reply = af_msg_new (AF_MSG_FRIEND_LIST);
    af_msg_set_element_count (job->reply, AF_MAX_CONTACTS_EVAL);
    job->reply->element_count = 0;
    //  The whole book at once, batched by the brokers that hold its answers
    if (job->code == AF_OK)
        job->code = xacct_friends (self, job);
    if (job->code != XACCT_PENDING)
        s_friends_done (self, job);
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
//  numbers: the first that is a friend, else the first found, into
//  job->pick. AF_OK once every token is looked at (or a friend found),
//  XACCT_PENDING, or an error
static int
s_pick (af_broker_t *self, xacct_job_t *job)
{
    for (;;) {
        if (job->looked) {
            job->looked = false;
            if (job->code != AF_OK)
                return job->code;
            if (job->found && (!job->pick_found || job->friends)) {
                snprintf (job->pick, sizeof job->pick, "%s", job->other);
                job->pick_found = true;
                job->pick_friends = job->friends;
            }
            job->at++;
            if (job->pick_friends)
                return AF_OK;
        }
        if (job->at >= job->ntokens)
            return AF_OK;
        job->looked = true;
        job->code = xacct_lookup (self, job, job->tokens [job->at]);
        if (job->code == XACCT_PENDING)
            return XACCT_PENDING;
    }
}

//  The same refusal for "no account" and "not a friend"
static void
s_not_friends (af_broker_t *self, xacct_job_t *job)
{
    session_t *session = broker_session (self, job->caller.session);
    if (session && session->logged_in && streq (session->account, job->me))
        broker_error_rid (self, session, job->caller.has_rid? job->caller.rid: NULL, AF_E_NOT_FRIENDS, NOT_FRIENDS);
}

enum { PHASE_PICK, PHASE_APPS, PHASE_SEND };

//  FRIEND_APPS and FRIEND_INSTALL: the contact, then the apps it shows
//  me (only job->program, if given). true when job->list holds them;
//  false when the node was answered (or the job waits: *pending)
static bool
s_contact_apps (af_broker_t *self, xacct_job_t *job, bool *pending)
{
    *pending = false;
    if (job->phase == PHASE_PICK) {
        int code = s_pick (self, job);
        if (code == XACCT_PENDING) {
            *pending = true;
            return false;
        }
        if (code != AF_OK) {
            xacct_job_fail (self, job, code);
            return false;
        }
        if (!job->pick_found) {
            s_not_friends (self, job);
            return false;
        }
        job->phase = PHASE_APPS;
        job->code = xacct_shared_apps (self, job, job->pick, job->pick_friends? AF_SHARE_FRIENDS: AF_SHARE_PUBLIC,
                                       *job->program? job->program: NULL);
        if (job->code == XACCT_PENDING) {
            *pending = true;
            return false;
        }
    }
    if (job->code != AF_OK) {
        xacct_job_fail (self, job, job->code);
        return false;
    }
    if (job->list->app_count)
        return true;
    session_t *session = broker_session (self, job->caller.session);
    if (!job->pick_friends)
        s_not_friends (self, job);
    else
    if (session && session->logged_in && streq (session->account, job->me))
        broker_error_rid (self, session, job->caller.has_rid? job->caller.rid: NULL, AF_E_NOT_SHARED,
                          *job->program? "your friend does not share %s": "your friend shares no app with friends%s",
                          job->program);
    return false;
}

static void
s_friend_apps_next (af_broker_t *self, xacct_job_t *job)
{
    bool pending;
    if (s_contact_apps (self, job, &pending))
        xacct_job_reply (self, job, &job->list);
    if (!pending)
        xacct_job_destroy (&job);
}

void
handle_friend_apps (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    xacct_job_t *job = xacct_job_new (session, msg, s_friend_apps_next);
    *job->program = 0;
    s_friend_apps_next (self, job);
}

//  What I recommend: an app on one of my devices, whoever the contact is
//  (asked first, so the answer says nothing of the contact); its
//  visibility into *share. false if refused (the node was told)
static bool
s_mine (af_broker_t *self, session_t *session, af_msg_t *msg, af_msg_t *note, af_share_t *share)
{
    xacct_job_t *job = xacct_job_new (session, msg, NULL);
    int code = xacct_shared_apps (self, job, session->account, AF_SHARE_PRIVATE, msg->program);
    assert (code != XACCT_PENDING);     //  the session's account is always ours
    bool have = code == AF_OK && job->list->app_count == 1;
    *share = AF_SHARE_PRIVATE;
    if (have) {
        af_share_parse (job->list->apps [0].share, share);
        snprintf (note->version_name, sizeof note->version_name, "%s", job->list->apps [0].version_name);
    }
    if (code != AF_OK)
        xacct_job_fail (self, job, code);
    else
    if (!have)
        broker_error (self, session, msg, AF_E_NOT_SHARED, "%s is on none of your devices", msg->program);
    xacct_job_destroy (&job);
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

static void
s_recommend_next (af_broker_t *self, xacct_job_t *job)
{
    if (job->phase == PHASE_PICK) {
        int code = s_pick (self, job);
        if (code == XACCT_PENDING)
            return;
        //  To a friend whatever its visibility (recommending is sharing it
        //  with them); to anyone else only a public app. No account and no
        //  friend: the same refusal
        if (code != AF_OK)
            xacct_job_fail (self, job, code);
        else
        if (!job->pick_found || (!job->pick_friends && job->share != AF_SHARE_PUBLIC))
            s_not_friends (self, job);
        else {
            job->phase = PHASE_SEND;
            job->code = xacct_recommend (self, job, job->pick, job->note);
            if (job->code == XACCT_PENDING)
                return;
        }
        if (job->phase != PHASE_SEND) {
            xacct_job_destroy (&job);
            return;
        }
    }
    session_t *session = broker_session (self, job->caller.session);
    if (job->code != AF_OK)
        xacct_job_fail (self, job, job->code);
    else
    if (job->refused) {
        zsys_info ("broker: recommendation of %s from '%s' refused by its recipient", job->program, job->me);
        if (session && session->logged_in && streq (session->account, job->me))
            broker_error_rid (self, session, job->caller.has_rid? job->caller.rid: NULL, AF_E_REFUSED,
                              "the contact does not accept recommendations from you; nothing was sent");
    }
    else {
        af_msg_t *ok = af_msg_new (AF_MSG_OK);
        xacct_job_reply (self, job, &ok);
    }
    xacct_job_destroy (&job);
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
    xacct_job_t *job = xacct_job_new (session, msg, s_recommend_next);
    job->share = share;
    job->note = af_msg_encode (note);
    af_msg_destroy (&note);
    if (!job->note) {
        xacct_job_fail (self, job, AF_E_INTERNAL);
        xacct_job_destroy (&job);
        return;
    }
    s_recommend_next (self, job);
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
        broker_error_rid (self, session, rid, AF_E_PAYMENT_REQUIRED, "%s costs %u.%02u %s; buy it with "
                          "get %s --from CONTACT (your account pays)",
                          install->program, reply->package.price_cents / 100, reply->package.price_cents % 100,
                          reply->package.currency, install->program);
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

//  The job's session, when its apps were listed and it is still there
static session_t *
s_listed_session (af_broker_t *self, xacct_job_t *job, bool listed)
{
    session_t *session = listed? broker_session (self, job->caller.session): NULL;
    return session && session->logged_in && streq (session->account, job->me)? session: NULL;
}

static void
s_friend_install_next (af_broker_t *self, xacct_job_t *job)
{
    bool pending;
    bool listed = s_contact_apps (self, job, &pending);
    if (pending)
        return;
    session_t *session = s_listed_session (self, job, listed);
    if (session) {
        install_t *install = (install_t *) zmalloc (sizeof (install_t));
        assert (install);
        install->broker = self;
        install->caller = job->caller;
        snprintf (install->program, sizeof install->program, "%s", job->program);
        if (broker_resolve (self, job->program, &session->device, s_install_fit, install, 0) != AF_OK) {
            free (install);
            broker_error_rid (self, session, job->caller.has_rid? job->caller.rid: NULL, AF_E_UNAVAILABLE,
                              "the matcher queue is full; try again later");
        }
    }
    xacct_job_destroy (&job);
}

void
handle_friend_install (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    s_friend_install_next (self, xacct_job_new (session, msg, s_friend_install_next));
}

//  --------------------------------------------------------------------------
//  For handle_pay.c: GET and BROWSE from a contact (issue 14) see what
//  FRIEND_APPS sees, with its refusals

bool
broker_contact_apps (af_broker_t *self, xacct_job_t *job, bool *pending)
{
    return s_contact_apps (self, job, pending);
}
