/*  =========================================================================
    af_zap - the broker's ZAP handler (ZeroMQ RFC 27) for CURVE, and the
    watcher of both sockets' connections

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

    The same thread reads both sockets' monitors (zmq_socket_monitor),
    because libzmq calls ZAP only for CURVE handshakes that got as far as
    INITIATE: a NULL or PLAIN client, a wrong broker key, a handshake that
    never finishes are seen only there. For each socket it keeps the
    connections per source address (af_peers), refuses one over
    max_per_source, or over max_nodes in all on the nodes' socket (the
    broker's max_sessions: so descriptors never run out, and libzmq's I/O
    thread never spins on accepts that fail for want of one), by shutting
    its socket down as soon as it is accepted,
    and logs every refused handshake with its address and reason, at most
    AF_LOG_REFUSALS lines a second (af_loglimit), then a count.

    libzmq 4.3's monitor events name the bound endpoint, not the peer, for
    accepted connections; the peer is read with getpeername on the
    descriptor of ZMQ_EVENT_ACCEPTED. A connection refused faster than this
    thread reads that event (on loopback, within tens of microseconds of
    its accept) is logged without its address. A failure event carries no
    descriptor: it is paired with the DISCONNECTED that libzmq's I/O thread
    sends right after it.

    Run as an actor: zactor_new (af_zap_actor, &args), args an
    af_zap_args_t that only needs to live until zactor_new returns.
    =========================================================================
*/
#ifndef AF_ZAP_H_INCLUDED
#define AF_ZAP_H_INCLUDED

#include <czmq.h>

#define AF_ZAP_NODES   "nodes"
#define AF_ZAP_WORKERS "workers"
#define AF_ZAP_PEERS   "peers"     //  the other brokers of a cluster: the cluster's key only

//  What to monitor on the sockets: zmq_socket_monitor (sock, endpoint, AF_ZAP_EVENTS)
#define AF_ZAP_EVENTS  (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED | ZMQ_EVENT_DISCONNECTED \
                        | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)

typedef struct {
    const char *worker_keys;        //  dir of allowed worker certificates
    const char *nodes_monitor;      //  inproc endpoint of the frontend's monitor (NULL: none)
    const char *workers_monitor;    //  ... of the backend's (NULL: none)
    size_t max_per_source;          //  connections per address on each socket (0: any number)
    size_t max_nodes;               //  connections in all on the nodes' socket (0: any number)
    const char *peer_key;           //  a cluster's: the key other brokers hold (NULL: none)
} af_zap_args_t;

void af_zap_actor (zsock_t *pipe, void *args);

#endif
