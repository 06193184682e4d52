/*  =========================================================================
    af_reports - the node's queue of install reports (S0.2, S1.5, S1.8)

    Every install and uninstall on a device becomes a report with the
    device's own rising seq, queued in HOME/reports/ as SEQ.json (twenty
    digits, so names sort as numbers) until the broker confirms it. The
    node sends them in seq order, one at a time, first after every login;
    the broker applies a seq once, so a report sent twice changes nothing.

    The queue is the directory: a report is queued when its file is there
    and confirmed when it is removed. A report is written whole or not at
    all (a temp file, fsync, rename, fsync of the directory), so a full
    disk or a crash never leaves half a report under a queued name. A file
    that is unreadable anyway (written by an older node in place, damaged)
    is skipped, logged, and kept aside as SEQ.json.bad: one bad entry does
    not stop the reports after it. The class counts what it skipped, so
    the node can send its whole install list to mend what was lost.

    The class keeps an index of the seqs in memory (read once from the
    directory), so finding the next report costs nothing however long the
    queue is; the reports themselves are read when they are sent.
    =========================================================================
*/
#ifndef AF_REPORTS_H_INCLUDED
#define AF_REPORTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

//  One report: an install or an uninstall of a program on this device
typedef struct {
    uint64_t seq;
    char op [AF_MAX_OP + 1];                //  "install" or "uninstall"
    char program [AF_MAX_PROGRAM + 1];
    char version_name [AF_MAX_VERSION_NAME + 1];
    uint64_t version_code;
    char hash [AF_HASH_HEX + 1];            //  the package file's hash
    uint64_t at;                            //  when, ms since the epoch
} af_report_t;

typedef struct _af_reports_t af_reports_t;

//  Open the queue in dir (created if missing). NULL if the directory
//  cannot be created or read (logged).
af_reports_t *af_reports_new (const char *dir);

//  Destroy the object (the queue stays on disk). Sets *self_p to NULL.
void af_reports_destroy (af_reports_t **self_p);

//  Queue a report under report->seq, which must be above every seq
//  queued. AF_OK, or AF_E_INTERNAL (logged) and nothing queued.
int af_reports_add (af_reports_t *self, const af_report_t *report);

//  Queue a file that already holds a report (a JSON object with the keys
//  af_reports_add writes) under seq, moving it in one rename: it leaves
//  where it was exactly when it enters the queue. The file must be on the
//  queue's filesystem and already written durably. AF_OK, or
//  AF_E_INTERNAL (logged) and the file where it was.
int af_reports_adopt (af_reports_t *self, uint64_t seq, const char *path);

//  The queued report with the lowest seq above after: true with *report
//  filled, or false if there is none. Unreadable entries on the way are
//  skipped (see above).
bool af_reports_next (af_reports_t *self, uint64_t after, af_report_t *report);

//  Remove the queued reports with seq <= upto (the broker has them).
//  AF_OK, or AF_E_INTERNAL if a file could not be removed (logged; the
//  queue keeps it and the ones after it).
int af_reports_drop (af_reports_t *self, uint64_t upto);

//  Number of reports queued
size_t af_reports_size (af_reports_t *self);

//  Number of unreadable entries skipped since the queue was opened
size_t af_reports_skipped (af_reports_t *self);

//  Self test
void af_reports_test (bool verbose);

#endif
