#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fileio.h"
#include "lib/bpf_maps.h"
#include "lib/file_sha256.h"
#include "reflexd/controller.h"
#include "reflexd/loader.h"
#include "reflexd/metrics.h"
#include "reflexd/telemetry.h"
#include "router/router_view.h"
#include "sockops.skel.h"
#include "tc.skel.h"

#ifndef REFLEX_GIT_DESCRIBE
#define REFLEX_GIT_DESCRIBE "unknown"
#endif

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static bool parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || n < 1 || n > 65535)
		return false;
	*port = (uint16_t)n;
	return true;
}

int metrics_parse_listen(const char *spec, struct sockaddr_storage *addr, socklen_t *addr_len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	uint16_t port;

	memset(addr, 0, sizeof(*addr));
	if (spec[0] == '[') { /* [IPv6]:PORT */
		const char *close = strstr(spec, "]:");
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;

		if (!close || (size_t)(close - spec - 1) >= sizeof(host) || !parse_port(close + 2, &port))
			return -1;
		memcpy(host, spec + 1, close - spec - 1);
		host[close - spec - 1] = '\0';
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*addr_len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)addr;

	colon = strrchr(spec, ':');
	if (!colon) {
		if (!parse_port(spec, &port))
			return -1;
		a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		if ((size_t)(colon - spec) >= sizeof(host) || !parse_port(colon + 1, &port))
			return -1;
		memcpy(host, spec, colon - spec);
		host[colon - spec] = '\0';
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -1;
	}
	a4->sin_family = AF_INET;
	a4->sin_port = htons(port);
	*addr_len = sizeof(*a4);
	return 0;
}

bool metrics_listen_valid(const char *spec)
{
	struct sockaddr_storage addr;
	socklen_t len;

	return metrics_parse_listen(spec, &addr, &len) == 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
			     const char *type)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct metrics_server *m = cls;
	char *body = NULL;
	size_t len = 0;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("GET /metrics\n"), 13, "text/plain");
	if (strcmp(url, "/metrics")) {
		body = strdup("reflexd: metrics are at /metrics\n");
		return reply(conn, MHD_HTTP_NOT_FOUND, body, body ? strlen(body) : 0, "text/plain");
	}
	if (m->render) {
		FILE *f = open_memstream(&body, &len);
		int render_ret, close_ret;

		pthread_mutex_lock(&m->lock);
		m->scrapes++;
		pthread_mutex_unlock(&m->lock);
		if (!f)
			return MHD_NO;
		render_ret = m->render(f, m->render_ctx);
		/* Closed on every path: the stream owns its own state besides body. */
		close_ret = fclose(f);
		if (render_ret || close_ret) {
			free(body);
			return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, strdup("no state yet\n"), 13, "text/plain");
		}
		return reply(conn, MHD_HTTP_OK, body, len, CONTENT_TYPE);
	}
	pthread_mutex_lock(&m->lock);
	m->scrapes++;
	if (m->page) {
		body = malloc(m->page_len);
		if (body) {
			memcpy(body, m->page, m->page_len);
			len = m->page_len;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (!body)
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, strdup("starting\n"), 9, "text/plain");
	return reply(conn, MHD_HTTP_OK, body, len, CONTENT_TYPE);
}

int metrics_start(struct metrics_server *m, const char *spec, metrics_render_fn render, void *render_ctx,
		  char *err, size_t err_len)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	memset(m, 0, sizeof(*m));
	m->render = render;
	m->render_ctx = render_ctx;
	if (metrics_parse_listen(spec, &addr, &addr_len)) {
		snprintf(err, err_len, "--metrics-listen: '%s' is not [ADDR:]PORT", spec);
		return -1;
	}
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	pthread_mutex_init(&m->lock, NULL);
	errno = 0;
	m->httpd = MHD_start_daemon(flags, ntohs(((struct sockaddr_in *)&addr)->sin_port), NULL, NULL, on_request, m,
				    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 16,
				    MHD_OPTION_CONNECTION_TIMEOUT, 10, MHD_OPTION_END);
	if (!m->httpd) {
		snprintf(err, err_len, "cannot serve metrics on %s: %s", spec, errno ? strerror(errno) : "failed");
		pthread_mutex_destroy(&m->lock);
		return -1;
	}
	return 0;
}

void metrics_publish(struct metrics_server *m, const char *page, size_t len)
{
	char *copy;

	if (!m->httpd || !(copy = malloc(len ? len : 1)))
		return;
	memcpy(copy, page, len);
	pthread_mutex_lock(&m->lock);
	free(m->page);
	m->page = copy;
	m->page_len = len;
	pthread_mutex_unlock(&m->lock);
}

void metrics_stop(struct metrics_server *m)
{
	if (!m->httpd)
		return;
	MHD_stop_daemon(m->httpd);
	m->httpd = NULL;
	free(m->page);
	m->page = NULL;
	pthread_mutex_destroy(&m->lock);
}

/* --- the page ---------------------------------------------------------------- */

static const char *const policy_names[3] = { "heuristic", "cwnd-tree", "dqn" };
static const char *const role_names[METRICS_ROLES] = { "cwnd", "dqn", "batching" };
static const char *const role_knobs[METRICS_ROLES] = { "cwnd_target", "cwnd_target", "batching" };

static int policy_index(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, policy_names[i]))
			return i;
	return 0;
}

void metrics_state_update(struct metrics_state *st, const struct controller *c, double now_unix_s)
{
	const struct model *models[METRICS_ROLES] = { c->tree.model, c->dqn.model, c->batching_model };
	const char *paths[METRICS_ROLES] = { c->tree.path, c->dqn.opt.model_path, c->opt.batching_model_path };
	bool acted = !c->opt.shadow;
	int p = policy_index(controller_policy_name(c));

	/* Counts since the last page go to what is in force now: pages come often (1 s)
	 * next to how rarely the policy or the shadow state changes. */
	st->decisions[p][acted] += c->stats.decisions - st->seen_decisions;
	st->seen_decisions = c->stats.decisions;
	st->batching[acted] += c->stats.batching_changes - st->seen_batching;
	st->seen_batching = c->stats.batching_changes;
	for (int r = 0; r < METRICS_ROLES; r++) {
		if (st->models[r].model == models[r])
			continue;
		st->models[r].model = models[r];
		st->models[r].path = paths[r];
		st->models[r].loaded_unix_s = now_unix_s;
		if (!models[r] || !paths[r] || file_sha256_hex(paths[r], st->models[r].sha256))
			st->models[r].sha256[0] = '\0';
	}
}

/* A label value with \, " and newline escaped as the exposition format wants. */
static void put_label(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', out);
		if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *out, const char *name, double value)
{
	if (isnan(value))
		fprintf(out, "%s NaN\n", name);
	else if (isinf(value))
		fprintf(out, "%s %sInf\n", name, value > 0 ? "+" : "-");
	else
		fprintf(out, "%s %.17g\n", name, value);
}

static void sample_u(FILE *out, const char *name, uint64_t value)
{
	fprintf(out, "%s %llu\n", name, (unsigned long long)value);
}

#define RENDERED_MAPS_MAX 32

static void render_bpf(FILE *out, const struct reflex_bpf *rb)
{
	static const char *const names[] = REFLEX_COUNTER_NAMES;
	int fd = loader_counters_fd(rb);
	struct bpf_object *objs[2] = { rb->sockops ? rb->sockops->obj : NULL, rb->tc ? rb->tc->obj : NULL };
	/* read before tc_flows is walked (tc_flow_evicted) */
	uint64_t tc_flow_new = fd >= 0 ? bpf_counter_sum(fd, CNT_TC_FLOW_NEW) : 0;
	struct map_pressure maps[RENDERED_MAPS_MAX];
	const char *map_names[RENDERED_MAPS_MAX]; /* libbpf's: the kernel's are cut at 15 characters */
	int n_maps = 0, tc_flows = -1;
	struct bpf_map *map;

	/* one walk of each hash map (a walk costs a system call per entry) */
	for (int o = 0; o < 2; o++) {
		if (!objs[o])
			continue;
		bpf_object__for_each_map(map, objs[o]) {
			if (n_maps == RENDERED_MAPS_MAX || bpf_map__fd(map) < 0 ||
			    !bpf_map_pressure(bpf_map__fd(map), &maps[n_maps]))
				continue;
			if (rb->tc && map == rb->tc->maps.tc_flows)
				tc_flows = n_maps;
			map_names[n_maps++] = bpf_map__name(map);
		}
	}
	if (fd >= 0) {
		family(out, "reflex_bpf_events_total", "counter",
		       "Events counted by the BPF programs (enum reflex_counter), summed over CPUs, and "
		       "tc_flow_evicted (tc_flow_new minus live tc_flows entries).");
		for (int i = 0; i < CNT_MAX; i++)
			fprintf(out, "reflex_bpf_events_total{counter=\"%s\"} %llu\n", names[i],
				(unsigned long long)(i == CNT_TC_FLOW_NEW ? tc_flow_new : bpf_counter_sum(fd, i)));
		if (tc_flows >= 0)
			fprintf(out, "reflex_bpf_events_total{counter=\"tc_flow_evicted\"} %llu\n",
				(unsigned long long)tc_flow_evicted(tc_flow_new, maps[tc_flows].entries));
		family(out, "reflex_ringbuf_reserve_failures_total", "counter",
		       "Ring-buffer records the BPF side could not reserve (lost), by ring.");
		fprintf(out, "reflex_ringbuf_reserve_failures_total{ring=\"sock\"} %llu\n",
			(unsigned long long)bpf_counter_sum(fd, CNT_SOCK_RESERVE_FAIL));
		fprintf(out, "reflex_ringbuf_reserve_failures_total{ring=\"tc\"} %llu\n",
			(unsigned long long)bpf_counter_sum(fd, CNT_TC_RESERVE_FAIL));
	}
	family(out, "reflex_map_entries", "gauge", "Entries in each hash map.");
	for (int i = 0; i < n_maps; i++)
		fprintf(out, "reflex_map_entries{map=\"%s\"} %u\n", map_names[i], maps[i].entries);
	family(out, "reflex_map_max_entries", "gauge", "Capacity of each hash map.");
	for (int i = 0; i < n_maps; i++)
		fprintf(out, "reflex_map_max_entries{map=\"%s\"} %u\n", map_names[i], maps[i].max_entries);
}

static void render_flows(FILE *out, const struct telemetry *t)
{
	static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };
	enum { BOUNDS = sizeof(bounds) / sizeof(bounds[0]) };
	uint64_t counts[BOUNDS] = { 0 }, n = 0;
	double sum = 0;
	const struct flow_entry *flow;

	family(out, "reflex_flows_tracked", "gauge", "Flows reflexd holds state for.");
	sample_u(out, "reflex_flows_tracked", t->flow_count);
	family(out, "reflex_flows_seen_total", "counter", "Flows reflexd has seen since it started.");
	sample_u(out, "reflex_flows_seen_total", t->flows_seen);
	family(out, "reflex_ringbuf_records_total", "counter", "Ring-buffer records reflexd consumed, by ring.");
	fprintf(out, "reflex_ringbuf_records_total{ring=\"sock\"} %llu\n", (unsigned long long)t->sock_records);
	fprintf(out, "reflex_ringbuf_records_total{ring=\"tc\"} %llu\n", (unsigned long long)t->tc_records);

	/* per-flow values are never labels: the tracked TCP flows' srtt as one histogram */
	for (flow = telemetry_next_flow(t, NULL); flow; flow = telemetry_next_flow(t, flow)) {
		double srtt = flow->ws.srtt_us / 1e6;

		if (!flow->ws.srtt_us)
			continue;
		n++;
		sum += srtt;
		for (int i = 0; i < BOUNDS; i++)
			counts[i] += srtt <= bounds[i];
	}
	family(out, "reflex_flow_srtt_seconds", "histogram", "Smoothed RTT of the tracked TCP flows, now.");
	for (int i = 0; i < BOUNDS; i++)
		fprintf(out, "reflex_flow_srtt_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
			(unsigned long long)counts[i]);
	fprintf(out, "reflex_flow_srtt_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)n);
	sample(out, "reflex_flow_srtt_seconds_sum", sum);
	sample_u(out, "reflex_flow_srtt_seconds_count", n);
}

static void render_control(FILE *out, const struct metrics_state *st, const struct controller *c)
{
	struct dqn_learn_stats ls = c->dqn.learn_done;

	family(out, "reflex_decisions_total", "counter",
	       "Decision changes taken, by knob, policy and whether they acted (false: shadow).");
	for (int p = 0; p < 3; p++)
		for (int a = 0; a < 2; a++)
			fprintf(out, "reflex_decisions_total{knob=\"cwnd_target\",policy=\"%s\",acted=\"%s\"} %llu\n",
				policy_names[p], a ? "true" : "false", (unsigned long long)st->decisions[p][a]);
	for (int a = 0; a < 2; a++)
		fprintf(out, "reflex_decisions_total{knob=\"batching\",policy=\"batching\",acted=\"%s\"} %llu\n",
			a ? "true" : "false", (unsigned long long)st->batching[a]);
	family(out, "reflex_reversals_total", "counter",
	       "Changes of direction of a flow's cap: made, or held back by the hysteresis.");
	fprintf(out, "reflex_reversals_total{outcome=\"made\"} %llu\n", (unsigned long long)c->shadow.reversals);
	fprintf(out, "reflex_reversals_total{outcome=\"held\"} %llu\n",
		(unsigned long long)c->shadow.reversals_held_back);
	family(out, "reflex_foreign_lifts_total", "counter",
	       "Caps lifted for a queue a competing flow keeps: one that outlasted the cap's cuts (first), or "
	       "one that stayed through the returned cap (again).");
	fprintf(out, "reflex_foreign_lifts_total{kind=\"first\"} %llu\n", (unsigned long long)c->stats.foreign_lifts);
	fprintf(out, "reflex_foreign_lifts_total{kind=\"again\"} %llu\n",
		(unsigned long long)c->stats.foreign_relifts);
	family(out, "reflex_decision_map_errors_total", "counter", "Failed writes of decisions or heartbeats.");
	sample_u(out, "reflex_decision_map_errors_total", c->stats.map_errors);

	family(out, "reflex_shadow", "gauge", "1 while decisions are computed and logged but not enforced.");
	sample_u(out, "reflex_shadow", c->opt.shadow);
	family(out, "reflex_shadow_evaluated_total", "counter", "Decided windows replayed in the simulator.");
	sample_u(out, "reflex_shadow_evaluated_total", c->shadow.evaluated);
	family(out, "reflex_shadow_expected_delta_p95_ratio", "gauge",
	       "Expected relative change of RTT p95 under the decisions (-0.1: 10 % lower).");
	sample(out, "reflex_shadow_expected_delta_p95_ratio", shadow_delta_p95(&c->shadow));
	family(out, "reflex_shadow_oscillations_per_30s", "gauge", "Most reversals any flow made within 30 s.");
	sample(out, "reflex_shadow_oscillations_per_30s", shadow_oscillations_per_30s(&c->shadow));

	if (c->dqn.learner) {
		struct dqn_learn_stats now;

		dqn_learn_stats(c->dqn.learner, &now);
		ls.queued += now.queued;
		ls.dropped += now.dropped;
		ls.processed += now.processed;
		ls.updates += now.updates;
		ls.generation = now.generation;
	}
	family(out, "reflex_learner_transitions_total", "counter",
	       "On-line learning transitions: queued, dropped (ring full) and learned from.");
	fprintf(out, "reflex_learner_transitions_total{outcome=\"queued\"} %llu\n", (unsigned long long)ls.queued);
	fprintf(out, "reflex_learner_transitions_total{outcome=\"dropped\"} %llu\n", (unsigned long long)ls.dropped);
	fprintf(out, "reflex_learner_transitions_total{outcome=\"processed\"} %llu\n",
		(unsigned long long)ls.processed);
	family(out, "reflex_learner_updates_total", "counter", "Gradient updates the learner made.");
	sample_u(out, "reflex_learner_updates_total", ls.updates);
	family(out, "reflex_learner_generation", "gauge", "Generation of the latest published fine-tuned model.");
	sample_u(out, "reflex_learner_generation", ls.generation);
	family(out, "reflex_learn_guard_canary_decisions_total", "counter",
	       "Decisions the loaded model made as a canary while a fine-tuned one decided.");
	sample_u(out, "reflex_learn_guard_canary_decisions_total", c->dqn.canary_decisions);
	family(out, "reflex_learn_guard_checks_total", "counter", "Comparisons of fine-tuned and loaded model.");
	sample_u(out, "reflex_learn_guard_checks_total", c->dqn.guard.checks);
	family(out, "reflex_learn_guard_rollbacks_total", "counter", "Fine-tuned models rolled back.");
	sample_u(out, "reflex_learn_guard_rollbacks_total", c->dqn.guard.rollbacks);
}

static void render_drift(FILE *out, const struct controller *c)
{
	const struct model_drift *watched[] = { &c->cwnd_drift, &c->batching_drift };
	char series[160];

	family(out, "reflex_model_drift_psi", "gauge",
	       "Mean PSI of a tree model's inputs over the drift window against its training reference.");
	for (size_t i = 0; i < 2; i++)
		if (watched[i]->active)
			fprintf(out, "reflex_model_drift_psi{role=\"%s\"} %.6g\n", watched[i]->role,
				watched[i]->drift.total);
	family(out, "reflex_model_drift_feature_psi", "gauge", "PSI of one input of a tree model.");
	for (size_t i = 0; i < 2; i++)
		for (unsigned f = 0; watched[i]->active && f < watched[i]->model->feature_count; f++) {
			snprintf(series, sizeof(series), "reflex_model_drift_feature_psi{role=\"%s\",feature=\"%s\"}",
				 watched[i]->role, watched[i]->model->features[f].name);
			sample(out, series, watched[i]->drift.psi[f]);
		}
	family(out, "reflex_model_drift_threshold", "gauge",
	       "PSI above which a tree model hands over (--drift-threshold, or the model's calibrated one); 0: never.");
	for (int i = 0; i < 2; i++)
		if (watched[i]->active)
			fprintf(out, "reflex_model_drift_threshold{role=\"%s\"} %.6g\n", watched[i]->role,
				watched[i]->guard.threshold);
	family(out, "reflex_model_handed_over", "gauge", "1 while a drifting model's decisions are handed over.");
	for (size_t i = 0; i < 2; i++)
		if (watched[i]->active)
			fprintf(out, "reflex_model_handed_over{role=\"%s\"} %d\n", watched[i]->role,
				watched[i]->guard.handed_over);
	family(out, "reflex_model_drift_handovers_total", "counter", "Hand-overs of a model's decisions for drift.");
	for (size_t i = 0; i < 2; i++)
		if (watched[i]->active)
			fprintf(out, "reflex_model_drift_handovers_total{role=\"%s\"} %llu\n", watched[i]->role,
				(unsigned long long)watched[i]->guard.handovers);
	family(out, "reflex_model_drift_returns_total", "counter", "Returns of a model's decisions after drift.");
	for (size_t i = 0; i < 2; i++)
		if (watched[i]->active)
			fprintf(out, "reflex_model_drift_returns_total{role=\"%s\"} %llu\n", watched[i]->role,
				(unsigned long long)watched[i]->guard.returns);
}

static void render_anomaly(FILE *out, const struct controller *c)
{
	family(out, "reflex_anomaly_handovers_total", "counter",
	       "Flows handed to the heuristic because their windows scored anomalous against the cwnd tree's forest.");
	sample_u(out, "reflex_anomaly_handovers_total", c->stats.anomaly_handovers);
	family(out, "reflex_anomaly_returns_total", "counter", "Flows the cwnd tree decides again after an anomaly.");
	sample_u(out, "reflex_anomaly_returns_total", c->stats.anomaly_returns);
	family(out, "reflex_anomaly_flows", "gauge", "Flows the heuristic decides now for their anomaly score.");
	sample_u(out, "reflex_anomaly_flows", c->stats.anomaly_flows);
}

/* anomaly=HANDOVERS RETURNS FLOWS, then flow_anomaly=FLOW SCORE HANDED (SCORE in
 * 1/ANOMALY_SCALE) for up to STATUS_MAX_FLOW_LINES scored flows, for reflexctl flows. */
#define STATUS_MAX_FLOW_LINES 4096
static void status_anomaly(FILE *out, const struct controller *c)
{
	char name[FLOW_NAME_MAX];
	unsigned lines = 0;

	fprintf(out, "anomaly=%llu %llu %u\n", (unsigned long long)c->stats.anomaly_handovers,
		(unsigned long long)c->stats.anomaly_returns, c->stats.anomaly_flows);
	for (const struct flow_control *fc = flow_table_next(&c->flows, NULL); fc && lines < STATUS_MAX_FLOW_LINES;
	     fc = flow_table_next(&c->flows, fc)) {
		if (fc->anomaly.score == ANOMALY_NOT_SCORED)
			continue;
		fprintf(out, "flow_anomaly=%s %d %d\n", flow_key_format(&fc->flow->key, name, sizeof(name)), fc->anomaly.score,
			flow_anomaly_handed(&fc->anomaly));
		lines++;
	}
}

/* drift=ROLE PSI WINDOWS HANDED_OVER HANDOVERS RETURNS TOP THRESHOLD (TOP: feature:psi,...
 * or -; THRESHOLD 0: never handed over) */
static void status_drift(FILE *out, const struct model_drift *md)
{
	unsigned top[3], n;

	if (!md->active)
		return;
	fprintf(out, "drift=%s %.4f %u %d %llu %llu ", md->role, md->drift.total, md->drift.windows,
		md->guard.handed_over, (unsigned long long)md->guard.handovers, (unsigned long long)md->guard.returns);
	n = md->model->feature_count < 3 ? md->model->feature_count : 3;
	if (!md->valid)
		n = 0;
	drift_top_features(&md->drift, top, n);
	for (unsigned k = 0; k < n; k++)
		fprintf(out, "%s%s:%.3f", k ? "," : "", md->model->features[top[k]].name, md->drift.psi[top[k]]);
	fprintf(out, "%s %.4f\n", n ? "" : "-", md->guard.threshold);
}

static void render_models(FILE *out, const struct metrics_state *st)
{
	family(out, "reflex_model_info", "gauge", "A loaded model: its knob, role, file and SHA-256 (value 1).");
	for (int r = 0; r < METRICS_ROLES; r++) {
		if (!st->models[r].model)
			continue;
		fprintf(out, "reflex_model_info{knob=\"%s\",role=\"%s\",model=\"", role_knobs[r], role_names[r]);
		put_label(out, st->models[r].path);
		fprintf(out, "\",sha256=\"%s\"} 1\n", st->models[r].sha256);
	}
	family(out, "reflex_model_loaded_timestamp_seconds", "gauge", "When each loaded model was loaded.");
	for (int r = 0; r < METRICS_ROLES; r++)
		if (st->models[r].model)
			fprintf(out, "reflex_model_loaded_timestamp_seconds{role=\"%s\"} %.3f\n", role_names[r],
				st->models[r].loaded_unix_s);
}

int metrics_render(FILE *out, const struct metrics_daemon_view *v, const struct metrics_state *st,
		   const struct controller *c, const struct telemetry *t, const struct reflex_bpf *rb)
{
	family(out, "reflex_build_info", "gauge", "reflexd's version (value 1).");
	fprintf(out, "reflex_build_info{version=\"%s\",mode=\"%s\",actuator=\"%s\"} 1\n", REFLEX_GIT_DESCRIBE,
		v->mode, v->actuator);
	family(out, "reflex_start_time_seconds", "gauge", "When reflexd started, in seconds since the epoch.");
	sample(out, "reflex_start_time_seconds", v->start_unix_s);
	if (v->heartbeat_age_s >= 0) {
		family(out, "reflex_heartbeat_age_seconds", "gauge",
		       "Age of the heartbeat the BPF side checks before enforcing decisions.");
		sample(out, "reflex_heartbeat_age_seconds", v->heartbeat_age_s);
	}
	family(out, "reflex_windows_total", "counter", "Feature windows computed (interface and flows).");
	sample_u(out, "reflex_windows_total", v->windows);
	family(out, "reflex_qdisc_read_errors_total", "counter", "Failed reads of the root qdisc's statistics.");
	sample_u(out, "reflex_qdisc_read_errors_total", v->qdisc_errors);
	family(out, "reflex_reloads_total", "counter", "Reloads (SIGHUP or a replaced model file).");
	sample_u(out, "reflex_reloads_total", v->reloads);
	family(out, "reflex_metrics_scrapes_total", "counter", "Scrapes of this endpoint.");
	sample_u(out, "reflex_metrics_scrapes_total", v->scrapes);
	render_bpf(out, rb);
	render_flows(out, t);
	render_models(out, st);
	render_control(out, st, c);
	render_drift(out, c);
	render_anomaly(out, c);
	return ferror(out) ? -1 : 0;
}

int metrics_status_render(FILE *out, const struct metrics_daemon_view *v, const struct metrics_state *st,
			  const struct controller *c, const struct telemetry *t, const char *iface,
			  const char *last_error)
{
	fprintf(out, "pid=%d\nversion=%s\nstart_unix=%.3f\niface=%s\nmode=%s\nactuator=%s\npolicy=%s\n",
		(int)getpid(), REFLEX_GIT_DESCRIBE, v->start_unix_s, iface, v->mode, v->actuator,
		c->opt.policy == CWND_POLICY_OFF ? "off" : controller_policy_name(c));
	fprintf(out, "flows=%u\nflows_seen=%llu\nwindows=%llu\ndecisions=%llu\nreversals=%llu\nreversals_held=%llu\n",
		t->flow_count, (unsigned long long)t->flows_seen, (unsigned long long)v->windows,
		(unsigned long long)c->stats.decisions, (unsigned long long)c->shadow.reversals,
		(unsigned long long)c->shadow.reversals_held_back);
	for (int r = 0; r < METRICS_ROLES; r++)
		if (st->models[r].model)
			fprintf(out, "model=%s %s %.3f %s\n", role_names[r], st->models[r].sha256[0] ?
				st->models[r].sha256 : "-", st->models[r].loaded_unix_s, st->models[r].path);
	status_drift(out, &c->cwnd_drift);
	status_drift(out, &c->batching_drift);
	status_anomaly(out, c);
	/* one line: the error is the rest of it */
	fprintf(out, "last_error=");
	for (const char *p = last_error; p && *p && *p != '\n'; p++)
		fputc(*p, out);
	fputc('\n', out);
	return ferror(out) ? -1 : 0;
}

/* --- edge router ---------------------------------------------------------------- */

/* One gauge per path of the bandit's view. */
static void per_path(FILE *out, const struct bandit_view *b, const char *name, const char *help,
		     const double *values)
{
	char series[128];

	family(out, name, "gauge", help);
	for (uint32_t i = 0; i < b->n_paths; i++) {
		snprintf(series, sizeof(series), "%s{path=\"%s\"}", name, b->path[i].name);
		sample(out, series, values[i]);
	}
}

static void render_router(FILE *out, const struct router_view *v)
{
	static const char *const counter_names[] = ROUTER_COUNTER_NAMES;
	const struct bandit_view *b = &v->bandit;

	family(out, "reflex_build_info", "gauge", "reflexd's version (value 1).");
	fprintf(out, "reflex_build_info{version=\"%s\",mode=\"router\",actuator=\"mark\"} 1\n",
		REFLEX_GIT_DESCRIBE);
	family(out, "reflex_router_uptime_seconds", "gauge", "How long the router runtime has run.");
	sample(out, "reflex_router_uptime_seconds", v->uptime_s);
	family(out, "reflex_router_bpf_events_total", "counter",
	       "Events counted by the router's BPF program (enum router_counter), summed over CPUs.");
	for (int i = 0; i < ROUTER_CNT_MAX; i++)
		fprintf(out, "reflex_router_bpf_events_total{counter=\"%s\"} %llu\n", counter_names[i],
			(unsigned long long)v->counters[i]);
	family(out, "reflex_router_flows_tracked", "gauge", "Forwarded flows the router holds state for.");
	sample_u(out, "reflex_router_flows_tracked", v->flows_total);
	{
		static const char *const map_names[] = ROUTER_VIEW_MAP_NAMES;

		family(out, "reflex_router_map_entries", "gauge", "Entries of each flow map of the router's BPF program.");
		for (int i = 0; i < ROUTER_VIEW_MAPS; i++)
			fprintf(out, "reflex_router_map_entries{map=\"%s\"} %u\n", map_names[i], v->maps[i].entries);
		family(out, "reflex_router_map_max_entries", "gauge", "What each flow map of the router can hold.");
		for (int i = 0; i < ROUTER_VIEW_MAPS; i++)
			fprintf(out, "reflex_router_map_max_entries{map=\"%s\"} %u\n", map_names[i],
				v->maps[i].max_entries);
	}

	family(out, "reflex_router_path_up", "gauge", "1 while the path's link is up and it is available.");
	for (uint32_t i = 0; i < b->n_paths; i++) {
		bool link_up = i < v->n_links ? v->link[i].link_up : true;

		fprintf(out, "reflex_router_path_up{path=\"%s\"} %d\n", b->path[i].name,
			link_up && b->path[i].metrics.available);
	}
	{
		double flows[BANDIT_MAX_PATHS], rtt[BANDIT_MAX_PATHS], loss[BANDIT_MAX_PATHS], rate[BANDIT_MAX_PATHS];

		for (uint32_t i = 0; i < b->n_paths; i++) {
			flows[i] = b->path[i].flows;
			rtt[i] = b->path[i].metrics.rtt_us / 1e6;
			loss[i] = b->path[i].metrics.loss_rate;
			rate[i] = b->path[i].metrics.throughput_bps / 8;
		}
		per_path(out, b, "reflex_router_path_flows", "Live flows on each path, every class.", flows);
		per_path(out, b, "reflex_router_path_rtt_seconds", "Smoothed RTT measured on each path.", rtt);
		per_path(out, b, "reflex_router_path_loss_ratio", "Retransmitted over sent packets on each path.", loss);
		per_path(out, b, "reflex_router_path_throughput_bytes_per_second", "Delivered bytes per second.", rate);
	}
	family(out, "reflex_router_path_transmit_bytes_total", "counter", "Bytes sent onto each uplink.");
	for (uint32_t i = 0; i < v->n_links; i++)
		fprintf(out, "reflex_router_path_transmit_bytes_total{path=\"%s\"} %llu\n", v->link[i].path,
			(unsigned long long)v->link[i].stats.tx_bytes);

	family(out, "reflex_router_pulls_total", "counter", "Rewards each class's bandit received per path.");
	for (int c = 0; c < TRAFFIC_CLASS_COUNT; c++)
		for (uint32_t i = 0; i < b->n_paths; i++)
			fprintf(out, "reflex_router_pulls_total{class=\"%s\",path=\"%s\"} %llu\n",
				traffic_class_name(c), b->path[i].name, (unsigned long long)b->arm[c][i].pulls_total);
	family(out, "reflex_router_mean_reward", "gauge", "Mean reward in [0, 1] per class and path (NaN: none).");
	for (int c = 0; c < TRAFFIC_CLASS_COUNT; c++)
		for (uint32_t i = 0; i < b->n_paths; i++) {
			char name[96];

			snprintf(name, sizeof(name), "reflex_router_mean_reward{class=\"%s\",path=\"%s\"}",
				 traffic_class_name(c), b->path[i].name);
			sample(out, name, b->arm[c][i].mean_reward);
		}
	family(out, "reflex_router_flows", "gauge", "Live flows per class and path.");
	for (int c = 0; c < TRAFFIC_CLASS_COUNT; c++)
		for (uint32_t i = 0; i < b->n_paths; i++)
			fprintf(out, "reflex_router_flows{class=\"%s\",path=\"%s\"} %u\n", traffic_class_name(c),
				b->path[i].name, b->arm[c][i].flows);
}

int metrics_render_router(FILE *out, void *path)
{
	struct router_view *v = calloc(1, sizeof(*v));
	struct reflex_err ferr = { 0 };
	struct reflex_err err = { 0 };
	char *text = NULL;
	size_t len = 0;
	int ret = -1;

	if (!v || fileio_read_bounded(path, (1 << 22) - 1, &text, &len, &ferr) ||
	    router_view_parse_json(text, len, v, &err))
		goto out;
	render_router(out, v);
	ret = ferror(out) ? -1 : 0;
out:
	free(text);
	free(v);
	return ret;
}
