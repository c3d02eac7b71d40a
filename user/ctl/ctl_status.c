/* reflexctl status: is reflexd running and healthy, and what is it doing. Reads the
 * status file reflexd renews every second (/run/reflex/PIN.status) and the pinned
 * maps (heartbeat, counters, map fill). Exit 0 when healthy, 1 when reflexd is not
 * running, its status file is not being renewed or its heartbeat is stale: usable as
 * a health check. */
#include <bpf/bpf.h>
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "lib/bpf_maps.h"
#include "lib/json_write.h"
#include "lib/pins.h"
#include "reflex.h"
#include "reflex_router.h"
#include "router/router_view.h"

/* reflexd renews the file every second; this much older means its loop is stuck. */
#define STATUS_STALE_S 5.0
#define MAX_MODELS 3
#define MAX_MAPS 32

struct status {
	int pid;
	double start_unix;
	char version[64], iface[32], mode[16], actuator[16], policy[16];
	unsigned long long flows, flows_seen, windows, decisions, reversals, reversals_held;
	struct {
		char role[16], sha256[65], path[PATH_MAX];
		double loaded_unix;
	} model[MAX_MODELS];
	int n_models;
	struct {
		char role[16], top[256];
		double psi, threshold;
		unsigned windows;
		int handed_over;
		unsigned long long handovers, returns;
	} drift[MAX_MODELS];
	int n_drift;
	bool have_anomaly;
	unsigned long long anomaly_handovers, anomaly_returns;
	unsigned anomaly_flows;
	char last_error[512];
	double file_age_s;
};

struct health {
	bool running;
	bool have_heartbeat;
	double heartbeat_age_s, heartbeat_deadline_s;
	uint64_t counters[CNT_MAX];
	bool have_counters;
	struct map_pressure maps[MAX_MAPS];
	int n_maps;
	const char *problem; /* NULL: healthy */
};

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void copy_value(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

static bool status_read(const char *path, struct status *st)
{
	char line[PATH_MAX + 256];
	struct stat sb;
	FILE *f = fopen(path, "r");

	memset(st, 0, sizeof(*st));
	if (!f)
		return false;
	if (fstat(fileno(f), &sb) == 0)
		st->file_age_s = clock_s(CLOCK_REALTIME) - (sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9);
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		const char *v;

		line[strcspn(line, "\n")] = '\0';
		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(line, "pid"))
			st->pid = atoi(v);
		else if (!strcmp(line, "start_unix"))
			st->start_unix = atof(v);
		else if (!strcmp(line, "version"))
			copy_value(st->version, sizeof(st->version), v);
		else if (!strcmp(line, "iface"))
			copy_value(st->iface, sizeof(st->iface), v);
		else if (!strcmp(line, "mode"))
			copy_value(st->mode, sizeof(st->mode), v);
		else if (!strcmp(line, "actuator"))
			copy_value(st->actuator, sizeof(st->actuator), v);
		else if (!strcmp(line, "policy"))
			copy_value(st->policy, sizeof(st->policy), v);
		else if (!strcmp(line, "flows"))
			st->flows = strtoull(v, NULL, 10);
		else if (!strcmp(line, "flows_seen"))
			st->flows_seen = strtoull(v, NULL, 10);
		else if (!strcmp(line, "windows"))
			st->windows = strtoull(v, NULL, 10);
		else if (!strcmp(line, "decisions"))
			st->decisions = strtoull(v, NULL, 10);
		else if (!strcmp(line, "reversals"))
			st->reversals = strtoull(v, NULL, 10);
		else if (!strcmp(line, "reversals_held"))
			st->reversals_held = strtoull(v, NULL, 10);
		else if (!strcmp(line, "last_error"))
			copy_value(st->last_error, sizeof(st->last_error), v);
		else if (!strcmp(line, "drift") && st->n_drift < MAX_MODELS) {
			int n = st->n_drift;

			/* ROLE PSI WINDOWS HANDED_OVER HANDOVERS RETURNS TOP THRESHOLD */
			if (sscanf(v, "%15s %lf %u %d %llu %llu %255s %lf", st->drift[n].role, &st->drift[n].psi,
				   &st->drift[n].windows, &st->drift[n].handed_over, &st->drift[n].handovers,
				   &st->drift[n].returns, st->drift[n].top, &st->drift[n].threshold) == 8)
				st->n_drift++;
		} else if (!strcmp(line, "anomaly")) {
			/* HANDOVERS RETURNS FLOWS */
			st->have_anomaly = sscanf(v, "%llu %llu %u", &st->anomaly_handovers, &st->anomaly_returns,
						  &st->anomaly_flows) == 3;
		} else if (!strcmp(line, "model") && st->n_models < MAX_MODELS) {
			int n = st->n_models, used = 0;

			/* ROLE SHA LOADED_UNIX PATH (the path is the rest of the line) */
			if (sscanf(v, "%15s %64s %lf %n", st->model[n].role, st->model[n].sha256,
				   &st->model[n].loaded_unix, &used) == 3 && used > 0) {
				copy_value(st->model[n].path, sizeof(st->model[n].path), v + used);
				st->n_models++;
			}
		}
	}
	fclose(f);
	return st->pid > 0;
}

static int open_pinned(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

/* The pinned maps' figures; the heartbeat only when reflexd writes one (it decides). */
static void health_read(const char *pin_dir, const struct status *st, struct health *h)
{
	struct reflex_config cfg;
	uint64_t beat;
	uint32_t zero = 0;
	DIR *dir;
	struct dirent *de;
	int fd;

	fd = open_pinned(pin_dir, "counters");
	if (fd >= 0) {
		h->have_counters = true;
		for (int i = 0; i < CNT_MAX; i++)
			h->counters[i] = bpf_counter_sum(fd, i);
		close(fd);
	}
	h->heartbeat_deadline_s = REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS / 1e9;
	fd = open_pinned(pin_dir, "reflex_config");
	if (fd >= 0) {
		if (bpf_map_lookup_elem(fd, &zero, &cfg) == 0 && cfg.heartbeat_deadline_ns)
			h->heartbeat_deadline_s = cfg.heartbeat_deadline_ns / 1e9;
		close(fd);
	}
	fd = open_pinned(pin_dir, "heartbeat");
	if (fd >= 0) {
		if (strcmp(st->mode, "observe") && bpf_map_lookup_elem(fd, &zero, &beat) == 0 && beat) {
			h->have_heartbeat = true;
			h->heartbeat_age_s = clock_s(CLOCK_MONOTONIC) - beat / 1e9;
		}
		close(fd);
	}
	dir = opendir(pin_dir);
	while (dir && (de = readdir(dir)) && h->n_maps < MAX_MAPS) {
		if (de->d_name[0] == '.')
			continue;
		fd = open_pinned(pin_dir, de->d_name);
		if (fd < 0)
			continue;
		if (bpf_map_pressure(fd, &h->maps[h->n_maps]))
			h->n_maps++;
		close(fd);
	}
	if (dir)
		closedir(dir);
}

/* tc_flows' entries, counted after the counters were read; false without the map. */
static bool tc_flows_entries(const struct health *h, uint64_t *entries)
{
	for (int i = 0; i < h->n_maps; i++) {
		if (!strcmp(h->maps[i].name, "tc_flows")) {
			*entries = h->maps[i].entries;
			return true;
		}
	}
	return false;
}

static void print_text(const struct status *st, const struct health *h, const char *pin_dir)
{
	static const char *const names[] = REFLEX_COUNTER_NAMES;
	double now = clock_s(CLOCK_REALTIME);
	uint64_t tc_entries;

	printf("reflexd:    %s (pid %d, %s)\n", h->problem ? h->problem : "healthy", st->pid, st->version);
	printf("uptime:     %.0f s\n", now - st->start_unix);
	printf("interface:  %s, pinned under %s\n", st->iface, pin_dir);
	printf("mode:       %s, actuator %s, policy %s\n", st->mode, st->actuator, st->policy);
	for (int i = 0; i < st->n_models; i++)
		printf("model:      %-8s %s sha256 %.16s... loaded %.0f s ago\n", st->model[i].role, st->model[i].path,
		       st->model[i].sha256, now - st->model[i].loaded_unix);
	for (int i = 0; i < st->n_drift; i++)
		printf("drift:      %-8s PSI %.3f over %u windows (threshold %.3f%s), %s (%llu hand-overs, %llu returns); "
		       "most drifted %s\n",
		       st->drift[i].role, st->drift[i].psi, st->drift[i].windows, st->drift[i].threshold,
		       st->drift[i].threshold > 0 ? "" : ": never hands over",
		       st->drift[i].handed_over ? "HANDED OVER to the heuristic" : "model decides",
		       st->drift[i].handovers, st->drift[i].returns, st->drift[i].top);
	if (st->have_anomaly)
		printf("anomaly:    %u flows decided by the heuristic for their anomaly score (%llu hand-overs, %llu returns)\n",
		       st->anomaly_flows, st->anomaly_handovers, st->anomaly_returns);
	if (h->have_heartbeat)
		printf("heartbeat:  %.3f s ago (deadline %.3f s)\n", h->heartbeat_age_s, h->heartbeat_deadline_s);
	else
		printf("heartbeat:  none (reflexd decides nothing)\n");
	printf("flows:      %llu tracked, %llu seen\n", st->flows, st->flows_seen);
	printf("decisions:  %llu, reversals %llu (%llu held back), windows %llu\n", st->decisions, st->reversals,
	       st->reversals_held, st->windows);
	if (h->have_counters) {
		printf("counters:  ");
		for (int i = 0; i < CNT_MAX; i++)
			printf(" %s=%llu", names[i], (unsigned long long)h->counters[i]);
		if (tc_flows_entries(h, &tc_entries))
			printf(" tc_flow_evicted=%llu",
			       (unsigned long long)tc_flow_evicted(h->counters[CNT_TC_FLOW_NEW], tc_entries));
		printf("\n");
	}
	for (int i = 0; i < h->n_maps; i++)
		printf("map:        %-16s %u / %u entries (%.1f %%)\n", h->maps[i].name, h->maps[i].entries,
		       h->maps[i].max_entries, 100.0 * h->maps[i].entries / (h->maps[i].max_entries ?: 1));
	printf("last error: %s\n", st->last_error[0] ? st->last_error : "none");
}

static void json_key_string(const char *key, const char *value, bool comma)
{
	printf("%s\"%s\": ", comma ? ", " : "", key);
	json_write_string(stdout, value, strlen(value));
}

static void print_json(const struct status *st, const struct health *h, const char *pin_dir)
{
	static const char *const names[] = REFLEX_COUNTER_NAMES;
	double now = clock_s(CLOCK_REALTIME);
	uint64_t tc_entries;

	printf("{\"healthy\": %s", h->problem ? "false" : "true");
	json_key_string("problem", h->problem ? h->problem : "", true);
	printf(", \"pid\": %d", st->pid);
	json_key_string("version", st->version, true);
	printf(", \"uptime_s\": ");
	json_write_number(stdout, now - st->start_unix);
	json_key_string("iface", st->iface, true);
	json_key_string("pin_dir", pin_dir, true);
	json_key_string("mode", st->mode, true);
	json_key_string("actuator", st->actuator, true);
	json_key_string("policy", st->policy, true);
	printf(", \"models\": [");
	for (int i = 0; i < st->n_models; i++) {
		printf("%s{", i ? ", " : "");
		json_key_string("role", st->model[i].role, false);
		json_key_string("path", st->model[i].path, true);
		json_key_string("sha256", st->model[i].sha256, true);
		printf(", \"age_s\": ");
		json_write_number(stdout, now - st->model[i].loaded_unix);
		printf("}");
	}
	printf("], \"drift\": [");
	for (int i = 0; i < st->n_drift; i++) {
		printf("%s{", i ? ", " : "");
		json_key_string("role", st->drift[i].role, false);
		printf(", \"psi\": ");
		json_write_number(stdout, st->drift[i].psi);
		printf(", \"threshold\": ");
		json_write_number(stdout, st->drift[i].threshold);
		printf(", \"windows\": %u, \"handed_over\": %s, \"handovers\": %llu, \"returns\": %llu",
		       st->drift[i].windows, st->drift[i].handed_over ? "true" : "false", st->drift[i].handovers,
		       st->drift[i].returns);
		json_key_string("most_drifted", st->drift[i].top, true);
		printf("}");
	}
	printf("], \"anomaly\": ");
	if (st->have_anomaly)
		printf("{\"flows\": %u, \"handovers\": %llu, \"returns\": %llu}", st->anomaly_flows,
		       st->anomaly_handovers, st->anomaly_returns);
	else
		printf("null");
	printf(", \"heartbeat_age_s\": ");
	if (h->have_heartbeat)
		json_write_number(stdout, h->heartbeat_age_s);
	else
		printf("null");
	printf(", \"flows\": %llu, \"flows_seen\": %llu, \"decisions\": %llu, \"reversals\": %llu, "
	       "\"reversals_held\": %llu, \"windows\": %llu, \"counters\": {",
	       st->flows, st->flows_seen, st->decisions, st->reversals, st->reversals_held, st->windows);
	for (int i = 0; h->have_counters && i < CNT_MAX; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", names[i], (unsigned long long)h->counters[i]);
	if (h->have_counters && tc_flows_entries(h, &tc_entries))
		printf(", \"tc_flow_evicted\": %llu",
		       (unsigned long long)tc_flow_evicted(h->counters[CNT_TC_FLOW_NEW], tc_entries));
	printf("}, \"maps\": {");
	for (int i = 0; i < h->n_maps; i++)
		printf("%s\"%s\": {\"entries\": %u, \"max_entries\": %u}", i ? ", " : "", h->maps[i].name,
		       h->maps[i].entries, h->maps[i].max_entries);
	printf("}");
	json_key_string("last_error", st->last_error, true);
	printf("}\n");
}

/* An edge router's reflexd writes no status file: its view for reflexctl paths
 * (renewed every second) says as much. -1 when there is none. */
static int router_status(const char *pin_dir, bool json)
{
	static const char *const names[] = ROUTER_COUNTER_NAMES;
	static struct router_view v;
	char path[PATH_MAX], *text;
	struct reflex_err err = { 0 };
	const char *problem = NULL;
	struct stat sb;
	size_t len;
	FILE *f;
	int up = 0;

	pins_run_path(pin_dir, "paths", path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return -1;
	text = malloc(1 << 22);
	len = text ? fread(text, 1, (1 << 22) - 1, f) : 0;
	if (!text || fstat(fileno(f), &sb) || router_view_parse_json(text, len, &v, &err)) {
		fclose(f);
		free(text);
		return -1;
	}
	fclose(f);
	free(text);
	if (!pins_owner_alive(pin_dir, v.pid))
		return -1;
	if (clock_s(CLOCK_REALTIME) - (sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9) > STATUS_STALE_S)
		problem = "paths view not renewed (main loop stuck?)";
	for (uint32_t i = 0; i < v.n_links; i++)
		up += v.link[i].link_up;
	if (json) {
		printf("{\"healthy\": %s", problem ? "false" : "true");
		json_key_string("problem", problem ? problem : "", true);
		printf(", \"pid\": %d, \"mode\": \"router\", \"uptime_s\": ", v.pid);
		json_write_number(stdout, v.uptime_s);
		json_key_string("lan", v.lan, true);
		json_key_string("pin_dir", pin_dir, true);
		printf(", \"paths\": %u, \"paths_up\": %d, \"flows\": %u, \"counters\": {", v.n_links, up,
		       v.flows_total);
		for (int i = 0; i < ROUTER_CNT_MAX; i++)
			printf("%s\"%s\": %llu", i ? ", " : "", names[i], (unsigned long long)v.counters[i]);
		printf("}}\n");
	} else {
		printf("reflexd:    %s (pid %d, edge router)\n", problem ? problem : "healthy", v.pid);
		printf("uptime:     %.0f s\n", v.uptime_s);
		printf("lan:        %s, pinned under %s\n", v.lan, pin_dir);
		for (uint32_t i = 0; i < v.n_links; i++)
			printf("path:       %-8s %s %s\n", v.link[i].path, v.link[i].iface, v.link[i].link_up ? "up" : "down");
		printf("flows:      %u\n", v.flows_total);
		printf("counters:  ");
		for (int i = 0; i < ROUTER_CNT_MAX; i++)
			printf(" %s=%llu", names[i], (unsigned long long)v.counters[i]);
		printf("\n(reflexctl paths shows the bandit per class and path)\n");
	}
	return problem ? 1 : 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexctl status [--pin-dir DIR] [--json]\n"
		     "  pid, uptime, mode, models (SHA-256, age), heartbeat age, flows, counters,\n"
		     "  map fill and the last error of the reflexd pinned under DIR (default %s).\n"
		     "  Exit 0 healthy; 1 not running, status not renewed or heartbeat stale.\n",
		REFLEX_DEFAULT_PIN_DIR);
}

int ctl_status_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct status st;
	static struct health h;
	const char *pin_dir = REFLEX_DEFAULT_PIN_DIR;
	char path[PATH_MAX];
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pin_dir = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	pins_run_path(pin_dir, "status", path, sizeof(path));
	if (!status_read(path, &st) || !pins_owner_alive(pin_dir, st.pid)) {
		int ret = router_status(pin_dir, json);

		if (ret >= 0)
			return ret;
		if (json) {
			printf("{\"healthy\": false, \"problem\": \"not running\"");
			json_key_string("pin_dir", pin_dir, true);
			printf("}\n");
		} else
			fprintf(stderr, "reflexctl: no reflexd is running for %s (%s: %s)\n", pin_dir, path,
				st.pid ? "its pid is gone" : "no status");
		return 1;
	}
	memset(&h, 0, sizeof(h));
	health_read(pin_dir, &st, &h);
	h.running = true;
	if (st.file_age_s > STATUS_STALE_S)
		h.problem = "status not renewed (main loop stuck?)";
	else if (h.have_heartbeat && h.heartbeat_age_s > h.heartbeat_deadline_s)
		h.problem = "heartbeat stale";
	if (json)
		print_json(&st, &h, pin_dir);
	else
		print_text(&st, &h, pin_dir);
	return h.problem ? 1 : 0;
}
