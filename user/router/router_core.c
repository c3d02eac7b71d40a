/* The router's decisions from its telemetry: see router_core.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "router/router_core.h"

#define RTT_GAIN (1.0 / 8)

static double ewma(double old, double sample)
{
	return old == 0 ? sample : old + RTT_GAIN * (sample - old);
}

static void note(struct router_core *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct router_core *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!c->ops.event)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->ops.event(c->ctx, msg);
}

void router_core_init(struct router_core *c, struct bandit *bandit, const struct classify_table *classes,
		      uint64_t reward_interval_ns, const struct router_core_ops *ops, void *ctx, uint64_t now_ns)
{
	memset(c, 0, sizeof(*c));
	c->bandit = bandit;
	c->classes = classes;
	c->ops = *ops;
	c->ctx = ctx;
	c->reward_interval_ns = reward_interval_ns;
	c->n_paths = bandit_path_count(bandit);
	{
		struct bandit_view *v = malloc(sizeof(*v));

		/* The bandit keeps its config to itself but for the table. */
		if (v) {
			bandit_snapshot(bandit, now_ns, v);
			c->dead_after_ns = v->config.dead_after_ns;
			free(v);
		}
		if (!c->dead_after_ns)
			c->dead_after_ns = 1000ULL * 1000 * 1000;
	}
	c->last_path_tick_ns = now_ns;
	c->last_reward_ns = now_ns;
	for (int p = 0; p < ROUTER_MAX_PATHS; p++)
		c->path[p].retry_after_ns = ROUTER_RETRY_FIRST_NS;
}

void router_core_set_nexthops(struct router_core *c, int path, bool has_nexthop4, bool has_nexthop6)
{
	if (path < 0 || path >= c->n_paths)
		return;
	c->path[path].has_nexthop4 = has_nexthop4;
	c->path[path].has_nexthop6 = has_nexthop6;
}

void router_core_free(struct router_core *c)
{
	struct router_flow_state *f, *tmp;

	HASH_ITER(hh, c->flows, f, tmp) {
		HASH_DEL(c->flows, f);
		free(f);
	}
	c->n_flows = 0;
}

struct router_flow_state *router_core_flow(struct router_core *c, const struct flow_key *key)
{
	struct router_flow_state *f = NULL;

	HASH_FIND(hh, c->flows, key, sizeof(*key), f);
	return f;
}

void router_flow_facts(const struct router_flow_state *f, uint64_t now_ns, struct flow_facts *facts)
{
	uint64_t packets = f->total[ROUTER_DIR_UP].packets + f->total[ROUTER_DIR_DOWN].packets;
	uint64_t bytes = f->total[ROUTER_DIR_UP].bytes + f->total[ROUTER_DIR_DOWN].bytes;
	uint64_t span_ns = now_ns > f->first_ns ? now_ns - f->first_ns : 0;

	memset(facts, 0, sizeof(*facts));
	facts->proto = f->key.proto;
	facts->dscp = f->dscp;
	facts->sport = f->key.sport;
	facts->dport = f->key.dport;
	facts->bytes = bytes;
	facts->packet_size_mean = packets ? (uint32_t)(bytes / packets) : 0;
	/* A rate needs some time to mean anything: below 100 ms it is 0, as at the first packet. */
	if (span_ns >= 100ULL * 1000 * 1000) {
		double rate = (double)packets * 1e9 / (double)span_ns;

		facts->packet_rate = rate > UINT32_MAX ? UINT32_MAX : (uint32_t)rate;
	}
}

static bool path_carries(const struct router_core *c, int path, uint8_t family)
{
	if (path < 0 || path >= c->n_paths)
		return false;
	return family == AF_INET6 ? c->path[path].has_nexthop6 : c->path[path].has_nexthop4;
}

void router_core_publish_next_paths(struct router_core *c)
{
	if (!c->ops.next_path)
		return;
	for (int cls = 0; cls < TRAFFIC_CLASS_COUNT; cls++) {
		int path = bandit_select(c->bandit, (enum traffic_class)cls);

		c->ops.next_path(c->ctx, (enum traffic_class)cls, path);
	}
}

static bool is_tcp(const struct router_flow_state *f)
{
	return f->key.proto == IPPROTO_TCP;
}

/* Data delivered both ways: what the other end acknowledged (TCP), or what was carried (UDP). */
static uint64_t flow_delivered(const struct router_flow_state *f, const struct router_sample *s)
{
	if (is_tcp(f))
		return s->delta[ROUTER_DIR_UP].acked_bytes + s->delta[ROUTER_DIR_DOWN].acked_bytes;
	return s->delta[ROUTER_DIR_UP].payload_bytes + s->delta[ROUTER_DIR_DOWN].payload_bytes;
}

/* Data of direction d delivered: what the other end acknowledged (TCP), or carried (UDP). */
static uint64_t dir_delivered(const struct router_flow_state *f, const struct router_sample *s, int d)
{
	if (is_tcp(f))
		return s->delta[d == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP].acked_bytes;
	return s->delta[d].payload_bytes;
}

static void stats_add(struct router_dir_stats *to, const struct router_dir_stats *d)
{
	to->packets += d->packets;
	to->bytes += d->bytes;
	to->payload_bytes += d->payload_bytes;
	to->data_packets += d->data_packets;
	to->retrans_packets += d->retrans_packets;
	to->acked_bytes += d->acked_bytes;
}

static struct router_flow_state *flow_new(struct router_core *c, const struct router_sample *s)
{
	struct router_flow_state *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->key = s->key;
	f->path = -1;
	f->route_path = -1;
	f->rule = -1;
	f->from_start = s->flags & ROUTER_FLOW_FROM_START;
	f->dscp = (uint8_t)s->dscp;
	f->first_ns = s->ts_ns;
	f->acc.start_ns = s->ts_ns;
	f->reward = NAN;
	HASH_ADD(hh, c->flows, key, sizeof(f->key), f);
	c->n_flows++;
	c->stats.flows_seen++;
	return f;
}

static void flow_uncount(struct router_core *c, struct router_flow_state *f)
{
	if (f->counted && f->path >= 0)
		bandit_flow_end(c->bandit, f->cls, f->path);
	f->counted = false;
}

static void flow_remove(struct router_core *c, struct router_flow_state *f, bool forget)
{
	flow_uncount(c, f);
	if (forget && c->ops.forget)
		c->ops.forget(c->ctx, &f->key);
	HASH_DEL(c->flows, f);
	c->n_flows--;
	free(f);
}

/* Put f on path: the decision first, then the bandit's live-flow accounting. */
static int flow_put(struct router_core *c, struct router_flow_state *f, int path, uint64_t now_ns)
{
	int ret = c->ops.decide(c->ctx, &f->key, path, f->cls, now_ns);

	if (ret) {
		c->stats.decide_errors++;
		return ret;
	}
	flow_uncount(c, f);
	f->path = path;
	if (bandit_flow_start(c->bandit, f->cls, path) == 0)
		f->counted = true;
	return 0;
}

/* Its path is where its first packet went: NAT bound it to that uplink. */
static void flow_place(struct router_core *c, struct router_flow_state *f, const struct router_sample *s,
		       uint64_t now_ns)
{
	struct flow_facts facts;

	router_flow_facts(f, f->last_ns, &facts);
	f->cls = classify_flow(c->classes, &facts, &f->rule);
	if (f->from_start && (s->flags & ROUTER_FLOW_STEERED) && s->path < (uint32_t)c->n_paths) {
		/* The tc program placed it on the class's next path: account for it. */
		f->path = (int)s->path;
		if (bandit_flow_start(c->bandit, f->cls, f->path) == 0)
			f->counted = true;
		c->stats.placed++;
		router_core_publish_next_paths(c);
		return;
	}
	/* Seen mid-stream, or its first packet went where the kernel routes it: it stays
	 * there (moving a running TCP flow would reorder it, a NAT'd one break). */
	if (f->route_path >= 0 && path_carries(c, f->route_path, f->key.family) &&
	    flow_put(c, f, f->route_path, now_ns) == 0)
		c->stats.adopted++;
	else
		c->stats.unsteered++;
}

static void sample_fold(struct router_core *c, struct router_flow_state *f, const struct router_sample *s)
{
	const struct router_dir_stats *up = &s->delta[ROUTER_DIR_UP], *down = &s->delta[ROUTER_DIR_DOWN];
	int attributed;

	stats_add(&f->total[ROUTER_DIR_UP], up);
	stats_add(&f->total[ROUTER_DIR_DOWN], down);
	if (s->ts_ns > f->last_ns)
		f->last_ns = s->ts_ns;
	if (s->path < (uint32_t)c->n_paths)
		f->route_path = (int)s->path;

	if (s->lan_rtt_us && (f->lan_rtt_min_us == 0 || s->lan_rtt_us < f->lan_rtt_min_us))
		f->lan_rtt_min_us = s->lan_rtt_us;
	if (s->path_rtt_us) {
		double rtt = (double)s->path_rtt_us + f->lan_rtt_min_us;

		f->path_rtt_us = ewma(f->path_rtt_us, s->path_rtt_us);
		f->srtt_us = ewma(f->srtt_us, rtt);
		f->acc.rtt_sum_us += rtt;
		f->acc.rtt_samples++;
	}
	f->acc.packets += up->packets + down->packets;
	for (int d = 0; d < ROUTER_DIR_MAX; d++) {
		f->acc.data_packets[d] += s->delta[d].data_packets;
		f->acc.retrans_packets[d] += s->delta[d].retrans_packets;
		f->acc.delivered_dir_bytes[d] += dir_delivered(f, s, d);
		f->wscale[d] = s->wscale[d];
		if (s->wnd_enforced[d])
			f->wnd_enforced[d] = s->wnd_enforced[d];
	}
	f->handshake = s->flags & ROUTER_FLOW_HANDSHAKE;
	f->acc.delivered_bytes += flow_delivered(f, s);

	/* The path RTT belongs to where the up packets went (BPF's view), else to
	 * where the flow was put. Traffic counts come per packet from BPF instead
	 * (router_core_add_path_traffic). */
	attributed = s->path < (uint32_t)c->n_paths ? (int)s->path : f->path;
	if (attributed >= 0 && s->path_rtt_us) {
		c->acc[attributed].rtt_sum_us += s->path_rtt_us;
		c->acc[attributed].rtt_samples++;
	}
}

void router_core_add_path_traffic(struct router_core *c, int path, uint64_t sent_packets, uint64_t retrans_packets,
				  uint64_t delivered_bytes)
{
	if (path < 0 || path >= c->n_paths)
		return;
	c->acc[path].sent_packets += sent_packets;
	c->acc[path].retrans_packets += retrans_packets;
	c->acc[path].delivered_bytes += delivered_bytes;
}

void router_core_on_sample(struct router_core *c, const struct router_sample *s, uint64_t now_ns)
{
	struct router_flow_state *f = router_core_flow(c, &s->key);
	bool fresh = false;

	c->stats.records++;
	/* A NEW record for a known flow: the 5-tuple was reused after a close. */
	if (f && s->event == ROUTER_EVENT_NEW) {
		flow_remove(c, f, false);
		f = NULL;
	}
	if (!f) {
		f = flow_new(c, s);
		if (!f)
			return;
		fresh = true;
	}
	sample_fold(c, f, s);
	if (fresh)
		flow_place(c, f, s, now_ns);
	if ((s->flags & ROUTER_FLOW_CLOSED) && !f->closed) {
		f->closed = true;
		f->closed_ns = s->ts_ns;
		flow_uncount(c, f);
	}
}

/* With move_flows, moves every live flow on path to the best available path;
 * returns how many moved. */
static uint32_t failover(struct router_core *c, int path, uint64_t now_ns)
{
	struct router_flow_state *f, *tmp;
	uint32_t moved = 0;

	HASH_ITER(hh, c->flows, f, tmp) {
		int to;

		if (!c->move_flows)
			break;
		if (f->closed || (f->path != path && (f->path >= 0 || f->route_path != path)))
			continue;
		to = bandit_select(c->bandit, f->cls);
		if (to < 0 || to == path || !path_carries(c, to, f->key.family))
			continue; /* nowhere better: it stays */
		if (flow_put(c, f, to, now_ns) == 0) {
			f->moves++;
			moved++;
		}
	}
	c->stats.failovers += moved;
	c->path[path].last_failover_ns = now_ns;
	c->path[path].last_failover_flows = moved;
	return moved;
}

static void path_failed(struct router_core *c, int path, uint64_t now_ns, const char *why)
{
	uint32_t moved;

	c->stats.paths_failed++;
	moved = failover(c, path, now_ns);
	router_core_publish_next_paths(c);
	if (c->move_flows)
		note(c, "path %s unavailable (%s): moved %u flow%s", bandit_path_name(c->bandit, path), why, moved,
		     moved == 1 ? "" : "s");
	else
		note(c, "path %s unavailable (%s): new flows go elsewhere, its flows stay (NAT binds them)",
		     bandit_path_name(c->bandit, path), why);
}

void router_core_set_link(struct router_core *c, int path, bool up, uint64_t now_ns)
{
	struct router_path_state *ps;

	if (path < 0 || path >= c->n_paths)
		return;
	ps = &c->path[path];
	if (!up && !ps->link_down) {
		ps->link_down = true;
		bandit_path_set_available(c->bandit, path, false);
		path_failed(c, path, now_ns, "link down");
	} else if (up && ps->link_down) {
		ps->link_down = false;
		ps->failed_ns = 0;
		ps->retry_after_ns = ROUTER_RETRY_FIRST_NS;
		bandit_path_set_available(c->bandit, path, true);
		router_core_publish_next_paths(c);
		note(c, "path %s available (link up)", bandit_path_name(c->bandit, path));
	}
}

static void path_tick(struct router_core *c, uint64_t now_ns)
{
	uint64_t interval = now_ns - c->last_path_tick_ns;
	uint32_t expired;

	for (int p = 0; p < c->n_paths; p++) {
		struct router_path_acc *pa = &c->acc[p];
		struct router_path_state *ps = &c->path[p];
		const struct path_metrics *m;
		struct path_sample s = {
			.ts_ns = now_ns,
			.interval_ns = interval,
			.rtt_us = pa->rtt_samples ? pa->rtt_sum_us / pa->rtt_samples : 0,
			.sent_packets = pa->sent_packets,
			.retrans_packets = pa->retrans_packets,
			.delivered_bytes = pa->delivered_bytes,
		};

		m = bandit_path_metrics(c->bandit, p);
		if (pa->delivered_bytes) {
			ps->unanswered = 0;
		} else {
			bool working = m->last_delivery_ns && now_ns - m->last_delivery_ns <= 2 * c->dead_after_ns;

			ps->unanswered += pa->sent_packets;
			if (!working && ps->unanswered < ROUTER_DEAD_MIN_UNANSWERED)
				s.sent_packets = 0;
		}
		bandit_path_update(c->bandit, p, &s);
		memset(pa, 0, sizeof(*pa));
		if (ps->failed_ns && m->last_delivery_ns > ps->failed_ns) {
			ps->failed_ns = 0;
			ps->retry_after_ns = ROUTER_RETRY_FIRST_NS;
		}
		/* A failed path gets new flows again after a hold-down; still dead, it fails
		 * them over again within dead_after, and waits twice as long. */
		if (ps->failed_ns && !m->available && !ps->link_down && now_ns - ps->failed_ns >= ps->retry_after_ns) {
			bandit_path_set_available(c->bandit, p, true);
			ps->unanswered = 0;
			note(c, "path %s: trying it again after %.0f s", bandit_path_name(c->bandit, p),
			     ps->retry_after_ns / 1e9);
			ps->failed_ns = now_ns;
			ps->retry_after_ns = ps->retry_after_ns * 2 > ROUTER_RETRY_MAX_NS ? ROUTER_RETRY_MAX_NS
											  : ps->retry_after_ns * 2;
		}
	}
	expired = bandit_expire(c->bandit, now_ns);
	for (int p = 0; p < c->n_paths; p++) {
		if (!(expired & (1u << p)))
			continue;
		if (!c->path[p].failed_ns)
			c->path[p].failed_ns = now_ns;
		path_failed(c, p, now_ns, "no delivery");
	}
	/* Metrics, availability and rewards moved the bandit's choices. */
	router_core_publish_next_paths(c);
	c->last_path_tick_ns = now_ns;
}

static void flow_reward(struct router_core *c, struct router_flow_state *f, uint64_t now_ns)
{
	const struct router_flow_interval *a = &f->acc;
	const struct path_metrics *m = bandit_path_metrics(c->bandit, f->path);
	uint64_t start = a->start_ns > f->first_ns ? a->start_ns : f->first_ns;
	uint64_t elapsed = now_ns > start + 1000000 ? now_ns - start : 1000000;
	double rtt, loss = -1;

	if (a->rtt_samples)
		rtt = a->rtt_sum_us / a->rtt_samples;
	else if (f->srtt_us > 0)
		rtt = f->srtt_us;
	else if (m && m->rtt_us > 0)
		rtt = m->rtt_us + f->lan_rtt_min_us;
	else
		rtt = NAN; /* nothing known: the worst RTT score */
	for (int d = 0; d < ROUTER_DIR_MAX; d++) {
		double dir_loss;

		if (!a->data_packets[d])
			continue;
		dir_loss = a->retrans_packets[d] >= a->data_packets[d] ? 1.0
									: (double)a->retrans_packets[d] / a->data_packets[d];
		loss = fmax(loss, dir_loss);
	}
	if (loss < 0)
		loss = m ? m->loss_rate : 0;
	f->loss_rate = loss;
	f->throughput_bps = (double)a->delivered_bytes * 8e9 / (double)elapsed;
	f->reward = bandit_reward_of(f->cls, rtt, loss, f->throughput_bps);
	if (bandit_reward(c->bandit, f->cls, f->path, f->reward) == 0) {
		f->rewards++;
		c->stats.rewards++;
	}
}

static void flow_reclassify(struct router_core *c, struct router_flow_state *f, uint64_t now_ns)
{
	struct flow_facts facts;
	enum traffic_class cls;
	int rule;

	router_flow_facts(f, f->last_ns, &facts);
	cls = classify_flow(c->classes, &facts, &rule);
	f->rule = rule;
	if (cls == f->cls)
		return;
	c->stats.reclassified++;
	if (f->path < 0) {
		f->cls = cls;
		return;
	}
	/* Same path (no reordering), new class: re-file the flow and its decision. */
	flow_uncount(c, f);
	f->cls = cls;
	if (c->ops.decide(c->ctx, &f->key, f->path, cls, now_ns))
		c->stats.decide_errors++;
	if (bandit_flow_start(c->bandit, cls, f->path) == 0)
		f->counted = true;
}

/* Per data direction, for the table: what the last interval delivered. */
static void flow_rates(struct router_flow_state *f, uint64_t now_ns)
{
	uint64_t start = f->acc.start_ns > f->first_ns ? f->acc.start_ns : f->first_ns;
	uint64_t elapsed = now_ns > start + 1000000 ? now_ns - start : 1000000;

	for (int d = 0; d < ROUTER_DIR_MAX; d++)
		f->delivery_rate_bps[d] = (double)f->acc.delivered_dir_bytes[d] * 8e9 / (double)elapsed;
}

static void reward_tick(struct router_core *c, uint64_t now_ns)
{
	struct router_flow_state *f, *tmp;

	HASH_ITER(hh, c->flows, f, tmp) {
		flow_rates(f, now_ns);
		if (f->counted && !f->closed && f->path >= 0 && f->acc.packets > 0)
			flow_reward(c, f, now_ns);
		if (!f->closed)
			flow_reclassify(c, f, now_ns);
		memset(&f->acc, 0, sizeof(f->acc));
		f->acc.start_ns = now_ns;
	}
	c->last_reward_ns = now_ns;
}

static void forget_tick(struct router_core *c, uint64_t now_ns)
{
	struct router_flow_state *f, *tmp;

	HASH_ITER(hh, c->flows, f, tmp) {
		uint64_t idle = is_tcp(f) ? ROUTER_IDLE_TCP_NS : ROUTER_IDLE_UDP_NS;

		if ((f->closed && now_ns >= f->closed_ns + ROUTER_CLOSED_LINGER_NS) ||
		    (!f->closed && now_ns >= f->last_ns + idle)) {
			c->stats.forgotten++;
			flow_remove(c, f, true);
		}
	}
}

void router_core_tick(struct router_core *c, uint64_t now_ns)
{
	if (now_ns - c->last_path_tick_ns >= ROUTER_PATH_TICK_NS) {
		path_tick(c, now_ns);
		forget_tick(c, now_ns);
	}
	if (now_ns - c->last_reward_ns >= c->reward_interval_ns)
		reward_tick(c, now_ns);
}
