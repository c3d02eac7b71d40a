/* reflexctl flows: the live per-flow table, read from reflexd's pinned maps
 * (sock_flows for TCP state, tc_flows for traffic, summed over CPUs, and
 * cwnd_decisions for reflexd's cwnd_target: under --actuator cc nothing is clamped,
 * so the kernel's cwnd_clamp alone would not show it), and each flow's anomaly score
 * from reflexd's status file (renewed every second). */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "ctl/ctl.h"
#include "lib/flow_key.h"
#include "lib/json_write.h"
#include "lib/pins.h"
#include "reflex.h"
#include "reflex_router.h"

/* A flow's anomaly score as reflexd's status file gives it (flow_anomaly= lines). */
struct flow_anomaly_row {
	char name[FLOW_NAME_MAX];
	double score;      /* 0..1 */
	bool heuristic;    /* the heuristic decides it for the score */
	UT_hash_handle hh;
};

struct flow_row {
	struct flow_key key;
	bool has_sock;
	struct sock_flow sock;
	bool has_tc;
	struct tc_counters tc;
	uint32_t cwnd_target; /* packets, 0 = none */
	UT_hash_handle hh;
};

/* Rows keyed by flow (uthash: one lookup per map entry, not a scan), in the order
 * the maps were read. */
struct flow_rows {
	struct flow_row *by_key;
	size_t count;
};

static struct flow_row *row_for(struct flow_rows *t, const struct flow_key *key)
{
	struct flow_row *row;

	HASH_FIND(hh, t->by_key, key, sizeof(*key), row);
	if (row)
		return row;
	row = calloc(1, sizeof(*row));
	if (!row)
		return NULL;
	row->key = *key;
	HASH_ADD(hh, t->by_key, key, sizeof(row->key), row);
	t->count++;
	return row;
}

static void rows_free(struct flow_rows *t)
{
	struct flow_row *row, *tmp;

	HASH_ITER(hh, t->by_key, row, tmp) {
		HASH_DEL(t->by_key, row);
		free(row);
	}
}

/* Read-only: reflexctl only looks, and a read-only fd cannot change what it sees. */
static int open_pinned(const char *pin_dir, const char *name)
{
	DECLARE_LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get_opts(path, &opts);
	if (fd < 0)
		fprintf(stderr, "reflexctl flows: cannot open %s: %s%s\n", path, strerror(errno),
			errno == ENOENT ? " (is reflexd running with this --pin-dir?)" : "");
	return fd;
}

static int open_if_pinned(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return access(path, F_OK) == 0 ? open_pinned(pin_dir, name) : -1;
}

static bool access_pin(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return access(path, F_OK) == 0;
}

typedef int (*entry_fn)(struct flow_rows *t, const struct flow_key *key, const void *value);

#define BATCH 256

/*
 * Every entry once, while reflexd and the kernel add and delete flows: a batch walk
 * resumes from a bucket cursor, where get_next_key on a deleted key starts over
 * from the first one (and, under churn, may never end).
 */
static int map_walk(int fd, size_t value_size, struct flow_rows *t, entry_fn fn)
{
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct flow_key *keys = calloc(BATCH, sizeof(*keys));
	char *values = calloc(BATCH, value_size);
	__u64 cursor = 0;
	bool first = true;
	int ret = 0;

	if (!keys || !values) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		__u32 count = BATCH;
		int err = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &cursor, keys, values, &count, &opts);

		if (err && errno != ENOENT) {
			ret = -errno;
			break;
		}
		for (__u32 i = 0; i < count && !ret; i++)
			ret = fn(t, &keys[i], values + (size_t)i * value_size);
		if (err || ret)
			break; /* ENOENT: that was the last batch */
		first = false;
	}
cleanup:
	free(keys);
	free(values);
	return ret;
}

static int on_sock_flow(struct flow_rows *t, const struct flow_key *key, const void *value)
{
	struct flow_row *row = row_for(t, key);

	if (!row)
		return -ENOMEM;
	memcpy(&row->sock, value, sizeof(row->sock));
	row->has_sock = true;
	return 0;
}

static int on_decision(struct flow_rows *t, const struct flow_key *key, const void *value)
{
	const struct cwnd_decision *decision = value;
	struct flow_row *row;

	if (!decision->cwnd_target)
		return 0;
	row = row_for(t, key);
	if (!row)
		return -ENOMEM;
	row->cwnd_target = decision->cwnd_target;
	return 0;
}

static void counters_add(struct tc_counters *sum, const struct tc_counters *c)
{
	for (int dir = 0; dir < FLOW_DIR_MAX; dir++) {
		sum->packets[dir] += c->packets[dir];
		sum->bytes[dir] += c->bytes[dir];
		sum->payload_bytes[dir] += c->payload_bytes[dir];
	}
	sum->size_sum += c->size_sum;
	sum->size_sq_sum += c->size_sq_sum;
}

static int tc_ncpu;

/* A per-CPU map's value is one struct per possible CPU, each 8-byte aligned. */
static int on_tc_flow(struct flow_rows *t, const struct flow_key *key, const void *value)
{
	const struct tc_flow *percpu = value;
	struct flow_row *row = row_for(t, key);

	if (!row)
		return -ENOMEM;
	row->has_tc = true;
	for (int cpu = 0; cpu < tc_ncpu; cpu++)
		counters_add(&row->tc, &percpu[cpu].total);
	return 0;
}

static int read_maps(int sock_fd, int tc_fd, int decision_fd, struct flow_rows *t)
{
	_Static_assert(sizeof(struct tc_flow) % 8 == 0, "per-CPU values are 8-byte aligned");
	tc_ncpu = libbpf_num_possible_cpus();
	if (tc_ncpu <= 0)
		return -EINVAL;
	if (sock_fd >= 0 && map_walk(sock_fd, sizeof(struct sock_flow), t, on_sock_flow))
		return -EIO;
	if (map_walk(tc_fd, (size_t)tc_ncpu * sizeof(struct tc_flow), t, on_tc_flow))
		return -EIO;
	if (decision_fd >= 0 && map_walk(decision_fd, sizeof(struct cwnd_decision), t, on_decision))
		return -EIO;
	return 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* flow_anomaly=FLOW SCORE HANDED lines (SCORE in thousandths); a missing or stale
 * file gives no scores, which the table shows as "-". */
static struct flow_anomaly_row *anomaly_read(const char *pin_dir)
{
	struct flow_anomaly_row *by_name = NULL;
	char path[PATH_MAX], line[FLOW_NAME_MAX + 64];
	FILE *f;

	pins_run_path(pin_dir, "status", path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		struct flow_anomaly_row *row, *old;
		int score, handed;

		if (strncmp(line, "flow_anomaly=", 13))
			continue;
		row = calloc(1, sizeof(*row));
		if (!row)
			break;
		if (sscanf(line + 13, "%127s %d %d", row->name, &score, &handed) != 3) {
			free(row);
			continue;
		}
		row->score = score / 1000.0;
		row->heuristic = handed;
		HASH_FIND_STR(by_name, row->name, old);
		if (old) {
			free(row);
			continue;
		}
		HASH_ADD_STR(by_name, name, row);
	}
	fclose(f);
	return by_name;
}

static void anomaly_free(struct flow_anomaly_row **by_name)
{
	struct flow_anomaly_row *row, *tmp;

	HASH_ITER(hh, *by_name, row, tmp) {
		HASH_DEL(*by_name, row);
		free(row);
	}
}

static const struct flow_anomaly_row *anomaly_of(struct flow_anomaly_row *by_name, const char *name)
{
	struct flow_anomaly_row *row;

	HASH_FIND_STR(by_name, name, row);
	return row;
}

static void print_json(const struct flow_rows *t, struct flow_anomaly_row *anomaly)
{
	char name[FLOW_NAME_MAX];
	uint64_t now = monotonic_ns();

	printf("[");
	size_t i = 0;

	for (const struct flow_row *r = t->by_key; r; r = r->hh.next, i++) {
		printf("%s\n  {\"flow\": \"%s\"", i ? "," : "", flow_key_format(&r->key, name, sizeof(name)));
		if (r->has_sock)
			printf(", \"cookie\": %llu, \"state\": %u, \"srtt_us\": %u, \"mdev_us\": %u, \"snd_cwnd\": %u, "
			       "\"snd_ssthresh\": %u, \"total_retrans\": %u, \"delivered\": %u, \"bytes_acked\": %llu, "
			       "\"bytes_received\": %llu, \"cwnd_clamp\": %u, \"cwnd_target\": %u, \"last_sample_ns\": %llu, "
			       "\"sample_age_ms\": %.1f",
			       (unsigned long long)r->sock.cookie, r->sock.state, r->sock.srtt_us, r->sock.mdev_us,
			       r->sock.snd_cwnd, r->sock.snd_ssthresh, r->sock.total_retrans, r->sock.delivered,
			       (unsigned long long)r->sock.bytes_acked, (unsigned long long)r->sock.bytes_received,
			       r->sock.cwnd_clamp, r->cwnd_target, (unsigned long long)r->sock.last_sample_ns,
			       (now - r->sock.last_sample_ns) / 1e6);
		if (r->has_tc)
			printf(", \"packets_in\": %llu, \"packets_out\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu, "
			       "\"payload_bytes_in\": %llu, \"payload_bytes_out\": %llu",
			       (unsigned long long)r->tc.packets[FLOW_DIR_INGRESS],
			       (unsigned long long)r->tc.packets[FLOW_DIR_EGRESS],
			       (unsigned long long)r->tc.bytes[FLOW_DIR_INGRESS],
			       (unsigned long long)r->tc.bytes[FLOW_DIR_EGRESS],
			       (unsigned long long)r->tc.payload_bytes[FLOW_DIR_INGRESS],
			       (unsigned long long)r->tc.payload_bytes[FLOW_DIR_EGRESS]);
		const struct flow_anomaly_row *a = anomaly_of(anomaly, name);

		if (a)
			printf(", \"anomaly\": %.3f, \"anomaly_heuristic\": %s", a->score, a->heuristic ? "true" : "false");
		printf("}");
	}
	printf("%s]\n", t->count ? "\n" : "");
}

static void print_table(const struct flow_rows *t, struct flow_anomaly_row *anomaly)
{
	char name[FLOW_NAME_MAX];

	printf("%-46s %8s %8s %8s %10s %13s %8s %12s %12s %12s %8s\n", "flow", "srtt_us", "mdev_us", "snd_cwnd",
	       "cwnd_clamp", "cwnd_target", "retrans", "bytes_acked", "bytes_in", "bytes_out", "anomaly");
	for (const struct flow_row *r = t->by_key; r; r = r->hh.next) {
		const struct flow_anomaly_row *a = anomaly_of(anomaly, flow_key_format(&r->key, name, sizeof(name)));

		printf("%-46s ", name);
		if (r->has_sock)
			printf("%8u %8u %8u %10u %13u %8u %12llu ", r->sock.srtt_us, r->sock.mdev_us, r->sock.snd_cwnd,
			       r->sock.cwnd_clamp, r->cwnd_target, r->sock.total_retrans,
			       (unsigned long long)r->sock.bytes_acked);
		else
			printf("%8s %8s %8s %10s %13s %8s %12s ", "-", "-", "-", "-", "-", "-", "-");
		if (r->has_tc)
			printf("%12llu %12llu ", (unsigned long long)r->tc.bytes[FLOW_DIR_INGRESS],
			       (unsigned long long)r->tc.bytes[FLOW_DIR_EGRESS]);
		else
			printf("%12s %12s ", "-", "-");
		/* a trailing * : the heuristic decides the flow for this score */
		if (a)
			printf("%7.3f%s\n", a->score, a->heuristic ? "*" : " ");
		else
			printf("%8s\n", "-");
	}
	if (!t->count)
		printf("(no flows)\n");
}

/* ---- a router reflexd: its forwarded flows' windows, from its view file ---------- */

static const char *const dir_names[ROUTER_DIR_MAX] = { "up", "down" };

static void print_router_json(const struct router_view *v)
{
	printf("[");
	for (uint32_t i = 0, n = 0; i < v->n_flows; i++) {
		const struct router_flow_view *f = &v->flow[i];

		for (int d = 0; d < ROUTER_DIR_MAX; d++, n++) {
			printf("%s\n  {\"flow\": ", n ? "," : "");
			json_write_string(stdout, f->flow, strlen(f->flow));
			printf(", \"dir\": \"%s\", \"path\": ", dir_names[d]);
			if (f->path[0])
				json_write_string(stdout, f->path, strlen(f->path));
			else
				printf("null");
			printf(", \"rtt_us\": %.0f, \"path_rtt_us\": %.0f, \"lan_rtt_min_us\": %.0f, "
			       "\"delivery_rate_bps\": %.0f, \"cwnd_target\": %u, \"cap_bytes\": %u, \"wnd_enforced\": %u, "
			       "\"handshake\": %s}",
			       f->rtt_us, f->path_rtt_us, f->lan_rtt_min_us, f->delivery_rate_bps[d], f->cwnd_target[d],
			       f->cap_bytes[d], f->wnd_enforced[d], f->handshake ? "true" : "false");
		}
	}
	printf("%s]\n", v->n_flows ? "\n" : "");
}

static void print_router_table(const struct router_view *v)
{
	printf("%-52s %-4s %-15s %9s %17s %11s %11s %12s %9s\n", "flow", "dir", "path", "rtt_us", "delivery_rate_bps",
	       "cwnd_target", "cap_bytes", "wnd_enforced", "handshake");
	for (uint32_t i = 0; i < v->n_flows; i++) {
		const struct router_flow_view *f = &v->flow[i];

		for (int d = 0; d < ROUTER_DIR_MAX; d++)
			printf("%-52s %-4s %-15s %9.0f %17.0f %11u %11u %12u %9s\n", f->flow, dir_names[d],
			       f->path[0] ? f->path : "-", f->rtt_us, f->delivery_rate_bps[d], f->cwnd_target[d],
			       f->cap_bytes[d], f->wnd_enforced[d], f->handshake ? "yes" : "no");
	}
	if (!v->n_flows)
		printf("(no flows)\n");
}

static int router_flows(const char *pin_dir, bool json)
{
	struct router_view *view = NULL;
	char file[PATH_MAX], *text = NULL;
	size_t len = 0;
	int ret = 1;

	pins_run_path(pin_dir, "paths", file, sizeof(file));
	if (ctl_router_view_read("reflexctl flows", file, true, &view, &text, &len) == 0) {
		if (json)
			print_router_json(view);
		else
			print_router_table(view);
		ret = 0;
	}
	free(view);
	free(text);
	return ret;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexctl flows [--json] [--pin-dir DIR]\n\n"
		     "Live per-flow table from a running reflexd's pinned maps: TCP state from sock_flows\n"
		     "(sockops), traffic from tc_flows (tc, summed over CPUs), and cwnd_target, the cwnd\n"
		     "reflexd decided (cwnd_clamp is the TCP_BPF_SNDCWND_CLAMP the clamp actuator applied;\n"
		     "under --actuator cc it stays 0). anomaly is the flow's last window's score against\n"
		     "the cwnd tree's isolation forest (0..1, above ~0.6 unlike its training windows;\n"
		     "* the heuristic decides the flow for it), from reflexd's status file. Default pin\n"
		     "dir %s.\n"
		     "On a router reflexd (--lan/--path) one row per forwarded flow and data direction\n"
		     "(up: the LAN end sends, down: the far end sends) from its view file: rtt_us (path +\n"
		     "LAN), delivery_rate_bps, the cwnd_target reflexd decided for that sender, cap_bytes\n"
		     "(router_wnd_caps) and wnd_enforced, the window the sender was last sent after\n"
		     "rewriting (handshake: no = the router did not see it, windows are left alone).\n",
		REFLEX_DEFAULT_PIN_DIR);
}

int ctl_flows_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_dir = REFLEX_DEFAULT_PIN_DIR;
	struct flow_rows rows = { 0 };
	struct flow_anomaly_row *anomaly = NULL;
	bool json = false;
	int c, sock_fd = -1, tc_fd = -1, decision_fd = -1, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'p': pin_dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "reflexctl flows: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (access_pin(pin_dir, "router_flows") && !access_pin(pin_dir, "tc_flows"))
		return router_flows(pin_dir, json);
	tc_fd = open_pinned(pin_dir, "tc_flows");
	if (tc_fd < 0)
		goto cleanup;
	/* sock_flows and cwnd_decisions exist only when reflexd watches a cgroup. */
	sock_fd = open_if_pinned(pin_dir, "sock_flows");
	decision_fd = open_if_pinned(pin_dir, "cwnd_decisions");
	if (read_maps(sock_fd, tc_fd, decision_fd, &rows)) {
		fprintf(stderr, "reflexctl flows: reading the maps failed\n");
		goto cleanup;
	}
	anomaly = anomaly_read(pin_dir);
	if (json)
		print_json(&rows, anomaly);
	else
		print_table(&rows, anomaly);
	ret = 0;
cleanup:
	if (sock_fd >= 0)
		close(sock_fd);
	if (tc_fd >= 0)
		close(tc_fd);
	if (decision_fd >= 0)
		close(decision_fd);
	rows_free(&rows);
	anomaly_free(&anomaly);
	return ret;
}
