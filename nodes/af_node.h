/*  =========================================================================
    af_node - the device node: one per device, talks to the broker for it

    The node keeps a CURVE connection to the broker, logs in for its
    device, keeps the account's device list as the broker pushes it, and
    serves the `appferry` CLI over an ipc socket in its home directory
    (mode 0600, so only the device's user can drive it).

    Home directory layout (docs/ARCHITECTURE.md "Node: HOME/" has more):
      node.cert, node.cert_secret   the node's CURVE keypair (made once)
      node.state                    account and device ID after a login,
                                    and the report counters; with it the
                                    node logs in again by its bound key
                                    after restarts, no password
      node.sock                     the CLI's ipc socket (0600)
      incoming/                     packages and data being received or
                                    sent; emptied at start
      apps/PROGRAM/                 what the built-in installer unpacked
      installed/PROGRAM.json        install records (program, version,
                                    hash, files, time, push, method)
      reports/SEQ.json              install reports the broker has not
                                    confirmed yet (af_reports)
      links/PROGRAM.json            store links received for this device
      pushes.json                   the last pushes this device started,
                                    with each target's state
      data/PROGRAM/, config/PROGRAM/  an app's data and configuration
      config.key, config-share.json the account's configuration key; the
                                    apps shared, and those waiting
      install.log                   the install command's output

    The node reconnects by itself: it PINGs every heartbeat; silence for
    heartbeat x liveness drops and re-creates the connection; a PONG that
    says the connection has no session (the broker restarted) triggers a
    fresh LOGIN with the saved device ID. The code is split by concern
    over nodes/node_int.h; af_node.c says which file does what.
    =========================================================================
*/
#ifndef AF_NODE_H_INCLUDED
#define AF_NODE_H_INCLUDED

#include <stdbool.h>
#include "af_device.h"

typedef struct {
    char broker [2048];             //  broker endpoint, or several, comma-separated (a cluster)
    char broker_key [512];          //  broker's public certificate file
    char home [512];                //  node home directory
    char device_file [512];         //  device description JSON
    int heartbeat_ms;
    int liveness;
    int request_timeout_ms;         //  broker answer deadline for CLI requests
    char install_cmd [1024];        //  operator's installer ("" = built-in)
    int install_timeout_s;          //  time limit of one install
    char attest_file [512];         //  "name=value" lines; its mtime dates them
    int rate_kib;                   //  receive at most this many KiB/s (0 = no limit)
    bool sync_auto;                 //  install what other devices install (S1.9)
    char root_key [512];            //  the store's root public key (minisign); "" = none
    bool insecure_unsigned;         //  without one: install unsigned packages anyway
    bool restore_recommend;         //  preference: a restore with no fit recommends (S4.5)
    bool verbose;
} af_node_config_t;

//  Defaults: heartbeat 1000 ms, liveness 3, request timeout 15 s (longer
//  than the broker's own worker timeout, so its answer arrives first).
void af_node_config_defaults (af_node_config_t *config);

typedef struct _af_node_t af_node_t;

//  Create the node: home, keypair, device description, sockets. NULL and
//  a message in err on failure.
af_node_t *af_node_new (const af_node_config_t *config, char *err, size_t errlen);

//  Destroy the node. Sets *self_p to NULL.
void af_node_destroy (af_node_t **self_p);

//  Serve until interrupted or told to stop by the CLI. Returns AF_OK.
int af_node_run (af_node_t *self);

#endif
