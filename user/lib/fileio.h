/*
 * The file operations a root process can do safely on paths it is given: one way to
 * open an output, one way to replace a file atomically, one way to read a whole file
 * with a size bound. Every other module goes through these.
 */
#ifndef REFLEX_LIB_FILEIO_H
#define REFLEX_LIB_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "lib/error.h"

/*
 * Opens path for writing (appending with append, else truncated after the checks):
 * O_NOFOLLOW, so a symlink planted at path is refused rather than followed, and it
 * must be a regular file with one link, so a hard link to another file is refused
 * too. A new file gets mode (minus the umask). NULL and err naming path on failure.
 */
FILE *fileio_open_output(const char *path, bool append, mode_t mode, struct reflex_err *err);
/* The same as an fd (>= 0), or -errno. */
int fileio_open_output_fd(const char *path, bool append, mode_t mode, struct reflex_err *err);

/*
 * Replacing path atomically: write into the FILE of fileio_atomic_open (a fresh
 * PATH.tmp.XXXXXX created with O_EXCL next to path, mode mode), then commit: flush,
 * fsync the file, rename it over path, fsync the directory. Readers see the old file
 * or the new one, never a part. On any failure the temporary file is removed.
 */
struct fileio_atomic {
	FILE *f;
	char *path;
	char *tmp_path;
};

int fileio_atomic_open(struct fileio_atomic *a, const char *path, mode_t mode, struct reflex_err *err);
/* Also fails (and removes the temporary file) if a write to a->f failed. */
int fileio_atomic_commit(struct fileio_atomic *a, struct reflex_err *err);
void fileio_atomic_abort(struct fileio_atomic *a);
/* The two above for data already in memory. */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct reflex_err *err);

/*
 * Reads all of path into a malloc'd buffer, NUL-terminated (*len excludes the NUL):
 * opened O_NONBLOCK|O_NOFOLLOW so a FIFO or a device cannot block and a symlink is
 * refused, then it must be a regular file of at most max_bytes. 0, or -errno with err
 * naming path and the problem ("larger than N bytes", "not a regular file", ...).
 */
int fileio_read_bounded(const char *path, size_t max_bytes, char **data, size_t *len, struct reflex_err *err);

#endif
