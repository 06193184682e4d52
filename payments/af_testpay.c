/*  =========================================================================
    af_testpay - the built-in test payment processor (see af_provider.h)

    Its books: LMDB environment DIR (data.mdb), one database `keys`:
    key the idempotency key (32 hex digits), value a book_t (below):
    whether the key was charged, its reference, amount and currency, and
    how many attempts were made under it. Each batch of charges
    (charge_many; a single charge is a batch of one) is one write
    transaction (one fsync), committed before any of its answers is
    given, so the processor remembers a charge even when the caller is
    killed before it hears the answer, which is the case the ledger's
    recovery exists for.
    =========================================================================
*/
#include "af_provider.h"
#include "af_msg.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#define BOOK_CHARGED 1
#define BOOK_FAILED  2      //  attempts made, nothing charged
#define AF_TESTPAY_SLOW_MS 1000     //  how long tok_slow takes

typedef struct {
    uint8_t state;
    uint8_t attempts;
    char currency [AF_CURRENCY + 1];
    uint32_t amount;
    char charge [AF_MAX_PAY_REF + 1];
} book_t;

struct _af_testpay_t {
    MDB_env *env;
    MDB_dbi keys;
};

af_testpay_t *
af_testpay_new (const char *dir, char *err, size_t errlen)
{
    if (mkdir (dir, 0700) && errno != EEXIST) {
        snprintf (err, errlen, "cannot make %s: %s", dir, strerror (errno));
        return NULL;
    }
    af_testpay_t *self = (af_testpay_t *) calloc (1, sizeof (af_testpay_t));
    assert (self);
    MDB_txn *txn = NULL;
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 2);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, (size_t) 256 << 20);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open (txn, "keys", MDB_CREATE, &self->keys);
    if (rc == 0) {
        rc = mdb_txn_commit (txn);
        txn = NULL;
    }
    if (rc) {
        snprintf (err, errlen, "test processor's books in %s: %s", dir, mdb_strerror (rc));
        if (txn)
            mdb_txn_abort (txn);
        af_testpay_destroy (&self);
    }
    return self;
}

void
af_testpay_destroy (af_testpay_t **self_p)
{
    assert (self_p);
    af_testpay_t *self = *self_p;
    if (self) {
        if (self->env)
            mdb_env_close (self->env);
        free (self);
        *self_p = NULL;
    }
}

//  The book of key in txn: true if there is one (and it is whole)
static bool
s_book_get (af_testpay_t *self, MDB_txn *txn, const char *key, book_t *book)
{
    MDB_val k = { strlen (key), (void *) key }, v;
    memset (book, 0, sizeof *book);
    if (mdb_get (txn, self->keys, &k, &v) || v.mv_size != sizeof (book_t))
        return false;
    memcpy (book, v.mv_data, sizeof *book);
    book->currency [AF_CURRENCY] = 0;
    book->charge [AF_MAX_PAY_REF] = 0;
    return true;
}

//  What a token does on this attempt (attempts already made before it);
//  tok_slow sleeps once per batch (*slept)
static af_pay_outcome_t
s_token_outcome (const char *token, int attempts, bool *slept, char *reason, size_t size)
{
    if (!strcmp (token, "tok_approve") || !strcmp (token, "tok_visa"))
        return AF_PAY_APPROVED;
    if (!strcmp (token, "tok_decline")) {
        snprintf (reason, size, "the card was declined");
        return AF_PAY_DECLINED;
    }
    if (!strcmp (token, "tok_insufficient")) {
        snprintf (reason, size, "insufficient funds");
        return AF_PAY_DECLINED;
    }
    if (!strcmp (token, "tok_transient")) {
        if (attempts > 0)
            return AF_PAY_APPROVED;
        snprintf (reason, size, "the processor is busy; try again");
        return AF_PAY_TRANSIENT;
    }
    if (!strcmp (token, "tok_timeout")) {
        snprintf (reason, size, "the processor did not answer in time");
        return AF_PAY_TIMEOUT;
    }
    if (!strcmp (token, "tok_lost_reply"))
        return AF_PAY_APPROVED;         //  charged; the caller is told TIMEOUT
    if (!strcmp (token, "tok_slow")) {
        if (!*slept)
            zclock_sleep (AF_TESTPAY_SLOW_MS);
        *slept = true;
        return AF_PAY_APPROVED;
    }
    snprintf (reason, size, "unknown test token");
    return AF_PAY_DECLINED;
}

//  One charge in txn: the answer, and the book to write (*write true)
static void
s_charge_in (af_testpay_t *self, MDB_txn *txn, const af_pay_charge_t *charge, bool *slept,
             af_pay_answer_t *answer, book_t *book, bool *write)
{
    memset (answer, 0, sizeof *answer);
    *write = false;
    if (s_book_get (self, txn, charge->key, book) && book->state == BOOK_CHARGED) {
        //  The same key again: the first charge's answer, nothing more
        answer->outcome = AF_PAY_APPROVED;
        af_strcopy (answer->charge, sizeof answer->charge, book->charge);
        return;
    }
    af_pay_outcome_t outcome = s_token_outcome (charge->token, book->attempts, slept, answer->reason,
                                                sizeof answer->reason);
    if (book->attempts < 255)
        book->attempts++;
    if (outcome == AF_PAY_APPROVED) {
        uint8_t id [8];
        randombytes_buf (id, sizeof id);
        char hex [17];
        sodium_bin2hex (hex, sizeof hex, id, sizeof id);
        snprintf (book->charge, sizeof book->charge, "ch_test_%s", hex);
        book->state = BOOK_CHARGED;
        book->amount = charge->amount;
        af_strcopy (book->currency, sizeof book->currency, charge->currency);
    }
    else
        book->state = BOOK_FAILED;
    *write = true;
    if (outcome == AF_PAY_APPROVED && !strcmp (charge->token, "tok_lost_reply")) {
        answer->outcome = AF_PAY_TIMEOUT;
        snprintf (answer->reason, sizeof answer->reason, "the processor's answer was lost");
        return;
    }
    answer->outcome = outcome;
    if (outcome == AF_PAY_APPROVED)
        af_strcopy (answer->charge, sizeof answer->charge, book->charge);
}

//  The batch: every charge in one write transaction, one fsync, as a
//  processor's own books would group them; an answer is given only once
//  the books that back it are committed
static void
s_charge_many (void *arg, const af_pay_charge_t *charges, size_t count, af_pay_answer_t *answers, int *codes)
{
    af_testpay_t *self = (af_testpay_t *) arg;
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc)
        txn = NULL;
    bool slept = false, wrote = false;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        book_t book;
        bool write;
        s_charge_in (self, txn, &charges [i], &slept, &answers [i], &book, &write);
        if (write) {
            MDB_val k = { strlen (charges [i].key), (void *) charges [i].key }, v = { sizeof book, &book };
            rc = mdb_put (txn, self->keys, &k, &v, 0);
            wrote = true;
        }
    }
    if (txn && rc == 0 && wrote)
        rc = mdb_txn_commit (txn);
    else
    if (txn)
        mdb_txn_abort (txn);
    for (size_t i = 0; i < count; i++) {
        codes [i] = rc? AF_E_INTERNAL: AF_OK;
        if (rc) {
            memset (&answers [i], 0, sizeof answers [i]);
            snprintf (answers [i].reason, sizeof answers [i].reason, "test processor: %s", mdb_strerror (rc));
        }
    }
}

static int
s_charge (void *arg, const char *key, const char *account, uint32_t amount, const char *currency,
          const char *token, af_pay_answer_t *answer)
{
    af_pay_charge_t charge = { key, account, amount, currency, token };
    int code;
    s_charge_many (arg, &charge, 1, answer, &code);
    return code;
}

static int
s_lookup (void *arg, const char *key, af_pay_answer_t *answer)
{
    af_testpay_t *self = (af_testpay_t *) arg;
    memset (answer, 0, sizeof *answer);
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        snprintf (answer->reason, sizeof answer->reason, "test processor: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    book_t book;
    if (s_book_get (self, txn, key, &book) && book.state == BOOK_CHARGED) {
        answer->outcome = AF_PAY_APPROVED;
        af_strcopy (answer->charge, sizeof answer->charge, book.charge);
    }
    else {
        answer->outcome = AF_PAY_NOT_FOUND;
        snprintf (answer->reason, sizeof answer->reason, "nothing was charged under this key");
    }
    mdb_txn_abort (txn);
    return AF_OK;
}

af_provider_t
af_testpay_provider (af_testpay_t *self)
{
    assert (self);
    af_provider_t provider = { "test", self, s_charge, s_lookup, s_charge_many };
    return provider;
}

int
af_testpay_charges (af_testpay_t *self, size_t *count)
{
    assert (self);
    *count = 0;
    MDB_txn *txn;
    MDB_cursor *cursor;
    if (mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn))
        return AF_E_INTERNAL;
    if (mdb_cursor_open (txn, self->keys, &cursor)) {
        mdb_txn_abort (txn);
        return AF_E_INTERNAL;
    }
    MDB_val k, v;
    for (int rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT)) {
        book_t book;
        if (v.mv_size == sizeof book) {
            memcpy (&book, v.mv_data, sizeof book);
            if (book.state == BOOK_CHARGED)
                (*count)++;
        }
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

void
af_testpay_test (bool verbose)
{
    printf (" * af_testpay: ");
    (void) verbose;
    char dir [] = "/tmp/af_testpay_XXXXXX", err [256];
    assert (mkdtemp (dir));
    af_testpay_t *pay = af_testpay_new (dir, err, sizeof err);
    assert (pay);
    af_provider_t p = af_testpay_provider (pay);
    af_pay_answer_t a;
    assert (p.charge (p.arg, "k1", "alice", 499, "EUR", "tok_approve", &a) == AF_OK);
    assert (a.outcome == AF_PAY_APPROVED && !strncmp (a.charge, "ch_test_", 8));
    char first [AF_MAX_PAY_REF + 1];
    strcpy (first, a.charge);
    //  The same key again, even with another token: the first charge
    assert (p.charge (p.arg, "k1", "alice", 499, "EUR", "tok_decline", &a) == AF_OK);
    assert (a.outcome == AF_PAY_APPROVED && !strcmp (a.charge, first));
    assert (p.charge (p.arg, "k2", "alice", 499, "EUR", "tok_decline", &a) == AF_OK);
    assert (a.outcome == AF_PAY_DECLINED && strstr (a.reason, "declined"));
    assert (p.charge (p.arg, "k3", "alice", 499, "EUR", "tok_insufficient", &a) == AF_OK);
    assert (a.outcome == AF_PAY_DECLINED && strstr (a.reason, "funds"));
    assert (p.charge (p.arg, "k4", "alice", 499, "EUR", "tok_transient", &a) == AF_OK);
    assert (a.outcome == AF_PAY_TRANSIENT);
    assert (p.lookup (p.arg, "k4", &a) == AF_OK && a.outcome == AF_PAY_NOT_FOUND);
    assert (p.charge (p.arg, "k4", "alice", 499, "EUR", "tok_transient", &a) == AF_OK);
    assert (a.outcome == AF_PAY_APPROVED);
    assert (p.charge (p.arg, "k5", "alice", 499, "EUR", "tok_timeout", &a) == AF_OK);
    assert (a.outcome == AF_PAY_TIMEOUT);
    assert (p.lookup (p.arg, "k5", &a) == AF_OK && a.outcome == AF_PAY_NOT_FOUND);
    assert (p.charge (p.arg, "k6", "alice", 499, "EUR", "tok_lost_reply", &a) == AF_OK);
    assert (a.outcome == AF_PAY_TIMEOUT);
    assert (p.lookup (p.arg, "k6", &a) == AF_OK && a.outcome == AF_PAY_APPROVED);
    assert (p.charge (p.arg, "k7", "alice", 499, "EUR", "4242", &a) == AF_OK);
    assert (a.outcome == AF_PAY_DECLINED && strstr (a.reason, "unknown"));
    size_t count;
    assert (af_testpay_charges (pay, &count) == AF_OK && count == 3);
    //  A batch: each charge on its own, the same key twice charged once
    af_pay_charge_t batch [3] = { { "k8", "alice", 100, "USD", "tok_approve" },
                                  { "k9", "alice", 100, "USD", "tok_decline" },
                                  { "k8", "alice", 100, "USD", "tok_approve" } };
    af_pay_answer_t answers [3];
    int codes [3];
    p.charge_many (p.arg, batch, 3, answers, codes);
    assert (codes [0] == AF_OK && codes [1] == AF_OK && codes [2] == AF_OK);
    assert (answers [0].outcome == AF_PAY_APPROVED && answers [1].outcome == AF_PAY_DECLINED);
    assert (answers [2].outcome == AF_PAY_APPROVED && !strcmp (answers [0].charge, answers [2].charge));
    assert (af_testpay_charges (pay, &count) == AF_OK && count == 4);
    //  The books survive a reopen
    af_testpay_destroy (&pay);
    pay = af_testpay_new (dir, err, sizeof err);
    assert (pay);
    p = af_testpay_provider (pay);
    assert (p.lookup (p.arg, "k1", &a) == AF_OK && !strcmp (a.charge, first));
    assert (af_testpay_charges (pay, &count) == AF_OK && count == 4);
    af_testpay_destroy (&pay);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    printf ("OK\n");
}
