/*  =========================================================================
    fleet_hist - log-linear latency buckets

    A value below 16 has its own bucket; above, the bucket is the position
    of its highest bit and the 4 bits after it, so each power of two is
    cut in 16 equal parts.
    =========================================================================
*/
#include "fleet_hist.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static uint32_t
s_bucket (uint64_t value)
{
    if (value < FLEET_HIST_SUB)
        return (uint32_t) value;
    int msb = 63 - __builtin_clzll (value);
    uint64_t index = (uint64_t) (msb - 3) * FLEET_HIST_SUB + ((value >> (msb - 4)) & (FLEET_HIST_SUB - 1));
    return index < FLEET_HIST_BUCKETS? (uint32_t) index: FLEET_HIST_BUCKETS - 1;
}

//  The smallest value of a bucket
static uint64_t
s_low (uint32_t index)
{
    if (index < FLEET_HIST_SUB)
        return index;
    int msb = (int) (index / FLEET_HIST_SUB) + 3;
    return (uint64_t) (FLEET_HIST_SUB + index % FLEET_HIST_SUB) << (msb - 4);
}

void
fleet_hist_add (fleet_hist_t *self, uint64_t value)
{
    assert (self);
    self->buckets [s_bucket (value)]++;
    self->count++;
    self->sum += value;
    if (value > self->max)
        self->max = value;
}

uint64_t
fleet_hist_percentile (const fleet_hist_t *self, double p)
{
    assert (self);
    if (self->count == 0)
        return 0;
    if (p >= 1)
        return self->max;
    uint64_t rank = (uint64_t) (p * (double) self->count);     //  values below it
    uint64_t seen = 0;
    for (uint32_t i = 0; i < FLEET_HIST_BUCKETS; i++) {
        seen += self->buckets [i];
        if (seen > rank) {
            uint64_t low = s_low (i);
            return low < self->max? low: self->max;
        }
    }
    return self->max;
}

void
fleet_hist_merge (fleet_hist_t *self, const fleet_hist_t *other)
{
    assert (self && other);
    for (uint32_t i = 0; i < FLEET_HIST_BUCKETS; i++)
        self->buckets [i] += other->buckets [i];
    self->count += other->count;
    self->sum += other->sum;
    if (other->max > self->max)
        self->max = other->max;
}

void
fleet_hist_test (bool verbose)
{
    printf (" * fleet_hist: ");
    //  Buckets are contiguous and each value lands in the one whose range holds it
    for (uint64_t v = 0; v < 100000; v++) {
        uint32_t b = s_bucket (v);
        assert (s_low (b) <= v);
        assert (b + 1 == FLEET_HIST_BUCKETS || s_low (b + 1) > v);
    }
    assert (s_bucket (UINT64_MAX) == FLEET_HIST_BUCKETS - 1);
    fleet_hist_t hist;
    memset (&hist, 0, sizeof hist);
    assert (fleet_hist_percentile (&hist, 0.5) == 0);
    //  1..10000 us: the percentiles are within 1/16 below the true ones
    for (uint64_t v = 1; v <= 10000; v++)
        fleet_hist_add (&hist, v);
    double ps [] = { 0.5, 0.9, 0.99 };
    for (int i = 0; i < 3; i++) {
        uint64_t truth = (uint64_t) (ps [i] * 10000), got = fleet_hist_percentile (&hist, ps [i]);
        assert (got <= truth + 1 && (double) got >= (double) truth * (1 - 1.0 / FLEET_HIST_SUB) - 1);
    }
    assert (fleet_hist_percentile (&hist, 1) == 10000);
    assert (hist.count == 10000 && hist.max == 10000);
    //  Merged, a skewed mix: p99 sees the slow tail
    fleet_hist_t slow;
    memset (&slow, 0, sizeof slow);
    for (int i = 0; i < 200; i++)
        fleet_hist_add (&slow, 5000000);
    fleet_hist_merge (&hist, &slow);
    assert (hist.count == 10200);
    assert (fleet_hist_percentile (&hist, 0.99) >= 4600000);
    assert (fleet_hist_percentile (&hist, 0.5) < 6000);
    if (verbose)
        printf ("p50 %llu p99 %llu ", (unsigned long long) fleet_hist_percentile (&hist, 0.5),
                (unsigned long long) fleet_hist_percentile (&hist, 0.99));
    printf ("OK\n");
}
