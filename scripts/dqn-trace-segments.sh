#!/usr/bin/env bash
# Cuts the link-trace segments `reflex-forge train-dqn` trains on (models/traces/dqn/)
# from the full traces (../shared/traces: mahimahi and Cellular-Traces-NYC, see its
# README). The arena's trace scenarios (ATT-LTE-driving-2016 up and down,
# TMobile-LTE-driving down) are held out. Each segment is SECONDS of the trace from
# its start, rebased to 0, in the mahimahi format, gzipped without a timestamp so a
# rerun gives the same bytes.
# Usage: scripts/dqn-trace-segments.sh [TRACE_DIR] [SECONDS]
set -eu
cd "$(dirname "$0")/.."
SRC=${1:-../shared/traces}
SECONDS_PER_SEGMENT=${2:-60}
OUT=models/traces/dqn
TRACES=(
	mahimahi-ATT-LTE-driving.up mahimahi-ATT-LTE-driving.down
	mahimahi-TMobile-UMTS-driving.up mahimahi-TMobile-UMTS-driving.down
	mahimahi-Verizon-EVDO-driving.up mahimahi-Verizon-EVDO-driving.down
	nyc-trace-2767958-taxi1 nyc-trace-2768760-taxi3 nyc-trace-2925703-home1 nyc-trace-3114405-bus
)
mkdir -p "$OUT"
for name in "${TRACES[@]}"; do
	in=$SRC/$name.gz
	[ -f "$in" ] || { echo "dqn-trace-segments: missing $in" >&2; exit 1; }
	zcat "$in" | awk -v end=$((SECONDS_PER_SEGMENT * 1000)) '$1 < end' | gzip -n -9 >"$OUT/$name.gz.tmp"
	mv "$OUT/$name.gz.tmp" "$OUT/$name.gz"
done
ls -l "$OUT"
