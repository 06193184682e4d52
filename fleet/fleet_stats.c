/*  =========================================================================
    fleet_stats - what the fleet saw, printed

    Counted as it happens, at no cost beyond an increment: requests sent
    and answered per kind, each answer's latency (fleet_hist), every
    ERROR by request and code, and what the broker did that it should
    not have ("unexpected": the first 20 are printed with the device and
    what was wrong, all are counted and fail the run). A line every
    --report-every ms says where the run is; the summary at the end has
    the latency percentiles per request and the errors by code name,
    which of them are expected (retried with back-off, as a node does)
    and which are not, and the final line.
    =========================================================================
*/
#include "fleet_int.h"

#include <stdarg.h>
#include <sys/resource.h>

static const char *s_cmd_names [FC_COUNT] = {
    [FC_PING] = "PING", [FC_REGISTER] = "REGISTER", [FC_LOGIN_PW] = "LOGIN password", [FC_LOGIN_KEY] = "LOGIN key",
    [FC_LIST] = "LIST", [FC_REPORT] = "REPORT", [FC_SYNC] = "SYNC", [FC_NOTIFY] = "NOTIFY", [FC_PUSH] = "PUSH",
    [FC_FETCH] = "FETCH (whole file)", [FC_DONE] = "DONE", [FC_APPS] = "APPS"
};

const char *
fleet_cmd_name (fleet_cmd_t cmd)
{
    return cmd < FC_COUNT? s_cmd_names [cmd]: "?";
}

static void
s_print_unexpected (fleet_t *self, fleet_device_t *device, const char *text)
{
    if (self->unexpected_printed >= 20 && !self->config.verbose)
        return;
    self->unexpected_printed++;
    if (device)
        printf ("fleet: unexpected: device %u (%s of '%s'): %s\n", device->index,
                device->has_id? device->id: "no ID yet", self->accounts [device->account].name, text);
    else
        printf ("fleet: unexpected: %s\n", text);
    if (self->unexpected_printed == 20 && !self->config.verbose)
        printf ("fleet: (more unexpected answers are counted, not printed; --verbose prints them all)\n");
    fflush (stdout);
}

void
fleet_unexpected (fleet_t *self, fleet_device_t *device, const char *format, ...)
{
    self->stats.unexpected++;
    char text [600];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    s_print_unexpected (self, device, text);
}

void
fleet_error (fleet_t *self, fleet_device_t *device, fleet_cmd_t cmd, const af_msg_t *error, bool expected)
{
    uint32_t code = error->code;
    if (code >= FLEET_CODE_MIN && code < FLEET_CODE_MIN + FLEET_CODES)
        self->stats.codes [cmd][code - FLEET_CODE_MIN]++;
    if (expected) {
        self->stats.expected_errors++;
        return;
    }
    self->stats.unexpected++;
    char text [600];
    snprintf (text, sizeof text, "%s answered ERROR %u (%s): %s", fleet_cmd_name (cmd), code,
              af_code_name ((int) code), error->reason);
    s_print_unexpected (self, device, text);
}

static const char *s_phases [] = { "setup", "hold", "run", "drain", "verify", "done" };

static uint64_t
s_total_answered (fleet_t *self)
{
    uint64_t total = 0;
    for (int i = 0; i < FC_COUNT; i++)
        if (i != FC_PING)
            total += self->stats.answered [i];
    return total;
}

void
fleet_stats_tick (fleet_t *self, int64_t now)
{
    fleet_stats_t *stats = &self->stats;
    if (!stats->last_print)
        stats->last_print = now;
    if (now - stats->last_print < self->config.report_every_ms)
        return;
    double seconds = (double) (now - stats->last_print) / 1000;
    uint64_t logins = stats->logins_pw + stats->logins_key, answered = s_total_answered (self);
    printf ("fleet: %7.1f s %-6s online %u/%u (away %u, failed %u)  logins %.0f/s  requests answered %.0f/s  "
            "reports acked %llu  offers %llu/%llu  errors %llu expected, %llu unexpected\n",
            (double) (now - self->start) / 1000, s_phases [self->phase], self->online, self->device_count,
            self->away, self->failed, (double) (logins - stats->last_logins) / seconds,
            (double) (answered - stats->last_answered) / seconds, (unsigned long long) stats->reports_acked,
            (unsigned long long) stats->results, (unsigned long long) stats->offers_acked,
            (unsigned long long) stats->expected_errors, (unsigned long long) stats->unexpected);
    fflush (stdout);
    stats->last_logins = logins;
    stats->last_answered = answered;
    stats->last_print = now;
}

static void
s_ms (char *buf, size_t size, uint64_t us)
{
    if (us < 10000)
        snprintf (buf, size, "%.2f", (double) us / 1000);
    else
    if (us < 1000000)
        snprintf (buf, size, "%.0f", (double) us / 1000);
    else
        snprintf (buf, size, "%.1fk", (double) us / 1e6);
}

//  A cluster: REDIRECTs, moves between brokers, the time back after a
//  broker's death (SIGUSR2)
static void
s_print_cluster (fleet_t *self)
{
    fleet_stats_t *s = &self->stats;
    if (s->redirects || s->moves_closed || s->moves_unreachable)
        printf ("fleet: cluster: %llu REDIRECTs (%llu followed, %llu without an owner, %llu to a broker found "
                "silent, %llu pauses after %d in a row); moved off a broker %llu times for a closed connection, "
                "%llu for no answer on a new one, %llu for silence (%llu of the moves to the standby its LOGIN_OK "
                "named)\n",
                (unsigned long long) s->redirects, (unsigned long long) s->redirects_followed,
                (unsigned long long) s->redirects_no_owner, (unsigned long long) s->redirects_to_silent,
                (unsigned long long) s->redirect_pauses, FLEET_MAX_REDIRECTS,
                (unsigned long long) s->moves_closed, (unsigned long long) s->moves_unreachable,
                (unsigned long long) s->broker_gone, (unsigned long long) s->moves_standby);
    if (self->move_mark)
        printf ("fleet: moved back: %u of %u sessions lost after the move mark logged in again\n",
                self->displaced_back, self->displaced);
    if (s->moved_devices)
        printf ("fleet: moved back: %u sessions lost after the move mark, every device online again %.2f s "
                "after it\n", s->moved_devices, (double) s->moved_back_ms / 1000);
}

void
fleet_stats_print (fleet_t *self)
{
    fleet_stats_t *s = &self->stats;
    printf ("\nfleet: latency per request, ms (k = thousands of ms)\n");
    printf ("  %-20s %9s %9s %8s %8s %8s %8s %9s %9s\n", "request", "sent", "answered", "p50", "p90", "p99",
            "max", "abandoned", "timed out");
    for (int i = 0; i < FC_COUNT; i++) {
        if (!s->sent [i] && !s->answered [i])
            continue;
        char p50 [16], p90 [16], p99 [16], max [16];
        s_ms (p50, sizeof p50, fleet_hist_percentile (&s->latency [i], 0.5));
        s_ms (p90, sizeof p90, fleet_hist_percentile (&s->latency [i], 0.9));
        s_ms (p99, sizeof p99, fleet_hist_percentile (&s->latency [i], 0.99));
        s_ms (max, sizeof max, s->latency [i].max);
        printf ("  %-20s %9llu %9llu %8s %8s %8s %8s %9llu %9llu\n", s_cmd_names [i], (unsigned long long) s->sent [i],
                (unsigned long long) s->answered [i], p50, p90, p99, max, (unsigned long long) s->abandoned [i],
                (unsigned long long) s->timeouts [i]);
    }
    printf ("\nfleet: errors by code\n");
    bool any = false;
    for (int code = 0; code < FLEET_CODES; code++) {
        uint64_t total = 0;
        for (int i = 0; i < FC_COUNT; i++)
            total += s->codes [i][code];
        if (!total)
            continue;
        any = true;
        printf ("  %d %-18s %8llu:", code + FLEET_CODE_MIN, af_code_name (code + FLEET_CODE_MIN),
                (unsigned long long) total);
        for (int i = 0; i < FC_COUNT; i++)
            if (s->codes [i][code])
                printf (" %s %u", s_cmd_names [i], s->codes [i][code]);
        printf ("\n");
    }
    if (!any)
        printf ("  none\n");
    printf ("  %llu expected, %llu unexpected. Expected: 5xx (retried with back-off, as a node does: a broker\n"
            "  restart, a full hashing queue, a matcher not back yet), 503 to NOTIFY (the target went offline),\n"
            "  440 (the session went with a restart: logged in again), 409 to REGISTER (an earlier run).\n",
            (unsigned long long) s->expected_errors, (unsigned long long) s->unexpected);
    uint64_t timeouts = 0;
    for (int i = 0; i < FC_COUNT; i++)
        timeouts += s->timeouts [i];
    if (timeouts)
        printf ("  %llu requests timed out (no answer in %u ms while the broker answered others: it was\n"
                "  slower than a node waits; not a failure by itself, what it did is checked at the end)\n",
                (unsigned long long) timeouts, self->config.timeout_ms);
    printf ("\nfleet: connections: %llu opened (%llu failed to open), %llu sessions lost, %llu connections "
            "lost, %llu brokers silent, %llu devices vanished; %llu requests not sent (no connection)\n",
            (unsigned long long) s->connects, (unsigned long long) s->connect_failures,
            (unsigned long long) s->sessions_lost, (unsigned long long) s->links_lost,
            (unsigned long long) s->broker_gone,
            (unsigned long long) s->vanished, (unsigned long long) s->not_sent);
    s_print_cluster (self);
    if (s->back_online_devices)
        printf ("fleet: back online: %u devices logged in again %.2f s after the restart mark\n",
                s->back_online_devices, (double) s->back_online_ms / 1000);
    else
    if (self->restart_mark)
        printf ("fleet: back online: only %u devices logged in again after the restart mark\n", self->back_count);
    printf ("fleet: logins: %llu with the password, %llu by key\n", (unsigned long long) s->logins_pw,
            (unsigned long long) s->logins_key);
    printf ("fleet: reports: %llu acked, %llu applied with their answer lost, %llu lost at a login; "
            "%llu lists acked (%llu to mend); %llu not made (queue full)\n",
            (unsigned long long) s->reports_acked, (unsigned long long) s->reports_applied_unanswered,
            (unsigned long long) s->reports_lost_at_login, (unsigned long long) s->lists_acked,
            (unsigned long long) s->lists_mended, (unsigned long long) s->reports_skipped);
    printf ("fleet: actions: %llu (%llu skipped: the device was busy); %llu diffs (%llu programs; %llu checked "
            "exactly)\n", (unsigned long long) s->actions, (unsigned long long) s->actions_skipped,
            (unsigned long long) s->syncs, (unsigned long long) s->sync_programs,
            (unsigned long long) s->sync_checked);
    printf ("fleet: notifications: %llu OK, %llu to offline targets, %llu received (at most once: a broker "
            "restart may drop some); %llu 'installed' notices, %llu others\n",
            (unsigned long long) s->notify_ok, (unsigned long long) s->notify_offline,
            (unsigned long long) s->notify_received, (unsigned long long) s->installed_notices,
            (unsigned long long) s->other_notices);
    printf ("fleet: pushes: targets %llu offered, %llu queued, %llu no-fit, %llu refused, %llu failed; "
            "%llu installed (%llu chunks, %.1f MiB, %llu hash mismatches, %llu re-fetched), %llu store links;\n"
            "       %llu results (%llu repeated, %llu of pushes whose answer was lost); %llu offers repeated, "
            "%llu offers whose answer was lost; %llu progress messages\n",
            (unsigned long long) s->push_states [0], (unsigned long long) s->push_states [1],
            (unsigned long long) s->push_states [2], (unsigned long long) s->push_states [3],
            (unsigned long long) s->push_states [4], (unsigned long long) s->installs,
            (unsigned long long) s->chunks, (double) s->chunk_bytes / 1048576, (unsigned long long) s->hash_mismatches,
            (unsigned long long) s->refetches, (unsigned long long) s->store_links, (unsigned long long) s->results,
            (unsigned long long) s->results_repeated, (unsigned long long) s->results_unknown,
            (unsigned long long) s->offer_repeats, (unsigned long long) s->offers_unannounced,
            (unsigned long long) s->progress);
    printf ("fleet: install lists checked with APPS: %llu devices, %llu agree, %llu wrong entries lost, "
            "%llu duplicated, %llu devices not checked\n",
            (unsigned long long) s->verified, (unsigned long long) s->verify_agree,
            (unsigned long long) s->verify_lost, (unsigned long long) s->verify_dup,
            (unsigned long long) s->verify_unverified);
    printf ("fleet: online at the end: %u of %u devices (%u failed)\n", self->online, self->device_count,
            self->failed);
    //  What the fleet itself cost (its thread and libzmq's I/O threads),
    //  so a reader sees it did not measure itself
    struct rusage usage;
    if (getrusage (RUSAGE_SELF, &usage) == 0) {
        double user = (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
        double system = (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
        double wall = (double) (fleet_now () - self->start) / 1000;
        printf ("fleet: own cost: %.1f s user + %.1f s system in %.1f s (%.0f %% of one core), peak memory %ld MiB\n",
                user, system, wall, wall > 0? 100 * (user + system) / wall: 0, usage.ru_maxrss / 1024);
    }
}

int
fleet_stats_verdict (fleet_t *self)
{
    fleet_stats_t *s = &self->stats;
    uint64_t acked = s->reports_acked + s->offers_acked;
    uint64_t delivered = s->delivered_reports + s->delivered_offers;
    uint64_t lost = s->reports_lost_at_login + s->verify_lost + s->lost_offers;
    uint64_t duplicated = s->verify_dup + s->offers_after_done;
    printf ("%llu acked, %llu delivered, %llu lost, %llu duplicated\n", (unsigned long long) acked,
            (unsigned long long) delivered, (unsigned long long) lost, (unsigned long long) duplicated);
    bool passed = lost == 0 && duplicated == 0 && s->unexpected == 0 && self->failed == 0
               && s->verify_unverified == 0 && self->online == self->device_count;
    if (!passed)
        printf ("fleet: FAILED:%s%s%s%s%s%s\n", lost? " lost": "", duplicated? " duplicated": "",
                s->unexpected? " unexpected answers": "", self->failed? " devices gave up": "",
                s->verify_unverified? " devices not checked": "",
                self->online < self->device_count? " devices not back online": "");
    fflush (stdout);
    return passed? 0: 1;
}
