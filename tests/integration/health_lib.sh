# Shared by the model-health tests (test_drift, test_anomaly), sourced after lib.sh:
# a lab with +20 ms RTT under cubic, an iperf3 server, and reflexd and an upload on
# the client. train_on_upload records 30 s of the upload with reflexd and has
# reflex-forge build a cwnd tree on its last 20 s (past slow start): $TMP/cwnd.reflex,
# its report in $TMP/forge.log, so a test knows what the training traffic was.
lab_up LAB_DELAY_MS=20 LAB_CC=cubic
CLIENT_IF=$(lab iface client)
SERVER=$(lab addr server)
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
NS_CLIENT=/run/netns/$(lab netns client)
in_client() { nsenter --net="$NS_CLIENT" "$@"; }

start_reflexd() { # args...
	nsenter --net="$NS_CLIENT" "$REFLEX_BIN/reflexd" --iface "$CLIENT_IF" --cgroup "$(lab cgroup)" --pin-dir "$PIN" \
		--decision-log "$TMP/decisions.log" "$@" 2>>"$TMP/reflexd.log" &
	RD_PID=$!
	wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"
}
nsenter --net=/run/netns/"$(lab netns server)" timeout 150 iperf3 -s -p 5201 >/dev/null 2>&1 &
on_exit "kill $! 2>/dev/null; true"
upload() { # seconds (reflexd sees only connections made after it attached)
	lab exec client timeout $(($1 + 10)) iperf3 -c "$SERVER" -p 5201 -t "$1" -P 2 >/dev/null 2>&1 &
	IPERF_PID=$!
	on_exit "kill $IPERF_PID 2>/dev/null; true"
}

train_on_upload() {
	start_reflexd --observe --telemetry-out "$TMP/all.csv"
	upload 30
	wait "$IPERF_PID"
	stop_pid "$RD_PID"
	"$REFLEX_BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
	awk -F, 'NR == 1 { print; next } !t0 { t0 = $1 } $1 >= t0 + 10e9' "$TMP/all.csv" >"$TMP/train.csv"
	"$REFLEX_BIN/reflex-forge" build --recipe cwnd "$TMP/train.csv" -o "$TMP/cwnd.reflex" >"$TMP/forge.log" 2>&1 ||
		fail "reflex-forge: $(tail -3 "$TMP/forge.log")"
}
