#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "lib/ring_reader.h"

int ring_reader_init(struct ring_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	return r->epoll_fd < 0 ? -errno : 0;
}

int ring_reader_add(struct ring_reader *r, int map_fd, ring_record_fn fn, void *ctx)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct bpf_map_info info = { 0 };
	uint32_t info_len = sizeof(info);
	struct ring_reader_ring *ring;
	struct epoll_event ev = { .events = EPOLLIN };
	void *consumer, *producer;
	int ret;

	if (r->n == RING_READER_MAX)
		return -ENOSPC;
	if (bpf_obj_get_info_by_fd(map_fd, &info, &info_len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_RINGBUF || !info.max_entries || (info.max_entries & (info.max_entries - 1)))
		return -EINVAL;
	ring = &r->rings[r->n];
	consumer = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (consumer == MAP_FAILED)
		return -errno;
	/* One page of producer position, then the data once (libbpf maps 2 x max_entries). */
	producer = mmap(NULL, page + info.max_entries, PROT_READ, MAP_SHARED, map_fd, (off_t)page);
	if (producer == MAP_FAILED) {
		ret = -errno;
		munmap(consumer, page);
		return ret;
	}
	ev.data.u32 = r->n;
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, map_fd, &ev)) {
		ret = -errno;
		munmap(producer, page + info.max_entries);
		munmap(consumer, page);
		return ret;
	}
	*ring = (struct ring_reader_ring){
		.fn = fn,
		.ctx = ctx,
		.consumer_pos = consumer,
		.producer_pos = producer,
		.data = (const unsigned char *)producer + page,
		.size = info.max_entries,
		.mapped = page + info.max_entries,
	};
	r->n++;
	return 0;
}

int ring_reader_epoll_fd(const struct ring_reader *r)
{
	return r->epoll_fd;
}

/* The record at offset off of the data, in one piece: in place, or copied out when it
 * crosses the end; NULL when it crosses and is longer than the bounce buffer. */
static const void *record_at(struct ring_reader *r, struct ring_reader_ring *ring, size_t off, uint32_t len)
{
	size_t first;

	if (off + len <= ring->size)
		return ring->data + off;
	if (len > sizeof(r->bounce)) {
		ring->oversized++;
		return NULL;
	}
	first = ring->size - off;
	memcpy(r->bounce, ring->data + off, first);
	memcpy((unsigned char *)r->bounce + first, ring->data, len - first);
	ring->wrapped++;
	return r->bounce;
}

static int ring_consume(struct ring_reader *r, struct ring_reader_ring *ring)
{
	uint64_t cons = __atomic_load_n(ring->consumer_pos, __ATOMIC_ACQUIRE);
	/* At most a ring's worth a call: a producer that never lets up must not keep the
	 * caller (reflexd's loop, its windows and heartbeat) from ever getting back. */
	const uint64_t stop = cons + ring->size;
	size_t mask = ring->size - 1;
	int count = 0;
	bool more;

	do {
		uint64_t prod = __atomic_load_n(ring->producer_pos, __ATOMIC_ACQUIRE);

		more = false;
		while (cons < prod && cons < stop) {
			/* Headers are 8-byte aligned in a ring of whole pages: never split. */
			size_t hdr_off = cons & mask;
			uint32_t len = __atomic_load_n((const uint32_t *)(ring->data + hdr_off), __ATOMIC_ACQUIRE);
			const void *record;
			int ret;

			if (len & BPF_RINGBUF_BUSY_BIT)
				goto out;
			more = true;
			cons += ((len & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				record = record_at(r, ring, (hdr_off + BPF_RINGBUF_HDR_SZ) & mask, len);
				ret = record ? ring->fn(ring->ctx, (void *)record, len) : 0;
				if (ret < 0) {
					__atomic_store_n(ring->consumer_pos, cons, __ATOMIC_RELEASE);
					return ret;
				}
				count += record != NULL;
			}
			__atomic_store_n(ring->consumer_pos, cons, __ATOMIC_RELEASE);
		}
	} while (more);
out:
	return count;
}

int ring_reader_consume(struct ring_reader *r)
{
	int total = 0;

	for (unsigned i = 0; i < r->n; i++) {
		int ret = ring_consume(r, &r->rings[i]);

		if (ret < 0)
			return ret;
		total += ret;
	}
	return total;
}

void ring_reader_free(struct ring_reader *r)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (unsigned i = 0; i < r->n; i++) {
		munmap((void *)r->rings[i].producer_pos, r->rings[i].mapped);
		munmap(r->rings[i].consumer_pos, page);
	}
	if (r->epoll_fd > 0)
		close(r->epoll_fd);
	memset(r, 0, sizeof(*r));
}
