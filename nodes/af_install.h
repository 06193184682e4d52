/*  =========================================================================
    af_install - the node's package installer and install records (S0.1)

    Built-in: a package is a tar archive, unpacked with libarchive under
    HOME/apps/PROGRAM/. Or an operator's command (e.g. one that hands the
    file to `adb install`) run with a time limit, whose exit status decides.

    Every header is checked before anything is written, against a model of
    the tree the archive makes (each name in canonical form: "./a//b/" is
    "a/b"): no absolute paths, no "..", no hard links or special files, no
    entry inside something the archive has as a file or a link, no name
    given twice as different kinds, no link given twice.

    A link must name a plain path below its own directory: relative, every
    component a name (no "", ".", ".."), and every component but the last
    that the archive has must be a directory. Why this rule and not a
    resolver that models where each link leads: the rule is easy to prove.
    Without ".." and a leading "/" a target only descends from the link's
    directory; a step through another such link descends from that link's
    directory, which is itself below, so by induction every link resolves
    to a descendant of its own directory, through any chain of links (a
    link to a link included), whatever the other entries are. The proof
    does not depend on where the tree's root is, so it holds as well for
    the defaults/ subtree, copied as the root of HOME/data/PROGRAM/.
    The no-link, no-file component rules are not needed for that proof;
    they keep the tree as simple as it reads (nothing is written through a
    link, no link hides behind another). The price: a package cannot have
    `bin/tool -> ../lib/tool`; it can have `tool -> lib/tool` at the top,
    or a real file. libarchive's SECURE_SYMLINKS stays on as a second line
    (it refuses writing through a link, not links that point out).

    Staging: the archive is unpacked into PARENT/.PROGRAM.new-TAG and
    swapped in by two renames (the old tree to .PROGRAM.old-TAG, then
    removed), so a refused or failed install leaves the installed version
    as it was. A built-in install writes its record aside first (synced
    PROGRAM.json.tmp), swaps the tree in and renames the record last; if
    that rename fails the swap is undone: a full disk at any step leaves
    the old tree with the old record, never a tree without a record. Trees
    are removed with fts(3), dot-files included, never following a link;
    what a kill half-way leaves (.P.new-*, .P.old-*, .P.gone, records'
    .tmp, settings' and entries' .X.tmp and .X.gone) goes with
    af_install_clean_stale at start. Staging names start
    with '.', program IDs never do (af_program_check), so they never meet.

    Settings and start-up entries (S0.1): a package may carry a top-level
    appferry.json, its manifest, { "settings": { KEY: STRING, ... },
    "startup": [ NAME, ... ] } (the rules and limits: protocol/af_record.h;
    one broken refuses the install, AF_E_MALFORMED). The built-in install
    writes the settings as HOME/settings/PROGRAM.json (a JSON object; the
    stand-in for the system's settings store) and each start-up entry as
    HOME/startup/PROGRAM@NAME (a file holding NAME and a newline; the
    stand-in for an autostart directory: '@' is in neither a program ID
    nor a NAME, so no two programs' entries share a file), and removes the
    program's settings file and entries that the package no longer
    declares. An install (or upgrade) sets the package's values; a value
    the user changed since is not carried over. Every new file is written
    aside and synced (.X.tmp), then all are renamed in place in one go,
    what they replace or remove kept aside (.X.gone) until the record is
    in place, so a failure undoes them all.

    Install record: HOME/installed/PROGRAM.json { program, versionName,
    versionCode, hash, pushId, installedAt, method, files, settings,
    startup [, appliedFrom] }: settings the object of values the install
    set (its keys: the settings the package declares), startup the entries
    it added (those it declares), appliedFrom { at, versionName,
    versionCode } once another device's record was applied. Records older
    than the manifest have neither: they read as {} and []. Written
    atomically (temp + fsync + rename), and last: the order of a built-in
    install is tree unpacked aside, record, settings and entries written
    aside; tree swapped in; settings and entries renamed in; record renamed
    in; what waits aside removed. A kill before the tree's swap leaves the
    old version whole (and temporaries); between the swap and the record's
    rename, the new tree, settings and entries (some of them, if it came
    mid-way) with the old record, which the next install of the package
    puts right (its hash is not the record's); after it, at most .gone
    files. af_install_clean_stale removes temporaries and .gone files.

    Every function that makes a path from a program ID refuses one that is
    not an ID (af_program_check): AF_E_MALFORMED, err "not a program ID:
    ...". Every function but af_install_cmd_start (a constructor: NULL on
    failure) returns AF_OK or an AF_E_* code, the same way:
    AF_E_MALFORMED when the input is refused (not an ID, an archive that is
    not one or breaks a rule above), AF_E_TOO_BIG when it is over a limit
    below, AF_E_INTERNAL when this side failed (a full disk, a rename, a
    command that failed), each with err saying what and where.
    =========================================================================
*/
#ifndef AF_INSTALL_H_INCLUDED
#define AF_INSTALL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "af_limits.h"
#include "af_record.h"             //  af_install_record_check

typedef struct {
    char program [AF_MAX_PROGRAM + 1];
    char version_name [AF_MAX_VERSION_NAME + 1];
    uint64_t version_code;
    char hash [AF_HASH_HEX + 1];            //  hex BLAKE2b-256 of the package file
    char push_id [AF_ID_HEX + 1];           //  the push that delivered it ("" if none)
    uint64_t installed_at;                  //  unix ms
    char method [16];                       //  "builtin" or "command"
} af_install_info_t;

//  Limits on an archive
#define AF_INSTALL_MAX_ENTRIES  100000
#define AF_INSTALL_MAX_NAME     1024    //  bytes in an entry's name or a link's target
#define AF_INSTALL_MAX_NODES    (2 * AF_INSTALL_MAX_ENTRIES)    //  files, directories
                                        //  and links, with the directories names imply
#define AF_INSTALL_MAX_SETTINGS (1024 * 1024)   //  a settings file read back (a
                                        //  user may have edited it)

//  Check and unpack the tar archive at package into HOME/apps/PROGRAM/,
//  write the settings and start-up entries its manifest declares, then the
//  install record. AF_OK, or with err saying what was refused or failed,
//  and nothing installed before changed: AF_E_MALFORMED (not a program ID;
//  not a valid archive, or one the rules above refuse, its manifest
//  included: err names the rule), AF_E_TOO_BIG (more than
//  AF_INSTALL_MAX_ENTRIES entries or AF_INSTALL_MAX_NODES nodes),
//  AF_E_INTERNAL (cannot write the tree, the settings, an entry or the
//  record: a full disk, ...).
int af_install_builtin (const char *home, const char *package, const af_install_info_t *info,
                        char *err, size_t errlen);

//  A package whose archive has a top-level defaults/ directory seeds
//  HOME/data/PROGRAM/ with it when that does not exist yet (the app's
//  default settings). User data sent with a push (S2.8) replaces
//  HOME/data/PROGRAM/ as a whole, with the same checks, the same codes and
//  the same staging: AF_OK, or with err and the data directory unchanged
//  AF_E_MALFORMED (also for a kind that is neither), AF_E_TOO_BIG or
//  AF_E_INTERNAL. kind is "data" (HOME/data/PROGRAM) or "config"
//  (HOME/config/PROGRAM, S1.7).
//  program is a program ID, or AF_INSTALL_SCRATCH and one: the scratch
//  copy `config show` opens, reads and removes (a hidden name, so never an
//  app's; af_install_clean_stale removes one a kill left).
#define AF_INSTALL_SCRATCH  ".show-"
int af_install_data (const char *home, const char *kind, const char *program, const char *archive,
                     char *err, size_t errlen);

//  Pack a directory's files and subdirectories (not links or special
//  files) into a tar archive, names relative to dir. AF_OK, or with err
//  (and no archive left): AF_E_MALFORMED (an empty directory: nothing to
//  send), AF_E_TOO_BIG (more than AF_INSTALL_MAX_ENTRIES entries),
//  AF_E_INTERNAL (cannot read the directory or write the archive).
int af_install_pack_dir (const char *dir, const char *archive, char *err, size_t errlen);

//  Remove what the built-in installer put under HOME/apps/PROGRAM/, the
//  program's settings (HOME/settings/PROGRAM.json) and its start-up
//  entries (every HOME/startup/PROGRAM@NAME), if any (AF_OK when there is
//  nothing). AF_OK, or with err AF_E_MALFORMED (not a program ID) or
//  AF_E_INTERNAL (cannot remove it; it stays installed, and a second call
//  finishes). The install record is the caller's.
int af_install_remove (const char *home, const char *program, char *err, size_t errlen);

//  The same, but the app's tree is only moved aside, in one rename, to
//  apps/.PROGRAM.old-TAG (a staging name: af_install_clean_stale removes
//  it at the next start if nothing does before), for the caller to remove
//  off its thread (af_install_reap_start): a large app's files take a
//  while. aside (AF_INSTALL_PATH bytes): that path, "" when the program
//  had no tree. The codes are af_install_remove's.
#define AF_INSTALL_PATH     1024
int af_install_remove_aside (const char *home, const char *program, char *aside, size_t asidelen,
                             char *err, size_t errlen);

//  Remove what installs, upgrades and removals stopped half-way left in
//  HOME/apps, HOME/data and HOME/config (.PROGRAM.new-TAG, .PROGRAM.old-TAG,
//  .PROGRAM.gone, .show-PROGRAM), HOME/installed (PROGRAM.json.tmp),
//  HOME/settings (.PROGRAM.json.tmp, .PROGRAM.json.gone) and HOME/startup
//  (.PROGRAM@NAME.tmp, .PROGRAM@NAME.gone); nothing else.
//  Call it at start, before any install runs. AF_OK with *removed the
//  number removed, or AF_E_INTERNAL with err naming the first that could
//  not be removed or read (the others are removed, and counted).
int af_install_clean_stale (const char *home, size_t *removed, char *err, size_t errlen);

typedef struct _af_install_cmd_t af_install_cmd_t;

//  Start the operator's command: /bin/sh -c 'COMMAND' with the package
//  path as "$1" and AF_PACKAGE, AF_PROGRAM, AF_VERSION, AF_HASH in its
//  environment, in its own process group, its output appended to
//  log_path. NULL with err on failure to start.
af_install_cmd_t *af_install_cmd_start (const char *command, const char *package,
                                        const af_install_info_t *info, int timeout_ms,
                                        const char *log_path, char *err, size_t errlen);

//  Without blocking: AF_OK with *running true while the command runs, AF_OK
//  with *running false once it succeeded (exit status 0), or AF_E_INTERNAL
//  when it failed (err: the exit status, the signal, or the time limit,
//  after which the whole process group is killed).
int af_install_cmd_poll (af_install_cmd_t *self, bool *running, char *err, size_t errlen);

//  Kill the command if it still runs, reap it, free. Sets *self_p to NULL.
void af_install_cmd_destroy (af_install_cmd_t **self_p);

//  The same installs on a thread of their own, so the caller's reactor
//  keeps serving while a large archive is checked and unpacked: the
//  thread runs af_install_builtin (package, info) or af_install_data
//  (kind, program, archive), with the same checks, staging, codes and
//  errors. NULL with err only when the thread cannot start (the caller
//  may then install on its own thread). The caller must not touch what
//  the install writes until it is over; one task per program at a time.
typedef struct _af_install_task_t af_install_task_t;
af_install_task_t *af_install_builtin_start (const char *home, const char *package,
                                             const af_install_info_t *info, char *err, size_t errlen);
af_install_task_t *af_install_data_start (const char *home, const char *kind, const char *program,
                                          const char *archive, char *err, size_t errlen);

//  Remove the tree at path (what af_install_remove_aside moved aside) on
//  a thread of its own, dot-files and all, never following a link; the
//  task's outcome is AF_OK, or AF_E_INTERNAL with err. A stop (destroy)
//  leaves the rest of it for af_install_clean_stale.
af_install_task_t *af_install_reap_start (const char *path, char *err, size_t errlen);

//  Without blocking: AF_OK with *running true while the install runs; else
//  its outcome (AF_OK, or its code with err). *entries (if not NULL): the
//  archive entries read so far, over both passes (the check, then the
//  unpack: about twice the archive's entries at the end).
int af_install_task_poll (af_install_task_t *self, bool *running, uint64_t *entries, char *err,
                          size_t errlen);

//  Stop the install if it still runs and wait for its thread; free. A
//  stop is honoured between two entries of the archive, before anything
//  is swapped in: what was installed stays as it was, the staging goes
//  (or at the next start, af_install_clean_stale). Sets *self_p to NULL.
void af_install_task_destroy (af_install_task_t **self_p);

//  Write the install record (files may be NULL: none listed), atomically.
//  AF_OK, or with err AF_E_MALFORMED (not a program ID) or AF_E_INTERNAL
//  (cannot write it; the old record stays).
int af_install_record_write (const char *home, const af_install_info_t *info, json_t *files,
                             char *err, size_t errlen);

//  Read a program's install record: AF_OK with *found true and info
//  filled, or *found false when the program is not installed (no record).
//  AF_E_MALFORMED (not a program ID, or a record that is not a JSON
//  object: logged) or AF_E_INTERNAL (cannot read it: logged), *found false.
int af_install_record_read (const char *home, const char *program, af_install_info_t *info,
                            bool *found);

//  Another device's install record, for S0.5: the source device exports
//  its record of a program, the broker relays it (bounded by
//  af_install_record_check, protocol/af_record.h), the requester applies
//  it to the same program once installed from the store.
//
//  Export what the device has NOW of what the install of program set:
//  AF_OK with *record a new object (the caller's) { "program",
//  "versionName", "versionCode", "settings": the values in
//  HOME/settings/PROGRAM.json now of the keys the install declared (a key
//  the user removed, or gave a value the rules refuse, is left out),
//  "startup": the declared entries whose files are there now }, which
//  af_install_record_check accepts. A settings file that is not a JSON
//  object reads as no settings (logged). Or with err and *record NULL:
//  AF_E_NOT_THERE (program not installed here: no record), AF_E_MALFORMED
//  (not a program ID, or a damaged record), AF_E_INTERNAL (cannot read).
int af_install_record_export (const char *home, const char *program, json_t **record,
                              char *err, size_t errlen);

//  Apply a record another device exported (hostile: it may only choose
//  among what the installed package declares) to program, installed here:
//  each setting the installed package declares takes the source's value
//  if it has one (else keeps the value here, or the install's if there is
//  none); keys it does not declare are ignored (settings here that it does
//  not declare go: the file holds the declared ones); each start-up entry
//  the package declares is there if the source has it and removed if not;
//  other names are ignored. No file but the program's settings file and
//  declared entries is ever written. The install record gains
//  "appliedFrom": { at (unix ms), versionName, versionCode (the
//  source's) }. All or nothing: AF_OK, or with err and nothing changed:
//  AF_E_MALFORMED (not a program ID; source refused by
//  af_install_record_check, or of another program; a damaged record here),
//  AF_E_NOT_THERE (program not installed here), AF_E_INTERNAL (cannot
//  write: a full disk, ...).
int af_install_record_apply (const char *home, const char *program, const json_t *source,
                             char *err, size_t errlen);

//  Self test
void af_install_test (bool verbose);

#endif
