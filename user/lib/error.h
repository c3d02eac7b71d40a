/*
 * The one error carrier of the userspace code: a message plus where it happened
 * (file, line, column, byte offset, field), each optional, and one formatter that
 * turns them into the single line users see on stderr:
 *   FILE:LINE:COL: FIELD: message      (a text file: CSV, config)
 *   FILE: byte N: FIELD: message       (a binary file or a string: .reflex, JSON)
 *   FIELD: message                     (a command-line option)
 * Lives in lib/ so that every layer can fill it without depending on the loader.
 *
 * reflex_err_set starts a new error (location unset); the reflex_err_at_* setters
 * add its location, in any order. Every setter renders msg through reflex_err_format,
 * so msg always holds the full line; read it, never write it. All take a NULL err.
 */
#ifndef REFLEX_LIB_ERROR_H
#define REFLEX_LIB_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct reflex_err {
	char msg[1024];   /* the rendered line (reflex_err_format of the fields below) */
	char what[512];   /* the message without its location */
	char file[256];   /* "" = not about a file */
	char field[128];  /* "" = not about one field; e.g. "column 'rtt_us'", "--iface" */
	long line;        /* 1-based; 0 = unset */
	long column;      /* 1-based; 0 = unset (only shown with a line) */
	long long offset; /* byte offset into the file or string, when has_offset */
	bool has_offset;
};

/* A new error: the message, with every location field unset. */
void reflex_err_set(struct reflex_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reflex_err_vset(struct reflex_err *err, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The same about a whole file: "FILE: message". */
void reflex_err_set_file(struct reflex_err *err, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same about one line of a text file: "FILE:LINE: message". */
void reflex_err_set_line(struct reflex_err *err, const char *file, long line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void reflex_err_at_file(struct reflex_err *err, const char *file);
void reflex_err_at_line(struct reflex_err *err, long line, long column);
void reflex_err_at_offset(struct reflex_err *err, long long offset);
void reflex_err_at_field(struct reflex_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the message with context ("copying the source model: ..."), keeping the location. */
void reflex_err_wrap(struct reflex_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copy src into err (NULL err or src: nothing). */
void reflex_err_copy(struct reflex_err *err, const struct reflex_err *src);

/* The one formatter (layout above). Returns what snprintf returns. */
int reflex_err_format(const struct reflex_err *err, char *buf, size_t size);

#endif
