/*  =========================================================================
    broker_xacct - the one way a request of one account reaches another

    Friends (issue 13) cross accounts: a pull reads another account's book,
    blocks and shares; a push writes into another account's outboxes; an
    own number is written to a directory bucket that is no account's. In a
    cluster those keys may live on another broker's shard, so no handler
    touches another account's keys itself: every cross-account step is one
    of the functions below, on a job (xacct_job_t: the typed context of one
    node request, with the continuation that resumes it).

    Single broker, or every shard a step needs owned here: the step is a
    direct call on the broker's own store (af_friends, af_lists, af_outbox)
    in the handler's transaction (a child of the group commit's batch), and
    it returns its code at once.

    Cluster, a shard owned by another broker: the step goes to that
    broker as FORWARD (broker_forward.c; SPEC 5.37) and returns
    XACCT_PENDING; when the answer comes (or AF_CLUSTER_FORWARD_MS passes:
    AF_E_UNAVAILABLE), job->code is set and job->resume is called, inside a
    batch. The owner serves it from its own store (broker_xacct_serve).
    Reads (a directory bucket, a friendship check, shared apps) carry what
    the owner needs and get back only the answer: for a friendship check
    the asker's book, own numbers and blocks travel to the other account's
    owner, which answers one bit, so the other's book never leaves its
    shard and the asker learns what a single broker would tell it. Writes
    (a recommendation, directory entries) are applied by the owner in its
    own batch and answered after its followers have them; a recommendation
    carries a random 128-bit intent ID, written first to the asker's shard
    (so replicated) and applied once by the owner (idempotent by the ID);
    a GET's notice to a friend on another broker is the same kind of
    intent (broker_intents.c does both; broker_xnotice.c the notice).
    Directory entries need no intent: setting a claim twice is setting it
    once.

    FRIENDS asks about a whole book: its lookups are batched, one FORWARD
    per owner for many tokens (xacct_friends).

    Not built: ordering
    of two changes of one account's own numbers racing in a remote bucket;
    an intent resent more than AF_INTENT_KEEP_MS after its owner applied
    it (the asker's shard unowned that long) would be applied again, and a
    resend's answer is kept that long for the node's retry (a retry later
    is a new recommendation);
    FORWARD for payments between accounts.
    =========================================================================
*/
#ifndef BROKER_XACCT_H_INCLUDED
#define BROKER_XACCT_H_INCLUDED

#include "broker_int.h"
#include "af_friends.h"
#include "af_forward.h"

//  A step's return when its answer comes later, through job->resume
#define XACCT_PENDING   1

//  The reason an AF_E_UNAVAILABLE from these steps carries
#define XACCT_ELSEWHERE "the contact's account is on another broker of the cluster, which did not " \
                        "answer in time (it may be moving or restarting); try again shortly"

typedef struct _xacct_job_t xacct_job_t;
typedef struct _xacct_batch_t xacct_batch_t;
typedef void (xacct_fn) (af_broker_t *self, xacct_job_t *job);

//  One node request that crosses accounts, waiting on its steps
struct _xacct_job_t {
    broker_caller_t caller;         //  who asked: answered through it
    char me [AF_MAX_ACCOUNT + 1];   //  the session's account
    af_token_t *tokens;             //  the request's tokens (owned)
    uint32_t ntokens;
    char program [AF_MAX_PROGRAM + 1];  //  the request's program ("" none)
    xacct_fn *resume;               //  the handler's continuation after a pending step
    int code;                       //  the last step's outcome
    int phase;                      //  where the handler is (its own values)
    //  xacct_lookup's outcome
    char other [AF_MAX_ACCOUNT + 1];
    bool found, friends;
    //  xacct_shared_apps' outcome (owned)
    af_msg_t *list;
    //  xacct_recommend's outcome
    bool refused;
    //  The handler's own state
    uint32_t at;                    //  its next token
    bool looked;                    //  the lookup of that token has its outcome in
    char pick [AF_MAX_ACCOUNT + 1]; //  the contact: the first friend, else the first found
    bool pick_found, pick_friends;
    af_token_t *book;               //  FRIENDS: the asker's book (owned)
    size_t nbook;
    af_msg_t *reply;                //  what will answer the node (owned)
    af_share_t share;               //  RECOMMEND: my app's visibility
    zframe_t *note;                 //  RECOMMEND: the encoded RECOMMENDATION (owned)
    uint32_t waiting;               //  directory FORWARDs not answered yet
    int worst;                      //  ... and the first failure among them
    af_token_t *old_own, *new_own;  //  CONTACTS_PUT own: the numbers before and after (owned)
    size_t nold, nnew;
    //  Inside the steps
    uint8_t token [AF_CONTACT_TOKEN_SIZE];
    char claims [AF_FORWARD_CLAIMS][AF_MAX_ACCOUNT + 1];
    uint32_t nclaims, claim;
    bool claim_friend, claim_checked;
    af_token_t *mine;               //  my book, own numbers and blocked tokens, one after the other (owned)
    size_t nmine [3];
    xacct_batch_t *batch;           //  xacct_friends' state (owned)
    uint8_t *befriended;            //  xacct_friends' outcome: per token of book, 1 if a friend's (owned)
    uint8_t intent [AF_ID_SIZE];    //  RECOMMEND to another broker: its intent
};

//  A job for session's request (its rid, tokens and program copied);
//  resume is the handler's continuation. Destroy frees what it owns.
xacct_job_t *xacct_job_new (const session_t *session, const af_msg_t *msg, xacct_fn *resume);
void xacct_job_destroy (xacct_job_t **job_p);

//  Answer the job's node: the reply (taken), or an ERROR for code (for
//  xacct codes: the reasons handle_friends gives).
void xacct_job_reply (af_broker_t *self, xacct_job_t *job, af_msg_t **reply_p);
void xacct_job_fail (af_broker_t *self, xacct_job_t *job, int code);

//  Who a contact token is, seen from job->me: an account that claims it as
//  its own number (not me), preferring one that is me's friend, into
//  job->other, found, friends (found false: nobody claims it; answer as
//  for "not friends"). AF_OK, XACCT_PENDING, AF_E_UNAVAILABLE, AF_E_INTERNAL.
int xacct_lookup (af_broker_t *self, xacct_job_t *job, const uint8_t *token);

//  Which tokens of job->book (nbook) are friends' (an account claiming it
//  as its own number, not me, is me's friend), into job->befriended. The
//  tokens are grouped by the broker owning their directory bucket's
//  shard, one FORWARD dir_find per owner for up to AF_FORWARD_BATCH of
//  them (chunks one after another, owners in parallel), then the accounts
//  found, by their shard's owner, FORWARD friends the same way; what is
//  served here is read at once. AF_OK, XACCT_PENDING, AF_E_UNAVAILABLE,
//  AF_E_INTERNAL.
int xacct_friends (af_broker_t *self, xacct_job_t *job);

//  The apps account other shows a viewer into job->list (program,
//  versionName, share): on one of its devices and shared at least at min
//  (AF_SHARE_PRIVATE: every app it has), or only the one named program
//  (NULL: all). AF_OK, XACCT_PENDING, AF_E_UNAVAILABLE, AF_E_INTERNAL.
int xacct_shared_apps (af_broker_t *self, xacct_job_t *job, const char *other, af_share_t min,
                       const char *program);

//  Queue the RECOMMENDATION note (encoded in frame) in every device's
//  outbox of account to, in one transaction, unless to refuses
//  recommendations from every sender or from one of the note's numbers
//  (job->refused, nothing written). Online devices get it at once.
//  AF_OK, XACCT_PENDING, AF_E_QUOTA (a queue is full: nothing queued),
//  AF_E_UNAVAILABLE, AF_E_INTERNAL.
int xacct_recommend (af_broker_t *self, xacct_job_t *job, const char *to, zframe_t *frame);

//  The account's own numbers change from job->old_own to job->new_own:
//  the directory buckets on other brokers first (FORWARD dir_set, each
//  bucket's owner applies and answers after its followers have it), then
//  the caller writes its own set and the buckets served here
//  (xacct_directory_local) in one transaction. AF_OK (nothing elsewhere),
//  XACCT_PENDING, AF_E_UNAVAILABLE.
int xacct_directory_remote (af_broker_t *self, xacct_job_t *job);
int xacct_directory_local (af_broker_t *self, MDB_txn *txn, const char *account, const af_token_t *old,
                           size_t nold, const af_token_t *new_tokens, size_t nnew);

//  The owner's side: serve a FORWARD from broker `from` out of our store
//  and answer it FORWARD_REPLY on our DEALER to it (after our followers
//  have what it wrote). Called by the mesh's reader, in its batch.
void broker_xacct_serve (af_broker_t *self, const char *from, af_msg_t *msg);


//  handle_friends.c, for GET and BROWSE from a contact (handle_pay.c): the
//  contact the job's tokens name, then the apps it shows job->me (only
//  job->program, if set) into job->list, as FRIEND_APPS (job->pick: the
//  contact's account). true when listed; false when the node was answered
//  (a refusal: E_NOT_FRIENDS, E_NOT_SHARED, ...) or the job waits
//  (*pending: job->resume is called later). Start with job->phase 0.
bool broker_contact_apps (af_broker_t *self, xacct_job_t *job, bool *pending);

//  xacct_recommend's write on our own store (the recipient's shard is
//  ours): an xintent_apply_fn (program unused: the note names it).
int xacct_recommend_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *intent,
                           const void *note, size_t size, bool *refused);

//  --------------------------------------------------------------------------
//  broker_forward.c: the asking side of FORWARD

typedef struct _forward_t forward_t;

//  A FORWARD's completion: code AF_OK with the owner's FORWARD_REPLY, the
//  owner's error code with it, or AF_E_UNAVAILABLE and NULL (no answer in
//  time, no owner); called exactly once, in a batch.
typedef void (forward_fn) (af_broker_t *self, void *arg, int code, af_msg_t *reply);

//  Send request (a FORWARD, taken; its rid and epoch are set here) to the
//  owner of shard, held until our batch commits if held. AF_OK (done will
//  be called), or AF_E_UNAVAILABLE (no owner known, too many in flight to
//  it; done is not called).
int broker_forward (af_broker_t *self, uint32_t shard, af_msg_t **request_p, bool held, forward_fn *done, void *arg);

//  A FORWARD_REPLY from broker from (the mesh's reader).
void broker_forward_answer (af_broker_t *self, const char *from, af_msg_t *reply);

//  Timeouts and sends again (the timer); at stop, every completion called.
void broker_forward_tick (af_broker_t *self, int64_t now);
void broker_forward_stop (af_broker_t *self);

//  --------------------------------------------------------------------------
//  broker_intents.c: a write into another broker's shard, exactly once
//  (recommend, notice, record): a durable intent in the writer's shard,
//  FORWARD until a final answer, applied once by its ID where it lands

//  Apply an intent of a kind on our own store, for account to (its shard
//  ours): the FORWARD_REPLY's code, and its yes.
typedef int (xintent_apply_fn) (af_broker_t *self, const char *to, const char *program, const uint8_t *id,
                                const void *payload, size_t size, bool *yes);

//  Whether code answers an intent of kind for good (else it is sent again)
bool xintent_final (af_xintent_kind_t kind, int code);

//  FORWARD the intent (kind's op, account to, program, intent = id, body
//  = payload of at most AF_MAX_ITEM) to the owner of to's shard, held
//  until our batch commits if held. AF_OK (done is called), or
//  AF_E_UNAVAILABLE (no owner, too many in flight, or to's shard is ours:
//  done is not called; the resend tries again).
int xintent_forward (af_broker_t *self, af_xintent_kind_t kind, const uint8_t *id, const char *to,
                     const char *program, const void *payload, size_t size, bool held, forward_fn *done, void *arg);

//  After our commit, an intent of from nobody waits for (a notice, an
//  install record), just written: FORWARD it (held until the batch
//  commits), forgotten on a final answer (logged); no owner or no final
//  answer: left to the resend.
void xintent_send (af_broker_t *self, af_xintent_kind_t kind, const char *from, const uint8_t *id, const char *to,
                   const char *program, const void *payload, size_t size);

//  The intent id of from is answered: forgotten, or (answered) kept with
//  code and yes for the node's retry (af_friends_intent_answered). A store
//  failure is logged: the intent is sent again, and applied once.
void xintent_resolved (af_broker_t *self, const char *from, const uint8_t *id, bool answered, int code, bool yes);

//  The owner's side: whether op is an intent's, and apply a FORWARD of
//  it (400 unless account, intent and a body of 1..AF_MAX_ITEM bytes).
bool xintent_op (const char *op);
int xintent_serve (af_broker_t *self, af_msg_t *msg, af_msg_t *reply, bool *wrote);

//  Send the unresolved intents of the shards we own again (after a
//  restart or a failover, they are in our store; the timer's work, every
//  AF_INTENT_RESEND_MS); forget those kept or tried too long.
void broker_xacct_resend (af_broker_t *self, int64_t now);

//  --------------------------------------------------------------------------
//  broker_xnotice.c: a GET's notice to a friend whose account is on
//  another broker (SPEC 5.47 "The friend told")

//  The asker's side, in the push's group commit (handle_push.c): the
//  notice (its item encoded as it is; notice->account the friend's,
//  device_id "": the friend's broker picks it) as an intent of account
//  from, keyed by notice->key, about program; FORWARD after the commit.
//  AF_OK (recorded), AF_E_MALFORMED, AF_E_INTERNAL (nothing recorded).
int xnotice_send (af_broker_t *self, const char *from, const char *program, const broker_notice_t *notice);

//  The friend's side, an xintent_apply_fn: the NOTIFY item (a kind
//  "friend-...", body "PROGRAM ASKER ACCOUNT") into the outbox of account
//  to's first device whose install list has program, once by key
//  (af_paynotes; yes: told before), with its ask opened under the key
//  (broker_ask_open) and carried in the item. AF_OK, AF_E_MALFORMED,
//  AF_E_NOT_THERE (no such device), AF_E_QUOTA, AF_E_INTERNAL.
int xnotice_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *key, const void *item,
                   size_t size, bool *told_before);

//  The first device of account whose install list has program, into
//  device. AF_OK, AF_E_NOT_THERE (none), AF_E_INTERNAL.
int xnotice_device (af_broker_t *self, const char *account, const char *program, char device [AF_ID_HEX + 1]);

//  --------------------------------------------------------------------------
//  broker_xrecord.c: a friend's install record for an asker whose account
//  is on another broker (SPEC 5.47a "From a contact")

//  The asks' queue (af_asks_set_queue; arg the broker): the asker's item
//  into its outbox if its account is ours, else, in the same txn, an
//  intent of the ask's (source) account, kind record, keyed by the ask's
//  ID. AF_OK, AF_E_QUOTA, AF_E_MALFORMED, AF_E_INTERNAL.
int xrecord_queue (MDB_txn *txn, const af_ask_t *ask, const void *item, size_t size, void *arg);

//  After the commit that closed ask with item: the asker's device told
//  (ours), or FORWARD record to the asker's broker (xintent_send).
void xrecord_sent (af_broker_t *self, const af_ask_t *ask, const void *item, size_t size);

//  The asker's side, an xintent_apply_fn: payload (the asker's device ID,
//  16 bytes, then a RECORD of ask id for program) into that device's
//  outbox of account to, once per ask (af_paynotes, key BLAKE2b-128
//  ("record" || id); yes: queued before). AF_OK, AF_E_MALFORMED,
//  AF_E_NO_DEVICE (not a device of to), AF_E_QUOTA, AF_E_INTERNAL.
int xrecord_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *id, const void *payload,
                   size_t size, bool *queued_before);

#endif
