/*
 * reflexd's telemetry pipeline, off the wire:
 *  - consumer throughput: a BPF program (pipeline_producer.bpf.c, BPF_PROG_TEST_RUN)
 *    fills a ring buffer of sock_events' type and size with sock_sample records, and
 *    reflexd's consumer (lib/ring_reader into telemetry_on_sock_sample, as reflexd's
 *    on_sock_record) drains it on this thread: events per second of consume time,
 *    median over rounds, and records the producer could not reserve; libbpf's
 *    ring_buffer, which reflexd used before, in the same run as the baseline;
 *  - ring memory: the RSS two rings of reflexd's default size add, mapped by
 *    ring_reader and by libbpf's ring_buffer;
 *  - event -> decision in a map at 10k flows, in real time: every flow sends a
 *    sock_sample every 10 ms (the default sample interval) at its own phase, stamped
 *    with CLOCK_MONOTONIC as bpf_ktime_get_ns stamps them, and this thread runs
 *    reflexd's loop over them (telemetry, the real controller with the heuristic
 *    policy, decisions into a BPF hash map of cwnd_decisions' layout). The event of
 *    a decision is its flow's first record at or after the window's end: the earliest
 *    moment the window is complete. Latency: from that record's timestamp until the
 *    system call that puts the decision in the map returns ("event"), and from when
 *    the loop took that record (or began the pass) ("taken": without the wait for
 *    the loop, which on a loaded machine is the wait for a CPU). Measured for reflexd's
 *    design (the record closes the window; decisions written in batches, every
 *    DRAIN_FLUSH_RECORDS records of a drain and at its end) and, in the same run,
 *    for the previous one (every window computed in one pass after a 20 ms grace;
 *    one write per decision), and for reflexd's design with the loop at SCHED_FIFO
 *    (reflexd --rt-priority), the three alternated; the loop sleeps between its
 *    wakeups as reflexd's does in epoll;
 *  - scale: resident memory and CPU time of one window pass against flow count, each
 *    count in a freshly executed process, and the memlock of the BPF flow maps that
 *    --max-flows sizes (kernel memory, not in reflexd's RSS).
 * Usage: bench_pipeline [ROUNDS]   (default 40)
 *        bench_pipeline --latency  (event -> decision only)
 *        bench_pipeline --rings    (ring memory only)
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "lib/feature_schema.h"
#include "lib/ring_reader.h"
#include "pipeline_producer.skel.h"
#include "reflexd/actuator.h"
#include "reflexd/controller.h"
#include "reflexd/telemetry.h"

#define RECORDS_PER_ROUND 24000 /* under the 4 MiB ring's ~29k sock_sample records */
#define LATENCY_FLOWS 10000
#define LATENCY_WINDOWS 8
#define LATENCY_PAIRS 3       /* alternations of the three loops: medians of 3 */
#define LATENCY_RT_PRIORITY 10
#define SAMPLE_PERIOD_NS REFLEX_DEFAULT_SAMPLE_INTERVAL_NS
#define WINDOW_GRACE_NS (20ULL * 1000 * 1000) /* reflexd.c's */
#define STRINGIFY(x) #x
#define TEXT_OF(x) STRINGIFY(x)
#define DRAIN_FLUSH_TEXT TEXT_OF(DRAIN_FLUSH_RECORDS)

/* --- consumer throughput ------------------------------------------------- */

static int on_sock_record(void *ctx, void *data, size_t size)
{
	if (size >= sizeof(struct sock_sample))
		telemetry_on_sock_sample(ctx, data);
	return 0;
}

/* records more records from the producer, one per BPF_PROG_TEST_RUN repeat. */
static int produce(struct pipeline_producer_bpf *skel, uint32_t records)
{
	char packet[64] = { 0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
			    .repeat = records);
	int ret = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.produce), &opts);

	if (ret)
		fprintf(stderr, "bench_pipeline: the producer did not run: %s\n", strerror(-ret));
	return ret;
}

static long status_kb(const char *field);

enum consumer { CONSUMER_REFLEX, CONSUMER_LIBBPF };
static const char *const consumer_name[] = { "ring_reader", "libbpf ring_buffer" };

static int throughput(unsigned flows, int rounds, enum consumer consumer)
{
	struct pipeline_producer_bpf *skel = pipeline_producer_bpf__open_and_load();
	struct ring_buffer *libbpf_ring = NULL;
	struct ring_reader reader = { 0 };
	struct telemetry t;
	double *rate = calloc((size_t)rounds, sizeof(*rate));
	uint64_t consumed = 0;
	int ret = 1;

	telemetry_init(&t, "bench", NULL, NULL);
	t.max_flows = flows;
	if (!skel || !rate) {
		fprintf(stderr, "bench_pipeline: cannot load the producer: %s\n", strerror(errno));
		goto out;
	}
	skel->bss->flows = flows;
	if (consumer == CONSUMER_LIBBPF) {
		libbpf_ring = ring_buffer__new(bpf_map__fd(skel->maps.events), on_sock_record, &t, NULL);
		if (!libbpf_ring)
			goto out;
	} else if (ring_reader_init(&reader) || ring_reader_add(&reader, bpf_map__fd(skel->maps.events), on_sock_record, &t)) {
		goto out;
	}
	for (int r = 0; r < rounds; r++) {
		double t0, t1;
		int n;

		if (produce(skel, RECORDS_PER_ROUND))
			goto out;
		t0 = now_ns();
		n = consumer == CONSUMER_LIBBPF ? ring_buffer__consume(libbpf_ring) : ring_reader_consume(&reader);
		t1 = now_ns();
		if (n < 0)
			goto out;
		consumed += (uint64_t)n;
		rate[r] = n / ((t1 - t0) / 1e9);
	}
	struct result res = summarize(rate, rounds);
	printf("  %6u flows, %-18s: %5.2f M events/s (min %.2f, max %.2f), %llu consumed of %llu produced, "
	       "%llu lost, %u flows tracked\n",
	       flows, consumer_name[consumer], res.median / 1e6, res.min / 1e6, res.max / 1e6,
	       (unsigned long long)consumed, (unsigned long long)skel->bss->produced,
	       (unsigned long long)skel->bss->lost, t.flow_count);
	ret = 0;
out:
	ring_buffer__free(libbpf_ring);
	ring_reader_free(&reader);
	pipeline_producer_bpf__destroy(skel);
	telemetry_free(&t);
	free(rate);
	return ret;
}

/* reflexd's two default rings (tc, sockops) mapped by each consumer: the RSS they add.
 * The kernel fills a ring's mappings at mmap, so this is what a running reflexd holds. */
static int rings_rss(void)
{
	int fds[2] = { -1, -1 };
	long base, libbpf_kb = -1, reader_kb = -1;
	struct ring_buffer *rb = NULL;
	struct ring_reader reader = { 0 };
	int ret = 1;

	for (int i = 0; i < 2; i++) {
		fds[i] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bench_ring", 0, 0, REFLEX_RINGBUF_BYTES, NULL);
		if (fds[i] < 0)
			goto out;
	}
	base = status_kb("VmRSS");
	rb = ring_buffer__new(fds[0], on_sock_record, NULL, NULL);
	if (!rb || ring_buffer__add(rb, fds[1], on_sock_record, NULL))
		goto out;
	libbpf_kb = status_kb("VmRSS") - base;
	ring_buffer__free(rb);
	rb = NULL;
	base = status_kb("VmRSS");
	if (ring_reader_init(&reader) || ring_reader_add(&reader, fds[0], on_sock_record, NULL) ||
	    ring_reader_add(&reader, fds[1], on_sock_record, NULL))
		goto out;
	reader_kb = status_kb("VmRSS") - base;
	printf("  two %u KiB rings mapped: RSS +%.1f MB with libbpf's ring_buffer (baseline), +%.1f MB with "
	       "ring_reader (%.2fx)\n",
	       REFLEX_RINGBUF_BYTES / 1024, libbpf_kb / 1024.0, reader_kb / 1024.0, (double)reader_kb / libbpf_kb);
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "bench_pipeline: cannot map the rings: %s\n", strerror(errno));
	ring_buffer__free(rb);
	ring_reader_free(&reader);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

/* --- the controller on a real map --------------------------------------------- */

struct map_actuator {
	struct actuator base; /* first: the callbacks cast back */
	struct decision_batch batch;
	bool batched;          /* false: one write per decision, as before */
	uint64_t window_end;   /* of the windows being decided now */
	unsigned n_flows;      /* the flows' phases: i * SAMPLE_PERIOD_NS / n_flows */
	uint64_t held_event_ns[DECISION_BATCH_MAX];
	double taken_ns; /* when the loop took the record that led to the decisions */
	double held_taken_ns[DECISION_BATCH_MAX];
	double *latency_ns, *from_taken_ns;
	unsigned n_latency, max_latency;
	unsigned failed;
};

/* The flow's first record at or after a window's end comes this long after it:
 * sample_of's key, decoded. */
static uint64_t flow_phase_ns(const struct flow_key *key, unsigned n_flows)
{
	unsigned f = ((key->daddr[0] - 0x0200000a) >> 24) << 16 | ((key->sport - 1024u) + (key->dport - 5201u) * 60000u);

	return n_flows ? (uint64_t)f * SAMPLE_PERIOD_NS / n_flows : 0;
}

/* The first n held decisions are in the map now. */
static void decisions_written(struct map_actuator *m, unsigned n)
{
	double done = now_ns();

	for (unsigned i = 0; i < n && m->n_latency < m->max_latency; i++) {
		m->from_taken_ns[m->n_latency] = done - m->held_taken_ns[i];
		m->latency_ns[m->n_latency++] = done - (double)m->held_event_ns[i];
	}
}

static unsigned map_flush(struct actuator *a)
{
	struct map_actuator *m = (struct map_actuator *)a;
	unsigned n = m->batch.n, failed = decision_batch_flush(&m->batch);

	decisions_written(m, n);
	m->failed += failed;
	return failed;
}

static int map_decide(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct map_actuator *m = (struct map_actuator *)a;

	uint64_t event_ns = m->window_end + flow_phase_ns(key, m->n_flows);
	unsigned written = decision_batch_add(&m->batch, key, cwnd_target, decided_ns);

	decisions_written(m, written);
	m->held_event_ns[m->batch.n - 1] = event_ns;
	m->held_taken_ns[m->batch.n - 1] = m->taken_ns;
	if (!m->batched)
		map_flush(a);
	return 0;
}

static int map_beat(struct actuator *a, uint64_t now)
{
	(void)a, (void)now;
	return 0;
}

static int map_configure(struct actuator *a, const struct reflex_config *cfg)
{
	(void)a, (void)cfg;
	return 0;
}

struct rig {
	struct telemetry t;
	struct controller c;
	struct map_actuator act;
	struct queue_snapshot q;
};

static void flow_gone(struct flow_entry *flow, void *ctx)
{
	controller_flow_gone(&((struct rig *)ctx)->c, flow);
}

static void on_window(const struct feature_window *w, struct flow_entry *flow, void *ctx)
{
	struct rig *rig = ctx;

	if (flow)
		controller_on_flow_window(&rig->c, flow, w);
	else
		controller_on_iface_window(&rig->c, w);
}

static int rig_init(struct rig *rig, unsigned flows, unsigned max_latency, bool batched)
{
	const struct hysteresis_params hp = HYSTERESIS_DEFAULTS;
	struct controller_opts o = { .policy = CWND_POLICY_HEURISTIC, .hysteresis = hp, .max_flows = flows };
	struct reflex_config cfg = { .flush_threshold = REFLEX_DEFAULT_FLUSH_THRESHOLD,
				     .max_batch_delay_us = REFLEX_DEFAULT_MAX_BATCH_DELAY_US };

	memset(rig, 0, sizeof(*rig));
	rig->act.base = (struct actuator){ .name = "bench-map", .flows = true, .decide = map_decide,
					   .flush = map_flush, .beat = map_beat, .configure = map_configure };
	rig->act.batched = batched;
	rig->act.batch.fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_decisions", sizeof(struct flow_key),
					   sizeof(struct cwnd_decision), flows, NULL);
	rig->act.max_latency = max_latency;
	rig->act.latency_ns = calloc(max_latency ? max_latency : 1, sizeof(double));
	rig->act.from_taken_ns = calloc(max_latency ? max_latency : 1, sizeof(double));
	if (rig->act.batch.fd < 0 || !rig->act.latency_ns || !rig->act.from_taken_ns) {
		fprintf(stderr, "bench_pipeline: cannot create the decision map: %s\n", strerror(errno));
		return -1;
	}
	telemetry_init(&rig->t, "bench", flow_gone, rig);
	rig->t.max_flows = flows;
	return controller_init(&rig->c, &o, &rig->act.base, &cfg);
}

static void rig_free(struct rig *rig)
{
	telemetry_free(&rig->t);
	controller_flush(&rig->c);
	controller_free(&rig->c);
	close(rig->act.batch.fd);
	free(rig->act.latency_ns);
	free(rig->act.from_taken_ns);
}

/* Flow f's record number seq: an ACK sample as sockops sends it (10 Mbit/s over a
 * 1 ms path, 1448-byte segments). */
static void sample_of(unsigned f, uint64_t seq, uint64_t ts_ns, struct sock_sample *s)
{
	memset(s, 0, sizeof(*s));
	s->event = SOCK_EVENT_RTT;
	s->state = 1;
	s->mss_cache = 1448;
	s->snd_cwnd = 10;
	s->rtt_min_us = 900;
	s->key.family = 2;
	s->key.proto = 6;
	s->key.saddr[0] = 0x0100000a;
	s->ts_ns = ts_ns;
	s->cookie = f + 1;
	s->key.daddr[0] = 0x0200000a + ((f >> 16) << 24);
	s->key.sport = 1024 + (uint16_t)((f & 0xffff) % 60000);
	s->key.dport = 5201 + (uint16_t)((f & 0xffff) / 60000);
	s->mrtt_us = s->srtt_us = 1000 + f % 500;
	s->bytes_acked = seq * 12500;
	s->delivered = (uint32_t)(seq * 9);
}

/* --- event -> decision in the map ------------------------------------------------ */

/* When the record of index i (flow i % n, round i / n) is due. */
static uint64_t record_due_ns(uint64_t t0, uint64_t i, unsigned n)
{
	return t0 + i / n * SAMPLE_PERIOD_NS + i % n * SAMPLE_PERIOD_NS / n;
}

/* reflexd sleeps in epoll until the BPF side wakes it (every flush_threshold records)
 * or its poll times out (max_batch_delay_us); the loop here sleeps as long, or until
 * its next window duty, so that a loaded CPU delays its wakeups as it delays reflexd's
 * (a busy loop would be a CPU's only task whenever it held one). */
static void loop_sleep(uint64_t t0, uint64_t next_record, unsigned n, uint64_t duty_ns)
{
	uint64_t now = (uint64_t)now_ns();
	uint64_t wake = record_due_ns(t0, next_record + REFLEX_DEFAULT_FLUSH_THRESHOLD - 1, n);
	struct timespec at;

	if (wake > now + REFLEX_DEFAULT_MAX_BATCH_DELAY_US * 1000ULL)
		wake = now + REFLEX_DEFAULT_MAX_BATCH_DELAY_US * 1000ULL;
	if (wake > duty_ns)
		wake = duty_ns;
	if (wake <= now)
		return;
	at.tv_sec = (time_t)(wake / 1000000000ULL);
	at.tv_nsec = (long)(wake % 1000000000ULL);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
}

/* Runs `windows` windows of n flows in real time as reflexd's loop does, with
 * closing on records and batched writes (redesign) or not; returns 0 and the
 * sorted latencies in rig->act. */
static int latency_run(struct rig *rig, unsigned n, int windows, bool redesign)
{
	const uint64_t step = WINDOW_STEP_NS;
	uint64_t start = (uint64_t)now_ns(), t0 = (start / step + 1) * step;
	uint64_t next_window_end = t0 + WINDOW_LEN_NS, last_end = next_window_end + (uint64_t)(windows - 1) * step;
	uint64_t seq = 0, taken = 0;
	unsigned f = 0;
	struct sock_sample s;

	rig->act.n_flows = n;
	/* Records from t0 on: flow f at t0 + seq * period + f * period / n. */
	while (next_window_end <= last_end) {
		uint64_t now = (uint64_t)now_ns();

		rig->act.window_end = next_window_end;
		if (redesign && now >= next_window_end && rig->t.open_end != next_window_end)
			telemetry_window_open(&rig->t, next_window_end, &rig->q, &rig->q, on_window, rig);
		for (;;) {
			uint64_t ts = record_due_ns(t0, seq * n + f, n);

			if (ts > now)
				break;
			sample_of(f, seq, ts, &s);
			rig->act.taken_ns = now_ns();
			telemetry_on_sock_sample(&rig->t, &s);
			if (redesign && ++taken % DRAIN_FLUSH_RECORDS == 0)
				controller_flush(&rig->c); /* reflexd: inside a drain */
			if (++f == n) {
				f = 0;
				seq++;
			}
		}
		controller_flush(&rig->c); /* reflexd: after each drain */
		loop_sleep(t0, seq * n + f, n, redesign && rig->t.open_end != next_window_end ? next_window_end
											      : next_window_end + WINDOW_GRACE_NS);
		now = (uint64_t)now_ns();
		if (now >= next_window_end + WINDOW_GRACE_NS) {
			/* the pass decides the flows no record closed */
			rig->act.taken_ns = now_ns();
			telemetry_emit_windows(&rig->t, next_window_end, &rig->q, &rig->q, on_window, rig);
			controller_flush(&rig->c);
			next_window_end += step;
		}
	}
	qsort(rig->act.latency_ns, rig->act.n_latency, sizeof(double), cmp_double);
	qsort(rig->act.from_taken_ns, rig->act.n_latency, sizeof(double), cmp_double);
	return rig->act.failed ? -1 : 0;
}

static double pct(const double *sorted, unsigned n, double q)
{
	unsigned i = (unsigned)(n * q);

	return n ? sorted[i < n ? i : n - 1] : 0;
}

/* The calling thread at SCHED_FIFO priority (reflexd --rt-priority), or back at the
 * normal scheduler with 0. 0, or an errno. */
static int loop_priority(int priority)
{
	struct sched_param param = { .sched_priority = priority };

	return pthread_setschedparam(pthread_self(), priority ? SCHED_FIFO : SCHED_OTHER, &param);
}

struct latency_figures {
	double p50, p99, max, taken_p50, taken_p99, taken_max;
	unsigned decisions;
	unsigned long long on_record;
};

static int latency_once(bool redesign, struct latency_figures *out)
{
	struct rig rig;
	int status = 0;

	if (rig_init(&rig, LATENCY_FLOWS, LATENCY_FLOWS * LATENCY_WINDOWS, redesign)) {
		rig_free(&rig);
		return 1;
	}
	if (latency_run(&rig, LATENCY_FLOWS, LATENCY_WINDOWS, redesign))
		status = 1;
	out->p50 = pct(rig.act.latency_ns, rig.act.n_latency, 0.50);
	out->p99 = pct(rig.act.latency_ns, rig.act.n_latency, 0.99);
	out->max = pct(rig.act.latency_ns, rig.act.n_latency, 1.0);
	out->taken_p50 = pct(rig.act.from_taken_ns, rig.act.n_latency, 0.50);
	out->taken_p99 = pct(rig.act.from_taken_ns, rig.act.n_latency, 0.99);
	out->taken_max = pct(rig.act.from_taken_ns, rig.act.n_latency, 1.0);
	out->decisions = rig.act.n_latency;
	out->on_record = (unsigned long long)rig.t.windows_on_record;
	rig_free(&rig);
	return status;
}

static int cmp_figures_p99(const void *a, const void *b)
{
	double x = ((const struct latency_figures *)a)->p99, y = ((const struct latency_figures *)b)->p99;

	return (x > y) - (x < y);
}

/* The run of median p99 among n (sorted in place). */
static const struct latency_figures *median_run(struct latency_figures *runs, unsigned n)
{
	qsort(runs, n, sizeof(*runs), cmp_figures_p99);
	return &runs[n / 2];
}

static void latency_print(const char *design, const struct latency_figures *f, const struct latency_figures *runs,
			  unsigned n)
{
	printf("  %s: %u decisions, %llu windows closed by a record (the run of median p99 of %u)\n"
	       "    event -> in the map: p50 %7.3f ms, p99 %7.3f ms, max %7.3f ms\n"
	       "    taken -> in the map: p50 %7.3f ms, p99 %7.3f ms, max %7.3f ms\n    p99 of each run:",
	       design, f->decisions, f->on_record, n, f->p50 / 1e6, f->p99 / 1e6, f->max / 1e6, f->taken_p50 / 1e6,
	       f->taken_p99 / 1e6, f->taken_max / 1e6);
	for (unsigned i = 0; i < n; i++)
		printf(" %.3f", runs[i].p99 / 1e6);
	printf(" ms\n");
}

static int latency_header(void)
{
	printf("event -> decision in a BPF hash map, %d flows sampled every %llu ms in real time, heuristic policy, "
	       "%d windows\n  (event: a flow's first record at or after the window's end; until the write returns)\n",
	       LATENCY_FLOWS, SAMPLE_PERIOD_NS / 1000000, LATENCY_WINDOWS);
	return 0;
}

/* The designs, and reflexd's at the normal scheduler and at SCHED_FIFO, alternated
 * LATENCY_PAIRS times so that each sees the machine's load of the same moments. */
static int latency(void)
{
	struct latency_figures before[LATENCY_PAIRS], normal[LATENCY_PAIRS], fifo[LATENCY_PAIRS];
	const struct latency_figures *b, *a, *r = NULL;
	int status = 0, fifo_error = 0;
	unsigned i;

	for (i = 0; i < LATENCY_PAIRS; i++) {
		status |= latency_once(false, &before[i]);
		status |= latency_once(true, &normal[i]);
		if (fifo_error)
			continue;
		fifo_error = loop_priority(LATENCY_RT_PRIORITY);
		if (fifo_error)
			continue;
		status |= latency_once(true, &fifo[i]);
		loop_priority(0);
	}
	b = median_run(before, LATENCY_PAIRS);
	a = median_run(normal, LATENCY_PAIRS);
	latency_print("before: pass after the grace, a write per decision", b, before, LATENCY_PAIRS);
	latency_print("after: closed by the record, a batch every " DRAIN_FLUSH_TEXT " records", a, normal,
		      LATENCY_PAIRS);
	if (fifo_error) {
		printf("  after, the loop at SCHED_FIFO %d (reflexd --rt-priority): not measured: %s\n",
		       LATENCY_RT_PRIORITY, strerror(fifo_error));
	} else {
		r = median_run(fifo, LATENCY_PAIRS);
		latency_print("after, the loop at SCHED_FIFO " TEXT_OF(LATENCY_RT_PRIORITY) " (reflexd --rt-priority)",
			      r, fifo, LATENCY_PAIRS);
	}
	if (a->p50 > 0 && a->p99 > 0)
		printf("  after / before: p50 %.3f, p99 %.3f\n", a->p50 / b->p50, a->p99 / b->p99);
	if (r && a->p99 > 0)
		printf("  SCHED_FIFO / normal scheduler: p50 %.3f, p99 %.3f\n", r->p50 / a->p50, r->p99 / a->p99);
	return status;
}

/* --- scale ---------------------------------------------------------------- */

static long status_kb(const char *field)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	size_t len = strlen(field);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && sscanf(line + len, ": %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The kernel's charge for a map (what bpftool map show prints as memlock). */
static long map_memlock(int fd)
{
	char path[64], line[256];
	long bytes = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %ld", &bytes) == 1)
			break;
	fclose(f);
	return bytes;
}

/* The BPF flow maps --max-flows sizes, created as the loader does (types and value
 * sizes of tc_flows, sock_flows, cwnd_decisions): their memlock in MB. */
static double flow_maps_mb(unsigned flows)
{
	const struct { enum bpf_map_type type; unsigned value; } maps[] = {
		{ BPF_MAP_TYPE_LRU_PERCPU_HASH, sizeof(struct tc_flow) },
		{ BPF_MAP_TYPE_LRU_HASH, sizeof(struct sock_flow) },
		{ BPF_MAP_TYPE_HASH, sizeof(struct cwnd_decision) },
	};
	double total = 0;

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int fd = bpf_map_create(maps[i].type, NULL, sizeof(struct flow_key), maps[i].value, flows, NULL);

		if (fd < 0)
			return -1;
		total += map_memlock(fd) / 1048576.0;
		close(fd);
	}
	return total;
}

/* One window pass of flows flows (every record in, then the pass): run in a fresh
 * process (bench_pipeline --scale N). */
static int scale_one(unsigned flows)
{
	struct rig rig;
	uint64_t t0 = 1000 * WINDOW_STEP_NS, seq = 0;
	long before = status_kb("VmRSS");
	double cpu[4];
	struct sock_sample s;

	if (rig_init(&rig, flows, 0, true))
		return 1;
	for (int w = 0; w < 6; w++) {
		struct timespec a, b;

		for (uint64_t ts = t0 + w * WINDOW_STEP_NS; ts < t0 + (w + 1) * WINDOW_STEP_NS; ts += SAMPLE_PERIOD_NS) {
			for (unsigned f = 0; f < flows; f++) {
				sample_of(f, seq, ts + f, &s);
				telemetry_on_sock_sample(&rig.t, &s);
			}
			seq++;
		}
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
		telemetry_emit_windows(&rig.t, t0 + (w + 1) * WINDOW_STEP_NS, &rig.q, &rig.q, on_window, &rig);
		controller_flush(&rig.c);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
		if (w >= 2) /* past the first decisions */
			cpu[w - 2] = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	}
	long rss = status_kb("VmRSS");

	printf("  %6u flows, %6u tracked: RSS %5.1f MB (+%5.1f MB, %4.0f bytes a flow; peak %5.1f MB), "
	       "window pass %6.2f ms CPU (%3.0f ns a flow), BPF flow maps %5.1f MB memlock\n",
	       flows, rig.t.flow_count, rss / 1024.0, (rss - before) / 1024.0, (rss - before) * 1024.0 / flows,
	       status_kb("VmHWM") / 1024.0, median(cpu, 4) / 1e6, median(cpu, 4) / flows, flow_maps_mb(flows));
	rig_free(&rig);
	return 0;
}

static int scale(const char *self)
{
	static const char *const counts[] = { "1000", "10000", "100000" };
	int status = 0;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		pid_t pid;
		int st;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			execl(self, self, "--scale", counts[i], (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			status = 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 40;
	int status = 0;

	if (argc > 2 && !strcmp(argv[1], "--scale"))
		return scale_one((unsigned)atoi(argv[2]));
	if (argc > 1 && !strcmp(argv[1], "--rings"))
		return rings_rss();
	if (argc > 1 && !strcmp(argv[1], "--latency"))
		return latency_header() | latency();
	if (rounds < 1)
		rounds = 40;
	printf("ring buffer -> telemetry_on_sock_sample, one thread, %d rounds of %d records\n", rounds,
	       RECORDS_PER_ROUND);
	for (unsigned flows = 1000; flows <= 100000; flows *= 10)
		for (int c = 0; c < 2; c++)
			status |= throughput(flows, rounds, c ? CONSUMER_LIBBPF : CONSUMER_REFLEX);
	status |= latency_header() | latency();
	printf("ring memory\n");
	status |= rings_rss();
	printf("reflexd's flow state against flow count (--max-flows = the count; a fresh process each)\n");
	status |= scale("/proc/self/exe");
	return status;
}
