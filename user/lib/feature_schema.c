#include <math.h>
#include <string.h>

#include "lib/feature_schema.h"

const char *const window_input_names[WINDOW_INPUTS] = {
	[FEAT_QUEUE_DEPTH] = "queue_depth",
	[FEAT_ENQUEUE_RATE] = "enqueue_rate",
	[FEAT_DEQUEUE_RATE] = "dequeue_rate",
	[FEAT_LATENCY_P50] = "latency_p50",
	[FEAT_LATENCY_P95] = "latency_p95",
	[FEAT_BYTES_IN_PER_SEC] = "bytes_in_per_sec",
	[FEAT_BYTES_OUT_PER_SEC] = "bytes_out_per_sec",
	[FEAT_PACKET_SIZE_MEAN] = "packet_size_mean",
	[FEAT_PACKET_SIZE_VAR] = "packet_size_var",
	[FEAT_RTT_EWMA] = "rtt_ewma",
	[FEATURE_COUNT + CTX_SRTT_US] = "srtt_us",
	[FEATURE_COUNT + CTX_MIN_RTT_US] = "min_rtt_us",
	[FEATURE_COUNT + CTX_SND_CWND] = "snd_cwnd",
	[FEATURE_COUNT + CTX_DELIVERY_RATE_BPS] = "delivery_rate_bps",
	[FEATURE_COUNT + CTX_RETRANS] = "retrans",
	[FEATURE_COUNT + CTX_BACKLOG_PACKETS] = "backlog_packets",
	[FEATURE_COUNT + CTX_DROPS] = "drops",
	[FEATURE_COUNT + CTX_RECORDS] = "records",
};

const char *const *const feature_names = window_input_names;
const char *const *const context_names = window_input_names + FEATURE_COUNT;

void window_inputs(const struct feature_window *w, double raw[WINDOW_INPUTS])
{
	memcpy(raw, w->feature, sizeof(w->feature));
	memcpy(raw + FEATURE_COUNT, w->context, sizeof(w->context));
}

int feature_index(const char *name)
{
	for (int i = 0; i < FEATURE_COUNT; i++)
		if (!strcmp(feature_names[i], name))
			return i;
	return -1;
}

double feature_normalize(double raw, double min, double max)
{
	double span = max - min;

	if (isnan(raw) || !(span > 0))
		return 0.0;
	if (raw <= min)
		return 0.0;
	if (raw >= max)
		return 1.0;
	return (raw - min) / span;
}
