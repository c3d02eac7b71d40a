#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "lib/pins.h"

int pins_preflight(struct reflex_err *err)
{
	struct statfs fs;

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		reflex_err_set(err, "kernel BTF not found at /sys/kernel/btf/vmlinux (needs CONFIG_DEBUG_INFO_BTF=y): %s",
			strerror(errno));
		return -ENOENT;
	}
	if (statfs("/sys/fs/bpf", &fs) != 0 || fs.f_type != BPF_FS_MAGIC) {
		/* As bpftool does: pins need a bpffs, and mounting one is harmless. */
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) {
			reflex_err_set(err, "bpffs is not mounted at /sys/fs/bpf and mounting it failed: %s", strerror(errno));
			return -ENOENT;
		}
		fprintf(stderr, "reflexd: mounted bpffs at /sys/fs/bpf\n");
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, NULL) != 1) {
		reflex_err_set(err, "cannot load BPF programs: %s (reflexd needs root, or CAP_BPF, CAP_NET_ADMIN and "
			     "CAP_PERFMON)", strerror(errno ? errno : EPERM));
		return -EPERM;
	}
	return 0;
}

void pins_run_path(const char *pin_dir, const char *suffix, char *out, size_t len)
{
	char name[PATH_MAX];
	size_t i;

	snprintf(name, sizeof(name), "%s", pin_dir);
	for (i = 0; name[i]; i++)
		if (name[i] == '/')
			name[i] = '_';
	snprintf(out, len, PINS_RUN_DIR "/%s.%s", name, suffix);
}

int pins_run_dir_create(void)
{
	return mkdir(PINS_RUN_DIR, 0700) && errno != EEXIST ? -errno : 0;
}

/* Reads the pid a lock holder wrote into its lock file; 0 if none. */
static int lock_file_pid(int fd)
{
	char text[24];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	if (n <= 0)
		return 0;
	text[n] = '\0';
	return atoi(text);
}

int pins_lock_take(const char *pin_dir, int *holder, struct reflex_err *err)
{
	char path[PATH_MAX], text[24];
	struct stat fd_st, path_st;
	int fd, len;

	*holder = 0;
	if (pins_run_dir_create()) {
		reflex_err_set(err, "cannot create %s: %s", PINS_RUN_DIR, strerror(errno));
		return -errno;
	}
	pins_run_path(pin_dir, "lock", path, sizeof(path));
	for (;;) {
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			reflex_err_set(err, "cannot open the lock file %s: %s", path, strerror(errno));
			return -errno;
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			int ret = errno == EWOULDBLOCK ? -EBUSY : -errno;

			*holder = lock_file_pid(fd);
			if (ret == -EBUSY)
				reflex_err_set(err, "pin directory %s belongs to a running reflexd (pid %d) holding %s",
					       pin_dir, *holder, path);
			else
				reflex_err_set(err, "cannot lock %s: %s", path, strerror(-ret));
			close(fd);
			return ret;
		}
		/* The previous holder unlinks the file before it lets go: a lock on an
		 * unlinked file guards nothing, so take the one now at the path. */
		if (fstat(fd, &fd_st) == 0 && stat(path, &path_st) == 0 && fd_st.st_dev == path_st.st_dev &&
		    fd_st.st_ino == path_st.st_ino)
			break;
		close(fd);
	}
	len = snprintf(text, sizeof(text), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, text, len, 0) != len) {
		reflex_err_set(err, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -errno;
	}
	return fd;
}

void pins_lock_release(const char *pin_dir, int fd)
{
	char path[PATH_MAX];

	if (fd < 0)
		return;
	pins_run_path(pin_dir, "lock", path, sizeof(path));
	unlink(path);
	close(fd);
}

int pins_lock_holder(const char *pin_dir)
{
	char path[PATH_MAX];
	int fd, pid = 0;

	pins_run_path(pin_dir, "lock", path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -1 : 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		flock(fd, LOCK_UN);
	else if (errno == EWOULDBLOCK)
		pid = lock_file_pid(fd);
	close(fd);
	return pid;
}

/* Only for a pin directory without a lock file (a reflexd of a build before the lock):
 * then the process name is all there is to go by. */
static bool pid_is_reflexd(int pid)
{
	char path[64], comm[64] = "";
	FILE *f;

	if (pid <= 0 || pid == getpid() || kill(pid, 0) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "reflexd", 7) == 0;
}

bool pins_owner_alive(const char *pin_dir, int pid)
{
	int holder = pins_lock_holder(pin_dir);

	if (holder < 0)
		return pid_is_reflexd(pid);
	/* Held by this process: whoever wrote the state is gone. */
	return holder > 0 && holder != getpid();
}

/*
 * Every name reflex pins: the host's maps and cgroup link (reflexd/loader.c), its
 * `reflex` struct_ops map (reflexd/cc_actuator.c) and the router's maps. Only these
 * are ever unlinked, so a pin directory that holds anything else keeps it.
 * tests/unit/test_pin_names.c fails when a BPF object pins a map missing here.
 */
static const char *const pins_reflex_names[] = {
	"sockops_link", "reflex", "reflex_config", "counters", "ring_pending", "cwnd_decisions", "heartbeat",
	"decision_gen", "sock_events", "sock_flows", "sock_state_store", "tc_events", "tc_flows",
	"router_counters", "router_events", "router_flows", "router_timestamps", "router_decisions",
	"router_paths", "router_path_stats", "router_next_path", "router_port_class", "router_wnd_caps",
	/* pinned by earlier versions: a pin directory they left is still ours to clear */
	"router_config", "router_ring_pending",
};

bool pins_is_reflex_name(const char *name)
{
	for (size_t i = 0; i < sizeof(pins_reflex_names) / sizeof(pins_reflex_names[0]); i++)
		if (!strcmp(name, pins_reflex_names[i]))
			return true;
	return false;
}

/* A mount's root has its parent on another device, or is its own parent. */
static bool is_mount_root(const char *path, const struct stat *st)
{
	char parent[PATH_MAX];
	struct stat pst;

	if (snprintf(parent, sizeof(parent), "%s/..", path) >= (int)sizeof(parent) || stat(parent, &pst))
		return true;
	return pst.st_dev != st->st_dev || pst.st_ino == st->st_ino;
}

int pins_dir_check(const char *pin_dir, struct reflex_err *err)
{
	char parent[PATH_MAX], *slash;
	struct statfs fs;
	struct stat st;

	if (pin_dir[0] != '/' || strlen(pin_dir) >= sizeof(parent)) {
		reflex_err_set(err, "pin directory %s: not an absolute path that fits PATH_MAX", pin_dir);
		return -EINVAL;
	}
	if (lstat(pin_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			reflex_err_set(err, "pin directory %s is not a directory (a symlink or file is refused)", pin_dir);
			return -ENOTDIR;
		}
		if (statfs(pin_dir, &fs) || fs.f_type != BPF_FS_MAGIC) {
			reflex_err_set(err, "pin directory %s is not on a bpffs (e.g. use /sys/fs/bpf/NAME)", pin_dir);
			return -EINVAL;
		}
		if (is_mount_root(pin_dir, &st)) {
			reflex_err_set(err, "pin directory %s is the root of a bpffs: give a directory below it "
				       "(e.g. %s/reflex)", pin_dir, pin_dir);
			return -EINVAL;
		}
		return 0;
	}
	if (errno != ENOENT) {
		reflex_err_set(err, "pin directory %s: %s", pin_dir, strerror(errno));
		return -errno;
	}
	/* Not there yet: reflexd creates it, one level below a bpffs directory. */
	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (statfs(parent, &fs) || fs.f_type != BPF_FS_MAGIC) {
		reflex_err_set(err, "pin directory %s is not on a bpffs: %s is not a bpffs directory "
			       "(e.g. use /sys/fs/bpf/NAME)", pin_dir, parent);
		return -EINVAL;
	}
	return 0;
}

/* Unpinning the cgroup link drops its last reference and so detaches sockops. */
void pins_dir_remove(const char *pin_dir)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(pins_reflex_names) / sizeof(pins_reflex_names[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", pin_dir, pins_reflex_names[i]) >= (int)sizeof(path))
			continue;
		unlink(path);
	}
	/* Fails, and leaves it, if anyone else's pins are in it. */
	rmdir(pin_dir);
}
