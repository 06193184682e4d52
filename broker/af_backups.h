/*  =========================================================================
    af_backups - each account's app backups (S4.1-S4.3, SPEC 5.48-5.50)

    A backup is what a person needs to get an app back on any device: its
    identity (program ID, name, publisher, and as its "certificate" the ID
    of the publisher key that signed the package the device installed),
    the version it had, which platform and device it came from, and, if
    the person asked, the app's configuration sealed on the device with
    the account secret (the same blob as CONFIG_PUT: the broker never sees
    it in clear). Several versions of each program are kept (at most
    AF_MAX_BACKUP_VERSIONS: a new one replaces the oldest), so a person
    can go back to the one that worked.

    Every function returns AF_OK or an AF_E_* code; a store failure is
    logged here and returned as AF_E_INTERNAL.

    Named database (in the registry's LMDB environment):
      backups   key: account, 0x00, program, 0x00, versionName
                value: the encoded BACKUP_PUT (af_msg) with its entry
                       completed by the broker (at, deviceId, configSize)
                       and the sealed configuration, if any
    The key starts with the account, so backups shard with it (the
    cluster's rule, docs/ARCHITECTURE.md).
    =========================================================================
*/
#ifndef AF_BACKUPS_H_INCLUDED
#define AF_BACKUPS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_msg.h"
#include "af_store.h"

typedef struct _af_backups_t af_backups_t;

//  Open the table in an open, writable store. NULL on failure (logged).
af_backups_t *af_backups_new (af_store_t *store);

//  Close. Sets *self_p to NULL.
void af_backups_destroy (af_backups_t **self_p);

//  Limit each account to max_count backups (every version of every
//  program) and max_bytes of them, configurations included (0: no limit).
void af_backups_set_quota (af_backups_t *self, size_t max_count, uint64_t max_bytes);

//  Store a backup of entry->program at entry->version_name (the same
//  version again replaces it), with its sealed configuration (NULL, 0:
//  none), in one write transaction; a program's oldest version goes when
//  it would have more than AF_MAX_BACKUP_VERSIONS. AF_OK; AF_E_MALFORMED
//  (bad account, program or version name); AF_E_QUOTA (a new backup past
//  the account's count, or more bytes than it allows; nothing changes);
//  AF_E_INTERNAL.
int af_backups_put (af_backups_t *self, const char *account, const af_backup_t *entry,
                    const uint8_t *config, size_t size);

//  The account's backups (of program only, unless NULL or ""), without
//  their configurations, into list (a BACKUP_LIST): by program, each
//  program's newest first. AF_OK, AF_E_MALFORMED or AF_E_INTERNAL.
int af_backups_list (af_backups_t *self, const char *account, const char *program, af_msg_t *list);

//  One backup of program, with its configuration (list->data), into list:
//  version_name, or the newest when it is NULL or "". AF_OK;
//  AF_E_NO_BACKUP (none of the program); AF_E_NO_VERSION (none at that
//  version: list then holds every version there is, without
//  configurations); AF_E_MALFORMED; AF_E_INTERNAL.
int af_backups_get (af_backups_t *self, const char *account, const char *program,
                    const char *version_name, af_msg_t *list);

//  Self test
void af_backups_test (bool verbose);

#endif
