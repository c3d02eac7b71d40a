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

/* Whether pid is a live reflexd (not this process): the owner of a state file. */
bool pins_owner_alive(int pid);

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
