/*  =========================================================================
    af_syncindex - install lists in memory for sync diffs, and matcher answers

    A SYNC (S1.2, S1.3) compares one device's install list with the other
    devices' of its account, and with what the account had before. Reading
    every list from LMDB for every SYNC would make a diff cost the
    account's whole history; instead each account's lists are read once
    and kept, indexed by program and by device, until the account's next
    REPORT or LIST drops them (at most AF_INDEX_CACHE_MAX accounts), so a
    diff costs what it returns.

    The fit of each program for the asker comes from the matcher. Devices
    the matcher cannot tell apart get the same answer, so answers are kept
    for AF_RESOLVE_CACHE_MS per (fit key, program), where the fit key is a
    digest of exactly the description fields af_catalog_resolve reads
    (af_syncindex_fit_key), not of the whole description: two phones of
    one model that differ only in their names share their answers. A
    catalog import shows in diffs within that time (pushes always ask
    afresh). Both caches are bounded; past the bound everything is dropped
    and read again, which is correct, only slower.
    =========================================================================
*/
#ifndef AF_SYNCINDEX_H_INCLUDED
#define AF_SYNCINDEX_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"
#include "af_lists.h"

typedef struct _af_syncindex_t af_syncindex_t;

//  A matcher answer, as a diff entry carries it
typedef struct {
    uint32_t fit;                                   //  af_fit_t
    char fit_version [AF_MAX_VERSION_NAME + 1];
    char reason [AF_MAX_REASON + 1];
} af_sync_answer_t;

//  A diff before its fits are known
typedef struct {
    af_msg_t *diff;                             //  SYNC_DIFF, entries without fit
    uint32_t program_count;
    char (*programs) [AF_MAX_PROGRAM + 1];      //  distinct programs, first seen first
    uint32_t *slot;                             //  flat: per entry, its program's index
} af_sync_diff_t;

//  Create the index over the broker's install lists (not owned).
af_syncindex_t *af_syncindex_new (af_lists_t *lists);

//  Destroy. Sets *self_p to NULL.
void af_syncindex_destroy (af_syncindex_t **self_p);

//  Forget every account's lists (shards moved): read again when needed.
void af_syncindex_purge (af_syncindex_t *self);

//  The account's lists changed: read them again at its next diff.
void af_syncindex_drop (af_syncindex_t *self, const char *account);

//  What the account's other devices have that device_id lacks (one entry
//  per device and program, with that device's version), and what the
//  account had that no device has now (one entry, device ""), at most
//  AF_MAX_DIFF entries (diff->truncated says more were left out). Grouped:
//  one program entry per program (diff->progs, in the order of programs),
//  its holders after it in diff->holders, the account's devices in
//  diff->devices (at most AF_MAX_DIFF programs, AF_MAX_HOLDERS holders).
//  Fills out; free it with af_sync_diff_free. AF_OK or AF_E_INTERNAL.
int af_syncindex_diff (af_syncindex_t *self, const char *account, const char *device_id, bool grouped,
                       af_sync_diff_t *out);

//  Free what a diff holds (the SYNC_DIFF too, unless taken).
void af_sync_diff_free (af_sync_diff_t *diff);

//  The key of kept answers for a device (AF_ID_HEX hex digits into key,
//  NUL-terminated): a BLAKE2b digest of the fields the matcher's resolver
//  reads: platform, form factor, OS version and API level, screen width
//  and height, density, and the ABIs in order. Not the name, model,
//  manufacturer, locales, ID or online state, which the resolver never
//  reads. A field af_catalog_resolve comes to read must join this key, or
//  devices that differ in it would get each other's answers.
void af_syncindex_fit_key (const af_device_t *device, char key [AF_ID_HEX + 1]);

//  A kept answer for devices whose fit key is digest, if fresh at now
//  (zclock_mono). True and *answer filled, or false.
bool af_syncindex_recall (af_syncindex_t *self, const char *digest, const char *program, int64_t now,
                          af_sync_answer_t *answer);

//  Keep an answer until now + AF_RESOLVE_CACHE_MS.
void af_syncindex_remember (af_syncindex_t *self, const char *digest, const char *program,
                            const af_sync_answer_t *answer, int64_t now);

//  Self test
void af_syncindex_test (bool verbose);

#endif
