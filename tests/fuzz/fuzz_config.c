/* reflexd's config file reader on any bytes: it must never crash, and must either
 * accept (every entry an option argument with its line) or give one error line that
 * names the file and the line and keeps nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reflexd/config.h"

static struct config_file cf;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reflex_err err;

	memset(&err, 'x', sizeof(err));
	if (config_load_text(&cf, "fuzz.conf", (const char *)data, size, &err) == 0) {
		for (int i = 0; i < cf.count; i++)
			if (strncmp(cf.entries[i].arg, "--", 2) || cf.entries[i].line < 1)
				abort();
	} else if (!memchr(err.msg, '\0', sizeof(err.msg)) || strncmp(err.msg, "fuzz.conf:", 10) || err.line < 1 ||
		   cf.count != 0) {
		abort();
	}
	return 0;
}
