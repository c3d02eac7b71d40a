#!/usr/bin/env bash
# Cost of reflex's telemetry on a veth path with no bottleneck:
#  - iperf3 throughput without reflexd, with reflexd --observe (telemetry only) and
#    with reflexd acting (heuristic caps), interleaved, medians and ratios;
#  - per-packet BPF run time of each reflex program (kernel.bpf_stats_enabled:
#    run_time_ns / run_cnt), median over the "with" runs;
#  - sockops: reflex's program against an empty one attached to the same cgroup
#    (tests/bench/sockops_empty.bpf.c), so both run on the same callbacks: medians
#    over the observing and the acting runs, the difference and the ratio.
# Usage: tests/bench/bench_telemetry.sh [PAIRS] [SECONDS]   (defaults 5 and 4)
set -u
cd "$(dirname "$0")/../.."
PAIRS=${1:-5}
SECS=${2:-4}
BIN=${REFLEX_BIN:-build}
BPF_DIR=${REFLEX_BPF:-build/bpf}
P=rb$$
NS_A=$P-a NS_B=$P-b
CG=/sys/fs/cgroup/unified/$P
PIN=/sys/fs/bpf/$P
RD_PID=

cleanup() {
	[ -n "$RD_PID" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null
	ip netns pids "$NS_A" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns pids "$NS_B" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	[ -n "$EMPTY_ID" ] && bpftool cgroup detach "$CG" sock_ops id "$EMPTY_ID" 2>/dev/null
	rm -f "$EMPTY_PIN"
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	"$BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	sysctl -qw kernel.bpf_stats_enabled="$STATS_BEFORE" 2>/dev/null
	rm -f "$LOG" "$LOG.decisions"
}
STATS_BEFORE=$(sysctl -n kernel.bpf_stats_enabled)
LOG=$(mktemp)
EMPTY_PIN=/sys/fs/bpf/$P-sockops-empty EMPTY_ID=
trap cleanup EXIT
trap 'exit 1' INT TERM  # the EXIT trap cleans up; a bare INT/TERM trap would carry on

ip netns add "$NS_A" && ip netns add "$NS_B" || exit 1
ip link add "$P-va" netns "$NS_A" type veth peer name "$P-vb" netns "$NS_B" || exit 1
inA() { nsenter --net=/run/netns/"$NS_A" "$@"; }
inB() { nsenter --net=/run/netns/"$NS_B" "$@"; }
inA ip addr add 10.213.0.1/24 dev "$P-va" && inA ip link set "$P-va" up && inA ip link set lo up
inB ip addr add 10.213.0.2/24 dev "$P-vb" && inB ip link set "$P-vb" up && inB ip link set lo up
mkdir -p "$CG"
bpftool prog load "$BPF_DIR/sockops_empty.bpf.o" "$EMPTY_PIN" type sockops || exit 1
EMPTY_ID=$(bpftool -j prog show pinned "$EMPTY_PIN" | jq .id)
bpftool cgroup attach "$CG" sock_ops id "$EMPTY_ID" multi || exit 1
inB iperf3 -s -D -p 5301 >/dev/null 2>&1
sleep 0.5

# One transfer from A (inside the cgroup) to B; prints bits per second.
transfer() {
	bash -c "echo \$\$ > $CG/cgroup.procs; exec nsenter --net=/run/netns/$NS_A timeout $((SECS + 10)) iperf3 -c 10.213.0.2 -p 5301 -t $SECS -J" \
		| jq '.end.sum_received.bits_per_second'
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

sysctl -qw kernel.bpf_stats_enabled=1
without=() with=() acting=() per_pkt_tc=() per_pkt_sockops=()
sockops_observe=() empty_observe=() sockops_acting=() empty_acting=()
# "run_time_ns run_cnt" of the empty program so far: it stays loaded across runs.
empty_totals() { bpftool -j prog show id "$EMPTY_ID" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'; }
# ns per invocation of the empty program since totals $1 $2.
empty_since() { empty_totals | awk -v t="$1" -v c="$2" '{if ($2 > c) printf "%.1f", ($1 - t) / ($2 - c); else print "nan"}'; }
# "name ns-per-run" of this run's programs: those on this bench's cgroup and veth only
# (other reflexd instances on the machine run programs of the same names).
our_stats() {
	{ bpftool -j cgroup show "$CG" | jq '.[].id'; inA bpftool -j net show dev "$P-va" | jq '.[].tc[]?.id'; } |
		while read -r id; do
			bpftool -j prog show id "$id" |
				jq -r 'select(.run_cnt != null and .run_cnt > 0) | "\(.name) \(.run_time_ns / .run_cnt)"'
		done
}
reflex_sockops_ns() { our_stats | awk '$1 == "reflex_sockops" {print $2}'; }
reflexd_start() {
	nsenter --net=/run/netns/"$NS_A" "$BIN/reflexd" --iface "$P-va" --cgroup "$CG" --pin-dir "$PIN" "$@" 2>>"$LOG" &
	RD_PID=$!
	for _ in $(seq 50); do [ -e "$PIN/sockops_link" ] && break; sleep 0.1; done
}
reflexd_stop() {
	if ! kill "$RD_PID" 2>/dev/null; then
		echo "reflexd exited early:" >&2; cat "$LOG" >&2; exit 1
	fi
	wait "$RD_PID" 2>/dev/null; RD_PID=
}
for i in $(seq "$PAIRS"); do
	without+=("$(transfer)")
	reflexd_start --observe
	read -r t0 c0 < <(empty_totals)
	with+=("$(transfer)")
	empty_observe+=("$(empty_since "$t0" "$c0")")
	# run_time_ns / run_cnt of this run's programs (fresh ids each run).
	stats=$(our_stats)
	per_pkt_tc+=("$(echo "$stats" | awk '$1 ~ /reflex_tc_/ {s+=$2; n++} END {if (n) print s/n}')")
	per_pkt_sockops+=("$(echo "$stats" | awk '$1 == "reflex_sockops" {print $2}')")
	sockops_observe+=("${per_pkt_sockops[-1]}")
	reflexd_stop
	reflexd_start --decision-log "$LOG.decisions"
	read -r t0 c0 < <(empty_totals)
	acting+=("$(transfer)")
	empty_acting+=("$(empty_since "$t0" "$c0")")
	sockops_acting+=("$(reflex_sockops_ns)")
	reflexd_stop
done

m_without=$(printf '%s\n' "${without[@]}" | median)
m_with=$(printf '%s\n' "${with[@]}" | median)
m_acting=$(printf '%s\n' "${acting[@]}" | median)
mbit() { awk -v v="$1" 'BEGIN {printf "%.1f", v / 1e6}'; }
runs() { printf '%s\n' "$@" | awk '{printf "%.0f ", $1 / 1e6}'; }
printf 'iperf3 over veth, %d interleaved rounds of %d s\n' "$PAIRS" "$SECS"
printf '  %-28s %10s Mbit/s (runs: %s)\n' "without reflexd (median)" "$(mbit "$m_without")" "$(runs "${without[@]}")"
printf '  %-28s %10s Mbit/s (runs: %s)\n' "reflexd --observe (median)" "$(mbit "$m_with")" "$(runs "${with[@]}")"
printf '  %-28s %10s Mbit/s (runs: %s)\n' "reflexd acting (median)" "$(mbit "$m_acting")" "$(runs "${acting[@]}")"
printf '  %-28s %10s\n' "ratio observe/without" "$(awk -v a="$m_with" -v b="$m_without" 'BEGIN {printf "%.3f", a / b}')"
printf '  %-28s %10s\n' "ratio acting/without" "$(awk -v a="$m_acting" -v b="$m_without" 'BEGIN {printf "%.3f", a / b}')"
printf 'BPF run time per invocation (median over runs)\n'
printf '  %-28s %10.0f ns\n' "tc (ingress+egress mean)" "$(printf '%s\n' "${per_pkt_tc[@]}" | median)"
printf '  %-28s %10.0f ns\n' "sockops" "$(printf '%s\n' "${per_pkt_sockops[@]}" | median)"
med() { printf '%s\n' "$@" | grep -v nan | median; }
sockops_line() { # label reflex-median empty-median
	printf '  %-28s %6.0f ns, empty sockops %4.0f ns: +%.0f ns, ratio %.2f\n' "$1" "$2" "$3" \
		"$(awk -v a="$2" -v b="$3" 'BEGIN {print a - b}')" "$(awk -v a="$2" -v b="$3" 'BEGIN {print a / b}')"
}
printf 'sockops per invocation, reflex vs an empty program on the same callbacks (medians)\n'
sockops_line "reflexd --observe" "$(med "${sockops_observe[@]}")" "$(med "${empty_observe[@]}")"
sockops_line "reflexd acting" "$(med "${sockops_acting[@]}")" "$(med "${empty_acting[@]}")"
