// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The decision log stays under its size cap: rotation keeps N files, never splits a
 * line, and reopening after the file was moved away starts a new one. And reflexd's
 * log filter gives lines the priorities journald shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "reflexd/decision_log.h"
#include "reflexd/log.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_decision_log.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d.log", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Lines in a file, checking each is whole: {"v": 1, "i": N} */
static int whole_lines(const char *file, long *first, long *last)
{
	char line[256];
	int n = 0;
	long i;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		assert_int_equal(line[strlen(line) - 1], '\n');
		assert_int_equal(sscanf(line, "{\"v\": 1, \"i\": %ld}", &i), 1);
		if (!n)
			*first = i;
		*last = i;
		n++;
	}
	fclose(f);
	return n;
}

static off_t size_of(const char *file)
{
	struct stat st;

	return stat(file, &st) == 0 ? st.st_size : -1;
}

static void test_rotation_keeps_n_files(void **state)
{
	char name[160];
	long first = -1, last = -1, next_first;
	FILE *log;

	(void)state;
	decision_log_limits(4096, 2);
	log = decision_log_open(path);
	assert_non_null(log);
	for (long i = 0; i < 1000; i++) /* ~22 bytes a line: ~5 files' worth */
		fprintf(log, "{\"v\": %d, \"i\": %ld}\n", DECISION_LOG_SCHEMA, i);
	assert_int_equal(fclose(log), 0);

	snprintf(name, sizeof(name), "%s.3", path);
	assert_int_equal(size_of(name), -1);
	/* FILE.2 is the oldest kept, FILE the newest; together they hold consecutive lines */
	next_first = -1;
	for (int k = 2; k >= 0; k--) {
		if (k)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		assert_in_range(size_of(name), 1, 4096);
		assert_true(whole_lines(name, &first, &last) > 0);
		if (next_first >= 0)
			assert_int_equal(first, next_first);
		next_first = last + 1;
	}
	assert_int_equal(last, 999);
}

static void test_no_files_kept(void **state)
{
	long first, last;
	FILE *log;
	char name[160];

	(void)state;
	decision_log_limits(4096, 0);
	log = decision_log_open(path);
	assert_non_null(log);
	for (long i = 0; i < 500; i++)
		fprintf(log, "{\"v\": 1, \"i\": %ld}\n", i);
	fclose(log);
	snprintf(name, sizeof(name), "%s.1", path);
	assert_int_equal(size_of(name), -1);
	assert_in_range(size_of(path), 1, 4096);
	assert_true(whole_lines(path, &first, &last) > 0);
	assert_int_equal(last, 499);
}

static void test_reopen_after_move(void **state)
{
	char moved[160];
	long first, last;
	FILE *log;

	(void)state;
	decision_log_limits(1 << 20, 3);
	log = decision_log_open(path);
	assert_non_null(log);
	fprintf(log, "{\"v\": 1, \"i\": 0}\n");
	snprintf(moved, sizeof(moved), "%s.moved", path);
	assert_int_equal(rename(path, moved), 0); /* as logrotate does */
	assert_int_equal(decision_log_reopen(log), 0);
	fprintf(log, "{\"v\": 1, \"i\": 1}\n");
	fclose(log);
	assert_int_equal(whole_lines(moved, &first, &last), 1);
	assert_int_equal(whole_lines(path, &first, &last), 1);
	assert_int_equal(first, 1);
	assert_int_equal(decision_log_reopen(stdout), -2 /* -ENOENT: not a decision log */);
}

static void test_log_priorities(void **state)
{
	(void)state;
	assert_int_equal(log_priority_of("reflexd: attached on eth0, pinned under /sys/fs/bpf/reflex\n"), LOG_INFO);
	assert_int_equal(log_priority_of("reflexd: interface 'x' not found\n"), LOG_ERR);
	assert_int_equal(log_priority_of("reflexd: cannot open decision log /x: Permission denied\n"), LOG_ERR);
	assert_int_equal(log_priority_of("reflexd: cwnd model /m refused: bad CRC\n"), LOG_WARNING);
	assert_int_equal(log_priority_of("window 100 iface:eth0 p95=3us\n"), LOG_DEBUG);
	assert_int_equal(log_priority_of("libbpf: loading object\n"), LOG_DEBUG);
	assert_int_equal(log_priority_of("libbpf: failed to load program\n"), LOG_ERR);
	/* counter names in the summary are not events */
	assert_int_equal(log_priority_of("reflexd: ran 1.0 s: heartbeat_stale=0, clamp_fail=0, cc_select_fail=0\n"),
			 LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rotation_keeps_n_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_files_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_move, setup, teardown),
		cmocka_unit_test(test_log_priorities),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
