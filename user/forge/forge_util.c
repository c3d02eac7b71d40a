/* Small pieces of reflex-forge: hashes, timestamps, provenance, progress. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha1.h>

#include "forge/forge.h"

#ifndef REFLEX_GIT_DESCRIBE
#define REFLEX_GIT_DESCRIBE "unknown"
#endif

static const char *const recipe_names[] = {
	[RECIPE_BATCHING] = "batching",
	[RECIPE_CWND] = "cwnd",
};

const char *forge_recipe_name(enum forge_recipe r)
{
	return recipe_names[r];
}

int forge_recipe_parse(const char *s, enum forge_recipe *out)
{
	for (size_t i = 0; i < sizeof(recipe_names) / sizeof(recipe_names[0]); i++) {
		if (!strcmp(s, recipe_names[i])) {
			*out = (enum forge_recipe)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum window_scope forge_recipe_scope(enum forge_recipe r)
{
	return r == RECIPE_CWND ? SCOPE_FLOW : SCOPE_IFACE;
}

void forge_sha1_hex(const void *data, size_t len, char hex[FORGE_SHA1_HEX])
{
	unsigned char md[SHA1_DIGEST_SIZE];
	struct sha1_ctx ctx;

	sha1_init(&ctx);
	sha1_update(&ctx, len, data);
	sha1_digest(&ctx, sizeof(md), md);
	for (unsigned i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int forge_read_csv(const char *path, struct csv_table **out, char sha1[FORGE_SHA1_HEX], struct reflex_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret;

	ret = csv_read_bytes(path, &data, &len, err);
	if (ret)
		return ret;
	forge_sha1_hex(data, len, sha1);
	return csv_parse_owned(strcmp(path, "-") ? path : "<stdin>", data, len, out, err);
}

int forge_created_at_now(char *buf, size_t size, struct reflex_err *err)
{
	const char *epoch = getenv("SOURCE_DATE_EPOCH");
	time_t now = time(NULL);
	struct tm tm;

	if (epoch && *epoch) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(epoch, &end, 10);
		if (errno || *end || v < 0) {
			reflex_err_set(err, "SOURCE_DATE_EPOCH '%.40s' is not a count of seconds", epoch);
			return -EINVAL;
		}
		now = (time_t)v;
	}
	if (!gmtime_r(&now, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		reflex_err_set(err, "cannot format the time %lld", (long long)now);
		return -EINVAL;
	}
	return 0;
}

bool forge_created_at_valid(const char *s)
{
	struct tm tm = { 0 };
	char again[32];
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	time_t t;

	if (!end || *end || strlen(s) != 20)
		return false;
	/* Round trip through the calendar, so 2025-02-30 is refused. */
	t = timegm(&tm);
	if (t == (time_t)-1 || !gmtime_r(&t, &tm) || !strftime(again, sizeof(again), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return false;
	return !strcmp(again, s);
}

const char *forge_trainer_commit(void)
{
	return "forge@" REFLEX_GIT_DESCRIBE;
}

void forge_progress(const char *what, size_t done, size_t total)
{
	fprintf(stderr, "\r%s: %zu/%zu", what, done, total);
	if (done == total)
		fputs("\n", stderr);
	fflush(stderr);
}
