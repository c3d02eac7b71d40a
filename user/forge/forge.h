/*
 * reflex-forge: telemetry CSV -> feature windows -> oracle labels -> CART trees ->
 * quantized `.reflex`. Each step is a function here and a subcommand of
 * build/reflex-forge; `build` chains them in memory.
 *
 *   forge_trace_load()     the `windows` step: rows of one scope, per flow in time order
 *   forge_label()          the `label` step: a training set (features, outputs, J)
 *   forge_train()          the `train` step: trees, quantization, validation, the file
 *
 * Every error is one line in a struct reflex_err (file, line, column where there is one).
 */
#ifndef REFLEX_FORGE_H
#define REFLEX_FORGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/csv.h"
#include "lib/feature_schema.h"
#include "forge/forge_health.h"
#include "sim/oracle.h"

#define FORGE_SHA1_HEX 41

/* --- windows ---------------------------------------------------------------- */

struct forge_window {
	uint64_t ts_ns;      /* window end */
	size_t line;         /* its line in the telemetry CSV */
	uint32_t flow;       /* index into forge_trace.flows */
	uint32_t segment;    /* consecutive windows of a flow share one; a gap starts the next */
	double feature[FEATURE_COUNT]; /* raw units */
	double context[CONTEXT_COUNT];
};

struct forge_trace {
	char *path;
	char sha1[FORGE_SHA1_HEX];     /* of the file's bytes */
	enum window_scope scope;
	struct forge_window *windows;  /* sorted by (flow, ts_ns) */
	size_t count;
	char **flows;                  /* sorted by name */
	size_t flow_count;
	size_t rows_total;             /* rows of every scope in the file */
	size_t out_of_order;           /* rows older than an earlier row of the same flow */
	size_t gaps;                   /* breaks of more than one step between windows of a flow */
	size_t missing_steps;          /* window steps those gaps skipped */
	size_t segments;
	double min[FEATURE_COUNT];     /* per-trace range of each feature (this scope) */
	double max[FEATURE_COUNT];
	size_t context_col[CONTEXT_COUNT]; /* CSV columns, for messages */
};

/* Reads the telemetry CSV (header: ts_ns,scope,flow, the features, the context
 * columns; extra columns are ignored) and keeps the rows of `scope`. Out-of-order
 * rows are sorted (and counted); a flow with two rows for one ts_ns is an error. */
int forge_trace_load(const char *path, enum window_scope scope, struct forge_trace *tr, struct reflex_err *err);
void forge_trace_free(struct forge_trace *tr);
/* feature_normalize() with the trace's min/max. */
double forge_trace_normalized(const struct forge_trace *tr, const struct forge_window *w, int feature);
/* The span a window ending at end_ns covers, by window.c's rule: the two 100 ms
 * steps before the step end_ns falls in, [start, end). */
void forge_window_span(uint64_t end_ns, uint64_t *start_ns, uint64_t *stop_ns);
/* windows.csv: ts_ns,scope,flow,segment, the features normalized to [0,1], the context raw. */
int forge_windows_write(const struct forge_trace *tr, const char *path, struct reflex_err *err);

/* --- ring-buffer records (for the batching oracle) ---------------------------- */

struct forge_records {
	char *path;
	char sha1[FORGE_SHA1_HEX];
	struct record_arrival *arrivals; /* sorted by ts_ns (stable) */
	size_t count;
	size_t out_of_order;
	bool has_cpu;                    /* a `cpu` column kept counters per CPU */
};

/* `ts_ns,ring` with ring "sock" or "tc", and optionally `cpu` (0..511). */
int forge_records_load(const char *path, struct forge_records *rec, struct reflex_err *err);
void forge_records_free(struct forge_records *rec);
/* The arrivals inside [start_ns, end_ns): *first and *n index rec->arrivals. */
void forge_records_window(const struct forge_records *rec, uint64_t start_ns, uint64_t end_ns, size_t *first,
			  size_t *n);

/* --- label ------------------------------------------------------------------ */

enum forge_recipe {
	RECIPE_BATCHING = 0,
	RECIPE_CWND = 1,
};

const char *forge_recipe_name(enum forge_recipe r);
int forge_recipe_parse(const char *s, enum forge_recipe *out);
/* The telemetry scope a recipe learns from: iface for batching, flow for cwnd. */
enum window_scope forge_recipe_scope(enum forge_recipe r);

struct forge_label_opts {
	enum forge_recipe recipe;
	struct batching_params batching;
	struct cwnd_params cwnd;
	const struct forge_records *records; /* batching: NULL = arrivals from each window's `records` */
	bool progress;                       /* \r progress lines on stderr */
};

/* Counts for the report. */
struct forge_label_stats {
	size_t windows;
	size_t labelled;
	size_t skipped;               /* cwnd: too slow or no RTT */
	size_t records_replayed;
	size_t records_count_mismatch; /* windows whose records file count differs from `records` */
	size_t choice_count[BATCHING_CANDIDATES > CWND_CANDIDATES ? BATCHING_CANDIDATES : CWND_CANDIDATES];
	double mean_j;                /* of the oracle's choices */
	double mean_j_default;        /* of reflex's default policy, same windows */
	/* batching */
	double mean_p95_latency_us, mean_p95_latency_us_default;
	double mean_batch_overhead, mean_batch_overhead_default;
	/* cwnd */
	double mean_rtt_ratio, mean_rtt_ratio_default;
	double mean_shortfall_pct, mean_shortfall_pct_default;
};

/* A training set as CSV text: the ten features (raw), the recipe's outputs, J,
 * and one `J@OUT=V;...` column per candidate (its J in that window). */
struct forge_text {
	char *data;
	size_t len;
};

int forge_label(const struct forge_trace *tr, const struct forge_label_opts *opts, struct forge_text *out,
		struct forge_label_stats *stats, struct reflex_err *err);
void forge_text_free(struct forge_text *t);
/* Writes text to path atomically (PATH.tmp.XXXXXX + rename); "-" is stdout. */
int forge_text_write(const struct forge_text *t, const char *path, struct reflex_err *err);

/* --- train ------------------------------------------------------------------ */

#define FORGE_MAX_TARGETS 8
#define FORGE_DISCRETE_MAX 16   /* a target with at most this many distinct values is discrete */

struct forge_train_opts {
	const char *targets[FORGE_MAX_TARGETS];
	size_t target_count;
	const char *const *features; /* NULL: every column but the targets and J, J@... */
	size_t feature_count;
	unsigned max_depth;
	size_t min_samples_leaf;
	double holdout;              /* fraction of rows for validation, [0, 1) */
	uint64_t seed;
	size_t split_block;          /* rows move to validation in blocks of this many consecutive rows */
	const char *created_at;      /* ISO 8601 UTC */
	const char *telemetry_hash;  /* SHA-1 hex of the input */
	/* Extra metadata lines (key, value), e.g. recipe and lambda from the label step. */
	const char *meta_keys[16];
	const char *meta_values[16];
	size_t meta_count;
};

struct forge_output_report {
	char name[64];
	bool discrete;
	size_t distinct;             /* values of the target in the training rows */
	double min, max, scale;      /* bounds and output scale written */
	size_t nodes, leaves;
	unsigned depth;
	double val_mse;              /* of the quantized model, target units squared */
	double val_mse_mean;         /* predicting the training mean, for comparison */
	double val_accuracy;         /* discrete: predicted value == label */
	double val_accuracy_majority;
	double quant_max_error;      /* |file output - float tree| over the evaluated rows */
};

struct forge_train_report {
	size_t rows, train_rows, val_rows;
	bool validated;              /* false with holdout 0: figures are on the training rows */
	size_t feature_count;
	char feature_names[64][64];
	size_t output_count;
	struct forge_output_report out[FORGE_MAX_TARGETS];
	bool have_regret;
	size_t regret_rows;          /* rows whose prediction maps to a J@ column */
	double regret_mean;          /* mean J(predicted) - J(oracle) */
	double regret_constant;      /* same for the best single candidate on the training rows */
	char constant_choice[128];
	/* model health (forge_health.h) */
	struct forge_drift_calibration drift;
	double anomaly_train_median; /* anomaly score of the training rows */
	double anomaly_val_median;   /* of the evaluation rows */
};

/* Trains on a parsed table and writes out_path (atomically). */
int forge_train(const struct csv_table *t, const struct forge_train_opts *opts, const char *out_path,
		struct forge_train_report *report, struct reflex_err *err);
void forge_train_report_print(FILE *out, const struct forge_train_report *r);

/* --- utilities ----------------------------------------------------------------- */

/* SHA-1 (libcrypto) of len bytes as 40 hex digits. */
void forge_sha1_hex(const void *data, size_t len, char hex[FORGE_SHA1_HEX]);
/* Reads path ("-": stdin) once: its SHA-1, and the parsed table. */
int forge_read_csv(const char *path, struct csv_table **out, char sha1[FORGE_SHA1_HEX], struct reflex_err *err);
/* created_at: "YYYY-MM-DDTHH:MM:SSZ" from SOURCE_DATE_EPOCH if set, else now. */
int forge_created_at_now(char *buf, size_t size, struct reflex_err *err);
/* Checks that s is "YYYY-MM-DDTHH:MM:SSZ" and a real UTC time. */
bool forge_created_at_valid(const char *s);
/* The commit that built this forge (git describe), "forge@DESCRIBE". */
const char *forge_trainer_commit(void);
/* Rewrites one progress line on stderr: "\rWHAT: done/total". */
void forge_progress(const char *what, size_t done, size_t total);

/* `reflex-forge train-dqn` (user/forge_train_dqn.c). */
int forge_cmd_train_dqn(int argc, char **argv);
/* `reflex-forge eval-dqn` (user/forge_train_dqn.c). */
int forge_cmd_eval_dqn(int argc, char **argv);
/* `reflex-forge loss` (user/forge_loss.c). */
int forge_cmd_loss(int argc, char **argv);

#endif /* REFLEX_FORGE_H */
