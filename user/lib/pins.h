/*
 * Where a reflex instance keeps things on the host, shared by the host loader, the
 * router loader and reflexctl: the bpffs pin directory, the run files under
 * /run/reflex named after it (state, decision log, shadow verdict), and whether the
 * reflexd owning them is still alive. Depends on lib/ only.
 */
#ifndef REFLEX_LIB_PINS_H
#define REFLEX_LIB_PINS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/error.h"

#define PINS_RUN_DIR "/run/reflex"

/* Checks that must pass before anything is loaded: root/capabilities, BTF, bpffs. */
int pins_preflight(struct reflex_err *err);

/* /run/reflex/<pin dir with / as _>.<suffix>: where this instance keeps its state
 * file, decision log and control socket. */
void pins_run_path(const char *pin_dir, const char *suffix, char *out, size_t len);
int pins_run_dir_create(void);

/*
 * One reflexd per pin directory: an flock on /run/reflex/<pin dir>.lock, held for the
 * daemon's life (and by --cleanup while it runs), taken before anything is loaded.
 * pins_lock_take returns the fd to keep, or -EBUSY with *holder = the pid that holds
 * it (err names it). pins_lock_release unlinks the file and lets go.
 */
int pins_lock_take(const char *pin_dir, int *holder, struct reflex_err *err);
void pins_lock_release(const char *pin_dir, int fd);
/* The pid of the process holding pin_dir's lock; 0 if nobody holds it, -1 if there is
 * no lock file. */
int pins_lock_holder(const char *pin_dir);

/* Whether the reflexd that wrote pid into a run file of pin_dir still owns it: the
 * lock answers; the process name only where there is no lock file. */
bool pins_owner_alive(const char *pin_dir, int pid);

/* 0 if pin_dir is a directory on bpffs below its root, or does not exist yet and its
 * parent is a bpffs directory; otherwise an error naming the problem. Anything else
 * (/etc, /tmp, /sys/fs/bpf itself, a symlink) is refused before reflex touches it. */
int pins_dir_check(const char *pin_dir, struct reflex_err *err);

/* Whether name is one of the pins reflex creates (host maps and link, `reflex`
 * struct_ops, router maps). */
bool pins_is_reflex_name(const char *name);

/* Unlinks the pins reflex creates under pin_dir (a pinned link goes with its last
 * reference, and detaches), then the directory if nothing else is left in it. */
void pins_dir_remove(const char *pin_dir);

#endif
