/* `reflexctl model eval|explain tests/data/small.reflex ARGS...` with ARGS from the
 * input (split at NUL bytes): the option parser and the --features list parser
 * (values in order, or name=value) must never crash or read out of bounds. --csv is
 * skipped: it would make the fuzzer read arbitrary paths. Runs from the repo root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

#define MAX_ARGS 16

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The outputs are not the point; keep the log readable. */
	if (!freopen("/dev/null", "w", stdout))
		return 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *argv[MAX_ARGS + 5];
	int argc = 0;
	size_t start = 0;

	if (size < 1 || memmem(data, size, "csv", 3))
		return 0;
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "model";
	argv[argc++] = data[0] & 1 ? "explain" : "eval";
	argv[argc++] = "tests/data/small.reflex";
	for (size_t i = 1; i <= size && argc < MAX_ARGS + 3; i++) {
		if (copy[i] == '\0') {
			argv[argc++] = copy + start + 1;
			start = i;
		}
	}
	argv[argc] = NULL;
	ctl_model_main(argc, argv);
	fflush(stdout);
	free(copy);
	return 0;
}
