// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* bpf/router.bpf.c in the kernel (BPF_PROG_TEST_RUN, no interface attached): packets
 * from an uplink never create flows, however many; a LAN flow's first packet places
 * it on its class's next path and its packets carry the path's mark in the mask's
 * bits only; without reflexd's heartbeat nothing is placed; an uplink's egress counts
 * what was forwarded from the LAN, not the router's own packets. Needs root
 * (skipped without it). */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "router_skel.h"

#define LO_IFINDEX 1
/* The program's --lan index: only the uplinks' egress looks at it. */
#define LAN_IFINDEX 1000
#define MARK 0x00520000u
#define MASK 0x00ff0000u
#define SPOOFED 20000

struct pkt4 {
	struct ethhdr eth;
	struct iphdr ip;
	union {
		struct tcphdr tcp;
		struct udphdr udp;
	};
} __attribute__((packed));

static struct router_bpf *skel;

static void build(struct pkt4 *p, uint8_t proto, const char *src, const char *dst, uint16_t sport, uint16_t dport,
		  uint8_t tcp_flags)
{
	memset(p, 0, sizeof(*p));
	p->eth.h_proto = htons(ETH_P_IP);
	p->ip.version = 4;
	p->ip.ihl = 5;
	p->ip.ttl = 64;
	p->ip.protocol = proto;
	p->ip.tot_len = htons(sizeof(p->ip) + (proto == IPPROTO_TCP ? sizeof(p->tcp) : sizeof(p->udp)));
	inet_pton(AF_INET, src, &p->ip.saddr);
	inet_pton(AF_INET, dst, &p->ip.daddr);
	if (proto == IPPROTO_TCP) {
		p->tcp.source = htons(sport);
		p->tcp.dest = htons(dport);
		p->tcp.doff = 5;
		p->tcp.seq = htonl(1000);
		p->tcp.syn = !!(tcp_flags & 0x02);
		p->tcp.ack = !!(tcp_flags & 0x10);
	} else {
		p->udp.source = htons(sport);
		p->udp.dest = htons(dport);
		p->udp.len = htons(sizeof(p->udp));
	}
}

/* One packet through prog; returns the mark it leaves with. */
static uint32_t run(struct bpf_program *prog, const struct pkt4 *p, size_t len, uint32_t mark, uint32_t ingress)
{
	struct __sk_buff ctx = { .mark = mark, .ifindex = LO_IFINDEX, .ingress_ifindex = ingress };
	struct __sk_buff out = { 0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p, .data_size_in = (uint32_t)len, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .ctx_out = &out, .ctx_size_out = sizeof(out));

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0);
	assert_int_equal((int)opts.retval, -1); /* TC_ACT_UNSPEC: on into routing */
	return out.mark;
}

static uint32_t entries(struct bpf_map *map)
{
	unsigned char key[64], next[64];
	uint32_t n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(bpf_map__fd(map), prev, next) == 0) {
		n++;
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return n;
}

static int setup(void **state)
{
	struct router_path_entry path = { .ifindex = LO_IFINDEX, .mark = MARK };
	uint32_t zero = 0;

	(void)state;
	if (geteuid() != 0)
		return 0;
	skel = router_skel_load(LAN_IFINDEX);
	if (!skel)
		return -1;
	path.mark_mask = MASK;
	path.families = ROUTER_FAMILY_IPV4;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.router_paths), &zero, &path, BPF_ANY))
		return -1;
	/* Every class's next flow goes to path 0 (router_port_class is all class 0). */
	for (uint32_t cls = 0; cls < ROUTER_MAX_CLASSES; cls++)
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.router_next_path), &cls, &zero, BPF_ANY))
			return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	router_bpf__destroy(skel);
	skel = NULL;
	return 0;
}

static void test_uplink_packets_create_nothing(void **state)
{
	struct pkt4 p;
	char src[INET_ADDRSTRLEN];

	(void)state;
	if (!skel)
		skip();
	router_heartbeat(skel, mono_ns());
	/* From everywhere on the internet to LAN endpoints, arriving on the uplink. */
	for (uint32_t i = 0; i < SPOOFED; i++) {
		snprintf(src, sizeof(src), "198.%u.%u.%u", 18 + (i >> 16) % 2, (i >> 8) & 0xff, i & 0xff);
		build(&p, IPPROTO_UDP, src, "10.11.1.2", (uint16_t)(1024 + i % 60000), (uint16_t)(i % 65535 + 1), 0);
		run(skel->progs.router_lan_egress, &p, sizeof(p.eth) + sizeof(p.ip) + sizeof(p.udp), 0, LO_IFINDEX);
	}
	assert_int_equal(entries(skel->maps.router_flows), 0);
	assert_int_equal(entries(skel->maps.router_decisions), 0);
	assert_int_equal(router_counter(skel, ROUTER_CNT_UPLINK_UNKNOWN), SPOOFED);
	assert_int_equal(router_counter(skel, ROUTER_CNT_NEW_FLOWS), 0);

	/* A LAN flow afterwards: placed on path 0 at its SYN, marked in the mask only. */
	build(&p, IPPROTO_TCP, "10.11.1.2", "10.11.9.1", 40000, 873, 0x02);
	assert_int_equal(run(skel->progs.router_lan_ingress, &p, sizeof(p), 0x0000000f, 0), MARK | 0x0000000f);
	assert_int_equal(entries(skel->maps.router_flows), 1);
	assert_int_equal(entries(skel->maps.router_decisions), 1);
	assert_int_equal(router_counter(skel, ROUTER_CNT_PLACED), 1);
	/* Its next packet: same mark, over a stranger's bits in the mask too. */
	build(&p, IPPROTO_TCP, "10.11.1.2", "10.11.9.1", 40000, 873, 0x10);
	assert_int_equal(run(skel->progs.router_lan_ingress, &p, sizeof(p), 0x00aa0001, 0), MARK | 0x00000001);
	assert_int_equal(router_counter(skel, ROUTER_CNT_STEERED), 2);
	/* Its answer from the uplink updates it and is no stranger. */
	build(&p, IPPROTO_TCP, "10.11.9.1", "10.11.1.2", 873, 40000, 0x12);
	run(skel->progs.router_lan_egress, &p, sizeof(p), 0, LO_IFINDEX);
	assert_int_equal(router_counter(skel, ROUTER_CNT_UPLINK_UNKNOWN), SPOOFED);
	assert_int_equal(entries(skel->maps.router_flows), 1);
}

static void test_no_placement_without_heartbeat(void **state)
{
	struct pkt4 p;

	(void)state;
	if (!skel)
		skip();
	/* Mid-stream (no SYN): measured, left to the kernel. */
	router_heartbeat(skel, mono_ns());
	build(&p, IPPROTO_TCP, "10.11.1.2", "10.11.9.1", 40001, 443, 0x10);
	assert_int_equal(run(skel->progs.router_lan_ingress, &p, sizeof(p), 0, 0), 0);
	assert_int_equal(entries(skel->maps.router_flows), 1);
	assert_int_equal(entries(skel->maps.router_decisions), 0);
	/* reflexd's heartbeat 2 s old (deadline 500 ms by default): a new flow stays unplaced. */
	router_heartbeat(skel, mono_ns() - 2000ULL * 1000 * 1000);
	build(&p, IPPROTO_TCP, "10.11.1.2", "10.11.9.1", 40002, 443, 0x02);
	assert_int_equal(run(skel->progs.router_lan_ingress, &p, sizeof(p), 0, 0), 0);
	assert_int_equal(entries(skel->maps.router_flows), 2);
	assert_int_equal(entries(skel->maps.router_decisions), 0);
	assert_int_equal(router_counter(skel, ROUTER_CNT_HEARTBEAT_STALE), 1);
}

static uint64_t path0_stat(size_t offset)
{
	int ncpu = libbpf_num_possible_cpus();
	struct router_path_stats values[512];
	uint64_t sum = 0;
	uint32_t key = 0;

	assert_true(ncpu > 0 && ncpu <= 512);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.router_path_stats), &key, values), 0);
	for (int c = 0; c < ncpu; c++)
		sum += *(const uint64_t *)((const char *)&values[c] + offset);
	return sum;
}

static void test_uplink_egress_counts_forwarded(void **state)
{
	struct pkt4 p;

	(void)state;
	if (!skel)
		skip();
	/* A SYN forwarded from the LAN, carrying path 0's mark: sent, steered. */
	build(&p, IPPROTO_TCP, "10.12.1.1", "10.11.9.1", 40000, 873, 0x02);
	run(skel->progs.router_uplink_egress, &p, sizeof(p), MARK, LAN_IFINDEX);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, tx_packets)), 1);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, sent_packets)), 1);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, steered_packets)), 1);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, tx_bytes)), sizeof(p));
	/* The router's own SYN (no ingress interface): not the LAN's traffic. */
	run(skel->progs.router_uplink_egress, &p, sizeof(p), 0, 0);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, tx_packets)), 1);
	/* A pure ACK from the LAN, unmarked: traffic, nothing to answer, not steered. */
	build(&p, IPPROTO_TCP, "10.12.1.1", "10.11.9.1", 40001, 873, 0x10);
	run(skel->progs.router_uplink_egress, &p, sizeof(p), 0, LAN_IFINDEX);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, tx_packets)), 2);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, sent_packets)), 1);
	assert_int_equal(path0_stat(offsetof(struct router_path_stats, steered_packets)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_uplink_packets_create_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_placement_without_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uplink_egress_counts_forwarded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
