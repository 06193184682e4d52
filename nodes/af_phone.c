/*  =========================================================================
    af_phone - phone numbers to E.164 (see af_phone.h for the rules)

    The country table holds, per ISO 3166-1 alpha-2 code, the calling code,
    the trunk prefix (what a national number starts with before the area
    code; alternatives split by '|', the longest first where they overlap)
    and the international prefixes other than "00", which is taken as one
    everywhere (no national number starts with 00). Where a country's
    trunk prefix was in doubt it is "0": a number of a country whose
    numbers never start with 0 is unharmed by that, so "" (none) is only
    for the countries known to have no prefix, and it is necessary where
    0 belongs to the number itself (Italy and others, af_phone.h).
    =========================================================================
*/
#include "af_phone.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char iso [3];
    uint16_t code;              //  calling code
    const char *trunk;          //  "0", "8", "06", "1", "0|8", or "" for none
    const char *intl;           //  international prefixes besides "00", or ""
} country_t;

#define NANP(iso) { iso, 1, "1", "011" }

static const country_t s_countries [] = {
    { "AD", 376, "", "" }, { "AE", 971, "0", "" }, { "AF", 93, "0", "" }, NANP ("AG"), NANP ("AI"),
    { "AL", 355, "0", "" }, { "AM", 374, "0", "" }, { "AO", 244, "0", "" }, { "AQ", 672, "0", "" },
    { "AR", 54, "0", "" }, NANP ("AS"), { "AT", 43, "0", "" }, { "AU", 61, "0", "0011" },
    { "AW", 297, "0", "" }, { "AX", 358, "0", "" }, { "AZ", 994, "0", "" },
    { "BA", 387, "0", "" }, NANP ("BB"), { "BD", 880, "0", "" }, { "BE", 32, "0", "" },
    { "BF", 226, "", "" }, { "BG", 359, "0", "" }, { "BH", 973, "", "" }, { "BI", 257, "0", "" },
    { "BJ", 229, "", "" }, { "BL", 590, "0", "" }, NANP ("BM"), { "BN", 673, "", "" },
    { "BO", 591, "0", "" }, { "BQ", 599, "0", "" }, { "BR", 55, "0", "" }, NANP ("BS"),
    { "BT", 975, "0", "" }, { "BW", 267, "0", "" }, { "BY", 375, "8", "810" }, { "BZ", 501, "", "" },
    NANP ("CA"), { "CC", 61, "0", "0011" }, { "CD", 243, "0", "" }, { "CF", 236, "0", "" },
    { "CG", 242, "", "" }, { "CH", 41, "0", "" }, { "CI", 225, "", "" }, { "CK", 682, "0", "" },
    { "CL", 56, "0", "" }, { "CM", 237, "", "" }, { "CN", 86, "0", "" }, { "CO", 57, "0", "009|007|005" },
    { "CR", 506, "", "" }, { "CU", 53, "0", "119" }, { "CV", 238, "", "" }, { "CW", 599, "0", "" },
    { "CX", 61, "0", "0011" }, { "CY", 357, "", "" }, { "CZ", 420, "", "" },
    { "DE", 49, "0", "" }, { "DJ", 253, "0", "" }, { "DK", 45, "", "" }, NANP ("DM"), NANP ("DO"),
    { "DZ", 213, "0", "" },
    { "EC", 593, "0", "" }, { "EE", 372, "", "" }, { "EG", 20, "0", "" }, { "EH", 212, "0", "" },
    { "ER", 291, "0", "" }, { "ES", 34, "", "" }, { "ET", 251, "0", "" },
    { "FI", 358, "0", "" }, { "FJ", 679, "", "" }, { "FK", 500, "0", "" }, { "FM", 691, "0", "" },
    { "FO", 298, "", "" }, { "FR", 33, "0", "" },
    { "GA", 241, "", "" }, { "GB", 44, "0", "" }, NANP ("GD"), { "GE", 995, "0", "" },
    { "GF", 594, "0", "" }, { "GG", 44, "0", "" }, { "GH", 233, "0", "" }, { "GI", 350, "", "" },
    { "GL", 299, "", "" }, { "GM", 220, "0", "" }, { "GN", 224, "0", "" }, { "GP", 590, "0", "" },
    { "GQ", 240, "0", "" }, { "GR", 30, "", "" }, { "GT", 502, "", "" }, NANP ("GU"),
    { "GW", 245, "0", "" }, { "GY", 592, "0", "001" },
    { "HK", 852, "", "001" }, { "HN", 504, "", "" }, { "HR", 385, "0", "" }, { "HT", 509, "0", "" },
    { "HU", 36, "06", "" },
    { "ID", 62, "0", "001|007|008" }, { "IE", 353, "0", "" }, { "IL", 972, "0", "" }, { "IM", 44, "0", "" },
    { "IN", 91, "0", "" }, { "IO", 246, "0", "" }, { "IQ", 964, "0", "" }, { "IR", 98, "0", "" },
    { "IS", 354, "", "" }, { "IT", 39, "", "" },
    { "JE", 44, "0", "" }, NANP ("JM"), { "JO", 962, "0", "" }, { "JP", 81, "0", "010" },
    { "KE", 254, "0", "000" }, { "KG", 996, "0", "" }, { "KH", 855, "0", "001" }, { "KI", 686, "0", "" },
    { "KM", 269, "0", "" }, NANP ("KN"), { "KP", 850, "0", "" }, { "KR", 82, "0", "001|002|005|008" },
    { "KW", 965, "", "" }, NANP ("KY"), { "KZ", 7, "8", "810" },
    { "LA", 856, "0", "" }, { "LB", 961, "0", "" }, NANP ("LC"), { "LI", 423, "0", "" },
    { "LK", 94, "0", "" }, { "LR", 231, "0", "" }, { "LS", 266, "0", "" },
    //  Lithuania's trunk prefix was 8 until 2025, 0 since: address books hold both
    { "LT", 370, "0|8", "" },
    { "LU", 352, "", "" }, { "LV", 371, "", "" }, { "LY", 218, "0", "" },
    { "MA", 212, "0", "" }, { "MC", 377, "", "" }, { "MD", 373, "0", "" }, { "ME", 382, "0", "" },
    { "MF", 590, "0", "" }, { "MG", 261, "0", "" }, { "MH", 692, "0", "" }, { "MK", 389, "0", "" },
    { "ML", 223, "", "" }, { "MM", 95, "0", "" }, { "MN", 976, "0", "001" }, { "MO", 853, "", "" },
    NANP ("MP"), { "MQ", 596, "0", "" }, { "MR", 222, "", "" }, NANP ("MS"), { "MT", 356, "", "" },
    { "MU", 230, "", "" }, { "MV", 960, "", "" }, { "MW", 265, "0", "" },
    //  Mexico dropped its trunk prefixes in 2019; older entries still have them
    { "MX", 52, "044|045|01", "" },
    { "MY", 60, "0", "" }, { "MZ", 258, "0", "" },
    { "NA", 264, "0", "" }, { "NC", 687, "0", "" }, { "NE", 227, "", "" }, { "NF", 672, "0", "" },
    { "NG", 234, "0", "009" }, { "NI", 505, "", "" }, { "NL", 31, "0", "" }, { "NO", 47, "", "" },
    { "NP", 977, "0", "" }, { "NR", 674, "0", "" }, { "NU", 683, "0", "" }, { "NZ", 64, "0", "" },
    { "OM", 968, "", "" },
    { "PA", 507, "", "" }, { "PE", 51, "0", "" }, { "PF", 689, "0", "" }, { "PG", 675, "", "" },
    { "PH", 63, "0", "" }, { "PK", 92, "0", "" }, { "PL", 48, "", "" }, { "PM", 508, "0", "" },
    NANP ("PR"), { "PS", 970, "0", "" }, { "PT", 351, "", "" }, { "PW", 680, "0", "" },
    { "PY", 595, "0", "" },
    { "QA", 974, "", "" },
    { "RE", 262, "0", "" }, { "RO", 40, "0", "" }, { "RS", 381, "0", "" }, { "RU", 7, "8", "810" },
    { "RW", 250, "0", "" },
    { "SA", 966, "0", "" }, { "SB", 677, "0", "" }, { "SC", 248, "", "" }, { "SD", 249, "0", "" },
    { "SE", 46, "0", "" }, { "SG", 65, "", "000|001|008" }, { "SH", 290, "0", "" }, { "SI", 386, "0", "" },
    { "SJ", 47, "", "" }, { "SK", 421, "0", "" }, { "SL", 232, "0", "" }, { "SM", 378, "", "" },
    { "SN", 221, "", "" }, { "SO", 252, "0", "" }, { "SR", 597, "0", "" }, { "SS", 211, "0", "" },
    { "ST", 239, "", "" }, { "SV", 503, "", "" }, NANP ("SX"), { "SY", 963, "0", "" },
    { "SZ", 268, "0", "" },
    NANP ("TC"), { "TD", 235, "0", "" }, { "TG", 228, "0", "" }, { "TH", 66, "0", "001" },
    { "TJ", 992, "8", "810" }, { "TK", 690, "0", "" }, { "TL", 670, "0", "" }, { "TM", 993, "8", "810" },
    { "TN", 216, "0", "" }, { "TO", 676, "0", "" }, { "TR", 90, "0", "" }, NANP ("TT"),
    { "TV", 688, "0", "" }, { "TW", 886, "0", "002" }, { "TZ", 255, "0", "000" },
    { "UA", 380, "0", "" }, { "UG", 256, "0", "000" }, NANP ("US"), { "UY", 598, "0", "" },
    { "UZ", 998, "8", "810" },
    { "VA", 39, "", "" }, NANP ("VC"), { "VE", 58, "0", "" }, NANP ("VG"), NANP ("VI"),
    { "VN", 84, "0", "" }, { "VU", 678, "0", "" },
    { "WF", 681, "0", "" }, { "WS", 685, "0", "" },
    { "XK", 383, "0", "" },         //  Kosovo: not in ISO 3166-1, but XK is what phones use
    { "YE", 967, "0", "" }, { "YT", 262, "0", "" },
    { "ZA", 27, "0", "" }, { "ZM", 260, "0", "" }, { "ZW", 263, "0", "" },
};
#define COUNTRIES (sizeof s_countries / sizeof s_countries [0])

//  Digits collected from a number: enough to tell "too long" apart
#define MAX_DIGITS  32

static const country_t *
s_country (const char *iso)
{
    if (!iso || strlen (iso) != 2)
        return NULL;
    for (size_t i = 0; i < COUNTRIES; i++)
        if (strncasecmp (s_countries [i].iso, iso, 2) == 0)
            return &s_countries [i];
    return NULL;
}

//  The first country with this calling code (they are in ISO order; where
//  several share a code, they share its trunk rule too), or NULL
static const country_t *
s_country_by_code (uint32_t code)
{
    for (size_t i = 0; i < COUNTRIES; i++)
        if (s_countries [i].code == code)
            return &s_countries [i];
    return NULL;
}

int
af_phone_country (const char *iso, uint32_t *calling_code)
{
    const country_t *country = s_country (iso);
    if (!country)
        return AF_E_MALFORMED;
    if (calling_code)
        *calling_code = country->code;
    return AF_OK;
}

//  Which alternative of a '|' list (of digit strings) digits starts with:
//  its length, or 0 for none
static size_t
s_prefix (const char *list, const char *digits)
{
    const char *p = list;
    while (*p) {
        size_t len = strcspn (p, "|");
        if (len && strncmp (digits, p, len) == 0)
            return len;
        p += len;
        if (*p == '|')
            p++;
    }
    return 0;
}

//  A UTF-8 sequence at p that is a separator: its length, or 0
static size_t
s_separator (const unsigned char *p)
{
    if (strchr (" \t-./()[]", *p) && *p)
        return 1;
    static const char *wide [] = {
        "\xc2\xa0",                 //  U+00A0 no-break space
        "\xe2\x80\x90", "\xe2\x80\x91", "\xe2\x80\x92", "\xe2\x80\x93", "\xe2\x80\x94", "\xe2\x80\x95",
                                    //  U+2010..2015 hyphens and dashes
        "\xe2\x80\x87", "\xe2\x80\x89", "\xe2\x80\xaf",     //  figure, thin, narrow no-break spaces
        "\xe2\x88\x92",             //  U+2212 minus
        "\xe3\x80\x80",             //  U+3000 ideographic space
        "\xef\xbc\x8d", "\xef\xbc\x88", "\xef\xbc\x89",     //  fullwidth - ( )
        NULL };
    for (int i = 0; wide [i]; i++) {
        size_t len = strlen (wide [i]);
        if (memcmp (p, wide [i], len) == 0)
            return len;
    }
    return 0;
}

//  Does an extension start at p (after at least one digit)? x, ext, ext.,
//  extension, or one of # , ; and the dialling pauses p and w
static bool
s_extension (const char *p)
{
    if (*p == '#' || *p == ',' || *p == ';')
        return true;
    char c = (char) tolower ((unsigned char) *p);
    if (c == 'p' || c == 'w')
        return !isalpha ((unsigned char) p [1]);
    if (c == 'x')
        return !isalpha ((unsigned char) p [1]);
    if (strncasecmp (p, "ext", 3) == 0)
        return true;
    return false;
}

//  Steps 1-3: the digits of text, whether it began with "+", and where a
//  "(0)" put its 0 (-1 if nowhere). AF_OK, or AF_E_MALFORMED with why.
static int
s_digits (const char *text, char digits [MAX_DIGITS + 1], bool *plus, int *zero_at,
          char *why, size_t whylen)
{
    const char *p = text;
    size_t count = 0;
    *plus = false;
    *zero_at = -1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp (p, "tel:", 4) == 0)
        p += 4;                             //  its parameters start with ';', an end below
    while (*p) {
        const unsigned char *u = (const unsigned char *) p;
        int digit = -1;
        size_t len = 0;
        if (*u >= '0' && *u <= '9') {
            digit = *u - '0';
            len = 1;
        }
        else
        if (u [0] == 0xef && u [1] == 0xbc && u [2] >= 0x90 && u [2] <= 0x99) {
            digit = u [2] - 0x90;           //  fullwidth digit
            len = 3;
        }
        if (digit >= 0) {
            if (count == MAX_DIGITS) {
                snprintf (why, whylen, "too long: more than %d digits", MAX_DIGITS);
                return AF_E_MALFORMED;
            }
            digits [count++] = (char) ('0' + digit);
            p += len;
        }
        else
        if (*u == '+' || (u [0] == 0xef && u [1] == 0xbc && u [2] == 0x8b)) {
            if (count || *plus) {
                snprintf (why, whylen, "a '+' that does not begin the number");
                return AF_E_MALFORMED;
            }
            *plus = true;
            p += *u == '+'? 1: 3;
        }
        else
        if (*u == '(' && p [1] == '0' && p [2] == ')' && count && count < MAX_DIGITS) {
            *zero_at = (int) count;         //  "+44 (0)20": dropped if international
            digits [count++] = '0';
            p += 3;
        }
        else
        if ((len = s_separator (u)))
            p += len;
        else
        if (count && s_extension (p))
            break;
        else {
            snprintf (why, whylen, "%s", *u == '*' || *u == '#'? "a service code (with * or #), not a number":
                                         isalpha (*u)? "letters in the number":
                                         "a character that is not part of a phone number");
            return AF_E_MALFORMED;
        }
    }
    digits [count] = 0;
    if (count == 0) {
        snprintf (why, whylen, "no digits");
        return AF_E_MALFORMED;
    }
    return AF_OK;
}

//  The calling code at the start of digits (1 to 3 digits, an assigned
//  one): its length, or 0. ITU codes are a prefix code: no assigned code
//  is the start of another, so the first one found is the one.
static size_t
s_calling_code (const char *digits, uint32_t *code)
{
    uint32_t value = 0;
    for (size_t len = 1; len <= 3 && digits [len - 1]; len++) {
        value = value * 10 + (uint32_t) (digits [len - 1] - '0');
        if (s_country_by_code (value)) {
            *code = value;
            return len;
        }
    }
    return 0;
}

//  Steps 4-5: the calling code and the national significant number of
//  digits, read in the default country. AF_OK, or AF_E_MALFORMED with why.
static int
s_split (const country_t *country, char *digits, bool plus, int zero_at, uint32_t *code,
         const char **national, char *why, size_t whylen)
{
    //  International: "+", the country's own prefixes, then "00"
    size_t start = 0;
    bool international = plus;
    if (!plus && ((start = s_prefix (country->intl, digits)) || (start = s_prefix ("00", digits))))
        international = true;
    if (international) {
        //  "(0)": the trunk prefix some write to say "not from abroad"
        if (zero_at >= 0 && (size_t) zero_at >= start)
            memmove (digits + zero_at, digits + zero_at + 1, strlen (digits + zero_at + 1) + 1);
        size_t len = s_calling_code (digits + start, code);
        if (!len) {
            if (digits [start])
                snprintf (why, whylen, "+%.3s... begins with no country's calling code", digits + start);
            else
                snprintf (why, whylen, "nothing after the international prefix");
            return AF_E_MALFORMED;
        }
        *national = digits + start + len;
        return AF_OK;
    }
    //  National: the default country's code, its trunk prefix dropped
    *code = country->code;
    *national = digits;
    if (country->code == 1) {
        size_t count = strlen (digits);
        if (count == 11 && digits [0] == '1')
            *national = digits + 1;
        else
        if (count != 10) {
            snprintf (why, whylen, "%s", count == 7? "a local number: its area code is missing":
                      "a North American number has 10 digits (area code, exchange, line)");
            return AF_E_MALFORMED;
        }
    }
    else
        *national += s_prefix (country->trunk, digits);
    return AF_OK;
}

int
af_phone_normalize (const char *text, const char *country_iso, char e164 [AF_E164_SIZE],
                    char *why, size_t whylen)
{
    assert (text && e164);
    *e164 = 0;
    char scratch [8];
    if (!why) {
        why = scratch;
        whylen = sizeof scratch;
    }
    *why = 0;
    const country_t *country = s_country (country_iso);
    if (!country) {
        snprintf (why, whylen, "unknown country '%s'", country_iso? country_iso: "");
        return AF_E_MALFORMED;
    }
    char digits [MAX_DIGITS + 1];
    bool plus;
    int zero_at;
    uint32_t code;
    const char *national;
    if (s_digits (text, digits, &plus, &zero_at, why, whylen) != AF_OK
    ||  s_split (country, digits, plus, zero_at, &code, &national, why, whylen) != AF_OK)
        return AF_E_MALFORMED;
    //  Where the trunk prefix is 0, no national number starts with 0: one
    //  written after the country code ("+49 0170") is dropped, a second is
    //  refused. So what comes out goes through again unchanged.
    const country_t *home = s_country_by_code (code);
    if (*national == '0' && s_prefix (home->trunk, "0") == 1) {
        national++;
        if (*national == '0') {
            snprintf (why, whylen, "a number of +%u does not start with 00 after the country code", code);
            return AF_E_MALFORMED;
        }
    }
    //  6. North America: NPA-NXX-XXXX, NPA and NXX starting with 2..9
    if (code == 1 && strlen (national) != 10) {
        snprintf (why, whylen, "a North American number has 10 digits after the 1");
        return AF_E_MALFORMED;
    }
    if (code == 1 && (national [0] < '2' || national [3] < '2')) {
        snprintf (why, whylen, "not a North American number: its area code and exchange start with 2..9");
        return AF_E_MALFORMED;
    }
    //  7. The length of the whole
    char whole [MAX_DIGITS + 8];
    snprintf (whole, sizeof whole, "%u%s", code, national);
    size_t count = strlen (whole);
    if (!*national || count < AF_E164_MIN_DIGITS || count > AF_E164_MAX_DIGITS) {
        snprintf (why, whylen, "too %s: %zu digits with the country code, a number has %d to %d",
                  count < AF_E164_MIN_DIGITS || !*national? "short": "long", count,
                  AF_E164_MIN_DIGITS, AF_E164_MAX_DIGITS);
        return AF_E_MALFORMED;
    }
    snprintf (e164, AF_E164_SIZE, "+%s", whole);
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

void
af_phone_test (bool verbose)
{
    if (verbose)
        printf (" * af_phone: ");
    struct {
        const char *text, *country, *expected;      //  expected: E.164, or "!" and a part of why
    } cases [] = {
        //  Germany: trunk 0, "00" abroad, "+49" with a "(0)" or a stray 0
        { "0170 1234567", "DE", "+491701234567" },
        { "+49 170 1234567", "DE", "+491701234567" },
        { "+49 (0)170 1234567", "DE", "+491701234567" },
        { "+49 0170 1234567", "de", "+491701234567" },
        { "0049 170/1234567", "DE", "+491701234567" },
        { "(030) 123 45 67", "DE", "+49301234567" },
        { "170 1234567", "DE", "+491701234567" },
        { "0170-1234567 ext. 12", "DE", "+491701234567" },
        //  The same number from other countries' address books
        { "+49 170 1234567", "US", "+491701234567" },
        { "011 49 170 1234567", "US", "+491701234567" },
        { "0049 170 1234567", "FR", "+491701234567" },
        { "00 49 170 1234567", "JP", "+491701234567" },
        { "010 49 170 1234567", "JP", "+491701234567" },
        { "0011 49 170 1234567", "AU", "+491701234567" },
        { "810 49 170 1234567", "RU", "+491701234567" },
        //  United Kingdom, France, Italy (the 0 stays), Spain (no trunk)
        { "07700 900123", "GB", "+447700900123" },
        { "+44 (0)20 7946 0018", "GB", "+442079460018" },
        { "+44 (0) 20 7946 0018", "US", "+442079460018" },
        { "01 23 45 67 89", "FR", "+33123456789" },
        { "06 12 34 56 78", "FR", "+33612345678" },
        { "06 6982 1234", "IT", "+390669821234" },
        { "+39 06 6982 1234", "DE", "+390669821234" },
        { "333 123 4567", "IT", "+393331234567" },
        { "612 34 56 78", "ES", "+34612345678" },
        //  North America: 10 digits, with or without the 1, NPA and NXX 2..9
        { "(415) 555-0132", "US", "+14155550132" },
        { "1-415-555-0132", "US", "+14155550132" },
        { "+1 415.555.0132", "DE", "+14155550132" },
        { "415 555 0132 x204", "CA", "+14155550132" },
        { "tel:+1-415-555-0132;ext=204", "US", "+14155550132" },
        { "TEL:+1-415-555-0132", "US", "+14155550132" },
        { "555-0132", "US", "!area code is missing" },
        { "(115) 555-0132", "US", "!start with 2..9" },
        { "(415) 155-0132", "US", "!start with 2..9" },
        { "+1 415 555 013", "US", "!10 digits after the 1" },
        { "41555501320", "US", "!10 digits" },
        //  Russia (trunk 8), Hungary (06), Lithuania (0 now, 8 before)
        { "8 (916) 123-45-67", "RU", "+79161234567" },
        { "+7 916 123 45 67", "DE", "+79161234567" },
        { "06 30 123 4567", "HU", "+36301234567" },
        { "8 612 34567", "LT", "+37061234567" },
        { "0 612 34567", "LT", "+37061234567" },
        //  Mexico, before and after 2019; China; India
        { "044 55 1234 5678", "MX", "+525512345678" },
        { "55 1234 5678", "MX", "+525512345678" },
        { "138 0013 8000", "CN", "+8613800138000" },
        { "098765 43210", "IN", "+919876543210" },
        //  Unicode: no-break spaces, dashes, fullwidth digits and plus
        { "+49\xc2\xa0" "170\xe2\x80\x91" "1234567", "DE", "+491701234567" },
        { "\xef\xbc\x8b\xef\xbc\x98\xef\xbc\x91 90 1234 5678", "JP", "+819012345678" },
        { "\xef\xbc\x90\xef\xbc\x99\xef\xbc\x90-1234-5678", "JP", "+819012345678" },
        //  Refused, with a reason
        { "", "DE", "!no digits" },
        { "   ", "DE", "!no digits" },
        { "1-800-FLOWERS", "US", "!letters" },
        { "Mobile", "DE", "!letters" },
        { "*100#", "DE", "!service code" },
        { "#31#0170", "DE", "!service code" },
        { "112", "DE", "!too short" },
        { "+49 170", "DE", "!too short" },
        { "+49 170 1234567 8901 2345", "DE", "!too long" },
        { "+28 1234 5678", "DE", "!+281... begins with no country's calling code" },
        { "+49 00 170 1234567", "DE", "!does not start with 00" },
        { "8 0612 34567", "LT", "+37061234567" },
        { "+", "DE", "!no digits" },
        { "00", "DE", "!nothing after the international prefix" },
        { "0170+1234567", "DE", "!does not begin" },
        { "++49 170 1234567", "DE", "!does not begin" },
        { "0170 1234567", "XX", "!unknown country 'XX'" },
        { "0170 1234567", "", "!unknown country" },
        { "0170 \x01 1234567", "DE", "!not part of a phone number" },
        { "0170 \xe2\x82\xac 1234567", "DE", "!not part of a phone number" },
        { "012345678901234567890123456789012345", "DE", "!too long" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char e164 [AF_E164_SIZE], why [AF_MAX_REASON + 1];
        int rc = af_phone_normalize (cases [i].text, cases [i].country, e164, why, sizeof why);
        bool ok = *cases [i].expected == '!'
            ? rc == AF_E_MALFORMED && strstr (why, cases [i].expected + 1) && *e164 == 0
            : rc == AF_OK && strcmp (e164, cases [i].expected) == 0;
        if (!ok)
            printf ("\n   '%s' in %s: got %s '%s', expected '%s'\n", cases [i].text, cases [i].country,
                    rc == AF_OK? "OK": "refused", rc == AF_OK? e164: why, cases [i].expected);
        assert (ok);
        //  What comes out is a fixed point, whatever the default country
        if (rc == AF_OK) {
            char again [AF_E164_SIZE];
            assert (af_phone_normalize (e164, "US", again, why, sizeof why) == AF_OK && strcmp (again, e164) == 0);
            assert (af_phone_normalize (e164, "IT", again, NULL, 0) == AF_OK && strcmp (again, e164) == 0);
        }
    }
    //  Every country of the table has a calling code that leads back to it
    //  (or to a country sharing it), and an ISO code of two capitals
    for (size_t i = 0; i < COUNTRIES; i++) {
        uint32_t code = 0;
        assert (isupper ((unsigned char) s_countries [i].iso [0]) && isupper ((unsigned char) s_countries [i].iso [1]));
        assert (af_phone_country (s_countries [i].iso, &code) == AF_OK && code == s_countries [i].code);
        assert (i == 0 || strcmp (s_countries [i - 1].iso, s_countries [i].iso) < 0);
        char digits [8];
        snprintf (digits, sizeof digits, "%u", code);
        uint32_t found = 0;
        assert (s_calling_code (digits, &found) == strlen (digits) && found == code);
    }
    assert (af_phone_country ("ZZ", NULL) == AF_E_MALFORMED);
    assert (af_phone_country ("DEU", NULL) == AF_E_MALFORMED);
    assert (af_phone_country (NULL, NULL) == AF_E_MALFORMED);
    if (verbose)
        printf ("OK\n");
}
