/*
 * Whether a clsact qdisc still has filters, read over rtnetlink: reflexd and the
 * router delete a clsact they created only when nobody else's filters hang on it.
 */
#ifndef REFLEX_LIB_TC_FILTERS_H
#define REFLEX_LIB_TC_FILTERS_H

#include <stdbool.h>

/* Filters on ifindex's clsact ingress (or egress) hook: a count (0 = none), or -errno. */
int tc_filters_count(int ifindex, bool ingress);

/* True only when both hooks are known to be empty. */
bool tc_clsact_empty(int ifindex);

#endif
