/* Root-qdisc counters of an interface over rtnetlink (what `tc -s qdisc show` prints). */
#ifndef REFLEX_QDISC_STATS_H
#define REFLEX_QDISC_STATS_H

#include "lib/window.h"

/* Fills *snap (valid = true) from the root qdisc of ifindex, with kind (e.g. "tbf",
 * "noqueue") copied into kind if non-NULL. 0 on success, negative errno otherwise. */
int qdisc_root_stats(int ifindex, struct queue_snapshot *snap, char *kind, size_t kind_len);

#endif
