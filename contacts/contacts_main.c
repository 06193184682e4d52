/*  =========================================================================
    appferry-contacts - the contacts worker: evaluates blinded phone
    numbers (RFC 9497 OPRF, protocol/SPEC.md 5.35) for the broker, with a
    key that only this service holds

    Stateless but for its key: any number of these may serve one broker as
    long as they share the key file (the same key gives the same tokens),
    and one that dies loses nothing. It never sees a phone number, only
    uniformly random group elements. The worker dialog is
    protocol/af_worker's; the key and the answer are af_evaluator's.
    =========================================================================
*/
#include "af_evaluator.h"
#include "af_worker.h"

#include <getopt.h>
#include <sodium.h>

typedef struct {
    af_worker_options_t worker;     //  -b, -k, -c, --credit, --heartbeat, -v
    char key [512];
} config_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-contacts --broker-key FILE --cert FILE --key FILE [OPTIONS]\n"
"Evaluate blinded contact numbers for the broker (RFC 9497 OPRF, ristretto255-SHA512)\n"
"with a key only this service holds. It never sees a phone number.\n"
"\n"
"  -b, --broker ENDPOINT   the broker's worker endpoint (default tcp://127.0.0.1:5671)\n"
"  -k, --broker-key FILE   the broker's public certificate (broker.cert)\n"
"  -c, --cert FILE         this worker's CURVE keypair: FILE (public) and FILE_secret;\n"
"                          created if missing, with its directory (mode 0700).\n"
"                          Copy FILE into the broker's worker keys directory\n"
"                          to allow this worker.\n"
"  -K, --key FILE          the OPRF key: created on first start (mode 0600, its\n"
"                          directory 0700); refused if group or others may read it.\n"
"                          Every stored contact token depends on it: back it up,\n"
"                          and keep it off the broker's machine or at least out of\n"
"                          the broker's user and store.\n"
"      --credit N          requests the broker may give at once (default 16)\n"
"      --heartbeat MS      heartbeat interval (default 1000)\n"
"  -v, --verbose           log every request (counts only, never elements)\n"
"  -V, --version           show the version and exit\n"
"  -h, --help              show this help and exit\n");
}

//  Read the options into config. -1 to go on, or the status to exit with:
//  0 after --help or --version, 2 for a bad option.
static int
s_parse_options (int argc, char *argv [], config_t *config)
{
    static struct option options [] = {
        AF_WORKER_LONG_OPTIONS,
        { "key", required_argument, NULL, 'K' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, AF_WORKER_SHORT "K:Vh", options, NULL)) != -1) {
        int taken = af_worker_option (&config->worker, opt, optarg, "appferry-contacts");
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        switch (opt) {
            case 'K':
                if (af_worker_string_option (config->key, sizeof config->key, optarg, "appferry-contacts"))
                    return 2;
                break;
            case 'V':
                printf ("appferry-contacts %s (protocol %d; OPRF RFC 9497, mode 0, ristretto255-SHA512)\n",
                        AF_VERSION, AF_PROTO_VERSION);
                return 0;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc || !*config->key || !af_worker_options_check (&config->worker, "appferry-contacts")) {
        fprintf (stderr, "appferry-contacts: --broker-key, --cert and --key are required\n\n");
        s_usage (stderr);
        return 2;
    }
    return -1;
}

typedef struct {
    config_t *config;
    af_evaluator_t *evaluator;
} contacts_t;

//  CONTACTS_EVAL: the evaluated elements, or why not
static af_msg_t *
s_evaluate (void *arg, af_msg_t *request)
{
    contacts_t *self = (contacts_t *) arg;
    af_msg_t *reply = af_evaluator_answer (self->evaluator, request);
    if (reply->id == AF_MSG_ERROR)
        zsys_warning ("contacts: refused a CONTACTS_EVAL of %u elements: %s", request->element_count,
                      reply->reason);
    else
    if (self->config->worker.verbose)
        zsys_info ("contacts: evaluated %u elements", reply->element_count);
    return reply;
}

int
main (int argc, char *argv [])
{
    config_t config = { .key = "" };
    af_worker_options_init (&config.worker, "tcp://127.0.0.1:5671", 16);
    int rc = s_parse_options (argc, argv, &config);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logident ("appferry-contacts");
    //  Both keys before connecting: deploy/install.sh starts this once to make them
    af_worker_config_t dialog = af_worker_options_config (&config.worker, "contacts", "appferry contacts");
    char err [1200];
    af_worker_t *worker = af_worker_new (&dialog, err, sizeof err);
    if (!worker) {
        fprintf (stderr, "appferry-contacts: %s\n", err);
        return 1;
    }
    bool created = false;
    af_evaluator_t *evaluator = af_evaluator_new (config.key, &created, err, sizeof err);
    if (!evaluator) {
        fprintf (stderr, "appferry-contacts: %s\n", err);
        af_worker_destroy (&worker);
        return 1;
    }
    zsys_info ("contacts: %s key %s from %s", created? "made a new": "using", af_evaluator_key_id (evaluator),
               config.key);
    contacts_t contacts = { &config, evaluator };
    af_worker_set_handler (worker, AF_MSG_CONTACTS_EVAL, s_evaluate, &contacts);
    rc = af_worker_serve (worker, err, sizeof err);
    if (rc != AF_OK)
        fprintf (stderr, "appferry-contacts: %s\n", err);
    af_worker_destroy (&worker);
    af_evaluator_destroy (&evaluator);
    zsys_info ("contacts: stopped");
    return rc == AF_OK? 0: 1;
}
