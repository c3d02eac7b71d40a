/*
 * Link traces in the mahimahi format: one line per delivery opportunity for one
 * TRACE_MTU_BYTES packet, the line being the millisecond (from the trace's start) at
 * which it occurs; a millisecond repeats when several packets fit in it. The trace loops:
 * after its last line, the schedule starts again shifted by the last line's value (the
 * period), as mahimahi's link shell does.
 *
 * Reader rules: every line is decimal digits (up to TRACE_MAX_MS), ended by LF or CRLF
 * (the last may lack it); values never decrease; at least one line; the last value (the
 * period) is above 0. Errors name the source and the line. Used by the lab's trace-driven
 * link (scripts/lab/trace-link.c) and the arena's offered-capacity figures.
 */
#ifndef REFLEX_LIB_TRACE_H
#define REFLEX_LIB_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define TRACE_MTU_BYTES 1500u
/* About 24 days: far beyond any recording, small enough that loops never overflow. */
#define TRACE_MAX_MS 2000000000u
#define TRACE_MAX_LINES (64u * 1024 * 1024)
#define TRACE_MAX_FILE_BYTES (1ULL << 30)

struct trace {
	uint32_t *ms;       /* count opportunity times, non-decreasing */
	size_t count;
	uint64_t period_ms; /* ms[count - 1]: the loop length */
};

/* A position in the looping schedule: the opportunity at base_ms + ms[index]. */
struct trace_cursor {
	uint64_t base_ms;
	size_t index;
};

/* Parse len bytes; source names the data in messages. 0, or -EINVAL / -ENOMEM with err. */
int trace_parse(const char *source, const char *data, size_t len, struct trace *out,
		struct reflex_err *err);
/* Read and parse a file, plain or gzip-compressed. -errno of the I/O as well. */
int trace_read_file(const char *path, struct trace *out, struct reflex_err *err);
void trace_free(struct trace *t);

/* The first opportunity at or after at_ms. */
void trace_seek(const struct trace *t, uint64_t at_ms, struct trace_cursor *c);
static inline uint64_t trace_cursor_ms(const struct trace *t, const struct trace_cursor *c)
{
	return c->base_ms + t->ms[c->index];
}
void trace_advance(const struct trace *t, struct trace_cursor *c);

/* Delivery opportunities with from_ms <= time < to_ms. */
uint64_t trace_count(const struct trace *t, uint64_t from_ms, uint64_t to_ms);

#endif
