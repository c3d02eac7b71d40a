/*
 * Loading bpf/router.bpf.o and attaching it to the router's interfaces, mirroring
 * loader.h: maps pinned by name under the pin directory, tc filters with a fixed
 * handle and priority (not the host programs': both may share an interface), and a
 * state file /run/reflex/<pin dir>.router-state rewritten after every attach step,
 * so that a dead reflexd's filters can be found and removed precisely. The state
 * file names each interface as well as its index: interface indexes are per network
 * namespace, and a cleanup from another namespace must not touch a stranger.
 */
#ifndef REFLEX_ROUTER_LOADER_H
#define REFLEX_ROUTER_LOADER_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reflex_router.h"

struct router_bpf;

/* Interface 0 is the LAN side, 1..n_paths the paths in order. */
#define ROUTER_MAX_IFACES (1 + ROUTER_MAX_PATHS)

struct router_iface {
	char name[IF_NAMESIZE];
	int ifindex;
	bool clsact_created;
	bool attached;
};

struct router_attach {
	char pin_dir[PATH_MAX];
	char state_path[PATH_MAX];
	struct router_bpf *skel;
	struct router_iface iface[ROUTER_MAX_IFACES];
	int n_ifaces;
};

/* Opens and loads the object with its maps pinned under pin_dir, writes the config
 * and the paths' next hops. nexthop[i] is path i's. */
int router_attach_load(struct router_attach *ra, const char *pin_dir, const struct router_config *cfg,
		       const struct router_nexthop *nexthop, int n_paths, char *err, size_t len);
/* Adds an interface (first the LAN, then each path) and attaches its program to
 * the interface's ingress. */
int router_attach_iface(struct router_attach *ra, const char *ifname, int ifindex, char *err, size_t len);
/* Detaches, unpins and frees whatever was set up; safe on a partial setup. */
void router_attach_teardown(struct router_attach *ra);

int router_attach_config_write(struct router_attach *ra, const struct router_config *cfg);
int router_attach_events_fd(const struct router_attach *ra);
int router_attach_decisions_fd(const struct router_attach *ra);
int router_attach_flows_fd(const struct router_attach *ra);
int router_attach_path_stats_fd(const struct router_attach *ra);
int router_attach_counters_fd(const struct router_attach *ra);

#endif /* REFLEX_ROUTER_LOADER_H */
