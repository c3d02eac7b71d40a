/*
 * reflexd's view of the traffic: every ring-buffer record updates a per-flow
 * window series and the interface's; windows are computed from them at each step.
 */
#ifndef REFLEX_TELEMETRY_H
#define REFLEX_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uthash.h>

#include "reflexd/controller.h"
#include "lib/flow_key.h"
#include "reflex.h"
#include "lib/window.h"

struct flow_entry {
	struct flow_key key;
	char name[FLOW_NAME_MAX];
	struct window_series ws;
	uint64_t cookie;
	/* Last cumulative TCP counters, to turn samples into per-step growth. */
	bool have_sock_totals;
	uint64_t bytes_acked;
	uint32_t delivered;
	uint32_t total_retrans;
	uint32_t mss;
	uint32_t mdev_us;
	uint32_t packets_out;
	bool closed;
	uint64_t last_seen_ns;
	struct flow_control ctl;
	UT_hash_handle hh;
};

struct telemetry {
	struct flow_entry *flows; /* uthash table keyed by flow_key */
	unsigned int flow_count;
	uint64_t flows_seen;
	struct window_series iface;
	char iface_name[32];
	uint64_t sock_records;
	uint64_t tc_records;
	FILE *records_out; /* optional: one "ts_ns,ring,cpu" row per record (the forge replays them) */
};

/* flow is NULL for the interface's window. */
typedef void (*window_sink)(const struct feature_window *window, struct flow_entry *flow, void *ctx);
/* Called before a flow's entry is freed. */
typedef void (*flow_gone_fn)(struct flow_entry *flow, void *ctx);

void telemetry_init(struct telemetry *t, const char *iface_name);
/* Frees every flow, calling gone (if non-NULL) for each first. */
void telemetry_free(struct telemetry *t, flow_gone_fn gone, void *ctx);

void telemetry_on_sock_sample(struct telemetry *t, const struct sock_sample *s);
void telemetry_on_tc_sample(struct telemetry *t, const struct tc_sample *s);

/* Computes the interface window and every active flow's window ending at end_ns,
 * hands each to sink, then forgets flows closed or idle for longer than a window. */
unsigned int telemetry_emit_windows(struct telemetry *t, uint64_t end_ns, const struct queue_snapshot *q_start,
				    const struct queue_snapshot *q_end, window_sink sink, flow_gone_fn gone, void *ctx);

struct flow_entry *telemetry_flow(struct telemetry *t, const struct flow_key *key);

#endif
