#include <string.h>

#include "lib/text_lines.h"

char *text_lines_next(struct text_lines *t, char *buf, int size, bool *too_long)
{
	const char *p, *nl;
	size_t n;

	*too_long = false;
	if (t->pos >= t->len)
		return NULL;
	p = t->text + t->pos;
	nl = memchr(p, '\n', t->len - t->pos);
	n = nl ? (size_t)(nl - p) + 1 : t->len - t->pos;
	t->line++;
	if (size < 3 || n > (size_t)size - 1) {
		*too_long = true;
		return NULL;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	t->pos += n;
	return buf;
}

int text_lines_nul(const char *text, size_t len, size_t *offset)
{
	const char *nul = memchr(text, '\0', len);
	int line = 1;

	if (!nul)
		return 0;
	for (const char *p = text; p < nul; p++)
		line += *p == '\n';
	*offset = (size_t)(nul - text);
	return line;
}
