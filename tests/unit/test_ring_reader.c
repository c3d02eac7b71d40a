// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * lib/ring_reader against a real BPF ring buffer: the bench's synthetic producer
 * (tests/bench/pipeline_producer.bpf.c) writes sock_sample records through
 * BPF_PROG_TEST_RUN into a 64 KiB ring, so that records cross its end every few
 * hundred. Needs root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/ring_reader.h"
#include "pipeline_producer.skel.h"
#include "reflex.h"

#define RING_BYTES (64 * 1024)
#define FLOWS 7

struct stream {
	uint64_t next_seq; /* the producer's sequence number the next record must carry */
	uint64_t records;
	uint64_t stop_at; /* return -ECANCELED at this record (0: never) */
	size_t bad_size;
};

static int setup(void **state)
{
	struct pipeline_producer_bpf *skel = pipeline_producer_bpf__open();

	if (!skel)
		return -1;
	if (bpf_map__set_max_entries(skel->maps.events, RING_BYTES) || pipeline_producer_bpf__load(skel)) {
		pipeline_producer_bpf__destroy(skel);
		return -1;
	}
	skel->bss->flows = FLOWS;
	*state = skel;
	return 0;
}

static int teardown(void **state)
{
	pipeline_producer_bpf__destroy(*state);
	return 0;
}

static void produce(struct pipeline_producer_bpf *skel, uint32_t records)
{
	char packet[64] = { 0 };
	DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
			    .repeat = records);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.produce), &opts), 0);
}

/* Each record is the producer's next: flow seq % FLOWS, delivered (seq / FLOWS) x 10. */
static int on_record(void *ctx, void *data, size_t size)
{
	struct stream *st = ctx;
	const struct sock_sample *s = data;
	uint64_t seq = st->next_seq;

	if (st->stop_at && st->records + 1 == st->stop_at) {
		st->stop_at = 0;
		return -ECANCELED;
	}
	if (size != sizeof(*s))
		st->bad_size = size;
	assert_int_equal(s->cookie, seq % FLOWS + 1);
	assert_int_equal(s->delivered, (uint32_t)(seq / FLOWS) * 10);
	assert_int_equal(s->bytes_acked, (seq / FLOWS) * 14480);
	assert_int_equal(s->mss_cache, 1448);
	st->next_seq++;
	st->records++;
	return 0;
}

static void test_every_record_in_order_across_the_end(void **state)
{
	struct pipeline_producer_bpf *skel = *state;
	struct stream st = { 0 };
	const size_t record = sizeof(struct sock_sample) + 8; /* with its header; a multiple of 8 */
	uint64_t crossing = 0;
	struct ring_reader r;

	/* The records whose data runs past the ring's end (a record that ends on it does not). */
	for (uint64_t n = 0; n < 200 * 137; n++) {
		uint64_t data = (n * record + 8) % RING_BYTES;

		crossing += data + sizeof(struct sock_sample) > RING_BYTES;
	}
	assert_int_equal(ring_reader_init(&r), 0);
	assert_int_equal(ring_reader_add(&r, bpf_map__fd(skel->maps.events), on_record, &st), 0);
	/* Rounds of a size prime to the ring's record count, 60 times round the ring. */
	for (int round = 0; round < 200; round++) {
		produce(skel, 137);
		assert_int_equal(ring_reader_consume(&r), 137);
	}
	assert_int_equal(st.records, 200 * 137);
	assert_int_equal(skel->bss->lost, 0);
	assert_int_equal(st.bad_size, 0);
	print_message("%llu records, %llu crossed the end\n", (unsigned long long)st.records,
		      (unsigned long long)r.rings[0].wrapped);
	assert_int_equal(r.rings[0].wrapped, crossing);
	assert_int_equal(r.rings[0].oversized, 0);
	assert_int_equal(ring_reader_consume(&r), 0);
	ring_reader_free(&r);
}

static void test_a_full_ring_is_drained_whole(void **state)
{
	struct pipeline_producer_bpf *skel = *state;
	struct stream st = { 0 };
	struct ring_reader r;
	const unsigned per_ring = RING_BYTES / (sizeof(struct sock_sample) + 8);

	assert_int_equal(ring_reader_init(&r), 0);
	assert_int_equal(ring_reader_add(&r, bpf_map__fd(skel->maps.events), on_record, &st), 0);
	produce(skel, 100); /* start off the ring's beginning */
	assert_int_equal(ring_reader_consume(&r), 100);
	produce(skel, per_ring + 50); /* the last 50 find the ring full */
	assert_int_equal(skel->bss->lost, 50);
	assert_int_equal(ring_reader_consume(&r), per_ring);
	assert_int_equal(st.records, 100 + per_ring);
	ring_reader_free(&r);
}

static void test_a_callback_error_stops_and_resumes_after_that_record(void **state)
{
	struct pipeline_producer_bpf *skel = *state;
	struct stream st = { .stop_at = 4 };
	struct ring_reader r;

	assert_int_equal(ring_reader_init(&r), 0);
	assert_int_equal(ring_reader_add(&r, bpf_map__fd(skel->maps.events), on_record, &st), 0);
	produce(skel, 10);
	assert_int_equal(ring_reader_consume(&r), -ECANCELED);
	assert_int_equal(st.records, 3);
	/* The fourth record was handed over and refused: it is not handed again. */
	st.next_seq++;
	assert_int_equal(ring_reader_consume(&r), 6);
	assert_int_equal(st.records, 9);
	ring_reader_free(&r);
}

static void test_only_ring_buffers_are_taken(void **state)
{
	struct ring_reader r;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "not_a_ring", 4, 4, 1, NULL);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ring_reader_init(&r), 0);
	assert_int_equal(ring_reader_add(&r, fd, on_record, NULL), -EINVAL);
	assert_true(ring_reader_add(&r, -1, on_record, NULL) < 0);
	assert_int_equal(r.n, 0);
	ring_reader_free(&r);
	close(fd);
}

static void test_a_zeroed_reader_frees_as_nothing(void **state)
{
	struct ring_reader r = { 0 };

	(void)state;
	ring_reader_free(&r);
	assert_int_equal(ring_reader_consume(&r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_record_in_order_across_the_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_full_ring_is_drained_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_callback_error_stops_and_resumes_after_that_record, setup,
						teardown),
		cmocka_unit_test(test_only_ring_buffers_are_taken),
		cmocka_unit_test(test_a_zeroed_reader_frees_as_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
