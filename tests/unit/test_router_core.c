// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The router's decisions from telemetry records: the next paths it publishes and
 * their placements, adoption, RTT and reward, closing and forgetting, failure on
 * silence and on link loss (flows stay; move with move_flows), retry,
 * reclassification. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/router_core.h"

#define MS (1000ULL * 1000)
#define T0 (1000 * MS)

#define assert_double_near(actual, expected, eps)                                          \
	do {                                                                               \
		double a_ = (actual), e_ = (expected);                                     \
		if (!(fabs(a_ - e_) <= (eps)))                                             \
			fail_msg("%s = %.17g, expected %.17g (+-%g)", #actual, a_, e_,     \
				 (double)(eps));                                           \
	} while (0)

struct decision {
	struct flow_key key;
	int path;
	enum traffic_class cls;
};

struct fixture {
	struct bandit *bandit;
	struct classify_table *classes;
	struct router_core core;
	bool core_ready;
	struct decision decided[64];
	int n_decided;
	int n_forgotten;
	struct flow_key forgotten[16];
	char events[8][256];
	int n_events;
	int fail_decide;
	int next[TRAFFIC_CLASS_COUNT]; /* what the core published for the tc program */
	int n_published;
};

static void rec_next_path(void *ctx, enum traffic_class cls, int path)
{
	struct fixture *fx = ctx;

	fx->next[cls] = path;
	fx->n_published++;
}

static int rec_decide(void *ctx, const struct flow_key *key, int path, enum traffic_class cls, uint64_t now_ns)
{
	struct fixture *fx = ctx;

	(void)now_ns;
	if (fx->fail_decide)
		return -ENOSPC;
	if (fx->n_decided < 64)
		fx->decided[fx->n_decided++] = (struct decision){ *key, path, cls };
	return 0;
}

static void rec_forget(void *ctx, const struct flow_key *key)
{
	struct fixture *fx = ctx;

	if (fx->n_forgotten < 16)
		fx->forgotten[fx->n_forgotten++] = *key;
}

static void rec_event(void *ctx, const char *msg)
{
	struct fixture *fx = ctx;

	if (fx->n_events < 8)
		snprintf(fx->events[fx->n_events++], sizeof(fx->events[0]), "%s", msg);
}

static int setup(void **state)
{
	struct router_core_ops ops = { .decide = rec_decide, .forget = rec_forget, .event = rec_event,
				       .next_path = rec_next_path };
	struct bandit_config cfg;
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	*state = fx;
	bandit_config_default(&cfg, BANDIT_MODE_UCB1);
	fx->bandit = bandit_new(&cfg);
	fx->classes = calloc(1, sizeof(*fx->classes));
	if (!fx->bandit || !fx->classes || bandit_add_path(fx->bandit, "a") != 0 ||
	    bandit_add_path(fx->bandit, "b") != 1)
		return -1;
	classify_table_default(fx->classes);
	router_core_init(&fx->core, fx->bandit, fx->classes, 500 * MS, &ops, fx, T0);
	router_core_set_nexthops(&fx->core, 0, true, false);
	router_core_set_nexthops(&fx->core, 1, true, false);
	router_core_publish_next_paths(&fx->core);
	fx->core_ready = true;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->core_ready)
		router_core_free(&fx->core);
	bandit_free(fx->bandit);
	free(fx->classes);
	free(fx);
	return 0;
}

static struct flow_key key4(uint8_t proto, uint16_t sport, uint16_t dport)
{
	struct flow_key k = { .sport = sport, .dport = dport, .family = AF_INET, .proto = proto };

	inet_pton(AF_INET, "10.11.1.2", &k.saddr[0]);
	inet_pton(AF_INET, "10.11.9.1", &k.daddr[0]);
	return k;
}

static struct router_sample new_sample(const struct flow_key *key, uint64_t ts, uint32_t flags, uint32_t path)
{
	struct router_sample s = { .ts_ns = ts, .key = *key, .event = ROUTER_EVENT_NEW, .flags = flags, .path = path };

	s.delta[ROUTER_DIR_UP].packets = 1;
	s.delta[ROUTER_DIR_UP].bytes = 74;
	s.delta[ROUTER_DIR_UP].data_packets = 1;
	return s;
}

/* The NEW record of a flow the tc program put on the published path of cls. */
static struct router_sample placed_sample(const struct fixture *fx, const struct flow_key *key, uint64_t ts,
					  enum traffic_class cls)
{
	assert_true(fx->next[cls] >= 0);
	return new_sample(key, ts, ROUTER_FLOW_FROM_START | ROUTER_FLOW_STEERED, (uint32_t)fx->next[cls]);
}

static struct router_sample data_sample(const struct flow_key *key, uint64_t ts, uint32_t path)
{
	struct router_sample s = { .ts_ns = ts, .key = *key, .event = ROUTER_EVENT_SAMPLE, .path = path };

	return s;
}

static const struct decision *last_decision(const struct fixture *fx)
{
	assert_true(fx->n_decided > 0);
	return &fx->decided[fx->n_decided - 1];
}

static uint32_t arm_flows(struct fixture *fx, enum traffic_class cls, int path)
{
	static struct bandit_view v;

	bandit_snapshot(fx->bandit, T0, &v);
	return v.arm[cls][path].flows;
}

static void test_place_new_flows(void **state)
{
	struct fixture *fx = *state;
	struct flow_key bulk1 = key4(IPPROTO_TCP, 40001, 873), bulk2 = key4(IPPROTO_TCP, 40002, 873);
	struct flow_key rtp = key4(IPPROTO_UDP, 40003, 16400);
	struct router_sample s;
	int published;

	assert_int_equal(fx->n_published, TRAFFIC_CLASS_COUNT);
	assert_int_equal(fx->next[TRAFFIC_BULK], 0); /* untried paths first, lowest index */
	s = placed_sample(fx, &bulk1, T0, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(router_core_flow(&fx->core, &bulk1)->path, 0);
	assert_int_equal(router_core_flow(&fx->core, &bulk1)->cls, TRAFFIC_BULK);
	/* The tc program wrote the decision: the core writes none. */
	assert_int_equal(fx->n_decided, 0);
	/* A placement moves the bandit: the next bulk flow goes to the other untried path. */
	assert_int_equal(fx->n_published, 2 * TRAFFIC_CLASS_COUNT);
	assert_int_equal(fx->next[TRAFFIC_BULK], 1);

	s = placed_sample(fx, &bulk2, T0 + MS, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0 + MS);
	assert_int_equal(router_core_flow(&fx->core, &bulk2)->path, 1);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 0), 1);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 1), 1);

	/* UDP to an RTP port with a small first packet: voip by the built-in table. */
	s = placed_sample(fx, &rtp, T0 + 2 * MS, TRAFFIC_VOIP);
	s.delta[ROUTER_DIR_UP].bytes = 200;
	router_core_on_sample(&fx->core, &s, T0 + 2 * MS);
	assert_int_equal(router_core_flow(&fx->core, &rtp)->cls, TRAFFIC_VOIP);
	assert_int_equal(fx->core.stats.placed, 3);
	assert_int_equal(fx->core.stats.flows_seen, 3);
	assert_int_equal(fx->core.n_flows, 3);

	/* Every path tick publishes again (metrics and rewards move the choice). */
	published = fx->n_published;
	router_core_tick(&fx->core, T0 + 100 * MS);
	assert_int_equal(fx->n_published, published + TRAFFIC_CLASS_COUNT);
}

static void test_adopt_unsteered(void **state)
{
	struct fixture *fx = *state;
	struct flow_key mid = key4(IPPROTO_TCP, 41000, 443), v6 = key4(IPPROTO_TCP, 41001, 443);
	struct flow_key nomap = key4(IPPROTO_TCP, 41002, 443), routed = key4(IPPROTO_TCP, 41003, 443);
	struct router_sample s;

	/* Seen mid-stream, routed by the kernel onto path b: it stays there. */
	s = new_sample(&mid, T0, 0, 1);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(fx->n_decided, 1);
	assert_int_equal(last_decision(fx)->path, 1);
	assert_int_equal(fx->core.stats.adopted, 1);

	/* From its first packet, but the tc program did not place it (no heartbeat yet):
	 * the kernel routed it onto b, and NAT bound it there. It stays too. */
	s = new_sample(&routed, T0, ROUTER_FLOW_FROM_START, 1);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(fx->n_decided, 2);
	assert_int_equal(last_decision(fx)->path, 1);
	assert_int_equal(fx->core.stats.adopted, 2);
	assert_int_equal(fx->core.stats.placed, 0);

	/* IPv6 with IPv4-only next hops: left to the kernel. */
	v6.family = AF_INET6;
	s = new_sample(&v6, T0, ROUTER_FLOW_FROM_START, ROUTER_PATH_NONE);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(fx->n_decided, 2);
	assert_int_equal(fx->core.stats.unsteered, 1);
	assert_int_equal(router_core_flow(&fx->core, &v6)->path, -1);

	/* A decision that cannot be written leaves the flow unsteered and uncounted. */
	fx->fail_decide = 1;
	s = new_sample(&nomap, T0, ROUTER_FLOW_FROM_START, 0);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(fx->core.stats.unsteered, 2);
	assert_int_equal(fx->core.stats.decide_errors, 1);
	assert_false(router_core_flow(&fx->core, &nomap)->counted);
	assert_int_equal(arm_flows(fx, TRAFFIC_WEB, 0) + arm_flows(fx, TRAFFIC_WEB, 1), 2);
}

static void test_rtt_and_reward(void **state)
{
	struct fixture *fx = *state;
	struct flow_key k = key4(IPPROTO_TCP, 42000, 873);
	struct router_flow_state *f;
	struct router_sample s;
	double expected;

	s = placed_sample(fx, &k, T0, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0);
	s = data_sample(&k, T0 + 100 * MS, 0);
	s.delta[ROUTER_DIR_UP].packets = 60;
	s.delta[ROUTER_DIR_UP].data_packets = 49; /* plus the SYN: 50 */
	s.delta[ROUTER_DIR_UP].retrans_packets = 1;
	s.delta[ROUTER_DIR_DOWN].packets = 30;
	/* Data coming down too, lossless: the loss is the worse direction's. */
	s.delta[ROUTER_DIR_DOWN].data_packets = 100;
	s.delta[ROUTER_DIR_DOWN].acked_bytes = 600000;
	s.path_rtt_us = 20000;
	s.lan_rtt_us = 5000;
	router_core_on_sample(&fx->core, &s, T0 + 100 * MS);
	s = data_sample(&k, T0 + 200 * MS, 0);
	s.delta[ROUTER_DIR_UP].data_packets = 50;
	s.delta[ROUTER_DIR_UP].packets = 50;
	s.delta[ROUTER_DIR_UP].retrans_packets = 1;
	s.delta[ROUTER_DIR_DOWN].acked_bytes = 400000;
	s.path_rtt_us = 30000;
	s.lan_rtt_us = 200; /* the LAN minimum: the endpoint answered at once this time */
	router_core_on_sample(&fx->core, &s, T0 + 200 * MS);

	f = router_core_flow(&fx->core, &k);
	assert_double_near(f->lan_rtt_min_us, 200, 1e-9);
	assert_double_near(f->path_rtt_us, 20000 + (30000 - 20000) / 8.0, 1e-9);
	assert_double_near(f->srtt_us, 25000 + (30200 - 25000) / 8.0, 1e-9);

	router_core_tick(&fx->core, T0 + 500 * MS);
	/* Mean RTT of the interval, 2 retransmitted of 100 segments up, 1 MB in 0.5 s. */
	expected = bandit_reward_of(TRAFFIC_BULK, (25000 + 30200) / 2.0, 0.02, 1e6 * 8 / 0.5);
	assert_double_near(f->reward, expected, 1e-12);
	assert_double_near(f->loss_rate, 0.02, 1e-12);
	assert_double_near(f->throughput_bps, 16e6, 1e-3);
	assert_int_equal(f->rewards, 1);
	assert_int_equal(fx->core.stats.rewards, 1);
	{
		static struct bandit_view v;

		bandit_snapshot(fx->bandit, T0, &v);
		assert_int_equal(v.arm[TRAFFIC_BULK][0].pulls_total, 1);
		assert_double_near(v.arm[TRAFFIC_BULK][0].mean_reward, expected, 1e-12);
	}
	/* A quiet interval gets no reward. */
	router_core_tick(&fx->core, T0 + 1000 * MS);
	assert_int_equal(f->rewards, 1);
}

static void test_close_and_forget(void **state)
{
	struct fixture *fx = *state;
	struct flow_key k = key4(IPPROTO_TCP, 43000, 873);
	struct router_sample s;

	s = placed_sample(fx, &k, T0, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 0), 1);
	s = data_sample(&k, T0 + 50 * MS, 0);
	s.event = ROUTER_EVENT_CLOSE;
	s.flags = ROUTER_FLOW_FROM_START | ROUTER_FLOW_CLOSED;
	router_core_on_sample(&fx->core, &s, T0 + 50 * MS);
	assert_true(router_core_flow(&fx->core, &k)->closed);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 0), 0);

	/* Lingers (late packets keep their path), then goes. */
	router_core_tick(&fx->core, T0 + 1000 * MS);
	assert_non_null(router_core_flow(&fx->core, &k));
	assert_int_equal(fx->n_forgotten, 0);
	router_core_tick(&fx->core, T0 + 50 * MS + ROUTER_CLOSED_LINGER_NS);
	assert_null(router_core_flow(&fx->core, &k));
	assert_int_equal(fx->n_forgotten, 1);
	assert_memory_equal(&fx->forgotten[0], &k, sizeof(k));
	assert_int_equal(fx->core.stats.forgotten, 1);
}

static void test_reuse_after_close(void **state)
{
	struct fixture *fx = *state;
	struct flow_key k = key4(IPPROTO_TCP, 43500, 873);
	struct router_sample s;

	s = placed_sample(fx, &k, T0, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0);
	s.event = ROUTER_EVENT_CLOSE;
	s.flags |= ROUTER_FLOW_CLOSED;
	router_core_on_sample(&fx->core, &s, T0 + MS);
	/* The same 5-tuple opens again: a new flow, placed again. */
	s = placed_sample(fx, &k, T0 + 2 * MS, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0 + 2 * MS);
	assert_int_equal(fx->core.stats.placed, 2);
	assert_false(router_core_flow(&fx->core, &k)->closed);
	assert_int_equal(fx->core.stats.flows_seen, 2);
	assert_int_equal(fx->core.n_flows, 1);
	assert_int_equal(fx->n_forgotten, 0);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 0) + arm_flows(fx, TRAFFIC_BULK, 1), 1);
}

/* Path a goes silent under one of two bulk flows; returns once it is out. */
static void silence_path_a(struct fixture *fx, const struct flow_key *on_a, const struct flow_key *on_b)
{
	const struct path_metrics *ma = bandit_path_metrics(fx->bandit, 0);
	struct router_sample s;

	s = placed_sample(fx, on_a, T0, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0);
	s = placed_sample(fx, on_b, T0, TRAFFIC_BULK);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(router_core_flow(&fx->core, on_a)->path, 0);
	assert_int_equal(router_core_flow(&fx->core, on_b)->path, 1);

	/* Path a sends and hears nothing from the first tick (100 ms) on; path b delivers.
	 * dead_after (1 s) later, a is out. */
	for (uint64_t t = T0 + 100 * MS; t <= T0 + 1000 * MS; t += 100 * MS) {
		router_core_add_path_traffic(&fx->core, 0, 10, 0, 0);
		router_core_add_path_traffic(&fx->core, 1, 10, 0, 14480);
		router_core_tick(&fx->core, t);
		assert_true(ma->available);
	}
	router_core_add_path_traffic(&fx->core, 0, 10, 0, 0);
	router_core_tick(&fx->core, T0 + 1100 * MS);
	assert_false(ma->available);
	assert_int_equal(fx->core.path[0].unanswered, 110);
	assert_int_equal(fx->core.stats.paths_failed, 1);
	/* New flows of every class go to b. */
	for (int cls = 0; cls < TRAFFIC_CLASS_COUNT; cls++)
		assert_int_equal(fx->next[cls], 1);
}

/* NAT bound each flow to its uplink: a failed path's flows stay on it. */
static void test_failure_keeps_flows(void **state)
{
	struct fixture *fx = *state;
	struct flow_key on_a = key4(IPPROTO_TCP, 44000, 873), on_b = key4(IPPROTO_TCP, 44001, 873);
	const struct path_metrics *ma = bandit_path_metrics(fx->bandit, 0);

	silence_path_a(fx, &on_a, &on_b);
	assert_int_equal(router_core_flow(&fx->core, &on_a)->path, 0);
	assert_int_equal(router_core_flow(&fx->core, &on_a)->moves, 0);
	assert_int_equal(fx->n_decided, 0);
	assert_int_equal(fx->core.stats.failovers, 0);
	assert_string_equal(fx->events[0],
			    "path a unavailable (no delivery): new flows go elsewhere, its flows stay (NAT binds them)");

	/* Tried again after the hold-down (5 s), then after 10 s if it fails again. */
	router_core_tick(&fx->core, T0 + 6000 * MS);
	assert_false(ma->available);
	router_core_tick(&fx->core, T0 + 6100 * MS);
	assert_true(ma->available);
	assert_string_equal(fx->events[1], "path a: trying it again after 5 s");
	assert_int_equal(fx->core.path[0].retry_after_ns, 10000 * MS);
	/* It delivers: the hold-down starts over. */
	router_core_add_path_traffic(&fx->core, 0, 10, 0, 1000);
	router_core_tick(&fx->core, T0 + 6200 * MS);
	assert_int_equal(fx->core.path[0].failed_ns, 0);
	assert_int_equal(fx->core.path[0].retry_after_ns, ROUTER_RETRY_FIRST_NS);
}

/* Un-NAT'd uplinks (move_flows): a failed path's flows move to the best one left. */
static void test_failover_moves_flows(void **state)
{
	struct fixture *fx = *state;
	struct flow_key on_a = key4(IPPROTO_TCP, 44000, 873), on_b = key4(IPPROTO_TCP, 44001, 873);

	fx->core.move_flows = true;
	silence_path_a(fx, &on_a, &on_b);
	assert_int_equal(router_core_flow(&fx->core, &on_a)->path, 1);
	assert_int_equal(router_core_flow(&fx->core, &on_a)->moves, 1);
	assert_int_equal(router_core_flow(&fx->core, &on_b)->moves, 0);
	assert_int_equal(last_decision(fx)->path, 1);
	assert_int_equal(fx->core.stats.failovers, 1);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 0), 0);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, 1), 2);
	assert_string_equal(fx->events[0], "path a unavailable (no delivery): moved 1 flow");
}

/* A quiet path (nothing delivered yet) and a lost SYN, resent a second later and
 * lost again: two packets unanswered are no failure, a third is. */
static void test_lost_packet_is_no_failure(void **state)
{
	struct fixture *fx = *state;
	const struct path_metrics *ma = bandit_path_metrics(fx->bandit, 0);

	router_core_add_path_traffic(&fx->core, 0, 1, 0, 0);
	router_core_tick(&fx->core, T0 + 100 * MS);
	router_core_add_path_traffic(&fx->core, 0, 1, 1, 0);
	router_core_tick(&fx->core, T0 + 200 * MS);
	for (uint64_t t = T0 + 300 * MS; t <= T0 + 3000 * MS; t += 100 * MS)
		router_core_tick(&fx->core, t);
	assert_true(ma->available);
	assert_int_equal(fx->core.stats.paths_failed, 0);
	assert_int_equal(fx->core.path[0].unanswered, 2);
	/* A third unanswered packet starts the clock: dead_after later the path is out. */
	router_core_add_path_traffic(&fx->core, 0, 1, 1, 0);
	router_core_tick(&fx->core, T0 + 3100 * MS);
	router_core_tick(&fx->core, T0 + 4000 * MS);
	assert_true(ma->available);
	router_core_tick(&fx->core, T0 + 4100 * MS);
	assert_false(ma->available);
	assert_int_equal(fx->core.stats.paths_failed, 1);
}

/* A path that was delivering: one unanswered packet starts the clock. */
static void test_silence_after_delivery(void **state)
{
	struct fixture *fx = *state;
	const struct path_metrics *ma = bandit_path_metrics(fx->bandit, 0);

	router_core_add_path_traffic(&fx->core, 0, 10, 0, 14480);
	router_core_tick(&fx->core, T0 + 100 * MS);
	router_core_add_path_traffic(&fx->core, 0, 1, 0, 0);
	router_core_tick(&fx->core, T0 + 200 * MS);
	router_core_tick(&fx->core, T0 + 1100 * MS);
	assert_true(ma->available);
	router_core_tick(&fx->core, T0 + 1200 * MS);
	assert_false(ma->available);
}

static void test_link_down_up(void **state)
{
	struct fixture *fx = *state;
	struct flow_key k = key4(IPPROTO_UDP, 45000, 3074);
	struct router_sample s;

	/* Un-NAT'd uplinks: flows may move. Both paths untried for gaming: the first
	 * flow goes to a, the second to b. */
	fx->core.move_flows = true;
	s = placed_sample(fx, &k, T0, TRAFFIC_GAMING);
	router_core_on_sample(&fx->core, &s, T0);
	k.sport++;
	s = placed_sample(fx, &k, T0, TRAFFIC_GAMING);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(router_core_flow(&fx->core, &k)->path, 1);
	assert_int_equal(router_core_flow(&fx->core, &k)->cls, TRAFFIC_GAMING);

	router_core_set_link(&fx->core, 1, false, T0 + MS);
	assert_false(bandit_path_metrics(fx->bandit, 1)->available);
	assert_int_equal(router_core_flow(&fx->core, &k)->path, 0);
	assert_int_equal(fx->core.path[1].last_failover_flows, 1);
	assert_string_equal(fx->events[0], "path b unavailable (link down): moved 1 flow");
	/* Repeated "down" is no new event. */
	router_core_set_link(&fx->core, 1, false, T0 + 2 * MS);
	assert_int_equal(fx->core.stats.paths_failed, 1);
	assert_int_equal(fx->next[TRAFFIC_GAMING], 0);
	router_core_set_link(&fx->core, 1, true, T0 + 3 * MS);
	assert_true(bandit_path_metrics(fx->bandit, 1)->available);
	assert_int_equal(fx->next[TRAFFIC_GAMING], 1); /* b is untried again for new flows */
	/* Flows stay where they were moved: no reordering back. */
	assert_int_equal(router_core_flow(&fx->core, &k)->path, 0);
}

static void test_reclassify_keeps_path(void **state)
{
	struct fixture *fx = *state;
	struct flow_key k = key4(IPPROTO_TCP, 46000, 9999);
	struct router_sample s;
	int path;

	s = placed_sample(fx, &k, T0, TRAFFIC_WEB);
	router_core_on_sample(&fx->core, &s, T0);
	assert_int_equal(router_core_flow(&fx->core, &k)->cls, TRAFFIC_WEB); /* no rule: the default */
	path = router_core_flow(&fx->core, &k)->path;
	s = data_sample(&k, T0 + 400 * MS, (uint32_t)path);
	s.delta[ROUTER_DIR_UP].packets = 80000;
	s.delta[ROUTER_DIR_UP].bytes = 120000000; /* past bulk-elephant's 100 MB */
	router_core_on_sample(&fx->core, &s, T0 + 400 * MS);
	router_core_tick(&fx->core, T0 + 500 * MS);
	assert_int_equal(last_decision(fx)->cls, TRAFFIC_BULK);
	assert_int_equal(last_decision(fx)->path, path);
	assert_int_equal(router_core_flow(&fx->core, &k)->cls, TRAFFIC_BULK);
	assert_string_equal(fx->classes->rule[router_core_flow(&fx->core, &k)->rule].name, "bulk-elephant");
	assert_int_equal(arm_flows(fx, TRAFFIC_WEB, path), 0);
	assert_int_equal(arm_flows(fx, TRAFFIC_BULK, path), 1);
	assert_int_equal(fx->core.stats.reclassified, 1);
}

static void test_facts(void **state)
{
	struct router_flow_state f = { .key = key4(IPPROTO_UDP, 47000, 27015), .dscp = 46, .first_ns = T0 };
	struct flow_facts facts;

	(void)state;
	f.total[ROUTER_DIR_UP].packets = 30;
	f.total[ROUTER_DIR_UP].bytes = 3000;
	f.total[ROUTER_DIR_DOWN].packets = 20;
	f.total[ROUTER_DIR_DOWN].bytes = 7000;
	router_flow_facts(&f, T0 + 2000 * MS, &facts);
	assert_int_equal(facts.proto, IPPROTO_UDP);
	assert_int_equal(facts.dscp, 46);
	assert_int_equal(facts.sport, 47000);
	assert_int_equal(facts.dport, 27015);
	assert_int_equal(facts.bytes, 10000);
	assert_int_equal(facts.packet_size_mean, 200);
	assert_int_equal(facts.packet_rate, 25);
	/* Too early for a rate. */
	router_flow_facts(&f, T0 + 50 * MS, &facts);
	assert_int_equal(facts.packet_rate, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_place_new_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_unsteered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rtt_and_reward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_and_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_keeps_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_moves_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_packet_is_no_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silence_after_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_down_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclassify_keeps_path, setup, teardown),
		cmocka_unit_test(test_facts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
