/*  fuzz_device - the device description parser (af_device_from_json), as
    the node runs it on its --device file.

    Property: a description it accepts is valid (the broker would take
    it), and written out again (af_device_to_json, as the node does for
    HOME/device.json) parses to the same description; one it refuses is
    refused with one of its two documented codes and a reason.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "af_device.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > AF_MAX_DEVICE_FILE)
        return 0;
    char *text = (char *) malloc (size + 1);
    assert (text);
    memcpy (text, data, size);
    text [size] = 0;
    char err [256];
    af_device_t device, again;
    *err = 0;
    int code = af_device_from_json (&device, text, err, sizeof err);
    assert (code == AF_OK || ((code == AF_E_MALFORMED || code == AF_E_BAD_DEVICE) && *err));
    if (code == AF_OK) {
        assert (af_device_validate (&device, err, sizeof err) == AF_OK);
        char *json = af_device_to_json (&device);
        assert (json);
        if (af_device_from_json (&again, json, err, sizeof err) != AF_OK)
            fprintf (stderr, "written again, refused: %s\n%s\n", err, json);
        assert (af_device_from_json (&again, json, err, sizeof err) == AF_OK);
        assert (memcmp (&again, &device, sizeof device) == 0);
        free (json);
    }
    free (text);
    return 0;
}
