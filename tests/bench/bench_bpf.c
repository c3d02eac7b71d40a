// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Per-packet cost of the tc telemetry program (bpf/tc.bpf.c, egress), ns per
 * packet from BPF_PROG_TEST_RUN with 1M repeats, against an empty tc program
 * (return TC_ACT_UNSPEC) measured on the same frames in the same run: a 64-byte
 * IPv4 TCP ACK, a 1514-byte IPv4 TCP segment, an IPv6 TCP segment, IPv4 UDP, and
 * a GSO packet of 4 segments. Medians over repetitions, programs interleaved; the
 * program's maps are private (unpinned). Needs root. No assertion on time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "reflex.h"
#include "tc.skel.h"
#include "packets.h"
#include "bench.h"

#define REPS 7
#define REPEAT 1000000
#define GSO_SEGS 4
#define GSO_SIZE 700 /* a page of test data at most: small segments */

struct workload {
	const char *name;
	struct frame f;
	__u32 gso_segs;
};

static void build(struct workload *w)
{
	static const uint8_t ts[] = { 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2 };

	w[0].name = "IPv4 TCP ACK, 64 B";
	put_eth(&w[0].f, 0x0800);
	put_ipv4(&w[0].f, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&w[0].f, 40000, 5201, NULL, 0);
	put_payload(&w[0].f, 10);
	w[1].name = "IPv4 TCP, timestamps, 1514 B";
	put_eth(&w[1].f, 0x0800);
	put_ipv4(&w[1].f, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&w[1].f, 40001, 5201, ts, sizeof(ts));
	put_payload(&w[1].f, 1514 - w[1].f.len);
	w[2].name = "IPv6 TCP, timestamps, 1514 B";
	put_eth(&w[2].f, 0x86dd);
	put_ipv6(&w[2].f, IPPROTO_TCP, "2001:db8::1", "2001:db8::2");
	put_tcp(&w[2].f, 40002, 443, ts, sizeof(ts));
	put_payload(&w[2].f, 1514 - w[2].f.len);
	w[3].name = "IPv4 UDP, 1242 B";
	put_eth(&w[3].f, 0x0800);
	put_ipv4(&w[3].f, IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_udp(&w[3].f, 4433, 443);
	put_payload(&w[3].f, 1200);
	w[4].name = "IPv4 TCP GSO, 4 x 700 B";
	put_eth(&w[4].f, 0x0800);
	put_ipv4(&w[4].f, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&w[4].f, 40003, 5201, ts, sizeof(ts));
	put_payload(&w[4].f, GSO_SEGS * GSO_SIZE);
	w[4].gso_segs = GSO_SEGS;
	for (int i = 0; i < 5; i++)
		finish(&w[i].f);
}

/* return TC_ACT_UNSPEC (-1): the floor of running any tc program on a frame. */
static int load_empty(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "empty_tc", "GPL", insns, 2, NULL);
}

/* Average ns per run as the kernel measures it (BPF_PROG_TEST_RUN's duration). */
static double ns_per_packet(int prog_fd, const struct workload *w)
{
	struct __sk_buff ctx = { .gso_segs = w->gso_segs, .gso_size = w->gso_segs ? GSO_SIZE : 0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = w->f.b, .data_size_in = (__u32)w->f.len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = REPEAT);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	if (err) {
		fprintf(stderr, "bench_bpf: BPF_PROG_TEST_RUN on '%s': %s\n", w->name, strerror(-err));
		exit(1);
	}
	return opts.duration;
}

int main(void)
{
	static struct workload w[5];
	double tc_ns[5][REPS], empty_ns[5][REPS];
	struct tc_bpf *skel = tc_bpf__open();
	struct bpf_map *map;
	int empty_fd, tc_fd, rc = 1;

	build(w);
	if (!skel) {
		fprintf(stderr, "bench_bpf: tc_bpf__open: %s\n", strerror(errno));
		return 1;
	}
	bpf_object__for_each_map(map, skel->obj)
		bpf_map__set_pin_path(map, NULL);
	if (tc_bpf__load(skel)) {
		fprintf(stderr, "bench_bpf: tc_bpf__load: %s (needs root)\n", strerror(errno));
		goto cleanup;
	}
	empty_fd = load_empty();
	if (empty_fd < 0) {
		fprintf(stderr, "bench_bpf: loading the empty tc program: %s\n", strerror(-empty_fd));
		goto cleanup;
	}
	tc_fd = bpf_program__fd(skel->progs.reflex_tc_egress);
	for (int r = 0; r < REPS; r++)
		for (int i = 0; i < 5; i++) {
			empty_ns[i][r] = ns_per_packet(empty_fd, &w[i]);
			tc_ns[i][r] = ns_per_packet(tc_fd, &w[i]);
		}
	printf("bench_bpf: tc egress program, ns per packet (BPF_PROG_TEST_RUN, %d repeats, median of %d)\n",
	       REPEAT, REPS);
	printf("  %-32s %10s %10s %10s %8s\n", "frame", "empty_ns", "tc_ns", "tc-empty", "ratio");
	for (int i = 0; i < 5; i++) {
		double e = median(empty_ns[i], REPS), t = median(tc_ns[i], REPS);

		printf("  %-32s %10.1f %10.1f %10.1f %7.2fx\n", w[i].name, e, t, t - e, t / e);
	}
	close(empty_fd);
	rc = 0;
cleanup:
	tc_bpf__destroy(skel);
	return rc;
}
