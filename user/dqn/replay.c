// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Experience replay: a ring of normalized transitions, sampled uniformly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dqn/train.h"

int dqn_replay_init(struct dqn_replay *rb, uint32_t capacity, uint32_t n_in)
{
	memset(rb, 0, sizeof(*rb));
	if (!capacity || !n_in)
		return -EINVAL;
	rb->state = calloc((size_t)capacity * n_in, sizeof(float));
	rb->next_state = calloc((size_t)capacity * n_in, sizeof(float));
	rb->reward = calloc(capacity, sizeof(float));
	rb->action = calloc(capacity, 1);
	if (!rb->state || !rb->next_state || !rb->reward || !rb->action) {
		dqn_replay_free(rb);
		return -ENOMEM;
	}
	rb->capacity = capacity;
	rb->n_in = n_in;
	return 0;
}

void dqn_replay_free(struct dqn_replay *rb)
{
	free(rb->state);
	free(rb->next_state);
	free(rb->reward);
	free(rb->action);
	memset(rb, 0, sizeof(*rb));
}

void dqn_replay_push(struct dqn_replay *rb, const float *state, enum dqn_action action, float reward,
		     const float *next_state)
{
	size_t off = (size_t)rb->next * rb->n_in;

	memcpy(rb->state + off, state, rb->n_in * sizeof(float));
	memcpy(rb->next_state + off, next_state, rb->n_in * sizeof(float));
	rb->reward[rb->next] = reward;
	rb->action[rb->next] = (uint8_t)action;
	rb->next = (rb->next + 1) % rb->capacity;
	if (rb->len < rb->capacity)
		rb->len++;
}

void dqn_replay_sample(const struct dqn_replay *rb, struct prng *rng, uint32_t *idx, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		idx[i] = (uint32_t)prng_below(rng, rb->len);
}
