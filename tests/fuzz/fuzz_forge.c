/* libFuzzer target for what the forge builds on the CSV reader: the telemetry
 * loader (scopes, flows, duplicates, gaps) and `train` on an arbitrary table whose
 * last column is the target (J@ column names, splits, quantization, the writer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "forge/forge.h"

static char out_dir[64];
static char out_path[80];

static void remove_out_dir(void)
{
	unlink(out_path);
	rmdir(out_dir);
}

static void load_trace(const uint8_t *data, size_t size)
{
	struct reflex_err err;
	struct forge_trace tr;
	char path[64];
	int fd = memfd_create("fuzz_forge", 0);

	if (fd < 0)
		return;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (!forge_trace_load(path, SCOPE_IFACE, &tr, &err))
			forge_trace_free(&tr);
		if (!forge_trace_load(path, SCOPE_FLOW, &tr, &err))
			forge_trace_free(&tr);
	}
	close(fd);
}

static void train(const uint8_t *data, size_t size)
{
	struct forge_train_opts opts = {
		.target_count = 1,
		.max_depth = 4,
		.min_samples_leaf = 1,
		.holdout = 0.2,
		.seed = 1,
		.split_block = 2,
		.created_at = "2025-01-01T00:00:00Z",
		.telemetry_hash = "0000000000000000000000000000000000000000",
	};
	struct forge_train_report rep;
	struct csv_table *t = NULL;
	struct reflex_err err;

	if (csv_parse("fuzz.csv", (const char *)data, size, &t, &err))
		return;
	opts.targets[0] = t->header[t->col_count - 1];
	if (!forge_train(t, &opts, out_path, &rep, &err))
		unlink(out_path);
	csv_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!out_dir[0]) {
		snprintf(out_dir, sizeof(out_dir), "/dev/shm/fuzz_forge.XXXXXX");
		if (!mkdtemp(out_dir))
			abort();
		snprintf(out_path, sizeof(out_path), "%s/m.reflex", out_dir);
		atexit(remove_out_dir);
	}
	load_trace(data, size);
	train(data, size);
	return 0;
}
