/* Figures read from BPF maps by fd, shared by reflexd's metrics and reflexctl status:
 * a per-CPU counter's total and how full a map is. */
#ifndef REFLEX_LIB_BPF_MAPS_H
#define REFLEX_LIB_BPF_MAPS_H

#include <stdbool.h>
#include <stdint.h>

/* The sum over CPUs of a per-CPU array's u64 at index, 0 if it cannot be read. */
uint64_t bpf_counter_sum(int fd, uint32_t index);

struct map_pressure {
	char name[16];   /* BPF_OBJ_NAME_LEN */
	uint32_t type;   /* enum bpf_map_type */
	uint32_t entries;
	uint32_t max_entries;
};

/* Fills p for a hash-type map (entries counted by walking the keys); false for maps
 * that are never "full" in that sense (arrays, ring buffers) or on error. */
bool bpf_map_pressure(int fd, struct map_pressure *p);

/* tc_flows entries the LRU pushed out: tc_flow_new counts every insert and nothing
 * deletes an entry, so the inserted ones no longer there were evicted. Read the
 * counter before counting the entries (an insert in between then counts as live,
 * never as evicted); 0 if entries exceed it. Shown as a counter named
 * tc_flow_evicted beside the BPF side's sock_flow_evicted. */
uint64_t tc_flow_evicted(uint64_t tc_flow_new, uint64_t tc_flows_entries);

#endif
