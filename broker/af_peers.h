/*  =========================================================================
    af_peers - TCP connections per source address, for one listening socket

    libzmq neither counts connections nor lets a ROUTER close one, but its
    socket monitor reports each accepted connection with its file
    descriptor (ZMQ_EVENT_ACCEPTED) and each closed one (DISCONNECTED),
    in order. The ZAP handler's thread reads those events and keeps this
    table: fd -> source address, and address -> connections. A connection
    beyond security/max_per_source from one address is refused at once:
    the monitor's thread shuts its socket down (shutdown(2); libzmq still
    owns and closes the descriptor), so it holds nothing while it would
    otherwise wait for its handshake.

    Descriptors are unique among open connections, so an ACCEPTED for a
    descriptor still in the table means its DISCONNECTED was lost (the
    monitor queue overflowed): the old entry is closed first, and the
    counts heal themselves.

    Not thread-safe: the ZAP handler's thread is its only user. The two
    socket helpers are plain functions that any thread may call.
    =========================================================================
*/
#ifndef AF_PEERS_H_INCLUDED
#define AF_PEERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AF_PEER_ADDRESS 64              //  bytes of an address as text, with NUL

typedef struct _af_peers_t af_peers_t;

//  A table allowing max_per_source connections per address and max_total
//  in all (0: no limit).
af_peers_t *af_peers_new (size_t max_per_source, size_t max_total);

//  Destroy. Sets *self_p to NULL.
void af_peers_destroy (af_peers_t **self_p);

//  A connection from address was accepted on fd at now (monotonic ms).
//  Returns AF_OK (counted), AF_E_TOO_MANY (the address has its limit
//  already) or AF_E_UNAVAILABLE (the table has max_total): then it is
//  remembered as refused, not counted, and the caller closes it.
int af_peers_accept (af_peers_t *self, int fd, const char *address, int64_t now);

//  The connection on fd closed. Returns its address (valid until the next
//  call) or NULL if the table never knew it; *refused says whether it was
//  refused at accept, *age how long it was open (ms; may be NULL).
const char *af_peers_close (af_peers_t *self, int fd, int64_t now, bool *refused, int64_t *age);

//  Connections counted for address / in all
size_t af_peers_count (af_peers_t *self, const char *address);
size_t af_peers_size (af_peers_t *self);

//  The source of a connected TCP socket: address as libzmq writes it
//  (getnameinfo, numeric: "192.0.2.1", "2001:db8::1") and port. 0, or -1
//  if fd is not a connected socket any more.
int af_peers_address (int fd, char *address, size_t size, int *port);

//  End the TCP connection on fd, which libzmq owns, without closing the
//  descriptor (libzmq sees the end and closes it), but only if fd is still
//  the connection from address:port: a descriptor can be reused as soon as
//  libzmq closes it. 0 if shut down, -1 if fd is another socket now.
int af_peers_shutdown (int fd, const char *address, int port);

void af_peers_test (bool verbose);

#endif
