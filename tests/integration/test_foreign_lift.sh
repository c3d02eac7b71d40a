#!/usr/bin/env bash
# A reflex flow against a cubic flow reflexd does not run (outside its cgroup), through
# the lab's 50 Mbit/s tbf with a 2 MB buffer, +40 ms: the cubic flow keeps the buffer
# full whatever the cap does, so
#  1. the heuristic's cap is lifted for the competing flow's queue ("cap lifted"), and
#     the lift reaches the kernel: the flow's clamp in sock_flows goes from a cap to
#     none while the flow runs;
#  2. the cap returns after the lift, the queue stays through its cuts, and the cap is
#     lifted again at once, for twice as long ("lifted again", FOREIGN_RECHECK_MS).
source "$(dirname "$0")/lib.sh"

SECS=28 # the first lift comes 5-9 s in, its return 10 s later, the second lift 2 s after
lab_up LAB_DELAY_MS=40 LAB_CC=cubic
CLIENT_IF=$(lab iface client)
CGROUP=$(lab cgroup)
SERVER=$(lab addr server)
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
NS_CLIENT=/run/netns/$(lab netns client)
NS_SERVER=/run/netns/$(lab netns server)
in_client() { nsenter --net="$NS_CLIENT" "$@"; }

in_client "$REFLEX_BIN/reflexd" --iface "$CLIENT_IF" --cgroup "$CGROUP" --pin-dir "$PIN" \
	--decision-log "$TMP/decisions.log" 2>>"$TMP/reflexd.log" &
RD_PID=$!
on_exit stop_pid "$RD_PID"
wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"

for port in 5201 5202; do
	spawn nsenter --net="$NS_SERVER" timeout $((SECS + 15)) iperf3 -s -1 -p "$port" >/dev/null 2>&1
done
sleep 0.3
# the competitor: cubic from the client's namespace, outside reflexd's cgroup
spawn bash -c "nsenter --net=$NS_CLIENT timeout $((SECS + 15)) iperf3 -c $SERVER -p 5202 -t $SECS -C cubic -J \
	>$TMP/rival.json 2>&1"
RIVAL_PID=$SPAWNED_PID
spawn bash -c "LAB_PREFIX=$LAB_PREFIX $LAB exec client timeout $((SECS + 15)) iperf3 -c $SERVER -p 5201 -t $SECS -C cubic -J \
	>$TMP/ours.json 2>&1"
OURS_PID=$SPAWNED_PID

# The clamp sockops applied to the reflex data flow (iperf3's connection to :5201 with
# the most bytes acked, not its control connection), every 0.5 s from reflexd's first
# decision on. (Waiting instead for 1 MB acked missed the first cap when the cap came
# early and small: at 4 packets behind the cubic flow's queue 1 MB takes a minute.)
clamps=()
while kill -0 "$OURS_PID" 2>/dev/null; do
	if [ -s "$TMP/decisions.log" ]; then
		clamp=$(in_client "$REFLEX_BIN/reflexctl" flows --json --pin-dir "$PIN" 2>/dev/null |
			jq '[.[] | select(.flow | test(":5201$"))] | max_by(.bytes_acked) | .cwnd_clamp // empty')
		[ -n "$clamp" ] && clamps+=("$clamp")
	fi
	sleep 0.5
done
wait "$RIVAL_PID" 2>/dev/null

log "decisions (s, flow's local port, old->new): $(jq -rs '(.[0].ts_ns) as $t0 | .[] |
	"\((.ts_ns - $t0) / 1e8 | floor / 10)s :\(.flow | capture(":(?<p>[0-9]+)-").p) \(.old)->\(.new)"' \
	"$TMP/decisions.log" 2>/dev/null | paste -sd' ')"
log "clamps seen every 0.5 s: ${clamps[*]}"
expect_eq "$(grep -c "a competing flow's): cap lifted for 10 s" "$TMP/decisions.log")" 1 \
	"first lifts for the competing flow's queue in the decision log"
expect_ge "$(grep -c "stayed through the returned cap's cuts: cap lifted again, for 20 s" "$TMP/decisions.log")" 1 \
	"lifts again after the cap returned"
# the kernel followed: a cap, then none, then a cap again, then none
changes=$(printf '%s\n' "${clamps[@]}" | awk '{on = $1 > 0} NR > 1 && on != last {n++} {last = on} END {print n + 0}')
capped_first=$(printf '%s\n' "${clamps[@]}" | head -1)
expect_ge "$capped_first" 1 "the first clamp seen (capped)"
expect_ge "$changes" 3 "changes between capped and lifted in sock_flows"
