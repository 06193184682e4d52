/*  af_selftest - runs every class's self-test (czmq convention) */
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "af_device.h"
#include "af_msg.h"
#include "af_store.h"
#include "af_registry.h"
#include "af_outbox.h"
#include "af_push.h"
#include "af_installs.h"
#include "af_catalog.h"
#include "af_download.h"
#include "af_install.h"
#include "af_config.h"
#include "af_adb.h"

int
main (int argc, char *argv [])
{
    bool verbose = argc > 1 && strcmp (argv [1], "-v") == 0;
    zsys_init ();
    printf ("Running appferry self tests...\n");
    af_device_test (verbose);
    af_msg_test (verbose);
    af_store_test (verbose);
    af_registry_test (verbose);
    af_outbox_test (verbose);
    af_pushes_test (verbose);
    af_installs_test (verbose);
    af_catalog_test (verbose);
    af_download_test (verbose);
    af_install_test (verbose);
    af_config_test (verbose);
    af_adb_test (verbose);
    printf ("Tests passed OK\n");
    return 0;
}
