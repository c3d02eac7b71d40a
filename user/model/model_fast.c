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
	uint16_t in_count;
	uint16_t out_count;
	const int8_t *rows;  /* the model's weights, [out_count][in_count] */
	int8_t *packed;      /* [out_blocks][in_groups][16 outputs][4 inputs], zero padded */
	int32_t *biases;     /* [out_blocks * 16], zero padded */
	uint32_t requant_mult;
	uint8_t requant_shift;
	int32_t saturate;    /* hidden layers: acc >= saturate requantizes to 127 */
};

/*
 * A tree of max_depth <= HEAP_MAX_DEPTH as a complete binary tree in heap order
 * (children of i at 2i+1, 2i+2), shorter branches padded with always-left nodes: all
 * comparisons are independent, and the walk is bit arithmetic on their mask.
 */
#define HEAP_MAX_DEPTH 6
#define HEAP_INNER ((1u << HEAP_MAX_DEPTH) - 1)

struct heap_tree {
	/*
	 * Slot h goes left iff !(x >= bound[h]) and bit h of may_left is set, for x the raw
	 * input, unclamped: a finite bound lies in (min, max], so x beyond either end goes
	 * where the clamped value would, and NaN, which clamps to min, goes left as min
	 * does. Only a node that sends even min right (bound -inf) must send NaN right too:
	 * its may_left bit is clear.
	 */
	double bound[HEAP_INNER + 1];    /* one spare, so vectors of 8 never read past */
	uint64_t may_left;
	uint8_t feature[HEAP_INNER + 1];
	int32_t leaf[HEAP_INNER + 1];    /* clamped to the output's bounds */
};

/* The AVX-512 walk holds all features in two registers. */
#define VEC_MAX_FEATURES 16

typedef void decide_fn(const struct model *m, const double *raw, const int *map, int32_t *value);

struct model_fast {
	/* Per path, the compiled decision; NULL while the model is not complete. */
	decide_fn *decide[MODEL_PATH_COUNT];
	bool trees_ready;
	bool mlp_ready;
	uint8_t heap_depth; /* the max_depth the heaps were built for; 0: no heaps */
	struct heap_tree *heaps; /* [output_count] */
	double clamp_min[MODEL_MAX_FEATURES]; /* features' bounds, zero padded */
	double clamp_max[MODEL_MAX_FEATURES];
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

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Heap position h at depth d holds compiled node n (absolute index into fast->nodes). */
static void fill_heap(const struct model_fast *fast, const struct model_output *out,
		      struct heap_tree *heap, unsigned depth, unsigned h, unsigned d, unsigned n)
{
	const struct fast_node *fn = &fast->nodes[n];

	if (d == depth) {
		heap->leaf[h - ((1u << depth) - 1)] = clamp32(fn->leaf_value, out->qmin, out->qmax);
		return;
	}
	heap->feature[h] = (uint8_t)fn->feature;
	/* A leaf's bound, and a node's that every x passes, is +inf: always left. As NaN it
	 * stays so for every x, +inf and NaN included, since !(x >= NaN) always holds. */
	heap->bound[h] = fn->bound == INFINITY ? NAN : fn->bound;
	if (fn->bound != -INFINITY)
		heap->may_left |= (uint64_t)1 << h;
	fill_heap(fast, out, heap, depth, 2 * h + 1, d + 1, fn->left);
	fill_heap(fast, out, heap, depth, 2 * h + 2, d + 1, fn->right);
}

static int compile_heaps(const struct model *m, struct model_fast *fast)
{
	if (m->max_depth < 1 || m->max_depth > HEAP_MAX_DEPTH)
		return 0;
	fast->heaps = calloc(m->output_count, sizeof(*fast->heaps));
	if (!fast->heaps)
		return -ENOMEM;
	for (unsigned t = 0; t < m->output_count; t++)
		fill_heap(fast, &m->outputs[t], &fast->heaps[t], m->max_depth, 0, 0, fast->roots[t]);
	fast->heap_depth = m->max_depth;
	return 0;
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
	return compile_heaps(m, fast);
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

/* h = 2h + 2 - left[h], depth times: bt puts left[h] in the carry, and sbb takes it off
 * the doubled index, two cycles a level where shift, mask and subtract take three or four. */
static inline unsigned heap_walk(uint64_t left, const unsigned depth)
{
	uint64_t h = 0;

	for (unsigned step = 0; step < depth; step++)
		__asm__("bt %[h], %[left]\n\t"
			"lea 2(%[h],%[h]), %[h]\n\t"
			"sbb $0, %[h]"
			: [h] "+r"(h)
			: [left] "r"(left)
			: "cc");
	return (unsigned)h - ((1u << depth) - 1);
}

static void decide_heaps(const struct model *m, const double *x, int32_t *value)
{
	const struct model_fast *fast = m->fast;
	unsigned depth = fast->heap_depth, inner = (1u << depth) - 1;

	for (unsigned t = 0; t < m->output_count; t++) {
		const struct heap_tree *heap = &fast->heaps[t];
		uint64_t left = 0;

		for (unsigned j = 0; j < inner; j++)
			left |= (uint64_t)!(x[heap->feature[j]] >= heap->bound[j]) << j;
		value[t] = heap->leaf[heap_walk(left, depth)];
	}
}

#define AVX512_TARGET "avx512f,avx512bw,avx512vl"

/* The raw inputs of model features first.. first+count-1 (count <= 8), unclamped (see
 * struct heap_tree). Through a map, scalar loads: vgatherdpd costs more here. */
__attribute__((target(AVX512_TARGET))) static __m512d load8(const double *raw, const int *map,
							   unsigned first, unsigned count)
{
#define AT(i) ((i) < count ? raw[map[first + (i)]] : 0.0)
	if (!map)
		return _mm512_maskz_loadu_pd((__mmask8)((1u << count) - 1), raw + first);
	return _mm512_set_pd(AT(7), AT(6), AT(5), AT(4), AT(3), AT(2), AT(1), AT(0));
#undef AT
}

/* Heap slots 8v..8v+7 of a tree: their features permuted out of two registers, and a
 * bit set for each that goes left. */
__attribute__((target(AVX512_TARGET), always_inline)) static inline __mmask8
left8(const struct heap_tree *heap, __m512d lo, __m512d hi, unsigned v)
{
	__m512i idx = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(heap->feature + 8 * v)));
	__m512d x = _mm512_permutex2var_pd(lo, idx, hi);

	return _mm512_cmp_pd_mask(x, _mm512_loadu_pd(heap->bound + 8 * v), _CMP_NGE_UQ);
}

/* All of a tree's comparisons at once. Inlined once per depth, so every loop here has a
 * constant trip count; up to depth 4 a tree's mask is one mask register. */
__attribute__((target(AVX512_TARGET), always_inline)) static inline void
heaps_avx512(const struct model *m, __m512d lo, __m512d hi, int32_t *value, const unsigned depth)
{
	const struct model_fast *fast = m->fast;
	const unsigned vecs = ((1u << depth) - 1 + 7) / 8;

	for (unsigned t = 0; t < m->output_count; t++) {
		const struct heap_tree *heap = &fast->heaps[t];
		uint64_t left = 0;

		if (vecs == 1)
			left = (uint8_t)left8(heap, lo, hi, 0) & heap->may_left;
		else if (vecs == 2)
			left = _cvtmask16_u32(_mm512_kunpackb(left8(heap, lo, hi, 1), left8(heap, lo, hi, 0))) &
			       heap->may_left;
		else {
			for (unsigned v = 0; v < vecs; v++)
				left |= (uint64_t)(uint8_t)left8(heap, lo, hi, v) << (8 * v);
			left &= heap->may_left;
		}
		value[t] = heap->leaf[heap_walk(left, depth)];
	}
}

/* One entry per depth, chosen when the model is prepared: no switch per decision. */
#define DECIDE_HEAPS_AVX512(depth)                                                                  \
	__attribute__((target(AVX512_TARGET))) static void decide_heaps_avx512_##depth(               \
		const struct model *m, const double *raw, const int *map, int32_t *value)               \
	{                                                                                           \
		unsigned n = m->feature_count;                                                      \
		__m512d lo = load8(raw, map, 0, n < 8 ? n : 8);                                     \
		__m512d hi = n > 8 ? load8(raw, map, 8, n - 8) : _mm512_setzero_pd();               \
                                                                                                    \
		heaps_avx512(m, lo, hi, value, depth);                                              \
	}
DECIDE_HEAPS_AVX512(1)
DECIDE_HEAPS_AVX512(2)
DECIDE_HEAPS_AVX512(3)
DECIDE_HEAPS_AVX512(4)
DECIDE_HEAPS_AVX512(5)
DECIDE_HEAPS_AVX512(6)
#undef DECIDE_HEAPS_AVX512

static decide_fn *const decide_heaps_avx512[HEAP_MAX_DEPTH + 1] = {
	NULL, decide_heaps_avx512_1, decide_heaps_avx512_2, decide_heaps_avx512_3,
	decide_heaps_avx512_4, decide_heaps_avx512_5, decide_heaps_avx512_6,
};

/* Scalar and AVX2: the heaps' masks, or the compiled nodes' walk for deeper trees. */
static void decide_trees(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	const struct model_fast *fast = m->fast;
	const struct fast_node *nodes = fast->nodes;
	unsigned idx[MODEL_MAX_OUTPUTS];
	double x[MODEL_MAX_FEATURES];

	if (fast->heap_depth) {
		gather_clamped(m, raw, map, x);
		decide_heaps(m, x, value);
		return;
	}
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
	fl->in_count = ly->in_count;
	fl->out_count = ly->out_count;
	fl->rows = ly->weights;
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

/* Portable: row-major dot products over the model's own weights, which compilers
 * vectorize well (the packed layout would need shuffles without SIMD intrinsics). */
static void layer_scalar(const struct fast_layer *fl, const uint8_t *in, uint8_t *act, int32_t *acc)
{
	unsigned padded = fl->out_blocks * BLOCK;

	for (unsigned o = 0; o < padded; o++) {
		const int8_t *w = fl->rows + (size_t)o * fl->in_count;
		int32_t sum = 0;

		if (o < fl->out_count) {
			sum = fl->biases[o];
			for (unsigned i = 0; i < fl->in_count; i++)
				sum += w[i] * in[i];
		}
		if (act)
			act[o] = requant_one(fl, sum);
		else
			acc[o] = sum;
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
#define MADD(k, half) _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi32((int32_t)load4(in + (g + (k)) * GROUP)), \
							   _mm256_load_si256((const __m256i *)(w + (k) * BLOCK * GROUP + 32 * (half)))), ones)
		for (g = 0; g + 2 <= fl->in_groups; g += 2, w += 2 * BLOCK * GROUP) {
			lo[0] = _mm256_add_epi32(lo[0], MADD(0, 0));
			hi[0] = _mm256_add_epi32(hi[0], MADD(0, 1));
			lo[1] = _mm256_add_epi32(lo[1], MADD(1, 0));
			hi[1] = _mm256_add_epi32(hi[1], MADD(1, 1));
		}
		if (g < fl->in_groups) {
			lo[0] = _mm256_add_epi32(lo[0], MADD(0, 0));
			hi[0] = _mm256_add_epi32(hi[0], MADD(0, 1));
		}
#undef MADD
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
		unsigned g = 0;

#define DPBUSD(k) _mm512_dpbusd_epi32(sum[k], _mm512_set1_epi32((int32_t)load4(in + (g + (k)) * GROUP)), \
				      _mm512_load_si512(w + (k) * BLOCK * GROUP))
		/* Four accumulators: vpdpbusd's latency, not its throughput, bounds one chain. */
		for (; g + 4 <= fl->in_groups; g += 4, w += 4 * BLOCK * GROUP) {
			sum[0] = DPBUSD(0);
			sum[1] = DPBUSD(1);
			sum[2] = DPBUSD(2);
			sum[3] = DPBUSD(3);
		}
		for (; g < fl->in_groups; g++, w += BLOCK * GROUP)
			sum[0] = DPBUSD(0);
#undef DPBUSD
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

/* act[i] = the first layer's input of feature i: quantized, then at scale 1/127. */
typedef void input_fn(const struct model *m, const double *raw, const int *map, uint8_t *act);

static void inputs_scalar(const struct model *m, const double *raw, const int *map, uint8_t *act)
{
	for (unsigned i = 0; i < m->feature_count; i++) {
		int32_t q = quantize_one(&m->features[i], raw[map ? map[i] : (int)i]);

		act[i] = (uint8_t)((q * 127 + MODEL_Q_MAX / 2) / MODEL_Q_MAX);
	}
}

/* The same IEEE operations as model_feature_normalize and model_quantize_norm, 8 lanes
 * at a time, their branches as masks. (q * 127 + 16383) / 32767 is exact in double:
 * the numerator is below 2^23, so the quotient never rounds across an integer. */
__attribute__((target(AVX512_TARGET))) static void inputs_avx512(const struct model *m, const double *raw,
								const int *map, uint8_t *act)
{
	const __m512d one = _mm512_set1_pd(1.0), qmax = _mm512_set1_pd(MODEL_Q_MAX);

	for (unsigned first = 0; first < m->feature_count; first += 8) {
		unsigned n = m->feature_count - first;
		__mmask8 k = (__mmask8)(n >= 8 ? 0xff : (1u << n) - 1);
		__m512d lo = _mm512_loadu_pd(m->fast->clamp_min + first);
		__m512d hi = _mm512_loadu_pd(m->fast->clamp_max + first);
		__m512d x, norm, q, a;

		if (map)
			x = _mm512_mask_i32gather_pd(_mm512_setzero_pd(), k,
						     _mm256_maskz_loadu_epi32(k, map + first), raw, 8);
		else
			x = _mm512_maskz_loadu_pd(k, raw + first);
		norm = _mm512_div_pd(_mm512_sub_pd(x, lo), _mm512_sub_pd(hi, lo));
		norm = _mm512_mask_mov_pd(norm, _mm512_cmp_pd_mask(x, hi, _CMP_GE_OQ), one);
		norm = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, lo, _CMP_GT_OQ), norm); /* NaN: 0 */
		q = _mm512_roundscale_pd(_mm512_add_pd(_mm512_mul_pd(norm, qmax), _mm512_set1_pd(0.5)),
					 _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
		q = _mm512_mask_mov_pd(q, _mm512_cmp_pd_mask(norm, one, _CMP_GE_OQ), qmax);
		q = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(norm, _mm512_setzero_pd(), _CMP_GT_OQ), q);
		a = _mm512_add_pd(_mm512_mul_pd(q, _mm512_set1_pd(127)), _mm512_set1_pd(MODEL_Q_MAX / 2));
		a = _mm512_roundscale_pd(_mm512_div_pd(a, qmax), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
		_mm_mask_storeu_epi8(act + first, k, _mm256_cvtepi32_epi8(_mm512_cvttpd_epi32(a)));
	}
}

/* inputs_avx512 four lanes at a time; the last count % 4 features go the scalar way. */
__attribute__((target("avx2"))) static void inputs_avx2(const struct model *m, const double *raw,
						       const int *map, uint8_t *act)
{
	const __m256d one = _mm256_set1_pd(1.0), qmax = _mm256_set1_pd(MODEL_Q_MAX), zero = _mm256_setzero_pd();
	unsigned first = 0;

	for (; first + 4 <= m->feature_count; first += 4) {
		__m256d lo = _mm256_loadu_pd(m->fast->clamp_min + first);
		__m256d hi = _mm256_loadu_pd(m->fast->clamp_max + first);
		__m256d x, norm, q, a;
		__m128i bytes;

		if (map)
			x = _mm256_i32gather_pd(raw, _mm_loadu_si128((const __m128i *)(map + first)), 8);
		else
			x = _mm256_loadu_pd(raw + first);
		norm = _mm256_div_pd(_mm256_sub_pd(x, lo), _mm256_sub_pd(hi, lo));
		norm = _mm256_blendv_pd(norm, one, _mm256_cmp_pd(x, hi, _CMP_GE_OQ));
		norm = _mm256_and_pd(norm, _mm256_cmp_pd(x, lo, _CMP_GT_OQ)); /* NaN: 0 */
		q = _mm256_round_pd(_mm256_add_pd(_mm256_mul_pd(norm, qmax), _mm256_set1_pd(0.5)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
		q = _mm256_blendv_pd(q, qmax, _mm256_cmp_pd(norm, one, _CMP_GE_OQ));
		q = _mm256_and_pd(q, _mm256_cmp_pd(norm, zero, _CMP_GT_OQ));
		a = _mm256_add_pd(_mm256_mul_pd(q, _mm256_set1_pd(127)), _mm256_set1_pd(MODEL_Q_MAX / 2));
		a = _mm256_round_pd(_mm256_div_pd(a, qmax), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
		bytes = _mm256_cvttpd_epi32(a);
		bytes = _mm_packus_epi16(_mm_packs_epi32(bytes, bytes), bytes);
		_mm_storeu_si32(act + first, bytes);
	}
	for (; first < m->feature_count; first++)
		act[first] = (uint8_t)((quantize_one(&m->features[first], raw[map ? map[first] : (int)first]) * 127 +
					MODEL_Q_MAX / 2) / MODEL_Q_MAX);
}

static input_fn *const input_fns[MODEL_PATH_COUNT] = {
	[MODEL_PATH_SCALAR] = inputs_scalar,
	[MODEL_PATH_AVX2] = inputs_avx2,
	[MODEL_PATH_AVX512_VNNI] = inputs_avx512,
};

static layer_fn *const layer_fns[MODEL_PATH_COUNT] = {
	[MODEL_PATH_SCALAR] = layer_scalar,
	[MODEL_PATH_AVX2] = layer_avx2,
	[MODEL_PATH_AVX512_VNNI] = layer_vnni,
};

__attribute__((noinline)) static void decide_mlp(const struct model *m, const double *raw, const int *map, int32_t *value,
		       enum model_path path)
{
	layer_fn *layer = layer_fns[path];
	const struct model_fast *fast = m->fast;
	_Alignas(64) uint8_t act[2][MODEL_MAX_UNITS];
	_Alignas(64) int32_t acc[MODEL_MAX_UNITS];
	unsigned cur = 0;

	memset(act[0], 0, fast->layers[0].in_groups * GROUP);
	input_fns[path](m, raw, map, act[0]);
	for (unsigned l = 0; l + 1 < fast->layer_count; l++, cur ^= 1)
		layer(&fast->layers[l], act[cur], act[cur ^ 1], NULL);
	layer(&fast->layers[fast->layer_count - 1], act[cur], NULL, acc);
	for (unsigned o = 0; o < m->output_count; o++)
		value[o] = clamp32(acc[o], m->outputs[o].qmin, m->outputs[o].qmax);
}

static void decide_mlp_scalar(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	decide_mlp(m, raw, map, value, MODEL_PATH_SCALAR);
}

static void decide_mlp_avx2(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	decide_mlp(m, raw, map, value, MODEL_PATH_AVX2);
}

static void decide_mlp_vnni(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	decide_mlp(m, raw, map, value, MODEL_PATH_AVX512_VNNI);
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

/* Without a compiled form (a model still being built): the reference path. Not inlined,
 * so the compiled paths' callers need no stack frame for its arrays. */
__attribute__((noinline)) static void decide_reference(const struct model *m, const double *raw,
							 const int *map, int32_t *value)
{
	int16_t q[MODEL_MAX_FEATURES];

	model_quantize(m, raw, map, q);
	model_eval(m, q, value);
}

static void decide(const struct model *m, const double *raw, const int *map, int32_t *value,
		   enum model_path path)
{
	decide_fn *fn = m->fast ? m->fast->decide[path] : NULL;

	if (fn)
		fn(m, raw, map, value);
	else
		decide_reference(m, raw, map, value);
}

int model_decide_path(const struct model *m, const double *raw, const int *map, int32_t *value,
		      enum model_path path)
{
	if ((unsigned)path >= MODEL_PATH_COUNT || !model_path_supported(path))
		return -ENOTSUP;
	decide(m, raw, map, value, path);
	return 0;
}

void model_decide(const struct model *m, const double *raw, const int *map, int32_t *value)
{
	decide(m, raw, map, value, model_path_best());
}

/* --- life cycle ------------------------------------------------------------------ */

static void choose_paths(const struct model *m, struct model_fast *fast)
{
	if (fast->trees_ready) {
		fast->decide[MODEL_PATH_SCALAR] = fast->decide[MODEL_PATH_AVX2] = decide_trees;
		fast->decide[MODEL_PATH_AVX512_VNNI] = fast->heap_depth && m->feature_count <= VEC_MAX_FEATURES ?
							       decide_heaps_avx512[fast->heap_depth] :
							       decide_trees;
	} else if (fast->mlp_ready) {
		fast->decide[MODEL_PATH_SCALAR] = decide_mlp_scalar;
		fast->decide[MODEL_PATH_AVX2] = decide_mlp_avx2;
		fast->decide[MODEL_PATH_AVX512_VNNI] = decide_mlp_vnni;
	}
}

static void fast_release(struct model_fast *fast)
{
	if (!fast)
		return;
	free(fast->nodes);
	free(fast->heaps);
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
	for (unsigned i = 0; i < m->feature_count; i++) {
		fast->clamp_min[i] = m->features[i].min;
		fast->clamp_max[i] = m->features[i].max;
	}
	rc = m->kind == MODEL_KIND_TREES ? compile_trees(m, fast) : compile_mlp(m, fast);
	if (rc) {
		fast_release(fast);
		return rc;
	}
	choose_paths(m, fast);
	m->fast = fast;
	return 0;
}
