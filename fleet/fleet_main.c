/*  =========================================================================
    appferry-fleet - a simulated fleet of devices against appferry brokers

    One process, many devices, each speaking the protocol itself (SPEC),
    with its own CURVE key and a description of a real model; see
    fleet_int.h for how it is built and README "The simulated fleet" for
    how to use it. This file reads and checks the options, raises the
    process's descriptor limit and says when that limit caps the fleet,
    then runs it; the exit status is the run's verdict.

    Exit status: 0 the run passed (nothing lost or duplicated, no
    unexpected answer, every device back online and checked); 1 it did
    not; 2 a usage error or a limit that stops it before it starts.
    =========================================================================
*/
#include "fleet_int.h"

#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry-fleet --broker EP[,EP...] --broker-key FILE [OPTIONS]\n"
"Simulate a fleet of devices against appferry brokers: each device has its own\n"
"CURVE keypair and the description of a real model; devices are grouped into\n"
"accounts, register, log in, report installs, sync, notify and push packages to\n"
"each other; every answer is checked. Prints what it saw, and at the end\n"
"\"N acked, N delivered, N lost, N duplicated\".\n"
"\n"
"Brokers and devices:\n"
"  -b, --broker EP[,EP...]   broker frontends (tcp://HOST:PORT); each device uses\n"
"                            one, moves to the next when it goes silent or its\n"
"                            connection closes, and follows a cluster's REDIRECT\n"
"  -k, --broker-key FILE     the brokers' public certificate (DATA/broker.cert)\n"
"  -n, --devices N           devices to simulate (default 100)\n"
"      --account-size MIN-MAX  devices per account, drawn at random (default 1-8)\n"
"      --prefix NAME         account names are NAME-000001, ... (default fleet-XXXX)\n"
"      --password TEXT       the accounts' password (default: a fixed test one)\n"
"\n"
"What they do:\n"
"      --apps N              apps in each device's first install list (default 20)\n"
"      --programs N|ID,...|@FILE  program IDs devices install and report: N\n"
"                            generated ones (fleet.app.0001...), a list, or a file\n"
"                            of one per line (default 200 generated)\n"
"      --push ID,...|@FILE   program IDs to push (packages or store links in the\n"
"                            broker's catalog); without it, no pushes\n"
"      --rate N              actions per second, in all (default 100)\n"
"      --every MS            instead: each device acts every MS on average\n"
"      --mix report=W,sync=W,notify=W,push=W  weights of the actions\n"
"                            (default report=50,sync=15,notify=20,push=15)\n"
"      --duration S          seconds of actions (default 10)\n"
"      --hold S              seconds idle between log-in and actions (default 0)\n"
"      --drain S             at most this long to let the fleet finish, and again\n"
"                            to check it (default 60)\n"
"      --setup S             at most this long to log every device in (default 300)\n"
"      --login-rate N        devices starting per second (default: all at once)\n"
"\n"
"Like real devices:\n"
"      --heartbeat MS        heartbeat interval, capped by the broker's (default\n"
"                            1000; phones use tens of seconds)\n"
"      --jitter MS           reconnect waits are drawn from 0..MS (default 1000)\n"
"      --auto-sync           SYNC after every login, once the reports went\n"
"      --vanish PERCENT      devices that vanish once without LOGOUT (default 0)\n"
"      --vanish-for MS       and stay away this long (default 5000)\n"
"      --timeout MS          a request unanswered this long fails (default 15000)\n"
"      --connect-timeout MS  give up a TCP connection attempt after MS and try\n"
"                            again (ZMQ_CONNECT_TIMEOUT; default: the OS's SYN\n"
"                            retries, as the reference node)\n"
"\n"
"Output and tuning:\n"
"      --report-every MS     a progress line this often (default 5000)\n"
"      --io-threads N        ZeroMQ I/O threads (default 1)\n"
"      --seed N              draws (accounts, models, apps, actions) repeat with it\n"
"  -v, --verbose             print every unexpected answer, not only the first 20\n"
"  -h, --help                show this help and exit\n"
"      --version             show the version and exit\n"
"\n"
"Signals: SIGUSR1 marks a broker restart (send it as the new broker starts): the\n"
"time until every device logged in again is measured from it; SIGUSR2 marks the\n"
"death of one broker of a cluster (send it with the kill): the time until every\n"
"device that lost its session is back is measured from it; SIGINT or SIGTERM\n"
"ends the actions at once, a second one ends the run.\n"
"Each device holds two descriptors (its TCP connection and its ZeroMQ socket's\n"
"mailbox): the process raises its soft limit to the hard one and refuses more\n"
"devices than that allows; run several fleets with different --prefix beyond.\n"
"Exit status: 0 passed, 1 failed, 2 usage or limits.\n");
}

//  A number within bounds, the whole text; else an error naming the option
static int
s_number (const char *option, const char *text, double min, double max, double *value)
{
    char *end = NULL;
    errno = 0;
    double number = strtod (text, &end);
    if (errno || end == text || *end || number < min || number > max) {
        fprintf (stderr, "appferry-fleet: --%s must be a number from %.15g to %.15g, not '%s'\n", option, min, max, text);
        return -1;
    }
    *value = number;
    return 0;
}

static int
s_whole (const char *option, const char *text, double min, double max, uint32_t *value)
{
    double number;
    if (s_number (option, text, min, max, &number))
        return -1;
    if (number != (double) (uint64_t) number) {
        fprintf (stderr, "appferry-fleet: --%s must be a whole number, not '%s'\n", option, text);
        return -1;
    }
    *value = (uint32_t) number;
    return 0;
}

//  Program IDs from "ID,ID", "@FILE" (one a line) or, if numbers are
//  allowed, "N" generated ones. Each is checked as SPEC 4.1 says.
static int
s_program_list (const char *option, const char *text, bool numbers, char (**ids) [AF_MAX_PROGRAM + 1],
                uint32_t *count)
{
    free (*ids);
    *ids = NULL;
    *count = 0;
    uint32_t generated = 0;
    if (numbers && *text && strspn (text, "0123456789") == strlen (text)) {
        if (s_whole (option, text, 1, FLEET_MAX_PROGRAMS, &generated))
            return -1;
        *ids = calloc (generated, sizeof (*ids) [0]);
        assert (*ids);
        for (uint32_t i = 0; i < generated; i++)
            snprintf ((*ids) [i], sizeof (*ids) [0], "fleet.app.%04u", i + 1);
        *count = generated;
        return 0;
    }
    char *copy = NULL;
    if (*text == '@') {
        FILE *file = fopen (text + 1, "r");
        if (!file) {
            fprintf (stderr, "appferry-fleet: --%s: cannot read %s: %s\n", option, text + 1, strerror (errno));
            return -1;
        }
        size_t size = 0;
        char line [256];
        copy = strdup ("");
        while (fgets (line, sizeof line, file)) {
            line [strcspn (line, "\r\n")] = 0;
            if (!*line || *line == '#')
                continue;
            size_t len = strlen (line);
            copy = realloc (copy, size + len + 2);
            assert (copy);
            memcpy (copy + size, line, len);
            size += len;
            copy [size++] = ',';
            copy [size] = 0;
        }
        fclose (file);
        if (size)
            copy [size - 1] = 0;
    }
    else
        copy = strdup (text);
    assert (copy);
    uint32_t room = 1;
    for (const char *p = copy; *p; p++)
        room += *p == ',';
    if (room > FLEET_MAX_PROGRAMS) {
        fprintf (stderr, "appferry-fleet: --%s: more than %d program IDs\n", option, FLEET_MAX_PROGRAMS);
        free (copy);
        return -1;
    }
    *ids = calloc (room, sizeof (*ids) [0]);
    assert (*ids);
    char *save = NULL;
    for (char *id = strtok_r (copy, ",", &save); id; id = strtok_r (NULL, ",", &save)) {
        char err [200];
        if (af_program_check (id, err, sizeof err) != AF_OK) {
            fprintf (stderr, "appferry-fleet: --%s: '%s': %s\n", option, id, err);
            free (copy);
            return -1;
        }
        snprintf ((*ids) [(*count)++], sizeof (*ids) [0], "%s", id);
    }
    free (copy);
    if (!*count) {
        fprintf (stderr, "appferry-fleet: --%s names no program\n", option);
        return -1;
    }
    return 0;
}

static int
s_mix (const char *text, uint32_t *mix)
{
    static const char *names [ACT_COUNT] = { "report", "sync", "notify", "push" };
    uint32_t given [ACT_COUNT] = { 0 };
    char *copy = strdup (text), *save = NULL;
    assert (copy);
    int rc = 0;
    for (char *part = strtok_r (copy, ",", &save); part && !rc; part = strtok_r (NULL, ",", &save)) {
        char *equals = strchr (part, '=');
        int which = -1;
        if (equals) {
            *equals = 0;
            for (int i = 0; i < ACT_COUNT; i++)
                if (streq (part, names [i]))
                    which = i;
        }
        if (which < 0) {
            fprintf (stderr, "appferry-fleet: --mix: '%s' is not report=W, sync=W, notify=W or push=W\n", part);
            rc = -1;
        }
        else
            rc = s_whole ("mix", equals + 1, 0, 1000000, &given [which]);
    }
    free (copy);
    uint32_t total = 0;
    for (int i = 0; i < ACT_COUNT; i++)
        total += given [i];
    if (!rc && !total) {
        fprintf (stderr, "appferry-fleet: --mix: the weights add up to 0\n");
        rc = -1;
    }
    if (!rc)
        memcpy (mix, given, sizeof given);
    return rc;
}

static bool
s_account_name_ok (const char *prefix)
{
    if (!*prefix || !(islower ((unsigned char) *prefix) || isdigit ((unsigned char) *prefix)))
        return false;
    for (const char *p = prefix; *p; p++)
        if (!islower ((unsigned char) *p) && !isdigit ((unsigned char) *p) && !strchr ("._-", *p))
            return false;
    return strlen (prefix) + 7 <= AF_MAX_ACCOUNT;
}

//  Raise the soft descriptor limit to the hard one; the devices it allows
static uint32_t
s_descriptors (struct rlimit *limit)
{
    if (getrlimit (RLIMIT_NOFILE, limit) == 0 && limit->rlim_cur < limit->rlim_max) {
        struct rlimit raised = *limit;
        raised.rlim_cur = raised.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &raised) == 0)
            *limit = raised;
    }
    rlim_t usable = limit->rlim_cur > FLEET_FDS_RESERVE? limit->rlim_cur - FLEET_FDS_RESERVE: 0;
    rlim_t devices = usable / FLEET_FDS_PER_DEVICE;
    return devices > FLEET_MAX_DEVICES? FLEET_MAX_DEVICES: (uint32_t) devices;
}

static void
s_defaults (fleet_config_t *config)
{
    memset (config, 0, sizeof *config);
    config->devices = 100;
    config->account_min = 1;
    config->account_max = 8;
    unsigned char tag [2];
    randombytes_buf (tag, sizeof tag);
    snprintf (config->prefix, sizeof config->prefix, "fleet-%02x%02x", tag [0], tag [1]);
    snprintf (config->password, sizeof config->password, "fleet test password");
    config->rate = 100;
    config->duration_s = 10;
    config->drain_s = 60;
    config->setup_s = 300;
    config->mix [ACT_REPORT] = 50;
    config->mix [ACT_SYNC] = 15;
    config->mix [ACT_NOTIFY] = 20;
    config->mix [ACT_PUSH] = 15;
    config->apps = 20;
    config->heartbeat_ms = FLEET_DEFAULT_HEARTBEAT;
    config->jitter_ms = 1000;
    config->timeout_ms = FLEET_TIMEOUT_MS;
    config->report_every_ms = FLEET_REPORT_EVERY_MS;
    config->vanish_ms = FLEET_DEFAULT_VANISH_MS;
    config->io_threads = 1;
    randombytes_buf (&config->seed, sizeof config->seed);
}

enum { OPT_ACCOUNT_SIZE = 1000, OPT_PREFIX, OPT_PASSWORD, OPT_APPS, OPT_PROGRAMS, OPT_PUSH, OPT_RATE, OPT_EVERY,
       OPT_MIX, OPT_DURATION, OPT_HOLD, OPT_DRAIN, OPT_SETUP, OPT_LOGIN_RATE, OPT_HEARTBEAT, OPT_JITTER,
       OPT_AUTO_SYNC, OPT_VANISH, OPT_VANISH_FOR, OPT_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_REPORT_EVERY,
       OPT_IO_THREADS, OPT_SEED, OPT_VERSION };
static const struct option s_options [] = {
    { "broker", required_argument, NULL, 'b' },
    { "broker-key", required_argument, NULL, 'k' },
    { "devices", required_argument, NULL, 'n' },
    { "account-size", required_argument, NULL, OPT_ACCOUNT_SIZE },
    { "prefix", required_argument, NULL, OPT_PREFIX },
    { "password", required_argument, NULL, OPT_PASSWORD },
    { "apps", required_argument, NULL, OPT_APPS },
    { "programs", required_argument, NULL, OPT_PROGRAMS },
    { "push", required_argument, NULL, OPT_PUSH },
    { "rate", required_argument, NULL, OPT_RATE },
    { "every", required_argument, NULL, OPT_EVERY },
    { "mix", required_argument, NULL, OPT_MIX },
    { "duration", required_argument, NULL, OPT_DURATION },
    { "hold", required_argument, NULL, OPT_HOLD },
    { "drain", required_argument, NULL, OPT_DRAIN },
    { "setup", required_argument, NULL, OPT_SETUP },
    { "login-rate", required_argument, NULL, OPT_LOGIN_RATE },
    { "heartbeat", required_argument, NULL, OPT_HEARTBEAT },
    { "jitter", required_argument, NULL, OPT_JITTER },
    { "auto-sync", no_argument, NULL, OPT_AUTO_SYNC },
    { "vanish", required_argument, NULL, OPT_VANISH },
    { "vanish-for", required_argument, NULL, OPT_VANISH_FOR },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
    { "report-every", required_argument, NULL, OPT_REPORT_EVERY },
    { "io-threads", required_argument, NULL, OPT_IO_THREADS },
    { "seed", required_argument, NULL, OPT_SEED },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 }
};

//  --broker A,B,C: 0 or 2 (said)
static int
s_brokers (fleet_config_t *config, const char *optarg)
{
    int rc = 0;
    char *copy = strdup (optarg), *save = NULL;
    assert (copy);
    for (uint32_t i = 0; i < config->broker_count; i++)
        free (config->brokers [i]);
    config->broker_count = 0;
    for (char *ep = strtok_r (copy, ",", &save); ep && !rc; ep = strtok_r (NULL, ",", &save)) {
        if (config->broker_count == FLEET_MAX_BROKERS || strncmp (ep, "tcp://", 6) || strlen (ep) > 255) {
            fprintf (stderr, "appferry-fleet: --broker: '%s' is not a tcp:// endpoint, or more than %d\n",
                     ep, FLEET_MAX_BROKERS);
            rc = 2;
        }
        else
            config->brokers [config->broker_count++] = strdup (ep);
    }
    free (copy);
    return rc;
}

//  --account-size N or MIN-MAX: 0 or 2 (said)
static int
s_account_size (fleet_config_t *config, const char *optarg)
{
    int rc = 0;
    char low [32], high [32];
    const char *dash = strchr (optarg, '-');
    snprintf (low, sizeof low, "%.*s", dash? (int) (dash - optarg): (int) strlen (optarg), optarg);
    snprintf (high, sizeof high, "%s", dash? dash + 1: optarg);
    if (s_whole ("account-size", low, 1, FLEET_MAX_ACCOUNT_SIZE, &config->account_min)
    ||  s_whole ("account-size", high, 1, FLEET_MAX_ACCOUNT_SIZE, &config->account_max))
        rc = 2;
    else
    if (config->account_min > config->account_max) {
        fprintf (stderr, "appferry-fleet: --account-size MIN-MAX: MIN is above MAX\n");
        rc = 2;
    }
    return rc;
}

//  What the options said beside the settings themselves
typedef struct {
    bool rate, every, programs;
} given_t;

//  One option into config: 0, 2 (a usage error, said), or -1 (done: help
//  or version printed)
static int
s_option (fleet_config_t *config, given_t *given, int opt, const char *optarg)
{
    int rc = 0;
    switch (opt) {
        case 'b': rc = s_brokers (config, optarg); break;
        case 'k':
            if (strlen (optarg) >= sizeof config->broker_key_file) {
                fprintf (stderr, "appferry-fleet: --broker-key: path too long\n");
                rc = 2;
            }
            else
                snprintf (config->broker_key_file, sizeof config->broker_key_file, "%s", optarg);
            break;
        case 'n': rc = s_whole ("devices", optarg, 1, FLEET_MAX_DEVICES, &config->devices)? 2: 0; break;
        case OPT_ACCOUNT_SIZE: rc = s_account_size (config, optarg); break;
        case OPT_PREFIX:
            if (!s_account_name_ok (optarg)) {
                fprintf (stderr, "appferry-fleet: --prefix: 1-%d of a-z 0-9 . _ -, the first a letter or a "
                         "digit (account names are PREFIX-000001)\n", AF_MAX_ACCOUNT - 7);
                rc = 2;
            }
            else
                snprintf (config->prefix, sizeof config->prefix, "%s", optarg);
            break;
        case OPT_PASSWORD:
            if (strlen (optarg) < AF_MIN_PASSWORD || strlen (optarg) > AF_MAX_PASSWORD) {
                fprintf (stderr, "appferry-fleet: --password: %d to %d bytes\n", AF_MIN_PASSWORD, AF_MAX_PASSWORD);
                rc = 2;
            }
            else
                snprintf (config->password, sizeof config->password, "%s", optarg);
            break;
        case OPT_APPS: rc = s_whole ("apps", optarg, 0, AF_MAX_APPS, &config->apps)? 2: 0; break;
        case OPT_PROGRAMS:
            given->programs = true;
            rc = s_program_list ("programs", optarg, true, &config->program_ids, &config->program_id_count)? 2: 0;
            break;
        case OPT_PUSH:
            rc = s_program_list ("push", optarg, false, &config->push_ids, &config->push_id_count)? 2: 0;
            break;
        case OPT_RATE:
            given->rate = true;
            rc = s_number ("rate", optarg, 0.001, FLEET_MAX_RATE, &config->rate)? 2: 0;
            break;
        case OPT_EVERY:
            given->every = true;
            rc = s_whole ("every", optarg, 1, 3600000, &config->every_ms)? 2: 0;
            break;
        case OPT_MIX: rc = s_mix (optarg, config->mix)? 2: 0; break;
        case OPT_DURATION: rc = s_number ("duration", optarg, 0, FLEET_MAX_DURATION_S, &config->duration_s)? 2: 0; break;
        case OPT_HOLD: rc = s_number ("hold", optarg, 0, FLEET_MAX_DURATION_S, &config->hold_s)? 2: 0; break;
        case OPT_DRAIN: rc = s_number ("drain", optarg, 1, FLEET_MAX_DURATION_S, &config->drain_s)? 2: 0; break;
        case OPT_SETUP: rc = s_number ("setup", optarg, 1, FLEET_MAX_DURATION_S, &config->setup_s)? 2: 0; break;
        case OPT_LOGIN_RATE: rc = s_number ("login-rate", optarg, 0, FLEET_MAX_RATE, &config->login_rate)? 2: 0; break;
        case OPT_HEARTBEAT: rc = s_whole ("heartbeat", optarg, 50, 3600000, &config->heartbeat_ms)? 2: 0; break;
        case OPT_JITTER: rc = s_whole ("jitter", optarg, 0, 600000, &config->jitter_ms)? 2: 0; break;
        case OPT_AUTO_SYNC: config->auto_sync = true; break;
        case OPT_VANISH: rc = s_number ("vanish", optarg, 0, 100, &config->vanish_percent)? 2: 0; break;
        case OPT_VANISH_FOR: rc = s_whole ("vanish-for", optarg, 0, 86400000, &config->vanish_ms)? 2: 0; break;
        case OPT_TIMEOUT: rc = s_whole ("timeout", optarg, 100, 3600000, &config->timeout_ms)? 2: 0; break;
        case OPT_CONNECT_TIMEOUT:
            rc = s_whole ("connect-timeout", optarg, 0, 3600000, &config->connect_timeout_ms)? 2: 0;
            break;
        case OPT_REPORT_EVERY:
            rc = s_whole ("report-every", optarg, 100, 3600000, &config->report_every_ms)? 2: 0;
            break;
        case OPT_IO_THREADS: rc = s_whole ("io-threads", optarg, 1, 16, &config->io_threads)? 2: 0; break;
        case OPT_SEED: {
            char *end = NULL;
            errno = 0;
            config->seed = strtoull (optarg, &end, 10);
            if (errno || end == optarg || *end) {
                fprintf (stderr, "appferry-fleet: --seed must be a whole number\n");
                rc = 2;
            }
            break;
        }
        case 'v': config->verbose = true; break;
        case 'h': s_usage (stdout); return -1;
        case OPT_VERSION:
            printf ("appferry-fleet %s, protocol %d%s\n", AF_VERSION, AF_PROTO_VERSION,
#if defined (__SANITIZE_ADDRESS__)
                    ", built with AddressSanitizer"
#else
                    ""
#endif
                    );
            return 0;
        default:
            s_usage (stderr);
            rc = 2;
            break;
    }
    return rc;
}

//  The settings as a whole, after the options: 0 or 2 (said); limit and
//  allowed: the descriptor limit and the devices it leaves room for
static int
s_check (fleet_config_t *config, const given_t *given, const char *extra, struct rlimit *limit_out,
         uint32_t *allowed_out)
{
    int rc = 0;
    if (rc == 0 && extra) {
        fprintf (stderr, "appferry-fleet: unexpected argument '%s' (see --help)\n", extra);
        rc = 2;
    }
    if (rc == 0 && (!config->broker_count || !*config->broker_key_file)) {
        fprintf (stderr, "appferry-fleet: --broker and --broker-key are needed (see --help)\n");
        rc = 2;
    }
    if (rc == 0 && given->rate && given->every) {
        fprintf (stderr, "appferry-fleet: --rate and --every: give one of them\n");
        rc = 2;
    }
    if (rc == 0 && given->every)
        config->rate = 0;
    if (rc == 0 && !given->programs)
        rc = s_program_list ("programs", "200", true, &config->program_ids, &config->program_id_count)? 2: 0;
    if (rc == 0 && config->apps > config->program_id_count) {
        fprintf (stderr, "appferry-fleet: --apps %u is more than the %u programs of --programs\n", config->apps,
                 config->program_id_count);
        rc = 2;
    }
    if (rc == 0 && config->mix [ACT_PUSH] && !config->push_id_count)
        config->mix [ACT_PUSH] = 0;          //  nothing to push: the other actions share its weight
    //  Descriptors: two per device; say so when they cap the fleet
    struct rlimit limit = { 0, 0 };
    uint32_t allowed = s_descriptors (&limit);
    *limit_out = limit;
    *allowed_out = allowed;
    if (rc == 0 && config->devices > allowed) {
        fprintf (stderr, "appferry-fleet: the descriptor limit caps this process at %u devices, not %u: "
                 "RLIMIT_NOFILE is %llu (hard limit %llu) and each device holds %d descriptors (its TCP "
                 "connection and its ZeroMQ socket's mailbox) beside the process's own %d. Raise the hard "
                 "limit (ulimit -Hn as root, LimitNOFILE in a unit), or run several fleets, each with its "
                 "own --prefix\n", allowed, config->devices, (unsigned long long) limit.rlim_cur,
                 (unsigned long long) limit.rlim_max, FLEET_FDS_PER_DEVICE, FLEET_FDS_RESERVE);
        rc = 2;
    }
    return rc;
}

//  What the fleet is, before it runs
static void
s_banner (fleet_t *fleet, const fleet_config_t *config, const struct rlimit *limit, uint32_t allowed)
{
    printf ("fleet: %u devices in %u accounts of %u-%u, models drawn from %zu real ones (%zu Android, %zu iOS, "
            "%zu tvOS)\n", fleet->device_count, fleet->account_count, config->account_min, config->account_max,
            fleet_model_count, fleet_models_of (AF_PLATFORM_ANDROID), fleet_models_of (AF_PLATFORM_IOS),
            fleet_models_of (AF_PLATFORM_TVOS));
    printf ("fleet: accounts %s-000001..%06u; %u programs, %u apps each at first, %u to push; broker %s%s\n",
            config->prefix, fleet->account_count, fleet->list_programs, config->apps, fleet->push_count,
            config->brokers [0], config->broker_count > 1? " and others": "");
    if (config->every_ms)
        printf ("fleet: each device acts every %u ms on average for %.0f s", config->every_ms, config->duration_s);
    else
        printf ("fleet: %.0f actions/s for %.0f s", config->rate, config->duration_s);
    printf (" (report %u, sync %u, notify %u, push %u); heartbeat %u ms, jitter %u ms%s%s; seed %llu\n",
            config->mix [ACT_REPORT], config->mix [ACT_SYNC], config->mix [ACT_NOTIFY], config->mix [ACT_PUSH],
            config->heartbeat_ms, config->jitter_ms, config->auto_sync? ", auto-sync": "",
            config->vanish_percent > 0? ", some vanish": "", (unsigned long long) config->seed);
    printf ("fleet: descriptors: limit %llu, room for %u devices\n", (unsigned long long) limit->rlim_cur, allowed);
}

int
main (int argc, char *argv [])
{
    if (sodium_init () < 0) {
        fprintf (stderr, "appferry-fleet: libsodium does not start\n");
        return 2;
    }
    fleet_config_t config;
    s_defaults (&config);
    given_t given = { false, false, false };
    int rc = 0, opt;
    while (rc == 0 && (opt = getopt_long (argc, argv, "b:k:n:vh", s_options, NULL)) != -1)
        rc = s_option (&config, &given, opt, optarg);
    if (rc == -1)
        rc = 0;
    else {
        struct rlimit limit = { 0, 0 };
        uint32_t allowed = 0;
        if (rc == 0)
            rc = s_check (&config, &given, optind < argc? argv [optind]: NULL, &limit, &allowed);
        fleet_t *fleet = NULL;
        if (rc == 0) {
            //  The signals come through a signalfd: blocked before libzmq
            //  starts its threads, which inherit the mask
            sigset_t signals;
            sigemptyset (&signals);
            sigaddset (&signals, SIGINT);
            sigaddset (&signals, SIGTERM);
            sigaddset (&signals, SIGUSR1);
            sigaddset (&signals, SIGUSR2);
            sigprocmask (SIG_BLOCK, &signals, NULL);
            char err [512];
            fleet = fleet_new (&config, err, sizeof err);
            if (!fleet) {
                fprintf (stderr, "appferry-fleet: %s\n", err);
                rc = 2;
            }
        }
        if (rc == 0) {
            s_banner (fleet, &config, &limit, allowed);
            fflush (stdout);
            rc = fleet_run (fleet);
        }
        fleet_destroy (&fleet);
    }
    for (uint32_t i = 0; i < config.broker_count; i++)
        free (config.brokers [i]);
    free (config.program_ids);
    free (config.push_ids);
    return rc;
}
