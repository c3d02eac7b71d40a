/* Text handed to an fgets-style reader line by line (inih's ini_parse_stream), so the
 * parsers that use it know the line each key is on. */
#ifndef REFLEX_LIB_TEXT_LINES_H
#define REFLEX_LIB_TEXT_LINES_H

#include <stdbool.h>
#include <stddef.h>

struct text_lines {
	const char *text;
	size_t len;
	size_t pos;
	int line; /* lines handed out so far: the one being parsed */
};

/* The next line with its '\n' into buf (size bytes with the NUL), or NULL at the end
 * or when the line does not fit (then *too_long is set and line is its number). */
char *text_lines_next(struct text_lines *t, char *buf, int size, bool *too_long);

/* The 1-based line of the first NUL byte in text, 0 if there is none; its byte offset
 * goes to *offset. */
int text_lines_nul(const char *text, size_t len, size_t *offset);

#endif
