#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/trace.h"

/* Parses one line's digits [start, end); 0 or -EINVAL with err naming the line. */
static int parse_line(const char *source, size_t line, const char *start, const char *end,
		      uint32_t *out, struct reflex_err *err)
{
	uint64_t value = 0;

	if (start == end) {
		reflex_err_set_line(err, source, (long)line, "empty line (expected a millisecond timestamp)");
		return -EINVAL;
	}
	for (const char *p = start; p < end; p++) {
		if (*p < '0' || *p > '9') {
			reflex_err_set_line(err, source, (long)line, "'%.*s' is not a millisecond timestamp (digits only)",
				  (int)(end - start > 40 ? 40 : end - start), start);
			return -EINVAL;
		}
		value = value * 10 + (uint64_t)(*p - '0');
		if (value > TRACE_MAX_MS) {
			reflex_err_set_line(err, source, (long)line, "timestamp above %u ms", TRACE_MAX_MS);
			return -EINVAL;
		}
	}
	*out = (uint32_t)value;
	return 0;
}

static int grow(struct trace *t, size_t *cap, const char *source, struct reflex_err *err)
{
	size_t new_cap = *cap ? *cap * 2 : 4096;
	uint32_t *ms;

	if (t->count >= TRACE_MAX_LINES) {
		reflex_err_set_file(err, source, "more than %u lines", TRACE_MAX_LINES);
		return -EINVAL;
	}
	if (new_cap > TRACE_MAX_LINES)
		new_cap = TRACE_MAX_LINES;
	ms = realloc(t->ms, new_cap * sizeof(*ms));
	if (!ms) {
		reflex_err_set_file(err, source, "out of memory for %zu lines", new_cap);
		return -ENOMEM;
	}
	t->ms = ms;
	*cap = new_cap;
	return 0;
}

int trace_parse(const char *source, const char *data, size_t len, struct trace *out,
		struct reflex_err *err)
{
	struct trace t = { 0 };
	const char *p = data, *end = data + len;
	size_t cap = 0, line = 0;
	int ret;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *stop = eol ? eol : end;
		uint32_t value;

		line++;
		if (stop > p && stop[-1] == '\r')
			stop--;
		ret = parse_line(source, line, p, stop, &value, err);
		if (ret)
			goto fail;
		if (t.count > 0 && value < t.ms[t.count - 1]) {
			reflex_err_set_line(err, source, (long)line, "%u ms comes before the previous line's %u ms", value,
				  t.ms[t.count - 1]);
			ret = -EINVAL;
			goto fail;
		}
		if (t.count == cap && (ret = grow(&t, &cap, source, err)))
			goto fail;
		t.ms[t.count++] = value;
		p = eol ? eol + 1 : end;
	}
	if (t.count == 0) {
		reflex_err_set_file(err, source, "no delivery opportunities (empty trace)");
		ret = -EINVAL;
		goto fail;
	}
	t.period_ms = t.ms[t.count - 1];
	if (t.period_ms == 0) {
		reflex_err_set_line(err, source, (long)line, "the last line is 0 ms: a trace must last over 0 ms to loop");
		ret = -EINVAL;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	free(t.ms);
	return ret;
}

/* The whole file, decompressed when it is gzip (gzread passes plain files through). */
static int read_all(const char *path, char **data, size_t *len, struct reflex_err *err)
{
	gzFile gz = gzopen(path, "rb");
	size_t cap = 1 << 20, used = 0;
	char *buf = NULL;
	int ret = 0;

	if (!gz) {
		ret = errno ? -errno : -ENOMEM;
		reflex_err_set_file(err, path, "cannot open: %s", strerror(-ret));
		return ret;
	}
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		reflex_err_set_file(err, path, "out of memory");
		goto out;
	}
	for (;;) {
		int n;

		if (used == cap) {
			char *bigger;

			if (cap >= TRACE_MAX_FILE_BYTES) {
				ret = -EFBIG;
				reflex_err_set_file(err, path, "larger than %llu bytes",
					       (unsigned long long)TRACE_MAX_FILE_BYTES);
				goto out;
			}
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				ret = -ENOMEM;
				reflex_err_set_file(err, path, "out of memory");
				goto out;
			}
			buf = bigger;
			cap *= 2;
		}
		n = gzread(gz, buf + used, (unsigned)(cap - used));
		if (n < 0) {
			int zerr;

			ret = -EIO;
			reflex_err_set_file(err, path, "read error: %s", gzerror(gz, &zerr));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
out:
	gzclose(gz);
	if (ret) {
		free(buf);
		return ret;
	}
	*data = buf;
	*len = used;
	return 0;
}

int trace_read_file(const char *path, struct trace *out, struct reflex_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret = read_all(path, &data, &len, err);

	if (ret)
		return ret;
	ret = trace_parse(path, data, len, out, err);
	free(data);
	return ret;
}

void trace_free(struct trace *t)
{
	free(t->ms);
	t->ms = NULL;
	t->count = 0;
	t->period_ms = 0;
}

/* First index whose value is >= ms. */
static size_t lower_bound(const struct trace *t, uint64_t ms)
{
	size_t lo = 0, hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->ms[mid] < ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void trace_seek(const struct trace *t, uint64_t at_ms, struct trace_cursor *c)
{
	uint64_t loops = at_ms / t->period_ms, rest = at_ms % t->period_ms;

	/* The previous loop's last lines fall exactly on a loop boundary. */
	if (rest == 0 && loops > 0) {
		c->base_ms = (loops - 1) * t->period_ms;
		c->index = lower_bound(t, t->period_ms);
		return;
	}
	c->base_ms = loops * t->period_ms;
	c->index = lower_bound(t, rest);
	if (c->index == t->count) {
		c->base_ms += t->period_ms;
		c->index = 0;
	}
}

void trace_advance(const struct trace *t, struct trace_cursor *c)
{
	if (++c->index == t->count) {
		c->index = 0;
		c->base_ms += t->period_ms;
	}
}

/* Opportunities with time < at_ms. */
static uint64_t count_before(const struct trace *t, uint64_t at_ms)
{
	uint64_t loops = at_ms / t->period_ms, rest = at_ms % t->period_ms;
	uint64_t n = loops * t->count + lower_bound(t, rest);

	/* The previous loop's lines at the period happen at at_ms itself: not before it. */
	if (rest == 0 && loops > 0)
		n -= t->count - lower_bound(t, t->period_ms);
	return n;
}

uint64_t trace_count(const struct trace *t, uint64_t from_ms, uint64_t to_ms)
{
	if (to_ms <= from_ms)
		return 0;
	return count_before(t, to_ms) - count_before(t, from_ms);
}
