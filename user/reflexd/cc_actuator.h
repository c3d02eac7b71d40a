/*
 * The cc actuator (reflexd --actuator cc): the `reflex` TCP congestion control of
 * bpf/cc.bpf.c, registered through struct_ops and selected per socket by sockops.
 *
 * With libbpf 1.1 registering is a map update on the struct_ops map, and the kernel
 * keeps the registration after the process is gone. So reflexd pins the struct_ops
 * map as PIN_DIR/reflex before registering and unregisters it on every exit path; a
 * dead reflexd's registration is removed through that pin (`--cleanup`, or the next
 * reflexd on the pin directory), and a starting `--actuator cc` also looks for one by
 * map id, since the name is global and the pin may be gone.
 */
#ifndef REFLEX_CC_ACTUATOR_H
#define REFLEX_CC_ACTUATOR_H

#include <limits.h>
#include <stdbool.h>

#include "reflexd/loader.h"

struct cc_bpf;

struct cc_actuator {
	struct cc_bpf *skel;
	struct bpf_link *registration; /* destroying it unregisters `reflex` */
	char pin_path[PATH_MAX];       /* the struct_ops map's pin, "" until pinned */
};

/*
 * Removes a dead reflexd's `reflex` registrations (any pin directory, found by map
 * id), checks the name is free, then opens bpf/cc.bpf.c on the maps of the loaded
 * sockops object (rb->sockops), loads, pins and registers it. On failure err says
 * why (one line) and cc_actuator_stop() undoes what was done.
 */
int cc_actuator_start(struct cc_actuator *cc, const struct reflex_bpf *rb, struct reflex_err *err);

/* Unregisters, unpins and frees; safe on a zeroed or partly started actuator. */
void cc_actuator_stop(struct cc_actuator *cc);

/*
 * The registration pinned in pin_dir, if no live process holds it (its reflexd is
 * dead): unregistered and unpinned. Returns 1 if one was unregistered, 0 if there was
 * none or its owner is alive, < 0 (err set) on error. Call it before the pins go:
 * without its pin a registration is found only by cc_actuator_cleanup_dead().
 */
int cc_actuator_cleanup_pinned(const char *pin_dir, struct reflex_err *err);

/*
 * Every registration of reflex's own struct_ops map (map and congestion control both
 * named `reflex`) that no live process holds: unregistered. Returns how many, or
 * -EBUSY (err names the pid) if a live process holds one.
 */
int cc_actuator_cleanup_dead(struct reflex_err *err);

/* Whether name is one of the space-separated words of list (a congestion control
 * list such as /proc/sys/net/ipv4/tcp_available_congestion_control). */
bool cc_name_listed(const char *list, const char *name);

#endif
