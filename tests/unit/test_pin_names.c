/*
 * Every map a reflex BPF object pins by name is one pins_dir_remove may unlink: a map
 * added to a program without its name in lib/pins.c would be left behind by
 * --cleanup (and keep the pin directory alive). Reads the built objects in
 * $REFLEX_BPF (default build/bpf); nothing is loaded, so no privileges are needed.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <cmocka.h>

#include "lib/pins.h"

static const char *bpf_dir(void)
{
	const char *dir = getenv("REFLEX_BPF");

	return dir && *dir ? dir : "build/bpf";
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static void test_every_pinned_map_is_a_reflex_name(void **state)
{
	const char *dir = bpf_dir();
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned objects = 0, pinned = 0;

	(void)state;
	if (!d)
		fail_msg("cannot open %s (build the BPF objects first: make)", dir);
	libbpf_set_print(quiet);
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct bpf_object *obj;
		struct bpf_map *map;
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 6, ".bpf.o"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		obj = bpf_object__open_file(path, NULL);
		if (!obj)
			fail_msg("%s: cannot open the BPF object", path);
		objects++;
		bpf_object__for_each_map(map, obj) {
			if (!bpf_map__pin_path(map))
				continue;
			pinned++;
			if (!pins_is_reflex_name(bpf_map__name(map)))
				fail_msg("%s pins map '%s', which lib/pins.c does not list: --cleanup would leave it",
					 path, bpf_map__name(map));
		}
		bpf_object__close(obj);
	}
	closedir(d);
	if (objects < 4 || pinned < 10)
		fail_msg("only %u BPF objects with %u pinned maps in %s: not the reflex build", objects, pinned, dir);
}

static void test_a_foreign_name_is_not_ours(void **state)
{
	(void)state;
	assert_false(pins_is_reflex_name("passwd"));
	assert_false(pins_is_reflex_name(""));
	assert_true(pins_is_reflex_name("cwnd_decisions"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pinned_map_is_a_reflex_name),
		cmocka_unit_test(test_a_foreign_name_is_not_ours),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
