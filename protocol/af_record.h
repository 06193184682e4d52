/*  =========================================================================
    af_record - the shape of what an install changes beyond its files (S0.1)

    A package may declare settings and start-up entries in a top-level
    appferry.json, its manifest (protocol/SPEC.md 4.3):

        { "settings": { KEY: STRING, ... }, "startup": [ NAME, ... ] }

    The node's installer writes them (nodes/af_install), and a device's
    install record carries them; S0.5 sends one device's record to another
    device, through the broker, to be applied there. Both ends are hostile
    to each other, so the rules live here, in protocol/, where the node
    and the broker both link them: the node checks a manifest and a record
    it applies, the broker a record it relays. These functions look at
    shapes and sizes only; nothing here touches a disk.

    The rules (limits in af_limits.h):
    - settings: an object of at most AF_MAX_SETTINGS keys, each key 1 to
      AF_MAX_SETTING_KEY bytes of A-Z a-z 0-9 . _ -, each value a string
      of at most AF_MAX_SETTING_VALUE bytes of UTF-8 without NUL;
    - startup: an array of at most AF_MAX_STARTUP distinct names, each 1 to
      AF_MAX_STARTUP_NAME bytes of A-Z a-z 0-9 . _ -, not starting with
      '.' (a name becomes part of a file name on the node: never ".",
      "..", a hidden name or one with a '/');
    - a manifest: at most AF_MANIFEST_MAX bytes of JSON, an object with no
      key but those two (each optional), no key given twice.

    Every function returns AF_OK or AF_E_MALFORMED with err (which may be
    NULL) naming what broke which rule; over a limit is AF_E_MALFORMED too,
    as the installer refuses every bad archive with that code.
    =========================================================================
*/
#ifndef AF_RECORD_H_INCLUDED
#define AF_RECORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "af_limits.h"

//  The manifest's name at the top of a package archive
#define AF_MANIFEST_NAME    "appferry.json"

//  Is settings an object of settings by the rules above?
int af_record_settings_check (const json_t *settings, char *err, size_t errlen);

//  Is startup an array of start-up entry names by the rules above?
int af_record_startup_check (const json_t *startup, char *err, size_t errlen);

//  Is name one start-up entry name (not checked for repeats)?
bool af_record_startup_name_valid (const char *name);

//  Parse a manifest's len bytes of text. AF_OK with *manifest a new object
//  { "settings": {...}, "startup": [...] } (both always there, empty when
//  the manifest leaves them out; the caller frees it), or AF_E_MALFORMED
//  with err ("appferry.json: ...") and *manifest NULL.
int af_record_manifest_parse (const char *text, size_t len, json_t **manifest, char *err, size_t errlen);

//  Is record an exported install record (af_install_record_export), within
//  bounds: an object of exactly { "program": a program ID, "versionName":
//  a string of at most AF_MAX_VERSION_NAME bytes, "versionCode": an
//  integer >= 0, "settings": settings, "startup": startup } by the rules
//  above, at most AF_RECORD_MAX bytes as compact JSON? For whoever relays
//  or applies one. AF_OK or AF_E_MALFORMED with err.
int af_install_record_check (const json_t *record, char *err, size_t errlen);

//  Self test
void af_record_test (bool verbose);

#endif
