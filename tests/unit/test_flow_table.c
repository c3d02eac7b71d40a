/* The flat flow table: finds what was added, forgets what was removed (through
 * many removals in the middle of probe runs), refuses beyond its capacity, keeps
 * records in place, and walks every record in use once, removals included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/flow_table.h"

struct rec {
	struct flow_key key;
	uint32_t value;
};

static struct flow_key key_of(uint32_t i)
{
	struct flow_key key = { .family = 2, .proto = 6, .sport = (uint16_t)i, .dport = (uint16_t)(i >> 16) };

	key.saddr[0] = 0x0100000a;
	key.daddr[0] = 0x0200000a;
	return key;
}

static void test_add_find_remove_against_a_reference(void **state)
{
	enum { CAP = 1000, KEYS = 1500, OPS = 200000 };
	struct flow_table ft;
	bool present[KEYS] = { false };
	unsigned n = 0;
	uint32_t seed = 7;

	(void)state;
	assert_int_equal(flow_table_init(&ft, CAP, sizeof(struct rec)), 0);
	for (unsigned op = 0; op < OPS; op++) {
		uint32_t k;
		struct flow_key key;
		struct rec *r;

		seed = seed * 1664525u + 1013904223u;
		k = (seed >> 8) % KEYS;
		key = key_of(k);
		r = flow_table_find(&ft, &key);
		assert_int_equal(r != NULL, present[k]);
		if (r) {
			assert_int_equal(r->value, k);
			flow_table_remove(&ft, r);
			present[k] = false;
			n--;
		} else {
			r = flow_table_add(&ft, &key);
			if (n == CAP) {
				assert_null(r);
				continue;
			}
			assert_non_null(r);
			assert_int_equal(r->value, 0); /* a reused slot starts zeroed */
			r->value = k;
			present[k] = true;
			n++;
		}
		assert_int_equal(ft.count, n);
	}
	for (uint32_t k = 0; k < KEYS; k++) {
		struct flow_key key = key_of(k);

		assert_int_equal(flow_table_find(&ft, &key) != NULL, present[k]);
	}
	flow_table_free(&ft);
}

static void test_walk_sees_each_record_once_while_removing(void **state)
{
	enum { N = 300 };
	struct flow_table ft;
	unsigned seen = 0, removed = 0;
	struct rec *kept;

	(void)state;
	assert_int_equal(flow_table_init(&ft, N, sizeof(struct rec)), 0);
	for (uint32_t k = 0; k < N; k++) {
		struct flow_key key = key_of(k);
		struct rec *r = flow_table_add(&ft, &key);

		assert_non_null(r);
		r->value = k;
	}
	kept = flow_table_find(&ft, &(struct flow_key){ 0 });
	assert_null(kept);
	kept = flow_table_find(&ft, &(struct flow_key[]){ key_of(1) }[0]);
	assert_non_null(kept);
	for (struct rec *r = flow_table_next(&ft, NULL); r; r = flow_table_next(&ft, r)) {
		seen++;
		if (r->value % 3 == 0) {
			flow_table_remove(&ft, r);
			removed++;
		}
	}
	assert_int_equal(seen, N);
	assert_int_equal(ft.count, N - removed);
	/* records do not move while others go */
	assert_ptr_equal(flow_table_find(&ft, &(struct flow_key[]){ key_of(1) }[0]), kept);
	assert_int_equal(kept->value, 1);
	seen = 0;
	for (struct rec *r = flow_table_next(&ft, NULL); r; r = flow_table_next(&ft, r)) {
		struct flow_key key = key_of(r->value);

		assert_true(r->value % 3 != 0);
		assert_ptr_equal(flow_table_find(&ft, &key), r);
		seen++;
	}
	assert_int_equal(seen, N - removed);
	flow_table_free(&ft);
}

/* A table of slots: records by slot number, no key, freed slots reused, full at capacity. */
static void test_slots_without_keys(void **state)
{
	enum { N = 100 };
	struct flow_table ft;
	uint32_t *rec[N];
	unsigned seen = 0;

	(void)state;
	assert_int_equal(flow_table_init_slots(&ft, N, sizeof(uint32_t)), 0);
	for (uint32_t i = 0; i < N; i++) {
		rec[i] = flow_table_add(&ft, NULL);
		assert_non_null(rec[i]);
		assert_int_equal(*rec[i], 0);
		*rec[i] = i + 1;
		assert_ptr_equal(flow_table_at(&ft, flow_table_slot(&ft, rec[i])), rec[i]);
	}
	assert_null(flow_table_add(&ft, NULL));
	assert_null(flow_table_find(&ft, &(struct flow_key){ 0 }));
	flow_table_remove(&ft, rec[40]);
	for (uint32_t *r = flow_table_next(&ft, NULL); r; r = flow_table_next(&ft, r)) {
		assert_int_not_equal(*r, 41);
		seen++;
	}
	assert_int_equal(seen, N - 1);
	assert_ptr_equal(flow_table_add(&ft, NULL), rec[40]);
	assert_int_equal(*rec[40], 0);
	assert_int_equal(ft.count, N);
	flow_table_free(&ft);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove_against_a_reference),
		cmocka_unit_test(test_walk_sees_each_record_once_while_removing),
		cmocka_unit_test(test_slots_without_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
