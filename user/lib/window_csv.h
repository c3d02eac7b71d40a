/* The telemetry CSV (schema in README and feature_schema.h): header, then one row per
 * window per scope. The same file is the input of reflex-forge. */
#ifndef REFLEX_WINDOW_CSV_H
#define REFLEX_WINDOW_CSV_H

#include <stdio.h>

#include "lib/feature_schema.h"

void window_csv_header(FILE *out);
void window_csv_row(FILE *out, const struct feature_window *w);

#endif
