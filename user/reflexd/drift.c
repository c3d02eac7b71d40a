/* Model drift (drift.h): PSI against the model's training reference. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reflexd/drift.h"

static double fraction(uint32_t count, uint32_t total)
{
	double f = total ? (double)count / total : 0;

	return f < DRIFT_FRACTION_FLOOR ? DRIFT_FRACTION_FLOOR : f;
}

double drift_psi(const uint32_t *ref, uint32_t ref_total, const uint32_t *live, uint32_t live_total,
		 unsigned bins)
{
	double psi = 0;

	for (unsigned b = 0; b < bins; b++) {
		double e = fraction(ref[b], ref_total), a = fraction(live[b], live_total);

		psi += (a - e) * log(a / e);
	}
	return psi;
}

static size_t bucket_size(const struct drift *d)
{
	return (size_t)d->model->feature_count * d->model->reference->bin_count;
}

int drift_init(struct drift *d, const struct model *m, unsigned window_s)
{
	memset(d, 0, sizeof(*d));
	if (!m || !m->reference || window_s < 1 || window_s > DRIFT_MAX_WINDOW_S)
		return -EINVAL;
	d->model = m;
	d->window_s = window_s;
	d->buckets = calloc((size_t)window_s * bucket_size(d), sizeof(*d->buckets));
	d->bucket_n = calloc(window_s, sizeof(*d->bucket_n));
	if (!d->buckets || !d->bucket_n) {
		drift_free(d);
		return -ENOMEM;
	}
	return 0;
}

void drift_free(struct drift *d)
{
	free(d->buckets);
	free(d->bucket_n);
	memset(d, 0, sizeof(*d));
}

/* Moves the ring's head to now_s, emptying the seconds it passes over. */
static void advance(struct drift *d, uint64_t now_s)
{
	uint64_t steps;

	if (now_s <= d->head_s)
		return;
	steps = now_s - d->head_s;
	if (steps > d->window_s)
		steps = d->window_s;
	for (uint64_t s = 1; s <= steps; s++) {
		size_t slot = (size_t)((d->head_s + s) % d->window_s);

		memset(d->buckets + slot * bucket_size(d), 0, bucket_size(d) * sizeof(*d->buckets));
		d->bucket_n[slot] = 0;
	}
	d->head_s = now_s;
}

void drift_add(struct drift *d, uint64_t now_s, const int16_t *q)
{
	const struct model_reference *r = d->model->reference;
	size_t slot;
	uint32_t *bucket;

	advance(d, now_s);
	if (now_s + d->window_s <= d->head_s)
		return; /* older than the window */
	slot = (size_t)(now_s % d->window_s);
	bucket = d->buckets + slot * bucket_size(d);
	for (unsigned f = 0; f < d->model->feature_count; f++)
		bucket[f * r->bin_count + model_reference_bin(r, f, q[f])]++;
	d->bucket_n[slot]++;
}

bool drift_compute(struct drift *d, uint64_t now_s)
{
	const struct model_reference *r = d->model->reference;
	uint32_t live[MODEL_REF_MAX_BINS];

	advance(d, now_s);
	d->windows = 0;
	for (unsigned s = 0; s < d->window_s; s++)
		d->windows += d->bucket_n[s];
	d->total = 0;
	memset(d->psi, 0, sizeof(d->psi));
	if (d->windows < DRIFT_MIN_WINDOWS)
		return false;
	for (unsigned f = 0; f < d->model->feature_count; f++) {
		memset(live, 0, sizeof(live));
		for (unsigned s = 0; s < d->window_s; s++)
			for (unsigned b = 0; b < r->bin_count; b++)
				live[b] += d->buckets[s * bucket_size(d) + f * r->bin_count + b];
		d->psi[f] = drift_psi(r->counts[f], r->sample_count, live, d->windows, r->bin_count);
		d->total += d->psi[f];
	}
	d->total /= d->model->feature_count;
	return true;
}

void drift_top_features(const struct drift *d, unsigned *idx, unsigned n)
{
	bool taken[MODEL_MAX_FEATURES] = { false };

	for (unsigned k = 0; k < n; k++) {
		unsigned best = 0;
		bool found = false;

		for (unsigned f = 0; f < d->model->feature_count; f++)
			if (!taken[f] && (!found || d->psi[f] > d->psi[best])) {
				best = f;
				found = true;
			}
		taken[best] = true;
		idx[k] = best;
	}
}

enum drift_event drift_guard_update(struct drift_guard *g, uint64_t now_s, bool valid, double total)
{
	bool crossing = g->handed_over ? total < g->threshold * DRIFT_RETURN_RATIO : total > g->threshold;

	if (!valid || !crossing) {
		g->timing = false;
		return DRIFT_NONE;
	}
	if (!g->timing) {
		g->timing = true;
		g->since_s = now_s;
	}
	if (now_s - g->since_s < g->hold_s)
		return DRIFT_NONE;
	g->timing = false;
	g->handed_over = !g->handed_over;
	if (g->handed_over) {
		g->handovers++;
		return DRIFT_HANDOVER;
	}
	g->returns++;
	return DRIFT_RETURN;
}
