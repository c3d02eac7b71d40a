/*
 * A strict CSV reader and a small atomic CSV writer, shared by reflex-forge,
 * `reflexctl model eval --csv` and anything else that reads a table with a header.
 *
 * Reader rules (RFC 4180 plus strictness):
 * - The first record is the header: unique, non-empty column names. Columns are
 *   looked up by name, never by position.
 * - Fields are separated by ',', records by LF or CRLF; the last record may lack
 *   its line ending. A field may be double-quoted ("" is a quote inside it, and a
 *   quoted field may span lines); a leading UTF-8 BOM is skipped.
 * - Every record has exactly as many fields as the header (a blank line is a
 *   record of one empty field, so it is refused too). NUL bytes are refused.
 * - An empty file, or a header without data rows, is an error.
 * - Numbers (csv_get_double) are plain decimals: [+-]digits[.digits][e[+-]digits]
 *   with no surrounding space; NaN, infinities, hex floats and values that
 *   overflow a double are refused.
 * Every error names the source, the line (1-based; the header is line 1; a quoted
 * field spanning lines is reported at the line its record starts on) and the column
 * by number and, once the header is known, by name (the field "column 'NAME'" of a
 * struct reflex_err, so msg reads "FILE:LINE:COL: column 'NAME': ...").
 */
#ifndef REFLEX_CSV_H
#define REFLEX_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define CSV_MAX_COLUMNS 4096
#define CSV_MAX_FILE_SIZE (1ULL << 30)

struct csv_table {
	char *source;      /* file name used in messages */
	size_t col_count;
	size_t row_count;  /* data rows, header excluded */
	char **header;     /* col_count names */
	char **cells;      /* row_count * col_count NUL-terminated fields, row-major */
	size_t *row_line;  /* line on which each data row starts */
	char *storage;     /* backing store of header and cells */
};

/* Parse len bytes; source names the data in messages. 0 and *out, or -EINVAL /
 * -ENOMEM / -EFBIG with err filled. */
int csv_parse(const char *source, const char *data, size_t len, struct csv_table **out,
	      struct reflex_err *err);
/* The same on a malloc'd buffer of at least len + 1 bytes, parsed in place (no copy:
 * a table takes about twice its text); the table owns data from here, and on failure
 * it is freed. */
int csv_parse_owned(const char *source, char *data, size_t len, struct csv_table **out, struct reflex_err *err);
/* Read and parse a whole file (path "-" is stdin). -errno of the I/O as well. */
int csv_read_file(const char *path, struct csv_table **out, struct reflex_err *err);
/* The bytes csv_read_file would parse (malloc'd in *data), for a caller that also
 * hashes or keeps them. */
int csv_read_bytes(const char *path, char **data, size_t *len, struct reflex_err *err);
void csv_free(struct csv_table *t);

/* Column index of name, or -1. */
int csv_column(const struct csv_table *t, const char *name);
/* Like csv_column, but a missing column is an error naming it: 0 or -ENOENT. */
int csv_require_column(const struct csv_table *t, const char *name, size_t *col,
		       struct reflex_err *err);

static inline const char *csv_cell(const struct csv_table *t, size_t row, size_t col)
{
	return t->cells[row * t->col_count + col];
}

/* The field as a finite double (rules above): 0 or -EINVAL with err naming
 * source, line, column number and name, and the offending text. */
int csv_get_double(const struct csv_table *t, size_t row, size_t col, double *out,
		   struct reflex_err *err);
/* A non-negative integer without sign, fraction or exponent, <= UINT64_MAX. */
int csv_get_u64(const struct csv_table *t, size_t row, size_t col, uint64_t *out,
		struct reflex_err *err);
/* Fill err with a message about one cell ("FILE:LINE:COL: column 'NAME': <fmt>"),
 * for checks a caller makes on a parsed value; returns -EINVAL. */
int csv_cell_error(const struct csv_table *t, size_t row, size_t col, struct reflex_err *err,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Shortest decimal text that parses back to exactly v ("%.15g", else "%.17g"). */
void csv_format_double(char *buf, size_t size, double v);

/*
 * Writer: the header and rows go to PATH.tmp.XXXXXX in path's directory, and
 * csv_writer_commit() fsyncs and renames it over path, so a reader never sees a
 * half-written file and a failed run leaves nothing behind. Path "-" writes to
 * stdout directly. Fields that need it are quoted.
 */
struct csv_writer;

int csv_writer_open(const char *path, const char *const *names, size_t col_count,
		    struct csv_writer **out, struct reflex_err *err);
/* One row of col_count numbers. */
int csv_writer_row(struct csv_writer *w, const double *values);
/* One row of col_count text fields (numbers formatted by the caller). */
int csv_writer_row_text(struct csv_writer *w, const char *const *fields);
/* Flush, fsync, rename; frees w on success and failure. */
int csv_writer_commit(struct csv_writer *w, struct reflex_err *err);
/* Discard the temporary file; frees w. NULL is fine. */
void csv_writer_abort(struct csv_writer *w);

/* Write len bytes to path the same atomic way ("-": stdout). */
int csv_write_atomic(const char *path, const void *data, size_t len, struct reflex_err *err);

#endif /* REFLEX_CSV_H */
