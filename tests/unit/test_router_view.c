// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The `reflexctl paths` file: router_view to JSON and back, the text tables, and the
 * JSON reader's refusals (each naming the byte and the field). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/json_read.h"
#include "router/router_view.h"

struct fixture {
	struct bandit *b;
	struct router_view *v;
	struct router_view *back;
	char *json;
	size_t json_len;
	char *text;
	struct json_value *doc;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	*state = fx;
	if (!fx)
		return -1;
	fx->v = calloc(1, sizeof(*fx->v));
	fx->back = calloc(1, sizeof(*fx->back));
	return fx->v && fx->back ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	bandit_free(fx->b);
	free(fx->v);
	free(fx->back);
	free(fx->json);
	free(fx->text);
	json_free(fx->doc);
	free(fx);
	return 0;
}

/* A view as reflexd fills it: a real bandit with rewards, two links, two flows. */
static void fill(struct fixture *fx)
{
	struct router_view *v = fx->v;
	struct bandit_config cfg;
	struct path_sample s = { .ts_ns = 5000, .interval_ns = 100000000, .rtt_us = 12000, .sent_packets = 100,
				 .retrans_packets = 2, .delivered_bytes = 125000 };

	bandit_config_default(&cfg, BANDIT_MODE_DISCOUNTED);
	fx->b = bandit_new(&cfg);
	assert_non_null(fx->b);
	assert_int_equal(bandit_add_path(fx->b, "path1"), 0);
	assert_int_equal(bandit_add_path(fx->b, "path2"), 1);
	assert_int_equal(bandit_path_update(fx->b, 0, &s), 0);
	assert_int_equal(bandit_reward(fx->b, TRAFFIC_BULK, 0, 0.625), 0);
	assert_int_equal(bandit_flow_start(fx->b, TRAFFIC_BULK, 0), 0);
	bandit_path_set_available(fx->b, 1, false);

	v->pid = 4242;
	snprintf(v->lan, sizeof(v->lan), "rfx-rc");
	v->now_ns = 123456789012ULL;
	v->uptime_s = 12.5;
	bandit_snapshot(fx->b, v->now_ns, &v->bandit);
	v->n_links = 2;
	snprintf(v->link[0].path, sizeof(v->link[0].path), "path1");
	snprintf(v->link[0].iface, sizeof(v->link[0].iface), "rfx-r1");
	snprintf(v->link[0].nexthop4, sizeof(v->link[0].nexthop4), "10.12.1.2");
	v->link[0].link_up = true;
	v->link[0].stats = (struct router_path_stats){ 10, 15000, 5, 300, 9, 8, 1, 14000 };
	snprintf(v->link[1].path, sizeof(v->link[1].path), "path2");
	snprintf(v->link[1].iface, sizeof(v->link[1].iface), "rfx-r2");
	snprintf(v->link[1].nexthop6, sizeof(v->link[1].nexthop6), "fd00:12:2::2");
	v->link[1].last_failover_ns = 99;
	v->link[1].last_failover_flows = 3;
	v->flows_total = 7;
	v->n_flows = 2;
	snprintf(v->flow[0].flow, sizeof(v->flow[0].flow), "tcp:10.11.1.2:40000-10.11.9.1:873");
	v->flow[0].cls = TRAFFIC_BULK;
	snprintf(v->flow[0].rule, sizeof(v->flow[0].rule), "bulk-ports");
	snprintf(v->flow[0].path, sizeof(v->flow[0].path), "path1");
	v->flow[0].from_start = true;
	v->flow[0].rtt_us = 12345.5;
	v->flow[0].throughput_bps = 4.5e7;
	v->flow[0].reward = 0.625;
	v->flow[0].rewards = 4;
	v->flow[0].bytes_up = 1u << 24;
	v->flow[0].handshake = true;
	v->flow[0].delivery_rate_bps[ROUTER_DIR_UP] = 4.4e7;
	v->flow[0].cwnd_target[ROUTER_DIR_UP] = 61;
	v->flow[0].cap_bytes[ROUTER_DIR_UP] = 61 * 1448;
	v->flow[0].wnd_enforced[ROUTER_DIR_UP] = 88320;
	v->flow[0].wnd_enforced[ROUTER_DIR_DOWN] = 64256;
	snprintf(v->flow[1].flow, sizeof(v->flow[1].flow), "udp:[fd00:11:1::2]:5000-[fd00:11:9::1]:16400");
	v->flow[1].cls = TRAFFIC_VOIP;
	v->flow[1].closed = true;
	v->flow[1].moves = 1;
	v->flow[1].reward = NAN;
	v->stats.placed = 6;
	v->stats.failovers = 3;
	v->counters[ROUTER_CNT_STEERED] = 777;
	v->counters[ROUTER_CNT_UPLINK_UNKNOWN] = 20000;
	v->maps[ROUTER_VIEW_MAP_FLOWS] = (struct router_map_fill){ .entries = 4096, .max_entries = 16384 };
	v->maps[ROUTER_VIEW_MAP_TIMESTAMPS] = (struct router_map_fill){ .entries = 7, .max_entries = 65536 };
	v->maps[ROUTER_VIEW_MAP_WND_CAPS] = (struct router_map_fill){ .entries = 1, .max_entries = 16384 };
}

static void to_json(struct fixture *fx)
{
	FILE *mem = open_memstream(&fx->json, &fx->json_len);

	assert_non_null(mem);
	assert_int_equal(router_view_print_json(fx->v, mem), 0);
	assert_int_equal(fclose(mem), 0);
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	const struct router_view *v = fx->v, *w = fx->back;
	struct reflex_err err = { 0 };

	fill(fx);
	to_json(fx);
	if (router_view_parse_json(fx->json, fx->json_len, fx->back, &err))
		fail_msg("parse: %s\n%s", err.msg, fx->json);
	assert_int_equal(w->pid, 4242);
	assert_string_equal(w->lan, "rfx-rc");
	assert_int_equal(w->now_ns, v->now_ns);
	assert_int_equal(w->bandit.config.mode, BANDIT_MODE_DISCOUNTED);
	assert_float_equal(w->bandit.config.gamma, v->bandit.config.gamma, 0);
	assert_int_equal(w->bandit.n_paths, 2);
	assert_string_equal(w->bandit.path[1].name, "path2");
	assert_false(w->bandit.path[1].metrics.available);
	assert_float_equal(w->bandit.path[0].metrics.rtt_us, 12000, 0);
	assert_float_equal(w->bandit.path[0].metrics.loss_rate, v->bandit.path[0].metrics.loss_rate, 0);
	assert_float_equal(w->bandit.arm[TRAFFIC_BULK][0].mean_reward, 0.625, 0);
	assert_float_equal(w->bandit.arm[TRAFFIC_BULK][0].ucb_index, v->bandit.arm[TRAFFIC_BULK][0].ucb_index, 0);
	assert_int_equal(w->bandit.arm[TRAFFIC_BULK][0].flows, 1);
	/* JSON's null for "untried": back to NAN and INFINITY. */
	assert_true(isnan(w->bandit.arm[TRAFFIC_VOIP][1].mean_reward));
	assert_true(isinf(w->bandit.arm[TRAFFIC_VOIP][1].ucb_index));
	assert_int_equal(w->n_links, 2);
	assert_string_equal(w->link[0].nexthop4, "10.12.1.2");
	assert_string_equal(w->link[0].nexthop6, "");
	assert_string_equal(w->link[1].nexthop6, "fd00:12:2::2");
	assert_memory_equal(&w->link[0].stats, &v->link[0].stats, sizeof(v->link[0].stats));
	assert_int_equal(w->link[1].last_failover_flows, 3);
	assert_int_equal(w->flows_total, 7);
	assert_int_equal(w->n_flows, 2);
	assert_string_equal(w->flow[0].flow, v->flow[0].flow);
	assert_string_equal(w->flow[0].rule, "bulk-ports");
	assert_float_equal(w->flow[0].rtt_us, 12345.5, 0);
	assert_int_equal(w->flow[0].bytes_up, 1u << 24);
	/* The window caps, per data direction. */
	assert_true(w->flow[0].handshake);
	assert_false(w->flow[1].handshake);
	assert_float_equal(w->flow[0].delivery_rate_bps[ROUTER_DIR_UP], 4.4e7, 0);
	assert_float_equal(w->flow[0].delivery_rate_bps[ROUTER_DIR_DOWN], 0, 0);
	assert_int_equal(w->flow[0].cwnd_target[ROUTER_DIR_UP], 61);
	assert_int_equal(w->flow[0].cap_bytes[ROUTER_DIR_UP], 61 * 1448);
	assert_int_equal(w->flow[0].cap_bytes[ROUTER_DIR_DOWN], 0);
	assert_int_equal(w->flow[0].wnd_enforced[ROUTER_DIR_UP], 88320);
	assert_int_equal(w->flow[0].wnd_enforced[ROUTER_DIR_DOWN], 64256);
	assert_int_equal(w->flow[1].cls, TRAFFIC_VOIP);
	assert_string_equal(w->flow[1].path, "");
	assert_true(w->flow[1].closed);
	assert_true(isnan(w->flow[1].reward));
	assert_int_equal(w->stats.failovers, 3);
	assert_int_equal(w->counters[ROUTER_CNT_STEERED], 777);
	assert_int_equal(w->counters[ROUTER_CNT_UPLINK_UNKNOWN], 20000);
	assert_int_equal(w->maps[ROUTER_VIEW_MAP_FLOWS].entries, 4096);
	assert_int_equal(w->maps[ROUTER_VIEW_MAP_FLOWS].max_entries, 16384);
	assert_int_equal(w->maps[ROUTER_VIEW_MAP_DECISIONS].max_entries, 0);
	assert_int_equal(w->maps[ROUTER_VIEW_MAP_TIMESTAMPS].entries, 7);
	assert_int_equal(w->maps[ROUTER_VIEW_MAP_WND_CAPS].entries, 1);
}

static void test_text(void **state)
{
	struct fixture *fx = *state;
	size_t len = 0;
	FILE *mem;

	fill(fx);
	mem = open_memstream(&fx->text, &len);
	assert_non_null(mem);
	assert_int_equal(router_view_print_text(fx->v, mem), 0);
	assert_int_equal(fclose(mem), 0);
	assert_non_null(strstr(fx->text, "reflexd pid 4242, LAN rfx-rc"));
	assert_non_null(strstr(fx->text, "mode discounted"));
	assert_non_null(strstr(fx->text, "bulk       path1"));
	assert_non_null(strstr(fx->text, "path2            rfx-r2           fd00:12:2::2     down"));
	assert_non_null(strstr(fx->text, "tcp:10.11.1.2:40000-10.11.9.1:873"));
	assert_non_null(strstr(fx->text, "(closed)"));
	assert_non_null(strstr(fx->text, "router_flows             4096        16384   25.0%"));
	assert_non_null(strstr(fx->text, "uplink_unknown 20000"));
}

/* A JSON text that must be refused with a message holding needle. */
static void expect_refused(struct fixture *fx, const char *text, const char *needle)
{
	struct reflex_err err = { 0 };

	assert_int_equal(router_view_parse_json(text, strlen(text), fx->back, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("'%.60s...': message '%s' lacks '%s'", text, err.msg, needle);
}

/* The round-trip text with the first occurrence of from replaced by to. */
static char *edited(const struct fixture *fx, const char *from, const char *to)
{
	const char *at = strstr(fx->json, from);
	size_t head, len;
	char *out;

	assert_non_null(at);
	head = (size_t)(at - fx->json);
	len = fx->json_len - strlen(from) + strlen(to);
	out = malloc(len + 1);
	assert_non_null(out);
	memcpy(out, fx->json, head);
	memcpy(out + head, to, strlen(to));
	memcpy(out + head + strlen(to), at + strlen(from), fx->json_len - head - strlen(from));
	out[len] = '\0';
	return out;
}

static void expect_edit_refused(struct fixture *fx, const char *from, const char *to, const char *needle)
{
	char *text = edited(fx, from, to);

	expect_refused(fx, text, needle);
	free(text);
}

static void test_refusals(void **state)
{
	struct fixture *fx = *state;
	struct reflex_err err = { 0 };

	fill(fx);
	to_json(fx);
	expect_refused(fx, "[]", "byte 0: expected an object, got an array");
	expect_refused(fx, "{\"pid\":1}", "view: no \"lan\"");
	expect_edit_refused(fx, "\"pid\":4242", "\"pid\":\"4242\"", "view.\"pid\": expected a number, got a string");
	expect_edit_refused(fx, "\"pid\":4242", "\"pid\":-1", "view.\"pid\": expected a whole number");
	expect_edit_refused(fx, "\"mode\":\"discounted\"", "\"mode\":\"greedy\"", "'greedy' is not a bandit mode");
	expect_edit_refused(fx, "\"class\":\"bulk\",\"rule\"", "\"class\":\"elephant\",\"rule\"",
			    "flows[0].\"class\": 'elephant' is not a traffic class");
	expect_edit_refused(fx, "\"tx_bytes\":15000", "\"tx_bytes\":1.5", "links[0].\"tx_bytes\": expected a whole number");
	expect_edit_refused(fx, "\"rtt_us\":12345.5", "\"rtt_us\":1e999", "flows[0].\"rtt_us\": not a finite number");
	expect_edit_refused(fx, "\"arms\":[{\"path\":\"path1\"", "\"arms\":[{\"path\":\"pathX\"",
			    "'pathX', but path 0 is 'path1'");
	expect_edit_refused(fx, "\"lan\":\"rfx-rc\"", "\"lan\":\"0123456789abcdef\"", "view.\"lan\": longer than 15 bytes");
	/* JSON itself, with the byte where it breaks. */
	expect_refused(fx, "{\"a\":1,}", "byte 7: expected a string key");
	expect_refused(fx, "{\"a\":1,\"a\":2}", "byte 7: key \"a\" appears twice");
	expect_refused(fx, "{\"a\":01}", "byte 6: expected ',' or '}'");
	expect_refused(fx, "{\"a\":1.}", "byte 7: a digit must follow the decimal point");
	expect_refused(fx, "{\"a\":\"x\\q\"}", "byte 8: '\\q' is not a JSON escape");
	expect_refused(fx, "{\"a\":\"\\ud800\"}", "a high surrogate without a low one");
	expect_refused(fx, "{\"a\":tru}", "byte 5: not a JSON value");
	expect_refused(fx, "{} x", "byte 3: text after the JSON value");
	expect_refused(fx, "{\"a\":\"open", "byte 5: unterminated string");
	{
		char deep[200];

		memset(deep, '[', sizeof(deep));
		assert_int_equal(json_parse(deep, sizeof(deep), &fx->doc, &err), -EINVAL);
		assert_string_equal(err.msg, "byte 65: nested deeper than 64");
	}
	assert_int_equal(json_parse("{\"a\":\0}", 7, &fx->doc, &err), -EINVAL);
	assert_string_equal(err.msg, "byte 5: NUL byte in JSON text");
}

static void test_json_strings(void **state)
{
	struct fixture *fx = *state;
	const char *text = "{\"s\":\"a\\\"b\\\\c\\/\\n\\u00e9\\u20ac\\ud83d\\ude00\",\"n\":-1.5e2,\"t\":true,\"z\":null,"
			   "\"e\":[]}";
	const struct json_value *v;
	struct reflex_err err = { 0 };

	(void)state;
	assert_int_equal(json_parse(text, strlen(text), &fx->doc, &err), 0);
	v = json_get(fx->doc, "s");
	assert_non_null(v);
	assert_string_equal(v->string, "a\"b\\c/\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_float_equal(json_get(fx->doc, "n")->number, -150, 0);
	assert_true(json_get(fx->doc, "t")->boolean);
	assert_int_equal(json_get(fx->doc, "z")->type, JSON_NULL);
	assert_int_equal(json_get(fx->doc, "e")->type, JSON_ARRAY);
	assert_int_equal(json_get(fx->doc, "e")->n, 0);
	assert_null(json_get(fx->doc, "missing"));
	assert_int_equal(json_get(fx->doc, "n")->offset, strstr(text, "-1.5e2") - text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_strings, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
