/*
 * The consumer of BPF ring buffers, in place of libbpf's ring_buffer: libbpf maps
 * each ring's data twice in a row so that a record crossing the end reads as one
 * piece, and the kernel fills both mappings at mmap, so a ring cost twice its size
 * in reflexd's RSS (16 MiB of 26 for the two default 4 MiB rings). Here the data is
 * mapped once, and the few records that cross the end are copied out into a buffer
 * first. Same protocol as the kernel's (kernel/bpf/ringbuf.c): 8-byte headers whose
 * length carries the busy and discard bits, positions read with acquire and the
 * consumer position published with release. Depends on lib/ only.
 */
#ifndef REFLEX_LIB_RING_READER_H
#define REFLEX_LIB_RING_READER_H

#include <stddef.h>
#include <stdint.h>

/* Same as libbpf's ring_buffer_sample_fn: data is valid only during the call, and a
 * negative return stops the consume with that error. */
typedef int (*ring_record_fn)(void *ctx, void *data, size_t size);

#define RING_READER_MAX 4
/* The longest record that may cross the ring's end (reflex's are under 200 bytes);
 * a longer one is skipped and counted in `oversized`. */
#define RING_RECORD_MAX 4096

struct ring_reader_ring {
	ring_record_fn fn;
	void *ctx;
	uint64_t *consumer_pos; /* the ring's first page, ours to write */
	const uint64_t *producer_pos; /* the second page, read-only */
	const unsigned char *data;    /* size bytes right after the producer page */
	size_t size;
	size_t mapped; /* of the producer page and data */
	uint64_t wrapped;   /* records copied out because they crossed the end */
	uint64_t oversized; /* records that crossed the end and were too long: skipped */
};

struct ring_reader {
	struct ring_reader_ring rings[RING_READER_MAX];
	unsigned n;
	int epoll_fd; /* 0: none (a zeroed reader, never initialized, frees as nothing) */
	uint64_t bounce[RING_RECORD_MAX / sizeof(uint64_t)]; /* 8-aligned, as the ring's records */
};

/* 0 or -errno; ring_reader_free undoes it (and is a no-op on a zeroed reader). */
int ring_reader_init(struct ring_reader *r);
/* Maps the ring buffer map_fd and reads it on ring_reader_consume; 0 or -errno
 * (-EINVAL: not a ring buffer, -ENOSPC: RING_READER_MAX rings already). */
int ring_reader_add(struct ring_reader *r, int map_fd, ring_record_fn fn, void *ctx);
/* Readable when a ring woke its consumer (BPF_RB_NO_WAKEUP records do not). */
int ring_reader_epoll_fd(const struct ring_reader *r);
/* Hands the committed records of every ring to its fn, at most a ring's size of them
 * per ring and call; the count of records handed, or a negative fn's return. */
int ring_reader_consume(struct ring_reader *r);
void ring_reader_free(struct ring_reader *r);

#endif
