/* Loading and attaching the router's tc programs, and removing them: see router_loader.h. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/pins.h"
#include "lib/tc_filters.h"
#include "router/router.h"
#include "router/router_loader.h"
#include "router.skel.h"

/* "RR": fixed so that a later reflexd finds (and removes) a dead one's filters;
 * not the host programs' "RF", so both can sit on one interface. */
#define ROUTER_TC_HANDLE 0x5252
#define ROUTER_TC_PRIORITY 0x5252

static void state_path_for(const char *pin_dir, char *out, size_t len)
{
	pins_run_path(pin_dir, "router-state", out, len);
}

/* Rules, routes and interface indexes belong to a network namespace: the inode of
 * ours tells a cleanup whether it runs where they were added. */
static unsigned long long netns_id(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

static int state_write(const struct router_attach *ra)
{
	struct reflex_err err = { 0 };
	struct fileio_atomic out;
	char line[160];
	int ret;

	ret = pins_run_dir_create();
	if (!ret)
		ret = fileio_atomic_open(&out, ra->state_path, 0600, &err);
	if (ret)
		return ret;
	fprintf(out.f, "pid=%d\n", (int)getpid());
	fprintf(out.f, "netns=%llu\n", netns_id());
	for (int i = 0; i < ra->n_ifaces; i++)
		fprintf(out.f, "iface=%s ifindex=%d clsact_created=%d\n", ra->iface[i].name, ra->iface[i].ifindex,
			ra->iface[i].clsact_created);
	for (int i = 0; i < ra->n_routes; i++)
		if (router_route_format(&ra->route[i], line, sizeof(line)) == 0)
			fprintf(out.f, "%s\n", line);
	return fileio_atomic_commit(&out, &err);
}

static void tc_detach_ours(const struct router_iface *ri)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ri->ifindex, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ROUTER_TC_HANDLE, .priority = ROUTER_TC_PRIORITY);

	bpf_tc_detach(&hook, &opts);
	hook.attach_point = BPF_TC_EGRESS;
	bpf_tc_detach(&hook, &opts);
	/* Someone else's filters keep the clsact we created. */
	if (ri->clsact_created && tc_clsact_empty(ri->ifindex)) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
}

/* The state file's lines, newest last: routes and rules are removed newest first. */
#define STATE_MAX_LINES (2 + ROUTER_MAX_IFACES + ROUTER_MAX_ROUTES)

int router_cleanup_stale(const char *pin_dir, char *err, size_t len)
{
	char state_path[PATH_MAX], paths_path[PATH_MAX], line[256];
	struct router_route route[STATE_MAX_LINES];
	unsigned long long netns = 0;
	int n_routes = 0, pid = 0;
	bool had_state;
	FILE *f;

	{
		struct reflex_err check = { 0 };

		if (pins_dir_check(pin_dir, &check)) {
			snprintf(err, len, "%s", check.msg);
			return -EINVAL;
		}
	}
	state_path_for(pin_dir, state_path, sizeof(state_path));
	f = fopen(state_path, "r");
	had_state = f != NULL;
	while (f && fgets(line, sizeof(line), f)) {
		struct router_iface ri = { 0 };
		char name[IF_NAMESIZE] = "";
		int created = 0;

		if (sscanf(line, "pid=%d", &pid) == 1) {
			if (pins_owner_alive(pin_dir, pid)) {
				fclose(f);
				snprintf(err, len, "pin directory %s belongs to a running reflexd (pid %d)", pin_dir, pid);
				return -EBUSY;
			}
			continue;
		}
		if (sscanf(line, "netns=%llu", &netns) == 1) {
			if (netns != netns_id()) {
				fclose(f);
				snprintf(err, len, "%s was written in another network namespace (inode %llu, here %llu): "
						   "run the cleanup there", state_path, netns, netns_id());
				return -EXDEV;
			}
			continue;
		}
		if (n_routes < STATE_MAX_LINES && router_route_parse(line, &route[n_routes]) == 1) {
			n_routes++;
			continue;
		}
		if (sscanf(line, "iface=%15s ifindex=%d clsact_created=%d", name, &ri.ifindex, &created) != 3)
			continue;
		/* Only where the index still names that interface (same network namespace). */
		if (ri.ifindex <= 0 || !if_indextoname(ri.ifindex, ri.name) || strcmp(ri.name, name))
			continue;
		ri.clsact_created = created;
		tc_detach_ours(&ri);
	}
	if (f)
		fclose(f);
	while (n_routes-- > 0)
		router_route_del(&route[n_routes]);
	pins_dir_remove(pin_dir);
	unlink(state_path);
	pins_run_path(pin_dir, "paths", paths_path, sizeof(paths_path));
	unlink(paths_path);
	return had_state ? 1 : 0;
}

int router_attach_heartbeat(struct router_attach *ra, uint64_t now_ns)
{
	__u32 zero = 0;
	__u64 beat = now_ns;

	return bpf_map__update_elem(ra->skel->maps.heartbeat, &zero, sizeof(zero), &beat, sizeof(beat), BPF_ANY);
}

int router_attach_load(struct router_attach *ra, const char *pin_dir, const struct reflex_config *cfg,
		       int lan_ifindex, const struct router_path_entry *paths, int n_paths, char *err, size_t len)
{
	DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	__u32 zero = 0;
	int ret;

	memset(ra, 0, sizeof(*ra));
	snprintf(ra->pin_dir, sizeof(ra->pin_dir), "%s", pin_dir);
	state_path_for(pin_dir, ra->state_path, sizeof(ra->state_path));
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		ret = -errno;
		snprintf(err, len, "cannot create pin directory %s: %s", pin_dir, strerror(-ret));
		return ret;
	}
	ra->skel = router_bpf__open_opts(&opts);
	if (!ra->skel) {
		ret = -errno;
		snprintf(err, len, "cannot open the router BPF object: %s", strerror(-ret));
		return ret;
	}
	ra->skel->rodata->lan_ifindex = (__u32)lan_ifindex;
	ret = router_bpf__load(ra->skel);
	if (ret) {
		snprintf(err, len, "cannot load the router BPF programs: %s", strerror(-ret));
		return ret;
	}
	ret = bpf_map__update_elem(ra->skel->maps.reflex_config, &zero, sizeof(zero), cfg, sizeof(*cfg), BPF_ANY);
	for (int i = 0; !ret && i < n_paths; i++) {
		__u32 key = i;

		ret = bpf_map__update_elem(ra->skel->maps.router_paths, &key, sizeof(key), &paths[i], sizeof(paths[i]),
					   BPF_ANY);
	}
	for (__u32 cls = 0; !ret && cls < ROUTER_MAX_CLASSES; cls++) {
		__u32 none = ROUTER_PATH_NONE;

		ret = bpf_map__update_elem(ra->skel->maps.router_next_path, &cls, sizeof(cls), &none, sizeof(none),
					   BPF_ANY);
	}
	if (ret) {
		snprintf(err, len, "cannot write the router's config maps: %s", strerror(-ret));
		return ret;
	}
	ret = state_write(ra);
	if (ret)
		snprintf(err, len, "cannot write %s: %s", ra->state_path, strerror(-ret));
	return ret;
}

static int tc_attach_one(const struct router_iface *ri, struct bpf_program *prog, enum bpf_tc_attach_point where,
			 char *err, size_t len)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ri->ifindex, .attach_point = where);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ROUTER_TC_HANDLE, .priority = ROUTER_TC_PRIORITY,
			    .prog_fd = bpf_program__fd(prog));
	const char *side = where == BPF_TC_INGRESS ? "ingress" : "egress";
	int ret = bpf_tc_attach(&hook, &opts);

	if (ret == -EEXIST)
		snprintf(err, len, "a reflex router tc filter is already on %s %s (another reflexd? "
				   "`reflexd --cleanup --pin-dir ...`)", ri->name, side);
	else if (ret)
		snprintf(err, len, "cannot attach tc %s on %s: %s", side, ri->name, strerror(-ret));
	return ret;
}

int router_attach_iface(struct router_attach *ra, const char *ifname, int ifindex, char *err, size_t len)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	struct router_iface *ri;
	bool lan = ra->n_ifaces == 0;
	int ret;

	if (ra->n_ifaces >= ROUTER_MAX_IFACES) {
		snprintf(err, len, "too many interfaces");
		return -ENOSPC;
	}
	ri = &ra->iface[ra->n_ifaces++];
	snprintf(ri->name, sizeof(ri->name), "%s", ifname);
	ri->ifindex = ifindex;
	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST) {
		snprintf(err, len, "cannot create the clsact qdisc on %s: %s", ifname, strerror(-ret));
		return ret;
	}
	/* A clsact that was there before us (Cilium, the host reflexd) stays when we leave. */
	ri->clsact_created = ret == 0;
	ret = state_write(ra);
	if (ret) {
		snprintf(err, len, "cannot write %s: %s", ra->state_path, strerror(-ret));
		return ret;
	}
	/* Marked as attached first: a half attach is detached in teardown all the same. */
	ri->attached = true;
	if (!lan)
		return tc_attach_one(ri, ra->skel->progs.router_uplink_egress, BPF_TC_EGRESS, err, len);
	ret = tc_attach_one(ri, ra->skel->progs.router_lan_ingress, BPF_TC_INGRESS, err, len);
	if (!ret)
		ret = tc_attach_one(ri, ra->skel->progs.router_lan_egress, BPF_TC_EGRESS, err, len);
	return ret;
}

int router_attach_route(struct router_attach *ra, const struct router_route *r, char *err, size_t len)
{
	int ret;

	if (ra->n_routes >= ROUTER_MAX_ROUTES) {
		snprintf(err, len, "too many routes");
		return -ENOSPC;
	}
	ra->route[ra->n_routes++] = *r;
	ret = state_write(ra);
	if (ret) {
		ra->n_routes--;
		snprintf(err, len, "cannot write %s: %s", ra->state_path, strerror(-ret));
		return ret;
	}
	ret = router_route_add(r, err, len);
	if (ret) {
		ra->n_routes--;
		state_write(ra);
	}
	return ret;
}

void router_attach_teardown(struct router_attach *ra)
{
	struct bpf_map *map;

	/* Rules first: no packet is routed into a table while it is being emptied. */
	while (ra->n_routes > 0)
		router_route_del(&ra->route[--ra->n_routes]);
	for (int i = 0; i < ra->n_ifaces; i++)
		if (ra->iface[i].attached || ra->iface[i].clsact_created)
			tc_detach_ours(&ra->iface[i]);
	if (ra->skel) {
		bpf_object__for_each_map(map, ra->skel->obj)
			if (bpf_map__is_pinned(map))
				bpf_map__unpin(map, NULL);
		router_bpf__destroy(ra->skel);
	}
	if (ra->pin_dir[0])
		pins_dir_remove(ra->pin_dir);
	if (ra->state_path[0])
		unlink(ra->state_path);
	memset(ra, 0, sizeof(*ra));
}

int router_attach_events_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_events);
}

int router_attach_decisions_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_decisions);
}

int router_attach_flows_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_flows);
}

int router_attach_wnd_caps_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_wnd_caps);
}

int router_attach_path_stats_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_path_stats);
}

int router_attach_counters_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_counters);
}

int router_attach_timestamps_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_timestamps);
}

int router_attach_next_path_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_next_path);
}

int router_attach_port_class_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_port_class);
}
