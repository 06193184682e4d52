/*  =========================================================================
    handle_pay - GET, PAY_CONFIRM, PURCHASES, BROWSE: an app another device
    of the account (or a friend) has, free or paid (S0.3-S0.7; SPEC 5.46,
    5.47, 10.12)

    GET names a program and the device that has it. The broker checks that
    the device is one of the account's and has the program, asks the
    matcher which package fits the *asking* device (its price and currency
    come with it, from the catalog), and then: free → the package goes to
    the asker from the server's store by the push path (a push to "self",
    as a sync pick), and the source device is told; paid → the payments
    service answers PAYMENT_REQUIRED (or PAID when the account is entitled
    already, which goes on as free). PAY_CONFIRM goes to the payments
    service with the session's account; its PAID starts the same transfer,
    and the source device is told the app was paid for: an item of its
    durable outbox, committed with the transfer's push and once per intent
    (af_paynotes), so neither a broker kill nor a node asking again can
    lose it or tell it twice.

    With withData (a device of the account only: with tokens, 403) the
    source's notice asks for the app's user data too; the source pushes it
    to the asker naming the ask (handle_push.c), before its RECORD_PUT. A
    paid notice's key then takes "+data", so an app bought and got without
    its data can be got with it later (another notice, another ask).

    broker_pay_entitled is the push path's check (handle_push.c): before
    any push, install or sync pick offers a package with a price, the
    payments service says whether the account bought it. GET's transfer
    brings that answer with it (broker_push, entitled) and is not asked
    again.

    The broker keeps no payment state: the intent, the charge and the
    entitlement are the payments service's (its ledger), so a broker killed
    between a charge and its answer loses nothing that matters: the next
    GET or PAY_CONFIRM finds the account entitled, or the intent paid.

    Each request waiting for a worker is a job in self->pay_jobs, so the
    broker frees it if it stops first.

    From a contact (GET or BROWSE with tokens, issue 14 with issue 13):
    the contact's account and what it shows the asker come from
    broker_contact_apps (handle_friends.c: FRIEND_APPS' rule and
    refusals, across brokers through broker_xacct.c); then the same path
    with the contact's account as job->source_account. The asker's
    account pays and is entitled; the payments service keeps the source
    account with the intent, so PAID after a PAY_CONFIRM says whom to
    tell. The friend's device that has the app is told (kind "friend-"...)
    as the own account's is when the friend's account is served here;
    when it lives on another broker of the cluster, the notice goes with
    no device (deviceId ""): the push's commit makes it an intent that
    broker's owner applies, picking the device (broker_xnotice.c).
    =========================================================================
*/
#include "broker_xacct.h"

typedef struct {
    af_broker_t *broker;
    char hex [AF_ID_HEX + 1];           //  pay_jobs key (random)
    broker_caller_t caller;
    char account [AF_MAX_ACCOUNT + 1];
    char asker [AF_ID_HEX + 1];         //  the device that asks
    char source [AF_ID_HEX + 1];        //  the device that has the app ("": a friend's, not known here)
    char source_account [AF_MAX_ACCOUNT + 1];   //  a friend's account ("": the asker's own)
    char program [AF_MAX_PROGRAM + 1];
    char intent [AF_ID_HEX + 1];        //  the intent it was paid under ("": free)
    bool with_data;                     //  GET, PAY_CONFIRM: the app's user data too (5.47)
    af_msg_t *list;                     //  BROWSE: the answer being made
    uint32_t outstanding;               //  BROWSE: resolutions still out
    broker_entitled_fn *entitled;       //  broker_pay_entitled: its caller
    void *entitled_arg;
} pay_job_t;

void
broker_pay_jobs_free (void **item)
{
    pay_job_t *job = (pay_job_t *) *item;
    if (job) {
        af_msg_destroy (&job->list);
        free (job);
        *item = NULL;
    }
}

//  A job answering caller, of session (its account and device)
static pay_job_t *
s_job_for (af_broker_t *self, const broker_caller_t *caller, const session_t *session, const char *program)
{
    pay_job_t *job = (pay_job_t *) zmalloc (sizeof (pay_job_t));
    assert (job);
    job->broker = self;
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (job->hex, sizeof job->hex, id, sizeof id);
    job->caller = *caller;
    af_strcopy (job->account, sizeof job->account, session->account);
    af_strcopy (job->asker, sizeof job->asker, session->device_id);
    af_strcopy (job->program, sizeof job->program, program);
    zhashx_insert (self->pay_jobs, job->hex, job);
    return job;
}

static pay_job_t *
s_job_new (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    broker_caller_t caller;
    broker_caller (&caller, session, msg);
    return s_job_for (self, &caller, session, msg->program);
}

static void
s_job_end (pay_job_t *job)
{
    zhashx_delete (job->broker->pay_jobs, job->hex);
}

//  Answer the job's caller with an error
static void
s_job_error (pay_job_t *job, int code, const char *reason)
{
    af_msg_t *error = af_msg_error (code, NULL, "%s", reason);
    broker_answer (job->broker, &job->caller, &error);
}

//  A request for the payments service, with the job's account
static int
s_submit (af_broker_t *self, af_msg_t **msg_p, af_dispatch_fn *done, pay_job_t *job)
{
    af_strcopy ((*msg_p)->account, sizeof (*msg_p)->account, job->account);
    return af_dispatch_submit (self->dispatch, "payments", msg_p, done, job, 0);
}

//  The asker gets the package that fits it, from the server's store (a
//  push to "self", answered PUSH_ACCEPTED with the caller's rid), and the
//  source device is told through its outbox (an ITEM carrying NOTIFY: kind
//  "requested", or "paid" when the program was paid for just now, or
//  "entitled" when the account had paid before: body "PROGRAM ASKER"),
//  queued in the push's group commit, once per intent (a free one: per
//  GET, by its rid, which the node keeps when it asks again): af_paynotes.
//  An asker gone meanwhile gets nothing now; what it paid for is an
//  entitlement, so it asks again.
static void
s_transfer (af_broker_t *self, pay_job_t *job, const char *kind)
{
    session_t *session = broker_session (self, job->caller.session);
    if (!session || !session->logged_in || !streq (session->account, job->account)
    ||  !streq (session->device_id, job->asker)) {
        zsys_info ("broker: GET of %s by %s of '%s': the device went away before the transfer", job->program,
                   job->asker, job->account);
        return;
    }
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    af_strcopy (push->program, sizeof push->program, job->program);
    af_msg_add_target (push, "self");
    push->has_rid = job->caller.has_rid;
    memcpy (push->rid, job->caller.rid, sizeof push->rid);
    //  A friend's account on another broker: no device here (its broker
    //  picks it, broker_xnotice.c)
    bool friend = *job->source_account != 0;
    uint32_t shard;
    bool here = !friend || broker_cluster_serves (self, job->source_account, &shard);
    bool tell = !here || *job->source;
    if (friend && !tell)
        zsys_info ("broker: GET of %s by '%s' from '%s': its devices are not told (no device of it has the app "
                   "now)", job->program, job->account, job->source_account);
    broker_notice_t notice;
    memset (&notice, 0, sizeof notice);
    af_strcopy (notice.account, sizeof notice.account, friend? job->source_account: job->account);
    af_strcopy (notice.device_id, sizeof notice.device_id, here? job->source: "");
    //  The key: a free GET's rid; for a paid one, the intent's with the
    //  asking device's ID, so another device of the account that asks
    //  later under the same intent is told (and gets its ask, 5.47a), and
    //  with "+data" when it asks for the user data too: the data of an app
    //  bought and got before without it is another notice and ask
    uint8_t intent [AF_ID_SIZE];
    if (*job->intent && af_id_from_hex (job->intent, intent) == AF_OK) {
        crypto_generichash_state state;
        crypto_generichash_init (&state, NULL, 0, sizeof notice.key);
        crypto_generichash_update (&state, intent, sizeof intent);
        crypto_generichash_update (&state, (const uint8_t *) job->asker, strlen (job->asker));
        if (job->with_data)
            crypto_generichash_update (&state, (const uint8_t *) "+data", 5);
        crypto_generichash_final (&state, notice.key, sizeof notice.key);
    }
    else
    if (job->caller.has_rid)
        memcpy (notice.key, job->caller.rid, sizeof notice.key);
    else
        randombytes_buf (notice.key, sizeof notice.key);
    af_strcopy (notice.asker_account, sizeof notice.asker_account, job->account);
    af_strcopy (notice.asker, sizeof notice.asker, job->asker);
    af_strcopy (notice.program, sizeof notice.program, job->program);
    notice.item = af_msg_new (AF_MSG_NOTIFY);
    //  The ask (5.47a) of a source device served here; a friend's on
    //  another broker: that broker opens it and sets it (broker_xnotice.c)
    if (*notice.device_id)
        sodium_bin2hex (notice.item->ask, sizeof notice.item->ask, notice.key, sizeof notice.key);
    af_strcopy (notice.item->device_id, sizeof notice.item->device_id, job->asker);
    //  The source sends its user data too (only ever within the account:
    //  a friend's GET with it was refused, 403)
    notice.item->with_data = job->with_data && !friend;
    snprintf (notice.item->kind, sizeof notice.item->kind, "%s%s", friend? "friend-": "", kind);
    char body [AF_MAX_PROGRAM + AF_ID_HEX + AF_MAX_ACCOUNT + 3];
    if (friend)
        snprintf (body, sizeof body, "%s %s %s", job->program, job->asker, job->account);
    else
        snprintf (body, sizeof body, "%s %s", job->program, job->asker);
    af_msg_set_body (notice.item, body, strlen (body));
    //  "entitled" and "paid": the payments service has just said so, and
    //  the push path need not ask again; a free one is checked as any push
    broker_push (self, session, push, !streq (kind, "requested"), tell? &notice: NULL);
    af_msg_destroy (&notice.item);
    af_msg_destroy (&push);
    zsys_info ("broker: GET of %s by %s of '%s' from %s%s%s: %s%s, transfer started", job->program, job->asker,
               job->account, job->source_account, *job->source_account? " ": "", job->source, kind,
               job->with_data && !friend? " with its user data": "");
}

//  --------------------------------------------------------------------------
//  GET

//  The payments service's answer to PAY_INTENT
static void
s_get_paid (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    pay_job_t *job = (pay_job_t *) arg;
    af_msg_t *reply = *reply_p;
    if (reply && reply->id == AF_MSG_PAID && reply->entitled) {
        af_strcopy (job->intent, sizeof job->intent, reply->intent);
        s_transfer (job->broker, job, "entitled");
    }
    else
    if (reply && (reply->id == AF_MSG_PAYMENT_REQUIRED || reply->id == AF_MSG_ERROR))
        broker_answer (job->broker, &job->caller, reply_p);
    else
        s_job_error (job, AF_E_INTERNAL, "the payments service gave no answer that fits");
    s_job_end (job);
}

//  The matcher's answer for the asker: free, or ask the payments service
static void
s_get_resolved (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    pay_job_t *job = (pay_job_t *) arg;
    af_broker_t *self = job->broker;
    af_msg_t *reply = *reply_p;
    if (!reply || reply->id != AF_MSG_RESOLVED) {
        if (reply && reply->id == AF_MSG_ERROR)
            broker_answer (self, &job->caller, reply_p);
        else
            s_job_error (job, AF_E_UNAVAILABLE, "the matcher did not answer");
    }
    else
    if (reply->fit != AF_FIT_PACKAGE && reply->fit != AF_FIT_STORE_LINK)
        s_job_error (job, AF_E_NO_FIT, *reply->reason? reply->reason: "no package fits this device");
    else
    if (reply->package.price_cents == 0)
        s_transfer (self, job, "requested");
    else {
        af_msg_t *intent = af_msg_new (AF_MSG_PAY_INTENT);
        af_strcopy (intent->program, sizeof intent->program, job->program);
        af_strcopy (intent->device_id, sizeof intent->device_id, job->source);
        af_strcopy (intent->source_account, sizeof intent->source_account, job->source_account);
        intent->price = reply->package.price_cents;
        af_strcopy (intent->currency, sizeof intent->currency, reply->package.currency);
        if (s_submit (self, &intent, s_get_paid, job) == AF_OK)
            return;                 //  the job goes on
        s_job_error (job, AF_E_UNAVAILABLE, "the payments queue is full; try again later");
    }
    s_job_end (job);
}

//  GET and BROWSE name a device of the account or a contact, never both
static bool
s_source_named (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if ((*msg->device_id != 0) == (msg->element_count > 0)) {
        broker_error (self, session, msg, AF_E_MALFORMED, "name either the device that has the app (deviceId) or "
                      "a contact (tokens)");
        return false;
    }
    return true;
}

//  A device of account other that has program (xnotice_device: its first
//  in the install list), into device; "" when none does or other's shard
//  is not ours (the source device is then not known here: the notice goes
//  through FORWARD, broker_xnotice.c)
static void
s_friend_device (af_broker_t *self, const char *other, const char *program, char device [AF_ID_HEX + 1])
{
    uint32_t shard;
    *device = 0;
    if (broker_cluster_serves (self, other, &shard))
        xnotice_device (self, other, program, device);
}

//  The session a contact's request answers, when still there
static session_t *
s_xacct_session (af_broker_t *self, xacct_job_t *xjob)
{
    session_t *session = broker_session (self, xjob->caller.session);
    return session && session->logged_in && streq (session->account, xjob->me)? session: NULL;
}

//  GET from a contact: the contact shows me the program (FRIEND_APPS'
//  rule and refusals), then as from a device of mine, with the contact's
//  account as the source (the payment is mine, the notice theirs)
static void
s_friend_get_next (af_broker_t *self, xacct_job_t *xjob)
{
    bool pending;
    bool listed = broker_contact_apps (self, xjob, &pending);
    if (pending)
        return;
    session_t *session = listed? s_xacct_session (self, xjob): NULL;
    if (session) {
        pay_job_t *job = s_job_for (self, &xjob->caller, session, xjob->program);
        af_strcopy (job->source_account, sizeof job->source_account, xjob->pick);
        s_friend_device (self, xjob->pick, xjob->program, job->source);
        if (broker_resolve (self, job->program, &session->device, s_get_resolved, job, 0) != AF_OK) {
            s_job_end (job);
            broker_error_rid (self, session, xjob->caller.has_rid? xjob->caller.rid: NULL, AF_E_UNAVAILABLE,
                              "the matcher queue is full; try again later");
        }
    }
    xacct_job_destroy (&xjob);
}

void
handle_get (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (!s_source_named (self, session, msg))
        return;
    if (msg->with_data && msg->element_count) {
        //  S0.5 with S3: a friend gets the package from the store, never
        //  anything of theirs (the reference node refuses it first)
        broker_error (self, session, msg, AF_E_FORBIDDEN, "withData: an app's user data never moves between "
                      "people; get it from a contact without it");
        return;
    }
    if (msg->element_count) {
        s_friend_get_next (self, xacct_job_new (session, msg, s_friend_get_next));
        return;
    }
    af_device_t source;
    if (streq (msg->device_id, session->device_id)) {
        broker_error (self, session, msg, AF_E_FORBIDDEN, "this device is the one asking: name the device that "
                      "has the app");
        return;
    }
    int code = af_registry_device (self->registry, session->account, msg->device_id, &source);
    if (code != AF_OK) {
        broker_error (self, session, msg, code == AF_E_INTERNAL? AF_E_INTERNAL: AF_E_NO_DEVICE, "%s",
                      code == AF_E_INTERNAL? "cannot read the account's devices": "not a device of this account");
        return;
    }
    bool found;
    code = af_lists_has (self->lists, session->account, msg->device_id, msg->program, &found);
    if (code != AF_OK || !found) {
        broker_error (self, session, msg, code == AF_OK? AF_E_NOT_THERE: AF_E_INTERNAL,
                      "device %s has no %s installed", msg->device_id, msg->program);
        return;
    }
    pay_job_t *job = s_job_new (self, session, msg);
    af_strcopy (job->source, sizeof job->source, msg->device_id);
    job->with_data = msg->with_data;
    if (broker_resolve (self, msg->program, &session->device, s_get_resolved, job, 0) != AF_OK) {
        s_job_end (job);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the matcher queue is full; try again later");
    }
}

//  --------------------------------------------------------------------------
//  PAY_CONFIRM

//  The payments service's answer: PAID starts the transfer
static void
s_confirmed (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    pay_job_t *job = (pay_job_t *) arg;
    af_msg_t *reply = *reply_p;
    if (reply && reply->id == AF_MSG_PAID) {
        af_strcopy (job->program, sizeof job->program, reply->program);
        af_strcopy (job->source, sizeof job->source, reply->device_id);
        af_strcopy (job->source_account, sizeof job->source_account, reply->source_account);
        af_strcopy (job->intent, sizeof job->intent, reply->intent);
        zsys_info ("broker: '%s' paid %u %s for %s (intent %s)", job->account, reply->price, reply->currency,
                   reply->program, reply->intent);
        //  Known only now, after the charge: a contact's app paid for. Its
        //  user data never comes (a GET with it from a contact was refused)
        if (job->with_data && *job->source_account) {
            zsys_warning ("broker: PAY_CONFIRM of intent %s asks for the user data of a contact's app: ignored",
                          reply->intent);
            job->with_data = false;
        }
        s_transfer (job->broker, job, "paid");
    }
    else
    if (reply && reply->id == AF_MSG_ERROR)
        broker_answer (job->broker, &job->caller, reply_p);
    else
        s_job_error (job, AF_E_INTERNAL, "the payments service gave no answer that fits");
    s_job_end (job);
}

void
handle_pay_confirm (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    uint8_t id [AF_ID_SIZE];
    if (af_id_from_hex (msg->intent, id) != AF_OK) {
        broker_error (self, session, msg, AF_E_MALFORMED, "field 'intent': not 32 lowercase hex digits");
        return;
    }
    pay_job_t *job = s_job_new (self, session, msg);
    job->with_data = msg->with_data;
    af_msg_t *confirm = af_msg_new (AF_MSG_PAY_CONFIRM);
    af_strcopy (confirm->intent, sizeof confirm->intent, msg->intent);
    af_strcopy (confirm->token, sizeof confirm->token, msg->token);
    if (s_submit (self, &confirm, s_confirmed, job) != AF_OK) {
        s_job_end (job);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the payments queue is full; try again later");
    }
}

//  --------------------------------------------------------------------------
//  PURCHASES

static void
s_purchases_listed (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    pay_job_t *job = (pay_job_t *) arg;
    if (*reply_p && ((*reply_p)->id == AF_MSG_PURCHASE_LIST || (*reply_p)->id == AF_MSG_ERROR))
        broker_answer (job->broker, &job->caller, reply_p);
    else
        s_job_error (job, AF_E_INTERNAL, "the payments service gave no answer that fits");
    s_job_end (job);
}

void
handle_purchases (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    pay_job_t *job = s_job_new (self, session, msg);
    af_msg_t *request = af_msg_new (AF_MSG_PURCHASES);
    if (s_submit (self, &request, s_purchases_listed, job) != AF_OK) {
        s_job_end (job);
        broker_error (self, session, msg, AF_E_UNAVAILABLE, "the payments queue is full; try again later");
    }
}

//  --------------------------------------------------------------------------
//  The entitlement check of the push path (SPEC 5.16). Every PUSH, every
//  install and sync pick (a push to "self") and a friend install go
//  through handle_push.c, which asks this before it offers a package whose
//  price is above 0; GET's transfer is the one push that brings the
//  payments service's answer with it (broker_push, entitled).

static void
s_entitled_answer (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    pay_job_t *job = (pay_job_t *) arg;
    af_msg_t *reply = *reply_p;
    bool found = false;
    for (uint32_t i = 0; reply && reply->id == AF_MSG_PURCHASE_LIST && i < reply->purchase_count; i++)
        found |= streq (reply->purchases [i].program, job->program);
    if (reply && reply->id == AF_MSG_PURCHASE_LIST)
        job->entitled (job->entitled_arg, found? AF_OK: AF_E_PAYMENT_REQUIRED, "");
    else
    if (reply && reply->id == AF_MSG_ERROR && reply->code != AF_E_PAYMENT_REQUIRED)
        job->entitled (job->entitled_arg, (int) reply->code, reply->reason);
    else
        job->entitled (job->entitled_arg, AF_E_INTERNAL, "the payments service gave no answer that fits");
    s_job_end (job);
}

int
broker_pay_entitled (af_broker_t *self, const char *account, const char *program,
                     broker_entitled_fn *done, void *arg)
{
    assert (self);
    pay_job_t *job = (pay_job_t *) zmalloc (sizeof (pay_job_t));
    assert (job);
    job->broker = self;
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (job->hex, sizeof job->hex, id, sizeof id);
    af_strcopy (job->account, sizeof job->account, account);
    af_strcopy (job->program, sizeof job->program, program);
    job->entitled = done;
    job->entitled_arg = arg;
    zhashx_insert (self->pay_jobs, job->hex, job);
    af_msg_t *request = af_msg_new (AF_MSG_PURCHASES);
    af_strcopy (request->program, sizeof request->program, program);
    if (s_submit (self, &request, s_entitled_answer, job) != AF_OK) {
        s_job_end (job);
        return AF_E_UNAVAILABLE;
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  BROWSE

//  Every app of the source device, into the job's APP_LIST
static int
s_browse_add (const char *device_id, const af_msg_t *app, void *arg)
{
    (void) device_id;
    af_msg_t *list = (af_msg_t *) arg;
    if (list->app_count >= AF_MAX_APPS)
        return 1;
    af_app_t *entry = &list->apps [list->app_count++];
    af_strcopy (entry->program, sizeof entry->program, app->program);
    af_strcopy (entry->version_name, sizeof entry->version_name, app->version_name);
    entry->version_code = app->version_code;
    entry->at = app->at;
    af_strcopy (entry->device_id, sizeof entry->device_id, device_id);
    return 0;
}

//  The account's purchases: mark the apps it is entitled to, and answer
static void
s_browse_entitled (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    (void) slot;
    pay_job_t *job = (pay_job_t *) arg;
    af_msg_t *reply = *reply_p;
    for (uint32_t i = 0; reply && reply->id == AF_MSG_PURCHASE_LIST && i < reply->purchase_count; i++)
        for (uint32_t j = 0; j < job->list->app_count; j++)
            if (streq (job->list->apps [j].program, reply->purchases [i].program))
                job->list->apps [j].entitled = true;
    broker_answer (job->broker, &job->caller, &job->list);
    s_job_end (job);
}

//  Every app resolved: ask which are paid for already, if any costs
static void
s_browse_answer (af_broker_t *self, pay_job_t *job)
{
    bool priced = false;
    for (uint32_t i = 0; i < job->list->app_count; i++)
        priced |= job->list->apps [i].price > 0;
    af_msg_t *request = priced? af_msg_new (AF_MSG_PURCHASES): NULL;
    if (request && s_submit (self, &request, s_browse_entitled, job) == AF_OK)
        return;
    af_msg_destroy (&request);
    broker_answer (self, &job->caller, &job->list);
    s_job_end (job);
}

//  The matcher's answer for one app, for the asker
static void
s_browse_resolved (void *arg, uint32_t slot, af_msg_t **reply_p)
{
    pay_job_t *job = (pay_job_t *) arg;
    af_msg_t *reply = *reply_p;
    af_app_t *app = &job->list->apps [slot];
    if (reply && reply->id == AF_MSG_RESOLVED) {
        app->fit = reply->fit;
        af_strcopy (app->fit_version, sizeof app->fit_version, reply->package.version_name);
        af_strcopy (app->reason, sizeof app->reason, reply->reason);
        app->price = reply->package.price_cents;
        af_strcopy (app->currency, sizeof app->currency, reply->package.currency);
    }
    else {
        app->fit = AF_FIT_NONE;
        af_strcopy (app->reason, sizeof app->reason, reply && *reply->reason? reply->reason:
                    "the matcher did not answer");
    }
    if (--job->outstanding == 0)
        s_browse_answer (job->broker, job);
}

//  Resolve every app of job->list for the asking device, then answer
static void
s_browse_resolve (af_broker_t *self, pay_job_t *job, session_t *session)
{
    uint32_t count = job->list->app_count;
    job->outstanding = count + 1;       //  held until every request is out
    for (uint32_t i = 0; i < count; i++)
        if (broker_resolve (self, job->list->apps [i].program, &session->device, s_browse_resolved, job, i)
            != AF_OK) {
            job->list->apps [i].fit = AF_FIT_NONE;
            af_strcopy (job->list->apps [i].reason, sizeof job->list->apps [i].reason,
                        "the matcher queue is full");
            job->outstanding--;
        }
    if (--job->outstanding == 0)
        s_browse_answer (self, job);
}

//  BROWSE of a contact: the apps FRIEND_APPS would list (with their
//  share), each with its fit, price and entitlement for me
static void
s_friend_browse_next (af_broker_t *self, xacct_job_t *xjob)
{
    bool pending;
    bool listed = broker_contact_apps (self, xjob, &pending);
    if (pending)
        return;
    session_t *session = listed? s_xacct_session (self, xjob): NULL;
    if (session && af_dispatch_room (self->dispatch) < xjob->list->app_count)
        broker_error_rid (self, session, xjob->caller.has_rid? xjob->caller.rid: NULL, AF_E_UNAVAILABLE,
                          "the matcher queue is full; try again later");
    else
    if (session) {
        pay_job_t *job = s_job_for (self, &xjob->caller, session, "");
        af_strcopy (job->source_account, sizeof job->source_account, xjob->pick);
        job->list = af_msg_new (AF_MSG_APP_LIST);
        af_msg_set_app_count (job->list, AF_MAX_APPS);
        job->list->app_count = 0;
        for (uint32_t i = 0; i < xjob->list->app_count && i < AF_MAX_APPS; i++) {
            af_app_t *entry = &job->list->apps [job->list->app_count++];
            const af_app_t *app = &xjob->list->apps [i];
            af_strcopy (entry->program, sizeof entry->program, app->program);
            af_strcopy (entry->version_name, sizeof entry->version_name, app->version_name);
            entry->version_code = app->version_code;
            af_strcopy (entry->share, sizeof entry->share, app->share);
        }
        s_browse_resolve (self, job, session);
    }
    xacct_job_destroy (&xjob);
}

void
handle_browse (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (!s_source_named (self, session, msg))
        return;
    if (msg->element_count) {
        xacct_job_t *xjob = xacct_job_new (session, msg, s_friend_browse_next);
        *xjob->program = 0;
        s_friend_browse_next (self, xjob);
        return;
    }
    af_device_t source;
    int code = af_registry_device (self->registry, session->account, msg->device_id, &source);
    if (code != AF_OK) {
        broker_error (self, session, msg, code == AF_E_INTERNAL? AF_E_INTERNAL: AF_E_NO_DEVICE, "%s",
                      code == AF_E_INTERNAL? "cannot read the account's devices": "not a device of this account");
        return;
    }
    pay_job_t *job = s_job_new (self, session, msg);
    af_strcopy (job->source, sizeof job->source, msg->device_id);
    job->list = af_msg_new (AF_MSG_APP_LIST);
    af_strcopy (job->list->device_id, sizeof job->list->device_id, msg->device_id);
    af_msg_set_app_count (job->list, AF_MAX_APPS);
    job->list->app_count = 0;
    code = af_lists_each (self->lists, session->account, msg->device_id, s_browse_add, job->list);
    if (code != AF_OK || af_dispatch_room (self->dispatch) < job->list->app_count) {
        s_job_end (job);
        broker_error (self, session, msg, code == AF_OK? AF_E_UNAVAILABLE: AF_E_INTERNAL, "%s",
                      code == AF_OK? "the matcher queue is full; try again later": "cannot read the install list");
        return;
    }
    s_browse_resolve (self, job, session);
}
