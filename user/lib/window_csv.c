#include "lib/window_csv.h"

void window_csv_header(FILE *out)
{
	fputs(CSV_KEY_COLUMNS, out);
	for (int i = 0; i < FEATURE_COUNT; i++)
		fprintf(out, ",%s", feature_names[i]);
	for (int i = 0; i < CONTEXT_COUNT; i++)
		fprintf(out, ",%s", context_names[i]);
	fputc('\n', out);
}

void window_csv_row(FILE *out, const struct feature_window *w)
{
	fprintf(out, "%llu,%s,%s", (unsigned long long)w->ts_ns, w->scope == SCOPE_FLOW ? "flow" : "iface", w->flow);
	for (int i = 0; i < FEATURE_COUNT; i++)
		fprintf(out, ",%.10g", w->feature[i]);
	for (int i = 0; i < CONTEXT_COUNT; i++)
		fprintf(out, ",%.10g", w->context[i]);
	fputc('\n', out);
}
