/*  =========================================================================
    fleet_int.h - what the files of appferry-fleet share

    appferry-fleet is one process simulating many devices, each a spec-only
    client of the broker (protocol/SPEC.md, through the reference codec
    af_msg): its own CURVE keypair and ZeroMQ DEALER, its own device
    description, its own report counter and install list. The files split
    it by concern, as the broker's handle_*.c do:

    | file             | what it holds                                           |
    |------------------|---------------------------------------------------------|
    | fleet_main.c     | options, limits, set-up, the exit status                |
    | fleet_run.c      | the main loop: epoll, the ready ring, the timer heap,   |
    |                  | the phases, the rate of actions                         |
    | fleet_net.c      | sockets: open, close, send, receive; broker endpoints   |
    |                  | and the move between them (where REDIRECT goes)         |
    | fleet_device.c   | one device's dialog: connect, register, login, heart-   |
    |                  | beats, deadlines, the dispatch table of answers          |
    | fleet_reports.c  | REPORT and LIST (SPEC 5.28, 5.29): the seq, the queue,  |
    |                  | the device's own install list                           |
    | fleet_actions.c  | the mix: SYNC, NOTIFY, PUSH, and their answers           |
    | fleet_pushes.c   | the push registry; ITEM, OFFER, FETCH/CHUNK, DONE,      |
    |                  | RESULT/ACK                                              |
    | fleet_verify.c   | the end: APPS of every device against its own list,     |
    |                  | acked / delivered / lost / duplicated                   |
    | fleet_stats.c    | counters, latencies, errors by code; what is printed    |

    Cost: nothing here is O(devices) per message. A message arrives on a
    device's own socket (epoll hands the device), a reply finds its request
    slot from its rid (device index and slot are in it), a push or device
    ID is found by hash, and a device's next deadline lives in a min-heap.
    =========================================================================
*/
#ifndef FLEET_INT_H_INCLUDED
#define FLEET_INT_H_INCLUDED

#include <czmq.h>
#include <sodium.h>
#include "af_msg.h"
#include "fleet_limits.h"
#include "fleet_models.h"
#include "fleet_heap.h"
#include "fleet_hist.h"

//  --------------------------------------------------------------------------
//  What the fleet asks, for its statistics: a row per kind of request

typedef enum {
    FC_PING,
    FC_REGISTER,
    FC_LOGIN_PW,            //  a first login, with the password
    FC_LOGIN_KEY,           //  a login by key
    FC_LIST,
    FC_REPORT,
    FC_SYNC,
    FC_NOTIFY,
    FC_PUSH,
    FC_FETCH,               //  from FETCH to the package's last chunk
    FC_DONE,
    FC_APPS,
    FC_COUNT
} fleet_cmd_t;

//  The mix of actions
typedef enum { ACT_REPORT, ACT_SYNC, ACT_NOTIFY, ACT_PUSH, ACT_COUNT } fleet_act_t;

//  --------------------------------------------------------------------------
//  Options (fleet_main.c parses and checks them)

typedef struct {
    char *brokers [FLEET_MAX_BROKERS];      //  --broker, owned strings
    uint32_t broker_count;
    char broker_key_file [PATH_MAX];
    uint32_t devices;
    uint32_t account_min, account_max;
    char prefix [AF_MAX_ACCOUNT + 1];
    char password [AF_MAX_PASSWORD + 1];
    double rate;                            //  actions per second in all; 0: per device
    uint32_t every_ms;                      //  per device: mean wait between actions
    double duration_s, hold_s, drain_s;
    uint32_t mix [ACT_COUNT];
    uint32_t apps;
    uint32_t heartbeat_ms, jitter_ms, timeout_ms, report_every_ms;
    uint32_t connect_timeout_ms;            //  ZMQ_CONNECT_TIMEOUT; 0: the OS's
    bool auto_sync;
    double vanish_percent;
    uint32_t vanish_ms;
    double login_rate;                      //  devices started per second; 0: all at once
    double setup_s;                         //  at most this long to log every device in
    uint32_t io_threads;
    uint64_t seed;
    bool verbose;
    char (*program_ids) [AF_MAX_PROGRAM + 1];   //  --programs (owned)
    uint32_t program_id_count;
    char (*push_ids) [AF_MAX_PROGRAM + 1];      //  --push (owned)
    uint32_t push_id_count;
} fleet_config_t;

//  --------------------------------------------------------------------------
//  A device

typedef enum {
    DEV_OFF,                //  no socket; reconnects at reconnect_at
    DEV_CONNECTING,         //  socket open, PING every 100 ms until a first answer
    DEV_WAIT_ACCOUNT,       //  up; another device of its account is registering it
    DEV_REGISTERING,        //  REGISTER sent
    DEV_LOGGING_IN,         //  LOGIN sent
    DEV_BACKOFF,            //  up, not logged in; retries at retry_at after a 5xx
    DEV_ONLINE,             //  LOGIN_OK
    DEV_AWAY,               //  vanished without LOGOUT; comes back at reconnect_at
    DEV_FAILED,             //  gave up (a 4xx at login, a DISCONNECT): SPEC 8.3
    DEV_STATES
} fleet_state_t;

//  One open request; the rid names the device and the slot
typedef struct {
    bool used;
    uint8_t cmd;                    //  fleet_cmd_t
    uint8_t rid [AF_ID_SIZE];
    int64_t sent_us;                //  monotonic microseconds
    int64_t deadline;               //  ms, 0: none
    int64_t last_recv_at_send;      //  ms: a timeout with nothing received since is the broker's silence
    uint32_t arg;                   //  per command: report log index, program, target device
    uint64_t change;                //  SYNC: the install list's change count at send
    bool exact;                     //  SYNC: no report was pending at send
    void *ptr;                      //  DONE: the job's push
} fleet_req_t;

//  An app installed on a device, as the device knows it. marker is the
//  seq of the REPORT or LIST that told the broker, sent as versionCode,
//  so the broker's list shows which report each entry came from.
typedef struct {
    uint32_t program;
    uint32_t marker;
} fleet_app_t;

typedef enum { JOB_QUEUED, JOB_FETCHING, JOB_DONE_SENT } fleet_job_stage_t;

typedef struct _fleet_push_t fleet_push_t;

//  An offer this device received and works on
typedef struct {
    fleet_push_t *push;
    uint8_t stage;                  //  fleet_job_stage_t
    uint8_t fit;
    char hash [AF_HASH_HEX + 1];
    uint64_t size;
    char version_name [AF_MAX_VERSION_NAME + 1];
    char state [AF_MAX_STATE + 1];  //  the DONE sent
    int64_t retry_at;               //  a DONE answered 5xx goes again then
} fleet_job_t;

//  The download in progress (one per device at a time)
typedef struct {
    crypto_generichash_state hash_state;
    char hash [AF_HASH_HEX + 1];
    uint64_t total, received;
    int64_t last_chunk;             //  ms
    int64_t started_us;
    bool refetched;
} fleet_download_t;

typedef struct {
    uint32_t index;
    uint32_t account;
    uint16_t model;
    uint8_t state;                  //  fleet_state_t
    uint8_t broker;                 //  endpoint in use
    uint8_t standby;                //  endpoint + 1 that would take its shard over (LOGIN_OK), 0: none
    bool registrar;                 //  the account's first device: it registers it
    bool has_id;
    bool listed;                    //  its first LIST went: it may act
    bool caught_up;                 //  after LOGIN_OK its queued reports went
    bool in_ready;                  //  in the ready ring
    bool acting;                    //  an action (SYNC, NOTIFY, PUSH) is open
    bool listing;                   //  a LIST is open
    bool report_open;               //  a REPORT is open
    bool vanished;                  //  it vanished once already
    bool verified;
    bool synced;                    //  its first SYNC was answered
    bool displaced;                 //  lost its session since the move mark (SIGUSR2)
    uint8_t redirects;              //  REDIRECTs since its last LOGIN_OK
    uint8_t give_ups;               //  new connections given up since one was answered
    void *sock;
    int fd;
    uint32_t epoch;                 //  +1 per connection and per login
    uint8_t public_key [32];
    uint8_t secret_key [32];
    char id [AF_ID_HEX + 1];
    int64_t last_send, last_recv;   //  ms
    int64_t next_ping, ping_sent_us;
    int64_t connected_at;           //  socket opened
    int64_t reconnect_at;           //  OFF, AWAY: when to connect
    int64_t retry_at;               //  BACKOFF: when to log in again
    int64_t next_action;            //  --every: the next action
    int64_t vanish_at;              //  --vanish: when it goes (0: never)
    int64_t report_retry_at;        //  a report answered 5xx: again then
    int64_t logged_out_at;          //  ms: when its session was last lost
    int64_t login_at;               //  ms: its last LOGIN_OK
    uint32_t beat, liveness;        //  ms; from LOGIN_OK
    uint32_t backoff;               //  ms; the current 5xx wait
    //  Reports (SPEC 5.28): the next seq to give, the last the broker confirmed
    uint64_t next_seq, acked_seq;
    uint32_t queue [FLEET_QUEUE_ROOM];      //  report log indexes, oldest first
    uint32_t queue_head, queue_count;
    uint64_t list_seq;              //  the LIST to send (list_wanted) or open (listing)
    bool list_wanted;
    uint64_t change;                //  +1 at each change of the install list
    fleet_app_t *apps;
    uint32_t app_count, app_room;
    uint32_t *bad;                  //  programs the final check found wrong
    uint32_t bad_count;
    fleet_job_t *jobs;              //  FLEET_MAX_JOBS, allocated on the first offer
    uint32_t job_count;
    fleet_download_t *download;
    uint32_t notify_counter;
    fleet_req_t req [FLEET_REQ_SLOTS];
} fleet_device_t;

typedef struct {
    char name [AF_MAX_ACCOUNT + 1];
    uint32_t first, count;          //  devices first .. first + count - 1
    bool registered, registering;
} fleet_account_t;

//  A REPORT, from the moment the device makes it
typedef enum { REP_QUEUED, REP_SENT, REP_ACKED, REP_APPLIED, REP_DROPPED, REP_LOST } fleet_rep_status_t;
typedef struct {
    uint32_t device;
    uint32_t program;
    uint32_t seq;
    uint8_t op;                     //  1 install, 0 uninstall
    uint8_t status;                 //  fleet_rep_status_t
    char hash [AF_HASH_HEX + 1];    //  install of a pushed package: its hash
    char version_name [AF_MAX_VERSION_NAME + 1];
} fleet_report_t;

//  A push one of our devices made (or, when its answer was lost, whose
//  offer reached one of ours)
struct _fleet_push_t {
    char id [AF_ID_HEX + 1];
    uint32_t initiator, target;
    uint32_t program;
    bool accepted;                  //  PUSH_ACCEPTED: offered or queued (acked)
    bool done_ok;                   //  the target's DONE was answered OK
    bool result;                    //  the initiator has its RESULT
    char done_state [AF_MAX_STATE + 1];
    char result_state [AF_MAX_STATE + 1];
};

//  --------------------------------------------------------------------------
//  Statistics (fleet_stats.c)

#define FLEET_CODE_MIN  100
#define FLEET_CODES     900         //  codes 100..999

typedef struct {
    fleet_hist_t latency [FC_COUNT];
    uint64_t sent [FC_COUNT];
    uint64_t answered [FC_COUNT];
    uint64_t timeouts [FC_COUNT];   //  no answer while the broker answered other things
    uint64_t abandoned [FC_COUNT];  //  open when the connection or session went
    uint64_t late [FC_COUNT];       //  answers to requests abandoned or timed out
    uint32_t codes [FC_COUNT][FLEET_CODES];
    uint64_t expected_errors, unexpected;
    //  Logins and connections
    uint64_t logins_pw, logins_key, sessions_lost, broker_gone, links_lost, connects, connect_failures, vanished;
    uint64_t not_sent;              //  a send refused: no completed connection
    //  A cluster (fleet_net.c): REDIRECTs followed, waited out (no owner,
    //  an owner found silent, too many in a row), moves off a broker
    uint64_t redirects, redirects_followed, redirects_no_owner, redirects_to_silent, redirect_pauses;
    uint64_t moves_closed, moves_unreachable, moves_standby;
    int64_t moved_back_ms;          //  from the move mark to the last displaced device back
    uint32_t moved_devices;         //  devices that lost their session after the move mark
    fleet_hist_t moved_hist;        //  ... each one's time back (from the mark to its LOGIN_OK)
    int64_t back_online_ms;         //  from the restart mark to every device back
    uint32_t back_online_devices;
    //  Reports and lists
    uint64_t reports_acked, reports_applied_unanswered, reports_lost_at_login, lists_acked, lists_mended;
    uint64_t reports_skipped;       //  the device's queue was full
    //  Actions
    uint64_t actions, actions_skipped, syncs, sync_programs, sync_checked;
    uint64_t notify_ok, notify_offline, notify_received, installed_notices, other_notices;
    uint64_t push_states [5];       //  offered, queued, no-fit, refused, failed
    uint64_t offers_acked, offers_unannounced, offer_repeats, offers_after_done, store_links, installs;
    uint64_t results, results_unknown, results_repeated, chunks, chunk_bytes, refetches, progress;
    uint64_t hash_mismatches;
    //  Verification
    uint64_t verified, verify_agree, verify_lost, verify_dup, verify_unverified;
    uint64_t delivered_reports, delivered_offers, lost_offers;
    //  The last periodic line's totals, for rates
    uint64_t last_logins, last_answered;
    int64_t last_print;
} fleet_stats_t;

//  --------------------------------------------------------------------------
//  The fleet

typedef enum { PHASE_SETUP, PHASE_HOLD, PHASE_RUN, PHASE_DRAIN, PHASE_VERIFY, PHASE_DONE } fleet_phase_t;

typedef struct {
    fleet_config_t config;
    void *ctx;                      //  libzmq context
    int epoll_fd;
    int signal_fd;
    uint8_t broker_key [32];
    char *endpoints [FLEET_MAX_BROKERS];    //  the brokers known (--broker, then REDIRECTs)
    uint32_t endpoint_count;
    //  A broker found silent or unreachable: until silent_until, or a
    //  REDIRECT to it of an epoch above silent_epoch (a shard it took
    //  since), a REDIRECT to it is waited out, not followed (fleet_net.c)
    int64_t silent_until [FLEET_MAX_BROKERS];
    uint64_t silent_epoch [FLEET_MAX_BROKERS];
    uint64_t max_epoch;             //  the highest epoch any REDIRECT named
    fleet_device_t *devices;
    uint32_t device_count;
    fleet_account_t *accounts;
    uint32_t account_count;
    char (*programs) [AF_MAX_PROGRAM + 1];  //  --programs, then --push
    uint32_t program_count, list_programs;  //  the first list_programs are --programs
    uint32_t *push_programs;
    uint32_t push_count;
    zhashx_t *program_index;        //  program ID -> index + 1
    zhashx_t *device_ids;           //  device ID -> device index + 1
    zhashx_t *pushes;               //  push ID -> fleet_push_t
    fleet_report_t *log;            //  every report made
    size_t log_count, log_room;
    fleet_heap_t *heap;             //  each device's next deadline
    uint32_t *ready;                //  ring of devices with messages to read
    uint32_t ready_head, ready_count;
    uint32_t *scratch_marks;        //  verify: per program, the broker's marker + 1
    uint8_t *chunk_buffer;          //  AF_MAX_CHUNK bytes: a decompressed chunk
    uint8_t ping [32];              //  an encoded PING
    size_t ping_size;
    uint64_t rng;
    fleet_phase_t phase;
    int64_t start, phase_start, setup_done_at, diffs_done_at, restart_mark, last_quiet_check;
    uint32_t back_count;            //  devices logged in again since restart_mark
    int64_t move_mark;              //  SIGUSR2: a broker of the cluster was killed
    uint32_t displaced, displaced_back; //  since move_mark: sessions lost, logged in again
    int64_t displaced_last;         //  the last displaced device's LOGIN_OK
    double tokens;                  //  --rate: actions owed
    int64_t last_tokens;
    uint32_t started;               //  devices that connected once (--login-rate)
    uint32_t online, away, failed, first_logins, first_syncs;
    uint32_t pending_reports;       //  queued or open, all devices
    uint32_t open_jobs;             //  offers held by targets
    uint32_t open_offers;           //  accepted offers whose RESULT has not come
    uint32_t verify_next, verify_open, verify_done;
    uint32_t signals;               //  SIGINT/SIGTERM received
    uint32_t unexpected_printed;
    fleet_stats_t stats;
} fleet_t;

//  --------------------------------------------------------------------------
//  The fleet's life (fleet_run.c)

//  A fleet as the config says (which it copies; the lists stay the
//  caller's). NULL with err: a limit, a key file, no memory.
fleet_t *fleet_new (const fleet_config_t *config, char *err, size_t errlen);
//  Run until the end of the verification; the exit status (0: passed)
int fleet_run (fleet_t *self);
void fleet_destroy (fleet_t **self_p);

//  Helpers (fleet_run.c)

int64_t fleet_now (void);                       //  monotonic ms
int64_t fleet_usecs (void);                     //  monotonic us
uint64_t fleet_random (fleet_t *self);          //  fast, not for keys
uint32_t fleet_uniform (fleet_t *self, uint32_t bound);     //  0..bound-1
//  A wait of base ms drawn from its upper half (SPEC 8.3's jitter)
uint32_t fleet_jittered (fleet_t *self, uint32_t base);
//  Set a device's next wake-up from its deadlines
void fleet_reschedule (fleet_t *self, fleet_device_t *device);
void fleet_ready (fleet_t *self, fleet_device_t *device);

//  fleet_net.c
int fleet_net_open (fleet_t *self, fleet_device_t *device);
void fleet_net_close (fleet_t *self, fleet_device_t *device);
int fleet_net_send (fleet_t *self, fleet_device_t *device, af_msg_t *msg);
//  Send bytes already encoded (the PING)
int fleet_net_send_raw (fleet_t *self, fleet_device_t *device, const void *data, size_t size);
//  Read up to FLEET_BATCH messages; true if more may be waiting
bool fleet_net_drain (fleet_t *self, fleet_device_t *device);
//  The broker this device should use after its own went silent
void fleet_net_next_broker (fleet_t *self, fleet_device_t *device);
int fleet_net_endpoint (fleet_t *self, const char *endpoint);
//  The device's broker is silent or unreachable: mark it so, and choose
//  the next broker for the device
void fleet_net_silent (fleet_t *self, fleet_device_t *device);
//  Something came from the device's broker: it is not silent
void fleet_net_heard (fleet_t *self, fleet_device_t *device);
//  Where a REDIRECT sends the device: an endpoint index, or -1 to wait
//  FLEET_REDIRECT_WAIT_MS and ask the same broker again
int fleet_net_redirect (fleet_t *self, fleet_device_t *device, const af_msg_t *redirect);
//  Has the device's broker been marked silent (and not heard since)?
bool fleet_net_is_silent (fleet_t *self, uint32_t endpoint, int64_t now);

//  fleet_device.c
void fleet_device_tick (fleet_t *self, fleet_device_t *device, int64_t now);
void fleet_device_message (fleet_t *self, fleet_device_t *device, af_msg_t *msg);
fleet_req_t *fleet_request (fleet_t *self, fleet_device_t *device, fleet_cmd_t cmd, af_msg_t *msg, uint32_t arg);
bool fleet_slot_free (fleet_device_t *device);
//  The connection or the session is gone: abandon what was open
void fleet_device_session_lost (fleet_t *self, fleet_device_t *device, const char *why);
void fleet_device_drop (fleet_t *self, fleet_device_t *device, const char *why, bool away);
bool fleet_device_is_online (fleet_device_t *device);
void fleet_device_describe (fleet_t *self, fleet_device_t *device, af_device_t *out);
fleet_device_t *fleet_device_by_id (fleet_t *self, const char *id);

//  fleet_reports.c
void fleet_reports_login (fleet_t *self, fleet_device_t *device, uint64_t broker_seq, bool send_list);
void fleet_reports_next (fleet_t *self, fleet_device_t *device);
//  A change on the device: returns false if its queue is full (nothing changed)
bool fleet_report_install (fleet_t *self, fleet_device_t *device, uint32_t program, const char *version,
                           const char *hash);
bool fleet_report_uninstall (fleet_t *self, fleet_device_t *device, uint32_t program);
void fleet_report_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_list_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_reports_abandon (fleet_t *self, fleet_device_t *device, fleet_req_t *req);
fleet_app_t *fleet_app_find (fleet_device_t *device, uint32_t program);
void fleet_apps_initial (fleet_t *self, fleet_device_t *device);

//  fleet_actions.c
void fleet_act (fleet_t *self, fleet_device_t *device);
bool fleet_can_act (fleet_t *self, fleet_device_t *device);
void fleet_sync (fleet_t *self, fleet_device_t *device);
void fleet_sync_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_notify_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_push_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_on_notify (fleet_t *self, fleet_device_t *device, af_msg_t *msg);

//  fleet_pushes.c
fleet_push_t *fleet_push_find (fleet_t *self, const char *id, bool create);
void fleet_on_item (fleet_t *self, fleet_device_t *device, af_msg_t *msg);
void fleet_on_chunk (fleet_t *self, fleet_device_t *device, af_msg_t *msg);
void fleet_fetch_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_done_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_jobs_login (fleet_t *self, fleet_device_t *device);
void fleet_jobs_lost (fleet_t *self, fleet_device_t *device);
void fleet_jobs_tick (fleet_t *self, fleet_device_t *device, int64_t now);
int64_t fleet_jobs_deadline (fleet_device_t *device);

//  fleet_verify.c
void fleet_verify_start (fleet_t *self);
void fleet_verify_step (fleet_t *self);
void fleet_apps_answer (fleet_t *self, fleet_device_t *device, fleet_req_t *req, af_msg_t *msg);
void fleet_verify_finish (fleet_t *self);

//  fleet_stats.c
const char *fleet_cmd_name (fleet_cmd_t cmd);
//  An ERROR answer to cmd: counted by code; expected ones (the caller
//  says) are retried or accepted, others are printed and fail the run
void fleet_error (fleet_t *self, fleet_device_t *device, fleet_cmd_t cmd, const af_msg_t *error, bool expected);
//  Something the broker did that it should not have: counted, printed
void fleet_unexpected (fleet_t *self, fleet_device_t *device, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
void fleet_stats_tick (fleet_t *self, int64_t now);
void fleet_stats_print (fleet_t *self);
//  The final line and the verdict: 0 if the run passed
int fleet_stats_verdict (fleet_t *self);

#endif
