/*  =========================================================================
    appferry - command line for a running appferry-node

    The CLI is a thin client: it sends the command to the node over the
    node's ipc socket (HOME/node.sock) and renders the JSON document the
    node answers with, for a person or, with --json, as is for scripts.
    Passwords come from --password-file or APPFERRY_PASSWORD, or are asked
    for on a terminal; never from the command line, where other users
    could read them in the process list.

    Exit status: 0 done, 1 refused or failed (the message says why),
    2 usage error, 3 no node answering in that home.
    =========================================================================
*/
#include <czmq.h>
#include <getopt.h>
#include <jansson.h>
#include <sys/stat.h>
#include <termios.h>
#include "af_limits.h"
#include "cli_friends.h"
#include "cli_backup.h"

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: appferry --home DIR [OPTIONS] COMMAND [ARGS]\n"
"Talk to the appferry node running with home DIR.\n"
"\n"
"Commands:\n"
"  register ACCOUNT      create an account (password: see below)\n"
"  login ACCOUNT         log this device in to ACCOUNT\n"
"  logout                log this device out (no automatic login after)\n"
"  devices [--refresh]   the account's devices as last pushed by the broker\n"
"                        (--refresh asks the broker now)\n"
"  devices remove DEVICE remove another device of the account for good (a lost\n"
"                        or stolen one): its key no longer logs in, what was\n"
"                        queued for it is dropped; asks the password again\n"
"  status                connection, login and device of this node\n"
"  resolve PROGRAM       which package of PROGRAM fits this device\n"
"  notify DEVICE TEXT    send a text notification to another device of the\n"
"                        account (it must be online)\n"
"  notifications         the last 100 notifications this node received\n"
"  push PROGRAM --to DEVICE[,DEVICE...]|all\n"
"                        send PROGRAM to other devices of the account: each\n"
"                        gets the package that fits it (an iOS device the\n"
"                        store link); shows progress per device until every\n"
"                        online target finished (offline ones stay queued)\n"
"  installed             packages installed here and store links received\n"
"  apps [--device DEVICE]\n"
"                        the install list of this device, or of another\n"
"                        device of the account (as the broker has it)\n"
"  sync [--install PROGRAM[,...] | --install-all]\n"
"                        what the account's other devices have that this one\n"
"                        lacks, and what the account had that no device has\n"
"                        now, each with whether a package fits this device;\n"
"                        --install installs the picks (each the package that\n"
"                        fits this device, from the server's store), with\n"
"                        progress; --install-all every one that fits\n"
"  browse --device DEVICE | --friend CONTACT\n"
"                        the apps another device of the account has (or those\n"
"                        a contact shares with you), each with whether a\n"
"                        package fits this device and its price\n"
"  get PROGRAM --from DEVICE|CONTACT [--with-data] [--confirm-payment TOKEN]\n"
"                        install PROGRAM, which DEVICE (or a friend) has, on\n"
"                        this device (the package that fits here, from the\n"
"                        server's store; from a friend, never their data;\n"
"                        your account pays, and the friend is told). A\n"
"                        paid app asks for a payment token on a terminal, or\n"
"                        takes --confirm-payment; an app the account paid for\n"
"                        once is never charged again, on any of its devices.\n"
"                        A broker that fails (5xx) or restarts meanwhile is\n"
"                        asked again under the same payment, with back-off,\n"
"                        until --timeout; each retry is shown on stderr.\n"
"                        It does not wait for DEVICE: DEVICE sends its install\n"
"                        record (the app's settings, start-up entries) when\n"
"                        it is online, and this device applies it then; if\n"
"                        it is not online within the broker's get/record_wait\n"
"                        (24 h) the app keeps its defaults. Either outcome is\n"
"                        in `appferry notifications` (kind record).\n"
"                        --with-data (DEVICE of your account only): DEVICE\n"
"                        also sends the app's user data (its HOME/data/\n"
"                        PROGRAM/, as push --with-data would), which\n"
"                        replaces this device's once, when DEVICE is online;\n"
"                        what came, or why none did, is in the notifications\n"
"                        (kind data)\n"
"  purchases             the apps the account paid for\n"
"  uninstall PROGRAM [--on DEVICE[,DEVICE...]|all]\n"
"                        uninstall PROGRAM here (and tell the broker), or ask\n"
"                        other devices of the account to (offline ones do it\n"
"                        when they connect)\n"
"  config secret         give this device the account secret its apps'\n"
"                        configurations are encrypted with (from\n"
"                        $APPFERRY_SECRET, --password-file, or asked); it never\n"
"                        leaves the device; give every device the same one\n"
"  config share PROGRAM  consent to share PROGRAM's configuration (HOME/config/\n"
"                        PROGRAM): sent sealed now and after every edit; newer\n"
"                        versions from other devices are applied here\n"
"  config unshare PROGRAM\n"
"  config apply PROGRAM  apply the account's configuration of PROGRAM now\n"
"  config show PROGRAM [--previous]\n"
"                        the account's stored version (or the one it replaced)\n"
"  stop                  stop the node\n"
"%s%s"
"\n"
"Options:\n"
"  -H, --home DIR            the node's home directory (required)\n"
"  -p, --password-file FILE  read the password from the first line of FILE\n"
"                            (else $APPFERRY_PASSWORD, else ask on the terminal)\n"
"  -j, --json                print the node's JSON answer instead of text\n"
"  -t, --timeout SEC         how long to wait for the node (default 20); get:\n"
"                            how long the node keeps asking the broker\n"
"      --to DEVICES          push: target devices, comma-separated, or all\n"
"      --device DEVICE       apps, browse: another device of the account\n"
"      --from DEVICE|CONTACT get: the device (or the contact) that has the app\n"
"      --friend CONTACT      browse: a contact of this device's address book\n"
"      --confirm-payment TOKEN\n"
"                            get: pay with this token if the app is paid\n"
"      --no-wait             push: print the first answer and return\n"
"      --wait SEC            push: wait at most this long for the results\n"
"                            (default 600)\n"
"      --with-data           push, get: the app's user data too (HOME/data/PROGRAM/)\n"
"      --with-config         backup: the app's configuration too, sealed\n"
"      --version V           restore: that backed-up version\n"
"      --latest              restore: the newest package that fits\n"
"      --recommend           restore: if nothing fits, recommend another app\n"
"  -h, --help                show this help and exit\n"
"\n"
"A DEVICE is named as `devices` shows it: by its name (\"Ana's tablet\"), by\n"
"the first digits of its ID (at least 4, as git and docker take them), or by\n"
"its whole ID. A name or prefix that fits more than one device is refused,\n"
"with the candidates.\n"
"\n"
"Exit status: 0 done, 1 refused or failed (push: any target failed, was\n"
"refused or has no fitting package), 2 usage error, 3 no node running.\n",
    cli_friends_usage, cli_backup_usage);
}

static int
s_read_password (const char *file, char *buf, size_t size)
{
    if (file) {
        FILE *in = fopen (file, "r");
        if (!in) {
            fprintf (stderr, "appferry: cannot read %s: %s\n", file, strerror (errno));
            return -1;
        }
        bool ok = fgets (buf, (int) size, in) != NULL;
        fclose (in);
        if (!ok) {
            fprintf (stderr, "appferry: %s is empty\n", file);
            return -1;
        }
        buf [strcspn (buf, "\r\n")] = 0;
        return 0;
    }
    const char *env = getenv ("APPFERRY_PASSWORD");
    if (env) {
        snprintf (buf, size, "%s", env);
        return 0;
    }
    if (!isatty (0)) {
        fprintf (stderr, "appferry: no password: use --password-file FILE or APPFERRY_PASSWORD\n");
        return -1;
    }
    struct termios old, quiet;
    fprintf (stderr, "Password: ");
    tcgetattr (0, &old);
    quiet = old;
    quiet.c_lflag &= (tcflag_t) ~ECHO;
    tcsetattr (0, TCSANOW, &quiet);
    bool ok = fgets (buf, (int) size, stdin) != NULL;
    tcsetattr (0, TCSANOW, &old);
    fprintf (stderr, "\n");
    if (!ok)
        return -1;
    buf [strcspn (buf, "\r\n")] = 0;
    return 0;
}

static const char *
s_str (json_t *obj, const char *key)
{
    const char *value = json_string_value (json_object_get (obj, key));
    return value? value: "";
}

static void
s_print_devices (json_t *doc)
{
    json_t *devices = json_object_get (doc, "devices");
    printf ("Account '%s', %zu device%s:\n", s_str (doc, "account"), json_array_size (devices),
            json_array_size (devices) == 1? "": "s");
    printf ("  %-32s  %-16s  %-30s  %-8s  %-7s  %s\n", "DEVICE", "NAME", "MODEL", "PLATFORM", "OS", "STATE");
    size_t index;
    json_t *device;
    json_array_foreach (devices, index, device) {
        bool self = json_is_true (json_object_get (device, "self"));
        bool online = json_is_true (json_object_get (device, "online"));
        printf ("  %-32s  %-16.16s  %-30.30s  %-8s  %-7s  %s%s\n",
                s_str (device, "id"), s_str (device, "name"), s_str (device, "model"),
                s_str (device, "platform"), s_str (device, "osVersion"),
                online? "online": "offline", self? " (this device)": "");
    }
}

//  One push target as a line: name, state, version or reason, progress
static void
s_print_target (json_t *target)
{
    const char *state = s_str (target, "state");
    const char *name = *s_str (target, "name")? s_str (target, "name"): s_str (target, "deviceId");
    long long bytes = (long long) json_integer_value (json_object_get (target, "bytes"));
    long long total = (long long) json_integer_value (json_object_get (target, "total"));
    printf ("    %-20.20s %-10s", name, state);
    if (streq (state, "installed"))
        printf (" version %s%s%s%s", s_str (target, "versionName"), *s_str (target, "reason")? " (": "",
                s_str (target, "reason"), *s_str (target, "reason")? ")": "");
    else
    if (streq (state, "store-link"))
        printf (" %s", s_str (target, "reason"));
    else
    if (streq (state, "offered") && total > 0)
        printf (" %.1f of %.1f MiB (%lld%%)", bytes / 1048576.0, total / 1048576.0, bytes * 100 / total);
    else
    if (*s_str (target, "reason"))
        printf (" %s", s_str (target, "reason"));
    printf ("\n");
}

//  --------------------------------------------------------------------------
//  What each command prints for a person (--json prints the node's answer)

static void
s_print_register (json_t *doc)
{
    (void) doc;
    printf ("Registered the account.\n");
}

static void
s_print_login (json_t *doc)
{
    printf ("Logged in to '%s' as device %s (%s).\n", s_str (doc, "account"),
            s_str (doc, "deviceId"), s_str (doc, "model"));
}

static void
s_print_logout (json_t *doc)
{
    (void) doc;
    printf ("Logged out.\n");
}

static void
s_print_removed (json_t *doc)
{
    printf ("Removed device %s (%s) from the account; it can no longer log in by itself.\n",
            s_str (doc, "removed"), s_str (doc, "name"));
}

static void
s_print_status (json_t *doc)
{
    json_t *device = json_object_get (doc, "device");
    printf ("Broker:     %s (%s)\n", s_str (doc, "broker"),
            json_is_true (json_object_get (doc, "connected"))? "connected": "not connected");
    if (json_is_true (json_object_get (doc, "loggedIn")))
        printf ("Login:      '%s' as device %s\n", s_str (doc, "account"), s_str (doc, "deviceId"));
    else
    if (json_object_get (doc, "loginRetry")) {
        json_t *retry = json_object_get (doc, "loginRetry");
        printf ("Login:      not logged in: %s (tried %lld times; trying again in %lld s)\n",
                s_str (retry, "error"), (long long) json_integer_value (json_object_get (retry, "attempts")),
                (long long) (json_integer_value (json_object_get (retry, "inMs")) + 999) / 1000);
    }
    else
        printf ("Login:      not logged in%s%s\n", *s_str (doc, "loginError")? ": ": "",
                s_str (doc, "loginError"));
    printf ("Device:     %s (%s %s, %s %s)\n", s_str (device, "name"), s_str (device, "model"),
            s_str (device, "manufacturer"), s_str (device, "platform"), s_str (device, "osVersion"));
    printf ("Devices:    %lld known in the account\n",
            (long long) json_integer_value (json_object_get (doc, "devicesKnown")));
    json_t *pushes = json_object_get (doc, "pushes");
    size_t index, i;
    json_t *push, *target;
    if (json_array_size (pushes))
        printf ("Pushes:\n");
    json_array_foreach (pushes, index, push) {
        printf ("  %s  %s%s\n", s_str (push, "pushId"), streq (s_str (push, "kind"), "uninstall")? "uninstall ": "",
                s_str (push, "program"));
        json_array_foreach (json_object_get (push, "targets"), i, target)
            s_print_target (target);
    }
    json_t *receiving = json_object_get (doc, "receiving");
    if (json_array_size (receiving))
        printf ("Receiving:\n");
    json_array_foreach (receiving, index, push)
        if (json_object_get (push, "entries"))
            printf ("  %s %s: installing its %s, %lld archive entries read (push %s)\n", s_str (push, "program"),
                    s_str (push, "versionName"), streq (s_str (push, "what"), "data")? "user data": "package",
                    (long long) json_integer_value (json_object_get (push, "entries")), s_str (push, "pushId"));
        else
            printf ("  %s %s: %s, %lld of %lld bytes (push %s)\n", s_str (push, "program"),
                    s_str (push, "versionName"), s_str (push, "state"),
                    (long long) json_integer_value (json_object_get (push, "bytes")),
                    (long long) json_integer_value (json_object_get (push, "total")), s_str (push, "pushId"));
}

static void
s_print_installed (json_t *doc)
{
    size_t index;
    json_t *entry;
    json_t *installed = json_object_get (doc, "installed"), *links = json_object_get (doc, "storeLinks");
    if (!json_array_size (installed) && !json_array_size (links))
        printf ("Nothing installed by appferry yet.\n");
    json_array_foreach (installed, index, entry) {
        printf ("%-20s %-12s installed (%s), %zu files, file hash %.16s...\n", s_str (entry, "program"),
                s_str (entry, "versionName"), s_str (entry, "method"),
                json_array_size (json_object_get (entry, "files")), s_str (entry, "hash"));
        //  What the install set beyond its files (S0.1): its settings and
        //  start-up entries, as the record says (HOME/settings has the
        //  values now)
        json_t *settings = json_object_get (entry, "settings"), *startup = json_object_get (entry, "startup");
        const char *key;
        json_t *value;
        json_object_foreach (settings, key, value) {
            char *text = json_dumps (value, JSON_ENCODE_ANY);       //  quoted, escaped: a package's
            printf ("%-20s   set %s = %s\n", "", key, text? text: "?");  //  text never drives the terminal
            free (text);
        }
        size_t i;
        json_array_foreach (startup, i, value)
            printf ("%-20s   start-up entry %s\n", "", json_is_string (value)? json_string_value (value): "?");
    }
    json_array_foreach (links, index, entry)
        printf ("%-20s %-12s from its store: %s\n", s_str (entry, "program"),
                s_str (entry, "versionName"), s_str (entry, "storeLink"));
}

static void
s_print_resolve (json_t *doc)
{
    json_t *package = json_object_get (doc, "package");
    const char *fit = s_str (doc, "fit");
    if (streq (fit, "package"))
        printf ("%s %s (%s) for %s%s%s: %lld bytes, file hash %.16s..., catalog package ID %s\n",
                s_str (doc, "program"), s_str (package, "versionName"), s_str (package, "name"),
                s_str (package, "platform"), *s_str (package, "abi")? " ": "", s_str (package, "abi"),
                (long long) json_integer_value (json_object_get (package, "size")),
                s_str (package, "hash"), s_str (package, "packageId"));
    else
    if (streq (fit, "store-link"))
        printf ("%s %s installs from its platform's store: %s\n", s_str (doc, "program"),
                s_str (package, "versionName"), s_str (package, "storeLink"));
}

static void
s_print_notify (json_t *doc)
{
    (void) doc;
    printf ("Delivered.\n");
}

static void
s_print_notifications (json_t *doc)
{
    json_t *list = json_object_get (doc, "notifications");
    size_t index;
    json_t *entry;
    if (json_array_size (list) == 0)
        printf ("No notifications.\n");
    json_array_foreach (list, index, entry)
        printf ("from %s [%s]: %s\n", s_str (entry, "from"), s_str (entry, "kind"),
                *s_str (entry, "text")? s_str (entry, "text"): s_str (entry, "hex"));
}

static void
s_print_apps (json_t *doc)
{
    size_t index;
    json_t *app;
    json_t *apps = json_object_get (doc, "apps");
    printf ("Device %s: %zu app%s\n", s_str (doc, "deviceId"), json_array_size (apps),
            json_array_size (apps) == 1? "": "s");
    json_array_foreach (apps, index, app)
        printf ("  %-20s %s\n", s_str (app, "program"), s_str (app, "versionName"));
}

static void
s_print_sync (json_t *doc)
{
    size_t index;
    json_t *app;
    json_t *apps = json_object_get (doc, "apps");
    if (json_array_size (apps) == 0)
        printf ("Nothing to sync: this device has every app the others have.\n");
    json_array_foreach (apps, index, app) {
        const char *fit = s_str (app, "fit");
        const char *where = json_is_true (json_object_get (app, "gone"))? "(no device has it now)":
                            *s_str (app, "deviceName")? s_str (app, "deviceName"): s_str (app, "deviceId");
        printf ("  %-16s %-10s on %-24.24s ", s_str (app, "program"), s_str (app, "versionName"), where);
        if (streq (fit, "package"))
            printf ("fits here: %s\n", s_str (app, "fitVersion"));
        else
        if (streq (fit, "store-link"))
            printf ("from this platform's store\n");
        else
            printf ("no package fits: %s\n", s_str (app, "reason"));
    }
    if (json_is_true (json_object_get (doc, "truncated")))
        printf ("  (more than %d entries; the rest left out)\n", AF_MAX_DIFF);
}

static void
s_print_uninstall (json_t *doc)
{
    size_t index;
    json_t *target;
    if (!json_object_get (doc, "targets")) {
        printf ("Uninstalled %s.\n", s_str (doc, "program"));
        return;
    }
    printf ("Uninstall %s:\n", s_str (doc, "program"));
    json_array_foreach (json_object_get (doc, "targets"), index, target)
        s_print_target (target);
}

static void
s_print_config (json_t *doc)
{
    if (json_object_get (doc, "keySet"))
        printf ("The account secret is set on this device.\n");
    else
    if (json_object_get (doc, "shared"))
        printf ("%s's configuration is %s.\n", s_str (doc, "program"),
                json_is_true (json_object_get (doc, "shared"))? "shared": "no longer shared");
    else
    if (json_object_get (doc, "applied"))
        printf ("Applied the account's configuration of %s.\n", s_str (doc, "program"));
    else {
        const char *name;
        json_t *text;
        printf ("%s configuration of %s, from %lld (previous version %lld):\n",
                json_is_true (json_object_get (doc, "previous"))? "Previous": "Current",
                s_str (doc, "program"), (long long) json_integer_value (json_object_get (doc, "at")),
                (long long) json_integer_value (json_object_get (doc, "prevAt")));
        json_object_foreach (json_object_get (doc, "files"), name, text)
            printf ("--- %s\n%s", name, json_string_value (text));
    }
}

static void
s_print_stop (json_t *doc)
{
    (void) doc;
    printf ("Node stopped.\n");
}

static void
s_print_browse (json_t *doc)
{
    size_t index;
    json_t *app;
    json_t *apps = json_object_get (doc, "apps");
    if (json_array_size (apps) == 0)
        printf ("That device has no apps.\n");
    else
    if (*s_str (doc, "contact"))
        printf ("%s shares with you:\n", s_str (doc, "contact"));
    json_array_foreach (apps, index, app) {
        json_int_t price = json_integer_value (json_object_get (app, "price"));
        char cost [48] = "free";
        if (price > 0)
            snprintf (cost, sizeof cost, "%lld.%02lld %s%s", (long long) (price / 100), (long long) (price % 100),
                      s_str (app, "currency"), json_is_true (json_object_get (app, "entitled"))? " (paid)": "");
        const char *fit = s_str (app, "fit");
        if (streq (fit, "package") || streq (fit, "store-link"))
            printf ("  %-24s %-10s %s; fits here: %s\n", s_str (app, "program"), s_str (app, "versionName"), cost,
                    s_str (app, "fitVersion"));
        else
            printf ("  %-24s %-10s %s; does not fit here: %s\n", s_str (app, "program"), s_str (app, "versionName"),
                    cost, s_str (app, "reason"));
    }
}

static void
s_print_purchases (json_t *doc)
{
    size_t index;
    json_t *p;
    json_t *list = json_object_get (doc, "purchases");
    if (json_array_size (list) == 0)
        printf ("No purchases.\n");
    json_array_foreach (list, index, p) {
        json_int_t price = json_integer_value (json_object_get (p, "price"));
        printf ("  %-24s %lld.%02lld %s  (intent %s)\n", s_str (p, "program"), (long long) (price / 100),
                (long long) (price % 100), s_str (p, "currency"), s_str (p, "intent"));
    }
}

//  Follow a push until every target that is online has a final state,
//  showing progress: on a terminal one line per target, redrawn in place;
//  otherwise one line per event. Returns the exit status.
static int
s_push_follow (zsock_t *sock, json_t *push, int wait)
{
    bool tty = isatty (1);
    char push_id [AF_ID_HEX + 1];
    snprintf (push_id, sizeof push_id, "%s", s_str (push, "pushId"));
    printf ("Push %s of %s:\n", push_id, s_str (push, "program"));
    json_t *shown = json_deep_copy (json_object_get (push, "targets"));
    size_t index;
    json_t *target;
    json_array_foreach (shown, index, target)
        s_print_target (target);
    fflush (stdout);
    int64_t end = zclock_mono () + (int64_t) wait * 1000;
    json_t *targets = json_incref (shown);
    bool active = true;
    while (wait && active && zclock_mono () < end) {
        zclock_sleep (200);
        zstr_sendx (sock, "push-status", push_id, NULL);
        zpoller_t *poller = zpoller_new (sock, NULL);
        void *ready = zpoller_wait (poller, 5000);
        zpoller_destroy (&poller);
        if (!ready)
            break;
        char *status = NULL, *text = NULL;
        zstr_recvx (sock, &status, &text, NULL);
        json_error_t jerr;
        json_t *doc = text? json_loads (text, 0, &jerr): NULL;
        zstr_free (&status);
        zstr_free (&text);
        if (!doc)
            break;
        json_decref (targets);
        targets = json_incref (json_object_get (doc, "targets"));
        json_decref (doc);
        //  What changed since last shown
        active = false;
        size_t changed = 0;
        json_array_foreach (targets, index, target) {
            const char *state = s_str (target, "state");
            active |= streq (state, "offered");
            json_t *before = json_array_get (shown, index);
            if (!before || !streq (s_str (before, "state"), state)
            ||  json_integer_value (json_object_get (before, "bytes"))
             != json_integer_value (json_object_get (target, "bytes")))
                changed++;
        }
        if (!changed)
            continue;
        if (tty) {
            //  Redraw the block of target lines in place
            printf ("\033[%zuA", json_array_size (shown));
            json_array_foreach (targets, index, target) {
                printf ("\033[2K");
                s_print_target (target);
            }
        }
        else
            json_array_foreach (targets, index, target) {
                json_t *before = json_array_get (shown, index);
                if (!before || !streq (s_str (before, "state"), s_str (target, "state"))
                ||  json_integer_value (json_object_get (before, "bytes"))
                 != json_integer_value (json_object_get (target, "bytes")))
                    s_print_target (target);
            }
        fflush (stdout);
        json_decref (shown);
        shown = json_deep_copy (targets);
    }
    int rc = 0;
    size_t queued = 0;
    json_array_foreach (targets, index, target) {
        const char *state = s_str (target, "state");
        if (streq (state, "failed") || streq (state, "refused") || streq (state, "no-fit"))
            rc = 1;
        queued += streq (state, "queued");
        if (wait && streq (state, "offered"))
            rc = 1;
    }
    if (wait && active)
        printf ("Still running after %d s; see appferry status.\n", wait);
    if (queued)
        printf ("%zu device%s offline: the push waits for %s; appferry status shows the result later.\n",
                queued, queued == 1? " is": "s are", queued == 1? "it": "them");
    json_decref (targets);
    json_decref (shown);
    return rc;
}

//  Install sync picks, one push to this device each, in the order given
static int
s_sync_install (zsock_t *sock, json_t *diff, const char *install, int wait)
{
    zlistx_t *programs = zlistx_new ();
    zlistx_set_destructor (programs, (czmq_destructor *) zstr_free);
    zlistx_set_duplicator (programs, (czmq_duplicator *) strdup);
    zlistx_set_comparator (programs, (czmq_comparator *) strcmp);
    size_t index;
    json_t *app;
    if (install) {
        char *copy = strdup (install), *saved = NULL;
        for (char *p = strtok_r (copy, ",", &saved); p; p = strtok_r (NULL, ",", &saved))
            if (!zlistx_find (programs, p))
                zlistx_add_end (programs, p);
        free (copy);
    }
    else
        json_array_foreach (json_object_get (diff, "apps"), index, app) {
            const char *fit = s_str (app, "fit");
            if ((streq (fit, "package") || streq (fit, "store-link"))
            &&  !zlistx_find (programs, (void *) s_str (app, "program")))
                zlistx_add_end (programs, (void *) s_str (app, "program"));
        }
    if (zlistx_size (programs) == 0)
        printf ("Nothing to install: no app the others have fits this device.\n");
    int rc = 0;
    for (char *program = (char *) zlistx_first (programs); program; program = (char *) zlistx_next (programs)) {
        zstr_sendx (sock, "install", program, NULL);
        char *status = NULL, *text = NULL;
        zpoller_t *poller = zpoller_new (sock, NULL);
        if (zpoller_wait (poller, 30000))
            zstr_recvx (sock, &status, &text, NULL);
        zpoller_destroy (&poller);
        json_error_t jerr;
        json_t *doc = text? json_loads (text, 0, &jerr): NULL;
        if (status && streq (status, "ok") && doc) {
            if (s_push_follow (sock, doc, wait))
                rc = 1;
        }
        else {
            fprintf (stderr, "appferry: install %s refused: %s\n", program, doc? s_str (doc, "reason"): "no answer");
            rc = 1;
        }
        json_decref (doc);
        zstr_free (&status);
        zstr_free (&text);
    }
    zlistx_destroy (&programs);
    return rc;
}

//  The node's answer to a request, within wait_ms. A request the node
//  sends again (get, pay-confirm: a 5xx, a lost answer, a new session)
//  is preceded by "progress" replies, each shown on stderr and each
//  starting the wait again. False if no answer came.
static bool
s_recv_answer (zsock_t *sock, int wait_ms, char **status_p, char **text_p)
{
    while (true) {
        zpoller_t *poller = zpoller_new (sock, NULL);
        void *ready = zpoller_wait (poller, wait_ms);
        zpoller_destroy (&poller);
        if (!ready)
            return false;
        char *status = NULL, *text = NULL;
        if (zstr_recvx (sock, &status, &text, NULL) < 1)
            return false;
        if (!status || !streq (status, "progress")) {
            *status_p = status;
            *text_p = text;
            return true;
        }
        json_error_t jerr;
        json_t *doc = text? json_loads (text, 0, &jerr): NULL;
        if (doc) {
            json_int_t in = json_integer_value (json_object_get (doc, "inMs"));
            char when [32] = "now";
            if (in > 0)
                snprintf (when, sizeof when, "in %lld.%lld s", (long long) in / 1000, (long long) (in % 1000) / 100);
            fprintf (stderr, "appferry: %s: %s; trying again %s (attempt %lld)\n", s_str (doc, "retrying"),
                     s_str (doc, "reason"), when, (long long) json_integer_value (json_object_get (doc, "attempt")));
            json_decref (doc);
        }
        zstr_free (&status);
        zstr_free (&text);
    }
}

//  get's answer: a push to follow, or a payment notice: on a terminal the
//  token is asked for and confirmed (pay-confirm, asking for the user data
//  too when with_data), else it says how
static int
s_get_follow (zsock_t *sock, json_t *doc, int wait, int timeout, bool with_data)
{
    json_t *notice = json_object_get (doc, "paymentRequired");
    if (!notice)
        return s_push_follow (sock, doc, wait);
    json_int_t price = json_integer_value (json_object_get (notice, "price"));
    printf ("%s costs %lld.%02lld %s (payment %s)%s%s.\n", s_str (notice, "program"), (long long) (price / 100),
            (long long) (price % 100), s_str (notice, "currency"), s_str (notice, "intent"),
            *s_str (notice, "sourceAccount")? "; your account pays, from a friend: ": "",
            s_str (notice, "sourceAccount"));
    if (!isatty (0)) {
        fprintf (stderr, "appferry: payment required: run again with --confirm-payment TOKEN\n");
        return 1;
    }
    printf ("Payment token (empty: cancel): ");
    fflush (stdout);
    char token [AF_MAX_PAY_TOKEN + 2] = "";
    if (!fgets (token, sizeof token, stdin) || !*token || *token == '\n') {
        printf ("Not paid; nothing was charged.\n");
        return 1;
    }
    token [strcspn (token, "\r\n")] = 0;
    char deadline [16];
    snprintf (deadline, sizeof deadline, "%d", timeout);
    zstr_sendx (sock, "pay-confirm", s_str (notice, "intent"), token, deadline, with_data? "data": NULL, NULL);
    char *status = NULL, *text = NULL;
    s_recv_answer (sock, (timeout + 5) * 1000, &status, &text);
    json_error_t jerr;
    json_t *answer = text? json_loads (text, 0, &jerr): NULL;
    int rc = 1;
    if (status && streq (status, "ok") && answer)
        rc = s_push_follow (sock, answer, wait);
    else
        fprintf (stderr, "appferry: payment refused: %s\n", answer? s_str (answer, "reason"): "no answer");
    json_decref (answer);
    zstr_free (&status);
    zstr_free (&text);
    return rc;
}

//  --------------------------------------------------------------------------
//  The commands, and the command line

typedef void (print_fn) (json_t *doc);

static const struct {
    const char *name;
    int args;                       //  -1: config SUBCOMMAND ...
    bool password;                  //  asks for the account's password
    print_fn *print;
} s_commands [] = {
    { "register",       1, true,  s_print_register },
    { "login",          1, true,  s_print_login },
    { "logout",         0, false, s_print_logout },
    { "devices",        0, false, s_print_devices },
    { "device-remove",  1, true,  s_print_removed },    //  devices remove DEVICE
    { "status",         0, false, s_print_status },
    { "resolve",        1, false, s_print_resolve },
    { "notify",         2, false, s_print_notify },
    { "notifications",  0, false, s_print_notifications },
    { "push",           1, false, NULL },   //  followed: s_push_follow
    { "installed",      0, false, s_print_installed },
    { "apps",           0, false, s_print_apps },
    { "sync",           0, false, s_print_sync },
    { "uninstall",      1, false, s_print_uninstall },
    { "browse",         0, false, s_print_browse },
    { "get",            1, false, NULL },   //  a payment notice, then followed: s_get_follow
    { "purchases",      0, false, s_print_purchases },
    { "config",        -1, false, s_print_config },
    { "stop",           0, false, s_print_stop },
    //  -2: friends' commands, checked and printed by cli_friends
    { "contacts",      -2, false, NULL },
    { "friends",       -2, false, NULL },
    { "block",         -2, false, NULL },
    { "unblock",       -2, false, NULL },
    { "share",         -2, false, NULL },
    { "friend-apps",   -2, false, NULL },
    { "recommend",     -2, false, NULL },
    { "inbox",         -2, false, NULL },
    { "refuse",        -2, false, NULL },
    { "accept",        -2, false, NULL },
    { "friend-install", -2, false, NULL },  //  followed: s_push_follow
    //  -3: backups' commands, checked and printed by cli_backup
    { "backup",        -3, false, NULL },
    { "backups",       -3, false, NULL },
    { "restore",       -3, false, NULL },   //  followed: s_push_follow
};

typedef struct {
    const char *home, *password_file;
    bool json, refresh, with_data, no_wait, install_all, previous;
    const char *to, *device, *install, *on, *from, *token, *friend;
    int timeout, wait;
    int command;                    //  in s_commands
    int nargs;
    char **args;
    bool secret;                    //  config secret
    cli_friends_opts_t friends;     //  the friends' commands' options
    cli_backup_opts_t backup;       //  the backups' commands' options
} options_t;

enum { OPT_FROM = 1000, OPT_CONFIRM, OPT_FRIEND };        //  long options only
static const struct option s_options [] = {
    { "home", required_argument, NULL, 'H' },
    { "password-file", required_argument, NULL, 'p' },
    { "json", no_argument, NULL, 'j' },
    { "timeout", required_argument, NULL, 't' },
    { "refresh", no_argument, NULL, 'r' },
    { "to", required_argument, NULL, 'T' },
    { "with-data", no_argument, NULL, 'W' },
    { "no-wait", no_argument, NULL, 'N' },
    { "wait", required_argument, NULL, 'w' },
    { "device", required_argument, NULL, 'D' },
    { "install", required_argument, NULL, 'I' },
    { "install-all", no_argument, NULL, 'A' },
    { "on", required_argument, NULL, 'O' },
    { "previous", no_argument, NULL, 'P' },
    { "country", required_argument, NULL, 'C' },
    { "friends", no_argument, NULL, 'F' },
    { "public", no_argument, NULL, 'U' },
    { "private", no_argument, NULL, 'V' },
    { "list", no_argument, NULL, 'L' },
    { "all", no_argument, NULL, 'a' },
    { "none", no_argument, NULL, 'n' },
    { "from", required_argument, NULL, OPT_FROM },
    { "friend", required_argument, NULL, OPT_FRIEND },
    { "confirm-payment", required_argument, NULL, OPT_CONFIRM },
    { "with-config", no_argument, NULL, 'c' },
    { "version", required_argument, NULL, 'v' },
    { "latest", no_argument, NULL, 'l' },
    { "recommend", no_argument, NULL, 'R' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

//  Parse the command line: 0, or the exit status (usage printed)
static int
s_parse (int argc, char *argv [], options_t *o)
{
    memset (o, 0, sizeof *o);
    o->timeout = 20;
    o->wait = 600;
    int opt;
    while ((opt = getopt_long (argc, argv, "H:p:jt:h", s_options, NULL)) != -1) {
        switch (opt) {
            case 'H': o->home = optarg; break;
            case 'p': o->password_file = optarg; break;
            case 'j': o->json = true; break;
            case 'r': o->refresh = true; break;
            case 't': o->timeout = atoi (optarg); break;
            case 'T': o->to = optarg; break;
            case 'W': o->with_data = true; break;
            case 'N': o->no_wait = true; break;
            case 'w': o->wait = atoi (optarg); break;
            case 'D': o->device = optarg; break;
            case 'I': o->install = optarg; break;
            case 'A': o->install_all = true; break;
            case 'O': o->on = optarg; break;
            case 'P': o->previous = true; break;
            case 'C': o->friends.country = optarg; break;
            case 'F': o->friends.share = "friends"; break;
            case 'U': o->friends.share = "public"; break;
            case 'V': o->friends.share = "private"; break;
            case 'L': o->friends.list = true; break;
            case 'a': o->friends.all = true; break;
            case 'n': o->friends.none = true; break;
            case OPT_FROM: o->from = optarg; break;
            case OPT_FRIEND: o->friend = optarg; break;
            case OPT_CONFIRM: o->token = optarg; break;
            case 'c': o->backup.with_config = true; break;
            case 'v': o->backup.version = optarg; break;
            case 'l': o->backup.latest = true; break;
            case 'R': o->backup.recommend = true; break;
            case 'h': s_usage (stdout); return 1;
            default: s_usage (stderr); return 2;
        }
    }
    if (!o->home || optind >= argc || o->timeout < 1) {
        s_usage (stderr);
        return 2;
    }
    const char *command = argv [optind];
    o->nargs = argc - optind - 1;
    o->args = argv + optind + 1;
    //  devices remove DEVICE is the node's verb device-remove
    if (streq (command, "devices") && o->nargs >= 1 && streq (o->args [0], "remove")) {
        command = "device-remove";
        o->nargs--;
        o->args++;
    }
    int count = (int) (sizeof s_commands / sizeof s_commands [0]);
    for (o->command = 0; o->command < count && !streq (s_commands [o->command].name, command); o->command++)
        ;
    if (o->command == count) {
        fprintf (stderr, "appferry: unknown command '%s' (see --help)\n", command);
        return 2;
    }
    int args = s_commands [o->command].args;
    o->friends.to = o->to;
    if (args == -2)
        return cli_friends_check (command, o->nargs, o->args, &o->friends);
    if (args == -3)
        return cli_backup_check (command, o->nargs, o->args, &o->backup);
    //  config SUBCOMMAND [PROGRAM]: the node's verb is config-SUBCOMMAND
    if (args < 0) {
        static const char *subs [] = { "secret", "share", "unshare", "apply", "show", NULL };
        int sub = -1;
        for (int i = 0; o->nargs >= 1 && subs [i]; i++)
            if (streq (o->args [0], subs [i]))
                sub = i;
        if (sub < 0 || o->nargs != (sub == 0? 1: 2)) {
            fprintf (stderr, "appferry: config secret | config share|unshare|apply|show PROGRAM (see --help)\n");
            return 2;
        }
        o->secret = sub == 0;
    }
    else
    if (o->nargs != args) {
        fprintf (stderr, "appferry: %s takes %d argument%s (see --help)\n", command, args, args == 1? "": "s");
        return 2;
    }
    if (streq (command, "push") && (!o->to || !*o->to || o->wait < 1)) {
        fprintf (stderr, "appferry: push needs --to DEVICE[,DEVICE...] or --to all (see --help)\n");
        return 2;
    }
    if ((streq (command, "get") && (!o->from || !*o->from))
    ||  (streq (command, "browse") && !o->device == !o->friend)) {
        fprintf (stderr, "appferry: get needs --from DEVICE|CONTACT, browse --device DEVICE or --friend CONTACT "
                 "(see --help)\n");
        return 2;
    }
    return 0;
}

//  The request for the node: the verb, its arguments, the password given
//  and the account secret asked for. NULL (and the reason printed) if the
//  secret could not be read.
static zmsg_t *
s_request (const options_t *o, const char *password)
{
    const char *command = s_commands [o->command].name;
    char account_secret [AF_MAX_PASSWORD + 2] = "";
    if (o->secret) {
        const char *env = getenv ("APPFERRY_SECRET");
        if (env)
            snprintf (account_secret, sizeof account_secret, "%s", env);
        else
        if (s_read_password (o->password_file, account_secret, sizeof account_secret))
            return NULL;
    }
    zmsg_t *request = zmsg_new ();
    if (s_commands [o->command].args == -2)
        cli_friends_request (command, o->nargs, o->args, &o->friends, request);
    else
    if (s_commands [o->command].args == -3)
        cli_backup_request (command, o->nargs, o->args, &o->backup, request);
    else
    if (streq (command, "config")) {
        char verb [32];
        snprintf (verb, sizeof verb, "config-%s", o->args [0]);
        zmsg_addstr (request, verb);
        zmsg_addstr (request, o->secret? account_secret: o->args [1]);
        if (o->previous)
            zmsg_addstr (request, "previous");
    }
    else {
        zmsg_addstr (request, command);
        for (int i = 0; i < o->nargs; i++)
            zmsg_addstr (request, o->args [i]);
    }
    if (s_commands [o->command].password)
        zmsg_addstr (request, password);
    if (streq (command, "devices") && o->refresh)
        zmsg_addstr (request, "refresh");
    if ((streq (command, "apps") || streq (command, "browse")) && o->device)
        zmsg_addstr (request, o->device);
    if (streq (command, "browse") && o->friend) {
        zmsg_addstr (request, o->friend);
        zmsg_addstr (request, "friend");
    }
    if (streq (command, "get")) {
        zmsg_addstr (request, o->from);
        zmsg_addstr (request, o->token? o->token: "");
        zmsg_addstrf (request, "%d", o->timeout);
        if (o->with_data)
            zmsg_addstr (request, "data");
    }
    if (streq (command, "uninstall") && o->on)
        zmsg_addstr (request, o->on);
    if (streq (command, "push")) {
        zmsg_addstr (request, o->to);
        zmsg_addstr (request, o->with_data? "data": "nodata");
    }
    explicit_bzero (account_secret, sizeof account_secret);
    return request;
}

//  Show the node's answer; returns the exit status
static int
s_render (zsock_t *sock, const options_t *o, const char *status, const char *text, json_t *doc)
{
    const char *command = s_commands [o->command].name;
    bool ok = streq (status, "ok");
    if (o->json) {
        printf ("%s\n", text);
        return ok? 0: 1;
    }
    if (ok && (streq (command, "push") || streq (command, "friend-install") || streq (command, "restore")
               || (streq (command, "inbox") && o->nargs == 2)))
        return s_push_follow (sock, doc, o->no_wait? 0: o->wait);
    if (s_commands [o->command].args == -3)
        return cli_backup_print (command, ok, doc);
    if (ok && s_commands [o->command].args == -2) {
        cli_friends_print (command, o->nargs, o->args, doc);
        return 0;
    }
    if (ok && streq (command, "get"))
        return s_get_follow (sock, doc, o->no_wait? 0: o->wait, o->timeout, o->with_data);
    if (ok && streq (command, "sync") && (o->install || o->install_all))
        return s_sync_install (sock, doc, o->install, o->wait);
    if (ok) {
        s_commands [o->command].print (doc);
        return 0;
    }
    if (streq (command, "resolve") && json_object_get (doc, "fit")) {
        if (streq (s_str (doc, "fit"), "unknown-program"))
            fprintf (stderr, "appferry: %s\n", s_str (doc, "reason"));
        else
            fprintf (stderr, "appferry: no package of %s fits this device: %s\n", s_str (doc, "program"),
                     s_str (doc, "reason"));
    }
    else
        fprintf (stderr, "appferry: %s refused: %s (%s)\n", command, s_str (doc, "reason"),
                 s_str (doc, "error"));
    return 1;
}

int
main (int argc, char *argv [])
{
    options_t o;
    int rc = s_parse (argc, argv, &o);
    if (rc)
        return rc == 1? 0: rc;          //  1: --help
    char password [AF_MAX_PASSWORD + 2] = "";
    if (s_commands [o.command].password && s_read_password (o.password_file, password, sizeof password))
        return 2;
    char path [600];
    snprintf (path, sizeof path, "%s/node.sock", o.home);
    struct stat st;
    if (stat (path, &st)) {
        fprintf (stderr, "appferry: no node is running with home %s (start appferry-node first)\n", o.home);
        return 3;
    }
    zmsg_t *request = s_request (&o, password);
    explicit_bzero (password, sizeof password);
    if (!request)
        return 2;
    zsys_init ();
    zsys_set_logstream (stderr);
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (sock, 0);
    if (zsock_connect (sock, "ipc://%s", path)) {
        fprintf (stderr, "appferry: cannot connect to %s\n", path);
        zmsg_destroy (&request);
        zsock_destroy (&sock);
        return 3;
    }
    zmsg_send (&request, sock);
    //  get: the node keeps asking the broker until --timeout, then answers
    int wait_s = streq (s_commands [o.command].name, "get")? o.timeout + 5: o.timeout;
    char *status = NULL, *text = NULL;
    if (!s_recv_answer (sock, wait_s * 1000, &status, &text)) {
        fprintf (stderr, "appferry: the node did not answer within %d s (is it running?)\n", wait_s);
        zsock_destroy (&sock);
        return 3;
    }
    json_error_t jerr;
    json_t *doc = text? json_loads (text, 0, &jerr): NULL;
    rc = 1;
    if (!status || !doc)
        fprintf (stderr, "appferry: unreadable answer from the node\n");
    else
        rc = s_render (sock, &o, status, text, doc);
    json_decref (doc);
    zstr_free (&status);
    zstr_free (&text);
    zsock_destroy (&sock);
    return rc;
}
