/*  =========================================================================
    af_forward - the bodies of FORWARD and FORWARD_REPLY (SPEC 5.37)

    Two of FORWARD's operations carry bodies of their own layout, decoded
    here and nowhere else, both batched (AF_FORWARD_BATCH items at most):
    a friendship check's asker's sets (its book, own numbers and blocked
    tokens) and the accounts it asks about (four counts as uint32 LE, the
    tokens in that order, then the names, each ended by 0x00), answered
    one verdict byte per account; and a directory answer, per token asked
    in order: the count of accounts claiming it and their names (each
    ended by 0x00), or AF_FORWARD_ELSEWHERE. All come from another broker
    of the cluster, so all are checked as hostile: sizes that do not add
    up, counts over their limits, names empty or too long, bytes after the
    last item are AF_E_MALFORMED.
    =========================================================================
*/
#ifndef AF_FORWARD_H_INCLUDED
#define AF_FORWARD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

typedef const uint8_t (*af_forward_tokens_t) [AF_CONTACT_TOKEN_SIZE];

//  A friendship FORWARD's body: the asker's sets and the accounts asked about
typedef struct {
    af_forward_tokens_t book, own, blocked;
    size_t nbook, nown, nblocked;
    const char *accounts [AF_FORWARD_BATCH];    //  each 1..AF_MAX_ACCOUNT bytes, ended by 0x00
    size_t naccounts;
} af_forward_sets_t;

//  Encode sets into a new body (the caller frees it) of *size bytes.
uint8_t *af_forward_sets_encode (const af_forward_sets_t *sets, size_t *size);

//  Decode a body: pointers into it (valid while it lives). AF_OK or
//  AF_E_MALFORMED (nbook over AF_MAX_BOOK, nown over AF_MAX_OWN_NUMBERS,
//  nblocked over AF_MAX_BLOCKS, naccounts not 1..AF_FORWARD_BATCH, a name
//  empty, too long or unended, or a size other than the counts say).
int af_forward_sets_decode (const uint8_t *body, size_t size, af_forward_sets_t *sets);

//  A friendship answer is one byte per account asked, in order: 0 not
//  friends, 1 friends, AF_FORWARD_ELSEWHERE not served here. AF_OK if
//  body is count such bytes, else AF_E_MALFORMED.
int af_forward_verdicts_check (const uint8_t *body, size_t size, size_t count);

//  A directory answer's item: who claims one token
typedef struct {
    bool elsewhere;                 //  its bucket is not served by the broker that answers
    size_t count;                   //  accounts claiming it, 0..AF_FORWARD_CLAIMS
    char names [AF_FORWARD_CLAIMS][AF_MAX_ACCOUNT + 1];
} af_forward_found_t;

//  Encode count items into a new body (the caller frees it) of *size bytes.
uint8_t *af_forward_found_encode (const af_forward_found_t *items, size_t count, size_t *size);

//  Decode exactly count items. AF_OK or AF_E_MALFORMED (a count over
//  AF_FORWARD_CLAIMS, a name empty, too long or unended, fewer or more
//  items than count).
int af_forward_found_decode (const uint8_t *body, size_t size, af_forward_found_t *items, size_t count);

//  Self test
void af_forward_test (bool verbose);

#endif
