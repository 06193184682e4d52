/*  =========================================================================
    af_hasher - Argon2id off the reactor: a small pool of hashing threads

    See af_hasher.h. Each thread is a czmq actor that takes a job pointer
    from its pipe, hashes, and sends the pointer back; the reactor owns
    every job before and after, the thread only while it hashes, so no job
    is ever touched by two threads at once. Idle threads take the oldest
    waiting job.
    =========================================================================
*/
#include "af_hasher.h"

#include <sodium.h>

typedef struct {
    bool verify;
    char password [AF_MAX_PASSWORD + 1];
    char stored [crypto_pwhash_STRBYTES];   //  verify: the stored hash
    char hash [crypto_pwhash_STRBYTES];     //  hash: the result
    int code;
    af_pwcost_t cost;
    af_hasher_fn *done;
    void *arg;
} job_t;

typedef struct {
    zactor_t *actor;
    job_t *job;                     //  the job it holds, or NULL: idle
} thread_t;

struct _af_hasher_t {
    zloop_t *loop;                  //  not ours
    thread_t *threads;
    size_t count;
    zlistx_t *waiting;              //  job_t, oldest first
    size_t max_waiting;
    af_pwcost_t cost;
};

static void
s_job_free (job_t **job_p)
{
    if (*job_p) {
        sodium_memzero ((*job_p)->password, sizeof (*job_p)->password);
        free (*job_p);
        *job_p = NULL;
    }
}

//  The thread: one job at a time, until told to stop ($TERM)
static void
s_thread (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    while (true) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        zframe_t *first = zmsg_first (msg);
        if (zframe_streq (first, "$TERM")) {
            zmsg_destroy (&msg);
            break;
        }
        job_t *job = NULL;
        if (zframe_size (first) == sizeof job)
            memcpy (&job, zframe_data (first), sizeof job);
        zmsg_destroy (&msg);
        if (!job)
            continue;
        size_t len = strlen (job->password);
        if (job->verify)
            job->code = crypto_pwhash_str_verify (job->stored, job->password, len) == 0?
                        AF_OK: AF_E_BAD_PASSWORD;
        else
            job->code = crypto_pwhash_str (job->hash, job->password, len, job->cost.opslimit,
                                           job->cost.memlimit) == 0? AF_OK: AF_E_INTERNAL;
        zsock_send (pipe, "p", job);
    }
}

//  Give the thread the oldest waiting job, if any
static void
s_feed (af_hasher_t *self, thread_t *thread)
{
    if (thread->job || !zlistx_size (self->waiting))
        return;
    thread->job = (job_t *) zlistx_detach (self->waiting, NULL);
    zsock_send (thread->actor, "p", thread->job);
}

//  A thread finished: complete its job in the reactor
static int
s_result (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    af_hasher_t *self = (af_hasher_t *) arg;
    void *pointer = NULL;
    if (zsock_recv (reader, "p", &pointer) || !pointer)
        return 0;
    for (size_t i = 0; i < self->count; i++) {
        thread_t *thread = &self->threads [i];
        if (thread->job != pointer)
            continue;
        job_t *job = thread->job;
        thread->job = NULL;
        s_feed (self, thread);
        job->done (job->arg, job->code, job->verify || job->code != AF_OK? NULL: job->hash);
        s_job_free (&job);
        break;
    }
    return 0;
}

af_hasher_t *
af_hasher_new (zloop_t *loop, size_t threads, size_t max_waiting, af_pwcost_t cost)
{
    assert (loop && threads >= 1 && threads <= 16);
    af_hasher_t *self = (af_hasher_t *) zmalloc (sizeof (af_hasher_t));
    assert (self);
    self->loop = loop;
    self->max_waiting = max_waiting;
    self->cost = cost;
    self->waiting = zlistx_new ();
    self->threads = (thread_t *) calloc (threads, sizeof (thread_t));
    assert (self->waiting && self->threads);
    for (size_t i = 0; i < threads; i++) {
        self->threads [i].actor = zactor_new (s_thread, NULL);
        if (!self->threads [i].actor) {
            af_hasher_destroy (&self);
            return NULL;
        }
        self->count++;
        zloop_reader (loop, zactor_sock (self->threads [i].actor), s_result, self);
    }
    return self;
}

void
af_hasher_destroy (af_hasher_t **self_p)
{
    assert (self_p);
    af_hasher_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        zloop_reader_end (self->loop, zactor_sock (self->threads [i].actor));
        zactor_destroy (&self->threads [i].actor);      //  waits for a running hash
        s_job_free (&self->threads [i].job);
    }
    job_t *job;
    while ((job = (job_t *) zlistx_detach (self->waiting, NULL)))
        s_job_free (&job);
    zlistx_destroy (&self->waiting);
    free (self->threads);
    free (self);
    *self_p = NULL;
}

static int
s_submit (af_hasher_t *self, job_t *job)
{
    thread_t *idle = NULL;
    for (size_t i = 0; i < self->count && !idle; i++)
        if (!self->threads [i].job)
            idle = &self->threads [i];
    if (!idle && zlistx_size (self->waiting) >= self->max_waiting) {
        s_job_free (&job);
        return AF_E_UNAVAILABLE;
    }
    zlistx_add_end (self->waiting, job);
    if (idle)
        s_feed (self, idle);
    return AF_OK;
}

static job_t *
s_job_new (af_hasher_t *self, const char *password, af_hasher_fn *done, void *arg)
{
    job_t *job = (job_t *) zmalloc (sizeof (job_t));
    assert (job);
    snprintf (job->password, sizeof job->password, "%s", password);
    job->cost = self->cost;
    job->done = done;
    job->arg = arg;
    return job;
}

int
af_hasher_hash (af_hasher_t *self, const char *password, af_hasher_fn *done, void *arg)
{
    assert (self && password && done);
    return s_submit (self, s_job_new (self, password, done, arg));
}

int
af_hasher_verify (af_hasher_t *self, const char *stored, const char *password,
                  af_hasher_fn *done, void *arg)
{
    assert (self && stored && password && done);
    job_t *job = s_job_new (self, password, done, arg);
    job->verify = true;
    snprintf (job->stored, sizeof job->stored, "%s", stored);
    return s_submit (self, job);
}

size_t
af_hasher_pending (af_hasher_t *self)
{
    assert (self);
    size_t pending = zlistx_size (self->waiting);
    for (size_t i = 0; i < self->count; i++)
        pending += self->threads [i].job != NULL;
    return pending;
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    int done;
    int want;                       //  the loop ends when done reaches it
    int ok, bad;
    char hash [crypto_pwhash_STRBYTES];
} seen_t;

static void
s_test_done (void *arg, int code, const char *hash)
{
    seen_t *seen = (seen_t *) arg;
    seen->done++;
    seen->ok += code == AF_OK;
    seen->bad += code == AF_E_BAD_PASSWORD;
    if (hash)
        snprintf (seen->hash, sizeof seen->hash, "%s", hash);
}

static int
s_test_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    seen_t *seen = (seen_t *) arg;
    return seen->done >= seen->want? -1: 0;     //  -1 ends the loop
}

void
af_hasher_test (bool verbose)
{
    if (verbose)
        printf (" * af_hasher: ");
    zloop_t *loop = zloop_new ();
    af_pwcost_t cost = { crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN };
    af_hasher_t *self = af_hasher_new (loop, 2, 1, cost);
    assert (self);
    seen_t seen = { .want = 1 };
    zloop_timer (loop, 5, 0, s_test_tick, &seen);
    //  A hash, then checks against it, right and wrong, off this thread
    assert (af_hasher_hash (self, "correct horse", s_test_done, &seen) == AF_OK);
    zloop_start (loop);
    assert (seen.ok == 1 && crypto_pwhash_str_verify (seen.hash, "correct horse", 13) == 0);
    char stored [crypto_pwhash_STRBYTES];
    snprintf (stored, sizeof stored, "%s", seen.hash);
    assert (af_hasher_verify (self, stored, "correct horse", s_test_done, &seen) == AF_OK);
    assert (af_hasher_verify (self, stored, "wrong horse", s_test_done, &seen) == AF_OK);
    //  Two threads busy and one job waiting: the next is refused
    assert (af_hasher_pending (self) == 2);
    assert (af_hasher_verify (self, stored, "x", s_test_done, &seen) == AF_OK);
    assert (af_hasher_verify (self, stored, "y", s_test_done, &seen) == AF_E_UNAVAILABLE);
    assert (af_hasher_pending (self) == 3);
    seen.want = 4;
    zloop_start (loop);
    assert (seen.ok == 2 && seen.bad == 2 && af_hasher_pending (self) == 0);
    //  A job still waiting or running is dropped at destruction
    assert (af_hasher_hash (self, "another one", s_test_done, &seen) == AF_OK);
    af_hasher_destroy (&self);
    assert (seen.done == 4);
    zloop_destroy (&loop);
    if (verbose)
        printf ("OK\n");
}
