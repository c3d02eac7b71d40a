/* Subcommands of reflexctl, one module each: each takes the argv after its own name
 * (argv[0] is the subcommand) and returns the process exit code. */
#ifndef REFLEX_CTL_H
#define REFLEX_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "router/router_view.h"

int ctl_model_main(int argc, char **argv);   /* user/ctl_model.c */
int ctl_flows_main(int argc, char **argv);   /* user/ctl_flows.c */
int ctl_decisions_main(int argc, char **argv); /* user/ctl_decisions.c */
int ctl_promote_main(int argc, char **argv);   /* user/ctl_promote.c */
int ctl_paths_main(int argc, char **argv);     /* user/ctl_paths.c */
int ctl_status_main(int argc, char **argv);    /* user/ctl_status.c */

/* A router reflexd's view file (router_view.h), read and parsed; with live, its writer
 * must still run. 0, or -1 after saying why on stderr (who: the subcommand). The
 * caller frees *view and *text (the file as read, *len bytes) either way. */
int ctl_router_view_read(const char *who, const char *file, bool live, struct router_view **view, char **text,
			 size_t *len);

#endif
