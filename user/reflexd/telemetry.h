/*
 * reflexd's view of the traffic: every ring-buffer record updates a per-flow
 * window series and the interface's; windows are computed from them at each step.
 */
#ifndef REFLEX_TELEMETRY_H
#define REFLEX_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/flow_key.h"
#include "lib/flow_table.h"
#include "reflex.h"
#include "lib/window.h"

/* RTT measurements a flow keeps per 100 ms step: sockops samples a flow at most once
 * per sample interval (10 ms by default) by the TCP clock and stamps the sample with
 * bpf_ktime_get_ns, so a step holds at most 10, or 11 where the two clocks' jitter
 * straddles a step's edge: at the default every one is kept; at shorter intervals a
 * uniform sample of them (the interface keeps WINDOW_RTT_KEEP). */
#define FLOW_RTT_KEEP 11

/* One flow's state (328 bytes): reflexd holds up to --max-flows of them. When it was
 * last heard of is its series' newest step (ws.newest). */
struct flow_entry {
	struct flow_key key; /* first: the flow table's key */
	struct window_series ws;
	uint64_t cookie; /* the socket's: another cookie on the same 4-tuple is a new connection */
	/* Last cumulative TCP counters, to turn samples into per-step growth. */
	uint64_t bytes_acked;
	uint64_t sock_ts_ns; /* of the last sample: the growth since happened after it */
	uint32_t delivered;
	uint32_t total_retrans;
	uint32_t mdev_us;
	uint32_t packets_out;
	uint32_t emitted_index; /* end step of the last window handed out on a record (0: none) */
	uint16_t mss; /* TCP's MSS option is 16 bits */
	bool sock_flow; /* a socket of the cgroup (sockops), not only a tc tuple */
	bool have_sock_totals;
	bool closed;
	rtt_kept_t rtt_us[WINDOW_BINS * FLOW_RTT_KEEP]; /* ws's */
	uint32_t control_slot; /* the controller's state for it: slot + 1, 0: none */
};

/* flow is NULL for the interface's window. */
typedef void (*window_sink)(const struct feature_window *window, struct flow_entry *flow, void *ctx);
/* Called before a flow's entry is freed, or reset for a new connection on its 4-tuple. */
typedef void (*flow_gone_fn)(struct flow_entry *flow, void *ctx);

struct telemetry {
	struct flow_table flows;  /* sized max_flows at the first flow */
	flow_gone_fn gone;        /* may be NULL */
	void *gone_ctx;
	unsigned int flow_count;
	unsigned int sock_flow_count; /* of them, flows of the cgroup's sockets */
	unsigned int max_flows;       /* --max-flows; telemetry_init sets REFLEX_MAX_FLOWS */
	uint64_t flows_refused;       /* new flows not tracked: the table was full */
	uint64_t flows_displaced;     /* tc-only flows dropped to make room for a socket's */
	uint64_t flows_seen;
	struct window_series iface;
	rtt_kept_t iface_rtt_us[WINDOW_BINS * WINDOW_RTT_KEEP];
	char iface_name[32];
	bool window_names; /* fill feature_window.flow of flow windows (for the CSV, -v) */
	/* Closing a flow's window on its record (telemetry_window_open). */
	window_sink early_sink;
	void *early_ctx;
	uint64_t open_end; /* the window a record may close; 0: none */
	const struct queue_snapshot *open_q_start, *open_q_end;
	uint64_t windows_on_record; /* flow windows closed by a record rather than the pass */
	uint64_t sock_records;
	uint64_t tc_records;
	FILE *records_out; /* optional: one "ts_ns,ring,cpu" row per record (the forge replays them) */
};

void telemetry_init(struct telemetry *t, const char *iface_name, flow_gone_fn gone, void *gone_ctx);
/* Frees every flow, calling gone for each first. */
void telemetry_free(struct telemetry *t);

void telemetry_on_sock_sample(struct telemetry *t, const struct sock_sample *s);
void telemetry_on_tc_sample(struct telemetry *t, const struct tc_sample *s);

/* Computes the interface window and every active flow's window ending at end_ns
 * (but those a record already closed, telemetry_window_open), hands each to sink,
 * then forgets flows without a record in the window that closed or were last heard
 * of more than FLOW_IDLE_NS before end_ns. Records may arrive after end_ns (the
 * window closes after a grace): a flow heard of since is live. */
unsigned int telemetry_emit_windows(struct telemetry *t, uint64_t end_ns, const struct queue_snapshot *q_start,
				    const struct queue_snapshot *q_end, window_sink sink, void *ctx);

/* A flow nobody has heard of for this long is gone (UDP has no close). */
#define FLOW_IDLE_NS (10ULL * 1000 * 1000 * 1000)

/* From now on until telemetry_emit_windows(end_ns), a flow's first record at or after
 * end_ns closes its window ending at end_ns at once: the window is computed and
 * handed to sink before that record is counted (it belongs to the next step). A
 * flow's decision then waits for its own next record, not for every other flow's
 * window in the pass after the grace. q_start/q_end must stay valid until then. */
void telemetry_window_open(struct telemetry *t, uint64_t end_ns, const struct queue_snapshot *q_start,
			   const struct queue_snapshot *q_end, window_sink sink, void *ctx);

struct flow_entry *telemetry_flow(struct telemetry *t, const struct flow_key *key);
/* The tracked flow after prev (NULL: the first), or NULL. */
struct flow_entry *telemetry_next_flow(const struct telemetry *t, const struct flow_entry *prev);

#endif
