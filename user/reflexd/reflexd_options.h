/* reflexd's command line: one parser that reports errors instead of exiting, so the
 * fuzzer (tests/fuzz/fuzz_reflexd_args.c) can run it on any argv. */
#ifndef REFLEX_REFLEXD_OPTIONS_H
#define REFLEX_REFLEXD_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "reflexd/controller.h"
#include "reflex.h"
#include "router/router.h"

struct reflexd_options {
	const char *cgroup;
	const char *iface;
	const char *pin_dir;
	const char *telemetry_out;
	const char *records_out;
	double duration_s;
	struct reflex_config config;
	struct controller_opts control;
	bool auto_promote;
	double shadow_period_s;
	bool cleanup_only;
	bool verbose;
	/* Edge-router mode: --lan and --path (user/router.h). */
	bool router_mode;
	struct router_opts router;
	bool print_classes;
};

enum reflexd_args {
	REFLEXD_ARGS_RUN = 0,
	REFLEXD_ARGS_HELP,
	REFLEXD_ARGS_ERROR, /* err holds one line naming the option and the problem */
};

enum reflexd_args reflexd_parse_args(int argc, char **argv, struct reflexd_options *opt, char *err, size_t err_len);
void reflexd_usage(FILE *out);

#endif
