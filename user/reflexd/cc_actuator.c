#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reflexd/cc_actuator.h"
#include "cc.skel.h"
#include "sockops.skel.h"

#define AVAILABLE_CC_PATH "/proc/sys/net/ipv4/tcp_available_congestion_control"
/* enum bpf_struct_ops_state (kernel-internal, unchanged since 5.6): registered. */
#define STRUCT_OPS_STATE_INUSE 1

bool cc_name_listed(const char *list, const char *name)
{
	size_t len = strlen(name);
	const char *p = list;

	while ((p = strstr(p, name))) {
		bool starts = p == list || p[-1] == ' ' || p[-1] == '\t';
		bool ends = p[len] == '\0' || p[len] == ' ' || p[len] == '\t' || p[len] == '\n';

		if (starts && ends)
			return true;
		p += len;
	}
	return false;
}

/* The map id in /proc/PID/fdinfo/FD, 0 if it is not a BPF map. */
static __u32 fdinfo_map_id(int pid, const char *fd)
{
	char path[64], line[128];
	unsigned int id = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "map_id: %u", &id) == 1)
			break;
	fclose(f);
	return id;
}

static bool process_holds_map(int pid, __u32 id)
{
	char dir_path[64], fd_path[128], target[32];
	struct dirent *de;
	bool found = false;
	DIR *fds;

	snprintf(dir_path, sizeof(dir_path), "/proc/%d/fd", pid);
	fds = opendir(dir_path);
	if (!fds)
		return false;
	while (!found && (de = readdir(fds))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fd_path, sizeof(fd_path), "%s/%s", dir_path, de->d_name);
		n = readlink(fd_path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = !strcmp(target, "anon_inode:bpf-map") && fdinfo_map_id(pid, de->d_name) == id;
	}
	closedir(fds);
	return found;
}

/*
 * A live process other than this one with an fd of map `id` (its pid), or 0. A
 * running reflexd holds its struct_ops map through its skeleton; once it is dead
 * only the registration (and the sockets using the CC) keep the map, and no fd.
 */
static int map_holder(__u32 id)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int holder = 0;

	if (!proc)
		return 0;
	while (!holder && (de = readdir(proc))) {
		int pid = atoi(de->d_name);

		if (pid > 0 && pid != getpid() && process_holds_map(pid, id))
			holder = pid;
	}
	closedir(proc);
	return holder;
}

/* Returns 1 if the map was registered and now is not, 0 if it was not registered:
 * never (ENOENT) or no longer (EINPROGRESS: unregistered, the map not yet freed). */
static int unregister(int map_fd)
{
	__u32 zero = 0;

	if (bpf_map_delete_elem(map_fd, &zero) == 0)
		return 1;
	return errno == ENOENT || errno == EINPROGRESS ? 0 : -errno;
}

/* unregister() for a registration a dead reflexd left, saying what it did. */
static int unregister_dead(int map_fd, __u32 id, struct reflex_err *err)
{
	int ret = unregister(map_fd);

	if (ret < 0)
		reflex_err_set(err, "cannot unregister the '" REFLEX_CC_NAME "' congestion control a dead reflexd "
			       "left (struct_ops map id %u): %s", id, strerror(-ret));
	else if (ret)
		fprintf(stderr, "reflexd: unregistered the '" REFLEX_CC_NAME "' congestion control a dead reflexd "
				"left (struct_ops map id %u)\n", id);
	return ret;
}

static long btf_member_offset(const struct btf *btf, const char *type, const char *member)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	const struct btf_member *m;
	const struct btf_type *t;

	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++, m++)
		if (!strcmp(btf__name_by_offset(btf, m->name_off), member))
			return btf_member_bit_offset(t, i) / 8;
	return -1;
}

/* Where the state and the congestion control's name sit in the value the kernel
 * returns for a tcp_congestion_ops struct_ops map (vmlinux BTF). */
struct ops_value_layout {
	__u32 type_id; /* bpf_struct_ops_tcp_congestion_ops */
	long state_off;
	long name_off;
};

static int ops_value_layout_load(struct ops_value_layout *layout, struct reflex_err *err)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	long common, state, data, name;
	int id;

	if (!vmlinux) {
		reflex_err_set(err, "cannot read the kernel BTF: %s", strerror(errno));
		return -errno;
	}
	id = btf__find_by_name_kind(vmlinux, "bpf_struct_ops_tcp_congestion_ops", BTF_KIND_STRUCT);
	common = btf_member_offset(vmlinux, "bpf_struct_ops_tcp_congestion_ops", "common");
	data = btf_member_offset(vmlinux, "bpf_struct_ops_tcp_congestion_ops", "data");
	state = btf_member_offset(vmlinux, "bpf_struct_ops_common_value", "state");
	name = btf_member_offset(vmlinux, "tcp_congestion_ops", "name");
	btf__free(vmlinux);
	if (id < 0 || common < 0 || data < 0 || state < 0 || name < 0) {
		reflex_err_set(err, "the kernel BTF has no tcp_congestion_ops struct_ops value type");
		return -ENOENT;
	}
	layout->type_id = id;
	layout->state_off = common + state;
	layout->name_off = data + name;
	return 0;
}

/* Whether the map behind fd is reflex's own struct_ops map (cc.bpf.c's `reflex`)
 * and registers the congestion control `reflex` right now. */
static bool is_reflex_registration(int fd, const struct bpf_map_info *info, const struct ops_value_layout *layout)
{
	__u32 zero = 0;
	char *value;
	bool yes;

	if (info->btf_vmlinux_value_type_id != layout->type_id || info->value_size < layout->name_off + 16)
		return false;
	value = calloc(1, info->value_size);
	if (!value)
		return false;
	yes = bpf_map_lookup_elem(fd, &zero, value) == 0;
	if (yes) {
		__u32 state;

		memcpy(&state, value + layout->state_off, sizeof(state));
		yes = state == STRUCT_OPS_STATE_INUSE && !strncmp(value + layout->name_off, REFLEX_CC_NAME, 16);
	}
	free(value);
	return yes;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

/* One candidate map of the sweep: 1 if it was a dead reflexd's registration and is
 * now gone, 0 if it is not one, < 0 on error. */
static int cleanup_if_dead(int fd, const struct bpf_map_info *info, const struct ops_value_layout *layout,
			   struct reflex_err *err)
{
	int holder;

	if (!is_reflex_registration(fd, info, layout))
		return 0;
	holder = map_holder(info->id);
	if (holder) {
		reflex_err_set(err, "the '" REFLEX_CC_NAME "' congestion control is registered by a running process "
			       "(pid %d, struct_ops map id %u): one reflexd per host can use --actuator cc",
			       holder, info->id);
		return -EBUSY;
	}
	return unregister_dead(fd, info->id, err);
}

int cc_actuator_cleanup_dead(struct reflex_err *err)
{
	struct ops_value_layout layout = { 0 };
	bool layout_loaded = false;
	int removed = 0, ret = 0;
	__u32 id = 0;

	while (ret >= 0 && bpf_map_get_next_id(id, &id) == 0) {
		struct bpf_map_info info;
		int fd = bpf_map_get_fd_by_id(id);

		if (fd < 0)
			continue; /* gone since */
		if (map_info(fd, &info) || info.type != BPF_MAP_TYPE_STRUCT_OPS || strcmp(info.name, REFLEX_CC_NAME))
			goto next;
		if (!layout_loaded) {
			ret = ops_value_layout_load(&layout, err);
			if (ret)
				goto next;
			layout_loaded = true;
		}
		ret = cleanup_if_dead(fd, &info, &layout, err);
		if (ret > 0)
			removed++;
next:
		close(fd);
	}
	return ret < 0 ? ret : removed;
}

int cc_actuator_cleanup_pinned(const char *pin_dir, struct reflex_err *err)
{
	char path[PATH_MAX];
	struct bpf_map_info info;
	int fd, holder, ret;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, REFLEX_CC_NAME);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		reflex_err_set(err, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	ret = map_info(fd, &info);
	if (ret == 0 && info.type != BPF_MAP_TYPE_STRUCT_OPS) {
		reflex_err_set(err, "%s is not a struct_ops map: not removing it", path);
		ret = -EINVAL;
		goto cleanup;
	}
	/* A live owner keeps it; loader_cleanup_stale then refuses the pin directory. */
	holder = ret ? 0 : map_holder(info.id);
	if (holder) {
		ret = 0;
		goto cleanup;
	}
	ret = unregister_dead(fd, info.id, err);
	if (ret >= 0)
		unlink(path);
cleanup:
	close(fd);
	return ret;
}

/* After the dead are gone, a `reflex` that is still listed is somebody else's. */
static int name_free(struct reflex_err *err)
{
	char list[4096] = "";
	FILE *f = fopen(AVAILABLE_CC_PATH, "r");

	if (!f) {
		reflex_err_set(err, "cannot read %s: %s", AVAILABLE_CC_PATH, strerror(errno));
		return -errno;
	}
	if (!fgets(list, sizeof(list), f))
		list[0] = '\0';
	fclose(f);
	if (cc_name_listed(list, REFLEX_CC_NAME)) {
		reflex_err_set(err, "a congestion control named '" REFLEX_CC_NAME "' is already registered and is not "
			       "reflexd's (%s)", AVAILABLE_CC_PATH);
		return -EEXIST;
	}
	return 0;
}

/*
 * The congestion control must act on the very maps sockops and reflexd use: each of
 * its maps takes the fd of the sockops object's map of the same name before load,
 * and its pin path is dropped, so libbpf neither creates nor pins one of its own.
 */
static int maps_share(struct bpf_object *cc_obj, const struct bpf_object *sockops_obj, struct reflex_err *err)
{
	struct bpf_map *map;
	int ret;

	bpf_object__for_each_map(map, cc_obj) {
		const struct bpf_map *shared;

		if (bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS || bpf_map__is_internal(map))
			continue;
		shared = bpf_object__find_map_by_name(sockops_obj, bpf_map__name(map));
		if (!shared) {
			reflex_err_set(err, "the cc object's map %s is not in the sockops object", bpf_map__name(map));
			return -ENOENT;
		}
		ret = bpf_map__set_pin_path(map, NULL);
		if (!ret)
			ret = bpf_map__reuse_fd(map, bpf_map__fd(shared));
		if (ret) {
			reflex_err_set(err, "cannot share map %s with the cc object: %s", bpf_map__name(map),
				       strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int cc_register(struct cc_actuator *cc, const char *pin_dir, struct reflex_err *err)
{
	struct bpf_map *ops = cc->skel->maps.reflex;
	int ret;

	/* Pinned before registering: a registration is never without its pin. */
	snprintf(cc->pin_path, sizeof(cc->pin_path), "%s/%s", pin_dir, REFLEX_CC_NAME);
	ret = bpf_map__pin(ops, cc->pin_path);
	if (ret) {
		reflex_err_set(err, "cannot pin the struct_ops map at %s: %s", cc->pin_path, strerror(-ret));
		cc->pin_path[0] = '\0';
		return ret;
	}
	cc->registration = bpf_map__attach_struct_ops(ops);
	if (!cc->registration) {
		ret = -errno;
		if (ret == -EEXIST)
			reflex_err_set(err, "a congestion control named '" REFLEX_CC_NAME "' is already registered and "
				       "is not reflexd's");
		else
			reflex_err_set(err, "cannot register the '" REFLEX_CC_NAME "' congestion control: %s",
				       strerror(-ret));
		return ret;
	}
	return 0;
}

int cc_actuator_start(struct cc_actuator *cc, const struct reflex_bpf *rb, struct reflex_err *err)
{
	int ret;

	memset(cc, 0, sizeof(*cc));
	if (!rb->sockops) {
		reflex_err_set(err, "--actuator cc needs the sockops program (--cgroup)");
		return -EINVAL;
	}
	ret = cc_actuator_cleanup_dead(err);
	if (ret < 0)
		return ret;
	ret = name_free(err);
	if (ret)
		return ret;
	cc->skel = cc_bpf__open();
	if (!cc->skel) {
		ret = -errno;
		reflex_err_set(err, "cannot open the cc BPF object: %s", strerror(-ret));
		return ret;
	}
	ret = maps_share(cc->skel->obj, rb->sockops->obj, err);
	if (ret)
		return ret;
	ret = cc_bpf__load(cc->skel);
	if (ret) {
		reflex_err_set(err, "cannot load the '" REFLEX_CC_NAME "' congestion control: %s", strerror(-ret));
		return ret;
	}
	return cc_register(cc, rb->pin_dir, err);
}

void cc_actuator_stop(struct cc_actuator *cc)
{
	int ret = bpf_link__destroy(cc->registration);

	if (ret)
		fprintf(stderr, "reflexd: cannot unregister the '" REFLEX_CC_NAME "' congestion control: %s "
				"(the next `reflexd --actuator cc` retries)\n", strerror(-ret));
	else if (cc->pin_path[0])
		unlink(cc->pin_path);
	cc_bpf__destroy(cc->skel);
	memset(cc, 0, sizeof(*cc));
}
