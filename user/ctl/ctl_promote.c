/* reflexctl promote: let a shadow-mode reflexd act, only if the seed's gate passes
 * (expected delta p95 <= -10 % and <= 1 oscillation per 30 s), else say why not. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "lib/fileio.h"
#include "lib/pins.h"
#include "reflex.h"

struct shadow_status {
	int pid;
	int shadow;
	char gate[16];
	char why[512];
};

#define STATUS_MAX_BYTES 8192

static bool status_read(const char *path, struct shadow_status *st)
{
	struct reflex_err err = { 0 };
	char *text, *line, *save = NULL;
	size_t len;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = fileio_read_bounded(path, STATUS_MAX_BYTES, &text, &len, &err);
	if (ret) {
		errno = -ret;
		return false;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "pid=", 4))
			st->pid = atoi(line + 4);
		else if (!strncmp(line, "shadow=", 7))
			st->shadow = atoi(line + 7);
		else if (!strncmp(line, "gate=", 5))
			snprintf(st->gate, sizeof(st->gate), "%s", line + 5);
		else if (!strncmp(line, "why=", 4))
			snprintf(st->why, sizeof(st->why), "%s", line + 4);
	}
	free(text);
	return st->pid > 0;
}

int ctl_promote_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_dir = REFLEX_DEFAULT_PIN_DIR;
	char path[PATH_MAX];
	struct shadow_status st;
	int c, holder;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pin_dir = optarg; break;
		case 'h':
			printf("usage: reflexctl promote [--pin-dir DIR]\n\n"
			       "Switches a reflexd running with --shadow to acting, if its shadow verdict passes\n"
			       "the gate: expected delta p95 <= -10 %% and <= 1 oscillation per 30 s.\n"
			       "Exit 0 promoted, 1 refused (the reason is printed), 2 no shadow reflexd.\n");
			return 0;
		default: return 2;
		}
	}
	pins_run_path(pin_dir, "shadow", path, sizeof(path));
	if (!status_read(path, &st)) {
		fprintf(stderr, "reflexctl promote: no reflexd in shadow mode for %s (%s: %s)\n", pin_dir, path,
			strerror(errno ? errno : ENOENT));
		return 2;
	}
	/* Only the live reflexd holding the pin directory's lock is signalled: a stale
	 * file's pid may since belong to anything. */
	holder = pins_lock_holder(pin_dir);
	if (holder != st.pid) {
		fprintf(stderr, "reflexctl promote: no reflexd in shadow mode for %s: %s names pid %d, which does "
				"not hold the pin directory's lock (stale file; `reflexd --cleanup` removes it)\n",
			pin_dir, path, st.pid);
		return 2;
	}
	if (!st.shadow) {
		printf("reflexd (pid %d) already acts: %s\n", st.pid, st.why);
		return 0;
	}
	if (strcmp(st.gate, "pass")) {
		printf("not promoted: %s\n", st.why);
		return 1;
	}
	if (kill(st.pid, SIGUSR1)) {
		fprintf(stderr, "reflexctl promote: cannot signal reflexd (pid %d): %s\n", st.pid, strerror(errno));
		return 2;
	}
	/* reflexd re-checks the gate and rewrites the status file. */
	for (int i = 0; i < 50; i++) {
		usleep(100 * 1000);
		if (status_read(path, &st) && !st.shadow) {
			printf("promoted: reflexd (pid %d) now acts: %s\n", st.pid, st.why);
			return 0;
		}
	}
	printf("not promoted: reflexd kept shadow mode: %s\n", st.why);
	return 1;
}
