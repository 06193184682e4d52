/*  =========================================================================
    af_ledger - the payments service's durable ledger: payment intents,
    charges and entitlements (S0.4, S0.6, S0.7; protocol/SPEC.md 5.46)

    Why a ledger of its own: money must move at most once per purchase
    whatever is killed when, and the broker's store is replicated and
    group-committed for other reasons. The ledger lives in its own LMDB
    environment, written only by the payments worker, and its one rule is
    **write the intent down before asking the processor, and ask the
    processor under the intent's ID**:

    1. A request for a paid program that the account is not entitled to
       makes a payment intent (OPEN): account, program, amount, currency,
       a random ID. The same request again, while it is open, gets the same
       intent, so a node that resends never makes two.
    2. A confirmation moves it to CHARGING in a committed transaction, then
       calls the provider with the intent ID as idempotency key, then
       records the outcome in a second transaction: PAID with the charge
       and the entitlement together, or DECLINED, or back to OPEN after a
       transient failure (confirm the same intent again), or TIMED_OUT
       when the provider does not answer and did not charge.
    3. Killed between 2's steps, the intent is left CHARGING. At start
       (af_ledger_recover), and at any later confirmation of it, the
       ledger asks the provider what became of the key: charged → PAID
       with its entitlement; never charged → OPEN again. The provider
       deduplicates by the key too, so even a charge sent twice is one.

    **Group commit** (af_ledger_run): the worker hands the ledger every
    request waiting on its socket at once. Step 1 is one write transaction
    for all of them (new intents, CHARGING states; each request in a child
    transaction, so one that fails is undone alone), step 2 one question
    to the processor for all the charges (af_provider_t charge_many), step
    3 one write transaction for all the outcomes; only then is anyone
    answered. So a batch costs two ledger fsyncs (and the processor's
    own), whatever its size, and the crash rule is the same as for one
    request: nothing is answered that is not on disk, and a kill anywhere
    leaves each intent OPEN, CHARGING (resolved by lookup) or final. Two
    confirmations of one intent in one batch are charged once and both
    told the outcome. af_ledger_request and af_ledger_confirm are a batch
    of one. A worker that has more requests waiting when the processor has
    answered records that batch's outcomes in the same transaction as the
    next batch's step 1 (af_ledger_start, af_ledger_finish), and answers
    the first batch after that commit: under load, one ledger fsync per
    batch.

    A confirmation of a PAID intent charges nothing and answers PAID
    again; an entitlement makes later requests for the program, from any
    device of the account, answer "entitled" with no intent.

    Databases (every key starts with the account name and 0x00, as the
    broker's do, so a ledger can be split by account like the broker's
    shards; intent IDs are 16 bytes):

    | database | key | value | written |
    |---|---|---|---|
    | `intents` | account, 0x00, intent ID | af_intent_t (layout 2, below; 1 is read) | request (new), confirm (each state) |
    | `open` | account, 0x00, program | intent ID | with a new intent; removed when it is final |
    | `pending` | account, 0x00, intent ID | (empty) | CHARGING; removed with its outcome |
    | `charges` | account, 0x00, intent ID | af_charge_t | with PAID, once (no overwrite) |
    | `entitlements` | account, 0x00, program | af_charge_t | with PAID |

    Values are the C structs below written whole, with a layout number
    first; a value of another size or layout, or a string without its
    NUL, is refused as damaged (AF_E_INTERNAL), never trusted. Intents
    are layout 2 (AF_INTENT_LAYOUT): layout 1 plus, at its end, the
    account the app is asked from (a friend's; "" for the asker's own
    devices, issue 14). A layout-1 record (its size, layout 1) is still
    read, as an intent from the account's own device, and written back
    as layout 2 at its next change; charges and entitlements are
    unchanged (layout 1). Every
    commit is synced (LMDB's default): one fsync per batch's step.
    =========================================================================
*/
#ifndef AF_LEDGER_H_INCLUDED
#define AF_LEDGER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"
#include "af_provider.h"

typedef struct _af_ledger_t af_ledger_t;

typedef enum {
    AF_INTENT_OPEN = 1,     //  waiting for a confirmation
    AF_INTENT_CHARGING,     //  the provider was (maybe) asked; outcome not recorded
    AF_INTENT_PAID,         //  charged once; the entitlement exists
    AF_INTENT_DECLINED,     //  refused by the provider: nothing charged (final)
    AF_INTENT_TIMED_OUT,    //  the provider did not answer and did not charge (final)
    AF_INTENT_EXPIRED       //  not confirmed within the intent time limit (final)
} af_intent_state_t;

#define AF_LEDGER_LAYOUT 1                   //  af_charge_t
#define AF_INTENT_LAYOUT 2                   //  af_intent_t (1: without source_account)

typedef struct {
    uint32_t layout;                        //  AF_INTENT_LAYOUT
    uint32_t state;                         //  af_intent_state_t
    char id [AF_ID_HEX + 1];                //  hex; the idempotency key
    char account [AF_MAX_ACCOUNT + 1];
    char program [AF_MAX_PROGRAM + 1];
    char source [AF_ID_HEX + 1];            //  the device the app is asked from
    uint32_t amount;                        //  minor units (cents)
    char currency [AF_CURRENCY + 1];
    uint32_t attempts;                      //  provider charges asked for
    uint64_t created, updated;              //  ms since the epoch
    char charge [AF_MAX_PAY_REF + 1];       //  PAID: the provider's reference
    char reason [AF_MAX_REASON + 1];        //  the last failure, for people
    //  Layout 2
    char source_account [AF_MAX_ACCOUNT + 1];   //  a friend's account the app is asked from ("" own)
} af_intent_t;

//  The size of a layout-1 intent record (read, never written)
#define AF_INTENT_V1_SIZE offsetof (af_intent_t, source_account)

typedef struct {
    uint32_t layout;                        //  AF_LEDGER_LAYOUT
    char intent [AF_ID_HEX + 1];
    char program [AF_MAX_PROGRAM + 1];
    uint32_t amount;
    char currency [AF_CURRENCY + 1];
    char charge [AF_MAX_PAY_REF + 1];
    uint64_t at;                            //  when it was paid
} af_charge_t;

//  Test faults: make a batch that charges stop (AF_E_INTERNAL) where a
//  kill would; the payments worker's --crash-at dies there
typedef enum {
    AF_LEDGER_FAULT_NONE = 0,
    AF_LEDGER_FAULT_AFTER_INTENT,   //  CHARGING committed, before the provider is asked
    AF_LEDGER_FAULT_AFTER_CHARGE,   //  after the provider charged, before recording it
    AF_LEDGER_FAULT_AFTER_RECORD    //  the outcome committed, before anyone is answered
} af_ledger_fault_t;

typedef enum {
    AF_LEDGER_REQUEST = 1,          //  as af_ledger_request
    AF_LEDGER_CONFIRM               //  as af_ledger_confirm
} af_ledger_op_kind_t;

//  One request of a batch (af_ledger_run): the question, then the answer
typedef struct {
    af_ledger_op_kind_t kind;
    const char *account;            //  the strings are the caller's, read during the run
    const char *program;            //  REQUEST
    const char *source;             //  REQUEST (may be NULL): the device
    const char *source_account;     //  REQUEST (may be NULL): a friend's account
    uint32_t amount;                //  REQUEST
    const char *currency;           //  REQUEST
    const char *intent_hex;         //  CONFIRM
    const char *token;              //  CONFIRM
    //  The answer, as af_ledger_request / af_ledger_confirm give it
    int code;                       //  AF_OK, AF_E_MALFORMED or AF_E_INTERNAL (err)
    bool entitled;                  //  REQUEST
    bool found;                     //  CONFIRM
    af_intent_t intent;
    char err [AF_MAX_REASON + 1];
    //  The ledger's own, during the run
    uint32_t step;
    size_t same;
} af_ledger_op_t;

//  Open (or make) the ledger in directory dir (made, mode 0700, if
//  missing) over provider (copied; its arg must outlive the ledger).
//  NULL with err on failure.
af_ledger_t *af_ledger_new (const char *dir, const af_provider_t *provider, char *err, size_t errlen);

//  Destroy; sets *self_p to NULL.
void af_ledger_destroy (af_ledger_t **self_p);

//  How long an OPEN intent waits for its confirmation (default
//  AF_PAY_INTENT_MS).
void af_ledger_set_intent_ttl (af_ledger_t *self, uint64_t ms);

//  Test only: stop confirmations at a fault point (see af_ledger_fault_t).
void af_ledger_set_fault (af_ledger_t *self, af_ledger_fault_t fault);

//  An install request for a paid program (S0.4): *entitled true (and
//  intent the purchase's, state PAID) when the account paid for it
//  before; else the account's open intent for the program at this amount
//  and currency, or a new one. AF_OK; AF_E_MALFORMED (err) for an amount
//  of 0 or above AF_MAX_PRICE, a currency that is not ISO 4217 form, an
//  invalid program ID or account; AF_E_INTERNAL (err) when the ledger
//  cannot be read or written.
int af_ledger_request (af_ledger_t *self, const char *account, const char *program, const char *source,
                       uint32_t amount, const char *currency, uint64_t now, af_intent_t *intent,
                       bool *entitled, char *err, size_t errlen);

//  Confirm intent_hex of account with token (S0.6): charges at most once.
//  AF_OK with *found false when the account has no such intent (another
//  account's ID is not found either), else *found and intent as it is
//  now: PAID (now or before), DECLINED, TIMED_OUT or EXPIRED (final, with
//  the reason), OPEN (a transient failure: confirm again), CHARGING (the
//  provider has not told what became of it; asked again at the next
//  confirmation or start). AF_E_MALFORMED (err) for a malformed ID or
//  token; AF_E_INTERNAL (err) when the ledger fails, or at the test fault.
int af_ledger_confirm (af_ledger_t *self, const char *account, const char *intent_hex, const char *token,
                       uint64_t now, af_intent_t *intent, bool *found, char *err, size_t errlen);

//  Run count requests at once (group commit, above): each op's answer in
//  its code, intent, entitled/found and err. AF_OK when the batch ran
//  (each op says how it went); AF_E_INTERNAL (err, and every op's code)
//  when a batch transaction failed or at the test fault: each request is
//  then answered 500 (asked again, it finds what is on disk: an intent
//  open, or charging and resolved by lookup, or final).
int af_ledger_run (af_ledger_t *self, af_ledger_op_t *ops, size_t count, uint64_t now, char *err, size_t errlen);

//  af_ledger_run in two halves, so that a busy worker pays one ledger
//  fsync per batch: start records the outcomes of the batch before it
//  (done: ops of an earlier start, not finished) and the first step of
//  this one (ops) in one transaction, then asks the processor for ops'
//  charges; finish records ops' outcomes alone (when no batch follows).
//  The codes are af_ledger_run's; start's failure (or test fault) is
//  every op's, of both batches. done's answers are final after start.
int af_ledger_start (af_ledger_t *self, af_ledger_op_t *done, size_t done_count, af_ledger_op_t *ops, size_t count,
                     uint64_t now, char *err, size_t errlen);
int af_ledger_finish (af_ledger_t *self, af_ledger_op_t *ops, size_t count, uint64_t now, char *err, size_t errlen);

//  After af_ledger_start: does op wait for its outcome to be recorded
//  (the next start, or finish) before it may be answered?
bool af_ledger_op_pending (const af_ledger_op_t *op);

//  Resolve every CHARGING intent with the provider (at start): charged →
//  PAID with its entitlement, never charged → OPEN. *resolved counts them.
//  AF_OK, or AF_E_INTERNAL (err); intents the provider cannot answer for
//  now stay CHARGING and are not counted.
int af_ledger_recover (af_ledger_t *self, uint64_t now, size_t *resolved, char *err, size_t errlen);

//  Is the account entitled to program? AF_OK with *found (and charge, if
//  not NULL), or AF_E_INTERNAL.
int af_ledger_entitlement (af_ledger_t *self, const char *account, const char *program, bool *found,
                           af_charge_t *charge);

//  The account's entitlements in program order, at most max: AF_OK with
//  *count, or AF_E_INTERNAL.
int af_ledger_purchases (af_ledger_t *self, const char *account, af_charge_t *out, size_t max, size_t *count);

//  Totals over every account (tests, status): AF_OK or AF_E_INTERNAL.
int af_ledger_totals (af_ledger_t *self, size_t *intents, size_t *charges, size_t *entitlements);

//  Name of a state ("paid"), as SPEC's PAID.state spells it.
const char *af_intent_state_name (uint32_t state);

//  Self test: entitlement, intent reuse, each outcome, exactly once
//  (confirm twice, a kill at each step resolved on reopen), a batch (one
//  charge for an intent confirmed twice in it, one that fails undone
//  alone), expiry, another account's intent, damaged values.
void af_ledger_test (bool verbose);

#endif
