#!/usr/bin/env bash
# The arena: every scheme (kernel cubic and bbr, reflexd with its heuristic, the tree, the
# DQN, and the tree through the cc actuator) through the scenarios of scenarios.conf in
# the netns lab, in interleaved rounds; then report.sh writes the figures, a Markdown
# table and one Pantheon-style plot per scenario.
#
# usage: scripts/arena/arena.sh [--set full|bench] [--scenario NAME[,NAME...]]
#                               [--rounds N] [--secs S] [--schemes LIST] [--out DIR]
#   --set       which scenarios (the sets= key; default full)
#   --scenario  only these (any set)
#   --rounds    interleaved rounds (default 3): round 1 runs every scenario and scheme,
#               then round 2 ...; the report takes medians over rounds
#   --secs      override every scenario's transfer length (short validation runs)
#   --schemes   only these schemes (comma-separated), where the scenario has them
#   --out       result directory (default build/arena); results.csv gains one row per run
#
# Repeatable: a trace scenario replays the same segment (offset=) in every run, random
# loss uses seed ARENA_SEED (default 1) plus the round. Each run brings its own lab up
# and down, so every scheme meets the trace from the segment's first millisecond.
# Needs root, the plain build (REFLEX_BIN, default build/), iperf3, jq, gnuplot.
# ARENA_MODELS=DIR runs the model schemes with DIR/cwnd.reflex and DIR/dqn.reflex.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
BIN=${REFLEX_BIN:-$REPO/build}
export REFLEX_BIN=$BIN
TRACES=${REFLEX_TRACES:-/work/shared/traces}
SEED=${ARENA_SEED:-1}
LAB=$REPO/scripts/lab/lab.sh
export LAB_PREFIX=${LAB_PREFIX:-ar$$}
PIN=/sys/fs/bpf/$LAB_PREFIX-rd
CONF=$REPO/scripts/arena/scenarios.conf
# The models the tree, dqn and tree-cc schemes run (a candidate: ARENA_MODELS=DIR).
MODELS=${ARENA_MODELS:-$REPO/models}

SET=full ONLY="" ROUNDS=3 SECS_OVERRIDE="" SCHEMES_ONLY="" OUT=$REPO/build/arena
while [ $# -gt 0 ]; do
	case "$1" in
	--set) SET=$2; shift 2 ;;
	--scenario) ONLY=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--secs) SECS_OVERRIDE=$2; shift 2 ;;
	--schemes) SCHEMES_ONLY=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "arena.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "arena.sh: --rounds '$ROUNDS': 1..99" >&2; exit 2; }
[ -z "$SECS_OVERRIDE" ] || [[ $SECS_OVERRIDE =~ ^[1-9][0-9]{0,3}$ ]] ||
	{ echo "arena.sh: --secs '$SECS_OVERRIDE': 1..9999" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "arena.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in iperf3 jq ping; do
	command -v "$tool" >/dev/null || { echo "arena.sh: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done
for prog in reflexd trace-link fct-probe; do
	[ -x "$BIN/$prog" ] || { echo "arena.sh: no $BIN/$prog: run make" >&2; exit 1; }
done

RD_PID="" SIDE_PIDS=()
cleanup_run() {
	local pid
	[ -n "$RD_PID" ] && { kill "$RD_PID" 2>/dev/null; wait "$RD_PID" 2>/dev/null; }
	RD_PID=""
	for pid in "${SIDE_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
	SIDE_PIDS=()
	"$BIN/reflexd" --cleanup --actuator cc --pin-dir "$PIN" >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
}
trap cleanup_run EXIT
trap 'exit 1' INT TERM

# --- scenarios ------------------------------------------------------------------------

declare -A SC
# Fills SC[key] from one line of scenarios.conf, with defaults.
load_scenario() { # LINE
	local word
	# shellcheck disable=SC2054 # the commas are in a value (the scheme list)
	SC=([secs]=10 [link]=tbf [dir]=up [buffer]=1mb [delay]=0 [loss]=0 [traffic]=bulk
		[offset]=0 [rate]=50mbit [rates]="" [trace]="" [sets]=full [schemes]=cubic,bbr,tree)
	for word in $1; do
		[[ $word == *=* ]] || { echo "arena.sh: $CONF: '$word' is not KEY=VALUE" >&2; exit 1; }
		SC[${word%%=*}]=${word#*=}
	done
	[ -n "$SECS_OVERRIDE" ] && SC[secs]=$SECS_OVERRIDE
	return 0
}

selected_lines() {
	local line name
	while IFS= read -r line; do
		[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
		load_scenario "$line"
		name=${SC[name]}
		if [ -n "$ONLY" ]; then
			[[ ",$ONLY," == *",$name,"* ]] && echo "$line"
		elif [[ ",${SC[sets]}," == *",$SET,"* ]]; then
			echo "$line"
		fi
	done <"$CONF"
}

# A mahimahi trace for a step or ramp scenario: lines for every 1500-byte opportunity.
synth_trace() { # KIND RATES SECS FILE
	awk -v kind="$1" -v rates="$2" -v secs="$3" 'BEGIN {
		n = split(rates, r, ","); total = secs * 1000; carry = 0
		for (ms = 1; ms <= total; ms++) {
			if (kind == "step") mbit = r[int((ms - 1) * n / total) + 1]
			else mbit = r[1] + (r[n] - r[1]) * (ms - 1) / (total - 1)
			carry += mbit * 1e6 / 8 / 1500 / 1000
			while (carry >= 1) { print ms; carry -= 1 }
		}
	}' >"$4"
}

# --- one run ---------------------------------------------------------------------------

percentile() { # Q (0..1): nearest rank of the numbers on stdin
	sort -g | awk -v q="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print ""; exit }
		i = int(NR * q + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}

lab_env() { # -> VAR=VALUE words for lab.sh up
	local seed=$((SEED + ROUND))
	case "${SC[link]}" in
	trace | step | ramp)
		echo "LAB_TRACE=$LINK_TRACE LAB_TRACE_DIR=${SC[dir]} LAB_TRACE_OFFSET_MS=${SC[offset]}" \
			"LAB_TRACE_BUFFER=${SC[buffer]} LAB_DELAY_MS=${SC[delay]} LAB_LOSS_PCT=${SC[loss]}" \
			"LAB_TRACE_SEED=$seed LAB_TRACE_STATS=$RUN/link.csv LAB_TRACE_BIN_MS=100"
		;;
	tbf)
		echo "LAB_RATE=${SC[rate]} LAB_BUFFER=${SC[buffer]} LAB_DELAY_MS=${SC[delay]} LAB_LOSS_PCT=${SC[loss]}"
		;;
	*) echo "arena.sh: scenario ${SC[name]}: unknown link '${SC[link]}'" >&2; exit 1 ;;
	esac
}

# reflexd on the sending side: the client's namespace and cgroup for uploads; for
# downloads the server's namespace, with the server's iperf3 moved into the lab's cgroup.
reflexd_args() { # SCHEME
	case "$1" in
	heuristic) echo "" ;;
	tree) echo "--model cwnd=$MODELS/cwnd.reflex" ;;
	dqn) echo "--policy cwnd=dqn --model dqn=$MODELS/dqn.reflex" ;;
	tree-cc) echo "--model cwnd=$MODELS/cwnd.reflex --actuator cc" ;;
	esac
}

start_reflexd() { # SCHEME SENDER_NODE
	local i
	local -a args
	read -ra args <<<"$(reflexd_args "$1")"
	nsenter --net="/run/netns/$("$LAB" netns "$2")" "$BIN/reflexd" --iface "$("$LAB" iface "$2")" \
		--cgroup "$("$LAB" cgroup)" --pin-dir "$PIN" --decision-log "$RUN/decisions.log" \
		"${args[@]}" 2>"$RUN/reflexd.log" &
	RD_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -e "$PIN/sockops_link" ] && return 0
		kill -0 "$RD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "arena.sh: reflexd did not start for $1 (see $RUN/reflexd.log)" >&2
	return 1
}

is_reflex() { case "$1" in cubic | bbr) return 1 ;; esac; return 0; }

# The congestion control iperf3 asks for: the kernel schemes' own, cubic under reflexd;
# none with the cc actuator (iperf3 -C after connect would undo sockops' choice).
cc_flag() { # SCHEME
	case "$1" in
	bbr) echo "-C bbr" ;;
	tree-cc) echo "" ;;
	*) echo "-C cubic" ;;
	esac
}

# Start an iperf3 server (JSON, one test) on PORT; with IN_CGROUP in the lab's cgroup
# from its start (accepted sockets belong to the listener's cgroup).
iperf_server() { # PORT IN_CGROUP
	local i cgroup
	cgroup=$("$LAB" cgroup)
	if [ "$2" = 1 ]; then
		# shellcheck disable=SC2016 # $$ of the inner shell, which then becomes iperf3
		REFLEX_LAB=$LAB_PREFIX sh -c 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="$2" -- iperf3 -s -1 -J -p "$3"' \
			sh "$cgroup" "/run/netns/$("$LAB" netns server)" "$1" >"$RUN/iperf-server-$1.json" 2>&1 &
	else
		"$LAB" exec server iperf3 -s -1 -J -p "$1" >"$RUN/iperf-server-$1.json" 2>&1 &
	fi
	SIDE_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		[ -n "$("$LAB" exec server ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

# An iperf3 client from the client node: in the lab's cgroup (IN_CGROUP=1, reflexd runs
# it for uploads) or beside it (another host as far as reflexd is concerned).
iperf_client() { # PORT IN_CGROUP OUTFILE ARGS...
	local port=$1 in_cgroup=$2 out=$3 secs=${IPERF_SECS:-${SC[secs]}}
	shift 3
	if [ "$in_cgroup" = 1 ]; then
		"$LAB" exec client timeout $((secs + 30)) iperf3 -c "$SERVER" -p "$port" \
			-t "$secs" -i 0.5 -J --get-server-output "$@" >"$out" 2>&1
	else
		nsenter --net="/run/netns/$("$LAB" netns client)" timeout $((secs + 30)) iperf3 \
			-c "$SERVER" -p "$port" -t "$secs" -i 0.5 -J --get-server-output "$@" >"$out" 2>&1
	fi
}

# Figures of the run from the files in RUN, appended to results.csv.
record_run() { # SCHEME T0_MS
	local scheme=$1 t0=$2 json=$RUN/iperf.json sender=".intervals" sent=".end.sum_sent"
	local mbit offered util p50 p95 r50 r95 retrans fct50="" fct95="" jain="" share=""
	if [ "${SC[dir]}" = down ]; then
		sender=".server_output_json.intervals"
		sent=".server_output_json.end.sum_sent"
	fi
	mbit=$(jq -r '.end.sum_received.bits_per_second / 1e6' "$json" 2>/dev/null)
	[[ $mbit =~ ^[0-9.e+-]+$ ]] || { echo "arena.sh: $RUN: no iperf3 result" >&2; mbit=""; }
	# Utilization: the scheme's goodput over the tbf rate; on a traced link, the bytes the
	# link delivered over those it offered in the transfer's 100 ms bins (iperf3's own
	# interval starts a handshake later, which on a swinging trace is not the same).
	if [ "${SC[link]}" = tbf ]; then
		offered=$(awk -v r="${SC[rate]}" 'BEGIN { v = r + 0; if (r ~ /gbit/) v *= 1000; if (r ~ /kbit/) v /= 1000; print v }')
		util=$(awk -v m="$mbit" -v o="$offered" 'BEGIN { if (m != "" && o > 0) printf "%.3f", m / o }')
	else
		read -r offered util < <(awk -F, -v a="$t0" -v b=$((t0 + SC[secs] * 1000)) '
			NR > 1 && $2 >= a && $2 < b { off += $3; del += $4; n++ }
			END { if (n && off) printf "%.3f %.3f\n", off * 8 / (n * 100) / 1000, del / off; else print "" }' \
			"$RUN/link.csv")
	fi
	p50=$(grep -oE 'time=[0-9.]+' "$RUN/ping.txt" | cut -d= -f2 | percentile 0.5)
	p95=$(grep -oE 'time=[0-9.]+' "$RUN/ping.txt" | cut -d= -f2 | percentile 0.95)
	r50=$(jq -r "[${sender}[]?.streams[]?.rtt // empty] | .[] / 1000" "$json" 2>/dev/null | percentile 0.5)
	r95=$(jq -r "[${sender}[]?.streams[]?.rtt // empty] | .[] / 1000" "$json" 2>/dev/null | percentile 0.95)
	retrans=$(jq -r "$sent.retransmits // empty" "$json" 2>/dev/null)
	case "${SC[traffic]}" in
	fct)
		fct50=$(percentile 0.5 <"$RUN/fct.txt")
		fct95=$(percentile 0.95 <"$RUN/fct.txt")
		;;
	flows4)
		jain=$(jq -r '[.end.streams[].receiver.bits_per_second] |
			(add * add) / (length * (map(. * .) | add)) * 1000 | round / 1000' "$json" 2>/dev/null)
		;;
	compete)
		share=$(jq -rn --slurpfile a "$json" --slurpfile b "$RUN/iperf-cubic.json" '
			$a[0].end.sum_received.bits_per_second as $x | $b[0].end.sum_received.bits_per_second as $y |
			$x / ($x + $y) * 1000 | round / 1000' 2>/dev/null)
		;;
	esac
	echo "${SC[name]},$scheme,$ROUND,${SC[secs]},$mbit,$offered,$util,$p50,$p95,$r50,$r95,$retrans,$fct50,$fct95,$jain,$share" \
		>>"$OUT/results.csv"
}

one_run() { # SCHEME
	local scheme=$1 sender=client t0 ping_pid fct_pid=""
	local -a env_words cc
	RUN=$OUT/runs/${SC[name]}/$scheme-r$ROUND
	rm -rf "$RUN"
	mkdir -p "$RUN"
	read -ra env_words <<<"$(lab_env)"
	read -ra cc <<<"$(cc_flag "$scheme")"
	if ! env "${env_words[@]}" "$LAB" up >"$RUN/lab.log" 2>&1; then
		echo "arena.sh: lab up failed for ${SC[name]} (see $RUN/lab.log)" >&2
		cleanup_run
		return 1
	fi
	SERVER=$("$LAB" addr server)
	[ "${SC[dir]}" = down ] && sender=server
	iperf_server 5201 "$([ "$sender" = server ] && is_reflex "$scheme" && echo 1 || echo 0)" ||
		{ echo "arena.sh: iperf3 server did not start" >&2; cleanup_run; return 1; }
	[ "${SC[traffic]}" = compete ] && iperf_server 5202 0
	if [ "${SC[traffic]}" = fct ]; then
		"$LAB" exec server "$BIN/fct-probe" server --port 5300 2>>"$RUN/fct.log" &
		SIDE_PIDS+=($!)
	fi
	if is_reflex "$scheme"; then
		start_reflexd "$scheme" "$sender" || { cleanup_run; return 1; }
	fi
	nsenter --net="/run/netns/$("$LAB" netns client)" ping -n -i 0.05 -w "${SC[secs]}" "$SERVER" \
		>"$RUN/ping.txt" 2>&1 &
	ping_pid=$!
	t0=$(date +%s%3N)
	case "${SC[traffic]}" in
	bulk)
		if [ "$sender" = server ]; then
			iperf_client 5201 0 "$RUN/iperf.json" "${cc[@]}" -R
		else
			iperf_client 5201 1 "$RUN/iperf.json" "${cc[@]}"
		fi
		;;
	flows4) iperf_client 5201 1 "$RUN/iperf.json" -P 4 "${cc[@]}" ;;
	compete)
		IPERF_SECS=${SC[rival_secs]:-${SC[secs]}} iperf_client 5202 0 "$RUN/iperf-cubic.json" -C cubic &
		local other=$!
		iperf_client 5201 1 "$RUN/iperf.json" "${cc[@]}"
		wait "$other"
		;;
	fct)
		( sleep 1; exec "$LAB" exec client "$BIN/fct-probe" client --connect "$SERVER" --port 5300 \
			--bytes 102400 --interval-ms 500 --count $(((SC[secs] - 2) * 2)) >"$RUN/fct.txt" 2>>"$RUN/fct.log" ) &
		fct_pid=$!
		iperf_client 5201 1 "$RUN/iperf.json" "${cc[@]}"
		wait "$fct_pid"
		;;
	*) echo "arena.sh: unknown traffic '${SC[traffic]}'" >&2 ;;
	esac
	wait "$ping_pid"
	[ -n "$RD_PID" ] && { kill "$RD_PID"; wait "$RD_PID" 2>/dev/null; RD_PID=""; }
	cleanup_run
	record_run "$scheme" "$t0"
}

# --- main ------------------------------------------------------------------------------

mkdir -p "$OUT"
mapfile -t LINES < <(selected_lines)
[ ${#LINES[@]} -gt 0 ] || { echo "arena.sh: no scenario selected (set '$SET', scenario '$ONLY')" >&2; exit 2; }
[ -f "$OUT/results.csv" ] ||
	echo "scenario,scheme,round,secs,mbit,offered_mbit,utilization,ping_p50_ms,ping_p95_ms,rtt_p50_ms,rtt_p95_ms,retransmits,fct_p50_ms,fct_p95_ms,jain,share" \
		>"$OUT/results.csv"
mkdir -p "$OUT/traces"
echo "arena: ${#LINES[@]} scenarios x $ROUNDS rounds -> $OUT (started $(date -u +%H:%M:%S))"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
	for line in "${LINES[@]}"; do
		load_scenario "$line"
		case "${SC[link]}" in
		trace) LINK_TRACE=$TRACES/${SC[trace]} ;;
		step | ramp)
			LINK_TRACE=$OUT/traces/${SC[name]}-${SC[secs]}s.trace
			[ -f "$LINK_TRACE" ] || synth_trace "${SC[link]}" "${SC[rates]}" "${SC[secs]}" "$LINK_TRACE"
			;;
		esac
		IFS=, read -ra schemes <<<"${SC[schemes]}"
		for scheme in "${schemes[@]}"; do
			case "$scheme" in
			tree | tree-cc) [ -f "$MODELS/cwnd.reflex" ] || continue ;;
			dqn) [ -f "$MODELS/dqn.reflex" ] || continue ;;
			esac
			[ -z "$SCHEMES_ONLY" ] || [[ ",$SCHEMES_ONLY," == *",$scheme,"* ]] || continue
			printf '  round %d  %-20s %-10s ' "$ROUND" "${SC[name]}" "$scheme"
			if one_run "$scheme"; then
				tail -1 "$OUT/results.csv" | awk -F, '{ printf "%6.2f Mbit/s  util %s  ping p95 %s ms\n", $5, $7, $9 }'
			else
				echo "FAILED"
			fi
		done
	done
done
echo "arena: done $(date -u +%H:%M:%S); report: scripts/arena/report.sh $OUT"
