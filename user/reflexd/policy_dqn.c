/* The DQN policy: the int8 MLP's greedy action on a flow's telemetry, applied to the
 * cwnd it steers, and with --learn an on-line learner guarded by a canary. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reflexd/policy.h"

#define DEFAULT_MSS 1448
/* The policy is the learner's one reader (the decision loop's thread). */
#define LEARN_READER 0

#define DQN(p) ((struct dqn_cwnd_policy *)(p))

static void model_load(struct dqn_cwnd_policy *d)
{
	struct policy_output outputs[DQN_ACTIONS];
	const char *inputs[DQN_FEATURES];

	if (!d->opt.model_path)
		return;
	for (int i = 0; i < DQN_FEATURES; i++)
		inputs[i] = dqn_features[i].name;
	for (int i = 0; i < DQN_ACTIONS; i++)
		outputs[i] = (struct policy_output){ dqn_action_names[i], -INFINITY, INFINITY };
	policy_model_load("dqn", d->opt.model_path, MODEL_KIND_MLP, inputs, DQN_FEATURES, outputs, DQN_ACTIONS,
			  &d->model, d->map);
}

/* A learner for the loaded model; without one (or if it cannot start) the loaded
 * model decides unchanged. */
static void learner_start(struct dqn_cwnd_policy *d, bool announce)
{
	struct dqn_learn_opts o;
	struct reflex_err err = { 0 };

	if (!d->opt.learn)
		return;
	if (!d->model) {
		fprintf(stderr, "reflexd: --learn: no dqn model: nothing to fine-tune\n");
		return;
	}
	dqn_learn_opts_default(&o);
	if (dqn_learn_new(d->model, &o, &d->learner, &err) ||
	    dqn_learn_start(d->learner, &err)) {
		fprintf(stderr, "reflexd: --learn: %s: %s: the model decides without learning\n", d->opt.model_path,
			err.msg);
		dqn_learn_free(d->learner);
		d->learner = NULL;
		return;
	}
	d->learn_generation = 0;
	d->learn_epoch++;
	learn_guard_restart(&d->guard);
	if (announce)
		fprintf(stderr, "reflexd: learning on-line from dqn model %s (Adam lr %g, a new int8 model every %u "
			"updates; %.0f %% of decisions by the loaded model as a canary)\n", d->opt.model_path,
			o.lr, o.publish_every, d->guard.opts.canary_share * 100);
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
static void learner_stop(struct dqn_cwnd_policy *d)
{
	struct dqn_learn_stats st;

	if (!d->learner)
		return;
	dqn_learn_stop(d->learner);
	dqn_learn_stats(d->learner, &st);
	d->learn_done.queued += st.queued;
	d->learn_done.dropped += st.dropped;
	d->learn_done.processed += st.processed;
	d->learn_done.updates += st.updates;
	d->learn_done.generation += st.generation;
	d->learn_done.publish_errors += st.publish_errors;
}

static void learner_free(struct dqn_cwnd_policy *d)
{
	dqn_learn_free(d->learner);
	d->learner = NULL;
}

/* What the learn guard compared, at exit. */
static void guard_report(const struct dqn_cwnd_policy *d)
{
	const struct learn_guard *g = &d->guard;

	if (!g->checks) {
		fprintf(stderr, "reflexd: learn: guard: no comparison yet (%llu canary decisions; one needs %u "
			"fine-tuned and %u loaded-model rewards)\n", (unsigned long long)d->canary_decisions,
			g->opts.block, g->opts.min_loaded);
		return;
	}
	fprintf(stderr, "reflexd: learn: guard: %llu canary decisions, %llu comparisons, %llu rollbacks; last: "
		"mean reward fine-tuned %.3f over %llu decisions, loaded %.3f over %llu (a rollback needs a gap "
		"over %.3f)\n", (unsigned long long)d->canary_decisions, (unsigned long long)g->checks,
		(unsigned long long)g->rollbacks, g->last_tuned_mean, (unsigned long long)g->last_tuned_n,
		g->last_loaded_mean, (unsigned long long)g->last_loaded_n, g->last_threshold);
}

/* The guard found the fine-tuned models worse than the loaded one: learning starts
 * again from the loaded model, which decides until the new learner publishes. */
static void learner_rollback(struct dqn_cwnd_policy *d)
{
	const struct learn_guard *g = &d->guard;

	fprintf(stderr, "reflexd: learn: rollback: fine-tuned model %llu's mean reward %.3f over %llu decisions is "
		"%.3f below the loaded model's %.3f over %llu (threshold %.3f): learning starts again from %s\n",
		(unsigned long long)d->learn_generation, g->last_tuned_mean, (unsigned long long)g->last_tuned_n,
		g->last_loaded_mean - g->last_tuned_mean, g->last_loaded_mean, (unsigned long long)g->last_loaded_n,
		g->last_threshold, d->opt.model_path);
	learner_stop(d);
	learner_free(d);
	learner_start(d, false);
}

/* At exit: what the learner did, and its last model to learn_out_path. */
static void learner_finish(struct dqn_cwnd_policy *d)
{
	const struct dqn_learn_stats *t = &d->learn_done;
	struct dqn_learn_stats last;
	struct reflex_err err = { 0 };

	if (!d->learner)
		return;
	learner_stop(d);
	dqn_learn_stats(d->learner, &last);
	fprintf(stderr, "reflexd: learn: %llu transitions queued, %llu dropped, %llu learned from, %llu updates, "
		"%llu models published, %llu quantizations failed\n", (unsigned long long)t->queued,
		(unsigned long long)t->dropped, (unsigned long long)t->processed, (unsigned long long)t->updates,
		(unsigned long long)t->generation, (unsigned long long)t->publish_errors);
	guard_report(d);
	if (d->opt.learn_out_path) {
		if (dqn_learn_write(d->learner, LEARN_READER, d->opt.learn_out_path, &err))
			fprintf(stderr, "reflexd: learn: cannot write the fine-tuned model: %s\n", err.msg);
		else if (last.generation)
			fprintf(stderr, "reflexd: learn: wrote the fine-tuned model (generation %llu) to %s\n",
				(unsigned long long)last.generation, d->opt.learn_out_path);
		else
			fprintf(stderr, "reflexd: learn: no model was published yet: wrote the loaded model, "
				"unchanged, to %s\n", d->opt.learn_out_path);
	}
	learner_free(d);
}

/* With --learn: the transition this decision completes, to the learner (dropped,
 * not waited for, when its queue is full). */
static void learn_push(struct dqn_cwnd_policy *d, const struct policy_flow *pf, const double *state, double reward)
{
	struct dqn_transition t;

	if (!pf->dqn_decided)
		return;
	memcpy(t.state, pf->dqn_last_state, sizeof(t.state));
	memcpy(t.next_state, state, sizeof(t.next_state));
	t.reward = reward;
	t.action = pf->dqn_last_action;
	dqn_learn_push(d->learner, &t);
}

/* The reward of the interval after this flow's last decision, to the guard, credited
 * to the model that made it (not a random one, nor one of an earlier learner). */
static void guard_credit(struct dqn_cwnd_policy *d, const struct policy_flow *pf, double reward)
{
	if (!pf->dqn_decided || pf->dqn_last_arm == LEARN_ARM_NONE || pf->dqn_last_epoch != d->learn_epoch)
		return;
	if (learn_guard_observe(&d->guard, pf->dqn_last_arm == LEARN_ARM_TUNED, reward) == LEARN_GUARD_ROLLBACK)
		learner_rollback(d);
}

/* The int8 DQN's greedy action: the learner's latest model, or the loaded one (no
 * learner, none published yet, or a canary decision); *arm says which. The learner's
 * models have the loaded model's features in the same order, so map serves both. */
static enum dqn_action greedy_int8(struct dqn_cwnd_policy *d, const double *raw, enum learn_arm_id *arm)
{
	const struct dqn_learn_model *pub = NULL;
	const struct model *m = d->model;
	enum dqn_action action;

	*arm = LEARN_ARM_NONE;
	if (d->learner) {
		pub = dqn_learn_acquire(d->learner, LEARN_READER);
		if (pub->generation > 0 && d->learn_generation == 0)
			fprintf(stderr, "reflexd: learn: the first fine-tuned model decides (generation %llu, "
				"%llu updates)\n", (unsigned long long)pub->generation, (unsigned long long)pub->updates);
		d->learn_generation = pub->generation;
		if (pub->generation > 0) {
			*arm = learn_guard_canary(&d->guard, prng_uniform(&d->rng)) ? LEARN_ARM_LOADED : LEARN_ARM_TUNED;
			d->canary_decisions += *arm == LEARN_ARM_LOADED;
		}
		if (*arm != LEARN_ARM_LOADED)
			m = pub->model;
	}
	action = dqn_int8_action(m, raw, d->map);
	if (pub)
		dqn_learn_release(d->learner, LEARN_READER);
	return action;
}

static bool dqn_ready(const struct policy *p)
{
	return ((const struct dqn_cwnd_policy *)p)->model != NULL;
}

/*
 * The DQN's cwnd for this flow: its telemetry as the trainer's dqn_interval (the
 * window's 200 ms), the int8 MLP's argmax (or, with probability explore, a random
 * action), applied to the cwnd it steers. A host sees no bottleneck buffer limit, so
 * buffer_occupancy is the queueing delay (srtt - min RTT) over the largest seen.
 * Between decision intervals the cwnd stays.
 */
static void dqn_decide(struct policy *p, struct policy_flow *pf, const struct flow_entry *flow,
		       const struct feature_window *w, struct cwnd_choice *choice, char *why, size_t why_len)
{
	struct dqn_cwnd_policy *d = DQN(p);
	double seconds = WINDOW_LEN_NS / 1e9, queue_delay, raw[DQN_FEATURES], reward;
	struct dqn_interval iv = { 0 };
	enum dqn_action action;
	enum learn_arm_id arm;
	bool explored = false;
	char model_note[48] = "";

	*choice = (struct cwnd_choice){ CWND_PACKETS, pf->dqn_cwnd };
	if (pf->dqn_last_ns && w->ts_ns - pf->dqn_last_ns < dqn_decision_interval_us(w->context[CTX_MIN_RTT_US]) * 1000ULL)
		return;
	pf->dqn_last_ns = w->ts_ns;
	queue_delay = fmax(0, w->context[CTX_SRTT_US] - w->context[CTX_MIN_RTT_US]);
	pf->max_queue_delay_us = fmax(pf->max_queue_delay_us, queue_delay);
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
	iv.buffer_occupancy = pf->max_queue_delay_us > 0 ? queue_delay / pf->max_queue_delay_us : 0;
	dqn_flow_observe(&pf->dqn, &iv, raw, &reward);
	if (d->learner) {
		learn_push(d, pf, raw, reward);
		guard_credit(d, pf, reward);
	}
	action = greedy_int8(d, raw, &arm);
	if (d->opt.explore > 0 && prng_uniform(&d->rng) < d->opt.explore) {
		action = (enum dqn_action)prng_below(&d->rng, DQN_ACTIONS);
		explored = true;
	}
	if (d->learner) {
		memcpy(pf->dqn_last_state, raw, sizeof(pf->dqn_last_state));
		pf->dqn_last_action = (uint8_t)action;
		pf->dqn_decided = true;
		pf->dqn_last_arm = explored ? LEARN_ARM_NONE : (uint8_t)arm;
		pf->dqn_last_epoch = d->learn_epoch;
		if (arm == LEARN_ARM_LOADED)
			snprintf(model_note, sizeof(model_note), " (loaded model, canary)");
		else
			snprintf(model_note, sizeof(model_note), " (on-line model %llu)",
				 (unsigned long long)d->learn_generation);
	}
	if (!pf->dqn_cwnd)
		pf->dqn_cwnd = w->context[CTX_SND_CWND] > 0 ? w->context[CTX_SND_CWND] : DQN_INIT_CWND;
	pf->dqn_cwnd = dqn_apply_action(action, (uint32_t)pf->dqn_cwnd);
	snprintf(why, why_len, "dqn%s: %s%s -> cwnd %.0f (srtt %.0f us, min_rtt %.0f us, %.1f Mbit/s)", model_note,
		 dqn_action_names[action], explored ? " (exploring)" : "", pf->dqn_cwnd, iv.srtt_us, iv.min_rtt_us,
		 w->context[CTX_DELIVERY_RATE_BPS] / 1e6);
	choice->value = pf->dqn_cwnd;
}

int dqn_cwnd_policy_init(struct dqn_cwnd_policy *d, const struct dqn_cwnd_policy_opts *opt)
{
	struct learn_guard_opts guard_opts;

	memset(d, 0, sizeof(*d));
	d->base = (struct policy){ .name = "dqn", .ready = dqn_ready, .flow_state = true, .decide = dqn_decide };
	d->opt = *opt;
	prng_seed(&d->rng, 1);
	learn_guard_opts_default(&guard_opts);
	learn_guard_init(&d->guard, &guard_opts);
	if (opt->learn && opt->learn_out_path && learn_out_check(opt->learn_out_path))
		return -1;
	model_load(d);
	learner_start(d, true);
	return 0;
}

/* Whether the file now loaded differs from the one loaded before. */
static bool model_changed(const struct dqn_cwnd_policy *d, uint32_t crc_before, size_t size_before)
{
	return d->model->crc_computed != crc_before || d->model->file_size != size_before;
}

void dqn_cwnd_policy_reload(struct dqn_cwnd_policy *d)
{
	uint32_t crc_before = d->model ? d->model->crc_computed : 0;
	size_t size_before = d->model ? d->model->file_size : 0;

	model_load(d);
	/* A SIGHUP for another model reloads an unchanged dqn file: learning goes on. */
	if (!d->opt.learn || !d->model || !model_changed(d, crc_before, size_before))
		return;
	if (d->learner) {
		fprintf(stderr, "reflexd: learn: the dqn model was replaced: learning starts again from it\n");
		learner_stop(d);
		learner_free(d);
	}
	learner_start(d, true);
}

void dqn_cwnd_policy_free(struct dqn_cwnd_policy *d)
{
	learner_finish(d);
	model_free(d->model);
	d->model = NULL;
}
