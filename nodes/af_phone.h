/*  =========================================================================
    af_phone - phone numbers as people write them, to E.164

    Why: a contact's token (protocol/af_oprf.h) is a function of the exact
    bytes of its number, so "0170 1234567" in a German address book and
    "+49 170 1234567" in an Austrian one must become the same text before
    anything else happens, or two friends never match. The one form is
    E.164: "+", the country calling code, the national significant number,
    nothing else ("+491701234567").

    The rules, in order (af_phone_normalize):
    1. A "tel:" URI (vCard 4.0: "tel:+1-555-555-0100;ext=5") loses its
       scheme and its parameters.
    2. Separators are dropped: spaces (also no-break and thin ones),
       - . / ( ) [ ] and the Unicode dashes. Fullwidth digits and plus
       (as CJK phones write them) count as ASCII ones. A "(0)" in an
       international number ("+44 (0)20 7946 0018") is dropped.
    3. An extension or a dialling pause ends the number: x, ext, ext.,
       # or , or ; after a digit, p or w. Any other letter, a "*", or a
       "+" anywhere but first is refused: vanity numbers (1-800-FLOWERS)
       and service codes (*100#) are not numbers a person has.
    4. International form: a leading "+", or an international prefix:
       "00" everywhere, and the default country's own ("011" in North
       America, "010" Japan, "0011" Australia, "810" Russia, ...). The
       country code must be one that is assigned; a trunk "0" written
       after it ("+49 0170...") is dropped, except where 0 belongs to the
       number (Italy, San Marino, the Vatican, Côte d'Ivoire, Congo,
       Gabon, Benin).
    5. National form: the default country's calling code is put in front,
       after its trunk prefix is removed when present ("0" in most of
       Europe, Asia and Africa; "8" Russia, Kazakhstan, Belarus; "06"
       Hungary; "1" North America; none where numbers have none: Spain,
       Italy, Denmark, Norway, ...). A number with a trunk-prefix country
       but without the prefix is taken as a national number ("170
       1234567" in Germany).
    6. North American (+1) numbers have exactly 10 digits after the 1, the
       area code and the exchange each starting with 2..9.
    7. The result has AF_E164_MIN_DIGITS..AF_E164_MAX_DIGITS (8..15)
       digits, country code included.

    What this does not do: know each country's numbering plan (lengths of
    area codes, which ranges are mobile). A well-formed number that does
    not exist passes; it matches nobody.
    =========================================================================
*/
#ifndef AF_PHONE_H_INCLUDED
#define AF_PHONE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

//  The calling code of a country by its ISO 3166-1 alpha-2 code ("de" or
//  "DE"), e.g. 49. AF_OK, or AF_E_MALFORMED for a code not in the table.
int af_phone_country (const char *iso, uint32_t *calling_code);

//  Normalise text (a number as written, UTF-8, NUL-terminated) to E.164,
//  with country (ISO alpha-2) as the default for national numbers.
//  AF_OK with e164 set ("+491701234567"), or AF_E_MALFORMED with why
//  saying why this cannot be a number ("letters in the number", "too
//  short: 5 digits, at least 8 with the country code", "no country has
//  the calling code +28") and e164 empty. An unknown country is
//  AF_E_MALFORMED too ("unknown country 'XX'").
int af_phone_normalize (const char *text, const char *country, char e164 [AF_E164_SIZE],
                        char *why, size_t whylen);

//  Self test: a table of numbers as people write them, in several
//  countries, and what each becomes or why it is refused.
void af_phone_test (bool verbose);

#endif
