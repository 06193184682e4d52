/*  =========================================================================
    af_install - the node's package installer and install records

    The design is in af_install.h: every name and link of an archive is
    checked against a model of the tree it makes before anything is
    written, the new tree and its record are both ready before either
    replaces the old, and trees are removed without following links.
    =========================================================================
*/
#include "af_install.h"
#include "af_minisign.h"
#include "af_record.h"

#include <archive.h>
#include <archive_entry.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

//  What an install's thread (af_install_task_t) shares with its owner: a
//  stop request, looked at between two entries of an archive (before
//  anything is swapped in: a stop leaves what was installed as it was),
//  and the entries read so far. NULL for an install on the caller's thread.
typedef struct {
    atomic_bool stop;
    atomic_uint_fast64_t entries;
} ctl_t;

//  One more entry read; true (with err) if the owner asked us to stop
static bool
s_ctl_step (ctl_t *ctl, char *err, size_t errlen)
{
    if (!ctl)
        return false;
    atomic_fetch_add (&ctl->entries, 1);
    if (!atomic_load (&ctl->stop))
        return false;
    snprintf (err, errlen, "the install was stopped (the node is stopping); nothing changed");
    return true;
}

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
s_remove_tree_ctl (const char *path, ctl_t *ctl)
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
        if (ctl && atomic_load (&ctl->stop)) {
            failed = EINTR;
            break;
        }
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

static int
s_remove_tree (const char *path)
{
    return s_remove_tree_ctl (path, NULL);
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

//  Write text to path (a temporary beside the file it will replace),
//  synced. AF_OK, or AF_E_INTERNAL with err ("cannot write WHAT: ...") and
//  no path left
static int
s_write_synced (const char *path, const char *text, const char *what, char *err, size_t errlen)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && s_write_all (fd, text, strlen (text)) == 0 && fsync (fd) == 0;
    int error = errno;
    if (fd >= 0 && close (fd) && ok) {
        error = errno;
        ok = false;
    }
    if (!ok) {
        snprintf (err, errlen, "cannot write %s: %s", what,
                  error == ENOSPC || error == EFBIG? "the disk is full": strerror (error));
        unlink (path);
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  Write a record (a JSON object) to its temporary, synced. AF_OK, or
//  AF_E_INTERNAL with err and no temporary left
static int
s_record_prepare_json (const char *home, const char *program, const json_t *record, char *err, size_t errlen)
{
    char dir [600], path [700], tmp [710], what [720];
    snprintf (dir, sizeof dir, "%s/installed", home);
    s_record_paths (home, program, path, sizeof path, tmp, sizeof tmp);
    if (zsys_dir_create ("%s", dir)) {
        snprintf (err, errlen, "cannot create %s: %s", dir, strerror (errno));
        return AF_E_INTERNAL;
    }
    char *text = record? json_dumps (record, JSON_COMPACT): NULL;
    if (!text) {
        snprintf (err, errlen, "cannot encode the install record of %s", program);
        return AF_E_INTERNAL;
    }
    snprintf (what, sizeof what, "the install record %s", path);
    int code = s_write_synced (tmp, text, what, err, errlen);
    free (text);
    return code;
}

//  The record of info, its files and what its manifest declared (NULL:
//  nothing), to its temporary: s_record_prepare_json's codes
static int
s_record_prepare (const char *home, const af_install_info_t *info, json_t *files, const json_t *manifest,
                  char *err, size_t errlen)
{
    json_t *settings = json_object_get (manifest, "settings"), *startup = json_object_get (manifest, "startup");
    json_t *record = json_pack ("{s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:o, s:o, s:o}",
        "program", info->program, "versionName", info->version_name,
        "versionCode", (json_int_t) info->version_code, "hash", info->hash, "pushId", info->push_id,
        "installedAt", (json_int_t) info->installed_at, "method", info->method,
        "files", files? json_incref (files): json_array (),
        "settings", settings? json_deep_copy (settings): json_object (),
        "startup", startup? json_deep_copy (startup): json_array ());
    int code = s_record_prepare_json (home, info->program, record, err, errlen);
    json_decref (record);
    return code;
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
        code = s_record_prepare (home, info, files, NULL, err, errlen);
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
//  Settings and start-up entries: HOME/settings/PROGRAM.json (an object of
//  strings, the settings the app has on this device) and one file per
//  entry HOME/startup/PROGRAM@NAME (holding NAME and a newline). '@' is in
//  neither a program ID nor an entry name, so the file of one program's
//  entry is never another's ("a.b" + "c" and "a" + "b.c" with a '.' would
//  be one file). Several files change at once, so af_file_write (one file,
//  put in place at once) does not do: every new file is first written
//  aside, synced, and only then are they all put in place, by renames
//  that can be undone. The names aside are hidden (.X.tmp: new content;
//  .X.gone: what the change replaces or removes, kept until it is final),
//  and af_install_clean_stale removes what a kill leaves of them.

typedef struct {
    char live [720];            //  the file
    char tmp [740];             //  its new content (put), unused (drop)
    char gone [740];            //  where the old one waits until the end
    bool put;                   //  true: tmp replaces live; false: live goes
    bool had;                   //  live was there when the change began
    bool done;                  //  this step is in place
} step_t;

typedef struct {
    step_t steps [2 + 2 * AF_MAX_STARTUP + 64];   //  the settings, entries put
    size_t count;                                 //  and entries dropped
    char dirs [2][600];         //  settings/ and startup/, synced at the end
} change_t;

static void
s_paths (const char *home, const char *program, const char *entry, char *dir, size_t dirsize,
         char *name, size_t namesize)
{
    snprintf (dir, dirsize, "%s/%s", home, entry? "startup": "settings");
    if (entry)
        snprintf (name, namesize, "%s@%s", program, entry);
    else
        snprintf (name, namesize, "%s.json", program);
}

//  Add a step: put text as the settings (entry NULL) or an entry's file,
//  written aside now; or (text NULL) drop it. AF_OK, or AF_E_INTERNAL
//  with err (nothing left aside for this step)
static int
s_change_add (change_t *self, const char *home, const char *program, const char *entry, const char *text,
              char *err, size_t errlen)
{
    assert (self->count < sizeof self->steps / sizeof self->steps [0]);
    step_t *step = &self->steps [self->count];
    char dir [600], name [200];
    s_paths (home, program, entry, dir, sizeof dir, name, sizeof name);
    snprintf (self->dirs [entry? 1: 0], sizeof self->dirs [0], "%s", dir);
    memset (step, 0, sizeof *step);
    snprintf (step->live, sizeof step->live, "%s/%s", dir, name);
    snprintf (step->tmp, sizeof step->tmp, "%s/.%s.tmp", dir, name);
    snprintf (step->gone, sizeof step->gone, "%s/.%s.gone", dir, name);
    step->put = text != NULL;
    struct stat st;
    step->had = lstat (step->live, &st) == 0;
    if (!step->put && !step->had)
        return AF_OK;                   //  nothing to drop
    if (step->put) {
        if (zsys_dir_create ("%s", dir)) {
            snprintf (err, errlen, "cannot create %s: %s", dir, strerror (errno));
            return AF_E_INTERNAL;
        }
        int code = s_write_synced (step->tmp, text, step->live, err, errlen);
        if (code != AF_OK)
            return code;
    }
    unlink (step->gone);                //  a leftover would stop link(2)
    self->count++;
    return AF_OK;
}

//  Undo the steps in place, last first. Renames in one directory hardly
//  fail; if one does, it is logged and that file stays as it is.
static void
s_change_undo (change_t *self)
{
    for (size_t i = self->count; i-- > 0; ) {
        step_t *step = &self->steps [i];
        if (!step->done)
            continue;
        int rc = step->had? rename (step->gone, step->live): unlink (step->live);
        if (rc)
            zsys_error ("install: cannot put %s back: %s", step->live, strerror (errno));
        step->done = false;
    }
}

//  Put every step in place: an old file is first linked (put) or moved
//  (drop) to its .gone name, so each step can be undone. AF_OK, or
//  AF_E_INTERNAL with err and every step undone
static int
s_change_commit (change_t *self, char *err, size_t errlen)
{
    for (size_t i = 0; i < self->count; i++) {
        step_t *step = &self->steps [i];
        bool ok;
        if (step->put) {
            ok = (!step->had || link (step->live, step->gone) == 0) && rename (step->tmp, step->live) == 0;
            if (!ok && step->had)
                unlink (step->gone);
        }
        else
            ok = rename (step->live, step->gone) == 0;
        if (!ok) {
            snprintf (err, errlen, "cannot %s %s: %s", step->put? "write": "remove", step->live, strerror (errno));
            s_change_undo (self);
            return AF_E_INTERNAL;
        }
        step->done = true;
    }
    for (int d = 0; d < 2; d++)
        if (*self->dirs [d])
            s_sync_dir (self->dirs [d]);
    return AF_OK;
}

//  The change is final (or abandoned): what waits aside goes, and what
//  was written aside and never put in place
static void
s_change_end (change_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        step_t *step = &self->steps [i];
        if (step->put && !step->done)
            unlink (step->tmp);
        if (step->done && step->had && unlink (step->gone) && errno != ENOENT)
            zsys_warning ("install: cannot remove %s: %s (it goes at the next start)", step->gone, strerror (errno));
    }
}

//  The settings file's text for an object of settings
static char *
s_settings_text (const json_t *settings)
{
    char *text = json_dumps (settings, JSON_INDENT (2));
    if (text) {
        char *line = (char *) realloc (text, strlen (text) + 2);
        assert (line);
        strcat (line, "\n");
        text = line;
    }
    return text;
}

//  Is name the file of one of program's entries (PROGRAM@NAME)? Then *entry
//  points at NAME
static bool
s_entry_of (const char *name, const char *program, const char **entry)
{
    size_t len = strlen (program);
    if (strncmp (name, program, len) || name [len] != '@' || !af_record_startup_name_valid (name + len + 1))
        return false;
    *entry = name + len + 1;
    return true;
}

//  Add the steps that make the settings and the entries on disk what
//  settings and keep say: the settings file written (or, with no
//  settings, gone), each entry of keep written, and every other entry of
//  the program in HOME/startup dropped (only those of drop, when drop is
//  given). AF_OK, or AF_E_INTERNAL with err
static int
s_change_plan (change_t *self, const char *home, const char *program, const json_t *settings,
               const json_t *keep, const json_t *drop, char *err, size_t errlen)
{
    int code = AF_OK;
    char *text = json_object_size (settings)? s_settings_text (settings): NULL;
    if (json_object_size (settings) && !text) {
        snprintf (err, errlen, "cannot encode the settings of %s", program);
        return AF_E_INTERNAL;
    }
    code = s_change_add (self, home, program, NULL, text, err, errlen);
    free (text);
    size_t index;
    json_t *name;
    json_array_foreach (keep, index, name) {
        if (code != AF_OK)
            break;
        char line [AF_MAX_STARTUP_NAME + 2];
        snprintf (line, sizeof line, "%s\n", json_string_value (name));
        code = s_change_add (self, home, program, json_string_value (name), line, err, errlen);
    }
    if (code != AF_OK || drop) {
        json_array_foreach (drop, index, name)
            if (code == AF_OK)
                code = s_change_add (self, home, program, json_string_value (name), NULL, err, errlen);
        return code;
    }
    //  Every entry of the program's that keep does not name
    char dir [600];
    snprintf (dir, sizeof dir, "%s/startup", home);
    DIR *handle = opendir (dir);
    if (!handle)
        return AF_OK;                   //  none, or none we can see (the next sweep tries)
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (names, (zlistx_duplicator_fn *) strdup);
    struct dirent *entry;
    const char *what;
    while ((entry = readdir (handle)))
        if (s_entry_of (entry->d_name, program, &what)) {
            bool kept = false;
            json_array_foreach (keep, index, name)
                kept = kept || streq (json_string_value (name), what);
            if (!kept)
                zlistx_add_end (names, (void *) what);
        }
    closedir (handle);
    for (char *item = (char *) zlistx_first (names); item && code == AF_OK; item = (char *) zlistx_next (names))
        if (self->count + 2 < sizeof self->steps / sizeof self->steps [0])
            code = s_change_add (self, home, program, item, NULL, err, errlen);
        else
            zsys_warning ("install: %s has too many start-up entries to remove at once", program);
    zlistx_destroy (&names);
    return code;
}

//  The raw install record of an installed program. AF_OK with *record (the
//  caller's), AF_E_NOT_THERE (not installed), AF_E_MALFORMED (not an ID,
//  or a record that is not a JSON object or whose settings or startup
//  break af_record's rules: never trusted to name files), AF_E_INTERNAL
//  (cannot read it). Records written before the manifest existed have
//  neither: they read as empty.
static int
s_record_load (const char *home, const char *program, json_t **record, char *err, size_t errlen)
{
    *record = NULL;
    if (af_program_check (program, err, errlen) != AF_OK)
        return AF_E_MALFORMED;
    char path [700];
    snprintf (path, sizeof path, "%s/installed/%s.json", home, program);
    //  Ours, not bounded: it lists every file of the app (the same read
    //  as af_install_record_read's)
    FILE *file = fopen (path, "r");
    if (!file) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf (err, errlen, "%s is not installed here", program);
            return AF_E_NOT_THERE;
        }
        snprintf (err, errlen, "cannot read the install record %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    json_error_t jerr;
    json_t *doc = json_loadf (file, 0, &jerr);
    fclose (file);
    char why [200];
    if (!json_is_object (doc)) {
        snprintf (err, errlen, "the install record %s is unreadable: %s", path, doc? "not a JSON object": jerr.text);
        json_decref (doc);
        return AF_E_MALFORMED;
    }
    if (!json_object_get (doc, "settings"))
        json_object_set_new (doc, "settings", json_object ());
    if (!json_object_get (doc, "startup"))
        json_object_set_new (doc, "startup", json_array ());
    if (af_record_settings_check (json_object_get (doc, "settings"), why, sizeof why) != AF_OK
    ||  af_record_startup_check (json_object_get (doc, "startup"), why, sizeof why) != AF_OK) {
        snprintf (err, errlen, "the install record %s is damaged: %s", path, why);
        json_decref (doc);
        return AF_E_MALFORMED;
    }
    *record = doc;
    return AF_OK;
}

//  The settings the device has now for program: AF_OK with *settings (an
//  object, empty if there is no settings file; a file that is not an
//  object of strings is logged and read as empty: a user's edit must not
//  stop an export), or AF_E_INTERNAL with err (cannot read it)
static int
s_settings_load (const char *home, const char *program, json_t **settings, char *err, size_t errlen)
{
    char path [700];
    snprintf (path, sizeof path, "%s/settings/%s.json", home, program);
    size_t len = 0;
    int code = AF_OK;
    *settings = NULL;
    char *text = af_file_read (path, AF_INSTALL_MAX_SETTINGS, &len, &code, err, errlen);
    if (!text && code == AF_E_INTERNAL)
        return AF_E_INTERNAL;
    json_error_t jerr;
    json_t *doc = text? json_loadb (text, len, 0, &jerr): NULL;
    bool read = text != NULL;
    free (text);
    if (!json_is_object (doc)) {
        if (read || code != AF_E_NO_BLOB)
            zsys_warning ("install: the settings %s are unreadable (%s): read as none", path,
                          doc? "not a JSON object": read? jerr.text: "too large");
        json_decref (doc);
        doc = json_object ();
    }
    *settings = doc;
    return AF_OK;
}

//  Of settings, the values of the keys declared has that pass af_record's
//  rules, in a new object
static json_t *
s_settings_declared (const json_t *settings, const json_t *declared)
{
    json_t *out = json_object ();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) declared, key, value) {
        json_t *now = json_object_get (settings, key);
        json_t *one = json_pack ("{s:O}", key, now);
        if (now && af_record_settings_check (one, NULL, 0) == AF_OK)
            json_object_set (out, key, now);
        json_decref (one);
    }
    return out;
}

//  Does array (of strings) hold name?
static bool
s_has (const json_t *array, const char *name)
{
    size_t index;
    json_t *item;
    json_array_foreach (array, index, item)
        if (streq (json_string_value (item), name))
            return true;
    return false;
}

int
af_install_record_export (const char *home, const char *program, json_t **record, char *err, size_t errlen)
{
    assert (record);
    *record = NULL;
    json_t *installed, *settings;
    int code = s_record_load (home, program, &installed, err, errlen);
    if (code != AF_OK)
        return code;
    if ((code = s_settings_load (home, program, &settings, err, errlen)) != AF_OK) {
        json_decref (installed);
        return code;
    }
    json_t *startup = json_array ();
    size_t index;
    json_t *name;
    json_array_foreach (json_object_get (installed, "startup"), index, name) {
        char dir [600], file [200], path [800];
        struct stat st;
        s_paths (home, program, json_string_value (name), dir, sizeof dir, file, sizeof file);
        snprintf (path, sizeof path, "%s/%s", dir, file);
        if (lstat (path, &st) == 0)
            json_array_append (startup, name);
    }
    const char *version = json_string_value (json_object_get (installed, "versionName"));
    json_int_t version_code = json_integer_value (json_object_get (installed, "versionCode"));
    *record = json_pack ("{s:s, s:s, s:I, s:o, s:o}", "program", program, "versionName", version? version: "",
                         "versionCode", version_code < 0? 0: version_code,
                         "settings", s_settings_declared (settings, json_object_get (installed, "settings")),
                         "startup", startup);
    json_decref (settings);
    json_decref (installed);
    if (!*record) {
        snprintf (err, errlen, "cannot encode the install record of %s", program);
        return AF_E_INTERNAL;
    }
    //  Never expected (every part was checked): then it is not sent
    if (af_install_record_check (*record, err, errlen) != AF_OK) {
        zsys_warning ("install: the record of %s does not export: %s", program, err);
        json_decref (*record);
        *record = NULL;
        return AF_E_MALFORMED;
    }
    return AF_OK;
}

int
af_install_record_apply (const char *home, const char *program, const json_t *source, char *err, size_t errlen)
{
    if (af_program_check (program, err, errlen) != AF_OK)
        return AF_E_MALFORMED;
    char why [300];
    if (af_install_record_check (source, why, sizeof why) != AF_OK) {
        snprintf (err, errlen, "refused: %s", why);
        return AF_E_MALFORMED;
    }
    if (!streq (json_string_value (json_object_get (source, "program")), program)) {
        snprintf (err, errlen, "refused: the install record is of %s, not %s",
                  json_string_value (json_object_get (source, "program")), program);
        return AF_E_MALFORMED;
    }
    json_t *installed, *now;
    int code = s_record_load (home, program, &installed, err, errlen);
    if (code != AF_OK)
        return code;
    if ((code = s_settings_load (home, program, &now, err, errlen)) != AF_OK) {
        json_decref (installed);
        return code;
    }
    //  Only what the installed package declared: the source chooses values
    //  for its keys and which of its entries are there, nothing more
    json_t *declared = json_object_get (installed, "settings");
    json_t *settings = s_settings_declared (now, declared);
    const json_t *theirs = json_object_get (source, "settings");
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) declared, key, value) {
        json_t *source_value = json_object_get (theirs, key);
        if (!json_object_get (settings, key))
            json_object_set (settings, key, value);         //  as the install set it
        if (source_value)
            json_object_set (settings, key, source_value);
    }
    json_t *keep = json_array (), *drop = json_array ();
    size_t index;
    json_t *name;
    json_array_foreach (json_object_get (installed, "startup"), index, name)
        json_array_append (s_has (json_object_get (source, "startup"), json_string_value (name))? keep: drop, name);
    //  The record says it was applied, and from which version; it goes in
    //  place last, as an install's
    json_object_set_new (installed, "appliedFrom", json_pack ("{s:I, s:O, s:O}", "at", (json_int_t) zclock_time (),
                         "versionName", json_object_get (source, "versionName"),
                         "versionCode", json_object_get (source, "versionCode")));
    change_t *change = (change_t *) zmalloc (sizeof (change_t));
    code = s_change_plan (change, home, program, settings, keep, drop, err, errlen);
    bool prepared = false;
    if (code == AF_OK)
        prepared = (code = s_record_prepare_json (home, program, installed, err, errlen)) == AF_OK;
    if (code == AF_OK)
        code = s_change_commit (change, err, errlen);
    if (code == AF_OK && (code = s_record_commit (home, program, err, errlen)) != AF_OK)
        s_change_undo (change);
    if (code != AF_OK && prepared)
        s_record_discard (home, program);
    s_change_end (change);
    free (change);
    json_decref (keep);
    json_decref (drop);
    json_decref (settings);
    json_decref (now);
    json_decref (installed);
    return code;
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

//  libarchive's reason for its last error, which it may not have
static const char *
s_why (struct archive *archive)
{
    const char *why = archive_error_string (archive);
    return why? why: "no reason given";
}

static struct archive *
s_open (const char *package, char *err, size_t errlen)
{
    struct archive *reader = archive_read_new ();
    archive_read_support_format_tar (reader);
    archive_read_support_format_gnutar (reader);
    if (archive_read_open_filename (reader, package, 65536) != ARCHIVE_OK) {
        snprintf (err, errlen, "not a valid archive: %s", s_why (reader));
        archive_read_free (reader);
        return NULL;
    }
    return reader;
}

//  The manifest entry (a top-level appferry.json), read whole and parsed:
//  AF_OK with *manifest, or AF_E_MALFORMED with err (not a file, given
//  twice, over AF_MANIFEST_MAX, or its rules broken: af_record)
static int
s_manifest_read (struct archive *reader, struct archive_entry *entry, json_t **manifest, char *err, size_t errlen)
{
    if (*manifest) {
        snprintf (err, errlen, "archive has " AF_MANIFEST_NAME " twice");
        return AF_E_MALFORMED;
    }
    if (archive_entry_filetype (entry) != AE_IFREG) {
        snprintf (err, errlen, AF_MANIFEST_NAME " (the package manifest) is not a file");
        return AF_E_MALFORMED;
    }
    if (archive_entry_size (entry) > AF_MANIFEST_MAX) {
        snprintf (err, errlen, AF_MANIFEST_NAME ": larger than %d bytes", AF_MANIFEST_MAX);
        return AF_E_MALFORMED;
    }
    char *text = (char *) malloc (AF_MANIFEST_MAX + 1);
    assert (text);
    size_t len = 0;
    la_ssize_t n;
    while (len <= AF_MANIFEST_MAX && (n = archive_read_data (reader, text + len, AF_MANIFEST_MAX + 1 - len)) > 0)
        len += (size_t) n;
    int code = AF_OK;
    if (n < 0) {
        snprintf (err, errlen, "not a valid archive: %s", s_why (reader));
        code = AF_E_MALFORMED;
    }
    else
        code = af_record_manifest_parse (text, len, manifest, err, errlen);
    free (text);
    return code;
}

//  Pass 1: read every header and refuse anything unsafe, before writing.
//  With manifest, a top-level appferry.json is read and checked too, and
//  *manifest is what it declares (empty without one; NULL on failure).
//  AF_OK, or with err AF_E_MALFORMED or AF_E_TOO_BIG (too many entries).
static int
s_check (const char *package, json_t **manifest, ctl_t *ctl, char *err, size_t errlen)
{
    if (manifest)
        *manifest = NULL;
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
        if (s_ctl_step (ctl, err, errlen))
            rc = AF_E_INTERNAL;
        else
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
        if (rc == AF_OK && manifest && streq (name, AF_MANIFEST_NAME))
            rc = s_manifest_read (reader, entry, manifest, err, errlen);
        if (rc != AF_OK)
            break;
    }
    if (rc == AF_OK && r != ARCHIVE_EOF) {
        snprintf (err, errlen, "not a valid archive: %s", s_why (reader));
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
    if (manifest && rc == AF_OK && !*manifest)
        *manifest = json_pack ("{s:{}, s:[]}", "settings", "startup");
    if (manifest && rc != AF_OK)
        json_decref (*manifest), *manifest = NULL;
    return rc;
}

//  Pass 2: unpack into dir (which exists). Fills files with the paths.
//  With a prefix ("defaults/"), only the entries under it, without it.
//  Names are written in their canonical form, the form s_check modelled.
//  AF_OK, or with err AF_E_MALFORMED (the archive is not what s_check read)
//  or AF_E_INTERNAL (cannot write: a full disk, ...).
static int
s_extract (const char *package, const char *dir, const char *prefix, json_t *files, ctl_t *ctl,
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
        if (s_ctl_step (ctl, err, errlen)) {
            rc = AF_E_INTERNAL;
            break;
        }
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
            snprintf (err, errlen, "cannot unpack '%.200s': %s", name, s_why (writer));
            rc = AF_E_INTERNAL;
            break;
        }
        const void *block;
        size_t size;
        la_int64_t offset;
        while ((r = archive_read_data_block (reader, &block, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block (writer, block, size, offset) != ARCHIVE_OK) {
                snprintf (err, errlen, "cannot write '%.200s': %s", name,
                          errno == ENOSPC || errno == EFBIG? "the disk is full": s_why (writer));
                rc = AF_E_INTERNAL;
                break;
            }
        if (rc == AF_OK && r != ARCHIVE_EOF) {
            snprintf (err, errlen, "not a valid archive: %s", s_why (reader));
            rc = AF_E_MALFORMED;
        }
        if (rc == AF_OK && archive_write_finish_entry (writer) != ARCHIVE_OK) {
            snprintf (err, errlen, "cannot write '%.200s': %s", name,
                      errno == ENOSPC || errno == EFBIG? "the disk is full": s_why (writer));
            rc = AF_E_INTERNAL;
        }
    }
    //  The headers ended before the archive did (a file that changed since
    //  s_check read it to its end): not all of it is there
    if (rc == AF_OK && r != ARCHIVE_EOF) {
        snprintf (err, errlen, "the archive changed while it was unpacked: %s", s_why (reader));
        rc = AF_E_MALFORMED;
    }
    if (archive_write_close (writer) != ARCHIVE_OK && rc == AF_OK) {
        snprintf (err, errlen, "cannot finish unpacking: %s", s_why (writer));
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
               json_t *files, ctl_t *ctl, char *err, size_t errlen)
{
    swap_t swap;
    int code = s_swap_stage (&swap, parent, name, err, errlen);
    if (code != AF_OK)
        return code;
    code = s_extract (package, swap.stage, prefix, files, ctl, err, errlen);
    if (code == AF_OK)
        code = s_swap_in (&swap, err, errlen);
    s_swap_end (&swap);
    return code;
}

static int
s_builtin (const char *home, const char *package, const af_install_info_t *info, ctl_t *ctl,
           char *err, size_t errlen)
{
    json_t *manifest = NULL;
    int rc = af_program_check (info->program, err, errlen);
    if (rc == AF_OK)
        rc = s_check (package, &manifest, ctl, err, errlen);
    if (rc != AF_OK)
        return rc;
    char apps [600], data [600], defaults [700];
    snprintf (apps, sizeof apps, "%s/apps", home);
    af_install_info_t record = *info;
    snprintf (record.method, sizeof record.method, "builtin");
    swap_t swap;
    if ((rc = s_swap_stage (&swap, apps, info->program, err, errlen)) != AF_OK) {
        json_decref (manifest);
        return rc;
    }
    //  The tree is unpacked, the settings and start-up entries and the
    //  record written aside first; the swap, the settings' and entries'
    //  renames and the record's come last, and a failed rename undoes
    //  those before it. A failure at any step (a full disk) leaves the old
    //  tree, settings and entries with the old record, never new ones
    //  without their record.
    json_t *files = json_array ();
    change_t *change = (change_t *) zmalloc (sizeof (change_t));
    bool prepared = false;
    rc = s_extract (package, swap.stage, NULL, files, ctl, err, errlen);
    if (rc == AF_OK)
        prepared = (rc = s_record_prepare (home, &record, files, manifest, err, errlen)) == AF_OK;
    if (rc == AF_OK)
        rc = s_change_plan (change, home, info->program, json_object_get (manifest, "settings"),
                            json_object_get (manifest, "startup"), NULL, err, errlen);
    if (rc == AF_OK)
        rc = s_swap_in (&swap, err, errlen);
    if (rc == AF_OK && (rc = s_change_commit (change, err, errlen)) != AF_OK)
        s_swap_back (&swap);
    if (rc == AF_OK && (rc = s_record_commit (home, record.program, err, errlen)) != AF_OK) {
        s_change_undo (change);
        s_swap_back (&swap);
    }
    if (rc != AF_OK && prepared)
        s_record_discard (home, record.program);
    s_change_end (change);
    s_swap_end (&swap);
    free (change);
    json_decref (files);
    json_decref (manifest);
    if (rc != AF_OK)
        return rc;
    //  A package's defaults/ (a real directory) seed the app's data
    //  directory on first install. Not stopped half-way (no ctl): the
    //  package is installed, and an offer of it again installs nothing
    struct stat st;
    snprintf (data, sizeof data, "%s/data/%s", home, info->program);
    snprintf (defaults, sizeof defaults, "%s/%s/defaults", apps, info->program);
    if (lstat (defaults, &st) == 0 && S_ISDIR (st.st_mode) && lstat (data, &st) != 0) {
        snprintf (data, sizeof data, "%s/data", home);
        json_t *seeded = json_array ();
        if (s_unpack_swap (data, info->program, package, "defaults/", seeded, NULL, err, errlen) != AF_OK)
            zsys_warning ("install: %s installed, but its defaults were not copied: %s", info->program, err);
        json_decref (seeded);
    }
    return AF_OK;
}

int
af_install_builtin (const char *home, const char *package, const af_install_info_t *info,
                    char *err, size_t errlen)
{
    return s_builtin (home, package, info, NULL, err, errlen);
}

int
af_install_remove_aside (const char *home, const char *program, char *aside, size_t asidelen,
                         char *err, size_t errlen)
{
    *aside = 0;
    if (af_program_check (program, err, errlen) != AF_OK)
        return AF_E_MALFORMED;
    //  The settings and every start-up entry of the program go first
    //  (whatever the record lists: a kill may have left others), so a
    //  failure leaves the app installed and a second removal finishes
    change_t *change = (change_t *) zmalloc (sizeof (change_t));
    json_t *none = json_array ();
    int code = s_change_plan (change, home, program, NULL, none, NULL, err, errlen);
    if (code == AF_OK)
        code = s_change_commit (change, err, errlen);
    s_change_end (change);
    free (change);
    json_decref (none);
    if (code != AF_OK)
        return code;
    //  Out of the way in one step, to a name of its own (a staging name:
    //  if it is not removed, it goes at the next start)
    char live [700];
    snprintf (live, sizeof live, "%s/apps/%s", home, program);
    struct stat st;
    if (lstat (live, &st))
        return AF_OK;
    uint8_t rand [4];
    randombytes_buf (rand, sizeof rand);
    char tag [9];
    sodium_bin2hex (tag, sizeof tag, rand, sizeof rand);
    if ((size_t) snprintf (aside, asidelen, "%s/apps/.%s.old-%s", home, program, tag) >= asidelen) {
        *aside = 0;
        snprintf (err, errlen, "cannot remove %s: its path is too long", live);
        return AF_E_INTERNAL;
    }
    if (rename (live, aside)) {
        snprintf (err, errlen, "cannot remove %s: %s", live, strerror (errno));
        *aside = 0;
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

int
af_install_remove (const char *home, const char *program, char *err, size_t errlen)
{
    char aside [AF_INSTALL_PATH];
    int code = af_install_remove_aside (home, program, aside, sizeof aside, err, errlen);
    if (code == AF_OK && *aside && s_remove_tree (aside))
        zsys_warning ("install: %s is uninstalled, but %s could not be removed: %s (it goes at the next start)",
                      program, aside, strerror (errno));
    return code;
}

static int
s_data (const char *home, const char *kind, const char *program, const char *archive, ctl_t *ctl,
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
    int code = s_check (archive, NULL, ctl, err, errlen);
    if (code != AF_OK)
        return code;
    char data [600];
    snprintf (data, sizeof data, "%s/%s", home, kind);
    json_t *files = json_array ();
    code = s_unpack_swap (data, program, archive, NULL, files, ctl, err, errlen);
    json_decref (files);
    return code;
}

int
af_install_data (const char *home, const char *kind, const char *program, const char *archive,
                 char *err, size_t errlen)
{
    return s_data (home, kind, program, archive, NULL, err, errlen);
}

//  Is name one of the staging names s_swap_stage and af_install_remove
//  make for a program: .PROGRAM.new-TAG, .PROGRAM.old-TAG (TAG: 8 hex
//  digits) or .PROGRAM.gone, or a scratch copy .show-PROGRAM? Or, in
//  installed/, a record's temporary PROGRAM.json.tmp?
//  In settings/ and startup/: what s_change_add writes aside, .X.tmp or
//  .X.gone, where X is PROGRAM.json (settings) or PROGRAM@NAME (startup)
static bool
s_is_stale_change (const char *name, bool startup)
{
    size_t len = strlen (name), end;
    if (*name != '.')
        return false;
    if (len > 5 && streq (name + len - 4, ".tmp"))
        end = len - 4;
    else
    if (len > 6 && streq (name + len - 5, ".gone"))
        end = len - 5;
    else
        return false;
    char x [AF_MAX_PROGRAM + AF_MAX_STARTUP_NAME + 8];
    if (end - 1 >= sizeof x)
        return false;
    memcpy (x, name + 1, end - 1);
    x [end - 1] = 0;
    char *cut = startup? strchr (x, '@'): NULL;
    if (startup && (!cut || !af_record_startup_name_valid (cut + 1)))
        return false;
    if (!startup) {
        size_t xlen = strlen (x);
        if (xlen < 6 || !streq (x + xlen - 5, ".json"))
            return false;
        cut = x + xlen - 5;
    }
    *cut = 0;
    return af_program_check (x, NULL, 0) == AF_OK;
}

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
    static const char *dirs [] = { "apps", "data", "config", "installed", "settings", "startup" };
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
            if (d >= 4? s_is_stale_change (entry->d_name, d == 5): s_is_stale (entry->d_name, d == 3))
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
        snprintf (err, errlen, "cannot write %s: %s", archive, s_why (writer));
        rc = AF_E_INTERNAL;
    }
    else
    if (archive_read_disk_open (disk, dir) != ARCHIVE_OK) {
        snprintf (err, errlen, "cannot read %s: %s", dir, s_why (disk));
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
            snprintf (err, errlen, "cannot read %s: %s", dir, s_why (disk));
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
            snprintf (err, errlen, "cannot pack %s: %s", path, s_why (writer));
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
        snprintf (err, errlen, "cannot write %s: %s", archive, s_why (writer));
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
//  An install on a thread of its own

struct _af_install_task_t {
    pthread_t thread;
    ctl_t ctl;
    char *home, *package, *program;
    char kind [8];                  //  "" (built-in), "data", "config" or "reap"
    af_install_info_t info;         //  the package's (built-in)
    atomic_bool done;               //  code and err are the thread's until this is set
    int code;
    char err [AF_MAX_REASON + 1];
};

static void *
s_task_run (void *arg)
{
    af_install_task_t *self = (af_install_task_t *) arg;
    if (streq (self->kind, "reap")) {
        self->code = s_remove_tree_ctl (self->package, &self->ctl)? AF_E_INTERNAL: AF_OK;
        if (self->code)
            snprintf (self->err, sizeof self->err, "cannot remove %s: %s", self->package, strerror (errno));
    }
    else
    if (*self->kind)
        self->code = s_data (self->home, self->kind, self->program, self->package, &self->ctl,
                             self->err, sizeof self->err);
    else
        self->code = s_builtin (self->home, self->package, &self->info, &self->ctl, self->err, sizeof self->err);
    atomic_store (&self->done, true);
    return NULL;
}

static void
s_task_free (af_install_task_t *self)
{
    free (self->home);
    free (self->package);
    free (self->program);
    free (self);
}

static af_install_task_t *
s_task_start (const char *home, const char *kind, const char *package, const char *program,
              const af_install_info_t *info, char *err, size_t errlen)
{
    af_install_task_t *self = (af_install_task_t *) zmalloc (sizeof (af_install_task_t));
    assert (self);
    self->home = strdup (home);
    self->package = strdup (package);
    self->program = strdup (program);
    assert (self->home && self->package && self->program);
    snprintf (self->kind, sizeof self->kind, "%s", kind);
    if (info)
        self->info = *info;
    atomic_init (&self->ctl.stop, false);
    atomic_init (&self->ctl.entries, 0);
    atomic_init (&self->done, false);
    //  Signals are the caller's thread's (czmq's handlers stop its loop):
    //  none is delivered to this one
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    int rc = pthread_create (&self->thread, NULL, s_task_run, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf (err, errlen, "cannot start the installer's thread: %s", strerror (rc));
        s_task_free (self);
        return NULL;
    }
    return self;
}

af_install_task_t *
af_install_builtin_start (const char *home, const char *package, const af_install_info_t *info,
                          char *err, size_t errlen)
{
    return s_task_start (home, "", package, info->program, info, err, errlen);
}

af_install_task_t *
af_install_data_start (const char *home, const char *kind, const char *program, const char *archive,
                       char *err, size_t errlen)
{
    //  kind and program are checked by the install itself, on its thread
    if (!*kind || streq (kind, "reap") || strlen (kind) >= sizeof ((af_install_task_t *) 0)->kind) {
        snprintf (err, errlen, "'%.20s' is not data or config", kind);
        return NULL;
    }
    return s_task_start (home, kind, archive, program, NULL, err, errlen);
}

af_install_task_t *
af_install_reap_start (const char *path, char *err, size_t errlen)
{
    return s_task_start ("", "reap", path, "", NULL, err, errlen);
}

int
af_install_task_poll (af_install_task_t *self, bool *running, uint64_t *entries, char *err, size_t errlen)
{
    assert (self && running);
    if (entries)
        *entries = (uint64_t) atomic_load (&self->ctl.entries);
    *running = !atomic_load (&self->done);
    if (*running)
        return AF_OK;
    if (self->code != AF_OK)
        snprintf (err, errlen, "%s", self->err);
    return self->code;
}

void
af_install_task_destroy (af_install_task_t **self_p)
{
    assert (self_p);
    af_install_task_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->ctl.stop, true);
    pthread_join (self->thread, NULL);
    s_task_free (self);
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
    //  The issue's chain: each link looks inside by its own text
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

static int
s_task_wait (af_install_task_t *task, uint64_t *entries, char *err, size_t errlen)
{
    bool running = true;
    int code = AF_OK;
    for (int i = 0; running && i < 60000; i++) {
        code = af_install_task_poll (task, &running, entries, err, errlen);
        if (running)
            zclock_sleep (1);
    }
    assert (!running);
    return code;
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
    //  A removal killed after its rename left .dots.old-TAG (before,
    //  .dots.gone): the next removal of dots is not stopped by them, and
    //  they go at the next start
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (zsys_dir_create ("%s/apps/.dots.gone/.x/.y", home) == 0);
    assert (zsys_dir_create ("%s/apps/.dots.old-0123abcd/.x/.y", home) == 0);
    assert (af_install_remove (home, "dots", err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/apps/dots", home);
    assert (lstat (path, &st) == -1 && errno == ENOENT);
    assert (af_install_clean_stale (home, &removed, err, sizeof err) == AF_OK && removed == 2);
    snprintf (path, sizeof path, "%s/apps", home);
    assert (s_entries (path, names, sizeof names) == 2 && !strstr (names, "dots"));

    //  Aside: the tree is moved in one rename, and removed by its task
    char aside [AF_INSTALL_PATH];
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (af_install_remove_aside (home, "dots", aside, sizeof aside, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/apps/dots", home);
    assert (lstat (path, &st) == -1 && strstr (aside, "/apps/.dots.old-") && lstat (aside, &st) == 0);
    af_install_task_t *reaper = af_install_reap_start (aside, err, sizeof err);
    assert (reaper && s_task_wait (reaper, NULL, err, sizeof err) == AF_OK);
    af_install_task_destroy (&reaper);
    assert (lstat (aside, &st) == -1 && errno == ENOENT);
    assert (af_install_remove_aside (home, "dots", aside, sizeof aside, err, sizeof err) == AF_OK && !*aside);
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

//  A file's whole text as JSON (NULL if none)
static json_t *
s_json_file (const char *home, const char *name)
{
    char path [700];
    snprintf (path, sizeof path, "%s/%s", home, name);
    json_error_t jerr;
    return json_load_file (path, 0, &jerr);
}

//  Does HOME/startup hold exactly names (space-separated, in any order)?
static bool
s_startup_is (const char *home, const char *names)
{
    char dir [700], found [1024], want [256];
    snprintf (dir, sizeof dir, "%s/startup", home);
    int count = s_entries (dir, found, sizeof found);
    if (count < 0)
        return !*names;
    int wanted = 0;
    snprintf (want, sizeof want, "%s", names);
    for (char *name = strtok (want, " "); name; name = strtok (NULL, " ")) {
        wanted++;
        char padded [300], all [1100];
        snprintf (padded, sizeof padded, " %s ", name);
        snprintf (all, sizeof all, " %s ", found);
        if (!strstr (all, padded))
            return false;
    }
    return wanted == count;
}

static const char *
s_setting (const char *home, const char *program, const char *key, char *value, size_t size)
{
    char name [200];
    snprintf (name, sizeof name, "settings/%s.json", program);
    json_t *settings = s_json_file (home, name);
    const char *text = json_string_value (json_object_get (settings, key));
    snprintf (value, size, "%s", text? text: "(none)");
    json_decref (settings);
    return value;
}

//  The manifest: an install writes its settings and start-up entries and
//  records them; each broken rule refuses the install, the installed
//  version (tree, settings, entries, record) intact; an upgrade drops what
//  the new version does not declare, and leaves other programs' entries
//  alone, even one whose ID and entry names make the same dotted name
static void
s_test_manifest (const char *home, const char *pkg, af_install_info_t *info)
{
    char err [512], value [1100];
    strcpy (info->program, "cfg");
    strcpy (info->version_name, "1.0");
    const char *v1 [][3] = { { "app/", "d", "" }, { "app/V", "f", "1\n" },
        { "./appferry.json", "f", "{\"settings\": {\"theme\": \"dark\", \"size\": \"12\"}, \"startup\": [\"tips\", \"b.sync\"]}" },
        { NULL, NULL, NULL } };
    s_make_tar (pkg, v1);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "dark"));
    assert (streq (s_setting (home, "cfg", "size", value, sizeof value), "12"));
    assert (s_startup_is (home, "cfg@tips cfg@b.sync"));
    char path [700], line [100];
    snprintf (path, sizeof path, "%s/startup/cfg@tips", home);
    assert (streq (s_first_line (path, line, sizeof line), "tips\n"));
    json_t *record = s_json_file (home, "installed/cfg.json");
    assert (streq (json_string_value (json_object_get (json_object_get (record, "settings"), "theme")), "dark"));
    assert (json_array_size (json_object_get (record, "startup")) == 2);
    json_decref (record);
    //  Another program "cfg.b" with entry "sync": were '.' the separator,
    //  its file would be cfg's entry "b.sync"
    strcpy (info->program, "cfg.b");
    const char *other [][3] = { { "x", "f", "x" }, { "appferry.json", "f", "{\"startup\": [\"sync\"]}" },
                                { NULL, NULL, NULL } };
    s_make_tar (pkg, other);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (s_startup_is (home, "cfg@tips cfg@b.sync cfg.b@sync"));
    snprintf (path, sizeof path, "%s/settings/cfg.b.json", home);
    assert (!zsys_file_exists (path));          //  no settings declared: no file
    strcpy (info->program, "cfg");

    //  Refused, each naming what; nothing changed
    char *big = (char *) malloc (AF_MANIFEST_MAX + 64);
    assert (big);
    memset (big, ' ', AF_MANIFEST_MAX + 1);
    big [0] = '{', big [AF_MANIFEST_MAX] = '}', big [AF_MANIFEST_MAX + 1] = 0;
    const char *refused [][4] = {
        { "appferry.json", "f", "{\"settings\": {\"theme\": 1}}", "'theme' is not a string" },
        { "appferry.json", "f", "{\"startup\": [\"../../bin/evil\"]}", "not a name" },
        { "appferry.json", "f", "{\"startup\": [\".hidden\"]}", "not a name" },
        { "appferry.json", "f", "{\"command\": \"rm -rf ~\"}", "unknown key 'command'" },
        { "appferry.json", "f", "not json", "appferry.json" },
        { "appferry.json", "f", big, "larger than 65536" },
        { "appferry.json/", "d", "", "is not a file" },
        { "appferry.json", "l", "app/V", "is not a file" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        const char *bad [][3] = { { "app/", "d", "" }, { "app/V", "f", "2\n" },
                                  { refused [i][0], refused [i][1], refused [i][2] }, { NULL, NULL, NULL } };
        s_make_tar (pkg, bad);
        strcpy (info->version_name, "bad");
        assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_MALFORMED);
        assert (strstr (err, refused [i][3]));
    }
    free (big);
    const char *twice [][3] = { { "appferry.json", "f", "{}" }, { "./appferry.json", "f", "{}" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, twice);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_MALFORMED && strstr (err, "twice"));
    //  The limits themselves (af_record's self-test has each): 65 settings
    char many [4096] = "{\"settings\": {";
    for (int i = 0; i <= AF_MAX_SETTINGS; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%s\"k%d\": \"v\"", i? ", ": "", i);
    strcat (many, "}}");
    const char *too_many [][3] = { { "appferry.json", "f", many }, { NULL, NULL, NULL } };
    s_make_tar (pkg, too_many);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_MALFORMED && strstr (err, "more than 64"));
    //  ... and a manifest under defaults/ or deeper is a plain file
    const char *deeper [][3] = { { "app/appferry.json", "f", "not json" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, deeper);
    strcpy (info->program, "cfg.c");
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (af_install_remove (home, "cfg.c", err, sizeof err) == AF_OK);
    strcpy (info->program, "cfg");
    snprintf (path, sizeof path, "%s/apps/cfg/app/V", home);
    assert (streq (s_first_line (path, line, sizeof line), "1\n"));
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "dark"));
    assert (s_startup_is (home, "cfg@tips cfg@b.sync cfg.b@sync"));
    record = s_json_file (home, "installed/cfg.json");
    assert (streq (json_string_value (json_object_get (record, "versionName")), "1.0"));
    json_decref (record);

    //  An upgrade that declares less: size and b.sync go, cfg.b's stays
    const char *v2 [][3] = { { "app/", "d", "" }, { "app/V", "f", "2\n" },
        { "appferry.json", "f", "{\"settings\": {\"theme\": \"light\"}, \"startup\": [\"tips\"]}" },
        { NULL, NULL, NULL } };
    s_make_tar (pkg, v2);
    strcpy (info->version_name, "2.0");
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "light"));
    assert (streq (s_setting (home, "cfg", "size", value, sizeof value), "(none)"));
    assert (s_startup_is (home, "cfg@tips cfg.b@sync"));
    record = s_json_file (home, "installed/cfg.json");
    assert (json_object_size (json_object_get (record, "settings")) == 1);
    assert (json_array_size (json_object_get (record, "startup")) == 1);
    json_decref (record);
    //  One that cannot write an entry (a directory in its way): the tree,
    //  settings, entries and record of 2.0 stay, nothing left aside
    snprintf (path, sizeof path, "%s/startup/cfg@b.sync", home);
    assert (zsys_dir_create ("%s/x", path) == 0);
    s_make_tar (pkg, v1);
    strcpy (info->version_name, "1.1");
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_E_INTERNAL && strstr (err, "cfg@b.sync"));
    snprintf (path, sizeof path, "%s/apps/cfg/app/V", home);
    assert (streq (s_first_line (path, line, sizeof line), "2\n"));
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "light"));
    assert (s_startup_is (home, "cfg@tips cfg@b.sync cfg.b@sync"));
    record = s_json_file (home, "installed/cfg.json");
    assert (streq (json_string_value (json_object_get (record, "versionName")), "2.0"));
    json_decref (record);
    char names [1024];
    snprintf (path, sizeof path, "%s/settings", home);
    assert (s_entries (path, names, sizeof names) == 1 && streq (names, "cfg.json"));
    snprintf (path, sizeof path, "%s/startup/cfg@b.sync", home);
    assert (s_remove_tree (path) == 0);
    //  Without a manifest: no settings file, no entries of cfg's
    const char *v3 [][3] = { { "app/", "d", "" }, { "app/V", "f", "3\n" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, v3);
    strcpy (info->version_name, "3.0");
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/settings/cfg.json", home);
    assert (!zsys_file_exists (path));
    assert (s_startup_is (home, "cfg.b@sync"));
    record = s_json_file (home, "installed/cfg.json");
    assert (json_object_size (json_object_get (record, "settings")) == 0);
    assert (json_array_size (json_object_get (record, "startup")) == 0);
    json_decref (record);
}

//  Export says what the device has now; apply takes only what the
//  installed package declares, all or nothing
static void
s_test_export_apply (const char *home, const char *pkg, af_install_info_t *info)
{
    char err [512], value [1100], path [700];
    json_t *record;
    strcpy (info->program, "cfg");
    strcpy (info->version_name, "1.0");
    info->version_code = 1;
    const char *v1 [][3] = { { "app/", "d", "" },
        { "appferry.json", "f", "{\"settings\": {\"theme\": \"dark\", \"size\": \"12\", \"lang\": \"en\"}, "
                                "\"startup\": [\"tips\", \"b.sync\"]}" },
        { NULL, NULL, NULL } };
    s_make_tar (pkg, v1);
    assert (af_install_builtin (home, pkg, info, err, sizeof err) == AF_OK);
    //  The user changes theme, removes size, adds a key of their own, gives
    //  lang a value the rules refuse, and removes an entry
    snprintf (path, sizeof path, "%s/settings/cfg.json", home);
    s_write_file (path, "{\"theme\": \"blue\", \"mine\": \"x\", \"lang\": 7}");
    snprintf (path, sizeof path, "%s/startup/cfg@b.sync", home);
    assert (unlink (path) == 0);
    assert (af_install_record_export (home, "cfg", &record, err, sizeof err) == AF_OK);
    assert (af_install_record_check (record, err, sizeof err) == AF_OK);
    json_t *settings = json_object_get (record, "settings");
    assert (json_object_size (settings) == 1 && streq (json_string_value (json_object_get (settings, "theme")), "blue"));
    assert (json_array_size (json_object_get (record, "startup")) == 1
            && streq (json_string_value (json_array_get (json_object_get (record, "startup"), 0)), "tips"));
    assert (streq (json_string_value (json_object_get (record, "versionName")), "1.0"));
    assert (json_integer_value (json_object_get (record, "versionCode")) == 1);
    json_decref (record);
    //  A settings file that is no JSON object reads as none
    snprintf (path, sizeof path, "%s/settings/cfg.json", home);
    s_write_file (path, "{broken");
    assert (af_install_record_export (home, "cfg", &record, err, sizeof err) == AF_OK);
    assert (json_object_size (json_object_get (record, "settings")) == 0);
    json_decref (record);
    assert (af_install_record_export (home, "never", &record, err, sizeof err) == AF_E_NOT_THERE && !record);
    assert (af_install_record_export (home, "../x", &record, err, sizeof err) == AF_E_MALFORMED && !record);
    //  cfg.b (from s_test_manifest) was installed by a record without
    //  settings: exports {} and its entry
    assert (af_install_record_export (home, "cfg.b", &record, err, sizeof err) == AF_OK);
    assert (json_object_size (json_object_get (record, "settings")) == 0 && json_array_size (json_object_get (record, "startup")) == 1);
    json_decref (record);
    //  A record from before the manifest (no settings, no startup) exports
    //  empty ones
    snprintf (path, sizeof path, "%s/installed/old.json", home);
    s_write_file (path, "{\"program\": \"old\", \"versionName\": \"0.9\", \"versionCode\": 9, \"files\": []}");
    assert (af_install_record_export (home, "old", &record, err, sizeof err) == AF_OK);
    assert (json_object_size (json_object_get (record, "settings")) == 0 && json_array_size (json_object_get (record, "startup")) == 0);
    json_decref (record);
    //  A damaged record never names files
    s_write_file (path, "{\"program\": \"old\", \"startup\": [\"../../x\"]}");
    assert (af_install_record_export (home, "old", &record, err, sizeof err) == AF_E_MALFORMED && strstr (err, "damaged"));
    assert (unlink (path) == 0);

    //  Apply: theme and size from the source; lang kept (the source has
    //  none; here it is refused, so the install's); "evil" ignored; of
    //  the entries, b.sync comes back, tips goes, "evil" and "../x" never
    //  made (a name the rules refuse refuses the whole record)
    snprintf (path, sizeof path, "%s/settings/cfg.json", home);
    s_write_file (path, "{\"theme\": \"blue\", \"lang\": 7, \"mine\": \"x\"}");
    json_t *source = json_pack ("{s:s, s:s, s:i, s:{s:s, s:s, s:s}, s:[s, s]}", "program", "cfg",
                                "versionName", "5.0", "versionCode", 5, "settings", "theme", "red", "size", "20",
                                "evil", "x", "startup", "b.sync", "evil");
    assert (af_install_record_apply (home, "cfg", source, err, sizeof err) == AF_OK);
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "red"));
    assert (streq (s_setting (home, "cfg", "size", value, sizeof value), "20"));
    assert (streq (s_setting (home, "cfg", "lang", value, sizeof value), "en"));
    assert (streq (s_setting (home, "cfg", "evil", value, sizeof value), "(none)"));
    assert (streq (s_setting (home, "cfg", "mine", value, sizeof value), "(none)"));
    assert (s_startup_is (home, "cfg@b.sync cfg.b@sync"));
    char names [1024];
    snprintf (path, sizeof path, "%s/settings", home);
    assert (s_entries (path, names, sizeof names) == 1 && streq (names, "cfg.json"));
    record = s_json_file (home, "installed/cfg.json");
    json_t *applied = json_object_get (record, "appliedFrom");
    assert (json_integer_value (json_object_get (applied, "at")) > 0);
    assert (streq (json_string_value (json_object_get (applied, "versionName")), "5.0"));
    assert (streq (json_string_value (json_object_get (json_object_get (record, "settings"), "theme")), "dark"));
    json_decref (record);
    //  What the source device exports is what applies: a round trip
    assert (af_install_record_export (home, "cfg", &record, err, sizeof err) == AF_OK);
    assert (json_object_size (json_object_get (record, "settings")) == 3);
    json_decref (record);

    //  Refused, nothing changed: another program's record, a bad name, an
    //  unknown key, a value too long, not installed, not an ID
    struct { const char *key; json_t *value; int code; const char *says; } refused [] = {
        { "program", json_string ("cfg.b"), AF_E_MALFORMED, "of cfg.b, not cfg" },
        { "startup", json_pack ("[s]", "../../.bashrc"), AF_E_MALFORMED, "not a name" },
        { "files", json_pack ("[s]", "x"), AF_E_MALFORMED, "unknown key 'files'" },
        { "settings", json_pack ("{s:i}", "theme", 1), AF_E_MALFORMED, "'theme' is not a string" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        json_t *copy = json_deep_copy (source);
        json_object_set_new (copy, refused [i].key, refused [i].value);
        json_object_set_new (json_object_get (copy, "settings"), "theme", json_string ("changed"));
        if (streq (refused [i].key, "settings"))
            json_object_set_new (json_object_get (copy, "settings"), "theme", json_integer (1));
        assert (af_install_record_apply (home, "cfg", copy, err, sizeof err) == refused [i].code);
        assert (strstr (err, refused [i].says));
        json_decref (copy);
    }
    char long_value [AF_MAX_SETTING_VALUE + 2];
    memset (long_value, 'v', sizeof long_value);
    long_value [AF_MAX_SETTING_VALUE + 1] = 0;
    json_t *copy = json_deep_copy (source);
    json_object_set_new (json_object_get (copy, "settings"), "theme", json_string (long_value));
    assert (af_install_record_apply (home, "cfg", copy, err, sizeof err) == AF_E_MALFORMED && strstr (err, "longer"));
    json_decref (copy);
    assert (af_install_record_apply (home, "never", source, err, sizeof err) == AF_E_MALFORMED);
    copy = json_deep_copy (source);
    json_object_set_new (copy, "program", json_string ("never"));
    assert (af_install_record_apply (home, "never", copy, err, sizeof err) == AF_E_NOT_THERE);
    json_decref (copy);
    assert (af_install_record_apply (home, "../x", source, err, sizeof err) == AF_E_MALFORMED);
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "red"));
    assert (s_startup_is (home, "cfg@b.sync cfg.b@sync"));

    //  All or nothing: a full disk while the settings are written aside
    //  (a file size limit makes the EFBIG a quota would), and an entry that
    //  cannot be put in place after the settings were (a directory in its
    //  way): settings, entries and record as they were, nothing aside
    record = s_json_file (home, "installed/cfg.json");
    char *before = json_dumps (record, JSON_COMPACT);
    json_decref (record);
    copy = json_deep_copy (source);
    memset (long_value, 'w', sizeof long_value);
    long_value [AF_MAX_SETTING_VALUE] = 0;
    json_object_set_new (json_object_get (copy, "settings"), "theme", json_string (long_value));
    json_array_append_new (json_object_get (copy, "startup"), json_string ("tips"));
    struct rlimit saved, small;
    assert (getrlimit (RLIMIT_FSIZE, &saved) == 0);
    small = saved;
    small.rlim_cur = 200;
    void (*handler) (int) = signal (SIGXFSZ, SIG_IGN);
    assert (setrlimit (RLIMIT_FSIZE, &small) == 0);
    int rc = af_install_record_apply (home, "cfg", copy, err, sizeof err);
    assert (setrlimit (RLIMIT_FSIZE, &saved) == 0);
    signal (SIGXFSZ, handler);
    assert (rc == AF_E_INTERNAL && strstr (err, "full"));
    snprintf (path, sizeof path, "%s/startup/cfg@tips", home);
    assert (zsys_dir_create ("%s/x", path) == 0);
    json_object_set_new (json_object_get (copy, "settings"), "theme", json_string ("green"));
    assert (af_install_record_apply (home, "cfg", copy, err, sizeof err) == AF_E_INTERNAL && strstr (err, "cfg@tips"));
    assert (s_remove_tree (path) == 0);
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "red"));
    assert (s_startup_is (home, "cfg@b.sync cfg.b@sync"));
    record = s_json_file (home, "installed/cfg.json");
    char *after = json_dumps (record, JSON_COMPACT);
    json_decref (record);
    assert (streq (before, after));
    free (before);
    free (after);
    snprintf (path, sizeof path, "%s/settings", home);
    assert (s_entries (path, names, sizeof names) == 1 && streq (names, "cfg.json"));
    snprintf (path, sizeof path, "%s/installed", home);
    assert (s_entries (path, names, sizeof names) >= 0 && !strstr (names, ".tmp"));
    //  ... and once it can, it applies
    assert (af_install_record_apply (home, "cfg", copy, err, sizeof err) == AF_OK);
    assert (streq (s_setting (home, "cfg", "theme", value, sizeof value), "green"));
    assert (s_startup_is (home, "cfg@tips cfg@b.sync cfg.b@sync"));
    json_decref (copy);
    json_decref (source);

    //  What a kill leaves aside goes at start; other names stay
    const char *stale [] = { "settings/.cfg.json.tmp", "settings/.cfg.json.gone", "startup/.cfg@tips.tmp",
                             "startup/.cfg.b@sync.gone" };
    const char *kept [] = { "settings/cfg.json.tmp", "settings/.cfg.tmp", "startup/.cfg@.x.tmp",
                            "startup/.cfg.tmp", "startup/.Cfg@x.gone" };
    for (int i = 0; i < 4; i++) {
        snprintf (path, sizeof path, "%s/%s", home, stale [i]);
        s_write_file (path, "x");
    }
    for (int i = 0; i < 5; i++) {
        snprintf (path, sizeof path, "%s/%s", home, kept [i]);
        s_write_file (path, "x");
    }
    size_t removed;
    assert (af_install_clean_stale (home, &removed, err, sizeof err) == AF_OK && removed == 4);
    for (int i = 0; i < 5; i++) {
        snprintf (path, sizeof path, "%s/%s", home, kept [i]);
        assert (unlink (path) == 0);
    }
    assert (s_startup_is (home, "cfg@tips cfg@b.sync cfg.b@sync"));

    //  Uninstall: the settings and every entry of cfg go, cfg.b's stay
    assert (af_install_remove (home, "cfg", err, sizeof err) == AF_OK);
    snprintf (path, sizeof path, "%s/settings/cfg.json", home);
    assert (!zsys_file_exists (path));
    assert (s_startup_is (home, "cfg.b@sync"));
    assert (af_install_remove (home, "cfg.b", err, sizeof err) == AF_OK);
    assert (s_startup_is (home, ""));
}

//  The sections of the self-test run in order on one HOME and one package
//  file, pkg: each starts from what the one before it left (the programs
//  installed, info's program and version)
//  A task's install is the same install, off the caller's thread: its
//  outcome and errors are af_install_builtin's; one stopped half-way
//  changes nothing installed and leaves no staging

static void
s_test_tasks (const char *home, const char *pkg, af_install_info_t *info)
{
    char err [512], path [700], names [4096];
    uint64_t entries = 0;
    strcpy (info->program, "tasked");
    const char *good [][3] = { { "app/", "d", "" }, { "app/README", "f", "tasked" },
                               { "defaults/", "d", "" }, { "defaults/x", "f", "1" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, good);
    af_install_task_t *task = af_install_builtin_start (home, pkg, info, err, sizeof err);
    assert (task);
    assert (s_task_wait (task, &entries, err, sizeof err) == AF_OK);
    assert (entries == 8);              //  4 checked, 4 unpacked
    af_install_task_destroy (&task);
    assert (task == NULL);
    snprintf (path, sizeof path, "%s/apps/tasked/app/README", home);
    char line [64];
    assert (streq (s_first_line (path, line, sizeof line), "tasked"));
    bool found;
    af_install_info_t back;
    assert (af_install_record_read (home, "tasked", &back, &found) == AF_OK && found);
    assert (streq (back.method, "builtin"));

    //  Refusals are the same, with the same reasons
    const char *evil [][3] = { { "app/", "d", "" }, { "../escape", "f", "x" }, { NULL, NULL, NULL } };
    s_make_tar (pkg, evil);
    task = af_install_builtin_start (home, pkg, info, err, sizeof err);
    assert (task);
    assert (s_task_wait (task, NULL, err, sizeof err) == AF_E_MALFORMED && strstr (err, "(..)"));
    af_install_task_destroy (&task);
    assert (af_install_record_read (home, "tasked", &back, &found) == AF_OK && found);
    assert (streq (back.method, "builtin"));

    //  User data, and the kinds it refuses
    s_make_tar (pkg, good);
    task = af_install_data_start (home, "data", "tasked", pkg, err, sizeof err);
    assert (task && s_task_wait (task, NULL, err, sizeof err) == AF_OK);
    af_install_task_destroy (&task);
    snprintf (path, sizeof path, "%s/data/tasked/app/README", home);
    struct stat st;
    assert (lstat (path, &st) == 0);
    task = af_install_data_start (home, "../apps", "tasked", pkg, err, sizeof err);
    assert (task && s_task_wait (task, NULL, err, sizeof err) == AF_E_MALFORMED);
    af_install_task_destroy (&task);
    assert (af_install_data_start (home, "", "tasked", pkg, err, sizeof err) == NULL);
    task = af_install_data_start (home, "data", "../x", pkg, err, sizeof err);
    assert (task && s_task_wait (task, NULL, err, sizeof err) == AF_E_MALFORMED && strstr (err, "not a program ID"));
    af_install_task_destroy (&task);

    //  Stopped at once: a large archive (20,000 entries) over the version
    //  installed. Whichever came first, the stop or the end, the install
    //  is whole or did not happen, and no staging is left
    struct archive *writer = archive_write_new ();
    archive_write_set_format_pax_restricted (writer);
    assert (archive_write_open_filename (writer, pkg) == ARCHIVE_OK);
    for (int i = 0; i < 20000; i++) {
        struct archive_entry *entry = archive_entry_new ();
        char name [32];
        snprintf (name, sizeof name, "f%05d", i);
        archive_entry_set_pathname (entry, name);
        archive_entry_set_filetype (entry, AE_IFREG);
        archive_entry_set_perm (entry, 0644);
        archive_entry_set_size (entry, 1);
        assert (archive_write_header (writer, entry) == ARCHIVE_OK);
        archive_write_data (writer, "x", 1);
        archive_entry_free (entry);
    }
    archive_write_close (writer);
    archive_write_free (writer);
    strcpy (info->hash, "bb");
    task = af_install_builtin_start (home, pkg, info, err, sizeof err);
    assert (task);
    af_install_task_destroy (&task);
    assert (af_install_record_read (home, "tasked", &back, &found) == AF_OK && found);
    snprintf (path, sizeof path, "%s/apps/tasked/f19999", home);
    if (streq (back.hash, "bb"))
        assert (lstat (path, &st) == 0);
    else {
        assert (streq (back.hash, "aa") && lstat (path, &st) == -1);
        snprintf (path, sizeof path, "%s/apps/tasked/app/README", home);
        assert (lstat (path, &st) == 0);
    }
    snprintf (path, sizeof path, "%s/apps", home);
    assert (s_entries (path, names, sizeof names) >= 0 && !strstr (names, ".tasked."));
    snprintf (path, sizeof path, "%s/installed", home);
    assert (s_entries (path, names, sizeof names) >= 0 && !strstr (names, "tasked.json.tmp"));
    //  The same, waited for: all 20,000 files
    task = af_install_builtin_start (home, pkg, info, err, sizeof err);
    assert (task && s_task_wait (task, &entries, err, sizeof err) == AF_OK && entries == 40000);
    af_install_task_destroy (&task);
    snprintf (path, sizeof path, "%s/apps/tasked/f19999", home);
    assert (lstat (path, &st) == 0);
    assert (af_install_remove (home, "tasked", err, sizeof err) == AF_OK);
    strcpy (info->hash, "aa");
}

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
    s_test_tasks (home, pkg, &info);
    //  On a home of their own: the sections above count what HOME has
    char own [700];
    snprintf (own, sizeof own, "%s/manifest", home);
    assert (zsys_dir_create ("%s", own) == 0);
    s_test_manifest (own, pkg, &info);
    s_test_export_apply (own, pkg, &info);

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
