/* The window caps of a router's forwarded TCP flows: see router_window.h. */
#include <bpf/bpf.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/flow_key.h"
#include "reflexd/router_window.h"

/* Records of a step arrive up to a poll timeout late (reflexd.c's grace too). */
#define WINDOW_GRACE_NS (20ULL * 1000 * 1000)
#define SHADOW_REPORT_NS (10ULL * 1000 * 1000 * 1000)

#define RW(a) ((struct router_window *)((char *)(a) - offsetof(struct router_window, act)))

static int other(int d)
{
	return d == ROUTER_DIR_UP ? ROUTER_DIR_DOWN : ROUTER_DIR_UP;
}

static struct flow_key key_reversed(const struct flow_key *k)
{
	struct flow_key r = *k;

	memcpy(r.saddr, k->daddr, sizeof(r.saddr));
	memcpy(r.daddr, k->saddr, sizeof(r.daddr));
	r.sport = k->dport;
	r.dport = k->sport;
	return r;
}

uint32_t router_window_segment(uint64_t payload_bytes, uint64_t data_packets)
{
	double mean;

	if (!data_packets)
		return ROUTER_WINDOW_DEFAULT_SEGMENT;
	mean = (double)payload_bytes / (double)data_packets;
	if (mean < ROUTER_WINDOW_MIN_SEGMENT)
		return ROUTER_WINDOW_DEFAULT_SEGMENT;
	return mean > ROUTER_WINDOW_MAX_SEGMENT ? ROUTER_WINDOW_MAX_SEGMENT : (uint32_t)lround(mean);
}

uint32_t router_window_cap_bytes(uint32_t cwnd_packets, uint32_t segment)
{
	uint64_t bytes = (uint64_t)cwnd_packets * segment;

	return bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
}

struct router_window_flow *router_window_flow(struct router_window *rw, const struct flow_key *key)
{
	struct router_window_flow *f;

	HASH_FIND(hh, rw->flows, key, sizeof(*key), f);
	return f;
}

/* ---- the actuator: cwnd in packets -> router_wnd_caps in bytes ------------------- */

/* The controller names a sender's flow sender first: the router's key (LAN end
 * first) for an upload, its reverse for a download. */
static struct router_window_flow *flow_of_sender(struct router_window *rw, const struct flow_key *sender, int *d)
{
	struct router_window_flow *f = router_window_flow(rw, sender);
	struct flow_key reversed;

	if (f) {
		*d = ROUTER_DIR_UP;
		return f;
	}
	reversed = key_reversed(sender);
	*d = ROUTER_DIR_DOWN;
	return router_window_flow(rw, &reversed);
}

/* Both directions' caps in one entry; none left deletes it. */
static int caps_write(struct router_window *rw, struct router_window_flow *f, uint64_t decided_ns)
{
	struct router_wnd_cap cap = { .decided_ns = decided_ns };

	for (int d = 0; d < ROUTER_DIR_MAX; d++)
		cap.cap_bytes[d] = f->dir[d].cap_bytes;
	if (rw->wnd_caps_fd < 0)
		return 0;
	if (cap.cap_bytes[ROUTER_DIR_UP] || cap.cap_bytes[ROUTER_DIR_DOWN])
		return bpf_map_update_elem(rw->wnd_caps_fd, &f->key, &cap, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(rw->wnd_caps_fd, &f->key) && errno != ENOENT)
		return -errno;
	return 0;
}

static int window_decide(struct actuator *a, const struct flow_key *key, uint32_t cwnd_target, uint64_t decided_ns)
{
	struct router_window *rw = RW(a);
	struct router_window_flow *f;
	struct router_window_dir *dir;
	int d, ret;

	f = flow_of_sender(rw, key, &d);
	if (!f)
		return cwnd_target ? -ENOENT : 0;
	dir = &f->dir[d];
	dir->cwnd_target = cwnd_target;
	dir->cap_bytes = router_window_cap_bytes(cwnd_target,
						 router_window_segment(dir->payload_bytes, dir->data_packets));
	ret = caps_write(rw, f, decided_ns);
	if (ret)
		rw->stats.map_errors++;
	else if (cwnd_target)
		rw->stats.caps_written++;
	else
		rw->stats.caps_withdrawn++;
	return ret;
}

/* router.c beats for the whole router, on the same thread as the decisions. */
static int window_beat(struct actuator *a, uint64_t now_ns)
{
	(void)a, (void)now_ns;
	return 0;
}

/* The router's telemetry pipeline keeps its knobs (no batching model on a router). */
static int window_configure(struct actuator *a, const struct reflex_config *cfg)
{
	(void)a, (void)cfg;
	return 0;
}

/* ---- telemetry: router samples -> one window series per sender ----------------- */

static struct router_window_flow *flow_add(struct router_window *rw, const struct flow_key *key)
{
	struct router_window_flow *f;

	if (rw->n_flows >= rw->max_flows)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->key = *key;
	for (int d = 0; d < ROUTER_DIR_MAX; d++) {
		struct flow_entry *e = &f->dir[d].entry;

		e->key = d == ROUTER_DIR_UP ? *key : key_reversed(key);
		window_series_init(&e->ws, e->rtt_us, FLOW_RTT_KEEP);
		/* What the controller asks of a socket's flow before deciding for it. */
		e->have_sock_totals = true;
		e->mss = ROUTER_WINDOW_DEFAULT_SEGMENT;
	}
	HASH_ADD(hh, rw->flows, key, sizeof(f->key), f);
	rw->n_flows++;
	return f;
}

static void flow_drop(struct router_window *rw, struct router_window_flow *f)
{
	for (int d = 0; d < ROUTER_DIR_MAX; d++)
		controller_flow_gone(&rw->controller, &f->dir[d].entry);
	/* The controller withdraws only what it wrote; the entry goes either way. */
	for (int d = 0; d < ROUTER_DIR_MAX; d++)
		f->dir[d].cap_bytes = 0;
	if (caps_write(rw, f, 0))
		rw->stats.map_errors++;
	HASH_DEL(rw->flows, f);
	rw->n_flows--;
	free(f);
}

/* Squares of the packet sizes, as tc_sample's size_sq_sum: the router sees only each
 * direction's total, so every packet of a direction counts at that direction's mean. */
static uint64_t size_sq_of(const struct router_dir_stats *st)
{
	return st->packets ? (uint64_t)((double)st->bytes * (double)st->bytes / (double)st->packets) : 0;
}

static void rtt_fold(struct router_window_dir *dir, uint64_t ts_ns, uint32_t rtt_us)
{
	struct window_series *ws = &dir->entry.ws;
	double srtt = ws->rtt_ewma_us;

	window_add_rtt(ws, ts_ns, rtt_us);
	dir->rttvar_us = srtt > 0 ? dir->rttvar_us + (fabs(rtt_us - srtt) - dir->rttvar_us) / 4 : rtt_us / 2.0;
	ws->srtt_us = (uint32_t)lround(ws->rtt_ewma_us);
	dir->entry.mdev_us = (uint32_t)lround(dir->rttvar_us);
}

/* One sample into sender d's series: its segments go out, the other end's ACKs come
 * in and deliver what they acknowledge. */
static void dir_fold(struct router_window_flow *f, int d, const struct router_sample *s, uint32_t rtt_us)
{
	struct router_window_dir *dir = &f->dir[d];
	const struct router_dir_stats *out = &s->delta[d], *in = &s->delta[other(d)];
	struct window_series *ws = &dir->entry.ws;
	uint32_t segment;

	dir->payload_bytes += out->payload_bytes;
	dir->data_packets += out->data_packets;
	if (out->payload_bytes)
		dir->sending = true;
	segment = router_window_segment(dir->payload_bytes, dir->data_packets);
	dir->entry.mss = segment > UINT16_MAX ? UINT16_MAX : (uint16_t)segment;
	window_add_record(ws, s->ts_ns);
	window_add_traffic(ws, s->ts_ns, in->packets, out->packets, in->bytes, out->bytes,
			   size_sq_of(in) + size_sq_of(out));
	window_add_delivery(ws, s->ts_ns, in->acked_bytes, in->acked_bytes / segment, out->retrans_packets);
	if (rtt_us)
		rtt_fold(dir, s->ts_ns, rtt_us);
}

void router_window_on_sample(struct router_window *rw, const struct router_sample *s)
{
	struct router_window_flow *f;
	uint32_t rtt_us = 0;

	if (s->key.proto != IPPROTO_TCP)
		return;
	rw->stats.samples++;
	f = router_window_flow(rw, &s->key);
	/* A NEW record for a known flow: its 5-tuple is another connection now. */
	if (f && s->event == ROUTER_EVENT_NEW) {
		flow_drop(rw, f);
		f = NULL;
	}
	if (!f && !(f = flow_add(rw, &s->key)))
		return;
	if (s->lan_rtt_us && (!f->lan_rtt_min_us || s->lan_rtt_us < f->lan_rtt_min_us))
		f->lan_rtt_min_us = s->lan_rtt_us;
	/* What either endpoint sees: the path's RTT plus the LAN's (its minimum: a LAN
	 * sample also holds how long the endpoint took to answer), as router_core.h. */
	if (s->path_rtt_us)
		rtt_us = s->path_rtt_us + f->lan_rtt_min_us;
	for (int d = 0; d < ROUTER_DIR_MAX; d++)
		dir_fold(f, d, s, rtt_us);
}

/*
 * The feature schema for sender d, from what the router sees of it. Where a router
 * cannot see what a host does, this is what stands in:
 *  - queue_depth / backlog_packets: the host's root qdisc is the sender's own queue;
 *    the bottleneck a router's flows fill is beyond the uplink, out of sight. It is
 *    estimated as the flow's standing queue, (srtt - min RTT) x delivery rate.
 *  - latency_p50/p95, rtt_ewma, srtt_us, min_rtt_us: from the router's RTT samples
 *    (path RTT by TSval/TSecr or SEQ/ACK + the LAN's minimum), at most one per sample
 *    interval, instead of every ACK's RTT; srtt is their EWMA (gain 1/8, the kernel's).
 *  - snd_cwnd (and the DQN's packets in flight): the sender's cwnd is not on the
 *    wire; what it keeps in flight is, by Little's law, delivery rate x srtt, in
 *    segments. Held at its cap (window-limited) that is the cap, as snd_cwnd is on a
 *    host, so the controller's probing works alike.
 *  - delivery_rate_bps, dequeue_rate: bytes (and segments of the segment size) the
 *    other end's ACKs acknowledged, instead of the socket's delivered counters.
 *  - retrans: sequence regressions the router saw, not the socket's retransmissions
 *    (a segment lost before the router is not seen twice).
 *  - packet_size_var: per direction only the totals: each packet at its direction's
 *    mean, so only the spread between data and ACKs shows.
 */
void router_window_compute(struct router_window_flow *f, int d, uint64_t end_ns, struct feature_window *w)
{
	struct router_window_dir *dir = &f->dir[d];
	const struct window_series *ws = &dir->entry.ws;
	double rate_Bps, srtt_us = ws->srtt_us, min_rtt_us = ws->min_rtt_us, queue_bytes = 0, inflight = 0;
	uint32_t segment = dir->entry.mss ? dir->entry.mss : ROUTER_WINDOW_DEFAULT_SEGMENT;

	window_compute(ws, end_ns, SCOPE_FLOW, NULL, NULL, w);
	flow_key_format(&dir->entry.key, w->flow, sizeof(w->flow));
	rate_Bps = w->context[CTX_DELIVERY_RATE_BPS] / 8;
	if (srtt_us > min_rtt_us && min_rtt_us > 0)
		queue_bytes = (srtt_us - min_rtt_us) / 1e6 * rate_Bps;
	if (srtt_us > 0)
		inflight = ceil(rate_Bps * srtt_us / 1e6 / segment);
	w->feature[FEAT_QUEUE_DEPTH] = queue_bytes;
	w->context[CTX_BACKLOG_PACKETS] = floor(queue_bytes / segment);
	w->context[CTX_SND_CWND] = inflight;
	dir->entry.packets_out = (uint32_t)inflight;
	dir->entry.ws.snd_cwnd = (uint32_t)inflight;
	dir->delivery_rate_bps = w->context[CTX_DELIVERY_RATE_BPS];
}

static void windows_emit(struct router_window *rw, uint64_t end_ns)
{
	struct router_window_flow *f, *tmp;
	struct feature_window w;

	HASH_ITER(hh, rw->flows, f, tmp) {
		for (int d = 0; d < ROUTER_DIR_MAX; d++) {
			if (!f->dir[d].sending || !window_active(&f->dir[d].entry.ws, end_ns))
				continue;
			router_window_compute(f, d, end_ns, &w);
			rw->stats.windows++;
			controller_on_flow_window(&rw->controller, &f->dir[d].entry, &w);
		}
	}
}

void router_window_tick(struct router_window *rw, uint64_t now_ns)
{
	if (!rw->next_window_end)
		rw->next_window_end = (now_ns / WINDOW_STEP_NS + 1) * WINDOW_STEP_NS + WINDOW_LEN_NS - WINDOW_STEP_NS;
	while (now_ns >= rw->next_window_end + WINDOW_GRACE_NS) {
		windows_emit(rw, rw->next_window_end);
		rw->next_window_end += WINDOW_STEP_NS;
	}
	if (!rw->controller.opt.shadow || !rw->shadow_status_path)
		return;
	if (!rw->next_shadow_report_ns)
		rw->next_shadow_report_ns = now_ns + SHADOW_REPORT_NS;
	if (now_ns >= rw->next_shadow_report_ns) {
		controller_shadow_report(&rw->controller, rw->shadow_status_path);
		rw->next_shadow_report_ns = now_ns + SHADOW_REPORT_NS;
	}
	if (rw->auto_promote && !rw->promote_after_ns)
		rw->promote_after_ns = now_ns + (uint64_t)(rw->promote_after_s * 1e9);
	if (rw->auto_promote && now_ns >= rw->promote_after_ns) {
		rw->auto_promote = false;
		controller_promote_by(&rw->controller, "--auto-promote", rw->shadow_status_path);
	}
}

void router_window_forget(struct router_window *rw, const struct flow_key *key)
{
	struct router_window_flow *f = router_window_flow(rw, key);

	if (f)
		flow_drop(rw, f);
}

void router_window_withdraw_all(struct router_window *rw)
{
	struct router_window_flow *f, *tmp;

	HASH_ITER(hh, rw->flows, f, tmp)
		flow_drop(rw, f);
}

/* ---- hooks -------------------------------------------------------------------------- */

static int hook_start(void *ctx, int wnd_caps_fd, char *err, size_t len)
{
	struct router_window *rw = ctx;

	(void)err, (void)len;
	rw->wnd_caps_fd = wnd_caps_fd;
	fprintf(stderr, "reflexd: window caps on forwarded TCP flows: %s policy%s\n",
		controller_policy_name(&rw->controller), rw->controller.opt.shadow ? " (shadow: nothing enforced)" : "");
	return 0;
}

static void hook_sample(void *ctx, const struct router_sample *s, uint64_t now_ns)
{
	(void)now_ns;
	router_window_on_sample(ctx, s);
}

static void hook_tick(void *ctx, uint64_t now_ns)
{
	router_window_tick(ctx, now_ns);
}

static void hook_forget(void *ctx, const struct flow_key *key)
{
	router_window_forget(ctx, key);
}

static void hook_flow_view(void *ctx, const struct flow_key *key, struct router_flow_view *fv)
{
	struct router_window_flow *f = router_window_flow(ctx, key);

	if (!f)
		return;
	for (int d = 0; d < ROUTER_DIR_MAX; d++) {
		fv->cwnd_target[d] = f->dir[d].cwnd_target;
		fv->cap_bytes[d] = f->dir[d].cap_bytes;
	}
}

static void hook_reload(void *ctx)
{
	struct router_window *rw = ctx;

	controller_reload(&rw->controller);
}

static void hook_promote(void *ctx)
{
	struct router_window *rw = ctx;

	if (!rw->controller.opt.shadow) {
		fprintf(stderr, "reflexd: SIGUSR1: not in shadow mode\n");
		return;
	}
	controller_promote_by(&rw->controller, "reflexctl promote", rw->shadow_status_path);
}

static void hook_stop(void *ctx)
{
	struct router_window *rw = ctx;
	const struct router_window_stats *st = &rw->stats;

	router_window_withdraw_all(rw);
	if (rw->controller.opt.shadow && rw->shadow_status_path)
		controller_shadow_report(&rw->controller, rw->shadow_status_path);
	fprintf(stderr, "reflexd: window caps%s: %llu samples, %llu windows, %llu decisions, %llu caps written, "
			"%llu withdrawn, %llu map errors, %llu reversals (%llu held back)\n",
		rw->controller.opt.shadow ? " (shadow)" : "", (unsigned long long)st->samples,
		(unsigned long long)st->windows, (unsigned long long)rw->controller.stats.decisions,
		(unsigned long long)st->caps_written, (unsigned long long)st->caps_withdrawn,
		(unsigned long long)st->map_errors, (unsigned long long)rw->controller.shadow.reversals,
		(unsigned long long)rw->controller.shadow.reversals_held_back);
	rw->wnd_caps_fd = -1;
}

int router_window_init(struct router_window *rw, const struct controller_opts *opt, const struct reflex_config *cfg,
		       uint32_t max_flows, const char *shadow_status_path, double promote_after_s)
{
	struct controller_opts ctl_opt;

	memset(rw, 0, sizeof(*rw));
	rw->wnd_caps_fd = -1;
	rw->max_flows = max_flows ? max_flows : ROUTER_MAX_FLOWS;
	rw->shadow_status_path = shadow_status_path;
	rw->auto_promote = promote_after_s > 0;
	rw->promote_after_s = promote_after_s;
	rw->act = (struct actuator){ .name = "window", .flows = true, .decide = window_decide, .beat = window_beat,
				     .configure = window_configure };
	rw->hooks = (struct router_hooks){ .ctx = rw, .start = hook_start, .sample = hook_sample, .tick = hook_tick,
					   .forget = hook_forget, .flow_view = hook_flow_view, .reload = hook_reload,
					   .promote = hook_promote, .stop = hook_stop };
	/* One controller flow per sender: both directions of every forwarded flow. */
	ctl_opt = *opt;
	ctl_opt.max_flows = 2 * rw->max_flows;
	if (controller_init(&rw->controller, &ctl_opt, &rw->act, cfg))
		return -1;
	return 0;
}

void router_window_free(struct router_window *rw)
{
	struct router_window_flow *f, *tmp;

	HASH_ITER(hh, rw->flows, f, tmp) {
		HASH_DEL(rw->flows, f);
		free(f);
	}
	rw->n_flows = 0;
	controller_free(&rw->controller);
}
