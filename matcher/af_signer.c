/*  =========================================================================
    af_signer - a catalog's trust: who may publish, and the store's key

    Everything is read and checked at open, so an import that runs for
    10,000 packages checks each signature against keys in memory. The
    documents are checked against the root public key in meta/root.pub,
    which `trust` installed from a file the operator gave: the catalog,
    like the device, trusts nothing the root did not sign.
    =========================================================================
*/
#include <czmq.h>
#include "af_signer.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <sys/stat.h>

struct _af_signer_t {
    char dir [3000];
    af_minisign_pub_t root_pub;
    af_trust_root_t root;
    af_trust_publishers_t pubs;
    bool has_store_key;
    af_minisign_sec_t store_sec;
};

//  Read and verify one root-signed document of dir/meta
static int
s_load (const char *meta, const char *name, const af_minisign_pub_t *root_pub, char **text, size_t *len,
        char *err, size_t errlen)
{
    char path [3100];
    snprintf (path, sizeof path, "%s/%s", meta, name);
    return af_trust_load_signed (path, root_pub, 1, text, len, err, errlen);
}

//  The root and publishers documents in meta, checked by root_pub
static int
s_load_root (const char *meta, const af_minisign_pub_t *root_pub, af_trust_root_t *root,
             af_trust_publishers_t *pubs, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len;
    int code = s_load (meta, "root.json", root_pub, &text, &len, err, errlen);
    if (code == AF_OK)
        code = af_trust_root_parse (text, len, root, err, errlen);
    free (text);
    text = NULL;
    if (code == AF_OK)
        code = s_load (meta, "publishers.json", root_pub, &text, &len, err, errlen);
    if (code == AF_OK)
        code = af_trust_publishers_parse (text, len, pubs, err, errlen);
    free (text);
    return code;
}

int
af_signer_open (const char *catalog_dir, af_signer_t **signer, char *err, size_t errlen)
{
    *signer = NULL;
    char path [3100], meta [3050];
    snprintf (meta, sizeof meta, "%s/meta", catalog_dir);
    snprintf (path, sizeof path, "%s/root.pub", meta);
    struct stat st;
    if (stat (path, &st) && errno == ENOENT)
        return AF_OK;                   //  no trust installed
    af_signer_t *self = (af_signer_t *) zmalloc (sizeof (af_signer_t));
    assert (self);
    snprintf (self->dir, sizeof self->dir, "%s", catalog_dir);
    int code = af_minisign_pub_load (path, &self->root_pub, err, errlen);
    if (code == AF_OK)
        code = s_load_root (meta, &self->root_pub, &self->root, &self->pubs, err, errlen);
    snprintf (path, sizeof path, "%s/keys/store.key", catalog_dir);
    if (code == AF_OK && stat (path, &st) == 0) {
        code = af_minisign_sec_load (path, &self->store_sec, err, errlen);
        self->has_store_key = code == AF_OK;
    }
    if (code != AF_OK)
        af_signer_destroy (&self);
    *signer = self;
    return code;
}

void
af_signer_destroy (af_signer_t **self_p)
{
    assert (self_p);
    af_signer_t *self = *self_p;
    if (self) {
        af_trust_publishers_free (&self->pubs);
        sodium_memzero (&self->store_sec, sizeof self->store_sec);
        free (self);
        *self_p = NULL;
    }
}

int
af_signer_check_file (af_signer_t *self, const char *program, const char *path, uint8_t *key_id,
                      char *err, size_t errlen)
{
    assert (self);
    char sig_path [4200], id [AF_MINISIGN_KEYID_HEX + 1], inner [300];
    snprintf (sig_path, sizeof sig_path, "%s.minisig", path);
    FILE *file = fopen (sig_path, "rb");
    if (!file)
        return snprintf (err, errlen, "no publisher signature %s: %s (sign it: minisign -S -m FILE, "
                         "or appferry-catalog sign)", sig_path, strerror (errno)), AF_E_FORBIDDEN;
    char sig [AF_MAX_SIGNATURE + 1];
    size_t sig_len = fread (sig, 1, sizeof sig, file);
    fclose (file);
    if (sig_len > AF_MAX_SIGNATURE || af_minisign_sig_key_id (sig, sig_len, key_id) != AF_OK)
        return snprintf (err, errlen, "%s is not a minisign signature", sig_path), AF_E_MALFORMED;
    af_minisign_id (key_id, id);
    const af_publisher_t *publisher = af_trust_publisher_find (&self->pubs, key_id);
    if (!publisher)
        return snprintf (err, errlen, "%s is signed by key %s, which is no trusted publisher's", path, id),
               AF_E_FORBIDDEN;
    if (!af_trust_publisher_allows (publisher, program))
        return snprintf (err, errlen, "publisher '%s' (key %s) is not trusted for program '%s'",
                         publisher->name, id, program), AF_E_FORBIDDEN;
    uint8_t digest [64];
    int code = af_minisign_hash_file (path, digest, NULL, err, errlen);
    if (code != AF_OK)
        return code;
    //  A legacy signature needs the bytes themselves: refused, so that a
    //  package is never read whole into memory
    code = af_minisign_verify (&publisher->key, NULL, 1, digest, sig, sig_len, NULL, 0, inner, sizeof inner);
    if (code != AF_OK)
        return snprintf (err, errlen, "%s: publisher '%s' signature: %s", path, publisher->name, inner),
               code == AF_E_MALFORMED? AF_E_MALFORMED: AF_E_FORBIDDEN;
    return AF_OK;
}

int
af_signer_targets (af_signer_t *self, const char *program, const af_target_entry_t *targets, size_t count,
                   uint64_t expires_s, uint64_t *version, char *err, size_t errlen)
{
    assert (self);
    if (!self->has_store_key)
        return snprintf (err, errlen, "the catalog has no store key (appferry-catalog keygen --store)"), AF_E_FORBIDDEN;
    af_minisign_pub_t pub;
    af_minisign_public (&self->store_sec, &pub);
    bool listed = false;
    for (size_t i = 0; i < self->root.store_count && !listed; i++)
        listed = memcmp (&self->root.store [i], &pub, sizeof pub) == 0;
    if (!listed) {
        char id [AF_MINISIGN_KEYID_HEX + 1];
        af_minisign_id (pub.key_id, id);
        return snprintf (err, errlen, "the store key %s is not one root.json lists: have the root sign it "
                         "(appferry-catalog root-sign --store-key keys/store.pub)", id), AF_E_FORBIDDEN;
    }
    char path [3200];
    snprintf (path, sizeof path, "%s/meta/targets", self->dir);
    if (zsys_dir_create ("%s", path))
        return snprintf (err, errlen, "cannot create %s: %s", path, strerror (errno)), AF_E_INTERNAL;
    snprintf (path, sizeof path, "%s/meta/targets/%s.json", self->dir, program);
    uint64_t expires = (uint64_t) zclock_time () + expires_s * 1000;
    char *text = af_trust_targets_make (path, program, targets, count, expires, version);
    if (!text)
        return snprintf (err, errlen, "the targets of '%s' are over %d bytes", program, AF_MAX_META), AF_E_TOO_BIG;
    int code = af_trust_write_signed (path, text, &self->store_sec, err, errlen);
    free (text);
    return code;
}

//  Copy src to dest whole
static int
s_copy (const char *src, const char *dest, char *err, size_t errlen)
{
    FILE *in = fopen (src, "rb");
    if (!in)
        return snprintf (err, errlen, "cannot read %s: %s", src, strerror (errno)), AF_E_INTERNAL;
    char *text = (char *) malloc (AF_MAX_META_DOC + 1);
    assert (text);
    size_t len = fread (text, 1, AF_MAX_META_DOC + 1, in);
    fclose (in);
    char tmp [3200];
    snprintf (tmp, sizeof tmp, "%s.tmp", dest);
    FILE *out = len <= AF_MAX_META_DOC? fopen (tmp, "wb"): NULL;
    bool ok = out && fwrite (text, 1, len, out) == len && fflush (out) == 0 && fsync (fileno (out)) == 0;
    if (out)
        ok = fclose (out) == 0 && ok;
    free (text);
    if (!ok || rename (tmp, dest)) {
        snprintf (err, errlen, "cannot write %s: %s", dest, strerror (errno));
        unlink (tmp);
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

int
af_signer_install (const char *catalog_dir, const char *root_pub_path, const char *src_dir,
                   char *err, size_t errlen)
{
    af_minisign_pub_t root_pub;
    af_trust_root_t root, old_root;
    af_trust_publishers_t pubs, old_pubs;
    char meta [3050], src [3200], dest [3200];
    int code = af_minisign_pub_load (root_pub_path, &root_pub, err, errlen);
    if (code == AF_OK)
        code = s_load_root (src_dir, &root_pub, &root, &pubs, err, errlen);
    if (code != AF_OK)
        return code;
    snprintf (meta, sizeof meta, "%s/meta", catalog_dir);
    af_signer_t *current = NULL;
    char inner [300];
    if (af_signer_open (catalog_dir, &current, inner, sizeof inner) == AF_OK && current) {
        old_root = current->root;
        old_pubs = current->pubs;
        bool older = root.version < old_root.version || pubs.version < old_pubs.version
                  || memcmp (&current->root_pub, &root_pub, sizeof root_pub);
        af_signer_destroy (&current);
        if (older) {
            af_trust_publishers_free (&pubs);
            return snprintf (err, errlen, "refused: the installed root key or document versions (root %llu, "
                             "publishers %llu) are newer or another root's", (unsigned long long) old_root.version,
                             (unsigned long long) old_pubs.version), AF_E_FORBIDDEN;
        }
    }
    af_trust_publishers_free (&pubs);
    if (zsys_dir_create ("%s", meta))
        return snprintf (err, errlen, "cannot create %s: %s", meta, strerror (errno)), AF_E_INTERNAL;
    static const char *files [] = { "root.json", "publishers.json", "root.json.minisig", "publishers.json.minisig" };
    for (int i = 0; i < 4 && code == AF_OK; i++) {
        snprintf (src, sizeof src, "%s/%s", src_dir, files [i]);
        snprintf (dest, sizeof dest, "%s/%s", meta, files [i]);
        code = s_copy (src, dest, err, errlen);
    }
    snprintf (dest, sizeof dest, "%s/root.pub", meta);
    if (code == AF_OK)
        code = af_minisign_pub_save (dest, &root_pub, err, errlen);
    return code;
}

//  --------------------------------------------------------------------------
//  Self test

void
af_signer_test (bool verbose)
{
    printf (" * af_signer: ");
    char dir [] = "/tmp/af_signer_test.XXXXXX", path [600], err [400], *text;
    assert (mkdtemp (dir));
    af_signer_t *signer;
    assert (af_signer_open (dir, &signer, err, sizeof err) == AF_OK && !signer);

    af_minisign_pub_t root_pub, store_pub, pub_a, pub_b;
    af_minisign_sec_t root_sec, store_sec, sec_a, sec_b;
    af_minisign_keygen (&root_pub, &root_sec);
    af_minisign_keygen (&store_pub, &store_sec);
    af_minisign_keygen (&pub_a, &sec_a);
    af_minisign_keygen (&pub_b, &sec_b);
    assert (zsys_dir_create ("%s/src", dir) == 0 && zsys_dir_create ("%s/keys", dir) == 0);
    snprintf (path, sizeof path, "%s/keys/store.key", dir);
    assert (af_minisign_sec_save (path, &store_sec, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/a.pub", dir);
    assert (af_minisign_pub_save (path, &pub_a, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/root.pub", dir);
    assert (af_minisign_pub_save (path, &root_pub, err, sizeof err) == AF_OK);
    //  The root signs: the store key, and publisher A for weixin only
    snprintf (path, sizeof path, "%s/publishers-in.json", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "[{\"name\": \"Tencent\", \"key\": \"a.pub\", \"programs\": [\"weixin\", \"com.tencent.*\"]}]");
    fclose (file);
    snprintf (path, sizeof path, "%s/publishers-in.json", dir);
    uint64_t far = (uint64_t) zclock_time () + 86400000;
    assert (af_trust_publishers_make (path, 1, far, &text, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/src/publishers.json", dir);
    assert (af_trust_write_signed (path, text, &root_sec, err, sizeof err) == AF_OK);
    free (text);
    af_trust_root_make (&store_pub, 1, 1, far, &text);
    snprintf (path, sizeof path, "%s/src/root.json", dir);
    assert (af_trust_write_signed (path, text, &root_sec, err, sizeof err) == AF_OK);
    free (text);
    char src [600], root_path [600];
    snprintf (src, sizeof src, "%s/src", dir);
    snprintf (root_path, sizeof root_path, "%s/root.pub", dir);
    assert (af_signer_install (dir, root_path, src, err, sizeof err) == AF_OK);
    assert (af_signer_open (dir, &signer, err, sizeof err) == AF_OK && signer);

    //  Package files signed by A, by B, unsigned, tampered
    snprintf (path, sizeof path, "%s/pkg", dir);
    file = fopen (path, "w");
    assert (file);
    fputs ("package bytes", file);
    fclose (file);
    char *sig = af_minisign_sign (&sec_a, "package bytes", 13, "by a");
    char sig_path [700];
    snprintf (sig_path, sizeof sig_path, "%s.minisig", path);
    file = fopen (sig_path, "w");
    fputs (sig, file);
    fclose (file);
    free (sig);
    uint8_t key_id [8];
    assert (af_signer_check_file (signer, "weixin", path, key_id, err, sizeof err) == AF_OK
            && memcmp (key_id, pub_a.key_id, 8) == 0);
    assert (af_signer_check_file (signer, "com.tencent.qq", path, key_id, err, sizeof err) == AF_OK);
    assert (af_signer_check_file (signer, "telegram", path, key_id, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "not trusted for program 'telegram'"));
    file = fopen (path, "a");
    fputs ("!", file);
    fclose (file);
    assert (af_signer_check_file (signer, "weixin", path, key_id, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "does not match"));
    sig = af_minisign_sign (&sec_b, "package bytes!", 14, "by b");
    file = fopen (sig_path, "w");
    fputs (sig, file);
    fclose (file);
    free (sig);
    assert (af_signer_check_file (signer, "weixin", path, key_id, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "no trusted publisher"));
    unlink (sig_path);
    assert (af_signer_check_file (signer, "weixin", path, key_id, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "no publisher signature"));
    if (verbose)
        printf ("(%s) ", err);

    //  Targets: versions rise
    af_target_entry_t t = { "android", 1, "1.0", "", 13, "" };
    memset (t.hash, 'c', AF_HASH_HEX);
    uint64_t version;
    assert (af_signer_targets (signer, "weixin", &t, 1, 60, &version, err, sizeof err) == AF_OK && version == 1);
    assert (af_signer_targets (signer, "weixin", &t, 1, 60, &version, err, sizeof err) == AF_OK && version == 2);
    af_signer_destroy (&signer);
    //  A store key the root does not list cannot sign targets
    af_minisign_keygen (&store_pub, &store_sec);
    snprintf (path, sizeof path, "%s/keys/store.key", dir);
    assert (af_minisign_sec_save (path, &store_sec, err, sizeof err) == AF_OK);
    assert (af_signer_open (dir, &signer, err, sizeof err) == AF_OK);
    assert (af_signer_targets (signer, "weixin", &t, 1, 60, &version, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "not one root.json lists"));
    af_signer_destroy (&signer);
    //  Installing older documents, or another root's, is refused
    af_minisign_pub_t other_pub;
    af_minisign_sec_t other_sec;
    af_minisign_keygen (&other_pub, &other_sec);
    assert (af_signer_install (dir, root_path, src, err, sizeof err) == AF_OK);     //  same versions: fine
    snprintf (root_path, sizeof root_path, "%s/other.pub", dir);
    assert (af_minisign_pub_save (root_path, &other_pub, err, sizeof err) == AF_OK);
    assert (af_signer_install (dir, root_path, src, err, sizeof err) != AF_OK);
    char cmd [700];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert (system (cmd) == 0);
    printf ("OK\n");
}
