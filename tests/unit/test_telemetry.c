/*
 * reflexd's flow table: which flows it keeps and when a flow is a new one. Records
 * arrive up to a grace after a window's end, so a flow heard of after the end is
 * live, not idle; a new socket cookie on a 4-tuple is a new connection, whose
 * cumulative counters start again. Once a window is open, a flow's first record
 * after its end closes that flow's window at once, and the pass skips it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "reflexd/telemetry.h"

#define MS (1000ULL * 1000)
/* A window end, a multiple of the step. */
#define END (100 * WINDOW_STEP_NS)

struct observed {
	unsigned gone;
	unsigned windows;
	struct feature_window last; /* the last flow window */
};

static void on_gone(struct flow_entry *flow, void *ctx)
{
	(void)flow;
	((struct observed *)ctx)->gone++;
}

static void on_window(const struct feature_window *w, struct flow_entry *flow, void *ctx)
{
	struct observed *o = ctx;

	if (!flow)
		return;
	o->windows++;
	o->last = *w;
}

static struct flow_key key_of(uint16_t sport, uint8_t proto)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = AF_INET;
	k.proto = proto;
	k.saddr[0] = htonl(0x0a000001);
	k.daddr[0] = htonl(0x0a000002);
	k.sport = sport;
	k.dport = 5201;
	return k;
}

static void tc_record(struct telemetry *t, const struct flow_key *key, uint64_t ts_ns)
{
	struct tc_sample s;

	memset(&s, 0, sizeof(s));
	s.ts_ns = ts_ns;
	s.key = *key;
	s.delta.packets[FLOW_DIR_EGRESS] = 10;
	s.delta.bytes[FLOW_DIR_EGRESS] = 15000;
	s.delta.size_sum = 15000;
	telemetry_on_tc_sample(t, &s);
}

static void emit(struct telemetry *t, struct observed *o, uint64_t end_ns)
{
	struct queue_snapshot none = { .valid = false };

	telemetry_emit_windows(t, end_ns, &none, &none, on_window, o);
}

static void test_a_flow_first_seen_in_the_grace_stays(void **state)
{
	struct observed o = { 0 };
	struct telemetry t;
	struct flow_key k = key_of(40000, IPPROTO_UDP);

	(void)state;
	telemetry_init(&t, "test0", on_gone, &o);
	/* Its first record came 5 ms after the window's end, before the window closed. */
	tc_record(&t, &k, END + 5 * MS);
	emit(&t, &o, END);
	assert_non_null(telemetry_flow(&t, &k));
	assert_int_equal(o.gone, 0);
	/* It has its window at the next step. */
	emit(&t, &o, END + WINDOW_STEP_NS);
	assert_int_equal(o.windows, 1);
	telemetry_free(&t);
	assert_int_equal(o.gone, 1);
}

static void test_a_live_flow_after_a_quiet_gap_stays(void **state)
{
	struct observed o = { 0 };
	struct telemetry t;
	struct flow_key k = key_of(40001, IPPROTO_UDP);

	(void)state;
	telemetry_init(&t, "test0", on_gone, &o);
	tc_record(&t, &k, END - 400 * MS);
	/* 400 ms later it speaks again, 19 ms after the end of a window it had no record
	 * in (seen 1 ms ago when the window closes, 20 ms after its end). */
	tc_record(&t, &k, END + 19 * MS);
	emit(&t, &o, END);
	assert_non_null(telemetry_flow(&t, &k));
	assert_int_equal(o.gone, 0);
	telemetry_free(&t);
}

static void test_an_idle_flow_goes(void **state)
{
	struct observed o = { 0 };
	struct telemetry t;
	struct flow_key k = key_of(40002, IPPROTO_UDP);
	uint64_t end = END + FLOW_IDLE_NS + WINDOW_STEP_NS;

	(void)state;
	telemetry_init(&t, "test0", on_gone, &o);
	tc_record(&t, &k, END - 50 * MS);
	emit(&t, &o, END);
	assert_non_null(telemetry_flow(&t, &k));
	/* Not heard of for more than FLOW_IDLE_NS: gone. */
	emit(&t, &o, end);
	assert_null(telemetry_flow(&t, &k));
	assert_int_equal(o.gone, 1);
	telemetry_free(&t);
}

/* An RTT sample of a flow whose srtt and min RTT are srtt_us. */
static struct sock_sample rtt_sample(const struct flow_key *key, uint64_t cookie, uint64_t ts_ns,
				     uint64_t bytes_acked, uint32_t srtt_us)
{
	struct sock_sample s;

	memset(&s, 0, sizeof(s));
	s.ts_ns = ts_ns;
	s.cookie = cookie;
	s.key = *key;
	s.event = SOCK_EVENT_RTT;
	s.srtt_us = srtt_us;
	s.rtt_min_us = srtt_us;
	s.mss_cache = 1448;
	s.snd_cwnd = 10;
	s.bytes_acked = bytes_acked;
	return s;
}

static void sock_record(struct telemetry *t, const struct flow_key *key, uint64_t cookie, uint64_t ts_ns,
			uint64_t bytes_acked, uint32_t delivered, uint32_t total_retrans)
{
	struct sock_sample s = rtt_sample(key, cookie, ts_ns, bytes_acked, 20000);

	s.delivered = delivered;
	s.total_retrans = total_retrans;
	telemetry_on_sock_sample(t, &s);
}

static void test_a_new_cookie_is_a_new_flow(void **state)
{
	struct observed o = { 0 };
	struct telemetry t;
	struct flow_key k = key_of(40003, IPPROTO_TCP);
	struct flow_entry *f;

	(void)state;
	telemetry_init(&t, "test0", on_gone, &o);
	/* A long connection: 500 MB acked, 5 retransmissions. */
	sock_record(&t, &k, 1, END - 300 * MS, 400000000, 280000, 5);
	sock_record(&t, &k, 1, END - 250 * MS, 500000000, 350000, 5);
	assert_int_equal(t.flows_seen, 1);
	/* The 4-tuple is reused by a new connection: its counters start from nothing. */
	sock_record(&t, &k, 2, END - 150 * MS, 1000, 1, 0);
	assert_int_equal(o.gone, 1);
	assert_int_equal(t.flows_seen, 2);
	f = telemetry_flow(&t, &k);
	assert_non_null(f);
	assert_int_equal(f->cookie, 2);
	sock_record(&t, &k, 2, END - 50 * MS, 26000, 18, 0);
	emit(&t, &o, END);
	assert_int_equal(o.windows, 1);
	/* Only the new connection's growth: 25000 bytes and 17 packets in 200 ms, no
	 * retransmission (not 2^64 - 499999000 bytes and 2^32 - 5 retransmissions). */
	assert_float_equal(o.last.context[CTX_DELIVERY_RATE_BPS], 25000 * 8 / 0.2, 1e-6);
	assert_float_equal(o.last.context[CTX_RETRANS], 0, 1e-9);
	/* The same cookie again is the same flow. */
	sock_record(&t, &k, 2, END + 10 * MS, 30000, 20, 0);
	assert_int_equal(o.gone, 1);
	assert_int_equal(t.flows_seen, 2);
	telemetry_free(&t);
}

static void sock_record_srtt(struct telemetry *t, const struct flow_key *key, uint64_t ts_ns, uint64_t bytes_acked,
			     uint32_t srtt_us)
{
	struct sock_sample s = rtt_sample(key, 1, ts_ns, bytes_acked, srtt_us);

	s.mrtt_us = srtt_us;
	telemetry_on_sock_sample(t, &s);
}

/* The kernel's RTT callback comes once per round trip: a flow at 10 Mbit/s with a
 * 390 ms RTT reports every 390 ms. Each window its record closes has the flow's rate
 * (its growth spread over the 390 ms it took), not 390/200 of it; after 4 s of
 * silence (an outage) the growth is spread over the last srtt only. */
static void test_a_sample_per_round_trip_gives_the_flows_rate(void **state)
{
	struct observed o = { 0 };
	struct telemetry t;
	struct flow_key k = key_of(40006, IPPROTO_TCP);
	const uint64_t rtt = 390 * MS, rate_bytes = 10000000 / 8;
	uint64_t ts = END - 2000 * MS, acked = 0;
	unsigned checked = 0;

	(void)state;
	telemetry_init(&t, "test0", on_gone, &o);
	sock_record_srtt(&t, &k, ts, acked, 390000);
	for (uint64_t end = END - 1000 * MS; end <= END + 3000 * MS; end += WINDOW_STEP_NS) {
		telemetry_window_open(&t, end, NULL, NULL, on_window, &o);
		while (ts + rtt < end + WINDOW_STEP_NS) {
			unsigned before = o.windows;

			ts += rtt;
			acked += rate_bytes * rtt / (1000 * MS);
			sock_record_srtt(&t, &k, ts, acked, 390000);
			if (o.windows > before && ts - rtt <= end - WINDOW_LEN_NS) {
				/* a window the sample's span covers whole */
				assert_in_range(o.last.context[CTX_DELIVERY_RATE_BPS], 9.9e6, 10.1e6);
				checked++;
			}
		}
		emit(&t, &o, end);
	}
	assert_true(checked >= 5);
	/* 4 s without a sample, then one round trip's worth: at the rate of that round trip */
	ts += 4000 * MS;
	acked += rate_bytes * rtt / (1000 * MS);
	telemetry_window_open(&t, (ts / WINDOW_STEP_NS + 1) * WINDOW_STEP_NS, NULL, NULL, on_window, &o);
	sock_record_srtt(&t, &k, ts, acked, 390000);
	sock_record_srtt(&t, &k, (ts / WINDOW_STEP_NS + 1) * WINDOW_STEP_NS + 1 * MS, acked, 390000);
	assert_in_range(o.last.context[CTX_DELIVERY_RATE_BPS], 0.3 * 10e6, 1.05 * 10e6);
	telemetry_free(&t);
}

static void test_a_record_after_the_end_closes_its_flows_window(void **state)
{
	struct observed o = { 0 };
	struct telemetry t;
	struct queue_snapshot q_start = { .valid = true, .ts_ns = END - 200 * MS };
	struct queue_snapshot q_end = { .valid = true, .ts_ns = END, .backlog_bytes = 4321 };
	struct flow_key early = key_of(40004, IPPROTO_TCP), quiet = key_of(40005, IPPROTO_TCP);

	(void)state;
	telemetry_init(&t, "test0", on_gone, &o);
	tc_record(&t, &early, END - 150 * MS);
	tc_record(&t, &quiet, END - 150 * MS);
	/* Not open yet: a record after the end counts in its own step and closes nothing;
	 * the flow's next record after the opening closes the window, which that first
	 * record is not part of. */
	tc_record(&t, &early, END + 1 * MS);
	assert_int_equal(o.windows, 0);
	telemetry_window_open(&t, END, &q_start, &q_end, on_window, &o);
	tc_record(&t, &early, END + 2 * MS);
	assert_int_equal(o.windows, 1);
	assert_float_equal(o.last.feature[FEAT_ENQUEUE_RATE], 10 / 0.2, 1e-9);
	telemetry_free(&t);

	memset(&o, 0, sizeof(o));
	telemetry_init(&t, "test0", on_gone, &o);
	tc_record(&t, &early, END - 150 * MS);
	tc_record(&t, &quiet, END - 150 * MS);
	telemetry_window_open(&t, END, &q_start, &q_end, on_window, &o);
	tc_record(&t, &early, END - 1 * MS); /* still the window's */
	assert_int_equal(o.windows, 0);
	tc_record(&t, &early, END + 5 * MS);
	assert_int_equal(o.windows, 1);
	assert_int_equal(t.windows_on_record, 1);
	/* The window as the pass would have computed it: two records of 10 packets, not
	 * the one after the end; the queue at the window's end. */
	assert_int_equal(o.last.ts_ns, END);
	assert_float_equal(o.last.feature[FEAT_ENQUEUE_RATE], 20 / 0.2, 1e-9);
	assert_float_equal(o.last.feature[FEAT_QUEUE_DEPTH], 4321, 1e-9);
	tc_record(&t, &early, END + 9 * MS);
	assert_int_equal(o.windows, 1); /* once */
	/* The pass: the quiet flow's window only. */
	emit(&t, &o, END);
	assert_int_equal(o.windows, 2);
	assert_int_equal(t.windows_on_record, 1);
	assert_float_equal(o.last.feature[FEAT_ENQUEUE_RATE], 10 / 0.2, 1e-9);
	/* After the pass, nothing is open. */
	tc_record(&t, &quiet, END + 150 * MS);
	assert_int_equal(o.windows, 2);
	telemetry_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_flow_first_seen_in_the_grace_stays),
		cmocka_unit_test(test_a_live_flow_after_a_quiet_gap_stays),
		cmocka_unit_test(test_an_idle_flow_goes),
		cmocka_unit_test(test_a_new_cookie_is_a_new_flow),
		cmocka_unit_test(test_a_record_after_the_end_closes_its_flows_window),
		cmocka_unit_test(test_a_sample_per_round_trip_gives_the_flows_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
