/*  =========================================================================
    af_forward - the bodies of FORWARD and FORWARD_REPLY (SPEC 5.37)

    Two of FORWARD's operations carry a body of their own layout, decoded
    here and nowhere else: a friendship check's asker's sets (its book,
    own numbers and blocked tokens: three counts as uint32 LE, then the
    tokens in that order), and a directory answer's claiming accounts
    (each name ended by 0x00). Both come from another broker of the
    cluster, so both are checked as hostile: sizes that do not add up,
    counts over their limits, names empty or too long are AF_E_MALFORMED.
    =========================================================================
*/
#ifndef AF_FORWARD_H_INCLUDED
#define AF_FORWARD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

typedef const uint8_t (*af_forward_tokens_t) [AF_CONTACT_TOKEN_SIZE];

//  The asker's sets (a friendship FORWARD's body)
typedef struct {
    af_forward_tokens_t book, own, blocked;
    size_t nbook, nown, nblocked;
} af_forward_sets_t;

//  Encode sets into a new body (the caller frees it) of *size bytes.
uint8_t *af_forward_sets_encode (const af_forward_sets_t *sets, size_t *size);

//  Decode a body: pointers into it (valid while it lives). AF_OK or
//  AF_E_MALFORMED (nbook over AF_MAX_BOOK, nown over AF_MAX_OWN_NUMBERS,
//  nblocked over AF_MAX_BLOCKS, or a size other than the counts say).
int af_forward_sets_decode (const uint8_t *body, size_t size, af_forward_sets_t *sets);

//  A directory answer: count account names into a new body (the caller
//  frees it) of *size bytes; each name 1..AF_MAX_ACCOUNT bytes.
uint8_t *af_forward_claims_encode (char claims [][AF_MAX_ACCOUNT + 1], size_t count, size_t *size);

//  Decode one: at most max names into claims, *count of them. AF_OK or
//  AF_E_MALFORMED (an unended, empty or too long name; more than max).
int af_forward_claims_decode (const uint8_t *body, size_t size, char claims [][AF_MAX_ACCOUNT + 1], size_t max,
                              size_t *count);

//  Self test
void af_forward_test (bool verbose);

#endif
