/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * fct-probe: short-flow completion times for the lab and the arena. The client opens a
 * new TCP connection every --interval-ms, sends --bytes and waits for the server's
 * one-byte answer, which the server sends once it has read them all; the flow completion
 * time is from connect() to that answer (handshake, slow start and queueing included),
 * printed in ms, one line per flow. Transfers never overlap: one that outlasts the
 * interval delays the next.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "lab_args.h"

#define PROG "fct-probe"
#define CHUNK 65536
#define MAX_BYTES (1ull << 32)

struct options {
	const char *mode;
	const char *address;
	const char *port;
	uint64_t bytes;
	uint64_t interval_ms;
	uint64_t count;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " server --port PORT [--bytes N]\n"
		"       " PROG " client --connect ADDR --port PORT [--bytes N] [--interval-ms MS]\n"
		"                        [--count N]\n"
		"\n"
		"  -c, --connect ADDR    server address (IPv4 or IPv6)\n"
		"  -p, --port PORT       TCP port\n"
		"  -b, --bytes N         bytes per flow, 1..2^32 (default 102400)\n"
		"  -i, --interval-ms MS  client: from one flow's start to the next (default 500)\n"
		"  -n, --count N         client: flows, then exit (default 0: until SIGTERM)\n"
		"  -h, --help            this text\n"
		"\n"
		"The client prints each flow's completion time in ms on its own line.\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option long_opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct options){ .bytes = 102400, .interval_ms = 500 };
	while ((opt = getopt_long(argc, argv, "c:p:b:i:n:h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->address = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'b':
			if (lab_parse_u64(PROG, optarg, "--bytes", 1, MAX_BYTES, &o->bytes))
				return -1;
			break;
		case 'i':
			if (lab_parse_u64(PROG, optarg, "--interval-ms", 0, 3600000, &o->interval_ms))
				return -1;
			break;
		case 'n':
			if (lab_parse_u64(PROG, optarg, "--count", 0, 1000000, &o->count))
				return -1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, PROG ": see --help\n");
			return -1;
		}
	}
	if (optind != argc - 1 || (strcmp(argv[optind], "server") && strcmp(argv[optind], "client"))) {
		fprintf(stderr, PROG ": one mode: server or client (see --help)\n");
		return -1;
	}
	o->mode = argv[optind];
	if (!o->port || (!strcmp(o->mode, "client") && !o->address)) {
		fprintf(stderr, PROG ": %s needs --port%s\n", o->mode,
			strcmp(o->mode, "client") ? "" : " and --connect");
		return -1;
	}
	return 0;
}

static uint64_t monotonic_us(void)
{
	return lab_monotonic_ns() / 1000u;
}

static struct addrinfo *resolve(const char *address, const char *port, int passive)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *res = NULL;
	int err = getaddrinfo(address, port, &hints, &res);

	if (err) {
		fprintf(stderr, PROG ": %s port %s: %s\n", address ? address : "*", port, gai_strerror(err));
		return NULL;
	}
	return res;
}

/* Read a flow's bytes, then answer with one byte. */
static void serve_one(int fd, uint64_t bytes)
{
	static char buf[CHUNK];
	uint64_t got = 0;
	char ack = 1;

	while (got < bytes) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			return;
		got += (uint64_t)n;
	}
	if (write(fd, &ack, 1) != 1)
		fprintf(stderr, PROG ": answering: %s\n", strerror(errno));
}

static int run_server(const struct options *o)
{
	struct addrinfo *ai = resolve(NULL, o->port, 1);
	int one = 1, fd;

	if (!ai)
		return 1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
		fprintf(stderr, PROG ": listening on port %s: %s\n", o->port, strerror(errno));
		freeaddrinfo(ai);
		return 1;
	}
	freeaddrinfo(ai);
	fprintf(stderr, PROG ": listening on port %s\n", o->port);
	for (;;) {
		int conn = accept(fd, NULL, NULL);

		if (conn < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
		serve_one(conn, o->bytes);
		close(conn);
	}
}

/* One flow; its completion time in us, or 0 on failure. */
static uint64_t one_flow(const struct addrinfo *ai, uint64_t bytes)
{
	static char buf[CHUNK];
	uint64_t start = monotonic_us(), sent = 0;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char ack;

	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		fprintf(stderr, PROG ": connect: %s\n", strerror(errno));
		goto fail;
	}
	while (sent < bytes) {
		size_t len = bytes - sent < sizeof(buf) ? (size_t)(bytes - sent) : sizeof(buf);
		ssize_t n = write(fd, buf, len);

		if (n <= 0) {
			fprintf(stderr, PROG ": sending: %s\n", strerror(errno));
			goto fail;
		}
		sent += (uint64_t)n;
	}
	if (read(fd, &ack, 1) != 1) {
		fprintf(stderr, PROG ": no answer from the server\n");
		goto fail;
	}
	close(fd);
	return monotonic_us() - start;
fail:
	if (fd >= 0)
		close(fd);
	return 0;
}

static int run_client(const struct options *o)
{
	struct addrinfo *ai = resolve(o->address, o->port, 0);
	uint64_t next = monotonic_us();
	int failures = 0;

	if (!ai)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (uint64_t i = 0; o->count == 0 || i < o->count; i++) {
		uint64_t now = monotonic_us(), fct;

		if (next > now)
			usleep((useconds_t)(next - now));
		next += o->interval_ms * 1000u;
		fct = one_flow(ai, o->bytes);
		if (fct)
			printf("%.3f\n", (double)fct / 1000.0);
		else
			failures++;
	}
	freeaddrinfo(ai);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret = parse_args(argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN);
	return strcmp(o.mode, "server") ? run_client(&o) : run_server(&o);
}
