/*  =========================================================================
    af_hasher - Argon2id off the reactor: a small pool of hashing threads

    A password hash (REGISTER) or check (a password LOGIN) costs about
    0.1 s and 64 MiB at the interactive cost. Done in the broker's one
    reactor thread, thirty sign-ups at once stopped it for seconds and real
    nodes missed heartbeats. This class runs them on a few threads (czmq
    actors) instead: the reactor submits a job with a completion function
    and goes on serving; each thread's result comes back through its pipe,
    read by the same zloop, so completions run in the reactor thread like
    every other handler. At most `threads` hashes run at once (memory is
    bounded: threads x the cost's memory) and at most `max_waiting` jobs
    wait; beyond that, submit refuses (the broker answers E_UNAVAILABLE).
    Passwords are wiped from memory when their job ends.
    =========================================================================
*/
#ifndef AF_HASHER_H_INCLUDED
#define AF_HASHER_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "af_registry.h"

typedef struct _af_hasher_t af_hasher_t;

//  A job's completion, in the reactor thread. code: AF_OK, or for a check
//  AF_E_BAD_PASSWORD, or AF_E_INTERNAL (out of memory); hash is the new
//  crypto_pwhash_str string of a hash job (NULL otherwise).
typedef void (af_hasher_fn) (void *arg, int code, const char *hash);

//  Start threads hashing threads (1..16) whose results the loop reads.
//  NULL on failure.
af_hasher_t *af_hasher_new (zloop_t *loop, size_t threads, size_t max_waiting, af_pwcost_t cost);

//  Stop the threads (a running hash is finished first). Jobs not done are
//  dropped without their completion. Sets *self_p to NULL.
void af_hasher_destroy (af_hasher_t **self_p);

//  Hash a new password. AF_OK (done is called later), or AF_E_UNAVAILABLE.
int af_hasher_hash (af_hasher_t *self, const char *password, af_hasher_fn *done, void *arg);

//  Check a password against a stored crypto_pwhash_str string. AF_OK or
//  AF_E_UNAVAILABLE.
int af_hasher_verify (af_hasher_t *self, const char *stored, const char *password,
                      af_hasher_fn *done, void *arg);

//  Jobs running and waiting
size_t af_hasher_pending (af_hasher_t *self);

//  Self test
void af_hasher_test (bool verbose);

#endif
