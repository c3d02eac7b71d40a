// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The edge router's tc programs: passive telemetry of forwarded TCP and UDP flows and
 * per-flow path steering.
 *
 * router_lan_ingress (clsact ingress of the LAN interface) sees every packet the LAN
 * sends out; router_lan_egress (clsact egress of the LAN interface) every packet that
 * comes back, whichever uplink it arrived on, after the kernel's NAT has turned it
 * back to the LAN endpoint's address. Only LAN packets create flows: a packet coming
 * back updates its flow or is counted (uplink_unknown), so nobody outside can fill
 * the table. Between them one `router_flows` entry per flow holds:
 *  - packets, bytes, payload, data segments per direction;
 *  - retransmissions: TCP segments that start below the highest sequence already
 *    seen in their direction (sequence regressions);
 *  - delivery: the ACK advance each direction carries;
 *  - RTT as ePPing measures it: the first packet with a new TSval (and payload, SYN
 *    or FIN, which the far end echoes at once; pure ACKs are echoed only with the
 *    next data) is remembered in `router_timestamps` with its time, at most once per
 *    flow, direction and sample interval; a packet the other way whose TSecr matches
 *    gives RTT = now - then. Without timestamps, one data segment per direction and
 *    interval is timed until an ACK covers its end (Karn: a retransmission cancels it).
 * At most one router_sample per flow and sample interval goes into `router_events`,
 * plus one at once when a flow appears and when it closes; samples wake userspace
 * every flush_threshold records.
 *
 * Steering goes through the kernel's routing, so that conntrack, NAT and the
 * firewall apply to every packet: the first LAN packet of a new flow (a SYN, or not
 * TCP) is placed on `router_next_path` of its class (`router_port_class`), which
 * reflexd keeps current with its bandit, while reflexd's heartbeat is fresh; every
 * up packet of a flow with a decision gets its path's mark in the mask's bits of
 * skb->mark and goes on into routing, where reflexd's `ip rule` (fwmark/mask ->
 * the path's table) sends it out of the path's uplink. The first packet decides
 * the uplink NAT binds the flow to, so a flow keeps its path for life.
 * Per-path health counts each flow's packets on the flow's path, whichever
 * interface its answers arrive on.
 *
 * Window caps (`router_wnd_caps`, reflexd's per flow and data direction) are
 * enforced on the ACKs going back to the data's sender by lowering their receive
 * window (tcp_window.bpf.h), scaled by the shift the ACKs' own sender announced in
 * the handshake seen here; see wnd_enforce.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "reflex_router.h"
#include "helpers.bpf.h"
#include "heartbeat.bpf.h"
#include "router_maps.bpf.h"
#include "parsing.bpf.h"
#include "tcp_window.bpf.h"

/* Not TC_ACT_OK: a later filter on the interface (the host reflexd's telemetry)
 * still sees the packet, which goes on into routing either way. */
#define TC_ACT_UNSPEC (-1)

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The --lan interface, set before load: what the uplinks' egress counts is what was
 * forwarded from it, not the router's own traffic. */
const volatile __u32 lan_ifindex = 0;

/* A parsed packet with the flow key oriented LAN end first. */
struct pkt {
	struct packet_info pi;
	struct flow_key key;
	__u64 segs;
	__u64 wire_bytes;
	__u64 payload;
	__u32 tsval;
	__u32 tsecr;
	__u32 ifindex;
	__u16 window; /* TCP: the window it leaves with (after any rewrite), unscaled */
	__u8 wscale;  /* TCP SYN: its window scale option, ROUTER_WSCALE_NONE without one */
	bool has_ts;
};

/* What the locked update decided, for the work done after the unlock. */
struct update_result {
	__u32 ts_store;   /* store p->tsval of this direction */
	__u32 rtt_seq;    /* an RTT came from SEQ/ACK matching */
	__u32 closed_now; /* the flow closed with this packet */
	__u32 event;      /* a sample was due: its event */
	/* For the per-path counters: */
	__u64 sent;       /* segments the other end must answer */
	__u64 retrans;
	__u64 delivered;  /* down: ACK advance over up data + payload */
};

static __always_inline void count(enum router_counter idx)
{
	percpu_counter_add(&router_counters, idx, 1);
}

static __always_inline bool seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int packet_read(struct __sk_buff *skb, enum router_dir dir, struct pkt *p)
{
	if (parse_packet(skb, &p->pi) < 0)
		return -1;
	p->key = p->pi.key;
	if (dir == ROUTER_DIR_DOWN)
		flow_key_swap(&p->key);
	/* A GSO/GRO super-packet carries its headers once but goes on the wire as
	 * gso_segs segments, each with its own headers. */
	p->segs = skb->gso_segs > 1 ? skb->gso_segs : 1;
	p->payload = skb->len > p->pi.headers_len ? skb->len - p->pi.headers_len : 0;
	p->wire_bytes = skb->len + (p->segs - 1) * p->pi.headers_len;
	/* The interface the packet came in on: the LAN, or the uplink of an answer. */
	p->ifindex = dir == ROUTER_DIR_DOWN ? skb->ingress_ifindex : skb->ifindex;
	p->has_ts = false;
	p->tsval = 0;
	p->tsecr = 0;
	p->window = 0;
	p->wscale = ROUTER_WSCALE_NONE;
	if (p->key.proto == IPPROTO_TCP) {
		struct tcp_fields f;

		tcp_fields_read(skb, p->pi.l4_offset, &f);
		p->has_ts = f.has_ts;
		p->tsval = f.tsval;
		p->tsecr = f.tsecr;
		p->window = f.window;
		p->wscale = f.wscale;
	}
	return 0;
}

static __always_inline __u32 path_of_ifindex(__u32 ifindex)
{
	for (__u32 i = 0; i < ROUTER_MAX_PATHS; i++) {
		__u32 idx = i;
		struct router_path_entry *rp = bpf_map_lookup_elem(&router_paths, &idx);

		if (rp && rp->ifindex && rp->ifindex == ifindex)
			return i;
	}
	return ROUTER_PATH_NONE;
}

/* Where the kernel's routing will send an unsteered packet, so that the per-path
 * counters also hold what nobody steered. */
static __always_inline __u32 path_by_fib(struct __sk_buff *skb, const struct pkt *p)
{
	struct bpf_fib_lookup fib = {};
	long ret;

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = p->key.proto;
	fib.sport = bpf_htons(p->key.sport);
	fib.dport = bpf_htons(p->key.dport);
	/* tot_len 0: no MTU check, which would hide the egress of a GSO packet. */
	if (p->key.family == AF_INET) {
		fib.family = AF_INET;
		fib.tos = p->pi.dscp << 2;
		fib.ipv4_src = p->key.saddr[0];
		fib.ipv4_dst = p->key.daddr[0];
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, p->key.saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, p->key.daddr, sizeof(fib.ipv6_dst));
	}
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH)
		return ROUTER_PATH_NONE;
	return path_of_ifindex(fib.ifindex);
}

static __always_inline __u32 family_bit(__u8 family)
{
	return family == AF_INET6 ? ROUTER_FAMILY_IPV6 : ROUTER_FAMILY_IPV4;
}

/* The class a new flow is placed by: what the class table says of its protocol and
 * the far end's port alone (reflexd reclassifies it with its traffic later). */
static __always_inline __u32 port_class_of(const struct pkt *p)
{
	__u32 idx = (p->key.proto == IPPROTO_UDP ? ROUTER_PORT_SLOT_UDP : ROUTER_PORT_SLOT_TCP) * 65536 + p->key.dport;
	__u8 *cls = bpf_map_lookup_elem(&router_port_class, &idx);

	return cls ? *cls : 0;
}

/* A new flow's first packet: put it on its class's next path, if reflexd is alive
 * to account for it and the path routes the flow's family. */
static __always_inline void flow_place(const struct pkt *p, const struct reflex_config *cfg, __u64 now)
{
	struct router_decision d = {};
	struct router_path_entry *rp;
	__u32 *next;

	if (!heartbeat_fresh(cfg, now)) {
		count(ROUTER_CNT_HEARTBEAT_STALE);
		return;
	}
	d.cls = port_class_of(p);
	next = bpf_map_lookup_elem(&router_next_path, &d.cls);
	if (!next || *next >= ROUTER_MAX_PATHS)
		return;
	d.path = *next;
	rp = bpf_map_lookup_elem(&router_paths, &d.path);
	if (!rp || !rp->ifindex || !(rp->families & family_bit(p->key.family)))
		return;
	d.decided_ns = now;
	if (bpf_map_update_elem(&router_decisions, &p->key, &d, BPF_NOEXIST) == 0)
		count(ROUTER_CNT_PLACED);
	else
		count(ROUTER_CNT_PLACE_FAIL);
}

/* The path of an up packet: its flow's decision (steer = true, the packet marked)
 * or, without one, where the kernel routes it. */
static __always_inline __u32 path_for_up(struct __sk_buff *skb, const struct pkt *p, bool *steer)
{
	struct router_decision *d = bpf_map_lookup_elem(&router_decisions, &p->key);

	*steer = false;
	if (d) {
		__u32 idx = d->path;
		struct router_path_entry *rp = bpf_map_lookup_elem(&router_paths, &idx);

		if (rp && rp->ifindex) {
			if (rp->families & family_bit(p->key.family)) {
				/* Only the mask's bits: other users of the mark keep theirs. */
				skb->mark = (skb->mark & ~rp->mark_mask) | (rp->mark & rp->mark_mask);
				*steer = true;
				return idx;
			}
			count(ROUTER_CNT_NO_NEXTHOP);
		}
	}
	return path_by_fib(skb, p);
}

/* The packet's flow; only an up packet (from the LAN) may create it. */
static __always_inline struct router_flow *flow_get(const struct pkt *p, enum router_dir dir, bool *created)
{
	struct router_flow *flow = bpf_map_lookup_elem(&router_flows, &p->key);
	__u8 flags = p->pi.tcp_flags;
	struct router_flow_template *zero;
	__u32 key0 = 0;

	*created = false;
	/* A SYN from the LAN on a closed flow is a new connection reusing the 5-tuple. */
	if (flow && dir == ROUTER_DIR_UP && (flow->flags & ROUTER_FLOW_CLOSED) && p->key.proto == IPPROTO_TCP &&
	    (flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		bpf_map_delete_elem(&router_flows, &p->key);
		flow = NULL;
	}
	if (flow || dir != ROUTER_DIR_UP)
		return flow;
	zero = bpf_map_lookup_elem(&router_flow_zero, &key0);
	if (!zero)
		return NULL;
	*created = bpf_map_update_elem(&router_flows, &p->key, zero, BPF_NOEXIST) == 0;
	return bpf_map_lookup_elem(&router_flows, &p->key);
}

static __always_inline void stats_add(struct router_dir_stats *st, const struct pkt *p, __u64 retrans)
{
	__u8 tcp_flags = p->key.proto == IPPROTO_TCP ? p->pi.tcp_flags : 0;

	st->packets += p->segs;
	st->bytes += p->wire_bytes;
	st->payload_bytes += p->payload;
	if (p->payload || (tcp_flags & (TCP_SYN | TCP_FIN)))
		st->data_packets += p->segs;
	st->retrans_packets += retrans;
}

static __always_inline void stats_diff(struct router_dir_stats *out, const struct router_dir_stats *total,
				       const struct router_dir_stats *emitted)
{
	out->packets = total->packets - emitted->packets;
	out->bytes = total->bytes - emitted->bytes;
	out->payload_bytes = total->payload_bytes - emitted->payload_bytes;
	out->data_packets = total->data_packets - emitted->data_packets;
	out->retrans_packets = total->retrans_packets - emitted->retrans_packets;
	out->acked_bytes = total->acked_bytes - emitted->acked_bytes;
}

static __always_inline __u32 rtt_us_of(__u64 ns)
{
	__u64 us = ns / 1000;

	/* 0 means "no sample": a sub-microsecond RTT counts as 1 us. */
	return us ? (us > 0xffffffffULL ? 0xffffffffU : (__u32)us) : 1;
}

/* ACKs whose window is the receive window of the end they come from: not a SYN's
 * (RFC 7323: never scaled) nor a RST's (nobody reads it). */
static __always_inline bool wnd_carrier(__u8 tcp_flags)
{
	return (tcp_flags & (TCP_ACK | TCP_SYN | TCP_RST)) == TCP_ACK;
}

/* A SYN or SYN-ACK of direction dir: its sender's window scale; the handshake is
 * complete once both directions' were seen. */
static __always_inline void handshake_note(struct router_flow *flow, const struct pkt *p, const enum router_dir dir,
					   const enum router_dir other)
{
	struct router_tcp_dir *t = &flow->tcp[dir];

	t->flags |= ROUTER_TCP_SYN_SEEN;
	if (p->wscale != ROUTER_WSCALE_NONE)
		t->flags |= ROUTER_TCP_WSCALE;
	else
		t->flags &= ~ROUTER_TCP_WSCALE;
	flow->wscale[dir] = p->wscale != ROUTER_WSCALE_NONE ? p->wscale : 0;
	if (!(flow->tcp[other].flags & ROUTER_TCP_SYN_SEEN))
		return;
	flow->flags |= ROUTER_FLOW_HANDSHAKE;
	/* RFC 7323 2.2: windows are scaled only when both ends sent the option. */
	if (!(t->flags & flow->tcp[other].flags & ROUTER_TCP_WSCALE)) {
		flow->wscale[dir] = 0;
		flow->wscale[other] = 0;
	}
}

/*
 * Everything that touches the flow, under its lock (no helper calls in here).
 * sent_dir is the packet's direction; rtt_ns (> 0) an RTT of the OTHER direction's
 * packets that this packet's TSecr matched; s (may be NULL) the reserved sample.
 */
static __always_inline void flow_update(struct router_flow *flow, const struct pkt *p, const enum router_dir dir,
					__u64 now, __u64 interval, __u32 path, bool steer, bool created,
					__u64 rtt_ns, struct router_sample *s, struct update_result *r)
{
	const enum router_dir other = dir == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP;
	struct router_tcp_dir *t = &flow->tcp[dir];
	struct router_tcp_dir *o = &flow->tcp[other];
	__u8 tcp_flags = p->pi.tcp_flags;
	__u32 was_closed = flow->flags & ROUTER_FLOW_CLOSED;
	__u64 retrans = 0;

	if (created) {
		flow->first_ns = now;
		flow->path = ROUTER_PATH_NONE;
		flow->dscp = p->pi.dscp;
		flow->wscale[ROUTER_DIR_UP] = ROUTER_WSCALE_NONE;
		flow->wscale[ROUTER_DIR_DOWN] = ROUTER_WSCALE_NONE;
		if (p->key.proto != IPPROTO_TCP || (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			flow->flags |= ROUTER_FLOW_FROM_START;
	}
	flow->last_ns = now;
	if (dir == ROUTER_DIR_UP) {
		flow->path = path;
		if (steer)
			flow->flags |= ROUTER_FLOW_STEERED;
		else
			flow->flags &= ~ROUTER_FLOW_STEERED;
	}

	if (p->key.proto == IPPROTO_TCP) {
		__u32 seq = p->pi.tcp_seq;
		__u32 seq_len = p->payload + !!(tcp_flags & TCP_SYN) + !!(tcp_flags & TCP_FIN);

		if (seq_len) {
			__u32 end = seq + seq_len;

			if ((t->flags & ROUTER_TCP_SEQ_VALID) && seq_before(seq, t->end_seq)) {
				retrans = p->segs;
				t->flags &= ~ROUTER_TCP_PROBE; /* Karn: its ACK would be ambiguous */
			} else if (!(t->flags & ROUTER_TCP_SEQ_VALID)) {
				t->start_seq = seq;
				t->end_seq = end;
				t->flags |= ROUTER_TCP_SEQ_VALID;
			} else if (seq_before(t->end_seq, end)) {
				t->end_seq = end;
			}
			/* Fallback timing of one segment per interval when there are no timestamps. */
			if (!p->has_ts && !retrans && !(t->flags & ROUTER_TCP_PROBE) && now - t->stored_ns >= interval) {
				t->probe_end_seq = end;
				t->probe_ns = now;
				t->stored_ns = now;
				t->flags |= ROUTER_TCP_PROBE;
			}
			/* Only packets the far end echoes at once get their TSval remembered. */
			if (p->has_ts && !retrans && p->tsval != t->last_tsval && now - t->stored_ns >= interval) {
				t->stored_ns = now;
				r->ts_store = 1;
			}
		}
		if (p->has_ts) {
			t->last_tsval = p->tsval;
			t->last_tsecr = p->tsecr;
		}
		if (tcp_flags & TCP_ACK) {
			__u32 ack = p->pi.tcp_ack;

			if (!(t->flags & ROUTER_TCP_ACK_VALID)) {
				/* The first ACK counts from the first sequence seen the other way, so
				 * that a SYN-ACK delivers the SYN: a path that only ever saw a
				 * handshake has delivered something. */
				t->ack = (o->flags & ROUTER_TCP_SEQ_VALID) && seq_before(o->start_seq, ack) &&
						 !seq_before(o->end_seq, ack)
						 ? o->start_seq
						 : ack;
				t->flags |= ROUTER_TCP_ACK_VALID;
			}
			if (seq_before(t->ack, ack)) {
				flow->total[dir].acked_bytes += ack - t->ack;
				if (dir == ROUTER_DIR_DOWN)
					r->delivered += ack - t->ack;
				t->ack = ack;
			}
			if (!p->has_ts && (o->flags & ROUTER_TCP_PROBE) && !seq_before(ack, o->probe_end_seq)) {
				o->flags &= ~ROUTER_TCP_PROBE;
				rtt_ns = now - o->probe_ns;
				r->rtt_seq = 1;
			}
		}
		if (tcp_flags & TCP_SYN)
			handshake_note(flow, p, dir, other);
		if (tcp_flags & TCP_FIN)
			t->flags |= ROUTER_TCP_FIN;
		if (tcp_flags & TCP_RST)
			flow->flags |= ROUTER_FLOW_RST | ROUTER_FLOW_CLOSED;
		if ((t->flags & ROUTER_TCP_FIN) && (o->flags & ROUTER_TCP_FIN))
			flow->flags |= ROUTER_FLOW_CLOSED;
	}
	if (rtt_ns) {
		if (other == ROUTER_DIR_UP)
			flow->path_rtt_us = rtt_us_of(rtt_ns);
		else
			flow->lan_rtt_us = rtt_us_of(rtt_ns);
	}
	stats_add(&flow->total[dir], p, retrans);
	/* What the router's firewall dropped never reached the path: up TCP segments count
	 * as sent where they leave (router_uplink_egress), up retransmissions only once
	 * the flow has answered. */
	if (dir == ROUTER_DIR_DOWN || flow->total[ROUTER_DIR_DOWN].packets)
		r->retrans = retrans;
	if (dir == ROUTER_DIR_DOWN)
		r->delivered += p->payload;
	if (p->key.proto == IPPROTO_TCP) {
		/* Data coming down is its own delivery; it counts as sent so that
		 * retransmissions coming down have their denominator. */
		if (dir == ROUTER_DIR_DOWN && (p->payload || (tcp_flags & (TCP_SYN | TCP_FIN))))
			r->sent = p->segs;
	} else if (dir == ROUTER_DIR_UP && flow->total[ROUTER_DIR_DOWN].packets) {
		/* UDP that never answered shows no delivery: sending it is no evidence. */
		r->sent = p->segs;
	}
	r->closed_now = !was_closed && (flow->flags & ROUTER_FLOW_CLOSED);

	if (created)
		r->event = ROUTER_EVENT_NEW;
	else if (r->closed_now)
		r->event = ROUTER_EVENT_CLOSE;
	else if (now - flow->last_sample_ns >= interval)
		r->event = ROUTER_EVENT_SAMPLE;
	if (!r->event || !s)
		return;
	s->ts_ns = now;
	s->key = p->key;
	s->event = r->event;
	s->flags = flow->flags;
	stats_diff(&s->delta[ROUTER_DIR_UP], &flow->total[ROUTER_DIR_UP], &flow->emitted[ROUTER_DIR_UP]);
	stats_diff(&s->delta[ROUTER_DIR_DOWN], &flow->total[ROUTER_DIR_DOWN], &flow->emitted[ROUTER_DIR_DOWN]);
	s->path_rtt_us = flow->path_rtt_us;
	s->lan_rtt_us = flow->lan_rtt_us;
	s->path = flow->path;
	s->dscp = flow->dscp;
	s->ifindex = p->ifindex;
	s->pad = 0;
	s->wnd_enforced[ROUTER_DIR_UP] = flow->wnd_enforced[ROUTER_DIR_UP];
	s->wnd_enforced[ROUTER_DIR_DOWN] = flow->wnd_enforced[ROUTER_DIR_DOWN];
	s->wscale[ROUTER_DIR_UP] = flow->wscale[ROUTER_DIR_UP];
	s->wscale[ROUTER_DIR_DOWN] = flow->wscale[ROUTER_DIR_DOWN];
	__builtin_memset(s->pad8, 0, sizeof(s->pad8));
	flow->emitted[ROUTER_DIR_UP] = flow->total[ROUTER_DIR_UP];
	flow->emitted[ROUTER_DIR_DOWN] = flow->total[ROUTER_DIR_DOWN];
	flow->path_rtt_us = 0;
	flow->lan_rtt_us = 0;
	flow->last_sample_ns = now;
}

/* Traffic back from the uplink `link` (down), and the health inputs
 * of the flow's path `path`: a flow's answers count for its path wherever they
 * arrive, so that replies coming back on another uplink do not fail a path. */
static __always_inline void path_stats_add(__u32 link, __u32 path, const struct pkt *p, enum router_dir dir,
					   const struct update_result *r)
{
	struct router_path_stats *ps;

	/* Up traffic counts where it leaves (router_uplink_egress). */
	if (dir == ROUTER_DIR_DOWN && link < ROUTER_MAX_PATHS &&
	    (ps = bpf_map_lookup_elem(&router_path_stats, &link))) {
		ps->rx_packets += p->segs;
		ps->rx_bytes += p->wire_bytes;
	}
	if (path < ROUTER_MAX_PATHS && (ps = bpf_map_lookup_elem(&router_path_stats, &path))) {
		ps->delivered_bytes += r->delivered;
		ps->sent_packets += r->sent;
		ps->retrans_packets += r->retrans;
	}
}

/* The TSecr of this packet against the other direction's remembered TSvals; the
 * delete makes sure only one packet (on one CPU) takes a match. */
static __always_inline __u64 ts_match(struct router_flow *flow, const struct pkt *p, enum router_dir dir, __u64 now)
{
	struct router_ts_key tk = {};
	__u64 *then;

	if (!p->has_ts || !p->tsecr || p->tsecr == flow->tcp[dir].last_tsecr)
		return 0;
	tk.key = p->key;
	tk.tsval = p->tsecr;
	tk.dir = dir == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP;
	then = bpf_map_lookup_elem(&router_timestamps, &tk);
	if (!then)
		return 0;
	if (now <= *then || bpf_map_delete_elem(&router_timestamps, &tk))
		return 0;
	return now - *then;
}

/*
 * reflexd's window cap on an ACK heading to the sender of the other direction's
 * data (dir UP: the LAN end's ACKs, before NAT, for a download; dir DOWN: the far
 * end's, after NAT, for an upload): its window becomes min(advertised, cap >> the
 * shift its own sender announced). Left alone while reflexd's heartbeat is older
 * than the hosts' deadline (their fail-safe: 500 ms, not the router's 1 s for placing
 * new flows) and for flows whose handshake, hence scale, was not seen.
 * Runs last: the rewrite invalidates packet pointers, and placed before the flow's
 * update its branches would multiply the verifier's paths through all of it. So
 * wnd_enforced is written outside the lock (one aligned word, telemetry: the last
 * writer wins) and samples carry it as of the ACK before theirs.
 */
static __always_inline void wnd_enforce(struct __sk_buff *skb, struct router_flow *flow, struct pkt *p,
					const enum router_dir dir, __u64 now)
{
	const enum router_dir data_dir = dir == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP;
	__u8 shift = flow->wscale[dir];
	bool scale_known = (flow->flags & ROUTER_FLOW_HANDSHAKE) && shift <= ROUTER_WSCALE_MAX;
	struct router_wnd_cap *cap;

	if (p->key.proto != IPPROTO_TCP || !wnd_carrier(p->pi.tcp_flags))
		return;
	cap = bpf_map_lookup_elem(&router_wnd_caps, &p->key);
	if (cap && cap->cap_bytes[data_dir]) {
		if (!heartbeat_fresh_within(REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS, now)) {
			count(ROUTER_CNT_WND_STALE);
		} else if (!scale_known) {
			count(ROUTER_CNT_WND_NO_HANDSHAKE);
		} else {
			__u16 window = wnd_capped(p->window, cap->cap_bytes[data_dir], shift);

			/* A failed store leaves the advertised window, as wnd_enforced shows. */
			if (window != p->window && wnd_store(skb, p->pi.l4_offset, p->window, window) == 0) {
				p->window = window;
				count(ROUTER_CNT_WND_REWRITTEN);
			}
		}
	}
	/* This packet's window is its sender's receive window: the send window of the
	 * other direction's data. */
	if (scale_known)
		flow->wnd_enforced[data_dir] = (__u32)p->window << shift;
}

static __always_inline int handle(struct __sk_buff *skb, const enum router_dir dir)
{
	const struct reflex_config *cfg = config_get();
	struct update_result r = {};
	struct router_sample *s = NULL;
	struct router_flow *flow;
	struct pkt p;
	__u64 now = bpf_ktime_get_ns(), interval = sample_interval_ns(cfg), rtt_ns;
	__u32 link, path = ROUTER_PATH_NONE;
	bool steer = false, created = false;

	count(ROUTER_CNT_PACKETS);
	if (packet_read(skb, dir, &p) < 0) {
		count(ROUTER_CNT_PARSE_SKIP);
		return TC_ACT_UNSPEC;
	}
	flow = flow_get(&p, dir, &created);
	if (dir == ROUTER_DIR_UP) {
		if (!flow)
			count(ROUTER_CNT_FLOW_FAIL);
		else if (created && (p.key.proto != IPPROTO_TCP || (p.pi.tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN))
			flow_place(&p, cfg, now);
		link = path = path_for_up(skb, &p, &steer);
		if (steer)
			count(ROUTER_CNT_STEERED);
	} else {
		link = path_of_ifindex(p.ifindex);
		if (!flow) {
			/* Answers to the router itself never get here: only forwarded traffic. */
			if (link != ROUTER_PATH_NONE)
				count(ROUTER_CNT_UPLINK_UNKNOWN);
		} else {
			path = flow->path;
		}
	}
	if (!flow)
		goto out;
	if (created)
		count(ROUTER_CNT_NEW_FLOWS);
	rtt_ns = ts_match(flow, &p, dir, now);
	/* Reserve before the lock (no helper calls under it) whenever a sample may be due. */
	if (created || (p.pi.tcp_flags & (TCP_FIN | TCP_RST)) || now - flow->last_sample_ns >= interval)
		s = bpf_ringbuf_reserve(&router_events, sizeof(*s), 0);

	bpf_spin_lock(&flow->lock);
	flow_update(flow, &p, dir, now, interval, path, steer, created, rtt_ns, s, &r);
	bpf_spin_unlock(&flow->lock);

	if (rtt_ns)
		count(ROUTER_CNT_RTT_TS);
	if (r.rtt_seq)
		count(ROUTER_CNT_RTT_SEQ);
	if (r.ts_store) {
		struct router_ts_key tk = {};

		tk.key = p.key;
		tk.tsval = p.tsval;
		tk.dir = dir;
		if (bpf_map_update_elem(&router_timestamps, &tk, &now, BPF_NOEXIST))
			count(ROUTER_CNT_TS_STORE_FAIL);
	}
	if (s && r.event) {
		count(ROUTER_CNT_SAMPLES);
		bpf_ringbuf_submit(s, ring_submit_flags_now(RING_ROUTER, cfg, r.event != ROUTER_EVENT_SAMPLE));
	} else if (s) {
		bpf_ringbuf_discard(s, BPF_RB_NO_WAKEUP);
	} else if (r.event) {
		/* The counts stay in total - emitted and go out with the next sample. */
		count(ROUTER_CNT_RESERVE_FAIL);
	}
	wnd_enforce(skb, flow, &p, dir, now);
out:
	path_stats_add(link, path, &p, dir, &r);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int router_lan_ingress(struct __sk_buff *skb)
{
	return handle(skb, ROUTER_DIR_UP);
}

SEC("tc")
int router_lan_egress(struct __sk_buff *skb)
{
	return handle(skb, ROUTER_DIR_DOWN);
}

/* Every uplink's egress: what really leaves onto each path (the router's firewall
 * may have dropped what the LAN sent), after NAT. Counts traffic forwarded from the
 * LAN only, and the TCP segments the far end must answer as the path's `sent`. */
SEC("tc")
int router_uplink_egress(struct __sk_buff *skb)
{
	struct packet_info pi;
	struct router_path_entry *rp;
	struct router_path_stats *ps;
	__u32 link = path_of_ifindex(skb->ifindex);
	__u64 segs, payload;

	if (link == ROUTER_PATH_NONE || skb->ingress_ifindex != lan_ifindex || parse_packet(skb, &pi) < 0)
		return TC_ACT_UNSPEC;
	ps = bpf_map_lookup_elem(&router_path_stats, &link);
	rp = bpf_map_lookup_elem(&router_paths, &link);
	if (!ps || !rp)
		return TC_ACT_UNSPEC;
	segs = skb->gso_segs > 1 ? skb->gso_segs : 1;
	payload = skb->len > pi.headers_len ? skb->len - pi.headers_len : 0;
	ps->tx_packets += segs;
	ps->tx_bytes += skb->len + (segs - 1) * pi.headers_len;
	if ((skb->mark & rp->mark_mask) == (rp->mark & rp->mark_mask))
		ps->steered_packets += segs;
	if (pi.key.proto == IPPROTO_TCP && (payload || (pi.tcp_flags & (TCP_SYN | TCP_FIN))))
		ps->sent_packets += segs;
	return TC_ACT_UNSPEC;
}
