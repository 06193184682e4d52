/*  =========================================================================
    cli_friends - the `appferry` commands of friends (issue 13)
    =========================================================================
*/
#include "cli_friends.h"
#include <limits.h>
#include <stdlib.h>

const char *cli_friends_usage =
"  contacts import FILE [--country CC]\n"
"                        read an address book (vCard .vcf or CSV), national\n"
"                        numbers in country CC (ISO, e.g. DE), and upload it as\n"
"                        tokens: the server never sees a number or a name\n"
"  contacts me NUMBER[,NUMBER...] [--country CC]\n"
"                        the account's own number(s), so friends find you\n"
"  contacts list         the address book as this device keeps it\n"
"  friends               the contacts who are your friends (your address books\n"
"                        share at least two contacts)\n"
"  block CONTACT, unblock CONTACT\n"
"                        never (again) be friends with CONTACT\n"
"  share PROGRAM --friends|--public|--private\n"
"                        who may see PROGRAM among your apps (default private)\n"
"  share --list          your apps' visibility\n"
"  friend-apps CONTACT   the apps CONTACT shares with you\n"
"  recommend PROGRAM --to CONTACT\n"
"                        tell a friend about PROGRAM (they see it in their inbox)\n"
"  inbox                 recommendations you received, numbered\n"
"  inbox install N       install the Nth of them on this device, as\n"
"                        friend-install from its sender\n"
"  refuse --all | --none | CONTACT, accept CONTACT\n"
"                        refuse recommendations from everyone (--none: from\n"
"                        nobody), or from one contact (accept: again)\n"
"  friend-install CONTACT PROGRAM\n"
"                        install on this device the package of a friend's\n"
"                        shared PROGRAM that fits it (its store link on iOS)\n";

static const char *s_names [] = { "contacts", "friends", "block", "unblock", "share", "friend-apps",
                                  "recommend", "inbox", "refuse", "accept", "friend-install", NULL };

bool
cli_friends_is (const char *command)
{
    for (int i = 0; s_names [i]; i++)
        if (streq (command, s_names [i]))
            return true;
    return false;
}

static int
s_usage (const char *line)
{
    fprintf (stderr, "appferry: usage: %s (see --help)\n", line);
    return 2;
}

int
cli_friends_check (const char *command, int nargs, char **args, const cli_friends_opts_t *o)
{
    if (streq (command, "contacts")) {
        bool ok = nargs >= 1 && ((streq (args [0], "import") && nargs == 2) || (streq (args [0], "me") && nargs == 2)
                               || (streq (args [0], "list") && nargs == 1));
        return ok? 0: s_usage ("contacts import FILE | contacts me NUMBER | contacts list [--country CC]");
    }
    if (streq (command, "share"))
        return (o->list && nargs == 0) || (!o->list && o->share && nargs == 1)? 0:
               s_usage ("share PROGRAM --friends|--public|--private, or share --list");
    if (streq (command, "recommend"))
        return nargs == 1 && o->to && *o->to? 0: s_usage ("recommend PROGRAM --to CONTACT");
    if (streq (command, "refuse"))
        return (nargs == 1 && !o->all && !o->none) || (nargs == 0 && (o->all != o->none))? 0:
               s_usage ("refuse --all | refuse --none | refuse CONTACT");
    if (streq (command, "friend-install"))
        return nargs == 2? 0: s_usage ("friend-install CONTACT PROGRAM");
    if (streq (command, "inbox") && nargs == 2) {
        char *end = NULL;
        long n = strtol (args [1], &end, 10);
        return streq (args [0], "install") && *end == '\0' && n >= 1? 0: s_usage ("inbox [install N]");
    }
    if (streq (command, "friends") || streq (command, "inbox"))
        return nargs == 0? 0: s_usage (command);
    return nargs == 1? 0: s_usage ("block|unblock|accept|friend-apps CONTACT");
}

void
cli_friends_request (const char *command, int nargs, char **args, const cli_friends_opts_t *o, zmsg_t *request)
{
    (void) nargs;
    if (streq (command, "contacts")) {
        char verb [32], path [PATH_MAX];
        snprintf (verb, sizeof verb, "contacts-%s", args [0]);
        zmsg_addstr (request, verb);
        if (streq (args [0], "import"))
            //  The node reads the file: name it from anywhere
            zmsg_addstr (request, realpath (args [1], path)? path: args [1]);
        else
        if (streq (args [0], "me"))
            zmsg_addstr (request, args [1]);
        zmsg_addstr (request, o->country? o->country: "");
    }
    else
    if (streq (command, "share") && o->list)
        zmsg_addstr (request, "share-list");
    else
    if (streq (command, "share"))
    {
        zmsg_addstr (request, "share");
        zmsg_addstr (request, args [0]);
        zmsg_addstr (request, o->share);
    }
    else
    if (streq (command, "recommend")) {
        zmsg_addstr (request, "recommend");
        zmsg_addstr (request, args [0]);
        zmsg_addstr (request, o->to);
    }
    else
    if (streq (command, "inbox") && nargs == 2) {
        zmsg_addstr (request, "inbox-install");
        zmsg_addstr (request, args [1]);
    }
    else
    if (streq (command, "refuse") || streq (command, "accept")) {
        zmsg_addstr (request, "refuse");
        zmsg_addstr (request, streq (command, "accept")? "accept": o->all? "all": o->none? "none": "contact");
        if (nargs == 1)
            zmsg_addstr (request, args [0]);
    }
    else {
        zmsg_addstr (request, command);
        for (int i = 0; i < nargs; i++)
            zmsg_addstr (request, args [i]);
    }
}

static const char *
s_str (json_t *obj, const char *key)
{
    const char *value = json_string_value (json_object_get (obj, key));
    return value? value: "";
}

static void
s_print_apps (const char *title, json_t *doc)
{
    size_t index;
    json_t *app, *apps = json_object_get (doc, "apps");
    printf ("%s: %zu app%s\n", title, json_array_size (apps), json_array_size (apps) == 1? "": "s");
    json_array_foreach (apps, index, app)
        printf ("  %-24s %-12s %s\n", s_str (app, "program"), s_str (app, "versionName"), s_str (app, "share"));
}

void
cli_friends_print (const char *command, int nargs, char **args, json_t *doc)
{
    size_t index;
    json_t *entry;
    if (streq (command, "contacts") && json_object_get (doc, "numbers"))
        printf ("Imported %lld contacts (%lld numbers, %lld entries refused); only tokens left this device.\n",
                (long long) json_integer_value (json_object_get (doc, "contacts")),
                (long long) json_integer_value (json_object_get (doc, "numbers")),
                (long long) json_integer_value (json_object_get (doc, "refused")));
    else
    if (streq (command, "contacts") && nargs && streq (args [0], "me")) {
        json_array_foreach (json_object_get (doc, "me"), index, entry)
            printf ("Your number %s is registered (as a token).\n", s_str (entry, "number"));
    }
    else
    if (streq (command, "contacts")) {
        json_array_foreach (json_object_get (doc, "contacts"), index, entry) {
            char *numbers = json_dumps (json_object_get (entry, "numbers"), JSON_COMPACT);
            printf ("  %-30s %s\n", s_str (entry, "name"), numbers? numbers: "");
            free (numbers);
        }
    }
    else
    if (streq (command, "friends")) {
        json_t *list = json_object_get (doc, "friends");
        if (!json_array_size (list))
            printf ("No friends found among your contacts yet.\n");
        json_array_foreach (list, index, entry)
            printf ("  %-30s %s\n", s_str (entry, "name"), s_str (entry, "number"));
    }
    else
    if (streq (command, "share") && json_object_get (doc, "apps"))
        s_print_apps ("Shared", doc);
    else
    if (streq (command, "friend-apps"))
        s_print_apps (s_str (doc, "contact"), doc);
    else
    if (streq (command, "inbox")) {
        json_t *list = json_object_get (doc, "inbox");
        if (!json_array_size (list))
            printf ("No recommendations.\n");
        json_array_foreach (list, index, entry)
            printf ("  %zu. %s recommends %s %s\n", index + 1, s_str (entry, "from"), s_str (entry, "program"),
                    s_str (entry, "versionName"));
        if (json_array_size (list))
            printf ("(appferry inbox install N installs one)\n");
    }
    else
        printf ("Done: %s%s%s.\n", s_str (doc, "done"), *s_str (doc, "program")? " ": "", s_str (doc, "program"));
}
