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

#include "lib/pins.h"
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

static int state_write(const struct router_attach *ra)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int ret;

	ret = pins_run_dir_create();
	if (ret)
		return ret;
	snprintf(tmp, sizeof(tmp), "%s.tmp", ra->state_path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "pid=%d\n", (int)getpid());
	for (int i = 0; i < ra->n_ifaces; i++)
		fprintf(f, "iface=%s ifindex=%d clsact_created=%d\n", ra->iface[i].name, ra->iface[i].ifindex,
			ra->iface[i].clsact_created);
	if (fclose(f) != 0 || rename(tmp, ra->state_path) != 0) {
		ret = -errno;
		unlink(tmp);
		return ret;
	}
	return 0;
}

static void tc_detach_ours(const struct router_iface *ri)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ri->ifindex, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ROUTER_TC_HANDLE, .priority = ROUTER_TC_PRIORITY);

	bpf_tc_detach(&hook, &opts);
	if (ri->clsact_created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
}

int router_cleanup_stale(const char *pin_dir, char *err, size_t len)
{
	char state_path[PATH_MAX], paths_path[PATH_MAX], line[256];
	bool had_state;
	int pid = 0;
	FILE *f;

	state_path_for(pin_dir, state_path, sizeof(state_path));
	f = fopen(state_path, "r");
	had_state = f != NULL;
	while (f && fgets(line, sizeof(line), f)) {
		struct router_iface ri = { 0 };
		char name[IF_NAMESIZE] = "";
		int created = 0;

		if (sscanf(line, "pid=%d", &pid) == 1) {
			if (pins_owner_alive(pid)) {
				fclose(f);
				snprintf(err, len, "pin directory %s belongs to a running reflexd (pid %d)", pin_dir, pid);
				return -EBUSY;
			}
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
	pins_dir_remove(pin_dir);
	unlink(state_path);
	pins_run_path(pin_dir, "paths", paths_path, sizeof(paths_path));
	unlink(paths_path);
	return had_state ? 1 : 0;
}

int router_attach_config_write(struct router_attach *ra, const struct router_config *cfg)
{
	__u32 zero = 0;

	return bpf_map__update_elem(ra->skel->maps.router_config, &zero, sizeof(zero), cfg, sizeof(*cfg), BPF_ANY);
}

int router_attach_load(struct router_attach *ra, const char *pin_dir, const struct router_config *cfg,
		       const struct router_nexthop *nexthop, int n_paths, char *err, size_t len)
{
	DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
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
	ret = router_bpf__load(ra->skel);
	if (ret) {
		snprintf(err, len, "cannot load the router BPF programs: %s", strerror(-ret));
		return ret;
	}
	ret = router_attach_config_write(ra, cfg);
	for (int i = 0; !ret && i < n_paths; i++) {
		__u32 key = i;

		ret = bpf_map__update_elem(ra->skel->maps.router_paths, &key, sizeof(key), &nexthop[i],
					   sizeof(nexthop[i]), BPF_ANY);
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

int router_attach_iface(struct router_attach *ra, const char *ifname, int ifindex, char *err, size_t len)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	struct router_iface *ri;
	struct bpf_program *prog;
	int ret;

	if (ra->n_ifaces >= ROUTER_MAX_IFACES) {
		snprintf(err, len, "too many interfaces");
		return -ENOSPC;
	}
	prog = ra->n_ifaces == 0 ? ra->skel->progs.router_lan_ingress : ra->skel->progs.router_path_ingress;
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
	{
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ROUTER_TC_HANDLE, .priority = ROUTER_TC_PRIORITY,
				    .prog_fd = bpf_program__fd(prog));

		ret = bpf_tc_attach(&hook, &opts);
	}
	if (ret == -EEXIST)
		snprintf(err, len, "a reflex router tc filter is already on %s ingress (another reflexd? "
				   "`reflexd --cleanup --pin-dir ...`)", ifname);
	else if (ret)
		snprintf(err, len, "cannot attach tc ingress on %s: %s", ifname, strerror(-ret));
	else
		ri->attached = true;
	return ret;
}

void router_attach_teardown(struct router_attach *ra)
{
	struct bpf_map *map;

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

int router_attach_path_stats_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_path_stats);
}

int router_attach_counters_fd(const struct router_attach *ra)
{
	return bpf_map__fd(ra->skel->maps.router_counters);
}
