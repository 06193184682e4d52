/*  =========================================================================
    af_syncindex - install lists in memory for sync diffs, and matcher answers

    See af_syncindex.h. An account's index is one array of 32-byte entries
    (its installs, device by device, then its history), its programs in
    the order first seen, each with the chain of its entries (installs
    first, then the history entry), and one pool for the names, so a
    device's list of 300 apps costs about 11 KiB in memory. A diff marks
    the asker's programs from its own entries, then makes two passes over
    the programs: the first counts, so the SYNC_DIFF is allocated once at
    its size, the second fills it.
    =========================================================================
*/
#include "af_syncindex.h"

#include <sodium.h>

//  One install (or the history entry of a program), as the index holds
//  it: 32 bytes, its strings in the index's pool. A program's entries are
//  chained: its installs in device order, then its history entry.
#define NONE    UINT32_MAX

typedef struct {
    uint32_t program;               //  in index->programs
    uint32_t device;                //  its number in the device table; NONE for history
    uint32_t version;               //  offset of the version name in the pool
    uint32_t next;                  //  the program's next entry, or NONE
    uint64_t version_code;
    uint64_t at;
} entry_t;

typedef struct {
    uint32_t name;                  //  offset in the pool
    uint32_t first, last;           //  its chain of entries
    uint32_t count;                 //  entries in it
} program_t;

//  A device's installs are contiguous (lists come in key order): entries
//  first .. end - 1
typedef struct {
    char id [AF_ID_HEX + 1];
    uint32_t first, end;
} device_t;

typedef struct {
    entry_t *entries;
    uint32_t count, alloc;
    uint32_t installs;              //  entries before this are installs, after: history
    program_t *programs;            //  in the order first seen
    uint32_t program_count, program_alloc;
    zhashx_t *by_name;              //  program name -> its number + 1
    char *pool;                     //  program and version names, NUL-terminated
    size_t pool_used, pool_alloc;
    device_t *devices;
    uint32_t device_count, device_alloc;
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
        zhashx_destroy (&index->by_name);
        free (index->entries);
        free (index->programs);
        free (index->pool);
        free (index->devices);
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
af_syncindex_purge (af_syncindex_t *self)
{
    assert (self);
    zhashx_purge (self->indexes);
}

void
af_syncindex_drop (af_syncindex_t *self, const char *account)
{
    assert (self);
    zhashx_delete (self->indexes, account);
}

//  Grow an array of count elements of size bytes to hold one more
static void *
s_grow (void *array, uint32_t count, uint32_t *alloc, size_t size)
{
    if (count < *alloc)
        return array;
    *alloc = *alloc? 2 * *alloc: 64;
    array = realloc (array, (size_t) *alloc * size);
    assert (array);
    return array;
}

//  A string into the pool: its offset
static uint32_t
s_pool_add (index_t *index, const char *text)
{
    size_t len = strlen (text) + 1;
    if (index->pool_used + len > index->pool_alloc) {
        index->pool_alloc = (index->pool_alloc + len) * 2;
        index->pool = (char *) realloc (index->pool, index->pool_alloc);
        assert (index->pool);
    }
    assert (index->pool_used + len < UINT32_MAX);
    memcpy (index->pool + index->pool_used, text, len);
    index->pool_used += len;
    return (uint32_t) (index->pool_used - len);
}

static int
s_index_add (const char *device_id, const af_msg_t *app, void *arg)
{
    index_t *index = (index_t *) arg;
    bool history = !*device_id;
    uint32_t at = index->count;
    if (!history && (index->device_count == 0
                 ||  !streq (index->devices [index->device_count - 1].id, device_id))) {
        index->devices = (device_t *) s_grow (index->devices, index->device_count, &index->device_alloc,
                                              sizeof (device_t));
        device_t *device = &index->devices [index->device_count++];
        snprintf (device->id, sizeof device->id, "%s", device_id);
        device->first = device->end = at;
    }
    uintptr_t known = (uintptr_t) zhashx_lookup (index->by_name, app->program);
    uint32_t number = (uint32_t) known - 1;
    if (!known) {
        index->programs = (program_t *) s_grow (index->programs, index->program_count, &index->program_alloc,
                                                sizeof (program_t));
        number = index->program_count++;
        program_t *program = &index->programs [number];
        program->name = s_pool_add (index, app->program);
        program->first = program->last = NONE;
        program->count = 0;
        zhashx_insert (index->by_name, app->program, (void *) (uintptr_t) (number + 1));
    }
    index->entries = (entry_t *) s_grow (index->entries, index->count, &index->alloc, sizeof (entry_t));
    entry_t *entry = &index->entries [index->count++];
    entry->program = number;
    entry->device = history? NONE: index->device_count - 1;
    entry->version = s_pool_add (index, app->version_name);
    entry->next = NONE;
    entry->version_code = app->version_code;
    entry->at = app->at;
    program_t *program = &index->programs [number];
    if (program->last == NONE)
        program->first = at;
    else
        index->entries [program->last].next = at;
    program->last = at;
    program->count++;
    if (!history)
        index->devices [index->device_count - 1].end = index->count;
    return 0;
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
    index->by_name = zhashx_new ();
    assert (index->by_name);
    int code = af_lists_each (self->lists, account, NULL, s_index_add, index);
    index->installs = index->count;
    if (code == AF_OK)
        code = af_lists_history (self->lists, account, s_index_add, index);
    if (code != AF_OK) {
        void *item = index;
        s_index_free (&item);
        return NULL;
    }
    if (zhashx_size (self->indexes) >= AF_INDEX_CACHE_MAX)
        zhashx_purge (self->indexes);
    zhashx_insert (self->indexes, account, index);
    return index;
}

//  One pass over the programs the device lacks (mine: per program, true
//  if it has it): counts entries (or, grouped, holders) and programs;
//  with out->diff allocated, fills them in
static uint32_t
s_diff_pass (index_t *index, const bool *mine, uint32_t cap, bool grouped, af_sync_diff_t *out)
{
    uint32_t n = 0;
    af_msg_t *diff = out->diff;
    for (uint32_t number = 0; number < index->program_count && n < cap; number++) {
        if (mine && mine [number])
            continue;
        program_t *program = &index->programs [number];
        const char *name = index->pool + program->name;
        if (grouped && out->program_count == AF_MAX_DIFF) {
            if (diff)
                diff->truncated = true;
            break;
        }
        //  Each device that has it; or, if none has it now, its history
        entry_t *entry = &index->entries [program->first];
        bool installed = entry->device != NONE;
        uint32_t slot = out->program_count++;
        af_prog_t *prog = grouped && diff? &diff->progs [slot]: NULL;
        if (diff)
            af_strcopy (out->programs [slot], AF_MAX_PROGRAM + 1, name);
        if (prog)
            af_strcopy (prog->program, sizeof prog->program, name);
        for (; entry && n < cap; entry = entry->next == NONE? NULL: &index->entries [entry->next]) {
            bool history = entry->device == NONE;
            if (history && installed)
                break;
            const char *version = index->pool + entry->version;
            if (prog && history)
                af_strcopy (prog->had, sizeof prog->had, version);
            else
            if (prog) {
                if (!prog->holders) {           //  room for every device that may have it
                    af_prog_set_holder_count (prog, program->count);
                    prog->holder_count = 0;
                }
                af_holder_t *holder = &prog->holders [prog->holder_count++];
                holder->device = entry->device;
                af_strcopy (holder->version_name, sizeof holder->version_name, version);
            }
            else
            if (diff) {
                af_app_t *app = &diff->apps [n];
                af_strcopy (app->program, sizeof app->program, name);
                af_strcopy (app->version_name, sizeof app->version_name, version);
                app->version_code = entry->version_code;
                app->at = entry->at;
                af_strcopy (app->device_id, sizeof app->device_id,
                            history? "": index->devices [entry->device].id);
                out->slot [n] = slot;
            }
            n += !(grouped && history);
        }
    }
    return n;
}

int
af_syncindex_diff (af_syncindex_t *self, const char *account, const char *device_id, bool grouped,
                   af_sync_diff_t *out)
{
    assert (self && out);
    memset (out, 0, sizeof *out);
    index_t *index = s_index (self, account);
    if (!index)
        return AF_E_INTERNAL;
    //  What the asker has: a mark per program, from its own entries
    bool *mine = (bool *) calloc (index->program_count + 1, sizeof (bool));
    assert (mine);
    for (uint32_t d = 0; d < index->device_count; d++)
        if (streq (index->devices [d].id, device_id))
            for (uint32_t i = index->devices [d].first; i < index->devices [d].end; i++)
                mine [index->entries [i].program] = true;
    //  Count first (one more than fits: is there more?), then fill
    uint32_t cap = grouped? AF_MAX_HOLDERS: AF_MAX_DIFF;
    uint32_t total = s_diff_pass (index, mine, cap + 1, grouped, out);
    uint32_t count = total > cap? cap: total;
    uint32_t programs = out->program_count;
    out->diff = af_msg_new (AF_MSG_SYNC_DIFF);
    out->diff->truncated = total > cap;
    out->programs = calloc (programs? programs: 1, AF_MAX_PROGRAM + 1);
    assert (out->programs);
    if (grouped) {
        af_msg_set_prog_count (out->diff, programs);
        af_msg_set_device_count (out->diff, index->device_count);
        for (uint32_t i = 0; i < index->device_count; i++)
            memcpy (out->diff->devices [i].id, index->devices [i].id, AF_ID_HEX + 1);
    }
    else {
        af_msg_set_app_count (out->diff, count);
        out->slot = (uint32_t *) calloc (count? count: 1, sizeof (uint32_t));
        assert (out->slot);
    }
    out->program_count = 0;
    s_diff_pass (index, mine, cap, grouped, out);
    free (mine);
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

//  One field into the key: its length, then its bytes, so that no two
//  lists of fields hash the same bytes
static void
s_key_put (crypto_generichash_state *state, const void *data, size_t size)
{
    uint32_t length = (uint32_t) size;
    crypto_generichash_update (state, (const unsigned char *) &length, sizeof length);
    crypto_generichash_update (state, (const unsigned char *) data, size);
}

static void
s_key_string (crypto_generichash_state *state, const char *text, size_t size)
{
    s_key_put (state, text, strnlen (text, size));
}

static void
s_key_uint (crypto_generichash_state *state, uint32_t value)
{
    s_key_put (state, &value, sizeof value);
}

void
af_syncindex_fit_key (const af_device_t *device, char key [AF_ID_HEX + 1])
{
    assert (device && key);
    //  The fields of af_catalog_resolve, in its order: s_platform, s_form,
    //  s_device_os (the API level on Android, the parsed OS version
    //  elsewhere: both go in), the ABIs (order is preference), the screen
    //  (s_check and s_reason) and the density
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, AF_ID_SIZE);
    s_key_string (&state, device->platform, sizeof device->platform);
    s_key_string (&state, device->form_factor, sizeof device->form_factor);
    s_key_uint (&state, device->sdk);
    s_key_string (&state, device->os_version, sizeof device->os_version);
    uint32_t abis = device->abi_count < AF_MAX_ABIS? device->abi_count: AF_MAX_ABIS;
    s_key_uint (&state, abis);
    for (uint32_t i = 0; i < abis; i++)
        s_key_string (&state, device->abis [i], sizeof device->abis [i]);
    s_key_uint (&state, device->screen_w);
    s_key_uint (&state, device->screen_h);
    s_key_uint (&state, device->density);
    uint8_t digest [AF_ID_SIZE];
    crypto_generichash_final (&state, digest, sizeof digest);
    sodium_bin2hex (key, AF_ID_HEX + 1, digest, sizeof digest);
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

//  Answers are shared by devices the matcher cannot tell apart, and only
//  by those
static void
s_test_fit_key (af_syncindex_t *self, const char *phone, const char *tv, const af_sync_answer_t *answer,
                int64_t now)
{
    af_sync_answer_t back;
    //  Answers are shared by devices the matcher cannot tell apart: two
    //  phones that differ only in what the resolver never reads
    af_device_t one = { .sdk = 33, .screen_w = 1080, .screen_h = 2400, .density = 420, .abi_count = 2,
                        .locale_count = 1 };
    snprintf (one.platform, sizeof one.platform, "android");
    snprintf (one.os_version, sizeof one.os_version, "13");
    snprintf (one.form_factor, sizeof one.form_factor, "phone");
    snprintf (one.abis [0], sizeof one.abis [0], "arm64-v8a");
    snprintf (one.abis [1], sizeof one.abis [1], "armeabi-v7a");
    snprintf (one.name, sizeof one.name, "Ana's phone");
    snprintf (one.model, sizeof one.model, "Pixel 7");
    snprintf (one.manufacturer, sizeof one.manufacturer, "Google");
    snprintf (one.locales [0], sizeof one.locales [0], "pt-BR");
    snprintf (one.id, sizeof one.id, "%s", phone);
    af_device_t two = one;
    snprintf (two.name, sizeof two.name, "Bo's phone");
    snprintf (two.model, sizeof two.model, "Pixel 7 (renamed)");
    snprintf (two.manufacturer, sizeof two.manufacturer, "Google LLC");
    snprintf (two.locales [0], sizeof two.locales [0], "en-US");
    two.locale_count = 1;
    snprintf (two.id, sizeof two.id, "%s", tv);
    two.online = true;
    two.last_seen = 12345;
    snprintf (two.abis [2], sizeof two.abis [2], "x86");  //  past abi_count: not read
    char key_one [AF_ID_HEX + 1], key_two [AF_ID_HEX + 1];
    af_syncindex_fit_key (&one, key_one);
    af_syncindex_fit_key (&two, key_two);
    assert (strlen (key_one) == AF_ID_HEX && streq (key_one, key_two));
    af_syncindex_remember (self, key_one, "weixin", answer, now);
    assert (af_syncindex_recall (self, key_two, "weixin", now + 1, &back) && streq (back.fit_version, "8.0"));
    //  ... and not by devices that differ in any field the resolver reads
    for (int field = 0; field < 11; field++) {
        two = one;
        switch (field) {
            case 0: snprintf (two.platform, sizeof two.platform, "harmonyos"); break;
            case 1: snprintf (two.form_factor, sizeof two.form_factor, "tablet"); break;
            case 2: two.sdk = 34; break;
            case 3: snprintf (two.os_version, sizeof two.os_version, "13.1"); break;
            case 4: two.abi_count = 1; break;
            case 5: snprintf (two.abis [1], sizeof two.abis [1], "x86_64"); break;
            case 6:                             //  the same ABIs, the other preference
                snprintf (two.abis [0], sizeof two.abis [0], "armeabi-v7a");
                snprintf (two.abis [1], sizeof two.abis [1], "arm64-v8a");
                break;
            case 7: two.screen_w = 1440; break;
            case 8: two.screen_h = 3120; break;
            case 9: two.density = 560; break;
            default: two.screen_w = 0; two.screen_h = 0; break;
        }
        af_syncindex_fit_key (&two, key_two);
        assert (!streq (key_one, key_two));
        assert (!af_syncindex_recall (self, key_two, "weixin", now + 1, &back));
    }
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
    assert (af_syncindex_diff (self, "ana", pc, false, &diff) == AF_OK);
    assert (diff.diff->app_count == 4 && !diff.diff->truncated && diff.program_count == 3);
    af_app_t *app = s_test_entry (&diff, "chess", tv);
    assert (app && streq (app->version_name, "2.0"));
    assert (s_test_entry (&diff, "chess", phone) && s_test_entry (&diff, "weixin", phone));
    assert (s_test_entry (&diff, "maps", "") && !s_test_entry (&diff, "maps", tv));
    for (uint32_t i = 0; i < diff.diff->app_count; i++)
        assert (streq (diff.programs [diff.slot [i]], diff.diff->apps [i].program));
    af_sync_diff_free (&diff);

    //  Grouped: one entry per program, its holders after it, the same facts
    assert (af_syncindex_diff (self, "ana", pc, true, &diff) == AF_OK);
    af_msg_t *grouped = diff.diff;
    uint32_t held = 0;
    for (uint32_t i = 0; i < grouped->prog_count; i++)
        held += grouped->progs [i].holder_count;
    assert (grouped->prog_count == 3 && held == 3 && grouped->app_count == 0);
    for (uint32_t i = 0; i < grouped->prog_count; i++)
        assert (streq (diff.programs [i], grouped->progs [i].program));
    //  ... encoded, decoded and flattened, it is the flat diff
    zframe_t *frame = af_msg_encode (grouped);
    af_msg_t *decoded = NULL;
    char err [256];
    assert (af_msg_decode (zframe_data (frame), zframe_size (frame), &decoded, err, sizeof err, NULL, NULL) == AF_OK);
    zframe_destroy (&frame);
    af_msg_ungroup (decoded);
    assert (decoded->app_count == 4);
    af_sync_diff_t flat;
    diff.diff = NULL;
    af_sync_diff_free (&diff);
    af_msg_destroy (&grouped);
    assert (af_syncindex_diff (self, "ana", pc, false, &flat) == AF_OK);
    af_app_t *chess = NULL;
    for (uint32_t i = 0; i < decoded->app_count; i++)
        if (streq (decoded->apps [i].program, "chess") && streq (decoded->apps [i].device_id, tv))
            chess = &decoded->apps [i];
    assert (chess && streq (chess->version_name, "2.0"));
    bool maps_gone = false;
    for (uint32_t i = 0; i < decoded->app_count; i++)
        maps_gone |= streq (decoded->apps [i].program, "maps") && !*decoded->apps [i].device_id
                  && streq (decoded->apps [i].version_name, "1.0");
    assert (maps_gone);
    af_sync_diff_free (&flat);
    af_msg_destroy (&decoded);

    //  The tv lacks weixin, and maps that no device has now
    assert (af_syncindex_diff (self, "ana", tv, false, &diff) == AF_OK && diff.diff->app_count == 2);
    assert (s_test_entry (&diff, "weixin", phone) && s_test_entry (&diff, "maps", ""));
    af_sync_diff_free (&diff);

    //  Kept in memory until dropped: a new report shows only after a drop
    s_test_report (lists, tv, "install", "weixin", "8.0", 4);
    assert (af_syncindex_diff (self, "ana", tv, false, &diff) == AF_OK && diff.diff->app_count == 2);
    af_sync_diff_free (&diff);
    af_syncindex_drop (self, "ana");
    assert (af_syncindex_diff (self, "ana", tv, false, &diff) == AF_OK && diff.diff->app_count == 1);
    assert (s_test_entry (&diff, "maps", ""));
    af_sync_diff_free (&diff);
    assert (af_syncindex_diff (self, "bob", tv, false, &diff) == AF_OK && diff.diff->app_count == 0);
    af_sync_diff_free (&diff);

    //  Answers are kept per fit key and program, for a while
    af_sync_answer_t answer = { .fit = AF_FIT_PACKAGE }, back;
    snprintf (answer.fit_version, sizeof answer.fit_version, "8.0");
    int64_t now = zclock_mono ();
    assert (!af_syncindex_recall (self, "d1", "weixin", now, &back));
    af_syncindex_remember (self, "d1", "weixin", &answer, now);
    assert (af_syncindex_recall (self, "d1", "weixin", now + 1, &back) && streq (back.fit_version, "8.0"));
    assert (!af_syncindex_recall (self, "d2", "weixin", now + 1, &back));
    assert (!af_syncindex_recall (self, "d1", "weixin", now + AF_RESOLVE_CACHE_MS, &back));

    s_test_fit_key (self, phone, tv, &answer, now);

    af_syncindex_destroy (&self);
    af_lists_destroy (&lists);
    af_store_destroy (&store);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
