/*  fuzz_install - the built-in installer's archive check and unpack
    (af_install_builtin), as the node runs it on a package a push brought,
    into a temporary HOME.

    Properties, beyond "no crash, no leak": nothing is written beside HOME
    (the temporary directory holds only HOME and the package afterwards),
    no link the install left in HOME/apps/PROGRAM or HOME/data/PROGRAM
    resolves to a file outside that directory, and the answer is AF_OK or
    one of the codes af_install.h documents.
*/
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "af_install.h"

static char s_dir [200];            //  the fuzzer's temporary directory
static char s_home [256];
static char s_package [256];
static const char *s_root;          //  for s_check_link

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) ftw;
    if (flag == FTW_DP)
        rmdir (path);
    else
        unlink (path);
    return 0;
}

static void
s_remove_tree (const char *path)
{
    nftw (path, s_remove, 16, FTW_DEPTH | FTW_PHYS);
}

static void
s_cleanup (void)
{
    if (*s_dir)
        s_remove_tree (s_dir);
}

static int
s_check_link (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) ftw;
    if (flag != FTW_SL)
        return 0;
    char target [PATH_MAX];
    if (!realpath (path, target))
        return 0;                   //  dangling: points at nothing
    size_t len = strlen (s_root);
    if (strncmp (target, s_root, len) != 0 || (target [len] != '/' && target [len] != 0)) {
        fprintf (stderr, "the installed link %s resolves to %s, outside %s\n", path, target, s_root);
        abort ();
    }
    return 0;
}

static void
s_check_tree (const char *root)
{
    char real [PATH_MAX];
    if (!realpath (root, real))
        return;
    s_root = real;
    nftw (root, s_check_link, 16, FTW_PHYS);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    zsys_init ();
    zsys_set_logstream (NULL);      //  the installer's warnings are expected
    zsys_set_logsystem (false);
    //  Under $TMPDIR (./run points it into the build directory, so a crash,
    //  which skips atexit, leaves nothing in /tmp)
    const char *tmp = getenv ("TMPDIR");
    int n = snprintf (s_dir, sizeof s_dir, "%s/af_fuzz_install.XXXXXX", tmp && *tmp? tmp: "/tmp");
    if (n < 0 || (size_t) n >= sizeof s_dir || !mkdtemp (s_dir)) {
        fprintf (stderr, "fuzz_install: cannot make a temporary directory under %s\n", tmp);
        abort ();
    }
    atexit (s_cleanup);
    snprintf (s_home, sizeof s_home, "%s/home", s_dir);
    snprintf (s_package, sizeof s_package, "%s/package.tar", s_dir);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    FILE *file = fopen (s_package, "wb");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    assert (fclose (file) == 0);
    assert (mkdir (s_home, 0700) == 0);

    af_install_info_t info;
    memset (&info, 0, sizeof info);
    strcpy (info.program, "fuzz");
    strcpy (info.version_name, "1.0");
    info.version_code = 1;
    memset (info.hash, 'a', AF_HASH_HEX);
    char err [512];
    int code = af_install_builtin (s_home, s_package, &info, err, sizeof err);
    assert (code == AF_OK || code == AF_E_MALFORMED || code == AF_E_TOO_BIG || code == AF_E_INTERNAL);
    if (code == AF_OK) {
        char path [300];
        snprintf (path, sizeof path, "%s/apps/fuzz", s_home);
        s_check_tree (path);
        snprintf (path, sizeof path, "%s/data/fuzz", s_home);
        s_check_tree (path);
        assert (af_install_remove (s_home, "fuzz", err, sizeof err) == AF_OK);
    }
    //  Nothing beside HOME and the package
    DIR *dir = opendir (s_dir);
    assert (dir);
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL)
        if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, "..")
        &&  strcmp (entry->d_name, "home") && strcmp (entry->d_name, "package.tar")) {
            fprintf (stderr, "the install wrote %s/%s, outside HOME\n", s_dir, entry->d_name);
            abort ();
        }
    closedir (dir);
    s_remove_tree (s_home);
    return 0;
}
