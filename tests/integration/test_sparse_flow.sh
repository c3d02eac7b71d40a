#!/usr/bin/env bash
# A flow that sends now and then is sampled as one that sends all the time: sockops
# samples a flow at most once per sample interval, and a flow idle for longer is
# sampled at its next RTT callback. On loopback (RTT in µs, far under the 10 ms
# interval) one connection of the cgroup exchanges 100 bytes each way every 200 ms,
# 20 times: every exchange's callbacks are at least 200 ms after the last sample, so
# each of the two sockets gives a sample per exchange (40), besides its establish and
# close. A gate that assumes callbacks come a round trip apart (a sample when an
# interval boundary falls in the last RTT) gives almost none here: it was tried, and
# gave 4 records in all.
source "$(dirname "$0")/lib.sh"

NS=$LAB_PREFIX-sp
CG=/sys/fs/cgroup/unified/$LAB_PREFIX-sp
PIN=/sys/fs/bpf/$LAB_PREFIX-sp
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"

lo_netns_up "$NS" "$CG" "$PIN"

cat >"$TMP/exchanges.py" <<'PYEOF'
import socket, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4)
c = socket.create_connection(listener.getsockname())
s, _ = listener.accept()
for _ in range(20):
    c.sendall(b"x" * 100)
    s.recv(4096)
    s.sendall(b"y" * 100)
    c.recv(4096)
    time.sleep(0.2)
c.close()
s.close()
PYEOF

nsenter --net=/run/netns/"$NS" "$REFLEX_BIN/reflexd" --iface lo --cgroup "$CG" --pin-dir "$PIN" --observe \
	2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "kill $RD_PID 2>/dev/null; wait $RD_PID 2>/dev/null; true"
wait_for "[ -e $PIN/sockops_link ]" 20 || fail "reflexd did not start: $(cat "$TMP/reflexd.log")"

bash -c "echo \$\$ >$CG/cgroup.procs; exec nsenter --net=/run/netns/$NS timeout 30 python3 $TMP/exchanges.py" ||
	fail "the exchanges failed"
sleep 0.5
kill -INT "$RD_PID"
wait "$RD_PID" || fail "reflexd exited with an error: $(tail -5 "$TMP/reflexd.log")"
records=$(grep -o '[0-9]* sock records' "$TMP/reflexd.log" | cut -d' ' -f1)
log "20 exchanges 200 ms apart on 2 sockets: $records sock records"
# 40 exchange samples + 2 establish + 2 close; 36 leaves room for a slow machine
# merging an exchange into the next.
expect_ge "${records:-0}" 36 "sock records of a flow that sends every 200 ms"
log "all checks passed"
