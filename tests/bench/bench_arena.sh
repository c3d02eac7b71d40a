#!/usr/bin/env bash
# The arena's bench subset (scenarios with sets=bench in scripts/arena/scenarios.conf:
# a real LTE uplink trace with every scheme, and a static 10 Mbit/s, 40 ms link), one
# round at 10 s per transfer: about 2-3 minutes. Prints the Markdown summary; nothing
# here asserts a figure (one round on a shared machine is noisy: `make arena` takes
# medians over 3 interleaved rounds).
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${BUILD:-build}/bench-arena
rm -rf "$OUT"
scripts/arena/arena.sh --set bench --rounds 1 --secs 10 --out "$OUT" || exit 1
scripts/arena/report.sh "$OUT" >/dev/null || exit 1
cat "$OUT/summary.md"
