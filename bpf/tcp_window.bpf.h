/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * The TCP header fields the edge router reads beyond parsing.bpf.h (timestamps,
 * window, window scale) and the receive-window rewrite that enforces reflexd's
 * caps on forwarded flows, AC/DC TCP's way (SIGCOMM 2016).
 */
#ifndef REFLEX_TCP_WINDOW_BPF_H
#define REFLEX_TCP_WINDOW_BPF_H

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "reflex_router.h"

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_WINDOW 3
#define TCPOLEN_WINDOW 3
#define TCPOPT_TIMESTAMP 8
#define TCPOLEN_TIMESTAMP 10
#define TCP_OPTIONS_MAX_BYTES 40
/* Real stacks put MSS, SACK-permitted, timestamps and the window scale in at most 9
 * options with their NOP padding. */
#define MAX_TCP_OPTIONS 12

struct tcp_fields {
	__u32 tsval;
	__u32 tsecr;
	__u16 window;  /* as on the wire, unscaled */
	__u8 wscale;   /* SYN: the window scale option's shift (capped at 14), else ROUTER_WSCALE_NONE */
	bool has_ts;
};

/* The option bytes of one header and what was found in them so far. */
struct tcp_options {
	__u8 bytes[TCP_OPTIONS_MAX_BYTES];
	__u32 len; /* of bytes, <= TCP_OPTIONS_MAX_BYTES */
	__u32 off; /* of the next option */
	bool syn;
	struct tcp_fields *f;
};

/* One option (bpf_loop's body: verified once, however many options there are);
 * 1 when there is nothing more to look for. */
static long tcp_option_step(__u64 index, void *ctx)
{
	struct tcp_options *o = ctx;
	struct tcp_fields *f = o->f;
	__u32 off = o->off;
	__u8 kind, size;

	(void)index;
	if (off >= o->len || off > TCP_OPTIONS_MAX_BYTES - 1)
		return 1;
	kind = o->bytes[off];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		o->off = off + 1;
		return 0;
	}
	if (off + 2 > o->len || off > TCP_OPTIONS_MAX_BYTES - 2)
		return 1;
	size = o->bytes[off + 1];
	if (size < 2 || off + size > o->len)
		return 1;
	if (kind == TCPOPT_TIMESTAMP && size == TCPOLEN_TIMESTAMP && off <= TCP_OPTIONS_MAX_BYTES - TCPOLEN_TIMESTAMP) {
		__u32 v, e;

		__builtin_memcpy(&v, o->bytes + off + 2, sizeof(v));
		__builtin_memcpy(&e, o->bytes + off + 6, sizeof(e));
		f->tsval = bpf_ntohl(v);
		f->tsecr = bpf_ntohl(e);
		f->has_ts = true;
	} else if (kind == TCPOPT_WINDOW && size == TCPOLEN_WINDOW && o->syn &&
		   off <= TCP_OPTIONS_MAX_BYTES - TCPOLEN_WINDOW) {
		__u8 shift = o->bytes[off + 2];

		/* RFC 7323 2.3: a larger shift is used as 14. */
		f->wscale = shift > ROUTER_WSCALE_MAX ? ROUTER_WSCALE_MAX : shift;
	}
	if (f->has_ts && (!o->syn || f->wscale != ROUTER_WSCALE_NONE))
		return 1;
	o->off = off + size;
	return 0;
}

/* The window, the timestamps (as ePPing parses them) and, on a SYN, the window
 * scale. The options are copied out and walked by bpf_loop: an unrolled walk
 * over packet pointers branches too much for the verifier. */
static __always_inline void tcp_fields_read(struct __sk_buff *skb, __u32 l4_offset, struct tcp_fields *f)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct tcp_options o;
	struct tcphdr *th;
	__u32 doff;

	f->tsval = 0;
	f->tsecr = 0;
	f->window = 0;
	f->wscale = ROUTER_WSCALE_NONE;
	f->has_ts = false;
	if (l4_offset > 128)
		return;
	th = data + l4_offset;
	if ((void *)(th + 1) > data_end)
		return;
	f->window = bpf_ntohs(th->window);
	o.syn = th->syn;
	doff = th->doff;
	if (doff <= 5)
		return;
	o.len = (doff - 5) * 4;
	o.off = 0;
	o.f = f;
	if (o.len > TCP_OPTIONS_MAX_BYTES || bpf_skb_load_bytes(skb, l4_offset + sizeof(*th), o.bytes, o.len))
		return;
	bpf_loop(MAX_TCP_OPTIONS, tcp_option_step, &o, 0);
}

/*
 * The window (units of 2^shift bytes) an ACK leaves with under a cap of cap_bytes:
 * never above what the receiver advertised, and never 0 when it advertised more.
 * A zero window would put the sender into persist mode, sending nothing but
 * zero-window probes on a backed-off timer (hundreds of ms at least) instead of
 * being clocked by ACKs; one unit is the smallest window the ACK's sender can
 * express, so a cap below 2^shift bytes is enforced as 2^shift.
 */
static __always_inline __u16 wnd_capped(__u16 window, __u32 cap_bytes, __u8 shift)
{
	__u32 cap_units = cap_bytes >> (shift > ROUTER_WSCALE_MAX ? ROUTER_WSCALE_MAX : shift);

	if (cap_units >= window)
		return window;
	return cap_units ? (__u16)cap_units : 1;
}

/*
 * Writes the window and fixes the TCP checksum incrementally (the window is not in
 * the pseudo header). Without checksum offload this updates the checksum field; on
 * CHECKSUM_PARTIAL (GSO/GRO super-packets, veth) the field holds only the pseudo
 * header's sum, which the helper leaves alone, and the segments' checksums are
 * computed from the rewritten header later. A CHECKSUM_COMPLETE skb->csum stays
 * valid: the window and checksum changes cancel in the segment's sum. Packet
 * pointers are invalid after this. 0, or -1 with the packet as it was.
 */
static __always_inline int wnd_store(struct __sk_buff *skb, __u32 l4_offset, __u16 old_window, __u16 new_window)
{
	__u32 window_offset = l4_offset + __builtin_offsetof(struct tcphdr, window);
	__be16 from = bpf_htons(old_window), to = bpf_htons(new_window);

	if (bpf_skb_store_bytes(skb, window_offset, &to, sizeof(to), 0))
		return -1;
	if (bpf_l4_csum_replace(skb, l4_offset + __builtin_offsetof(struct tcphdr, check), from, to, sizeof(to))) {
		/* The store made the header writable: putting the old window back cannot fail. */
		bpf_skb_store_bytes(skb, window_offset, &from, sizeof(from), 0);
		return -1;
	}
	return 0;
}

#endif /* REFLEX_TCP_WINDOW_BPF_H */
