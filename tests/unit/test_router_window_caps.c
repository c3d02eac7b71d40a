/*
 * The router's window caps (user/reflexd/router_window.c) without BPF: the segment
 * size and cap arithmetic, how router samples map onto the feature schema for each
 * sender (an upload's LAN end, a download's far end), the actuator's packets -> bytes
 * per direction, and the host's controller deciding a forwarded upload's cap from
 * them (the heuristic's 1.25 x BDP), and in shadow mode writing nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>

#include "lib/bdp.h"
#include "lib/flow_key.h"
#include "lib/log16.h"
#include "reflexd/router_window.h"

#define MS 1000000ULL
#define SEG 1448
#define T0 (1000 * 1000 * MS) /* a step boundary, far from 0 */

static struct flow_key lan_key(void)
{
	struct flow_key k = { .family = AF_INET, .proto = IPPROTO_TCP, .sport = 40000, .dport = 5201 };

	inet_pton(AF_INET, "10.11.1.2", k.saddr);
	inet_pton(AF_INET, "10.11.9.1", k.daddr);
	return k;
}

static struct flow_key reversed(struct flow_key k)
{
	struct flow_key r = k;

	memcpy(r.saddr, k.daddr, sizeof(r.saddr));
	memcpy(r.daddr, k.saddr, sizeof(r.daddr));
	r.sport = k.dport;
	r.dport = k.sport;
	return r;
}

static void rw_start(struct router_window *rw)
{
	struct controller_opts o = { .policy = CWND_POLICY_HEURISTIC, .hysteresis = HYSTERESIS_DEFAULTS };
	struct reflex_config cfg = { .sample_interval_ns = 10 * MS, .flush_threshold = 16, .max_batch_delay_us = 1000 };

	assert_int_equal(router_window_init(rw, &o, &cfg, 64, NULL, 0), 0);
}

/* One sample every 10 ms of a bulk sender in direction d: 10 full segments out, the
 * other end's 5 ACKs acknowledging as much, path RTT path_rtt_us, LAN RTT 1 ms. */
static void send_sample(struct router_window *rw, int d, uint64_t ts, uint32_t path_rtt_us, uint32_t event)
{
	struct router_sample s = { .ts_ns = ts, .key = lan_key(), .event = event, .path_rtt_us = path_rtt_us,
				   .lan_rtt_us = 1000, .flags = ROUTER_FLOW_HANDSHAKE };
	int o = d == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP;

	s.delta[d] = (struct router_dir_stats){ .packets = 10, .bytes = 10 * (SEG + 66), .payload_bytes = 10 * SEG,
						.data_packets = 10 };
	s.delta[o] = (struct router_dir_stats){ .packets = 5, .bytes = 5 * 66, .acked_bytes = 10 * SEG };
	router_window_on_sample(rw, &s);
}

static void test_segment_size_from_what_the_sender_sent(void **state)
{
	(void)state;
	assert_int_equal(router_window_segment(0, 0), ROUTER_WINDOW_DEFAULT_SEGMENT);
	assert_int_equal(router_window_segment(10 * 1448, 10), 1448);
	assert_int_equal(router_window_segment(10 * 1428 + 11, 10), 1429);  /* IPv6's MSS, rounded */
	assert_int_equal(router_window_segment(3 * 8948, 3), 8948);         /* jumbo frames */
	/* A SYN and a 100-byte request are small writes, not a 50-byte MSS. */
	assert_int_equal(router_window_segment(100, 2), ROUTER_WINDOW_DEFAULT_SEGMENT);
	assert_int_equal(router_window_segment(536, 1), 536);
	assert_int_equal(router_window_segment(1ULL << 40, 1), ROUTER_WINDOW_MAX_SEGMENT);
}

static void test_cap_bytes_is_packets_times_segment_within_the_field(void **state)
{
	(void)state;
	assert_int_equal(router_window_cap_bytes(0, 1448), 0);
	assert_int_equal(router_window_cap_bytes(10, 1448), 14480);
	assert_int_equal(router_window_cap_bytes(BDP_MAX_CAP_PACKETS, 1448), 1448000000u);
	assert_int_equal(router_window_cap_bytes(BDP_MAX_CAP_PACKETS, 65535), UINT32_MAX);
	assert_int_equal(router_window_cap_bytes(UINT32_MAX, 65535), UINT32_MAX);
}

/* An upload: 14480 bytes acknowledged every 10 ms (11.584 Mbit/s), RTT 20 + 1 ms. */
static void test_an_uploads_window_maps_onto_the_feature_schema(void **state)
{
	struct router_window rw;
	struct router_window_flow *f;
	struct feature_window w;
	struct flow_key k = lan_key();
	char name[FLOW_NAME_MAX];

	(void)state;
	rw_start(&rw);
	for (int i = 0; i < 30; i++)
		send_sample(&rw, ROUTER_DIR_UP, T0 + i * 10 * MS, 20000, i ? ROUTER_EVENT_SAMPLE : ROUTER_EVENT_NEW);
	f = router_window_flow(&rw, &k);
	assert_non_null(f);
	assert_true(f->dir[ROUTER_DIR_UP].sending);
	assert_false(f->dir[ROUTER_DIR_DOWN].sending);
	router_window_compute(f, ROUTER_DIR_UP, T0 + 300 * MS, &w);
	/* The sender's name is the sender first: for an upload the router's key. */
	assert_string_equal(w.flow, flow_key_format(&k, name, sizeof(name)));
	assert_float_equal(w.context[CTX_DELIVERY_RATE_BPS], 10 * SEG * 100 * 8.0, 1);
	/* percentiles of the kept RTTs: 21 ms as kept (lib/log16.h, 20992); min and srtt whole */
	assert_float_equal(w.feature[FEAT_LATENCY_P50], log16_unpack_u32(log16_pack_u32(21000)), 0.5);
	assert_float_equal(w.feature[FEAT_LATENCY_P95], log16_unpack_u32(log16_pack_u32(21000)), 0.5);
	assert_float_equal(w.context[CTX_MIN_RTT_US], 21000, 0.5);
	assert_float_equal(w.context[CTX_SRTT_US], 21000, 0.5);
	assert_float_equal(w.context[CTX_RETRANS], 0, 0);
	/* Out: its segments; in: the ACKs; delivered: acknowledged bytes in segments. */
	assert_float_equal(w.feature[FEAT_BYTES_OUT_PER_SEC], 10 * (SEG + 66) * 100.0, 1);
	assert_float_equal(w.feature[FEAT_BYTES_IN_PER_SEC], 5 * 66 * 100.0, 1);
	assert_float_equal(w.feature[FEAT_ENQUEUE_RATE], 1000, 0.5);
	assert_float_equal(w.feature[FEAT_DEQUEUE_RATE], 1000, 0.5);
	assert_float_equal(w.feature[FEAT_PACKET_SIZE_MEAN], (10.0 * (SEG + 66) + 5 * 66) / 15, 0.01);
	assert_true(w.feature[FEAT_PACKET_SIZE_VAR] > 0);
	/* No standing queue (srtt = min RTT); in flight by Little's law: rate x srtt. */
	assert_float_equal(w.feature[FEAT_QUEUE_DEPTH], 0, 0);
	assert_float_equal(w.context[CTX_SND_CWND], 21, 0); /* 1448000 B/s x 21 ms / 1448 B */
	assert_int_equal(f->dir[ROUTER_DIR_UP].entry.mss, SEG);
	router_window_free(&rw);
}

/* A download: the far end sends, so its flow is named far end first; a growing RTT
 * shows as a standing queue of (srtt - min RTT) x rate. */
static void test_a_downloads_sender_is_the_far_end_and_its_queue_is_estimated(void **state)
{
	struct router_window rw;
	struct router_window_flow *f;
	struct feature_window w;
	struct flow_key k = lan_key(), far = reversed(lan_key());
	char name[FLOW_NAME_MAX];
	double expect;

	(void)state;
	rw_start(&rw);
	for (int i = 0; i < 30; i++)
		send_sample(&rw, ROUTER_DIR_DOWN, T0 + i * 10 * MS, 20000 + i * 1000,
			    i ? ROUTER_EVENT_SAMPLE : ROUTER_EVENT_NEW);
	f = router_window_flow(&rw, &k);
	assert_non_null(f);
	assert_true(f->dir[ROUTER_DIR_DOWN].sending);
	assert_false(f->dir[ROUTER_DIR_UP].sending);
	router_window_compute(f, ROUTER_DIR_DOWN, T0 + 300 * MS, &w);
	assert_string_equal(w.flow, flow_key_format(&far, name, sizeof(name)));
	assert_float_equal(w.context[CTX_MIN_RTT_US], 21000, 0.5);
	assert_true(w.context[CTX_SRTT_US] > 21000 + 5000);
	expect = (w.context[CTX_SRTT_US] - 21000) / 1e6 * w.context[CTX_DELIVERY_RATE_BPS] / 8;
	assert_float_equal(w.feature[FEAT_QUEUE_DEPTH], expect, 1);
	assert_float_equal(w.context[CTX_BACKLOG_PACKETS], floor(expect / SEG), 0);
	assert_true(f->dir[ROUTER_DIR_DOWN].entry.mdev_us > 0);
	router_window_free(&rw);
}

/* The actuator takes the controller's sender-first key: the router's key is the
 * upload's, its reverse the download's; both caps share one entry. */
static void test_the_actuator_writes_bytes_for_the_senders_direction(void **state)
{
	struct router_window rw;
	struct router_window_flow *f;
	struct flow_key k = lan_key(), far = reversed(lan_key());

	(void)state;
	rw_start(&rw);
	send_sample(&rw, ROUTER_DIR_DOWN, T0, 20000, ROUTER_EVENT_NEW);
	f = router_window_flow(&rw, &k);
	assert_int_equal(rw.act.decide(&rw.act, &far, 30, 1), 0);
	assert_int_equal(f->dir[ROUTER_DIR_DOWN].cwnd_target, 30);
	assert_int_equal(f->dir[ROUTER_DIR_DOWN].cap_bytes, 30 * SEG);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cap_bytes, 0);
	/* The LAN end has sent nothing: its segment size is the default. */
	assert_int_equal(rw.act.decide(&rw.act, &k, 7, 2), 0);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cap_bytes, 7 * ROUTER_WINDOW_DEFAULT_SEGMENT);
	assert_int_equal(rw.act.decide(&rw.act, &far, 0, 3), 0);
	assert_int_equal(f->dir[ROUTER_DIR_DOWN].cap_bytes, 0);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cap_bytes, 7 * ROUTER_WINDOW_DEFAULT_SEGMENT);
	assert_int_equal(rw.stats.caps_written, 2);
	assert_int_equal(rw.stats.caps_withdrawn, 1);
	/* A flow it does not know has nothing to cap. */
	k.sport++;
	assert_int_equal(rw.act.decide(&rw.act, &k, 7, 4), -ENOENT);
	router_window_free(&rw);
}

/* 2 s of a steady upload through the host's controller: once the startup test passes
 * the heuristic's cap, 1.25 x rate x min RTT in segments, is in force for the LAN end
 * and in bytes in its direction; the ACK direction gets none. A NEW record on the
 * 5-tuple starts from nothing. */
static void test_the_controller_caps_a_forwarded_upload(void **state)
{
	struct router_window rw;
	struct router_window_flow *f;
	struct flow_key k = lan_key();
	double rate_bps = 10 * SEG * 100 * 8.0;
	uint32_t expect = bdp_cap_packets(HEURISTIC_BDP_GAIN, rate_bps, 21000, SEG);

	(void)state;
	rw_start(&rw);
	for (int i = 0; i < 200; i++) {
		uint64_t ts = T0 + i * 10 * MS;

		send_sample(&rw, ROUTER_DIR_UP, ts, 20000, i ? ROUTER_EVENT_SAMPLE : ROUTER_EVENT_NEW);
		router_window_tick(&rw, ts + 5 * MS);
	}
	f = router_window_flow(&rw, &k);
	assert_non_null(f);
	assert_true(rw.stats.windows >= 15);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cwnd_target, expect);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cap_bytes, expect * SEG);
	assert_int_equal(f->dir[ROUTER_DIR_DOWN].cwnd_target, 0);
	assert_int_equal(f->dir[ROUTER_DIR_DOWN].cap_bytes, 0);
	assert_int_equal(rw.controller.stats.decisions, 1);

	send_sample(&rw, ROUTER_DIR_UP, T0 + 2000 * MS, 20000, ROUTER_EVENT_NEW);
	f = router_window_flow(&rw, &k);
	assert_non_null(f);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cwnd_target, 0);
	assert_int_equal(rw.stats.caps_withdrawn, 1);
	router_window_forget(&rw, &k);
	assert_null(router_window_flow(&rw, &k));
	router_window_free(&rw);
}

/* --shadow on a router: the same decision is taken and logged, nothing is written
 * until a promotion whose gate passes. */
static void test_shadow_writes_nothing_until_promoted(void **state)
{
	struct controller_opts o = { .policy = CWND_POLICY_HEURISTIC, .hysteresis = HYSTERESIS_DEFAULTS,
				     .shadow = true };
	struct reflex_config cfg = { .sample_interval_ns = 10 * MS, .flush_threshold = 16, .max_batch_delay_us = 1000 };
	struct router_window rw;
	struct router_window_flow *f;
	struct flow_key k = lan_key();
	uint32_t expect = bdp_cap_packets(HEURISTIC_BDP_GAIN, 10 * SEG * 100 * 8.0, 21000, SEG);
	char why[512];

	(void)state;
	assert_int_equal(router_window_init(&rw, &o, &cfg, 64, NULL, 0), 0);
	for (int i = 0; i < 200; i++) {
		uint64_t ts = T0 + i * 10 * MS;

		send_sample(&rw, ROUTER_DIR_UP, ts, 20000, i ? ROUTER_EVENT_SAMPLE : ROUTER_EVENT_NEW);
		router_window_tick(&rw, ts + 5 * MS);
	}
	f = router_window_flow(&rw, &k);
	assert_non_null(f);
	assert_int_equal(rw.controller.stats.decisions, 1);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cwnd_target, 0);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cap_bytes, 0);
	assert_int_equal(rw.stats.caps_written, 0);
	/* The simulator expects the cap to cut p95 (an uncapped cubic fills the buffer):
	 * the gate passes and the decision in force is written at once, in bytes. */
	if (!controller_promote(&rw.controller, why, sizeof(why)))
		fail_msg("promotion refused: %s", why);
	assert_int_equal(rw.stats.caps_written, 1);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cwnd_target, expect);
	assert_int_equal(f->dir[ROUTER_DIR_UP].cap_bytes, expect * SEG);
	router_window_free(&rw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_size_from_what_the_sender_sent),
		cmocka_unit_test(test_cap_bytes_is_packets_times_segment_within_the_field),
		cmocka_unit_test(test_an_uploads_window_maps_onto_the_feature_schema),
		cmocka_unit_test(test_a_downloads_sender_is_the_far_end_and_its_queue_is_estimated),
		cmocka_unit_test(test_the_actuator_writes_bytes_for_the_senders_direction),
		cmocka_unit_test(test_the_controller_caps_a_forwarded_upload),
		cmocka_unit_test(test_shadow_writes_nothing_until_promoted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
