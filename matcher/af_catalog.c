/*  =========================================================================
    af_catalog - the package catalog and the resolver (the matcher's core)

    Resolution rules (deterministic):
      candidates: same platform; form factor allowed; OS in range (Android
      by API level, others by dotted version); an ABI in common (packages
      without ABIs fit any); screen fits (density range, minimum sides; a
      device whose resolution is unknown, 0x0, fits no minimum).
      winner: highest versionCode; then the ABI the device prefers; then
      the nearest target density (packages without one rank after those
      with one); then the smaller file; then the smaller hash.
    With no candidate, constraints are checked in the order platform, form
    factor, OS, ABI, screen; the closest package is the one whose first
    failing constraint comes latest (ties: highest versionCode), and the
    reason names that constraint with the package's and the device's side.

    Resolution is the matcher's hot path, so the scan over the packages
    only compares numbers and remembers the winner, or the closest package
    and the stage it failed at; the answer is written once at the end: the
    package's strings copied from the fit value with memcpy, its ID and
    hash in hex 16 bytes at a time, and for a no-fit answer the reason
    appended piece by piece from the stage and the numbers (no printf:
    formatting was a fifth of a resolution, and the hex loop a quarter).

    The manifest is read with jansson. jansson gives no positions of
    values, so a small scanner finds where each top-level array element
    starts; each element is then parsed alone and errors name its index
    and line.
    =========================================================================
*/
#include <czmq.h>
#include "af_catalog.h"
#include "af_store.h"
#include "af_msg.h"
#include "af_signer.h"

#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <msgpack.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined (__SSE2__)
#   include <emmintrin.h>
#endif

#if !defined (__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#   error "af_catalog stores fit records in host order and requires a little-endian host"
#endif
_Static_assert (sizeof (af_fit_rec_t) == 104, "fit records are 104 bytes on disk");
_Static_assert (offsetof (af_fit_rec_t, version_code) == 48 && offsetof (af_fit_rec_t, platform) == 90,
                "fit record layout");

const char *af_abi_names [AF_ABI_COUNT] = {
    "armeabi", "armeabi-v7a", "arm64-v8a", "x86", "x86_64", "mips", "mips64", "riscv64"
};

static const char *s_display [AF_PLATFORM_COUNT] = {
    "", "Android", "iOS", "HarmonyOS", "Windows", "macOS", "Linux", "tvOS"
};

struct _af_catalog_t {
    af_store_t *store;
    char *dir;
    MDB_dbi programs;
    MDB_dbi packages;
    MDB_dbi fit;
    MDB_dbi signers;
    MDB_dbi categories;             //  the recommendation index (programs by category and votes)
    bool has_categories;            //  a catalog made before it has none until its next import
    af_signer_t *signer;            //  the catalog's trust, or NULL (none installed)
    bool allow_unsigned;
    uint64_t expires_s;             //  of the targets an import signs
    MDB_txn *reader;                //  reused read transaction (reset/renew)
    bool reading;                   //  reader holds a live snapshot
    uint64_t *scratch;              //  aligned copy of a misaligned fit value
    size_t scratch_size;
    int64_t snapshot_at;            //  zclock_mono when it was taken
    bool writable;
    //  af_platform_name and af_form_name of each value, zero-padded, so
    //  resolve looks a device's names up with one strcmp and copies a
    //  platform name with a fixed-size memcpy
    char platforms [AF_PLATFORM_COUNT][AF_MAX_PLATFORM + 1];
    char forms [AF_FORM_COUNT][AF_MAX_FORMFACTOR + 1];
    uint32_t abi_prefix [AF_ABI_COUNT];     //  first 4 bytes of each ABI name
};

af_catalog_t *
af_catalog_new (const char *dir, bool writable)
{
    af_catalog_t *self = (af_catalog_t *) zmalloc (sizeof (af_catalog_t));
    assert (self);
    self->dir = strdup (dir);
    self->writable = writable;
    self->expires_s = (uint64_t) AF_TRUST_TARGETS_DAYS * 86400;
    for (int i = 1; i < AF_PLATFORM_COUNT; i++)
        af_strcopy (self->platforms [i], sizeof self->platforms [i], af_platform_name ((af_platform_t) i));
    for (int i = 1; i < AF_FORM_COUNT; i++)
        af_strcopy (self->forms [i], sizeof self->forms [i], af_form_name ((af_form_t) i));
    for (int k = 0; k < AF_ABI_COUNT; k++)
        memcpy (&self->abi_prefix [k], af_abi_names [k], 4);     //  "x86" and its NUL at least
    if (writable && zsys_dir_create ("%s/blobs", dir)) {
        zsys_error ("catalog: cannot create %s/blobs: %s", dir, strerror (errno));
        af_catalog_destroy (&self);
        return NULL;
    }
    self->store = af_store_new (dir, (size_t) 16 << 30, 8, !writable);
    if (!self->store
    ||  af_store_dbi (self->store, "programs", 0, &self->programs)
    ||  af_store_dbi (self->store, "packages", 0, &self->packages)
    ||  af_store_dbi (self->store, "fit", 0, &self->fit)
    ||  (writable && af_store_dbi (self->store, "signers", 0, &self->signers)))
        af_catalog_destroy (&self);
    if (self)
        self->has_categories = af_store_dbi (self->store, "categories", 0, &self->categories) == 0;
    if (self && writable && !self->has_categories)
        af_catalog_destroy (&self);
    char err [600];
    if (self && writable && af_signer_open (dir, &self->signer, err, sizeof err) != AF_OK) {
        zsys_error ("catalog: its trust does not verify: %s", err);
        af_catalog_destroy (&self);
    }
    return self;
}

void
af_catalog_destroy (af_catalog_t **self_p)
{
    assert (self_p);
    af_catalog_t *self = *self_p;
    if (self) {
        af_store_abort (self->store, &self->reader);
        af_store_destroy (&self->store);
        af_signer_destroy (&self->signer);
        free (self->scratch);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

int
af_catalog_blob_path (af_catalog_t *self, const char *hash_hex, char *buf, size_t size)
{
    assert (self);
    if (strlen (hash_hex) != AF_HASH_HEX)
        return AF_E_MALFORMED;
    for (const char *p = hash_hex; *p; p++)
        if (!isxdigit ((unsigned char) *p) || isupper ((unsigned char) *p))
            return AF_E_MALFORMED;
    int n = snprintf (buf, size, "%s/blobs/%.2s/%s", self->dir, hash_hex, hash_hex);
    return n > 0 && (size_t) n < size? AF_OK: AF_E_TOO_BIG;
}

//  --------------------------------------------------------------------------
//  Resolution

static uint32_t
s_device_os (const af_device_t *device, af_platform_t platform)
{
    uint32_t version = 0;
    if (platform == AF_PLATFORM_ANDROID)
        return device->sdk;
    af_version_parse (device->os_version, &version);
    return version;
}

//  A device's platform and form factor, as af_platform_from_name and
//  af_form_from_name give them, comparing first characters first
static af_platform_t
s_platform (const af_catalog_t *self, const char *name)
{
    for (int i = 1; i < AF_PLATFORM_COUNT; i++)
        if (self->platforms [i][0] == name [0] && strcmp (self->platforms [i], name) == 0)
            return (af_platform_t) i;
    return AF_PLATFORM_NONE;
}

static af_form_t
s_form (const af_catalog_t *self, const char *name)
{
    for (int i = 1; i < AF_FORM_COUNT; i++)
        if (self->forms [i][0] == name [0] && strcmp (self->forms [i], name) == 0)
            return (af_form_t) i;
    return AF_FORM_NONE;
}

//  Index of the first failing constraint: 0 platform, 1 form factor, 2 OS,
//  3 ABI, 4 screen; 5 when the package fits. abi_pref is the device's
//  preference index of each known ABI (-1: not supported) and abi_mask the
//  bits of those it supports. *abi_rank gets the preference index of the
//  best common ABI (0 best), or 0 for any-ABI.
static int
s_check (const af_fit_rec_t *rec, af_platform_t platform, af_form_t form, uint32_t os,
         const int8_t *abi_pref, uint32_t abi_mask, uint32_t short_side, uint32_t long_side,
         uint32_t density, int *abi_rank)
{
    if (rec->platform != platform)
        return 0;
    if (rec->form_mask && !(rec->form_mask & (1u << form)))
        return 1;
    if (os < rec->os_min || (rec->os_max && os > rec->os_max))
        return 2;
    *abi_rank = 0;
    if (rec->abi_mask) {
        uint32_t common = rec->abi_mask & abi_mask;
        if (!common)
            return 3;
        int best = INT_MAX;
        for (; common; common &= common - 1) {
            int i = __builtin_ctz (common);
            if (abi_pref [i] < best)
                best = abi_pref [i];
        }
        *abi_rank = best;
    }
    if ((rec->density_min && density < rec->density_min)
    ||  (rec->density_max && density > rec->density_max)
    ||  short_side < rec->min_short || long_side < rec->min_long)
        return 4;
    return 5;
}

//  True if a ranks before b among fitting packages. This, s_snapshot and
//  s_reason are always inlined: with a second caller (the restore's
//  af_catalog_resolve_version) the compiler stopped inlining them into
//  af_catalog_resolve, which then paid a call per fitting package
static inline __attribute__ ((always_inline)) bool
s_better (const af_fit_rec_t *a, int a_abi, const af_fit_rec_t *b, int b_abi, uint32_t density)
{
    if (a->version_code != b->version_code)
        return a->version_code > b->version_code;
    if (a_abi != b_abi)
        return a_abi < b_abi;
    uint32_t da = a->density? (uint32_t) abs ((int) a->density - (int) density): UINT32_MAX;
    uint32_t db = b->density? (uint32_t) abs ((int) b->density - (int) density): UINT32_MAX;
    if (da != db)
        return da < db;
    if (a->size != b->size)
        return a->size < b->size;
    return memcmp (a->hash, b->hash, AF_HASH_SIZE) < 0;
}

//  A string being built in a fixed buffer. It keeps what snprintf would
//  (the first size - 1 characters, always terminated) without parsing a
//  format: a no-fit reason is a handful of appends, built once per answer
//  and only for the answer that has one.
typedef struct {
    char *buf;
    size_t size;                        //  at least 1
    size_t len;
} text_t;

static inline void
s_begin (text_t *text, char *buf, size_t size)
{
    text->buf = buf;
    text->size = size;
    text->len = 0;
    buf [0] = 0;
}

//  Append the first len characters of string, or what fits of them
static inline void
s_put_n (text_t *text, const char *string, size_t len)
{
    size_t room = text->size - 1 - text->len;
    if (len > room)
        len = room;
    memcpy (text->buf + text->len, string, len);
    text->len += len;
    text->buf [text->len] = 0;
}

//  A literal's length is known when it is compiled: a fixed-size copy
#define s_put_literal(text, literal) s_put_n ((text), "" literal, sizeof (literal) - 1)

//  Append a string, or what fits of it. The strings of a reason are
//  short names, so a byte loop beats finding the length first.
static void
s_put (text_t *text, const char *string)
{
    char *p = text->buf + text->len, *end = text->buf + text->size - 1;
    while (p < end && *string)
        *p++ = *string++;
    *p = 0;
    text->len = (size_t) (p - text->buf);
}

static void
s_put_uint (text_t *text, uint32_t value)
{
    char digits [10];
    char *end = digits + sizeof digits, *p = end;
    do
        *--p = (char) ('0' + value % 10);
    while (value /= 10);
    s_put_n (text, p, (size_t) (end - p));
}

//  The ABIs of a mask, "arm64-v8a or x86_64"
static void
s_put_abis (text_t *text, uint32_t mask)
{
    const char *sep = "";
    for (int i = 0; i < AF_ABI_COUNT; i++)
        if (mask & (1u << i)) {
            s_put (text, sep);
            s_put (text, af_abi_names [i]);
            sep = " or ";
        }
}

static void
s_abi_list (uint32_t mask, char *buf, size_t size)
{
    text_t text;
    s_begin (&text, buf, size);
    s_put_abis (&text, mask);
}

//  An OS version as people say it: "Android 8.0", "Android API 40", "iOS 16.4"
static void
s_put_os (text_t *text, uint32_t value, af_platform_t platform)
{
    if (platform == AF_PLATFORM_ANDROID) {
        const char *release = af_android_release (value);
        if (release) {
            s_put_literal (text, "Android ");
            s_put (text, release);
        }
        else {
            s_put_literal (text, "Android API ");
            s_put_uint (text, value);
        }
    }
    else {
        char version [32];
        s_put (text, s_display [platform]);
        s_put_literal (text, " ");
        s_put (text, af_version_format (value, version, sizeof version));
    }
}

//  Why the closest package does not fit, into reason (size bytes)
static inline __attribute__ ((always_inline)) void
s_reason (const af_fit_rec_t *recs, size_t count, const af_fit_rec_t *rec, int stage,
          const af_device_t *device, af_platform_t platform, uint32_t os, char *reason, size_t size)
{
    text_t text;
    s_begin (&text, reason, size);
    switch (stage) {
        case 0: {
            uint32_t present = 0;
            for (size_t i = 0; i < count; i++)
                if (recs [i].platform < AF_PLATFORM_COUNT)
                    present |= 1u << recs [i].platform;
            s_put_literal (&text, "no package for ");
            s_put (&text, s_display [platform]);
            s_put_literal (&text, "; available for ");
            const char *sep = "";
            for (int p = 1; p < AF_PLATFORM_COUNT; p++)
                if (present & (1u << p)) {
                    s_put (&text, sep);
                    s_put (&text, s_display [p]);
                    sep = ", ";
                }
            break;
        }
        case 1: {
            s_put_literal (&text, "made for ");
            const char *sep = "";
            for (int f = 1; f < AF_FORM_COUNT; f++)
                if (rec->form_mask & (1u << f)) {
                    s_put (&text, sep);
                    s_put (&text, af_form_name ((af_form_t) f));
                    sep = ", ";
                }
            s_put_literal (&text, "; device is a ");
            s_put (&text, device->form_factor);
            break;
        }
        case 2:
            s_put_literal (&text, "needs ");
            s_put_os (&text, os < rec->os_min? rec->os_min: rec->os_max, platform);
            if (os < rec->os_min)
                s_put_literal (&text, " or later; device runs ");
            else
                s_put_literal (&text, " or earlier; device runs ");
            s_put_os (&text, os, platform);
            break;
        case 3: {
            s_put_literal (&text, "needs ABI ");
            s_put_abis (&text, rec->abi_mask);
            //  The device's list is cut at 127 characters, as it always was
            char have [128];
            text_t supports;
            s_begin (&supports, have, sizeof have);
            for (uint32_t i = 0; i < device->abi_count; i++) {
                if (supports.len)
                    s_put_literal (&supports, ", ");     //  none after an empty name
                s_put (&supports, device->abis [i]);
            }
            s_put_literal (&text, "; device supports ");
            s_put (&text, supports.len? have: "none");
            break;
        }
        default: {
            uint32_t w = device->screen_w, h = device->screen_h;
            if ((rec->density_min && device->density < rec->density_min)
            ||  (rec->density_max && device->density > rec->density_max)) {
                if (rec->density_max) {
                    s_put_literal (&text, "needs ");
                    s_put_uint (&text, rec->density_min);
                    s_put_literal (&text, "-");
                    s_put_uint (&text, rec->density_max);
                }
                else {
                    s_put_literal (&text, "needs at least ");
                    s_put_uint (&text, rec->density_min);
                }
                s_put_literal (&text, " dpi; device has ");
                s_put_uint (&text, device->density);
                s_put_literal (&text, " dpi");
            }
            else {
                s_put_literal (&text, "needs a screen of at least ");
                s_put_uint (&text, rec->min_long);
                s_put_literal (&text, "x");
                s_put_uint (&text, rec->min_short);
                if (w == 0 || h == 0)   //  a description without a screen size
                    s_put_literal (&text, "; the device's resolution is unknown");
                else {
                    s_put_literal (&text, "; device has ");
                    s_put_uint (&text, w > h? w: h);
                    s_put_literal (&text, "x");
                    s_put_uint (&text, w > h? h: w);
                }
            }
        }
    }
}

//  A fit value, checked: records and the text area within the value
typedef struct {
    const af_fit_rec_t *recs;
    size_t count;
    const char *text;
    size_t text_size;
} fit_view_t;

//  LMDB places a value right after its key, so it is not aligned; the
//  records are read in place only when the value happens to be 8-aligned,
//  else from a copy in the catalog's scratch buffer (valid until the next
//  s_view).
static int
s_view (af_catalog_t *self, const MDB_val *value, fit_view_t *view)
{
    af_fit_head_t head;
    if (value->mv_size < sizeof head)
        return -1;
    memcpy (&head, value->mv_data, sizeof head);
    size_t records = sizeof head + (size_t) head.count * sizeof (af_fit_rec_t);
    if (head.count == 0 || records > head.text || (size_t) head.text + 4 > value->mv_size)
        return -1;
    const uint8_t *data = (const uint8_t *) value->mv_data;
    if ((uintptr_t) data % _Alignof (af_fit_rec_t)) {
        if (value->mv_size > self->scratch_size) {
            size_t size = value->mv_size + 4096;
            uint64_t *scratch = (uint64_t *) realloc (self->scratch, size);
            if (!scratch)
                return -1;
            self->scratch = scratch;
            self->scratch_size = size;
        }
        memcpy (self->scratch, data, value->mv_size);
        data = (const uint8_t *) self->scratch;
    }
    view->recs = (const af_fit_rec_t *) (data + sizeof head);
    view->count = head.count;
    view->text = (const char *) data + head.text;
    view->text_size = value->mv_size - head.text;
    return 0;
}

//  Copy the NUL-terminated string at offset of the text area; advance offset
static inline void
s_text (const fit_view_t *view, size_t *offset, char *buf, size_t size)
{
    buf [0] = 0;
    if (*offset >= view->text_size)
        return;
    const char *start = view->text + *offset;
    if (*start == 0) {              //  common (no publisher, no link): skip the scan
        *offset += 1;
        return;
    }
    const char *end = (const char *) memchr (start, 0, view->text_size - *offset);
    size_t len = end? (size_t) (end - start): 0;
    if (len >= size)
        len = size - 1;
    memcpy (buf, start, len);
    buf [len] = 0;
    *offset += len + 1;
}

//  Lowercase hex of public data (IDs and hashes are not secrets, so this
//  need not be constant-time like sodium_bin2hex); dest holds 2 * size + 1.
//  Every answer carries two (ID and hash), and a byte-at-a-time loop was a
//  quarter of a resolution. This portable one takes 4 bytes at a time in a
//  64-bit word: spread them to every other byte, split each into its two
//  nibbles (the high one first, at the lower address), then add '0', or
//  'a' - 10 where the nibble is over 9 (n + 6 carries into bit 4), to all
//  eight at once. size is a multiple of 4.
static void
s_hex_words (char *dest, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i += 4) {
        uint32_t word;
        memcpy (&word, data + i, 4);
        uint64_t x = word;
        x = (x | (x << 16)) & 0x0000ffff0000ffffULL;
        x = (x | (x << 8)) & 0x00ff00ff00ff00ffULL;
        uint64_t nibbles = ((x >> 4) & 0x000f000f000f000fULL) | ((x & 0x000f000f000f000fULL) << 8);
        uint64_t letters = ((nibbles + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL;
        uint64_t chars = nibbles + 0x3030303030303030ULL + letters * ('a' - '0' - 10);
        memcpy (dest + 2 * i, &chars, 8);
    }
    dest [2 * size] = 0;
}

//  The same, 16 bytes at a time with SSE2 (every x86-64 has it) when the
//  compiler targets it, else with s_hex_words. size is a multiple of 16.
static inline void
s_hex (char *dest, const uint8_t *data, size_t size)
{
    assert (size % 16 == 0);
#if defined (__SSE2__)
    const __m128i low = _mm_set1_epi8 (0x0f);
    const __m128i nine = _mm_set1_epi8 (9);
    const __m128i zero = _mm_set1_epi8 ('0');
    const __m128i gap = _mm_set1_epi8 ('a' - '0' - 10);
    for (size_t i = 0; i < size; i += 16) {
        __m128i bytes = _mm_loadu_si128 ((const __m128i *) (data + i));
        __m128i high = _mm_and_si128 (_mm_srli_epi16 (bytes, 4), low);
        __m128i nibbles [2] = { _mm_unpacklo_epi8 (high, _mm_and_si128 (bytes, low)),
                                _mm_unpackhi_epi8 (high, _mm_and_si128 (bytes, low)) };
        for (int k = 0; k < 2; k++) {
            __m128i letters = _mm_and_si128 (_mm_cmpgt_epi8 (nibbles [k], nine), gap);
            __m128i chars = _mm_add_epi8 (_mm_add_epi8 (nibbles [k], zero), letters);
            _mm_storeu_si128 ((__m128i *) (dest + 2 * i + 16 * k), chars);
        }
    }
    dest [2 * size] = 0;
#else
    s_hex_words (dest, data, size);
#endif
}
_Static_assert (AF_ID_SIZE % 16 == 0 && AF_HASH_SIZE % 16 == 0, "s_hex takes 16 bytes at a time");

_Static_assert (sizeof ((af_package_t *) 0)->abi == sizeof ((af_device_t *) 0)->abis [0]
                && sizeof ((af_device_t *) 0)->abis [0] >= 4
                && sizeof ((af_package_t *) 0)->platform == AF_MAX_PLATFORM + 1,
                "a device ABI and a platform name are copied whole into the package");

//  Fill the result's package from the fit value alone. plen is strlen
//  (program); abi_rank < 0 leaves the ABI empty (a closest package).
static void
s_fill (const fit_view_t *view, const char *program, size_t plen, const af_fit_rec_t *rec,
        int abi_rank, const af_device_t *device, const char (*platforms) [AF_MAX_PLATFORM + 1],
        af_package_t *package)
{
    if (plen > sizeof package->program - 1)
        plen = sizeof package->program - 1;
    memcpy (package->program, program, plen);
    package->program [plen] = 0;
    size_t offset = 4;
    memcpy (&package->votes, view->text, 4);
    s_text (view, &offset, package->display, sizeof package->display);
    s_text (view, &offset, package->publisher, sizeof package->publisher);
    s_text (view, &offset, package->category, sizeof package->category);
    offset = rec->text;
    s_text (view, &offset, package->version_name, sizeof package->version_name);
    s_text (view, &offset, package->store_link, sizeof package->store_link);
    if (rec->platform < AF_PLATFORM_COUNT)
        memcpy (package->platform, platforms [rec->platform], sizeof package->platform);
    else
        package->platform [0] = 0;
    package->version_code = rec->version_code;
    package->size = rec->size;
    package->price_cents = rec->price_cents;
    memcpy (package->currency, rec->currency, AF_CURRENCY);
    package->currency [rec->currency [0]? AF_CURRENCY: 0] = 0;
    s_hex (package->package_id, rec->package_id, AF_ID_SIZE);
    if (rec->store_only)
        package->hash [0] = 0;
    else
        s_hex (package->hash, rec->hash, AF_HASH_SIZE);
    package->abi [0] = 0;
    if (abi_rank >= 0 && rec->abi_mask && (uint32_t) abi_rank < device->abi_count) {
        memcpy (package->abi, device->abis [abi_rank], sizeof package->abi);
        package->abi [sizeof package->abi - 1] = 0;
    }
}

//  Make sure the reader holds a snapshot no older than AF_CATALOG_SNAPSHOT_MS.
//  Reusing one across calls saves a reader-table round trip per resolution;
//  the age bound keeps imports visible within that time under load, and
//  af_catalog_release lets an idle matcher pin no old pages at all.
static inline __attribute__ ((always_inline)) int
s_snapshot (af_catalog_t *self)
{
    int64_t now = zclock_mono ();
    if (self->reading && now - self->snapshot_at < AF_CATALOG_SNAPSHOT_MS)
        return 0;
    af_catalog_release (self);
    int rc = self->reader? mdb_txn_renew (self->reader): af_store_begin (self->store, false, &self->reader);
    if (rc) {
        zsys_error ("catalog: cannot start a read transaction: %s", mdb_strerror (rc));
        af_store_abort (self->store, &self->reader);
        return -1;
    }
    self->reading = true;
    self->snapshot_at = now;
    return 0;
}

//  A device as the resolver compares it: its platform and form factor
//  as numbers, its OS as one, each known ABI's preference index (-1: not
//  supported) and the mask of those it supports, its screen's sides
typedef struct {
    af_platform_t platform;
    af_form_t form;
    uint32_t os;
    int8_t abi_pref [AF_ABI_COUNT];
    uint32_t abi_mask;
    uint32_t short_side, long_side;
} dev_view_t;

static inline __attribute__ ((always_inline)) void
s_dev_view (const af_catalog_t *self, const af_device_t *device, dev_view_t *dev)
{
    dev->platform = s_platform (self, device->platform);
    dev->form = s_form (self, device->form_factor);
    dev->os = s_device_os (device, dev->platform);
    dev->abi_mask = 0;
    memset (dev->abi_pref, -1, sizeof dev->abi_pref);
    for (uint32_t i = 0; i < device->abi_count; i++) {
        //  The first four bytes (of a 24-byte buffer) pick one or two names to compare
        const char *name = device->abis [i];
        uint32_t prefix;
        memcpy (&prefix, name, 4);
        for (int k = 0; k < AF_ABI_COUNT; k++)
            if (prefix == self->abi_prefix [k] && strcmp (name, af_abi_names [k]) == 0) {
                if (dev->abi_pref [k] < 0)
                    dev->abi_pref [k] = (int8_t) i;
                dev->abi_mask |= 1u << k;
                break;          //  names are distinct: one match at most
            }
    }
    dev->short_side = device->screen_w < device->screen_h? device->screen_w: device->screen_h;
    dev->long_side = device->screen_w < device->screen_h? device->screen_h: device->screen_w;
}

int
af_catalog_resolve (af_catalog_t *self, const char *program, const af_device_t *device,
                    af_resolution_t *result)
{
    assert (self);
    if (s_snapshot (self))
        return AF_E_INTERNAL;
    result->reason [0] = 0;
    MDB_val value;
    fit_view_t view;
    size_t plen = strlen (program);
    int rc = af_store_get (self->reader, self->fit, program, plen, &value);
    if (rc == MDB_NOTFOUND) {
        memset (&result->package, 0, sizeof result->package);
        result->fit = AF_FIT_UNKNOWN_PROGRAM;
        text_t text;
        s_begin (&text, result->reason, sizeof result->reason);
        s_put_literal (&text, "unknown program '");
        s_put (&text, program);
        s_put_literal (&text, "'");
        return AF_OK;
    }
    if (rc || s_view (self, &value, &view)) {
        if (rc == 0)
            zsys_error ("catalog: the fit record of '%s' is corrupt", program);
        af_catalog_release (self);
        return AF_E_INTERNAL;
    }
    dev_view_t dev;
    s_dev_view (self, device, &dev);
    af_platform_t platform = dev.platform;
    uint32_t os = dev.os;

    const af_fit_rec_t *best = NULL, *closest = NULL;
    int best_abi = 0, closest_stage = -1;
    for (size_t i = 0; i < view.count; i++) {
        const af_fit_rec_t *rec = &view.recs [i];
        int abi_rank = 0;
        int stage = s_check (rec, dev.platform, dev.form, dev.os, dev.abi_pref, dev.abi_mask, dev.short_side,
                             dev.long_side, device->density, &abi_rank);
        if (stage == 5) {
            if (!best || s_better (rec, abi_rank, best, best_abi, device->density)) {
                best = rec;
                best_abi = abi_rank;
            }
        }
        else
        if (stage > closest_stage
        ||  (stage == closest_stage && rec->version_code > closest->version_code)) {
            closest = rec;
            closest_stage = stage;
        }
    }
    //  Only the answer is formatted: the winner's package, or the closest
    //  package and the one reason it does not fit
    if (best) {
        result->fit = best->store_only? AF_FIT_STORE_LINK: AF_FIT_PACKAGE;
        s_fill (&view, program, plen, best, best_abi, device, self->platforms, &result->package);
    }
    else {
        result->fit = AF_FIT_NONE;
        s_reason (view.recs, view.count, closest, closest_stage, device, platform, os,
                  result->reason, sizeof result->reason);
        s_fill (&view, program, plen, closest, -1, device, self->platforms, &result->package);
    }
    return AF_OK;
}

void
af_catalog_release (af_catalog_t *self)
{
    assert (self);
    if (self->reading) {
        mdb_txn_reset (self->reader);
        self->reading = false;
    }
}

//  --------------------------------------------------------------------------
//  Restores (S4.4) and recommendations (S4.5): asked for now and then, not
//  the hot path; af_catalog_resolve stays as it was

//  A record's versionName, or "" (its strings are in the text area)
static const char *
s_rec_name (const fit_view_t *view, const af_fit_rec_t *rec)
{
    if (rec->text >= view->text_size || !memchr (view->text + rec->text, 0, view->text_size - rec->text))
        return "";
    return view->text + rec->text;
}

//  The records of a version for the device's platform: by versionName,
//  or, when none has the name and code is not 0, by versionCode. Copied
//  into recs (room for view->count); their number.
static size_t
s_version_recs (const fit_view_t *view, af_platform_t platform, const char *name, uint64_t code,
                af_fit_rec_t *recs)
{
    size_t n = 0;
    for (size_t i = 0; i < view->count; i++)
        if (view->recs [i].platform == platform && streq (s_rec_name (view, &view->recs [i]), name))
            recs [n++] = view->recs [i];
    for (size_t i = 0; n == 0 && code && i < view->count; i++)
        if (view->recs [i].platform == platform && view->recs [i].version_code == code)
            recs [n++] = view->recs [i];
    return n;
}

int
af_catalog_resolve_version (af_catalog_t *self, const char *program, const af_device_t *device,
                            const char *version_name, uint64_t version_code, af_resolution_t *result)
{
    assert (self);
    int code = af_catalog_resolve (self, program, device, result);
    if (code != AF_OK || result->fit == AF_FIT_UNKNOWN_PROGRAM || !version_name || !*version_name)
        return code;
    //  The snapshot resolve took is still ours: read the fit value again
    MDB_val value;
    fit_view_t view;
    if (af_store_get (self->reader, self->fit, program, strlen (program), &value) || s_view (self, &value, &view))
        return AF_E_INTERNAL;
    dev_view_t dev;
    s_dev_view (self, device, &dev);
    af_fit_rec_t *recs = (af_fit_rec_t *) malloc (view.count * sizeof (af_fit_rec_t));
    assert (recs);
    size_t count = s_version_recs (&view, dev.platform, version_name, version_code, recs);
    const af_fit_rec_t *best = NULL, *closest = NULL;
    int best_abi = 0, closest_stage = -1;
    for (size_t i = 0; i < count; i++) {
        int abi_rank = 0;
        int stage = s_check (&recs [i], dev.platform, dev.form, dev.os, dev.abi_pref, dev.abi_mask,
                             dev.short_side, dev.long_side, device->density, &abi_rank);
        if (stage == 5 && (!best || s_better (&recs [i], abi_rank, best, best_abi, device->density))) {
            best = &recs [i];
            best_abi = abi_rank;
        }
        else
        if (stage < 5 && (stage > closest_stage
                      || (stage == closest_stage && recs [i].version_code > closest->version_code))) {
            closest = &recs [i];
            closest_stage = stage;
        }
    }
    memset (&result->package, 0, sizeof result->package);
    af_strcopy (result->package.program, sizeof result->package.program, program);
    if (best) {
        result->fit = best->store_only? AF_FIT_STORE_LINK: AF_FIT_PACKAGE;
        s_fill (&view, program, strlen (program), best, best_abi, device, self->platforms, &result->package);
        result->reason [0] = 0;
    }
    else {
        char why [AF_MAX_REASON + 1] = "";
        result->fit = AF_FIT_NONE;
        if (closest) {
            s_reason (recs, count, closest, closest_stage, device, dev.platform, dev.os, why, sizeof why);
            s_fill (&view, program, strlen (program), closest, -1, device, self->platforms, &result->package);
        }
        snprintf (result->reason, sizeof result->reason, "version %s %s%s", version_name,
                  closest? "does not fit: ": "has no package for ", closest? why: s_display [dev.platform]);
    }
    free (recs);
    return AF_OK;
}

//  The category index: category, 0x00, ~votes (4 bytes big-endian: the
//  most votes first), program ID; empty values
#define CATEGORY_KEY (AF_MAX_NAME + 1 + 4 + AF_MAX_PROGRAM)

static size_t
s_category_key (uint8_t *key, const char *category, uint32_t votes, const char *program)
{
    size_t clen = strlen (category), plen = strlen (program);
    memcpy (key, category, clen + 1);
    uint32_t rank = UINT32_MAX - votes;
    for (int i = 0; i < 4; i++)
        key [clen + 1 + i] = (uint8_t) (rank >> (24 - 8 * i));
    memcpy (key + clen + 5, program, plen);
    return clen + 5 + plen;
}

//  A fit value's program-level strings: votes and category
static void
s_program_meta (const fit_view_t *view, uint32_t *votes, char *category, size_t size)
{
    char skip [AF_MAX_DISPLAY + 1];
    size_t offset = 4;
    memcpy (votes, view->text, 4);
    s_text (view, &offset, skip, sizeof skip);
    s_text (view, &offset, skip, sizeof skip);
    s_text (view, &offset, category, size);
}

//  Move a program's index key from its old category and votes (its fit
//  value before this import) to package's. 0 or an LMDB code.
static int
s_index_category (af_catalog_t *self, MDB_txn *txn, const af_package_t *package)
{
    uint8_t key [CATEGORY_KEY];
    MDB_val old;
    fit_view_t view;
    int rc = af_store_get (txn, self->fit, package->program, strlen (package->program), &old);
    if (rc == 0 && s_view (self, &old, &view) == 0) {
        uint32_t votes;
        char category [AF_MAX_NAME + 1];
        s_program_meta (&view, &votes, category, sizeof category);
        if (*category) {
            rc = af_store_del (txn, self->categories, key, s_category_key (key, category, votes, package->program));
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
    }
    else
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0 && *package->category)
        rc = af_store_put (txn, self->categories, key,
                           s_category_key (key, package->category, package->votes, package->program), "", 0, 0);
    return rc;
}

int
af_catalog_recommend (af_catalog_t *self, const char *program, const af_device_t *device,
                      af_resolution_t *alternative, bool *found)
{
    assert (self && found);
    *found = false;
    if (!self->has_categories || s_snapshot (self))
        return self->has_categories? AF_E_INTERNAL: AF_OK;
    MDB_val value;
    fit_view_t view;
    int rc = af_store_get (self->reader, self->fit, program, strlen (program), &value);
    if (rc == MDB_NOTFOUND)
        return AF_OK;
    if (rc || s_view (self, &value, &view))
        return AF_E_INTERNAL;
    uint32_t votes;
    char category [AF_MAX_NAME + 1];
    s_program_meta (&view, &votes, category, sizeof category);
    if (!*category)
        return AF_OK;
    //  The candidates first (resolving may renew the snapshot), most votes first
    char (*candidates) [AF_MAX_PROGRAM + 1] = calloc (AF_RECOMMEND_TRIES, AF_MAX_PROGRAM + 1);
    assert (candidates);
    size_t count = 0, clen = strlen (category) + 1;
    MDB_cursor *cursor;
    rc = mdb_cursor_open (self->reader, self->categories, &cursor);
    MDB_val key = { clen, category }, empty;
    int got = rc? rc: mdb_cursor_get (cursor, &key, &empty, MDB_SET_RANGE);
    while (got == 0 && count < AF_RECOMMEND_TRIES && key.mv_size > clen + 4
       &&  memcmp (key.mv_data, category, clen) == 0) {
        size_t plen = key.mv_size - clen - 4;
        if (plen <= AF_MAX_PROGRAM && !(plen == strlen (program)
                                        && memcmp ((char *) key.mv_data + clen + 4, program, plen) == 0)) {
            memcpy (candidates [count], (char *) key.mv_data + clen + 4, plen);
            candidates [count++][plen] = 0;
        }
        got = mdb_cursor_get (cursor, &key, &empty, MDB_NEXT);
    }
    if (rc == 0)
        mdb_cursor_close (cursor);
    int code = rc || (got && got != MDB_NOTFOUND)? AF_E_INTERNAL: AF_OK;
    for (size_t i = 0; code == AF_OK && i < count && !*found; i++) {
        code = af_catalog_resolve (self, candidates [i], device, alternative);
        *found = code == AF_OK && (alternative->fit == AF_FIT_PACKAGE || alternative->fit == AF_FIT_STORE_LINK);
    }
    free (candidates);
    return code;
}

//  --------------------------------------------------------------------------
//  Adding packages

//  Hash a file and store it under blobs/ unless the same bytes are there.
//  AF_OK, or with err AF_E_MALFORMED (not a regular file) or AF_E_INTERNAL
//  (cannot read it, or cannot store it).
static int
s_store_blob (af_catalog_t *self, const char *path, uint8_t *hash, uint64_t *size,
              char *err, size_t errlen)
{
    int fd = open (path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "cannot read package file %s: %s", path,
                  fd < 0? strerror (errno): "not a regular file");
        if (fd >= 0)
            close (fd);
        return fd < 0? AF_E_INTERNAL: AF_E_MALFORMED;
    }
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, AF_HASH_SIZE);
    uint8_t buf [64 * 1024];
    ssize_t n;
    uint64_t total = 0;
    while ((n = read (fd, buf, sizeof buf)) > 0) {
        crypto_generichash_update (&state, buf, (size_t) n);
        total += (uint64_t) n;
    }
    if (n < 0) {
        snprintf (err, errlen, "reading %s: %s", path, strerror (errno));
        close (fd);
        return AF_E_INTERNAL;
    }
    crypto_generichash_final (&state, hash, AF_HASH_SIZE);
    *size = total;

    char hex [AF_HASH_HEX + 1], blob [PATH_MAX], tmp [PATH_MAX + 8];
    sodium_bin2hex (hex, sizeof hex, hash, AF_HASH_SIZE);
    if (af_catalog_blob_path (self, hex, blob, sizeof blob) != AF_OK) {
        snprintf (err, errlen, "the catalog's path %s is too long", self->dir);
        close (fd);
        return AF_E_INTERNAL;
    }
    struct stat existing;
    if (stat (blob, &existing) == 0 && (uint64_t) existing.st_size == total) {
        close (fd);
        return AF_OK;               //  same bytes already stored
    }
    snprintf (tmp, sizeof tmp, "%s/blobs/%.2s", self->dir, hex);
    if (zsys_dir_create ("%s", tmp)) {
        snprintf (err, errlen, "cannot create %s: %s", tmp, strerror (errno));
        close (fd);
        return AF_E_INTERNAL;
    }
    snprintf (tmp, sizeof tmp, "%s.tmp", blob);
    int out = open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = out >= 0 && lseek (fd, 0, SEEK_SET) == 0;
    while (ok && (n = read (fd, buf, sizeof buf)) > 0)
        ok = write (out, buf, (size_t) n) == n;
    ok = ok && n == 0 && fsync (out) == 0;
    if (out >= 0)
        ok = close (out) == 0 && ok;
    close (fd);
    if (!ok || rename (tmp, blob)) {
        snprintf (err, errlen, "cannot store %s as %s: %s", path, blob, strerror (errno));
        unlink (tmp);
        return AF_E_INTERNAL;
    }
    return AF_OK;
}

//  Put the program's metadata and packages, then rebuild its fit array
//  from every package it has (older imports included). AF_OK, or with err
//  AF_E_TOO_BIG (more than AF_MAX_PACKAGES_PER_PROGRAM) or AF_E_INTERNAL
//  (a store error, LMDB's code in err).
static int
s_put_program (af_catalog_t *self, MDB_txn *txn, af_catalog_entry_t **entries, size_t count,
               char *err, size_t errlen)
{
    const af_package_t *last = &entries [count - 1]->package;
    const char *program = last->program;
    size_t plen = strlen (program);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    msgpack_pack_str_with_body (&pk, "name", 4);
    msgpack_pack_str_with_body (&pk, last->display, strlen (last->display));
    msgpack_pack_str_with_body (&pk, "publisher", 9);
    msgpack_pack_str_with_body (&pk, last->publisher, strlen (last->publisher));
    msgpack_pack_str_with_body (&pk, "category", 8);
    msgpack_pack_str_with_body (&pk, last->category, strlen (last->category));
    msgpack_pack_str_with_body (&pk, "votes", 5);
    msgpack_pack_uint32 (&pk, last->votes);
    int rc = af_store_put (txn, self->programs, program, plen, buffer.data, buffer.size, 0);
    msgpack_sbuffer_destroy (&buffer);

    uint8_t key [AF_MAX_PROGRAM + 1 + AF_ID_SIZE];
    memcpy (key, program, plen + 1);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        //  Program-level fields are the program's, whichever entry said them
        af_package_t package = entries [i]->package;
        memcpy (package.display, last->display, sizeof package.display);
        memcpy (package.publisher, last->publisher, sizeof package.publisher);
        memcpy (package.category, last->category, sizeof package.category);
        package.votes = last->votes;
        memcpy (key + plen + 1, entries [i]->fit.package_id, AF_ID_SIZE);
        zframe_t *packed = af_package_pack (&package);
        rc = af_store_put (txn, self->packages, key, plen + 1 + AF_ID_SIZE,
                           zframe_data (packed), zframe_size (packed), 0);
        zframe_destroy (&packed);
    }
    //  The fit value: previous packages of the program plus the new ones
    //  (same package ID: replaced), with their strings
    size_t total = 0, old_count = 0;
    fit_view_t old;
    MDB_val old_value;
    int got = rc? MDB_NOTFOUND: af_store_get (txn, self->fit, program, plen, &old_value);
    if (got == 0 && s_view (self, &old_value, &old) == 0)
        old_count = old.count;
    else
    if (got != 0 && got != MDB_NOTFOUND)
        rc = got;                       //  not "no packages yet": a store error
    af_fit_rec_t *recs = (af_fit_rec_t *) malloc ((old_count + count + 1) * sizeof (af_fit_rec_t));
    char (*names) [AF_MAX_VERSION_NAME + 1] = calloc (old_count + count + 1, AF_MAX_VERSION_NAME + 1);
    char (*links) [AF_MAX_LINK + 1] = calloc (old_count + count + 1, AF_MAX_LINK + 1);
    assert (recs && names && links);
    for (size_t i = 0; i < old_count; i++) {
        recs [total] = old.recs [i];
        size_t offset = old.recs [i].text;
        s_text (&old, &offset, names [total], sizeof names [total]);
        s_text (&old, &offset, links [total], sizeof links [total]);
        total++;
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        size_t k = 0;
        while (k < total && memcmp (recs [k].package_id, entries [i]->fit.package_id, AF_ID_SIZE))
            k++;
        recs [k] = entries [i]->fit;
        snprintf (names [k], sizeof names [k], "%s", entries [i]->package.version_name);
        snprintf (links [k], sizeof links [k], "%s", entries [i]->package.store_link);
        if (k == total)
            total++;
    }
    int code = rc? AF_E_INTERNAL: AF_OK;
    if (rc)
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
    else
    if (total > AF_MAX_PACKAGES_PER_PROGRAM) {
        snprintf (err, errlen, "program '%s' would have %zu packages (at most %d)",
                  program, total, AF_MAX_PACKAGES_PER_PROGRAM);
        code = AF_E_TOO_BIG;
    }
    if (code == AF_OK) {
        af_fit_head_t head = { (uint32_t) total,
                               (uint32_t) (sizeof (af_fit_head_t) + total * sizeof (af_fit_rec_t)) };
        size_t size = head.text + 4 + strlen (last->display) + strlen (last->publisher)
                    + strlen (last->category) + 3;
        for (size_t i = 0; i < total; i++)
            size += strlen (names [i]) + strlen (links [i]) + 2;
        uint8_t *data = (uint8_t *) zmalloc (size);
        memcpy (data, &head, sizeof head);
        uint8_t *p = data + head.text;
        memcpy (p, &last->votes, 4);
        p += 4;
        const char *meta [] = { last->display, last->publisher, last->category };
        for (int m = 0; m < 3; m++) {
            memcpy (p, meta [m], strlen (meta [m]) + 1);
            p += strlen (meta [m]) + 1;
        }
        for (size_t i = 0; i < total; i++) {
            recs [i].text = (uint32_t) (p - (data + head.text));
            memcpy (p, names [i], strlen (names [i]) + 1);
            p += strlen (names [i]) + 1;
            memcpy (p, links [i], strlen (links [i]) + 1);
            p += strlen (links [i]) + 1;
        }
        assert ((size_t) (p - data) == size);
        memcpy (data + sizeof head, recs, total * sizeof (af_fit_rec_t));
        rc = af_store_put (txn, self->fit, program, plen, data, size, 0);
        free (data);
        if (rc) {
            snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
            code = AF_E_INTERNAL;
        }
    }
    free (recs);
    free (names);
    free (links);
    return code;
}

//  Who signed an entry's file, under the package's key in signers
static int
s_put_signer (af_catalog_t *self, MDB_txn *txn, const af_catalog_entry_t *entry, char *err, size_t errlen)
{
    if (!entry->is_signed || !self->signers)
        return AF_OK;
    uint8_t key [AF_MAX_PROGRAM + 1 + AF_ID_SIZE];
    size_t plen = strlen (entry->package.program);
    memcpy (key, entry->package.program, plen + 1);
    memcpy (key + plen + 1, entry->fit.package_id, AF_ID_SIZE);
    int rc = af_store_put (txn, self->signers, key, plen + 1 + AF_ID_SIZE, entry->signer, AF_MINISIGN_KEYID_SIZE, 0);
    if (rc)
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
    return rc? AF_E_INTERNAL: AF_OK;
}

//  Sign the targets of one program: every package of it a publisher
//  signed (store links install from their platform's store and are not
//  targets). AF_OK, or a code of af_signer_targets with err.
static int
s_sign_program (af_catalog_t *self, MDB_txn *txn, const char *program, char *err, size_t errlen)
{
    size_t plen = strlen (program), count = 0;
    uint8_t key [AF_MAX_PROGRAM + 1 + AF_ID_SIZE];
    memcpy (key, program, plen + 1);
    af_target_entry_t *targets = (af_target_entry_t *) calloc (AF_MAX_PACKAGES_PER_PROGRAM, sizeof (af_target_entry_t));
    assert (targets);
    MDB_cursor *cursor = NULL;
    MDB_val k = { plen + 1, key }, v;
    int rc = mdb_cursor_open (txn, self->packages, &cursor);
    if (rc == 0)
        rc = mdb_cursor_get (cursor, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == plen + 1 + AF_ID_SIZE && memcmp (k.mv_data, key, plen + 1) == 0) {
        af_package_t package;
        MDB_val signer;
        char inner [128];
        if (af_store_get (txn, self->signers, k.mv_data, k.mv_size, &signer) == 0
        &&  signer.mv_size == AF_MINISIGN_KEYID_SIZE && count < AF_MAX_PACKAGES_PER_PROGRAM
        &&  af_package_unpack ((const uint8_t *) v.mv_data, v.mv_size, &package, inner, sizeof inner) == AF_OK
        &&  *package.hash) {
            af_target_entry_t *t = &targets [count++];
            snprintf (t->platform, sizeof t->platform, "%s", package.platform);
            t->version_code = package.version_code;
            snprintf (t->version_name, sizeof t->version_name, "%s", package.version_name);
            memcpy (t->hash, package.hash, sizeof t->hash);
            t->size = package.size;
            af_minisign_id ((const uint8_t *) signer.mv_data, t->publisher);
        }
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    int code = AF_OK;
    if (rc && rc != MDB_NOTFOUND) {
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
        code = AF_E_INTERNAL;
    }
    uint64_t version;
    if (code == AF_OK && count)
        code = af_signer_targets (self->signer, program, targets, count, self->expires_s, &version, err, errlen);
    free (targets);
    return code;
}

//  After an import: sign the targets of each program it touched
static int
s_sign_touched (af_catalog_t *self, af_catalog_entry_t **sorted, size_t count, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    if (rc)
        return snprintf (err, errlen, "store error: %s", mdb_strerror (rc)), AF_E_INTERNAL;
    int code = AF_OK;
    for (size_t i = 0; code == AF_OK && i < count; i++)
        if (i == 0 || strcmp (sorted [i]->package.program, sorted [i - 1]->package.program))
            code = s_sign_program (self, txn, sorted [i]->package.program, err, errlen);
    af_store_abort (self->store, &txn);
    return code;
}

int
af_catalog_resign (af_catalog_t *self, size_t *signed_count, char *err, size_t errlen)
{
    assert (self);
    *signed_count = 0;
    if (!self->writable || !self->signer)
        return snprintf (err, errlen, "the catalog has no trust installed (appferry-catalog trust)"), AF_E_FORBIDDEN;
    af_catalog_release (self);
    MDB_txn *txn = NULL;
    MDB_cursor *cursor = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    if (rc == 0)
        rc = mdb_cursor_open (txn, self->fit, &cursor);
    MDB_val key, value;
    int code = AF_OK;
    if (rc == 0)
        rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
    while (rc == 0 && code == AF_OK) {
        char program [AF_MAX_PROGRAM + 1];
        size_t plen = key.mv_size < sizeof program? key.mv_size: sizeof program - 1;
        memcpy (program, key.mv_data, plen);
        program [plen] = 0;
        code = s_sign_program (self, txn, program, err, errlen);
        (*signed_count)++;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    if (cursor)
        mdb_cursor_close (cursor);
    af_store_abort (self->store, &txn);
    if (code == AF_OK && rc != MDB_NOTFOUND) {
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
        code = AF_E_INTERNAL;
    }
    return code;
}

void
af_catalog_set_signing (af_catalog_t *self, bool allow_unsigned, uint64_t expires_s)
{
    assert (self);
    self->allow_unsigned = allow_unsigned;
    if (expires_s)
        self->expires_s = expires_s;
}

//  The publisher signature of every entry with a file. AF_OK, or with err
//  AF_E_FORBIDDEN (no trust and unsigned not allowed; a signature refused)
//  or a code of af_signer_check_file.
static int
s_check_signatures (af_catalog_t *self, af_catalog_entry_t *entries, size_t count, char *err, size_t errlen)
{
    for (size_t i = 0; self->writable && i < count; i++) {
        af_catalog_entry_t *entry = &entries [i];
        if (!*entry->file || (!self->signer && self->allow_unsigned))
            continue;
        if (!self->signer) {
            snprintf (err, errlen, "entry %zu (line %d): the catalog trusts no publisher yet: install the "
                      "root's documents (appferry-catalog trust), or import with --insecure-unsigned",
                      i, entry->line);
            return AF_E_FORBIDDEN;
        }
        char inner [600];
        int code = af_signer_check_file (self->signer, entry->package.program, entry->file, entry->signer,
                                         inner, sizeof inner);
        if (code != AF_OK) {
            snprintf (err, errlen, "entry %zu (line %d): %s", i, entry->line, inner);
            return code;
        }
        entry->is_signed = true;
    }
    return AF_OK;
}

static int
s_compare_program (const void *a, const void *b)
{
    const af_catalog_entry_t *x = *(af_catalog_entry_t * const *) a;
    const af_catalog_entry_t *y = *(af_catalog_entry_t * const *) b;
    int c = strcmp (x->package.program, y->package.program);
    return c? c: (x < y? -1: x > y);        //  stable: file order within a program
}

int
af_catalog_add (af_catalog_t *self, af_catalog_entry_t *entries, size_t count, char *err, size_t errlen)
{
    assert (self);
    if (!self->writable) {
        snprintf (err, errlen, "the catalog is open read-only");
        return AF_E_FORBIDDEN;
    }
    //  LMDB allows one transaction per thread: drop our read snapshot
    af_catalog_release (self);
    //  Files first: hash and store, so the transaction below cannot fail on I/O
    for (size_t i = 0; i < count; i++) {
        af_catalog_entry_t *entry = &entries [i];
        if (*entry->file) {
            char inner [512];
            int code = s_store_blob (self, entry->file, entry->fit.hash, &entry->fit.size, inner, sizeof inner);
            if (code != AF_OK) {
                snprintf (err, errlen, "entry %zu (line %d): %s", i, entry->line, inner);
                return code;
            }
        }
        entry->package.size = entry->fit.size;
        if (entry->fit.store_only)
            memset (entry->package.hash, 0, sizeof entry->package.hash);
        else
            sodium_bin2hex (entry->package.hash, sizeof entry->package.hash, entry->fit.hash, AF_HASH_SIZE);
        //  Package ID: derived from what identifies the package, so a
        //  re-import of the same entry replaces it instead of adding one
        crypto_generichash_state state;
        char code [24];
        snprintf (code, sizeof code, "%llu", (unsigned long long) entry->package.version_code);
        crypto_generichash_init (&state, NULL, 0, AF_ID_SIZE);
        crypto_generichash_update (&state, (const uint8_t *) entry->package.program, strlen (entry->package.program) + 1);
        crypto_generichash_update (&state, (const uint8_t *) entry->package.platform, strlen (entry->package.platform) + 1);
        crypto_generichash_update (&state, (const uint8_t *) code, strlen (code) + 1);
        if (entry->fit.store_only)
            crypto_generichash_update (&state, (const uint8_t *) entry->package.store_link, strlen (entry->package.store_link));
        else
            crypto_generichash_update (&state, entry->fit.hash, AF_HASH_SIZE);
        crypto_generichash_final (&state, entry->fit.package_id, AF_ID_SIZE);
        sodium_bin2hex (entry->package.package_id, sizeof entry->package.package_id,
                        entry->fit.package_id, AF_ID_SIZE);
        entry->package.price_cents = entry->fit.price_cents;
        memcpy (entry->package.currency, entry->fit.currency, AF_CURRENCY);
        entry->package.currency [entry->fit.currency [0]? AF_CURRENCY: 0] = 0;
    }
    af_catalog_entry_t **sorted = (af_catalog_entry_t **) malloc ((count + 1) * sizeof (void *));
    assert (sorted);
    for (size_t i = 0; i < count; i++)
        sorted [i] = &entries [i];
    qsort (sorted, count, sizeof (void *), s_compare_program);

    MDB_txn *txn = NULL;
    int rc = af_store_begin (self->store, true, &txn);
    int code = rc? AF_E_INTERNAL: AF_OK;
    if (rc)
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
    for (size_t start = 0; code == AF_OK && start < count; ) {
        size_t end = start + 1;
        while (end < count && strcmp (sorted [end]->package.program, sorted [start]->package.program) == 0)
            end++;
        rc = s_index_category (self, txn, &sorted [end - 1]->package);
        if (rc) {
            snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
            code = AF_E_INTERNAL;
        }
        else
            code = s_put_program (self, txn, sorted + start, end - start, err, errlen);
        for (size_t i = start; code == AF_OK && i < end; i++)
            code = s_put_signer (self, txn, sorted [i], err, errlen);
        start = end;
    }
    if (code == AF_OK && (rc = af_store_commit (self->store, &txn))) {
        snprintf (err, errlen, "store error: %s", mdb_strerror (rc));
        code = AF_E_INTERNAL;
    }
    af_store_abort (self->store, &txn);
    if (code == AF_OK && self->signer)
        code = s_sign_touched (self, sorted, count, err, errlen);
    free (sorted);
    return code;
}

//  --------------------------------------------------------------------------
//  Manifest parsing

static const char *s_keys [] = {
    "program", "name", "publisher", "category", "votes", "platform", "versionCode",
    "versionName", "minSdk", "maxSdk", "minOs", "maxOs", "abis", "minDensity", "maxDensity",
    "density", "minWidth", "minHeight", "formFactors", "price", "currency", "storeLink", "file", NULL
};

static int
s_str (json_t *obj, const char *key, char *buf, size_t size, bool required, char *err, size_t errlen)
{
    json_t *value = json_object_get (obj, key);
    if (!value) {
        if (required)
            snprintf (err, errlen, "field '%s' is missing", key);
        return required? -1: 0;
    }
    if (!json_is_string (value) || json_string_length (value) >= size || json_string_length (value) == 0) {
        snprintf (err, errlen, "field '%s': expected a string of 1..%zu bytes", key, size - 1);
        return -1;
    }
    memcpy (buf, json_string_value (value), json_string_length (value) + 1);
    return 0;
}

static int
s_uint (json_t *obj, const char *key, uint64_t max, uint64_t *out, bool required, char *err, size_t errlen)
{
    json_t *value = json_object_get (obj, key);
    if (!value) {
        if (required)
            snprintf (err, errlen, "field '%s' is missing", key);
        return required? -1: 0;
    }
    if (!json_is_integer (value) || json_integer_value (value) < 0
    ||  (uint64_t) json_integer_value (value) > max) {
        snprintf (err, errlen, "field '%s': expected an integer 0..%llu", key, (unsigned long long) max);
        return -1;
    }
    *out = (uint64_t) json_integer_value (value);
    return 0;
}

static int
s_version (json_t *obj, const char *key, uint32_t *out, char *err, size_t errlen)
{
    char text [AF_MAX_OSVERSION + 1];
    *out = 0;
    if (!json_object_get (obj, key))
        return 0;
    if (s_str (obj, key, text, sizeof text, true, err, errlen))
        return -1;
    if (af_version_parse (text, out) != AF_OK) {
        snprintf (err, errlen, "field '%s': '%s' is not a version like 14 or 16.4.1", key, text);
        return -1;
    }
    return 0;
}

//  Every key of the entry is one s_keys names. 0, or -1 with err.
static int
s_check_keys (json_t *obj, char *err, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        bool known = false;
        for (int i = 0; s_keys [i] && !known; i++)
            known = strcmp (s_keys [i], key) == 0;
        if (!known) {
            snprintf (err, errlen, "unknown field '%s'", key);
            return -1;
        }
    }
    return 0;
}

//  The package's names, platform, version, votes and price. 0, or -1
//  with err.
static int
s_parse_package (json_t *obj, af_catalog_entry_t *entry, char *err, size_t errlen)
{
    af_package_t *p = &entry->package;
    af_fit_rec_t *f = &entry->fit;
    uint64_t n;
    if (s_str (obj, "program", p->program, sizeof p->program, true, err, errlen))
        return -1;
    char why [128];
    if (af_program_check (p->program, why, sizeof why) != AF_OK) {
        snprintf (err, errlen, "field 'program': '%s' is %s", p->program, why);
        return -1;
    }
    if (s_str (obj, "name", p->display, sizeof p->display, false, err, errlen)
    ||  s_str (obj, "publisher", p->publisher, sizeof p->publisher, false, err, errlen)
    ||  s_str (obj, "category", p->category, sizeof p->category, false, err, errlen)
    ||  s_str (obj, "platform", p->platform, sizeof p->platform, true, err, errlen)
    ||  s_str (obj, "versionName", p->version_name, sizeof p->version_name, true, err, errlen)
    ||  s_str (obj, "storeLink", p->store_link, sizeof p->store_link, false, err, errlen))
        return -1;
    if (!*p->display)
        snprintf (p->display, sizeof p->display, "%s", p->program);
    af_platform_t platform = af_platform_from_name (p->platform);
    if (platform == AF_PLATFORM_NONE) {
        snprintf (err, errlen, "field 'platform': '%s' is not one of android, ios, harmonyos, "
                  "windows, macos, linux, tvos", p->platform);
        return -1;
    }
    f->platform = (uint8_t) platform;
    if (s_uint (obj, "versionCode", UINT64_MAX >> 1, &p->version_code, true, err, errlen))
        return -1;
    f->version_code = p->version_code;
    n = 0;
    if (s_uint (obj, "votes", UINT32_MAX, &n, false, err, errlen))
        return -1;
    p->votes = (uint32_t) n;
    n = 0;
    if (s_uint (obj, "price", AF_MAX_PRICE, &n, false, err, errlen))
        return -1;
    f->price_cents = (uint32_t) n;
    //  A price is in a currency's minor unit, so it needs the currency
    char currency [AF_CURRENCY + 2] = "";
    if (s_str (obj, "currency", currency, sizeof currency, n > 0, err, errlen))
        return -1;
    if (*currency && af_currency_check (currency, why, sizeof why) != AF_OK) {
        snprintf (err, errlen, "field 'currency': %s", why);
        return -1;
    }
    if (*currency && n == 0) {
        snprintf (err, errlen, "field 'currency': a free package has no currency");
        return -1;
    }
    memcpy (f->currency, currency, *currency? AF_CURRENCY: 0);
    return 0;
}

//  The OS versions it runs on: API levels for Android (minSdk, maxSdk),
//  release numbers for the others (minOs, maxOs). 0, or -1 with err.
static int
s_parse_os_range (json_t *obj, af_platform_t platform, af_fit_rec_t *f, char *err, size_t errlen)
{
    uint64_t n;
    if (platform == AF_PLATFORM_ANDROID) {
        if (json_object_get (obj, "minOs") || json_object_get (obj, "maxOs")) {
            snprintf (err, errlen, "field 'minOs'/'maxOs': Android packages give minSdk/maxSdk");
            return -1;
        }
        n = 0;
        if (s_uint (obj, "minSdk", AF_MAX_SDK, &n, true, err, errlen))
            return -1;
        if (n < 1) {
            snprintf (err, errlen, "field 'minSdk': expected an integer 1..%d", AF_MAX_SDK);
            return -1;
        }
        f->os_min = (uint32_t) n;
        n = 0;
        if (s_uint (obj, "maxSdk", AF_MAX_SDK, &n, false, err, errlen))
            return -1;
        f->os_max = (uint32_t) n;
    }
    else {
        if (json_object_get (obj, "minSdk") || json_object_get (obj, "maxSdk")) {
            snprintf (err, errlen, "field 'minSdk'/'maxSdk': only Android packages have them");
            return -1;
        }
        if (s_version (obj, "minOs", &f->os_min, err, errlen)
        ||  s_version (obj, "maxOs", &f->os_max, err, errlen))
            return -1;
    }
    if (f->os_max && f->os_max < f->os_min) {
        snprintf (err, errlen, "the maximum OS is below the minimum");
        return -1;
    }
    return 0;
}

//  The screen it needs: density range or exact density, smallest size in
//  pixels. 0, or -1 with err.
static int
s_parse_screen (json_t *obj, af_fit_rec_t *f, char *err, size_t errlen)
{
    static const char *densities [] = { "minDensity", "maxDensity", "density", "minWidth", "minHeight" };
    uint64_t dv [5] = { 0, 0, 0, 0, 0 };
    for (int i = 0; i < 5; i++)
        if (s_uint (obj, densities [i], i < 3? AF_MAX_DENSITY: AF_MAX_SCREEN, &dv [i], false, err, errlen))
            return -1;
    if (dv [1] && dv [1] < dv [0]) {
        snprintf (err, errlen, "field 'maxDensity': below minDensity");
        return -1;
    }
    f->density_min = (uint16_t) dv [0];
    f->density_max = (uint16_t) dv [1];
    f->density = (uint16_t) dv [2];
    f->min_short = (uint16_t) (dv [3] < dv [4]? dv [3]: dv [4]);
    f->min_long = (uint16_t) (dv [3] < dv [4]? dv [4]: dv [3]);
    return 0;
}

//  The ABIs it has code for, as a mask (none: any). 0, or -1 with err.
static int
s_parse_abis (json_t *obj, af_fit_rec_t *f, char *err, size_t errlen)
{
    json_t *abis = json_object_get (obj, "abis");
    if (abis) {
        size_t index;
        json_t *item;
        if (!json_is_array (abis)) {
            snprintf (err, errlen, "field 'abis': expected an array of ABI names");
            return -1;
        }
        json_array_foreach (abis, index, item) {
            int k = 0;
            while (k < AF_ABI_COUNT && !(json_is_string (item) && strcmp (json_string_value (item), af_abi_names [k]) == 0))
                k++;
            if (k == AF_ABI_COUNT) {
                snprintf (err, errlen, "field 'abis' entry %zu: not one of armeabi, armeabi-v7a, "
                          "arm64-v8a, x86, x86_64, mips, mips64, riscv64", index);
                return -1;
            }
            f->abi_mask |= 1u << k;
        }
    }
    return 0;
}

//  The form factors it is made for, as a mask (none: any). 0, or -1 with
//  err.
static int
s_parse_forms (json_t *obj, af_fit_rec_t *f, char *err, size_t errlen)
{
    json_t *forms = json_object_get (obj, "formFactors");
    if (forms) {
        size_t index;
        json_t *item;
        if (!json_is_array (forms)) {
            snprintf (err, errlen, "field 'formFactors': expected an array");
            return -1;
        }
        json_array_foreach (forms, index, item) {
            af_form_t form = json_is_string (item)? af_form_from_name (json_string_value (item)): AF_FORM_NONE;
            if (form == AF_FORM_NONE) {
                snprintf (err, errlen, "field 'formFactors' entry %zu: not one of phone, tablet, tv, pc, watch", index);
                return -1;
            }
            f->form_mask |= (uint8_t) (1u << form);
        }
    }
    return 0;
}

//  Where it installs from: the package file, below base_dir unless
//  absolute, or only the store's link. 0, or -1 with err.
static int
s_parse_file (json_t *obj, const char *base_dir, af_platform_t platform,
              af_catalog_entry_t *entry, char *err, size_t errlen)
{
    af_package_t *p = &entry->package;
    af_fit_rec_t *f = &entry->fit;
    //  iOS and tvOS install only from their store: a link, no file
    bool store_only = platform == AF_PLATFORM_IOS || platform == AF_PLATFORM_TVOS;
    char file [PATH_MAX] = "";
    if (s_str (obj, "file", file, sizeof file, false, err, errlen))
        return -1;
    if (store_only) {
        if (!*p->store_link || *file) {
            snprintf (err, errlen, "%s packages install only from the platform's store: give "
                      "'storeLink' and no 'file'", p->platform);
            return -1;
        }
        f->store_only = 1;
    }
    else {
        if (!*file) {
            snprintf (err, errlen, "field 'file' is missing");
            return -1;
        }
        if (file [0] == '/')
            snprintf (entry->file, sizeof entry->file, "%s", file);
        else
        if (snprintf (entry->file, sizeof entry->file, "%s/%s", base_dir, file) >= (int) sizeof entry->file) {
            snprintf (err, errlen, "field 'file': path too long");
            return -1;
        }
    }
    return 0;
}

//  Parse one entry object into entry. 0, or -1 with err.
static int
s_parse_entry (json_t *obj, const char *base_dir, af_catalog_entry_t *entry, char *err, size_t errlen)
{
    memset (entry, 0, sizeof *entry);
    if (!json_is_object (obj)) {
        snprintf (err, errlen, "expected an object");
        return -1;
    }
    if (s_check_keys (obj, err, errlen)
    ||  s_parse_package (obj, entry, err, errlen))
        return -1;
    af_platform_t platform = (af_platform_t) entry->fit.platform;
    if (s_parse_os_range (obj, platform, &entry->fit, err, errlen)
    ||  s_parse_screen (obj, &entry->fit, err, errlen)
    ||  s_parse_abis (obj, &entry->fit, err, errlen)
    ||  s_parse_forms (obj, &entry->fit, err, errlen)
    ||  s_parse_file (obj, base_dir, platform, entry, err, errlen))
        return -1;
    return 0;
}

//  The line on which each element of the top-level array starts. Returns
//  the count (lines in a new array), or -1 if the document is no array.
static int
s_element_lines (const char *text, size_t size, int **lines_p)
{
    size_t cap = 64, count = 0;
    int *lines = (int *) malloc (cap * sizeof (int));
    assert (lines);
    int line = 1, depth = 0;
    bool in_string = false, escape = false, expecting = false, array = false;
    for (size_t i = 0; i < size; i++) {
        char c = text [i];
        if (c == '\n')
            line++;
        if (in_string) {
            if (escape)
                escape = false;
            else
            if (c == '\\')
                escape = true;
            else
            if (c == '"')
                in_string = false;
            continue;
        }
        if (depth == 1 && expecting && !isspace ((unsigned char) c) && c != ']') {
            if (count == cap) {
                cap *= 2;
                lines = (int *) realloc (lines, cap * sizeof (int));
                assert (lines);
            }
            lines [count++] = line;
            expecting = false;
        }
        if (c == '"')
            in_string = true;
        else
        if (c == '[' || c == '{') {
            if (depth == 0) {
                array = c == '[';
                expecting = true;
            }
            depth++;
        }
        else
        if (c == ']' || c == '}')
            depth--;
        else
        if (c == ',' && depth == 1)
            expecting = true;
    }
    if (!array) {
        free (lines);
        return -1;
    }
    *lines_p = lines;
    return (int) count;
}

int
af_catalog_import (af_catalog_t *self, const char *manifest_path, size_t *imported,
                   char *err, size_t errlen)
{
    assert (self && imported);
    *imported = 0;
    FILE *file = fopen (manifest_path, "rb");
    if (!file) {
        snprintf (err, errlen, "%s: %s", manifest_path, strerror (errno));
        return AF_E_INTERNAL;
    }
    char *text = (char *) malloc (AF_MAX_MANIFEST + 1);
    assert (text);
    size_t size = fread (text, 1, AF_MAX_MANIFEST + 1, file);
    bool failed = ferror (file);
    fclose (file);
    if (failed || size > AF_MAX_MANIFEST) {
        if (failed)
            snprintf (err, errlen, "%s: cannot read it", manifest_path);
        else
            snprintf (err, errlen, "%s: larger than %d bytes", manifest_path, AF_MAX_MANIFEST);
        free (text);
        return failed? AF_E_INTERNAL: AF_E_TOO_BIG;
    }
    text [size] = 0;
    //  The whole document first, for syntax errors with their line
    json_error_t jerr;
    json_t *root = json_loadb (text, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_array (root)) {
        if (root)
            snprintf (err, errlen, "%s: the manifest must be a JSON array of package entries", manifest_path);
        else
            snprintf (err, errlen, "%s: line %d: %s", manifest_path, jerr.line, jerr.text);
        json_decref (root);
        free (text);
        return AF_E_MALFORMED;
    }
    int *lines = NULL;
    int count = s_element_lines (text, size, &lines);
    if (count != (int) json_array_size (root)) {
        snprintf (err, errlen, "%s: cannot locate the entries (found %d of %zu)", manifest_path,
                  count, json_array_size (root));
        json_decref (root);
        free (lines);
        free (text);
        return AF_E_MALFORMED;
    }
    char *copy = strdup (manifest_path);
    const char *base_dir = dirname (copy);
    af_catalog_entry_t *entries = (af_catalog_entry_t *) calloc ((size_t) count + 1, sizeof (af_catalog_entry_t));
    assert (entries);
    int code = AF_OK;
    for (int i = 0; i < count && code == AF_OK; i++) {
        char inner [400];
        if (s_parse_entry (json_array_get (root, (size_t) i), base_dir, &entries [i], inner, sizeof inner)) {
            snprintf (err, errlen, "%s: entry %d (line %d): %s", manifest_path, i, lines [i], inner);
            code = AF_E_MALFORMED;
        }
        entries [i].line = lines [i];
    }
    if (code == AF_OK) {
        char inner [900];
        code = s_check_signatures (self, entries, (size_t) count, inner, sizeof inner);
        if (code == AF_OK)
            code = af_catalog_add (self, entries, (size_t) count, inner, sizeof inner);
        if (code == AF_OK)
            *imported = (size_t) count;
        else
            snprintf (err, errlen, "%s: %s", manifest_path, inner);
    }
    json_decref (root);
    free (entries);
    free (copy);
    free (lines);
    free (text);
    return code;
}

//  --------------------------------------------------------------------------
//  Listing

int
af_catalog_list (af_catalog_t *self, FILE *out, bool json)
{
    assert (self);
    MDB_txn *txn = NULL;
    MDB_cursor *cursor = NULL;
    int rc = af_store_begin (self->store, false, &txn);
    if (rc == 0 && (rc = mdb_cursor_open (txn, self->fit, &cursor)))
        zsys_error ("catalog: cannot list: %s", mdb_strerror (rc));
    if (rc) {
        af_store_abort (self->store, &txn);
        return AF_E_INTERNAL;
    }
    json_t *doc = json_array ();
    MDB_val key, value;
    rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
    while (rc == 0) {
        char program [AF_MAX_PROGRAM + 1];
        size_t plen = key.mv_size < sizeof program? key.mv_size: sizeof program - 1;
        memcpy (program, key.mv_data, plen);
        program [plen] = 0;
        fit_view_t view;
        if (s_view (self, &value, &view)) {
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
            continue;
        }
        const af_fit_rec_t *recs = view.recs;
        size_t count = view.count;
        json_t *packages = json_array ();
        for (size_t i = 0; i < count; i++) {
            uint8_t pkey [AF_MAX_PROGRAM + 1 + AF_ID_SIZE];
            memcpy (pkey, program, plen + 1);
            memcpy (pkey + plen + 1, recs [i].package_id, AF_ID_SIZE);
            MDB_val record;
            af_package_t package;
            char err [128];
            if (af_store_get (txn, self->packages, pkey, plen + 1 + AF_ID_SIZE, &record)
            ||  af_package_unpack ((const uint8_t *) record.mv_data, record.mv_size, &package, err, sizeof err) != AF_OK)
                continue;
            char abis [128];
            s_abi_list (recs [i].abi_mask, abis, sizeof abis);
            if (json) {
                json_t *entry = (json_t *) af_package_to_jansson (&package);
                json_object_set_new (entry, "abis", json_string (abis));
                json_array_append_new (packages, entry);
            }
            else
                fprintf (out, "%-16s %-9s %-14s %10llu bytes  %s%s\n", program, package.platform,
                         package.version_name, (unsigned long long) package.size,
                         recs [i].store_only? package.store_link: *abis? abis: "any ABI", "");
        }
        if (json)
            json_array_append_new (doc, json_pack ("{s:s, s:o}", "program", program, "packages", packages));
        else
            json_decref (packages);
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    af_store_abort (self->store, &txn);
    if (json) {
        char *text = json_dumps (doc, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        fprintf (out, "%s\n", text);
        free (text);
    }
    json_decref (doc);
    if (rc != MDB_NOTFOUND)
        zsys_error ("catalog: cannot list: %s", mdb_strerror (rc));
    return rc == MDB_NOTFOUND? AF_OK: AF_E_INTERNAL;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

//  Both hex encoders agree with libsodium on every byte value
static void
s_test_hex (void)
{
    uint8_t bytes [256];
    for (int i = 0; i < 256; i++)
        bytes [i] = (uint8_t) (i * 7 + 3);
    char hex [513], words [513], expected [513];
    sodium_bin2hex (expected, sizeof expected, bytes, sizeof bytes);
    s_hex (hex, bytes, sizeof bytes);
    s_hex_words (words, bytes, sizeof bytes);
    assert (streq (hex, expected) && streq (words, expected));
}

//  A text keeps what snprintf would: the first size - 1 characters
static void
s_test_text (void)
{
    char small [8], big [64];
    text_t text;
    s_begin (&text, small, sizeof small);
    s_put (&text, "abc");
    s_put_uint (&text, 4294967295u);
    assert (streq (small, "abc4294"));
    s_put_literal (&text, "more");
    assert (streq (small, "abc4294") && text.len == 7);
    s_begin (&text, big, sizeof big);
    s_put_uint (&text, 0);
    s_put_literal (&text, "-");
    s_put_uint (&text, 65535);
    assert (streq (big, "0-65535"));
}

//  The manifest's three entries import; a device gets the package that
//  fits it best, or why none does; a second import changes nothing
static void
s_test_import_and_resolve (af_catalog_t *catalog, const char *manifest, af_device_t *device)
{
    char err [1024];
    size_t n = 0;
    int code = af_catalog_import (catalog, manifest, &n, err, sizeof err);
    if (code != AF_OK)
        printf ("import: %s\n", err);
    assert (code == AF_OK && n == 3);

    assert (af_device_from_json (device,
        "{\"sdkVersion\":30,\"supportedAbis\":[\"armeabi-v7a\",\"arm64-v8a\"],\"screenDensity\":400,"
        "\"model\":\"T\",\"formFactor\":\"phone\",\"screenWidth\":1080,\"screenHeight\":1920}", err, sizeof err) == AF_OK);
    af_resolution_t result;
    assert (af_catalog_resolve (catalog, "app", device, &result) == AF_OK);
    assert (result.fit == AF_FIT_PACKAGE);
    assert (strcmp (result.package.abi, "armeabi-v7a") == 0);       //  device's first choice
    assert (result.package.size == strlen ("package b, a little bigger"));
    char blob [PATH_MAX];
    assert (af_catalog_blob_path (catalog, result.package.hash, blob, sizeof blob) == AF_OK);
    assert (access (blob, R_OK) == 0);

    device->sdk = 25;
    assert (af_catalog_resolve (catalog, "app", device, &result) == AF_OK);
    assert (result.fit == AF_FIT_NONE);
    assert (strcmp (result.reason, "needs Android 8.0 or later; device runs Android 7.1") == 0);
    assert (af_catalog_resolve (catalog, "nothing", device, &result) == AF_OK);
    assert (result.fit == AF_FIT_UNKNOWN_PROGRAM);

    //  Re-import is idempotent
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_OK && n == 3);
    device->sdk = 30;
    assert (af_catalog_resolve (catalog, "app", device, &result) == AF_OK);
    assert (result.fit == AF_FIT_PACKAGE);
}

//  A price needs an ISO 4217 currency, a free package has none, and the
//  currency reaches the resolution beside the price
static void
s_test_currency (af_catalog_t *catalog, const char *manifest)
{
    char err [1024], text [512];
    size_t n;
    const char *bad [] = { "\"price\": 499", "\"price\": 499, \"currency\": \"eur\"",
                           "\"price\": 499, \"currency\": \"EURO\"", "\"currency\": \"EUR\"",
                           "\"price\": 100000001, \"currency\": \"EUR\"", NULL };
    for (int i = 0; bad [i]; i++) {
        snprintf (text, sizeof text, "[ { \"program\": \"paid\", \"platform\": \"linux\", \"versionCode\": 1,\n"
                  "    \"versionName\": \"1\", \"file\": \"a.tar\", %s } ]\n", bad [i]);
        s_write (manifest, text);
        assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_MALFORMED);
        assert (strstr (err, i == 4? "price": "currency"));
    }
    snprintf (text, sizeof text, "[ { \"program\": \"paid\", \"platform\": \"linux\", \"versionCode\": 1,\n"
              "    \"versionName\": \"1\", \"file\": \"a.tar\", \"price\": 499, \"currency\": \"CNY\" } ]\n");
    s_write (manifest, text);
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_OK && n == 1);
    af_device_t pc;
    assert (af_device_from_json (&pc, "{\"platform\":\"linux\",\"osVersion\":\"6\",\"model\":\"PC\","
                                 "\"formFactor\":\"pc\"}", err, sizeof err) == AF_OK);
    af_resolution_t result;
    assert (af_catalog_resolve (catalog, "paid", &pc, &result) == AF_OK && result.fit == AF_FIT_PACKAGE);
    assert (result.package.price_cents == 499 && streq (result.package.currency, "CNY"));
}

//  A bad entry imports nothing and names the entry and line
static void
s_test_bad_entries (af_catalog_t *catalog, const char *manifest, af_device_t *device)
{
    char err [1024];
    af_resolution_t result;
    size_t n = 99;
    s_write (manifest,
        "[\n"
        "  { \"program\": \"other\", \"platform\": \"linux\", \"versionCode\": 1, \"versionName\": \"1\",\n"
        "    \"file\": \"a.tar\" },\n"
        "  { \"program\": \"other\", \"platform\": \"linux\", \"versionCode\": \"1\",\n"
        "    \"versionName\": \"1\", \"file\": \"a.tar\" }\n"
        "]\n");
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_MALFORMED && n == 0);
    assert (strstr (err, "entry 1 (line 4)") && strstr (err, "versionCode"));
    assert (af_catalog_resolve (catalog, "other", device, &result) == AF_OK);
    assert (result.fit == AF_FIT_UNKNOWN_PROGRAM);
    //  A program ID is a name that becomes a file name on nodes, never a
    //  path: the same rule as the decoder's (af_program_check)
    const char *paths [] = { "../etc", "a/b", "..", ".hidden", "a..b", "-x" };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++) {
        char text [512];
        snprintf (text, sizeof text,
            "[ { \"program\": \"%s\", \"platform\": \"linux\", \"versionCode\": 1,\n"
            "    \"versionName\": \"1\", \"file\": \"a.tar\" } ]\n", paths [i]);
        s_write (manifest, text);
        assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_MALFORMED);
        assert (strstr (err, "entry 0") && strstr (err, "field 'program'") && strstr (err, "not a program ID"));
    }
    s_test_currency (catalog, manifest);
}

//  Each refusal has its code: a file that cannot be read, a manifest that
//  is no array, a program over AF_MAX_PACKAGES_PER_PROGRAM; blob paths
static void
s_test_codes (af_catalog_t *catalog, const char *dir, const char *manifest)
{
    char err [1024], path [600];
    size_t n = 99;
    snprintf (path, sizeof path, "%s/no-such-manifest.json", dir);
    assert (af_catalog_import (catalog, path, &n, err, sizeof err) == AF_E_INTERNAL && n == 0);
    assert (strstr (err, "No such file"));
    s_write (manifest, "{ \"program\": \"x\" }\n");
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_MALFORMED && strstr (err, "JSON array"));
    s_write (manifest, "[ { \"program\": \"other\", \"platform\": \"linux\", \"versionCode\": 1,\n"
                       "    \"versionName\": \"1\", \"file\": \"missing.tar\" } ]\n");
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "entry 0 (line 1)") && strstr (err, "cannot read package file"));
    s_write (manifest, "[ { \"program\": \"other\", \"platform\": \"linux\", \"versionCode\": 1,\n"
                       "    \"versionName\": \"1\", \"file\": \".\" } ]\n");
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_MALFORMED && strstr (err, "not a regular file"));
    //  One package too many for a program: nothing of it added
    size_t count = AF_MAX_PACKAGES_PER_PROGRAM + 1;
    af_catalog_entry_t *entries = (af_catalog_entry_t *) calloc (count, sizeof *entries);
    assert (entries);
    for (size_t i = 0; i < count; i++) {
        snprintf (entries [i].package.program, sizeof entries [i].package.program, "many");
        snprintf (entries [i].package.platform, sizeof entries [i].package.platform, "linux");
        snprintf (entries [i].package.version_name, sizeof entries [i].package.version_name, "%zu", i);
        entries [i].package.version_code = entries [i].fit.version_code = i + 1;
        entries [i].fit.platform = AF_PLATFORM_LINUX;
        entries [i].fit.hash [0] = (uint8_t) i;
    }
    assert (af_catalog_add (catalog, entries, count, err, sizeof err) == AF_E_TOO_BIG && strstr (err, "at most"));
    assert (af_catalog_add (catalog, entries, count - 1, err, sizeof err) == AF_OK);
    free (entries);
    //  Blob paths: from a hash, refused for what is not one
    char blob [PATH_MAX], hash [AF_HASH_HEX + 1];
    memset (hash, 'a', AF_HASH_HEX);
    hash [AF_HASH_HEX] = 0;
    assert (af_catalog_blob_path (catalog, hash, blob, sizeof blob) == AF_OK && strstr (blob, "/blobs/aa/aaaa"));
    assert (af_catalog_blob_path (catalog, hash, blob, 16) == AF_E_TOO_BIG);
    hash [0] = 'A';
    assert (af_catalog_blob_path (catalog, hash, blob, sizeof blob) == AF_E_MALFORMED);
    assert (af_catalog_blob_path (catalog, "ab", blob, sizeof blob) == AF_E_MALFORMED);
    FILE *null = fopen ("/dev/null", "w");
    assert (null);
    assert (af_catalog_list (catalog, null, true) == AF_OK);
    fclose (null);
}

void
af_catalog_test (bool verbose)
{
    if (verbose)
        printf (" * af_catalog: ");
    s_test_hex ();
    s_test_text ();

    char dir [] = "/tmp/af_catalog_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [512], manifest [512];
    snprintf (path, sizeof path, "%s/a.tar", dir);
    s_write (path, "package a");
    snprintf (path, sizeof path, "%s/b.tar", dir);
    s_write (path, "package b, a little bigger");
    snprintf (manifest, sizeof manifest, "%s/manifest.json", dir);
    s_write (manifest,
        "[\n"
        "  { \"program\": \"app\", \"platform\": \"android\", \"versionCode\": 2, \"versionName\": \"2.0\",\n"
        "    \"minSdk\": 26, \"abis\": [\"arm64-v8a\"], \"file\": \"a.tar\" },\n"
        "  { \"program\": \"app\", \"platform\": \"android\", \"versionCode\": 2, \"versionName\": \"2.0\",\n"
        "    \"minSdk\": 26, \"abis\": [\"armeabi-v7a\"], \"file\": \"b.tar\" },\n"
        "  { \"program\": \"app\", \"platform\": \"ios\", \"versionCode\": 2, \"versionName\": \"2.0\",\n"
        "    \"minOs\": \"15.0\", \"storeLink\": \"https://example.com/app\" }\n"
        "]\n");
    char catdir [600];
    snprintf (catdir, sizeof catdir, "%s/catalog", dir);
    af_catalog_t *catalog = af_catalog_new (catdir, true);
    af_catalog_set_signing (catalog, true, 0);      //  unsigned here: af_signer and it_signed test signing
    assert (catalog);
    af_device_t device;
    s_test_import_and_resolve (catalog, manifest, &device);
    s_test_bad_entries (catalog, manifest, &device);
    s_test_codes (catalog, dir, manifest);
    af_catalog_destroy (&catalog);
    assert (catalog == NULL);

    //  Read-only: resolves, adds nothing
    catalog = af_catalog_new (catdir, false);
    assert (catalog);
    af_resolution_t result;
    assert (af_catalog_resolve (catalog, "app", &device, &result) == AF_OK && result.fit == AF_FIT_PACKAGE);
    char err [256];
    size_t n;
    assert (af_catalog_import (catalog, manifest, &n, err, sizeof err) == AF_E_FORBIDDEN && strstr (err, "read-only"));
    af_catalog_destroy (&catalog);
    char command [700];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
