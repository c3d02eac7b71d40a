#!/usr/bin/env bash
# The reflex netns lab: client, router and server network namespaces joined by veth, a
# tbf bottleneck with a deep buffer, and optional base delay (trace-link as a plain delay line) and random loss
# (scripts/lab/loss.bpf.c). Every integration test, the demo and the benchmarks run in it.
# `lab.sh --help` for usage. Commands are batched (ip -batch, iptables-restore) because
# each fork costs tens of milliseconds on a small, busy machine.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROG=lab.sh

LAB_PREFIX=${LAB_PREFIX:-rfx}
LAB_TOPO=${LAB_TOPO:-plain}
LAB_RATE=${LAB_RATE:-50mbit}
LAB_BUFFER=${LAB_BUFFER:-2mb}
LAB_BURST=${LAB_BURST:-32kb}
LAB_DELAY_MS=${LAB_DELAY_MS:-0}
LAB_LOSS_PCT=${LAB_LOSS_PCT:-0}
LAB_CC=${LAB_CC:-cubic}
LAB_GSO=${LAB_GSO:-off}
LAB_PATHS=${LAB_PATHS:-2}
LAB_PATH1=${LAB_PATH1:-rate=50mbit delay=10 loss=0}
LAB_PATH2=${LAB_PATH2:-rate=20mbit delay=40 loss=0}
LAB_PATH3=${LAB_PATH3:-rate=10mbit delay=60 loss=0}
LAB_PATH4=${LAB_PATH4:-rate=5mbit delay=100 loss=0}
LAB_IPTABLES=${LAB_IPTABLES:-auto}
LAB_TRACE=${LAB_TRACE:-}
LAB_TRACE_DIR=${LAB_TRACE_DIR:-up}
LAB_TRACE_BUFFER=${LAB_TRACE_BUFFER:-1mb}
LAB_TRACE_OFFSET_MS=${LAB_TRACE_OFFSET_MS:-0}
LAB_TRACE_SEED=${LAB_TRACE_SEED:-1}
LAB_TRACE_STATS=${LAB_TRACE_STATS:-}
LAB_TRACE_BIN_MS=${LAB_TRACE_BIN_MS:-1000}
LAB_NAT=${LAB_NAT:-1}
LAB_FIREWALL=${LAB_FIREWALL:-5999}
LAB_CGROUP_ROOT=${LAB_CGROUP_ROOT:-/sys/fs/cgroup/unified}
LAB_STATE_ROOT=${LAB_STATE_ROOT:-/run/reflex-lab}
LAB_PIN_ROOT=${LAB_PIN_ROOT:-/sys/fs/bpf}
REFLEX_BIN=${REFLEX_BIN:-$REPO/build}
REFLEX_BPF=${REFLEX_BPF:-$REPO/build/bpf}

P=$LAB_PREFIX
STATE=$LAB_STATE_ROOT/$P
PIN_DIR=$LAB_PIN_ROOT/$P-lab
CGROUP=$LAB_CGROUP_ROOT/$P-client
MAX_PATHS=4
# Queue numbers are per network namespace, so every delay line uses the same one.
NFQUEUE_NUM=0
# A trace-driven bottleneck takes its direction from this queue, the other from NFQUEUE_NUM.
TRACE_QUEUE_NUM=1
LOSS_FILTER_PREF=49

usage() {
	cat <<EOF
usage: $PROG COMMAND [ARGS]

Network namespaces for reflex tests (root; iproute2, iptables, bpftool, jq).

  plain topology (default):
    client ($P-cl) --- ($P-rc) router ($P-rs) ==tbf==> ($P-sv) server
  router topology (LAB_TOPO=router): K = 1..LAB_PATHS uplinks, each a "path" namespace
  with its own bottleneck, delay and loss, all converging on the server:
    client ($P-cl) --- ($P-rc) router ($P-rK) --- ($P-aK) pathK ($P-bK) ==tbf==> ($P-sK) server

commands:
  up                  create the lab. Fails if anything of a lab with this LAB_PREFIX
                      exists (run down first); a failure midway removes what it made.
  down                remove everything: processes in the lab's namespaces and cgroup
                      (TERM, 3 s, KILL), delay lines, namespaces (with their tc and
                      iptables state), the cgroup, pins, state. Parts already gone are
                      fine; exits 1 only if something could not be removed.
  status              topology, addresses, bottleneck qdisc stats, delay lines, loss counters
  exec NODE CMD...    run CMD in NODE's netns (nsenter --net: /sys and bpffs stay the
                      host's); for "client" also inside the cgroup v2 $CGROUP.
                      CMD replaces lab.sh (same pid), with REFLEX_LAB=$P in its environment.
  addr NODE           IPv4 address of NODE (server: the address clients connect to;
                      router: its LAN side; pathK: the router's next hop on path K)
  addr6 NODE          IPv6 address, same rules
  iface NODE          interface name: client; server; router (its LAN side); bottleneck
                      (plain: the router's tbf interface); pathK (the router's interface
                      towards path K)
  netns NODE          network namespace name (for ip -n / tc -n)
  cgroup              the client's cgroup v2 directory
  paths               router topology, one line per path:
                      pathK IFACE NEXTHOP4 NEXTHOP6 rate= buffer= delay= loss= state=
  path-args           router topology: "--path pathK:IFACE:NEXTHOP4,NEXTHOP6 ..." for
                      reflexd
  path K down|up      router topology: path K silently drops everything (both directions)
                      or carries traffic again; the router's link stays up
  path K default      router topology: the router's default route goes via path K
                      (path 1 after up)
  set LINK KEY=VAL... change a link while the lab runs; LINK is bottleneck (plain) or
                      pathK; KEY is rate, buffer, delay or loss (units as below)

NODE: client, router, server, and in the router topology path1..path$MAX_PATHS.

environment [default]:
  LAB_PREFIX   [rfx]     names everything: netns \$P-{client,router,server,pathK},
                         interfaces \$P-xx, cgroup \$P-client, pins $LAB_PIN_ROOT/\$P-lab,
                         state $LAB_STATE_ROOT/\$P. 1..11 characters of [A-Za-z0-9_].
  LAB_TOPO     [plain]   plain | router; read by up, saved for the other commands
  LAB_RATE     [50mbit]  bottleneck rate (tc units: kbit, mbit, gbit)
  LAB_BUFFER   [2mb]     bottleneck queue (tbf limit; tc sizes: kb, mb = 1024-based)
  LAB_BURST    [32kb]    tbf bucket
  LAB_DELAY_MS [0]       added round-trip time in ms (fractions allowed), 0 = no delay
                         line. Half of it delays each forwarded direction on the router.
  LAB_LOSS_PCT [0]       % of IP packets lost in the client->server direction, after
                         the bottleneck (tc BPF on the server's ingress); 0 = none
  LAB_CC       [cubic]   TCP congestion control of the client and server namespaces
  LAB_GSO      [off]     off: gso_max_segs 1 on every lab veth, so the bottleneck, delay
                         and loss see wire-size packets; on: kernel default (64 KB GSO)
  LAB_PATHS    [2]       router topology: number of paths, 1..$MAX_PATHS
  LAB_PATHK              router topology, path K: "rate=R delay=MS loss=PCT [buffer=B]"
                         (missing keys: LAB_RATE, LAB_BUFFER, 0, 0); delay is added RTT,
                         loss is on the path's link into the server. Defaults:
                           LAB_PATH1 [$LAB_PATH1]
                           LAB_PATH2 [$LAB_PATH2]
                           LAB_PATH3 [$LAB_PATH3]
                           LAB_PATH4 [$LAB_PATH4]
  LAB_NAT      [1]       router topology: 1 = the router masquerades IPv4 on every uplink
                         (iptables -t nat POSTROUTING -o UPLINK -j MASQUERADE) and the
                         paths and server have no IPv4 route back to the LAN, as a real
                         multi-WAN router; 0 = no NAT, routes back to the LAN everywhere
  LAB_FIREWALL [5999]    router topology: the router's FORWARD chain drops TCP to this
                         port (IPv4 and IPv6); empty = no such rule
  LAB_IPTABLES [auto]    iptables for NFQUEUE and connmark rules; auto: iptables (nft)
                         if it takes -j NFQUEUE, else iptables-legacy
  LAB_TRACE    []        plain topology: a mahimahi trace (plain or .gz) drives the
                         bottleneck instead of tbf (scripts/lab/trace-link.c: one
                         1500-byte delivery opportunity per line, the trace loops);
                         LAB_DELAY_MS and LAB_LOSS_PCT apply to it, LAB_RATE does not
  LAB_TRACE_DIR [up]     the traced direction: up (client->server) or down
  LAB_TRACE_BUFFER [1mb] its droptail buffer: a tc size (bytes) or N p (packets, "500p")
  LAB_TRACE_OFFSET_MS [0] where in the trace the link starts (a segment; repeatable)
  LAB_TRACE_SEED [1]     seed of its random loss (same seed, same drops)
  LAB_TRACE_STATS []     file for its CSV per bin: offered and delivered bytes, drops
  LAB_TRACE_BIN_MS [1000] the bin of LAB_TRACE_STATS
  REFLEX_BIN   [\$REPO/build]      directory of trace-link
  REFLEX_BPF   [\$REPO/build/bpf]  directory of loss.bpf.o

addresses:
  plain:  client 10.11.1.2 fd00:11:1::2 -- router 10.11.1.1 fd00:11:1::1
          router 10.11.2.1 fd00:11:2::1 -- server 10.11.2.2 fd00:11:2::2
  router: client side as above; path K: router 10.12.K.1 fd00:12:K::1 -- next hop
          10.12.K.2 fd00:12:K::2; 10.13.K.1 fd00:13:K::1 -- server 10.13.K.2 fd00:13:K::2.
          The server's address is 10.11.9.1 fd00:11:9::1 (loopback). IPv4 under NAT:
          its answers go to the router's address on the path the flow left by. IPv6
          (never NAT'd), and IPv4 with LAB_NAT=0: it answers each flow through the path
          the flow last arrived on (connmark + one routing table per path), so a path's
          delay is its whole RTT. rp_filter is loose (2) on the server, router and
          paths, since steered packets and their answers arrive off the default route.
EOF
}

die() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	exit 1
}

warn() {
	printf '%s: %s\n' "$PROG" "$*" >&2
}

# ---------------------------------------------------------------------------------------
# state: what `up` built, so later commands do not depend on the caller's environment

TOPO=$LAB_TOPO
NPATHS=$LAB_PATHS
IPT=""

load_state() {
	[ -f "$STATE/topo" ] && read -r TOPO <"$STATE/topo"
	[ -f "$STATE/paths" ] && read -r NPATHS <"$STATE/paths"
	[ -f "$STATE/iptables" ] && read -r IPT <"$STATE/iptables"
	return 0
}

require_up() {
	[ -f "$STATE/topo" ] || die "lab '$P' is not up (no $STATE; run: LAB_PREFIX=$P $0 up)"
}

# Sets LINK_RATE LINK_BUFFER LINK_DELAY LINK_LOSS from a saved link.
load_link() { # LINK
	local conf
	read -r conf <"$STATE/link-$1.conf"
	parse_link_spec "$conf" "$STATE/link-$1.conf"
}

save_link() { # LINK
	printf 'rate=%s buffer=%s delay=%s loss=%s\n' "$LINK_RATE" "$LINK_BUFFER" \
		"$LINK_DELAY" "$LINK_LOSS" >"$STATE/link-$1.conf"
}

# Path number of "pathK" or "K", checked against the lab's path count.
path_index() { # NAME -> sets K
	K=${1#path}
	if [ "$TOPO" != router ] || ! [[ $K =~ ^[1-9]$ ]] || [ "$K" -gt "$NPATHS" ]; then
		die "no path '$1' (paths exist in the router topology only, path1..path$NPATHS)"
	fi
}

check_node() { # NODE
	case "$1" in
	client | router | server) ;;
	path*) path_index "$1" ;;
	*) die "unknown node '$1' (client, router, server, path1..path$MAX_PATHS)" ;;
	esac
}

# A link is "bottleneck" (plain) or "pathK" (router topology). Its tbf and delay line sit
# in LINK_NS on LINK_SHAPE_IF; its loss program on the server's ingress LINK_LOSS_IF.
resolve_link() { # LINK
	if [ "$TOPO" = plain ]; then
		[ "$1" = bottleneck ] || die "no link '$1' in the plain topology (only 'bottleneck')"
		LINK_NS=$P-router
		LINK_SHAPE_IF=$P-rs
		LINK_LOSS_IF=$P-sv
	else
		[[ $1 == path* ]] || die "no link '$1' in the router topology (path1..path$NPATHS)"
		path_index "$1"
		LINK_NS=$P-path$K
		LINK_SHAPE_IF=$P-b$K
		LINK_LOSS_IF=$P-s$K
	fi
}

lab_links() {
	local k
	if [ "$TOPO" = plain ]; then
		echo bottleneck
	else
		for ((k = 1; k <= NPATHS; k++)); do echo "path$k"; done
	fi
}

lab_netns() { # existing namespaces of this lab, in topology order
	local existing node
	existing=" $(ip netns list 2>/dev/null | awk '{ printf "%s ", $1 }') "
	for node in client router path1 path2 path3 path4 server; do
		[[ $existing == *" $P-$node "* ]] && echo "$P-$node"
	done
	return 0
}

# ---------------------------------------------------------------------------------------
# validation (bash only: no forks)

is_number() { [[ $1 =~ ^[0-9]{1,9}([.][0-9]{1,6})?$ ]]; }
is_zero() { [[ $1 =~ ^0+([.]0+)?$ ]]; }

num_le() { # A B: A (is_number) <= B (integer)
	local int=${1%%.*} frac=""
	[[ $1 == *.* ]] && frac=${1#*.}
	int=$((10#$int))
	((int < $2)) && return 0
	((int == $2)) && [[ ! $frac =~ [1-9] ]]
}

check_rate() {
	[[ ${1,,} =~ ^[0-9]+([.][0-9]+)?([kmgt]i?)?(bit|bps)$ ]] ||
		die "$2: '$1' is not a tc rate (e.g. 50mbit)"
}

check_size() {
	[[ ${1,,} =~ ^[0-9]+([kmg](b|bit)?|b)?$ ]] || die "$2: '$1' is not a tc size (e.g. 2mb)"
}

check_delay() {
	if ! is_number "$1" || ! num_le "$1" 60000; then
		die "$2: '$1' is not a delay in ms (0..60000)"
	fi
}

check_loss() {
	if ! is_number "$1" || ! num_le "$1" 100; then
		die "$2: '$1' is not a loss percentage (0..100)"
	fi
}

# "rate=R delay=MS loss=PCT buffer=B" -> LINK_RATE LINK_BUFFER LINK_DELAY LINK_LOSS,
# missing keys from LAB_RATE, LAB_BUFFER, 0, 0.
parse_link_spec() { # SPEC WHAT
	local word key value
	LINK_RATE=$LAB_RATE LINK_BUFFER=$LAB_BUFFER LINK_DELAY=0 LINK_LOSS=0
	for word in $1; do
		[[ $word == *=* ]] || die "$2: '$word' is not KEY=VALUE"
		key=${word%%=*}
		value=${word#*=}
		case "$key" in
		rate) check_rate "$value" "$2 rate" && LINK_RATE=$value ;;
		buffer) check_size "$value" "$2 buffer" && LINK_BUFFER=$value ;;
		delay) check_delay "$value" "$2 delay" && LINK_DELAY=$value ;;
		loss) check_loss "$value" "$2 loss" && LINK_LOSS=$value ;;
		*) die "$2: unknown key '$key' (rate, buffer, delay, loss)" ;;
		esac
	done
}

require_tools_for_link() { # uses LINK_DELAY LINK_LOSS
	if ! is_zero "$LINK_DELAY" && [ ! -x "$REFLEX_BIN/trace-link" ]; then
		die "no $REFLEX_BIN/trace-link for a delay line: build it (make) or set REFLEX_BIN"
	fi
	if ! is_zero "$LINK_LOSS" && [ ! -f "$REFLEX_BPF/loss.bpf.o" ]; then
		die "no $REFLEX_BPF/loss.bpf.o for random loss: build it (make) or set REFLEX_BPF"
	fi
	return 0
}

validate_env() {
	local k spec
	[[ $P =~ ^[A-Za-z0-9_]{1,11}$ ]] ||
		die "LAB_PREFIX '$P': 1..11 characters of [A-Za-z0-9_] (interface names must fit 15)"
	case "$LAB_TOPO" in plain | router) ;; *) die "LAB_TOPO '$LAB_TOPO': plain or router" ;; esac
	case "$LAB_GSO" in on | off) ;; *) die "LAB_GSO '$LAB_GSO': on or off" ;; esac
	local available
	read -r available </proc/sys/net/ipv4/tcp_available_congestion_control
	[[ " $available " == *" $LAB_CC "* ]] ||
		die "LAB_CC '$LAB_CC' is not available (have: $available)"
	check_size "$LAB_BURST" LAB_BURST
	check_rate "$LAB_RATE" LAB_RATE
	check_size "$LAB_BUFFER" LAB_BUFFER
	if [ "$LAB_TOPO" = plain ]; then
		check_delay "$LAB_DELAY_MS" LAB_DELAY_MS
		check_loss "$LAB_LOSS_PCT" LAB_LOSS_PCT
		parse_link_spec "delay=$LAB_DELAY_MS loss=$LAB_LOSS_PCT" LAB
		if [ -n "$LAB_TRACE" ]; then
			validate_trace_env
		else
			require_tools_for_link
		fi
	else
		[ -z "$LAB_TRACE" ] || die "LAB_TRACE: the router topology has no trace-driven links yet"
		[[ $LAB_PATHS =~ ^[1-4]$ ]] || die "LAB_PATHS '$LAB_PATHS': 1..$MAX_PATHS"
		case "$LAB_NAT" in 0 | 1) ;; *) die "LAB_NAT '$LAB_NAT': 0 or 1" ;; esac
		[[ -z $LAB_FIREWALL || $LAB_FIREWALL =~ ^[1-9][0-9]{0,4}$ ]] && [ "${LAB_FIREWALL:-1}" -le 65535 ] ||
			die "LAB_FIREWALL '$LAB_FIREWALL': a TCP port 1..65535, or empty"
		for ((k = 1; k <= LAB_PATHS; k++)); do
			spec=LAB_PATH$k
			parse_link_spec "${!spec}" "$spec"
			require_tools_for_link
		done
	fi
	if [ ! -f "$LAB_CGROUP_ROOT/cgroup.procs" ] || [ ! -f "$LAB_CGROUP_ROOT/cgroup.controllers" ]; then
		die "LAB_CGROUP_ROOT '$LAB_CGROUP_ROOT' is not a cgroup v2 mount"
	fi
	command -v bpftool >/dev/null || die "bpftool not found (scripts/deps.sh installs it)"
}

# ---------------------------------------------------------------------------------------
# process helpers

in_ns() { # NETNS CMD...
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# Running, as opposed to gone or a zombie: our daemons outlive `lab.sh up`, and their
# new parent may take a while to reap them. No fork: this runs in polling loops.
alive() { # PID
	local stat state
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	state=${stat##*) }
	state=${state%% *}
	[ "$state" != Z ] && [ "$state" != X ]
}

stop_process() { # PID: TERM, up to 3 s, then KILL
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 60; i++)); do
		alive "$pid" || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# building blocks

# A namespace other than the host's may only default to a congestion control listed in
# the host-wide tcp_allowed_congestion_control. Add LAB_CC there if missing; not undone at
# down (other labs may rely on it; it only lets unprivileged sockets choose it too).
allow_cc() {
	local allowed
	read -r allowed </proc/sys/net/ipv4/tcp_allowed_congestion_control
	[[ " $allowed " == *" $LAB_CC "* ]] && return 0
	echo "$allowed $LAB_CC" >/proc/sys/net/ipv4/tcp_allowed_congestion_control
	warn "added $LAB_CC to net.ipv4.tcp_allowed_congestion_control"
}

# The LAN link both topologies share: client 10.11.1.2 <-> router 10.11.1.1 (and v6),
# the client's default routes through the router.
lan_up() { # client_netns router_netns
	ip -n "$1" -batch - <<-EOF
		link set $P-cl up
		addr add 10.11.1.2/24 dev $P-cl
		addr add fd00:11:1::2/64 dev $P-cl nodad
		route add default via 10.11.1.1
		route add default via fd00:11:1::1
	EOF
	ip -n "$2" -batch - <<-EOF
		link set $P-rc up
		addr add 10.11.1.1/24 dev $P-rc
		addr add fd00:11:1::1/64 dev $P-rc nodad
	EOF
}

add_netns() { # NODE [EXTRA_SYSCTL...]
	local ns=$P-$1
	shift
	ip netns add "$ns"
	# Before any interface exists: DAD would leave IPv6 addresses tentative for ~2 s.
	in_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 "$@" >/dev/null
	ip -n "$ns" link set lo up
}

# no_metrics_save: every connection starts clean instead of from a cached ssthresh.
TCP_SYSCTLS=(net.ipv4.tcp_no_metrics_save=1)
FORWARD_SYSCTLS=(net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1)
LOOSE_RP_SYSCTLS=(net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2)

gso_opt() {
	[ "$LAB_GSO" = off ] && echo "gso_max_segs 1"
	return 0
}

# The link settings of the tbf bottleneck.
apply_rate() { # LINK (loaded)
	resolve_link "$1"
	tc -n "$LINK_NS" qdisc replace dev "$LINK_SHAPE_IF" root handle 1: tbf \
		rate "$LINK_RATE" burst "$LAB_BURST" limit "$LINK_BUFFER"
}

# --- delay line ---------------------------------------------------------------------------

ip6t() { # the IPv6 twin of IPT: iptables -> ip6tables, iptables-legacy -> ip6tables-legacy
	echo "${IPT/iptables/ip6tables}"
}

nfqueue_rule() { # NETNS -A|-D|-C
	in_ns "$1" "$IPT" -w 5 -t mangle "$2" FORWARD -j NFQUEUE --queue-num "$NFQUEUE_NUM" --queue-bypass &&
		in_ns "$1" "$(ip6t)" -w 5 -t mangle "$2" FORWARD -j NFQUEUE --queue-num "$NFQUEUE_NUM" --queue-bypass
}

# The iptables flavour that takes an NFQUEUE rule, once per lab (saved in the state).
choose_iptables() { # NETNS
	local candidate err=""
	local -a candidates=("$LAB_IPTABLES")
	[ -n "$IPT" ] && return 0
	[ "$LAB_IPTABLES" = auto ] && candidates=(iptables iptables-legacy)
	for candidate in "${candidates[@]}"; do
		command -v "$candidate" >/dev/null || { err+=" $candidate: not found;"; continue; }
		if err+=$(in_ns "$1" "$candidate" -w 5 -t mangle -A FORWARD -j NFQUEUE \
			--queue-num "$NFQUEUE_NUM" --queue-bypass 2>&1); then
			in_ns "$1" "$candidate" -w 5 -t mangle -D FORWARD -j NFQUEUE \
				--queue-num "$NFQUEUE_NUM" --queue-bypass
			IPT=$candidate
			echo "$IPT" >"$STATE/iptables"
			return 0
		fi
	done
	die "no iptables here accepts -j NFQUEUE:$err"
}

# A queue tool prints "bound" once it reads its queue; up to 10 s (a large trace takes a
# while to read on a busy machine). On failure it is stopped and up fails with its log.
wait_bound() { # PID LOG WHAT
	local i
	for ((i = 0; i < 200; i++)); do
		[[ $(<"$2") == *bound* ]] && return 0
		alive "$1" || break
		sleep 0.05
	done
	stop_process "$1"
	die "$3 did not start: $(<"$2")"
}

delay_pid() { # LINK -> pid of its running delay line (or trace-driven link), or fail
	local pid comm
	{ read -r pid <"$STATE/delay-$1.pid" && read -r comm <"/proc/$pid/comm"; } 2>/dev/null || return 1
	[ "$comm" = trace-link ] || return 1
	alive "$pid" && echo "$pid"
}

stop_delay() { # LINK
	local pid
	if pid=$(delay_pid "$1"); then
		stop_process "$pid"
	fi
	rm -f "$STATE/delay-$1.pid"
}

start_delay() { # LINK (loaded, resolved)
	local link=$1 one_way pid log
	one_way=$(awk -v d="$LINK_DELAY" 'BEGIN { printf "%.3f", d / 2 }')
	log=$STATE/delay-$link.log
	: >"$log"
	choose_iptables "$LINK_NS"
	# setsid: a Ctrl-C meant for a test must not take the delay line down before `down`.
	REFLEX_LAB=$P setsid nsenter --net="/run/netns/$LINK_NS" -- \
		"$REFLEX_BIN/trace-link" --queue "$NFQUEUE_NUM" --delay-ms "$one_way" \
		</dev/null >"$log" 2>&1 &
	pid=$!
	echo "$pid" >"$STATE/delay-$link.pid"
	wait_bound "$pid" "$log" "delay line for $link"
	# Rules after the bind, so no packet meets a queue nobody reads. --queue-bypass
	# passes packets while no delay line runs (e.g. during a restart).
	nfqueue_rule "$LINK_NS" -C 2>/dev/null || nfqueue_rule "$LINK_NS" -A
}

apply_delay() { # LINK (loaded)
	resolve_link "$1"
	stop_delay "$1"
	if is_zero "$LINK_DELAY"; then
		[ -n "$IPT" ] && { nfqueue_rule "$LINK_NS" -D 2>/dev/null || true; }
		return 0
	fi
	start_delay "$1"
}

# --- loss ---------------------------------------------------------------------------------

# bpftool takes the value as bytes; loss_config.loss_ppm is a host-endian __u32.
u32_bytes() { # VALUE
	local v=$1
	if [ "$(printf '\001\000' | od -An -tu2 | tr -d ' ')" = 1 ]; then
		echo $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255))
	else
		echo $((v >> 24 & 255)) $((v >> 16 & 255)) $((v >> 8 & 255)) $((v & 255))
	fi
}

apply_loss() { # LINK (loaded)
	local link=$1 ppm dir filters
	local -a bytes
	resolve_link "$link"
	dir=$PIN_DIR/loss-$link
	if [ ! -e "$dir/prog" ]; then
		is_zero "$LINK_LOSS" && return 0
		mkdir -p "$dir"
		chmod 700 "$PIN_DIR"
		bpftool prog load "$REFLEX_BPF/loss.bpf.o" "$dir/prog" type classifier pinmaps "$dir"
	fi
	ppm=$(awk -v l="$LINK_LOSS" 'BEGIN { printf "%d", l * 10000 + 0.5 }')
	read -ra bytes <<<"$(u32_bytes "$ppm")"
	bpftool map update pinned "$dir/loss_config" key 0 0 0 0 value "${bytes[@]}"
	filters=$(tc -n "$P-server" filter show dev "$LINK_LOSS_IF" ingress)
	if [[ $filters != *"pref $LOSS_FILTER_PREF "* ]]; then
		tc -n "$P-server" qdisc replace dev "$LINK_LOSS_IF" clsact
		# nsenter, not tc -n: tc -n remounts /sys, which hides the pin in bpffs.
		in_ns "$P-server" tc filter add dev "$LINK_LOSS_IF" ingress pref "$LOSS_FILTER_PREF" \
			bpf da object-pinned "$dir/prog"
	fi
}

loss_counters() { # LINK -> "seen dropped", or fail when it has no loss program
	local dir=$PIN_DIR/loss-$1
	[ -e "$dir/loss_counters" ] || return 1
	bpftool -j map dump pinned "$dir/loss_counters" |
		jq -r '[.[0].formatted.values[].value] | "\(map(.seen) | add) \(map(.dropped) | add)"'
}

apply_link() { # LINK (loaded)
	apply_rate "$1"
	apply_delay "$1"
	apply_loss "$1"
}

# --- trace-driven bottleneck (plain topology) ---------------------------------------------

validate_trace_env() {
	[ -r "$LAB_TRACE" ] || die "LAB_TRACE '$LAB_TRACE': no such readable file"
	case "$LAB_TRACE_DIR" in up | down) ;; *) die "LAB_TRACE_DIR '$LAB_TRACE_DIR': up or down" ;; esac
	[[ ${LAB_TRACE_BUFFER,,} =~ ^[0-9]+p$ ]] || check_size "$LAB_TRACE_BUFFER" LAB_TRACE_BUFFER
	[[ $LAB_TRACE_OFFSET_MS =~ ^[0-9]{1,10}$ ]] ||
		die "LAB_TRACE_OFFSET_MS '$LAB_TRACE_OFFSET_MS': milliseconds (an integer)"
	[[ $LAB_TRACE_SEED =~ ^[0-9]{1,19}$ ]] || die "LAB_TRACE_SEED '$LAB_TRACE_SEED': an integer"
	[[ $LAB_TRACE_BIN_MS =~ ^[1-9][0-9]{0,6}$ ]] || die "LAB_TRACE_BIN_MS '$LAB_TRACE_BIN_MS': 1..9999999 ms"
	[ -x "$REFLEX_BIN/trace-link" ] ||
		die "no $REFLEX_BIN/trace-link for LAB_TRACE: build it (make) or set REFLEX_BIN"
}

# "1mb" -> --buffer-bytes 1048576, "500p" -> --buffer-packets 500 (tc sizes are 1024-based).
trace_buffer_args() {
	local v=${LAB_TRACE_BUFFER,,} n unit
	if [[ $v =~ ^([0-9]+)p$ ]]; then
		echo "--buffer-packets ${BASH_REMATCH[1]}"
		return
	fi
	[[ $v =~ ^([0-9]+)([kmg]?)(b|bit)?$ ]]
	n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
	case "$unit" in k) n=$((n * 1024)) ;; m) n=$((n * 1048576)) ;; g) n=$((n * 1073741824)) ;; esac
	[ "${BASH_REMATCH[3]}" = bit ] && n=$((n / 8))
	echo "--buffer-bytes $n"
}

# The traced direction enters the router on one interface, the other on the other side.
trace_rules() { # -A|-D|-C
	local traced_in=$P-rc reverse_in=$P-rs ipt
	[ "$LAB_TRACE_DIR" = down ] && traced_in=$P-rs reverse_in=$P-rc
	for ipt in "$IPT" "$(ip6t)"; do
		in_ns "$P-router" "$ipt" -w 5 -t mangle "$1" FORWARD -i "$traced_in" \
			-j NFQUEUE --queue-num "$TRACE_QUEUE_NUM" --queue-bypass || return 1
		is_zero "$LINK_DELAY" && continue
		in_ns "$P-router" "$ipt" -w 5 -t mangle "$1" FORWARD -i "$reverse_in" \
			-j NFQUEUE --queue-num "$NFQUEUE_NUM" --queue-bypass || return 1
	done
}

start_trace_link() { # (LINK_DELAY LINK_LOSS loaded)
	local one_way pid log
	local -a args
	one_way=$(awk -v d="$LINK_DELAY" 'BEGIN { printf "%.3f", d / 2 }')
	read -ra args <<<"$(trace_buffer_args)"
	args+=(--trace "$LAB_TRACE" --queue "$TRACE_QUEUE_NUM" --delay-ms "$one_way"
		--loss-pct "$LINK_LOSS" --seed "$LAB_TRACE_SEED" --offset-ms "$LAB_TRACE_OFFSET_MS")
	is_zero "$LINK_DELAY" || args+=(--reverse-queue "$NFQUEUE_NUM")
	[ -n "$LAB_TRACE_STATS" ] && args+=(--stats "$LAB_TRACE_STATS" --bin-ms "$LAB_TRACE_BIN_MS")
	# The plain topology's tbf stays, far above any trace, so `status` still has a root qdisc.
	tc -n "$P-router" qdisc replace dev "$P-rs" root handle 1: tbf rate 10gbit burst "$LAB_BURST" \
		limit "$LAB_BUFFER"
	log=$STATE/delay-bottleneck.log
	: >"$log"
	choose_iptables "$P-router"
	REFLEX_LAB=$P setsid nsenter --net="/run/netns/$P-router" -- \
		"$REFLEX_BIN/trace-link" "${args[@]}" </dev/null >"$log" 2>&1 &
	pid=$!
	echo "$pid" >"$STATE/delay-bottleneck.pid"
	wait_bound "$pid" "$log" "trace-driven link"
	trace_rules -A
	echo "$LAB_TRACE dir=$LAB_TRACE_DIR buffer=$LAB_TRACE_BUFFER offset_ms=$LAB_TRACE_OFFSET_MS seed=$LAB_TRACE_SEED" \
		>"$STATE/trace"
}

# ---------------------------------------------------------------------------------------
# topologies

build_plain() {
	local gso c=$P-client r=$P-router s=$P-server
	gso=$(gso_opt)
	add_netns client "${TCP_SYSCTLS[@]}" "net.ipv4.tcp_congestion_control=$LAB_CC"
	add_netns router "${FORWARD_SYSCTLS[@]}"
	add_netns server "${TCP_SYSCTLS[@]}" "net.ipv4.tcp_congestion_control=$LAB_CC"
	ip -batch - <<-EOF
		link add $P-cl netns $c $gso type veth peer name $P-rc netns $r $gso
		link add $P-rs netns $r $gso type veth peer name $P-sv netns $s $gso
	EOF
	lan_up "$c" "$r"
	ip -n "$r" -batch - <<-EOF
		link set $P-rs up
		addr add 10.11.2.1/24 dev $P-rs
		addr add fd00:11:2::1/64 dev $P-rs nodad
	EOF
	ip -n "$s" -batch - <<-EOF
		link set $P-sv up
		addr add 10.11.2.2/24 dev $P-sv
		addr add fd00:11:2::2/64 dev $P-sv nodad
		route add default via 10.11.2.1
		route add default via fd00:11:2::1
	EOF
	parse_link_spec "rate=$LAB_RATE buffer=$LAB_BUFFER delay=$LAB_DELAY_MS loss=$LAB_LOSS_PCT" LAB
	save_link bottleneck
	if [ -n "$LAB_TRACE" ]; then
		start_trace_link
	else
		apply_link bottleneck
	fi
}

# Replies leave the server through the path their flow last arrived on: PREROUTING marks
# each packet with its path number and saves it in the conntrack entry; accepted sockets
# inherit the mark (tcp_fwmark_accept), OUTPUT restores it for everything else (ICMP
# replies, SYN-ACKs); a routing table per path sends marked packets back that way.
server_return_rules() { # -> iptables-restore input (connmark rules of one family)
	local k
	echo '*mangle'
	for ((k = 1; k <= NPATHS; k++)); do
		echo "-A PREROUTING -i $P-s$k -j MARK --set-mark $k"
		echo "-A PREROUTING -i $P-s$k -j CONNMARK --save-mark"
	done
	echo '-A OUTPUT -j CONNMARK --restore-mark'
	echo COMMIT
}

# What a multi-WAN router has: IPv4 masquerade on every uplink (LAB_NAT=1) and a
# firewall rule in FORWARD (LAB_FIREWALL).
router_edge_rules() { # [6] -> iptables-restore input
	local k
	if [ "${1:-4}" = 4 ] && [ "$LAB_NAT" = 1 ]; then
		echo '*nat'
		for ((k = 1; k <= NPATHS; k++)); do echo "-A POSTROUTING -o $P-r$k -j MASQUERADE"; done
		echo COMMIT
	fi
	echo '*filter'
	[ -z "$LAB_FIREWALL" ] || echo "-A FORWARD -p tcp --dport $LAB_FIREWALL -j DROP"
	echo COMMIT
}

build_router() {
	local gso k ns c=$P-client r=$P-router s=$P-server
	local links="" router_cmds="" server_cmds="" server_rules6="" rp_router=() rp_server=()
	gso=$(gso_opt)
	add_netns client "${TCP_SYSCTLS[@]}" "net.ipv4.tcp_congestion_control=$LAB_CC"
	for ((k = 1; k <= NPATHS; k++)); do
		rp_router+=("net.ipv4.conf.$P-r$k.rp_filter=2")
		rp_server+=("net.ipv4.conf.$P-s$k.rp_filter=2")
		add_netns "path$k" "${FORWARD_SYSCTLS[@]}" "${LOOSE_RP_SYSCTLS[@]}"
		links+="link add $P-r$k netns $r $gso type veth peer name $P-a$k netns $P-path$k $gso"$'\n'
		links+="link add $P-b$k netns $P-path$k $gso type veth peer name $P-s$k netns $s $gso"$'\n'
		router_cmds+="link set $P-r$k up
addr add 10.12.$k.1/24 dev $P-r$k
addr add fd00:12:$k::1/64 dev $P-r$k nodad
"
		server_rules6+="rule add fwmark $k table $((100 + k))"$'\n'
		server_cmds+="link set $P-s$k up
addr add 10.13.$k.2/24 dev $P-s$k
addr add fd00:13:$k::2/64 dev $P-s$k nodad
rule add fwmark $k table $((100 + k))
route add default via 10.13.$k.1 dev $P-s$k table $((100 + k))
route add default via fd00:13:$k::1 dev $P-s$k table $((100 + k))
route add 10.12.$k.0/24 via 10.13.$k.1 dev $P-s$k
"
	done
	add_netns router "${FORWARD_SYSCTLS[@]}" "${LOOSE_RP_SYSCTLS[@]}"
	add_netns server "${TCP_SYSCTLS[@]}" "net.ipv4.tcp_congestion_control=$LAB_CC" \
		net.ipv4.tcp_fwmark_accept=1 "${LOOSE_RP_SYSCTLS[@]}"
	links+="link add $P-cl netns $c $gso type veth peer name $P-rc netns $r $gso"
	ip -batch - <<<"$links"
	# Per-interface rp_filter exists only once the interface does.
	in_ns "$r" sysctl -qw "${rp_router[@]}" >/dev/null
	in_ns "$s" sysctl -qw "${rp_server[@]}" net.ipv4.conf.lo.rp_filter=2 >/dev/null
	lan_up "$c" "$r"
	ip -n "$r" -batch - <<-EOF
		$router_cmds
	EOF
	for ((k = 1; k <= NPATHS; k++)); do
		ns=$P-path$k
		ip -n "$ns" -batch - <<-EOF
			link set $P-a$k up
			link set $P-b$k up
			addr add 10.12.$k.2/24 dev $P-a$k
			addr add fd00:12:$k::2/64 dev $P-a$k nodad
			addr add 10.13.$k.1/24 dev $P-b$k
			addr add fd00:13:$k::1/64 dev $P-b$k nodad
			route add 10.11.9.1/32 via 10.13.$k.2
			route add fd00:11:9::1/128 via fd00:13:$k::2
			route add fd00:11:1::/64 via fd00:12:$k::1
		EOF
		[ "$LAB_NAT" = 1 ] || ip -n "$ns" route add 10.11.1.0/24 via "10.12.$k.1"
	done
	# Flows the server opens itself, before anything arrived, leave through path 1.
	ip -n "$s" -batch - <<-EOF
		addr add 10.11.9.1/32 dev lo
		addr add fd00:11:9::1/128 dev lo
		$server_cmds
		route add fd00:11:1::/64 via fd00:13:1::1 dev $P-s1
	EOF
	[ "$LAB_NAT" = 1 ] || ip -n "$s" route add 10.11.1.0/24 via 10.13.1.1 dev "$P-s1"
	ip -n "$s" -6 -batch - <<<"$server_rules6"
	choose_iptables "$s"
	[ "$LAB_NAT" = 1 ] || server_return_rules | in_ns "$s" "$IPT-restore" --noflush
	server_return_rules | in_ns "$s" "$(ip6t)-restore" --noflush
	router_edge_rules | in_ns "$r" "$IPT-restore" --noflush
	router_edge_rules 6 | in_ns "$r" "$(ip6t)-restore" --noflush
	set_default_path 1
	for ((k = 1; k <= NPATHS; k++)); do
		local spec=LAB_PATH$k
		parse_link_spec "${!spec}" "$spec"
		save_link "path$k"
		echo up >"$STATE/path$k.state"
		apply_link "path$k"
	done
}

set_default_path() { # K
	ip -n "$P-router" -batch - <<-EOF
		route replace default via 10.12.$1.2 dev $P-r$1
		route replace default via fd00:12:$1::2 dev $P-r$1
	EOF
	echo "$1" >"$STATE/default-path"
}

# ---------------------------------------------------------------------------------------
# commands

lab_exists() { # prints what exists of lab $P
	local ns
	for ns in $(lab_netns); do echo "netns $ns"; done
	[ -d "$CGROUP" ] && echo "cgroup $CGROUP"
	[ -d "$STATE" ] && echo "state $STATE"
	[ -e "$PIN_DIR" ] && echo "pins $PIN_DIR"
	return 0
}

# ERR names the failing command; EXIT (any exit before the end of up: set -e, die, a
# signal) removes the partial lab.
up_err() { # STATUS LINE COMMAND
	# set -E hands this trap to subshells too; only the main shell reports.
	[ "$BASHPID" = "$$" ] && warn "up: line $2: '$3' failed (status $1)"
	return 0
}

up_exit() {
	local status=$?
	trap - ERR EXIT INT TERM
	set +eE
	if [ "$UP_DONE" != 1 ]; then
		warn "up failed; removing the partial lab '$P'"
		cmd_down >/dev/null 2>&1
		status=1
	fi
	exit "$status"
}

cmd_up() {
	local existing
	[ "$(id -u)" -eq 0 ] || die "needs root"
	validate_env
	existing=$(lab_exists)
	[ -z "$existing" ] ||
		die "lab '$P' already exists ($(echo "$existing" | paste -sd, -)); run: LAB_PREFIX=$P $0 down"

	TOPO=$LAB_TOPO
	NPATHS=$LAB_PATHS
	[ "$TOPO" = router ] || NPATHS=0
	UP_DONE=0
	set -E
	trap 'up_err $? $LINENO "$BASH_COMMAND"' ERR
	trap up_exit EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$STATE"
	echo "$TOPO" >"$STATE/topo"
	echo "$NPATHS" >"$STATE/paths"
	mkdir "$CGROUP"
	allow_cc
	if [ "$TOPO" = plain ]; then
		build_plain
	else
		build_router
	fi
	UP_DONE=1
	echo "lab '$P' up ($TOPO): client $(cmd_addr client 4) -> server $(cmd_addr server 4)"
}

lab_pids() { # processes in the client cgroup or in any namespace of the lab
	local ns
	cat "$CGROUP/cgroup.procs" 2>/dev/null
	for ns in $(lab_netns); do ip netns pids "$ns" 2>/dev/null; done
	return 0
}

kill_lab_processes() { # TERM, up to 3 s to exit, then KILL
	local pid i pids remaining
	pids=$(lab_pids)
	[ -z "$pids" ] && return 0
	for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < 60; i++)); do
		remaining=""
		for pid in $pids; do alive "$pid" && remaining+=" $pid"; done
		[ -z "$remaining" ] && break
		sleep 0.05
	done
	# Also whatever appeared meanwhile (a child forked before its parent died).
	{ [ -f "$CGROUP/cgroup.kill" ] && echo 1 >"$CGROUP/cgroup.kill"; } 2>/dev/null || true
	for pid in $(lab_pids); do kill -KILL "$pid" 2>/dev/null || true; done
	return 0
}

cmd_down() {
	local pidfile ns i problems=""
	[ "$(id -u)" -eq 0 ] || die "needs root"
	[[ $P =~ ^[A-Za-z0-9_]{1,11}$ ]] || die "LAB_PREFIX '$P': 1..11 characters of [A-Za-z0-9_]"
	# Best effort throughout: things vanish while we look at them (a process exits
	# between listing and kill); what could not be removed is reported at the end.
	set +e
	# Delay lines first and gently: they accept what they hold before exiting.
	for pidfile in "$STATE"/delay-*.pid; do
		[ -e "$pidfile" ] || continue
		pidfile=${pidfile##*/delay-}
		stop_delay "${pidfile%.pid}"
	done
	kill_lab_processes
	for ns in $(lab_netns); do
		ip netns del "$ns" 2>/dev/null || problems+=" netns $ns"
	done
	if [ -d "$CGROUP" ]; then
		for ((i = 0; i < 40; i++)); do
			rmdir "$CGROUP" 2>/dev/null && break
			sleep 0.05
		done
		[ -d "$CGROUP" ] && problems+=" cgroup $CGROUP (processes: $(paste -sd' ' "$CGROUP/cgroup.procs"))"
	fi
	rm -rf "$PIN_DIR" 2>/dev/null || problems+=" pins $PIN_DIR"
	rm -rf "$STATE"
	[ -z "$problems" ] || die "down: could not remove:$problems"
	return 0
}

cmd_exec() { # NODE CMD...
	local node=$1
	shift
	[ $# -gt 0 ] || die "usage: $PROG exec NODE CMD..."
	check_node "$node"
	[ -e "/run/netns/$P-$node" ] || die "lab '$P' has no netns $P-$node (is it up?)"
	export REFLEX_LAB=$P
	if [ "$node" = client ]; then
		# Join the cgroup ourselves, then exec: CMD inherits it and keeps our pid, so
		# `timeout N lab.sh exec client CMD` signals CMD itself.
		echo $$ >"$CGROUP/cgroup.procs" || die "cannot join cgroup $CGROUP"
	fi
	exec nsenter --net="/run/netns/$P-$node" -- "$@"
}

cmd_addr() { # NODE 4|6
	check_node "$1"
	case "$1:$TOPO:$2" in
	client:*:4) echo 10.11.1.2 ;;
	client:*:6) echo fd00:11:1::2 ;;
	router:*:4) echo 10.11.1.1 ;;
	router:*:6) echo fd00:11:1::1 ;;
	server:plain:4) echo 10.11.2.2 ;;
	server:plain:6) echo fd00:11:2::2 ;;
	server:router:4) echo 10.11.9.1 ;;
	server:router:6) echo fd00:11:9::1 ;;
	path*:router:4) echo "10.12.$K.2" ;;
	path*:router:6) echo "fd00:12:$K::2" ;;
	esac
}

cmd_iface() { # NODE
	case "$1:$TOPO" in
	client:*) echo "$P-cl" ;;
	router:*) echo "$P-rc" ;;
	server:plain) echo "$P-sv" ;;
	server:router) echo "$P-s1" ;;
	bottleneck:plain) echo "$P-rs" ;;
	path*:router)
		path_index "$1"
		echo "$P-r$K"
		;;
	*:plain) die "iface: no node '$1' in the plain topology (client, router, server, bottleneck)" ;;
	*) die "iface: no node '$1' in the router topology (client, router, server, pathK)" ;;
	esac
}

require_router_topo() {
	require_up
	[ "$TOPO" = router ] || die "$1: lab '$P' is not in the router topology"
}

cmd_paths() {
	local k state conf
	require_router_topo paths
	for ((k = 1; k <= NPATHS; k++)); do
		read -r state <"$STATE/path$k.state"
		read -r conf <"$STATE/link-path$k.conf"
		echo "path$k $P-r$k 10.12.$k.2 fd00:12:$k::2 $conf state=$state"
	done
}

cmd_path_args() {
	local k args=()
	require_router_topo path-args
	for ((k = 1; k <= NPATHS; k++)); do
		args+=(--path "path$k:$P-r$k:10.12.$k.2,fd00:12:$k::2")
	done
	echo "${args[*]}"
}

blackhole_rule() { # NETNS -I|-D
	in_ns "$1" "$IPT" -w 5 -t mangle "$2" FORWARD -j DROP &&
		in_ns "$1" "$(ip6t)" -w 5 -t mangle "$2" FORWARD -j DROP
}

cmd_path() { # K down|up|default
	local state
	require_router_topo path
	[ $# -eq 2 ] || die "usage: $PROG path K down|up|default"
	path_index "$1"
	read -r state <"$STATE/path$K.state"
	case "$2" in
	down)
		if [ "$state" != down ]; then
			# Inserted first in FORWARD: nothing reaches the delay line or the server.
			blackhole_rule "$P-path$K" -I
			echo down >"$STATE/path$K.state"
		fi
		;;
	up)
		if [ "$state" = down ]; then
			blackhole_rule "$P-path$K" -D
			echo up >"$STATE/path$K.state"
		fi
		;;
	default) set_default_path "$K" ;;
	*) die "path: '$2' is not down, up or default" ;;
	esac
}

cmd_set() { # LINK KEY=VALUE...
	local link=${1:-} word conf
	[ $# -ge 2 ] || die "usage: $PROG set LINK KEY=VALUE..."
	require_up
	shift
	resolve_link "$link"
	[ ! -f "$STATE/trace" ] || die "set: the bottleneck is trace-driven ($(<"$STATE/trace"))"
	read -r conf <"$STATE/link-$link.conf"
	# Later keys win in parse_link_spec: the new values override the saved ones.
	parse_link_spec "$conf $*" "set $link"
	require_tools_for_link
	case " $* " in *" rate="* | *" buffer="*) apply_rate "$link" ;; esac
	case " $* " in *" delay="*) apply_delay "$link" ;; esac
	case " $* " in *" loss="*) apply_loss "$link" ;; esac
	save_link "$link"
}

status_link() { # LINK
	local link=$1 pid counters
	load_link "$link"
	resolve_link "$link"
	if [ -f "$STATE/trace" ]; then
		echo "== link $link: trace-driven: $(<"$STATE/trace") delay=$LINK_DELAY loss=$LINK_LOSS"
		if pid=$(delay_pid "$link"); then
			kill -USR1 "$pid" 2>/dev/null && sleep 0.1
			tail -1 "$STATE/delay-$link.log" | sed 's/^/   /'
		else
			echo "-- trace-link: NOT RUNNING; its log:"
			sed 's/^/   /' "$STATE/delay-$link.log" 2>/dev/null || true
		fi
		return 0
	fi
	echo "== link $link: rate=$LINK_RATE buffer=$LINK_BUFFER delay=$LINK_DELAY loss=$LINK_LOSS"
	echo "-- tbf on $LINK_SHAPE_IF (netns $LINK_NS):"
	tc -n "$LINK_NS" -s qdisc show dev "$LINK_SHAPE_IF" | sed 's/^/   /'
	if pid=$(delay_pid "$link"); then
		echo "-- delay line: running, pid $pid, $LINK_DELAY ms added RTT (half each direction; $IPT NFQUEUE)"
		kill -USR1 "$pid" 2>/dev/null && sleep 0.1
		tail -1 "$STATE/delay-$link.log" | sed 's/^/   /'
	elif is_zero "$LINK_DELAY"; then
		echo "-- delay line: none (delay=0)"
	else
		echo "-- delay line: NOT RUNNING (delay=$LINK_DELAY); its log:"
		sed 's/^/   /' "$STATE/delay-$link.log" 2>/dev/null || true
	fi
	if counters=$(loss_counters "$link"); then
		echo "-- loss on $LINK_LOSS_IF ingress (netns $P-server): seen ${counters% *} dropped ${counters#* }"
	else
		echo "-- loss: none"
	fi
}

cmd_status() {
	local ns link
	require_up
	echo "lab '$P': topology $TOPO, client cgroup $CGROUP"
	for ns in $(lab_netns); do
		echo "== ${ns#"$P"-} (netns $ns)"
		ip -n "$ns" -br addr show | awk '$1 != "lo" || / (10|fd00):/' | sed 's/^/   /'
	done
	if [ "$TOPO" = router ]; then
		echo "== paths (router default route: path$(<"$STATE/default-path"))"
		cmd_paths | sed 's/^/   /'
	fi
	for link in $(lab_links); do
		status_link "$link"
	done
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	load_state
	case "$cmd" in
	up) [ $# -eq 0 ] || die "up takes no arguments (settings are environment variables, see --help)"; cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	exec) [ $# -ge 1 ] || die "usage: $PROG exec NODE CMD..."; cmd_exec "$@" ;;
	addr) [ $# -eq 1 ] || die "usage: $PROG addr NODE"; cmd_addr "$1" 4 ;;
	addr6) [ $# -eq 1 ] || die "usage: $PROG addr6 NODE"; cmd_addr "$1" 6 ;;
	iface) [ $# -eq 1 ] || die "usage: $PROG iface NODE"; cmd_iface "$1" ;;
	netns) [ $# -eq 1 ] || die "usage: $PROG netns NODE"; check_node "$1"; echo "$P-$1" ;;
	cgroup) echo "$CGROUP" ;;
	paths) cmd_paths ;;
	path-args) cmd_path_args ;;
	path) cmd_path "$@" ;;
	set) cmd_set "$@" ;;
	-h | --help | help) usage ;;
	"") usage >&2; exit 2 ;;
	*) warn "unknown command '$cmd' (see --help)"; exit 2 ;;
	esac
}

main "$@"
