/*
 * Inference cost of `.reflex` models, ns per decision: a depth-4 tree model with 10
 * features and 2 outputs, and an 8 -> 128 -> 6 int8 MLP (the DQN's shape). A
 * decision is what reflexd does per flow per step: quantize the raw feature vector,
 * then evaluate every output. Baseline in the same run: the float forward pass of the
 * same MLP (what the int8 path replaces). Medians over repetitions; the machine is
 * noisy, so min..max is printed too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "model/model_fast.h"
#include "bench.h"

#define REPS 15
#define DECISIONS 200000
#define INPUTS 1024 /* distinct input vectors, cycled: the walk takes varied paths */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static double uniform(double lo, double hi)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

static volatile int64_t sink;

enum workload {
	TREE_DECISION, TREE_EVAL, TREE_DECIDE, TREE_DECIDE_MAP, MLP_DECISION, MLP_EVAL, MLP_SCALAR, MLP_AVX2, MLP_VNNI, MLP_FLOAT
};
#define WORKLOADS 10
#define TREES 2

struct bench {
	const struct model *tree, *mlp;
	const struct model_float_layer *float_layers;
	double raw_tree[INPUTS][10], raw_mlp[INPUTS][8];
	double raw_tree_mapped[INPUTS][10]; /* raw_tree in reverse order, read through tree_map */
	int tree_map[10];
	int16_t q_tree[INPUTS][10], q_mlp[INPUTS][8];
	float x_mlp[INPUTS][8];
};

static int64_t run_once(const struct bench *b, enum workload w)
{
	int16_t q[MODEL_MAX_FEATURES];
	int32_t value[MODEL_MAX_OUTPUTS];
	float y[8];
	int64_t acc = 0;

	for (unsigned n = 0; n < DECISIONS; n++) {
		unsigned i = n % INPUTS;

		switch (w) {
		case TREE_DECISION:
			model_quantize(b->tree, b->raw_tree[i], NULL, q);
			model_eval(b->tree, q, value);
			acc += value[0] + value[1];
			break;
		case TREE_EVAL:
			model_eval(b->tree, b->q_tree[i], value);
			acc += value[0] + value[1];
			break;
		case TREE_DECIDE:
			model_decide(b->tree, b->raw_tree[i], NULL, value);
			acc += value[0] + value[1];
			break;
		case TREE_DECIDE_MAP:
			model_decide(b->tree, b->raw_tree_mapped[i], b->tree_map, value);
			acc += value[0] + value[1];
			break;
		case MLP_SCALAR:
		case MLP_AVX2:
		case MLP_VNNI:
			if (model_decide_path(b->mlp, b->raw_mlp[i], NULL, value,
					      (enum model_path)(MODEL_PATH_SCALAR + (w - MLP_SCALAR))))
				return 0; /* this CPU lacks the path */
			acc += model_argmax(value, 6);
			break;
		case MLP_DECISION:
			model_quantize(b->mlp, b->raw_mlp[i], NULL, q);
			model_eval(b->mlp, q, value);
			acc += model_argmax(value, 6);
			break;
		case MLP_EVAL:
			model_eval(b->mlp, b->q_mlp[i], value);
			acc += model_argmax(value, 6);
			break;
		case MLP_FLOAT:
			model_mlp_forward_float(b->float_layers, 2, b->x_mlp[i], y);
			acc += y[0] > y[1];
			break;
		}
	}
	return acc;
}

/* Workloads interleaved within each repetition, so load changes hit them alike. */
static void measure(const struct bench *b, struct result *r, unsigned count)
{
	double ns[WORKLOADS][REPS];

	for (unsigned w = 0; w < count; w++)
		run_once(b, (enum workload)w); /* warm caches and branch predictors */
	for (unsigned rep = 0; rep < REPS; rep++)
		for (unsigned w = 0; w < count; w++) {
			double t0 = now_ns();

			sink += run_once(b, (enum workload)w);
			ns[w][rep] = (now_ns() - t0) / DECISIONS;
		}
	for (unsigned w = 0; w < count; w++) {
		qsort(ns[w], REPS, sizeof(ns[w][0]), cmp_double);
		r[w].median = ns[w][REPS / 2];
		r[w].min = ns[w][0];
		r[w].max = ns[w][REPS - 1];
	}
}

static void die(const char *what, const struct reflex_err *err)
{
	fprintf(stderr, "bench_model: %s: %s\n", what, err->msg);
	exit(1);
}

/* A full binary tree of depth 4 (31 nodes) over random features and thresholds. */
static struct model *build_tree(void)
{
	static const char *const names[] = {
		"queue_depth", "enqueue_rate", "dequeue_rate", "latency_p50", "latency_p95",
		"bytes_in_per_sec", "bytes_out_per_sec", "packet_size_mean", "packet_size_var", "rtt_ewma",
	};
	struct model *m = model_create(MODEL_KIND_TREES, 10, 2);
	struct model_tree_node nodes[31];
	struct reflex_err err;

	if (!m)
		die("model_create", &(struct reflex_err){ .msg = "out of memory" });
	for (unsigned i = 0; i < 10; i++)
		if (model_set_feature(m, i, names[i], 0, 1000, &err))
			die("feature", &err);
	if (model_set_output(m, 0, "flush_threshold", 1, 64, 1, &err) ||
	    model_set_output(m, 1, "max_batch_delay_us", 50, 4000, 1, &err))
		die("output", &err);
	for (unsigned t = 0; t < 2; t++) {
		for (unsigned j = 0; j < 31; j++) {
			if (j < 15)
				nodes[j] = (struct model_tree_node){
					.feature_idx = (uint16_t)(uniform(0, 10)),
					.threshold = (int16_t)uniform(4000, 28000),
					.left = (uint16_t)(2 * j + 1),
					.right = (uint16_t)(2 * j + 2),
				};
			else
				nodes[j] = (struct model_tree_node){
					.feature_idx = MODEL_LEAF,
					.leaf_value = (int16_t)(t ? uniform(50, 4000) : uniform(1, 64)),
				};
		}
		if (model_set_tree(m, t, nodes, 31, &err))
			die("tree", &err);
	}
	if (model_validate(m, &err))
		die("tree model", &err);
	return m;
}

static struct model *build_mlp(struct model_float_layer *layers, float *w0, float *b0, float *w1,
			       float *b1)
{
	static const char *const names[] = { "rtt_us", "rtt_var_us", "bandwidth_bps", "loss_rate",
					     "loss_trend", "inflight", "cwnd", "buffer_occupancy" };
	static const char *const actions[] = { "Increase5", "Increase10", "Maintain",
					       "Decrease5", "Decrease10", "SlowStart" };
	struct model *m = model_create(MODEL_KIND_MLP, 8, 6);
	struct reflex_err err;

	if (!m)
		die("model_create", &(struct reflex_err){ .msg = "out of memory" });
	for (unsigned k = 0; k < 128 * 8; k++)
		w0[k] = (float)uniform(-0.5, 0.5);
	for (unsigned k = 0; k < 128; k++)
		b0[k] = (float)uniform(-0.1, 0.1);
	for (unsigned k = 0; k < 6 * 128; k++)
		w1[k] = (float)uniform(-0.5, 0.5);
	for (unsigned k = 0; k < 6; k++)
		b1[k] = (float)uniform(-0.1, 0.1);
	layers[0] = (struct model_float_layer){ 8, 128, w0, b0 };
	layers[1] = (struct model_float_layer){ 128, 6, w1, b1 };
	for (unsigned i = 0; i < 8; i++)
		if (model_set_feature(m, i, names[i], 0, 1, &err))
			die("feature", &err);
	for (unsigned k = 0; k < 6; k++)
		if (model_set_output(m, k, actions[k], -1, 1, 1, &err))
			die("output", &err);
	if (model_mlp_quantize(m, layers, 2, NULL, 0, &err) || model_validate(m, &err))
		die("mlp model", &err);
	return m;
}

int main(void)
{
	static float w0[128 * 8], b0[128], w1[6 * 128], b1[6];
	static struct bench b;
	struct model_float_layer layers[2];
	struct model *tree = build_tree(), *mlp = build_mlp(layers, w0, b0, w1, b1);
	struct result r[WORKLOADS];
	static const char *const label[WORKLOADS] = {
		"tree  depth 4, 10 features, 2 outputs: quantize + eval",
		"tree  depth 4, 10 features, 2 outputs: eval only",
		"tree  depth 4, 10 features, 2 outputs: model_decide",
		"tree  depth 4, 10 features, 2 outputs: model_decide, map",
		"mlp   8->128->6 int8:                  quantize + eval + argmax",
		"mlp   8->128->6 int8:                  eval + argmax only",
		"mlp   8->128->6 int8: model_decide scalar   + argmax",
		"mlp   8->128->6 int8: model_decide avx2     + argmax",
		"mlp   8->128->6 int8: model_decide avx512vnni + argmax",
		"mlp   8->128->6 float reference:       forward (baseline)",
	};

	b.tree = tree;
	b.mlp = mlp;
	b.float_layers = layers;
	for (unsigned f = 0; f < 10; f++)
		b.tree_map[f] = 9 - (int)f; /* reflexd passes its telemetry in its own order */
	for (unsigned i = 0; i < INPUTS; i++) {
		for (unsigned f = 0; f < 10; f++)
			b.raw_tree[i][f] = b.raw_tree_mapped[i][9 - f] = uniform(-50, 1050);
		for (unsigned f = 0; f < 8; f++)
			b.raw_mlp[i][f] = b.x_mlp[i][f] = (float)uniform(0, 1);
		model_quantize(tree, b.raw_tree[i], NULL, b.q_tree[i]);
		model_quantize(mlp, b.raw_mlp[i], NULL, b.q_mlp[i]);
	}
	printf("bench_model: ns per decision, median of %d runs x %d decisions [min..max]\n", REPS,
	       DECISIONS);
	measure(&b, r, WORKLOADS);
	for (unsigned w = 0; w < WORKLOADS; w++) {
		if (w >= MLP_SCALAR && w <= MLP_VNNI &&
		    !model_path_supported((enum model_path)(MODEL_PATH_SCALAR + (w - MLP_SCALAR)))) {
			printf("  %-62s  not supported by this CPU\n", label[w]);
			continue;
		}
		printf("  %-62s %9.1f ns  [%.1f..%.1f]\n", label[w], r[w].median, r[w].min, r[w].max);
	}
	printf("  tree model_decide per tree: %.1f ns, through a map %.1f ns (#16's goal: <= 5)\n",
	       r[TREE_DECIDE].median / TREES, r[TREE_DECIDE_MAP].median / TREES);
	printf("  tree model_decide / quantize + eval: %.2f\n", r[TREE_DECIDE].median / r[TREE_DECISION].median);
	printf("  mlp int8 decision / float forward: %.2f\n", r[MLP_DECISION].median / r[MLP_FLOAT].median);
	printf("  mlp int8 model_decide (%s) / float forward: %.2f\n", model_path_name(model_path_best()),
	       r[MLP_SCALAR + (model_path_best() - MODEL_PATH_SCALAR)].median / r[MLP_FLOAT].median);
	model_free(tree);
	model_free(mlp);
	return 0;
}
