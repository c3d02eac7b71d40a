#!/usr/bin/env bash
# sockops samples every flow of the cgroup about once per sample interval (10 ms),
# whether it sends all the time or now and then. On loopback (RTT in µs, far under
# the interval) sockops reads a socket's storage only on the callbacks just after
# the boundaries of the flow's sample grid, or after which the flow goes idle:
#  - dense: one connection sends as fast as it can for 2 s; its sender must get a
#    sample in most intervals (at least 75 %: 93-99 % on a quiet machine, 87-92 %
#    next to two busy loops, as before the windows, for the flow itself stalls) and
#    never more than one;
#  - sparse: one connection exchanges 100 bytes each way every 200 ms, 20 times:
#    every exchange's callbacks are at least 200 ms after the last sample, so each of
#    the two sockets gives a sample per exchange (40), besides its establish and
#    close. A gate that assumes callbacks come a round trip apart (a sample when an
#    interval boundary falls in the last RTT) gives almost none here: it was tried,
#    and gave 4 records in all.
source "$(dirname "$0")/lib.sh"

NS=$LAB_PREFIX-sc
CG=/sys/fs/cgroup/unified/$LAB_PREFIX-sc
PIN=/sys/fs/bpf/$LAB_PREFIX-sc
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"

lo_netns_up "$NS" "$CG" "$PIN"

# One connection on loopback; argv[1]: dense (send as fast as it can for 2 s, print
# for how long) or sparse (20 exchanges of 100 bytes each way, 200 ms apart).
cat >"$TMP/flows.py" <<'PYEOF'
import socket, sys, threading, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4)
c = socket.create_connection(listener.getsockname())
s, _ = listener.accept()
if sys.argv[1] == "dense":
    def drain():
        while s.recv(1 << 20):
            pass
    reader = threading.Thread(target=drain)
    reader.start()
    chunk = b"x" * (1 << 16)
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        c.sendall(chunk)
    print("%.3f" % (time.monotonic() - start))
    c.close()
    reader.join()
else:
    for _ in range(20):
        c.sendall(b"x" * 100)
        s.recv(4096)
        s.sendall(b"y" * 100)
        c.recv(4096)
        time.sleep(0.2)
    c.close()
s.close()
PYEOF

# Runs flows.py MODE in the cgroup under a fresh reflexd; writes its output, then
# reflexd's count of sock records, to $TMP/MODE.out. (Not in a subshell: fail and
# on_exit must act on this shell.)
run_flows() { # MODE
	local rd_pid out records
	nsenter --net=/run/netns/"$NS" "$REFLEX_BIN/reflexd" --iface lo --cgroup "$CG" --pin-dir "$PIN" \
		--observe 2>"$TMP/reflexd.log" &
	rd_pid=$!
	on_exit "kill $rd_pid 2>/dev/null; wait $rd_pid 2>/dev/null; true"
	wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not start: $(cat "$TMP/reflexd.log")"
	out=$(bash -c "echo \$\$ >$CG/cgroup.procs; exec nsenter --net=/run/netns/$NS timeout 30 python3 $TMP/flows.py $1") ||
		fail "flows.py $1 failed"
	sleep 0.5
	kill -INT "$rd_pid"
	wait "$rd_pid" || fail "reflexd exited with an error: $(tail -5 "$TMP/reflexd.log")"
	records=$(grep -o '[0-9]* sock records' "$TMP/reflexd.log" | cut -d' ' -f1)
	echo "$out ${records:-0}" >"$TMP/$1.out"
}

run_flows dense
read -r secs records <"$TMP/dense.out"
intervals=$(awk -v s="$secs" 'BEGIN {printf "%d", s * 100}')
log "dense: $secs s of sending, $intervals intervals: $records sock records"
# The sender's samples, and 2 establish + 2 close; the receiver sends nothing to time.
expect_ge "$records" $((intervals * 3 / 4 + 4)) "sock records of a flow sending for $secs s (75 % of the intervals)"
expect_le "$records" $((intervals + 1 + 4)) "sock records of a flow sending for $secs s (one an interval at most)"

run_flows sparse
read -r records <"$TMP/sparse.out"
log "sparse: 20 exchanges 200 ms apart on 2 sockets: $records sock records"
# 40 exchange samples + 2 establish + 2 close; 36 leaves room for a slow machine
# merging an exchange into the next.
expect_ge "$records" 36 "sock records of a flow that sends every 200 ms"
log "all checks passed"
