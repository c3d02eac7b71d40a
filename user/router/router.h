/*
 * reflexd on an edge router: `reflexd --lan IF --path NAME:IF:NEXTHOP ...`.
 *
 * router_run loads bpf/router.bpf.o, attaches it to the LAN interface's ingress and
 * egress, adds per path and family a policy rule (fwmark MARK/MASK -> the path's
 * table) and that table's default route via the path's next hop (router_routes.h),
 * and then, until *stop or --duration:
 *  - keeps, per traffic class, the bandit's path for the next new flow in
 *    `router_next_path` (classify.h; --classes FILE; bandit.h; --bandit MODE): the
 *    tc program puts each new LAN flow there at its first packet and marks its
 *    packets, so routing sends them out of that uplink and conntrack binds the
 *    flow's NAT there; a flow keeps its path for life;
 *  - folds the passive telemetry into path metrics every 100 ms and one reward per
 *    flow every reward interval (500 ms);
 *  - marks a path unavailable when its link loses carrier, or when it carried
 *    traffic but delivered nothing for dead_after (1 s, bandit.h): new flows go to
 *    the remaining paths; its flows stay (NAT binds them) unless --move-flows; an
 *    expired path is tried again after a hold-down of 5 s, doubling up to 60 s;
 *  - writes the bandit's table, the links, the maps' fill and the flows as JSON to
 *    /run/reflex/<pin dir with / as _>.paths every second (`reflexctl paths`);
 *  - reloads the classes file on *reload (SIGHUP).
 * On return everything it attached or added is detached, removed and unpinned.
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

#include "lib/error.h"
#include "router/bandit.h"
#include "router/router_view.h"
#include "reflex_router.h"

/*
 * What reflexd adds to the router's loop from a part above user/router (the window
 * caps of forwarded TCP flows, user/reflexd/router_window.h), called on router_run's
 * thread. Any member may be NULL.
 */
struct router_hooks {
	void *ctx;
	/* The programs are attached; wnd_caps_fd is `router_wnd_caps`. 0, or -errno with err. */
	int (*start)(void *ctx, int wnd_caps_fd, char *err, size_t len);
	/* Every router_sample, after the core folded it in. */
	void (*sample)(void *ctx, const struct router_sample *s, uint64_t now_ns);
	/* Every turn of the loop (about every max_batch_delay_us), after the heartbeat. */
	void (*tick)(void *ctx, uint64_t now_ns);
	/* The core forgot the flow (router.c deletes its router_wnd_caps entry too). */
	void (*forget)(void *ctx, const struct flow_key *key);
	/* Its columns of the flow's row in the view (cwnd_target, cap_bytes). */
	void (*flow_view)(void *ctx, const struct flow_key *key, struct router_flow_view *fv);
	void (*reload)(void *ctx);  /* SIGHUP, after the classes */
	void (*promote)(void *ctx); /* SIGUSR1 */
	/* Before the programs are detached: withdraw what it wrote. */
	void (*stop)(void *ctx);
};

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
	uint32_t mark_base;       /* --mark-base: path i's mark is base + i x the mask's lowest bit */
	uint32_t mark_mask;       /* --mark-mask: the bits of skb->mark reflexd writes */
	bool move_flows;          /* --move-flows: a failed path's flows move (un-NAT'd only) */
	bool verbose;
	volatile sig_atomic_t *stop;   /* set by the caller's signal handler */
	volatile sig_atomic_t *reload; /* SIGHUP: reload the classes file */
	volatile sig_atomic_t *promote; /* SIGUSR1: hooks->promote (shadow mode of the window caps) */
	const struct router_hooks *hooks; /* NULL: steering only */
};

/*
 * Parse NAME:IF:NEXTHOP[,NEXTHOP]: NAME as bandit_add_path accepts it (1-15 of
 * A-Z a-z 0-9 _ . -), IF an interface name (1-15 characters, no '/', ':' or
 * space), then an IPv4 and/or an IPv6 next hop, at most one of each. 0, or -EINVAL
 * with a message naming the part and its byte offset in err.
 */
int router_parse_path(const char *arg, struct router_path *out, struct reflex_err *err);

/* Defaults: built-in classes, ucb1, reflexd's sample interval and batching. */
void router_opts_init(struct router_opts *o);
/* --path: parse and append; -ENOSPC past ROUTER_MAX_PATHS, -EEXIST for a repeated
 * NAME or IF. */
int router_opts_add_path(struct router_opts *o, const char *arg, struct reflex_err *err);
/* --bandit MODE (ucb1, discounted, sliding-window, round-robin): resets the
 * bandit's config to that mode's defaults. */
int router_opts_set_bandit(struct router_opts *o, const char *mode, struct reflex_err *err);
/* --bandit-c C: the exploration weight, a finite number >= 0. */
int router_opts_set_bandit_c(struct router_opts *o, const char *value, struct reflex_err *err);
/* Everything router_run needs is there and consistent (not whether the
 * interfaces exist: that is checked when attaching). */
int router_opts_check(const struct router_opts *o, struct reflex_err *err);
/* --mark-base / --mark-mask: a number (0x hex or decimal) in 1..0xffffffff. */
int router_opts_set_mark(uint32_t *out, const char *option, const char *value, struct reflex_err *err);
/* Path i's mark (router_opts_check has made sure it lies inside the mask). */
uint32_t router_path_mark(const struct router_opts *o, int path);

/* 0 stopped cleanly, 1 runtime error, 2 setup failure (nothing left attached). */
int router_run(const struct router_opts *opts);

/* Removes what a dead router reflexd left for pin_dir: its tc filters on the
 * interfaces in its state file, the pins, the state and paths files. 1 if there was
 * something, 0 if not, -EBUSY (message in err) if its reflexd is alive. */
int router_cleanup_stale(const char *pin_dir, char *err, size_t len);

#endif /* REFLEX_ROUTER_H */
