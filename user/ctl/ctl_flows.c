/* reflexctl flows: the live per-flow table, read from reflexd's pinned maps
 * (sock_flows for TCP state, tc_flows for traffic, summed over CPUs, and
 * cwnd_decisions for reflexd's cwnd_target: under --actuator cc nothing is clamped,
 * so the kernel's cwnd_clamp alone would not show it). */
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

#include "ctl/ctl.h"
#include "lib/flow_key.h"
#include "reflex.h"

struct flow_row {
	struct flow_key key;
	bool has_sock;
	struct sock_flow sock;
	bool has_tc;
	struct tc_counters tc;
	uint32_t cwnd_target; /* packets, 0 = none */
};

struct flow_rows {
	struct flow_row *rows;
	size_t count;
	size_t cap;
};

static struct flow_row *row_for(struct flow_rows *t, const struct flow_key *key)
{
	for (size_t i = 0; i < t->count; i++)
		if (!memcmp(&t->rows[i].key, key, sizeof(*key)))
			return &t->rows[i];
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct flow_row *rows = realloc(t->rows, cap * sizeof(*rows));

		if (!rows)
			return NULL;
		t->rows = rows;
		t->cap = cap;
	}
	memset(&t->rows[t->count], 0, sizeof(t->rows[0]));
	t->rows[t->count].key = *key;
	return &t->rows[t->count++];
}

static int open_pinned(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
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

static int read_sock_flows(int fd, struct flow_rows *t)
{
	struct flow_key key, next;
	struct flow_key *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct flow_row *row = row_for(t, &next);

		if (!row)
			return -ENOMEM;
		if (bpf_map_lookup_elem(fd, &next, &row->sock) == 0)
			row->has_sock = true;
		key = next;
		prev = &key;
	}
	return 0;
}

static int read_cwnd_decisions(int fd, struct flow_rows *t)
{
	struct flow_key key, next;
	struct flow_key *prev = NULL;
	struct cwnd_decision decision;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct flow_row *row;

		if (bpf_map_lookup_elem(fd, &next, &decision) == 0 && decision.cwnd_target) {
			row = row_for(t, &next);
			if (!row)
				return -ENOMEM;
			row->cwnd_target = decision.cwnd_target;
		}
		key = next;
		prev = &key;
	}
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

static int read_tc_flows(int fd, struct flow_rows *t)
{
	int ncpu = libbpf_num_possible_cpus();
	struct flow_key key, next;
	struct flow_key *prev = NULL;
	struct tc_flow *percpu;

	if (ncpu <= 0)
		return -EINVAL;
	percpu = calloc(ncpu, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct flow_row *row = row_for(t, &next);

		if (!row) {
			free(percpu);
			return -ENOMEM;
		}
		if (bpf_map_lookup_elem(fd, &next, percpu) == 0) {
			row->has_tc = true;
			for (int cpu = 0; cpu < ncpu; cpu++)
				counters_add(&row->tc, &percpu[cpu].total);
		}
		key = next;
		prev = &key;
	}
	free(percpu);
	return 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void print_json(const struct flow_rows *t)
{
	char name[FLOW_NAME_MAX];
	uint64_t now = monotonic_ns();

	printf("[");
	for (size_t i = 0; i < t->count; i++) {
		const struct flow_row *r = &t->rows[i];

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
		printf("}");
	}
	printf("%s]\n", t->count ? "\n" : "");
}

static void print_table(const struct flow_rows *t)
{
	char name[FLOW_NAME_MAX];

	printf("%-46s %8s %8s %8s %10s %13s %8s %12s %12s %12s\n", "flow", "srtt_us", "mdev_us", "snd_cwnd",
	       "cwnd_clamp", "cwnd_target", "retrans", "bytes_acked", "bytes_in", "bytes_out");
	for (size_t i = 0; i < t->count; i++) {
		const struct flow_row *r = &t->rows[i];

		printf("%-46s ", flow_key_format(&r->key, name, sizeof(name)));
		if (r->has_sock)
			printf("%8u %8u %8u %10u %13u %8u %12llu ", r->sock.srtt_us, r->sock.mdev_us, r->sock.snd_cwnd,
			       r->sock.cwnd_clamp, r->cwnd_target, r->sock.total_retrans,
			       (unsigned long long)r->sock.bytes_acked);
		else
			printf("%8s %8s %8s %10s %13s %8s %12s ", "-", "-", "-", "-", "-", "-", "-");
		if (r->has_tc)
			printf("%12llu %12llu\n", (unsigned long long)r->tc.bytes[FLOW_DIR_INGRESS],
			       (unsigned long long)r->tc.bytes[FLOW_DIR_EGRESS]);
		else
			printf("%12s %12s\n", "-", "-");
	}
	if (!t->count)
		printf("(no flows)\n");
}

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexctl flows [--json] [--pin-dir DIR]\n\n"
		     "Live per-flow table from a running reflexd's pinned maps: TCP state from sock_flows\n"
		     "(sockops), traffic from tc_flows (tc, summed over CPUs), and cwnd_target, the cwnd\n"
		     "reflexd decided (cwnd_clamp is the TCP_BPF_SNDCWND_CLAMP the clamp actuator applied;\n"
		     "under --actuator cc it stays 0). Default pin dir %s.\n",
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
	tc_fd = open_pinned(pin_dir, "tc_flows");
	if (tc_fd < 0)
		goto cleanup;
	/* sock_flows and cwnd_decisions exist only when reflexd watches a cgroup. */
	sock_fd = open_if_pinned(pin_dir, "sock_flows");
	decision_fd = open_if_pinned(pin_dir, "cwnd_decisions");
	if ((sock_fd >= 0 && read_sock_flows(sock_fd, &rows)) || read_tc_flows(tc_fd, &rows) ||
	    (decision_fd >= 0 && read_cwnd_decisions(decision_fd, &rows))) {
		fprintf(stderr, "reflexctl flows: reading the maps failed\n");
		goto cleanup;
	}
	if (json)
		print_json(&rows);
	else
		print_table(&rows);
	ret = 0;
cleanup:
	if (sock_fd >= 0)
		close(sock_fd);
	if (tc_fd >= 0)
		close(tc_fd);
	if (decision_fd >= 0)
		close(decision_fd);
	free(rows.rows);
	return ret;
}
