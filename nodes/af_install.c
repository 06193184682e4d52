/*  =========================================================================
    af_install - the node's package installer and install records
    =========================================================================
*/
#include "af_install.h"

#include <archive.h>
#include <archive_entry.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>

//  --------------------------------------------------------------------------
//  Install records

int
af_install_record_write (const char *home, const af_install_info_t *info, json_t *files,
                         char *err, size_t errlen)
{
    char dir [600], path [700], tmp [710];
    snprintf (dir, sizeof dir, "%s/installed", home);
    snprintf (path, sizeof path, "%s/%s.json", dir, info->program);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    if (zsys_dir_create ("%s", dir)) {
        snprintf (err, errlen, "cannot create %s: %s", dir, strerror (errno));
        return -1;
    }
    json_t *record = json_pack ("{s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:O}",
        "program", info->program, "versionName", info->version_name,
        "versionCode", (json_int_t) info->version_code, "hash", info->hash, "pushId", info->push_id,
        "installedAt", (json_int_t) info->installed_at, "method", info->method,
        "files", files? files: json_array ());
    if (!files)
        json_decref (json_object_get (record, "files"));    //  O took a second reference
    char *text = record? json_dumps (record, JSON_COMPACT): NULL;
    json_decref (record);
    int fd = text? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644): -1;
    bool ok = fd >= 0 && write (fd, text, strlen (text)) == (ssize_t) strlen (text) && fsync (fd) == 0;
    if (fd >= 0)
        ok = close (fd) == 0 && ok;
    ok = ok && rename (tmp, path) == 0;
    if (!ok) {
        snprintf (err, errlen, "cannot write the install record %s: %s", path, strerror (errno));
        unlink (tmp);
    }
    free (text);
    return ok? 0: -1;
}

int
af_install_record_read (const char *home, const char *program, af_install_info_t *info)
{
    char path [700];
    snprintf (path, sizeof path, "%s/installed/%s.json", home, program);
    json_error_t jerr;
    json_t *record = json_load_file (path, 0, &jerr);
    if (!json_is_object (record)) {
        json_decref (record);
        return -1;
    }
    memset (info, 0, sizeof *info);
    const char *text;
    #define GET(key, field) \
        text = json_string_value (json_object_get (record, key)); \
        snprintf (info->field, sizeof info->field, "%s", text? text: "");
    GET ("program", program);
    GET ("versionName", version_name);
    GET ("hash", hash);
    GET ("pushId", push_id);
    GET ("method", method);
    #undef GET
    info->version_code = (uint64_t) json_integer_value (json_object_get (record, "versionCode"));
    info->installed_at = (uint64_t) json_integer_value (json_object_get (record, "installedAt"));
    json_decref (record);
    return 0;
}

//  --------------------------------------------------------------------------
//  Built-in installer

//  Is a relative path (already free of a leading '/') free of ".."?
static bool
s_no_dotdot (const char *path)
{
    const char *p = path;
    while (*p) {
        size_t len = strcspn (p, "/");
        if (len == 2 && p [0] == '.' && p [1] == '.')
            return false;
        p += len;
        while (*p == '/')
            p++;
    }
    return true;
}

//  Does a symlink at entry path with this target stay inside the app
//  directory? Resolved lexically: depth of the link's directory, then
//  each component of the target.
static bool
s_link_inside (const char *path, const char *target)
{
    if (*target == '/' || !*target)
        return false;
    int depth = 0;
    const char *p = path;
    while (*p) {                            //  components of the link's directory
        size_t len = strcspn (p, "/");
        bool last = p [len] == 0 || p [len + strspn (p + len, "/")] == 0;
        if (!last && !(len == 1 && *p == '.'))
            depth++;
        p += len;
        while (*p == '/')
            p++;
    }
    p = target;
    while (*p) {
        size_t len = strcspn (p, "/");
        if (len == 2 && p [0] == '.' && p [1] == '.') {
            if (--depth < 0)
                return false;
        }
        else
        if (len && !(len == 1 && *p == '.'))
            depth++;
        p += len;
        while (*p == '/')
            p++;
    }
    return true;
}

static struct archive *
s_open (const char *package, char *err, size_t errlen)
{
    struct archive *reader = archive_read_new ();
    archive_read_support_format_tar (reader);
    archive_read_support_format_gnutar (reader);
    if (archive_read_open_filename (reader, package, 65536) != ARCHIVE_OK) {
        snprintf (err, errlen, "not a valid archive: %s", archive_error_string (reader));
        archive_read_free (reader);
        return NULL;
    }
    return reader;
}

//  Pass 1: read every header and refuse anything unsafe, before writing
static int
s_check (const char *package, char *err, size_t errlen)
{
    struct archive *reader = s_open (package, err, errlen);
    if (!reader)
        return -1;
    struct archive_entry *entry;
    size_t count = 0;
    int rc = 0, r;
    while ((r = archive_read_next_header (reader, &entry)) == ARCHIVE_OK) {
        const char *path = archive_entry_pathname (entry);
        mode_t type = archive_entry_filetype (entry);
        if (++count > AF_INSTALL_MAX_ENTRIES) {
            snprintf (err, errlen, "archive has more than %d entries", AF_INSTALL_MAX_ENTRIES);
            rc = -1;
        }
        else
        if (!path || !*path || strlen (path) > AF_INSTALL_MAX_NAME) {
            snprintf (err, errlen, "archive entry %zu has no name or one over %d bytes", count,
                      AF_INSTALL_MAX_NAME);
            rc = -1;
        }
        else
        if (*path == '/') {
            snprintf (err, errlen, "archive entry '%.200s' is an absolute path", path);
            rc = -1;
        }
        else
        if (!s_no_dotdot (path)) {
            snprintf (err, errlen, "archive entry '%.200s' leaves the app directory (..)", path);
            rc = -1;
        }
        else
        if (archive_entry_hardlink (entry)) {
            snprintf (err, errlen, "archive entry '%.200s' is a hard link (not allowed)", path);
            rc = -1;
        }
        else
        if (type == AE_IFLNK) {
            const char *target = archive_entry_symlink (entry);
            if (!target || !s_link_inside (path, target)) {
                snprintf (err, errlen, "archive entry '%.200s' links out of the app directory (to '%.200s')",
                          path, target? target: "");
                rc = -1;
            }
        }
        else
        if (type != AE_IFREG && type != AE_IFDIR) {
            snprintf (err, errlen, "archive entry '%.200s' is not a file, directory or link", path);
            rc = -1;
        }
        if (rc)
            break;
    }
    if (rc == 0 && r != ARCHIVE_EOF) {
        snprintf (err, errlen, "not a valid archive: %s", archive_error_string (reader));
        rc = -1;
    }
    if (rc == 0 && count == 0) {
        snprintf (err, errlen, "not a valid archive: it has no entries");
        rc = -1;
    }
    archive_read_free (reader);
    return rc;
}

//  Pass 2: unpack into dir (which exists). Fills files with the paths.
//  With a prefix ("defaults/"), only the entries under it, without it.
static int
s_extract (const char *package, const char *dir, const char *prefix, json_t *files,
           char *err, size_t errlen)
{
    struct archive *reader = s_open (package, err, errlen);
    if (!reader)
        return -1;
    struct archive *writer = archive_write_disk_new ();
    //  libarchive's own guards, as a second line behind s_check (not
    //  NOABSOLUTEPATHS: we give it absolute paths under the staging dir)
    archive_write_disk_set_options (writer, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS
                                  | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM);
    struct archive_entry *entry;
    int rc = 0, r;
    char path [AF_INSTALL_MAX_NAME + 700];
    while (rc == 0 && (r = archive_read_next_header (reader, &entry)) == ARCHIVE_OK) {
        char name [AF_INSTALL_MAX_NAME + 1];
        snprintf (name, sizeof name, "%s", archive_entry_pathname (entry));
        if (prefix) {
            size_t len = strlen (prefix);
            if (strncmp (name, prefix, len) || !name [len]) {
                archive_read_data_skip (reader);
                continue;
            }
            memmove (name, name + len, strlen (name + len) + 1);
        }
        snprintf (path, sizeof path, "%s/%s", dir, name);
        archive_entry_set_pathname (entry, path);
        archive_entry_set_perm (entry, archive_entry_perm (entry) & 0777);   //  no setuid/setgid/sticky
        if (archive_entry_filetype (entry) != AE_IFDIR)
            json_array_append_new (files, json_string (name));
        if (archive_write_header (writer, entry) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot unpack '%.200s': %s", name, archive_error_string (writer));
            rc = -1;
            break;
        }
        const void *block;
        size_t size;
        la_int64_t offset;
        while ((r = archive_read_data_block (reader, &block, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block (writer, block, size, offset) != ARCHIVE_OK) {
                snprintf (err, errlen, "cannot write '%.200s': %s", name,
                          errno == ENOSPC? "the disk is full": archive_error_string (writer));
                rc = -1;
                break;
            }
        if (rc == 0 && r != ARCHIVE_EOF) {
            snprintf (err, errlen, "not a valid archive: %s", archive_error_string (reader));
            rc = -1;
        }
        if (rc == 0 && archive_write_finish_entry (writer) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot write '%.200s': %s", name,
                      errno == ENOSPC? "the disk is full": archive_error_string (writer));
            rc = -1;
        }
    }
    if (archive_write_close (writer) != ARCHIVE_OK && rc == 0) {
        snprintf (err, errlen, "cannot finish unpacking: %s", archive_error_string (writer));
        rc = -1;
    }
    archive_write_free (writer);
    archive_read_free (reader);
    return rc;
}

static void
s_remove_tree (const char *path)
{
    struct stat st;
    if (lstat (path, &st))
        return;
    if (S_ISDIR (st.st_mode)) {
        zdir_t *dir = zdir_new (path, "-");
        if (dir) {
            zdir_remove (dir, true);
            zdir_destroy (&dir);
        }
        rmdir (path);
    }
    else
        unlink (path);
}

//  Unpack (the prefix part of) a checked archive as parent/name: staged in
//  parent/.name.new-X, then swapped in by rename; the old tree removed.
//  On failure parent/name is as it was.
static int
s_unpack_swap (const char *parent, const char *name, const char *package, const char *prefix,
               json_t *files, char *err, size_t errlen)
{
    char stage [700], old [700], live [700];
    uint8_t rand [4];
    randombytes_buf (rand, sizeof rand);
    char tag [9];
    sodium_bin2hex (tag, sizeof tag, rand, sizeof rand);
    snprintf (stage, sizeof stage, "%s/.%s.new-%s", parent, name, tag);
    snprintf (old, sizeof old, "%s/.%s.old-%s", parent, name, tag);
    snprintf (live, sizeof live, "%s/%s", parent, name);
    if (zsys_dir_create ("%s", parent) || mkdir (stage, 0755)) {
        snprintf (err, errlen, "cannot create %s: %s", stage, strerror (errno));
        return -1;
    }
    int rc = s_extract (package, stage, prefix, files, err, errlen);
    bool had = access (live, F_OK) == 0;
    if (rc == 0 && had && rename (live, old)) {
        snprintf (err, errlen, "cannot move the current %s aside: %s", name, strerror (errno));
        rc = -1;
    }
    if (rc == 0 && rename (stage, live)) {
        snprintf (err, errlen, "cannot put the new %s in place: %s", name, strerror (errno));
        if (had)
            rename (old, live);
        rc = -1;
    }
    if (rc == 0 && had)
        s_remove_tree (old);
    if (rc)
        s_remove_tree (stage);
    return rc;
}

int
af_install_builtin (const char *home, const char *package, const af_install_info_t *info,
                    char *err, size_t errlen)
{
    if (s_check (package, err, errlen))
        return -1;
    char apps [600], data [600], defaults [700];
    snprintf (apps, sizeof apps, "%s/apps", home);
    json_t *files = json_array ();
    int rc = s_unpack_swap (apps, info->program, package, NULL, files, err, errlen);
    if (rc == 0) {
        af_install_info_t record = *info;
        snprintf (record.method, sizeof record.method, "builtin");
        rc = af_install_record_write (home, &record, files, err, errlen);
    }
    //  A package's defaults/ seed the app's data directory on first install
    snprintf (data, sizeof data, "%s/data/%s", home, info->program);
    snprintf (defaults, sizeof defaults, "%s/%s/defaults", apps, info->program);
    if (rc == 0 && access (defaults, F_OK) == 0 && access (data, F_OK) != 0) {
        snprintf (data, sizeof data, "%s/data", home);
        json_t *seeded = json_array ();
        if (s_unpack_swap (data, info->program, package, "defaults/", seeded, err, errlen))
            zsys_warning ("install: %s installed, but its defaults were not copied: %s", info->program, err);
        json_decref (seeded);
    }
    json_decref (files);
    return rc;
}

int
af_install_remove (const char *home, const char *program, char *err, size_t errlen)
{
    char live [700], gone [720];
    snprintf (live, sizeof live, "%s/apps/%s", home, program);
    if (access (live, F_OK))
        return 0;
    //  Out of the way in one step, then removed
    snprintf (gone, sizeof gone, "%s/apps/.%s.gone", home, program);
    s_remove_tree (gone);
    if (rename (live, gone)) {
        snprintf (err, errlen, "cannot remove %s: %s", live, strerror (errno));
        return -1;
    }
    s_remove_tree (gone);
    return 0;
}

int
af_install_data (const char *home, const char *kind, const char *program, const char *archive,
                 char *err, size_t errlen)
{
    if (s_check (archive, err, errlen))
        return -1;
    char data [600];
    snprintf (data, sizeof data, "%s/%s", home, kind);
    json_t *files = json_array ();
    int rc = s_unpack_swap (data, program, archive, NULL, files, err, errlen);
    json_decref (files);
    return rc;
}

int
af_install_pack_dir (const char *dir, const char *archive, char *err, size_t errlen)
{
    struct archive *disk = archive_read_disk_new ();
    struct archive *writer = archive_write_new ();
    archive_read_disk_set_standard_lookup (disk);
    archive_read_disk_set_symlink_physical (disk);
    archive_write_set_format_pax_restricted (writer);
    int rc = 0;
    if (archive_write_open_filename (writer, archive) != ARCHIVE_OK) {
        snprintf (err, errlen, "cannot write %s: %s", archive, archive_error_string (writer));
        rc = -1;
    }
    else
    if (archive_read_disk_open (disk, dir) != ARCHIVE_OK) {
        snprintf (err, errlen, "cannot read %s: %s", dir, archive_error_string (disk));
        rc = -1;
    }
    size_t dirlen = strlen (dir);
    size_t count = 0;
    struct archive_entry *entry = archive_entry_new ();
    while (rc == 0) {
        archive_entry_clear (entry);
        int r = archive_read_next_header2 (disk, entry);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot read %s: %s", dir, archive_error_string (disk));
            rc = -1;
            break;
        }
        archive_read_disk_descend (disk);
        const char *path = archive_entry_sourcepath (entry);
        mode_t type = archive_entry_filetype (entry);
        //  Relative names; the directory itself and anything but files
        //  and directories (sockets, links) are left out
        if (!path || strlen (path) <= dirlen + 1 || (type != AE_IFREG && type != AE_IFDIR))
            continue;
        archive_entry_set_pathname (entry, path + dirlen + 1);
        if (++count > AF_INSTALL_MAX_ENTRIES) {
            snprintf (err, errlen, "%s has more than %d entries", dir, AF_INSTALL_MAX_ENTRIES);
            rc = -1;
            break;
        }
        if (archive_write_header (writer, entry) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot pack %s: %s", path, archive_error_string (writer));
            rc = -1;
            break;
        }
        if (type == AE_IFREG) {
            int fd = open (path, O_RDONLY | O_CLOEXEC);
            char buffer [65536];
            ssize_t n = 0;
            while (fd >= 0 && (n = read (fd, buffer, sizeof buffer)) > 0)
                if (archive_write_data (writer, buffer, (size_t) n) != n) {
                    n = -1;
                    break;
                }
            if (fd < 0 || n < 0) {
                snprintf (err, errlen, "cannot pack %s: %s", path, strerror (errno));
                rc = -1;
            }
            if (fd >= 0)
                close (fd);
        }
    }
    archive_entry_free (entry);
    archive_read_close (disk);
    archive_read_free (disk);
    if (archive_write_close (writer) != ARCHIVE_OK && rc == 0) {
        snprintf (err, errlen, "cannot write %s: %s", archive, archive_error_string (writer));
        rc = -1;
    }
    archive_write_free (writer);
    if (rc == 0 && count == 0) {
        snprintf (err, errlen, "%s is empty", dir);
        rc = -1;
    }
    if (rc)
        unlink (archive);
    return rc;
}

//  --------------------------------------------------------------------------
//  Operator's install command

struct _af_install_cmd_t {
    pid_t pid;
    int64_t deadline;
    int64_t killed_at;              //  when SIGTERM went; 0 if not
    int timeout_ms;
    bool reaped;
    int status;
};

af_install_cmd_t *
af_install_cmd_start (const char *command, const char *package, const af_install_info_t *info,
                      int timeout_ms, const char *log_path, char *err, size_t errlen)
{
    int log = open (log_path? log_path: "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0) {
        snprintf (err, errlen, "cannot open %s: %s", log_path, strerror (errno));
        return NULL;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        close (log);
        snprintf (err, errlen, "cannot start the install command: %s", strerror (errno));
        return NULL;
    }
    if (pid == 0) {
        //  The child: its own process group, so a timeout kills all of it
        setpgid (0, 0);
        int null = open ("/dev/null", O_RDONLY);
        dup2 (null, 0);
        dup2 (log, 1);
        dup2 (log, 2);
        setenv ("AF_PACKAGE", package, 1);
        setenv ("AF_PROGRAM", info->program, 1);
        setenv ("AF_VERSION", info->version_name, 1);
        setenv ("AF_HASH", info->hash, 1);
        execl ("/bin/sh", "sh", "-c", command, "sh", package, (char *) NULL);
        _exit (127);
    }
    setpgid (pid, pid);                 //  also here, whichever runs first
    close (log);
    af_install_cmd_t *self = (af_install_cmd_t *) zmalloc (sizeof (af_install_cmd_t));
    assert (self);
    self->pid = pid;
    self->timeout_ms = timeout_ms;
    self->deadline = zclock_mono () + timeout_ms;
    return self;
}

int
af_install_cmd_poll (af_install_cmd_t *self, char *err, size_t errlen)
{
    if (!self->reaped) {
        pid_t done = waitpid (self->pid, &self->status, WNOHANG);
        if (done == self->pid)
            self->reaped = true;
        else {
            int64_t now = zclock_mono ();
            if (!self->killed_at && now > self->deadline) {
                kill (-self->pid, SIGTERM);
                self->killed_at = now;
            }
            else
            if (self->killed_at && now - self->killed_at > 1000)
                kill (-self->pid, SIGKILL);
            return 1;
        }
    }
    if (self->killed_at) {
        kill (-self->pid, SIGKILL);     //  what the shell left behind
        snprintf (err, errlen, "the install command timed out after %d s and was killed",
                  (self->timeout_ms + 999) / 1000);
        return -1;
    }
    if (WIFEXITED (self->status) && WEXITSTATUS (self->status) == 0)
        return 0;
    if (WIFEXITED (self->status))
        snprintf (err, errlen, "the install command exited with status %d", WEXITSTATUS (self->status));
    else
        snprintf (err, errlen, "the install command was killed by signal %d", WTERMSIG (self->status));
    return -1;
}

void
af_install_cmd_destroy (af_install_cmd_t **self_p)
{
    assert (self_p);
    af_install_cmd_t *self = *self_p;
    if (!self)
        return;
    if (!self->reaped) {
        kill (-self->pid, SIGKILL);
        waitpid (self->pid, &self->status, 0);
    }
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_make_tar (const char *path, const char *entries [][3])
{
    //  entries: { name, kind ("f", "d", "l", "h"), content or link target }
    struct archive *writer = archive_write_new ();
    archive_write_set_format_pax_restricted (writer);
    assert (archive_write_open_filename (writer, path) == ARCHIVE_OK);
    for (int i = 0; entries [i][0]; i++) {
        struct archive_entry *entry = archive_entry_new ();
        archive_entry_set_pathname (entry, entries [i][0]);
        const char *kind = entries [i][1], *data = entries [i][2];
        if (*kind == 'd') {
            archive_entry_set_filetype (entry, AE_IFDIR);
            archive_entry_set_perm (entry, 0755);
        }
        else
        if (*kind == 'l') {
            archive_entry_set_filetype (entry, AE_IFLNK);
            archive_entry_set_symlink (entry, data);
            archive_entry_set_perm (entry, 0777);
        }
        else
        if (*kind == 'h') {
            archive_entry_set_hardlink (entry, data);
            archive_entry_set_filetype (entry, AE_IFREG);
        }
        else {
            archive_entry_set_filetype (entry, AE_IFREG);
            archive_entry_set_perm (entry, 04755);      //  setuid: must be dropped
            archive_entry_set_size (entry, (la_int64_t) strlen (data));
        }
        assert (archive_write_header (writer, entry) == ARCHIVE_OK);
        if (*kind == 'f')
            archive_write_data (writer, data, strlen (data));
        archive_entry_free (entry);
    }
    archive_write_close (writer);
    archive_write_free (writer);
}

void
af_install_test (bool verbose)
{
    if (verbose)
        printf (" * af_install: ");
    char home [] = "/tmp/af_install_test.XXXXXX";
    assert (mkdtemp (home));
    char pkg [600], path [700], err [256];
    af_install_info_t info;
    memset (&info, 0, sizeof info);
    strcpy (info.program, "demo");
    strcpy (info.version_name, "1.0");
    strcpy (info.hash, "aa");

    //  A good archive: a directory, files, a link inside
    snprintf (pkg, sizeof pkg, "%s/good.tar", home);
    const char *good [][3] = { { "app/", "d", "" }, { "app/README", "f", "hello\n" },
                               { "app/bin", "f", "#!/bin/sh\n" }, { "app/link", "l", "README" },
                               { NULL, NULL, NULL } };
    s_make_tar (pkg, good);
    assert (af_install_builtin (home, pkg, &info, err, sizeof err) == 0);
    snprintf (path, sizeof path, "%s/apps/demo/app/README", home);
    assert (zsys_file_exists (path));
    struct stat st;
    snprintf (path, sizeof path, "%s/apps/demo/app/bin", home);
    assert (stat (path, &st) == 0 && (st.st_mode & 07000) == 0);
    af_install_info_t back;
    assert (af_install_record_read (home, "demo", &back) == 0);
    assert (streq (back.version_name, "1.0") && streq (back.method, "builtin"));

    //  A newer version replaces the tree
    const char *newer [][3] = { { "app/", "d", "" }, { "app/NEW", "f", "2\n" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, newer);
    strcpy (info.version_name, "2.0");
    assert (af_install_builtin (home, pkg, &info, err, sizeof err) == 0);
    snprintf (path, sizeof path, "%s/apps/demo/app/README", home);
    assert (!zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/apps/demo/app/NEW", home);
    assert (zsys_file_exists (path));

    //  Hostile archives: refused, nothing written, version 2.0 intact
    const char *dotdot [][3] = { { "app/", "d", "" }, { "../evil", "f", "x" }, { NULL, NULL, NULL } };
    const char *absolute [][3] = { { "/tmp/af_install_abs_evil", "f", "x" }, { NULL, NULL, NULL } };
    const char *linkout [][3] = { { "link", "l", "../../outside" }, { "link/x", "f", "x" },
                                  { NULL, NULL, NULL } };
    const char *hard [][3] = { { "a", "f", "x" }, { "b", "h", "a" }, { NULL, NULL, NULL } };
    const char *(*bad []) [3] = { dotdot, absolute, linkout, hard };
    const char *why [] = { "(..)", "absolute", "links out", "hard link" };
    strcpy (info.version_name, "3.0");
    for (int i = 0; i < 4; i++) {
        s_make_tar (pkg, bad [i]);
        assert (af_install_builtin (home, pkg, &info, err, sizeof err) == -1);
        assert (strstr (err, why [i]));
        assert (zsys_file_exists (path));
        assert (af_install_record_read (home, "demo", &back) == 0 && streq (back.version_name, "2.0"));
    }
    snprintf (path, sizeof path, "%s/evil", home);
    assert (!zsys_file_exists (path));
    assert (!zsys_file_exists ("/tmp/af_install_abs_evil"));
    //  Not an archive at all
    FILE *file = fopen (pkg, "w");
    fprintf (file, "this is not a tar file, not even close................................\n");
    fclose (file);
    assert (af_install_builtin (home, pkg, &info, err, sizeof err) == -1 && strstr (err, "not a valid archive"));
    //  No staging directories left behind
    snprintf (path, sizeof path, "%s/apps", home);
    zdir_t *apps = zdir_new (path, "-");
    assert (zdir_count (apps) == 0);            //  only apps/demo/..., no .demo.new-*
    zdir_destroy (&apps);

    //  defaults/ seed the data directory once; user data replaces it
    const char *seeded [][3] = { { "defaults/", "d", "" }, { "defaults/settings", "f", "default\n" },
                                 { "bin", "f", "x" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, seeded);
    strcpy (info.program, "seeded");
    assert (af_install_builtin (home, pkg, &info, err, sizeof err) == 0);
    snprintf (path, sizeof path, "%s/data/seeded/settings", home);
    assert (zsys_file_exists (path));
    char user [700], packed [700];
    snprintf (user, sizeof user, "%s/user", home);
    assert (zsys_dir_create ("%s/sub", user) == 0);
    snprintf (path, sizeof path, "%s/user/history", home);
    file = fopen (path, "w");
    fprintf (file, "mine\n");
    fclose (file);
    snprintf (packed, sizeof packed, "%s/user.tar", home);
    assert (af_install_pack_dir (user, packed, err, sizeof err) == 0);
    assert (af_install_data (home, "data", "seeded", packed, err, sizeof err) == 0);
    snprintf (path, sizeof path, "%s/data/seeded/history", home);
    assert (zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/data/seeded/settings", home);
    assert (!zsys_file_exists (path));          //  replaced, not merged
    snprintf (path, sizeof path, "%s/data/seeded/sub", home);
    struct stat sub;
    assert (stat (path, &sub) == 0 && S_ISDIR (sub.st_mode));
    //  An empty directory is not worth sending
    snprintf (path, sizeof path, "%s/empty", home);
    assert (zsys_dir_create ("%s", path) == 0);
    assert (af_install_pack_dir (path, packed, err, sizeof err) == -1 && strstr (err, "empty"));

    //  Install commands: success, failure, time limit
    snprintf (path, sizeof path, "%s/install.log", home);
    af_install_cmd_t *cmd = af_install_cmd_start ("test -f \"$AF_PACKAGE\" && test \"$1\" = \"$AF_PACKAGE\"",
                                                  pkg, &info, 5000, path, err, sizeof err);
    assert (cmd);
    int rc;
    while ((rc = af_install_cmd_poll (cmd, err, sizeof err)) == 1)
        zclock_sleep (10);
    assert (rc == 0);
    af_install_cmd_destroy (&cmd);
    cmd = af_install_cmd_start ("exit 3", pkg, &info, 5000, path, err, sizeof err);
    while ((rc = af_install_cmd_poll (cmd, err, sizeof err)) == 1)
        zclock_sleep (10);
    assert (rc == -1 && strstr (err, "status 3"));
    af_install_cmd_destroy (&cmd);
    int64_t start = zclock_mono ();
    cmd = af_install_cmd_start ("sleep 10", pkg, &info, 300, path, err, sizeof err);
    while ((rc = af_install_cmd_poll (cmd, err, sizeof err)) == 1)
        zclock_sleep (10);
    assert (rc == -1 && strstr (err, "timed out"));
    assert (zclock_mono () - start < 2000);
    af_install_cmd_destroy (&cmd);

    s_remove_tree (home);
    if (verbose)
        printf ("OK\n");
}
