#!/usr/bin/env bash
# Candidate cwnd trees against the shipped one on the arena's held-out scenarios (trace
# files no model was trained on, and a static link the tree must keep), in interleaved
# rounds: round 1 runs bbr, the heuristic and the shipped tree, then each candidate's
# tree; then round 2 ... Every run is one arena.sh run; report.sh writes the medians,
# with each candidate as the scheme `tree-NAME`.
#
# usage: scripts/arena/heldout.sh [--rounds N] [--scenario LIST] [--out DIR] NAME=MODELS_DIR...
#   NAME=MODELS_DIR  a candidate: MODELS_DIR/cwnd.reflex (as ARENA_MODELS=MODELS_DIR)
#   --rounds    interleaved rounds (default 3)
#   --scenario  the held-out suite (default below)
#   --out       result directory (default build/heldout/arena); OUT/results.csv, OUT/summary.md
set -u
cd "$(dirname "$0")/../.." || exit 1
ROUNDS=3 OUT=build/heldout/arena
SCENARIOS=trace-att-lte-up,trace-att-lte-down,trace-tmo-lte-down,trace-nyc-taxi3-down,static-10m-40ms
CANDIDATES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--scenario) SCENARIOS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*=*) CANDIDATES+=("$1"); shift ;;
	*) echo "heldout.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "heldout.sh: --rounds '$ROUNDS': 1..99" >&2; exit 2; }
for cand in "${CANDIDATES[@]}"; do
	[[ ${cand%%=*} =~ ^[a-z0-9-]+$ ]] || { echo "heldout.sh: candidate name '${cand%%=*}': a-z 0-9 -" >&2; exit 2; }
	[ -f "${cand#*=}/cwnd.reflex" ] || { echo "heldout.sh: no ${cand#*=}/cwnd.reflex" >&2; exit 2; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# One arena.sh round into OUT/rROUND/NAME; its rows join OUT/results.csv with this round
# and, for a candidate, its scheme renamed.
run_round() { # ROUND NAME MODELS_DIR SCHEMES
	local dir=$OUT/r$1/$2
	rm -rf "$dir"
	ARENA_MODELS=$3 scripts/arena/arena.sh --rounds 1 --scenario "$SCENARIOS" --schemes "$4" --out "$dir" ||
		return 1
	awk -F, -v OFS=, -v round="$1" -v name="$2" 'NR > 1 {
		$3 = round; if (name != "shipped") $2 = $2 "-" name; print }' "$dir/results.csv" >>"$OUT/results.csv"
}

rm -f "$OUT/results.csv"
for ((round = 1; round <= ROUNDS; round++)); do
	echo "heldout: round $round: shipped"
	run_round "$round" shipped "$PWD/models" bbr,heuristic,tree || exit 1
	[ -f "$OUT/results.csv.head" ] || head -1 "$OUT/r$round/shipped/results.csv" >"$OUT/results.csv.head"
	for cand in "${CANDIDATES[@]}"; do
		echo "heldout: round $round: ${cand%%=*}"
		run_round "$round" "${cand%%=*}" "$(cd "${cand#*=}" && pwd)" tree || exit 1
	done
done
cat "$OUT/results.csv.head" "$OUT/results.csv" >"$OUT/results.csv.tmp"
mv "$OUT/results.csv.tmp" "$OUT/results.csv"
rm -f "$OUT/results.csv.head"
scripts/arena/report.sh "$OUT"
