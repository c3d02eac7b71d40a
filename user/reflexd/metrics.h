/*
 * reflexd's Prometheus endpoint: a libmicrohttpd server on its own thread serving
 * GET /metrics in the text exposition format. The HTTP thread never reads the
 * daemon's state: the main loop renders the whole page (metrics_render) and
 * publishes it under a mutex (metrics_publish); a scrape copies the latest page.
 */
#ifndef REFLEX_REFLEXD_METRICS_H
#define REFLEX_REFLEXD_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

struct controller;
struct telemetry;
struct reflex_bpf;

/* [ADDR:]PORT: an IPv4 address or [IPv6], and a port 1..65535; a port alone means
 * 127.0.0.1. Returns 0 and fills addr, or -1. */
int metrics_parse_listen(const char *spec, struct sockaddr_storage *addr, socklen_t *addr_len);
bool metrics_listen_valid(const char *spec);

/* A page rendered at each scrape, on the HTTP thread: it may read only what is safe
 * there (files, BPF maps), never the main loop's memory. */
typedef int (*metrics_render_fn)(FILE *out, void *ctx);

struct metrics_server {
	struct MHD_Daemon *httpd;
	metrics_render_fn render; /* NULL: serve the page published last */
	void *render_ctx;
	pthread_mutex_t lock;
	char *page;       /* the latest published page (owned) */
	size_t page_len;
	uint64_t scrapes; /* under lock */
};

/* Starts serving on spec the published page, or with render what it renders at each
 * scrape; 0, or -1 with err naming the address and the cause. */
int metrics_start(struct metrics_server *m, const char *spec, metrics_render_fn render, void *render_ctx,
		  char *err, size_t err_len);
/* Replaces the page the server hands out (takes a copy). */
void metrics_publish(struct metrics_server *m, const char *page, size_t len);
void metrics_stop(struct metrics_server *m);

/* What the main loop knows beside the controller and the telemetry. */
struct metrics_daemon_view {
	double start_unix_s;
	double heartbeat_age_s;   /* < 0: no heartbeat written (observe mode) */
	const char *mode;         /* observe, shadow, acting */
	const char *actuator;     /* clamp, cc */
	uint64_t windows;
	uint64_t qdisc_errors;
	uint64_t reloads;
	uint64_t scrapes;
};

/* The models a controller may hold, by role. */
enum metrics_role { METRICS_ROLE_CWND, METRICS_ROLE_DQN, METRICS_ROLE_BATCHING, METRICS_ROLES };

/* What rendering remembers between pages: decisions split by the policy and
 * acted/shadow in force when they were counted, and each loaded model's SHA-256
 * (computed once per load). Zero it before the first page. */
struct metrics_state {
	uint64_t seen_decisions, seen_batching;
	uint64_t decisions[3][2]; /* heuristic, cwnd-tree, dqn x shadow, acted */
	uint64_t batching[2];
	struct {
		const void *model; /* the struct model the SHA belongs to */
		const char *path;
		char sha256[65];
		double loaded_unix_s;
	} models[METRICS_ROLES];
};

/* Brings state up to date with the controller (call once per page). */
void metrics_state_update(struct metrics_state *st, const struct controller *c, double now_unix_s);

/* Renders the exposition page into a memory stream (open_memstream). rb may have
 * no sockops (tc only). Returns 0, or -1 if the stream failed. */
int metrics_render(FILE *out, const struct metrics_daemon_view *view, const struct metrics_state *st,
		   const struct controller *c, const struct telemetry *t, const struct reflex_bpf *rb);

/* Edge-router mode: the page of the view the router publishes (a JSON file, see
 * router_view.h) at path; ctx is that path. */
int metrics_render_router(FILE *out, void *path);

/* reflexctl status's view of the same (key=value lines, /run/reflex/PIN.status). */
int metrics_status_render(FILE *out, const struct metrics_daemon_view *view, const struct metrics_state *st,
			  const struct controller *c, const struct telemetry *t, const char *iface,
			  const char *last_error);

#endif
