/* reflexctl paths: the edge router's path table (per class and path: pulls, mean
 * reward, UCB index, flows; per path: metrics, link and traffic; the largest flows),
 * from the file a router reflexd rewrites every second. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "lib/fileio.h"
#include "lib/pins.h"
#include "reflex.h"
#include "router/router_view.h"

/* The file holds at most 256 flows and a fixed table: far below this. */
#define MAX_FILE_BYTES (16u << 20)

static void usage(FILE *out)
{
	fprintf(out,
		"usage: reflexctl paths [--json] [--pin-dir DIR | --file FILE]\n\n"
		"The edge router's paths as a router reflexd (--lan/--path) sees them: the bandit's\n"
		"table per traffic class and path (pulls, mean reward, bonus, UCB index, flows), each\n"
		"path's metrics (RTT, jitter, loss, throughput, availability), link and traffic, and\n"
		"the largest flows. --json prints the file as reflexd wrote it.\n"
		"Default file: /run/reflex/<pin dir with / as _>.paths for the pin dir %s;\n"
		"its reflexd must be running. --file reads a saved copy as it is.\n",
		REFLEX_DEFAULT_PIN_DIR);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int ctl_router_view_read(const char *who, const char *file, bool live, struct router_view **view, char **text,
			 size_t *len)
{
	struct reflex_err err = { 0 };
	int read_ret;

	*view = NULL;
	*text = NULL;
	read_ret = fileio_read_bounded(file, MAX_FILE_BYTES, text, len, &err);
	if (read_ret) {
		fprintf(stderr, "%s: cannot read %s%s\n", who, err.msg,
			read_ret == -ENOENT ? " (is a router reflexd, --lan/--path, running with this --pin-dir?)" : "");
		return -1;
	}
	*view = malloc(sizeof(**view));
	if (!*view) {
		fprintf(stderr, "%s: out of memory\n", who);
		return -1;
	}
	if (router_view_parse_json(*text, *len, *view, &err)) {
		fprintf(stderr, "%s: %s: %s\n", who, file, err.msg);
		return -1;
	}
	/* The file outlives a reflexd killed hard: an old table must not pass for the truth. */
	if (live && ((*view)->pid <= 0 || (kill((*view)->pid, 0) != 0 && errno == ESRCH))) {
		fprintf(stderr, "%s: %s was written by reflexd pid %d, which is not running\n", who, file,
			(*view)->pid);
		return -1;
	}
	return 0;
}

int ctl_paths_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_dir = REFLEX_DEFAULT_PIN_DIR, *file = NULL;
	struct router_view *view = NULL;
	char default_file[PATH_MAX];
	bool json = false;
	char *text = NULL;
	size_t len = 0;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'p': pin_dir = optarg; break;
		case 'f': file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "reflexctl paths: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!file) {
		pins_run_path(pin_dir, "paths", default_file, sizeof(default_file));
		file = default_file;
	}
	if (ctl_router_view_read("reflexctl paths", file, file == default_file, &view, &text, &len))
		goto cleanup;
	if (json) {
		ret = fwrite(text, 1, len, stdout) == len ? 0 : 1;
		goto cleanup;
	}
	{
		uint64_t now = monotonic_ns();

		printf("%s, written %.1f s ago\n", file, now > view->now_ns ? (now - view->now_ns) / 1e9 : 0.0);
	}
	ret = router_view_print_text(view, stdout) ? 1 : 0;
cleanup:
	free(view);
	free(text);
	return ret;
}
