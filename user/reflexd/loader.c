#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "reflexd/loader.h"
#include "sockops.skel.h"
#include "tc.skel.h"

#define CGROUP_LINK_PIN "sockops_link"
/* "RF": fixed so a later reflexd can find (and remove) a dead one's filters. */
#define REFLEX_TC_HANDLE 0x5246
#define REFLEX_TC_PRIORITY 0x5246

static void state_path_for(const char *pin_dir, char *out, size_t len)
{
	pins_run_path(pin_dir, "state", out, len);
}

/* ifindexes only mean something inside one network namespace. */
static unsigned long long netns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/*
 * Enters the network namespace a dead reflexd ran in, found among the named ones
 * (/run/netns, as `ip netns` makes them). Returns an fd of the namespace to return
 * to (or -2 if no switch was needed), -1 if it cannot be reached.
 */
static int netns_enter(unsigned long long ino)
{
	DIR *dir;
	struct dirent *de;
	char path[PATH_MAX];
	int back, fd;

	if (!ino || ino == netns_ino())
		return -2;
	dir = opendir("/run/netns");
	if (!dir)
		return -1;
	back = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	while ((de = readdir(dir))) {
		struct stat st;

		snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
		if (de->d_name[0] == '.' || stat(path, &st) || st.st_ino != ino)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
			close(fd);
			closedir(dir);
			return back;
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(dir);
	if (back >= 0)
		close(back);
	return -1;
}

/* Rewritten after every attach step, so a crash at any point can be undone. */
static int state_write(const struct reflex_bpf *rb)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	if (pins_run_dir_create())
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp", rb->state_path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "pid=%d\nnetns_ino=%llu\nifindex=%d\nclsact_created=%d\n", (int)getpid(),
		(unsigned long long)netns_ino(), rb->ifindex, rb->clsact_created);
	if (fclose(f) != 0 || rename(tmp, rb->state_path) != 0) {
		unlink(tmp);
		return -errno;
	}
	return 0;
}

struct stale_state {
	int pid;
	unsigned long long netns_ino;
	int ifindex;
	int clsact_created;
};

static bool state_read(const char *path, struct stale_state *st)
{
	FILE *f = fopen(path, "r");
	char line[128];

	memset(st, 0, sizeof(*st));
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "pid=%d", &st->pid) == 1 || sscanf(line, "netns_ino=%llu", &st->netns_ino) == 1 ||
		    sscanf(line, "ifindex=%d", &st->ifindex) == 1 ||
		    sscanf(line, "clsact_created=%d", &st->clsact_created) == 1)
			continue;
	}
	fclose(f);
	return true;
}

static void tc_detach_ours(int ifindex, bool destroy_clsact)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = REFLEX_TC_HANDLE, .priority = REFLEX_TC_PRIORITY);

	hook.attach_point = BPF_TC_INGRESS;
	bpf_tc_detach(&hook, &opts);
	hook.attach_point = BPF_TC_EGRESS;
	bpf_tc_detach(&hook, &opts);
	if (destroy_clsact) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
}

/* A dead reflexd's empty decision log says nothing; one with decisions is history an
 * operator may want, so it stays. */
static void run_file_remove_if_empty(const char *pin_dir, const char *suffix)
{
	char path[PATH_MAX];
	struct stat st;

	pins_run_path(pin_dir, suffix, path, sizeof(path));
	if (stat(path, &st) == 0 && st.st_size == 0)
		unlink(path);
}

int loader_cleanup_stale(const char *pin_dir, struct reflex_err *err)
{
	char state_path[PATH_MAX];
	struct stale_state st;
	bool have_state;

	state_path_for(pin_dir, state_path, sizeof(state_path));
	have_state = state_read(state_path, &st);
	if (have_state && pins_owner_alive(st.pid)) {
		reflex_err_set(err, "pin directory %s belongs to a running reflexd (pid %d)", pin_dir, st.pid);
		return -EBUSY;
	}
	if (have_state && st.ifindex > 0) {
		int back = netns_enter(st.netns_ino);

		if (back == -1) {
			fprintf(stderr, "reflexd: the dead reflexd ran in network namespace %llu, which is not among "
					"/run/netns: its tc filters on ifindex %d there are left (run --cleanup inside "
					"that namespace)\n", st.netns_ino, st.ifindex);
		} else {
			tc_detach_ours(st.ifindex, st.clsact_created);
			if (back >= 0) {
				setns(back, CLONE_NEWNET);
				close(back);
			}
		}
	}
	pins_dir_remove(pin_dir);
	unlink(state_path);
	run_file_remove_if_empty(pin_dir, "decisions");
	return have_state ? 1 : 0;
}

static int pin_dir_create(const char *pin_dir, struct reflex_err *err)
{
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		reflex_err_set(err, "cannot create pin directory %s: %s", pin_dir, strerror(errno));
		return -errno;
	}
	if (chmod(pin_dir, 0700)) {
		reflex_err_set(err, "cannot chmod pin directory %s: %s", pin_dir, strerror(errno));
		return -errno;
	}
	return 0;
}

int loader_config_update(struct reflex_bpf *rb, const struct reflex_config *cfg)
{
	__u32 zero = 0;
	struct bpf_map *map = rb->tc ? rb->tc->maps.reflex_config : rb->sockops->maps.reflex_config;

	return bpf_map__update_elem(map, &zero, sizeof(zero), cfg, sizeof(*cfg), BPF_ANY);
}

int loader_open_load(struct reflex_bpf *rb, const char *pin_dir, const struct reflex_config *cfg,
		     bool want_sockops, struct reflex_err *err)
{
	DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	int ret;

	memset(rb, 0, sizeof(*rb));
	snprintf(rb->pin_dir, sizeof(rb->pin_dir), "%s", pin_dir);
	state_path_for(pin_dir, rb->state_path, sizeof(rb->state_path));
	ret = pin_dir_create(pin_dir, err);
	if (ret)
		return ret;

	rb->tc = tc_bpf__open_opts(&opts);
	if (!rb->tc) {
		ret = -errno;
		reflex_err_set(err, "cannot open the tc BPF object: %s", strerror(-ret));
		return ret;
	}
	ret = tc_bpf__load(rb->tc);
	if (ret) {
		reflex_err_set(err, "cannot load the tc BPF programs: %s", strerror(-ret));
		return ret;
	}
	if (want_sockops) {
		rb->sockops = sockops_bpf__open_opts(&opts);
		if (!rb->sockops) {
			ret = -errno;
			reflex_err_set(err, "cannot open the sockops BPF object: %s", strerror(-ret));
			return ret;
		}
		/* Load-time constants: the RTT callback runs per ACK and reads these from
		 * .rodata, not the config map. */
		rb->sockops->rodata->actuator = cfg->actuator;
		if (cfg->sample_interval_ns)
			rb->sockops->rodata->sample_interval = cfg->sample_interval_ns;
		if (cfg->heartbeat_deadline_ns)
			rb->sockops->rodata->heartbeat_deadline = cfg->heartbeat_deadline_ns;
		ret = sockops_bpf__load(rb->sockops);
		if (ret) {
			reflex_err_set(err, "cannot load the sockops BPF program: %s", strerror(-ret));
			return ret;
		}
	}
	ret = loader_config_update(rb, cfg);
	if (ret) {
		reflex_err_set(err, "cannot write the config map: %s", strerror(-ret));
		return ret;
	}
	return state_write(rb);
}

int loader_attach_cgroup(struct reflex_bpf *rb, const char *cgroup_path, struct reflex_err *err)
{
	char pin_path[PATH_MAX + 32];
	struct statfs fs;
	int cgroup_fd, ret = 0;

	cgroup_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY);
	if (cgroup_fd < 0) {
		reflex_err_set(err, "cgroup %s: %s", cgroup_path, strerror(errno));
		return -errno;
	}
	if (fstatfs(cgroup_fd, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
		reflex_err_set(err, "cgroup %s is not a cgroup v2 directory", cgroup_path);
		ret = -EINVAL;
		goto cleanup;
	}
	rb->cgroup_link = bpf_program__attach_cgroup(rb->sockops->progs.reflex_sockops, cgroup_fd);
	if (!rb->cgroup_link) {
		ret = -errno;
		rb->cgroup_link = NULL;
		reflex_err_set(err, "cannot attach sockops to cgroup %s: %s", cgroup_path, strerror(-ret));
		goto cleanup;
	}
	snprintf(pin_path, sizeof(pin_path), "%s/" CGROUP_LINK_PIN, rb->pin_dir);
	ret = bpf_link__pin(rb->cgroup_link, pin_path);
	if (ret) {
		reflex_err_set(err, "cannot pin the cgroup link at %s: %s", pin_path, strerror(-ret));
		goto cleanup;
	}
	ret = state_write(rb);
cleanup:
	close(cgroup_fd);
	return ret;
}

static int tc_attach_one(struct reflex_bpf *rb, enum bpf_tc_attach_point point, struct bpf_program *prog,
			 struct reflex_err *err)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = rb->ifindex, .attach_point = point);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = REFLEX_TC_HANDLE, .priority = REFLEX_TC_PRIORITY,
			    .prog_fd = bpf_program__fd(prog));
	int ret = bpf_tc_attach(&hook, &opts);

	if (ret == -EEXIST)
		reflex_err_set(err, "a reflex tc filter is already on ifindex %d %s (another reflexd? `reflexd --cleanup`)",
			rb->ifindex, point == BPF_TC_INGRESS ? "ingress" : "egress");
	else if (ret)
		reflex_err_set(err, "cannot attach tc %s on ifindex %d: %s", point == BPF_TC_INGRESS ? "ingress" : "egress",
			rb->ifindex, strerror(-ret));
	return ret;
}

int loader_attach_tc(struct reflex_bpf *rb, int ifindex, struct reflex_err *err)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int ret;

	rb->ifindex = ifindex;
	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST) {
		reflex_err_set(err, "cannot create the clsact qdisc on ifindex %d: %s", ifindex, strerror(-ret));
		return ret;
	}
	/* A clsact that was there before us (Cilium, an operator) stays when we leave. */
	rb->clsact_created = ret == 0;
	ret = state_write(rb);
	if (ret) {
		reflex_err_set(err, "cannot write %s: %s", rb->state_path, strerror(-ret));
		return ret;
	}
	ret = tc_attach_one(rb, BPF_TC_INGRESS, rb->tc->progs.reflex_tc_ingress, err);
	if (ret)
		return ret;
	rb->tc_ingress_attached = true;
	ret = tc_attach_one(rb, BPF_TC_EGRESS, rb->tc->progs.reflex_tc_egress, err);
	if (ret)
		return ret;
	rb->tc_egress_attached = true;
	return 0;
}

static void maps_unpin(struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
		if (bpf_map__is_pinned(map))
			bpf_map__unpin(map, NULL);
}

void loader_teardown(struct reflex_bpf *rb)
{
	if (rb->ifindex > 0 && (rb->tc_ingress_attached || rb->tc_egress_attached || rb->clsact_created))
		tc_detach_ours(rb->ifindex, rb->clsact_created);
	if (rb->cgroup_link) {
		bpf_link__unpin(rb->cgroup_link);
		bpf_link__destroy(rb->cgroup_link);
	}
	if (rb->sockops) {
		maps_unpin(rb->sockops->obj);
		sockops_bpf__destroy(rb->sockops);
	}
	if (rb->tc) {
		maps_unpin(rb->tc->obj);
		tc_bpf__destroy(rb->tc);
	}
	if (rb->pin_dir[0])
		pins_dir_remove(rb->pin_dir);
	if (rb->state_path[0])
		unlink(rb->state_path);
	memset(rb, 0, sizeof(*rb));
}

int loader_sock_events_fd(const struct reflex_bpf *rb)
{
	return rb->sockops ? bpf_map__fd(rb->sockops->maps.sock_events) : -1;
}

int loader_tc_events_fd(const struct reflex_bpf *rb)
{
	return bpf_map__fd(rb->tc->maps.tc_events);
}

int loader_counters_fd(const struct reflex_bpf *rb)
{
	return bpf_map__fd(rb->tc->maps.counters);
}

int loader_decisions_fd(const struct reflex_bpf *rb)
{
	return rb->sockops ? bpf_map__fd(rb->sockops->maps.cwnd_decisions) : -1;
}

int loader_heartbeat_fd(const struct reflex_bpf *rb)
{
	return rb->sockops ? bpf_map__fd(rb->sockops->maps.heartbeat) : -1;
}

int loader_decision_gen_fd(const struct reflex_bpf *rb)
{
	return rb->sockops ? bpf_map__fd(rb->sockops->maps.decision_gen) : -1;
}
