#!/usr/bin/env bash
# reflex-forge end to end: telemetry -> `reflex-forge build` -> `reflexctl model verify`
# and `eval`, for both recipes; determinism; train on its own training set and on a CSV
# that is not ours; bad inputs (missing column, non-numeric field, empty file, NaN,
# header only, ragged row) each fail with file, line and column, exit 1, and leave no
# file behind.
#
# The telemetry here is SYNTHETIC (generated below, not recorded): until real traces
# are under models/traces/, it stands in for what `reflexd --telemetry-out` and
# `--records-out` write, with the same columns and units.
source "$(dirname "$0")/lib.sh"

require_bin reflex-forge
require_bin reflexctl
FORGE=$REFLEX_BIN/reflex-forge
CTL=$REFLEX_BIN/reflexctl
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"
cd "$TMP" || fail "cd $TMP"
STAMP=2025-01-02T03:04:05Z

# --- synthetic telemetry ---------------------------------------------------------
# 500 windows (50 s) cycling through four 10 s phases: idle, bulk, many short flows,
# mixed, idle again. Ring-buffer records are drawn per 100 ms step (jittered, unsorted within a
# step, two rings) into records.csv; each window's `records` column counts the two
# steps it covers, as reflexd's window code does. Two flows run outside idle phases.
synthesize() { # OUT.csv RECORDS.csv
	awk -v n=500 -v recf="$2" '
	function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
	BEGIN {
		seed = 42; step = 100000000; base = 10000
		for (s = 0; s < n + 2; s++) {
			ph = int(s / 100) % 4
			cnt[s] = ph == 0 ? 5 + int(rnd() * 15) : ph == 1 ? 50 + int(rnd() * 150) : ph == 2 ? 1000 + int(rnd() * 1500) : 250 + int(rnd() * 500)
		}
		print "ts_ns,ring" > recf
		for (s = 0; s < n + 2; s++)
			for (k = 0; k < cnt[s]; k++)
				printf "%.0f,%s\n", (base + s) * step + int(rnd() * step), (rnd() < 0.5 ? "sock" : "tc") > recf
		print "ts_ns,scope,flow,queue_depth,enqueue_rate,dequeue_rate,latency_p50,latency_p95,bytes_in_per_sec,bytes_out_per_sec,packet_size_mean,packet_size_var,rtt_ewma,srtt_us,min_rtt_us,snd_cwnd,delivery_rate_bps,retrans,backlog_packets,drops,records"
		for (e = 2; e < n + 2; e++) {
			ts = (base + e) * step; ph = int(e / 100) % 4
			if (ph == 0) { rate = 50 + rnd() * 100; q = 0; p50 = 20000 + rnd() * 500; size = 200 + rnd() * 100 }
			else if (ph == 1) { rate = 4000 + rnd() * 300; q = 1000000 + rnd() * 1000000; p50 = 60000 + rnd() * 100000; size = 1400 + rnd() * 60 }
			else if (ph == 2) { rate = 2000 + rnd() * 1500; q = 20000 + rnd() * 50000; p50 = 22000 + rnd() * 5000; size = 400 + rnd() * 300 }
			else { rate = 3000 + rnd() * 1000; q = 300000 + rnd() * 500000; p50 = 30000 + rnd() * 30000; size = 900 + rnd() * 300 }
			p95 = p50 * (1.1 + rnd() * 0.3); bout = rate * size; bin = bout / 20
			printf "%.0f,iface,iface:veth0,%d,%.1f,%.1f,%d,%d,%.1f,%.1f,%.1f,%.1f,%d,%d,20000,0,%.0f,%d,%d,0,%d\n", ts, q, rate * 1.01, rate, p50, p95, bin, bout, size, size * size * 0.2, p50, p50, bout * 8, int(rnd() * 3), int(q / 1500), cnt[e - 2] + cnt[e - 1]
			if (ph == 0)
				continue
			for (f = 0; f < 2; f++) {
				fr = bout * 8 / 2 * (0.8 + rnd() * 0.4)
				printf "%.0f,flow,tcp:10.0.0.1:%d-10.0.0.2:5201,%d,%.1f,%.1f,%d,%d,%.1f,%.1f,%.1f,%.1f,%d,%d,20000,%d,%.0f,%d,%d,0,0\n", ts, 40000 + f, q, rate / 2, rate / 2, p50, p95, bin / 2, bout / 2, size, size * size * 0.2, p50, p50, int(fr / 8 * 0.02 / 1448), fr, int(rnd() * 2), int(q / 1500)
			}
		}
	}' >"$1"
}
synthesize "$TMP/telemetry.csv" "$TMP/records.csv"
log "synthetic telemetry: $(($(wc -l <"$TMP/telemetry.csv") - 1)) rows, $(($(wc -l <"$TMP/records.csv") - 1)) records"

# meta FILE KEY: a metadata value as `reflexctl model inspect` prints it.
meta() { "$CTL" model inspect "$1" | sed -n "s/^  $2: //p"; }
trees() { "$CTL" model inspect "$1" | sed -n '/^trees:/,/^metadata/p' | sed '$d'; }

# --- batching: build, verify, eval ------------------------------------------------
for sub in windows label train build; do
	"$FORGE" "$sub" --help >"$TMP/help" || fail "$sub --help exits non-zero"
	grep -q "usage: reflex-forge $sub" "$TMP/help" || fail "$sub --help has no usage line"
done
grep -q 'p95_latency_us' <("$FORGE" build --help) || fail "build --help does not state the units of J"

"$FORGE" build --recipe batching "$TMP/telemetry.csv" -o "$TMP/batching.reflex" --holdout 0 \
	--training-set "$TMP/batching-set.csv" --created-at "$STAMP" >"$TMP/build.out" 2>"$TMP/build.err" \
	|| fail "build batching: $(cat "$TMP/build.err")"
cat "$TMP/build.out"
grep -q 'arrivals: reconstructed' "$TMP/build.out" || fail "the report does not say arrivals were reconstructed"
expect_eq "$(meta "$TMP/batching.reflex" arrivals)" '"reconstructed from window counts"' "arrivals metadata"
"$CTL" model verify "$TMP/batching.reflex" || fail "reflexctl model verify refuses the built model"
expect_eq "$(meta "$TMP/batching.reflex" created_at)" "$STAMP" "created_at"
expect_eq "$(meta "$TMP/batching.reflex" telemetry_hash)" "$(sha1sum <"$TMP/telemetry.csv" | cut -d' ' -f1)" "telemetry_hash"
expect_eq "$(meta "$TMP/batching.reflex" lambda)" "0.1" "lambda"

# Every row of the training set through reflexctl: legal values only, and the share
# of rows where it matches the oracle is the accuracy the forge wrote in the file.
"$CTL" model eval "$TMP/batching.reflex" --csv "$TMP/batching-set.csv" >"$TMP/eval.csv" || fail "model eval --csv"
rows=$(($(wc -l <"$TMP/batching-set.csv") - 1))
expect_eq "$(($(wc -l <"$TMP/eval.csv") - 1))" "$rows" "eval rows"
bad=$(awk -F, 'NR > 1 && !($1 ~ /^(1|4|8|16|32|64)$/ && $2 ~ /^(50|200|1000|4000)$/)' "$TMP/eval.csv" | head -3)
expect_eq "$bad" "" "outputs outside the candidate values"
acc=$(paste -d, "$TMP/eval.csv" "$TMP/batching-set.csv" | awk -F, '
	NR == 1 { for (i = 3; i <= NF; i++) if ($i == "max_batch_delay_us") col = i; next }
	{ n++; hit += ($2 == $col) } END { printf "%.6g", hit / n }')
expect_eq "$acc" "$(meta "$TMP/batching.reflex" fit_accuracy_max_batch_delay_us)" "accuracy by reflexctl vs the forge's figure"

# Determinism: same inputs, same bytes; SOURCE_DATE_EPOCH pins created_at too.
"$FORGE" build --recipe batching "$TMP/telemetry.csv" -o "$TMP/again.reflex" --holdout 0 --created-at "$STAMP" >/dev/null \
	|| fail "second build"
cmp "$TMP/batching.reflex" "$TMP/again.reflex" || fail "two builds of the same trace differ"
SOURCE_DATE_EPOCH=1735787045 "$FORGE" build --recipe batching "$TMP/telemetry.csv" -o "$TMP/epoch.reflex" --holdout 0 >/dev/null \
	|| fail "build with SOURCE_DATE_EPOCH"
cmp "$TMP/batching.reflex" "$TMP/epoch.reflex" || fail "SOURCE_DATE_EPOCH=1735787045 is not $STAMP"
# A compressed trace through stdin is the same trace.
gzip -c "$TMP/telemetry.csv" >"$TMP/telemetry.csv.gz"
zcat "$TMP/telemetry.csv.gz" | "$FORGE" build --recipe batching - -o "$TMP/stdin.reflex" --holdout 0 --created-at "$STAMP" \
	>/dev/null || fail "build from stdin"
cmp "$TMP/batching.reflex" "$TMP/stdin.reflex" || fail "the trace from stdin gives another model"

# train on the training set the build kept gives the same trees.
"$FORGE" train --in "$TMP/batching-set.csv" --target flush_threshold,max_batch_delay_us --holdout 0 --split-block 10 \
	--created-at "$STAMP" --out "$TMP/retrained.reflex" >"$TMP/train.out" || fail "train on the training set"
expect_eq "$(trees "$TMP/retrained.reflex")" "$(trees "$TMP/batching.reflex")" "trees of build vs train on its training set"

# The replayed records file, with validation held out.
"$FORGE" build --recipe batching "$TMP/telemetry.csv" --records "$TMP/records.csv" -o "$TMP/replayed.reflex" \
	--created-at "$STAMP" >"$TMP/replay.out" || fail "build --records"
grep -q "arrivals: replayed from $TMP/records.csv" "$TMP/replay.out" || fail "the report does not name the records file"
grep -q ' 0 windows whose count differs' "$TMP/replay.out" || fail "records and telemetry counts disagree: $(grep arrivals "$TMP/replay.out")"
grep -q 'J regret on validation' "$TMP/replay.out" || fail "no J regret on validation: $(cat "$TMP/replay.out")"
"$CTL" model verify "$TMP/replayed.reflex" || fail "verify the replayed model"

# --- cwnd ---------------------------------------------------------------------------
"$FORGE" build --recipe cwnd "$TMP/telemetry.csv" -o "$TMP/cwnd.reflex" --training-set "$TMP/cwnd-set.csv" \
	--created-at "$STAMP" >"$TMP/cwnd.out" || fail "build cwnd"
cat "$TMP/cwnd.out"
"$CTL" model verify "$TMP/cwnd.reflex" || fail "verify the cwnd model"
"$CTL" model eval "$TMP/cwnd.reflex" --csv "$TMP/cwnd-set.csv" >"$TMP/cwnd-eval.csv" || fail "eval the cwnd model"
bad=$(awk -F, 'NR > 1 && !($1 ~ /^(0|0\.5|0\.75|1|1\.25|1\.5|2|4)$/)' "$TMP/cwnd-eval.csv" | head -3)
expect_eq "$bad" "" "cwnd outputs outside the candidate multiples"
# With a horizon the same windows are judged on the rates their flow reaches next
# (the synthetic flows swing +-20 % between windows): the report and metadata say so,
# labels are still candidate multiples, and a bad horizon is refused.
"$FORGE" build --recipe cwnd "$TMP/telemetry.csv" --horizon-ms 2000 -o "$TMP/cwnd-h.reflex" \
	--training-set "$TMP/cwnd-h-set.csv" --created-at "$STAMP" >"$TMP/cwnd-h.out" || fail "build cwnd --horizon-ms"
grep -q 'horizon: .* next 2000 ms' "$TMP/cwnd-h.out" || fail "the report does not state the horizon: $(head -5 "$TMP/cwnd-h.out")"
expect_eq "$(meta "$TMP/cwnd-h.reflex" cwnd_horizon_ms)" "2000" "cwnd_horizon_ms metadata"
expect_eq "$(meta "$TMP/cwnd.reflex" cwnd_horizon_ms)" "" "cwnd_horizon_ms metadata without a horizon"
expect_eq "$(wc -l <"$TMP/cwnd-h-set.csv")" "$(wc -l <"$TMP/cwnd-set.csv")" "rows labelled with and without a horizon"
cmp -s "$TMP/cwnd-h-set.csv" "$TMP/cwnd-set.csv" && fail "the horizon changed no J of any window"
"$CTL" model verify "$TMP/cwnd-h.reflex" || fail "verify the cwnd model built with a horizon"
"$FORGE" build --recipe cwnd "$TMP/telemetry.csv" --horizon-ms 60001 -o "$TMP/bad-h.reflex" 2>"$TMP/bad-h.err"
expect_eq "$?" "2" "exit status of --horizon-ms 60001"
grep -q -- '--horizon-ms' "$TMP/bad-h.err" || fail "the error does not name --horizon-ms: $(cat "$TMP/bad-h.err")"
[ ! -e "$TMP/bad-h.reflex" ] || fail "a refused horizon left a model behind"

# --- windows and label ----------------------------------------------------------------
"$FORGE" windows "$TMP/telemetry.csv" --scope flow -o "$TMP/windows.csv" >"$TMP/windows.out" || fail "windows"
grep -q '2 gaps' "$TMP/windows.out" || fail "the idle phases are not reported as gaps: $(head -3 "$TMP/windows.out")"
out_of_range=$(awk -F, 'NR > 1 { for (i = 5; i <= 14; i++) if ($i < 0 || $i > 1) print NR ": " $i }' "$TMP/windows.csv" | head -3)
expect_eq "$out_of_range" "" "normalized features outside [0,1]"
"$FORGE" label --recipe batching "$TMP/telemetry.csv" -o "$TMP/label.csv" >/dev/null || fail "label"
cmp "$TMP/label.csv" "$TMP/batching-set.csv" || fail "label and build --training-set differ"

# --- a CSV that is not ours -------------------------------------------------------------
# class = 2 when petal > 2.5 and width > 1.7, 1 when petal > 2.5, else 0: depth 2 suffices.
awk 'BEGIN { seed = 7; print "sepal,petal,width,class"
	for (i = 0; i < 150; i++) {
		seed = (seed * 1103515245 + 12345) % 2147483648; p = seed / 2147483648 * 6
		seed = (seed * 1103515245 + 12345) % 2147483648; w = seed / 2147483648 * 2.5
		printf "%.2f,%.2f,%.2f,%d\n", 4 + (i % 30) / 10, p, w, (p > 2.5 ? (w > 1.7 ? 2 : 1) : 0) } }' >"$TMP/other.csv"
"$FORGE" train --in "$TMP/other.csv" --target class --max-depth 2 --created-at "$STAMP" --out "$TMP/other.reflex" \
	>"$TMP/other.out" || fail "train on another CSV"
grep -q 'validation accuracy 100.0%' "$TMP/other.out" || fail "a depth-2 rule is not learnt: $(cat "$TMP/other.out")"
expect_eq "$(meta "$TMP/other.reflex" feature_schema)" "custom" "feature_schema of foreign features"
# The forge also gives every model an anomaly forest: eval prints its score after the class.
eval_out=$("$CTL" model eval "$TMP/other.reflex" --features 4.1,5.0,2.0)
expect_eq "${eval_out%% *}" "class=2" "eval of a foreign model"
[[ "$eval_out" =~ ^class=2\ anomaly=0\.[0-9]{4}$ ]] || fail "eval of a foreign model: '$eval_out' is not class=2 anomaly=0.NNNN"

# --- bad inputs ----------------------------------------------------------------------------
# expect_bad NAME PATTERN ARGS...: exit 1, stderr matches, no output or temporary file left.
expect_bad() {
	local name=$1 pattern=$2 rc; shift 2
	mkdir -p "$TMP/bad"
	"$@" >"$TMP/bad.out" 2>"$TMP/bad.err"; rc=$?
	expect_eq "$rc" 1 "exit code for $name"
	grep -qF -- "$pattern" "$TMP/bad.err" || fail "$name: stderr '$(cat "$TMP/bad.err")' lacks '$pattern'"
	expect_eq "$(ls -A "$TMP/bad")" "" "files left behind by $name"
	echo "ok: $name: $(cat "$TMP/bad.err")"
}
D=$TMP/in
mkdir -p "$D"
cut -d, -f1-12,14- "$TMP/telemetry.csv" >"$D/missing.csv"
awk -F, -v OFS=, 'NR == 5 { $8 = "fast" } 1' "$TMP/telemetry.csv" >"$D/text.csv"
: >"$D/empty.csv"
awk -F, -v OFS=, 'NR == 7 { $21 = "NaN" } 1' "$TMP/telemetry.csv" >"$D/nan.csv"
head -1 "$TMP/telemetry.csv" >"$D/header.csv"
awk -F, -v OFS=, 'NR == 9 { NF = 20 } 1' "$TMP/telemetry.csv" >"$D/ragged.csv"
for recipe in batching cwnd; do
	out=$TMP/bad/model.reflex
	expect_bad "$recipe missing column" "$D/missing.csv:1: column 'rtt_ewma': missing from the header" \
		"$FORGE" build --recipe $recipe "$D/missing.csv" -o "$out" --training-set "$TMP/bad/set.csv"
	expect_bad "$recipe non-numeric field" "$D/text.csv:5:8: column 'latency_p95': 'fast' is not a number" \
		"$FORGE" build --recipe $recipe "$D/text.csv" -o "$out" --training-set "$TMP/bad/set.csv"
	expect_bad "$recipe empty file" "$D/empty.csv:1:1: empty file" \
		"$FORGE" build --recipe $recipe "$D/empty.csv" -o "$out"
	expect_bad "$recipe NaN" "$D/nan.csv:7:21: column 'records': 'NaN': NaN is not allowed" \
		"$FORGE" build --recipe $recipe "$D/nan.csv" -o "$out"
	expect_bad "$recipe header only" "$D/header.csv:2:1: no data rows after the header" \
		"$FORGE" build --recipe $recipe "$D/header.csv" -o "$out"
	expect_bad "$recipe ragged row" "$D/ragged.csv:9:21: column 'records': missing (row has 20 fields, header has 21)" \
		"$FORGE" build --recipe $recipe "$D/ragged.csv" -o "$out"
done
expect_bad "train non-numeric" "$D/text.csv:5:8: column 'latency_p95': 'fast' is not a number" \
	"$FORGE" train --in "$D/text.csv" --target records --features latency_p95,rtt_ewma --out "$TMP/bad/t.reflex"
expect_bad "train missing target" "$TMP/batching-set.csv:1: column 'nosuch': missing from the header" \
	"$FORGE" train --in "$TMP/batching-set.csv" --target nosuch --out "$TMP/bad/t.reflex"
awk -F, -v OFS=, 'NR == 3 { $2 = "tcp" } 1' "$TMP/records.csv" >"$D/records-bad.csv"
expect_bad "records bad ring" "$D/records-bad.csv:3:2: column 'ring': 'tcp' is not a ring (sock or tc)" \
	"$FORGE" build --recipe batching "$TMP/telemetry.csv" --records "$D/records-bad.csv" -o "$TMP/bad/r.reflex"
expect_bad "label into a missing directory" "$TMP/bad/no/set.csv: cannot create" \
	"$FORGE" label --recipe batching "$TMP/telemetry.csv" -o "$TMP/bad/no/set.csv"

echo "PASS test_forge"
