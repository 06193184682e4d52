/*  =========================================================================
    af_selftest - runs the classes' self-tests (czmq convention)

    af_selftest [-v]               every test, in order
    af_selftest --list             the test names
    af_selftest [-v] --test NAME   one of them (e.g. af_outbox)
    =========================================================================
*/
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "af_device.h"
#include "af_msg.h"
#include "af_oprf.h"
#include "af_minisign.h"
#include "af_trust.h"
#include "af_record.h"
#include "af_worker.h"
#include "af_store.h"
#include "af_registry.h"
#include "af_outbox.h"
#include "af_paynotes.h"
#include "af_asks.h"
#include "af_pushes.h"
#include "af_lists.h"
#include "af_configs.h"
#include "af_userdata.h"
#include "af_backups.h"
#include "af_dispatch.h"
#include "af_syncindex.h"
#include "af_hasher.h"
#include "af_guesses.h"
#include "af_friends.h"
#include "af_peers.h"
#include "af_loglimit.h"
#include "af_linkwatch.h"
#include "af_metrics.h"
#include "af_shard.h"
#include "af_forward.h"
#include "af_transfers.h"
#include "af_catalog.h"
#include "af_signer.h"
#include "af_download.h"
#include "af_install.h"
#include "af_config.h"
#include "af_reports.h"
#include "af_adb.h"
#include "af_phone.h"
#include "af_contacts.h"
#include "af_evaluator.h"
#include "af_provider.h"
#include "af_ledger.h"
#include "fleet_models.h"
#include "fleet_heap.h"
#include "fleet_hist.h"
#include "af_etcd.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} test_t;

static const test_t s_tests [] = {
    { "af_device", af_device_test },
    { "af_msg", af_msg_test },
    { "af_oprf", af_oprf_test },
    { "af_minisign", af_minisign_test },
    { "af_trust", af_trust_test },
    { "af_record", af_record_test },
    { "af_worker", af_worker_test },
    { "af_store", af_store_test },
    { "af_registry", af_registry_test },
    { "af_outbox", af_outbox_test },
    { "af_paynotes", af_paynotes_test },
    { "af_asks", af_asks_test },
    { "af_pushes", af_pushes_test },
    { "af_lists", af_lists_test },
    { "af_configs", af_configs_test },
    { "af_userdata", af_userdata_test },
    { "af_backups", af_backups_test },
    { "af_syncindex", af_syncindex_test },
    { "af_dispatch", af_dispatch_test },
    { "af_hasher", af_hasher_test },
    { "af_guesses", af_guesses_test },
    { "af_friends", af_friends_test },
    { "af_peers", af_peers_test },
    { "af_loglimit", af_loglimit_test },
    { "af_linkwatch", af_linkwatch_test },
    { "af_metrics", af_metrics_test },
    { "af_shard", af_shard_test },
    { "af_forward", af_forward_test },
    { "af_transfers", af_transfers_test },
    { "af_catalog", af_catalog_test },
    { "af_signer", af_signer_test },
    { "af_download", af_download_test },
    { "af_install", af_install_test },
    { "af_config", af_config_test },
    { "af_adb", af_adb_test },
    { "af_reports", af_reports_test },
    { "af_phone", af_phone_test },
    { "af_contacts", af_contacts_test },
    { "af_evaluator", af_evaluator_test },
    { "af_testpay", af_testpay_test },
    { "af_ledger", af_ledger_test },
    { "fleet_models", fleet_models_test },
    { "fleet_heap", fleet_heap_test },
    { "fleet_hist", fleet_hist_test },
    { "af_etcd", af_etcd_test },
};
#define TESTS (sizeof s_tests / sizeof s_tests [0])

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: af_selftest [-v] [--list | --test NAME]\n");
}

int
main (int argc, char *argv [])
{
    bool verbose = false, list = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "-v") || streq (argv [i], "--verbose"))
            verbose = true;
        else
        if (streq (argv [i], "--list"))
            list = true;
        else
        if (streq (argv [i], "--test") && i + 1 < argc)
            only = argv [++i];
        else
        if (streq (argv [i], "-h") || streq (argv [i], "--help")) {
            s_usage (stdout);
            return 0;
        }
        else {
            s_usage (stderr);
            return 2;
        }
    }
    if (list) {
        for (size_t i = 0; i < TESTS; i++)
            printf ("%s\n", s_tests [i].name);
        return 0;
    }
    zsys_init ();
    setvbuf (stdout, NULL, _IONBF, 0);      //  what ran is on screen even if a test aborts
    printf ("Running appferry self tests...\n");
    size_t ran = 0;
    for (size_t i = 0; i < TESTS; i++)
        if (!only || streq (only, s_tests [i].name)) {
            s_tests [i].test (verbose);
            ran++;
        }
    if (ran == 0) {
        fprintf (stderr, "af_selftest: no test named '%s' (see --list)\n", only);
        return 2;
    }
    printf ("Tests passed OK\n");
    return 0;
}
