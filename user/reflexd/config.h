/*
 * reflexd's config file (INI, read with libinih): every long option of reflexd is a
 * key, grouped in sections ([host], [models], [router], [metrics], [logging]). The
 * file is turned into "--option=value" arguments placed before the command line's,
 * so the command line overrides the file and one parser checks both.
 */
#ifndef REFLEX_REFLEXD_CONFIG_H
#define REFLEX_REFLEXD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/error.h"

#define CONFIG_MAX_ENTRIES 64
#define CONFIG_ARG_MAX 1024

struct config_entry {
	char arg[CONFIG_ARG_MAX]; /* "--option" or "--option=value" */
	const char *section;      /* static names: where the key was */
	const char *key;
	int line;
};

struct config_file {
	char path[PATH_MAX];
	struct config_entry entries[CONFIG_MAX_ENTRIES];
	int count;
};

/* Reads path into cf. Returns 0, or -1 with err = "FILE:LINE: [section] key 'K': why"
 * (or "FILE: why" when the file cannot be read). Nothing of a failed file is kept. */
int config_load(struct config_file *cf, const char *path, struct reflex_err *err);
/* The same on text (tests, fuzzer); source names it in errors. */
int config_load_text(struct config_file *cf, const char *source, const char *text, size_t len,
		     struct reflex_err *err);

/* The section a long option's key sits in ("models" for --model's roles), or NULL
 * if the option cannot be set from a file. */
const char *config_section_of(const char *option);

#endif
