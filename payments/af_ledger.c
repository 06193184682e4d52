/*  =========================================================================
    af_ledger - the payments ledger (see af_ledger.h for the design)

    One write transaction per state change, each synced; the provider is
    called between two of them and never inside one, so a slow processor
    holds no LMDB lock and a kill leaves either the CHARGING record (to be
    resolved by lookup) or the outcome, never half of one.
    =========================================================================
*/
#include "af_ledger.h"
#include "af_msg.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#define KEY_MAX (AF_MAX_ACCOUNT + 1 + AF_MAX_PROGRAM)

struct _af_ledger_t {
    MDB_env *env;
    MDB_dbi intents, open, pending, charges, entitlements;
    af_provider_t provider;
    uint64_t intent_ttl;
    af_ledger_fault_t fault;
};

typedef struct {
    uint8_t data [KEY_MAX];
    size_t size;
} key_t_;

//  account, 0x00, then suffix
static void
s_key (key_t_ *key, const char *account, const void *suffix, size_t size)
{
    size_t len = strlen (account);
    assert (len <= AF_MAX_ACCOUNT && size <= AF_MAX_PROGRAM);
    memcpy (key->data, account, len);
    key->data [len] = 0;
    memcpy (key->data + len + 1, suffix, size);
    key->size = len + 1 + size;
}

static MDB_val
s_val (key_t_ *key)
{
    MDB_val v = { key->size, key->data };
    return v;
}

static bool
s_terminated (const char *s, size_t size)
{
    return memchr (s, 0, size) != NULL;
}

//  The intent stored under key: AF_OK with *found, AF_E_INTERNAL if damaged
static int
s_intent_get (af_ledger_t *self, MDB_txn *txn, key_t_ *key, af_intent_t *intent, bool *found,
              char *err, size_t errlen)
{
    MDB_val k = s_val (key), v;
    int rc = mdb_get (txn, self->intents, &k, &v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    if (rc) {
        snprintf (err, errlen, "ledger: reading an intent: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    //  Layout 1 is layout 2 without its last field. LMDB gives values no
    //  alignment (a record's address depends on its page): copy, never cast
    uint32_t layout = 0;
    if (v.mv_size >= sizeof layout)
        memcpy (&layout, v.mv_data, sizeof layout);
    bool v1 = v.mv_size == AF_INTENT_V1_SIZE && layout == 1;
    if (v.mv_size != sizeof *intent && !v1) {
        snprintf (err, errlen, "ledger: a damaged intent record (%zu bytes)", v.mv_size);
        return AF_E_INTERNAL;
    }
    memset (intent, 0, sizeof *intent);
    memcpy (intent, v.mv_data, v.mv_size);
    if (v1)
        intent->layout = AF_INTENT_LAYOUT;
    if (intent->layout != AF_INTENT_LAYOUT || intent->state < AF_INTENT_OPEN || intent->state > AF_INTENT_EXPIRED
    ||  !s_terminated (intent->id, sizeof intent->id) || !s_terminated (intent->account, sizeof intent->account)
    ||  !s_terminated (intent->program, sizeof intent->program) || !s_terminated (intent->source, sizeof intent->source)
    ||  !s_terminated (intent->currency, sizeof intent->currency) || !s_terminated (intent->charge, sizeof intent->charge)
    ||  !s_terminated (intent->reason, sizeof intent->reason)
    ||  !s_terminated (intent->source_account, sizeof intent->source_account)) {
        snprintf (err, errlen, "ledger: a damaged intent record");
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  A charge record (charges, entitlements): AF_OK with *found, AF_E_INTERNAL if damaged
static int
s_charge_get (MDB_txn *txn, MDB_dbi dbi, key_t_ *key, af_charge_t *charge, bool *found)
{
    MDB_val k = s_val (key), v;
    int rc = mdb_get (txn, dbi, &k, &v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    if (rc || v.mv_size != sizeof *charge)
        return AF_E_INTERNAL;
    memcpy (charge, v.mv_data, sizeof *charge);
    if (charge->layout != AF_LEDGER_LAYOUT || !s_terminated (charge->intent, sizeof charge->intent)
    ||  !s_terminated (charge->program, sizeof charge->program)
    ||  !s_terminated (charge->currency, sizeof charge->currency)
    ||  !s_terminated (charge->charge, sizeof charge->charge))
        return AF_E_INTERNAL;
    return AF_OK;
}

static int
s_put (MDB_txn *txn, MDB_dbi dbi, key_t_ *key, const void *data, size_t size)
{
    MDB_val k = s_val (key), v = { size, (void *) data };
    return mdb_put (txn, dbi, &k, &v, 0);
}

static int
s_del (MDB_txn *txn, MDB_dbi dbi, key_t_ *key)
{
    MDB_val k = s_val (key);
    int rc = mdb_del (txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND? 0: rc;
}

//  The intent's own key, and its program key
static void
s_intent_keys (const af_intent_t *intent, key_t_ *by_id, key_t_ *by_program)
{
    uint8_t id [AF_ID_SIZE];
    int rc = af_id_from_hex (intent->id, id);
    assert (rc == AF_OK);
    s_key (by_id, intent->account, id, sizeof id);
    if (by_program)
        s_key (by_program, intent->account, intent->program, strlen (intent->program));
}

//  Write intent as it is now in txn: the record, the open and pending
//  indexes that its state implies, and, when PAID, its charge and
//  entitlement. An LMDB code.
static int
s_intent_write (af_ledger_t *self, MDB_txn *txn, af_intent_t *intent, uint64_t now)
{
    key_t_ by_id, by_program;
    s_intent_keys (intent, &by_id, &by_program);
    intent->layout = AF_INTENT_LAYOUT;
    intent->updated = now;
    int rc = s_put (txn, self->intents, &by_id, intent, sizeof *intent);
    if (rc == 0 && intent->state == AF_INTENT_CHARGING)
        rc = s_put (txn, self->pending, &by_id, "", 0);
    else
    if (rc == 0)
        rc = s_del (txn, self->pending, &by_id);
    if (rc == 0 && intent->state >= AF_INTENT_PAID)
        rc = s_del (txn, self->open, &by_program);
    if (rc == 0 && intent->state == AF_INTENT_PAID) {
        af_charge_t charge = { .layout = AF_LEDGER_LAYOUT, .amount = intent->amount, .at = now };
        af_strcopy (charge.intent, sizeof charge.intent, intent->id);
        af_strcopy (charge.program, sizeof charge.program, intent->program);
        af_strcopy (charge.currency, sizeof charge.currency, intent->currency);
        af_strcopy (charge.charge, sizeof charge.charge, intent->charge);
        MDB_val k = s_val (&by_id), v = { sizeof charge, &charge };
        rc = mdb_put (txn, self->charges, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
            rc = 0;                 //  one charge per intent, ever
        if (rc == 0)
            rc = s_put (txn, self->entitlements, &by_program, &charge, sizeof charge);
    }
    return rc;
}

//  One transaction that writes intent: AF_OK or AF_E_INTERNAL with err
static int
s_intent_commit (af_ledger_t *self, af_intent_t *intent, uint64_t now, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = s_intent_write (self, txn, intent, now);
        if (rc == 0)
            rc = mdb_txn_commit (txn);
        else
            mdb_txn_abort (txn);
    }
    if (rc) {
        snprintf (err, errlen, "ledger: writing intent %s: %s", intent->id, mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Life cycle

af_ledger_t *
af_ledger_new (const char *dir, const af_provider_t *provider, char *err, size_t errlen)
{
    assert (provider && provider->charge && provider->lookup);
    if (mkdir (dir, 0700) && errno != EEXIST) {
        snprintf (err, errlen, "cannot make %s: %s", dir, strerror (errno));
        return NULL;
    }
    af_ledger_t *self = (af_ledger_t *) calloc (1, sizeof (af_ledger_t));
    assert (self);
    self->provider = *provider;
    self->intent_ttl = AF_PAY_INTENT_MS;
    MDB_txn *txn = NULL;
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 8);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, (size_t) 1 << 30);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    const char *names [] = { "intents", "open", "pending", "charges", "entitlements" };
    MDB_dbi *dbis [] = { &self->intents, &self->open, &self->pending, &self->charges, &self->entitlements };
    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names [0]; i++)
        rc = mdb_dbi_open (txn, names [i], MDB_CREATE, dbis [i]);
    if (rc == 0) {
        rc = mdb_txn_commit (txn);
        txn = NULL;
    }
    if (rc) {
        snprintf (err, errlen, "ledger in %s: %s", dir, mdb_strerror (rc));
        if (txn)
            mdb_txn_abort (txn);
        af_ledger_destroy (&self);
    }
    return self;
}

void
af_ledger_destroy (af_ledger_t **self_p)
{
    assert (self_p);
    af_ledger_t *self = *self_p;
    if (self) {
        if (self->env)
            mdb_env_close (self->env);
        free (self);
        *self_p = NULL;
    }
}

void
af_ledger_set_intent_ttl (af_ledger_t *self, uint64_t ms)
{
    assert (self);
    self->intent_ttl = ms;
}

void
af_ledger_set_fault (af_ledger_t *self, af_ledger_fault_t fault)
{
    assert (self);
    self->fault = fault;
}

const char *
af_intent_state_name (uint32_t state)
{
    switch (state) {
        case AF_INTENT_OPEN: return "open";
        case AF_INTENT_CHARGING: return "charging";
        case AF_INTENT_PAID: return "paid";
        case AF_INTENT_DECLINED: return "declined";
        case AF_INTENT_TIMED_OUT: return "timed-out";
        case AF_INTENT_EXPIRED: return "expired";
        default: return "?";
    }
}

//  --------------------------------------------------------------------------
//  Requests

//  The entitlement as a PAID intent, for the caller
static void
s_entitled_intent (const char *account, const af_charge_t *charge, af_intent_t *intent)
{
    memset (intent, 0, sizeof *intent);
    intent->layout = AF_INTENT_LAYOUT;
    intent->state = AF_INTENT_PAID;
    af_strcopy (intent->id, sizeof intent->id, charge->intent);
    af_strcopy (intent->account, sizeof intent->account, account);
    af_strcopy (intent->program, sizeof intent->program, charge->program);
    intent->amount = charge->amount;
    af_strcopy (intent->currency, sizeof intent->currency, charge->currency);
    af_strcopy (intent->charge, sizeof intent->charge, charge->charge);
    intent->updated = charge->at;
}

//  In txn: the account's open intent for the program if it is still good
//  for this amount and currency (*found); one that expired or whose price
//  changed is ended first. AF_OK or AF_E_INTERNAL.
static int
s_open_intent (af_ledger_t *self, MDB_txn *txn, key_t_ *by_program, uint32_t amount, const char *currency,
               uint64_t now, af_intent_t *intent, bool *found, char *err, size_t errlen)
{
    *found = false;
    MDB_val k = s_val (by_program), v;
    int rc = mdb_get (txn, self->open, &k, &v);
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    if (rc || v.mv_size != AF_ID_SIZE) {
        snprintf (err, errlen, "ledger: a damaged open-intent index");
        return AF_E_INTERNAL;
    }
    key_t_ by_id;
    s_key (&by_id, (const char *) by_program->data, v.mv_data, AF_ID_SIZE);
    bool exists;
    if (s_intent_get (self, txn, &by_id, intent, &exists, err, errlen) != AF_OK)
        return AF_E_INTERNAL;
    if (!exists)
        return AF_OK;
    if (intent->state == AF_INTENT_CHARGING) {
        *found = true;      //  being charged: the same purchase, whatever the price now
        return AF_OK;
    }
    if (intent->state == AF_INTENT_OPEN && now <= intent->created + self->intent_ttl
    &&  intent->amount == amount && !strcmp (intent->currency, currency)) {
        *found = true;
        return AF_OK;
    }
    if (intent->state == AF_INTENT_OPEN) {
        intent->state = AF_INTENT_EXPIRED;
        snprintf (intent->reason, sizeof intent->reason, now > intent->created + self->intent_ttl?
                  "the payment notice expired": "the price changed");
    }
    rc = s_intent_write (self, txn, intent, now);
    if (rc) {
        snprintf (err, errlen, "ledger: ending intent %s: %s", intent->id, mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  Check a request's fields: AF_OK or AF_E_MALFORMED with err
static int
s_request_check (const char *account, const char *program, uint32_t amount, const char *currency,
                 char *err, size_t errlen)
{
    size_t len = strnlen (account, AF_MAX_ACCOUNT + 1);
    if (len < 1 || len > AF_MAX_ACCOUNT) {
        snprintf (err, errlen, "not an account name");
        return AF_E_MALFORMED;
    }
    if (af_program_check (program, err, errlen) != AF_OK)
        return AF_E_MALFORMED;
    if (amount == 0 || amount > AF_MAX_PRICE) {
        snprintf (err, errlen, "amount %u is outside 1..%u", amount, (unsigned) AF_MAX_PRICE);
        return AF_E_MALFORMED;
    }
    return af_currency_check (currency, err, errlen);
}

//  A REQUEST in txn (the caller's child transaction): op->code and its answer
static void
s_request_in (af_ledger_t *self, MDB_txn *txn, af_ledger_op_t *op, uint64_t now)
{
    op->entitled = false;
    op->code = s_request_check (op->account, op->program, op->amount, op->currency, op->err, sizeof op->err);
    if (op->code != AF_OK)
        return;
    key_t_ by_program;
    s_key (&by_program, op->account, op->program, strlen (op->program));
    af_charge_t charge;
    bool found;
    if (s_charge_get (txn, self->entitlements, &by_program, &charge, &found) != AF_OK) {
        snprintf (op->err, sizeof op->err, "ledger: a damaged entitlement record");
        op->code = AF_E_INTERNAL;
        return;
    }
    if (found) {
        s_entitled_intent (op->account, &charge, &op->intent);
        op->entitled = true;
        return;
    }
    af_intent_t *intent = &op->intent;
    if (s_open_intent (self, txn, &by_program, op->amount, op->currency, now, intent, &found, op->err,
                       sizeof op->err) != AF_OK) {
        op->code = AF_E_INTERNAL;
        return;
    }
    if (found)
        return;
    memset (intent, 0, sizeof *intent);
    uint8_t id [AF_ID_SIZE];
    randombytes_buf (id, sizeof id);
    sodium_bin2hex (intent->id, sizeof intent->id, id, sizeof id);
    intent->state = AF_INTENT_OPEN;
    af_strcopy (intent->account, sizeof intent->account, op->account);
    af_strcopy (intent->program, sizeof intent->program, op->program);
    af_strcopy (intent->source, sizeof intent->source, op->source? op->source: "");
    af_strcopy (intent->source_account, sizeof intent->source_account, op->source_account? op->source_account: "");
    intent->amount = op->amount;
    af_strcopy (intent->currency, sizeof intent->currency, op->currency);
    intent->created = now;
    int rc = s_intent_write (self, txn, intent, now);
    MDB_val k = s_val (&by_program), v = { sizeof id, id };
    if (rc == 0)
        rc = mdb_put (txn, self->open, &k, &v, 0);
    if (rc) {
        snprintf (op->err, sizeof op->err, "ledger: recording an intent: %s", mdb_strerror (rc));
        op->code = AF_E_INTERNAL;
    }
}

//  --------------------------------------------------------------------------
//  Confirmations

//  Apply the provider's answer to a CHARGING intent (lookup after a
//  timeout or failure); the intent's new state, not yet written
static void
s_apply_answer (af_ledger_t *self, af_intent_t *intent, int code, const af_pay_answer_t *answer, bool lookup)
{
    af_pay_outcome_t outcome = code == AF_OK? answer->outcome: AF_PAY_TIMEOUT;
    if (outcome == AF_PAY_TIMEOUT && !lookup) {
        //  Unknown: ask what became of the key before saying anything
        af_pay_answer_t asked;
        int rc = self->provider.lookup (self->provider.arg, intent->id, &asked);
        if (rc == AF_OK && asked.outcome == AF_PAY_NOT_FOUND) {
            intent->state = AF_INTENT_TIMED_OUT;
            snprintf (intent->reason, sizeof intent->reason, "%s; nothing was charged", answer->reason);
            return;
        }
        s_apply_answer (self, intent, rc, &asked, true);
        return;
    }
    switch (outcome) {
        case AF_PAY_APPROVED:
            intent->state = AF_INTENT_PAID;
            af_strcopy (intent->charge, sizeof intent->charge, answer->charge);
            intent->reason [0] = 0;
            break;
        case AF_PAY_DECLINED:
            intent->state = AF_INTENT_DECLINED;
            snprintf (intent->reason, sizeof intent->reason, "%s; nothing was charged", answer->reason);
            break;
        case AF_PAY_TRANSIENT:
        case AF_PAY_NOT_FOUND:
            intent->state = AF_INTENT_OPEN;
            snprintf (intent->reason, sizeof intent->reason, "%s; nothing was charged, confirm again",
                      answer->reason);
            break;
        default:
            //  Lookup failed too: stays CHARGING, asked again later
            intent->state = AF_INTENT_CHARGING;
            snprintf (intent->reason, sizeof intent->reason,
                      "the processor has not said whether it charged; the payment is being checked");
            break;
    }
}

//  The intent of account named by intent_hex, in a write transaction the
//  caller ends: AF_OK with *found, or AF_E_MALFORMED / AF_E_INTERNAL
static int
s_confirm_begin (af_ledger_t *self, MDB_txn *txn, const char *account, const char *intent_hex,
                 af_intent_t *intent, bool *found, char *err, size_t errlen)
{
    uint8_t id [AF_ID_SIZE];
    if (af_id_from_hex (intent_hex, id) != AF_OK) {
        snprintf (err, errlen, "intent is not 32 lowercase hex digits");
        return AF_E_MALFORMED;
    }
    size_t len = strnlen (account, AF_MAX_ACCOUNT + 1);
    if (len < 1 || len > AF_MAX_ACCOUNT) {
        snprintf (err, errlen, "not an account name");
        return AF_E_MALFORMED;
    }
    key_t_ by_id;
    s_key (&by_id, account, id, sizeof id);
    return s_intent_get (self, txn, &by_id, intent, found, err, errlen);
}

//  Check a token: 1..AF_MAX_PAY_TOKEN printable ASCII bytes
static bool
s_token_valid (const char *token)
{
    size_t len = strnlen (token, AF_MAX_PAY_TOKEN + 1);
    if (len < 1 || len > AF_MAX_PAY_TOKEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (token [i] <= 0x20 || token [i] >= 0x7F)
            return false;
    return true;
}

//  What a confirmation still needs after the first transaction
typedef enum {
    STEP_DONE = 0,          //  answered by the first transaction (final, not found, refused, expired)
    STEP_CHARGE,            //  CHARGING committed now: charge it
    STEP_LOOKUP,            //  CHARGING from before (a kill, an unknown outcome): ask first
    STEP_SAME               //  the same intent as an earlier confirmation of the batch
} step_t;

//  A CONFIRM in txn (the caller's child transaction), ops [0..index)
//  already done: its answer, or what it still needs (op->step)
static void
s_confirm_in (af_ledger_t *self, MDB_txn *txn, af_ledger_op_t *ops, size_t index, uint64_t now)
{
    af_ledger_op_t *op = &ops [index];
    af_intent_t *intent = &op->intent;
    op->found = false;
    op->step = STEP_DONE;
    if (!s_token_valid (op->token)) {
        snprintf (op->err, sizeof op->err, "token is not 1..%d printable ASCII characters", AF_MAX_PAY_TOKEN);
        op->code = AF_E_MALFORMED;
        return;
    }
    op->code = s_confirm_begin (self, txn, op->account, op->intent_hex, intent, &op->found, op->err,
                                sizeof op->err);
    if (op->code != AF_OK || !op->found || intent->state >= AF_INTENT_PAID)
        return;             //  not found, or final: nothing to do, nothing charged
    //  Confirmed twice in one batch: one charge, both told its outcome
    for (size_t j = 0; j < index; j++)
        if (ops [j].kind == AF_LEDGER_CONFIRM && ops [j].code == AF_OK
        &&  (ops [j].step == STEP_CHARGE || ops [j].step == STEP_LOOKUP)
        &&  !strcmp (ops [j].intent.id, intent->id) && !strcmp (ops [j].intent.account, intent->account)) {
            op->step = STEP_SAME;
            op->same = j;
            return;
        }
    if (intent->state == AF_INTENT_CHARGING) {
        //  An earlier attempt's outcome is unknown: ask before charging again
        op->step = STEP_LOOKUP;
        return;
    }
    if (now > intent->created + self->intent_ttl) {
        intent->state = AF_INTENT_EXPIRED;
        snprintf (intent->reason, sizeof intent->reason, "the payment notice expired; nothing was charged");
    }
    else {
        intent->state = AF_INTENT_CHARGING;
        intent->attempts++;
        op->step = STEP_CHARGE;
    }
    int rc = s_intent_write (self, txn, intent, now);
    if (rc) {
        snprintf (op->err, sizeof op->err, "ledger: recording the charge of %s: %s", intent->id, mdb_strerror (rc));
        op->code = AF_E_INTERNAL;
        op->step = STEP_DONE;
    }
}

//  In txn: the outcome of every op of done that the processor answered
//  (an LMDB code)
static int
s_record_in (af_ledger_t *self, MDB_txn *txn, af_ledger_op_t *done, size_t count, uint64_t now)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        af_ledger_op_t *op = &done [i];
        if ((op->step == STEP_CHARGE || op->step == STEP_LOOKUP) && op->intent.state != AF_INTENT_CHARGING)
            rc = s_intent_write (self, txn, &op->intent, now);
    }
    return rc;
}

//  One write transaction: first the outcomes of the batch before (done),
//  then every op of this one, each in a child transaction of its own (one
//  that fails is undone alone). AF_OK when it committed (or had nothing
//  to write), else AF_E_INTERNAL (err)
static int
s_run_first (af_ledger_t *self, af_ledger_op_t *done, size_t done_count, af_ledger_op_t *ops, size_t count,
             uint64_t now, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc == 0 && (rc = s_record_in (self, txn, done, done_count, now)) != 0)
        mdb_txn_abort (txn);
    if (rc) {
        snprintf (err, errlen, "ledger: recording the charges: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    for (size_t i = 0; i < count; i++) {
        af_ledger_op_t *op = &ops [i];
        op->step = STEP_DONE;
        MDB_txn *child;
        rc = mdb_txn_begin (self->env, txn, 0, &child);
        if (rc) {
            snprintf (op->err, sizeof op->err, "ledger: %s", mdb_strerror (rc));
            op->code = AF_E_INTERNAL;
            continue;
        }
        if (op->kind == AF_LEDGER_REQUEST)
            s_request_in (self, child, op, now);
        else
            s_confirm_in (self, child, ops, i, now);
        if (op->code == AF_OK && (rc = mdb_txn_commit (child)) != 0) {
            snprintf (op->err, sizeof op->err, "ledger: %s", mdb_strerror (rc));
            op->code = AF_E_INTERNAL;
            op->step = STEP_DONE;
        }
        else
        if (op->code != AF_OK)
            mdb_txn_abort (child);
    }
    rc = mdb_txn_commit (txn);      //  LMDB commits nothing (no fsync) when nothing was written
    if (rc) {
        snprintf (err, errlen, "ledger: recording the batch: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  Ask the processor for every charge the batch needs: first what became
//  of the intents left CHARGING before, then every charge at once
//  (charge_many, or charge one by one). Each intent's new state, not yet
//  written (CHARGING when the processor cannot say)
static void
s_run_charges (af_ledger_t *self, af_ledger_op_t *ops, size_t count, uint64_t now)
{
    for (size_t i = 0; i < count; i++) {
        af_ledger_op_t *op = &ops [i];
        if (op->step != STEP_LOOKUP)
            continue;
        af_pay_answer_t asked;
        int rc = self->provider.lookup (self->provider.arg, op->intent.id, &asked);
        if (rc != AF_OK || asked.outcome != AF_PAY_NOT_FOUND)
            s_apply_answer (self, &op->intent, rc, &asked, true);       //  paid, or still unknown
        else
        if (now > op->intent.created + self->intent_ttl) {
            op->intent.state = AF_INTENT_EXPIRED;
            snprintf (op->intent.reason, sizeof op->intent.reason,
                      "the payment notice expired; nothing was charged");
        }
        else {
            op->intent.attempts++;          //  never charged: charge it now (it is CHARGING on disk)
            op->step = STEP_CHARGE;
        }
    }
    size_t charging = 0;
    for (size_t i = 0; i < count; i++)
        charging += ops [i].step == STEP_CHARGE;
    if (charging == 0)
        return;
    af_pay_charge_t *charges = (af_pay_charge_t *) calloc (charging, sizeof *charges);
    af_pay_answer_t *answers = (af_pay_answer_t *) calloc (charging, sizeof *answers);
    int *codes = (int *) calloc (charging, sizeof *codes);
    assert (charges && answers && codes);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (ops [i].step == STEP_CHARGE) {
            af_intent_t *intent = &ops [i].intent;
            af_pay_charge_t charge = { intent->id, intent->account, intent->amount, intent->currency, ops [i].token };
            charges [n++] = charge;
        }
    //  Durable now: ask the processor under each intent's ID
    if (self->provider.charge_many)
        self->provider.charge_many (self->provider.arg, charges, charging, answers, codes);
    else
        for (size_t j = 0; j < charging; j++)
            codes [j] = self->provider.charge (self->provider.arg, charges [j].key, charges [j].account,
                                               charges [j].amount, charges [j].currency, charges [j].token,
                                               &answers [j]);
    n = 0;
    for (size_t i = 0; i < count; i++)
        if (ops [i].step == STEP_CHARGE) {
            s_apply_answer (self, &ops [i].intent, codes [n], &answers [n], false);
            n++;
        }
    free (charges);
    free (answers);
    free (codes);
}

//  Record every outcome the processor gave, in one transaction: AF_OK,
//  or AF_E_INTERNAL (err; those intents stay CHARGING on disk, to be
//  resolved by lookup)
static int
s_run_record (af_ledger_t *self, af_ledger_op_t *ops, size_t count, uint64_t now, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc == 0 && (rc = s_record_in (self, txn, ops, count, now)) != 0)
        mdb_txn_abort (txn);
    else
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    if (rc) {
        snprintf (err, errlen, "ledger: recording the charges: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  The test fault, if it is set to this point and ops charged
static int
s_fault (af_ledger_t *self, af_ledger_fault_t at, af_ledger_op_t *ops, size_t count, char *err, size_t errlen)
{
    if (self->fault != at)
        return AF_OK;
    for (size_t i = 0; i < count; i++)
        if (ops [i].step == STEP_CHARGE) {
            snprintf (err, errlen, "test fault: stopped %s", at == AF_LEDGER_FAULT_AFTER_INTENT?
                      "after recording the intent, before the charge": at == AF_LEDGER_FAULT_AFTER_CHARGE?
                      "after the charge, before recording it": "after recording the charge, before answering");
            return AF_E_INTERNAL;
        }
    return AF_OK;
}

//  The ops' answers once their batch is over: on a failure (code) every
//  one is AF_E_INTERNAL with err; a second confirmation of an intent
//  gets the first one's answer
static void
s_settle (af_ledger_op_t *ops, size_t count, int code, const char *err)
{
    for (size_t i = 0; i < count; i++) {
        af_ledger_op_t *op = &ops [i];
        if (code != AF_OK) {
            op->code = AF_E_INTERNAL;
            af_strcopy (op->err, sizeof op->err, err);
            op->step = STEP_DONE;
        }
        else
        if (op->step == STEP_SAME) {
            op->code = ops [op->same].code;
            op->intent = ops [op->same].intent;
            af_strcopy (op->err, sizeof op->err, ops [op->same].err);
        }
    }
}

int
af_ledger_start (af_ledger_t *self, af_ledger_op_t *done, size_t done_count, af_ledger_op_t *ops, size_t count,
                 uint64_t now, char *err, size_t errlen)
{
    assert (self);
    assert ((done || done_count == 0) && (ops || count == 0));
    for (size_t i = 0; i < count; i++)
        ops [i].step = STEP_DONE;
    if (count == 0 && done_count == 0)
        return AF_OK;
    int code = s_run_first (self, done, done_count, ops, count, now, err, errlen);
    if (code == AF_OK)
        code = s_fault (self, AF_LEDGER_FAULT_AFTER_RECORD, done, done_count, err, errlen);
    s_settle (done, done_count, code, err);
    if (code == AF_OK)
        code = s_fault (self, AF_LEDGER_FAULT_AFTER_INTENT, ops, count, err, errlen);
    if (code == AF_OK) {
        s_run_charges (self, ops, count, now);
        code = s_fault (self, AF_LEDGER_FAULT_AFTER_CHARGE, ops, count, err, errlen);
    }
    if (code != AF_OK)
        s_settle (ops, count, code, err);
    return code;
}

bool
af_ledger_op_pending (const af_ledger_op_t *op)
{
    assert (op);
    return op->step != STEP_DONE;
}

int
af_ledger_finish (af_ledger_t *self, af_ledger_op_t *ops, size_t count, uint64_t now, char *err, size_t errlen)
{
    assert (self);
    assert (ops || count == 0);
    bool pending = false;
    for (size_t i = 0; i < count; i++)
        pending |= af_ledger_op_pending (&ops [i]);
    int code = pending? s_run_record (self, ops, count, now, err, errlen): AF_OK;
    if (code == AF_OK)
        code = s_fault (self, AF_LEDGER_FAULT_AFTER_RECORD, ops, count, err, errlen);
    s_settle (ops, count, code, err);
    return code;
}

int
af_ledger_run (af_ledger_t *self, af_ledger_op_t *ops, size_t count, uint64_t now, char *err, size_t errlen)
{
    int code = af_ledger_start (self, NULL, 0, ops, count, now, err, errlen);
    return code == AF_OK? af_ledger_finish (self, ops, count, now, err, errlen): code;
}

int
af_ledger_request (af_ledger_t *self, const char *account, const char *program, const char *source,
                   uint32_t amount, const char *currency, uint64_t now, af_intent_t *intent,
                   bool *entitled, char *err, size_t errlen)
{
    af_ledger_op_t op = { .kind = AF_LEDGER_REQUEST, .account = account, .program = program, .source = source,
                          .amount = amount, .currency = currency };
    int code = af_ledger_run (self, &op, 1, now, err, errlen);
    if (code == AF_OK && (code = op.code) != AF_OK)
        snprintf (err, errlen, "%s", op.err);
    *intent = op.intent;
    *entitled = op.entitled;
    return code;
}

int
af_ledger_confirm (af_ledger_t *self, const char *account, const char *intent_hex, const char *token,
                   uint64_t now, af_intent_t *intent, bool *found, char *err, size_t errlen)
{
    af_ledger_op_t op = { .kind = AF_LEDGER_CONFIRM, .account = account, .intent_hex = intent_hex, .token = token };
    int code = af_ledger_run (self, &op, 1, now, err, errlen);
    if (code == AF_OK && (code = op.code) != AF_OK)
        snprintf (err, errlen, "%s", op.err);
    *intent = op.intent;
    *found = op.found;
    return code;
}

//  --------------------------------------------------------------------------
//  Recovery and reading

//  The IDs of every CHARGING intent (keys of pending), into a new zlist
//  of key_t_; NULL on a store error
static zlistx_t *
s_pending_keys (af_ledger_t *self, char *err, size_t errlen)
{
    zlistx_t *keys = zlistx_new ();
    assert (keys);
    zlistx_set_destructor (keys, (zlistx_destructor_fn *) zstr_free);
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0 && (rc = mdb_cursor_open (txn, self->pending, &cursor)) != 0)
        mdb_txn_abort (txn);
    if (rc) {
        snprintf (err, errlen, "ledger: %s", mdb_strerror (rc));
        zlistx_destroy (&keys);
        return NULL;
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT))
        if (k.mv_size <= KEY_MAX) {
            key_t_ *key = (key_t_ *) calloc (1, sizeof (key_t_));
            assert (key);
            memcpy (key->data, k.mv_data, k.mv_size);
            key->size = k.mv_size;
            zlistx_add_end (keys, key);
        }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return keys;
}

int
af_ledger_recover (af_ledger_t *self, uint64_t now, size_t *resolved, char *err, size_t errlen)
{
    assert (self);
    *resolved = 0;
    zlistx_t *keys = s_pending_keys (self, err, errlen);
    if (!keys)
        return AF_E_INTERNAL;
    int code = AF_OK;
    for (key_t_ *key = (key_t_ *) zlistx_first (keys); key && code == AF_OK; key = (key_t_ *) zlistx_next (keys)) {
        MDB_txn *txn;
        if (mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn)) {
            snprintf (err, errlen, "ledger: cannot read");
            code = AF_E_INTERNAL;
            break;
        }
        af_intent_t intent;
        bool found;
        code = s_intent_get (self, txn, key, &intent, &found, err, errlen);
        mdb_txn_abort (txn);
        if (code != AF_OK || !found || intent.state != AF_INTENT_CHARGING)
            continue;
        af_pay_answer_t asked;
        int rc = self->provider.lookup (self->provider.arg, intent.id, &asked);
        s_apply_answer (self, &intent, rc, &asked, true);
        if (intent.state == AF_INTENT_CHARGING)
            continue;       //  the provider cannot say now: next time
        if (intent.state == AF_INTENT_OPEN)
            snprintf (intent.reason, sizeof intent.reason,
                      "the payment service stopped before the charge; nothing was charged, confirm again");
        code = s_intent_commit (self, &intent, now, err, errlen);
        if (code == AF_OK)
            (*resolved)++;
    }
    zlistx_destroy (&keys);
    return code;
}

int
af_ledger_entitlement (af_ledger_t *self, const char *account, const char *program, bool *found,
                       af_charge_t *charge)
{
    assert (self);
    *found = false;
    if (strnlen (account, AF_MAX_ACCOUNT + 1) > AF_MAX_ACCOUNT || af_program_check (program, NULL, 0) != AF_OK)
        return AF_OK;
    key_t_ key;
    s_key (&key, account, program, strlen (program));
    MDB_txn *txn;
    if (mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn))
        return AF_E_INTERNAL;
    af_charge_t scratch;
    int code = s_charge_get (txn, self->entitlements, &key, charge? charge: &scratch, found);
    mdb_txn_abort (txn);
    return code;
}

int
af_ledger_purchases (af_ledger_t *self, const char *account, af_charge_t *out, size_t max, size_t *count)
{
    assert (self);
    *count = 0;
    if (strnlen (account, AF_MAX_ACCOUNT + 1) > AF_MAX_ACCOUNT)
        return AF_OK;
    key_t_ prefix;
    s_key (&prefix, account, "", 0);
    MDB_txn *txn;
    MDB_cursor *cursor;
    if (mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn))
        return AF_E_INTERNAL;
    if (mdb_cursor_open (txn, self->entitlements, &cursor)) {
        mdb_txn_abort (txn);
        return AF_E_INTERNAL;
    }
    int code = AF_OK;
    MDB_val k = s_val (&prefix), v;
    for (int rc = mdb_cursor_get (cursor, &k, &v, MDB_SET_RANGE);
         rc == 0 && *count < max && k.mv_size > prefix.size && !memcmp (k.mv_data, prefix.data, prefix.size);
         rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT)) {
        key_t_ key = { .size = k.mv_size };
        memcpy (key.data, k.mv_data, k.mv_size <= KEY_MAX? k.mv_size: 0);
        bool found;
        if (k.mv_size > KEY_MAX || s_charge_get (txn, self->entitlements, &key, &out [*count], &found) != AF_OK) {
            code = AF_E_INTERNAL;
            break;
        }
        (*count)++;
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return code;
}

int
af_ledger_totals (af_ledger_t *self, size_t *intents, size_t *charges, size_t *entitlements)
{
    assert (self);
    MDB_txn *txn;
    if (mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn))
        return AF_E_INTERNAL;
    MDB_stat st;
    int rc = mdb_stat (txn, self->intents, &st);
    *intents = rc? 0: st.ms_entries;
    rc = rc? rc: mdb_stat (txn, self->charges, &st);
    *charges = rc? 0: st.ms_entries;
    rc = rc? rc: mdb_stat (txn, self->entitlements, &st);
    *entitlements = rc? 0: st.ms_entries;
    mdb_txn_abort (txn);
    return rc? AF_E_INTERNAL: AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    char dir [64];
    char books [80];
    af_testpay_t *pay;
    af_provider_t provider;
    af_ledger_t *ledger;
} fixture_t;

static void
s_fixture_open (fixture_t *f)
{
    char err [256];
    f->pay = af_testpay_new (f->books, err, sizeof err);
    assert (f->pay);
    f->provider = af_testpay_provider (f->pay);
    f->ledger = af_ledger_new (f->dir, &f->provider, err, sizeof err);
    assert (f->ledger);
}

static void
s_fixture_close (fixture_t *f)
{
    af_ledger_destroy (&f->ledger);
    af_testpay_destroy (&f->pay);
}

//  The provider's charges and the ledger's must agree, and be n
static void
s_assert_charges (fixture_t *f, size_t n)
{
    size_t books, intents, charges, entitlements;
    assert (af_testpay_charges (f->pay, &books) == AF_OK);
    assert (af_ledger_totals (f->ledger, &intents, &charges, &entitlements) == AF_OK);
    assert (books == n && charges == n && entitlements == n);
}

//  Request program for alice and confirm it with token: the intent after
static af_intent_t
s_buy (fixture_t *f, const char *program, const char *token, uint64_t now, int expect)
{
    af_intent_t intent, confirmed;
    bool entitled, found;
    char err [256];
    assert (af_ledger_request (f->ledger, "alice", program, "d1", 499, "EUR", now, &intent, &entitled,
                               err, sizeof err) == AF_OK);
    assert (!entitled && intent.state == AF_INTENT_OPEN);
    int rc = af_ledger_confirm (f->ledger, "alice", intent.id, token, now, &confirmed, &found, err, sizeof err);
    assert (rc == expect);
    assert (rc != AF_OK || (found && !strcmp (confirmed.id, intent.id)));
    return rc == AF_OK? confirmed: intent;
}

static void
s_test_outcomes (fixture_t *f)
{
    char err [256];
    af_intent_t a, b;
    bool entitled, found;
    uint64_t now = 1000000;
    //  A request made twice is one intent; another account does not see it
    assert (af_ledger_request (f->ledger, "alice", "game", "d1", 499, "EUR", now, &a, &entitled, err, sizeof err) == AF_OK);
    assert (af_ledger_request (f->ledger, "alice", "game", "d2", 499, "EUR", now, &b, &entitled, err, sizeof err) == AF_OK);
    assert (!entitled && !strcmp (a.id, b.id) && a.amount == 499 && !strcmp (a.currency, "EUR"));
    assert (af_ledger_confirm (f->ledger, "bob", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (!found);
    assert (af_ledger_confirm (f->ledger, "alice", "XYZ", "tok_approve", now, &b, &found, err, sizeof err)
            == AF_E_MALFORMED);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok approve", now, &b, &found, err, sizeof err)
            == AF_E_MALFORMED);
    //  Declined: final, nothing charged, a later approval changes nothing
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_decline", now, &b, &found, err, sizeof err) == AF_OK);
    assert (found && b.state == AF_INTENT_DECLINED && strstr (b.reason, "nothing was charged"));
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_DECLINED);
    s_assert_charges (f, 0);
    //  Transient, then success under the same intent
    af_intent_t c = s_buy (f, "game", "tok_transient", now, AF_OK);
    assert (c.state == AF_INTENT_OPEN && strcmp (c.id, a.id) && strstr (c.reason, "confirm again"));
    assert (af_ledger_confirm (f->ledger, "alice", c.id, "tok_transient", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID && !strncmp (b.charge, "ch_test_", 8) && b.attempts == 2);
    s_assert_charges (f, 1);
    //  Confirmed twice: one charge
    assert (af_ledger_confirm (f->ledger, "alice", c.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID);
    s_assert_charges (f, 1);
    //  Entitled from now on, from any device; bob is not
    assert (af_ledger_request (f->ledger, "alice", "game", "d3", 499, "EUR", now, &b, &entitled, err, sizeof err) == AF_OK);
    assert (entitled && b.state == AF_INTENT_PAID && !strcmp (b.id, c.id));
    assert (af_ledger_request (f->ledger, "bob", "game", "d9", 499, "EUR", now, &b, &entitled, err, sizeof err) == AF_OK);
    assert (!entitled);
    //  A timeout that did not charge; a lost reply that did
    b = s_buy (f, "chess", "tok_timeout", now, AF_OK);
    assert (b.state == AF_INTENT_TIMED_OUT && strstr (b.reason, "nothing was charged"));
    s_assert_charges (f, 1);
    b = s_buy (f, "chess", "tok_lost_reply", now, AF_OK);
    assert (b.state == AF_INTENT_PAID);
    s_assert_charges (f, 2);
    af_charge_t list [4];
    size_t count;
    assert (af_ledger_purchases (f->ledger, "alice", list, 4, &count) == AF_OK && count == 2);
    assert (!strcmp (list [0].program, "chess") && !strcmp (list [1].program, "game") && list [1].amount == 499);
    assert (af_ledger_purchases (f->ledger, "bob", list, 4, &count) == AF_OK && count == 0);
}

static void
s_test_kills (fixture_t *f)
{
    char err [256];
    af_intent_t a, b;
    bool found, entitled;
    uint64_t now = 2000000;
    //  Killed after the processor charged, before the ledger recorded it:
    //  the restart asks the processor, finds the charge, records it once
    af_ledger_set_fault (f->ledger, AF_LEDGER_FAULT_AFTER_CHARGE);
    a = s_buy (f, "maps", "tok_approve", now, AF_E_INTERNAL);
    size_t books;
    assert (af_testpay_charges (f->pay, &books) == AF_OK && books == 3);
    s_fixture_close (f);
    s_fixture_open (f);
    size_t resolved;
    assert (af_ledger_recover (f->ledger, now, &resolved, err, sizeof err) == AF_OK && resolved == 1);
    assert (af_ledger_entitlement (f->ledger, "alice", "maps", &found, NULL) == AF_OK && found);
    s_assert_charges (f, 3);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID);
    s_assert_charges (f, 3);
    //  Killed after a charge that did not happen: confirmed again (no
    //  restart), the processor is asked first, then charged once
    af_ledger_set_fault (f->ledger, AF_LEDGER_FAULT_AFTER_CHARGE);
    a = s_buy (f, "mail", "tok_decline", now, AF_E_INTERNAL);
    af_ledger_set_fault (f->ledger, AF_LEDGER_FAULT_NONE);
    assert (af_ledger_request (f->ledger, "alice", "mail", "d1", 499, "EUR", now, &b, &entitled, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_CHARGING && !strcmp (b.id, a.id));
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID);
    s_assert_charges (f, 4);
    //  Killed with no charge, resolved at start: open again
    af_ledger_set_fault (f->ledger, AF_LEDGER_FAULT_AFTER_CHARGE);
    a = s_buy (f, "news", "tok_decline", now, AF_E_INTERNAL);
    s_fixture_close (f);
    s_fixture_open (f);
    assert (af_ledger_recover (f->ledger, now, &resolved, err, sizeof err) == AF_OK && resolved == 1);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID);
    s_assert_charges (f, 5);
}

static void
s_test_limits (fixture_t *f)
{
    char err [256];
    af_intent_t a, b;
    bool found, entitled;
    uint64_t now = 3000000;
    //  Not confirmed in time: expired, nothing charged, a new request is a new intent
    af_ledger_set_intent_ttl (f->ledger, 1000);
    assert (af_ledger_request (f->ledger, "alice", "late", "d1", 100, "USD", now, &a, &entitled, err, sizeof err) == AF_OK);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now + 2000, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_EXPIRED && strstr (b.reason, "expired"));
    assert (af_ledger_request (f->ledger, "alice", "late", "d1", 100, "USD", now + 2000, &b, &entitled, err,
                               sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_OPEN && strcmp (a.id, b.id));
    //  A new price is a new intent
    assert (af_ledger_request (f->ledger, "alice", "late", "d1", 200, "USD", now + 2000, &a, &entitled, err,
                               sizeof err) == AF_OK);
    assert (strcmp (a.id, b.id) && a.amount == 200);
    af_ledger_set_intent_ttl (f->ledger, AF_PAY_INTENT_MS);
    //  Refused requests
    assert (af_ledger_request (f->ledger, "alice", "x", "d1", 0, "EUR", now, &a, &entitled, err, sizeof err)
            == AF_E_MALFORMED);
    assert (af_ledger_request (f->ledger, "alice", "x", "d1", AF_MAX_PRICE + 1, "EUR", now, &a, &entitled, err,
                               sizeof err) == AF_E_MALFORMED);
    assert (af_ledger_request (f->ledger, "alice", "x", "d1", 5, "eur", now, &a, &entitled, err, sizeof err)
            == AF_E_MALFORMED);
    assert (af_ledger_request (f->ledger, "alice", "../x", "d1", 5, "EUR", now, &a, &entitled, err, sizeof err)
            == AF_E_MALFORMED);
    s_assert_charges (f, 5);
    //  A damaged record is refused, not trusted
    assert (af_ledger_request (f->ledger, "alice", "dmg", "d1", 5, "EUR", now, &a, &entitled, err, sizeof err) == AF_OK);
    MDB_txn *txn;
    assert (mdb_txn_begin (f->ledger->env, NULL, 0, &txn) == 0);
    key_t_ key;
    s_intent_keys (&a, &key, NULL);
    assert (s_put (txn, f->ledger->intents, &key, "bad", 3) == 0 && mdb_txn_commit (txn) == 0);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err)
            == AF_E_INTERNAL);
    s_assert_charges (f, 5);
    //  A friend's app: the source account is kept with the intent
    af_ledger_op_t op = { .kind = AF_LEDGER_REQUEST, .account = "alice", .program = "fr", .source = "d9",
                          .source_account = "bob", .amount = 7, .currency = "EUR" };
    assert (af_ledger_run (f->ledger, &op, 1, now, err, sizeof err) == AF_OK && op.code == AF_OK);
    assert (strcmp (op.intent.source_account, "bob") == 0 && strcmp (op.intent.source, "d9") == 0);
    //  A layout-1 record (no source account) is still read, as the account's own
    a = op.intent;
    a.layout = 1;
    assert (mdb_txn_begin (f->ledger->env, NULL, 0, &txn) == 0);
    s_intent_keys (&a, &key, NULL);
    assert (s_put (txn, f->ledger->intents, &key, &a, AF_INTENT_V1_SIZE) == 0 && mdb_txn_commit (txn) == 0);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (found && b.state == AF_INTENT_PAID && b.layout == AF_INTENT_LAYOUT && *b.source_account == 0);
    s_assert_charges (f, 6);
}

//  Group commit: one run of several requests and confirmations
static void
s_test_batch (fixture_t *f)
{
    char err [256];
    uint64_t now = 4000000;
    size_t books;
    assert (af_testpay_charges (f->pay, &books) == AF_OK);
    //  Three new intents and a malformed request in one run: the bad one
    //  is refused alone
    af_ledger_op_t ops [4];
    const char *programs [] = { "b1", "b2", "b3", "../b4" };
    for (int i = 0; i < 4; i++) {
        af_ledger_op_t op = { .kind = AF_LEDGER_REQUEST, .account = "carol", .program = programs [i],
                              .source = "d1", .amount = 250, .currency = "USD" };
        ops [i] = op;
    }
    assert (af_ledger_run (f->ledger, ops, 4, now, err, sizeof err) == AF_OK);
    assert (ops [0].code == AF_OK && ops [1].code == AF_OK && ops [2].code == AF_OK);
    assert (ops [3].code == AF_E_MALFORMED);
    af_intent_t b1 = ops [0].intent, b2 = ops [1].intent, b3 = ops [2].intent;
    assert (b1.state == AF_INTENT_OPEN && strcmp (b1.id, b2.id));
    //  b1 confirmed twice in one run, b2 declined, b3 approved, and a
    //  request for b1 meanwhile: one charge for b1, both confirmations told
    af_ledger_op_t confirms [5] = {
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = b1.id, .token = "tok_approve" },
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = b2.id, .token = "tok_decline" },
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = b1.id, .token = "tok_approve" },
        { .kind = AF_LEDGER_REQUEST, .account = "carol", .program = "b1", .source = "d2", .amount = 250,
          .currency = "USD" },
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = b3.id, .token = "tok_approve" } };
    assert (af_ledger_run (f->ledger, confirms, 5, now, err, sizeof err) == AF_OK);
    assert (confirms [0].code == AF_OK && confirms [0].intent.state == AF_INTENT_PAID);
    assert (confirms [2].code == AF_OK && confirms [2].intent.state == AF_INTENT_PAID);
    assert (!strcmp (confirms [0].intent.charge, confirms [2].intent.charge));
    assert (confirms [1].intent.state == AF_INTENT_DECLINED);
    assert (confirms [3].code == AF_OK && !strcmp (confirms [3].intent.id, b1.id));
    assert (confirms [4].intent.state == AF_INTENT_PAID);
    size_t after;
    assert (af_testpay_charges (f->pay, &after) == AF_OK && after == books + 2);
    //  Two batches in a row (a busy worker): the first's outcomes are
    //  recorded in the second's first transaction; a confirmation of the
    //  first's intent in the second finds it paid, and charges nothing
    af_ledger_op_t reqs [2] = {
        { .kind = AF_LEDGER_REQUEST, .account = "carol", .program = "c1", .amount = 300, .currency = "EUR" },
        { .kind = AF_LEDGER_REQUEST, .account = "carol", .program = "c2", .amount = 300, .currency = "EUR" } };
    assert (af_ledger_run (f->ledger, reqs, 2, now, err, sizeof err) == AF_OK);
    af_ledger_op_t first [1] = {
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = reqs [0].intent.id, .token = "tok_approve" } };
    af_ledger_op_t second [2] = {
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = reqs [0].intent.id, .token = "tok_approve" },
        { .kind = AF_LEDGER_CONFIRM, .account = "carol", .intent_hex = reqs [1].intent.id, .token = "tok_approve" } };
    assert (af_ledger_start (f->ledger, NULL, 0, first, 1, now, err, sizeof err) == AF_OK);
    assert (af_ledger_op_pending (&first [0]));
    assert (af_ledger_start (f->ledger, first, 1, second, 2, now, err, sizeof err) == AF_OK);
    assert (first [0].code == AF_OK && first [0].intent.state == AF_INTENT_PAID);
    assert (!af_ledger_op_pending (&second [0]) && second [0].intent.state == AF_INTENT_PAID);
    assert (!strcmp (second [0].intent.charge, first [0].intent.charge));
    assert (af_ledger_op_pending (&second [1]));
    assert (af_ledger_finish (f->ledger, second, 2, now, err, sizeof err) == AF_OK);
    assert (second [1].intent.state == AF_INTENT_PAID);
    assert (af_testpay_charges (f->pay, &after) == AF_OK && after == books + 4);
    books += 2;
    //  A kill after the intents were recorded, before the processor was
    //  asked: nothing charged; reopened, the intent is open again and
    //  charged once when confirmed
    af_ledger_set_fault (f->ledger, AF_LEDGER_FAULT_AFTER_INTENT);
    af_intent_t a = s_buy (f, "b5", "tok_approve", now, AF_E_INTERNAL), b;
    assert (af_testpay_charges (f->pay, &after) == AF_OK && after == books + 2);
    s_fixture_close (f);
    s_fixture_open (f);
    size_t resolved;
    bool found;
    assert (af_ledger_recover (f->ledger, now, &resolved, err, sizeof err) == AF_OK && resolved == 1);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID);
    assert (af_testpay_charges (f->pay, &after) == AF_OK && after == books + 3);
    //  A kill after the outcome was recorded, before anyone was answered:
    //  paid on disk; confirmed again, PAID with nothing more charged
    af_ledger_set_fault (f->ledger, AF_LEDGER_FAULT_AFTER_RECORD);
    a = s_buy (f, "b6", "tok_approve", now, AF_E_INTERNAL);
    s_fixture_close (f);
    s_fixture_open (f);
    assert (af_ledger_recover (f->ledger, now, &resolved, err, sizeof err) == AF_OK && resolved == 0);
    assert (af_ledger_entitlement (f->ledger, "alice", "b6", &found, NULL) == AF_OK && found);
    assert (af_ledger_confirm (f->ledger, "alice", a.id, "tok_approve", now, &b, &found, err, sizeof err) == AF_OK);
    assert (b.state == AF_INTENT_PAID);
    assert (af_testpay_charges (f->pay, &after) == AF_OK && after == books + 4);
}

void
af_ledger_test (bool verbose)
{
    printf (" * af_ledger: ");
    (void) verbose;
    fixture_t f;
    memset (&f, 0, sizeof f);
    snprintf (f.dir, sizeof f.dir, "/tmp/af_ledger_XXXXXX");
    assert (mkdtemp (f.dir));
    snprintf (f.books, sizeof f.books, "%s/books", f.dir);
    s_fixture_open (&f);
    s_test_outcomes (&f);
    s_test_kills (&f);
    s_test_limits (&f);
    s_test_batch (&f);
    s_fixture_close (&f);
    char cmd [200];
    snprintf (cmd, sizeof cmd, "rm -rf %s", f.dir);
    assert (system (cmd) == 0);
    printf ("OK\n");
}
