/* reflexctl decisions: the decision log reflexd appends to (one JSON object per line:
 * ts_ns, flow, knob, old, new, model, acted, explain), as a table or as it is. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "reflexd/decision_log.h"
#include "lib/pins.h"
#include "reflex.h"

/* The value of "key": in one log line, copied into out (strings without quotes). */
static bool json_field(const char *line, const char *key, char *out, size_t len)
{
	char pattern[64];
	const char *p;
	size_t n = 0;

	snprintf(pattern, sizeof(pattern), "\"%s\": ", key);
	p = strstr(line, pattern);
	if (!p || !len)
		return false;
	p += strlen(pattern);
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n + 1 < len)
			out[n++] = *p++;
	} else {
		while (*p && *p != ',' && *p != '}' && n + 1 < len)
			out[n++] = *p++;
	}
	out[n] = '\0';
	return true;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexctl decisions [--log FILE | --pin-dir DIR] [--flow SUBSTRING] [--last N] [--json]\n\n"
		     "Decision changes reflexd made (or, in shadow mode, would have made): time, flow,\n"
		     "knob, old and new value, model, whether it acted, and the model's decision path.\n"
		     "Default log: /run/reflex/<pin dir>.decisions for the default pin dir %s.\n",
		REFLEX_DEFAULT_PIN_DIR);
}

int ctl_decisions_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "log", required_argument, NULL, 'l' },  { "pin-dir", required_argument, NULL, 'p' },
		{ "flow", required_argument, NULL, 'f' }, { "last", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },       { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *log_path = NULL, *pin_dir = REFLEX_DEFAULT_PIN_DIR, *flow_filter = NULL;
	char default_log[PATH_MAX], line[4096];
	unsigned long last = 0, total = 0, shown = 0;
	bool json = false;
	FILE *f;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': log_path = optarg; break;
		case 'p': pin_dir = optarg; break;
		case 'f': flow_filter = optarg; break;
		case 'n': {
			char *end;

			errno = 0;
			last = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "reflexctl decisions: --last: '%s' is not a whole number\n", optarg);
				return 2;
			}
			break;
		}
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!log_path) {
		pins_run_path(pin_dir, "decisions", default_log, sizeof(default_log));
		log_path = default_log;
	}
	f = fopen(log_path, "r");
	if (!f) {
		fprintf(stderr, "reflexctl decisions: cannot read %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	bool schema_warned = false;

	/* Two passes when --last is given: count, then print the tail. */
	if (last) {
		while (fgets(line, sizeof(line), f))
			if (!flow_filter || strstr(line, flow_filter))
				total++;
		rewind(f);
	}
	if (!json)
		printf("%-16s %-44s %-18s %8s %8s %-10s %-5s %s\n", "ts_ns", "flow", "knob", "old", "new", "model",
		       "acted", "explain");
	while (fgets(line, sizeof(line), f)) {
		char ts[32], flow[128], knob[32], old_value[32], new_value[32], model[32], acted[8], explain[2048];
		char version[16];

		if (flow_filter && !strstr(line, flow_filter))
			continue;
		if (last && total - shown++ > last)
			continue;
		if (json) {
			fputs(line, stdout);
			continue;
		}
		if (!schema_warned && json_field(line, "v", version, sizeof(version)) &&
		    atoi(version) > DECISION_LOG_SCHEMA) {
			fprintf(stderr, "reflexctl decisions: %s is schema v%s, this reflexctl reads v%d: fields it "
					"does not know are not shown\n", log_path, version, DECISION_LOG_SCHEMA);
			schema_warned = true;
		}
		if (!json_field(line, "ts_ns", ts, sizeof(ts)) || !json_field(line, "flow", flow, sizeof(flow)) ||
		    !json_field(line, "knob", knob, sizeof(knob)) || !json_field(line, "old", old_value, sizeof(old_value)) ||
		    !json_field(line, "new", new_value, sizeof(new_value)) ||
		    !json_field(line, "model", model, sizeof(model)) || !json_field(line, "acted", acted, sizeof(acted)) ||
		    !json_field(line, "explain", explain, sizeof(explain)))
			continue;
		printf("%-16s %-44s %-18s %8s %8s %-10s %-5s %s\n", ts, flow, knob, old_value, new_value, model,
		       strcmp(acted, "true") ? "no" : "yes", explain);
	}
	fclose(f);
	return 0;
}
