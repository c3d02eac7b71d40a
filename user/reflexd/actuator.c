#include <bpf/bpf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "reflexd/actuator.h"

#define HOST(a) ((struct host_actuator *)((char *)(a) - offsetof(struct host_actuator, base)))

static int map_decide(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct host_actuator *h = HOST(a);
	struct cwnd_decision d = { .cwnd_target = cwnd_target, .decided_ns = decided_ns };

	if (h->decisions_fd < 0)
		return -ENODEV;
	if (cwnd_target)
		return bpf_map_update_elem(h->decisions_fd, key, &d, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(h->decisions_fd, key) && errno != ENOENT)
		return -errno;
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
	if (kind != REFLEX_ACTUATOR_CC)
		return 0;
	h->cc_started = true;
	return cc_actuator_start(&h->cc, rb, err);
}

void host_actuator_stop(struct host_actuator *h)
{
	if (h->cc_started)
		cc_actuator_stop(&h->cc);
	memset(h, 0, sizeof(*h));
}
