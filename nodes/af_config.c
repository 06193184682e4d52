/*  =========================================================================
    af_config - an app's configuration, sealed on the node
    =========================================================================
*/
#include "af_config.h"
#include "af_install.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <sys/stat.h>

int
af_config_derive (const char *account, const char *secret, uint8_t *key, char *err, size_t errlen)
{
    //  The salt ties the key to the account: the same secret in two
    //  accounts gives two keys
    uint8_t salt [crypto_pwhash_SALTBYTES];
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, sizeof salt);
    crypto_generichash_update (&state, (const uint8_t *) "appferry config key\0", 20);
    crypto_generichash_update (&state, (const uint8_t *) account, strlen (account));
    crypto_generichash_final (&state, salt, sizeof salt);
    if (crypto_pwhash (key, AF_CONFIG_KEY_SIZE, secret, strlen (secret), salt,
                       crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                       crypto_pwhash_ALG_ARGON2ID13)) {
        snprintf (err, errlen, "not enough memory to derive the configuration key");
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

int
af_config_seal (const uint8_t *key, const char *dir, const char *tmp_path,
                uint8_t **blob, size_t *size, char *err, size_t errlen)
{
    *blob = NULL;
    int code = af_install_pack_dir (dir, tmp_path, err, errlen);
    if (code != AF_OK)
        return code;                    //  nothing to send, too many files, unreadable
    int fd = open (tmp_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    size_t limit = AF_MAX_CONFIG - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (fd < 0 || fstat (fd, &st) || (size_t) st.st_size > limit) {
        snprintf (err, errlen, fd < 0? "cannot read the packed configuration":
                  "the configuration is larger than %zu bytes packed", limit);
        if (fd >= 0)
            close (fd);
        unlink (tmp_path);
        return fd < 0? AF_E_INTERNAL: AF_E_TOO_BIG;
    }
    size_t plain_size = (size_t) st.st_size;
    uint8_t *plain = (uint8_t *) malloc (plain_size? plain_size: 1);
    bool ok = plain && read (fd, plain, plain_size) == (ssize_t) plain_size;
    close (fd);
    unlink (tmp_path);
    *size = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain_size;
    *blob = ok? (uint8_t *) malloc (*size): NULL;
    if (!*blob) {
        snprintf (err, errlen, "cannot read the packed configuration");
        free (plain);
        return AF_E_INTERNAL;
    }
    randombytes_buf (*blob, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy (*blob + crypto_secretbox_NONCEBYTES, plain, plain_size, *blob, key);
    sodium_memzero (plain, plain_size);
    free (plain);
    return AF_OK;
}

int
af_config_open (const uint8_t *key, const char *home, const char *program,
                const uint8_t *blob, size_t size, char *err, size_t errlen)
{
    if (size < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        snprintf (err, errlen, "cannot decrypt the configuration: it is too short");
        return AF_E_MALFORMED;
    }
    size_t plain_size = size - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    uint8_t *plain = (uint8_t *) malloc (plain_size? plain_size: 1);
    assert (plain);
    if (crypto_secretbox_open_easy (plain, blob + crypto_secretbox_NONCEBYTES,
                                    size - crypto_secretbox_NONCEBYTES, blob, key)) {
        free (plain);
        snprintf (err, errlen, "cannot decrypt the configuration: another account secret, or altered");
        return AF_E_MALFORMED;
    }
    char tmp [700];
    snprintf (tmp, sizeof tmp, "%s/incoming/config-%s.tar", home, program);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write (fd, plain, plain_size) == (ssize_t) plain_size;
    if (fd >= 0)
        ok = close (fd) == 0 && ok;
    sodium_memzero (plain, plain_size);
    free (plain);
    int code = AF_E_INTERNAL;
    if (!ok)
        snprintf (err, errlen, "cannot write %s: %s", tmp, strerror (errno));
    else
        code = af_install_data (home, "config", program, tmp, err, errlen);
    unlink (tmp);
    return code;
}

uint64_t
af_config_mtime (const char *dir)
{
    //  Every file under dir, in subdirectories and dot-files too, without
    //  following links (what a link names is not the configuration)
    uint64_t newest = 0;
    char *paths [] = { (char *) dir, NULL };
    FTS *fts = fts_open (paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    FTSENT *entry;
    while (fts && (entry = fts_read (fts)) != NULL)
        if (entry->fts_info == FTS_F) {
            const struct stat *st = entry->fts_statp;
            uint64_t ms = (uint64_t) st->st_mtim.tv_sec * 1000 + (uint64_t) st->st_mtim.tv_nsec / 1000000;
            if (ms > newest)
                newest = ms;
        }
    if (fts)
        fts_close (fts);
    return newest;
}

void
af_config_test (bool verbose)
{
    if (verbose)
        printf (" * af_config: ");
    char home [] = "/tmp/af_config_test.XXXXXX";
    assert (mkdtemp (home));
    char dir [600], path [700], err [256];
    snprintf (dir, sizeof dir, "%s/mine", home);
    assert (zsys_dir_create ("%s/incoming", home) == 0 && zsys_dir_create ("%s", dir) == 0);
    snprintf (path, sizeof path, "%s/settings.conf", dir);
    FILE *file = fopen (path, "w");
    fprintf (file, "font=large\n");
    fclose (file);
    assert (af_config_mtime (dir) > 0);
    //  Files in subdirectories and dot-files count: each in turn is the
    //  newest (an hour apart, so no clock tick can blur it)
    {
        struct timespec times [2] = { { 0, UTIME_OMIT }, { 1700000000, 0 } };
        assert (utimensat (AT_FDCWD, path, times, 0) == 0);
        assert (af_config_mtime (dir) == 1700000000000ULL);
        char nested [700];
        assert (zsys_dir_create ("%s/sub/.deeper", dir) == 0);
        const char *names [] = { "sub/bookmarks", "sub/.deeper/.state" };
        for (int i = 0; i < 2; i++) {
            snprintf (nested, sizeof nested, "%s/%s", dir, names [i]);
            file = fopen (nested, "w");
            assert (file);
            fclose (file);
            times [1].tv_sec = 1700000000 + 3600 * (i + 1);
            assert (utimensat (AT_FDCWD, nested, times, 0) == 0);
            assert (af_config_mtime (dir) == (1700000000ULL + 3600 * (i + 1)) * 1000);
        }
        snprintf (nested, sizeof nested, "%s/sub/.deeper/.state", dir);
        unlink (nested);
        snprintf (nested, sizeof nested, "%s/sub/.deeper", dir);
        rmdir (nested);
        snprintf (nested, sizeof nested, "%s/sub/bookmarks", dir);
        unlink (nested);
        snprintf (nested, sizeof nested, "%s/sub", dir);
        rmdir (nested);
        assert (af_config_mtime (dir) == 1700000000000ULL);
        assert (af_config_mtime ("/nonexistent/af_config") == 0);
    }

    uint8_t key [AF_CONFIG_KEY_SIZE], other [AF_CONFIG_KEY_SIZE];
    assert (af_config_derive ("ana", "a long account secret", key, err, sizeof err) == AF_OK);
    assert (af_config_derive ("bob", "a long account secret", other, err, sizeof err) == AF_OK);
    assert (memcmp (key, other, sizeof key));          //  salted by account
    uint8_t *blob;
    size_t size;
    snprintf (path, sizeof path, "%s/seal.tar", home);
    assert (af_config_seal (key, dir, path, &blob, &size, err, sizeof err) == AF_OK);
    assert (!memmem (blob, size, "font=large", 10));    //  no plaintext in the blob
    //  Another key, or one changed byte, does not open it
    assert (af_config_open (other, home, "notes", blob, size, err, sizeof err) == AF_E_MALFORMED && strstr (err, "decrypt"));
    blob [size - 1] ^= 1;
    assert (af_config_open (key, home, "notes", blob, size, err, sizeof err) == AF_E_MALFORMED);
    blob [size - 1] ^= 1;
    assert (af_config_open (key, home, "notes", blob, size, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/config/notes/settings.conf", home);
    char line [64] = "";
    file = fopen (path, "r");
    assert (file && fgets (line, sizeof line, file));
    fclose (file);
    assert (streq (line, "font=large\n"));
    free (blob);
    //  zdir would leave subdirectories and dot-files behind
    char command [700];
    snprintf (command, sizeof command, "rm -rf '%s'", home);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
