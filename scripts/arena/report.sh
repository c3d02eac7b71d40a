#!/usr/bin/env bash
# The arena's report from DIR/results.csv (one row per run, scripts/arena/arena.sh):
#   DIR/summary.csv   per scenario and scheme: runs, then the median over rounds of every
#                     figure, and throughput and ping p95 as ratios of BBR's medians
#   DIR/summary.json  the same rows as JSON objects
#   DIR/summary.md    a Markdown table of the main figures
#   DIR/plots/NAME.png per scenario, Pantheon style: ping p95 (reversed: better is right)
#                     against throughput (better is up), a small point per run, a large
#                     one per scheme's median (gnuplot; skipped with a note if missing)
# usage: scripts/arena/report.sh [DIR]   (default build/arena)
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
DIR=${1:-build/arena}
RESULTS=$DIR/results.csv
[ -s "$RESULTS" ] || { echo "report.sh: no $RESULTS (run scripts/arena/arena.sh first)" >&2; exit 1; }

# Medians per (scenario, scheme), columns 5.. of results.csv; empty fields stay empty.
awk -F, -v OFS=, '
	function median(key, col,   n, i, j, t, v) {
		n = 0
		for (i = 1; i <= cnt[key]; i++) { t = val[key, i, col]; if (t != "") v[++n] = t + 0 }
		if (n == 0) return ""
		for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
		return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	NR == 1 { ncol = NF; for (c = 1; c <= NF; c++) name[c] = $c; next }
	{
		key = $1 SUBSEP $2
		if (!(key in cnt)) { order[++nkeys] = key; cnt[key] = 0 }
		cnt[key]++
		for (c = 5; c <= ncol; c++) val[key, cnt[key], c] = $c
	}
	END {
		printf "scenario,scheme,runs"
		for (c = 5; c <= ncol; c++) printf ",%s", name[c]
		printf ",mbit_vs_bbr,ping_p95_vs_bbr\n"
		for (k = 1; k <= nkeys; k++) {
			key = order[k]; split(key, parts, SUBSEP)
			for (c = 5; c <= ncol; c++) med[key, c] = median(key, c)
		}
		for (k = 1; k <= nkeys; k++) {
			key = order[k]; split(key, parts, SUBSEP)
			printf "%s,%s,%d", parts[1], parts[2], cnt[key]
			for (c = 5; c <= ncol; c++) printf ",%s", (med[key, c] == "" ? "" : sprintf("%.4g", med[key, c]))
			bkey = parts[1] SUBSEP "bbr"
			tr = ""; pr = ""
			if ((bkey in cnt) && med[bkey, 5] > 0) tr = sprintf("%.3f", med[key, 5] / med[bkey, 5])
			if ((bkey in cnt) && med[bkey, 9] > 0) pr = sprintf("%.3f", med[key, 9] / med[bkey, 9])
			printf ",%s,%s\n", tr, pr
		}
	}' "$RESULTS" >"$DIR/summary.csv.tmp"
mv "$DIR/summary.csv.tmp" "$DIR/summary.csv"

# JSON: numbers as numbers, empty fields as null.
jq -R -s 'split("\n") | map(select(length > 0) | split(",")) | .[0] as $h | .[1:] |
	map([$h, .] | transpose | map({ (.[0]): (if .[1] == "" or .[1] == null then null
		elif (.[1] | test("^-?[0-9.]+(e[-+]?[0-9]+)?$")) then (.[1] | tonumber) else .[1] end) }) | add)' \
	"$DIR/summary.csv" >"$DIR/summary.json.tmp"
mv "$DIR/summary.json.tmp" "$DIR/summary.json"

{
	echo "| scenario | scheme | runs | Mbit/s | util. | ping p50 / p95 ms | flow RTT p50 / p95 ms | retr. | FCT p50 / p95 ms | Jain | share | Mbit/s ÷ BBR | p95 ÷ BBR |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	awk -F, 'NR > 1 {
		d = "–"
		printf "| %s | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s | %s |\n",
			$1, $2, $3, ($4 == "" ? d : sprintf("%.2f", $4)), ($6 == "" ? d : $6),
			($7 == "" ? d : $7), ($8 == "" ? d : $8), ($9 == "" ? d : $9), ($10 == "" ? d : $10),
			($11 == "" ? d : $11), ($12 == "" ? d : $12) ($13 == "" ? "" : " / " $13),
			($14 == "" ? d : $14), ($15 == "" ? d : $15), ($16 == "" ? d : $16), ($17 == "" ? d : $17) }' \
		"$DIR/summary.csv"
} >"$DIR/summary.md"

plot_scenario() { # NAME
	local name=$1 data=$DIR/plots/data/$1 plot="" i=0 scheme
	mkdir -p "$data"
	for scheme in $(awk -F, -v s="$name" 'NR > 1 && $1 == s { print $2 }' "$DIR/summary.csv"); do
		awk -F, -v s="$name" -v m="$scheme" 'NR > 1 && $1 == s && $2 == m && $9 != "" && $5 != "" {
			print $9, $5 }' "$RESULTS" >"$data/$scheme.runs"
		awk -F, -v s="$name" -v m="$scheme" 'NR > 1 && $1 == s && $2 == m && $8 != "" && $4 != "" {
			print $8, $4 }' "$DIR/summary.csv" >"$data/$scheme.median"
		i=$((i + 1))
		plot+="${plot:+, }'$data/$scheme.runs' using 1:2 with points pt 6 ps 1 lc $i notitle"
		plot+=", '$data/$scheme.median' using 1:2 with points pt 7 ps 2.2 lc $i title '$scheme'"
	done
	[ -n "$plot" ] || return 0
	gnuplot <<-EOF
		set terminal pngcairo size 800,560 noenhanced font ',11'
		set output '$DIR/plots/$name.png'
		set title '$name: throughput vs ping p95 (small: one run; large: median over rounds)'
		set xlabel 'ping RTT p95 (ms), reversed: better is right'
		set ylabel 'throughput (Mbit/s)'
		set xrange [*:*] reverse
		set logscale x
		set grid
		set key outside right
		plot $plot
	EOF
}

if command -v gnuplot >/dev/null; then
	mkdir -p "$DIR/plots"
	for name in $(awk -F, 'NR > 1 { print $1 }' "$DIR/summary.csv" | uniq); do
		plot_scenario "$name"
	done
else
	echo "report.sh: gnuplot missing (scripts/deps.sh installs gnuplot-nox): no plots" >&2
fi
echo "report: $DIR/summary.md, summary.csv, summary.json, plots/"
