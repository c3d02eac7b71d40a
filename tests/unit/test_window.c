/* Feature windows: binning by timestamp, edges (gaps, one sample, out of order,
 * late), the features from known inputs, and the telemetry CSV rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/feature_schema.h"
#include "lib/log16.h"
#include "lib/window.h"
#include "lib/window_csv.h"

#define MS (1000ULL * 1000)
#define BASE (1000 * WINDOW_STEP_NS) /* an arbitrary step-aligned start */

/* A series with the interface's RTT keep, its storage in the same block. */
static struct window_series *series_new(void)
{
	struct window_series *ws = malloc(sizeof(*ws) + WINDOW_BINS * WINDOW_RTT_KEEP * sizeof(rtt_kept_t));

	assert_non_null(ws);
	window_series_init(ws, (rtt_kept_t *)(ws + 1), WINDOW_RTT_KEEP);
	return ws;
}

static void test_single_sample(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_rtt(ws, BASE + 50 * MS, 1234);
	window_compute(ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P50], 1234);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P95], 1234);
	assert_int_equal((int)w.feature[FEAT_RTT_EWMA], 1234);
	assert_int_equal((int)w.context[CTX_MIN_RTT_US], 1234);
	assert_true(window_active(ws, BASE + 200 * MS));
	/* The sample leaves the window two steps later. */
	assert_false(window_active(ws, BASE + 300 * MS));
	free(ws);
}

static void test_percentiles_nearest_rank(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	/* 1..100 ms spread over both steps of the window. */
	for (uint32_t i = 1; i <= 100; i++)
		window_add_rtt(ws, BASE + (i % 2 ? 10 : 150) * MS, i * 1000);
	window_compute(ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	/* the 50th and 95th as kept (lib/log16.h: 49984 and 94976) */
	assert_int_equal((int)w.feature[FEAT_LATENCY_P50], log16_unpack_u32(log16_pack_u32(50000)));
	assert_int_equal((int)w.feature[FEAT_LATENCY_P95], log16_unpack_u32(log16_pack_u32(95000)));
	free(ws);
}

/* A flow's series keeps few RTTs per step: all of them up to its keep, a uniform
 * sample beyond, never more. */
static void test_small_keep_exact_then_sampled(void **state)
{
	struct window_series ws;
	rtt_kept_t store[WINDOW_BINS * 4 + 1];
	struct feature_window w;

	(void)state;
	store[WINDOW_BINS * 4] = 0xdead; /* a guard after the storage */
	window_series_init(&ws, store, 4);
	for (uint32_t i = 1; i <= 4; i++)
		window_add_rtt(&ws, BASE + 10 * MS, i * 1000);
	for (uint32_t i = 5; i <= 8; i++)
		window_add_rtt(&ws, BASE + 150 * MS, i * 1000);
	window_compute(&ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P50], 4000);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P95], 8000);
	/* 100 more in the second step: the window still holds 4 + 4 values, of them */
	for (uint32_t i = 0; i < 100; i++)
		window_add_rtt(&ws, BASE + 160 * MS, 50000 + i);
	window_compute(&ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_true(w.feature[FEAT_LATENCY_P95] >= 5000 && w.feature[FEAT_LATENCY_P95] <= 50099);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P50], 4000); /* 4 of step 0 below any of step 1 */
	assert_int_equal(store[WINDOW_BINS * 4], 0xdead);
}

/* Kept RTTs are exact under 2.048 ms and at most 0.1 % under above, however long;
 * the min takes them whole. */
static void test_kept_rtts_are_exact_then_within_a_tenth_of_a_percent(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_rtt(ws, BASE + 10 * MS, 2047);
	window_compute(ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((uint32_t)w.feature[FEAT_LATENCY_P50], 2047);
	window_add_rtt(ws, BASE + 110 * MS, 40123);
	window_add_rtt(ws, BASE + 120 * MS, 30 * 1000 * 1000);
	window_compute(ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((uint32_t)w.feature[FEAT_LATENCY_P50], 40096); /* 40123 down to a step of 32 (1/1024 of 32768) */
	assert_in_range((uint32_t)w.feature[FEAT_LATENCY_P95], 30 * 1000 * 1000 * (1 - 1.0 / 1024), 30 * 1000 * 1000);
	assert_int_equal(ws->min_rtt_us, 2047);
	free(ws);
}

static void test_window_covers_two_steps_only(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_traffic(ws, BASE + 5 * MS, 0, 10, 0, 10000, 10 * 1000 * 1000);    /* step 0 */
	window_add_traffic(ws, BASE + 105 * MS, 0, 20, 0, 20000, 20 * 1000 * 1000);  /* step 1 */
	window_add_traffic(ws, BASE + 205 * MS, 0, 40, 0, 40000, 40 * 1000 * 1000);  /* step 2 */
	window_compute(ws, BASE + 300 * MS, SCOPE_FLOW, NULL, NULL, &w);
	/* Steps 1 and 2: 60 packets, 60000 bytes in 0.2 s. */
	assert_int_equal((int)w.feature[FEAT_BYTES_OUT_PER_SEC], 300000);
	assert_int_equal((int)w.feature[FEAT_ENQUEUE_RATE], 300);
	assert_int_equal((int)w.feature[FEAT_PACKET_SIZE_MEAN], 1000);
	assert_int_equal((int)w.feature[FEAT_PACKET_SIZE_VAR], 0);
	free(ws);
}

static void test_gap_leaves_empty_steps(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_traffic(ws, BASE + 5 * MS, 7, 0, 7000, 0, 7000000);
	/* Nothing for a second, then one sample: old steps must not leak into it. */
	window_add_traffic(ws, BASE + 1105 * MS, 1, 0, 500, 0, 250000);
	window_compute(ws, BASE + 1200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.feature[FEAT_BYTES_IN_PER_SEC], 2500);
	assert_false(window_active(ws, BASE + 1000 * MS));
	free(ws);
}

static void test_out_of_order_lands_in_its_step(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_rtt(ws, BASE + 150 * MS, 2000);
	window_add_rtt(ws, BASE + 50 * MS, 1000);   /* earlier step, still held */
	window_compute(ws, BASE + 100 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P95], 1000);
	window_compute(ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P50], 1000);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P95], 2000);
	assert_int_equal((int)ws->late_samples, 0);
	free(ws);
}

static void test_too_late_is_counted_not_used(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_rtt(ws, BASE + 1000 * MS, 3000);
	window_add_rtt(ws, BASE + 10 * MS, 9999);  /* ten steps older than the newest */
	assert_int_equal((int)ws->late_samples, 1);
	window_compute(ws, BASE + 1100 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.feature[FEAT_LATENCY_P95], 3000);
	free(ws);
}

static void test_ewma_gain_one_eighth(void **state)
{
	struct window_series *ws = series_new();

	(void)state;
	window_add_rtt(ws, BASE, 8000);
	window_add_rtt(ws, BASE + MS, 16000);
	assert_int_equal((int)ws->rtt_ewma_us, 9000);
	free(ws);
}

static void test_iface_queue_rates_from_qdisc(void **state)
{
	struct window_series *ws = series_new();
	struct queue_snapshot start = { .valid = true, .ts_ns = BASE, .sent_packets = 1000, .drops = 10,
					.backlog_packets = 5, .backlog_bytes = 7500 };
	struct queue_snapshot end = { .valid = true, .ts_ns = BASE + 200 * MS, .sent_packets = 1400, .drops = 30,
				      .backlog_packets = 25, .backlog_bytes = 37500 };
	struct feature_window w;

	(void)state;
	window_compute(ws, BASE + 200 * MS, SCOPE_IFACE, &start, &end, &w);
	/* (400 sent + 20 dropped + 20 more queued) / 0.2 s; 400 / 0.2 s left. */
	assert_int_equal((int)w.feature[FEAT_ENQUEUE_RATE], 2200);
	assert_int_equal((int)w.feature[FEAT_DEQUEUE_RATE], 2000);
	assert_int_equal((int)w.feature[FEAT_QUEUE_DEPTH], 37500);
	assert_int_equal((int)w.context[CTX_BACKLOG_PACKETS], 25);
	assert_int_equal((int)w.context[CTX_DROPS], 20);
	free(ws);
}

static void test_flow_delivery_rate(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;

	(void)state;
	window_add_delivery(ws, BASE + 20 * MS, 125000, 100, 1);
	window_add_delivery(ws, BASE + 120 * MS, 125000, 100, 2);
	window_compute(ws, BASE + 200 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.context[CTX_DELIVERY_RATE_BPS], 10000000);
	assert_int_equal((int)w.feature[FEAT_DEQUEUE_RATE], 1000);
	assert_int_equal((int)w.context[CTX_RETRANS], 3);
	free(ws);
}

/* A delivery over 400 ms reported at BASE + 350 ms: each step gets its share of the
 * time it spans; the oldest step is no longer held and its share is dropped; the
 * reporting step's share is left to the caller. */
static void test_a_delivery_spreads_over_its_steps(void **state)
{
	struct window_series *ws = series_new();
	struct feature_window w;
	uint64_t bytes = 400000, packets = 400;

	(void)state;
	window_add_delivery(ws, BASE + 150 * MS, 0, 0, 0); /* newest step: 1 */
	window_spread_delivery(ws, BASE - 50 * MS, BASE + 350 * MS, &bytes, &packets);
	/* 50 ms in step -1 (not held once step 2 is), 100 in 0, 1 and 2, 50 in step 3 */
	assert_int_equal(bytes, 50000);
	assert_int_equal(packets, 50);
	window_compute(ws, BASE + 300 * MS, SCOPE_FLOW, NULL, NULL, &w);
	assert_int_equal((int)w.context[CTX_DELIVERY_RATE_BPS], 200000 * 8 / 0.2);
	assert_int_equal((int)w.feature[FEAT_DEQUEUE_RATE], 200 / 0.2);
	assert_int_equal(ws->late_samples, 0);
	/* within one step: all of it stays with the caller */
	window_spread_delivery(ws, BASE + 310 * MS, BASE + 350 * MS, &bytes, &packets);
	assert_int_equal(bytes, 50000);
	free(ws);
}

static void test_csv_header_and_row(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct feature_window w = { .ts_ns = 42, .scope = SCOPE_FLOW };
	char expected_header[1024];
	int off;

	(void)state;
	assert_non_null(out);
	snprintf(w.flow, sizeof(w.flow), "tcp:10.0.0.1:1-10.0.0.2:2");
	w.feature[FEAT_LATENCY_P95] = 1500;
	w.context[CTX_RECORDS] = 7;
	window_csv_header(out);
	window_csv_row(out, &w);
	fclose(out);

	off = snprintf(expected_header, sizeof(expected_header), "ts_ns,scope,flow");
	for (int i = 0; i < FEATURE_COUNT; i++)
		off += snprintf(expected_header + off, sizeof(expected_header) - off, ",%s", feature_names[i]);
	for (int i = 0; i < CONTEXT_COUNT; i++)
		off += snprintf(expected_header + off, sizeof(expected_header) - off, ",%s", context_names[i]);
	assert_memory_equal(buf, expected_header, strlen(expected_header));
	assert_non_null(strstr(buf, "\n42,flow,tcp:10.0.0.1:1-10.0.0.2:2,0,0,0,0,1500,0,0,0,0,0,0,0,0,0,0,0,0,7\n"));
	free(buf);
}

static void test_feature_names_and_normalize(void **state)
{
	(void)state;
	assert_int_equal(feature_index("latency_p95"), FEAT_LATENCY_P95);
	assert_int_equal(feature_index("nope"), -1);
	assert_true(feature_normalize(5, 0, 10) == 0.5);
	assert_true(feature_normalize(-1, 0, 10) == 0.0);
	assert_true(feature_normalize(11, 0, 10) == 1.0);
	assert_true(feature_normalize(3, 3, 3) == 0.0); /* constant feature */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_sample),
		cmocka_unit_test(test_kept_rtts_are_exact_then_within_a_tenth_of_a_percent),
		cmocka_unit_test(test_percentiles_nearest_rank),
		cmocka_unit_test(test_small_keep_exact_then_sampled),
		cmocka_unit_test(test_window_covers_two_steps_only),
		cmocka_unit_test(test_gap_leaves_empty_steps),
		cmocka_unit_test(test_out_of_order_lands_in_its_step),
		cmocka_unit_test(test_too_late_is_counted_not_used),
		cmocka_unit_test(test_ewma_gain_one_eighth),
		cmocka_unit_test(test_iface_queue_rates_from_qdisc),
		cmocka_unit_test(test_flow_delivery_rate),
		cmocka_unit_test(test_a_delivery_spreads_over_its_steps),
		cmocka_unit_test(test_csv_header_and_row),
		cmocka_unit_test(test_feature_names_and_normalize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
