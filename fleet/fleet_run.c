/*  =========================================================================
    fleet_run - the fleet's life: set-up, the main loop, the phases

    One thread drives every device. Its loop waits in epoll (every
    device's ZMQ_FD and a signalfd), reads the devices epoll or a send
    marked ready (a FIFO ring, FLEET_BATCH messages each per turn), then
    runs the devices whose deadline has come (the min-heap), then the
    phase's own work. Nothing in it walks all devices, except once per
    phase change and, while draining, a check every 200 ms that the fleet
    is quiet.

    Phases: setup (every device connects, at --login-rate, registers or
    waits for its account, logs in with the password and sends its first
    LIST), hold (--hold seconds idle), run (--duration seconds of actions
    at --rate in all, or every --every ms per device; --vanish devices go
    and come back), drain (no new actions, the vanished come back; until
    every device is online with its reports confirmed and every accepted
    offer has its RESULT, at most --drain seconds), verify (APPS of every
    device, fleet_verify), done. SIGUSR1 marks a broker restart, so the
    time back online is measured from it; SIGUSR2 marks the death of one
    broker of a cluster, so the time until the devices it had are back
    (on the shards' new owners) is; SIGINT or SIGTERM ends the run
    phase at once (a second one ends everything).
    =========================================================================
*/
#include "fleet_int.h"

#include <math.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>

#define SIGNAL_ITEM UINT32_MAX          //  epoll data of the signalfd
#define QUIET_CHECK_MS  200

int64_t
fleet_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
fleet_usecs (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  xorshift64*: draws for the simulation, never for keys or rids' secrecy
uint64_t
fleet_random (fleet_t *self)
{
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * 2685821657736338717ULL;
}

uint32_t
fleet_uniform (fleet_t *self, uint32_t bound)
{
    return bound? (uint32_t) ((fleet_random (self) >> 32) % bound): 0;
}

uint32_t
fleet_jittered (fleet_t *self, uint32_t base)
{
    return base / 2 + fleet_uniform (self, base / 2 + 1);
}

void
fleet_ready (fleet_t *self, fleet_device_t *device)
{
    if (device->in_ready || !device->sock)
        return;
    device->in_ready = true;
    self->ready [(self->ready_head + self->ready_count) % self->device_count] = device->index;
    self->ready_count++;
}

static int64_t
s_min (int64_t a, int64_t b)
{
    return a < b? a: b;
}

void
fleet_reschedule (fleet_t *self, fleet_device_t *device)
{
    int64_t when = INT64_MAX;
    switch (device->state) {
        case DEV_OFF:
        case DEV_AWAY:
            when = device->reconnect_at;
            break;
        case DEV_FAILED:
            fleet_heap_remove (self->heap, device->index);
            return;
        case DEV_CONNECTING:
            when = device->next_ping;
            if (self->endpoint_count > 1)
                when = s_min (when, device->connected_at + FLEET_CONNECT_GIVE_UP_MS + 1);
            break;
        default: {
            int64_t ping = device->last_send + device->beat;
            when = s_min (ping > device->next_ping? ping: device->next_ping,
                          device->last_recv + (int64_t) device->beat * device->liveness + device->beat + 1);
            if (device->state == DEV_BACKOFF)
                when = s_min (when, device->retry_at);
            break;
        }
    }
    for (int i = 0; i < FLEET_REQ_SLOTS; i++)
        if (device->req [i].used && device->req [i].deadline)
            when = s_min (when, device->req [i].deadline);
    if (device->state == DEV_ONLINE) {
        if (device->report_retry_at)
            when = s_min (when, device->report_retry_at);
        when = s_min (when, fleet_jobs_deadline (device));
        if (self->phase == PHASE_RUN) {
            if (device->vanish_at)
                when = s_min (when, device->vanish_at);
            if (self->config.every_ms && device->next_action)
                when = s_min (when, device->next_action);
        }
    }
    int64_t soon = fleet_now () + 1;
    fleet_heap_set (self->heap, device->index, when < soon? soon: when);
}

//  --------------------------------------------------------------------------
//  Set-up

static void
s_push_free (void **item)
{
    free (*item);
    *item = NULL;
}

static int
s_program (fleet_t *self, const char *id)
{
    size_t index = (size_t) zhashx_lookup (self->program_index, id);
    if (index)
        return (int) index - 1;
    snprintf (self->programs [self->program_count], sizeof self->programs [0], "%s", id);
    zhashx_insert (self->program_index, id, (void *) (size_t) (self->program_count + 1));
    return (int) self->program_count++;
}

//  Accounts of account_min..account_max devices (the last one what is
//  left), and their devices: their own keypair, a real model, a first
//  install list, a time to connect. 0, or -1 with err.
static int
s_population (fleet_t *self, char *err, size_t errlen)
{
    //  Accounts of account_min..account_max devices, the last one what is left
    const fleet_config_t *config = &self->config;
    uint32_t count = self->device_count;
    int64_t now = fleet_now ();
    zcert_t *cert;
    for (uint32_t first = 0; first < count; self->account_count++) {
        fleet_account_t *account = &self->accounts [self->account_count];
        uint32_t size = config->account_min + fleet_uniform (self, config->account_max - config->account_min + 1);
        account->first = first;
        account->count = size < count - first? size: count - first;
        snprintf (account->name, sizeof account->name, "%s-%06u", config->prefix, self->account_count + 1);
        first += account->count;
    }
    //  Devices: their own keypair, a real model, a first install list
    for (uint32_t a = 0; a < self->account_count; a++) {
        fleet_account_t *account = &self->accounts [a];
        for (uint32_t i = account->first; i < account->first + account->count; i++) {
            fleet_device_t *device = &self->devices [i];
            device->index = i;
            device->account = a;
            device->registrar = i == account->first;
            //  Spread over the brokers: an account's devices together
            device->broker = (uint8_t) (a % self->endpoint_count);
            device->model = (uint16_t) fleet_uniform (self, (uint32_t) fleet_model_count);
            device->fd = -1;
            device->beat = config->heartbeat_ms;
            device->liveness = AF_HEARTBEAT_LIVENESS;
            device->next_seq = 1;
            cert = zcert_new ();
            if (!cert) {
                snprintf (err, errlen, "cannot make a CURVE keypair");
                return -1;
            }
            memcpy (device->public_key, zcert_public_key (cert), 32);
            memcpy (device->secret_key, zcert_secret_key (cert), 32);
            zcert_destroy (&cert);
            fleet_apps_initial (self, device);
            device->reconnect_at = now + (config->login_rate > 0? (int64_t) (i * 1000.0 / config->login_rate): 0);
            fleet_heap_set (self->heap, i, device->reconnect_at);
        }
    }
    return 0;
}

fleet_t *
fleet_new (const fleet_config_t *config, char *err, size_t errlen)
{
    fleet_t *self = (fleet_t *) zmalloc (sizeof (fleet_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->config.program_ids = NULL;
    self->config.push_ids = NULL;
    for (uint32_t i = 0; i < FLEET_MAX_BROKERS; i++)
        self->config.brokers [i] = NULL;
    self->rng = config->seed? config->seed: 0x2545f4914f6cdd1dULL;
    self->epoll_fd = self->signal_fd = -1;
    uint32_t count = config->devices;
    self->device_count = count;

    //  The broker's public key (a czmq certificate file, SPEC 2.3)
    zcert_t *cert = zcert_load (config->broker_key_file);
    if (!cert) {
        snprintf (err, errlen, "cannot read the broker's certificate %s", config->broker_key_file);
        goto failed;
    }
    memcpy (self->broker_key, zcert_public_key (cert), 32);
    zcert_destroy (&cert);
    for (uint32_t i = 0; i < config->broker_count; i++)
        fleet_net_endpoint (self, config->brokers [i]);

    //  libzmq: its socket limit must hold every device's DEALER
    self->ctx = zmq_ctx_new ();
    if (!self->ctx) {
        snprintf (err, errlen, "cannot make a ZeroMQ context: %s", zmq_strerror (errno));
        goto failed;
    }
    //  Twice the devices: a closed socket counts until libzmq's reaper has
    //  taken it, and devices that reconnect together open new ones first
    int limit = zmq_ctx_get (self->ctx, ZMQ_SOCKET_LIMIT);
    int need = (int) count + 16, want = 2 * (int) count + 64;
    if (need > limit) {
        snprintf (err, errlen, "this libzmq allows at most %d sockets (ZMQ_SOCKET_LIMIT); %u devices need %d",
                  limit, count, need);
        goto failed;
    }
    if (want > limit)
        want = limit;
    if (zmq_ctx_set (self->ctx, ZMQ_MAX_SOCKETS, want)
    ||  zmq_ctx_set (self->ctx, ZMQ_IO_THREADS, (int) config->io_threads)) {
        snprintf (err, errlen, "cannot set the ZeroMQ context's limits: %s", zmq_strerror (errno));
        goto failed;
    }

    //  Programs: --programs first, then what --push adds
    uint32_t room = config->program_id_count + config->push_id_count;
    self->programs = calloc (room? room: 1, sizeof self->programs [0]);
    self->push_programs = (uint32_t *) calloc (config->push_id_count + 1, sizeof (uint32_t));
    self->program_index = zhashx_new ();
    self->device_ids = zhashx_new ();
    self->pushes = zhashx_new ();
    self->devices = (fleet_device_t *) calloc (count, sizeof (fleet_device_t));
    self->accounts = (fleet_account_t *) calloc (count, sizeof (fleet_account_t));
    self->ready = (uint32_t *) calloc (count, sizeof (uint32_t));
    self->heap = fleet_heap_new (count);
    self->chunk_buffer = (uint8_t *) malloc (AF_MAX_CHUNK);
    if (!self->programs || !self->push_programs || !self->program_index || !self->device_ids || !self->pushes
    ||  !self->devices || !self->accounts || !self->ready || !self->heap || !self->chunk_buffer) {
        snprintf (err, errlen, "out of memory for %u devices", count);
        goto failed;
    }
    zhashx_set_destructor (self->pushes, s_push_free);
    for (uint32_t i = 0; i < config->program_id_count; i++)
        s_program (self, config->program_ids [i]);
    self->list_programs = self->program_count;
    for (uint32_t i = 0; i < config->push_id_count; i++)
        self->push_programs [self->push_count++] = (uint32_t) s_program (self, config->push_ids [i]);
    self->scratch_marks = (uint32_t *) calloc (self->program_count + 1, sizeof (uint32_t));
    if (!self->scratch_marks) {
        snprintf (err, errlen, "out of memory");
        goto failed;
    }

    if (s_population (self, err, errlen))
        goto failed;

    //  The PING every device sends, encoded once
    af_msg_t *ping = af_msg_new (AF_MSG_PING);
    zframe_t *frame = af_msg_encode (ping);
    af_msg_destroy (&ping);
    if (!frame || zframe_size (frame) > sizeof self->ping) {
        zframe_destroy (&frame);
        snprintf (err, errlen, "cannot encode a PING");
        goto failed;
    }
    self->ping_size = zframe_size (frame);
    memcpy (self->ping, zframe_data (frame), self->ping_size);
    zframe_destroy (&frame);

    //  epoll, and the signals as a descriptor in it
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGUSR1);
    sigaddset (&signals, SIGUSR2);
    self->signal_fd = signalfd (-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event event = { .events = EPOLLIN, .data.u32 = SIGNAL_ITEM };
    if (self->epoll_fd < 0 || self->signal_fd < 0
    ||  epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->signal_fd, &event)) {
        snprintf (err, errlen, "cannot make the epoll set: %s", strerror (errno));
        goto failed;
    }
    return self;
failed:
    fleet_destroy (&self);
    return NULL;
}

void
fleet_destroy (fleet_t **self_p)
{
    assert (self_p);
    fleet_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; self->devices && i < self->device_count; i++) {
        fleet_device_t *device = &self->devices [i];
        if (device->sock)
            zmq_close (device->sock);
        free (device->apps);
        free (device->bad);
        free (device->jobs);
        free (device->download);
    }
    if (self->ctx)
        zmq_ctx_term (self->ctx);
    if (self->epoll_fd >= 0)
        close (self->epoll_fd);
    if (self->signal_fd >= 0)
        close (self->signal_fd);
    for (uint32_t i = 0; i < self->endpoint_count; i++)
        free (self->endpoints [i]);
    zhashx_destroy (&self->program_index);
    zhashx_destroy (&self->device_ids);
    zhashx_destroy (&self->pushes);
    fleet_heap_destroy (&self->heap);
    free (self->devices);
    free (self->accounts);
    free (self->programs);
    free (self->push_programs);
    free (self->scratch_marks);
    free (self->ready);
    free (self->chunk_buffer);
    free (self->log);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Phases

static void
s_enter (fleet_t *self, fleet_phase_t phase, int64_t now)
{
    self->phase = phase;
    self->phase_start = now;
}

static void
s_run_start (fleet_t *self, int64_t now)
{
    s_enter (self, PHASE_RUN, now);
    self->last_tokens = now;
    uint32_t vanishing = 0;
    int64_t half = (int64_t) (self->config.duration_s * 500);
    for (uint32_t i = 0; i < self->device_count; i++) {
        fleet_device_t *device = &self->devices [i];
        if (self->config.vanish_percent > 0
        &&  fleet_uniform (self, 1000000) < (uint32_t) (self->config.vanish_percent * 10000)) {
            device->vanish_at = now + 1 + (half > 0? fleet_uniform (self, (uint32_t) half): 0);
            vanishing++;
        }
        if (self->config.every_ms)
            device->next_action = now + 1 + fleet_uniform (self, self->config.every_ms);
        fleet_reschedule (self, device);
    }
    printf ("fleet: run: %.0f s of actions (%s), %u devices to vanish for %u ms\n", self->config.duration_s,
            self->config.every_ms? "per device": "at a total rate", vanishing, self->config.vanish_ms);
    fflush (stdout);
}

static void
s_drain_start (fleet_t *self, int64_t now)
{
    s_enter (self, PHASE_DRAIN, now);
    for (uint32_t i = 0; i < self->device_count; i++) {
        fleet_device_t *device = &self->devices [i];
        device->vanish_at = 0;
        if (device->state == DEV_AWAY) {
            device->reconnect_at = now + fleet_uniform (self, self->config.jitter_ms + 1);
            fleet_reschedule (self, device);
        }
    }
    printf ("fleet: drain: no more actions; waiting for every device, report and offer to finish (at most %.0f s)\n",
            self->config.drain_s);
    fflush (stdout);
}

//  Every device online, nothing open that a run leaves behind
static bool
s_quiet (fleet_t *self)
{
    if (self->online + self->failed < self->device_count || self->pending_reports || self->open_jobs
    ||  self->open_offers)
        return false;
    for (uint32_t i = 0; i < self->device_count; i++) {
        fleet_device_t *device = &self->devices [i];
        if (device->state == DEV_ONLINE && (!device->caught_up || device->acting || device->listing
        ||  device->list_wanted || device->report_open))
            return false;
    }
    return true;
}

static void
s_rate (fleet_t *self, int64_t now)
{
    self->tokens += self->config.rate * (double) (now - self->last_tokens) / 1000;
    self->last_tokens = now;
    if (self->tokens > self->config.rate + 1)
        self->tokens = self->config.rate + 1;       //  no burst after a stall
    while (self->tokens >= 1) {
        self->tokens -= 1;
        fleet_device_t *device = NULL;
        for (int tries = 0; tries < 8 && !device; tries++) {
            fleet_device_t *candidate = &self->devices [fleet_uniform (self, self->device_count)];
            if (fleet_can_act (self, candidate))
                device = candidate;
        }
        if (!device) {
            self->stats.actions_skipped++;
            continue;
        }
        fleet_act (self, device);
        fleet_reschedule (self, device);
    }
}

//  After a move mark (SIGUSR2: a broker of the cluster was killed): once
//  every device could have noticed (heartbeat x (liveness + 1) after the
//  mark, the silence rule's longest wait), and every device is online
//  again, the time from the mark to the last LOGIN_OK of a device that
//  lost its session after it
static void
s_moved (fleet_t *self, int64_t now)
{
    int64_t window = (int64_t) self->config.heartbeat_ms * (AF_HEARTBEAT_LIVENESS + 1);
    if (!self->move_mark || now - self->move_mark < window || self->displaced_back < self->displaced
    ||  self->online + self->away + self->failed < self->device_count)
        return;
    self->stats.moved_devices = self->displaced;
    self->stats.moved_back_ms = self->displaced? self->displaced_last - self->move_mark: 0;
    const fleet_hist_t *back = &self->stats.moved_hist;
    printf ("fleet: moved back: %u sessions lost after the move mark, every device online again %.2f s "
            "after it (half of them by %.2f s, 90%% by %.2f s)\n", self->displaced,
            (double) self->stats.moved_back_ms / 1000, (double) fleet_hist_percentile (back, 0.5) / 1e6,
            (double) fleet_hist_percentile (back, 0.9) / 1e6);
    fflush (stdout);
    self->move_mark = 0;
}

static void
s_phase (fleet_t *self, int64_t now)
{
    s_moved (self, now);
    double in_phase = (double) (now - self->phase_start) / 1000;
    //  With --auto-sync, when every device has had its first diff
    if (self->config.auto_sync && !self->diffs_done_at && self->first_syncs + self->failed >= self->device_count) {
        self->diffs_done_at = now;
        printf ("fleet: first diffs: %u devices had their first SYNC_DIFF %.2f s after the start\n",
                self->first_syncs, (double) (now - self->start) / 1000);
        fflush (stdout);
    }
    switch (self->phase) {
        case PHASE_SETUP:
            //  Set up: every device logged in and sent its first list
            if (self->first_logins + self->failed >= self->device_count || in_phase > self->config.setup_s) {
                self->setup_done_at = now;
                double took = (double) (now - self->start) / 1000;
                printf ("fleet: setup: %u of %u devices logged in and sent their lists in %.2f s "
                        "(%.0f logins/s; %llu with the password, %llu by key; %u failed)\n", self->first_logins,
                        self->device_count, took, took > 0? self->first_logins / took: 0,
                        (unsigned long long) self->stats.logins_pw, (unsigned long long) self->stats.logins_key,
                        self->failed);
                fflush (stdout);
                if (self->config.hold_s > 0) {
                    s_enter (self, PHASE_HOLD, now);
                    printf ("fleet: hold: %.0f s idle\n", self->config.hold_s);
                    fflush (stdout);
                }
                else
                    s_run_start (self, now);
            }
            break;
        case PHASE_HOLD:
            if (in_phase >= self->config.hold_s)
                s_run_start (self, now);
            break;
        case PHASE_RUN:
            if (self->config.rate > 0)
                s_rate (self, now);
            if (in_phase >= self->config.duration_s)
                s_drain_start (self, now);
            break;
        case PHASE_DRAIN:
            if (now - self->last_quiet_check < QUIET_CHECK_MS)
                break;
            self->last_quiet_check = now;
            if (s_quiet (self) || in_phase >= self->config.drain_s) {
                printf ("fleet: verify: %s after %.1f s; asking every device's install list (APPS)\n",
                        s_quiet (self)? "quiet": "not quiet", in_phase);
                fflush (stdout);
                s_enter (self, PHASE_VERIFY, now);
                fleet_verify_start (self);
            }
            break;
        case PHASE_VERIFY:
            fleet_verify_step (self);
            //  A device that gave up cannot be asked: it counts as not checked
            if (self->verify_done + self->failed >= self->device_count || in_phase >= self->config.drain_s) {
                fleet_verify_finish (self);
                s_enter (self, PHASE_DONE, now);
            }
            break;
        default:
            break;
    }
}

static void
s_signals (fleet_t *self, int64_t now)
{
    struct signalfd_siginfo info;
    while (read (self->signal_fd, &info, sizeof info) == (ssize_t) sizeof info) {
        if (info.ssi_signo == SIGUSR2) {
            self->move_mark = now;
            self->displaced = self->displaced_back = 0;
            self->displaced_last = 0;
            for (uint32_t i = 0; i < self->device_count; i++)
                self->devices [i].displaced = false;
            printf ("fleet: %.1f s: move mark (SIGUSR2); %u of %u devices online\n",
                    (double) (now - self->start) / 1000, self->online, self->device_count);
            fflush (stdout);
            continue;
        }
        if (info.ssi_signo == SIGUSR1) {
            self->restart_mark = now;
            self->back_count = 0;
            printf ("fleet: %.1f s: restart mark (SIGUSR1); %u of %u devices online\n",
                    (double) (now - self->start) / 1000, self->online, self->device_count);
            fflush (stdout);
            continue;
        }
        self->signals++;
        if (self->signals == 1 && self->phase <= PHASE_RUN) {
            printf ("fleet: interrupted: ending the run\n");
            s_drain_start (self, now);
        }
        else {
            printf ("fleet: interrupted again: stopping\n");
            if (self->phase < PHASE_VERIFY)
                fleet_verify_start (self);
            fleet_verify_finish (self);
            s_enter (self, PHASE_DONE, now);
        }
    }
}

int
fleet_run (fleet_t *self)
{
    assert (self);
    struct epoll_event events [FLEET_EPOLL_EVENTS];
    self->start = fleet_now ();
    s_enter (self, PHASE_SETUP, self->start);
    while (self->phase != PHASE_DONE) {
        int64_t now = fleet_now ();
        int timeout = 10;                   //  the phases' own pace
        uint32_t item;
        int64_t when;
        if (fleet_heap_first (self->heap, &item, &when) && when - now < timeout)
            timeout = when > now? (int) (when - now): 0;
        if (self->ready_count)
            timeout = 0;
        int events_count = epoll_wait (self->epoll_fd, events, FLEET_EPOLL_EVENTS, timeout);
        if (events_count < 0 && errno != EINTR) {
            fprintf (stderr, "fleet: epoll_wait: %s\n", strerror (errno));
            return 1;
        }
        now = fleet_now ();
        for (int i = 0; i < events_count; i++) {
            uint32_t index = events [i].data.u32;
            if (index == SIGNAL_ITEM)
                s_signals (self, now);
            else
            if (index < self->device_count)
                fleet_ready (self, &self->devices [index]);
        }
        //  Each device that has messages, once per turn, FLEET_BATCH at most
        for (uint32_t turns = self->ready_count; turns > 0 && self->ready_count; turns--) {
            fleet_device_t *device = &self->devices [self->ready [self->ready_head]];
            self->ready_head = (self->ready_head + 1) % self->device_count;
            self->ready_count--;
            device->in_ready = false;
            if (fleet_net_drain (self, device))
                fleet_ready (self, device);
            fleet_reschedule (self, device);
        }
        now = fleet_now ();
        for (int due = 0; due < 4096 && fleet_heap_first (self->heap, &item, &when) && when <= now; due++)
            fleet_device_tick (self, &self->devices [item], now);
        s_phase (self, now);
        fleet_stats_tick (self, now);
    }
    fleet_stats_print (self);
    return fleet_stats_verdict (self);
}
