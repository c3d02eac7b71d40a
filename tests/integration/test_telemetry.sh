#!/usr/bin/env bash
# Telemetry against the kernel's own view, on the lab (client - router - tbf - server):
#  - reflexd on the client's cgroup and interface during a 5 s iperf3 upload;
#  - srtt and cwnd of a paced flow in the pinned map vs `ss -ti` of the same socket
#    read just before and just after, at three moments;
#  - tc payload bytes of a saturating flow vs the bytes iperf3 sent (within 5 %);
#  - a second reflexd (tc only) on the router's bottleneck: packets sent and dropped
#    that its windows add up to vs `tc -s qdisc` before and after;
#  - windows in the CSV exactly 100 ms apart;
#  - after SIGTERM nothing is left: no tc filter, no clsact, no pin, no cgroup
#    attachment, no state file.
source "$(dirname "$0")/lib.sh"

# 20 ms of path delay and a 100 KB buffer: the paced flow sees a steady srtt of about
# 20 ms, and the saturating one overflows the buffer, so the qdisc drops packets.
lab_up LAB_BUFFER=100kb LAB_DELAY_MS=20
CLIENT_IF=$(lab iface client)
BOTTLENECK_IF=$(lab iface bottleneck)
CGROUP=$(lab cgroup)
SERVER=$(lab addr server)
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
PIN_ROUTER=/sys/fs/bpf/$LAB_PREFIX-rr
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"

# (A function run in the background is a subshell: daemons are started with nsenter
# itself, so that $! is their pid.)
in_ns() { local node=$1; shift; nsenter --net=/run/netns/"$(lab netns "$node")" "$@"; }

# reflexd on the router first, so its windows cover the whole transfer.
nsenter --net=/run/netns/"$(lab netns router)" "$REFLEX_BIN/reflexd" --iface "$BOTTLENECK_IF" --pin-dir "$PIN_ROUTER" \
	--telemetry-out "$TMP/router.csv" 2>"$TMP/router.log" &
ROUTER_PID=$!
on_exit "kill $ROUTER_PID 2>/dev/null; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN_ROUTER >/dev/null 2>&1"
nsenter --net=/run/netns/"$(lab netns client)" "$REFLEX_BIN/reflexd" --observe --iface "$CLIENT_IF" --cgroup "$CGROUP" --pin-dir "$PIN" \
	--telemetry-out "$TMP/client.csv" 2>"$TMP/client.log" &
CLIENT_PID=$!
on_exit "kill $CLIENT_PID 2>/dev/null; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1"
wait_for "[ -e $PIN/sockops_link ] && [ -e $PIN_ROUTER/tc_flows ]" 10 || fail "reflexd did not attach: $(cat "$TMP"/*.log)"
sleep 0.3
sent_before=$(qdisc_stat router "$BOTTLENECK_IF" packets)
drops_before=$(qdisc_stat router "$BOTTLENECK_IF" drops)

# Phase 1, the kernel's view: a flow paced at 40 % of the bottleneck (SO_MAX_PACING_RATE)
# keeps no queue, so its srtt and cwnd hold still between two reads of `ss -ti`. A
# saturating flow is no fit here: each loss drains the 100 KB queue (16 ms at 50 Mbit/s)
# within a few ms, faster than one read of the map and two of ss.
in_ns server timeout 20 iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
sleep 0.5
lab exec client timeout 20 iperf3 -c "$SERVER" -p 5202 -t 8 --fq-rate 20M -J >"$TMP/iperf-paced.json" &
IPERF_PID=$!

# Three readings mid-transfer (the flow runs 8 s, so a loaded machine that stretches
# the loop still reads a live flow), each the map bracketed by two `ss -ti` of the same
# socket: the map's srtt and cwnd must lie within the range the kernel showed just
# before and just after (widened by 10 %: the map holds the last sample, up to one
# sample interval old).
ss_value() { # file port field(rtt|cwnd): rtt in us
	grep -A1 -E ":$2\b" "$1" | tail -1 | grep -oE "\b$3:[0-9.]+" | cut -d: -f2 |
		awk -v f="$3" '{printf "%d", f == "rtt" ? $1 * 1000 : $1}'
}
in_band() { # value a b: value within [min(a,b) * 0.9, max(a,b) * 1.1]
	awk -v v="$1" -v a="$2" -v b="$3" 'BEGIN { lo = (a < b ? a : b) * 0.9; hi = (a > b ? a : b) * 1.1; exit !(v >= lo && v <= hi) }'
}
range() { # a b -> "min..max"
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%d..%d", (a < b ? a : b), (a > b ? a : b) }'
}
port=
for at in 2 3 4; do
	sleep 1
	in_ns client ss -tin state established "( dport = :5202 )" >"$TMP/ss.before"
	flows=$(in_ns client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN")
	in_ns client ss -tin state established "( dport = :5202 )" >"$TMP/ss.after"
	# iperf3 opens a control and a data connection: the data one has sent the most.
	flow=$(echo "$flows" | jq -c '[.[] | select(.flow | test(":5202$")) | select(.srtt_us != null)] | max_by(.bytes_acked)')
	[ "$flow" != null ] || fail "no TCP flow to :5202 in reflexctl flows: $flows"
	port=$(echo "$flow" | jq -r '.flow' | sed -E 's/^tcp:[^:]+:([0-9]+)-.*/\1/')
	map_srtt=$(echo "$flow" | jq '.srtt_us')
	map_cwnd=$(echo "$flow" | jq '.snd_cwnd')
	rtt_a=$(ss_value "$TMP/ss.before" "$port" rtt) rtt_b=$(ss_value "$TMP/ss.after" "$port" rtt)
	cwnd_a=$(ss_value "$TMP/ss.before" "$port" cwnd) cwnd_b=$(ss_value "$TMP/ss.after" "$port" cwnd)
	[ -n "$rtt_a" ] && [ -n "$rtt_b" ] && [ -n "$cwnd_a" ] && [ -n "$cwnd_b" ] ||
		fail "no ss -ti line for port $port: $(tr '\n' ' ' <"$TMP/ss.before")"
	echo "t=${at}s port $port: srtt map=${map_srtt}us ss=$(range "$rtt_a" "$rtt_b")us, cwnd map=$map_cwnd ss=$(range "$cwnd_a" "$cwnd_b"), map sample age $(echo "$flow" | jq .sample_age_ms) ms"
	in_band "$map_srtt" "$rtt_a" "$rtt_b" || fail "map srtt $map_srtt us outside ss's $(range "$rtt_a" "$rtt_b") us (+-10 %)"
	in_band "$map_cwnd" "$cwnd_a" "$cwnd_b" || fail "map cwnd $map_cwnd outside ss's $(range "$cwnd_a" "$cwnd_b") (+-10 %)"
done
wait "$IPERF_PID" || fail "paced iperf3 failed: $(head -c 500 "$TMP/iperf-paced.json")"

# Each ring costs its size in reflexd's RSS, once: lib/ring_reader.c maps a ring's data
# once where libbpf's consumer maps it twice (the kernel fills a ring's mappings at
# mmap, so each mapping is resident). Two rings (tc, sockops) of the default 4 MiB
# (--ring-kb), and a few pages of the other mmapped maps.
map_kb=$(awk '/^[0-9a-f]+-/ { bpf = ($6 == "anon_inode:bpf-map") } bpf && /^Rss:/ { kb += $2 } END { print kb + 0 }' \
	/proc/"$CLIENT_PID"/smaps)
expect_ge "$map_kb" $((2 * 4096)) "reflexd's RSS in BPF map mappings (KiB): both rings mapped"
expect_le "$map_kb" $((2 * 4096 + 64)) "reflexd's RSS in BPF map mappings (KiB): each ring once"

# Phase 2, the queue: a saturating upload overflows the bottleneck's buffer.
in_ns server timeout 20 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.5
lab exec client timeout 20 iperf3 -c "$SERVER" -p 5201 -t 4 -J >"$TMP/iperf.json" ||
	fail "iperf3 failed: $(head -c 500 "$TMP/iperf.json")"

flows=$(in_ns client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN")
tc_payload=$(echo "$flows" | jq '[.[] | select(.flow | test(":5201$")) | .payload_bytes_out // 0] | max')
iperf_bytes=$(jq '.end.sum_sent.bytes' "$TMP/iperf.json")
echo "payload bytes: tc=$tc_payload iperf3=$iperf_bytes"
expect_within_pct "$tc_payload" "$iperf_bytes" 5

sleep 0.5
sent_after=$(qdisc_stat router "$BOTTLENECK_IF" packets)
drops_after=$(qdisc_stat router "$BOTTLENECK_IF" drops)

kill -TERM "$CLIENT_PID" "$ROUTER_PID"
wait "$CLIENT_PID"; client_rc=$?
wait "$ROUTER_PID"; router_rc=$?
expect_eq "$client_rc" 0 "client reflexd exit code"
expect_eq "$router_rc" 0 "router reflexd exit code"

# Windows every 100 ms exactly (the interface row of each step).
gaps=$(awk -F, 'NR > 1 && $2 == "iface" { if (prev) print $1 - prev; prev = $1 }' "$TMP/client.csv" | sort -u)
expect_eq "$gaps" 100000000 "distinct gaps between windows (ns)"
rows=$(awk -F, 'NR > 1 && $2 == "flow" && $3 ~ /:5201$/ && $8 > 0' "$TMP/client.csv" | wc -l)
expect_ge "$rows" 20 "flow windows with latency_p95 > 0 for the iperf3 flow"

# Windows overlap by half: every other one tiles the run. Their dequeue_rate times the
# 0.2 s span adds up to the packets the qdisc sent; their drops to its drops.
read -r win_sent win_drops < <(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$2 == "iface" && (n++ % 2 == 0) { s += $col["dequeue_rate"] * 0.2; d += $col["drops"] }
	END { printf "%d %d\n", s, d }' "$TMP/router.csv")
echo "bottleneck: qdisc sent $((sent_after - sent_before)) pkts, dropped $((drops_after - drops_before)); windows: $win_sent, $win_drops"
expect_within_pct "$win_sent" "$((sent_after - sent_before))" 5
expect_ge "$((drops_after - drops_before))" 1 "packets the bottleneck dropped (the comparison below needs some)"
expect_eq "$win_drops" "$((drops_after - drops_before))" "drops summed over tiling windows vs tc -s"

# Nothing left behind.
expect_eq "$(in_ns client tc filter show dev "$CLIENT_IF" ingress)$(in_ns client tc filter show dev "$CLIENT_IF" egress)" "" "tc filters left on $CLIENT_IF"
expect_eq "$(in_ns client tc qdisc show dev "$CLIENT_IF" | grep -c clsact)" 0 "clsact left on $CLIENT_IF"
expect_eq "$(in_ns router tc qdisc show dev "$BOTTLENECK_IF" | grep -c clsact)" 0 "clsact left on $BOTTLENECK_IF"
[ ! -e "$PIN" ] || fail "pin dir $PIN left: $(ls "$PIN")"
[ ! -e "$PIN_ROUTER" ] || fail "pin dir $PIN_ROUTER left"
expect_eq "$(bpftool cgroup show "$CGROUP" | grep -c sock_ops)" 0 "sockops attachments left on $CGROUP"
expect_eq "$(ls /run/reflex 2>/dev/null | grep "$LAB_PREFIX" | grep -cv '\.decisions$')" 0 "state files left in /run/reflex"
expect_eq "$(ls /run/reflex 2>/dev/null | grep -c "$LAB_PREFIX")" 0 "files left in /run/reflex (an --observe run logs no decisions)"
log "all checks passed"
