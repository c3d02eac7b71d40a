/*
 * The training reference of a model (the optional `reference` section, FORMAT.md):
 * per feature, quantile bins of the quantized training inputs and how many training
 * windows fell in each, so reflexd can tell how far live traffic has drifted from
 * what the model was trained on.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_internal.h"

size_t model_reference_section_size(const struct model *m)
{
	if (!m->reference)
		return 0;
	return model_reference_header_size(m->reference) +
	       (size_t)m->feature_count * model_reference_record_size(m->reference->bin_count);
}

unsigned model_reference_version(const struct model_reference *r)
{
	return r->psi_threshold != 0 ? 2 : 1;
}

size_t model_reference_header_size(const struct model_reference *r)
{
	return model_reference_version(r) == 2 ? REFERENCE_HEADER_SIZE_V2 : REFERENCE_HEADER_SIZE;
}

size_t model_reference_record_size(unsigned bin_count)
{
	return 2 * (size_t)(bin_count - 1) + 4 * (size_t)bin_count;
}

unsigned model_reference_bin(const struct model_reference *r, unsigned f, int16_t q)
{
	unsigned b = 0;

	while (b + 1 < r->bin_count && q > r->edges[f][b])
		b++;
	return b;
}

static int cmp_i16(const void *a, const void *b)
{
	return *(const int16_t *)a - *(const int16_t *)b;
}

int model_reference_build(struct model *m, const int16_t *q, size_t n, unsigned bin_count,
			  struct reflex_err *err)
{
	struct model_reference *r;
	int16_t *column;

	if (bin_count < MODEL_REF_MIN_BINS || bin_count > MODEL_REF_MAX_BINS)
		return model_fail(err, -1, "reference: %u bins, must be %d..%d", bin_count,
				  MODEL_REF_MIN_BINS, MODEL_REF_MAX_BINS);
	if (n < 1 || n > UINT32_MAX)
		return model_fail(err, -1, "reference: %zu training rows, need 1..%u", n, UINT32_MAX);
	r = calloc(1, sizeof(*r));
	column = malloc(n * sizeof(*column));
	if (!r || !column) {
		free(r);
		free(column);
		return model_fail_errno(err, ENOMEM, "reference");
	}
	r->bin_count = (uint8_t)bin_count;
	r->sample_count = (uint32_t)n;
	for (unsigned f = 0; f < m->feature_count; f++) {
		for (size_t i = 0; i < n; i++)
			column[i] = q[i * m->feature_count + f];
		qsort(column, n, sizeof(*column), cmp_i16);
		/* Edge b is the (b+1)/bin_count quantile: ties make some bins empty, never unordered. */
		for (unsigned b = 0; b + 1 < bin_count; b++)
			r->edges[f][b] = column[((b + 1) * n + bin_count - 1) / bin_count - 1];
		for (size_t i = 0; i < n; i++)
			r->counts[f][model_reference_bin(r, f, column[i])]++;
	}
	free(column);
	free(m->reference);
	m->reference = r;
	return 0;
}

int model_reference_check(const struct model *m, size_t off, struct reflex_err *err)
{
	const struct model_reference *r = m->reference;

	if (!r)
		return 0;
	if (r->bin_count < MODEL_REF_MIN_BINS || r->bin_count > MODEL_REF_MAX_BINS)
		return model_fail(err, (long)off + 2, "reference: bin_count %u outside %d..%d",
				  r->bin_count, MODEL_REF_MIN_BINS, MODEL_REF_MAX_BINS);
	if (!r->sample_count)
		return model_fail(err, (long)off + 4, "reference: sample_count is 0");
	if (!isfinite(r->psi_threshold) || r->psi_threshold < 0 || r->psi_threshold > MODEL_REF_MAX_PSI)
		return model_fail(err, (long)off + 8, "reference: psi_threshold %g must be 0 (none) or in (0, %d]",
				  r->psi_threshold, MODEL_REF_MAX_PSI);
	off += model_reference_header_size(r);
	for (unsigned f = 0; f < m->feature_count; f++, off += model_reference_record_size(r->bin_count)) {
		uint64_t sum = 0;

		for (unsigned b = 0; b + 1 < r->bin_count; b++) {
			int16_t e = r->edges[f][b];

			if (e < 0 || (b && e < r->edges[f][b - 1]))
				return model_fail(err, (long)(off + 2 * b),
						  "reference: feature %u (%s) edge %u is %d, must be 0..%d and not below edge %u",
						  f, m->features[f].name, b, e, MODEL_Q_MAX, b ? b - 1 : 0);
		}
		for (unsigned b = 0; b < r->bin_count; b++)
			sum += r->counts[f][b];
		if (sum != r->sample_count)
			return model_fail(err, (long)(off + 2 * (r->bin_count - 1u)),
					  "reference: feature %u (%s) bin counts sum to %llu, sample_count is %u",
					  f, m->features[f].name, (unsigned long long)sum, r->sample_count);
	}
	return 0;
}
