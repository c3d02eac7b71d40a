#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/csv.h"
#include "lib/fileio.h"

/* Longest piece of a bad field quoted back in a message. */
#define CSV_QUOTE_MAX 40

static void set_error(struct reflex_err *err, const char *source, size_t line, size_t column, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void set_error(struct reflex_err *err, const char *source, size_t line, size_t column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	reflex_err_at_file(err, source);
	reflex_err_at_line(err, (long)line, (long)column);
}

/* Printable excerpt of a field for messages: control bytes become '?'. */
static void excerpt(char *buf, size_t size, const char *text)
{
	size_t n = strnlen(text, CSV_QUOTE_MAX);
	size_t i;

	if (n >= size)
		n = size - 1;
	for (i = 0; i < n; i++)
		buf[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	buf[i] = '\0';
	if (text[n] != '\0' && n >= 3)
		memcpy(buf + n - 3, "...", 3);
}

/* --- parsing -------------------------------------------------------------- */

struct parser {
	const char *source;
	const char *data;
	size_t len;
	size_t pos;
	size_t line;          /* current physical line */
	char *store;          /* unquoted fields, NUL-terminated, never ahead of pos */
	size_t w;
	char **fields;        /* every field of every record so far */
	size_t field_count;
	size_t field_cap;
	size_t *record_line;  /* line each record starts on */
	size_t record_count;
	size_t record_cap;
	struct reflex_err *err;
};

static int push_field(struct parser *p, char *field)
{
	if (p->field_count == p->field_cap) {
		size_t cap = p->field_cap ? p->field_cap * 2 : 256;
		char **grown = realloc(p->fields, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		p->fields = grown;
		p->field_cap = cap;
	}
	p->fields[p->field_count++] = field;
	return 0;
}

static int push_record(struct parser *p, size_t line)
{
	if (p->record_count == p->record_cap) {
		size_t cap = p->record_cap ? p->record_cap * 2 : 64;
		size_t *grown = realloc(p->record_line, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		p->record_line = grown;
		p->record_cap = cap;
	}
	p->record_line[p->record_count++] = line;
	return 0;
}

static int parse_quoted(struct parser *p, size_t record_line, size_t column)
{
	size_t open_line = p->line;

	p->pos++; /* opening quote */
	for (;;) {
		char c;

		if (p->pos >= p->len) {
			set_error(p->err, p->source, record_line, column, "unterminated quoted field (opened on line %zu)",
				  open_line);
			return -EINVAL;
		}
		c = p->data[p->pos];
		if (c == '"') {
			if (p->pos + 1 < p->len && p->data[p->pos + 1] == '"') {
				p->store[p->w++] = '"';
				p->pos += 2;
				continue;
			}
			p->pos++;
			break;
		}
		if (c == '\0') {
			set_error(p->err, p->source, p->line, column, "NUL byte in field");
			return -EINVAL;
		}
		if (c == '\n')
			p->line++;
		p->store[p->w++] = c;
		p->pos++;
	}
	if (p->pos < p->len && p->data[p->pos] != ',' && p->data[p->pos] != '\n' && p->data[p->pos] != '\r') {
		set_error(p->err, p->source, p->line, column, "unexpected character after a closing quote");
		return -EINVAL;
	}
	return 0;
}

static int parse_unquoted(struct parser *p, size_t column)
{
	while (p->pos < p->len) {
		char c = p->data[p->pos];

		if (c == ',' || c == '\n' || c == '\r')
			break;
		if (c == '"') {
			set_error(p->err, p->source, p->line, column, "quote inside an unquoted field");
			return -EINVAL;
		}
		if (c == '\0') {
			set_error(p->err, p->source, p->line, column, "NUL byte in field");
			return -EINVAL;
		}
		p->store[p->w++] = c;
		p->pos++;
	}
	return 0;
}

/* One record; fields are appended to p->fields. Consumes its line ending. */
static int parse_record(struct parser *p, size_t *nfields)
{
	size_t record_line = p->line;
	size_t column = 0;
	char sep;
	int ret;

	for (;;) {
		char *field = p->store + p->w;

		column++;
		if (column > CSV_MAX_COLUMNS) {
			set_error(p->err, p->source, record_line, column, "more than %d fields in a record",
				  CSV_MAX_COLUMNS);
			return -EINVAL;
		}
		if (p->pos < p->len && p->data[p->pos] == '"')
			ret = parse_quoted(p, record_line, column);
		else
			ret = parse_unquoted(p, column);
		if (ret)
			return ret;
		/* Parsing in place, the field's NUL may land on its own separator: read it first. */
		sep = p->pos < p->len ? p->data[p->pos] : '\0';
		p->store[p->w++] = '\0';
		ret = push_field(p, field);
		if (ret)
			return ret;
		if (p->pos >= p->len)
			break;
		if (sep == ',') {
			p->pos++;
			continue;
		}
		if (sep == '\r') {
			if (p->pos + 1 >= p->len || p->data[p->pos + 1] != '\n') {
				set_error(p->err, p->source, p->line, column, "carriage return not followed by a line feed");
				return -EINVAL;
			}
			p->pos++;
		}
		p->pos++; /* '\n' */
		p->line++;
		break;
	}
	*nfields = column;
	return push_record(p, record_line);
}

static int check_header(struct parser *p, size_t ncols)
{
	char name[CSV_QUOTE_MAX + 1];

	for (size_t i = 0; i < ncols; i++) {
		if (!p->fields[i][0]) {
			set_error(p->err, p->source, 1, i + 1, "empty column name in the header");
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(p->fields[i], p->fields[j])) {
				excerpt(name, sizeof(name), p->fields[i]);
				set_error(p->err, p->source, 1, i + 1, "column '%s' appears twice in the header (also column %zu)",
					  name, j + 1);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int check_width(struct parser *p, size_t nfields, size_t ncols, size_t line)
{
	char name[CSV_QUOTE_MAX + 1];

	if (nfields == ncols)
		return 0;
	if (nfields == 1 && !p->fields[p->field_count - 1][0]) {
		set_error(p->err, p->source, line, 1, "blank line (expected %zu fields)", ncols);
		return -EINVAL;
	}
	if (nfields < ncols) {
		excerpt(name, sizeof(name), p->fields[nfields]);
		set_error(p->err, p->source, line, nfields + 1, "missing (row has %zu fields, header has %zu)", nfields,
			  ncols);
		reflex_err_at_field(p->err, "column '%s'", name);
	} else {
		set_error(p->err, p->source, line, ncols + 1, "extra field (row has %zu fields, header has %zu)", nfields,
			  ncols);
	}
	return -EINVAL;
}

static void parser_release(struct parser *p)
{
	free(p->store);
	free(p->fields);
	free(p->record_line);
}

/* Sizes the field and line tables once from the separators (an upper bound), so they
 * never grow by doubling: with the text parsed in place, a table of short numeric
 * fields takes about twice its text. */
static int tables_size(struct parser *p)
{
	size_t seps = 0, lines = 0;

	for (const char *c = p->data; c < p->data + p->len; c++) {
		seps += *c == ',' || *c == '\n';
		lines += *c == '\n';
	}
	p->field_cap = seps + 1;
	p->record_cap = lines + 1;
	p->fields = malloc(p->field_cap * sizeof(*p->fields));
	p->record_line = malloc(p->record_cap * sizeof(*p->record_line));
	return p->fields && p->record_line ? 0 : -ENOMEM;
}

/* store: where unquoted fields go (data itself to parse in place), owned from here. */
static int parse_into(const char *source, const char *data, size_t len, char *store, struct csv_table **out,
		      struct reflex_err *err)
{
	struct parser p = { .source = source, .data = data, .len = len, .line = 1, .err = err, .store = store };
	struct csv_table *t = NULL;
	size_t ncols = 0, nfields;
	int ret;

	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
		p.pos = 3;
	if (len > CSV_MAX_FILE_SIZE) {
		set_error(err, source, 0, 0, "larger than %llu bytes", (unsigned long long)CSV_MAX_FILE_SIZE);
		ret = -EFBIG;
		goto fail_quiet;
	}
	if (p.pos >= len) {
		set_error(err, source, 1, 1, "empty file (expected a header row)");
		ret = -EINVAL;
		goto fail_quiet;
	}
	if (!p.store || tables_size(&p)) {
		ret = -ENOMEM;
		goto fail;
	}
	while (p.pos < len) {
		size_t line = p.line;

		ret = parse_record(&p, &nfields);
		if (ret)
			goto fail;
		if (p.record_count == 1) {
			ncols = nfields;
			ret = check_header(&p, ncols);
		} else {
			ret = check_width(&p, nfields, ncols, line);
		}
		if (ret)
			goto fail;
	}
	if (p.record_count < 2) {
		set_error(err, source, p.line, 1, "no data rows after the header");
		ret = -EINVAL;
		goto fail;
	}

	t = calloc(1, sizeof(*t));
	if (!t || !(t->source = strdup(source))) {
		ret = -ENOMEM;
		goto fail;
	}
	t->col_count = ncols;
	t->row_count = p.record_count - 1;
	t->storage = p.store;
	t->header = p.fields;
	t->cells = p.fields + ncols;
	t->row_line = p.record_line;
	/* Data rows start at record 1: shift the line table so row_line[row] fits. */
	memmove(t->row_line, t->row_line + 1, t->row_count * sizeof(*t->row_line));
	*out = t;
	return 0;

fail:
	if (ret == -ENOMEM)
		set_error(err, source, 0, 0, "out of memory");
fail_quiet:
	if (t)
		free(t->source);
	free(t);
	parser_release(&p);
	return ret;
}

int csv_parse(const char *source, const char *data, size_t len, struct csv_table **out,
	      struct reflex_err *err)
{
	return parse_into(source, data, len, malloc(len + 1), out, err);
}

int csv_parse_owned(const char *source, char *data, size_t len, struct csv_table **out, struct reflex_err *err)
{
	return parse_into(source, data, len, data, out, err);
}

static int read_all(int fd, char **data, size_t *len)
{
	size_t cap = 1 << 16, used = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (used == cap) {
			char *grown;

			if (used > CSV_MAX_FILE_SIZE) {
				free(buf);
				return -EFBIG;
			}
			grown = realloc(buf, cap * 2);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			free(buf);
			return (int)n;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	*data = buf;
	*len = used;
	return 0;
}

int csv_read_bytes(const char *path, char **data, size_t *len, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	int ret;

	if (strcmp(path, "-")) {
		ret = fileio_read_bounded(path, CSV_MAX_FILE_SIZE, data, len, &ferr);
		if (ret)
			reflex_err_copy(err, &ferr);
		return ret;
	}
	ret = read_all(STDIN_FILENO, data, len);
	if (ret == -EFBIG)
		set_error(err, "<stdin>", 0, 0, "larger than %llu bytes", (unsigned long long)CSV_MAX_FILE_SIZE);
	else if (ret)
		set_error(err, "<stdin>", 0, 0, "cannot read: %s", strerror(-ret));
	return ret;
}

int csv_read_file(const char *path, struct csv_table **out, struct reflex_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret;

	ret = csv_read_bytes(path, &data, &len, err);
	if (ret)
		return ret;
	return csv_parse_owned(strcmp(path, "-") ? path : "<stdin>", data, len, out, err);
}

void csv_free(struct csv_table *t)
{
	if (!t)
		return;
	free(t->source);
	free(t->header); /* the field array: header first, then the cells */
	free(t->row_line);
	free(t->storage);
	free(t);
}

/* --- lookups and numbers -------------------------------------------------- */

int csv_column(const struct csv_table *t, const char *name)
{
	for (size_t i = 0; i < t->col_count; i++)
		if (!strcmp(t->header[i], name))
			return (int)i;
	return -1;
}

int csv_require_column(const struct csv_table *t, const char *name, size_t *col,
		       struct reflex_err *err)
{
	int idx = csv_column(t, name);

	if (idx < 0) {
		set_error(err, t->source, 1, 0, "missing from the header");
		reflex_err_at_field(err, "column '%s'", name);
		return -ENOENT;
	}
	*col = (size_t)idx;
	return 0;
}

int csv_cell_error(const struct csv_table *t, size_t row, size_t col, struct reflex_err *err,
		   const char *fmt, ...)
{
	char name[CSV_QUOTE_MAX + 1];
	char what[384];
	size_t line = t->row_line[row];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	excerpt(name, sizeof(name), t->header[col]);
	set_error(err, t->source, line, col + 1, "%s", what);
	reflex_err_at_field(err, "column '%s'", name);
	return -EINVAL;
}

/* [+-]digits[.digits][(e|E)[+-]digits], or [+-].digits[...]: what strtod may see. */
static bool plain_decimal(const char *s)
{
	bool digits = false;

	if (*s == '+' || *s == '-')
		s++;
	while (*s >= '0' && *s <= '9') {
		s++;
		digits = true;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

int csv_get_double(const struct csv_table *t, size_t row, size_t col, double *out,
		   struct reflex_err *err)
{
	const char *text = csv_cell(t, row, col);
	char shown[CSV_QUOTE_MAX + 1];
	double v;

	if (!text[0])
		return csv_cell_error(t, row, col, err, "empty field (expected a number)");
	excerpt(shown, sizeof(shown), text);
	if (!plain_decimal(text)) {
		if (!strcasecmp(text, "nan") || !strcasecmp(text, "-nan") || !strcasecmp(text, "+nan"))
			return csv_cell_error(t, row, col, err, "'%s': NaN is not allowed", shown);
		if (strcasestr(text, "inf"))
			return csv_cell_error(t, row, col, err, "'%s': infinity is not allowed", shown);
		return csv_cell_error(t, row, col, err, "'%s' is not a number", shown);
	}
	v = strtod(text, NULL);
	if (!isfinite(v))
		return csv_cell_error(t, row, col, err, "'%s' is out of range for a double", shown);
	*out = v;
	return 0;
}

int csv_get_u64(const struct csv_table *t, size_t row, size_t col, uint64_t *out,
		struct reflex_err *err)
{
	const char *text = csv_cell(t, row, col);
	char shown[CSV_QUOTE_MAX + 1];
	unsigned long long v;
	char *end;

	if (!text[0])
		return csv_cell_error(t, row, col, err, "empty field (expected an unsigned integer)");
	excerpt(shown, sizeof(shown), text);
	for (const char *s = text; *s; s++)
		if (*s < '0' || *s > '9')
			return csv_cell_error(t, row, col, err, "'%s' is not an unsigned integer", shown);
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno == ERANGE)
		return csv_cell_error(t, row, col, err, "'%s' is larger than %llu", shown,
				      (unsigned long long)UINT64_MAX);
	*out = v;
	return 0;
}

void csv_format_double(char *buf, size_t size, double v)
{
	snprintf(buf, size, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, size, "%.17g", v);
}

/* --- writing -------------------------------------------------------------- */

struct csv_writer {
	FILE *f;         /* stdout, or out.f */
	struct fileio_atomic out; /* unused when writing to stdout */
	char *path;      /* final name */
	size_t col_count;
	int io_error;    /* first errno of a failed write */
};

static mode_t current_umask(void)
{
	mode_t mask = umask(0);

	umask(mask);
	return mask;
}

static bool needs_quotes(const char *s)
{
	return s[0] == '\0' || strpbrk(s, ",\"\r\n") != NULL;
}

static void write_field(struct csv_writer *w, const char *s)
{
	if (!needs_quotes(s)) {
		fputs(s, w->f);
		return;
	}
	fputc('"', w->f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', w->f);
		fputc(*s, w->f);
	}
	fputc('"', w->f);
}

static int write_text_row(struct csv_writer *w, const char *const *fields)
{
	for (size_t i = 0; i < w->col_count; i++) {
		if (i)
			fputc(',', w->f);
		write_field(w, fields[i]);
	}
	if (fputc('\n', w->f) == EOF && !w->io_error)
		w->io_error = errno ? errno : EIO;
	return w->io_error ? -w->io_error : 0;
}

/* Replaced atomically, with the umask's permissions as a plain create would have. */
static int open_temp(struct csv_writer *w, const char *path, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	int ret = fileio_atomic_open(&w->out, path, 0666 & ~current_umask(), &ferr);

	if (ret)
		reflex_err_copy(err, &ferr);
	else
		w->f = w->out.f;
	return ret;
}

int csv_writer_open(const char *path, const char *const *names, size_t col_count,
		    struct csv_writer **out, struct reflex_err *err)
{
	struct csv_writer *w = calloc(1, sizeof(*w));
	int ret;

	if (!w || !(w->path = strdup(path))) {
		ret = -ENOMEM;
		set_error(err, path, 0, 0, "out of memory");
		goto fail;
	}
	w->col_count = col_count;
	if (!strcmp(path, "-")) {
		w->f = stdout;
	} else {
		ret = open_temp(w, path, err);
		if (ret)
			goto fail;
	}
	ret = write_text_row(w, names);
	if (ret) {
		set_error(err, path, 0, 0, "write failed: %s", strerror(-ret));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	csv_writer_abort(w);
	return ret;
}

int csv_writer_row(struct csv_writer *w, const double *values)
{
	char text[32];

	for (size_t i = 0; i < w->col_count; i++) {
		if (i)
			fputc(',', w->f);
		csv_format_double(text, sizeof(text), values[i]);
		fputs(text, w->f);
	}
	if (fputc('\n', w->f) == EOF && !w->io_error)
		w->io_error = errno ? errno : EIO;
	return w->io_error ? -w->io_error : 0;
}

int csv_writer_row_text(struct csv_writer *w, const char *const *fields)
{
	return write_text_row(w, fields);
}

/* Commits w->out unless an earlier write failed (ret); on failure nothing is left. */
static int commit_temp(struct csv_writer *w, int ret, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };

	if (ret) {
		fileio_atomic_abort(&w->out);
		set_error(err, w->path, 0, 0, "write failed: %s", strerror(-ret));
		return ret;
	}
	ret = fileio_atomic_commit(&w->out, &ferr);
	if (ret)
		reflex_err_copy(err, &ferr);
	return ret;
}

int csv_writer_commit(struct csv_writer *w, struct reflex_err *err)
{
	int ret = w->io_error ? -w->io_error : 0;

	if (w->f == stdout) {
		if (fflush(w->f) && !ret)
			ret = -errno;
		if (ret)
			set_error(err, "<stdout>", 0, 0, "write failed: %s", strerror(-ret));
	} else {
		ret = commit_temp(w, ret, err);
	}
	w->f = NULL;
	csv_writer_abort(w);
	return ret;
}

int csv_write_atomic(const char *path, const void *data, size_t len, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	int ret;

	if (!strcmp(path, "-")) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout)) {
			set_error(err, "<stdout>", 0, 0, "write failed");
			return -EIO;
		}
		return 0;
	}
	ret = fileio_write_atomic(path, data, len, 0666 & ~current_umask(), &ferr);
	if (ret)
		reflex_err_copy(err, &ferr);
	return ret;
}

void csv_writer_abort(struct csv_writer *w)
{
	if (!w)
		return;
	if (w->f != stdout)
		fileio_atomic_abort(&w->out);
	free(w->path);
	free(w);
}
