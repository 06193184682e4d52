/*  =========================================================================
    cli_backup - the `appferry` commands of backups (issue 15)

    backup PROGRAM [--with-config], backups [PROGRAM], restore PROGRAM
    [--version V] [--latest] [--recommend]: how each is checked, turned
    into the node's verb and arguments, and printed for a person.
    =========================================================================
*/
#ifndef CLI_BACKUP_H_INCLUDED
#define CLI_BACKUP_H_INCLUDED

#include <czmq.h>
#include <jansson.h>

//  The options these commands take
typedef struct {
    bool with_config;               //  backup --with-config
    const char *version;            //  restore --version V
    bool latest;                    //  restore --latest
    bool recommend;                 //  restore --recommend
} cli_backup_opts_t;

//  Usage lines for --help
extern const char *cli_backup_usage;

//  Check the arguments: 0, or 2 with the usage printed
int cli_backup_check (const char *command, int nargs, char **args, const cli_backup_opts_t *opts);

//  The node's verb and arguments into request
void cli_backup_request (const char *command, int nargs, char **args, const cli_backup_opts_t *opts,
                         zmsg_t *request);

//  Print the node's answer for a person (ok: the command's; else a
//  refusal, with a restore's no-fit reason and recommendation). The exit
//  status.
int cli_backup_print (const char *command, bool ok, json_t *doc);

#endif
