/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Per-socket state of the clamp actuator, shared by sockops.bpf.c (which sets and
 * lifts clamps) and unclamp.bpf.c (which lifts every clamp left when reflexd stops):
 * both declare it LIBBPF_PIN_BY_NAME, so the iterator sees the sockops program's map.
 */
#ifndef REFLEX_SOCK_STATE_BPF_H
#define REFLEX_SOCK_STATE_BPF_H

/* sock_state.flags */
enum sock_state_flag {
	SOCK_STATE_LISTED = 1, /* sockops inserted this socket's entry into sock_flows */
};

/* Lives and dies with the socket. */
struct sock_state {
	__u64 last_sample_ns;
	__u64 decision_gen;  /* decision_gen when the decision was last looked up */
	__u32 applied_clamp; /* what we set with TCP_BPF_SNDCWND_CLAMP, 0 = nothing */
	__u32 flags;         /* enum sock_state_flag */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_state_store SEC(".maps");

#endif
