/*  =========================================================================
    node_limits.h - the node's own tuning constants

    What only the node uses: how often its timer runs, how long a request
    waits for a connection, how many notifications, pushes and offers it
    keeps. Limits that peers must agree on (message sizes, field lengths,
    chunk size, credit the broker allows) are in protocol/af_limits.h,
    shared with the broker and the matcher; nothing here is on the wire.
    =========================================================================
*/
#ifndef NODE_LIMITS_H_INCLUDED
#define NODE_LIMITS_H_INCLUDED

//  The CLI socket: a request is 1..NODE_CTL_MAX_FRAMES frames (verb and
//  arguments) of at most NODE_CTL_MAX_FRAME bytes each
#define NODE_CTL_MAX_FRAMES     8
#define NODE_CTL_MAX_FRAME      4096

#define NODE_TICK_MS            100     //  the timer: deadlines, jobs, retries
#define NODE_UNSENT_WAIT_MS     5000    //  how long a request waits for a
                                        //  connection or a login
#define NODE_MAX_INBOX          100     //  notifications kept for `notifications`
#define NODE_RECORD_KEEP_S      86400   //  a GET's record waits this long for its install (5.47a)
#define NODE_MAX_DATA_ASKS      64      //  GET notices asking for user data queued here (more
                                        //  come again at the next login)
#define NODE_DATA_KEEP          16      //  asks whose user data a program's records file
                                        //  remembers (the oldest go first)
#define NODE_MAX_RECOMMENDATIONS 1000   //  recommendations kept in inbox.json
#define NODE_MAX_PUSHES         50      //  pushes kept in pushes.json
#define NODE_STATUS_PUSHES      10      //  of which `status` shows the last
#define NODE_MAX_JOBS           256     //  offers held at once (more wait in the outbox)
#define NODE_CREDIT             8       //  chunks in flight per transfer (2 MiB)
#define NODE_STALL_MS           10000   //  no chunk this long: ask again
#define NODE_REPORTS_RETRY_MS   1000    //  a report the broker did not take: again
#define NODE_CONFIG_SCAN_MS     1000    //  edits of shared configurations: looked for
#define NODE_SHOW_FILES         32      //  `config show`: files shown
#define NODE_SHOW_FILE_BYTES    4096    //  ... bytes of each

//  An automatic login the broker could not serve (5xx) is tried again
//  after a wait that doubles from the first value to the second, each
//  drawn from the upper half of it (jitter), so a broker that comes back
//  is not met by all its nodes at once
#define NODE_LOGIN_RETRY_MIN_MS 1000
#define NODE_LOGIN_RETRY_MAX_MS 60000

//  A payment request (GET, PAY_CONFIRM) the broker could not serve (5xx)
//  or did not answer is sent again under the same intent after the same
//  kind of wait, from the first value up to the second, until the user's
//  deadline (the CLI's --timeout; at most NODE_PAY_DEADLINE_MAX_S)
#define NODE_PAY_RETRY_MIN_MS   200
#define NODE_PAY_RETRY_MAX_MS   5000
#define NODE_PAY_DEADLINE_MAX_S 3600

//  A lost connection (a broker that restarted, a network that dropped) is
//  made again by libzmq after the heartbeat interval capped at the first
//  value, plus a random part of up to as much again (libzmq's own jitter),
//  doubling on each failure up to 16 times that: so the nodes of a broker
//  that comes back reach it spread over a second or two, not all at once,
//  and one that stays down is tried less and less often
#define NODE_RECONNECT_MAX_IVL_MS   1000
#define NODE_RECONNECT_BACKOFF      16

//  Brokers of a cluster (docs/ARCHITECTURE.md "Cluster"): the endpoints a
//  node may be given (-b A,B,C), the REDIRECTs it follows in a row before
//  it waits a while (a cluster whose shard map is moving), and how long it
//  waits when told the shard has no owner yet
#define NODE_MAX_ENDPOINTS      16
#define NODE_MAX_REDIRECTS      8
#define NODE_REDIRECT_WAIT_MS   1000

//  The operator's install command: an attempt the node's stop interrupted
//  is run again, up to this many attempts in all (node_intent.c); at
//  start, what still runs of an interrupted one is killed and waited for
//  this long at most
#define NODE_INSTALL_ATTEMPTS   2
#define NODE_INSTALL_GONE_MS    5000

//  A device named on the command line by a prefix of its ID needs at
//  least this many hex digits (as git and docker ask)
#define NODE_MIN_ID_PREFIX      4

#endif
