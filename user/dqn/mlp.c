// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
#include "dqn/mlp.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_views(struct mlp *net)
{
	net->w1 = net->params;
	net->b1 = net->w1 + (size_t)net->n_hidden * net->n_in;
	net->w2 = net->b1 + net->n_hidden;
	net->b2 = net->w2 + (size_t)net->n_out * net->n_hidden;
}

static void init_uniform(float *w, size_t n, uint32_t fan_in, struct prng *rng)
{
	/* He-uniform: keeps the ReLU layer's activation variance near its input's. */
	double limit = sqrt(6.0 / fan_in);

	for (size_t i = 0; i < n; i++)
		w[i] = (float)((2.0 * prng_uniform(rng) - 1.0) * limit);
}

int mlp_init(struct mlp *net, uint32_t n_in, uint32_t n_hidden, uint32_t n_out, struct prng *rng)
{
	memset(net, 0, sizeof(*net));
	if (!n_in || !n_hidden || !n_out || n_in > MLP_MAX_UNITS || n_hidden > MLP_MAX_UNITS ||
	    n_out > MLP_MAX_UNITS)
		return -EINVAL;
	net->n_in = n_in;
	net->n_hidden = n_hidden;
	net->n_out = n_out;
	net->n_params = (size_t)n_hidden * n_in + n_hidden + (size_t)n_out * n_hidden + n_out;
	net->params = calloc(net->n_params, sizeof(float));
	if (!net->params)
		return -ENOMEM;
	set_views(net);
	if (rng) {
		init_uniform(net->w1, (size_t)n_hidden * n_in, n_in, rng);
		init_uniform(net->w2, (size_t)n_out * n_hidden, n_hidden, rng);
	}
	return 0;
}

void mlp_free(struct mlp *net)
{
	free(net->params);
	memset(net, 0, sizeof(*net));
}

void mlp_copy(struct mlp *dst, const struct mlp *src)
{
	memcpy(dst->params, src->params, src->n_params * sizeof(float));
}

/*
 * Each unit sums its inputs in index order (so results do not depend on the
 * blocking), but BLOCK units are summed side by side: independent accumulators
 * keep the adder busy instead of waiting on one long dependency chain.
 */
#define BLOCK 8

void mlp_forward(const struct mlp *net, const float *x, float *hidden, float *out)
{
	uint32_t n_in = net->n_in, n_hidden = net->n_hidden, h = 0;

	for (; h + BLOCK <= n_hidden; h += BLOCK) {
		const float *w = net->w1 + (size_t)h * n_in;
		float acc[BLOCK];

		for (int j = 0; j < BLOCK; j++)
			acc[j] = net->b1[h + j];
		for (uint32_t i = 0; i < n_in; i++)
			for (int j = 0; j < BLOCK; j++)
				acc[j] += w[(size_t)j * n_in + i] * x[i];
		for (int j = 0; j < BLOCK; j++)
			hidden[h + j] = acc[j] > 0.0f ? acc[j] : 0.0f;
	}
	for (; h < n_hidden; h++) {
		const float *w = net->w1 + (size_t)h * n_in;
		float acc = net->b1[h];

		for (uint32_t i = 0; i < n_in; i++)
			acc += w[i] * x[i];
		hidden[h] = acc > 0.0f ? acc : 0.0f;
	}
	mlp_output(net, hidden, out);
}

void mlp_output(const struct mlp *net, const float *hidden, float *out)
{
	uint32_t n_hidden = net->n_hidden, o = 0;

	for (; o + 2 <= net->n_out; o += 2) {
		const float *w0 = net->w2 + (size_t)o * n_hidden, *w1 = w0 + n_hidden;
		float acc0 = net->b2[o], acc1 = net->b2[o + 1];

		for (uint32_t h = 0; h < n_hidden; h++) {
			acc0 += w0[h] * hidden[h];
			acc1 += w1[h] * hidden[h];
		}
		out[o] = acc0;
		out[o + 1] = acc1;
	}
	for (; o < net->n_out; o++) {
		const float *w = net->w2 + (size_t)o * n_hidden;
		float acc = net->b2[o];

		for (uint32_t h = 0; h < n_hidden; h++)
			acc += w[h] * hidden[h];
		out[o] = acc;
	}
}

void mlp_backward(const struct mlp *net, const float *x, const float *hidden, const float *dout,
		  float *grad)
{
	uint32_t n_in = net->n_in, n_hidden = net->n_hidden;
	size_t off_b1 = (size_t)n_hidden * n_in;
	size_t off_w2 = off_b1 + n_hidden;
	size_t off_b2 = off_w2 + (size_t)net->n_out * n_hidden;
	float *g_w1 = grad, *g_b1 = grad + off_b1, *g_w2 = grad + off_w2, *g_b2 = grad + off_b2;

	for (uint32_t o = 0; o < net->n_out; o++) {
		float d = dout[o];

		if (d == 0.0f)
			continue;
		g_b2[o] += d;
		for (uint32_t h = 0; h < n_hidden; h++)
			g_w2[(size_t)o * n_hidden + h] += d * hidden[h];
	}
	for (uint32_t h = 0; h < n_hidden; h++) {
		float dh = 0.0f;

		if (hidden[h] <= 0.0f)
			continue; /* ReLU: no gradient through an inactive unit */
		for (uint32_t o = 0; o < net->n_out; o++)
			dh += net->w2[(size_t)o * n_hidden + h] * dout[o];
		g_b1[h] += dh;
		for (uint32_t i = 0; i < n_in; i++)
			g_w1[(size_t)h * n_in + i] += dh * x[i];
	}
}

int adam_init(struct adam *opt, size_t n, float lr)
{
	memset(opt, 0, sizeof(*opt));
	opt->m = calloc(n, sizeof(float));
	opt->v = calloc(n, sizeof(float));
	if (!opt->m || !opt->v) {
		adam_free(opt);
		return -ENOMEM;
	}
	opt->n = n;
	opt->lr = lr;
	opt->beta1 = 0.9f;
	opt->beta2 = 0.999f;
	opt->eps = 1e-8f;
	return 0;
}

void adam_free(struct adam *opt)
{
	free(opt->m);
	free(opt->v);
	opt->m = opt->v = NULL;
	opt->n = 0;
}

void adam_step(struct adam *opt, float *params, const float *grad)
{
	double bc1, bc2;
	float step;

	opt->t++;
	bc1 = 1.0 - pow(opt->beta1, (double)opt->t);
	bc2 = 1.0 - pow(opt->beta2, (double)opt->t);
	step = (float)(opt->lr * sqrt(bc2) / bc1);
	for (size_t i = 0; i < opt->n; i++) {
		float g = grad[i];

		opt->m[i] = opt->beta1 * opt->m[i] + (1.0f - opt->beta1) * g;
		opt->v[i] = opt->beta2 * opt->v[i] + (1.0f - opt->beta2) * g * g;
		params[i] -= step * opt->m[i] / (sqrtf(opt->v[i]) + opt->eps * (float)sqrt(bc2));
	}
}
