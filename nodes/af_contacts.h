/*  =========================================================================
    af_contacts - an address book, read from the file a phone exports

    Why: contact matching (issue 13, S3.1) starts from the user's own
    address book, as the phone's contacts app exports it, and every number
    in it must reach the OPRF in one form (E.164, af_phone) or friends
    never match. The file is hostile until checked: it came from anywhere,
    and its names end up on the user's terminal.

    Formats, told apart by the first line (after a UTF-8 byte order mark
    and blank lines): "BEGIN:VCARD" is a vCard file, anything else a CSV.
    - vCard 2.1, 3.0 and 4.0 (RFC 2426, RFC 6350) as Android and iOS
      export them: CRLF or LF, folded lines (a line starting with a space
      or a tab continues the previous one), quoted-printable values with
      soft line breaks (Android's 2.1 and 3.0 exports:
      "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=89..."; a soft
      break never joins END:VCARD to a value), property
      groups ("item1.TEL"), parameters in every spelling ("TEL;CELL:",
      "TEL;TYPE=CELL:", "TEL;type=CELL;type=pref:", 4.0's
      "TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+1-555-555-0100"), any number
      of TEL per card. The name is FN, else built from N ("prefix given
      additional family suffix"). Every other property is skipped,
      however long (photos). Text escapes (\, \; \\ \n) are undone.
    - CSV: one contact per row, "name,number[,number...]"; a first row
      whose fields after the first are not all empty, each one that is
      not holding a letter and none of them a phone number, is a header
      ("Name,Phone 1,Phone 2") and skipped;
      fields may be quoted ("Silva, Ana" with "" for a quote, line breaks
      inside quotes; a quote opens a field only at its start); the
      separator is the one of , ; TAB most frequent outside quotes in the
      first line (',' if none).

    What is refused, and how:
    - The whole file (AF_E_MALFORMED, or AF_E_TOO_BIG for a limit, with the
      line in err): more than AF_MAX_CONTACTS_FILE bytes or AF_MAX_CONTACTS
      cards or rows, a NUL byte, an empty file, a broken vCard structure
      (BEGIN:VCARD inside a card, END:VCARD outside one, a card that is
      never ended, a line outside any card), an unknown country.
    - One item, with a reason ("line 12: '1-800-FLOWERS' is not a phone
      number: letters in the number"), the rest being kept: a number
      af_phone refuses, a value that is not valid UTF-8 or is in another
      charset, a property we read (FN, N, TEL) longer than
      AF_MAX_CONTACT_LINE unfolded, a CSV row longer than that or with an
      unclosed quote, a card of an unknown vCard version, the numbers of a
      card beyond AF_MAX_CONTACT_NUMBERS (one reason for all of them).
      The first AF_MAX_CONTACT_REJECTS reasons are kept; the rest are
      counted.
    - Names are cleaned, not refused: control characters (C0, DEL, C1),
      bidirectional overrides and byte order marks become spaces, runs of
      spaces one, and a name longer than AF_MAX_CONTACT_NAME bytes is cut
      at a character boundary. So a name is safe to print.

    A card or row without any number kept is not a contact (it is counted).
    Numbers are unique within a contact; the book's distinct numbers over
    all contacts, sorted, are what a node blinds and sends
    (af_contacts_number).
    =========================================================================
*/
#ifndef AF_CONTACTS_H_INCLUDED
#define AF_CONTACTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "af_limits.h"

typedef struct _af_contacts_t af_contacts_t;

//  One contact: its display name (UTF-8, clean, may be empty), the line
//  its card or row starts on, and its numbers in E.164, in file order
typedef struct {
    char name [AF_MAX_CONTACT_NAME + 1];
    uint32_t line;
    uint32_t number_count;
    char numbers [AF_MAX_CONTACT_NUMBERS][AF_E164_SIZE];
} af_contact_t;

//  What a parse saw
typedef struct {
    uint32_t cards;             //  cards (vCard) or rows (CSV, the header not counted) read
    uint32_t contacts;          //  kept: with at least one number
    uint32_t without_number;    //  read, but with no number kept
    uint32_t numbers;           //  numbers kept, over all contacts
    uint32_t distinct;          //  distinct numbers kept (af_contacts_number_count)
    uint32_t refused;           //  items refused (numbers, names, rows, cards), each with a reason
} af_contacts_stats_t;

//  Parse an address book of size bytes (need not be NUL-terminated), its
//  national numbers read in country (ISO 3166 alpha-2, "DE"). AF_OK with
//  *self_p, or with err saying what and on which line, and *self_p NULL:
//  AF_E_MALFORMED (a broken file, an unknown country) or AF_E_TOO_BIG (a
//  limit of the file). Refusals of single items are no error: see
//  af_contacts_refusal.
int af_contacts_parse (const char *data, size_t size, const char *country, af_contacts_t **self_p,
                       char *err, size_t errlen);

//  The same from a file (a regular file, at most AF_MAX_CONTACTS_FILE
//  bytes). Also AF_E_INTERNAL when it cannot be opened or read (errno's
//  text in err). err names the file.
int af_contacts_load (const char *path, const char *country, af_contacts_t **self_p,
                      char *err, size_t errlen);

//  Destroy; sets *self_p to NULL.
void af_contacts_destroy (af_contacts_t **self_p);

//  "vcard" or "csv"
const char *af_contacts_format (af_contacts_t *self);

//  The contacts kept, in file order: how many, and one by index (NULL past
//  the end).
size_t af_contacts_size (af_contacts_t *self);
const af_contact_t *af_contacts_get (af_contacts_t *self, size_t index);

//  The distinct numbers of all contacts, sorted (strcmp): how many, and
//  one by index (NULL past the end). The OPRF inputs.
size_t af_contacts_number_count (af_contacts_t *self);
const char *af_contacts_number (af_contacts_t *self, size_t index);

//  The reasons kept for refused items, in file order (at most
//  AF_MAX_CONTACT_REJECTS; stats.refused counts them all).
size_t af_contacts_refusal_count (af_contacts_t *self);
const char *af_contacts_refusal (af_contacts_t *self, size_t index);

//  What the parse saw.
void af_contacts_stats (af_contacts_t *self, af_contacts_stats_t *stats);

//  Print everything, one line each: "format F", every contact
//  ("contact LINE NAME: +NUMBER +NUMBER"), every reason ("refused
//  REASON", then "... and N more refusals" past the kept ones), and the
//  stats. The test cases compare this text.
void af_contacts_print (af_contacts_t *self, FILE *out);

//  Self test: parsing from memory, the hostile inputs (a huge line,
//  100,000 numbers, every limit) and the cleaning of names.
void af_contacts_test (bool verbose);

#endif
