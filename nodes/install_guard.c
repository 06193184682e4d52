/*  =========================================================================
    appferry-install-guard - the operator's install command dies with the node

    The node runs an operator's install command (--install-cmd) in a
    process group of its own, so a time limit can kill all of it. That
    group outlives the node: killed with SIGKILL, the node leaves its
    command running, and the node started again gets the offer again and
    would run a second install beside the first. So the node does not run
    the command itself; it runs this guard, which becomes the group's
    leader, asks the kernel for a signal when its parent (the node) dies
    (PR_SET_PDEATHSIG; it reaches only the direct child, hence a guard),
    and runs the command as its child in the same group. When the node
    dies, the guard kills the whole group, itself included. Otherwise it
    waits for the command and ends as it did (its exit status, or the
    signal that killed it), so the node sees the command's outcome.

    Usage (by the node): appferry-install-guard NODE-PID PROGRAM [ARG...]
    Nothing else is done with the arguments; PROGRAM is run with execv.
    =========================================================================
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

//  The node died: the whole group goes, this process with it
static void
s_parent_died (int signum)
{
    (void) signum;
    kill (0, SIGKILL);
    _exit (137);
}

int
main (int argc, char *argv [])
{
    if (argc == 2 && (!strcmp (argv [1], "--help") || !strcmp (argv [1], "-h"))) {
        printf ("Usage: appferry-install-guard NODE-PID PROGRAM [ARG...]\n"
                "Run by appferry-node, not by hand: runs PROGRAM (an operator's install\n"
                "command) as its child in its own process group, and kills that whole\n"
                "group if the node NODE-PID dies first; else ends as PROGRAM did.\n");
        return 0;
    }
    if (argc < 3) {
        fprintf (stderr, "usage: appferry-install-guard NODE-PID PROGRAM [ARG...] (see --help)\n");
        return 2;
    }
    pid_t node = (pid_t) atol (argv [1]);
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_parent_died;
    sigemptyset (&action.sa_mask);
    if (sigaction (SIGUSR1, &action, NULL) || prctl (PR_SET_PDEATHSIG, SIGUSR1)) {
        perror ("appferry-install-guard: cannot watch the node");
        return 126;
    }
    //  The node may have died before the request took effect
    if (getppid () != node)
        s_parent_died (0);
    //  The group is ours: the node made it for the command (setpgid)
    if (getpgrp () != getpid ())
        setpgid (0, 0);
    pid_t child = fork ();
    if (child < 0) {
        perror ("appferry-install-guard: cannot start the install command");
        return 126;
    }
    if (child == 0) {
        signal (SIGUSR1, SIG_DFL);
        execv (argv [2], argv + 2);
        perror ("appferry-install-guard: cannot run the install command");
        _exit (127);
    }
    int status;
    while (waitpid (child, &status, 0) < 0)
        if (errno != EINTR)
            return 126;
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    //  Killed: end the same way, so the node reports the same signal
    int signum = WTERMSIG (status);
    signal (signum, SIG_DFL);
    kill (getpid (), signum);
    return 128 + signum;
}
