/* The forge's `label` step: every window through its recipe's oracle, into a
 * training set (CSV text) of features, the chosen outputs, and J. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forge/forge.h"
#include "reflex.h"

/* A window claiming more records than this is a corrupt row, not a busy one. */
#define MAX_RECORDS_PER_WINDOW 10000000.0

struct labeller {
	const struct forge_trace *tr;
	const struct forge_label_opts *opts;
	FILE *out;
	struct forge_label_stats *stats;
	struct record_arrival *even;     /* scratch for reconstructed arrivals */
	size_t even_cap;
	struct reflex_err *err;
};

static int window_error(const struct labeller *lb, const struct forge_window *w, int ctx, const char *what)
{
	struct reflex_err *err = lb->err;

	reflex_err_set_file(err, lb->tr->path, "%s", what);
	reflex_err_at_line(err, (long)w->line, (long)lb->tr->context_col[ctx] + 1);
	reflex_err_at_field(err, "column '%s'", context_names[ctx]);
	return -EINVAL;
}

static void put_value(FILE *out, double v, bool last)
{
	char text[32];

	csv_format_double(text, sizeof(text), v);
	fputs(text, out);
	fputc(last ? '\n' : ',', out);
}

static void put_features(FILE *out, const struct forge_window *w)
{
	for (int f = 0; f < FEATURE_COUNT; f++)
		put_value(out, w->feature[f], false);
}

static void put_feature_header(FILE *out)
{
	for (int f = 0; f < FEATURE_COUNT; f++)
		fprintf(out, "%s,", feature_names[f]);
}

/* --- batching ---------------------------------------------------------------- */

static unsigned batching_default_candidate(void)
{
	unsigned ti = 0, di = 0;

	for (unsigned i = 0; i < BATCHING_THRESHOLDS; i++)
		if (batching_thresholds[i] == REFLEX_DEFAULT_FLUSH_THRESHOLD)
			ti = i;
	for (unsigned i = 0; i < BATCHING_DELAYS; i++)
		if (batching_delays_us[i] == REFLEX_DEFAULT_MAX_BATCH_DELAY_US)
			di = i;
	return ti * BATCHING_DELAYS + di;
}

static void batching_header(FILE *out)
{
	put_feature_header(out);
	fputs("flush_threshold,max_batch_delay_us,J", out);
	for (unsigned c = 0; c < BATCHING_CANDIDATES; c++)
		fprintf(out, ",J@flush_threshold=%u;max_batch_delay_us=%u", batching_thresholds[c / BATCHING_DELAYS],
			batching_delays_us[c % BATCHING_DELAYS]);
	fputc('\n', out);
}

/* The window's arrivals: from the records file, or rebuilt from its `records` count. */
static int window_arrivals(struct labeller *lb, const struct forge_window *w, uint64_t start, uint64_t stop,
			   const struct record_arrival **arrivals, size_t *n)
{
	const struct forge_records *rec = lb->opts->records;
	double count = w->context[CTX_RECORDS];

	if (rec) {
		size_t first;

		forge_records_window(rec, start, stop, &first, n);
		*arrivals = rec->arrivals + first;
		if ((double)*n != count)
			lb->stats->records_count_mismatch++;
		return 0;
	}
	if (count != floor(count) || count > MAX_RECORDS_PER_WINDOW)
		return window_error(lb, w, CTX_RECORDS, "not a whole number of records up to 10^7");
	*n = (size_t)count;
	if (*n > lb->even_cap) {
		struct record_arrival *grown = realloc(lb->even, *n * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		lb->even = grown;
		lb->even_cap = *n;
	}
	batching_even_arrivals(*n, start, stop, lb->even);
	*arrivals = lb->even;
	return 0;
}

static int label_batching(struct labeller *lb, const struct forge_window *w)
{
	const unsigned dflt = batching_default_candidate();
	const struct record_arrival *arrivals;
	struct forge_label_stats *st = lb->stats;
	struct batching_label label;
	uint64_t start, stop;
	size_t n = 0;
	int ret;

	forge_window_span(w->ts_ns, &start, &stop);
	if (stop <= start)
		return window_error(lb, w, CTX_RECORDS, "the window ends before one 100 ms step of the clock");
	ret = window_arrivals(lb, w, start, stop, &arrivals, &n);
	if (ret)
		return ret;
	ret = batching_label_window(arrivals, n, start, stop, &lb->opts->batching, &label);
	if (ret)
		return ret;

	put_features(lb->out, w);
	put_value(lb->out, batching_thresholds[label.best / BATCHING_DELAYS], false);
	put_value(lb->out, batching_delays_us[label.best % BATCHING_DELAYS], false);
	put_value(lb->out, label.candidate[label.best].j, false);
	for (unsigned c = 0; c < BATCHING_CANDIDATES; c++)
		put_value(lb->out, label.candidate[c].j, c + 1 == BATCHING_CANDIDATES);

	st->labelled++;
	st->records_replayed += n;
	st->choice_count[label.best]++;
	st->mean_j += label.candidate[label.best].j;
	st->mean_j_default += label.candidate[dflt].j;
	st->mean_p95_latency_us += label.candidate[label.best].p95_latency_us;
	st->mean_p95_latency_us_default += label.candidate[dflt].p95_latency_us;
	st->mean_batch_overhead += label.candidate[label.best].batch_overhead;
	st->mean_batch_overhead_default += label.candidate[dflt].batch_overhead;
	return 0;
}

/* --- cwnd ------------------------------------------------------------------------ */

/* The kernel's own behaviour, no cap, is what the oracle's choice is compared with. */
#define CWND_DEFAULT_CANDIDATE (CWND_CANDIDATES - 1)

static void cwnd_header(FILE *out)
{
	char text[32];

	put_feature_header(out);
	fputs("cwnd_bdp_multiple,J", out);
	for (unsigned c = 0; c < CWND_CANDIDATES; c++) {
		csv_format_double(text, sizeof(text), cwnd_bdp_multiples[c]);
		fprintf(out, ",J@cwnd_bdp_multiple=%s", text);
	}
	fputc('\n', out);
}

/* The rates a window's link is judged at with a horizon: the window's own delivery rate,
 * then the lowest and the highest its flow reached in the windows of the next horizon_ms
 * (same segment; windows without a rate sample are passed over), where they differ. */
static unsigned horizon_rates(const struct forge_trace *tr, const struct forge_window *w, uint32_t horizon_ms,
			      double rates[3])
{
	const struct forge_window *end = tr->windows + tr->count;
	double now = w->context[CTX_DELIVERY_RATE_BPS], lo = now, hi = now;
	unsigned n = 1;

	for (const struct forge_window *next = w + 1; next < end && next->flow == w->flow &&
						       next->segment == w->segment &&
						       next->ts_ns - w->ts_ns <= (uint64_t)horizon_ms * 1000000;
	     next++) {
		double rate = next->context[CTX_DELIVERY_RATE_BPS];

		if (!(rate > 0))
			continue;
		lo = rate < lo ? rate : lo;
		hi = rate > hi ? rate : hi;
	}
	rates[0] = now;
	if (lo != now)
		rates[n++] = lo;
	if (hi != now)
		rates[n++] = hi;
	return n;
}

static int label_cwnd(struct labeller *lb, const struct forge_window *w)
{
	const struct cwnd_params *p = &lb->opts->cwnd;
	struct forge_label_stats *st = lb->stats;
	uint64_t warmup_us, measure_us;
	struct bsim_config cfg;
	struct cwnd_label label;
	int ret;

	if (p->horizon_ms) {
		double rates[3];
		unsigned n = horizon_rates(lb->tr, w, p->horizon_ms, rates);

		ret = cwnd_label_rates(rates[0], rates, n, w->context[CTX_MIN_RTT_US], w->feature[FEAT_LATENCY_P95],
				       w->feature[FEAT_QUEUE_DEPTH], p, &label);
	} else {
		ret = cwnd_scenario(w->context[CTX_DELIVERY_RATE_BPS], w->context[CTX_MIN_RTT_US],
				    w->feature[FEAT_LATENCY_P95], w->feature[FEAT_QUEUE_DEPTH], p, &cfg, &warmup_us,
				    &measure_us);
		if (!ret)
			ret = cwnd_label_scenario(&cfg, warmup_us, measure_us, p, &label);
	}
	if (ret == -ERANGE) {
		st->skipped++;
		return 0;
	}
	if (ret == -ENODATA) {
		st->skipped++;
		return 0;
	}
	if (ret == -EINVAL)
		return window_error(lb, w, CTX_DELIVERY_RATE_BPS, "the simulator refused this window's scenario");
	if (ret)
		return ret;

	put_features(lb->out, w);
	put_value(lb->out, cwnd_bdp_multiples[label.best], false);
	put_value(lb->out, label.candidate[label.best].j, false);
	for (unsigned c = 0; c < CWND_CANDIDATES; c++)
		put_value(lb->out, label.candidate[c].j, c + 1 == CWND_CANDIDATES);

	st->labelled++;
	st->choice_count[label.best]++;
	st->mean_j += label.candidate[label.best].j;
	st->mean_j_default += label.candidate[CWND_DEFAULT_CANDIDATE].j;
	st->mean_rtt_ratio += label.candidate[label.best].rtt_ratio;
	st->mean_rtt_ratio_default += label.candidate[CWND_DEFAULT_CANDIDATE].rtt_ratio;
	st->mean_shortfall_pct += label.candidate[label.best].shortfall_pct;
	st->mean_shortfall_pct_default += label.candidate[CWND_DEFAULT_CANDIDATE].shortfall_pct;
	return 0;
}

/* --- driver ---------------------------------------------------------------------- */

static void finish_means(struct forge_label_stats *st)
{
	double n = st->labelled ? (double)st->labelled : 1.0;

	st->mean_j /= n;
	st->mean_j_default /= n;
	st->mean_p95_latency_us /= n;
	st->mean_p95_latency_us_default /= n;
	st->mean_batch_overhead /= n;
	st->mean_batch_overhead_default /= n;
	st->mean_rtt_ratio /= n;
	st->mean_rtt_ratio_default /= n;
	st->mean_shortfall_pct /= n;
	st->mean_shortfall_pct_default /= n;
}

int forge_label(const struct forge_trace *tr, const struct forge_label_opts *opts, struct forge_text *out,
		struct forge_label_stats *stats, struct reflex_err *err)
{
	struct labeller lb = { .tr = tr, .opts = opts, .stats = stats, .err = err };
	char *buf = NULL;
	size_t len = 0;
	int ret = 0;

	memset(stats, 0, sizeof(*stats));
	memset(out, 0, sizeof(*out));
	lb.out = open_memstream(&buf, &len);
	if (!lb.out) {
		reflex_err_set(err, "out of memory");
		return -ENOMEM;
	}
	if (opts->recipe == RECIPE_BATCHING)
		batching_header(lb.out);
	else
		cwnd_header(lb.out);
	for (size_t i = 0; i < tr->count && !ret; i++) {
		stats->windows++;
		ret = opts->recipe == RECIPE_BATCHING ? label_batching(&lb, &tr->windows[i])
						      : label_cwnd(&lb, &tr->windows[i]);
		if (opts->progress && (i % 64 == 63 || i + 1 == tr->count))
			forge_progress("label", i + 1, tr->count);
	}
	if (fclose(lb.out) && !ret)
		ret = -ENOMEM;
	free(lb.even);
	if (!ret && !stats->labelled) {
		reflex_err_set(err, "none of the %zu windows could be labelled (all %zu skipped)", stats->windows,
			       stats->skipped);
		reflex_err_at_file(err, tr->path);
		ret = -EINVAL;
	}
	if (ret) {
		if (ret == -ENOMEM)
			reflex_err_set(err, "out of memory");
		free(buf);
		return ret;
	}
	finish_means(stats);
	out->data = buf;
	out->len = len;
	return 0;
}

void forge_text_free(struct forge_text *t)
{
	free(t->data);
	t->data = NULL;
	t->len = 0;
}

int forge_text_write(const struct forge_text *t, const char *path, struct reflex_err *err)
{
	return csv_write_atomic(path, t->data, t->len, err);
}
