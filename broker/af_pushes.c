/*  =========================================================================
    af_pushes - durable push records and pending offers

    See af_pushes.h for the guarantees and the key layout.
    =========================================================================
*/
#include "af_pushes.h"

#include <sodium.h>

#define RECORD_HEADER   (AF_ID_SIZE + 8)
#define OFFER_HEADER    (AF_ID_SIZE + AF_HASH_HEX)
#define KEY_MAX         (AF_MAX_ACCOUNT + 1 + 2 * AF_ID_SIZE)

struct _af_pushes_t {
    af_store_t *store;
    af_outbox_t *outbox;
    MDB_dbi pushes;
    MDB_dbi offers;
    MDB_dbi refs;                   //  blob_refs: pending offers per user-data blob
};

af_pushes_t *
af_pushes_new (af_store_t *store, af_outbox_t *outbox)
{
    af_pushes_t *self = (af_pushes_t *) zmalloc (sizeof (af_pushes_t));
    assert (self);
    self->store = store;
    self->outbox = outbox;
    if (af_store_dbi (store, "pushes", 0, &self->pushes)
    ||  af_store_dbi (store, "offers", 0, &self->offers)
    ||  af_store_dbi (store, "blob_refs", 0, &self->refs)) {
        free (self);
        return NULL;
    }
    return self;
}

void
af_pushes_destroy (af_pushes_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  account, 0x00, then each hex ID as 16 bytes. 0 if an ID is not one.
static size_t
s_key (uint8_t *key, const char *account, const char *id1, const char *id2)
{
    size_t len = strlen (account);
    if (len == 0 || len > AF_MAX_ACCOUNT)
        return 0;
    memcpy (key, account, len + 1);
    len++;
    if (af_id_from_hex (id1, key + len) != AF_OK)
        return 0;
    len += AF_ID_SIZE;
    if (id2) {
        if (af_id_from_hex (id2, key + len) != AF_OK)
            return 0;
        len += AF_ID_SIZE;
    }
    return len;
}

//  account, 0x00, the blob's hash (32 bytes); 0 if the hash is not one
static size_t
s_ref_key (uint8_t *key, const char *account, const char *hash)
{
    size_t len = strlen (account);
    size_t bin_len = 0;
    if (len == 0 || len > AF_MAX_ACCOUNT || strlen (hash) != AF_HASH_HEX
    ||  sodium_hex2bin (key + len + 1, AF_HASH_SIZE, hash, AF_HASH_HEX, NULL, &bin_len, NULL)
    ||  bin_len != AF_HASH_SIZE)
        return 0;
    memcpy (key, account, len + 1);
    return len + 1 + AF_HASH_SIZE;
}

//  Add delta to a blob's count of pending offers; *left is what remains
//  (the key is removed at 0). LMDB code.
static int
s_ref_add (af_pushes_t *self, MDB_txn *txn, const char *account, const char *hash, int delta, uint32_t *left)
{
    uint8_t key [AF_MAX_ACCOUNT + 1 + AF_HASH_SIZE];
    size_t keylen = s_ref_key (key, account, hash);
    *left = 0;
    if (!keylen)
        return -1;
    MDB_val value;
    uint32_t count = 0;
    int rc = af_store_get (txn, self->refs, key, keylen, &value);
    if (rc == 0 && value.mv_size == 4)
        memcpy (&count, value.mv_data, 4);
    else
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    count = delta < 0 && (uint32_t) -delta > count? 0: (uint32_t) ((int64_t) count + delta);
    *left = count;
    if (count == 0)
        return rc == 0? af_store_del (txn, self->refs, key, keylen): 0;
    return af_store_put (txn, self->refs, key, keylen, &count, 4, 0);
}

//  Is any target of a record still waiting for its outcome?
static bool
s_record_open (const af_msg_t *record)
{
    for (uint32_t i = 0; i < record->result_count; i++)
        if (streq (record->results [i].state, "offered") || streq (record->results [i].state, "queued"))
            return true;
    return false;
}

//  Store a record: initiator, created, encoded PUSH_ACCEPTED
static int
s_record_put (af_pushes_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen,
              const char *initiator, uint64_t created, af_msg_t *record)
{
    uint8_t id [AF_ID_SIZE];
    if (af_id_from_hex (initiator, id) != AF_OK)
        return -1;
    zframe_t *frame = af_msg_encode (record);
    if (!frame)
        return -1;
    size_t size = RECORD_HEADER + zframe_size (frame);
    uint8_t *value = (uint8_t *) malloc (size);
    int rc = -1;
    if (value) {
        memcpy (value, id, AF_ID_SIZE);
        memcpy (value + AF_ID_SIZE, &created, 8);
        memcpy (value + RECORD_HEADER, zframe_data (frame), zframe_size (frame));
        rc = af_store_put (txn, self->pushes, key, keylen, value, size, 0);
        free (value);
    }
    zframe_destroy (&frame);
    return rc;
}

static int
s_record_get (MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t keylen,
              af_msg_t **record, char *initiator_out, uint64_t *created)
{
    MDB_val value;
    int rc = af_store_get (txn, dbi, key, keylen, &value);
    if (rc)
        return rc;
    char err [AF_MAX_REASON + 1];
    if (value.mv_size <= RECORD_HEADER
    ||  af_msg_decode ((const uint8_t *) value.mv_data + RECORD_HEADER, value.mv_size - RECORD_HEADER,
                       record, err, sizeof err, NULL, NULL) != AF_OK
    ||  (*record)->id != AF_MSG_PUSH_ACCEPTED) {
        af_msg_destroy (record);
        zsys_error ("pushes: a push record is corrupt");
        return -1;
    }
    if (initiator_out)
        sodium_bin2hex (initiator_out, AF_ID_HEX + 1, value.mv_data, AF_ID_SIZE);
    if (created)
        memcpy (created, (const uint8_t *) value.mv_data + AF_ID_SIZE, 8);
    return 0;
}

//  Our code for an internal result: -1 is a bad argument or a corrupt
//  record (logged where found), else LMDB's
static int
s_code (int rc, const char *what)
{
    if (rc == -1)
        return AF_E_MALFORMED;
    if (rc)
        zsys_error ("pushes: cannot %s: %s", what, mdb_strerror (rc));
    return af_store_code (rc);
}

//  Queue an encoded message in a device's outbox and, for an offer, the
//  offer row naming its item and blob. Returns an AF_* code.
static int
s_offer_put (af_pushes_t *self, MDB_txn *txn, const char *account, const char *device, af_msg_t *offer)
{
    zframe_t *frame = af_msg_encode (offer);
    if (!frame)
        return AF_E_MALFORMED;
    uint8_t item [AF_ID_SIZE];
    int code = af_outbox_put_txn (self->outbox, txn, account, device, zframe_data (frame),
                                  zframe_size (frame), item);
    uint8_t okey [KEY_MAX];
    size_t okeylen = code == AF_OK? s_key (okey, account, device, offer->push_id): 0;
    if (code == AF_OK && !okeylen)
        code = AF_E_MALFORMED;
    if (code == AF_OK) {
        size_t size = OFFER_HEADER + zframe_size (frame);
        uint8_t *value = (uint8_t *) malloc (size);
        assert (value);
        memcpy (value, item, AF_ID_SIZE);
        memset (value + AF_ID_SIZE, 0, AF_HASH_HEX);
        memcpy (value + AF_ID_SIZE, offer->package.hash, strlen (offer->package.hash));
        memcpy (value + OFFER_HEADER, zframe_data (frame), zframe_size (frame));
        code = s_code (af_store_put (txn, self->offers, okey, okeylen, value, size, 0), "store an offer");
        free (value);
    }
    zframe_destroy (&frame);
    return code;
}

int
af_pushes_create (af_pushes_t *self, const char *account, const char *initiator,
                  af_msg_t *accepted, af_msg_t **offers)
{
    assert (self && accepted && accepted->id == AF_MSG_PUSH_ACCEPTED);
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, accepted->push_id, NULL);
    if (!keylen)
        return AF_E_MALFORMED;
    bool any = false;
    for (uint32_t i = 0; i < accepted->result_count; i++)
        any |= offers [i] != NULL;
    if (!any)
        return AF_OK;                   //  finished at once: nothing to keep
    MDB_txn *txn = NULL;
    int code = s_code (af_store_begin (self->store, true, &txn), "begin a push");
    if (code == AF_OK)
        code = s_code (s_record_put (self, txn, key, keylen, initiator, (uint64_t) zclock_time (), accepted),
                       "store a push");
    for (uint32_t i = 0; code == AF_OK && i < accepted->result_count; i++) {
        if (offers [i]) {
            assert (offers [i]->id == AF_MSG_OFFER || offers [i]->id == AF_MSG_UNINSTALL);
            code = s_offer_put (self, txn, account, accepted->results [i].device_id, offers [i]);
            uint32_t left;
            if (code == AF_OK && *offers [i]->data_hash)
                code = s_code (s_ref_add (self, txn, account, offers [i]->data_hash, 1, &left),
                               "count a blob's offers");
        }
    }
    if (code == AF_OK)
        code = s_code (af_store_commit (self->store, &txn), "commit a push");
    af_store_abort (self->store, &txn);
    return code;
}

int
af_pushes_queue (af_pushes_t *self, const char *account, const char (*devices) [AF_ID_HEX + 1],
                 uint32_t count, af_msg_t *item)
{
    assert (self && item);
    zframe_t *frame = af_msg_encode (item);
    if (!frame)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int code = s_code (af_store_begin (self->store, true, &txn), "begin a queue");
    for (uint32_t i = 0; code == AF_OK && i < count; i++)
        code = af_outbox_put_txn (self->outbox, txn, account, devices [i], zframe_data (frame),
                                  zframe_size (frame), NULL);
    if (code == AF_OK)
        code = s_code (af_store_commit (self->store, &txn), "commit a queue");
    af_store_abort (self->store, &txn);
    zframe_destroy (&frame);
    return code;
}

bool
af_pushes_offers_blob (af_pushes_t *self, const char *account, const char *device_id, const char *hash,
                       char *push_out, char *from_out)
{
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen || strlen (hash) != AF_HASH_HEX)
        return false;
    MDB_txn *txn = NULL;
    if (af_store_begin (self->store, false, &txn))
        return false;
    MDB_cursor *cursor;
    bool found = false;
    if (mdb_cursor_open (txn, self->offers, &cursor) == 0) {
        MDB_val key = { plen, prefix }, value;
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (!found && rc == 0 && key.mv_size == plen + AF_ID_SIZE
           &&  memcmp (key.mv_data, prefix, plen) == 0) {
            //  The package itself (its hash is at a fixed place), or the
            //  push's user data (named in the OFFER)
            char err [AF_MAX_REASON + 1];
            af_msg_t *offer = NULL;
            if (value.mv_size > OFFER_HEADER
            &&  af_msg_decode ((const uint8_t *) value.mv_data + OFFER_HEADER, value.mv_size - OFFER_HEADER,
                               &offer, err, sizeof err, NULL, NULL) == AF_OK) {
                found = memcmp ((const uint8_t *) value.mv_data + AF_ID_SIZE, hash, AF_HASH_HEX) == 0
                     || streq (offer->data_hash, hash);
                if (found && push_out)
                    snprintf (push_out, AF_ID_HEX + 1, "%s", offer->push_id);
                if (found && from_out)
                    snprintf (from_out, AF_ID_HEX + 1, "%s", offer->from);
            }
            af_msg_destroy (&offer);
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    af_store_abort (self->store, &txn);
    return found;
}

//  The outcome of one pending offer, inside txn: the record updated (or
//  removed with its last outcome), the offer and its item removed, the
//  blob's count down, the initiator's RESULT queued. *found is false when
//  there is no such offer. Returns an AF_* code.
static int
s_finish_txn (af_pushes_t *self, MDB_txn *txn, const char *account, const char *device_id,
              const char *push_id, const char *state, const char *version_name, const char *why,
              char *initiator_out, bool *found, char *freed_out)
{
    *found = false;
    *freed_out = 0;
    char data_hash [AF_HASH_HEX + 1] = "";
    uint8_t okey [KEY_MAX], pkey [KEY_MAX];
    size_t okeylen = s_key (okey, account, device_id, push_id);
    size_t pkeylen = s_key (pkey, account, push_id, NULL);
    if (!okeylen || !pkeylen)
        return AF_OK;                   //  no such offer can exist
    MDB_val value;
    int rc = af_store_get (txn, self->offers, okey, okeylen, &value);
    if (rc == MDB_NOTFOUND)
        return AF_OK;                   //  a repeated DONE, or not this device's
    uint8_t item [AF_ID_SIZE];
    char link [AF_MAX_LINK + 1] = "";
    if (rc == 0) {
        af_msg_t *offer = NULL;
        char err [AF_MAX_REASON + 1];
        if (value.mv_size <= OFFER_HEADER
        ||  af_msg_decode ((const uint8_t *) value.mv_data + OFFER_HEADER, value.mv_size - OFFER_HEADER,
                           &offer, err, sizeof err, NULL, NULL) != AF_OK) {
            zsys_error ("pushes: an offer of '%s' is corrupt", account);
            rc = -1;
        }
        else {
            memcpy (item, value.mv_data, AF_ID_SIZE);
            //  A store link's outcome carries the link, from the offer itself
            if (offer->has_package)
                snprintf (link, sizeof link, "%s", offer->package.store_link);
            snprintf (data_hash, sizeof data_hash, "%s", offer->data_hash);
        }
        af_msg_destroy (&offer);
    }
    const char *reason = streq (state, "store-link") && *link? link: why;
    af_msg_t *record = NULL;
    uint64_t created = 0;
    if (rc == 0)
        rc = s_record_get (txn, self->pushes, pkey, pkeylen, &record, initiator_out, &created);
    if (rc == 0) {
        for (uint32_t i = 0; i < record->result_count; i++) {
            af_target_t *target = &record->results [i];
            if (streq (target->device_id, device_id)) {
                snprintf (target->state, sizeof target->state, "%s", state);
                snprintf (target->version_name, sizeof target->version_name, "%s", version_name);
                snprintf (target->reason, sizeof target->reason, "%s", reason);
            }
        }
        //  The last outcome: nothing refers to the record any more
        if (s_record_open (record))
            rc = s_record_put (self, txn, pkey, pkeylen, initiator_out, created, record);
        else
            rc = af_store_del (txn, self->pushes, pkey, pkeylen);
    }
    if (rc == 0)
        rc = af_store_del (txn, self->offers, okey, okeylen);
    uint32_t left = 1;
    if (rc == 0 && *data_hash)
        rc = s_ref_add (self, txn, account, data_hash, -1, &left);
    int code = s_code (rc, "record an outcome");
    //  The node never acknowledges an offer itself (the broker refuses
    //  such an ACK); if the item is gone anyway, that is fine
    if (code == AF_OK)
        code = af_outbox_ack_txn (self->outbox, txn, account, device_id, item, NULL);
    if (code == AF_OK) {
        af_msg_t *result = af_msg_new (AF_MSG_RESULT);
        snprintf (result->push_id, sizeof result->push_id, "%s", push_id);
        snprintf (result->program, sizeof result->program, "%s", record->program);
        snprintf (result->device_id, sizeof result->device_id, "%s", device_id);
        snprintf (result->state, sizeof result->state, "%s", state);
        snprintf (result->version_name, sizeof result->version_name, "%s", version_name);
        snprintf (result->reason, sizeof result->reason, "%s", reason);
        zframe_t *frame = af_msg_encode (result);
        code = frame? af_outbox_put_txn (self->outbox, txn, account, initiator_out,
                                         zframe_data (frame), zframe_size (frame), NULL): AF_E_MALFORMED;
        zframe_destroy (&frame);
        af_msg_destroy (&result);
    }
    af_msg_destroy (&record);
    *found = code == AF_OK;
    if (code == AF_OK && *data_hash && left == 0)
        snprintf (freed_out, AF_HASH_HEX + 1, "%s", data_hash);
    //  A corrupt record can never be completed: say so, do not loop on it
    return code == AF_E_MALFORMED? AF_E_INTERNAL: code;
}

int
af_pushes_done (af_pushes_t *self, const char *account, const char *device_id,
                const af_msg_t *done, char *initiator_out, bool *found, char *freed_out)
{
    assert (self && done && found);
    char freed [AF_HASH_HEX + 1];
    MDB_txn *txn = NULL;
    int code = s_code (af_store_begin (self->store, true, &txn), "begin an outcome");
    if (code == AF_OK)
        code = s_finish_txn (self, txn, account, device_id, done->push_id, done->state, done->version_name,
                             done->reason, initiator_out, found, freed);
    if (code == AF_OK && *found)
        code = s_code (af_store_commit (self->store, &txn), "commit an outcome");
    af_store_abort (self->store, &txn);
    if (code != AF_OK)
        *found = false;
    if (freed_out)
        snprintf (freed_out, AF_HASH_HEX + 1, "%s", code == AF_OK? freed: "");
    return code;
}

int
af_pushes_drop_target_txn (af_pushes_t *self, MDB_txn *txn, const char *account, const char *device_id,
                           const char *why, zlistx_t *freed, zlistx_t *initiators)
{
    assert (self && txn && freed && initiators);
    uint8_t prefix [KEY_MAX];
    size_t plen = s_key (prefix, account, device_id, NULL);
    if (!plen)
        return AF_E_MALFORMED;
    //  The push IDs first (finishing an offer changes the table we walk)
    zlistx_t *pushes = zlistx_new ();
    zlistx_set_destructor (pushes, (zlistx_destructor_fn *) zstr_free);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->offers, &cursor);
    if (rc == 0) {
        MDB_val key = { plen, prefix }, value;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size == plen + AF_ID_SIZE && memcmp (key.mv_data, prefix, plen) == 0) {
            char push [AF_ID_HEX + 1];
            sodium_bin2hex (push, sizeof push, (const uint8_t *) key.mv_data + plen, AF_ID_SIZE);
            zlistx_add_end (pushes, strdup (push));
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    int code = s_code (rc == MDB_NOTFOUND? 0: rc, "read a device's offers");
    for (const char *push = (const char *) zlistx_first (pushes); push && code == AF_OK;
         push = (const char *) zlistx_next (pushes)) {
        char initiator [AF_ID_HEX + 1], hash [AF_HASH_HEX + 1];
        bool found;
        code = s_finish_txn (self, txn, account, device_id, push, "failed", "", why, initiator, &found, hash);
        if (code == AF_OK && found)
            zlistx_add_end (initiators, strdup (initiator));
        if (code == AF_OK && *hash)
            zlistx_add_end (freed, strdup (hash));
    }
    zlistx_destroy (&pushes);
    return code;
}

int
af_pushes_blob_refs (af_pushes_t *self, const char *account, const char *hash, uint32_t *count)
{
    assert (self && count);
    *count = 0;
    uint8_t key [AF_MAX_ACCOUNT + 1 + AF_HASH_SIZE];
    size_t keylen = s_ref_key (key, account, hash);
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    MDB_val value;
    if (rc == 0)
        rc = af_store_get (txn, self->refs, key, keylen, &value);
    if (rc == 0 && value.mv_size == 4)
        memcpy (count, value.mv_data, 4);
    af_store_abort (self->store, &txn);
    return s_code (rc == MDB_NOTFOUND? 0: rc, "read a blob's offers");
}

int
af_pushes_get (af_pushes_t *self, const char *account, const char *push_id,
               af_msg_t **record, char *initiator_out)
{
    assert (self && record);
    uint8_t key [KEY_MAX];
    size_t keylen = s_key (key, account, push_id, NULL);
    *record = NULL;
    if (!keylen)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    if (rc == 0)
        rc = s_record_get (txn, self->pushes, key, keylen, record, initiator_out, NULL);
    af_store_abort (self->store, &txn);
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    return rc == -1? AF_E_INTERNAL: s_code (rc, "read a push");
}

//  --------------------------------------------------------------------------
//  Self test

static int
s_collect (const af_outbox_item_t *item, void *arg)
{
    zlistx_t *list = (zlistx_t *) arg;
    af_msg_t *msg = NULL;
    char err [256];
    int code = af_msg_decode (item->data, item->size, &msg, err, sizeof err, NULL, NULL);
    assert (code == AF_OK);
    zlistx_add_end (list, msg);
    return 0;
}

static void
s_free_id (void **item)
{
    free (*item);
    *item = NULL;
}

static int
s_collect_ids (const af_outbox_item_t *item, void *arg)
{
    uint8_t *id = (uint8_t *) malloc (AF_ID_SIZE);
    assert (id);
    memcpy (id, item->id, AF_ID_SIZE);
    zlistx_add_end ((zlistx_t *) arg, id);
    return 0;
}

//  What the sections of the self-test share, in the order they run: one
//  store with its outbox and pushes, the PUSH_ACCEPTED and OFFER that each
//  section rewrites for its own push, the DONE the targets send, and the
//  account's devices, first push and blobs
typedef struct {
    af_store_t *store;
    af_outbox_t *outbox;
    af_pushes_t *self;
    af_msg_t *accepted;
    af_msg_t *offers [2];           //  one OFFER, then NULL
    af_msg_t *done;
    const char *phone, *tv, *pc, *push, *hash, *data;
} pushes_test_t;

//  Two targets offered the same user data, one refused; the offers and
//  what they name, as the targets and their outboxes see them
static void
s_test_offers (pushes_test_t *test)
{
    af_pushes_t *self = test->self;
    af_outbox_t *outbox = test->outbox;
    af_msg_t *accepted = test->accepted;
    af_msg_t **offers = test->offers;
    const char *phone = test->phone, *tv = test->tv, *pc = test->pc;
    const char *push = test->push, *hash = test->hash, *data = test->data;
    size_t n;
    bool found;
    strcpy (accepted->push_id, push);
    strcpy (accepted->program, "weixin");
    af_msg_set_result_count (accepted, 2);
    strcpy (accepted->results [0].device_id, tv);
    strcpy (accepted->results [0].state, "offered");
    strcpy (accepted->results [1].device_id, pc);
    strcpy (accepted->results [1].state, "no-fit");
    strcpy (offers [0]->push_id, push);
    strcpy (offers [0]->program, "weixin");
    strcpy (offers [0]->from, phone);
    offers [0]->has_package = true;
    strcpy (offers [0]->package.hash, hash);
    strcpy (offers [0]->data_hash, data);
    offers [0]->data_total = 1234;
    af_msg_set_result_count (accepted, 3);
    strcpy (accepted->results [0].device_id, tv);
    strcpy (accepted->results [0].state, "offered");
    strcpy (accepted->results [1].device_id, pc);
    strcpy (accepted->results [1].state, "no-fit");
    const char *tablet = "00000000000000000000000000000005";
    strcpy (accepted->results [2].device_id, tablet);
    strcpy (accepted->results [2].state, "queued");
    af_msg_t *offers3 [3] = { offers [0], NULL, af_msg_new (AF_MSG_OFFER) };
    strcpy (offers3 [2]->push_id, push);
    strcpy (offers3 [2]->program, "weixin");
    strcpy (offers3 [2]->from, phone);
    offers3 [2]->has_package = true;
    strcpy (offers3 [2]->package.hash, hash);
    strcpy (offers3 [2]->data_hash, data);
    offers3 [2]->data_total = 1234;
    assert (af_pushes_create (self, "ana", phone, accepted, offers3) == AF_OK);
    uint32_t refs;
    assert (af_pushes_blob_refs (self, "ana", data, &refs) == AF_OK && refs == 2);
    //  The tablet's outcome: the record stays (the tv is still offered), the blob too
    af_msg_t *tdone = af_msg_new (AF_MSG_DONE);
    strcpy (tdone->push_id, push);
    strcpy (tdone->state, "failed");
    char tfreed [AF_HASH_HEX + 1], tinit [AF_ID_HEX + 1];
    assert (af_pushes_done (self, "ana", tablet, tdone, tinit, &found, tfreed) == AF_OK && found && !*tfreed);
    af_msg_t *open_record;
    assert (af_pushes_get (self, "ana", push, &open_record, tinit) == AF_OK && open_record);
    assert (streq (open_record->results [2].state, "failed") && streq (open_record->results [0].state, "offered"));
    af_msg_destroy (&open_record);
    af_msg_destroy (&tdone);
    af_msg_destroy (&offers3 [2]);
    //  its RESULT is in the phone's outbox; drop it so the counts below hold
    zlistx_t *first_items = zlistx_new ();
    zlistx_set_destructor (first_items, s_free_id);
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect_ids, first_items) == AF_OK);
    for (uint8_t *id = (uint8_t *) zlistx_first (first_items); id; id = (uint8_t *) zlistx_next (first_items))
        assert (af_outbox_ack (outbox, "ana", phone, id, NULL) == AF_OK);
    zlistx_destroy (&first_items);
    assert (af_outbox_count (outbox, "ana", tv, &n) == AF_OK && n == 1);
    assert (af_outbox_count (outbox, "ana", pc, &n) == AF_OK && n == 0);
    char found_push [AF_ID_HEX + 1], found_from [AF_ID_HEX + 1];
    assert (af_pushes_offers_blob (self, "ana", tv, hash, found_push, found_from));
    assert (streq (found_push, push) && streq (found_from, phone));
    assert (!af_pushes_offers_blob (self, "ana", pc, hash, NULL, NULL));
    assert (!af_pushes_offers_blob (self, "bob", tv, hash, NULL, NULL));
    assert (af_pushes_offers_blob (self, "ana", tv, data, NULL, NULL));     //  the user data too
}

//  The target's outcome: recorded, offer gone, initiator's RESULT queued
static void
s_test_done (pushes_test_t *test)
{
    af_pushes_t *self = test->self;
    af_outbox_t *outbox = test->outbox;
    const char *phone = test->phone, *tv = test->tv, *pc = test->pc;
    const char *push = test->push, *hash = test->hash, *data = test->data;
    size_t n;
    bool found;
    uint32_t refs;
    af_msg_t *done = test->done = af_msg_new (AF_MSG_DONE);
    strcpy (done->push_id, push);
    strcpy (done->state, "installed");
    strcpy (done->version_name, "8.0.48");
    char initiator [AF_ID_HEX + 1];
    assert (af_pushes_blob_refs (self, "ana", data, &refs) == AF_OK && refs == 1);
    char freed [AF_HASH_HEX + 1];
    assert (af_pushes_done (self, "ana", tv, done, initiator, &found, freed) == AF_OK && found);
    assert (streq (initiator, phone));
    //  It was the last offer naming the user data: the caller may remove it
    assert (streq (freed, data));
    assert (af_pushes_blob_refs (self, "ana", data, &refs) == AF_OK && refs == 0);
    assert (af_outbox_count (outbox, "ana", tv, &n) == AF_OK && n == 0);
    assert (!af_pushes_offers_blob (self, "ana", tv, hash, NULL, NULL));
    zlistx_t *items = zlistx_new ();
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, items) == AF_OK);
    assert (zlistx_size (items) == 1);
    af_msg_t *result = (af_msg_t *) zlistx_first (items);
    assert (result->id == AF_MSG_RESULT && streq (result->state, "installed"));
    assert (streq (result->device_id, tv) && streq (result->version_name, "8.0.48"));
    af_msg_destroy (&result);
    zlistx_destroy (&items);
    //  A repeated DONE changes nothing
    assert (af_pushes_done (self, "ana", tv, done, initiator, &found, NULL) == AF_OK && !found);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 1);
    //  Another device cannot finish someone else's offer
    assert (af_pushes_done (self, "ana", pc, done, initiator, &found, NULL) == AF_OK && !found);
    //  No target is pending any more: the record is gone (the RESULT has it all)
    af_msg_t *record;
    assert (af_pushes_get (self, "ana", push, &record, initiator) == AF_OK && !record);
}

//  A store link's DONE needs no reason: the RESULT carries the offer's link
static void
s_test_store_link_done (pushes_test_t *test)
{
    af_pushes_t *self = test->self;
    af_outbox_t *outbox = test->outbox;
    af_msg_t *accepted = test->accepted;
    af_msg_t **offers = test->offers;
    af_msg_t *done = test->done;
    const char *phone = test->phone;
    char initiator [AF_ID_HEX + 1];
    bool found;
    zlistx_t *items;
    af_msg_t *result;
    const char *iphone = "00000000000000000000000000000004";
    const char *push2 = "0123456789abcdef0123456789abcde2";
    strcpy (accepted->push_id, push2);
    accepted->result_count = 1;
    strcpy (accepted->results [0].device_id, iphone);
    strcpy (offers [0]->push_id, push2);
    offers [0]->fit = AF_FIT_STORE_LINK;
    offers [0]->package.hash [0] = 0;
    offers [0]->data_hash [0] = 0;
    strcpy (offers [0]->package.store_link, "https://apps.apple.com/app/id414478124");
    assert (af_pushes_create (self, "ana", phone, accepted, offers) == AF_OK);
    strcpy (done->push_id, push2);
    strcpy (done->state, "store-link");
    done->reason [0] = 0;
    assert (af_pushes_done (self, "ana", iphone, done, initiator, &found, NULL) == AF_OK && found);
    items = zlistx_new ();
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, items) == AF_OK && zlistx_size (items) == 2);
    result = (af_msg_t *) zlistx_last (items);
    assert (streq (result->state, "store-link") && streq (result->reason, "https://apps.apple.com/app/id414478124"));
    for (result = (af_msg_t *) zlistx_first (items); result; result = (af_msg_t *) zlistx_next (items))
        af_msg_destroy (&result);
    zlistx_destroy (&items);
}

//  A removed target: its pending offers end "failed", the initiator hears
static void
s_test_removed_target (pushes_test_t *test)
{
    af_pushes_t *self = test->self;
    af_outbox_t *outbox = test->outbox;
    af_msg_t *accepted = test->accepted;
    af_msg_t **offers = test->offers;
    af_store_t *store = test->store;
    const char *phone = test->phone, *tv = test->tv, *hash = test->hash, *data = test->data;
    char initiator [AF_ID_HEX + 1];
    zlistx_t *items;
    af_msg_t *record, *result;
    const char *push3 = "0123456789abcdef0123456789abcde3";
    strcpy (accepted->push_id, push3);
    accepted->result_count = 1;
    strcpy (accepted->results [0].device_id, tv);
    strcpy (accepted->results [0].state, "queued");
    strcpy (offers [0]->push_id, push3);
    offers [0]->fit = AF_FIT_PACKAGE;
    strcpy (offers [0]->package.hash, hash);
    strcpy (offers [0]->data_hash, data);
    assert (af_pushes_create (self, "ana", phone, accepted, offers) == AF_OK);
    zlistx_t *freed_list = zlistx_new (), *initiators = zlistx_new ();
    zlistx_set_destructor (freed_list, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (initiators, (zlistx_destructor_fn *) zstr_free);
    MDB_txn *txn = NULL;
    assert (af_store_begin (store, true, &txn) == 0);
    assert (af_pushes_drop_target_txn (self, txn, "ana", tv, "the device was removed", freed_list, initiators)
            == AF_OK);
    assert (af_store_commit (store, &txn) == 0);
    assert (zlistx_size (initiators) == 1 && streq ((char *) zlistx_first (initiators), phone));
    assert (zlistx_size (freed_list) == 1 && streq ((char *) zlistx_first (freed_list), data));
    assert (!af_pushes_offers_blob (self, "ana", tv, hash, NULL, NULL));
    assert (af_pushes_get (self, "ana", push3, &record, initiator) == AF_OK && !record);
    items = zlistx_new ();
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, items) == AF_OK);
    result = (af_msg_t *) zlistx_last (items);
    assert (streq (result->push_id, push3) && streq (result->state, "failed")
            && streq (result->reason, "the device was removed"));
    for (result = (af_msg_t *) zlistx_first (items); result; result = (af_msg_t *) zlistx_next (items))
        af_msg_destroy (&result);
    zlistx_destroy (&items);
    zlistx_destroy (&freed_list);
    zlistx_destroy (&initiators);
}

void
af_pushes_test (bool verbose)
{
    if (verbose)
        printf (" * af_pushes: ");
    char dir [] = "/tmp/af_push_test.XXXXXX";
    assert (mkdtemp (dir));
    pushes_test_t test = { 0 };
    test.store = af_store_new (dir, 0, 16, false);
    assert (test.store);
    test.outbox = af_outbox_new (test.store);
    test.self = af_pushes_new (test.store, test.outbox);
    assert (test.self);
    test.phone = "00000000000000000000000000000001";
    test.tv = "00000000000000000000000000000002";
    test.pc = "00000000000000000000000000000003";
    test.push = "0123456789abcdef0123456789abcdef";
    test.hash = "aa00000000000000000000000000000000000000000000000000000000000000";
    test.data = "bb00000000000000000000000000000000000000000000000000000000000000";
    test.accepted = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    test.offers [0] = af_msg_new (AF_MSG_OFFER);

    s_test_offers (&test);
    s_test_done (&test);
    s_test_store_link_done (&test);
    s_test_removed_target (&test);

    af_msg_destroy (&test.done);
    af_msg_destroy (&test.offers [0]);
    af_msg_destroy (&test.accepted);
    af_pushes_destroy (&test.self);
    af_outbox_destroy (&test.outbox);
    af_store_destroy (&test.store);
    zsys_dir_delete ("%s", dir);    //  best effort: files first
    char path [256];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/lock.mdb", dir);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
