#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fileio.h"
#include "lib/text_lines.h"
#include "reflexd/config.h"

enum key_kind {
	KEY_VALUE,  /* --key=value, once */
	KEY_FLAG,   /* --key when true; a boolean value */
	KEY_MODEL,  /* [models] ROLE = FILE -> --model=ROLE=FILE */
	KEY_REPEAT, /* --key=value, any number of times */
};

struct key_def {
	const char *section;
	const char *key;
	enum key_kind kind;
};

/* Every long option a file may set. --config, --check-config, --cleanup,
 * --print-classes and --help are actions of one invocation, not configuration. */
static const struct key_def keys[] = {
	{ "host", "iface", KEY_VALUE },
	{ "host", "cgroup", KEY_VALUE },
	{ "host", "pin-dir", KEY_VALUE },
	{ "host", "duration", KEY_VALUE },
	{ "host", "sample-interval-ms", KEY_VALUE },
	{ "host", "flush-threshold", KEY_VALUE },
	{ "host", "max-batch-delay-us", KEY_VALUE },
	{ "host", "max-flows", KEY_VALUE },
	{ "host", "ring-kb", KEY_VALUE },
	{ "host", "rt-priority", KEY_VALUE },
	{ "host", "policy", KEY_VALUE },
	{ "host", "explore", KEY_VALUE },
	{ "host", "drift-threshold", KEY_VALUE },
	{ "host", "drift-window-s", KEY_VALUE },
	{ "host", "drift-hold-s", KEY_VALUE },
	{ "host", "anomaly-threshold", KEY_VALUE },
	{ "host", "anomaly-hold", KEY_VALUE },
	{ "host", "learn", KEY_FLAG },
	{ "host", "learn-out", KEY_VALUE },
	{ "host", "actuator", KEY_VALUE },
	{ "host", "observe", KEY_FLAG },
	{ "host", "shadow", KEY_FLAG },
	{ "host", "auto-promote", KEY_FLAG },
	{ "host", "shadow-period", KEY_VALUE },
	{ "host", "telemetry-out", KEY_VALUE },
	{ "host", "records-out", KEY_VALUE },
	{ "models", "cwnd", KEY_MODEL },
	{ "models", "dqn", KEY_MODEL },
	{ "models", "batching", KEY_MODEL },
	{ "router", "lan", KEY_VALUE },
	{ "router", "path", KEY_REPEAT },
	{ "router", "classes", KEY_VALUE },
	{ "router", "bandit", KEY_VALUE },
	{ "router", "bandit-c", KEY_VALUE },
	{ "router", "mark-base", KEY_VALUE },
	{ "router", "mark-mask", KEY_VALUE },
	{ "router", "move-flows", KEY_FLAG },
	{ "metrics", "metrics-listen", KEY_VALUE },
	{ "logging", "decision-log", KEY_VALUE },
	{ "logging", "decision-log-max-bytes", KEY_VALUE },
	{ "logging", "decision-log-keep", KEY_VALUE },
	{ "logging", "verbose", KEY_FLAG },
	{ "logging", "quiet", KEY_FLAG },
};

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

struct parse_ctx {
	struct config_file *cf;
	const char *source;
	struct text_lines in; /* in.line: the line being parsed */
	int first_line[KEY_COUNT]; /* where a once-only key was given, 0: not yet */
	bool failed;
	struct reflex_err *err;
};


const char *config_section_of(const char *option)
{
	if (!strcmp(option, "model"))
		return "models";
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (keys[i].kind != KEY_MODEL && !strcmp(keys[i].key, option))
			return keys[i].section;
	return NULL;
}

__attribute__((format(printf, 4, 5)))
static void fail_key(struct parse_ctx *ctx, const char *section, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (ctx->failed)
		return;
	ctx->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reflex_err_set_line(ctx->err, ctx->source, ctx->in.line, "%s", msg);
	reflex_err_at_field(ctx->err, "[%s] key '%s'", section, key);
}

static int parse_bool(const char *value, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(value, yes[i]))
			return *out = true, 0;
		if (!strcasecmp(value, no[i]))
			return *out = false, 0;
	}
	return -1;
}

static const struct key_def *find_key(const char *section, const char *key, size_t *index)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key)) {
			*index = i;
			return &keys[i];
		}
	}
	return NULL;
}

static int add_arg(struct parse_ctx *ctx, const struct key_def *def, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int add_arg(struct parse_ctx *ctx, const struct key_def *def, const char *fmt, ...)
{
	struct config_entry *e;
	va_list ap;
	int n;

	if (ctx->cf->count >= CONFIG_MAX_ENTRIES) {
		fail_key(ctx, def->section, def->key, "more than %d keys in the file", CONFIG_MAX_ENTRIES);
		return -1;
	}
	e = &ctx->cf->entries[ctx->cf->count];
	va_start(ap, fmt);
	n = vsnprintf(e->arg, sizeof(e->arg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(e->arg)) {
		fail_key(ctx, def->section, def->key, "value longer than %d characters", CONFIG_ARG_MAX - 64);
		return -1;
	}
	e->section = def->section;
	e->key = def->key;
	e->line = ctx->in.line;
	ctx->cf->count++;
	return 0;
}

static int take_key(struct parse_ctx *ctx, const char *section, const char *key, const char *value)
{
	const struct key_def *def;
	size_t index;
	bool on;

	if (!*section) {
		fail_key(ctx, "", key, "outside any section ([host], [models], [router], [metrics], [logging])");
		return -1;
	}
	def = find_key(section, key, &index);
	if (!def) {
		const char *where = config_section_of(key);

		if (where)
			fail_key(ctx, section, key, "belongs in [%s]", where);
		else
			fail_key(ctx, section, key, "unknown key (reflex(5) lists them)");
		return -1;
	}
	if (def->kind != KEY_REPEAT && ctx->first_line[index]) {
		/* inih also hands an indented line over as a repeat of the key before */
		fail_key(ctx, section, key, "given twice (first at line %d)", ctx->first_line[index]);
		return -1;
	}
	ctx->first_line[index] = ctx->in.line;
	if (!*value) {
		fail_key(ctx, section, key, "no value");
		return -1;
	}
	switch (def->kind) {
	case KEY_FLAG:
		if (parse_bool(value, &on)) {
			fail_key(ctx, section, key, "'%s' is not true or false", value);
			return -1;
		}
		return on ? add_arg(ctx, def, "--%s", key) : 0;
	case KEY_MODEL:
		return add_arg(ctx, def, "--model=%s=%s", key, value);
	case KEY_VALUE:
	case KEY_REPEAT:
		break;
	}
	return add_arg(ctx, def, "--%s=%s", key, value);
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *ctx = user;

	if (ctx->failed)
		return 1; /* the first error is the one reported */
	return take_key(ctx, section, key, value) == 0;
}

/* inih's fgets-style reader; counting lines here gives each key its line. */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse_ctx *ctx = stream;
	bool too_long;

	if (ctx->failed || !text_lines_next(&ctx->in, buf, size, &too_long)) {
		if (!ctx->failed && too_long) {
			ctx->failed = true;
			reflex_err_set_line(ctx->err, ctx->source, ctx->in.line, "line longer than %d characters", size - 3);
		}
		return NULL;
	}
	return buf;
}

int config_load_text(struct config_file *cf, const char *source, const char *text, size_t len,
		     struct reflex_err *err)
{
	struct parse_ctx ctx = { .cf = cf, .source = source, .in = { .text = text, .len = len }, .err = err };
	size_t offset;
	int nul_line = text_lines_nul(text, len, &offset);
	int ret;

	cf->count = 0;
	snprintf(cf->path, sizeof(cf->path), "%s", source);
	if (nul_line) {
		reflex_err_set_line(err, source, nul_line, "a NUL byte (not a text file)");
		return -1;
	}
	ret = ini_parse_stream(read_line, &ctx, on_key, &ctx);
	if (!ctx.failed && ret > 0)
		reflex_err_set_line(err, source, ret, "not 'key = value', a [section] or a ';' comment");
	if (ctx.failed || ret != 0) {
		cf->count = 0;
		return -1;
	}
	return 0;
}

#define CONFIG_FILE_MAX (1 << 20)

int config_load(struct config_file *cf, const char *path, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	char *text;
	size_t len;
	int ret;

	cf->count = 0;
	/* non-blocking and regular files only: a FIFO would block reflexd (and the
	 * argument fuzzer) forever */
	if (fileio_read_bounded(path, CONFIG_FILE_MAX, &text, &len, &ferr)) {
		reflex_err_copy(err, &ferr);
		return -1;
	}
	ret = config_load_text(cf, path, text, len, err);
	free(text);
	return ret;
}
