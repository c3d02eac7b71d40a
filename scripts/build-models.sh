#!/usr/bin/env bash
# `make models`: builds models/batching.reflex and models/cwnd.reflex from the traces in
# models/traces/ and models/dqn.reflex on the bottleneck simulator.
# The traces are recorded by scripts/record-traces.sh. The traces of all mixes are
# joined into one telemetry CSV (and one records CSV) in the order below; their
# timestamps do not overlap, as they were recorded one after the other.
# Usage: scripts/build-models.sh [OUT_DIR]   (default models/; the test rebuilds into a
# scratch directory and compares with the committed files)
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-models}
BIN=${REFLEX_BIN:-build}
MIXES=(bulk short mixed)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

join_gz() { # suffix output
	local first=1 f
	for mix in "${MIXES[@]}"; do
		f=models/traces/$mix$1
		[ -f "$f" ] || { echo "build-models: missing trace $f (scripts/record-traces.sh records it)" >&2; exit 1; }
		if [ $first = 1 ]; then zcat "$f"; first=0; else zcat "$f" | tail -n +2; fi
	done >"$2"
}
join_gz .csv.gz "$TMP/telemetry.csv"
join_gz .records.csv.gz "$TMP/records.csv"

# created_at is pinned to the newest trace's commit time when the tree is a git
# checkout, so a rebuild from the same traces gives the same bytes.
created_at=${MODELS_CREATED_AT:-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ -- models/traces 2>/dev/null || true)}
created=()
[ -n "$created_at" ] && created=(--created-at "$created_at")

# Batching at lambda 10000 (one wakeup per record is worth 10 ms of p95): on these
# traces records are sparse (~700/s) and idle poll timeouts dominate the overhead, so
# at lambda <= 3000 the oracle picks flush_threshold 1 in every window.
mkdir -p "$OUT"
"$BIN/reflex-forge" build --recipe batching "$TMP/telemetry.csv" --records "$TMP/records.csv" --lambda 10000 \
	-o "$OUT/batching.reflex" "${created[@]}"
"$BIN/reflex-forge" build --recipe cwnd "$TMP/telemetry.csv" -o "$OUT/cwnd.reflex" "${created[@]}"
# The DQN trains on the bottleneck simulator, not on the telemetry traces: static links,
# and in 30 % of the episodes 60 s segments of real link traces (models/traces/dqn/, cut by
# scripts/dqn-trace-segments.sh; the arena's traces are held out) replayed as the link's
# capacity (about 1.5 minutes). The traces go in C-locale order: the order is part of the
# seed's stream. MODELS_SKIP_DQN=1 leaves it out (the rebuild test does: it has its own checks).
if [ "${MODELS_SKIP_DQN:-0}" != 1 ]; then
	dqn_traces=()
	for f in $(LC_ALL=C ls models/traces/dqn/*.gz); do dqn_traces+=(--trace "$f"); done
	"$BIN/reflex-forge" train-dqn -o "$OUT/dqn.reflex" "${dqn_traces[@]}" --trace-share 0.3 \
		--trace-delay-weight 0.1
fi
