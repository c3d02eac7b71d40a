/* reflexd's command line: one parser that reports errors instead of exiting, so the
 * fuzzer (tests/fuzz/fuzz_reflexd_args.c) can run it on any argv. */
#ifndef REFLEX_REFLEXD_OPTIONS_H
#define REFLEX_REFLEXD_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "reflexd/config.h"
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
	unsigned int max_flows; /* sizes tc_flows, sock_flows, cwnd_decisions and reflexd's table */
	unsigned int ring_kb;   /* sizes tc_events and sock_events */
	unsigned int rt_priority; /* SCHED_FIFO priority of the decision loop; 0: the normal scheduler */
	struct reflex_config config;
	struct controller_opts control;
	bool auto_promote;
	double shadow_period_s;
	bool cleanup_only;
	bool verbose;
	bool policy_given; /* --policy was on the command line or in the config file */
	/* Edge-router mode: --lan and --path (user/router.h). */
	bool router_mode;
	/* ... with window caps on forwarded TCP flows (router_window.h): asked for by
	 * --policy, --model cwnd=/dqn= or --shadow, as rewriting the windows of a LAN's
	 * flows is something an operator opts into; --observe turns it off. */
	bool router_windows;
	struct router_opts router;
	bool print_classes;
	/* Service: --config FILE (its keys come before the command line's options, which
	 * override them), --check-config, --metrics-listen, logging. */
	const char *config_path;
	bool check_config;
	const char *metrics_listen;
	bool quiet;
	unsigned long long decision_log_max_bytes;
	unsigned decision_log_keep;
	struct config_file file;
};

/* --ring-kb's range: a ring holds at least ~450 records and at most what a system
 * call maps comfortably. */
#define RING_KB_MIN 64
#define RING_KB_MAX 65536

/* --rt-priority's range: SCHED_FIFO's priorities on Linux. */
#define RT_PRIORITY_MAX 99

/* The default cap of the decision log and the rotated files kept beside it. */
#define DECISION_LOG_MAX_BYTES_DEFAULT (64ULL << 20)
#define DECISION_LOG_KEEP_DEFAULT 3

enum reflexd_args {
	REFLEXD_ARGS_RUN = 0,
	REFLEXD_ARGS_HELP,
	REFLEXD_ARGS_ERROR, /* err holds one line naming the option and the problem */
};

enum reflexd_args reflexd_parse_args(int argc, char **argv, struct reflexd_options *opt, struct reflex_err *err);
void reflexd_usage(FILE *out);
/* --check-config beyond the options: the classes file and every model file load.
 * 0, or -1 with err naming the file (and the config key it came from). */
int reflexd_check_files(const struct reflexd_options *opt, struct reflex_err *err);
/* SIGHUP with --config: fresh is the file read again under the same command line
 * (fresh must outlive its use: the options point into it). live lists, comma
 * separated, the keys that changed and reflexd applies at once (the model files,
 * sample-interval-ms, flush-threshold, max-batch-delay-us, explore); restart those
 * that changed and need a restart. 0, or -1 with err (keep the running options). */
int reflexd_reload_diff(const struct reflexd_options *running, const struct reflexd_options *fresh, char *live,
			size_t live_len, char *restart, size_t restart_len);
/* The effective configuration, in the config file's format (--check-config). */
void reflexd_print_config(const struct reflexd_options *opt, FILE *out);

#endif
