// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* A float DQN net as an int8 `.reflex` MLP: the lean export reflexd --learn
 * publishes with (no agreement check, no simulator). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dqn/train_internal.h"
#include "model/model.h"

/*
 * Subtract from every action's output the same function of the state (per hidden
 * unit the midpoint of its outgoing weights, and the midpoint of the biases). The
 * argmax is unchanged, but the outputs lose the large state value they share, so
 * the last layer's int8 scale resolves the small gaps between actions.
 */
static void center_outputs(float *w2, float *b2, uint32_t n_hidden)
{
	for (uint32_t h = 0; h <= n_hidden; h++) {
		float *col = h < n_hidden ? w2 + h : b2;
		size_t stride = h < n_hidden ? n_hidden : 1;
		float lo = col[0], hi = col[0];

		for (unsigned a = 1; a < DQN_ACTIONS; a++) {
			lo = fminf(lo, col[a * stride]);
			hi = fmaxf(hi, col[a * stride]);
		}
		for (unsigned a = 0; a < DQN_ACTIONS; a++)
			col[a * stride] -= (lo + hi) / 2;
	}
}

/*
 * Cross-layer equalization (Nagel et al. 2019): ReLU(x / s) = ReLU(x) / s for s > 0,
 * so scaling hidden unit h's incoming weights and bias by 1 / s_h and its outgoing
 * weights by s_h leaves the function unchanged. s_h = sqrt(r1_h / r2_h) gives both
 * sides the same range, so one per-layer int8 scale suits every unit.
 */
static void equalize_hidden(float *w1, float *b1, float *w2, uint32_t n_in, uint32_t n_hidden)
{
	for (uint32_t h = 0; h < n_hidden; h++) {
		float r1 = 0, r2 = 0, scale;

		for (uint32_t i = 0; i < n_in; i++)
			r1 = fmaxf(r1, fabsf(w1[(size_t)h * n_in + i]));
		for (unsigned a = 0; a < DQN_ACTIONS; a++)
			r2 = fmaxf(r2, fabsf(w2[(size_t)a * n_hidden + h]));
		if (!(r1 > 0 && r2 > 0))
			continue;
		scale = sqrtf(r1 / r2);
		for (uint32_t i = 0; i < n_in; i++)
			w1[(size_t)h * n_in + i] /= scale;
		b1[h] /= scale;
		for (unsigned a = 0; a < DQN_ACTIONS; a++)
			w2[(size_t)a * n_hidden + h] *= scale;
	}
}

int dqn_build_model(const struct mlp *net, const float *calib, size_t n_calib, bool equalize,
		    struct model **out, struct reflex_err *err)
{
	float w1[MODEL_MAX_UNITS * DQN_FEATURES], b1[MODEL_MAX_UNITS];
	float w2[DQN_ACTIONS * MODEL_MAX_UNITS], b2[DQN_ACTIONS];
	struct model_float_layer layers[2] = {
		{ (uint16_t)net->n_in, (uint16_t)net->n_hidden, w1, b1 },
		{ (uint16_t)net->n_hidden, (uint16_t)net->n_out, w2, b2 },
	};
	struct reflex_err merr = { 0 };
	struct model *m;
	int ret = 0;

	*out = NULL;
	if (net->n_out != DQN_ACTIONS || (net->n_in != DQN_FEATURES && net->n_in != DQN_SEED_FEATURES) ||
	    net->n_hidden > MODEL_MAX_UNITS) {
		reflex_err_set(err, "dqn export: a %u -> %u -> %u net does not fit the DQN's `.reflex` MLP",
			net->n_in, net->n_hidden, net->n_out);
		return -EINVAL;
	}
	memcpy(w1, net->w1, (size_t)net->n_hidden * net->n_in * sizeof(float));
	memcpy(b1, net->b1, net->n_hidden * sizeof(float));
	memcpy(w2, net->w2, (size_t)DQN_ACTIONS * net->n_hidden * sizeof(float));
	memcpy(b2, net->b2, sizeof(b2));
	if (equalize)
		equalize_hidden(w1, b1, w2, net->n_in, net->n_hidden);
	center_outputs(w2, b2, net->n_hidden);
	m = model_create(MODEL_KIND_MLP, (uint16_t)net->n_in, DQN_ACTIONS);
	if (!m) {
		reflex_err_set(err, "dqn export: out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < net->n_in && !ret; i++)
		ret = model_set_feature(m, i, dqn_features[i].name, dqn_features[i].min, dqn_features[i].max,
					&merr);
	/* Bounds and scale are placeholders: model_mlp_quantize sets them. */
	for (unsigned a = 0; a < DQN_ACTIONS && !ret; a++)
		ret = model_set_output(m, a, dqn_action_names[a], -1, 1, 1, &merr);
	if (!ret)
		ret = model_mlp_quantize(m, layers, 2, calib, n_calib, &merr);
	if (ret) {
		reflex_err_set(err, "dqn export: %s", merr.msg);
		model_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

int dqn_build_model_raw(const struct mlp *net, const double *calib_raw, size_t n_calib, bool equalize,
			struct model **out, struct reflex_err *err)
{
	float *calib;
	int ret;

	*out = NULL;
	calib = malloc((n_calib ? n_calib : 1) * net->n_in * sizeof(float));
	if (!calib) {
		reflex_err_set(err, "dqn export: out of memory");
		return -ENOMEM;
	}
	for (size_t k = 0; k < n_calib; k++)
		dqn_normalize(calib_raw + k * DQN_FEATURES, net->n_in, calib + k * net->n_in);
	ret = dqn_build_model(net, calib, n_calib, equalize, out, err);
	free(calib);
	return ret;
}
