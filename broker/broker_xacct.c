/*  =========================================================================
    broker_xacct - the one way a request of one account reaches another

    See broker_xacct.h for the rule; docs/ARCHITECTURE.md "Friends" for
    the design across brokers, protocol/SPEC.md 5.37 for FORWARD. Each step
    has its local form (a read or write of our own store) and its FORWARD
    form; the owner's side of every FORWARD is broker_xacct_serve, at the
    end, and uses the same functions as the local form.
    =========================================================================
*/
#include "broker_xacct.h"

#define TOKEN AF_CONTACT_TOKEN_SIZE

//  Whether the keys of account (or of a directory bucket) are ours; the shard
static bool
s_here (af_broker_t *self, const char *account, uint32_t *shard)
{
    uint32_t ignored;
    return broker_cluster_serves (self, account, shard? shard: &ignored);
}

static af_store_t *
s_store (af_broker_t *self)
{
    return af_registry_store (self->registry);
}

static af_token_t *
s_copy (const void *tokens, size_t count)
{
    af_token_t *copy = (af_token_t *) malloc ((count + 1) * TOKEN);
    assert (copy);
    if (count)
        memcpy (copy, tokens, count * TOKEN);
    return copy;
}

//  A FORWARD of op, for shard's owner
static af_msg_t *
s_forward_msg (const char *op, const char *account)
{
    af_msg_t *msg = af_msg_new (AF_MSG_FORWARD);
    snprintf (msg->op, sizeof msg->op, "%s", op);
    if (account)
        snprintf (msg->account, sizeof msg->account, "%s", account);
    return msg;
}

//  A step that was pending is over: the handler goes on
static void
s_resume (af_broker_t *self, xacct_job_t *job, int code)
{
    job->code = code;
    job->resume (self, job);
}

static void s_batch_destroy (xacct_batch_t **batch_p);

//  --------------------------------------------------------------------------
//  Jobs

xacct_job_t *
xacct_job_new (const session_t *session, const af_msg_t *msg, xacct_fn *resume)
{
    xacct_job_t *job = (xacct_job_t *) zmalloc (sizeof (xacct_job_t));
    assert (job);
    broker_caller (&job->caller, session, msg);
    snprintf (job->me, sizeof job->me, "%s", session->account);
    job->tokens = s_copy (msg->elements, msg->element_count);
    job->ntokens = msg->element_count;
    snprintf (job->program, sizeof job->program, "%s", msg->program);
    job->resume = resume;
    return job;
}

void
xacct_job_destroy (xacct_job_t **job_p)
{
    xacct_job_t *job = *job_p;
    if (job) {
        free (job->tokens);
        free (job->book);
        free (job->old_own);
        free (job->new_own);
        free (job->mine);
        free (job->befriended);
        s_batch_destroy (&job->batch);
        af_msg_destroy (&job->list);
        af_msg_destroy (&job->reply);
        zframe_destroy (&job->note);
        free (job);
        *job_p = NULL;
    }
}

//  The job's session, if it is still the same account's
static session_t *
s_session (af_broker_t *self, xacct_job_t *job)
{
    session_t *session = broker_session (self, job->caller.session);
    return session && session->logged_in && streq (session->account, job->me)? session: NULL;
}

void
xacct_job_reply (af_broker_t *self, xacct_job_t *job, af_msg_t **reply_p)
{
    if (s_session (self, job))
        broker_answer (self, &job->caller, reply_p);
    af_msg_destroy (reply_p);
}

void
xacct_job_fail (af_broker_t *self, xacct_job_t *job, int code)
{
    session_t *session = s_session (self, job);
    const uint8_t *rid = job->caller.has_rid? job->caller.rid: NULL;
    if (!session)
        ;                               //  gone: nobody to answer
    else
    if (code == AF_E_UNAVAILABLE)
        broker_error_rid (self, session, rid, AF_E_UNAVAILABLE, "%s", XACCT_ELSEWHERE);
    else
    if (code == AF_E_QUOTA)
        broker_error_rid (self, session, rid, AF_E_QUOTA, "a limit of the account: at most %d contacts, "
                          "%d own numbers, %d blocked or refused", AF_MAX_BOOK, AF_MAX_OWN_NUMBERS, AF_MAX_BLOCKS);
    else
        broker_error_rid (self, session, rid, AF_E_INTERNAL, "the broker's store failed; try again later");
}

//  --------------------------------------------------------------------------
//  Friendship: one rule for both places it is decided

typedef af_forward_sets_t sets_t;

static int
s_sets_read (af_broker_t *self, MDB_txn *txn, const char *account, sets_t *sets)
{
    int code = af_friends_set_get (self->friends, txn, account, AF_SET_BOOK, &sets->book, &sets->nbook);
    if (code == AF_OK)
        code = af_friends_set_get (self->friends, txn, account, AF_SET_OWN, &sets->own, &sets->nown);
    if (code == AF_OK)
        code = af_friends_set_get (self->friends, txn, account, AF_SET_BLOCKED, &sets->blocked, &sets->nblocked);
    return code;
}

//  Friends: books share friends/min_common tokens, and neither blocks
//  the other (its blocked set holds one of the other's own numbers)
static bool
s_friends_sets (af_broker_t *self, const sets_t *a, const sets_t *b)
{
    size_t want = (size_t) self->config.friend_min_common;
    return af_tokens_common (a->book, a->nbook, b->book, b->nbook, want) >= want
        && af_tokens_common (a->blocked, a->nblocked, b->own, b->nown, 1) == 0
        && af_tokens_common (b->blocked, b->nblocked, a->own, a->nown, 1) == 0;
}

//  Both accounts here, in a read transaction
static int
s_friends_here (af_broker_t *self, const char *me, const char *other, bool *friends)
{
    *friends = false;
    if (streq (me, other))
        return AF_OK;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    sets_t a, b;
    int code = s_sets_read (self, txn, me, &a);
    if (code == AF_OK)
        code = s_sets_read (self, txn, other, &b);
    *friends = code == AF_OK && s_friends_sets (self, &a, &b);
    af_store_abort (s_store (self), &txn);
    return code;
}

//  --------------------------------------------------------------------------
//  xacct_lookup: the directory's claims, then friendship with each

static int s_claims_next (af_broker_t *self, xacct_job_t *job);


//  My sets (book, own numbers, blocked), copied once into job->mine, as
//  a friendship FORWARD carries them
static int
s_mine (af_broker_t *self, xacct_job_t *job, sets_t *sets)
{
    if (!job->mine) {
        MDB_txn *txn = NULL;
        if (af_store_begin (s_store (self), false, &txn))
            return AF_E_INTERNAL;
        sets_t mine;
        int code = s_sets_read (self, txn, job->me, &mine);
        if (code == AF_OK) {
            size_t count = mine.nbook + mine.nown + mine.nblocked;
            job->mine = (af_token_t *) malloc ((count + 1) * TOKEN);
            assert (job->mine);
            if (mine.nbook)
                memcpy (job->mine, mine.book, mine.nbook * TOKEN);
            if (mine.nown)
                memcpy (job->mine + mine.nbook, mine.own, mine.nown * TOKEN);
            if (mine.nblocked)
                memcpy (job->mine + mine.nbook + mine.nown, mine.blocked, mine.nblocked * TOKEN);
            job->nmine [0] = mine.nbook;
            job->nmine [1] = mine.nown;
            job->nmine [2] = mine.nblocked;
        }
        af_store_abort (s_store (self), &txn);
        if (code != AF_OK)
            return code;
    }
    sets->book = (af_forward_tokens_t) job->mine;
    sets->own = sets->book + job->nmine [0];
    sets->blocked = sets->own + job->nmine [1];
    sets->nbook = job->nmine [0];
    sets->nown = job->nmine [1];
    sets->nblocked = job->nmine [2];
    sets->naccounts = 0;
    return AF_OK;
}

//  A friendship FORWARD about count accounts (all of one owner, the first's
//  shard named), my sets with them
static af_msg_t *
s_friends_request (af_broker_t *self, xacct_job_t *job, const char *const *accounts, size_t count, int *code)
{
    static_assert (AF_FORWARD_BATCH <= AF_MAX_CONTACTS_EVAL, "a dir_find FORWARD's tokens fit the codec's");
    sets_t sets;
    *code = s_mine (self, job, &sets);
    if (*code != AF_OK)
        return NULL;
    assert (count >= 1 && count <= AF_FORWARD_BATCH);
    for (size_t i = 0; i < count; i++)
        sets.accounts [i] = accounts [i];
    sets.naccounts = count;
    af_msg_t *request = s_forward_msg ("friends", NULL);
    size_t size;
    request->body = af_forward_sets_encode (&sets, &size);
    request->body_size = (uint32_t) size;
    return request;
}

static void
s_friend_checked (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    xacct_job_t *job = (xacct_job_t *) arg;
    if (code == AF_OK && af_forward_verdicts_check (reply->body, reply->body_size, 1) != AF_OK)
        code = AF_E_UNAVAILABLE;        //  a broker of ours answered nonsense: as no answer
    if (code == AF_OK && reply->body [0] == AF_FORWARD_ELSEWHERE)
        code = AF_E_UNAVAILABLE;        //  moved meanwhile: the node tries again
    if (code == AF_OK) {
        job->claim_friend = reply->body [0] == 1;
        job->claim_checked = true;
        code = s_claims_next (self, job);
    }
    if (code != XACCT_PENDING)
        s_resume (self, job, code);
}

//  Ask other's owner whether other and me are friends
static int
s_friends_forward (af_broker_t *self, xacct_job_t *job, const char *other)
{
    int code;
    af_msg_t *request = s_friends_request (self, job, &other, 1, &code);
    if (!request)
        return code;
    code = broker_forward (self, broker_shard_of (self, other), &request, false, s_friend_checked, job);
    return code == AF_OK? XACCT_PENDING: code;
}

//  Each claim in turn (not me), stopping at a friend
static int
s_claims_next (af_broker_t *self, xacct_job_t *job)
{
    while (job->claim < job->nclaims && !job->friends) {
        const char *account = job->claims [job->claim];
        bool is_friend = false;
        if (streq (account, job->me)) {
            job->claim++;
            continue;
        }
        if (job->claim_checked) {
            is_friend = job->claim_friend;
            job->claim_checked = false;
        }
        else
        if (s_here (self, account, NULL)) {
            int code = s_friends_here (self, job->me, account, &is_friend);
            if (code != AF_OK)
                return code;
        }
        else
            return s_friends_forward (self, job, account);
        if (!job->found || is_friend) {
            snprintf (job->other, sizeof job->other, "%s", account);
            job->found = true;
            job->friends = is_friend;
        }
        job->claim++;
    }
    return AF_OK;
}

static void
s_dir_found (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    xacct_job_t *job = (xacct_job_t *) arg;
    af_forward_found_t *found = (af_forward_found_t *) zmalloc (sizeof (af_forward_found_t));
    assert (found);
    if (code == AF_OK && (af_forward_found_decode (reply->body, reply->body_size, found, 1) != AF_OK
                      ||  found->elsewhere))
        code = AF_E_UNAVAILABLE;        //  nonsense, or the bucket moved meanwhile: as no answer
    if (code == AF_OK) {
        job->nclaims = (uint32_t) found->count;
        memcpy (job->claims, found->names, sizeof found->names);
        code = s_claims_next (self, job);
    }
    free (found);
    if (code != XACCT_PENDING)
        s_resume (self, job, code);
}

static int
s_dir_find (af_broker_t *self, const uint8_t *token, char claims [][AF_MAX_ACCOUNT + 1], uint32_t *count)
{
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    size_t found = 0;
    int code = af_friends_dir_find (self->friends, txn, token, claims, AF_FORWARD_CLAIMS, &found);
    af_store_abort (s_store (self), &txn);
    *count = (uint32_t) found;
    return code;
}

int
xacct_lookup (af_broker_t *self, xacct_job_t *job, const uint8_t *token)
{
    job->found = job->friends = job->claim_checked = false;
    *job->other = 0;
    job->nclaims = job->claim = 0;
    memcpy (job->token, token, TOKEN);
    char bucket [10];
    af_friends_dir_bucket (token, bucket);
    uint32_t shard;
    if (s_here (self, bucket, &shard)) {
        int code = s_dir_find (self, token, job->claims, &job->nclaims);
        return code == AF_OK? s_claims_next (self, job): code;
    }
    af_msg_t *request = s_forward_msg ("dir_find", NULL);
    af_msg_set_element_count (request, 1);
    memcpy (request->elements [0], token, TOKEN);
    int code = broker_forward (self, shard, &request, false, s_dir_found, job);
    return code == AF_OK? XACCT_PENDING: code;
}

//  --------------------------------------------------------------------------
//  xacct_friends: FRIENDS, batched
//
//  Two phases, each in rounds: the book's tokens whose claims are not
//  known yet (then the accounts claimed whose friendship is not), those
//  served here answered from our store at once, the others grouped by the
//  broker our map names as the owner of their shard, each group in
//  chunks of AF_FORWARD_BATCH, one chunk in flight per owner, owners in
//  parallel. An owner answers AF_FORWARD_ELSEWHERE for an item whose
//  shard it does not serve (a move): the next round asks the owner our
//  map names then, AF_CLUSTER_FORWARD_TRIES rounds at most.

#define BATCH_UNKNOWN   0xFE        //  no answer for the item yet

enum { BATCH_DIRECTORY, BATCH_FRIENDSHIP };

typedef struct {
    char owner [AF_CLUSTER_ID + 1];
    uint32_t *items;                //  tokens' or accounts' indices
    uint32_t count, next;
} lane_t;

struct _xacct_batch_t {
    uint8_t *nclaims;               //  per book token: accounts claiming it (not me), or BATCH_UNKNOWN
    uint32_t (*claims) [AF_FORWARD_CLAIMS];     //  ... their indices
    zhashx_t *index;                //  account -> its index + 1
    char (*names) [AF_MAX_ACCOUNT + 1];
    uint8_t *verdicts;              //  per account: 0, 1 (friends), or BATCH_UNKNOWN
    size_t naccounts, room;
    int phase, round;
    zlistx_t *lanes;                //  this round's lane_t
    uint32_t waiting;               //  FORWARDs in flight
    int worst;                      //  the first failure among them
};

typedef struct {
    xacct_job_t *job;
    lane_t *lane;
    uint32_t first, count;          //  its items: lane->items [first .. first + count)
} chunk_t;

static void
s_lane_free (void **item)
{
    lane_t *lane = (lane_t *) *item;
    if (lane) {
        free (lane->items);
        free (lane);
        *item = NULL;
    }
}

static void
s_batch_destroy (xacct_batch_t **batch_p)
{
    xacct_batch_t *batch = *batch_p;
    if (batch) {
        free (batch->nclaims);
        free (batch->claims);
        zhashx_destroy (&batch->index);
        free (batch->names);
        free (batch->verdicts);
        zlistx_destroy (&batch->lanes);
        free (batch);
        *batch_p = NULL;
    }
}

//  One claim of token i (not me): the account's index, added once
static void
s_batch_claim (xacct_job_t *job, size_t i, const char *account)
{
    xacct_batch_t *batch = job->batch;
    if (streq (account, job->me) || batch->nclaims [i] >= AF_FORWARD_CLAIMS)
        return;
    size_t index = (size_t) zhashx_lookup (batch->index, account);
    if (!index) {
        if (batch->naccounts == batch->room) {
            batch->room = batch->room? 2 * batch->room: 64;
            batch->names = realloc (batch->names, batch->room * sizeof batch->names [0]);
            batch->verdicts = (uint8_t *) realloc (batch->verdicts, batch->room);
            assert (batch->names && batch->verdicts);
        }
        snprintf (batch->names [batch->naccounts], AF_MAX_ACCOUNT + 1, "%s", account);
        batch->verdicts [batch->naccounts] = BATCH_UNKNOWN;
        index = ++batch->naccounts;
        zhashx_insert (batch->index, account, (void *) index);
    }
    batch->claims [i][batch->nclaims [i]++] = (uint32_t) (index - 1);
}

static int s_batch_run (af_broker_t *self, xacct_job_t *job);
static int s_lane_send (af_broker_t *self, xacct_job_t *job, lane_t *lane);

//  A chunk's answer: its items known (or left for the next round)
static int
s_chunk_take (xacct_job_t *job, chunk_t *chunk, af_msg_t *reply)
{
    xacct_batch_t *batch = job->batch;
    const uint32_t *items = chunk->lane->items + chunk->first;
    if (batch->phase == BATCH_FRIENDSHIP) {
        if (af_forward_verdicts_check (reply->body, reply->body_size, chunk->count) != AF_OK)
            return AF_E_UNAVAILABLE;
        for (uint32_t i = 0; i < chunk->count; i++)
            if (reply->body [i] != AF_FORWARD_ELSEWHERE)
                batch->verdicts [items [i]] = reply->body [i];
        return AF_OK;
    }
    af_forward_found_t *found = (af_forward_found_t *) calloc (chunk->count, sizeof (af_forward_found_t));
    assert (found);
    int code = af_forward_found_decode (reply->body, reply->body_size, found, chunk->count) == AF_OK?
               AF_OK: AF_E_UNAVAILABLE;
    for (uint32_t i = 0; code == AF_OK && i < chunk->count; i++) {
        if (found [i].elsewhere)
            continue;
        batch->nclaims [items [i]] = 0;
        for (size_t n = 0; n < found [i].count; n++)
            s_batch_claim (job, items [i], found [i].names [n]);
    }
    free (found);
    return code;
}

static void
s_chunk_done (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    chunk_t *chunk = (chunk_t *) arg;
    xacct_job_t *job = chunk->job;
    xacct_batch_t *batch = job->batch;
    lane_t *lane = chunk->lane;
    batch->waiting--;
    if (code == AF_OK)
        code = s_chunk_take (job, chunk, reply);
    if (code != AF_OK && self->config.verbose)
        zsys_debug ("broker: FRIENDS of '%s': a batch of %u to %s answered %d (%s)", job->me, chunk->count,
                    lane->owner, code, reply? reply->reason: "no answer");
    free (chunk);
    if (code != AF_OK && batch->worst == AF_OK)
        batch->worst = code;
    if (batch->worst == AF_OK && lane->next < lane->count) {
        code = s_lane_send (self, job, lane);
        if (code != AF_OK)
            batch->worst = code;
    }
    if (batch->waiting)
        return;                         //  the others' answers end the round
    zlistx_purge (batch->lanes);
    code = batch->worst != AF_OK? batch->worst: s_batch_run (self, job);
    if (code != XACCT_PENDING)
        s_resume (self, job, code);
}

//  The lane's next chunk to its owner. AF_OK (in flight) or an error
static int
s_lane_send (af_broker_t *self, xacct_job_t *job, lane_t *lane)
{
    xacct_batch_t *batch = job->batch;
    uint32_t count = lane->count - lane->next < AF_FORWARD_BATCH? lane->count - lane->next: AF_FORWARD_BATCH;
    const uint32_t *items = lane->items + lane->next;
    af_msg_t *request;
    int code = AF_OK;
    //  The FORWARD names the shard of its first item (an owner of every
    //  item's, as our map has it)
    uint32_t shard;
    char bucket [10];
    if (batch->phase == BATCH_DIRECTORY) {
        af_friends_dir_bucket (job->book [items [0]], bucket);
        shard = broker_shard_of (self, bucket);
        request = s_forward_msg ("dir_find", NULL);
        af_msg_set_element_count (request, count);
        for (uint32_t i = 0; i < count; i++)
            memcpy (request->elements [i], job->book [items [i]], TOKEN);
    }
    else {
        const char *accounts [AF_FORWARD_BATCH];
        shard = broker_shard_of (self, batch->names [items [0]]);
        for (uint32_t i = 0; i < count; i++)
            accounts [i] = batch->names [items [i]];
        request = s_friends_request (self, job, accounts, count, &code);
        if (!request)
            return code;
    }
    chunk_t *chunk = (chunk_t *) zmalloc (sizeof (chunk_t));
    assert (chunk);
    *chunk = (chunk_t) { job, lane, lane->next, count };
    lane->next += count;
    code = broker_forward (self, shard, &request, false, s_chunk_done, chunk);
    if (code != AF_OK) {
        free (chunk);
        return code;
    }
    batch->waiting++;
    return AF_OK;
}

//  Item i of this phase (token or account) to the lane of its owner
static int
s_lane_add (af_broker_t *self, xacct_batch_t *batch, uint32_t shard, uint32_t i, size_t items)
{
    const char *owner = self->shards [shard].owner;
    if (!*owner || streq (owner, self->id))
        return AF_E_UNAVAILABLE;        //  no owner now (or we are, but not serving it: leaving)
    lane_t *lane;
    for (lane = (lane_t *) zlistx_first (batch->lanes); lane; lane = (lane_t *) zlistx_next (batch->lanes))
        if (streq (lane->owner, owner))
            break;
    if (!lane) {
        lane = (lane_t *) zmalloc (sizeof (lane_t));
        assert (lane);
        snprintf (lane->owner, sizeof lane->owner, "%s", owner);
        lane->items = (uint32_t *) malloc (items * sizeof (uint32_t));
        assert (lane->items);
        zlistx_add_end (batch->lanes, lane);
    }
    lane->items [lane->count++] = i;
    return AF_OK;
}

//  A round of the directory phase: the buckets served here at once, the others into lanes
static int
s_round_directory (af_broker_t *self, xacct_job_t *job)
{
    xacct_batch_t *batch = job->batch;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    int code = AF_OK;
    for (uint32_t i = 0; code == AF_OK && i < job->nbook; i++) {
        if (batch->nclaims [i] != BATCH_UNKNOWN)
            continue;
        char bucket [10], claims [AF_FORWARD_CLAIMS][AF_MAX_ACCOUNT + 1];
        af_friends_dir_bucket (job->book [i], bucket);
        uint32_t shard;
        if (!s_here (self, bucket, &shard)) {
            code = s_lane_add (self, batch, shard, i, job->nbook);
            continue;
        }
        size_t count = 0;
        code = af_friends_dir_find (self->friends, txn, job->book [i], claims, AF_FORWARD_CLAIMS, &count);
        batch->nclaims [i] = 0;
        for (size_t n = 0; code == AF_OK && n < count; n++)
            s_batch_claim (job, i, claims [n]);
    }
    af_store_abort (s_store (self), &txn);
    return code;
}

//  A round of the friendship phase: the accounts served here at once, the others into lanes
static int
s_round_friendship (af_broker_t *self, xacct_job_t *job)
{
    xacct_batch_t *batch = job->batch;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    sets_t mine, other;
    int code = s_sets_read (self, txn, job->me, &mine);
    for (uint32_t i = 0; code == AF_OK && i < batch->naccounts; i++) {
        if (batch->verdicts [i] != BATCH_UNKNOWN)
            continue;
        uint32_t shard;
        if (!s_here (self, batch->names [i], &shard))
            code = s_lane_add (self, batch, shard, i, batch->naccounts);
        else
        if ((code = s_sets_read (self, txn, batch->names [i], &other)) == AF_OK)
            batch->verdicts [i] = s_friends_sets (self, &mine, &other);
    }
    af_store_abort (s_store (self), &txn);
    return code;
}

//  Rounds until every item is known or a round is in flight: AF_OK (done),
//  XACCT_PENDING, or an error (nothing in flight)
static int
s_batch_run (af_broker_t *self, xacct_job_t *job)
{
    xacct_batch_t *batch = job->batch;
    for (;;) {
        int code = batch->phase == BATCH_DIRECTORY? s_round_directory (self, job): s_round_friendship (self, job);
        if (code != AF_OK || (zlistx_size (batch->lanes) && ++batch->round > AF_CLUSTER_FORWARD_TRIES)) {
            zlistx_purge (batch->lanes);
            return code != AF_OK? code: AF_E_UNAVAILABLE;
        }
        if (zlistx_size (batch->lanes)) {
            for (lane_t *lane = (lane_t *) zlistx_first (batch->lanes); lane && code == AF_OK;
                 lane = (lane_t *) zlistx_next (batch->lanes))
                code = s_lane_send (self, job, lane);
            if (code != AF_OK)
                batch->worst = code;    //  those sent end the round, with it
            if (batch->waiting)
                return XACCT_PENDING;
            zlistx_purge (batch->lanes);
            return code;
        }
        //  Every item of the phase known
        if (batch->phase == BATCH_DIRECTORY) {
            batch->phase = BATCH_FRIENDSHIP;
            batch->round = 0;
            continue;
        }
        //  A token is a friend's when one of the accounts claiming it is
        job->befriended = (uint8_t *) zmalloc (job->nbook + 1);
        assert (job->befriended);
        for (uint32_t i = 0; i < job->nbook; i++)
            for (uint32_t n = 0; n < batch->nclaims [i]; n++)
                job->befriended [i] |= batch->verdicts [batch->claims [i][n]] == 1;
        return AF_OK;
    }
}

int
xacct_friends (af_broker_t *self, xacct_job_t *job)
{
    assert (!job->batch);
    xacct_batch_t *batch = job->batch = (xacct_batch_t *) zmalloc (sizeof (xacct_batch_t));
    assert (batch);
    batch->nclaims = (uint8_t *) malloc (job->nbook + 1);
    batch->claims = malloc ((job->nbook + 1) * sizeof batch->claims [0]);
    assert (batch->nclaims && batch->claims);
    memset (batch->nclaims, BATCH_UNKNOWN, job->nbook + 1);
    batch->index = zhashx_new ();
    batch->lanes = zlistx_new ();
    zlistx_set_destructor (batch->lanes, s_lane_free);
    batch->worst = AF_OK;
    return s_batch_run (self, job);
}

//  --------------------------------------------------------------------------
//  xacct_shared_apps

typedef struct {
    af_broker_t *broker;
    MDB_txn *txn;
    const char *account;
    af_share_t min;
    const char *program;
    af_msg_t *list;
    int code;
} shared_t;

//  One installed app of the account: listed once, if shared enough
static int
s_shared_app (const char *device_id, const af_msg_t *app, void *arg)
{
    (void) device_id;
    shared_t *shared = (shared_t *) arg;
    af_msg_t *list = shared->list;
    if (shared->program && !streq (app->program, shared->program))
        return 0;
    for (uint32_t i = 0; i < list->app_count; i++)
        if (streq (list->apps [i].program, app->program))
            return 0;
    af_share_t share;
    shared->code = af_friends_share_get (shared->broker->friends, shared->txn, shared->account, app->program, &share);
    if (shared->code != AF_OK)
        return -1;
    if (share < shared->min || list->app_count >= AF_MAX_SHARES)
        return 0;
    af_app_t *entry = &list->apps [list->app_count++];
    memset (entry, 0, sizeof *entry);
    snprintf (entry->program, sizeof entry->program, "%s", app->program);
    snprintf (entry->version_name, sizeof entry->version_name, "%s", app->version_name);
    entry->version_code = app->version_code;
    snprintf (entry->share, sizeof entry->share, "%s", af_share_name (share));
    return 0;
}

//  The apps from our store, into list (emptied first)
static int
s_shared_here (af_broker_t *self, const char *other, af_share_t min, const char *program, af_msg_t *list)
{
    af_msg_set_app_count (list, AF_MAX_SHARES);
    list->app_count = 0;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    shared_t shared = { self, txn, other, min, program, list, AF_OK };
    int code = af_lists_each (self->lists, other, NULL, s_shared_app, &shared);
    af_store_abort (s_store (self), &txn);
    return code != AF_OK? code: shared.code;
}

static void
s_apps_got (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    xacct_job_t *job = (xacct_job_t *) arg;
    if (code == AF_OK) {
        //  The reply's apps become the job's list
        af_app_t *apps = job->list->apps;
        job->list->apps = reply->apps;
        job->list->app_count = reply->app_count;
        reply->apps = apps;
        reply->app_count = 0;
    }
    s_resume (self, job, code);
}

int
xacct_shared_apps (af_broker_t *self, xacct_job_t *job, const char *other, af_share_t min, const char *program)
{
    if (!job->list)
        job->list = af_msg_new (AF_MSG_FRIEND_APP_LIST);
    uint32_t shard;
    if (s_here (self, other, &shard))
        return s_shared_here (self, other, min, program, job->list);
    af_msg_t *request = s_forward_msg ("apps", other);
    snprintf (request->state, sizeof request->state, "%s", af_share_name (min));
    if (program)
        snprintf (request->program, sizeof request->program, "%s", program);
    int code = broker_forward (self, shard, &request, false, s_apps_got, job);
    return code == AF_OK? XACCT_PENDING: code;
}

//  --------------------------------------------------------------------------
//  xacct_recommend

//  Does to refuse recommendations from a sender with these own numbers?
static int
s_refuses (af_broker_t *self, MDB_txn *txn, const char *to, const af_token_t *own, size_t nown, bool *refused)
{
    bool all;
    int code = af_friends_refuse_all (self->friends, txn, to, &all);
    const af_token_t *refusals = NULL;
    size_t nrefusals = 0;
    if (code == AF_OK && !all)
        code = af_friends_set_get (self->friends, txn, to, AF_SET_REFUSED, &refusals, &nrefusals);
    *refused = code == AF_OK && (all || af_tokens_common (refusals, nrefusals, own, nown, 1) > 0);
    return code;
}

//  The note into every outbox of to, unless refused; in one transaction,
//  with the intent (if any) recorded as applied in it. A resent intent
//  gets its first answer. (program: the intent's; the note names it.)
int
xacct_recommend_apply (af_broker_t *self, const char *to, const char *program, const uint8_t *intent,
                       const void *note, size_t size, bool *refused)
{
    (void) program;
    *refused = false;
    char err [AF_MAX_REASON + 1];
    af_msg_t *decoded = NULL;
    if (af_msg_decode (note, size, &decoded, err, sizeof err, NULL, NULL) != AF_OK
    ||  decoded->id != AF_MSG_RECOMMENDATION) {
        af_msg_destroy (&decoded);
        return AF_E_MALFORMED;
    }
    af_device_t *devices = NULL;
    uint32_t count = 0;
    if (af_registry_devices (self->registry, to, &devices, &count) != AF_OK) {
        af_msg_destroy (&decoded);
        return AF_E_INTERNAL;
    }
    MDB_txn *txn = NULL;
    bool seen = false;
    int code = af_store_begin (s_store (self), true, &txn)? AF_E_INTERNAL: AF_OK;
    if (code == AF_OK && intent)
        code = af_friends_intent_applied (self->friends, txn, to, intent, &seen, refused);
    if (code == AF_OK && seen)
        zsys_info ("broker: a recommendation to '%s' whose intent was applied before: answered as then, "
                   "nothing queued", to);
    if (code == AF_OK && !seen)
        code = s_refuses (self, txn, to, (const af_token_t *) decoded->elements, decoded->element_count, refused);
    for (uint32_t i = 0; code == AF_OK && !seen && !*refused && i < count; i++)
        code = af_outbox_put_txn (self->outbox, txn, to, devices [i].id, note, size, NULL);
    if (code == AF_OK && !seen && intent)
        code = af_friends_intent_apply (self->friends, txn, to, intent, *refused, (uint64_t) zclock_time ());
    if (code == AF_OK && af_store_commit (s_store (self), &txn))
        code = AF_E_INTERNAL;
    af_store_abort (s_store (self), &txn);
    for (uint32_t i = 0; code == AF_OK && !seen && !*refused && i < count; i++)
        broker_deliver (self, broker_online (self, to, devices [i].id));
    free (devices);
    af_msg_destroy (&decoded);
    return code;
}

static void
s_recommended (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    xacct_job_t *job = (xacct_job_t *) arg;
    if (xintent_final (AF_XINTENT_RECOMMEND, code)) {
        //  Answered for good (a full queue is an answer: nothing was queued)
        job->refused = code == AF_OK && reply->yes;
        xintent_resolved (self, job->me, job->intent, false, 0, false);
    }
    //  No answer: the intent stays, sent again until its owner answers;
    //  the node's retry finds it and sends the same intent (applied once)
    s_resume (self, job, code);
}

//  An unresolved intent of from for (to, program): the node's retry
typedef struct {
    const char *to, *program;
    uint8_t *id;
    bool found, answered, refused;
    int code;
} find_t;

static int
s_intent_match (const af_xintent_t *intent, void *arg)
{
    find_t *find = (find_t *) arg;
    if (intent->kind == AF_XINTENT_RECOMMEND && streq (intent->to, find->to) && streq (intent->program, find->program)) {
        memcpy (find->id, intent->id, AF_ID_SIZE);
        find->found = true;
        find->answered = intent->answered;
        find->code = intent->code;
        find->refused = intent->refused;
        return 1;
    }
    return 0;
}

int
xacct_recommend (af_broker_t *self, xacct_job_t *job, const char *to, zframe_t *frame)
{
    job->refused = false;
    bool here = s_here (self, to, NULL);
    if (here && !self->cluster)
        return xacct_recommend_apply (self, to, job->program, NULL, zframe_data (frame), zframe_size (frame),
                                      &job->refused);
    //  In a cluster: the node's retry of a recommendation it was answered
    //  503 for finds its intent. Answered meanwhile by a resend: that
    //  answer. Still pending: the same intent again (to wherever the
    //  recipient is now, so applied once). Otherwise, to another broker, a
    //  new intent in our shard's log first (so a follower that takes over
    //  has it); the FORWARD goes after our commit
    MDB_txn *txn = NULL;
    find_t find = { to, job->program, job->intent, false, false, false, AF_OK };
    int code = af_store_begin (s_store (self), true, &txn)? AF_E_INTERNAL:
               af_friends_intent_pending_each (self->friends, txn, job->me, s_intent_match, &find);
    if (code == AF_OK && find.answered)
        code = af_friends_intent_pending_del (self->friends, txn, job->me, job->intent);
    if (code == AF_OK && !find.found && !here) {
        randombytes_buf (job->intent, AF_ID_SIZE);
        code = af_friends_intent_pending_put (self->friends, txn, job->me, AF_XINTENT_RECOMMEND, job->intent, to,
                                              job->program, (uint64_t) zclock_time (), zframe_data (frame),
                                              zframe_size (frame));
    }
    if (code == AF_OK && af_store_commit (s_store (self), &txn))
        code = AF_E_INTERNAL;
    af_store_abort (s_store (self), &txn);
    if (code != AF_OK)
        return code;
    if (find.answered) {
        job->refused = find.code == 0 && find.refused;
        return find.code == 0? AF_OK: find.code == AF_E_QUOTA? AF_E_QUOTA: AF_E_INTERNAL;
    }
    if (here) {
        code = xacct_recommend_apply (self, to, job->program, find.found? job->intent: NULL, zframe_data (frame),
                                      zframe_size (frame), &job->refused);
        if (find.found && xintent_final (AF_XINTENT_RECOMMEND, code))
            xintent_resolved (self, job->me, job->intent, false, 0, false);
        return code;
    }
    code = xintent_forward (self, AF_XINTENT_RECOMMEND, job->intent, to, job->program, zframe_data (frame),
                            zframe_size (frame), true, s_recommended, job);
    return code == AF_OK? XACCT_PENDING: code;
}

//  --------------------------------------------------------------------------
//  The directory of own numbers

int
xacct_directory_local (af_broker_t *self, MDB_txn *txn, const char *account, const af_token_t *old, size_t nold,
                       const af_token_t *new_tokens, size_t nnew)
{
    int code = AF_OK;
    for (size_t i = 0; i < nold && code == AF_OK; i++) {
        char bucket [10];
        af_friends_dir_bucket (old [i], bucket);
        if (s_here (self, bucket, NULL) && !af_tokens_has (new_tokens, nnew, old [i]))
            code = af_friends_dir_set (self->friends, txn, old [i], account, false);
    }
    for (size_t i = 0; i < nnew && code == AF_OK; i++) {
        char bucket [10];
        af_friends_dir_bucket (new_tokens [i], bucket);
        if (s_here (self, bucket, NULL))
            code = af_friends_dir_set (self->friends, txn, new_tokens [i], account, true);
    }
    return code;
}

static void
s_dir_set (af_broker_t *self, void *arg, int code, af_msg_t *reply)
{
    (void) reply;
    xacct_job_t *job = (xacct_job_t *) arg;
    if (code != AF_OK && job->worst == AF_OK)
        job->worst = code;
    if (--job->waiting == 0)
        s_resume (self, job, job->worst);
}

//  One claim to the bucket's owner, if it is not ours
static int
s_dir_forward (af_broker_t *self, xacct_job_t *job, const uint8_t *token, bool on)
{
    char bucket [10];
    af_friends_dir_bucket (token, bucket);
    uint32_t shard;
    if (s_here (self, bucket, &shard))
        return AF_OK;
    af_msg_t *request = s_forward_msg ("dir_set", job->me);
    snprintf (request->state, sizeof request->state, "%s", on? "on": "off");
    af_msg_set_element_count (request, 1);
    memcpy (request->elements [0], token, TOKEN);
    int code = broker_forward (self, shard, &request, false, s_dir_set, job);
    if (code == AF_OK)
        job->waiting++;
    return code;
}

int
xacct_directory_remote (af_broker_t *self, xacct_job_t *job)
{
    job->waiting = 0;
    job->worst = AF_OK;
    int code = AF_OK;
    for (size_t i = 0; i < job->nold && code == AF_OK; i++)
        if (!af_tokens_has (job->new_own, job->nnew, job->old_own [i]))
            code = s_dir_forward (self, job, job->old_own [i], false);
    for (size_t i = 0; i < job->nnew && code == AF_OK; i++)
        code = s_dir_forward (self, job, job->new_own [i], true);
    if (code != AF_OK && job->waiting) {
        job->worst = code;              //  the answers of those sent end the step
        return XACCT_PENDING;
    }
    return code != AF_OK? code: job->waiting? XACCT_PENDING: AF_OK;
}

//  --------------------------------------------------------------------------
//  The owner's side of FORWARD

//  Whether we answer for shard now: its owner, not handing it off, our lease good
static bool
s_serving (af_broker_t *self, uint32_t shard)
{
    shard_t *state = &self->shards [shard];
    return state->role == SHARD_OWNER && !state->leaving && zclock_mono () < self->lease_until;
}

//  dir_find: per token, its claims, or elsewhere (a bucket we do not serve)
static int
s_serve_dir_find (af_broker_t *self, af_msg_t *msg, af_msg_t *reply)
{
    char bucket [10];
    if (msg->element_count < 1 || msg->element_count > AF_FORWARD_BATCH)
        return AF_E_MALFORMED;
    af_friends_dir_bucket (msg->elements [0], bucket);
    if (broker_shard_of (self, bucket) != msg->shard)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    af_forward_found_t *found = (af_forward_found_t *) calloc (msg->element_count, sizeof (af_forward_found_t));
    assert (found);
    int code = AF_OK;
    for (uint32_t i = 0; code == AF_OK && i < msg->element_count; i++) {
        af_friends_dir_bucket (msg->elements [i], bucket);
        found [i].elsewhere = !s_serving (self, broker_shard_of (self, bucket));
        if (!found [i].elsewhere)
            code = af_friends_dir_find (self->friends, txn, msg->elements [i], found [i].names, AF_FORWARD_CLAIMS,
                                        &found [i].count);
    }
    af_store_abort (s_store (self), &txn);
    size_t size;
    if (code == AF_OK) {
        reply->body = af_forward_found_encode (found, msg->element_count, &size);
        reply->body_size = (uint32_t) size;
    }
    free (found);
    return code;
}

//  friends: per account asked, whether it and the asker are friends, or
//  elsewhere (an account of a shard we do not serve)
static int
s_serve_friends (af_broker_t *self, af_msg_t *msg, af_msg_t *reply)
{
    sets_t asker, other;
    if (af_forward_sets_decode (msg->body, msg->body_size, &asker) != AF_OK
    ||  broker_shard_of (self, asker.accounts [0]) != msg->shard)
        return AF_E_MALFORMED;
    MDB_txn *txn = NULL;
    if (af_store_begin (s_store (self), false, &txn))
        return AF_E_INTERNAL;
    uint8_t *verdicts = (uint8_t *) malloc (asker.naccounts);
    assert (verdicts);
    int code = AF_OK;
    for (size_t i = 0; code == AF_OK && i < asker.naccounts; i++) {
        verdicts [i] = AF_FORWARD_ELSEWHERE;
        if (s_serving (self, broker_shard_of (self, asker.accounts [i]))
        &&  (code = s_sets_read (self, txn, asker.accounts [i], &other)) == AF_OK)
            verdicts [i] = s_friends_sets (self, &asker, &other);
    }
    af_store_abort (s_store (self), &txn);
    if (code == AF_OK) {
        reply->body = verdicts;
        reply->body_size = (uint32_t) asker.naccounts;
    }
    else
        free (verdicts);
    return code;
}

//  An operation on our store: the reply filled; *wrote if it changed it
static int
s_serve_op (af_broker_t *self, af_msg_t *msg, af_msg_t *reply, bool *wrote)
{
    char bucket [10];
    if (streq (msg->op, "dir_find"))
        return s_serve_dir_find (self, msg, reply);
    if (streq (msg->op, "friends"))
        return s_serve_friends (self, msg, reply);
    if (streq (msg->op, "dir_set")) {
        if (!*msg->account)
            return AF_E_MALFORMED;
        bool on = streq (msg->state, "on");
        if (msg->element_count != 1 || (!on && !streq (msg->state, "off")))
            return AF_E_MALFORMED;
        af_friends_dir_bucket (msg->elements [0], bucket);
        if (broker_shard_of (self, bucket) != msg->shard)
            return AF_E_MALFORMED;
        *wrote = true;
        MDB_txn *txn = NULL;
        int code = af_store_begin (s_store (self), true, &txn)? AF_E_INTERNAL:
                   af_friends_dir_set (self->friends, txn, msg->elements [0], msg->account, on);
        if (code == AF_OK && af_store_commit (s_store (self), &txn))
            code = AF_E_INTERNAL;
        af_store_abort (s_store (self), &txn);
        return code;
    }
    //  The others name an account of the shard
    if (!*msg->account || broker_shard_of (self, msg->account) != msg->shard)
        return AF_E_MALFORMED;
    if (streq (msg->op, "apps")) {
        af_share_t min;
        if (af_share_parse (msg->state, &min) != AF_OK)
            return AF_E_MALFORMED;
        return s_shared_here (self, msg->account, min, *msg->program? msg->program: NULL, reply);
    }
    //  The writes of intents (recommend, notice): broker_intents.c
    if (xintent_op (msg->op))
        return xintent_serve (self, msg, reply, wrote);
    return AF_E_MALFORMED;
}

void
broker_xacct_serve (af_broker_t *self, const char *from, af_msg_t *msg)
{
    af_msg_t *reply = af_msg_new (AF_MSG_FORWARD_REPLY);
    reply->has_rid = msg->has_rid;
    memcpy (reply->rid, msg->rid, AF_ID_SIZE);
    reply->epoch = self->shards [msg->shard].epoch;
    bool wrote = false;
    //  Only the owner answers, while its lease is good: an asker whose map
    //  is behind is told to look again, and never gets a stale answer (and
    //  in a batch, each item of a shard it does not serve is "elsewhere")
    if (!s_serving (self, msg->shard))
        reply->code = AF_FORWARD_NOT_OWNER;
    else {
        int code = s_serve_op (self, msg, reply, &wrote);
        reply->code = code == AF_OK? 0: (uint32_t) code;
        if (code == AF_E_MALFORMED && af_loglimit_pass (self->drop_log, zclock_mono ()))
            zsys_warning ("broker: refused a malformed FORWARD %s for shard %u from %s", msg->op, msg->shard, from);
    }
    if (reply->code == AF_FORWARD_NOT_OWNER && self->config.verbose)
        zsys_debug ("broker: FORWARD %s for shard %u from %s: not its owner", msg->op, msg->shard, from);
    zframe_t *frame = af_msg_encode (reply);
    af_msg_destroy (&reply);
    //  What it wrote is answered once our followers have it, as a node's
    //  request is (held with the batch)
    if (frame)
        broker_send_peer (self, from, frame, wrote);
}
