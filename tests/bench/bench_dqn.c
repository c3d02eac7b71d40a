// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * DQN and bottleneck-simulator benchmark.
 *
 * 1. Decision cost, ns per decision, for the 13 -> 128 -> 6 DQN: features from an
 *    interval (dqn_flow_observe), the float decision (dqn_normalize + forward +
 *    argmax), and the int8 decision of its `.reflex` export (model_quantize +
 *    model_eval + model_argmax, reflexd's path) as the comparison; the bare float
 *    forward pass is the baseline measured in the same run. The seed quotes ~30 us.
 * 2. Simulator throughput: ticks/s, simulated packets/s and simulated seconds per
 *    wall second, for three links.
 * 3. Training throughput: decisions/s of a short train-dqn run.
 * Medians over repetitions (min..max too: the machine is noisy); no assertion.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/bottleneck_sim.h"
#include "dqn/train.h"
#include "model/model.h"
#include "model/model_fast.h"
#include "bench.h"

#define REPS 15
#define DECISIONS 100000
#define INPUTS 1024

static volatile double sink;

enum workload {
	FLOAT_FORWARD, FEATURES, FLOAT_DECISION, INT8_DECISION, DECIDE_SCALAR, DECIDE_AVX2, DECIDE_VNNI,
	WORKLOADS
};

static const char *const workload_names[WORKLOADS] = {
	"float forward 13->128->6 (baseline)",
	"features (dqn_flow_observe)",
	"float decision (normalize + forward + argmax)",
	"int8 decision (quantize + eval + argmax)",
	"int8 model_decide scalar + argmax",
	"int8 model_decide avx2 + argmax",
	"int8 model_decide avx512-vnni + argmax",
};

static enum model_path workload_path(enum workload w)
{
	return (enum model_path)(MODEL_PATH_SCALAR + (w - DECIDE_SCALAR));
}

struct bench {
	struct mlp net;
	struct model *model;
	struct dqn_interval iv[INPUTS];
	double raw[INPUTS][DQN_FEATURES];
	float x[INPUTS][DQN_FEATURES];
};

static double run_workload(struct bench *b, enum workload w)
{
	struct dqn_flow_state fs;
	float hidden[MLP_MAX_UNITS], q[DQN_ACTIONS], x[DQN_FEATURES];
	double raw[DQN_FEATURES], reward, acc = 0, t0;
	int16_t qin[DQN_FEATURES];
	int32_t value[DQN_ACTIONS];

	dqn_flow_init(&fs);
	t0 = now_ns();
	for (int i = 0; i < DECISIONS; i++) {
		int k = i % INPUTS;

		switch (w) {
		case FLOAT_FORWARD:
			mlp_forward(&b->net, b->x[k], hidden, q);
			acc += q[0];
			break;
		case FEATURES:
			dqn_flow_observe(&fs, &b->iv[k], raw, &reward);
			acc += reward;
			break;
		case FLOAT_DECISION:
			dqn_normalize(b->raw[k], DQN_FEATURES, x);
			acc += dqn_greedy(&b->net, x);
			break;
		case DECIDE_SCALAR:
		case DECIDE_AVX2:
		case DECIDE_VNNI:
			if (model_decide_path(b->model, b->raw[k], NULL, value, workload_path(w)))
				return NAN; /* this CPU lacks the path */
			acc += model_argmax(value, DQN_ACTIONS);
			break;
		case INT8_DECISION:
		default:
			model_quantize(b->model, b->raw[k], NULL, qin);
			model_eval(b->model, qin, value);
			acc += model_argmax(value, DQN_ACTIONS);
			break;
		}
	}
	sink = acc;
	return (now_ns() - t0) / DECISIONS;
}

static int setup(struct bench *b)
{
	struct prng rng;
	float *calib;
	struct reflex_err err = { 0 };
	int ret;

	prng_seed(&rng, 1);
	if (mlp_init(&b->net, DQN_FEATURES, 128, DQN_ACTIONS, &rng))
		return -1;
	for (int k = 0; k < INPUTS; k++) {
		double rtt = 5000 + 195000 * prng_uniform(&rng);

		b->iv[k] = (struct dqn_interval){
			.interval_us = rtt, .delivered_bytes = 1e5 * prng_uniform(&rng),
			.delivered_pkts = 60, .retrans_pkts = prng_below(&rng, 3), .srtt_us = rtt * 1.2,
			.rttvar_us = rtt / 10, .min_rtt_us = rtt, .inflight_pkts = 80, .cwnd_pkts = 90,
			.mss = 1500, .buffer_occupancy = prng_uniform(&rng),
		};
		for (int i = 0; i < DQN_FEATURES; i++)
			b->raw[k][i] = dqn_features[i].min +
				       (dqn_features[i].max - dqn_features[i].min) * prng_uniform(&rng);
		dqn_normalize(b->raw[k], DQN_FEATURES, b->x[k]);
	}
	calib = &b->x[0][0];
	ret = dqn_build_model(&b->net, calib, INPUTS, false, &b->model, &err);
	if (ret)
		fprintf(stderr, "bench_dqn: %s\n", err.msg);
	return ret;
}

static void bench_decisions(void)
{
	struct bench *b = calloc(1, sizeof(*b));
	double samples[WORKLOADS][REPS];
	struct result base;

	if (!b || setup(b)) {
		fprintf(stderr, "bench_dqn: setup failed\n");
		exit(1);
	}
	for (int r = 0; r < REPS; r++)
		for (int w = 0; w < WORKLOADS; w++)
			samples[w][r] = run_workload(b, (enum workload)w);
	printf("DQN decision cost, ns per decision (median of %d x %d, min..max)\n", REPS, DECISIONS);
	base = summarize(samples[FLOAT_FORWARD], REPS);
	for (int w = 0; w < WORKLOADS; w++) {
		struct result res = summarize(samples[w], REPS);

		if (w >= DECIDE_SCALAR && !model_path_supported(workload_path((enum workload)w))) {
			printf("  %-48s not supported by this CPU\n", workload_names[w]);
			continue;
		}
		printf("  %-48s %8.1f  (%.1f..%.1f)  x%.2f of baseline\n", workload_names[w], res.median,
		       res.min, res.max, res.median / base.median);
	}
	printf("  seed figure: ~30000 ns per DQN decision\n");
	model_free(b->model);
	mlp_free(&b->net);
	free(b);
}

struct sim_case {
	const char *name;
	uint64_t link_bps;
	uint32_t base_rtt_us;
};

static const struct sim_case sim_cases[] = {
	{ "10 Mbit/s, 20 ms", 10000000, 20000 },
	{ "100 Mbit/s, 20 ms", 100000000, 20000 },
	{ "1 Gbit/s, 50 ms", 1000000000, 50000 },
};

static void bench_simulator(void)
{
	printf("Bottleneck simulator, CUBIC, 1 BDP buffer, 0.1 %% loss, 5 s simulated (median of 5)\n");
	printf("  %-20s %12s %14s %16s\n", "link", "ticks/s", "packets/s", "sim s / wall s");
	for (size_t c = 0; c < sizeof(sim_cases) / sizeof(sim_cases[0]); c++) {
		double ticks_s[5], pkts_s[5], speed[5];

		for (int r = 0; r < 5; r++) {
			struct bsim_config cfg;
			struct bsim_flow_stats fl;
			struct bsim *sim;
			double t0, secs;

			bsim_config_default(&cfg);
			cfg.link_bps = sim_cases[c].link_bps;
			cfg.base_rtt_us = sim_cases[c].base_rtt_us;
			cfg.buffer_bytes = (uint64_t)bsim_bdp_bytes(&cfg);
			cfg.loss_rate = 0.001;
			if (bsim_new(&cfg, &sim)) {
				fprintf(stderr, "bench_dqn: bsim_new failed\n");
				exit(1);
			}
			t0 = now_ns();
			bsim_run_until(sim, 5000000);
			secs = (now_ns() - t0) / 1e9;
			bsim_flow_stats(sim, 0, &fl);
			ticks_s[r] = 5000000.0 / bsim_tick_us(sim) / secs;
			pkts_s[r] = fl.sent_pkts / secs;
			speed[r] = 5.0 / secs;
			bsim_free(sim);
		}
		printf("  %-20s %12.0f %14.0f %16.1f\n", sim_cases[c].name, summarize(ticks_s, 5).median,
		       summarize(pkts_s, 5).median, summarize(speed, 5).median);
	}
}

static void bench_training(void)
{
	double rate[3];

	for (int r = 0; r < 3; r++) {
		struct dqn_train_opts o;
		struct dqn_trainer *tr;
		struct reflex_err err = { 0 };
		double t0;

		dqn_train_opts_default(&o);
		o.steps_per_episode = 200;
		o.validate_every = 0;
		if (dqn_trainer_new(&o, &tr, &err)) {
			fprintf(stderr, "bench_dqn: %s\n", err.msg);
			exit(1);
		}
		t0 = now_ns();
		if (dqn_trainer_run(tr, 20, &err)) {
			fprintf(stderr, "bench_dqn: %s\n", err.msg);
			exit(1);
		}
		rate[r] = 20 * 200 / ((now_ns() - t0) / 1e9);
		dqn_trainer_free(tr);
	}
	printf("Training (default hyperparameters, 20 episodes x 200 decisions, median of 3)\n");
	printf("  %.0f decisions/s (one Double-DQN update of batch 64 per decision)\n", summarize(rate, 3).median);
}

int main(void)
{
	bench_decisions();
	bench_simulator();
	bench_training();
	return 0;
}
