/*
 * reflexd: loads and attaches the reflex BPF programs, consumes their ring buffers,
 * keeps per-flow state and computes feature windows every 100 ms. On SIGINT or
 * SIGTERM it detaches everything it attached.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "lib/bpf_maps.h"
#include "reflexd/actuator.h"
#include "reflexd/cc_actuator.h"
#include "reflexd/controller.h"
#include "reflexd/decision_log.h"
#include "reflexd/reflexd_options.h"
#include "reflexd/loader.h"
#include "reflexd/log.h"
#include "reflexd/metrics.h"
#include "reflexd/model_watch.h"
#include "router/classify.h"
#include "reflexd/qdisc_stats.h"
#include "reflexd/router_window.h"
#include "reflexd/telemetry.h"
#include "lib/fileio.h"
#include "lib/ring_reader.h"
#include "lib/window_csv.h"

#define EXIT_SETUP 2
/* Records of a step may arrive up to a poll timeout late; wait this long before
 * closing the window that ends at a step boundary. */
#define WINDOW_GRACE_NS (20ULL * 1000 * 1000)
#define SNAPSHOTS 4
#define SHADOW_REPORT_NS (10ULL * 1000 * 1000 * 1000)
/* How often the metrics page and the status file (reflexctl status) are renewed. */
#define PUBLISH_PERIOD_NS (1000ULL * 1000 * 1000)


struct daemon {
	struct reflexd_options opt;
	struct reflex_bpf bpf;
	struct host_actuator act;
	struct ring_reader rings;
	struct telemetry telemetry;
	struct controller controller;
	struct model_watch model_watch;
	unsigned quiet_polls; /* drains in a row that read nothing (rings_sleep) */
	FILE *csv;
	int ifindex;
	struct queue_snapshot snapshots[SNAPSHOTS]; /* by step index % SNAPSHOTS */
	char decision_log[PATH_MAX];
	char shadow_status[PATH_MAX];
	uint64_t windows_written;
	uint64_t records_taken;
	uint64_t qdisc_errors;
	/* service: metrics page and status file, renewed every PUBLISH_PERIOD_NS */
	struct metrics_server metrics;
	struct metrics_state metrics_state;
	char status_path[PATH_MAX];
	double start_unix_s;
	uint64_t reloads;
	int argc; /* the command line, to read --config again on SIGHUP */
	char **argv;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;
static volatile sig_atomic_t promote_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else if (sig == SIGUSR1)
		promote_requested = 1;
	else
		stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static bool verbose;

	if (!fmt) { /* set by reflexd itself, see below */
		verbose = level == LIBBPF_DEBUG;
		return 0;
	}
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* The decisions of a long drain go out as it goes (controller.h). */
static void record_taken(struct daemon *d)
{
	if (++d->records_taken % DRAIN_FLUSH_RECORDS == 0)
		controller_flush(&d->controller);
}

static int on_sock_record(void *ctx, void *data, size_t size)
{
	struct daemon *d = ctx;

	if (size >= sizeof(struct sock_sample))
		telemetry_on_sock_sample(&d->telemetry, data);
	record_taken(d);
	return 0;
}

static int on_tc_record(void *ctx, void *data, size_t size)
{
	struct daemon *d = ctx;

	if (size >= sizeof(struct tc_sample))
		telemetry_on_tc_sample(&d->telemetry, data);
	record_taken(d);
	return 0;
}

static void flow_gone(struct flow_entry *flow, void *ctx)
{
	struct daemon *d = ctx;

	controller_flow_gone(&d->controller, flow);
}

static void write_window(const struct feature_window *w, struct flow_entry *flow, void *ctx)
{
	struct daemon *d = ctx;

	if (flow)
		controller_on_flow_window(&d->controller, flow, w);
	else
		controller_on_iface_window(&d->controller, w);

	if (d->csv)
		window_csv_row(d->csv, w);
	if (d->opt.verbose)
		fprintf(stderr, "window %llu %s p95=%.0fus out=%.0fB/s q=%.0fB\n", (unsigned long long)w->ts_ns,
			w->flow, w->feature[FEAT_LATENCY_P95], w->feature[FEAT_BYTES_OUT_PER_SEC],
			w->feature[FEAT_QUEUE_DEPTH]);
	d->windows_written++;
}

static FILE *open_output(const char *path, const char *what)
{
	struct reflex_err err = { 0 };
	FILE *f = fileio_open_output(path, false, 0640, &err);

	if (!f)
		fprintf(stderr, "reflexd: cannot write %s: %s\n", what, err.msg);
	return f;
}

/* What a dead reflexd left for this pin directory: its `reflex` registration first,
 * since removing the pins would leave it registered with nothing pointing at it;
 * with any_dead_cc, also any dead reflexd's registration, pinned anywhere or not. */
static int cleanup_stale(const char *pin_dir, bool any_dead_cc, struct reflex_err *err)
{
	int cc, ret;

	ret = pins_dir_check(pin_dir, err);
	if (ret)
		return ret;
	cc = cc_actuator_cleanup_pinned(pin_dir, err);
	if (cc >= 0 && any_dead_cc) {
		ret = cc_actuator_cleanup_dead(err);
		cc = ret < 0 ? ret : cc || ret;
	}
	if (cc < 0)
		return cc;
	ret = loader_cleanup_stale(pin_dir, err);
	if (ret >= 0) {
		char status[PATH_MAX];

		pins_run_path(pin_dir, "status", status, sizeof(status));
		unlink(status); /* a dead reflexd's: reflexctl status would read it */
	}
	return ret < 0 ? ret : ret || cc;
}

static void watch_models(struct daemon *d)
{
	const char *const models[] = { d->opt.control.cwnd_model_path, d->opt.control.dqn_model_path,
				       d->opt.control.batching_model_path };

	if (model_watch_init(&d->model_watch, models, 3))
		fprintf(stderr, "reflexd: not watching the model files (reload them with SIGHUP)\n");
}

static int setup(struct daemon *d)
{
	struct reflex_err err = { 0 };
	int ret;

	d->ifindex = if_nametoindex(d->opt.iface);
	if (!d->ifindex) {
		reflex_err_set(&err, "interface '%s' not found", d->opt.iface);
		goto fail;
	}
	if (d->opt.cgroup && access(d->opt.cgroup, R_OK) != 0) {
		reflex_err_set(&err, "cgroup %s: %s", d->opt.cgroup, strerror(errno));
		goto fail;
	}
	ret = cleanup_stale(d->opt.pin_dir, false, &err);
	if (ret < 0)
		goto fail;
	if (ret > 0)
		fprintf(stderr, "reflexd: removed what a previous reflexd left in %s\n", d->opt.pin_dir);
	if (d->opt.telemetry_out && !(d->csv = open_output(d->opt.telemetry_out, "telemetry CSV")))
		return -1;
	if (d->opt.records_out && !(d->telemetry.records_out = open_output(d->opt.records_out, "records CSV")))
		return -1;

	/* The congestion control is registered before sockops starts selecting it. */
	if (loader_open_load(&d->bpf, d->opt.pin_dir, &d->opt.config, d->opt.max_flows, d->opt.ring_kb * 1024,
			     d->opt.cgroup != NULL, &err) ||
	    host_actuator_start(&d->act, d->opt.config.actuator, &d->bpf, &err) ||
	    (d->opt.cgroup && loader_attach_cgroup(&d->bpf, d->opt.cgroup, &err)) ||
	    loader_attach_tc(&d->bpf, d->ifindex, &err))
		goto fail;
	if (d->opt.config.actuator == REFLEX_ACTUATOR_CC)
		fprintf(stderr, "reflexd: congestion control '%s' registered: the cgroup's new connections run it\n",
			REFLEX_CC_NAME);

	ret = ring_reader_init(&d->rings);
	if (!ret)
		ret = ring_reader_add(&d->rings, loader_tc_events_fd(&d->bpf), on_tc_record, d);
	if (ret) {
		reflex_err_set(&err, "cannot open the tc ring buffer: %s", strerror(-ret));
		goto fail;
	}
	ret = d->opt.cgroup ? ring_reader_add(&d->rings, loader_sock_events_fd(&d->bpf), on_sock_record, d) : 0;
	if (ret) {
		reflex_err_set(&err, "cannot open the sockops ring buffer: %s", strerror(-ret));
		goto fail;
	}
	if (d->opt.control.policy != CWND_POLICY_OFF && !d->opt.cgroup && !d->opt.control.batching_model_path)
		d->opt.control.policy = CWND_POLICY_OFF; /* no sockets to cap without sockops */
	if (!d->opt.control.decision_log_path && d->opt.control.policy != CWND_POLICY_OFF) {
		pins_run_path(d->opt.pin_dir, "decisions", d->decision_log, sizeof(d->decision_log));
		if (pins_run_dir_create() == 0)
			d->opt.control.decision_log_path = d->decision_log;
	}
	pins_run_path(d->opt.pin_dir, "shadow", d->shadow_status, sizeof(d->shadow_status));
	decision_log_limits(d->opt.decision_log_max_bytes, d->opt.decision_log_keep);
	if (controller_init(&d->controller, &d->opt.control, &d->act.base, &d->opt.config))
		return -1;
	watch_models(d);
	if (d->csv)
		window_csv_header(d->csv);
	if (d->telemetry.records_out)
		fputs("ts_ns,ring,cpu\n", d->telemetry.records_out);
	return 0;
fail:
	fprintf(stderr, "reflexd: %s\n", err.msg[0] ? err.msg : "setup failed");
	return -1;
}

static void snapshot_take(struct daemon *d, uint64_t step_index)
{
	struct queue_snapshot *snap = &d->snapshots[step_index % SNAPSHOTS];

	if (qdisc_root_stats(d->ifindex, snap, NULL, 0) != 0) {
		snap->valid = false;
		d->qdisc_errors++;
	}
}

/*
 * Waits for records at most max_batch_delay_us (the ring is woken only every
 * flush_threshold records), or, asleep, until first_due. A reader that polled
 * every millisecond with nothing to read cost about 1.4 % of a core on our VMs, so
 * after QUIET_POLLS_TO_SLEEP empty polls it arms the rings (the next record of any
 * ring on any CPU wakes it), drains what came before the arming, and sleeps.
 */
#define QUIET_POLLS_TO_SLEEP 100

static int rings_wait(struct daemon *d, uint64_t timeout_ns)
{
	struct pollfd pfd = { .fd = ring_reader_epoll_fd(&d->rings), .events = POLLIN };
	struct timespec timeout = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };

	if (ppoll(&pfd, 1, &timeout, NULL) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* Drains both rings; the decisions the records led to go out in one batch. Returns
 * the records read, or -errno. */
static int rings_drain(struct daemon *d)
{
	int ret = ring_reader_consume(&d->rings);

	controller_flush(&d->controller);
	return ret == -EINTR ? 0 : ret;
}

/* After a drain that read `records`: whether the reader sleeps until first_due. */
static bool rings_sleep(struct daemon *d, int records)
{
	if (records > 0) {
		d->quiet_polls = 0;
		return false;
	}
	if (++d->quiet_polls < QUIET_POLLS_TO_SLEEP)
		return false;
	if (d->quiet_polls > QUIET_POLLS_TO_SLEEP)
		return true; /* armed already: a record would have woken us */
	if (loader_rings_arm(&d->bpf) || rings_drain(d) != 0) {
		d->quiet_polls = 0; /* not armed, or records came: poll again */
		return false;
	}
	return true;
}

/* The snapshots of the steps that began, and, once the window ending at
 * window_end has its end snapshot, the go for its flows' records to close it. */
static void steps_begun(struct daemon *d, uint64_t now, uint64_t *next_step, uint64_t window_end)
{
	uint64_t end_index = window_end / WINDOW_STEP_NS;

	while (now >= *next_step) {
		snapshot_take(d, *next_step / WINDOW_STEP_NS);
		*next_step += WINDOW_STEP_NS;
	}
	if (now >= window_end && d->telemetry.open_end != window_end)
		telemetry_window_open(&d->telemetry, window_end, &d->snapshots[(end_index - 2) % SNAPSHOTS],
				      &d->snapshots[end_index % SNAPSHOTS], write_window, d);
}

static uint64_t map_entries(int fd)
{
	struct flow_key key, next;
	uint64_t n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		n++;
	}
	return n;
}

static void print_summary(struct daemon *d, double seconds)
{
	static const char *const names[] = REFLEX_COUNTER_NAMES;
	int fd = loader_counters_fd(&d->bpf);
	uint64_t inserted = bpf_counter_sum(fd, CNT_TC_FLOW_NEW), live = map_entries(loader_tc_flows_fd(&d->bpf));
	/* inserted first: an insert during the walk counts as live, not evicted */

	fprintf(stderr, "reflexd: ran %.1f s on %s: %llu flows, %llu sock records, %llu tc records, %llu windows",
		seconds, d->opt.iface, (unsigned long long)d->telemetry.flows_seen,
		(unsigned long long)d->telemetry.sock_records, (unsigned long long)d->telemetry.tc_records,
		(unsigned long long)d->windows_written);
	for (int i = 0; i < CNT_MAX; i++)
		fprintf(stderr, ", %s=%llu", names[i], (unsigned long long)bpf_counter_sum(fd, i));
	/* Flows reflexd did not track, and tc_flows entries the LRU pushed out. */
	fprintf(stderr, ", flows_refused=%llu, flows_displaced=%llu, tc_flow_evicted=%llu\n",
		(unsigned long long)d->telemetry.flows_refused, (unsigned long long)d->telemetry.flows_displaced,
		(unsigned long long)tc_flow_evicted(inserted, live));
}

static bool shadow_report(struct daemon *d)
{
	return controller_shadow_report(&d->controller, d->shadow_status);
}

static void promote(struct daemon *d, const char *by)
{
	controller_promote_by(&d->controller, by, d->shadow_status);
}

static double unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Renders the state for the metrics server and for `reflexctl status` (a key=value
 * file replaced atomically). */
static void publish_state(struct daemon *d, uint64_t now)
{
	struct controller *c = &d->controller;
	struct metrics_daemon_view view = {
		.start_unix_s = d->start_unix_s,
		.heartbeat_age_s = c->beaten ? (now - c->last_beat_ns) / 1e9 : -1,
		.mode = c->opt.policy == CWND_POLICY_OFF ? "observe" : c->opt.shadow ? "shadow" : "acting",
		.actuator = d->opt.config.actuator == REFLEX_ACTUATOR_CC ? "cc" : "clamp",
		.windows = d->windows_written,
		.qdisc_errors = d->qdisc_errors,
		.reloads = d->reloads,
	};
	char last_error[512], *page = NULL;
	struct reflex_err err = { 0 };
	struct fileio_atomic out;
	size_t len = 0;
	FILE *f;

	metrics_state_update(&d->metrics_state, c, unix_now());
	/* what `systemctl status` shows (a no-op outside systemd) */
	sd_notifyf(0, "STATUS=%s on %s: %u flows, %llu decisions", view.mode, d->opt.iface, d->telemetry.flow_count,
		   (unsigned long long)c->stats.decisions);
	if (d->metrics.httpd) {
		pthread_mutex_lock(&d->metrics.lock);
		view.scrapes = d->metrics.scrapes;
		pthread_mutex_unlock(&d->metrics.lock);
		f = open_memstream(&page, &len);
		if (f && metrics_render(f, &view, &d->metrics_state, c, &d->telemetry, &d->bpf) == 0 &&
		    fclose(f) == 0)
			metrics_publish(&d->metrics, page, len);
		else if (f)
			fclose(f);
		free(page);
	}
	if (!d->status_path[0])
		return;
	log_last_error(last_error, sizeof(last_error));
	if (fileio_atomic_open(&out, d->status_path, 0644, &err))
		return;
	if (metrics_status_render(out.f, &view, &d->metrics_state, c, &d->telemetry, d->opt.iface, last_error))
		fileio_atomic_abort(&out);
	else
		fileio_atomic_commit(&out, &err);
}

/* SIGHUP with --config: the file again, under the same command line. The model files
 * and the pipeline knobs change at once; for anything else one line says it needs a
 * restart. Options point into the parsed file, so two copies alternate. */
static void reload_config(struct daemon *d)
{
	static struct reflexd_options fresh_opts[2];
	static int slot;
	struct reflexd_options *fresh = &fresh_opts[slot];
	struct controller *c = &d->controller;
	struct reflex_err err = { 0 };
	char live[256], restart[512];

	if (reflexd_parse_args(d->argc, d->argv, fresh, &err) != REFLEXD_ARGS_RUN) {
		fprintf(stderr, "reflexd: reload refused: %s: the running configuration stays\n", err.msg);
		return;
	}
	if (reflexd_reload_diff(&d->opt, fresh, live, sizeof(live), restart, sizeof(restart)))
		return;
	slot ^= 1;
	/* the policies keep their own copies of their paths and knobs */
	d->opt.control.cwnd_model_path = c->opt.cwnd_model_path = c->tree.path = fresh->control.cwnd_model_path;
	d->opt.control.dqn_model_path = c->opt.dqn_model_path = c->dqn.opt.model_path = fresh->control.dqn_model_path;
	d->opt.control.batching_model_path = c->opt.batching_model_path = fresh->control.batching_model_path;
	d->opt.control.explore = c->opt.explore = c->dqn.opt.explore = fresh->control.explore;
	if (strstr(live, "sample-interval-ms") || strstr(live, "flush-threshold") || strstr(live, "max-batch-delay-us")) {
		d->opt.config.sample_interval_ns = c->config.sample_interval_ns = fresh->config.sample_interval_ns;
		d->opt.config.flush_threshold = c->config.flush_threshold = fresh->config.flush_threshold;
		d->opt.config.max_batch_delay_us = c->config.max_batch_delay_us = fresh->config.max_batch_delay_us;
		if (loader_config_update(&d->bpf, &c->config))
			fprintf(stderr, "reflexd: reload: cannot write the new knobs to reflex_config\n");
	}
	if (strstr(live, "cwnd") || strstr(live, "dqn") || strstr(live, "batching")) {
		model_watch_free(&d->model_watch);
		watch_models(d);
	}
	fprintf(stderr, "reflexd: reload of %s: %s%s%s%s\n", d->opt.config_path, live[0] ? "applied " : "no live change",
		live, restart[0] ? "; changed but needs a restart: " : "", restart);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* When the loop has something to do without records: a step, a window to close, a
 * page to publish, a heartbeat, a shadow report, the end. */
static uint64_t first_due(const struct daemon *d, uint64_t next_step, uint64_t next_window_end,
			  uint64_t next_publish, uint64_t next_shadow_report, uint64_t deadline)
{
	const struct controller *c = &d->controller;
	uint64_t at = min_u64(min_u64(next_step, next_window_end + WINDOW_GRACE_NS), min_u64(next_publish, deadline));

	if (c->beaten)
		at = min_u64(at, c->last_beat_ns + HEARTBEAT_PERIOD_NS);
	if (c->opt.shadow)
		at = min_u64(at, next_shadow_report);
	return at;
}

static int run(struct daemon *d)
{
	uint64_t start = now_ns();
	uint64_t deadline = d->opt.duration_s > 0 ? start + (uint64_t)(d->opt.duration_s * 1e9) : UINT64_MAX;
	uint64_t next_step = (start / WINDOW_STEP_NS + 1) * WINDOW_STEP_NS;
	uint64_t next_window_end = next_step + WINDOW_LEN_NS - WINDOW_STEP_NS;
	uint64_t next_shadow_report = start + SHADOW_REPORT_NS, next_publish = start;
	bool auto_promote_tried = false, asleep = false;
	int ret = 0;

	snapshot_take(d, start / WINDOW_STEP_NS);
	while (!stop_requested) {
		uint64_t now = now_ns();
		uint64_t wake = asleep ? first_due(d, next_step, next_window_end, next_publish, next_shadow_report,
						   deadline) :
					 now + d->controller.config.max_batch_delay_us * 1000ULL;

		ret = rings_wait(d, wake > now ? wake - now : 0);
		if (!ret) {
			steps_begun(d, now_ns(), &next_step, next_window_end);
			ret = rings_drain(d);
		}
		if (ret < 0) {
			fprintf(stderr, "reflexd: ring buffer: %s\n", strerror(-ret));
			break;
		}
		asleep = rings_sleep(d, ret);
		ret = 0;
		now = now_ns();
		controller_heartbeat(&d->controller, now);
		if (reload_requested && d->opt.config_path)
			reload_config(d);
		if (reload_requested && decision_log_reopen(d->controller.log) == 0)
			fprintf(stderr, "reflexd: decision log %s reopened\n", d->opt.control.decision_log_path);
		if (reload_requested || model_watch_changed(&d->model_watch)) {
			reload_requested = 0;
			d->reloads++;
			controller_reload(&d->controller);
		}
		if (now >= next_publish) {
			publish_state(d, now);
			next_publish = now + PUBLISH_PERIOD_NS;
		}
		if (promote_requested) {
			promote_requested = 0;
			promote(d, "reflexctl promote");
		}
		if (d->controller.opt.shadow && now >= next_shadow_report) {
			shadow_report(d);
			next_shadow_report = now + SHADOW_REPORT_NS;
		}
		if (d->opt.auto_promote && d->controller.opt.shadow && !auto_promote_tried &&
		    now - start >= (uint64_t)(d->opt.shadow_period_s * 1e9)) {
			auto_promote_tried = true;
			promote(d, "--auto-promote");
		}
		steps_begun(d, now, &next_step, next_window_end);
		while (now >= next_window_end + WINDOW_GRACE_NS) {
			uint64_t end_index = next_window_end / WINDOW_STEP_NS;

			telemetry_emit_windows(&d->telemetry, next_window_end,
					       &d->snapshots[(end_index - 2) % SNAPSHOTS],
					       &d->snapshots[end_index % SNAPSHOTS], write_window, d);
			next_window_end += WINDOW_STEP_NS;
			controller_flush(&d->controller);
			if (d->csv)
				fflush(d->csv);
		}
		if (now >= deadline)
			break;
	}
	if (d->controller.opt.shadow)
		shadow_report(d);
	print_summary(d, (now_ns() - start) / 1e9);
	return ret ? 1 : 0;
}

static void teardown(struct daemon *d)
{
	/* Withdraw every decision first: sockops lifts each clamp at the flow's next ACK,
	 * which needs it still attached (under --actuator cc the flows' `reflex`
	 * congestion control falls back to CUBIC, and keeps running after it is
	 * unregistered). */
	telemetry_free(&d->telemetry);
	if (d->controller.act)
		controller_flush(&d->controller);
	if (d->controller.stats.decisions && !d->opt.control.shadow)
		usleep(200 * 1000);
	/* Only a controller that ran has something to report: a failed setup stays one line. */
	if (d->controller.opt.policy != CWND_POLICY_OFF)
		fprintf(stderr, "reflexd: control%s: %llu decisions, %llu reversals (%llu held back), %llu batching changes\n",
			d->opt.control.shadow ? " (shadow)" : "", (unsigned long long)d->controller.stats.decisions,
			(unsigned long long)d->controller.shadow.reversals,
			(unsigned long long)d->controller.shadow.reversals_held_back,
			(unsigned long long)d->controller.stats.batching_changes);
	metrics_stop(&d->metrics);
	if (d->status_path[0])
		unlink(d->status_path);
	controller_free(&d->controller);
	model_watch_free(&d->model_watch);
	if (d->shadow_status[0])
		unlink(d->shadow_status);
	if (d->decision_log[0]) {
		struct stat st;

		/* An empty default log says nothing: do not leave it behind. */
		if (stat(d->decision_log, &st) == 0 && st.st_size == 0)
			unlink(d->decision_log);
	}
	ring_reader_free(&d->rings);
	host_actuator_stop(&d->act);
	loader_teardown(&d->bpf);
	if (d->csv && fclose(d->csv) != 0)
		fprintf(stderr, "reflexd: writing %s: %s\n", d->opt.telemetry_out, strerror(errno));
	if (d->telemetry.records_out)
		fclose(d->telemetry.records_out);
}

/* After attach: the status file for reflexctl status and, with --metrics-listen,
 * the metrics server. */
static int start_service(struct daemon *d)
{
	char err[256];

	pins_run_path(d->opt.pin_dir, "status", d->status_path, sizeof(d->status_path));
	if (pins_run_dir_create() != 0)
		d->status_path[0] = '\0';
	if (d->opt.metrics_listen && metrics_start(&d->metrics, d->opt.metrics_listen, NULL, NULL, err, sizeof(err))) {
		fprintf(stderr, "reflexd: %s\n", err);
		return -1;
	}
	if (d->opt.metrics_listen)
		fprintf(stderr, "reflexd: serving metrics on %s%s at /metrics\n",
			strchr(d->opt.metrics_listen, ':') ? "" : "127.0.0.1:", d->opt.metrics_listen);
	return 0;
}

static int print_classes(const struct reflexd_options *opt)
{
	struct classify_table table;
	struct reflex_err err = { 0 };

	classify_table_default(&table);
	if (opt->router.classes_path && classify_table_load(&table, opt->router.classes_path, &err)) {
		fprintf(stderr, "reflexd: %s\n", err.msg);
		return EXIT_SETUP;
	}
	return classify_table_print(&table, stdout) < 0 ? 1 : 0;
}

/* --rt-priority: the calling thread (the decision loop) at SCHED_FIFO. Threads started
 * before it (the metrics server's) keep the normal scheduler, and the DQN's learner
 * asks for it explicitly (dqn_learn.c). 0, or -1 having said why. */
static int decision_loop_realtime(unsigned priority)
{
	struct sched_param param = { .sched_priority = (int)priority };
	int ret;

	if (!priority)
		return 0;
	ret = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
	if (ret) {
		fprintf(stderr, "reflexd: --rt-priority %u: cannot run the decision loop at SCHED_FIFO: %s%s\n",
			priority, strerror(ret),
			ret == EPERM ? " (it needs CAP_SYS_NICE or RLIMIT_RTPRIO, and under systemd "
				       "RestrictRealtime=no)" : "");
		return -1;
	}
	return 0;
}

/* Every signal whose default action ends the process, apart from the faults of
 * the process itself: each stops the router cleanly. */
static const int router_stop_signals[] = { SIGINT,   SIGTERM, SIGQUIT, SIGUSR2, SIGALRM,   SIGVTALRM,
					   SIGPROF,  SIGXCPU, SIGXFSZ, SIGIO,   SIGPWR,    SIGSTKFLT,
					   SIGTRAP };

static struct router_window router_windows;
static char router_decision_log[PATH_MAX]; /* the default decision log, if it is used */

/* The window caps of forwarded flows run in the router's loop through its hooks, with
 * the host's decision log and shadow file beside the router's state. */
static int router_windows_start(struct reflexd_options *opt)
{
	static char shadow_status[PATH_MAX];

	if (!opt->control.decision_log_path) {
		pins_run_path(opt->pin_dir, "decisions", router_decision_log, sizeof(router_decision_log));
		if (pins_run_dir_create() == 0)
			opt->control.decision_log_path = router_decision_log;
		else
			router_decision_log[0] = '\0';
	}
	pins_run_path(opt->pin_dir, "shadow", shadow_status, sizeof(shadow_status));
	decision_log_limits(opt->decision_log_max_bytes, opt->decision_log_keep);
	if (router_window_init(&router_windows, &opt->control, &opt->config, opt->max_flows, shadow_status,
			       opt->auto_promote ? opt->shadow_period_s : 0)) {
		router_window_free(&router_windows);
		return -1;
	}
	opt->router.hooks = &router_windows.hooks;
	return 0;
}

static void router_windows_stop(void)
{
	struct stat st;

	router_window_free(&router_windows);
	if (router_windows.shadow_status_path)
		unlink(router_windows.shadow_status_path);
	/* An empty default log says nothing: do not leave it behind. */
	if (router_decision_log[0] && stat(router_decision_log, &st) == 0 && st.st_size == 0)
		unlink(router_decision_log);
}

/* Edge-router mode: the router runtime owns attach, loop and detach. */
static int run_router(struct reflexd_options *opt)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigaction ignore = { .sa_handler = SIG_IGN };

	opt->router.pin_dir = opt->pin_dir;
	opt->router.sample_interval_ns = opt->config.sample_interval_ns;
	opt->router.flush_threshold = opt->config.flush_threshold;
	opt->router.max_batch_delay_us = opt->config.max_batch_delay_us;
	opt->router.duration_s = opt->duration_s;
	opt->router.verbose = opt->verbose;
	opt->router.stop = &stop_requested;
	static struct metrics_server metrics;
	static char view_path[PATH_MAX];
	char err[256];
	int ret;

	opt->router.reload = &reload_requested;
	opt->router.promote = &promote_requested;
	for (size_t i = 0; i < sizeof(router_stop_signals) / sizeof(router_stop_signals[0]); i++)
		sigaction(router_stop_signals[i], &sa, NULL);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaction(sig, &sa, NULL);
	/* SIGHUP (`systemctl reload`) rereads the classes file; SIGUSR1 is answered. */
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	/* A reader of a pipe going away must not end it without cleanup either. */
	sigaction(SIGPIPE, &ignore, NULL);
	/* the router runs its own loop: its metrics come from the view it publishes */
	pins_run_path(opt->pin_dir, "paths", view_path, sizeof(view_path));
	if (opt->metrics_listen &&
	    metrics_start(&metrics, opt->metrics_listen, metrics_render_router, view_path, err, sizeof(err))) {
		fprintf(stderr, "reflexd: %s\n", err);
		return EXIT_SETUP;
	}
	if (opt->router_windows && router_windows_start(opt)) {
		metrics_stop(&metrics);
		return EXIT_SETUP;
	}
	/* before router_run attaches: a refusal leaves nothing behind */
	if (decision_loop_realtime(opt->rt_priority)) {
		if (opt->router_windows)
			router_windows_stop();
		metrics_stop(&metrics);
		return EXIT_SETUP;
	}
	ret = router_run(&opt->router);
	metrics_stop(&metrics);
	if (opt->router_windows)
		router_windows_stop();
	return ret;
}

/* Everything but --print-classes runs under the pin directory's lock. */
static int main_locked(struct daemon *d)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int ret;

	if (d->opt.router_mode && !d->opt.cleanup_only)
		return run_router(&d->opt);
	if (d->opt.cleanup_only) {
		struct reflex_err err = { 0 };
		char why[512] = "";

		ret = d->opt.router_mode ? router_cleanup_stale(d->opt.pin_dir, why, sizeof(why))
					 : cleanup_stale(d->opt.pin_dir, d->opt.config.actuator == REFLEX_ACTUATOR_CC, &err);
		if (ret < 0 && d->opt.router_mode)
			reflex_err_set(&err, "%s", why);
		if (ret < 0) {
			fprintf(stderr, "reflexd: %s\n", err.msg);
			return EXIT_SETUP;
		}
		fprintf(stderr, "reflexd: %s\n", ret ? "removed a dead reflexd's leftovers" : "nothing to clean up");
		return 0;
	}

	d->model_watch.fd = -1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	telemetry_init(&d->telemetry, d->opt.iface, flow_gone, d);
	d->telemetry.max_flows = d->opt.max_flows;
	d->telemetry.window_names = d->opt.telemetry_out || d->opt.verbose;
	d->opt.control.max_flows = d->opt.max_flows;
	d->start_unix_s = unix_now();
	if (setup(d) || start_service(d) || decision_loop_realtime(d->opt.rt_priority)) {
		teardown(d);
		return EXIT_SETUP;
	}
	fprintf(stderr, "reflexd: attached on %s%s%s, pinned under %s\n", d->opt.iface,
		d->opt.cgroup ? " and cgroup " : "", d->opt.cgroup ? d->opt.cgroup : "", d->opt.pin_dir);
	sd_notify(0, "READY=1\nSTATUS=attached");
	ret = run(d);
	sd_notify(0, "STOPPING=1");
	teardown(d);
	fprintf(stderr, "reflexd: detached\n");
	return ret;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	struct reflex_err err = { 0 };
	int ret, lock_fd, holder;

	switch (reflexd_parse_args(argc, argv, &d.opt, &err)) {
	case REFLEXD_ARGS_HELP:
		reflexd_usage(stdout);
		return 0;
	case REFLEXD_ARGS_ERROR:
		fprintf(stderr, "reflexd: %s (see --help)\n", err.msg);
		return EXIT_SETUP;
	default:
		break;
	}
	if (d.opt.check_config) {
		if (reflexd_check_files(&d.opt, &err)) {
			fprintf(stderr, "reflexd: %s\n", err.msg);
			return EXIT_SETUP;
		}
		reflexd_print_config(&d.opt, stdout);
		return 0;
	}
	libbpf_print(d.opt.verbose ? LIBBPF_DEBUG : LIBBPF_WARN, NULL, NULL);
	libbpf_set_print(libbpf_print);
	if (log_setup(d.opt.quiet))
		fprintf(stderr, "reflexd: cannot filter the log (levels, --quiet): %s\n", strerror(errno));

	if (d.opt.print_classes)
		return print_classes(&d.opt);
	/* Privileges first: the lock lives in /run/reflex, which only root may write. */
	if (!d.opt.cleanup_only && pins_preflight(&err)) {
		fprintf(stderr, "reflexd: %s\n", err.msg);
		return EXIT_SETUP;
	}
	d.argc = argc;
	d.argv = argv;
	lock_fd = pins_lock_take(d.opt.pin_dir, &holder, &err);
	if (lock_fd < 0) {
		fprintf(stderr, "reflexd: %s\n", err.msg);
		return EXIT_SETUP;
	}
	ret = main_locked(&d);
	pins_lock_release(d.opt.pin_dir, lock_fd);
	return ret;
}
