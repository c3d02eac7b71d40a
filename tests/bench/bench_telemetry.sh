#!/usr/bin/env bash
# Cost of reflex's telemetry on a veth path with no bottleneck:
#  - iperf3 throughput without reflexd, with reflexd --observe (telemetry only) and
#    with reflexd acting (heuristic caps), interleaved, medians and ratios;
#  - per-packet BPF run time of each reflex program (kernel.bpf_stats_enabled:
#    run_time_ns / run_cnt), median over the "with" runs;
#  - sockops: reflex's program against an empty one attached to the same cgroup
#    (tests/bench/sockops_empty.bpf.c), so both run on the same callbacks: medians
#    over the observing and the acting runs, the median of each run's difference
#    (both programs ran on the same callbacks at the same time), the same per order
#    (which program runs first alternates by round: the first pays more) and their
#    mean, which cancels the order, and the samples per
#    second sockops delivered (a cheaper program that samples less shows there)
#    out of the callbacks per second (the fewer, the more each sample weighs);
#  - tc: likewise reflex's two tc programs against an empty one
#    (tests/bench/tc_empty.bpf.c) on the same clsact hooks, before or after reflex's
#    filters as the sockops order alternates, per packet over both directions;
#  - what reflex costs in CPU, which the throughput's spread between runs cannot show
#    at the 2 % level: during each transfer, the run time of reflex's BPF programs
#    (bpf_stats) plus reflexd's own CPU time (/proc/PID/schedstat, which also counts
#    how many times reflexd ran), as a share of the CPU time the machine was busy
#    (/proc/stat). While the transfer keeps the cores
#    busy, throughput lost to reflex is about this share; kernel work outside the
#    programs (the sockops callbacks' dispatch) is not in it;
#  - with REFLEX_BASE_BIN=DIR, the reflexd of DIR (e.g. a build of main) is measured
#    in the same interleaved rounds, so a change is compared against its base.
#  - STREAMS=N runs N parallel flows (iperf3 -P), more than the tc program's per-CPU
#    flow cache has slots, so that flows take each other's slots.
# Usage: [BOTTLENECK=RATE] [STREAMS=N] tests/bench/bench_telemetry.sh [PAIRS] [SECONDS]   (defaults 5 and 4)
set -u
cd "$(dirname "$0")/../.."
PAIRS=${1:-5}
SECS=${2:-4}
BIN=${REFLEX_BIN:-build}
BPF_DIR=${REFLEX_BPF:-build/bpf}
BASE_BIN=${REFLEX_BASE_BIN:-} # another reflexd build to measure in the same rounds
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
	rm -f "$EMPTY_PIN" "$TC_EMPTY_PIN"
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	"$BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	sysctl -qw kernel.bpf_stats_enabled="$STATS_BEFORE" 2>/dev/null
	rm -f "$LOG" "$LOG.decisions"
}
STATS_BEFORE=$(sysctl -n kernel.bpf_stats_enabled)
LOG=$(mktemp)
EMPTY_PIN=/sys/fs/bpf/$P-sockops-empty EMPTY_ID=
TC_EMPTY_PIN=/sys/fs/bpf/$P-tc-empty TC_EMPTY_ID=
trap cleanup EXIT
trap 'exit 1' INT TERM  # the EXIT trap cleans up; a bare INT/TERM trap would carry on

ip netns add "$NS_A" && ip netns add "$NS_B" || exit 1
ip link add "$P-va" netns "$NS_A" type veth peer name "$P-vb" netns "$NS_B" || exit 1
inA() { nsenter --net=/run/netns/"$NS_A" "$@"; }
inB() { nsenter --net=/run/netns/"$NS_B" "$@"; }
inA ip addr add 10.213.0.1/24 dev "$P-va" && inA ip link set "$P-va" up && inA ip link set lo up
inB ip addr add 10.213.0.2/24 dev "$P-vb" && inB ip link set "$P-vb" up && inB ip link set lo up
# BOTTLENECK=RATE (e.g. 1gbit): a tbf on the sender's side, so that the flow is held
# by its cwnd (a 1 MB queue), not by iperf3's writes as on the bare veth.
if [ -n "${BOTTLENECK:-}" ]; then
	inA tc qdisc add dev "$P-va" root tbf rate "$BOTTLENECK" burst 256kb limit 1mb || exit 1
fi
mkdir -p "$CG"
bpftool prog load "$BPF_DIR/sockops_empty.bpf.o" "$EMPTY_PIN" type sockops || exit 1
EMPTY_ID=$(bpftool -j prog show pinned "$EMPTY_PIN" | jq .id)
bpftool cgroup attach "$CG" sock_ops id "$EMPTY_ID" multi || exit 1
# The clsact is ours (created before reflexd's), so reflexd leaves it and the empty
# tc filters in place when it stops.
bpftool prog load "$BPF_DIR/tc_empty.bpf.o" "$TC_EMPTY_PIN" type classifier || exit 1
TC_EMPTY_ID=$(bpftool -j prog show pinned "$TC_EMPTY_PIN" | jq .id)
inA tc qdisc add dev "$P-va" clsact || exit 1
# reflexd's filters are at priority 0x5246 (21062).
tc_empty_attach() { # PRIORITY
	local dir
	for dir in ingress egress; do
		inA tc filter del dev "$P-va" "$dir" pref "$((21062 * 2 - $1))" 2>/dev/null
		inA tc filter add dev "$P-va" "$dir" pref "$1" bpf object-pinned "$TC_EMPTY_PIN" direct-action || exit 1
	done
}
inB iperf3 -s -D -p 5301 >/dev/null 2>&1
sleep 0.5

# One transfer from A (inside the cgroup) to B; prints bits per second.
transfer() {
	bash -c "echo \$\$ > $CG/cgroup.procs; exec nsenter --net=/run/netns/$NS_A timeout $((SECS + 10)) iperf3 -c 10.213.0.2 -p 5301 -t $SECS -P ${STREAMS:-1} -J" \
		| jq '.end.sum_received.bits_per_second'
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

sysctl -qw kernel.bpf_stats_enabled=1
# "run_time_ns run_cnt" of the empty program so far: it stays loaded across runs.
empty_totals() { bpftool -j prog show id "$EMPTY_ID" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'; }
# ns per invocation of the empty program since totals $1 $2.
empty_since() { empty_totals | awk -v t="$1" -v c="$2" '{if ($2 > c) printf "%.1f", ($1 - t) / ($2 - c); else print "nan"}'; }
# Callbacks per second since totals $1 $2 (the empty program runs on every one).
callbacks_since() { empty_totals | awk -v c="$2" -v t="$SECS" '{print ($2 - c) / t}'; }
# "name ns-per-run" of this run's programs: those on this bench's cgroup and veth only
# (other reflexd instances on the machine run programs of the same names).
our_stats() {
	{ bpftool -j cgroup show "$CG" | jq '.[].id'; inA bpftool -j net show dev "$P-va" | jq '.[].tc[]?.id'; } |
		while read -r id; do
			bpftool -j prog show id "$id" |
				jq -r 'select(.run_cnt != null and .run_cnt > 0) | "\(.name) \(.run_time_ns / .run_cnt) \(.run_time_ns) \(.run_cnt)"'
		done
}
# Total run_time_ns of reflex's programs (the baselines left out), from our_stats lines.
reflex_run_time() { awk '$1 != "sockops_empty" && $1 != "tc_empty" {s += $3} END {printf "%.0f\n", s}'; }
# ns the machine's CPUs were busy so far (user, nice, system, irq, softirq).
busy_ns() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" {printf "%.0f", ($2 + $3 + $4 + $7 + $8) * 1e9 / hz}' /proc/stat; }
# "run_time_ns run_cnt" summed over reflex's tc programs, from our_stats lines.
reflex_tc_totals() { awk '$1 ~ /reflex_tc_/ {t += $3; c += $4} END {printf "%.0f %.0f\n", t, c}'; }
# "run_time_ns run_cnt" of the empty tc program so far, and ns per run since $1 $2.
tc_empty_totals() { bpftool -j prog show id "$TC_EMPTY_ID" | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'; }
tc_empty_since() { tc_empty_totals | awk -v t="$1" -v c="$2" '{if ($2 > c) printf "%.1f", ($1 - t) / ($2 - c); else print "nan"}'; }
# Records sockops emitted so far (counter sock_samples of the running reflexd).
sock_samples() { "$BIN/reflexctl" status --pin-dir "$PIN" --json 2>/dev/null | jq '.counters.sock_samples // 0'; }
reflexd_start() { # binary-dir args...
	local bin=$1; shift
	nsenter --net=/run/netns/"$NS_A" "$bin/reflexd" --iface "$P-va" --cgroup "$CG" --pin-dir "$PIN" "$@" 2>>"$LOG" &
	RD_PID=$!
	for _ in $(seq 50); do [ -e "$PIN/sockops_link" ] && break; sleep 0.1; done
}
reflexd_stop() {
	if ! kill "$RD_PID" 2>/dev/null; then
		echo "reflexd exited early:" >&2; cat "$LOG" >&2; exit 1
	fi
	wait "$RD_PID" 2>/dev/null; RD_PID=
}
# Per configuration (label): space-separated values, one per round.
declare -A reflexd_runs_per_s tc_empty_ns tc_over_ns tc_over_empty_first tc_over_reflex_first cpu_share bpf_share busy_share bps sockops_ns empty_ns over_ns over_empty_first over_reflex_first tc_ns samples_per_s callbacks_per_s
add() { eval "$1[\$2]+=\"\$3 \""; } # array label value
# One transfer under reflexd from binary dir $2 with args $3...; label $1.
measured() {
	local label=$1 bin=$2 t0 c0 s0 s1 before stats empty over b0 r0 p0 b1 r1 p1 runs0 runs1 tt0 tc0 rt0 rc0 rt1 rc1 tc_empty tc_over
	shift 2
	# The first program a callback runs pays more than those after it (measured: an
	# empty program first cost 40-80 ns more than the same program last), so the order
	# alternates by round and "over" is reported per order and balanced.
	if [ "$ORDER" = reflex_first ]; then
		bpftool cgroup detach "$CG" sock_ops id "$EMPTY_ID" || exit 1
		reflexd_start "$bin" "$@"
		bpftool cgroup attach "$CG" sock_ops id "$EMPTY_ID" multi || exit 1
	else
		reflexd_start "$bin" "$@"
	fi
	read -r t0 c0 < <(empty_totals)
	read -r tt0 tc0 < <(tc_empty_totals)
	s0=$(sock_samples)
	before=$(our_stats) b0=$(busy_ns)
	read -r p0 _ runs0 <"/proc/$RD_PID/schedstat"
	add bps "$label" "$(transfer)"
	# run_time_ns and run_cnt of this run's programs (fresh ids each run).
	b1=$(busy_ns) stats=$(our_stats)
	read -r p1 _ runs1 <"/proc/$RD_PID/schedstat"
	add reflexd_runs_per_s "$label" "$(awk -v a="$runs0" -v b="$runs1" -v t="$SECS" 'BEGIN {print (b - a) / t}')"
	r0=$(echo "$before" | reflex_run_time) r1=$(echo "$stats" | reflex_run_time)
	add cpu_share "$label" "$(awk -v b="$((b1 - b0))" -v c="$((r1 - r0 + p1 - p0))" 'BEGIN {print (b > 0 ? c / b : "nan")}')"
	add bpf_share "$label" "$(awk -v b="$((b1 - b0))" -v c="$((r1 - r0))" 'BEGIN {print (b > 0 ? c / b : "nan")}')"
	add busy_share "$label" "$(awk -v b="$((b1 - b0))" -v n="$(nproc)" -v t="$SECS" 'BEGIN {print b / (n * t * 1e9)}')"
	s1=$(sock_samples)
	empty=$(empty_since "$t0" "$c0")
	add empty_ns "$label" "$empty"
	add callbacks_per_s "$label" "$(callbacks_since "$t0" "$c0")"
	add samples_per_s "$label" "$(awk -v a="$s0" -v b="$s1" -v t="$SECS" 'BEGIN {print (b - a) / t}')"
	# tc: per packet over both directions, during the transfer, against the empty one.
	read -r rt0 rc0 < <(echo "$before" | reflex_tc_totals)
	read -r rt1 rc1 < <(echo "$stats" | reflex_tc_totals)
	tc_empty=$(tc_empty_since "$tt0" "$tc0")
	tc_over=$(awk -v t="$((rt1 - rt0))" -v c="$((rc1 - rc0))" -v e="$tc_empty" 'BEGIN {print (c > 0 ? t / c - e : "nan")}')
	add tc_ns "$label" "$(awk -v t="$((rt1 - rt0))" -v c="$((rc1 - rc0))" 'BEGIN {print (c > 0 ? t / c : "nan")}')"
	add tc_empty_ns "$label" "$tc_empty"
	add tc_over_ns "$label" "$tc_over"
	add "tc_over_$ORDER" "$label" "$tc_over"
	add sockops_ns "$label" "$(echo "$stats" | awk '$1 == "reflex_sockops" {print $2}')"
	# The run's own difference: both programs saw the same callbacks at the same time.
	over=$(echo "$stats" | awk -v e="$empty" '$1 == "reflex_sockops" {print $2 - e}')
	add over_ns "$label" "$over"
	add "over_$ORDER" "$label" "$over"
	reflexd_stop
}
labels=(observe acting)
[ -n "$BASE_BIN" ] && labels+=("base observe" "base acting")
for i in $(seq "$PAIRS"); do
	ORDER=$([ $((i % 2)) = 1 ] && echo empty_first || echo reflex_first)
	tc_empty_attach "$([ "$ORDER" = empty_first ] && echo 21061 || echo 21063)"
	add bps without "$(transfer)"
	measured observe "$BIN" --observe
	measured acting "$BIN" --decision-log "$LOG.decisions"
	if [ -n "$BASE_BIN" ]; then
		measured "base observe" "$BASE_BIN" --observe
		measured "base acting" "$BASE_BIN" --decision-log "$LOG.decisions"
	fi
done

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
med() { tr ' ' '\n' | grep -v -e '^$' -e nan | median; } # of a value list
m_without=$(echo "${bps[without]}" | med)
printf 'iperf3 over veth, %d interleaved rounds of %d s (reflexd %s%s)\n' "$PAIRS" "$SECS" "$BIN" \
	"${BASE_BIN:+, base $BASE_BIN}"
printf '  %-20s %9s Mbit/s (runs: %s)\n' without "$(echo "$m_without" | awk '{printf "%.1f", $1 / 1e6}')" \
	"$(echo "${bps[without]}" | awk '{for (i = 1; i <= NF; i++) printf "%.0f ", $i / 1e6}')"
for l in "${labels[@]}"; do
	m=$(echo "${bps[$l]}" | med)
	printf '  %-20s %9s Mbit/s, ratio to without %.3f (runs: %s)\n' "$l" "$(awk -v v="$m" 'BEGIN {printf "%.1f", v / 1e6}')" \
		"$(awk -v a="$m" -v b="$m_without" 'BEGIN {print a / b}')" \
		"$(echo "${bps[$l]}" | awk '{for (i = 1; i <= NF; i++) printf "%.0f ", $i / 1e6}')"
done
printf 'BPF run time per invocation, medians (sockops against an empty program on the same callbacks;\n'
printf "over: the median of each run's own difference)\n"
for l in "${labels[@]}"; do
	so=$(echo "${sockops_ns[$l]}" | med) em=$(echo "${empty_ns[$l]}" | med)
	printf '  %-20s sockops %5.0f ns, empty %4.0f ns, over %+4.0f ns (runs: %s); %4.0f samples/s of %6.0f callbacks/s\n' \
		"$l" "$so" "$em" "$(echo "${over_ns[$l]}" | med)" \
		"$(echo "${over_ns[$l]}" | awk '{for (i = 1; i <= NF; i++) printf "%+.0f ", $i}')" \
		"$(echo "${samples_per_s[$l]}" | med)" "$(echo "${callbacks_per_s[$l]}" | med)"
	ef=$(echo "${over_empty_first[$l]:-}" | med) rf=$(echo "${over_reflex_first[$l]:-}" | med)
	printf '  %-20s   over by order: empty first %+4.0f ns, reflex first %+4.0f ns; balanced (their mean) %+4.0f ns\n' \
		"" "$ef" "$rf" "$(awk -v a="$ef" -v b="$rf" 'BEGIN {print (a + b) / 2}')"
done
printf 'tc per packet over both directions during the transfers, against an empty tc program on the same hooks:\n'
for l in "${labels[@]}"; do
	ef=$(echo "${tc_over_empty_first[$l]:-}" | med) rf=$(echo "${tc_over_reflex_first[$l]:-}" | med)
	printf '  %-20s tc %5.0f ns, empty %4.0f ns, over %+4.0f ns (runs: %s); by order: empty first %+4.0f, reflex first %+4.0f, balanced %+4.0f ns\n' \
		"$l" "$(echo "${tc_ns[$l]}" | med)" "$(echo "${tc_empty_ns[$l]}" | med)" "$(echo "${tc_over_ns[$l]}" | med)" \
		"$(echo "${tc_over_ns[$l]}" | awk '{for (i = 1; i <= NF; i++) printf "%+.0f ", $i}')" \
		"$ef" "$rf" "$(awk -v a="$ef" -v b="$rf" 'BEGIN {print (a + b) / 2}')"
done
printf 'The order alternates by round: the first program a callback runs pays more than the next.\n'
printf 'The balanced figure cancels that; with one round there is no reflex-first run (nan).\n'
printf "reflex's CPU during the transfers (its BPF programs' run time + reflexd's CPU time), medians:\n"
for l in "${labels[@]}"; do
	printf '  %-20s %5.2f %% of the busy CPU time, BPF %.2f %% (runs: %s); the CPUs were %3.0f %% busy; reflexd ran %.0f times a second\n' "$l" \
		"$(echo "${cpu_share[$l]}" | med | awk '{print $1 * 100}')" \
		"$(echo "${bpf_share[$l]}" | med | awk '{print $1 * 100}')" \
		"$(echo "${cpu_share[$l]}" | awk '{for (i = 1; i <= NF; i++) printf "%.2f ", $i * 100}')" \
		"$(echo "${busy_share[$l]}" | med | awk '{print $1 * 100}')" \
		"$(echo "${reflexd_runs_per_s[$l]}" | med)"
done
