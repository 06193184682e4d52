/*  =========================================================================
    cli_backup - the `appferry` commands of backups (issue 15)

    See cli_backup.h. A restore that the broker accepted is followed like
    a push (appferry.c); this file prints the rest.
    =========================================================================
*/
#include "cli_backup.h"

const char *cli_backup_usage =
"  backup PROGRAM [--with-config]\n"
"                        back up PROGRAM as installed here for the account: its\n"
"                        identity (name, publisher, the publisher key that signed\n"
"                        it) and version; --with-config also its configuration,\n"
"                        sealed with the account secret (config secret)\n"
"  backups [PROGRAM]     the account's backups (several versions per program),\n"
"                        each checked with the account secret (config secret)\n"
"  restore PROGRAM [--version V | --latest] [--recommend]\n"
"                        install a backed-up app on this device: the version\n"
"                        backed up last (or V), in this device's own package,\n"
"                        or with --latest the newest that fits; its backed-up\n"
"                        configuration replaces the one the install made. A\n"
"                        backup record that does not verify with the account\n"
"                        secret, or is not of the program or version asked,\n"
"                        is refused\n"
"                        --recommend: if nothing fits, the best-voted app of\n"
"                        the same category that does\n";

static const char *
s_str (json_t *doc, const char *key)
{
    const char *value = json_string_value (json_object_get (doc, key));
    return value? value: "";
}

int
cli_backup_check (const char *command, int nargs, char **args, const cli_backup_opts_t *opts)
{
    (void) args;
    bool restore = streq (command, "restore");
    if ((streq (command, "backups") && nargs > 1) || (!streq (command, "backups") && nargs != 1)) {
        fprintf (stderr, "appferry: %s takes %s (see --help)\n", command,
                 streq (command, "backups")? "at most one PROGRAM": "one PROGRAM");
        return 2;
    }
    if ((!restore && (opts->version || opts->latest || opts->recommend))
    ||  (!streq (command, "backup") && opts->with_config)
    ||  (restore && opts->version && opts->latest)) {
        fprintf (stderr, "appferry: backup PROGRAM [--with-config] | restore PROGRAM [--version V | --latest] "
                 "[--recommend] (see --help)\n");
        return 2;
    }
    return 0;
}

void
cli_backup_request (const char *command, int nargs, char **args, const cli_backup_opts_t *opts,
                    zmsg_t *request)
{
    zmsg_addstr (request, command);
    for (int i = 0; i < nargs; i++)
        zmsg_addstr (request, args [i]);
    if (opts->with_config)
        zmsg_addstr (request, "config");
    if (opts->version)
        zmsg_addstrf (request, "version=%s", opts->version);
    if (opts->latest)
        zmsg_addstr (request, "latest");
    if (opts->recommend)
        zmsg_addstr (request, "recommend");
}

static void
s_print_backups (json_t *doc)
{
    json_t *list = json_object_get (doc, "backups");
    if (json_array_size (list) == 0)
        printf ("No backups in this account.\n");
    size_t i;
    json_t *b;
    json_array_foreach (list, i, b) {
        time_t at = (time_t) (json_integer_value (json_object_get (b, "at")) / 1000);
        char when [32];
        strftime (when, sizeof when, "%Y-%m-%d %H:%M", localtime (&at));
        json_t *authentic = json_object_get (b, "authentic");
        printf ("%-20s %-12s %-9s %s  %s%s%s  key %s  from %.8s  id %.8s%s%s\n", s_str (b, "program"),
                s_str (b, "versionName"), s_str (b, "platform"), when, s_str (b, "name"),
                *s_str (b, "publisher")? " by ": "", s_str (b, "publisher"),
                *s_str (b, "keyId")? s_str (b, "keyId"): "(unsigned)", s_str (b, "deviceId"), s_str (b, "backupId"),
                json_is_true (json_object_get (b, "config"))? "  + configuration": "",
                json_is_false (authentic)? "  NOT AUTHENTIC (does not verify with the account secret)":
                json_is_null (authentic)? "  (not checked: no account secret here)": "");
    }
}

int
cli_backup_print (const char *command, bool ok, json_t *doc)
{
    if (ok && streq (command, "backup")) {
        printf ("Backed up %s %s%s.\n", s_str (doc, "program"), s_str (doc, "versionName"),
                json_is_true (json_object_get (doc, "config"))? " with its configuration": "");
        return 0;
    }
    if (ok) {
        s_print_backups (doc);
        return 0;
    }
    if (json_object_get (doc, "fit")) {
        //  A restore that nothing fits: why, and what would instead
        fprintf (stderr, "appferry: no package of %s fits this device: %s\n", s_str (doc, "program"),
                 s_str (doc, "reason"));
        json_t *other = json_object_get (doc, "recommended");
        if (other)
            fprintf (stderr, "appferry: recommended instead: %s (%s, %s, %lld votes), version %s: "
                     "appferry install %s\n", s_str (other, "program"), s_str (other, "name"),
                     s_str (other, "category"), (long long) json_integer_value (json_object_get (other, "votes")),
                     s_str (other, "versionName"), s_str (other, "program"));
        else
            fprintf (stderr, "appferry: no package fits (with --recommend: nor does anything of its category)\n");
        return 1;
    }
    fprintf (stderr, "appferry: %s refused: %s (%s)\n", command, s_str (doc, "reason"), s_str (doc, "error"));
    return 1;
}
