/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * What the two cwnd actuators share: reflexd's decisions and its heartbeat
 * (heartbeat.bpf.h, which the router's program includes on its own). Only
 * sockops.bpf.c (the clamp) and cc.bpf.c (the `reflex` congestion control) include
 * this file, so tc-only and router loads neither create nor pin cwnd_decisions.
 */
#ifndef REFLEX_CONTROL_BPF_H
#define REFLEX_CONTROL_BPF_H

#include "reflex.h"
#include "heartbeat.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct cwnd_decision);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cwnd_decisions SEC(".maps");

#endif /* REFLEX_CONTROL_BPF_H */
