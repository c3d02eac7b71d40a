#!/usr/bin/env bash
# A churn soak through the lab: 10,000 short TCP connections per minute plus 100 long
# ones for SOAK_SECONDS (60 here; `make soak` runs 600), with reflexd controlling the
# client's cgroup. Checks: reflexd's RSS flat after warm-up (<= 5 % growth), the flow
# maps back to the live count, no refusal or failure counter growing, and every clamp
# still in force when reflexd stops (the long flows are idle by then) lifted.
source "$(dirname "$0")/lib.sh"

SOAK_SECONDS=${SOAK_SECONDS:-60}
SHORT_PER_S=$((10000 / 60))
LONG_FLOWS=100
PORT=5301
lab_up LAB_CC=cubic
CLIENT_IF=$(lab iface client)
SERVER=$(lab addr server)
PIN=/sys/fs/bpf/$LAB_PREFIX-soak
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
NS_CLIENT=/run/netns/$(lab netns client)
SOAK=$REPO/tests/integration/soak

nsenter --net=/run/netns/"$(lab netns server)" python3 "$SOAK/soak_server.py" "$PORT" &
on_exit "kill $! 2>/dev/null; true"
# ASan's quarantine would hold freed memory and pass for a leak in RSS.
ASAN_OPTIONS=${ASAN_OPTIONS:-}:quarantine_size_mb=1 nsenter --net="$NS_CLIENT" "$REFLEX_BIN/reflexd" \
	--iface "$CLIENT_IF" --cgroup "$(lab cgroup)" --pin-dir "$PIN" --decision-log "$TMP/decisions.log" \
	2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "kill -9 $RD_PID 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"

lab exec client python3 "$SOAK/soak_load.py" "$SERVER" "$PORT" "$SOAK_SECONDS" "$SHORT_PER_S" "$LONG_FLOWS" \
	"$TMP/paused" >"$TMP/load.out" 2>&1 &
LOAD_PID=$!
on_exit "kill $LOAD_PID 2>/dev/null; true"

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$RD_PID/status"; }
warm_at=$((SOAK_SECONDS / 3))
samples=()
for ((t = 0; t < SOAK_SECONDS; t += 5)); do
	sleep 5
	kill -0 "$RD_PID" || fail "reflexd died under the soak: $(tail -5 "$TMP/reflexd.log")"
	samples+=("$t:$(rss)")
	[ "$t" -lt "$warm_at" ] || [ -n "${rss_warm:-}" ] || rss_warm=$(rss)
done
wait_for "[ -e $TMP/paused ]" 30 || fail "the load did not finish: $(cat "$TMP/load.out")"
rss_end=$(rss)
log "RSS (s:kB): ${samples[*]}"
log "load: $(cat "$TMP/load.out")"
short=$(sed -n 's/^short=\([0-9]*\).*/\1/p' "$TMP/load.out")
expect_ge "$short" $((SHORT_PER_S * SOAK_SECONDS * 8 / 10)) "short connections made (of $((SHORT_PER_S * SOAK_SECONDS)))"
expect_le "$rss_end" $((rss_warm * 105 / 100)) "reflexd RSS at the end (kB; ${rss_warm} after warm-up, +5 % allowed)"

# Idle once their send queues drained: no more ACKs, so only the iterator at stop can
# lift their clamps.
wait_for "[ \$(nsenter --net=$NS_CLIENT ss -tnH state established '( dport = :$PORT )' | awk '\$2 > 0' | wc -l) -eq 0 ]" 30 ||
	fail "the long flows did not drain"
clamped=$(nsenter --net="$NS_CLIENT" "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" |
	jq '[.[] | select((.cwnd_clamp // 0) > 0)] | length')
live=$(nsenter --net="$NS_CLIENT" ss -tnH state established "( dport = :$PORT )" | wc -l)
socks=$(bpftool -j map dump pinned "$PIN/sock_flows" | jq length)
expect_eq "$live" "$LONG_FLOWS" "established connections once the short load ended"
expect_le "$socks" $((live + 5)) "sock_flows entries against the $live live connections"
kill -TERM "$RD_PID"; wait "$RD_PID"
summary=$(grep "reflexd: ran" "$TMP/reflexd.log") || fail "no summary: $(tail -5 "$TMP/reflexd.log")"
for counter in sock_reserve_fail tc_reserve_fail clamp_fail tc_flow_fail sock_flow_fail sock_flow_evicted flows_refused; do
	expect_eq "$(sed -n "s/.*[ ,]$counter=\([0-9]*\).*/\1/p" <<<"$summary")" 0 "$counter"
done
lifted=$(sed -n 's/.*lifted the clamp of \([0-9]*\) idle flow.*/\1/p' "$TMP/reflexd.log")
expect_eq "${lifted:-0}" "$clamped" "clamps lifted at stop (clamped idle flows before it: $clamped)"
kill "$LOAD_PID"; wait "$LOAD_PID" 2>/dev/null
log "all checks passed"
