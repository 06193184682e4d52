/*  =========================================================================
    af_package - a package as the matcher resolves it, and a resolution

    Shared by the matcher (which fills it), the codec (which carries it in
    RESOLVED messages) and the node (which shows and later installs it).
    Fixed buffers only: a package can be copied with '='.
    =========================================================================
*/
#ifndef AF_PACKAGE_H_INCLUDED
#define AF_PACKAGE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "af_limits.h"

typedef struct {
    char program [AF_MAX_PROGRAM + 1];
    char display [AF_MAX_DISPLAY + 1];      //  display name
    char publisher [AF_MAX_DISPLAY + 1];
    char category [AF_MAX_NAME + 1];
    char platform [AF_MAX_PLATFORM + 1];
    uint64_t version_code;
    char version_name [AF_MAX_VERSION_NAME + 1];
    char package_id [AF_ID_HEX + 1];        //  hex of a 16-byte ID derived from
                                            //  BLAKE2b(program|platform|versionCode|hash)
    char hash [AF_HASH_HEX + 1];            //  hex BLAKE2b-256 of the file; "" if store-only
    uint64_t size;                          //  file bytes, 0 when store-only
    char abi [AF_MAX_ABI + 1];              //  device ABI matched on, "" if ABI-independent
    char store_link [AF_MAX_LINK + 1];
    uint32_t price_cents;                   //  0 = free; in the minor unit of currency
    char currency [AF_CURRENCY + 1];        //  ISO 4217 ("EUR"); "" when free
    uint32_t votes;
} af_package_t;

typedef enum {
    AF_FIT_PACKAGE = 0,             //  package fits; install it
    AF_FIT_STORE_LINK = 1,          //  platform installs only from its store
    AF_FIT_NONE = 2,                //  nothing fits; package = closest, reason says why
    AF_FIT_UNKNOWN_PROGRAM = 3      //  program ID not in the catalog
} af_fit_t;

typedef struct {
    af_fit_t fit;
    af_package_t package;
    char reason [AF_MAX_REASON + 1];
} af_resolution_t;

//  "package", "store-link", "no-fit", "unknown-program"
const char *af_fit_name (af_fit_t fit);

//  A package as a jansson object (json_t *, caller decrefs); NULL on OOM.
void *af_package_to_jansson (const af_package_t *self);

//  A resolution as a jansson object: program, fit, package, reason.
void *af_resolution_to_jansson (const char *program, const af_resolution_t *self);

#endif
