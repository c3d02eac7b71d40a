/*
 * Compiled inference (model_fast.h): exact raw-space tree boundaries and packed int8
 * MLP layers with scalar, AVX2 and AVX-512 VNNI kernels.
 *
 * Why the results are bit-identical to model_quantize + model_eval:
 * - quantization is monotone in x (correctly rounded subtract, divide, multiply and
 *   floor are), so {x in [min, max] : q(x) <= t} is {x < b} for the smallest double b
 *   with q(b) > t, found by bisection over doubles with the real quantize function.
 *   Inputs are clamped to [min, max] first (NaN -> min), which is what quantize does.
 * - the MLP is integer arithmetic with the same formulas; the order of additions does
 *   not matter because nothing overflows int32 (the loader's bias bound).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "model/model.h"
#include "model/model_fast.h"

/* No fused multiply-add anywhere here: quantization must round exactly as model_infer.c does. */
#pragma STDC FP_CONTRACT OFF

#define BLOCK 16 /* outputs per packed block: one zmm or two ymm of int32 */
#define GROUP 4  /* inputs per int32 lane of a dot product */

struct fast_node {
	double bound;      /* left iff clamped x < bound */
	uint16_t feature;
	uint16_t left;     /* absolute index into model_fast.nodes */
	uint16_t right;
	int16_t leaf_value;
};

struct fast_layer {
	uint16_t in_groups;  /* ceil(in_count / 4) */
	uint16_t out_blocks; /* ceil(out_count / 16) */
	uint16_t out_count;
	int8_t *packed;      /* [out_blocks][in_groups][16 outputs][4 inputs], zero padded */
	int32_t *biases;     /* [out_blocks * 16], zero padded */
	uint32_t requant_mult;
	uint8_t requant_shift;
	int32_t saturate;    /* hidden layers: acc >= saturate requantizes to 127 */
};

struct model_fast {
	bool trees_ready;
	bool mlp_ready;
	uint16_t roots[MODEL_MAX_OUTPUTS];
	struct fast_node *nodes;
	uint8_t layer_count;
	struct fast_layer layers[MODEL_MAX_LAYERS];
};

/* --- trees ------------------------------------------------------------------ */

static int16_t quantize_one(const struct model_feature *f, double x)
{
	return model_quantize_norm(model_feature_normalize(f, x));
}

/* A total order on doubles as int64 (-0 and +0 meet at 0), and back. */
static int64_t double_key(double d)
{
	int64_t i;

	memcpy(&i, &d, sizeof(i));
	return i >= 0 ? i : (int64_t)((uint64_t)INT64_MIN - (uint64_t)i);
}

static double key_double(int64_t k)
{
	int64_t i = k >= 0 ? k : (int64_t)((uint64_t)INT64_MIN - (uint64_t)k);
	double d;

	memcpy(&d, &i, sizeof(d));
	return d;
}

/* The smallest x in [min, max] with q(x) > threshold, or +-inf when there is none/all are. */
static double raw_bound(const struct model_feature *f, int16_t threshold)
{
	int64_t lo, hi;

	if (quantize_one(f, f->min) > threshold)
		return -INFINITY;
	if (quantize_one(f, f->max) <= threshold)
		return INFINITY;
	lo = double_key(f->min); /* q(lo) <= threshold < q(hi) */
	hi = double_key(f->max);
	while ((uint64_t)hi - (uint64_t)lo > 1) {
		int64_t mid = (int64_t)((uint64_t)lo + ((uint64_t)hi - (uint64_t)lo) / 2);

		if (quantize_one(f, key_double(mid)) <= threshold)
			lo = mid;
		else
			hi = mid;
	}
	return key_double(hi);
}

/* Nodes whose indexes the loader would refuse leave the compiled trees unready. */
static int compile_trees(const struct model *m, struct model_fast *fast)
{
	unsigned total = 0;

	for (unsigned t = 0; t < m->output_count; t++) {
		if (!m->trees[t].nodes)
			return 0;
		total += m->trees[t].node_count;
	}
	if (total > UINT16_MAX)
		return 0;
	fast->nodes = calloc(total, sizeof(*fast->nodes));
	if (!fast->nodes)
		return -ENOMEM;
	total = 0;
	for (unsigned t = 0; t < m->output_count; t++) {
		const struct model_tree *tree = &m->trees[t];

		fast->roots[t] = (uint16_t)total;
		for (unsigned j = 0; j < tree->node_count; j++) {
			const struct model_tree_node *nd = &tree->nodes[j];
			struct fast_node *fn = &fast->nodes[total + j];

			fn->leaf_value = nd->leaf_value;
			if (nd->feature_idx == MODEL_LEAF) {
				fn->bound = INFINITY;
				fn->left = fn->right = (uint16_t)(total + j);
				continue;
			}
			if (nd->feature_idx >= m->feature_count || nd->left >= tree->node_count ||
			    nd->right >= tree->node_count)
				return 0;
			fn->feature = nd->feature_idx;
			fn->bound = raw_bound(&m->features[nd->feature_idx], nd->threshold);
			fn->left = (uint16_t)(total + nd->left);
			fn->right = (uint16_t)(total + nd->right);
		}
		total += tree->node_count;
	}
	fast->trees_ready = true;
	return 0;
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* x[i] = raw input of model feature i clamped to [min, max], NaN -> min. */
static void gather_clamped(const struct model *m, const double *raw, const int *map, double *x)
{
	for (unsigned i = 0; i < m->feature_count; i++) {
		double v = raw[map ? map[i] : (int)i];
		double lo = m->features[i].min, hi = m->features[i].max;

		v = v > lo ? v : lo;
		x[i] = v < hi ? v : hi;
	}
}

static void decide_trees(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	const struct model_fast *fast = m->fast;
	const struct fast_node *nodes = fast->nodes;
	unsigned idx[MODEL_MAX_OUTPUTS];
	double x[MODEL_MAX_FEATURES];

	gather_clamped(m, raw, map, x);
	for (unsigned t = 0; t < m->output_count; t++)
		idx[t] = fast->roots[t];
	/* Step-major, so the trees' dependent loads overlap. */
	for (unsigned step = 0; step < m->max_depth; step++)
		for (unsigned t = 0; t < m->output_count; t++) {
			const struct fast_node *n = &nodes[idx[t]];
			unsigned left = -(unsigned)(x[n->feature] < n->bound);

			idx[t] = (n->left & left) | (n->right & ~left);
		}
	for (unsigned t = 0; t < m->output_count; t++)
		value[t] = clamp32(nodes[idx[t]].leaf_value, m->outputs[t].qmin, m->outputs[t].qmax);
}

/* --- MLP: packing ------------------------------------------------------------- */

/* Smallest acc whose requantized value exceeds 127 (INT32_MAX: none can). */
static int32_t saturation_point(uint32_t mult, uint8_t shift)
{
	unsigned __int128 need, sat;

	if (!mult || shift < 1 || shift > 62)
		return INT32_MAX;
	need = ((unsigned __int128)128 << shift) - ((unsigned __int128)1 << (shift - 1));
	sat = (need + mult - 1) / mult;
	return sat > INT32_MAX ? INT32_MAX : (int32_t)sat;
}

static int pack_layer(const struct model_layer *ly, struct fast_layer *fl)
{
	size_t blocks, groups;

	fl->in_groups = (uint16_t)((ly->in_count + GROUP - 1) / GROUP);
	fl->out_blocks = (uint16_t)((ly->out_count + BLOCK - 1) / BLOCK);
	fl->out_count = ly->out_count;
	fl->requant_mult = ly->requant_mult;
	fl->requant_shift = ly->requant_shift;
	fl->saturate = saturation_point(ly->requant_mult, ly->requant_shift);
	blocks = fl->out_blocks;
	groups = fl->in_groups;
	fl->packed = aligned_alloc(64, blocks * groups * BLOCK * GROUP);
	fl->biases = aligned_alloc(64, blocks * BLOCK * sizeof(int32_t));
	if (!fl->packed || !fl->biases)
		return -ENOMEM;
	memset(fl->packed, 0, blocks * groups * BLOCK * GROUP);
	memset(fl->biases, 0, blocks * BLOCK * sizeof(int32_t));
	for (unsigned o = 0; o < ly->out_count; o++) {
		fl->biases[o] = ly->biases[o];
		for (unsigned i = 0; i < ly->in_count; i++) {
			size_t at = (((size_t)(o / BLOCK) * groups + i / GROUP) * BLOCK + o % BLOCK) * GROUP +
				    i % GROUP;

			fl->packed[at] = ly->weights[(size_t)o * ly->in_count + i];
		}
	}
	return 0;
}

/* Layers that do not chain (a model still being built) leave the MLP unready. */
static int compile_mlp(const struct model *m, struct model_fast *fast)
{
	if (!m->layer_count || m->layers[0].in_count != m->feature_count ||
	    m->layers[m->layer_count - 1].out_count != m->output_count)
		return 0;
	for (unsigned l = 0; l < m->layer_count; l++) {
		const struct model_layer *ly = &m->layers[l];

		if (!ly->weights || !ly->biases || (l && ly->in_count != m->layers[l - 1].out_count))
			return 0;
		if (l + 1 < m->layer_count && (ly->requant_shift < 1 || ly->requant_shift > 62))
			return 0;
	}
	for (unsigned l = 0; l < m->layer_count; l++) {
		fast->layer_count = (uint8_t)(l + 1); /* so model_fast_free releases a partial layer */
		if (pack_layer(&m->layers[l], &fast->layers[l]))
			return -ENOMEM;
	}
	fast->mlp_ready = true;
	return 0;
}

/* --- MLP: kernels --------------------------------------------------------------- */

/*
 * One layer: acc[o] = bias[o] + sum_i w[o][i] * in[i] over the packed blocks, then
 * either act[o] = requantized ReLU (hidden layers) or acc kept (act == NULL). in holds
 * in_groups * 4 activations in 0..127, padding zero; act gets out_blocks * 16.
 */
typedef void layer_fn(const struct fast_layer *fl, const uint8_t *in, uint8_t *act, int32_t *acc);

static uint8_t requant_one(const struct fast_layer *fl, int32_t acc)
{
	int64_t v;

	if (acc < 0)
		acc = 0;
	v = ((int64_t)acc * fl->requant_mult + ((int64_t)1 << (fl->requant_shift - 1))) >>
	    fl->requant_shift;
	return (uint8_t)(v > 127 ? 127 : v);
}

static void layer_scalar(const struct fast_layer *fl, const uint8_t *in, uint8_t *act, int32_t *acc)
{
	for (unsigned b = 0; b < fl->out_blocks; b++) {
		const int8_t *w = fl->packed + (size_t)b * fl->in_groups * BLOCK * GROUP;
		int32_t sum[BLOCK];

		memcpy(sum, fl->biases + b * BLOCK, sizeof(sum));
		for (unsigned g = 0; g < fl->in_groups; g++, w += BLOCK * GROUP)
			for (unsigned o = 0; o < BLOCK; o++)
				for (unsigned k = 0; k < GROUP; k++)
					sum[o] += (int32_t)w[o * GROUP + k] * in[g * GROUP + k];
		for (unsigned o = 0; o < BLOCK; o++) {
			if (act)
				act[b * BLOCK + o] = requant_one(fl, sum[o]);
			else
				acc[b * BLOCK + o] = sum[o];
		}
	}
}

static uint32_t load4(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* 8 int32 lanes -> requantized activations in the low byte of each lane. */
__attribute__((target("avx2"))) static __m256i requant_avx2(const struct fast_layer *fl, __m256i acc)
{
	const __m256i mult = _mm256_set1_epi64x(fl->requant_mult);
	const __m256i round = _mm256_set1_epi64x((int64_t)1 << (fl->requant_shift - 1));
	const __m128i shift = _mm_cvtsi32_si128(fl->requant_shift);
	__m256i sat, even, odd, v;

	acc = _mm256_max_epi32(acc, _mm256_setzero_si256());
	sat = _mm256_cmpgt_epi32(acc, _mm256_set1_epi32(fl->saturate - 1));
	even = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(acc, mult), round), shift);
	odd = _mm256_srl_epi64(_mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(acc, 32), mult), round),
			       shift);
	/* Below the saturation point every value is < 128, so the low 32 bits are exact. */
	v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xaa);
	return _mm256_blendv_epi8(v, _mm256_set1_epi32(127), sat);
}

__attribute__((target("avx2"))) static void layer_avx2(const struct fast_layer *fl, const uint8_t *in,
						      uint8_t *act, int32_t *acc)
{
	const __m256i ones = _mm256_set1_epi16(1);

	for (unsigned b = 0; b < fl->out_blocks; b++) {
		const int8_t *w = fl->packed + (size_t)b * fl->in_groups * BLOCK * GROUP;
		__m256i lo[2], hi[2];
		unsigned g;

		lo[0] = _mm256_load_si256((const __m256i *)(fl->biases + b * BLOCK));
		hi[0] = _mm256_load_si256((const __m256i *)(fl->biases + b * BLOCK + 8));
		lo[1] = hi[1] = _mm256_setzero_si256();
		/* |in| <= 127 and |w| <= 128: a pair sum fits vpmaddubsw's int16 unsaturated. */
		for (g = 0; g < fl->in_groups; g++, w += BLOCK * GROUP) {
			__m256i a = _mm256_set1_epi32((int32_t)load4(in + g * GROUP));
			__m256i pl = _mm256_maddubs_epi16(a, _mm256_load_si256((const __m256i *)w));
			__m256i ph = _mm256_maddubs_epi16(a, _mm256_load_si256((const __m256i *)(w + 32)));

			lo[g & 1] = _mm256_add_epi32(lo[g & 1], _mm256_madd_epi16(pl, ones));
			hi[g & 1] = _mm256_add_epi32(hi[g & 1], _mm256_madd_epi16(ph, ones));
		}
		lo[0] = _mm256_add_epi32(lo[0], lo[1]);
		hi[0] = _mm256_add_epi32(hi[0], hi[1]);
		if (!act) {
			_mm256_storeu_si256((__m256i *)(acc + b * BLOCK), lo[0]);
			_mm256_storeu_si256((__m256i *)(acc + b * BLOCK + 8), hi[0]);
			continue;
		}
		{
			__m256i v16 = _mm256_packs_epi32(requant_avx2(fl, lo[0]), requant_avx2(fl, hi[0]));

			/* packs interleaves 128-bit lanes: put outputs 0..7 before 8..15 again. */
			v16 = _mm256_permute4x64_epi64(v16, 0xd8);
			_mm_storeu_si128((__m128i *)(act + b * BLOCK),
					 _mm_packus_epi16(_mm256_castsi256_si128(v16),
							  _mm256_extracti128_si256(v16, 1)));
		}
	}
}

#define VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni"

__attribute__((target(VNNI_TARGET))) static void layer_vnni(const struct fast_layer *fl,
							    const uint8_t *in, uint8_t *act, int32_t *acc)
{
	for (unsigned b = 0; b < fl->out_blocks; b++) {
		const int8_t *w = fl->packed + (size_t)b * fl->in_groups * BLOCK * GROUP;
		__m512i sum[4] = { _mm512_load_si512(fl->biases + b * BLOCK), _mm512_setzero_si512(),
				   _mm512_setzero_si512(), _mm512_setzero_si512() };

		/* Four accumulators: vpdpbusd's latency, not its throughput, bounds one chain. */
		for (unsigned g = 0; g < fl->in_groups; g++, w += BLOCK * GROUP)
			sum[g & 3] = _mm512_dpbusd_epi32(sum[g & 3], _mm512_set1_epi32((int32_t)load4(in + g * GROUP)),
						      _mm512_load_si512(w));
		sum[0] = _mm512_add_epi32(_mm512_add_epi32(sum[0], sum[1]), _mm512_add_epi32(sum[2], sum[3]));
		if (!act) {
			_mm512_storeu_si512(acc + b * BLOCK, sum[0]);
			continue;
		}
		{
			const __m512i mult = _mm512_set1_epi64(fl->requant_mult);
			const __m512i round = _mm512_set1_epi64((int64_t)1 << (fl->requant_shift - 1));
			const __m128i shift = _mm_cvtsi32_si128(fl->requant_shift);
			__m512i a = _mm512_max_epi32(sum[0], _mm512_setzero_si512());
			__mmask16 sat = _mm512_cmpge_epi32_mask(a, _mm512_set1_epi32(fl->saturate));
			__m512i even = _mm512_srl_epi64(_mm512_add_epi64(_mm512_mul_epu32(a, mult), round), shift);
			__m512i odd = _mm512_srl_epi64(
				_mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(a, 32), mult), round), shift);
			__m512i v = _mm512_mask_blend_epi32(0xaaaa, even, _mm512_slli_epi64(odd, 32));

			v = _mm512_mask_mov_epi32(v, sat, _mm512_set1_epi32(127));
			_mm_storeu_si128((__m128i *)(act + b * BLOCK), _mm512_cvtepi32_epi8(v));
		}
	}
}

static layer_fn *const layer_fns[MODEL_PATH_COUNT] = {
	[MODEL_PATH_SCALAR] = layer_scalar,
	[MODEL_PATH_AVX2] = layer_avx2,
	[MODEL_PATH_AVX512_VNNI] = layer_vnni,
};

static void decide_mlp(const struct model *m, const double *raw, const int *map, int32_t *value,
		       layer_fn *layer)
{
	const struct model_fast *fast = m->fast;
	_Alignas(64) uint8_t act[2][MODEL_MAX_UNITS];
	_Alignas(64) int32_t acc[MODEL_MAX_UNITS];
	unsigned cur = 0;

	memset(act[0], 0, fast->layers[0].in_groups * GROUP);
	for (unsigned i = 0; i < m->feature_count; i++) {
		int32_t q = quantize_one(&m->features[i], raw[map ? map[i] : (int)i]);

		act[0][i] = (uint8_t)((q * 127 + MODEL_Q_MAX / 2) / MODEL_Q_MAX);
	}
	for (unsigned l = 0; l + 1 < fast->layer_count; l++, cur ^= 1)
		layer(&fast->layers[l], act[cur], act[cur ^ 1], NULL);
	layer(&fast->layers[fast->layer_count - 1], act[cur], NULL, acc);
	for (unsigned o = 0; o < m->output_count; o++)
		value[o] = clamp32(acc[o], m->outputs[o].qmin, m->outputs[o].qmax);
}

/* --- dispatch ----------------------------------------------------------------- */

bool model_path_supported(enum model_path path)
{
	switch (path) {
	case MODEL_PATH_SCALAR:
		return true;
	case MODEL_PATH_AVX2:
		return __builtin_cpu_supports("avx2");
	case MODEL_PATH_AVX512_VNNI:
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
	default:
		return false;
	}
}

enum model_path model_path_best(void)
{
	static int best = -1;

	if (best < 0) {
		enum model_path p = MODEL_PATH_SCALAR;

		if (model_path_supported(MODEL_PATH_AVX512_VNNI))
			p = MODEL_PATH_AVX512_VNNI;
		else if (model_path_supported(MODEL_PATH_AVX2))
			p = MODEL_PATH_AVX2;
		__atomic_store_n(&best, (int)p, __ATOMIC_RELAXED);
	}
	return (enum model_path)__atomic_load_n(&best, __ATOMIC_RELAXED);
}

const char *model_path_name(enum model_path path)
{
	switch (path) {
	case MODEL_PATH_SCALAR:
		return "scalar";
	case MODEL_PATH_AVX2:
		return "avx2";
	case MODEL_PATH_AVX512_VNNI:
		return "avx512-vnni";
	default:
		return "?";
	}
}

/* Without a compiled form (a model still being built): the reference path. */
static void decide_reference(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	int16_t q[MODEL_MAX_FEATURES];

	model_quantize(m, raw, map, q);
	model_eval(m, q, value);
}

int model_decide_path(const struct model *m, const double *raw, const int *map, int32_t *value,
		      enum model_path path)
{
	if ((unsigned)path >= MODEL_PATH_COUNT || !model_path_supported(path))
		return -ENOTSUP;
	if (m->kind == MODEL_KIND_TREES && m->fast && m->fast->trees_ready)
		decide_trees(m, raw, map, value);
	else if (m->kind == MODEL_KIND_MLP && m->fast && m->fast->mlp_ready)
		decide_mlp(m, raw, map, value, layer_fns[path]);
	else
		decide_reference(m, raw, map, value);
	return 0;
}

void model_decide(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	model_decide_path(m, raw, map, value, model_path_best());
}

/* --- life cycle ------------------------------------------------------------------ */

static void fast_release(struct model_fast *fast)
{
	if (!fast)
		return;
	free(fast->nodes);
	for (unsigned l = 0; l < fast->layer_count; l++) {
		free(fast->layers[l].packed);
		free(fast->layers[l].biases);
	}
	free(fast);
}

void model_fast_free(struct model *m)
{
	fast_release(m->fast);
	m->fast = NULL;
}

int model_fast_prepare(struct model *m)
{
	struct model_fast *fast = calloc(1, sizeof(*fast));
	int rc;

	model_fast_free(m);
	if (!fast)
		return -ENOMEM;
	rc = m->kind == MODEL_KIND_TREES ? compile_trees(m, fast) : compile_mlp(m, fast);
	if (rc) {
		fast_release(fast);
		return rc;
	}
	m->fast = fast;
	return 0;
}
