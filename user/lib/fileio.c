#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileio.h"

int fileio_open_output_fd(const char *path, bool append, mode_t mode, struct reflex_err *err)
{
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : 0);
	struct stat st;
	int fd, ret;

	fd = open(path, flags, mode);
	if (fd < 0) {
		ret = -errno;
		if (errno == ELOOP)
			reflex_err_set_file(err, path, "is a symlink: refused (give the file itself)");
		else
			reflex_err_set_file(err, path, "%s", strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		reflex_err_set_file(err, path, "not a regular file with one link: refused");
		close(fd);
		return -EPERM;
	}
	if (!append && ftruncate(fd, 0)) {
		ret = -errno;
		reflex_err_set_file(err, path, "cannot truncate: %s", strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

FILE *fileio_open_output(const char *path, bool append, mode_t mode, struct reflex_err *err)
{
	int fd = fileio_open_output_fd(path, append, mode, err);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, append ? "a" : "w");
	if (!f) {
		reflex_err_set_file(err, path, "%s", strerror(errno));
		close(fd);
	}
	return f;
}

void fileio_atomic_abort(struct fileio_atomic *a)
{
	if (a->f)
		fclose(a->f);
	if (a->tmp_path)
		unlink(a->tmp_path);
	free(a->tmp_path);
	free(a->path);
	memset(a, 0, sizeof(*a));
}

int fileio_atomic_open(struct fileio_atomic *a, const char *path, mode_t mode, struct reflex_err *err)
{
	int fd, ret;

	memset(a, 0, sizeof(*a));
	if (!(a->path = strdup(path)) || asprintf(&a->tmp_path, "%s.tmp.XXXXXX", path) < 0) {
		a->tmp_path = NULL;
		fileio_atomic_abort(a);
		reflex_err_set_file(err, path, "out of memory");
		return -ENOMEM;
	}
	fd = mkostemp(a->tmp_path, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		reflex_err_set_file(err, path, "cannot create %s: %s", a->tmp_path, strerror(-ret));
		free(a->tmp_path);
		a->tmp_path = NULL;
		fileio_atomic_abort(a);
		return ret;
	}
	if (fchmod(fd, mode) || !(a->f = fdopen(fd, "w"))) {
		ret = -errno;
		close(fd);
		reflex_err_set_file(err, a->tmp_path, "%s", strerror(-ret));
		fileio_atomic_abort(a);
		return ret;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, ret = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

int fileio_atomic_commit(struct fileio_atomic *a, struct reflex_err *err)
{
	int ret = ferror(a->f) ? -EIO : 0;

	if (fflush(a->f) && !ret)
		ret = -errno;
	if (!ret && fsync(fileno(a->f)))
		ret = -errno;
	if (fclose(a->f) && !ret)
		ret = -errno;
	a->f = NULL;
	if (!ret && rename(a->tmp_path, a->path))
		ret = -errno;
	if (ret) {
		reflex_err_set_file(err, a->path, "write failed: %s", strerror(-ret));
		fileio_atomic_abort(a);
		return ret;
	}
	free(a->tmp_path);
	a->tmp_path = NULL;
	ret = fsync_dir_of(a->path);
	if (ret)
		reflex_err_set_file(err, a->path, "fsync of its directory failed: %s", strerror(-ret));
	fileio_atomic_abort(a);
	return ret;
}

int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct reflex_err *err)
{
	struct fileio_atomic a;
	int ret = fileio_atomic_open(&a, path, mode, err);

	if (ret)
		return ret;
	if (len && fwrite(data, 1, len, a.f) != len) {
		ret = -(errno ? errno : EIO);
		reflex_err_set_file(err, path, "write failed: %s", strerror(-ret));
		fileio_atomic_abort(&a);
		return ret;
	}
	return fileio_atomic_commit(&a, err);
}

static int read_fd_bounded(int fd, const char *path, size_t max_bytes, char **data, size_t *len,
			   struct reflex_err *err)
{
	struct stat st;
	size_t got = 0, want;
	char *buf;

	if (fstat(fd, &st)) {
		reflex_err_set_file(err, path, "%s", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		reflex_err_set_file(err, path, "not a regular file");
		return -EINVAL;
	}
	if ((unsigned long long)st.st_size > max_bytes) {
		reflex_err_set_file(err, path, "larger than %zu bytes (%lld)", max_bytes, (long long)st.st_size);
		return -EFBIG;
	}
	/* One byte more than stat says, so a file that grew meanwhile is caught. */
	want = (size_t)st.st_size + 1;
	buf = malloc(want + 1);
	if (!buf) {
		reflex_err_set_file(err, path, "out of memory");
		return -ENOMEM;
	}
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int ret = -errno;

			reflex_err_set_file(err, path, "%s", strerror(-ret));
			free(buf);
			return ret;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max_bytes || got > (size_t)st.st_size) {
		reflex_err_set_file(err, path, "grew while being read (over %lld bytes)", (long long)st.st_size);
		free(buf);
		return -EFBIG;
	}
	buf[got] = '\0';
	*data = buf;
	*len = got;
	return 0;
}

int fileio_read_bounded(const char *path, size_t max_bytes, char **data, size_t *len, struct reflex_err *err)
{
	int fd, ret;

	*data = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (errno == ELOOP)
			reflex_err_set_file(err, path, "is a symlink: refused (give the file itself)");
		else
			reflex_err_set_file(err, path, "cannot open: %s", strerror(errno));
		return ret;
	}
	ret = read_fd_bounded(fd, path, max_bytes, data, len, err);
	close(fd);
	return ret;
}
