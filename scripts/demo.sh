#!/usr/bin/env bash
# `make demo`: the built-in lab (client - router - 50 Mbit/s tbf with a 2 MB buffer -
# server, 20 ms base RTT), two 10 s iperf3 uploads under cubic: first with the kernel
# alone, then with reflexd attached and acting. Prints throughput and ping RTT of both,
# what reflexd decided, and a summary of the flows and windows it recorded.
set -u
cd "$(dirname "$0")/.."
export LAB_PREFIX=${LAB_PREFIX:-rfxdemo}
export LAB_DELAY_MS=${LAB_DELAY_MS:-20}
export LAB_CC=${LAB_CC:-cubic}
SECS=${DEMO_SECONDS:-10}
BIN=${REFLEX_BIN:-build}
LAB="scripts/lab/lab.sh"
OUT=$(mktemp -d /tmp/reflex-demo.XXXXXX)
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
RD_PID=

cleanup() {
	[ -n "$RD_PID" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null
	"$BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	$LAB down >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # the EXIT trap cleans up; a bare INT/TERM trap would carry on

# reflexd's default cwnd policy, the heuristic (README, The arena), and the batching model
models=()
[ -f models/batching.reflex ] && models+=(--model batching=models/batching.reflex)

echo "== lab: client -> router (tbf 50 Mbit/s, 2 MB buffer) -> server, +${LAB_DELAY_MS} ms RTT, $LAB_CC"
$LAB up >/dev/null || exit 1
SERVER=$($LAB addr server)
CLIENT_IF=$($LAB iface client)
nsenter --net=/run/netns/"$($LAB netns server)" iperf3 -s -D -p 5201 >/dev/null 2>&1
sleep 0.5

# transfer LABEL [MIDWAY_CMD...]: 2 parallel uploads for SECS seconds with a 20 Hz ping
# alongside; MIDWAY_CMD runs halfway through.
transfer() {
	local label=$1; shift
	nsenter --net=/run/netns/"$($LAB netns client)" ping -i 0.05 -w "$((SECS + 1))" "$SERVER" >"$OUT/ping.$label" 2>&1 &
	local ping_pid=$!
	$LAB exec client timeout $((SECS + 15)) iperf3 -c "$SERVER" -p 5201 -t "$SECS" -P 2 -J >"$OUT/iperf.$label" &
	local iperf_pid=$!
	if [ $# -gt 0 ]; then
		sleep $((SECS / 2))
		"$@" >"$OUT/midway.$label" 2>&1
	fi
	wait "$iperf_pid" "$ping_pid"
	local mbit p50 p95
	mbit=$(jq '.end.sum_received.bits_per_second / 1e6' "$OUT/iperf.$label")
	read -r p50 p95 < <(grep -oE 'time=[0-9.]+' "$OUT/ping.$label" | cut -d= -f2 | sort -g |
		awk '{v[NR] = $1} END {print v[int(NR * 0.5)], v[int(NR * 0.95)]}')
	printf '  %-26s %8.1f Mbit/s   ping p50 %7.1f ms   p95 %7.1f ms\n' "$label" "$mbit" "$p50" "$p95"
}

echo "== $SECS s, 2 flows, kernel $LAB_CC alone"
transfer "cubic alone"

echo "== $SECS s, 2 flows, reflexd attached on the client (${models[*]:-heuristic 1.25 x BDP})"
nsenter --net=/run/netns/"$($LAB netns client)" "$BIN/reflexd" --iface "$CLIENT_IF" --cgroup "$($LAB cgroup)" \
	--pin-dir "$PIN" --telemetry-out "$OUT/telemetry.csv" --decision-log "$OUT/decisions.log" \
	"${models[@]}" 2>"$OUT/reflexd.log" &
RD_PID=$!
for _ in $(seq 50); do [ -e "$PIN/sockops_link" ] && break; sleep 0.1; done
sleep 0.5
transfer "cubic + reflexd" nsenter --net=/run/netns/"$($LAB netns client)" "$BIN/reflexctl" flows --pin-dir "$PIN"
echo "== live flows halfway through (reflexctl flows)"
sed 's/^/  /' "$OUT/midway.cubic + reflexd" | head -8
kill "$RD_PID"; wait "$RD_PID"; RD_PID=
echo "== reflexd said"
sed 's/^/  /' "$OUT/reflexd.log"
echo "== decisions (reflexctl decisions, last 6)"
"$BIN/reflexctl" decisions --log "$OUT/decisions.log" --last 6 | cut -c1-150 | sed 's/^/  /'
echo "== windows recorded ($OUT/telemetry.csv)"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{ n[$2]++ }
	$2 == "flow" && $col["latency_p95"] > 0 { f++; p95 += $col["latency_p95"]; rate += $col["delivery_rate_bps"] }
	END {
		printf "  %d interface windows, %d flow windows (every 100 ms, 200 ms long)\n", n["iface"], n["flow"]
		if (f) printf "  flow windows: mean latency_p95 %.1f ms, mean delivery rate %.1f Mbit/s\n", p95 / f / 1000, rate / f / 1e6
	}' "$OUT/telemetry.csv"
echo "== lab down; files kept in $OUT"
