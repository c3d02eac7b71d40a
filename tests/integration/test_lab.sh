#!/usr/bin/env bash
# The lab itself (plain topology): IPv4 and IPv6 reach the server through the router; the
# tbf bottleneck is what limits a TCP transfer; LAB_DELAY_MS adds that much RTT through
# a running delay line (trace-link without a trace); LAB_LOSS_PCT loses about that share
# of packets; `up` refuses an existing lab and a failed `up` removes what it made; `down`
# leaves nothing.
#
# Bounds are broad on purpose (functional checks, not timings): the rate must land in
# 60..105 % of LAB_RATE (tbf counts Ethernet headers, so goodput tops out near 96 %);
# the RTT at least the configured delay (the delay line never releases early) and the
# added RTT at most 1.3 x + 3 ms (scheduling on a busy 2-core machine); 3000 pings at 5 % loss give 150 +/- 12
# expected losses, the 2.5..8 % window is over 6 standard deviations wide.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

RATE_MBIT=50
DELAY_MS=20
LOSS_PCT=5
FLOOD_COUNT=3000

require_bin trace-link
[ -f "$REFLEX_BPF/loss.bpf.o" ] || fail "no $REFLEX_BPF/loss.bpf.o: make build/bpf/loss.bpf.o"
command -v iperf3 >/dev/null || fail "iperf3 missing (scripts/deps.sh)"
command -v ping >/dev/null || fail "ping missing (iputils-ping)"

# Sets IPERF_BPS to the receiver's rate of a client -> server transfer. Not for $(...):
# spawn's cleanup must land on this shell's stack.
iperf_rate() { # SERVER_ADDR SECONDS
	local json
	spawn "$LAB" exec server timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1
	wait_for "[ -n \"\$(\"$LAB\" exec server ss -Hltn 'sport = :5201')\" ]" 5 ||
		fail "iperf3 server did not listen"
	json=$(timeout $(($2 + 15)) "$LAB" exec client iperf3 -c "$1" -p 5201 -t "$2" -J) ||
		fail "iperf3 client failed: $(jq -r '.error // empty' <<<"$json")"
	IPERF_BPS=$(jq -er '.end.sum_received.bits_per_second' <<<"$json") ||
		fail "no receiver rate in iperf3's output"
}

median_rtt() { # ADDR
	local rtts
	rtts=$(ping_rtts client "$1" 10)
	[ "$(wc -l <<<"$rtts")" -ge 8 ] || fail "ping $1: fewer than 8 of 10 replies: $rtts"
	median <<<"$rtts"
}

log "plain lab, no delay, no loss"
lab_up LAB_RATE=${RATE_MBIT}mbit
server=$(lab addr server)
server6=$(lab addr6 server)
timeout 10 "$LAB" exec client ping -n -c 3 -i 0.2 -W 2 -q "$server" >/dev/null || fail "IPv4 ping client -> $server"
timeout 10 "$LAB" exec client ping -n -c 3 -i 0.2 -W 2 -q "$server6" >/dev/null || fail "IPv6 ping client -> $server6"
log "ok: server reachable over IPv4 ($server) and IPv6 ($server6)"
base_rtt=$(median_rtt "$server")
base_rtt6=$(median_rtt "$server6")
log "base RTT median: IPv4 $base_rtt ms, IPv6 $base_rtt6 ms"

out=$(lab up 2>&1) && fail "a second 'up' of the same lab succeeded"
[[ $out == *"already exists"* ]] || fail "a second 'up' failed without saying why: $out"
log "ok: a second up is refused: $out"

bottleneck=$(lab iface bottleneck)
overlimits_before=$(qdisc_stat router "$bottleneck" overlimits)
iperf_rate "$server" 3
rate_pct=$(awk -v b="$IPERF_BPS" -v r="$RATE_MBIT" 'BEGIN { printf "%.1f", b / (r * 1e6) * 100 }')
log "iperf3 3 s: $(awk -v b="$IPERF_BPS" 'BEGIN { printf "%.2f", b / 1e6 }') Mbit/s = $rate_pct % of ${RATE_MBIT}mbit"
expect_ge "$rate_pct" 60 "iperf3 rate, % of LAB_RATE"
expect_le "$rate_pct" 105 "iperf3 rate, % of LAB_RATE"
# tbf counts an overlimit each time it holds a packet back: the bottleneck did the limiting.
expect_ge "$(($(qdisc_stat router "$bottleneck" overlimits) - overlimits_before))" 100 "tbf overlimits during the transfer"
lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"

log "plain lab with LAB_DELAY_MS=$DELAY_MS"
lab_up LAB_DELAY_MS=$DELAY_MS
status=$(lab status)
[[ $status == *"delay line: running"* ]] || fail "delay line not running; status: $status"
log "ok: delay line running"
check_added_rtt() { # ADDR BASE_RTT FAMILY
	local rtt added
	rtt=$(median_rtt "$1")
	added=$(awk -v a="$rtt" -v b="$2" 'BEGIN { print a - b }')
	log "$3 RTT median with delay: $rtt ms (+$added ms)"
	# A hard floor (the delay line never releases early) and a broad ceiling for the
	# scheduling of a busy machine.
	expect_ge "$rtt" "$DELAY_MS" "$3 RTT median with LAB_DELAY_MS=$DELAY_MS (ms)"
	expect_le "$added" $((DELAY_MS * 13 / 10 + 3)) "$3 RTT added by LAB_DELAY_MS=$DELAY_MS (ms)"
}
check_added_rtt "$server" "$base_rtt" IPv4
check_added_rtt "$server6" "$base_rtt6" IPv6
lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"

log "plain lab with LAB_LOSS_PCT=$LOSS_PCT"
lab_up LAB_LOSS_PCT=$LOSS_PCT
flood=$(timeout 60 "$LAB" exec client ping -n -q -f -c "$FLOOD_COUNT" -W 1 "$server") || true
transmitted=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$flood")
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$flood")
expect_eq "$transmitted" "$FLOOD_COUNT" "pings transmitted"
loss_pct=$(awk -v t="$transmitted" -v r="$received" 'BEGIN { printf "%.2f", (t - r) / t * 100 }')
log "ping flood: $transmitted sent, $received received, $loss_pct % lost"
expect_ge "$loss_pct" 2.5 "ping loss %"
expect_le "$loss_pct" 8 "ping loss %"
# The program's own count: every lost echo request is one it dropped (replies travel
# server -> client, where there is no loss program).
dropped=$(lab status | sed -n 's/.*loss on .* dropped \([0-9]*\).*/\1/p')
expect_ge "$dropped" $((transmitted - received)) "packets dropped by loss.bpf"
lab set bottleneck loss=0
flood=$(timeout 60 "$LAB" exec client ping -n -q -f -c 500 -W 1 "$server") || true
expect_eq "$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$flood")" 500 "replies after 'set bottleneck loss=0'"
lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"

log "a failing up removes what it made"
out=$(LAB_DELAY_MS=10 LAB_IPTABLES=no-such-iptables timeout 60 "$LAB" up 2>&1) &&
	fail "up with LAB_IPTABLES=no-such-iptables succeeded"
[[ $out == *"no iptables here accepts -j NFQUEUE"* ]] || fail "unexpected error from up: $out"
log "ok: up failed with: $(tail -2 <<<"$out" | paste -sd' ' -)"
_record_lab_netns
leftovers_check "$LAB_PREFIX"
log "PASS"
