/*  =========================================================================
    af_peers - TCP connections per source address, for one listening socket

    See af_peers.h. Two hash tables: "fd" -> connection, address -> count.
    =========================================================================
*/
#include "af_peers.h"
#include "af_limits.h"

#include <czmq.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

typedef struct {
    char address [AF_PEER_ADDRESS];
    bool refused;                   //  over the limit at accept: not counted
    int64_t since;
} connection_t;

struct _af_peers_t {
    size_t max_per_source;
    size_t max_total;
    zhashx_t *connections;          //  "fd" -> connection_t
    zhashx_t *counts;               //  address -> size_t
    size_t total;
    char closed [AF_PEER_ADDRESS];  //  the address af_peers_close returns
};

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

af_peers_t *
af_peers_new (size_t max_per_source, size_t max_total)
{
    af_peers_t *self = (af_peers_t *) zmalloc (sizeof (af_peers_t));
    assert (self);
    self->max_per_source = max_per_source;
    self->max_total = max_total;
    self->connections = zhashx_new ();
    zhashx_set_destructor (self->connections, s_free);
    self->counts = zhashx_new ();
    zhashx_set_destructor (self->counts, s_free);
    return self;
}

void
af_peers_destroy (af_peers_t **self_p)
{
    assert (self_p);
    af_peers_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->connections);
        zhashx_destroy (&self->counts);
        free (self);
        *self_p = NULL;
    }
}

size_t
af_peers_count (af_peers_t *self, const char *address)
{
    assert (self);
    size_t *count = (size_t *) zhashx_lookup (self->counts, address);
    return count? *count: 0;
}

size_t
af_peers_size (af_peers_t *self)
{
    assert (self);
    return self->total;
}

const char *
af_peers_close (af_peers_t *self, int fd, int64_t now, bool *refused, int64_t *age)
{
    assert (self);
    char key [16];
    snprintf (key, sizeof key, "%d", fd);
    connection_t *connection = (connection_t *) zhashx_lookup (self->connections, key);
    *refused = false;
    if (age)
        *age = 0;
    if (!connection)
        return NULL;
    *refused = connection->refused;
    if (age)
        *age = now - connection->since;
    if (!connection->refused) {
        size_t *count = (size_t *) zhashx_lookup (self->counts, connection->address);
        if (count && --*count == 0)
            zhashx_delete (self->counts, connection->address);
        self->total--;
    }
    memcpy (self->closed, connection->address, sizeof self->closed);
    zhashx_delete (self->connections, key);
    return self->closed;
}

int
af_peers_accept (af_peers_t *self, int fd, const char *address, int64_t now)
{
    assert (self);
    char key [16];
    snprintf (key, sizeof key, "%d", fd);
    if (zhashx_lookup (self->connections, key)) {
        bool refused;
        af_peers_close (self, fd, now, &refused, NULL);     //  its end was not reported
    }
    connection_t *connection = (connection_t *) zmalloc (sizeof (connection_t));
    assert (connection);
    snprintf (connection->address, sizeof connection->address, "%s", address);
    connection->since = now;
    size_t *count = (size_t *) zhashx_lookup (self->counts, connection->address);
    bool full = self->max_total && self->total >= self->max_total;
    connection->refused = full || (self->max_per_source && count && *count >= self->max_per_source);
    if (!connection->refused) {
        if (!count) {
            count = (size_t *) zmalloc (sizeof (size_t));
            assert (count);
            zhashx_insert (self->counts, connection->address, count);
        }
        (*count)++;
        self->total++;
    }
    zhashx_insert (self->connections, key, connection);
    return full? AF_E_UNAVAILABLE: connection->refused? AF_E_TOO_MANY: AF_OK;
}

int
af_peers_address (int fd, char *address, size_t size, int *port)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (getpeername (fd, (struct sockaddr *) &peer, &len))
        return -1;
    if (peer.ss_family == AF_INET)
        *port = ntohs (((struct sockaddr_in *) &peer)->sin_port);
    else
    if (peer.ss_family == AF_INET6)
        *port = ntohs (((struct sockaddr_in6 *) &peer)->sin6_port);
    else
        return -1;
    return getnameinfo ((struct sockaddr *) &peer, len, address, (socklen_t) size, NULL, 0, NI_NUMERICHOST)? -1: 0;
}

int
af_peers_shutdown (int fd, const char *address, int port)
{
    char now [AF_PEER_ADDRESS];
    int now_port;
    if (fd < 0 || af_peers_address (fd, now, sizeof now, &now_port) || now_port != port || !streq (now, address))
        return -1;
    return shutdown (fd, SHUT_RDWR)? -1: 0;
}

void
af_peers_test (bool verbose)
{
    (void) verbose;
    printf (" * af_peers: ");
    af_peers_t *peers = af_peers_new (2, 0);
    bool refused;
    int64_t age;
    //  Two connections from one address are counted, the third refused
    assert (af_peers_accept (peers, 10, "192.0.2.1", 1000) == AF_OK);
    assert (af_peers_accept (peers, 11, "192.0.2.1", 1000) == AF_OK);
    assert (af_peers_accept (peers, 12, "192.0.2.1", 1000) == AF_E_TOO_MANY);
    assert (af_peers_accept (peers, 13, "2001:db8::1", 1000) == AF_OK);
    assert (af_peers_count (peers, "192.0.2.1") == 2);
    assert (af_peers_size (peers) == 3);
    //  The refused one's end changes no count
    const char *address = af_peers_close (peers, 12, 1005, &refused, &age);
    assert (address && streq (address, "192.0.2.1") && refused && age == 5);
    assert (af_peers_count (peers, "192.0.2.1") == 2);
    //  One closes: the address may connect again
    address = af_peers_close (peers, 10, 3000, &refused, &age);
    assert (address && streq (address, "192.0.2.1") && !refused && age == 2000);
    assert (af_peers_count (peers, "192.0.2.1") == 1);
    assert (af_peers_accept (peers, 14, "192.0.2.1", 3000) == AF_OK);
    //  An unknown descriptor closes without effect
    assert (af_peers_close (peers, 99, 3000, &refused, NULL) == NULL && !refused);
    //  A descriptor accepted again (its end was lost) heals the counts
    assert (af_peers_accept (peers, 11, "198.51.100.7", 4000) == AF_OK);
    assert (af_peers_count (peers, "192.0.2.1") == 1);
    assert (af_peers_count (peers, "198.51.100.7") == 1);
    assert (af_peers_size (peers) == 3);
    for (int fd = 11; fd <= 14; fd++)
        af_peers_close (peers, fd, 5000, &refused, NULL);
    assert (af_peers_size (peers) == 0 && af_peers_count (peers, "192.0.2.1") == 0);
    af_peers_destroy (&peers);
    assert (!peers);

    //  No limit
    peers = af_peers_new (0, 0);
    for (int fd = 0; fd < 100; fd++)
        assert (af_peers_accept (peers, fd, "192.0.2.1", 0) == AF_OK);
    assert (af_peers_count (peers, "192.0.2.1") == 100);
    af_peers_destroy (&peers);

    //  A limit in all: past it everyone is refused, whatever the address,
    //  until one closes
    peers = af_peers_new (2, 3);
    assert (af_peers_accept (peers, 10, "192.0.2.1", 0) == AF_OK);
    assert (af_peers_accept (peers, 11, "192.0.2.2", 0) == AF_OK);
    assert (af_peers_accept (peers, 12, "192.0.2.3", 0) == AF_OK);
    assert (af_peers_accept (peers, 13, "192.0.2.4", 0) == AF_E_UNAVAILABLE);
    assert (af_peers_size (peers) == 3 && af_peers_count (peers, "192.0.2.4") == 0);
    af_peers_close (peers, 13, 1, &refused, NULL);
    assert (refused);
    af_peers_close (peers, 10, 1, &refused, NULL);
    assert (!refused);
    assert (af_peers_accept (peers, 13, "192.0.2.4", 2) == AF_OK);
    af_peers_destroy (&peers);

    //  The socket helpers, on a real TCP connection over loopback
    int listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in bound = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof bound;
    assert (listener >= 0 && bind (listener, (struct sockaddr *) &bound, sizeof bound) == 0);
    assert (listen (listener, 4) == 0 && getsockname (listener, (struct sockaddr *) &bound, &len) == 0);
    int client = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert (client >= 0 && connect (client, (struct sockaddr *) &bound, sizeof bound) == 0);
    int accepted = accept (listener, NULL, NULL);
    assert (accepted >= 0);
    char text [AF_PEER_ADDRESS];
    int port;
    assert (af_peers_address (accepted, text, sizeof text, &port) == 0 && streq (text, "127.0.0.1"));
    struct sockaddr_in mine;
    len = sizeof mine;
    assert (getsockname (client, (struct sockaddr *) &mine, &len) == 0 && port == ntohs (mine.sin_port));
    //  Not that connection: left alone
    assert (af_peers_shutdown (accepted, "127.0.0.1", port + 1) == -1);
    assert (af_peers_shutdown (accepted, "127.0.0.2", port) == -1);
    assert (af_peers_address (listener, text, sizeof text, &port) == -1);
    //  That connection: the client sees its end, the descriptor stays open
    assert (af_peers_shutdown (accepted, "127.0.0.1", port) == 0);
    char byte;
    assert (recv (client, &byte, 1, 0) == 0);
    assert (fcntl (accepted, F_GETFD) != -1);
    close (accepted);
    close (client);
    close (listener);
    assert (af_peers_shutdown (-1, "127.0.0.1", port) == -1);
    printf ("OK\n");
}
