#!/usr/bin/env bash
# reflexd --actuator cc on the lab (cubic default, 50 Mbit/s tbf with a 2 MB buffer,
# +20 ms RTT): the `reflex` struct_ops congestion control whose cwnd is the decision.
#  1. two uploads: `ss -ti` shows congestion control reflex on the data flows and cwnd
#     equal to the flow's decision in cwnd_decisions (exactly; a new decision may land
#     between the reads: up to 5 tries); reflex is in tcp_available_congestion_control;
#     no clamp is ever set; throughput >= 40 Mbit/s (test_dqn_loop's bound);
#  2. a second `reflexd --actuator cc` while the first runs: exit 2, one line naming
#     the first's pid, the first's registration untouched;
#  3. kill -9 mid-transfer: the registration outlives reflexd (libbpf 1.1); the flow
#     stays on reflex and, its heartbeat stale, runs the CUBIC fallback: bytes keep
#     being acked and cwnd moves past the old decision; `reflexd --cleanup`
#     unregisters reflex while the flow still runs, and the flow completes;
#  4. a reflexd killed with -9, its registration then found by map id by the next
#     `reflexd --actuator cc` (another pin directory) and unregistered before that one
#     registers its own; SIGTERM unregisters it;
#  5. a congestion control named reflex that is not reflexd's: exit 2, one line, and
#     it stays registered.
# Nothing is left at the end, even on failure: reflexd is stopped, the pin directories
# are cleaned (which unregisters a dead reflexd's `reflex`), the foreign one is removed.
source "$(dirname "$0")/lib.sh"

lab_up LAB_DELAY_MS=20 LAB_CC=cubic
CLIENT_IF=$(lab iface client)
CGROUP=$(lab cgroup)
SERVER=$(lab addr server)
PIN=/sys/fs/bpf/$LAB_PREFIX-cc
PIN_B=/sys/fs/bpf/$LAB_PREFIX-cc2
AVAILABLE=/proc/sys/net/ipv4/tcp_available_congestion_control
TMP=$(mktemp -d)
NS_CLIENT=/run/netns/$(lab netns client)
RD_PIDS=()
FOREIGN_ID=
RD=$REFLEX_BIN/reflexd
require_bin reflexd

cc_cleanup() {
	local pid
	for pid in "${RD_PIDS[@]}"; do
		stop_pid "$pid"
	done
	"$RD" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	"$RD" --cleanup --actuator cc --pin-dir "$PIN_B" >/dev/null 2>&1
	[ -z "$FOREIGN_ID" ] || bpftool struct_ops unregister id "$FOREIGN_ID" >/dev/null 2>&1
	rm -rf "$TMP"
	true
}
on_exit cc_cleanup

in_client() { nsenter --net="$NS_CLIENT" "$@"; }

start_reflexd() { # PIN IFACE LOG [ARGS...]: sets RD_PID
	local pin=$1 iface=$2 log_file=$3
	shift 3
	nsenter --net="$NS_CLIENT" "$RD" --iface "$iface" --cgroup "$CGROUP" --pin-dir "$pin" --actuator cc \
		--decision-log "$log_file.decisions" "$@" 2>>"$log_file" &
	RD_PID=$!
	RD_PIDS+=("$RD_PID")
	wait_for "[ -e $pin/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$log_file")"
}
upload() { # seconds port streams
	nsenter --net=/run/netns/"$(lab netns server)" timeout $(($1 + 10)) iperf3 -s -1 -p "$2" >/dev/null 2>&1 &
	sleep 0.3
	# No -C: iperf3 would set it after connecting and so override the actuator.
	lab exec client timeout $(($1 + 10)) iperf3 -c "$SERVER" -p "$2" -t "$1" -P "$3" -J >"$TMP/iperf.$2.json" &
	IPERF_PID=$!
}
ss_info() { # local port: the `ss -ti` info line of the connection
	in_client ss -tinH state established "( sport = :$1 )" | sed -n 2p
}
ss_field() { # local port, field (cwnd, ssthresh, bytes_acked)
	ss_info "$1" | grep -oE "\\b$2:[0-9]+" | cut -d: -f2
}
ss_cc() { # local port: its congestion control as ss shows it
	ss_info "$1" | grep -owE 'reflex|cubic|bbr|reno' | head -1
}
# Local ports of the data flows to a server port (iperf3's control connection moves
# a few bytes only).
data_ports() { # server port
	in_client ss -tinH state established "( dport = :$1 )" | awk '
		/^[0-9]/ { n = split($3, a, ":"); port = a[n]; next }
		match($0, /bytes_acked:[0-9]+/) && substr($0, RSTART + 12, RLENGTH - 12) + 0 > 1000000 { print port }'
}
decision() { # local port: the flow's cwnd_target in cwnd_decisions, 0 if none
	bpftool map dump pinned "$PIN/cwnd_decisions" -j |
		jq "[.[] | select(.formatted.key.sport == $1) | .formatted.value.cwnd_target] | .[0] // 0"
}
counter() { # NAME: its total over CPUs in $PIN/counters (index: REFLEX_COUNTER_NAMES)
	local idx
	idx=$(sed -n '/#define REFLEX_COUNTER_NAMES/,/}/p' "$REPO/include/reflex.h" | grep -o '"[a-z0-9_]*"' |
		tr -d '"' | grep -nx "$1" | cut -d: -f1)
	[ -n "$idx" ] || fail "no counter '$1' in include/reflex.h"
	bpftool map dump pinned "$PIN/counters" -j |
		jq "[.[] | select(.formatted.key == $((idx - 1))) | .formatted.values[].value] | add"
}
cc_listed() { grep -qw reflex "$AVAILABLE"; }
reflex_ops_ids() { bpftool struct_ops show -j | jq -r '[.[] | select(.name == "reflex") | .id] | join(" ")'; }

# ss cwnd equals the flow's decision, read before and after it. Sets DECISION.
cwnd_on_decision() { # local port
	local try d1 d2 cwnd
	for try in 1 2 3 4 5; do
		d1=$(decision "$1")
		cwnd=$(ss_field "$1" cwnd)
		d2=$(decision "$1")
		[ "$d1" -gt 0 ] && [ "$d1" = "$d2" ] && [ "$cwnd" = "$d1" ] && break
		sleep 0.2
	done
	DECISION=$d1
	log "flow :$1 on $(ss_cc "$1"): decision $d1, ss cwnd $cwnd, rtt $(ss_info "$1" | grep -oE '\brtt:[0-9.]+' | cut -d: -f2) ms (try $try)"
	expect_ge "$d1" 4 "decision for :$1"
	expect_eq "$cwnd" "$d1" "ss -ti cwnd of :$1 vs its decision"
}

log "1. two uploads under the cc actuator"
[ -n "$(reflex_ops_ids)" ] && fail "a 'reflex' struct_ops map exists before the test: $(bpftool struct_ops show)"
start_reflexd "$PIN" "$CLIENT_IF" "$TMP/a.log"
A_PID=$RD_PID
cc_listed || fail "reflex not in $AVAILABLE while reflexd runs: $(cat "$AVAILABLE")"
log "$AVAILABLE: $(cat "$AVAILABLE")"
expect_eq "$(grep -cw reflex /proc/sys/net/ipv4/tcp_allowed_congestion_control)" 0 \
	"reflex in tcp_allowed_congestion_control (bpf_setsockopt needs no entry)"
upload 14 5201 2
sleep 6
ports=$(data_ports 5201)
expect_eq "$(echo "$ports" | wc -w)" 2 "data flows to :5201"
for port in $ports; do
	expect_eq "$(ss_cc "$port")" reflex "congestion control of :$port in ss -ti"
	cwnd_on_decision "$port"
done
# reflexctl flows shows the decision (nothing is clamped under this actuator).
port=$(echo $ports | cut -d" " -f1)
for try in 1 2 3 4 5; do
	d1=$(decision "$port")
	row=$(in_client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" | jq -c ".[] | select(.flow | test(\":$port-\"))")
	[ "$(echo "$row" | jq .cwnd_target)" = "$d1" ] && break
	sleep 0.2
done
expect_ge "$d1" 4 "decision for :$port in cwnd_decisions"
expect_eq "$(echo "$row" | jq .cwnd_target)" "$d1" "reflexctl flows cwnd_target of :$port vs cwnd_decisions"
expect_eq "$(echo "$row" | jq .cwnd_clamp)" 0 "reflexctl flows cwnd_clamp of :$port (no clamp under cc)"
expect_eq "$(in_client cat /proc/sys/net/ipv4/tcp_congestion_control)" cubic \
	"the client namespace's default congestion control (untouched)"

log "2. a second reflexd --actuator cc while the first runs"
in_client timeout 20 "$RD" --iface lo --cgroup "$CGROUP" --pin-dir "$PIN_B" --actuator cc 2>"$TMP/b.err"
expect_eq "$?" 2 "exit code of a second reflexd --actuator cc"
expect_eq "$(wc -l <"$TMP/b.err")" 1 "lines on its stderr"
grep -q "registered by a running process (pid $A_PID," "$TMP/b.err" || fail "unexpected: $(cat "$TMP/b.err")"
log "$(cat "$TMP/b.err")"
cc_listed || fail "the first reflexd's reflex was unregistered by the second"
[ ! -e "$PIN_B" ] || fail "the failed reflexd left $PIN_B"

wait "$IPERF_PID" || fail "iperf3 failed"
mbit=$(jq '.end.sum_received.bits_per_second / 1e6' "$TMP/iperf.5201.json")
expect_ge "$mbit" 40 "throughput of two uploads under the cc actuator (Mbit/s, bottleneck 50)"
expect_eq "$(jq -r '.end.sender_tcp_congestion' "$TMP/iperf.5201.json")" reflex "iperf3's sender_tcp_congestion"
expect_eq "$(counter clamp_set)" 0 "clamp_set (the clamp actuator stays off)"
expect_ge "$(counter cc_select)" 3 "cc_select (2 data flows and iperf3's control connection)"
expect_eq "$(counter cc_select_fail)" 0 "cc_select_fail"
expect_ge "$(counter cc_set)" 2 "cc_set"

log "3. kill -9 mid-transfer: the fallback runs, the registration outlives reflexd"
upload 16 5202 1
wait_for "[ -n \"\$(data_ports 5202)\" ] && [ \"\$(decision \$(data_ports 5202))\" -gt 0 ]" 10 ||
	fail "no decision for the upload to :5202 within 10 s"
port=$(data_ports 5202)
cwnd_on_decision "$port"
last=$DECISION
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null
acked_0=$(ss_field "$port" bytes_acked)
sleep 1
acked_1=$(ss_field "$port" bytes_acked)
sleep 2
acked_3=$(ss_field "$port" bytes_acked)
log "bytes_acked at kill: $acked_0, +1 s: $acked_1, +3 s: $acked_3"
expect_ge "$(awk -v a="$acked_1" -v b="$acked_3" 'BEGIN { printf "%.1f", (b - a) * 8 / 2 / 1e6 }')" 1 \
	"throughput 1-3 s after kill -9 (Mbit/s, from ss bytes_acked)"
wait_for "[ \"\$(ss_field $port cwnd)\" -gt $last ]" 4 ||
	fail "cwnd stayed at or below the last decision $last after kill -9 (now $(ss_field "$port" cwnd))"
log "after kill -9: cwnd $(ss_field "$port" cwnd), ssthresh $(ss_field "$port" ssthresh), last decision $last"
expect_eq "$(ss_cc "$port")" reflex "congestion control of :$port after kill -9"
expect_ge "$(counter heartbeat_stale)" 1 "heartbeat_stale (the CC saw the stale heartbeat)"
expect_ge "$(counter cc_fallback)" 1 "cc_fallback"
cc_listed || fail "reflex was unregistered by kill -9: with libbpf 1.1 it should outlive the process"
[ -e "$PIN/reflex" ] || fail "no pinned struct_ops map $PIN/reflex after kill -9"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/cleanup.err" || fail "--cleanup: $(cat "$TMP/cleanup.err")"
log "$(tr '\n' ' ' <"$TMP/cleanup.err")"
grep -q "unregistered the 'reflex' congestion control a dead reflexd left" "$TMP/cleanup.err" ||
	fail "--cleanup did not report unregistering reflex"
cc_listed && fail "reflex still in $AVAILABLE after --cleanup: $(cat "$AVAILABLE")"
[ ! -e "$PIN" ] || fail "$PIN left after --cleanup"
acked_a=$(ss_field "$port" bytes_acked)
sleep 1
acked_b=$(ss_field "$port" bytes_acked)
expect_ge "$((acked_b - acked_a))" 1 "bytes acked in 1 s after the unregistration (the flow runs on)"
expect_eq "$(ss_cc "$port")" reflex "congestion control of :$port after the unregistration"
wait "$IPERF_PID" || fail "iperf3 failed after kill -9 and --cleanup"
log "upload after kill -9: $(jq '.end.sum_received.bits_per_second / 1e6' "$TMP/iperf.5202.json") Mbit/s"

log "4. a dead reflexd's registration, found by map id by the next reflexd"
start_reflexd "$PIN" "$CLIENT_IF" "$TMP/a2.log"
dead_id=$(reflex_ops_ids)
[[ $dead_id =~ ^[0-9]+$ ]] || fail "expected one struct_ops map named reflex, got '$dead_id'"
kill -9 "$RD_PID"
wait "$RD_PID" 2>/dev/null
start_reflexd "$PIN_B" lo "$TMP/b.log"
B_PID=$RD_PID
grep -q "unregistered the 'reflex' congestion control a dead reflexd left (struct_ops map id $dead_id)" "$TMP/b.log" ||
	fail "the new reflexd did not unregister the dead one's (id $dead_id): $(cat "$TMP/b.log")"
live_id=$(bpftool struct_ops show -j | jq -r "[.[] | select(.name == \"reflex\" and .id != $dead_id) | .id] | join(\" \")")
log "dead reflexd's struct_ops map id $dead_id, the new one's $live_id"
[ -n "$live_id" ] || fail "the new reflexd has no struct_ops map"
cc_listed || fail "reflex not registered by the new reflexd"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/cleanup.err" || fail "--cleanup: $(cat "$TMP/cleanup.err")"
cc_listed || fail "--cleanup of the dead reflexd's pin dir unregistered the live one's reflex"
kill -TERM "$B_PID"
wait "$B_PID" || fail "reflexd exit code $? after SIGTERM"
cc_listed && fail "reflex still in $AVAILABLE after SIGTERM: $(cat "$AVAILABLE")"
[ ! -e "$PIN_B" ] || fail "$PIN_B left after SIGTERM"
expect_eq "$(reflex_ops_ids)" "" "struct_ops maps named reflex after SIGTERM"

log "5. a congestion control named reflex that is not reflexd's"
BPF_ARCH=$(uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$TMP/vmlinux.h" || fail "bpftool btf dump"
cat >"$TMP/foreign.bpf.c" <<'EOF'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;
SEC("struct_ops/foreign_cong_avoid")
void BPF_PROG(foreign_cong_avoid, struct sock *sk, __u32 ack, __u32 acked) { tcp_reno_cong_avoid(sk, ack, acked); }
SEC("struct_ops/foreign_ssthresh")
__u32 BPF_PROG(foreign_ssthresh, struct sock *sk) { return tcp_reno_ssthresh(sk); }
SEC("struct_ops/foreign_undo_cwnd")
__u32 BPF_PROG(foreign_undo_cwnd, struct sock *sk) { return tcp_reno_undo_cwnd(sk); }
SEC(".struct_ops")
struct tcp_congestion_ops foreign = {
	.cong_avoid = (void *)foreign_cong_avoid,
	.ssthresh = (void *)foreign_ssthresh,
	.undo_cwnd = (void *)foreign_undo_cwnd,
	.name = "reflex",
};
EOF
clang -g -O2 -target bpf -D__TARGET_ARCH_"$BPF_ARCH" -I"$TMP" -c "$TMP/foreign.bpf.c" -o "$TMP/foreign.bpf.o" ||
	fail "cannot build the foreign congestion control"
bpftool struct_ops register "$TMP/foreign.bpf.o" >"$TMP/foreign.out" 2>&1 || fail "register: $(cat "$TMP/foreign.out")"
FOREIGN_ID=$(sed -n 's/^Registered tcp_congestion_ops foreign id \([0-9]*\)$/\1/p' "$TMP/foreign.out")
[ -n "$FOREIGN_ID" ] || fail "no id in: $(cat "$TMP/foreign.out")"
cc_listed || fail "the foreign reflex is not listed"
in_client timeout 20 "$RD" --iface "$CLIENT_IF" --cgroup "$CGROUP" --pin-dir "$PIN" --actuator cc 2>"$TMP/f.err"
expect_eq "$?" 2 "exit code with a foreign reflex registered"
expect_eq "$(wc -l <"$TMP/f.err")" 1 "lines on its stderr"
grep -q "a congestion control named 'reflex' is already registered and is not reflexd's" "$TMP/f.err" ||
	fail "unexpected: $(cat "$TMP/f.err")"
log "$(cat "$TMP/f.err")"
"$RD" --cleanup --actuator cc --pin-dir "$PIN" 2>/dev/null || fail "--cleanup --actuator cc failed"
expect_eq "$(bpftool struct_ops show -j | jq "[.[] | select(.id == $FOREIGN_ID)] | length")" 1 \
	"the foreign struct_ops map after reflexd and --cleanup --actuator cc"
cc_listed || fail "reflexd unregistered the foreign reflex"
out=$(bpftool struct_ops unregister id "$FOREIGN_ID" 2>&1) || fail "cannot unregister the foreign reflex: $out"
FOREIGN_ID=

cc_listed && fail "reflex still in $AVAILABLE at the end"
for pin in "$PIN" "$PIN_B"; do
	[ ! -e "$pin" ] || fail "pin directory $pin left"
done
wait_for "[ -z \"\$(reflex_ops_ids)\" ]" 5 || fail "struct_ops maps named reflex left: $(reflex_ops_ids)"
expect_eq "$(bpftool cgroup show "$CGROUP" | grep -c sock_ops)" 0 "sockops programs on $CGROUP"
lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"
log "all checks passed"
