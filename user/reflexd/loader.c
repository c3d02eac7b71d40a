#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/bpf_imm.h"
#include "lib/fileio.h"
#include "lib/tc_filters.h"
#include "reflexd/loader.h"
#include "reflexd/unclamp.h"
#include "sockops.skel.h"
#include "tc.skel.h"

#define CGROUP_LINK_PIN "sockops_link"
/* "RF": fixed so a later reflexd can find (and remove) a dead one's filters. */
#define REFLEX_TC_HANDLE 0x5246
#define REFLEX_TC_PRIORITY 0x5246
/* A deciding reflexd beats every 50 ms; one silent for a second is not deciding. */
#define HEARTBEAT_ALIVE_NS (1000ULL * 1000 * 1000)

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
	struct reflex_err err = { 0 };
	struct fileio_atomic out;
	char ifname[IF_NAMESIZE] = "";
	int ret;

	if (pins_run_dir_create())
		return -errno;
	ret = fileio_atomic_open(&out, rb->state_path, 0600, &err);
	if (ret)
		return ret;
	if (rb->ifindex > 0)
		if_indextoname(rb->ifindex, ifname);
	fprintf(out.f, "pid=%d\nnetns_ino=%llu\nifindex=%d\niface=%s\nclsact_created=%d\n", (int)getpid(),
		(unsigned long long)netns_ino(), rb->ifindex, ifname, rb->clsact_created);
	return fileio_atomic_commit(&out, &err);
}

struct stale_state {
	int pid;
	unsigned long long netns_ino;
	int ifindex;
	char iface[IF_NAMESIZE];
	int clsact_created;
};

#define STATE_MAX_BYTES 4096

static bool state_read(const char *path, struct stale_state *st)
{
	struct reflex_err err = { 0 };
	char *text, *line, *save = NULL;
	size_t len;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = fileio_read_bounded(path, STATE_MAX_BYTES, &text, &len, &err);
	if (ret) {
		if (ret != -ENOENT)
			fprintf(stderr, "reflexd: %s\n", err.msg);
		return false;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "pid=%d", &st->pid) == 1 || sscanf(line, "netns_ino=%llu", &st->netns_ino) == 1 ||
		    sscanf(line, "ifindex=%d", &st->ifindex) == 1 || sscanf(line, "iface=%15s", st->iface) == 1 ||
		    sscanf(line, "clsact_created=%d", &st->clsact_created) == 1)
			continue;
	}
	free(text);
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
	/* Filters someone attached after us (another reflexd, Cilium, an operator)
	 * keep the clsact we created. */
	if (destroy_clsact && tc_clsact_empty(ifindex)) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
}

/* After sockops is detached (nothing can clamp again) and before the pins go (the
 * iterator needs sock_state_store): lifts the clamps of flows idle since. */
static void clamps_lift_all(const char *pin_dir)
{
	struct reflex_err err = { 0 };
	int lifted = unclamp_all(pin_dir, &err);

	if (lifted < 0)
		fprintf(stderr, "reflexd: %s: idle flows keep their clamp until their next ACK\n", err.msg);
	else if (lifted > 0)
		fprintf(stderr, "reflexd: lifted the clamp of %d idle flow%s\n", lifted, lifted == 1 ? "" : "s");
}

static void cgroup_link_pin_remove(const char *pin_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/" CGROUP_LINK_PIN, pin_dir);
	unlink(path);
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

	if (pins_dir_check(pin_dir, err))
		return -EINVAL;
	state_path_for(pin_dir, state_path, sizeof(state_path));
	have_state = state_read(state_path, &st);
	if (have_state && pins_owner_alive(pin_dir, st.pid)) {
		reflex_err_set(err, "pin directory %s belongs to a running reflexd (pid %d)", pin_dir, st.pid);
		return -EBUSY;
	}
	if (have_state) {
		int back = netns_enter(st.netns_ino);
		char ifname[IF_NAMESIZE] = "";

		if (back == -1) {
			fprintf(stderr, "reflexd: the dead reflexd ran in network namespace %llu, which is not among "
					"/run/netns: its tc filters on ifindex %d and its clamps there are left (run "
					"--cleanup inside that namespace)\n", st.netns_ino, st.ifindex);
		} else {
			cgroup_link_pin_remove(pin_dir);
			clamps_lift_all(pin_dir);
			/* An index is reused once its interface is gone: only where it still
			 * names the interface the dead reflexd attached to. */
			if (st.ifindex > 0 && (!if_indextoname(st.ifindex, ifname) || strcmp(ifname, st.iface)))
				fprintf(stderr, "reflexd: ifindex %d is no longer %s (now '%s'): its filters went with "
						"it, nothing detached\n", st.ifindex, st.iface[0] ? st.iface : "?", ifname);
			else if (st.ifindex > 0)
				tc_detach_ours(st.ifindex, st.clsact_created);
			if (back >= 0) {
				setns(back, CLONE_NEWNET);
				close(back);
			}
		}
	} else {
		cgroup_link_pin_remove(pin_dir);
		clamps_lift_all(pin_dir);
	}
	pins_dir_remove(pin_dir);
	unlink(state_path);
	run_file_remove_if_empty(pin_dir, "decisions");
	{
		char shadow_path[PATH_MAX];

		/* A dead reflexd's shadow verdict would send `reflexctl promote` to its pid. */
		pins_run_path(pin_dir, "shadow", shadow_path, sizeof(shadow_path));
		unlink(shadow_path);
	}
	return have_state ? 1 : 0;
}

/* A directory someone else made keeps its owner's mode: reflexd chmods nothing. */
static int pin_dir_create(const char *pin_dir, struct reflex_err *err)
{
	int ret = pins_dir_check(pin_dir, err);

	if (ret)
		return ret;
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		reflex_err_set(err, "cannot create pin directory %s: %s", pin_dir, strerror(errno));
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
		     unsigned int max_flows, unsigned int ring_bytes, bool want_sockops, struct reflex_err *err)
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
	bpf_map__set_max_entries(rb->tc->maps.tc_flows, max_flows);
	bpf_map__set_max_entries(rb->tc->maps.tc_events, ring_bytes);
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
		bpf_map__set_max_entries(rb->sockops->maps.sock_flows, max_flows);
		bpf_map__set_max_entries(rb->sockops->maps.cwnd_decisions, max_flows);
		bpf_map__set_max_entries(rb->sockops->maps.sock_events, ring_bytes);
		/* Load-time constants: the RTT callback runs every round trip and reads
		 * none of these from the config map; its common path reads the interval
		 * from its own instruction. */
		rb->sockops->rodata->actuator = cfg->actuator;
		if (cfg->heartbeat_deadline_ns)
			rb->sockops->rodata->heartbeat_deadline = cfg->heartbeat_deadline_ns;
		ret = bpf_imm_set(rb->sockops->progs.reflex_sockops, REFLEX_IMM_SAMPLE_INTERVAL_NS,
				  cfg->sample_interval_ns ? cfg->sample_interval_ns : REFLEX_DEFAULT_SAMPLE_INTERVAL_NS, err);
		if (ret)
			return ret;
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

/* The last beat in the `heartbeat` map of a sockops program's reflexd (CLOCK_MONOTONIC
 * ns, every 50 ms while it decides); 0 when there is none, UINT64_MAX if it cannot be
 * read (then it is taken to live). */
static __u64 prog_owner_beat(int prog_fd)
{
	__u32 map_ids[16], n_maps = 16;
	struct bpf_prog_info info = { .nr_map_ids = n_maps, .map_ids = (__u64)(uintptr_t)map_ids };
	__u32 len = sizeof(info);
	__u64 beat = 0;

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return UINT64_MAX;
	for (__u32 i = 0; i < info.nr_map_ids && i < n_maps; i++) {
		struct bpf_map_info minfo = { 0 };
		__u32 mlen = sizeof(minfo), zero = 0;
		int fd = bpf_map_get_fd_by_id(map_ids[i]);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &minfo, &mlen) == 0 && !strcmp(minfo.name, "heartbeat"))
			bpf_map_lookup_elem(fd, &zero, &beat);
		close(fd);
	}
	return beat;
}

static __u64 monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (__u64)now.tv_sec * 1000000000ULL + (__u64)now.tv_nsec;
}

/* Whether that reflexd still beats. A beat younger than HEARTBEAT_ALIVE_NS may be a
 * reflexd killed a moment ago (a restart right after kill -9 meets it): wait until the
 * beat either moves (alive) or ages past HEARTBEAT_ALIVE_NS (dead), at most that long. */
static bool prog_owner_beats(int prog_fd)
{
	__u64 first = prog_owner_beat(prog_fd), beat;

	if (first == UINT64_MAX)
		return true;
	for (;;) {
		if (!first || monotonic_ns() - first >= HEARTBEAT_ALIVE_NS)
			return false;
		usleep(50 * 1000);
		beat = prog_owner_beat(prog_fd);
		if (beat != first)
			return true;
	}
}

/*
 * Two reflexd clamping one cgroup's sockets would fight, and the first to stop would
 * lift the other's clamps: a reflex sockops program in force on the cgroup (attached
 * to it or to a parent) whose reflexd still beats refuses the start. A dead one's
 * (kill -9 keeps its link) or an observer's (it clamps nothing) is only reported.
 */
static int cgroup_check_no_reflex(int cgroup_fd, const char *cgroup_path, struct reflex_err *err)
{
	__u32 ids[64], count = 64, flags = 0;

	if (bpf_prog_query(cgroup_fd, BPF_CGROUP_SOCK_OPS, BPF_F_QUERY_EFFECTIVE, &flags, ids, &count))
		return 0; /* nothing to go by: the attach itself decides */
	for (__u32 i = 0; i < count; i++) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(ids[i]);
		bool reflex, beats = false;

		if (fd < 0)
			continue;
		reflex = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && !strcmp(info.name, "reflex_sockops");
		if (reflex)
			beats = prog_owner_beats(fd);
		close(fd);
		if (reflex && beats) {
			reflex_err_set(err, "cgroup %s already has reflex's sockops program (prog id %u) from a running "
				       "reflexd: another reflexd controls its sockets", cgroup_path, ids[i]);
			return -EBUSY;
		}
		if (reflex)
			fprintf(stderr, "reflexd: cgroup %s also has a reflex sockops program whose reflexd does not "
					"decide (prog id %u; a dead one's: `reflexd --cleanup --pin-dir` its pin "
					"directory)\n", cgroup_path, ids[i]);
	}
	return 0;
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
	ret = cgroup_check_no_reflex(cgroup_fd, cgroup_path, err);
	if (ret)
		goto cleanup;
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
	if (rb->sockops && rb->pin_dir[0])
		clamps_lift_all(rb->pin_dir);
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

int loader_tc_flows_fd(const struct reflex_bpf *rb)
{
	return bpf_map__fd(rb->tc->maps.tc_flows);
}

int loader_counters_fd(const struct reflex_bpf *rb)
{
	return bpf_map__fd(rb->tc->maps.counters);
}

int loader_rings_arm(struct reflex_bpf *rb)
{
	const struct bpf_map *map = rb->tc->maps.ring_pending;
	uint32_t rings = bpf_map__max_entries(map), keys[8];
	int cpus = libbpf_num_possible_cpus(), ret = 0;
	uint64_t *pending;
	size_t n;

	if (cpus < 0)
		return cpus;
	if (rings > sizeof(keys) / sizeof(keys[0]))
		return -E2BIG;
	n = (size_t)rings * (size_t)cpus;
	pending = malloc(n * sizeof(*pending));
	if (!pending)
		return -ENOMEM;
	/* The BPF side forces a wakeup when a CPU's count reaches flush_threshold, and
	 * restarts it from 0: a count this high does so at the next record. One call for
	 * every ring: this runs each time the reader goes to sleep. */
	for (uint32_t ring = 0; ring < rings; ring++)
		keys[ring] = ring;
	for (size_t i = 0; i < n; i++)
		pending[i] = 1ULL << 62;
	if (bpf_map_update_batch(bpf_map__fd(map), keys, pending, &rings, NULL))
		ret = -errno;
	free(pending);
	return ret;
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
