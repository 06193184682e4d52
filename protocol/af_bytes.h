/*  =========================================================================
    af_bytes - 64-bit integers in a byte string, big- or little-endian

    Stored keys put times and sequence numbers big-endian so that LMDB's
    byte order is their numeric order; stored values put them
    little-endian. Every store module used to carry its own copy of these
    four loops; they live here once.
    =========================================================================
*/
#ifndef AF_BYTES_H_INCLUDED
#define AF_BYTES_H_INCLUDED

#include <stdint.h>

static inline void
af_put_be64 (uint8_t *p, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        p [i] = (uint8_t) value;
}

static inline uint64_t
af_get_be64 (const uint8_t *p)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | p [i];
    return value;
}

static inline void
af_put_le64 (uint8_t *p, uint64_t value)
{
    for (int i = 0; i < 8; i++, value >>= 8)
        p [i] = (uint8_t) value;
}

static inline uint64_t
af_get_le64 (const uint8_t *p)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | p [i];
    return value;
}

#endif
