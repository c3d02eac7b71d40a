// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Trace-driven links for the DQN: episodes that replay a segment of a real link
 * trace as the simulated capacity, and the held-out evaluation on such segments. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dqn/train_internal.h"
#include "model/model.h"

#define TRACE_MIN_RTT_US 10000.0
#define TRACE_MAX_RTT_US 150000.0
#define TRACE_MIN_BUFFER_BYTES 100e3
#define TRACE_MAX_BUFFER_BYTES 2e6
#define EVAL_WARMUP_RTTS 2

int dqn_trace_set_load(struct dqn_trace_set *set, const char *const *paths, uint32_t n, struct reflex_err *err)
{
	int ret;

	memset(set, 0, sizeof(*set));
	if (!n)
		return 0;
	if (n > DQN_TRACE_MAX_FILES) {
		reflex_err_set(err, "train-dqn: at most %u traces", DQN_TRACE_MAX_FILES);
		return -EINVAL;
	}
	set->traces = calloc(n, sizeof(*set->traces));
	if (!set->traces) {
		reflex_err_set(err, "train-dqn: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		ret = trace_read_file(paths[i], &set->traces[i], err);
		if (ret) {
			dqn_trace_set_free(set);
			return ret;
		}
		set->n++;
	}
	return 0;
}

void dqn_trace_set_free(struct dqn_trace_set *set)
{
	for (uint32_t i = 0; i < set->n; i++)
		trace_free(&set->traces[i]);
	free(set->traces);
	memset(set, 0, sizeof(*set));
}

static uint32_t segment_steps(uint32_t segment_ms)
{
	uint32_t steps = (segment_ms + DQN_TRACE_STEP_MS - 1) / DQN_TRACE_STEP_MS;
	uint32_t max = DQN_TRACE_MAX_SEGMENT_MS / DQN_TRACE_STEP_MS;

	return steps < 1 ? 1 : steps > max ? max : steps;
}

/* link_bps (what the BDP figures use) is the segment's mean capacity. */
static void fill_trace_scenario(const struct trace *t, uint64_t offset_ms, uint32_t segment_ms,
				uint32_t base_rtt_us, uint64_t buffer_bytes, struct dqn_scenario *sc)
{
	struct bsim_config *c = &sc->cfg;
	uint32_t steps = segment_steps(segment_ms);
	double sum = 0;

	bsim_config_default(c);
	c->cc = BSIM_CC_CUBIC;
	bsim_schedule_from_trace(t, offset_ms, DQN_TRACE_STEP_MS, steps, sc->schedule);
	for (uint32_t i = 0; i < steps; i++)
		sum += (double)sc->schedule[i];
	c->link_bps = (uint64_t)(sum / steps);
	c->rate_schedule_bps = sc->schedule;
	c->rate_schedule_len = steps;
	c->rate_schedule_step_us = DQN_TRACE_STEP_MS * 1000;
	c->base_rtt_us = base_rtt_us;
	c->buffer_bytes = buffer_bytes < 10ull * c->mss ? 10ull * c->mss : buffer_bytes;
	c->loss_rate = 0;
	sc->trace = true;
}

void dqn_trace_scenario(const struct trace *t, uint64_t offset_ms, uint32_t segment_ms, struct prng *rng,
			struct dqn_scenario *sc)
{
	double rtt = TRACE_MIN_RTT_US * pow(TRACE_MAX_RTT_US / TRACE_MIN_RTT_US, prng_uniform(rng));
	double buffer = TRACE_MIN_BUFFER_BYTES *
			pow(TRACE_MAX_BUFFER_BYTES / TRACE_MIN_BUFFER_BYTES, prng_uniform(rng));

	fill_trace_scenario(t, offset_ms, segment_ms, (uint32_t)rtt, (uint64_t)buffer, sc);
	sc->warmup_rtts = 2 + (uint32_t)prng_below(rng, 40);
	sc->cfg.seed = prng_next(rng);
}

void dqn_source_sample(const struct dqn_scenario_source *src, struct prng *rng, uint32_t steps,
		       struct dqn_scenario *sc)
{
	const struct trace *t;
	uint64_t offset;

	memset(sc, 0, sizeof(*sc));
	if (!src || !src->set || !src->set->n || !(prng_uniform(rng) < src->share)) {
		dqn_scenario_sample(rng, steps, sc);
		return;
	}
	t = &src->set->traces[prng_below(rng, src->set->n)];
	offset = prng_below(rng, t->period_ms);
	dqn_trace_scenario(t, offset, src->segment_ms, rng, sc);
	sc->trace_delay_weight = src->delay_weight;
}

/* --- held-out evaluation ------------------------------------------------------------ */

struct segment_result {
	double utilization;
	double qdelay_p95_ms;
};

static uint32_t eval_clamp(const struct dqn_trace_eval_opts *o, uint32_t policy, const struct dqn_env *e)
{
	if (policy < o->n_models)
		return dqn_apply_action(dqn_int8_action(o->models[policy], e->raw, NULL), e->clamp);
	if (policy == o->n_models)
		return dqn_heuristic_clamp(e);
	return 0;
}

/* One policy over one segment: warm-up and a first interval, then segment_ms measured. */
static int eval_segment(const struct dqn_trace_eval_opts *o, uint32_t policy, const struct dqn_scenario *sc,
			struct segment_result *res)
{
	struct bsim_link_stats start, end;
	struct dqn_env e;
	uint32_t p95;
	double capacity;
	int ret = dqn_env_start(&e, sc);

	if (ret)
		return ret;
	bsim_link_stats(e.sim, &start);
	bsim_rtt_clear(e.sim);
	while (bsim_now_us(e.sim) < start.now_us + (uint64_t)o->segment_ms * 1000) {
		dqn_env_actuate(&e, eval_clamp(o, policy, &e));
		dqn_env_interval(&e);
	}
	bsim_link_stats(e.sim, &end);
	ret = bsim_rtt_percentile(e.sim, 0.95, &p95);
	dqn_env_stop(&e);
	if (ret)
		return ret;
	capacity = (double)(end.capacity_bytes - start.capacity_bytes);
	res->utilization = capacity > 0 ? (double)(end.flow_delivered_bytes - start.flow_delivered_bytes) / capacity
					: 1.0;
	res->qdelay_p95_ms = fmax(0.0, ((double)p95 - sc->cfg.base_rtt_us) / 1000.0);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int check_eval_opts(const struct dqn_trace_eval_opts *o, struct reflex_err *err)
{
	const char *what = NULL;

	if (!o->n_trace_paths || o->n_trace_paths > DQN_TRACE_MAX_FILES)
		what = "1 to 64 traces";
	else if (!o->segments || o->segments > 10000)
		what = "segments must be in [1, 10000]";
	else if (o->segment_ms < DQN_TRACE_STEP_MS || o->segment_ms > DQN_TRACE_MAX_SEGMENT_MS)
		what = "segment length must be in [100 ms, 120 s]";
	else if (o->base_rtt_us < 1000 || o->base_rtt_us > 1000000)
		what = "base RTT must be in [1, 1000] ms";
	else if (o->buffer_bytes < 10 * BSIM_DEFAULT_MSS || o->buffer_bytes > (1ull << 32))
		what = "buffer must be in [15000 B, 4 GiB]";
	else if (o->n_models > DQN_TRACE_EVAL_MAX_MODELS)
		what = "at most 8 models";
	for (uint32_t i = 0; !what && i < o->n_models; i++)
		if (o->models[i]->kind != MODEL_KIND_MLP || o->models[i]->output_count != DQN_ACTIONS ||
		    o->models[i]->feature_count > DQN_FEATURES)
			what = "a model is not a DQN model (an MLP of the dqn features and 6 actions)";
	if (what) {
		reflex_err_set(err, "eval-dqn: %s", what);
		return -EINVAL;
	}
	return 0;
}

int dqn_eval_traces(const struct dqn_trace_eval_opts *o, struct dqn_trace_eval_row *rows,
		    struct reflex_err *err)
{
	uint32_t n_policies = o->n_models + 2;
	struct dqn_trace_set set;
	struct dqn_scenario *sc = NULL;
	double *util = NULL, *qdelay = NULL;
	struct prng rng;
	int ret = check_eval_opts(o, err);

	if (ret)
		return ret;
	ret = dqn_trace_set_load(&set, o->trace_paths, o->n_trace_paths, err);
	if (ret)
		return ret;
	sc = malloc(sizeof(*sc));
	util = calloc((size_t)n_policies * o->segments, sizeof(*util));
	qdelay = calloc((size_t)n_policies * o->segments, sizeof(*qdelay));
	if (!sc || !util || !qdelay) {
		reflex_err_set(err, "eval-dqn: out of memory");
		ret = -ENOMEM;
		goto out;
	}
	prng_seed(&rng, o->seed);
	for (uint32_t k = 0; k < o->segments; k++) {
		const struct trace *t = &set.traces[k % set.n];

		memset(sc, 0, sizeof(*sc));
		fill_trace_scenario(t, prng_below(&rng, t->period_ms), o->segment_ms, o->base_rtt_us, o->buffer_bytes,
				    sc);
		sc->warmup_rtts = EVAL_WARMUP_RTTS;
		sc->cfg.record_rtt = 1;
		sc->cfg.seed = prng_next(&rng);
		for (uint32_t p = 0; p < n_policies; p++) {
			struct segment_result res;

			ret = eval_segment(o, p, sc, &res);
			if (ret) {
				reflex_err_set(err, "eval-dqn: segment %u of %s: %s", k, o->trace_paths[k % set.n],
					       strerror(-ret));
				goto out;
			}
			util[(size_t)p * o->segments + k] = res.utilization;
			qdelay[(size_t)p * o->segments + k] = res.qdelay_p95_ms;
		}
	}
	for (uint32_t p = 0; p < n_policies; p++) {
		double *u = util + (size_t)p * o->segments, *q = qdelay + (size_t)p * o->segments;

		rows[p].utilization_median = median(u, o->segments);
		rows[p].utilization_min = u[0];
		rows[p].qdelay_p95_median_ms = median(q, o->segments);
		rows[p].qdelay_p95_max_ms = q[o->segments - 1];
	}
out:
	free(sc);
	free(util);
	free(qdelay);
	dqn_trace_set_free(&set);
	return ret;
}
