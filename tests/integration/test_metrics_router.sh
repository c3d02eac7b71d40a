#!/usr/bin/env bash
# Prometheus metrics of an edge router: reflexd --lan/--path with --metrics-listen on
# the router namespace's loopback while an upload crosses it. The scrape must pass
# `promtool check metrics` and show, per path, the link up and bytes sent, and per
# class and path the bandit's pulls and mean reward; the router's counters and a
# path's bytes grow between two scrapes. reflexctl status reports the router.
source "$(dirname "$0")/lib.sh"

require_bin reflexd
for tool in promtool curl; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
lab_up LAB_TOPO=router LAB_PATHS=2 LAB_PATH1="rate=50mbit delay=10" LAB_PATH2="rate=20mbit delay=20"
PIN=/sys/fs/bpf/$LAB_PREFIX-mxr
TMP=$(mktemp -d)
NS=/run/netns/$(lab netns router)
# In the router's namespace: --cleanup refuses to undo routes from another one.
on_exit "rm -rf $TMP; nsenter --net=$NS $REFLEX_BIN/reflexd --cleanup --lan x --pin-dir $PIN >/dev/null 2>&1; true"
PORT=9464
read -ra PATH_ARGS <<<"$(lab path-args)"

nsenter --net="$NS" "$REFLEX_BIN/reflexd" --lan "$(lab iface router)" "${PATH_ARGS[@]}" --pin-dir "$PIN" \
	--metrics-listen "$PORT" 2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "stop_pid $RD_PID"
wait_for "[ -e $PIN/router_decisions ]" 10 || fail "reflexd did not start: $(cat "$TMP/reflexd.log")"
scrape() { nsenter --net="$NS" curl -sf "http://127.0.0.1:$PORT/metrics"; }
wait_for "scrape >/dev/null" 5 || fail "no metrics page: $(cat "$TMP/reflexd.log")"

spawn "$LAB" exec server timeout 30 iperf3 -s -1 -p 5201 >/dev/null
sleep 0.3
spawn "$LAB" exec client timeout 30 iperf3 -c "$(lab addr server)" -p 5201 -t 8 -P 2 >/dev/null
sleep 4
scrape >"$TMP/first.txt" || fail "scrape failed"
sleep 3
scrape >"$TMP/second.txt" || fail "scrape failed"
promtool check metrics <"$TMP/second.txt" >"$TMP/promtool.txt" 2>&1 || fail "promtool: $(cat "$TMP/promtool.txt")"
expect_eq "$(wc -c <"$TMP/promtool.txt")" 0 "promtool check metrics findings"
value() { # FILE SERIES
	awk -v s="$2" '$1 == s { print $2 }' "$1"
}
for p in path1 path2; do
	expect_eq "$(value "$TMP/second.txt" "reflex_router_path_up{path=\"$p\"}")" 1 "$p up"
done
tx1=$(awk '/^reflex_router_path_transmit_bytes_total/ { s += $2 } END { print s + 0 }' "$TMP/first.txt")
tx2=$(awk '/^reflex_router_path_transmit_bytes_total/ { s += $2 } END { print s + 0 }' "$TMP/second.txt")
expect_ge "$((tx2 - tx1))" 1000000 "bytes sent onto the uplinks between two scrapes 3 s apart"
p1=$(value "$TMP/first.txt" 'reflex_router_bpf_events_total{counter="packets"}')
p2=$(value "$TMP/second.txt" 'reflex_router_bpf_events_total{counter="packets"}')
expect_ge "$((p2 - p1))" 100 "router packets counted between two scrapes"
pulls=$(awk '/^reflex_router_pulls_total/ { s += $2 } END { print s + 0 }' "$TMP/second.txt")
expect_ge "$pulls" 1 "bandit pulls over all classes and paths"
rewards=$(awk '/^reflex_router_mean_reward/ && $2 != "NaN" { n++ } END { print n + 0 }' "$TMP/second.txt")
expect_ge "$rewards" 1 "class/path arms with a mean reward"
grep '^reflex_router_\(pulls_total\|mean_reward\|flows\){' "$TMP/second.txt" | grep -v ' 0$\| NaN$' | sed 's/^/   /'

# reflexctl status of a router: healthy with both paths up; exit 1 once it stopped
status=$("$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json) || fail "status exit $?: $status"
expect_eq "$(echo "$status" | jq -r '[.healthy, .mode, .paths_up, .pid] | join(",")')" "true,router,2,$RD_PID" \
	"status healthy, mode, paths up, pid"
kill -TERM "$RD_PID"
rd_exit=0
wait "$RD_PID" || rd_exit=$?
expect_eq "$rd_exit" 0 "reflexd's exit code on SIGTERM (a sanitizer report exits non-zero)"
"$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" >"$TMP/status.txt" 2>&1
expect_eq "$?" 1 "reflexctl status exit code after the router stopped"
log "all checks passed"
