/*  =========================================================================
    af_adb - a device description from a connected Android device

    `appferry-node --device-from-adb [SERIAL]` describes the phone or TV
    plugged into the machine the node runs on, so the user needs neither
    bundletool nor a hand-written file. It runs three adb commands,

        adb [-s SERIAL] shell getprop       system properties
        adb [-s SERIAL] shell wm size       "Physical size: 1080x2400"
        adb [-s SERIAL] shell wm density    "Physical density: 420"

    and builds the description from their text alone (af_adb_parse), so the
    parser is tested on recorded output and never needs a device:

      model         ro.product.model (else ro.product.brand and
                    ro.product.device, as for a bundletool spec)
      manufacturer  ro.product.manufacturer
      sdkVersion    ro.build.version.sdk (required: no API level, no Android)
      osVersion     ro.build.version.release when it is a dotted version,
                    else derived from the API level
      supportedAbis ro.product.cpu.abilist, else ro.product.cpu.abi and abi2
      locales       persist.sys.locale, else ro.product.locale, else
                    ro.product.locale.language "-" ro.product.locale.region
                    (bundletool's order)
      density       wm's physical density, else ro.sf.lcd_density (required)
      screen        wm's physical size; unknown without it
      formFactor    ro.build.characteristics naming tv, watch or tablet,
                    else the screen rule of af_form_from_screen

    The physical size and density are what the hardware has; an "Override"
    line (a user's display-size setting) is ignored, as bundletool does.
    adb is Debian's `adb` package; it is needed only for this option, never
    to build or test appferry.
    =========================================================================
*/
#ifndef AF_ADB_H_INCLUDED
#define AF_ADB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "af_device.h"

//  Build and validate a description from the text of `getprop`, `wm size`
//  and `wm density` (the last two may be NULL or empty: unknown). AF_OK, or
//  AF_E_BAD_DEVICE with err naming the property or field that is missing
//  or bad.
int af_adb_parse (af_device_t *device, const char *getprop, const char *wm_size,
                  const char *wm_density, char *err, size_t errlen);

//  The value of property name in getprop output ("[name]: [value]" lines;
//  a value may span lines). AF_OK with *found true and the value in buf,
//  or with *found false when the property is absent; AF_E_MALFORMED when
//  its value has no ']' that ends a line, AF_E_TOO_BIG when it does not
//  fit in size bytes (*found false for both).
int af_adb_property (const char *getprop, const char *name, char *buf, size_t size, bool *found);

//  Run the three commands with adb (the program, looked up in PATH; NULL:
//  "adb") for the device serial (NULL: the only device connected) and
//  parse their output. Each command may run AF_ADB_TIMEOUT_MS and print
//  AF_MAX_ADB_OUTPUT bytes. AF_OK, or with err: AF_E_MALFORMED (serial is
//  not a serial), AF_E_INTERNAL (adb missing, failing with its message, or
//  too slow), AF_E_TOO_BIG (it printed more), AF_E_BAD_DEVICE (output that
//  af_adb_parse refuses).
int af_adb_read (af_device_t *device, const char *adb, const char *serial,
                 char *err, size_t errlen);

//  Self test
void af_adb_test (bool verbose);

#endif
