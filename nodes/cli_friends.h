/*  =========================================================================
    cli_friends - the `appferry` commands of friends (issue 13)

    contacts import|me|list, friends, block, unblock, share, friend-apps,
    recommend, inbox, refuse, accept, friend-install: how each is checked,
    turned into the node's verb and arguments, and printed for a person.
    =========================================================================
*/
#ifndef CLI_FRIENDS_H_INCLUDED
#define CLI_FRIENDS_H_INCLUDED

#include <czmq.h>
#include <jansson.h>

//  The options these commands take
typedef struct {
    const char *country;            //  --country CC
    const char *share;              //  --friends, --public, --private: its name
    bool list;                      //  share --list
    bool all, none;                 //  refuse --all, --none
    const char *to;                 //  recommend --to CONTACT
} cli_friends_opts_t;

//  Usage lines for --help
extern const char *cli_friends_usage;

//  Whether command is one of these
bool cli_friends_is (const char *command);

//  Check the arguments: 0, or 2 with the usage printed
int cli_friends_check (const char *command, int nargs, char **args, const cli_friends_opts_t *opts);

//  The node's verb and arguments into request
void cli_friends_request (const char *command, int nargs, char **args, const cli_friends_opts_t *opts,
                          zmsg_t *request);

//  Print the node's answer for a person
void cli_friends_print (const char *command, int nargs, char **args, json_t *doc);

#endif
