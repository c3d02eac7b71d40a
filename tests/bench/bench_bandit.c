// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Path selector benchmark.
 *
 * 1. Decision cost: ns per bandit_select (and per select + reward) for each mode,
 *    median over repetitions, with round-robin's select measured in the same run
 *    as the baseline. The seed quotes ~1 us per path selection.
 * 2. Changing-link runs: three paths whose mean rewards change halfway ("swap":
 *    the best and the worst path trade places; "degrade": the best path falls
 *    below the second). Cumulative regret against the best fixed path in
 *    hindsight at checkpoints, regret against each step's best path, and the
 *    steps to settle on the new best path, for ucb1, discounted, sliding-window
 *    (default parameters of each) and round-robin, averaged over seeded runs.
 *    Deterministic: the same numbers on every machine.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/prng.h"
#include "router/bandit.h"
#include "bench.h"

#define TIMING_REPS 15
#define TIMING_DECISIONS 200000

#define SIM_PATHS 3
#define SIM_STEPS 20000
#define SIM_SWAP (SIM_STEPS / 2)
#define SIM_SEEDS 20
#define SIM_NOISE 0.15 /* rewards are the mean plus uniform noise in [-0.15, 0.15] */
#define RECOVERY_WINDOW 100

/* Mean reward of each path before and after the change at SIM_SWAP. */
struct scenario {
	const char *name;
	double before[SIM_PATHS];
	double after[SIM_PATHS];
};

static const struct scenario scenarios[] = {
	/* The best and the worst path trade places. */
	{ "swap", { 0.80, 0.60, 0.50 }, { 0.50, 0.60, 0.80 } },
	/* The best path degrades below the second; nothing else changes. */
	{ "degrade", { 0.80, 0.60, 0.50 }, { 0.45, 0.60, 0.50 } },
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static const int checkpoints[] = { 2000, 5000, 10000, 10500, 11000, 12500, 15000, 20000 };
#define N_CHECKPOINTS (sizeof(checkpoints) / sizeof(checkpoints[0]))

static const enum bandit_mode modes[] = {
	BANDIT_MODE_UCB1, BANDIT_MODE_DISCOUNTED, BANDIT_MODE_SLIDING_WINDOW,
	BANDIT_MODE_ROUND_ROBIN,
};
#define N_MODES (sizeof(modes) / sizeof(modes[0]))

static struct bandit *new_bandit(enum bandit_mode mode, int n_paths)
{
	static const char *const names[] = { "wan0", "wan1", "wan2", "wan3" };
	struct bandit_config cfg;
	struct bandit *b;

	bandit_config_default(&cfg, mode);
	b = bandit_new(&cfg);
	if (!b) {
		perror("bandit_new");
		exit(1);
	}
	for (int p = 0; p < n_paths; p++)
		if (bandit_add_path(b, names[p]) != p) {
			fprintf(stderr, "bandit_add_path failed\n");
			exit(1);
		}
	return b;
}

/* A realistic state: four paths with metrics, every class with history and flows. */
static struct bandit *warm_bandit(enum bandit_mode mode)
{
	struct bandit *b = new_bandit(mode, BANDIT_MAX_PATHS);
	uint64_t rng = 42;

	for (int p = 0; p < BANDIT_MAX_PATHS; p++) {
		struct path_sample s = {
			.ts_ns = 1000000, .interval_ns = 10000000, .rtt_us = 10000.0 * (p + 1),
			.sent_packets = 1000, .retrans_packets = (uint64_t)p * 5,
			.delivered_bytes = 125000ULL * (uint64_t)(4 - p),
		};

		bandit_path_update(b, p, &s);
	}
	for (int i = 0; i < 2000; i++) {
		enum traffic_class k = (enum traffic_class)(i % TRAFFIC_CLASS_COUNT);
		int p = (int)(prng_splitmix64(&rng) % BANDIT_MAX_PATHS);

		bandit_reward(b, k, p, prng_unit(prng_splitmix64(&rng)));
		if (i % 20 == 0)
			bandit_flow_start(b, k, p);
	}
	return b;
}

/* ns per decision of one run of TIMING_DECISIONS selects (each followed by a reward if asked). */
static double time_run(enum bandit_mode mode, bool with_reward, bool uncached, long *sink)
{
	struct bandit *b = warm_bandit(mode);
	uint64_t rng = 7, t0, t1;

	t0 = now_ns();
	for (int i = 0; i < TIMING_DECISIONS; i++) {
		enum traffic_class k = (enum traffic_class)(i % TRAFFIC_CLASS_COUNT);
		int p = uncached ? bandit_select_uncached(b, k) : bandit_select(b, k);

		*sink += p;
		if (with_reward)
			bandit_reward(b, k, p, prng_unit(prng_splitmix64(&rng)));
	}
	t1 = now_ns();
	bandit_free(b);
	return (double)(t1 - t0) / TIMING_DECISIONS;
}

static void bench_decision_cost(void)
{
	double select_ns[N_MODES][TIMING_REPS], cycle_ns[N_MODES][TIMING_REPS];
	double uncached_ns[N_MODES][TIMING_REPS], uncached_cycle_ns[N_MODES][TIMING_REPS];
	double select_med[N_MODES], cycle_med[N_MODES], uncached_med[N_MODES], uncached_cycle_med[N_MODES];
	long sink = 0;

	/* Modes interleaved within each repetition, so drift of a noisy machine hits all alike. */
	time_run(BANDIT_MODE_UCB1, true, false, &sink); /* warm-up */
	for (int r = 0; r < TIMING_REPS; r++) {
		for (size_t m = 0; m < N_MODES; m++) {
			select_ns[m][r] = time_run(modes[m], false, false, &sink);
			cycle_ns[m][r] = time_run(modes[m], true, false, &sink);
			uncached_ns[m][r] = time_run(modes[m], false, true, &sink);
			uncached_cycle_ns[m][r] = time_run(modes[m], true, true, &sink);
		}
	}
	for (size_t m = 0; m < N_MODES; m++) {
		select_med[m] = median(select_ns[m], TIMING_REPS);
		cycle_med[m] = median(cycle_ns[m], TIMING_REPS);
		uncached_med[m] = median(uncached_ns[m], TIMING_REPS);
		uncached_cycle_med[m] = median(uncached_cycle_ns[m], TIMING_REPS);
	}
	printf("decision cost: ns per decision, median of %d runs of %d decisions\n"
	       "(%d paths with metrics, 5 classes, 100 live flows; the seed quotes ~1000 ns)\n",
	       TIMING_REPS, TIMING_DECISIONS, BANDIT_MAX_PATHS);
	printf("(uncached: bandit_select_uncached, every term recomputed: the baseline of the cache)\n");
	printf("%-15s %10s %15s %22s %12s %18s %16s\n", "mode", "select_ns", "select+reward",
	       "select_vs_round_robin", "uncached_ns", "uncached+reward", "cached/uncached");
	for (size_t m = 0; m < N_MODES; m++)
		printf("%-15s %10.1f %15.1f %21.2fx %12.1f %18.1f %15.2fx\n", bandit_mode_name(modes[m]),
		       select_med[m], cycle_med[m], select_med[m] / select_med[N_MODES - 1], uncached_med[m],
		       uncached_cycle_med[m], select_med[m] / uncached_med[m]);
	printf("(checksum %ld)\n\n", sink);
}

struct sim_result {
	double regret_fixed[N_CHECKPOINTS];
	double regret_dynamic_end;
	double recovery_steps; /* after the change, until the new best holds 90% of a window */
	int recovered_runs;
};

static double mean_of(const struct scenario *sc, int path, int step)
{
	return step < SIM_SWAP ? sc->before[path] : sc->after[path];
}

static int best_after(const struct scenario *sc)
{
	int best = 0;

	for (int p = 1; p < SIM_PATHS; p++)
		if (sc->after[p] > sc->after[best])
			best = p;
	return best;
}

/* Steps after the change until the new best path has 90% of a RECOVERY_WINDOW window; -1 if never. */
static int recovery_of(const struct scenario *sc, const uint8_t *chosen)
{
	int best = best_after(sc), in_window = 0;

	for (int t = SIM_SWAP; t < SIM_STEPS; t++) {
		in_window += chosen[t] == best;
		if (t - SIM_SWAP >= RECOVERY_WINDOW)
			in_window -= chosen[t - RECOVERY_WINDOW] == best;
		if (t - SIM_SWAP + 1 >= RECOVERY_WINDOW && in_window >= RECOVERY_WINDOW * 9 / 10)
			return t - SIM_SWAP + 1 - RECOVERY_WINDOW;
	}
	return -1;
}

static void simulate_run(const struct scenario *sc, enum bandit_mode mode, uint64_t seed,
			 struct sim_result *res)
{
	static uint8_t chosen[SIM_STEPS];
	struct bandit *b = new_bandit(mode, SIM_PATHS);
	double fixed[SIM_PATHS] = { 0 }, got = 0, dynamic = 0;
	uint64_t rng = seed;
	size_t cp = 0;
	int recovery;

	for (int t = 0; t < SIM_STEPS; t++) {
		int p = bandit_select(b, TRAFFIC_BULK);
		double best = 0, reward;

		for (int q = 0; q < SIM_PATHS; q++) {
			fixed[q] += mean_of(sc, q, t);
			best = fmax(best, mean_of(sc, q, t));
		}
		got += mean_of(sc, p, t);
		dynamic += best - mean_of(sc, p, t);
		chosen[t] = (uint8_t)p;
		reward = mean_of(sc, p, t) + SIM_NOISE * (2 * prng_unit(prng_splitmix64(&rng)) - 1);
		bandit_reward(b, TRAFFIC_BULK, p, fmin(1, fmax(0, reward)));
		if (cp < N_CHECKPOINTS && t + 1 == checkpoints[cp]) {
			double best_fixed = fmax(fixed[0], fmax(fixed[1], fixed[2]));

			res->regret_fixed[cp++] += (best_fixed - got) / SIM_SEEDS;
		}
	}
	res->regret_dynamic_end += dynamic / SIM_SEEDS;
	recovery = recovery_of(sc, chosen);
	if (recovery >= 0) {
		res->recovery_steps += recovery;
		res->recovered_runs++;
	}
	bandit_free(b);
}

static void print_scenario(const struct scenario *sc, const struct sim_result *res)
{
	printf("\nscenario %s: mean rewards %.2f/%.2f/%.2f, from step %d %.2f/%.2f/%.2f\n",
	       sc->name, sc->before[0], sc->before[1], sc->before[2], SIM_SWAP, sc->after[0],
	       sc->after[1], sc->after[2]);
	printf("cumulative regret vs the best fixed path in hindsight (negative: beat it)\n");
	printf("%6s", "step");
	for (size_t m = 0; m < N_MODES; m++)
		printf(" %15s", bandit_mode_name(modes[m]));
	printf("\n");
	for (size_t c = 0; c < N_CHECKPOINTS; c++) {
		printf("%6d", checkpoints[c]);
		for (size_t m = 0; m < N_MODES; m++)
			printf(" %15.1f", res[m].regret_fixed[c]);
		printf("\n");
	}
	printf("%6s", "dyn");
	for (size_t m = 0; m < N_MODES; m++)
		printf(" %15.1f", res[m].regret_dynamic_end);
	printf("   <- regret vs the best path of each step, at step %d\n", SIM_STEPS);
	printf("%6s", "recov");
	for (size_t m = 0; m < N_MODES; m++) {
		char cell[32];

		if (res[m].recovered_runs == SIM_SEEDS)
			snprintf(cell, sizeof(cell), "%.0f", res[m].recovery_steps);
		else
			snprintf(cell, sizeof(cell), "%d/%d runs", res[m].recovered_runs, SIM_SEEDS);
		printf(" %15s", cell);
	}
	printf("   <- steps after the change until the new best path gets 90%% of %d steps\n",
	       RECOVERY_WINDOW);
}

static void bench_changing_link(void)
{
	printf("changing link: %d paths, %d steps (one select + one reward each), rewards = "
	       "mean + uniform\nnoise +-%.2f, means averaged over %d seeded runs; default "
	       "parameters per mode:\n", SIM_PATHS, SIM_STEPS, SIM_NOISE, SIM_SEEDS);
	for (size_t m = 0; m < N_MODES; m++) {
		struct bandit_config cfg;

		bandit_config_default(&cfg, modes[m]);
		if (modes[m] == BANDIT_MODE_ROUND_ROBIN)
			continue;
		printf("  %-15s c %.3f", bandit_mode_name(modes[m]), cfg.c);
		if (modes[m] == BANDIT_MODE_DISCOUNTED)
			printf(", gamma %.3f", cfg.gamma);
		if (modes[m] == BANDIT_MODE_SLIDING_WINDOW)
			printf(", window %u", cfg.window);
		printf("\n");
	}
	for (size_t s = 0; s < N_SCENARIOS; s++) {
		struct sim_result res[N_MODES];

		memset(res, 0, sizeof(res));
		for (size_t m = 0; m < N_MODES; m++) {
			for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
				simulate_run(&scenarios[s], modes[m], seed, &res[m]);
			if (res[m].recovered_runs)
				res[m].recovery_steps /= res[m].recovered_runs;
		}
		print_scenario(&scenarios[s], res);
	}
}

int main(void)
{
	bench_decision_cost();
	bench_changing_link();
	return 0;
}
