/*  =========================================================================
    af_zap - the broker's ZAP handler (ZeroMQ RFC 27) for CURVE

    czmq's zauth could authenticate our CURVE clients, but with
    CURVE_ALLOW_ANY it reports no User-Id, and it applies one policy to
    every socket. The broker needs two policies and the client's key:
      domain "nodes":   any CURVE key may connect (nodes prove who they are
                        by password, then by the key their device is bound
                        to); User-Id = the client's public key in Z85.
      domain "workers": only keys whose certificate is in the worker keys
                        directory (re-read on every handshake, so adding a
                        worker needs no restart); User-Id = key in Z85.
    Any other mechanism or domain is refused with 400.

    Run as an actor: zactor_new (af_zap_actor, (void *) worker_keys_dir).
    =========================================================================
*/
#ifndef AF_ZAP_H_INCLUDED
#define AF_ZAP_H_INCLUDED

#include <czmq.h>

#define AF_ZAP_NODES   "nodes"
#define AF_ZAP_WORKERS "workers"

void af_zap_actor (zsock_t *pipe, void *args);

#endif
