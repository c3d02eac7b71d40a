/* lib/fileio: outputs that cannot be redirected, atomic replacement, bounded reads
 * that neither follow a symlink nor block on a FIFO. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/fileio.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_fileio.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_output_refuses_symlink_and_keeps_target(void **state)
{
	char target[128], lnk[128];
	struct reflex_err err = { 0 };

	(void)state;
	path_of(target, sizeof(target), "victim");
	path_of(lnk, sizeof(lnk), "out.csv");
	write_text(target, "precious\n");
	assert_int_equal(symlink(target, lnk), 0);
	assert_null(fileio_open_output(lnk, false, 0640, &err));
	assert_non_null(strstr(err.msg, "is a symlink"));
	assert_null(fileio_open_output(lnk, true, 0640, &err));
	assert_string_equal(slurp(target), "precious\n");
}

static void test_output_refuses_hard_link(void **state)
{
	char target[128], hard[128];
	struct reflex_err err = { 0 };

	(void)state;
	path_of(target, sizeof(target), "victim2");
	path_of(hard, sizeof(hard), "hard.csv");
	write_text(target, "precious\n");
	assert_int_equal(link(target, hard), 0);
	assert_null(fileio_open_output(hard, false, 0640, &err));
	assert_non_null(strstr(err.msg, "one link"));
	assert_string_equal(slurp(target), "precious\n");
}

static void test_output_new_file_mode_and_truncate(void **state)
{
	char path[128];
	struct reflex_err err = { 0 };
	struct stat st;
	FILE *f;

	(void)state;
	path_of(path, sizeof(path), "new.csv");
	f = fileio_open_output(path, false, 0600, &err);
	assert_non_null(f);
	fputs("first line that is long\n", f);
	fclose(f);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fileio_open_output(path, false, 0600, &err);
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	assert_string_equal(slurp(path), "x\n");
	f = fileio_open_output(path, true, 0600, &err);
	assert_non_null(f);
	fputs("y\n", f);
	fclose(f);
	assert_string_equal(slurp(path), "x\ny\n");
}

static void test_atomic_replaces_and_leaves_no_temp(void **state)
{
	char path[128], target[128], cmd[256];
	struct reflex_err err = { 0 };
	struct fileio_atomic a;
	struct stat st;

	(void)state;
	path_of(path, sizeof(path), "state");
	path_of(target, sizeof(target), "victim3");
	write_text(target, "precious\n");
	/* A symlink at the path is replaced itself; its target is untouched. */
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(fileio_write_atomic(path, "pid=1\n", 6, 0600, &err), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_string_equal(slurp(path), "pid=1\n");
	assert_string_equal(slurp(target), "precious\n");

	assert_int_equal(fileio_atomic_open(&a, path, 0600, &err), 0);
	fputs("half", a.f);
	fileio_atomic_abort(&a);
	assert_string_equal(slurp(path), "pid=1\n");
	snprintf(cmd, sizeof(cmd), "test $(ls %s | grep -c tmp) -eq 0", dir);
	assert_int_equal(system(cmd), 0);
}

static void on_alarm(int sig)
{
	(void)sig;
	fail_msg("fileio_read_bounded blocked on a FIFO");
}

static void test_read_refuses_fifo_without_blocking(void **state)
{
	char path[128];
	struct reflex_err err = { 0 };
	char *data = (char *)1;
	size_t len = 1;

	(void)state;
	path_of(path, sizeof(path), "model.reflex");
	assert_int_equal(mkfifo(path, 0600), 0);
	signal(SIGALRM, on_alarm);
	alarm(5);
	assert_int_equal(fileio_read_bounded(path, 1024, &data, &len, &err), -EINVAL);
	alarm(0);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_null(data);
}

static void test_read_refuses_symlink_and_bounds_size(void **state)
{
	char path[128], lnk[128];
	struct reflex_err err = { 0 };
	char *data;
	size_t len;

	(void)state;
	path_of(path, sizeof(path), "small");
	path_of(lnk, sizeof(lnk), "small.link");
	write_text(path, "0123456789");
	assert_int_equal(symlink(path, lnk), 0);
	assert_int_equal(fileio_read_bounded(lnk, 1024, &data, &len, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "is a symlink"));
	assert_int_equal(fileio_read_bounded(path, 9, &data, &len, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "larger than 9 bytes (10)"));
	assert_int_equal(fileio_read_bounded(path, 10, &data, &len, &err), 0);
	assert_int_equal(len, 10);
	assert_string_equal(data, "0123456789");
	free(data);
	assert_int_equal(fileio_read_bounded(dir, 10, &data, &len, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_refuses_symlink_and_keeps_target),
		cmocka_unit_test(test_output_refuses_hard_link),
		cmocka_unit_test(test_output_new_file_mode_and_truncate),
		cmocka_unit_test(test_atomic_replaces_and_leaves_no_temp),
		cmocka_unit_test(test_read_refuses_fifo_without_blocking),
		cmocka_unit_test(test_read_refuses_symlink_and_bounds_size),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
