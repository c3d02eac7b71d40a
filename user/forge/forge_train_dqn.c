/* reflex-forge train-dqn: the DQN congestion agent, trained on the bottleneck
 * simulator (user/dqn.c), quantized to an int8 `.reflex` MLP, with a report of its
 * held-out reward against the heuristic, a fixed cap and plain CUBIC.
 * reflex-forge eval-dqn: DQN models against the heuristic rule and CUBIC on
 * held-out segments of real link traces replayed by the simulator. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dqn/train.h"
#include "forge/forge.h"
#include "model/model.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge train-dqn -o FILE.reflex [--seed S] [--episodes N] [--steps N]\n"
		"                              [--checkpoint FILE [--resume]] [--eval-scenarios N]\n"
		"                              [--seed-features-only]\n"
		"                              [--trace FILE]... [--trace-share F] [--trace-segment-s S]\n"
		"                              [--trace-delay-weight W]\n"
		"\n"
		"Trains the DQN cwnd agent (13 -> 128 -> 6, ReLU; Double DQN with experience replay,\n"
		"a target network, Adam lr 1e-3, epsilon 1.0 -> 0.01 decaying 0.995 per decision)\n"
		"on the bottleneck simulator over a spread of link rates (5 Mbit/s - 1 Gbit/s), base\n"
		"RTTs (5-200 ms), buffers (0.5-4 BDP) and loss rates, then writes its int8 model.\n"
		"Deterministic from --seed (default 1); --episodes default 1000 (about a minute).\n"
		"Reward per decision: delivery_ratio - 0.5 * max(0, srtt/min_rtt - 1) - 10 * loss_rate.\n"
		"--checkpoint writes the whole trainer state as it goes; --resume continues from it.\n"
		"--trace FILE (repeatable, mahimahi format, plain or gzip): a share of the episodes and\n"
		"validations (--trace-share, default 0.5) replay a random --trace-segment-s (default 30,\n"
		"looping) of a random trace as the link capacity in 100 ms steps, with a base RTT of\n"
		"10-150 ms and a buffer of 100 KB - 2 MB. Their reward is measured against the capacity:\n"
		"utilization - W * max(0, srtt/min_rtt - 1) - 10 * loss_rate (W = --trace-delay-weight,\n"
		"default 0.5). Trace options are not in the checkpoint: give the same ones on --resume.\n"
		"Exit codes: 0 done, 1 failed (nothing written), 2 bad usage.\n");
}

static int parse_u32(const char *opt, const char *value, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || n < min || n > max) {
		fprintf(stderr, "reflex-forge: %s: '%s' is not a whole number in %u..%u\n", opt, value, min, max);
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

static void print_report(const struct dqn_report *rep)
{
	printf("trained %u episodes, %llu decisions, %llu updates; final epsilon %.3f\n", rep->episodes,
	       (unsigned long long)rep->decisions, (unsigned long long)rep->updates, rep->epsilon);
	printf("policy: the net after episode %u (validation reward %.3f)\n", rep->best_episode,
	       rep->validation_reward);
	if (rep->eval_scenarios) {
		printf("held-out evaluation, %u scenarios, means per decision:\n", rep->eval_scenarios);
		printf("  %-12s %8s %12s %10s %10s\n", "policy", "reward", "utilization", "srtt/min", "loss");
		for (int p = 0; p < DQN_POLICY_COUNT; p++)
			printf("  %-12s %8.3f %12.3f %10.3f %10.4f\n", dqn_policy_names[p], rep->eval[p].reward,
			       rep->eval[p].utilization, rep->eval[p].rtt_ratio, rep->eval[p].loss_rate);
	}
	if (rep->agreement_states)
		printf("int8 argmax agrees with the float argmax on %.2f %% of %llu held-out states\n",
		       rep->int8_agreement * 100, (unsigned long long)rep->agreement_states);
}

static int parse_double(const char *cmd, const char *opt, const char *value, double min, double max,
			double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (errno || end == value || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "reflex-forge %s: %s: '%s' is not a number in %g..%g\n", cmd, opt, value, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int add_trace(const char *cmd, const char *path, const char **traces, uint32_t *n)
{
	if (*n == DQN_TRACE_MAX_FILES) {
		fprintf(stderr, "reflex-forge %s: at most %u --trace\n", cmd, DQN_TRACE_MAX_FILES);
		return -1;
	}
	traces[(*n)++] = path;
	return 0;
}

int forge_cmd_train_dqn(int argc, char **argv)
{
	enum { OPT_SEED = 256, OPT_EPISODES, OPT_STEPS, OPT_CHECKPOINT, OPT_RESUME, OPT_EVAL, OPT_SEED_ONLY,
	       OPT_TRACE, OPT_TRACE_SHARE, OPT_TRACE_SEGMENT, OPT_TRACE_DELAY };
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "episodes", required_argument, NULL, OPT_EPISODES },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "checkpoint", required_argument, NULL, OPT_CHECKPOINT },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "eval-scenarios", required_argument, NULL, OPT_EVAL },
		{ "seed-features-only", no_argument, NULL, OPT_SEED_ONLY },
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "trace-share", required_argument, NULL, OPT_TRACE_SHARE },
		{ "trace-segment-s", required_argument, NULL, OPT_TRACE_SEGMENT },
		{ "trace-delay-weight", required_argument, NULL, OPT_TRACE_DELAY },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *traces[DQN_TRACE_MAX_FILES];
	struct dqn_train_opts opts;
	struct dqn_report rep;
	uint32_t seed32, segment_s;
	int c;

	dqn_train_opts_default(&opts);
	opts.progress = isatty(STDERR_FILENO);
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': opts.model_path = optarg; break;
		case OPT_SEED:
			if (parse_u32("--seed", optarg, 0, UINT32_MAX, &seed32))
				return 2;
			opts.seed = seed32;
			break;
		case OPT_EPISODES:
			if (parse_u32("--episodes", optarg, 1, 10000000, &opts.episodes))
				return 2;
			break;
		case OPT_STEPS:
			if (parse_u32("--steps", optarg, 1, 1000000, &opts.steps_per_episode))
				return 2;
			break;
		case OPT_CHECKPOINT: opts.checkpoint_path = optarg; break;
		case OPT_RESUME: opts.resume = true; break;
		case OPT_EVAL:
			if (parse_u32("--eval-scenarios", optarg, 0, 100000, &opts.eval_scenarios))
				return 2;
			break;
		case OPT_SEED_ONLY: opts.seed_features_only = true; break;
		case OPT_TRACE:
			if (add_trace("train-dqn", optarg, traces, &opts.n_trace_paths))
				return 2;
			opts.trace_paths = traces;
			break;
		case OPT_TRACE_SHARE:
			if (parse_double("train-dqn", "--trace-share", optarg, 0, 1, &opts.trace_share))
				return 2;
			break;
		case OPT_TRACE_SEGMENT:
			if (parse_u32("--trace-segment-s", optarg, 1, DQN_TRACE_MAX_SEGMENT_MS / 1000, &segment_s))
				return 2;
			opts.trace_segment_ms = segment_s * 1000;
			break;
		case OPT_TRACE_DELAY:
			if (parse_double("train-dqn", "--trace-delay-weight", optarg, 0, 100, &opts.trace_delay_weight))
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || !opts.model_path) {
		fprintf(stderr, "reflex-forge train-dqn: %s\n",
			optind < argc ? "unexpected argument" : "-o FILE.reflex is required");
		return 2;
	}
	if (opts.resume && !opts.checkpoint_path) {
		fprintf(stderr, "reflex-forge train-dqn: --resume needs --checkpoint FILE\n");
		return 2;
	}
	memset(&rep, 0, sizeof(rep));
	if (dqn_train(&opts, &rep)) {
		fprintf(stderr, "reflex-forge %s\n", rep.err.msg[0] ? rep.err.msg : "train-dqn: failed");
		return 1;
	}
	printf("reflex-forge train-dqn: wrote %s\n", opts.model_path);
	print_report(&rep);
	return 0;
}

static void usage_eval(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge eval-dqn --trace FILE [--trace FILE]... --model NAME=FILE.reflex...\n"
		"                             [--segments N] [--segment-s S] [--rtt-ms MS] [--buffer-kb KB]\n"
		"                             [--seed S] [--static-scenarios N]\n"
		"\n"
		"Replays --segments segments (default 20) of --segment-s seconds (default 20) of the traces\n"
		"(round-robin, offsets random from --seed, default 1) as the capacity of the bottleneck\n"
		"simulator (100 ms steps, base RTT --rtt-ms default 40, drop-tail --buffer-kb default 1000,\n"
		"as the arena's trace scenarios), one flow after a 2-RTT CUBIC start, and runs every\n"
		"--model (int8 DQN, as reflexd), the heuristic rule (clamp 1.25 x max delivery rate x\n"
		"min_rtt) and plain CUBIC on the same segments. Prints per policy the median (and worst)\n"
		"over segments of the utilization of the capacity and the queueing delay p95 (RTT p95\n"
		"minus the base RTT). Then every model on train-dqn's held-out static links\n"
		"(--static-scenarios, default 40, 200 decisions each, 0 = none; the stream of --seed\n"
		"as in train-dqn's report): mean reward, utilization and srtt/min_rtt per decision.\n"
		"Exit codes: 0 done, 1 failed, 2 bad usage.\n");
}

static int add_model(char *arg, const char **names, struct model **models, uint32_t *n)
{
	char *eq = strchr(arg, '=');
	struct reflex_err err = { 0 };

	if (*n == DQN_TRACE_EVAL_MAX_MODELS || !eq || eq == arg || !eq[1]) {
		fprintf(stderr, "reflex-forge eval-dqn: --model NAME=FILE (at most %d): '%s'\n",
			DQN_TRACE_EVAL_MAX_MODELS, arg);
		return 2;
	}
	*eq = '\0';
	if (model_load_file(eq + 1, 0, &models[*n], &err)) {
		fprintf(stderr, "reflex-forge eval-dqn: %s\n", err.msg);
		return 1;
	}
	names[(*n)++] = arg;
	return 0;
}

static int eval_parse(int argc, char **argv, struct dqn_trace_eval_opts *o, const char **traces,
		      const char **names, struct model **models, uint32_t *static_scenarios)
{
	enum { OPT_TRACE = 256, OPT_MODEL, OPT_SEGMENTS, OPT_SEGMENT_S, OPT_RTT, OPT_BUFFER, OPT_SEED, OPT_STATIC };
	static const struct option longopts[] = {
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "model", required_argument, NULL, OPT_MODEL },
		{ "segments", required_argument, NULL, OPT_SEGMENTS },
		{ "segment-s", required_argument, NULL, OPT_SEGMENT_S },
		{ "rtt-ms", required_argument, NULL, OPT_RTT },
		{ "buffer-kb", required_argument, NULL, OPT_BUFFER },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "static-scenarios", required_argument, NULL, OPT_STATIC },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint32_t v, *n_models = &o->n_models;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TRACE:
			if (add_trace("eval-dqn", optarg, traces, &o->n_trace_paths))
				return 2;
			break;
		case OPT_MODEL:
			ret = add_model(optarg, names, models, n_models);
			if (ret)
				return ret;
			break;
		case OPT_SEGMENTS:
			if (parse_u32("--segments", optarg, 1, 10000, &o->segments))
				return 2;
			break;
		case OPT_SEGMENT_S:
			if (parse_u32("--segment-s", optarg, 1, DQN_TRACE_MAX_SEGMENT_MS / 1000, &v))
				return 2;
			o->segment_ms = v * 1000;
			break;
		case OPT_RTT:
			if (parse_u32("--rtt-ms", optarg, 1, 1000, &v))
				return 2;
			o->base_rtt_us = v * 1000;
			break;
		case OPT_BUFFER:
			if (parse_u32("--buffer-kb", optarg, 15, 4000000, &v))
				return 2;
			o->buffer_bytes = (uint64_t)v * 1000;
			break;
		case OPT_SEED:
			if (parse_u32("--seed", optarg, 0, UINT32_MAX, &v))
				return 2;
			o->seed = v;
			break;
		case OPT_STATIC:
			if (parse_u32("--static-scenarios", optarg, 0, 100000, static_scenarios))
				return 2;
			break;
		case 'h': usage_eval(stdout); return -1;
		default: usage_eval(stderr); return 2;
		}
	}
	if (optind < argc || !o->n_trace_paths) {
		fprintf(stderr, "reflex-forge eval-dqn: %s\n", optind < argc ? "unexpected argument" : "--trace FILE is required");
		return 2;
	}
	return 0;
}

/* Each model on train-dqn's held-out static links, with the rule-based baselines once. */
static int eval_static(const struct dqn_trace_eval_opts *o, const char *const *names, uint32_t scenarios)
{
	struct dqn_policy_eval eval[DQN_POLICY_COUNT];

	printf("held-out static links, %u scenarios, means per decision:\n", scenarios);
	printf("  %-12s %8s %12s %10s\n", "policy", "reward", "utilization", "srtt/min");
	for (uint32_t i = 0; i < o->n_models; i++) {
		if (dqn_evaluate(NULL, o->models[i], o->seed, scenarios, 200, eval)) {
			fprintf(stderr, "reflex-forge eval-dqn: static evaluation of %s failed\n", names[i]);
			return 1;
		}
		printf("  %-12s %8.3f %12.3f %10.3f\n", names[i], eval[DQN_POLICY_DQN_INT8].reward,
		       eval[DQN_POLICY_DQN_INT8].utilization, eval[DQN_POLICY_DQN_INT8].rtt_ratio);
	}
	if (!o->n_models && dqn_evaluate(NULL, NULL, o->seed, scenarios, 200, eval)) {
		fprintf(stderr, "reflex-forge eval-dqn: static evaluation failed\n");
		return 1;
	}
	for (int p = DQN_POLICY_HEURISTIC; p < DQN_POLICY_COUNT; p++)
		printf("  %-12s %8.3f %12.3f %10.3f\n", dqn_policy_names[p], eval[p].reward, eval[p].utilization,
		       eval[p].rtt_ratio);
	return 0;
}

int forge_cmd_eval_dqn(int argc, char **argv)
{
	const char *traces[DQN_TRACE_MAX_FILES], *names[DQN_TRACE_EVAL_MAX_MODELS + 2];
	struct model *models[DQN_TRACE_EVAL_MAX_MODELS] = { 0 };
	struct dqn_trace_eval_row rows[DQN_TRACE_EVAL_MAX_MODELS + 2];
	struct dqn_trace_eval_opts o = {
		.trace_paths = traces, .segments = 20, .segment_ms = 20000, .base_rtt_us = 40000,
		.buffer_bytes = 1000000, .seed = 1, .models = (const struct model *const *)models,
	};
	struct reflex_err err = { 0 };
	uint32_t static_scenarios = 40;
	int ret = eval_parse(argc, argv, &o, traces, names, models, &static_scenarios);

	if (ret)
		goto out;
	names[o.n_models] = "heuristic";
	names[o.n_models + 1] = "cubic";
	if (dqn_eval_traces(&o, rows, &err)) {
		fprintf(stderr, "reflex-forge %s\n", err.msg);
		ret = 1;
		goto out;
	}
	printf("%u segments of %u s, base RTT %u ms, buffer %llu KB, seed %llu; medians over segments (worst)\n",
	       o.segments, o.segment_ms / 1000, o.base_rtt_us / 1000, (unsigned long long)(o.buffer_bytes / 1000),
	       (unsigned long long)o.seed);
	printf("  %-12s %22s %26s\n", "policy", "utilization", "queueing delay p95 ms");
	for (uint32_t p = 0; p < o.n_models + 2; p++)
		printf("  %-12s %12.3f (%6.3f) %16.1f (%7.1f)\n", names[p], rows[p].utilization_median,
		       rows[p].utilization_min, rows[p].qdelay_p95_median_ms, rows[p].qdelay_p95_max_ms);
	ret = static_scenarios ? eval_static(&o, names, static_scenarios) : 0;
out:
	for (uint32_t i = 0; i < o.n_models; i++)
		model_free(models[i]);
	return ret < 0 ? 0 : ret;
}
