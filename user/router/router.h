/*
 * reflexd on an edge router: `reflexd --lan IF --path NAME:IF:NEXTHOP ...`.
 *
 * router_run loads bpf/router.bpf.o, attaches it to the LAN interface's ingress and
 * every path interface's ingress, and then, until *stop or --duration:
 *  - classifies each new forwarded flow (classify.h; --classes FILE) and places it
 *    on a path with the per-class bandit (bandit.h; --bandit MODE), writing the
 *    decision into `router_decisions`, where the tc program steers it with
 *    bpf_redirect_neigh; a flow keeps its path for life unless the path fails;
 *  - folds the passive telemetry into path metrics every 100 ms and one reward per
 *    flow every reward interval (500 ms);
 *  - marks a path unavailable when its link loses carrier, or when it carried
 *    traffic but delivered nothing for dead_after (1 s, bandit.h): its flows move
 *    at once to the best available path; an expired path is tried again after a
 *    hold-down of 5 s, doubling up to 60 s while it stays dead;
 *  - writes the bandit's table, the links and the flows as JSON to
 *    /run/reflex/<pin dir with / as _>.paths every second (`reflexctl paths`).
 * On return everything it attached is detached and unpinned.
 */
#ifndef REFLEX_ROUTER_H
#define REFLEX_ROUTER_H

#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "router/bandit.h"
#include "reflex_router.h"

/* One --path NAME:IF:NEXTHOP[,NEXTHOP] (one next hop per address family). */
struct router_path {
	char name[BANDIT_PATH_NAME_LEN];
	char ifname[IF_NAMESIZE];
	bool has_nexthop4;
	bool has_nexthop6;
	struct in_addr nexthop4;
	struct in6_addr nexthop6;
};

struct router_opts {
	const char *lan;          /* --lan IF */
	struct router_path path[ROUTER_MAX_PATHS];
	int n_paths;
	const char *classes_path; /* --classes FILE; NULL: the built-in table */
	const char *pin_dir;
	struct bandit_config bandit;
	uint64_t sample_interval_ns;
	uint32_t flush_threshold;
	uint32_t max_batch_delay_us;
	uint64_t reward_interval_ns;
	double duration_s;        /* 0: until *stop */
	bool verbose;
	volatile sig_atomic_t *stop; /* set by the caller's signal handler */
};

/*
 * Parse NAME:IF:NEXTHOP[,NEXTHOP]: NAME as bandit_add_path accepts it (1-15 of
 * A-Z a-z 0-9 _ . -), IF an interface name (1-15 characters, no '/', ':' or
 * space), then an IPv4 and/or an IPv6 next hop, at most one of each. 0, or -EINVAL
 * with a message naming the part and its byte offset in err.
 */
int router_parse_path(const char *arg, struct router_path *out, char *err, size_t len);

/* Defaults: built-in classes, ucb1, reflexd's sample interval and batching. */
void router_opts_init(struct router_opts *o);
/* --path: parse and append; -ENOSPC past ROUTER_MAX_PATHS, -EEXIST for a repeated
 * NAME or IF. */
int router_opts_add_path(struct router_opts *o, const char *arg, char *err, size_t len);
/* --bandit MODE (ucb1, discounted, sliding-window, round-robin): resets the
 * bandit's config to that mode's defaults. */
int router_opts_set_bandit(struct router_opts *o, const char *mode, char *err, size_t len);
/* --bandit-c C: the exploration weight, a finite number >= 0. */
int router_opts_set_bandit_c(struct router_opts *o, const char *value, char *err, size_t len);
/* Everything router_run needs is there and consistent (not whether the
 * interfaces exist: that is checked when attaching). */
int router_opts_check(const struct router_opts *o, char *err, size_t len);
/* The options above, for reflexd --help. */
void router_usage(FILE *out);

/* 0 stopped cleanly, 1 runtime error, 2 setup failure (nothing left attached). */
int router_run(const struct router_opts *opts);

/* Removes what a dead router reflexd left for pin_dir: its tc filters on the
 * interfaces in its state file, the pins, the state and paths files. 1 if there was
 * something, 0 if not, -EBUSY (message in err) if its reflexd is alive. */
int router_cleanup_stale(const char *pin_dir, char *err, size_t len);

#endif /* REFLEX_ROUTER_H */
