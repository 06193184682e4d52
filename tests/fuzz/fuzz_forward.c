/*  fuzz_forward - the bodies another broker sends in FORWARD and
    FORWARD_REPLY (af_forward: a friendship check's sets, a directory
    answer's accounts). The first byte picks which decoder gets the rest.

    Properties, beyond "no crash, no leak, no undefined behaviour": what
    is accepted holds together (the counts within their limits and the
    pointers inside the body; every name 1..AF_MAX_ACCOUNT bytes), and
    encoding what was decoded gives back the same bytes.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "af_forward.h"

#define CLAIMS 8

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *body = data + 1;
    size_t body_size = size - 1;
    if (data [0] & 1) {
        af_forward_sets_t sets;
        if (af_forward_sets_decode (body, body_size, &sets) != AF_OK)
            return 0;
        assert (sets.nbook <= AF_MAX_BOOK && sets.nown <= AF_MAX_OWN_NUMBERS && sets.nblocked <= AF_MAX_BLOCKS);
        assert ((const uint8_t *) (sets.blocked + sets.nblocked) == body + body_size);
        size_t again_size;
        uint8_t *again = af_forward_sets_encode (&sets, &again_size);
        assert (again_size == body_size && memcmp (again, body, body_size) == 0);
        free (again);
    }
    else {
        char claims [CLAIMS][AF_MAX_ACCOUNT + 1];
        size_t count;
        if (af_forward_claims_decode (body, body_size, claims, CLAIMS, &count) != AF_OK)
            return 0;
        assert (count <= CLAIMS);
        for (size_t i = 0; i < count; i++)
            assert (strlen (claims [i]) >= 1 && strlen (claims [i]) <= AF_MAX_ACCOUNT);
        size_t again_size;
        uint8_t *again = af_forward_claims_encode (claims, count, &again_size);
        assert (again_size == body_size && memcmp (again, body, body_size) == 0);
        free (again);
    }
    return 0;
}
