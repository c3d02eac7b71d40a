/*
 * tc objects read over rtnetlink, through one dump request: the root qdisc's stats
 * (reflexd's queue telemetry) and whether a clsact qdisc still has filters (reflexd
 * and the router delete a clsact they created only when nobody else's filters hang
 * on it).
 */
#ifndef REFLEX_LIB_TC_FILTERS_H
#define REFLEX_LIB_TC_FILTERS_H

#include <libmnl/libmnl.h>
#include <stdbool.h>
#include <stdint.h>

/* Dumps msg_type (RTM_GETQDISC, RTM_GETTFILTER) for ifindex (and parent, 0 = any),
 * passing each message to cb. 0, or -errno. */
int tc_dump(uint16_t msg_type, int ifindex, uint32_t parent, mnl_cb_t cb, void *data);

/* Filters on ifindex's clsact ingress (or egress) hook: a count (0 = none), or -errno. */
int tc_filters_count(int ifindex, bool ingress);

/* True only when both hooks are known to be empty. */
bool tc_clsact_empty(int ifindex);

#endif
