#!/usr/bin/env bash
# Runs the test suites and prints one closing line "N passed, N failed".
# usage: tests/run.sh all|unit|fuzz|integration (unit includes the layout check)
# Integration tests need root; each is bounded by a timeout and cleans up after itself.
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
BUILD=${BUILD:-build}
SAN_BUILD="$BUILD/san"
FUZZ_SECONDS=${FUZZ_SECONDS:-8}
INTEGRATION_TIMEOUT=${INTEGRATION_TIMEOUT:-300}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export REFLEX_BIN=${REFLEX_BIN:-$PWD/$SAN_BUILD}
export REFLEX_BPF=${REFLEX_BPF:-$PWD/$BUILD/bpf}

passed=0
failed=0
failures=()

# Each result line carries the test's wall time: make test has a budget of ~20 minutes,
# and this shows where it goes.
run_one() { # name, command...
	local name=$1 start=$SECONDS; shift
	printf '== %s\n' "$name"
	if "$@"; then
		passed=$((passed + 1)); printf 'PASS %s (%d s)\n' "$name" $((SECONDS - start))
	else
		failed=$((failed + 1)); failures+=("$name"); printf 'FAIL %s (%d s)\n' "$name" $((SECONDS - start))
	fi
}

run_unit() {
	local t
	for t in "$SAN_BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		case "$t" in *.d) continue;; esac
		run_one "unit/$(basename "$t")" "$t"
	done
}

fuzz_one() { # binary, corpus dir
	local bin=$1 corpus=$2 work flags=() flags_file
	# A target's own libFuzzer flags (e.g. -max_len), one line, beside its source.
	flags_file=tests/fuzz/$(basename "$bin").flags
	[ -f "$flags_file" ] && read -ra flags <"$flags_file"
	work=$(mktemp -d) || return 1
	cp -r "$corpus"/. "$work"/ 2>/dev/null
	# Replay the shipped corpus, then explore briefly from it into a scratch copy.
	"$bin" -runs=0 "$corpus" >"$work/replay.log" 2>&1 || { tail -30 "$work/replay.log"; rm -rf "$work"; return 1; }
	"$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 "${flags[@]}" \
		-artifact_prefix="$BUILD/fuzz/$(basename "$bin")-" "$work" >"$work/fuzz.log" 2>&1 \
		|| { tail -40 "$work/fuzz.log"; rm -rf "$work"; return 1; }
	grep -E '^(#[0-9]+.*DONE|Done)' "$work/fuzz.log" | tail -1
	rm -rf "$work"
}

run_layout() {
	run_one "layout/check_layers" tests/layout/check_layers.sh "$BUILD"
}

run_fuzz() {
	local bin name
	for bin in "$BUILD"/fuzz/fuzz_*; do
		[ -x "$bin" ] || continue
		name=$(basename "$bin")
		run_one "fuzz/$name" fuzz_one "$bin" "tests/fuzz/corpus/${name#fuzz_}"
	done
}

run_integration() {
	local t
	if [ "$(id -u)" -ne 0 ]; then
		echo "integration tests need root (BPF, netns); skipping them is a failure" >&2
		failed=$((failed + 1)); failures+=("integration/not-root"); return
	fi
	for t in tests/integration/test_*.sh; do
		[ -f "$t" ] || continue
		run_one "integration/$(basename "$t" .sh)" timeout --kill-after=10 "$INTEGRATION_TIMEOUT" bash "$t"
	done
}

case "$what" in
	unit) run_layout; run_unit ;;
	fuzz) run_fuzz ;;
	integration) run_integration ;;
	all) run_layout; run_unit; run_fuzz; run_integration ;;
	*) echo "usage: $0 all|unit|fuzz|integration" >&2; exit 2 ;;
esac

[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
