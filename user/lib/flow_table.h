/*
 * A flat table of fixed-size records keyed by flow_key, for reflexd's per-flow state
 * at 100k flows: records sit in one array sized for the maximum (calloc, so pages
 * are resident only once a record on them is used) and never move, so a pointer to
 * one stays valid until it is removed; the key is found through an open-addressing
 * index of 32-bit slot numbers (linear probing, at most half full, backward-shift
 * removal). Per record that is 4-5 bytes of index instead of a hash handle and a
 * heap block.
 */
#ifndef REFLEX_FLOW_TABLE_H
#define REFLEX_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "reflex.h"

struct flow_table {
	unsigned char *records; /* capacity x stride; each record starts with its struct flow_key */
	uint32_t *index;        /* slot + 1, or 0: empty; NULL in a table of slots */
	uint32_t *free_slots;   /* a stack of removed slots, reused first */
	uint64_t *used;         /* one bit per slot */
	size_t stride;
	uint32_t index_mask;
	uint32_t capacity;
	uint32_t count;
	uint32_t high; /* slots ever handed out: iteration stops there */
	uint32_t n_free;
};

/* Room for capacity records of stride bytes (at least a flow_key's); 0 or -ENOMEM. */
int flow_table_init(struct flow_table *ft, uint32_t capacity, size_t stride);
/* The same without keys or index: records are reached by slot number (flow_table_at),
 * added by flow_table_add(ft, NULL); flow_table_find finds nothing. For state another
 * table's record points at, which need not repeat the 40-byte key. */
int flow_table_init_slots(struct flow_table *ft, uint32_t capacity, size_t stride);
void flow_table_free(struct flow_table *ft);

void *flow_table_find(const struct flow_table *ft, const struct flow_key *key);
/* A zeroed record holding key, which must not be in the table (NULL: a table of
 * slots); NULL when full. */
void *flow_table_add(struct flow_table *ft, const struct flow_key *key);
uint32_t flow_table_slot(const struct flow_table *ft, const void *record);
void *flow_table_at(const struct flow_table *ft, uint32_t slot);
/* record came from flow_table_add; the slot is free for the next add. */
void flow_table_remove(struct flow_table *ft, void *record);

/* The first record in use after prev (NULL: from the start), or NULL. Removing the
 * record just returned does not disturb the walk. */
void *flow_table_next(const struct flow_table *ft, const void *prev);

#endif
