/*  =========================================================================
    appferry-matcher - the matcher worker: resolves program IDs to the
    package that fits a device, from a read-only catalog, for the broker.

    Stateless over its catalog: any number of matchers may serve one
    broker (each announces a credit of concurrent requests), and a matcher
    that dies loses nothing, since the broker hands its requests to
    another. The worker dialog is in protocol/SPEC.md ("Worker dialog").
    =========================================================================
*/
#include "af_catalog.h"
#include "af_msg.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <sys/stat.h>

typedef struct {
    char broker [256];
    char broker_key [512];
    char catalog [512];
    char cert [512];
    int credit;
    int heartbeat_ms;
    int liveness;
    bool verbose;
} config_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-matcher --broker ENDPOINT --broker-key FILE --catalog DIR --cert FILE [OPTIONS]\n"
"Serve package resolution for the broker from a catalog made by appferry-catalog.\n"
"\n"
"  -b, --broker ENDPOINT   the broker's worker endpoint (e.g. tcp://127.0.0.1:5671)\n"
"  -k, --broker-key FILE   the broker's public certificate (broker.cert)\n"
"  -C, --catalog DIR       catalog directory (opened read-only)\n"
"  -c, --cert FILE         this matcher's keypair: FILE (public) and FILE_secret;\n"
"                          created if missing, with its directory (mode 0700).\n"
"                          Copy FILE into the broker's worker keys directory\n"
"                          to allow this matcher.\n"
"      --credit N          requests the broker may give at once (default 16)\n"
"      --heartbeat MS      heartbeat interval (default 1000)\n"
"  -v, --verbose           log every request\n"
"  -h, --help              show this help and exit\n");
}

//  Creates the directory that will hold FILE, and any missing parent, each
//  mode 0700 (the keypair's secret goes there). Returns 0 if it exists
//  afterwards, -1 with the reason in err.
static int
s_make_parent (const char *file, char *err, size_t errlen)
{
    char dir [512];
    snprintf (dir, sizeof dir, "%s", file);
    char *slash = strrchr (dir, '/');
    if (!slash || slash == dir)
        return 0;                       //  the current directory, or /
    *slash = 0;
    for (char *p = dir + 1; ; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        struct stat st;
        if (mkdir (dir, 0700) && errno != EEXIST) {
            snprintf (err, errlen, "cannot create %s: %s", dir, strerror (errno));
            return -1;
        }
        if (stat (dir, &st) || !S_ISDIR (st.st_mode)) {
            snprintf (err, errlen, "%s is not a directory", dir);
            return -1;
        }
        *p = saved;
        if (!saved)
            return 0;
    }
}

//  Tell the broker this matcher serves "matcher", with its credit and
//  heartbeat: on connecting, and again when the broker has forgotten it
static void
s_announce (config_t *config, zsock_t *sock)
{
    af_msg_t *ready = af_msg_new (AF_MSG_READY);
    snprintf (ready->service, sizeof ready->service, "matcher");
    ready->credit = (uint32_t) config->credit;
    ready->heartbeat = (uint32_t) config->heartbeat_ms;
    af_msg_send (ready, sock, NULL);
    af_msg_destroy (&ready);
}

static zsock_t *
s_connect (config_t *config, zcert_t *cert, zcert_t *broker_cert)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    zcert_apply (cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (broker_cert));
    zsock_set_linger (sock, 0);
    //  Never block on send: with no connection (broker down, or our key
    //  not yet allowed) a DEALER send would wait forever, and the loop
    //  must keep running to notice silence and reconnect.
    zsock_set_sndtimeo (sock, 0);
    zsock_set_maxmsgsize (sock, AF_MAX_ZMQ_MSG);
    zsock_set_sndhwm (sock, 100000);
    zsock_set_rcvhwm (sock, 100000);
    if (zsock_connect (sock, "%s", config->broker)) {
        zsock_destroy (&sock);
        return NULL;
    }
    s_announce (config, sock);
    return sock;
}

static void
s_handle (config_t *config, af_catalog_t *catalog, zsock_t *sock, af_msg_t *msg)
{
    char err [AF_MAX_REASON + 1];
    af_msg_t *reply = NULL;
    if (!msg->has_rid || !msg->has_device)
        reply = af_msg_error (AF_E_MALFORMED, msg->has_rid? msg->rid: NULL,
                              "RESOLVE to a worker needs rid and device");
    else
    if (af_device_validate (&msg->device, err, sizeof err) != AF_OK)
        reply = af_msg_error (AF_E_BAD_DEVICE, msg->rid, "%s", err);
    else {
        af_resolution_t resolution;
        if (af_catalog_resolve (catalog, msg->program, &msg->device, &resolution) != AF_OK)
            reply = af_msg_error (AF_E_INTERNAL, msg->rid, "catalog read failed");
        else {
            reply = af_msg_new (AF_MSG_RESOLVED);
            reply->has_rid = true;
            memcpy (reply->rid, msg->rid, AF_ID_SIZE);
            snprintf (reply->program, sizeof reply->program, "%s", msg->program);
            reply->fit = (uint32_t) resolution.fit;
            reply->has_package = resolution.fit != AF_FIT_UNKNOWN_PROGRAM;
            reply->package = resolution.package;
            snprintf (reply->reason, sizeof reply->reason, "%s", resolution.reason);
            if (config->verbose)
                zsys_info ("matcher: %s for %s %s: %s %s", msg->program, msg->device.platform,
                           msg->device.model, af_fit_name (resolution.fit),
                           resolution.fit == AF_FIT_NONE? resolution.reason: resolution.package.version_name);
        }
    }
    af_msg_send (reply, sock, NULL);
    af_msg_destroy (&reply);
}

//  Read the options into config. -1 to go on, or the status to exit with:
//  0 after --help, 2 for a bad option.
static int
s_parse_options (int argc, char *argv [], config_t *config)
{
    enum { OPT_CREDIT = 1000, OPT_HEARTBEAT };
    static struct option options [] = {
        { "broker", required_argument, NULL, 'b' },
        { "broker-key", required_argument, NULL, 'k' },
        { "catalog", required_argument, NULL, 'C' },
        { "cert", required_argument, NULL, 'c' },
        { "credit", required_argument, NULL, OPT_CREDIT },
        { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "b:k:C:c:vh", options, NULL)) != -1) {
        char *target = NULL;
        size_t size = 0;
        switch (opt) {
            case 'b': target = config->broker; size = sizeof config->broker; break;
            case 'k': target = config->broker_key; size = sizeof config->broker_key; break;
            case 'C': target = config->catalog; size = sizeof config->catalog; break;
            case 'c': target = config->cert; size = sizeof config->cert; break;
            case 'v': config->verbose = true; break;
            case OPT_CREDIT: config->credit = atoi (optarg); break;
            case OPT_HEARTBEAT: config->heartbeat_ms = atoi (optarg); break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
        if (target) {
            if (strlen (optarg) >= size || !*optarg) {
                fprintf (stderr, "appferry-matcher: option value too long or empty: %s\n", optarg);
                return 2;
            }
            strcpy (target, optarg);
        }
    }
    if (optind < argc || !*config->broker || !*config->broker_key || !*config->catalog || !*config->cert
    ||  config->credit < 1 || config->credit > 1024 || config->heartbeat_ms < 50) {
        fprintf (stderr, "appferry-matcher: --broker, --broker-key, --catalog and --cert are required; "
                 "--credit is 1..1024\n\n");
        s_usage (stderr);
        return 2;
    }
    return -1;
}

//  Load the broker's public certificate and this matcher's keypair,
//  creating the keypair (and its directory) the first time. 0, or -1 with
//  a message printed and nothing loaded.
static int
s_load_keys (config_t *config, zcert_t **cert_p, zcert_t **broker_cert_p)
{
    zcert_t *broker_cert = zcert_load (config->broker_key);
    if (!broker_cert) {
        fprintf (stderr, "appferry-matcher: cannot read %s\n", config->broker_key);
        return -1;
    }
    char secret [600];
    snprintf (secret, sizeof secret, "%s_secret", config->cert);
    zcert_t *cert = zcert_load (secret);
    if (!cert) {
        char err [600];
        if (s_make_parent (config->cert, err, sizeof err)) {
            fprintf (stderr, "appferry-matcher: cannot save keypair to %s: %s\n", config->cert, err);
            zcert_destroy (&broker_cert);
            return -1;
        }
        cert = zcert_new ();
        zcert_set_meta (cert, "role", "appferry matcher");
        if (!cert || zcert_save (cert, config->cert)) {
            fprintf (stderr, "appferry-matcher: cannot save keypair to %s: %s\n", config->cert,
                     strerror (errno));
            zcert_destroy (&cert);
            zcert_destroy (&broker_cert);
            return -1;
        }
        zsys_info ("matcher: created keypair %s; copy it into the broker's worker keys directory",
                   config->cert);
    }
    *cert_p = cert;
    *broker_cert_p = broker_cert;
    return 0;
}

//  Receive one message from the broker and act on it: answer a RESOLVE,
//  announce again after a DISCONNECT, log an ERROR. -1 if nothing could be
//  received (the socket is gone), else 0.
static int
s_receive (config_t *config, af_catalog_t *catalog, zsock_t *sock)
{
    zframe_t *frame = zframe_recv (sock);
    if (!frame)
        return -1;
    af_msg_t *msg = NULL;
    char err [AF_MAX_REASON + 1];
    int code = zframe_more (frame)? AF_E_MALFORMED:
        af_msg_decode (zframe_data (frame), zframe_size (frame), &msg, err, sizeof err, NULL, NULL);
    zframe_destroy (&frame);
    if (code != AF_OK)
        zsys_warning ("matcher: dropped a message from the broker: %s", af_code_name (code));
    else
    if (msg->id == AF_MSG_RESOLVE) {
        s_handle (config, catalog, sock, msg);
        //  Idle now? Then hold no catalog snapshot while we wait
        if (!(zsock_events (sock) & ZMQ_POLLIN))
            af_catalog_release (catalog);
    }
    else
    if (msg->id == AF_MSG_DISCONNECT) {
        zsys_warning ("matcher: broker said DISCONNECT (%s); announcing again", msg->reason);
        s_announce (config, sock);
    }
    else
    if (msg->id == AF_MSG_ERROR)
        zsys_warning ("matcher: broker error %s: %s", af_code_name ((int) msg->code), msg->reason);
    af_msg_destroy (&msg);
    return 0;
}

//  Serve until interrupted or the broker cannot be reached again: answer
//  what arrives, ping every heartbeat, reconnect when the broker has been
//  silent for `liveness` heartbeats. Then say DISCONNECT and close sock.
static void
s_serve (config_t *config, af_catalog_t *catalog, zcert_t *cert, zcert_t *broker_cert, zsock_t *sock)
{
    int64_t last_rx = zclock_mono (), last_ping = 0;
    zpoller_t *poller = zpoller_new (sock, NULL);
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, config->heartbeat_ms / 2);
        int64_t now = zclock_mono ();
        if (which == sock) {
            if (s_receive (config, catalog, sock))
                break;
            last_rx = now;
        }
        else
        if (zpoller_terminated (poller))
            break;
        if (now - last_ping >= config->heartbeat_ms) {
            af_msg_t *ping = af_msg_new (AF_MSG_PING);
            af_msg_send (ping, sock, NULL);
            af_msg_destroy (&ping);
            last_ping = now;
        }
        if (now - last_rx > (int64_t) config->heartbeat_ms * config->liveness) {
            zsys_warning ("matcher: broker silent; reconnecting");
            zpoller_destroy (&poller);
            zsock_destroy (&sock);
            sock = s_connect (config, cert, broker_cert);
            if (!sock)
                break;
            poller = zpoller_new (sock, NULL);
            last_rx = now;
        }
    }
    af_msg_t *bye = sock? af_msg_new (AF_MSG_DISCONNECT): NULL;
    if (bye) {
        af_msg_send (bye, sock, NULL);
        af_msg_destroy (&bye);
        zclock_sleep (20);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&sock);
}

int
main (int argc, char *argv [])
{
    config_t config = { .credit = 16, .heartbeat_ms = AF_HEARTBEAT_MS, .liveness = AF_HEARTBEAT_LIVENESS };
    int rc = s_parse_options (argc, argv, &config);
    if (rc >= 0)
        return rc;
    if (sodium_init () < 0)
        return 1;
    zsys_init ();
    zsys_set_logident ("appferry-matcher");
    zcert_t *cert, *broker_cert;
    if (s_load_keys (&config, &cert, &broker_cert))
        return 1;
    af_catalog_t *catalog = af_catalog_new (config.catalog, false);
    if (!catalog) {
        fprintf (stderr, "appferry-matcher: cannot open catalog %s\n", config.catalog);
        return 1;
    }
    zsock_t *sock = s_connect (&config, cert, broker_cert);
    if (!sock) {
        fprintf (stderr, "appferry-matcher: cannot connect to %s\n", config.broker);
        return 1;
    }
    zsys_info ("matcher: serving catalog %s to %s (credit %d)", config.catalog, config.broker, config.credit);
    s_serve (&config, catalog, cert, broker_cert, sock);
    af_catalog_destroy (&catalog);
    zcert_destroy (&cert);
    zcert_destroy (&broker_cert);
    zsys_info ("matcher: stopped");
    return 0;
}
