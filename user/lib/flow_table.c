#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/flow_table.h"

_Static_assert(sizeof(struct flow_key) % sizeof(uint64_t) == 0, "flow_key hashes as 64-bit words");

static uint32_t key_hash(const struct flow_key *key)
{
	uint64_t word[sizeof(*key) / sizeof(uint64_t)], h = 0x9E3779B97F4A7C15ULL;

	memcpy(word, key, sizeof(word));
	for (size_t i = 0; i < sizeof(word) / sizeof(word[0]); i++) {
		h = (h ^ word[i]) * 0xBF58476D1CE4E5B9ULL;
		h ^= h >> 31;
	}
	return (uint32_t)(h ^ (h >> 32));
}

static void *record_at(const struct flow_table *ft, uint32_t slot)
{
	return ft->records + (size_t)slot * ft->stride;
}

static bool slot_used(const struct flow_table *ft, uint32_t slot)
{
	return ft->used[slot / 64] >> (slot % 64) & 1;
}

int flow_table_init_slots(struct flow_table *ft, uint32_t capacity, size_t stride)
{
	memset(ft, 0, sizeof(*ft));
	ft->stride = stride;
	ft->capacity = capacity;
	ft->records = calloc(capacity ? capacity : 1, ft->stride);
	ft->free_slots = calloc(capacity ? capacity : 1, sizeof(*ft->free_slots));
	ft->used = calloc(capacity / 64 + 1, sizeof(*ft->used));
	if (!ft->records || !ft->free_slots || !ft->used) {
		flow_table_free(ft);
		return -ENOMEM;
	}
	return 0;
}

int flow_table_init(struct flow_table *ft, uint32_t capacity, size_t stride)
{
	uint32_t index_size = 4;

	while (index_size < 2ULL * capacity)
		index_size *= 2;
	if (flow_table_init_slots(ft, capacity, stride < sizeof(struct flow_key) ? sizeof(struct flow_key) : stride))
		return -ENOMEM;
	ft->index_mask = index_size - 1;
	ft->index = calloc(index_size, sizeof(*ft->index));
	if (!ft->index) {
		flow_table_free(ft);
		return -ENOMEM;
	}
	return 0;
}

void flow_table_free(struct flow_table *ft)
{
	free(ft->records);
	free(ft->index);
	free(ft->free_slots);
	free(ft->used);
	memset(ft, 0, sizeof(*ft));
}

void *flow_table_find(const struct flow_table *ft, const struct flow_key *key)
{
	if (!ft->index)
		return NULL;
	for (uint32_t i = key_hash(key) & ft->index_mask; ft->index[i]; i = (i + 1) & ft->index_mask) {
		void *record = record_at(ft, ft->index[i] - 1);

		if (!memcmp(record, key, sizeof(*key)))
			return record;
	}
	return NULL;
}

void *flow_table_add(struct flow_table *ft, const struct flow_key *key)
{
	uint32_t slot, i;
	void *record;

	if (ft->count >= ft->capacity)
		return NULL;
	slot = ft->n_free ? ft->free_slots[--ft->n_free] : ft->high++;
	record = record_at(ft, slot);
	memset(record, 0, ft->stride);
	ft->used[slot / 64] |= 1ULL << (slot % 64);
	ft->count++;
	if (!key)
		return record;
	memcpy(record, key, sizeof(*key));
	for (i = key_hash(key) & ft->index_mask; ft->index[i]; i = (i + 1) & ft->index_mask)
		;
	ft->index[i] = slot + 1;
	return record;
}

uint32_t flow_table_slot(const struct flow_table *ft, const void *record)
{
	return (uint32_t)(((const unsigned char *)record - ft->records) / ft->stride);
}

void *flow_table_at(const struct flow_table *ft, uint32_t slot)
{
	return record_at(ft, slot);
}

/* Whether an entry whose home is home may sit at j with the hole at i: it may if
 * home lies cyclically in (i, j]. */
static bool stays(uint32_t home, uint32_t i, uint32_t j)
{
	return i <= j ? i < home && home <= j : i < home || home <= j;
}

static void index_remove(struct flow_table *ft, const void *record, uint32_t slot)
{
	uint32_t i = key_hash(record) & ft->index_mask, j;

	while (ft->index[i] != slot + 1)
		i = (i + 1) & ft->index_mask;
	/* Backward shift: later entries of the probe run move into the hole, so no
	 * tombstone is ever left to lengthen a search. */
	for (j = (i + 1) & ft->index_mask; ft->index[j]; j = (j + 1) & ft->index_mask) {
		uint32_t home = key_hash(record_at(ft, ft->index[j] - 1)) & ft->index_mask;

		if (stays(home, i, j))
			continue;
		ft->index[i] = ft->index[j];
		i = j;
	}
	ft->index[i] = 0;
}

void flow_table_remove(struct flow_table *ft, void *record)
{
	uint32_t slot = flow_table_slot(ft, record);

	if (ft->index)
		index_remove(ft, record, slot);
	ft->used[slot / 64] &= ~(1ULL << (slot % 64));
	ft->free_slots[ft->n_free++] = slot;
	ft->count--;
}

void *flow_table_next(const struct flow_table *ft, const void *prev)
{
	uint32_t slot = prev ? flow_table_slot(ft, prev) + 1 : 0;

	for (; slot < ft->high; slot++) {
		if (!ft->used[slot / 64]) {
			slot |= 63; /* a whole word of free slots */
			continue;
		}
		if (slot_used(ft, slot))
			return record_at(ft, slot);
	}
	return NULL;
}
