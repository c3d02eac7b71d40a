#!/usr/bin/env bash
# The edge router (issues 7, 12) on the lab's router topology as a multi-WAN router:
# client -- router -- path1/path2 -- server, the router masquerading IPv4 on each
# uplink, a FORWARD rule dropping TCP to port 5999, the server without a route back
# to the LAN; reflexd on the router with --lan and one --path per uplink.
#
#  A. bulk: path1 fast (50 Mbit/s, 10 ms), path2 slow (10 Mbit/s, 40 ms); 8 bulk flows
#     one after the other (TCP to port 873, class bulk by port). The first two try each
#     path once (untried paths first); of the 6 after them at least 5 go to path1.
#  B. VoIP: path1 lossy (10 % loss, 10 ms), path2 clean but slower (10 Mbit/s, 40 ms);
#     6 VoIP-like calls (TCP to port 5060, class voip by port: 160 bytes every 20 ms
#     both ways); of the 4 after the two tries at least 3 go to path2. Then the RTT the
#     router measures passively (TCP timestamps) against `ss -ti` on the client.
#  C. a path fails: a bulk flow on path1, then `lab.sh path 1 down` (both directions
#     blackholed, link up): reflexd marks path1 unavailable within 3 s (dead_after 1 s +
#     a 100 ms path tick + scheduling on a busy 2-core machine); the NAT'd flow keeps
#     its path (it cannot move: its NAT binding is path1's address) and the next flow
#     goes to path2 and completes.
#  D. IPv6 (not NAT'd): the router's own default route goes via path2; two bulk flows to
#     the server's IPv6 address go to path1 then path2 (untried paths first), each keyed
#     as IPv6 in the map and carried by its decided path.
#  E. the firewall still holds: steered flows to port 5999, IPv4 and IPv6, are placed
#     and marked (a decision exists) and dropped by the FORWARD rule; the same flows to
#     port 873 connected above. What the firewall dropped is not counted as sent onto
#     a path (unanswered, it would fail the path as dead).
#  F. after a clean stop, after kill -9 + `reflexd --cleanup`, and after kill -9 + the
#     next start, nothing of reflexd's is left: no ip rule (IPv4, IPv6), no route in any
#     table, no tc filter, no pin, no state file. SIGHUP reloads the classes file,
#     SIGUSR1 changes nothing, SIGUSR2 stops it cleanly.
# Every flow must complete. Each flow's path is read from the live decision map
# (bpftool, key by the client's port) while it runs, and where its bytes went from the
# per-path counters (router_path_stats): the decided path must carry >= 90 % of the
# bytes sent onto the paths during the flow; conntrack must show an IPv4 flow NAT'd to
# the router's address on its decided path.
# Bandit modes: A and B run `--bandit discounted` (c 0.2, the variant for changing
# links): ucb1's sqrt(2) explores each worse path for ~32 ln(N) rewards at these gaps,
# longer than this test may take; C runs the default ucb1.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

require_bin reflexd
require_bin reflexctl
require_bin trace-link
for tool in bpftool jq perl ss conntrack; do
	command -v "$tool" >/dev/null || fail "$tool missing"
done

TMP=$(mktemp -d)
on_exit "rm -rf $TMP"
PIN=/sys/fs/bpf/$LAB_PREFIX-router
PATHS_FILE=/run/reflex/$(echo "$PIN" | tr / _).paths
STATE_FILE=/run/reflex/$(echo "$PIN" | tr / _).router-state

# The test's own endpoints: iperf3's control connection would be a flow of its own
# and the herding rule would spread the pair over both paths.
cat >"$TMP/traffic.pl" <<'EOF'
use strict; use warnings;
use IO::Socket::IP; use IO::Select; use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);
$| = 1;
my $mode = shift // die "mode?\n";
if ($mode eq 'sink' || $mode eq 'echo') {
	my $l = IO::Socket::IP->new(LocalHost => '::', LocalPort => shift, Listen => 64, ReuseAddr => 1, V6Only => 0)
		or die "listen: $!\n";
	my $sel = IO::Select->new($l);
	my $buf;
	while (1) {
		for my $s ($sel->can_read(1)) {
			if ($s == $l) { my $c = $l->accept; $sel->add($c) if $c; next }
			my $n = sysread($s, $buf, 65536);
			if (!$n) { $sel->remove($s); close $s; next }
			if ($mode eq 'echo') { setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1); syswrite($s, $buf) }
		}
	}
}
my ($host, $port, $secs) = @ARGV;
my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port, Timeout => 5) or die "connect: $!\n";
print "port ", $s->sockport, "\n";
my ($sent, $end) = (0, time + $secs);
if ($mode eq 'bulk') {
	my $b = 'x' x 65536;
	while (time < $end) { my $n = syswrite($s, $b); defined $n or die "write: $!\n"; $sent += $n }
} elsif ($mode eq 'voip') {
	setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
	my ($b, $buf, $next) = ('v' x 160, '', time);
	while (time < $end) {
		my $n = syswrite($s, $b); defined $n or die "write: $!\n"; $sent += $n;
		$next += 0.02;
		while ((my $wait = $next - time) > 0) {
			last unless IO::Select->new($s)->can_read($wait);
			sysread($s, $buf, 65536) or die "echo closed\n";
		}
	}
} else { die "unknown mode $mode\n" }
shutdown($s, 1);
1 while sysread($s, my $rest, 65536);
print "sent $sent\n";
EOF

lab_up LAB_TOPO=router LAB_PATHS=2 LAB_PATH1="rate=50mbit delay=10" LAB_PATH2="rate=10mbit delay=40"
LAN_IF=$(lab iface router)
SERVER=$(lab addr server)
read -ra PATH_ARGS <<<"$(lab path-args)"

spawn "$LAB" exec server timeout 170 perl "$TMP/traffic.pl" sink 873
spawn "$LAB" exec server timeout 170 perl "$TMP/traffic.pl" echo 5060
spawn "$LAB" exec server timeout 170 perl "$TMP/traffic.pl" sink 5999
wait_for "[ \$(\"$LAB\" exec server ss -Hltn '( sport = :873 or sport = :5060 or sport = :5999 )' | wc -l) -ge 3 ]" 5 ||
	fail "the test servers did not listen"

ROUTER_NS=/run/netns/$(lab netns router)
on_exit stop_router_and_clean
start_reflexd() { # BANDIT_MODE [OPTION...]
	# nsenter itself (not lab exec) so that $! is reflexd and bpffs stays the host's.
	nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexd" --lan "$LAN_IF" "${PATH_ARGS[@]}" \
		--pin-dir "$PIN" --bandit "$@" 2>>"$TMP/reflexd.log" &
	REFLEXD_PID=$!
	wait_for "[ -s $PATHS_FILE ] && [ -e $PIN/router_decisions ]" 10 ||
		fail "reflexd did not start: $(cat "$TMP/reflexd.log")"
	log "reflexd $REFLEXD_PID up (--bandit $*)"
}

# What reflexd adds to routing (rules, routes in its tables), tc filters on the LAN
# side, pins and state: empty when nothing of it is left.
reflexd_leftovers() {
	local dir
	nsenter --net="$ROUTER_NS" ip -4 rule | grep -E '^2107[4-7]:' | sed 's/^/ip rule: /'
	nsenter --net="$ROUTER_NS" ip -6 rule | grep -E '^2107[4-7]:' | sed 's/^/ip -6 rule: /'
	nsenter --net="$ROUTER_NS" ip -4 route show table all | grep -E 'table 2107[4-7]|proto 82' | sed 's/^/route: /'
	nsenter --net="$ROUTER_NS" ip -6 route show table all | grep -E 'table 2107[4-7]|proto 82' | sed 's/^/route6: /'
	for dev in "$LAN_IF" "$(lab iface path1)" "$(lab iface path2)"; do
		for dir in ingress egress; do
			nsenter --net="$ROUTER_NS" tc filter show dev "$dev" "$dir" 2>/dev/null | sed "s/^/tc $dev $dir: /"
		done
	done
	[ ! -e "$PIN" ] || echo "pins: $(ls "$PIN")"
	[ ! -e "$STATE_FILE" ] || echo "state file $STATE_FILE"
	[ ! -e "$PATHS_FILE" ] || echo "paths file $PATHS_FILE"
}

# The address an IPv4 flow from client port PORT was NAT'd to (conntrack's reply dst).
nat_address() { # PORT
	nsenter --net="$ROUTER_NS" conntrack -L -p tcp --orig-port-src "$1" 2>/dev/null |
		grep -oE 'dst=[0-9.]+' | sed -n 2p | cut -d= -f2
}

restart_reflexd() { # BANDIT_MODE
	stop_reflexd
	wait_for "[ ! -e $PIN ] && [ ! -e $PATHS_FILE ]" 5 || fail "reflexd left $PIN or $PATHS_FILE behind"
	start_reflexd "$1"
}

# One counter of router_path_stats for path K (1-based), summed over CPUs.
path_stat() { # K FIELD
	bpftool -j map dump pinned "$PIN/router_path_stats" |
		jq -er --argjson k "$(($1 - 1))" --arg f "$2" '.[] | .formatted | select(.key == $k) | [.values[].value[$f]] | add'
}

# "tx1 tx2 rx1 rx2": bytes onto and back from each path.
path_bytes() {
	echo "$(path_stat 1 tx_bytes) $(path_stat 2 tx_bytes) $(path_stat 1 rx_bytes) $(path_stat 2 rx_bytes)"
}

# Packets the lab's loss program dropped on path K's link into the server.
lab_dropped() { # K
	bpftool -j map dump pinned "/sys/fs/bpf/$LAB_PREFIX-lab/loss-path$1/loss_counters" |
		jq -er '[.[0].formatted.values[].value.dropped] | add'
}

# The decided path (1-based) of the flow from client port PORT, empty if none.
decided_path() { # PORT
	bpftool -j map dump pinned "$PIN/router_decisions" |
		jq -r --argjson port "$1" '.[] | select(.formatted.key.sport == $port) | .formatted.value.path + 1'
}

# The address family (2 = AF_INET, 10 = AF_INET6) of the decision for that flow.
decided_family() { # PORT
	bpftool -j map dump pinned "$PIN/router_decisions" |
		jq -r --argjson port "$1" '.[] | select(.formatted.key.sport == $port) | .formatted.key.family'
}

FLOW_PATHS=() FLOW_FAMILIES=()
# Runs one flow from the client and checks that its bytes went where the map put it.
run_flow() { # MODE PORT SECONDS [HOST]
	local mode=$1 port=$2 secs=$3 host=${4:-$SERVER} out=$TMP/flow.out cport path family pid before after
	local -a b a
	before=$(path_bytes)
	"$LAB" exec client timeout $((secs + 15)) perl "$TMP/traffic.pl" "$mode" "$host" "$port" "$secs" >"$out" 2>&1 &
	pid=$!
	wait_for "grep -q '^port ' $out" 5 || fail "$mode flow did not connect: $(cat "$out")"
	cport=$(awk '/^port /{ print $2 }' "$out")
	wait_for "[ -n \"\$(decided_path $cport)\" ]" 3 || fail "no decision for the $mode flow from port $cport"
	path=$(decided_path "$cport")
	family=$(decided_family "$cport")
	wait "$pid" || fail "$mode flow from port $cport failed: $(cat "$out")"
	grep -q '^sent ' "$out" || fail "$mode flow from port $cport did not finish: $(cat "$out")"
	[ "$family" != 2 ] || expect_eq "$(nat_address "$cport")" "10.12.$path.1" \
		"conntrack: the $mode flow from port $cport NAT'd to path$path's address"
	after=$(path_bytes)
	read -ra b <<<"$before"
	read -ra a <<<"$after"
	local d1=$((a[0] - b[0])) d2=$((a[1] - b[1]))
	local on=$(((path == 1) ? d1 : d2))
	log "$mode flow :$cport -> path$path; bytes onto path1 $d1, path2 $d2"
	expect_ge "$(awk -v on="$on" -v all="$((d1 + d2))" 'BEGIN { printf "%.3f", all ? on / all : 0 }')" 0.9 \
		"share of the $mode flow's bytes on its decided path$path"
	FLOW_PATHS+=("$path")
	FLOW_FAMILIES+=("$family")
}

# How many of FLOW_PATHS from index FROM on are path K.
count_on() { # K FROM
	local k=$1 i n=0
	for ((i = $2; i < ${#FLOW_PATHS[@]}; i++)); do
		[ "${FLOW_PATHS[i]}" = "$k" ] && n=$((n + 1))
	done
	echo "$n"
}

# The paths' metrics and CLASS's arms as reflexctl paths prints them, for the log.
show_table() { # CLASS
	"$REFLEX_BIN/reflexctl" paths --pin-dir "$PIN" | grep -E "^(PATH +AVAILABLE|CLASS|path[0-9] +(yes|no) |$1 )" |
		sed 's/^/   /'
}

arm() { # CLASS PATH FIELD: from reflexctl paths --json
	"$REFLEX_BIN/reflexctl" paths --json --pin-dir "$PIN" |
		jq -er --arg c "$1" --arg p "$2" --arg f "$3" '.bandit.classes[] | select(.class == $c) | .arms[] | select(.path == $p) | .[$f]'
}

log "A. bulk flows: path1 fast, path2 slow"
start_reflexd discounted
FLOW_PATHS=()
for i in 1 2 3 4 5 6 7 8; do run_flow bulk 873 2; done
log "bulk flows went to: ${FLOW_PATHS[*]}"
show_table bulk
expect_ge "$(count_on 1 2)" 5 "bulk flows 3..8 on path1 (of 6)"
m1=$(arm bulk path1 mean_reward)
m2=$(arm bulk path2 mean_reward)
expect_ge "$(awk -v a="$m1" -v b="$m2" 'BEGIN { print a - b }')" 0 "bulk mean reward path1 - path2 ($m1 vs $m2)"
read -ra totals <<<"$(path_bytes)"
expect_ge "${totals[0]}" $((3 * totals[1])) "bytes onto path1 vs 3 x path2 (${totals[1]})"
"$REFLEX_BIN/reflexctl" paths --pin-dir "$PIN" >"$TMP/paths.txt" || fail "reflexctl paths failed"
grep -qE '^bulk +path1 ' "$TMP/paths.txt" || fail "reflexctl paths has no bulk/path1 row: $(cat "$TMP/paths.txt")"

log "B. VoIP-like flows: path1 lossy, path2 clean but slower"
lab set path1 loss=10
restart_reflexd discounted
dropped_before=$(lab_dropped 1)
FLOW_PATHS=()
for i in 1 2 3 4 5 6; do run_flow voip 5060 3; done
dropped=$(($(lab_dropped 1) - dropped_before))
retrans=$(path_stat 1 retrans_packets)
log "VoIP flows went to: ${FLOW_PATHS[*]}"
show_table voip
grep -E 'unavailable|trying' "$TMP/reflexd.log" | sed 's/^/   /'
expect_ge "$(count_on 2 2)" 3 "VoIP flows 3..6 on path2 (of 4)"
m1=$(arm voip path1 mean_reward)
m2=$(arm voip path2 mean_reward)
expect_ge "$(awk -v a="$m2" -v b="$m1" 'BEGIN { print a - b }')" 0 "voip mean reward path2 - path1 ($m2 vs $m1)"
# Each lost data segment comes again (a lost pure ACK does not; a tail-loss probe may
# come once too often): the sequence regressions the router counted on path1 against
# what the lab dropped there.
log "path1: the lab dropped $dropped packets, the router counted $retrans retransmissions"
expect_ge "$dropped" 1 "packets dropped on path1"
expect_within_pct "$retrans" "$dropped" 50 "retransmissions counted on path1 vs packets dropped there"

log "RTT: router's passive measurement vs ss -ti on the client (one call, five readings)"
out=$TMP/rtt.out
"$LAB" exec client timeout 30 perl "$TMP/traffic.pl" voip "$SERVER" 5060 25 >"$out" 2>&1 &
rtt_pid=$!
wait_for "grep -q '^port ' $out" 5 || fail "RTT call did not connect: $(cat "$out")"
cport=$(awk '/^port /{ print $2 }' "$out")
errs=()
for at in 1 2 3 4 5; do
	sleep 1
	ss_rtt_us=$("$LAB" exec client ss -Htin "( sport = :$cport )" | grep -oE '\brtt:[0-9.]+' | head -1 |
		cut -d: -f2 | awk '{ printf "%d", $1 * 1000 }')
	router_rtt_us=$("$REFLEX_BIN/reflexctl" paths --json --pin-dir "$PIN" |
		jq -er --arg p ":$cport-" '.flows[] | select(.flow | contains($p)) | .rtt_us | floor')
	[ -n "$ss_rtt_us" ] && [ -n "$router_rtt_us" ] || fail "no RTT reading for port $cport (ss '$ss_rtt_us', router '$router_rtt_us')"
	log "reading $at: router ${router_rtt_us} us, ss ${ss_rtt_us} us"
	errs+=("$(awk -v a="$router_rtt_us" -v b="$ss_rtt_us" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.4f", d / b }')")
done
# The call has run long enough (it is long so that slow readings never outlast it).
"$LAB" exec client ss -K -Htn "( sport = :$cport )" >/dev/null
wait "$rtt_pid" 2>/dev/null
# Both measure the same echo delay; they differ by the LAN hop, by what ss's srtt and
# the router's EWMA have seen of the delay line's jitter, and by the reading times.
expect_le "$(printf '%s\n' "${errs[@]}" | median)" 0.2 "median |router RTT - ss RTT| / ss RTT"

log "C. path1 fails under a NAT'd bulk flow: the flow stays, new flows go to path2"
lab set path1 loss=0
restart_reflexd ucb1
out=$TMP/failover.out
"$LAB" exec client timeout 30 perl "$TMP/traffic.pl" bulk "$SERVER" 873 20 >"$out" 2>&1 &
flow_pid=$!
on_exit "kill $flow_pid 2>/dev/null || true"
wait_for "grep -q '^port ' $out" 5 || fail "bulk flow did not connect: $(cat "$out")"
cport=$(awk '/^port /{ print $2 }' "$out")
wait_for "[ -n \"\$(decided_path $cport)\" ]" 3 || fail "no decision for port $cport"
expect_eq "$(decided_path "$cport")" 1 "the first flow's path (untried paths first, lowest index)"
sleep 2
down_at=${EPOCHREALTIME/./}
lab path 1 down
wait_for "grep -q 'path path1 unavailable' $TMP/reflexd.log" 10 ||
	fail "path1 was not marked unavailable: $(tail -5 "$TMP/reflexd.log")"
failed_at=${EPOCHREALTIME/./}
failure_ms=$(((failed_at - down_at) / 1000))
log "path1 found dead after $failure_ms ms: $(grep 'path path1 unavailable' "$TMP/reflexd.log" | tail -1)"
expect_le "$failure_ms" 3000 "time to mark path1 unavailable (ms)"
expect_eq "$(decided_path "$cport")" 1 "the NAT'd flow's path after path1 failed"
expect_eq "$(nat_address "$cport")" 10.12.1.1 "its NAT binding"
FLOW_PATHS=()
run_flow bulk 873 2
expect_eq "${FLOW_PATHS[*]}" 2 "path of the flow opened after path1 failed"
# The stranded flow goes for good (its socket destroyed, nothing more sent), so that
# the next reflexd does not adopt it.
lab exec client ss -K -Htn "( sport = :$cport )" >/dev/null
wait "$flow_pid" 2>/dev/null
lab path 1 up

log "D. IPv6: steered against the router's default route"
lab path 2 default
restart_reflexd ucb1
FLOW_PATHS=() FLOW_FAMILIES=()
for i in 1 2; do run_flow bulk 873 2 "$(lab addr6 server)"; done
expect_eq "${FLOW_PATHS[*]}" "1 2" "paths of the two IPv6 flows (untried paths first)"
expect_eq "${FLOW_FAMILIES[*]}" "10 10" "address families of their decisions (AF_INET6)"
lab path 1 default

log "E. the firewall still drops steered flows (port 5999), IPv4 and IPv6"
fw_drops() { # IPTABLES
	nsenter --net="$ROUTER_NS" "$1" -vnxL FORWARD | awk '/dpt:5999/ { print $1 }'
}
sent_both() { echo $(($(path_stat 1 sent_packets) + $(path_stat 2 sent_packets))); }
sent_before=$(sent_both)
for fw in "iptables $SERVER" "ip6tables $(lab addr6 server)"; do
	read -r ipt host <<<"$fw"
	before=$(fw_drops "$ipt")
	timeout 10 "$LAB" exec client perl "$TMP/traffic.pl" bulk "$host" 5999 1 >"$TMP/fw.out" 2>&1 &&
		fail "a flow to the firewalled port 5999 of $host went through: $(cat "$TMP/fw.out")"
	steered=$(bpftool -j map dump pinned "$PIN/router_decisions" |
		jq -r --argjson f "$([ "$ipt" = iptables ] && echo 2 || echo 10)" \
			'[.[] | select(.formatted.key.dport == 5999 and .formatted.key.family == $f)] | length')
	expect_ge "$steered" 1 "decisions (steered flows) to port 5999 of $host"
	expect_ge $(($(fw_drops "$ipt") - before)) 3 "SYNs to $host:5999 the FORWARD rule dropped ($ipt)"
done
# What the firewall dropped never left: it is no unanswered traffic of a path (which
# would fail the path as dead). At most a straggler of the flows before.
expect_le $(($(sent_both) - sent_before)) 2 "packets counted as sent onto the paths while the firewall dropped the SYNs"

log "F. a clean stop leaves nothing"
stop_reflexd
wait_for "[ -z \"\$(reflexd_leftovers)\" ]" 5 || fail "left behind after a stop: $(reflexd_leftovers)"

log "F. kill -9, then reflexd --cleanup"
start_reflexd ucb1
expect_ge "$(nsenter --net="$ROUTER_NS" ip -6 rule | grep -c '^2107[45]:')" 2 "IPv6 rules while it runs"
kill -9 "$REFLEXD_PID"
wait "$REFLEXD_PID" 2>/dev/null
REFLEXD_PID=
expect_ge "$(reflexd_leftovers | grep -c '^ip rule')" 2 "rules a killed reflexd left"
nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexd" --lan "$LAN_IF" --pin-dir "$PIN" --cleanup 2>>"$TMP/reflexd.log" ||
	fail "reflexd --cleanup failed: $(tail -2 "$TMP/reflexd.log")"
leftover=$(reflexd_leftovers)
[ -z "$leftover" ] || fail "left behind after kill -9 + --cleanup: $leftover"

log "F. kill -9, then the next start; SIGHUP, SIGUSR1, SIGUSR2"
start_reflexd ucb1
kill -9 "$REFLEXD_PID"
wait "$REFLEXD_PID" 2>/dev/null
# The killed one's pins and paths file are still there: wait for the new one's word.
started=$(grep -c 'reflexd: router on LAN' "$TMP/reflexd.log")
start_reflexd ucb1 --classes "$(dirname "$0")/../data/classes.ini"
wait_for "[ \$(grep -c 'reflexd: router on LAN' $TMP/reflexd.log) -gt $started ]" 10 ||
	fail "the next reflexd did not start: $(tail -3 "$TMP/reflexd.log")"
grep -q 'removed what a previous reflexd left' "$TMP/reflexd.log" || fail "the next start did not clean up"
kill -HUP "$REFLEXD_PID"
wait_for "grep -q 'SIGHUP: reloaded' $TMP/reflexd.log" 5 || fail "SIGHUP did not reload: $(tail -2 "$TMP/reflexd.log")"
kill -USR1 "$REFLEXD_PID"
wait_for "grep -q 'SIGUSR1' $TMP/reflexd.log" 5 || fail "SIGUSR1 went unanswered"
kill -0 "$REFLEXD_PID" || fail "reflexd died of SIGHUP or SIGUSR1"
kill -USR2 "$REFLEXD_PID"
wait "$REFLEXD_PID" || fail "reflexd did not stop cleanly on SIGUSR2"
REFLEXD_PID=
leftover=$(reflexd_leftovers)
[ -z "$leftover" ] || fail "left behind after SIGUSR2: $leftover"
grep -E 'router ran|unavailable|SIG' "$TMP/reflexd.log" | sed 's/^/   /'
lab_down || fail "lab down failed"
leftovers_check "$LAB_PREFIX"
log "PASS"
