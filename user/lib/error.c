#include <stdarg.h>
#include <stdio.h>

#include "lib/error.h"

void reflex_err_set(struct reflex_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}
