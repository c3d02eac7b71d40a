/* Model health in reflexd (model_health.h). */
#include <math.h>
#include <string.h>

#include "reflexd/model_health.h"

#define TOP_FEATURES 3

void model_drift_init(struct model_drift *md, const char *role, const struct model_health_opts *opt)
{
	memset(md, 0, sizeof(*md));
	md->role = role;
	md->threshold_opt = opt->threshold;
	md->guard.threshold = opt->threshold < 0 ? 0 : opt->threshold;
	md->guard.hold_s = opt->hold_s;
	md->window_s = opt->window_s;
}

void model_drift_free(struct model_drift *md)
{
	if (md->active)
		drift_free(&md->drift);
	md->active = false;
	md->model = NULL;
}

/* A new model: a fresh window against its reference, and its decisions back. */
static void restart(struct model_drift *md, const struct model *m)
{
	model_drift_free(md);
	md->model = m;
	md->guard.handed_over = false;
	md->guard.timing = false;
	if (md->threshold_opt < 0)
		md->guard.threshold = m && m->reference ? m->reference->psi_threshold : 0;
	/* Measured whenever the model carries a reference; handed over only with a threshold. */
	md->active = m && m->reference && drift_init(&md->drift, m, md->window_s) == 0;
}

static void log_event(struct model_drift *md, enum drift_event ev, FILE *log)
{
	const struct model *m = md->model;
	unsigned top[TOP_FEATURES], n = m->feature_count < TOP_FEATURES ? m->feature_count : TOP_FEATURES;

	drift_top_features(&md->drift, top, n);
	fprintf(log, "reflexd: drift: %s model %s: PSI %.3f %s %.3f for %u s over %u windows; most drifted:",
		md->role, ev == DRIFT_HANDOVER ? "hands over to the heuristic" : "decides again",
		md->drift.total, ev == DRIFT_HANDOVER ? ">" : "<",
		ev == DRIFT_HANDOVER ? md->guard.threshold : md->guard.threshold * DRIFT_RETURN_RATIO,
		md->guard.hold_s, md->drift.windows);
	for (unsigned k = 0; k < n; k++)
		fprintf(log, " %s %.3f", m->features[top[k]].name, md->drift.psi[top[k]]);
	fputc('\n', log);
	fflush(log);
}

bool model_drift_observe(struct model_drift *md, const struct model *m, const int *map,
			 const double raw[WINDOW_INPUTS], uint64_t ts_ns, FILE *log)
{
	int16_t q[MODEL_MAX_FEATURES];
	uint64_t now_s = ts_ns / 1000000000ull;
	enum drift_event ev;

	if (m != md->model)
		restart(md, m);
	if (!md->active)
		return true;
	model_quantize(m, raw, map, q);
	drift_add(&md->drift, now_s, q);
	if (now_s != md->last_s) {
		md->last_s = now_s;
		md->valid = drift_compute(&md->drift, now_s);
		if (!(md->guard.threshold > 0))
			return true;
		ev = drift_guard_update(&md->guard, now_s, md->valid, md->drift.total);
		if (ev != DRIFT_NONE)
			log_event(md, ev, log);
	}
	return !md->guard.handed_over;
}

enum anomaly_event flow_anomaly_observe(struct flow_anomaly *fa, const struct model_anomaly *a, const int16_t *q,
					int threshold, unsigned hold)
{
	double score = model_anomaly_score(a, model_anomaly_path_sum(a, q));
	bool handed = flow_anomaly_handed(fa), crossing;
	unsigned run = fa->run & ~FLOW_ANOMALY_HANDED;

	fa->score = (int16_t)lround(score * ANOMALY_SCALE);
	if (threshold <= 0)
		return ANOMALY_NONE;
	crossing = handed ? fa->score < threshold : fa->score > threshold;
	run = crossing ? run + 1 : 0;
	if (run < hold) {
		fa->run = (uint16_t)(run | (handed ? FLOW_ANOMALY_HANDED : 0));
		return ANOMALY_NONE;
	}
	fa->run = handed ? 0 : FLOW_ANOMALY_HANDED;
	return handed ? ANOMALY_RETURN : ANOMALY_HANDOVER;
}
