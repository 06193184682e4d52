/*  =========================================================================
    af_shard - which shard an account, or a store key, belongs to

    A cluster of brokers splits accounts over a fixed number of virtual
    shards (docs/ARCHITECTURE.md "Cluster"). Every key of the broker's
    store starts with the account name, followed by 0x00 or the key's
    end, so the shard of any key is known from the key alone. Brokers,
    nodes (to tell which endpoint to expect) and the fleet all compute it
    here, the same way.
    =========================================================================
*/
#ifndef AF_SHARD_H_INCLUDED
#define AF_SHARD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AF_SHARDS_DEFAULT       256     //  cluster/shards
#define AF_SHARDS_MAX           4096    //  so a shard fits in 2 bytes, with room

//  The shard of an account of len bytes among shards (1..AF_SHARDS_MAX):
//  the first two bytes of the BLAKE2b-128 of its name, big-endian, mod shards.
uint32_t af_shard_of (const char *account, size_t len, uint32_t shards);

//  The length of the account a store key starts with: its bytes up to the
//  first 0x00, or all of them.
size_t af_shard_key_account (const void *key, size_t keylen);

//  The shard of a store key.
uint32_t af_shard_of_key (const void *key, size_t keylen, uint32_t shards);

//  Self test
void af_shard_test (bool verbose);

#endif
