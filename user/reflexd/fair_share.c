#include <math.h>
#include "reflexd/fair_share.h"

static unsigned band_of(double min_rtt_us)
{
	int index = (int)floor(log(fmax(min_rtt_us, 1.0)) / log(FAIR_RTT_RATIO));

	return (unsigned)(((index % FAIR_BANDS) + FAIR_BANDS) % FAIR_BANDS);
}

void fair_share_note(struct fair_share *fs, double min_rtt_us, uint32_t cap, uint32_t slot, uint32_t now_ms)
{
	struct fair_band *b = &fs->band[band_of(min_rtt_us)];
	uint32_t epoch = now_ms / FAIR_EPOCH_MS;

	if (b->epoch != epoch) {
		b->prev = b->epoch + 1 == epoch ? b->cur : (struct fair_epoch){ 0 };
		b->cur = (struct fair_epoch){ 0 };
		b->epoch = epoch;
	}
	if (!b->cur.windows)
		b->cur.first_slot = slot;
	else if (b->cur.first_slot != slot)
		b->cur.several = true;
	b->cur.cap_sum += cap;
	b->cur.windows++;
}

/* Adds what an epoch of a band holds; says whether a flow other than slot is in it. */
static bool add_epoch(const struct fair_epoch *e, uint32_t slot, double *cap_sum, uint32_t *windows)
{
	if (!e->windows)
		return false;
	*cap_sum += e->cap_sum;
	*windows += e->windows;
	return e->several || e->first_slot != slot;
}

double fair_share_mean(const struct fair_share *fs, double min_rtt_us, uint32_t slot, uint32_t now_ms)
{
	unsigned center = band_of(min_rtt_us);
	uint32_t epoch = now_ms / FAIR_EPOCH_MS, windows = 0;
	double cap_sum = 0;
	bool shared = false;

	for (unsigned d = 0; d < 3; d++) {
		const struct fair_band *b = &fs->band[(center + FAIR_BANDS - 1 + d) % FAIR_BANDS];

		if (b->epoch == epoch) {
			shared |= add_epoch(&b->cur, slot, &cap_sum, &windows);
			shared |= add_epoch(&b->prev, slot, &cap_sum, &windows);
		} else if (b->epoch + 1 == epoch) {
			shared |= add_epoch(&b->cur, slot, &cap_sum, &windows);
		}
	}
	return shared && windows ? cap_sum / windows : 0;
}
