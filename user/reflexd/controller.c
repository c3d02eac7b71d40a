#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/json_write.h"
#include "lib/log16.h"
#include "model/model_fast.h"
#include "reflexd/controller.h"
#include "reflexd/decision_log.h"

#define DEFAULT_MSS 1448

static void batching_load(struct controller *c)
{
	static const struct policy_output outputs[] = {
		{ "flush_threshold", FLUSH_THRESHOLD_MIN, FLUSH_THRESHOLD_MAX },
		{ "max_batch_delay_us", MAX_BATCH_DELAY_US_MIN, MAX_BATCH_DELAY_US_MAX },
	};

	if (c->opt.batching_model_path &&
	    policy_model_load("batching", c->opt.batching_model_path, MODEL_KIND_TREES, window_input_names,
			      WINDOW_INPUTS, outputs, 2, &c->batching_model, c->batching_map) == 0) {
		c->flush_output = policy_model_output(c->batching_model, "flush_threshold");
		c->delay_output = policy_model_output(c->batching_model, "max_batch_delay_us");
	}
}

static struct policy *chosen_policy(struct controller *c)
{
	switch (c->opt.policy) {
	case CWND_POLICY_TREE: return &c->tree.base;
	case CWND_POLICY_DQN: return &c->dqn.base;
	default: return &c->heuristic;
	}
}

int controller_init(struct controller *c, const struct controller_opts *opt, struct actuator *act,
		    const struct reflex_config *config)
{
	const struct dqn_cwnd_policy_opts dqn_opt = {
		.model_path = opt->dqn_model_path,
		.explore = opt->explore,
		.learn = opt->learn && opt->policy == CWND_POLICY_DQN,
		.learn_out_path = opt->learn_out_path,
	};

	memset(c, 0, sizeof(*c));
	c->opt = *opt;
	c->act = act;
	c->config = *config;
	heuristic_policy_init(&c->heuristic);
	c->chosen = chosen_policy(c);
	if (opt->decision_log_path) {
		c->log = decision_log_open(opt->decision_log_path);
		if (!c->log) {
			fprintf(stderr, "reflexd: cannot open decision log %s: %s\n", opt->decision_log_path,
				strerror(errno));
			return -1;
		}
	}
	tree_policy_init(&c->tree, opt->cwnd_model_path);
	if (dqn_cwnd_policy_init(&c->dqn, &dqn_opt))
		return -1;
	batching_load(c);
	model_drift_init(&c->cwnd_drift, "cwnd", &opt->health);
	model_drift_init(&c->batching_drift, "batching", &opt->health);
	if (c->opt.policy != CWND_POLICY_OFF && !c->chosen->ready(c->chosen))
		fprintf(stderr, "reflexd: no %s model: the heuristic (%.2f x BDP) decides\n",
			c->opt.policy == CWND_POLICY_DQN ? "dqn" : "cwnd", HEURISTIC_BDP_GAIN);
	if (c->opt.batching_model_path && !c->batching_model)
		fprintf(stderr, "reflexd: no batching model: flush_threshold %u, max_batch_delay_us %u stay\n",
			c->config.flush_threshold, c->config.max_batch_delay_us);
	if (c->opt.shadow)
		fprintf(stderr, "reflexd: shadow mode: decisions are logged, nothing is enforced\n");
	return 0;
}

void controller_free(struct controller *c)
{
	for (struct flow_control *fc = flow_table_next(&c->flows, NULL); fc; fc = flow_table_next(&c->flows, fc))
		free(fc->policy);
	flow_table_free(&c->flows);
	dqn_cwnd_policy_free(&c->dqn);
	tree_policy_free(&c->tree);
	model_free(c->batching_model);
	model_drift_free(&c->cwnd_drift);
	model_drift_free(&c->batching_drift);
	if (c->log)
		fclose(c->log);
	memset(c, 0, sizeof(*c));
}

void controller_reload(struct controller *c)
{
	fprintf(stderr, "reflexd: reloading models\n");
	tree_policy_reload(&c->tree);
	dqn_cwnd_policy_reload(&c->dqn);
	batching_load(c);
}

void controller_heartbeat(struct controller *c, uint64_t now_ns)
{
	if (!c->act->flows || c->opt.policy == CWND_POLICY_OFF)
		return;
	if (c->beaten && now_ns - c->last_beat_ns < HEARTBEAT_PERIOD_NS)
		return;
	if (c->act->beat(c->act, now_ns))
		c->stats.map_errors++;
	c->beaten = true;
	c->last_beat_ns = now_ns;
}

uint32_t cwnd_cap_packets(double multiple, double rate_bps, double min_rtt_us, uint32_t mss)
{
	return bdp_cap_packets(multiple, rate_bps, min_rtt_us, mss ? mss : DEFAULT_MSS);
}

bool full_pipe_update(struct flow_control *fc, double rate_bps, double rtt_p50_us, double min_rtt_us)
{
	if (fc->pipe_full)
		return true;
	if (rate_bps > 0 && min_rtt_us > 0 && rtt_p50_us > FULL_PIPE_RTT_RATIO * min_rtt_us) {
		fc->pipe_full = true;
	} else if (rate_bps >= fc->full_pipe_rate * FULL_PIPE_GROWTH && rate_bps > 0) {
		fc->full_pipe_rate = (float)rate_bps;
		fc->full_pipe_count = 0;
	} else if (++fc->full_pipe_count >= FULL_PIPE_WINDOWS) {
		fc->pipe_full = true;
	}
	return fc->pipe_full;
}

/* The max delivery rate of the flow's last RATE_WINDOWS windows. */
static double rate_max(const struct flow_control *fc)
{
	uint16_t best = 0;

	for (unsigned i = 0; i < RATE_WINDOWS; i++)
		best = fc->rate_bps[i] > best ? fc->rate_bps[i] : best;
	return log16_unpack(best);
}

/* The policy that decides: the chosen one, or the heuristic until its model loads
 * and while the cwnd tree is handed over for drift. */
static struct policy *deciding_policy(const struct controller *c)
{
	if (c->chosen == &c->tree.base && c->cwnd_drift.guard.handed_over)
		return (struct policy *)&c->heuristic;
	return c->chosen->ready(c->chosen) ? c->chosen : (struct policy *)&c->heuristic;
}

/* Every TCP window the cwnd tree would see feeds its drift watch, handed over or not,
 * and is scored by its isolation forest. */
static void cwnd_health_observe(struct controller *c, struct flow_control *fc, const struct flow_entry *flow,
				const struct feature_window *w)
{
	const struct model *m = c->tree.model;
	double raw[WINDOW_INPUTS];
	int16_t q[MODEL_MAX_FEATURES];
	enum anomaly_event ev;
	char name[FLOW_NAME_MAX];

	if (c->chosen != &c->tree.base || !m)
		return;
	window_inputs(w, raw);
	model_drift_observe(&c->cwnd_drift, m, c->tree.map, raw, w->ts_ns, stderr);
	if (!m->anomaly) {
		/* A reload without a forest: nothing scores the flow any more. */
		if (flow_anomaly_handed(&fc->anomaly))
			c->stats.anomaly_flows--;
		fc->anomaly = (struct flow_anomaly){ .score = ANOMALY_NOT_SCORED };
		return;
	}
	model_quantize(m, raw, c->tree.map, q);
	ev = flow_anomaly_observe(&fc->anomaly, m->anomaly, q, (int)lround(c->opt.health.anomaly_threshold * ANOMALY_SCALE),
				  c->opt.health.anomaly_hold);
	if (ev == ANOMALY_NONE)
		return;
	if (ev == ANOMALY_HANDOVER) {
		c->stats.anomaly_handovers++;
		c->stats.anomaly_flows++;
	} else {
		c->stats.anomaly_returns++;
		c->stats.anomaly_flows--;
	}
	fprintf(stderr, "reflexd: anomaly: flow %s scores %.3f %s %.3f for %u windows: %s decides it\n",
		flow_key_format(&flow->key, name, sizeof(name)), fc->anomaly.score / (double)ANOMALY_SCALE, ev == ANOMALY_HANDOVER ? ">" : "<",
		c->opt.health.anomaly_threshold, c->opt.health.anomaly_hold,
		ev == ANOMALY_HANDOVER ? "the heuristic" : "the cwnd tree");
}

const char *controller_policy_name(const struct controller *c)
{
	return deciding_policy(c)->name;
}

static void log_string_field(FILE *log, const char *key, const char *value)
{
	fprintf(log, ", \"%s\": ", key);
	json_write_string(log, value, strlen(value));
}

/* One JSON line; reflexctl decisions reads it field by field ("key": value). */
static void log_decision(struct controller *c, const char *flow, const char *knob, double old_value,
			 double new_value, const char *model, const char *why, uint64_t ts_ns)
{
	if (!c->log)
		return;
	fprintf(c->log, "{\"v\": %d, \"ts_ns\": %llu", DECISION_LOG_SCHEMA, (unsigned long long)ts_ns);
	log_string_field(c->log, "flow", flow);
	log_string_field(c->log, "knob", knob);
	fputs(", \"old\": ", c->log);
	json_write_number(c->log, old_value);
	fputs(", \"new\": ", c->log);
	json_write_number(c->log, new_value);
	log_string_field(c->log, "model", model);
	fprintf(c->log, ", \"acted\": %s", c->opt.shadow ? "false" : "true");
	log_string_field(c->log, "explain", why);
	fputs("}\n", c->log);
}

static void decision_write(struct controller *c, struct flow_control *fc, uint32_t cwnd_target, uint64_t ts_ns)
{
	if (c->act->decide(c->act, &fc->flow->key, cwnd_target, ts_ns))
		c->stats.map_errors++;
	fc->decision_written = cwnd_target != 0;
}

/* In shadow mode, what the decision in force would do to this window's p95 RTT. */
static void shadow_observe(struct controller *c, struct flow_control *fc, const struct feature_window *w,
			   uint32_t mss)
{
	double bdp_packets, delta;

	c->shadow.flow_seconds += WINDOW_STEP_NS / 1e9;
	if (!c->opt.shadow || fc->rate_next % SHADOW_EVAL_EVERY)
		return;
	bdp_packets = w->context[CTX_DELIVERY_RATE_BPS] / 8.0 * w->context[CTX_MIN_RTT_US] / 1e6 /
		      (mss ? mss : DEFAULT_MSS);
	if (!(bdp_packets > 0))
		return;
	if (shadow_expected_delta(w, fc->cwnd.current / bdp_packets, &delta) == 0) {
		c->shadow.evaluated++;
		c->shadow.delta_p95_sum += delta;
	}
}

static struct flow_control *flow_control_get(struct controller *c, struct flow_entry *flow)
{
	struct flow_control *fc;

	if (flow->control_slot)
		return flow_table_at(&c->flows, flow->control_slot - 1);
	if (!c->flows.records &&
	    flow_table_init_slots(&c->flows, c->opt.max_flows ? c->opt.max_flows : REFLEX_MAX_FLOWS, sizeof(*fc)))
		return NULL;
	fc = flow_table_add(&c->flows, NULL);
	if (!fc)
		return NULL;
	fc->flow = flow;
	fc->anomaly.score = ANOMALY_NOT_SCORED;
	flow->control_slot = flow_table_slot(&c->flows, fc) + 1;
	return fc;
}

/* The policy's per-flow state, made when a policy that keeps one first decides the flow. */
static bool policy_state_ready(const struct policy *p, struct flow_control *fc)
{
	if (!p->flow_state || fc->policy)
		return true;
	fc->policy = calloc(1, sizeof(*fc->policy));
	return fc->policy != NULL;
}

bool controller_promote(struct controller *c, char *why, size_t why_len)
{
	if (!c->opt.shadow) {
		snprintf(why, why_len, "not in shadow mode");
		return false;
	}
	if (!shadow_gate(&c->shadow, why, why_len))
		return false;
	c->opt.shadow = false;
	for (struct flow_control *fc = flow_table_next(&c->flows, NULL); fc; fc = flow_table_next(&c->flows, fc))
		if (fc->cwnd.current > 0)
			decision_write(c, fc, (uint32_t)fc->cwnd.current, 0);
	controller_flush(c);
	return true;
}

bool controller_shadow_report(struct controller *c, const char *status_path)
{
	struct reflex_err err = { 0 };
	struct fileio_atomic out;
	char why[512];
	bool pass = shadow_gate(&c->shadow, why, sizeof(why));

	fprintf(stderr, "reflexd: shadow %s policy: %s: gate %s\n", controller_policy_name(c), why,
		pass ? "passes" : "fails");
	if (fileio_atomic_open(&out, status_path, 0600, &err)) {
		fprintf(stderr, "reflexd: %s\n", err.msg);
		return pass;
	}
	fprintf(out.f, "pid=%d\nshadow=%d\npolicy=%s\nevaluated=%llu\ndelta_p95=%.4f\noscillations_per_30s=%.3f\n"
		   "gate=%s\nwhy=%s\n",
		(int)getpid(), c->opt.shadow, controller_policy_name(c),
		(unsigned long long)c->shadow.evaluated, shadow_delta_p95(&c->shadow),
		shadow_oscillations_per_30s(&c->shadow), pass ? "pass" : "fail", why);
	if (fileio_atomic_commit(&out, &err))
		fprintf(stderr, "reflexd: %s\n", err.msg);
	return pass;
}

void controller_promote_by(struct controller *c, const char *by, const char *status_path)
{
	char why[512];

	if (!c->opt.shadow)
		return;
	if (!controller_promote(c, why, sizeof(why))) {
		fprintf(stderr, "reflexd: promotion (%s) refused: %s\n", by, why);
		controller_shadow_report(c, status_path);
		return;
	}
	fprintf(stderr, "reflexd: promoted (%s): decisions now act: %s\n", by, why);
	controller_shadow_report(c, status_path);
}

/* The policy's choice in packets: a BDP multiple applies to the max delivery rate of
 * the recent windows and the min RTT. */
static uint32_t choice_packets(const struct cwnd_choice *choice, const struct flow_control *fc,
			       const struct flow_entry *flow, const struct feature_window *w)
{
	if (choice->unit == CWND_PACKETS)
		return (uint32_t)choice->value;
	return cwnd_cap_packets(choice->value, rate_max(fc), w->context[CTX_MIN_RTT_US], flow->mss);
}

/* Milliseconds of the window clock: 32 bits in the per-flow state, compared by difference. */
static uint32_t window_ms(const struct feature_window *w)
{
	return (uint32_t)(w->ts_ns / 1000000);
}

/* Whether the window's median RTT shows a queue: over FULL_PIPE_RTT_RATIO x min RTT,
 * the one threshold for startup, cuts and the foreign-queue lift (controller.h). */
static bool window_shows_queue(const struct feature_window *w)
{
	double min_rtt_us = w->context[CTX_MIN_RTT_US];

	return min_rtt_us > 0 && w->feature[FEAT_LATENCY_P50] > FULL_PIPE_RTT_RATIO * min_rtt_us;
}

/* Whether a capped flow probes: with no queue at every hold, in the band between
 * that and a queue once PROBE_SLOW_GAP_MS passed without a change (controller.h). */
static bool probe_due(const struct flow_control *fc, const struct feature_window *w, double p50_us,
		      double min_rtt_us)
{
	if (p50_us < PROBE_RTT_RATIO * min_rtt_us)
		return true;
	return !window_shows_queue(w) && window_ms(w) - fc->cwnd.changed_ms >= PROBE_SLOW_GAP_MS;
}

/* The cap to offer: the policy's choice, or a probe upward while the flow is held at
 * its cap and no queue forms (controller.h, PROBE_RTT_RATIO). *measured says whether
 * the flow's own measurements call for it (hysteresis.h): a probe, or a cut while a
 * queue builds (median RTT over FULL_PIPE_RTT_RATIO x min RTT). */
static uint32_t proposal_packets(const struct cwnd_choice *choice, const struct flow_control *fc,
				 const struct flow_entry *flow, const struct feature_window *w, double fair_cap,
				 bool *measured, bool *evened)
{
	uint32_t chosen = choice_packets(choice, fc, flow, w);
	double cap = fc->cwnd.current, min_rtt_us = w->context[CTX_MIN_RTT_US];
	double p50_us = w->feature[FEAT_LATENCY_P50];
	uint32_t probe;

	/* The first cap starts no lower than the flow's cwnd: the pipe was just declared
	 * full, so that cwnd holds about the BDP, while the rates of its slow-start windows
	 * may be a fraction of the link's (on a jittery link the RTT signal fires early:
	 * the arena's 10 Mbit/s link and its 50 Mbit/s step began at 4-10 packets and
	 * took seconds of probes to climb). A queue, if there is one, cuts it next. A
	 * choice of no cap (0) stays no cap. */
	if (chosen > 0 && !(cap > 0) && w->context[CTX_SND_CWND] > chosen)
		chosen = (uint32_t)w->context[CTX_SND_CWND];
	*measured = chosen < cap && window_shows_queue(w);
	/* A flow held at its cap delivers cap / RTT, so a multiple of that rate x min RTT
	 * falls below the cap whenever the RTT is above the min for any reason: on a
	 * cellular link, jitter and outages. Cutting on that alone ratchets the cap down
	 * (the arena's LTE uplink: 12 -> 10 -> 8 -> 7 -> 5 -> 4 packets in 10 s); only
	 * a queue (the measured cut) takes a capped flow's cap down. */
	if (chosen < cap && !*measured && w->context[CTX_SND_CWND] + 1 >= cap)
		chosen = (uint32_t)cap;
	/* In a queue shared with others of reflexd's flows, the cut's factor applies to
	 * their mean cap (fair_share.h): a flow under it may not be cut at all, one over
	 * it is cut to it even where its own rate calls for no cut (with the rate of the
	 * last second most windows of a standing queue propose the cap in force, and four
	 * flows kept Jain's index at 0.84-0.94). */
	if (fair_cap > 0) {
		double factor = fmin(chosen, cap) / cap;
		double even = fmax(ceil(factor * fair_cap), BDP_MIN_CAP_PACKETS);

		if (even < cap) {
			chosen = (uint32_t)even;
			*measured = *evened = true;
		} else if (*measured) {
			chosen = (uint32_t)cap;
			*measured = false;
		}
	}
	if (choice->unit != CWND_BDP_MULTIPLE || !(choice->value > 0) || !(cap > 0) || !(min_rtt_us > 0) ||
	    !(p50_us > 0) || w->context[CTX_SND_CWND] + 1 < cap || !probe_due(fc, w, p50_us, min_rtt_us))
		return chosen;
	probe = cwnd_cap_packets(fmax(choice->value, HEURISTIC_BDP_GAIN) * p50_us / min_rtt_us, rate_max(fc),
				 min_rtt_us, flow->mss);
	probe = probe > (uint32_t)ceil(cap * PROBE_STEP) ? probe : (uint32_t)ceil(cap * PROBE_STEP);
	if (probe <= chosen)
		return chosen;
	*measured = true;
	return probe;
}

/* After a lift, with the returned cap in force and a queue in this window: whether
 * the queue outlasted the returned cap's cuts (controller.h, FOREIGN_RECHECK_MS), and
 * so the cap is lifted again for twice as long. */
static bool foreign_queue_stays(struct controller *c, struct flow_control *fc, const struct feature_window *w)
{
	uint32_t now_ms = window_ms(w), wait_ms;

	if (!(fc->foreign_return_p50_us > 0))
		fc->foreign_return_p50_us = (float)w->feature[FEAT_LATENCY_P50];
	wait_ms = (uint32_t)fmax(FOREIGN_RECHECK_MS, 3 * fc->foreign_return_p50_us / 1000);
	if (now_ms - fc->foreign_ms < wait_ms || fc->cwnd.last_direction >= 0 ||
	    (int32_t)(fc->cwnd.changed_ms - fc->foreign_ms) < 0)
		return false;
	fc->foreign = FOREIGN_LIFTED;
	fc->foreign_ms = now_ms;
	fc->foreign_lift_ms = fc->foreign_lift_ms * 2 < FOREIGN_LIFT_MAX_MS ? fc->foreign_lift_ms * 2
									 : FOREIGN_LIFT_MAX_MS;
	c->stats.foreign_relifts++;
	return true;
}

/* No queue to count against the cap: the next one starts the wait from nothing.
 * Returns false (no lift). */
static bool foreign_forget(struct flow_control *fc)
{
	fc->foreign = FOREIGN_NONE;
	fc->foreign_lift_ms = 0;
	return false;
}

/* Whether the flow's cap is lifted for a queue it did not make (controller.h,
 * FOREIGN_QUEUE_MS): a capped flow with a queue for that long. */
static bool foreign_queue_lifts(struct controller *c, struct flow_control *fc, uint32_t slot,
				const struct feature_window *w)
{
	uint32_t now_ms = window_ms(w);

	if (fc->foreign == FOREIGN_LIFTED) {
		if (now_ms - fc->foreign_ms < fc->foreign_lift_ms)
			return true;
		fc->foreign = FOREIGN_RETURNED;
		fc->foreign_ms = now_ms;
		fc->foreign_return_p50_us = 0;
		return false;
	}
	if (fc->foreign == FOREIGN_RETURNED && !(fc->cwnd.current > 0))
		return false; /* the returned cap is still held back (hysteresis) */
	if (!window_shows_queue(w))
		return foreign_forget(fc);
	/* Several of reflexd's flows through one bottleneck build a queue together (four
	 * reflex flows lifted their caps and cubic filled the buffer: p95 375 ms): a queue
	 * another of them saw within a second is not foreign, also when that one is not
	 * capped (the tree's "no cap": its queue is reflexd's own). */
	if (c->queue_slot != slot && now_ms - c->queue_ms < 1000) {
		c->queue_slot = slot;
		c->queue_ms = now_ms;
		fc->foreign = FOREIGN_NONE;
		return false;
	}
	c->queue_slot = slot;
	c->queue_ms = now_ms;
	if (!(fc->cwnd.current > 0))
		return foreign_forget(fc);
	if (fc->foreign == FOREIGN_RETURNED)
		return foreign_queue_stays(c, fc, w);
	if (fc->foreign == FOREIGN_NONE) {
		fc->foreign = FOREIGN_QUEUE;
		fc->foreign_ms = now_ms;
	}
	/* The time counts from the cap's first cut in this queue: a queue that several reflex
	 * flows build out of startup drains once they cut; one that outlasts the cut is not
	 * the cap's (four reflex flows lifted from the queue's start let cubic fill the
	 * buffer: p95 375 ms). */
	if (fc->foreign == FOREIGN_QUEUE) {
		if (fc->cwnd.last_direction >= 0 || (int32_t)(fc->cwnd.changed_ms - fc->foreign_ms) < 0)
			return false;
		fc->foreign = FOREIGN_CUT;
		fc->foreign_ms = fc->cwnd.changed_ms;
	}
	if (now_ms - fc->foreign_ms < FOREIGN_QUEUE_MS)
		return false;
	fc->foreign = FOREIGN_LIFTED;
	fc->foreign_ms = now_ms;
	fc->foreign_lift_ms = FOREIGN_LIFT_MS;
	c->stats.foreign_lifts++;
	return true;
}

/* Notes a capped flow's window with a queue (fair_share.h) and returns the mean cap
 * of the flows that share it: 0 if none does, or the window shows no queue. */
static double shared_queue_cap(struct controller *c, const struct flow_control *fc, const struct flow_entry *flow,
			       const struct feature_window *w)
{
	double min_rtt_us = w->context[CTX_MIN_RTT_US];

	if (!(fc->cwnd.current > 0) || !window_shows_queue(w))
		return 0;
	fair_share_note(&c->fair, min_rtt_us, fc->cwnd.current, flow->control_slot, window_ms(w));
	return fair_share_mean(&c->fair, min_rtt_us, flow->control_slot, window_ms(w));
}

/* Says why the heuristic decides a flow the tree would: its anomaly score. */
static void anomaly_explain(const struct flow_control *fc, double threshold, char *why, size_t size)
{
	char rest[1024];

	snprintf(rest, sizeof(rest), "%s", why);
	snprintf(why, size, "flow anomaly %.3f > %.3f: the heuristic decides; %s", fc->anomaly.score / (double)ANOMALY_SCALE,
		 threshold, rest);
}

void controller_on_flow_window(struct controller *c, struct flow_entry *flow, const struct feature_window *w)
{
	struct policy *p;
	struct cwnd_choice choice;
	struct flow_control *fc;
	char why[1024];
	double old_value;
	uint64_t reversals, held_back;
	uint32_t prev_reversed_ms;
	uint32_t proposal;
	bool changed, measured = false, evened = false, lifted, unmeasured;
	double fair_cap = 0;

	if (c->opt.policy == CWND_POLICY_OFF || !c->act->flows || flow->key.proto != IPPROTO_TCP ||
	    !flow->have_sock_totals)
		return;
	fc = flow_control_get(c, flow);
	if (!fc)
		return;
	why[0] = '\0';
	cwnd_health_observe(c, fc, flow, w);
	p = deciding_policy(c);
	if (p == &c->tree.base && flow_anomaly_handed(&fc->anomaly))
		p = &c->heuristic;
	fc->rate_bps[fc->rate_next++ % RATE_WINDOWS] = log16_pack(w->context[CTX_DELIVERY_RATE_BPS]);
	if (!full_pipe_update(fc, w->context[CTX_DELIVERY_RATE_BPS], w->feature[FEAT_LATENCY_P50],
			      w->context[CTX_MIN_RTT_US]) ||
	    !policy_state_ready(p, fc))
		return;
	old_value = fc->cwnd.current;
	reversals = fc->cwnd.reversals;
	held_back = fc->cwnd.reversals_refused;
	prev_reversed_ms = fc->cwnd.reversed_ms;
	/* A capped flow's window without an RTT measurement (a few packets behind a long
	 * queue get few ACKs) says nothing about the cap: offering the cap in force would
	 * reset a cut's or a probe's hold, and the foreign-queue timer, at every such
	 * window (the arena's flow against cubic was never lifted). A proposal pending
	 * from a measured window still stands: behind a 9 s queue (1 Mbit/s) a flow gets
	 * an RTT sample every few seconds, and a cut waiting for a second one 300 ms
	 * later never came. */
	unmeasured = fc->cwnd.current > 0 && !(w->feature[FEAT_LATENCY_P50] > 0);
	if (unmeasured) {
		lifted = false;
		measured = fc->cwnd.pending_measured;
		proposal = fc->cwnd.pending;
		changed = hysteresis_unmeasured(&fc->cwnd, &c->opt.hysteresis, w->ts_ns);
	} else {
		p->decide(p, fc->policy, flow, w, &choice, why, sizeof(why));
		lifted = foreign_queue_lifts(c, fc, flow->control_slot, w);
		fair_cap = shared_queue_cap(c, fc, flow, w);
		proposal = lifted ? 0 : proposal_packets(&choice, fc, flow, w, fair_cap, &measured, &evened);
		changed = hysteresis_offer(&fc->cwnd, &c->opt.hysteresis, proposal, w->ts_ns, measured);
	}
	c->shadow.reversals_held_back += fc->cwnd.reversals_refused - held_back;
	if (fc->cwnd.reversals != reversals)
		shadow_note_reversal(&c->shadow,
				     reversals ? (uint64_t)(uint32_t)(fc->cwnd.reversed_ms - prev_reversed_ms) * 1000000
					       : UINT64_MAX,
				     measured);
	if (fc->cwnd.current > 0 && !unmeasured)
		shadow_observe(c, fc, w, flow->mss);
	if (!changed)
		return;
	c->stats.decisions++;
	if (lifted && fc->foreign_lift_ms > FOREIGN_LIFT_MS)
		snprintf(why, sizeof(why), "the competing flow's queue stayed through the returned cap's cuts: "
			 "cap lifted again, for %u s", fc->foreign_lift_ms / 1000);
	else if (lifted)
		snprintf(why, sizeof(why), "a queue over %.1f x min RTT for %d s that the cap did not make "
			 "(a competing flow's): cap lifted for %d s", FULL_PIPE_RTT_RATIO,
			 FOREIGN_QUEUE_MS / 1000, FOREIGN_LIFT_MS / 1000);
	else if (unmeasured)
		snprintf(why, sizeof(why), "%s's proposal %u of the last measured window held %llu ms, no RTT "
			 "measurement since", p->name, proposal,
			 (unsigned long long)(c->opt.hysteresis.hold_ns / 1000000));
	else if (p->explain)
		p->explain(p, w, why, sizeof(why));
	if (evened) {
		size_t used = strlen(why);

		snprintf(why + used, sizeof(why) - used, "; in a queue shared with others of reflexd's flows: "
			 "the cut applied to their mean cap %.1f", fair_cap);
	}
	if (!lifted && flow_anomaly_handed(&fc->anomaly) && p == &c->heuristic)
		anomaly_explain(fc, c->opt.health.anomaly_threshold, why, sizeof(why));
	if (c->log) {
		char name[FLOW_NAME_MAX];

		log_decision(c, flow_key_format(&flow->key, name, sizeof(name)), "cwnd_target", old_value,
			     fc->cwnd.current, p->name, why, w->ts_ns);
	}
	if (!c->opt.shadow)
		decision_write(c, fc, (uint32_t)fc->cwnd.current, w->ts_ns);
}

void controller_flush(struct controller *c)
{
	if (c->act->flush)
		c->stats.map_errors += c->act->flush(c->act);
}

void controller_flow_gone(struct controller *c, struct flow_entry *flow)
{
	struct flow_control *fc;

	if (!flow->control_slot)
		return;
	fc = flow_table_at(&c->flows, flow->control_slot - 1);
	if (fc->decision_written)
		decision_write(c, fc, 0, 0);
	if (flow_anomaly_handed(&fc->anomaly))
		c->stats.anomaly_flows--;
	free(fc->policy);
	flow_table_remove(&c->flows, fc);
	flow->control_slot = 0;
}

/* A batching output in its knob's legal range: the model's bounds were checked at
 * load, and this holds the value to the range whatever the model computes. */
static uint32_t knob_value(const struct model *m, int output, int32_t value, double min, double max)
{
	double raw = model_value_raw(m, output, value);

	if (!(raw >= min))
		raw = min;
	if (raw > max)
		raw = max;
	return (uint32_t)lround(raw);
}

void controller_on_iface_window(struct controller *c, const struct feature_window *w)
{
	double raw[WINDOW_INPUTS];
	int32_t value[MODEL_MAX_OUTPUTS];
	struct reflex_config next;

	if (!c->batching_model)
		return;
	window_inputs(w, raw);
	/* Handed over, the batching knobs stay as they are. */
	if (!model_drift_observe(&c->batching_drift, c->batching_model, c->batching_map, raw, w->ts_ns, stderr))
		return;
	model_decide(c->batching_model, raw, c->batching_map, value);
	next = c->config;
	next.flush_threshold = knob_value(c->batching_model, c->flush_output, value[c->flush_output],
					  FLUSH_THRESHOLD_MIN, FLUSH_THRESHOLD_MAX);
	next.max_batch_delay_us = knob_value(c->batching_model, c->delay_output, value[c->delay_output],
					     MAX_BATCH_DELAY_US_MIN, MAX_BATCH_DELAY_US_MAX);
	if (next.flush_threshold == c->config.flush_threshold &&
	    next.max_batch_delay_us == c->config.max_batch_delay_us)
		return;
	if (next.flush_threshold != c->config.flush_threshold)
		log_decision(c, w->flow, "flush_threshold", c->config.flush_threshold, next.flush_threshold,
			     "batching-tree", "", w->ts_ns);
	if (next.max_batch_delay_us != c->config.max_batch_delay_us)
		log_decision(c, w->flow, "max_batch_delay_us", c->config.max_batch_delay_us, next.max_batch_delay_us,
			     "batching-tree", "", w->ts_ns);
	c->stats.batching_changes++;
	if (c->opt.shadow)
		return;
	if (c->act->configure(c->act, &next))
		c->stats.map_errors++;
	else
		c->config = next;
}
