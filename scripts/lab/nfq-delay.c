/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * nfq-delay: a fixed-delay line for the netns lab. This kernel has no netem, so the lab
 * sends forwarded packets to an NFQUEUE (iptables ... -j NFQUEUE --queue-bypass) and this
 * program holds each one for --delay-ms before accepting it.
 *
 * Only packet ids travel to userspace (NFQNL_COPY_META): the kernel keeps the packets, we
 * keep a FIFO of (id, release time). The delay is the same for every packet, so the FIFO is
 * sorted by release time and a single NFQNL_MSG_VERDICT_BATCH accepts every due packet in
 * arrival order. A timerfd armed for the head's release time wakes the loop; nothing spins.
 *
 * Bounded memory: at most --max-held packets are held; the next ones are accepted at once
 * (counted as "overflowed"). The queue is configured fail-open, so a full kernel queue or a
 * full netlink socket passes packets instead of dropping them.
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

#include "nfq_common.h"

#define PROG "nfq-delay"
#define DEFAULT_MAX_HELD 16384
#define MAX_MAX_HELD (1u << 20)
#define MAX_DELAY_MS 60000.0
/* Packets read per wakeup before due packets are released again, so a flood of arrivals
 * cannot starve the release of held ones. */
#define MAX_READS_PER_WAKEUP 256
/* Metadata-only messages are small; a whole datagram always fits. */
#define RX_BUF_BYTES 65536

struct held_packet {
	uint32_t id;
	uint64_t release_ns;
};

/* Ring buffer of held packets in arrival order (= release order). */
struct delay_fifo {
	struct held_packet *slots;
	uint32_t capacity;
	uint32_t head;
	uint32_t count;
};

struct delay_stats {
	uint64_t received;
	uint64_t released;
	uint64_t overflowed;
	uint64_t netlink_overruns;
	uint64_t verdict_errors;
};

struct options {
	uint16_t queue_num;
	uint64_t delay_ns;
	uint32_t max_held;
};

struct delay_line {
	struct options opts;
	struct mnl_socket *nl;
	uint32_t portid;
	int timer_fd;
	int signal_fd;
	uint64_t timer_release_ns; /* what the timer is armed for, 0 = disarmed */
	struct delay_fifo fifo;
	struct delay_stats stats;
	char *rx_buf;
	size_t rx_buf_len;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " --delay-ms MS [--queue NUM] [--max-held N]\n"
		"\n"
		"Holds every packet of NFQUEUE queue NUM for MS milliseconds, then accepts it,\n"
		"in arrival order. Feed it with e.g.\n"
		"  iptables -t mangle -A FORWARD -j NFQUEUE --queue-num 0 --queue-bypass\n"
		"\n"
		"  -d, --delay-ms MS   delay per packet, 0..%.0f, fractions allowed (0.5 = 500 us)\n"
		"  -q, --queue NUM     queue number, 0..65535 (default 0)\n"
		"  -m, --max-held N    cap on held packets, 1..%u (default %u); packets beyond it\n"
		"                      are accepted at once and counted as overflowed\n"
		"  -h, --help          this text\n"
		"\n"
		"SIGUSR1 prints the counters to stderr; SIGTERM/SIGINT accept every held packet\n"
		"and exit 0. Needs CAP_NET_ADMIN in the network namespace it runs in.\n",
		MAX_DELAY_MS, MAX_MAX_HELD, DEFAULT_MAX_HELD);
}

static int parse_uint(const char *arg, const char *flag, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long value;

	errno = 0;
	value = strtoul(arg, &end, 10);
	if (errno || end == arg || *end != '\0' || arg[0] == '-' || value > max) {
		fprintf(stderr, PROG ": %s: '%s' is not an integer in 0..%lu\n", flag, arg, max);
		return -1;
	}
	*out = value;
	return 0;
}

static int parse_delay_ms(const char *arg, uint64_t *delay_ns)
{
	char *end = NULL;
	double ms;

	errno = 0;
	ms = strtod(arg, &end);
	if (errno || end == arg || *end != '\0' || !isfinite(ms) || ms < 0.0 || ms > MAX_DELAY_MS) {
		fprintf(stderr, PROG ": --delay-ms: '%s' is not a number of milliseconds in 0..%.0f\n",
			arg, MAX_DELAY_MS);
		return -1;
	}
	/* Microsecond resolution is far below the timer's and the scheduler's jitter. */
	*delay_ns = (uint64_t)llround(ms * 1000.0) * 1000u;
	return 0;
}

/* Returns 0 to run, 1 for --help (exit 0), -1 on a usage error (exit 2). */
static int parse_args(int argc, char **argv, struct options *opts)
{
	static const struct option long_opts[] = {
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "queue", required_argument, NULL, 'q' },
		{ "max-held", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_delay = false;
	unsigned long value;
	int opt;

	opts->queue_num = 0;
	opts->max_held = DEFAULT_MAX_HELD;
	opts->delay_ns = 0;
	while ((opt = getopt_long(argc, argv, "d:q:m:h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (parse_delay_ms(optarg, &opts->delay_ns))
				return -1;
			have_delay = true;
			break;
		case 'q':
			if (parse_uint(optarg, "--queue", UINT16_MAX, &value))
				return -1;
			opts->queue_num = (uint16_t)value;
			break;
		case 'm':
			if (parse_uint(optarg, "--max-held", MAX_MAX_HELD, &value))
				return -1;
			if (value == 0) {
				fprintf(stderr, PROG ": --max-held: must be at least 1\n");
				return -1;
			}
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
	if (!have_delay) {
		fprintf(stderr, PROG ": --delay-ms is required (see --help)\n");
		return -1;
	}
	return 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int send_verdict(struct delay_line *dl, int msg_type, uint32_t id)
{
	return nfq_send_verdict(PROG, dl->nl, msg_type, dl->opts.queue_num, id, NF_ACCEPT);
}

/* Accept every held packet whose release time has come, with one batch verdict. */
static int release_due(struct delay_line *dl, uint64_t now_ns)
{
	struct delay_fifo *fifo = &dl->fifo;
	uint32_t released = 0;
	uint32_t last_id = 0;

	while (fifo->count > 0 && fifo->slots[fifo->head].release_ns <= now_ns) {
		last_id = fifo->slots[fifo->head].id;
		fifo->head = (fifo->head + 1) % fifo->capacity;
		fifo->count--;
		released++;
	}
	if (released == 0)
		return 0;
	dl->stats.released += released;
	return send_verdict(dl, NFQNL_MSG_VERDICT_BATCH, last_id);
}

/* Arm the timer for the head packet, or disarm it when nothing is held. */
static int update_timer(struct delay_line *dl)
{
	struct itimerspec its = { 0 };
	uint64_t release_ns = 0;

	if (dl->fifo.count > 0)
		release_ns = dl->fifo.slots[dl->fifo.head].release_ns;
	if (release_ns == dl->timer_release_ns)
		return 0;
	its.it_value.tv_sec = (time_t)(release_ns / 1000000000u);
	its.it_value.tv_nsec = (long)(release_ns % 1000000000u);
	if (timerfd_settime(dl->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		fprintf(stderr, PROG ": timerfd_settime: %s\n", strerror(errno));
		return -1;
	}
	dl->timer_release_ns = release_ns;
	return 0;
}

static int hold_packet(struct delay_line *dl, uint32_t id)
{
	struct delay_fifo *fifo = &dl->fifo;
	uint32_t tail;

	dl->stats.received++;
	if (fifo->count == fifo->capacity) {
		dl->stats.overflowed++;
		return send_verdict(dl, NFQNL_MSG_VERDICT, id);
	}
	tail = (fifo->head + fifo->count) % fifo->capacity;
	fifo->slots[tail].id = id;
	fifo->slots[tail].release_ns = monotonic_ns() + dl->opts.delay_ns;
	fifo->count++;
	return 0;
}

static int on_queue_msg(const struct nlmsghdr *nlh, void *data)
{
	struct delay_line *dl = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *packet_hdr;

	if (nfq_nlmsg_parse(nlh, attr) < 0) {
		fprintf(stderr, PROG ": cannot parse a queue message: %s\n", strerror(errno));
		return MNL_CB_ERROR;
	}
	if (!attr[NFQA_PACKET_HDR]) {
		fprintf(stderr, PROG ": queue message without a packet header, ignored\n");
		return MNL_CB_OK;
	}
	packet_hdr = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	if (hold_packet(dl, ntohl(packet_hdr->packet_id)) < 0)
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

/* Metadata only: the kernel keeps the packets, we keep their ids. Kernel-side room above
 * our cap, so overflow is decided (and counted) here. */
static int bind_queue(struct delay_line *dl)
{
	const struct nfq_bind_params params = {
		.queue = dl->opts.queue_num,
		.copy_mode = NFQNL_COPY_META,
		.qmaxlen = dl->opts.max_held + MAX_READS_PER_WAKEUP,
	};

	return nfq_bind_queue(PROG, dl->nl, dl->portid, &params, dl->rx_buf, dl->rx_buf_len,
			      on_queue_msg, dl);
}

static void print_stats(const struct delay_line *dl)
{
	fprintf(stderr,
		PROG ": queue %u: received %" PRIu64 " released %" PRIu64 " held %" PRIu32
		" overflowed %" PRIu64 " netlink_overruns %" PRIu64 " verdict_errors %" PRIu64 "\n",
		dl->opts.queue_num, dl->stats.received, dl->stats.released, dl->fifo.count,
		dl->stats.overflowed, dl->stats.netlink_overruns, dl->stats.verdict_errors);
}

static void print_stats_cb(const void *data)
{
	print_stats(data);
}

/* Read what the socket has queued, up to MAX_READS_PER_WAKEUP datagrams. */
static int receive_packets(struct delay_line *dl)
{
	for (int i = 0; i < MAX_READS_PER_WAKEUP; i++) {
		ssize_t len = recv(mnl_socket_get_fd(dl->nl), dl->rx_buf, dl->rx_buf_len, MSG_DONTWAIT);

		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ENOBUFS) {
				/* Fail-open made the kernel accept what did not fit: not fatal. */
				dl->stats.netlink_overruns++;
				continue;
			}
			fprintf(stderr, PROG ": reading the queue: %s\n", strerror(errno));
			return -1;
		}
		if (mnl_cb_run(dl->rx_buf, (size_t)len, 0, dl->portid, on_queue_msg, dl) < 0) {
			/* The kernel reports a rejected verdict (e.g. its packet vanished with a
			 * device) as an error message; the line keeps running. */
			if (dl->stats.verdict_errors++ == 0)
				fprintf(stderr, PROG ": kernel rejected a message: %s (counted)\n",
					strerror(errno));
		}
	}
	return 0;
}

static int run(struct delay_line *dl)
{
	struct pollfd fds[3] = {
		{ .fd = mnl_socket_get_fd(dl->nl), .events = POLLIN },
		{ .fd = dl->timer_fd, .events = POLLIN },
		{ .fd = dl->signal_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			return -1;
		}
		if ((fds[2].revents & POLLIN) && nfq_signals_stop(dl->signal_fd, print_stats_cb, dl))
			return 0;
		if (fds[1].revents & POLLIN) {
			uint64_t expirations;

			if (read(dl->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
				fprintf(stderr, PROG ": reading the timer: %s\n", strerror(errno));
				return -1;
			}
		}
		if ((fds[0].revents & POLLIN) && receive_packets(dl) < 0)
			return -1;
		if (fds[0].revents & (POLLERR | POLLHUP)) {
			fprintf(stderr, PROG ": the netlink socket failed\n");
			return -1;
		}
		if (release_due(dl, monotonic_ns()) < 0 || update_timer(dl) < 0)
			return -1;
	}
}

/* Accept everything still held: closing the socket would make the kernel drop it. */
static void release_all(struct delay_line *dl)
{
	if (dl->nl && dl->fifo.count > 0)
		release_due(dl, UINT64_MAX);
}

int main(int argc, char **argv)
{
	struct delay_line dl = { .timer_fd = -1, .signal_fd = -1 };
	int exit_code = 1;
	int ret;

	ret = parse_args(argc, argv, &dl.opts);
	if (ret != 0)
		return ret > 0 ? 0 : 2;

	dl.fifo.capacity = dl.opts.max_held;
	dl.fifo.slots = calloc(dl.fifo.capacity, sizeof(*dl.fifo.slots));
	dl.rx_buf_len = RX_BUF_BYTES;
	dl.rx_buf = malloc(dl.rx_buf_len);
	if (!dl.fifo.slots || !dl.rx_buf) {
		fprintf(stderr, PROG ": out of memory for %u held packets\n", dl.opts.max_held);
		goto cleanup;
	}
	dl.signal_fd = nfq_signal_fd_open(PROG);
	if (dl.signal_fd < 0)
		goto cleanup;
	dl.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (dl.timer_fd < 0) {
		fprintf(stderr, PROG ": timerfd_create: %s\n", strerror(errno));
		goto cleanup;
	}
	if (nfq_socket_open(PROG, &dl.nl, &dl.portid) < 0 || bind_queue(&dl) < 0)
		goto cleanup;

	/* lab.sh waits for this line before it sends packets to the queue. */
	fprintf(stderr, PROG ": queue %u bound, delay %.3f ms, max held %u\n", dl.opts.queue_num,
		(double)dl.opts.delay_ns / 1e6, dl.opts.max_held);
	if (run(&dl) == 0)
		exit_code = 0;
	release_all(&dl);
	print_stats(&dl);

cleanup:
	if (dl.nl)
		mnl_socket_close(dl.nl);
	if (dl.timer_fd >= 0)
		close(dl.timer_fd);
	if (dl.signal_fd >= 0)
		close(dl.signal_fd);
	free(dl.rx_buf);
	free(dl.fifo.slots);
	return exit_code;
}
