/*  =========================================================================
    af_reports - the node's queue of install reports
    =========================================================================
*/
#include "af_reports.h"

#include <czmq.h>
#include <ftw.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>

struct _af_reports_t {
    char dir [512];
    uint64_t *seqs;                 //  queued seqs, ascending
    size_t count;
    size_t room;
    size_t skipped;                 //  unreadable entries set aside
};

static void
s_path (af_reports_t *self, uint64_t seq, char *path, size_t size)
{
    snprintf (path, size, "%s/%020llu.json", self->dir, (unsigned long long) seq);
}

static int
s_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

static void
s_index_add (af_reports_t *self, uint64_t seq)
{
    if (self->count == self->room) {
        self->room = self->room? 2 * self->room: 64;
        self->seqs = (uint64_t *) realloc (self->seqs, self->room * sizeof (uint64_t));
        assert (self->seqs);
    }
    self->seqs [self->count++] = seq;
}

af_reports_t *
af_reports_new (const char *dir)
{
    if (zsys_dir_create ("%s", dir)) {
        zsys_error ("reports: cannot create %s: %s", dir, strerror (errno));
        return NULL;
    }
    DIR *handle = opendir (dir);
    if (!handle) {
        zsys_error ("reports: cannot read %s: %s", dir, strerror (errno));
        return NULL;
    }
    af_reports_t *self = (af_reports_t *) zmalloc (sizeof (af_reports_t));
    assert (self);
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        //  SEQ.json: digits, then the suffix and nothing else
        const char *name = entry->d_name;
        size_t length = strlen (name);
        if (*name == '.' && length > 4 && streq (name + length - 4, ".tmp")) {
            //  A report that was being written when the node stopped
            char path [600];
            snprintf (path, sizeof path, "%s/%s", dir, name);
            unlink (path);
            continue;
        }
        size_t digits = strspn (name, "0123456789");
        if (digits == 0 || digits > 20 || !streq (name + digits, ".json"))
            continue;
        uint64_t seq = strtoull (name, NULL, 10);
        if (seq)
            s_index_add (self, seq);
    }
    closedir (handle);
    if (self->count)
        qsort (self->seqs, self->count, sizeof (uint64_t), s_compare);
    return self;
}

void
af_reports_destroy (af_reports_t **self_p)
{
    assert (self_p);
    af_reports_t *self = *self_p;
    if (self) {
        free (self->seqs);
        free (self);
        *self_p = NULL;
    }
}

//  fsync a directory, so a rename in it survives a crash. 0 or -1.
static int
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0? fsync (fd): -1;
    if (fd >= 0)
        close (fd);
    return rc;
}

//  The directory part of a path, into dir
static void
s_dirname (const char *path, char *dir, size_t size)
{
    snprintf (dir, size, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir)
        *slash = 0;
    else
        snprintf (dir, size, "%s", slash? "/": ".");
}

int
af_reports_add (af_reports_t *self, const af_report_t *report)
{
    assert (self);
    assert (report->seq > 0);
    if (self->count && report->seq <= self->seqs [self->count - 1]) {
        zsys_error ("reports: seq %llu is not above the last queued", (unsigned long long) report->seq);
        return AF_E_INTERNAL;
    }
    char path [600], tmp [620];
    s_path (self, report->seq, path, sizeof path);
    snprintf (tmp, sizeof tmp, "%s/.%020llu.json.tmp", self->dir, (unsigned long long) report->seq);
    json_t *doc = json_pack ("{s:I, s:s, s:s, s:s, s:I, s:s, s:I}", "seq", (json_int_t) report->seq,
                             "op", report->op, "program", report->program,
                             "versionName", report->version_name,
                             "versionCode", (json_int_t) report->version_code, "hash", report->hash,
                             "at", (json_int_t) report->at);
    char *text = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    //  Whole or not at all: temp file, fsync, rename, fsync of the directory
    int fd = text? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600): -1;
    size_t size = text? strlen (text): 0;
    bool ok = fd >= 0 && write (fd, text, size) == (ssize_t) size && fsync (fd) == 0;
    if (fd >= 0)
        ok = close (fd) == 0 && ok;
    ok = ok && rename (tmp, path) == 0 && s_sync_dir (self->dir) == 0;
    free (text);
    if (!ok) {
        zsys_error ("reports: cannot queue a report in %s: %s", path, strerror (errno));
        unlink (tmp);
        return AF_E_INTERNAL;
    }
    s_index_add (self, report->seq);
    return AF_OK;
}

int
af_reports_adopt (af_reports_t *self, uint64_t seq, const char *path)
{
    assert (self);
    assert (seq > 0);
    if (self->count && seq <= self->seqs [self->count - 1]) {
        zsys_error ("reports: seq %llu is not above the last queued", (unsigned long long) seq);
        return AF_E_INTERNAL;
    }
    char queued [600], from [600];
    s_path (self, seq, queued, sizeof queued);
    s_dirname (path, from, sizeof from);
    if (rename (path, queued) || s_sync_dir (self->dir) || s_sync_dir (from)) {
        zsys_error ("reports: cannot queue %s as %s: %s", path, queued, strerror (errno));
        return AF_E_INTERNAL;
    }
    s_index_add (self, seq);
    return AF_OK;
}

//  Copy a string field if it is there and fits; false if it does not fit
static bool
s_get (json_t *doc, const char *key, char *field, size_t size, bool required)
{
    const char *text = json_string_value (json_object_get (doc, key));
    if (!text)
        text = "";
    if (strlen (text) >= size || (required && !*text))
        return false;
    strcpy (field, text);
    return true;
}

//  Read one queued report: true, or false with why if it is unreadable
static bool
s_read (af_reports_t *self, uint64_t seq, af_report_t *report, char *why, size_t whylen)
{
    char path [600];
    s_path (self, seq, path, sizeof path);
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    memset (report, 0, sizeof *report);
    if (!json_is_object (doc)) {
        snprintf (why, whylen, "%s", doc? "not a JSON object": jerr.text);
        json_decref (doc);
        return false;
    }
    report->seq = (uint64_t) json_integer_value (json_object_get (doc, "seq"));
    report->version_code = (uint64_t) json_integer_value (json_object_get (doc, "versionCode"));
    report->at = (uint64_t) json_integer_value (json_object_get (doc, "at"));
    bool ok = report->seq == seq
           && s_get (doc, "op", report->op, sizeof report->op, true)
           && (streq (report->op, "install") || streq (report->op, "uninstall"))
           && s_get (doc, "program", report->program, sizeof report->program, true)
           && s_get (doc, "versionName", report->version_name, sizeof report->version_name, false)
           && s_get (doc, "hash", report->hash, sizeof report->hash, false);
    json_decref (doc);
    if (!ok)
        snprintf (why, whylen, "not a report of seq %llu (seq, op, program, versionName, hash)",
                  (unsigned long long) seq);
    return ok;
}

//  Set an unreadable entry aside as SEQ.json.bad, out of the queue
static void
s_skip (af_reports_t *self, size_t index, const char *why)
{
    char path [600], bad [620];
    s_path (self, self->seqs [index], path, sizeof path);
    snprintf (bad, sizeof bad, "%s.bad", path);
    if (rename (path, bad) && unlink (path) && errno != ENOENT)
        zsys_error ("reports: cannot set %s aside: %s", path, strerror (errno));
    zsys_warning ("reports: skipped the unreadable report %s (%s); kept as %s", path, why, bad);
    memmove (self->seqs + index, self->seqs + index + 1, (self->count - index - 1) * sizeof (uint64_t));
    self->count--;
    self->skipped++;
}

bool
af_reports_next (af_reports_t *self, uint64_t after, af_report_t *report)
{
    assert (self);
    size_t i = 0;
    while (i < self->count && self->seqs [i] <= after)
        i++;
    char why [300];
    while (i < self->count) {
        if (s_read (self, self->seqs [i], report, why, sizeof why))
            return true;
        s_skip (self, i, why);          //  the next one moves to i
    }
    return false;
}

int
af_reports_drop (af_reports_t *self, uint64_t upto)
{
    assert (self);
    size_t dropped = 0;
    int rc = AF_OK;
    while (dropped < self->count && self->seqs [dropped] <= upto) {
        char path [600];
        s_path (self, self->seqs [dropped], path, sizeof path);
        if (unlink (path) && errno != ENOENT) {
            zsys_error ("reports: cannot remove %s: %s", path, strerror (errno));
            rc = AF_E_INTERNAL;
            break;
        }
        dropped++;
    }
    if (dropped) {
        memmove (self->seqs, self->seqs + dropped, (self->count - dropped) * sizeof (uint64_t));
        self->count -= dropped;
    }
    return rc;
}

size_t
af_reports_size (af_reports_t *self)
{
    assert (self);
    return self->count;
}

size_t
af_reports_skipped (af_reports_t *self)
{
    assert (self);
    return self->skipped;
}

//  --------------------------------------------------------------------------
//  Self test

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

void
af_reports_test (bool verbose)
{
    printf (" * af_reports: ");
    if (verbose)
        printf ("\n");
    char dir [] = "/tmp/af_reports_test.XXXXXX";
    assert (mkdtemp (dir));
    char queue [600];
    snprintf (queue, sizeof queue, "%s/reports", dir);

    af_reports_t *reports = af_reports_new (queue);
    assert (reports);
    assert (af_reports_size (reports) == 0);
    af_report_t report, got;
    assert (!af_reports_next (reports, 0, &got));
    for (uint64_t seq = 1; seq <= 3; seq++) {
        memset (&report, 0, sizeof report);
        report.seq = seq;
        strcpy (report.op, seq == 2? "uninstall": "install");
        snprintf (report.program, sizeof report.program, "app%llu", (unsigned long long) seq);
        strcpy (report.version_name, "1.0");
        report.version_code = 10 + seq;
        memset (report.hash, 'a', AF_HASH_HEX);
        report.at = 1700000000000ULL + seq;
        assert (af_reports_add (reports, &report) == AF_OK);
    }
    //  A seq must rise
    report.seq = 3;
    assert (af_reports_add (reports, &report) == AF_E_INTERNAL);
    assert (af_reports_size (reports) == 3);

    //  In seq order, each as written
    assert (af_reports_next (reports, 0, &got));
    assert (got.seq == 1 && streq (got.program, "app1") && streq (got.op, "install"));
    assert (got.version_code == 11 && got.at == 1700000000001ULL && strlen (got.hash) == AF_HASH_HEX);
    assert (af_reports_next (reports, 1, &got) && got.seq == 2 && streq (got.op, "uninstall"));
    assert (af_reports_next (reports, 2, &got) && got.seq == 3);
    assert (!af_reports_next (reports, 3, &got));

    //  The queue is the directory: a new object finds what is queued
    af_reports_destroy (&reports);
    assert (reports == NULL);
    reports = af_reports_new (queue);
    assert (reports && af_reports_size (reports) == 3);
    assert (af_reports_next (reports, 0, &got) && got.seq == 1);

    //  Confirmed reports leave the queue and the directory
    assert (af_reports_drop (reports, 2) == AF_OK);
    assert (af_reports_size (reports) == 1);
    assert (af_reports_next (reports, 0, &got) && got.seq == 3);
    char path [700];
    snprintf (path, sizeof path, "%s/%020d.json", queue, 1);
    assert (!zsys_file_exists (path));
    assert (af_reports_drop (reports, UINT64_MAX) == AF_OK);
    assert (af_reports_size (reports) == 0);
    af_reports_destroy (&reports);

    //  A report is written whole: no temp file is left, and one left by a
    //  crash is removed at the next start
    snprintf (path, sizeof path, "%s/.%020d.json.tmp", queue, 9);
    FILE *file = fopen (path, "w");
    assert (file);
    fclose (file);
    reports = af_reports_new (queue);
    assert (reports && af_reports_size (reports) == 0 && !zsys_file_exists (path));

    //  An unreadable entry (left empty by a full disk, or damaged) is set
    //  aside and counted; the reports after it still go
    for (uint64_t seq = 10; seq <= 13; seq++) {
        report.seq = seq;
        assert (af_reports_add (reports, &report) == AF_OK);
    }
    af_reports_destroy (&reports);
    snprintf (path, sizeof path, "%s/%020d.json", queue, 10);
    file = fopen (path, "w");               //  empty
    assert (file);
    fclose (file);
    snprintf (path, sizeof path, "%s/%020d.json", queue, 12);
    file = fopen (path, "w");               //  a report, but of another seq
    assert (file);
    fprintf (file, "{\"seq\":7,\"op\":\"install\",\"program\":\"x\"}");
    fclose (file);
    reports = af_reports_new (queue);
    assert (reports && af_reports_size (reports) == 4);
    assert (af_reports_next (reports, 0, &got) && got.seq == 11);
    assert (af_reports_skipped (reports) == 1);
    assert (af_reports_next (reports, 11, &got) && got.seq == 13);
    assert (af_reports_skipped (reports) == 2 && af_reports_size (reports) == 2);
    snprintf (path, sizeof path, "%s/%020d.json.bad", queue, 10);
    assert (zsys_file_exists (path));
    af_reports_destroy (&reports);
    reports = af_reports_new (queue);       //  set aside for good
    assert (reports && af_reports_size (reports) == 2);

    //  A file that holds a report joins the queue in one rename
    char record [700];
    snprintf (record, sizeof record, "%s/record.json", dir);
    file = fopen (record, "w");
    assert (file);
    fprintf (file, "{\"seq\":20,\"op\":\"uninstall\",\"program\":\"app9\",\"files\":[]}");
    fclose (file);
    assert (af_reports_adopt (reports, 13, record) == AF_E_INTERNAL);  //  seq not above
    assert (af_reports_adopt (reports, 20, record) == AF_OK);
    assert (!zsys_file_exists (record));
    assert (af_reports_next (reports, 13, &got) && got.seq == 20 && streq (got.op, "uninstall"));
    assert (af_reports_adopt (reports, 21, record) == AF_E_INTERNAL);  //  gone
    assert (af_reports_drop (reports, UINT64_MAX) == AF_OK);
    af_reports_destroy (&reports);

    assert (nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
    printf ("OK\n");
}
