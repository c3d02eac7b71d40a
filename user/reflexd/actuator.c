#include <bpf/bpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "reflexd/actuator.h"

#define HOST(a) ((struct host_actuator *)((char *)(a) - offsetof(struct host_actuator, base)))

/* Deletes keys[0..n) a batch at a time: a key without an entry stops a batch
 * (ENOENT) and is skipped. Returns the failures. */
static unsigned delete_run(int fd, struct flow_key *keys, unsigned n)
{
	unsigned failed = 0;

	while (n) {
		__u32 count = n;

		if (bpf_map_delete_batch(fd, keys, &count, NULL) == 0 || count >= n)
			return failed;
		failed += errno != ENOENT;
		keys += count + 1;
		n -= count + 1;
	}
	return failed;
}

static unsigned update_run(int fd, struct flow_key *keys, struct cwnd_decision *values, unsigned n)
{
	__u32 count = n;
	unsigned failed = 0;

	if (bpf_map_update_batch(fd, keys, values, &count, NULL) == 0)
		return 0;
	/* The batch stopped at count: the rest one by one, to count each failure. */
	for (unsigned i = count; i < n; i++)
		failed += bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY) != 0;
	return failed;
}

static void batch_write(struct decision_batch *b)
{
	for (unsigned start = 0, end; start < b->n; start = end) {
		bool update = b->value[start].cwnd_target != 0;

		for (end = start + 1; end < b->n && (b->value[end].cwnd_target != 0) == update; end++)
			;
		b->failed += update ? update_run(b->fd, &b->key[start], &b->value[start], end - start)
				    : delete_run(b->fd, &b->key[start], end - start);
	}
	/* After the writes: sockops reads the generation before its lookup, so it either
	 * sees the new decision or a generation that makes it look again. */
	if (b->n && b->gen)
		__atomic_fetch_add(b->gen, 1, __ATOMIC_RELEASE);
	b->n = 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

unsigned decision_batch_add(struct decision_batch *b, const struct flow_key *key, uint32_t cwnd_target,
			    uint64_t decided_ns)
{
	uint64_t now = monotonic_ns();
	unsigned written = 0;

	if (b->n == DECISION_BATCH_MAX || (b->n && now - b->first_ns >= DECISION_BATCH_DELAY_NS)) {
		written = b->n;
		batch_write(b);
	}
	if (!b->n)
		b->first_ns = now;
	b->key[b->n] = *key;
	b->value[b->n] = (struct cwnd_decision){ .cwnd_target = cwnd_target, .decided_ns = decided_ns };
	b->n++;
	return written;
}

unsigned decision_batch_flush(struct decision_batch *b)
{
	unsigned failed;

	batch_write(b);
	failed = b->failed;
	b->failed = 0;
	return failed;
}

static int map_decide(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct host_actuator *h = HOST(a);

	if (h->decisions_fd < 0)
		return -ENODEV;
	decision_batch_add(&h->batch, key, cwnd_target, decided_ns);
	return 0;
}

static unsigned map_flush(struct actuator *a)
{
	return decision_batch_flush(&HOST(a)->batch);
}

static int map_beat(struct actuator *a, uint64_t now_ns)
{
	struct host_actuator *h = HOST(a);
	__u32 zero = 0;
	__u64 beat = now_ns;

	if (h->heartbeat_fd < 0)
		return -ENODEV;
	return bpf_map_update_elem(h->heartbeat_fd, &zero, &beat, BPF_ANY) ? -errno : 0;
}

static int map_configure(struct actuator *a, const struct reflex_config *cfg)
{
	return loader_config_update(HOST(a)->bpf, cfg);
}

static int decision_gen_map(struct host_actuator *h, struct reflex_err *err)
{
	int fd = loader_decision_gen_fd(h->bpf);
	void *p;

	if (fd < 0)
		return 0;
	p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		reflex_err_set(err, "cannot mmap the decision_gen map: %s", strerror(errno));
		return -1;
	}
	h->decision_gen = p;
	return 0;
}

int host_actuator_start(struct host_actuator *h, enum reflex_actuator kind, struct reflex_bpf *rb,
			struct reflex_err *err)
{
	memset(h, 0, sizeof(*h));
	h->base = (struct actuator){
		.name = kind == REFLEX_ACTUATOR_CC ? "cc" : "clamp",
		.flows = rb->sockops != NULL,
		.decide = map_decide,
		.flush = map_flush,
		.beat = map_beat,
		.configure = map_configure,
	};
	h->bpf = rb;
	h->decisions_fd = loader_decisions_fd(rb);
	h->heartbeat_fd = loader_heartbeat_fd(rb);
	if (decision_gen_map(h, err))
		return -1;
	h->batch.fd = h->decisions_fd;
	h->batch.gen = h->decision_gen;
	if (kind != REFLEX_ACTUATOR_CC)
		return 0;
	h->cc_started = true;
	return cc_actuator_start(&h->cc, rb, err);
}

void host_actuator_stop(struct host_actuator *h)
{
	if (h->batch.n && h->decisions_fd >= 0)
		decision_batch_flush(&h->batch);
	if (h->cc_started)
		cc_actuator_stop(&h->cc);
	if (h->decision_gen)
		munmap(h->decision_gen, (size_t)sysconf(_SC_PAGESIZE));
	memset(h, 0, sizeof(*h));
}
