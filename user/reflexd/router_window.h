/*
 * The window caps of a router's forwarded TCP flows (issue 17): the host's controller
 * (controller.h: the same policies, startup test, probing, hysteresis, shadow mode and
 * decision log) decides a cwnd for each sender of a forwarded flow, and an actuator
 * writes it, in bytes, into `router_wnd_caps`, where bpf/router.bpf.c lowers the
 * window of the ACKs towards that sender to it (AC/DC). It runs inside the router's
 * loop through its hooks (router.h: struct router_hooks).
 *
 * Each data direction of a flow is one sender and one controller flow, named sender
 * first: the LAN end for ROUTER_DIR_UP (an upload), the far end for ROUTER_DIR_DOWN (a
 * download, "tcp:FAR:PORT-LAN:PORT" in the decision log). Its telemetry comes from the
 * router's passive samples, folded into a window series per direction, so that the
 * policies get the feature windows a host would compute for the sender's socket;
 * router_window_compute says which features a router cannot see and what stands in.
 *
 * The cap in bytes is the decided cwnd x the sender's segment size (its mean payload
 * per data segment, router_window_segment).
 */
#ifndef REFLEX_ROUTER_WINDOW_H
#define REFLEX_ROUTER_WINDOW_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "lib/feature_schema.h"
#include "reflex_router.h"
#include "reflexd/actuator.h"
#include "reflexd/controller.h"
#include "reflexd/telemetry.h"
#include "router/router.h"

/* A mean payload per data segment under this is small writes, not small segments: the
 * sender's MSS is then taken as ROUTER_WINDOW_DEFAULT_SEGMENT (IPv4's default MSS). */
#define ROUTER_WINDOW_MIN_SEGMENT 536
#define ROUTER_WINDOW_DEFAULT_SEGMENT 1448
/* Most a segment can carry (IPv4 total length). */
#define ROUTER_WINDOW_MAX_SEGMENT 65535

/* One sender of a forwarded flow. `entry` is what the controller gets as the flow: its
 * key sender first, its window series, and the stand-ins for the socket's facts. */
struct router_window_dir {
	struct flow_entry entry;
	bool sending;            /* it has carried payload: only senders are decided for */
	uint64_t payload_bytes;  /* totals over the flow's life, for the segment size */
	uint64_t data_packets;
	double rttvar_us;        /* the kernel's mdev: |rtt - srtt| smoothed by 1/4 */
	double delivery_rate_bps; /* the last window's */
	uint32_t cwnd_target;    /* packets in force, 0 = none */
	uint32_t cap_bytes;      /* what router_wnd_caps holds for it */
};

struct router_window_flow {
	struct flow_key key;     /* the router's: LAN end first */
	struct router_window_dir dir[ROUTER_DIR_MAX];
	uint32_t lan_rtt_min_us; /* the wire's share of the LAN RTT, as the router core takes it */
	UT_hash_handle hh;
};

struct router_window_stats {
	uint64_t samples;
	uint64_t windows;        /* fed to the controller */
	uint64_t caps_written;
	uint64_t caps_withdrawn;
	uint64_t map_errors;
};

struct router_window {
	struct controller controller;
	struct actuator act;
	int wnd_caps_fd;         /* -1: nothing is written (tests, before start) */
	struct router_window_flow *flows;
	uint32_t n_flows;
	uint32_t max_flows;
	uint64_t next_window_end; /* 0: not started */
	const char *shadow_status_path;
	bool auto_promote;         /* --auto-promote, not yet tried */
	double promote_after_s;    /* --shadow-period */
	uint64_t promote_after_ns; /* when, from the first tick on */
	uint64_t next_shadow_report_ns;
	struct router_window_stats stats;
	struct router_hooks hooks; /* for router_opts.hooks */
};

/* The sender's segment size from what it sent (router_window.h's rule). */
uint32_t router_window_segment(uint64_t payload_bytes, uint64_t data_packets);
/* cwnd_packets x segment bytes, at most UINT32_MAX (the map's field); 0 for 0. */
uint32_t router_window_cap_bytes(uint32_t cwnd_packets, uint32_t segment);

/* Starts the controller with opt (its decision log, models, policies); hooks (in rw)
 * are ready for router_opts. shadow_status_path: the shadow verdict's file (reflexctl
 * promote); promote_after_s > 0: --auto-promote after that long. -1 on failure (the
 * controller said why). */
int router_window_init(struct router_window *rw, const struct controller_opts *opt, const struct reflex_config *cfg,
		       uint32_t max_flows, const char *shadow_status_path, double promote_after_s);
/* Forgets every flow and frees the controller (the caps go with the map). */
void router_window_free(struct router_window *rw);

/* What the hooks do, exposed for tests (wnd_caps_fd -1 writes nothing). */
void router_window_on_sample(struct router_window *rw, const struct router_sample *s);
/* Feeds every window that ended a grace before now_ns to the controller. */
void router_window_tick(struct router_window *rw, uint64_t now_ns);
void router_window_forget(struct router_window *rw, const struct flow_key *key);
/* Withdraws every cap (the map entries) and forgets every flow. */
void router_window_withdraw_all(struct router_window *rw);
struct router_window_flow *router_window_flow(struct router_window *rw, const struct flow_key *key);

/* Direction d's window ending at end_ns, as the policies see it (the mapping onto the
 * feature schema). */
void router_window_compute(struct router_window_flow *f, int d, uint64_t end_ns, struct feature_window *w);

#endif
