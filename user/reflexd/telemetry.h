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

#include "lib/flow_key.h"
#include "reflex.h"
#include "lib/window.h"

struct flow_entry {
	struct flow_key key;
	char name[FLOW_NAME_MAX];
	struct window_series ws;
	bool sock_flow; /* a socket of the cgroup (sockops), not only a tc tuple */
	uint64_t cookie; /* the socket's: another cookie on the same 4-tuple is a new connection */
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
	UT_hash_handle hh;
};

/* flow is NULL for the interface's window. */
typedef void (*window_sink)(const struct feature_window *window, struct flow_entry *flow, void *ctx);
/* Called before a flow's entry is freed, or reset for a new connection on its 4-tuple. */
typedef void (*flow_gone_fn)(struct flow_entry *flow, void *ctx);

struct telemetry {
	struct flow_entry *flows; /* uthash table keyed by flow_key */
	flow_gone_fn gone;        /* may be NULL */
	void *gone_ctx;
	unsigned int flow_count;
	unsigned int sock_flow_count; /* of them, flows of the cgroup's sockets */
	unsigned int max_flows;       /* --max-flows; telemetry_init sets REFLEX_MAX_FLOWS */
	uint64_t flows_refused;       /* new flows not tracked: the table was full */
	uint64_t flows_displaced;     /* tc-only flows dropped to make room for a socket's */
	uint64_t flows_seen;
	struct window_series iface;
	char iface_name[32];
	uint64_t sock_records;
	uint64_t tc_records;
	FILE *records_out; /* optional: one "ts_ns,ring,cpu" row per record (the forge replays them) */
};

void telemetry_init(struct telemetry *t, const char *iface_name, flow_gone_fn gone, void *gone_ctx);
/* Frees every flow, calling gone for each first. */
void telemetry_free(struct telemetry *t);

void telemetry_on_sock_sample(struct telemetry *t, const struct sock_sample *s);
void telemetry_on_tc_sample(struct telemetry *t, const struct tc_sample *s);

/* Computes the interface window and every active flow's window ending at end_ns,
 * hands each to sink, then forgets flows without a record in the window that closed
 * or were last heard of more than FLOW_IDLE_NS before end_ns. Records may arrive
 * after end_ns (the window closes after a grace): a flow heard of since is live. */
unsigned int telemetry_emit_windows(struct telemetry *t, uint64_t end_ns, const struct queue_snapshot *q_start,
				    const struct queue_snapshot *q_end, window_sink sink, void *ctx);

/* A flow nobody has heard of for this long is gone (UDP has no close). */
#define FLOW_IDLE_NS (10ULL * 1000 * 1000 * 1000)

struct flow_entry *telemetry_flow(struct telemetry *t, const struct flow_key *key);

#endif
