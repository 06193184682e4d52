/*  =========================================================================
    af_asks - a GET's ask for the source's install record: durable, with a
    deadline

    See af_asks.h for the contract and the key layouts.
    =========================================================================
*/
#include "af_asks.h"
#include "af_shard.h"
#include "af_msg.h"
#include "af_bytes.h"

#include <assert.h>
#include <czmq.h>
#include <sodium.h>

#define DUE_PREFIX      "~asks."
#define DUE_NAME_MAX    24              //  "~asks." and a number

struct _af_asks_t {
    af_store_t *store;                  //  not ours
    af_outbox_t *outbox;                //  not ours
    MDB_dbi asks, due;
    uint32_t shards;
    char (*names) [DUE_NAME_MAX];       //  each shard's due name
    af_asks_queue_fn *queue;            //  where an asker's item goes (NULL: its outbox)
    void *queue_arg;
};

//  --------------------------------------------------------------------------
//  Layouts

//  asks key: account, 0x00, ID; its length, 0 for a bad account
static size_t
s_ask_key (uint8_t *key, const char *account, const uint8_t *id)
{
    size_t len = strnlen (account, AF_MAX_ACCOUNT + 1);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return 0;
    memcpy (key, account, len);
    key [len] = 0;
    memcpy (key + len + 1, id, AF_ID_SIZE);
    return len + 1 + AF_ID_SIZE;
}

//  asks_due key: due name of the ask's shard, 0x00, due (BE), account, 0x00, ID
static size_t
s_due_key (af_asks_t *self, uint8_t *key, const char *account, const uint8_t *id, uint64_t due)
{
    uint32_t shard = af_shard_of (account, strlen (account), self->shards);
    size_t name = strlen (self->names [shard]);
    memcpy (key, self->names [shard], name);
    key [name] = 0;
    af_put_be64 (key + name + 1, due);
    size_t len = s_ask_key (key + name + 9, account, id);
    return len? name + 9 + len: 0;
}

#define ASK_KEY_MAX     (AF_MAX_ACCOUNT + 1 + AF_ID_SIZE)
#define DUE_KEY_MAX     (DUE_NAME_MAX + 9 + ASK_KEY_MAX)
#define ASK_VALUE_MAX   (1 + 8 + 8 + 2 * AF_ID_SIZE + AF_MAX_ACCOUNT + 1 + AF_MAX_PROGRAM + 1)

static size_t
s_ask_value (uint8_t *value, const af_ask_t *ask)
{
    uint8_t *p = value;
    *p++ = (uint8_t) ask->state;
    af_put_le64 (p, ask->deadline);
    p += 8;
    af_put_le64 (p, ask->due);
    p += 8;
    af_id_from_hex (ask->source, p);
    p += AF_ID_SIZE;
    af_id_from_hex (ask->asker, p);
    p += AF_ID_SIZE;
    size_t len = strlen (ask->asker_account) + 1;
    memcpy (p, ask->asker_account, len);
    p += len;
    len = strlen (ask->program) + 1;
    memcpy (p, ask->program, len);
    p += len;
    return (size_t) (p - value);
}

//  A stored value into ask (its account and ID set by the caller); false
//  if it does not parse
static bool
s_ask_parse (const MDB_val *value, af_ask_t *ask)
{
    const uint8_t *p = (const uint8_t *) value->mv_data;
    size_t size = value->mv_size;
    if (size < 1 + 16 + 2 * AF_ID_SIZE + 2 || p [0] > AF_ASK_EXPIRED)
        return false;
    ask->state = (af_ask_state_t) p [0];
    ask->deadline = af_get_le64 (p + 1);
    ask->due = af_get_le64 (p + 9);
    sodium_bin2hex (ask->source, sizeof ask->source, p + 17, AF_ID_SIZE);
    sodium_bin2hex (ask->asker, sizeof ask->asker, p + 17 + AF_ID_SIZE, AF_ID_SIZE);
    const char *text = (const char *) p + 17 + 2 * AF_ID_SIZE;
    size_t rest = size - (17 + 2 * AF_ID_SIZE);
    size_t a = strnlen (text, rest);
    if (a == rest || a > AF_MAX_ACCOUNT)
        return false;
    size_t b = strnlen (text + a + 1, rest - a - 1);
    if (b == rest - a - 1 || b > AF_MAX_PROGRAM)
        return false;
    memcpy (ask->asker_account, text, a + 1);
    memcpy (ask->program, text + a + 1, b + 1);
    return true;
}

//  --------------------------------------------------------------------------

//  Each shard's due name: "~asks.N" for the smallest N in that shard
static void
s_names (af_asks_t *self)
{
    self->names = (char (*) [DUE_NAME_MAX]) calloc (self->shards, DUE_NAME_MAX);
    assert (self->names);
    uint32_t named = 0;
    for (uint32_t n = 0; named < self->shards; n++) {
        char name [DUE_NAME_MAX];
        int len = snprintf (name, sizeof name, DUE_PREFIX "%u", n);
        uint32_t shard = af_shard_of (name, (size_t) len, self->shards);
        if (!*self->names [shard]) {
            memcpy (self->names [shard], name, (size_t) len + 1);
            named++;
        }
    }
}

af_asks_t *
af_asks_new (af_store_t *store, af_outbox_t *outbox, uint32_t shards)
{
    assert (store && outbox);
    af_asks_t *self = (af_asks_t *) zmalloc (sizeof (af_asks_t));
    assert (self);
    self->store = store;
    self->outbox = outbox;
    self->shards = shards? shards: 1;
    s_names (self);
    if (af_store_dbi (store, "asks", 0, &self->asks) || af_store_dbi (store, "asks_due", 0, &self->due))
        af_asks_destroy (&self);
    return self;
}

void
af_asks_destroy (af_asks_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->names);
        free (*self_p);
        *self_p = NULL;
    }
}

void
af_asks_set_queue (af_asks_t *self, af_asks_queue_fn *queue, void *arg)
{
    assert (self);
    self->queue = queue;
    self->queue_arg = arg;
}

//  The asker's item, in the transaction that closes its ask
static int
s_queue (af_asks_t *self, MDB_txn *txn, const af_ask_t *ask, const void *item, size_t size)
{
    if (self->queue)
        return self->queue (txn, ask, item, size, self->queue_arg);
    return af_outbox_put_txn (self->outbox, txn, ask->asker_account, ask->asker, item, size, NULL);
}

static bool
s_ask_valid (const af_ask_t *ask)
{
    uint8_t id [AF_ID_SIZE];
    size_t len = strnlen (ask->asker_account, AF_MAX_ACCOUNT + 1);
    return af_id_from_hex (ask->source, id) == AF_OK && af_id_from_hex (ask->asker, id) == AF_OK
        && len > 0 && len <= AF_MAX_ACCOUNT && af_program_check (ask->program, NULL, 0) == AF_OK;
}

int
af_asks_open (af_asks_t *self, const af_ask_t *ask, bool *opened)
{
    assert (self && ask);
    if (opened)
        *opened = false;
    uint8_t key [ASK_KEY_MAX], dkey [DUE_KEY_MAX], value [ASK_VALUE_MAX];
    size_t klen = s_ask_key (key, ask->account, ask->id);
    if (!klen || !s_ask_valid (ask))
        return AF_E_MALFORMED;
    af_ask_t open = *ask;
    open.state = AF_ASK_OPEN;
    open.due = ask->deadline;
    size_t dlen = s_due_key (self, dkey, ask->account, ask->id, open.due);
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, true, &txn))
        return AF_E_INTERNAL;
    MDB_val seen;
    int rc = af_store_get (txn, self->asks, key, klen, &seen);
    int code = rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
    bool put = code == AF_OK && rc == MDB_NOTFOUND;
    if (put && (af_store_put (txn, self->asks, key, klen, value, s_ask_value (value, &open), 0)
            ||  af_store_put (txn, self->due, dkey, dlen, "", 0, 0)))
        code = AF_E_INTERNAL;
    if (code == AF_OK && put && af_store_commit (self->store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (self->store, &txn);
    if (code == AF_OK && opened)
        *opened = put;
    return code;
}

//  Read an ask in txn: 0, MDB_NOTFOUND, or an error (an unreadable value
//  is logged and counts as not found)
static int
s_read (af_asks_t *self, MDB_txn *txn, const uint8_t *key, size_t klen, af_ask_t *ask)
{
    MDB_val value;
    int rc = af_store_get (txn, self->asks, key, klen, &value);
    if (rc == 0 && !s_ask_parse (&value, ask)) {
        zsys_error ("af_asks: an ask of '%s' does not parse; ignored", (const char *) key);
        rc = MDB_NOTFOUND;
    }
    return rc;
}

int
af_asks_get (af_asks_t *self, const char *account, const uint8_t *id, af_ask_t *ask, bool *found)
{
    assert (self && account && id && ask && found);
    *found = false;
    uint8_t key [ASK_KEY_MAX];
    size_t klen = s_ask_key (key, account, id);
    if (!klen)
        return AF_E_MALFORMED;
    memset (ask, 0, sizeof *ask);
    af_strcopy (ask->account, sizeof ask->account, account);
    memcpy (ask->id, id, AF_ID_SIZE);
    sodium_bin2hex (ask->id_hex, sizeof ask->id_hex, id, AF_ID_SIZE);
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    int rc = s_read (self, txn, key, klen, ask);
    af_store_abort (self->store, &txn);
    *found = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

//  Close an ask in txn: its new state, its due entry moved to its removal
static int
s_close (af_asks_t *self, MDB_txn *txn, af_ask_t *ask, af_ask_state_t state, uint64_t now)
{
    uint8_t key [ASK_KEY_MAX], dkey [DUE_KEY_MAX], value [ASK_VALUE_MAX];
    size_t klen = s_ask_key (key, ask->account, ask->id);
    size_t dlen = s_due_key (self, dkey, ask->account, ask->id, ask->due);
    int rc = af_store_del (txn, self->due, dkey, dlen);
    if (rc && rc != MDB_NOTFOUND)
        return AF_E_INTERNAL;
    ask->state = state;
    ask->due = now + (uint64_t) AF_ASK_KEEP_MS;
    dlen = s_due_key (self, dkey, ask->account, ask->id, ask->due);
    if (af_store_put (txn, self->asks, key, klen, value, s_ask_value (value, ask), 0)
    ||  af_store_put (txn, self->due, dkey, dlen, "", 0, 0))
        return AF_E_INTERNAL;
    return AF_OK;
}

int
af_asks_answer (af_asks_t *self, const char *account, const uint8_t *id, const char *source,
                const char *program, const char *asker, const void *item, size_t size, af_ask_t *ask_out)
{
    assert (self && account && id && source && program && asker && item);
    uint8_t key [ASK_KEY_MAX];
    size_t klen = s_ask_key (key, account, id);
    if (!klen)
        return AF_E_MALFORMED;
    af_ask_t ask;
    memset (&ask, 0, sizeof ask);
    af_strcopy (ask.account, sizeof ask.account, account);
    memcpy (ask.id, id, AF_ID_SIZE);
    sodium_bin2hex (ask.id_hex, sizeof ask.id_hex, id, AF_ID_SIZE);
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, true, &txn))
        return AF_E_INTERNAL;
    int rc = s_read (self, txn, key, klen, &ask);
    int code = rc == 0? AF_OK: rc == MDB_NOTFOUND? AF_E_NO_ASK: AF_E_INTERNAL;
    if (code == AF_OK && (!streq (ask.source, source) || !streq (ask.program, program) || !streq (ask.asker, asker)))
        code = AF_E_NO_ASK;
    if (code == AF_OK && ask.state != AF_ASK_OPEN)
        code = ask.state == AF_ASK_ANSWERED? AF_E_ANSWERED: AF_E_ASK_EXPIRED;
    if (ask_out && code != AF_E_INTERNAL)
        *ask_out = ask;
    if (code == AF_OK)
        code = s_queue (self, txn, &ask, item, size);
    if (code == AF_OK)
        code = s_close (self, txn, &ask, AF_ASK_ANSWERED, (uint64_t) zclock_time ());
    if (code == AF_OK && af_store_commit (self->store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (self->store, &txn);
    return code;
}

int
af_asks_sweep (af_asks_t *self, uint32_t shard, uint64_t now, size_t limit, af_asks_item_fn *make,
               af_asks_told_fn *told, void *arg, size_t *expired_p)
{
    assert (self && make);
    if (expired_p)
        *expired_p = 0;
    if (shard >= self->shards)
        return AF_E_MALFORMED;
    const char *name = self->names [shard];
    size_t name_len = strlen (name);
    uint8_t start [DUE_NAME_MAX + 1];
    memcpy (start, name, name_len + 1);
    //  The due entries first (at most limit), then each handled: a cursor
    //  does not survive the writes made meanwhile
    typedef struct { uint8_t key [DUE_KEY_MAX]; size_t len; } due_t;
    due_t *dues = (due_t *) malloc ((limit? limit: 1) * sizeof (due_t));
    assert (dues);
    size_t count = 0;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, true, &txn)) {
        free (dues);
        return AF_E_INTERNAL;
    }
    MDB_cursor *cursor = NULL;
    int code = mdb_cursor_open (txn, self->due, &cursor)? AF_E_INTERNAL: AF_OK;
    MDB_val k = { name_len + 1, start }, v;
    int rc = code == AF_OK? mdb_cursor_get (cursor, &k, &v, MDB_SET_RANGE): MDB_NOTFOUND;
    while (rc == 0 && count < limit) {
        const uint8_t *p = (const uint8_t *) k.mv_data;
        if (k.mv_size < name_len + 9 + 2 + AF_ID_SIZE || memcmp (p, name, name_len + 1) != 0)
            break;
        if (af_get_be64 (p + name_len + 1) > now)
            break;
        memcpy (dues [count].key, p, k.mv_size);
        dues [count++].len = k.mv_size;
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND)
        code = AF_E_INTERNAL;
    if (cursor)
        mdb_cursor_close (cursor);
    af_ask_t *expired = (af_ask_t *) calloc (count? count: 1, sizeof (af_ask_t));
    assert (expired);
    size_t expired_count = 0;
    for (size_t i = 0; i < count && code == AF_OK; i++) {
        const uint8_t *key = dues [i].key + name_len + 9;
        size_t klen = dues [i].len - name_len - 9;
        af_ask_t ask;
        memset (&ask, 0, sizeof ask);
        af_strcopy (ask.account, sizeof ask.account, (const char *) key);
        memcpy (ask.id, key + klen - AF_ID_SIZE, AF_ID_SIZE);
        sodium_bin2hex (ask.id_hex, sizeof ask.id_hex, ask.id, AF_ID_SIZE);
        rc = s_read (self, txn, key, klen, &ask);
        uint64_t due = af_get_be64 (dues [i].key + name_len + 1);
        bool remove = rc == MDB_NOTFOUND || (rc == 0 && (ask.state != AF_ASK_OPEN || ask.due != due));
        if (rc && rc != MDB_NOTFOUND)
            code = AF_E_INTERNAL;
        else
        if (remove) {
            //  A closed ask's time is up (or an entry without its ask)
            if (rc == 0 && ask.due == due && af_store_del (txn, self->asks, key, klen))
                code = AF_E_INTERNAL;
            rc = af_store_del (txn, self->due, dues [i].key, dues [i].len);
            if (rc && rc != MDB_NOTFOUND)
                code = AF_E_INTERNAL;
        }
        else {
            //  Expired: the asker told in this transaction (a full outbox
            //  or no item: the ask closes anyway, logged, as waiting longer
            //  would not tell it more)
            zframe_t *item = make (&ask, arg);
            int put = item? s_queue (self, txn, &ask, zframe_data (item), zframe_size (item)): AF_E_MALFORMED;
            zframe_destroy (&item);
            if (put == AF_E_INTERNAL)
                code = AF_E_INTERNAL;
            else {
                if (put != AF_OK)
                    zsys_warning ("af_asks: ask %s of '%s' expires; its asker %s could not be told: %s",
                                  ask.id_hex, ask.account, ask.asker, af_code_name (put));
                code = s_close (self, txn, &ask, AF_ASK_EXPIRED, now);
                if (code == AF_OK && put == AF_OK)
                    expired [expired_count++] = ask;
            }
        }
    }
    //  Nothing due: no commit, so an idle tick writes nothing (and costs
    //  the batch no fsync)
    if (code == AF_OK && count > 0 && af_store_commit (self->store, &txn))
        code = AF_E_INTERNAL;
    af_store_abort (self->store, &txn);
    if (code == AF_OK) {
        for (size_t i = 0; told && i < expired_count; i++)
            told (&expired [i], arg);
        if (expired_p)
            *expired_p = expired_count;
    }
    free (expired);
    free (dues);
    return code;
}

int
af_asks_count (af_asks_t *self, size_t *count)
{
    assert (self && count);
    *count = 0;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, false, &txn))
        return AF_E_INTERNAL;
    MDB_stat stat;
    int rc = mdb_stat (txn, self->asks, &stat);
    af_store_abort (self->store, &txn);
    if (rc)
        return AF_E_INTERNAL;
    *count = stat.ms_entries;
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

static zframe_t *
s_test_item (const af_ask_t *ask, void *arg)
{
    (void) arg;
    return zframe_new (ask->program, strlen (ask->program));
}

static void
s_test_told (const af_ask_t *ask, void *arg)
{
    (void) ask;
    (*(int *) arg)++;
}

//  A queue elsewhere: into the outbox of account "far" (as an intent would
//  be written in the ask's transaction), or no room while full is set
typedef struct {
    af_outbox_t *outbox;
    bool full;
    int queued;
} test_queue_t;

static int
s_test_queue (MDB_txn *txn, const af_ask_t *ask, const void *item, size_t size, void *arg)
{
    test_queue_t *queue = (test_queue_t *) arg;
    if (queue->full)
        return AF_E_QUOTA;
    int code = af_outbox_put_txn (queue->outbox, txn, "far", ask->asker, item, size, NULL);
    queue->queued += code == AF_OK;
    return code;
}

void
af_asks_test (bool verbose)
{
    if (verbose)
        printf (" * af_asks: ");
    char dir [] = "/tmp/af_asks_test_XXXXXX";
    assert (mkdtemp (dir));
    const char *tablet = "fedcba9876543210fedcba9876543210";
    const char *phone = "0123456789abcdef0123456789abcdef";
    af_store_t *store = af_store_new (dir, 16 << 20, 16, false);
    assert (store);
    af_outbox_t *outbox = af_outbox_new (store);
    af_asks_t *self = af_asks_new (store, outbox, 1);
    assert (outbox && self);
    uint64_t now = (uint64_t) zclock_time ();
    af_ask_t ask;
    memset (&ask, 0, sizeof ask);
    strcpy (ask.account, "ana");
    randombytes_buf (ask.id, sizeof ask.id);
    strcpy (ask.source, tablet);
    strcpy (ask.asker, phone);
    strcpy (ask.asker_account, "ana");
    strcpy (ask.program, "notes");
    ask.deadline = now + 60000;
    bool opened, found;
    size_t n;
    //  Opened once; the same ID again changes nothing
    assert (af_asks_open (self, &ask, &opened) == AF_OK && opened);
    af_ask_t again = ask;
    again.deadline = now + 1;
    assert (af_asks_open (self, &again, &opened) == AF_OK && !opened);
    af_ask_t read;
    assert (af_asks_get (self, "ana", ask.id, &read, &found) == AF_OK && found);
    assert (read.state == AF_ASK_OPEN && read.deadline == now + 60000 && streq (read.program, "notes")
            && streq (read.asker, phone) && streq (read.source, tablet) && streq (read.asker_account, "ana"));
    //  Refused: wrong source, program or asker; another account
    assert (af_asks_answer (self, "ana", ask.id, phone, "notes", phone, "r", 1, NULL) == AF_E_NO_ASK);
    assert (af_asks_answer (self, "ana", ask.id, tablet, "chess", phone, "r", 1, NULL) == AF_E_NO_ASK);
    assert (af_asks_answer (self, "ana", ask.id, tablet, "notes", tablet, "r", 1, NULL) == AF_E_NO_ASK);
    assert (af_asks_answer (self, "bob", ask.id, tablet, "notes", phone, "r", 1, NULL) == AF_E_NO_ASK);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 0);
    //  Answered once: the asker's item queued with it; then E_ANSWERED
    assert (af_asks_answer (self, "ana", ask.id, tablet, "notes", phone, "rec", 3, NULL) == AF_OK);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 1);
    assert (af_asks_answer (self, "ana", ask.id, tablet, "notes", phone, "rec", 3, NULL) == AF_E_ANSWERED);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 1);
    //  A second ask that expires: its item by the sweep, once; then E_ASK_EXPIRED
    af_ask_t late = ask;
    randombytes_buf (late.id, sizeof late.id);
    late.deadline = now + 1000;
    assert (af_asks_open (self, &late, &opened) == AF_OK && opened);
    int told = 0;
    size_t expired;
    uint64_t writes = af_store_writes (store);
    assert (af_asks_sweep (self, 0, now, 16, s_test_item, s_test_told, &told, &expired) == AF_OK && expired == 0);
    assert (af_store_writes (store) == writes);         //  an idle tick writes nothing
    assert (af_asks_sweep (self, 0, now + 1000, 16, s_test_item, s_test_told, &told, &expired) == AF_OK
            && expired == 1 && told == 1);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 2);
    assert (af_asks_sweep (self, 0, now + 2000, 16, s_test_item, s_test_told, &told, &expired) == AF_OK
            && expired == 0 && told == 1);
    assert (af_asks_answer (self, "ana", late.id, tablet, "notes", phone, "r", 1, NULL) == AF_E_ASK_EXPIRED);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 2);
    //  Bounded: a sweep handles at most limit
    for (int i = 0; i < 5; i++) {
        af_ask_t more = ask;
        randombytes_buf (more.id, sizeof more.id);
        more.deadline = now + 3000 + (uint64_t) i;
        assert (af_asks_open (self, &more, &opened) == AF_OK && opened);
    }
    assert (af_asks_count (self, &n) == AF_OK && n == 7);
    //  Another queue: the answer and the sweep write there, not into the
    //  asker's outbox; no room there leaves an answered ask open
    test_queue_t queue = { outbox, true, 0 };
    af_asks_set_queue (self, s_test_queue, &queue);
    af_ask_t far = ask;
    randombytes_buf (far.id, sizeof far.id);
    far.deadline = now + 1500;
    assert (af_asks_open (self, &far, &opened) == AF_OK && opened);
    assert (af_asks_answer (self, "ana", far.id, tablet, "notes", phone, "rec", 3, NULL) == AF_E_QUOTA);
    assert (af_asks_get (self, "ana", far.id, &read, &found) == AF_OK && found && read.state == AF_ASK_OPEN);
    queue.full = false;
    assert (af_asks_answer (self, "ana", far.id, tablet, "notes", phone, "rec", 3, NULL) == AF_OK);
    assert (af_asks_answer (self, "ana", far.id, tablet, "notes", phone, "rec", 3, NULL) == AF_E_ANSWERED);
    af_ask_t gone = far;
    randombytes_buf (gone.id, sizeof gone.id);
    assert (af_asks_open (self, &gone, &opened) == AF_OK && opened);
    assert (af_asks_sweep (self, 0, now + 1500, 16, s_test_item, NULL, NULL, &expired) == AF_OK && expired == 1);
    assert (queue.queued == 2);
    assert (af_outbox_count (outbox, "far", phone, &n) == AF_OK && n == 2);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 2);
    af_asks_set_queue (self, NULL, NULL);
    assert (af_asks_count (self, &n) == AF_OK && n == 9);
    af_asks_destroy (&self);
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    //  On disk: after a restart the waits still expire, oldest first
    store = af_store_new (dir, 16 << 20, 16, false);
    outbox = af_outbox_new (store);
    self = af_asks_new (store, outbox, 1);
    assert (store && outbox && self);
    assert (af_asks_sweep (self, 0, now + 10000, 2, s_test_item, s_test_told, &told, &expired) == AF_OK
            && expired == 2);
    assert (af_asks_sweep (self, 0, now + 10000, 16, s_test_item, s_test_told, &told, &expired) == AF_OK
            && expired == 3 && told == 6);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 7);
    //  Closed asks are removed once kept long enough
    assert (af_asks_sweep (self, 0, now + 20000 + (uint64_t) AF_ASK_KEEP_MS, 16, s_test_item, s_test_told, &told,
                           &expired) == AF_OK && expired == 0);
    assert (af_asks_count (self, &n) == AF_OK && n == 0);
    assert (af_asks_answer (self, "ana", ask.id, tablet, "notes", phone, "r", 1, NULL) == AF_E_NO_ASK);
    //  Refused input
    af_ask_t bad = ask;
    strcpy (bad.program, "../x");
    assert (af_asks_open (self, &bad, &opened) == AF_E_MALFORMED);
    bad = ask;
    strcpy (bad.account, "");
    assert (af_asks_open (self, &bad, &opened) == AF_E_MALFORMED);
    af_asks_destroy (&self);
    //  Many shards: every shard has a due name in it, and a sweep of one
    //  shard sees only its accounts' asks
    self = af_asks_new (store, outbox, 256);
    assert (self);
    for (uint32_t s = 0; s < 256; s++)
        assert (af_shard_of (self->names [s], strlen (self->names [s]), 256) == s);
    af_ask_t sharded = ask;
    randombytes_buf (sharded.id, sizeof sharded.id);
    sharded.deadline = now;
    assert (af_asks_open (self, &sharded, &opened) == AF_OK && opened);
    uint32_t shard = af_shard_of ("ana", 3, 256);
    assert (af_asks_sweep (self, (shard + 1) % 256, now, 16, s_test_item, NULL, NULL, &expired) == AF_OK
            && expired == 0);
    assert (af_asks_sweep (self, shard, now, 16, s_test_item, NULL, NULL, &expired) == AF_OK && expired == 1);
    af_asks_destroy (&self);
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
