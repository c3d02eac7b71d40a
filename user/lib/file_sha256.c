/* Nettle, not OpenSSL: libmicrohttpd's gnutls already maps nettle into reflexd, and
 * libcrypto cost 1.4 MB of its RSS for this one digest. */
#include <nettle/sha2.h>
#include <stdio.h>

#include "lib/file_sha256.h"

int file_sha256_hex(const char *path, char hex[FILE_SHA256_HEX])
{
	unsigned char md[SHA256_DIGEST_SIZE], buf[65536];
	struct sha256_ctx ctx;
	FILE *f = fopen(path, "rb");
	int ret = -1;
	size_t n;

	hex[0] = '\0';
	if (!f)
		return -1;
	sha256_init(&ctx);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sha256_update(&ctx, n, buf);
	if (ferror(f))
		goto out;
	sha256_digest(&ctx, sizeof(md), md);
	for (unsigned i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	ret = 0;
out:
	fclose(f);
	return ret;
}
