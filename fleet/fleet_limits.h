/*  =========================================================================
    fleet_limits.h - the simulated fleet's own tuning constants

    What only appferry-fleet uses: how many requests a device keeps open,
    how many reports it queues, how much one wake-up reads, how often it
    prints. Limits peers must agree on (message sizes, credit, the item
    window) are in protocol/af_limits.h; nothing here is on the wire.
    =========================================================================
*/
#ifndef FLEET_LIMITS_H_INCLUDED
#define FLEET_LIMITS_H_INCLUDED

#include "af_limits.h"

//  Bounds of the command-line options
#define FLEET_MAX_DEVICES       1000000 //  --devices
#define FLEET_MAX_ACCOUNT_SIZE  AF_MAX_DEVICES  //  --account-size MAX
#define FLEET_MAX_BROKERS       16      //  endpoints in --broker
#define FLEET_MAX_PROGRAMS      65535   //  program IDs in --programs and --push
#define FLEET_MAX_RATE          1000000 //  --rate, requests per second
#define FLEET_MAX_DURATION_S    86400   //  --duration, --hold, --drain
#define FLEET_DEFAULT_PROGRAMS  200     //  generated program IDs without --programs

//  Descriptors: every simulated device holds its TCP connection and its
//  ZeroMQ socket's mailbox (an eventfd); the rest of the process needs a
//  few (epoll, signalfd, libzmq's own threads, stdio)
#define FLEET_FDS_PER_DEVICE    2
#define FLEET_FDS_RESERVE       64

//  One device's requests: at most this many open at once (login, a report
//  or list, one action, a fetch, outcomes, the final APPS)
#define FLEET_REQ_SLOTS         8
#define FLEET_MAX_QUEUED        64      //  reports queued per device; beyond,
                                        //  an install or uninstall waits
#define FLEET_MAX_JOBS          AF_ITEM_WINDOW  //  offers held per device
#define FLEET_QUEUE_ROOM        (FLEET_MAX_QUEUED + FLEET_MAX_JOBS)     //  reports
                                        //  queued, with those of installs from offers
#define FLEET_CREDIT            8       //  chunks in flight per download
#define FLEET_STALL_MS          10000   //  no chunk this long: FETCH again

//  Timing (ms)
#define FLEET_CONNECT_PING_MS   100     //  PING while a connection is not up
#define FLEET_CONNECT_GIVE_UP_MS 10000  //  no answer on a new connection, and
                                        //  another broker to try: try it (the
                                        //  wait doubles with each, to 80 s)
#define FLEET_UNREACHABLE_MS    1000    //  ... or, when it was found silent
                                        //  (its connections closed), this
#define FLEET_SILENT_MARK_MS    10000   //  a broker found silent is avoided (a
                                        //  REDIRECT to it waited out) this long
#define FLEET_REDIRECT_WAIT_MS  1000    //  a REDIRECT without an owner (or to a
                                        //  silent one): ask again after this
#define FLEET_MAX_REDIRECTS     8       //  REDIRECTs in a row without LOGIN_OK
                                        //  before that pause (SPEC 5.36)
#define FLEET_TIMEOUT_MS        15000   //  a request with no answer (the
                                        //  reference node's deadline)
#define FLEET_RETRY_MIN_MS      1000    //  a 5xx answer is retried after a
#define FLEET_RETRY_MAX_MS      60000   //  wait doubling between these, drawn
                                        //  from its upper half (SPEC 8.3)
#define FLEET_DEFAULT_HEARTBEAT 1000    //  --heartbeat
#define FLEET_DEFAULT_VANISH_MS 5000    //  --vanish-for
#define FLEET_REPORT_EVERY_MS   5000    //  --report-every

//  The main loop: messages read from one device per turn, epoll events
//  taken per wake-up, APPS in flight while the install lists are checked
#define FLEET_BATCH             32
#define FLEET_EPOLL_EVENTS      1024
#define FLEET_VERIFY_WINDOW     256

#endif
