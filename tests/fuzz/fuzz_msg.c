/*  fuzz_msg - the message decoder (af_msg_decode), as the broker and every
    node run it on each frame from the network.

    Properties, beyond "no crash, no leak, no undefined behaviour": a
    message the decoder accepts encodes again, and its encoding decodes to
    the same command; the device and package maps (stored records) decode
    from the same bytes without harm, AF_OK or AF_E_MALFORMED.
*/
#include <assert.h>
#include <czmq.h>
#include "af_msg.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [256];
    uint8_t rid [AF_ID_SIZE];
    bool has_rid = false;
    af_msg_t *msg = NULL;
    int rc = af_msg_decode (data, size, &msg, err, sizeof err, rid, &has_rid);
    assert ((rc == AF_OK) == (msg != NULL));
    if (msg) {
        zframe_t *frame = af_msg_encode (msg);
        if (frame) {
            af_msg_t *copy = NULL;
            rc = af_msg_decode (zframe_data (frame), zframe_size (frame), &copy, err, sizeof err,
                                NULL, NULL);
            if (rc != AF_OK)
                fprintf (stderr, "re-encoded %s does not decode: %s\n",
                         af_msg_command_name (msg->id), err);
            assert (rc == AF_OK && copy->id == msg->id);
            af_msg_destroy (&copy);
            zframe_destroy (&frame);
        }
        af_msg_destroy (&msg);
    }
    af_device_t device;
    rc = af_device_unpack (data, size, &device, err, sizeof err);
    assert (rc == AF_OK || rc == AF_E_MALFORMED);
    af_package_t package;
    rc = af_package_unpack (data, size, &package, err, sizeof err);
    assert (rc == AF_OK || rc == AF_E_MALFORMED);
    return 0;
}
