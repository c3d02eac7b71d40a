// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* reflexd's config file: keys become options, errors name file, line and key, the
 * command line overrides the file, and --check-config's output reads back the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "reflexd/config.h"
#include "reflexd/metrics.h"
#include "reflexd/reflexd_options.h"

static struct config_file cf;
static struct reflexd_options opt, opt2;

static int load(const char *text, struct reflex_err *err)
{
	return config_load_text(&cf, "t.conf", text, strlen(text), err);
}

static void test_keys_become_options(void **state)
{
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(load("; comment\n[host]\niface = eth0\nshadow = yes\nlearn = off\n"
			      "[models]\ncwnd = /m/cwnd.reflex\n[router]\npath = a:eth1:10.0.0.1\npath = b:eth2:10.0.1.1\n"
			      "[metrics]\nmetrics-listen = 9100\n",
			      &err), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(cf.count, 6); /* learn = off adds nothing */
	assert_string_equal(cf.entries[0].arg, "--iface=eth0");
	assert_int_equal(cf.entries[0].line, 3);
	assert_string_equal(cf.entries[1].arg, "--shadow");
	assert_string_equal(cf.entries[2].arg, "--model=cwnd=/m/cwnd.reflex");
	assert_string_equal(cf.entries[2].section, "models");
	assert_string_equal(cf.entries[4].arg, "--path=b:eth2:10.0.1.1");
	assert_int_equal(cf.entries[4].line, 10);
	assert_string_equal(cf.entries[5].arg, "--metrics-listen=9100");
}

static void expect_error(const char *text, const char *want)
{
	struct reflex_err err = { 0 };

	assert_int_equal(load(text, &err), -1);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_int_equal(cf.count, 0);
}

static void test_errors_name_file_line_key(void **state)
{
	(void)state;
	expect_error("[host]\n\nifac = eth0\n", "t.conf:3: [host] key 'ifac': unknown key");
	expect_error("[models]\niface = eth0\n", "t.conf:2: [models] key 'iface': belongs in [host]");
	expect_error("iface = eth0\n", "t.conf:1: [] key 'iface': outside any section");
	expect_error("[host]\niface = a\niface = b\n", "t.conf:3: [host] key 'iface': given twice (first at line 2)");
	expect_error("[host]\nshadow = maybe\n", "t.conf:2: [host] key 'shadow': 'maybe' is not true or false");
	expect_error("[host]\niface =\n", "t.conf:2: [host] key 'iface': no value");
	expect_error("[host]\njunk\n", "t.conf:2: not 'key = value'");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "[host]\niface = a\0b\n";
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(config_load_text(&cf, "t.conf", text, sizeof(text) - 1, &err), -1);
	assert_string_equal(err.msg, "t.conf:2: a NUL byte (not a text file)");
}

static void test_long_line(void **state)
{
	char text[400] = "[host]\niface = ";
	struct reflex_err err = { 0 };

	(void)state;
	memset(text + strlen(text), 'x', 300);
	/* inih reads at most INI_MAX_LINE (200) characters a line */
	assert_int_equal(config_load_text(&cf, "t.conf", text, strlen(text), &err), -1);
	assert_non_null(strstr(err.msg, "t.conf:2: line longer than"));
}

static void test_only_regular_files(void **state)
{
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(config_load(&cf, "/dev/null", &err), -1);
	assert_string_equal(err.msg, "/dev/null: not a regular file");
	assert_int_equal(config_load(&cf, "/nonexistent.conf", &err), -1);
	assert_string_equal(err.msg, "/nonexistent.conf: cannot open: No such file or directory");
	{
		/* fopen blocked on a FIFO until a writer came: now refused at once */
		char fifo[] = "/tmp/test_config_fifo.XXXXXX";
		int fd = mkstemp(fifo);

		assert_true(fd >= 0);
		close(fd);
		unlink(fifo);
		assert_int_equal(mkfifo(fifo, 0600), 0);
		alarm(10);
		assert_int_equal(config_load(&cf, fifo, &err), -1);
		alarm(0);
		unlink(fifo);
		assert_non_null(strstr(err.msg, "not a regular file"));
	}
}

static char *write_temp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_config.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_command_line_overrides(void **state)
{
	char *path = write_temp("[host]\niface = eth0\nsample-interval-ms = 20\n"
				"[router]\n[metrics]\nmetrics-listen = 127.0.0.1:9100\n");
	char *argv[] = { "reflexd", "--config", path, "--sample-interval-ms", "30", NULL };
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(5, argv, &opt, &err), REFLEXD_ARGS_RUN);
	assert_string_equal(opt.iface, "eth0");
	assert_int_equal(opt.config.sample_interval_ns, 30000000ULL);
	assert_string_equal(opt.metrics_listen, "127.0.0.1:9100");
	assert_string_equal(opt.config_path, path);
	unlink(path);
}

static void test_file_value_error_names_line(void **state)
{
	char *path = write_temp("[host]\niface = eth0\nflush-threshold = 65\n");
	char *argv[] = { "reflexd", "--config", path, NULL };
	struct reflex_err err = { 0 };
	char want[128];

	(void)state;
	assert_int_equal(reflexd_parse_args(3, argv, &opt, &err), REFLEXD_ARGS_ERROR);
	snprintf(want, sizeof(want), "%s:3: [host] key 'flush-threshold': '65' is not a whole number in 1..64",
		 path);
	assert_string_equal(err.msg, want);
	unlink(path);
}

static void test_router_paths_replaced(void **state)
{
	char *path = write_temp("[router]\nlan = lan0\npath = a:up1:10.0.0.1\npath = b:up2:10.0.1.1\n");
	char *file_only[] = { "reflexd", "--config", path, NULL };
	char *cli[] = { "reflexd", "--config", path, "--path", "c:up3:10.0.2.1", NULL };
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(3, file_only, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(opt.router.n_paths, 2);
	assert_int_equal(reflexd_parse_args(5, cli, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(opt.router.n_paths, 1);
	assert_string_equal(opt.router.path[0].name, "c");
	unlink(path);
}

/* --check-config prints a file that, read back, gives the same configuration. */
static void test_print_reads_back(void **state)
{
	char *argv[] = { "reflexd", "--iface", "eth0", "--cgroup", "/sys/fs/cgroup/x", "--shadow", "--auto-promote",
			 "--model", "dqn=/m/d.reflex", "--policy", "cwnd=dqn", "--explore", "0.1",
			 "--metrics-listen", "[::1]:9200", "--decision-log-keep", "5", "-q", NULL };
	char *printed = NULL, *again = NULL, *path;
	struct reflex_err err = { 0 };
	size_t len = 0, len2 = 0;
	FILE *f;

	(void)state;
	assert_int_equal(reflexd_parse_args(18, argv, &opt, &err), REFLEXD_ARGS_RUN);
	f = open_memstream(&printed, &len);
	reflexd_print_config(&opt, f);
	fclose(f);
	path = write_temp(printed);
	{
		char *argv2[] = { "reflexd", "--config", path, NULL };

		assert_int_equal(reflexd_parse_args(3, argv2, &opt2, &err), REFLEXD_ARGS_RUN);
	}
	f = open_memstream(&again, &len2);
	reflexd_print_config(&opt2, f);
	fclose(f);
	/* the first comment line names the source; the rest must match */
	assert_string_equal(strchr(printed, '\n'), strchr(again, '\n'));
	assert_true(opt2.quiet);
	assert_int_equal(opt2.decision_log_keep, 5);
	free(printed);
	free(again);
	unlink(path);
}

/* Model health: drift hands over at the model's calibrated threshold unless told
 * otherwise; the anomaly threshold and hold; bad values are refused. */
static void test_health_options(void **state)
{
	char *defaults[] = { "reflexd", "--iface", "eth0", NULL };
	char *set[] = { "reflexd", "--iface", "eth0", "--drift-threshold", "3", "--anomaly-threshold", "0.8",
			"--anomaly-hold", "20", NULL };
	char *model[] = { "reflexd", "--iface", "eth0", "--drift-threshold", "3", "--drift-threshold", "model", NULL };
	char *bad[] = { "reflexd", "--iface", "eth0", "--anomaly-threshold", "1.5", NULL };
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(reflexd_parse_args(3, defaults, &opt, &err), REFLEXD_ARGS_RUN);
	assert_true(opt.control.health.threshold == DRIFT_THRESHOLD_FROM_MODEL);
	assert_true(opt.control.health.anomaly_threshold == ANOMALY_DEFAULT_THRESHOLD);
	assert_int_equal(opt.control.health.anomaly_hold, ANOMALY_DEFAULT_HOLD);
	assert_int_equal(reflexd_parse_args(9, set, &opt, &err), REFLEXD_ARGS_RUN);
	assert_true(opt.control.health.threshold == 3);
	assert_true(opt.control.health.anomaly_threshold == 0.8);
	assert_int_equal(opt.control.health.anomaly_hold, 20);
	assert_int_equal(reflexd_parse_args(7, model, &opt, &err), REFLEXD_ARGS_RUN);
	assert_true(opt.control.health.threshold == DRIFT_THRESHOLD_FROM_MODEL);
	assert_int_equal(reflexd_parse_args(5, bad, &opt, &err), REFLEXD_ARGS_ERROR);
	if (!strstr(err.msg, "--anomaly-threshold: '1.5' is not a score in 0..1"))
		fail_msg("error '%s'", err.msg);
}

/* SIGHUP: which changed keys apply live and which need a restart. */
static void test_reload_diff(void **state)
{
	char *before = write_temp("[host]\niface = eth0\nflush-threshold = 16\n[models]\ncwnd = /m/a.reflex\n");
	char *argv[] = { "reflexd", "--config", before, "--shadow", NULL };
	char live[256], restart[256];
	struct reflex_err err = { 0 };
	FILE *f;

	(void)state;
	assert_int_equal(reflexd_parse_args(4, argv, &opt, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(reflexd_parse_args(4, argv, &opt2, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(reflexd_reload_diff(&opt, &opt2, live, sizeof(live), restart, sizeof(restart)), 0);
	assert_string_equal(live, "");
	assert_string_equal(restart, "");

	f = fopen(before, "w");
	assert_non_null(f);
	fputs("[host]\niface = eth1\nflush-threshold = 8\n[models]\ncwnd = /m/b.reflex\n[metrics]\nmetrics-listen = 9100\n", f);
	fclose(f);
	assert_int_equal(reflexd_parse_args(4, argv, &opt2, &err), REFLEXD_ARGS_RUN);
	assert_int_equal(reflexd_reload_diff(&opt, &opt2, live, sizeof(live), restart, sizeof(restart)), 0);
	assert_string_equal(live, "flush-threshold,cwnd");
	assert_string_equal(restart, "iface,metrics-listen");
	unlink(before);
}

static void test_metrics_listen(void **state)
{
	struct sockaddr_storage addr;
	socklen_t len;

	(void)state;
	assert_int_equal(metrics_parse_listen("9100", &addr, &len), 0);
	assert_int_equal(addr.ss_family, AF_INET);
	assert_int_equal(metrics_parse_listen("0.0.0.0:80", &addr, &len), 0);
	assert_int_equal(metrics_parse_listen("[::1]:9100", &addr, &len), 0);
	assert_int_equal(addr.ss_family, AF_INET6);
	assert_int_equal(metrics_parse_listen("0", &addr, &len), -1);
	assert_int_equal(metrics_parse_listen("65536", &addr, &len), -1);
	assert_int_equal(metrics_parse_listen("host:80", &addr, &len), -1);
	assert_int_equal(metrics_parse_listen("[::1]9100", &addr, &len), -1);
	assert_int_equal(metrics_parse_listen("1.2.3.4:", &addr, &len), -1);
	assert_int_equal(metrics_parse_listen("", &addr, &len), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_become_options),
		cmocka_unit_test(test_errors_name_file_line_key),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_only_regular_files),
		cmocka_unit_test(test_command_line_overrides),
		cmocka_unit_test(test_file_value_error_names_line),
		cmocka_unit_test(test_router_paths_replaced),
		cmocka_unit_test(test_print_reads_back),
		cmocka_unit_test(test_health_options),
		cmocka_unit_test(test_reload_diff),
		cmocka_unit_test(test_metrics_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
