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
    assert (sets && size && sets->naccounts <= AF_FORWARD_BATCH);
    size_t names = 0;
    for (size_t i = 0; i < sets->naccounts; i++)
        names += strlen (sets->accounts [i]) + 1;
    *size = 16 + (sets->nbook + sets->nown + sets->nblocked) * TOKEN + names;
    uint8_t *body = (uint8_t *) malloc (*size);
    assert (body);
    uint32_t counts [4] = { (uint32_t) sets->nbook, (uint32_t) sets->nown, (uint32_t) sets->nblocked,
                            (uint32_t) sets->naccounts };
    memcpy (body, counts, 16);
    size_t at = 16;
    if (sets->nbook)
        memcpy (body + at, sets->book, sets->nbook * TOKEN);
    at += sets->nbook * TOKEN;
    if (sets->nown)
        memcpy (body + at, sets->own, sets->nown * TOKEN);
    at += sets->nown * TOKEN;
    if (sets->nblocked)
        memcpy (body + at, sets->blocked, sets->nblocked * TOKEN);
    at += sets->nblocked * TOKEN;
    for (size_t i = 0; i < sets->naccounts; i++) {
        size_t len = strlen (sets->accounts [i]);
        assert (len > 0 && len <= AF_MAX_ACCOUNT);
        memcpy (body + at, sets->accounts [i], len + 1);
        at += len + 1;
    }
    return body;
}

//  One name at body [*at] (1..AF_MAX_ACCOUNT bytes and 0x00): its start, or NULL
static const char *
s_name (const uint8_t *body, size_t size, size_t *at)
{
    const uint8_t *start = body + *at;
    const uint8_t *nul = *at < size? (const uint8_t *) memchr (start, 0, size - *at): NULL;
    size_t len = nul? (size_t) (nul - start): 0;
    if (!nul || len == 0 || len > AF_MAX_ACCOUNT)
        return NULL;
    *at += len + 1;
    return (const char *) start;
}

int
af_forward_sets_decode (const uint8_t *body, size_t size, af_forward_sets_t *sets)
{
    assert (sets);
    uint32_t counts [4];
    if (!body || size < 16)
        return AF_E_MALFORMED;
    memcpy (counts, body, 16);
    //  Each count under its limit first, so their sum cannot overflow
    if (counts [0] > AF_MAX_BOOK || counts [1] > AF_MAX_OWN_NUMBERS || counts [2] > AF_MAX_BLOCKS
    ||  counts [3] == 0 || counts [3] > AF_FORWARD_BATCH)
        return AF_E_MALFORMED;
    size_t at = 16 + ((size_t) counts [0] + counts [1] + counts [2]) * TOKEN;
    if (size < at)
        return AF_E_MALFORMED;
    sets->nbook = counts [0];
    sets->nown = counts [1];
    sets->nblocked = counts [2];
    sets->book = (af_forward_tokens_t) (body + 16);
    sets->own = sets->book + sets->nbook;
    sets->blocked = sets->own + sets->nown;
    sets->naccounts = counts [3];
    for (size_t i = 0; i < sets->naccounts; i++)
        if (!(sets->accounts [i] = s_name (body, size, &at)))
            return AF_E_MALFORMED;
    return at == size? AF_OK: AF_E_MALFORMED;
}

int
af_forward_verdicts_check (const uint8_t *body, size_t size, size_t count)
{
    if (size != count || (count && !body))
        return AF_E_MALFORMED;
    for (size_t i = 0; i < size; i++)
        if (body [i] > 1 && body [i] != AF_FORWARD_ELSEWHERE)
            return AF_E_MALFORMED;
    return AF_OK;
}

uint8_t *
af_forward_found_encode (const af_forward_found_t *items, size_t count, size_t *size)
{
    assert (size);
    *size = 0;
    for (size_t i = 0; i < count; i++) {
        assert (items [i].count <= AF_FORWARD_CLAIMS);
        *size += 1;
        for (size_t n = 0; !items [i].elsewhere && n < items [i].count; n++)
            *size += strlen (items [i].names [n]) + 1;
    }
    uint8_t *body = (uint8_t *) malloc (*size + 1);
    assert (body);
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        body [at++] = items [i].elsewhere? AF_FORWARD_ELSEWHERE: (uint8_t) items [i].count;
        for (size_t n = 0; !items [i].elsewhere && n < items [i].count; n++) {
            size_t len = strlen (items [i].names [n]);
            assert (len > 0 && len <= AF_MAX_ACCOUNT);
            memcpy (body + at, items [i].names [n], len + 1);
            at += len + 1;
        }
    }
    return body;
}

int
af_forward_found_decode (const uint8_t *body, size_t size, af_forward_found_t *items, size_t count)
{
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        if (at >= size)
            return AF_E_MALFORMED;
        uint8_t head = body [at++];
        items [i].elsewhere = head == AF_FORWARD_ELSEWHERE;
        items [i].count = items [i].elsewhere? 0: head;
        if (items [i].count > AF_FORWARD_CLAIMS)
            return AF_E_MALFORMED;
        for (size_t n = 0; n < items [i].count; n++) {
            size_t start = at;
            if (!s_name (body, size, &at))
                return AF_E_MALFORMED;
            memcpy (items [i].names [n], body + start, at - start);
        }
    }
    return at == size? AF_OK: AF_E_MALFORMED;
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
    af_forward_sets_t sets = { tokens, tokens + 4, tokens + 6, 4, 2, 1, { "ana", "bob" }, 2 }, back;
    size_t size;
    uint8_t *body = af_forward_sets_encode (&sets, &size);
    assert (size == 16 + 7 * TOKEN + 8);
    assert (af_forward_sets_decode (body, size, &back) == AF_OK);
    assert (back.nbook == 4 && back.nown == 2 && back.nblocked == 1 && back.naccounts == 2);
    assert (memcmp (back.book [3], tokens [3], TOKEN) == 0 && memcmp (back.own [1], tokens [5], TOKEN) == 0);
    assert (memcmp (back.blocked [0], tokens [6], TOKEN) == 0);
    assert (strcmp (back.accounts [0], "ana") == 0 && strcmp (back.accounts [1], "bob") == 0);
    //  Sizes that do not add up, counts past their limits, names cut: refused
    assert (af_forward_sets_decode (body, size - 1, &back) == AF_E_MALFORMED);
    assert (af_forward_sets_decode (body, size - 4, &back) == AF_E_MALFORMED);
    assert (af_forward_sets_decode (body, 15, &back) == AF_E_MALFORMED);
    assert (af_forward_sets_decode (NULL, 0, &back) == AF_E_MALFORMED);
    uint8_t *longer = (uint8_t *) malloc (size + 1);
    assert (longer);
    memcpy (longer, body, size);
    longer [size] = 'x';
    assert (af_forward_sets_decode (longer, size + 1, &back) == AF_E_MALFORMED);
    free (longer);
    uint32_t counts [4] = { 0, AF_MAX_OWN_NUMBERS + 1, 0, 1 };
    memcpy (body, counts, 16);
    assert (af_forward_sets_decode (body, 16 + (AF_MAX_OWN_NUMBERS + 1) * TOKEN + 4, &back) == AF_E_MALFORMED);
    uint32_t huge [4] = { UINT32_MAX, UINT32_MAX, 2, 1 };
    memcpy (body, huge, 16);
    assert (af_forward_sets_decode (body, size, &back) == AF_E_MALFORMED);
    uint32_t no_account [4] = { 4, 2, 1, 0 };
    memcpy (body, no_account, 16);
    assert (af_forward_sets_decode (body, 16 + 7 * TOKEN, &back) == AF_E_MALFORMED);
    uint32_t too_many [4] = { 4, 2, 1, AF_FORWARD_BATCH + 1 };
    memcpy (body, too_many, 16);
    assert (af_forward_sets_decode (body, size, &back) == AF_E_MALFORMED);
    free (body);
    af_forward_sets_t none = { NULL, NULL, NULL, 0, 0, 0, { "cy" }, 1 };
    body = af_forward_sets_encode (&none, &size);
    assert (size == 19 && af_forward_sets_decode (body, size, &back) == AF_OK);
    assert (back.nbook == 0 && back.nown == 0 && back.nblocked == 0 && back.naccounts == 1);
    body [18] = 'y';                    //  the name unended
    assert (af_forward_sets_decode (body, size, &back) == AF_E_MALFORMED);
    free (body);
    //  Verdicts
    assert (af_forward_verdicts_check ((const uint8_t *) "\x00\x01\xff", 3, 3) == AF_OK);
    assert (af_forward_verdicts_check ((const uint8_t *) "\x00\x02", 2, 2) == AF_E_MALFORMED);
    assert (af_forward_verdicts_check ((const uint8_t *) "\x00", 1, 2) == AF_E_MALFORMED);
    assert (af_forward_verdicts_check (NULL, 0, 0) == AF_OK);
    //  A directory answer: claims per token, or elsewhere
    af_forward_found_t *items = (af_forward_found_t *) calloc (3, sizeof (af_forward_found_t));
    af_forward_found_t *got = (af_forward_found_t *) calloc (3, sizeof (af_forward_found_t));
    assert (items && got);
    items [0].count = 2;
    strcpy (items [0].names [0], "ana");
    strcpy (items [0].names [1], "bob");
    items [2].elsewhere = true;
    body = af_forward_found_encode (items, 3, &size);
    assert (size == 11 && memcmp (body, "\x02" "ana\0bob\0" "\x00\xff", 11) == 0);
    assert (af_forward_found_decode (body, size, got, 3) == AF_OK);
    assert (got [0].count == 2 && strcmp (got [0].names [1], "bob") == 0 && !got [0].elsewhere);
    assert (got [1].count == 0 && !got [1].elsewhere && got [2].elsewhere && got [2].count == 0);
    assert (af_forward_found_decode (body, size, got, 2) == AF_E_MALFORMED);       //  more than asked
    assert (af_forward_found_decode (body, size, got, 3 + 0) == AF_OK);
    assert (af_forward_found_decode (body, size - 1, got, 3) == AF_E_MALFORMED);   //  fewer
    assert (af_forward_found_decode (body, 5, got, 1) == AF_E_MALFORMED);          //  a name cut
    free (body);
    assert (af_forward_found_decode ((const uint8_t *) "\x01\x00", 2, got, 1) == AF_E_MALFORMED);   //  empty
    assert (af_forward_found_decode ((const uint8_t *) "\x09", 1, got, 1) == AF_E_MALFORMED);       //  over 8
    assert (af_forward_found_decode ((const uint8_t *) "", 0, got, 0) == AF_OK);
    uint8_t long_name [AF_MAX_ACCOUNT + 3];
    long_name [0] = 1;
    memset (long_name + 1, 'x', AF_MAX_ACCOUNT + 1);
    long_name [AF_MAX_ACCOUNT + 2] = 0;
    assert (af_forward_found_decode (long_name, sizeof long_name, got, 1) == AF_E_MALFORMED);
    free (items);
    free (got);
    if (verbose)
        printf ("OK\n");
}
