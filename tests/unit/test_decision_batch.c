/* Decisions written in batches (reflexd/actuator.h) into a real BPF hash map of
 * cwnd_decisions' layout: the map ends as if every decision had been written on its
 * own, in order (updates, withdrawals, withdrawals of nothing, a full batch written
 * on the way), decision_gen moves after each write, and nothing counts as failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <string.h>
#include <unistd.h>

#include "reflexd/actuator.h"

#define FLOWS 3000

static struct flow_key key_of(uint32_t i)
{
	struct flow_key k = { .family = 2, .proto = 6, .sport = (uint16_t)i, .dport = (uint16_t)(i >> 16) };

	k.saddr[0] = 0x0100000a;
	k.daddr[0] = 0x0200000a;
	return k;
}

static void test_batches_end_as_single_writes(void **state)
{
	static struct decision_batch b;
	static uint32_t want[FLOWS]; /* 0: no entry */
	uint64_t gen = 0;
	uint32_t seed = 11;
	unsigned entries = 0;

	(void)state;
	if (geteuid() != 0)
		skip();
	memset(&b, 0, sizeof(b));
	b.fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_decisions", sizeof(struct flow_key),
			      sizeof(struct cwnd_decision), FLOWS, NULL);
	assert_true(b.fd >= 0);
	b.gen = &gen;
	/* 3 x DECISION_BATCH_MAX decisions and more: runs of updates and withdrawals,
	 * some of flows without a decision, some of one flow twice in a batch. */
	for (unsigned i = 0; i < 3 * DECISION_BATCH_MAX + 100; i++) {
		uint32_t f, cwnd;
		struct flow_key k;

		seed = seed * 1664525u + 1013904223u;
		f = (seed >> 8) % FLOWS;
		cwnd = (seed >> 4) % 3 == 0 ? 0 : 10 + (seed >> 20) % 1000;
		k = key_of(f);
		decision_batch_add(&b, &k, cwnd, i + 1);
		want[f] = cwnd;
	}
	assert_true(gen >= 3); /* written on the way: the batch was full three times */
	assert_int_equal(decision_batch_flush(&b), 0);
	assert_int_equal(b.n, 0);
	for (uint32_t f = 0; f < FLOWS; f++) {
		struct flow_key k = key_of(f);
		struct cwnd_decision d;
		int found = bpf_map_lookup_elem(b.fd, &k, &d) == 0;

		assert_int_equal(found, want[f] != 0);
		if (found)
			assert_int_equal(d.cwnd_target, want[f]);
		entries += found;
	}
	assert_true(entries > 0);
	close(b.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batches_end_as_single_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
