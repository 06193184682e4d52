/*  =========================================================================
    af_trust_targets - a targets document read in one pass, for the one
    target an offer names (af_trust_targets_check, af_trust.h)

    A program of 256 packages has a 46 KB targets document, and jansson's
    tree of it (a hash table and an allocation per member) was 8.5 M of
    the 12 M instructions of a check (bench_trust, callgrind). A device
    needs one target of it, so this reader builds nothing: it checks the
    whole text is JSON (RFC 8259: strings with valid escapes and UTF-8,
    integers that fit, nesting at most AF_MAX_META_DEPTH, nothing after
    the value), reads the head, and keeps the first target whose hash is
    the one offered. A member it knows that appears twice is refused (so
    two readers cannot see two documents); members it does not know are
    read and skipped.

    It runs only on a document whose signature af_trust_check verified,
    but is as strict as if it did not (fuzz_trust holds it to jansson).
    =========================================================================
*/
#include <czmq.h>
#include "af_trust.h"

#include <assert.h>

typedef struct {
    const char *at, *end;
    int depth;
} scan_t;

static void
s_ws (scan_t *s)
{
    while (s->at < s->end && (*s->at == ' ' || *s->at == '\n' || *s->at == '\r' || *s->at == '\t'))
        s->at++;
}

//  The next character (after white space) is c: consume it
static bool
s_take (scan_t *s, char c)
{
    s_ws (s);
    if (s->at < s->end && *s->at == c) {
        s->at++;
        return true;
    }
    return false;
}

static int
s_hex4 (scan_t *s, uint32_t *value)
{
    if (s->end - s->at < 4)
        return -1;
    *value = 0;
    for (int i = 0; i < 4; i++) {
        char c = *s->at++;
        int digit = c >= '0' && c <= '9'? c - '0': c >= 'a' && c <= 'f'? c - 'a' + 10: c >= 'A' && c <= 'F'? c - 'A' + 10: -1;
        if (digit < 0)
            return -1;
        *value = *value << 4 | (uint32_t) digit;
    }
    return 0;
}

//  One UTF-8 sequence starting at lead (consumed), strictly: no overlong
//  forms, no surrogates, nothing above U+10FFFF. Its length, or 0.
static size_t
s_utf8 (scan_t *s, unsigned char lead)
{
    size_t more = lead >= 0xC2 && lead <= 0xDF? 1: lead >= 0xE0 && lead <= 0xEF? 2: lead >= 0xF0 && lead <= 0xF4? 3: 0;
    if (!more || (size_t) (s->end - s->at) < more)
        return 0;
    const unsigned char *next = (const unsigned char *) s->at;
    for (size_t i = 0; i < more; i++)
        if ((next [i] & 0xC0) != 0x80)
            return 0;
    if ((lead == 0xE0 && next [0] < 0xA0) || (lead == 0xED && next [0] > 0x9F)
    ||  (lead == 0xF0 && next [0] < 0x90) || (lead == 0xF4 && next [0] > 0x8F))
        return 0;
    s->at += more;
    return more + 1;
}

//  Append count bytes to a string being read
static void
s_append (char *out, size_t size, size_t *n, bool *room, const char *from, size_t count)
{
    if (out && *room && *n + count < size) {
        memcpy (out + *n, from, count);
        *n += count;
    }
    else
        *room = false;
}

//  A string. Its bytes, unescaped, into out (size bytes, NUL-terminated)
//  unless out is NULL; *fits false if they did not fit. 0 or -1.
static int
s_string (scan_t *s, char *out, size_t size, bool *fits)
{
    s_ws (s);
    if (s->at >= s->end || *s->at != '"')
        return -1;
    s->at++;
    size_t n = 0;
    bool room = true;
    while (true) {
        //  A run of plain ASCII, copied at once: all a targets document has
        const char *run = s->at;
        while (s->at < s->end && (unsigned char) *s->at >= 0x20 && (unsigned char) *s->at < 0x80
               && *s->at != '"' && *s->at != '\\')
            s->at++;
        if (s->at > run)
            s_append (out, size, &n, &room, run, (size_t) (s->at - run));
        if (s->at >= s->end)
            return -1;
        const char *from = s->at;
        unsigned char c = (unsigned char) *s->at++;
        char bytes [4];
        size_t count;
        if (c == '"') {
            if (out)
                out [room? n: 0] = 0;
            if (fits)
                *fits = room;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (s->at >= s->end)
                return -1;
            uint32_t cp;
            char e = *s->at++;
            switch (e) {
                case '"': case '\\': case '/': cp = (uint32_t) e; break;
                case 'b': cp = '\b'; break;
                case 'f': cp = '\f'; break;
                case 'n': cp = '\n'; break;
                case 'r': cp = '\r'; break;
                case 't': cp = '\t'; break;
                case 'u':
                    if (s_hex4 (s, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                        return -1;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        uint32_t low;
                        if (s->end - s->at < 2 || s->at [0] != '\\' || s->at [1] != 'u')
                            return -1;
                        s->at += 2;
                        if (s_hex4 (s, &low) || low < 0xDC00 || low > 0xDFFF)
                            return -1;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    break;
                default:
                    return -1;
            }
            if (cp < 0x80)
                bytes [0] = (char) cp, count = 1;
            else
            if (cp < 0x800)
                bytes [0] = (char) (0xC0 | cp >> 6), bytes [1] = (char) (0x80 | (cp & 0x3F)), count = 2;
            else
            if (cp < 0x10000)
                bytes [0] = (char) (0xE0 | cp >> 12), bytes [1] = (char) (0x80 | (cp >> 6 & 0x3F)),
                bytes [2] = (char) (0x80 | (cp & 0x3F)), count = 3;
            else
                bytes [0] = (char) (0xF0 | cp >> 18), bytes [1] = (char) (0x80 | (cp >> 12 & 0x3F)),
                bytes [2] = (char) (0x80 | (cp >> 6 & 0x3F)), bytes [3] = (char) (0x80 | (cp & 0x3F)), count = 4;
            from = bytes;
        }
        else
        if ((count = s_utf8 (s, c)) == 0)
            return -1;
        s_append (out, size, &n, &room, from, count);
    }
}

//  A number; *integer true and *value set if it is an integer (no
//  fraction, no exponent) that fits in 63 bits. 0 or -1.
static int
s_number (scan_t *s, bool *integer, int64_t *value)
{
    s_ws (s);
    const char *p = s->at;
    bool negative = p < s->end && *p == '-';
    p += negative;
    if (p >= s->end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < s->end && p [1] >= '0' && p [1] <= '9'))
        return -1;
    uint64_t v = 0;
    bool over = false;
    while (p < s->end && *p >= '0' && *p <= '9') {
        over = over || v > (uint64_t) (INT64_MAX - (*p - '0')) / 10;
        v = v * 10 + (uint64_t) (*p++ - '0');
    }
    *integer = true;
    if (p < s->end && *p == '.') {
        if (++p >= s->end || *p < '0' || *p > '9')
            return -1;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        *integer = false;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return -1;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        *integer = false;
    }
    if (*integer && over)
        return -1;                      //  as jansson: an integer too big is an error
    s->at = p;
    //  v may have wrapped in a number that is not an integer: not used
    *value = !*integer? 0: negative? -(int64_t) v: (int64_t) v;
    return 0;
}

static int s_skip (scan_t *s);

//  An object or array, its members skipped
static int
s_skip_nested (scan_t *s, bool object)
{
    if (++s->depth > AF_MAX_META_DEPTH)
        return -1;
    if (!s_take (s, object? '}': ']')) {
        do {
            if ((object && (s_string (s, NULL, 0, NULL) || !s_take (s, ':'))) || s_skip (s))
                return -1;
        } while (s_take (s, ','));
        if (!s_take (s, object? '}': ']'))
            return -1;
    }
    s->depth--;
    return 0;
}

//  Any value, read and dropped
static int
s_skip (scan_t *s)
{
    s_ws (s);
    if (s->at >= s->end)
        return -1;
    bool integer;
    int64_t value;
    size_t left = (size_t) (s->end - s->at);
    switch (*s->at) {
        case '"': return s_string (s, NULL, 0, NULL);
        case '{': s->at++; return s_skip_nested (s, true);
        case '[': s->at++; return s_skip_nested (s, false);
        case 't': return left >= 4 && memcmp (s->at, "true", 4) == 0? (s->at += 4, 0): -1;
        case 'f': return left >= 5 && memcmp (s->at, "false", 5) == 0? (s->at += 5, 0): -1;
        case 'n': return left >= 4 && memcmp (s->at, "null", 4) == 0? (s->at += 4, 0): -1;
        default:  return s_number (s, &integer, &value);
    }
}

//  A member's name, among names (its index), or -1 for another name; -2 if
//  the text is not a name and ':'. A known name seen before (bit set in
//  *seen) is an error too (-2).
static int
s_member (scan_t *s, const char *const *names, int count, uint32_t *seen)
{
    char name [32];
    bool fits;
    if (s_string (s, name, sizeof name, &fits) || !s_take (s, ':'))
        return -2;
    for (int i = 0; fits && i < count; i++)
        if (streq (name, names [i])) {
            if (*seen & (1u << i))
                return -2;
            *seen |= 1u << i;
            return i;
        }
    return -1;
}

//  A string member that must fit in out; an integer member
static int
s_str_field (scan_t *s, char *out, size_t size)
{
    bool fits;
    return s_string (s, out, size, &fits) == 0 && fits? 0: -1;
}

static int
s_int_field (scan_t *s, int64_t *value)
{
    bool integer;
    return s_number (s, &integer, value) == 0 && integer? 0: -1;
}

//  What the reader kept of a targets document
typedef struct {
    char type [32];
    char program [AF_MAX_PROGRAM + 1];
    int64_t version, expires;
    uint32_t seen;                      //  bits of the head's members read
    bool found;                         //  a target has the hash wanted
    uint32_t found_seen;                //  which of its members it had
    af_target_entry_t target;           //  that target
    char where [80];                    //  what did not parse
} targets_read_t;

enum { T_TYPE, T_PROGRAM, T_VERSION, T_EXPIRES, T_TARGETS };
enum { E_PLATFORM, E_CODE, E_NAME, E_HASH, E_SIZE, E_PUBLISHER };

//  One target object: kept if its hash is wanted and none was found yet
static int
s_target_read (scan_t *s, const char *hash, targets_read_t *read)
{
    static const char *const names [] = { "platform", "versionCode", "versionName", "hash", "size", "publisher" };
    af_target_entry_t t;
    int64_t code = -1, size = -1;
    uint32_t seen = 0;
    bool hash_fits = false;
    memset (&t, 0, sizeof t);
    if (!s_take (s, '{'))
        return -1;
    if (++s->depth > AF_MAX_META_DEPTH)
        return -1;
    if (!s_take (s, '}')) {
        do {
            int rc, member = s_member (s, names, 6, &seen);
            switch (member) {
                case -2:          return -1;
                case E_PLATFORM:  rc = s_str_field (s, t.platform, sizeof t.platform); break;
                case E_CODE:      rc = s_int_field (s, &code); break;
                case E_NAME:      rc = s_str_field (s, t.version_name, sizeof t.version_name); break;
                case E_HASH:      rc = s_string (s, t.hash, sizeof t.hash, &hash_fits); break;
                case E_SIZE:      rc = s_int_field (s, &size); break;
                case E_PUBLISHER: rc = s_str_field (s, t.publisher, sizeof t.publisher); break;
                default:          rc = s_skip (s);
            }
            if (rc)
                return -1;
        } while (s_take (s, ','));
        if (!s_take (s, '}'))
            return -1;
    }
    s->depth--;
    if (!read->found && hash_fits && streq (t.hash, hash)) {
        read->found = true;
        read->found_seen = seen;
        t.version_code = code < 0? UINT64_MAX: (uint64_t) code;
        t.size = size < 0? UINT64_MAX: (uint64_t) size;
        read->target = t;
    }
    return 0;
}

//  Read a targets document for the target of hash. 0, or -1 with
//  read->where naming the byte it stopped at.
static int
s_targets_read (const char *text, size_t len, const char *hash, targets_read_t *read)
{
    static const char *const names [] = { "type", "program", "version", "expires", "targets" };
    scan_t s = { text, text + len, 1 };
    memset (read, 0, sizeof *read);
    read->version = read->expires = -1;
    int rc = s_take (&s, '{')? 0: -1;
    if (rc == 0 && !s_take (&s, '}')) {
        do {
            int member = s_member (&s, names, 5, &read->seen);
            switch (member) {
                case -2:        rc = -1; break;
                case T_TYPE:    rc = s_str_field (&s, read->type, sizeof read->type); break;
                case T_PROGRAM: rc = s_str_field (&s, read->program, sizeof read->program); break;
                case T_VERSION: rc = s_int_field (&s, &read->version); break;
                case T_EXPIRES: rc = s_int_field (&s, &read->expires); break;
                case T_TARGETS:
                    rc = s_take (&s, '[')? 0: -1;
                    if (rc == 0 && !s_take (&s, ']')) {
                        do
                            rc = s_target_read (&s, hash, read);
                        while (rc == 0 && s_take (&s, ','));
                        if (rc == 0 && !s_take (&s, ']'))
                            rc = -1;
                    }
                    break;
                default:        rc = s_skip (&s);
            }
        } while (rc == 0 && s_take (&s, ','));
        if (rc == 0 && !s_take (&s, '}'))
            rc = -1;
    }
    s_ws (&s);
    if (rc == 0 && s.at != s.end)
        rc = -1;
    if (rc)
        snprintf (read->where, sizeof read->where, "not valid JSON, or a member twice or mistyped, at byte %zu",
                  (size_t) (s.at - text));
    return rc;
}

int
af_trust_targets_check (const char *text, size_t len, const af_trust_want_t *want, af_trust_seen_t *seen,
                        char *err, size_t errlen)
{
    assert (text && want && seen);
    targets_read_t read;
    if (s_targets_read (text, len, want->hash, &read))
        return snprintf (err, errlen, "targets metadata: %s", read.where), AF_E_MALFORMED;
    if (!(read.seen & (1u << T_TYPE)) || strcmp (read.type, AF_TRUST_TARGETS_TYPE))
        return snprintf (err, errlen, "not an %s document", AF_TRUST_TARGETS_TYPE), AF_E_MALFORMED;
    if (read.version < 1 || read.expires < 0)
        return snprintf (err, errlen, "%s: 'version' (1 or more) and 'expires' (ms) must be integers",
                         AF_TRUST_TARGETS_TYPE), AF_E_MALFORMED;
    uint64_t version = (uint64_t) read.version, expires = (uint64_t) read.expires;
    if (!(read.seen & (1u << T_PROGRAM)) || strcmp (read.program, want->program))
        return snprintf (err, errlen, "the signed targets are for program '%s', not '%s'",
                         read.seen & (1u << T_PROGRAM)? read.program: "?", want->program), AF_E_FORBIDDEN;
    if (expires <= want->now)
        return snprintf (err, errlen, "the targets metadata of '%s' (version %llu) expired %llu s ago", want->program,
                         (unsigned long long) version, (unsigned long long) ((want->now - expires) / 1000)), AF_E_FORBIDDEN;
    if (version < seen->targets)
        return snprintf (err, errlen, "rollback: the targets metadata of '%s' is version %llu, older than version "
                         "%llu seen already", want->program, (unsigned long long) version,
                         (unsigned long long) seen->targets), AF_E_FORBIDDEN;
    if (!read.found)
        return snprintf (err, errlen, "no signed target of '%s' has hash %.16s... (not a package of the store)",
                         want->program, want->hash), AF_E_FORBIDDEN;
    const af_target_entry_t *t = &read.target;
    if (t->size != want->size || t->version_code != want->version_code)
        return snprintf (err, errlen, "the offer's size or version of %.16s... differs from the signed target",
                         want->hash), AF_E_FORBIDDEN;
    if (want->version_name && (!(read.found_seen & (1u << E_NAME)) || strcmp (t->version_name, want->version_name)))
        return snprintf (err, errlen, "the offer's version name %s of %.16s... is not the signed target's",
                         want->version_name, want->hash), AF_E_FORBIDDEN;
    seen->targets = version;
    snprintf (seen->key_id, sizeof seen->key_id, "%s", t->publisher);
    return AF_OK;
}
