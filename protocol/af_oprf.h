/*  =========================================================================
    af_oprf - an oblivious pseudorandom function: RFC 9497, OPRF mode
    (0x00), suite ristretto255-SHA512, on libsodium

    Why: contact matching (issue 13, B4) must never show the server a phone
    number, and a plain hash of one is no protection (there are only about
    10^10 numbers per country: a laptop hashes them all in minutes). With
    an OPRF the device blinds each number with a random scalar, the
    contacts service multiplies the blinded element by a key only it holds,
    and the device removes the blind and hashes: the result depends on the
    number and the key, the service saw only a uniformly random group
    element, and anyone who wants to test a guess must ask the service,
    which is rate-limited. Outputs of one number under one key are equal on
    every device, so two address books can be intersected by their outputs.

        node                                      contacts service (key k)
        blind r, B = r * HashToGroup (number) --->
                                             <--- Z = k * B   (evaluate)
        N = r^-1 * Z = k * HashToGroup (number)
        output = SHA-512 (len input || input || len N || N || "Finalize")

    The functions follow the RFC's names and byte layouts exactly, so the
    RFC's test vectors hold (the self-test checks them) and any other
    RFC 9497 implementation interoperates. HashToGroup is RFC 9380's
    hash_to_ristretto255 with expand_message_xmd (SHA-512) and the DST
    "HashToGroup-OPRFV1-\x00-ristretto255-SHA512".

    Secrets (keys, blinds, inputs' intermediate hashes) are wiped with
    sodium_memzero before a function returns; the group arithmetic is
    libsodium's, which runs in constant time. Every function returns AF_OK,
    or AF_E_MALFORMED for an input that is not what the RFC allows (an
    element that is not a canonical ristretto255 encoding or is the
    identity, a scalar that is not reduced or is zero, an input longer than
    AF_OPRF_MAX_INPUT); nothing is written to an output then.
    =========================================================================
*/
#ifndef AF_OPRF_H_INCLUDED
#define AF_OPRF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

//  A fresh random key: a nonzero scalar. AF_OK.
int af_oprf_keygen (uint8_t key [AF_OPRF_SCALAR_SIZE]);

//  The RFC's DeriveKeyPair: a key from a seed (at least 32 bytes of
//  entropy) and public info, and its public element pk (may be NULL).
//  AF_OK, or AF_E_MALFORMED for info longer than 65535 bytes (or, with
//  negligible probability, no nonzero scalar after 256 tries).
int af_oprf_derive_key (const uint8_t *seed, size_t seed_size, const uint8_t *info, size_t info_size,
                        uint8_t key [AF_OPRF_SCALAR_SIZE], uint8_t pk [AF_OPRF_ELEMENT_SIZE]);

//  Is key a usable key: a canonical (reduced) nonzero scalar? AF_OK or
//  AF_E_MALFORMED. Check a key read from a file with this.
int af_oprf_key_check (const uint8_t key [AF_OPRF_SCALAR_SIZE]);

//  A key's public fingerprint, AF_OPRF_KEY_ID_HEX hex digits: BLAKE2b of
//  its public element. It tells two keys apart (outputs made under
//  different keys never match) and reveals nothing of the key.
void af_oprf_key_id (const uint8_t key [AF_OPRF_SCALAR_SIZE], char id [AF_OPRF_KEY_ID_HEX + 1]);

//  Is element a valid element to receive: a canonical ristretto255
//  encoding, not the identity? AF_OK or AF_E_MALFORMED. (The RFC's
//  DeserializeElement; evaluate and finalize check their inputs with it.)
int af_oprf_element_check (const uint8_t element [AF_OPRF_ELEMENT_SIZE]);

//  HashToGroup (input): hash_to_ristretto255 with the suite's DST.
//  AF_E_MALFORMED for an input over AF_OPRF_MAX_INPUT bytes.
int af_oprf_hash_to_group (const uint8_t *input, size_t size, uint8_t element [AF_OPRF_ELEMENT_SIZE]);

//  Blind (input): a fresh random blind, kept by the caller for finalize,
//  and the blinded element, sent to the service.
int af_oprf_blind (const uint8_t *input, size_t size, uint8_t blind [AF_OPRF_SCALAR_SIZE],
                   uint8_t blinded [AF_OPRF_ELEMENT_SIZE]);

//  The same with a blind of the caller's (a canonical nonzero scalar): for
//  the RFC's test vectors, and for callers that make blinds in bulk.
int af_oprf_blind_with (const uint8_t *input, size_t size, const uint8_t blind [AF_OPRF_SCALAR_SIZE],
                        uint8_t blinded [AF_OPRF_ELEMENT_SIZE]);

//  BlindEvaluate (key, blinded): the service's side. AF_E_MALFORMED when
//  blinded is not a valid element (af_oprf_element_check) or key is not a
//  key.
int af_oprf_evaluate (const uint8_t key [AF_OPRF_SCALAR_SIZE], const uint8_t blinded [AF_OPRF_ELEMENT_SIZE],
                      uint8_t evaluated [AF_OPRF_ELEMENT_SIZE]);

//  Finalize (input, blind, evaluated): the device's output for input.
//  AF_E_MALFORMED when evaluated is not a valid element or blind is not
//  a nonzero scalar.
int af_oprf_finalize (const uint8_t *input, size_t size, const uint8_t blind [AF_OPRF_SCALAR_SIZE],
                      const uint8_t evaluated [AF_OPRF_ELEMENT_SIZE], uint8_t output [AF_OPRF_OUTPUT_SIZE]);

//  Finalize count inputs at once, as a node does with a CONTACTS_EVALUATED:
//  the same outputs as af_oprf_finalize on each, but one scalar inversion
//  for all of them (Montgomery's trick) instead of one each, a fifth of a
//  number's cost. inputs [i] has sizes [i] bytes. AF_OK, or
//  AF_E_MALFORMED with *bad (if not NULL) the first index refused (an
//  input too long, a blind that is not a nonzero scalar, an evaluated
//  element that is not valid); outputs are then not all written. AF_OK for
//  count 0.
int af_oprf_finalize_batch (size_t count, const uint8_t *const *inputs, const size_t *sizes,
                            const uint8_t (*blinds) [AF_OPRF_SCALAR_SIZE],
                            const uint8_t (*evaluated) [AF_OPRF_ELEMENT_SIZE],
                            uint8_t (*outputs) [AF_OPRF_OUTPUT_SIZE], size_t *bad);

//  The RFC's Evaluate (key, input): the output computed directly by the
//  key's holder, equal to what blind, evaluate and finalize give.
int af_oprf_evaluate_direct (const uint8_t key [AF_OPRF_SCALAR_SIZE], const uint8_t *input, size_t size,
                             uint8_t output [AF_OPRF_OUTPUT_SIZE]);

//  Self test: the RFC 9497 vectors (ristretto255-SHA512, OPRF mode), the
//  round trip, and the refusals.
void af_oprf_test (bool verbose);

#endif
