#!/usr/bin/env bash
# Prometheus metrics and reflexctl status on a live reflexd. reflexd runs in the lab's
# client namespace with the shipped cwnd model and --metrics-listen on that
# namespace's loopback while two uploads run. A scrape must pass `promtool check
# metrics`; a real Prometheus server, started in the same namespace, scrapes it every
# second for ~15 s, and its HTTP API must show reflex series whose counters grew.
# `reflexctl status` must report the running reflexd (mode, model SHA-256 equal to
# sha256sum's, a fresh heartbeat) and exit 0, show a refused reload as the last error,
# and exit 1 while reflexd is stopped (stale heartbeat) and after it is killed.
source "$(dirname "$0")/lib.sh"

require_bin reflexd
require_bin reflexctl
for tool in prometheus promtool curl; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
[ -f "$REPO/models/cwnd.reflex" ] || fail "models/cwnd.reflex is missing (make models)"
lab_up LAB_DELAY_MS=20 LAB_CC=cubic
PIN=/sys/fs/bpf/$LAB_PREFIX-mx
TMP=$(mktemp -d)
on_exit "rm -rf $TMP; $REFLEX_BIN/reflexd --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
cp "$REPO/models/cwnd.reflex" "$TMP/cwnd.reflex"
NS=/run/netns/$(lab netns client)
in_client() { nsenter --net="$NS" "$@"; }
PORT=9464
PROM_PORT=9090
SERVER=$(lab addr server)

nsenter --net="$NS" "$REFLEX_BIN/reflexd" --iface "$(lab iface client)" --cgroup "$(lab cgroup)" --pin-dir "$PIN" \
	--model cwnd="$TMP/cwnd.reflex" --decision-log "$TMP/decisions.log" \
	--metrics-listen "$PORT" 2>"$TMP/reflexd.log" &
RD_PID=$!
on_exit "stop_pid $RD_PID"
wait_for "[ -e $PIN/sockops_link ]" 10 || fail "reflexd did not attach: $(cat "$TMP/reflexd.log")"
grep -q "serving metrics on 127.0.0.1:$PORT" "$TMP/reflexd.log" || fail "no metrics line: $(cat "$TMP/reflexd.log")"

nsenter --net="$NS" timeout 40 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
on_exit "stop_pid $!"
nsenter --net=/run/netns/"$(lab netns server)" timeout 40 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
on_exit "stop_pid $!"
sleep 0.3
lab exec client timeout 40 iperf3 -c "$SERVER" -p 5201 -t 25 -P 2 >/dev/null &
IPERF_PID=$!
on_exit "stop_pid $IPERF_PID"

# Prometheus in the client namespace, scraping reflexd there every second.
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: reflexd
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
nsenter --net="$NS" prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
on_exit "stop_pid $PROM_PID"
wait_for "in_client curl -sf http://127.0.0.1:$PROM_PORT/-/ready" 20 ||
	fail "prometheus did not start: $(tail -5 "$TMP/prometheus.log")"

sleep 5
in_client curl -sf "http://127.0.0.1:$PORT/metrics" >"$TMP/scrape.txt" || fail "scraping /metrics failed"
promtool check metrics <"$TMP/scrape.txt" >"$TMP/promtool.txt" 2>&1 || fail "promtool: $(cat "$TMP/promtool.txt")"
expect_eq "$(wc -c <"$TMP/promtool.txt")" 0 "promtool check metrics findings"
families=$(grep -c '^# TYPE reflex_' "$TMP/scrape.txt")
expect_ge "$families" 30 "metric families on one scrape"
code=$(in_client curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")
expect_eq "$code" 404 "HTTP status of a path other than /metrics"

# reflexctl status while it runs: healthy, acting, the model's SHA-256, fresh heartbeat
status=$(in_client "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json) || fail "status exit $?: $status"
expect_eq "$(echo "$status" | jq -r .healthy)" true "status healthy"
expect_eq "$(echo "$status" | jq -r .pid)" "$RD_PID" "status pid"
expect_eq "$(echo "$status" | jq -r .mode)" acting "status mode"
expect_eq "$(echo "$status" | jq -r '.models[0].sha256')" "$(sha256sum "$REPO/models/cwnd.reflex" | cut -d' ' -f1)" \
	"status model sha256"
expect_le "$(echo "$status" | jq -r .heartbeat_age_s)" 0.5 "status heartbeat age (s)"
expect_ge "$(echo "$status" | jq -r .counters.sock_samples)" 1 "status sock_samples"
expect_ge "$(echo "$status" | jq -r '.maps.sock_flows.entries')" 1 "status sock_flows entries"
in_client "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" | sed 's/^/   /'

sleep 12 # ~15 s of scrapes in all
query() { # PROMQL -> the first result's value, or "none"
	in_client curl -sf --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
		jq -r '.data.result[0].value[1] // "none"'
}
series=$(in_client curl -sf --get "http://127.0.0.1:$PROM_PORT/api/v1/query" \
	--data-urlencode 'query=count({__name__=~"reflex_.+",job="reflexd"})' | jq -r '.data.result[0].value[1]')
expect_ge "$series" 60 "reflex series in Prometheus"
expect_eq "$(query 'up{job="reflexd"}')" 1 "Prometheus up{job=reflexd}"
for counter in 'reflex_bpf_events_total{counter="sock_samples"}' 'reflex_bpf_events_total{counter="tc_packets"}' \
	'reflex_ringbuf_records_total{ring="sock"}' 'reflex_windows_total'; do
	expect_ge "$(query "increase($counter[20s])")" 1 "increase of $counter over 20 s in Prometheus"
done
# caps change rarely (hysteresis): most are taken in the uploads' first seconds
expect_ge "$(query 'max_over_time(reflex_decisions_total{knob="cwnd_target",policy="cwnd-tree",acted="true"}[1m])')" 1 \
	"cwnd decisions of the tree that acted, in Prometheus"
expect_ge "$(query 'reflex_flow_srtt_seconds_count')" 1 "flows in the srtt histogram"
expect_eq "$(query 'reflex_model_info{role="cwnd"}')" 1 "model info gauge"
# the two uploads are both reflexd's: their shared queue is no competing flow's
lifts=$(query 'reflex_foreign_lifts_total{kind="first"}')
[ "$lifts" = 0 ] || log "the decisions before the lift: $(tail -n 30 "$TMP/decisions.log")"
expect_eq "$lifts" 0 "caps lifted for a competing flow's queue"

# a refused reload is the last error; the running model stays
printf 'not a model' >"$TMP/bad.reflex"
mv "$TMP/bad.reflex" "$TMP/cwnd.reflex"
wait_for "grep -q 'refused' $TMP/reflexd.log" 5 || fail "the bad model was not refused: $(cat "$TMP/reflexd.log")"
wait_for "in_client $REFLEX_BIN/reflexctl status --pin-dir $PIN --json | jq -e '.last_error | test(\"refused\")'" 3 ||
	fail "status does not show the refusal: $(in_client "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json)"
log "last error: $(in_client "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json | jq -r .last_error)"
expect_ge "$(in_client curl -sf "http://127.0.0.1:$PORT/metrics" | awk '$1 == "reflex_reloads_total" { print $2 }')" 1 \
	"reflex_reloads_total after the refused reload"

# a stopped reflexd: its heartbeat goes stale and status says so with exit 1
kill -STOP "$RD_PID"
sleep 1
in_client "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" --json >"$TMP/stopped.json"
code=$?
kill -CONT "$RD_PID"
expect_eq "$code" 1 "reflexctl status exit code while reflexd is stopped"
expect_eq "$(jq -r .problem "$TMP/stopped.json")" "heartbeat stale" "status problem while reflexd is stopped"
wait_for "in_client $REFLEX_BIN/reflexctl status --pin-dir $PIN >/dev/null" 3 || fail "status did not recover after SIGCONT"

stop_pid "$PROM_PID"
wait "$IPERF_PID" 2>/dev/null
kill -KILL "$RD_PID"
wait "$RD_PID" 2>/dev/null
in_client "$REFLEX_BIN/reflexctl" status --pin-dir "$PIN" >"$TMP/status.txt" 2>&1
expect_eq "$?" 1 "reflexctl status exit code after kill -9"
log "status after kill -9: $(cat "$TMP/status.txt")"
"$REFLEX_BIN/reflexd" --cleanup --pin-dir "$PIN" >/dev/null 2>&1
log "all checks passed"
