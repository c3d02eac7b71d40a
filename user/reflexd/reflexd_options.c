#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "reflexd/metrics.h"
#include "reflexd/reflexd_options.h"
#include "model/model.h"
#include "router/bandit.h"
#include "router/classify.h"

void reflexd_usage(FILE *out)
{
	fprintf(out,
		"usage: reflexd --iface IF [--cgroup PATH] [options]\n"
		"\n"
		"Attaches reflex's BPF telemetry (sockops on a cgroup v2, tc on an interface),\n"
		"computes feature windows (200 ms every 100 ms) and detaches on SIGINT/SIGTERM.\n"
		"\n"
		"  --iface IF               interface for tc telemetry and root-qdisc stats (required)\n"
		"  --cgroup PATH            cgroup v2 whose TCP sockets sockops samples (omit: tc only)\n"
		"  --pin-dir DIR            where maps and links are pinned (default %s)\n"
		"  --telemetry-out FILE     write the windows as CSV (schema: README)\n"
		"  --records-out FILE       write one ts_ns,ring,cpu row per ring-buffer record\n"
		"  --duration SEC           stop after SEC seconds (default: run until signalled)\n"
		"  --sample-interval-ms N   per-flow sample spacing, 1..1000 (default %llu)\n"
		"  --flush-threshold N      ring-buffer wakeup every N records, 1..64 (default %d)\n"
		"  --max-batch-delay-us N   ring-buffer poll timeout, 50..4000 (default %d)\n"
		"  --max-flows N            flows tracked, 64..1048576 (default %d): sizes the BPF flow\n"
		"                           maps and reflexd's table; when full, a new socket of the\n"
		"                           cgroup displaces a tc-only flow, other new flows are refused\n"
		"                           (both counted)\n"
		"  --ring-kb N              size of each ring buffer (tc, sockops) in KiB, a power of\n"
		"                           two, 64..65536 (default %d); each is N KiB of reflexd's RSS\n"
		"  --rt-priority N          run the decision loop at SCHED_FIFO priority N, 1..99\n"
		"                           (default 0: the normal scheduler), so that on a loaded\n"
		"                           host a decision waits for no ordinary task; the learner and\n"
		"                           the metrics server stay at the normal scheduler\n"
		"\n"
		"control (cwnd needs --cgroup; on a router, --lan/--path, it caps forwarded TCP\n"
		"flows' windows instead, when --policy, --model cwnd=/dqn= or --shadow asks for it):\n"
		"  --model ROLE=FILE        load a .reflex model; ROLE is cwnd (tree), dqn (int8 MLP)\n"
		"                           or batching (repeatable); a model that fails to load\n"
		"                           leaves the heuristic (1.25 x BDP) or the defaults\n"
		"  --policy cwnd=P          what decides caps: tree (default: the cwnd model, else the\n"
		"                           heuristic), dqn (needs --model dqn=FILE) or heuristic\n"
		"  --explore EPS            dqn: take a random action with probability EPS (default 0)\n"
		"  --drift-threshold PSI    hand a tree model's decisions to the heuristic while the mean\n"
		"                           PSI of its inputs against its training reference stays above\n"
		"                           PSI; 0: measured and reported, never acted on (default\n"
		"                           `model`: the threshold the forge calibrated into the model,\n"
		"                           0 for a model without one)\n"
		"  --drift-window-s S       the PSI covers the last S seconds of windows (default 60)\n"
		"  --drift-hold-s S         over the threshold this long hands over, under half of it this\n"
		"                           long hands back (default 10)\n"
		"  --anomaly-threshold S    a flow whose windows score an anomaly above S (0..1) against\n"
		"                           the cwnd tree's isolation forest for --anomaly-hold windows\n"
		"                           in a row is decided by the heuristic (default 0.65; 0: off)\n"
		"  --anomaly-hold N         windows (100 ms) above the threshold before, and below it\n"
		"                           before the tree decides again (default 10)\n"
		"  --learn                  dqn: fine-tune the model on-line from the flows' transitions\n"
		"                           in a background thread and decide with its latest int8 model;\n"
		"                           20 %% of decisions stay with the loaded model as a canary, and\n"
		"                           learning restarts from it if the fine-tuned model does worse\n"
		"  --learn-out FILE         with --learn: write the fine-tuned model there at exit\n"
		"  --actuator A             how a cwnd decision acts: clamp (default: TCP_BPF_SNDCWND_CLAMP\n"
		"                           over the flow's own congestion control) or cc (sockops moves\n"
		"                           the cgroup's connections to the 'reflex' BPF congestion\n"
		"                           control, whose cwnd is the decision, CUBIC without one)\n"
		"  --observe                telemetry only: decide nothing, enforce nothing\n"
		"  --shadow                 decide and log, enforce nothing; every 10 s report the\n"
		"                           expected delta p95 and oscillations (reflexctl promote)\n"
		"  --auto-promote           after --shadow-period, act if the gate passes:\n"
		"                           delta p95 <= -10 %% and <= 1 oscillation per 30 s\n"
		"  --shadow-period SEC      shadow time before --auto-promote decides (default 600)\n"
		"  --decision-log FILE      append every decision change as a JSON line\n"
		"                           (default /run/reflex/PIN.decisions, read by reflexctl decisions)\n"
		"  SIGHUP, or a model file being replaced, reloads the models; one that fails\n"
		"  validation is refused and the running one keeps deciding.\n"
		"  SIGUSR1 (reflexctl promote) leaves shadow mode if the gate passes.\n"
		"  --cleanup                remove what a dead reflexd left for --pin-dir, then exit;\n"
		"                           with --actuator cc, also any dead reflexd's 'reflex' CC\n"
		"  -v, --verbose            libbpf debug output and per-window lines\n"
		"  -q, --quiet              warnings and errors only\n"
		"\n"
		"service:\n"
		"  --config FILE            read options from an INI file (reflex(5)); the command\n"
		"                           line overrides it (its --path list replaces the file's)\n"
		"  --check-config           validate the options and print the effective configuration\n"
		"  --metrics-listen [ADDR:]PORT  serve Prometheus metrics over HTTP (/metrics); a port\n"
		"                           alone listens on 127.0.0.1 (default: off)\n"
		"  --decision-log-max-bytes N  rotate the decision log at N bytes (default 64 MiB)\n"
		"  --decision-log-keep N    rotated decision logs kept, FILE.1 .. FILE.N (default 3)\n"
		"  -h, --help               this text\n"
		"\n"
		"\n"
		"edge router (instead of --iface/--cgroup): reflexd --lan IF --path NAME:IF:NEXTHOP ...\n"
		"  --lan IF                 the LAN-side interface whose forwarded flows are steered\n"
		"  --path NAME:IF:NEXTHOP   an uplink and its next hop(s), IPv4 and/or IPv6 joined by\n"
		"                           ',' (repeatable, up to 4)\n"
		"  --classes FILE           traffic-class rules (INI; default: the built-in table)\n"
		"  --print-classes          print the effective class table and exit\n"
		"  --bandit MODE            ucb1 (default), discounted, sliding-window, round-robin\n"
		"  --bandit-c C             the bandit's exploration weight\n"
		"  --mark-mask M            the bits of the packet mark reflexd owns (default 0x00ff0000)\n"
		"  --mark-base B            path i's mark is B + i x M's lowest bit (default 0x00520000);\n"
		"                           each path gets `ip rule fwmark MARK/M lookup 21074+i`\n"
		"  --move-flows             move a failed path's flows to another path: only for\n"
		"                           un-NAT'd uplinks (a NAT'd flow cannot change uplink)\n"
		"  SIGHUP reloads the classes file (and the models); `reflexctl paths` shows the paths\n"
		"  and flows, `reflexctl flows` each forwarded flow's window cap.\n"
		"\n"
		"Exit codes: 0 stopped cleanly, 1 runtime error, 2 bad usage or setup failure\n"
		"(nothing is left attached).\n",
		REFLEX_DEFAULT_PIN_DIR, REFLEX_DEFAULT_SAMPLE_INTERVAL_NS / 1000000, REFLEX_DEFAULT_FLUSH_THRESHOLD,
		REFLEX_DEFAULT_MAX_BATCH_DELAY_US, REFLEX_MAX_FLOWS, REFLEX_RINGBUF_BYTES / 1024);
}

struct parse_ctx {
	struct reflex_err *err;
	bool failed;
	const struct config_file *file;
	const struct config_entry *origin; /* the file key the current option came from */
};

/* Where the value of a file's key came from: "FILE:LINE: [section] key 'K'". */
static void at_entry(struct reflex_err *err, const char *path, const struct config_entry *entry)
{
	reflex_err_at_file(err, path);
	reflex_err_at_line(err, entry->line, 0);
	reflex_err_at_field(err, "[%s] key '%s'", entry->section, entry->key);
}

static void usage_error(struct parse_ctx *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A message "--option: why" names its option as the field; the option of a file's key
 * reads "FILE:LINE: [section] key 'key': why" instead. */
static void usage_error(struct parse_ctx *e, const char *fmt, ...)
{
	char msg[512];
	const char *why = msg;
	size_t option_len = 0;
	va_list ap;

	if (e->failed)
		return; /* the first problem is the one reported */
	e->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!strncmp(msg, "--", 2)) {
		option_len = strcspn(msg, ": ");
		if (strncmp(msg + option_len, ": ", 2))
			option_len = 0;
		else
			why = msg + option_len + 2;
	}
	reflex_err_set(e->err, "%s", why);
	if (e->origin)
		at_entry(e->err, e->file->path, e->origin);
	else if (option_len)
		reflex_err_at_field(e->err, "%.*s", (int)option_len, msg);
}

/* The file entry an argument came from, or NULL for the command line's. */
static const struct config_entry *origin_of(const struct config_file *file, const char *arg)
{
	for (int i = 0; i < file->count; i++)
		if (arg == file->entries[i].arg)
			return &file->entries[i];
	return NULL;
}

/* --config FILE's value, found before parsing (the file's options go first). */
static const char *find_config_path(int argc, char **argv)
{
	const char *path = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
	}
	return path;
}

static bool has_option(int argc, char **argv, const char *name)
{
	size_t len = strlen(name);

	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], name, len) && (argv[i][len] == '\0' || argv[i][len] == '='))
			return true;
	return false;
}

#define MERGED_MAX (CONFIG_MAX_ENTRIES + 256)

static unsigned long parse_ulong(struct parse_ctx *e, const char *option, const char *value, unsigned long min,
				 unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || n < min || n > max)
		usage_error(e, "%s: '%s' is not a whole number in %lu..%lu", option, value, min, max);
	return n;
}

static double parse_seconds(struct parse_ctx *e, const char *option, const char *value)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(value, &end);
	if (errno || end == value || *end || !(d > 0) || d > 86400.0 * 365)
		usage_error(e, "%s: '%s' is not a positive number of seconds", option, value);
	return d;
}

enum reflexd_args reflexd_parse_args(int argc, char **argv, struct reflexd_options *opt, struct reflex_err *err)
{
	struct parse_ctx e = { .err = err };
	enum { OPT_CGROUP = 256, OPT_IFACE, OPT_PIN_DIR, OPT_TELEMETRY_OUT, OPT_RECORDS_OUT, OPT_DURATION,
	       OPT_SAMPLE_INTERVAL, OPT_FLUSH_THRESHOLD, OPT_MAX_BATCH_DELAY, OPT_CLEANUP, OPT_MODEL, OPT_OBSERVE,
	       OPT_SHADOW, OPT_DECISION_LOG, OPT_AUTO_PROMOTE, OPT_SHADOW_PERIOD, OPT_POLICY, OPT_EXPLORE, OPT_LAN,
	       OPT_PATH, OPT_CLASSES, OPT_PRINT_CLASSES, OPT_BANDIT, OPT_BANDIT_C, OPT_ACTUATOR,
	       OPT_LEARN, OPT_LEARN_OUT, OPT_CONFIG, OPT_CHECK_CONFIG, OPT_METRICS_LISTEN, OPT_DECISION_LOG_MAX,
	       OPT_DECISION_LOG_KEEP, OPT_MARK_BASE, OPT_MARK_MASK, OPT_MOVE_FLOWS, OPT_MAX_FLOWS, OPT_RING_KB,
	       OPT_RT_PRIORITY, OPT_DRIFT_THRESHOLD, OPT_DRIFT_WINDOW, OPT_DRIFT_HOLD, OPT_ANOMALY_THRESHOLD,
	       OPT_ANOMALY_HOLD };
	static const struct option longopts[] = {
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "iface", required_argument, NULL, OPT_IFACE },
		{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
		{ "telemetry-out", required_argument, NULL, OPT_TELEMETRY_OUT },
		{ "records-out", required_argument, NULL, OPT_RECORDS_OUT },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "sample-interval-ms", required_argument, NULL, OPT_SAMPLE_INTERVAL },
		{ "flush-threshold", required_argument, NULL, OPT_FLUSH_THRESHOLD },
		{ "max-batch-delay-us", required_argument, NULL, OPT_MAX_BATCH_DELAY },
		{ "max-flows", required_argument, NULL, OPT_MAX_FLOWS },
		{ "ring-kb", required_argument, NULL, OPT_RING_KB },
		{ "rt-priority", required_argument, NULL, OPT_RT_PRIORITY },
		{ "cleanup", no_argument, NULL, OPT_CLEANUP },
		{ "model", required_argument, NULL, OPT_MODEL },
		{ "observe", no_argument, NULL, OPT_OBSERVE },
		{ "shadow", no_argument, NULL, OPT_SHADOW },
		{ "decision-log", required_argument, NULL, OPT_DECISION_LOG },
		{ "auto-promote", no_argument, NULL, OPT_AUTO_PROMOTE },
		{ "shadow-period", required_argument, NULL, OPT_SHADOW_PERIOD },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "explore", required_argument, NULL, OPT_EXPLORE },
		{ "drift-threshold", required_argument, NULL, OPT_DRIFT_THRESHOLD },
		{ "drift-window-s", required_argument, NULL, OPT_DRIFT_WINDOW },
		{ "drift-hold-s", required_argument, NULL, OPT_DRIFT_HOLD },
		{ "anomaly-threshold", required_argument, NULL, OPT_ANOMALY_THRESHOLD },
		{ "anomaly-hold", required_argument, NULL, OPT_ANOMALY_HOLD },
		{ "learn", no_argument, NULL, OPT_LEARN },
		{ "learn-out", required_argument, NULL, OPT_LEARN_OUT },
		{ "actuator", required_argument, NULL, OPT_ACTUATOR },
		{ "lan", required_argument, NULL, OPT_LAN },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "classes", required_argument, NULL, OPT_CLASSES },
		{ "print-classes", no_argument, NULL, OPT_PRINT_CLASSES },
		{ "bandit", required_argument, NULL, OPT_BANDIT },
		{ "bandit-c", required_argument, NULL, OPT_BANDIT_C },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
		{ "decision-log-max-bytes", required_argument, NULL, OPT_DECISION_LOG_MAX },
		{ "decision-log-keep", required_argument, NULL, OPT_DECISION_LOG_KEEP },
		{ "quiet", no_argument, NULL, 'q' },
		{ "mark-base", required_argument, NULL, OPT_MARK_BASE },
		{ "mark-mask", required_argument, NULL, OPT_MARK_MASK },
		{ "move-flows", no_argument, NULL, OPT_MOVE_FLOWS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	enum cwnd_policy policy = CWND_POLICY_TREE;
	static char *merged[MERGED_MAX + 1];
	int merged_count = 0;
	struct reflex_err why = { 0 };
	int c;

	memset(opt, 0, sizeof(*opt));
	opt->decision_log_max_bytes = DECISION_LOG_MAX_BYTES_DEFAULT;
	opt->decision_log_keep = DECISION_LOG_KEEP_DEFAULT;
	opt->config_path = find_config_path(argc, argv);
	if (opt->config_path && config_load(&opt->file, opt->config_path, err))
		return REFLEXD_ARGS_ERROR;
	if (argc + opt->file.count > MERGED_MAX) {
		usage_error(&e, "more than %d arguments", MERGED_MAX);
		return REFLEXD_ARGS_ERROR;
	}
	merged[merged_count++] = argc > 0 ? argv[0] : "reflexd";
	{
		bool cli_paths = has_option(argc, argv, "--path");

		for (int i = 0; i < opt->file.count; i++)
			if (!(cli_paths && !strcmp(opt->file.entries[i].key, "path")))
				merged[merged_count++] = opt->file.entries[i].arg;
	}
	for (int i = 1; i < argc; i++)
		merged[merged_count++] = argv[i];
	merged[merged_count] = NULL;
	e.file = &opt->file;
	argc = merged_count;
	argv = merged;
	router_opts_init(&opt->router);
	opt->pin_dir = REFLEX_DEFAULT_PIN_DIR;
	opt->config.sample_interval_ns = REFLEX_DEFAULT_SAMPLE_INTERVAL_NS;
	opt->config.flush_threshold = REFLEX_DEFAULT_FLUSH_THRESHOLD;
	opt->config.max_batch_delay_us = REFLEX_DEFAULT_MAX_BATCH_DELAY_US;
	opt->config.heartbeat_deadline_ns = REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS;
	opt->control.policy = CWND_POLICY_TREE;
	opt->shadow_period_s = 600;
	opt->max_flows = REFLEX_MAX_FLOWS;
	opt->ring_kb = REFLEX_RINGBUF_BYTES / 1024;
	opt->control.hysteresis = (struct hysteresis_params)HYSTERESIS_DEFAULTS;
	opt->control.health = (struct model_health_opts)MODEL_HEALTH_DEFAULTS;

	/* optind 0 makes glibc's getopt start over (the fuzzer parses many argvs); opterr 0
	 * and the leading ':' let us word the errors ourselves. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vqh", longopts, NULL)) != -1) {
		e.origin = optind > 0 ? origin_of(&opt->file, argv[optind - 1]) : NULL;
		switch (c) {
		case OPT_CGROUP: opt->cgroup = optarg; break;
		case OPT_IFACE: opt->iface = optarg; break;
		case OPT_PIN_DIR: opt->pin_dir = optarg; break;
		case OPT_TELEMETRY_OUT: opt->telemetry_out = optarg; break;
		case OPT_RECORDS_OUT: opt->records_out = optarg; break;
		case OPT_DURATION: opt->duration_s = parse_seconds(&e, "--duration", optarg); break;
		case OPT_SAMPLE_INTERVAL:
			opt->config.sample_interval_ns =
				parse_ulong(&e, "--sample-interval-ms", optarg, 1, 1000) * 1000000ULL;
			break;
		case OPT_FLUSH_THRESHOLD:
			opt->config.flush_threshold = parse_ulong(&e, "--flush-threshold", optarg, FLUSH_THRESHOLD_MIN,
								  FLUSH_THRESHOLD_MAX);
			break;
		case OPT_MAX_BATCH_DELAY:
			opt->config.max_batch_delay_us = parse_ulong(&e, "--max-batch-delay-us", optarg,
								     MAX_BATCH_DELAY_US_MIN, MAX_BATCH_DELAY_US_MAX);
			break;
		case OPT_MAX_FLOWS:
			opt->max_flows = parse_ulong(&e, "--max-flows", optarg, 64, 1048576);
			break;
		case OPT_RING_KB:
			opt->ring_kb = parse_ulong(&e, "--ring-kb", optarg, RING_KB_MIN, RING_KB_MAX);
			/* a BPF ring buffer is a power-of-two number of pages */
			if (opt->ring_kb & (opt->ring_kb - 1))
				usage_error(&e, "--ring-kb: '%s' is not a power of two", optarg);
			break;
		case OPT_RT_PRIORITY:
			opt->rt_priority = parse_ulong(&e, "--rt-priority", optarg, 0, RT_PRIORITY_MAX);
			break;
		case OPT_CLEANUP: opt->cleanup_only = true; break;
		case OPT_MODEL:
			if (!strncmp(optarg, "cwnd=", 5) && optarg[5])
				opt->control.cwnd_model_path = optarg + 5;
			else if (!strncmp(optarg, "batching=", 9) && optarg[9])
				opt->control.batching_model_path = optarg + 9;
			else if (!strncmp(optarg, "dqn=", 4) && optarg[4])
				opt->control.dqn_model_path = optarg + 4;
			else
				usage_error(&e, "--model: '%s' is not cwnd=FILE, dqn=FILE or batching=FILE", optarg);
			break;
		case OPT_POLICY:
			opt->policy_given = true;
			if (!strcmp(optarg, "cwnd=tree"))
				policy = CWND_POLICY_TREE;
			else if (!strcmp(optarg, "cwnd=dqn"))
				policy = CWND_POLICY_DQN;
			else if (!strcmp(optarg, "cwnd=heuristic"))
				policy = CWND_POLICY_HEURISTIC;
			else
				usage_error(&e, "--policy: '%s' is not cwnd=tree, cwnd=dqn or cwnd=heuristic", optarg);
			break;
		case OPT_DRIFT_THRESHOLD: {
			char *end;

			errno = 0;
			if (!strcmp(optarg, "model")) {
				opt->control.health.threshold = DRIFT_THRESHOLD_FROM_MODEL;
				break;
			}
			opt->control.health.threshold = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(opt->control.health.threshold >= 0 &&
								  opt->control.health.threshold <= 100))
				usage_error(&e, "--drift-threshold: '%s' is not `model` or a PSI in 0..100", optarg);
			break;
		}
		case OPT_ANOMALY_THRESHOLD: {
			char *end;

			errno = 0;
			opt->control.health.anomaly_threshold = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(opt->control.health.anomaly_threshold >= 0 &&
								  opt->control.health.anomaly_threshold <= 1))
				usage_error(&e, "--anomaly-threshold: '%s' is not a score in 0..1", optarg);
			break;
		}
		case OPT_ANOMALY_HOLD:
			opt->control.health.anomaly_hold =
				(unsigned)parse_ulong(&e, "--anomaly-hold", optarg, 1, ANOMALY_MAX_HOLD);
			break;
		case OPT_DRIFT_WINDOW:
			opt->control.health.window_s =
				(unsigned)parse_ulong(&e, "--drift-window-s", optarg, 1, DRIFT_MAX_WINDOW_S);
			break;
		case OPT_DRIFT_HOLD:
			opt->control.health.hold_s =
				(unsigned)parse_ulong(&e, "--drift-hold-s", optarg, 0, DRIFT_MAX_WINDOW_S);
			break;
		case OPT_EXPLORE: {
			char *end;

			errno = 0;
			opt->control.explore = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(opt->control.explore >= 0 && opt->control.explore <= 1))
				usage_error(&e, "--explore: '%s' is not a probability in 0..1", optarg);
			break;
		}
		case OPT_ACTUATOR:
			if (!strcmp(optarg, "clamp"))
				opt->config.actuator = REFLEX_ACTUATOR_CLAMP;
			else if (!strcmp(optarg, "cc"))
				opt->config.actuator = REFLEX_ACTUATOR_CC;
			else
				usage_error(&e, "--actuator: '%s' is not clamp or cc", optarg);
			break;
		case OPT_LEARN: opt->control.learn = true; break;
		case OPT_LEARN_OUT: opt->control.learn_out_path = optarg; break;
		case OPT_OBSERVE: policy = CWND_POLICY_OFF; break;
		case OPT_SHADOW: opt->control.shadow = true; break;
		case OPT_DECISION_LOG: opt->control.decision_log_path = optarg; break;
		case OPT_AUTO_PROMOTE: opt->auto_promote = true; break;
		case OPT_SHADOW_PERIOD: opt->shadow_period_s = parse_seconds(&e, "--shadow-period", optarg); break;
		case OPT_LAN: opt->router.lan = optarg; opt->router_mode = true; break;
		case OPT_PATH:
			opt->router_mode = true;
			if (router_opts_add_path(&opt->router, optarg, &why))
				usage_error(&e, "--path: %s", why.msg);
			break;
		case OPT_CLASSES: opt->router.classes_path = optarg; break;
		case OPT_PRINT_CLASSES: opt->print_classes = true; break;
		case OPT_BANDIT:
			if (router_opts_set_bandit(&opt->router, optarg, &why))
				usage_error(&e, "--bandit: %s", why.msg);
			break;
		case OPT_BANDIT_C:
			if (router_opts_set_bandit_c(&opt->router, optarg, &why))
				usage_error(&e, "--bandit-c: %s", why.msg);
			break;
		case OPT_CONFIG: break; /* read above */
		case OPT_CHECK_CONFIG: opt->check_config = true; break;
		case OPT_METRICS_LISTEN:
			opt->metrics_listen = optarg;
			if (!metrics_listen_valid(optarg))
				usage_error(&e, "--metrics-listen: '%s' is not [ADDR:]PORT with ADDR an IPv4 "
						"address or [IPv6] and PORT 1..65535", optarg);
			break;
		case OPT_DECISION_LOG_MAX:
			opt->decision_log_max_bytes =
				parse_ulong(&e, "--decision-log-max-bytes", optarg, 4096, 1UL << 40);
			break;
		case OPT_DECISION_LOG_KEEP:
			opt->decision_log_keep = parse_ulong(&e, "--decision-log-keep", optarg, 0, 99);
			break;
		case 'q': opt->quiet = true; break;
		case OPT_MARK_BASE:
			if (router_opts_set_mark(&opt->router.mark_base, "--mark-base", optarg, &why))
				usage_error(&e, "%s", why.msg);
			break;
		case OPT_MARK_MASK:
			if (router_opts_set_mark(&opt->router.mark_mask, "--mark-mask", optarg, &why))
				usage_error(&e, "%s", why.msg);
			break;
		case OPT_MOVE_FLOWS: opt->router.move_flows = true; break;
		case 'v': opt->verbose = true; break;
		case 'h': return REFLEXD_ARGS_HELP;
		case ':':
			usage_error(&e, "option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			usage_error(&e, "unknown option '%s'", argv[optind - 1]);
		}
	}
	e.origin = NULL;
	opt->control.policy = policy;
	if (opt->verbose && opt->quiet)
		usage_error(&e, "--verbose and --quiet exclude each other");
	if (optind < argc)
		usage_error(&e, "unexpected argument '%s'", argv[optind]);
	if (policy == CWND_POLICY_DQN && !opt->control.dqn_model_path)
		usage_error(&e, "--policy cwnd=dqn needs --model dqn=FILE");
	if (opt->control.explore > 0 && policy != CWND_POLICY_DQN)
		usage_error(&e, "--explore is for --policy cwnd=dqn");
	if (opt->control.learn && policy != CWND_POLICY_DQN)
		usage_error(&e, "--learn fine-tunes the dqn: it needs --policy cwnd=dqn and --model dqn=FILE");
	if (opt->control.learn && opt->control.shadow)
		usage_error(&e, "--learn excludes --shadow: actions that are not applied teach nothing");
	if (opt->control.learn_out_path && !opt->control.learn)
		usage_error(&e, "--learn-out needs --learn");
	if (opt->router_mode) {
		if (opt->iface || opt->cgroup)
			usage_error(&e, "--lan/--path (edge router) and --iface/--cgroup (host) exclude each other");
		else if (!opt->cleanup_only && router_opts_check(&opt->router, &why))
			usage_error(&e, "%s", why.msg);
		else if (opt->control.batching_model_path)
			usage_error(&e, "--model batching= retunes a host's tc pipeline: a router has none to retune");
	} else if (!opt->cleanup_only && !opt->print_classes && !opt->iface) {
		usage_error(&e, "--iface is required");
	}
	if (strnlen(opt->pin_dir, PATH_MAX) >= PATH_MAX - 64 || opt->pin_dir[0] != '/')
		usage_error(&e, "--pin-dir must be an absolute path");
	if (opt->control.policy == CWND_POLICY_OFF &&
	    (opt->control.shadow || opt->control.cwnd_model_path || opt->control.batching_model_path ||
	     opt->control.dqn_model_path))
		usage_error(&e, "--observe decides nothing: it excludes --shadow and --model");
	if (opt->auto_promote && !opt->control.shadow)
		usage_error(&e, "--auto-promote needs --shadow");
	opt->router_windows = opt->router_mode && policy != CWND_POLICY_OFF &&
			      (opt->policy_given || opt->control.cwnd_model_path || opt->control.dqn_model_path ||
			       opt->control.shadow);
	if (opt->config.actuator == REFLEX_ACTUATOR_CC && !opt->cgroup && !opt->cleanup_only)
		usage_error(&e, "--actuator cc needs --cgroup (the connections it runs)");
	return e.failed ? REFLEXD_ARGS_ERROR : REFLEXD_ARGS_RUN;
}


static void print_value(FILE *out, const char *key, const char *value)
{
	if (value)
		fprintf(out, "%s = %s\n", key, value);
	else
		fprintf(out, "; %s (not set)\n", key);
}

static void print_flag(FILE *out, const char *key, bool on)
{
	fprintf(out, "%s = %s\n", key, on ? "true" : "false");
}

static const char *policy_key(enum cwnd_policy p)
{
	switch (p) {
	case CWND_POLICY_DQN: return "cwnd=dqn";
	case CWND_POLICY_HEURISTIC: return "cwnd=heuristic";
	case CWND_POLICY_TREE:
	case CWND_POLICY_OFF: break;
	}
	return "cwnd=tree";
}

static void print_path(FILE *out, const struct router_path *p)
{
	char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";

	if (p->has_nexthop4)
		inet_ntop(AF_INET, &p->nexthop4, a4, sizeof(a4));
	if (p->has_nexthop6)
		inet_ntop(AF_INET6, &p->nexthop6, a6, sizeof(a6));
	fprintf(out, "path = %s:%s:%s%s%s\n", p->name, p->ifname, a4, a4[0] && a6[0] ? "," : "", a6);
}

void reflexd_print_config(const struct reflexd_options *opt, FILE *out)
{
	const struct controller_opts *ctl = &opt->control;

	fprintf(out, "; reflexd's effective configuration%s%s\n", opt->config_path ? ": " : "",
		opt->config_path ? opt->config_path : "");
	fprintf(out, "; and the command line\n\n[host]\n");
	print_value(out, "iface", opt->iface);
	print_value(out, "cgroup", opt->cgroup);
	print_value(out, "pin-dir", opt->pin_dir);
	if (opt->duration_s > 0)
		fprintf(out, "duration = %g\n", opt->duration_s);
	else
		print_value(out, "duration", NULL);
	fprintf(out, "sample-interval-ms = %llu\n", (unsigned long long)(opt->config.sample_interval_ns / 1000000));
	fprintf(out, "flush-threshold = %u\n", opt->config.flush_threshold);
	fprintf(out, "max-batch-delay-us = %u\n", opt->config.max_batch_delay_us);
	fprintf(out, "rt-priority = %u\n", opt->rt_priority);
	/* --observe and --policy: the later one wins, so print only the one in force */
	if (ctl->policy == CWND_POLICY_OFF)
		print_flag(out, "observe", true);
	else
		fprintf(out, "policy = %s\n", policy_key(ctl->policy));
	fprintf(out, "explore = %.17g\n", ctl->explore);
	if (ctl->health.threshold < 0)
		fprintf(out, "drift-threshold = model\n");
	else
		fprintf(out, "drift-threshold = %.17g\n", ctl->health.threshold);
	fprintf(out, "drift-window-s = %u\n", ctl->health.window_s);
	fprintf(out, "drift-hold-s = %u\n", ctl->health.hold_s);
	fprintf(out, "anomaly-threshold = %.17g\n", ctl->health.anomaly_threshold);
	fprintf(out, "anomaly-hold = %u\n", ctl->health.anomaly_hold);
	print_flag(out, "learn", ctl->learn);
	print_value(out, "learn-out", ctl->learn_out_path);
	fprintf(out, "actuator = %s\n", opt->config.actuator == REFLEX_ACTUATOR_CC ? "cc" : "clamp");
	print_flag(out, "shadow", ctl->shadow);
	print_flag(out, "auto-promote", opt->auto_promote);
	fprintf(out, "shadow-period = %g\n", opt->shadow_period_s);
	print_value(out, "telemetry-out", opt->telemetry_out);
	print_value(out, "records-out", opt->records_out);

	fprintf(out, "\n[models]\n");
	print_value(out, "cwnd", ctl->cwnd_model_path);
	print_value(out, "dqn", ctl->dqn_model_path);
	print_value(out, "batching", ctl->batching_model_path);

	fprintf(out, "\n[router]\n");
	print_value(out, "lan", opt->router.lan);
	for (int i = 0; i < opt->router.n_paths; i++)
		print_path(out, &opt->router.path[i]);
	print_value(out, "classes", opt->router.classes_path);
	fprintf(out, "bandit = %s\n", bandit_mode_name(opt->router.bandit.mode));
	fprintf(out, "bandit-c = %.17g\n", opt->router.bandit.c);
	fprintf(out, "mark-base = %#x\n", opt->router.mark_base);
	fprintf(out, "mark-mask = %#x\n", opt->router.mark_mask);
	fprintf(out, "move-flows = %s\n", opt->router.move_flows ? "true" : "false");

	fprintf(out, "\n[metrics]\n");
	print_value(out, "metrics-listen", opt->metrics_listen);

	fprintf(out, "\n[logging]\n");
	print_value(out, "decision-log", ctl->decision_log_path);
	fprintf(out, "decision-log-max-bytes = %llu\n", opt->decision_log_max_bytes);
	fprintf(out, "decision-log-keep = %u\n", opt->decision_log_keep);
	print_flag(out, "verbose", opt->verbose);
	print_flag(out, "quiet", opt->quiet);
}

/* err = why, located at the config file's key when the value in force came from the
 * file (its argument was arg), else at the command line's option. */
static void fail_at_setting(const struct reflexd_options *opt, const char *arg, const char *option,
			    const char *why, struct reflex_err *err)
{
	reflex_err_set(err, "%s", why);
	for (int i = opt->file.count - 1; i >= 0; i--) {
		if (!strcmp(opt->file.entries[i].arg, arg)) {
			at_entry(err, opt->file.path, &opt->file.entries[i]);
			return;
		}
	}
	reflex_err_at_field(err, "%s", option);
}

int reflexd_check_files(const struct reflexd_options *opt, struct reflex_err *err)
{
	const char *const roles[] = { "cwnd", "dqn", "batching" };
	const char *const paths[] = { opt->control.cwnd_model_path, opt->control.dqn_model_path,
				      opt->control.batching_model_path };
	struct reflex_err why = { 0 };
	char arg[CONFIG_ARG_MAX + 32];

	if (opt->router.classes_path) {
		struct classify_table table;

		classify_table_default(&table);
		if (classify_table_load(&table, opt->router.classes_path, &why)) {
			snprintf(arg, sizeof(arg), "--classes=%s", opt->router.classes_path);
			fail_at_setting(opt, arg, "--classes", why.msg, err);
			return -1;
		}
	}
	for (int i = 0; i < 3; i++) {
		struct reflex_err merr = { 0 };
		struct model *m = NULL;
		char option[32];

		if (!paths[i])
			continue;
		if (model_load_file(paths[i], 0, &m, &merr) == 0) {
			model_free(m);
			continue;
		}
		snprintf(option, sizeof(option), "--model %s=", roles[i]);
		snprintf(arg, sizeof(arg), "--model=%s=%s", roles[i], paths[i]);
		fail_at_setting(opt, arg, option, merr.msg, err);
		return -1;
	}
	return 0;
}

static char *print_to_string(const struct reflexd_options *opt)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	reflexd_print_config(opt, f);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* The key of a printed line: "key = value" or "; key (not set)"; NULL for others. */
static bool line_key(const char *line, char *key, size_t len)
{
	size_t n;

	if (!strncmp(line, "; ", 2) && strstr(line, " (not set)"))
		line += 2;
	else if (!strstr(line, " = "))
		return false;
	n = strcspn(line, " ");
	if (n >= len)
		return false;
	memcpy(key, line, n);
	key[n] = '\0';
	return true;
}

static void add_key(char *list, size_t len, const char *key)
{
	char padded[80];
	size_t used = strlen(list);

	snprintf(padded, sizeof(padded), ",%s,", key);
	{
		char all[1024];

		snprintf(all, sizeof(all), ",%s,", list);
		if (strstr(all, padded))
			return;
	}
	snprintf(list + used, len - used, "%s%s", used ? "," : "", key);
}

/* Every printed line of a not found in b gives its key to live or restart. */
static void diff_lines(const char *a, const char *b, char *live, size_t live_len, char *restart, size_t restart_len)
{
	static const char *const live_keys[] = { "cwnd", "dqn", "batching", "sample-interval-ms", "flush-threshold",
						 "max-batch-delay-us", "explore" };
	const char *line = a;

	while (*line) {
		size_t n = strcspn(line, "\n");
		char text[CONFIG_ARG_MAX + 64], key[64];
		bool found = false, is_live = false;

		snprintf(text, sizeof(text), "%.*s", (int)n, line);
		for (const char *p = b; *p && !found; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != 0))
			found = strcspn(p, "\n") == n && !strncmp(p, text, n);
		if (!found && line_key(text, key, sizeof(key))) {
			for (size_t i = 0; i < sizeof(live_keys) / sizeof(live_keys[0]); i++)
				is_live |= !strcmp(key, live_keys[i]);
			if (is_live)
				add_key(live, live_len, key);
			else
				add_key(restart, restart_len, key);
		}
		line += n + (line[n] != 0);
	}
}

int reflexd_reload_diff(const struct reflexd_options *running, const struct reflexd_options *fresh, char *live,
			size_t live_len, char *restart, size_t restart_len)
{
	char *a = print_to_string(running), *b = print_to_string(fresh);

	live[0] = restart[0] = '\0';
	if (!a || !b) {
		free(a);
		free(b);
		return -1;
	}
	/* the first line names the file, the same in both */
	diff_lines(strchr(a, '\n') + 1, strchr(b, '\n') + 1, live, live_len, restart, restart_len);
	diff_lines(strchr(b, '\n') + 1, strchr(a, '\n') + 1, live, live_len, restart, restart_len);
	free(a);
	free(b);
	return 0;
}
