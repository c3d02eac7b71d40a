#!/usr/bin/env bash
# Records the lab traces the shipped models are built from (models/traces/):
# reflexd --observe on the client (telemetry only, the kernel's cubic decides) while a
# traffic mix runs through the bottleneck. Each mix gives MIX.csv.gz (windows) and
# MIX.records.csv.gz (ring-buffer arrivals, for the batching oracle).
#   bulk   two long uploads; the bottleneck goes 50 -> 20 -> 80 Mbit/s; +20 ms RTT
#   short  two loops of short uploads (200 KB, 4 flows each); +10 ms RTT
#   mixed  one long upload, a loop of short ones and a ping; +40 ms RTT
#   trace:NAME=FILE@OFFSET_MS
#          one upload and a 20 Hz ping through a trace-driven link (scripts/lab/trace-link.c,
#          1 MB buffer, +40 ms RTT): the mahimahi trace FILE (under REFLEX_TRACES, default
#          /work/shared/traces) from OFFSET_MS drives the client->server direction whatever
#          direction it was recorded in (the sender's view is the same); gives
#          trace-NAME.csv.gz (trees built from them are compared by scripts/arena/heldout.sh;
#          scripts/build-models.sh does not use them)
#   training
#          every trace mix of TRAINING_TRACES below, RECORD_TRACE_SECS (default 25) each
# Usage: scripts/record-traces.sh [SECONDS per mix, default 60] [MIX...]
#   RECORD_OUT=DIR writes there instead of models/traces.
set -u
cd "$(dirname "$0")/.." || exit 1
SECS=${1:-60}; shift || true
MIXES=("$@"); [ ${#MIXES[@]} -gt 0 ] || MIXES=(bulk short mixed)
BIN=${REFLEX_BIN:-build}
export LAB_PREFIX=${LAB_PREFIX:-rfxrec}
LAB=scripts/lab/lab.sh
OUT=${RECORD_OUT:-models/traces}
TRACES=${REFLEX_TRACES:-/work/shared/traces}
TRACE_SECS=${RECORD_TRACE_SECS:-25}
# The traces the cwnd tree may learn from. The arena's trace scenarios
# (scripts/arena/scenarios.conf: ATT-LTE-driving-2016, TMobile-LTE-driving, NYC taxi3)
# are held out: none of their files is here.
TRAINING_TRACES=(
	att-lte-up-900=mahimahi-ATT-LTE-driving.up.gz@900000
	att-lte-down-25=mahimahi-ATT-LTE-driving.down.gz@25000
	att-lte-down-250=mahimahi-ATT-LTE-driving.down.gz@250000
	tmo-umts-down-100=mahimahi-TMobile-UMTS-driving.down.gz@100000
	tmo-umts-down-425=mahimahi-TMobile-UMTS-driving.down.gz@425000
	tmo-umts-up-675=mahimahi-TMobile-UMTS-driving.up.gz@675000
	vz-evdo-up-300=mahimahi-Verizon-EVDO-driving.up.gz@300000
	nyc-taxi1-0=nyc-trace-2767958-taxi1.gz@0
	nyc-bus-75=nyc-trace-3114405-bus.gz@75000
)
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
RD_PID=
trap 'stop_all; $LAB down >/dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

stop_all() {
	[ -n "$RD_PID" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null
	RD_PID=
	jobs -p | xargs -r kill 2>/dev/null
	"$BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
}
upload() { # seconds [extra iperf3 args]
	local secs=$1; shift
	$LAB exec client timeout $((secs + 10)) iperf3 -c "$SERVER" -p 5201 -t "$secs" "$@" >/dev/null 2>&1
}
short_loop() { # seconds port
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		$LAB exec client timeout 10 iperf3 -c "$SERVER" -p "$2" -n 200K -P 4 >/dev/null 2>&1 || sleep 0.2
	done
}

record() { # mix delay_ms [VAR=VALUE... for lab.sh up]
	local mix=$1 delay=$2 name=$1
	[[ $mix == trace:* ]] && name=${mix#trace:} && name=trace-${name%%=*}
	shift 2
	echo "== $mix: $SECS s, +$delay ms RTT $*"
	mkdir -p "$OUT"
	env "$@" LAB_DELAY_MS="$delay" LAB_CC=cubic $LAB up >/dev/null || exit 1
	SERVER=$($LAB addr server)
	for port in 5201 5202 5203; do
		nsenter --net=/run/netns/"$($LAB netns server)" iperf3 -s -D -p $port >/dev/null 2>&1
	done
	nsenter --net=/run/netns/"$($LAB netns client)" "$BIN/reflexd" --observe --iface "$($LAB iface client)" \
		--cgroup "$($LAB cgroup)" --pin-dir "$PIN" --telemetry-out "$TMP/$name.csv" \
		--records-out "$TMP/$name.records.csv" 2>"$TMP/$name.log" &
	RD_PID=$!
	sleep 1
	case $mix in
	bulk)
		upload "$SECS" -P 2 & pids=($!)
		sleep $((SECS / 3)); $LAB set bottleneck rate=20mbit
		sleep $((SECS / 3)); $LAB set bottleneck rate=80mbit ;;
	short)
		short_loop "$SECS" 5202 & pids=($!)
		short_loop "$SECS" 5203 & pids+=($!) ;;
	mixed)
		upload "$SECS" & pids=($!)
		short_loop "$SECS" 5202 & pids+=($!)
		nsenter --net=/run/netns/"$($LAB netns client)" ping -q -i 0.1 -w "$SECS" "$SERVER" >/dev/null &
		pids+=($!) ;;
	trace:*)
		upload "$SECS" & pids=($!)
		nsenter --net=/run/netns/"$($LAB netns client)" ping -q -i 0.05 -w "$SECS" "$SERVER" >/dev/null &
		pids+=($!) ;;
	esac
	wait "${pids[@]}"  # not a bare wait: reflexd is a background job too
	kill "$RD_PID"; wait "$RD_PID"; RD_PID=
	tail -1 "$TMP/$name.log"
	$LAB down >/dev/null
	gzip -9n <"$TMP/$name.csv" >"$OUT/$name.csv.gz"
	gzip -9n <"$TMP/$name.records.csv" >"$OUT/$name.records.csv.gz"
	ls -la "$OUT/$name.csv.gz" "$OUT/$name.records.csv.gz"
}

record_trace() { # NAME=FILE@OFFSET_MS
	local spec=$1 file offset
	[[ $spec =~ ^[a-z0-9-]+=[^@/]+@[0-9]+$ ]] ||
		{ echo "record-traces.sh: trace mix '$spec': NAME=FILE@OFFSET_MS" >&2; exit 2; }
	file=${spec#*=}; offset=${file##*@}; file=$TRACES/${file%@*}
	[ -r "$file" ] || { echo "record-traces.sh: no trace $file" >&2; exit 2; }
	record "trace:$spec" 40 LAB_TRACE="$file" LAB_TRACE_DIR=up LAB_TRACE_OFFSET_MS="$offset" LAB_TRACE_BUFFER=1mb
}

for mix in "${MIXES[@]}"; do
	case $mix in
	bulk) record bulk 20 ;; short) record short 10 ;; mixed) record mixed 40 ;;
	trace:*) record_trace "${mix#trace:}" ;;
	training)
		SECS=$TRACE_SECS
		for spec in "${TRAINING_TRACES[@]}"; do record_trace "$spec"; done ;;
	*) echo "unknown mix $mix" >&2; exit 2 ;;
	esac
done
