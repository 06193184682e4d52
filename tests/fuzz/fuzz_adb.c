/*  fuzz_adb - the adb output parser (af_adb_parse). The input is the text
    of `getprop`, `wm size` and `wm density`, separated by NUL bytes.

    Property: a description it builds is valid, and parses again from the
    JSON the node writes to HOME/device.json to the same description.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "af_adb.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > AF_MAX_ADB_OUTPUT)
        return 0;
    char *text = (char *) malloc (size + 3);
    assert (text);
    memcpy (text, data, size);
    memset (text + size, 0, 3);
    //  Three NUL-terminated parts; missing ones are empty
    const char *getprop = text;
    const char *wm_size = getprop + strlen (getprop) + 1;
    if (wm_size > text + size)
        wm_size = text + size;
    const char *wm_density = wm_size + strlen (wm_size) + 1;
    if (wm_density > text + size + 1)
        wm_density = text + size + 1;
    char err [256];
    af_device_t device, again;
    if (af_adb_parse (&device, getprop, wm_size, wm_density, err, sizeof err) == AF_OK) {
        assert (af_device_validate (&device, err, sizeof err) == AF_OK);
        char *json = af_device_to_json (&device);
        assert (json);
        if (af_device_from_json (&again, json, err, sizeof err) != AF_OK)
            fprintf (stderr, "HOME/device.json would be refused: %s\n%s\n", err, json);
        assert (af_device_from_json (&again, json, err, sizeof err) == AF_OK);
        assert (memcmp (&again, &device, sizeof device) == 0);
        free (json);
    }
    free (text);
    return 0;
}
