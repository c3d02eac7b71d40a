# The soak's load: LONG connections that each send 16 KB every 100 ms for SECONDS, and
# meanwhile short connections (connect, 1 KB, close) at RATE per second. Then the long
# ones pause (idle, still open) and PAUSED_FILE is written; they close on SIGTERM.
# Prints "short=N failed=M" when the short load ends.
import signal, socket, sys, time

server, port, seconds, rate, longs, paused_file = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \
    float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

long_socks = []
for _ in range(longs):
    s = socket.create_connection((server, port))
    s.setblocking(False)
    long_socks.append(s)

chunk, small = b"x" * 16384, b"y" * 1024
start = time.monotonic()
next_short = next_long = start
short = failed = 0
while time.monotonic() - start < seconds:
    now = time.monotonic()
    if now >= next_long:
        for s in long_socks:
            try:
                s.send(chunk)
            except BlockingIOError:
                pass
        next_long += 0.1
    while now >= next_short:
        try:
            c = socket.create_connection((server, port), timeout=2)
            c.sendall(small)
            c.close()
            short += 1
        except OSError:
            failed += 1
        next_short += 1.0 / rate
    time.sleep(max(0.0, min(next_short, next_long) - time.monotonic()))
print(f"short={short} failed={failed}", flush=True)
open(paused_file, "w").write("paused\n")
time.sleep(3600)
