#!/usr/bin/env bash
# Records the lab traces the shipped models are built from (models/traces/):
# reflexd --observe on the client (telemetry only, the kernel's cubic decides) while a
# traffic mix runs through the bottleneck. Each mix gives MIX.csv.gz (windows) and
# MIX.records.csv.gz (ring-buffer arrivals, for the batching oracle).
#   bulk   two long uploads; the bottleneck goes 50 -> 20 -> 80 Mbit/s; +20 ms RTT
#   short  two loops of short uploads (200 KB, 4 flows each); +10 ms RTT
#   mixed  one long upload, a loop of short ones and a ping; +40 ms RTT
# Usage: scripts/record-traces.sh [SECONDS per mix, default 60] [MIX...]
set -u
cd "$(dirname "$0")/.."
SECS=${1:-60}; shift || true
MIXES=("$@"); [ ${#MIXES[@]} -gt 0 ] || MIXES=(bulk short mixed)
BIN=${REFLEX_BIN:-build}
export LAB_PREFIX=${LAB_PREFIX:-rfxrec}
LAB=scripts/lab/lab.sh
OUT=models/traces
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

record() { # mix delay_ms
	local mix=$1
	echo "== $mix: $SECS s, +$2 ms RTT"
	LAB_DELAY_MS=$2 LAB_CC=cubic $LAB up >/dev/null || exit 1
	SERVER=$($LAB addr server)
	for port in 5201 5202 5203; do
		nsenter --net=/run/netns/"$($LAB netns server)" iperf3 -s -D -p $port >/dev/null 2>&1
	done
	nsenter --net=/run/netns/"$($LAB netns client)" "$BIN/reflexd" --observe --iface "$($LAB iface client)" \
		--cgroup "$($LAB cgroup)" --pin-dir "$PIN" --telemetry-out "$TMP/$mix.csv" \
		--records-out "$TMP/$mix.records.csv" 2>"$TMP/$mix.log" &
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
	esac
	wait "${pids[@]}"  # not a bare wait: reflexd is a background job too
	kill "$RD_PID"; wait "$RD_PID"; RD_PID=
	tail -1 "$TMP/$mix.log"
	$LAB down >/dev/null
	gzip -9n <"$TMP/$mix.csv" >"$OUT/$mix.csv.gz"
	gzip -9n <"$TMP/$mix.records.csv" >"$OUT/$mix.records.csv.gz"
	ls -la "$OUT/$mix.csv.gz" "$OUT/$mix.records.csv.gz"
}

for mix in "${MIXES[@]}"; do
	case $mix in
	bulk) record bulk 20 ;; short) record short 10 ;; mixed) record mixed 40 ;;
	*) echo "unknown mix $mix" >&2; exit 2 ;;
	esac
done
