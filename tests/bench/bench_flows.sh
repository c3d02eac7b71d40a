#!/usr/bin/env bash
# reflexd's memory with real flows: one reflexd (--max-flows = the socket count,
# heuristic caps, so every socket also has control state) watches a cgroup whose
# processes hold N/2 loopback connections (N sockets, each sending 100 bytes every few
# seconds) in a namespace of its own. Reported for each count: the flows reflexd
# tracks (reflex_flows_tracked on /metrics), flows refused (its exit line), and its RSS against
# the same reflexd idle in the same run (0 flows), per flow. With REFLEX_BASE_BIN=DIR
# the reflexd of DIR is measured the same way right after, for a before/after.
# Usage: tests/bench/bench_flows.sh [SOCKETS...]   (default 10000 100000)
set -u
cd "$(dirname "$0")/../.."
BIN=${REFLEX_BIN:-build}
BASE_BIN=${REFLEX_BASE_BIN:-}
COUNTS=("$@")
[ ${#COUNTS[@]} -eq 0 ] && COUNTS=(10000 100000)
P=rf$$
NS=$P
CG=/sys/fs/cgroup/unified/$P
PIN=/sys/fs/bpf/$P
PORT=9741
TMP=$(mktemp -d)
RD_PID= GEN_PID=

cleanup() {
	[ -n "$GEN_PID" ] && kill $GEN_PID 2>/dev/null && wait $GEN_PID 2>/dev/null
	[ -n "$RD_PID" ] && kill "$RD_PID" 2>/dev/null && wait "$RD_PID" 2>/dev/null
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	"$BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

metric() { # NAME
	nsenter --net=/run/netns/"$NS" curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

# One count with one reflexd: RSS idle, then with the flows. Prints a line.
measure() { # BIN SOCKETS
	local bin=$1 sockets=$2 idle_kb busy_kb peak_kb tracked refused
	"$bin/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	nsenter --net=/run/netns/"$NS" "$bin/reflexd" --iface lo --cgroup "$CG" --pin-dir "$PIN" \
		--max-flows "$sockets" --metrics-listen "127.0.0.1:$PORT" 2>"$TMP/reflexd.log" &
	RD_PID=$!
	for _ in $(seq 50); do [ -n "$(metric reflex_flows_tracked)" ] && break; sleep 0.2; done
	sleep 2
	idle_kb=$(rss_kb "$RD_PID")
	rm -f "$TMP/stop"
	# A process holds at most 10,000 sockets (5,000 connections): the open-file limit.
	local procs=$(((sockets + 9999) / 10000)) p
	GEN_PID=
	for p in $(seq "$procs"); do
		bash -c "echo \$\$ >$CG/cgroup.procs; \
			exec nsenter --net=/run/netns/$NS python3 tests/bench/many_flows.py $((sockets / 2 / procs)) 3 $TMP/stop" \
			>"$TMP/gen.$p.out" 2>"$TMP/gen.$p.err" &
		GEN_PID="$GEN_PID $!"
	done
	until [ "$(cat "$TMP"/gen.*.out 2>/dev/null | grep -c '^open')" -eq "$procs" ]; do
		for p in $GEN_PID; do
			kill -0 "$p" 2>/dev/null || { echo "  the connections failed: $(tail -qn 3 "$TMP"/gen.*.err)"; return 1; }
		done
		sleep 1
	done
	# Until every socket is a tracked flow (at most 30 s): the most flows tracked, and
	# reflexd's RSS then.
	local now
	tracked=0 busy_kb=0
	for _ in $(seq 30); do
		sleep 1
		now=$(metric reflex_flows_tracked)
		[ "${now:-0}" -ge "$tracked" ] && { tracked=$now; busy_kb=$(rss_kb "$RD_PID"); }
		[ "$tracked" -ge "$sockets" ] && break
	done
	# A flow's control state comes with its first decision, a window or two after its
	# first record: the RSS once every flow has had its windows.
	sleep 3
	now=$(metric reflex_flows_tracked)
	[ "${now:-0}" -ge "$tracked" ] && { tracked=$now; busy_kb=$(rss_kb "$RD_PID"); }
	peak_kb=$(awk '/^VmHWM:/ {print $2}' /proc/"$RD_PID"/status)
	touch "$TMP/stop"
	wait $GEN_PID 2>/dev/null
	GEN_PID=
	kill "$RD_PID" && wait "$RD_PID" 2>/dev/null
	RD_PID=
	refused=$(grep -o 'flows_refused=[0-9]*' "$TMP/reflexd.log" | tail -1 | cut -d= -f2)
	awk -v b="$bin" -v s="$sockets" -v t="$tracked" -v r="${refused:-?}" -v i="$idle_kb" -v k="$busy_kb" -v h="$peak_kb" 'BEGIN {
		printf "  %-16s %6d sockets: %6d flows tracked (%s refused), RSS idle %5.1f MiB, with the flows %5.1f MiB (%.1f MB; peak %.1f MB), %4.0f bytes a tracked flow\n",
			b, s, t, r, i / 1024, k / 1024, k * 1024 / 1e6, h * 1024 / 1e6, (t > 0 ? (k - i) * 1024 / t : 0) }'
}

ip netns add "$NS" || exit 1
nsenter --net=/run/netns/"$NS" ip link set lo up
nsenter --net=/run/netns/"$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
mkdir -p "$CG" || exit 1
echo "reflexd RSS with N real loopback sockets of its cgroup (--max-flows N, heuristic caps)"
status=0
for n in "${COUNTS[@]}"; do
	measure "$BIN" "$n" || status=1
	[ -n "$BASE_BIN" ] && { measure "$BASE_BIN" "$n" || status=1; }
done
exit $status
