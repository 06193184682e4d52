/*  =========================================================================
    bench_stats - the median every benchmark reports

    Rounds alternate with their baseline and a round that the machine's
    other work interrupted must not move the figure: each benchmark prints
    the median of its rounds. One definition here (header only, so the
    benchmarks that do not link bench_util have it too).
    =========================================================================
*/
#ifndef BENCH_STATS_H_INCLUDED
#define BENCH_STATS_H_INCLUDED

#include <stdlib.h>

static inline int
bench_compare_doubles (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

//  The median of n values (n >= 1; the mean of the middle two when n is
//  even). Sorts values in place: values [0] is the smallest afterwards.
static inline double
bench_median (double *values, int n)
{
    qsort (values, (size_t) n, sizeof values [0], bench_compare_doubles);
    return n % 2? values [n / 2]: (values [n / 2 - 1] + values [n / 2]) / 2;
}

#endif
