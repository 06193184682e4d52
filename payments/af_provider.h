/*  =========================================================================
    af_provider - what the payments ledger needs of a payment processor,
    and the built-in test processor (af_testpay)

    Why an interface of function pointers: the ledger (af_ledger) owns the
    exactly-once rule, and a processor only has to do what every real one
    already does: charge a token under an idempotency key, and say what
    became of a key when asked again. A real provider is one more struct of
    these functions; neither the ledger nor the broker changes.

    The idempotency key is the payment intent's ID (32 hex digits). A
    provider MUST treat a second charge under the same key as the first
    one (answer its outcome, charge nothing more), as Stripe, Adyen and
    PayPal do with their idempotency headers. `lookup` is how the ledger
    resolves a charge whose answer it never recorded (it was killed, or
    the call timed out): APPROVED with the reference if the key was
    charged, NOT_FOUND if it never was.

    The payments worker group-commits (af_ledger_run): it takes every
    request waiting, records their intents in one transaction, then asks
    the processor for all the charges of that batch at once, then records
    all the outcomes in a second transaction. `charge_many` is that one
    question: count charges, each independent of the others (its own key,
    its own answer, as if `charge` had been called for it). A real
    processor over HTTP makes one call per charge, and may make them
    concurrently; it returns when every one has an answer or has timed
    out (AF_PAY_TIMEOUT: the ledger then asks `lookup`). The test
    processor records the whole batch in its books in one transaction.
    A provider without `charge_many` (NULL) is called through `charge`,
    one charge after the other.

    af_testpay is a processor for tests and demos in the manner of the big
    processors' test modes: the token decides the outcome. Its books are in
    an LMDB environment of its own (the processor's side: it survives the
    payments worker being killed, as a real processor would), one record
    per idempotency key.

    | token | outcome |
    |---|---|
    | `tok_approve` (`tok_visa`) | approved |
    | `tok_decline` | declined ("the card was declined") |
    | `tok_insufficient` | declined ("insufficient funds") |
    | `tok_transient` | the first attempt under a key fails transiently (nothing charged), the next ones approve |
    | `tok_timeout` | no answer in time; nothing charged |
    | `tok_lost_reply` | charged, but the answer is lost (a timeout): lookup finds the charge |
    | `tok_slow` | approved after a second (a slow processor: tests kill things meanwhile; once per batch) |
    | anything else | declined ("unknown test token") |
    =========================================================================
*/
#ifndef AF_PROVIDER_H_INCLUDED
#define AF_PROVIDER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

typedef enum {
    AF_PAY_APPROVED = 1,    //  charged; charge holds the provider's reference
    AF_PAY_DECLINED,        //  refused for good (card declined, funds, token); nothing charged
    AF_PAY_TRANSIENT,       //  failed this time (processor busy); nothing charged; try again
    AF_PAY_TIMEOUT,         //  no answer: unknown whether it charged; ask lookup
    AF_PAY_NOT_FOUND        //  lookup only: nothing was ever charged under the key
} af_pay_outcome_t;

typedef struct {
    af_pay_outcome_t outcome;
    char charge [AF_MAX_PAY_REF + 1];       //  APPROVED: the provider's reference
    char reason [AF_MAX_REASON + 1];        //  otherwise: why, for people
} af_pay_answer_t;

//  One charge asked of a processor (the strings are the caller's)
typedef struct {
    const char *key;        //  the idempotency key: the intent's ID
    const char *account;
    uint32_t amount;        //  minor units
    const char *currency;
    const char *token;
} af_pay_charge_t;

//  A payment processor. Each function returns AF_OK with answer filled,
//  or AF_E_INTERNAL with answer->reason when it could not even ask (its
//  own store failed): the ledger then treats the call as a timeout.
typedef struct {
    const char *name;       //  for logs ("test")
    void *arg;              //  the provider's own state
    //  Charge amount (minor units) of currency with token, under key
    int (*charge) (void *arg, const char *key, const char *account, uint32_t amount,
                   const char *currency, const char *token, af_pay_answer_t *answer);
    //  What became of key: APPROVED (with charge), or NOT_FOUND
    int (*lookup) (void *arg, const char *key, af_pay_answer_t *answer);
    //  Optional (may be NULL): charges [i] for i < count, each on its own,
    //  as charge would (codes [i] its return code, answers [i] its answer);
    //  possibly concurrently. Returns when every one is answered.
    void (*charge_many) (void *arg, const af_pay_charge_t *charges, size_t count, af_pay_answer_t *answers,
                         int *codes);
} af_provider_t;

//  --------------------------------------------------------------------------
//  af_testpay: the built-in test processor

typedef struct _af_testpay_t af_testpay_t;

//  Open (or make) the test processor's books in directory dir (made,
//  mode 0700, if missing). NULL with err on failure.
af_testpay_t *af_testpay_new (const char *dir, char *err, size_t errlen);

//  Destroy; sets *self_p to NULL.
void af_testpay_destroy (af_testpay_t **self_p);

//  The provider functions over this processor (valid while it lives).
af_provider_t af_testpay_provider (af_testpay_t *self);

//  How many keys the processor has charged (its books, for tests and
//  the demo): AF_OK with *count, or AF_E_INTERNAL.
int af_testpay_charges (af_testpay_t *self, size_t *count);

//  Self test: each token's outcome, the same key charged twice charging
//  once (one by one and in one batch), lookup, and the books surviving a
//  reopen.
void af_testpay_test (bool verbose);

#endif
