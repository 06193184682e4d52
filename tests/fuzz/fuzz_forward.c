/*  fuzz_forward - the bodies another broker sends in FORWARD and
    FORWARD_REPLY (af_forward: a friendship check's sets and accounts, its
    verdicts, a directory answer's claims per token). The first byte picks
    which decoder gets the rest (and, for the answers, how many items were
    asked: its bits above the lowest two).

    Properties, beyond "no crash, no leak, no undefined behaviour": what
    is accepted holds together (the counts within their limits and the
    pointers inside the body; every name 1..AF_MAX_ACCOUNT bytes), and
    encoding what was decoded gives back the same bytes.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "af_forward.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *body = data + 1;
    size_t body_size = size - 1, asked = data [0] >> 2;
    if ((data [0] & 3) == 1) {
        af_forward_sets_t sets;
        if (af_forward_sets_decode (body, body_size, &sets) != AF_OK)
            return 0;
        assert (sets.nbook <= AF_MAX_BOOK && sets.nown <= AF_MAX_OWN_NUMBERS && sets.nblocked <= AF_MAX_BLOCKS);
        assert (sets.naccounts >= 1 && sets.naccounts <= AF_FORWARD_BATCH);
        for (size_t i = 0; i < sets.naccounts; i++) {
            size_t len = strlen (sets.accounts [i]);
            assert (len >= 1 && len <= AF_MAX_ACCOUNT);
            assert ((const uint8_t *) sets.accounts [i] >= (const uint8_t *) (sets.blocked + sets.nblocked));
            assert ((const uint8_t *) sets.accounts [i] + len < body + body_size);
        }
        size_t again_size;
        uint8_t *again = af_forward_sets_encode (&sets, &again_size);
        assert (again_size == body_size && memcmp (again, body, body_size) == 0);
        free (again);
    }
    else
    if ((data [0] & 3) == 2) {
        if (af_forward_verdicts_check (body, body_size, asked) != AF_OK)
            return 0;
        for (size_t i = 0; i < body_size; i++)
            assert (body [i] <= 1 || body [i] == AF_FORWARD_ELSEWHERE);
    }
    else {
        af_forward_found_t *items = (af_forward_found_t *) calloc (asked + 1, sizeof (af_forward_found_t));
        assert (items);
        if (af_forward_found_decode (body, body_size, items, asked) == AF_OK) {
            for (size_t i = 0; i < asked; i++) {
                assert (items [i].count <= AF_FORWARD_CLAIMS && (!items [i].elsewhere || items [i].count == 0));
                for (size_t n = 0; n < items [i].count; n++)
                    assert (strlen (items [i].names [n]) >= 1 && strlen (items [i].names [n]) <= AF_MAX_ACCOUNT);
            }
            size_t again_size;
            uint8_t *again = af_forward_found_encode (items, asked, &again_size);
            assert (again_size == body_size && memcmp (again, body, body_size) == 0);
            free (again);
        }
        free (items);
    }
    return 0;
}
