#!/usr/bin/env bash
# The lab's router topology (issue 7): two paths with different rates and delays. The
# server is reachable through the default path (1); a packet put on path K's router-side
# interface towards its next hop reaches the server over that path, over IPv4 and IPv6,
# and the answer comes back the same way (so the path's delay is its whole RTT); path K's
# tbf limits a transfer steered onto it; `path K down` blackholes it while the router's
# link stays up, `path K up` restores it; `down` leaves nothing. As a multi-WAN router
# (issue 12): IPv4 is masqueraded on each uplink (conntrack shows the reply addressed
# to the router's address on the path it left by), the server has no IPv4 route back
# to the LAN, and the router's FORWARD chain drops TCP to port 5999.
#
# Steering here uses the router's default route (lab.sh path K default), which puts
# packets on path K's interface with path K's next hop: what reflexd's policy rule does
# per flow for the packets its tc program marks. Bounds are broad (functional, not timing): RTT at
# least the path's delay (the delay line never releases early) and at most 1.3 x + 3 ms,
# rate 60..105 % of the path's rate, and "carried" means at
# least as many packets as pings crossed the path's interface while the other path saw
# fewer than that (only neighbour discovery and MLD chatter).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

PINGS=10
declare -A PATH_DELAY=([1]=10 [2]=30)
declare -A PATH_RATE=([1]=50 [2]=20)

require_bin trace-link
command -v iperf3 >/dev/null || fail "iperf3 missing (scripts/deps.sh)"
command -v ping >/dev/null || fail "ping missing (iputils-ping)"

lab_up LAB_TOPO=router LAB_PATHS=2 \
	LAB_PATH1="rate=${PATH_RATE[1]}mbit delay=${PATH_DELAY[1]}" \
	LAB_PATH2="rate=${PATH_RATE[2]}mbit delay=${PATH_DELAY[2]}"
server=$(lab addr server)
server6=$(lab addr6 server)

expect_eq "$(lab path-args)" \
	"--path path1:$LAB_PREFIX-r1:10.12.1.2,fd00:12:1::2 --path path2:$LAB_PREFIX-r2:10.12.2.2,fd00:12:2::2" \
	"lab.sh path-args"
expect_eq "$(lab paths | awk '{ print $1, $2, $3, $4 }' | paste -sd';' -)" \
	"path1 $LAB_PREFIX-r1 10.12.1.2 fd00:12:1::2;path2 $LAB_PREFIX-r2 10.12.2.2 fd00:12:2::2" "lab.sh paths"

path_ifaces=("$(lab iface path1)" "$(lab iface path2)")

path_counters() { # -> "tx1 rx1 tx2 rx2": packets on the router's path interfaces
	lab exec router ip -s -j link show | jq -er --arg if1 "${path_ifaces[0]}" --arg if2 "${path_ifaces[1]}" '
		[(.[] | select(.ifname == $if1) | .stats64 | .tx.packets, .rx.packets),
		 (.[] | select(.ifname == $if2) | .stats64 | .tx.packets, .rx.packets)] | join(" ")'
}

# Pings ADDR from the client; checks every reply came, that they crossed path K both
# ways and not the other path, and that the RTT is path K's delay.
check_path_carries() { # K ADDR
	local k=$1 addr=$2 other=$((3 - $1)) before after rtts rtt
	local -a b a
	before=$(path_counters)
	rtts=$(ping_rtts client "$addr" "$PINGS")
	after=$(path_counters)
	expect_eq "$(wc -l <<<"$rtts")" "$PINGS" "replies from $addr via path$k"
	read -ra b <<<"$before"
	read -ra a <<<"$after"
	# Index 2(K-1) is tx (towards the server), 2(K-1)+1 rx (answers).
	expect_ge $((a[2 * (k - 1)] - b[2 * (k - 1)])) "$PINGS" "packets out of path$k ($addr)"
	expect_ge $((a[2 * (k - 1) + 1] - b[2 * (k - 1) + 1])) "$PINGS" "packets back through path$k ($addr)"
	expect_le $((a[2 * (other - 1)] - b[2 * (other - 1)])) $((PINGS - 1)) "packets out of path$other ($addr)"
	rtt=$(median <<<"$rtts")
	# The delay line never releases early, so the delay is a hard floor; the ceiling
	# leaves room for a busy machine's scheduling.
	expect_ge "$rtt" "${PATH_DELAY[$k]}" "RTT median via path$k (ms)"
	expect_le "$rtt" "$((PATH_DELAY[$k] * 13 / 10 + 3))" "RTT median via path$k (ms)"
}

log "default route: path 1"
check_path_carries 1 "$server"
check_path_carries 1 "$server6"

log "a multi-WAN router: NAT per uplink, no route back to the LAN, a firewall"
expect_eq "$(lab exec router iptables -t nat -S POSTROUTING | grep -c -- '-j MASQUERADE')" 2 "masquerade rules"
nat_reply=$(lab exec router conntrack -L -p icmp -s "$(lab addr client)" -d "$server" 2>/dev/null |
	grep -oE 'dst=10\.12\.[0-9]+\.1' | head -1)
expect_eq "$nat_reply" "dst=10.12.1.1" "address the server answered the NAT'd ping to"
lab exec server ip route get "$(lab addr client)" >/dev/null 2>&1 && fail "the server has a route back to the LAN"
spawn "$LAB" exec server timeout 30 iperf3 -s -1 -p 5999 >/dev/null 2>&1
wait_for "[ -n \"\$(\"$LAB\" exec server ss -Hltn 'sport = :5999')\" ]" 5 || fail "iperf3 server on 5999 did not listen"
timeout 10 "$LAB" exec client iperf3 -c "$server" -p 5999 -t 1 --connect-timeout 1500 >/dev/null 2>&1 &&
	fail "a connection to the firewalled port 5999 went through"
expect_ge "$(lab exec router iptables -vnxL FORWARD | awk '/dpt:5999/ { print $1 }')" 1 "packets the FORWARD rule dropped"

log "steered onto path 2"
lab path 2 default
check_path_carries 2 "$server"
check_path_carries 2 "$server6"

log "a transfer steered onto path 2 is limited by path 2's tbf"
spawn "$LAB" exec server timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1
wait_for "[ -n \"\$(\"$LAB\" exec server ss -Hltn 'sport = :5201')\" ]" 5 || fail "iperf3 server did not listen"
json=$(timeout 20 "$LAB" exec client iperf3 -c "$server" -p 5201 -t 3 -J) || fail "iperf3 failed: $json"
bps=$(jq -er '.end.sum_received.bits_per_second' <<<"$json") || fail "no rate in iperf3's output"
rate_pct=$(awk -v b="$bps" -v r="${PATH_RATE[2]}" 'BEGIN { printf "%.1f", b / (r * 1e6) * 100 }')
log "iperf3 via path2: $(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e6 }') Mbit/s = $rate_pct % of ${PATH_RATE[2]}mbit"
expect_ge "$rate_pct" 60 "iperf3 rate via path2, % of its rate"
expect_le "$rate_pct" 105 "iperf3 rate via path2, % of its rate"

log "path 2 down: blackholed, router link still up"
lab path 2 down
out=$(timeout 10 "$LAB" exec client ping -n -q -c 3 -i 0.2 -W 1 "$server") && fail "ping through a downed path succeeded: $out"
expect_eq "$(lab exec router ip -j link show dev "$(lab iface path2)" | jq -r '.[0].operstate')" UP "router link to path2"
expect_eq "$(lab paths | awk '$1 == "path2" { print $NF }')" state=down "path2 state"
lab path 2 up
check_path_carries 2 "$server"

log "back to path 1"
lab path 1 default
check_path_carries 1 "$server"

lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"
log "PASS"
