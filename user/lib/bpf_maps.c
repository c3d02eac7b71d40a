#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bpf_maps.h"

uint64_t bpf_counter_sum(int fd, uint32_t index)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *values, total = 0;

	if (ncpu <= 0 || !(values = calloc(ncpu, sizeof(*values))))
		return 0;
	if (bpf_map_lookup_elem(fd, &index, values) == 0)
		for (int i = 0; i < ncpu; i++)
			total += values[i];
	free(values);
	return total;
}

static bool is_hash(uint32_t type)
{
	return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool bpf_map_pressure(int fd, struct map_pressure *p)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	void *key, *next;

	memset(&info, 0, sizeof(info));
	memset(p, 0, sizeof(*p));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !is_hash(info.type) || !info.key_size)
		return false;
	memcpy(p->name, info.name, sizeof(p->name) - 1);
	p->type = info.type;
	p->max_entries = info.max_entries;
	key = calloc(2, info.key_size);
	if (!key)
		return false;
	next = (char *)key + info.key_size;
	/* entries may come and go during the walk: the count is a snapshot, capped at the size */
	for (void *prev = NULL; bpf_map_get_next_key(fd, prev, next) == 0 && p->entries < p->max_entries;
	     prev = key) {
		memcpy(key, next, info.key_size);
		p->entries++;
	}
	free(key);
	return true;
}

uint64_t tc_flow_evicted(uint64_t tc_flow_new, uint64_t tc_flows_entries)
{
	return tc_flow_new > tc_flows_entries ? tc_flow_new - tc_flows_entries : 0;
}
