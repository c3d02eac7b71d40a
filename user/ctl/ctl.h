/* Subcommands of reflexctl, one module each: each takes the argv after its own name
 * (argv[0] is the subcommand) and returns the process exit code. */
#ifndef REFLEX_CTL_H
#define REFLEX_CTL_H

int ctl_model_main(int argc, char **argv);   /* user/ctl_model.c */
int ctl_flows_main(int argc, char **argv);   /* user/ctl_flows.c */
int ctl_decisions_main(int argc, char **argv); /* user/ctl_decisions.c */
int ctl_promote_main(int argc, char **argv);   /* user/ctl_promote.c */
int ctl_paths_main(int argc, char **argv);     /* user/ctl_paths.c */
int ctl_status_main(int argc, char **argv);    /* user/ctl_status.c */

#endif
