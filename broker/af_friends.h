/*  =========================================================================
    af_friends - contact tokens, friendship, visibility, in one broker store

    What the friends feature (issue 13, SPEC 5.38-5.45) keeps, and the
    questions asked of it, for accounts of one store. It never sees a phone
    number or a name: a token is the OPRF output of a number (SPEC 5.35)
    cut to AF_CONTACT_TOKEN_SIZE bytes, and means nothing without the
    contacts service's key. Which broker holds which account is not this
    class's concern: every question that spans two accounts is asked
    through broker_xacct.c, which calls this class on the store that holds
    each account (today: its own; see docs/ARCHITECTURE.md "Friends").

    A token set is kept as one value: its tokens sorted, each once, so a
    friendship check is one read of each book and a merge (no cursor walk,
    no all-pairs job); it stops as soon as enough common tokens are seen.

    Named databases (keys start with the account, as every broker key):
      contacts      account, 0x00, 'B' -> the address book's token set
                    account, 0x00, 'M' -> the account's own numbers' set
                    account, 0x00, 'X' -> contacts the account blocks
                    account, 0x00, 'R' -> 1 byte (1: refuses every
                                          recommendation), then the set of
                                          contacts it refuses them from
      contacts_dir  "~" + 8 hex digits of the token's first 4 bytes (a
                    directory bucket: a name no account can have, so the
                    bucket shards as an account does), 0x00, token, the
                    account that claims it as its own number -> empty
      shares        account, 0x00, program -> 1 byte, af_share_t
      contact_evals account -> evaluations counted (8 bytes LE), start of
                    the window (8 bytes LE, ms since the epoch)

    Every function works in the caller's transaction and returns AF_OK or
    an AF_E_* code (docs/ARCHITECTURE.md "One error contract").
    =========================================================================
*/
#ifndef AF_FRIENDS_H_INCLUDED
#define AF_FRIENDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_store.h"
#include "af_limits.h"

typedef struct _af_friends_t af_friends_t;

typedef uint8_t af_token_t [AF_CONTACT_TOKEN_SIZE];

//  The sets an account keeps
typedef enum {
    AF_SET_BOOK = 'B',              //  its address book
    AF_SET_OWN = 'M',               //  its own numbers
    AF_SET_BLOCKED = 'X',           //  contacts it blocks: never friends
    AF_SET_REFUSED = 'R'            //  contacts whose recommendations it refuses
} af_set_t;

//  An app's visibility (S3.3); private by default
typedef enum {
    AF_SHARE_PRIVATE = 0,
    AF_SHARE_FRIENDS = 1,
    AF_SHARE_PUBLIC = 2
} af_share_t;

//  "private", "friends", "public"; parse: AF_OK or AF_E_MALFORMED.
const char *af_share_name (af_share_t share);
int af_share_parse (const char *name, af_share_t *share);

//  A token set in memory: sorted, each token once
typedef struct {
    af_token_t *tokens;             //  owned
    size_t count;
} af_tokens_t;

//  Sort and deduplicate count tokens in place; the count kept.
size_t af_tokens_sort (af_token_t *tokens, size_t count);

//  Whether a sorted set holds token (binary search).
bool af_tokens_has (const af_token_t *tokens, size_t count, const uint8_t *token);

//  Common tokens of two sorted sets, counting up to stop (0: all).
size_t af_tokens_common (const af_token_t *a, size_t na, const af_token_t *b, size_t nb, size_t stop);

//  Free a set's tokens.
void af_tokens_free (af_tokens_t *set);

//  Open the databases in an open, writable store. NULL on failure.
af_friends_t *af_friends_new (af_store_t *store);
void af_friends_destroy (af_friends_t **self_p);

//  An account's set, read in place (valid until txn changes or ends;
//  *count 0 when it has none). AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_set_get (af_friends_t *self, MDB_txn *txn, const char *account, af_set_t set,
                        const af_token_t **tokens, size_t *count);

//  Replace an account's set with count tokens (sorted here; 0 removes it),
//  or add them to it (replace false). At most max tokens after: else
//  AF_E_QUOTA and nothing written. *total (may be NULL): the set's size
//  after. AF_OK, AF_E_MALFORMED, AF_E_QUOTA, AF_E_INTERNAL.
int af_friends_set_put (af_friends_t *self, MDB_txn *txn, const char *account, af_set_t set, bool replace,
                        const af_token_t *tokens, size_t count, size_t max, size_t *total);

//  Remove one token from an account's set (absent: nothing). AF_OK,
//  AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_set_remove (af_friends_t *self, MDB_txn *txn, const char *account, af_set_t set,
                           const uint8_t *token);

//  Whether the account refuses every recommendation; set it. AF_OK,
//  AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_refuse_all (af_friends_t *self, MDB_txn *txn, const char *account, bool *all);
int af_friends_refuse_all_set (af_friends_t *self, MDB_txn *txn, const char *account, bool all);

//  How many contacts two accounts' books share, counting up to stop (0:
//  all of them). AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_common (af_friends_t *self, MDB_txn *txn, const char *a, const char *b, size_t stop,
                       size_t *common);

//  Whether one of the accounts blocks the other: its blocked set holds
//  one of the other's own numbers. AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_blocked (af_friends_t *self, MDB_txn *txn, const char *a, const char *b, bool *blocked);

//  The directory of own numbers: account claims token (on) or no longer
//  (off). AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_dir_set (af_friends_t *self, MDB_txn *txn, const uint8_t *token, const char *account, bool on);

//  The directory bucket's name for a token ("~" and 8 hex digits), as
//  af_shard_of places it.
void af_friends_dir_bucket (const uint8_t *token, char bucket [10]);

//  The accounts that claim token, at most max of them, into accounts.
//  AF_OK, AF_E_INTERNAL.
int af_friends_dir_find (af_friends_t *self, MDB_txn *txn, const uint8_t *token,
                         char accounts [][AF_MAX_ACCOUNT + 1], size_t max, size_t *count);

//  An app's visibility for its account (absent: private); set it
//  (private removes the key). AF_OK, AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_share_get (af_friends_t *self, MDB_txn *txn, const char *account, const char *program,
                          af_share_t *share);
int af_friends_share_set (af_friends_t *self, MDB_txn *txn, const char *account, const char *program,
                          af_share_t share);

//  Called for each app the account shares (not private), in program
//  order; non-zero stops the walk.
typedef int (af_share_fn) (const char *program, af_share_t share, void *arg);
int af_friends_shares (af_friends_t *self, MDB_txn *txn, const char *account, af_share_fn *fn, void *arg);

//  Count count evaluations against the account's allowance of limit per
//  window_ms (a window starts with the first evaluation after the last
//  one ended). Over it: AF_E_EVAL_LIMIT, nothing counted, *used the count
//  so far and *free_at when the window ends (ms since the epoch). AF_OK,
//  AF_E_MALFORMED, AF_E_EVAL_LIMIT, AF_E_INTERNAL.
int af_friends_eval_charge (af_friends_t *self, MDB_txn *txn, const char *account, uint64_t count,
                            uint64_t limit, uint64_t window_ms, uint64_t now, uint64_t *used, uint64_t *free_at);

//  Intents of writes between brokers (docs/ARCHITECTURE.md "Friends"),
//  database xacct_intents. On the owner of account to: the recommendations
//  it has applied (key to 0x00 'i' id; value 8 bytes LE ms applied, 1 byte
//  refused), so a resent FORWARD is answered as the first was and applied
//  once; those older than AF_INTENT_KEEP_MS are forgotten when the account
//  gets its next one (a friend's notice and an install record need no such
//  record: af_paynotes keeps their keys). On the asker, account from: its
//  unresolved intents, of a kind (key from 0x00 KIND id, KIND 'o' a
//  recommendation, 'n' a friend's notice, 'r' the install record for a
//  friend's ask, from the source's account; value 8 bytes LE ms written,
//  to, 0x00, program, 0x00, the payload), resent until the owner answers;
//  a put whose key is there
//  already keeps the first record. When a recommendation's resend is
//  answered (the node that asked was told 503), the outcome (key from 0x00
//  'a' id; value 8 bytes LE ms answered, to, 0x00, program, 0x00, code 4
//  bytes LE, 1 byte refused), for the node's retry of the same
//  recommendation, until it comes or AF_INTENT_KEEP_MS passes. Each AF_OK,
//  AF_E_MALFORMED, AF_E_INTERNAL.
int af_friends_intent_applied (af_friends_t *self, MDB_txn *txn, const char *to, const uint8_t *id, bool *seen,
                               bool *refused);
int af_friends_intent_apply (af_friends_t *self, MDB_txn *txn, const char *to, const uint8_t *id, bool refused,
                             uint64_t now);
typedef enum {
    AF_XINTENT_RECOMMEND = 'o',     //  FORWARD recommend (broker_xacct.c)
    AF_XINTENT_NOTICE = 'n',        //  FORWARD notice (broker_xnotice.c)
    AF_XINTENT_RECORD = 'r'         //  FORWARD record (broker_xrecord.c)
} af_xintent_kind_t;
int af_friends_intent_pending_put (af_friends_t *self, MDB_txn *txn, const char *from, af_xintent_kind_t kind,
                                   const uint8_t *id, const char *to, const char *program, uint64_t now,
                                   const void *payload, size_t size);
//  Forget an intent of from, of any kind, pending or answered (absent: nothing).
int af_friends_intent_pending_del (af_friends_t *self, MDB_txn *txn, const char *from, const uint8_t *id);
//  A pending intent of from answered by a resend: kept as its outcome, the
//  FORWARD_REPLY's code and refused (no pending one: nothing).
int af_friends_intent_answered (af_friends_t *self, MDB_txn *txn, const char *from, const uint8_t *id, int code,
                                bool refused, uint64_t now);
//  Each unresolved intent of account from (NULL: of every account), pending
//  or answered, in key order; non-zero from fn stops. Its pointers live as
//  long as txn.
typedef struct {
    char from [AF_MAX_ACCOUNT + 1];
    af_xintent_kind_t kind;         //  an answered one: AF_XINTENT_RECOMMEND
    uint8_t id [AF_ID_SIZE];
    char to [AF_MAX_ACCOUNT + 1];
    char program [AF_MAX_PROGRAM + 1];
    uint64_t at;                    //  ms since the epoch it was written (answered: when)
    const void *payload;            //  pending: the FORWARD's body (answered: NULL, 0)
    size_t size;
    bool answered;                  //  answered by a resend: its outcome
    int code;                       //  ... the FORWARD_REPLY's code
    bool refused;                   //  ... and its yes
} af_xintent_t;
typedef int (af_xintent_fn) (const af_xintent_t *intent, void *arg);
int af_friends_intent_pending_each (af_friends_t *self, MDB_txn *txn, const char *from, af_xintent_fn *fn,
                                    void *arg);

//  Self test
void af_friends_test (bool verbose);

#endif
