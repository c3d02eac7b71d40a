#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log16.h"
#include "lib/window.h"
#include "lib/percentile.h"

#define WINDOW_STEPS (WINDOW_LEN_NS / WINDOW_STEP_NS)

static uint64_t first_step(uint64_t end_index)
{
	return end_index > WINDOW_STEPS ? end_index - WINDOW_STEPS : 0;
}

void window_series_init(struct window_series *ws, rtt_kept_t *rtt_us, unsigned rtt_keep)
{
	memset(ws, 0, sizeof(*ws));
	ws->rtt_us = rtt_us;
	ws->rtt_keep = (uint16_t)(rtt_keep < WINDOW_RTT_KEEP ? rtt_keep : WINDOW_RTT_KEEP);
}

static uint32_t add_sat(uint32_t sum, uint64_t more)
{
	return more >= UINT32_MAX - sum ? UINT32_MAX : sum + (uint32_t)more;
}

static rtt_kept_t *bin_rtts(const struct window_series *ws, const struct window_bin *bin)
{
	return ws->rtt_us + (size_t)(bin - ws->bins) * ws->rtt_keep;
}

static struct window_bin *slot(struct window_series *ws, uint64_t index)
{
	return &ws->bins[index % WINDOW_BINS];
}

static void bin_reset(struct window_bin *bin)
{
	memset(bin, 0, sizeof(*bin));
}

static uint32_t rtt_kept(const struct window_series *ws, const struct window_bin *bin)
{
	return bin->rtt_seen < ws->rtt_keep ? bin->rtt_seen : ws->rtt_keep;
}

struct window_bin *window_bin_at(struct window_series *ws, uint64_t ts_ns)
{
	uint64_t index = ts_ns / WINDOW_STEP_NS;

	if (!ws->started) {
		for (uint64_t i = 0; i < WINDOW_BINS; i++)
			bin_reset(slot(ws, index - i));
		ws->newest = (uint32_t)index;
		ws->started = true;
	}
	if (index > ws->newest) {
		/* Steps skipped by a gap are empty, not stale. */
		uint64_t first = index - ws->newest > WINDOW_BINS ? index - WINDOW_BINS + 1 : ws->newest + 1;

		for (uint64_t i = first; i <= index; i++)
			bin_reset(slot(ws, i));
		ws->newest = (uint32_t)index;
	}
	if (ws->newest - index >= WINDOW_BINS) {
		ws->late_samples++;
		return NULL;
	}
	return slot(ws, index);
}

/* Keeps a uniform sample of at most rtt_keep measurements per step
 * (reservoir sampling with a deterministic generator, so replays are repeatable). */
void window_add_rtt(struct window_series *ws, uint64_t ts_ns, uint32_t rtt_us)
{
	struct window_bin *bin = window_bin_at(ws, ts_ns);

	if (!rtt_us)
		return;
	ws->rtt_ewma_us = ws->rtt_ewma_us > 0 ? ws->rtt_ewma_us + ((float)rtt_us - ws->rtt_ewma_us) / 8.0f : (float)rtt_us;
	if (!ws->min_rtt_us || rtt_us < ws->min_rtt_us)
		ws->min_rtt_us = rtt_us;
	if (!bin)
		return;
	if (++bin->rtt_seen <= ws->rtt_keep) {
		bin_rtts(ws, bin)[bin->rtt_seen - 1] = log16_pack_u32(rtt_us);
	} else {
		uint64_t mix = (uint64_t)bin->rtt_seen * 0x9E3779B97F4A7C15ULL;
		uint32_t pick = (uint32_t)((mix >> 32) % bin->rtt_seen);

		if (pick < ws->rtt_keep)
			bin_rtts(ws, bin)[pick] = log16_pack_u32(rtt_us);
	}
}

void window_add_traffic(struct window_series *ws, uint64_t ts_ns, uint64_t packets_in, uint64_t packets_out,
			uint64_t bytes_in, uint64_t bytes_out, uint64_t size_sq_sum)
{
	struct window_bin *bin = window_bin_at(ws, ts_ns);

	if (!bin)
		return;
	bin->packets_in = add_sat(bin->packets_in, packets_in);
	bin->packets_out = add_sat(bin->packets_out, packets_out);
	bin->bytes_in = add_sat(bin->bytes_in, bytes_in);
	bin->bytes_out = add_sat(bin->bytes_out, bytes_out);
	bin->size_sq_sum += size_sq_sum;
}

void window_add_delivery(struct window_series *ws, uint64_t ts_ns, uint64_t bytes_acked, uint64_t delivered,
			 uint64_t retrans)
{
	struct window_bin *bin = window_bin_at(ws, ts_ns);

	if (!bin)
		return;
	bin->bytes_acked = add_sat(bin->bytes_acked, bytes_acked);
	bin->delivered = add_sat(bin->delivered, delivered);
	bin->retrans = add_sat(bin->retrans, retrans);
}

void window_spread_delivery(struct window_series *ws, uint64_t from_ns, uint64_t to_ns, uint64_t *bytes_acked,
			    uint64_t *delivered)
{
	uint64_t to_index = to_ns / WINDOW_STEP_NS, first, span = to_ns - from_ns;
	double bytes = (double)*bytes_acked, packets = (double)*delivered;

	if (from_ns >= to_ns || from_ns / WINDOW_STEP_NS == to_index)
		return;
	/* Steps more than WINDOW_BINS back are gone whatever happens: skip them unvisited
	 * (a flow idle for an hour spans 36,000 steps). */
	first = from_ns / WINDOW_STEP_NS;
	if (to_index - first > WINDOW_BINS)
		first = to_index - WINDOW_BINS;
	for (uint64_t index = first; index < to_index; index++) {
		uint64_t begin = index * WINDOW_STEP_NS > from_ns ? index * WINDOW_STEP_NS : from_ns;
		double part = (double)((index + 1) * WINDOW_STEP_NS - begin) / span;
		struct window_bin *bin;

		/* held, or a step after the newest (created) */
		if (ws->started && index + WINDOW_BINS <= ws->newest)
			continue;
		bin = window_bin_at(ws, index * WINDOW_STEP_NS);
		if (!bin)
			continue;
		bin->bytes_acked = add_sat(bin->bytes_acked, (uint64_t)llround(bytes * part));
		bin->delivered = add_sat(bin->delivered, (uint64_t)llround(packets * part));
	}
	{
		double own = (double)(to_ns - to_index * WINDOW_STEP_NS) / span;

		*bytes_acked = (uint64_t)llround(bytes * own);
		*delivered = (uint64_t)llround(packets * own);
	}
}

void window_add_record(struct window_series *ws, uint64_t ts_ns)
{
	struct window_bin *bin = window_bin_at(ws, ts_ns);

	if (bin)
		bin->records = add_sat(bin->records, 1);
}

static const struct window_bin *bin_in_window(const struct window_series *ws, uint64_t index)
{
	return ws->started && index <= ws->newest && ws->newest - index < WINDOW_BINS ? &ws->bins[index % WINDOW_BINS]
										      : NULL;
}

bool window_active(const struct window_series *ws, uint64_t end_ns)
{
	uint64_t end_index = end_ns / WINDOW_STEP_NS;

	for (uint64_t i = first_step(end_index); i < end_index; i++) {
		const struct window_bin *bin = bin_in_window(ws, i);

		if (bin && (bin->rtt_seen || bin->packets_in || bin->packets_out || bin->bytes_acked || bin->records))
			return true;
	}
	return false;
}

void window_compute(const struct window_series *ws, uint64_t end_ns, enum window_scope scope,
		    const struct queue_snapshot *q_start, const struct queue_snapshot *q_end,
		    struct feature_window *out)
{
	const double seconds = WINDOW_LEN_NS / 1e9;
	uint64_t end_index = end_ns / WINDOW_STEP_NS;
	uint32_t rtts[WINDOW_RTT_KEEP * WINDOW_STEPS];
	uint32_t nrtt = 0;
	struct {
		uint64_t packets_in, packets_out, bytes_in, bytes_out, size_sq_sum;
		uint64_t bytes_acked, delivered, retrans, records;
	} sum = { 0 };
	uint64_t packets;

	memset(out->feature, 0, sizeof(out->feature));
	memset(out->context, 0, sizeof(out->context));
	out->ts_ns = end_ns;
	out->scope = scope;

	for (uint64_t i = first_step(end_index); i < end_index; i++) {
		const struct window_bin *bin = bin_in_window(ws, i);

		if (!bin)
			continue;
		for (uint32_t k = 0; k < rtt_kept(ws, bin); k++)
			rtts[nrtt++] = log16_unpack_u32(bin_rtts(ws, bin)[k]);
		sum.packets_in += bin->packets_in;
		sum.packets_out += bin->packets_out;
		sum.bytes_in += bin->bytes_in;
		sum.bytes_out += bin->bytes_out;
		sum.size_sq_sum += bin->size_sq_sum;
		sum.bytes_acked += bin->bytes_acked;
		sum.delivered += bin->delivered;
		sum.retrans += bin->retrans;
		sum.records += bin->records;
	}

	packets = sum.packets_in + sum.packets_out;
	out->feature[FEAT_LATENCY_P50] = percentile_u32(rtts, nrtt, 0.50);
	out->feature[FEAT_LATENCY_P95] = percentile_u32(rtts, nrtt, 0.95);
	out->feature[FEAT_BYTES_IN_PER_SEC] = sum.bytes_in / seconds;
	out->feature[FEAT_BYTES_OUT_PER_SEC] = sum.bytes_out / seconds;
	if (packets) {
		double mean = (double)(sum.bytes_in + sum.bytes_out) / packets;
		double var = (double)sum.size_sq_sum / packets - mean * mean;

		out->feature[FEAT_PACKET_SIZE_MEAN] = mean;
		out->feature[FEAT_PACKET_SIZE_VAR] = var > 0 ? var : 0;
	}
	out->feature[FEAT_RTT_EWMA] = ws->rtt_ewma_us;

	if (scope == SCOPE_IFACE && q_start && q_end && q_start->valid && q_end->valid) {
		double span = (q_end->ts_ns - q_start->ts_ns) / 1e9;
		uint64_t sent = q_end->sent_packets - q_start->sent_packets;
		uint64_t drops = q_end->drops - q_start->drops;
		int64_t queued = (int64_t)q_end->backlog_packets - (int64_t)q_start->backlog_packets;

		if (span <= 0)
			span = seconds;
		/* Whatever entered the queue was sent, dropped, or is still queued. */
		out->feature[FEAT_ENQUEUE_RATE] = fmax(0, (double)sent + drops + queued) / span;
		out->feature[FEAT_DEQUEUE_RATE] = sent / span;
		out->context[CTX_DROPS] = drops;
	} else if (scope == SCOPE_IFACE) {
		out->feature[FEAT_ENQUEUE_RATE] = sum.packets_out / seconds;
		out->feature[FEAT_DEQUEUE_RATE] = sum.packets_out / seconds;
	} else {
		/* A flow enqueues what it sends and dequeues what its peer acknowledges. */
		out->feature[FEAT_ENQUEUE_RATE] = sum.packets_out / seconds;
		out->feature[FEAT_DEQUEUE_RATE] = sum.delivered / seconds;
	}
	if (q_end && q_end->valid) {
		out->feature[FEAT_QUEUE_DEPTH] = q_end->backlog_bytes;
		out->context[CTX_BACKLOG_PACKETS] = q_end->backlog_packets;
	}

	out->context[CTX_SRTT_US] = scope == SCOPE_FLOW ? ws->srtt_us : ws->rtt_ewma_us;
	out->context[CTX_MIN_RTT_US] = ws->min_rtt_us;
	out->context[CTX_SND_CWND] = ws->snd_cwnd;
	out->context[CTX_DELIVERY_RATE_BPS] = sum.bytes_acked * 8.0 / seconds;
	out->context[CTX_RETRANS] = sum.retrans;
	out->context[CTX_RECORDS] = sum.records;
}
