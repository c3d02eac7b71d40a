/* reflexd's command-line parser on any argv: the input is split at NUL bytes into
 * arguments. The parser must never crash, and must either accept, ask for help, or
 * give one NUL-terminated error line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reflexd/reflexd_options.h"

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	char *argv[MAX_ARGS + 2];
	struct reflexd_options opt;
	struct reflex_err err;
	int argc = 1;
	size_t start = 0;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[0] = "reflexd";
	for (size_t i = 0; i <= size && argc <= MAX_ARGS; i++) {
		if (copy[i] == '\0') {
			argv[argc++] = copy + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	memset(&err, 'x', sizeof(err));
	if (reflexd_parse_args(argc, argv, &opt, &err) == REFLEXD_ARGS_ERROR &&
	    (!memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0]))
		abort();
	free(copy);
	return 0;
}
