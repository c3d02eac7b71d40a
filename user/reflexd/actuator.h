/*
 * Where reflexd's decisions go into the kernel. The controller decides; an actuator
 * writes: each flow's cwnd target, the heartbeat that keeps targets in force (the
 * BPF side lifts them when it goes stale), and the telemetry pipeline's batching
 * knobs. Nothing else in the controller touches a BPF map, so a test can run the
 * controller on a recording actuator.
 *
 * The host actuators (`--actuator clamp|cc`) write the same maps and differ in who
 * reads them: under clamp the sockops program applies a target with
 * TCP_BPF_SNDCWND_CLAMP over the flow's own congestion control; under cc the
 * `reflex` congestion control (registered through struct_ops, cc_actuator.h) sets
 * cwnd to it.
 */
#ifndef REFLEX_ACTUATOR_H
#define REFLEX_ACTUATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/flow_key.h"
#include "reflex.h"
#include "reflexd/cc_actuator.h"
#include "reflexd/loader.h"

struct actuator {
	const char *name; /* "clamp", "cc" */
	/* Whether per-flow targets and the heartbeat reach sockets (the sockops program
	 * is loaded); false: only the batching knobs are written. */
	bool flows;
	/* Puts cwnd_target packets in force for the flow; 0 withdraws its decision.
	 * 0 or a negative errno (withdrawing what is not there is not an error). An
	 * actuator with flush may hold the write until then. */
	int (*decide)(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns);
	/* Writes the decisions decide held, in as few system calls as it can; returns
	 * how many failed. NULL: decide writes at once. */
	unsigned (*flush)(struct actuator *a);
	/* The controller is alive at now_ns. */
	int (*beat)(struct actuator *a, uint64_t now_ns);
	/* The telemetry pipeline's config (batching knobs), whole. */
	int (*configure)(struct actuator *a, const struct reflex_config *cfg);
};

/* Decisions held for one batched write into cwnd_decisions (or a map of its layout):
 * a drain of the ring buffers decides many flows, and one bpf_map_update_batch
 * costs about what one bpf_map_update_elem does. Kept in order, so an update and a
 * withdrawal of the same flow land as decided. */
#define DECISION_BATCH_MAX 1024
/* ... and held at most this long: a long drain writes as it goes. */
#define DECISION_BATCH_DELAY_NS (200ULL * 1000)

struct decision_batch {
	int fd;           /* the map */
	uint64_t *gen;    /* decision_gen, bumped after each flush; may be NULL */
	unsigned n;
	unsigned failed;  /* writes that failed since the last decision_batch_flush */
	uint64_t first_ns; /* CLOCK_MONOTONIC when the oldest held decision came */
	struct flow_key key[DECISION_BATCH_MAX];
	struct cwnd_decision value[DECISION_BATCH_MAX];
};

/* Holds one decision (0: a withdrawal), writing what is held first when full or
 * older than DECISION_BATCH_DELAY_NS; returns how many it wrote so. */
unsigned decision_batch_add(struct decision_batch *b, const struct flow_key *key, uint32_t cwnd_target,
			uint64_t decided_ns);
/* Writes what is held: runs of updates with bpf_map_update_batch, runs of
 * withdrawals with bpf_map_delete_batch (a flow without a decision is no failure).
 * Returns how many writes failed since the last call. */
unsigned decision_batch_flush(struct decision_batch *b);

struct host_actuator {
	struct actuator base;
	struct decision_batch batch;
	struct reflex_bpf *bpf;
	int decisions_fd; /* cwnd_decisions, -1 without sockops */
	int heartbeat_fd;
	uint64_t *decision_gen; /* mmapped decision_gen; NULL without sockops */
	struct cc_actuator cc; /* REFLEX_ACTUATOR_CC: the `reflex` registration */
	bool cc_started;
};

/* The actuator of kind on the loaded programs of rb; under REFLEX_ACTUATOR_CC this
 * registers the `reflex` congestion control, so call it before sockops is attached
 * (it starts selecting it). On failure err says why; host_actuator_stop() undoes. */
int host_actuator_start(struct host_actuator *h, enum reflex_actuator kind, struct reflex_bpf *rb,
			struct reflex_err *err);
/* Unregisters `reflex` (cc); safe on a zeroed or failed actuator. */
void host_actuator_stop(struct host_actuator *h);

#endif
