/*  =========================================================================
    af_mkpkg - writes the tar packages the integration tests push: entries
    of given text or of given sizes of random bytes, and hostile ones
    (paths that climb out, absolute paths, links anywhere) that no
    careful packer would make.

    Usage:
      af_mkpkg OUT.tar ENTRY...
    where each ENTRY is one of
      d:PATH           a directory (mode 0755)
      f:PATH=TEXT      a regular file (0644) holding exactly TEXT
      r:PATH=SIZE      a regular file (0644) of SIZE random bytes; SIZE may
                       end in K or M (KiB, MiB)
      l:PATH=TARGET    a symbolic link to TARGET
      h:PATH=TARGET    a hard link to the earlier entry TARGET
    PATH is the first '=' away from the value; it is written as given,
    with no normalisation, so "../evil" or "/etc/x" stay what they are.

    Why a program of ours: the tests must need nothing beyond what `./run`
    installs, and libarchive (which the node unpacks with) is already
    there. The random bytes come from getrandom(2): they do not compress,
    so a transfer's size on the wire is the package's size.

    Exit status: 0 written, 1 write failed, 2 usage (a bad ENTRY).
    =========================================================================
*/
#include <archive.h>
#include <archive_entry.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

//  Random files are written in pieces of this size
#define MKPKG_CHUNK     (1024 * 1024)
//  And are at most this big (the tests need tens of MiB)
#define MKPKG_MAX_SIZE  ((int64_t) 4 << 30)

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: af_mkpkg OUT.tar ENTRY...\n"
"Write a tar package for the tests. ENTRY is one of:\n"
"  d:PATH           a directory\n"
"  f:PATH=TEXT      a file holding exactly TEXT\n"
"  r:PATH=SIZE      a file of SIZE random bytes (SIZE may end in K or M)\n"
"  l:PATH=TARGET    a symbolic link to TARGET\n"
"  h:PATH=TARGET    a hard link to the earlier entry TARGET\n"
"Paths are written as given (no normalisation), so hostile ones are possible.\n");
}

//  Parses SIZE ("600K", "64M", "12345") into *size; 0 if valid, -1 if not
static int
s_parse_size (const char *text, int64_t *size)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno || end == text || value < 0)
        return -1;
    int64_t scale = 1;
    if (*end == 'K')
        scale = 1024, end++;
    else
    if (*end == 'M')
        scale = 1024 * 1024, end++;
    if (*end || value > MKPKG_MAX_SIZE / scale)
        return -1;
    *size = (int64_t) value * scale;
    return 0;
}

//  Writes size random bytes as the current entry's data; 0 or -1
static int
s_write_random (struct archive *writer, int64_t size, char *buffer)
{
    while (size > 0) {
        size_t piece = size < MKPKG_CHUNK? (size_t) size: MKPKG_CHUNK;
        size_t filled = 0;
        while (filled < piece) {
            ssize_t got = getrandom (buffer + filled, piece - filled, 0);
            if (got < 0 && errno != EINTR)
                return -1;
            if (got > 0)
                filled += (size_t) got;
        }
        if (archive_write_data (writer, buffer, piece) != (la_ssize_t) piece)
            return -1;
        size -= (int64_t) piece;
    }
    return 0;
}

//  Adds one ENTRY to the archive. Returns 0, 1 if writing failed (with
//  the reason printed), 2 if the ENTRY is malformed.
static int
s_add (struct archive *writer, const char *spec, char *buffer)
{
    char kind = spec [0];
    if (!kind || spec [1] != ':' || !strchr ("dfrlh", kind)) {
        fprintf (stderr, "af_mkpkg: bad entry '%s' (see --help)\n", spec);
        return 2;
    }
    const char *path_start = spec + 2;
    const char *equals = strchr (path_start, '=');
    if ((kind == 'd') != (equals == NULL) || equals == path_start || !*path_start) {
        fprintf (stderr, "af_mkpkg: bad entry '%s': %s\n", spec,
                 kind == 'd'? "a directory takes no value": "PATH=VALUE expected");
        return 2;
    }
    size_t path_len = equals? (size_t) (equals - path_start): strlen (path_start);
    char *path = strndup (path_start, path_len);
    const char *value = equals? equals + 1: NULL;
    int64_t size = 0;
    if (kind == 'f')
        size = (int64_t) strlen (value);
    else
    if (kind == 'r' && s_parse_size (value, &size)) {
        fprintf (stderr, "af_mkpkg: bad size in '%s'\n", spec);
        free (path);
        return 2;
    }
    struct archive_entry *entry = archive_entry_new ();
    archive_entry_set_pathname (entry, path);
    archive_entry_set_mtime (entry, time (NULL), 0);
    if (kind == 'd') {
        archive_entry_set_filetype (entry, AE_IFDIR);
        archive_entry_set_perm (entry, 0755);
    }
    else
    if (kind == 'l') {
        archive_entry_set_filetype (entry, AE_IFLNK);
        archive_entry_set_perm (entry, 0777);
        archive_entry_set_symlink (entry, value);
    }
    else
    if (kind == 'h') {
        archive_entry_set_filetype (entry, AE_IFREG);
        archive_entry_set_perm (entry, 0644);
        archive_entry_set_hardlink (entry, value);
    }
    else {
        archive_entry_set_filetype (entry, AE_IFREG);
        archive_entry_set_perm (entry, 0644);
        archive_entry_set_size (entry, size);
    }
    int rc = 0;
    if (archive_write_header (writer, entry) != ARCHIVE_OK)
        rc = 1;
    else
    if (kind == 'f' && size > 0 && archive_write_data (writer, value, (size_t) size) != (la_ssize_t) size)
        rc = 1;
    else
    if (kind == 'r' && s_write_random (writer, size, buffer))
        rc = 1;
    if (rc)
        fprintf (stderr, "af_mkpkg: cannot write '%s': %s\n", path,
                 archive_error_string (writer)? archive_error_string (writer): strerror (errno));
    archive_entry_free (entry);
    free (path);
    return rc;
}

int
main (int argc, char *argv [])
{
    if (argc == 2 && (strcmp (argv [1], "-h") == 0 || strcmp (argv [1], "--help") == 0)) {
        s_usage (stdout);
        return 0;
    }
    if (argc < 3) {
        s_usage (stderr);
        return 2;
    }
    struct archive *writer = archive_write_new ();
    char *buffer = malloc (MKPKG_CHUNK);
    if (!writer || !buffer) {
        fprintf (stderr, "af_mkpkg: out of memory\n");
        return 1;
    }
    //  pax, as Python's tarfile and GNU tar write by default: ustar headers,
    //  with extended headers only where a field does not fit
    int rc = 0;
    if (archive_write_set_format_pax_restricted (writer) != ARCHIVE_OK
    ||  archive_write_open_filename (writer, argv [1]) != ARCHIVE_OK) {
        fprintf (stderr, "af_mkpkg: cannot write %s: %s\n", argv [1], archive_error_string (writer));
        rc = 1;
    }
    for (int i = 2; rc == 0 && i < argc; i++)
        rc = s_add (writer, argv [i], buffer);
    if (archive_write_close (writer) != ARCHIVE_OK && rc == 0) {
        fprintf (stderr, "af_mkpkg: cannot write %s: %s\n", argv [1], archive_error_string (writer));
        rc = 1;
    }
    archive_write_free (writer);
    free (buffer);
    if (rc)
        remove (argv [1]);
    return rc;
}
