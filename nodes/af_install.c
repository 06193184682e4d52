/*  =========================================================================
    af_install - the node's package installer and install records

    The design is in af_install.h: every name and link of an archive is
    checked against a model of the tree it makes before anything is
    written, the new tree and its record are both ready before either
    replaces the old, and trees are removed without following links.
    =========================================================================
*/
#include "af_install.h"

#include <archive.h>
#include <archive_entry.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <signal.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

//  --------------------------------------------------------------------------
//  Files and trees

//  Write all size bytes. 0, or -1 with errno (a full disk shows as a
//  short write first, and says why only at the next one)
static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t n = write (fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            return -1;
        }
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

//  Make the renames done in dir durable. Best effort: they are done
//  either way, and nothing could be undone if this failed.
static void
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync (fd))
            zsys_warning ("install: cannot sync %s: %s", dir, strerror (errno));
        close (fd);
    }
}

//  Remove path and everything under it, dot-files and all, never following
//  a link (a link is removed, not what it names) nor crossing into another
//  file system. 0, also when path does not exist, or -1 with errno of the
//  first failure (what can be removed still is).
static int
s_remove_tree (const char *path)
{
    struct stat st;
    if (lstat (path, &st))
        return errno == ENOENT? 0: -1;
    if (!S_ISDIR (st.st_mode))
        return unlink (path);
    char *paths [] = { (char *) path, NULL };
    FTS *fts = fts_open (paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
    if (!fts)
        return -1;
    int failed = 0;
    FTSENT *entry;
    while ((errno = 0, entry = fts_read (fts)) != NULL) {
        int rc = 0;
        if (entry->fts_info == FTS_D)
            continue;                   //  its contents come first, then FTS_DP
        if (entry->fts_info == FTS_DP)
            rc = rmdir (entry->fts_accpath);
        else
        if (entry->fts_info == FTS_DNR || entry->fts_info == FTS_ERR || entry->fts_info == FTS_NS) {
            errno = entry->fts_errno;
            rc = -1;
            if (entry->fts_info == FTS_DNR)
                rmdir (entry->fts_accpath);     //  if it happens to be empty
        }
        else
            rc = unlink (entry->fts_accpath);   //  files, links, anything else
        if (rc && !failed)
            failed = errno? errno: EIO;
    }
    if (errno && !failed)
        failed = errno;
    fts_close (fts);
    if (failed) {
        errno = failed;
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Install records: HOME/installed/PROGRAM.json, written as a synced
//  temporary beside it (PROGRAM.json.tmp) and put in place by rename

static void
s_record_paths (const char *home, const char *program, char *path, size_t size, char *tmp, size_t tmpsize)
{
    snprintf (path, size, "%s/installed/%s.json", home, program);
    snprintf (tmp, tmpsize, "%s/installed/%s.json.tmp", home, program);
}

//  Write the record to its temporary, synced. AF_OK, or AF_E_INTERNAL with
//  err and no temporary left
static int
s_record_prepare (const char *home, const af_install_info_t *info, json_t *files, char *err, size_t errlen)
{
    char dir [600], path [700], tmp [710];
    snprintf (dir, sizeof dir, "%s/installed", home);
    s_record_paths (home, info->program, path, sizeof path, tmp, sizeof tmp);
    if (zsys_dir_create ("%s", dir)) {
        snprintf (err, errlen, "cannot create %s: %s", dir, strerror (errno));
        return AF_E_INTERNAL;
    }
    json_t *record = json_pack ("{s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:o}",
        "program", info->program, "versionName", info->version_name,
        "versionCode", (json_int_t) info->version_code, "hash", info->hash, "pushId", info->push_id,
        "installedAt", (json_int_t) info->installed_at, "method", info->method,
        "files", files? json_incref (files): json_array ());
    char *text = record? json_dumps (record, JSON_COMPACT): NULL;
    json_decref (record);
    if (!text) {
        snprintf (err, errlen, "cannot encode the install record of %s", info->program);
        return AF_E_INTERNAL;
    }
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && s_write_all (fd, text, strlen (text)) == 0 && fsync (fd) == 0;
    int error = errno;
    if (fd >= 0 && close (fd) && ok) {
        error = errno;
        ok = false;
    }
    free (text);
    if (!ok) {
        snprintf (err, errlen, "cannot write the install record %s: %s", path,
                  error == ENOSPC || error == EFBIG? "the disk is full": strerror (error));
        unlink (tmp);
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  Put the prepared record in place. AF_OK, or AF_E_INTERNAL with err (the
//  temporary is the caller's to discard)
static int
s_record_commit (const char *home, const char *program, char *err, size_t errlen)
{
    char dir [600], path [700], tmp [710];
    snprintf (dir, sizeof dir, "%s/installed", home);
    s_record_paths (home, program, path, sizeof path, tmp, sizeof tmp);
    if (rename (tmp, path)) {
        snprintf (err, errlen, "cannot write the install record %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    s_sync_dir (dir);
    return AF_OK;
}

static void
s_record_discard (const char *home, const char *program)
{
    char path [700], tmp [710];
    s_record_paths (home, program, path, sizeof path, tmp, sizeof tmp);
    unlink (tmp);
}

int
af_install_record_write (const char *home, const af_install_info_t *info, json_t *files,
                         char *err, size_t errlen)
{
    int code = af_program_check (info->program, err, errlen);
    if (code == AF_OK)
        code = s_record_prepare (home, info, files, err, errlen);
    if (code == AF_OK && (code = s_record_commit (home, info->program, err, errlen)) != AF_OK)
        s_record_discard (home, info->program);
    return code;
}

int
af_install_record_read (const char *home, const char *program, af_install_info_t *info, bool *found)
{
    assert (found);
    *found = false;
    if (af_program_check (program, NULL, 0) != AF_OK)
        return AF_E_MALFORMED;
    char path [700];
    snprintf (path, sizeof path, "%s/installed/%s.json", home, program);
    FILE *file = fopen (path, "r");
    if (!file) {
        if (errno == ENOENT || errno == ENOTDIR)
            return AF_OK;                   //  not installed
        zsys_warning ("install: cannot read the install record %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    json_error_t jerr;
    json_t *record = json_loadf (file, 0, &jerr);
    fclose (file);
    if (!json_is_object (record)) {
        zsys_warning ("install: the install record %s is unreadable: %s", path,
                      record? "not a JSON object": jerr.text);
        json_decref (record);
        return AF_E_MALFORMED;
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
    *found = true;
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Names and links

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

//  The canonical form of a checked entry name (relative, no ".."), as it
//  will be written: empty and "." components dropped, since tar writes
//  "./app/x" and "app/", so "./app//x/" is "app/x" and "./" is "" (the app
//  directory itself). 0, or -1 if it is not such a name.
static int
s_canonical (const char *name, char *out, size_t outlen)
{
    if (!name || *name == '/' || !s_no_dotdot (name))
        return -1;
    size_t used = 0;
    const char *p = name;
    while (*p) {
        size_t len = strcspn (p, "/");
        if (len && !(len == 1 && *p == '.')) {
            if (used + len + 2 > outlen)
                return -1;
            if (used)
                out [used++] = '/';
            memcpy (out + used, p, len);
            used += len;
        }
        p += len;
        while (*p == '/')
            p++;
    }
    out [used] = 0;
    return 0;
}

//  Is a link target a plain path below the link's own directory: relative,
//  and every component a name (not empty, ".", or "..")? Such a link names
//  something inside the directory it is in, whatever that directory is.
static bool
s_target_plain (const char *target)
{
    if (!target || !*target || *target == '/' || strlen (target) > AF_INSTALL_MAX_NAME)
        return false;
    const char *p = target;
    while (true) {
        size_t len = strcspn (p, "/");
        if (len == 0 || (len == 1 && p [0] == '.') || (len == 2 && p [0] == '.' && p [1] == '.'))
            return false;
        p += len;
        if (!*p)
            return true;
        p++;                            //  one '/'; a second makes an empty component
    }
}

//  The tree an archive makes, modelled before anything is written: a node
//  for each file, directory and link, and for each directory that names
//  only imply. A node is found by its parent's number and its own name
//  ("1f/lib"), so entering a name costs its length however deep it is.
typedef struct {
    uint32_t id;
    char kind;              //  'd' directory, 'f' file, 'l' link; 0 implied directory
} node_t;

typedef struct {
    uint32_t parent;        //  the node of the link's directory
    char *name;             //  the link's canonical name (for messages)
    char *target;
} link_t;

typedef struct {
    zhashx_t *nodes;        //  "PARENT-ID/NAME" (id in hex; the root is 0) -> node_t
    zlistx_t *links;        //  link_t, checked once the whole tree is known
    uint32_t count;
} tree_t;

static void
s_node_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_link_destroy (void **item)
{
    link_t *link = (link_t *) *item;
    if (link) {
        free (link->name);
        free (link->target);
        free (link);
    }
    *item = NULL;
}

static const char *
s_kind_name (char kind)
{
    return kind == 'f'? "file": kind == 'l'? "link": "directory";
}

//  Enter a canonical name of kind 'd', 'f' or 'l' (with its target). AF_OK,
//  or with err AF_E_MALFORMED (the name goes through a file or a link,
//  names again what the archive has as another kind, or names a link a
//  second time) or AF_E_TOO_BIG (past AF_INSTALL_MAX_NODES).
static int
s_tree_enter (tree_t *tree, const char *name, char kind, const char *target, char *err, size_t errlen)
{
    if (!*name) {
        if (kind == 'd')
            return AF_OK;
        snprintf (err, errlen, "archive entry '.' is a %s in place of the app directory", s_kind_name (kind));
        return AF_E_MALFORMED;
    }
    char key [AF_INSTALL_MAX_NAME + 16];
    uint32_t parent = 0;
    const char *p = name;
    while (true) {
        size_t len = strcspn (p, "/");
        bool last = p [len] == 0;
        snprintf (key, sizeof key, "%x/%.*s", parent, (int) len, p);
        node_t *node = (node_t *) zhashx_lookup (tree->nodes, key);
        if (!node) {
            if (++tree->count > AF_INSTALL_MAX_NODES) {
                snprintf (err, errlen, "archive makes more than %d files, directories and links "
                          "(counting the directories its names imply)", AF_INSTALL_MAX_NODES);
                return AF_E_TOO_BIG;
            }
            node = (node_t *) zmalloc (sizeof (node_t));
            node->id = tree->count;
            node->kind = last? kind: 0;
            zhashx_insert (tree->nodes, key, node);
        }
        else
        if (!last) {
            if (node->kind == 'f' || node->kind == 'l') {
                snprintf (err, errlen, "archive entry '%.200s' is inside the %s '%.*s'", name,
                          s_kind_name (node->kind), (int) (p + len - name), name);
                return AF_E_MALFORMED;
            }
        }
        else
        if (node->kind == 0) {
            if (kind != 'd') {
                snprintf (err, errlen, "archive entry '%.200s' is a %s, but other entries are inside it",
                          name, s_kind_name (kind));
                return AF_E_MALFORMED;
            }
            node->kind = 'd';
        }
        else
        if (node->kind != kind || kind == 'l') {
            snprintf (err, errlen, "archive entry '%.200s' appears twice, as a %s and as a %s", name,
                      s_kind_name (node->kind), s_kind_name (kind));
            return AF_E_MALFORMED;
        }
        if (last)
            break;
        parent = node->id;
        p += len + 1;
    }
    if (kind == 'l') {
        link_t *link = (link_t *) zmalloc (sizeof (link_t));
        link->parent = parent;
        link->name = strdup (name);
        link->target = strdup (target);
        assert (link->name && link->target);
        zlistx_add_end (tree->links, link);
    }
    return AF_OK;
}

//  A link's target, walked from the link's directory through the finished
//  tree: every component before the last that the archive has must be a
//  directory. The last may be anything (a file, a directory, a link, or
//  nothing). AF_OK, or AF_E_MALFORMED with err.
static int
s_tree_link_check (tree_t *tree, const link_t *link, char *err, size_t errlen)
{
    char key [AF_INSTALL_MAX_NAME + 16];
    uint32_t parent = link->parent;
    const char *p = link->target;
    while (true) {
        size_t len = strcspn (p, "/");
        if (!p [len])
            return AF_OK;
        snprintf (key, sizeof key, "%x/%.*s", parent, (int) len, p);
        node_t *node = (node_t *) zhashx_lookup (tree->nodes, key);
        if (!node)
            return AF_OK;               //  the rest is not in the archive
        if (node->kind == 'f' || node->kind == 'l') {
            snprintf (err, errlen, "archive entry '%.200s' links to '%.200s' through the %s '%.*s'",
                      link->name, link->target, s_kind_name (node->kind), (int) (p + len - link->target),
                      link->target);
            return AF_E_MALFORMED;
        }
        parent = node->id;
        p += len + 1;
    }
}

//  --------------------------------------------------------------------------
//  Built-in installer

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

//  Pass 1: read every header and refuse anything unsafe, before writing.
//  AF_OK, or with err AF_E_MALFORMED or AF_E_TOO_BIG (too many entries).
static int
s_check (const char *package, char *err, size_t errlen)
{
    struct archive *reader = s_open (package, err, errlen);
    if (!reader)
        return AF_E_MALFORMED;
    tree_t tree = { zhashx_new (), zlistx_new (), 0 };
    zhashx_set_destructor (tree.nodes, s_node_destroy);
    zlistx_set_destructor (tree.links, s_link_destroy);
    struct archive_entry *entry;
    size_t count = 0;
    int rc = AF_OK, r;
    while ((r = archive_read_next_header (reader, &entry)) == ARCHIVE_OK) {
        const char *path = archive_entry_pathname (entry);
        const char *target = archive_entry_symlink (entry);
        mode_t type = archive_entry_filetype (entry);
        char name [AF_INSTALL_MAX_NAME + 1];
        if (++count > AF_INSTALL_MAX_ENTRIES) {
            snprintf (err, errlen, "archive has more than %d entries", AF_INSTALL_MAX_ENTRIES);
            rc = AF_E_TOO_BIG;
        }
        else
        if (!path || !*path || strlen (path) > AF_INSTALL_MAX_NAME) {
            snprintf (err, errlen, "archive entry %zu has no name or one over %d bytes", count,
                      AF_INSTALL_MAX_NAME);
            rc = AF_E_MALFORMED;
        }
        else
        if (*path == '/') {
            snprintf (err, errlen, "archive entry '%.200s' is an absolute path", path);
            rc = AF_E_MALFORMED;
        }
        else
        if (!s_no_dotdot (path)) {
            snprintf (err, errlen, "archive entry '%.200s' leaves the app directory (..)", path);
            rc = AF_E_MALFORMED;
        }
        else
        if (archive_entry_hardlink (entry)) {
            snprintf (err, errlen, "archive entry '%.200s' is a hard link (not allowed)", path);
            rc = AF_E_MALFORMED;
        }
        else
        if (type == AE_IFLNK && !s_target_plain (target)) {
            snprintf (err, errlen, "archive entry '%.200s' links out of its directory (to '%.200s'): "
                      "a link must name a path below its own directory, without '.', '..' or '//'",
                      path, target? target: "");
            rc = AF_E_MALFORMED;
        }
        else
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
            snprintf (err, errlen, "archive entry '%.200s' is not a file, directory or link", path);
            rc = AF_E_MALFORMED;
        }
        else
        if (s_canonical (path, name, sizeof name)) {
            snprintf (err, errlen, "archive entry '%.200s' has a name that cannot be written", path);
            rc = AF_E_MALFORMED;
        }
        else
            rc = s_tree_enter (&tree, name, type == AE_IFDIR? 'd': type == AE_IFLNK? 'l': 'f',
                               target, err, errlen);
        if (rc != AF_OK)
            break;
    }
    if (rc == AF_OK && r != ARCHIVE_EOF) {
        snprintf (err, errlen, "not a valid archive: %s", archive_error_string (reader));
        rc = AF_E_MALFORMED;
    }
    if (rc == AF_OK && count == 0) {
        snprintf (err, errlen, "not a valid archive: it has no entries");
        rc = AF_E_MALFORMED;
    }
    for (link_t *link = (link_t *) zlistx_first (tree.links); link && rc == AF_OK;
         link = (link_t *) zlistx_next (tree.links))
        rc = s_tree_link_check (&tree, link, err, errlen);
    zlistx_destroy (&tree.links);
    zhashx_destroy (&tree.nodes);
    archive_read_free (reader);
    return rc;
}

//  Pass 2: unpack into dir (which exists). Fills files with the paths.
//  With a prefix ("defaults/"), only the entries under it, without it.
//  Names are written in their canonical form, the form s_check modelled.
//  AF_OK, or with err AF_E_MALFORMED (the archive is not what s_check read)
//  or AF_E_INTERNAL (cannot write: a full disk, ...).
static int
s_extract (const char *package, const char *dir, const char *prefix, json_t *files,
           char *err, size_t errlen)
{
    struct archive *reader = s_open (package, err, errlen);
    if (!reader)
        return AF_E_MALFORMED;
    struct archive *writer = archive_write_disk_new ();
    //  libarchive's own guards, as a second line behind s_check (not
    //  NOABSOLUTEPATHS: we give it absolute paths under the staging dir)
    archive_write_disk_set_options (writer, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS
                                  | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM);
    struct archive_entry *entry;
    int rc = AF_OK, r;
    char path [AF_INSTALL_MAX_NAME + 700];
    while (rc == AF_OK && (r = archive_read_next_header (reader, &entry)) == ARCHIVE_OK) {
        char name [AF_INSTALL_MAX_NAME + 1];
        mode_t type = archive_entry_filetype (entry);
        //  The file is the one s_check read; these hold again if it is not
        if (s_canonical (archive_entry_pathname (entry), name, sizeof name) || archive_entry_hardlink (entry)
        ||  (type == AE_IFLNK && !s_target_plain (archive_entry_symlink (entry)))) {
            snprintf (err, errlen, "the archive changed while it was unpacked");
            rc = AF_E_MALFORMED;
            break;
        }
        if (prefix) {
            size_t len = strlen (prefix);
            if (strncmp (name, prefix, len) || !name [len]) {
                archive_read_data_skip (reader);
                continue;
            }
            memmove (name, name + len, strlen (name + len) + 1);
        }
        if (!*name) {                   //  the directory itself is ours
            archive_read_data_skip (reader);
            continue;
        }
        snprintf (path, sizeof path, "%s/%s", dir, name);
        archive_entry_set_pathname (entry, path);
        archive_entry_set_perm (entry, archive_entry_perm (entry) & 0777);   //  no setuid/setgid/sticky
        if (type != AE_IFDIR)
            json_array_append_new (files, json_string (name));
        if (archive_write_header (writer, entry) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot unpack '%.200s': %s", name, archive_error_string (writer));
            rc = AF_E_INTERNAL;
            break;
        }
        const void *block;
        size_t size;
        la_int64_t offset;
        while ((r = archive_read_data_block (reader, &block, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block (writer, block, size, offset) != ARCHIVE_OK) {
                snprintf (err, errlen, "cannot write '%.200s': %s", name,
                          errno == ENOSPC || errno == EFBIG? "the disk is full": archive_error_string (writer));
                rc = AF_E_INTERNAL;
                break;
            }
        if (rc == AF_OK && r != ARCHIVE_EOF) {
            snprintf (err, errlen, "not a valid archive: %s", archive_error_string (reader));
            rc = AF_E_MALFORMED;
        }
        if (rc == AF_OK && archive_write_finish_entry (writer) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot write '%.200s': %s", name,
                      errno == ENOSPC || errno == EFBIG? "the disk is full": archive_error_string (writer));
            rc = AF_E_INTERNAL;
        }
    }
    if (archive_write_close (writer) != ARCHIVE_OK && rc == AF_OK) {
        snprintf (err, errlen, "cannot finish unpacking: %s", archive_error_string (writer));
        rc = AF_E_INTERNAL;
    }
    archive_write_free (writer);
    archive_read_free (reader);
    return rc;
}

//  Staging: a new tree is unpacked in PARENT/.NAME.new-TAG, swapped in for
//  PARENT/NAME by two renames (the old tree moved to PARENT/.NAME.old-TAG)
//  and the old tree removed. Until the swap PARENT/NAME is untouched, and a
//  swap can be undone. The names are hidden, and no program ID starts with
//  '.', so they never meet an app's.
typedef struct {
    char parent [600], stage [700], old [700], live [700];
    bool had;                   //  there was a PARENT/NAME to move aside
    bool swapped;               //  the new tree is PARENT/NAME
} swap_t;

static int
s_swap_stage (swap_t *self, const char *parent, const char *name, char *err, size_t errlen)
{
    memset (self, 0, sizeof *self);
    uint8_t rand [4];
    randombytes_buf (rand, sizeof rand);
    char tag [9];
    sodium_bin2hex (tag, sizeof tag, rand, sizeof rand);
    snprintf (self->parent, sizeof self->parent, "%s", parent);
    snprintf (self->stage, sizeof self->stage, "%s/.%s.new-%s", parent, name, tag);
    snprintf (self->old, sizeof self->old, "%s/.%s.old-%s", parent, name, tag);
    snprintf (self->live, sizeof self->live, "%s/%s", parent, name);
    if (zsys_dir_create ("%s", parent) || mkdir (self->stage, 0755)) {
        snprintf (err, errlen, "cannot create %s: %s", self->stage, strerror (errno));
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  Swap the staged tree in. AF_OK, or AF_E_INTERNAL with err and
//  PARENT/NAME as it was
static int
s_swap_in (swap_t *self, char *err, size_t errlen)
{
    struct stat st;
    self->had = lstat (self->live, &st) == 0;
    if (self->had && rename (self->live, self->old)) {
        snprintf (err, errlen, "cannot move the current %s aside: %s", self->live, strerror (errno));
        return AF_E_INTERNAL;
    }
    if (rename (self->stage, self->live)) {
        snprintf (err, errlen, "cannot put the new %s in place: %s", self->live, strerror (errno));
        if (self->had && rename (self->old, self->live))
            zsys_error ("install: cannot put %s back: %s", self->live, strerror (errno));
        return AF_E_INTERNAL;
    }
    self->swapped = true;
    s_sync_dir (self->parent);
    return AF_OK;
}

//  Undo a swap: the new tree back to staging, the old one in place. If a
//  rename fails (renames in one directory hardly do) the new tree stays
//  in place rather than none.
static void
s_swap_back (swap_t *self)
{
    if (!self->swapped)
        return;
    if (rename (self->live, self->stage)) {
        zsys_error ("install: cannot take the new %s out again: %s", self->live, strerror (errno));
        return;
    }
    if (self->had && rename (self->old, self->live)) {
        zsys_error ("install: cannot put the previous %s back: %s", self->live, strerror (errno));
        if (rename (self->stage, self->live))
            zsys_error ("install: cannot put the new %s back either: %s", self->live, strerror (errno));
        return;
    }
    self->swapped = false;
    s_sync_dir (self->parent);
}

//  Remove what is not in place: the old tree after a swap, else the staged one
static void
s_swap_end (swap_t *self)
{
    const char *path = self->swapped? self->old: self->stage;
    if (s_remove_tree (path))
        zsys_warning ("install: cannot remove %s: %s (it goes at the next start)", path, strerror (errno));
}

//  Unpack (the prefix part of) a checked archive as parent/name, staged
//  and swapped in. AF_OK, or s_extract's or the swap's code with
//  parent/name as it was.
static int
s_unpack_swap (const char *parent, const char *name, const char *package, const char *prefix,
               json_t *files, char *err, size_t errlen)
{
    swap_t swap;
    int code = s_swap_stage (&swap, parent, name, err, errlen);
    if (code != AF_OK)
        return code;
    code = s_extract (package, swap.stage, prefix, files, err, errlen);
    if (code == AF_OK)
        code = s_swap_in (&swap, err, errlen);
    s_swap_end (&swap);
    return code;
}

int
af_install_builtin (const char *home, const char *package, const af_install_info_t *info,
                    char *err, size_t errlen)
{
    int rc = af_program_check (info->program, err, errlen);
    if (rc == AF_OK)
        rc = s_check (package, err, errlen);
    if (rc != AF_OK)
        return rc;
    char apps [600], data [600], defaults [700];
    snprintf (apps, sizeof apps, "%s/apps", home);
    af_install_info_t record = *info;
    snprintf (record.method, sizeof record.method, "builtin");
    swap_t swap;
    if ((rc = s_swap_stage (&swap, apps, info->program, err, errlen)) != AF_OK)
        return rc;
    //  The tree is unpacked and its record written aside first; the swap
    //  and the record's rename come last, and a failed rename undoes the
    //  swap. A failure at any step (a full disk) leaves the old tree with
    //  the old record, never a tree without its record.
    json_t *files = json_array ();
    bool prepared = false;
    rc = s_extract (package, swap.stage, NULL, files, err, errlen);
    if (rc == AF_OK)
        prepared = (rc = s_record_prepare (home, &record, files, err, errlen)) == AF_OK;
    if (rc == AF_OK)
        rc = s_swap_in (&swap, err, errlen);
    if (rc == AF_OK && (rc = s_record_commit (home, record.program, err, errlen)) != AF_OK)
        s_swap_back (&swap);
    if (rc != AF_OK && prepared)
        s_record_discard (home, record.program);
    s_swap_end (&swap);
    json_decref (files);
    if (rc != AF_OK)
        return rc;
    //  A package's defaults/ (a real directory) seed the app's data
    //  directory on first install
    struct stat st;
    snprintf (data, sizeof data, "%s/data/%s", home, info->program);
    snprintf (defaults, sizeof defaults, "%s/%s/defaults", apps, info->program);
    if (lstat (defaults, &st) == 0 && S_ISDIR (st.st_mode) && lstat (data, &st) != 0) {
        snprintf (data, sizeof data, "%s/data", home);
        json_t *seeded = json_array ();
        if (s_unpack_swap (data, info->program, package, "defaults/", seeded, err, errlen) != AF_OK)
            zsys_warning ("install: %s installed, but its defaults were not copied: %s", info->program, err);
        json_decref (seeded);
    }
    return AF_OK;
}

int
af_install_remove (const char *home, const char *program, char *err, size_t errlen)
{
    if (af_program_check (program, err, errlen) != AF_OK)
        return AF_E_MALFORMED;
    char live [700], gone [720];
    snprintf (live, sizeof live, "%s/apps/%s", home, program);
    snprintf (gone, sizeof gone, "%s/apps/.%s.gone", home, program);
    struct stat st;
    if (lstat (live, &st))
        return AF_OK;
    //  Out of the way in one step, then removed
    if (s_remove_tree (gone)) {
        snprintf (err, errlen, "cannot remove the leftover %s: %s", gone, strerror (errno));
        return AF_E_INTERNAL;
    }
    if (rename (live, gone)) {
        snprintf (err, errlen, "cannot remove %s: %s", live, strerror (errno));
        return AF_E_INTERNAL;
    }
    if (s_remove_tree (gone))
        zsys_warning ("install: %s is uninstalled, but %s could not be removed: %s (it goes at the next start)",
                      program, gone, strerror (errno));
    return AF_OK;
}

int
af_install_data (const char *home, const char *kind, const char *program, const char *archive,
                 char *err, size_t errlen)
{
    //  A program ID, or the scratch name `config show` opens a copy under
    if (af_program_check (strncmp (program, AF_INSTALL_SCRATCH, strlen (AF_INSTALL_SCRATCH))? program:
                          program + strlen (AF_INSTALL_SCRATCH), err, errlen) != AF_OK)
        return AF_E_MALFORMED;
    if (strcmp (kind, "data") && strcmp (kind, "config")) {
        snprintf (err, errlen, "'%s' is not data or config", kind);
        return AF_E_MALFORMED;
    }
    int code = s_check (archive, err, errlen);
    if (code != AF_OK)
        return code;
    char data [600];
    snprintf (data, sizeof data, "%s/%s", home, kind);
    json_t *files = json_array ();
    code = s_unpack_swap (data, program, archive, NULL, files, err, errlen);
    json_decref (files);
    return code;
}

//  Is name one of the staging names s_swap_stage and af_install_remove
//  make for a program: .PROGRAM.new-TAG, .PROGRAM.old-TAG (TAG: 8 hex
//  digits) or .PROGRAM.gone, or a scratch copy .show-PROGRAM? Or, in
//  installed/, a record's temporary PROGRAM.json.tmp?
static bool
s_is_stale (const char *name, bool records)
{
    size_t len = strlen (name), start = 1, plen = 0;
    if (records) {
        start = 0;
        if (len > 9 && streq (name + len - 9, ".json.tmp"))
            plen = len - 9;
    }
    else
    if (*name != '.')
        return false;
    else
    if (strncmp (name, AF_INSTALL_SCRATCH, strlen (AF_INSTALL_SCRATCH)) == 0) {
        start = strlen (AF_INSTALL_SCRATCH);
        plen = len - start;
    }
    else
    if (len > 6 && streq (name + len - 5, ".gone"))
        plen = len - 6;
    else
    if (len > 14 && (strncmp (name + len - 13, ".new-", 5) == 0 || strncmp (name + len - 13, ".old-", 5) == 0)
    &&  strspn (name + len - 8, "0123456789abcdef") == 8)
        plen = len - 14;
    if (plen == 0 || plen > AF_MAX_PROGRAM)
        return false;
    char program [AF_MAX_PROGRAM + 1];
    memcpy (program, name + start, plen);
    program [plen] = 0;
    return af_program_check (program, NULL, 0) == AF_OK;
}

int
af_install_clean_stale (const char *home, size_t *removed, char *err, size_t errlen)
{
    assert (removed);
    static const char *dirs [] = { "apps", "data", "config", "installed" };
    int rc = AF_OK;
    *removed = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs [0]; d++) {
        char dir [600], path [900];
        snprintf (dir, sizeof dir, "%s/%s", home, dirs [d]);
        DIR *handle = opendir (dir);
        if (!handle) {
            if (errno != ENOENT && rc == AF_OK) {
                snprintf (err, errlen, "cannot read %s: %s", dir, strerror (errno));
                rc = AF_E_INTERNAL;
            }
            continue;
        }
        //  Names first, removal after: readdir need not see a directory
        //  that changes under it
        zlistx_t *stale = zlistx_new ();
        zlistx_set_destructor (stale, (zlistx_destructor_fn *) zstr_free);
        zlistx_set_duplicator (stale, (zlistx_duplicator_fn *) strdup);
        struct dirent *entry;
        while ((entry = readdir (handle)))
            if (s_is_stale (entry->d_name, streq (dirs [d], "installed")))
                zlistx_add_end (stale, entry->d_name);
        closedir (handle);
        for (char *name = (char *) zlistx_first (stale); name; name = (char *) zlistx_next (stale)) {
            snprintf (path, sizeof path, "%s/%s", dir, name);
            if (s_remove_tree (path)) {
                if (rc == AF_OK)
                    snprintf (err, errlen, "cannot remove %s: %s", path, strerror (errno));
                rc = AF_E_INTERNAL;
            }
            else {
                zsys_info ("install: removed %s, left by an install or removal that did not finish", path);
                (*removed)++;
            }
        }
        zlistx_destroy (&stale);
    }
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
    int rc = AF_OK;
    if (archive_write_open_filename (writer, archive) != ARCHIVE_OK) {
        snprintf (err, errlen, "cannot write %s: %s", archive, archive_error_string (writer));
        rc = AF_E_INTERNAL;
    }
    else
    if (archive_read_disk_open (disk, dir) != ARCHIVE_OK) {
        snprintf (err, errlen, "cannot read %s: %s", dir, archive_error_string (disk));
        rc = AF_E_INTERNAL;
    }
    size_t dirlen = strlen (dir);
    size_t count = 0;
    struct archive_entry *entry = archive_entry_new ();
    while (rc == AF_OK) {
        archive_entry_clear (entry);
        int r = archive_read_next_header2 (disk, entry);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot read %s: %s", dir, archive_error_string (disk));
            rc = AF_E_INTERNAL;
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
            rc = AF_E_TOO_BIG;
            break;
        }
        if (archive_write_header (writer, entry) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot pack %s: %s", path, archive_error_string (writer));
            rc = AF_E_INTERNAL;
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
                rc = AF_E_INTERNAL;
            }
            if (fd >= 0)
                close (fd);
        }
    }
    archive_entry_free (entry);
    archive_read_close (disk);
    archive_read_free (disk);
    if (archive_write_close (writer) != ARCHIVE_OK && rc == AF_OK) {
        snprintf (err, errlen, "cannot write %s: %s", archive, archive_error_string (writer));
        rc = AF_E_INTERNAL;
    }
    archive_write_free (writer);
    if (rc == AF_OK && count == 0) {
        snprintf (err, errlen, "%s is empty", dir);
        rc = AF_E_MALFORMED;
    }
    if (rc != AF_OK)
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
af_install_cmd_poll (af_install_cmd_t *self, bool *running, char *err, size_t errlen)
{
    assert (self && running);
    *running = false;
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
            *running = true;
            return AF_OK;
        }
    }
    if (self->killed_at) {
        kill (-self->pid, SIGKILL);     //  what the shell left behind
        snprintf (err, errlen, "the install command timed out after %d s and was killed",
                  (self->timeout_ms + 999) / 1000);
        return AF_E_INTERNAL;
    }
    if (WIFEXITED (self->status) && WEXITSTATUS (self->status) == 0)
        return AF_OK;
    if (WIFEXITED (self->status))
        snprintf (err, errlen, "the install command exited with status %d", WEXITSTATUS (self->status));
    else
        snprintf (err, errlen, "the install command was killed by signal %d", WTERMSIG (self->status));
    return AF_E_INTERNAL;
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

//  The entries of a directory as readdir sees them (dot-files included,
//  unlike zdir), space-separated into names; their number, -1 if no dir
static int
s_entries (const char *dir, char *names, size_t size)
{
    *names = 0;
    DIR *handle = opendir (dir);
    if (!handle)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, "..")) {
            count++;
            size_t used = strlen (names);
            snprintf (names + used, size - used, "%s%s", used? " ": "", entry->d_name);
        }
    closedir (handle);
    return count;
}

static void
s_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    assert (fclose (file) == 0);
}

//  The first line of a file, "" if none
static const char *
s_first_line (const char *path, char *line, size_t size)
{
    *line = 0;
    FILE *file = fopen (path, "r");
    if (file) {
        if (!fgets (line, (int) size, file))
            *line = 0;
        fclose (file);
    }
    return line;
}

//  The archive every section starts from: a directory, files, a link inside
static const char *s_good [][3] = { { "app/", "d", "" }, { "app/README", "f", "hello\n" },
                                    { "app/bin", "f", "#!/bin/sh\n" }, { "app/link", "l", "README" },
                                    { NULL, NULL, NULL } };

//  A good archive installs; a newer version replaces its tree
static void
s_test_install_and_upgrade (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512];
    s_make_tar (pkg, s_good);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/apps/demo/app/README", home);
    assert (zsys_file_exists (path));
    struct stat st;
    snprintf (path, sizeof path, "%s/apps/demo/app/bin", home);
    assert (stat (path, &st) == 0 && (st.st_mode & 07000) == 0);
    af_install_info_t back;
    bool found;
    assert (af_install_record_read (home, "demo", &back, &found) == AF_OK && found);
    assert (streq (back.version_name, "1.0") && streq (back.method, "builtin"));

    //  A newer version replaces the tree
    const char *newer [][3] = { { "app/", "d", "" }, { "app/NEW", "f", "2\n" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, newer);
    strcpy (info->version_name, "2.0");
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/apps/demo/app/README", home);
    assert (!zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/apps/demo/app/NEW", home);
    assert (zsys_file_exists (path));
}

//  Hostile archives: refused before anything is written, version 2.0
//  intact. Links: only a plain path below the link's own directory, and
//  nothing in the archive written through a link or a file.
static void
s_test_hostile_archives (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512], names [1024];
    af_install_info_t back;
    bool found;
    //  Version 2.0's file, which every refusal must leave in place
    snprintf (path, sizeof path, "%s/apps/demo/app/NEW", home);
    const char *dotdot [][3] = { { "app/", "d", "" }, { "../evil", "f", "x" }, { NULL, NULL, NULL } };
    const char *absolute [][3] = { { "/tmp/af_install_abs_evil", "f", "x" }, { NULL, NULL, NULL } };
    const char *linkout [][3] = { { "link", "l", "../../outside" }, { "link/x", "f", "x" },
                                  { NULL, NULL, NULL } };
    const char *hard [][3] = { { "a", "f", "x" }, { "b", "h", "a" }, { NULL, NULL, NULL } };
    //  The chain: each link looks inside by its own text
    const char *chain [][3] = { { "y", "l", "." }, { "x", "l", "y/.." }, { NULL, NULL, NULL } };
    const char *passwd [][3] = { { "app/", "d", "" }, { "app/y", "l", "." }, { "app/up1", "l", "y/.." },
                                 { "app/up2", "l", "up1/.." }, { "app/up3", "l", "up2/.." },
                                 { "app/passwd", "l", "up3/etc/passwd" }, { NULL, NULL, NULL } };
    const char *up [][3] = { { "app/", "d", "" }, { "app/l", "l", "../app/x" }, { NULL, NULL, NULL } };
    const char *abs_target [][3] = { { "l", "l", "/etc/passwd" }, { NULL, NULL, NULL } };
    const char *empty_part [][3] = { { "sub/", "d", "" }, { "l", "l", "sub//x" }, { NULL, NULL, NULL } };
    const char *slash_end [][3] = { { "sub/", "d", "" }, { "l", "l", "sub/" }, { NULL, NULL, NULL } };
    const char *dot_part [][3] = { { "sub/", "d", "" }, { "l", "l", "sub/./x" }, { NULL, NULL, NULL } };
    //  A link to a link that leaves
    const char *to_leaving [][3] = { { "a", "l", "b" }, { "b", "l", "../x" }, { NULL, NULL, NULL } };
    //  A link whose target passes through a link, or a file
    const char *via_link [][3] = { { "sub/", "d", "" }, { "l", "l", "sub" }, { "m", "l", "l/x" },
                                   { NULL, NULL, NULL } };
    const char *via_later [][3] = { { "m", "l", "l/x" }, { "sub/", "d", "" }, { "l", "l", "sub" },
                                    { NULL, NULL, NULL } };
    const char *via_file [][3] = { { "f", "f", "x" }, { "l", "l", "f/x" }, { NULL, NULL, NULL } };
    //  A file written after a link of the same name, and the other way round
    const char *file_on_link [][3] = { { "sub/", "d", "" }, { "l", "l", "sub" }, { "l", "f", "x" },
                                       { NULL, NULL, NULL } };
    const char *link_on_file [][3] = { { "l", "f", "x" }, { "./l", "l", "y" }, { NULL, NULL, NULL } };
    const char *link_twice [][3] = { { "l", "l", "a" }, { "l", "l", "b" }, { NULL, NULL, NULL } };
    //  Entries whose path goes through a link
    const char *dir_via_link [][3] = { { "sub/", "d", "" }, { "l", "l", "sub" }, { "l/d/", "d", "" },
                                       { NULL, NULL, NULL } };
    const char *file_via_link [][3] = { { "sub/", "d", "" }, { "l", "l", "sub" }, { "./l//f", "f", "x" },
                                        { NULL, NULL, NULL } };
    const char *link_over_dir [][3] = { { "l/f", "f", "x" }, { "l", "l", "sub" }, { NULL, NULL, NULL } };
    const char *root_link [][3] = { { "./", "l", "x" }, { NULL, NULL, NULL } };
    const char *(*bad []) [3] = { dotdot, absolute, linkout, hard, chain, passwd, up, abs_target,
        empty_part, slash_end, dot_part, to_leaving, via_link, via_later, via_file, file_on_link,
        link_on_file, link_twice, dir_via_link, file_via_link, link_over_dir, root_link };
    const char *why [] = { "(..)", "absolute", "links out", "hard link", "'y' links out", "'app/y' links out",
        "links out", "links out", "links out", "links out", "links out", "'b' links out",
        "through the link 'l'", "through the link 'l'", "through the file 'f'", "appears twice",
        "appears twice", "appears twice", "inside the link 'l'", "inside the link 'l'",
        "other entries are inside it", "in place of the app directory" };
    size_t bad_count = sizeof bad / sizeof bad [0];
    assert (bad_count == sizeof why / sizeof why [0]);
    strcpy (info->version_name, "3.0");
    for (size_t i = 0; i < bad_count; i++) {
        s_make_tar (pkg, bad [i]);
        *err = 0;
        int rc = af_install_builtin (home, pkg, info, err, sizeof err);
        if (rc != AF_E_MALFORMED || !strstr (err, why [i]))
            printf ("\nhostile archive %zu: rc %d, '%s' (expected '%s')\n", i, rc, err, why [i]);
        assert (rc == AF_E_MALFORMED && strstr (err, why [i]));
        assert (zsys_file_exists (path));
        assert (af_install_record_read (home, "demo", &back, &found) == AF_OK && found && streq (back.version_name, "2.0"));
        //  ... and the same rules for data and configuration
        assert (af_install_data (home, "data", "demo", pkg, err, sizeof err) == AF_E_MALFORMED && strstr (err, why [i]));
    }
    snprintf (path, sizeof path, "%s/data/demo", home);
    assert (!zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/evil", home);
    assert (!zsys_file_exists (path));
    assert (!zsys_file_exists ("/tmp/af_install_abs_evil"));
    //  Not an archive at all
    FILE *file = fopen (pkg, "w");
    fprintf (file, "this is not a tar file, not even close................................\n");
    fclose (file);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_MALFORMED && strstr (err, "not a valid archive"));
    //  Over a limit: more than AF_INSTALL_MAX_NODES from far fewer entries
    //  than AF_INSTALL_MAX_ENTRIES (each name implies 510 directories)
    const char *(*deep) [3] = (const char *(*) [3]) calloc (401, sizeof *deep);
    char (*deep_names) [AF_INSTALL_MAX_NAME + 1] = calloc (400, sizeof *deep_names);
    assert (deep && deep_names);
    for (int i = 0; i < 400; i++) {
        size_t len = (size_t) snprintf (deep_names [i], sizeof deep_names [i], "d%03d/", i);
        for (int k = 0; k < 509; k++, len += 2)
            memcpy (deep_names [i] + len, "x/", 2);
        memcpy (deep_names [i] + len, "f", 2);
        assert (strlen (deep_names [i]) == AF_INSTALL_MAX_NAME);
        deep [i][0] = deep_names [i];
        deep [i][1] = "f";
        deep [i][2] = "x";
    }
    s_make_tar (pkg, deep);
    assert (400 * 511 > AF_INSTALL_MAX_NODES);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_TOO_BIG && strstr (err, "more than 200000"));
    assert (af_install_data (home, "data", "demo", pkg, err, sizeof err) == AF_E_TOO_BIG);
    free (deep);
    free (deep_names);
    snprintf (path, sizeof path, "%s/apps/demo/app/NEW", home);
    assert (zsys_file_exists (path));
    assert (af_install_record_read (home, "demo", &back, &found) == AF_OK && found && streq (back.version_name, "2.0"));
    //  No staging directories left behind: readdir, which sees dot-files
    snprintf (path, sizeof path, "%s/apps", home);
    assert (s_entries (path, names, sizeof names) == 1 && streq (names, "demo"));
}

//  Links that stay inside: in the same directory, below it, to a
//  directory, to a link that stays inside, dangling below; names
//  written as "./x" and "x//y/" are the same names
static void
s_test_links_inside (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512];
    af_install_info_t back;
    bool found;
    const char *inside [][3] = { { "./lib/", "d", "" }, { "lib//libx.so.1", "f", "elf\n" },
        { "lib/libx.so", "l", "libx.so.1" }, { "current", "l", "lib" }, { "latest", "l", "current" },
        { "deep", "l", "lib/libx.so" }, { "dangling", "l", "nothere/x" }, { "./", "d", "" },
        { "lib/", "d", "" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, inside);
    strcpy (info->version_name, "4.0");
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    char target [PATH_MAX], real [PATH_MAX], root [PATH_MAX];
    snprintf (path, sizeof path, "%s/apps/demo", home);
    assert (realpath (path, root));
    const char *resolving [] = { "lib/libx.so", "current", "latest", "deep" };
    for (int i = 0; i < 4; i++) {
        snprintf (path, sizeof path, "%s/apps/demo/%s", home, resolving [i]);
        assert (realpath (path, real) && strncmp (real, root, strlen (root)) == 0 && real [strlen (root)] == '/');
    }
    snprintf (path, sizeof path, "%s/apps/demo/latest", home);
    ssize_t size = readlink (path, target, sizeof target - 1);
    assert (size == 7 && memcmp (target, "current", 7) == 0);
    assert (af_install_record_read (home, "demo", &back, &found) == AF_OK && found && streq (back.version_name, "4.0"));
}

//  defaults/ is a root of its own: checked where it lands
//  (HOME/data/PROGRAM/), not only inside the package
static void
s_test_defaults_seed (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512], line [256], target [PATH_MAX];
    strcpy (info->program, "seeded");
    const char *seed_up [][3] = { { "app/", "d", "" }, { "app/bin", "f", "x" }, { "defaults/", "d", "" },
                                  { "defaults/settings", "f", "x" }, { "defaults/l", "l", ".." },
                                  { NULL, NULL, NULL } };
    s_make_tar (pkg, seed_up);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_MALFORMED && strstr (err, "'defaults/l' links out"));
    snprintf (path, sizeof path, "%s/data/seeded", home);
    assert (!zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/apps/seeded", home);
    assert (!zsys_file_exists (path));
    //  A defaults/ that is a link: installed, nothing seeded through it
    const char *seed_link [][3] = { { "app/", "d", "" }, { "app/settings", "f", "x" },
                                    { "defaults", "l", "app" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, seed_link);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/data/seeded", home);
    assert (!zsys_file_exists (path));
    //  defaults/ seed the data directory once, links inside it stay inside
    //  it; user data replaces it
    const char *seeded [][3] = { { "./defaults/", "d", "" }, { "./defaults/settings", "f", "default\n" },
                                 { "defaults/sub/", "d", "" }, { "defaults/sub/.rc", "f", "rc\n" },
                                 { "defaults/sub/l", "l", ".rc" }, { "bin", "f", "x" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, seeded);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/data/seeded/settings", home);
    assert (zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/data/seeded/sub/l", home);
    ssize_t size = readlink (path, target, sizeof target - 1);
    assert (size == 3 && memcmp (target, ".rc", 3) == 0);
    assert (streq (s_first_line (path, line, sizeof line), "rc\n"));
}

//  User data replaces what defaults/ seeded, as a whole; it lands only in
//  HOME's data/ or config/ (or the scratch copy `config show` opens); an
//  empty directory is not sent
static void
s_test_user_data (const char *home)
{
    char path [700], err [512], names [1024];
    char user [700], packed [700];
    snprintf (user, sizeof user, "%s/user", home);
    assert (zsys_dir_create ("%s/sub/.deeper/x", user) == 0);
    snprintf (path, sizeof path, "%s/user/history", home);
    s_write_file (path, "mine\n");
    snprintf (path, sizeof path, "%s/user/sub/.deeper/x/.y", home);
    s_write_file (path, "hidden\n");
    snprintf (packed, sizeof packed, "%s/user.tar", home);
    assert (af_install_pack_dir (user, packed, err, sizeof err) == AF_OK);
    assert (af_install_data (home, "data", "seeded", packed, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/data/seeded/history", home);
    assert (zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/data/seeded/sub/.deeper/x/.y", home);
    assert (zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/data/seeded/settings", home);
    assert (!zsys_file_exists (path));          //  replaced, not merged
    snprintf (path, sizeof path, "%s/data/seeded/sub", home);
    struct stat sub;
    assert (stat (path, &sub) == 0 && S_ISDIR (sub.st_mode));
    //  Replaced again: the old trees, dot-files and all, are gone
    assert (af_install_data (home, "data", "seeded", packed, err, sizeof err) == AF_OK);
    assert (af_install_data (home, "config", "seeded", packed, err, sizeof err) == AF_OK);
    assert (af_install_data (home, "config", "seeded", packed, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/data", home);
    assert (s_entries (path, names, sizeof names) == 1 && streq (names, "seeded"));
    snprintf (path, sizeof path, "%s/config", home);
    assert (s_entries (path, names, sizeof names) == 1 && streq (names, "seeded"));
    assert (af_install_data (home, "../apps", "seeded", packed, err, sizeof err) == AF_E_MALFORMED);
    //  The scratch copy `config show` opens, and nothing else hidden
    assert (af_install_data (home, "config", ".show-seeded", packed, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/config/.show-seeded/history", home);
    assert (zsys_file_exists (path));
    assert (af_install_data (home, "config", ".show-../x", packed, err, sizeof err) == AF_E_MALFORMED);
    assert (af_install_data (home, "config", ".shown", packed, err, sizeof err) == AF_E_MALFORMED);
    //  An empty directory is not worth sending
    snprintf (path, sizeof path, "%s/empty", home);
    assert (zsys_dir_create ("%s", path) == 0);
    assert (af_install_pack_dir (path, packed, err, sizeof err) == AF_E_MALFORMED && strstr (err, "empty"));
}

//  Upgrades and removal leave nothing behind, dot-files and nested
//  directories included, and a second round works as the first
static void
s_test_upgrade_and_remove (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512], names [1024];
    strcpy (info->program, "dots");
    const char *dots [][3] = { { "app/.cache/x/", "d", "" }, { "app/.cache/x/.y", "f", "y" },
                               { "app/sub/deeper/.d", "f", "d" }, { "app/.hidden", "f", "h" },
                               { "app/.l", "l", ".hidden" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, dots);
    snprintf (path, sizeof path, "%s/apps", home);
    for (int round = 0; round < 2; round++) {
        assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
        assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
        assert (s_entries (path, names, sizeof names) == 3);            //  demo dots seeded
        assert (af_install_remove (home, "dots", err, sizeof err) == AF_OK);
        assert (s_entries (path, names, sizeof names) == 2 && !strstr (names, "dots"));
        assert (af_install_remove (home, "dots", err, sizeof err) == AF_OK);    //  nothing to remove
    }
}

//  Removal does not follow links out of the tree, and stale staging
//  (what an install, upgrade or removal killed half-way leaves) goes
//  at start; other names stay
static void
s_test_stale_staging (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512], names [1024];
    struct stat st;
    char outside [700];
    snprintf (outside, sizeof outside, "%s/outside", home);
    assert (zsys_dir_create ("%s/keep", outside) == 0);
    snprintf (path, sizeof path, "%s/outside/keep/file", home);
    s_write_file (path, "keep\n");
    const char *stale [] = { "apps/.dots.new-0a1b2c3d", "apps/.demo.old-ffffffff", "apps/.demo.gone",
                             "data/.seeded.new-00000000", "config/.seeded.old-12345678",
                             "config/.show-seeded" };
    const char *kept [] = { "apps/.Demo.new-0a1b2c3d", "apps/.demo.new-0a1b", "apps/.unrelated",
                            "apps/..demo.gone", "data/.x.new-0a1b2c3g", "installed/.demo.json.tmp",
                            "config/.show-.x" };
    for (int i = 0; i < 6; i++) {
        assert (zsys_dir_create ("%s/%s/.a/b/.c", home, stale [i]) == 0);
        snprintf (path, sizeof path, "%s/%s/.a/b/.c/.f", home, stale [i]);
        s_write_file (path, "x");
        snprintf (path, sizeof path, "%s/%s/.a/out", home, stale [i]);
        assert (symlink (outside, path) == 0);
    }
    for (int i = 0; i < 7; i++) {
        snprintf (path, sizeof path, "%s/%s", home, kept [i]);
        s_write_file (path, "x");
    }
    snprintf (path, sizeof path, "%s/installed/dots.json.tmp", home);
    s_write_file (path, "{\"half\":");
    size_t removed;
    assert (af_install_clean_stale (home, &removed, err, sizeof err) == AF_OK && removed == 7);
    for (int i = 0; i < 6; i++) {
        snprintf (path, sizeof path, "%s/%s", home, stale [i]);
        assert (lstat (path, &st) == -1 && errno == ENOENT);
    }
    snprintf (path, sizeof path, "%s/installed/dots.json.tmp", home);
    assert (lstat (path, &st) == -1);
    for (int i = 0; i < 7; i++) {
        snprintf (path, sizeof path, "%s/%s", home, kept [i]);
        assert (lstat (path, &st) == 0);
        unlink (path);
    }
    snprintf (path, sizeof path, "%s/outside/keep/file", home);
    assert (zsys_file_exists (path));
    assert (af_install_clean_stale (home, &removed, err, sizeof err) == AF_OK && removed == 0);
    //  A removal killed after its rename left .dots.gone: the next removal
    //  of dots is not stopped by it
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (zsys_dir_create ("%s/apps/.dots.gone/.x/.y", home) == 0);
    assert (af_install_remove (home, "dots", err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/apps", home);
    assert (s_entries (path, names, sizeof names) == 2 && !strstr (names, "dots"));
}

//  Program IDs are names: every function that makes a path from one
//  refuses anything else, before it touches the disk
static void
s_test_program_ids (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512], names [1024];
    af_install_info_t back;
    bool found;
    const char *not_ids [] = { "..", "../escape", "a/b", ".demo.new-00000000", "" };
    strcpy (info->version_name, "1.0");
    s_make_tar (pkg, s_good);
    for (int i = 0; i < 5; i++) {
        snprintf (info->program, sizeof info->program, "%s", not_ids [i]);
        assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_MALFORMED && strstr (err, "not a program ID"));
        assert (af_install_data (home, "data", not_ids [i], pkg, err, sizeof err) == AF_E_MALFORMED
                && strstr (err, "not a program ID"));
        assert (af_install_remove (home, not_ids [i], err, sizeof err) == AF_E_MALFORMED && strstr (err, "not a program ID"));
        assert (af_install_record_write (home, info, NULL, err, sizeof err) == AF_E_MALFORMED);
        assert (af_install_record_read (home, not_ids [i], &back, &found) == AF_E_MALFORMED && !found);
    }
    snprintf (path, sizeof path, "%s/escape", home);
    assert (!zsys_file_exists (path));
    assert (s_entries (home, names, sizeof names) >= 0 && strstr (names, "apps"));
    //  An ID without a record is not installed; a record that is not a
    //  JSON object is refused (and logged), never read as installed
    assert (af_install_record_read (home, "never", &back, &found) == AF_OK && !found);
    snprintf (path, sizeof path, "%s/installed/broken.json", home);
    s_write_file (path, "[1]");
    assert (af_install_record_read (home, "broken", &back, &found) == AF_E_MALFORMED && !found);
    assert (unlink (path) == 0);
}

//  A full disk while the record is written (a file size limit makes
//  the same EFBIG a quota would): the old tree and the old record stay,
//  no staging and no temporary left
static void
s_test_full_disk (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512], names [1024];
    af_install_info_t back;
    bool found;
    strcpy (info->program, "disk");
    strcpy (info->version_name, "1.0");
    const char *disk1 [][3] = { { "v1", "f", "1" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, disk1);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    //  Version 2: 200 one-byte files whose names make a record of 14 KiB
    const char *(*disk2) [3] = (const char *(*) [3]) calloc (202, sizeof *disk2);
    char (*many) [80] = (char (*) [80]) calloc (200, sizeof *many);
    assert (disk2 && many);
    for (int i = 0; i < 200; i++) {
        snprintf (many [i], sizeof many [i], "app/a-long-file-name-to-make-the-record-big-%04d-xxxxxxxxxxxxxxxx", i);
        disk2 [i][0] = many [i];
        disk2 [i][1] = "f";
        disk2 [i][2] = "2";
    }
    disk2 [200][0] = "v2";
    disk2 [200][1] = "f";
    disk2 [200][2] = "2";
    s_make_tar (pkg, disk2);
    struct rlimit saved, small;
    assert (getrlimit (RLIMIT_FSIZE, &saved) == 0);
    small = saved;
    small.rlim_cur = 4096;
    void (*handler) (int) = signal (SIGXFSZ, SIG_IGN);
    assert (setrlimit (RLIMIT_FSIZE, &small) == 0);
    strcpy (info->version_name, "2.0");
    int rc = af_install_builtin (home, pkg, info, err, sizeof err);
    assert (setrlimit (RLIMIT_FSIZE, &saved) == 0);
    signal (SIGXFSZ, handler);
    assert (rc == AF_E_INTERNAL && strstr (err, "install record") && strstr (err, "full"));
    snprintf (path, sizeof path, "%s/apps/disk/v1", home);
    assert (zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/apps/disk/v2", home);
    assert (!zsys_file_exists (path));
    assert (af_install_record_read (home, "disk", &back, &found) == AF_OK && found && streq (back.version_name, "1.0"));
    snprintf (path, sizeof path, "%s/apps", home);
    assert (s_entries (path, names, sizeof names) == 3 && !strchr (names, '.'));
    snprintf (path, sizeof path, "%s/installed", home);
    assert (s_entries (path, names, sizeof names) >= 0 && !strstr (names, ".tmp"));
    //  The record cannot be put in place (rename fails): the swapped tree
    //  is swapped back
    snprintf (path, sizeof path, "%s/installed/disk.json", home);
    assert (unlink (path) == 0 && zsys_dir_create ("%s/x", path) == 0);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_INTERNAL && strstr (err, "install record"));
    snprintf (path, sizeof path, "%s/apps/disk/v1", home);
    assert (zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/apps", home);
    assert (s_entries (path, names, sizeof names) == 3 && !strchr (names, '.'));
    snprintf (path, sizeof path, "%s/installed", home);
    assert (s_entries (path, names, sizeof names) >= 0 && !strstr (names, ".tmp"));
    snprintf (path, sizeof path, "%s/installed/disk.json", home);
    assert (s_remove_tree (path) == 0);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/apps/disk/v2", home);
    assert (zsys_file_exists (path));
    free (disk2);
    free (many);
}

//  Install commands: success, failure, time limit
static void
s_test_install_commands (const char *home, const char *pkg, af_install_info_t *info)
{
    char path [700], err [512];
    int rc;
    bool running;
    snprintf (path, sizeof path, "%s/install.log", home);
    af_install_cmd_t *cmd = af_install_cmd_start ("test -f \"$AF_PACKAGE\" && test \"$1\" = \"$AF_PACKAGE\"",
                                                  pkg, info, 5000, path, err, sizeof err);
    assert (cmd);
    while ((rc = af_install_cmd_poll (cmd, &running, err, sizeof err)) == AF_OK && running)
        zclock_sleep (10);
    assert (rc == AF_OK && !running);
    af_install_cmd_destroy (&cmd);
    cmd = af_install_cmd_start ("exit 3", pkg, info, 5000, path, err, sizeof err);
    while ((rc = af_install_cmd_poll (cmd, &running, err, sizeof err)) == AF_OK && running)
        zclock_sleep (10);
    assert (rc == AF_E_INTERNAL && !running && strstr (err, "status 3"));
    af_install_cmd_destroy (&cmd);
    int64_t start = zclock_mono ();
    cmd = af_install_cmd_start ("sleep 10", pkg, info, 300, path, err, sizeof err);
    while ((rc = af_install_cmd_poll (cmd, &running, err, sizeof err)) == AF_OK && running)
        zclock_sleep (10);
    assert (rc == AF_E_INTERNAL && !running && strstr (err, "timed out"));
    assert (zclock_mono () - start < 2000);
    af_install_cmd_destroy (&cmd);
}

//  The sections of the self-test run in order on one HOME and one package
//  file, pkg: each starts from what the one before it left (the programs
//  installed, info's program and version)
void
af_install_test (bool verbose)
{
    if (verbose)
        printf (" * af_install: ");
    char home [] = "/tmp/af_install_test.XXXXXX";
    assert (mkdtemp (home));
    char pkg [600], path [700];
    af_install_info_t info;
    memset (&info, 0, sizeof info);
    strcpy (info.program, "demo");
    strcpy (info.version_name, "1.0");
    strcpy (info.hash, "aa");

    snprintf (pkg, sizeof pkg, "%s/good.tar", home);
    s_test_install_and_upgrade (home, pkg, &info);
    s_test_hostile_archives (home, pkg, &info);
    s_test_links_inside (home, pkg, &info);
    s_test_defaults_seed (home, pkg, &info);
    s_test_user_data (home);
    s_test_upgrade_and_remove (home, pkg, &info);
    s_test_stale_staging (home, pkg, &info);
    s_test_program_ids (home, pkg, &info);
    s_test_full_disk (home, pkg, &info);
    s_test_install_commands (home, pkg, &info);

    //  The whole home goes, dot-files and all, and the link to outside/
    //  inside it is removed, not followed
    assert (zsys_dir_create ("%s/.hidden/.deeper", home) == 0);
    snprintf (path, sizeof path, "%s/.hidden/.deeper/.file", home);
    s_write_file (path, "x");
    struct stat st;
    assert (s_remove_tree (home) == 0);
    assert (lstat (home, &st) == -1 && errno == ENOENT);
    if (verbose)
        printf ("OK\n");
}
