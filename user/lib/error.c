#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/error.h"

static void render(struct reflex_err *err)
{
	reflex_err_format(err, err->msg, sizeof(err->msg));
}

void reflex_err_vset(struct reflex_err *err, const char *fmt, va_list ap)
{
	if (!err)
		return;
	memset(err, 0, sizeof(*err));
	vsnprintf(err->what, sizeof(err->what), fmt, ap);
	render(err);
}

void reflex_err_set(struct reflex_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
}

void reflex_err_set_file(struct reflex_err *err, const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	reflex_err_at_file(err, file);
}

void reflex_err_set_line(struct reflex_err *err, const char *file, long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reflex_err_vset(err, fmt, ap);
	va_end(ap);
	reflex_err_at_file(err, file);
	reflex_err_at_line(err, line, 0);
}

void reflex_err_at_file(struct reflex_err *err, const char *file)
{
	if (!err)
		return;
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	render(err);
}

void reflex_err_at_line(struct reflex_err *err, long line, long column)
{
	if (!err)
		return;
	err->line = line > 0 ? line : 0;
	err->column = column > 0 ? column : 0;
	render(err);
}

void reflex_err_at_offset(struct reflex_err *err, long long offset)
{
	if (!err)
		return;
	err->offset = offset;
	err->has_offset = offset >= 0;
	render(err);
}

void reflex_err_at_field(struct reflex_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->field, sizeof(err->field), fmt, ap);
	va_end(ap);
	render(err);
}

void reflex_err_wrap(struct reflex_err *err, const char *fmt, ...)
{
	char prefix[sizeof(err->what)], what[sizeof(err->what)];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(what, sizeof(what), "%s: %s", prefix, err->what);
	memcpy(err->what, what, sizeof(what));
	render(err);
}

void reflex_err_copy(struct reflex_err *err, const struct reflex_err *src)
{
	if (err && src && err != src)
		memcpy(err, src, sizeof(*err));
}

int reflex_err_format(const struct reflex_err *err, char *buf, size_t size)
{
	char where[sizeof(err->file) + 96] = "";
	char field[sizeof(err->field) + 2] = "";
	size_t n = 0;

	if (err->file[0])
		n += snprintf(where, sizeof(where), "%s", err->file);
	if (err->line > 0)
		n += snprintf(where + n, sizeof(where) - n, n ? ":%ld" : "line %ld", err->line);
	if (err->line > 0 && err->column > 0)
		n += snprintf(where + n, sizeof(where) - n, ":%ld", err->column);
	if (err->has_offset)
		n += snprintf(where + n, sizeof(where) - n, n ? ": byte %lld" : "byte %lld", err->offset);
	if (n)
		snprintf(where + n, sizeof(where) - n, ": ");
	if (err->field[0])
		snprintf(field, sizeof(field), "%s: ", err->field);
	return snprintf(buf, size, "%s%s%s", where, field, err->what);
}
