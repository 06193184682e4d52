/*  =========================================================================
    af_loglimit - at most N log lines a second for one kind of event

    See af_loglimit.h. A second is a window that starts with the first
    line after the previous window ended, so an idle limiter costs nothing.
    =========================================================================
*/
#include "af_loglimit.h"

#include <czmq.h>

struct _af_loglimit_t {
    char prefix [32];
    char what [64];
    size_t per_second;
    int64_t window;                 //  start of the current second (ms)
    size_t lines;                   //  lines let through in it
    size_t left_out;                //  lines counted instead in it
    uint64_t dropped;               //  left out since creation
};

af_loglimit_t *
af_loglimit_new (const char *prefix, const char *what, size_t per_second)
{
    af_loglimit_t *self = (af_loglimit_t *) zmalloc (sizeof (af_loglimit_t));
    assert (self);
    snprintf (self->prefix, sizeof self->prefix, "%s", prefix);
    snprintf (self->what, sizeof self->what, "%s", what);
    self->per_second = per_second;
    self->window = INT64_MIN;
    return self;
}

void
af_loglimit_destroy (af_loglimit_t **self_p)
{
    assert (self_p);
    af_loglimit_t *self = *self_p;
    if (self) {
        af_loglimit_flush (self, INT64_MAX);
        free (self);
        *self_p = NULL;
    }
}

void
af_loglimit_flush (af_loglimit_t *self, int64_t now)
{
    assert (self);
    if (self->left_out && (now == INT64_MAX || now - self->window >= 1000)) {
        zsys_warning ("%s: %zu more %s not logged in the last second (at most %zu lines a second)",
                      self->prefix, self->left_out, self->what, self->per_second);
        self->left_out = 0;
    }
}

bool
af_loglimit_pass (af_loglimit_t *self, int64_t now)
{
    assert (self);
    if (self->window == INT64_MIN || now - self->window >= 1000) {
        af_loglimit_flush (self, now);
        self->window = now;
        self->lines = 0;
    }
    if (self->lines < self->per_second) {
        self->lines++;
        return true;
    }
    self->left_out++;
    self->dropped++;
    return false;
}

uint64_t
af_loglimit_dropped (af_loglimit_t *self)
{
    assert (self);
    return self->dropped;
}

void
af_loglimit_test (bool verbose)
{
    printf (" * af_loglimit: ");
    af_loglimit_t *limit = af_loglimit_new ("test", "test lines", 3);
    //  Three lines a second pass, the rest are counted
    int passed = 0;
    for (int i = 0; i < 10; i++)
        passed += af_loglimit_pass (limit, 1000 + i);
    assert (passed == 3);
    assert (af_loglimit_dropped (limit) == 7);
    //  Within the same second nothing is summarised yet
    af_loglimit_flush (limit, 1500);
    assert (limit->left_out == 7);
    //  The next second summarises the last one, then lets lines through
    if (verbose)
        printf ("\n");
    assert (af_loglimit_pass (limit, 2000));
    assert (limit->left_out == 0);
    passed = 0;
    for (int i = 0; i < 5; i++)
        passed += af_loglimit_pass (limit, 2100 + i);
    assert (passed == 2);
    //  A flush after the second is over logs the count once
    af_loglimit_flush (limit, 3500);
    assert (limit->left_out == 0);
    assert (af_loglimit_dropped (limit) == 10);
    //  An idle gap starts a fresh window
    assert (af_loglimit_pass (limit, 100000));
    af_loglimit_destroy (&limit);
    assert (limit == NULL);
    printf ("OK\n");
}
