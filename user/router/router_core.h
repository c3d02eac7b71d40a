/*
 * The router's decisions, apart from BPF: the flow table fed by router_sample
 * records, placement of new flows with the bandit, path metrics and rewards from
 * the telemetry, failover of a failed path's flows, forgetting closed and idle
 * flows. What it decides goes out through two callbacks (reflexd: the
 * `router_decisions` map), so that tests drive it with records they make.
 *
 * Times are CLOCK_MONOTONIC ns (bpf_ktime_get_ns's clock).
 *
 * Placement happens at a flow's first packet, in the tc program: the core publishes
 * (ops.next_path) bandit_select's path for each class whenever the bandit may have
 * changed its mind (every path tick, every placement, a path failing or coming
 * back), and the program puts a new flow there. The core adopts that placement
 * when the flow's NEW record says so (ROUTER_FLOW_STEERED). A flow first seen
 * mid-stream (reflexd started after it), or whose first packet the program left to
 * the kernel, keeps the path the kernel routes it on: NAT bound it there. Without a
 * usable path the flow is left to the kernel's routing ("unsteered"). A failed
 * path's flows move only with move_flows (un-NAT'd uplinks).
 *
 * Per flow: RTT = path RTT + the minimum LAN RTT (what the LAN endpoint sees: a LAN
 * sample also holds the endpoint's own delay in answering, the minimum only the
 * wire), smoothed with gain 1/8; every reward interval, if the flow sent anything, one reward
 * bandit_reward_of(class, mean RTT of the interval, loss = retransmitted / data
 * segments of the worse direction (a call suffers from either), delivered bits per
 * second) where delivered is the data the other end
 * acknowledged both ways (TCP) or the payload both ways (UDP); an interval without
 * its own RTT or data segments takes the flow's smoothed RTT or the path's metric.
 * The class is re-evaluated at each reward (size, rate and bytes rules need
 * traffic); the path never changes with it.
 *
 * Per path, every 100 ms (bandit_path_update): the mean path RTT of the samples
 * whose up packets took the path, and what router_core_add_path_traffic added up
 * since the last tick (reflexd: the growth of `router_path_stats`, counted per
 * packet on the path it took): sent = what the other end must answer, both ways
 * (TCP payload, SYN or FIN; up UDP of flows that have answered), retransmitted
 * segments both ways,
 * delivered = ACK advance over data sent through it + payload received from it.
 * A tick without delivery passes its sent packets on (and so starts the bandit's
 * dead_after clock) at once if the path delivered within the last 2 x dead_after
 * (it was working: silence now is news), else only once ROUTER_DEAD_MIN_UNANSWERED
 * have gone unanswered: one lost SYN on a quiet lossy path (TCP resends it after
 * 1 s, as long as dead_after) must not fail it. A dead quiet path is so found
 * after its third unanswered packet (a SYN's: ~3 s) plus dead_after.
 */
#ifndef REFLEX_ROUTER_CORE_H
#define REFLEX_ROUTER_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "router/bandit.h"
#include "router/classify.h"
#include "lib/flow_key.h"
#include "reflex_router.h"

#define ROUTER_PATH_TICK_NS (100ULL * 1000 * 1000)
#define ROUTER_CLOSED_LINGER_NS (2ULL * 1000 * 1000 * 1000)
#define ROUTER_IDLE_TCP_NS (300ULL * 1000 * 1000 * 1000)
#define ROUTER_IDLE_UDP_NS (60ULL * 1000 * 1000 * 1000)
#define ROUTER_RETRY_FIRST_NS (5ULL * 1000 * 1000 * 1000)
#define ROUTER_RETRY_MAX_NS (60ULL * 1000 * 1000 * 1000)
/* On a path that delivered nothing for a while (idle, or new), a lost packet or two
 * is no dead path: silence counts once this many went unanswered. */
#define ROUTER_DEAD_MIN_UNANSWERED 3

/* Since the last reward. */
struct router_flow_interval {
	uint64_t start_ns;
	uint64_t packets;
	uint64_t data_packets[ROUTER_DIR_MAX];
	uint64_t retrans_packets[ROUTER_DIR_MAX];
	uint64_t delivered_bytes;
	uint64_t delivered_dir_bytes[ROUTER_DIR_MAX]; /* of delivered_bytes, by data direction */
	double rtt_sum_us;
	uint32_t rtt_samples;
};

struct router_flow_state {
	struct flow_key key;
	enum traffic_class cls;
	int rule;               /* classifier rule that matched, -1: the default class */
	int path;               /* placed on this path (decision written), -1: unsteered */
	int route_path;         /* path of the newest up packet (BPF's view), -1: none */
	bool counted;           /* bandit_flow_start done, not yet ended */
	bool from_start;
	bool closed;
	uint8_t dscp;
	uint32_t moves;         /* failovers */
	uint64_t first_ns;
	uint64_t last_ns;
	uint64_t closed_ns;
	struct router_dir_stats total[ROUTER_DIR_MAX];
	double srtt_us;         /* path RTT + LAN minimum, smoothed; 0 = no sample yet */
	double path_rtt_us;     /* smoothed */
	double lan_rtt_min_us;  /* the minimum: LAN samples include how long the endpoint
				 * took to answer (its delayed ACK, its next write) */
	struct router_flow_interval acc;
	/* The last reward's inputs and value, for the table. */
	double loss_rate;
	double throughput_bps;
	double reward;          /* NAN before the first */
	uint64_t rewards;
	/* Per data direction (enum router_dir), for the window caps' table. */
	double delivery_rate_bps[ROUTER_DIR_MAX]; /* over the last reward interval */
	uint32_t wnd_enforced[ROUTER_DIR_MAX];   /* newest router_sample.wnd_enforced, 0 = none yet */
	uint8_t wscale[ROUTER_DIR_MAX];          /* router_sample.wscale */
	bool handshake;                          /* ROUTER_FLOW_HANDSHAKE */
	UT_hash_handle hh;
};

/* What a path's telemetry added up to since the last path tick. */
struct router_path_acc {
	uint64_t sent_packets;
	uint64_t retrans_packets;
	uint64_t delivered_bytes;
	double rtt_sum_us;
	uint32_t rtt_samples;
};

struct router_core_ops {
	/* Put the flow on path (add or replace its decision); 0 or -errno. */
	int (*decide)(void *ctx, const struct flow_key *key, int path, enum traffic_class cls, uint64_t now_ns);
	/* The flow is gone: drop its decision and telemetry state. */
	void (*forget)(void *ctx, const struct flow_key *key);
	/* Optional: one line about a path's state changing, for the log. */
	void (*event)(void *ctx, const char *msg);
	/* Optional: the path (-1: none) for the next new flow of cls. */
	void (*next_path)(void *ctx, enum traffic_class cls, int path);
};

struct router_core_stats {
	uint64_t records;
	uint64_t flows_seen;
	uint64_t placed;        /* by the tc program on the bandit's next path */
	uint64_t adopted;       /* mid-stream flows kept on their route */
	uint64_t unsteered;     /* no usable path: left to the kernel */
	uint64_t decide_errors;
	uint64_t reclassified;
	uint64_t rewards;
	uint64_t failovers;     /* flows moved off a failed path (move_flows) */
	uint64_t paths_failed;  /* times a path was marked unavailable */
	uint64_t forgotten;
};

struct router_path_state {
	bool has_nexthop4;
	bool has_nexthop6;
	bool link_down;         /* carrier lost: unavailable until it returns */
	uint64_t unanswered;    /* sent since the last tick that delivered */
	uint64_t failed_ns;     /* when expiry marked it unavailable, 0 = not failed */
	uint64_t retry_after_ns; /* hold-down before trying it again */
	uint64_t last_failover_ns;
	uint32_t last_failover_flows;
};

struct router_core {
	struct bandit *bandit;
	const struct classify_table *classes;
	struct router_core_ops ops;
	void *ctx;
	uint64_t reward_interval_ns;
	uint64_t dead_after_ns;  /* the bandit's */
	bool move_flows;         /* a failed path's flows move (un-NAT'd uplinks only) */
	int n_paths;
	struct router_path_state path[ROUTER_MAX_PATHS];
	struct router_path_acc acc[ROUTER_MAX_PATHS];
	struct router_flow_state *flows; /* uthash by key */
	uint32_t n_flows;
	uint64_t last_path_tick_ns;
	uint64_t last_reward_ns;
	struct router_core_stats stats;
};

/* The bandit must have its paths already (index = path); the core does not own
 * bandit or classes. */
void router_core_init(struct router_core *c, struct bandit *bandit, const struct classify_table *classes,
		      uint64_t reward_interval_ns, const struct router_core_ops *ops, void *ctx, uint64_t now_ns);
/* Which address families a path can forward (its table's default routes). */
void router_core_set_nexthops(struct router_core *c, int path, bool has_nexthop4, bool has_nexthop6);
/* Frees the table without calling ops (the maps go away with the programs). */
void router_core_free(struct router_core *c);

void router_core_on_sample(struct router_core *c, const struct router_sample *s, uint64_t now_ns);
/* Traffic a path carried (deltas), folded in at the next path tick. */
void router_core_add_path_traffic(struct router_core *c, int path, uint64_t sent_packets, uint64_t retrans_packets,
				  uint64_t delivered_bytes);
/* Path ticks, rewards, expiry, retries and forgetting, as due at now_ns. Call often. */
void router_core_tick(struct router_core *c, uint64_t now_ns);
/* ops.next_path for every class (the core also does it whenever the bandit may
 * have changed its mind). */
void router_core_publish_next_paths(struct router_core *c);
/* Carrier of a path's link (from the interface's flags). */
void router_core_set_link(struct router_core *c, int path, bool up, uint64_t now_ns);

struct router_flow_state *router_core_flow(struct router_core *c, const struct flow_key *key);

/* The facts the classifier gets for a flow at now_ns (exposed for tests). */
void router_flow_facts(const struct router_flow_state *f, uint64_t now_ns, struct flow_facts *facts);

#endif /* REFLEX_ROUTER_CORE_H */
