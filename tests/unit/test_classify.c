// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The traffic classifier: built-in rules, the INI config, its errors, first-match order. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "router/classify.h"

/* tests/run.sh runs unit tests from the repository root. */
#define EXAMPLE_CONFIG "tests/data/classes.ini"

/* Tables are ~20 KiB: on the heap, freed by the teardown even after a failed assertion. */
struct fixture {
	struct classify_table table;
	struct classify_table other;
	char *printed;
	char tmp_path[64];
	struct reflex_err err;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->tmp_path[0])
		unlink(fx->tmp_path);
	free(fx->printed);
	free(fx);
	return 0;
}

static int parse(struct fixture *fx, struct classify_table *t, const char *text)
{
	return classify_table_parse(t, text, strlen(text), "test.ini", &fx->err);
}

static struct flow_facts facts(uint8_t proto, uint16_t sport, uint16_t dport, uint8_t dscp,
			       uint32_t size, uint32_t rate, uint64_t bytes)
{
	struct flow_facts f = {
		.proto = proto, .sport = sport, .dport = dport, .dscp = dscp,
		.packet_size_mean = size, .packet_rate = rate, .bytes = bytes,
	};

	return f;
}

/* The class and the name of the rule that decided it ("-" for the default). */
static void assert_classified(const struct classify_table *t, struct flow_facts f,
			      enum traffic_class want, const char *want_rule)
{
	int rule = -2;
	enum traffic_class got = classify_flow(t, &f, &rule);
	const char *rule_name = rule >= 0 ? t->rule[rule].name : "-";

	if (got != want || strcmp(rule_name, want_rule) != 0)
		fail_msg("proto %u %u->%u dscp %u size %u rate %u bytes %llu: got %s by %s, "
			 "expected %s by %s", f.proto, f.sport, f.dport, f.dscp,
			 f.packet_size_mean, f.packet_rate, (unsigned long long)f.bytes,
			 traffic_class_name(got), rule_name, traffic_class_name(want), want_rule);
}

enum { TCP = 6, UDP = 17 };

static void test_class_names(void **state)
{
	(void)state;
	for (int k = 0; k < TRAFFIC_CLASS_COUNT; k++)
		assert_int_equal(traffic_class_from_name(traffic_class_name(k)), k);
	assert_int_equal(traffic_class_from_name("VoIP"), TRAFFIC_VOIP);
	assert_int_equal(traffic_class_from_name("video"), -1);
	assert_string_equal(traffic_class_name(TRAFFIC_CLASS_COUNT), "?");
}

static void test_defaults(void **state)
{
	struct fixture *fx = *state;
	struct classify_table *t = &fx->table;

	classify_table_default(t);
	assert_int_equal(t->n_rules, 14);
	assert_int_equal(t->default_class, TRAFFIC_WEB);
	/* DSCP first: an EF-marked flow on a web port is voice. */
	assert_classified(t, facts(UDP, 40000, 443, 46, 1200, 50, 0), TRAFFIC_VOIP, "voip-dscp");
	assert_classified(t, facts(UDP, 40000, 50000, 34, 900, 100, 0), TRAFFIC_VOIP, "voip-dscp");
	assert_classified(t, facts(UDP, 40000, 50000, 32, 100, 60, 0), TRAFFIC_GAMING, "gaming-dscp");
	assert_classified(t, facts(TCP, 40000, 443, 24, 1400, 900, 0), TRAFFIC_STREAMING,
			  "streaming-dscp");
	assert_classified(t, facts(TCP, 40000, 443, 8, 1400, 900, 0), TRAFFIC_BULK, "bulk-dscp");
	assert_classified(t, facts(TCP, 40000, 443, 1, 1400, 900, 0), TRAFFIC_BULK, "bulk-dscp");
	/* Ports: port= matches either end. */
	assert_classified(t, facts(UDP, 5060, 40000, 0, 500, 2, 0), TRAFFIC_VOIP, "voip-sip");
	assert_classified(t, facts(UDP, 40000, 20000, 0, 180, 50, 0), TRAFFIC_VOIP, "voip-rtp");
	assert_classified(t, facts(UDP, 40000, 3478, 0, 900, 100, 0), TRAFFIC_VOIP,
			  "voip-conferencing");
	assert_classified(t, facts(UDP, 3074, 3074, 0, 90, 30, 0), TRAFFIC_GAMING, "gaming-ports");
	assert_classified(t, facts(TCP, 40000, 1935, 0, 1400, 300, 0), TRAFFIC_STREAMING,
			  "streaming-ports");
	assert_classified(t, facts(TCP, 40000, 873, 0, 1400, 3000, 0), TRAFFIC_BULK, "bulk-ports");
	/* Behaviour: the elephant rule precedes the streaming one. */
	assert_classified(t, facts(TCP, 40000, 443, 0, 1400, 500, 200000000), TRAFFIC_BULK,
			  "bulk-elephant");
	assert_classified(t, facts(TCP, 40000, 443, 0, 1400, 500, 5000000), TRAFFIC_STREAMING,
			  "streaming-https");
	assert_classified(t, facts(TCP, 40000, 443, 0, 1400, 500, 1000), TRAFFIC_WEB, "web-http");
	/* Small QUIC packets are web, not a game. */
	assert_classified(t, facts(UDP, 40000, 443, 0, 120, 40, 1000), TRAFFIC_WEB, "web-http");
	assert_classified(t, facts(UDP, 40000, 9999, 0, 120, 40, 1000), TRAFFIC_GAMING,
			  "gaming-small-udp");
	/* RTP video (large packets) on the RTP range falls through the voice rule. */
	assert_classified(t, facts(UDP, 40000, 20000, 0, 1200, 300, 0), TRAFFIC_WEB, "-");
	assert_classified(t, facts(UDP, 40000, 53, 0, 80, 1, 200), TRAFFIC_WEB, "-");
	assert_classified(t, facts(TCP, 40000, 22, 0, 100, 10, 2000), TRAFFIC_WEB, "-");
}

static void test_all_keys(void **state)
{
	struct fixture *fx = *state;
	struct classify_table *t = &fx->table;
	const struct classify_rule *r;
	const char *config =
		"[classify]\n"
		"default = bulk\n"
		"[rule \"every-key\"]\n"
		"class = streaming\n"
		"proto = tcp, UDP, 132\n"
		"port = 80, 8000-8100\n"
		"sport = 1024-65535\n"
		"dport = 0-65535\n"
		"dscp = af41, cs4, le, 10-12, ef\n"
		"size_min = 500\n"
		"size_max = 1500\n"
		"rate_min = 10\n"
		"rate_max = 1000\n"
		"bytes_min = 0\n"
		"bytes_max = 18446744073709551615\n";

	assert_int_equal(parse(fx, t, config), 0);
	assert_string_equal(fx->err.msg, "");
	assert_int_equal(t->default_class, TRAFFIC_BULK);
	assert_int_equal(t->n_rules, 1);
	r = &t->rule[0];
	assert_string_equal(r->name, "every-key");
	assert_int_equal(r->cls, TRAFFIC_STREAMING);
	assert_int_equal(r->proto_mask[0], (1ULL << 6) | (1ULL << 17));
	assert_int_equal(r->proto_mask[2], 1ULL << (132 - 128));
	assert_int_equal(r->port.n, 2);
	assert_int_equal(r->port.range[1].lo, 8000);
	assert_int_equal(r->port.range[1].hi, 8100);
	assert_int_equal(r->sport.range[0].lo, 1024);
	assert_int_equal(r->dport.range[0].hi, 65535);
	assert_int_equal(r->dscp_mask, (1ULL << 34) | (1ULL << 32) | (1ULL << 1) | (7ULL << 10) |
				       (1ULL << 46));
	assert_int_equal(r->size_min, 500);
	assert_int_equal(r->rate_max, 1000);
	assert_int_equal(r->bytes_max, UINT64_MAX);

	/* Bounds are inclusive; every condition must hold. */
	assert_classified(t, facts(TCP, 1024, 8100, 34, 500, 10, 1), TRAFFIC_STREAMING, "every-key");
	assert_classified(t, facts(TCP, 1024, 8100, 34, 1500, 1000, 1), TRAFFIC_STREAMING,
			  "every-key");
	assert_classified(t, facts(TCP, 1023, 8100, 34, 500, 10, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(TCP, 1024, 8101, 34, 500, 10, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(TCP, 1024, 8100, 33, 500, 10, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(TCP, 1024, 8100, 34, 499, 10, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(TCP, 1024, 8100, 34, 1501, 10, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(TCP, 1024, 8100, 34, 500, 9, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(TCP, 1024, 8100, 34, 500, 1001, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(1, 1024, 8100, 34, 500, 10, 1), TRAFFIC_BULK, "-");
	assert_classified(t, facts(132, 1024, 8100, 34, 500, 10, 1), TRAFFIC_STREAMING, "every-key");
	/* port= takes the source end too (80 here), but sport= still wants 1024-65535... */
	assert_classified(t, facts(UDP, 80, 1024, 10, 500, 10, 1), TRAFFIC_BULK, "-");
	/* ...so port 80 has to be the destination for the rule to match. */
	assert_classified(t, facts(UDP, 2000, 80, 12, 500, 10, 1), TRAFFIC_STREAMING, "every-key");
}

static void test_first_match_order(void **state)
{
	struct fixture *fx = *state;
	const char *small_first =
		"[rule \"small-udp\"]\nclass = gaming\nproto = udp\nsize_max = 200\n"
		"[rule \"dns\"]\nclass = web\nport = 53\n";
	const char *dns_first =
		"[rule \"dns\"]\nclass = web\nport = 53\n"
		"[rule \"small-udp\"]\nclass = gaming\nproto = udp\nsize_max = 200\n";
	struct flow_facts dns = facts(UDP, 40000, 53, 0, 80, 2, 160);

	assert_int_equal(parse(fx, &fx->table, small_first), 0);
	assert_int_equal(parse(fx, &fx->other, dns_first), 0);
	assert_classified(&fx->table, dns, TRAFFIC_GAMING, "small-udp");
	assert_classified(&fx->other, dns, TRAFFIC_WEB, "dns");
	/* A file without [classify] keeps web as the default. */
	assert_int_equal(fx->table.default_class, TRAFFIC_WEB);
	/* A rule with only class= matches everything; later rules never fire. */
	assert_int_equal(parse(fx, &fx->table, "[rule \"all\"]\nclass = bulk\n" "[rule \"dns\"]\n"
				"class = web\nport = 53\n"), 0);
	assert_classified(&fx->table, dns, TRAFFIC_BULK, "all");
}

static void test_example_config(void **state)
{
	struct fixture *fx = *state;
	struct classify_table *t = &fx->table;
	int ret = classify_table_load(t, EXAMPLE_CONFIG, &fx->err);

	if (ret)
		fail_msg("%s (run from the repository root): %s", EXAMPLE_CONFIG, fx->err.msg);
	assert_int_equal(t->n_rules, 7);
	assert_classified(t, facts(UDP, 40000, 12000, 46, 200, 50, 0), TRAFFIC_VOIP, "pbx-voice");
	assert_classified(t, facts(UDP, 40000, 28960, 0, 90, 30, 0), TRAFFIC_GAMING, "game-server");
	assert_classified(t, facts(TCP, 40000, 22, 0, 1400, 900, 50000000), TRAFFIC_BULK,
			  "backup-ssh");
	assert_classified(t, facts(TCP, 40000, 22, 0, 100, 10, 5000), TRAFFIC_WEB, "-");
	/* First match: a huge video flow stays streaming although the elephant rule fits too. */
	assert_classified(t, facts(TCP, 40000, 443, 0, 1400, 500, 200000000), TRAFFIC_STREAMING,
			  "video");
	assert_classified(t, facts(TCP, 40000, 8443, 0, 1400, 500, 200000000), TRAFFIC_BULK,
			  "elephant");
}

static char *print_table(const struct classify_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(classify_table_print(t, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The printed table is a config that parses back to the same table. */
static void test_print_round_trip(void **state)
{
	struct fixture *fx = *state;

	classify_table_default(&fx->table);
	fx->printed = print_table(&fx->table);
	assert_non_null(strstr(fx->printed, "[rule \"voip-rtp\"]\nclass = voip\nproto = udp\n"
					    "port = 16384-32767\nsize_max = 400\n"));
	assert_non_null(strstr(fx->printed, "dscp = af41, af42, af43, va, ef\n"));
	assert_int_equal(parse(fx, &fx->other, fx->printed), 0);
	assert_memory_equal(&fx->table, &fx->other, sizeof(fx->table));
	free(fx->printed);
	fx->printed = NULL;

	assert_int_equal(parse(fx, &fx->table, "[rule \"r\"]\nclass = web\ndscp = 0-7, 9, 10, "
				"12, 14, 63\nproto = 200, icmpv6\n"), 0);
	fx->printed = print_table(&fx->table);
	assert_non_null(strstr(fx->printed, "dscp = 0-7, 9, af11, af12, af13, 63\n"));
	assert_non_null(strstr(fx->printed, "proto = icmpv6, 200\n"));
	assert_int_equal(parse(fx, &fx->other, fx->printed), 0);
	assert_memory_equal(&fx->table, &fx->other, sizeof(fx->table));
}

struct bad_config {
	const char *text;
	const char *message;
};

static const struct bad_config bad_configs[] = {
	{ "[rule \"a\"]\nclass = voip\nflavour = 1\n",
	  "test.ini:3: [rule \"a\"] key 'flavour': unknown key (expected class, proto, port, "
	  "sport, dport, dscp, size_min, size_max, rate_min, rate_max, bytes_min or bytes_max)" },
	{ "[classify]\ndefault = web\nfallback = bulk\n",
	  "test.ini:3: [classify] key 'fallback': unknown key (expected default)" },
	{ "[classify]\ndefault = video\n",
	  "test.ini:2: [classify] key 'default': 'video' is not gaming, voip, streaming, bulk or web" },
	{ "[rules]\nclass = web\n",
	  "test.ini:1: [rules]: unknown section (expected [classify] or [rule \"NAME\"])" },
	{ "class = web\n[rule \"a\"]\nclass = web\n", "test.ini:1: key 'class' outside any section" },
	{ "[rule \"a\"]\nclass = voip\nport = 1\nport = 2\n",
	  "test.ini:4: [rule \"a\"] key 'port': given twice in this section (an indented line "
	  "continues the previous key's value)" },
	{ "[rule \"a\"]\nclass = voip\nport = 1\n  dscp = ef\n",
	  "test.ini:4: [rule \"a\"] key 'port': given twice in this section (an indented line "
	  "continues the previous key's value)" },
	{ "[rule \"a\"]\nclass = voip\n\n[rule \"b\"]\nclass = web\n[rule \"a\"]\nclass = bulk\n",
	  "test.ini:6: [rule \"a\"]: rule defined twice (first at line 1)" },
	{ "[classify]\ndefault = web\n[classify]\ndefault = bulk\n",
	  "test.ini:3: [classify]: section given twice (first at line 1)" },
	{ "# header\n[rule \"a\"]\nproto = udp\n[rule \"b\"]\nclass = web\n",
	  "test.ini:2: [rule \"a\"]: no class= key" },
	{ "[rule \"a\"]\nproto = udp\n", "test.ini:1: [rule \"a\"]: no class= key" },
	{ "[rule \"a\"]\n; nothing yet\n[rule \"b\"]\nclass = web\n",
	  "test.ini:1: [rule \"a\"]: section has no keys" },
	{ "[rule \"a\"]\nclass = web\n[rule \"b\"]\n", "test.ini:3: [rule \"b\"]: section has no keys" },
	{ "[rule \"a\"]\nclass = video\n",
	  "test.ini:2: [rule \"a\"] key 'class': 'video' is not gaming, voip, streaming, bulk or web" },
	{ "[rule \"a\"]\nclass = web\ndport = 70000\n",
	  "test.ini:3: [rule \"a\"] key 'dport': '70000' is not a port or LO-HI port range (0-65535)" },
	{ "[rule \"a\"]\nclass = web\nsport = 10-x\n",
	  "test.ini:3: [rule \"a\"] key 'sport': '10-x' is not a port or LO-HI port range (0-65535)" },
	{ "[rule \"a\"]\nclass = web\nport = 90-80\n",
	  "test.ini:3: [rule \"a\"] key 'port': range '90-80' has its low end above its high end" },
	{ "[rule \"a\"]\nclass = web\nport = 1,2,3,4,5,6,7,8,9,10,11,12,13\n",
	  "test.ini:3: [rule \"a\"] key 'port': more than 12 port ranges" },
	{ "[rule \"a\"]\nclass = web\nport = 1,,2\n",
	  "test.ini:3: [rule \"a\"] key 'port': empty list entry in '1,,2'" },
	{ "[rule \"a\"]\nclass = web\ndscp = af44\n",
	  "test.ini:3: [rule \"a\"] key 'dscp': 'af44' is not a DSCP value 0-63, LO-HI, csN, afXY, "
	  "ef, va or le" },
	{ "[rule \"a\"]\nclass = web\ndscp = 64\n",
	  "test.ini:3: [rule \"a\"] key 'dscp': '64' is not a DSCP value 0-63, LO-HI, csN, afXY, "
	  "ef, va or le" },
	{ "[rule \"a\"]\nclass = web\nproto = sctp\n",
	  "test.ini:3: [rule \"a\"] key 'proto': 'sctp' is not tcp, udp, icmp, icmpv6 or a number "
	  "0-255" },
	{ "[rule \"a\"]\nclass = web\nproto = 1,2,3,4,5,6,7,8,9\n",
	  "test.ini:3: [rule \"a\"] key 'proto': more than 8 protocols" },
	{ "[rule \"a\"]\nclass = web\nsize_max = 4294967296\n",
	  "test.ini:3: [rule \"a\"] key 'size_max': '4294967296' is not a whole number 0-4294967295" },
	{ "[rule \"a\"]\nclass = web\nbytes_min = -1\n",
	  "test.ini:3: [rule \"a\"] key 'bytes_min': '-1' is not a whole number "
	  "0-18446744073709551615" },
	{ "[rule \"a\"]\nclass = web\nrate_min = 1e3\n",
	  "test.ini:3: [rule \"a\"] key 'rate_min': '1e3' is not a whole number 0-4294967295" },
	{ "[rule \"a\"]\nclass = web\nsize_min = 1500\nsize_max = 100\n",
	  "test.ini:1: [rule \"a\"]: size_min is above size_max" },
	{ "[rule \"a\"]\nclass = web\nrate_min = 10\nrate_max = 1\n",
	  "test.ini:1: [rule \"a\"]: rate_min is above rate_max" },
	{ "[rule \"a\"]\nclass = web\nbytes_min = 10\nbytes_max = 1\n",
	  "test.ini:1: [rule \"a\"]: bytes_min is above bytes_max" },
	{ "[rule \"a\"]\nclass =\n", "test.ini:2: [rule \"a\"] key 'class': no value" },
	{ "[rule a]\nclass = web\n",
	  "test.ini:1: [rule a]: a rule section is [rule \"NAME\"], NAME 1-31 characters of A-Z "
	  "a-z 0-9 _ . -" },
	{ "[rule \"a b\"]\nclass = web\n",
	  "test.ini:1: [rule \"a b\"]: a rule section is [rule \"NAME\"], NAME 1-31 characters of "
	  "A-Z a-z 0-9 _ . -" },
	{ "[rule \"a\"]\nclass = web\nthis line has no equals sign\n",
	  "test.ini:3: syntax error: expected [section], key = value or a comment (# or ;)" },
	{ "[rule \"a\"]\nclass = web\n[rule \"b\"\nclass = bulk\n",
	  "test.ini:3: syntax error: expected [section], key = value or a comment (# or ;)" },
	{ "", "test.ini:1: no [classify] or [rule] section" },
	{ "# only a comment\n\n", "test.ini:2: no [classify] or [rule] section" },
};

static void test_errors(void **state)
{
	struct fixture *fx = *state;

	classify_table_default(&fx->table);
	memcpy(&fx->other, &fx->table, sizeof(fx->table));
	for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
		int ret = parse(fx, &fx->table, bad_configs[i].text);

		if (ret != -EINVAL || strcmp(fx->err.msg, bad_configs[i].message) != 0)
			fail_msg("config #%zu: ret %d, message\n  %s\nexpected\n  %s", i, ret,
				 fx->err.msg, bad_configs[i].message);
		/* Nothing half-written: the table is as before. */
		assert_memory_equal(&fx->table, &fx->other, sizeof(fx->table));
	}
}

static void test_errors_in_raw_bytes(void **state)
{
	struct fixture *fx = *state;
	static const char with_nul[] = "[rule \"a\"]\nclass = web\npo\0rt = 1\n";
	char long_line[300];

	assert_int_equal(classify_table_parse(&fx->table, with_nul, sizeof(with_nul) - 1, "x.ini",
					      &fx->err), -EINVAL);
	assert_string_equal(fx->err.msg, "x.ini:3: NUL byte at byte offset 25");

	snprintf(long_line, sizeof(long_line), "[rule \"a\"]\nclass = web\n# %0250d\n", 0);
	assert_int_equal(parse(fx, &fx->table, long_line), -EINVAL);
	assert_string_equal(fx->err.msg, "test.ini:3: line longer than 197 characters");

	/* Not NUL-terminated: only len bytes are read. */
	assert_int_equal(classify_table_parse(&fx->table, "[rule \"a\"]\nclass = web\nport = 1x",
					      31, "x.ini", &fx->err), 0);
	assert_int_equal(fx->table.rule[0].port.range[0].lo, 1);
	/* CRLF line ends and a UTF-8 byte order mark are fine. */
	assert_int_equal(parse(fx, &fx->table, "\xef\xbb\xbf[rule \"a\"]\r\nclass = web\r\n"), 0);
	assert_int_equal(fx->table.n_rules, 1);
}

static void test_load_errors(void **state)
{
	struct fixture *fx = *state;
	FILE *f;
	int fd;

	assert_int_equal(classify_table_load(&fx->table, "/nonexistent/classes.ini", &fx->err), -ENOENT);
	assert_string_equal(fx->err.msg, "/nonexistent/classes.ini: cannot open: No such file or directory");

	snprintf(fx->tmp_path, sizeof(fx->tmp_path), "/tmp/test_classify.XXXXXX");
	fd = mkstemp(fx->tmp_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	/* One byte over the 1 MiB limit, in comment lines. */
	for (int i = 0; i < 1024 * 1024 / 64; i++)
		fprintf(f, "#%062d\n", i);
	fputc('\n', f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(classify_table_load(&fx->table, fx->tmp_path, &fx->err),
			 -EFBIG);
	assert_non_null(strstr(fx->err.msg, ": larger than 1048576 bytes"));

	/* Errors in a file name the file. */
	f = fopen(fx->tmp_path, "w");
	assert_non_null(f);
	fputs("[rule \"x\"]\nclass = web\ndport = http\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(classify_table_load(&fx->table, fx->tmp_path, &fx->err),
			 -EINVAL);
	assert_true(strncmp(fx->err.msg, fx->tmp_path, strlen(fx->tmp_path)) == 0);
	assert_string_equal(fx->err.msg + strlen(fx->tmp_path),
			    ":3: [rule \"x\"] key 'dport': 'http' is not a port or LO-HI port range "
			    "(0-65535)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_class_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_match_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_in_raw_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
