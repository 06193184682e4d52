/*  =========================================================================
    af_contacts - address books from vCard and CSV files (see af_contacts.h)

    One pass over the bytes, which stay where they are: a vCard file is
    read line by line, each logical line (folded lines and quoted-printable
    soft breaks joined) gathered into one bounded buffer of
    AF_MAX_CONTACT_LINE bytes; what does not fit is still read past, so a
    skipped property (a photo of megabytes) costs only the scan, and one
    we read that is too long is refused. A CSV row is gathered the same way.
    Nothing grows with a line's length but the scan; memory grows with the
    contacts kept, which are bounded (AF_MAX_CONTACTS x AF_MAX_CONTACT_NUMBERS).
    =========================================================================
*/
#include "af_contacts.h"
#include "af_phone.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define s_eq(a, b) (strcmp ((a), (b)) == 0)

struct _af_contacts_t {
    char format [8];
    af_contact_t *contacts;
    size_t count, alloc;
    char (*numbers) [AF_E164_SIZE];         //  distinct, sorted
    size_t number_count;
    char (*refusals) [AF_MAX_REASON + 1];   //  the first AF_MAX_CONTACT_REJECTS
    size_t refusal_count;
    af_contacts_stats_t stats;
};

//  The parse: the input, where we are, and the logical line being read
typedef struct {
    af_contacts_t *book;
    const char *data;
    size_t size;
    size_t pos;
    uint32_t line;                          //  physical lines consumed
    char country [3];
    char buf [AF_MAX_CONTACT_LINE + 1];     //  the logical line, or its start
    size_t len;
    bool too_long;                          //  more than fits in buf
    char *err;
    size_t errlen;
} parser_t;

//  A card or row being read
typedef struct {
    uint32_t line;
    char version [8];
    char fn [AF_MAX_CONTACT_NAME + 1];
    char n [AF_MAX_CONTACT_NAME + 1];
    af_contact_t contact;
    uint32_t tried;                         //  numbers seen, kept or not
    uint32_t left_out;                      //  numbers beyond AF_MAX_CONTACT_NUMBERS
} card_t;

//  --------------------------------------------------------------------------
//  The book

static af_contacts_t *
s_book_new (const char *format)
{
    af_contacts_t *self = (af_contacts_t *) calloc (1, sizeof (af_contacts_t));
    if (self)
        snprintf (self->format, sizeof self->format, "%s", format);
    return self;
}

void
af_contacts_destroy (af_contacts_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->contacts);
        free ((*self_p)->numbers);
        free ((*self_p)->refusals);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Record a refused item with its reason (printf-style)
static void
s_refuse (af_contacts_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_refuse (af_contacts_t *self, const char *format, ...)
{
    self->stats.refused++;
    if (self->refusal_count == AF_MAX_CONTACT_REJECTS)
        return;
    if (!self->refusals) {
        self->refusals = (char (*) [AF_MAX_REASON + 1]) calloc (AF_MAX_CONTACT_REJECTS, AF_MAX_REASON + 1);
        if (!self->refusals)
            return;                         //  the count stays right
    }
    va_list args;
    va_start (args, format);
    vsnprintf (self->refusals [self->refusal_count++], AF_MAX_REASON + 1, format, args);
    va_end (args);
}

//  Keep a contact. -1 on OOM.
static int
s_keep (af_contacts_t *self, const af_contact_t *contact)
{
    if (self->count == self->alloc) {
        size_t alloc = self->alloc? 2 * self->alloc: 64;
        af_contact_t *contacts = (af_contact_t *) realloc (self->contacts, alloc * sizeof (af_contact_t));
        if (!contacts)
            return -1;
        self->contacts = contacts;
        self->alloc = alloc;
    }
    self->contacts [self->count++] = *contact;
    self->stats.contacts++;
    self->stats.numbers += contact->number_count;
    return 0;
}

static int
s_compare_numbers (const void *a, const void *b)
{
    return strcmp ((const char *) a, (const char *) b);
}

//  The distinct numbers of all contacts, sorted. -1 on OOM.
static int
s_collect_numbers (af_contacts_t *self)
{
    if (self->stats.numbers == 0)
        return 0;
    self->numbers = (char (*) [AF_E164_SIZE]) calloc (self->stats.numbers, AF_E164_SIZE);
    if (!self->numbers)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        for (uint32_t k = 0; k < self->contacts [i].number_count; k++)
            memcpy (self->numbers [n++], self->contacts [i].numbers [k], AF_E164_SIZE);
    qsort (self->numbers, n, AF_E164_SIZE, s_compare_numbers);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (distinct == 0 || strcmp (self->numbers [distinct - 1], self->numbers [i]))
            memcpy (self->numbers [distinct++], self->numbers [i], AF_E164_SIZE);
    self->number_count = distinct;
    self->stats.distinct = (uint32_t) distinct;
    return 0;
}

//  --------------------------------------------------------------------------
//  Text

//  The code point at p (valid UTF-8, len bytes left) and its length
static uint32_t
s_code_point (const unsigned char *p, size_t *len)
{
    if (p [0] < 0x80) {
        *len = 1;
        return p [0];
    }
    if (p [0] < 0xe0) {
        *len = 2;
        return (uint32_t) (p [0] & 0x1f) << 6 | (p [1] & 0x3f);
    }
    if (p [0] < 0xf0) {
        *len = 3;
        return (uint32_t) (p [0] & 0x0f) << 12 | (uint32_t) (p [1] & 0x3f) << 6 | (p [2] & 0x3f);
    }
    *len = 4;
    return (uint32_t) (p [0] & 0x07) << 18 | (uint32_t) (p [1] & 0x3f) << 12
         | (uint32_t) (p [2] & 0x3f) << 6 | (p [3] & 0x3f);
}

//  Characters a name must not carry to a terminal: controls, and those
//  that reorder or hide text
static bool
s_unsafe (uint32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f)
        || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e)
        || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

//  A clean name from valid UTF-8 text: unsafe characters as spaces, runs
//  of spaces as one, none at either end, at most size - 1 bytes cut at a
//  character boundary
static void
s_clean_name (const char *text, size_t len, char *name, size_t size)
{
    size_t out = 0, i = 0;
    bool space = true;                  //  drops leading spaces
    while (i < len) {
        size_t n;
        uint32_t c = s_code_point ((const unsigned char *) text + i, &n);
        if (i + n > len)
            break;
        if (s_unsafe (c) || c == ' ') {
            if (!space && out + 1 < size)
                name [out++] = ' ';
            space = true;
        }
        else {
            if (out + n >= size)
                break;
            memcpy (name + out, text + i, n);
            out += n;
            space = false;
        }
        i += n;
    }
    while (out && name [out - 1] == ' ')
        out--;
    name [out] = 0;
}

//  A value shown in a reason: at most 40 bytes of it, cleaned
static void
s_shown (const char *text, size_t len, char *shown, size_t size)
{
    if (!af_utf8_valid ((const uint8_t *) text, len)) {
        snprintf (shown, size, "(not UTF-8)");
        return;
    }
    s_clean_name (text, len, shown, size < 41? size: 41);
}

//  Undo the text escapes of vCard 3.0 and 4.0 in place: \n \N (a line
//  break: a space), \, \; \\ ; a lone backslash stays. Stops at an
//  unescaped ';' when split (N's components): returns where it stopped.
static size_t
s_unescape (char *text, size_t len, bool split, size_t *used)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char c = text [in];
        if (c == ';' && split)
            break;
        if (c == '\\' && in + 1 < len) {
            char next = text [in + 1];
            if (next == 'n' || next == 'N') {
                text [out++] = ' ';
                in += 2;
                continue;
            }
            if (next == ',' || next == ';' || next == '\\' || next == ':') {
                text [out++] = next;
                in += 2;
                continue;
            }
        }
        text [out++] = c;
        in++;
    }
    *used = in;
    return out;
}

//  --------------------------------------------------------------------------
//  Lines

//  The next physical line: its start and length (without CR, LF, CRLF).
//  false at the end of the input.
static bool
s_physical (parser_t *self, const char **start, size_t *len)
{
    if (self->pos >= self->size)
        return false;
    //  One scan for the first CR or LF: memchr for each would go to the end
    //  of a file without the other, for every line
    const char *p = self->data + self->pos;
    size_t left = self->size - self->pos, i = 0;
    while (i < left && p [i] != '\n' && p [i] != '\r')
        i++;
    *start = p;
    *len = i;
    size_t eol = i == left? 0: p [i] == '\r' && i + 1 < left && p [i + 1] == '\n'? 2: 1;
    self->pos += i + eol;
    self->line++;
    return true;
}

//  Does the next physical line start with one of chars? (Not consumed.)
static bool
s_next_starts (parser_t *self, const char *chars)
{
    return self->pos < self->size && strchr (chars, self->data [self->pos]) && self->data [self->pos];
}

static void
s_append (parser_t *self, const char *text, size_t len)
{
    size_t room = AF_MAX_CONTACT_LINE - self->len;
    if (len > room) {
        self->too_long = true;
        len = room;
    }
    memcpy (self->buf + self->len, text, len);
    self->len += len;
    self->buf [self->len] = 0;
}

//  A vCard property as read: its name (upper case, without its group)
//  and what its parameters say about the value
typedef struct {
    char name [16];
    bool qp;                        //  ENCODING=QUOTED-PRINTABLE, or 2.1's bare QUOTED-PRINTABLE
    bool base64;                    //  ENCODING=B or BASE64
    char charset [32];
    size_t value;                   //  where the value starts in the line
} prop_t;

//  Read the name and parameters of a logical line. false when there is no
//  ':' (in the part of it that we hold).
static bool
s_property (const char *line, size_t len, prop_t *prop)
{
    memset (prop, 0, sizeof *prop);
    size_t i = 0, name_start = 0;
    while (i < len && (isalnum ((unsigned char) line [i]) || line [i] == '-' || line [i] == '.')) {
        if (line [i] == '.')
            name_start = i + 1;             //  "item1.TEL": the group goes
        i++;
    }
    size_t name_len = i - name_start;
    if (name_len < sizeof prop->name)
        for (size_t k = 0; k < name_len; k++)
            prop->name [k] = (char) toupper ((unsigned char) line [name_start + k]);
    //  Parameters up to the first ':' outside quotes
    bool quoted = false;
    size_t param = i;
    for (; i < len; i++) {
        char c = line [i];
        if (c == '"')
            quoted = !quoted;
        if (!quoted && (c == ';' || c == ':')) {
            if (i > param) {
                const char *p = line + param;
                size_t plen = i - param;
                const char *eq = (const char *) memchr (p, '=', plen);
                const char *value = eq? eq + 1: p;
                size_t vlen = eq? plen - (size_t) (eq + 1 - p): plen;
                if (vlen && *value == '"' && value [vlen - 1] == '"' && vlen >= 2) {
                    value++;
                    vlen -= 2;
                }
                bool key_encoding = eq && (size_t) (eq - p) == 8 && strncasecmp (p, "ENCODING", 8) == 0;
                if ((key_encoding || !eq) && vlen == 16 && strncasecmp (value, "QUOTED-PRINTABLE", 16) == 0)
                    prop->qp = true;
                bool b64 = vlen == 6 && strncasecmp (value, "BASE64", 6) == 0;
                if ((key_encoding && (b64 || (vlen == 1 && toupper ((unsigned char) *value) == 'B')))
                ||  (!eq && b64))
                    prop->base64 = true;
                if (eq && (size_t) (eq - p) == 7 && strncasecmp (p, "CHARSET", 7) == 0)
                    snprintf (prop->charset, sizeof prop->charset, "%.*s", (int) vlen, value);
            }
            param = i + 1;
            if (c == ':') {
                prop->value = i + 1;
                return true;
            }
        }
    }
    return false;
}

//  Read one logical vCard line into self->buf: a physical line, the lines
//  folded into it, and for a quoted-printable value those joined by soft
//  line breaks. false at the end of the input. Sets *first to its line.
static bool
s_logical (parser_t *self, uint32_t *first)
{
    const char *start;
    size_t len;
    if (!s_physical (self, &start, &len))
        return false;
    *first = self->line;
    self->len = 0;
    self->too_long = false;
    self->buf [0] = 0;
    s_append (self, start, len);
    char last = len? start [len - 1]: 0;
    int qp = -1;                            //  unknown until the ':' is read
    while (true) {
        if (s_next_starts (self, " \t")) {
            s_physical (self, &start, &len);
            s_append (self, start + 1, len - 1);
            if (len > 1)
                last = start [len - 1];
            continue;
        }
        //  A quoted-printable value ending in '=' goes on on the next line
        if (last == '=' && qp < 0) {
            prop_t prop;
            if (s_property (self->buf, self->len, &prop))
                qp = prop.qp;
            else
            if (self->too_long)
                qp = 0;                     //  no ':' in 4 KiB: not a property we read
        }
        //  (but never over the end of the card: a stray '=' on a value's
        //  last line must not swallow END:VCARD)
        if (last == '=' && qp == 1 && self->pos < self->size
        &&  !(self->size - self->pos >= 9 && strncasecmp (self->data + self->pos, "END:VCARD", 9) == 0)) {
            if (self->len && self->buf [self->len - 1] == '=' && !self->too_long)
                self->buf [--self->len] = 0;
            s_physical (self, &start, &len);
            s_append (self, start, len);
            last = len? start [len - 1]: 0;
            continue;
        }
        return true;
    }
}

//  --------------------------------------------------------------------------
//  Values

//  Decode a value in place: quoted-printable if prop says so. The charset
//  must be UTF-8 or ASCII, and the result valid UTF-8. Its new length, or
//  -1 with the reason in why.
static long
s_decode_value (const prop_t *prop, char *value, size_t len, char *why, size_t whylen)
{
    if (prop->base64) {
        snprintf (why, whylen, "a %s value in base64 is not read", prop->name);
        return -1;
    }
    if (*prop->charset && strcasecmp (prop->charset, "UTF-8") && strcasecmp (prop->charset, "US-ASCII")
    &&  strcasecmp (prop->charset, "UTF8")) {
        char charset [40];
        s_shown (prop->charset, strlen (prop->charset), charset, sizeof charset);
        snprintf (why, whylen, "the charset %s is not read (only UTF-8)", charset);
        return -1;
    }
    if (prop->qp) {
        size_t out = 0;
        for (size_t i = 0; i < len; i++) {
            if (value [i] != '=')
                value [out++] = value [i];
            else
            if (i + 2 < len && isxdigit ((unsigned char) value [i + 1]) && isxdigit ((unsigned char) value [i + 2])) {
                char hex [3] = { value [i + 1], value [i + 2], 0 };
                value [out++] = (char) strtol (hex, NULL, 16);
                i += 2;
            }
            else
            if (i + 1 < len) {              //  a trailing '=' is a soft break, anything else broken
                snprintf (why, whylen, "broken quoted-printable in %s", prop->name);
                return -1;
            }
        }
        len = out;
    }
    if (!af_utf8_valid ((const uint8_t *) value, len)) {
        snprintf (why, whylen, "the %s value is not valid UTF-8", prop->name);
        return -1;
    }
    return (long) len;
}

//  Add a number as written to a card: normalised, once; past the limit it
//  is only counted
static void
s_add_number (parser_t *self, card_t *card, const char *text, size_t len, uint32_t line)
{
    af_contact_t *contact = &card->contact;
    card->tried++;
    if (contact->number_count == AF_MAX_CONTACT_NUMBERS) {
        card->left_out++;
        return;
    }
    assert (len <= AF_MAX_CONTACT_LINE);
    char number [AF_MAX_CONTACT_LINE + 1], e164 [AF_E164_SIZE], why [AF_MAX_REASON + 1], shown [48];
    if (memchr (text, 0, len) || !af_utf8_valid ((const uint8_t *) text, len)) {
        s_refuse (self->book, "line %u: the number is not valid UTF-8", line);
        return;
    }
    memcpy (number, text, len);
    number [len] = 0;
    if (af_phone_normalize (number, self->country, e164, why, sizeof why) != AF_OK) {
        s_shown (text, len, shown, sizeof shown);
        s_refuse (self->book, "line %u: '%s' is not a phone number: %s", line, shown, why);
        return;
    }
    for (uint32_t i = 0; i < contact->number_count; i++)
        if (s_eq (contact->numbers [i], e164))
            return;
    memcpy (contact->numbers [contact->number_count++], e164, AF_E164_SIZE);
}

//  A card or row is read: keep it if it has a number. -1 on OOM.
static int
s_card_done (parser_t *self, card_t *card)
{
    af_contacts_t *book = self->book;
    if (card->left_out)
        s_refuse (book, "line %u: %u more numbers than the %d a contact keeps were left out",
                  card->line, card->left_out, AF_MAX_CONTACT_NUMBERS);
    if (card->left_out > 1)
        book->stats.refused += card->left_out - 1;
    if (!card->contact.number_count) {
        book->stats.without_number++;
        return 0;
    }
    const char *name = *card->fn? card->fn: card->n;
    snprintf (card->contact.name, sizeof card->contact.name, "%s", name);
    card->contact.line = card->line;
    return s_keep (book, &card->contact);
}

static void
s_card_start (card_t *card, uint32_t line)
{
    memset (card, 0, sizeof *card);
    card->line = line;
}

//  --------------------------------------------------------------------------
//  vCard

//  One property of a card: FN, N, TEL and VERSION are read, others skipped
static void
s_vcard_property (parser_t *self, card_t *card, const prop_t *prop, uint32_t line)
{
    bool fn = s_eq (prop->name, "FN"), n = s_eq (prop->name, "N");
    bool tel = s_eq (prop->name, "TEL"), version = s_eq (prop->name, "VERSION");
    if (!fn && !n && !tel && !version)
        return;
    if (self->too_long) {
        s_refuse (self->book, "line %u: the %s line is longer than %d bytes", line, prop->name,
                  AF_MAX_CONTACT_LINE);
        return;
    }
    char *value = self->buf + prop->value;
    char why [AF_MAX_REASON + 1];
    long len = s_decode_value (prop, value, self->len - prop->value, why, sizeof why);
    if (len < 0) {
        s_refuse (self->book, "line %u: %s", line, why);
        return;
    }
    if (version) {
        s_clean_name (value, (size_t) len, card->version, sizeof card->version);
        return;
    }
    if (tel) {
        //  4.0's tel: URIs and every other form go to af_phone as written
        s_add_number (self, card, value, (size_t) len, line);
        return;
    }
    size_t used;
    if (fn) {
        len = (long) s_unescape (value, (size_t) len, false, &used);
        s_clean_name (value, (size_t) len, card->fn, sizeof card->fn);
        return;
    }
    //  N: family;given;additional;prefixes;suffixes, shown as
    //  "prefixes given additional family suffixes"
    char parts [5][AF_MAX_CONTACT_NAME + 1];
    memset (parts, 0, sizeof parts);
    size_t at = 0;
    for (int k = 0; k < 5 && at <= (size_t) len; k++) {
        size_t out = s_unescape (value + at, (size_t) len - at, true, &used);
        s_clean_name (value + at, out, parts [k], sizeof parts [k]);
        at += used + 1;
    }
    const int order [] = { 3, 1, 2, 0, 4 };
    char joined [5 * (AF_MAX_CONTACT_NAME + 1)] = "";
    size_t size = 0;
    for (int k = 0; k < 5; k++)
        if (*parts [order [k]])
            size += (size_t) snprintf (joined + size, sizeof joined - size, "%s%s", size? " ": "", parts [order [k]]);
    s_clean_name (joined, size, card->n, sizeof card->n);
}

static int
s_fail (parser_t *self, int code, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_fail (parser_t *self, int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->err, self->errlen, format, args);
    va_end (args);
    return code;
}

static int
s_parse_vcard (parser_t *self)
{
    card_t card;
    s_card_start (&card, 0);
    bool in_card = false;
    uint32_t line;
    while (s_logical (self, &line)) {
        size_t start = 0;
        while (start < self->len && (self->buf [start] == ' ' || self->buf [start] == '\t'))
            start++;
        if (start == self->len)
            continue;                       //  a blank line, between cards or in one
        prop_t prop;
        bool parsed = s_property (self->buf, self->len, &prop);
        const char *value = parsed? self->buf + prop.value: "";
        size_t value_len = parsed? self->len - prop.value: 0;
        while (value_len && (value [value_len - 1] == ' ' || value [value_len - 1] == '\t'))
            value_len--;
        bool vcard = value_len == 5 && strncasecmp (value, "VCARD", 5) == 0;
        if (parsed && s_eq (prop.name, "BEGIN")) {
            if (in_card)
                return s_fail (self, AF_E_MALFORMED, "line %u: BEGIN:VCARD inside the card that starts on line %u",
                               line, card.line);
            if (!vcard)
                return s_fail (self, AF_E_MALFORMED, "line %u: BEGIN of something that is not a vCard", line);
            if (self->book->stats.cards == AF_MAX_CONTACTS)
                return s_fail (self, AF_E_TOO_BIG, "line %u: more than %d cards", line, AF_MAX_CONTACTS);
            self->book->stats.cards++;
            s_card_start (&card, line);
            in_card = true;
        }
        else
        if (parsed && s_eq (prop.name, "END")) {
            if (!in_card)
                return s_fail (self, AF_E_MALFORMED, "line %u: END without BEGIN:VCARD", line);
            if (!vcard)
                return s_fail (self, AF_E_MALFORMED, "line %u: END of something that is not a vCard "
                               "inside the card that starts on line %u", line, card.line);
            in_card = false;
            if (*card.version && !s_eq (card.version, "2.1") && !s_eq (card.version, "3.0")
            &&  !s_eq (card.version, "4.0")) {
                s_refuse (self->book, "line %u: vCard version %s is not read (2.1, 3.0, 4.0 are)",
                          card.line, card.version);
                self->book->stats.without_number++;
                continue;
            }
            if (s_card_done (self, &card))
                return s_fail (self, AF_E_INTERNAL, "out of memory");
        }
        else
        if (!in_card)
            return s_fail (self, AF_E_MALFORMED, "line %u: a line outside a card (expected BEGIN:VCARD)", line);
        else
        if (parsed)
            s_vcard_property (self, &card, &prop, line);
        //  else: a line in a card with no ':', not a property: skipped
    }
    if (in_card)
        return s_fail (self, AF_E_MALFORMED, "line %u: the card is not ended (no END:VCARD)", card.line);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  CSV

//  Which of , ; TAB appears most often outside quotes in the first line
static char
s_separator (const char *data, size_t size)
{
    size_t counts [3] = { 0, 0, 0 };
    const char seps [3] = { ',', ';', '\t' };
    bool quoted = false;
    for (size_t i = 0; i < size && data [i] != '\n' && data [i] != '\r'; i++) {
        if (data [i] == '"')
            quoted = !quoted;
        for (int k = 0; k < 3 && !quoted; k++)
            counts [k] += data [i] == seps [k];
    }
    int best = 0;
    for (int k = 1; k < 3; k++)
        if (counts [k] > counts [best])
            best = k;
    return seps [best];
}

//  Read one CSV row into self->buf, its fields separated by NUL bytes
//  (a field holding NUL cannot happen: the file has none). Returns the
//  number of fields, 0 at the end of the input, or -1 for an unclosed
//  quote (the rest of the input is consumed).
static int
s_csv_row (parser_t *self, char separator, uint32_t *first)
{
    if (self->pos >= self->size)
        return 0;
    *first = self->line + 1;
    self->len = 0;
    self->buf [0] = 0;
    self->too_long = false;
    int fields = 1;
    bool quoted = false, at_start = true;   //  a quote opens a field only at its start
    while (self->pos < self->size) {
        char c = self->data [self->pos++];
        if (quoted) {
            if (c == '"') {
                if (self->pos < self->size && self->data [self->pos] == '"') {
                    self->pos++;
                    s_append (self, "\"", 1);
                }
                else
                    quoted = false;
            }
            else {
                if (c == '\n' || (c == '\r' && !(self->pos < self->size && self->data [self->pos] == '\n')))
                    self->line++;
                s_append (self, &c, 1);
            }
            continue;
        }
        if (c == '"' && at_start) {
            quoted = true;
            at_start = false;
            continue;
        }
        if (c == separator) {
            s_append (self, "", 1);         //  the NUL between fields
            fields++;
            at_start = true;
            continue;
        }
        if (c == '\r' || c == '\n') {
            if (c == '\r' && self->pos < self->size && self->data [self->pos] == '\n')
                self->pos++;
            break;
        }
        s_append (self, &c, 1);
        at_start = false;
    }
    self->line++;
    if (quoted)
        return -1;
    return fields;
}

//  Is the row in self->buf a header: fields after the first, some of them
//  not empty, each of those with a letter and none a phone number ("Name,
//  Phone 1,Phone 2")? A first row with a bad number is a row, and refused.
static bool
s_csv_header (parser_t *self, int fields)
{
    if (!af_utf8_valid ((const uint8_t *) self->buf, self->len))
        return false;
    const char *field = self->buf;
    bool some = false;
    for (int k = 0; k < fields; k++) {
        size_t len = strlen (field);
        char e164 [AF_E164_SIZE];
        if (k > 0 && len) {
            bool letter = false;
            for (size_t i = 0; i < len; i++)
                letter |= isalpha ((unsigned char) field [i]) != 0;
            if (!letter || af_phone_normalize (field, self->country, e164, NULL, 0) == AF_OK)
                return false;
            some = true;
        }
        field += len + 1;
    }
    return some;
}

static int
s_parse_csv (parser_t *self)
{
    char separator = s_separator (self->data + self->pos, self->size - self->pos);
    bool first_row = true;
    uint32_t line;
    int fields;
    while ((fields = s_csv_row (self, separator, &line)) != 0) {
        if (fields < 0) {
            s_refuse (self->book, "line %u: a quoted field is not closed", line);
            break;
        }
        bool blank = true;
        for (size_t i = 0; i < self->len; i++)
            blank &= self->buf [i] == 0 || self->buf [i] == ' ' || self->buf [i] == '\t';
        if (blank && !self->too_long)
            continue;                       //  blank rows are skipped
        if (first_row && !self->too_long && s_csv_header (self, fields)) {
            first_row = false;
            continue;
        }
        first_row = false;
        if (self->book->stats.cards == AF_MAX_CONTACTS)
            return s_fail (self, AF_E_TOO_BIG, "line %u: more than %d rows", line, AF_MAX_CONTACTS);
        self->book->stats.cards++;
        if (self->too_long) {
            s_refuse (self->book, "line %u: the row is longer than %d bytes", line, AF_MAX_CONTACT_LINE);
            self->book->stats.without_number++;
            continue;
        }
        if (!af_utf8_valid ((const uint8_t *) self->buf, self->len)) {
            s_refuse (self->book, "line %u: the row is not valid UTF-8", line);
            self->book->stats.without_number++;
            continue;
        }
        card_t card;
        s_card_start (&card, line);
        const char *field = self->buf;
        for (int k = 0; k < fields; k++) {
            size_t len = strlen (field);
            if (k == 0)
                s_clean_name (field, len, card.fn, sizeof card.fn);
            else {
                while (len && (*field == ' ' || *field == '\t')) {
                    field++;
                    len--;
                }
                if (len)
                    s_add_number (self, &card, field, len, line);
            }
            field += len + 1;
        }
        if (card.tried == 0)
            s_refuse (self->book, "line %u: no phone number after the name", line);
        if (s_card_done (self, &card))
            return s_fail (self, AF_E_INTERNAL, "out of memory");
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Entry points

int
af_contacts_parse (const char *data, size_t size, const char *country, af_contacts_t **self_p,
                   char *err, size_t errlen)
{
    assert ((data || size == 0) && self_p && err);
    *self_p = NULL;
    *err = 0;
    if (af_phone_country (country, NULL) != AF_OK) {
        snprintf (err, errlen, "unknown country '%s' (an ISO 3166 code such as DE or US)", country? country: "");
        return AF_E_MALFORMED;
    }
    if (size > AF_MAX_CONTACTS_FILE) {
        snprintf (err, errlen, "larger than %d bytes", AF_MAX_CONTACTS_FILE);
        return AF_E_TOO_BIG;
    }
    const char *nul = size? (const char *) memchr (data, 0, size): NULL;
    if (nul) {
        uint32_t line = 1;
        for (const char *p = data; p < nul; p++)
            line += *p == '\n';
        snprintf (err, errlen, "line %u: a NUL byte (not a text file)", line);
        return AF_E_MALFORMED;
    }
    parser_t *self = (parser_t *) calloc (1, sizeof (parser_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return AF_E_INTERNAL;
    }
    self->data = data;
    self->size = size;
    self->err = err;
    self->errlen = errlen;
    self->country [0] = (char) toupper ((unsigned char) country [0]);
    self->country [1] = (char) toupper ((unsigned char) country [1]);
    if (size >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0)
        self->pos = 3;                      //  a UTF-8 byte order mark
    //  The format, from the first line that holds something
    size_t at = self->pos;
    while (at < size && isspace ((unsigned char) data [at]))
        at++;
    bool vcard = size - at >= 11 && strncasecmp (data + at, "BEGIN:VCARD", 11) == 0;
    int rc = AF_E_INTERNAL;
    if (at == size)
        rc = s_fail (self, AF_E_MALFORMED, "the file is empty");
    else {
        self->book = s_book_new (vcard? "vcard": "csv");
        if (!self->book)
            rc = s_fail (self, AF_E_INTERNAL, "out of memory");
        else {
            rc = vcard? s_parse_vcard (self): s_parse_csv (self);
            if (rc == AF_OK && s_collect_numbers (self->book))
                rc = s_fail (self, AF_E_INTERNAL, "out of memory");
        }
    }
    if (rc == AF_OK)
        *self_p = self->book;
    else
        af_contacts_destroy (&self->book);
    free (self);
    return rc;
}

int
af_contacts_load (const char *path, const char *country, af_contacts_t **self_p, char *err, size_t errlen)
{
    assert (path && self_p && err);
    *self_p = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st)) {
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return AF_E_INTERNAL;
    }
    if (!S_ISREG (st.st_mode)) {
        close (fd);
        snprintf (err, errlen, "%s: not a regular file", path);
        return AF_E_MALFORMED;
    }
    if (st.st_size > AF_MAX_CONTACTS_FILE) {
        close (fd);
        snprintf (err, errlen, "%s: larger than %d bytes", path, AF_MAX_CONTACTS_FILE);
        return AF_E_TOO_BIG;
    }
    //  Read what is there, and one byte more to see it did not grow
    size_t want = (size_t) st.st_size + 1, size = 0;
    char *data = (char *) malloc (want);
    if (!data) {
        close (fd);
        snprintf (err, errlen, "%s: out of memory", path);
        return AF_E_INTERNAL;
    }
    while (size < want) {
        ssize_t got = read (fd, data + size, want - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (err, errlen, "%s: %s", path, strerror (errno));
            free (data);
            close (fd);
            return AF_E_INTERNAL;
        }
        if (got == 0)
            break;
        size += (size_t) got;
    }
    close (fd);
    int rc;
    char inner [AF_MAX_REASON + 1];
    if (size == want) {
        snprintf (err, errlen, "%s: it grew while it was read", path);
        rc = AF_E_INTERNAL;
    }
    else
    if ((rc = af_contacts_parse (data, size, country, self_p, inner, sizeof inner)) != AF_OK)
        snprintf (err, errlen, "%s: %s", path, inner);
    free (data);
    return rc;
}

const char *
af_contacts_format (af_contacts_t *self)
{
    assert (self);
    return self->format;
}

size_t
af_contacts_size (af_contacts_t *self)
{
    assert (self);
    return self->count;
}

const af_contact_t *
af_contacts_get (af_contacts_t *self, size_t index)
{
    assert (self);
    return index < self->count? &self->contacts [index]: NULL;
}

size_t
af_contacts_number_count (af_contacts_t *self)
{
    assert (self);
    return self->number_count;
}

const char *
af_contacts_number (af_contacts_t *self, size_t index)
{
    assert (self);
    return index < self->number_count? self->numbers [index]: NULL;
}

size_t
af_contacts_refusal_count (af_contacts_t *self)
{
    assert (self);
    return self->refusal_count;
}

const char *
af_contacts_refusal (af_contacts_t *self, size_t index)
{
    assert (self);
    return index < self->refusal_count? self->refusals [index]: NULL;
}

void
af_contacts_stats (af_contacts_t *self, af_contacts_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

void
af_contacts_print (af_contacts_t *self, FILE *out)
{
    assert (self && out);
    fprintf (out, "format %s\n", self->format);
    for (size_t i = 0; i < self->count; i++) {
        const af_contact_t *contact = &self->contacts [i];
        fprintf (out, "contact %u %s:", contact->line, contact->name);
        for (uint32_t k = 0; k < contact->number_count; k++)
            fprintf (out, " %s", contact->numbers [k]);
        fprintf (out, "\n");
    }
    for (size_t i = 0; i < self->refusal_count; i++)
        fprintf (out, "refused %s\n", self->refusals [i]);
    if (self->stats.refused > self->refusal_count)
        fprintf (out, "... and %zu more refusals\n", (size_t) self->stats.refused - self->refusal_count);
    fprintf (out, "cards %u, contacts %u, without a number %u, numbers %u, distinct %u, refused %u\n",
             self->stats.cards, self->stats.contacts, self->stats.without_number, self->stats.numbers,
             self->stats.distinct, self->stats.refused);
}

//  --------------------------------------------------------------------------
//  Self test

//  Parse text in country; the printed result, or "error CODE: err" (the
//  caller frees it)
static char *
s_test_print (const char *data, size_t size, const char *country)
{
    char err [AF_MAX_REASON + 1], *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    assert (out);
    af_contacts_t *book = NULL;
    int rc = af_contacts_parse (data, size, country, &book, err, sizeof err);
    if (rc == AF_OK) {
        assert (book);
        af_contacts_print (book, out);
        af_contacts_destroy (&book);
    }
    else {
        assert (!book);
        fprintf (out, "error %s: %s\n", af_code_name (rc), err);
    }
    fclose (out);
    return text;
}

static void
s_test_expect (const char *data, const char *country, const char *expected)
{
    char *text = s_test_print (data, strlen (data), country);
    if (!s_eq (text, expected))
        printf ("\n--- got:\n%s--- expected:\n%s", text, expected);
    assert (s_eq (text, expected));
    free (text);
}

//  vCards: folding, quoted-printable soft breaks, groups, escapes, the
//  name from N, duplicates, several numbers, a refused one
static void
s_test_vcard (void)
{
    s_test_expect (
        "\xef\xbb\xbf" "BEGIN:VCARD\r\n"
        "VERSION:3.0\r\n"
        "N:Silva;Ana;Maria;Dr.;\r\n"
        "FN:Ana Maria\r\n"
        "  Silva\r\n"
        "item1.TEL;type=CELL;type=pref:+351 912 345 678\r\n"
        "item1.X-ABLabel:_$!<Mobile>!$_\r\n"
        "TEL;TYPE=HOME:21 345 6789\r\n"
        "TEL:+351912345678\r\n"
        "TEL:1-800-FLOWERS\r\n"
        "END:VCARD\r\n"
        "\r\n"
        "BEGIN:VCARD\n"
        "VERSION:2.1\n"
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=89lodie;Dupont=2C=20Jr;;;\n"
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=89lodie Dupont=2C Jr=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=\n"
        "=A9\n"
        "TEL;CELL:96 123 45 67\n"
        "END:VCARD\n"
        "BEGIN:VCARD\n"
        "VERSION:4.0\n"
        "N:Doe;John;;;\n"
        "TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+1-415-555-0132;ext=5\n"
        "EMAIL:john@example.com\n"
        "END:VCARD\n"
        "BEGIN:VCARD\n"
        "VERSION:3.0\n"
        "FN:Only an e-mail\\, no number\n"
        "EMAIL:x@example.com\n"
        "END:VCARD\n", "PT",
        "format vcard\n"
        "contact 1 Ana Maria Silva: +351912345678 +351213456789\n"
        "contact 13 \xc3\x89lodie Dupont, Jr\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9: +351961234567\n"
        "contact 20 John Doe: +14155550132\n"
        "refused line 10: '1-800-FLOWERS' is not a phone number: letters in the number\n"
        "cards 4, contacts 3, without a number 1, numbers 4, distinct 4, refused 1\n");
    //  The same French number read in France is another number
    s_test_expect ("BEGIN:VCARD\nTEL;CELL:06 12 34 56 78\nEND:VCARD\n", "fr",
        "format vcard\ncontact 1 : +33612345678\ncards 1, contacts 1, without a number 0, numbers 1, distinct 1, refused 0\n");
    //  Undecodable values: another charset, base64, broken quoted-printable, bad UTF-8
    s_test_expect (
        "BEGIN:VCARD\n"
        "FN;CHARSET=ISO-8859-1:Andr\xe9\n"
        "N;ENCODING=b:QW5kcsOp\n"
        "TEL;ENCODING=QUOTED-PRINTABLE:=3G0170 1234567\n"
        "TEL:0170 \xff\xfe 1234567\n"
        "TEL:0170 7654321\n"
        "END:VCARD\n", "DE",
        "format vcard\n"
        "contact 1 : +491707654321\n"
        "refused line 2: the charset ISO-8859-1 is not read (only UTF-8)\n"
        "refused line 3: a N value in base64 is not read\n"
        "refused line 4: broken quoted-printable in TEL\n"
        "refused line 5: the TEL value is not valid UTF-8\n"
        "cards 1, contacts 1, without a number 0, numbers 1, distinct 1, refused 4\n");
    //  A stray soft break on a value's last line does not swallow the end
    s_test_expect ("BEGIN:VCARD\r\nTEL:+49 170 1234567\r\nFN;ENCODING=QUOTED-PRINTABLE:Ana=\r\nEND:VCARD\r\n", "DE",
        "format vcard\ncontact 1 Ana: +491701234567\n"
        "cards 1, contacts 1, without a number 0, numbers 1, distinct 1, refused 0\n");
    //  An unknown version is refused as a card
    s_test_expect ("BEGIN:VCARD\nVERSION:5.0\nTEL:+49 170 1234567\nEND:VCARD\n", "DE",
        "format vcard\nrefused line 1: vCard version 5.0 is not read (2.1, 3.0, 4.0 are)\n"
        "cards 1, contacts 0, without a number 1, numbers 0, distinct 0, refused 1\n");
}

//  The structure of a vCard file: every way of breaking it refuses the file
static void
s_test_vcard_structure (void)
{
    s_test_expect ("BEGIN:VCARD\nFN:A\nBEGIN:VCARD\nEND:VCARD\nEND:VCARD\n", "DE",
        "error E_MALFORMED: line 3: BEGIN:VCARD inside the card that starts on line 1\n");
    s_test_expect ("BEGIN:VCARD\nEND:VCARD\nEND:VCARD\n", "DE",
        "error E_MALFORMED: line 3: END without BEGIN:VCARD\n");
    s_test_expect ("BEGIN:VCARD\nFN:A\nTEL:0170 1234567\n", "DE",
        "error E_MALFORMED: line 1: the card is not ended (no END:VCARD)\n");
    s_test_expect ("BEGIN:VCARD\nEND:VCARD\nFN:Stray\n", "DE",
        "error E_MALFORMED: line 3: a line outside a card (expected BEGIN:VCARD)\n");
    s_test_expect ("BEGIN:VCARD\nBEGIN:VCALENDAR\nEND:VCARD\n", "DE",
        "error E_MALFORMED: line 2: BEGIN:VCARD inside the card that starts on line 1\n");
    s_test_expect ("BEGIN:VCARD\nEND:VCALENDAR\n", "DE",
        "error E_MALFORMED: line 2: END of something that is not a vCard inside the card that starts on line 1\n");
    s_test_expect ("", "DE", "error E_MALFORMED: the file is empty\n");
    s_test_expect (" \r\n\n", "DE", "error E_MALFORMED: the file is empty\n");
    s_test_expect ("BEGIN:VCARD\nEND:VCARD\n", "QQ",
        "error E_MALFORMED: unknown country 'QQ' (an ISO 3166 code such as DE or US)\n");
    char *text = s_test_print ("BEGIN:VCARD\nFN:A\0B\nEND:VCARD\n", 26, "DE");
    assert (s_eq (text, "error E_MALFORMED: line 2: a NUL byte (not a text file)\n"));
    free (text);
}

//  CSV: a header, quotes (a separator, a quote, a line break inside),
//  semicolons, rows without numbers, an unclosed quote
static void
s_test_csv (void)
{
    s_test_expect (
        "Name,Phone 1,Phone 2\r\n"
        "\"Silva, Ana\",+351 912 345 678,21 345 6789\r\n"
        "Bob \"the builder\",0044 20 7946 0018\r\n"
        "\"Zoe \"\"Z\"\" Line\nTwo\",,912 000 111,\r\n"
        "\r\n"
        "Just a name\r\n"
        "Nobody,,\r\n"
        "Bad,*100#\r\n"
        "\"Unclosed,912 345 678\r\n", "PT",
        "format csv\n"
        "contact 2 Silva, Ana: +351912345678 +351213456789\n"
        "contact 3 Bob \"the builder\": +442079460018\n"
        "contact 4 Zoe \"Z\" Line Two: +351912000111\n"
        "refused line 7: no phone number after the name\n"
        "refused line 8: no phone number after the name\n"
        "refused line 9: '*100#' is not a phone number: a service code (with * or #), not a number\n"
        "refused line 10: a quoted field is not closed\n"
        "cards 6, contacts 3, without a number 3, numbers 4, distinct 4, refused 4\n");
    s_test_expect ("Ana;0170 1234567;0170 7654321\nBen;+491701234567\n", "DE",
        "format csv\n"
        "contact 1 Ana: +491701234567 +491707654321\n"
        "contact 2 Ben: +491701234567\n"
        "cards 2, contacts 2, without a number 0, numbers 3, distinct 2, refused 0\n");
}

//  Names are safe to print: no controls, no bidi overrides, cut at a
//  character boundary
static void
s_test_names (void)
{
    s_test_expect ("BEGIN:VCARD\nFN:\x1b[2J\x1b]0;pwned\x07 Eve\\nNext \xe2\x80\xae" "evil\t\t!\nTEL:0170 1234567\nEND:VCARD\n", "DE",
        "format vcard\ncontact 1 [2J ]0;pwned Eve Next evil !: +491701234567\n"
        "cards 1, contacts 1, without a number 0, numbers 1, distinct 1, refused 0\n");
    char card [2048] = "BEGIN:VCARD\nFN:";
    for (int i = 0; i < 100; i++)
        strcat (card, "\xc3\xa9");          //  200 bytes of é
    strcat (card, "\nTEL:0170 1234567\nEND:VCARD\n");
    af_contacts_t *book;
    char err [256];
    assert (af_contacts_parse (card, strlen (card), "DE", &book, err, sizeof err) == AF_OK);
    const af_contact_t *contact = af_contacts_get (book, 0);
    assert (strlen (contact->name) == AF_MAX_CONTACT_NAME - 1);     //  63 é: 126 bytes, not 127
    assert (af_utf8_valid ((const uint8_t *) contact->name, strlen (contact->name)));
    assert (af_contacts_get (book, 1) == NULL && af_contacts_number (book, 1) == NULL);
    assert (s_eq (af_contacts_number (book, 0), "+491701234567"));
    af_contacts_destroy (&book);
}

//  Hostile sizes: a huge line (skipped, or refused when we read it), a
//  card with 100,000 numbers, 100,000 rows, more refusals than are kept,
//  a file over the limit
static void
s_test_hostile (void)
{
    char err [AF_MAX_REASON + 1];
    af_contacts_t *book;
    af_contacts_stats_t stats;
    //  A 5 MB photo on one line, then an 8 KB TEL: the card keeps its other number
    size_t photo = 5 * 1024 * 1024;
    char *data = (char *) malloc (photo + 20000);
    assert (data);
    size_t size = (size_t) sprintf (data, "BEGIN:VCARD\nFN:Big\nPHOTO;ENCODING=b;TYPE=JPEG:");
    memset (data + size, 'A', photo);
    size += photo;
    size += (size_t) sprintf (data + size, "\nTEL:");
    memset (data + size, '1', 8192);
    size += 8192;
    size += (size_t) sprintf (data + size, "\nTEL:+49 170 1234567\nEND:VCARD\n");
    char *text = s_test_print (data, size, "DE");
    assert (s_eq (text, "format vcard\ncontact 1 Big: +491701234567\n"
                        "refused line 4: the TEL line is longer than 4096 bytes\n"
                        "cards 1, contacts 1, without a number 0, numbers 1, distinct 1, refused 1\n"));
    free (text);
    //  5 MB on one line without a line break, as a CSV: one row, too long
    memset (data, 'A', photo);
    memcpy (data, "Name,", 5);
    text = s_test_print (data, photo, "DE");
    assert (s_eq (text, "format csv\nrefused line 1: the row is longer than 4096 bytes\n"
                        "cards 1, contacts 0, without a number 1, numbers 0, distinct 0, refused 1\n"));
    free (text);
    //  A quoted-printable value whose soft breaks never end: one logical line
    size = (size_t) sprintf (data, "BEGIN:VCARD\nFN;ENCODING=QUOTED-PRINTABLE:A");
    for (int i = 0; i < 200000; i++)
        size += (size_t) sprintf (data + size, "=\n=41");
    size += (size_t) sprintf (data + size, "\nTEL:+49 170 1234567\nEND:VCARD\n");
    text = s_test_print (data, size, "DE");
    assert (s_eq (text, "format vcard\ncontact 1 : +491701234567\n"
                        "refused line 2: the FN line is longer than 4096 bytes\n"
                        "cards 1, contacts 1, without a number 0, numbers 1, distinct 1, refused 1\n"));
    free (text);
    free (data);

    //  100,000 numbers in one card: 16 kept, the rest counted in one reason
    data = (char *) malloc (100000 * 24 + 100);
    assert (data);
    size = (size_t) sprintf (data, "BEGIN:VCARD\r\nFN:Many\r\n");
    for (int i = 0; i < 100000; i++)
        size += (size_t) sprintf (data + size, "TEL:+49 170 %07d\r\n", i);
    size += (size_t) sprintf (data + size, "END:VCARD\r\n");
    assert (af_contacts_parse (data, size, "DE", &book, err, sizeof err) == AF_OK);
    af_contacts_stats (book, &stats);
    assert (stats.cards == 1 && stats.contacts == 1 && stats.numbers == AF_MAX_CONTACT_NUMBERS);
    assert (stats.refused == 100000 - AF_MAX_CONTACT_NUMBERS && af_contacts_refusal_count (book) == 1);
    assert (s_eq (af_contacts_refusal (book, 0), "line 1: 99984 more numbers than the 16 a contact keeps were left out"));
    assert (s_eq (af_contacts_get (book, 0)->numbers [15], "+491700000015"));
    af_contacts_destroy (&book);
    //  100,000 rows: more than a file may hold
    size = 0;
    for (int i = 0; i < 100000; i++)
        size += (size_t) sprintf (data + size, "n%d,+49 170 %07d\n", i, i);
    assert (af_contacts_parse (data, size, "DE", &book, err, sizeof err) == AF_E_TOO_BIG);
    assert (s_eq (err, "line 20001: more than 20000 rows") && !book);
    //  ... and 20,000 of them is what it may hold
    size = 0;
    for (int i = 0; i < AF_MAX_CONTACTS; i++)
        size += (size_t) sprintf (data + size, "n%d,+49 170 %07d\n", i, i % 1000);
    assert (af_contacts_parse (data, size, "DE", &book, err, sizeof err) == AF_OK);
    af_contacts_stats (book, &stats);
    assert (stats.contacts == AF_MAX_CONTACTS && stats.distinct == 1000 && af_contacts_number_count (book) == 1000);
    for (size_t i = 1; i < 1000; i++)
        assert (strcmp (af_contacts_number (book, i - 1), af_contacts_number (book, i)) < 0);
    af_contacts_destroy (&book);
    //  500 bad numbers: 200 reasons kept, 500 counted, and the print says so
    size = 0;
    for (int i = 0; i < 500; i++)
        size += (size_t) sprintf (data + size, "n%d,12%d\n", i, i);
    assert (af_contacts_parse (data, size, "DE", &book, err, sizeof err) == AF_OK);
    af_contacts_stats (book, &stats);
    assert (stats.refused == 500 && af_contacts_refusal_count (book) == AF_MAX_CONTACT_REJECTS);
    assert (s_eq (af_contacts_refusal (book, 199), "line 200: '12199' is not a phone number: "
                  "too short: 7 digits with the country code, a number has 8 to 15"));
    af_contacts_destroy (&book);
    text = s_test_print (data, size, "DE");
    assert (strstr (text, "\n... and 300 more refusals\ncards 500, contacts 0, without a number 500"));
    free (text);
    free (data);
    //  A file over the limit is refused before it is read
    data = (char *) calloc (1, AF_MAX_CONTACTS_FILE + 1);
    assert (data);
    assert (af_contacts_parse (data, AF_MAX_CONTACTS_FILE + 1, "DE", &book, err, sizeof err) == AF_E_TOO_BIG);
    free (data);
}

//  Files: what is not one, and what cannot be read
static void
s_test_load (void)
{
    char err [AF_MAX_REASON + 1];
    af_contacts_t *book = NULL;
    assert (af_contacts_load ("/nonexistent/contacts.vcf", "DE", &book, err, sizeof err) == AF_E_INTERNAL);
    assert (strstr (err, "/nonexistent/contacts.vcf: No such file") && !book);
    assert (af_contacts_load ("/", "DE", &book, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, "not a regular file"));
    char path [] = "/tmp/af_contacts_test.XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    const char *csv = "Ana,0170 1234567\n";
    assert (write (fd, csv, strlen (csv)) == (ssize_t) strlen (csv));
    close (fd);
    assert (af_contacts_load (path, "DE", &book, err, sizeof err) == AF_OK);
    assert (af_contacts_size (book) == 1 && s_eq (af_contacts_format (book), "csv"));
    af_contacts_destroy (&book);
    assert (af_contacts_load (path, "XX", &book, err, sizeof err) == AF_E_MALFORMED);
    assert (strstr (err, path) && strstr (err, "unknown country"));
    unlink (path);
}

void
af_contacts_test (bool verbose)
{
    if (verbose)
        printf (" * af_contacts: ");
    s_test_vcard ();
    s_test_vcard_structure ();
    s_test_csv ();
    s_test_names ();
    s_test_hostile ();
    s_test_load ();
    if (verbose)
        printf ("OK\n");
}
