/*  =========================================================================
    af_linkwatch - watch a socket's connections through libzmq's monitor,
    and stop watching without stopping libzmq

    libzmq sends each monitor event from its I/O thread, with a blocking
    send, on a PAIR of its own that our PAIR reads. If our PAIR closes
    while the monitor still runs, the next event (a DISCONNECTED when the
    other end goes away) waits for a reader that never comes, and with it
    the I/O thread: every connection of the process stops for good, while
    its own threads keep running. So a watch is always stopped at libzmq
    first, then our end is closed: af_linkwatch_stop, the only way here.
    =========================================================================
*/
#ifndef AF_LINKWATCH_H_INCLUDED
#define AF_LINKWATCH_H_INCLUDED

#include <czmq.h>

//  Watch sock's events (a ZMQ_EVENT_* mask) on a new PAIR, returned, which
//  the caller reads (zloop_reader, zpoller). name names the endpoint (a
//  random suffix is added: a watch made again never meets an old one).
//  No receive limit on our PAIR: a full pipe would stop libzmq's I/O
//  thread until we read, so watch only events that are few. NULL if
//  libzmq refused (nothing is left running)
zsock_t *af_linkwatch_start (zsock_t *sock, int events, const char *name);

//  Stop watching sock: libzmq's monitor first, then our PAIR, *reader_p
//  (set to NULL). Either may be NULL. Before sock itself is destroyed,
//  for its teardown sends events too
void af_linkwatch_stop (zsock_t *sock, zsock_t **reader_p);

void af_linkwatch_test (bool verbose);

#endif
