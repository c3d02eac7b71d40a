#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model_fast.h"
#include "reflexd/policy.h"

int policy_model_output(const struct model *m, const char *name)
{
	for (unsigned i = 0; i < m->output_count; i++)
		if (!strcmp(m->outputs[i].name, name))
			return (int)i;
	return -1;
}

/* Whether every required output is there with bounds inside its legal range. */
static bool outputs_fit(const char *role, const char *path, const struct model *m,
			const struct policy_output *outputs, size_t output_count)
{
	for (size_t i = 0; i < output_count; i++) {
		int idx = policy_model_output(m, outputs[i].name);

		if (idx < 0) {
			fprintf(stderr, "reflexd: %s model %s refused: it has no output '%s'\n", role, path,
				outputs[i].name);
			return false;
		}
		if (m->outputs[idx].min < outputs[i].min || m->outputs[idx].max > outputs[i].max) {
			fprintf(stderr, "reflexd: %s model %s refused: output '%s' may be %g..%g, outside the "
				"knob's legal range %g..%g\n", role, path, outputs[i].name, m->outputs[idx].min,
				m->outputs[idx].max, outputs[i].min, outputs[i].max);
			return false;
		}
	}
	return true;
}

int policy_model_load(const char *role, const char *path, enum model_kind kind, const char *const *inputs,
		      size_t input_count, const struct policy_output *outputs, size_t output_count,
		      struct model **slot, int *map)
{
	struct reflex_err err = { 0 };
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
	if (!outputs_fit(role, path, fresh, outputs, output_count))
		goto refuse;
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

static bool heuristic_ready(const struct policy *p)
{
	(void)p;
	return true;
}

static void heuristic_decide(struct policy *p, struct policy_flow *pf, const struct flow_entry *flow,
			     const struct feature_window *w, struct cwnd_choice *choice, char *why, size_t why_len)
{
	(void)p, (void)pf, (void)flow, (void)w;
	*choice = (struct cwnd_choice){ CWND_BDP_MULTIPLE, HEURISTIC_BDP_GAIN };
	if (why_len)
		why[0] = '\0';
}

/* Only when the decision changed: formatting it every window cost more than deciding. */
static void heuristic_explain(struct policy *p, const struct feature_window *w, char *why, size_t why_len)
{
	(void)p, (void)w;
	snprintf(why, why_len, "heuristic: %.2f x max delivery rate x min_rtt", HEURISTIC_BDP_GAIN);
}

void heuristic_policy_init(struct policy *p)
{
	*p = (struct policy){ .name = "heuristic", .ready = heuristic_ready, .decide = heuristic_decide,
			      .explain = heuristic_explain };
}

#define TREE(p) ((struct tree_policy *)(p))

static bool tree_ready(const struct policy *p)
{
	return ((const struct tree_policy *)p)->model != NULL;
}

static void tree_quantize(struct tree_policy *t, const struct feature_window *w, int16_t *q)
{
	double raw[WINDOW_INPUTS];

	window_inputs(w, raw);
	model_quantize(t->model, raw, t->map, q);
}

static void tree_decide(struct policy *p, struct policy_flow *pf, const struct flow_entry *flow,
			const struct feature_window *w, struct cwnd_choice *choice, char *why, size_t why_len)
{
	struct tree_policy *t = TREE(p);
	double raw[WINDOW_INPUTS];
	int32_t value[MODEL_MAX_OUTPUTS];

	(void)pf, (void)flow;
	window_inputs(w, raw);
	model_decide(t->model, raw, t->map, value);
	*choice = (struct cwnd_choice){ CWND_BDP_MULTIPLE, model_value_raw(t->model, t->output, value[t->output]) };
	if (why_len)
		why[0] = '\0';
}

/* The tree's decision path, on one log line. */
static void tree_explain(struct policy *p, const struct feature_window *w, char *why, size_t why_len)
{
	struct tree_policy *t = TREE(p);
	double raw[WINDOW_INPUTS], model_raw[MODEL_MAX_FEATURES];
	int16_t q[MODEL_MAX_FEATURES];
	struct model_explain ex;

	why[0] = '\0';
	tree_quantize(t, w, q);
	if (model_explain_tree(t->model, t->output, q, &ex))
		return;
	window_inputs(w, raw);
	for (unsigned i = 0; i < t->model->feature_count; i++)
		model_raw[i] = raw[t->map[i]];
	model_explain_format(t->model, t->output, &ex, model_raw, why, why_len);
	/* The formatter's lines become ";"-separated steps, and quotes become ' : reflexctl
	 * decisions reads a string field up to its first quote. */
	for (char *c = why; *c; c++)
		if (*c == '\n' || *c == '"' || *c == '\\')
			*c = *c == '\n' ? ';' : '\'';
}

static void tree_load(struct tree_policy *t)
{
	static const struct policy_output outputs[] = { { "cwnd_bdp_multiple", -INFINITY, INFINITY } };

	if (t->path && policy_model_load("cwnd", t->path, MODEL_KIND_TREES, window_input_names, WINDOW_INPUTS,
					 outputs, 1, &t->model, t->map) == 0)
		t->output = policy_model_output(t->model, "cwnd_bdp_multiple");
}

void tree_policy_init(struct tree_policy *t, const char *path)
{
	memset(t, 0, sizeof(*t));
	t->base = (struct policy){ .name = "cwnd-tree", .ready = tree_ready, .decide = tree_decide,
				   .explain = tree_explain };
	t->path = path;
	tree_load(t);
}

void tree_policy_reload(struct tree_policy *t)
{
	tree_load(t);
}

void tree_policy_free(struct tree_policy *t)
{
	model_free(t->model);
	t->model = NULL;
}
