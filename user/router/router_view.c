/* The router's table for `reflexctl paths`: JSON out, JSON back in, text: see router_view.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_read.h"
#include "lib/json_write.h"
#include "router/router_view.h"

static const char *const counter_names[ROUTER_CNT_MAX] = ROUTER_COUNTER_NAMES;
static const char *const map_names[ROUTER_VIEW_MAPS] = ROUTER_VIEW_MAP_NAMES;
/* The suffix of a data direction's fields (enum router_dir), as bytes_up/bytes_down. */
static const char *const dir_names[ROUTER_DIR_MAX] = { "up", "down" };

/* One table of router_core_stats' fields, used by the printer and the reader. */
#define STATS_FIELDS(X)                                                                              \
	X(records) X(flows_seen) X(placed) X(adopted) X(unsteered) X(decide_errors) X(reclassified) \
	X(rewards) X(failovers) X(paths_failed) X(forgotten)

/* ---- JSON out ---------------------------------------------------------------- */

static void json_string_or_null(FILE *out, const char *s)
{
	if (s[0])
		json_write_string(out, s, strlen(s));
	else
		fputs("null", out);
}

/* bandit_view_print_json's object without its closing newline. */
static int bandit_json(const struct bandit_view *bv, FILE *out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int ret;

	if (!mem)
		return -ENOMEM;
	ret = bandit_view_print_json(bv, mem);
	if (fclose(mem) != 0 && !ret)
		ret = -EIO;
	while (!ret && len && buf[len - 1] == '\n')
		len--;
	if (!ret)
		fwrite(buf, 1, len, out);
	free(buf);
	return ret;
}

static void link_json(FILE *out, const struct router_link_view *l)
{
	fputs("{\"path\":", out);
	json_write_string(out, l->path, strlen(l->path));
	fputs(",\"iface\":", out);
	json_write_string(out, l->iface, strlen(l->iface));
	fputs(",\"nexthop4\":", out);
	json_string_or_null(out, l->nexthop4);
	fputs(",\"nexthop6\":", out);
	json_string_or_null(out, l->nexthop6);
	fprintf(out, ",\"link_up\":%s,\"tx_packets\":%llu,\"tx_bytes\":%llu,\"rx_packets\":%llu,\"rx_bytes\":%llu,"
		     "\"steered_packets\":%llu,\"sent_packets\":%llu,\"retrans_packets\":%llu,\"delivered_bytes\":%llu,"
		     "\"last_failover_ns\":%llu,\"last_failover_flows\":%u}",
		l->link_up ? "true" : "false", (unsigned long long)l->stats.tx_packets,
		(unsigned long long)l->stats.tx_bytes, (unsigned long long)l->stats.rx_packets,
		(unsigned long long)l->stats.rx_bytes, (unsigned long long)l->stats.steered_packets,
		(unsigned long long)l->stats.sent_packets, (unsigned long long)l->stats.retrans_packets,
		(unsigned long long)l->stats.delivered_bytes, (unsigned long long)l->last_failover_ns,
		l->last_failover_flows);
}

static void flow_json(FILE *out, const struct router_flow_view *f)
{
	fputs("{\"flow\":", out);
	json_write_string(out, f->flow, strlen(f->flow));
	fprintf(out, ",\"class\":\"%s\",\"rule\":", traffic_class_name(f->cls));
	json_string_or_null(out, f->rule);
	fputs(",\"path\":", out);
	json_string_or_null(out, f->path);
	fprintf(out, ",\"closed\":%s,\"from_start\":%s,\"moves\":%u,\"rtt_us\":", f->closed ? "true" : "false",
		f->from_start ? "true" : "false", f->moves);
	json_write_number(out, f->rtt_us);
	fputs(",\"path_rtt_us\":", out);
	json_write_number(out, f->path_rtt_us);
	fputs(",\"lan_rtt_min_us\":", out);
	json_write_number(out, f->lan_rtt_min_us);
	fputs(",\"loss_rate\":", out);
	json_write_number(out, f->loss_rate);
	fputs(",\"throughput_bps\":", out);
	json_write_number(out, f->throughput_bps);
	fputs(",\"reward\":", out);
	json_write_number(out, f->reward);
	fprintf(out, ",\"rewards\":%llu,\"bytes_up\":%llu,\"bytes_down\":%llu,\"retrans_packets\":%llu,"
		     "\"age_ms\":%llu,\"idle_ms\":%llu,\"handshake\":%s",
		(unsigned long long)f->rewards, (unsigned long long)f->bytes_up, (unsigned long long)f->bytes_down,
		(unsigned long long)f->retrans_packets, (unsigned long long)f->age_ms, (unsigned long long)f->idle_ms,
		f->handshake ? "true" : "false");
	for (int d = 0; d < ROUTER_DIR_MAX; d++) {
		fprintf(out, ",\"delivery_rate_bps_%s\":", dir_names[d]);
		json_write_number(out, f->delivery_rate_bps[d]);
		fprintf(out, ",\"cwnd_target_%s\":%u,\"cap_bytes_%s\":%u,\"wnd_enforced_%s\":%u", dir_names[d],
			f->cwnd_target[d], dir_names[d], f->cap_bytes[d], dir_names[d], f->wnd_enforced[d]);
	}
	fputc('}', out);
}

int router_view_print_json(const struct router_view *v, FILE *out)
{
	int ret;

	fprintf(out, "{\"pid\":%d,\"lan\":", v->pid);
	json_write_string(out, v->lan, strlen(v->lan));
	fprintf(out, ",\"now_ns\":%llu,\"uptime_s\":", (unsigned long long)v->now_ns);
	json_write_number(out, v->uptime_s);
	fputs(",\"bandit\":", out);
	ret = bandit_json(&v->bandit, out);
	if (ret)
		return ret;
	fputs(",\"links\":[", out);
	for (uint32_t i = 0; i < v->n_links && i < ROUTER_MAX_PATHS; i++) {
		if (i)
			fputc(',', out);
		link_json(out, &v->link[i]);
	}
	fprintf(out, "],\"flows_total\":%u,\"flows\":[", v->flows_total);
	for (uint32_t i = 0; i < v->n_flows && i < ROUTER_VIEW_MAX_FLOWS; i++) {
		if (i)
			fputc(',', out);
		flow_json(out, &v->flow[i]);
	}
	fputs("],\"stats\":{", out);
	{
		const char *sep = "";
#define STAT_OUT(name)                                                                      \
	fprintf(out, "%s\"" #name "\":%llu", sep, (unsigned long long)v->stats.name);        \
	sep = ",";
		STATS_FIELDS(STAT_OUT)
#undef STAT_OUT
	}
	fputs("},\"counters\":{", out);
	for (int i = 0; i < ROUTER_CNT_MAX; i++)
		fprintf(out, "%s\"%s\":%llu", i ? "," : "", counter_names[i], (unsigned long long)v->counters[i]);
	fputs("},\"maps\":{", out);
	for (int i = 0; i < ROUTER_VIEW_MAPS; i++)
		fprintf(out, "%s\"%s\":{\"entries\":%u,\"max_entries\":%u}", i ? "," : "", map_names[i],
			v->maps[i].entries, v->maps[i].max_entries);
	fputs("}}\n", out);
	return ferror(out) ? -EIO : 0;
}

/* ---- text ------------------------------------------------------------------- */

static void print_or_dash(FILE *out, const char *fmt_num, double v, int width)
{
	if (isfinite(v) && v != 0)
		fprintf(out, fmt_num, width, v);
	else
		fprintf(out, "%*s", width, "-");
}

int router_view_print_text(const struct router_view *v, FILE *out)
{
	int ret;

	fprintf(out, "reflexd pid %d, LAN %s, up %.0f s; %llu flows placed, %llu adopted, %llu unsteered, "
		     "%llu moved by failover\n\n",
		v->pid, v->lan, v->uptime_s, (unsigned long long)v->stats.placed, (unsigned long long)v->stats.adopted,
		(unsigned long long)v->stats.unsteered, (unsigned long long)v->stats.failovers);
	ret = bandit_view_print_text(&v->bandit, out);
	if (ret)
		return ret;
	fprintf(out, "\n%-15s  %-15s  %-15s  %-4s  %12s  %14s  %12s  %14s  %10s\n", "PATH", "IFACE", "NEXTHOP", "LINK",
		"TX_PACKETS", "TX_BYTES", "RX_PACKETS", "RX_BYTES", "FAILOVERS");
	for (uint32_t i = 0; i < v->n_links && i < ROUTER_MAX_PATHS; i++) {
		const struct router_link_view *l = &v->link[i];

		fprintf(out, "%-15s  %-15s  %-15s  %-4s  %12llu  %14llu  %12llu  %14llu  %10u\n", l->path, l->iface,
			l->nexthop4[0] ? l->nexthop4 : l->nexthop6[0] ? l->nexthop6 : "-", l->link_up ? "up" : "down",
			(unsigned long long)l->stats.tx_packets, (unsigned long long)l->stats.tx_bytes,
			(unsigned long long)l->stats.rx_packets, (unsigned long long)l->stats.rx_bytes,
			l->last_failover_flows);
	}
	fprintf(out, "\nFLOWS (%u, largest %u)\n%-52s  %-9s  %-15s  %9s  %9s  %14s  %7s  %5s\n", v->flows_total, v->n_flows,
		"FLOW", "CLASS", "PATH", "RTT_US", "LOSS_RATE", "THROUGHPUT_BPS", "REWARD", "MOVES");
	for (uint32_t i = 0; i < v->n_flows && i < ROUTER_VIEW_MAX_FLOWS; i++) {
		const struct router_flow_view *f = &v->flow[i];

		fprintf(out, "%-52s  %-9s  %-15s  ", f->flow, traffic_class_name(f->cls),
			f->path[0] ? f->path : f->closed ? "(closed)" : "(unsteered)");
		print_or_dash(out, "%*.0f", f->rtt_us, 9);
		fprintf(out, "  %9.4f  %14.0f  ", isfinite(f->loss_rate) ? f->loss_rate : 0,
			isfinite(f->throughput_bps) ? f->throughput_bps : 0);
		if (isfinite(f->reward))
			fprintf(out, "%7.4f", f->reward);
		else
			fprintf(out, "%7s", "-");
		fprintf(out, "  %5u\n", f->moves);
	}
	fprintf(out, "\n%-18s  %9s  %11s  %6s\n", "MAP", "ENTRIES", "MAX_ENTRIES", "FILL");
	for (int i = 0; i < ROUTER_VIEW_MAPS; i++)
		fprintf(out, "%-18s  %9u  %11u  %5.1f%%\n", map_names[i], v->maps[i].entries, v->maps[i].max_entries,
			v->maps[i].max_entries ? 100.0 * v->maps[i].entries / v->maps[i].max_entries : 0.0);
	fprintf(out, "uplink_unknown %llu (packets from an uplink of no LAN flow), flow_fail %llu, place_fail %llu\n",
		(unsigned long long)v->counters[ROUTER_CNT_UPLINK_UNKNOWN],
		(unsigned long long)v->counters[ROUTER_CNT_FLOW_FAIL],
		(unsigned long long)v->counters[ROUTER_CNT_PLACE_FAIL]);
	return ferror(out) ? -EIO : 0;
}

/* ---- JSON in ----------------------------------------------------------------- */

struct reader {
	struct reflex_err *err;
	int ret;
};

static int bad(struct reader *r, const struct json_value *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(struct reader *r, const struct json_value *at, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	if (r->ret)
		return r->ret;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	reflex_err_set(r->err, "%s", what);
	reflex_err_at_offset(r->err, at ? (long long)at->offset : 0);
	r->ret = -EINVAL;
	return r->ret;
}

static const struct json_value *member(struct reader *r, const struct json_value *obj, const char *where,
				       const char *key, enum json_type type, bool nullable)
{
	const struct json_value *v = json_get(obj, key);

	if (r->ret)
		return NULL;
	if (!v) {
		bad(r, obj, "%s: no \"%s\"", where, key);
		return NULL;
	}
	if (nullable && v->type == JSON_NULL)
		return v;
	if (v->type != type) {
		bad(r, v, "%s.\"%s\": expected %s, got %s", where, key, json_type_name(type), json_type_name(v->type));
		return NULL;
	}
	return v;
}

/* A number; null reads as null_as (NAN, INFINITY or 0 per field). */
static double num(struct reader *r, const struct json_value *obj, const char *where, const char *key, double null_as)
{
	const struct json_value *v = member(r, obj, where, key, JSON_NUMBER, true);

	if (!v)
		return 0;
	if (v->type == JSON_NULL)
		return null_as;
	if (!isfinite(v->number))
		bad(r, v, "%s.\"%s\": not a finite number", where, key);
	return v->number;
}

static uint64_t count(struct reader *r, const struct json_value *obj, const char *where, const char *key, uint64_t max)
{
	const struct json_value *v = member(r, obj, where, key, JSON_NUMBER, false);

	if (!v)
		return 0;
	/* 2^64 is the first double past the range; whole numbers only. */
	if (!(v->number >= 0 && v->number < 18446744073709551616.0 && v->number == floor(v->number) &&
	      v->number <= (double)max)) {
		bad(r, v, "%s.\"%s\": expected a whole number in 0..%llu", where, key, (unsigned long long)max);
		return 0;
	}
	return (uint64_t)v->number;
}

static bool flag(struct reader *r, const struct json_value *obj, const char *where, const char *key)
{
	const struct json_value *v = member(r, obj, where, key, JSON_BOOL, false);

	return v && v->boolean;
}

/* A string into buf; null as "" when nullable. */
static void text(struct reader *r, const struct json_value *obj, const char *where, const char *key, char *buf,
		 size_t size, bool nullable)
{
	const struct json_value *v = member(r, obj, where, key, JSON_STRING, nullable);

	buf[0] = '\0';
	if (!v || v->type == JSON_NULL)
		return;
	if (strlen(v->string) >= size) {
		bad(r, v, "%s.\"%s\": longer than %zu bytes", where, key, size - 1);
		return;
	}
	memcpy(buf, v->string, strlen(v->string) + 1);
}

static const struct json_value *array(struct reader *r, const struct json_value *obj, const char *where,
				      const char *key, size_t max)
{
	const struct json_value *v = member(r, obj, where, key, JSON_ARRAY, false);

	if (v && v->n > max) {
		bad(r, v, "%s.\"%s\": more than %zu entries", where, key, max);
		return NULL;
	}
	return v;
}

static void read_config(struct reader *r, const struct json_value *b, struct bandit_config *c)
{
	char mode[32];
	int m;

	text(r, b, "bandit", "mode", mode, sizeof(mode), false);
	m = bandit_mode_from_name(mode);
	if (!r->ret && m < 0)
		bad(r, json_get(b, "mode"), "bandit.\"mode\": '%s' is not a bandit mode", mode);
	c->mode = m < 0 ? BANDIT_MODE_UCB1 : (enum bandit_mode)m;
	c->c = num(r, b, "bandit", "c", 0);
	c->gamma = num(r, b, "bandit", "gamma", 0);
	c->window = (uint32_t)count(r, b, "bandit", "window", UINT32_MAX);
	c->bonus_scale = num(r, b, "bandit", "bonus_scale", 0);
	c->herd_slack = num(r, b, "bandit", "herd_slack", 0);
	c->dead_after_ns = count(r, b, "bandit", "dead_after_ns", UINT64_MAX);
}

static void read_bandit_paths(struct reader *r, const struct json_value *b, struct bandit_view *bv)
{
	const struct json_value *paths = array(r, b, "bandit", "paths", BANDIT_MAX_PATHS);

	bv->n_paths = paths ? (uint32_t)paths->n : 0;
	for (uint32_t i = 0; i < bv->n_paths && !r->ret; i++) {
		const struct json_value *p = &paths->items[i];
		struct bandit_path_view *pv = &bv->path[i];
		struct path_metrics *m = &pv->metrics;
		char where[48];

		snprintf(where, sizeof(where), "bandit.paths[%u]", i);
		if (p->type != JSON_OBJECT) {
			bad(r, p, "%s: expected an object", where);
			return;
		}
		text(r, p, where, "path", pv->name, sizeof(pv->name), false);
		m->available = flag(r, p, where, "available");
		m->rtt_us = num(r, p, where, "rtt_us", 0);
		m->rtt_var_us = num(r, p, where, "rtt_var_us", 0);
		m->loss_rate = num(r, p, where, "loss_rate", 0);
		m->throughput_bps = num(r, p, where, "throughput_bps", 0);
		m->last_update_ns = count(r, p, where, "last_update_ns", UINT64_MAX);
		m->last_delivery_ns = count(r, p, where, "last_delivery_ns", UINT64_MAX);
		pv->flows = (uint32_t)count(r, p, where, "flows", UINT32_MAX);
		pv->capacity_share = num(r, p, where, "capacity_share", 0);
		pv->admits_new_flow = flag(r, p, where, "admits_new_flow");
	}
}

static void read_arms(struct reader *r, const struct json_value *b, struct bandit_view *bv)
{
	const struct json_value *classes = array(r, b, "bandit", "classes", TRAFFIC_CLASS_COUNT);

	for (size_t k = 0; classes && k < classes->n && !r->ret; k++) {
		const struct json_value *cv = &classes->items[k];
		const struct json_value *arms;
		char where[48], name[16];
		int cls;

		snprintf(where, sizeof(where), "bandit.classes[%zu]", k);
		if (cv->type != JSON_OBJECT) {
			bad(r, cv, "%s: expected an object", where);
			return;
		}
		text(r, cv, where, "class", name, sizeof(name), false);
		cls = traffic_class_from_name(name);
		if (!r->ret && cls < 0) {
			bad(r, json_get(cv, "class"), "%s.\"class\": '%s' is not a traffic class", where, name);
			return;
		}
		arms = array(r, cv, where, "arms", BANDIT_MAX_PATHS);
		if (arms && arms->n != bv->n_paths) {
			bad(r, arms, "%s.\"arms\": %zu arms for %u paths", where, arms->n, bv->n_paths);
			return;
		}
		for (size_t p = 0; arms && p < arms->n && !r->ret; p++) {
			const struct json_value *a = &arms->items[p];
			struct bandit_arm_view *av = &bv->arm[cls][p];
			char awhere[64], path[BANDIT_PATH_NAME_LEN];

			snprintf(awhere, sizeof(awhere), "%s.arms[%zu]", where, p);
			if (a->type != JSON_OBJECT) {
				bad(r, a, "%s: expected an object", awhere);
				return;
			}
			text(r, a, awhere, "path", path, sizeof(path), false);
			if (!r->ret && strcmp(path, bv->path[p].name))
				bad(r, json_get(a, "path"), "%s.\"path\": '%s', but path %zu is '%s'", awhere, path, p,
				    bv->path[p].name);
			av->pulls = num(r, a, awhere, "pulls", 0);
			av->pulls_total = count(r, a, awhere, "pulls_total", UINT64_MAX);
			av->mean_reward = num(r, a, awhere, "mean_reward", NAN);
			av->bonus = num(r, a, awhere, "bonus", 0);
			av->ucb_index = num(r, a, awhere, "ucb_index", INFINITY); /* null: untried */
			av->flows = (uint32_t)count(r, a, awhere, "flows", UINT32_MAX);
		}
	}
}

static void read_links(struct reader *r, const struct json_value *root, struct router_view *v)
{
	const struct json_value *links = array(r, root, "view", "links", ROUTER_MAX_PATHS);

	v->n_links = links ? (uint32_t)links->n : 0;
	for (uint32_t i = 0; i < v->n_links && !r->ret; i++) {
		const struct json_value *o = &links->items[i];
		struct router_link_view *l = &v->link[i];
		char where[32];

		snprintf(where, sizeof(where), "links[%u]", i);
		if (o->type != JSON_OBJECT) {
			bad(r, o, "%s: expected an object", where);
			return;
		}
		text(r, o, where, "path", l->path, sizeof(l->path), false);
		text(r, o, where, "iface", l->iface, sizeof(l->iface), false);
		text(r, o, where, "nexthop4", l->nexthop4, sizeof(l->nexthop4), true);
		text(r, o, where, "nexthop6", l->nexthop6, sizeof(l->nexthop6), true);
		l->link_up = flag(r, o, where, "link_up");
		l->stats.tx_packets = count(r, o, where, "tx_packets", UINT64_MAX);
		l->stats.tx_bytes = count(r, o, where, "tx_bytes", UINT64_MAX);
		l->stats.rx_packets = count(r, o, where, "rx_packets", UINT64_MAX);
		l->stats.rx_bytes = count(r, o, where, "rx_bytes", UINT64_MAX);
		l->stats.steered_packets = count(r, o, where, "steered_packets", UINT64_MAX);
		l->stats.sent_packets = count(r, o, where, "sent_packets", UINT64_MAX);
		l->stats.retrans_packets = count(r, o, where, "retrans_packets", UINT64_MAX);
		l->stats.delivered_bytes = count(r, o, where, "delivered_bytes", UINT64_MAX);
		l->last_failover_ns = count(r, o, where, "last_failover_ns", UINT64_MAX);
		l->last_failover_flows = (uint32_t)count(r, o, where, "last_failover_flows", UINT32_MAX);
	}
}

static void read_flows(struct reader *r, const struct json_value *root, struct router_view *v)
{
	const struct json_value *flows = array(r, root, "view", "flows", ROUTER_VIEW_MAX_FLOWS);

	v->n_flows = flows ? (uint32_t)flows->n : 0;
	for (uint32_t i = 0; i < v->n_flows && !r->ret; i++) {
		const struct json_value *o = &flows->items[i];
		struct router_flow_view *f = &v->flow[i];
		char where[32], cls[16];
		int k;

		snprintf(where, sizeof(where), "flows[%u]", i);
		if (o->type != JSON_OBJECT) {
			bad(r, o, "%s: expected an object", where);
			return;
		}
		text(r, o, where, "flow", f->flow, sizeof(f->flow), false);
		text(r, o, where, "class", cls, sizeof(cls), false);
		k = traffic_class_from_name(cls);
		if (!r->ret && k < 0)
			bad(r, json_get(o, "class"), "%s.\"class\": '%s' is not a traffic class", where, cls);
		f->cls = k < 0 ? TRAFFIC_WEB : (enum traffic_class)k;
		text(r, o, where, "rule", f->rule, sizeof(f->rule), true);
		text(r, o, where, "path", f->path, sizeof(f->path), true);
		f->closed = flag(r, o, where, "closed");
		f->from_start = flag(r, o, where, "from_start");
		f->moves = (uint32_t)count(r, o, where, "moves", UINT32_MAX);
		f->rtt_us = num(r, o, where, "rtt_us", 0);
		f->path_rtt_us = num(r, o, where, "path_rtt_us", 0);
		f->lan_rtt_min_us = num(r, o, where, "lan_rtt_min_us", 0);
		f->loss_rate = num(r, o, where, "loss_rate", 0);
		f->throughput_bps = num(r, o, where, "throughput_bps", 0);
		f->reward = num(r, o, where, "reward", NAN);
		f->rewards = count(r, o, where, "rewards", UINT64_MAX);
		f->bytes_up = count(r, o, where, "bytes_up", UINT64_MAX);
		f->bytes_down = count(r, o, where, "bytes_down", UINT64_MAX);
		f->retrans_packets = count(r, o, where, "retrans_packets", UINT64_MAX);
		f->age_ms = count(r, o, where, "age_ms", UINT64_MAX);
		f->idle_ms = count(r, o, where, "idle_ms", UINT64_MAX);
		f->handshake = flag(r, o, where, "handshake");
		for (int d = 0; d < ROUTER_DIR_MAX; d++) {
			char key[32];

			snprintf(key, sizeof(key), "delivery_rate_bps_%s", dir_names[d]);
			f->delivery_rate_bps[d] = num(r, o, where, key, 0);
			snprintf(key, sizeof(key), "cwnd_target_%s", dir_names[d]);
			f->cwnd_target[d] = (uint32_t)count(r, o, where, key, UINT32_MAX);
			snprintf(key, sizeof(key), "cap_bytes_%s", dir_names[d]);
			f->cap_bytes[d] = (uint32_t)count(r, o, where, key, UINT32_MAX);
			snprintf(key, sizeof(key), "wnd_enforced_%s", dir_names[d]);
			f->wnd_enforced[d] = (uint32_t)count(r, o, where, key, UINT32_MAX);
		}
	}
}

static void read_stats(struct reader *r, const struct json_value *root, struct router_view *v)
{
	const struct json_value *stats = member(r, root, "view", "stats", JSON_OBJECT, false);
	const struct json_value *counters = member(r, root, "view", "counters", JSON_OBJECT, false);

	if (!stats || !counters)
		return;
#define STAT_IN(name) v->stats.name = count(r, stats, "stats", #name, UINT64_MAX);
	STATS_FIELDS(STAT_IN)
#undef STAT_IN
	for (int i = 0; i < ROUTER_CNT_MAX; i++)
		v->counters[i] = count(r, counters, "counters", counter_names[i], UINT64_MAX);
}

static void read_maps(struct reader *r, const struct json_value *root, struct router_view *v)
{
	const struct json_value *maps = member(r, root, "view", "maps", JSON_OBJECT, false);

	for (int i = 0; maps && i < ROUTER_VIEW_MAPS; i++) {
		const struct json_value *m = member(r, maps, "maps", map_names[i], JSON_OBJECT, false);

		if (!m)
			return;
		v->maps[i].entries = (uint32_t)count(r, m, map_names[i], "entries", UINT32_MAX);
		v->maps[i].max_entries = (uint32_t)count(r, m, map_names[i], "max_entries", UINT32_MAX);
	}
}

int router_view_parse_json(const char *text_in, size_t len, struct router_view *v, struct reflex_err *err)
{
	struct reader r = { .err = err };
	const struct json_value *b;
	struct json_value *root;
	int ret;

	memset(v, 0, sizeof(*v));
	ret = json_parse(text_in, len, &root, err);
	if (ret)
		return ret;
	if (root->type != JSON_OBJECT) {
		bad(&r, root, "expected an object, got %s", json_type_name(root->type));
		goto out;
	}
	v->pid = (int)count(&r, root, "view", "pid", INT32_MAX);
	text(&r, root, "view", "lan", v->lan, sizeof(v->lan), false);
	v->now_ns = count(&r, root, "view", "now_ns", UINT64_MAX);
	v->uptime_s = num(&r, root, "view", "uptime_s", 0);
	b = member(&r, root, "view", "bandit", JSON_OBJECT, false);
	if (b) {
		read_config(&r, b, &v->bandit.config);
		v->bandit.now_ns = count(&r, b, "bandit", "now_ns", UINT64_MAX);
		read_bandit_paths(&r, b, &v->bandit);
		read_arms(&r, b, &v->bandit);
	}
	read_links(&r, root, v);
	v->flows_total = (uint32_t)count(&r, root, "view", "flows_total", UINT32_MAX);
	read_flows(&r, root, v);
	read_stats(&r, root, v);
	read_maps(&r, root, v);
out:
	json_free(root);
	return r.ret;
}
