/*
 * What the router adds to the kernel's routing, over rtnetlink: per path and address
 * family one policy rule `fwmark MARK/MASK lookup TABLE` and, in TABLE, one default
 * route via the path's next hop out of its interface. The tc program marks each
 * flow's packets with its path's mark; routing, conntrack (and so NAT) and the
 * firewall then treat them as any forwarded packet.
 *
 * Each entry is one line of the router's state file, written before it is added
 * (a crash in between leaves a line whose delete finds nothing), so that a later
 * reflexd or `reflexd --cleanup` removes exactly what was added, after a kill -9 too:
 *   rule family=4 priority=21074 mark=0x520000 mask=0xff0000 table=21074
 *   route family=4 table=21074 gateway=192.0.2.1 ifname=eth1
 */
#ifndef REFLEX_ROUTER_ROUTES_H
#define REFLEX_ROUTER_ROUTES_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "reflex_router.h"

/* Path i's table and its rules' priority: ROUTER_TABLE_BASE + i. Below the main
 * table's rule (32766), away from the small numbers other tools take. */
#define ROUTER_TABLE_BASE 21074

enum router_route_kind {
	ROUTER_ROUTE_RULE = 0,
	ROUTER_ROUTE_DEFAULT = 1,
};

struct router_route {
	enum router_route_kind kind;
	int family;          /* AF_INET or AF_INET6 */
	uint32_t table;
	uint32_t priority;   /* rule */
	uint32_t mark;       /* rule */
	uint32_t mask;       /* rule */
	struct in6_addr gateway; /* route; an IPv4 gateway in the first 4 bytes */
	char ifname[IF_NAMESIZE]; /* route */
};

/* One state-file line (no newline) for r into out; the text router_route_parse reads. */
int router_route_format(const struct router_route *r, char *out, size_t len);
/* 1 and *r if line is a rule or route line, 0 if it is another kind of line, -EINVAL
 * if it starts like one but does not parse. */
int router_route_parse(const char *line, struct router_route *r);

/* Adds r to the kernel (it must not exist: -EEXIST otherwise); 0 or -errno, with a
 * message in err. */
int router_route_add(const struct router_route *r, char *err, size_t len);
/* Removes r; 0 if it was removed or was not there, else -errno. */
int router_route_del(const struct router_route *r);

#endif /* REFLEX_ROUTER_ROUTES_H */
