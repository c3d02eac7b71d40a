/*
 * A float MLP with one hidden ReLU layer (n_in -> n_hidden -> n_out, linear
 * outputs) and Adam: what the DQN trains before it is quantized to int8.
 *
 * All parameters live in one array so that copying (target network), Adam and
 * checkpoints treat them as one vector. Layout, row-major like the `.reflex` MLP
 * section: w1[n_hidden][n_in], b1[n_hidden], w2[n_out][n_hidden], b2[n_out].
 */
#ifndef REFLEX_MLP_H
#define REFLEX_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/prng.h"

#define MLP_MAX_UNITS 1024

struct mlp {
	uint32_t n_in;
	uint32_t n_hidden;
	uint32_t n_out;
	size_t n_params;
	float *params;
	/* views into params */
	float *w1, *b1, *w2, *b2;
};

/* Allocates and initializes (He-uniform weights from rng, zero biases); rng may
 * be NULL for all-zero parameters. -EINVAL on a size of 0 or > MLP_MAX_UNITS, -ENOMEM. */
int mlp_init(struct mlp *net, uint32_t n_in, uint32_t n_hidden, uint32_t n_out, struct prng *rng);
void mlp_free(struct mlp *net);
/* dst must have the same shape as src. */
void mlp_copy(struct mlp *dst, const struct mlp *src);

/* out[n_out] = W2 relu(W1 x + b1) + b2; hidden[n_hidden] receives relu(W1 x + b1)
 * (kept for mlp_backward). */
void mlp_forward(const struct mlp *net, const float *x, float *hidden, float *out);
/* The output layer alone: out[n_out] = W2 hidden + b2. */
void mlp_output(const struct mlp *net, const float *hidden, float *out);

/* grad += d(loss)/d(params) for one sample, given x, its hidden activations and
 * dout = d(loss)/d(out). grad has n_params entries. */
void mlp_backward(const struct mlp *net, const float *x, const float *hidden, const float *dout,
		  float *grad);

/* Adam (Kingma & Ba) with bias correction. */
struct adam {
	size_t n;
	float lr, beta1, beta2, eps;
	uint64_t t;   /* steps taken */
	float *m, *v; /* first and second moments, n each */
};

int adam_init(struct adam *opt, size_t n, float lr);
void adam_free(struct adam *opt);
void adam_step(struct adam *opt, float *params, const float *grad);

#endif /* REFLEX_MLP_H */
