/* reflexd's edge-router runtime: see router.h. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "router/classify.h"
#include "lib/fileio.h"
#include "lib/pins.h"
#include "lib/ring_reader.h"
#include "router/router.h"
#include "router/router_core.h"
#include "router/router_loader.h"
#include "router/router_routes.h"
#include "router/router_view.h"

#define EXIT_RUNTIME 1
#define EXIT_SETUP 2
/* Ten beats per deadline: a reflexd that stalls briefly does not drop steering. */
#define HEARTBEAT_PERIOD_NS (ROUTER_DEFAULT_HEARTBEAT_DEADLINE_NS / 10)
#define PATH_CHECK_NS ROUTER_PATH_TICK_NS
#define VIEW_PERIOD_NS (1000ULL * 1000 * 1000)

struct router_daemon {
	const struct router_opts *opt;
	struct router_attach ra;
	struct classify_table *classes;
	struct bandit *bandit;
	struct router_core core;
	bool core_ready;
	struct ring_reader ring;
	int lan_ifindex;
	int path_ifindex[ROUTER_MAX_PATHS];
	int sock_fd; /* for SIOCGIFFLAGS in reflexd's network namespace */
	char paths_file[PATH_MAX];
	struct router_path_stats path_seen[ROUTER_MAX_PATHS]; /* totals at the last read */
	struct router_view *view;
	uint64_t start_ns;
	uint64_t decide_failures_logged;
	bool hooks_started; /* hooks->start succeeded: hooks->stop is due */
};

#define HOOK(d, name) ((d)->opt->hooks && (d)->opt->hooks->name)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ---- what the core decides, into the maps ----------------------------------------- */

static int decide(void *ctx, const struct flow_key *key, int path, enum traffic_class cls, uint64_t when_ns)
{
	struct router_daemon *d = ctx;
	struct router_decision dec = { .path = (__u32)path, .cls = (__u32)cls, .decided_ns = when_ns };

	if (bpf_map_update_elem(router_attach_decisions_fd(&d->ra), key, &dec, BPF_ANY) == 0)
		return 0;
	/* A full map leaves flows to the kernel's routing: say so, but not per flow. */
	if (d->decide_failures_logged++ == 0)
		fprintf(stderr, "reflexd: cannot write a path decision: %s (more are counted in stats)\n",
			strerror(errno));
	return -errno;
}

static void forget(void *ctx, const struct flow_key *key)
{
	struct router_daemon *d = ctx;

	if (HOOK(d, forget))
		d->opt->hooks->forget(d->opt->hooks->ctx, key);
	bpf_map_delete_elem(router_attach_wnd_caps_fd(&d->ra), key);
	bpf_map_delete_elem(router_attach_decisions_fd(&d->ra), key);
	bpf_map_delete_elem(router_attach_flows_fd(&d->ra), key);
}

static void event(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "reflexd: %s\n", msg);
}

static void next_path(void *ctx, enum traffic_class cls, int path)
{
	struct router_daemon *d = ctx;
	__u32 key = (__u32)cls, value = path >= 0 ? (__u32)path : ROUTER_PATH_NONE;

	bpf_map_update_elem(router_attach_next_path_fd(&d->ra), &key, &value, BPF_ANY);
}

/* What the class table says of a flow from its protocol and the far end's port
 * alone, for every port: the class the tc program places a new flow by. */
static int port_classes_write(struct router_daemon *d)
{
	static __u32 keys[ROUTER_PORT_CLASS_ENTRIES];
	static __u8 values[ROUTER_PORT_CLASS_ENTRIES];
	DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = ROUTER_PORT_CLASS_ENTRIES;
	int rule;

	for (__u32 i = 0; i < ROUTER_PORT_CLASS_ENTRIES; i++) {
		struct flow_facts facts = {
			.proto = i / 65536 == ROUTER_PORT_SLOT_UDP ? IPPROTO_UDP : IPPROTO_TCP,
			.dport = (uint16_t)(i % 65536),
		};

		keys[i] = i;
		values[i] = (__u8)classify_flow(d->classes, &facts, &rule);
	}
	return bpf_map_update_batch(router_attach_port_class_fd(&d->ra), keys, values, &count, &opts) ? -errno : 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct router_daemon *d = ctx;

	uint64_t now;

	if (size < sizeof(struct router_sample))
		return 0;
	now = now_ns();
	router_core_on_sample(&d->core, data, now);
	if (HOOK(d, sample))
		d->opt->hooks->sample(d->opt->hooks->ctx, data, now);
	return 0;
}

/* ---- setup -------------------------------------------------------------------------- */

static int resolve_ifaces(struct router_daemon *d, char *err, size_t len)
{
	const struct router_opts *o = d->opt;

	d->lan_ifindex = (int)if_nametoindex(o->lan);
	if (!d->lan_ifindex) {
		snprintf(err, len, "--lan: interface '%s' not found", o->lan);
		return -ENODEV;
	}
	for (int i = 0; i < o->n_paths; i++) {
		d->path_ifindex[i] = (int)if_nametoindex(o->path[i].ifname);
		if (!d->path_ifindex[i]) {
			snprintf(err, len, "--path %s: interface '%s' not found", o->path[i].name, o->path[i].ifname);
			return -ENODEV;
		}
	}
	return 0;
}

static int classes_load(struct router_daemon *d, char *err, size_t len)
{
	struct reflex_err cerr = { 0 };
	int ret;

	d->classes = calloc(1, sizeof(*d->classes));
	if (!d->classes) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	if (!d->opt->classes_path) {
		classify_table_default(d->classes);
		return 0;
	}
	ret = classify_table_load(d->classes, d->opt->classes_path, &cerr);
	if (ret)
		snprintf(err, len, "%s", cerr.msg);
	return ret;
}

static int bandit_setup(struct router_daemon *d, char *err, size_t len)
{
	d->bandit = bandit_new(&d->opt->bandit);
	if (!d->bandit) {
		if (errno == EINVAL)
			bandit_config_check(&d->opt->bandit, err, len);
		else
			snprintf(err, len, "out of memory");
		return -errno;
	}
	for (int i = 0; i < d->opt->n_paths; i++) {
		int ret = bandit_add_path(d->bandit, d->opt->path[i].name);

		if (ret < 0) {
			snprintf(err, len, "--path %s: %s", d->opt->path[i].name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Strict reverse-path filtering on an uplink drops the answers of flows steered off
 * the main table's default route: say so (the kernel takes the higher of all/IF). */
static int sysctl_int(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void rp_filter_check(const char *ifname)
{
	char path[128];
	int all = sysctl_int("/proc/sys/net/ipv4/conf/all/rp_filter"), own;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	own = sysctl_int(path);
	if ((all > own ? all : own) == 1)
		fprintf(stderr, "reflexd: warning: strict rp_filter on %s drops answers of flows steered off the "
				"default route: set net.ipv4.conf.%s.rp_filter=2\n", ifname, ifname);
}

/* Per path and family with a next hop: the default route in the path's table, then
 * the rule that sends the path's mark there. */
static int routes_setup(struct router_daemon *d, char *err, size_t len)
{
	const struct router_opts *o = d->opt;

	for (int i = 0; i < o->n_paths; i++) {
		const struct router_path *p = &o->path[i];

		for (int v6 = 0; v6 < 2; v6++) {
			struct router_route route = { .kind = ROUTER_ROUTE_DEFAULT, .family = v6 ? AF_INET6 : AF_INET,
						      .table = ROUTER_TABLE_BASE + (uint32_t)i };
			struct router_route rule = { .kind = ROUTER_ROUTE_RULE, .family = route.family,
						     .table = route.table, .priority = route.table,
						     .mark = router_path_mark(o, i), .mask = o->mark_mask };
			int ret;

			if (!(v6 ? p->has_nexthop6 : p->has_nexthop4))
				continue;
			if (v6)
				route.gateway = p->nexthop6;
			else
				memcpy(&route.gateway, &p->nexthop4, sizeof(p->nexthop4));
			snprintf(route.ifname, sizeof(route.ifname), "%s", p->ifname);
			ret = router_attach_route(&d->ra, &route, err, len);
			if (!ret)
				ret = router_attach_route(&d->ra, &rule, err, len);
			if (ret)
				return ret;
		}
		if (p->has_nexthop4)
			rp_filter_check(p->ifname);
	}
	return 0;
}

static int bpf_setup(struct router_daemon *d, char *err, size_t len)
{
	const struct router_opts *o = d->opt;
	struct router_path_entry paths[ROUTER_MAX_PATHS] = { 0 };
	struct reflex_config cfg = {
		.sample_interval_ns = o->sample_interval_ns,
		.flush_threshold = o->flush_threshold,
		.max_batch_delay_us = o->max_batch_delay_us,
		.heartbeat_deadline_ns = ROUTER_DEFAULT_HEARTBEAT_DEADLINE_NS,
	};
	int ret;

	for (int i = 0; i < o->n_paths; i++) {
		paths[i].ifindex = (__u32)d->path_ifindex[i];
		paths[i].mark = router_path_mark(o, i);
		paths[i].mark_mask = o->mark_mask;
		paths[i].families = (o->path[i].has_nexthop4 ? ROUTER_FAMILY_IPV4 : 0) |
				    (o->path[i].has_nexthop6 ? ROUTER_FAMILY_IPV6 : 0);
	}
	ret = router_attach_load(&d->ra, o->pin_dir, &cfg, d->lan_ifindex, paths, o->n_paths, err, len);
	if (ret)
		return ret;
	ret = router_attach_heartbeat(&d->ra, now_ns());
	if (!ret)
		ret = port_classes_write(d);
	if (ret) {
		snprintf(err, len, "cannot write the router's class and heartbeat maps: %s", strerror(-ret));
		return ret;
	}
	ret = routes_setup(d, err, len);
	if (!ret)
		ret = router_attach_iface(&d->ra, o->lan, d->lan_ifindex, err, len);
	for (int i = 0; !ret && i < o->n_paths; i++)
		ret = router_attach_iface(&d->ra, o->path[i].ifname, d->path_ifindex[i], err, len);
	if (ret)
		return ret;
	ret = ring_reader_init(&d->ring);
	if (!ret)
		ret = ring_reader_add(&d->ring, router_attach_events_fd(&d->ra), on_record, d);
	if (ret)
		snprintf(err, len, "cannot open the router ring buffer: %s", strerror(-ret));
	return ret;
}

static int setup(struct router_daemon *d)
{
	const struct router_opts *o = d->opt;
	struct router_core_ops ops = { .decide = decide, .forget = forget, .event = event, .next_path = next_path };
	struct reflex_err lerr = { 0 };
	char err[512] = "";
	int ret;

	ret = router_opts_check(o, &lerr);
	if (!ret && pins_preflight(&lerr))
		ret = -EPERM;
	if (ret)
		snprintf(err, sizeof(err), "%s", lerr.msg);
	if (!ret)
		ret = resolve_ifaces(d, err, sizeof(err));
	if (!ret)
		ret = classes_load(d, err, sizeof(err));
	if (!ret)
		ret = bandit_setup(d, err, sizeof(err));
	if (!ret) {
		ret = router_cleanup_stale(o->pin_dir, err, sizeof(err));
		if (ret > 0)
			fprintf(stderr, "reflexd: removed what a previous reflexd left in %s\n", o->pin_dir);
		ret = ret > 0 ? 0 : ret;
	}
	if (!ret)
		ret = bpf_setup(d, err, sizeof(err));
	if (!ret) {
		d->view = calloc(1, sizeof(*d->view));
		d->sock_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (!d->view || d->sock_fd < 0) {
			snprintf(err, sizeof(err), "cannot set up: %s", strerror(errno));
			ret = -errno;
		}
	}
	if (ret) {
		fprintf(stderr, "reflexd: %s\n", err[0] ? err : strerror(-ret));
		return ret;
	}
	d->start_ns = now_ns();
	router_core_init(&d->core, d->bandit, d->classes, o->reward_interval_ns, &ops, d, d->start_ns);
	d->core.move_flows = o->move_flows;
	for (int i = 0; i < o->n_paths; i++)
		router_core_set_nexthops(&d->core, i, o->path[i].has_nexthop4, o->path[i].has_nexthop6);
	d->core_ready = true;
	router_core_publish_next_paths(&d->core);
	pins_run_path(o->pin_dir, "paths", d->paths_file, sizeof(d->paths_file));
	if (HOOK(d, start)) {
		ret = o->hooks->start(o->hooks->ctx, router_attach_wnd_caps_fd(&d->ra), err, sizeof(err));
		if (ret) {
			fprintf(stderr, "reflexd: %s\n", err[0] ? err : strerror(-ret));
			return ret;
		}
		d->hooks_started = true;
	}
	return 0;
}

/* ---- the loop ------------------------------------------------------------------------- */

/* SIGHUP: the classes file again; one that does not load leaves the table as it was. */
static void classes_reload(struct router_daemon *d)
{
	struct classify_table *fresh;
	struct reflex_err err = { 0 };

	if (!d->opt->classes_path) {
		fprintf(stderr, "reflexd: SIGHUP: no --classes file to reload (the built-in table stays)\n");
		return;
	}
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh || classify_table_load(fresh, d->opt->classes_path, &err)) {
		fprintf(stderr, "reflexd: SIGHUP: %s; the class table stays as it was\n", fresh ? err.msg : "out of memory");
		free(fresh);
		return;
	}
	*d->classes = *fresh;
	free(fresh);
	if (port_classes_write(d))
		fprintf(stderr, "reflexd: SIGHUP: cannot write router_port_class: %s\n", strerror(errno));
	router_core_publish_next_paths(&d->core);
	fprintf(stderr, "reflexd: SIGHUP: reloaded %s (%u rules)\n", d->opt->classes_path, d->classes->n_rules);
}

static bool link_up(struct router_daemon *d, const char *ifname)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(d->sock_fd, SIOCGIFFLAGS, &ifr) != 0)
		return false; /* gone counts as down */
	return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
}

static void percpu_sum(int fd, __u32 key, size_t value_size, uint64_t *out, size_t n_fields);

/* Link state and the per-path counters' growth, into the core. */
static void paths_check(struct router_daemon *d, uint64_t now)
{
	for (int i = 0; i < d->opt->n_paths; i++) {
		struct router_path_stats ps, *seen = &d->path_seen[i];

		router_core_set_link(&d->core, i, link_up(d, d->opt->path[i].ifname), now);
		percpu_sum(router_attach_path_stats_fd(&d->ra), (__u32)i, sizeof(ps), (uint64_t *)&ps,
			   sizeof(ps) / sizeof(uint64_t));
		router_core_add_path_traffic(&d->core, i, ps.sent_packets - seen->sent_packets,
					     ps.retrans_packets - seen->retrans_packets,
					     ps.delivered_bytes - seen->delivered_bytes);
		*seen = ps;
	}
}

static void percpu_sum(int fd, __u32 key, size_t value_size, uint64_t *out, size_t n_fields)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *values;

	memset(out, 0, n_fields * sizeof(*out));
	if (ncpu <= 0 || !(values = calloc((size_t)ncpu, value_size)))
		return;
	if (bpf_map_lookup_elem(fd, &key, values) == 0)
		for (int c = 0; c < ncpu; c++)
			for (size_t f = 0; f < n_fields; f++)
				out[f] += values[(size_t)c * (value_size / sizeof(uint64_t)) + f];
	free(values);
}

static int flow_bytes_desc(const void *a, const void *b)
{
	const struct router_flow_view *fa = a, *fb = b;
	uint64_t ta = fa->bytes_up + fa->bytes_down, tb = fb->bytes_up + fb->bytes_down;

	return ta < tb ? 1 : ta > tb ? -1 : strcmp(fa->flow, fb->flow);
}

static void flow_view_fill(struct router_daemon *d, const struct router_flow_state *f, uint64_t now,
			   struct router_flow_view *fv)
{
	memset(fv, 0, sizeof(*fv));
	flow_key_format(&f->key, fv->flow, sizeof(fv->flow));
	fv->cls = f->cls;
	if (f->rule >= 0 && (uint32_t)f->rule < d->classes->n_rules)
		snprintf(fv->rule, sizeof(fv->rule), "%s", d->classes->rule[f->rule].name);
	if (f->path >= 0)
		snprintf(fv->path, sizeof(fv->path), "%s", bandit_path_name(d->bandit, f->path));
	fv->closed = f->closed;
	fv->from_start = f->from_start;
	fv->moves = f->moves;
	fv->rtt_us = f->srtt_us;
	fv->path_rtt_us = f->path_rtt_us;
	fv->lan_rtt_min_us = f->lan_rtt_min_us;
	fv->loss_rate = f->loss_rate;
	fv->throughput_bps = f->throughput_bps;
	fv->reward = f->reward;
	fv->rewards = f->rewards;
	fv->bytes_up = f->total[ROUTER_DIR_UP].bytes;
	fv->bytes_down = f->total[ROUTER_DIR_DOWN].bytes;
	fv->retrans_packets = f->total[ROUTER_DIR_UP].retrans_packets + f->total[ROUTER_DIR_DOWN].retrans_packets;
	fv->age_ms = now > f->first_ns ? (now - f->first_ns) / 1000000 : 0;
	fv->idle_ms = now > f->last_ns ? (now - f->last_ns) / 1000000 : 0;
	fv->handshake = f->handshake;
	for (int dir = 0; dir < ROUTER_DIR_MAX; dir++) {
		fv->delivery_rate_bps[dir] = f->delivery_rate_bps[dir];
		fv->wnd_enforced[dir] = f->wnd_enforced[dir];
	}
	if (HOOK(d, flow_view))
		d->opt->hooks->flow_view(d->opt->hooks->ctx, &f->key, fv);
}

/* A hash's entries, by walking its keys (once a second: a few ms at 16k entries). */
static void map_fill(int fd, struct router_map_fill *fill)
{
	struct bpf_map_info info = { 0 };
	__u32 info_len = sizeof(info);
	unsigned char key[64], next[64];
	void *prev = NULL;

	memset(fill, 0, sizeof(*fill));
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len) || info.key_size > sizeof(key))
		return;
	fill->max_entries = info.max_entries;
	while (fill->entries < info.max_entries && bpf_map_get_next_key(fd, prev, next) == 0) {
		fill->entries++;
		memcpy(key, next, info.key_size);
		prev = key;
	}
}

static void view_fill(struct router_daemon *d, uint64_t now)
{
	struct router_view *v = d->view;
	const struct router_flow_state *f, *tmp;
	struct router_flow_view fv;

	memset(v, 0, sizeof(*v));
	v->pid = (int)getpid();
	snprintf(v->lan, sizeof(v->lan), "%s", d->opt->lan);
	v->now_ns = now;
	v->uptime_s = (now - d->start_ns) / 1e9;
	bandit_snapshot(d->bandit, now, &v->bandit);
	v->n_links = (uint32_t)d->opt->n_paths;
	for (int i = 0; i < d->opt->n_paths; i++) {
		const struct router_path *p = &d->opt->path[i];
		struct router_link_view *l = &v->link[i];

		snprintf(l->path, sizeof(l->path), "%s", p->name);
		snprintf(l->iface, sizeof(l->iface), "%s", p->ifname);
		if (p->has_nexthop4)
			inet_ntop(AF_INET, &p->nexthop4, l->nexthop4, sizeof(l->nexthop4));
		if (p->has_nexthop6)
			inet_ntop(AF_INET6, &p->nexthop6, l->nexthop6, sizeof(l->nexthop6));
		l->link_up = !d->core.path[i].link_down;
		percpu_sum(router_attach_path_stats_fd(&d->ra), (__u32)i, sizeof(struct router_path_stats),
			   (uint64_t *)&l->stats, sizeof(l->stats) / sizeof(uint64_t));
		l->last_failover_ns = d->core.path[i].last_failover_ns;
		l->last_failover_flows = d->core.path[i].last_failover_flows;
	}
	v->flows_total = d->core.n_flows;
	/* Keep the largest: fill up, then replace the smallest whenever a larger comes. */
	HASH_ITER(hh, d->core.flows, f, tmp) {
		flow_view_fill(d, f, now, &fv);
		if (v->n_flows < ROUTER_VIEW_MAX_FLOWS) {
			v->flow[v->n_flows++] = fv;
			if (v->n_flows == ROUTER_VIEW_MAX_FLOWS)
				qsort(v->flow, v->n_flows, sizeof(v->flow[0]), flow_bytes_desc);
		} else if (flow_bytes_desc(&fv, &v->flow[ROUTER_VIEW_MAX_FLOWS - 1]) < 0) {
			v->flow[ROUTER_VIEW_MAX_FLOWS - 1] = fv;
			qsort(v->flow, v->n_flows, sizeof(v->flow[0]), flow_bytes_desc);
		}
	}
	qsort(v->flow, v->n_flows, sizeof(v->flow[0]), flow_bytes_desc);
	v->stats = d->core.stats;
	for (int i = 0; i < ROUTER_CNT_MAX; i++)
		percpu_sum(router_attach_counters_fd(&d->ra), (__u32)i, sizeof(uint64_t), &v->counters[i], 1);
	map_fill(router_attach_flows_fd(&d->ra), &v->maps[ROUTER_VIEW_MAP_FLOWS]);
	map_fill(router_attach_decisions_fd(&d->ra), &v->maps[ROUTER_VIEW_MAP_DECISIONS]);
	map_fill(router_attach_timestamps_fd(&d->ra), &v->maps[ROUTER_VIEW_MAP_TIMESTAMPS]);
	map_fill(router_attach_wnd_caps_fd(&d->ra), &v->maps[ROUTER_VIEW_MAP_WND_CAPS]);
}

/* Replaced whole (temporary file + rename): a reader never sees half a table. */
static void view_write(struct router_daemon *d, uint64_t now)
{
	struct reflex_err err = { 0 };
	struct fileio_atomic out;

	view_fill(d, now);
	if (pins_run_dir_create() || fileio_atomic_open(&out, d->paths_file, 0644, &err))
		return;
	if (router_view_print_json(d->view, out.f))
		fileio_atomic_abort(&out);
	else
		fileio_atomic_commit(&out, &err);
}

static int ring_poll(struct router_daemon *d)
{
	struct pollfd pfd = { .fd = ring_reader_epoll_fd(&d->ring), .events = POLLIN };
	uint32_t delay_us = d->opt->max_batch_delay_us;
	struct timespec timeout = { .tv_sec = delay_us / 1000000, .tv_nsec = (delay_us % 1000000) * 1000L };
	int ret;

	ret = ppoll(&pfd, 1, &timeout, NULL);
	if (ret < 0 && errno != EINTR)
		return -errno;
	ret = ring_reader_consume(&d->ring);
	return ret < 0 && ret != -EINTR ? ret : 0;
}

static int loop(struct router_daemon *d)
{
	const struct router_opts *o = d->opt;
	uint64_t deadline = o->duration_s > 0 ? d->start_ns + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
	uint64_t last_beat = 0, last_paths = 0, last_view = 0;
	int ret = 0;

	while (!(o->stop && *o->stop)) {
		uint64_t now;

		ret = ring_poll(d);
		if (ret) {
			fprintf(stderr, "reflexd: router ring buffer: %s\n", strerror(-ret));
			break;
		}
		now = now_ns();
		if (now - last_beat >= HEARTBEAT_PERIOD_NS) {
			if (router_attach_heartbeat(&d->ra, now))
				fprintf(stderr, "reflexd: cannot write the heartbeat: %s\n", strerror(errno));
			last_beat = now;
		}
		if (o->reload && *o->reload) {
			*o->reload = 0;
			classes_reload(d);
			if (HOOK(d, reload))
				o->hooks->reload(o->hooks->ctx);
		}
		if (o->promote && *o->promote) {
			*o->promote = 0;
			if (HOOK(d, promote))
				o->hooks->promote(o->hooks->ctx);
			else
				fprintf(stderr, "reflexd: SIGUSR1: the router has no shadow mode to leave\n");
		}
		if (HOOK(d, tick))
			o->hooks->tick(o->hooks->ctx, now);
		if (now - last_paths >= PATH_CHECK_NS) {
			paths_check(d, now);
			last_paths = now;
		}
		router_core_tick(&d->core, now);
		if (now - last_view >= VIEW_PERIOD_NS) {
			view_write(d, now);
			last_view = now;
		}
		if (now >= deadline)
			break;
	}
	return ret ? EXIT_RUNTIME : 0;
}

static void summary(struct router_daemon *d)
{
	const struct router_core_stats *s = &d->core.stats;

	fprintf(stderr, "reflexd: router ran %.1f s: %llu records, %llu flows (%llu placed, %llu adopted, "
			"%llu unsteered), %llu rewards, %llu reclassified, %llu paths failed, %llu flows moved, "
			"%llu decision errors\n",
		(now_ns() - d->start_ns) / 1e9, (unsigned long long)s->records, (unsigned long long)s->flows_seen,
		(unsigned long long)s->placed, (unsigned long long)s->adopted, (unsigned long long)s->unsteered,
		(unsigned long long)s->rewards, (unsigned long long)s->reclassified,
		(unsigned long long)s->paths_failed, (unsigned long long)s->failovers,
		(unsigned long long)s->decide_errors);
}

static void teardown(struct router_daemon *d)
{
	if (d->hooks_started && HOOK(d, stop))
		d->opt->hooks->stop(d->opt->hooks->ctx);
	if (d->core_ready) {
		summary(d);
		router_core_free(&d->core);
	}
	if (d->paths_file[0])
		unlink(d->paths_file);
	ring_reader_free(&d->ring);
	router_attach_teardown(&d->ra);
	bandit_free(d->bandit);
	free(d->classes);
	free(d->view);
	if (d->sock_fd >= 0)
		close(d->sock_fd);
}

int router_run(const struct router_opts *opts)
{
	struct router_daemon d = { .opt = opts, .sock_fd = -1 };
	int ret;

	if (setup(&d)) {
		teardown(&d);
		return EXIT_SETUP;
	}
	fprintf(stderr, "reflexd: router on LAN %s with %d path%s (%s), pinned under %s\n", opts->lan, opts->n_paths,
		opts->n_paths == 1 ? "" : "s", bandit_mode_name(opts->bandit.mode), opts->pin_dir);
	sd_notify(0, "READY=1\nSTATUS=router attached"); /* systemd Type=notify */
	ret = loop(&d);
	sd_notify(0, "STOPPING=1");
	teardown(&d);
	fprintf(stderr, "reflexd: router detached\n");
	return ret;
}
