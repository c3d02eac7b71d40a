/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Types shared by the BPF programs (bpf/) and userspace (user/).
 * Every map value and ring-buffer record is defined here once, so BPF, reflexd,
 * reflexctl and `bpftool map dump` (via BTF) all use the same field names.
 *
 * BPF side includes vmlinux.h before this file; userspace includes <linux/types.h>.
 */
#ifndef REFLEX_H
#define REFLEX_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define REFLEX_DEFAULT_PIN_DIR "/sys/fs/bpf/reflex"

/* Defaults of the config map; a `batching` model retunes the last two. */
#define REFLEX_DEFAULT_SAMPLE_INTERVAL_NS (10ULL * 1000 * 1000)
#define REFLEX_DEFAULT_FLUSH_THRESHOLD 16
#define REFLEX_DEFAULT_MAX_BATCH_DELAY_US 4000
#define REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS (500ULL * 1000 * 1000)

#define REFLEX_RINGBUF_BYTES (1 << 22)
#define REFLEX_MAX_FLOWS 16384
/* TCP_BPF_SNDCWND_CLAMP's value that means "no clamp" (it also sets ssthresh: this one
 * is the kernel's initial TCP_INFINITE_SSTHRESH). */
#define REFLEX_CLAMP_NONE 0x7fffffff

/*
 * A flow as this host sees it: saddr/sport is the local end, daddr/dport the remote
 * end (tc ingress swaps the packet's addresses so both directions share one key).
 * Addresses in network byte order (IPv4 in addr[0]), ports in host byte order so
 * bpftool prints readable numbers.
 */
struct flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 family; /* AF_INET or AF_INET6 */
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[2];
};

/* Which callback produced a sock_sample. */
enum sock_event {
	SOCK_EVENT_ESTABLISHED = 1,
	SOCK_EVENT_RTT = 2,
	SOCK_EVENT_RETRANS = 3,
	SOCK_EVENT_STATE = 4,
	SOCK_EVENT_CLOSE = 5,
};

/* One TCP sample from sockops, about one per flow per sample_interval_ns (never
 * two within half of it) plus one at establish and one at close. */
struct sock_sample {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u64 cookie;
	struct flow_key key;
	__u32 event; /* enum sock_event */
	__u32 state; /* TCP state (BPF_TCP_*) */
	__u32 mrtt_us; /* the RTT measurement of this ACK (RTT events), else 0 */
	__u32 srtt_us;
	__u32 mdev_us;
	__u32 snd_cwnd;
	__u32 snd_ssthresh;
	__u32 packets_out;
	__u32 retrans_out;
	__u32 lost_out;
	__u32 total_retrans;
	__u32 delivered;
	__u32 mss_cache;
	__u32 rtt_min_us; /* the kernel's windowed minimum RTT */
	__u32 cpu;        /* where the record was submitted (its ring-wakeup counter) */
	__u32 pad;
	__u64 bytes_acked;
	__u64 bytes_received;
};

enum flow_dir {
	FLOW_DIR_INGRESS = 0,
	FLOW_DIR_EGRESS = 1,
	FLOW_DIR_MAX = 2,
};

/* Traffic counters of one flow, by direction. GSO/GRO super-packets count as the
 * segments they carry, as on the wire. */
struct tc_counters {
	__u64 packets[FLOW_DIR_MAX];
	__u64 bytes[FLOW_DIR_MAX];         /* wire bytes from the L2 header on */
	__u64 payload_bytes[FLOW_DIR_MAX]; /* L4 payload (what iperf3 counts) */
	__u64 size_sum;                    /* sum of segment sizes, both directions (bytes) */
	__u64 size_sq_sum;                 /* sum of squared segment sizes (bytes^2) */
};

/* Per-CPU, per-flow state of the tc program (LRU per-CPU hash `tc_flows`). `total`
 * only grows; each tc_sample carries total - emitted of one CPU, so userspace sums
 * samples from any CPU without double counting. */
struct tc_flow {
	struct tc_counters total;
	struct tc_counters emitted;
	__u64 last_sample_ns;
	__u32 ifindex;
	__u32 clock_jiffies; /* jiffies (low 32 bits) when the clock last found no sample due */
};

/*
 * The flows a CPU's tc programs saw last (per-CPU array `tc_flow_cache`, one
 * element): while a flow sits in a slot, the slot holds its tc_flow on that CPU, and
 * tc_flows gets it back at each of the flow's samples and when another flow takes
 * the slot. Direct-mapped by tc_flow_cache_slot.
 */
#define TC_FLOW_CACHE_BITS 3
#define TC_FLOW_CACHE_SLOTS (1u << TC_FLOW_CACHE_BITS)

struct tc_flow_slot {
	struct flow_key key; /* family 0: the slot is empty */
	struct tc_flow flow;
};

struct tc_flow_cache {
	struct tc_flow_slot slot[TC_FLOW_CACHE_SLOTS];
};

/* The slot a flow may take: both addresses' ends and the ports, hashed Knuth's
 * multiplicative way (a flow's slot is all a test needs to know to collide two). */
static inline __u32 tc_flow_cache_slot(const struct flow_key *key)
{
	__u32 h = key->saddr[0] ^ key->daddr[0] ^ key->saddr[3] ^ key->daddr[3] ^
		  ((__u32)key->sport << 16 | key->dport);

	return (h * 2654435761u) >> (32 - TC_FLOW_CACHE_BITS);
}

/* Growth of one flow's counters on one CPU since that CPU's previous sample. */
struct tc_sample {
	__u64 ts_ns;
	struct flow_key key;
	struct tc_counters delta;
	__u32 ifindex;
	__u32 cpu;
};

/* Latest TCP state of each flow (LRU hash `sock_flows`, key: flow_key), for
 * `reflexctl flows` and bpftool; the ring buffer carries the history. */
struct sock_flow {
	__u64 cookie;
	__u64 last_sample_ns;
	__u64 bytes_acked;
	__u64 bytes_received;
	__u32 state;
	__u32 srtt_us;
	__u32 mdev_us;
	__u32 snd_cwnd;
	__u32 snd_ssthresh;
	__u32 total_retrans;
	__u32 delivered;
	__u32 cwnd_clamp; /* clamp applied by sockops, 0 = none */
};

/* reflexd's decision for one TCP flow (hash `cwnd_decisions`, key: flow_key). The
 * clamp actuator (sockops) applies it with TCP_BPF_SNDCWND_CLAMP when it differs from
 * what it applied last, and lifts it when the entry goes away or the heartbeat is
 * stale; the cc actuator (the `reflex` congestion control) sets cwnd to it. */
struct cwnd_decision {
	__u32 cwnd_target; /* packets; 0 = none: a clamp under the clamp actuator, the exact cwnd under cc */
	__u32 pad;
	__u64 decided_ns;
};

/*
 * Load-time immediates: a BPF hot path that needs a value fixed at load reads it from
 * its own instruction, `r = REFLEX_IMM_MARK(id) ll`, which reflexd rewrites to the
 * value before loading (user/lib/bpf_imm.c). A .rodata variable would be one more page
 * for every callback to touch, which costs more than the rest of the sockops RTT path
 * where kernel entries flush the TLB.
 */
#define REFLEX_IMM_TAG 0x52464c58ULL /* "RFLX" */
#define REFLEX_IMM_MARK(id) ((REFLEX_IMM_TAG << 32) | (id))
enum reflex_imm {
	REFLEX_IMM_SAMPLE_INTERVAL_NS = 1, /* sockops: the sample interval */
};

/* What turns a cwnd decision into a cwnd (reflexd --actuator). */
enum reflex_actuator {
	REFLEX_ACTUATOR_CLAMP = 0, /* sockops: TCP_BPF_SNDCWND_CLAMP over the flow's own CC */
	REFLEX_ACTUATOR_CC = 1,    /* sockops selects the `reflex` CC, whose cwnd is the decision */
};

/* The congestion control bpf/cc.bpf.c registers and sockops selects per socket. */
#define REFLEX_CC_NAME "reflex"

/* The single entry of the `reflex_config` array map, written by reflexd. */
struct reflex_config {
	__u64 sample_interval_ns;     /* sockops and tc per-flow sample spacing */
	__u32 flush_threshold;        /* force a ring-buffer wakeup every N records */
	__u32 max_batch_delay_us;     /* reflexd's ring-buffer poll timeout */
	__u64 heartbeat_deadline_ns;  /* decisions are enforced only while the heartbeat is fresher */
	__u32 actuator;               /* enum reflex_actuator */
	__u32 pad;
};

/* Indexes of the per-CPU `counters` array: nothing is dropped silently. */
enum reflex_counter {
	CNT_SOCK_SAMPLES = 0,
	CNT_SOCK_RESERVE_FAIL,
	CNT_TC_PACKETS,
	CNT_TC_SAMPLES,
	CNT_TC_RESERVE_FAIL,
	CNT_TC_PARSE_SKIP,
	CNT_WAKEUPS,
	CNT_CLAMP_SET,
	CNT_CLAMP_LIFTED,
	CNT_CLAMP_FAIL,
	CNT_HEARTBEAT_STALE,
	CNT_CC_SELECT,      /* sockets sockops moved to the `reflex` CC */
	CNT_CC_SELECT_FAIL, /* bpf_setsockopt(TCP_CONGESTION) refused */
	CNT_CC_SET,         /* `reflex` set cwnd to a new decision */
	CNT_CC_FALLBACK,    /* `reflex` left a decision for its CUBIC fallback */
	CNT_TC_FLOW_NEW,    /* flows tc inserted into tc_flows (inserts - live entries = LRU evictions) */
	CNT_TC_FLOW_FAIL,   /* inserts into tc_flows refused */
	CNT_SOCK_FLOW_EVICTED, /* sock_flows entries the LRU pushed out (seen by their socket) */
	CNT_SOCK_FLOW_FAIL,    /* inserts into sock_flows refused */
	CNT_MAX,
};

#define REFLEX_COUNTER_NAMES                                                     \
	{ "sock_samples", "sock_reserve_fail", "tc_packets", "tc_samples",        \
	  "tc_reserve_fail", "tc_parse_skip", "wakeups", "clamp_set", "clamp_lifted", \
	  "clamp_fail", "heartbeat_stale", "cc_select", "cc_select_fail", "cc_set",   \
	  "cc_fallback", "tc_flow_new", "tc_flow_fail", "sock_flow_evicted",   \
	  "sock_flow_fail" }

#endif /* REFLEX_H */
