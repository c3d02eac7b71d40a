#!/usr/bin/env bash
# reflexd's setup failures: each gives one clear line naming the cause, exit code 2,
# and leaves nothing attached or pinned. Also --cleanup after a kill -9.
source "$(dirname "$0")/lib.sh"

PIN=/sys/fs/bpf/$LAB_PREFIX-err
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; rmdir /sys/fs/cgroup/unified/$LAB_PREFIX-err 2>/dev/null; true"

# expect_setup_error PATTERN ARGS...: exit 2, stderr matches PATTERN, nothing pinned.
expect_setup_error() {
	local pattern=$1 rc; shift
	"$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
	expect_eq "$rc" 2 "exit code of: $*"
	grep -qE -- "$pattern" "$TMP/err" || fail "stderr of '$*' does not match /$pattern/: $(cat "$TMP/err")"
	[ ! -e "$PIN" ] || fail "pin dir $PIN exists after a failed start of: $*"
	echo "ok: $(head -1 "$TMP/err")"
}

RD=$REFLEX_BIN/reflexd
expect_setup_error "interface 'nosuch0' not found" "$RD" --iface nosuch0 --pin-dir "$PIN"
expect_setup_error "cgroup /sys/fs/cgroup/unified/nosuch: No such file" "$RD" --iface lo --cgroup /sys/fs/cgroup/unified/nosuch --pin-dir "$PIN"
expect_setup_error "is not a cgroup v2 directory" "$RD" --iface lo --cgroup "$TMP" --pin-dir "$PIN"
expect_setup_error "--iface is required" "$RD" --pin-dir "$PIN"
expect_setup_error "--flush-threshold: '0' is not a whole number in 1..64" "$RD" --iface lo --flush-threshold 0 --pin-dir "$PIN"
expect_setup_error "unexpected argument 'extra'" "$RD" --iface lo extra
expect_setup_error "cannot load BPF programs" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$RD" --iface lo --pin-dir "$PIN"
expect_setup_error "--rt-priority: '100' is not a whole number in 0..99" "$RD" --iface lo --rt-priority 100
# Refused after attaching (the metrics server's threads must not inherit it): detached again.
expect_setup_error "--rt-priority 10: cannot run the decision loop at SCHED_FIFO: Operation not permitted \(it needs CAP_SYS_NICE" \
	setpriv --bounding-set -sys_nice "$RD" --iface lo --pin-dir "$PIN" --rt-priority 10
expect_eq "$(tc filter show dev lo ingress)" "" "tc filters on lo after failed starts"

"$RD" --help | grep -q -- '--telemetry-out' || fail "--help does not document --telemetry-out"

# A kill -9 leaves the programs attached and pinned (by design: the sockops fail-safe
# must keep running); --cleanup removes all of it, and only when the owner is dead.
CG=/sys/fs/cgroup/unified/$LAB_PREFIX-err
mkdir -p "$CG"
"$RD" --iface lo --cgroup "$CG" --pin-dir "$PIN" 2>"$TMP/rd.log" &
pid=$!
wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not start: $(cat "$TMP/rd.log")"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/err"; rc=$?
expect_eq "$rc" 2 "--cleanup while the owner runs"
grep -q "belongs to a running reflexd (pid $pid)" "$TMP/err" || fail "unexpected: $(cat "$TMP/err")"
kill -9 "$pid"; wait "$pid" 2>/dev/null
[ -e "$PIN/sockops_link" ] || fail "the cgroup link should outlive a kill -9"
expect_eq "$(tc filter show dev lo ingress | grep -c reflex_tc)" 1 "tc ingress filter after kill -9"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/err" || fail "--cleanup failed: $(cat "$TMP/err")"
[ ! -e "$PIN" ] || fail "pin dir left after --cleanup"
expect_eq "$(tc filter show dev lo ingress; tc filter show dev lo egress)" "" "tc filters after --cleanup"
expect_eq "$(tc qdisc show dev lo | grep -c clsact)" 0 "clsact on lo after --cleanup"
expect_eq "$(bpftool cgroup show "$CG" | grep -c sock_ops)" 0 "sockops on $CG after --cleanup"
expect_eq "$(ls /run/reflex 2>/dev/null | grep -c "$LAB_PREFIX-err")" 0 "files left in /run/reflex after --cleanup"
log "all checks passed"
