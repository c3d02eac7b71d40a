/* The forge's oracles (user/oracle_batching.c, user/oracle_cwnd.c) on cases whose
 * answers are worked out by hand in the comments. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/oracle.h"

#define US 1000ULL
#define MS 1000000ULL
#define START (1000 * MS)
#define WINDOW (200 * MS)

static struct batching_params free_consumer(void)
{
	/* No wakeup or handling cost: delays are pure batching. */
	return (struct batching_params){ .lambda = 0.1, .wakeup_cost_ns = 0, .record_cost_ns = 0 };
}

static struct record_arrival *every(size_t n, uint64_t first, uint64_t gap)
{
	struct record_arrival *a = calloc(n ? n : 1, sizeof(*a));

	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		a[i].ts_ns = first + i * gap;
	return a;
}

/* 2000 records, one every 100 us, flush every 4, timeout 1 ms: each group of four
 * is delivered when its fourth arrives, so the delays are 300, 200, 100, 0 us, 500
 * of each. p95 (rank 1900 of 2000) = 300 us; 500 wakeups; 0.25 wakeups/record. */
static void test_constant_rate_flush_bound(void **state)
{
	struct batching_params p = free_consumer();
	struct record_arrival *a = every(2000, START, 100 * US);
	struct batching_outcome out;

	(void)state;
	assert_int_equal(batching_simulate(a, 2000, START, START + WINDOW, 4, 1 * MS, &p, &out), 0);
	assert_int_equal(out.records, 2000);
	assert_int_equal(out.wakeups, 500);
	assert_float_equal(out.p95_latency_us, 300.0, 1e-9);
	assert_float_equal(out.batch_overhead, 0.25, 1e-12);
	assert_float_equal(out.j, 300.0 + 0.1 * 0.25, 1e-9);
	free(a);
}

/* 50 records every 100 us from the window start, flush every 64 (never reached),
 * timeout 1 ms. Polls return at 1, 2, 3, 4, 5 ms and take records 0-10 (delays
 * 1000..0), 11-20, 21-30, 31-40 (900..0) and 41-49 (900..100); the largest delays are
 * 1000 and five of 900, so p95 (rank 48 of 50) = 900 us. Empty timeouts go on every
 * 1 ms until the window ends: 199 wakeups in all, 3.98 per record. */
static void test_constant_rate_timeout_bound(void **state)
{
	struct batching_params p = free_consumer();
	struct record_arrival *a = every(50, START, 100 * US);
	struct batching_outcome out;

	(void)state;
	assert_int_equal(batching_simulate(a, 50, START, START + WINDOW, 64, 1 * MS, &p, &out), 0);
	assert_int_equal(out.wakeups, 199);
	assert_float_equal(out.p95_latency_us, 900.0, 1e-9);
	assert_float_equal(out.batch_overhead, 199.0 / 50.0, 1e-12);
	free(a);
}

/* Flush every record, with a 10 us wakeup and 1 us per record: each record, 1 ms
 * apart, waits exactly 11 us; one wakeup each and no timeouts (4 ms > 1 ms gaps). */
static void test_wakeup_and_record_costs(void **state)
{
	struct batching_params p = { .lambda = 0.1, .wakeup_cost_ns = 10 * US, .record_cost_ns = 1 * US };
	struct record_arrival *a = every(200, START, 1 * MS);
	struct batching_outcome out;

	(void)state;
	assert_int_equal(batching_simulate(a, 200, START, START + WINDOW, 1, 4 * MS, &p, &out), 0);
	assert_int_equal(out.wakeups, 200);
	assert_float_equal(out.p95_latency_us, 11.0, 1e-9);
	assert_float_equal(out.j, 11.0 + 0.1 * 1.0, 1e-9);
	free(a);
}

/* A busy consumer batches by itself, even flushing every record: records every 2 us,
 * a 10 us wakeup, 1 us per record. A wakeup at a runs at a + 10 and handles record i
 * (at a + 2i) until it has caught up, i.e. 11 records (a + 2i > a + 10 + i for i = 11):
 * 1000 records take 91 wakeups, and the first of a batch waits longest, 11 us. The
 * window ends 3 ms after the start, before any timeout after the last record. */
static void test_busy_consumer_batches(void **state)
{
	struct batching_params p = { .lambda = 0.1, .wakeup_cost_ns = 10 * US, .record_cost_ns = 1 * US };
	struct record_arrival *a = every(1000, START, 2 * US);
	struct batching_outcome out;

	(void)state;
	assert_int_equal(batching_simulate(a, 1000, START, START + 3 * MS, 1, 4 * MS, &p, &out), 0);
	assert_int_equal(out.wakeups, 91);
	assert_float_equal(out.p95_latency_us, 11.0, 1e-9);
	free(a);
}

/* An empty window still costs its timeouts: 50 us polls over 200 ms return at 50,
 * 100, ..., 199950 us, 3999 wakeups; with no records, overhead is per 1 record. */
static void test_empty_window(void **state)
{
	struct batching_params p = free_consumer();
	struct batching_outcome out;

	(void)state;
	assert_int_equal(batching_simulate(NULL, 0, START, START + WINDOW, 16, 50 * US, &p, &out), 0);
	assert_int_equal(out.wakeups, 3999);
	assert_float_equal(out.p95_latency_us, 0, 0);
	assert_float_equal(out.batch_overhead, 3999, 0);
}

/* Counters are per ring and CPU, like ring_pending: four records 100 us apart on
 * counters 0,1,0,1 with flush every 2 are forced at the third (counter 0's second)
 * and the fourth, so the delays are 200,100,0,0 (p95 = max = 200). On one counter
 * the second and fourth force: 100,0,100,0. Window of 1 ms, so no timeout fires. */
static void test_counters_per_ring(void **state)
{
	struct batching_params p = free_consumer();
	struct record_arrival *a = every(4, START, 100 * US);
	struct batching_outcome out;

	(void)state;
	a[1].counter = 1;
	a[3].counter = 1;
	assert_int_equal(batching_simulate(a, 4, START, START + 1 * MS, 2, 4 * MS, &p, &out), 0);
	assert_int_equal(out.wakeups, 2);
	assert_float_equal(out.p95_latency_us, 200, 1e-9);
	a[1].counter = 0;
	a[3].counter = 0;
	assert_int_equal(batching_simulate(a, 4, START, START + 1 * MS, 2, 4 * MS, &p, &out), 0);
	assert_int_equal(out.wakeups, 2);
	assert_float_equal(out.p95_latency_us, 100, 1e-9);
	free(a);
}

static void test_rejects_bad_arrivals(void **state)
{
	struct batching_params p = free_consumer();
	struct record_arrival *a = every(3, START, 100 * US);
	struct batching_outcome out;

	(void)state;
	assert_int_equal(batching_simulate(a, 3, START, START + WINDOW, 0, 1 * MS, &p, &out), -EINVAL);
	a[1].ts_ns = START - 1; /* before the window, and out of order */
	assert_int_equal(batching_simulate(a, 3, START, START + WINDOW, 4, 1 * MS, &p, &out), -EINVAL);
	a[1].ts_ns = START + 300 * US; /* out of order only */
	assert_int_equal(batching_simulate(a, 3, START, START + WINDOW, 4, 1 * MS, &p, &out), -EINVAL);
	a[1].ts_ns = START + 100 * US;
	a[2].ts_ns = START + WINDOW; /* the end is exclusive */
	assert_int_equal(batching_simulate(a, 3, START, START + WINDOW, 4, 1 * MS, &p, &out), -EINVAL);
	free(a);
}

/* n records at the middles of n equal slices: (2k + 1) * 200 ms / 2n. */
static void test_even_arrivals(void **state)
{
	struct record_arrival a[4];

	(void)state;
	batching_even_arrivals(4, START, START + WINDOW, a);
	assert_int_equal(a[0].ts_ns, START + 25 * MS);
	assert_int_equal(a[3].ts_ns, START + 175 * MS);
	batching_even_arrivals(3, START, START + WINDOW, a);
	assert_int_equal(a[0].ts_ns, START + 33333333);
	assert_int_equal(a[1].ts_ns, START + 100000000);
	assert_int_equal(a[2].ts_ns, START + 166666666);
	assert_int_equal(a[2].counter, 0);
}

static void assert_best_is_least(const struct batching_label *l)
{
	for (unsigned c = 0; c < BATCHING_CANDIDATES; c++)
		assert_true(l->candidate[l->best].j <= l->candidate[c].j);
}

/* lambda decides: with a wakeup worth 0.1 us, flushing every record (11 us) wins; with
 * a wakeup worth 1 s, the fewest wakeups win. At one record per 100 us, flushing every
 * 32 wakes every 3.2 ms, before a 4 ms timeout: 63 wakeups. Flushing every 64 wakes
 * at 6.4 ms, but the 4 ms timeout fires in between, so also 63 wakeups, with longer
 * waits: (32, 4 ms) wins. */
static void test_label_follows_lambda(void **state)
{
	struct batching_params p;
	struct record_arrival *a = every(2000, START, 100 * US);
	struct batching_label l;

	(void)state;
	batching_params_default(&p);
	assert_int_equal(batching_label_window(a, 2000, START, START + WINDOW, &p, &l), 0);
	assert_best_is_least(&l);
	assert_int_equal(batching_thresholds[l.best / BATCHING_DELAYS], 1);
	p.lambda = 1e6;
	assert_int_equal(batching_label_window(a, 2000, START, START + WINDOW, &p, &l), 0);
	assert_best_is_least(&l);
	assert_int_equal(batching_thresholds[l.best / BATCHING_DELAYS], 32);
	assert_int_equal(batching_delays_us[l.best % BATCHING_DELAYS], 4000);
	assert_int_equal(l.candidate[l.best].wakeups, 63);
	assert_int_equal(l.candidate[(BATCHING_THRESHOLDS - 1) * BATCHING_DELAYS + 3].wakeups, 63);
	free(a);
}

/* --- cwnd --------------------------------------------------------------------- */

/* 50 Mbit/s, min RTT 20 ms, p95 120 ms: one MSS takes 240 us to serialize, so the
 * base RTT is 19760 us and the BDP 123500 bytes; 100 ms of queueing delay at that
 * rate is 625000 bytes of buffer. Runs: max(20 RTTs, 250 ms) and max(40 RTTs, 500 ms). */
static void test_cwnd_scenario(void **state)
{
	struct cwnd_params p;
	struct bsim_config cfg;
	uint64_t warm, measure;

	(void)state;
	cwnd_params_default(&p);
	assert_int_equal(cwnd_scenario(50e6, 20000, 120000, 0, &p, &cfg, &warm, &measure), 0);
	assert_int_equal(cfg.link_bps, 50000000);
	assert_int_equal(cfg.base_rtt_us, 19760);
	assert_int_equal(cfg.buffer_bytes, 625000);
	assert_int_equal(warm, 395200);
	assert_int_equal(measure, 790400);
	/* The root-qdisc backlog counts when it is the larger. */
	assert_int_equal(cwnd_scenario(50e6, 20000, 120000, 2e6, &p, &cfg, &warm, &measure), 0);
	assert_int_equal(cfg.buffer_bytes, 2000000);
	/* 10 Gbit/s for 750 ms would be 625000 packets: both parts shrink to fit 200000. */
	assert_int_equal(cwnd_scenario(10e9, 100, 100, 0, &p, &cfg, &warm, &measure), 0);
	assert_int_equal(warm, 80000);
	assert_int_equal(measure, 160000);
	/* Idle flows and flows without an RTT are not labelled. */
	assert_int_equal(cwnd_scenario(0.5e6, 20000, 20000, 0, &p, &cfg, &warm, &measure), -ERANGE);
	assert_int_equal(cwnd_scenario(50e6, 0, 20000, 0, &p, &cfg, &warm, &measure), -ERANGE);
}

/* A deep buffer (625 kB, 5 BDPs): uncapped CUBIC fills it, so the oracle caps; a cap
 * of half the BDP can carry only about half the link rate. */
static void test_cwnd_label_deep_buffer(void **state)
{
	struct cwnd_params p;
	struct bsim_config cfg;
	struct cwnd_label l, again;
	uint64_t warm, measure;

	(void)state;
	cwnd_params_default(&p);
	assert_int_equal(cwnd_scenario(50e6, 20000, 120000, 0, &p, &cfg, &warm, &measure), 0);
	assert_int_equal(cwnd_label_scenario(&cfg, warm, measure, &p, &l), 0);
	for (unsigned c = 0; c < CWND_CANDIDATES; c++)
		assert_true(l.candidate[l.best].j <= l.candidate[c].j);
	assert_true(cwnd_bdp_multiples[l.best] > 0);
	assert_true(l.candidate[CWND_CANDIDATES - 1].rtt_ratio > 3.0);
	assert_true(l.candidate[0].shortfall_pct > 40 && l.candidate[0].shortfall_pct < 60);
	assert_int_equal(l.candidate[CWND_CANDIDATES - 1].clamp_pkts, 0);
	/* Same scenario and seed, same answer. */
	assert_int_equal(cwnd_label_scenario(&cfg, warm, measure, &p, &again), 0);
	assert_memory_equal(&l, &again, sizeof(l));
}

/* The same deep-buffer window when the link's rate doubles soon after (25 -> 50 Mbit/s):
 * a cap of one measured BDP would carry half the new rate, so the oracle picks a larger
 * multiple than on the measured rate alone; with only the measured rate it agrees with
 * cwnd_label_scenario; with no rate over min_rate_bps nothing is labelled. */
static void test_cwnd_label_rates_rising_link(void **state)
{
	const double now_only[] = { 25e6 }, rising[] = { 25e6, 50e6 }, idle[] = { 0.5e6 };
	struct cwnd_params p;
	struct bsim_config cfg;
	struct cwnd_label alone, moving, plain;
	uint64_t warm, measure;

	(void)state;
	cwnd_params_default(&p);
	assert_int_equal(cwnd_label_rates(25e6, now_only, 1, 20000, 120000, 0, &p, &alone), 0);
	assert_int_equal(cwnd_scenario(25e6, 20000, 120000, 0, &p, &cfg, &warm, &measure), 0);
	assert_int_equal(cwnd_label_scenario(&cfg, warm, measure, &p, &plain), 0);
	assert_memory_equal(&alone, &plain, sizeof(plain));
	assert_int_equal(cwnd_label_rates(25e6, rising, 2, 20000, 120000, 0, &p, &moving), 0);
	assert_true(cwnd_bdp_multiples[moving.best] > cwnd_bdp_multiples[alone.best]);
	/* A cap of one measured BDP loses about half of the doubled rate, averaged over both. */
	assert_true(moving.candidate[2].shortfall_pct > alone.candidate[2].shortfall_pct + 15);
	assert_int_equal(moving.candidate[2].clamp_pkts, alone.candidate[2].clamp_pkts);
	assert_int_equal(cwnd_label_rates(0.5e6, idle, 1, 20000, 120000, 0, &p, &moving), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant_rate_flush_bound),
		cmocka_unit_test(test_constant_rate_timeout_bound),
		cmocka_unit_test(test_wakeup_and_record_costs),
		cmocka_unit_test(test_busy_consumer_batches),
		cmocka_unit_test(test_empty_window),
		cmocka_unit_test(test_counters_per_ring),
		cmocka_unit_test(test_rejects_bad_arrivals),
		cmocka_unit_test(test_even_arrivals),
		cmocka_unit_test(test_label_follows_lambda),
		cmocka_unit_test(test_cwnd_scenario),
		cmocka_unit_test(test_cwnd_label_deep_buffer),
		cmocka_unit_test(test_cwnd_label_rates_rising_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
