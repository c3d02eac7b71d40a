#include <bpf/bpf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reflexd/actuator.h"

#define HOST(a) ((struct host_actuator *)((char *)(a) - offsetof(struct host_actuator, base)))

static int map_decide(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct host_actuator *h = HOST(a);
	struct cwnd_decision d = { .cwnd_target = cwnd_target, .decided_ns = decided_ns };

	if (h->decisions_fd < 0)
		return -ENODEV;
	if (cwnd_target) {
		if (bpf_map_update_elem(h->decisions_fd, key, &d, BPF_ANY))
			return -errno;
	} else if (bpf_map_delete_elem(h->decisions_fd, key)) {
		return errno == ENOENT ? 0 : -errno;
	}
	/* After the write: sockops reads the generation before its lookup, so it either
	 * sees the new decision or a generation that makes it look again. */
	if (h->decision_gen)
		__atomic_fetch_add(h->decision_gen, 1, __ATOMIC_RELEASE);
	return 0;
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
		.beat = map_beat,
		.configure = map_configure,
	};
	h->bpf = rb;
	h->decisions_fd = loader_decisions_fd(rb);
	h->heartbeat_fd = loader_heartbeat_fd(rb);
	if (decision_gen_map(h, err))
		return -1;
	if (kind != REFLEX_ACTUATOR_CC)
		return 0;
	h->cc_started = true;
	return cc_actuator_start(&h->cc, rb, err);
}

void host_actuator_stop(struct host_actuator *h)
{
	if (h->cc_started)
		cc_actuator_stop(&h->cc);
	if (h->decision_gen)
		munmap(h->decision_gen, (size_t)sysconf(_SC_PAGESIZE));
	memset(h, 0, sizeof(*h));
}
