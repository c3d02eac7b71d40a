#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reflexd/unclamp.h"
#include "unclamp.skel.h"

/* A map whose pin is missing stays private: the iterator must not create pins. */
static void use_existing_pins_only(struct unclamp_bpf *skel, const char *pin_dir)
{
	char path[PATH_MAX];
	struct bpf_map *map;

	bpf_object__for_each_map(map, skel->obj) {
		if (!bpf_map__pin_path(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map));
		if (access(path, F_OK))
			bpf_map__set_pin_path(map, NULL);
	}
}

/* The iterator writes one byte per socket it lifted. */
static int iter_run(struct bpf_link *link, struct reflex_err *err)
{
	char buf[4096];
	ssize_t n;
	int fd, lifted = 0;

	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		reflex_err_set(err, "cannot start the unclamp iterator: %s", strerror(errno));
		return -errno;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			lifted = -errno;
			reflex_err_set(err, "unclamp iterator: %s", strerror(errno));
			break;
		}
		lifted += (int)n;
	}
	close(fd);
	return lifted;
}

int unclamp_all(const char *pin_dir, struct reflex_err *err)
{
	DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct unclamp_bpf *skel;
	struct bpf_link *link = NULL;
	char path[PATH_MAX];
	int ret;

	snprintf(path, sizeof(path), "%s/sock_state_store", pin_dir);
	if (access(path, F_OK))
		return 0;
	skel = unclamp_bpf__open_opts(&opts);
	if (!skel) {
		reflex_err_set(err, "cannot open the unclamp BPF object: %s", strerror(errno));
		return -errno;
	}
	use_existing_pins_only(skel, pin_dir);
	ret = unclamp_bpf__load(skel);
	if (ret) {
		reflex_err_set(err, "cannot load the unclamp iterator: %s", strerror(-ret));
		goto cleanup;
	}
	link = bpf_program__attach_iter(skel->progs.reflex_unclamp, NULL);
	if (!link) {
		ret = -errno;
		reflex_err_set(err, "cannot attach the unclamp iterator: %s", strerror(-ret));
		goto cleanup;
	}
	ret = iter_run(link, err);
cleanup:
	bpf_link__destroy(link);
	unclamp_bpf__destroy(skel);
	return ret;
}
