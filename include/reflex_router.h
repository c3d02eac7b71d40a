/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Types shared by the edge router's tc programs (bpf/router.bpf.c) and its runtime
 * (user/router*.c), so that BPF, reflexd, reflexctl and `bpftool map dump` (BTF)
 * use the same field names.
 *
 * Directions are the router's: "up" is LAN -> path (what the LAN side sends out
 * through an uplink), "down" is path -> LAN (what comes back). Flow keys are
 * oriented LAN end first: saddr/sport is the endpoint on the LAN side, whichever
 * end opened the flow.
 *
 * BPF side includes vmlinux.h before this file; userspace includes <linux/bpf.h>.
 */
#ifndef REFLEX_ROUTER_SHARED_H
#define REFLEX_ROUTER_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/bpf.h>
#include <linux/types.h>
#endif

#include "reflex.h"

#define ROUTER_MAX_PATHS 4
/* router_flow.path and router_sample.path when the flow's packets go to no path
 * interface (yet): routed by the kernel elsewhere, or only seen coming down. */
#define ROUTER_PATH_NONE 0xff
#define ROUTER_MAX_FLOWS 16384
/* Pending TSvals (ePPing's packet timestamps): at most one per flow and direction per
 * sample interval, so a few per flow at the RTTs of WAN paths. */
#define ROUTER_MAX_TIMESTAMPS 65536
#define ROUTER_RINGBUF_BYTES (1 << 22)
/* New flows are placed only while reflexd's heartbeat (heartbeat.bpf.h) is younger
 * than this; flows already placed keep their mark, since NAT binds them to their
 * uplink. reflexd writes it into reflex_config.heartbeat_deadline_ns. */
#define ROUTER_DEFAULT_HEARTBEAT_DEADLINE_NS (1000ULL * 1000 * 1000)
/* Classes the BPF side knows by number (enum traffic_class in user/router/classify.h
 * has fewer). */
#define ROUTER_MAX_CLASSES 8
/* `router_port_class`: index = ROUTER_PORT_SLOT_* * 65536 + the far end's port. */
#define ROUTER_PORT_SLOT_TCP 0
#define ROUTER_PORT_SLOT_UDP 1
#define ROUTER_PORT_CLASS_ENTRIES (2 * 65536)
/* Defaults of --mark-mask and --mark-base: path i's mark is base + i x (the mask's
 * lowest bit), written only into the mask's bits of skb->mark. */
#define ROUTER_DEFAULT_MARK_MASK 0x00ff0000u
#define ROUTER_DEFAULT_MARK_BASE 0x00520000u

enum router_dir {
	ROUTER_DIR_UP = 0,   /* LAN -> path: seen on the LAN interface's ingress */
	ROUTER_DIR_DOWN = 1, /* path -> LAN: seen on the LAN interface's egress, after NAT */
	ROUTER_DIR_MAX = 2,
};

/* router_path_entry.families */
#define ROUTER_FAMILY_IPV4 (1u << 0)
#define ROUTER_FAMILY_IPV6 (1u << 1)

/* What the tc program needs of a path (array `router_paths`, index = the bandit's
 * path index): its uplink, the mark that routes a packet there (reflexd's `ip rule`
 * fwmark MARK/MASK -> the path's table) and the families that table has a default
 * route for. */
struct router_path_entry {
	__u32 ifindex;   /* 0: no path in this slot */
	__u32 mark;
	__u32 mark_mask;
	__u32 families;  /* ROUTER_FAMILY_* */
};

/* reflexd's choice for one flow (`router_decisions`, key: flow_key, LAN end first). */
struct router_decision {
	__u32 path; /* index into router_paths */
	__u32 cls;  /* enum traffic_class the tc program placed it by (its ports), or reflexd's */
	__u64 decided_ns;
};

/* Traffic of one flow in one direction. GSO/GRO super-packets count as the segments
 * they carry. */
struct router_dir_stats {
	__u64 packets;
	__u64 bytes;           /* wire bytes from the L2 header on */
	__u64 payload_bytes;   /* L4 payload */
	__u64 data_packets;    /* what the far end must answer: payload, SYN or FIN */
	__u64 retrans_packets; /* TCP segments below the highest sequence already seen */
	__u64 acked_bytes;     /* TCP: ACK advance these packets carried, i.e. the OTHER
				* direction's data delivered */
};

/* TCP tracking of one direction, private to the BPF program. */
struct router_tcp_dir {
	__u32 end_seq;     /* highest seq + length sent (SYN and FIN count 1) */
	__u32 ack;         /* highest ACK carried */
	__u32 last_tsval;
	__u32 last_tsecr;
	__u32 start_seq;     /* first sequence seen: the first ACK the other way counts from it */
	__u32 probe_end_seq; /* SEQ/ACK RTT fallback: end of the timed segment */
	__u32 flags;         /* ROUTER_TCP_* */
	__u64 probe_ns;      /* when the timed segment passed */
	__u64 stored_ns;     /* when a TSval or probe of this direction was last stored */
};

#define ROUTER_TCP_SEQ_VALID (1u << 0)
#define ROUTER_TCP_ACK_VALID (1u << 1)
#define ROUTER_TCP_PROBE (1u << 2)
#define ROUTER_TCP_FIN (1u << 3)
#define ROUTER_TCP_SYN_SEEN (1u << 4) /* this direction's SYN (or SYN-ACK) passed */
#define ROUTER_TCP_WSCALE (1u << 5)   /* ... and its newest one had the window scale option */

/* router_flow.flags and router_sample.flags */
#define ROUTER_FLOW_FROM_START (1u << 0) /* first packet seen was a SYN (or not TCP) */
#define ROUTER_FLOW_CLOSED (1u << 1)     /* RST, or FIN both ways */
#define ROUTER_FLOW_RST (1u << 2)
#define ROUTER_FLOW_STEERED (1u << 3)    /* the newest up packet carried its decision's mark */
#define ROUTER_FLOW_HANDSHAKE (1u << 4)  /* both SYN and SYN-ACK seen: windows may be rewritten */

#define ROUTER_WSCALE_NONE 0xff
/* RFC 7323 2.3: a larger shift is treated as 14. */
#define ROUTER_WSCALE_MAX 14

/* Per-flow state of the tc programs (hash `router_flows`, key: flow_key). One
 * entry for both directions, which run on any CPU: the lock orders them. `total`
 * only grows; each sample carries total - emitted. */
struct router_flow {
	struct bpf_spin_lock lock;
	__u32 flags;
	struct router_dir_stats total[ROUTER_DIR_MAX];
	struct router_dir_stats emitted[ROUTER_DIR_MAX];
	struct router_tcp_dir tcp[ROUTER_DIR_MAX];
	__u64 first_ns;
	__u64 last_ns;
	__u64 last_sample_ns;
	__u32 path_rtt_us; /* newest path RTT since the last sample, 0 = none */
	__u32 lan_rtt_us;  /* newest LAN RTT since the last sample, 0 = none */
	__u32 path;        /* path of the newest up packet, ROUTER_PATH_NONE if none */
	__u32 dscp;
	/* Window scale the sender of direction d announced in its SYN or SYN-ACK, i.e. the
	 * shift of every window it sends (in the other direction's ACKs);
	 * ROUTER_WSCALE_NONE until its handshake packet was seen (0 when it was seen
	 * without the option, and for both ends once the handshake shows that either
	 * end sent none: RFC 7323 then scales by 0). */
	__u8 wscale[ROUTER_DIR_MAX];
	__u8 pad8[2];
	/* The window (bytes, scaled) the newest ACK towards direction d's sender left
	 * with after any rewrite; 0 = no such ACK since the handshake (never for flows
	 * whose handshake was not seen: their scale is unknown). */
	__u32 wnd_enforced[ROUTER_DIR_MAX];
};

enum router_event {
	ROUTER_EVENT_NEW = 1,    /* the flow's first packet (woken at once) */
	ROUTER_EVENT_SAMPLE = 2, /* periodic, at most one per sample interval */
	ROUTER_EVENT_CLOSE = 3,  /* the flow just closed (woken at once) */
};

/*
 * One record of the `router_events` ring. RTTs as ePPing measures them on a
 * middlebox: path_rtt_us from an up packet to the down packet that echoes its TSval
 * (or ACKs its data): router -> far end -> router through the path; lan_rtt_us the
 * same the other way: router -> LAN endpoint -> router. What the LAN endpoint sees
 * is their sum.
 */
struct router_sample {
	__u64 ts_ns;
	struct flow_key key;
	__u32 event; /* enum router_event */
	__u32 flags; /* ROUTER_FLOW_* */
	struct router_dir_stats delta[ROUTER_DIR_MAX];
	__u32 path_rtt_us;
	__u32 lan_rtt_us;
	__u32 path;
	__u32 dscp;
	__u32 ifindex; /* interface of the packet that produced the record */
	__u32 pad;
	__u32 wnd_enforced[ROUTER_DIR_MAX]; /* router_flow.wnd_enforced when sampled */
	__u8 wscale[ROUTER_DIR_MAX];         /* router_flow.wscale when sampled */
	__u8 pad8[6];
};

/*
 * reflexd's congestion window cap for one forwarded TCP flow (hash `router_wnd_caps`,
 * key: flow_key, LAN end first), enforced AC/DC-style: the tc program that sees the
 * ACKs on their way to direction d's sender lowers their window to
 * min(advertised, cap_bytes[d] >> wscale announced by the ACKs' sender), never
 * raising it, only while reflexd's heartbeat is fresh and only for flows whose
 * handshake it saw. d = ROUTER_DIR_UP: the LAN end sends (upload; ACKs come down
 * from the uplink, rewritten on the LAN egress); ROUTER_DIR_DOWN: the far end sends
 * (download; ACKs go up, rewritten on the LAN ingress before NAT).
 */
struct router_wnd_cap {
	__u32 cap_bytes[ROUTER_DIR_MAX]; /* 0 = no cap for that direction */
	__u64 decided_ns;
};

/* Per-path traffic (per-CPU array `router_path_stats`, index = path): what left onto
 * each uplink forwarded from the LAN (steered or routed there by the kernel; counted
 * at the uplink's egress, so what the router's firewall dropped is not in it) and
 * what came back in through it. The last three are reflexd's path metrics' inputs,
 * counted per packet for the path its flow took, so that a flow moving between paths
 * cannot credit one path with another's answers. */
struct router_path_stats {
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 steered_packets; /* of tx_packets: carrying the path's mark */
	__u64 sent_packets;    /* what the other end must answer, both ways: TCP segments
				* with payload, SYN or FIN (up: as they leave the uplink);
				* up UDP of flows that answered */
	__u64 retrans_packets; /* TCP retransmissions onto it (of flows that answered) or
				* received from it */
	__u64 delivered_bytes; /* ACK advance over up data + payload, received from it */
};

/* Indexes of the per-CPU `router_counters` array: nothing is dropped silently. */
enum router_counter {
	ROUTER_CNT_PACKETS = 0,
	ROUTER_CNT_PARSE_SKIP,
	ROUTER_CNT_NEW_FLOWS,
	ROUTER_CNT_FLOW_FAIL,      /* router_flows full: a new LAN flow goes unmeasured */
	ROUTER_CNT_SAMPLES,
	ROUTER_CNT_RESERVE_FAIL,
	ROUTER_CNT_RTT_TS,
	ROUTER_CNT_RTT_SEQ,
	ROUTER_CNT_TS_STORE_FAIL,
	ROUTER_CNT_PLACED,         /* new flows the tc program put on router_next_path */
	ROUTER_CNT_PLACE_FAIL,     /* router_decisions full */
	ROUTER_CNT_STEERED,        /* up packets marked with their decision's path */
	ROUTER_CNT_NO_NEXTHOP,     /* decided path has no route of the packet's family */
	ROUTER_CNT_HEARTBEAT_STALE, /* new flows left unplaced: reflexd's heartbeat is stale */
	ROUTER_CNT_UPLINK_UNKNOWN, /* packets from an uplink to the LAN of no known flow */
	ROUTER_CNT_WND_REWRITTEN,  /* ACKs whose window was lowered to the cap */
	ROUTER_CNT_WND_NO_HANDSHAKE, /* ACKs of capped flows left alone: handshake not seen */
	ROUTER_CNT_WND_STALE,      /* ACKs of capped flows left alone: heartbeat stale */
	ROUTER_CNT_MAX,
};

#define ROUTER_COUNTER_NAMES                                                           \
	{ "packets", "parse_skip", "new_flows", "flow_fail", "samples", "reserve_fail",  \
	  "rtt_ts", "rtt_seq", "ts_store_fail", "placed", "place_fail", "steered",       \
	  "no_nexthop", "heartbeat_stale", "uplink_unknown", "wnd_rewritten",            \
	  "wnd_no_handshake", "wnd_stale" }

#endif /* REFLEX_ROUTER_SHARED_H */
