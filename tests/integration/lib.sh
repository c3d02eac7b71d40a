# shellcheck shell=bash
# Shared by every integration test: `. "$(dirname "$0")/lib.sh"` at the top.
#
# Gives each test its own lab (LAB_PREFIX=t<pid>), a cleanup stack that runs even when the
# test fails or is killed, assertions that print both values, and a leftovers check.
#
#   on_exit CMD [ARG...]        push a cleanup step (one argument: a string to eval;
#                               several: a command and its arguments, quoted as given)
#   fail MSG                    print "FAIL: MSG" and exit 1 (cleanups run)
#   log MSG                     print "-- MSG"
#   expect_eq ACTUAL EXPECTED [WHAT]              string equality
#   expect_le ACTUAL LIMIT [WHAT]                 numeric ACTUAL <= LIMIT
#   expect_ge ACTUAL LIMIT [WHAT]                 numeric ACTUAL >= LIMIT
#   expect_within_pct ACTUAL EXPECTED PCT [WHAT]  |ACTUAL - EXPECTED| <= PCT % of EXPECTED
#   wait_for CMD TIMEOUT_S      poll the string CMD (eval'd) every 0.1 s until it succeeds;
#                               returns 1 on timeout (use: wait_for ... || fail ...)
#   lab [ARGS...]               scripts/lab/lab.sh with this test's LAB_PREFIX
#   lab_up [VAR=VALUE...]       lab.sh up with these settings; lab_down is pushed on the
#                               cleanup stack once
#   lab_down                    lab.sh down (idempotent)
#   spawn CMD [ARG...]          start CMD in the background, SPAWNED_PID=its pid, and push
#                               a cleanup that stops it (TERM, then KILL)
#   stop_pid PID                TERM, wait up to 3 s, KILL
#   median                      median of the numbers on stdin (one per line)
#   ping_rtts NODE ADDR COUNT   run ping from NODE, print each reply's RTT in ms
#   link_stat NODE IFACE FIELD  an interface counter in NODE's netns; FIELD as in
#                               `ip -s -j link`: tx.packets, rx.bytes, tx.dropped, ...
#   qdisc_stat NODE IFACE FIELD a root qdisc counter (`tc -s -j qdisc`): packets, bytes,
#                               drops, overlimits, backlog, qlen
#   require_bin NAME            fail unless $REFLEX_BIN/NAME is executable
#   leftovers_check PREFIX      fail if any netns, cgroup, pin under /sys/fs/bpf, lab state,
#                               default decision log or process of lab PREFIX is still there
#
# Variables: REPO, LAB (path of lab.sh), LAB_PREFIX, REFLEX_BIN (default
# $REPO/build/san), REFLEX_BPF (default $REPO/build/bpf), TEST_NAME.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$REPO/scripts/lab/lab.sh
TEST_NAME=$(basename "$0" .sh)
REFLEX_BIN=${REFLEX_BIN:-$REPO/build/san}
REFLEX_BPF=${REFLEX_BPF:-$REPO/build/bpf}
# Always our own prefix: never touch a lab somebody else (or another test) runs.
LAB_PREFIX=t$$
export REFLEX_BIN REFLEX_BPF LAB_PREFIX

_cleanup_stack=()
_lab_down_pushed=0
# Inode numbers of every netns this test's labs had: a process left in one is a leak
# even after the netns lost its name.
_lab_netns_inodes=()

log() { printf -- '-- %s\n' "$*"; }

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

on_exit() {
	if [ $# -eq 1 ]; then
		_cleanup_stack+=("$1")
	else
		_cleanup_stack+=("$(printf '%q ' "$@")")
	fi
}

_run_cleanups() {
	local i
	for ((i = ${#_cleanup_stack[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_stack[i]}" || printf 'cleanup step failed: %s\n' "${_cleanup_stack[i]}" >&2
	done
	_cleanup_stack=()
}

_on_exit_trap() {
	local status=$?
	trap - EXIT INT TERM
	_run_cleanups
	exit "$status"
}

# A signal becomes an exit, which runs the EXIT trap, which runs the cleanups once.
trap _on_exit_trap EXIT
trap 'printf "%s: interrupted\n" "$TEST_NAME" >&2; exit 130' INT
trap 'printf "%s: terminated\n" "$TEST_NAME" >&2; exit 143' TERM

# A network namespace of the test's own with lo up, a cgroup, and reflexd's pin
# directory, all removed on exit (with what a reflexd left there).
lo_netns_up() { # NETNS CGROUP PIN_DIR
	ip netns add "$1" || fail "cannot create netns $1"
	on_exit "ip netns del $1 2>/dev/null; true"
	nsenter --net=/run/netns/"$1" ip link set lo up
	mkdir "$2" || fail "cannot create $2"
	on_exit "rmdir $2 2>/dev/null; true"
	on_exit "$REFLEX_BIN/reflexd --cleanup --pin-dir $3 >/dev/null 2>&1; rmdir $3 2>/dev/null; true"
}

_is_number() { [[ $1 =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }

_numeric_check() { # OP ACTUAL LIMIT WHAT
	_is_number "$2" || fail "$4: actual '$2' is not a number"
	_is_number "$3" || fail "$4: limit '$3' is not a number"
	awk -v a="$2" -v b="$3" -v op="$1" 'BEGIN {
		if (op == "le") exit !(a + 0 <= b + 0); else exit !(a + 0 >= b + 0) }'
}

expect_eq() { # ACTUAL EXPECTED [WHAT]
	local what=${3:-value}
	[ "$1" = "$2" ] || fail "$what: expected '$2', got '$1'"
	log "ok: $what = '$1'"
}

expect_le() { # ACTUAL LIMIT [WHAT]
	local what=${3:-value}
	_numeric_check le "$1" "$2" "$what" || fail "$what: expected <= $2, got $1"
	log "ok: $what = $1 <= $2"
}

expect_ge() { # ACTUAL LIMIT [WHAT]
	local what=${3:-value}
	_numeric_check ge "$1" "$2" "$what" || fail "$what: expected >= $2, got $1"
	log "ok: $what = $1 >= $2"
}

expect_within_pct() { # ACTUAL EXPECTED PCT [WHAT]
	local what=${4:-value}
	_is_number "$1" || fail "$what: actual '$1' is not a number"
	_is_number "$2" || fail "$what: expected '$2' is not a number"
	_is_number "$3" || fail "$what: tolerance '$3' is not a number"
	awk -v a="$1" -v e="$2" -v p="$3" 'BEGIN {
		d = a - e; if (d < 0) d = -d; exit !(d <= (e < 0 ? -e : e) * p / 100) }' ||
		fail "$what: expected $2 +/- $3 %, got $1"
	log "ok: $what = $1 (expected $2 +/- $3 %)"
}

wait_for() { # CMD TIMEOUT_S
	local cmd=$1 timeout_us deadline
	timeout_us=$(awk -v t="$2" 'BEGIN { printf "%d", t * 1000000 }')
	deadline=$((${EPOCHREALTIME/./} + timeout_us))
	while ! eval "$cmd" >/dev/null 2>&1; do
		[ "${EPOCHREALTIME/./}" -lt "$deadline" ] || return 1
		sleep 0.1
	done
	return 0
}

lab() { "$LAB" "$@"; }

_record_lab_netns() {
	local ns inode
	for ns in /run/netns/"$LAB_PREFIX"-*; do
		[ -e "$ns" ] || continue
		inode=$(stat -L -c %i "$ns" 2>/dev/null) && _lab_netns_inodes+=("$inode")
	done
}

lab_up() { # [VAR=VALUE...]
	if [ "$_lab_down_pushed" = 0 ]; then
		on_exit lab_down
		_lab_down_pushed=1
	fi
	env "$@" timeout 60 "$LAB" up || fail "lab.sh up ($*) failed"
	_record_lab_netns
}

lab_down() {
	timeout 30 "$LAB" down
}

stop_pid() { # PID
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 30; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# A router test's reflexd (its pid in REFLEXD_PID), stopped.
REFLEXD_PID=
stop_reflexd() {
	[ -n "$REFLEXD_PID" ] || return 0
	stop_pid "$REFLEXD_PID"
	REFLEXD_PID=
}
# On any exit of a router test: stop it, and remove what a killed one left (rules live in
# the lab's namespace ROUTER_NS, pins under PIN and state files outside it).
stop_router_and_clean() {
	stop_reflexd
	nsenter --net="$ROUTER_NS" "$REFLEX_BIN/reflexd" --lan "$LAN_IF" --pin-dir "$PIN" --cleanup >/dev/null 2>&1
	return 0
}

spawn() { # CMD [ARG...]
	"$@" &
	SPAWNED_PID=$!
	on_exit stop_pid "$SPAWNED_PID"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ping_rtts() { # NODE ADDR COUNT
	timeout $(($3 + 10)) "$LAB" exec "$1" ping -n -c "$3" -i 0.1 -W 2 "$2" |
		sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p'
}

link_stat() { # NODE IFACE FIELD
	"$LAB" exec "$1" ip -s -j link show dev "$2" | jq -er ".[0].stats64.$3"
}

qdisc_stat() { # NODE IFACE FIELD
	"$LAB" exec "$1" tc -s -j qdisc show dev "$2" | jq -er "[.[] | select(.root)][0].$3"
}

# For each flow to PORT on NODE's side with over 1 MB acked and a clamp: ss -ti cwnd
# <= the clamp in reflexctl flows and ssthresh == it (TCP_BPF_SNDCWND_CLAMP sets
# both). Sets CLAMPS_CHECKED to how many flows it checked.
check_clamps_in_ss() { # NETNS_PATH PIN PORT
	local ns=$1 pin=$2 port=$3 flows i p try clamp ss_line cwnd ssthresh
	CLAMPS_CHECKED=0
	flows=$(nsenter --net="$ns" "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$pin" |
		jq -c "[.[] | select(.flow | test(\":$port\$\")) | select(.bytes_acked > 1000000)]")
	for i in $(echo "$flows" | jq 'keys[]'); do
		p=$(echo "$flows" | jq -r ".[$i].flow" | sed -E 's/^tcp:[^:]+:([0-9]+)-.*/\1/')
		# A new decision can land between the map read and ss: up to 3 tries.
		for try in 1 2 3; do
			clamp=$(nsenter --net="$ns" "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$pin" |
				jq "[.[] | select(.flow | test(\":$p-\")) | .cwnd_clamp] | .[0]")
			ss_line=$(nsenter --net="$ns" ss -tin state established "( sport = :$p )" | tail -1)
			cwnd=$(echo "$ss_line" | grep -oE '\bcwnd:[0-9]+' | cut -d: -f2)
			ssthresh=$(echo "$ss_line" | grep -oE '\bssthresh:[0-9]+' | cut -d: -f2)
			[ "$clamp" -gt 0 ] && [ -n "$cwnd" ] && [ "$cwnd" -le "$clamp" ] && [ "$ssthresh" = "$clamp" ] && break
		done
		[ "$clamp" -gt 0 ] || continue
		log "flow :$p clamp $clamp, ss cwnd $cwnd ssthresh $ssthresh (try $try)"
		expect_le "$cwnd" "$clamp" "ss -ti cwnd of :$p vs its clamp"
		expect_eq "$ssthresh" "$clamp" "ss -ti ssthresh of :$p"
		CLAMPS_CHECKED=$((CLAMPS_CHECKED + 1))
	done
}

require_bin() { # NAME
	[ -x "$REFLEX_BIN/$1" ] || fail "no $REFLEX_BIN/$1: build it first (make SAN=1, or set REFLEX_BIN)"
}

leftovers_check() { # PREFIX
	local prefix=$1 found=() path pid env_file inode ns_inode
	[[ $prefix =~ ^[A-Za-z0-9_]+$ ]] || fail "leftovers_check: bad prefix '$prefix'"
	for path in /run/netns/"$prefix"-*; do
		[ -e "$path" ] && found+=("netns ${path##*/}")
	done
	for path in /sys/fs/cgroup/unified/"$prefix"-* /sys/fs/cgroup/"$prefix"-*; do
		[ -e "$path" ] && found+=("cgroup $path")
	done
	while IFS= read -r path; do
		found+=("pin $path")
	done < <(find /sys/fs/bpf -maxdepth 3 \( -name "$prefix-*" -o -name "$prefix" \) 2>/dev/null)
	[ -e "/run/reflex-lab/$prefix" ] && found+=("lab state /run/reflex-lab/$prefix")
	# reflexd's default decision log for a pin directory under /sys/fs/bpf
	for path in /run/reflex/_sys_fs_bpf_"$prefix"-*.decisions; do
		[ -e "$path" ] && found+=("decision log $path")
	done
	# Processes: started through lab.sh (REFLEX_LAB in their environment) or still in
	# one of the lab's namespaces (which outlives its name while a process is in it).
	while IFS= read -r env_file; do
		pid=${env_file#/proc/}
		pid=${pid%/environ}
		found+=("process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))")
	done < <(grep -lzx "REFLEX_LAB=$prefix" /proc/[0-9]*/environ 2>/dev/null)
	# Namespace inode numbers are reused as soon as a namespace dies, often by the next
	# lab another test brings up: only an unnamed namespace can be our lingering one.
	if [ ${#_lab_netns_inodes[@]} -gt 0 ]; then
		local named
		named=" $(stat -L -c %i /run/netns/* 2>/dev/null | paste -sd' ' -) "
		while read -r ns_inode path; do
			[[ $named == *" $ns_inode "* ]] && continue
			for inode in "${_lab_netns_inodes[@]}"; do
				[ "$ns_inode" = "$inode" ] || continue
				pid=${path#/proc/}
				pid=${pid%/ns/net}
				found+=("process $pid in a netns of the lab ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))")
				break
			done
		done < <(stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null)
	fi
	if [ ${#found[@]} -gt 0 ]; then
		printf 'leftover: %s\n' "${found[@]}" >&2
		fail "lab '$prefix' left ${#found[@]} thing(s) behind"
	fi
	# Those namespaces are gone for good; their numbers may now belong to anybody.
	_lab_netns_inodes=()
	log "ok: nothing of lab '$prefix' left"
}
