/*
 * reflexd's telemetry pipeline, off the wire:
 *  - consumer throughput: a BPF program (pipeline_producer.bpf.c, BPF_PROG_TEST_RUN)
 *    fills a ring buffer of sock_events' type and size with sock_sample records, and
 *    reflexd's consumer (libbpf ring_buffer__consume into telemetry_on_sock_sample,
 *    as reflexd's on_sock_record) drains it on this thread: events per second of
 *    consume time, median over rounds, and records the producer could not reserve;
 *  - decision latency at 10k flows: from the moment a window is due (reflexd's loop
 *    emits windows at window end + grace) to each flow's decision being in a BPF hash
 *    map of cwnd_decisions' layout, through the real controller (heuristic policy);
 *    the wait for the window itself (WINDOW_STEP_NS + grace) comes on top by design;
 *  - scale: resident memory and CPU time of one window step against flow count, each
 *    count in a fresh child process.
 * Usage: bench_pipeline [ROUNDS]   (default 40)
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "lib/feature_schema.h"
#include "pipeline_producer.skel.h"
#include "reflexd/actuator.h"
#include "reflexd/controller.h"
#include "reflexd/telemetry.h"

#define RECORDS_PER_ROUND 24000 /* under the 4 MiB ring's ~29k sock_sample records */
#define LATENCY_FLOWS 10000
#define LATENCY_WINDOWS 8
#define MAX_DECISIONS (LATENCY_FLOWS * LATENCY_WINDOWS)
#define WINDOW_GRACE_NS (20ULL * 1000 * 1000) /* reflexd.c's */

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

static int throughput(unsigned flows, int rounds)
{
	struct pipeline_producer_bpf *skel = pipeline_producer_bpf__open_and_load();
	struct ring_buffer *ring = NULL;
	struct telemetry t;
	double *rate = calloc((size_t)rounds, sizeof(*rate));
	uint64_t consumed = 0;
	int ret = 1;

	telemetry_init(&t, "bench", NULL, NULL);
	if (!skel || !rate) {
		fprintf(stderr, "bench_pipeline: cannot load the producer: %s\n", strerror(errno));
		goto out;
	}
	skel->bss->flows = flows;
	ring = ring_buffer__new(bpf_map__fd(skel->maps.events), on_sock_record, &t, NULL);
	if (!ring)
		goto out;
	for (int r = 0; r < rounds; r++) {
		double t0, t1;
		int n;

		if (produce(skel, RECORDS_PER_ROUND))
			goto out;
		t0 = now_ns();
		n = ring_buffer__consume(ring);
		t1 = now_ns();
		if (n < 0)
			goto out;
		consumed += (uint64_t)n;
		rate[r] = n / ((t1 - t0) / 1e9);
	}
	struct result res = summarize(rate, rounds);
	printf("  %6u flows: %5.2f M events/s (min %.2f, max %.2f), %llu consumed of %llu produced, "
	       "%llu lost, %u flows tracked\n",
	       flows, res.median / 1e6, res.min / 1e6, res.max / 1e6, (unsigned long long)consumed,
	       (unsigned long long)skel->bss->produced, (unsigned long long)skel->bss->lost, t.flow_count);
	ret = 0;
out:
	ring_buffer__free(ring);
	pipeline_producer_bpf__destroy(skel);
	telemetry_free(&t);
	free(rate);
	return ret;
}

/* --- the controller on a real map --------------------------------------------- */

struct map_actuator {
	struct actuator base; /* first: the callbacks cast back */
	int fd;
	double window_due_ns; /* when this step's windows were due */
	double *latency_ns;
	unsigned n_latency;
};

static int map_decide(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct map_actuator *m = (struct map_actuator *)a;
	struct cwnd_decision d = { .cwnd_target = cwnd_target, .decided_ns = decided_ns };
	int ret = cwnd_target ? bpf_map_update_elem(m->fd, key, &d, BPF_ANY) : bpf_map_delete_elem(m->fd, key);

	if (m->n_latency < MAX_DECISIONS)
		m->latency_ns[m->n_latency++] = now_ns() - m->window_due_ns;
	return ret && errno != ENOENT ? -errno : 0;
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

static int rig_init(struct rig *rig)
{
	const struct hysteresis_params hp = HYSTERESIS_DEFAULTS;
	struct controller_opts o = { .policy = CWND_POLICY_HEURISTIC, .hysteresis = hp };
	struct reflex_config cfg = { .flush_threshold = REFLEX_DEFAULT_FLUSH_THRESHOLD,
				     .max_batch_delay_us = REFLEX_DEFAULT_MAX_BATCH_DELAY_US };

	memset(rig, 0, sizeof(*rig));
	rig->act.base = (struct actuator){ .name = "bench-map", .flows = true, .decide = map_decide,
					   .beat = map_beat, .configure = map_configure };
	rig->act.fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_decisions", sizeof(struct flow_key),
				     sizeof(struct cwnd_decision), REFLEX_MAX_FLOWS, NULL);
	rig->act.latency_ns = calloc(MAX_DECISIONS, sizeof(double));
	if (rig->act.fd < 0 || !rig->act.latency_ns) {
		fprintf(stderr, "bench_pipeline: cannot create the decision map: %s\n", strerror(errno));
		return -1;
	}
	telemetry_init(&rig->t, "bench", flow_gone, rig);
	return controller_init(&rig->c, &o, &rig->act.base, &cfg);
}

static void rig_free(struct rig *rig)
{
	telemetry_free(&rig->t);
	controller_free(&rig->c);
	close(rig->act.fd);
	free(rig->act.latency_ns);
}

/* One window step of records for flows 0..n-1: an ACK sample every 10 ms each, as
 * sockops sends them at the default sample interval (10 Mbit/s, 1 ms RTT). */
static void feed_step(struct rig *rig, unsigned n, uint64_t step_start, uint64_t *seq)
{
	struct sock_sample s = { .event = SOCK_EVENT_RTT, .state = 1, .mss_cache = 1448, .snd_cwnd = 10,
				 .rtt_min_us = 900 };

	s.key.family = 2;
	s.key.proto = 6;
	s.key.saddr[0] = 0x0100000a;
	for (uint64_t ts = step_start; ts < step_start + WINDOW_STEP_NS; ts += 10 * 1000 * 1000) {
		(*seq)++;
		for (unsigned f = 0; f < n; f++) {
			s.ts_ns = ts + f;
			s.cookie = f + 1;
			s.key.daddr[0] = 0x0200000a + ((f >> 16) << 24);
			s.key.sport = 1024 + (uint16_t)((f & 0xffff) % 60000);
			s.key.dport = 5201 + (uint16_t)((f & 0xffff) / 60000);
			s.mrtt_us = s.srtt_us = 1000 + f % 500;
			s.bytes_acked = *seq * 12500;
			s.delivered = (uint32_t)(*seq * 9);
			telemetry_on_sock_sample(&rig->t, &s);
		}
	}
}

/* Emits the windows ending at end as reflexd's loop does; returns the thread CPU time. */
static double step_windows(struct rig *rig, uint64_t end)
{
	struct timespec a, b;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	rig->act.window_due_ns = now_ns();
	telemetry_emit_windows(&rig->t, end, &rig->q, &rig->q, on_window, rig);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	return (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
}

static int latency(void)
{
	struct rig rig;
	uint64_t seq = 0, t0 = 1000 * WINDOW_STEP_NS;

	if (rig_init(&rig))
		return 1;
	for (int w = 0; w < LATENCY_WINDOWS; w++) {
		feed_step(&rig, LATENCY_FLOWS, t0 + w * WINDOW_STEP_NS, &seq);
		step_windows(&rig, t0 + (w + 1) * WINDOW_STEP_NS);
	}
	if (!rig.act.n_latency) {
		printf("  no decision taken\n");
	} else {
		double *v = rig.act.latency_ns;
		unsigned n = rig.act.n_latency;

		qsort(v, n, sizeof(*v), cmp_double);
		printf("  %u flows, %u decisions: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", LATENCY_FLOWS, n,
		       v[n / 2] / 1e6, v[(unsigned)(n * 0.99)] / 1e6, v[n - 1] / 1e6);
	}
	rig_free(&rig);
	return 0;
}

/* --- scale ---------------------------------------------------------------- */

static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int scale_one(unsigned flows)
{
	struct rig rig;
	uint64_t seq = 0, t0 = 1000 * WINDOW_STEP_NS;
	long before = rss_kb();
	double cpu[4];

	if (rig_init(&rig))
		return 1;
	for (int w = 0; w < 4; w++) {
		feed_step(&rig, flows, t0 + w * WINDOW_STEP_NS, &seq);
		cpu[w] = step_windows(&rig, t0 + (w + 1) * WINDOW_STEP_NS);
	}
	printf("  %6u flows asked, %5u tracked: RSS %6.1f MB (+%.1f MB over the empty process), "
	       "window step %.2f ms CPU (median of 4)\n",
	       flows, rig.t.flow_count, rss_kb() / 1024.0, (rss_kb() - before) / 1024.0, median(cpu, 4) / 1e6);
	fflush(stdout);
	rig_free(&rig);
	return 0;
}

/* A fresh process per count, so one count's heap does not carry into the next. */
static int scale(void)
{
	static const unsigned counts[] = { 1000, 10000, 100000 };
	int status = 0;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		pid_t pid;
		int st;

		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(scale_one(counts[i]));
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			status = 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 40;
	int status = 0;

	if (rounds < 1)
		rounds = 40;
	printf("ring buffer -> telemetry_on_sock_sample, one thread, %d rounds of %d records\n", rounds,
	       RECORDS_PER_ROUND);
	status |= throughput(1000, rounds);
	status |= throughput(10000, rounds);
	printf("window due -> decision in a BPF hash map (heuristic policy), %d windows\n", LATENCY_WINDOWS);
	status |= latency();
	printf("reflexd's flow table against flow count (at most %d flows tracked)\n", REFLEX_MAX_FLOWS);
	status |= scale();
	return status;
}
