#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

bool pins_owner_alive(int pid)
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

/* Unpinning the cgroup link drops its last reference and so detaches sockops. */
void pins_dir_remove(const char *pin_dir)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		unlink(path);
	}
	closedir(dir);
	rmdir(pin_dir);
}

