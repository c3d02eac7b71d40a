/*
 * Loading and attaching the reflex BPF programs, and taking them away again.
 * Maps are pinned by name under the pin directory; the sockops cgroup link is pinned
 * there too, so a killed reflexd leaves its programs in force (their fail-safe lifts
 * any clamp once the heartbeat stops) and the next reflexd, or `reflexd --cleanup`,
 * removes them. A small state file under /run/reflex records what this instance
 * attached, so a crash can be undone precisely.
 */
#ifndef REFLEX_LOADER_H
#define REFLEX_LOADER_H

#include <bpf/libbpf.h>
#include <limits.h>
#include <stdbool.h>

#include "lib/error.h"
#include "lib/pins.h"
#include "reflex.h"

struct sockops_bpf;
struct tc_bpf;

struct reflex_bpf {
	char pin_dir[PATH_MAX];
	char state_path[PATH_MAX];
	struct sockops_bpf *sockops;
	struct tc_bpf *tc;
	struct bpf_link *cgroup_link;
	int ifindex;
	bool clsact_created;
	bool tc_ingress_attached;
	bool tc_egress_attached;
};

/* Removes what a dead reflexd left for this pin dir (state file, tc filters, pins).
 * Refuses (-EBUSY) if the reflexd that owns it is alive. */
int loader_cleanup_stale(const char *pin_dir, struct reflex_err *err);

/* max_flows sizes the flow maps (tc_flows, sock_flows, cwnd_decisions), ring_bytes
 * (a power of two, at least a page) the ring buffers (tc_events, sock_events). */
int loader_open_load(struct reflex_bpf *rb, const char *pin_dir, const struct reflex_config *cfg,
		     unsigned int max_flows, unsigned int ring_bytes, bool want_sockops, struct reflex_err *err);
int loader_attach_cgroup(struct reflex_bpf *rb, const char *cgroup_path, struct reflex_err *err);
int loader_attach_tc(struct reflex_bpf *rb, int ifindex, struct reflex_err *err);

/* Detaches everything this instance attached, unpins, frees. Safe on partial setups. */
void loader_teardown(struct reflex_bpf *rb);

int loader_config_update(struct reflex_bpf *rb, const struct reflex_config *cfg);
int loader_sock_events_fd(const struct reflex_bpf *rb);
int loader_tc_events_fd(const struct reflex_bpf *rb);
int loader_counters_fd(const struct reflex_bpf *rb);
/* Makes the next record of every ring on every CPU wake the reader (see rings_wait in
 * reflexd.c): ring_pending set past any flush_threshold. 0 or -errno. */
int loader_rings_arm(struct reflex_bpf *rb);
/* -1 without the sockops program (no --cgroup). */
int loader_decisions_fd(const struct reflex_bpf *rb);
int loader_heartbeat_fd(const struct reflex_bpf *rb);
int loader_tc_flows_fd(const struct reflex_bpf *rb);
/* decision_gen (BPF_F_MMAPABLE), bumped after each cwnd_decisions write; -1 without sockops. */
int loader_decision_gen_fd(const struct reflex_bpf *rb);

#endif
