#include <openssl/evp.h>
#include <stdio.h>

#include "lib/file_sha256.h"

int file_sha256_hex(const char *path, char hex[FILE_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	int ret = -1;
	size_t n;

	hex[0] = '\0';
	if (!ctx || !f || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (!EVP_DigestUpdate(ctx, buf, n))
			goto out;
	if (ferror(f) || !EVP_DigestFinal_ex(ctx, md, &md_len) || md_len != 32)
		goto out;
	for (unsigned i = 0; i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	ret = 0;
out:
	if (f)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	return ret;
}
