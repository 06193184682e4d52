/*  =========================================================================
    af_device - a device description: what a package must fit

    A device is described once, as a JSON file the node is started with
    (or from `adb`, see af_adb), and travels in LOGIN and RESOLVE messages.
    The JSON keys are a superset of bundletool's device spec (sdkVersion,
    supportedAbis, screenDensity, supportedLocales, deviceFeatures,
    buildBrand, buildDevice), so `bundletool get-device-spec` output is a
    valid description as it comes, in either proto-JSON spelling; our own
    keys (platform, model, formFactor, screen size, ...) refine it.

    All strings live in fixed buffers sized from af_limits.h; a parsed or
    decoded device never owns heap memory and can be copied with '='.
    =========================================================================
*/
#ifndef AF_DEVICE_H_INCLUDED
#define AF_DEVICE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "af_limits.h"

typedef enum {
    AF_PLATFORM_NONE = 0,
    AF_PLATFORM_ANDROID,
    AF_PLATFORM_IOS,
    AF_PLATFORM_HARMONYOS,
    AF_PLATFORM_WINDOWS,
    AF_PLATFORM_MACOS,
    AF_PLATFORM_LINUX,
    AF_PLATFORM_TVOS,
    AF_PLATFORM_COUNT
} af_platform_t;

typedef enum {
    AF_FORM_NONE = 0,
    AF_FORM_PHONE,
    AF_FORM_TABLET,
    AF_FORM_TV,
    AF_FORM_PC,
    AF_FORM_WATCH,
    AF_FORM_COUNT
} af_form_t;

typedef struct {
    char id [AF_ID_HEX + 1];            //  assigned by the broker; "" before
    char name [AF_MAX_NAME + 1];        //  user-facing name ("Ana's phone")
    char platform [AF_MAX_PLATFORM + 1];
    char os_version [AF_MAX_OSVERSION + 1];
    uint32_t sdk;                       //  Android API level, 0 elsewhere
    char model [AF_MAX_NAME + 1];
    char manufacturer [AF_MAX_NAME + 1];
    char form_factor [AF_MAX_FORMFACTOR + 1];
    uint32_t screen_w;                  //  pixels; both 0 when unknown
    uint32_t screen_h;
    uint32_t density;                   //  dpi, 0 when unknown (non-Android)
    uint32_t abi_count;
    char abis [AF_MAX_ABIS][AF_MAX_ABI + 1];    //  preference order
    uint32_t locale_count;
    char locales [AF_MAX_LOCALES][AF_MAX_LOCALE + 1];
    //  Only in device lists sent by the broker:
    bool online;
    uint64_t last_seen;                 //  unix ms of the last login or of going
                                        //  offline; 0 never
} af_device_t;

//  Platform / form factor names <-> enums. Unknown names give *_NONE.
af_platform_t af_platform_from_name (const char *name);
const char *af_platform_name (af_platform_t platform);
af_form_t af_form_from_name (const char *name);
const char *af_form_name (af_form_t form);

//  Parse a dotted OS version ("16.4.1", "10", "11.0") into a comparable
//  number: major<<20 | minor<<10 | patch. AF_OK, or AF_E_MALFORMED (and
//  *value unchanged) when the text is not 1-3 dot-separated numbers within
//  range.
int af_version_parse (const char *text, uint32_t *value);

//  Print a version number made by af_version_parse, shortest form ("10",
//  "16.4"), into buf. Returns buf.
char *af_version_format (uint32_t value, char *buf, size_t size);

//  Android release name for an API level ("10" for 29, "4.4" for 19);
//  NULL for unknown levels.
const char *af_android_release (uint32_t sdk);

//  The form factor of an Android device from its screen alone: tablet when
//  its smallest width, min (width, height) * 160 / density dp, is at least
//  AF_TABLET_MIN_DP (Android's sw600dp); phone otherwise, and when the
//  screen or the density is unknown (0).
af_form_t af_form_from_screen (uint32_t width, uint32_t height, uint32_t density);

//  Fill in what a description may leave out, then validate it: platform
//  android when sdkVersion is given; an Android osVersion from the API level
//  (33 -> "13", 32 -> "12"); an Android model from brand and build_device
//  (bundletool's buildBrand, buildDevice; either may be NULL), else
//  "Android device"; an Android form factor from the screen
//  (af_form_from_screen); name from model. AF_OK, or AF_E_BAD_DEVICE with
//  err naming the field (no platform and no API level, no osVersion for
//  an API level this build does not know, or af_device_validate's).
int af_device_complete (af_device_t *self, const char *brand, const char *build_device,
                        char *err, size_t errlen);

//  Parse a device description from JSON text: keys in lowerCamelCase or
//  snake_case (not both for one key), unknown keys ignored; an Android form
//  factor comes from deviceFeatures (television or leanback: tv; watch; pc)
//  when not given, else af_device_complete decides. AF_OK, or with a
//  message naming the offending field in err: AF_E_MALFORMED (not JSON, not
//  an object, a key given twice, a value of the wrong type or one that does
//  not fit: a number out of range, a string too long, too many entries) or
//  AF_E_BAD_DEVICE (a field missing, or refused by af_device_complete).
int af_device_from_json (af_device_t *self, const char *json_text,
                         char *err, size_t errlen);

//  Load and parse a device description file of at most AF_MAX_DEVICE_FILE
//  bytes. AF_OK, or with err naming the file: AF_E_INTERNAL (cannot open
//  or read it; errno's text), AF_E_TOO_BIG, AF_E_MALFORMED (a NUL byte, or
//  as af_device_from_json), AF_E_BAD_DEVICE (as af_device_from_json).
int af_device_load (af_device_t *self, const char *path, char *err, size_t errlen);

//  Render as a JSON object (caller frees with free()). NULL on OOM.
char *af_device_to_json (const af_device_t *self);

//  The same as a jansson object (json_t *, caller decrefs), with "online"
//  and "lastSeen" added when with_state. NULL on OOM.
void *af_device_to_jansson (const af_device_t *self, bool with_state);

//  Check every field is present and in range (the screen size may be
//  unknown: both sides 0). AF_OK, or AF_E_BAD_DEVICE with a message naming
//  the field. Called on every description that enters.
int af_device_validate (const af_device_t *self, char *err, size_t errlen);

//  Self test
void af_device_test (bool verbose);

#endif
