# Test traffic for bench_flows.sh (nothing of reflex runs Python): N connections to a
# listener of this same process, so that all 2N sockets belong to the caller's cgroup.
# Every socket sends a few bytes and reads its peer's every CYCLE seconds, so each
# stays a live flow for reflexd (RTT samples, tc records) until STOP_FILE appears.
# Prints "open N" once all are connected. Usage: many_flows.py N CYCLE STOP_FILE
import os
import socket
import sys
import time

n, cycle, stop = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
pairs = []
for _ in range(n):
    c = socket.create_connection(listener.getsockname())
    s, _ = listener.accept()
    pairs.append((c, s))
print("open", len(pairs), flush=True)
while not os.path.exists(stop):
    start = time.monotonic()
    for c, s in pairs:
        c.send(b"x" * 100)
        s.send(b"y" * 100)
    for c, s in pairs:
        s.recv(4096)
        c.recv(4096)
    time.sleep(max(0.0, cycle - (time.monotonic() - start)))
