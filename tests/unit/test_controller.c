/*
 * The controller on a recording actuator: scripted windows go in, and the test
 * checks what each policy writes (heuristic, cwnd tree, DQN), how the hysteresis
 * holds changes back, that shadow mode writes nothing until promoted, that the
 * heartbeat stops when the loop stalls, that a flow's decision goes with the flow,
 * and that batching outputs stay within the knobs' legal ranges. Also the
 * controller's arithmetic: BDP caps and the full-pipe test that ends startup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/json_read.h"
#include "reflexd/controller.h"
#include "reflexd/telemetry.h"

#define CWND_MODEL "models/cwnd.reflex"
#define DQN_MODEL "models/dqn.reflex"
#define BATCHING_MODEL "tests/data/small.reflex"
#define T0 (10ULL * 1000 * 1000 * 1000)
#define MS (1000ULL * 1000)
#define MAX_RECORDS 256

/* --- a recording actuator ---------------------------------------------------- */

struct recorded_decision {
	struct flow_key key;
	uint32_t cwnd_target;
	uint64_t decided_ns;
};

struct recorder {
	struct actuator base; /* first: the callbacks cast back */
	struct recorded_decision decisions[MAX_RECORDS];
	unsigned n_decisions;
	uint64_t beats[MAX_RECORDS];
	unsigned n_beats;
	struct reflex_config configs[MAX_RECORDS];
	unsigned n_configs;
};

static int record_decision(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct recorder *r = (struct recorder *)a;

	assert_true(r->n_decisions < MAX_RECORDS);
	r->decisions[r->n_decisions++] = (struct recorded_decision){ *key, cwnd_target, decided_ns };
	return 0;
}

static int record_beat(struct actuator *a, uint64_t now_ns)
{
	struct recorder *r = (struct recorder *)a;

	assert_true(r->n_beats < MAX_RECORDS);
	r->beats[r->n_beats++] = now_ns;
	return 0;
}

static int record_config(struct actuator *a, const struct reflex_config *cfg)
{
	struct recorder *r = (struct recorder *)a;

	assert_true(r->n_configs < MAX_RECORDS);
	r->configs[r->n_configs++] = *cfg;
	return 0;
}

static void recorder_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	r->base = (struct actuator){ .name = "recorder", .flows = true, .decide = record_decision,
				     .beat = record_beat, .configure = record_config };
}

/* --- scripted flows and windows ------------------------------------------------ */

static void flow_init(struct flow_entry *f, uint16_t sport)
{
	memset(f, 0, sizeof(*f));
	f->key.family = AF_INET;
	f->key.proto = IPPROTO_TCP;
	f->key.saddr[0] = htonl(0x0a000001);
	f->key.daddr[0] = htonl(0x0a000002);
	f->key.sport = sport;
	f->key.dport = 5201;
	f->have_sock_totals = true;
	f->mss = 1448;
	f->packets_out = 60;
	f->mdev_us = 1000;
}

/* Window `step` of a flow delivering rate_bps over a path of min_rtt_us, no queue. */
static struct feature_window flow_window(unsigned step, double rate_bps, double min_rtt_us)
{
	struct feature_window w;

	memset(&w, 0, sizeof(w));
	w.ts_ns = T0 + step * WINDOW_STEP_NS;
	w.scope = SCOPE_FLOW;
	w.feature[FEAT_LATENCY_P50] = min_rtt_us;
	w.feature[FEAT_LATENCY_P95] = min_rtt_us;
	w.feature[FEAT_RTT_EWMA] = min_rtt_us;
	w.feature[FEAT_DEQUEUE_RATE] = rate_bps / 8 / 1448;
	w.feature[FEAT_ENQUEUE_RATE] = rate_bps / 8 / 1448;
	w.context[CTX_SRTT_US] = min_rtt_us;
	w.context[CTX_MIN_RTT_US] = min_rtt_us;
	w.context[CTX_SND_CWND] = 80;
	w.context[CTX_DELIVERY_RATE_BPS] = rate_bps;
	return w;
}

static void feed(struct controller *c, struct flow_entry *f, unsigned from, unsigned to, double rate_bps,
		 double min_rtt_us)
{
	for (unsigned step = from; step <= to; step++) {
		struct feature_window w = flow_window(step, rate_bps, min_rtt_us);

		controller_on_flow_window(c, f, &w);
	}
}

struct fixture {
	struct recorder rec;
	struct controller c;
	char log_path[64];
};

static void start(struct fixture *fx, enum cwnd_policy policy, const char *cwnd_model, const char *dqn_model,
		  bool shadow, const struct hysteresis_params *hp)
{
	const struct hysteresis_params defaults = HYSTERESIS_DEFAULTS;
	struct reflex_config cfg = { .flush_threshold = REFLEX_DEFAULT_FLUSH_THRESHOLD,
				     .max_batch_delay_us = REFLEX_DEFAULT_MAX_BATCH_DELAY_US };
	struct controller_opts o = {
		.policy = policy,
		.cwnd_model_path = cwnd_model,
		.dqn_model_path = dqn_model,
		.shadow = shadow,
		.hysteresis = hp ? *hp : defaults,
		.decision_log_path = fx->log_path,
	};
	int fd;

	snprintf(fx->log_path, sizeof(fx->log_path), "/tmp/test_controller.XXXXXX");
	fd = mkstemp(fx->log_path);
	assert_true(fd >= 0);
	close(fd);
	recorder_init(&fx->rec);
	assert_int_equal(controller_init(&fx->c, &o, &fx->rec.base, &cfg), 0);
}

static void stop(struct fixture *fx)
{
	controller_free(&fx->c);
	unlink(fx->log_path);
}

/* The decision log's lines, and how many contain every one of the given strings. */
static unsigned log_lines_with(const struct fixture *fx, const char *a, const char *b)
{
	char line[4096];
	unsigned n = 0;
	FILE *f = fopen(fx->log_path, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, a) && (!b || strstr(line, b));
	fclose(f);
	return n;
}

/* Every line of the decision log is one JSON object with the fields reflexctl
 * decisions and the integration tests read, each of its type. */
static void assert_log_is_json(const struct fixture *fx)
{
	static const struct { const char *key; enum json_type type; } fields[] = {
		{ "v", JSON_NUMBER },     /* DECISION_LOG_SCHEMA */
		{ "ts_ns", JSON_NUMBER }, { "flow", JSON_STRING }, { "knob", JSON_STRING },
		{ "old", JSON_NUMBER },   { "new", JSON_NUMBER },  { "model", JSON_STRING },
		{ "acted", JSON_BOOL },   { "explain", JSON_STRING },
	};
	struct reflex_err err = { 0 };
	char line[4096];
	unsigned lines = 0;
	FILE *f = fopen(fx->log_path, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		struct json_value *v = NULL;

		assert_int_equal(json_parse(line, strlen(line), &v, &err), 0);
		assert_int_equal(v->type, JSON_OBJECT);
		assert_int_equal(v->n, sizeof(fields) / sizeof(fields[0]));
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			const struct json_value *field = json_get(v, fields[i].key);

			assert_non_null(field);
			assert_int_equal(field->type, fields[i].type);
		}
		json_free(v);
		lines++;
	}
	fclose(f);
	assert_true(lines > 0);
}

/* --- arithmetic ------------------------------------------------------------------ */

static void test_cap_is_multiple_of_bdp(void **state)
{
	(void)state;
	/* 50 Mbit/s x 20 ms = 125000 bytes = 86.3 packets of 1448 -> 1.25 x = 107.9 -> 108. */
	assert_int_equal(cwnd_cap_packets(1.25, 50e6, 20000, 1448), 108);
	assert_int_equal(cwnd_cap_packets(1.0, 50e6, 20000, 1448), 87);
	/* Never below the floor; 0 multiple, rate or RTT means no cap. */
	assert_int_equal(cwnd_cap_packets(0.5, 1e6, 1000, 1448), BDP_MIN_CAP_PACKETS);
	/* A 20 us RTT counts as 1 ms: 10 Gbit/s x 1 ms = 1.25 MB = 863.3 packets. */
	assert_int_equal(cwnd_cap_packets(1.0, 10e9, 20, 1448), 864);
	assert_int_equal(cwnd_cap_packets(0, 50e6, 20000, 1448), 0);
	assert_int_equal(cwnd_cap_packets(1.25, 0, 20000, 1448), 0);
	assert_int_equal(cwnd_cap_packets(1.25, 50e6, 0, 1448), 0);
	/* mss 0 falls back to 1448. */
	assert_int_equal(cwnd_cap_packets(1.0, 50e6, 20000, 0), 87);
}

static void test_full_pipe_after_three_flat_windows(void **state)
{
	struct flow_control fc = { 0 };

	(void)state;
	assert_false(full_pipe_update(&fc, 1e6, 20000, 20000));
	assert_false(full_pipe_update(&fc, 4e6, 20000, 20000));  /* growing */
	assert_false(full_pipe_update(&fc, 16e6, 20000, 20000));
	assert_false(full_pipe_update(&fc, 18e6, 20000, 20000)); /* < 25 % growth: 1 */
	assert_false(full_pipe_update(&fc, 19e6, 20000, 20000)); /* 2 */
	assert_true(full_pipe_update(&fc, 19e6, 20000, 20000));  /* 3: full */
	assert_true(full_pipe_update(&fc, 80e6, 20000, 20000));  /* stays full */
}

static void test_growth_resets_the_count(void **state)
{
	struct flow_control fc2 = { 0 };

	(void)state;
	full_pipe_update(&fc2, 10e6, 20000, 20000);
	full_pipe_update(&fc2, 11e6, 20000, 20000);             /* 1 */
	assert_false(full_pipe_update(&fc2, 14e6, 20000, 20000)); /* +40 %: reset */
	assert_false(full_pipe_update(&fc2, 14e6, 20000, 20000)); /* 1 */
	assert_false(full_pipe_update(&fc2, 14e6, 20000, 20000)); /* 2 */
	assert_true(full_pipe_update(&fc2, 14e6, 20000, 20000));  /* 3 */
}

static void test_queue_building_ends_startup(void **state)
{
	struct flow_control fc = { 0 };

	(void)state;
	assert_false(full_pipe_update(&fc, 1e6, 29000, 20000));  /* 1.45 x min RTT: not yet */
	assert_true(full_pipe_update(&fc, 4e6, 31000, 20000));   /* 1.55 x: a queue builds */
}

/* --- the controller on a recording actuator --------------------------------------- */

static void test_heuristic_writes_its_cap_after_startup(void **state)
{
	struct fixture fx;
	struct flow_entry f;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40000);
	assert_string_equal(controller_policy_name(&fx.c), "heuristic");
	/* Startup: the rate is flat from the first window, the pipe is full at the fourth. */
	feed(&fx.c, &f, 0, 2, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 0);
	feed(&fx.c, &f, 3, 3, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_memory_equal(&fx.rec.decisions[0].key, &f.key, sizeof(f.key));
	assert_int_equal(fx.rec.decisions[0].cwnd_target, 108); /* 1.25 x 50 Mbit/s x 20 ms */
	assert_int_equal(fx.rec.decisions[0].decided_ns, T0 + 3 * WINDOW_STEP_NS);
	/* The same windows again: nothing new to write. */
	feed(&fx.c, &f, 4, 10, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	/* +12 % rate: a change over the 10 % margin, taken once it held 300 ms. */
	feed(&fx.c, &f, 11, 13, 56e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	feed(&fx.c, &f, 14, 14, 56e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 2);
	assert_int_equal(fx.rec.decisions[1].cwnd_target, 121);
	/* The flow goes: its decision is withdrawn. */
	controller_flow_gone(&fx.c, &f);
	assert_int_equal(fx.rec.n_decisions, 3);
	assert_int_equal(fx.rec.decisions[2].cwnd_target, 0);
	assert_int_equal(log_lines_with(&fx, "\"knob\": \"cwnd_target\"", "\"model\": \"heuristic\""), 2);
	assert_int_equal(log_lines_with(&fx, "\"old\": 108, \"new\": 121", "\"acted\": true"), 1);
	assert_int_equal(fx.c.stats.decisions, 2);
	assert_log_is_json(&fx);
	stop(&fx);
}

static void test_small_changes_are_not_written(void **state)
{
	struct fixture fx;
	struct flow_entry f;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40001);
	feed(&fx.c, &f, 0, 3, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	/* +8 % rate (117 packets against 108): within the margin, for 3 s. */
	feed(&fx.c, &f, 4, 34, 54e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	stop(&fx);
}

/* cwnd.reflex's tree: rtt_ewma 50 ms with 1000 packets/s -> 1 x BDP, 40 ms -> 2 x,
 * 30 ms with 100 packets/s -> 0.5 x. */
static void feed_tree(struct controller *c, struct flow_entry *f, unsigned from, unsigned to,
		      double rtt_ewma_us, double dequeue_rate)
{
	for (unsigned step = from; step <= to; step++) {
		struct feature_window w = flow_window(step, 50e6, 20000);

		w.feature[FEAT_RTT_EWMA] = rtt_ewma_us;
		w.feature[FEAT_DEQUEUE_RATE] = dequeue_rate;
		controller_on_flow_window(c, f, &w);
	}
}

static void test_tree_writes_its_multiple_and_the_hysteresis_paces_reversals(void **state)
{
	struct fixture fx;
	struct flow_entry f;

	(void)state;
	start(&fx, CWND_POLICY_TREE, CWND_MODEL, NULL, false, NULL);
	assert_non_null(fx.c.tree.model);
	assert_string_equal(controller_policy_name(&fx.c), "cwnd-tree");
	flow_init(&f, 40002);
	feed_tree(&fx.c, &f, 0, 3, 50000, 1000);
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_int_equal(fx.rec.decisions[0].cwnd_target, 87); /* 1 x BDP */
	/* Up to 2 x: held for 300 ms, then taken. */
	feed_tree(&fx.c, &f, 4, 6, 40000, 1000);
	assert_int_equal(fx.rec.n_decisions, 1);
	feed_tree(&fx.c, &f, 7, 7, 40000, 1000);
	assert_int_equal(fx.rec.n_decisions, 2);
	assert_int_equal(fx.rec.decisions[1].cwnd_target, 173);
	/* Down to 0.5 x: the first reversal is allowed. */
	feed_tree(&fx.c, &f, 8, 11, 30000, 100);
	assert_int_equal(fx.rec.n_decisions, 3);
	assert_int_equal(fx.rec.decisions[2].cwnd_target, 44);
	assert_int_equal(fx.c.shadow.reversals, 1);
	/* Up again (the probe: held at 44 with no queue) within 1 s: a second reversal,
	 * held back. */
	feed_tree(&fx.c, &f, 12, 20, 60000, 1000);
	assert_int_equal(fx.rec.n_decisions, 3);
	assert_true(fx.c.shadow.reversals_held_back > 0);
	/* 1 s after the first it is taken, well inside 30 s: the run it reverses moved
	 * 108 -> 44, more than 2x. The probe offers 1.25 x rate x median RTT. */
	feed_tree(&fx.c, &f, 21, 21, 60000, 1000);
	assert_int_equal(fx.rec.n_decisions, 4);
	assert_int_equal(fx.rec.decisions[3].cwnd_target, 108);
	assert_int_equal(fx.c.shadow.reversals, 2);
	/* Each write is logged with the tree's decision path. */
	assert_int_equal(log_lines_with(&fx, "\"model\": \"cwnd-tree\"", "rtt_ewma"), 4);
	assert_log_is_json(&fx);
	stop(&fx);
}


/* Steps 0-3 of a flow at 10 Mbit/s with a 40 ms min RTT and a cwnd of 20 packets, below
 * the heuristic's first cap (1.25 x 10 Mbit/s x 40 ms = 44): that cap is taken. */
static void start_at_44(struct controller *c, struct flow_entry *f)
{
	for (unsigned step = 0; step <= 3; step++) {
		struct feature_window w = flow_window(step, 10e6, 40000);

		w.context[CTX_SND_CWND] = 20;
		controller_on_flow_window(c, f, &w);
	}
}

/* A window of a flow whose snd_cwnd is snd_cwnd packets and whose median RTT is
 * p50_ratio x its 40 ms min RTT: it delivers snd_cwnd packets per median RTT. */
static void feed_capped(struct controller *c, struct flow_entry *f, unsigned step, uint32_t snd_cwnd,
			double p50_ratio)
{
	struct feature_window w = flow_window(step, snd_cwnd * 1448 * 8 / (p50_ratio * 0.040), 40000);

	w.feature[FEAT_LATENCY_P50] = p50_ratio * 40000;
	w.context[CTX_SND_CWND] = snd_cwnd;
	controller_on_flow_window(c, f, &w);
}

/* A flow held at its cap with a median RTT 1.15 x its min: the heuristic's 1.25 x the
 * rate measured under the cap is 1.09 x the cap, inside the margin, so without the
 * probe the cap would stay where it is. The probe steps it up by PROBE_STEP or more
 * per decision; once a queue shows, or the flow does not fill its cap, it stops. */
static void test_capped_flow_without_queue_probes_up(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step, probes = 0;
	uint32_t cap;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40005);
	start_at_44(&fx.c, &f);
	assert_int_equal(fx.rec.n_decisions, 1);
	cap = fx.rec.decisions[0].cwnd_target; /* 1.25 x 10 Mbit/s x 40 ms */
	assert_int_equal(cap, 44);
	for (step = 4; step < 34; step++) {
		feed_capped(&fx.c, &f, step, cap, 1.15);
		if (fx.rec.decisions[fx.rec.n_decisions - 1].cwnd_target != cap) {
			assert_true(fx.rec.decisions[fx.rec.n_decisions - 1].cwnd_target >= cap * PROBE_STEP);
			cap = fx.rec.decisions[fx.rec.n_decisions - 1].cwnd_target;
			probes++;
		}
	}
	/* one per hold time (300 ms) and a window to start it */
	assert_in_range(probes, 5, 10);
	/* A queue shows (median RTT 1.6 x min): the cap rises no more. */
	for (; step < 64; step++) {
		feed_capped(&fx.c, &f, step, cap, 1.6);
		assert_true(fx.rec.decisions[fx.rec.n_decisions - 1].cwnd_target <= cap);
	}
	/* No queue but the flow does not fill its cap: no probe either. */
	cap = fx.rec.decisions[fx.rec.n_decisions - 1].cwnd_target;
	for (; step < 94; step++) {
		feed_capped(&fx.c, &f, step, cap / 2, 1.0);
		assert_true(fx.rec.decisions[fx.rec.n_decisions - 1].cwnd_target <= cap);
	}
	stop(&fx);
}

/* A window of a flow held at snd_cwnd packets delivering rate_bps with a median RTT
 * p50_ratio x its 40 ms min RTT. */
static void feed_rate(struct controller *c, struct flow_entry *f, unsigned step, double rate_bps,
		      double p50_ratio, uint32_t snd_cwnd)
{
	struct feature_window w = flow_window(step, rate_bps, 40000);

	w.feature[FEAT_LATENCY_P50] = p50_ratio * 40000;
	w.context[CTX_SND_CWND] = snd_cwnd;
	controller_on_flow_window(c, f, &w);
}

static uint32_t last_cap(const struct fixture *fx)
{
	return fx->rec.decisions[fx->rec.n_decisions - 1].cwnd_target;
}

/* A cellular link swings by less than 2x every few seconds: after a cut that a queue
 * called for, the probe of the capped flow with no queue reverses it a second later
 * (a measured reversal), not 30 s later as a policy's reversal of a small run would. */
static void test_probe_after_a_small_cut_waits_only_a_second(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step = 4, probe_step = 0;
	uint64_t cut_ns;
	uint32_t cap;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40006);
	start_at_44(&fx.c, &f);
	cap = last_cap(&fx);
	/* one probe up */
	while (last_cap(&fx) == cap && step < 20)
		feed_capped(&fx.c, &f, step++, cap, 1.15);
	assert_true(last_cap(&fx) > cap);
	cap = last_cap(&fx);
	/* the link falls to 8 Mbit/s and a queue builds: the cut, once the probe's
	 * rates left the 20-window max, is the first reversal (a run of < 2x) */
	while (last_cap(&fx) == cap && step < 60)
		feed_rate(&fx.c, &f, step++, 8e6, 1.6, cap);
	assert_true(last_cap(&fx) < cap);
	assert_true(cap < 2 * last_cap(&fx));
	assert_int_equal(fx.c.shadow.reversals, 1);
	cut_ns = T0 + (step - 1) * WINDOW_STEP_NS;
	cap = last_cap(&fx);
	/* no queue, held at the cap: the probe comes between 1 and 1.5 s after the cut */
	for (; step < 200 && !probe_step; step++) {
		feed_capped(&fx.c, &f, step, cap, 1.15);
		if (last_cap(&fx) != cap)
			probe_step = step;
	}
	assert_true(probe_step > 0);
	assert_true(last_cap(&fx) >= cap * PROBE_STEP);
	assert_in_range(T0 + probe_step * WINDOW_STEP_NS - cut_ns, 1000 * 1000 * 1000ULL, 1500 * 1000 * 1000ULL);
	assert_int_equal(fx.c.shadow.reversals, 2);
	/* both measured: no oscillation for the promotion gate */
	assert_true(shadow_oscillations_per_30s(&fx.c.shadow) == 0);
	stop(&fx);
}

/* The gate's oscillations count the policy's reversals, not measured ones. */
static void test_gate_oscillations_leave_out_measured_reversals(void **state)
{
	struct shadow_report r = { 0 };
	const uint64_t s = 1000ULL * 1000 * 1000;

	(void)state;
	shadow_note_reversal(&r, UINT64_MAX, true);
	shadow_note_reversal(&r, 2 * s, true);
	assert_int_equal(r.reversals, 2);
	assert_true(shadow_oscillations_per_30s(&r) == 0);
	shadow_note_reversal(&r, 8 * s, false);
	assert_true(shadow_oscillations_per_30s(&r) == 2);
}

/* A capped flow on a jittery link: its RTT 1.45 x the min with no queue, so it delivers
 * cap / (1.45 x min RTT) and the heuristic's 1.25 x that rate x min RTT is 0.86 x the cap.
 * For 10 s the cap never falls and probes once per PROBE_SLOW_GAP_MS; once the median
 * RTT shows a queue (1.6 x), it is cut. */
static void test_capped_flow_is_cut_only_by_a_queue(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step, probes = 0;
	uint32_t cap;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40007);
	start_at_44(&fx.c, &f);
	cap = last_cap(&fx);
	for (step = 4; step < 104; step++) {
		feed_capped(&fx.c, &f, step, last_cap(&fx), 1.45);
		assert_true(last_cap(&fx) >= cap);
		if (last_cap(&fx) > cap)
			probes++;
		cap = last_cap(&fx);
	}
	/* 10 s: one probe per 2 s gap, each held 300 ms */
	assert_in_range(probes, 3, 5);
	for (; step < 134; step++)
		feed_capped(&fx.c, &f, step, cap, 1.6);
	assert_true(last_cap(&fx) < cap);
	/* a flow below its cap (cubic backed off) is cut as before, queue or not */
	cap = last_cap(&fx);
	for (; step < 200; step++)
		feed_capped(&fx.c, &f, step, cap / 2, 1.0);
	assert_true(last_cap(&fx) < cap);
	stop(&fx);
}

/* Behind a queue of seconds a capped flow gets an RTT sample in one window of many:
 * the cut that sample calls for stands through the windows without one and is taken
 * once it has been pending for the hold (300 ms), and its log line says so. */
static void test_a_cut_stands_through_windows_without_an_rtt(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step = 4, decisions;
	uint32_t cap;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40012);
	start_at_44(&fx.c, &f);
	/* The flow's first cut is taken at once (hysteresis.h): the one after it is this
	 * test's. */
	for (; step < 24; step++)
		feed_rate(&fx.c, &f, step, 4e6, 0.0, last_cap(&fx));
	feed_rate(&fx.c, &f, step++, 4e6, 50.0, last_cap(&fx));
	cap = last_cap(&fx);
	assert_true(cap < 44);
	decisions = fx.rec.n_decisions;
	/* 2 s for the rate window to forget the rates before the queue: no RTT in them */
	for (; step < 45; step++)
		feed_rate(&fx.c, &f, step, 1e6, 0.0, cap);
	assert_int_equal(fx.rec.n_decisions, decisions);
	feed_rate(&fx.c, &f, step++, 1e6, 50.0, cap);
	assert_int_equal(fx.rec.n_decisions, decisions);
	feed_rate(&fx.c, &f, step++, 1e6, 0.0, cap);
	feed_rate(&fx.c, &f, step++, 1e6, 0.0, cap);
	assert_int_equal(fx.rec.n_decisions, decisions);
	feed_rate(&fx.c, &f, step++, 1e6, 0.0, cap);
	assert_int_equal(fx.rec.n_decisions, decisions + 1);
	assert_true(last_cap(&fx) < cap / 2);
	assert_int_equal(log_lines_with(&fx, "no RTT measurement since", NULL), 1);
	/* and nothing more without a measurement */
	cap = last_cap(&fx);
	for (; step < 80; step++)
		feed_rate(&fx.c, &f, step, 1e6, 0.0, cap);
	assert_int_equal(fx.rec.n_decisions, decisions + 1);
	stop(&fx);
}

/* The link falls 4x under a capped flow (10 -> 2.5 Mbit/s) and a queue builds: once
 * the 2 s of rates (RATE_WINDOWS) no longer hold the old rate, the cut takes the new
 * one. */
static void test_a_cut_in_a_queue_follows_the_rate(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step = 4, fell_at;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40013);
	start_at_44(&fx.c, &f);
	for (; step < 14; step++)
		feed_capped(&fx.c, &f, step, 44, 1.3);
	assert_int_equal(last_cap(&fx), 44);
	for (fell_at = step; step < fell_at + RATE_WINDOWS + 4; step++)
		feed_rate(&fx.c, &f, step, 2.5e6, 2.0, 44);
	/* 1.25 x 2.5 Mbit/s x 40 ms = 10.8 packets */
	assert_in_range(last_cap(&fx), 10, 12);
	stop(&fx);
}

/* The first cap is no lower than the flow's cwnd when its pipe is declared full: the
 * rates of its slow-start windows (here 2 Mbit/s, 9 packets' worth) understate the
 * link; a queue then cuts it. */
static void test_first_cap_starts_at_the_flows_cwnd(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40008);
	for (step = 0; step <= 3; step++) {
		struct feature_window w = flow_window(step, 2e6, 40000);

		w.context[CTX_SND_CWND] = 60;
		controller_on_flow_window(&fx.c, &f, &w);
	}
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_int_equal(last_cap(&fx), 60);
	for (; step < 10; step++)
		feed_rate(&fx.c, &f, step, 2e6, 2.0, 60);
	assert_true(last_cap(&fx) < 60);
	stop(&fx);
}

/* A queue that outlasts the cap's cuts (a competing cubic flow keeps the buffer full):
 * FOREIGN_QUEUE_MS after the first cut in it the cap is withdrawn (0: the kernel's CC competes), for
 * FOREIGN_LIFT_MS, then a cap returns. A queue shorter than that lifts nothing. */
static void test_foreign_queue_lifts_the_cap(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	unsigned step, lifted_at = 0, back_at = 0;
	uint32_t cap;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40009);
	start_at_44(&fx.c, &f);
	cap = last_cap(&fx);
	/* 4 s of queue, then none: capped all along */
	for (step = 4; step < 44; step++)
		feed_capped(&fx.c, &f, step, cap, 2.0);
	assert_true(last_cap(&fx) > 0);
	for (; step < 54; step++)
		feed_capped(&fx.c, &f, step, last_cap(&fx), 1.3);
	assert_true(last_cap(&fx) > 0);
	/* a queue that stays, every other window without an RTT measurement (few ACKs
	 * behind it): the cap is cut once the last 2 s of rates (RATE_WINDOWS) forget the
	 * rates before the queue, lifted 5 s after that cut, for 10 s */
	for (; step < 250 && !back_at; step++) {
		if (step % 2)
			feed_rate(&fx.c, &f, step, 1e6, 0.0, last_cap(&fx) ? last_cap(&fx) : 60);
		else
			feed_capped(&fx.c, &f, step, last_cap(&fx) ? last_cap(&fx) : 60, 2.0);
		if (!lifted_at && last_cap(&fx) == 0)
			lifted_at = step;
		if (lifted_at && last_cap(&fx) > 0)
			back_at = step;
	}
	assert_in_range(lifted_at, 54 + RATE_WINDOWS + 50, 54 + RATE_WINDOWS + 6 + 52);
	assert_in_range(back_at - lifted_at, 100, 102);
	assert_true(log_lines_with(&fx, "competing flow", "cap lifted") >= 1);
	stop(&fx);
}

/* The cap returns after a lift and the queue stays through its cuts: the competing
 * flow is still there, and the cap is lifted again FOREIGN_RECHECK_MS after the return
 * for twice as long, then for FOREIGN_LIFT_MAX_MS. A return that finds no queue ends
 * it: the cap stays, and the next foreign queue waits FOREIGN_QUEUE_MS again. */
static void test_foreign_queue_after_a_lift_lifts_again(void **state)
{
	unsigned step, lifted_at = 0, back_at = 0, lifts = 0, lift_len[3] = { 0 };
	struct fixture fx;
	struct flow_entry f;
	uint32_t cap;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&f, 40014);
	start_at_44(&fx.c, &f);
	/* a queue from the start that never drains, as a cubic flow's in a full buffer */
	for (step = 4; step < 900 && lifts < 3; step++) {
		cap = last_cap(&fx);
		feed_capped(&fx.c, &f, step, cap ? cap : 200, 2.0);
		if (!lifted_at && last_cap(&fx) == 0) {
			lifted_at = step;
			if (back_at) /* a lift right after a return */
				assert_in_range(step - back_at, FOREIGN_RECHECK_MS / 100, FOREIGN_RECHECK_MS / 100 + 8);
		}
		if (lifted_at && last_cap(&fx) > 0) {
			lift_len[lifts++] = step - lifted_at;
			back_at = step;
			lifted_at = 0;
		}
	}
	assert_int_equal(lifts, 3);
	assert_in_range(lift_len[0], FOREIGN_LIFT_MS / 100, FOREIGN_LIFT_MS / 100 + 2);
	assert_in_range(lift_len[1], 2 * FOREIGN_LIFT_MS / 100, 2 * FOREIGN_LIFT_MS / 100 + 2);
	assert_in_range(lift_len[2], FOREIGN_LIFT_MAX_MS / 100, FOREIGN_LIFT_MAX_MS / 100 + 2);
	assert_int_equal(log_lines_with(&fx, "stayed through the returned cap", "lifted again"), 2);
	assert_int_equal(fx.c.stats.foreign_lifts, 1);
	assert_int_equal(fx.c.stats.foreign_relifts, 2);
	/* the competitor has left: the returned cap finds no queue */
	for (; step < back_at + 100; step++)
		feed_capped(&fx.c, &f, step, last_cap(&fx), 1.3);
	assert_true(last_cap(&fx) > 0);
	/* a queue again: the first wait, FOREIGN_QUEUE_MS after a cut, not the recheck's */
	for (back_at = step; step < back_at + 200 && last_cap(&fx) > 0; step++)
		feed_capped(&fx.c, &f, step, last_cap(&fx), 2.0);
	assert_true(step - back_at > FOREIGN_QUEUE_MS / 100);
	assert_int_equal(log_lines_with(&fx, "stayed through the returned cap", "lifted again"), 2);
	assert_int_equal(fx.c.stats.foreign_lifts, 2);
	stop(&fx);
}

/* Two of reflexd's flows through one queue (a host's parallel uploads): however long
 * the queue lasts, it is theirs, and neither cap is lifted. */
static void test_shared_queue_lifts_no_cap(void **state)
{
	struct fixture fx;
	struct flow_entry a, b;
	unsigned step;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	flow_init(&a, 40010);
	flow_init(&b, 40011);
	start_at_44(&fx.c, &a);
	start_at_44(&fx.c, &b);
	for (step = 4; step < 304; step++) {
		feed_capped(&fx.c, &a, step, 20, 2.0);
		feed_capped(&fx.c, &b, step, 20, 2.0);
	}
	assert_int_equal(log_lines_with(&fx, "competing flow", "cap lifted"), 0);
	for (size_t i = 0; i < fx.rec.n_decisions; i++)
		assert_true(fx.rec.decisions[i].cwnd_target > 0);
	stop(&fx);
}

/* The cap last written for a flow. */
static uint32_t last_cap_of(const struct fixture *fx, const struct flow_entry *f)
{
	for (size_t i = fx->rec.n_decisions; i-- > 0;)
		if (fx->rec.decisions[i].key.sport == f->key.sport)
			return fx->rec.decisions[i].cwnd_target;
	return 0;
}

/* A cwnd tree model over the window's inputs (each 0..1e6) whose output is
 * cwnd_bdp_multiple in quarters; the caller may add to it before model_write_temp. */
static struct model *cwnd_tree_model(const struct model_tree_node *nodes, uint16_t node_count)
{
	struct model *m = model_create(MODEL_KIND_TREES, FEATURE_COUNT, 1);
	struct reflex_err err;

	assert_non_null(m);
	for (unsigned i = 0; i < FEATURE_COUNT; i++)
		assert_int_equal(model_set_feature(m, i, window_input_names[i], 0, 1e6, &err), 0);
	assert_int_equal(model_set_output(m, 0, "cwnd_bdp_multiple", 0, 4, 0.25, &err), 0);
	assert_int_equal(model_set_tree(m, 0, nodes, node_count, &err), 0);
	return m;
}

/* Writes the model into a new file named from the template `path`, and frees it. */
static void model_write_temp(struct model *m, char *path)
{
	struct reflex_err err;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	if (model_write_file(m, path, &err))
		fail_msg("%s", err.msg);
	model_free(m);
}

/* Two of reflexd's flows in one queue, the tree saying "no cap" for one of them (a
 * dequeue rate over 500,000 packets/s) and 1 x BDP for the other: the queue is still
 * reflexd's own, and the capped flow's cap is never lifted for it. */
static void test_a_queue_shared_with_an_uncapped_flow_lifts_no_cap(void **state)
{
	static const struct model_tree_node split[] = {
		{ .feature_idx = FEAT_DEQUEUE_RATE, .threshold = 16384, .left = 1, .right = 2 },
		{ .feature_idx = MODEL_LEAF, .leaf_value = 4 }, /* 1 x BDP */
		{ .feature_idx = MODEL_LEAF, .leaf_value = 0 }, /* no cap */
	};
	char path[] = "/tmp/test_controller_split.XXXXXX";
	struct fixture fx;
	struct flow_entry a, b;

	(void)state;
	model_write_temp(cwnd_tree_model(split, 3), path);
	start(&fx, CWND_POLICY_TREE, path, NULL, false, NULL);
	assert_non_null(fx.c.tree.model);
	flow_init(&a, 40016);
	flow_init(&b, 40017);
	for (unsigned step = 0; step < 304; step++) {
		struct feature_window wa = flow_window(step, 10e6, 40000), wb = flow_window(step, 10e6, 40000);

		if (step >= 4) /* a queue from then on: the median RTT twice the min */
			wa.feature[FEAT_LATENCY_P50] = wb.feature[FEAT_LATENCY_P50] = 2 * 40000;
		wb.feature[FEAT_DEQUEUE_RATE] = 9e5;
		controller_on_flow_window(&fx.c, &a, &wa);
		controller_on_flow_window(&fx.c, &b, &wb);
	}
	assert_true(last_cap_of(&fx, &a) > 0);
	for (size_t i = 0; i < fx.rec.n_decisions; i++)
		assert_int_not_equal(fx.rec.decisions[i].key.sport, b.key.sport);
	assert_int_equal(fx.c.stats.foreign_lifts, 0);
	assert_int_equal(log_lines_with(&fx, "competing flow", "cap lifted"), 0);
	stop(&fx);
	unlink(path);
}


/* Two flows at 10 Mbit/s, 40 ms: their first caps at their cwnds, 90 and 44 packets. */
static void start_two_at_90_and_44(struct fixture *fx, struct flow_entry *a, struct flow_entry *b)
{
	flow_init(a, 40014);
	flow_init(b, 40015);
	for (unsigned step = 0; step <= 3; step++) {
		struct feature_window wa = flow_window(step, 10e6, 40000), wb = flow_window(step, 10e6, 40000);

		wa.context[CTX_SND_CWND] = 90;
		wb.context[CTX_SND_CWND] = 44;
		controller_on_flow_window(&fx->c, a, &wa);
		controller_on_flow_window(&fx->c, b, &wb);
	}
	assert_int_equal(last_cap_of(fx, a), 90);
	assert_int_equal(last_cap_of(fx, b), 44);
}

/* Two flows through one queue with caps 2:1 (the first cap at each one's cwnd): a cut
 * of its own rate would keep the split; the shared queue's cut evens them. */
static void test_a_shared_queue_evens_the_caps(void **state)
{
	struct fixture fx;
	struct flow_entry a, b;
	uint32_t cap_a, cap_b;
	unsigned step;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	start_two_at_90_and_44(&fx, &a, &b);
	/* 3 s: the first cut of each is taken at once with its own rate (hysteresis.h),
	 * before the other is seen in the queue; the cuts after it even them. */
	for (step = 4; step < 34; step++) {
		feed_capped(&fx.c, &a, step, last_cap_of(&fx, &a), 2.0);
		feed_capped(&fx.c, &b, step, last_cap_of(&fx, &b), 2.0);
	}
	cap_a = last_cap_of(&fx, &a);
	cap_b = last_cap_of(&fx, &b);
	assert_true(cap_a < 90);
	assert_true(cap_a <= cap_b * 1.25 && cap_b <= cap_a * 1.25);
	assert_true(log_lines_with(&fx, "in a queue shared with others", "mean cap") >= 1);
	stop(&fx);
}

/* A standing queue in which each flow's own rate calls for no cut (1.25 x its rate x
 * min RTT is over its cap, as with the last second's max rate while the queue stands):
 * the flow over the mean is still cut to it. */
static void test_a_shared_queue_evens_caps_its_rates_keep(void **state)
{
	struct fixture fx;
	struct flow_entry a, b;
	unsigned step;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	start_two_at_90_and_44(&fx, &a, &b);
	for (step = 4; step < 44; step++) {
		uint32_t cap_a = last_cap_of(&fx, &a), cap_b = last_cap_of(&fx, &b);

		feed_rate(&fx.c, &a, step, cap_a * 1448 * 8 / 0.040, 2.0, cap_a);
		feed_rate(&fx.c, &b, step, cap_b * 1448 * 8 / 0.040, 2.0, cap_b);
	}
	assert_true(last_cap_of(&fx, &a) < 90);
	assert_true(last_cap_of(&fx, &a) <= last_cap_of(&fx, &b) * 1.25);
	stop(&fx);
}

static void test_dqn_writes_the_cwnd_it_steers(void **state)
{
	const struct hysteresis_params every_change = { .margin = 0, .hold_ns = 0, .reversal_gap_ns = 0 };
	struct fixture fx;
	struct flow_entry f;
	uint32_t prev = 80; /* the window's snd_cwnd, where the DQN starts */

	(void)state;
	start(&fx, CWND_POLICY_DQN, NULL, DQN_MODEL, false, &every_change);
	assert_non_null(fx.c.dqn.model);
	assert_string_equal(controller_policy_name(&fx.c), "dqn");
	flow_init(&f, 40003);
	feed(&fx.c, &f, 0, 2, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 0);
	feed(&fx.c, &f, 3, 30, 50e6, 20000);
	assert_true(fx.rec.n_decisions > 0);
	/* Every write is one DQN action applied to the cwnd written before. */
	for (unsigned i = 0; i < fx.rec.n_decisions; i++) {
		bool reachable = false;
		char expected[64];

		for (int a = 0; a < DQN_ACTIONS; a++)
			reachable |= dqn_apply_action((enum dqn_action)a, prev) == fx.rec.decisions[i].cwnd_target;
		assert_true(reachable);
		snprintf(expected, sizeof(expected), "-> cwnd %u ", fx.rec.decisions[i].cwnd_target);
		assert_true(log_lines_with(&fx, "\"model\": \"dqn\"", expected) > 0);
		prev = fx.rec.decisions[i].cwnd_target;
	}
	assert_log_is_json(&fx);
	stop(&fx);
}

static void test_a_policy_without_its_model_falls_back_to_the_heuristic(void **state)
{
	struct fixture fx;
	struct flow_entry f;

	(void)state;
	start(&fx, CWND_POLICY_TREE, "/nonexistent/cwnd.reflex", NULL, false, NULL);
	assert_string_equal(controller_policy_name(&fx.c), "heuristic");
	flow_init(&f, 40004);
	feed(&fx.c, &f, 0, 3, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_int_equal(fx.rec.decisions[0].cwnd_target, 108);
	stop(&fx);
}

static void test_shadow_writes_nothing_until_promoted(void **state)
{
	struct fixture fx;
	struct flow_entry f;
	char why[512];

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, true, NULL);
	flow_init(&f, 40005);
	feed(&fx.c, &f, 0, 20, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 0);
	assert_int_equal(log_lines_with(&fx, "\"new\": 108", "\"acted\": false"), 1);
	/* A verdict that fails the gate (p95 +10 %): still nothing written. */
	fx.c.shadow.evaluated = 10;
	fx.c.shadow.delta_p95_sum = 1;
	assert_false(controller_promote(&fx.c, why, sizeof(why)));
	assert_int_equal(fx.rec.n_decisions, 0);
	controller_flow_gone(&fx.c, &f);
	assert_int_equal(fx.rec.n_decisions, 0);
	/* A verdict that passes: the decision in force is written at once. */
	flow_init(&f, 40006);
	feed(&fx.c, &f, 21, 30, 50e6, 20000);
	fx.c.shadow.evaluated = 10;
	fx.c.shadow.delta_p95_sum = -3; /* -30 % */
	fx.c.shadow.max_reversals_30s = 0;
	assert_true(controller_promote(&fx.c, why, sizeof(why)));
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_int_equal(fx.rec.decisions[0].cwnd_target, 108);
	/* Promoted once is promoted. */
	assert_false(controller_promote(&fx.c, why, sizeof(why)));
	stop(&fx);
}

static void test_heartbeat_stops_when_the_loop_stalls(void **state)
{
	struct fixture fx;
	uint64_t deadline = REFLEX_DEFAULT_HEARTBEAT_DEADLINE_NS, now;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	/* The loop turns every 10 ms: a beat every 50 ms, stamped with the loop's time. */
	for (now = T0; now <= T0 + 200 * MS; now += 10 * MS)
		controller_heartbeat(&fx.c, now);
	assert_int_equal(fx.rec.n_beats, 5);
	for (unsigned i = 0; i < fx.rec.n_beats; i++)
		assert_int_equal(fx.rec.beats[i], T0 + i * HEARTBEAT_PERIOD_NS);
	/* The loop stalls for 600 ms: no beat comes from anywhere else, so the BPF side
	 * (a beat older than the deadline) lifts every decision before the loop is back. */
	assert_true(T0 + 200 * MS + deadline < T0 + 800 * MS);
	assert_int_equal(fx.rec.n_beats, 5);
	controller_heartbeat(&fx.c, T0 + 800 * MS);
	assert_int_equal(fx.rec.n_beats, 6);
	assert_int_equal(fx.rec.beats[5], T0 + 800 * MS);
	stop(&fx);
}

static void test_nothing_is_written_without_control_or_sockets(void **state)
{
	struct fixture fx;
	struct flow_entry f;

	(void)state;
	/* --observe: telemetry only, no beat, no decision. */
	start(&fx, CWND_POLICY_OFF, NULL, NULL, false, NULL);
	flow_init(&f, 40007);
	feed(&fx.c, &f, 0, 10, 50e6, 20000);
	controller_heartbeat(&fx.c, T0);
	assert_int_equal(fx.rec.n_decisions, 0);
	assert_int_equal(fx.rec.n_beats, 0);
	stop(&fx);
	/* No sockops (no --cgroup): no sockets to act on. */
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	fx.rec.base.flows = false;
	feed(&fx.c, &f, 0, 10, 50e6, 20000);
	controller_heartbeat(&fx.c, T0);
	assert_int_equal(fx.rec.n_decisions, 0);
	assert_int_equal(fx.rec.n_beats, 0);
	stop(&fx);
}

/* A reused 4-tuple: telemetry sees another socket cookie, and the old connection's
 * decision is withdrawn before the new one could inherit it; the new connection
 * starts uncapped, in startup. */
static void flow_gone_to_controller(struct flow_entry *flow, void *ctx)
{
	controller_flow_gone(ctx, flow);
}

static void test_a_reused_four_tuple_does_not_inherit_the_decision(void **state)
{
	struct sock_sample s = { .event = SOCK_EVENT_ESTABLISHED, .mss_cache = 1448, .srtt_us = 20000 };
	struct telemetry t;
	struct fixture fx;
	struct flow_entry probe, *f;

	(void)state;
	start(&fx, CWND_POLICY_HEURISTIC, NULL, NULL, false, NULL);
	telemetry_init(&t, "test0", flow_gone_to_controller, &fx.c);
	flow_init(&probe, 40008);
	s.key = probe.key;
	s.cookie = 1;
	s.ts_ns = T0;
	telemetry_on_sock_sample(&t, &s);
	f = telemetry_flow(&t, &probe.key);
	assert_non_null(f);
	feed(&fx.c, f, 1, 4, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_int_equal(fx.rec.decisions[0].cwnd_target, 108);
	/* The same 4-tuple, another socket. */
	s.cookie = 2;
	s.ts_ns = T0 + 500 * MS;
	telemetry_on_sock_sample(&t, &s);
	assert_int_equal(fx.rec.n_decisions, 2);
	assert_int_equal(fx.rec.decisions[1].cwnd_target, 0);
	assert_int_equal(t.flows_seen, 2);
	assert_ptr_equal(telemetry_flow(&t, &probe.key), f);
	feed(&fx.c, f, 6, 8, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 2); /* startup again */
	feed(&fx.c, f, 9, 9, 50e6, 20000);
	assert_int_equal(fx.rec.n_decisions, 3);
	telemetry_free(&t);
	assert_int_equal(fx.rec.n_decisions, 4);
	assert_int_equal(fx.rec.decisions[3].cwnd_target, 0);
	stop(&fx);
}

/* --- batching ----------------------------------------------------------------------- */

static void start_batching(struct fixture *fx, const char *model)
{
	struct reflex_config cfg = { .flush_threshold = REFLEX_DEFAULT_FLUSH_THRESHOLD,
				     .max_batch_delay_us = REFLEX_DEFAULT_MAX_BATCH_DELAY_US };
	struct controller_opts o = { .policy = CWND_POLICY_HEURISTIC, .batching_model_path = model,
				     .hysteresis = HYSTERESIS_DEFAULTS };

	fx->log_path[0] = '\0';
	recorder_init(&fx->rec);
	assert_int_equal(controller_init(&fx->c, &o, &fx->rec.base, &cfg), 0);
}

/* small.reflex: enqueue 100 packets/s, p95 1 ms, rtt_ewma 0.5 ms -> flush 1, delay 50 us. */
static struct feature_window quiet_iface_window(void)
{
	struct feature_window w;

	memset(&w, 0, sizeof(w));
	w.ts_ns = T0;
	w.feature[FEAT_ENQUEUE_RATE] = 100;
	w.feature[FEAT_LATENCY_P95] = 1000;
	w.feature[FEAT_RTT_EWMA] = 500;
	snprintf(w.flow, sizeof(w.flow), "iface:test0");
	return w;
}

static void test_batching_outputs_are_written_within_the_legal_range(void **state)
{
	struct fixture fx;
	struct feature_window w = quiet_iface_window();

	(void)state;
	start_batching(&fx, BATCHING_MODEL);
	assert_non_null(fx.c.batching_model);
	controller_on_iface_window(&fx.c, &w);
	assert_int_equal(fx.rec.n_configs, 1);
	assert_int_equal(fx.rec.configs[0].flush_threshold, 1);
	assert_int_equal(fx.rec.configs[0].max_batch_delay_us, 50);
	/* Whatever the model computes, the write holds it to the range: scale the
	 * outputs far out (1 -> 1e9 records, 50 -> 5e9 us). */
	fx.c.batching_model->outputs[fx.c.flush_output].scale = 1e9;
	fx.c.batching_model->outputs[fx.c.delay_output].scale = 1e8;
	w.ts_ns += WINDOW_STEP_NS;
	controller_on_iface_window(&fx.c, &w);
	assert_int_equal(fx.rec.n_configs, 2);
	assert_int_equal(fx.rec.configs[1].flush_threshold, FLUSH_THRESHOLD_MAX);
	assert_int_equal(fx.rec.configs[1].max_batch_delay_us, MAX_BATCH_DELAY_US_MAX);
	/* and below it (0 records, 0 us). */
	fx.c.batching_model->outputs[fx.c.flush_output].scale = 1e-9;
	fx.c.batching_model->outputs[fx.c.delay_output].scale = 1e-9;
	w.ts_ns += WINDOW_STEP_NS;
	controller_on_iface_window(&fx.c, &w);
	assert_int_equal(fx.rec.n_configs, 3);
	assert_int_equal(fx.rec.configs[2].flush_threshold, FLUSH_THRESHOLD_MIN);
	assert_int_equal(fx.rec.configs[2].max_batch_delay_us, MAX_BATCH_DELAY_US_MIN);
	controller_free(&fx.c);
}

/* A batching model that passes validation but may set max_batch_delay_us to 4.16e9
 * and flush_threshold to 0 is refused at load: the defaults stay, nothing is written. */
static void test_a_batching_model_beyond_the_legal_range_is_refused(void **state)
{
	const struct model_tree_node flush_leaf[] = { { .feature_idx = MODEL_LEAF, .leaf_value = 0 } };
	const struct model_tree_node delay_leaf[] = { { .feature_idx = MODEL_LEAF, .leaf_value = 31738 } };
	struct model *m = model_create(MODEL_KIND_TREES, FEATURE_COUNT, 2);
	struct reflex_err err = { 0 };
	char path[] = "/tmp/test_controller_model.XXXXXX";
	struct feature_window w = quiet_iface_window();
	struct fixture fx;
	int fd;

	(void)state;
	assert_non_null(m);
	for (unsigned i = 0; i < FEATURE_COUNT; i++)
		assert_int_equal(model_set_feature(m, i, feature_names[i], 0, 1e6, &err), 0);
	assert_int_equal(model_set_output(m, 0, "flush_threshold", 0, 64, 1, &err), 0);
	assert_int_equal(model_set_output(m, 1, "max_batch_delay_us", 50, 4.16e9, 131072, &err), 0);
	assert_int_equal(model_set_tree(m, 0, flush_leaf, 1, &err), 0);
	assert_int_equal(model_set_tree(m, 1, delay_leaf, 1, &err), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(model_write_file(m, path, &err), 0);
	model_free(m);

	start_batching(&fx, path);
	assert_null(fx.c.batching_model);
	controller_on_iface_window(&fx.c, &w);
	assert_int_equal(fx.rec.n_configs, 0);
	controller_free(&fx.c);
	unlink(path);
}

/* A cwnd tree that always says 2 x BDP, with a forest that isolates every input at
 * once (a root leaf of path 0: score 1). With an anomaly threshold the flow goes to
 * the heuristic (1.25 x BDP) after `hold` windows and the log says why; without one
 * the tree decides. */
static void test_an_anomalous_flow_is_decided_by_the_heuristic(void **state)
{
	static const struct model_tree_node two_bdp = { .feature_idx = MODEL_LEAF, .leaf_value = 8 };
	struct model *m = cwnd_tree_model(&two_bdp, 1);
	struct model_anomaly *a = calloc(1, sizeof(*a));
	char path[] = "/tmp/test_controller_anomaly.XXXXXX";
	struct fixture fx;
	struct flow_entry f, g;

	(void)state;
	assert_non_null(a);
	a->tree_count = 1;
	a->max_depth = 1;
	a->sample_size = 2;
	a->trees[0].node_count = 1;
	a->trees[0].nodes = calloc(1, sizeof(*a->trees[0].nodes));
	assert_non_null(a->trees[0].nodes);
	a->trees[0].nodes[0].feature_idx = MODEL_LEAF;
	m->anomaly = a;
	model_write_temp(m, path);

	start(&fx, CWND_POLICY_TREE, path, NULL, false, NULL);
	assert_non_null(fx.c.tree.model);
	fx.c.opt.health.anomaly_threshold = 0.65;
	fx.c.opt.health.anomaly_hold = 3;
	flow_init(&f, 40010);
	feed(&fx.c, &f, 0, 3, 50e6, 20000);
	assert_int_equal(fx.c.stats.anomaly_handovers, 1);
	assert_int_equal(fx.c.stats.anomaly_flows, 1);
	assert_int_equal(fx.rec.n_decisions, 1);
	assert_int_equal(fx.rec.decisions[0].cwnd_target, 108); /* the heuristic's 1.25 x BDP */
	assert_int_equal(log_lines_with(&fx, "\"model\": \"heuristic\"", "flow anomaly 1.000 > 0.650"), 1);
	controller_flow_gone(&fx.c, &f);
	assert_int_equal(fx.c.stats.anomaly_flows, 0);
	/* Scored but never handed over: the tree decides. */
	fx.c.opt.health.anomaly_threshold = 0;
	flow_init(&g, 40011);
	feed(&fx.c, &g, 0, 3, 50e6, 20000);
	assert_int_equal(fx.c.stats.anomaly_handovers, 1);
	assert_int_equal(fx.rec.n_decisions, 3);
	assert_int_equal(fx.rec.decisions[2].cwnd_target, 173); /* the tree's 2 x BDP */
	stop(&fx);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap_is_multiple_of_bdp),
		cmocka_unit_test(test_full_pipe_after_three_flat_windows),
		cmocka_unit_test(test_growth_resets_the_count),
		cmocka_unit_test(test_queue_building_ends_startup),
		cmocka_unit_test(test_heuristic_writes_its_cap_after_startup),
		cmocka_unit_test(test_small_changes_are_not_written),
		cmocka_unit_test(test_tree_writes_its_multiple_and_the_hysteresis_paces_reversals),
		cmocka_unit_test(test_capped_flow_without_queue_probes_up),
		cmocka_unit_test(test_probe_after_a_small_cut_waits_only_a_second),
		cmocka_unit_test(test_capped_flow_is_cut_only_by_a_queue),
		cmocka_unit_test(test_a_cut_stands_through_windows_without_an_rtt),
		cmocka_unit_test(test_a_cut_in_a_queue_follows_the_rate),
		cmocka_unit_test(test_first_cap_starts_at_the_flows_cwnd),
		cmocka_unit_test(test_foreign_queue_lifts_the_cap),
		cmocka_unit_test(test_foreign_queue_after_a_lift_lifts_again),
		cmocka_unit_test(test_shared_queue_lifts_no_cap),
		cmocka_unit_test(test_a_queue_shared_with_an_uncapped_flow_lifts_no_cap),
		cmocka_unit_test(test_a_shared_queue_evens_the_caps),
		cmocka_unit_test(test_a_shared_queue_evens_caps_its_rates_keep),
		cmocka_unit_test(test_gate_oscillations_leave_out_measured_reversals),
		cmocka_unit_test(test_dqn_writes_the_cwnd_it_steers),
		cmocka_unit_test(test_a_policy_without_its_model_falls_back_to_the_heuristic),
		cmocka_unit_test(test_shadow_writes_nothing_until_promoted),
		cmocka_unit_test(test_heartbeat_stops_when_the_loop_stalls),
		cmocka_unit_test(test_nothing_is_written_without_control_or_sockets),
		cmocka_unit_test(test_a_reused_four_tuple_does_not_inherit_the_decision),
		cmocka_unit_test(test_batching_outputs_are_written_within_the_legal_range),
		cmocka_unit_test(test_a_batching_model_beyond_the_legal_range_is_refused),
		cmocka_unit_test(test_an_anomalous_flow_is_decided_by_the_heuristic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
