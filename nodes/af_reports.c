/*  =========================================================================
    af_reports - the node's queue of install reports
    =========================================================================
*/
#include "af_reports.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>

struct _af_reports_t {
    char dir [512];
    uint64_t *seqs;                 //  queued seqs, ascending
    size_t count;
    size_t room;
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

int
af_reports_add (af_reports_t *self, const af_report_t *report)
{
    assert (self);
    assert (report->seq > 0);
    if (self->count && report->seq <= self->seqs [self->count - 1]) {
        zsys_error ("reports: seq %llu is not above the last queued", (unsigned long long) report->seq);
        return AF_E_INTERNAL;
    }
    char path [600];
    s_path (self, report->seq, path, sizeof path);
    json_t *doc = json_pack ("{s:I, s:s, s:s, s:s, s:I, s:s, s:I}", "seq", (json_int_t) report->seq,
                             "op", report->op, "program", report->program,
                             "versionName", report->version_name,
                             "versionCode", (json_int_t) report->version_code, "hash", report->hash,
                             "at", (json_int_t) report->at);
    int rc = doc? json_dump_file (doc, path, JSON_COMPACT): -1;
    json_decref (doc);
    if (rc) {
        zsys_error ("reports: cannot queue a report in %s: %s", path, strerror (errno));
        return AF_E_INTERNAL;
    }
    s_index_add (self, report->seq);
    return AF_OK;
}

//  Read one queued report: true, or false if its file is unreadable
static bool
s_read (af_reports_t *self, uint64_t seq, af_report_t *report)
{
    char path [600];
    s_path (self, seq, path, sizeof path);
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    if (!json_is_object (doc)) {
        json_decref (doc);
        return false;
    }
    memset (report, 0, sizeof *report);
    report->seq = (uint64_t) json_integer_value (json_object_get (doc, "seq"));
    const char *text;
    #define GET(key, field) \
        text = json_string_value (json_object_get (doc, key)); \
        snprintf (report->field, sizeof report->field, "%s", text? text: "");
    GET ("op", op);
    GET ("program", program);
    GET ("versionName", version_name);
    GET ("hash", hash);
    #undef GET
    report->version_code = (uint64_t) json_integer_value (json_object_get (doc, "versionCode"));
    report->at = (uint64_t) json_integer_value (json_object_get (doc, "at"));
    json_decref (doc);
    return true;
}

bool
af_reports_next (af_reports_t *self, uint64_t after, af_report_t *report)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++)
        if (self->seqs [i] > after)
            //  An unreadable report stops the queue
            return s_read (self, self->seqs [i], report);
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

//  --------------------------------------------------------------------------
//  Self test

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

    zdir_t *tree = zdir_new (dir, NULL);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    printf ("OK\n");
}
