/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * trace-link: a trace-driven bottleneck for the netns lab, after mahimahi's link shell.
 * Packets of one direction (NFQUEUE --queue) wait in a droptail queue and leave only at
 * the delivery opportunities of a mahimahi trace (lib/trace.h: each line is a millisecond
 * at which TRACE_MTU_BYTES may leave; the trace loops). An opportunity's bytes serve the
 * head packet and, if left over, the next ones; a packet larger than what is left waits
 * for the next opportunities (mahimahi's partial delivery); an opportunity that finds the
 * queue empty is lost. After the link, every packet is held --delay-ms more (propagation);
 * the other direction (--reverse-queue) gets that delay only. Random loss (--loss-pct,
 * seeded) drops packets of the traced direction as they arrive.
 *
 * Only metadata and the first bytes travel to userspace; the kernel keeps the packets.
 * Departures keep arrival order, so one NFQNL_MSG_VERDICT_BATCH accepts every due packet
 * of a queue; drops get their own NF_DROP verdict at arrival. A timerfd armed for the
 * next event (an opportunity while packets wait, a release, the end of a stats bin)
 * wakes the loop; nothing spins.
 *
 * The trace's clock starts with the first packet of the traced direction (as mahimahi's
 * starts with the shell's application), so every run meets the segment from its start.
 *
 * --stats FILE writes one CSV row per --bin-ms: the bytes the trace offered and the bytes
 * the link delivered in that bin, and the packets the buffer and the random loss dropped.
 *
 * Without --trace it is the lab's plain delay line (this kernel has no netem): every
 * packet of both queues is held --delay-ms, with only its id in userspace
 * (NFQNL_COPY_META).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "lib/trace.h"
#include "lab_args.h"
#include "nfq_common.h"

#define PROG "trace-link"
#define MAX_DELAY_MS 60000.0
#define DEFAULT_MAX_HELD 65536u
#define MAX_MAX_HELD (1u << 22)
#define MAX_READS_PER_WAKEUP 256
#define RX_BUF_BYTES 65536
/* Enough of each packet for an IPv6 header; the length comes from NFQA_CAP_LEN. */
#define COPY_RANGE 64
#define NO_QUEUE (-1)
#define NS_PER_MS 1000000ull

struct held_packet {
	uint32_t id;
	uint32_t bytes;      /* IP packet length */
	uint32_t bytes_left; /* in the link: not yet served by an opportunity */
	uint64_t release_ns; /* after the link: when the delay ends */
};

/* Ring buffer of packets in arrival order. */
struct fifo {
	struct held_packet *slots;
	uint32_t capacity;
	uint32_t head;
	uint32_t count;
};

struct bin_stats {
	uint64_t delivered_bytes;
	uint64_t buffer_drops;
	uint64_t random_drops;
};

struct totals {
	uint64_t received;
	uint64_t delivered;
	uint64_t buffer_drops;
	uint64_t random_drops;
	uint64_t overflowed;
	uint64_t netlink_overruns;
	uint64_t verdict_errors;
};

struct options {
	const char *trace_path;
	int queue_num;
	int reverse_queue_num;
	uint64_t delay_ns;
	uint64_t buffer_bytes;   /* 0 = no byte limit */
	uint64_t buffer_packets; /* 0 = no packet limit */
	uint32_t loss_ppm;
	uint64_t seed;
	uint64_t offset_ms;
	uint64_t bin_ms;
	const char *stats_path;
	uint64_t capacity_ms; /* --capacity: print the offered rate and exit */
	uint32_t max_held;
};

struct link {
	struct options opts;
	struct trace trace;
	struct trace_cursor cursor;  /* next opportunity, valid while the queue holds packets */
	uint32_t credit_left;        /* of the opportunity being used */
	uint64_t start_ns;           /* the trace's clock: 0 until the first traced packet */
	uint64_t start_unix_ms;      /* the same instant on the wall clock, for the stats */
	struct fifo queue;           /* waiting for an opportunity */
	uint64_t queue_bytes;
	struct fifo sent;            /* through the link, held for the delay */
	struct fifo reverse;         /* the other direction, held for the delay */
	uint64_t rng;
	struct mnl_socket *nl;
	uint32_t portid;
	int timer_fd;
	int signal_fd;
	uint64_t timer_ns;
	FILE *stats;
	uint64_t bin_index;
	struct bin_stats bin;
	struct totals totals;
	char *rx_buf;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " --trace FILE [--queue NUM] [--reverse-queue NUM] [--delay-ms MS]\n"
		"                  [--buffer-bytes N | --buffer-packets N] [--loss-pct P] [--seed S]\n"
		"                  [--offset-ms MS] [--stats FILE] [--bin-ms MS] [--max-held N]\n"
		"       " PROG " --trace FILE --capacity MS [--offset-ms MS] [--bin-ms MS]\n"
		"       " PROG " --delay-ms MS [--queue NUM] [--reverse-queue NUM] [--max-held N]\n"
		"\n"
		"A trace-driven link: packets of NFQUEUE queue NUM leave at the delivery\n"
		"opportunities of a mahimahi trace (plain or gzip), through a droptail buffer.\n"
		"Without --trace, a fixed delay line: every packet is held MS ms, in arrival order.\n"
		"\n"
		"  -t, --trace FILE        the trace: one line per 1500-byte opportunity, in ms\n"
		"  -q, --queue NUM         queue of the traced direction (default 1)\n"
		"  -r, --reverse-queue NUM queue of the other direction: delay only (default none)\n"
		"  -d, --delay-ms MS       one-way delay added to each direction, 0..%.0f\n"
		"  -b, --buffer-bytes N    droptail buffer in bytes (default: no limit)\n"
		"  -p, --buffer-packets N  droptail buffer in packets (default: no limit)\n"
		"  -l, --loss-pct P        random loss of the traced direction, 0..100 %%\n"
		"  -s, --seed S            seed of the random loss (default 1): same seed, same drops\n"
		"  -o, --offset-ms MS      start the trace MS ms in (a segment; loops as usual); its\n"
		"                          clock starts at the first packet of the traced direction\n"
		"  -S, --stats FILE        CSV per bin: t_ms,unix_ms,offered_bytes,delivered_bytes,\n"
		"                          buffer_drops,random_drops (t_ms from the start, unix_ms\n"
		"                          the bin's start on the wall clock)\n"
		"  -B, --bin-ms MS         stats bin (default 1000)\n"
		"  -c, --capacity MS       print the offered rate per bin over MS ms (CSV t_ms,mbit)\n"
		"                          and exit; no queue is bound\n"
		"  -m, --max-held N        cap on packets held per direction after the link, 1..%u\n"
		"                          (default %u); beyond it they are accepted at once\n"
		"  -h, --help              this text\n"
		"\n"
		"SIGUSR1 prints the counters to stderr; SIGTERM/SIGINT accept every held packet\n"
		"and exit 0. Needs CAP_NET_ADMIN in the network namespace it runs in.\n",
		MAX_DELAY_MS, MAX_MAX_HELD, DEFAULT_MAX_HELD);
}

static int parse_double(const char *arg, const char *flag, double max, double *out)
{
	char *end = NULL;
	double value;

	errno = 0;
	value = strtod(arg, &end);
	if (errno || end == arg || *end != '\0' || !isfinite(value) || value < 0.0 || value > max) {
		fprintf(stderr, PROG ": %s: '%s' is not a number in 0..%g\n", flag, arg, max);
		return -1;
	}
	*out = value;
	return 0;
}

/* Returns 0 to run, 1 for --help (exit 0), -1 on a usage error (exit 2). */
static int parse_args(int argc, char **argv, struct options *opts)
{
	static const struct option long_opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "queue", required_argument, NULL, 'q' },
		{ "reverse-queue", required_argument, NULL, 'r' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "buffer-bytes", required_argument, NULL, 'b' },
		{ "buffer-packets", required_argument, NULL, 'p' },
		{ "loss-pct", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "offset-ms", required_argument, NULL, 'o' },
		{ "stats", required_argument, NULL, 'S' },
		{ "bin-ms", required_argument, NULL, 'B' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "max-held", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t value;
	double number;
	bool have_delay = false;
	int opt;

	*opts = (struct options){ .queue_num = 1, .reverse_queue_num = NO_QUEUE, .seed = 1,
				  .bin_ms = 1000, .max_held = DEFAULT_MAX_HELD };
	while ((opt = getopt_long(argc, argv, "t:q:r:d:b:p:l:s:o:S:B:c:m:h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			opts->trace_path = optarg;
			break;
		case 'q':
		case 'r':
			if (lab_parse_u64(PROG, optarg, opt == 'q' ? "--queue" : "--reverse-queue", 0, UINT16_MAX,
					  &value))
				return -1;
			*(opt == 'q' ? &opts->queue_num : &opts->reverse_queue_num) = (int)value;
			break;
		case 'd':
			if (parse_double(optarg, "--delay-ms", MAX_DELAY_MS, &number))
				return -1;
			/* Microsecond resolution is far below the timer's and the scheduler's jitter. */
			opts->delay_ns = (uint64_t)llround(number * 1000.0) * 1000u;
			have_delay = true;
			break;
		case 'b':
		case 'p':
			if (lab_parse_u64(PROG, optarg, opt == 'b' ? "--buffer-bytes" : "--buffer-packets", 1,
					  1ull << 40, &value))
				return -1;
			*(opt == 'b' ? &opts->buffer_bytes : &opts->buffer_packets) = value;
			break;
		case 'l':
			if (parse_double(optarg, "--loss-pct", 100.0, &number))
				return -1;
			opts->loss_ppm = (uint32_t)llround(number * 10000.0);
			break;
		case 's':
			if (lab_parse_u64(PROG, optarg, "--seed", 0, UINT64_MAX, &opts->seed))
				return -1;
			break;
		case 'o':
			if (lab_parse_u64(PROG, optarg, "--offset-ms", 0, TRACE_MAX_MS, &opts->offset_ms))
				return -1;
			break;
		case 'S':
			opts->stats_path = optarg;
			break;
		case 'B':
			if (lab_parse_u64(PROG, optarg, "--bin-ms", 1, 3600000, &opts->bin_ms))
				return -1;
			break;
		case 'c':
			if (lab_parse_u64(PROG, optarg, "--capacity", 1, TRACE_MAX_MS, &opts->capacity_ms))
				return -1;
			break;
		case 'm':
			if (lab_parse_u64(PROG, optarg, "--max-held", 1, MAX_MAX_HELD, &value))
				return -1;
			opts->max_held = (uint32_t)value;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, PROG ": see --help\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!opts->trace_path && !have_delay) {
		fprintf(stderr, PROG ": --trace or --delay-ms is required (see --help)\n");
		return -1;
	}
	if (!opts->trace_path && (opts->buffer_bytes || opts->buffer_packets || opts->loss_ppm ||
				  opts->offset_ms || opts->stats_path || opts->capacity_ms)) {
		fprintf(stderr, PROG ": buffer, loss, offset, stats and capacity need --trace\n");
		return -1;
	}
	if (opts->buffer_bytes && opts->buffer_packets) {
		fprintf(stderr, PROG ": --buffer-bytes and --buffer-packets exclude each other\n");
		return -1;
	}
	if (opts->reverse_queue_num == opts->queue_num) {
		fprintf(stderr, PROG ": --reverse-queue must differ from --queue\n");
		return -1;
	}
	return 0;
}

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* xorshift64*: a fixed sequence per seed, so a run's drops repeat with its seed. */
static uint64_t next_random(struct link *l)
{
	l->rng ^= l->rng >> 12;
	l->rng ^= l->rng << 25;
	l->rng ^= l->rng >> 27;
	return l->rng * 0x2545F4914F6CDD1Dull;
}

/* --capacity: offered Mbit/s per bin, from the trace alone. */
static void print_capacity(const struct link *l)
{
	const struct options *o = &l->opts;

	printf("t_ms,mbit\n");
	for (uint64_t t = 0; t < o->capacity_ms; t += o->bin_ms) {
		uint64_t end = t + o->bin_ms < o->capacity_ms ? t + o->bin_ms : o->capacity_ms;
		uint64_t n = trace_count(&l->trace, o->offset_ms + t, o->offset_ms + end);

		printf("%" PRIu64 ",%.3f\n", t, (double)n * TRACE_MTU_BYTES * 8 / 1e3 / (double)(end - t));
	}
}

/* --- fifos ------------------------------------------------------------------------- */

static int fifo_init(struct fifo *f, uint32_t capacity)
{
	f->slots = calloc(capacity, sizeof(*f->slots));
	f->capacity = capacity;
	return f->slots ? 0 : -1;
}

static struct held_packet *fifo_head(struct fifo *f)
{
	return f->count ? &f->slots[f->head] : NULL;
}

static void fifo_pop(struct fifo *f)
{
	f->head = (f->head + 1) % f->capacity;
	f->count--;
}

static int fifo_push(struct fifo *f, uint32_t id, uint32_t bytes, uint64_t release_ns)
{
	struct held_packet *slot;

	if (f->count == f->capacity)
		return -1;
	slot = &f->slots[(f->head + f->count) % f->capacity];
	*slot = (struct held_packet){ .id = id, .bytes = bytes, .bytes_left = bytes,
				      .release_ns = release_ns };
	f->count++;
	return 0;
}

/* --- verdicts ------------------------------------------------------------------------ */

static int send_verdict(struct link *l, int msg_type, uint16_t queue, uint32_t id, int verdict)
{
	return nfq_send_verdict(PROG, l->nl, msg_type, queue, id, verdict);
}

/* Accept every packet of f due by now_ns (arrival order) with one batch verdict. */
static int release_due(struct link *l, struct fifo *f, uint16_t queue, uint64_t now_ns)
{
	struct held_packet *p;
	uint32_t last_id = 0;
	bool any = false;

	while ((p = fifo_head(f)) && p->release_ns <= now_ns) {
		last_id = p->id;
		any = true;
		fifo_pop(f);
	}
	return any ? send_verdict(l, NFQNL_MSG_VERDICT_BATCH, queue, last_id, NF_ACCEPT) : 0;
}

/* --- the link ---------------------------------------------------------------------- */

static uint64_t opportunity_ns(const struct link *l)
{
	return l->start_ns + (trace_cursor_ms(&l->trace, &l->cursor) - l->opts.offset_ms) * NS_PER_MS;
}

static void close_bins(struct link *l, uint64_t now_ns);

/* Positions in the schedule, not times: several opportunities share a millisecond. */
static bool cursor_before(const struct trace_cursor *a, const struct trace_cursor *b)
{
	return a->base_ms < b->base_ms || (a->base_ms == b->base_ms && a->index < b->index);
}

/* A packet leaves the link at at_ns: on to the delay, or out now if that is full. */
static int depart(struct link *l, const struct held_packet *p, uint64_t at_ns)
{
	close_bins(l, at_ns);
	l->bin.delivered_bytes += p->bytes;
	l->totals.delivered++;
	if (fifo_push(&l->sent, p->id, p->bytes, at_ns + l->opts.delay_ns) == 0)
		return 0;
	l->totals.overflowed++;
	return send_verdict(l, NFQNL_MSG_VERDICT, (uint16_t)l->opts.queue_num, p->id, NF_ACCEPT);
}

/* Use every opportunity up to now_ns while packets wait. */
static int serve(struct link *l, uint64_t now_ns)
{
	struct held_packet *p;

	while ((p = fifo_head(&l->queue)) && opportunity_ns(l) <= now_ns) {
		uint64_t at_ns = opportunity_ns(l);
		struct held_packet done;

		if (l->credit_left == 0)
			l->credit_left = TRACE_MTU_BYTES;
		if (p->bytes_left > l->credit_left) {
			p->bytes_left -= l->credit_left;
			l->credit_left = 0;
			trace_advance(&l->trace, &l->cursor);
			continue;
		}
		l->credit_left -= p->bytes_left;
		done = *p;
		l->queue_bytes -= done.bytes;
		fifo_pop(&l->queue);
		if (depart(l, &done, at_ns) < 0)
			return -1;
		if (l->credit_left == 0)
			trace_advance(&l->trace, &l->cursor);
	}
	/* Left-over bytes of an opportunity nobody was there to use are lost. */
	if (!fifo_head(&l->queue) && l->credit_left) {
		l->credit_left = 0;
		trace_advance(&l->trace, &l->cursor);
	}
	return 0;
}

static bool buffer_full(const struct link *l, uint32_t bytes)
{
	if (l->opts.buffer_packets && l->queue.count >= l->opts.buffer_packets)
		return true;
	if (l->opts.buffer_bytes && l->queue_bytes + bytes > l->opts.buffer_bytes)
		return true;
	return l->queue.count == l->queue.capacity;
}

static int arrive_traced(struct link *l, uint32_t id, uint32_t bytes, uint64_t now_ns)
{
	uint16_t queue = (uint16_t)l->opts.queue_num;

	l->totals.received++;
	if (l->start_ns == 0) {
		/* Like an application started under mahimahi's link shell, the first packet
		 * meets the segment's first millisecond, however long the lab took to start. */
		l->start_ns = now_ns;
		l->start_unix_ms = realtime_ms();
		trace_seek(&l->trace, l->opts.offset_ms, &l->cursor);
	}
	close_bins(l, now_ns);
	if (l->opts.loss_ppm && next_random(l) % 1000000u < l->opts.loss_ppm) {
		l->bin.random_drops++;
		l->totals.random_drops++;
		return send_verdict(l, NFQNL_MSG_VERDICT, queue, id, NF_DROP);
	}
	if (buffer_full(l, bytes)) {
		l->bin.buffer_drops++;
		l->totals.buffer_drops++;
		return send_verdict(l, NFQNL_MSG_VERDICT, queue, id, NF_DROP);
	}
	if (l->queue.count == 0) {
		/* Opportunities that passed while the queue was empty are gone; those of this
		 * millisecond that are left may serve it, but never one already used. */
		uint64_t trace_ms = l->opts.offset_ms + (now_ns - l->start_ns) / NS_PER_MS;
		struct trace_cursor now_cursor;

		trace_seek(&l->trace, trace_ms, &now_cursor);
		if (cursor_before(&l->cursor, &now_cursor))
			l->cursor = now_cursor;
		l->credit_left = 0;
	}
	fifo_push(&l->queue, id, bytes, 0);
	l->queue_bytes += bytes;
	return 0;
}

/* A packet that only waits out the delay in f: the other direction, or every packet
 * without a trace. */
static int arrive_delayed(struct link *l, struct fifo *f, uint16_t queue, uint32_t id, uint64_t now_ns)
{
	if (queue == l->opts.queue_num)
		l->totals.received++;
	if (l->opts.delay_ns && fifo_push(f, id, 0, now_ns + l->opts.delay_ns) == 0)
		return 0;
	if (l->opts.delay_ns)
		l->totals.overflowed++;
	return send_verdict(l, NFQNL_MSG_VERDICT, queue, id, NF_ACCEPT);
}

/* --- stats --------------------------------------------------------------------------- */

static void write_bin(struct link *l)
{
	uint64_t from = l->bin_index * l->opts.bin_ms;
	uint64_t offered = trace_count(&l->trace, l->opts.offset_ms + from,
				       l->opts.offset_ms + from + l->opts.bin_ms);

	fprintf(l->stats, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
		from, l->start_unix_ms + from, offered * TRACE_MTU_BYTES, l->bin.delivered_bytes, l->bin.buffer_drops,
		l->bin.random_drops);
	fflush(l->stats);
	l->bin = (struct bin_stats){ 0 };
	l->bin_index++;
}

/* Write every bin that ended by now_ns. */
static void close_bins(struct link *l, uint64_t now_ns)
{
	if (!l->stats || l->start_ns == 0)
		return;
	while (l->start_ns + (l->bin_index + 1) * l->opts.bin_ms * NS_PER_MS <= now_ns)
		write_bin(l);
}

/* --- netlink ------------------------------------------------------------------------- */

static uint32_t packet_bytes(struct nlattr **attr)
{
	if (attr[NFQA_CAP_LEN])
		return ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]));
	if (attr[NFQA_PAYLOAD])
		return mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	return TRACE_MTU_BYTES;
}

static int on_queue_msg(const struct nlmsghdr *nlh, void *data)
{
	struct link *l = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *packet_hdr;
	struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	uint16_t queue = ntohs(nfg->res_id);
	uint32_t id;
	int ret;

	if (nfq_nlmsg_parse(nlh, attr) < 0) {
		fprintf(stderr, PROG ": cannot parse a queue message: %s\n", strerror(errno));
		return MNL_CB_ERROR;
	}
	if (!attr[NFQA_PACKET_HDR]) {
		fprintf(stderr, PROG ": queue message without a packet header, ignored\n");
		return MNL_CB_OK;
	}
	packet_hdr = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(packet_hdr->packet_id);
	if (queue == l->opts.queue_num && l->opts.trace_path)
		ret = arrive_traced(l, id, packet_bytes(attr), lab_monotonic_ns());
	else if (queue == l->opts.queue_num)
		ret = arrive_delayed(l, &l->sent, queue, id, lab_monotonic_ns());
	else
		ret = arrive_delayed(l, &l->reverse, queue, id, lab_monotonic_ns());
	return ret < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* The first COPY_RANGE bytes of each packet (NFQA_CAP_LEN has its length), or only its
 * id without a trace. Kernel-side room above ours, so drops are decided (and counted)
 * here. */
static int bind_queue(struct link *l, uint16_t queue)
{
	const struct nfq_bind_params params = {
		.queue = queue,
		.copy_mode = l->opts.trace_path ? NFQNL_COPY_PACKET : NFQNL_COPY_META,
		.copy_range = COPY_RANGE,
		.qmaxlen = 2 * l->opts.max_held + MAX_READS_PER_WAKEUP,
	};

	return nfq_bind_queue(PROG, l->nl, l->portid, &params, l->rx_buf, RX_BUF_BYTES, on_queue_msg, l);
}

static void print_totals(const struct link *l)
{
	const struct totals *t = &l->totals;

	fprintf(stderr,
		PROG ": received %" PRIu64 " delivered %" PRIu64 " queued %" PRIu32
		" buffer_drops %" PRIu64 " random_drops %" PRIu64 " overflowed %" PRIu64
		" netlink_overruns %" PRIu64 " verdict_errors %" PRIu64 "\n",
		t->received, t->delivered, l->queue.count, t->buffer_drops, t->random_drops,
		t->overflowed, t->netlink_overruns, t->verdict_errors);
}

static void print_totals_cb(const void *data)
{
	print_totals(data);
}

static int receive_packets(struct link *l)
{
	for (int i = 0; i < MAX_READS_PER_WAKEUP; i++) {
		ssize_t len = recv(mnl_socket_get_fd(l->nl), l->rx_buf, RX_BUF_BYTES, MSG_DONTWAIT);

		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ENOBUFS) {
				/* Fail-open made the kernel accept what did not fit: not fatal. */
				l->totals.netlink_overruns++;
				continue;
			}
			fprintf(stderr, PROG ": reading the queue: %s\n", strerror(errno));
			return -1;
		}
		/* Serve first: a packet arriving now must not use an earlier opportunity. */
		if (serve(l, lab_monotonic_ns()) < 0)
			return -1;
		if (mnl_cb_run(l->rx_buf, (size_t)len, 0, l->portid, on_queue_msg, l) < 0) {
			if (l->totals.verdict_errors++ == 0)
				fprintf(stderr, PROG ": kernel rejected a message: %s (counted)\n",
					strerror(errno));
		}
	}
	return 0;
}

/* The earliest of: the next opportunity while packets wait, each delay's head, the end
 * of the stats bin. 0 = nothing to wait for. */
static uint64_t next_event_ns(struct link *l)
{
	uint64_t next = 0;
	struct held_packet *p;

#define CONSIDER(t) do { uint64_t t_ = (t); if (next == 0 || t_ < next) next = t_; } while (0)
	if (fifo_head(&l->queue))
		CONSIDER(opportunity_ns(l));
	if ((p = fifo_head(&l->sent)))
		CONSIDER(p->release_ns);
	if ((p = fifo_head(&l->reverse)))
		CONSIDER(p->release_ns);
	if (l->stats && l->start_ns)
		CONSIDER(l->start_ns + (l->bin_index + 1) * l->opts.bin_ms * NS_PER_MS);
#undef CONSIDER
	return next;
}

static int update_timer(struct link *l)
{
	struct itimerspec its = { 0 };
	uint64_t at = next_event_ns(l);

	if (at == l->timer_ns)
		return 0;
	its.it_value.tv_sec = (time_t)(at / 1000000000u);
	its.it_value.tv_nsec = (long)(at % 1000000000u);
	if (timerfd_settime(l->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		fprintf(stderr, PROG ": timerfd_settime: %s\n", strerror(errno));
		return -1;
	}
	l->timer_ns = at;
	return 0;
}

static int release_all_due(struct link *l, uint64_t now_ns)
{
	if (release_due(l, &l->sent, (uint16_t)l->opts.queue_num, now_ns) < 0)
		return -1;
	if (l->opts.reverse_queue_num != NO_QUEUE &&
	    release_due(l, &l->reverse, (uint16_t)l->opts.reverse_queue_num, now_ns) < 0)
		return -1;
	return 0;
}

static int run(struct link *l)
{
	struct pollfd fds[3] = {
		{ .fd = mnl_socket_get_fd(l->nl), .events = POLLIN },
		{ .fd = l->timer_fd, .events = POLLIN },
		{ .fd = l->signal_fd, .events = POLLIN },
	};

	for (;;) {
		uint64_t now;

		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			return -1;
		}
		if ((fds[2].revents & POLLIN) && nfq_signals_stop(l->signal_fd, print_totals_cb, l))
			return 0;
		if (fds[1].revents & POLLIN) {
			uint64_t expirations;

			if (read(l->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
				fprintf(stderr, PROG ": reading the timer: %s\n", strerror(errno));
				return -1;
			}
		}
		if ((fds[0].revents & POLLIN) && receive_packets(l) < 0)
			return -1;
		if (fds[0].revents & (POLLERR | POLLHUP)) {
			fprintf(stderr, PROG ": the netlink socket failed\n");
			return -1;
		}
		now = lab_monotonic_ns();
		if (serve(l, now) < 0)
			return -1;
		close_bins(l, now);
		if (release_all_due(l, now) < 0 || update_timer(l) < 0)
			return -1;
	}
}

/* Accept everything still held: closing the socket would make the kernel drop it. */
static void release_all(struct link *l)
{
	struct held_packet *p;
	uint32_t last = 0;
	bool any = false;

	if (!l->nl)
		return;
	release_all_due(l, UINT64_MAX);
	while ((p = fifo_head(&l->queue))) {
		last = p->id;
		any = true;
		fifo_pop(&l->queue);
	}
	if (any)
		send_verdict(l, NFQNL_MSG_VERDICT_BATCH, (uint16_t)l->opts.queue_num, last, NF_ACCEPT);
}

static int setup(struct link *l)
{
	uint32_t queue_slots = l->opts.buffer_packets && l->opts.buffer_packets < l->opts.max_held
				       ? (uint32_t)l->opts.buffer_packets : l->opts.max_held;

	if (fifo_init(&l->queue, queue_slots) || fifo_init(&l->sent, l->opts.max_held) ||
	    fifo_init(&l->reverse, l->opts.max_held) || !(l->rx_buf = malloc(RX_BUF_BYTES))) {
		fprintf(stderr, PROG ": out of memory for %u held packets\n", l->opts.max_held);
		return -1;
	}
	if (l->opts.stats_path) {
		l->stats = fopen(l->opts.stats_path, "w");
		if (!l->stats) {
			fprintf(stderr, PROG ": %s: %s\n", l->opts.stats_path, strerror(errno));
			return -1;
		}
		fprintf(l->stats, "t_ms,unix_ms,offered_bytes,delivered_bytes,buffer_drops,random_drops\n");
	}
	l->signal_fd = nfq_signal_fd_open(PROG);
	if (l->signal_fd < 0)
		return -1;
	l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->timer_fd < 0) {
		fprintf(stderr, PROG ": timerfd_create: %s\n", strerror(errno));
		return -1;
	}
	if (nfq_socket_open(PROG, &l->nl, &l->portid) < 0 || bind_queue(l, (uint16_t)l->opts.queue_num) < 0)
		return -1;
	if (l->opts.reverse_queue_num != NO_QUEUE &&
	    bind_queue(l, (uint16_t)l->opts.reverse_queue_num) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct link l = { .timer_fd = -1, .signal_fd = -1 };
	struct reflex_err err;
	int exit_code = 1;
	int ret;

	ret = parse_args(argc, argv, &l.opts);
	if (ret != 0)
		return ret > 0 ? 0 : 2;
	if (l.opts.trace_path && trace_read_file(l.opts.trace_path, &l.trace, &err)) {
		fprintf(stderr, PROG ": %s\n", err.msg);
		return 1;
	}
	if (l.opts.capacity_ms) {
		print_capacity(&l);
		trace_free(&l.trace);
		return 0;
	}
	l.rng = l.opts.seed ? l.opts.seed : 0x9E3779B97F4A7C15ull;
	if (setup(&l) < 0)
		goto cleanup;
	/* lab.sh waits for this line before it sends packets to the queue. */
	if (l.opts.trace_path)
		fprintf(stderr,
			PROG ": queue %d bound (reverse %d), trace %s (%zu opportunities, period %" PRIu64
			" ms) from %" PRIu64 " ms, delay %.3f ms\n",
			l.opts.queue_num, l.opts.reverse_queue_num, l.opts.trace_path, l.trace.count,
			l.trace.period_ms, l.opts.offset_ms, (double)l.opts.delay_ns / 1e6);
	else
		fprintf(stderr, PROG ": queue %d bound (reverse %d), no trace, delay %.3f ms, max held %u\n",
			l.opts.queue_num, l.opts.reverse_queue_num, (double)l.opts.delay_ns / 1e6, l.opts.max_held);
	if (run(&l) == 0)
		exit_code = 0;
	release_all(&l);
	print_totals(&l);

cleanup:
	if (l.stats)
		fclose(l.stats);
	if (l.nl)
		mnl_socket_close(l.nl);
	if (l.timer_fd >= 0)
		close(l.timer_fd);
	if (l.signal_fd >= 0)
		close(l.signal_fd);
	free(l.rx_buf);
	free(l.queue.slots);
	free(l.sent.slots);
	free(l.reverse.slots);
	trace_free(&l.trace);
	return exit_code;
}
