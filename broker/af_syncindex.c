/*  =========================================================================
    af_syncindex - install lists in memory for sync diffs, and matcher answers

    See af_syncindex.h. An account's index is one array of entries (its
    installs, then its history), a hash from program to the list of its
    entries (installs first, then the history entry) and a hash from
    device to the set of its programs. A diff is two passes over the
    programs: the first counts, so the SYNC_DIFF is allocated once at its
    size, the second fills it.
    =========================================================================
*/
#include "af_syncindex.h"

//  One install, as the index holds it
typedef struct {
    char device_id [AF_ID_HEX + 1];     //  "" for history
    char program [AF_MAX_PROGRAM + 1];
    char version_name [AF_MAX_VERSION_NAME + 1];
    uint64_t version_code;
    uint64_t at;
} entry_t;

typedef struct {
    entry_t *entries;
    size_t count, alloc;
    size_t installs;                //  entries before this are installs, after: history
    zhashx_t *programs;             //  program -> zlistx of its entries
    zhashx_t *devices;              //  device ID -> zhashx set of its programs
} index_t;

typedef struct {
    af_sync_answer_t answer;
    int64_t expires;
} kept_t;

struct _af_syncindex_t {
    af_lists_t *lists;              //  not ours
    zhashx_t *indexes;              //  account -> index_t
    zhashx_t *answers;              //  "digest/program" -> kept_t
};

static void
s_index_free (void **item)
{
    index_t *index = (index_t *) *item;
    if (index) {
        zhashx_destroy (&index->programs);
        zhashx_destroy (&index->devices);
        free (index->entries);
        free (index);
        *item = NULL;
    }
}

static void
s_kept_free (void **item)
{
    free (*item);
    *item = NULL;
}

af_syncindex_t *
af_syncindex_new (af_lists_t *lists)
{
    assert (lists);
    af_syncindex_t *self = (af_syncindex_t *) zmalloc (sizeof (af_syncindex_t));
    assert (self);
    self->lists = lists;
    self->indexes = zhashx_new ();
    zhashx_set_destructor (self->indexes, s_index_free);
    self->answers = zhashx_new ();
    zhashx_set_destructor (self->answers, s_kept_free);
    assert (self->indexes && self->answers);
    return self;
}

void
af_syncindex_destroy (af_syncindex_t **self_p)
{
    assert (self_p);
    af_syncindex_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->indexes);
        zhashx_destroy (&self->answers);
        free (self);
        *self_p = NULL;
    }
}

void
af_syncindex_drop (af_syncindex_t *self, const char *account)
{
    assert (self);
    zhashx_delete (self->indexes, account);
}

static int
s_index_add (const char *device_id, const af_msg_t *app, void *arg)
{
    index_t *index = (index_t *) arg;
    if (index->count == index->alloc) {
        size_t alloc = index->alloc? 2 * index->alloc: 256;
        entry_t *entries = (entry_t *) realloc (index->entries, alloc * sizeof *entries);
        assert (entries);
        index->entries = entries;
        index->alloc = alloc;
    }
    entry_t *entry = &index->entries [index->count++];
    snprintf (entry->device_id, sizeof entry->device_id, "%s", device_id);
    snprintf (entry->program, sizeof entry->program, "%s", app->program);
    snprintf (entry->version_name, sizeof entry->version_name, "%s", app->version_name);
    entry->version_code = app->version_code;
    entry->at = app->at;
    return 0;
}

//  Index the entries once they are all read (the array no longer moves)
static void
s_index_build (index_t *index)
{
    index->programs = zhashx_new ();
    zhashx_set_destructor (index->programs, (zhashx_destructor_fn *) zlistx_destroy);
    index->devices = zhashx_new ();
    zhashx_set_destructor (index->devices, (zhashx_destructor_fn *) zhashx_destroy);
    for (size_t i = 0; i < index->count; i++) {
        entry_t *entry = &index->entries [i];
        zlistx_t *list = (zlistx_t *) zhashx_lookup (index->programs, entry->program);
        if (!list) {
            list = zlistx_new ();
            zhashx_insert (index->programs, entry->program, list);
        }
        zlistx_add_end (list, entry);
        if (i < index->installs) {
            zhashx_t *set = (zhashx_t *) zhashx_lookup (index->devices, entry->device_id);
            if (!set) {
                set = zhashx_new ();
                zhashx_insert (index->devices, entry->device_id, set);
            }
            zhashx_update (set, entry->program, (void *) 1);
        }
    }
}

//  The account's install lists and history, from memory or read once
static index_t *
s_index (af_syncindex_t *self, const char *account)
{
    index_t *index = (index_t *) zhashx_lookup (self->indexes, account);
    if (index)
        return index;
    index = (index_t *) zmalloc (sizeof (index_t));
    assert (index);
    int code = af_lists_each (self->lists, account, NULL, s_index_add, index);
    index->installs = index->count;
    if (code == AF_OK)
        code = af_lists_history (self->lists, account, s_index_add, index);
    if (code != AF_OK) {
        void *item = index;
        s_index_free (&item);
        return NULL;
    }
    s_index_build (index);
    if (zhashx_size (self->indexes) >= AF_INDEX_CACHE_MAX)
        zhashx_purge (self->indexes);
    zhashx_insert (self->indexes, account, index);
    return index;
}

//  One pass over the programs device lacks: counts entries and programs,
//  and with out->diff allocated, fills them in
static uint32_t
s_diff_pass (index_t *index, zhashx_t *mine, uint32_t cap, af_sync_diff_t *out)
{
    uint32_t n = 0;
    for (zlistx_t *list = (zlistx_t *) zhashx_first (index->programs); list && n < cap;
         list = (zlistx_t *) zhashx_next (index->programs)) {
        entry_t *entry = (entry_t *) zlistx_first (list);
        if (mine && zhashx_lookup (mine, entry->program))
            continue;
        //  Each device that has it; or, if none has it now, its history
        bool installed = entry < index->entries + index->installs;
        uint32_t slot = out->program_count;
        if (out->diff)
            memcpy (out->programs [slot], entry->program, AF_MAX_PROGRAM + 1);
        out->program_count++;
        for (; entry && n < cap; entry = (entry_t *) zlistx_next (list)) {
            bool history = entry >= index->entries + index->installs;
            if (history && installed)
                break;
            if (out->diff) {
                af_app_t *app = &out->diff->apps [n];
                memcpy (app->program, entry->program, sizeof app->program);
                memcpy (app->version_name, entry->version_name, sizeof app->version_name);
                app->version_code = entry->version_code;
                app->at = entry->at;
                memcpy (app->device_id, history? "": entry->device_id, history? 1: sizeof app->device_id);
                out->slot [n] = slot;
            }
            n++;
        }
    }
    return n;
}

int
af_syncindex_diff (af_syncindex_t *self, const char *account, const char *device_id, af_sync_diff_t *out)
{
    assert (self && out);
    memset (out, 0, sizeof *out);
    index_t *index = s_index (self, account);
    if (!index)
        return AF_E_INTERNAL;
    zhashx_t *mine = (zhashx_t *) zhashx_lookup (index->devices, device_id);
    //  Count first (one more than fits: is there more?), then fill
    uint32_t total = s_diff_pass (index, mine, AF_MAX_DIFF + 1, out);
    uint32_t count = total > AF_MAX_DIFF? AF_MAX_DIFF: total;
    out->diff = af_msg_new (AF_MSG_SYNC_DIFF);
    af_msg_set_app_count (out->diff, count);
    out->diff->truncated = total > AF_MAX_DIFF;
    out->programs = calloc (out->program_count? out->program_count: 1, AF_MAX_PROGRAM + 1);
    out->slot = (uint32_t *) calloc (count? count: 1, sizeof (uint32_t));
    assert (out->programs && out->slot);
    out->program_count = 0;
    s_diff_pass (index, mine, AF_MAX_DIFF, out);
    return AF_OK;
}

void
af_sync_diff_free (af_sync_diff_t *diff)
{
    assert (diff);
    af_msg_destroy (&diff->diff);
    free (diff->programs);
    free (diff->slot);
    memset (diff, 0, sizeof *diff);
}

bool
af_syncindex_recall (af_syncindex_t *self, const char *digest, const char *program, int64_t now,
                     af_sync_answer_t *answer)
{
    assert (self && answer);
    char key [AF_ID_HEX + AF_MAX_PROGRAM + 2];
    snprintf (key, sizeof key, "%s/%s", digest, program);
    kept_t *kept = (kept_t *) zhashx_lookup (self->answers, key);
    if (!kept || kept->expires <= now)
        return false;
    *answer = kept->answer;
    return true;
}

void
af_syncindex_remember (af_syncindex_t *self, const char *digest, const char *program,
                       const af_sync_answer_t *answer, int64_t now)
{
    assert (self && answer);
    if (zhashx_size (self->answers) >= AF_RESOLVE_CACHE_MAX)
        zhashx_purge (self->answers);
    kept_t *kept = (kept_t *) malloc (sizeof (kept_t));
    assert (kept);
    kept->answer = *answer;
    kept->expires = now + AF_RESOLVE_CACHE_MS;
    char key [AF_ID_HEX + AF_MAX_PROGRAM + 2];
    snprintf (key, sizeof key, "%s/%s", digest, program);
    zhashx_update (self->answers, key, kept);
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_report (af_lists_t *lists, const char *device, const char *op, const char *program,
               const char *version, uint64_t seq)
{
    af_msg_t *report = af_msg_new (AF_MSG_REPORT);
    snprintf (report->op, sizeof report->op, "%s", op);
    snprintf (report->program, sizeof report->program, "%s", program);
    snprintf (report->version_name, sizeof report->version_name, "%s", version);
    report->seq = seq;
    bool applied;
    assert (af_lists_report (lists, "ana", device, report, &applied) == AF_OK && applied);
    af_msg_destroy (&report);
}

//  The entry of the diff for program (and device, "" for history), or NULL
static af_app_t *
s_test_entry (af_sync_diff_t *diff, const char *program, const char *device)
{
    for (uint32_t i = 0; i < diff->diff->app_count; i++)
        if (streq (diff->diff->apps [i].program, program) && streq (diff->diff->apps [i].device_id, device))
            return &diff->diff->apps [i];
    return NULL;
}

void
af_syncindex_test (bool verbose)
{
    if (verbose)
        printf (" * af_syncindex: ");
    char dir [] = "/tmp/af_syncindex_test.XXXXXX";
    assert (mkdtemp (dir));
    af_store_t *store = af_store_new (dir, 0, 16, false);
    af_lists_t *lists = af_lists_new (store);
    af_syncindex_t *self = af_syncindex_new (lists);
    const char *phone = "00000000000000000000000000000001";
    const char *tv = "00000000000000000000000000000002";
    const char *pc = "00000000000000000000000000000003";
    s_test_report (lists, phone, "install", "weixin", "8.0", 1);
    s_test_report (lists, phone, "install", "chess", "2.1", 2);
    s_test_report (lists, tv, "install", "chess", "2.0", 1);
    s_test_report (lists, tv, "install", "maps", "1.0", 2);
    s_test_report (lists, tv, "uninstall", "maps", "", 3);       //  maps: history only now

    //  The pc lacks everything: one entry per (device, program), maps from history
    af_sync_diff_t diff;
    assert (af_syncindex_diff (self, "ana", pc, &diff) == AF_OK);
    assert (diff.diff->app_count == 4 && !diff.diff->truncated && diff.program_count == 3);
    af_app_t *app = s_test_entry (&diff, "chess", tv);
    assert (app && streq (app->version_name, "2.0"));
    assert (s_test_entry (&diff, "chess", phone) && s_test_entry (&diff, "weixin", phone));
    assert (s_test_entry (&diff, "maps", "") && !s_test_entry (&diff, "maps", tv));
    for (uint32_t i = 0; i < diff.diff->app_count; i++)
        assert (streq (diff.programs [diff.slot [i]], diff.diff->apps [i].program));
    af_sync_diff_free (&diff);

    //  The tv lacks weixin, and maps that no device has now
    assert (af_syncindex_diff (self, "ana", tv, &diff) == AF_OK && diff.diff->app_count == 2);
    assert (s_test_entry (&diff, "weixin", phone) && s_test_entry (&diff, "maps", ""));
    af_sync_diff_free (&diff);

    //  Kept in memory until dropped: a new report shows only after a drop
    s_test_report (lists, tv, "install", "weixin", "8.0", 4);
    assert (af_syncindex_diff (self, "ana", tv, &diff) == AF_OK && diff.diff->app_count == 2);
    af_sync_diff_free (&diff);
    af_syncindex_drop (self, "ana");
    assert (af_syncindex_diff (self, "ana", tv, &diff) == AF_OK && diff.diff->app_count == 1);
    assert (s_test_entry (&diff, "maps", ""));
    af_sync_diff_free (&diff);
    assert (af_syncindex_diff (self, "bob", tv, &diff) == AF_OK && diff.diff->app_count == 0);
    af_sync_diff_free (&diff);

    //  Answers are kept per description digest and program, for a while
    af_sync_answer_t answer = { .fit = AF_FIT_PACKAGE }, back;
    snprintf (answer.fit_version, sizeof answer.fit_version, "8.0");
    int64_t now = zclock_mono ();
    assert (!af_syncindex_recall (self, "d1", "weixin", now, &back));
    af_syncindex_remember (self, "d1", "weixin", &answer, now);
    assert (af_syncindex_recall (self, "d1", "weixin", now + 1, &back) && streq (back.fit_version, "8.0"));
    assert (!af_syncindex_recall (self, "d2", "weixin", now + 1, &back));
    assert (!af_syncindex_recall (self, "d1", "weixin", now + AF_RESOLVE_CACHE_MS, &back));

    af_syncindex_destroy (&self);
    af_lists_destroy (&lists);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
