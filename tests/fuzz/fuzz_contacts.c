/*  fuzz_contacts - the address-book parser (af_contacts_parse) and the
    phone-number normaliser under it (af_phone_normalize), as the node runs
    them on a file the user imports. The first byte picks the default
    country; the rest is the file.

    Properties, beyond "no crash, no leak, no undefined behaviour": what
    is accepted holds together (counts add up, every name is clean UTF-8
    within its limit, every contact has 1..16 distinct numbers, the book's
    numbers are sorted and distinct), and every number that comes out is
    E.164 and goes through again unchanged, whatever the default country.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "af_contacts.h"
#include "af_phone.h"

static const char *s_countries [] = { "DE", "US", "IT", "RU", "GB", "JP", "HU", "MX", "LT", "FR", "CN", "ES" };
#define COUNTRIES (sizeof s_countries / sizeof s_countries [0])

static void
s_check_e164 (const char *e164)
{
    size_t len = strlen (e164);
    assert (e164 [0] == '+' && len >= 1 + AF_E164_MIN_DIGITS && len <= 1 + AF_E164_MAX_DIGITS);
    for (size_t i = 1; i < len; i++)
        assert (e164 [i] >= '0' && e164 [i] <= '9');
    for (size_t c = 0; c < COUNTRIES; c++) {
        char again [AF_E164_SIZE];
        assert (af_phone_normalize (e164, s_countries [c], again, NULL, 0) == AF_OK);
        assert (strcmp (again, e164) == 0);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *country = s_countries [data [0] % COUNTRIES];
    const char *text = (const char *) data + 1;
    size--;

    //  The normaliser alone, on the input as one string
    char line [512], e164 [AF_E164_SIZE], why [AF_MAX_REASON + 1];
    size_t len = size < sizeof line - 1? size: sizeof line - 1;
    memcpy (line, text, len);
    line [len] = 0;
    if (af_phone_normalize (line, country, e164, why, sizeof why) == AF_OK)
        s_check_e164 (e164);
    else
        assert (*e164 == 0 && *why);

    //  The parser
    char err [AF_MAX_REASON + 1];
    af_contacts_t *book = NULL;
    int rc = af_contacts_parse (text, size, country, &book, err, sizeof err);
    assert ((rc == AF_OK) == (book != NULL));
    if (!book) {
        assert (rc == AF_E_MALFORMED || rc == AF_E_TOO_BIG);
        assert (*err);
        return 0;
    }
    af_contacts_stats_t stats;
    af_contacts_stats (book, &stats);
    assert (stats.contacts == af_contacts_size (book));
    assert (stats.contacts + stats.without_number == stats.cards);
    assert (stats.cards <= AF_MAX_CONTACTS);
    assert (af_contacts_refusal_count (book) <= AF_MAX_CONTACT_REJECTS);
    assert (af_contacts_refusal_count (book) <= stats.refused);
    uint32_t numbers = 0;
    for (size_t i = 0; i < af_contacts_size (book); i++) {
        const af_contact_t *contact = af_contacts_get (book, i);
        size_t name = strlen (contact->name);
        assert (name <= AF_MAX_CONTACT_NAME);
        assert (af_utf8_valid ((const uint8_t *) contact->name, name));
        for (size_t k = 0; k < name; k++)
            assert ((unsigned char) contact->name [k] >= 0x20 && contact->name [k] != 0x7f);
        assert (name == 0 || (contact->name [0] != ' ' && contact->name [name - 1] != ' '));
        assert (contact->number_count >= 1 && contact->number_count <= AF_MAX_CONTACT_NUMBERS);
        for (uint32_t k = 0; k < contact->number_count; k++) {
            s_check_e164 (contact->numbers [k]);
            for (uint32_t j = 0; j < k; j++)
                assert (strcmp (contact->numbers [j], contact->numbers [k]));
        }
        numbers += contact->number_count;
    }
    assert (numbers == stats.numbers);
    assert (af_contacts_number_count (book) == stats.distinct && stats.distinct <= stats.numbers);
    for (size_t i = 1; i < af_contacts_number_count (book); i++)
        assert (strcmp (af_contacts_number (book, i - 1), af_contacts_number (book, i)) < 0);
    af_contacts_destroy (&book);
    return 0;
}
