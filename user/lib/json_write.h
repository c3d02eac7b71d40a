/* Writing JSON values: one escaping rule and one number rule for everything reflex
 * prints as JSON (reflexctl model inspect, paths, the bandit's view). */
#ifndef REFLEX_JSON_WRITE_H
#define REFLEX_JSON_WRITE_H

#include <stddef.h>
#include <stdio.h>

/* A JSON string of the first len bytes of s (stopping early at a NUL): quotes and
 * backslashes escaped, control characters as \n, \t or \u00XX. */
void json_write_string(FILE *out, const char *s, size_t len);
/* A number with 17 significant digits (round-trips a double); JSON has no NaN or
 * infinity, so those are null. */
void json_write_number(FILE *out, double v);

#endif
