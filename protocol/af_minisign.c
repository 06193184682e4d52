/*  =========================================================================
    af_minisign - Ed25519 signatures in minisign's formats

    Why minisign: it is a small, documented format with a maintained tool
    in Debian, so a publisher needs nothing of ours to sign, and a person
    can check any of the store's files with `minisign -V`. We write only
    the prehashed form ("ED"), which minisign has made by default since
    0.10, and read both. Everything read is hostile: each line is bounded,
    the base64 must decode to exactly the structure's size, and the
    algorithm bytes must be the ones we know.
    =========================================================================
*/
#include <czmq.h>
#include "af_minisign.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_PUB_SIZE  42                  //  "Ed", key ID, public key
#define S_SEC_SIZE  158
#define S_SIG_SIZE  74                  //  algorithm, key ID, signature
#define S_LINE      2048                //  longest line read

void
af_minisign_keygen (af_minisign_pub_t *pub, af_minisign_sec_t *sec)
{
    assert (pub && sec);
    randombytes_buf (sec->key_id, sizeof sec->key_id);
    crypto_sign_keypair (pub->pk, sec->sk);
    memcpy (pub->key_id, sec->key_id, sizeof pub->key_id);
}

void
af_minisign_public (const af_minisign_sec_t *sec, af_minisign_pub_t *pub)
{
    assert (sec && pub);
    memcpy (pub->key_id, sec->key_id, sizeof pub->key_id);
    crypto_sign_ed25519_sk_to_pk (pub->pk, sec->sk);
}

void
af_minisign_id (const uint8_t *key_id, char *hex)
{
    static const char digits [] = "0123456789ABCDEF";
    for (int i = 0; i < AF_MINISIGN_KEYID_SIZE; i++) {
        uint8_t byte = key_id [AF_MINISIGN_KEYID_SIZE - 1 - i];
        hex [2 * i] = digits [byte >> 4];
        hex [2 * i + 1] = digits [byte & 15];
    }
    hex [AF_MINISIGN_KEYID_HEX] = 0;
}

//  The next line of text (without its "\n" or "\r\n") into line. Returns
//  false at the end or for a line longer than size - 1.
static bool
s_line (const char **text, const char *end, char *line, size_t size)
{
    const char *p = *text;
    if (p >= end)
        return false;
    const char *nl = memchr (p, '\n', (size_t) (end - p));
    size_t len = (size_t) ((nl? nl: end) - p);
    *text = nl? nl + 1: end;
    if (len && p [len - 1] == '\r')
        len--;
    if (len >= size || memchr (p, 0, len))
        return false;
    memcpy (line, p, len);
    line [len] = 0;
    return true;
}

//  Decode base64 into exactly size bytes. 0 or -1.
static int
s_b64 (const char *line, uint8_t *out, size_t size)
{
    size_t got = 0;
    if (sodium_base642bin (out, size, line, strlen (line), NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL)
    ||  got != size)
        return -1;
    return 0;
}

int
af_minisign_pub_parse (const char *text, size_t len, af_minisign_pub_t *pub, char *err, size_t errlen)
{
    assert (text && pub);
    const char *p = text, *end = text + len;
    char line [S_LINE];
    if (!s_line (&p, end, line, sizeof line)) {
        snprintf (err, errlen, "not a minisign public key: empty, or a line too long");
        return AF_E_MALFORMED;
    }
    if (strncmp (line, "untrusted comment:", 18) == 0 && !s_line (&p, end, line, sizeof line)) {
        snprintf (err, errlen, "not a minisign public key: no key after the comment");
        return AF_E_MALFORMED;
    }
    uint8_t raw [S_PUB_SIZE];
    if (s_b64 (line, raw, sizeof raw) || raw [0] != 'E' || raw [1] != 'd') {
        snprintf (err, errlen, "not a minisign public key: expected base64 of 'Ed', a key ID and an Ed25519 key");
        return AF_E_MALFORMED;
    }
    memcpy (pub->key_id, raw + 2, AF_MINISIGN_KEYID_SIZE);
    memcpy (pub->pk, raw + 10, 32);
    return AF_OK;
}

void
af_minisign_pub_base64 (const af_minisign_pub_t *pub, char *b64)
{
    uint8_t raw [S_PUB_SIZE] = { 'E', 'd' };
    memcpy (raw + 2, pub->key_id, AF_MINISIGN_KEYID_SIZE);
    memcpy (raw + 10, pub->pk, 32);
    sodium_bin2base64 (b64, AF_MINISIGN_PUB_B64 + 1, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
}

//  A whole file of at most max bytes, NUL-terminated, in a new buffer
//  (*len its size), or NULL with err and *code: AF_E_NO_BLOB (no such
//  file), AF_E_TOO_BIG, AF_E_INTERNAL
char *
af_file_read (const char *path, size_t max, size_t *len, int *code, char *err, size_t errlen)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
        *code = errno == ENOENT? AF_E_NO_BLOB: AF_E_INTERNAL;
        return NULL;
    }
    char *text = (char *) malloc (max + 1);
    assert (text);
    *len = fread (text, 1, max + 1, file);
    bool failed = ferror (file);
    fclose (file);
    if (failed || *len > max) {
        snprintf (err, errlen, "%s: %s", path, failed? "cannot read it": "too large");
        *code = failed? AF_E_INTERNAL: AF_E_TOO_BIG;
        free (text);
        return NULL;
    }
    text [*len] = 0;
    return text;
}

int
af_file_write (const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
    char tmp [4200], dir [4200];
    if (snprintf (tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp) {
        snprintf (err, errlen, "%s: path too long", path);
        return AF_E_INTERNAL;
    }
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash == dir)
        slash [1] = 0;                  //  "/"
    else
    if (slash)
        *slash = 0;
    else
        snprintf (dir, sizeof dir, ".");
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    bool ok = fd >= 0 && write (fd, data, len) == (ssize_t) len && fsync (fd) == 0;
    int saved = errno;
    if (fd >= 0 && close (fd) && ok)
        ok = false, saved = errno;
    if (ok && rename (tmp, path))
        ok = false, saved = errno;
    if (!ok) {
        snprintf (err, errlen, "cannot write %s: %s", path,
                  saved == ENOSPC || saved == EFBIG? "the disk is full": strerror (saved));
        unlink (tmp);
        return AF_E_INTERNAL;
    }
    //  The rename is durable only once the directory is on disk too
    int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok = dir_fd >= 0 && fsync (dir_fd) == 0;
    saved = errno;
    if (dir_fd >= 0)
        close (dir_fd);
    if (!ok) {
        snprintf (err, errlen, "cannot sync the directory of %s: %s", path, strerror (saved));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

int
af_minisign_pub_load (const char *path, af_minisign_pub_t *pub, char *err, size_t errlen)
{
    size_t len;
    int rc;
    char *text = af_file_read (path, 4096, &len, &rc, err, errlen);
    if (!text)
        return AF_E_INTERNAL;
    char inner [200];
    int code = af_minisign_pub_parse (text, len, pub, inner, sizeof inner);
    if (code != AF_OK)
        snprintf (err, errlen, "%s: %s", path, inner);
    free (text);
    return code;
}

static void
s_sec_checksum (const uint8_t *raw, uint8_t *chk)
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, 32);
    crypto_generichash_update (&state, raw, 2);             //  "Ed"
    crypto_generichash_update (&state, raw + 54, 8 + 64);   //  key ID, secret key
    crypto_generichash_final (&state, chk, 32);
}

int
af_minisign_sec_load (const char *path, af_minisign_sec_t *sec, char *err, size_t errlen)
{
    size_t len;
    int rc;
    char *text = af_file_read (path, 4096, &len, &rc, err, errlen);
    if (!text)
        return AF_E_INTERNAL;
    const char *p = text;
    char line [S_LINE];
    uint8_t raw [S_SEC_SIZE], chk [32], zero [32] = { 0 };
    int code = AF_E_MALFORMED;
    if (!s_line (&p, text + len, line, sizeof line) || strncmp (line, "untrusted comment:", 18)
    ||  !s_line (&p, text + len, line, sizeof line) || s_b64 (line, raw, sizeof raw)
    ||  raw [0] != 'E' || raw [1] != 'd' || raw [4] != 'B' || raw [5] != '2')
        snprintf (err, errlen, "%s: not a minisign secret key", path);
    else
    if (raw [2] || raw [3])
        snprintf (err, errlen, "%s: the key is encrypted; remove its password first (minisign -C -W)", path);
    else {
        s_sec_checksum (raw, chk);
        //  minisign 0.11 writes an unencrypted key's checksum as zeros
        if (sodium_memcmp (chk, raw + 126, 32) && sodium_memcmp (zero, raw + 126, 32))
            snprintf (err, errlen, "%s: the secret key's checksum is wrong", path);
        else {
            memcpy (sec->key_id, raw + 54, 8);
            memcpy (sec->sk, raw + 62, 64);
            code = AF_OK;
        }
    }
    sodium_memzero (raw, sizeof raw);
    sodium_memzero (text, len);
    free (text);
    return code;
}

int
af_minisign_pub_save (const char *path, const af_minisign_pub_t *pub, char *err, size_t errlen)
{
    char b64 [AF_MINISIGN_PUB_B64 + 1], id [AF_MINISIGN_KEYID_HEX + 1], text [200];
    af_minisign_pub_base64 (pub, b64);
    af_minisign_id (pub->key_id, id);
    snprintf (text, sizeof text, "untrusted comment: minisign public key %s\n%s\n", id, b64);
    return af_file_write (path, text, strlen (text), 0644, err, errlen);
}

int
af_minisign_sec_save (const char *path, const af_minisign_sec_t *sec, char *err, size_t errlen)
{
    uint8_t raw [S_SEC_SIZE] = { 'E', 'd', 0, 0, 'B', '2' };
    memcpy (raw + 54, sec->key_id, 8);
    memcpy (raw + 62, sec->sk, 64);
    s_sec_checksum (raw, raw + 126);
    char b64 [sodium_base64_ENCODED_LEN (S_SEC_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    char text [400];
    snprintf (text, sizeof text, "untrusted comment: minisign secret key (unencrypted)\n%s\n", b64);
    int code = af_file_write (path, text, strlen (text), 0600, err, errlen);
    sodium_memzero (raw, sizeof raw);
    sodium_memzero (text, sizeof text);
    sodium_memzero (b64, sizeof b64);
    return code;
}

char *
af_minisign_sign_hash (const af_minisign_sec_t *sec, const uint8_t *digest, const char *trusted)
{
    assert (sec && digest && trusted);
    if (strchr (trusted, '\n') || strchr (trusted, '\r') || strlen (trusted) > AF_MINISIGN_COMMENT)
        return NULL;
    uint8_t raw [S_SIG_SIZE] = { 'E', 'D' };
    memcpy (raw + 2, sec->key_id, 8);
    crypto_sign_detached (raw + 10, NULL, digest, crypto_generichash_BYTES_MAX, sec->sk);
    //  The global signature covers the signature and the trusted comment
    size_t tlen = strlen (trusted);
    uint8_t *global_msg = (uint8_t *) malloc (64 + tlen + 1);
    assert (global_msg);
    memcpy (global_msg, raw + 10, 64);
    memcpy (global_msg + 64, trusted, tlen);
    uint8_t global [64];
    crypto_sign_detached (global, NULL, global_msg, 64 + tlen, sec->sk);
    free (global_msg);
    char sig_b64 [sodium_base64_ENCODED_LEN (S_SIG_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    char global_b64 [sodium_base64_ENCODED_LEN (64, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (sig_b64, sizeof sig_b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64 (global_b64, sizeof global_b64, global, sizeof global, sodium_base64_VARIANT_ORIGINAL);
    char id [AF_MINISIGN_KEYID_HEX + 1];
    af_minisign_id (sec->key_id, id);
    size_t size = 128 + sizeof sig_b64 + tlen + sizeof global_b64;
    char *text = (char *) malloc (size);
    assert (text);
    snprintf (text, size, "untrusted comment: signature from minisign secret key %s\n%s\n"
              "trusted comment: %s\n%s\n", id, sig_b64, trusted, global_b64);
    return text;
}

char *
af_minisign_sign (const af_minisign_sec_t *sec, const void *data, size_t size, const char *trusted)
{
    uint8_t digest [crypto_generichash_BYTES_MAX];
    crypto_generichash (digest, sizeof digest, (const uint8_t *) data, size, NULL, 0);
    return af_minisign_sign_hash (sec, digest, trusted);
}

int
af_minisign_hash_file (const char *path, uint8_t *digest, uint64_t *size, char *err, size_t errlen)
{
    int fd = open (path, O_RDONLY);
    if (fd < 0) {
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, crypto_generichash_BYTES_MAX);
    uint8_t buf [64 * 1024];
    ssize_t n;
    uint64_t total = 0;
    while ((n = read (fd, buf, sizeof buf)) > 0) {
        crypto_generichash_update (&state, buf, (size_t) n);
        total += (uint64_t) n;
    }
    int saved = errno;
    close (fd);
    if (n < 0) {
        snprintf (err, errlen, "reading %s: %s", path, strerror (saved));
        return AF_E_INTERNAL;
    }
    crypto_generichash_final (&state, digest, crypto_generichash_BYTES_MAX);
    if (size)
        *size = total;
    return AF_OK;
}

//  A signature file's parts: the raw signature line and the trusted
//  comment with its global signature. 0, or -1 with err.
typedef struct {
    uint8_t raw [S_SIG_SIZE];
    char trusted [S_LINE];
    uint8_t global [64];
} sig_parts_t;

static int
s_sig_parse (const char *sig, size_t sig_len, sig_parts_t *parts, char *err, size_t errlen)
{
    const char *p = sig, *end = sig + sig_len;
    char line [S_LINE];
    if (!s_line (&p, end, line, sizeof line) || strncmp (line, "untrusted comment:", 18)
    ||  !s_line (&p, end, line, sizeof line) || s_b64 (line, parts->raw, sizeof parts->raw)
    ||  parts->raw [0] != 'E' || (parts->raw [1] != 'D' && parts->raw [1] != 'd')) {
        snprintf (err, errlen, "not a minisign signature");
        return -1;
    }
    if (!s_line (&p, end, line, sizeof line) || strncmp (line, "trusted comment: ", 17)) {
        snprintf (err, errlen, "the signature has no trusted comment");
        return -1;
    }
    snprintf (parts->trusted, sizeof parts->trusted, "%s", line + 17);
    if (!s_line (&p, end, line, sizeof line) || s_b64 (line, parts->global, sizeof parts->global)) {
        snprintf (err, errlen, "the signature has no global signature");
        return -1;
    }
    return 0;
}

int
af_minisign_sig_key_id (const char *sig, size_t sig_len, uint8_t *key_id)
{
    sig_parts_t parts;
    char err [80];
    if (s_sig_parse (sig, sig_len, &parts, err, sizeof err))
        return AF_E_MALFORMED;
    memcpy (key_id, parts.raw + 2, AF_MINISIGN_KEYID_SIZE);
    return AF_OK;
}

int
af_minisign_verify (const af_minisign_pub_t *pub, const void *data, size_t size, const uint8_t *digest,
                    const char *sig, size_t sig_len, char *trusted, size_t trusted_size,
                    char *err, size_t errlen)
{
    assert (pub && sig);
    sig_parts_t parts;
    if (s_sig_parse (sig, sig_len, &parts, err, errlen))
        return AF_E_MALFORMED;
    if (memcmp (parts.raw + 2, pub->key_id, AF_MINISIGN_KEYID_SIZE)) {
        char want [AF_MINISIGN_KEYID_HEX + 1], got [AF_MINISIGN_KEYID_HEX + 1];
        af_minisign_id (pub->key_id, want);
        af_minisign_id (parts.raw + 2, got);
        snprintf (err, errlen, "signed by key %s, not by key %s", got, want);
        return AF_E_FORBIDDEN;
    }
    bool prehashed = parts.raw [1] == 'D';
    int bad;
    if (prehashed) {
        uint8_t mine [crypto_generichash_BYTES_MAX];
        if (!digest) {
            crypto_generichash (mine, sizeof mine, (const uint8_t *) data, size, NULL, 0);
            digest = mine;
        }
        bad = crypto_sign_verify_detached (parts.raw + 10, digest, crypto_generichash_BYTES_MAX, pub->pk);
    }
    else {
        if (!data && size) {
            snprintf (err, errlen, "a legacy (not prehashed) signature needs the whole file");
            return AF_E_MALFORMED;
        }
        bad = crypto_sign_verify_detached (parts.raw + 10, (const uint8_t *) data, size, pub->pk);
    }
    if (bad) {
        snprintf (err, errlen, "the signature does not match the file (altered, or signed as another file)");
        return AF_E_FORBIDDEN;
    }
    size_t tlen = strlen (parts.trusted);
    uint8_t *global_msg = (uint8_t *) malloc (64 + tlen + 1);
    assert (global_msg);
    memcpy (global_msg, parts.raw + 10, 64);
    memcpy (global_msg + 64, parts.trusted, tlen);
    bad = crypto_sign_verify_detached (parts.global, global_msg, 64 + tlen, pub->pk);
    free (global_msg);
    if (bad) {
        snprintf (err, errlen, "the signature's trusted comment was altered");
        return AF_E_FORBIDDEN;
    }
    if (trusted)
        snprintf (trusted, trusted_size, "%s", parts.trusted);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

//  Made by the real minisign 0.11: `minisign -G -W`, then
//  `minisign -S -c fixture -t "appferry fixture" -m big.txt` (prehashed)
//  and `minisign -S -l -m msg2.txt` (legacy)
static const char *s_fixture_pub =
    "untrusted comment: minisign public key A13B765A477ED34D\n"
    "RWRN035HWnY7oSAGy5pe7PoTS3a80pcnTVBOcHww2hBNOBQOSZKZsUna\n";
static const char *s_fixture_sec =
    "untrusted comment: minisign encrypted secret key\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAATdN+R1p2O6Hpf6/kcum/XXCw3vde"
    "aqdUyGOr+DZmahVZwWJLp5w9jyAGy5pe7PoTS3a80pcnTVBOcHww2hBNOBQOSZKZsUnaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
static const char *s_fixture_prehashed =
    "untrusted comment: fixture\n"
    "RURN035HWnY7oeH4O6YsQy+fr+nk2/MNiYoaB08AFf0BMjWMffilvQwtraMOKfNaV8V9PxvmqhZV1awX5AofBU/2ur7rXeUdBQ4=\n"
    "trusted comment: appferry fixture\n"
    "c3MoarwW/RRSaGjV5Nh5uugTEu9RAdP3ndwrdQl1GowU2RCNLX4sl6RpGbFP7+l/63fdAjMO74nlg8kCnY/6BA==\n";
static const char *s_fixture_legacy =
    "untrusted comment: signature from minisign secret key\n"
    "RWRN035HWnY7oWrBsPZY0ZO/Ddl0bTY7FxSM7a+8ItMD8IpLww5tfamPg79DlVH8W7o3HGGf7heBO3SEHLNa7G4drfVW2/EHYgo=\n"
    "trusted comment: timestamp:1796138457\tfile:msg2.txt\n"
    "yGma29pjZrOZ7E8bM06LAaJBdXqjlGsuMKxWWS2+lOEhWH9wQm4xPztdo58f4M45mKdeyLwaB0Ch4trxgtq4CQ==\n";

static void
s_test_fixture (const char *dir)
{
    char err [200], trusted [200], id [AF_MINISIGN_KEYID_HEX + 1];
    af_minisign_pub_t pub;
    assert (af_minisign_pub_parse (s_fixture_pub, strlen (s_fixture_pub), &pub, err, sizeof err) == AF_OK);
    af_minisign_id (pub.key_id, id);
    assert (streq (id, "A13B765A477ED34D"));
    const char *text = "prehash me\n";
    assert (af_minisign_verify (&pub, text, strlen (text), NULL, s_fixture_prehashed, strlen (s_fixture_prehashed),
                                trusted, sizeof trusted, err, sizeof err) == AF_OK);
    assert (streq (trusted, "appferry fixture"));
    assert (af_minisign_verify (&pub, "prehash mE\n", 11, NULL, s_fixture_prehashed, strlen (s_fixture_prehashed),
                                NULL, 0, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "does not match"));
    text = "hello appferry\n";
    assert (af_minisign_verify (&pub, text, strlen (text), NULL, s_fixture_legacy, strlen (s_fixture_legacy),
                                trusted, sizeof trusted, err, sizeof err) == AF_OK);
    assert (strstr (trusted, "file:msg2.txt"));
    //  A changed trusted comment is refused, though the file is intact
    char *forged = strdup (s_fixture_prehashed);
    char *at = strstr (forged, "appferry fixture");
    at [0] = 'A';
    assert (af_minisign_verify (&pub, "prehash me\n", 11, NULL, forged, strlen (forged), NULL, 0, err, sizeof err)
            == AF_E_FORBIDDEN && strstr (err, "trusted comment"));
    free (forged);
    //  minisign's unencrypted secret key signs what minisign's public key verifies
    char path [600];
    snprintf (path, sizeof path, "%s/fixture.key", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (s_fixture_sec, file);
    fclose (file);
    af_minisign_sec_t sec;
    assert (af_minisign_sec_load (path, &sec, err, sizeof err) == AF_OK);
    char *sig = af_minisign_sign (&sec, "x", 1, "t");
    assert (sig && af_minisign_verify (&pub, "x", 1, NULL, sig, strlen (sig), NULL, 0, err, sizeof err) == AF_OK);
    free (sig);
}

void
af_minisign_test (bool verbose)
{
    printf (" * af_minisign: ");
    char dir [] = "/tmp/af_minisign_test.XXXXXX";
    assert (mkdtemp (dir));
    s_test_fixture (dir);

    //  af_file_write: whole, replacing, no temp file left; a directory
    //  that is not there is an error that names the file
    {
        char file [600], tmp [610], why [300];
        snprintf (file, sizeof file, "%s/state.json", dir);
        snprintf (tmp, sizeof tmp, "%s.tmp", file);
        size_t got;
        int code;
        assert (af_file_write (file, "{\"a\":1}", 7, 0600, why, sizeof why) == AF_OK);
        assert (af_file_write (file, "{}", 2, 0600, why, sizeof why) == AF_OK);
        char *text = af_file_read (file, 100, &got, &code, why, sizeof why);
        assert (text && got == 2 && streq (text, "{}") && !zsys_file_exists (tmp));
        free (text);
        struct stat st;
        assert (stat (file, &st) == 0 && (st.st_mode & 0777) == 0600);
        snprintf (file, sizeof file, "%s/absent/state.json", dir);
        assert (af_file_write (file, "{}", 2, 0600, why, sizeof why) == AF_E_INTERNAL && strstr (why, "absent/state.json"));
    }

    //  Our own keys round-trip through their files and sign and verify
    af_minisign_pub_t pub, pub2, other;
    af_minisign_sec_t sec, sec2, other_sec;
    char err [200], path [600], trusted [64];
    af_minisign_keygen (&pub, &sec);
    af_minisign_keygen (&other, &other_sec);
    snprintf (path, sizeof path, "%s/k.pub", dir);
    assert (af_minisign_pub_save (path, &pub, err, sizeof err) == AF_OK);
    assert (af_minisign_pub_load (path, &pub2, err, sizeof err) == AF_OK && memcmp (&pub, &pub2, sizeof pub) == 0);
    snprintf (path, sizeof path, "%s/k.key", dir);
    assert (af_minisign_sec_save (path, &sec, err, sizeof err) == AF_OK);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    assert (af_minisign_sec_load (path, &sec2, err, sizeof err) == AF_OK && memcmp (&sec, &sec2, sizeof sec) == 0);
    af_minisign_public (&sec2, &pub2);
    assert (memcmp (&pub, &pub2, sizeof pub) == 0);
    char *sig = af_minisign_sign (&sec, "data", 4, "program:weixin");
    assert (sig);
    uint8_t id [8];
    assert (af_minisign_sig_key_id (sig, strlen (sig), id) == AF_OK && memcmp (id, pub.key_id, 8) == 0);
    assert (af_minisign_verify (&pub, "data", 4, NULL, sig, strlen (sig), trusted, sizeof trusted, err, sizeof err) == AF_OK
            && streq (trusted, "program:weixin"));
    //  Another key: refused, naming both keys
    assert (af_minisign_verify (&other, "data", 4, NULL, sig, strlen (sig), NULL, 0, err, sizeof err) == AF_E_FORBIDDEN
            && strstr (err, "signed by key"));
    //  Same key ID, other key: the signature does not verify
    memcpy (other.key_id, pub.key_id, 8);
    assert (af_minisign_verify (&other, "data", 4, NULL, sig, strlen (sig), NULL, 0, err, sizeof err) == AF_E_FORBIDDEN);
    //  A digest computed beforehand verifies the same
    uint8_t digest [64];
    crypto_generichash (digest, sizeof digest, (const uint8_t *) "data", 4, NULL, 0);
    assert (af_minisign_verify (&pub, NULL, 0, digest, sig, strlen (sig), NULL, 0, err, sizeof err) == AF_OK);
    //  Garbage and truncations are refused as malformed
    assert (af_minisign_verify (&pub, "data", 4, NULL, "junk", 4, NULL, 0, err, sizeof err) == AF_E_MALFORMED);
    for (size_t cut = 0; cut < strlen (sig) - 2; cut += 7)
        assert (af_minisign_verify (&pub, "data", 4, NULL, sig, cut, NULL, 0, err, sizeof err) != AF_OK);
    free (sig);
    assert (!af_minisign_sign (&sec, "data", 4, "two\nlines"));
    assert (af_minisign_pub_parse ("RWQ", 3, &pub2, err, sizeof err) == AF_E_MALFORMED);
    //  An encrypted key is refused with what to do
    uint8_t raw [S_SEC_SIZE] = { 'E', 'd', 'S', 'c', 'B', '2' };
    char b64 [sodium_base64_ENCODED_LEN (S_SEC_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    snprintf (path, sizeof path, "%s/enc.key", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "untrusted comment: minisign encrypted secret key\n%s\n", b64);
    fclose (file);
    assert (af_minisign_sec_load (path, &sec2, err, sizeof err) == AF_E_MALFORMED && strstr (err, "-C -W"));
    if (verbose)
        printf ("(%s) ", err);
    assert (af_minisign_sec_load ("/nonexistent/k", &sec2, err, sizeof err) == AF_E_INTERNAL);
    zdir_t *tree = zdir_new (dir, NULL);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    printf ("OK\n");
}
