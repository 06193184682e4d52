/*  =========================================================================
    fleet_net - each device's socket, and the brokers it may use

    One ZeroMQ DEALER per device, a CURVE client with the device's own
    keypair, as SPEC 2.2 and 2.3 ask of a node: ZMQ_IMMEDIATE (a send
    while the broker is unreachable fails at once), linger 0, the 4 MiB
    message limit. Its ZMQ_FD (the socket's mailbox) is registered with
    the fleet's epoll; epoll only says "look at this socket", the socket
    is then read until it is empty (or FLEET_BATCH at a time, so one busy
    device does not starve the rest). libzmq may consume that signal
    inside a send, so a device that sent is looked at again on the next
    turn (fleet_ready): no message is left waiting for a signal that will
    not come.

    libzmq reconnects a DEALER by itself when its TCP connection drops
    (a broker restart); each device's reconnect interval is drawn from
    --jitter, so a restarted broker is not met by every device in the
    same 100 ms. A device whose broker stays silent closes its socket and
    opens a new one on the next endpoint of --broker (fleet_net_next_broker);
    a cluster's REDIRECT moves it the same way ("Moving between brokers").
    A TCP connection the broker's full listen backlog did not take waits
    for the kernel's SYN retries (1, 3, 7, 15 s...), as a node's does;
    --connect-timeout makes libzmq give up on the attempt sooner and try
    again (a client-side remedy the reference node does not use).
    =========================================================================
*/
#include "fleet_int.h"

#include <sys/epoll.h>

int
fleet_net_endpoint (fleet_t *self, const char *endpoint)
{
    for (uint32_t i = 0; i < self->endpoint_count; i++)
        if (streq (self->endpoints [i], endpoint))
            return (int) i;
    if (self->endpoint_count == FLEET_MAX_BROKERS)
        return -1;
    self->endpoints [self->endpoint_count] = strdup (endpoint);
    assert (self->endpoints [self->endpoint_count]);
    return (int) self->endpoint_count++;
}

//  ---- Moving between brokers -----------------------------------------------
//  A device moves to another broker in one place: here. It moves when its
//  broker is silent for heartbeat x liveness, when a send on a connection
//  that was up fails (ZMQ_IMMEDIATE: libzmq has lost the connection; with
//  one broker the device waits for libzmq's reconnect instead), when a
//  new connection gets no answer, and when a broker of a cluster answers
//  REDIRECT (SPEC 5.36). Only the failed send marks the broker silent for
//  the whole fleet: its connections closed, a sure sign it is gone (killed,
//  or its host). Silence and slow handshakes do not: a broker busy with a
//  storm of logins is slow to answer too, and marking it would send every
//  device away from it, and round the others, for good. While marked, the
//  next broker chosen skips it, a new connection to it is given up after
//  a second, and a REDIRECT naming it (a shard's owner that died: etcd
//  keeps its ownership until its lease ends, and the others keep sending
//  there) is waited out as "no owner yet" rather than followed into a
//  dead endpoint. The mark goes when anything is heard from that broker,
//  after FLEET_SILENT_MARK_MS, or at a REDIRECT to it of an epoch above
//  every epoch the fleet had seen when it marked it: epochs are etcd
//  revisions, which only grow, so that ownership was taken after the
//  broker went silent: it is back.

bool
fleet_net_is_silent (fleet_t *self, uint32_t endpoint, int64_t now)
{
    return endpoint < self->endpoint_count && self->silent_until [endpoint] > now;
}

void
fleet_net_next_broker (fleet_t *self, fleet_device_t *device)
{
    if (self->endpoint_count <= 1)
        return;
    int64_t now = fleet_now ();
    uint32_t next = device->broker;
    //  The broker its last LOGIN_OK named as the one that takes over: its
    //  LOGIN waits there for the claim, with no REDIRECT and no second
    //  handshake after it. Once: if it fails too, round the list
    uint32_t standby = device->standby;
    device->standby = 0;
    if (standby && standby - 1 != device->broker && !fleet_net_is_silent (self, standby - 1, now)) {
        self->stats.moves_standby++;
        device->broker = (uint8_t) (standby - 1);
        return;
    }
    for (uint32_t tries = 0; tries < self->endpoint_count; tries++) {
        next = (next + 1) % self->endpoint_count;
        if (next != device->broker && !fleet_net_is_silent (self, next, now))
            break;
    }
    if (next == device->broker)
        next = (next + 1) % self->endpoint_count;   //  all silent: the next anyway
    device->broker = (uint8_t) next;
}

void
fleet_net_silent (fleet_t *self, fleet_device_t *device)
{
    if (self->endpoint_count <= 1)
        return;
    int64_t now = fleet_now ();
    if (!fleet_net_is_silent (self, device->broker, now)) {
        self->silent_epoch [device->broker] = self->max_epoch;
        if (self->config.verbose)
            zsys_info ("fleet: broker %s is silent", self->endpoints [device->broker]);
    }
    self->silent_until [device->broker] = now + FLEET_SILENT_MARK_MS;
    fleet_net_next_broker (self, device);
}

void
fleet_net_heard (fleet_t *self, fleet_device_t *device)
{
    self->silent_until [device->broker] = 0;
}

int
fleet_net_redirect (fleet_t *self, fleet_device_t *device, const af_msg_t *redirect)
{
    self->stats.redirects++;
    if (redirect->epoch > self->max_epoch)
        self->max_epoch = redirect->epoch;
    if (++device->redirects > FLEET_MAX_REDIRECTS) {
        //  Sent round in circles (a shard map on the move): a pause
        device->redirects = 0;
        self->stats.redirect_pauses++;
        return -1;
    }
    if (!*redirect->endpoint) {
        self->stats.redirects_no_owner++;
        return -1;
    }
    int target = strncmp (redirect->endpoint, "tcp://", 6)? -2: fleet_net_endpoint (self, redirect->endpoint);
    if (target == -2) {
        fleet_unexpected (self, device, "REDIRECT to '%s', not a tcp:// endpoint", redirect->endpoint);
        return -1;
    }
    if (target < 0) {
        fleet_unexpected (self, device, "REDIRECT to %s: more than %d brokers", redirect->endpoint,
                          FLEET_MAX_BROKERS);
        return -1;
    }
    if (fleet_net_is_silent (self, (uint32_t) target, fleet_now ())) {
        if (redirect->epoch <= self->silent_epoch [target]) {
            self->stats.redirects_to_silent++;
            return -1;
        }
        self->silent_until [target] = 0;            //  it took a shard since: it is back
    }
    if ((uint32_t) target == device->broker) {
        fleet_unexpected (self, device, "REDIRECT of shard %u to %s, the broker that sent it", redirect->shard,
                          redirect->endpoint);
        return -1;
    }
    self->stats.redirects_followed++;
    return target;
}

static int
s_set (void *sock, int option, const void *value, size_t size)
{
    return zmq_setsockopt (sock, option, value, size);
}

int
fleet_net_open (fleet_t *self, fleet_device_t *device)
{
    assert (!device->sock);
    void *sock = zmq_socket (self->ctx, ZMQ_DEALER);
    if (!sock)
        return -1;
    int zero = 0, one = 1;
    //  libzmq waits between reconnects [ivl, 2 ivl): half the jitter, so
    //  the whole spread is [jitter / 2, jitter)
    int reconnect = (int) (self->config.jitter_ms / 2 > 100? self->config.jitter_ms / 2: 100);
    int64_t maxmsg = AF_MAX_ZMQ_MSG;
    int connect_timeout = (int) self->config.connect_timeout_ms;
    int fd = -1;
    size_t fd_size = sizeof fd;
    if (s_set (sock, ZMQ_CURVE_SERVERKEY, self->broker_key, 32)
    ||  s_set (sock, ZMQ_CURVE_PUBLICKEY, device->public_key, 32)
    ||  s_set (sock, ZMQ_CURVE_SECRETKEY, device->secret_key, 32)
    ||  s_set (sock, ZMQ_LINGER, &zero, sizeof zero)
    ||  s_set (sock, ZMQ_IMMEDIATE, &one, sizeof one)
    ||  s_set (sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg)
    ||  s_set (sock, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect)
    ||  s_set (sock, ZMQ_CONNECT_TIMEOUT, &connect_timeout, sizeof connect_timeout)
    ||  zmq_connect (sock, self->endpoints [device->broker])
    ||  zmq_getsockopt (sock, ZMQ_FD, &fd, &fd_size)) {
        int saved = errno;
        zmq_close (sock);
        errno = saved;
        return -1;
    }
    struct epoll_event event = { .events = EPOLLIN, .data.u32 = device->index };
    if (epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event)) {
        int saved = errno;
        zmq_close (sock);
        errno = saved;
        return -1;
    }
    device->sock = sock;
    device->fd = fd;
    return 0;
}

void
fleet_net_close (fleet_t *self, fleet_device_t *device)
{
    if (!device->sock)
        return;
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, device->fd, NULL);
    zmq_close (device->sock);
    device->sock = NULL;
    device->fd = -1;
}

int
fleet_net_send (fleet_t *self, fleet_device_t *device, af_msg_t *msg)
{
    if (!device->sock)
        return -1;
    zframe_t *frame = af_msg_encode (msg);
    if (!frame) {
        fleet_unexpected (self, device, "could not encode a %s", af_msg_command_name (msg->id));
        return -1;
    }
    int rc = zmq_send (device->sock, zframe_data (frame), zframe_size (frame), ZMQ_DONTWAIT);
    zframe_destroy (&frame);
    //  The send may have taken the socket's read signal: look at it again
    fleet_ready (self, device);
    if (rc < 0)
        return -1;
    device->last_send = fleet_now ();
    return 0;
}

int
fleet_net_send_raw (fleet_t *self, fleet_device_t *device, const void *data, size_t size)
{
    if (!device->sock)
        return -1;
    int rc = zmq_send (device->sock, data, size, ZMQ_DONTWAIT);
    fleet_ready (self, device);
    if (rc < 0)
        return -1;
    device->last_send = fleet_now ();
    return 0;
}

bool
fleet_net_drain (fleet_t *self, fleet_device_t *device)
{
    void *sock = device->sock;
    for (int count = 0; count < FLEET_BATCH; count++) {
        //  A message handled may have closed the socket (or opened a new one)
        if (!device->sock || device->sock != sock)
            return false;
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            return false;
        }
        device->last_recv = fleet_now ();
        if (self->silent_until [device->broker])
            fleet_net_heard (self, device);
        if (zmq_msg_more (&part)) {
            //  A broker sends one frame per message (SPEC 3.1)
            size_t extra = 0;
            do {
                zmq_msg_close (&part);
                zmq_msg_init (&part);
                extra++;
            } while (zmq_msg_recv (&part, sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&part));
            zmq_msg_close (&part);
            fleet_unexpected (self, device, "the broker sent a message of %zu frames", extra + 1);
            continue;
        }
        af_msg_t *msg = NULL;
        char err [256];
        int code = af_msg_decode ((const uint8_t *) zmq_msg_data (&part), zmq_msg_size (&part), &msg,
                                  err, sizeof err, NULL, NULL);
        zmq_msg_close (&part);
        if (code != AF_OK) {
            fleet_unexpected (self, device, "the broker sent a message that does not decode: %s", err);
            continue;
        }
        fleet_device_message (self, device, msg);
        af_msg_destroy (&msg);
    }
    return device->sock == sock;
}
