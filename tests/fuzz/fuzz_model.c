/*
 * libFuzzer target for the `.reflex` loader (user/model*.c).
 *
 * Each input is loaded twice: as it is, and with file_size and the CRC patched to
 * match, so that mutations get past the integrity checks into the section parsers
 * and the semantic rules. Every model that loads is then evaluated, explained,
 * scored by its anomaly forest and written back: the written file must load again
 * and decide and score identically.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "model/model.h"

static void exercise(const struct model *m, const uint8_t *data, size_t len)
{
	double raw[MODEL_MAX_FEATURES];
	int16_t q[MODEL_MAX_FEATURES], q2[MODEL_MAX_FEATURES];
	int32_t value[MODEL_MAX_OUTPUTS], value2[MODEL_MAX_OUTPUTS];
	struct model_explain ex;
	struct reflex_err err;
	struct model *again = NULL;
	uint8_t *buf;
	size_t out_len;
	char text[1024], meta[64];

	/* Inputs from the file's own bytes: any double, NaN and infinities included. */
	for (unsigned i = 0; i < m->feature_count; i++) {
		uint64_t bits = 0;

		if (len >= 8)
			memcpy(&bits, data + (i * 8) % (len - 7), 8);
		memcpy(&raw[i], &bits, sizeof(raw[i]));
	}
	model_quantize(m, raw, NULL, q);
	model_eval(m, q, value);
	for (unsigned k = 0; k < m->output_count; k++) {
		if (value[k] < m->outputs[k].qmin || value[k] > m->outputs[k].qmax)
			abort();
		(void)model_value_raw(m, k, value[k]);
		if (m->kind == MODEL_KIND_TREES) {
			if (model_explain_tree(m, k, q, &ex) || ex.value != value[k])
				abort();
			model_explain_format(m, k, &ex, raw, text, sizeof(text));
		}
	}
	(void)model_argmax(value, m->output_count);
	if (m->anomaly) {
		double score = model_anomaly_score(m->anomaly, model_anomaly_path_sum(m->anomaly, q));

		if (!(score > 0 && score <= 1))
			abort();
	}
	model_meta_get(m, "created_at", meta, sizeof(meta));
	model_meta_get(m, "lambda", meta, 4);

	if (model_serialize(m, &buf, &out_len, &err))
		abort(); /* a loaded model is valid, so it must serialize */
	if (model_load_buffer(buf, out_len, 0, &again, &err))
		abort();
	model_quantize(again, raw, NULL, q2);
	model_eval(again, q2, value2);
	if (memcmp(q, q2, m->feature_count * sizeof(q[0])) ||
	    memcmp(value, value2, m->output_count * sizeof(value[0])))
		abort();
	if (!m->anomaly != !again->anomaly ||
	    (m->anomaly && model_anomaly_path_sum(m->anomaly, q) != model_anomaly_path_sum(again->anomaly, q2)))
		abort();
	model_free(again);
	free(buf);
}

static void load(const uint8_t *data, size_t len)
{
	struct reflex_err err;
	struct model *m = NULL;

	if (model_load_buffer(data, len, 0, &m, &err) == 0) {
		exercise(m, data, len);
		model_free(m);
	}
	if (model_load_buffer(data, len, MODEL_LOAD_IGNORE_CRC, &m, &err) == 0)
		model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint8_t *patched;

	load(data, len);
	if (len < MODEL_HEADER_SIZE + MODEL_CRC_SIZE || len > MODEL_MAX_FILE_SIZE)
		return 0;
	patched = malloc(len);
	if (!patched)
		return 0;
	memcpy(patched, data, len);
	patched[16] = len & 0xff;
	patched[17] = (len >> 8) & 0xff;
	patched[18] = (len >> 16) & 0xff;
	patched[19] = (len >> 24) & 0xff;
	{
		uint32_t crc = (uint32_t)crc32(0L, patched, (uInt)(len - MODEL_CRC_SIZE));

		for (int i = 0; i < 4; i++)
			patched[len - MODEL_CRC_SIZE + i] = (crc >> (8 * i)) & 0xff;
	}
	load(patched, len);
	free(patched);
	return 0;
}
