/*
 * `.reflex` models: the file format (models/FORMAT.md is its byte-exact spec), a
 * strict loader, a writer, quantization and integer-only inference for decision
 * trees and int8 MLPs.
 *
 * Life of a model in reflexd:
 *   model_load_file(path, 0, &fresh, &err)      validate everything, or fail untouched
 *   model_map_features(fresh, names, n, map, &err)   once per load
 *   model_quantize(m, raw, map, q)              once per decision: double -> int16
 *   model_eval(m, q, value)                     integer only: trees or MLP, clamped
 *   model_decide(m, raw, map, value)            the same two steps compiled (model_fast.h)
 *   model_value_raw(m, i, value[i])             int -> raw units (for the actuator)
 *   model_explain_tree(m, i, q, &path)          why (trees)
 *
 * Builders (reflex-forge, the DQN trainer, tests):
 *   model_create -> model_set_feature / model_set_output -> model_set_tree or
 *   model_mlp_quantize (or model_add_layer) -> model_meta_set -> model_write_file
 * model_write_file validates with the loader's own rules and writes atomically.
 */
#ifndef REFLEX_MODEL_H
#define REFLEX_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define MODEL_MAGIC "NEM1"
#define MODEL_VERSION 1
#define MODEL_HEADER_SIZE 32
#define MODEL_SECTION_HEADER_SIZE 8
#define MODEL_CRC_SIZE 4

/* Hard caps of format version 1 (FORMAT.md, "Caps"); the loader refuses anything above. */
#define MODEL_MAX_FILE_SIZE (1u << 20)
#define MODEL_MAX_FEATURES 64
#define MODEL_MAX_OUTPUTS 8
#define MODEL_MAX_SECTIONS 16
#define MODEL_NAME_SIZE 32          /* name field bytes; names are 1..31 bytes */
#define MODEL_MAX_DEPTH_LIMIT 10    /* the largest max_depth a file may declare */
#define MODEL_DEFAULT_MAX_DEPTH 4
#define MODEL_MAX_TREE_NODES ((1u << (MODEL_MAX_DEPTH_LIMIT + 1)) - 1)
#define MODEL_MAX_LAYERS 4
#define MODEL_MAX_UNITS 256
#define MODEL_MAX_BIAS ((1 << 30) - 1) /* |bias| bound: int32 accumulation cannot overflow */
#define MODEL_MAX_METADATA 65536

/* Quantized feature range: q = round(clamp((x - min) / (max - min), 0, 1) * 32767). */
#define MODEL_Q_MAX 32767
/* feature_idx of a leaf node. */
#define MODEL_LEAF 0xffff
/* Section types with this bit set may be skipped by a reader that does not know them. */
#define MODEL_SECTION_OPTIONAL 0x8000

enum model_section_type {
	MODEL_SECTION_FEATURES = 1,
	MODEL_SECTION_OUTPUTS = 2,
	MODEL_SECTION_TREES = 3,
	MODEL_SECTION_MLP = 4,
	MODEL_SECTION_METADATA = 5,
	/* Optional, so readers older than it skip it: the training distribution of each feature. */
	MODEL_SECTION_REFERENCE = 0x8001,
	/* Optional: an isolation forest that scores how unlike the training windows an input is. */
	MODEL_SECTION_ANOMALY = 0x8002,
};

/* The `reference` section (FORMAT.md): per feature, bin_count quantile bins of the
 * training data's quantized values. A reader skips a reference version it does not know.
 * Version 2 adds psi_threshold; the writer emits version 1 when it is 0 (none). */
#define MODEL_REFERENCE_VERSION 2
#define MODEL_REF_MIN_BINS 10
#define MODEL_REF_MAX_BINS 20
#define MODEL_REF_DEFAULT_BINS 10
#define MODEL_REF_MAX_PSI 100 /* psi_threshold cap: PSI of decile bins floored at 1e-4 stays below ~10 */

enum model_kind {
	MODEL_KIND_TREES = 1, /* one regression tree per output */
	MODEL_KIND_MLP = 2,   /* int8 MLP, ReLU between layers; outputs are the last layer's values */
};

struct model_feature {
	char name[MODEL_NAME_SIZE];
	double min; /* raw value that quantizes to 0 */
	double max; /* raw value that quantizes to MODEL_Q_MAX; max > min */
};

struct model_output {
	char name[MODEL_NAME_SIZE];
	double min;    /* bounds in raw units; outputs are clamped to them */
	double max;
	double scale;  /* raw = value * scale; > 0 */
	int32_t qmin;  /* derived: ceil(min / scale - 1e-9), floor(max / scale + 1e-9) */
	int32_t qmax;  /*   clamped to int16 (trees) or int32 (MLP) */
};

/* Internal node: go left when q[feature_idx] <= threshold. Leaf: feature_idx == MODEL_LEAF. */
struct model_tree_node {
	uint16_t feature_idx;
	int16_t threshold;
	uint16_t left;   /* child indexes within the tree, always > the node's own index */
	uint16_t right;
	int16_t leaf_value;
};

struct model_tree {
	uint16_t node_count;
	struct model_tree_node *nodes; /* nodes[0] is the root */
};

/*
 * Layer l: acc[o] = bias[o] + sum_i weights[o * in_count + i] * a[i] (int32).
 * Hidden layers: a_next[o] = min(127, (max(acc, 0) * requant_mult + 2^(shift-1)) >> shift).
 * Last layer: value[o] = acc[o] (requant_mult and requant_shift are 0).
 * The first layer's input is a[i] = (q[i] * 127 + 16383) / 32767, i.e. x in [0,1] at scale 1/127.
 */
struct model_layer {
	uint16_t in_count;
	uint16_t out_count;
	uint32_t requant_mult;
	uint8_t requant_shift;
	double weight_scale; /* real weight = int8 * weight_scale (informational) */
	int8_t *weights;     /* [out_count][in_count] */
	int32_t *biases;     /* [out_count], in units of weight_scale * input scale */
};

/*
 * Training distribution: q of feature f falls in bin b, the first with q <= edges[f][b]
 * (the last bin when none), and counts[f][b] of the sample_count training windows did.
 */
struct model_reference {
	uint8_t bin_count;
	uint32_t sample_count;
	/* The PSI above which drift is significant for this model, calibrated by the
	 * trainer on its own windows (0: none, a version 1 section). */
	double psi_threshold;
	int16_t edges[MODEL_MAX_FEATURES][MODEL_REF_MAX_BINS - 1]; /* non-decreasing, 0..32767 */
	uint32_t counts[MODEL_MAX_FEATURES][MODEL_REF_MAX_BINS];   /* each feature's sum to sample_count */
};

/* The `anomaly` section (FORMAT.md): an isolation forest (Liu, Ting, Zhou 2008) over
 * the quantized features. Its trees have the `trees` section's node layout; a leaf's
 * leaf_value is the path length of a sample ending there, depth + c(leaf size), in
 * 1/MODEL_ANOMALY_PATH_UNIT units. A reader skips a version it does not know. */
#define MODEL_ANOMALY_VERSION 1
#define MODEL_ANOMALY_MAX_TREES 64
#define MODEL_ANOMALY_MIN_SAMPLE 2
#define MODEL_ANOMALY_MAX_SAMPLE 4096
#define MODEL_ANOMALY_PATH_UNIT 256

struct model_anomaly {
	uint8_t tree_count;   /* 1..MODEL_ANOMALY_MAX_TREES */
	uint8_t max_depth;    /* 1..MODEL_MAX_DEPTH_LIMIT */
	uint16_t sample_size; /* psi: training windows each tree was grown on; c(psi) normalises */
	struct model_tree trees[MODEL_ANOMALY_MAX_TREES];
};

/* A section as found in a loaded file: offset of its 8-byte header, payload length. */
struct model_section {
	uint16_t type;
	uint32_t offset;
	uint32_t length;
};

struct model {
	enum model_kind kind;
	uint16_t feature_count;
	uint16_t output_count;
	struct model_feature features[MODEL_MAX_FEATURES];
	struct model_output outputs[MODEL_MAX_OUTPUTS];
	/* MODEL_KIND_TREES: trees[output] */
	uint8_t max_depth;
	struct model_tree trees[MODEL_MAX_OUTPUTS];
	/* MODEL_KIND_MLP */
	uint8_t layer_count;
	struct model_layer layers[MODEL_MAX_LAYERS];
	/* METADATA section: UTF-8 YAML, not NUL-terminated in the file; NUL-terminated here */
	char *metadata;
	size_t metadata_len;
	/* REFERENCE section, or NULL (older files, the DQN) */
	struct model_reference *reference;
	/* ANOMALY section, or NULL */
	struct model_anomaly *anomaly;
	/* Of a loaded file (zero for a built model). */
	uint16_t section_count;
	struct model_section sections[MODEL_MAX_SECTIONS];
	uint32_t crc_stored;
	uint32_t crc_computed;
	size_t file_size;
	/* Compiled inference form (model_fast.h), rebuilt by the loader and the builders. */
	struct model_fast *fast;
};

/* --- loading ------------------------------------------------------------- */

/* model_load_*() flag: report a CRC mismatch in crc_* but load anyway (inspect only). */
#define MODEL_LOAD_IGNORE_CRC 0x1

/*
 * Parse and validate a whole file image. On success *out is a new model (free with
 * model_free). On failure returns -EINVAL (bad file), -ENOMEM, or -errno of the I/O,
 * fills err, and leaves *out untouched: a caller's running model is never affected.
 */
int model_load_buffer(const void *data, size_t len, unsigned flags, struct model **out,
		      struct reflex_err *err);
int model_load_file(const char *path, unsigned flags, struct model **out, struct reflex_err *err);
void model_free(struct model *m);

/* The same semantic rules the loader applies (names, bounds, trees, layers, metadata). */
int model_validate(const struct model *m, struct reflex_err *err);

/* --- building and writing ------------------------------------------------ */

/* An empty model of feature_count features and output_count outputs; NULL on bad counts or ENOMEM. */
struct model *model_create(enum model_kind kind, uint16_t feature_count, uint16_t output_count);
int model_set_feature(struct model *m, unsigned idx, const char *name, double min, double max,
		      struct reflex_err *err);
/* Sets bounds and scale and derives qmin/qmax. */
int model_set_output(struct model *m, unsigned idx, const char *name, double min, double max,
		     double scale, struct reflex_err *err);
/* Copies node_count nodes as the tree of output `output`. */
int model_set_tree(struct model *m, unsigned output, const struct model_tree_node *nodes,
		   uint16_t node_count, struct reflex_err *err);
/* Appends an integer layer (copies weights and biases). */
int model_add_layer(struct model *m, uint16_t in_count, uint16_t out_count, uint32_t requant_mult,
		    uint8_t requant_shift, double weight_scale, const int8_t *weights,
		    const int32_t *biases, struct reflex_err *err);

/* A float layer as a trainer holds it: y = W x + b, weights [out_count][in_count]. */
struct model_float_layer {
	uint16_t in_count;
	uint16_t out_count;
	const float *weights;
	const float *biases;
};

/*
 * Quantize a float MLP (ReLU between layers, inputs normalized to [0,1] as
 * model_feature_normalize does) into m's layers: int8 weights with a symmetric
 * per-layer scale, int32 biases at the product scale, hidden activations requantized
 * to int8 with a scale from the largest activation over `calib` (n_calib rows of
 * layers[0].in_count normalized inputs), or from an interval bound when n_calib is 0.
 * Sets every output's scale to the last layer's accumulator scale and its bounds to
 * the int32 range (no clamping); output names are kept. m must have no layers yet.
 */
int model_mlp_quantize(struct model *m, const struct model_float_layer *layers,
		       unsigned layer_count, const float *calib, size_t n_calib,
		       struct reflex_err *err);
/* The float reference forward pass (ReLU between layers) for the same layers. */
void model_mlp_forward_float(const struct model_float_layer *layers, unsigned layer_count,
			     const float *in, float *out);

/* The file image of a valid model: *buf (malloc'd) and *len. Validates first. */
int model_serialize(const struct model *m, uint8_t **buf, size_t *len, struct reflex_err *err);
/* Validate, serialize, write PATH.tmp.XXXXXX, fsync, rename over path, fsync the directory.
 * On any failure nothing is left at path that was not there before. */
int model_write_file(const struct model *m, const char *path, struct reflex_err *err);

/*
 * Sets m's reference from n rows of quantized inputs q[n][feature_count] (the training
 * windows): bin_count (MODEL_REF_MIN_BINS..MODEL_REF_MAX_BINS) quantile bins per feature.
 */
int model_reference_build(struct model *m, const int16_t *q, size_t n, unsigned bin_count,
			  struct reflex_err *err);
/* The bin of q for feature f. */
unsigned model_reference_bin(const struct model_reference *r, unsigned f, int16_t q);
/* The REFERENCE payload size of m (0 without a reference). */
size_t model_reference_section_size(const struct model *m);

/* The average path length of an unsuccessful search in a binary search tree of n
 * keys, c(n) = 2 H(n - 1) - 2 (n - 1) / n (c(1) = 0, c(2) = 1): Liu et al.'s normaliser. */
double model_anomaly_c(unsigned n);
/* The sum over the forest's trees of the path length of q, in MODEL_ANOMALY_PATH_UNIT
 * units (integer only). m must have an anomaly section. */
uint32_t model_anomaly_path_sum(const struct model_anomaly *a, const int16_t *q);
/* The anomaly score in [0, 1] of a path sum: 2^(-mean path / c(sample_size)); 0.5 and
 * below is ordinary, near 1 is isolated at once (unlike every training window). */
double model_anomaly_score(const struct model_anomaly *a, uint32_t path_sum);
/* Frees a forest's nodes and the forest. */
void model_anomaly_free(struct model_anomaly *a);
/* The ANOMALY payload size of m (0 without one). */
size_t model_anomaly_section_size(const struct model *m);

/* --- metadata: flat `key: value` lines of the YAML text ------------------- */

/* Copies the value of key (unquoted) into value; 0, -ENOENT, or -ENOSPC if value_size is short. */
int model_meta_get(const struct model *m, const char *key, char *value, size_t value_size);
/* Replaces or appends `key: value`; key [A-Za-z0-9_]+, value one line of UTF-8 (quoted if needed). */
int model_meta_set(struct model *m, const char *key, const char *value, struct reflex_err *err);
/* model_meta_set with a printf-formatted value of at most 255 bytes. */
int model_meta_setf(struct model *m, const char *key, struct reflex_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool model_utf8_valid(const char *s, size_t len);

/* --- inference ----------------------------------------------------------- */

/* clamp((x - min) / (max - min), 0, 1) as a double; NaN -> 0. What a trainer must train on. */
double model_feature_normalize(const struct model_feature *f, double x);
/* round-half-up(norm * 32767) for norm in [0,1]; norm <= 0 or NaN -> 0, norm >= 1 -> 32767. */
int16_t model_quantize_norm(double norm);
/* The raw value at which q crosses a threshold: x goes left iff x < model_threshold_raw(). */
double model_threshold_raw(const struct model_feature *f, int16_t threshold);

/*
 * map[i] = position of model feature i in `names` (e.g. feature_names[]). Fails naming
 * the first model feature that is not among them.
 */
int model_map_features(const struct model *m, const char *const *names, size_t name_count,
		       int *map, struct reflex_err *err);
/* q[i] = quantized raw[map ? map[i] : i] for every model feature; NaN quantizes to 0 (min). */
void model_quantize(const struct model *m, const double *raw, const int *map, int16_t *q);
/* value[0..output_count) = clamped integer outputs. Integer only; bounded loops. */
void model_eval(const struct model *m, const int16_t *q, int32_t *value);
double model_value_raw(const struct model *m, unsigned output, int32_t value);
/* Index of the largest value (lowest index on ties); for MLP Q-values. */
unsigned model_argmax(const int32_t *value, unsigned count);

struct model_explain_step {
	uint16_t node;
	uint16_t feature_idx;
	int16_t threshold;
	int16_t q;       /* the input's quantized value */
	bool went_left;  /* q <= threshold */
};

struct model_explain {
	uint8_t step_count;
	struct model_explain_step steps[MODEL_MAX_DEPTH_LIMIT];
	uint16_t leaf_node;
	int16_t leaf_value;
	int32_t value;   /* leaf_value clamped to the output's bounds */
};

/* The path one tree takes for q; -EINVAL if m is not a tree model or output is out of range. */
int model_explain_tree(const struct model *m, unsigned output, const int16_t *q,
		       struct model_explain *ex);
/* One line per step and the leaf, e.g.
 * "  node 0: rtt_ewma q=1234 <= 2000 (raw 812 < 1316.6) -> left"; raw holds the inputs
 * in model feature order, or is NULL. Returns the snprintf-style length. */
int model_explain_format(const struct model *m, unsigned output, const struct model_explain *ex,
			 const double *raw, char *buf, size_t size);

const char *model_kind_name(enum model_kind kind);
const char *model_section_name(uint16_t type);

#endif /* REFLEX_MODEL_H */
