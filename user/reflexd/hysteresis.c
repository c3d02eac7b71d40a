#include <math.h>

#include "reflexd/hysteresis.h"

static bool differs(double a, double b, double margin)
{
	double base = fmax(fabs(a), fabs(b));

	return base > 0 && fabs(a - b) / base > margin;
}

static uint32_t ms_of(uint64_t ns)
{
	return (uint32_t)(ns / 1000000);
}

/* Nanoseconds from a time in ms (struct hysteresis) until now. */
static uint64_t ns_since(uint32_t then_ms, uint64_t now_ns)
{
	return (uint64_t)(uint32_t)(ms_of(now_ns) - then_ms) * 1000000;
}

static void take(struct hysteresis *h, uint32_t value, int direction, uint64_t now_ns)
{
	if (direction && h->last_direction && direction != h->last_direction) {
		h->reversals++;
		h->reversed_ms = ms_of(now_ns);
	}
	if (!h->current || (direction && direction != h->last_direction))
		h->run_start = h->current ? h->current : value;
	if (direction)
		h->last_direction = (int8_t)direction;
	h->current = value;
	h->pending = 0;
	h->changes++;
	h->changed_ms = ms_of(now_ns);
}

/* Whether a reversal may be taken now (hysteresis.h says when). */
static bool reversal_allowed(const struct hysteresis *h, const struct hysteresis_params *p, uint64_t now_ns,
			     bool measured)
{
	uint64_t since = ns_since(h->reversed_ms, now_ns);
	double moved;

	if (!h->reversals || since >= p->reversal_gap_ns)
		return true;
	if (since < p->quick_reversal_gap_ns)
		return false;
	if (measured)
		return true;
	if (!(p->quick_reversal_factor > 1))
		return false;
	moved = fmax(h->run_start, h->current) / fmin(h->run_start, h->current);
	return moved > p->quick_reversal_factor;
}

bool hysteresis_offer(struct hysteresis *h, const struct hysteresis_params *p, uint32_t proposal, uint64_t now_ns,
		      bool measured)
{
	int direction;

	if (!proposal) {
		if (!h->current)
			return false;
		take(h, 0, 0, now_ns);
		h->last_direction = 0;
		return true;
	}
	if (!h->current) {
		take(h, proposal, 0, now_ns);
		return true;
	}
	if (!differs(proposal, h->current, p->margin)) {
		h->pending = 0;
		return false;
	}
	direction = proposal > h->current ? 1 : -1;
	/* The first cap is the cwnd that filled the pipe (controller.c), startup's queue
	 * with it; held back, that queue stood 300 ms more (100 Mbit/s at 10 ms: ping p95
	 * 29 ms against 16 taken at once). */
	if (measured && direction < 0 && h->changes == 1) {
		take(h, proposal, direction, now_ns);
		return true;
	}
	/* A proposal that moves the other way than the pending one starts a new wait. */
	if (!h->pending || (h->pending > h->current) != (proposal > h->current))
		h->pending_since_ms = ms_of(now_ns);
	h->pending = proposal;
	h->pending_measured = measured;
	if (ns_since(h->pending_since_ms, now_ns) < p->hold_ns)
		return false;
	if (h->last_direction && direction != h->last_direction && !reversal_allowed(h, p, now_ns, measured)) {
		h->reversals_refused++;
		return false;
	}
	take(h, proposal, direction, now_ns);
	return true;
}

bool hysteresis_unmeasured(struct hysteresis *h, const struct hysteresis_params *p, uint64_t now_ns)
{
	if (!h->pending || !h->current)
		return false;
	return hysteresis_offer(h, p, h->pending, now_ns, h->pending_measured);
}
