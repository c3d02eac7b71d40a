// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Traffic classifier: the rule table, its INI config (libinih) and its printer. */
#include "lib/text_lines.h"
#include "router/classify.h"
#include "lib/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CLASSIFY_MAX_FILE_BYTES (1u << 20)

static const char *const class_names[TRAFFIC_CLASS_COUNT] = {
	[TRAFFIC_GAMING] = "gaming",
	[TRAFFIC_VOIP] = "voip",
	[TRAFFIC_STREAMING] = "streaming",
	[TRAFFIC_BULK] = "bulk",
	[TRAFFIC_WEB] = "web",
};

const char *traffic_class_name(enum traffic_class cls)
{
	if ((unsigned)cls >= TRAFFIC_CLASS_COUNT)
		return "?";
	return class_names[cls];
}

int traffic_class_from_name(const char *name)
{
	for (int i = 0; i < TRAFFIC_CLASS_COUNT; i++)
		if (strcasecmp(name, class_names[i]) == 0)
			return i;
	return -1;
}

/*
 * The built-in table, written in the config syntax so that it reads like the
 * file an operator would write and goes through the same parser.
 * Why each rule is where it is:
 * - DSCP first: a marking the application or the LAN chose is the most direct
 *   statement of intent (classes per RFC 4594: EF/VA telephony, AF4x
 *   conferencing, CS4 real-time interactive, CS3/AF3x streaming, LE/CS1/AF1x
 *   high-throughput and scavenger data).
 * - Well-known ports next: SIP, RTP's common range (small packets only, so RTP
 *   video falls through), STUN/TURN/Teams and Zoom media, Xbox Live and Steam,
 *   RTSP/RTMP, FTP/SMB/rsync/NFS.
 * - Then behaviour: any flow past 100 MB is bulk; HTTPS/QUIC with large packets
 *   at a sustained rate after 2 MB is streaming; other HTTP(S) is web, stated
 *   explicitly so that small QUIC packets never reach the gaming rule; small UDP
 *   packets at >= 20 packets/s (a game's tick) are gaming.
 * The size/rate/bytes rules need a flow's first packets to be seen, so they
 * apply when reflexd (re)classifies a flow after its first sample interval.
 */
static const char default_config[] =
	"[classify]\n"
	"default = web\n"
	"[rule \"voip-dscp\"]\n"
	"class = voip\n"
	"dscp = ef, va, af41, af42, af43\n"
	"[rule \"gaming-dscp\"]\n"
	"class = gaming\n"
	"dscp = cs4\n"
	"[rule \"streaming-dscp\"]\n"
	"class = streaming\n"
	"dscp = cs3, af31, af32, af33\n"
	"[rule \"bulk-dscp\"]\n"
	"class = bulk\n"
	"dscp = le, cs1, af11, af12, af13\n"
	"[rule \"voip-sip\"]\n"
	"class = voip\n"
	"proto = udp, tcp\n"
	"port = 5060-5061\n"
	"[rule \"voip-rtp\"]\n"
	"class = voip\n"
	"proto = udp\n"
	"port = 16384-32767\n"
	"size_max = 400\n"
	"[rule \"voip-conferencing\"]\n"
	"class = voip\n"
	"proto = udp\n"
	"port = 3478-3481, 8801-8810\n"
	"[rule \"gaming-ports\"]\n"
	"class = gaming\n"
	"proto = udp\n"
	"port = 3074, 27000-27050\n"
	"[rule \"streaming-ports\"]\n"
	"class = streaming\n"
	"proto = tcp\n"
	"port = 554, 1935\n"
	"[rule \"bulk-ports\"]\n"
	"class = bulk\n"
	"proto = tcp\n"
	"port = 20-21, 445, 873, 2049\n"
	"[rule \"bulk-elephant\"]\n"
	"class = bulk\n"
	"bytes_min = 100000000\n"
	"[rule \"streaming-https\"]\n"
	"class = streaming\n"
	"proto = tcp, udp\n"
	"port = 443\n"
	"size_min = 1000\n"
	"rate_min = 100\n"
	"bytes_min = 2000000\n"
	"[rule \"web-http\"]\n"
	"class = web\n"
	"proto = tcp, udp\n"
	"port = 80, 443, 8080, 8443\n"
	"[rule \"gaming-small-udp\"]\n"
	"class = gaming\n"
	"proto = udp\n"
	"size_max = 200\n"
	"rate_min = 20\n";

void classify_table_default(struct classify_table *t)
{
	struct reflex_err err = { 0 };

	if (classify_table_parse(t, default_config, sizeof(default_config) - 1, "<built-in>", &err)) {
		/* Only a broken build gets here; test_classify parses the same text. */
		fprintf(stderr, "classify: built-in table does not parse: %s\n", err.msg);
		abort();
	}
}

/* ---- matching ------------------------------------------------------------ */

static bool port_in(const struct port_set *set, uint16_t port)
{
	for (uint32_t i = 0; i < set->n; i++)
		if (port >= set->range[i].lo && port <= set->range[i].hi)
			return true;
	return false;
}

bool classify_rule_matches(const struct classify_rule *rule, const struct flow_facts *facts)
{
	uint32_t m = rule->match;

	if ((m & MATCH_PROTO) && !((rule->proto_mask[facts->proto / 64] >> (facts->proto % 64)) & 1))
		return false;
	if ((m & MATCH_PORT) && !port_in(&rule->port, facts->sport) &&
	    !port_in(&rule->port, facts->dport))
		return false;
	if ((m & MATCH_SPORT) && !port_in(&rule->sport, facts->sport))
		return false;
	if ((m & MATCH_DPORT) && !port_in(&rule->dport, facts->dport))
		return false;
	if ((m & MATCH_DSCP) && !((rule->dscp_mask >> (facts->dscp & 63)) & 1))
		return false;
	if ((m & MATCH_SIZE_MIN) && facts->packet_size_mean < rule->size_min)
		return false;
	if ((m & MATCH_SIZE_MAX) && facts->packet_size_mean > rule->size_max)
		return false;
	if ((m & MATCH_RATE_MIN) && facts->packet_rate < rule->rate_min)
		return false;
	if ((m & MATCH_RATE_MAX) && facts->packet_rate > rule->rate_max)
		return false;
	if ((m & MATCH_BYTES_MIN) && facts->bytes < rule->bytes_min)
		return false;
	if ((m & MATCH_BYTES_MAX) && facts->bytes > rule->bytes_max)
		return false;
	return true;
}

enum traffic_class classify_flow(const struct classify_table *t,
				 const struct flow_facts *facts, int *rule_index)
{
	for (uint32_t i = 0; i < t->n_rules; i++) {
		if (classify_rule_matches(&t->rule[i], facts)) {
			if (rule_index)
				*rule_index = (int)i;
			return t->rule[i].cls;
		}
	}
	if (rule_index)
		*rule_index = -1;
	return t->default_class;
}

/* ---- names of protocols and DSCP values ----------------------------------- */

static const struct {
	const char *name;
	uint8_t proto;
} proto_names[] = {
	{ "icmp", 1 }, { "tcp", 6 }, { "udp", 17 }, { "icmpv6", 58 },
};

static int dscp_from_name(const char *s)
{
	if (strcasecmp(s, "ef") == 0)
		return 46;
	if (strcasecmp(s, "va") == 0)
		return 44;
	if (strcasecmp(s, "le") == 0)
		return 1;
	if (strncasecmp(s, "cs", 2) == 0 && s[2] >= '0' && s[2] <= '7' && !s[3])
		return (s[2] - '0') * 8;
	if (strncasecmp(s, "af", 2) == 0 && s[2] >= '1' && s[2] <= '4' && s[3] >= '1' &&
	    s[3] <= '3' && !s[4])
		return (s[2] - '0') * 8 + (s[3] - '0') * 2;
	return -1;
}

/* The canonical spelling of a DSCP value, into buf. */
static const char *dscp_name(unsigned dscp, char *buf, size_t len)
{
	if (dscp == 46)
		return "ef";
	if (dscp == 44)
		return "va";
	if (dscp == 1)
		return "le";
	if (dscp % 8 == 0)
		snprintf(buf, len, "cs%u", dscp / 8);
	else if (dscp / 8 >= 1 && dscp / 8 <= 4 && dscp % 2 == 0 && dscp % 8 <= 6)
		snprintf(buf, len, "af%u%u", dscp / 8, (dscp % 8) / 2);
	else
		snprintf(buf, len, "%u", dscp);
	return buf;
}

/* ---- config parsing --------------------------------------------------------- */

enum section_kind {
	SECTION_NONE = 0,
	SECTION_CLASSIFY,
	SECTION_RULE,
};

#define KEY_CLASS (1u << 31) /* keys_seen bit of class= (the others are MATCH_* bits) */
#define KEY_DEFAULT (1u << 30)

struct parse_ctx {
	/* the text and the reader's position */
	struct text_lines in;  /* in.line: the line being parsed */
	const char *source;
	/* the section being filled */
	bool header_pending;   /* a header was read; its first key opens the section */
	bool prev_key;         /* a key was seen since the last header (inih's multiline state) */
	int section_line;
	char header[128];      /* the latest header line as written, for "has no keys" */
	char section[128];
	enum section_kind kind;
	uint32_t keys_seen;
	struct classify_rule *rule;
	bool have_classify;
	int classify_line;
	int rule_line[CLASSIFY_MAX_RULES];
	/* the result */
	struct classify_table *table;
	bool failed;
	int err_line;
	int handler_err_line;  /* the line inih counts as failed when on_key returned 0 */
	struct reflex_err *err;
};

__attribute__((format(printf, 3, 4)))
static void fail_at(struct parse_ctx *ctx, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (ctx->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reflex_err_set_line(ctx->err, ctx->source, line, "%s", msg);
	ctx->failed = true;
	ctx->err_line = line;
}

/* Errors about one key name the section and the key. */
__attribute__((format(printf, 3, 4)))
static void fail_key(struct parse_ctx *ctx, const char *key, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	if (ctx->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_at(ctx, ctx->in.line, "%s", msg);
	reflex_err_at_field(ctx->err, "[%s] key '%s'", ctx->section, key);
}

static void copy_trimmed(char *dst, size_t size, const char *src)
{
	size_t len;

	while (isspace((unsigned char)*src))
		src++;
	len = strlen(src);
	while (len && isspace((unsigned char)src[len - 1]))
		len--;
	snprintf(dst, size, "%.*s", (int)len, src);
}

/* Strict unsigned decimal: digits only, at most max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Split a comma-separated list into trimmed tokens; calls fn for each. */
typedef int (*token_fn)(struct parse_ctx *ctx, const char *key, const char *token, void *arg);

static int for_each_token(struct parse_ctx *ctx, const char *key, const char *value,
			  token_fn fn, void *arg)
{
	char token[64];
	const char *p = value;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n == 0) {
			fail_key(ctx, key, "empty list entry in '%s'", value);
			return -1;
		}
		if (n >= sizeof(token)) {
			fail_key(ctx, key, "list entry '%.*s...' too long", 16, p);
			return -1;
		}
		memcpy(token, p, n);
		token[n] = '\0';
		if (fn(ctx, key, token, arg))
			return -1;
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* "N" or "LO-HI" within [0, max]. */
static int parse_range(const char *token, uint64_t max, uint64_t *lo, uint64_t *hi)
{
	char buf[64];
	const char *dash = strchr(token, '-');

	if (!dash)
		return parse_uint(token, max, lo) ? -1 : (*hi = *lo, 0);
	if ((size_t)(dash - token) >= sizeof(buf))
		return -1;
	memcpy(buf, token, (size_t)(dash - token));
	buf[dash - token] = '\0';
	if (parse_uint(buf, max, lo) || parse_uint(dash + 1, max, hi))
		return -1;
	return 0;
}

static int add_port_range(struct parse_ctx *ctx, const char *key, const char *token, void *arg)
{
	struct port_set *set = arg;
	uint64_t lo, hi;

	if (parse_range(token, 65535, &lo, &hi)) {
		fail_key(ctx, key, "'%s' is not a port or LO-HI port range (0-65535)", token);
		return -1;
	}
	if (lo > hi) {
		fail_key(ctx, key, "range '%s' has its low end above its high end", token);
		return -1;
	}
	if (set->n >= CLASSIFY_MAX_RANGES) {
		fail_key(ctx, key, "more than %d port ranges", CLASSIFY_MAX_RANGES);
		return -1;
	}
	set->range[set->n].lo = (uint16_t)lo;
	set->range[set->n].hi = (uint16_t)hi;
	set->n++;
	return 0;
}

static int add_proto(struct parse_ctx *ctx, const char *key, const char *token, void *arg)
{
	struct classify_rule *rule = arg;
	uint64_t proto = 256;
	unsigned count = 0;

	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (strcasecmp(token, proto_names[i].name) == 0)
			proto = proto_names[i].proto;
	if (proto == 256 && parse_uint(token, 255, &proto)) {
		fail_key(ctx, key, "'%s' is not tcp, udp, icmp, icmpv6 or a number 0-255", token);
		return -1;
	}
	for (int w = 0; w < 4; w++)
		count += (unsigned)__builtin_popcountll(rule->proto_mask[w]);
	if (!((rule->proto_mask[proto / 64] >> (proto % 64)) & 1) && count >= CLASSIFY_MAX_PROTOS) {
		fail_key(ctx, key, "more than %d protocols", CLASSIFY_MAX_PROTOS);
		return -1;
	}
	rule->proto_mask[proto / 64] |= 1ULL << (proto % 64);
	return 0;
}

static int add_dscp(struct parse_ctx *ctx, const char *key, const char *token, void *arg)
{
	uint64_t *mask = arg;
	int named = dscp_from_name(token);
	uint64_t lo, hi;

	if (named >= 0) {
		lo = hi = (uint64_t)named;
	} else if (parse_range(token, 63, &lo, &hi) || lo > hi) {
		fail_key(ctx, key, "'%s' is not a DSCP value 0-63, LO-HI, csN, afXY, ef, va or le",
			 token);
		return -1;
	}
	for (uint64_t d = lo; d <= hi; d++)
		*mask |= 1ULL << d;
	return 0;
}

static int parse_bound(struct parse_ctx *ctx, const char *key, const char *value,
		       uint64_t max, uint64_t *out)
{
	if (parse_uint(value, max, out)) {
		fail_key(ctx, key, "'%s' is not a whole number 0-%llu", value,
			 (unsigned long long)max);
		return -1;
	}
	return 0;
}

static int set_rule_key(struct parse_ctx *ctx, const char *key, const char *value,
			uint32_t bit)
{
	struct classify_rule *rule = ctx->rule;
	uint64_t v;

	switch (bit) {
	case KEY_CLASS: {
		int cls = traffic_class_from_name(value);

		if (cls < 0) {
			fail_key(ctx, key, "'%s' is not gaming, voip, streaming, bulk or web", value);
			return -1;
		}
		rule->cls = (enum traffic_class)cls;
		return 0;
	}
	case MATCH_PROTO:
		return for_each_token(ctx, key, value, add_proto, rule);
	case MATCH_PORT:
		return for_each_token(ctx, key, value, add_port_range, &rule->port);
	case MATCH_SPORT:
		return for_each_token(ctx, key, value, add_port_range, &rule->sport);
	case MATCH_DPORT:
		return for_each_token(ctx, key, value, add_port_range, &rule->dport);
	case MATCH_DSCP:
		return for_each_token(ctx, key, value, add_dscp, &rule->dscp_mask);
	case MATCH_BYTES_MIN:
		return parse_bound(ctx, key, value, UINT64_MAX, &rule->bytes_min);
	case MATCH_BYTES_MAX:
		return parse_bound(ctx, key, value, UINT64_MAX, &rule->bytes_max);
	}
	if (parse_bound(ctx, key, value, UINT32_MAX, &v))
		return -1;
	switch (bit) {
	case MATCH_SIZE_MIN:
		rule->size_min = (uint32_t)v;
		break;
	case MATCH_SIZE_MAX:
		rule->size_max = (uint32_t)v;
		break;
	case MATCH_RATE_MIN:
		rule->rate_min = (uint32_t)v;
		break;
	case MATCH_RATE_MAX:
		rule->rate_max = (uint32_t)v;
		break;
	}
	return 0;
}

static const struct {
	const char *name;
	uint32_t bit;
} rule_keys[] = {
	{ "class", KEY_CLASS },
	{ "proto", MATCH_PROTO },
	{ "port", MATCH_PORT },
	{ "sport", MATCH_SPORT },
	{ "dport", MATCH_DPORT },
	{ "dscp", MATCH_DSCP },
	{ "size_min", MATCH_SIZE_MIN },
	{ "size_max", MATCH_SIZE_MAX },
	{ "rate_min", MATCH_RATE_MIN },
	{ "rate_max", MATCH_RATE_MAX },
	{ "bytes_min", MATCH_BYTES_MIN },
	{ "bytes_max", MATCH_BYTES_MAX },
};

#define RULE_KEY_COUNT (sizeof(rule_keys) / sizeof(rule_keys[0]))

/* A key given twice is an error; inih also reports an indented line as a repeat. */
static int claim_key(struct parse_ctx *ctx, const char *key, uint32_t bit)
{
	if (ctx->keys_seen & bit) {
		fail_key(ctx, key, "given twice in this section (an indented line continues "
			 "the previous key's value)");
		return -1;
	}
	ctx->keys_seen |= bit;
	return 0;
}

static int on_rule_key(struct parse_ctx *ctx, const char *key, const char *value)
{
	for (size_t i = 0; i < RULE_KEY_COUNT; i++) {
		if (strcmp(key, rule_keys[i].name) != 0)
			continue;
		if (claim_key(ctx, key, rule_keys[i].bit))
			return -1;
		if (rule_keys[i].bit != KEY_CLASS)
			ctx->rule->match |= rule_keys[i].bit;
		return set_rule_key(ctx, key, value, rule_keys[i].bit);
	}
	fail_key(ctx, key, "unknown key (expected class, proto, port, sport, dport, dscp, "
		 "size_min, size_max, rate_min, rate_max, bytes_min or bytes_max)");
	return -1;
}

static int on_classify_key(struct parse_ctx *ctx, const char *key, const char *value)
{
	int cls;

	if (strcmp(key, "default") != 0) {
		fail_key(ctx, key, "unknown key (expected default)");
		return -1;
	}
	if (claim_key(ctx, key, KEY_DEFAULT))
		return -1;
	cls = traffic_class_from_name(value);
	if (cls < 0) {
		fail_key(ctx, key, "'%s' is not gaming, voip, streaming, bulk or web", value);
		return -1;
	}
	ctx->table->default_class = (enum traffic_class)cls;
	return 0;
}

static bool rule_name_valid(const char *name, size_t len)
{
	if (len == 0 || len >= CLASSIFY_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

/* `rule "NAME"` (inih hands over the text between the brackets untrimmed). */
static int open_rule(struct parse_ctx *ctx, const char *section)
{
	struct classify_table *t = ctx->table;
	const char *q = section + 4, *end;
	size_t len;

	while (isspace((unsigned char)*q))
		q++;
	end = *q == '"' ? strchr(q + 1, '"') : NULL;
	if (q == section + 4 || !end || end[1] != '\0' ||
	    !rule_name_valid(q + 1, (size_t)(end - q - 1))) {
		fail_at(ctx, ctx->section_line, "[%s]: a rule section is [rule \"NAME\"], NAME "
			"1-%d characters of A-Z a-z 0-9 _ . -", section, CLASSIFY_NAME_LEN - 1);
		return -1;
	}
	len = (size_t)(end - q - 1);
	for (uint32_t i = 0; i < t->n_rules; i++) {
		if (strlen(t->rule[i].name) == len && memcmp(t->rule[i].name, q + 1, len) == 0) {
			fail_at(ctx, ctx->section_line, "[%s]: rule defined twice (first at line %d)",
				section, ctx->rule_line[i]);
			return -1;
		}
	}
	if (t->n_rules >= CLASSIFY_MAX_RULES) {
		fail_at(ctx, ctx->section_line, "[%s]: more than %d rules", section,
			CLASSIFY_MAX_RULES);
		return -1;
	}
	ctx->rule = &t->rule[t->n_rules];
	memset(ctx->rule, 0, sizeof(*ctx->rule));
	memcpy(ctx->rule->name, q + 1, len);
	ctx->rule_line[t->n_rules] = ctx->section_line;
	t->n_rules++;
	ctx->kind = SECTION_RULE;
	return 0;
}

static int open_section(struct parse_ctx *ctx, const char *raw)
{
	copy_trimmed(ctx->section, sizeof(ctx->section), raw);
	ctx->header_pending = false;
	ctx->keys_seen = 0;
	ctx->rule = NULL;

	if (strcmp(ctx->section, "classify") == 0) {
		if (ctx->have_classify) {
			fail_at(ctx, ctx->section_line, "[classify]: section given twice (first at "
				"line %d)", ctx->classify_line);
			return -1;
		}
		ctx->have_classify = true;
		ctx->classify_line = ctx->section_line;
		ctx->kind = SECTION_CLASSIFY;
		return 0;
	}
	if (strncmp(ctx->section, "rule", 4) == 0 &&
	    (ctx->section[4] == '\0' || isspace((unsigned char)ctx->section[4])))
		return open_rule(ctx, ctx->section);
	fail_at(ctx, ctx->section_line, "[%s]: unknown section (expected [classify] or "
		"[rule \"NAME\"])", ctx->section);
	return -1;
}

/* Checks that need the whole section: run when the next header or the end is read. */
static void close_section(struct parse_ctx *ctx)
{
	const struct classify_rule *rule = ctx->rule;

	if (ctx->failed)
		return;
	if (ctx->header_pending) {
		fail_at(ctx, ctx->section_line, "%s: section has no keys", ctx->header);
		return;
	}
	if (ctx->kind != SECTION_RULE)
		return;
	if (!(ctx->keys_seen & KEY_CLASS))
		fail_at(ctx, ctx->section_line, "[%s]: no class= key", ctx->section);
	else if ((rule->match & MATCH_SIZE_MIN) && (rule->match & MATCH_SIZE_MAX) &&
		 rule->size_min > rule->size_max)
		fail_at(ctx, ctx->section_line, "[%s]: size_min is above size_max", ctx->section);
	else if ((rule->match & MATCH_RATE_MIN) && (rule->match & MATCH_RATE_MAX) &&
		 rule->rate_min > rule->rate_max)
		fail_at(ctx, ctx->section_line, "[%s]: rate_min is above rate_max", ctx->section);
	else if ((rule->match & MATCH_BYTES_MIN) && (rule->match & MATCH_BYTES_MAX) &&
		 rule->bytes_min > rule->bytes_max)
		fail_at(ctx, ctx->section_line, "[%s]: bytes_min is above bytes_max", ctx->section);
}

/* 0 if the key was taken, -1 after recording an error. */
static int take_key(struct parse_ctx *ctx, const char *section, const char *key,
		    const char *value)
{
	if (ctx->header_pending && open_section(ctx, section))
		return -1;
	switch (ctx->kind) {
	case SECTION_NONE:
		fail_at(ctx, ctx->in.line, "key '%s' outside any section", key);
		return -1;
	case SECTION_CLASSIFY:
	case SECTION_RULE:
		break;
	}
	if (!*value) {
		fail_key(ctx, key, "no value");
		return -1;
	}
	if (ctx->kind == SECTION_CLASSIFY)
		return on_classify_key(ctx, key, value);
	return on_rule_key(ctx, key, value);
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *ctx = user;

	if (ctx->failed)
		return 1; /* report only the first error; the reader stops at the next line */
	ctx->prev_key = true;
	if (take_key(ctx, section, key, value) == 0)
		return 1;
	ctx->handler_err_line = ctx->in.line;
	return 0;
}

/* Whether inih will take this line as a section header (mirrors ini_parse_stream). */
static bool is_header_line(const struct parse_ctx *ctx, const char *line)
{
	const char *start = line;

	if (ctx->in.line == 1 && (unsigned char)start[0] == 0xEF &&
	    (unsigned char)start[1] == 0xBB && (unsigned char)start[2] == 0xBF)
		line = start = start + 3;
	while (isspace((unsigned char)*start))
		start++;
	if (*start != '[')
		return false;
	return !(ini_allow_multiline && ctx->prev_key && start > line);
}

/* inih's fgets-style reader over the text; counting lines here gives each key its line. */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse_ctx *ctx = stream;
	bool too_long;

	if (ctx->failed || !text_lines_next(&ctx->in, buf, size, &too_long)) {
		if (!ctx->failed && too_long)
			fail_at(ctx, ctx->in.line, "line longer than %d characters", size - 3);
		return NULL;
	}
	if (is_header_line(ctx, buf)) {
		close_section(ctx);
		ctx->header_pending = true;
		ctx->prev_key = false;
		ctx->section_line = ctx->in.line;
		copy_trimmed(ctx->header, sizeof(ctx->header), buf);
	}
	return buf;
}

static int check_no_nul(struct parse_ctx *ctx)
{
	size_t offset;
	int line = text_lines_nul(ctx->in.text, ctx->in.len, &offset);

	if (!line)
		return 0;
	fail_at(ctx, line, "NUL byte at byte offset %zu", offset);
	return -1;
}

int classify_table_parse(struct classify_table *t, const char *text, size_t len,
			 const char *source, struct reflex_err *err)
{
	struct parse_ctx *ctx;
	int ret = -EINVAL, syntax_line;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->table = calloc(1, sizeof(*ctx->table));
	if (!ctx->table) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ctx->in.text = text;
	ctx->in.len = len;
	ctx->source = source;
	ctx->err = err;
	ctx->table->default_class = TRAFFIC_WEB;
	if (check_no_nul(ctx))
		goto cleanup;

	syntax_line = ini_parse_stream(read_line, ctx, on_key, ctx);
	if (syntax_line == -2) {
		ret = -ENOMEM;
		goto cleanup;
	}
	close_section(ctx);
	/*
	 * inih returns the first line it rejected, including lines our handler
	 * rejected; a different line is inih's own syntax error. Report whichever
	 * comes first in the file (a malformed header is reported as such, not as
	 * the confusion it causes later).
	 */
	if (syntax_line > 0 && syntax_line != ctx->handler_err_line &&
	    (!ctx->failed || syntax_line <= ctx->err_line)) {
		ctx->failed = false;
		fail_at(ctx, syntax_line, "syntax error: expected [section], key = value or a "
			"comment (# or ;)");
	}
	if (ctx->failed)
		goto cleanup;
	if (ctx->table->n_rules == 0 && !ctx->have_classify) {
		fail_at(ctx, ctx->in.line ? ctx->in.line : 1, "no [classify] or [rule] section");
		goto cleanup;
	}
	memcpy(t, ctx->table, sizeof(*t));
	ret = 0;
cleanup:
	free(ctx->table);
	free(ctx);
	return ret;
}

int classify_table_load(struct classify_table *t, const char *path, struct reflex_err *err)
{
	struct reflex_err ferr = { 0 };
	char *text = NULL;
	size_t len = 0;
	int ret;

	ret = fileio_read_bounded(path, CLASSIFY_MAX_FILE_BYTES, &text, &len, &ferr);
	if (ret) {
		reflex_err_copy(err, &ferr);
		return ret;
	}
	ret = classify_table_parse(t, text, len, path, err);
	free(text);
	return ret;
}

/* ---- printing ------------------------------------------------------------ */

static void print_ports(FILE *out, const char *key, const struct port_set *set)
{
	fprintf(out, "%s = ", key);
	for (uint32_t i = 0; i < set->n; i++) {
		const struct port_range *r = &set->range[i];

		if (r->lo == r->hi)
			fprintf(out, "%s%u", i ? ", " : "", r->lo);
		else
			fprintf(out, "%s%u-%u", i ? ", " : "", r->lo, r->hi);
	}
	fputc('\n', out);
}

static void print_protos(FILE *out, const uint64_t mask[4])
{
	const char *sep = "";

	fputs("proto = ", out);
	for (unsigned p = 0; p < 256; p++) {
		const char *name = NULL;

		if (!((mask[p / 64] >> (p % 64)) & 1))
			continue;
		for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
			if (proto_names[i].proto == p)
				name = proto_names[i].name;
		if (name)
			fprintf(out, "%s%s", sep, name);
		else
			fprintf(out, "%s%u", sep, p);
		sep = ", ";
	}
	fputc('\n', out);
}

/* Runs of three or more values print as LO-HI, the rest by name. */
static void print_dscps(FILE *out, uint64_t mask)
{
	const char *sep = "";
	char buf[8];
	unsigned d = 0;

	fputs("dscp = ", out);
	while (d < 64) {
		unsigned end = d;

		if (!((mask >> d) & 1)) {
			d++;
			continue;
		}
		while (end + 1 < 64 && ((mask >> (end + 1)) & 1))
			end++;
		if (end - d >= 2) {
			fprintf(out, "%s%u-%u", sep, d, end);
		} else {
			for (unsigned v = d; v <= end; v++) {
				fprintf(out, "%s%s", sep, dscp_name(v, buf, sizeof(buf)));
				sep = ", ";
			}
		}
		sep = ", ";
		d = end + 1;
	}
	fputc('\n', out);
}

static void print_rule(FILE *out, const struct classify_rule *r, unsigned index)
{
	uint32_t m = r->match;

	fprintf(out, "\n# rule %u\n[rule \"%s\"]\nclass = %s\n", index + 1, r->name,
		traffic_class_name(r->cls));
	if (m & MATCH_PROTO)
		print_protos(out, r->proto_mask);
	if (m & MATCH_PORT)
		print_ports(out, "port", &r->port);
	if (m & MATCH_SPORT)
		print_ports(out, "sport", &r->sport);
	if (m & MATCH_DPORT)
		print_ports(out, "dport", &r->dport);
	if (m & MATCH_DSCP)
		print_dscps(out, r->dscp_mask);
	if (m & MATCH_SIZE_MIN)
		fprintf(out, "size_min = %u\n", r->size_min);
	if (m & MATCH_SIZE_MAX)
		fprintf(out, "size_max = %u\n", r->size_max);
	if (m & MATCH_RATE_MIN)
		fprintf(out, "rate_min = %u\n", r->rate_min);
	if (m & MATCH_RATE_MAX)
		fprintf(out, "rate_max = %u\n", r->rate_max);
	if (m & MATCH_BYTES_MIN)
		fprintf(out, "bytes_min = %llu\n", (unsigned long long)r->bytes_min);
	if (m & MATCH_BYTES_MAX)
		fprintf(out, "bytes_max = %llu\n", (unsigned long long)r->bytes_max);
}

int classify_table_print(const struct classify_table *t, FILE *out)
{
	fputs("# reflex traffic classes: the first rule whose conditions all hold decides\n"
	      "# a flow's class; flows no rule matches get the default.\n"
	      "[classify]\n", out);
	fprintf(out, "default = %s\n", traffic_class_name(t->default_class));
	for (uint32_t i = 0; i < t->n_rules; i++)
		print_rule(out, &t->rule[i], i);
	return ferror(out) ? -EIO : 0;
}
