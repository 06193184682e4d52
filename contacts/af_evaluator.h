/*  =========================================================================
    af_evaluator - the contacts service's key, and its answer to
    CONTACTS_EVAL (protocol/SPEC.md 5.35)

    Why a class of its own: the OPRF key is the one secret that keeps a
    dump of the broker's store from being turned back into phone numbers
    (af_oprf.h, SPEC 11 "Contacts"), so it lives in its own file that only
    this service reads, never in the broker's store, and in memory in a
    page of its own (sodium_malloc: guarded, locked out of swap, read-only
    after loading, wiped when freed).

    The key file is 64 lowercase hex digits and a newline, nothing else,
    mode 0600. It is made on first start (written to a temporary file in
    the same directory, synced, then linked into place, so a crash leaves
    either no key file or a whole one, and two services starting at once
    cannot both make one); its directory is made mode 0700 if missing. An
    existing file that group or others may read or write, that holds
    anything but one key, or whose key is not a valid scalar, is refused:
    the service does not start rather than run with another key, since
    every token already stored was made with this one.
    =========================================================================
*/
#ifndef AF_EVALUATOR_H_INCLUDED
#define AF_EVALUATOR_H_INCLUDED

#include <stdbool.h>
#include "af_msg.h"
#include "af_oprf.h"

typedef struct _af_evaluator_t af_evaluator_t;

//  Open the key file at path, making it with a fresh random key when it
//  does not exist (then *created is true, if created is not NULL). NULL
//  with err naming the file and the reason when it cannot be read or made,
//  is not a regular file, is open to group or others ("chmod 600 it"), or
//  does not hold one valid key.
af_evaluator_t *af_evaluator_new (const char *path, bool *created, char *err, size_t errlen);

//  Destroy, wiping the key; sets *self_p to NULL.
void af_evaluator_destroy (af_evaluator_t **self_p);

//  The key's public fingerprint (af_oprf_key_id), for logs and replies.
const char *af_evaluator_key_id (af_evaluator_t *self);

//  The answer to a CONTACTS_EVAL request (not changed): CONTACTS_EVALUATED
//  with the request's rid, each element evaluated under the key in the
//  same order, and keyId; or ERROR 400 with the request's rid (if it had
//  one) when it has no rid, no elements or more than AF_MAX_CONTACTS_EVAL,
//  or an element that is not a valid ristretto255 element (the reason
//  names the first one; none is evaluated). Never NULL (asserts on OOM).
af_msg_t *af_evaluator_answer (af_evaluator_t *self, const af_msg_t *request);

//  Self test: the key file made once (0600, whole), read back, refused
//  when open to others or malformed; answers that a node can finalize into
//  the same outputs as a direct evaluation; refusals of bad elements.
void af_evaluator_test (bool verbose);

#endif
