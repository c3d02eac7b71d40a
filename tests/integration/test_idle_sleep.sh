#!/usr/bin/env bash
# With nothing to read, reflexd sleeps between steps instead of polling its rings every
# max_batch_delay (4 ms by default), and the next record wakes it:
#  - idle on a namespace of its own, it switches context at most 100 times a second
#    (its steps, window closes and status page: 20-30 a second; polling every 4 ms it
#    would be about 250, every millisecond about 850);
#  - it arms the rings before it sleeps, so the first tc record of a new flow forces
#    a wakeup (the `wakeups` counter moves), where an unarmed ring wakes the reader
#    only every flush_threshold (16) records; and reflexd reads it.
source "$(dirname "$0")/lib.sh"

NS=$LAB_PREFIX-is
CG=/sys/fs/cgroup/unified/$LAB_PREFIX-is
PIN=/sys/fs/bpf/$LAB_PREFIX-is
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"

lo_netns_up "$NS" "$CG" "$PIN"
nsenter --net=/run/netns/"$NS" "$REFLEX_BIN/reflexd" --iface lo --cgroup "$CG" --pin-dir "$PIN" --observe \
	2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "kill $RD_PID 2>/dev/null; wait $RD_PID 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not start: $(cat "$TMP/reflexd.log")"

counter() { "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json | jq ".counters.$1"; }
switches() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$RD_PID/status"; }

sleep 1 # past the 100 empty polls after which it sleeps
s0=$(switches)
sleep 2
s1=$(switches)
rate=$(((s1 - s0) / 2))
log "idle: $rate context switches a second"
expect_le "$rate" 100 "context switches a second while idle"

w0=$(counter wakeups)
t0=$(counter tc_samples)
nsenter --net=/run/netns/"$NS" bash -c 'echo reflex >/dev/udp/127.0.0.1/9' || fail "cannot send a datagram"
wait_for "[ \$(counter tc_samples) -gt $t0 ]" 5 || fail "tc sampled nothing of the datagram"
wait_for "[ \$(counter wakeups) -gt $w0 ]" 5 || fail "the first record after the sleep forced no wakeup"
log "wakeups $w0 -> $(counter wakeups), tc samples $t0 -> $(counter tc_samples)"

kill -INT "$RD_PID"
wait "$RD_PID" || fail "reflexd exited with an error: $(tail -5 "$TMP/reflexd.log")"
grep -q "tc records" "$TMP/reflexd.log" || fail "no summary: $(tail -5 "$TMP/reflexd.log")"
records=$(grep -o '[0-9]* tc records' "$TMP/reflexd.log" | cut -d' ' -f1)
expect_ge "$records" 1 "tc records reflexd read"
log "all checks passed"
