/*  =========================================================================
    af_forward - the bodies of FORWARD and FORWARD_REPLY

    See af_forward.h; protocol/SPEC.md 5.37 is the layout.
    =========================================================================
*/
#include "af_forward.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN AF_CONTACT_TOKEN_SIZE

uint8_t *
af_forward_sets_encode (const af_forward_sets_t *sets, size_t *size)
{
    assert (sets && size);
    *size = 12 + (sets->nbook + sets->nown + sets->nblocked) * TOKEN;
    uint8_t *body = (uint8_t *) malloc (*size);
    assert (body);
    uint32_t counts [3] = { (uint32_t) sets->nbook, (uint32_t) sets->nown, (uint32_t) sets->nblocked };
    memcpy (body, counts, 12);
    size_t at = 12;
    if (sets->nbook)
        memcpy (body + at, sets->book, sets->nbook * TOKEN);
    at += sets->nbook * TOKEN;
    if (sets->nown)
        memcpy (body + at, sets->own, sets->nown * TOKEN);
    at += sets->nown * TOKEN;
    if (sets->nblocked)
        memcpy (body + at, sets->blocked, sets->nblocked * TOKEN);
    return body;
}

int
af_forward_sets_decode (const uint8_t *body, size_t size, af_forward_sets_t *sets)
{
    assert (sets);
    uint32_t counts [3];
    if (!body || size < 12)
        return AF_E_MALFORMED;
    memcpy (counts, body, 12);
    //  Each count under its limit first, so their sum cannot overflow
    if (counts [0] > AF_MAX_BOOK || counts [1] > AF_MAX_OWN_NUMBERS || counts [2] > AF_MAX_BLOCKS
    ||  size != 12 + ((size_t) counts [0] + counts [1] + counts [2]) * TOKEN)
        return AF_E_MALFORMED;
    sets->nbook = counts [0];
    sets->nown = counts [1];
    sets->nblocked = counts [2];
    sets->book = (af_forward_tokens_t) (body + 12);
    sets->own = sets->book + sets->nbook;
    sets->blocked = sets->own + sets->nown;
    return AF_OK;
}

uint8_t *
af_forward_claims_encode (char claims [][AF_MAX_ACCOUNT + 1], size_t count, size_t *size)
{
    *size = 0;
    for (size_t i = 0; i < count; i++)
        *size += strlen (claims [i]) + 1;
    uint8_t *body = (uint8_t *) malloc (*size + 1);
    assert (body);
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen (claims [i]);
        assert (len > 0 && len <= AF_MAX_ACCOUNT);
        memcpy (body + at, claims [i], len + 1);
        at += len + 1;
    }
    return body;
}

int
af_forward_claims_decode (const uint8_t *body, size_t size, char claims [][AF_MAX_ACCOUNT + 1], size_t max,
                          size_t *count)
{
    *count = 0;
    size_t at = 0;
    while (at < size) {
        const uint8_t *nul = (const uint8_t *) memchr (body + at, 0, size - at);
        size_t len = nul? (size_t) (nul - (body + at)): 0;
        if (!nul || len == 0 || len > AF_MAX_ACCOUNT || *count >= max)
            return AF_E_MALFORMED;
        memcpy (claims [*count], body + at, len + 1);
        (*count)++;
        at += len + 1;
    }
    return AF_OK;
}

//  --------------------------------------------------------------------------
//  Self test

void
af_forward_test (bool verbose)
{
    if (verbose)
        printf (" * af_forward: ");
    uint8_t tokens [7][TOKEN];
    for (int i = 0; i < 7; i++)
        memset (tokens [i], 'a' + i, TOKEN);
    af_forward_sets_t sets = { tokens, tokens + 4, tokens + 6, 4, 2, 1 }, back;
    size_t size;
    uint8_t *body = af_forward_sets_encode (&sets, &size);
    assert (size == 12 + 7 * TOKEN);
    assert (af_forward_sets_decode (body, size, &back) == AF_OK);
    assert (back.nbook == 4 && back.nown == 2 && back.nblocked == 1);
    assert (memcmp (back.book [3], tokens [3], TOKEN) == 0 && memcmp (back.own [1], tokens [5], TOKEN) == 0);
    assert (memcmp (back.blocked [0], tokens [6], TOKEN) == 0);
    //  Sizes that do not add up, counts past their limits: refused
    assert (af_forward_sets_decode (body, size - 1, &back) == AF_E_MALFORMED);
    assert (af_forward_sets_decode (body, 11, &back) == AF_E_MALFORMED);
    assert (af_forward_sets_decode (NULL, 0, &back) == AF_E_MALFORMED);
    uint32_t counts [3] = { 0, AF_MAX_OWN_NUMBERS + 1, 0 };
    memcpy (body, counts, 12);
    assert (af_forward_sets_decode (body, 12 + (AF_MAX_OWN_NUMBERS + 1) * TOKEN, &back) == AF_E_MALFORMED);
    uint32_t huge [3] = { UINT32_MAX, UINT32_MAX, 2 };
    memcpy (body, huge, 12);
    assert (af_forward_sets_decode (body, size, &back) == AF_E_MALFORMED);
    free (body);
    af_forward_sets_t none = { NULL, NULL, NULL, 0, 0, 0 };
    body = af_forward_sets_encode (&none, &size);
    assert (size == 12 && af_forward_sets_decode (body, size, &back) == AF_OK);
    assert (back.nbook == 0 && back.nown == 0 && back.nblocked == 0);
    free (body);
    //  A directory answer's claims
    char claims [3][AF_MAX_ACCOUNT + 1] = { "ana", "bob", "" }, got [2][AF_MAX_ACCOUNT + 1];
    size_t count;
    body = af_forward_claims_encode (claims, 2, &size);
    assert (size == 8 && memcmp (body, "ana\0bob\0", 8) == 0);
    assert (af_forward_claims_decode (body, size, got, 2, &count) == AF_OK && count == 2);
    assert (strcmp (got [1], "bob") == 0);
    assert (af_forward_claims_decode (body, size, got, 1, &count) == AF_E_MALFORMED);
    assert (af_forward_claims_decode (body, size - 1, got, 2, &count) == AF_E_MALFORMED);
    free (body);
    assert (af_forward_claims_decode ((const uint8_t *) "\0", 1, got, 2, &count) == AF_E_MALFORMED);
    assert (af_forward_claims_decode ((const uint8_t *) "", 0, got, 2, &count) == AF_OK && count == 0);
    char long_name [AF_MAX_ACCOUNT + 2];
    memset (long_name, 'x', AF_MAX_ACCOUNT + 1);
    long_name [AF_MAX_ACCOUNT + 1] = 0;
    assert (af_forward_claims_decode ((const uint8_t *) long_name, AF_MAX_ACCOUNT + 2, got, 2, &count)
            == AF_E_MALFORMED);
    if (verbose)
        printf ("OK\n");
}
