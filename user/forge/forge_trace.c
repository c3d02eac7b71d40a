/* The forge's `windows` step: the telemetry CSV reflexd wrote, as per-flow,
 * time-ordered feature windows of one scope with their per-trace ranges. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "forge/forge.h"

/* Windows further apart than 1.5 steps have at least one missing between them. */
#define GAP_NS (WINDOW_STEP_NS + WINDOW_STEP_NS / 2)

struct row_ref {
	const char *flow;
	uint64_t ts_ns;
	size_t row;
};

struct columns {
	size_t ts, scope, flow;
	size_t feature[FEATURE_COUNT];
	size_t context[CONTEXT_COUNT];
};

static int require_columns(const struct csv_table *t, struct columns *c, struct reflex_err *err)
{
	int ret = csv_require_column(t, "ts_ns", &c->ts, err);

	if (!ret)
		ret = csv_require_column(t, "scope", &c->scope, err);
	if (!ret)
		ret = csv_require_column(t, "flow", &c->flow, err);
	for (int i = 0; !ret && i < FEATURE_COUNT; i++)
		ret = csv_require_column(t, feature_names[i], &c->feature[i], err);
	for (int i = 0; !ret && i < CONTEXT_COUNT; i++)
		ret = csv_require_column(t, context_names[i], &c->context[i], err);
	return ret ? -EINVAL : 0;
}

static int parse_scope(const struct csv_table *t, size_t row, size_t col, enum window_scope *scope,
		       struct reflex_err *err)
{
	const char *s = csv_cell(t, row, col);

	if (!strcmp(s, "iface"))
		*scope = SCOPE_IFACE;
	else if (!strcmp(s, "flow"))
		*scope = SCOPE_FLOW;
	else
		return csv_cell_error(t, row, col, err, "'%.40s' is not a scope (iface or flow)", s);
	return 0;
}

static int get_value(const struct csv_table *t, size_t row, size_t col, double *v, struct reflex_err *err)
{
	int ret = csv_get_double(t, row, col, v, err);

	if (ret)
		return ret;
	/* Every feature and context column is a count, a rate, a size or a time. */
	if (*v < 0)
		return csv_cell_error(t, row, col, err, "negative value %s", csv_cell(t, row, col));
	return 0;
}

static int parse_window(const struct csv_table *t, const struct columns *c, size_t row, struct forge_window *w,
			struct reflex_err *err)
{
	int ret = csv_get_u64(t, row, c->ts, &w->ts_ns, err);

	for (int i = 0; !ret && i < FEATURE_COUNT; i++)
		ret = get_value(t, row, c->feature[i], &w->feature[i], err);
	for (int i = 0; !ret && i < CONTEXT_COUNT; i++)
		ret = get_value(t, row, c->context[i], &w->context[i], err);
	if (ret)
		return ret;
	w->line = t->row_line[row];
	return 0;
}

static int by_flow_then_row(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;
	int c = strcmp(x->flow, y->flow);

	return c ? c : (x->row > y->row) - (x->row < y->row);
}

static int by_flow_then_time(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;
	int c = strcmp(x->flow, y->flow);

	if (c)
		return c;
	if (x->ts_ns != y->ts_ns)
		return x->ts_ns < y->ts_ns ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

/* Rows older than an earlier row of their flow, in file order. */
static size_t count_out_of_order(struct row_ref *refs, size_t n)
{
	size_t count = 0;
	uint64_t newest = 0;

	qsort(refs, n, sizeof(*refs), by_flow_then_row);
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(refs[i].flow, refs[i - 1].flow) && refs[i].ts_ns < newest)
			count++;
		if (!i || strcmp(refs[i].flow, refs[i - 1].flow) || refs[i].ts_ns > newest)
			newest = refs[i].ts_ns;
	}
	return count;
}

static int collect_rows(const struct csv_table *t, const struct columns *c, enum window_scope scope,
			struct row_ref **out, size_t *count, struct reflex_err *err)
{
	struct row_ref *refs = calloc(t->row_count, sizeof(*refs));
	size_t n = 0;
	int ret;

	if (!refs) {
		reflex_err_set_file(err, t->source, "out of memory");
		return -ENOMEM;
	}
	for (size_t row = 0; row < t->row_count; row++) {
		const char *flow = csv_cell(t, row, c->flow);
		struct forge_window probe;
		enum window_scope s;

		ret = parse_scope(t, row, c->scope, &s, err);
		if (!ret)
			ret = parse_window(t, c, row, &probe, err); /* rows of the other scope must be sound too */
		if (ret)
			goto fail;
		if (s != scope)
			continue;
		if (!flow[0] || strlen(flow) >= sizeof(((struct feature_window *)0)->flow)) {
			ret = csv_cell_error(t, row, c->flow, err, "flow name must be 1..%zu bytes",
					     sizeof(((struct feature_window *)0)->flow) - 1);
			goto fail;
		}
		refs[n].ts_ns = probe.ts_ns;
		refs[n].flow = flow;
		refs[n].row = row;
		n++;
	}
	if (!n) {
		reflex_err_set(err, "no row has scope '%s' (%zu rows of the other scope)",
			       scope == SCOPE_FLOW ? "flow" : "iface", t->row_count);
		reflex_err_at_file(err, t->source);
		reflex_err_at_line(err, 1, (long)c->scope + 1);
		reflex_err_at_field(err, "column 'scope'");
		ret = -EINVAL;
		goto fail;
	}
	*out = refs;
	*count = n;
	return 0;
fail:
	free(refs);
	return ret;
}

static int add_flow(struct forge_trace *tr, const char *name)
{
	char **grown = realloc(tr->flows, (tr->flow_count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	tr->flows = grown;
	tr->flows[tr->flow_count] = strdup(name);
	if (!tr->flows[tr->flow_count])
		return -ENOMEM;
	tr->flow_count++;
	return 0;
}

/* Fills windows in (flow, time) order, finding flows, duplicates and gaps. */
static int build_windows(struct forge_trace *tr, const struct csv_table *t, const struct columns *c,
			 struct row_ref *refs, size_t n, struct reflex_err *err)
{
	int ret;

	qsort(refs, n, sizeof(*refs), by_flow_then_time);
	tr->windows = calloc(n, sizeof(*tr->windows));
	if (!tr->windows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct forge_window *w = &tr->windows[i];
		bool new_flow = !i || strcmp(refs[i].flow, refs[i - 1].flow);

		ret = parse_window(t, c, refs[i].row, w, err);
		if (ret)
			return ret;
		if (new_flow) {
			ret = add_flow(tr, refs[i].flow);
			if (ret)
				return ret;
			tr->segments++;
		} else if (refs[i].ts_ns == refs[i - 1].ts_ns) {
			size_t later = refs[i].row > refs[i - 1].row ? refs[i].row : refs[i - 1].row;
			size_t earlier = refs[i].row > refs[i - 1].row ? refs[i - 1].row : refs[i].row;

			return csv_cell_error(t, later, c->ts, err, "flow '%.96s' has a second window ending at %llu (also line %zu)",
					      refs[i].flow, (unsigned long long)refs[i].ts_ns, t->row_line[earlier]);
		} else if (refs[i].ts_ns - refs[i - 1].ts_ns > GAP_NS) {
			uint64_t span = refs[i].ts_ns - refs[i - 1].ts_ns;

			tr->gaps++;
			tr->missing_steps += (size_t)((span + WINDOW_STEP_NS / 2) / WINDOW_STEP_NS) - 1;
			tr->segments++;
		}
		w->flow = (uint32_t)(tr->flow_count - 1);
		w->segment = (uint32_t)(tr->segments - 1);
	}
	tr->count = n;
	return 0;
}

static void feature_ranges(struct forge_trace *tr)
{
	for (int f = 0; f < FEATURE_COUNT; f++) {
		tr->min[f] = tr->windows[0].feature[f];
		tr->max[f] = tr->windows[0].feature[f];
		for (size_t i = 1; i < tr->count; i++) {
			double v = tr->windows[i].feature[f];

			if (v < tr->min[f])
				tr->min[f] = v;
			if (v > tr->max[f])
				tr->max[f] = v;
		}
	}
}

int forge_trace_load(const char *path, enum window_scope scope, struct forge_trace *tr, struct reflex_err *err)
{
	struct csv_table *t = NULL;
	struct row_ref *refs = NULL;
	struct columns c;
	size_t n = 0;
	int ret;

	memset(tr, 0, sizeof(*tr));
	tr->scope = scope;
	ret = forge_read_csv(path, &t, tr->sha1, err);
	if (ret)
		goto fail;
	ret = require_columns(t, &c, err);
	if (ret)
		goto fail;
	ret = collect_rows(t, &c, scope, &refs, &n, err);
	if (ret)
		goto fail;
	tr->out_of_order = count_out_of_order(refs, n);
	ret = build_windows(tr, t, &c, refs, n, err);
	if (ret == -ENOMEM)
		reflex_err_set_file(err, path, "out of memory");
	if (ret)
		goto fail;
	feature_ranges(tr);
	memcpy(tr->context_col, c.context, sizeof(tr->context_col));
	tr->rows_total = t->row_count;
	tr->path = strdup(path);
	if (!tr->path) {
		reflex_err_set_file(err, path, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	free(refs);
	csv_free(t);
	return 0;
fail:
	free(refs);
	csv_free(t);
	forge_trace_free(tr);
	return ret;
}

void forge_trace_free(struct forge_trace *tr)
{
	for (size_t i = 0; i < tr->flow_count; i++)
		free(tr->flows[i]);
	free(tr->flows);
	free(tr->windows);
	free(tr->path);
	memset(tr, 0, sizeof(*tr));
}

double forge_trace_normalized(const struct forge_trace *tr, const struct forge_window *w, int feature)
{
	return feature_normalize(w->feature[feature], tr->min[feature], tr->max[feature]);
}

void forge_window_span(uint64_t end_ns, uint64_t *start_ns, uint64_t *stop_ns)
{
	uint64_t end_step = end_ns / WINDOW_STEP_NS;
	uint64_t steps = WINDOW_LEN_NS / WINDOW_STEP_NS;

	*start_ns = (end_step > steps ? end_step - steps : 0) * WINDOW_STEP_NS;
	*stop_ns = end_step * WINDOW_STEP_NS;
}

int forge_windows_write(const struct forge_trace *tr, const char *path, struct reflex_err *err)
{
	enum { KEYS = 4, COLS = KEYS + FEATURE_COUNT + CONTEXT_COUNT };
	const char *names[COLS] = { "ts_ns", "scope", "flow", "segment" };
	char text[COLS][32];
	const char *fields[COLS];
	struct csv_writer *w = NULL;
	int ret;

	for (int i = 0; i < FEATURE_COUNT; i++)
		names[KEYS + i] = feature_names[i];
	for (int i = 0; i < CONTEXT_COUNT; i++)
		names[KEYS + FEATURE_COUNT + i] = context_names[i];
	ret = csv_writer_open(path, names, COLS, &w, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < tr->count; i++) {
		const struct forge_window *win = &tr->windows[i];

		snprintf(text[0], sizeof(text[0]), "%llu", (unsigned long long)win->ts_ns);
		fields[0] = text[0];
		fields[1] = tr->scope == SCOPE_FLOW ? "flow" : "iface";
		fields[2] = tr->flows[win->flow];
		snprintf(text[3], sizeof(text[3]), "%u", win->segment);
		fields[3] = text[3];
		for (int f = 0; f < FEATURE_COUNT; f++) {
			csv_format_double(text[KEYS + f], sizeof(text[0]), forge_trace_normalized(tr, win, f));
			fields[KEYS + f] = text[KEYS + f];
		}
		for (int k = 0; k < CONTEXT_COUNT; k++) {
			csv_format_double(text[KEYS + FEATURE_COUNT + k], sizeof(text[0]), win->context[k]);
			fields[KEYS + FEATURE_COUNT + k] = text[KEYS + FEATURE_COUNT + k];
		}
		ret = csv_writer_row_text(w, fields);
		if (ret) {
			reflex_err_set_file(err, path, "write failed: %s", strerror(-ret));
			csv_writer_abort(w);
			return ret;
		}
	}
	return csv_writer_commit(w, err);
}
