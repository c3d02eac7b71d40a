/* reflex-forge train-dqn: the DQN congestion agent, trained on the bottleneck
 * simulator (user/dqn.c), quantized to an int8 `.reflex` MLP, with a report of its
 * held-out reward against the heuristic, a fixed cap and plain CUBIC. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dqn/train.h"
#include "forge/forge.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge train-dqn -o FILE.reflex [--seed S] [--episodes N] [--steps N]\n"
		"                              [--checkpoint FILE [--resume]] [--eval-scenarios N]\n"
		"                              [--seed-features-only]\n"
		"\n"
		"Trains the DQN cwnd agent (13 -> 128 -> 6, ReLU; Double DQN with experience replay,\n"
		"a target network, Adam lr 1e-3, epsilon 1.0 -> 0.01 decaying 0.995 per decision)\n"
		"on the bottleneck simulator over a spread of link rates (5 Mbit/s - 1 Gbit/s), base\n"
		"RTTs (5-200 ms), buffers (0.5-4 BDP) and loss rates, then writes its int8 model.\n"
		"Deterministic from --seed (default 1); --episodes default 1000 (about a minute).\n"
		"Reward per decision: delivery_ratio - 0.5 * max(0, srtt/min_rtt - 1) - 10 * loss_rate.\n"
		"--checkpoint writes the whole trainer state as it goes; --resume continues from it.\n"
		"Exit codes: 0 done, 1 failed (nothing written), 2 bad usage.\n");
}

static int parse_u32(const char *opt, const char *value, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || n < min || n > max) {
		fprintf(stderr, "reflex-forge train-dqn: %s: '%s' is not a whole number in %u..%u\n", opt, value, min,
			max);
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

int forge_cmd_train_dqn(int argc, char **argv)
{
	enum { OPT_SEED = 256, OPT_EPISODES, OPT_STEPS, OPT_CHECKPOINT, OPT_RESUME, OPT_EVAL, OPT_SEED_ONLY };
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "episodes", required_argument, NULL, OPT_EPISODES },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "checkpoint", required_argument, NULL, OPT_CHECKPOINT },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "eval-scenarios", required_argument, NULL, OPT_EVAL },
		{ "seed-features-only", no_argument, NULL, OPT_SEED_ONLY },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct dqn_train_opts opts;
	struct dqn_report rep;
	uint32_t seed32;
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
