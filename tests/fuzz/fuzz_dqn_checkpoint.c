// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * The DQN checkpoint loader on arbitrary bytes. The input's last four bytes are
 * replaced by the CRC32 of the rest before loading, so mutations reach the field
 * parser instead of stopping at the checksum; an accepted checkpoint must save
 * and load back to the same network.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dqn/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_resave(const struct dqn_trainer *tr)
{
	char path[] = "/tmp/fuzz_dqn_checkpoint.XXXXXX";
	struct reflex_err err = { 0 };
	struct dqn_trainer *back = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	close(fd);
	if (dqn_checkpoint_save(tr, path, &err) ||
	    dqn_checkpoint_load(path, NULL, &back, &err)) {
		fprintf(stderr, "accepted checkpoint does not round-trip: %s\n", err.msg);
		abort();
	}
	unlink(path);
	if (memcmp(dqn_trainer_net(tr)->params, dqn_trainer_net(back)->params,
		   dqn_trainer_net(tr)->n_params * sizeof(float)) != 0)
		abort();
	dqn_trainer_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dqn_trainer *tr = NULL;
	uint8_t *buf;
	struct reflex_err err = { 0 };

	if (size > (1u << 22))
		return 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (size >= 12) {
		uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(size - 4));

		for (int i = 0; i < 4; i++)
			buf[size - 4 + i] = (uint8_t)(crc >> (8 * i));
	}
	if (dqn_checkpoint_load_buffer(buf, size, NULL, &tr, &err) == 0) {
		check_resave(tr);
		dqn_trainer_free(tr);
	} else if (tr || !err.msg[0]) {
		abort(); /* a failure leaves nothing behind and says why */
	}
	free(buf);
	return 0;
}
