/*  =========================================================================
    af_loglimit - at most N log lines a second for one kind of event

    A flood of refused connections or dropped peers must not fill the
    disk with one line each. A limiter lets the first N lines of each
    second through; the rest are counted, and the count is logged once
    the second is over ("37 more refused connections not logged in the
    last second"), at the next line or at the next flush, whichever comes
    first. Not thread-safe: one limiter per thread.
    =========================================================================
*/
#ifndef AF_LOGLIMIT_H_INCLUDED
#define AF_LOGLIMIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _af_loglimit_t af_loglimit_t;

//  A limiter of per_second lines about what ("refused connections"),
//  the summary line prefixed with prefix ("zap").
af_loglimit_t *af_loglimit_new (const char *prefix, const char *what, size_t per_second);

//  Destroy; logs what is left uncounted. Sets *self_p to NULL.
void af_loglimit_destroy (af_loglimit_t **self_p);

//  May one more line be logged now (monotonic ms)? false: it was counted
//  instead. A new second first logs the count of the last one.
bool af_loglimit_pass (af_loglimit_t *self, int64_t now);

//  Log the count of lines left out, if their second is over (a timer).
void af_loglimit_flush (af_loglimit_t *self, int64_t now);

//  Lines left out since creation
uint64_t af_loglimit_dropped (af_loglimit_t *self);

void af_loglimit_test (bool verbose);

#endif
