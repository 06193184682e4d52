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
};

af_pushes_t *
af_pushes_new (af_store_t *store, af_outbox_t *outbox)
{
    af_pushes_t *self = (af_pushes_t *) zmalloc (sizeof (af_pushes_t));
    assert (self);
    self->store = store;
    self->outbox = outbox;
    if (af_store_dbi (store, "pushes", 0, &self->pushes)
    ||  af_store_dbi (store, "offers", 0, &self->offers)) {
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
    if (af_id_from_hex (id1, key + len))
        return 0;
    len += AF_ID_SIZE;
    if (id2) {
        if (af_id_from_hex (id2, key + len))
            return 0;
        len += AF_ID_SIZE;
    }
    return len;
}

//  Store a record: initiator, created, encoded PUSH_ACCEPTED
static int
s_record_put (af_pushes_t *self, MDB_txn *txn, const uint8_t *key, size_t keylen,
              const char *initiator, uint64_t created, af_msg_t *record)
{
    uint8_t id [AF_ID_SIZE];
    if (af_id_from_hex (initiator, id))
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
    MDB_txn *txn = NULL;
    int code = s_code (af_store_begin (self->store, true, &txn), "begin a push");
    if (code == AF_OK)
        code = s_code (s_record_put (self, txn, key, keylen, initiator, (uint64_t) zclock_time (), accepted),
                       "store a push");
    for (uint32_t i = 0; code == AF_OK && i < accepted->result_count; i++) {
        if (offers [i]) {
            assert (offers [i]->id == AF_MSG_OFFER);
            code = s_offer_put (self, txn, account, accepted->results [i].device_id, offers [i]);
        }
    }
    if (code == AF_OK)
        code = s_code (af_store_commit (self->store, &txn), "commit a push");
    af_store_abort (&txn);
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
    af_store_abort (&txn);
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
    af_store_abort (&txn);
    return found;
}

int
af_pushes_done (af_pushes_t *self, const char *account, const char *device_id,
                const af_msg_t *done, char *initiator_out, bool *found)
{
    assert (self && done && found);
    *found = false;
    uint8_t okey [KEY_MAX], pkey [KEY_MAX];
    size_t okeylen = s_key (okey, account, device_id, done->push_id);
    size_t pkeylen = s_key (pkey, account, done->push_id, NULL);
    if (!okeylen || !pkeylen)
        return AF_OK;                   //  no such offer can exist
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    MDB_val value;
    if (rc == 0)
        rc = af_store_get (txn, self->offers, okey, okeylen, &value);
    if (rc == MDB_NOTFOUND) {
        af_store_abort (&txn);
        return AF_OK;                   //  a repeated DONE, or not this device's
    }
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
        }
        af_msg_destroy (&offer);
    }
    const char *reason = streq (done->state, "store-link") && *link? link: done->reason;
    af_msg_t *record = NULL;
    uint64_t created = 0;
    if (rc == 0)
        rc = s_record_get (txn, self->pushes, pkey, pkeylen, &record, initiator_out, &created);
    if (rc == 0) {
        for (uint32_t i = 0; i < record->result_count; i++) {
            af_target_t *target = &record->results [i];
            if (streq (target->device_id, device_id)) {
                snprintf (target->state, sizeof target->state, "%s", done->state);
                snprintf (target->version_name, sizeof target->version_name, "%s", done->version_name);
                snprintf (target->reason, sizeof target->reason, "%s", reason);
            }
        }
        rc = s_record_put (self, txn, pkey, pkeylen, initiator_out, created, record);
    }
    if (rc == 0)
        rc = af_store_del (txn, self->offers, okey, okeylen);
    int code = s_code (rc, "record an outcome");
    //  The node never acknowledges an offer itself (the broker refuses
    //  such an ACK); if the item is gone anyway, that is fine
    if (code == AF_OK)
        code = af_outbox_ack_txn (self->outbox, txn, account, device_id, item, NULL);
    if (code == AF_OK) {
        af_msg_t *result = af_msg_new (AF_MSG_RESULT);
        snprintf (result->push_id, sizeof result->push_id, "%s", done->push_id);
        snprintf (result->program, sizeof result->program, "%s", record->program);
        snprintf (result->device_id, sizeof result->device_id, "%s", device_id);
        snprintf (result->state, sizeof result->state, "%s", done->state);
        snprintf (result->version_name, sizeof result->version_name, "%s", done->version_name);
        snprintf (result->reason, sizeof result->reason, "%s", reason);
        zframe_t *frame = af_msg_encode (result);
        code = frame? af_outbox_put_txn (self->outbox, txn, account, initiator_out,
                                         zframe_data (frame), zframe_size (frame), NULL): AF_E_MALFORMED;
        zframe_destroy (&frame);
        af_msg_destroy (&result);
    }
    af_msg_destroy (&record);
    if (code == AF_OK)
        code = s_code (af_store_commit (self->store, &txn), "commit an outcome");
    af_store_abort (&txn);
    *found = code == AF_OK;
    //  A corrupt record can never be completed: say so, do not loop on it
    return code == AF_E_MALFORMED? AF_E_INTERNAL: code;
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
    af_store_abort (&txn);
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

void
af_pushes_test (bool verbose)
{
    if (verbose)
        printf (" * af_pushes: ");
    char dir [] = "/tmp/af_push_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    assert (store);
    af_outbox_t *outbox = af_outbox_new (store);
    af_pushes_t *self = af_pushes_new (store, outbox);
    assert (self);
    size_t n;
    bool found;
    const char *phone = "00000000000000000000000000000001";
    const char *tv = "00000000000000000000000000000002";
    const char *pc = "00000000000000000000000000000003";
    const char *push = "0123456789abcdef0123456789abcdef";
    const char *hash = "aa00000000000000000000000000000000000000000000000000000000000000";

    af_msg_t *accepted = af_msg_new (AF_MSG_PUSH_ACCEPTED);
    strcpy (accepted->push_id, push);
    strcpy (accepted->program, "weixin");
    assert (af_msg_set_result_count (accepted, 2) == 0);
    strcpy (accepted->results [0].device_id, tv);
    strcpy (accepted->results [0].state, "offered");
    strcpy (accepted->results [1].device_id, pc);
    strcpy (accepted->results [1].state, "no-fit");
    af_msg_t *offers [2] = { af_msg_new (AF_MSG_OFFER), NULL };
    strcpy (offers [0]->push_id, push);
    strcpy (offers [0]->program, "weixin");
    strcpy (offers [0]->from, phone);
    offers [0]->has_package = true;
    strcpy (offers [0]->package.hash, hash);
    const char *data = "bb00000000000000000000000000000000000000000000000000000000000000";
    strcpy (offers [0]->data_hash, data);
    offers [0]->data_total = 1234;
    assert (af_pushes_create (self, "ana", phone, accepted, offers) == AF_OK);
    assert (af_outbox_count (outbox, "ana", tv, &n) == AF_OK && n == 1);
    assert (af_outbox_count (outbox, "ana", pc, &n) == AF_OK && n == 0);
    char found_push [AF_ID_HEX + 1], found_from [AF_ID_HEX + 1];
    assert (af_pushes_offers_blob (self, "ana", tv, hash, found_push, found_from));
    assert (streq (found_push, push) && streq (found_from, phone));
    assert (!af_pushes_offers_blob (self, "ana", pc, hash, NULL, NULL));
    assert (!af_pushes_offers_blob (self, "bob", tv, hash, NULL, NULL));
    assert (af_pushes_offers_blob (self, "ana", tv, data, NULL, NULL));     //  the user data too

    //  The target's outcome: recorded, offer gone, initiator's RESULT queued
    af_msg_t *done = af_msg_new (AF_MSG_DONE);
    strcpy (done->push_id, push);
    strcpy (done->state, "installed");
    strcpy (done->version_name, "8.0.48");
    char initiator [AF_ID_HEX + 1];
    assert (af_pushes_done (self, "ana", tv, done, initiator, &found) == AF_OK && found);
    assert (streq (initiator, phone));
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
    assert (af_pushes_done (self, "ana", tv, done, initiator, &found) == AF_OK && !found);
    assert (af_outbox_count (outbox, "ana", phone, &n) == AF_OK && n == 1);
    //  Another device cannot finish someone else's offer
    assert (af_pushes_done (self, "ana", pc, done, initiator, &found) == AF_OK && !found);
    af_msg_t *record;
    assert (af_pushes_get (self, "ana", push, &record, initiator) == AF_OK && record);
    assert (record->result_count == 2 && streq (record->results [0].state, "installed"));
    assert (streq (record->results [1].state, "no-fit"));
    af_msg_destroy (&record);
    assert (af_pushes_get (self, "bob", push, &record, initiator) == AF_OK && !record);

    //  A store link's DONE needs no reason: the RESULT carries the offer's link
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
    assert (af_pushes_done (self, "ana", iphone, done, initiator, &found) == AF_OK && found);
    items = zlistx_new ();
    assert (af_outbox_each (outbox, "ana", phone, 0, 0, s_collect, items) == AF_OK && zlistx_size (items) == 2);
    result = (af_msg_t *) zlistx_last (items);
    assert (streq (result->state, "store-link") && streq (result->reason, "https://apps.apple.com/app/id414478124"));
    for (result = (af_msg_t *) zlistx_first (items); result; result = (af_msg_t *) zlistx_next (items))
        af_msg_destroy (&result);
    zlistx_destroy (&items);

    af_msg_destroy (&done);
    af_msg_destroy (&offers [0]);
    af_msg_destroy (&accepted);
    af_pushes_destroy (&self);
    af_outbox_destroy (&outbox);
    af_store_destroy (&store);
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
