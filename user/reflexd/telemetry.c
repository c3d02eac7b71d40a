#include <stdlib.h>
#include <string.h>

#include "reflexd/telemetry.h"

void telemetry_init(struct telemetry *t, const char *iface_name, flow_gone_fn gone, void *gone_ctx)
{
	memset(t, 0, sizeof(*t));
	t->gone = gone;
	t->gone_ctx = gone_ctx;
	window_series_init(&t->iface, t->iface_rtt_us, WINDOW_RTT_KEEP);
	t->max_flows = REFLEX_MAX_FLOWS;
	snprintf(t->iface_name, sizeof(t->iface_name), "%s", iface_name ? iface_name : "");
}

static void flow_remove(struct telemetry *t, struct flow_entry *flow)
{
	if (t->gone)
		t->gone(flow, t->gone_ctx);
	if (flow->sock_flow)
		t->sock_flow_count--;
	flow_table_remove(&t->flows, flow);
	t->flow_count--;
}

void telemetry_free(struct telemetry *t)
{
	for (struct flow_entry *flow = telemetry_next_flow(t, NULL); flow; flow = telemetry_next_flow(t, flow))
		flow_remove(t, flow);
	flow_table_free(&t->flows);
}

struct flow_entry *telemetry_flow(struct telemetry *t, const struct flow_key *key)
{
	return flow_table_find(&t->flows, key);
}

struct flow_entry *telemetry_next_flow(const struct telemetry *t, const struct flow_entry *prev)
{
	return flow_table_next(&t->flows, prev);
}

/* A tc-only flow to give up for a socket's: any will do, none has a decision. */
static bool tc_only_flow_drop(struct telemetry *t)
{
	if (t->flow_count <= t->sock_flow_count)
		return false;
	for (struct flow_entry *flow = telemetry_next_flow(t, NULL); flow; flow = telemetry_next_flow(t, flow)) {
		if (!flow->sock_flow) {
			flow_remove(t, flow);
			t->flows_displaced++;
			return true;
		}
	}
	return false;
}

/* A full table refuses a new tc tuple, but makes room for a socket of the cgroup:
 * those are the flows reflex controls. Both are counted. */
static struct flow_entry *flow_get_or_add(struct telemetry *t, const struct flow_key *key, bool sock)
{
	struct flow_entry *flow = telemetry_flow(t, key);

	if (flow) {
		if (sock && !flow->sock_flow) {
			flow->sock_flow = true;
			t->sock_flow_count++;
		}
		return flow;
	}
	if (t->flow_count >= t->max_flows && !(sock && tc_only_flow_drop(t))) {
		t->flows_refused++;
		return NULL;
	}
	if (!t->flows.index && flow_table_init(&t->flows, t->max_flows, sizeof(*flow))) {
		t->flows_refused++; /* no memory for the table: counted like a full one */
		return NULL;
	}
	flow = flow_table_add(&t->flows, key);
	if (!flow)
		return NULL;
	flow->sock_flow = sock;
	window_series_init(&flow->ws, flow->rtt_us, FLOW_RTT_KEEP);
	t->flow_count++;
	t->sock_flow_count += sock;
	t->flows_seen++;
	return flow;
}

static void record_arrival(struct telemetry *t, uint64_t ts_ns, const char *ring, uint32_t cpu)
{
	window_add_record(&t->iface, ts_ns);
	if (t->records_out)
		fprintf(t->records_out, "%llu,%s,%u\n", (unsigned long long)ts_ns, ring, cpu);
}

/* Another connection on the flow's 4-tuple: the old one is gone (its decision with
 * it), and the new one starts from nothing; its cumulative counters start again. */
static void flow_restart(struct telemetry *t, struct flow_entry *flow)
{
	if (t->gone)
		t->gone(flow, t->gone_ctx);
	window_series_init(&flow->ws, flow->rtt_us, FLOW_RTT_KEEP);
	flow->have_sock_totals = false;
	flow->bytes_acked = 0;
	flow->sock_ts_ns = 0;
	flow->delivered = 0;
	flow->total_retrans = 0;
	flow->mss = 0;
	flow->mdev_us = 0;
	flow->packets_out = 0;
	flow->closed = false;
	t->flows_seen++;
}

static void flow_window(struct telemetry *t, struct flow_entry *flow, uint64_t end_ns,
			const struct queue_snapshot *q_start, const struct queue_snapshot *q_end, window_sink sink,
			void *ctx)
{
	struct feature_window w;

	window_compute(&flow->ws, end_ns, SCOPE_FLOW, q_start, q_end, &w);
	if (t->window_names)
		flow_key_format(&flow->key, w.flow, sizeof(w.flow));
	else
		w.flow[0] = '\0';
	sink(&w, flow, ctx);
}

/* A record at or after the open window's end: that window of the flow is complete. */
static void close_on_record(struct telemetry *t, struct flow_entry *flow, uint64_t ts_ns)
{
	uint32_t end_index = (uint32_t)(t->open_end / WINDOW_STEP_NS);

	if (!t->open_end || ts_ns < t->open_end || flow->emitted_index == end_index)
		return;
	flow->emitted_index = end_index;
	if (!window_active(&flow->ws, t->open_end))
		return;
	flow_window(t, flow, t->open_end, t->open_q_start, t->open_q_end, t->early_sink, t->early_ctx);
	t->windows_on_record++;
}

void telemetry_window_open(struct telemetry *t, uint64_t end_ns, const struct queue_snapshot *q_start,
			   const struct queue_snapshot *q_end, window_sink sink, void *ctx)
{
	t->open_end = end_ns;
	t->open_q_start = q_start;
	t->open_q_end = q_end;
	t->early_sink = sink;
	t->early_ctx = ctx;
}

/*
 * When the growth a sample reports began: sockops samples on the RTT callback, which
 * the kernel makes once per round trip, so on a long path a sample covers more than a
 * window step, and all of it in its own step made that step's rate a multiple of the
 * flow's (1.9x at a 390 ms RTT: the heuristic's cap sat at 2.4x the BDP and a 240 ms
 * queue stood). A flow that was idle, or had no ACK through an outage, got its
 * acknowledgements within the last round trip: the growth is spread over at most the
 * flow's srtt.
 */
static uint64_t delivery_start(const struct flow_entry *flow, const struct sock_sample *s)
{
	uint64_t srtt_ns = (uint64_t)s->srtt_us * 1000;

	if (flow->sock_ts_ns >= s->ts_ns)
		return s->ts_ns;
	return s->ts_ns - flow->sock_ts_ns > srtt_ns ? s->ts_ns - srtt_ns : flow->sock_ts_ns;
}

void telemetry_on_sock_sample(struct telemetry *t, const struct sock_sample *s)
{
	struct flow_entry *flow;

	t->sock_records++;
	record_arrival(t, s->ts_ns, "sock", s->cpu);
	flow = flow_get_or_add(t, &s->key, true);
	if (!flow)
		return;
	if (flow->have_sock_totals && s->cookie != flow->cookie)
		flow_restart(t, flow);
	if (flow->have_sock_totals) {
		/* Counters are cumulative per socket: the growth since the last sample. */
		uint64_t acked = s->bytes_acked - flow->bytes_acked, iface_acked;
		uint64_t delivered = (uint32_t)(s->delivered - flow->delivered), iface_delivered;
		uint32_t retrans = s->total_retrans - flow->total_retrans;
		uint64_t from_ns = delivery_start(flow, s);

		/* Spread over the time it took, before the windows this sample completes are
		 * computed (window.h); this step's share after. */
		iface_acked = acked;
		iface_delivered = delivered;
		window_spread_delivery(&flow->ws, from_ns, s->ts_ns, &acked, &delivered);
		window_spread_delivery(&t->iface, from_ns, s->ts_ns, &iface_acked, &iface_delivered);
		close_on_record(t, flow, s->ts_ns);
		window_add_delivery(&flow->ws, s->ts_ns, acked, delivered, retrans);
		window_add_delivery(&t->iface, s->ts_ns, iface_acked, iface_delivered, retrans);
	} else {
		close_on_record(t, flow, s->ts_ns);
	}
	window_add_record(&flow->ws, s->ts_ns);
	flow->cookie = s->cookie;
	flow->sock_ts_ns = s->ts_ns;
	flow->have_sock_totals = true;
	flow->bytes_acked = s->bytes_acked;
	flow->delivered = s->delivered;
	flow->total_retrans = s->total_retrans;
	flow->ws.srtt_us = s->srtt_us;
	flow->mss = s->mss_cache > UINT16_MAX ? UINT16_MAX : (uint16_t)s->mss_cache;
	flow->mdev_us = s->mdev_us;
	flow->packets_out = s->packets_out;
	flow->ws.snd_cwnd = s->snd_cwnd;
	if (s->rtt_min_us && (!flow->ws.min_rtt_us || s->rtt_min_us < flow->ws.min_rtt_us))
		flow->ws.min_rtt_us = s->rtt_min_us;
	if (s->event == SOCK_EVENT_RTT && s->mrtt_us) {
		window_add_rtt(&flow->ws, s->ts_ns, s->mrtt_us);
		window_add_rtt(&t->iface, s->ts_ns, s->mrtt_us);
	}
	if (s->event == SOCK_EVENT_CLOSE)
		flow->closed = true;
}

void telemetry_on_tc_sample(struct telemetry *t, const struct tc_sample *s)
{
	const struct tc_counters *d = &s->delta;
	struct flow_entry *flow;

	t->tc_records++;
	record_arrival(t, s->ts_ns, "tc", s->cpu);
	window_add_traffic(&t->iface, s->ts_ns, d->packets[FLOW_DIR_INGRESS], d->packets[FLOW_DIR_EGRESS],
			   d->bytes[FLOW_DIR_INGRESS], d->bytes[FLOW_DIR_EGRESS], d->size_sq_sum);
	flow = flow_get_or_add(t, &s->key, false);
	if (!flow)
		return;
	close_on_record(t, flow, s->ts_ns);
	window_add_record(&flow->ws, s->ts_ns);
	window_add_traffic(&flow->ws, s->ts_ns, d->packets[FLOW_DIR_INGRESS], d->packets[FLOW_DIR_EGRESS],
			   d->bytes[FLOW_DIR_INGRESS], d->bytes[FLOW_DIR_EGRESS], d->size_sq_sum);
}

/* Heard of last in a step more than FLOW_IDLE_NS before end_ns's (a step's resolution
 * is plenty for 10 s). A record after end_ns (in the grace) makes newest the later step. */
static bool flow_idle(const struct flow_entry *flow, uint64_t end_ns)
{
	uint64_t end_index = end_ns / WINDOW_STEP_NS;

	return flow->ws.newest < end_index && (end_index - flow->ws.newest) * WINDOW_STEP_NS > FLOW_IDLE_NS;
}

unsigned int telemetry_emit_windows(struct telemetry *t, uint64_t end_ns, const struct queue_snapshot *q_start,
				    const struct queue_snapshot *q_end, window_sink sink, void *ctx)
{
	uint32_t end_index = (uint32_t)(end_ns / WINDOW_STEP_NS);
	struct feature_window w;
	unsigned int emitted = 0;

	if (t->open_end == end_ns)
		t->open_end = 0; /* the pass closes what no record did */
	window_compute(&t->iface, end_ns, SCOPE_IFACE, q_start, q_end, &w);
	snprintf(w.flow, sizeof(w.flow), "iface:%s", t->iface_name);
	sink(&w, NULL, ctx);
	emitted++;

	for (struct flow_entry *flow = telemetry_next_flow(t, NULL); flow; flow = telemetry_next_flow(t, flow)) {
		if (window_active(&flow->ws, end_ns)) {
			if (flow->emitted_index == end_index)
				continue;
			flow_window(t, flow, end_ns, q_start, q_end, sink, ctx);
			emitted++;
		} else if (flow->closed || flow_idle(flow, end_ns)) {
			flow_remove(t, flow);
		}
	}
	return emitted;
}
