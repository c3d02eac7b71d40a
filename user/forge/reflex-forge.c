/*
 * reflex-forge: the reproducible path from recorded telemetry to a `.reflex` model.
 *
 *   windows  telemetry CSV -> per-trace normalized feature windows
 *   label    telemetry CSV -> training set (oracle's choice and J per window)
 *   train    any CSV with a header -> CART trees -> `.reflex`
 *   build    all of it in one run
 *   train-dqn  the DQN cwnd agent on the bottleneck simulator -> int8 `.reflex` MLP
 *   loss       how well a tree predicts a flow's retransmissions ahead (a report)
 *
 * Exit codes: 0 done, 1 bad input or a failed step (nothing written), 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forge/forge.h"
#include "model/model.h"
#include "reflex.h"

#define EXIT_USAGE 2

struct list {
	char *buf;
	const char **items;
	size_t count;
};

struct common {
	const char *in;
	const char *out;
	const char *records;
	const char *training_set;
	const char *created_at;
	bool have_recipe;
	enum forge_recipe recipe;
	bool lambda_set;
	double lambda;
	struct batching_params batching;
	struct cwnd_params cwnd;
	struct forge_train_opts train;
	struct list targets;
	struct list features;
	enum window_scope scope;
};

enum long_only {
	OPT_RECIPE = 256,
	OPT_RECORDS,
	OPT_LAMBDA,
	OPT_WAKEUP_COST,
	OPT_RECORD_COST,
	OPT_MAX_DEPTH,
	OPT_MIN_LEAF,
	OPT_HOLDOUT,
	OPT_SEED,
	OPT_HORIZON,
	OPT_SPLIT_BLOCK,
	OPT_CREATED_AT,
	OPT_TRAINING_SET,
	OPT_SCOPE,
	OPT_IN,
	OPT_TARGET,
	OPT_FEATURES,
};

static const char units_text[] =
	"Objectives (lower is better):\n"
	"  batching: J = p95_latency_us + lambda * batch_overhead, in microseconds.\n"
	"    p95_latency_us  95th percentile (nearest rank) of a ring-buffer record's delivery delay:\n"
	"                    BPF timestamp to the end of reflexd's handling of it, us\n"
	"    batch_overhead  reflexd wakeups (forced or poll timeouts) per record in the window\n"
	"    lambda          us of p95 latency one wakeup per record is worth (default 0.1)\n"
	"  cwnd: J = rtt_p95 / min_rtt + lambda * throughput_shortfall_pct, dimensionless.\n"
	"    throughput_shortfall_pct  100 * (1 - throughput / capacity), 0..100\n"
	"    lambda          RTT ratio one percent of lost throughput is worth (default 0.1)\n";

static const char oracle_text[] =
	"Oracle options:\n"
	"  --lambda L           weight of the second term of J (default 0.1)\n"
	"  --records FILE       batching: `reflexd --records-out` CSV (ts_ns,ring[,cpu]) to replay;\n"
	"                       without it each window's `records` count is spread evenly over it\n"
	"  --wakeup-cost-us N   batching: reflexd's cost of one wakeup (default 10)\n"
	"  --record-cost-us N   batching: reflexd's cost of handling one record (default 1)\n"
	"  --horizon-ms N       cwnd, for links whose rate moves: each window is also run on links at\n"
	"                       the lowest and the highest delivery rate its flow reached in the next\n"
	"                       N ms, the cap still set from the window's own rate; J is the mean over\n"
	"                       those links (default 0: the window's own rate only)\n";

static const char train_text[] =
	"Training options:\n"
	"  --max-depth N        tree depth limit (default 4, at most 10)\n"
	"  --min-leaf N         least training rows in a leaf (default 1)\n"
	"  --holdout F          fraction of rows held out for validation (default 0.2; 0 fits every row)\n"
	"  --seed S             seed of the holdout split and, in label and build, of the cwnd\n"
	"                       simulator (default 1)\n"
	"  --split-block N      hold out blocks of N consecutive rows, so overlapping windows\n"
	"                       do not leak into validation (train: 1, build: 10)\n"
	"  --created-at T       created_at metadata, YYYY-MM-DDTHH:MM:SSZ (default: SOURCE_DATE_EPOCH,\n"
	"                       else now); pin it to get byte-identical files\n";

static void usage_main(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge COMMAND [ARGS]\n\n"
		"commands:\n"
		"  windows  telemetry CSV -> feature windows normalized per trace\n"
		"  label    telemetry CSV -> training set (oracle labels and J)\n"
		"  train    any CSV with a header -> CART trees -> .reflex\n"
		"  build    telemetry CSV -> .reflex (windows, label, train in one run)\n"
		"  train-dqn  the DQN cwnd agent, trained on the bottleneck simulator -> int8 .reflex\n"
		"  eval-dqn   DQN models vs the heuristic rule and CUBIC on simulated trace segments\n"
		"  loss       a tree predicting a flow's retransmissions ahead, scored on other traces\n\n"
		"`reflex-forge COMMAND --help` for the options of one command.\n");
}

static void usage_windows(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge windows TELEMETRY.csv [--scope iface|flow] -o WINDOWS.csv\n\n"
		"Reads the telemetry CSV reflexd writes (--telemetry-out), keeps the windows of one scope\n"
		"(default iface), orders each flow's windows in time, reports gaps and out-of-order rows, and\n"
		"writes ts_ns,scope,flow,segment, the ten features normalized to [0,1] with the trace's own\n"
		"min/max (printed), and the context columns in raw units. -o - writes to stdout.\n");
}

static void usage_label(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge label --recipe batching|cwnd TELEMETRY.csv -o TRAINING-SET.csv [options]\n\n"
		"Runs every window (batching: iface scope; cwnd: flow scope) through the recipe's oracle and\n"
		"writes the training set: the ten features (raw units), the chosen outputs\n"
		"(flush_threshold,max_batch_delay_us or cwnd_bdp_multiple, where 0 = no cap), J, and one\n"
		"J@OUTPUT=VALUE;... column per candidate with its J in that window.\n\n%s"
		"  --seed S             seeds the cwnd simulator (default 1)\n\n%s",
		oracle_text, units_text);
}

static void usage_train(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge train --in CSV --target COL[,COL...] --out FILE.reflex [options]\n\n"
		"Fits one CART regression tree per target on any CSV with a header. Features: every\n"
		"column except the targets and J/J@... columns, or --features a,b,c. Features are scaled\n"
		"to [0,1] by their min/max in the CSV and quantized to int16 before fitting, so the\n"
		"file's thresholds are exact. A target with at most 16 distinct values is discrete: its\n"
		"leaves take the nearest value seen. Reports validation MSE, accuracy (discrete targets)\n"
		"and, with J@TARGET=VALUE;... columns, the mean J regret against the oracle.\n\n"
		"  --features a,b,c     feature columns (default: all the others)\n"
		"  --lambda L           recorded in the metadata (the lambda the J columns used)\n\n"
		"%s",
		train_text);
}

static void usage_build(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge build --recipe batching|cwnd TELEMETRY.csv -o FILE.reflex [options]\n\n"
		"windows, label and train in one run; prints a short report.\n"
		"  --training-set FILE  also keep the training set (exactly what train saw)\n\n%s\n%s\n%s",
		oracle_text, train_text, units_text);
}

/* --- argument helpers -------------------------------------------------------------- */

static int bad_value(const char *opt, const char *value, const char *want)
{
	fprintf(stderr, "reflex-forge: %s '%s': expected %s\n", opt, value, want);
	return -EINVAL;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
		char want[64];

		snprintf(want, sizeof(want), "a number in [%g, %g]", lo, hi);
		return bad_value(opt, s, want);
	}
	*out = v;
	return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
		char want[64];

		snprintf(want, sizeof(want), "an integer in [%llu, %llu]", (unsigned long long)lo,
			 (unsigned long long)hi);
		return bad_value(opt, s, want);
	}
	*out = v;
	return 0;
}

static int parse_list(const char *opt, const char *s, struct list *l)
{
	free(l->buf);
	free(l->items);
	memset(l, 0, sizeof(*l));
	l->buf = strdup(s);
	l->items = calloc(strlen(s) / 2 + 1, sizeof(*l->items));
	if (!l->buf || !l->items)
		return -ENOMEM;
	for (char *save = NULL, *tok = strtok_r(l->buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		l->items[l->count++] = tok;
	if (!l->count)
		return bad_value(opt, s, "a comma-separated list of column names");
	return 0;
}

static void list_free(struct list *l)
{
	free(l->buf);
	free(l->items);
}

static void common_init(struct common *c)
{
	memset(c, 0, sizeof(*c));
	batching_params_default(&c->batching);
	cwnd_params_default(&c->cwnd);
	c->lambda = ORACLE_DEFAULT_LAMBDA;
	c->train.max_depth = MODEL_DEFAULT_MAX_DEPTH;
	c->train.min_samples_leaf = 1;
	c->train.holdout = 0.2;
	c->train.seed = 1;
	c->train.split_block = 1;
	c->scope = SCOPE_IFACE;
}

/* One option of any subcommand; the subcommand's option table says which apply. */
static int common_option(struct common *c, int opt, const char *arg)
{
	uint64_t u;
	int ret = 0;

	switch (opt) {
	case 'o':
		c->out = arg;
		break;
	case OPT_RECIPE:
		if (forge_recipe_parse(arg, &c->recipe))
			return bad_value("--recipe", arg, "batching or cwnd");
		c->have_recipe = true;
		break;
	case OPT_RECORDS:
		c->records = arg;
		break;
	case OPT_LAMBDA:
		ret = parse_double("--lambda", arg, 0, 1e12, &c->lambda);
		c->lambda_set = true;
		break;
	case OPT_WAKEUP_COST:
		ret = parse_u64("--wakeup-cost-us", arg, 0, 1000000, &u);
		c->batching.wakeup_cost_ns = u * 1000;
		break;
	case OPT_RECORD_COST:
		ret = parse_u64("--record-cost-us", arg, 0, 1000000, &u);
		c->batching.record_cost_ns = u * 1000;
		break;
	case OPT_MAX_DEPTH:
		ret = parse_u64("--max-depth", arg, 0, MODEL_MAX_DEPTH_LIMIT, &u);
		c->train.max_depth = (unsigned)u;
		break;
	case OPT_MIN_LEAF:
		ret = parse_u64("--min-leaf", arg, 1, 1000000000, &u);
		c->train.min_samples_leaf = (size_t)u;
		break;
	case OPT_HOLDOUT:
		ret = parse_double("--holdout", arg, 0, 0.95, &c->train.holdout);
		break;
	case OPT_SEED:
		ret = parse_u64("--seed", arg, 0, UINT64_MAX, &c->train.seed);
		c->cwnd.seed = c->train.seed;
		break;
	case OPT_HORIZON:
		ret = parse_u64("--horizon-ms", arg, 0, 60000, &u);
		c->cwnd.horizon_ms = (uint32_t)u;
		break;
	case OPT_SPLIT_BLOCK:
		ret = parse_u64("--split-block", arg, 1, 1000000000, &u);
		c->train.split_block = (size_t)u;
		break;
	case OPT_CREATED_AT:
		if (!forge_created_at_valid(arg))
			return bad_value("--created-at", arg, "YYYY-MM-DDTHH:MM:SSZ");
		c->created_at = arg;
		break;
	case OPT_TRAINING_SET:
		c->training_set = arg;
		break;
	case OPT_SCOPE:
		if (!strcmp(arg, "iface"))
			c->scope = SCOPE_IFACE;
		else if (!strcmp(arg, "flow"))
			c->scope = SCOPE_FLOW;
		else
			return bad_value("--scope", arg, "iface or flow");
		break;
	case OPT_IN:
		c->in = arg;
		break;
	case OPT_TARGET:
		ret = parse_list("--target", arg, &c->targets);
		break;
	case OPT_FEATURES:
		ret = parse_list("--features", arg, &c->features);
		break;
	default:
		return -EINVAL;
	}
	return ret;
}

/* Parses argv with the options of one subcommand; *positional gets the one operand. */
static int parse_args(int argc, char **argv, const struct option *opts, struct common *c, const char **positional,
		      void (*usage)(FILE *))
{
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (opt == '?' || common_option(c, opt, optarg)) {
			if (opt == '?')
				usage(stderr);
			return -EINVAL;
		}
	}
	if (positional) {
		if (optind != argc - 1) {
			fprintf(stderr, "reflex-forge %s: expected one input file\n", argv[0]);
			usage(stderr);
			return -EINVAL;
		}
		*positional = argv[optind];
	} else if (optind != argc) {
		fprintf(stderr, "reflex-forge %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -EINVAL;
	}
	if (!c->out) {
		fprintf(stderr, "reflex-forge %s: -o/--out FILE is required\n", argv[0]);
		return -EINVAL;
	}
	c->batching.lambda = c->lambda;
	c->cwnd.lambda = c->lambda;
	return 0;
}

static int args_status(int ret)
{
	return ret > 0 ? 0 : EXIT_USAGE;
}

static int report_error(const struct reflex_err *err)
{
	fprintf(stderr, "reflex-forge: %s\n", err->msg);
	return 1;
}

static FILE *report_stream(const char *out_path)
{
	return strcmp(out_path, "-") ? stdout : stderr;
}

#define COMMON_OPTS                                                   \
	{ "help", no_argument, NULL, 'h' },                           \
	{ "out", required_argument, NULL, 'o' }

#define ORACLE_OPTS                                                          \
	{ "recipe", required_argument, NULL, OPT_RECIPE },                   \
	{ "records", required_argument, NULL, OPT_RECORDS },                 \
	{ "lambda", required_argument, NULL, OPT_LAMBDA },                   \
	{ "wakeup-cost-us", required_argument, NULL, OPT_WAKEUP_COST },      \
	{ "record-cost-us", required_argument, NULL, OPT_RECORD_COST },      \
	{ "horizon-ms", required_argument, NULL, OPT_HORIZON },              \
	{ "seed", required_argument, NULL, OPT_SEED }

#define TRAIN_OPTS                                                         \
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },           \
	{ "min-leaf", required_argument, NULL, OPT_MIN_LEAF },             \
	{ "holdout", required_argument, NULL, OPT_HOLDOUT },               \
	{ "split-block", required_argument, NULL, OPT_SPLIT_BLOCK },       \
	{ "created-at", required_argument, NULL, OPT_CREATED_AT }

/* --- reports ------------------------------------------------------------------------ */

static void print_trace(FILE *out, const struct forge_trace *tr)
{
	fprintf(out, "telemetry: %s (sha1 %s): %zu rows, %zu %s windows of %zu flow%s\n", tr->path, tr->sha1,
		tr->rows_total, tr->count, tr->scope == SCOPE_FLOW ? "flow" : "iface", tr->flow_count,
		tr->flow_count == 1 ? "" : "s");
	fprintf(out, "  %zu gap%s (%zu missing window steps), %zu segment%s, %zu row%s out of time order (sorted)\n",
		tr->gaps, tr->gaps == 1 ? "" : "s", tr->missing_steps, tr->segments, tr->segments == 1 ? "" : "s",
		tr->out_of_order, tr->out_of_order == 1 ? "" : "s");
}

static void print_ranges(FILE *out, const struct forge_trace *tr)
{
	fprintf(out, "per-trace ranges used for [0,1] normalization:\n");
	for (int f = 0; f < FEATURE_COUNT; f++)
		fprintf(out, "  %-18s min %-12g max %g%s\n", feature_names[f], tr->min[f], tr->max[f],
			tr->max[f] > tr->min[f] ? "" : " (constant: normalizes to 0)");
}

static void candidate_name(enum forge_recipe r, unsigned c, char *buf, size_t size)
{
	if (r == RECIPE_BATCHING)
		snprintf(buf, size, "flush_threshold=%u;max_batch_delay_us=%u", batching_thresholds[c / BATCHING_DELAYS],
			 batching_delays_us[c % BATCHING_DELAYS]);
	else if (cwnd_bdp_multiples[c] > 0)
		snprintf(buf, size, "cwnd_bdp_multiple=%g", cwnd_bdp_multiples[c]);
	else
		snprintf(buf, size, "cwnd_bdp_multiple=0 (no cap)");
}

static void print_label(FILE *out, const struct common *c, const struct forge_records *rec,
			const struct forge_label_stats *st)
{
	unsigned n = c->recipe == RECIPE_BATCHING ? BATCHING_CANDIDATES : CWND_CANDIDATES;
	char name[96];

	if (c->recipe == RECIPE_BATCHING && rec)
		fprintf(out, "arrivals: replayed from %s (sha1 %s): %zu records, %zu in the windows; %zu window%s whose count differs from its `records` column\n",
			rec->path, rec->sha1, rec->count, st->records_replayed, st->records_count_mismatch,
			st->records_count_mismatch == 1 ? "" : "s");
	else if (c->recipe == RECIPE_BATCHING)
		fprintf(out, "arrivals: reconstructed (no --records): each window's `records` count (%zu in all) spread evenly over its 200 ms\n",
			st->records_replayed);
	if (c->recipe == RECIPE_CWND && c->cwnd.horizon_ms)
		fprintf(out, "horizon: each window also on links at its flow's lowest and highest rate of the next %u ms\n",
			(unsigned)c->cwnd.horizon_ms);
	fprintf(out, "oracle %s (lambda %g): %zu of %zu windows labelled", forge_recipe_name(c->recipe), c->lambda,
		st->labelled, st->windows);
	if (st->skipped)
		fprintf(out, ", %zu skipped (delivery rate under %g bit/s, no RTT, or nothing delivered)", st->skipped,
			c->cwnd.min_rate_bps);
	fprintf(out, "\n  choices:");
	for (unsigned k = 0; k < n; k++) {
		if (!st->choice_count[k])
			continue;
		candidate_name(c->recipe, k, name, sizeof(name));
		fprintf(out, " %s %.1f%%", name, 100.0 * st->choice_count[k] / st->labelled);
	}
	fputc('\n', out);
	if (c->recipe == RECIPE_BATCHING)
		fprintf(out, "  mean over the windows, oracle vs reflex's defaults (%u records, %u us): J %.4g vs %.4g us, "
			"p95_latency %.4g vs %.4g us, batch_overhead %.4g vs %.4g wakeups/record\n",
			REFLEX_DEFAULT_FLUSH_THRESHOLD, REFLEX_DEFAULT_MAX_BATCH_DELAY_US, st->mean_j, st->mean_j_default,
			st->mean_p95_latency_us, st->mean_p95_latency_us_default, st->mean_batch_overhead,
			st->mean_batch_overhead_default);
	else
		fprintf(out, "  mean over the windows, oracle vs no cap: J %.4g vs %.4g, rtt_p95/min_rtt %.4g vs %.4g, "
			"throughput shortfall %.3g%% vs %.3g%%\n",
			st->mean_j, st->mean_j_default, st->mean_rtt_ratio, st->mean_rtt_ratio_default,
			st->mean_shortfall_pct, st->mean_shortfall_pct_default);
}

/* --- windows --------------------------------------------------------------------------- */

static int cmd_windows(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, { "scope", required_argument, NULL, OPT_SCOPE }, { 0 } };
	struct reflex_err err = { 0 };
	struct forge_trace tr;
	const char *in = NULL;
	struct common c;
	int ret;

	common_init(&c);
	ret = parse_args(argc, argv, opts, &c, &in, usage_windows);
	if (ret)
		return args_status(ret);
	if (forge_trace_load(in, c.scope, &tr, &err))
		return report_error(&err);
	ret = forge_windows_write(&tr, c.out, &err);
	if (!ret) {
		print_trace(report_stream(c.out), &tr);
		print_ranges(report_stream(c.out), &tr);
	}
	forge_trace_free(&tr);
	return ret ? report_error(&err) : 0;
}

/* --- label and build ---------------------------------------------------------------------- */

/* Loads the trace (and records) and labels it; the caller frees with label_run_free. */
struct label_run {
	struct forge_trace trace;
	struct forge_records records;
	bool have_records;
	struct forge_text text;
	struct forge_label_stats stats;
};

static void label_run_free(struct label_run *run)
{
	forge_trace_free(&run->trace);
	if (run->have_records)
		forge_records_free(&run->records);
	forge_text_free(&run->text);
}

static int label_run(const struct common *c, const char *in, struct label_run *run, struct reflex_err *err)
{
	struct forge_label_opts lo = {
		.recipe = c->recipe,
		.batching = c->batching,
		.cwnd = c->cwnd,
		.progress = isatty(STDERR_FILENO),
	};
	int ret;

	memset(run, 0, sizeof(*run));
	ret = forge_trace_load(in, forge_recipe_scope(c->recipe), &run->trace, err);
	if (ret)
		return ret;
	if (c->records) {
		ret = forge_records_load(c->records, &run->records, err);
		if (ret)
			return ret;
		run->have_records = true;
		lo.records = &run->records;
	}
	return forge_label(&run->trace, &lo, &run->text, &run->stats, err);
}

static int cmd_label(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTS, ORACLE_OPTS, { 0 } };
	struct reflex_err err = { 0 };
	struct label_run run;
	const char *in = NULL;
	struct common c;
	int ret;

	common_init(&c);
	ret = parse_args(argc, argv, opts, &c, &in, usage_label);
	if (ret)
		return args_status(ret);
	if (!c.have_recipe) {
		fprintf(stderr, "reflex-forge label: --recipe batching|cwnd is required\n");
		return EXIT_USAGE;
	}
	if (c.records && c.recipe != RECIPE_BATCHING) {
		fprintf(stderr, "reflex-forge label: --records applies to the batching recipe only\n");
		return EXIT_USAGE;
	}
	ret = label_run(&c, in, &run, &err);
	if (!ret)
		ret = forge_text_write(&run.text, c.out, &err);
	if (!ret) {
		print_trace(report_stream(c.out), &run.trace);
		print_label(report_stream(c.out), &c, run.have_records ? &run.records : NULL, &run.stats);
	}
	label_run_free(&run);
	return ret ? report_error(&err) : 0;
}

static int created_at(const struct common *c, char *buf, size_t size, struct reflex_err *err)
{
	if (c->created_at) {
		snprintf(buf, size, "%s", c->created_at);
		return 0;
	}
	return forge_created_at_now(buf, size, err);
}

static void add_meta(struct forge_train_opts *o, const char *key, const char *value)
{
	o->meta_keys[o->meta_count] = key;
	o->meta_values[o->meta_count] = value;
	o->meta_count++;
}

static int cmd_build(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS, ORACLE_OPTS, TRAIN_OPTS, { "training-set", required_argument, NULL, OPT_TRAINING_SET }, { 0 }
	};
	char stamp[32], lambda[32], wakeup[32], record[32], horizon[32];
	struct forge_train_report rep;
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	struct label_run run;
	const char *in = NULL;
	struct stat st;
	struct common c;
	FILE *out = stdout;
	int ret;

	common_init(&c);
	c.train.split_block = 10;
	ret = parse_args(argc, argv, opts, &c, &in, usage_build);
	if (ret)
		return args_status(ret);
	if (!c.have_recipe) {
		fprintf(stderr, "reflex-forge build: --recipe batching|cwnd is required\n");
		return EXIT_USAGE;
	}
	if (c.records && c.recipe != RECIPE_BATCHING) {
		fprintf(stderr, "reflex-forge build: --records applies to the batching recipe only\n");
		return EXIT_USAGE;
	}
	if (created_at(&c, stamp, sizeof(stamp), &err))
		return report_error(&err);
	ret = label_run(&c, in, &run, &err);
	if (ret)
		goto done;
	/* train sees exactly the text a --training-set file holds, so rerunning train on it agrees. */
	ret = csv_parse(c.training_set ? c.training_set : "training-set.csv", run.text.data, run.text.len, &t, &err);
	if (ret)
		goto done;

	if (c.recipe == RECIPE_BATCHING) {
		c.train.targets[0] = "flush_threshold";
		c.train.targets[1] = "max_batch_delay_us";
		c.train.target_count = 2;
	} else {
		c.train.targets[0] = "cwnd_bdp_multiple";
		c.train.target_count = 1;
	}
	c.train.features = feature_names;
	c.train.feature_count = FEATURE_COUNT;
	c.train.created_at = stamp;
	c.train.telemetry_hash = run.trace.sha1;
	snprintf(lambda, sizeof(lambda), "%g", c.lambda);
	add_meta(&c.train, "recipe", forge_recipe_name(c.recipe));
	add_meta(&c.train, "lambda", lambda);
	if (c.recipe == RECIPE_BATCHING) {
		add_meta(&c.train, "objective", "p95_latency_us + lambda * batch_overhead (us)");
		snprintf(wakeup, sizeof(wakeup), "%g", c.batching.wakeup_cost_ns / 1000.0);
		snprintf(record, sizeof(record), "%g", c.batching.record_cost_ns / 1000.0);
		add_meta(&c.train, "wakeup_cost_us", wakeup);
		add_meta(&c.train, "record_cost_us", record);
		add_meta(&c.train, "arrivals", run.have_records ? "records file" : "reconstructed from window counts");
		if (run.have_records)
			add_meta(&c.train, "records_hash", run.records.sha1);
	} else {
		add_meta(&c.train, "objective", "rtt_p95 / min_rtt + lambda * throughput_shortfall_pct");
		add_meta(&c.train, "cwnd_bdp_multiple_none", "0");
		if (c.cwnd.horizon_ms) {
			snprintf(horizon, sizeof(horizon), "%u", (unsigned)c.cwnd.horizon_ms);
			add_meta(&c.train, "cwnd_horizon_ms", horizon);
		}
	}

	ret = forge_train(t, &c.train, c.out, &rep, &err);
	if (!ret && c.training_set) {
		ret = forge_text_write(&run.text, c.training_set, &err);
		if (ret)
			unlink(c.out); /* the pair is the result: do not leave half of it */
	}
	if (ret)
		goto done;
	fprintf(out, "reflex-forge build: recipe %s\n", forge_recipe_name(c.recipe));
	print_trace(out, &run.trace);
	print_label(out, &c, run.have_records ? &run.records : NULL, &run.stats);
	forge_train_report_print(out, &rep);
	if (!stat(c.out, &st))
		fprintf(out, "wrote %s (%lld bytes)%s%s\n", c.out, (long long)st.st_size,
			c.training_set ? " and " : "", c.training_set ? c.training_set : "");
done:
	csv_free(t);
	label_run_free(&run);
	return ret ? report_error(&err) : 0;
}

/* --- train ------------------------------------------------------------------------------------ */

static int cmd_train(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		TRAIN_OPTS,
		{ "in", required_argument, NULL, OPT_IN },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "features", required_argument, NULL, OPT_FEATURES },
		{ "lambda", required_argument, NULL, OPT_LAMBDA },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ 0 },
	};
	char stamp[32], hash[FORGE_SHA1_HEX], lambda[32];
	struct forge_train_report rep;
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	struct common c;
	const char *in;
	int ret;

	common_init(&c);
	ret = parse_args(argc, argv, opts, &c, NULL, usage_train);
	if (ret)
		goto usage;
	in = c.in;
	if (!in || !c.targets.count) {
		fprintf(stderr, "reflex-forge train: --in CSV and --target COL are required\n");
		ret = -EINVAL;
		goto usage;
	}
	if (c.targets.count > FORGE_MAX_TARGETS) {
		fprintf(stderr, "reflex-forge train: at most %d targets\n", FORGE_MAX_TARGETS);
		ret = -EINVAL;
		goto usage;
	}
	for (size_t i = 0; i < c.targets.count; i++)
		c.train.targets[i] = c.targets.items[i];
	c.train.target_count = c.targets.count;
	if (c.features.count) {
		c.train.features = c.features.items;
		c.train.feature_count = c.features.count;
	}
	ret = created_at(&c, stamp, sizeof(stamp), &err);
	if (!ret)
		ret = forge_read_csv(in, &t, hash, &err);
	if (ret)
		goto done;
	c.train.created_at = stamp;
	c.train.telemetry_hash = hash;
	if (c.lambda_set) {
		snprintf(lambda, sizeof(lambda), "%g", c.lambda);
		add_meta(&c.train, "lambda", lambda);
	}
	ret = forge_train(t, &c.train, c.out, &rep, &err);
	if (!ret) {
		printf("reflex-forge train: %s -> %s\n", in, c.out);
		forge_train_report_print(stdout, &rep);
	}
done:
	csv_free(t);
	list_free(&c.targets);
	list_free(&c.features);
	return ret ? report_error(&err) : 0;
usage:
	list_free(&c.targets);
	list_free(&c.features);
	return args_status(ret);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} commands[] = {
		{ "windows", cmd_windows },
		{ "label", cmd_label },
		{ "train", cmd_train },
		{ "build", cmd_build },
		{ "train-dqn", forge_cmd_train_dqn },
		{ "eval-dqn", forge_cmd_eval_dqn },
		{ "loss", forge_cmd_loss },
	};

	if (argc < 2) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage_main(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "reflex-forge: unknown command '%s'\n", argv[1]);
	usage_main(stderr);
	return EXIT_USAGE;
}
