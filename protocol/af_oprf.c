/*  =========================================================================
    af_oprf - RFC 9497 OPRF, ristretto255-SHA512 (see af_oprf.h)

    The suite's pieces, as the RFC (section 4.1) names them:
    - contextString = "OPRFV1-" || I2OSP (mode 0, 1) || "-" || "ristretto255-SHA512"
    - HashToGroup: expand_message_xmd (SHA-512) to 64 bytes with the DST
      "HashToGroup-" || contextString, then the ristretto255 one-way map
      (libsodium's crypto_core_ristretto255_from_hash is that map)
    - HashToScalar: the same expansion with "HashToScalar-" || ..., read as
      a little-endian 512-bit integer and reduced mod the group order
      (crypto_core_ristretto255_scalar_reduce); DeriveKeyPair uses it with
      the DST "DeriveKeyPair" || contextString
    - SerializeElement is the ristretto255 encoding; DeserializeElement
      refuses a non-canonical encoding and the identity (all zeros, the
      identity's only canonical encoding)
    =========================================================================
*/
#include "af_oprf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

//  contextString: "OPRFV1-", the mode byte 0x00, "-", the suite's name
#define CONTEXT             "OPRFV1-\0-ristretto255-SHA512"
#define DST_HASH_TO_GROUP   "HashToGroup-" CONTEXT
#define DST_HASH_TO_SCALAR  "HashToScalar-" CONTEXT
#define DST_DERIVE_KEY      "DeriveKeyPair" CONTEXT
#define DST_LEN(dst)        (sizeof (dst) - 1)

#define SHA512_SIZE         crypto_hash_sha512_BYTES       //  64: b_in_bytes
#define SHA512_BLOCK        128                             //  s_in_bytes
#define UNIFORM_SIZE        64      //  what HashToGroup and HashToScalar expand to

//  A message given in pieces (the RFC concatenates: seed || len || info ||
//  counter), so no caller needs a buffer for the whole of it
typedef struct {
    const uint8_t *data;
    size_t size;
} piece_t;

//  --------------------------------------------------------------------------
//  RFC 9380 section 5.3.1, expand_message_xmd with SHA-512. Writes size
//  bytes (at most 255 * 64) of uniform output.

static void
s_expand_xmd (const piece_t *msg, size_t pieces, const uint8_t *dst, size_t dst_len,
              uint8_t *out, size_t size)
{
    assert (dst_len <= 255 && size <= 255 * SHA512_SIZE && size <= 65535);
    size_t ell = (size + SHA512_SIZE - 1) / SHA512_SIZE;
    uint8_t dst_len_byte = (uint8_t) dst_len;
    uint8_t zeros [SHA512_BLOCK] = { 0 };
    uint8_t lib_str [3] = { (uint8_t) (size >> 8), (uint8_t) size, 0 };     //  l_i_b_str || I2OSP (0, 1)

    //  b_0 = H (Z_pad || msg || l_i_b_str || I2OSP (0, 1) || DST_prime)
    uint8_t b_0 [SHA512_SIZE], b_i [SHA512_SIZE];
    crypto_hash_sha512_state state;
    crypto_hash_sha512_init (&state);
    crypto_hash_sha512_update (&state, zeros, sizeof zeros);
    for (size_t i = 0; i < pieces; i++)
        if (msg [i].size)
            crypto_hash_sha512_update (&state, msg [i].data, msg [i].size);
    crypto_hash_sha512_update (&state, lib_str, sizeof lib_str);
    crypto_hash_sha512_update (&state, dst, dst_len);
    crypto_hash_sha512_update (&state, &dst_len_byte, 1);
    crypto_hash_sha512_final (&state, b_0);

    //  b_1 = H (b_0 || I2OSP (1, 1) || DST_prime); b_i = H (b_0 ^ b_(i-1) || I2OSP (i, 1) || DST_prime)
    uint8_t chain [SHA512_SIZE];
    memcpy (chain, b_0, sizeof chain);
    for (size_t i = 1; i <= ell; i++) {
        uint8_t counter = (uint8_t) i;
        crypto_hash_sha512_init (&state);
        crypto_hash_sha512_update (&state, chain, sizeof chain);
        crypto_hash_sha512_update (&state, &counter, 1);
        crypto_hash_sha512_update (&state, dst, dst_len);
        crypto_hash_sha512_update (&state, &dst_len_byte, 1);
        crypto_hash_sha512_final (&state, b_i);
        size_t take = size - (i - 1) * SHA512_SIZE < SHA512_SIZE? size - (i - 1) * SHA512_SIZE: SHA512_SIZE;
        memcpy (out + (i - 1) * SHA512_SIZE, b_i, take);
        for (size_t k = 0; k < SHA512_SIZE; k++)
            chain [k] = b_0 [k] ^ b_i [k];
    }
    sodium_memzero (b_0, sizeof b_0);
    sodium_memzero (b_i, sizeof b_i);
    sodium_memzero (chain, sizeof chain);
    sodium_memzero (&state, sizeof state);
}

//  --------------------------------------------------------------------------
//  Scalars and elements

//  A canonical scalar is below the group order: reducing it changes nothing
static bool
s_scalar_canonical (const uint8_t scalar [AF_OPRF_SCALAR_SIZE])
{
    uint8_t wide [64] = { 0 }, reduced [AF_OPRF_SCALAR_SIZE];
    memcpy (wide, scalar, AF_OPRF_SCALAR_SIZE);
    crypto_core_ristretto255_scalar_reduce (reduced, wide);
    bool same = sodium_memcmp (reduced, scalar, AF_OPRF_SCALAR_SIZE) == 0;
    sodium_memzero (wide, sizeof wide);
    sodium_memzero (reduced, sizeof reduced);
    return same;
}

static bool
s_scalar_usable (const uint8_t scalar [AF_OPRF_SCALAR_SIZE])
{
    return s_scalar_canonical (scalar) && !sodium_is_zero (scalar, AF_OPRF_SCALAR_SIZE);
}

int
af_oprf_key_check (const uint8_t key [AF_OPRF_SCALAR_SIZE])
{
    assert (key);
    return s_scalar_usable (key)? AF_OK: AF_E_MALFORMED;
}

int
af_oprf_element_check (const uint8_t element [AF_OPRF_ELEMENT_SIZE])
{
    assert (element);
    //  is_valid_point refuses a non-canonical encoding and one that is
    //  not a point, but libsodium 1.0.18 (Debian 12) ignores the top bit
    //  as it reads the field element, so 2^255 + s passes as s: an
    //  encoding >= p that RFC 9496 (section 4.3.1) refuses, refused here.
    //  The identity is a valid point, refused apart.
    if ((element [AF_OPRF_ELEMENT_SIZE - 1] & 0x80)
    ||  !crypto_core_ristretto255_is_valid_point (element)
    ||  sodium_is_zero (element, AF_OPRF_ELEMENT_SIZE))
        return AF_E_MALFORMED;
    return AF_OK;
}

int
af_oprf_hash_to_group (const uint8_t *input, size_t size, uint8_t element [AF_OPRF_ELEMENT_SIZE])
{
    assert (element && (input || size == 0));
    if (size > AF_OPRF_MAX_INPUT)
        return AF_E_MALFORMED;
    uint8_t uniform [UNIFORM_SIZE];
    piece_t msg = { input, size };
    s_expand_xmd (&msg, 1, (const uint8_t *) DST_HASH_TO_GROUP, DST_LEN (DST_HASH_TO_GROUP),
                  uniform, sizeof uniform);
    crypto_core_ristretto255_from_hash (element, uniform);
    sodium_memzero (uniform, sizeof uniform);
    return AF_OK;
}

//  The RFC's HashToScalar with a given DST
static void
s_hash_to_scalar (const piece_t *msg, size_t pieces, const uint8_t *dst, size_t dst_len,
                  uint8_t scalar [AF_OPRF_SCALAR_SIZE])
{
    uint8_t uniform [UNIFORM_SIZE];
    s_expand_xmd (msg, pieces, dst, dst_len, uniform, sizeof uniform);
    crypto_core_ristretto255_scalar_reduce (scalar, uniform);
    sodium_memzero (uniform, sizeof uniform);
}

//  --------------------------------------------------------------------------
//  Keys

int
af_oprf_keygen (uint8_t key [AF_OPRF_SCALAR_SIZE])
{
    assert (key);
    //  libsodium's random scalar is uniform in [1, order - 1]; check anyway
    do
        crypto_core_ristretto255_scalar_random (key);
    while (!s_scalar_usable (key));
    return AF_OK;
}

int
af_oprf_derive_key (const uint8_t *seed, size_t seed_size, const uint8_t *info, size_t info_size,
                    uint8_t key [AF_OPRF_SCALAR_SIZE], uint8_t pk [AF_OPRF_ELEMENT_SIZE])
{
    assert (key && (seed || seed_size == 0) && (info || info_size == 0));
    if (info_size > 65535)
        return AF_E_MALFORMED;
    //  deriveInput = seed || I2OSP (len (info), 2) || info; then || I2OSP (counter, 1)
    uint8_t info_len [2] = { (uint8_t) (info_size >> 8), (uint8_t) info_size };
    uint8_t scalar [AF_OPRF_SCALAR_SIZE];
    for (unsigned counter = 0; counter <= 255; counter++) {
        uint8_t byte = (uint8_t) counter;
        piece_t msg [4] = { { seed, seed_size }, { info_len, 2 }, { info, info_size }, { &byte, 1 } };
        s_hash_to_scalar (msg, 4, (const uint8_t *) DST_DERIVE_KEY, DST_LEN (DST_DERIVE_KEY), scalar);
        if (!sodium_is_zero (scalar, sizeof scalar)) {
            if (pk && crypto_scalarmult_ristretto255_base (pk, scalar) != 0) {
                sodium_memzero (scalar, sizeof scalar);
                return AF_E_MALFORMED;
            }
            memcpy (key, scalar, sizeof scalar);
            sodium_memzero (scalar, sizeof scalar);
            return AF_OK;
        }
    }
    return AF_E_MALFORMED;      //  DeriveKeyPairError: 256 zero scalars in a row
}

void
af_oprf_key_id (const uint8_t key [AF_OPRF_SCALAR_SIZE], char id [AF_OPRF_KEY_ID_HEX + 1])
{
    assert (key && id);
    uint8_t pk [AF_OPRF_ELEMENT_SIZE], digest [AF_OPRF_KEY_ID_HEX / 2];
    int rc = crypto_scalarmult_ristretto255_base (pk, key);
    assert (rc == 0);           //  only a zero key makes the identity; keys are checked
    crypto_generichash (digest, sizeof digest, pk, sizeof pk,
                        (const uint8_t *) "appferry oprf key id", 20);
    sodium_bin2hex (id, AF_OPRF_KEY_ID_HEX + 1, digest, sizeof digest);
}

//  --------------------------------------------------------------------------
//  The protocol

int
af_oprf_blind_with (const uint8_t *input, size_t size, const uint8_t blind [AF_OPRF_SCALAR_SIZE],
                    uint8_t blinded [AF_OPRF_ELEMENT_SIZE])
{
    assert (blind && blinded);
    if (!s_scalar_usable (blind))
        return AF_E_MALFORMED;
    uint8_t element [AF_OPRF_ELEMENT_SIZE];
    if (af_oprf_hash_to_group (input, size, element) != AF_OK)
        return AF_E_MALFORMED;
    //  InvalidInputError: the input hashed to the identity (probability
    //  about 2^-252; crypto_scalarmult_ristretto255 refuses the identity)
    int rc = crypto_scalarmult_ristretto255 (blinded, blind, element);
    sodium_memzero (element, sizeof element);
    if (rc != 0) {
        sodium_memzero (blinded, AF_OPRF_ELEMENT_SIZE);
        return AF_E_MALFORMED;
    }
    return AF_OK;
}

int
af_oprf_blind (const uint8_t *input, size_t size, uint8_t blind [AF_OPRF_SCALAR_SIZE],
               uint8_t blinded [AF_OPRF_ELEMENT_SIZE])
{
    assert (blind && blinded);
    uint8_t scalar [AF_OPRF_SCALAR_SIZE];
    af_oprf_keygen (scalar);            //  RandomScalar: uniform, nonzero
    int rc = af_oprf_blind_with (input, size, scalar, blinded);
    if (rc == AF_OK)
        memcpy (blind, scalar, sizeof scalar);
    sodium_memzero (scalar, sizeof scalar);
    return rc;
}

//  scalar * element for an element received: the check of
//  af_oprf_element_check at the cost of one decode. libsodium's
//  scalarmult decodes the element itself and fails (-1) on an encoding
//  that is not a point, and on the identity as result, which for a
//  nonzero scalar in a prime-order group means the identity as input; the
//  top bit it ignores is checked here. AF_OK or AF_E_MALFORMED.
static int
s_multiply (const uint8_t scalar [AF_OPRF_SCALAR_SIZE], const uint8_t element [AF_OPRF_ELEMENT_SIZE],
            uint8_t result [AF_OPRF_ELEMENT_SIZE])
{
    if ((element [AF_OPRF_ELEMENT_SIZE - 1] & 0x80)
    ||  crypto_scalarmult_ristretto255 (result, scalar, element) != 0)
        return AF_E_MALFORMED;
    return AF_OK;
}

int
af_oprf_evaluate (const uint8_t key [AF_OPRF_SCALAR_SIZE], const uint8_t blinded [AF_OPRF_ELEMENT_SIZE],
                  uint8_t evaluated [AF_OPRF_ELEMENT_SIZE])
{
    assert (key && blinded && evaluated);
    if (!s_scalar_usable (key))
        return AF_E_MALFORMED;
    uint8_t result [AF_OPRF_ELEMENT_SIZE];
    if (s_multiply (key, blinded, result) != AF_OK)
        return AF_E_MALFORMED;
    memcpy (evaluated, result, sizeof result);
    return AF_OK;
}

//  Hash (I2OSP (len (input), 2) || input || I2OSP (Ne, 2) || element || "Finalize")
static void
s_finalize_hash (const uint8_t *input, size_t size, const uint8_t element [AF_OPRF_ELEMENT_SIZE],
                 uint8_t output [AF_OPRF_OUTPUT_SIZE])
{
    uint8_t input_len [2] = { (uint8_t) (size >> 8), (uint8_t) size };
    uint8_t element_len [2] = { 0, AF_OPRF_ELEMENT_SIZE };
    crypto_hash_sha512_state state;
    crypto_hash_sha512_init (&state);
    crypto_hash_sha512_update (&state, input_len, 2);
    if (size)
        crypto_hash_sha512_update (&state, input, size);
    crypto_hash_sha512_update (&state, element_len, 2);
    crypto_hash_sha512_update (&state, element, AF_OPRF_ELEMENT_SIZE);
    crypto_hash_sha512_update (&state, (const uint8_t *) "Finalize", 8);
    crypto_hash_sha512_final (&state, output);
    sodium_memzero (&state, sizeof state);
}

int
af_oprf_finalize (const uint8_t *input, size_t size, const uint8_t blind [AF_OPRF_SCALAR_SIZE],
                  const uint8_t evaluated [AF_OPRF_ELEMENT_SIZE], uint8_t output [AF_OPRF_OUTPUT_SIZE])
{
    assert ((input || size == 0) && blind && evaluated && output);
    if (size > AF_OPRF_MAX_INPUT || !s_scalar_usable (blind))
        return AF_E_MALFORMED;
    uint8_t inverse [AF_OPRF_SCALAR_SIZE], unblinded [AF_OPRF_ELEMENT_SIZE];
    int rc = AF_E_MALFORMED;
    if (crypto_core_ristretto255_scalar_invert (inverse, blind) == 0
    &&  s_multiply (inverse, evaluated, unblinded) == AF_OK) {
        s_finalize_hash (input, size, unblinded, output);
        rc = AF_OK;
    }
    sodium_memzero (inverse, sizeof inverse);
    sodium_memzero (unblinded, sizeof unblinded);
    return rc;
}

int
af_oprf_finalize_batch (size_t count, const uint8_t *const *inputs, const size_t *sizes,
                        const uint8_t (*blinds) [AF_OPRF_SCALAR_SIZE],
                        const uint8_t (*evaluated) [AF_OPRF_ELEMENT_SIZE],
                        uint8_t (*outputs) [AF_OPRF_OUTPUT_SIZE], size_t *bad)
{
    assert ((inputs && sizes && blinds && evaluated && outputs) || count == 0);
    if (count == 0)
        return AF_OK;
    for (size_t i = 0; i < count; i++)
        if (sizes [i] > AF_OPRF_MAX_INPUT || (!inputs [i] && sizes [i]) || !s_scalar_usable (blinds [i])) {
            if (bad)
                *bad = i;
            return AF_E_MALFORMED;
        }
    //  prefix [i] = blinds [0] * ... * blinds [i]; one inversion of the
    //  last, then walking back, inverse = (b0..bi)^-1 gives bi^-1 =
    //  inverse * prefix [i - 1], and (b0..bi-1)^-1 = inverse * bi
    uint8_t (*prefix) [AF_OPRF_SCALAR_SIZE] = (uint8_t (*) [AF_OPRF_SCALAR_SIZE])
        sodium_malloc (count * AF_OPRF_SCALAR_SIZE);
    if (!prefix) {
        //  No room for the products: one inversion each
        for (size_t i = 0; i < count; i++)
            if (af_oprf_finalize (inputs [i], sizes [i], blinds [i], evaluated [i], outputs [i]) != AF_OK) {
                if (bad)
                    *bad = i;
                return AF_E_MALFORMED;
            }
        return AF_OK;
    }
    memcpy (prefix [0], blinds [0], AF_OPRF_SCALAR_SIZE);
    for (size_t i = 1; i < count; i++)
        crypto_core_ristretto255_scalar_mul (prefix [i], prefix [i - 1], blinds [i]);
    uint8_t inverse [AF_OPRF_SCALAR_SIZE], single [AF_OPRF_SCALAR_SIZE], unblinded [AF_OPRF_ELEMENT_SIZE];
    int rc = crypto_core_ristretto255_scalar_invert (inverse, prefix [count - 1]);
    assert (rc == 0);                   //  a product of nonzero scalars mod a prime is nonzero
    rc = AF_OK;
    for (size_t i = count; i-- > 0; ) {
        if (i > 0) {
            crypto_core_ristretto255_scalar_mul (single, inverse, prefix [i - 1]);
            crypto_core_ristretto255_scalar_mul (inverse, inverse, blinds [i]);
        }
        else
            memcpy (single, inverse, sizeof single);
        if (s_multiply (single, evaluated [i], unblinded) != AF_OK) {
            if (bad)
                *bad = i;               //  walking back: keep the first one
            rc = AF_E_MALFORMED;
        }
        else
            s_finalize_hash (inputs [i], sizes [i], unblinded, outputs [i]);
    }
    sodium_memzero (inverse, sizeof inverse);
    sodium_memzero (single, sizeof single);
    sodium_memzero (unblinded, sizeof unblinded);
    sodium_free (prefix);               //  wipes the products
    return rc;
}

int
af_oprf_evaluate_direct (const uint8_t key [AF_OPRF_SCALAR_SIZE], const uint8_t *input, size_t size,
                         uint8_t output [AF_OPRF_OUTPUT_SIZE])
{
    assert (key && (input || size == 0) && output);
    if (!s_scalar_usable (key))
        return AF_E_MALFORMED;
    uint8_t element [AF_OPRF_ELEMENT_SIZE], issued [AF_OPRF_ELEMENT_SIZE];
    int rc = AF_E_MALFORMED;
    if (af_oprf_hash_to_group (input, size, element) == AF_OK
    &&  crypto_scalarmult_ristretto255 (issued, key, element) == 0) {
        s_finalize_hash (input, size, issued, output);
        rc = AF_OK;
    }
    sodium_memzero (element, sizeof element);
    sodium_memzero (issued, sizeof issued);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_hex (const char *hex, uint8_t *bin, size_t size)
{
    size_t len = 0;
    int rc = sodium_hex2bin (bin, size, hex, strlen (hex), NULL, &len, NULL);
    assert (rc == 0 && len == size);
}

static bool
s_equals_hex (const uint8_t *bin, size_t size, const char *hex)
{
    uint8_t expected [128];
    assert (size <= sizeof expected);
    s_hex (hex, expected, size);
    return memcmp (bin, expected, size) == 0;
}

//  RFC 9497 appendix A.1.1, ristretto255-SHA512, OPRF mode: the key from
//  DeriveKeyPair, then per vector the blinded element, the evaluation and
//  the output; and the direct evaluation gives the same output
static void
s_test_rfc_vectors (void)
{
    uint8_t seed [32];
    memset (seed, 0xa3, sizeof seed);
    uint8_t key [AF_OPRF_SCALAR_SIZE], pk [AF_OPRF_ELEMENT_SIZE];
    assert (af_oprf_derive_key (seed, sizeof seed, (const uint8_t *) "test key", 8, key, pk) == AF_OK);
    assert (s_equals_hex (key, sizeof key, "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"));
    assert (af_oprf_key_check (key) == AF_OK);
    struct {
        const char *input, *blind, *blinded, *evaluated, *output;
    } vectors [] = {
        { "00",
          "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
          "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
          "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
          "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
          "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6" },
        { "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
          "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
          "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
          "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
          "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
          "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73" },
    };
    for (size_t v = 0; v < sizeof vectors / sizeof vectors [0]; v++) {
        uint8_t input [64], blind [AF_OPRF_SCALAR_SIZE], blinded [AF_OPRF_ELEMENT_SIZE];
        uint8_t evaluated [AF_OPRF_ELEMENT_SIZE], output [AF_OPRF_OUTPUT_SIZE], direct [AF_OPRF_OUTPUT_SIZE];
        size_t size = strlen (vectors [v].input) / 2;
        s_hex (vectors [v].input, input, size);
        s_hex (vectors [v].blind, blind, sizeof blind);
        assert (af_oprf_blind_with (input, size, blind, blinded) == AF_OK);
        assert (s_equals_hex (blinded, sizeof blinded, vectors [v].blinded));
        assert (af_oprf_evaluate (key, blinded, evaluated) == AF_OK);
        assert (s_equals_hex (evaluated, sizeof evaluated, vectors [v].evaluated));
        assert (af_oprf_finalize (input, size, blind, evaluated, output) == AF_OK);
        assert (s_equals_hex (output, sizeof output, vectors [v].output));
        assert (af_oprf_evaluate_direct (key, input, size, direct) == AF_OK);
        assert (memcmp (direct, output, sizeof output) == 0);
    }
}

//  With random blinds: blind, evaluate, finalize equals the direct
//  evaluation; the blinded elements of one input differ each time; another
//  key gives another output; the key ID is the key's and only its
static void
s_test_round_trip (void)
{
    uint8_t key [AF_OPRF_SCALAR_SIZE], other [AF_OPRF_SCALAR_SIZE];
    assert (af_oprf_keygen (key) == AF_OK && af_oprf_keygen (other) == AF_OK);
    assert (memcmp (key, other, sizeof key) != 0);
    const char *number = "+4915112345678";
    size_t size = strlen (number);
    uint8_t blind [AF_OPRF_SCALAR_SIZE], blinded [AF_OPRF_ELEMENT_SIZE], again [AF_OPRF_ELEMENT_SIZE];
    uint8_t evaluated [AF_OPRF_ELEMENT_SIZE], output [AF_OPRF_OUTPUT_SIZE], direct [AF_OPRF_OUTPUT_SIZE];
    uint8_t wrong [AF_OPRF_OUTPUT_SIZE], blind2 [AF_OPRF_SCALAR_SIZE];
    assert (af_oprf_blind ((const uint8_t *) number, size, blind, blinded) == AF_OK);
    assert (af_oprf_element_check (blinded) == AF_OK);
    assert (af_oprf_blind ((const uint8_t *) number, size, blind2, again) == AF_OK);
    assert (memcmp (blinded, again, sizeof again) != 0);
    assert (af_oprf_evaluate (key, blinded, evaluated) == AF_OK);
    assert (af_oprf_finalize ((const uint8_t *) number, size, blind, evaluated, output) == AF_OK);
    assert (af_oprf_evaluate_direct (key, (const uint8_t *) number, size, direct) == AF_OK);
    assert (memcmp (output, direct, sizeof output) == 0);
    //  The second blinding of the same number finalizes to the same output
    assert (af_oprf_evaluate (key, again, evaluated) == AF_OK);
    assert (af_oprf_finalize ((const uint8_t *) number, size, blind2, evaluated, wrong) == AF_OK);
    assert (memcmp (wrong, output, sizeof output) == 0);
    //  Another key: another output, blinded or direct
    assert (af_oprf_evaluate (other, blinded, evaluated) == AF_OK);
    assert (af_oprf_finalize ((const uint8_t *) number, size, blind, evaluated, wrong) == AF_OK);
    assert (memcmp (wrong, output, sizeof output) != 0);
    assert (af_oprf_evaluate_direct (other, (const uint8_t *) number, size, direct) == AF_OK);
    assert (memcmp (wrong, direct, sizeof direct) == 0);
    //  Another number under the same key: another output
    assert (af_oprf_evaluate_direct (key, (const uint8_t *) "+4915112345679", size, direct) == AF_OK);
    assert (memcmp (direct, output, sizeof output) != 0);
    //  Finalizing with the wrong blind gives garbage, not the output
    assert (af_oprf_evaluate (key, blinded, evaluated) == AF_OK);
    assert (af_oprf_finalize ((const uint8_t *) number, size, blind2, evaluated, wrong) == AF_OK);
    assert (memcmp (wrong, output, sizeof output) != 0);
    //  Key IDs: stable, distinct, hex
    char id [AF_OPRF_KEY_ID_HEX + 1], id2 [AF_OPRF_KEY_ID_HEX + 1];
    af_oprf_key_id (key, id);
    af_oprf_key_id (key, id2);
    assert (strlen (id) == AF_OPRF_KEY_ID_HEX && strcmp (id, id2) == 0);
    af_oprf_key_id (other, id2);
    assert (strcmp (id, id2) != 0);
    //  The empty input is an input
    assert (af_oprf_evaluate_direct (key, NULL, 0, direct) == AF_OK);
}

//  What the RFC refuses is refused: elements that are not canonical
//  encodings or are the identity, zero or unreduced scalars, long inputs;
//  nothing is written then
static void
s_test_refusals (void)
{
    uint8_t key [AF_OPRF_SCALAR_SIZE], blind [AF_OPRF_SCALAR_SIZE], blinded [AF_OPRF_ELEMENT_SIZE];
    uint8_t out [AF_OPRF_ELEMENT_SIZE], output [AF_OPRF_OUTPUT_SIZE];
    af_oprf_keygen (key);
    assert (af_oprf_blind ((const uint8_t *) "x", 1, blind, blinded) == AF_OK);

    uint8_t identity [AF_OPRF_ELEMENT_SIZE] = { 0 };
    uint8_t bad [5][AF_OPRF_ELEMENT_SIZE];
    memset (bad [0], 0xff, AF_OPRF_ELEMENT_SIZE);           //  >= p: not canonical
    memcpy (bad [1], blinded, AF_OPRF_ELEMENT_SIZE);
    bad [1][0] |= 1;                                        //  odd: never canonical
    memcpy (bad [2], blinded, AF_OPRF_ELEMENT_SIZE);
    bad [2][31] |= 0x80;                                    //  top bit set: never canonical
    //  p itself (2^255 - 19), the non-canonical twin of zero
    s_hex ("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", bad [3], AF_OPRF_ELEMENT_SIZE);
    //  A canonical, even field element that decodes to no point (about half do)
    memset (bad [4], 0, AF_OPRF_ELEMENT_SIZE);
    for (uint8_t s = 2; ; s += 2) {
        bad [4][0] = s;
        if (!crypto_core_ristretto255_is_valid_point (bad [4]))
            break;
        assert (s < 250);
    }
    assert (af_oprf_element_check (identity) == AF_E_MALFORMED);
    assert (af_oprf_evaluate (key, identity, out) == AF_E_MALFORMED);
    assert (af_oprf_finalize ((const uint8_t *) "x", 1, blind, identity, output) == AF_E_MALFORMED);
    for (int i = 0; i < 5; i++) {
        memset (out, 0x55, sizeof out);
        assert (af_oprf_element_check (bad [i]) == AF_E_MALFORMED);
        assert (af_oprf_evaluate (key, bad [i], out) == AF_E_MALFORMED);
        assert (af_oprf_finalize ((const uint8_t *) "x", 1, blind, bad [i], output) == AF_E_MALFORMED);
        for (size_t k = 0; k < sizeof out; k++)
            assert (out [k] == 0x55);
    }
    //  Scalars: zero, and the group order L itself, are refused as keys and blinds
    uint8_t zero [AF_OPRF_SCALAR_SIZE] = { 0 }, order [AF_OPRF_SCALAR_SIZE];
    s_hex ("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", order, sizeof order);
    assert (af_oprf_key_check (zero) == AF_E_MALFORMED);
    assert (af_oprf_key_check (order) == AF_E_MALFORMED);
    assert (af_oprf_evaluate (zero, blinded, out) == AF_E_MALFORMED);
    assert (af_oprf_evaluate (order, blinded, out) == AF_E_MALFORMED);
    assert (af_oprf_evaluate_direct (order, (const uint8_t *) "x", 1, output) == AF_E_MALFORMED);
    assert (af_oprf_blind_with ((const uint8_t *) "x", 1, zero, out) == AF_E_MALFORMED);
    assert (af_oprf_blind_with ((const uint8_t *) "x", 1, order, out) == AF_E_MALFORMED);
    assert (af_oprf_finalize ((const uint8_t *) "x", 1, zero, blinded, output) == AF_E_MALFORMED);
    order [0]--;                                            //  L - 1 is a scalar
    assert (af_oprf_key_check (order) == AF_OK);
    //  Inputs longer than 65535 bytes have no length prefix
    uint8_t *long_input = (uint8_t *) calloc (1, AF_OPRF_MAX_INPUT + 1);
    assert (long_input);
    assert (af_oprf_hash_to_group (long_input, AF_OPRF_MAX_INPUT + 1, out) == AF_E_MALFORMED);
    assert (af_oprf_blind (long_input, AF_OPRF_MAX_INPUT + 1, blind, out) == AF_E_MALFORMED);
    assert (af_oprf_evaluate_direct (key, long_input, AF_OPRF_MAX_INPUT + 1, output) == AF_E_MALFORMED);
    assert (af_oprf_hash_to_group (long_input, AF_OPRF_MAX_INPUT, out) == AF_OK);
    free (long_input);
}

//  The batch finalize gives what one finalize each gives; it refuses what
//  finalize refuses and names the first one
static void
s_test_batch (void)
{
    enum { COUNT = 20 };
    uint8_t key [AF_OPRF_SCALAR_SIZE];
    af_oprf_keygen (key);
    char numbers [COUNT][16];
    const uint8_t *inputs [COUNT];
    size_t sizes [COUNT];
    uint8_t blinds [COUNT][AF_OPRF_SCALAR_SIZE], evaluated [COUNT][AF_OPRF_ELEMENT_SIZE];
    uint8_t outputs [COUNT][AF_OPRF_OUTPUT_SIZE], one [AF_OPRF_OUTPUT_SIZE];
    for (int i = 0; i < COUNT; i++) {
        snprintf (numbers [i], sizeof numbers [i], "+4915100000%03d", i);
        inputs [i] = (const uint8_t *) numbers [i];
        sizes [i] = strlen (numbers [i]);
        uint8_t blinded [AF_OPRF_ELEMENT_SIZE];
        assert (af_oprf_blind (inputs [i], sizes [i], blinds [i], blinded) == AF_OK);
        assert (af_oprf_evaluate (key, blinded, evaluated [i]) == AF_OK);
    }
    size_t bad = 99;
    assert (af_oprf_finalize_batch (COUNT, inputs, sizes, blinds, evaluated, outputs, &bad) == AF_OK);
    for (int i = 0; i < COUNT; i++) {
        assert (af_oprf_evaluate_direct (key, inputs [i], sizes [i], one) == AF_OK);
        assert (memcmp (one, outputs [i], sizeof one) == 0);
    }
    assert (af_oprf_finalize_batch (1, inputs, sizes, blinds, evaluated, outputs, NULL) == AF_OK);
    assert (af_oprf_finalize_batch (0, NULL, NULL, NULL, NULL, NULL, NULL) == AF_OK);
    //  A bad element at 13 and at 17: the first is named
    evaluated [13][0] |= 1;
    evaluated [17][31] |= 0x80;
    assert (af_oprf_finalize_batch (COUNT, inputs, sizes, blinds, evaluated, outputs, &bad) == AF_E_MALFORMED
            && bad == 13);
    //  A zero blind at 5
    memset (blinds [5], 0, AF_OPRF_SCALAR_SIZE);
    assert (af_oprf_finalize_batch (COUNT, inputs, sizes, blinds, evaluated, outputs, &bad) == AF_E_MALFORMED
            && bad == 5);
}

void
af_oprf_test (bool verbose)
{
    if (verbose)
        printf (" * af_oprf: ");
    int rc = sodium_init ();
    assert (rc >= 0);
    s_test_rfc_vectors ();
    s_test_round_trip ();
    s_test_refusals ();
    s_test_batch ();
    if (verbose)
        printf ("OK\n");
}
