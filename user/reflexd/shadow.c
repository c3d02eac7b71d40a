#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "sim/oracle.h"
#include "reflexd/shadow.h"

int shadow_expected_delta(const struct feature_window *w, double cap_multiple, double *delta)
{
	struct cwnd_params params;
	struct bsim_config cfg;
	struct bsim_eval capped, uncapped;
	uint64_t warmup_us, measure_us;
	int ret;

	cwnd_params_default(&params);
	ret = cwnd_scenario(w->context[CTX_DELIVERY_RATE_BPS], w->context[CTX_MIN_RTT_US],
			    w->feature[FEAT_LATENCY_P95], w->feature[FEAT_QUEUE_DEPTH], &params, &cfg, &warmup_us,
			    &measure_us);
	if (ret)
		return ret;
	cfg.cwnd_clamp = 0;
	ret = bsim_eval_clamp(&cfg, cap_multiple, warmup_us, measure_us, &capped);
	if (ret)
		return ret;
	ret = bsim_eval_clamp(&cfg, 0, warmup_us, measure_us, &uncapped);
	if (ret)
		return ret;
	if (!uncapped.rtt_p95_us)
		return -ERANGE;
	*delta = (double)capped.rtt_p95_us / uncapped.rtt_p95_us - 1.0;
	return 0;
}

double shadow_delta_p95(const struct shadow_report *r)
{
	return r->evaluated ? r->delta_p95_sum / r->evaluated : NAN;
}

void shadow_note_reversal(struct shadow_report *r, uint64_t since_prev_ns, bool measured)
{
	uint32_t in_span = since_prev_ns < 30ULL * 1000 * 1000 * 1000 ? 2 : 1;

	r->reversals++;
	if (!measured && in_span > r->max_reversals_30s)
		r->max_reversals_30s = in_span;
}

double shadow_oscillations_per_30s(const struct shadow_report *r)
{
	return r->max_reversals_30s;
}

bool shadow_gate(const struct shadow_report *r, char *why, size_t len)
{
	double delta = shadow_delta_p95(r), osc = shadow_oscillations_per_30s(r);
	bool delta_ok = r->evaluated && delta <= SHADOW_GATE_DELTA_P95;
	bool osc_ok = osc <= SHADOW_GATE_OSCILLATIONS_PER_30S;

	if (!r->evaluated)
		snprintf(why, len, "no window could be evaluated yet (no flow under a decision)");
	else
		snprintf(why, len, "expected delta p95 %+.1f %% (gate <= %+.0f %%)%s, at most %.0f oscillations per "
			 "flow in 30 s (gate <= %.0f)%s; %llu reversals, %llu held back; over %llu windows and %.0f "
			 "flow-seconds",
			 delta * 100, SHADOW_GATE_DELTA_P95 * 100, delta_ok ? "" : " FAILS", osc,
			 SHADOW_GATE_OSCILLATIONS_PER_30S, osc_ok ? "" : " FAILS", (unsigned long long)r->reversals,
			 (unsigned long long)r->reversals_held_back, (unsigned long long)r->evaluated, r->flow_seconds);
	return delta_ok && osc_ok;
}
