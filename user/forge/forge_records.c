/* The ring-buffer records file (`reflexd --records-out`): the arrival time of every
 * record, which the batching oracle replays window by window. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "forge/forge.h"

#define RECORDS_MAX_CPU 511

struct indexed {
	struct record_arrival a;
	size_t row;
};

static int by_time_then_row(const void *x, const void *y)
{
	const struct indexed *a = x, *b = y;

	if (a->a.ts_ns != b->a.ts_ns)
		return a->a.ts_ns < b->a.ts_ns ? -1 : 1;
	return (a->row > b->row) - (a->row < b->row);
}

static int parse_ring(const struct csv_table *t, size_t row, size_t col, uint32_t *ring, struct reflex_err *err)
{
	const char *s = csv_cell(t, row, col);

	if (!strcmp(s, "sock"))
		*ring = 0;
	else if (!strcmp(s, "tc"))
		*ring = 1;
	else
		return csv_cell_error(t, row, col, err, "'%.40s' is not a ring (sock or tc)", s);
	return 0;
}

static int parse_rows(const struct csv_table *t, struct indexed *rows, bool *has_cpu, struct reflex_err *err)
{
	size_t ts_col, ring_col;
	int cpu_col = csv_column(t, "cpu");
	int ret;

	ret = csv_require_column(t, "ts_ns", &ts_col, err);
	if (!ret)
		ret = csv_require_column(t, "ring", &ring_col, err);
	if (ret)
		return -EINVAL;
	*has_cpu = cpu_col >= 0;
	for (size_t r = 0; r < t->row_count; r++) {
		uint64_t cpu = 0;
		uint32_t ring;

		ret = csv_get_u64(t, r, ts_col, &rows[r].a.ts_ns, err);
		if (!ret)
			ret = parse_ring(t, r, ring_col, &ring, err);
		if (!ret && cpu_col >= 0) {
			ret = csv_get_u64(t, r, (size_t)cpu_col, &cpu, err);
			if (!ret && cpu > RECORDS_MAX_CPU)
				ret = csv_cell_error(t, r, (size_t)cpu_col, err, "cpu %llu is above %d",
						     (unsigned long long)cpu, RECORDS_MAX_CPU);
		}
		if (ret)
			return ret;
		rows[r].a.counter = ring * (RECORDS_MAX_CPU + 1) + (uint32_t)cpu;
		rows[r].row = r;
	}
	return 0;
}

int forge_records_load(const char *path, struct forge_records *rec, struct reflex_err *err)
{
	struct csv_table *t = NULL;
	struct indexed *rows = NULL;
	uint64_t newest = 0;
	int ret;

	memset(rec, 0, sizeof(*rec));
	ret = forge_read_csv(path, &t, rec->sha1, err);
	if (ret)
		return ret;
	rows = calloc(t->row_count, sizeof(*rows));
	rec->arrivals = calloc(t->row_count, sizeof(*rec->arrivals));
	rec->path = strdup(path);
	if (!rows || !rec->arrivals || !rec->path) {
		reflex_err_set_file(err, path, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = parse_rows(t, rows, &rec->has_cpu, err);
	if (ret)
		goto fail;
	for (size_t r = 0; r < t->row_count; r++) {
		if (r && rows[r].a.ts_ns < newest)
			rec->out_of_order++;
		if (rows[r].a.ts_ns > newest)
			newest = rows[r].a.ts_ns;
	}
	/* Records of two rings and several CPUs interleave: order them by their own clock. */
	qsort(rows, t->row_count, sizeof(*rows), by_time_then_row);
	for (size_t r = 0; r < t->row_count; r++)
		rec->arrivals[r] = rows[r].a;
	rec->count = t->row_count;
	free(rows);
	csv_free(t);
	return 0;
fail:
	free(rows);
	csv_free(t);
	forge_records_free(rec);
	return ret;
}

void forge_records_free(struct forge_records *rec)
{
	free(rec->arrivals);
	free(rec->path);
	memset(rec, 0, sizeof(*rec));
}

static size_t lower_bound(const struct record_arrival *a, size_t n, uint64_t ts)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid].ts_ns < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void forge_records_window(const struct forge_records *rec, uint64_t start_ns, uint64_t end_ns, size_t *first,
			  size_t *n)
{
	size_t lo = lower_bound(rec->arrivals, rec->count, start_ns);
	size_t hi = lower_bound(rec->arrivals, rec->count, end_ns);

	*first = lo;
	*n = hi - lo;
}
