/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Maps of the edge router's tc programs, pinned by name under reflexd's pin
 * directory so that operators and tests read them with `bpftool map dump pinned`.
 * Config (reflex_config), heartbeat and ring wakeup batching are the host programs'
 * (maps.bpf.h, heartbeat.bpf.h); a router and a host reflexd never share a pin dir.
 */
#ifndef REFLEX_ROUTER_MAPS_BPF_H
#define REFLEX_ROUTER_MAPS_BPF_H

#include "reflex_router.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ROUTER_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_counters SEC(".maps");

/* The class a new flow is placed by, from its protocol and the far end's port,
 * written by reflexd from its class table (what the table says of those alone). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ROUTER_PORT_CLASS_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_port_class SEC(".maps");

/* Per class, the path the bandit gives the next new flow (ROUTER_PATH_NONE: leave
 * it to the kernel's routing), kept current by reflexd. The first packet must go
 * where the flow will stay: NAT binds the flow to the uplink of its first packet. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ROUTER_MAX_CLASSES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_next_path SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ROUTER_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_events SEC(".maps");

/* A plain hash: LRU hashes cannot hold a bpf_spin_lock. Only packets from the LAN
 * create entries (outsiders cannot fill it); reflexd deletes closed and idle flows;
 * when it is full, new flows go unmeasured and unsteered (flow_fail). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ROUTER_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct router_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_flows SEC(".maps");

/* All zero, what a new flow's router_flow starts from (too large for the BPF stack).
 * Raw bytes: a value holding a bpf_spin_lock cannot be a helper's argument. */
struct router_flow_template {
	__u8 bytes[sizeof(struct router_flow)];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct router_flow_template);
} router_flow_zero SEC(".maps");

/* ePPing's packet timestamps: (flow, direction, TSval) -> when it passed. */
struct router_ts_key {
	struct flow_key key;
	__u32 tsval;
	__u32 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ROUTER_MAX_TIMESTAMPS);
	__type(key, struct router_ts_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_timestamps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ROUTER_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct router_decision);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_decisions SEC(".maps");

/* Written by reflexd only, for flows in router_flows; deleted with them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ROUTER_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, struct router_wnd_cap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_wnd_caps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ROUTER_MAX_PATHS);
	__type(key, __u32);
	__type(value, struct router_path_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ROUTER_MAX_PATHS);
	__type(key, __u32);
	__type(value, struct router_path_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} router_path_stats SEC(".maps");

#endif
