/* The forge's `windows` step and records file (user/forge_trace.c, forge_records.c):
 * ordering, gaps, a single sample, duplicates, scopes, bad rows, window spans. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "forge/forge.h"
#include "lib/window.h"

#define STEP 100000000ULL
#define HEADER                                                                                                 \
	"ts_ns,scope,flow,queue_depth,enqueue_rate,dequeue_rate,latency_p50,latency_p95,bytes_in_per_sec,"     \
	"bytes_out_per_sec,packet_size_mean,packet_size_var,rtt_ewma,srtt_us,min_rtt_us,snd_cwnd,"            \
	"delivery_rate_bps,retrans,backlog_packets,drops,records\n"

struct fixture {
	char dir[64];
	char path[128];
	char text[8192];
	size_t len;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_forge_windows.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/t.csv", fx->dir);
	fx->len = (size_t)snprintf(fx->text, sizeof(fx->text), HEADER);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char out[160];

	unlink(fx->path);
	snprintf(out, sizeof(out), "%s/w.csv", fx->dir);
	unlink(out);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* One telemetry row: window end step, scope, flow, queue_depth; the rest fixed. */
static void add_row(struct fixture *fx, uint64_t step, const char *scope, const char *flow, double queue_depth)
{
	fx->len += (size_t)snprintf(fx->text + fx->len, sizeof(fx->text) - fx->len,
				    "%llu,%s,%s,%g,100,90,800,1500,1e5,2e6,1200,4000,850,850,400,20,1.6e7,0,3,0,25\n",
				    (unsigned long long)(step * STEP), scope, flow, queue_depth);
	assert_true(fx->len < sizeof(fx->text));
}

static void write_text(struct fixture *fx)
{
	FILE *f = fopen(fx->path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(fx->text, 1, fx->len, f), fx->len);
	fclose(f);
}

static int load(struct fixture *fx, enum window_scope scope, struct forge_trace *tr, struct reflex_err *err)
{
	write_text(fx);
	return forge_trace_load(fx->path, scope, tr, err);
}

static void expect_error(struct fixture *fx, enum window_scope scope, size_t line, size_t column, const char *needle)
{
	struct reflex_err err = { 0 };
	struct forge_trace tr;

	assert_int_equal(load(fx, scope, &tr, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		print_error("message: %s\n", err.msg);
	assert_non_null(strstr(err.msg, needle));
	assert_non_null(strstr(err.msg, fx->path));
	assert_int_equal(err.line, line);
	assert_int_equal(err.column, column);
	assert_null(tr.windows);
}

static void test_single_window(void **state)
{
	struct fixture *fx = *state;
	struct reflex_err err = { 0 };
	struct forge_trace tr;

	add_row(fx, 100, "iface", "iface:veth0", 1500);
	assert_int_equal(load(fx, SCOPE_IFACE, &tr, &err), 0);
	assert_int_equal(tr.count, 1);
	assert_int_equal(tr.flow_count, 1);
	assert_int_equal(tr.segments, 1);
	assert_int_equal(tr.gaps, 0);
	assert_int_equal(tr.windows[0].line, 2);
	assert_float_equal(tr.windows[0].feature[FEAT_QUEUE_DEPTH], 1500, 0);
	assert_float_equal(tr.windows[0].context[CTX_RECORDS], 25, 0);
	/* One sample: min == max, and a constant normalizes to 0, never NaN. */
	assert_float_equal(tr.min[FEAT_QUEUE_DEPTH], tr.max[FEAT_QUEUE_DEPTH], 0);
	assert_float_equal(forge_trace_normalized(&tr, &tr.windows[0], FEAT_QUEUE_DEPTH), 0, 0);
	assert_int_equal(strlen(tr.sha1), 40);
	forge_trace_free(&tr);
}

/* Steps 10, 11, 12, then 15, 16: one gap of two missing steps, two segments. */
static void test_gap(void **state)
{
	struct fixture *fx = *state;
	const uint64_t steps[] = { 10, 11, 12, 15, 16 };
	const uint32_t segment[] = { 0, 0, 0, 1, 1 };
	struct reflex_err err = { 0 };
	struct forge_trace tr;

	for (size_t i = 0; i < 5; i++)
		add_row(fx, steps[i], "iface", "iface:veth0", (double)i * 100);
	assert_int_equal(load(fx, SCOPE_IFACE, &tr, &err), 0);
	assert_int_equal(tr.gaps, 1);
	assert_int_equal(tr.missing_steps, 2);
	assert_int_equal(tr.segments, 2);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(tr.windows[i].segment, segment[i]);
	/* Range 0..400: the middle row normalizes to 0.5. */
	assert_float_equal(forge_trace_normalized(&tr, &tr.windows[2], FEAT_QUEUE_DEPTH), 0.5, 1e-12);
	forge_trace_free(&tr);
}

/* File order 12, 10, 11, 13: rows 10 and 11 are older than 12 before them. */
static void test_out_of_order(void **state)
{
	struct fixture *fx = *state;
	const uint64_t steps[] = { 12, 10, 11, 13 };
	struct reflex_err err = { 0 };
	struct forge_trace tr;

	for (size_t i = 0; i < 4; i++)
		add_row(fx, steps[i], "iface", "iface:veth0", (double)steps[i]);
	assert_int_equal(load(fx, SCOPE_IFACE, &tr, &err), 0);
	assert_int_equal(tr.out_of_order, 2);
	assert_int_equal(tr.gaps, 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(tr.windows[i].ts_ns, (10 + i) * STEP);
		assert_float_equal(tr.windows[i].feature[FEAT_QUEUE_DEPTH], (double)(10 + i), 0);
	}
	/* The sorted window keeps the line it came from. */
	assert_int_equal(tr.windows[0].line, 3);
	forge_trace_free(&tr);
}

/* Two interleaved flows and an iface row: the flow scope keeps both, each in order,
 * flows sorted by name; interleaving is not disorder. */
static void test_flows_interleaved(void **state)
{
	struct fixture *fx = *state;
	struct reflex_err err = { 0 };
	struct forge_trace tr;

	add_row(fx, 10, "flow", "tcp:10.0.0.1:40001-10.0.0.2:5201", 1);
	add_row(fx, 10, "flow", "tcp:10.0.0.1:40000-10.0.0.2:5201", 2);
	add_row(fx, 10, "iface", "iface:veth0", 3);
	add_row(fx, 11, "flow", "tcp:10.0.0.1:40001-10.0.0.2:5201", 4);
	add_row(fx, 11, "flow", "tcp:10.0.0.1:40000-10.0.0.2:5201", 5);
	assert_int_equal(load(fx, SCOPE_FLOW, &tr, &err), 0);
	assert_int_equal(tr.count, 4);
	assert_int_equal(tr.rows_total, 5);
	assert_int_equal(tr.flow_count, 2);
	assert_int_equal(tr.out_of_order, 0);
	assert_string_equal(tr.flows[0], "tcp:10.0.0.1:40000-10.0.0.2:5201");
	assert_int_equal(tr.windows[0].flow, 0);
	assert_float_equal(tr.windows[1].feature[FEAT_QUEUE_DEPTH], 5, 0);
	assert_int_equal(tr.windows[2].flow, 1);
	assert_int_equal(tr.segments, 2);
	forge_trace_free(&tr);
}

static void test_duplicate_window(void **state)
{
	struct fixture *fx = *state;

	add_row(fx, 10, "iface", "iface:veth0", 1);
	add_row(fx, 11, "iface", "iface:veth0", 1);
	add_row(fx, 10, "iface", "iface:veth0", 1);
	expect_error(fx, SCOPE_IFACE, 4, 1, "column 'ts_ns': flow 'iface:veth0' has a second window ending at 1000000000 (also line 2)");
}

static void test_scope_errors(void **state)
{
	struct fixture *fx = *state;

	add_row(fx, 10, "flow", "tcp:a", 1);
	expect_error(fx, SCOPE_IFACE, 1, 2, "column 'scope': no row has scope 'iface'");
	add_row(fx, 11, "ifaces", "iface:veth0", 1);
	expect_error(fx, SCOPE_IFACE, 3, 2, "column 'scope': 'ifaces' is not a scope (iface or flow)");
}

static void test_negative_value(void **state)
{
	struct fixture *fx = *state;

	add_row(fx, 10, "iface", "iface:veth0", -5);
	expect_error(fx, SCOPE_IFACE, 2, 4, "column 'queue_depth': negative value -5");
}

static void test_nan_and_text(void **state)
{
	struct fixture *fx = *state;
	char *at;

	add_row(fx, 10, "iface", "iface:veth0", 1);
	at = strrchr(fx->text, ',');
	memcpy(at, ",nan\n", 6);
	fx->len = strlen(fx->text);
	expect_error(fx, SCOPE_IFACE, 2, 21, "column 'records': 'nan': NaN is not allowed");

	fx->len = (size_t)snprintf(fx->text, sizeof(fx->text), HEADER);
	add_row(fx, 10, "iface", "iface:veth0", 1);
	add_row(fx, 11, "iface", "iface:veth0", 1);
	at = strstr(fx->text + strlen(HEADER) + 10, "1100000000,iface,iface:veth0,1,100");
	assert_non_null(at);
	memcpy(at + strlen("1100000000,iface,iface:veth0,1,"), "abc", 3);
	expect_error(fx, SCOPE_IFACE, 3, 5, "column 'enqueue_rate': 'abc' is not a number");
}

/* A bad row of the scope not asked for is still a bad file. */
static void test_other_scope_validated(void **state)
{
	struct fixture *fx = *state;

	add_row(fx, 10, "iface", "iface:veth0", 1);
	add_row(fx, 10, "flow", "tcp:a", -1);
	expect_error(fx, SCOPE_IFACE, 3, 4, "column 'queue_depth': negative value -1");
}

static void test_missing_column(void **state)
{
	struct fixture *fx = *state;

	fx->len = (size_t)snprintf(fx->text, sizeof(fx->text), "ts_ns,scope,flow,queue_depth\n1,iface,x,1\n");
	expect_error(fx, SCOPE_IFACE, 1, 0, "column 'enqueue_rate': missing from the header");
}

static void test_window_span(void **state)
{
	uint64_t start, stop;

	(void)state;
	forge_window_span(10 * STEP, &start, &stop);
	assert_int_equal(start, 8 * STEP);
	assert_int_equal(stop, 10 * STEP);
	/* An end inside a step counts the step it falls in as not yet complete, like window.c. */
	forge_window_span(10 * STEP + STEP / 2, &start, &stop);
	assert_int_equal(start, 8 * STEP);
	assert_int_equal(stop, 10 * STEP);
	forge_window_span(STEP + 1, &start, &stop);
	assert_int_equal(start, 0);
	assert_int_equal(stop, STEP);
}

/* The records the batching oracle replays for a window are the ones reflexd's window
 * code counts in it: the forge's span and window.c agree on every window, records on
 * step boundaries included. */
static void test_span_matches_window_c(void **state)
{
	enum { N = 400 };
	struct forge_records rec = { .count = N };
	struct window_series ws;
	rtt_kept_t rtt_us[WINDOW_BINS * WINDOW_RTT_KEEP];
	size_t fed = 0;
	uint32_t seed = 99;

	(void)state;
	rec.arrivals = calloc(N, sizeof(*rec.arrivals));
	assert_non_null(rec.arrivals);
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1664525u + 1013904223u;
		/* 2 s from step 50 on, every eighth record exactly on a step boundary */
		rec.arrivals[i].ts_ns = 50 * STEP + (i * 2 * 1000000000ULL) / N + (i % 8 ? seed % 1000 : 0);
		if (i % 8 == 0)
			rec.arrivals[i].ts_ns -= rec.arrivals[i].ts_ns % STEP;
	}
	window_series_init(&ws, rtt_us, WINDOW_RTT_KEEP);
	for (uint64_t end = 51 * STEP; end <= 71 * STEP; end += STEP) {
		struct feature_window w;
		uint64_t start, stop;
		size_t first, n;

		while (fed < N && rec.arrivals[fed].ts_ns < end)
			window_add_record(&ws, rec.arrivals[fed++].ts_ns);
		window_compute(&ws, end, SCOPE_IFACE, NULL, NULL, &w);
		forge_window_span(end, &start, &stop);
		forge_records_window(&rec, start, stop, &first, &n);
		assert_int_equal(n, (size_t)w.context[CTX_RECORDS]);
	}
	free(rec.arrivals);
}

static void test_windows_write_normalized(void **state)
{
	struct fixture *fx = *state;
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	struct forge_trace tr;
	char out[160];
	double v;

	add_row(fx, 10, "iface", "iface:veth0", 0);
	add_row(fx, 11, "iface", "iface:veth0", 250);
	add_row(fx, 12, "iface", "iface:veth0", 1000);
	assert_int_equal(load(fx, SCOPE_IFACE, &tr, &err), 0);
	snprintf(out, sizeof(out), "%s/w.csv", fx->dir);
	assert_int_equal(forge_windows_write(&tr, out, &err), 0);
	assert_int_equal(csv_read_file(out, &t, &err), 0);
	assert_int_equal(t->row_count, 3);
	assert_int_equal(csv_column(t, "segment"), 3);
	assert_int_equal(csv_get_double(t, 1, (size_t)csv_column(t, "queue_depth"), &v, &err), 0);
	assert_float_equal(v, 0.25, 1e-15);
	/* Context columns stay raw. */
	assert_int_equal(csv_get_double(t, 1, (size_t)csv_column(t, "records"), &v, &err), 0);
	assert_float_equal(v, 25, 0);
	csv_free(t);
	forge_trace_free(&tr);
}

/* --- records ------------------------------------------------------------------- */

static void test_records(void **state)
{
	struct fixture *fx = *state;
	struct reflex_err err = { 0 };
	struct forge_records rec;
	size_t first, n;

	fx->len = (size_t)snprintf(fx->text, sizeof(fx->text),
				   "ts_ns,ring,cpu\n"
				   "800000000,sock,0\n"  /* exactly the window start: inside */
				   "950000000,tc,1\n"
				   "900000000,sock,1\n"  /* out of order */
				   "1000000000,tc,0\n"   /* exactly the end: outside */
				   "799999999,sock,0\n"); /* out of order, before the window */
	write_text(fx);
	assert_int_equal(forge_records_load(fx->path, &rec, &err), 0);
	assert_int_equal(rec.count, 5);
	assert_int_equal(rec.out_of_order, 2);
	assert_true(rec.has_cpu);
	assert_int_equal(rec.arrivals[0].ts_ns, 799999999);
	assert_int_equal(rec.arrivals[2].ts_ns, 900000000);
	/* Counters keep rings and CPUs apart. */
	assert_int_not_equal(rec.arrivals[2].counter, rec.arrivals[1].counter);
	assert_int_not_equal(rec.arrivals[3].counter, rec.arrivals[2].counter);
	forge_records_window(&rec, 8 * STEP, 10 * STEP, &first, &n);
	assert_int_equal(first, 1);
	assert_int_equal(n, 3);
	forge_records_free(&rec);
}

static void test_records_errors(void **state)
{
	struct fixture *fx = *state;
	struct reflex_err err = { 0 };
	struct forge_records rec;

	fx->len = (size_t)snprintf(fx->text, sizeof(fx->text), "ts_ns,ring\n1,sock\n2,udp\n");
	write_text(fx);
	assert_int_equal(forge_records_load(fx->path, &rec, &err), -EINVAL);
	assert_non_null(strstr(err.msg, ":3:2: column 'ring': 'udp' is not a ring (sock or tc)"));
	fx->len = (size_t)snprintf(fx->text, sizeof(fx->text), "ts_ns,ring\n-1,sock\n");
	write_text(fx);
	assert_int_equal(forge_records_load(fx->path, &rec, &err), -EINVAL);
	assert_non_null(strstr(err.msg, ":2:1: column 'ts_ns': '-1' is not an unsigned integer"));
	assert_null(rec.arrivals);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_interleaved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scope_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nan_and_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_scope_validated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_column, setup, teardown),
		cmocka_unit_test(test_window_span),
		cmocka_unit_test(test_span_matches_window_c),
		cmocka_unit_test_setup_teardown(test_windows_write_normalized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
