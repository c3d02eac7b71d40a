#!/usr/bin/env bash
# `make bench`: every compiled benchmark (build/bench/bench_*) and every bench script
# (tests/bench/bench_*.sh). Each prints medians and ratios against a baseline measured
# in the same run; nothing here asserts a timing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
status=0
for bin in "$BUILD"/bench/bench_*; do
	[ -x "$bin" ] || continue
	echo "== $(basename "$bin")"
	"$bin" || status=1
done
for script in tests/bench/bench_*.sh; do
	[ -f "$script" ] || continue
	echo "== $(basename "$script" .sh)"
	bash "$script" || status=1
done
exit $status
