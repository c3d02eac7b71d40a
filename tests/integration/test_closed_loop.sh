#!/usr/bin/env bash
# reflexd acting on the lab (cubic, 50 Mbit/s tbf with a 2 MB buffer, +20 ms RTT):
#  1. two uploads under the heuristic policy: every data flow gets a clamp, and
#     `ss -ti` shows cwnd <= clamp and ssthresh == clamp (TCP_BPF_SNDCWND_CLAMP sets both);
#  2. the bottleneck drops to 20 Mbit/s mid-test: each flow's clamp goes down;
#  3. under bbr this time, kill -9 of reflexd: within the 500 ms heartbeat deadline
#     the BPF side lifts the clamps (ssthresh back to infinite, cwnd grows past the
#     old clamp);
#  4. --shadow: decisions are logged (acted: false) and no clamp is ever set.
source "$(dirname "$0")/lib.sh"

lab_up LAB_DELAY_MS=20 LAB_CC=cubic
CLIENT_IF=$(lab iface client)
CGROUP=$(lab cgroup)
SERVER=$(lab addr server)
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
NS_CLIENT=/run/netns/$(lab netns client)
in_client() { nsenter --net="$NS_CLIENT" "$@"; }

start_reflexd() { # extra args...
	nsenter --net="$NS_CLIENT" "$REFLEX_BIN/reflexd" --iface "$CLIENT_IF" --cgroup "$CGROUP" --pin-dir "$PIN" \
		--decision-log "$TMP/decisions.log" "$@" 2>>"$TMP/reflexd.log" &
	RD_PID=$!
	wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"
}
upload() { # seconds port [congestion control]
	nsenter --net=/run/netns/"$(lab netns server)" timeout $(($1 + 10)) iperf3 -s -1 -p "$2" >/dev/null 2>&1 &
	sleep 0.3
	lab exec client timeout $(($1 + 10)) iperf3 -c "$SERVER" -p "$2" -t "$1" -P 2 -C "${3:-cubic}" -J >"$TMP/iperf.$2.json" &
	IPERF_PID=$!
}
# Data flows (not iperf3's control connection) with their clamp and cwnd in the map.
data_flows() {
	in_client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" |
		jq -c "[.[] | select(.flow | test(\":$1\$\")) | select(.bytes_acked > 1000000)]"
}
ss_field() { # port field: ss -ti value of field (cwnd, ssthresh) for the local port
	in_client ss -tin state established "( sport = :$1 )" | grep -oE "\\b$2:[0-9]+" | cut -d: -f2
}

# The flow's clamp in the map, and `ss -ti` showing cwnd <= clamp and ssthresh ==
# clamp. A new decision can land between the two reads: up to 3 tries. Sets CLAMP.
clamp_in_ss() { # port
	local try clamp cwnd ssthresh
	for try in 1 2 3; do
		clamp=$(in_client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" |
			jq "[.[] | select(.flow | test(\":$1-\")) | .cwnd_clamp] | .[0]")
		cwnd=$(ss_field "$1" cwnd)
		ssthresh=$(ss_field "$1" ssthresh)
		[ "$clamp" -ge 4 ] && [ -n "$cwnd" ] && [ "$cwnd" -le "$clamp" ] && [ "$ssthresh" = "$clamp" ] && break
	done
	CLAMP=$clamp
	log "flow :$1 clamp $clamp, ss cwnd $cwnd ssthresh $ssthresh (try $try)"
	expect_ge "$clamp" 4 "cwnd_clamp of :$1"
	expect_le "$cwnd" "$clamp" "ss -ti cwnd of :$1 vs its clamp"
	expect_eq "$ssthresh" "$clamp" "ss -ti ssthresh of :$1 (the clamp sets it)"
}

log "1. heuristic policy acting"
start_reflexd
upload 24 5201
sleep 6
flows=$(data_flows 5201)
expect_eq "$(echo "$flows" | jq length)" 2 "data flows in the map"
for i in 0 1; do
	port=$(echo "$flows" | jq -r ".[$i].flow" | sed -E 's/^tcp:[^:]+:([0-9]+)-.*/\1/')
	clamp_in_ss "$port"
done
before=$(echo "$flows" | jq '[.[].cwnd_clamp] | add')

log "2. bottleneck 50 -> 20 Mbit/s"
change_ns=$(awk '{printf "%d", $1 * 1e9}' /proc/uptime)
lab set bottleneck rate=20mbit
sleep 7
after=$(data_flows 5201 | jq '[.[].cwnd_clamp] | add')
log "sum of clamps: $before before, $after after the rate drop"
expect_le "$after" "$(awk -v b="$before" 'BEGIN {printf "%d", b * 0.7}')" "sum of clamps after the drop (<= 70 % of before)"
wait "$IPERF_PID" || fail "iperf3 failed"
downs=$(jq -s '[.[] | select(.knob == "cwnd_target" and .new < .old and .new > 0)] | length' "$TMP/decisions.log")
expect_ge "$downs" 2 "decisions that lowered a clamp"

log "3. under bbr, kill -9 mid-transfer: the heartbeat stops, the clamps are lifted"
lab set bottleneck rate=50mbit
upload 12 5202 bbr
sleep 5
flows=$(data_flows 5202)
port=$(echo "$flows" | jq -r '.[0].flow' | sed -E 's/^tcp:[^:]+:([0-9]+)-.*/\1/')
clamp_in_ss "$port"
clamp=$CLAMP
kill -9 "$RD_PID"; wait "$RD_PID" 2>/dev/null
sleep 1
ssthresh=$(ss_field "$port" ssthresh)
log "1 s after kill -9: ss ssthresh '${ssthresh:-none (infinite)}', cwnd $(ss_field "$port" cwnd), old clamp $clamp"
expect_eq "$ssthresh" "" "ssthresh 1 s after kill -9 (absent = infinite = lifted)"
wait_for "[ \"\$(ss_field $port cwnd)\" -gt $clamp ]" 4 || fail "cwnd did not grow past the old clamp $clamp after the lift"
lifted=$(in_client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" | jq "[.[] | select(.flow | test(\":$port-\")) | .cwnd_clamp] | .[0]")
expect_eq "$lifted" 0 "cwnd_clamp in sock_flows after the lift"
wait "$IPERF_PID"
"$REFLEX_BIN/reflexd" --cleanup --pin-dir "$PIN" 2>/dev/null || fail "--cleanup after kill -9 failed"

log "4. shadow mode decides and logs, enforces nothing; reflexctl promote lets it act"
: >"$TMP/decisions.log"
start_reflexd --shadow
upload 20 5203
STATUS=/run/reflex/$(echo "$PIN" | tr / _).shadow
wait_for "[ -s $STATUS ]" 15 || fail "no shadow verdict in $STATUS: $(tail -3 "$TMP/reflexd.log")"
flows=$(in_client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN")
expect_eq "$(echo "$flows" | jq '[.[] | select(.cwnd_clamp > 0)] | length')" 0 "clamped flows in shadow mode"
logged=$(jq -s '[.[] | select(.knob == "cwnd_target")] | length' "$TMP/decisions.log")
acted=$(jq -s '[.[] | select(.acted == true)] | length' "$TMP/decisions.log")
expect_ge "$logged" 2 "decisions logged in shadow mode"
expect_eq "$acted" 0 "decisions that acted in shadow mode"
log "verdict: $(grep '^why=' "$STATUS" | cut -d= -f2-)"
# The gate (expected delta p95 <= -10 %, <= 1 reversal per flow in 30 s) holds by a
# wide margin on a 2 MB buffer at 50 Mbit/s: promotion must go through.
in_client "$REFLEX_BIN/reflexctl" promote --pin-dir "$PIN" >"$TMP/promote.out" 2>&1 ||
	fail "reflexctl promote: $(cat "$TMP/promote.out")"
log "$(cat "$TMP/promote.out")"
wait_for "[ \"\$(in_client $REFLEX_BIN/reflexctl flows --json --pin-dir $PIN | jq '[.[] | select(.cwnd_clamp > 0)] | length')\" -ge 1 ]" 5 ||
	fail "no clamp 5 s after promotion"
wait "$IPERF_PID"
kill -TERM "$RD_PID"; wait "$RD_PID" || fail "reflexd exit code $?"
grep -q 'reflexd: promoted (reflexctl promote)' "$TMP/reflexd.log" || fail "reflexd did not log the promotion"
[ ! -e "$STATUS" ] || fail "shadow status file $STATUS left behind"
log "all checks passed"
