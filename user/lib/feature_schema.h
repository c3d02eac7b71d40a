/*
 * The ten window features and the telemetry CSV schema: one definition shared by
 * reflexd (which computes windows live), reflex-forge (which trains on them) and
 * the runtime (which quantizes them for a model). Names here are the CSV column
 * names, the `.reflex` feature-schema names and the Prometheus/JSON names.
 */
#ifndef REFLEX_FEATURE_SCHEMA_H
#define REFLEX_FEATURE_SCHEMA_H

#include <stdint.h>
#include "lib/flow_key.h"

#define WINDOW_LEN_NS (200ULL * 1000 * 1000)
#define WINDOW_STEP_NS (100ULL * 1000 * 1000)
#define FEATURE_SCHEMA_VERSION 1

enum feature {
	FEAT_QUEUE_DEPTH = 0,    /* root-qdisc backlog at the window end, bytes */
	FEAT_ENQUEUE_RATE,       /* packets/s entering the queue (iface: qdisc; flow: its egress packets) */
	FEAT_DEQUEUE_RATE,       /* packets/s leaving it (iface: qdisc sent; flow: packets delivered to the peer) */
	FEAT_LATENCY_P50,        /* median of the RTT measurements in the window, us */
	FEAT_LATENCY_P95,        /* 95th percentile of them, us */
	FEAT_BYTES_IN_PER_SEC,   /* tc ingress bytes/s */
	FEAT_BYTES_OUT_PER_SEC,  /* tc egress bytes/s */
	FEAT_PACKET_SIZE_MEAN,   /* bytes, both directions */
	FEAT_PACKET_SIZE_VAR,    /* bytes^2, both directions */
	FEAT_RTT_EWMA,           /* EWMA (gain 1/8) of the RTT measurements at the window end, us */
	FEATURE_COUNT
};

/* The features' names: window_input_names[0 .. FEATURE_COUNT). */
extern const char *const *const feature_names;

/*
 * Context columns that follow the features in the telemetry CSV: raw facts the
 * forge's oracles and the closed loop need that are not model inputs.
 */
enum context_column {
	CTX_SRTT_US = 0,        /* kernel srtt at the window end */
	CTX_MIN_RTT_US,         /* minimum RTT measurement seen so far for this scope */
	CTX_SND_CWND,           /* packets, at the window end (flow scope) */
	CTX_DELIVERY_RATE_BPS,  /* bytes acked per second over the window, * 8 */
	CTX_RETRANS,            /* retransmissions in the window */
	CTX_BACKLOG_PACKETS,    /* root-qdisc backlog at the window end, packets */
	CTX_DROPS,              /* root-qdisc drops in the window */
	CTX_RECORDS,            /* ring-buffer records that arrived in the window */
	CONTEXT_COUNT
};

/* The context columns' names: window_input_names[FEATURE_COUNT ..]. */
extern const char *const *const context_names;

/* Every input a model may name, in one table: the features, then the context
 * columns. */
#define WINDOW_INPUTS (FEATURE_COUNT + CONTEXT_COUNT)
extern const char *const window_input_names[WINDOW_INPUTS];

/* The first three CSV columns, before the features. */
#define CSV_KEY_COLUMNS "ts_ns,scope,flow"

enum window_scope {
	SCOPE_IFACE = 0,
	SCOPE_FLOW = 1,
};

/* One computed window of one scope: a CSV row. */
struct feature_window {
	uint64_t ts_ns;          /* window end, CLOCK_MONOTONIC ns (the BPF clock) */
	enum window_scope scope;
	char flow[FLOW_NAME_MAX]; /* "iface:NAME" or "tcp:SADDR:SPORT-DADDR:DPORT" */
	double feature[FEATURE_COUNT];
	double context[CONTEXT_COUNT];
};

/* A window's values in window_input_names' order. */
void window_inputs(const struct feature_window *w, double raw[WINDOW_INPUTS]);

/* Look up a feature by its CSV/schema name; -1 if unknown. */
int feature_index(const char *name);

/* Per-trace min/max normalization to [0,1] (the forge's step 1; the model's
 * feature schema stores the same min/max so the runtime maps raw values alike). */
double feature_normalize(double raw, double min, double max);

#endif /* REFLEX_FEATURE_SCHEMA_H */
