/*
 * `reflexctl model`: the operator's tools for `.reflex` files.
 *
 *   inspect FILE [--json]     every decoded field, and whether the CRC holds
 *   verify FILE               exit 0 if the loader accepts it, else the error and 1
 *   eval FILE --features V,.. | --csv FILE   outputs in raw units
 *   explain FILE --features V,..             the decision path of each output
 *
 * Exit codes: 0 success, 1 a bad model or bad input data, 2 a usage error.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/csv.h"
#include "lib/json_write.h"
#include "ctl/ctl.h"
#include "model/model.h"
#include "model/model_fast.h"


enum { OPT_JSON = 1, OPT_FEATURES = 2, OPT_CSV = 4 };

struct opts {
	const char *file;
	bool json;
	const char *features;
	const char *csv;
};

struct subcommand {
	const char *name;
	int (*run)(const struct opts *o);
	unsigned allowed;
	const char *args;
	const char *help;
};

/* --- output helpers ------------------------------------------------------- */

/* Depth of each node (parents precede children: the format's forward rule). */
static unsigned tree_depth(const struct model_tree *tree)
{
	unsigned char depth[MODEL_MAX_TREE_NODES] = { 0 };
	unsigned max = 0;

	for (unsigned j = 0; j < tree->node_count; j++) {
		const struct model_tree_node *nd = &tree->nodes[j];

		if (depth[j] > max)
			max = depth[j];
		if (nd->feature_idx != MODEL_LEAF) {
			depth[nd->left] = depth[j] + 1;
			depth[nd->right] = depth[j] + 1;
		}
	}
	return max;
}

/* --- inspect -------------------------------------------------------------- */

static void inspect_text_tree(const struct model *m, unsigned t)
{
	const struct model_tree *tree = &m->trees[t];
	const struct model_output *o = &m->outputs[t];

	printf("  tree %u -> %s: %u nodes, depth %u\n", t, o->name, tree->node_count, tree_depth(tree));
	for (unsigned j = 0; j < tree->node_count; j++) {
		const struct model_tree_node *nd = &tree->nodes[j];

		if (nd->feature_idx == MODEL_LEAF) {
			printf("    node %u: leaf %d (%s = %g)\n", j, nd->leaf_value, o->name,
			       model_value_raw(m, t, nd->leaf_value));
			continue;
		}
		printf("    node %u: %s <= %d (raw < %g) ? node %u : node %u\n", j,
		       m->features[nd->feature_idx].name, nd->threshold,
		       model_threshold_raw(&m->features[nd->feature_idx], nd->threshold), nd->left,
		       nd->right);
	}
}

static void inspect_text_layer(const struct model *m, unsigned l)
{
	const struct model_layer *ly = &m->layers[l];
	size_t nw = (size_t)ly->in_count * ly->out_count;
	int wmin = 127, wmax = -128;
	int32_t bmin = INT32_MAX, bmax = INT32_MIN;

	for (size_t k = 0; k < nw; k++) {
		wmin = ly->weights[k] < wmin ? ly->weights[k] : wmin;
		wmax = ly->weights[k] > wmax ? ly->weights[k] : wmax;
	}
	for (unsigned k = 0; k < ly->out_count; k++) {
		bmin = ly->biases[k] < bmin ? ly->biases[k] : bmin;
		bmax = ly->biases[k] > bmax ? ly->biases[k] : bmax;
	}
	printf("  layer %u: %u -> %u, %s, weight_scale %g, weights %d..%d, biases %d..%d", l,
	       ly->in_count, ly->out_count, l + 1 < m->layer_count ? "ReLU" : "linear",
	       ly->weight_scale, wmin, wmax, bmin, bmax);
	if (l + 1 < m->layer_count)
		printf(", requant x%u >> %u (%g)", ly->requant_mult, ly->requant_shift,
		       ldexp(ly->requant_mult, -ly->requant_shift));
	putchar('\n');
}

/* Edges in raw units, so a reader sees what the training traffic looked like. */
static void inspect_text_reference(const struct model *m)
{
	const struct model_reference *r = m->reference;

	if (!r) {
		printf("reference: none (no training distribution: reflexd cannot check drift)\n");
		return;
	}
	printf("reference (version %u, %u bins, %u training windows): upper edge (raw) and %% of training per bin\n",
	       r->psi_threshold > 0 ? 2u : 1u, r->bin_count, r->sample_count);
	if (r->psi_threshold > 0)
		printf("  drift threshold (calibrated): PSI %g\n", r->psi_threshold);
	else
		printf("  drift threshold: none calibrated (reflexd hands over only with --drift-threshold)\n");
	for (unsigned f = 0; f < m->feature_count; f++) {
		printf("  %-20s", m->features[f].name);
		for (unsigned b = 0; b < r->bin_count; b++) {
			if (b + 1 < r->bin_count)
				printf(" <=%g:", model_threshold_raw(&m->features[f], r->edges[f][b]));
			else
				printf(" rest:");
			printf("%.1f", 100.0 * r->counts[f][b] / r->sample_count);
		}
		putchar('\n');
	}
}

static void json_reference(const struct model *m)
{
	const struct model_reference *r = m->reference;

	if (!r) {
		printf("null");
		return;
	}
	printf("{\"version\":%u,\"bin_count\":%u,\"sample_count\":%u,\"psi_threshold\":%.17g,\"features\":[",
	       r->psi_threshold > 0 ? 2u : 1u, r->bin_count, r->sample_count, r->psi_threshold);
	for (unsigned f = 0; f < m->feature_count; f++) {
		printf("%s{\"edges\":[", f ? "," : "");
		for (unsigned b = 0; b + 1 < r->bin_count; b++)
			printf("%s%d", b ? "," : "", r->edges[f][b]);
		printf("],\"counts\":[");
		for (unsigned b = 0; b < r->bin_count; b++)
			printf("%s%u", b ? "," : "", r->counts[f][b]);
		printf("]}");
	}
	printf("]}");
}

static unsigned anomaly_nodes(const struct model_anomaly *a)
{
	unsigned n = 0;

	for (unsigned t = 0; t < a->tree_count; t++)
		n += a->trees[t].node_count;
	return n;
}

static void inspect_text_anomaly(const struct model *m)
{
	const struct model_anomaly *a = m->anomaly;

	if (!a) {
		printf("anomaly: none (no isolation forest: reflexd scores no flow)\n");
		return;
	}
	printf("anomaly (version %d): isolation forest of %u trees, max depth %u, %u nodes, grown on %u windows each "
	       "(c(%u) = %.3f)\n", MODEL_ANOMALY_VERSION, a->tree_count, a->max_depth, anomaly_nodes(a), a->sample_size,
	       a->sample_size, model_anomaly_c(a->sample_size));
}

static void json_anomaly(const struct model *m)
{
	const struct model_anomaly *a = m->anomaly;

	if (!a) {
		printf("null");
		return;
	}
	printf("{\"version\":%d,\"tree_count\":%u,\"max_depth\":%u,\"sample_size\":%u,\"trees\":[",
	       MODEL_ANOMALY_VERSION, a->tree_count, a->max_depth, a->sample_size);
	for (unsigned t = 0; t < a->tree_count; t++) {
		printf("%s[", t ? "," : "");
		for (unsigned j = 0; j < a->trees[t].node_count; j++) {
			const struct model_tree_node *nd = &a->trees[t].nodes[j];

			if (nd->feature_idx == MODEL_LEAF)
				printf("%s{\"path\":%d}", j ? "," : "", nd->leaf_value);
			else
				printf("%s{\"feature_idx\":%u,\"threshold\":%d,\"left\":%u,\"right\":%u}", j ? "," : "",
				       nd->feature_idx, nd->threshold, nd->left, nd->right);
		}
		printf("]");
	}
	printf("]}");
}

static void inspect_text(const struct opts *o, const struct model *m)
{
	printf("file: %s (%zu bytes)\n", o->file, m->file_size);
	printf("format: NEM1 version %d, header %d bytes, %u sections\n", MODEL_VERSION,
	       MODEL_HEADER_SIZE, m->section_count);
	if (m->crc_stored == m->crc_computed)
		printf("crc32: 0x%08x ok\n", m->crc_stored);
	else
		printf("crc32: stored 0x%08x, computed 0x%08x: MISMATCH (file corrupt)\n",
		       m->crc_stored, m->crc_computed);
	printf("sections:\n");
	for (unsigned s = 0; s < m->section_count; s++)
		printf("  %u: %-9s type 0x%04x at offset %u, %u bytes\n", s,
		       model_section_name(m->sections[s].type), m->sections[s].type,
		       m->sections[s].offset, m->sections[s].length);
	printf("kind: %s", model_kind_name(m->kind));
	if (m->kind == MODEL_KIND_TREES)
		printf(" (max_depth %u)", m->max_depth);
	printf("\nfeatures (%u):\n", m->feature_count);
	for (unsigned i = 0; i < m->feature_count; i++)
		printf("  %2u %-20s min %-12g max %g\n", i, m->features[i].name, m->features[i].min,
		       m->features[i].max);
	printf("outputs (%u):\n", m->output_count);
	for (unsigned k = 0; k < m->output_count; k++) {
		const struct model_output *out = &m->outputs[k];

		printf("  %2u %-20s min %-12g max %-12g scale %-10g (integer %d..%d)\n", k, out->name,
		       out->min, out->max, out->scale, out->qmin, out->qmax);
	}
	fputs(m->kind == MODEL_KIND_TREES ? "trees:\n" : "layers:\n", stdout);
	for (unsigned t = 0; m->kind == MODEL_KIND_TREES && t < m->output_count; t++)
		inspect_text_tree(m, t);
	for (unsigned l = 0; m->kind == MODEL_KIND_MLP && l < m->layer_count; l++)
		inspect_text_layer(m, l);
	inspect_text_reference(m);
	inspect_text_anomaly(m);
	printf("metadata (%zu bytes):\n", m->metadata_len);
	for (const char *line = m->metadata; line && *line;) {
		const char *nl = strchr(line, '\n');
		int n = nl ? (int)(nl - line) : (int)strlen(line);

		printf("  %.*s\n", n, line);
		line = nl ? nl + 1 : line + n;
	}
}

static void json_tree(const struct model *m, unsigned t)
{
	const struct model_tree *tree = &m->trees[t];

	printf("{\"output\":");
	json_write_string(stdout, m->outputs[t].name, strlen(m->outputs[t].name));
	printf(",\"depth\":%u,\"nodes\":[", tree_depth(tree));
	for (unsigned j = 0; j < tree->node_count; j++) {
		const struct model_tree_node *nd = &tree->nodes[j];

		printf("%s{\"node\":%u,", j ? "," : "", j);
		if (nd->feature_idx == MODEL_LEAF) {
			printf("\"leaf_value\":%d,\"raw\":%.17g}", nd->leaf_value,
			       model_value_raw(m, t, nd->leaf_value));
			continue;
		}
		printf("\"feature_idx\":%u,\"feature\":", nd->feature_idx);
		json_write_string(stdout, m->features[nd->feature_idx].name, strlen(m->features[nd->feature_idx].name));
		printf(",\"threshold\":%d,\"left\":%u,\"right\":%u}", nd->threshold, nd->left, nd->right);
	}
	printf("]}");
}

static void json_layer(const struct model_layer *ly)
{
	printf("{\"in_count\":%u,\"out_count\":%u,\"requant_mult\":%u,\"requant_shift\":%u,"
	       "\"weight_scale\":%.17g,\"weights\":[",
	       ly->in_count, ly->out_count, ly->requant_mult, ly->requant_shift, ly->weight_scale);
	for (size_t k = 0; k < (size_t)ly->in_count * ly->out_count; k++)
		printf("%s%d", k ? "," : "", ly->weights[k]);
	printf("],\"biases\":[");
	for (unsigned k = 0; k < ly->out_count; k++)
		printf("%s%d", k ? "," : "", ly->biases[k]);
	printf("]}");
}

static void inspect_json(const struct opts *o, const struct model *m)
{
	printf("{\"file\":");
	json_write_string(stdout, o->file, strlen(o->file));
	printf(",\"file_size\":%zu,\"magic\":\"NEM1\",\"version\":%d,\"header_size\":%d,"
	       "\"crc\":{\"stored\":\"0x%08x\",\"computed\":\"0x%08x\",\"ok\":%s},\"sections\":[",
	       m->file_size, MODEL_VERSION, MODEL_HEADER_SIZE, m->crc_stored, m->crc_computed,
	       m->crc_stored == m->crc_computed ? "true" : "false");
	for (unsigned s = 0; s < m->section_count; s++)
		printf("%s{\"type\":%u,\"name\":\"%s\",\"offset\":%u,\"length\":%u}", s ? "," : "",
		       m->sections[s].type, model_section_name(m->sections[s].type),
		       m->sections[s].offset, m->sections[s].length);
	printf("],\"kind\":\"%s\",\"features\":[", model_kind_name(m->kind));
	for (unsigned i = 0; i < m->feature_count; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_write_string(stdout, m->features[i].name, strlen(m->features[i].name));
		printf(",\"min\":%.17g,\"max\":%.17g}", m->features[i].min, m->features[i].max);
	}
	printf("],\"outputs\":[");
	for (unsigned k = 0; k < m->output_count; k++) {
		const struct model_output *out = &m->outputs[k];

		printf("%s{\"name\":", k ? "," : "");
		json_write_string(stdout, out->name, strlen(out->name));
		printf(",\"min\":%.17g,\"max\":%.17g,\"scale\":%.17g,\"qmin\":%d,\"qmax\":%d}", out->min,
		       out->max, out->scale, out->qmin, out->qmax);
	}
	printf("]");
	if (m->kind == MODEL_KIND_TREES) {
		printf(",\"max_depth\":%u,\"trees\":[", m->max_depth);
		for (unsigned t = 0; t < m->output_count; t++) {
			fputs(t ? "," : "", stdout);
			json_tree(m, t);
		}
	} else {
		printf(",\"layers\":[");
		for (unsigned l = 0; l < m->layer_count; l++) {
			fputs(l ? "," : "", stdout);
			json_layer(&m->layers[l]);
		}
	}
	printf("],\"metadata\":");
	json_write_string(stdout, m->metadata ? m->metadata : "", m->metadata_len);
	printf(",\"reference\":");
	json_reference(m);
	printf(",\"anomaly\":");
	json_anomaly(m);
	printf("}\n");
}

static int load_or_report(const char *cmd, const char *file, unsigned flags, struct model **m)
{
	struct reflex_err err;

	if (model_load_file(file, flags, m, &err)) {
		fprintf(stderr, "reflexctl model %s: %s\n", cmd, err.msg);
		return 1;
	}
	return 0;
}

static int cmd_inspect(const struct opts *o)
{
	struct reflex_err err;
	struct model *m;
	int rc;

	if (model_load_file(o->file, MODEL_LOAD_IGNORE_CRC, &m, &err)) {
		struct reflex_err crc_err;

		/* A corrupt byte may break a field as well: report the corruption first. */
		if (model_load_file(o->file, 0, &m, &crc_err) == -EINVAL &&
		    strstr(crc_err.msg, "CRC mismatch"))
			fprintf(stderr, "reflexctl model inspect: %s\n", crc_err.msg);
		fprintf(stderr, "reflexctl model inspect: %s\n", err.msg);
		return 1;
	}
	if (o->json)
		inspect_json(o, m);
	else
		inspect_text(o, m);
	rc = m->crc_stored == m->crc_computed ? 0 : 1;
	if (rc)
		fprintf(stderr, "reflexctl model inspect: %s: CRC mismatch: stored 0x%08x, computed 0x%08x\n",
			o->file, m->crc_stored, m->crc_computed);
	model_free(m);
	return rc;
}

static int cmd_verify(const struct opts *o)
{
	struct model *m;

	if (load_or_report("verify", o->file, 0, &m))
		return 1;
	printf("%s: ok (%s, %u features, %u outputs, %zu bytes, crc32 0x%08x)\n", o->file,
	       model_kind_name(m->kind), m->feature_count, m->output_count, m->file_size,
	       m->crc_stored);
	model_free(m);
	return 0;
}

/* --- inputs: --features and --csv ---------------------------------------- */

static int parse_number(const char *s, double *v)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	while (*end == ' ' || *end == '\t')
		end++;
	return *end || errno == ERANGE ? -1 : 0;
}

__attribute__((format(printf, 3, 4))) static void features_error(const char *cmd, const struct model *m,
								   const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "reflexctl model %s: --features: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nthe model's features, in order:");
	for (unsigned i = 0; i < m->feature_count; i++)
		fprintf(stderr, "%s%s", i ? "," : " ", m->features[i].name);
	fputc('\n', stderr);
}

static int feature_by_name(const struct model *m, const char *name)
{
	for (unsigned i = 0; i < m->feature_count; i++)
		if (!strcmp(m->features[i].name, name))
			return (int)i;
	return -1;
}

/* Positional "v1,v2,..." in model feature order, or "name=v,..." naming every feature. */
static int parse_features(const char *cmd, const struct model *m, const char *list, double *raw)
{
	char *copy = strdup(list), *rest = copy, *item;
	bool seen[MODEL_MAX_FEATURES] = { false };
	unsigned n = 0, named = 0;
	int rc = 1;

	if (!copy)
		return 1;
	while ((item = strsep(&rest, ","))) {
		char *eq = strchr(item, '=');
		const char *value = eq ? eq + 1 : item;
		int idx = (int)n++;

		if (eq) {
			*eq = '\0';
			named++;
			idx = feature_by_name(m, item);
			if (idx < 0) {
				features_error(cmd, m, "the model has no feature '%s'", item);
				goto cleanup;
			}
			if (seen[idx]) {
				features_error(cmd, m, "'%s' given twice", item);
				goto cleanup;
			}
		} else if (idx >= m->feature_count) {
			features_error(cmd, m, "the model has %u features, more were given", m->feature_count);
			goto cleanup;
		}
		if (parse_number(value, &raw[idx])) {
			features_error(cmd, m, "item %u '%s' is not a number", n, value);
			goto cleanup;
		}
		seen[idx] = true;
	}
	if (named && named != n)
		features_error(cmd, m, "give all values as name=value or none");
	else if (n != m->feature_count)
		features_error(cmd, m, "the model has %u features, %u given", m->feature_count, n);
	else
		rc = 0;
cleanup:
	free(copy);
	return rc;
}

/* The outputs, then the action of an MLP, then the anomaly score of the raw inputs
 * when the model has an isolation forest. */
static void print_outputs(const struct model *m, const double *raw, const int32_t *value, bool csv)
{
	int16_t q[MODEL_MAX_FEATURES];

	for (unsigned k = 0; k < m->output_count; k++) {
		if (csv)
			printf("%s%.10g", k ? "," : "", model_value_raw(m, k, value[k]));
		else
			printf("%s%s=%.10g", k ? " " : "", m->outputs[k].name,
			       model_value_raw(m, k, value[k]));
	}
	if (m->kind == MODEL_KIND_MLP)
		printf(csv ? ",%s" : " action=%s", m->outputs[model_argmax(value, m->output_count)].name);
	if (m->anomaly) {
		model_quantize(m, raw, NULL, q);
		printf(csv ? ",%.4f" : " anomaly=%.4f",
		       model_anomaly_score(m->anomaly, model_anomaly_path_sum(m->anomaly, q)));
	}
	putchar('\n');
}

/*
 * Every row is read and checked (with the forge's CSV reader: the same quoting,
 * numbers and FILE:LINE:COL errors) before the first output line is printed, so a bad
 * row never leaves half an answer on stdout.
 */
static int eval_csv(const struct model *m, const char *path)
{
	struct reflex_err err = { 0 };
	struct csv_table *t = NULL;
	size_t column[MODEL_MAX_FEATURES];
	double *raw = NULL;
	int32_t value[MODEL_MAX_OUTPUTS];
	int rc = 1;

	if (csv_read_file(path, &t, &err))
		goto fail;
	for (unsigned i = 0; i < m->feature_count; i++)
		if (csv_require_column(t, m->features[i].name, &column[i], &err))
			goto fail;
	raw = calloc(t->row_count ? t->row_count : 1, MODEL_MAX_FEATURES * sizeof(*raw));
	if (!raw) {
		reflex_err_set_file(&err, path, "out of memory");
		goto fail;
	}
	for (size_t r = 0; r < t->row_count; r++)
		for (unsigned i = 0; i < m->feature_count; i++)
			if (csv_get_double(t, r, column[i], &raw[r * MODEL_MAX_FEATURES + i], &err))
				goto fail;
	for (unsigned k = 0; k < m->output_count; k++)
		printf("%s%s", k ? "," : "", m->outputs[k].name);
	fputs(m->kind == MODEL_KIND_MLP ? ",action" : "", stdout);
	fputs(m->anomaly ? ",anomaly\n" : "\n", stdout);
	for (size_t r = 0; r < t->row_count; r++) {
		model_decide(m, &raw[r * MODEL_MAX_FEATURES], NULL, value);
		print_outputs(m, &raw[r * MODEL_MAX_FEATURES], value, true);
	}
	rc = 0;
	goto cleanup;
fail:
	fprintf(stderr, "reflexctl model eval: %s\n", err.msg);
cleanup:
	free(raw);
	csv_free(t);
	return rc;
}

static int cmd_eval(const struct opts *o)
{
	double raw[MODEL_MAX_FEATURES];
	int32_t value[MODEL_MAX_OUTPUTS];
	struct model *m;
	int rc = 1;

	if (load_or_report("eval", o->file, 0, &m))
		return 1;
	if (o->csv) {
		rc = eval_csv(m, o->csv);
	} else if (!parse_features("eval", m, o->features, raw)) {
		model_decide(m, raw, NULL, value);
		print_outputs(m, raw, value, false);
		rc = 0;
	}
	model_free(m);
	return rc;
}

/* --- explain -------------------------------------------------------------- */

static void explain_mlp(const struct model *m, const double *raw, const int16_t *q)
{
	int32_t value[MODEL_MAX_OUTPUTS];
	unsigned best;

	model_eval(m, q, value);
	best = model_argmax(value, m->output_count);
	printf("inputs:\n");
	for (unsigned i = 0; i < m->feature_count; i++)
		printf("  %s = %g (q %d of 0..%d)\n", m->features[i].name, raw[i], q[i], MODEL_Q_MAX);
	printf("outputs (%u layers):\n", m->layer_count);
	for (unsigned k = 0; k < m->output_count; k++)
		printf("  %s = %.10g (integer %d)%s\n", m->outputs[k].name,
		       model_value_raw(m, k, value[k]), value[k], k == best ? "  <- largest" : "");
	printf("action: %s\n", m->outputs[best].name);
}

static int cmd_explain(const struct opts *o)
{
	double raw[MODEL_MAX_FEATURES];
	int16_t q[MODEL_MAX_FEATURES];
	struct model_explain ex;
	char text[2048];
	struct model *m;
	int rc = 1;

	if (load_or_report("explain", o->file, 0, &m))
		return 1;
	if (parse_features("explain", m, o->features, raw))
		goto cleanup;
	model_quantize(m, raw, NULL, q);
	if (m->kind == MODEL_KIND_MLP) {
		explain_mlp(m, raw, q);
	} else {
		for (unsigned k = 0; k < m->output_count; k++) {
			model_explain_tree(m, k, q, &ex);
			model_explain_format(m, k, &ex, raw, text, sizeof(text));
			printf("%s = %.10g\n%s", m->outputs[k].name, model_value_raw(m, k, ex.value), text);
		}
	}
	rc = 0;
cleanup:
	model_free(m);
	return rc;
}

/* --- command line --------------------------------------------------------- */

static const struct subcommand subcommands[] = {
	{ "inspect", cmd_inspect, OPT_JSON, "FILE [--json]",
	  "Print the header, sections, feature schema, outputs and bounds, trees or layers,\n"
	  "metadata, and whether the CRC holds (exit 1 if not). --json: the same as one JSON object." },
	{ "verify", cmd_verify, 0, "FILE",
	  "Run every check of the loader: exit 0 if the model is valid, else print the error\n"
	  "(field and byte offset) and exit 1." },
	{ "eval", cmd_eval, OPT_FEATURES | OPT_CSV, "FILE (--features V1,V2,... | --csv FILE)",
	  "Print the outputs in raw units. --features: values in model feature order, or\n"
	  "name=value pairs naming every feature (NaN reads as the feature's min).\n"
	  "--csv: evaluate every row of a CSV whose header names the model's features (other\n"
	  "columns are ignored; '-' is stdin) and print a CSV of outputs, one row per input row.\n"
	  "A model with an isolation forest adds its anomaly score (0..1) as a last column." },
	{ "explain", cmd_explain, OPT_FEATURES, "FILE --features V1,V2,...",
	  "Print each output with the path its tree took: feature, quantized value, threshold\n"
	  "(and its raw equivalent), direction, leaf. For an MLP: inputs, Q-values, action." },
};
#define SUBCOMMAND_COUNT (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexctl model COMMAND FILE [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++)
		fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].args);
	fprintf(out, "\n`reflexctl model COMMAND --help` for one command. File format: models/FORMAT.md\n");
}

static void sub_usage(FILE *out, const struct subcommand *sc)
{
	fprintf(out, "usage: reflexctl model %s %s\n\n%s\n", sc->name, sc->args, sc->help);
}

/* 0 ok, 1 help printed, 2 usage error (reported). */
static int parse_opts(const struct subcommand *sc, int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		unsigned flag = 0;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			sub_usage(stdout, sc);
			return 1;
		}
		if (!strcmp(a, "--json")) {
			flag = OPT_JSON;
		} else if (!strcmp(a, "--features")) {
			flag = OPT_FEATURES;
			slot = &o->features;
		} else if (!strcmp(a, "--csv")) {
			flag = OPT_CSV;
			slot = &o->csv;
		}
		if (!flag && a[0] == '-' && a[1]) {
			fprintf(stderr, "reflexctl model %s: unknown option '%s'\n", sc->name, a);
			goto bad;
		}
		if (flag && !(sc->allowed & flag)) {
			fprintf(stderr, "reflexctl model %s: %s does not apply here\n", sc->name, a);
			goto bad;
		}
		if (flag == OPT_JSON) {
			o->json = true;
		} else if (slot) {
			if (i + 1 >= argc) {
				fprintf(stderr, "reflexctl model %s: %s needs a value\n", sc->name, a);
				goto bad;
			}
			*slot = argv[++i];
		} else if (o->file) {
			fprintf(stderr, "reflexctl model %s: one FILE only ('%s' and '%s')\n", sc->name,
				o->file, a);
			goto bad;
		} else {
			o->file = a;
		}
	}
	if (!o->file) {
		fprintf(stderr, "reflexctl model %s: no FILE given\n", sc->name);
		goto bad;
	}
	if ((sc->allowed & OPT_FEATURES) && !!o->features + !!o->csv != 1) {
		fprintf(stderr, "reflexctl model %s: give %s\n", sc->name,
			sc->allowed & OPT_CSV ? "exactly one of --features and --csv" : "--features");
		goto bad;
	}
	return 0;
bad:
	sub_usage(stderr, sc);
	return 2;
}

int ctl_model_main(int argc, char **argv)
{
	struct opts o = { 0 };

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < SUBCOMMAND_COUNT; i++) {
		const struct subcommand *sc = &subcommands[i];
		int rc;

		if (strcmp(argv[1], sc->name))
			continue;
		rc = parse_opts(sc, argc - 1, argv + 1, &o);
		if (rc)
			return rc == 1 ? 0 : 2;
		return sc->run(&o);
	}
	fprintf(stderr, "reflexctl model: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
