/*
 * Float MLP -> int8 model layers (the DQN trainer's path into a `.reflex` file).
 *
 * Scheme (models/FORMAT.md, "MLP inference"): symmetric per-layer int8 weights,
 * int32 biases at the accumulator scale (weight scale x input scale), ReLU, and an
 * integer requantization (multiplier, shift) of each hidden layer's accumulators to
 * int8 activations whose scale covers the largest activation seen on calibration
 * inputs. The first layer's inputs are the normalized features at scale 1/127.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"

static void layer_forward(const struct model_float_layer *ly, const float *in, float *out, bool relu)
{
	for (unsigned o = 0; o < ly->out_count; o++) {
		const float *w = ly->weights + (size_t)o * ly->in_count;
		float acc = ly->biases[o];

		for (unsigned i = 0; i < ly->in_count; i++)
			acc += w[i] * in[i];
		out[o] = relu && acc < 0 ? 0 : acc;
	}
}

void model_mlp_forward_float(const struct model_float_layer *layers, unsigned layer_count,
			     const float *in, float *out)
{
	float act[2][MODEL_MAX_UNITS];
	unsigned cur = 0;

	memcpy(act[0], in, layers[0].in_count * sizeof(float));
	for (unsigned l = 0; l < layer_count; l++) {
		bool last = l + 1 == layer_count;

		layer_forward(&layers[l], act[cur], last ? out : act[cur ^ 1], !last);
		cur ^= 1;
	}
}

/* Largest ReLU output of each hidden layer over the calibration rows. */
static void calibrate(const struct model_float_layer *layers, unsigned layer_count,
		      const float *calib, size_t n_calib, double *amax)
{
	float act[2][MODEL_MAX_UNITS];

	for (size_t r = 0; r < n_calib; r++) {
		unsigned cur = 0;

		memcpy(act[0], calib + r * layers[0].in_count, layers[0].in_count * sizeof(float));
		for (unsigned l = 0; l + 1 < layer_count; l++) {
			layer_forward(&layers[l], act[cur], act[cur ^ 1], true);
			for (unsigned o = 0; o < layers[l].out_count; o++)
				amax[l] = fmax(amax[l], act[cur ^ 1][o]);
			cur ^= 1;
		}
	}
}

/* Without calibration data: the largest activation any input in the range can produce. */
static void interval_bound(const struct model_float_layer *layers, unsigned layer_count, double *amax)
{
	double in_max = 1.0; /* normalized features */

	for (unsigned l = 0; l + 1 < layer_count; l++) {
		const struct model_float_layer *ly = &layers[l];

		for (unsigned o = 0; o < ly->out_count; o++) {
			double hi = ly->biases[o];

			for (unsigned i = 0; i < ly->in_count; i++)
				hi += fmax(0.0, ly->weights[(size_t)o * ly->in_count + i]) * in_max;
			amax[l] = fmax(amax[l], hi);
		}
		in_max = amax[l] > 0 ? amax[l] : 1.0;
	}
}

/* m = mult * 2^-shift, mult < 2^31, shift in 1..62 (saturating at the ends). */
static void requant_params(double m, uint32_t *mult, uint8_t *shift)
{
	int e;
	double f = frexp(m, &e);
	long long q = llround(f * 2147483648.0);

	if (q == 2147483648LL) {
		q = 1LL << 30;
		e++;
	}
	if (31 - e < 1) {
		*mult = INT32_MAX;
		*shift = 1;
	} else if (31 - e > 62) {
		q = llround(ldexp(m, 62));
		*mult = q < 1 ? 1 : (uint32_t)q;
		*shift = 62;
	} else {
		*mult = (uint32_t)q;
		*shift = (uint8_t)(31 - e);
	}
}

static int check_float_layers(const struct model *m, const struct model_float_layer *layers,
			      unsigned layer_count, struct reflex_err *err)
{
	if (m->kind != MODEL_KIND_MLP || m->layer_count)
		return model_fail(err, -1, "model_mlp_quantize needs an MLP model with no layers yet");
	if (layer_count < 1 || layer_count > MODEL_MAX_LAYERS)
		return model_fail(err, -1, "%u layers, must be 1..%d", layer_count, MODEL_MAX_LAYERS);
	for (unsigned l = 0; l < layer_count; l++) {
		const struct model_float_layer *ly = &layers[l];
		unsigned want_in = l ? layers[l - 1].out_count : m->feature_count;

		if (!ly->in_count || ly->in_count > MODEL_MAX_UNITS || !ly->out_count ||
		    ly->out_count > MODEL_MAX_UNITS)
			return model_fail(err, -1, "layer %u: %u -> %u units, each must be 1..%d", l,
					  ly->in_count, ly->out_count, MODEL_MAX_UNITS);
		if (ly->in_count != want_in)
			return model_fail(err, -1, "layer %u: in_count %u, expected %u", l, ly->in_count,
					  want_in);
		for (size_t k = 0; k < (size_t)ly->in_count * ly->out_count; k++)
			if (!isfinite(ly->weights[k]))
				return model_fail(err, -1, "layer %u: weight %zu is not finite", l, k);
		for (unsigned o = 0; o < ly->out_count; o++)
			if (!isfinite(ly->biases[o]))
				return model_fail(err, -1, "layer %u: bias %u is not finite", l, o);
	}
	if (layers[layer_count - 1].out_count != m->output_count)
		return model_fail(err, -1, "last layer has %u outputs, the model %u",
				  layers[layer_count - 1].out_count, m->output_count);
	return 0;
}

/* Quantize one layer and append it; *in_scale becomes the scale of its output. */
static int quantize_layer(struct model *m, const struct model_float_layer *ly, bool last,
			  double amax, double *in_scale, struct reflex_err *err)
{
	size_t nw = (size_t)ly->in_count * ly->out_count;
	int8_t wq[MODEL_MAX_UNITS * MODEL_MAX_UNITS];
	int32_t bq[MODEL_MAX_UNITS];
	double wmax = 0, bmax = 0, ws, acc_scale, out_scale;
	uint32_t mult = 0;
	uint8_t shift = 0;

	for (size_t k = 0; k < nw; k++)
		wmax = fmax(wmax, fabs(ly->weights[k]));
	for (unsigned o = 0; o < ly->out_count; o++)
		bmax = fmax(bmax, fabs(ly->biases[o]));
	/* Widen the weight scale when a bias would not fit in +-MODEL_MAX_BIAS accumulator units. */
	ws = fmax(wmax / 127.0, bmax / (MODEL_MAX_BIAS * *in_scale));
	if (!(ws > 0))
		ws = 1.0;
	acc_scale = ws * *in_scale;
	for (size_t k = 0; k < nw; k++)
		wq[k] = (int8_t)fmax(-127, fmin(127, round(ly->weights[k] / ws)));
	for (unsigned o = 0; o < ly->out_count; o++)
		bq[o] = (int32_t)fmax(-MODEL_MAX_BIAS, fmin(MODEL_MAX_BIAS, round(ly->biases[o] / acc_scale)));
	if (last) {
		out_scale = acc_scale;
	} else {
		out_scale = amax > 0 ? amax / 127.0 : acc_scale;
		requant_params(acc_scale / out_scale, &mult, &shift);
	}
	*in_scale = out_scale;
	return model_add_layer(m, ly->in_count, ly->out_count, mult, shift, ws, wq, bq, err);
}

int model_mlp_quantize(struct model *m, const struct model_float_layer *layers,
		       unsigned layer_count, const float *calib, size_t n_calib,
		       struct reflex_err *err)
{
	double amax[MODEL_MAX_LAYERS] = { 0 };
	double scale = 1.0 / 127.0;
	int rc = check_float_layers(m, layers, layer_count, err);

	if (rc)
		return rc;
	if (n_calib)
		calibrate(layers, layer_count, calib, n_calib, amax);
	else
		interval_bound(layers, layer_count, amax);
	for (unsigned l = 0; l < layer_count; l++) {
		rc = quantize_layer(m, &layers[l], l + 1 == layer_count, amax[l], &scale, err);
		if (rc)
			goto fail;
	}
	for (unsigned o = 0; o < m->output_count; o++) {
		struct model_output *out = &m->outputs[o];

		out->scale = scale;
		out->min = INT32_MIN * scale;
		out->max = INT32_MAX * scale;
		model_output_qrange(m->kind, out->min, out->max, out->scale, &out->qmin, &out->qmax);
	}
	return 0;
fail:
	for (unsigned l = 0; l < m->layer_count; l++) {
		free(m->layers[l].weights);
		free(m->layers[l].biases);
		m->layers[l] = (struct model_layer){ 0 };
	}
	m->layer_count = 0;
	return rc;
}
