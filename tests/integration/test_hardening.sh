#!/usr/bin/env bash
# What reflexd must never do as root, whatever it is pointed at (issue 13):
# - --pin-dir must be a directory on bpffs below its root; reflexd unlinks only the
#   pins reflex creates there, never a foreign one.
# - One reflexd per pin directory (a lock held for its life); liveness is the lock, not
#   a process name; `reflexctl promote` signals only the lock holder.
# - Outputs reflexd writes as root do not follow symlinks; a FIFO at a model path
#   does not block.
# - Teardown deletes the clsact it created only when no one else's filter is on it;
#   --cleanup does not trust an ifindex that now names another interface.
# - A flow idle when reflexd stops (or is killed, then --cleanup) loses its clamp; a
#   second host reflexd on one cgroup is refused.
source "$(dirname "$0")/lib.sh"

RD=$REFLEX_BIN/reflexd
TMP=$(mktemp -d)
PIN=/sys/fs/bpf/$LAB_PREFIX-hard
on_exit "rm -rf $TMP; rm -f $PIN/foreign_map; $RD --cleanup --pin-dir $PIN >/dev/null 2>&1; rmdir $PIN 2>/dev/null; true"

# expect_refused PATTERN ARGS...: exit 2 and stderr matches PATTERN.
expect_refused() {
	local pattern=$1 rc; shift
	"$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
	expect_eq "$rc" 2 "exit code of: $*"
	grep -qE -- "$pattern" "$TMP/err" || fail "stderr of '$*' does not match /$pattern/: $(cat "$TMP/err")"
}

log "--pin-dir outside bpffs is refused and its files are kept"
mkdir "$TMP/foreign"
echo precious >"$TMP/foreign/file"
chmod 0755 "$TMP/foreign"
expect_refused "is not on a bpffs" "$RD" --cleanup --pin-dir "$TMP/foreign"
expect_eq "$(cat "$TMP/foreign/file" 2>&1)" precious "a file in a non-bpffs --pin-dir after --cleanup"
expect_refused "is not on a bpffs" "$RD" --iface lo --pin-dir "$TMP/foreign"
expect_eq "$(cat "$TMP/foreign/file" 2>&1)" precious "a file in a non-bpffs --pin-dir after a refused start"
expect_eq "$(stat -c %a "$TMP/foreign")" 755 "mode of the refused directory (not chmodded)"
expect_refused "is not on a bpffs" "$RD" --iface lo --pin-dir "$TMP/foreign/new"
[ ! -e "$TMP/foreign/new" ] || fail "reflexd created $TMP/foreign/new"
expect_refused "root of a bpffs" "$RD" --cleanup --pin-dir /sys/fs/bpf
expect_refused "root of a bpffs" "$RD" --cleanup --pin-dir /sys/fs/bpf/
ln -s "$TMP/foreign" "$TMP/link"
expect_refused "not a directory" "$RD" --cleanup --pin-dir "$TMP/link"
expect_refused "is not on a bpffs" "$RD" --cleanup --lan lo --path a:lo:127.0.0.1 --pin-dir "$TMP/foreign"
expect_eq "$(cat "$TMP/foreign/file" 2>&1)" precious "a file in a non-bpffs --pin-dir after router --cleanup"

log "a bpffs pin directory keeps a foreign pin through --cleanup, a run and its teardown"
mkdir "$PIN"
bpftool map create "$PIN/foreign_map" type array key 4 value 4 entries 1 name foreign_map ||
	fail "bpftool map create failed"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/err" || fail "--cleanup failed: $(cat "$TMP/err")"
[ -e "$PIN/foreign_map" ] || fail "--cleanup removed a foreign pin"
"$RD" --iface lo --pin-dir "$PIN" --duration 1 2>"$TMP/rd.log" || fail "reflexd failed: $(cat "$TMP/rd.log")"
[ -e "$PIN/foreign_map" ] || fail "a run of reflexd removed a foreign pin"
expect_eq "$(ls "$PIN")" foreign_map "what is left in the pin directory after reflexd stopped"
rm -f "$PIN/foreign_map"
rmdir "$PIN"

log "one reflexd per pin directory: the second exits 2 naming the first"
RUN=/run/reflex/$(echo "$PIN" | tr / _)
on_exit "rm -f $RUN.shadow"
"$RD" --iface lo --pin-dir "$PIN" 2>"$TMP/a.log" &
apid=$!
on_exit "kill -9 $apid 2>/dev/null; wait $apid 2>/dev/null; true"
wait_for "[ -e $PIN/tc_flows ] && [ -e $RUN.state ]" 20 || fail "reflexd did not start: $(cat "$TMP/a.log")"
expect_refused "belongs to a running reflexd \\(pid $apid" "$RD" --iface lo --pin-dir "$PIN"
expect_refused "belongs to a running reflexd \\(pid $apid" "$RD" --lan lo --path a:nosuch0:127.0.0.1 --pin-dir "$PIN"
expect_refused "belongs to a running reflexd \\(pid $apid" "$RD" --cleanup --pin-dir "$PIN"
[ -e "$PIN/tc_flows" ] || fail "a refused second reflexd removed the first one's pins"
expect_eq "$(tc filter show dev lo ingress | grep -c reflex_tc)" 1 "the first reflexd's tc filter"

log "a stale state file naming a live process called reflexd does not block --cleanup"
kill -9 "$apid"; wait "$apid" 2>/dev/null
cp "$(command -v sleep)" "$TMP/reflexd"
"$TMP/reflexd" 60 &
fake=$!
on_exit "kill $fake 2>/dev/null; true"
sed -i "s/^pid=.*/pid=$fake/" "$RUN.state"
printf 'pid=%d\nshadow=1\npolicy=tree\ngate=pass\nwhy=test\n' "$fake" >"$RUN.shadow"
"$REFLEX_BIN/reflexctl" promote --pin-dir "$PIN" >"$TMP/out" 2>&1; rc=$?
expect_eq "$rc" 2 "reflexctl promote with a stale shadow file"
grep -q "does not hold the pin directory's lock" "$TMP/out" || fail "promote: $(cat "$TMP/out")"
kill -0 "$fake" || fail "reflexctl promote signalled pid $fake, which is not a reflexd"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/err" || fail "--cleanup refused by a process name: $(cat "$TMP/err")"
[ ! -e "$PIN" ] || fail "pin dir left after --cleanup"
[ ! -e "$RUN.shadow" ] || fail "--cleanup left the stale shadow file $RUN.shadow"
expect_eq "$(tc filter show dev lo ingress; tc filter show dev lo egress)" "" "tc filters on lo after --cleanup"
expect_eq "$(ls /run/reflex | grep -c -- "$LAB_PREFIX-hard")" 0 "run files left for $PIN"

log "outputs do not follow a symlink; a FIFO model does not block"
echo precious >"$TMP/victim"
for opt in --telemetry-out --records-out --decision-log; do
	ln -sf "$TMP/victim" "$TMP/out$opt"
	expect_refused "is a symlink: refused" "$RD" --iface lo --pin-dir "$PIN" "$opt" "$TMP/out$opt"
	expect_eq "$(cat "$TMP/victim")" precious "the symlink target of $opt"
done
[ ! -e "$PIN" ] || fail "pin dir left after refused starts"
mkfifo "$TMP/fifo.reflex"
timeout 10 "$REFLEX_BIN/reflexctl" model verify "$TMP/fifo.reflex" >"$TMP/out" 2>&1; rc=$?
[ "$rc" != 124 ] || fail "reflexctl model verify blocked on a FIFO"
[ "$rc" != 0 ] || fail "reflexctl model verify accepted a FIFO"
grep -q "not a regular file" "$TMP/out" || fail "model verify on a FIFO: $(cat "$TMP/out")"
timeout 30 "$RD" --iface lo --pin-dir "$PIN" --model "cwnd=$TMP/fifo.reflex" --duration 1 >"$TMP/out" 2>&1; rc=$?
[ "$rc" != 124 ] || fail "reflexd blocked on a FIFO model"
grep -q "not a regular file" "$TMP/out" || fail "reflexd with a FIFO model: $(cat "$TMP/out")"

log "a clsact reflexd created stays while someone else's filter is on it"
D1=$LAB_PREFIX-d1 D2=$LAB_PREFIX-d2
on_exit "ip link del $D1 2>/dev/null; ip link del $D2 2>/dev/null; true"
ip link add "$D1" type veth peer name "$D2" && ip link set "$D1" up && ip link set "$D2" up ||
	fail "cannot add the veth pair $D1/$D2"
"$RD" --iface "$D1" --pin-dir "$PIN" 2>"$TMP/a.log" &
apid=$!
on_exit "kill -9 $apid 2>/dev/null; wait $apid 2>/dev/null; true"
wait_for "tc filter show dev $D1 ingress | grep -q reflex_tc" 20 || fail "reflexd did not attach: $(cat "$TMP/a.log")"
tc filter add dev "$D1" ingress prio 7 protocol all bpf bytecode '1,6 0 0 4294967295,' ||
	fail "cannot add a foreign filter"
kill -TERM "$apid"; wait "$apid"
expect_eq "$(tc qdisc show dev "$D1" | grep -c clsact)" 1 "clsact on $D1 with a foreign filter, after reflexd stopped"
expect_eq "$(tc filter show dev "$D1" ingress | grep -c reflex_tc)" 0 "reflexd's filters on $D1 after it stopped"
expect_ge "$(tc filter show dev "$D1" ingress | grep -c bytecode)" 1 "the foreign filter on $D1"
tc qdisc del dev "$D1" clsact
"$RD" --iface "$D1" --pin-dir "$PIN" --duration 1 2>"$TMP/a.log" || fail "reflexd failed: $(cat "$TMP/a.log")"
expect_eq "$(tc qdisc show dev "$D1" | grep -c clsact)" 0 "clsact on $D1 after reflexd (which created it) stopped"

log "--cleanup does not trust a stale ifindex"
"$RD" --iface "$D1" --pin-dir "$PIN" 2>"$TMP/a.log" &
apid=$!
on_exit "kill -9 $apid 2>/dev/null; wait $apid 2>/dev/null; true"
wait_for "tc filter show dev $D1 ingress | grep -q reflex_tc" 20 || fail "reflexd did not attach: $(cat "$TMP/a.log")"
kill -9 "$apid"; wait "$apid" 2>/dev/null
grep -q "^iface=$D1\$" "$RUN.state" || fail "the state file does not name $D1: $(cat "$RUN.state")"
# As if $D1 had gone and its index now named $D2, which has a clsact of its own.
tc qdisc add dev "$D2" clsact
sed -i "s/^ifindex=.*/ifindex=$(cat /sys/class/net/$D2/ifindex)/" "$RUN.state"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/err" || fail "--cleanup failed: $(cat "$TMP/err")"
grep -q "no longer $D1" "$TMP/err" || fail "--cleanup did not say the ifindex moved: $(cat "$TMP/err")"
expect_eq "$(tc qdisc show dev "$D2" | grep -c clsact)" 1 "clsact on $D2 after --cleanup with a stale ifindex"
ip link del "$D1"

log "clamps of idle flows are lifted at stop and at --cleanup"
CG=/sys/fs/cgroup/unified/$LAB_PREFIX-hard
mkdir -p "$CG"
on_exit "rmdir $CG 2>/dev/null; true"
PORT=$((20000 + $$ % 20000))
cat >"$TMP/server.py" <<'PYEOF'
import socket, sys, threading
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(16)
def drain(c):
    while c.recv(65536):
        pass
while True:
    c, _ = l.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
PYEOF
# Sends for ARG2 seconds (ACKs come back, so sockops can clamp), then pauses.
cat >"$TMP/client.py" <<'PYEOF'
import socket, sys, time
s = socket.socket()
# ssthresh shows the clamp (TCP_BPF_SNDCWND_CLAMP sets it); BBR would move it itself.
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
s.connect(("127.0.0.1", int(sys.argv[1])))
end = time.time() + float(sys.argv[2])
while time.time() < end:
    s.sendall(b"x" * 16384)
    time.sleep(0.005)
open(sys.argv[3], "w").write("paused\n")
time.sleep(300)
PYEOF
python3 "$TMP/server.py" "$PORT" 2>"$TMP/server.log" &
spid=$!
on_exit "kill $spid 2>/dev/null; true"
wait_for "ss -tln | grep -q 127.0.0.1:$PORT" 30 || fail "test server did not listen: $(cat "$TMP/server.log")"

# clamp_paused_flow NAME: a client in $CG, clamped to 10 packets by a decision
# written into cwnd_decisions, then paused. Sets CPID.
clamp_paused_flow() {
	local name=$1 key
	bash -c "echo \$\$ >$CG/cgroup.procs; exec python3 $TMP/client.py $PORT 3 $TMP/$name.paused" &
	CPID=$!
	on_exit "kill $CPID 2>/dev/null; true"
	wait_for "[ \$(bpftool -j map dump pinned $PIN/sock_flows | jq length) -ge 1 ]" 10 ||
		fail "sockops did not see the $name flow"
	key=$(bpftool -j map dump pinned "$PIN/sock_flows" | jq -r '.[0].key | join(" ")')
	bpftool map update pinned "$PIN/cwnd_decisions" key $key value 0x0a 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 ||
		fail "cannot write a decision for the $name flow"
	wait_for "ss -tin dst 127.0.0.1:$PORT | grep -q 'ssthresh:10 '" 10 ||
		fail "the $name flow was not clamped: $(ss -tin dst 127.0.0.1:$PORT)"
	wait_for "[ -e $TMP/$name.paused ]" 10 || fail "the $name client did not pause"
	sleep 0.5
	ss -tin dst 127.0.0.1:$PORT | grep -q 'ssthresh:10 ' || fail "the paused $name flow lost its clamp early: $(ss -tin dst 127.0.0.1:$PORT; bpftool map dump pinned $PIN/counters | grep -c .)"
}

"$RD" --iface lo --cgroup "$CG" --pin-dir "$PIN" --shadow --decision-log "$TMP/decisions.log" 2>"$TMP/a.log" &
apid=$!
on_exit "kill -9 $apid 2>/dev/null; wait $apid 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not start: $(cat "$TMP/a.log")"
clamp_paused_flow stop
expect_refused "already has reflex's sockops program" "$RD" --iface lo --cgroup "$CG" --pin-dir "$PIN-2"
[ ! -e "$PIN-2" ] || fail "a refused second reflexd left $PIN-2"
kill -TERM "$apid"; wait "$apid"
expect_eq "$(ss -tin dst 127.0.0.1:$PORT | grep -c 'ssthresh:10 ')" 0 "clamped idle flows after reflexd stopped"
grep -q "lifted the clamp of 1 idle flow" "$TMP/a.log" || fail "reflexd did not report the lift: $(cat "$TMP/a.log")"
kill "$CPID"

"$RD" --iface lo --cgroup "$CG" --pin-dir "$PIN" --shadow --decision-log "$TMP/decisions.log" 2>"$TMP/a.log" &
apid=$!
on_exit "kill -9 $apid 2>/dev/null; wait $apid 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not start: $(cat "$TMP/a.log")"
clamp_paused_flow kill
kill -9 "$apid"; wait "$apid" 2>/dev/null
ss -tin dst 127.0.0.1:$PORT | grep -q 'ssthresh:10 ' || fail "the clamp went before --cleanup (test proves nothing)"
"$RD" --cleanup --pin-dir "$PIN" 2>"$TMP/err" || fail "--cleanup failed: $(cat "$TMP/err")"
expect_eq "$(ss -tin dst 127.0.0.1:$PORT | grep -c 'ssthresh:10 ')" 0 "clamped idle flows after kill -9 and --cleanup"
kill "$CPID"; wait "$CPID" 2>/dev/null

log "a full flow table keeps the cgroup's sockets and counts what it refuses"
"$RD" --iface lo --cgroup "$CG" --pin-dir "$PIN" --observe --max-flows 64 --telemetry-out "$TMP/t.csv" 2>"$TMP/a.log" &
apid=$!
on_exit "kill -9 $apid 2>/dev/null; wait $apid 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not start: $(cat "$TMP/a.log")"
for p in $(seq 1 200); do echo x >/dev/udp/127.0.0.1/$((30000 + p)); done
sleep 0.5
bash -c "echo \$\$ >$CG/cgroup.procs; exec python3 $TMP/client.py $PORT 2 $TMP/full.paused" &
CPID=$!
wait_for "[ -e $TMP/full.paused ]" 15 || fail "the client did not run"
sleep 0.5
kill "$CPID"; wait "$CPID" 2>/dev/null
kill -TERM "$apid"; wait "$apid"
summary=$(grep "reflexd: ran" "$TMP/a.log")
refused=$(sed -n 's/.*flows_refused=\([0-9]*\).*/\1/p' <<<"$summary")
expect_ge "$refused" 1 "flows refused by a full table (200 UDP tuples, --max-flows 64)"
grep -q ",flow,tcp:127.0.0.1:[0-9]*-127.0.0.1:$PORT," "$TMP/t.csv" ||
	fail "the cgroup's TCP flow was not tracked in a full table: $summary"
log "$(sed -n 's/.*\(flows_refused=.*\)/\1/p' <<<"$summary")"

kill "$spid"; wait "$spid" 2>/dev/null
rmdir "$CG" || fail "cannot remove $CG"
leftovers_check "$LAB_PREFIX"
log "all checks passed"
