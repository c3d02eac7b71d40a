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

/* Why a step failed, for one clear line on stderr. */
struct loader_error {
	char msg[512];
};

void loader_set_err(struct loader_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks that must pass before anything is loaded: root/capabilities, BTF, bpffs. */
int loader_preflight(struct loader_error *err);

/* Removes what a dead reflexd left for this pin dir (state file, tc filters, pins).
 * Refuses (-EBUSY) if the reflexd that owns it is alive. */
int loader_cleanup_stale(const char *pin_dir, struct loader_error *err);

int loader_open_load(struct reflex_bpf *rb, const char *pin_dir, const struct reflex_config *cfg,
		     bool want_sockops, struct loader_error *err);
int loader_attach_cgroup(struct reflex_bpf *rb, const char *cgroup_path, struct loader_error *err);
int loader_attach_tc(struct reflex_bpf *rb, int ifindex, struct loader_error *err);

/* Detaches everything this instance attached, unpins, frees. Safe on partial setups. */
void loader_teardown(struct reflex_bpf *rb);

/* /run/reflex/<pin dir with / as _>.<suffix>: where this instance keeps its state
 * file, decision log and control socket. */
void loader_run_path(const char *pin_dir, const char *suffix, char *out, size_t len);
int loader_run_dir_create(void);

/* Whether pid is a live reflexd (not this process): the owner of a state file. */
bool loader_reflexd_alive(int pid);
/* Unlinks every pin under pin_dir (a pinned link goes with its last reference, and
 * detaches), then the directory. */
void loader_pin_dir_remove(const char *pin_dir);

int loader_config_update(struct reflex_bpf *rb, const struct reflex_config *cfg);
int loader_sock_events_fd(const struct reflex_bpf *rb);
int loader_tc_events_fd(const struct reflex_bpf *rb);
int loader_counters_fd(const struct reflex_bpf *rb);

#endif
