/* The `batching` oracle: replay a window's ring-buffer record arrivals under every
 * (flush_threshold, max_batch_delay) pair; the model is described in oracle.h. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sim/oracle.h"
#include "lib/percentile.h"

const unsigned batching_thresholds[BATCHING_THRESHOLDS] = { 1, 4, 8, 16, 32, 64 };
const unsigned batching_delays_us[BATCHING_DELAYS] = { 50, 200, 1000, 4000 };

void batching_params_default(struct batching_params *p)
{
	p->lambda = ORACLE_DEFAULT_LAMBDA;
	p->wakeup_cost_ns = BATCHING_DEFAULT_WAKEUP_COST_NS;
	p->record_cost_ns = BATCHING_DEFAULT_RECORD_COST_NS;
}

void batching_even_arrivals(size_t n, uint64_t start_ns, uint64_t end_ns, struct record_arrival *out)
{
	uint64_t span = end_ns - start_ns;

	for (size_t k = 0; k < n; k++) {
		/* Middle of slice k: start + (2k + 1) * span / 2n, in exact integer arithmetic. */
		unsigned __int128 off = (unsigned __int128)(2 * k + 1) * span / (2 * (unsigned __int128)n);

		out[k].ts_ns = start_ns + (uint64_t)off;
		out[k].counter = 0;
	}
}

static bool arrivals_valid(const struct record_arrival *a, size_t n, uint64_t start_ns, uint64_t end_ns)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].ts_ns < start_ns || a[i].ts_ns >= end_ns || a[i].counter >= BATCHING_MAX_COUNTERS)
			return false;
		if (i && a[i].ts_ns < a[i - 1].ts_ns)
			return false;
	}
	return true;
}

/* forced[i]: record i is submitted with BPF_RB_FORCE_WAKEUP. Returns how many are. */
static size_t mark_forced(const struct record_arrival *a, size_t n, unsigned threshold, bool *forced)
{
	uint32_t pending[BATCHING_MAX_COUNTERS] = { 0 };
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		forced[i] = ++pending[a[i].counter] >= threshold;
		if (forced[i]) {
			pending[a[i].counter] = 0;
			count++;
		}
	}
	return count;
}

int batching_simulate(const struct record_arrival *a, size_t n, uint64_t start_ns, uint64_t end_ns,
		      unsigned flush_threshold, uint64_t max_batch_delay_ns, const struct batching_params *p,
		      struct batching_outcome *out)
{
	uint64_t *delay = NULL, t = start_ns, wakeups = 0;
	bool *forced = NULL;
	size_t next = 0;     /* first record not yet delivered */
	size_t notify = 0;   /* first forced record not yet seen by a poll */

	memset(out, 0, sizeof(*out));
	if (!flush_threshold || !max_batch_delay_ns || end_ns <= start_ns || !arrivals_valid(a, n, start_ns, end_ns))
		return -EINVAL;
	delay = malloc((n ? n : 1) * sizeof(*delay));
	forced = malloc(n ? n : 1);
	if (!delay || !forced) {
		free(delay);
		free(forced);
		return -ENOMEM;
	}
	mark_forced(a, n, flush_threshold, forced);

	for (;;) {
		uint64_t wake = t + max_batch_delay_ns, cur;

		/* A forced wakeup of a record already handled woke nobody that matters:
		 * the poll that follows finds the ring empty and sleeps again. */
		while (notify < n && (!forced[notify] || notify < next))
			notify++;
		if (notify < n && a[notify].ts_ns < wake)
			wake = a[notify].ts_ns > t ? a[notify].ts_ns : t;
		if (next == n && wake >= end_ns)
			break;
		wakeups++;
		cur = wake + p->wakeup_cost_ns;
		while (next < n && a[next].ts_ns <= cur) {
			cur += p->record_cost_ns;
			delay[next] = cur - a[next].ts_ns;
			next++;
		}
		t = cur;
	}

	out->records = n;
	out->wakeups = wakeups;
	out->p95_latency_us = percentile_u64(delay, n, 0.95) / 1000.0;
	out->batch_overhead = (double)wakeups / (double)(n ? n : 1);
	out->j = out->p95_latency_us + p->lambda * out->batch_overhead;
	free(delay);
	free(forced);
	return 0;
}

int batching_label_window(const struct record_arrival *a, size_t n, uint64_t start_ns, uint64_t end_ns,
			  const struct batching_params *p, struct batching_label *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned ti = 0; ti < BATCHING_THRESHOLDS; ti++) {
		for (unsigned di = 0; di < BATCHING_DELAYS; di++) {
			unsigned c = ti * BATCHING_DELAYS + di;
			int ret = batching_simulate(a, n, start_ns, end_ns, batching_thresholds[ti],
						    batching_delays_us[di] * 1000ULL, p, &out->candidate[c]);

			if (ret)
				return ret;
			if (out->candidate[c].j < out->candidate[out->best].j)
				out->best = c;
		}
	}
	return 0;
}
