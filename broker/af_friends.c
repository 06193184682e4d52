/*  =========================================================================
    af_friends - contact tokens, friendship, visibility, in one broker store

    See af_friends.h for what is kept and the key layouts.
    =========================================================================
*/
#include "af_friends.h"

#include <czmq.h>
#include <sodium.h>

#define TOKEN       AF_CONTACT_TOKEN_SIZE
#define BUCKET_LEN  9               //  "~" and 8 hex digits
#define KEY_MAX     (AF_MAX_ACCOUNT + 2 + AF_MAX_PROGRAM)
#define DIR_KEY_MAX (BUCKET_LEN + 1 + TOKEN + AF_MAX_ACCOUNT)
#define EVAL_SIZE   16

struct _af_friends_t {
    af_store_t *store;
    MDB_dbi contacts;
    MDB_dbi dir;
    MDB_dbi shares;
    MDB_dbi evals;
    MDB_dbi intents;
};

static const char *s_share_names [] = { "private", "friends", "public" };

const char *
af_share_name (af_share_t share)
{
    return share <= AF_SHARE_PUBLIC? s_share_names [share]: "?";
}

int
af_share_parse (const char *name, af_share_t *share)
{
    for (int i = 0; i <= AF_SHARE_PUBLIC; i++)
        if (streq (name, s_share_names [i])) {
            *share = (af_share_t) i;
            return AF_OK;
        }
    return AF_E_MALFORMED;
}

//  --------------------------------------------------------------------------
//  Token sets in memory

static int
s_cmp (const void *a, const void *b)
{
    return memcmp (a, b, TOKEN);
}

size_t
af_tokens_sort (af_token_t *tokens, size_t count)
{
    if (count < 2)
        return count;
    qsort (tokens, count, TOKEN, s_cmp);
    size_t kept = 1;
    for (size_t i = 1; i < count; i++)
        if (memcmp (tokens [i], tokens [kept - 1], TOKEN))
            memmove (tokens [kept++], tokens [i], TOKEN);
    return kept;
}

bool
af_tokens_has (const af_token_t *tokens, size_t count, const uint8_t *token)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp (tokens [mid], token, TOKEN);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

size_t
af_tokens_common (const af_token_t *a, size_t na, const af_token_t *b, size_t nb, size_t stop)
{
    size_t i = 0, j = 0, common = 0;
    while (i < na && j < nb && (stop == 0 || common < stop)) {
        int c = memcmp (a [i], b [j], TOKEN);
        if (c == 0) {
            common++;
            i++;
            j++;
        }
        else
        if (c < 0)
            i++;
        else
            j++;
    }
    return common;
}

void
af_tokens_free (af_tokens_t *set)
{
    free (set->tokens);
    set->tokens = NULL;
    set->count = 0;
}

//  --------------------------------------------------------------------------
//  Life cycle

af_friends_t *
af_friends_new (af_store_t *store)
{
    af_friends_t *self = (af_friends_t *) zmalloc (sizeof (af_friends_t));
    assert (self);
    self->store = store;
    if (af_store_dbi (store, "contacts", 0, &self->contacts)
    ||  af_store_dbi (store, "contacts_dir", 0, &self->dir)
    ||  af_store_dbi (store, "shares", 0, &self->shares)
    ||  af_store_dbi (store, "contact_evals", 0, &self->evals)
    ||  af_store_dbi (store, "xacct_intents", 0, &self->intents)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_friends_destroy (af_friends_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  account, 0x00, then tail: its length, 0 for a bad account
static size_t
s_key (uint8_t *key, const char *account, const void *tail, size_t tail_len)
{
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT || tail_len > AF_MAX_PROGRAM + 1)
        return 0;
    memcpy (key, account, len);
    key [len] = 0;
    memcpy (key + len + 1, tail, tail_len);
    return len + 1 + tail_len;
}

//  --------------------------------------------------------------------------
//  Sets of an account

int
af_friends_set_get (af_friends_t *self, MDB_txn *txn, const char *account, af_set_t set,
                    const af_token_t **tokens, size_t *count)
{
    assert (self && tokens && count);
    *tokens = NULL;
    *count = 0;
    uint8_t key [KEY_MAX], tail = (uint8_t) set;
    size_t keylen = s_key (key, account, &tail, 1);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_val value;
    int rc = af_store_get (txn, self->contacts, key, keylen, &value);
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    if (rc)
        return af_store_code (rc);
    size_t skip = set == AF_SET_REFUSED? 1: 0;      //  its flag comes first
    if (value.mv_size < skip || (value.mv_size - skip) % TOKEN) {
        zsys_error ("friends: the %c set of '%s' is %zu bytes: not tokens", set, account, value.mv_size);
        return AF_E_INTERNAL;
    }
    *tokens = (const af_token_t *) ((const uint8_t *) value.mv_data + skip);
    *count = (value.mv_size - skip) / TOKEN;
    return AF_OK;
}

//  Write a set's value: the refused set's flag, then the tokens
static int
s_set_write (af_friends_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, af_set_t set, uint8_t flag,
             const af_token_t *tokens, size_t count)
{
    size_t skip = set == AF_SET_REFUSED? 1: 0;
    if (count == 0 && !flag) {
        int rc = af_store_del (txn, self->contacts, key, keylen);
        return af_store_code (rc == MDB_NOTFOUND? 0: rc);
    }
    uint8_t *value = (uint8_t *) malloc (skip + count * TOKEN + 1);
    assert (value);
    if (skip)
        value [0] = flag;
    if (count)
        memcpy (value + skip, tokens, count * TOKEN);
    int rc = af_store_put (txn, self->contacts, key, keylen, value, skip + count * TOKEN, 0);
    free (value);
    return af_store_code (rc);
}

//  The refused set's flag (0 for the other sets)
static int
s_flag (af_friends_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen, af_set_t set, uint8_t *flag)
{
    *flag = 0;
    if (set != AF_SET_REFUSED)
        return AF_OK;
    MDB_val value;
    int rc = af_store_get (txn, self->contacts, key, keylen, &value);
    if (rc == 0 && value.mv_size >= 1)
        *flag = *(const uint8_t *) value.mv_data;
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: af_store_code (rc);
}

int
af_friends_set_put (af_friends_t *self, MDB_txn *txn, const char *account, af_set_t set, bool replace,
                    const af_token_t *tokens, size_t count, size_t max, size_t *total)
{
    assert (self);
    uint8_t key [KEY_MAX], tail = (uint8_t) set, flag;
    size_t keylen = s_key (key, account, &tail, 1);
    if (!keylen)
        return AF_E_MALFORMED;
    const af_token_t *old = NULL;
    size_t old_count = 0;
    int code = replace? AF_OK: af_friends_set_get (self, txn, account, set, &old, &old_count);
    if (code == AF_OK)
        code = s_flag (self, txn, key, keylen, set, &flag);
    if (code != AF_OK)
        return code;
    af_token_t *merged = (af_token_t *) malloc ((old_count + count + 1) * TOKEN);
    assert (merged);
    if (old_count)
        memcpy (merged, old, old_count * TOKEN);
    if (count)
        memcpy (merged + old_count, tokens, count * TOKEN);
    size_t n = af_tokens_sort (merged, old_count + count);
    if (n > max)
        code = AF_E_QUOTA;
    else
        code = s_set_write (self, txn, key, keylen, set, flag, merged, n);
    free (merged);
    if (total)
        *total = code == AF_OK? n: old_count;
    return code;
}

int
af_friends_set_remove (af_friends_t *self, MDB_txn *txn, const char *account, af_set_t set, const uint8_t *token)
{
    assert (self);
    uint8_t key [KEY_MAX], tail = (uint8_t) set, flag;
    size_t keylen = s_key (key, account, &tail, 1);
    const af_token_t *old;
    size_t count;
    int code = keylen? af_friends_set_get (self, txn, account, set, &old, &count): AF_E_MALFORMED;
    if (code == AF_OK)
        code = s_flag (self, txn, key, keylen, set, &flag);
    if (code != AF_OK || !af_tokens_has (old, count, token))
        return code;
    af_token_t *kept = (af_token_t *) malloc (count * TOKEN);
    assert (kept);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (memcmp (old [i], token, TOKEN))
            memcpy (kept [n++], old [i], TOKEN);
    code = s_set_write (self, txn, key, keylen, set, flag, kept, n);
    free (kept);
    return code;
}

int
af_friends_refuse_all (af_friends_t *self, MDB_txn *txn, const char *account, bool *all)
{
    assert (self && all);
    uint8_t key [KEY_MAX], tail = AF_SET_REFUSED, flag = 0;
    size_t keylen = s_key (key, account, &tail, 1);
    int code = keylen? s_flag (self, txn, key, keylen, AF_SET_REFUSED, &flag): AF_E_MALFORMED;
    *all = flag != 0;
    return code;
}

int
af_friends_refuse_all_set (af_friends_t *self, MDB_txn *txn, const char *account, bool all)
{
    assert (self);
    uint8_t key [KEY_MAX], tail = AF_SET_REFUSED;
    size_t keylen = s_key (key, account, &tail, 1);
    const af_token_t *tokens;
    size_t count;
    int code = keylen? af_friends_set_get (self, txn, account, AF_SET_REFUSED, &tokens, &count): AF_E_MALFORMED;
    if (code != AF_OK)
        return code;
    //  The value is read in place: copy it before writing over it
    af_token_t *copy = (af_token_t *) malloc (count * TOKEN + 1);
    assert (copy);
    if (count)
        memcpy (copy, tokens, count * TOKEN);
    code = s_set_write (self, txn, key, keylen, AF_SET_REFUSED, all? 1: 0, copy, count);
    free (copy);
    return code;
}

//  --------------------------------------------------------------------------
//  Questions about two accounts

int
af_friends_common (af_friends_t *self, MDB_txn *txn, const char *a, const char *b, size_t stop, size_t *common)
{
    assert (self && common);
    *common = 0;
    const af_token_t *ta, *tb;
    size_t na, nb;
    int code = af_friends_set_get (self, txn, a, AF_SET_BOOK, &ta, &na);
    if (code == AF_OK)
        code = af_friends_set_get (self, txn, b, AF_SET_BOOK, &tb, &nb);
    if (code == AF_OK)
        *common = af_tokens_common (ta, na, tb, nb, stop);
    return code;
}

//  Does account a block one of b's own numbers?
static int
s_blocks (af_friends_t *self, MDB_txn *txn, const char *a, const char *b, bool *blocked)
{
    const af_token_t *blocks, *own;
    size_t nblocks, nown;
    int code = af_friends_set_get (self, txn, a, AF_SET_BLOCKED, &blocks, &nblocks);
    if (code == AF_OK && nblocks)
        code = af_friends_set_get (self, txn, b, AF_SET_OWN, &own, &nown);
    else
        nown = 0;
    *blocked = code == AF_OK && nown && af_tokens_common (blocks, nblocks, own, nown, 1) > 0;
    return code;
}

int
af_friends_blocked (af_friends_t *self, MDB_txn *txn, const char *a, const char *b, bool *blocked)
{
    assert (self && blocked);
    int code = s_blocks (self, txn, a, b, blocked);
    if (code == AF_OK && !*blocked)
        code = s_blocks (self, txn, b, a, blocked);
    return code;
}

//  --------------------------------------------------------------------------
//  The directory of own numbers

void
af_friends_dir_bucket (const uint8_t *token, char bucket [10])
{
    bucket [0] = '~';
    sodium_bin2hex (bucket + 1, 9, token, 4);
}

static size_t
s_dir_key (uint8_t *key, const uint8_t *token, const char *account)
{
    char bucket [10];
    af_friends_dir_bucket (token, bucket);
    memcpy (key, bucket, BUCKET_LEN);
    key [BUCKET_LEN] = 0;
    memcpy (key + BUCKET_LEN + 1, token, TOKEN);
    size_t len = account? strlen (account): 0;
    if (len)
        memcpy (key + BUCKET_LEN + 1 + TOKEN, account, len);
    return BUCKET_LEN + 1 + TOKEN + len;
}

int
af_friends_dir_set (af_friends_t *self, MDB_txn *txn, const uint8_t *token, const char *account, bool on)
{
    assert (self);
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return AF_E_MALFORMED;
    uint8_t key [DIR_KEY_MAX];
    size_t keylen = s_dir_key (key, token, account);
    int rc = on? af_store_put (txn, self->dir, key, keylen, "", 0, 0): af_store_del (txn, self->dir, key, keylen);
    return af_store_code (rc == MDB_NOTFOUND? 0: rc);
}

int
af_friends_dir_find (af_friends_t *self, MDB_txn *txn, const uint8_t *token,
                     char accounts [][AF_MAX_ACCOUNT + 1], size_t max, size_t *count)
{
    assert (self && count);
    *count = 0;
    uint8_t prefix [DIR_KEY_MAX];
    size_t plen = s_dir_key (prefix, token, NULL);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->dir, &cursor);
    if (rc) {
        zsys_error ("friends: cannot read the directory: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    MDB_val key = { plen, prefix }, value;
    for (rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE); rc == 0 && *count < max;
         rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
        if (key.mv_size <= plen || memcmp (key.mv_data, prefix, plen))
            break;
        size_t len = key.mv_size - plen;
        if (len > AF_MAX_ACCOUNT)
            continue;
        memcpy (accounts [*count], (const uint8_t *) key.mv_data + plen, len);
        accounts [(*count)++][len] = 0;
    }
    mdb_cursor_close (cursor);
    if (rc && rc != MDB_NOTFOUND) {
        zsys_error ("friends: cannot read the directory: %s", mdb_strerror (rc));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Visibility

int
af_friends_share_get (af_friends_t *self, MDB_txn *txn, const char *account, const char *program,
                      af_share_t *share)
{
    assert (self && share);
    *share = AF_SHARE_PRIVATE;
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, program, strlen (program));
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_val value;
    int rc = af_store_get (txn, self->shares, key, keylen, &value);
    if (rc == 0 && value.mv_size == 1 && *(const uint8_t *) value.mv_data <= AF_SHARE_PUBLIC)
        *share = (af_share_t) *(const uint8_t *) value.mv_data;
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: af_store_code (rc);
}

int
af_friends_share_set (af_friends_t *self, MDB_txn *txn, const char *account, const char *program,
                      af_share_t share)
{
    assert (self);
    uint8_t key [KEY_MAX], byte = (uint8_t) share;
    size_t keylen = s_key (key, account, program, strlen (program));
    if (!keylen || share > AF_SHARE_PUBLIC)
        return AF_E_MALFORMED;
    int rc = share == AF_SHARE_PRIVATE? af_store_del (txn, self->shares, key, keylen):
             af_store_put (txn, self->shares, key, keylen, &byte, 1, 0);
    return af_store_code (rc == MDB_NOTFOUND? 0: rc);
}

int
af_friends_shares (af_friends_t *self, MDB_txn *txn, const char *account, af_share_fn *fn, void *arg)
{
    assert (self && fn);
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, "", 0);
    if (!plen)
        return AF_E_MALFORMED;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->shares, &cursor);
    if (rc)
        return af_store_code (rc);
    MDB_val key = { plen, prefix }, value;
    for (rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
        if (key.mv_size <= plen || memcmp (key.mv_data, prefix, plen))
            break;
        char program [AF_MAX_PROGRAM + 1];
        size_t len = key.mv_size - plen;
        if (len > AF_MAX_PROGRAM || value.mv_size != 1 || *(const uint8_t *) value.mv_data > AF_SHARE_PUBLIC)
            continue;
        memcpy (program, (const uint8_t *) key.mv_data + plen, len);
        program [len] = 0;
        if (fn (program, (af_share_t) *(const uint8_t *) value.mv_data, arg))
            break;
    }
    mdb_cursor_close (cursor);
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: af_store_code (rc);
}

//  --------------------------------------------------------------------------
//  The evaluation allowance

int
af_friends_eval_charge (af_friends_t *self, MDB_txn *txn, const char *account, uint64_t count,
                        uint64_t limit, uint64_t window_ms, uint64_t now, uint64_t *used, uint64_t *free_at)
{
    assert (self && used && free_at);
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return AF_E_MALFORMED;
    uint64_t counted = 0, since = now;
    MDB_val value;
    int rc = af_store_get (txn, self->evals, account, len, &value);
    if (rc && rc != MDB_NOTFOUND)
        return af_store_code (rc);
    if (rc == 0 && value.mv_size == EVAL_SIZE) {
        memcpy (&counted, value.mv_data, 8);
        memcpy (&since, (const uint8_t *) value.mv_data + 8, 8);
        if (now >= since + window_ms || since > now) {
            counted = 0;                //  the window ended (or the clock went back)
            since = now;
        }
    }
    *used = counted;
    *free_at = since + window_ms;
    if (counted + count > limit)
        return AF_E_EVAL_LIMIT;
    counted += count;
    uint8_t record [EVAL_SIZE];
    memcpy (record, &counted, 8);
    memcpy (record + 8, &since, 8);
    *used = counted;
    return af_store_code (af_store_put (txn, self->evals, account, len, record, sizeof record, 0));
}

//  --------------------------------------------------------------------------
//  Intents of writes between brokers (FORWARD recommend, notice, record)

#define INTENT_APPLIED  'i'
#define INTENT_PENDING  AF_XINTENT_RECOMMEND
#define INTENT_NOTICE   AF_XINTENT_NOTICE
#define INTENT_RECORD   AF_XINTENT_RECORD
#define INTENT_ANSWERED 'a'
#define INTENT_KEY_MAX  (AF_MAX_ACCOUNT + 2 + AF_ID_SIZE)

static size_t
s_intent_key (uint8_t *key, const char *account, char kind, const uint8_t *id)
{
    uint8_t tail [1 + AF_ID_SIZE];
    tail [0] = (uint8_t) kind;
    if (id)
        memcpy (tail + 1, id, AF_ID_SIZE);
    return s_key (key, account, tail, id? sizeof tail: 1);
}

int
af_friends_intent_applied (af_friends_t *self, MDB_txn *txn, const char *to, const uint8_t *id, bool *seen,
                           bool *refused)
{
    assert (self);
    *seen = *refused = false;
    uint8_t key [INTENT_KEY_MAX];
    size_t keylen = s_intent_key (key, to, INTENT_APPLIED, id);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_val value;
    int rc = af_store_get (txn, self->intents, key, keylen, &value);
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    if (rc)
        return af_store_code (rc);
    if (value.mv_size != 9)
        return AF_E_MALFORMED;
    *seen = true;
    *refused = ((const uint8_t *) value.mv_data) [8] != 0;
    return AF_OK;
}

int
af_friends_intent_apply (af_friends_t *self, MDB_txn *txn, const char *to, const uint8_t *id, bool refused,
                         uint64_t now)
{
    assert (self);
    uint8_t key [INTENT_KEY_MAX], prefix [INTENT_KEY_MAX];
    size_t keylen = s_intent_key (key, to, INTENT_APPLIED, id);
    size_t plen = s_intent_key (prefix, to, INTENT_APPLIED, NULL);
    if (!keylen || !plen)
        return AF_E_MALFORMED;
    //  Forget the account's intents older than AF_INTENT_KEEP_MS: an asker
    //  resends within minutes, so what is older cannot come again
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->intents, &cursor);
    if (rc)
        return af_store_code (rc);
    MDB_val k = { plen, prefix }, value;
    for (rc = mdb_cursor_get (cursor, &k, &value, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get (cursor, &k, &value, MDB_NEXT)) {
        if (k.mv_size != keylen || memcmp (k.mv_data, prefix, plen))
            break;
        uint64_t at = 0;
        if (value.mv_size == 9)
            memcpy (&at, value.mv_data, 8);
        if (at + AF_INTENT_KEEP_MS < now && (rc = af_store_cursor_del (cursor)) != 0)
            break;
    }
    mdb_cursor_close (cursor);
    if (rc && rc != MDB_NOTFOUND)
        return af_store_code (rc);
    uint8_t record [9];
    memcpy (record, &now, 8);
    record [8] = refused;
    return af_store_code (af_store_put (txn, self->intents, key, keylen, record, sizeof record, 0));
}

int
af_friends_intent_pending_put (af_friends_t *self, MDB_txn *txn, const char *from, af_xintent_kind_t kind,
                               const uint8_t *id, const char *to, const char *program, uint64_t now,
                               const void *payload, size_t size)
{
    assert (self);
    uint8_t key [INTENT_KEY_MAX];
    size_t keylen = s_intent_key (key, from, (char) kind, id), tolen = strlen (to), plen = strlen (program);
    if ((kind != INTENT_PENDING && kind != INTENT_NOTICE && kind != INTENT_RECORD) || !keylen || tolen == 0 || tolen > AF_MAX_ACCOUNT || plen > AF_MAX_PROGRAM || size > AF_MAX_ITEM)
        return AF_E_MALFORMED;
    size_t total = 8 + tolen + 1 + plen + 1 + size;
    uint8_t *value = (uint8_t *) malloc (total);
    assert (value);
    memcpy (value, &now, 8);
    memcpy (value + 8, to, tolen + 1);
    memcpy (value + 8 + tolen + 1, program, plen + 1);
    if (size)
        memcpy (value + 8 + tolen + 1 + plen + 1, payload, size);
    //  The first record of an ID stands (a notice asked for again under
    //  the same key while the first is unresolved: the first is told)
    int rc = af_store_put (txn, self->intents, key, keylen, value, total, MDB_NOOVERWRITE);
    free (value);
    return af_store_code (rc == MDB_KEYEXIST? 0: rc);
}

int
af_friends_intent_pending_del (af_friends_t *self, MDB_txn *txn, const char *from, const uint8_t *id)
{
    assert (self);
    uint8_t key [INTENT_KEY_MAX];
    int rc = 0;
    const char kinds [] = { INTENT_PENDING, INTENT_ANSWERED, INTENT_NOTICE, INTENT_RECORD };
    for (size_t i = 0; i < sizeof kinds && (rc == 0 || rc == MDB_NOTFOUND); i++) {
        size_t keylen = s_intent_key (key, from, kinds [i], id);
        if (!keylen)
            return AF_E_MALFORMED;
        rc = af_store_del (txn, self->intents, key, keylen);
    }
    return af_store_code (rc == MDB_NOTFOUND? 0: rc);
}

int
af_friends_intent_answered (af_friends_t *self, MDB_txn *txn, const char *from, const uint8_t *id, int code,
                            bool refused, uint64_t now)
{
    assert (self);
    uint8_t key [INTENT_KEY_MAX];
    size_t keylen = s_intent_key (key, from, INTENT_PENDING, id);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_val value;
    int rc = af_store_get (txn, self->intents, key, keylen, &value);
    if (rc == MDB_NOTFOUND)
        return AF_OK;                   //  resolved meanwhile (the node's retry was answered)
    if (rc)
        return af_store_code (rc);
    //  The pending value's to and program, then the outcome instead of the payload
    const uint8_t *v = (const uint8_t *) value.mv_data, *end = v + value.mv_size;
    const uint8_t *tonul = value.mv_size > 8? (const uint8_t *) memchr (v + 8, 0, value.mv_size - 8): NULL;
    const uint8_t *prognul = tonul? (const uint8_t *) memchr (tonul + 1, 0, (size_t) (end - tonul - 1)): NULL;
    if (!prognul)
        return AF_E_MALFORMED;
    size_t names = (size_t) (prognul + 1 - (v + 8));
    uint8_t record [8 + AF_MAX_ACCOUNT + 1 + AF_MAX_PROGRAM + 1 + 5];
    if (names > sizeof record - 13)
        return AF_E_MALFORMED;
    memcpy (record, &now, 8);
    memcpy (record + 8, v + 8, names);
    uint32_t code32 = (uint32_t) code;
    memcpy (record + 8 + names, &code32, 4);
    record [8 + names + 4] = refused;
    rc = af_store_del (txn, self->intents, key, keylen);
    size_t alen = s_intent_key (key, from, INTENT_ANSWERED, id);
    if (rc == 0)
        rc = af_store_put (txn, self->intents, key, alen, record, 8 + names + 5, 0);
    return af_store_code (rc);
}

//  One pending or answered record parsed: false if it is neither
static bool
s_pending_parse (MDB_val *key, MDB_val *value, af_xintent_t *intent)
{
    const uint8_t *k = (const uint8_t *) key->mv_data, *v = (const uint8_t *) value->mv_data;
    const uint8_t *nul = (const uint8_t *) memchr (k, 0, key->mv_size);
    if (!nul || nul == k || (size_t) (nul - k) > AF_MAX_ACCOUNT
    ||  key->mv_size != (size_t) (nul - k) + 2 + AF_ID_SIZE || value->mv_size < 10
    ||  (nul [1] != INTENT_PENDING && nul [1] != INTENT_ANSWERED && nul [1] != INTENT_NOTICE
         && nul [1] != INTENT_RECORD))
        return false;
    const uint8_t *to = v + 8, *end = v + value->mv_size;
    const uint8_t *tonul = (const uint8_t *) memchr (to, 0, (size_t) (end - to));
    const uint8_t *prog = tonul? tonul + 1: NULL;
    const uint8_t *prognul = prog && prog < end? (const uint8_t *) memchr (prog, 0, (size_t) (end - prog)): NULL;
    if (!tonul || tonul == to || (size_t) (tonul - to) > AF_MAX_ACCOUNT
    ||  !prognul || (size_t) (prognul - prog) > AF_MAX_PROGRAM)
        return false;
    memset (intent, 0, sizeof *intent);
    memcpy (intent->from, k, (size_t) (nul - k));
    intent->from [nul - k] = 0;
    intent->kind = nul [1] == INTENT_ANSWERED? AF_XINTENT_RECOMMEND: (af_xintent_kind_t) nul [1];
    memcpy (intent->id, nul + 2, AF_ID_SIZE);
    memcpy (&intent->at, v, 8);
    memcpy (intent->to, to, (size_t) (tonul - to) + 1);
    memcpy (intent->program, prog, (size_t) (prognul - prog) + 1);
    if (nul [1] == INTENT_ANSWERED) {
        if (end - (prognul + 1) != 5)
            return false;
        uint32_t code;
        memcpy (&code, prognul + 1, 4);
        intent->answered = true;
        intent->code = (int) code;
        intent->refused = prognul [5] != 0;
        return true;
    }
    intent->payload = prognul + 1;
    intent->size = (size_t) (end - (prognul + 1));
    return true;
}

int
af_friends_intent_pending_each (af_friends_t *self, MDB_txn *txn, const char *from, af_xintent_fn *fn, void *arg)
{
    assert (self && fn);
    //  Both kinds of account from: its name and 0x00 (the kind byte not in the prefix)
    uint8_t prefix [INTENT_KEY_MAX];
    size_t plen = from? s_intent_key (prefix, from, INTENT_PENDING, NULL): 0;
    if (from && !plen)
        return AF_E_MALFORMED;
    if (from)
        plen--;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->intents, &cursor);
    if (rc)
        return af_store_code (rc);
    MDB_val key = { plen, prefix }, value;
    for (rc = mdb_cursor_get (cursor, &key, &value, from? MDB_SET_RANGE: MDB_FIRST); rc == 0;
         rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
        if (from && (key.mv_size < plen || memcmp (key.mv_data, prefix, plen)))
            break;
        af_xintent_t intent;
        if (s_pending_parse (&key, &value, &intent) && fn (&intent, arg))
            break;
    }
    mdb_cursor_close (cursor);
    return rc && rc != MDB_NOTFOUND? af_store_code (rc): AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_token (af_token_t token, int n)
{
    memset (token, 0, TOKEN);
    crypto_generichash (token, TOKEN, (const uint8_t *) &n, sizeof n, NULL, 0);
}

static int
s_test_share (const char *program, af_share_t share, void *arg)
{
    char *seen = (char *) arg;
    snprintf (seen + strlen (seen), 64, "%s=%s;", program, af_share_name (share));
    return 0;
}

static void
s_test_sets (af_friends_t *self, MDB_txn *txn)
{
    af_token_t book [5];
    for (int i = 0; i < 5; i++)
        s_test_token (book [i], i);
    size_t total;
    //  ana knows 0..3 twice over (kept once); bob knows 2..4; cy knows 4
    af_token_t twice [8];
    memcpy (twice, book, 4 * TOKEN);
    memcpy (twice + 4, book, 4 * TOKEN);
    assert (af_friends_set_put (self, txn, "ana", AF_SET_BOOK, true, twice, 8, 100, &total) == AF_OK && total == 4);
    assert (af_friends_set_put (self, txn, "bob", AF_SET_BOOK, true, book + 2, 3, 100, &total) == AF_OK);
    assert (af_friends_set_put (self, txn, "cy", AF_SET_BOOK, true, book + 4, 1, 100, &total) == AF_OK);
    size_t common;
    assert (af_friends_common (self, txn, "ana", "bob", 0, &common) == AF_OK && common == 2);
    assert (af_friends_common (self, txn, "ana", "bob", 1, &common) == AF_OK && common == 1);
    assert (af_friends_common (self, txn, "ana", "cy", 0, &common) == AF_OK && common == 0);
    assert (af_friends_common (self, txn, "ana", "nobody", 0, &common) == AF_OK && common == 0);
    //  Adding passes the limit: refused, nothing written
    assert (af_friends_set_put (self, txn, "cy", AF_SET_BOOK, false, book, 3, 3, &total) == AF_E_QUOTA);
    assert (af_friends_set_put (self, txn, "cy", AF_SET_BOOK, false, book, 2, 3, &total) == AF_OK && total == 3);
    const af_token_t *tokens;
    size_t count;
    assert (af_friends_set_get (self, txn, "cy", AF_SET_BOOK, &tokens, &count) == AF_OK && count == 3);
    assert (af_tokens_has (tokens, count, book [4]) && !af_tokens_has (tokens, count, book [3]));
    assert (af_friends_set_remove (self, txn, "cy", AF_SET_BOOK, book [4]) == AF_OK);
    assert (af_friends_set_get (self, txn, "cy", AF_SET_BOOK, &tokens, &count) == AF_OK && count == 2);
    //  Blocks: ana blocks bob's own number, which blocks both ways
    bool blocked;
    assert (af_friends_blocked (self, txn, "ana", "bob", &blocked) == AF_OK && !blocked);
    assert (af_friends_set_put (self, txn, "bob", AF_SET_OWN, true, book + 4, 1, 4, NULL) == AF_OK);
    assert (af_friends_set_put (self, txn, "ana", AF_SET_BLOCKED, false, book + 4, 1, 10, NULL) == AF_OK);
    assert (af_friends_blocked (self, txn, "ana", "bob", &blocked) == AF_OK && blocked);
    assert (af_friends_blocked (self, txn, "bob", "ana", &blocked) == AF_OK && blocked);
    assert (af_friends_set_remove (self, txn, "ana", AF_SET_BLOCKED, book [4]) == AF_OK);
    assert (af_friends_blocked (self, txn, "bob", "ana", &blocked) == AF_OK && !blocked);
    //  Refusals: the flag and the set live in one value, apart
    bool all;
    assert (af_friends_set_put (self, txn, "ana", AF_SET_REFUSED, false, book, 1, 10, NULL) == AF_OK);
    assert (af_friends_refuse_all (self, txn, "ana", &all) == AF_OK && !all);
    assert (af_friends_refuse_all_set (self, txn, "ana", true) == AF_OK);
    assert (af_friends_refuse_all (self, txn, "ana", &all) == AF_OK && all);
    assert (af_friends_set_get (self, txn, "ana", AF_SET_REFUSED, &tokens, &count) == AF_OK && count == 1);
    assert (af_friends_set_remove (self, txn, "ana", AF_SET_REFUSED, book [0]) == AF_OK);
    assert (af_friends_refuse_all (self, txn, "ana", &all) == AF_OK && all);
    assert (af_friends_refuse_all_set (self, txn, "ana", false) == AF_OK);
    assert (af_friends_refuse_all (self, txn, "ana", &all) == AF_OK && !all);
    assert (af_friends_set_put (self, txn, "", AF_SET_BOOK, true, book, 1, 10, NULL) == AF_E_MALFORMED);
}

static void
s_test_rest (af_friends_t *self, MDB_txn *txn)
{
    af_token_t token, other;
    s_test_token (token, 7);
    s_test_token (other, 8);
    char accounts [4][AF_MAX_ACCOUNT + 1];
    size_t count;
    assert (af_friends_dir_set (self, txn, token, "bob", true) == AF_OK);
    assert (af_friends_dir_set (self, txn, token, "bo", true) == AF_OK);
    assert (af_friends_dir_find (self, txn, token, accounts, 4, &count) == AF_OK && count == 2);
    assert (streq (accounts [0], "bo") && streq (accounts [1], "bob"));
    assert (af_friends_dir_find (self, txn, other, accounts, 4, &count) == AF_OK && count == 0);
    assert (af_friends_dir_set (self, txn, token, "bo", false) == AF_OK);
    assert (af_friends_dir_set (self, txn, token, "bo", false) == AF_OK);
    assert (af_friends_dir_find (self, txn, token, accounts, 4, &count) == AF_OK && count == 1);
    char bucket [10];
    af_friends_dir_bucket (token, bucket);
    assert (bucket [0] == '~' && strlen (bucket) == 9);
    //  Visibility: private by default, private removes
    af_share_t share;
    assert (af_friends_share_get (self, txn, "ana", "maps", &share) == AF_OK && share == AF_SHARE_PRIVATE);
    assert (af_friends_share_set (self, txn, "ana", "maps", AF_SHARE_FRIENDS) == AF_OK);
    assert (af_friends_share_set (self, txn, "ana", "chess", AF_SHARE_PUBLIC) == AF_OK);
    assert (af_friends_share_set (self, txn, "ana", "notes", AF_SHARE_PUBLIC) == AF_OK);
    assert (af_friends_share_set (self, txn, "ana", "notes", AF_SHARE_PRIVATE) == AF_OK);
    assert (af_friends_share_set (self, txn, "anab", "zzz", AF_SHARE_PUBLIC) == AF_OK);
    assert (af_friends_share_get (self, txn, "ana", "maps", &share) == AF_OK && share == AF_SHARE_FRIENDS);
    char seen [256] = "";
    assert (af_friends_shares (self, txn, "ana", s_test_share, seen) == AF_OK);
    assert (streq (seen, "chess=public;maps=friends;"));
    assert (af_share_parse ("friends", &share) == AF_OK && share == AF_SHARE_FRIENDS);
    assert (af_share_parse ("everyone", &share) == AF_E_MALFORMED);
    //  The allowance: 10 per 1000 ms
    uint64_t used, free_at;
    assert (af_friends_eval_charge (self, txn, "ana", 6, 10, 1000, 5000, &used, &free_at) == AF_OK && used == 6);
    assert (af_friends_eval_charge (self, txn, "ana", 5, 10, 1000, 5500, &used, &free_at) == AF_E_EVAL_LIMIT);
    assert (used == 6 && free_at == 6000);
    assert (af_friends_eval_charge (self, txn, "ana", 4, 10, 1000, 5600, &used, &free_at) == AF_OK && used == 10);
    assert (af_friends_eval_charge (self, txn, "ana", 1, 10, 1000, 5900, &used, &free_at) == AF_E_EVAL_LIMIT);
    assert (af_friends_eval_charge (self, txn, "ana", 10, 10, 1000, 6000, &used, &free_at) == AF_OK && used == 10);
    assert (af_friends_eval_charge (self, txn, "bob", 11, 10, 1000, 6000, &used, &free_at) == AF_E_EVAL_LIMIT);
}

static int
s_test_pending (const af_xintent_t *intent, void *arg)
{
    int *seen = (int *) arg;
    assert (streq (intent->from, "ana") && streq (intent->to, "bob") && streq (intent->program, "chess"));
    if (intent->answered)
        assert (intent->code == 470 && intent->refused && intent->at == 9 && !intent->payload && !intent->size);
    else
        assert (intent->size == 4 && memcmp (intent->payload, "note", 4) == 0 && intent->at == 5);
    assert (intent->id [0] == 7);
    (*seen)++;
    return 0;
}

//  A notice or an install record: arg is the kind expected, then the count
static int
s_test_notice (const af_xintent_t *intent, void *arg)
{
    int *seen = (int *) arg;
    assert (intent->kind == (af_xintent_kind_t) seen [0] && !intent->answered && intent->at == 5);
    assert (intent->size == 4 && memcmp (intent->payload, "note", 4) == 0);
    seen [1]++;
    return 0;
}

static void
s_test_intents (af_friends_t *self, MDB_txn *txn)
{
    uint8_t id [AF_ID_SIZE] = { 7 }, other [AF_ID_SIZE] = { 8 };
    bool seen, refused;
    assert (af_friends_intent_applied (self, txn, "bob", id, &seen, &refused) == AF_OK && !seen);
    assert (af_friends_intent_apply (self, txn, "bob", id, true, 1000) == AF_OK);
    assert (af_friends_intent_applied (self, txn, "bob", id, &seen, &refused) == AF_OK && seen && refused);
    //  An hour later another: the first is forgotten, the second kept
    assert (af_friends_intent_apply (self, txn, "bob", other, false, 1000 + AF_INTENT_KEEP_MS + 1) == AF_OK);
    assert (af_friends_intent_applied (self, txn, "bob", id, &seen, &refused) == AF_OK && !seen);
    assert (af_friends_intent_applied (self, txn, "bob", other, &seen, &refused) == AF_OK && seen && !refused);
    //  Pending intents of an asker: listed with their payload, then gone
    assert (af_friends_intent_pending_put (self, txn, "ana", AF_XINTENT_RECOMMEND, id, "bob", "chess", 5, "note", 4) == AF_OK);
    int count = 0;
    assert (af_friends_intent_pending_each (self, txn, NULL, s_test_pending, &count) == AF_OK && count == 1);
    count = 0;
    assert (af_friends_intent_pending_each (self, txn, "ana", s_test_pending, &count) == AF_OK && count == 1);
    count = 0;
    assert (af_friends_intent_pending_each (self, txn, "an", s_test_pending, &count) == AF_OK && count == 0);
    //  Answered by a resend: kept with its outcome (no payload) for the node's retry
    assert (af_friends_intent_answered (self, txn, "ana", id, 470, true, 9) == AF_OK);
    count = 0;
    assert (af_friends_intent_pending_each (self, txn, "ana", s_test_pending, &count) == AF_OK && count == 1);
    assert (af_friends_intent_answered (self, txn, "ana", other, 0, false, 9) == AF_OK);     //  none: nothing
    assert (af_friends_intent_pending_del (self, txn, "ana", id) == AF_OK);
    assert (af_friends_intent_pending_del (self, txn, "ana", id) == AF_OK);
    count = 0;
    assert (af_friends_intent_pending_each (self, txn, NULL, s_test_pending, &count) == AF_OK && count == 0);
    assert (af_friends_intent_pending_put (self, txn, "", AF_XINTENT_RECOMMEND, id, "bob", "chess", 5, "note", 4) == AF_E_MALFORMED);
    assert (af_friends_intent_pending_put (self, txn, "ana", (af_xintent_kind_t) 'x', id, "bob", "chess", 5, "note", 4)
            == AF_E_MALFORMED);
    //  A notice, and an install record: listed with their kind; the first
    //  record of an ID stands
    const af_xintent_kind_t kinds [] = { AF_XINTENT_NOTICE, AF_XINTENT_RECORD };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds [0]; i++) {
        assert (af_friends_intent_pending_put (self, txn, "ana", kinds [i], id, "bob", "chess", 5, "note", 4) == AF_OK);
        assert (af_friends_intent_pending_put (self, txn, "ana", kinds [i], id, "bob", "chess", 6, "late", 4) == AF_OK);
        int seen [2] = { (int) kinds [i], 0 };
        assert (af_friends_intent_pending_each (self, txn, "ana", s_test_notice, seen) == AF_OK && seen [1] == 1);
        assert (af_friends_intent_pending_del (self, txn, "ana", id) == AF_OK);
        seen [1] = 0;
        assert (af_friends_intent_pending_each (self, txn, NULL, s_test_notice, seen) == AF_OK && seen [1] == 0);
    }
}

void
af_friends_test (bool verbose)
{
    if (verbose)
        printf (" * af_friends: ");
    char dir [] = "/tmp/af_friends_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    assert (store);
    af_friends_t *self = af_friends_new (store);
    assert (self);
    MDB_txn *txn = NULL;
    assert (af_store_begin (store, true, &txn) == 0);
    s_test_sets (self, txn);
    s_test_rest (self, txn);
    s_test_intents (self, txn);
    assert (af_store_commit (store, &txn) == 0);
    //  Committed: still there when read again
    assert (af_store_begin (store, false, &txn) == 0);
    size_t common;
    assert (af_friends_common (self, txn, "ana", "bob", 0, &common) == AF_OK && common == 2);
    af_store_abort (store, &txn);
    af_friends_destroy (&self);
    af_store_destroy (&store);
    char command [300];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (system (command) != 0)
        zsys_warning ("af_friends test: could not remove %s", dir);
    if (verbose)
        printf ("OK\n");
}
