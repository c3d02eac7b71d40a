#!/usr/bin/env bash
# The closed loop on the lab bottleneck (50 Mbit/s tbf, 2 MB buffer, +20 ms RTT):
# throughput and ping RTT p50/p95/p99 during 2-flow uploads for
#   cubic                 the kernel alone
#   bbr                   the kernel alone
#   cubic+reflexd tree    reflexd acting with models/cwnd.reflex
#   cubic+reflexd heur.   reflexd acting with its heuristic fallback
#   cubic+reflexd dqn     reflexd acting with --policy cwnd=dqn (if models/dqn.reflex exists)
#   reflexd tree, cc      the tree's decisions through --actuator cc (cwnd = decision)
# Configurations are interleaved, REPS rounds; the table shows medians over rounds and
# ratios against cubic and bbr measured in the same run.
# Usage: tests/bench/bench_closed_loop.sh [REPS=3] [SECONDS=15]
set -u
cd "$(dirname "$0")/../.."
REPS=${1:-3}
SECS=${2:-15}
BIN=${REFLEX_BIN:-build}
export LAB_PREFIX=${LAB_PREFIX:-rb$$}
LAB=scripts/lab/lab.sh
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
RD_PID=
cleanup() {
	[ -n "$RD_PID" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null
	"$BIN/reflexd" --cleanup --actuator cc --pin-dir "$PIN" >/dev/null 2>&1
	$LAB down >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # the EXIT trap cleans up; a bare INT/TERM trap would carry on

LAB_DELAY_MS=20 LAB_CC=cubic $LAB up >/dev/null || exit 1
SERVER=$($LAB addr server)
NS_CLIENT=/run/netns/$($LAB netns client)
nsenter --net=/run/netns/"$($LAB netns server)" iperf3 -s -D -p 5201 >/dev/null 2>&1
sleep 0.5

configs=(cubic bbr)
[ -f models/cwnd.reflex ] && configs+=(tree)
configs+=(heuristic)
[ -f models/dqn.reflex ] && configs+=(dqn)
[ -f models/cwnd.reflex ] && configs+=(tree-cc)

reflexd_start() { # extra args
	nsenter --net="$NS_CLIENT" "$BIN/reflexd" --iface "$($LAB iface client)" --cgroup "$($LAB cgroup)" \
		--pin-dir "$PIN" --decision-log "$TMP/decisions.log" "$@" 2>>"$TMP/reflexd.log" &
	RD_PID=$!
	for _ in $(seq 50); do [ -e "$PIN/sockops_link" ] && break; sleep 0.1; done
}
reflexd_stop() { kill "$RD_PID"; wait "$RD_PID" 2>/dev/null; RD_PID=; }

one_run() { # config round -> appends "config mbit p50 p95 p99" to results
	local config=$1 cc=cubic
	case $config in
	bbr) cc=bbr ;;
	tree) reflexd_start --model cwnd=models/cwnd.reflex ;;
	heuristic) reflexd_start ;;
	dqn) reflexd_start --policy cwnd=dqn --model dqn=models/dqn.reflex ;;
	# iperf3 -C sets TCP_CONGESTION after connect, which would undo sockops' choice
	tree-cc) cc= ; reflexd_start --model cwnd=models/cwnd.reflex --actuator cc ;;
	esac
	nsenter --net="$NS_CLIENT" ping -i 0.05 -w "$SECS" "$SERVER" >"$TMP/ping" 2>&1 &
	local ping_pid=$!
	$LAB exec client timeout $((SECS + 15)) iperf3 -c "$SERVER" -p 5201 -t "$SECS" -P 2 ${cc:+-C "$cc"} -J >"$TMP/iperf"
	wait "$ping_pid"
	[ -n "$RD_PID" ] && reflexd_stop
	local mbit
	mbit=$(jq '.end.sum_received.bits_per_second / 1e6' "$TMP/iperf")
	grep -oE 'time=[0-9.]+' "$TMP/ping" | cut -d= -f2 | sort -g |
		awk -v c="$config" -v m="$mbit" '
			function at(q,  i) { i = int(NR * q); if (i < 1) i = 1; return v[i] }
			{v[NR] = $1}
			END { printf "%s %.2f %.1f %.1f %.1f\n", c, m, at(0.5), at(0.95), at(0.99) }' >>"$TMP/results"
}

for round in $(seq "$REPS"); do
	for config in "${configs[@]}"; do
		one_run "$config" "$round"
	done
done

median_of() { # config column
	awk -v c="$1" -v k="$2" '$1 == c {print $k}' "$TMP/results" | sort -g |
		awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
printf 'lab: 50 Mbit/s tbf, 2 MB buffer, +20 ms RTT; 2 flows x %d s; medians of %d interleaved rounds\n' "$SECS" "$REPS"
printf '%-22s %9s %9s %9s %9s   %-22s %-22s\n' config Mbit/s p50_ms p95_ms p99_ms "vs cubic (tput, p95)" "vs bbr (tput, p95)"
c_t=$(median_of cubic 2); c_p=$(median_of cubic 4); b_t=$(median_of bbr 2); b_p=$(median_of bbr 4)
for config in "${configs[@]}"; do
	t=$(median_of "$config" 2); p50=$(median_of "$config" 3); p95=$(median_of "$config" 4); p99=$(median_of "$config" 5)
	label=$config
	case $config in tree) label="cubic+reflexd tree" ;; heuristic) label="cubic+reflexd heur." ;; dqn) label="cubic+reflexd dqn" ;; tree-cc) label="reflexd tree, cc" ;; esac
	awk -v l="$label" -v t="$t" -v p50="$p50" -v p95="$p95" -v p99="$p99" -v ct="$c_t" -v cp="$c_p" -v bt="$b_t" -v bp="$b_p" \
		'BEGIN {printf "%-22s %9.1f %9.1f %9.1f %9.1f   %6.2f, %6.2f          %6.2f, %6.2f\n", l, t, p50, p95, p99, t / ct, p95 / cp, t / bt, p95 / bp}'
done
echo "(every run: $(tr '\n' ';' <"$TMP/results"))"
