/* Helpers shared by the model_*.c files; not part of the model API. Errors, names
 * and sizes are model_format.c (which calls no other model file), the semantic
 * rules model_check.c, UTF-8 model_meta.c. */
#ifndef REFLEX_MODEL_INTERNAL_H
#define REFLEX_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* Record and sub-header sizes of format version 1 (models/FORMAT.md). */
#define FEATURE_RECORD_SIZE 48
#define OUTPUT_RECORD_SIZE 56
#define TREES_HEADER_SIZE 4
#define TREE_HEADER_SIZE 4
#define NODE_SIZE 10
#define MLP_HEADER_SIZE 4
#define LAYER_HEADER_SIZE 24
#define REFERENCE_HEADER_SIZE 8      /* version 1 */
#define REFERENCE_HEADER_SIZE_V2 16  /* + psi_threshold */
#define ANOMALY_HEADER_SIZE 8

/* Payload offsets of the sections, for error messages. */
struct model_layout {
	size_t features;
	size_t outputs;
	size_t body; /* TREES or MLP */
	size_t metadata;
	size_t reference;
	size_t anomaly;
};

/* A new error at byte offset (-1: none); returns -EINVAL. */
int model_fail(struct reflex_err *err, long offset, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Fill err with the message and strerror(errnum); returns -errnum. */
int model_fail_errno(struct reflex_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void model_output_qrange(enum model_kind kind, double min, double max, double scale,
			 int32_t *qmin, int32_t *qmax);
size_t model_tree_section_size(const struct model *m);
size_t model_layer_size(const struct model_layer *l);
size_t model_mlp_section_size(const struct model *m);
size_t model_body_section_size(const struct model *m);

int model_check_name(const char *name, const char *what, unsigned idx, long off,
		     struct reflex_err *err);
/* Every semantic rule, with offsets from lay. */
int model_check(const struct model *m, const struct model_layout *lay, struct reflex_err *err);

/* Bytes of one feature's record in the reference section: edges then counts. */
size_t model_reference_record_size(unsigned bin_count);
/* The reference's rules (bins, edges, counts), off = its payload offset. */
int model_reference_check(const struct model *m, size_t off, struct reflex_err *err);

/* The reference's header size and version as written: version 2 only with a psi_threshold. */
size_t model_reference_header_size(const struct model_reference *r);
unsigned model_reference_version(const struct model_reference *r);

/* A tree's structure (children forward, one parent each, depth <= max_depth, leaves
 * with zero threshold and children, internal nodes with leaf_value 0 and a feature
 * below feature_count); depth[j] gets each node's depth. what names it in messages. */
int model_check_tree_shape(const struct model_tree *tree, const char *what, unsigned t, uint8_t max_depth,
			   uint16_t feature_count, size_t tree_off, uint8_t *depth, struct reflex_err *err);
/* The anomaly forest's rules, off = its payload offset. */
int model_anomaly_check(const struct model *m, size_t off, struct reflex_err *err);

/* Byte index of the first invalid UTF-8 sequence (len if none). */
size_t model_utf8_error_at(const char *s, size_t len);

#endif /* REFLEX_MODEL_INTERNAL_H */
