#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "reflexd/decision_log.h"

static uint64_t limit_bytes = 64ULL << 20;
static unsigned limit_keep = 3;

struct log_file {
	int fd;
	char path[PATH_MAX];
	uint64_t size;
	uint64_t max_bytes;
	unsigned keep;
};

void decision_log_limits(uint64_t max_bytes, unsigned keep)
{
	limit_bytes = max_bytes;
	limit_keep = keep;
}

static int open_append(struct log_file *lf)
{
	struct reflex_err err = { 0 };
	struct stat st;
	/* As root: a symlink or hard link planted at the log's path is refused. */
	int fd = fileio_open_output_fd(lf->path, true, 0640, &err);

	if (fd < 0) {
		fprintf(stderr, "reflexd: decision log: %s\n", err.msg);
		return fd;
	}
	if (lf->fd >= 0)
		close(lf->fd);
	lf->fd = fd;
	lf->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

/* FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1, then a new FILE. */
static int rotate(struct log_file *lf)
{
	char from[PATH_MAX + 8], to[PATH_MAX + 8];

	for (unsigned i = lf->keep; i > 1; i--) {
		snprintf(from, sizeof(from), "%s.%u", lf->path, i - 1);
		snprintf(to, sizeof(to), "%s.%u", lf->path, i);
		if (rename(from, to) && errno != ENOENT)
			return -errno;
	}
	if (lf->keep) {
		snprintf(to, sizeof(to), "%s.1", lf->path);
		if (rename(lf->path, to))
			return -errno;
	} else if (unlink(lf->path) && errno != ENOENT) {
		return -errno;
	}
	return open_append(lf);
}

static ssize_t log_write(void *cookie, const char *buf, size_t size)
{
	struct log_file *lf = cookie;
	size_t done = 0;

	/* a full file rotates before the write, so a line is never split between files */
	if (lf->size > 0 && lf->size + size > lf->max_bytes && rotate(lf))
		return -1;
	while (done < size) {
		ssize_t n = write(lf->fd, buf + done, size - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)n;
	}
	lf->size += done;
	return (ssize_t)done;
}

/* The streams this module made, to find the file behind one for decision_log_reopen. */
static struct {
	FILE *stream;
	struct log_file *file;
} opened[4];

static int log_close(void *cookie)
{
	struct log_file *lf = cookie;
	int ret = lf->fd >= 0 ? close(lf->fd) : 0;

	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++)
		if (opened[i].file == lf)
			opened[i].stream = NULL, opened[i].file = NULL;

	free(lf);
	return ret;
}

FILE *decision_log_open(const char *path)
{
	cookie_io_functions_t io = { .write = log_write, .close = log_close };
	struct log_file *lf = calloc(1, sizeof(*lf));
	FILE *f;
	int ret;

	if (!lf)
		return NULL;
	lf->fd = -1;
	lf->max_bytes = limit_bytes;
	lf->keep = limit_keep;
	if (snprintf(lf->path, sizeof(lf->path), "%s", path) >= (int)sizeof(lf->path)) {
		free(lf);
		errno = ENAMETOOLONG;
		return NULL;
	}
	ret = open_append(lf);
	if (ret) {
		free(lf);
		errno = -ret;
		return NULL;
	}
	f = fopencookie(lf, "a", io);
	if (!f) {
		close(lf->fd);
		free(lf);
		return NULL;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++) {
		if (!opened[i].stream) {
			opened[i].stream = f;
			opened[i].file = lf;
			break;
		}
	}
	return f;
}

int decision_log_reopen(FILE *log)
{
	for (size_t i = 0; log && i < sizeof(opened) / sizeof(opened[0]); i++) {
		if (opened[i].stream == log) {
			fflush(log);
			return open_append(opened[i].file);
		}
	}
	return -ENOENT;
}
