#!/usr/bin/env bash
# sock_flows (an LRU hash sized by --max-flows) evicts silently when full; the
# sock_flow_evicted counter counts it (issue 13). With --max-flows 64: 16 concurrent
# loopback connections (32 sockets of the cgroup) evict nothing; 100 (200 sockets)
# evict at least the 136 entries that cannot fit. Read through `reflexctl status` and
# /metrics while reflexd runs. tc_flows (sized alike) evicts too: tc_flow_evicted
# shows it under the same counter scheme (at least the 100 connections' 4-tuples that
# cannot fit, whether tc keys both directions as one flow or not).
source "$(dirname "$0")/lib.sh"

MAX_FLOWS=64
NS=$LAB_PREFIX-ev
CG=/sys/fs/cgroup/unified/$LAB_PREFIX-ev
PIN=/sys/fs/bpf/$LAB_PREFIX-ev
METRICS_PORT=9466
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"

lo_netns_up "$NS" "$CG" "$PIN"

# N connections to a listener of the same process, all open at once; each end sends
# for a second so its RTT callbacks sample, then all close.
cat >"$TMP/conns.py" <<'PYEOF'
import socket, sys, time
n = int(sys.argv[1])
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(n + 8)
pairs = []
for _ in range(n):
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    pairs.append((c, s))
for _ in range(50):
    for c, s in pairs:
        c.sendall(b"x" * 1000)
        s.recv(65536)
        s.sendall(b"y" * 1000)
        c.recv(65536)
    time.sleep(0.02)
for c, s in pairs:
    c.close()
    s.close()
PYEOF
connections() { # N: N concurrent connections from a process in $CG
	bash -c "echo \$\$ >$CG/cgroup.procs; exec nsenter --net=/run/netns/$NS python3 $TMP/conns.py $1" ||
		fail "the $1 connections failed"
}
evicted_status() { # [COUNTER]
	"$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json | jq -r ".counters.${1:-sock_flow_evicted}"
}
evicted_metrics() { # [COUNTER]
	nsenter --net=/run/netns/"$NS" curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk -v series="reflex_bpf_events_total{counter=\"${1:-sock_flow_evicted}\"}" '$1 == series {print $2}'
}

nsenter --net=/run/netns/"$NS" "$REFLEX_BIN/reflexd" --iface lo --cgroup "$CG" --pin-dir "$PIN" --observe \
	--max-flows "$MAX_FLOWS" --metrics-listen "127.0.0.1:$METRICS_PORT" 2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "kill $RD_PID 2>/dev/null; wait $RD_PID 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ] && [ -n \"\$(evicted_metrics)\" ]" 20 ||
	fail "reflexd did not start: $(cat "$TMP/reflexd.log")"

log "16 connections (32 sockets) in a sock_flows of $MAX_FLOWS: nothing evicted"
connections 16
expect_eq "$(evicted_status)" 0 "sock_flow_evicted (reflexctl status) under the limit"
expect_eq "$(evicted_metrics)" 0 "sock_flow_evicted (/metrics) under the limit"

log "100 connections (200 sockets) in a sock_flows of $MAX_FLOWS: at least 136 evicted"
connections 100
excess=$((200 - MAX_FLOWS))
expect_ge "$(evicted_status)" "$excess" "sock_flow_evicted (reflexctl status) over the limit, excess $excess"
# /metrics may serve the previous second's counters.
wait_for "[ \"\$(evicted_metrics)\" -ge $excess ]" 5
expect_ge "$(evicted_metrics)" "$excess" "sock_flow_evicted (/metrics) over the limit, excess $excess"
log "sock_flow_evicted=$(evicted_status) for an excess of $excess; sock_flows entries now:" \
	"$("$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json | jq -r .maps.sock_flows.entries)"
expect_eq "$("$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json | jq -r .counters.sock_flow_fail)" 0 \
	"sock_flow_fail (an LRU insert evicts rather than fails)"
tc_excess=$((100 - MAX_FLOWS))
expect_ge "$(evicted_status tc_flow_evicted)" "$tc_excess" "tc_flow_evicted (reflexctl status), excess $tc_excess"
wait_for "[ \"\$(evicted_metrics tc_flow_evicted)\" -ge $tc_excess ]" 5
expect_ge "$(evicted_metrics tc_flow_evicted)" "$tc_excess" "tc_flow_evicted (/metrics), excess $tc_excess"
"$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" | grep -q " tc_flow_evicted=[1-9]" ||
	fail "reflexctl status (text) has no tc_flow_evicted: $("$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" | grep counters)"
log "tc_flow_evicted=$(evicted_status tc_flow_evicted), tc_flow_new=$(evicted_status tc_flow_new)"

kill -TERM "$RD_PID"; wait "$RD_PID"
grep -q "sock_flow_evicted=[1-9]" "$TMP/reflexd.log" ||
	fail "reflexd's stop summary has no sock_flow_evicted: $(grep 'reflexd: ran' "$TMP/reflexd.log")"
grep -q "tc_flow_evicted=[1-9]" "$TMP/reflexd.log" ||
	fail "reflexd's stop summary has no tc_flow_evicted: $(grep 'reflexd: ran' "$TMP/reflexd.log")"
rmdir "$PIN" 2>/dev/null
rmdir "$CG" || fail "cannot remove $CG"
ip netns del "$NS"
leftovers_check "$LAB_PREFIX"
log "all checks passed"
