/* libFuzzer target for the mahimahi trace reader: parse, then check the looping schedule
 * against itself: the cursor walks in non-decreasing time, and trace_count over a window
 * equals the opportunities the cursor passes in it. */
#include <stddef.h>
#include <stdint.h>

#include "lib/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace t = { 0 };
	struct reflex_err err;
	struct trace_cursor c;
	uint64_t from, to, walked = 0, last;

	if (trace_parse("fuzz.trace", (const char *)data, size, &t, &err))
		return 0;
	if (t.period_ms != t.ms[t.count - 1])
		__builtin_trap();
	/* A window from inside the first loop to inside the third, bounded in steps. */
	from = t.ms[t.count / 2];
	to = from + 2 * t.period_ms + 1;
	trace_seek(&t, from, &c);
	last = trace_cursor_ms(&t, &c);
	if (last < from)
		__builtin_trap();
	while (trace_cursor_ms(&t, &c) < to && walked < 3 * (uint64_t)t.count + 3) {
		if (trace_cursor_ms(&t, &c) < last)
			__builtin_trap();
		last = trace_cursor_ms(&t, &c);
		walked++;
		trace_advance(&t, &c);
	}
	if (trace_cursor_ms(&t, &c) >= to && trace_count(&t, from, to) != walked)
		__builtin_trap();
	trace_free(&t);
	return 0;
}
