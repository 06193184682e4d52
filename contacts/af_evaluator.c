/*  =========================================================================
    af_evaluator - the contacts service's key and its answer (see
    af_evaluator.h)
    =========================================================================
*/
#include "af_evaluator.h"
#include "af_worker.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

//  The key file: the key in hex and a newline
#define KEY_FILE_SIZE   (2 * AF_OPRF_SCALAR_SIZE + 1)

struct _af_evaluator_t {
    uint8_t *key;                           //  sodium_malloc'd, read-only
    char key_id [AF_OPRF_KEY_ID_HEX + 1];
};

//  Write a new key file at path: a temporary file beside it, synced, then
//  linked into place (link fails if path exists, so two starts cannot both
//  make one). AF_OK, or AF_E_INTERNAL with err.
static int
s_make_key (const char *path, char *err, size_t errlen)
{
    char why [600];
    if (af_worker_make_parent (path, why, sizeof why) != AF_OK) {
        snprintf (err, errlen, "cannot make the key file %s: %s", path, why);
        return AF_E_INTERNAL;
    }
    char temp [1100];
    snprintf (temp, sizeof temp, "%s.new-XXXXXX", path);
    int fd = mkstemp (temp);                //  mode 0600
    if (fd < 0) {
        snprintf (err, errlen, "cannot make the key file %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    uint8_t key [AF_OPRF_SCALAR_SIZE];
    char text [KEY_FILE_SIZE + 1];
    af_oprf_keygen (key);
    sodium_bin2hex (text, sizeof text, key, sizeof key);
    text [KEY_FILE_SIZE - 1] = '\n';
    bool written = fchmod (fd, 0600) == 0 && write (fd, text, KEY_FILE_SIZE) == KEY_FILE_SIZE
                && fsync (fd) == 0;
    int saved = errno;
    sodium_memzero (key, sizeof key);
    sodium_memzero (text, sizeof text);
    if (close (fd) || !written || link (temp, path)) {
        if (written)
            saved = errno;
        unlink (temp);
        snprintf (err, errlen, "cannot make the key file %s: %s", path, strerror (saved));
        return AF_E_INTERNAL;
    }
    unlink (temp);
    //  The new name is durable once its directory is
    char dir [1100];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash)
        *(slash == dir? slash + 1: slash) = 0;
    else
        snprintf (dir, sizeof dir, ".");
    int dirfd = open (dir, O_RDONLY | O_DIRECTORY);
    if (dirfd >= 0) {
        fsync (dirfd);
        close (dirfd);
    }
    return AF_OK;
}

//  Read the key file into key. AF_OK, or AF_E_MALFORMED (what it holds, or
//  its mode, is refused) or AF_E_INTERNAL (cannot read it), with err
static int
s_read_key (const char *path, uint8_t key [AF_OPRF_SCALAR_SIZE], char *err, size_t errlen)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st)) {
        snprintf (err, errlen, "cannot read the key file %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return AF_E_INTERNAL;
    }
    int rc = AF_E_MALFORMED;
    char text [KEY_FILE_SIZE + 2];
    ssize_t size = -1;
    if (!S_ISREG (st.st_mode))
        snprintf (err, errlen, "the key file %s is not a regular file", path);
    else
    if (st.st_mode & 077)
        snprintf (err, errlen, "the key file %s may be read or written by others (mode %04o): chmod 600 it",
                  path, (unsigned) (st.st_mode & 07777));
    else
    if ((size = read (fd, text, sizeof text)) < 0) {
        snprintf (err, errlen, "cannot read the key file %s: %s", path, strerror (errno));
        rc = AF_E_INTERNAL;
    }
    else {
        size_t len = 0;
        if (size != KEY_FILE_SIZE || text [KEY_FILE_SIZE - 1] != '\n'
        ||  sodium_hex2bin (key, AF_OPRF_SCALAR_SIZE, text, KEY_FILE_SIZE - 1, NULL, &len, NULL) != 0
        ||  len != AF_OPRF_SCALAR_SIZE)
            snprintf (err, errlen, "the key file %s does not hold one key (64 hex digits and a newline)", path);
        else
        if (af_oprf_key_check (key) != AF_OK)
            snprintf (err, errlen, "the key file %s holds no valid key (not a reduced nonzero scalar)", path);
        else
            rc = AF_OK;
    }
    close (fd);
    sodium_memzero (text, sizeof text);
    if (rc != AF_OK)
        sodium_memzero (key, AF_OPRF_SCALAR_SIZE);
    return rc;
}

af_evaluator_t *
af_evaluator_new (const char *path, bool *created, char *err, size_t errlen)
{
    assert (path && err);
    if (created)
        *created = false;
    if (sodium_init () < 0) {
        snprintf (err, errlen, "libsodium did not start");
        return NULL;
    }
    struct stat st;
    if (lstat (path, &st) && errno == ENOENT) {
        if (s_make_key (path, err, errlen) != AF_OK)
            return NULL;
        if (created)
            *created = true;
    }
    af_evaluator_t *self = (af_evaluator_t *) calloc (1, sizeof (af_evaluator_t));
    uint8_t *key = (uint8_t *) sodium_malloc (AF_OPRF_SCALAR_SIZE);
    if (!self || !key) {
        snprintf (err, errlen, "out of memory");
        free (self);
        sodium_free (key);
        return NULL;
    }
    if (s_read_key (path, key, err, errlen) != AF_OK) {
        sodium_free (key);
        free (self);
        return NULL;
    }
    sodium_mprotect_readonly (key);
    self->key = key;
    af_oprf_key_id (self->key, self->key_id);
    return self;
}

void
af_evaluator_destroy (af_evaluator_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sodium_free ((*self_p)->key);       //  wipes it
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
af_evaluator_key_id (af_evaluator_t *self)
{
    assert (self);
    return self->key_id;
}

af_msg_t *
af_evaluator_answer (af_evaluator_t *self, const af_msg_t *request)
{
    assert (self && request);
    const uint8_t *rid = request->has_rid? request->rid: NULL;
    af_msg_t *reply;
    if (!rid)
        reply = af_msg_error (AF_E_MALFORMED, NULL, "CONTACTS_EVAL to a worker needs a rid");
    else
    if (request->element_count == 0 || request->element_count > AF_MAX_CONTACTS_EVAL || !request->elements)
        reply = af_msg_error (AF_E_MALFORMED, rid, "CONTACTS_EVAL carries 1 to %d elements, not %u",
                              AF_MAX_CONTACTS_EVAL, request->element_count);
    else {
        //  Evaluating checks each element (af_oprf_evaluate refuses what
        //  af_oprf_element_check refuses); the first refusal throws the
        //  whole answer away, so none is evaluated for the node
        reply = af_msg_new (AF_MSG_CONTACTS_EVALUATED);
        assert (reply);
        reply->has_rid = true;
        memcpy (reply->rid, rid, AF_ID_SIZE);
        af_msg_set_element_count (reply, request->element_count);
        for (uint32_t i = 0; i < request->element_count; i++)
            if (af_oprf_evaluate (self->key, request->elements [i], reply->elements [i]) != AF_OK) {
                af_msg_destroy (&reply);
                reply = af_msg_error (AF_E_MALFORMED, rid, "element %u is not a valid ristretto255 element", i);
                break;
            }
        if (reply->id == AF_MSG_CONTACTS_EVALUATED)
            snprintf (reply->key_id, sizeof reply->key_id, "%s", self->key_id);
    }
    assert (reply);
    return reply;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_write (const char *path, const char *text, size_t size, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert (fd >= 0);
    assert (write (fd, text, size) == (ssize_t) size);
    assert (fchmod (fd, mode) == 0);
    close (fd);
}

//  The key file: made once, whole and private; read back the same; refused
//  when open to others, malformed, or not a key
static void
s_test_key_file (const char *dir)
{
    char path [256], err [1200], other [256];
    snprintf (path, sizeof path, "%s/keys/oprf.key", dir);
    bool created = false;
    af_evaluator_t *evaluator = af_evaluator_new (path, &created, err, sizeof err);
    assert (evaluator && created);
    char id [AF_OPRF_KEY_ID_HEX + 1];
    snprintf (id, sizeof id, "%s", af_evaluator_key_id (evaluator));
    af_evaluator_destroy (&evaluator);
    assert (evaluator == NULL);
    struct stat st;
    assert (stat (path, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0777) == 0600);
    assert (st.st_size == KEY_FILE_SIZE);
    snprintf (other, sizeof other, "%s/keys", dir);
    assert (stat (other, &st) == 0 && (st.st_mode & 0777) == 0700);
    //  Nothing else was left in the directory (the temporary file is gone)
    DIR *handle = opendir (other);
    assert (handle);
    int entries = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)))
        entries += entry->d_name [0] != '.';
    closedir (handle);
    assert (entries == 1);
    //  Second start: the same key
    evaluator = af_evaluator_new (path, &created, err, sizeof err);
    assert (evaluator && !created && streq (af_evaluator_key_id (evaluator), id));
    af_evaluator_destroy (&evaluator);

    //  Open to the group: refused, saying how to fix it
    assert (chmod (path, 0640) == 0);
    assert (!af_evaluator_new (path, NULL, err, sizeof err));
    assert (strstr (err, "may be read or written by others (mode 0640): chmod 600 it"));
    assert (chmod (path, 0600) == 0);
    //  Malformed contents
    snprintf (other, sizeof other, "%s/bad.key", dir);
    const char *bad [] = {
        "",                                                                     //  empty
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddee0f",     //  no newline
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddee0f\n\n", //  more
        "0011223344556677 899aabbccddeeff00112233445566778899aabbccddee0f\n",   //  not hex
        NULL };
    for (int i = 0; bad [i]; i++) {
        s_write (other, bad [i], strlen (bad [i]), 0600);
        assert (!af_evaluator_new (other, NULL, err, sizeof err) && strstr (err, "does not hold one key"));
    }
    //  Hex, but not a key: zero, and the group order
    s_write (other, "0000000000000000000000000000000000000000000000000000000000000000\n", KEY_FILE_SIZE, 0600);
    assert (!af_evaluator_new (other, NULL, err, sizeof err) && strstr (err, "no valid key"));
    s_write (other, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010\n", KEY_FILE_SIZE, 0600);
    assert (!af_evaluator_new (other, NULL, err, sizeof err) && strstr (err, "no valid key"));
    //  A directory; a path through a file
    assert (!af_evaluator_new (dir, NULL, err, sizeof err) && strstr (err, "not a regular file"));
    snprintf (path, sizeof path, "%s/bad.key/oprf.key", dir);
    assert (!af_evaluator_new (path, NULL, err, sizeof err) && strstr (err, "cannot read the key file")
            && strstr (err, "Not a directory"));
    unlink (other);
}

//  A node blinds, the evaluator answers, the node finalizes: the outputs
//  are the direct evaluation's under the file's key, in order, and the
//  key ID comes along
static void
s_test_answer (const char *dir)
{
    char path [256], err [1200];
    snprintf (path, sizeof path, "%s/keys/oprf.key", dir);
    af_evaluator_t *evaluator = af_evaluator_new (path, NULL, err, sizeof err);
    assert (evaluator);
    const char *numbers [] = { "+491701234567", "+14155550132", "+8613800138000" };
    uint8_t blinds [3][AF_OPRF_SCALAR_SIZE];
    af_msg_t *request = af_msg_new (AF_MSG_CONTACTS_EVAL);
    assert (request);
    af_msg_set_rid_random (request);
    af_msg_set_element_count (request, 3);
    for (int i = 0; i < 3; i++)
        assert (af_oprf_blind ((const uint8_t *) numbers [i], strlen (numbers [i]), blinds [i],
                               request->elements [i]) == AF_OK);
    af_msg_t *reply = af_evaluator_answer (evaluator, request);
    assert (reply->id == AF_MSG_CONTACTS_EVALUATED && reply->has_rid);
    assert (memcmp (reply->rid, request->rid, AF_ID_SIZE) == 0);
    assert (reply->element_count == 3 && streq (reply->key_id, af_evaluator_key_id (evaluator)));
    //  The direct evaluation needs the key: read it as the service does
    uint8_t key [AF_OPRF_SCALAR_SIZE];
    assert (s_read_key (path, key, err, sizeof err) == AF_OK);
    for (int i = 0; i < 3; i++) {
        uint8_t output [AF_OPRF_OUTPUT_SIZE], direct [AF_OPRF_OUTPUT_SIZE];
        assert (af_oprf_finalize ((const uint8_t *) numbers [i], strlen (numbers [i]), blinds [i],
                                  reply->elements [i], output) == AF_OK);
        assert (af_oprf_evaluate_direct (key, (const uint8_t *) numbers [i], strlen (numbers [i]), direct) == AF_OK);
        assert (memcmp (output, direct, sizeof output) == 0);
    }
    sodium_memzero (key, sizeof key);
    af_msg_destroy (&reply);

    //  One bad element among good ones: ERROR 400 naming it, nothing evaluated
    memset (request->elements [1], 0, AF_OPRF_ELEMENT_SIZE);           //  the identity
    reply = af_evaluator_answer (evaluator, request);
    assert (reply->id == AF_MSG_ERROR && reply->code == AF_E_MALFORMED && reply->has_rid);
    assert (streq (reply->reason, "element 1 is not a valid ristretto255 element"));
    af_msg_destroy (&reply);
    request->elements [1][31] = 0x80;                                   //  top bit: not canonical
    reply = af_evaluator_answer (evaluator, request);
    assert (reply->id == AF_MSG_ERROR && strstr (reply->reason, "element 1 "));
    af_msg_destroy (&reply);
    //  No rid; no elements
    request->has_rid = false;
    reply = af_evaluator_answer (evaluator, request);
    assert (reply->id == AF_MSG_ERROR && !reply->has_rid && strstr (reply->reason, "needs a rid"));
    af_msg_destroy (&reply);
    request->has_rid = true;
    af_msg_set_element_count (request, 0);
    reply = af_evaluator_answer (evaluator, request);
    assert (reply->id == AF_MSG_ERROR && strstr (reply->reason, "1 to 1000 elements, not 0"));
    af_msg_destroy (&reply);
    af_msg_destroy (&request);
    af_evaluator_destroy (&evaluator);
}

void
af_evaluator_test (bool verbose)
{
    if (verbose)
        printf (" * af_evaluator: ");
    char dir [] = "/tmp/af_evaluator_test.XXXXXX";
    assert (mkdtemp (dir));
    s_test_key_file (dir);
    s_test_answer (dir);
    char path [256];
    snprintf (path, sizeof path, "%s/keys/oprf.key", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/keys", dir);
    rmdir (path);
    assert (rmdir (dir) == 0);
    if (verbose)
        printf ("OK\n");
}
