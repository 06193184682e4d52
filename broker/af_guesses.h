/*  =========================================================================
    af_guesses - wrong passwords counted durably, per account and source

    Password guessing is bounded twice: AF_MAX_LOGIN_FAILURES wrong
    passwords for one account from one source address within
    AF_LOGIN_WINDOW_MS refuse password logins to that account from that
    source until the window ends; AF_MAX_ACCOUNT_FAILURES from all sources
    together refuse them from everywhere. So someone guessing from one
    place does not lock the owner out elsewhere, a distributed guess is
    still bounded, and no lockout outlives its window: the owner is never
    denied for good, and devices that log in by key are never denied. The
    counts are in the store, so a broker restart does not reset them.

    Named database (in the registry's LMDB environment):
      guesses  key: account, 0x00, source address ("*" for the account)
               value: count (4 bytes LE), start of the window (8 bytes LE,
                      ms since the epoch)
    =========================================================================
*/
#ifndef AF_GUESSES_H_INCLUDED
#define AF_GUESSES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_store.h"

typedef struct _af_guesses_t af_guesses_t;

//  Open the table in an open, writable store. NULL on failure (logged).
af_guesses_t *af_guesses_new (af_store_t *store);

//  Close. Sets *self_p to NULL.
void af_guesses_destroy (af_guesses_t **self_p);

//  May a password login to account from source go ahead at now (ms since
//  the epoch)? AF_OK, or AF_E_RATE_LIMITED with err saying how long to
//  wait. A store failure lets the login go ahead (logged): the guess is
//  still an Argon2id check, and refusing owners on a read error is worse.
int af_guesses_check (af_guesses_t *self, const char *account, const char *source, uint64_t now,
                      char *err, size_t errlen);

//  Count a wrong password, in one write transaction. AF_OK or AF_E_INTERNAL.
int af_guesses_failed (af_guesses_t *self, const char *account, const char *source, uint64_t now);

//  The right password from source: its count starts over. AF_OK or
//  AF_E_INTERNAL.
int af_guesses_passed (af_guesses_t *self, const char *account, const char *source);

//  Whether the keys of account are this broker's to write (a cluster
//  member's own shards); NULL: all of them (a single broker)
typedef bool (af_guesses_ours_fn) (const char *account, void *arg);

//  Remove counts whose window ended before now, of the accounts ours says
//  are ours (all when ours is NULL). AF_OK or AF_E_INTERNAL.
int af_guesses_expire (af_guesses_t *self, uint64_t now, af_guesses_ours_fn *ours, void *arg);

//  Self test
void af_guesses_test (bool verbose);

#endif
