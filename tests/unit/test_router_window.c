// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The receive-window rewrite of bpf/router.bpf.c in the kernel (BPF_PROG_TEST_RUN on
 * the real programs, maps unpinned): after a handshake with window scales 0..14 each,
 * an ACK towards a capped sender leaves with min(advertised, cap >> the scale of the
 * ACK's own sender), never larger, never 0 for a non-zero window, with a TCP checksum
 * that a reference implementation here recomputes from scratch, IPv4 and IPv6, also
 * on a GSO super-packet with payload; everything else is byte-identical: no cap, a
 * handshake not seen (wnd_no_handshake), a stale heartbeat (wnd_stale), SYN windows.
 * Needs root (skipped without it).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "packets.h"
#include "router_skel.h"

#define LO_IFINDEX 1
#define TC_ACT_UNSPEC (-1)
#define GSO_SIZE 700
#define LAN4 "10.20.0.2"
#define FAR4 "198.51.100.9"
#define LAN6 "fd00:20::2"
#define FAR6 "2001:db8:9::9"
#define FAR_PORT 443
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define TCP_FLAG_RST 0x04
#define NO_WSCALE (-1)
#define SYN_WINDOW 64240
#define TCP_WINDOW_OFFSET 14
#define TCP_CHECK_OFFSET 16

static struct router_bpf *skel;

static int setup(void **state)
{
	struct reflex_config cfg = { .sample_interval_ns = 1 };
	uint32_t zero = 0;

	(void)state;
	if (geteuid() != 0)
		return 0;
	skel = router_skel_load(0);
	if (!skel)
		return -1;
	/* Every packet samples, so that the newest sample shows the flow after it. */
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.reflex_config), &zero, &cfg, BPF_ANY))
		return -1;
	router_heartbeat(skel, mono_ns());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	router_bpf__destroy(skel);
	skel = NULL;
	return 0;
}

/* --- frames ------------------------------------------------------------------- */

struct seg {
	int family;
	enum router_dir dir; /* UP: LAN end -> far end */
	uint16_t lan_port;
	uint8_t flags;
	uint16_t window;
	int wscale;          /* SYN: the option's shift, NO_WSCALE for none */
	size_t payload;
};

static size_t l4_offset(const struct frame *f)
{
	return f->l3 + ((f->b[f->l3] >> 4) == 4 ? (size_t)(f->b[f->l3] & 0xf) * 4 : IPV6_HLEN);
}

static uint32_t sum16(const uint8_t *b, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)b[i] << 8 | b[i + 1];
	if (n % 2)
		acc += (uint32_t)b[n - 1] << 8;
	return acc;
}

/* RFC 1071 over the pseudo header and the whole segment, checksum field included:
 * 0xffff for a valid segment. */
static uint16_t tcp_sum(const struct frame *f)
{
	size_t l4 = l4_offset(f), len = f->len - l4;
	uint32_t acc = 0;

	if ((f->b[f->l3] >> 4) == 4) {
		acc = sum16(f->b + f->l3 + 12, 8, acc);
		acc += IPPROTO_TCP + (uint32_t)len;
	} else {
		acc = sum16(f->b + f->l3 + 8, 32, acc);
		acc += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff) + IPPROTO_TCP;
	}
	acc = sum16(f->b + l4, len, acc);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

static void tcp_checksum_set(struct frame *f)
{
	size_t check = l4_offset(f) + TCP_CHECK_OFFSET;
	uint16_t net;

	f->b[check] = 0;
	f->b[check + 1] = 0;
	net = htons((uint16_t)~tcp_sum(f));
	memcpy(f->b + check, &net, 2);
}

static uint16_t window_of(const struct frame *f)
{
	size_t off = l4_offset(f) + TCP_WINDOW_OFFSET;

	return (uint16_t)(f->b[off] << 8 | f->b[off + 1]);
}

/* A segment as Linux builds it: SYNs with MSS, SACK-permitted, timestamps and the
 * window scale behind them (the option the parser must go past the timestamps for),
 * other segments with timestamps only; a valid checksum. */
static struct frame frame_of(const struct seg *s)
{
	bool up = s->dir == ROUTER_DIR_UP, v4 = s->family == AF_INET;
	const char *lan = v4 ? LAN4 : LAN6, *far = v4 ? FAR4 : FAR6;
	uint8_t opts[20];
	size_t n = 0;
	struct frame f = { .len = 0 };

	if (s->flags & TCP_FLAG_SYN) {
		memcpy(opts + n, (uint8_t[]){ 2, 4, 0x05, 0xb4, 4, 2 }, 6);
		n += 6;
	} else {
		memcpy(opts + n, (uint8_t[]){ 1, 1 }, 2);
		n += 2;
	}
	memcpy(opts + n, (uint8_t[]){ 8, 10, 0, 0, 0x30, up ? 0x39 : 0x40, 0, 0, 0x30, up ? 0x40 : 0x39 }, 10);
	n += 10;
	if ((s->flags & TCP_FLAG_SYN) && s->wscale != NO_WSCALE) {
		memcpy(opts + n, (uint8_t[]){ 1, 3, 3, (uint8_t)s->wscale }, 4);
		n += 4;
	}
	put_eth(&f, v4 ? 0x0800 : 0x86dd);
	if (v4)
		put_ipv4(&f, IPPROTO_TCP, up ? lan : far, up ? far : lan, 0, 0);
	else
		put_ipv6(&f, IPPROTO_TCP, up ? lan : far, up ? far : lan);
	put16(&f, up ? s->lan_port : FAR_PORT);
	put16(&f, up ? FAR_PORT : s->lan_port);
	put32(&f, up ? 1000 : 5000);
	put32(&f, (s->flags & TCP_FLAG_ACK) ? (up ? 5001 : 1001) : 0);
	put(&f, (uint8_t[]){ (uint8_t)((5 + n / 4) << 4), s->flags }, 2);
	put16(&f, s->window);
	put16(&f, 0);
	put16(&f, 0);
	put(&f, opts, n);
	put_payload(&f, s->payload);
	finish(&f);
	tcp_checksum_set(&f);
	return f;
}

static struct flow_key key_of(int family, uint16_t lan_port)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = (uint8_t)family;
	k.proto = IPPROTO_TCP;
	k.sport = lan_port;
	k.dport = FAR_PORT;
	assert_int_equal(inet_pton(family, family == AF_INET ? LAN4 : LAN6, k.saddr), 1);
	assert_int_equal(inet_pton(family, family == AF_INET ? FAR4 : FAR6, k.daddr), 1);
	return k;
}

/* The frame through the program of its direction; the frame it leaves as. */
static struct frame run(const struct frame *in, enum router_dir dir, uint32_t gso_segs)
{
	struct __sk_buff ctx = { .ifindex = LO_IFINDEX, .ingress_ifindex = dir == ROUTER_DIR_DOWN ? LO_IFINDEX : 0,
				 .gso_segs = gso_segs, .gso_size = gso_segs > 1 ? GSO_SIZE : 0 };
	struct bpf_program *prog = dir == ROUTER_DIR_UP ? skel->progs.router_lan_ingress : skel->progs.router_lan_egress;
	struct frame out = { .len = 0, .l3 = in->l3 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->b, .data_size_in = (uint32_t)in->len,
			    .data_out = out.b, .data_size_out = sizeof(out.b), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx));

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0);
	assert_int_equal((int)opts.retval, TC_ACT_UNSPEC);
	out.len = opts.data_size_out;
	assert_int_equal(out.len, in->len);
	return out;
}

static void expect_identical(const struct frame *in, const struct frame *out)
{
	assert_int_equal(out->len, in->len);
	assert_memory_equal(out->b, in->b, in->len);
}

/* --- maps ------------------------------------------------------------------------ */

static struct router_flow flow_of(const struct flow_key *k)
{
	struct router_flow flow;

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.router_flows), k, &flow))
		fail_msg("no router_flows entry for LAN port %u: %s", k->sport, strerror(errno));
	return flow;
}

static void cap_set(const struct flow_key *k, uint32_t cap_up, uint32_t cap_down)
{
	struct router_wnd_cap cap = { .cap_bytes = { cap_up, cap_down }, .decided_ns = mono_ns() };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.router_wnd_caps), k, &cap, BPF_ANY), 0);
}

/* --- steps ------------------------------------------------------------------------ */

/* SYN from the LAN end, SYN-ACK from the far end, both passing unchanged. */
static void handshake(int family, uint16_t lan_port, int wscale_lan, int wscale_far)
{
	struct seg syn = { family, ROUTER_DIR_UP, lan_port, TCP_FLAG_SYN, SYN_WINDOW, wscale_lan, 0 };
	struct seg synack = { family, ROUTER_DIR_DOWN, lan_port, TCP_FLAG_SYN | TCP_FLAG_ACK, SYN_WINDOW, wscale_far, 0 };
	struct frame in = frame_of(&syn), out = run(&in, ROUTER_DIR_UP, 0);

	expect_identical(&in, &out);
	in = frame_of(&synack);
	out = run(&in, ROUTER_DIR_DOWN, 0);
	expect_identical(&in, &out);
}

/* The window the rewrite must leave, from the rule itself. */
static uint16_t expected_window(uint16_t advertised, uint32_t cap_bytes, unsigned scale)
{
	uint32_t cap_units = cap_bytes >> scale;

	if (cap_units >= advertised)
		return advertised;
	return cap_units ? (uint16_t)cap_units : 1;
}

/* An ACK towards data direction d's sender (it travels the other way) with
 * `window`, under cap_bytes on d: the window the ACK's sender scales by `scale`. */
static void expect_capped_ack(int family, uint16_t lan_port, enum router_dir d, uint16_t window, uint32_t cap_bytes,
			      unsigned scale, size_t payload, uint32_t gso_segs)
{
	enum router_dir ack_dir = d == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP;
	struct seg ack = { family, ack_dir, lan_port, TCP_FLAG_ACK, window, NO_WSCALE, payload };
	struct flow_key k = key_of(family, lan_port);
	struct frame in = frame_of(&ack), out;
	uint64_t rewritten = router_counter(skel, ROUTER_CNT_WND_REWRITTEN);
	uint16_t want = expected_window(window, cap_bytes, scale), got;
	size_t win_off = l4_offset(&in) + TCP_WINDOW_OFFSET;

	cap_set(&k, d == ROUTER_DIR_UP ? cap_bytes : 0, d == ROUTER_DIR_DOWN ? cap_bytes : 0);
	out = run(&in, ack_dir, gso_segs);
	got = window_of(&out);
	if (got != want || got > window)
		fail_msg("family %d dir %d scale %u: window %u under cap %u left as %u, want %u", family, d, scale,
			 window, cap_bytes, got, want);
	assert_int_equal(tcp_sum(&out), 0xffff);
	/* Nothing but the window and the checksum changed. */
	assert_memory_equal(out.b, in.b, win_off);
	assert_memory_equal(out.b + win_off + 4, in.b + win_off + 4, in.len - win_off - 4);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), rewritten + (got < window));
	assert_int_equal(flow_of(&k).wnd_enforced[d], (uint32_t)got << scale);
}

/* --- tests ------------------------------------------------------------------------ */

static const struct {
	uint16_t window;
	uint32_t cap_bytes;
} cases[] = {
	{ 65535, 1u << 20 }, { 1000, 1u << 20 }, { 5000, 300000 }, { 40000, 100 },
	{ 0, 100 },          { 1, 50000 },       { 65535, UINT32_MAX }, { 30000, 64 * 1024 },
};

static void all_scales(int family)
{
	for (unsigned scale = 0; scale <= ROUTER_WSCALE_MAX; scale++) {
		/* The two ends announce different shifts: using the wrong one shows. */
		unsigned far_scale = (scale + 7) % (ROUTER_WSCALE_MAX + 1);
		uint16_t port = (uint16_t)(41000 + scale);
		struct flow_key k = key_of(family, port);
		struct router_flow flow;
		uint64_t rtt_ts = router_counter(skel, ROUTER_CNT_RTT_TS);

		handshake(family, port, (int)scale, (int)far_scale);
		flow = flow_of(&k);
		assert_true(flow.flags & ROUTER_FLOW_HANDSHAKE);
		assert_int_equal(flow.wscale[ROUTER_DIR_UP], scale);
		assert_int_equal(flow.wscale[ROUTER_DIR_DOWN], far_scale);
		/* The SYN-ACK echoed the SYN's TSval: timestamps before the scale still parse. */
		assert_int_equal(router_counter(skel, ROUTER_CNT_RTT_TS), rtt_ts + 1);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			/* Upload: the far end's ACKs, in its scale; download: the LAN end's. */
			expect_capped_ack(family, port, ROUTER_DIR_UP, cases[i].window, cases[i].cap_bytes, far_scale, 0, 0);
			expect_capped_ack(family, port, ROUTER_DIR_DOWN, cases[i].window, cases[i].cap_bytes, scale, 0, 0);
		}
	}
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_NO_HANDSHAKE), 0);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_STALE), 0);
}

static void test_all_scales_ipv4(void **state)
{
	(void)state;
	if (!skel)
		skip();
	all_scales(AF_INET);
}

static void test_all_scales_ipv6(void **state)
{
	(void)state;
	if (!skel)
		skip();
	all_scales(AF_INET6);
}

/* An ACK with `window` in direction ack_dir, which must pass byte-identical. */
static void expect_untouched_ack(int family, uint16_t lan_port, enum router_dir ack_dir, uint16_t window)
{
	struct seg ack = { family, ack_dir, lan_port, TCP_FLAG_ACK, window, NO_WSCALE, 0 };
	struct frame in = frame_of(&ack), out = run(&in, ack_dir, 0);

	expect_identical(&in, &out);
}

static void test_no_cap_untouched(void **state)
{
	struct flow_key k = key_of(AF_INET, 42000);
	struct router_flow flow;

	(void)state;
	if (!skel)
		skip();
	handshake(AF_INET, 42000, 7, 9);
	expect_untouched_ack(AF_INET, 42000, ROUTER_DIR_DOWN, 3000);
	expect_untouched_ack(AF_INET, 42000, ROUTER_DIR_UP, 2000);
	/* What passed is recorded in bytes, each in its sender's scale. */
	flow = flow_of(&k);
	assert_int_equal(flow.wnd_enforced[ROUTER_DIR_UP], 3000u << 9);
	assert_int_equal(flow.wnd_enforced[ROUTER_DIR_DOWN], 2000u << 7);
	/* A cap on the upload leaves the download's ACKs alone, and the reverse. */
	cap_set(&k, 0, 1000);
	expect_untouched_ack(AF_INET, 42000, ROUTER_DIR_DOWN, 3000);
	cap_set(&k, 1000, 0);
	expect_untouched_ack(AF_INET, 42000, ROUTER_DIR_UP, 2000);
	/* A RST's window is nobody's receive window. */
	{
		struct seg rst = { AF_INET, ROUTER_DIR_DOWN, 42000, TCP_FLAG_RST | TCP_FLAG_ACK, 3000, NO_WSCALE, 0 };
		struct frame in = frame_of(&rst), out;

		cap_set(&k, 1000, 1000);
		out = run(&in, ROUTER_DIR_DOWN, 0);
		expect_identical(&in, &out);
	}
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), 0);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_NO_HANDSHAKE), 0);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_STALE), 0);
}

static void test_no_handshake_untouched(void **state)
{
	struct flow_key mid = key_of(AF_INET6, 42100), half = key_of(AF_INET6, 42101);
	struct seg syn = { AF_INET6, ROUTER_DIR_UP, 42101, TCP_FLAG_SYN, SYN_WINDOW, 7, 0 };
	struct frame in, out;

	(void)state;
	if (!skel)
		skip();
	/* First seen mid-stream: its ACK from the LAN creates the flow. */
	expect_untouched_ack(AF_INET6, 42100, ROUTER_DIR_UP, 2000);
	cap_set(&mid, 1000, 1000);
	expect_untouched_ack(AF_INET6, 42100, ROUTER_DIR_DOWN, 3000);
	expect_untouched_ack(AF_INET6, 42100, ROUTER_DIR_UP, 2000);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_NO_HANDSHAKE), 2);
	assert_false(flow_of(&mid).flags & ROUTER_FLOW_HANDSHAKE);
	assert_int_equal(flow_of(&mid).wscale[ROUTER_DIR_UP], ROUTER_WSCALE_NONE);
	assert_int_equal(flow_of(&mid).wscale[ROUTER_DIR_DOWN], ROUTER_WSCALE_NONE);
	assert_int_equal(flow_of(&mid).wnd_enforced[ROUTER_DIR_UP], 0);
	/* The SYN seen, the SYN-ACK not (the far end's scale is unknown). */
	in = frame_of(&syn);
	out = run(&in, ROUTER_DIR_UP, 0);
	expect_identical(&in, &out);
	cap_set(&half, 1000, 1000);
	expect_untouched_ack(AF_INET6, 42101, ROUTER_DIR_UP, 2000);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_NO_HANDSHAKE), 3);
	assert_int_equal(flow_of(&half).wscale[ROUTER_DIR_UP], 7);
	assert_false(flow_of(&half).flags & ROUTER_FLOW_HANDSHAKE);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), 0);
}

static void test_stale_heartbeat_untouched(void **state)
{
	struct flow_key k = key_of(AF_INET, 42200);

	(void)state;
	if (!skel)
		skip();
	handshake(AF_INET, 42200, 7, 7);
	cap_set(&k, 1000, 1000);
	/* 700 ms old: past the hosts' 500 ms deadline that windows follow, though within
	 * the router's 1 s for placing new flows; 2 s old; then never beaten at all. */
	router_heartbeat(skel, mono_ns() - 700ULL * 1000 * 1000);
	expect_untouched_ack(AF_INET, 42200, ROUTER_DIR_DOWN, 3000);
	router_heartbeat(skel, mono_ns() - 2000ULL * 1000 * 1000);
	expect_untouched_ack(AF_INET, 42200, ROUTER_DIR_DOWN, 3000);
	router_heartbeat(skel, 0);
	expect_untouched_ack(AF_INET, 42200, ROUTER_DIR_UP, 3000);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_STALE), 3);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), 0);
	/* 300 ms old, inside the deadline: the same ACK is capped. */
	router_heartbeat(skel, mono_ns() - 300ULL * 1000 * 1000);
	expect_capped_ack(AF_INET, 42200, ROUTER_DIR_UP, 3000, 1000 << 7, 7, 0, 0);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), 1);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_STALE), 3);
}

/* SYN windows are never scaled (RFC 7323), so never capped, whatever the cap. */
static void test_syn_windows_untouched(void **state)
{
	struct flow_key k = key_of(AF_INET6, 42300);

	(void)state;
	if (!skel)
		skip();
	cap_set(&k, 1, 1);
	handshake(AF_INET6, 42300, 2, 3);
	/* A retransmitted SYN-ACK after the handshake completed, too. */
	handshake(AF_INET6, 42300, 2, 3);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), 0);
	assert_true(flow_of(&k).flags & ROUTER_FLOW_HANDSHAKE);
	/* The ACK after it is capped to one unit of the sender's scale, not to 0. */
	expect_capped_ack(AF_INET6, 42300, ROUTER_DIR_UP, 3000, 1, 3, 0, 0);
}

/* The newest sample of the ring (every packet samples here). */
static int keep_last(void *ctx, void *data, size_t size)
{
	if (size != sizeof(struct router_sample))
		return -EINVAL;
	memcpy(ctx, data, size);
	return 0;
}

static struct router_sample last_sample(void)
{
	struct router_sample s;
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.router_events), keep_last, &s, NULL);

	memset(&s, 0, sizeof(s));
	assert_non_null(rb);
	assert_true(ring_buffer__consume(rb) > 0);
	ring_buffer__free(rb);
	return s;
}

/* RFC 7323 2.3: a shift above 14 is used as 14. */
static void test_wscale_above_14(void **state)
{
	struct flow_key k = key_of(AF_INET, 42400);
	struct router_sample s;

	(void)state;
	if (!skel)
		skip();
	handshake(AF_INET, 42400, 15, 255);
	assert_int_equal(flow_of(&k).wscale[ROUTER_DIR_UP], 14);
	assert_int_equal(flow_of(&k).wscale[ROUTER_DIR_DOWN], 14);
	expect_capped_ack(AF_INET, 42400, ROUTER_DIR_UP, 3000, 100u << 14, 14, 0, 0);
	expect_capped_ack(AF_INET, 42400, ROUTER_DIR_DOWN, 3000, 200u << 14, 14, 0, 0);
	/* Samples carry the scales and what was enforced, as of the packet before
	 * theirs (the rewrite comes after the flow's update). */
	expect_capped_ack(AF_INET, 42400, ROUTER_DIR_DOWN, 3000, 200u << 14, 14, 0, 0);
	s = last_sample();
	assert_int_equal(s.wscale[ROUTER_DIR_UP], 14);
	assert_int_equal(s.wscale[ROUTER_DIR_DOWN], 14);
	assert_int_equal(s.wnd_enforced[ROUTER_DIR_UP], 100u << 14);
	assert_int_equal(s.wnd_enforced[ROUTER_DIR_DOWN], 200u << 14);
}

/* RFC 7323 2.2: one end without the option turns scaling off both ways. */
static void test_wscale_one_sided(void **state)
{
	struct flow_key no_synack = key_of(AF_INET, 42500), no_syn = key_of(AF_INET6, 42501);

	(void)state;
	if (!skel)
		skip();
	handshake(AF_INET, 42500, 7, NO_WSCALE);
	handshake(AF_INET6, 42501, NO_WSCALE, 7);
	for (int d = 0; d < ROUTER_DIR_MAX; d++) {
		assert_int_equal(flow_of(&no_synack).wscale[d], 0);
		assert_int_equal(flow_of(&no_syn).wscale[d], 0);
	}
	expect_capped_ack(AF_INET, 42500, ROUTER_DIR_UP, 30000, 20000, 0, 0, 0);
	expect_capped_ack(AF_INET6, 42501, ROUTER_DIR_DOWN, 30000, 20000, 0, 0, 0);
}

/* An ACK riding on a GRO/GSO super-packet with payload (the download's ACKs on the
 * LAN end's own upload): one header for all segments, rewritten once, the
 * checksum valid over all of the payload. */
static void test_gso_ack_with_payload(void **state)
{
	(void)state;
	if (!skel)
		skip();
	handshake(AF_INET, 42600, 7, 8);
	handshake(AF_INET6, 42601, 7, 8);
	expect_capped_ack(AF_INET, 42600, ROUTER_DIR_DOWN, 20000, 64u << 10, 7, 4 * GSO_SIZE, 4);
	expect_capped_ack(AF_INET6, 42601, ROUTER_DIR_UP, 20000, 64u << 10, 8, 3 * GSO_SIZE + 1, 4);
	assert_int_equal(router_counter(skel, ROUTER_CNT_WND_REWRITTEN), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_scales_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_scales_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_cap_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_handshake_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_heartbeat_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syn_windows_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wscale_above_14, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wscale_one_sided, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gso_ack_with_payload, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
