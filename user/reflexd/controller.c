#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reflexd/controller.h"
#include "reflexd/loader.h"
#include "sockops.skel.h"
#include "reflexd/telemetry.h"

const char *const control_input_names[CONTROL_INPUTS] = {
	"queue_depth", "enqueue_rate", "dequeue_rate", "latency_p50", "latency_p95",
	"bytes_in_per_sec", "bytes_out_per_sec", "packet_size_mean", "packet_size_var", "rtt_ewma",
	"srtt_us", "min_rtt_us", "snd_cwnd", "delivery_rate_bps", "retrans", "backlog_packets",
	"drops", "records",
};

#define DEFAULT_MSS 1448
/* The controller is the learner's one reader (the decision loop's thread). */
#define LEARN_READER 0

static void window_inputs(const struct feature_window *w, double *raw)
{
	memcpy(raw, w->feature, sizeof(w->feature));
	memcpy(raw + FEATURE_COUNT, w->context, sizeof(w->context));
}

static int output_index(const struct model *m, const char *name)
{
	for (unsigned i = 0; i < m->output_count; i++)
		if (!strcmp(m->outputs[i].name, name))
			return (int)i;
	return -1;
}

/* Loads and checks one model; on any failure *slot is left as it was. */
static int model_take(const char *role, const char *path, enum model_kind kind, const char *const *inputs,
		      size_t input_count, const char *const *outputs, size_t output_count, struct model **slot,
		      int *map)
{
	struct model_error err = { "", -1 };
	struct model *fresh = NULL;
	int fresh_map[MODEL_MAX_FEATURES];

	if (model_load_file(path, 0, &fresh, &err)) {
		fprintf(stderr, "reflexd: %s model %s refused: %s\n", role, path, err.msg);
		return -1;
	}
	if (fresh->kind != kind) {
		fprintf(stderr, "reflexd: %s model %s refused: it is an %s model, an %s model is needed\n", role,
			path, model_kind_name(fresh->kind), model_kind_name(kind));
		goto refuse;
	}
	for (size_t i = 0; i < output_count; i++)
		if (output_index(fresh, outputs[i]) < 0) {
			fprintf(stderr, "reflexd: %s model %s refused: it has no output '%s'\n", role, path, outputs[i]);
			goto refuse;
		}
	if (model_map_features(fresh, inputs, input_count, fresh_map, &err)) {
		fprintf(stderr, "reflexd: %s model %s refused: %s\n", role, path, err.msg);
		goto refuse;
	}
	model_free(*slot);
	*slot = fresh;
	memcpy(map, fresh_map, sizeof(fresh_map));
	fprintf(stderr, "reflexd: %s model %s loaded\n", role, path);
	return 0;
refuse:
	model_free(fresh);
	return -1;
}

static void models_load(struct controller *c)
{
	static const char *const cwnd_outputs[] = { "cwnd_bdp_multiple" };
	static const char *const batching_outputs[] = { "flush_threshold", "max_batch_delay_us" };
	const char *dqn_inputs[DQN_FEATURES];

	for (int i = 0; i < DQN_FEATURES; i++)
		dqn_inputs[i] = dqn_features[i].name;
	if (c->opt.cwnd_model_path &&
	    model_take("cwnd", c->opt.cwnd_model_path, MODEL_KIND_TREES, control_input_names, CONTROL_INPUTS,
		       cwnd_outputs, 1, &c->cwnd_model, c->cwnd_map) == 0)
		c->cwnd_output = output_index(c->cwnd_model, "cwnd_bdp_multiple");
	if (c->opt.dqn_model_path)
		model_take("dqn", c->opt.dqn_model_path, MODEL_KIND_MLP, dqn_inputs, DQN_FEATURES, dqn_action_names,
			   DQN_ACTIONS, &c->dqn_model, c->dqn_map);
	if (c->opt.batching_model_path &&
	    model_take("batching", c->opt.batching_model_path, MODEL_KIND_TREES, control_input_names,
		       CONTROL_INPUTS, batching_outputs, 2, &c->batching_model, c->batching_map) == 0) {
		c->flush_output = output_index(c->batching_model, "flush_threshold");
		c->delay_output = output_index(c->batching_model, "max_batch_delay_us");
	}
}

/* A learner for the loaded dqn model; without one (or if it cannot start) the
 * loaded model decides unchanged. */
static void learner_start(struct controller *c, bool announce)
{
	struct dqn_learn_opts o;
	char err[256] = "";

	if (!c->opt.learn || c->opt.policy != CWND_POLICY_DQN)
		return;
	if (!c->dqn_model) {
		fprintf(stderr, "reflexd: --learn: no dqn model: nothing to fine-tune\n");
		return;
	}
	dqn_learn_opts_default(&o);
	if (dqn_learn_new(c->dqn_model, &o, &c->learner, err, sizeof(err)) ||
	    dqn_learn_start(c->learner, err, sizeof(err))) {
		fprintf(stderr, "reflexd: --learn: %s: %s: the model decides without learning\n",
			c->opt.dqn_model_path, err);
		dqn_learn_free(c->learner);
		c->learner = NULL;
		return;
	}
	c->learn_generation = 0;
	c->learn_epoch++;
	learn_guard_restart(&c->guard);
	if (announce)
		fprintf(stderr, "reflexd: learning on-line from dqn model %s (Adam lr %g, a new int8 model every %u "
			"updates; %.0f %% of decisions by the loaded model as a canary)\n", c->opt.dqn_model_path,
			o.lr, o.publish_every, c->guard.opts.canary_share * 100);
}

/* --learn-out is written at exit (temp file and rename in its directory): find out
 * now, not after the learning, that it cannot be. */
static int learn_out_check(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (access(dir, W_OK | X_OK) == 0)
		return 0;
	fprintf(stderr, "reflexd: --learn-out %s: cannot write in %s: %s\n", path, dir, strerror(errno));
	return -1;
}

/* Stops the learner and keeps its counts in learn_done. */
static void learner_stop(struct controller *c)
{
	struct dqn_learn_stats st;

	if (!c->learner)
		return;
	dqn_learn_stop(c->learner);
	dqn_learn_stats(c->learner, &st);
	c->learn_done.queued += st.queued;
	c->learn_done.dropped += st.dropped;
	c->learn_done.processed += st.processed;
	c->learn_done.updates += st.updates;
	c->learn_done.generation += st.generation;
	c->learn_done.publish_errors += st.publish_errors;
}

static void learner_free(struct controller *c)
{
	dqn_learn_free(c->learner);
	c->learner = NULL;
}

/* What the learn guard compared, at exit. */
static void guard_report(const struct controller *c)
{
	const struct learn_guard *g = &c->guard;

	if (!g->checks) {
		fprintf(stderr, "reflexd: learn: guard: no comparison yet (%llu canary decisions; one needs %u "
			"fine-tuned and %u loaded-model rewards)\n", (unsigned long long)c->canary_decisions,
			g->opts.block, g->opts.min_loaded);
		return;
	}
	fprintf(stderr, "reflexd: learn: guard: %llu canary decisions, %llu comparisons, %llu rollbacks; last: "
		"mean reward fine-tuned %.3f over %llu decisions, loaded %.3f over %llu (a rollback needs a gap "
		"over %.3f)\n", (unsigned long long)c->canary_decisions, (unsigned long long)g->checks,
		(unsigned long long)g->rollbacks, g->last_tuned_mean, (unsigned long long)g->last_tuned_n,
		g->last_loaded_mean, (unsigned long long)g->last_loaded_n, g->last_threshold);
}

/* The guard found the fine-tuned models worse than the loaded one: learning starts
 * again from the loaded model, which decides until the new learner publishes. */
static void learner_rollback(struct controller *c)
{
	const struct learn_guard *g = &c->guard;

	fprintf(stderr, "reflexd: learn: rollback: fine-tuned model %llu's mean reward %.3f over %llu decisions is "
		"%.3f below the loaded model's %.3f over %llu (threshold %.3f): learning starts again from %s\n",
		(unsigned long long)c->learn_generation, g->last_tuned_mean, (unsigned long long)g->last_tuned_n,
		g->last_loaded_mean - g->last_tuned_mean, g->last_loaded_mean, (unsigned long long)g->last_loaded_n,
		g->last_threshold, c->opt.dqn_model_path);
	learner_stop(c);
	learner_free(c);
	learner_start(c, false);
}

/* At exit: what the learner did, and its last model to learn_out_path. */
static void learner_finish(struct controller *c)
{
	const struct dqn_learn_stats *t = &c->learn_done;
	struct dqn_learn_stats last;
	char err[512];

	if (!c->learner)
		return;
	learner_stop(c);
	dqn_learn_stats(c->learner, &last);
	fprintf(stderr, "reflexd: learn: %llu transitions queued, %llu dropped, %llu learned from, %llu updates, "
		"%llu models published, %llu quantizations failed\n", (unsigned long long)t->queued,
		(unsigned long long)t->dropped, (unsigned long long)t->processed, (unsigned long long)t->updates,
		(unsigned long long)t->generation, (unsigned long long)t->publish_errors);
	guard_report(c);
	if (c->opt.learn_out_path) {
		if (dqn_learn_write(c->learner, LEARN_READER, c->opt.learn_out_path, err, sizeof(err)))
			fprintf(stderr, "reflexd: learn: cannot write the fine-tuned model: %s\n", err);
		else if (last.generation)
			fprintf(stderr, "reflexd: learn: wrote the fine-tuned model (generation %llu) to %s\n",
				(unsigned long long)last.generation, c->opt.learn_out_path);
		else
			fprintf(stderr, "reflexd: learn: no model was published yet: wrote the loaded model, "
				"unchanged, to %s\n", c->opt.learn_out_path);
	}
	learner_free(c);
}

int controller_init(struct controller *c, const struct controller_opts *opt, struct reflex_bpf *bpf,
		    const struct reflex_config *config)
{
	struct learn_guard_opts guard_opts;
	memset(c, 0, sizeof(*c));
	c->opt = *opt;
	c->bpf = bpf;
	c->config = *config;
	if (opt->decision_log_path) {
		c->log = fopen(opt->decision_log_path, "a");
		if (!c->log) {
			fprintf(stderr, "reflexd: cannot open decision log %s: %s\n", opt->decision_log_path,
				strerror(errno));
			return -1;
		}
		setvbuf(c->log, NULL, _IOLBF, 0);
	}
	if (opt->learn_out_path && learn_out_check(opt->learn_out_path))
		return -1;
	models_load(c);
	c->rng = 0x9E3779B97F4A7C15ULL;
	learn_guard_opts_default(&guard_opts);
	learn_guard_init(&c->guard, &guard_opts);
	if ((c->opt.policy == CWND_POLICY_TREE && !c->cwnd_model) || (c->opt.policy == CWND_POLICY_DQN && !c->dqn_model))
		fprintf(stderr, "reflexd: no %s model: the heuristic (%.2f x BDP) decides\n",
			c->opt.policy == CWND_POLICY_DQN ? "dqn" : "cwnd", HEURISTIC_BDP_GAIN);
	if (c->opt.batching_model_path && !c->batching_model)
		fprintf(stderr, "reflexd: no batching model: flush_threshold %u, max_batch_delay_us %u stay\n",
			c->config.flush_threshold, c->config.max_batch_delay_us);
	if (c->opt.shadow)
		fprintf(stderr, "reflexd: shadow mode: decisions are logged, nothing is enforced\n");
	learner_start(c, true);
	return 0;
}

void controller_free(struct controller *c)
{
	learner_finish(c);
	model_free(c->cwnd_model);
	model_free(c->batching_model);
	model_free(c->dqn_model);
	if (c->log)
		fclose(c->log);
	memset(c, 0, sizeof(*c));
}

/* Whether the dqn file now loaded differs from the one loaded before. */
static bool dqn_model_changed(const struct controller *c, uint32_t crc_before, size_t size_before)
{
	return c->dqn_model->crc_computed != crc_before || c->dqn_model->file_size != size_before;
}

void controller_reload(struct controller *c)
{
	uint32_t crc_before = c->dqn_model ? c->dqn_model->crc_computed : 0;
	size_t size_before = c->dqn_model ? c->dqn_model->file_size : 0;

	fprintf(stderr, "reflexd: reloading models\n");
	models_load(c);
	/* A SIGHUP for another model reloads an unchanged dqn file: learning goes on. */
	if (!c->opt.learn || !c->dqn_model || !dqn_model_changed(c, crc_before, size_before))
		return;
	if (c->learner) {
		fprintf(stderr, "reflexd: learn: the dqn model was replaced: learning starts again from it\n");
		learner_stop(c);
		learner_free(c);
	}
	learner_start(c, true);
}

void controller_heartbeat(struct controller *c, uint64_t now_ns)
{
	__u32 zero = 0;
	__u64 beat = now_ns;

	if (!c->bpf->sockops || c->opt.policy == CWND_POLICY_OFF)
		return;
	if (bpf_map__update_elem(c->bpf->sockops->maps.heartbeat, &zero, sizeof(zero), &beat, sizeof(beat), BPF_ANY))
		c->stats.map_errors++;
}

uint32_t cwnd_cap_packets(double multiple, double rate_bps, double min_rtt_us, uint32_t mss)
{
	double packets;

	if (!(multiple > 0) || !(rate_bps > 0) || !(min_rtt_us > 0))
		return 0;
	packets = multiple * (rate_bps / 8.0) * (fmax(min_rtt_us, CWND_RTT_FLOOR_US) / 1e6) / (mss ? mss : DEFAULT_MSS);
	if (packets < CWND_MIN_CLAMP)
		return CWND_MIN_CLAMP;
	return packets > 1e6 ? 1000000 : (uint32_t)ceil(packets);
}

bool full_pipe_update(struct flow_control *fc, double rate_bps, double rtt_p50_us, double min_rtt_us)
{
	if (fc->pipe_full)
		return true;
	if (rate_bps > 0 && min_rtt_us > 0 && rtt_p50_us > FULL_PIPE_RTT_RATIO * min_rtt_us) {
		fc->pipe_full = true;
	} else if (rate_bps >= fc->full_pipe_rate * FULL_PIPE_GROWTH && rate_bps > 0) {
		fc->full_pipe_rate = rate_bps;
		fc->full_pipe_count = 0;
	} else if (++fc->full_pipe_count >= FULL_PIPE_WINDOWS) {
		fc->pipe_full = true;
	}
	return fc->pipe_full;
}

static double rate_max(const struct flow_control *fc)
{
	double best = 0;

	for (unsigned i = 0; i < RATE_WINDOWS; i++)
		best = fmax(best, fc->rate_bps[i]);
	return best;
}

/* A policy whose model did not load falls back to the heuristic. */
static bool tree_decides(const struct controller *c)
{
	return c->opt.policy == CWND_POLICY_TREE && c->cwnd_model;
}

static bool dqn_decides(const struct controller *c)
{
	return c->opt.policy == CWND_POLICY_DQN && c->dqn_model;
}

const char *controller_policy_name(const struct controller *c)
{
	if (dqn_decides(c))
		return "dqn";
	return tree_decides(c) ? "cwnd-tree" : "heuristic";
}

static uint64_t rng_next(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* With --learn: the transition this decision completes, to the learner (dropped,
 * not waited for, when its queue is full). */
static void learn_push(struct controller *c, struct flow_control *fc, const double *state, double reward)
{
	struct dqn_transition t;

	if (!fc->dqn_decided)
		return;
	memcpy(t.state, fc->dqn_last_state, sizeof(t.state));
	memcpy(t.next_state, state, sizeof(t.next_state));
	t.reward = reward;
	t.action = fc->dqn_last_action;
	dqn_learn_push(c->learner, &t);
}

/* The reward of the interval after this flow's last decision, to the guard, credited
 * to the model that made it (not a random one, nor one of an earlier learner). */
static void guard_credit(struct controller *c, const struct flow_control *fc, double reward)
{
	if (!fc->dqn_decided || fc->dqn_last_arm == LEARN_ARM_NONE || fc->dqn_last_epoch != c->learn_epoch)
		return;
	if (learn_guard_observe(&c->guard, fc->dqn_last_arm == LEARN_ARM_TUNED, reward) == LEARN_GUARD_ROLLBACK)
		learner_rollback(c);
}

/* The int8 DQN's greedy action: the learner's latest model, or the loaded one (no
 * learner, none published yet, or a canary decision); *arm says which. The learner's
 * models have the loaded model's features in the same order, so dqn_map serves both. */
static enum dqn_action dqn_greedy_int8(struct controller *c, const double *raw, enum learn_arm_id *arm)
{
	const struct dqn_learn_model *pub = NULL;
	const struct model *m = c->dqn_model;
	enum dqn_action action;

	*arm = LEARN_ARM_NONE;
	if (c->learner) {
		pub = dqn_learn_acquire(c->learner, LEARN_READER);
		if (pub->generation > 0 && c->learn_generation == 0)
			fprintf(stderr, "reflexd: learn: the first fine-tuned model decides (generation %llu, "
				"%llu updates)\n", (unsigned long long)pub->generation, (unsigned long long)pub->updates);
		c->learn_generation = pub->generation;
		if (pub->generation > 0) {
			*arm = learn_guard_canary(&c->guard, (rng_next(&c->rng) >> 11) * 0x1.0p-53) ? LEARN_ARM_LOADED
												   : LEARN_ARM_TUNED;
			c->canary_decisions += *arm == LEARN_ARM_LOADED;
		}
		if (*arm != LEARN_ARM_LOADED)
			m = pub->model;
	}
	action = dqn_int8_action(m, raw, c->dqn_map);
	if (pub)
		dqn_learn_release(c->learner, LEARN_READER);
	return action;
}

/*
 * The DQN's cwnd for this flow: its telemetry as the trainer's dqn_interval (the
 * window's 200 ms), the int8 MLP's argmax (or, with probability explore, a random
 * action), applied to the cwnd it steers. A host sees no bottleneck buffer limit, so
 * buffer_occupancy is the queueing delay (srtt - min RTT) over the largest seen.
 */
static double dqn_cwnd(struct controller *c, struct flow_entry *flow, const struct feature_window *w, char *why,
		       size_t why_len)
{
	struct flow_control *fc = &flow->ctl;
	double seconds = WINDOW_LEN_NS / 1e9, queue_delay, raw[DQN_FEATURES], reward;
	struct dqn_interval iv = { 0 };
	enum dqn_action action;
	enum learn_arm_id arm;
	bool explored = false;
	char model_note[48] = "";

	if (fc->dqn_last_ns && w->ts_ns - fc->dqn_last_ns < dqn_decision_interval_us(w->context[CTX_MIN_RTT_US]) * 1000ULL)
		return fc->dqn_cwnd;
	fc->dqn_last_ns = w->ts_ns;
	queue_delay = fmax(0, w->context[CTX_SRTT_US] - w->context[CTX_MIN_RTT_US]);
	fc->max_queue_delay_us = fmax(fc->max_queue_delay_us, queue_delay);
	iv.interval_us = seconds * 1e6;
	iv.delivered_bytes = w->context[CTX_DELIVERY_RATE_BPS] * seconds / 8;
	iv.delivered_pkts = w->feature[FEAT_DEQUEUE_RATE] * seconds;
	iv.retrans_pkts = w->context[CTX_RETRANS];
	iv.srtt_us = w->context[CTX_SRTT_US];
	iv.rttvar_us = flow->mdev_us;
	iv.min_rtt_us = w->context[CTX_MIN_RTT_US];
	iv.inflight_pkts = flow->packets_out;
	iv.cwnd_pkts = w->context[CTX_SND_CWND];
	iv.mss = flow->mss ? flow->mss : DEFAULT_MSS;
	iv.buffer_occupancy = fc->max_queue_delay_us > 0 ? queue_delay / fc->max_queue_delay_us : 0;
	dqn_flow_observe(&fc->dqn, &iv, raw, &reward);
	if (c->learner) {
		learn_push(c, fc, raw, reward);
		guard_credit(c, fc, reward);
	}
	action = dqn_greedy_int8(c, raw, &arm);
	if (c->opt.explore > 0 && (rng_next(&c->rng) >> 11) * 0x1.0p-53 < c->opt.explore) {
		action = (enum dqn_action)(rng_next(&c->rng) % DQN_ACTIONS);
		explored = true;
	}
	if (c->learner) {
		memcpy(fc->dqn_last_state, raw, sizeof(fc->dqn_last_state));
		fc->dqn_last_action = (uint8_t)action;
		fc->dqn_decided = true;
		fc->dqn_last_arm = explored ? LEARN_ARM_NONE : (uint8_t)arm;
		fc->dqn_last_epoch = c->learn_epoch;
		if (arm == LEARN_ARM_LOADED)
			snprintf(model_note, sizeof(model_note), " (loaded model, canary)");
		else
			snprintf(model_note, sizeof(model_note), " (on-line model %llu)",
				 (unsigned long long)c->learn_generation);
	}
	if (!fc->dqn_cwnd)
		fc->dqn_cwnd = w->context[CTX_SND_CWND] > 0 ? w->context[CTX_SND_CWND] : DQN_INIT_CWND;
	fc->dqn_cwnd = dqn_apply_action(action, (uint32_t)fc->dqn_cwnd);
	snprintf(why, why_len, "dqn%s: %s%s -> cwnd %.0f (srtt %.0f us, min_rtt %.0f us, %.1f Mbit/s)", model_note,
		 dqn_action_names[action], explored ? " (exploring)" : "", fc->dqn_cwnd, iv.srtt_us, iv.min_rtt_us,
		 w->context[CTX_DELIVERY_RATE_BPS] / 1e6);
	return fc->dqn_cwnd;
}

/* The BDP multiple the policy wants for this window; q keeps the tree's quantized
 * inputs for cwnd_explain, which runs only when a decision changes. */
static double cwnd_multiple(struct controller *c, const struct feature_window *w, int16_t *q)
{
	double raw[CONTROL_INPUTS];
	int32_t value[MODEL_MAX_OUTPUTS];

	if (!tree_decides(c))
		return HEURISTIC_BDP_GAIN;
	window_inputs(w, raw);
	model_quantize(c->cwnd_model, raw, c->cwnd_map, q);
	model_eval(c->cwnd_model, q, value);
	return model_value_raw(c->cwnd_model, c->cwnd_output, value[c->cwnd_output]);
}

/* Why cwnd_multiple decided as it did, on one log line. */
static void cwnd_explain(struct controller *c, const struct feature_window *w, const int16_t *q, char *why,
			 size_t why_len)
{
	double raw[CONTROL_INPUTS], model_raw[MODEL_MAX_FEATURES];
	struct model_explain ex;

	if (!tree_decides(c)) {
		snprintf(why, why_len, "heuristic: %.2f x max delivery rate x min_rtt", HEURISTIC_BDP_GAIN);
		return;
	}
	why[0] = '\0';
	if (model_explain_tree(c->cwnd_model, c->cwnd_output, q, &ex))
		return;
	window_inputs(w, raw);
	for (unsigned i = 0; i < c->cwnd_model->feature_count; i++)
		model_raw[i] = raw[c->cwnd_map[i]];
	model_explain_format(c->cwnd_model, c->cwnd_output, &ex, model_raw, why, why_len);
	/* The formatter's lines become ";"-separated steps; quotes would break the JSON. */
	for (char *p = why; *p; p++)
		if (*p == '\n' || *p == '"' || *p == '\\')
			*p = *p == '\n' ? ';' : '\'';
}

static void log_decision(struct controller *c, const char *flow, const char *knob, double old_value,
			 double new_value, const char *model, const char *why, uint64_t ts_ns)
{
	if (!c->log)
		return;
	fprintf(c->log,
		"{\"ts_ns\": %llu, \"flow\": \"%s\", \"knob\": \"%s\", \"old\": %.0f, \"new\": %.0f, "
		"\"model\": \"%s\", \"acted\": %s, \"explain\": \"%s\"}\n",
		(unsigned long long)ts_ns, flow, knob, old_value, new_value, model, c->opt.shadow ? "false" : "true",
		why);
}

static void decision_write(struct controller *c, struct flow_entry *flow, uint32_t clamp, uint64_t ts_ns)
{
	struct bpf_map *map = c->bpf->sockops->maps.cwnd_decisions;
	struct cwnd_decision d = { .cwnd_target = clamp, .decided_ns = ts_ns };
	int ret;

	if (clamp)
		ret = bpf_map__update_elem(map, &flow->key, sizeof(flow->key), &d, sizeof(d), BPF_ANY);
	else
		ret = bpf_map__delete_elem(map, &flow->key, sizeof(flow->key), 0);
	if (ret && !(ret == -ENOENT && !clamp))
		c->stats.map_errors++;
	flow->ctl.decision_written = clamp != 0;
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

void controller_enforce_current(struct controller *c, struct flow_entry *flow)
{
	if (flow->ctl.cwnd.current > 0 && c->bpf->sockops)
		decision_write(c, flow, (uint32_t)flow->ctl.cwnd.current, 0);
}

void controller_on_flow_window(struct controller *c, struct flow_entry *flow, const struct feature_window *w)
{
	struct flow_control *fc = &flow->ctl;
	int16_t q[MODEL_MAX_FEATURES];
	char why[1024];
	double multiple, old_value;
	uint64_t reversals, held_back, prev_reversal_ns;
	uint32_t cap;
	bool changed;

	if (c->opt.policy == CWND_POLICY_OFF || !c->bpf->sockops || flow->key.proto != IPPROTO_TCP ||
	    !flow->have_sock_totals)
		return;
	fc->rate_bps[fc->rate_next++ % RATE_WINDOWS] = w->context[CTX_DELIVERY_RATE_BPS];
	if (!full_pipe_update(fc, w->context[CTX_DELIVERY_RATE_BPS], w->feature[FEAT_LATENCY_P50],
			      w->context[CTX_MIN_RTT_US]))
		return;
	if (dqn_decides(c)) {
		cap = (uint32_t)dqn_cwnd(c, flow, w, why, sizeof(why));
	} else {
		multiple = cwnd_multiple(c, w, q);
		cap = cwnd_cap_packets(multiple, rate_max(fc), w->context[CTX_MIN_RTT_US], flow->mss);
	}
	old_value = fc->cwnd.current;
	reversals = fc->cwnd.reversals;
	held_back = fc->cwnd.reversals_refused;
	prev_reversal_ns = fc->cwnd.last_reversal_ns;
	changed = hysteresis_offer(&fc->cwnd, &c->opt.hysteresis, cap, w->ts_ns);
	c->shadow.reversals_held_back += fc->cwnd.reversals_refused - held_back;
	if (fc->cwnd.reversals != reversals)
		shadow_note_reversal(&c->shadow, prev_reversal_ns, w->ts_ns);
	if (fc->cwnd.current > 0)
		shadow_observe(c, fc, w, flow->mss);
	if (!changed)
		return;
	c->stats.decisions++;
	if (!dqn_decides(c))
		cwnd_explain(c, w, q, why, sizeof(why));
	log_decision(c, flow->name, "cwnd_target", old_value, fc->cwnd.current, controller_policy_name(c), why, w->ts_ns);
	if (!c->opt.shadow)
		decision_write(c, flow, (uint32_t)fc->cwnd.current, w->ts_ns);
}

void controller_flow_gone(struct controller *c, struct flow_entry *flow)
{
	if (flow->ctl.decision_written && c->bpf->sockops)
		decision_write(c, flow, 0, 0);
}

void controller_on_iface_window(struct controller *c, const struct feature_window *w)
{
	double raw[CONTROL_INPUTS];
	int16_t q[MODEL_MAX_FEATURES];
	int32_t value[MODEL_MAX_OUTPUTS];
	struct reflex_config next;

	if (!c->batching_model)
		return;
	window_inputs(w, raw);
	model_quantize(c->batching_model, raw, c->batching_map, q);
	model_eval(c->batching_model, q, value);
	next = c->config;
	next.flush_threshold = (uint32_t)lround(model_value_raw(c->batching_model, c->flush_output,
								value[c->flush_output]));
	next.max_batch_delay_us = (uint32_t)lround(model_value_raw(c->batching_model, c->delay_output,
								   value[c->delay_output]));
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
	if (loader_config_update(c->bpf, &next))
		c->stats.map_errors++;
	else
		c->config = next;
}
