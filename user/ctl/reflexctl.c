/* reflexctl: the operator's view of reflex: live flows from the pinned maps and the
 * `.reflex` model tools. Each subcommand lives in its own ctl_*.c module. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "status", ctl_status_main, "is reflexd running and healthy: mode, models, heartbeat, maps" },
	{ "flows", ctl_flows_main, "live per-flow table from the pinned maps" },
	{ "decisions", ctl_decisions_main, "decision changes from reflexd's decision log" },
	{ "model", ctl_model_main, "inspect, verify, eval and explain .reflex models" },
	{ "paths", ctl_paths_main, "edge router: per class and path, pulls, reward, UCB index, flows" },
	{ "promote", ctl_promote_main, "let a shadow-mode reflexd act, if the gate passes" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexctl COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\n`reflexctl COMMAND --help` for the options of one command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "reflexctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
