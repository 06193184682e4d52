/*  =========================================================================
    node_intent - an install command runs once at a time, and at most twice

    The operator's install command (--install-cmd) is the one install
    step the node does not do itself: it runs beside the node, and the
    node can die while it runs. Three things keep a second install from
    running beside the first (issue 9, section 3):

    * The attempt is recorded before the command starts: HOME/install.intent
      (push, program, hash, the package file, attempts), written whole and
      fsynced. It is removed when the command has ended and its outcome is
      recorded.
    * The command dies with the node: it runs under appferry-install-guard
      (see install_guard.c), which kills the command's process group when
      the node dies.
    * At start, an intent left behind means the node died while a command
      ran. Whatever still runs of it is found (by the package path in its
      environment, AF_PACKAGE, even if it left the group) and killed, and
      the node waits until it is gone, before anything else can start.

    The rule for the offer, which comes again: an interrupted attempt is
    run again, once; if that second attempt is interrupted too, the push
    is reported failed ("interrupted twice"), as something about this
    install may be what stops the node. A package already recorded as
    installed is not run again at all (node_jobs: the no-op path).
    =========================================================================
*/
#include "node_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>

static void
s_intent_path (af_node_t *self, char *path, size_t size)
{
    snprintf (path, size, "%s/install.intent", self->config.home);
}

//  Where appferry-install-guard is: beside the running program
static bool
s_guard_path (char *path, size_t size)
{
    char self_path [512];
    ssize_t n = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0)
        return false;
    self_path [n] = 0;
    char *slash = strrchr (self_path, '/');
    if (!slash)
        return false;
    *slash = 0;
    snprintf (path, size, "%s/appferry-install-guard", self_path);
    return access (path, X_OK) == 0;
}

//  text as one shell word: 'text', with each ' written '\''. False if it
//  does not fit in size: a command cut short must never run
static bool
s_quote (const char *text, char *out, size_t size)
{
    size_t at = 0;
    if (size < 3)
        return false;
    out [at++] = '\'';
    for (const char *c = text; *c; c++) {
        if (at + 4 + 2 > size)          //  room for this, the closing ' and the NUL
            return false;
        if (*c == '\'') {
            memcpy (out + at, "'\\''", 4);
            at += 4;
        }
        else
            out [at++] = *c;
    }
    out [at++] = '\'';
    out [at] = 0;
    return true;
}

int
node_intent_setup (af_node_t *self, char *err, size_t errlen)
{
    if (!*self->config.install_cmd)
        return 0;
    char guard [600] = "", quoted_guard [4 * sizeof guard + 3], quoted_cmd [4 * sizeof self->config.install_cmd + 3];
    if (!s_guard_path (guard, sizeof guard)) {
        snprintf (err, errlen, "--install-cmd needs appferry-install-guard beside this program (%s)",
                  *guard? guard: "/proc/self/exe unreadable");
        return -1;
    }
    //  Run by af_install_cmd as /bin/sh -c COMMAND sh PACKAGE: the shell
    //  becomes the guard, which runs the operator's command as before
    int n = -1;
    if (s_quote (guard, quoted_guard, sizeof quoted_guard)
    &&  s_quote (self->config.install_cmd, quoted_cmd, sizeof quoted_cmd))
        n = snprintf (self->guarded_cmd, sizeof self->guarded_cmd, "exec %s %d /bin/sh -c %s sh \"$1\"",
                      quoted_guard, (int) getpid (), quoted_cmd);
    if (n < 0 || (size_t) n >= sizeof self->guarded_cmd) {
        *self->guarded_cmd = 0;
        snprintf (err, errlen, "--install-cmd: the command with its guard (%s) is longer than %zu bytes once quoted",
                  guard, sizeof self->guarded_cmd - 1);
        return -1;
    }
    return 0;
}

//  Read the intent: true with its fields, false if there is none
static bool
s_intent_read (af_node_t *self, char *push, char *program, char *part, size_t partlen, uint32_t *attempts)
{
    char path [600];
    s_intent_path (self, path, sizeof path);
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    if (!json_is_object (doc)) {
        if (doc || zsys_file_exists (path))
            zsys_warning ("node: ignoring an unreadable %s", path);
        json_decref (doc);
        return false;
    }
    const char *text;
    text = json_string_value (json_object_get (doc, "pushId"));
    snprintf (push, AF_ID_HEX + 1, "%s", text? text: "");
    text = json_string_value (json_object_get (doc, "program"));
    snprintf (program, AF_MAX_PROGRAM + 1, "%s", text? text: "");
    text = json_string_value (json_object_get (doc, "package"));
    snprintf (part, partlen, "%s", text? text: "");
    *attempts = (uint32_t) json_integer_value (json_object_get (doc, "attempts"));
    json_decref (doc);
    return true;
}

//  Write the intent whole and durably. 0, or -1 with errno.
static int
s_intent_write (af_node_t *self, job_t *job, uint32_t attempts)
{
    char path [600], tmp [620];
    s_intent_path (self, path, sizeof path);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I}", "pushId", job->push, "program", job->program,
                             "hash", job->package.hash, "package", job->part,
                             "attempts", (json_int_t) attempts, "startedAt", (json_int_t) zclock_time ());
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    int fd = text? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600): -1;
    size_t size = text? strlen (text): 0;
    bool ok = fd >= 0 && write (fd, text, size) == (ssize_t) size && fsync (fd) == 0;
    if (fd >= 0)
        ok = close (fd) == 0 && ok;
    ok = ok && rename (tmp, path) == 0;
    int saved = errno;
    free (text);
    if (ok) {
        int dir = open (self->config.home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = dir >= 0 && fsync (dir) == 0;
        saved = errno;
        if (dir >= 0)
            close (dir);
    }
    else
        unlink (tmp);
    errno = saved;
    return ok? 0: -1;
}

int
node_intent_begin (af_node_t *self, job_t *job, char *err, size_t errlen)
{
    char push [AF_ID_HEX + 1], program [AF_MAX_PROGRAM + 1], part [600];
    uint32_t attempts = 0;
    if (!s_intent_read (self, push, program, part, sizeof part, &attempts) || !streq (push, job->push))
        attempts = 0;               //  another push's, or none: this is the first
    if (attempts >= NODE_INSTALL_ATTEMPTS) {
        snprintf (err, errlen, "the install command was interrupted %u times by the node stopping; "
                  "not run again", attempts);
        node_intent_end (self);
        return -1;
    }
    if (s_intent_write (self, job, attempts + 1)) {
        snprintf (err, errlen, "cannot record the install attempt in %s/install.intent: %s",
                  self->config.home, strerror (errno));
        return -1;
    }
    if (attempts)
        zsys_info ("node: running the install command of %s again (attempt %u of %d)", job->program,
                   attempts + 1, NODE_INSTALL_ATTEMPTS);
    return 0;
}

void
node_intent_end (af_node_t *self)
{
    char path [600];
    s_intent_path (self, path, sizeof path);
    if (unlink (path) && errno != ENOENT)
        zsys_error ("node: cannot remove %s: %s", path, strerror (errno));
}

//  The processes still running whose environment names the package file
//  (AF_PACKAGE=part): killed with their process groups. Returns how many
//  were alive.
static int
s_kill_leftovers (const char *part)
{
    char wanted [700];
    int wanted_len = snprintf (wanted, sizeof wanted, "AF_PACKAGE=%s", part);
    int alive = 0;
    DIR *proc = opendir ("/proc");
    struct dirent *entry;
    while (proc && (entry = readdir (proc))) {
        pid_t pid = (pid_t) atol (entry->d_name);
        if (pid <= 1 || pid == getpid ())
            continue;
        char path [64], stat_line [512];
        //  Zombies are dead already; their environment is empty anyway
        snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *file = fopen (path, "r");
        bool zombie = true;
        if (file && fgets (stat_line, sizeof stat_line, file)) {
            char *close_paren = strrchr (stat_line, ')');
            zombie = !close_paren || close_paren [1] != ' ' || close_paren [2] == 'Z' || close_paren [2] == 'X';
        }
        if (file)
            fclose (file);
        if (zombie)
            continue;
        snprintf (path, sizeof path, "/proc/%d/environ", (int) pid);
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char env [65536];
        ssize_t size = read (fd, env, sizeof env - 1);
        close (fd);
        bool ours = false;
        if (size > 0)
            env [size] = 0;
        for (ssize_t at = 0; size > 0 && at < size && !ours; at += (ssize_t) strlen (env + at) + 1)
            ours = strncmp (env + at, wanted, (size_t) wanted_len) == 0 && env [at + wanted_len] == 0;
        if (ours) {
            pid_t group = getpgid (pid);
            if (group > 1 && group != getpgrp ())
                kill (-group, SIGKILL);
            kill (pid, SIGKILL);
            alive++;
        }
    }
    if (proc)
        closedir (proc);
    return alive;
}

int
node_intent_recover (af_node_t *self, char *err, size_t errlen)
{
    char push [AF_ID_HEX + 1], program [AF_MAX_PROGRAM + 1], part [600];
    uint32_t attempts;
    if (!s_intent_read (self, push, program, part, sizeof part, &attempts) || !*part)
        return 0;
    int found = s_kill_leftovers (part);
    for (int waited = 0; found && waited < NODE_INSTALL_GONE_MS; waited += 50) {
        zclock_sleep (50);
        found = s_kill_leftovers (part);
    }
    if (found) {
        snprintf (err, errlen, "the install command of %s (push %s) from before the stop is still running "
                  "and cannot be killed", program, push);
        return -1;
    }
    zsys_warning ("node: the node stopped while the install command of %s ran (push %s, attempt %u); "
                  "it is not running now", program, push, attempts);
    return 0;
}
