/*  =========================================================================
    fleet_hist - a latency histogram with bounded relative error

    Log-linear buckets (HdrHistogram's idea, in 2.5 KB): 16 buckets per
    power of two, so a percentile is within 1/16 (6 %) of the true value,
    from 1 microsecond to about 12 days, whatever the count. Adding is a
    few instructions and no allocation, so every answer of every request
    of a fleet of thousands is recorded. A plain value (like af_device_t):
    zero it to start, copy or add two together.
    =========================================================================
*/
#ifndef FLEET_HIST_H_INCLUDED
#define FLEET_HIST_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define FLEET_HIST_SUB      16          //  buckets per power of two
#define FLEET_HIST_BUCKETS  (38 * FLEET_HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t max;                       //  exact
    uint64_t sum;
    uint32_t buckets [FLEET_HIST_BUCKETS];
} fleet_hist_t;

//  Record one value (microseconds); values past the last bucket count
//  in it (and in max, exactly)
void fleet_hist_add (fleet_hist_t *self, uint64_t value);

//  The value below which a fraction p (0..1) of the values fall: the
//  low edge of its bucket, or max for p >= 1. 0 for an empty histogram.
uint64_t fleet_hist_percentile (const fleet_hist_t *self, double p);

//  Add other's values to self
void fleet_hist_merge (fleet_hist_t *self, const fleet_hist_t *other);

//  Self test
void fleet_hist_test (bool verbose);

#endif
