/*  =========================================================================
    af_shard - which shard an account, or a store key, belongs to
    =========================================================================
*/
#include "af_shard.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

uint32_t
af_shard_of (const char *account, size_t len, uint32_t shards)
{
    assert (shards >= 1 && shards <= AF_SHARDS_MAX);
    uint8_t hash [16];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) account, len, NULL, 0);
    return (((uint32_t) hash [0] << 8) | hash [1]) % shards;
}

size_t
af_shard_key_account (const void *key, size_t keylen)
{
    const uint8_t *zero = (const uint8_t *) memchr (key, 0, keylen);
    return zero? (size_t) (zero - (const uint8_t *) key): keylen;
}

uint32_t
af_shard_of_key (const void *key, size_t keylen, uint32_t shards)
{
    return af_shard_of ((const char *) key, af_shard_key_account (key, keylen), shards);
}

void
af_shard_test (bool verbose)
{
    if (verbose)
        printf (" * af_shard: ");
    //  Fixed: the same name is always the same shard, on every broker
    uint8_t hash [16];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) "ana", 3, NULL, 0);
    assert (af_shard_of ("ana", 3, 256) == hash [1]);
    assert (af_shard_of ("ana", 3, 1) == 0);
    //  A key's shard is its account's, whatever follows the 0x00
    const char key [] = "ana\0" "0123456789abcdef";
    assert (af_shard_key_account (key, sizeof key - 1) == 3);
    assert (af_shard_key_account ("ana", 3) == 3);
    assert (af_shard_of_key (key, sizeof key - 1, 256) == af_shard_of ("ana", 3, 256));
    assert (af_shard_of_key ("ana", 3, 256) == af_shard_of ("ana", 3, 256));
    //  Accounts spread over the shards: 10,000 names, none empty by far
    uint32_t counts [16] = { 0 };
    for (int i = 0; i < 10000; i++) {
        char name [32];
        int len = snprintf (name, sizeof name, "account%d", i);
        counts [af_shard_of (name, (size_t) len, 16)]++;
    }
    for (int i = 0; i < 16; i++)
        assert (counts [i] > 10000 / 16 / 2 && counts [i] < 10000 / 16 * 2);
    if (verbose)
        printf ("OK\n");
}
