/*
 * Lifting every clamp reflex set, whether or not the flow sends again: the sockops
 * program lifts a clamp only in the flow's own callbacks, so an idle flow would keep
 * it after reflexd stops. bpf/unclamp.bpf.c walks the TCP sockets of the current
 * network namespace (iter/tcp) and lifts each one the pinned sock_state_store marks.
 */
#ifndef REFLEX_UNCLAMP_H
#define REFLEX_UNCLAMP_H

#include "lib/error.h"

/* How many clamps were lifted (0 if pin_dir holds no sock_state_store), or -errno. */
int unclamp_all(const char *pin_dir, struct reflex_err *err);

#endif
