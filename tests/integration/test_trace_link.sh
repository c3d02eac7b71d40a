#!/usr/bin/env bash
# The trace-driven lab link (scripts/lab/trace-link.c through lab.sh LAB_TRACE*): how
# faithfully it delivers a mahimahi trace's capacity to a saturating TCP flow, in both
# directions.
#
# Fidelity is measured two ways, and stated in the log:
#  - per 1 s bin, the bytes the link delivered against the bytes the trace offered (the
#    link's own stats); a bin counts as faithful within 10 %. The flow saturates the link
#    (cubic into a 4 MB buffer) except where TCP itself leaves it idle (slow start, the
#    ramp out of an outage), so at least 80 % of the bins must be faithful and the total
#    over them within 0.9..1.02 of the offer;
#  - independently of the link's accounting, the bytes the receiver's interface counted
#    against the link's delivered total (within 5 %: Ethernet headers are 1 %);
#  - a synthetic on/off trace (2 packets per ms for 50 ms, then nothing for 50 ms) at
#    10 ms bins: the off bins deliver nothing, the on bins at most the trace's 20 packets
#    and at least 75 % of them (a busy machine can starve the sender); and seeded
#    1 % random loss drops 0.5..1.5 % of the packets (~6000 packets: 60 +/- 8 expected
#    drops, the window is about 4 sigma each way). The on/off bins are counted by
#    opportunity time, so they show the schedule, not the scheduler's jitter.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

TRACE=${REFLEX_TRACES:-/work/shared/traces}/mahimahi-ATT-LTE-driving-2016.down.gz
SECONDS_RUN=14
OFFSET_MS=20000

require_bin trace-link
command -v iperf3 >/dev/null || fail "iperf3 missing (scripts/deps.sh)"
[ -r "$TRACE" ] || fail "no trace $TRACE (set REFLEX_TRACES to the traces folder)"
TMP=$(mktemp -d)
on_exit rm -rf "$TMP"

# A saturating transfer; -R sends server -> client. Sets RX_BYTES to what the receiving
# interface counted meanwhile.
saturate() { # SECONDS [-R]
	local rx_node=server rx_if before after
	[ "${2:-}" = -R ] && rx_node=client
	rx_if=$(lab iface "$rx_node")
	spawn "$LAB" exec server timeout 60 iperf3 -s -1 -p 5201 >/dev/null 2>&1
	wait_for "[ -n \"\$(\"$LAB\" exec server ss -Hltn 'sport = :5201')\" ]" 5 ||
		fail "iperf3 server did not listen"
	before=$(link_stat "$rx_node" "$rx_if" rx.bytes)
	timeout $(($1 + 20)) "$LAB" exec client iperf3 -c "$(lab addr server)" -p 5201 -t "$1" \
		-C cubic ${2:+"$2"} -J >"$TMP/iperf.json" || fail "iperf3 failed: $(jq -r '.error // empty' "$TMP/iperf.json")"
	sleep 0.5
	after=$(link_stat "$rx_node" "$rx_if" rx.bytes)
	RX_BYTES=$((after - before))
}

# The flow's bins but its first two (slow start) and its last (partial):
# "faithful total_delivered total_offered bins".
fidelity() { # STATS
	local first last
	first=$(awk -F, 'NR > 1 && $4 > 0 { print $1 + 2000; exit }' "$1")
	last=$(awk -F, 'NR > 1 && $4 > 0 { t = $1 } END { print t }' "$1")
	awk -F, -v first="$first" -v last="$last" 'NR > 1 && $1 >= first && $1 < last {
			bins++
			d = $4 - $3; if (d < 0) d = -d
			if ($3 > 0 && d <= 0.1 * $3) { ok++; del += $4; off += $3 }
			if ($3 == 0 && $4 == 0) ok++
		}
		END { printf "%d %d %d %d\n", ok, del, off, bins }' "$1"
}

check_direction() { # DIR
	local dir=$1 flag="" ok delivered offered bins link_total
	[ "$dir" = down ] && flag=-R
	log "real trace, $dir: $(basename "$TRACE") from $OFFSET_MS ms, +40 ms RTT, 4 MB buffer"
	lab_up LAB_TRACE="$TRACE" LAB_TRACE_DIR="$dir" LAB_TRACE_OFFSET_MS=$OFFSET_MS \
		LAB_TRACE_BUFFER=4mb LAB_TRACE_STATS="$TMP/$dir.csv" LAB_DELAY_MS=40
	saturate $SECONDS_RUN $flag
	lab_down
	log "$dir: per 1 s bin, offered -> delivered kB: $(awk -F, 'NR > 1 {
		printf "%d->%d ", $3 / 1000, $4 / 1000 }' "$TMP/$dir.csv")"
	read -r ok delivered offered bins <<<"$(fidelity "$TMP/$dir.csv")"
	log "$dir: $ok of $bins 1 s bins within 10 % of the trace; over them delivered/offered =" \
		"$(awk -v d="$delivered" -v o="$offered" 'BEGIN { printf "%.3f", d / o }')"
	expect_ge "$((ok * 100 / bins))" 80 "$dir: % of 1 s bins delivering the trace's bytes +/- 10 %"
	expect_ge "$(awk -v d="$delivered" -v o="$offered" 'BEGIN { print d / o }')" 0.9 "$dir: delivered/offered"
	expect_le "$(awk -v d="$delivered" -v o="$offered" 'BEGIN { print d / o }')" 1.02 "$dir: delivered/offered"
	link_total=$(awk -F, 'NR > 1 { s += $4 } END { print s }' "$TMP/$dir.csv")
	expect_within_pct "$RX_BYTES" "$link_total" 5 "$dir: bytes the receiver counted vs the link's delivered total"
}

check_direction up
check_direction down

log "synthetic on/off trace (50 ms on at 2 packets/ms, 50 ms off), down, 1 % random loss (seed 7), 10 ms bins"
awk 'BEGIN { for (ms = 1; ms <= 50; ms++) print ms "\n" ms; print 100 }' >"$TMP/onoff.trace"
lab_up LAB_TRACE="$TMP/onoff.trace" LAB_TRACE_DIR=down LAB_TRACE_BUFFER=200p LAB_LOSS_PCT=1 \
	LAB_TRACE_SEED=7 LAB_TRACE_STATS="$TMP/onoff.csv" LAB_TRACE_BIN_MS=10
saturate 6 -R
lab_down
# From the 2nd second to the 6th: bins 10..49 ms into each 100 ms loop offer 20 packets,
# bins 60..99 ms offer none.
read -r on_mean off_sum <<<"$(awk -F, 'NR > 1 && $1 >= 2000 && $1 < 6000 {
		phase = $1 % 100
		if (phase >= 10 && phase < 50) { on += $4; n++ }
		if (phase >= 60) off += $4
	} END { printf "%.0f %d\n", on / n, off }' "$TMP/onoff.csv")"
expect_eq "$off_sum" 0 "on/off: bytes delivered in the off bins"
# Never above the trace; below it only when the queue ran empty, which a starved link
# process or sender on a busy machine causes (an idle one delivers ~99 %).
expect_le "$on_mean" 30300 "on/off: bytes per 10 ms on bin (trace: 20 x 1500 B)"
expect_ge "$on_mean" 22500 "on/off: bytes per 10 ms on bin (75 % of the trace's)"
random=$(awk -F, 'NR > 1 { s += $6 } END { print s + 0 }' "$TMP/onoff.csv")
packets=$(awk -F, 'NR > 1 { s += $4 } END { print int(s / 1500) }' "$TMP/onoff.csv")
log "on/off: $random random drops, ~$packets packets delivered"
lost_pct=$(awk -v r="$random" -v p="$packets" 'BEGIN { print 100 * r / (r + p) }')
expect_ge "$lost_pct" 0.5 "on/off: % randomly lost"
expect_le "$lost_pct" 1.5 "on/off: % randomly lost"

leftovers_check "$LAB_PREFIX"
log "PASS"
