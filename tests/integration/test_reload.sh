#!/usr/bin/env bash
# Hot reload: reflexd runs the shipped cwnd model; the file is overwritten with a
# corrupt copy (one byte flipped: the CRC no longer holds) and SIGHUP is sent. reflexd
# must refuse it with a log line naming the problem and keep deciding with the running
# model. Then a valid file is renamed over it, without a signal: reflexd notices the
# change (inotify) and takes it.
source "$(dirname "$0")/lib.sh"

[ -f "$REPO/models/cwnd.reflex" ] || fail "models/cwnd.reflex is missing (make models)"
lab_up LAB_DELAY_MS=20 LAB_CC=cubic
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
cp "$REPO/models/cwnd.reflex" "$TMP/cwnd.reflex"
SERVER=$(lab addr server)

nsenter --net=/run/netns/"$(lab netns client)" "$REFLEX_BIN/reflexd" --iface "$(lab iface client)" \
	--cgroup "$(lab cgroup)" --pin-dir "$PIN" --model cwnd="$TMP/cwnd.reflex" \
	--decision-log "$TMP/decisions.log" 2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "kill $RD_PID 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"
# The pins can appear a moment before the line is written.
wait_for "grep -q 'cwnd model $TMP/cwnd.reflex loaded' $TMP/reflexd.log" 5 || fail "model not loaded: $(cat "$TMP/reflexd.log")"

nsenter --net=/run/netns/"$(lab netns server)" timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.3
lab exec client timeout 30 iperf3 -c "$SERVER" -p 5201 -t 12 -P 2 >/dev/null &
IPERF_PID=$!
sleep 4

# Flip one byte in the middle of the file: the loader must refuse it (CRC).
size=$(stat -c %s "$TMP/cwnd.reflex")
cp "$TMP/cwnd.reflex" "$TMP/good.reflex"
printf '\xff' | dd of="$TMP/cwnd.reflex" bs=1 seek=$((size / 2)) conv=notrunc status=none
cmp -s "$TMP/cwnd.reflex" "$TMP/good.reflex" && fail "the corruption did not change the file"
kill -HUP "$RD_PID"
wait_for "grep -q 'cwnd model $TMP/cwnd.reflex refused' $TMP/reflexd.log" 5 || fail "corrupt model not refused: $(cat "$TMP/reflexd.log")"
log "refused: $(grep 'refused' "$TMP/reflexd.log" | tail -1)"
lines_before=$(wc -l <"$TMP/decisions.log")
sleep 4
kill -0 "$RD_PID" || fail "reflexd died after the corrupt reload"
in_force=$(nsenter --net=/run/netns/"$(lab netns client)" "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" |
	jq '[.[] | select(.cwnd_clamp > 0)] | length')
expect_ge "$in_force" 1 "flows still capped by the running model after the refused reload"
expect_eq "$(jq -s '[.[] | select(.model != "cwnd-tree")] | length' "$TMP/decisions.log")" 0 "decisions by anything but the tree"
log "decisions before/after the refused reload: $lines_before / $(wc -l <"$TMP/decisions.log")"

cp "$TMP/good.reflex" "$TMP/next.reflex"
mv "$TMP/next.reflex" "$TMP/cwnd.reflex"
wait_for "[ \$(grep -c 'cwnd model $TMP/cwnd.reflex loaded' $TMP/reflexd.log) -ge 2 ]" 5 || fail "valid model not reloaded: $(cat "$TMP/reflexd.log")"
wait "$IPERF_PID"
kill -TERM "$RD_PID"; wait "$RD_PID" || fail "reflexd exit code $?"
log "all checks passed"
