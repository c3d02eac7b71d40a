#!/usr/bin/env bash
# reflexd with --policy cwnd=dqn on the lab (cubic, 50 Mbit/s, 2 MB buffer, +20 ms):
# the int8 DQN decides every flow's cap through the same actuator as the tree: the
# decisions are logged as "dqn", the clamp shows in `ss -ti` (cwnd <= clamp,
# ssthresh = clamp), and two uploads keep at least 80 % of the bottleneck rate.
source "$(dirname "$0")/lib.sh"

[ -f "$REPO/models/dqn.reflex" ] || fail "models/dqn.reflex is missing (make models)"
lab_up LAB_DELAY_MS=20 LAB_CC=cubic
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
SERVER=$(lab addr server)
NS_CLIENT=/run/netns/$(lab netns client)

nsenter --net="$NS_CLIENT" "$REFLEX_BIN/reflexd" --iface "$(lab iface client)" --cgroup "$(lab cgroup)" \
	--pin-dir "$PIN" --policy cwnd=dqn --model dqn="$REPO/models/dqn.reflex" \
	--decision-log "$TMP/decisions.log" 2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "kill $RD_PID 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"
grep -q "dqn model $REPO/models/dqn.reflex loaded" "$TMP/reflexd.log" || fail "dqn model not loaded: $(cat "$TMP/reflexd.log")"

nsenter --net=/run/netns/"$(lab netns server)" timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.3
lab exec client timeout 30 iperf3 -c "$SERVER" -p 5201 -t 10 -P 2 -J >"$TMP/iperf.json" &
IPERF_PID=$!
sleep 6
check_clamps_in_ss "$NS_CLIENT" "$PIN" 5201
expect_ge "$CLAMPS_CHECKED" 1 "data flows under a dqn clamp"
wait "$IPERF_PID" || fail "iperf3 failed"
mbit=$(jq '.end.sum_received.bits_per_second / 1e6' "$TMP/iperf.json")
expect_ge "$mbit" 40 "throughput of two uploads under the dqn (Mbit/s, bottleneck 50)"
kill -TERM "$RD_PID"; wait "$RD_PID" || fail "reflexd exit code $?"
decisions=$(jq -s '[.[] | select(.model == "dqn" and .acted == true)] | length' "$TMP/decisions.log")
expect_ge "$decisions" 2 "decisions by the dqn"
log "example: $(jq -s -r '[.[] | select(.model == "dqn")][0].explain' "$TMP/decisions.log")"
log "all checks passed"
