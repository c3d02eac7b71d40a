/* libFuzzer target for the strict CSV reader: parse, then read every cell as a
 * number and an integer, and look every header name up again. */
#include <stddef.h>
#include <stdint.h>

#include "lib/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_table *t = NULL;
	struct reflex_err err;

	if (csv_parse("fuzz.csv", (const char *)data, size, &t, &err))
		return 0;
	for (size_t c = 0; c < t->col_count; c++)
		if (csv_column(t, t->header[c]) != (int)c)
			__builtin_trap();
	for (size_t r = 0; r < t->row_count; r++) {
		for (size_t c = 0; c < t->col_count; c++) {
			double v;
			uint64_t u;

			if (!csv_get_double(t, r, c, &v, &err) && v != v)
				__builtin_trap();
			csv_get_u64(t, r, c, &u, &err);
		}
	}
	csv_free(t);
	return 0;
}
