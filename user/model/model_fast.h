/*
 * Compiled inference: the same results as model_quantize + model_eval, bit for bit,
 * from a form prepared once when a model is loaded or built.
 *
 * Trees: each node's int16 threshold becomes an exact boundary in the raw feature
 * space (x goes left iff clamp(x) < bound), so a decision needs no division and no
 * rounding; leaves loop to themselves, so every walk is max_depth branchless steps.
 * MLP: weights packed for u8 x s8 dot products, 16 outputs x 4 inputs per 64-byte
 * block, run by a portable scalar loop, AVX2 (vpmaddubsw) or AVX-512 VNNI
 * (vpdpbusd), chosen at run time; all integer, so every path gives the same values.
 */
#ifndef REFLEX_MODEL_FAST_H
#define REFLEX_MODEL_FAST_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

enum model_path {
	MODEL_PATH_SCALAR,
	MODEL_PATH_AVX2,
	MODEL_PATH_AVX512_VNNI,
	MODEL_PATH_COUNT,
};

/*
 * value[0..output_count) = what model_quantize(m, raw, map, q) then model_eval(m, q,
 * value) give, on the fastest path this CPU has. m must be valid (loaded, or built
 * and passing model_validate).
 */
void model_decide(const struct model *m, const double *raw, const int *map, int32_t *value);
/* The same on a given MLP path (trees have one); -ENOTSUP if this CPU lacks it. */
int model_decide_path(const struct model *m, const double *raw, const int *map, int32_t *value,
		      enum model_path path);
bool model_path_supported(enum model_path path);
/* The path model_decide takes. */
enum model_path model_path_best(void);
const char *model_path_name(enum model_path path);

/* (Re)build m->fast from the model's features, trees and layers; called by the loader
 * and the builders. -ENOMEM, or 0 (also when the model is not complete yet: then
 * model_decide falls back to model_quantize + model_eval). */
int model_fast_prepare(struct model *m);
void model_fast_free(struct model *m);

#endif /* REFLEX_MODEL_FAST_H */
