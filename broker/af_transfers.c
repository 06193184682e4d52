/*  =========================================================================
    af_transfers - streaming blobs to nodes in chunks, under credit

    See af_transfers.h. Memory: one read buffer and one compression buffer
    for the whole engine, AF_CHUNK_CACHE encoded chunks, and what sits in
    the socket's queues (at most AF_MAX_CREDIT chunks per transfer and
    AF_PEER_HWM messages per receiver, shared with the cache when several
    receivers are at the same place). A transfer that met a full queue is
    marked stalled and counted; it is pumped again by af_transfers_resume.
    =========================================================================
*/
#include "af_transfers.h"
#include "af_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sodium.h>
#include <zstd.h>

typedef struct {
    char key [AF_HASH_HEX + 24];    //  "hash:offset"
    zmq_msg_t msg;                  //  the encoded CHUNK
    int64_t used;                   //  for eviction: least recently used goes
} cached_t;

typedef struct {
    char key [64 + AF_HASH_HEX];    //  "session/hash"
    char session [32];
    char hash [AF_HASH_HEX + 1];
    zframe_t *routing;
    int fd;                         //  a package file, or -1: user data (the reader)
    uint64_t total;
    uint64_t next;                  //  offset of the next chunk to send
    uint32_t credit;
    af_transfer_for_t target;       //  for the progress function
    int64_t progress_at;            //  when it was last called
    bool stalled;                   //  the receiver's queue was full
} transfer_t;

struct _af_transfers_t {
    zsock_t *sock;
    char blob_dir [512];
    af_transfers_reader_t reader;   //  user data (size NULL: none)
    zhashx_t *transfers;            //  "session/hash" -> transfer_t
    zhashx_t *cache;                //  "hash:offset" -> cached_t
    int64_t clock;                  //  use counter for the cache
    uint8_t *raw;                   //  one chunk read from a file
    uint8_t *packed;                //  its compressed form
    size_t packed_size;
    ZSTD_CCtx *zstd;
    af_transfer_progress_fn *progress;
    void *progress_arg;
    uint64_t bytes_read;
    uint64_t chunks_sent;
    size_t stalled;                 //  transfers waiting for room
};

static void
s_transfer_free (void **item)
{
    transfer_t *transfer = (transfer_t *) *item;
    if (transfer) {
        if (transfer->fd >= 0)
            close (transfer->fd);
        zframe_destroy (&transfer->routing);
        free (transfer);
        *item = NULL;
    }
}

static void
s_cached_free (void **item)
{
    cached_t *cached = (cached_t *) *item;
    if (cached) {
        zmq_msg_close (&cached->msg);
        free (cached);
        *item = NULL;
    }
}

af_transfers_t *
af_transfers_new (zsock_t *sock, const char *blob_dir, const af_transfers_reader_t *reader)
{
    af_transfers_t *self = (af_transfers_t *) zmalloc (sizeof (af_transfers_t));
    assert (self);
    self->sock = sock;
    snprintf (self->blob_dir, sizeof self->blob_dir, "%s", blob_dir? blob_dir: "");
    if (reader)
        self->reader = *reader;
    self->transfers = zhashx_new ();
    zhashx_set_destructor (self->transfers, s_transfer_free);
    self->cache = zhashx_new ();
    zhashx_set_destructor (self->cache, s_cached_free);
    self->raw = (uint8_t *) malloc (AF_MAX_CHUNK);
    self->packed_size = ZSTD_compressBound (AF_MAX_CHUNK);
    self->packed = (uint8_t *) malloc (self->packed_size);
    self->zstd = ZSTD_createCCtx ();
    if (!self->raw || !self->packed || !self->zstd)
        af_transfers_destroy (&self);
    return self;
}

void
af_transfers_destroy (af_transfers_t **self_p)
{
    assert (self_p);
    af_transfers_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->transfers);
        zhashx_destroy (&self->cache);
        free (self->raw);
        free (self->packed);
        ZSTD_freeCCtx (self->zstd);
        free (self);
        *self_p = NULL;
    }
}

void
af_transfers_set_progress (af_transfers_t *self, af_transfer_progress_fn *fn, void *arg)
{
    self->progress = fn;
    self->progress_arg = arg;
}

static void
s_frame_free (void *data, void *hint)
{
    (void) data;
    zframe_t *frame = (zframe_t *) hint;
    zframe_destroy (&frame);
}

//  The encoded CHUNK at offset of a transfer's blob: from the cache, or
//  read, compressed, encoded and cached. NULL on a read error (logged).
static cached_t *
s_chunk (af_transfers_t *self, transfer_t *transfer, uint64_t offset)
{
    char key [sizeof ((cached_t *) 0)->key];
    snprintf (key, sizeof key, "%s:%llu", transfer->hash, (unsigned long long) offset);
    cached_t *cached = (cached_t *) zhashx_lookup (self->cache, key);
    if (cached) {
        cached->used = ++self->clock;
        return cached;
    }
    size_t want = transfer->total - offset < AF_MAX_CHUNK? (size_t) (transfer->total - offset): AF_MAX_CHUNK;
    size_t got = 0;
    if (transfer->fd < 0) {
        int code = self->reader.read (self->reader.arg, transfer->target.account, transfer->hash, offset,
                                      self->raw, want);
        if (code != AF_OK) {
            zsys_error ("transfer: cannot read user data %.16s at %llu: %s", transfer->hash,
                        (unsigned long long) offset, af_code_name (code));
            return NULL;
        }
        got = want;
    }
    while (got < want) {
        ssize_t n = pread (transfer->fd, self->raw + got, want - got, (off_t) (offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            zsys_error ("transfer: cannot read blob %.16s at %llu: %s", transfer->hash,
                        (unsigned long long) (offset + got), n? strerror (errno): "file shrank");
            return NULL;
        }
        got += (size_t) n;
    }
    self->bytes_read += want;
    af_msg_t *msg = af_msg_new (AF_MSG_CHUNK);
    memcpy (msg->hash, transfer->hash, sizeof msg->hash);
    msg->offset = offset;
    msg->total = transfer->total;
    msg->size = (uint32_t) want;
    size_t packed = ZSTD_compressCCtx (self->zstd, self->packed, self->packed_size, self->raw, want, 1);
    msg->zstd = !ZSTD_isError (packed) && packed < want;
    //  The message borrows our buffer for the encoding, then gives it back
    msg->data = msg->zstd? self->packed: self->raw;
    msg->data_size = (uint32_t) (msg->zstd? packed: want);
    zframe_t *frame = af_msg_encode (msg);
    msg->data = NULL;
    af_msg_destroy (&msg);
    if (!frame)
        return NULL;
    //  Evict the least recently used chunk when full
    if (zhashx_size (self->cache) >= AF_CHUNK_CACHE) {
        cached_t *oldest = NULL;
        for (cached_t *c = (cached_t *) zhashx_first (self->cache); c; c = (cached_t *) zhashx_next (self->cache))
            if (!oldest || c->used < oldest->used)
                oldest = c;
        zhashx_delete (self->cache, oldest->key);
    }
    cached = (cached_t *) zmalloc (sizeof (cached_t));
    assert (cached);
    memcpy (cached->key, key, sizeof key);
    //  The ZeroMQ message takes the frame's bytes without copying them
    if (zmq_msg_init_data (&cached->msg, zframe_data (frame), zframe_size (frame), s_frame_free, frame)) {
        zframe_destroy (&frame);
        free (cached);
        return NULL;
    }
    cached->used = ++self->clock;
    zhashx_insert (self->cache, key, cached);
    return cached;
}

//  Remove a transfer from the table, keeping the count of stalled ones
static void
s_remove (af_transfers_t *self, const char *key)
{
    transfer_t *transfer = (transfer_t *) zhashx_lookup (self->transfers, key);
    if (transfer && transfer->stalled)
        self->stalled--;
    zhashx_delete (self->transfers, key);
}

//  Send what the transfer's credit allows, as far as the receiver's queue
//  takes it. Returns true when it finished (the caller removes it) or
//  failed; a full queue stalls it (false).
static bool
s_pump (af_transfers_t *self, transfer_t *transfer)
{
    if (transfer->stalled) {
        transfer->stalled = false;
        self->stalled--;
    }
    uint64_t before = transfer->next;
    bool failed = false;
    while (transfer->credit && transfer->next < transfer->total) {
        cached_t *cached = s_chunk (self, transfer, transfer->next);
        if (!cached) {
            failed = true;
            break;
        }
        //  The routing frame goes first: libzmq refuses it when the
        //  receiver's queue is full, and then nothing of the chunk went
        if (zframe_send (&transfer->routing, self->sock, ZFRAME_MORE | ZFRAME_REUSE)) {
            if (zmq_errno () == EAGAIN) {
                transfer->stalled = true;
                self->stalled++;
            }
            else
                failed = true;          //  the receiver is gone
            break;
        }
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        zmq_msg_copy (&copy, &cached->msg);         //  shares the bytes
        if (zmq_msg_send (&copy, zsock_resolve (self->sock), 0) == -1) {
            zmq_msg_close (&copy);
            zsys_warning ("transfer: cannot send a chunk to %s", transfer->session);
            failed = true;
            break;
        }
        self->chunks_sent++;
        uint64_t size = transfer->total - transfer->next < AF_MAX_CHUNK?
                        transfer->total - transfer->next: AF_MAX_CHUNK;
        transfer->next += size;
        transfer->credit--;
    }
    int64_t now = zclock_mono ();
    if (self->progress && transfer->next != before
    &&  (transfer->next >= transfer->total || now - transfer->progress_at >= AF_PROGRESS_MS)) {
        transfer->progress_at = now;
        self->progress (self->progress_arg, &transfer->target, transfer->next, transfer->total);
    }
    return failed || transfer->next >= transfer->total;
}

int
af_transfers_fetch (af_transfers_t *self, const char *session, zframe_t *routing,
                    const char *hash, uint64_t offset, uint32_t credit, const af_transfer_for_t *target,
                    char *err, size_t errlen)
{
    if (af_hash_from_hex (hash, NULL) != AF_OK) {
        snprintf (err, errlen, "'%s' is not a package hash (64 lowercase hex digits)", hash);
        return AF_E_MALFORMED;
    }
    //  Each is an open file: bounded in all and per connection (a repeated
    //  FETCH of the same file replaces its transfer, so it is not counted)
    char key [64 + AF_HASH_HEX];
    snprintf (key, sizeof key, "%s/%s", session, hash);
    size_t mine = 0, prefix = strlen (session);
    for (transfer_t *other = (transfer_t *) zhashx_first (self->transfers); other;
         other = (transfer_t *) zhashx_next (self->transfers))
        mine += strncmp (other->key, session, prefix) == 0 && other->key [prefix] == '/' && strcmp (other->key, key);
    bool again = zhashx_lookup (self->transfers, key) != NULL;
    if (mine >= AF_MAX_SESSION_TRANSFERS || (!again && zhashx_size (self->transfers) >= AF_MAX_TRANSFERS)) {
        if (mine >= AF_MAX_SESSION_TRANSFERS)
            snprintf (err, errlen, "the broker is sending this connection %d packages already; "
                      "FETCH again once one is done", AF_MAX_SESSION_TRANSFERS);
        else
            snprintf (err, errlen, "the broker is sending %d packages already; FETCH again in a while",
                      AF_MAX_TRANSFERS);
        return AF_E_UNAVAILABLE;
    }
    char path [900];
    int fd = -1;
    errno = ENOENT;
    //  The store's packages, then the user data of the receiver's account
    if (*self->blob_dir) {
        snprintf (path, sizeof path, "%s/blobs/%.2s/%s", self->blob_dir, hash, hash);
        fd = open (path, O_RDONLY | O_CLOEXEC);
    }
    int missing = errno;
    uint64_t total = 0;
    if (fd < 0 && missing == ENOENT && self->reader.size && target && *target->account) {
        int code = self->reader.size (self->reader.arg, target->account, hash, &total);
        if (code != AF_OK) {
            snprintf (err, errlen, "package %.16s... is not in the store", hash);
            return code;
        }
    }
    else {
        if (fd < 0) {
            snprintf (err, errlen, "package %.16s... is not in the store", hash);
            return missing == ENOENT? AF_E_NO_BLOB: AF_E_INTERNAL;
        }
        struct stat st;
        if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
            close (fd);
            snprintf (err, errlen, "cannot read package %.16s...", hash);
            return AF_E_INTERNAL;
        }
        total = (uint64_t) st.st_size;
    }
    if (offset > total) {
        if (fd >= 0)
            close (fd);
        snprintf (err, errlen, "offset %llu is past the end of package %.16s... (%llu bytes)",
                  (unsigned long long) offset, hash, (unsigned long long) total);
        return AF_E_MALFORMED;
    }
    transfer_t *transfer = (transfer_t *) zmalloc (sizeof (transfer_t));
    assert (transfer);
    snprintf (transfer->key, sizeof transfer->key, "%s/%s", session, hash);
    snprintf (transfer->session, sizeof transfer->session, "%s", session);
    memcpy (transfer->hash, hash, sizeof transfer->hash);
    transfer->routing = zframe_dup (routing);
    transfer->fd = fd;
    transfer->total = total;
    transfer->next = offset;
    transfer->credit = credit;
    if (target)
        transfer->target = *target;
    else
        memset (&transfer->target, 0, sizeof transfer->target);
    //  A repeated FETCH replaces the running transfer (the node lost its place)
    s_remove (self, transfer->key);
    if (s_pump (self, transfer)) {
        //  Finished at once (small blob) or failed: nothing to keep
        void *item = transfer;
        s_transfer_free (&item);
        return AF_OK;
    }
    zhashx_insert (self->transfers, transfer->key, transfer);
    return AF_OK;
}

int
af_transfers_credit (af_transfers_t *self, const char *session, const char *hash, uint32_t credit)
{
    char key [64 + AF_HASH_HEX];
    snprintf (key, sizeof key, "%s/%s", session, hash);
    transfer_t *transfer = (transfer_t *) zhashx_lookup (self->transfers, key);
    if (!transfer)
        return AF_E_MALFORMED;
    //  Never more than the protocol's window in flight
    transfer->credit = transfer->credit + credit > AF_MAX_CREDIT? AF_MAX_CREDIT: transfer->credit + credit;
    if (s_pump (self, transfer))
        s_remove (self, key);
    return AF_OK;
}

void
af_transfers_drop (af_transfers_t *self, const char *session)
{
    size_t len = strlen (session);
    zlistx_t *gone = zlistx_new ();
    for (transfer_t *t = (transfer_t *) zhashx_first (self->transfers); t;
         t = (transfer_t *) zhashx_next (self->transfers))
        if (strncmp (t->key, session, len) == 0 && t->key [len] == '/')
            zlistx_add_end (gone, t->key);
    for (const char *key = (const char *) zlistx_first (gone); key; key = (const char *) zlistx_next (gone))
        s_remove (self, key);
    zlistx_destroy (&gone);
}

size_t
af_transfers_stalled (af_transfers_t *self)
{
    assert (self);
    return self->stalled;
}

size_t
af_transfers_resume (af_transfers_t *self)
{
    assert (self);
    if (!self->stalled)
        return 0;
    zlistx_t *waiting = zlistx_new ();
    for (transfer_t *t = (transfer_t *) zhashx_first (self->transfers); t;
         t = (transfer_t *) zhashx_next (self->transfers))
        if (t->stalled)
            zlistx_add_end (waiting, t);
    for (transfer_t *t = (transfer_t *) zlistx_first (waiting); t; t = (transfer_t *) zlistx_next (waiting))
        if (s_pump (self, t))
            zhashx_delete (self->transfers, t->key);        //  no longer stalled: s_pump cleared it
    zlistx_destroy (&waiting);
    return self->stalled;
}

size_t
af_transfers_active (af_transfers_t *self)
{
    return zhashx_size (self->transfers);
}

void
af_transfers_stats (af_transfers_t *self, uint64_t *bytes_read, uint64_t *chunks_sent)
{
    *bytes_read = self->bytes_read;
    *chunks_sent = self->chunks_sent;
}

//  --------------------------------------------------------------------------
//  Self test: each transfer holds a descriptor, so they are bounded

//  User data for the self-test: 300 KiB of one account's, none of another's
static uint8_t *s_test_data;
#define TEST_DATA   (300 * 1024)

static int
s_test_size (void *arg, const char *account, const char *hash, uint64_t *size)
{
    (void) arg;
    (void) hash;
    *size = TEST_DATA;
    return streq (account, "ana")? AF_OK: AF_E_NO_BLOB;
}

static int
s_test_read (void *arg, const char *account, const char *hash, uint64_t offset, uint8_t *buffer, size_t want)
{
    (void) arg;
    (void) hash;
    assert (streq (account, "ana") && offset + want <= TEST_DATA);
    memcpy (buffer, s_test_data + offset, want);
    return AF_OK;
}

void
af_transfers_test (bool verbose)
{
    if (verbose)
        printf (" * af_transfers: ");
    char dir [] = "/tmp/af_transfers_test_XXXXXX";
    assert (mkdtemp (dir));
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router && zsock_bind (router, "inproc://af_transfers_test") == 0);
    zsock_set_router_mandatory (router, 1);
    zsock_t *dealer = zsock_new_dealer (">inproc://af_transfers_test");
    assert (dealer);
    zstr_send (dealer, "hello");
    zframe_t *routing = zframe_recv (router);
    assert (routing);
    char *hello = zstr_recv (router);
    zstr_free (&hello);

    //  Six blobs of one byte each in the store's layout
    char hashes [AF_MAX_SESSION_TRANSFERS + 2][AF_HASH_HEX + 1];
    for (int i = 0; i < AF_MAX_SESSION_TRANSFERS + 2; i++) {
        uint8_t hash [AF_HASH_SIZE];
        randombytes_buf (hash, sizeof hash);
        sodium_bin2hex (hashes [i], sizeof hashes [i], hash, sizeof hash);
        assert (zsys_dir_create ("%s/blobs/%.2s", dir, hashes [i]) == 0);
        char path [PATH_MAX];
        snprintf (path, sizeof path, "%s/blobs/%.2s/%s", dir, hashes [i], hashes [i]);
        FILE *file = fopen (path, "w");
        assert (file && fwrite ("x", 1, 1, file) == 1 && fclose (file) == 0);
    }
    af_transfers_t *transfers = af_transfers_new (router, dir, NULL);
    assert (transfers);
    char err [256];
    //  With no credit nothing is sent: each transfer stays open
    for (int i = 0; i < AF_MAX_SESSION_TRANSFERS; i++)
        assert (af_transfers_fetch (transfers, "s1", routing, hashes [i], 0, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_transfers_active (transfers) == AF_MAX_SESSION_TRANSFERS);
    //  One more to the same connection is refused, for now, and says why
    int code = af_transfers_fetch (transfers, "s1", routing, hashes [AF_MAX_SESSION_TRANSFERS], 0, 0, NULL,
                                   err, sizeof err);
    assert (code == AF_E_UNAVAILABLE && strstr (err, "FETCH again"));
    //  A FETCH again of one it has replaces it: not one more
    assert (af_transfers_fetch (transfers, "s1", routing, hashes [0], 0, 0, NULL, err, sizeof err) == AF_OK);
    assert (af_transfers_active (transfers) == AF_MAX_SESSION_TRANSFERS);
    //  Another connection is not held back by this one
    assert (af_transfers_fetch (transfers, "s2", routing, hashes [AF_MAX_SESSION_TRANSFERS], 0, 0, NULL,
                                err, sizeof err) == AF_OK);
    //  Its own prefix does not count another's ("s1" is not "s10")
    assert (af_transfers_fetch (transfers, "s10", routing, hashes [AF_MAX_SESSION_TRANSFERS + 1], 0, 0, NULL,
                                err, sizeof err) == AF_OK);
    assert (af_transfers_active (transfers) == AF_MAX_SESSION_TRANSFERS + 2);

    af_transfers_destroy (&transfers);
    assert (!transfers);

    //  User data comes through the reader, for the receiver's account only
    s_test_data = (uint8_t *) malloc (TEST_DATA);
    randombytes_buf (s_test_data, TEST_DATA);
    af_transfers_reader_t reader = { s_test_size, s_test_read, NULL };
    transfers = af_transfers_new (router, "", &reader);
    af_transfer_for_t ana = { .account = "ana" }, bob = { .account = "bob" };
    assert (af_transfers_fetch (transfers, "s1", routing, hashes [0], 0, 2, &bob, err, sizeof err) == AF_E_NO_BLOB);
    assert (af_transfers_fetch (transfers, "s1", routing, hashes [0], 0, 2, &ana, err, sizeof err) == AF_OK);
    uint8_t *got = (uint8_t *) malloc (TEST_DATA);
    uint64_t received = 0;
    for (int chunk = 0; chunk < 2; chunk++) {
        zmsg_t *sent = zmsg_recv (dealer);
        assert (sent && zmsg_size (sent) == 1);
        zframe_t *frame = zmsg_first (sent);
        af_msg_t *msg = NULL;
        assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err, NULL, NULL) == AF_OK);
        assert (msg->id == AF_MSG_CHUNK && msg->offset == received && msg->total == TEST_DATA);
        size_t size = msg->size;
        if (msg->zstd)
            assert (ZSTD_decompress (got + received, TEST_DATA - received, msg->data, msg->data_size) == size);
        else
            memcpy (got + received, msg->data, size);
        received += size;
        af_msg_destroy (&msg);
        zmsg_destroy (&sent);
    }
    assert (received == TEST_DATA && memcmp (got, s_test_data, TEST_DATA) == 0);
    free (got);
    af_transfers_destroy (&transfers);
    free (s_test_data);
    zframe_destroy (&routing);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
    zdir_t *tree = zdir_new (dir, NULL);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    if (verbose)
        printf ("OK\n");
}
