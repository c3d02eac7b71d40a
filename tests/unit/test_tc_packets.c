// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Packet-level tests of bpf/tc.bpf.c and bpf/parsing.bpf.h in the kernel
 * selftests' manner: crafted frames through BPF_PROG_TEST_RUN on the real
 * programs (the skeleton of build/bpf/tc.bpf.o), then the tc_flows entry, the
 * counters and the tc_events sample each frame must produce. Needs root.
 *
 * Every test loads a fresh copy with its maps unpinned, so nothing is shared with
 * a running reflexd or left behind, and sets sample_interval_ns to 1 so that every
 * accounted packet emits its own sample.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "reflex.h"
#include "tc.skel.h"
#include "packets.h"

#define TC_ACT_UNSPEC (-1)
/* BPF_PROG_TEST_RUN takes at most a page of data: small segments make a GSO packet fit. */
#define GSO_SIZE 700

/* --- the programs ------------------------------------------------------------- */

struct fixture {
	struct tc_bpf *skel;
	int ncpus;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct reflex_config cfg = { .sample_interval_ns = 1 };
	struct bpf_map *map;
	__u32 zero = 0;

	if (!fx)
		return -1;
	*state = fx;
	fx->ncpus = libbpf_num_possible_cpus();
	fx->skel = tc_bpf__open();
	if (!fx->skel || fx->ncpus <= 0) {
		print_error("tc_bpf__open: %s\n", strerror(errno));
		return -1;
	}
	/* Private maps: nothing pinned, nothing shared with a running reflexd. */
	bpf_object__for_each_map(map, fx->skel->obj)
		if (bpf_map__set_pin_path(map, NULL))
			return -1;
	if (tc_bpf__load(fx->skel)) {
		print_error("tc_bpf__load: %s (root and BPF needed)\n", strerror(errno));
		return -1;
	}
	return bpf_map_update_elem(bpf_map__fd(fx->skel->maps.reflex_config), &zero, &cfg, BPF_ANY);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	tc_bpf__destroy(fx->skel);
	free(fx);
	return 0;
}

enum dir_prog { EGRESS, INGRESS };

/* One run of the egress or ingress program on the frame; gso_segs > 1 makes it a GSO packet. */
static void run(struct fixture *fx, enum dir_prog dir, const struct frame *f, __u32 gso_segs)
{
	struct bpf_program *prog = dir == EGRESS ? fx->skel->progs.reflex_tc_egress : fx->skel->progs.reflex_tc_ingress;
	struct __sk_buff ctx = { .gso_segs = gso_segs, .gso_size = gso_segs > 1 ? GSO_SIZE : 0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->b, .data_size_in = (__u32)f->len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);

	if (err)
		fail_msg("BPF_PROG_TEST_RUN of a %zu-byte frame: %s", f->len, strerror(-err));
	assert_int_equal((int)opts.retval, TC_ACT_UNSPEC); /* never drops or alters */
}

static __u64 counter(struct fixture *fx, enum reflex_counter idx)
{
	__u64 values[fx->ncpus], sum = 0;
	__u32 key = idx;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(fx->skel->maps.counters), &key, values), 0);
	for (int c = 0; c < fx->ncpus; c++)
		sum += values[c];
	return sum;
}

static unsigned flow_count(struct fixture *fx)
{
	struct flow_key key, next;
	unsigned n = 0;
	int fd = bpf_map__fd(fx->skel->maps.tc_flows);

	for (int rc = bpf_map_get_next_key(fd, NULL, &next); !rc; rc = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		n++;
	}
	return n;
}

/* The flow's counters summed over CPUs (the per-CPU LRU hash); fails if there is no entry. */
static struct tc_flow flow_of(struct fixture *fx, const struct flow_key *key)
{
	struct tc_flow values[fx->ncpus], sum = { 0 };

	if (bpf_map_lookup_elem(bpf_map__fd(fx->skel->maps.tc_flows), key, values))
		fail_msg("no tc_flows entry for port %u -> %u: %s", key->sport, key->dport, strerror(errno));
	for (int c = 0; c < fx->ncpus; c++) {
		for (int d = 0; d < FLOW_DIR_MAX; d++) {
			sum.total.packets[d] += values[c].total.packets[d];
			sum.total.bytes[d] += values[c].total.bytes[d];
			sum.total.payload_bytes[d] += values[c].total.payload_bytes[d];
		}
		sum.total.size_sum += values[c].total.size_sum;
		sum.total.size_sq_sum += values[c].total.size_sq_sum;
		if (values[c].ifindex)
			sum.ifindex = values[c].ifindex;
	}
	return sum;
}

static struct flow_key key4(uint8_t proto, const char *local, uint16_t lport, const char *remote, uint16_t rport)
{
	struct flow_key k = { .sport = lport, .dport = rport, .family = AF_INET, .proto = proto };

	assert_int_equal(inet_pton(AF_INET, local, &k.saddr[0]), 1);
	assert_int_equal(inet_pton(AF_INET, remote, &k.daddr[0]), 1);
	return k;
}

static struct flow_key key6(uint8_t proto, const char *local, uint16_t lport, const char *remote, uint16_t rport)
{
	struct flow_key k = { .sport = lport, .dport = rport, .family = AF_INET6, .proto = proto };

	assert_int_equal(inet_pton(AF_INET6, local, k.saddr), 1);
	assert_int_equal(inet_pton(AF_INET6, remote, k.daddr), 1);
	return k;
}

struct expect {
	__u64 packets, bytes, payload, size_sum, size_sq_sum;
};

/* One frame of `wire` bytes, `headers` of them headers, not GSO. */
static struct expect one_packet(__u64 wire, __u64 headers)
{
	return (struct expect){ 1, wire, wire - headers, wire, wire * wire };
}

static void expect_flow(struct fixture *fx, const struct flow_key *key, int dir, struct expect want)
{
	struct tc_flow got = flow_of(fx, key);

	assert_int_equal(got.total.packets[dir], want.packets);
	assert_int_equal(got.total.bytes[dir], want.bytes);
	assert_int_equal(got.total.payload_bytes[dir], want.payload);
	assert_int_equal(got.total.packets[!dir], 0);
	assert_int_equal(got.total.bytes[!dir], 0);
	assert_int_equal(got.total.size_sum, want.size_sum);
	assert_int_equal(got.total.size_sq_sum, want.size_sq_sum);
	assert_int_equal(got.ifindex, 1); /* BPF_PROG_TEST_RUN's device is the loopback */
}

/* The frame was looked at and skipped: counted, parse_skip, no flow, no sample. */
static void expect_skipped(struct fixture *fx, __u64 frames)
{
	assert_int_equal(counter(fx, CNT_TC_PACKETS), frames);
	assert_int_equal(counter(fx, CNT_TC_PARSE_SKIP), frames);
	assert_int_equal(counter(fx, CNT_TC_SAMPLES), 0);
	assert_int_equal(flow_count(fx), 0);
}

static void expect_accounted(struct fixture *fx, __u64 frames, unsigned flows)
{
	assert_int_equal(counter(fx, CNT_TC_PACKETS), frames);
	assert_int_equal(counter(fx, CNT_TC_PARSE_SKIP), 0);
	assert_int_equal(counter(fx, CNT_TC_SAMPLES), frames);
	assert_int_equal(flow_count(fx), flows);
}

/* --- accounted frames -------------------------------------------------------------- */

static void test_ipv4_tcp_ack_egress(void **state)
{
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };
	struct flow_key k = key4(IPPROTO_TCP, "10.0.0.1", 40000, "10.0.0.2", 5201);

	put_eth(&f, 0x0800);
	put_ipv4(&f, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&f, 40000, 5201, NULL, 0);
	put_payload(&f, 10);
	finish(&f);
	assert_int_equal(f.len, 64);
	run(fx, EGRESS, &f, 0);
	expect_accounted(fx, 1, 1);
	expect_flow(fx, &k, FLOW_DIR_EGRESS, one_packet(64, ETH_HLEN + IPV4_HLEN + TCP_HLEN));
}

/* TCP options (MSS, SACK permitted, timestamps, window scale) lengthen the headers. */
static void test_ipv4_tcp_options(void **state)
{
	static const uint8_t opts[] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };
	struct flow_key k = key4(IPPROTO_TCP, "192.0.2.1", 443, "198.51.100.7", 51000);

	put_eth(&f, 0x0800);
	put_ipv4(&f, IPPROTO_TCP, "192.0.2.1", "198.51.100.7", 0, 0);
	put_tcp(&f, 443, 51000, opts, sizeof(opts));
	put_payload(&f, 1000);
	finish(&f);
	run(fx, EGRESS, &f, 0);
	run(fx, EGRESS, &f, 0);
	expect_accounted(fx, 2, 1);
	expect_flow(fx, &k, FLOW_DIR_EGRESS,
		    (struct expect){ 2, 2 * f.len, 2 * 1000, 2 * f.len, 2 * f.len * f.len });
}

/* IPv4 options move the transport header; UDP headers are 8 bytes. */
static void test_ipv4_options_udp(void **state)
{
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };
	struct flow_key k = key4(IPPROTO_UDP, "10.1.0.1", 5353, "10.1.0.2", 53);

	put_eth(&f, 0x0800);
	put_ipv4(&f, IPPROTO_UDP, "10.1.0.1", "10.1.0.2", 2, 0);
	put_udp(&f, 5353, 53);
	put_payload(&f, 100);
	finish(&f);
	run(fx, EGRESS, &f, 0);
	expect_accounted(fx, 1, 1);
	expect_flow(fx, &k, FLOW_DIR_EGRESS, one_packet(f.len, ETH_HLEN + IPV4_HLEN + 8 + UDP_HLEN));
}

/* Ingress swaps the key (the local end first), so both directions share one entry. */
static void test_ipv6_tcp_both_directions(void **state)
{
	struct fixture *fx = *state;
	struct frame out = { .len = 0 }, in = { .len = 0 };
	struct flow_key k = key6(IPPROTO_TCP, "2001:db8::1", 40001, "2001:db8::2", 80);
	struct tc_flow got;
	__u64 hdr = ETH_HLEN + IPV6_HLEN + TCP_HLEN;

	put_eth(&out, 0x86dd);
	put_ipv6(&out, IPPROTO_TCP, "2001:db8::1", "2001:db8::2");
	put_tcp(&out, 40001, 80, NULL, 0);
	put_payload(&out, 300);
	finish(&out);
	put_eth(&in, 0x86dd);
	put_ipv6(&in, IPPROTO_TCP, "2001:db8::2", "2001:db8::1");
	put_tcp(&in, 80, 40001, NULL, 0);
	put_payload(&in, 1200);
	finish(&in);
	run(fx, EGRESS, &out, 0);
	run(fx, INGRESS, &in, 0);
	expect_accounted(fx, 2, 1);
	got = flow_of(fx, &k);
	assert_int_equal(got.total.packets[FLOW_DIR_EGRESS], 1);
	assert_int_equal(got.total.packets[FLOW_DIR_INGRESS], 1);
	assert_int_equal(got.total.bytes[FLOW_DIR_EGRESS], out.len);
	assert_int_equal(got.total.bytes[FLOW_DIR_INGRESS], in.len);
	assert_int_equal(got.total.payload_bytes[FLOW_DIR_EGRESS], out.len - hdr);
	assert_int_equal(got.total.payload_bytes[FLOW_DIR_INGRESS], in.len - hdr);
	assert_int_equal(got.total.size_sum, out.len + in.len);
	assert_int_equal(got.total.size_sq_sum, out.len * out.len + in.len * in.len);
}

static void test_ipv6_udp(void **state)
{
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };
	struct flow_key k = key6(IPPROTO_UDP, "fd00::10", 4433, "fd00::20", 443);

	put_eth(&f, 0x86dd);
	put_ipv6(&f, IPPROTO_UDP, "fd00::10", "fd00::20");
	put_udp(&f, 4433, 443);
	put_payload(&f, 1200);
	finish(&f);
	run(fx, EGRESS, &f, 0);
	expect_accounted(fx, 1, 1);
	expect_flow(fx, &k, FLOW_DIR_EGRESS, one_packet(f.len, ETH_HLEN + IPV6_HLEN + UDP_HLEN));
}

/* A GSO super-packet goes on the wire as gso_segs segments, each with its own headers. */
static void test_gso_packet(void **state)
{
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };
	struct flow_key k = key4(IPPROTO_TCP, "10.0.0.1", 40002, "10.0.0.2", 5201);
	__u64 hdr = ETH_HLEN + IPV4_HLEN + TCP_HLEN + 12, segs = 4, wire, seg;
	static const uint8_t ts[] = { 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2 };

	put_eth(&f, 0x0800);
	put_ipv4(&f, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&f, 40002, 5201, ts, sizeof(ts));
	put_payload(&f, segs * GSO_SIZE);
	finish(&f);
	run(fx, EGRESS, &f, (__u32)segs);
	wire = f.len + (segs - 1) * hdr;
	seg = wire / segs;
	expect_accounted(fx, 1, 1);
	expect_flow(fx, &k, FLOW_DIR_EGRESS, (struct expect){ segs, wire, segs * GSO_SIZE, wire, segs * seg * seg });
}

/* A first fragment carries the ports and is accounted. */
static void test_ipv4_first_fragment(void **state)
{
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };
	struct flow_key k = key4(IPPROTO_UDP, "10.2.0.1", 7000, "10.2.0.2", 7001);

	put_eth(&f, 0x0800);
	put_ipv4(&f, IPPROTO_UDP, "10.2.0.1", "10.2.0.2", 0, 0x2000 /* MF, offset 0 */);
	put_udp(&f, 7000, 7001);
	put_payload(&f, 64);
	finish(&f);
	run(fx, EGRESS, &f, 0);
	expect_accounted(fx, 1, 1);
	expect_flow(fx, &k, FLOW_DIR_EGRESS, one_packet(f.len, ETH_HLEN + IPV4_HLEN + UDP_HLEN));
}

/* Each accounted packet's sample carries the flow's key and exactly its growth. */
static int on_sample(void *ctx, void *data, size_t size)
{
	struct tc_sample *out = ctx;
	unsigned *n = (unsigned *)(out + 2);

	if (size != sizeof(*out) || *n >= 2)
		return -EINVAL;
	memcpy(&out[(*n)++], data, sizeof(*out));
	return 0;
}

static void test_samples_carry_deltas(void **state)
{
	struct fixture *fx = *state;
	struct frame a = { .len = 0 }, b = { .len = 0 };
	struct flow_key k = key4(IPPROTO_TCP, "10.3.0.1", 1111, "10.3.0.2", 2222);
	struct {
		struct tc_sample s[2];
		unsigned n;
	} got = { .n = 0 };
	struct ring_buffer *rb;

	put_eth(&a, 0x0800);
	put_ipv4(&a, IPPROTO_TCP, "10.3.0.1", "10.3.0.2", 0, 0);
	put_tcp(&a, 1111, 2222, NULL, 0);
	put_payload(&a, 100);
	finish(&a);
	put_eth(&b, 0x0800);
	put_ipv4(&b, IPPROTO_TCP, "10.3.0.1", "10.3.0.2", 0, 0);
	put_tcp(&b, 1111, 2222, NULL, 0);
	put_payload(&b, 700);
	finish(&b);
	run(fx, EGRESS, &a, 0);
	run(fx, EGRESS, &b, 0);
	rb = ring_buffer__new(bpf_map__fd(fx->skel->maps.tc_events), on_sample, got.s, NULL);
	assert_non_null(rb);
	assert_int_equal(ring_buffer__consume(rb), 2);
	ring_buffer__free(rb);
	assert_int_equal(got.n, 2);
	assert_memory_equal(&got.s[0].key, &k, sizeof(k));
	assert_memory_equal(&got.s[1].key, &k, sizeof(k));
	assert_int_equal(got.s[0].delta.packets[FLOW_DIR_EGRESS], 1);
	assert_int_equal(got.s[0].delta.bytes[FLOW_DIR_EGRESS], a.len);
	assert_int_equal(got.s[1].delta.packets[FLOW_DIR_EGRESS], 1);
	assert_int_equal(got.s[1].delta.bytes[FLOW_DIR_EGRESS], b.len);
	assert_int_equal(got.s[1].delta.payload_bytes[FLOW_DIR_EGRESS], 700);
	assert_int_equal(got.s[1].ifindex, 1);
	assert_true(got.s[1].ts_ns >= got.s[0].ts_ns);
}

/* --- the per-CPU flow cache ---------------------------------------------------------- */

static void set_sample_interval(struct fixture *fx, __u64 interval_ns)
{
	struct reflex_config cfg = { .sample_interval_ns = interval_ns };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(fx->skel->maps.reflex_config), &zero, &cfg, BPF_ANY), 0);
}

static void tcp4_frame(struct frame *f, uint16_t lport, uint16_t rport)
{
	f->len = 0;
	put_eth(f, 0x0800);
	put_ipv4(f, IPPROTO_TCP, "10.4.0.1", "10.4.0.2", 0, 0);
	put_tcp(f, lport, rport, NULL, 0);
	put_payload(f, 100);
	finish(f);
}

static __u64 egress_packets(struct fixture *fx, const struct flow_key *key)
{
	return flow_of(fx, key).total.packets[FLOW_DIR_EGRESS];
}

/*
 * Between samples a flow is counted in its slot of the CPU's cache, and tc_flows gets
 * the count back when another flow takes the slot: exactly, every time, also when the
 * LRU pushed the flow's entry out meanwhile (then as an insert, so that reflexd counts
 * the eviction). No sample is ever due here, so only the write-backs move tc_flows.
 */
static void test_cache_writes_back_displaced_flows(void **state)
{
	struct fixture *fx = *state;
	struct flow_key a = key4(IPPROTO_TCP, "10.4.0.1", 40000, "10.4.0.2", 5201), b = a, c = a;
	struct frame fa, fb, fc;
	cpu_set_t one_cpu, before;

	/* The cache is per CPU: every run on one CPU, so that the flows meet in it. */
	assert_int_equal(sched_getaffinity(0, sizeof(before), &before), 0);
	CPU_ZERO(&one_cpu);
	CPU_SET(sched_getcpu(), &one_cpu);
	assert_int_equal(sched_setaffinity(0, sizeof(one_cpu), &one_cpu), 0);
	set_sample_interval(fx, ~0ULL);
	while (b.sport == a.sport || tc_flow_cache_slot(&b) != tc_flow_cache_slot(&a))
		b.sport++;
	while (c.sport == a.sport || tc_flow_cache_slot(&c) == tc_flow_cache_slot(&a))
		c.sport++;
	tcp4_frame(&fa, a.sport, a.dport);
	tcp4_frame(&fb, b.sport, b.dport);
	tcp4_frame(&fc, c.sport, c.dport);

	run(fx, EGRESS, &fa, 0);
	run(fx, EGRESS, &fa, 0);
	run(fx, EGRESS, &fc, 0);
	assert_int_equal(egress_packets(fx, &a), 0); /* still in its slot; c took another */
	run(fx, EGRESS, &fb, 0);
	assert_int_equal(egress_packets(fx, &a), 2);
	assert_int_equal(egress_packets(fx, &b), 0);
	run(fx, EGRESS, &fa, 0);
	assert_int_equal(egress_packets(fx, &b), 1);
	run(fx, EGRESS, &fb, 0);
	assert_int_equal(egress_packets(fx, &a), 3);
	assert_int_equal(counter(fx, CNT_TC_FLOW_NEW), 3);
	assert_int_equal(counter(fx, CNT_TC_SAMPLES), 0);

	/* b's entry gone (as the LRU does) while b is cached: its write-back puts it back. */
	run(fx, EGRESS, &fb, 0);
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(fx->skel->maps.tc_flows), &b), 0);
	run(fx, EGRESS, &fa, 0);
	assert_int_equal(egress_packets(fx, &b), 3);
	assert_int_equal(counter(fx, CNT_TC_FLOW_NEW), 4);
	assert_int_equal(flow_count(fx), 3);
	assert_int_equal(counter(fx, CNT_TC_PACKETS), 8);
	assert_int_equal(sched_setaffinity(0, sizeof(before), &before), 0);
}

/* A sample writes the flow back: after it, tc_flows agrees with the ring. */
static void test_cache_writes_back_at_samples(void **state)
{
	struct fixture *fx = *state;
	struct flow_key k = key4(IPPROTO_TCP, "10.4.0.1", 40100, "10.4.0.2", 5201);
	struct frame f;

	set_sample_interval(fx, ~0ULL);
	tcp4_frame(&f, k.sport, k.dport);
	run(fx, EGRESS, &f, 0);
	run(fx, EGRESS, &f, 0);
	set_sample_interval(fx, 1);
	usleep(20 * 1000); /* past the jiffy in which the flow found no sample due */
	run(fx, EGRESS, &f, 0);
	assert_int_equal(counter(fx, CNT_TC_SAMPLES), 1);
	assert_int_equal(egress_packets(fx, &k), 3);
}

/* --- skipped frames ------------------------------------------------------------------ */

/* 802.1Q-tagged frames in the packet data are not parsed (the kernel usually moves the
 * tag into skb->vlan_tci before tc, so tc sees untagged frames). */
static void test_vlan_tag_skipped(void **state)
{
	struct fixture *fx = *state;
	struct frame f = { .len = 0 };

	put_eth(&f, 0x8100);
	put16(&f, 100);     /* VLAN id 100 */
	put16(&f, 0x0800);
	put_ipv4(&f, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&f, 40000, 5201, NULL, 0);
	finish(&f);
	run(fx, EGRESS, &f, 0);
	expect_skipped(fx, 1);
}

/* The parser follows no IPv6 extension header: hop-by-hop and fragment headers skip. */
static void test_ipv6_extension_headers_skipped(void **state)
{
	struct fixture *fx = *state;
	struct frame hbh = { .len = 0 }, frag = { .len = 0 };

	put_eth(&hbh, 0x86dd);
	put_ipv6(&hbh, 0 /* hop-by-hop */, "2001:db8::1", "2001:db8::2");
	put(&hbh, (uint8_t[]){ IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0 }, 8); /* PadN */
	put_tcp(&hbh, 40000, 80, NULL, 0);
	finish(&hbh);
	put_eth(&frag, 0x86dd);
	put_ipv6(&frag, 44 /* fragment */, "2001:db8::1", "2001:db8::2");
	put(&frag, (uint8_t[]){ IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 42 }, 8);
	put_udp(&frag, 5000, 5001);
	finish(&frag);
	run(fx, EGRESS, &hbh, 0);
	run(fx, INGRESS, &frag, 0);
	expect_skipped(fx, 2);
}

/* Every header cut short by the end of the data: nothing is read past it. (A frame cut
 * inside its IPv4 or IPv6 header cannot be tested: BPF_PROG_TEST_RUN refuses it.) */
static void test_truncated_headers_skipped(void **state)
{
	struct fixture *fx = *state;
	struct frame full4 = { .len = 0 }, full6 = { .len = 0 }, udp4 = { .len = 0 }, long_ihl = { .len = 0 };
	const struct {
		const struct frame *f;
		size_t len;
	} cuts[] = {
		{ &full4, ETH_HLEN + IPV4_HLEN },                 /* no TCP header */
		{ &full4, ETH_HLEN + IPV4_HLEN + TCP_HLEN - 1 },  /* TCP header one byte short */
		{ &udp4, ETH_HLEN + IPV4_HLEN + UDP_HLEN - 1 },   /* UDP header one byte short */
		{ &full6, ETH_HLEN + IPV6_HLEN + 4 },             /* inside the TCP header */
		{ &long_ihl, ETH_HLEN + IPV4_HLEN + TCP_HLEN },   /* IHL 15: TCP would start past the end */
	};

	put_eth(&full4, 0x0800);
	put_ipv4(&full4, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&full4, 1, 2, NULL, 0);
	finish(&full4);
	put_eth(&udp4, 0x0800);
	put_ipv4(&udp4, IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_udp(&udp4, 1, 2);
	finish(&udp4);
	long_ihl = full4;
	long_ihl.b[ETH_HLEN] = 0x4f;
	put_eth(&full6, 0x86dd);
	put_ipv6(&full6, IPPROTO_TCP, "2001:db8::1", "2001:db8::2");
	put_tcp(&full6, 1, 2, NULL, 0);
	finish(&full6);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct frame cut = *cuts[i].f;

		cut.len = cuts[i].len;
		if (cut.len > ETH_HLEN)
			finish(&cut); /* lengths that agree with the data, as a sender's would */
		run(fx, i % 2 ? INGRESS : EGRESS, &cut, 0);
	}
	expect_skipped(fx, sizeof(cuts) / sizeof(cuts[0]));
}

/* Not TCP or UDP, a later fragment, a bad IHL, or not IP at all. */
static void test_other_frames_skipped(void **state)
{
	struct fixture *fx = *state;
	struct frame icmp = { .len = 0 }, later = { .len = 0 }, bad_ihl = { .len = 0 }, arp = { .len = 0 };

	put_eth(&icmp, 0x0800);
	put_ipv4(&icmp, 1 /* ICMP */, "10.0.0.1", "10.0.0.2", 0, 0);
	put_payload(&icmp, 16);
	finish(&icmp);
	put_eth(&later, 0x0800);
	put_ipv4(&later, IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 0, 185 /* offset 1480 bytes */);
	put_payload(&later, 100);
	finish(&later);
	put_eth(&bad_ihl, 0x0800);
	put_ipv4(&bad_ihl, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 0, 0);
	put_tcp(&bad_ihl, 1, 2, NULL, 0);
	finish(&bad_ihl);
	bad_ihl.b[ETH_HLEN] = 0x44; /* IHL 4: shorter than an IPv4 header */
	put_eth(&arp, 0x0806);
	put_payload(&arp, 28);
	run(fx, EGRESS, &icmp, 0);
	run(fx, EGRESS, &later, 0);
	run(fx, INGRESS, &bad_ihl, 0);
	run(fx, INGRESS, &arp, 0);
	expect_skipped(fx, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ipv4_tcp_ack_egress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_tcp_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_options_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_tcp_both_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gso_packet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv4_first_fragment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_samples_carry_deltas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_writes_back_displaced_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_writes_back_at_samples, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlan_tag_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_extension_headers_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_headers_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_frames_skipped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
