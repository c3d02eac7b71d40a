/*
 * Loading bpf/router.bpf.o and attaching it to the LAN interface, mirroring
 * loader.h: maps pinned by name under the pin directory, tc filters with a fixed
 * handle and priority (not the host programs': both may share an interface), and a
 * state file /run/reflex/<pin dir>.router-state rewritten at every setup step (the
 * filters, every rule and route of router_routes.h), so that a dead reflexd's
 * leftovers can be found and removed precisely. The state file names the interface
 * as well as its index: interface indexes are per network namespace, and a cleanup
 * from another namespace must not touch a stranger.
 */
#ifndef REFLEX_ROUTER_LOADER_H
#define REFLEX_ROUTER_LOADER_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reflex_router.h"
#include "router/router_routes.h"

struct router_bpf;

/* Interface 0 is the LAN side (programs on its ingress and egress), 1..n_paths the
 * uplinks (a program on each one's egress). */
#define ROUTER_MAX_IFACES (1 + ROUTER_MAX_PATHS)

struct router_iface {
	char name[IF_NAMESIZE];
	int ifindex;
	bool clsact_created;
	bool attached;
};

/* Rules and default routes: per path and family one of each. */
#define ROUTER_MAX_ROUTES (ROUTER_MAX_PATHS * 2 * 2)

struct router_attach {
	char pin_dir[PATH_MAX];
	char state_path[PATH_MAX];
	struct router_bpf *skel;
	struct router_iface iface[ROUTER_MAX_IFACES];
	int n_ifaces;
	struct router_route route[ROUTER_MAX_ROUTES];
	int n_routes;
};

/* Opens and loads the object with its maps pinned under pin_dir, writes the config
 * and the paths' entries (paths[i] is path i's). */
int router_attach_load(struct router_attach *ra, const char *pin_dir, const struct reflex_config *cfg,
		       int lan_ifindex, const struct router_path_entry *paths, int n_paths, char *err, size_t len);
/* Adds an interface, first the LAN (its ingress and egress), then each uplink (its
 * egress), and attaches the programs. */
int router_attach_iface(struct router_attach *ra, const char *ifname, int ifindex, char *err, size_t len);
/* Records r in the state file, then adds it to the kernel's routing; on failure the
 * record goes again (someone else's entry is never ours to remove). */
int router_attach_route(struct router_attach *ra, const struct router_route *r, char *err, size_t len);
/* Detaches, removes the routes, unpins and frees whatever was set up; safe on a
 * partial setup. */
void router_attach_teardown(struct router_attach *ra);

int router_attach_heartbeat(struct router_attach *ra, uint64_t now_ns);
int router_attach_events_fd(const struct router_attach *ra);
int router_attach_decisions_fd(const struct router_attach *ra);
int router_attach_flows_fd(const struct router_attach *ra);
int router_attach_wnd_caps_fd(const struct router_attach *ra);
int router_attach_timestamps_fd(const struct router_attach *ra);
int router_attach_path_stats_fd(const struct router_attach *ra);
int router_attach_counters_fd(const struct router_attach *ra);
int router_attach_next_path_fd(const struct router_attach *ra);
int router_attach_port_class_fd(const struct router_attach *ra);

#endif /* REFLEX_ROUTER_LOADER_H */
