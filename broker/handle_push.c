/*  =========================================================================
    handle_push - PUSH, UNINSTALL, FETCH, CREDIT, DONE; PROGRESS (SPEC 5.16-5.27)

    A push (S2.3-S2.7) is checked against the broker's policy, then the
    broker asks the matcher, for each target, which package fits that
    target's stored description (each gets its own file; iOS gets a store
    link). A package with a price is offered only to an account entitled
    to it: before anything is stored, the payments service is asked
    (broker_pay_entitled, handle_pay.c), and a target whose package is paid
    is refused (402) when the account has not bought it, or failed (503)
    when the service cannot say; a paid program is never offered free.
    When every target has an answer, one write transaction records
    the push and queues an OFFER in each target's outbox (af_pushes), and
    the initiator gets PUSH_ACCEPTED with each target's state. A target
    FETCHes the package; af_transfers streams it under the target's credit
    and the initiator hears PROGRESS. The target's DONE records its
    outcome, removes the offer and queues the initiator's RESULT, again in
    one transaction, so an install is never reported twice or lost.

    A push that names a GET's ask (5.47 "With the user data") is that
    GET's source sending the asker the app's user data: the ask is read
    (af_asks, never written here) and must be open, this device's, for
    this program and target; the offer carries the ask, by which the
    asker imports one push's data per ask however often the source pushes.

    UNINSTALL (S1.5) names targets the same way and queues one durable
    item in each target's outbox; the same target-list builder serves both.
    =========================================================================
*/
#include "broker_xacct.h"
#include "af_trust.h"

//  A push waiting for the matcher's answer for each of its targets
typedef struct {
    af_broker_t *broker;
    char hex [AF_ID_HEX + 1];       //  push ID: push_jobs key
    broker_caller_t caller;         //  the initiator's PUSH
    char account [AF_MAX_ACCOUNT + 1];
    char initiator [AF_ID_HEX + 1];
    af_msg_t *accepted;             //  PUSH_ACCEPTED being filled in
    af_msg_t **offers;              //  one OFFER per target with a package
    uint32_t outstanding;           //  matcher answers still to come
    char data_hash [AF_HASH_HEX + 1];   //  the push's user data, if any
    uint64_t data_total;
    char ask [AF_ID_HEX + 1];       //  a GET's ask whose user data it carries (5.47), or ""
    bool entitled;                  //  the account may have the program if it is paid
    broker_notice_t notice;         //  GET: the source device's notice (item NULL: none)
} push_job_t;

void
broker_push_jobs_free (void **item)
{
    push_job_t *job = (push_job_t *) *item;
    if (job) {
        for (uint32_t i = 0; job->offers && i < job->accepted->result_count; i++)
            af_msg_destroy (&job->offers [i]);
        free (job->offers);
        af_msg_destroy (&job->accepted);
        af_msg_destroy (&job->notice.item);
        free (job);
        *item = NULL;
    }
}

bool
broker_push_jobs_name (af_broker_t *self, const char *account, const char *hash)
{
    for (push_job_t *job = (push_job_t *) zhashx_first (self->push_jobs); job;
         job = (push_job_t *) zhashx_next (self->push_jobs))
        if (streq (job->data_hash, hash) && streq (job->account, account))
            return true;
    return false;
}

static void
s_target_set (af_target_t *target, const char *state, const char *format, ...)
{
    snprintf (target->state, sizeof target->state, "%s", state);
    va_list args;
    va_start (args, format);
    vsnprintf (target->reason, sizeof target->reason, format, args);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  The push policy (S2.3)

//  The first attestation rule of "name=value, ..." the PUSH does not meet
static const char *
s_policy_attest (af_broker_t *self, af_msg_t *msg, char *why, size_t size)
{
    char rules [sizeof self->config.require];
    snprintf (rules, sizeof rules, "%s", self->config.require);
    char *saved = NULL;
    for (char *rule = strtok_r (rules, ",", &saved); rule; rule = strtok_r (NULL, ",", &saved)) {
        while (*rule == ' ')
            rule++;
        size_t len = strlen (rule);
        while (len && rule [len - 1] == ' ')
            rule [--len] = 0;
        if (!len)
            continue;
        bool met = false;
        for (uint32_t i = 0; i < msg->attest_count && !met; i++)
            met = streq (msg->attest [i], rule);
        if (met)
            continue;
        const char *eq = strchr (rule, '=');
        int name = eq? (int) (eq - rule): (int) len;
        for (uint32_t i = 0; i < msg->attest_count; i++)
            if (strncmp (msg->attest [i], rule, (size_t) name) == 0 && msg->attest [i][name] == '=') {
                snprintf (why, size, "attestation %s required; the device reported %s", rule, msg->attest [i]);
                return why;
            }
        snprintf (why, size, "attestation %s required; the device reported none", rule);
        return why;
    }
    return NULL;
}

//  The first policy rule the initiating device breaks, or NULL.
static const char *
s_policy_check (af_broker_t *self, af_msg_t *msg, char *why, size_t size)
{
    if (*self->config.min_node_version) {
        uint32_t want = 0, have = 0;
        af_version_parse (self->config.min_node_version, &want);
        if (!*msg->node_version || af_version_parse (msg->node_version, &have) != AF_OK || have < want) {
            snprintf (why, size, "node version %s is below the required %s",
                      *msg->node_version? msg->node_version: "(not reported)", self->config.min_node_version);
            return why;
        }
    }
    if (!*self->config.require)
        return NULL;
    if (s_policy_attest (self, msg, why, size))
        return why;
    uint64_t now = (uint64_t) zclock_time ();
    uint64_t max_age = (uint64_t) self->config.max_age_s * 1000;
    if (msg->attest_time == 0 || msg->attest_time + max_age < now) {
        snprintf (why, size, "attestations are %s; at most %d s old accepted",
                  msg->attest_time? "too old": "undated", self->config.max_age_s);
        return why;
    }
    if (msg->attest_time > now + AF_ATTEST_SKEW_MS) {
        snprintf (why, size, "attestations are dated in the future");
        return why;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Targets, for PUSH and UNINSTALL alike

//  The targets msg names ("all": every other device), each once, in the
//  order given, as reply->results with their names; a target that is not
//  a device of the account, or the sender itself, is "refused" with the
//  reason. device [i] is the target's description, or NULL when refused.
//  Returns the number of targets, 0 on a store error (reply untouched).
static uint32_t
s_targets (af_broker_t *self, session_t *session, af_msg_t *msg, bool self_allowed, const char *self_refusal,
           af_msg_t *reply, af_device_t **devices_p, const af_device_t ***device_p)
{
    uint32_t count;
    if (af_registry_devices (self->registry, session->account, devices_p, &count) != AF_OK)
        return 0;
    af_device_t *devices = *devices_p;
    bool all = msg->target_count == 1 && streq (msg->targets [0], "all");
    uint32_t wanted = all? count: msg->target_count;
    af_msg_set_result_count (reply, wanted);
    const af_device_t **device = (const af_device_t **) calloc (wanted? wanted: 1, sizeof *device);
    assert (device);
    uint32_t n = 0;
    for (uint32_t i = 0; i < wanted; i++) {
        const char *target_id = all? devices [i].id: msg->targets [i];
        if (all && streq (target_id, session->device_id))
            continue;
        bool repeat = false;
        for (uint32_t j = 0; j < n && !repeat; j++)
            repeat = streq (reply->results [j].device_id, target_id);
        if (repeat)
            continue;
        af_target_t *target = &reply->results [n];
        snprintf (target->device_id, sizeof target->device_id, "%s", target_id);
        for (uint32_t j = 0; j < count && !device [n]; j++)
            if (streq (devices [j].id, target_id))
                device [n] = &devices [j];
        if (device [n])
            snprintf (target->name, sizeof target->name, "%s", device [n]->name);
        if (streq (target_id, session->device_id) && !self_allowed) {
            s_target_set (target, "refused", "%s", self_refusal);
            device [n] = NULL;
        }
        else
        if (!device [n])
            s_target_set (target, "refused", "not a device of this account");
        n++;
    }
    reply->result_count = n;
    *device_p = device;
    return n;
}

//  --------------------------------------------------------------------------
//  PUSH

//  The first offer of the push with a price, or NULL
static const af_package_t *
s_push_priced (push_job_t *job)
{
    for (uint32_t i = 0; i < job->accepted->result_count; i++)
        if (job->offers [i] && job->offers [i]->package.price_cents > 0)
            return &job->offers [i]->package;
    return NULL;
}

//  Two devices of the account that have the program, the initiator first
//  if it has it: where a target can buy it from (GET, SPEC 5.47)
typedef struct {
    const char *program, *initiator;
    char holder [2][AF_ID_HEX + 1];
} holders_t;

static int
s_holder (const char *device_id, const af_msg_t *app, void *arg)
{
    holders_t *h = (holders_t *) arg;
    if (!*device_id || !streq (app->program, h->program) || streq (h->holder [0], device_id))
        return 0;
    if (streq (device_id, h->initiator))
        memcpy (h->holder [1], h->holder [0], sizeof h->holder [1]);
    if (streq (device_id, h->initiator) || !*h->holder [0])
        af_strcopy (h->holder [0], sizeof h->holder [0], device_id);
    else
    if (!*h->holder [1])
        af_strcopy (h->holder [1], sizeof h->holder [1], device_id);
    return 0;
}

//  The account is not entitled (code 402), or the payments service could
//  not say (5xx, why): every target whose package has a price is refused,
//  or failed, with the code, and is offered nothing
static void
s_push_unpaid (push_job_t *job, int code, const char *why)
{
    const char *program = job->accepted->program;
    holders_t holders = { program, job->initiator, { "", "" } };
    if (code == AF_E_PAYMENT_REQUIRED
    &&  af_lists_each (job->broker->lists, job->account, NULL, s_holder, &holders) != AF_OK)
        holders.holder [0][0] = holders.holder [1][0] = 0;
    for (uint32_t i = 0; i < job->accepted->result_count; i++) {
        af_msg_t *offer = job->offers [i];
        if (!offer || offer->package.price_cents == 0)
            continue;
        af_target_t *target = &job->accepted->results [i];
        uint32_t price = offer->package.price_cents;
        const char *from = holders.holder [streq (holders.holder [0], target->device_id)? 1: 0];
        if (code == AF_E_PAYMENT_REQUIRED)
            s_target_set (target, "refused", "payment required: %s costs %u.%02u %s and the account has not bought "
                          "it; buy it first, on that device: appferry get %s --from %s; nothing was sent", program,
                          price / 100, price % 100, offer->package.currency, program,
                          *from? from: "DEVICE (a device of the account that has it)");
        else
            s_target_set (target, "failed", "%s costs %u.%02u %s and the payments service could not say whether the "
                          "account bought it (%s); try again later; nothing was sent", program, price / 100,
                          price % 100, offer->package.currency, why);
        target->code = code == AF_E_PAYMENT_REQUIRED || (code >= 500 && code <= 599)? (uint32_t) code:
                       AF_E_UNAVAILABLE;
        target->version_name [0] = 0;
        af_msg_destroy (&job->offers [i]);
        zsys_info ("broker: push %s of '%s': %s not offered to %s: %u %s", job->hex, job->account, program,
                   target->device_id, target->code, code == AF_E_PAYMENT_REQUIRED? "not bought": why);
    }
}

static void s_push_commit (af_broker_t *self, push_job_t *job);

//  The payments service's answer (broker_pay_entitled): commit, with the
//  paid offers, or without them
static void
s_push_entitled (void *arg, int code, const char *reason)
{
    push_job_t *job = (push_job_t *) arg;
    if (code == AF_OK)
        job->entitled = true;
    else
        s_push_unpaid (job, code, reason);
    s_push_commit (job->broker, job);
}

//  Every target answered: record the push and its offers in one
//  transaction, answer the initiator, deliver to targets that are online.
//  The one gate of every push: a package with a price is offered only to
//  an account entitled to it, asked of the payments service first.
static void
s_push_commit (af_broker_t *self, push_job_t *job)
{
    if (!job->entitled && s_push_priced (job)) {
        if (broker_pay_entitled (self, job->account, job->accepted->program, s_push_entitled, job) == AF_OK)
            return;                     //  committed with the answer
        s_push_unpaid (job, AF_E_UNAVAILABLE, "the payments queue is full");
    }
    //  The notice first, in this batch: on disk with the record, before
    //  any answer; told once by its key, so a push asked again tells no more
    bool offered = false;
    for (uint32_t i = 0; i < job->accepted->result_count; i++)
        offered |= job->offers [i] != NULL;
    int code = AF_OK;
    if (offered && job->notice.item && !*job->notice.device_id)    //  a friend on another broker
        code = xnotice_send (self, job->account, job->accepted->program, &job->notice);
    else
    if (offered && job->notice.item) {
        //  The ask first (5.47a): an ask without its notice expires and
        //  tells the asker; a notice without its ask would leave it waiting
        code = broker_ask_open (self, &job->notice);
        zframe_t *frame = code == AF_OK? af_msg_encode (job->notice.item): NULL;
        bool queued = false;
        code = frame? af_paynotes_put (self->paynotes, job->notice.account, job->notice.device_id, job->notice.key,
                                       zframe_data (frame), zframe_size (frame), &queued): AF_E_INTERNAL;
        zframe_destroy (&frame);
        if (code == AF_OK && queued)
            broker_deliver (self, broker_online (self, job->notice.account, job->notice.device_id));
        if (code != AF_OK)
            zsys_error ("broker: push %s of '%s': cannot queue the notice for %s: %s", job->hex, job->account,
                        job->notice.device_id, af_code_name (code));
    }
    if (code == AF_OK)
        code = af_pushes_create (self->pushes, job->account, job->initiator, job->accepted, job->offers);
    if (code != AF_OK) {
        zsys_error ("broker: cannot record push %s of '%s': %s", job->hex, job->account, af_code_name (code));
        session_t *initiator = broker_session (self, job->caller.session);
        if (initiator)
            broker_error_rid (self, initiator, job->caller.has_rid? job->caller.rid: NULL,
                              code == AF_E_QUOTA? AF_E_QUOTA: AF_E_INTERNAL,
                              code == AF_E_QUOTA? "a target's queue is full; nothing was sent":
                              "the push could not be stored; nothing was sent");
    }
    else {
        zsys_info ("broker: push %s of '%s' by %s: %s to %u device(s)", job->hex, job->account,
                   job->initiator, job->accepted->program, job->accepted->result_count);
        af_msg_t *reply = af_msg_new (AF_MSG_PUSH_ACCEPTED);
        memcpy (reply->push_id, job->accepted->push_id, sizeof reply->push_id);
        memcpy (reply->program, job->accepted->program, sizeof reply->program);
        af_msg_set_result_count (reply, job->accepted->result_count);
        memcpy (reply->results, job->accepted->results, job->accepted->result_count * sizeof (af_target_t));
        broker_answer (self, &job->caller, &reply);
        for (uint32_t i = 0; i < job->accepted->result_count; i++)
            if (job->offers [i])
                broker_deliver (self, broker_online (self, job->account, job->accepted->results [i].device_id));
    }
    zhashx_delete (self->push_jobs, job->hex);
}

//  The store's signed metadata of the program, for the target to check
//  the package by (SPEC 5.20, 11): the broker only carries it, it cannot
//  make or change it. A catalog without signed metadata gives none.
static void
s_offer_meta (af_broker_t *self, af_msg_t *offer)
{
    char meta [600], err [300];
    uint8_t *bundle = NULL;
    size_t size = 0;
    snprintf (meta, sizeof meta, "%s/meta", self->config.catalog);
    int code = af_trust_bundle_load (meta, offer->program, &bundle, &size, err, sizeof err);
    if (code == AF_OK)
        af_msg_set_body (offer, bundle, size);
    else
    if (code != AF_E_NO_BLOB)
        zsys_warning ("broker: the offer of %s goes without its metadata: %s", offer->program, err);
    free (bundle);
}

//  The matcher's answer for one target (af_dispatch completion)
static void
s_push_resolved (void *arg, uint32_t index, af_msg_t **reply_p)
{
    push_job_t *job = (push_job_t *) arg;
    af_broker_t *self = job->broker;
    af_msg_t *reply = *reply_p;
    af_target_t *target = &job->accepted->results [index];
    if (!reply || reply->id != AF_MSG_RESOLVED)
        s_target_set (target, "failed", "no package could be chosen: %s",
                      reply && *reply->reason? reply->reason: "the matcher did not answer");
    else
    if (reply->fit == AF_FIT_PACKAGE || reply->fit == AF_FIT_STORE_LINK) {
        af_msg_t *offer = af_msg_new (AF_MSG_OFFER);
        snprintf (offer->push_id, sizeof offer->push_id, "%s", job->hex);
        snprintf (offer->program, sizeof offer->program, "%s", job->accepted->program);
        snprintf (offer->from, sizeof offer->from, "%s", job->initiator);
        offer->fit = reply->fit;
        offer->has_package = true;
        offer->package = reply->package;
        if (reply->fit == AF_FIT_PACKAGE) {
            memcpy (offer->data_hash, job->data_hash, sizeof offer->data_hash);
            offer->data_total = job->data_total;
            memcpy (offer->ask, job->ask, sizeof offer->ask);
            s_offer_meta (self, offer);
        }
        job->offers [index] = offer;
        bool online = broker_online (self, job->account, target->device_id) != NULL;
        s_target_set (target, online? "offered": "queued", "%s", online? "":
                      "the device is offline; it gets the package when it next connects");
        snprintf (target->version_name, sizeof target->version_name, "%s", reply->package.version_name);
    }
    else
        s_target_set (target, "no-fit", "%s", *reply->reason? reply->reason: "no package fits this device");
    if (job->outstanding && --job->outstanding == 0)
        s_push_commit (self, job);
}

static push_job_t *
s_push_job_new (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    push_job_t *job = (push_job_t *) zmalloc (sizeof (push_job_t));
    assert (job);
    job->broker = self;
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (job->hex, sizeof job->hex, id, AF_ID_SIZE);
    broker_caller (&job->caller, session, msg);
    snprintf (job->account, sizeof job->account, "%s", session->account);
    snprintf (job->initiator, sizeof job->initiator, "%s", session->device_id);
    job->accepted = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    snprintf (job->accepted->push_id, sizeof job->accepted->push_id, "%s", job->hex);
    snprintf (job->accepted->program, sizeof job->accepted->program, "%s", msg->program);
    snprintf (job->data_hash, sizeof job->data_hash, "%s", msg->data_hash);
    job->data_total = msg->data_total;
    snprintf (job->ask, sizeof job->ask, "%s", msg->ask);
    return job;
}

//  A push that names an ask (5.47): a GET's source sends the asker the
//  app's user data. The ask must be open, this device's, for this program,
//  and the push go to its asker alone, with data; a push for a closed ask
//  is refused, so a source that answered its ask (RECORD_PUT) and gets its
//  notice again sends nothing twice. Read only: the ask is closed by
//  RECORD_PUT alone (handle_record.c). False when refused (answered).
static bool
s_push_ask (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    uint8_t id [AF_ID_SIZE];
    if (af_id_from_hex (msg->ask, id) != AF_OK || !*msg->data_hash || msg->target_count != 1) {
        broker_error (self, session, msg, AF_E_MALFORMED, "a push for an ask: 'ask' is 32 lowercase hex digits, "
                      "with the user data (dataHash) and the asker as its one target");
        return false;
    }
    af_ask_t ask;
    bool found = false;
    int code = af_asks_get (self->asks, session->account, id, &ask, &found);
    if (code != AF_OK) {
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot read the ask; try again later");
        return false;
    }
    if (!found || !streq (ask.source, session->device_id) || !streq (ask.program, msg->program)
    ||  !streq (ask.asker_account, session->account) || !streq (ask.asker, msg->targets [0])) {
        broker_error (self, session, msg, AF_E_NO_ASK, "no ask %s for this device, %s and device %s", msg->ask,
                      msg->program, msg->targets [0]);
        return false;
    }
    if (ask.state != AF_ASK_OPEN) {
        broker_error (self, session, msg, ask.state == AF_ASK_ANSWERED? AF_E_ANSWERED: AF_E_ASK_EXPIRED,
                      "ask %s is closed (%s); its user data is not sent", msg->ask,
                      ask.state == AF_ASK_ANSWERED? "answered before": "the asker was told it keeps its defaults");
        return false;
    }
    return true;
}

//  Checks before anything is asked: the policy, the user data named, the
//  ask it answers
static bool
s_push_admit (af_broker_t *self, session_t *session, af_msg_t *msg, bool for_self)
{
    char why [AF_MAX_REASON + 1];
    if (!for_self && s_policy_check (self, msg, why, sizeof why)) {
        zsys_warning ("broker: refused PUSH of '%s' from %s of '%s': policy: %s", msg->program,
                      session->device_id, session->account, why);
        broker_error (self, session, msg, AF_E_POLICY, "%s", why);
        return false;
    }
    if (*msg->data_hash && (!broker_hash_hex (msg->data_hash)
                        || broker_data_size (self, session->account, msg->data_hash) != (int64_t) msg->data_total)) {
        broker_error (self, session, msg, AF_E_MALFORMED, "the push's user data is not on the broker: UPLOAD it first");
        return false;
    }
    return !*msg->ask || s_push_ask (self, session, msg);
}

void
handle_push (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    broker_push (self, session, msg, false, NULL);
}

void
broker_push (af_broker_t *self, session_t *session, af_msg_t *msg, bool entitled, broker_notice_t *notice)
{
    //  "self": the device installs from the server's store for itself (a
    //  sync pick, S1.4); the push policy guards pushes to other devices
    bool for_self = msg->target_count == 1 && streq (msg->targets [0], "self");
    if (for_self) {
        snprintf (msg->targets [0], sizeof msg->targets [0], "%s", session->device_id);
        msg->data_hash [0] = 0;
        msg->ask [0] = 0;
    }
    if (!s_push_admit (self, session, msg, for_self))
        return;
    push_job_t *job = s_push_job_new (self, session, msg);
    job->entitled = entitled;
    if (notice) {
        job->notice = *notice;
        notice->item = NULL;
    }
    af_device_t *devices = NULL;
    const af_device_t **device = NULL;
    uint32_t n = s_targets (self, session, msg, for_self, "a device cannot push to itself",
                            job->accepted, &devices, &device);
    void *item = job;
    if (!devices) {
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot read the account's devices");
        broker_push_jobs_free (&item);
        return;
    }
    if (n == 0 || af_dispatch_room (self->dispatch) < n) {
        if (n == 0)
            broker_error (self, session, msg, AF_E_NO_DEVICE, "the account has no other device to push to");
        else
            broker_error (self, session, msg, AF_E_UNAVAILABLE, "the matcher queue is full; try again later");
        broker_push_jobs_free (&item);
        free (device);
        free (devices);
        return;
    }
    job->offers = (af_msg_t **) calloc (n, sizeof (af_msg_t *));
    assert (job->offers);
    zhashx_insert (self->push_jobs, job->hex, job);
    //  The broker asks the matcher itself, with each target's own description
    for (uint32_t i = 0; i < n; i++)
        if (device [i] && broker_resolve (self, msg->program, device [i], s_push_resolved, job, i) == AF_OK)
            job->outstanding++;
        else
        if (device [i])
            s_target_set (&job->accepted->results [i], "failed", "the matcher queue is full; try again later");
    free (device);
    free (devices);
    if (job->outstanding == 0)
        s_push_commit (self, job);          //  every target refused
}

//  A push to the session's own device of a package chosen already (a
//  restore's version: handle_backup.c): the same job, offer, record and
//  answer as a PUSH to "self", without asking the matcher again
void
broker_push_resolved (af_broker_t *self, session_t *session, const broker_caller_t *caller,
                      const char *program, af_msg_t **resolved_p)
{
    af_msg_t *push = af_msg_new (AF_MSG_PUSH);
    push->has_rid = caller->has_rid;
    memcpy (push->rid, caller->rid, AF_ID_SIZE);
    snprintf (push->program, sizeof push->program, "%s", program);
    push_job_t *job = s_push_job_new (self, session, push);
    af_msg_destroy (&push);
    af_msg_set_result_count (job->accepted, 1);
    snprintf (job->accepted->results [0].device_id, sizeof job->accepted->results [0].device_id, "%s",
              session->device_id);
    snprintf (job->accepted->results [0].name, sizeof job->accepted->results [0].name, "%s", session->device.name);
    job->offers = (af_msg_t **) calloc (1, sizeof (af_msg_t *));
    assert (job->offers);
    zhashx_insert (self->push_jobs, job->hex, job);
    job->outstanding = 1;
    s_push_resolved (job, 0, resolved_p);
    af_msg_destroy (resolved_p);
}

//  --------------------------------------------------------------------------
//  UNINSTALL

void
handle_uninstall (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    if (msg->target_count == 0) {
        broker_error (self, session, msg, AF_E_MALFORMED, "UNINSTALL: name the target devices, or all");
        return;
    }
    af_msg_t *reply = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (reply->push_id, sizeof reply->push_id, id, AF_ID_SIZE);
    snprintf (reply->program, sizeof reply->program, "%s", msg->program);
    af_device_t *devices = NULL;
    const af_device_t **device = NULL;
    uint32_t n = s_targets (self, session, msg, false,
                            "a device uninstalls its own apps itself (appferry uninstall PROGRAM)",
                            reply, &devices, &device);
    if (!devices) {
        broker_error (self, session, msg, AF_E_INTERNAL, "cannot read the account's devices");
        af_msg_destroy (&reply);
        return;
    }
    //  One UNINSTALL item per accepted target, recorded like a push's offers
    //  so that each target's outcome (DONE) reaches the initiator
    af_msg_t **items = (af_msg_t **) calloc (n? n: 1, sizeof (af_msg_t *));
    assert (items);
    uint32_t queued = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!device [i])
            continue;
        af_target_t *target = &reply->results [i];
        bool online = broker_online (self, session->account, target->device_id) != NULL;
        s_target_set (target, online? "offered": "queued", "%s", online? "":
                      "the device is offline; it uninstalls when it next connects");
        items [i] = af_msg_new (AF_MSG_UNINSTALL);
        memcpy (items [i]->push_id, reply->push_id, sizeof items [i]->push_id);
        snprintf (items [i]->program, sizeof items [i]->program, "%s", msg->program);
        snprintf (items [i]->from, sizeof items [i]->from, "%s", session->device_id);
        queued++;
    }
    int code = af_pushes_create (self->pushes, session->account, session->device_id, reply, items);
    if (code != AF_OK) {
        broker_error (self, session, msg, code == AF_E_QUOTA? AF_E_QUOTA: AF_E_INTERNAL,
                      code == AF_E_QUOTA? "a target's queue is full; nothing was sent":
                      "the request could not be stored; nothing was sent");
        af_msg_destroy (&reply);
    }
    else {
        zsys_info ("broker: %s of '%s' asks %u device(s) to uninstall %s", session->device_id,
                   session->account, queued, msg->program);
        for (uint32_t i = 0; i < n; i++)
            if (items [i])
                broker_deliver (self, broker_online (self, session->account, reply->results [i].device_id));
        broker_reply (self, session, msg, &reply);
    }
    for (uint32_t i = 0; i < n; i++)
        af_msg_destroy (&items [i]);
    free (items);
    free (device);
    free (devices);
}

//  --------------------------------------------------------------------------
//  FETCH, CREDIT, PROGRESS

void
handle_fetch (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    unsigned char hash [AF_HASH_SIZE];
    if (af_hash_from_hex (msg->hash, hash) != AF_OK) {
        broker_error (self, session, msg, AF_E_MALFORMED, "FETCH: hash must be 64 lowercase hex digits");
        return;
    }
    af_transfer_for_t target;
    memset (&target, 0, sizeof target);
    if (!af_pushes_offers_blob (self->pushes, session->account, session->device_id, msg->hash,
                                target.push_id, target.initiator)) {
        zsys_warning ("broker: refused FETCH of %.16s from %s of '%s': no pending offer",
                      msg->hash, session->device_id, session->account);
        broker_error (self, session, msg, AF_E_FORBIDDEN, "no pending offer of this package for this device");
        return;
    }
    snprintf (target.account, sizeof target.account, "%s", session->account);
    snprintf (target.device_id, sizeof target.device_id, "%s", session->device_id);
    char err [AF_MAX_REASON + 1];
    int code = af_transfers_fetch (self->transfers, session->hex, session->routing, msg->hash, msg->offset,
                                   msg->credit, &target, err, sizeof err);
    if (code != AF_OK) {
        zsys_warning ("broker: FETCH of %.16s for %s failed: %s", msg->hash, session->device_id, err);
        broker_error (self, session, msg, code, "%s", err);
    }
}

void
handle_credit (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    //  Credit for a transfer that finished is no error (af_transfers.h)
    af_transfers_credit (self->transfers, session->hex, msg->hash, msg->credit);
}

void
broker_transfer_progress (void *arg, const af_transfer_for_t *target, uint64_t sent, uint64_t total)
{
    af_broker_t *self = (af_broker_t *) arg;
    session_t *initiator = broker_online (self, target->account, target->initiator);
    if (!initiator)
        return;
    af_msg_t *progress = af_msg_new (AF_MSG_PROGRESS);
    memcpy (progress->push_id, target->push_id, sizeof progress->push_id);
    memcpy (progress->device_id, target->device_id, sizeof progress->device_id);
    progress->offset = sent;
    progress->total = total;
    broker_send (self, initiator, &progress);
}

//  --------------------------------------------------------------------------
//  DONE: a target's outcome

void
handle_done (af_broker_t *self, session_t *session, af_msg_t *msg)
{
    unsigned char push_id [AF_ID_SIZE];
    if (af_id_from_hex (msg->push_id, push_id) != AF_OK) {
        broker_error (self, session, msg, AF_E_MALFORMED, "DONE: push must be 32 lowercase hex digits");
        return;
    }
    if (!streq (msg->state, "installed") && !streq (msg->state, "store-link") && !streq (msg->state, "failed")
    &&  !streq (msg->state, "uninstalled")) {
        broker_error (self, session, msg, AF_E_MALFORMED,
                      "DONE: 'state' must be installed, store-link, uninstalled or failed");
        return;
    }
    char initiator [AF_ID_HEX + 1], freed [AF_HASH_HEX + 1];
    bool found;
    int code = af_pushes_done (self->pushes, session->account, session->device_id, msg, initiator, &found,
                               freed);
    if (code != AF_OK) {
        zsys_error ("broker: cannot record the outcome of push %s: %s", msg->push_id, af_code_name (code));
        //  Even a full initiator's queue is the server's trouble: try again later
        broker_error (self, session, msg, AF_E_INTERNAL, "the outcome could not be stored; send it again");
        return;
    }
    if (found) {
        zsys_info ("broker: push %s: device %s of '%s' reports %s%s%s", msg->push_id, session->device_id,
                   session->account, msg->state, *msg->reason? ": ": "", msg->reason);
        broker_item_done (self, session);
        broker_deliver (self, broker_online (self, session->account, initiator));
        //  The last target that needed the push's user data has it
        if (*freed)
            broker_data_remove (self, session->account, freed);
    }
    //  Not found: no such pending offer (a repeat after a crash): done already
    broker_ok (self, session, msg);
}
