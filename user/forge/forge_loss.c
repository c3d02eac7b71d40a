/* reflex-forge loss: can a flow's recent windows predict retransmissions ahead? A
 * depth-4 CART tree (cart.h) on the current and previous window of each flow, fitted
 * on one telemetry trace and scored on others, against the naive baseline "the
 * current window had a retransmission". Offline only: README (Model health) says
 * why reflexd does not act on it. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forge/cart.h"
#include "forge/forge.h"

/* Windows span two 100 ms steps and start every step: window t + 2 is the first that
 * shares no time with window t, so its retransmissions are the "next" ones. */
#define LOSS_AHEAD 2
/* Inputs: both windows' features, then the retransmissions of each. */
#define LOSS_INPUTS (2 * FEATURE_COUNT + 2)

struct loss_set {
	double *x;   /* [n][LOSS_INPUTS] */
	double *y;   /* [n] 1: a retransmission in window t + LOSS_AHEAD */
	size_t n, positives;
};

static void loss_set_free(struct loss_set *s)
{
	free(s->x);
	free(s->y);
	memset(s, 0, sizeof(*s));
}

/* Every window t of a flow whose windows t - 1 and t + LOSS_AHEAD are in its segment. */
static int loss_set_build(const struct forge_trace *tr, struct loss_set *s)
{
	memset(s, 0, sizeof(*s));
	s->x = malloc((tr->count ? tr->count : 1) * LOSS_INPUTS * sizeof(*s->x));
	s->y = malloc((tr->count ? tr->count : 1) * sizeof(*s->y));
	if (!s->x || !s->y)
		return -ENOMEM;
	for (size_t i = 1; i + LOSS_AHEAD < tr->count; i++) {
		const struct forge_window *prev = &tr->windows[i - 1], *now = &tr->windows[i];
		const struct forge_window *ahead = &tr->windows[i + LOSS_AHEAD];
		double *x = &s->x[s->n * LOSS_INPUTS];

		if (prev->segment != now->segment || ahead->segment != now->segment)
			continue;
		for (int f = 0; f < FEATURE_COUNT; f++) {
			x[f] = isfinite(now->feature[f]) ? now->feature[f] : 0;
			x[FEATURE_COUNT + f] = isfinite(prev->feature[f]) ? prev->feature[f] : 0;
		}
		x[2 * FEATURE_COUNT] = now->context[CTX_RETRANS];
		x[2 * FEATURE_COUNT + 1] = prev->context[CTX_RETRANS];
		s->y[s->n] = ahead->context[CTX_RETRANS] > 0;
		s->positives += s->y[s->n] > 0;
		s->n++;
	}
	return 0;
}

struct scored {
	double score;
	bool positive;
};

static int cmp_scored(const void *a, const void *b)
{
	double x = ((const struct scored *)a)->score, y = ((const struct scored *)b)->score;

	return (x > y) - (x < y);
}

/* Area under the ROC curve, ties counted half (Mann-Whitney U over average ranks). */
static double auc(struct scored *v, size_t n)
{
	double rank_sum = 0, pos = 0;

	qsort(v, n, sizeof(*v), cmp_scored);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		double avg;

		while (j < n && v[j].score == v[i].score)
			j++;
		avg = (i + 1 + j) / 2.0;
		for (size_t k = i; k < j; k++)
			if (v[k].positive) {
				rank_sum += avg;
				pos++;
			}
		i = j;
	}
	if (pos == 0 || pos == n)
		return NAN;
	return (rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos));
}

struct verdict {
	double precision, recall, auc;
	size_t flagged;
};

static void judge(struct scored *v, size_t n, double threshold, struct verdict *out)
{
	size_t tp = 0, fp = 0, fn = 0;

	for (size_t i = 0; i < n; i++) {
		bool flag = v[i].score >= threshold;

		tp += flag && v[i].positive;
		fp += flag && !v[i].positive;
		fn += !flag && v[i].positive;
	}
	out->flagged = tp + fp;
	out->precision = tp + fp ? (double)tp / (tp + fp) : NAN;
	out->recall = tp + fn ? (double)tp / (tp + fn) : NAN;
	out->auc = auc(v, n);
}

/* The leaf value (a training loss frequency) above which the tree says "loss": the
 * one of best F1 on the training rows, so the cut is not tuned on the test. */
static double best_cut(const struct cart_tree *tree, const struct loss_set *train)
{
	double best = 0.5, best_f1 = -1;

	for (size_t k = 0; k < tree->node_count; k++) {
		double cut = tree->nodes[k].value, f1;
		size_t tp = 0, fp = 0, fn = 0;

		if (tree->nodes[k].feature != CART_LEAF || !(cut > 0))
			continue;
		for (size_t i = 0; i < train->n; i++) {
			bool flag = cart_predict(tree, &train->x[i * LOSS_INPUTS]) >= cut, pos = train->y[i] > 0;

			tp += flag && pos;
			fp += flag && !pos;
			fn += !flag && pos;
		}
		f1 = tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
		if (f1 > best_f1 || (f1 == best_f1 && cut > best)) {
			best_f1 = f1;
			best = cut;
		}
	}
	return best;
}

static int evaluate(const char *path, const struct cart_tree *tree, double cut)
{
	struct forge_trace tr = { 0 };
	struct reflex_err err = { 0 };
	struct loss_set s;
	struct scored *v = NULL;
	struct verdict model, naive;
	int ret = forge_trace_load(path, SCOPE_FLOW, &tr, &err);

	if (ret) {
		fprintf(stderr, "reflex-forge loss: %s\n", err.msg);
		return ret;
	}
	ret = loss_set_build(&tr, &s);
	if (!ret && !(v = malloc((s.n ? s.n : 1) * sizeof(*v))))
		ret = -ENOMEM;
	if (ret)
		goto cleanup;
	for (size_t i = 0; i < s.n; i++)
		v[i] = (struct scored){ cart_predict(tree, &s.x[i * LOSS_INPUTS]), s.y[i] > 0 };
	judge(v, s.n, cut, &model);
	for (size_t i = 0; i < s.n; i++)
		v[i] = (struct scored){ s.x[i * LOSS_INPUTS + 2 * FEATURE_COUNT] > 0, s.y[i] > 0 };
	judge(v, s.n, 1, &naive);
	printf("test %s: %zu windows, %zu with a retransmission ahead (%.1f %%)\n", path, s.n, s.positives,
	       s.n ? 100.0 * s.positives / s.n : 0);
	printf("  tree (loss if >= %.3f): precision %.3f recall %.3f AUC %.3f (%zu flagged)\n", cut, model.precision,
	       model.recall, model.auc, model.flagged);
	printf("  naive (this window had a retransmission): precision %.3f recall %.3f AUC %.3f (%zu flagged)\n",
	       naive.precision, naive.recall, naive.auc, naive.flagged);
cleanup:
	free(v);
	loss_set_free(&s);
	forge_trace_free(&tr);
	return ret;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: reflex-forge loss TRAIN.csv TEST.csv... [--max-depth D] [--min-leaf N]\n"
		"\n"
		"Fits a CART tree (default depth 4, at least 20 windows a leaf) that predicts, from a\n"
		"flow's current and previous window (the ten features and the retransmissions of\n"
		"each), whether the flow retransmits in the next window that shares no time with the\n"
		"current one (window t + 2: the next 200 ms); fits on TRAIN's flow windows and reports\n"
		"on each TEST trace its precision, recall and ROC AUC next to the naive baseline \"the\n"
		"current window had a retransmission\". Telemetry CSVs as `build` reads them.\n"
		"Exit codes: 0 done, 1 failed, 2 bad usage.\n");
}

int forge_cmd_loss(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "max-depth", required_argument, NULL, 'd' },
		{ "min-leaf", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cart_params params = { .max_depth = 4, .min_samples_leaf = 20 };
	struct forge_trace tr = { 0 };
	struct reflex_err err = { 0 };
	struct cart_tree tree = { 0 };
	struct loss_set s = { 0 };
	size_t *rows = NULL;
	double cut;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': params.max_depth = (unsigned)atoi(optarg); break;
		case 'l': params.min_samples_leaf = (size_t)atol(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind < 2 || params.max_depth < 1 || params.max_depth > CART_MAX_DEPTH || !params.min_samples_leaf) {
		usage(stderr);
		return 2;
	}
	if (forge_trace_load(argv[optind], SCOPE_FLOW, &tr, &err)) {
		fprintf(stderr, "reflex-forge loss: %s\n", err.msg);
		return 1;
	}
	if (loss_set_build(&tr, &s) || !(rows = malloc((s.n ? s.n : 1) * sizeof(*rows))))
		goto cleanup;
	for (size_t i = 0; i < s.n; i++)
		rows[i] = i;
	if (cart_fit(&(struct cart_data){ .x = s.x, .y = s.y, .feature_count = LOSS_INPUTS, .rows = rows,
					  .row_count = s.n }, &params, &tree)) {
		fprintf(stderr, "reflex-forge loss: %s: cannot fit a tree on %zu windows\n", argv[optind], s.n);
		goto cleanup;
	}
	cut = best_cut(&tree, &s);
	printf("train %s: %zu windows, %zu with a retransmission ahead; tree of %zu nodes, depth %u\n", argv[optind],
	       s.n, s.positives, tree.node_count, tree.depth);
	ret = 0;
	for (int i = optind + 1; i < argc && !ret; i++)
		ret = evaluate(argv[i], &tree, cut) ? 1 : 0;
cleanup:
	cart_free(&tree);
	free(rows);
	loss_set_free(&s);
	forge_trace_free(&tr);
	return ret;
}
