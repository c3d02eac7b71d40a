/*
 * On-line learning for the DQN policy (reflexd --learn).
 *
 * The decision loop hands each flow's transitions (state, action, reward, next
 * state; raw features as dqn_flow_observe gives them) to a background thread
 * through a bounded single-producer/single-consumer ring: a push never blocks, and
 * a transition that finds the ring full is dropped and counted. The thread
 * fine-tunes a float copy of the network with the trainer's own machinery (replay
 * buffer, target network, Double DQN with advantage learning, Adam: dqn/train.h) and,
 * every publish_every updates, quantizes it to int8 (dqn_build_model_raw,
 * calibrated on the last states it was given) and publishes the new model.
 *
 * It starts from the float net the `.reflex` MLP dequantizes to (its outputs are
 * the Q-values minus a state term common to all actions, as dqn_build_model
 * exported them) with a fresh replay buffer and fresh Adam moments.
 *
 * Publication (readers never wait, memory is freed only when no reader holds it):
 * the current model is an atomic pointer. A reader announces the pointer it read in
 * its own hazard slot and reads the pointer again; when both agree, the model cannot
 * be freed until the reader clears the slot (dqn_learn_release). The learner swaps in
 * a new model with an atomic exchange and frees a replaced one only when no hazard
 * slot holds it (Michael's hazard pointers; all of these operations are seq_cst).
 * A reader acquires at most one model at a time per slot; reader slots are
 * 0..DQN_LEARN_READERS-1, each used by one thread.
 */
#ifndef REFLEX_DQN_LEARN_H
#define REFLEX_DQN_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dqn/dqn.h"
#include "dqn/mlp.h"
#include "lib/error.h"

struct model;

#define DQN_LEARN_READERS 8
#define DQN_LEARN_MAX_QUEUE (1u << 16)
#define DQN_LEARN_CALIB_STATES 1024 /* the most recent next-states, for int8 calibration */

struct dqn_learn_opts {
	uint64_t seed;            /* replay sampling and activation noise (1) */
	uint32_t queue_capacity;  /* transitions in flight, a power of 2 in [2, 65536] (1024) */
	uint32_t replay_capacity; /* (10000) */
	uint32_t replay_warmup;   /* transitions before the first update (64) */
	uint32_t batch;           /* (64) */
	uint32_t target_sync;     /* updates between target-network copies (200) */
	uint32_t publish_every;   /* updates between int8 publications (50) */
	float lr;                 /* Adam (1e-6: README, "On-line learning", has why) */
};

void dqn_learn_opts_default(struct dqn_learn_opts *opts);

/* One decision of one flow and what followed it. */
struct dqn_transition {
	double state[DQN_FEATURES];      /* raw features the action was chosen on */
	double next_state[DQN_FEATURES]; /* raw features of the next decision */
	double reward;                   /* of the interval between them (dqn_flow_observe) */
	uint8_t action;                  /* enum dqn_action */
};

/* A published int8 model; immutable once published. */
struct dqn_learn_model {
	struct model *model;
	uint64_t generation;     /* 0: a copy of the source model; then 1, 2, ... */
	uint64_t updates;        /* updates it includes */
	size_t calibration_states; /* states its int8 activations were calibrated on (generation >= 1) */
};

struct dqn_learn_stats {
	uint64_t queued;         /* transitions the ring took */
	uint64_t dropped;        /* refused: ring full, or an action out of range */
	uint64_t processed;      /* taken by the learner */
	uint64_t updates;
	uint64_t generation;     /* of the latest published model */
	uint64_t publish_errors; /* quantizations that failed (the previous model stays) */
};

struct dqn_learn;

/*
 * A learner for source, an int8 DQN MLP as dqn_build_model writes it (features the
 * first 8 or all 13 of dqn_features, with their bounds; outputs dqn_action_names;
 * one hidden layer). Copies what it needs: source may be freed afterwards. The
 * thread is not started. -EINVAL (err names the problem), -ENOMEM.
 */
int dqn_learn_new(const struct model *source, const struct dqn_learn_opts *opts, struct dqn_learn **out,
		  struct reflex_err *err);
/* Starts the learner thread (once). */
int dqn_learn_start(struct dqn_learn *l, struct reflex_err *err);
/* From the one producer thread: queue a transition, or drop it (returns false). Never blocks. */
bool dqn_learn_push(struct dqn_learn *l, const struct dqn_transition *t);
/* The current model, held for the reader until dqn_learn_release(l, reader). Lock-free. */
const struct dqn_learn_model *dqn_learn_acquire(struct dqn_learn *l, unsigned reader);
void dqn_learn_release(struct dqn_learn *l, unsigned reader);
/* Stops the thread after the update in progress; transitions still queued are not
 * learned. Publishes a last model if there were updates since the last one. */
void dqn_learn_stop(struct dqn_learn *l);
void dqn_learn_stats(struct dqn_learn *l, struct dqn_learn_stats *st);
/* The float net being fine-tuned; only while the thread is not running. */
const struct mlp *dqn_learn_net(const struct dqn_learn *l);
/* Writes the current model with model_write_file (temp file, rename), through the
 * reader slot `reader`. Its metadata is the source's plus fine_tuned and learn_*. */
int dqn_learn_write(struct dqn_learn *l, unsigned reader, const char *path, struct reflex_err *err);
/* Stops the thread if it runs and frees everything; no reader may hold a model. */
void dqn_learn_free(struct dqn_learn *l);

/* The float net an int8 DQN MLP computes (up to the int8 rounding and the hidden
 * layer's saturation at 127): net is initialized here (mlp_free it). */
int dqn_learn_dequantize(const struct model *m, struct mlp *net, struct reflex_err *err);

#endif /* REFLEX_DQN_LEARN_H */
