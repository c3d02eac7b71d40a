#!/usr/bin/env bash
# The router caps forwarded TCP flows' windows (issue 17): the lab's router topology with
# one uplink whose bottleneck has a deep buffer both ways (tbf, RATE with BUFFER of
# queue: over a second of it towards the server, and the same on the way back), DELAY_MS
# of base RTT through the path's delay line, IPv4 masqueraded on the uplink and the
# router's FORWARD rule in place. A LAN client runs a cubic upload, then a download
# (iperf3, RUN_S each) with pings to the server (every 50 ms) through the same router:
#
#  A. interleaved in one run (upload: off, on; download: on, off, so that a drift of
#     the machine's load favours neither), "on" being reflexd with
#     `--policy cwnd=heuristic`: ping p95 over the whole transfer (slow start included,
#     before any cap can be decided) with reflexd <= P95_RATIO x without, and
#     throughput >= TPUT_RATIO x without. The p95 after the first WARM_S seconds is
#     logged too.
#  B. while the capped upload runs, the client's `ss -ti` shows its send window
#     (snd_wnd) held at the cap in router_wnd_caps (cap_bytes, rounded down to the
#     server's window scale) and its packets in flight under it; the cap is reflexd's
#     decision (reflexctl flows: cwnd_target x segment = cap_bytes).
#  C. no checksum errors: TcpInCsumErrors (nstat) on the client (which gets the
#     rewritten ACKs of uploads) and the server (downloads) does not grow.
#  D. an upload started before reflexd (its SYN unseen) is decided for but left alone:
#     wnd_no_handshake grows, wnd_rewritten does not.
#  F. an IPv6 upload (routed, not NAT'd): its window held at its cap as in B, keyed
#     as IPv6, and decided for.
#  G. reflexd restarted with the DQN (--policy cwnd=dqn): E's upload is capped at its
#     decisions, held as in B.
#  E. kill -9 reflexd under a capped upload: within the hosts' heartbeat deadline (500
#     ms after the last beat, which came at most a beat period, 100 ms, before the
#     kill: STALE_MAX_MS) the tc program stops rewriting (wnd_stale grows, wnd_rewritten
#     stops) and the client's window grows past the cap;
#     `reflexd --cleanup` then removes everything.
# The decision log names each sender first (a download's far end, an upload's LAN end).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

RATE=30mbit
BUFFER=4mb
DELAY_MS=20
RUN_S=10
WARM_S=2
P95_RATIO=0.3
TPUT_RATIO=0.9
STALE_MAX_MS=600
# enum router_counter (include/reflex_router.h)
CNT_WND_REWRITTEN=15
CNT_WND_NO_HANDSHAKE=16
CNT_WND_STALE=17

require_bin reflexd
require_bin reflexctl
require_bin trace-link
[ -f "$REPO/models/dqn.reflex" ] || fail "models/dqn.reflex is missing (make models)"
for tool in bpftool jq iperf3 ping ss nstat curl; do
	command -v "$tool" >/dev/null || fail "$tool missing"
done

TMP=$(mktemp -d)
on_exit "rm -rf $TMP"
PIN=/sys/fs/bpf/$LAB_PREFIX-rwnd
METRICS_PORT=$((20000 + $$ % 10000))
PATHS_FILE=/run/reflex/$(echo "$PIN" | tr / _).paths

lab_up LAB_TOPO=router LAB_PATHS=1 LAB_PATH1="rate=$RATE delay=$DELAY_MS buffer=$BUFFER"
# The way back gets the same bottleneck, so that a download fills a buffer too.
lab exec path1 tc qdisc replace dev "$LAB_PREFIX-a1" root tbf rate "$RATE" burst 32kb limit "$BUFFER" ||
	fail "cannot shape the download direction"
LAN_IF=$(lab iface router)
SERVER=$(lab addr server)
ROUTER_NS=/run/netns/$(lab netns router)
read -ra PATH_ARGS <<<"$(lab path-args)"

spawn "$LAB" exec server timeout 170 iperf3 -s -p 5201 >/dev/null 2>&1
wait_for "[ -n \"\$(\"$LAB\" exec server ss -Hltn 'sport = :5201')\" ]" 5 || fail "iperf3 server did not listen"

on_exit stop_router_and_clean
start_reflexd() { # [POLICY ARGS...]: --policy cwnd=heuristic without
	local policy=("$@")
	[ ${#policy[@]} -gt 0 ] || policy=(--policy cwnd=heuristic)
	nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexd" --lan "$LAN_IF" "${PATH_ARGS[@]}" --pin-dir "$PIN" \
		"${policy[@]}" --decision-log "$TMP/decisions.jsonl" --metrics-listen "$METRICS_PORT" \
		2>>"$TMP/reflexd.log" &
	REFLEXD_PID=$!
	wait_for "[ -s $PATHS_FILE ] && [ -e $PIN/router_wnd_caps ]" 10 ||
		fail "reflexd did not start: $(cat "$TMP/reflexd.log")"
	log "reflexd $REFLEXD_PID up"
}

counter() { # INDEX: a router_counters entry summed over CPUs
	bpftool -j map dump pinned "$PIN/router_counters" |
		jq -er --argjson k "$1" '.[] | .formatted | select(.key == $k) | [.values[].value] | add'
}

# The upload's cap in bytes (0: none) for the flow from client port PORT.
cap_of() { # PORT DIR(0 up, 1 down)
	bpftool -j map dump pinned "$PIN/router_wnd_caps" |
		jq -r --argjson p "$1" --argjson d "$2" \
			'[.[] | .formatted | select(.key.sport == $p) | .value.cap_bytes[$d]] | .[0] // 0'
}

csum_errors() { # NODE
	lab exec "$1" nstat -asz TcpInCsumErrors | awk '$1 == "TcpInCsumErrors" { print $2 }'
}

# The local port of the running upload's data connection: the one with the most
# unsent bytes (iperf3's control connection has none).
data_port() {
	lab exec client ss -Htn state established "( dport = :5201 )" | sort -k2,2nr | awk 'NR == 1 && $2 > 0 { print $3 }' |
		sed 's/.*://'
}

# One transfer (up or down) with pings; writes TMP/NAME.{json,ping}.
transfer() { # NAME up|down
	local name=$1 dir=$2 args=() ping_pid
	[ "$dir" = down ] && args=(-R)
	lab exec client ping -n -i 0.05 -w "$RUN_S" "$SERVER" >"$TMP/$name.ping" 2>&1 &
	ping_pid=$!
	timeout $((RUN_S + 15)) "$LAB" exec client iperf3 -c "$SERVER" -p 5201 -t "$RUN_S" -J "${args[@]}" \
		>"$TMP/$name.json" 2>&1 || fail "iperf3 $name failed: $(cat "$TMP/$name.json")"
	wait "$ping_pid"
}

# p95 of the whole run's pings; with "warm", of those after the first WARM_S seconds.
ping_p95() { # NAME [warm]
	local skip=0
	[ "${2:-}" = warm ] && skip=$((WARM_S * 20))
	sed -n 's/.*icmp_seq=\([0-9]*\) .* time=\([0-9.]*\) ms.*/\1 \2/p' "$TMP/$1.ping" |
		awk -v s="$skip" '$1 > s { print $2 }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; i = int(NR * 0.95 + 0.999); if (i > NR) i = NR; print v[i] }'
}

tput_mbps() { # NAME
	jq -er '.end.sum_received.bits_per_second / 1e6' "$TMP/$1.json"
}

# B: the client's send window against the cap, while the capped upload runs.
check_window_held() {
	local port cap_before cap_after line snd_wnd wscale unacked mss try
	port=$(data_port)
	[ -n "$port" ] || fail "no upload connection on the client"
	for try in 1 2 3; do
		cap_before=$(cap_of "$port" 0)
		line=$(lab exec client ss -tin state established "( sport = :$port )" | tail -1)
		cap_after=$(cap_of "$port" 0)
		snd_wnd=$(grep -oE '\bsnd_wnd:[0-9]+' <<<"$line" | cut -d: -f2)
		wscale=$(grep -oE '\bwscale:[0-9]+' <<<"$line" | cut -d: -f2)
		unacked=$(grep -oE '\bunacked:[0-9]+' <<<"$line" | cut -d: -f2)
		mss=$(grep -oE '\bmss:[0-9]+' <<<"$line" | cut -d: -f2)
		[ "$cap_before" -gt 0 ] && [ "$cap_before" = "$cap_after" ] && [ -n "$snd_wnd" ] && break
		sleep 0.3
	done
	log "upload :$port: cap_bytes $cap_after, ss snd_wnd ${snd_wnd:-?} (wscale ${wscale:-?}) unacked ${unacked:-0} x mss $mss"
	expect_ge "$cap_after" 1 "the upload's cap in router_wnd_caps"
	[ -n "$snd_wnd" ] || fail "ss -ti shows no snd_wnd: $line"
	expect_le "$snd_wnd" "$cap_after" "the client's send window vs the cap"
	expect_ge "$snd_wnd" $((cap_after - (1 << wscale))) "the client's send window vs the cap less one window unit"
	expect_le $((${unacked:-0} * mss)) $((cap_after + mss)) "bytes in flight vs the cap"
	# The cap is the decision: cwnd_target x the segment size.
	jq -e --arg p ":$port-" '[.[] | select(.dir == "up" and (.flow | contains($p)))][0] |
		.cap_bytes > 0 and .cwnd_target > 0 and .cap_bytes % .cwnd_target == 0' \
		< <(nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN") >/dev/null ||
		fail "reflexctl flows does not show the upload's cap as cwnd_target x segment"
	nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexctl" flows --pin-dir "$PIN" | sed 's/^/   /'
	CAPPED_PORT=$port
	CAPPED_CAP=$cap_after
}

csum_client0=$(csum_errors client)
csum_server0=$(csum_errors server)

log "A: upload without reflexd"
transfer up_off up
log "A: upload with reflexd"
start_reflexd
# B, from the side while the upload runs (a subshell: its fail ends only itself).
(
	sleep $((RUN_S - 3))
	(check_window_held)
	echo $? >"$TMP/window.rc"
) >"$TMP/window.log" 2>&1 &
window_pid=$!
transfer up_on up
wait "$window_pid"
cat "$TMP/window.log"
[ "$(cat "$TMP/window.rc" 2>/dev/null)" = 0 ] || fail "B: the upload's window was not held at its cap"
log "A: download with reflexd"
transfer down_on down
down_cap=$(nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" |
	jq '[.[] | select(.dir == "down") | .cap_bytes] | max // 0')
rewritten_on=$(counter $CNT_WND_REWRITTEN)
# /metrics exports the router's counters by their names (the view is a second old).
metrics_rewritten=$(nsenter --net="$ROUTER_NS" curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
	awk '$1 == "reflex_router_bpf_events_total{counter=\"wnd_rewritten\"}" { print $2 }')
stop_reflexd
log "A: download without reflexd"
transfer down_off down

for name in up_off up_on down_on down_off; do
	log "$name: $(printf '%.1f' "$(tput_mbps "$name")") Mbit/s, ping p95 $(ping_p95 "$name") ms (after ${WARM_S} s: $(ping_p95 "$name" warm) ms), median $(sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$TMP/$name.ping" | median) ms"
done
expect_ge "$rewritten_on" 1 "ACKs whose window the router lowered"
expect_ge "${metrics_rewritten:-0}" 1 "wnd_rewritten on /metrics"
expect_ge "$down_cap" 1 "the largest cap a download got"
# The decision log names each sender first: a download's is the far end.
expect_ge "$(grep -c "\"flow\": \"tcp:$SERVER:5201-" "$TMP/decisions.jsonl")" 1 "decisions for downloads' far ends"
expect_ge "$(grep -c "\"flow\": \"tcp:$(lab addr client):[0-9]*-$SERVER:5201\"" "$TMP/decisions.jsonl")" 1 \
	"decisions for uploads' LAN ends"
for dir in up down; do
	p95_on=$(ping_p95 "${dir}_on")
	p95_off=$(ping_p95 "${dir}_off")
	expect_le "$p95_on" "$(awk -v o="$p95_off" -v r="$P95_RATIO" 'BEGIN { print o * r }')" \
		"$dir: ping p95 with reflexd (ms) vs $P95_RATIO x without ($p95_off ms)"
	expect_ge "$(tput_mbps "${dir}_on")" "$(awk -v o="$(tput_mbps "${dir}_off")" -v r="$TPUT_RATIO" 'BEGIN { print o * r }')" \
		"$dir: throughput with reflexd (Mbit/s) vs $TPUT_RATIO x without"
done

log "D: an upload whose SYN the router did not see is left alone"
timeout 30 "$LAB" exec client iperf3 -c "$SERVER" -p 5201 -t 14 >/dev/null 2>&1 &
early_pid=$!
wait_for "[ -n \"\$(data_port)\" ]" 5 || fail "the early upload did not start"
early_port=$(data_port)
sleep 1
start_reflexd
wait_for "[ \$(cap_of $early_port 0) -gt 0 ]" 8 || fail "reflexd decided no cap for the early upload"
rewritten0=$(counter $CNT_WND_REWRITTEN)
no_handshake0=$(counter $CNT_WND_NO_HANDSHAKE)
sleep 2
expect_eq "$(counter $CNT_WND_REWRITTEN)" "$rewritten0" "wnd_rewritten while only the early upload runs"
expect_ge "$(counter $CNT_WND_NO_HANDSHAKE)" $((no_handshake0 + 10)) "wnd_no_handshake while it runs"
wait "$early_pid"

log "F: an IPv6 upload (routed, not NAT'd) is capped the same way"
SERVER6=$(lab addr6 server)
rewritten_v6_0=$(counter $CNT_WND_REWRITTEN)
timeout 30 "$LAB" exec client iperf3 -6 -c "$SERVER6" -p 5201 -t 10 >/dev/null 2>&1 &
v6_pid=$!
sleep 6
check_window_held
expect_ge "$(lab exec client ss -Htn6 state established "( sport = :$CAPPED_PORT )" | wc -l)" 1 \
	"the capped upload is the IPv6 one"
# router_wnd_caps keys an IPv6 flow by its own family (AF_INET6 = 10).
expect_eq "$(bpftool -j map dump pinned "$PIN/router_wnd_caps" |
	jq --argjson p "$CAPPED_PORT" '[.[] | .formatted | select(.key.sport == $p) | .key.family][0]')" 10 \
	"the family of the IPv6 upload's key"
expect_ge "$(counter $CNT_WND_REWRITTEN)" $((rewritten_v6_0 + 1)) "ACKs whose window the router lowered, IPv6"
expect_ge "$(grep -c "\"flow\": \"tcp:\[$(lab addr6 client)\]:$CAPPED_PORT-\[$SERVER6\]:5201\"" "$TMP/decisions.jsonl")" 1 \
	"decisions for the IPv6 upload's LAN end"
wait "$v6_pid"

log "G: the DQN decides a router's caps"
stop_reflexd
start_reflexd --policy cwnd=dqn --model dqn="$REPO/models/dqn.reflex"
grep -q "dqn model $REPO/models/dqn.reflex loaded" "$TMP/reflexd.log" ||
	fail "dqn model not loaded: $(cat "$TMP/reflexd.log")"

log "E: kill -9 under a capped upload (the DQN's)"
timeout 30 "$LAB" exec client iperf3 -c "$SERVER" -p 5201 -t 14 >/dev/null 2>&1 &
late_pid=$!
sleep 5
check_window_held
expect_ge "$(grep -c "\"flow\": \"tcp:$(lab addr client):$CAPPED_PORT-$SERVER:5201\".*\"model\": \"dqn\"" \
	"$TMP/decisions.jsonl")" 1 "the DQN's decisions for that upload"
stale0=$(counter $CNT_WND_STALE)
kill -9 "$REFLEXD_PID"
killed_at=${EPOCHREALTIME/./}
wait "$REFLEXD_PID" 2>/dev/null
REFLEXD_PID=
# Poll as fast as bpftool goes: the first ACK left alone fell between the start of the
# last poll that saw none and the end of the first that saw one.
before_ms=0
while :; do
	poll_ms=$(((${EPOCHREALTIME/./} - killed_at) / 1000))
	[ "$(counter $CNT_WND_STALE)" -gt "$stale0" ] && break
	before_ms=$poll_ms
	[ "$poll_ms" -lt 3000 ] || fail "wnd_stale did not grow within 3 s of kill -9"
done
after_ms=$(((${EPOCHREALTIME/./} - killed_at) / 1000))
log "windows left alone between $before_ms and $after_ms ms after kill -9"
expect_le "$before_ms" "$STALE_MAX_MS" "ms after kill -9 with no ACK left alone yet"
rewritten1=$(counter $CNT_WND_REWRITTEN)
snd_wnd_of() {
	lab exec client ss -tin state established "( sport = :$CAPPED_PORT )" | grep -oE '\bsnd_wnd:[0-9]+' | cut -d: -f2
}
wait_for "[ \"\$(snd_wnd_of)\" -gt $CAPPED_CAP ]" 2 || fail "the client's window did not grow past the cap $CAPPED_CAP"
expect_ge "$(snd_wnd_of)" $((CAPPED_CAP + 1)) "the client's send window after kill -9 vs the cap"
expect_eq "$(counter $CNT_WND_REWRITTEN)" "$rewritten1" "wnd_rewritten after the heartbeat went stale"
kill "$late_pid" 2>/dev/null
wait "$late_pid"
nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexd" --lan "$LAN_IF" --pin-dir "$PIN" --cleanup 2>>"$TMP/reflexd.log" ||
	fail "reflexd --cleanup failed: $(cat "$TMP/reflexd.log")"
[ ! -e "$PIN" ] || fail "--cleanup left pins: $(ls "$PIN")"
[ -z "$(nsenter --net="$ROUTER_NS" tc filter show dev "$LAN_IF" egress)" ] || fail "--cleanup left a tc filter"

log "C: no checksum errors"
expect_eq "$(csum_errors client)" "$csum_client0" "TcpInCsumErrors on the client"
expect_eq "$(csum_errors server)" "$csum_server0" "TcpInCsumErrors on the server"

lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"
log "PASS"
