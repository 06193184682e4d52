/*  =========================================================================
    appferry-payments - the payments worker: payment notices, charges and
    entitlements for the broker (S0.4, S0.6, S0.7; protocol/SPEC.md 5.46)

    A worker like the matcher (protocol/af_worker runs the dialog) whose
    state is its ledger (af_ledger, its own LMDB environment) and a payment
    processor behind af_provider_t; the only processor built in is the test
    one (af_testpay). One worker per ledger: the ledger is written by one
    process. Requests are answered in batches (group commit, as the
    broker's): every request waiting on the socket, up to AF_BATCH, goes
    to the ledger at once (af_ledger_run: their intents in one synced
    transaction, the charges in one question to the processor, the
    outcomes in a second synced transaction, which is also the next
    batch's first when more requests wait by then), and each answer goes
    out only after what it says is on disk; two confirmations of one
    intent, in one batch or in two, never race. At start, before it offers the service, it
    resolves every charge a kill left unrecorded.
    =========================================================================
*/
#include "af_ledger.h"
#include "af_provider.h"
#include "af_worker.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <signal.h>
#include <sodium.h>

typedef struct {
    af_worker_options_t worker;     //  broker, broker_key, cert, credit, heartbeat, verbose
    char ledger [512];
    char provider [16];
    char books [512];
    int intent_ttl_s;
    int crash_at;                   //  af_ledger_fault_t: --crash-at (tests)
    bool status;
} config_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-payments --broker-key FILE --cert FILE --ledger DIR [OPTIONS]\n"
"Payment notices, charges and entitlements for the broker's paid installs.\n"
"Each purchase is charged at most once, whatever is killed when.\n"
"\n"
"  -C, --config FILE       settings (ZPL, section 'payments'; see\n"
"                          deploy/appferry-payments.cfg); options override it\n"
"  -b, --broker ENDPOINT   the broker's worker endpoint (default tcp://127.0.0.1:5671)\n"
"  -k, --broker-key FILE   the broker's public certificate (broker.cert)\n"
"  -c, --cert FILE         this worker's CURVE keypair: FILE and FILE_secret; made if\n"
"                          missing. Copy FILE into the broker's worker keys directory.\n"
"  -l, --ledger DIR        the ledger (LMDB; made if missing, mode 0700). Back it up:\n"
"                          it is the record of who paid for what.\n"
"      --provider NAME     the payment processor: 'test' (the only one built in)\n"
"      --books DIR         the test processor's own books (default LEDGER/test-provider)\n"
"      --intent-ttl S      a payment notice not confirmed within S seconds is refused\n"
"                          (default %d)\n"
"      --credit N          requests the broker may give at once (default 64); all\n"
"                          those waiting are recorded together (one batch)\n"
"      --heartbeat MS      heartbeat interval (default 1000)\n"
"      --status            print the ledger's and the test processor's totals and exit\n"
"                          (works beside a running worker)\n"
"      --crash-at STEP     tests only: die (SIGKILL) in the first batch that charges,\n"
"                          at STEP: 'intent' (recorded, not charged), 'charge'\n"
"                          (charged, not recorded) or 'record' (recorded, not answered)\n"
"  -v, --verbose           log every request\n"
"  -V, --version           show the version and exit\n"
"  -h, --help              show this help and exit\n"
"\n"
"Test tokens: tok_approve, tok_decline, tok_insufficient, tok_transient (fails once\n"
"per intent), tok_timeout (no answer, nothing charged), tok_lost_reply (charged,\n"
"answer lost), tok_slow (approved after a second).\n", AF_PAY_INTENT_MS / 1000);
}

//  A string setting into target: 0, or 2 (and a message) if empty or too long
static int
s_set_string (char *target, size_t size, const char *value, const char *name)
{
    if (!*value || strlen (value) >= size) {
        fprintf (stderr, "appferry-payments: %s: value empty or too long\n", name);
        return 2;
    }
    strcpy (target, value);
    return 0;
}

//  Apply one setting by name (a config file's or an option's)
static int
s_apply (config_t *config, const char *name, const char *value)
{
    struct { const char *name; char *target; size_t size; int *number; } table [] = {
        { "broker", config->worker.broker, sizeof config->worker.broker, NULL },
        { "broker_key", config->worker.broker_key, sizeof config->worker.broker_key, NULL },
        { "cert", config->worker.cert, sizeof config->worker.cert, NULL },
        { "ledger", config->ledger, sizeof config->ledger, NULL },
        { "provider", config->provider, sizeof config->provider, NULL },
        { "books", config->books, sizeof config->books, NULL },
        { "intent_ttl", NULL, 0, &config->intent_ttl_s },
        { "credit", NULL, 0, &config->worker.credit },
        { "heartbeat", NULL, 0, &config->worker.heartbeat_ms },
    };
    for (size_t i = 0; i < sizeof table / sizeof table [0]; i++)
        if (!strcmp (table [i].name, name)) {
            if (table [i].target)
                return s_set_string (table [i].target, table [i].size, value, name);
            char *end;
            long n = strtol (value, &end, 10);
            if (*end || end == value || n < 0 || n > 86400000) {
                fprintf (stderr, "appferry-payments: %s: not a number: %s\n", name, value);
                return 2;
            }
            *table [i].number = (int) n;
            return 0;
        }
    fprintf (stderr, "appferry-payments: unknown setting payments/%s\n", name);
    return 2;
}

//  Read a ZPL file's section 'payments': 0 or 2
static int
s_load (config_t *config, const char *path)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        fprintf (stderr, "appferry-payments: cannot read %s\n", path);
        return 2;
    }
    int rc = 0;
    for (zconfig_t *section = zconfig_child (root); section && rc == 0; section = zconfig_next (section)) {
        if (strcmp (zconfig_name (section), "payments")) {
            fprintf (stderr, "appferry-payments: %s: unknown section %s\n", path, zconfig_name (section));
            rc = 2;
        }
        for (zconfig_t *item = zconfig_child (section); item && rc == 0; item = zconfig_next (item))
            rc = s_apply (config, zconfig_name (item), zconfig_value (item)? zconfig_value (item): "");
    }
    zconfig_destroy (&root);
    return rc;
}

//  Read the options into config. -1 to go on, or the status to exit with
static int
s_parse_options (int argc, char *argv [], config_t *config)
{
    enum { OPT_PROVIDER = 1000, OPT_BOOKS, OPT_TTL, OPT_CREDIT, OPT_HEARTBEAT, OPT_CRASH, OPT_STATUS };
    const char *steps [] = { "intent", "charge", "record" };
    af_ledger_fault_t faults [] = { AF_LEDGER_FAULT_AFTER_INTENT, AF_LEDGER_FAULT_AFTER_CHARGE,
                                    AF_LEDGER_FAULT_AFTER_RECORD };
    static struct option options [] = {
        { "config", required_argument, NULL, 'C' }, { "broker", required_argument, NULL, 'b' },
        { "broker-key", required_argument, NULL, 'k' }, { "cert", required_argument, NULL, 'c' },
        { "ledger", required_argument, NULL, 'l' }, { "provider", required_argument, NULL, OPT_PROVIDER },
        { "books", required_argument, NULL, OPT_BOOKS }, { "intent-ttl", required_argument, NULL, OPT_TTL },
        { "credit", required_argument, NULL, OPT_CREDIT }, { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
        { "crash-at", required_argument, NULL, OPT_CRASH }, { "status", no_argument, NULL, OPT_STATUS }, { "verbose", no_argument, NULL, 'v' },
        { "version", no_argument, NULL, 'V' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    //  The file first, so that options override it
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp (argv [i], "-C") || !strcmp (argv [i], "--config"))
            if (s_load (config, argv [i + 1]))
                return 2;
    int opt, rc = 0;
    while (rc == 0 && (opt = getopt_long (argc, argv, "C:b:k:c:l:vVh", options, NULL)) != -1) {
        switch (opt) {
            case 'C': break;
            case 'b': rc = s_apply (config, "broker", optarg); break;
            case 'k': rc = s_apply (config, "broker_key", optarg); break;
            case 'c': rc = s_apply (config, "cert", optarg); break;
            case 'l': rc = s_apply (config, "ledger", optarg); break;
            case OPT_PROVIDER: rc = s_apply (config, "provider", optarg); break;
            case OPT_BOOKS: rc = s_apply (config, "books", optarg); break;
            case OPT_TTL: rc = s_apply (config, "intent_ttl", optarg); break;
            case OPT_CREDIT: rc = s_apply (config, "credit", optarg); break;
            case OPT_HEARTBEAT: rc = s_apply (config, "heartbeat", optarg); break;
            case OPT_CRASH:
                for (size_t i = 0; i < sizeof steps / sizeof steps [0]; i++)
                    if (!strcmp (optarg, steps [i]))
                        config->crash_at = (int) faults [i];
                if (config->crash_at == AF_LEDGER_FAULT_NONE) {
                    fprintf (stderr, "appferry-payments: --crash-at: intent, charge or record\n");
                    rc = 2;
                }
                break;
            case OPT_STATUS: config->status = true; break;
            case 'v': config->worker.verbose = true; break;
            case 'V': printf ("appferry-payments %s (protocol %d)\n", AF_VERSION, AF_PROTO_VERSION); return 0;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (rc)
        return rc;
    if (config->status && *config->ledger && optind == argc) {
        if (!*config->books)
            snprintf (config->books, sizeof config->books, "%s/test-provider", config->ledger);
        return -1;
    }
    if (optind < argc || !*config->ledger || strcmp (config->provider, "test") || config->intent_ttl_s < 1
    ||  !af_worker_options_check (&config->worker, "appferry-payments")) {
        fprintf (stderr, "appferry-payments: --broker-key, --cert and --ledger are required; --provider is "
                 "'test'; --intent-ttl at least 1; --credit 1..1024; --heartbeat at least 50\n\n");
        s_usage (stderr);
        return 2;
    }
    if (!*config->books)
        snprintf (config->books, sizeof config->books, "%s/test-provider", config->ledger);
    return -1;
}

typedef struct {
    config_t *config;
    af_ledger_t *ledger;
    af_worker_t *worker;
    //  The batch whose charges the processor answered and whose outcomes
    //  are not recorded yet: recorded with the next batch's first step,
    //  or alone when nothing else waits (af_ledger_start, af_ledger_finish)
    af_ledger_op_t *held;
    af_msg_t **held_requests;           //  its requests still to answer (owned)
    size_t held_count;
    uint64_t batches, requests;         //  ledger batches, and the requests they held
    size_t largest;                     //  the largest batch
} payments_t;

//  An ERROR answer to request
static af_msg_t *
s_error (af_msg_t *request, int code, const char *reason)
{
    zsys_warning ("payments: %s refused (%d): %s", af_msg_command_name (request->id), code, reason);
    return af_msg_error (code, request->has_rid? request->rid: NULL, "%s", reason);
}

//  A reply carrying the request's rid
static af_msg_t *
s_reply (af_msg_t *request, af_msg_id_t id)
{
    af_msg_t *reply = af_msg_new (id);
    assert (reply);
    reply->has_rid = request->has_rid;
    memcpy (reply->rid, request->rid, sizeof reply->rid);
    return reply;
}

//  PAID for intent
static af_msg_t *
s_paid (af_msg_t *request, const af_intent_t *intent, bool entitled)
{
    af_msg_t *reply = s_reply (request, AF_MSG_PAID);
    af_strcopy (reply->intent, sizeof reply->intent, intent->id);
    af_strcopy (reply->program, sizeof reply->program, intent->program);
    af_strcopy (reply->device_id, sizeof reply->device_id, entitled? request->device_id: intent->source);
    af_strcopy (reply->source_account, sizeof reply->source_account,
                entitled? request->source_account: intent->source_account);
    reply->price = intent->amount;
    af_strcopy (reply->currency, sizeof reply->currency, intent->currency);
    reply->entitled = entitled;
    return reply;
}

//  PAY_INTENT's answer: entitled (PAID), or the payment notice
static af_msg_t *
s_pay_intent (payments_t *self, af_msg_t *request, af_ledger_op_t *op)
{
    if (op->code != AF_OK)
        return s_error (request, op->code, op->err);
    if (op->entitled) {
        if (self->config->worker.verbose)
            zsys_info ("payments: %s is entitled to %s", request->account, request->program);
        return s_paid (request, &op->intent, true);
    }
    af_intent_t *intent = &op->intent;
    af_msg_t *reply = s_reply (request, AF_MSG_PAYMENT_REQUIRED);
    af_strcopy (reply->program, sizeof reply->program, intent->program);
    reply->price = intent->amount;
    af_strcopy (reply->currency, sizeof reply->currency, intent->currency);
    af_strcopy (reply->intent, sizeof reply->intent, intent->id);
    af_strcopy (reply->device_id, sizeof reply->device_id, intent->source);
    af_strcopy (reply->source_account, sizeof reply->source_account, intent->source_account);
    reply->expires = intent->created + (uint64_t) self->config->intent_ttl_s * 1000;
    if (self->config->worker.verbose)
        zsys_info ("payments: intent %s: %s owes %u %s for %s", intent->id, request->account, intent->amount,
                   intent->currency, intent->program);
    return reply;
}

//  PAY_CONFIRM's answer: PAID or why not
static af_msg_t *
s_pay_confirm (af_msg_t *request, af_ledger_op_t *op)
{
    af_intent_t *intent = &op->intent;
    if (op->code != AF_OK)
        return s_error (request, op->code, op->err);
    if (!op->found) {
        char err [AF_MAX_REASON + 1];
        snprintf (err, sizeof err, "no payment notice %s for this account", request->intent);
        return s_error (request, AF_E_NO_INTENT, err);
    }
    switch (intent->state) {
        case AF_INTENT_PAID:
            zsys_info ("payments: intent %s paid: %s, %u %s for %s (%s)", intent->id, intent->account,
                       intent->amount, intent->currency, intent->program, intent->charge);
            return s_paid (request, intent, false);
        case AF_INTENT_CHARGING:
            return s_error (request, AF_E_UNAVAILABLE, intent->reason);
        default: {
            char err [AF_MAX_REASON + 1];
            snprintf (err, sizeof err, "payment %s: %s", af_intent_state_name (intent->state), intent->reason);
            return s_error (request, AF_E_PAYMENT_REQUIRED, err);
        }
    }
}

//  The answer to request, whose ledger op is op
static af_msg_t *
s_answer (payments_t *self, af_msg_t *request, af_ledger_op_t *op)
{
    return op->kind == AF_LEDGER_REQUEST? s_pay_intent (self, request, op): s_pay_confirm (request, op);
}

//  A batch step failed: die at a test fault (--crash-at), else log it
static void
s_failed (payments_t *self, const char *err)
{
    if (self->config->crash_at != AF_LEDGER_FAULT_NONE) {
        zsys_warning ("payments: %s: dying now, as --crash-at asks", err);
        raise (SIGKILL);
    }
    zsys_error ("payments: a batch failed, its requests refused: %s", err);
}

//  Answer the held batch (its outcomes are on disk now, or it failed)
static void
s_held_answer (payments_t *self)
{
    size_t unsent = 0;
    for (size_t i = 0; i < self->held_count; i++)
        if (self->held_requests [i]) {
            af_msg_t *reply = s_answer (self, self->held_requests [i], &self->held [i]);
            if (af_worker_send (self->worker, &reply) != AF_OK)
                unsent++;
            af_msg_destroy (&self->held_requests [i]);
        }
    if (unsent)
        zsys_warning ("payments: %zu answers could not go to the broker (it times the requests out; "
                      "asked again, they find what the ledger recorded)", unsent);
    free (self->held);
    free (self->held_requests);
    self->held = NULL;
    self->held_requests = NULL;
    self->held_count = 0;
}

//  Every PAY_INTENT and PAY_CONFIRM waiting, as one ledger batch (group
//  commit: af_ledger.h). One transaction records the outcomes of the
//  batch before, if held, and this batch's intents; the held batch is
//  answered then; the processor is asked for this batch's charges; the
//  requests that need nothing more are answered now, and the charged
//  ones are held until their outcomes are recorded: with the next batch,
//  or alone when nothing else waits (s_idle). PURCHASES (a read) is left
//  to its own function, which af_worker calls after this one.
static void
s_batch (void *arg, af_msg_t **requests, size_t count, af_msg_t **replies)
{
    payments_t *self = (payments_t *) arg;
    af_ledger_op_t *ops = (af_ledger_op_t *) calloc (count, sizeof *ops);
    size_t *index = (size_t *) calloc (count, sizeof *index);
    assert (ops && index);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        af_msg_t *request = requests [i];
        af_ledger_op_t *op = &ops [n];
        op->account = request->account;
        if (request->id == AF_MSG_PAY_INTENT) {
            op->kind = AF_LEDGER_REQUEST;
            op->program = request->program;
            op->source = request->device_id;
            op->source_account = request->source_account;
            op->amount = request->price;
            op->currency = request->currency;
        }
        else
        if (request->id == AF_MSG_PAY_CONFIRM) {
            op->kind = AF_LEDGER_CONFIRM;
            op->intent_hex = request->intent;
            op->token = request->token;
            zsys_info ("payments: confirming intent %.32s of %s", request->intent, request->account);
        }
        else
            continue;
        index [n++] = i;
    }
    char err [AF_MAX_REASON + 1];
    int code = af_ledger_start (self->ledger, self->held, self->held_count, ops, n, zclock_time (), err, sizeof err);
    if (code != AF_OK)
        s_failed (self, err);
    s_held_answer (self);
    bool keep = false;
    for (size_t j = 0; j < n; j++)
        if (code == AF_OK && af_ledger_op_pending (&ops [j]))
            keep = true;
        else
            replies [index [j]] = s_answer (self, requests [index [j]], &ops [j]);
    if (keep) {
        //  The held batch: its ops (whole: a second confirmation names the
        //  first by index) and the requests still to answer
        self->held = ops;
        self->held_count = n;
        self->held_requests = (af_msg_t **) calloc (n, sizeof (af_msg_t *));
        assert (self->held_requests);
        for (size_t j = 0; j < n; j++)
            if (af_ledger_op_pending (&ops [j])) {
                self->held_requests [j] = requests [index [j]];
                requests [index [j]] = NULL;        //  ours now, answered later
            }
    }
    else
        free (ops);
    if (n) {
        self->batches++;
        self->requests += n;
        if (n > self->largest)
            self->largest = n;
    }
    free (index);
}

//  Nothing else waits: record the held batch's outcomes alone, and answer it
static void
s_idle (void *arg)
{
    payments_t *self = (payments_t *) arg;
    if (!self->held)
        return;
    char err [AF_MAX_REASON + 1];
    if (af_ledger_finish (self->ledger, self->held, self->held_count, zclock_time (), err, sizeof err) != AF_OK)
        s_failed (self, err);
    s_held_answer (self);
}

//  PURCHASES: the account's entitlements; with a program (the broker's
//  check before it offers a paid package), only that one's, if any
static af_msg_t *
s_purchases (void *arg, af_msg_t *request)
{
    payments_t *self = (payments_t *) arg;
    af_charge_t *list = (af_charge_t *) calloc (AF_MAX_PURCHASES, sizeof (af_charge_t));
    assert (list);
    size_t count = 0;
    bool found = false;
    int code = *request->program?
        af_ledger_entitlement (self->ledger, request->account, request->program, &found, list):
        af_ledger_purchases (self->ledger, request->account, list, AF_MAX_PURCHASES, &count);
    if (*request->program && found)
        count = 1;
    if (code != AF_OK) {
        free (list);
        return s_error (request, AF_E_INTERNAL, "the ledger cannot be read");
    }
    af_msg_t *reply = s_reply (request, AF_MSG_PURCHASE_LIST);
    af_msg_set_purchase_count (reply, (uint32_t) count);
    for (size_t i = 0; i < count; i++) {
        af_purchase_t *p = &reply->purchases [i];
        af_strcopy (p->program, sizeof p->program, list [i].program);
        p->price = list [i].amount;
        af_strcopy (p->currency, sizeof p->currency, list [i].currency);
        af_strcopy (p->intent, sizeof p->intent, list [i].intent);
        p->at = list [i].at;
    }
    free (list);
    return reply;
}

//  Open the processor and the ledger, and resolve what a kill left
static af_ledger_t *
s_open_ledger (config_t *config, af_testpay_t **pay_p, af_provider_t *provider)
{
    char err [1200];
    //  The ledger's directory first: the test processor's books default to inside it
    if (mkdir (config->ledger, 0700) && errno != EEXIST) {
        fprintf (stderr, "appferry-payments: cannot make %s: %s\n", config->ledger, strerror (errno));
        return NULL;
    }
    *pay_p = af_testpay_new (config->books, err, sizeof err);
    if (!*pay_p) {
        fprintf (stderr, "appferry-payments: %s\n", err);
        return NULL;
    }
    *provider = af_testpay_provider (*pay_p);
    af_ledger_t *ledger = af_ledger_new (config->ledger, provider, err, sizeof err);
    if (!ledger) {
        fprintf (stderr, "appferry-payments: %s\n", err);
        return NULL;
    }
    af_ledger_set_intent_ttl (ledger, (uint64_t) config->intent_ttl_s * 1000);
    if (config->crash_at != AF_LEDGER_FAULT_NONE)
        af_ledger_set_fault (ledger, (af_ledger_fault_t) config->crash_at);
    size_t resolved;
    if (af_ledger_recover (ledger, zclock_time (), &resolved, err, sizeof err) != AF_OK) {
        fprintf (stderr, "appferry-payments: %s\n", err);
        af_ledger_destroy (&ledger);
        return NULL;
    }
    size_t intents, charges, entitlements;
    if (af_ledger_totals (ledger, &intents, &charges, &entitlements) == AF_OK)
        zsys_info ("payments: ledger %s: %zu intents, %zu charges, %zu entitlements; %zu unrecorded charges "
                   "resolved; provider %s", config->ledger, intents, charges, entitlements, resolved,
                   provider->name);
    return ledger;
}

//  --status: one line of totals, 0; or 1
static int
s_status (config_t *config)
{
    char err [1200];
    af_testpay_t *pay = af_testpay_new (config->books, err, sizeof err);
    af_provider_t provider;
    af_ledger_t *ledger = NULL;
    if (pay) {
        provider = af_testpay_provider (pay);
        ledger = af_ledger_new (config->ledger, &provider, err, sizeof err);
    }
    size_t intents, charges, entitlements, books;
    int rc = 1;
    if (ledger && af_ledger_totals (ledger, &intents, &charges, &entitlements) == AF_OK
    &&  af_testpay_charges (pay, &books) == AF_OK) {
        printf ("intents=%zu charges=%zu entitlements=%zu provider_charges=%zu\n", intents, charges,
                entitlements, books);
        rc = 0;
    }
    else
        fprintf (stderr, "appferry-payments: %s\n", err);
    af_ledger_destroy (&ledger);
    af_testpay_destroy (&pay);
    return rc;
}

int
main (int argc, char *argv [])
{
    config_t config = { .provider = "test", .intent_ttl_s = AF_PAY_INTENT_MS / 1000 };
    af_worker_options_init (&config.worker, "tcp://127.0.0.1:5671", 64);
    int rc = s_parse_options (argc, argv, &config);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    if (config.status)
        return s_status (&config);
    zsys_init ();
    zsys_set_logident ("appferry-payments");
    af_worker_config_t dialog = af_worker_options_config (&config.worker, "payments", "appferry payments");
    char err [1200];
    af_worker_t *worker = af_worker_new (&dialog, err, sizeof err);
    if (!worker) {
        fprintf (stderr, "appferry-payments: %s\n", err);
        return 1;
    }
    af_testpay_t *pay = NULL;
    af_provider_t provider;
    af_ledger_t *ledger = s_open_ledger (&config, &pay, &provider);
    if (!ledger) {
        af_testpay_destroy (&pay);
        af_worker_destroy (&worker);
        return 1;
    }
    payments_t payments = { &config, ledger, worker, NULL, NULL, 0, 0, 0, 0 };
    af_worker_set_batch (worker, s_batch, &payments, AF_BATCH);
    af_worker_set_idle (worker, s_idle, &payments);
    af_worker_set_handler (worker, AF_MSG_PURCHASES, s_purchases, &payments);
    rc = af_worker_serve (worker, err, sizeof err);
    if (rc != AF_OK)
        fprintf (stderr, "appferry-payments: %s\n", err);
    s_idle (&payments);             //  a batch held at the stop: recorded (no one to answer now)
    af_worker_destroy (&worker);
    af_ledger_destroy (&ledger);
    af_testpay_destroy (&pay);
    zsys_info ("payments: stopped; %" PRIu64 " requests in %" PRIu64 " ledger batches (largest %zu)",
               payments.requests, payments.batches, payments.largest);
    return rc == AF_OK? 0: 1;
}
