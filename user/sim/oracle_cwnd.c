/* The `cwnd` oracle: the bottleneck simulator run once per candidate cap for the
 * scenario a flow window describes; the model is described in oracle.h. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "sim/oracle.h"

const double cwnd_bdp_multiples[CWND_CANDIDATES] = { 0.5, 0.75, 1, 1.25, 1.5, 2, 4, 0 };

void cwnd_params_default(struct cwnd_params *p)
{
	p->lambda = ORACLE_DEFAULT_LAMBDA;
	p->min_rate_bps = CWND_DEFAULT_MIN_RATE_BPS;
	p->warmup_rtts = 20;
	p->measure_rtts = 40;
	p->min_measure_us = 500000;
	p->max_packets = 200000;
	p->seed = 1;
	p->horizon_ms = 0;
}

int cwnd_scenario(double delivery_rate_bps, double min_rtt_us, double latency_p95_us, double backlog_bytes,
		  const struct cwnd_params *p, struct bsim_config *cfg, uint64_t *warmup_us,
		  uint64_t *measure_us)
{
	double serialization_us, base_us, bdp_bytes, queue_bytes, buffer, packets, warm, measure;

	if (!(delivery_rate_bps >= p->min_rate_bps) || !(min_rtt_us > 0) || !isfinite(delivery_rate_bps))
		return -ERANGE;
	bsim_config_default(cfg);
	cfg->link_bps = (uint64_t)llround(delivery_rate_bps);
	cfg->cc = BSIM_CC_CUBIC;
	cfg->flows = 1;
	cfg->loss_rate = 0;
	cfg->seed = p->seed;
	cfg->mss = BSIM_DEFAULT_MSS;
	/* The measured minimum includes the flow's own serialization at the bottleneck,
	 * which bsim adds back on top of its propagation-only base RTT. */
	serialization_us = cfg->mss * 8.0 / delivery_rate_bps * 1e6;
	base_us = fmax(1.0, round(min_rtt_us - serialization_us));
	cfg->base_rtt_us = (uint32_t)fmin(base_us, 10e6);
	bdp_bytes = delivery_rate_bps / 8.0 * cfg->base_rtt_us / 1e6;
	queue_bytes = fmax(0.0, latency_p95_us - min_rtt_us) * delivery_rate_bps / 8e6;
	buffer = fmax(fmax(backlog_bytes, queue_bytes), fmax(bdp_bytes, cfg->mss));
	cfg->buffer_bytes = (uint64_t)llround(buffer);

	warm = fmax((double)p->warmup_rtts * cfg->base_rtt_us, p->min_measure_us / 2.0);
	measure = fmax((double)p->measure_rtts * cfg->base_rtt_us, (double)p->min_measure_us);
	packets = delivery_rate_bps * (warm + measure) / 1e6 / (8.0 * cfg->mss);
	if (packets > (double)p->max_packets) {
		warm *= p->max_packets / packets;
		measure *= p->max_packets / packets;
	}
	*warmup_us = (uint64_t)llround(warm);
	*measure_us = (uint64_t)fmax(1.0, round(measure));
	return 0;
}

int cwnd_label_scenario(const struct bsim_config *cfg, uint64_t warmup_us, uint64_t measure_us,
			const struct cwnd_params *p, struct cwnd_label *out)
{
	struct bsim_config uncapped = *cfg;

	memset(out, 0, sizeof(*out));
	uncapped.cwnd_clamp = 0;
	for (unsigned c = 0; c < CWND_CANDIDATES; c++) {
		struct bsim_eval ev;
		int ret = bsim_eval_clamp(&uncapped, cwnd_bdp_multiples[c], warmup_us, measure_us, &ev);

		if (ret)
			return ret;
		out->candidate[c].rtt_ratio = ev.rtt_ratio;
		out->candidate[c].shortfall_pct = 100.0 * ev.shortfall;
		out->candidate[c].clamp_pkts = ev.cwnd_clamp;
		out->candidate[c].j = ev.rtt_ratio + p->lambda * out->candidate[c].shortfall_pct;
		if (out->candidate[c].j < out->candidate[out->best].j)
			out->best = c;
	}
	return 0;
}

int cwnd_label_rates(double rate_now_bps, const double *rates_bps, unsigned n, double min_rtt_us,
		     double latency_p95_us, double backlog_bytes, const struct cwnd_params *p,
		     struct cwnd_label *out)
{
	struct bsim_config cfg;
	uint64_t warmup_us, measure_us;
	unsigned runs = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = cwnd_scenario(rate_now_bps, min_rtt_us, latency_p95_us, backlog_bytes, p, &cfg, &warmup_us,
			    &measure_us);
	if (ret)
		return ret;
	for (unsigned r = 0; r < n; r++) {
		/* The cap is multiple x the measured rate's BDP: on a link at another rate that
		 * is multiple x (measured / actual) of the actual BDP. */
		double scale = rates_bps[r] == rate_now_bps ? 1.0 : rate_now_bps / rates_bps[r];

		ret = cwnd_scenario(rates_bps[r], min_rtt_us, latency_p95_us, backlog_bytes, p, &cfg, &warmup_us,
				    &measure_us);
		if (ret == -ERANGE)
			continue;
		if (ret)
			return ret;
		for (unsigned c = 0; c < CWND_CANDIDATES; c++) {
			struct bsim_eval ev;

			ret = bsim_eval_clamp(&cfg, cwnd_bdp_multiples[c] * scale, warmup_us, measure_us, &ev);
			if (ret)
				return ret;
			out->candidate[c].rtt_ratio += ev.rtt_ratio;
			out->candidate[c].shortfall_pct += 100.0 * ev.shortfall;
			if (scale == 1.0)
				out->candidate[c].clamp_pkts = ev.cwnd_clamp;
		}
		runs++;
	}
	if (!runs)
		return -ERANGE;
	for (unsigned c = 0; c < CWND_CANDIDATES; c++) {
		out->candidate[c].rtt_ratio /= runs;
		out->candidate[c].shortfall_pct /= runs;
		out->candidate[c].j = out->candidate[c].rtt_ratio + p->lambda * out->candidate[c].shortfall_pct;
		if (out->candidate[c].j < out->candidate[out->best].j)
			out->best = c;
	}
	return 0;
}
