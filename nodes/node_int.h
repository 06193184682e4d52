/*  =========================================================================
    node_int.h - the node's internal header: its state and shared helpers

    The node (af_node) is one single-threaded reactor split by concern, the
    way Mosquitto splits its broker over mosquitto_broker_internal.h: this
    header holds af_node_t and what more than one of its files uses. No
    file outside nodes/ includes it; the public API is af_node.h.
    =========================================================================
*/
#ifndef NODE_INT_H_INCLUDED
#define NODE_INT_H_INCLUDED

#include "af_node.h"
#include "af_msg.h"
#include "af_download.h"
#include "af_install.h"
#include "af_reports.h"
#include "node_limits.h"
#include "af_trust.h"

#include <jansson.h>

typedef struct _pending_t pending_t;
typedef struct _node_friends_t node_friends_t;
struct _cli_t;

//  A request's completion. answer is the broker's reply, or NULL when none
//  will come (the deadline passed, or the session it belonged to ended).
//  Returns true when the request is finished (it is then forgotten), false
//  to keep waiting for another answer (an UPLOAD's CREDIT before its OK).
typedef bool (node_answer_fn) (af_node_t *self, pending_t *pending, af_msg_t *answer);

//  When a request may be sent. Without flags: as soon as the connection
//  is up (REGISTER, LOGIN).
enum {
    REQ_SESSION         = 1,    //  needs a logged-in session: waits for LOGIN_OK
    REQ_AFTER_REPORTS   = 2,    //  a session, and the install reports queued before
                                //  it confirmed first (SYNC, APPS: S1.8)
    REQ_PER_SESSION     = 4,    //  the node makes it again after each login (REPORT,
                                //  LIST, FETCH, DONE): dropped when the session ends
    REQ_RETRY           = 8,    //  idempotent (GET, PAY_CONFIRM): a 5xx, no answer in
                                //  time, or a new session sends it again, after a
                                //  back-off, until its retry_until (node_request_retry)
};

struct _pending_t {
    char hex [AF_ID_HEX + 1];       //  the request ID
    node_answer_fn *on_answer;
    unsigned flags;
    zframe_t *client;               //  the CLI waiting for the answer, or NULL
    af_msg_t *unsent;               //  not sent yet: waits for its flags
    af_msg_t *sent;                 //  sent, kept until answered: a REDIRECT sends it again
    int64_t deadline;
    void *handle;                   //  in self->requests
    //  The typed context of the completion
    char program [AF_MAX_PROGRAM + 1];  //  config requests: the app
    char push [AF_ID_HEX + 1];          //  job requests (FETCH, DONE): the offer
    uint64_t seq;                       //  REPORT, LIST: the seq it carried
    struct _cli_t *retry;               //  DEVICES: the CLI request to run again
    char device [AF_ID_HEX + 1];        //  DEVICE_REMOVE: the device, and its name
    char device_name [AF_MAX_NAME + 1];
    char token [AF_MAX_PAY_TOKEN + 1];  //  GET: the payment token to confirm with
    bool with_data;                     //  GET: confirmed asking for the user data too
    //  REQ_RETRY: sent again until then (zclock_mono), not before not_before
    int64_t retry_until;
    int64_t not_before;
    uint32_t attempts;                  //  sends so far
    char retry_why [AF_MAX_REASON + 32];    //  why it was last sent again
};

typedef enum {
    JOB_WAITING,                    //  queued behind another job
    JOB_FETCHING,                   //  chunks arriving
    JOB_INSTALLING,                 //  the installer's thread, or the operator's
                                    //  install command, runs
    JOB_REPORTING                   //  DONE sent (or to send), waiting for OK
} job_state_t;

//  One offer this device received
typedef struct {
    char push [AF_ID_HEX + 1];
    char program [AF_MAX_PROGRAM + 1];
    char from [AF_ID_HEX + 1];
    char item [AF_ID_HEX + 1];
    af_package_t package;
    uint32_t fit;
    job_state_t state;
    af_download_t *download;
    char part [600];                //  the file being received
    char fetch_rid [AF_ID_HEX + 1];
    int64_t last_chunk;
    uint32_t owed;                  //  credit not yet returned
    double tokens;                  //  rate limit: bytes we may accept now
    int64_t tokens_at;
    af_install_cmd_t *cmd;
    af_install_task_t *task;        //  the built-in install or data import running
    zlistx_t *after;                //  af_msg_t: UNINSTALLs of the program that
                                    //  came while it installed, run after it
    af_install_info_t info;
    char outcome [AF_MAX_STATE + 1];
    char reason [AF_MAX_REASON + 1];
    uint32_t files;
    char done_rid [AF_ID_HEX + 1];
    int64_t reported_at;            //  0: DONE still to send
    char data_hash [AF_HASH_HEX + 1];   //  user data sent with the push (S2.8)
    uint64_t data_total;
    char ask [AF_ID_HEX + 1];       //  the GET's ask the data answers (5.47), or ""
    bool data_phase;                //  the package is in; fetching the data
    char fetch_hash [AF_HASH_HEX + 1];  //  what is being fetched now
    uint64_t fetch_total;
    uint64_t fetch_login;           //  the login (self->logins) the last FETCH went on
    bool refetched;                 //  FETCH sent again: earlier chunks may still come
    uint8_t *meta;                  //  the offer's signed metadata (owned), or NULL
    size_t meta_size;
    char key_id [AF_KEY_ID_HEX + 1];    //  the publisher key the signed target names
} job_t;

//  The user data of a push this device starts, on its way to the broker
typedef struct {
    char hash [AF_HASH_HEX + 1];
    uint64_t total;
    uint64_t sent;
    uint32_t credit;
    int fd;
    char path [600];
    char rid [AF_ID_HEX + 1];       //  of the UPLOAD
    af_msg_t *push;                 //  the PUSH to send once the broker has it
    node_answer_fn *on_answer;      //  the push's completion, and its flags
    unsigned flags;
    zframe_t *client;               //  its context: the CLI waiting, or NULL
    char item [AF_ID_HEX + 1];      //  ... a GET's notice it answers, or ""
} upload_t;

struct _af_node_t {
    af_node_config_t config;
    zcert_t *cert;
    zcert_t *broker_cert;
    af_device_t device;
    zsock_t *dealer;
    char endpoints [NODE_MAX_ENDPOINTS][AF_MAX_ENDPOINT + 1];   //  the brokers given
    uint32_t endpoint_count;
    uint32_t endpoint_at;           //  the one tried last
    char endpoint [AF_MAX_ENDPOINT + 1];    //  the one connected to (given, or a REDIRECT's)
    char standby [AF_MAX_ENDPOINT + 1];     //  the broker that takes over if it goes (LOGIN_OK), or ""
    uint32_t redirects;             //  followed since the last LOGIN_OK
    int64_t reconnect_at;           //  0, or: connect again then (a REDIRECT to nowhere)
    zsock_t *ctl;
    zloop_t *loop;
    bool connected;                 //  a PONG came back on this connection
    bool logged_in;
    bool stopping;
    char account [AF_MAX_ACCOUNT + 1];      //  saved: log in again by key
    char device_id [AF_ID_HEX + 1];
    char login_error [AF_MAX_REASON + 32];  //  why the automatic login stopped (4xx)
    char login_retry [AF_MAX_REASON + 32];  //  why it failed and is tried again (5xx)
    uint32_t login_failures;                //  5xx answers since the last LOGIN_OK
    int64_t login_retry_at;                 //  not before this (zclock_mono)
    char auto_login [AF_ID_HEX + 1];        //  rid of our own pending LOGIN
    bool switching;                         //  user left the account for another:
                                            //  no automatic login until one succeeds
    int64_t last_rx;
    int64_t last_ping;
    int heartbeat_ms;
    af_msg_t *list;                 //  last DEVICE_LIST received
    int64_t list_at;                //  wall clock ms
    uint64_t lists_received;
    zlistx_t *requests;             //  pending_t, oldest first (owns them)
    zhashx_t *pending;              //  rid hex -> pending_t (an index of requests)
    json_t *inbox;                  //  last NODE_MAX_INBOX notifications received
    uint64_t notifications;         //  received since start
    json_t *pushes;                 //  pushes this device started (pushes.json)
    zlistx_t *jobs;                 //  job_t: offers received, in order
    zlistx_t *reapers;              //  af_install_task_t: uninstalled apps' trees
                                    //  being removed, off the reactor
    upload_t *upload;               //  user data being sent, or NULL
    zlistx_t *data_asks;            //  GET notices asking for user data, to answer
                                    //  in turn (node_getdata.c)
    af_reports_t *reports;          //  HOME/reports: install reports to send
    uint64_t next_seq;              //  install reports: the next seq to give
    uint64_t acked_seq;             //  ... the last the broker confirmed
    char report_rid [AF_ID_HEX + 1];    //  the REPORT in flight ("" if none)
    char list_rid [AF_ID_HEX + 1];
    bool listing;                   //  a whole LIST is in flight
    bool catching_up;               //  reports queued before this login go first
    int64_t reports_at;             //  last retry of the report queue
    size_t reports_mended;          //  unreadable reports a whole LIST replaced
    uint64_t logins;                //  LOGIN_OKs since start
    json_t *shares;                 //  config-share.json
    int64_t config_at;              //  last scan of shared configurations
    zhashx_t *auto_installs;        //  programs this node asked to install for
                                    //  itself in automatic mode, until their RESULT
    char guarded_cmd [8192];        //  the install command, run under the guard
    node_friends_t *friends;        //  node_friends.c: an address book import under way
    bool has_root;                  //  root_pub was given (--root-key)
    af_minisign_pub_t root_pub;     //  the store's root key: what packages must chain to
    json_t *trust;                  //  trust.json: the highest metadata versions seen
    af_trust_cache_t *trust_cache;  //  documents verified already (with root_pub)
    uint8_t *chunk_raw;             //  upload buffers: one chunk, and compressed
    uint8_t *chunk_packed;
    size_t chunk_packed_size;
};

//  One request from the CLI: the verb and its arguments (NULL past args)
typedef struct _cli_t {
    zframe_t *client;
    char *verb;
    char *arg [NODE_CTL_MAX_FRAMES];
    int args;
    bool refreshed;                 //  run again after asking for the device list
} cli_t;

//  A CLI verb's handler: it answers the client, at once or later
typedef void (cli_fn) (af_node_t *self, cli_t *cli);

//  Something the broker sends on its own (not an answer); a handler that
//  keeps the message takes it (sets *msg_p to NULL)
typedef void (node_pushed_fn) (af_node_t *self, af_msg_t **msg_p);

//  Why the node asks for the account's configuration of an app
typedef enum {
    NODE_CONFIG_SYNC,               //  a newer version may be there: apply if newer
    NODE_CONFIG_INSTALL,            //  just installed: apply (manual mode: ask first)
    NODE_CONFIG_APPLY,              //  `config apply`: apply now
    NODE_CONFIG_SHOW                //  `config show`: show it
} node_config_why_t;

//  af_node.c: the connection, login and session
int node_send (af_node_t *self, af_msg_t *msg);
void node_state_save (af_node_t *self);

//  The broker removed this device from its account (E_REMOVED): forget its
//  ID, so that the next login with the password makes a new device.
void node_forget_device (af_node_t *self);
void node_login_ok (af_node_t *self, af_msg_t *msg);
void node_logged_out (af_node_t *self);
void node_session_end (af_node_t *self);

//  The broker says another owns our account's shard: go there, sending
//  what was in flight again.
void node_redirect (af_node_t *self, af_msg_t *msg);

//  node_request.c: requests to the broker
void node_requests_new (af_node_t *self);

//  Everything sent and not answered becomes unsent again (a REDIRECT:
//  the next broker gets it), to go wait_ms from now (0: at once).
void node_requests_resend (af_node_t *self, int wait_ms);
void node_requests_destroy (af_node_t *self);
//  Send msg as a request (a fresh rid) when flags allow; on_answer is
//  called once with the answer, or NULL if none comes. Takes msg.
pending_t *node_request (af_node_t *self, node_answer_fn *on_answer, unsigned flags, zframe_t *client,
                         af_msg_t *msg);
pending_t *node_request_find (af_node_t *self, const char *hex);
//  A REQ_RETRY request: sent again on a 5xx, no answer, or a new session,
//  until retry_until (zclock_mono); its CLI client is told each time (a
//  "progress" reply before the final one)
pending_t *node_request_retry (af_node_t *self, node_answer_fn *on_answer, unsigned flags, zframe_t *client,
                               af_msg_t *msg, int64_t retry_until);
//  A new session: every REQ_RETRY request sent on the old one goes again
void node_requests_renew (af_node_t *self);
//  A wait after failures failures, doubling from min_ms up to max_ms, drawn
//  from the upper half of that (jitter): the login's and REQ_RETRY's
int node_backoff_ms (uint32_t failures, int min_ms, int max_ms);
void node_requests_flush (af_node_t *self);
void node_requests_answer (af_node_t *self, af_msg_t *answer);
void node_requests_expire (af_node_t *self);
void node_requests_session_end (af_node_t *self);
//  For a CLI request's completion: true if there was no answer (the
//  client was told why) or an ERROR (passed on to the client)
bool node_answer_failed (af_node_t *self, pending_t *pending, af_msg_t *answer);

//  node_cli.c: the CLI socket
int node_cli_event (zloop_t *loop, zsock_t *reader, void *arg);
void node_cli_destroy (cli_t **cli_p);
bool node_cli_push_answer (af_node_t *self, pending_t *pending, af_msg_t *answer);

//  The one device a CLI request names: 1 (id set), 0 (asked the broker for
//  the list; the request runs again), -1 (refused; the CLI was told).
int node_cli_named (af_node_t *self, cli_t *cli, const char *spec, char id [AF_ID_HEX + 1]);

//  node_pay.c: browse DEVICE, get PROGRAM DEVICE [TOKEN], pay-confirm
//  INTENT TOKEN, purchases (paid apps, SPEC 5.38, 5.39)
void node_pay_browse (af_node_t *self, cli_t *cli);
void node_pay_get (af_node_t *self, cli_t *cli);
//  A GET's notice in an outbox ITEM (NOTIFY): into the inbox once per item
void node_pay_on_notice (af_node_t *self, af_msg_t **msg_p, const char *item);
void node_pay_confirm (af_node_t *self, cli_t *cli);
void node_pay_purchases (af_node_t *self, cli_t *cli);

//  node_record.c: the install record after a GET (SPEC 5.47a). The
//  source: a notice with an ask answered with RECORD_PUT (its item ACKed
//  once answered); the asker: a RECORD item kept in HOME/records, ACKed,
//  applied once the program is installed; at start, what is pending
//  answer_ask: for the ask of the notice in item, with data_reason (may be
//  NULL) saying why the user data it asked for does not come; notice_
//  program: the program a GET's notice names (its body's first word)
void node_record_answer_ask (af_node_t *self, const af_msg_t *notice, const char *item, const char *data_reason);
void node_record_notice_program (const af_msg_t *notice, char program [AF_MAX_PROGRAM + 1]);
void node_record_on_item (af_node_t *self, af_msg_t *msg, const char *item);
void node_record_installed (af_node_t *self, const char *program);
void node_record_start (af_node_t *self);

//  node_docs.c: CLI replies and documents, JSON files in the home
void node_ctl_reply (af_node_t *self, zframe_t *client, bool ok, json_t *doc);
json_t *node_error_doc (int code, const char *reason);
void node_ctl_error (af_node_t *self, zframe_t *client, int code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));
json_t *node_devices_doc (af_node_t *self, af_msg_t *list, const char *source);
json_t *node_installed_doc (af_node_t *self);
json_t *node_apps_doc (af_node_t *self, af_msg_t *msg);
json_t *node_status_doc (af_node_t *self);
int node_json_save (af_node_t *self, const char *name, json_t *doc);
json_t *node_json_load (af_node_t *self, const char *name);

//  node_devices.c: devices named on the command line. find: AF_OK with the
//  ID; AF_E_NO_DEVICE (not in the list) or AF_E_MALFORMED (more than one
//  fits, or too short a prefix) with err. special: "all" and "self" too.
int node_device_find (af_node_t *self, const char *spec, bool special, char *id, char *err, size_t errlen);
void node_devices_keep (af_node_t *self, af_msg_t *list);

//  node_notify.c: notifications received; tell: one the node makes itself
//  (kind, from: the device it is about), for `appferry notifications`
void node_on_notify (af_node_t *self, af_msg_t **msg_p);
void node_tell (af_node_t *self, const char *kind, const char *from, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));
json_t *node_notifications_doc (af_node_t *self);

//  node_jobs.c: offers received, and the outbox
void node_job_free (void **item);
void node_jobs_run (af_node_t *self);
void node_jobs_chunk (af_node_t *self, af_msg_t **msg_p);
void node_jobs_login (af_node_t *self);
void node_jobs_tick (af_node_t *self);
json_t *node_jobs_doc (af_node_t *self);
//  The job installing program now (its task or command running), or NULL:
//  nothing else writes what an install of it writes meanwhile
job_t *node_jobs_installing (af_node_t *self, const char *program);
void node_on_item (af_node_t *self, af_msg_t **item_p);

//  node_intent.c: install attempts of the operator's command. 0, or -1
//  with err: setup (the guard's command line), begin (before the command
//  starts: recorded, or refused after NODE_INSTALL_ATTEMPTS), recover (at
//  start: what an interrupted attempt left running is killed)
int node_intent_setup (af_node_t *self, char *err, size_t errlen);
int node_intent_begin (af_node_t *self, job_t *job, char *err, size_t errlen);
void node_intent_end (af_node_t *self);
int node_intent_recover (af_node_t *self, char *err, size_t errlen);

//  node_trust.c: the store's signatures (SPEC 11). setup: the root key
//  and trust.json, 0 or -1 with err; check: may the job's package be
//  installed (its metadata chains to the root, is not expired or rolled
//  back, names its hash; not older than what is installed), 0 or -1 with
//  the reason in err.
int node_trust_setup (af_node_t *self, char *err, size_t errlen);
int node_trust_check (af_node_t *self, job_t *job, char *err, size_t errlen);

//  node_backup.c: backups and restores (issue 15). The CLI's verbs; the
//  permission an older package needs (a restore of exactly that version
//  that the user asked for here, recorded before RESTORE went); after an
//  install, the app's identity kept for later backups and a restore's
//  configuration applied (true: the account's shared one must not follow)
void node_backup (af_node_t *self, cli_t *cli);
void node_backups (af_node_t *self, cli_t *cli);
void node_restore (af_node_t *self, cli_t *cli);
bool node_restore_allows (af_node_t *self, const job_t *job);
bool node_backup_installed (af_node_t *self, const job_t *job, const char *outcome);

//  node_upload.c: user data sent with a push. start: pack HOME/data/
//  PROGRAM/, UPLOAD it, then send push (taken) as a request with flags;
//  on_answer gets its answer, or an ERROR when the data could not be
//  packed or sent (this node's reason, or the broker's), or NULL (no
//  answer; a client was told why); client (may be NULL) and item (a
//  notice's, may be NULL: pending->push) are its context
void node_upload_free (upload_t **upload_p);
void node_upload_start (af_node_t *self, af_msg_t *push, node_answer_fn *on_answer, unsigned flags, zframe_t *client,
                        const char *item);
void node_upload_credit (af_node_t *self, af_msg_t **msg_p);

//  node_getdata.c: a GET's user data (S2.8 with S0.5, SPEC 5.47). The
//  source: a notice withData queued (once per item), answered in turn:
//  upload, PUSH with the ask to the asker, then RECORD_PUT; tick starts
//  the next. The asker: an offer's data for an ask is imported by one
//  push only: seen (another push's came already: skip it), begin (before
//  the import, durably), end (its outcome, told)
void node_getdata_new (af_node_t *self);
void node_getdata_destroy (af_node_t *self);
void node_getdata_on_notice (af_node_t *self, const af_msg_t *notice, const char *item);
void node_getdata_tick (af_node_t *self);
bool node_getdata_seen (af_node_t *self, const job_t *job, char *why, size_t whylen);
int node_getdata_begin (af_node_t *self, const job_t *job, char *err, size_t errlen);
void node_getdata_end (af_node_t *self, const job_t *job, int code, const char *err);
//  The entry for ask in a records document's "data" (created when create,
//  the oldest past NODE_DATA_KEEP dropped), or NULL
json_t *node_getdata_entry (json_t *doc, const char *ask, bool create);

//  node_reports.c: install reports and lists
void node_reports_flush (af_node_t *self);
void node_reports_login (af_node_t *self, uint64_t broker_seq, bool send_list);
int node_report (af_node_t *self, const char *op, const af_install_info_t *info);
af_msg_t *node_install_list (af_node_t *self);
//  Uninstall here: AF_OK; AF_E_MALFORMED (not installed here, or not a
//  program ID), AF_E_INTERNAL (the node's own files), err says what
int node_uninstall_local (af_node_t *self, const char *program, char *err, size_t errlen);
void node_uninstall_asked (af_node_t *self, af_msg_t *uninstall);

//  node_config.c: shared configurations
bool node_config_key (af_node_t *self, uint8_t *key);
void node_config_save (af_node_t *self);
void node_config_load (af_node_t *self);
void node_config_get (af_node_t *self, zframe_t *client, node_config_why_t why, const char *program,
                      bool previous);
void node_config_scan (af_node_t *self);
void node_config_secret (af_node_t *self, cli_t *cli);
void node_config_share (af_node_t *self, cli_t *cli);
void node_config_unshare (af_node_t *self, cli_t *cli);
void node_config_fetch (af_node_t *self, cli_t *cli);

//  node_pushes.c: pushes this device starts, automatic mode
void node_attest (af_node_t *self, af_msg_t *msg);
void node_pushes_save (af_node_t *self);
void node_pushes_load (af_node_t *self);
json_t *node_push_find (af_node_t *self, const char *push_id);
json_t *node_push_target (json_t *push, const char *device_id, bool create);
json_t *node_push_accepted (af_node_t *self, af_msg_t *msg);
void node_push_progress (af_node_t *self, af_msg_t **msg_p);
void node_push_result (af_node_t *self, af_msg_t *msg);
void node_install_self (af_node_t *self, node_answer_fn *on_answer, zframe_t *client, const char *program);
void node_auto_sync (af_node_t *self);

//  node_friends.c: contacts, friends, shares, pull, push, inbox (issue 13)
void node_friends_destroy (af_node_t *self);
void node_contacts_import (af_node_t *self, cli_t *cli);
void node_contacts_me (af_node_t *self, cli_t *cli);
void node_contacts_list (af_node_t *self, cli_t *cli);
void node_friends_list (af_node_t *self, cli_t *cli);
void node_friends_block (af_node_t *self, cli_t *cli);
void node_friends_refuse (af_node_t *self, cli_t *cli);
void node_friends_share (af_node_t *self, cli_t *cli);
void node_friends_shares (af_node_t *self, cli_t *cli);
void node_friend_apps (af_node_t *self, cli_t *cli);
void node_friend_recommend (af_node_t *self, cli_t *cli);
void node_friend_install (af_node_t *self, cli_t *cli);
void node_friends_inbox_install (af_node_t *self, cli_t *cli);
//  The tokens of the contact spec names (a name or number of this
//  device's address book) into msg's tokens, its name into name; AF_OK,
//  AF_E_NO_DEVICE (not in the book) or another code, with err (for
//  node_pay.c: get --from CONTACT, browse --friend CONTACT)
int node_friends_contact (af_node_t *self, const char *spec, af_msg_t *msg, char *name, size_t namelen, char *err,
                          size_t errlen);
void node_friends_inbox (af_node_t *self, cli_t *cli);
//  A RECOMMENDATION in outbox item `item`: kept in the inbox, then ACKed
void node_friends_on_item (af_node_t *self, af_msg_t *msg, const char *item);

#endif
