/*  =========================================================================
    af_configs - each account's app configurations, sealed (S1.6, S1.7)

    A node that shares an app's configuration (bookmarks, shortcuts,
    settings) seals it with a key derived from the account secret, which
    the broker never sees, and sends the ciphertext with the time of its
    newest edit. The broker keeps, per account and program, the newer as
    the current version and the other as the previous one: a conflict's
    loser is kept, not lost, and a person can go back to it.

    Every function returns AF_OK or an AF_E_* code; a store failure is
    logged here and returned as AF_E_INTERNAL.

    Named databases (in the registry's LMDB environment):
      configs      key: account, 0x00, program
                   value: time (8 bytes LE, ms), the node's ciphertext
      configs_prev the same layout: the version that lost or was replaced
    =========================================================================
*/
#ifndef AF_CONFIGS_H_INCLUDED
#define AF_CONFIGS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"
#include "af_store.h"

typedef struct _af_configs_t af_configs_t;

//  Open the tables in an open, writable store. NULL on failure (logged).
af_configs_t *af_configs_new (af_store_t *store);

//  Close. Sets *self_p to NULL.
void af_configs_destroy (af_configs_t **self_p);

//  Store a configuration in one write transaction: the newer time becomes
//  the current version and the other the previous one. *current says
//  which this one became. Returns AF_OK, AF_E_MALFORMED (bad account or
//  program), or AF_E_INTERNAL.
int af_configs_put (af_configs_t *self, const char *account, const char *program,
                    uint64_t at, const uint8_t *blob, size_t size, bool *current);

//  Read the current (or previous) configuration into msg (a CONFIG): at,
//  data, prev_at, previous. Returns AF_OK, AF_E_NO_CONFIG, AF_E_MALFORMED
//  or AF_E_INTERNAL.
int af_configs_get (af_configs_t *self, const char *account, const char *program,
                    bool previous, af_msg_t *msg);

//  Self test
void af_configs_test (bool verbose);

#endif
