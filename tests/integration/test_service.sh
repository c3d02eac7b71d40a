#!/usr/bin/env bash
# reflex as a service: `make install` into a DESTDIR tree puts every file where the
# README says and never overwrites an edited reflexd.conf, `make uninstall` removes
# what it installed; the installed systemd units pass `systemd-analyze verify` (with
# no finding; systemd is not PID 1 here, so verification is all that runs); each man
# page renders with `man -l` without a warning; `--check-config` prints the effective
# configuration of the installed example and names file, line and key on errors;
# under journald (JOURNAL_STREAM) log lines carry <N> priorities and -q drops info.
source "$(dirname "$0")/lib.sh"

for tool in systemd-analyze man make; do
	command -v "$tool" >/dev/null || fail "$tool is missing (scripts/deps.sh installs it)"
done
TMP=$(mktemp -d)
on_exit "rm -rf $TMP"
DEST=$TMP/dest
install_tree() { make -s --no-print-directory -C "$REPO" "$@" 2>&1; }

# --- make install / uninstall into DESTDIR ------------------------------------
install_tree install DESTDIR="$DEST" PREFIX=/usr >"$TMP/install.log" || fail "make install: $(cat "$TMP/install.log")"
for f in usr/sbin/reflexd usr/bin/reflexctl usr/bin/reflex-forge usr/share/reflex/models/cwnd.reflex \
	usr/share/reflex/models/batching.reflex usr/share/reflex/models/dqn.reflex etc/reflex/reflexd.conf \
	usr/share/reflex/reflexd.conf.example usr/lib/systemd/system/reflexd.service \
	usr/lib/systemd/system/reflexd@.service usr/share/man/man8/reflexd.8 usr/share/man/man8/reflexctl.8 \
	usr/share/man/man1/reflex-forge.1 usr/share/man/man5/reflex.5; do
	[ -f "$DEST/$f" ] || fail "make install did not install /$f: $(cd "$DEST" && find . -type f)"
done
expect_eq "$(stat -c %a "$DEST/usr/sbin/reflexd")" 755 "mode of the installed reflexd"
expect_eq "$(grep -c '^ExecStart=/usr/sbin/reflexd --config /etc/reflex/reflexd.conf$' \
	"$DEST/usr/lib/systemd/system/reflexd.service")" 1 "installed unit's ExecStart"
expect_eq "$(grep -c '^cwnd = /usr/share/reflex/models/cwnd.reflex$' "$DEST/etc/reflex/reflexd.conf")" 1 \
	"installed config's model path"
echo "; edited by the operator" >>"$DEST/etc/reflex/reflexd.conf"
install_tree install DESTDIR="$DEST" PREFIX=/usr >"$TMP/install2.log" || fail "second make install failed"
expect_eq "$(tail -1 "$DEST/etc/reflex/reflexd.conf")" "; edited by the operator" "edited reflexd.conf after a reinstall"
grep -q "keeping $DEST/etc/reflex/reflexd.conf" "$TMP/install2.log" || fail "reinstall did not say it kept the config"
install_tree uninstall DESTDIR="$DEST" PREFIX=/usr >"$TMP/uninstall.log" || fail "make uninstall failed"
left=$(cd "$DEST" && find . -type f | sort | paste -sd' ')
expect_eq "$left" "./etc/reflex/reflexd.conf" "files left by make uninstall (the edited config only)"
rm "$DEST/etc/reflex/reflexd.conf"

# --- systemd-analyze verify on units installed where their paths exist ---------
ROOT=$TMP/root
install_tree install PREFIX="$ROOT/usr" SYSCONFDIR="$ROOT/etc" >"$TMP/install3.log" || fail "make install PREFIX=$ROOT/usr failed"
UNITS=$ROOT/usr/lib/systemd/system
ln -s reflexd@.service "$UNITS/reflexd@eth0.service"
export MANPATH=$ROOT/usr/share/man # Documentation=man:... is checked against the installed pages
for unit in reflexd.service reflexd@eth0.service; do
	out=$(systemd-analyze verify "$UNITS/$unit" 2>&1)
	expect_eq "$?" 0 "systemd-analyze verify $unit exit code"
	expect_eq "$out" "" "systemd-analyze verify $unit findings"
done
sed 's/^Type=notify$/Type=notiffy/' "$UNITS/reflexd.service" >"$TMP/broken.service"
out=$(systemd-analyze verify "$TMP/broken.service" 2>&1)
[ -n "$out" ] || fail "systemd-analyze verify found nothing in a broken unit: the check above proves nothing"
log "a broken unit is caught: $out"
for key in 'Type=notify' 'Restart=on-failure' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' \
	'CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_SYS_ADMIN CAP_PERFMON CAP_SYS_NICE' 'ReadWritePaths=/sys/fs/bpf /run/reflex'; do
	grep -qx "$key" "$UNITS/reflexd.service" || fail "reflexd.service lacks $key"
done
grep -q '^ExecStopPost=.*SERVICE_RESULT.*--cleanup' "$UNITS/reflexd@.service" || fail "the template does not clean up after a failed stop"

# --- man pages ---------------------------------------------------------------
for page in "$ROOT"/usr/share/man/man*/*; do
	text=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=all -l "$page" 2>"$TMP/man.err")
	expect_eq "$(cat "$TMP/man.err")" "" "man -l warnings for $(basename "$page")"
	echo "$text" | grep -q '^NAME' || fail "$(basename "$page") has no NAME section: $text"
	expect_ge "$(echo "$text" | wc -l)" 20 "rendered lines of $(basename "$page")"
done

# --- --check-config ----------------------------------------------------------
RD=$ROOT/usr/sbin/reflexd
CONF=$ROOT/etc/reflex/reflexd.conf
"$RD" --config "$CONF" --check-config >"$TMP/effective.conf" 2>"$TMP/check.err" || fail "--check-config on the example: $(cat "$TMP/check.err")"
expect_eq "$(grep -c "^cwnd = $ROOT/usr/share/reflex/models/cwnd.reflex$" "$TMP/effective.conf")" 1 "effective cwnd model"
expect_eq "$(grep -c '^shadow = true$' "$TMP/effective.conf")" 1 "effective shadow"
"$RD" --config "$TMP/effective.conf" --check-config --flush-threshold 8 >"$TMP/again.conf" || fail "the printed configuration does not read back"
expect_eq "$(diff "$TMP/effective.conf" "$TMP/again.conf" | grep -c '^[<>] [a-z]')" 2 "lines changed by one command-line override"
expect_eq "$(grep -c '^flush-threshold = 8$' "$TMP/again.conf")" 1 "command line overrides the file"

check_error() { # FILE_TEXT EXPECTED_STDERR
	printf '%b' "$1" >"$TMP/bad.conf"
	"$RD" --config "$TMP/bad.conf" --check-config >"$TMP/bad.out" 2>"$TMP/bad.err"
	expect_eq "$?" 2 "exit code of --check-config on: $1"
	expect_eq "$(wc -c <"$TMP/bad.out")" 0 "stdout of a failed --check-config"
	expect_eq "$(head -1 "$TMP/bad.err")" "$2" "error of --check-config"
}
check_error '[host]\niface = eth0\n\nflush-threshold = 65\n' \
	"reflexd: $TMP/bad.conf:4: [host] key 'flush-threshold': '65' is not a whole number in 1..64 (see --help)"
check_error '[host]\niface = eth0\n[metrics]\nlisten = 9100\n' \
	"reflexd: $TMP/bad.conf:4: [metrics] key 'listen': unknown key (reflex(5) lists them) (see --help)"
check_error '[host]\niface = eth0\n[models]\ncwnd = /nonexistent.reflex\n' \
	"reflexd: $TMP/bad.conf:4: [models] key 'cwnd': /nonexistent.reflex: cannot open: No such file or directory"

# --- log levels: <N> under journald, -q ------------------------------------------
VA=${LAB_PREFIX}s0
ip link add "$VA" type veth peer name "${LAB_PREFIX}s1" || fail "cannot create a veth pair"
on_exit "ip link del $VA 2>/dev/null; true"
ip link set "$VA" up
PIN=/sys/fs/bpf/$LAB_PREFIX-svc
on_exit "$RD --cleanup --pin-dir $PIN >/dev/null 2>&1; true"
: >"$TMP/journal.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/journal.log") "$RD" --iface "$VA" --observe --pin-dir "$PIN" --duration 1 \
	2>>"$TMP/journal.log" || fail "reflexd --observe: $(cat "$TMP/journal.log")"
grep -q "^<6>reflexd: attached on $VA" "$TMP/journal.log" || fail "no <6> prefix under journald: $(cat "$TMP/journal.log")"
JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/journal.log") "$RD" --iface nosuchif0 --pin-dir "$PIN" 2>>"$TMP/journal.log"
grep -q "^<3>reflexd: interface 'nosuchif0' not found" "$TMP/journal.log" || fail "no <3> prefix on an error: $(cat "$TMP/journal.log")"
expect_eq "$(grep -vc '^<[0-7]>' "$TMP/journal.log")" 0 "journal lines without a priority"
"$RD" --iface "$VA" --observe --pin-dir "$PIN" --duration 1 -q 2>"$TMP/quiet.log" || fail "reflexd -q: $(cat "$TMP/quiet.log")"
expect_eq "$(wc -l <"$TMP/quiet.log")" 0 "lines of an uneventful run with -q"
"$RD" --iface "$VA" --observe --pin-dir "$PIN" --duration 1 2>"$TMP/plain.log" || fail "reflexd: $(cat "$TMP/plain.log")"
grep -q "^reflexd: attached on $VA" "$TMP/plain.log" || fail "no plain attached line outside journald: $(cat "$TMP/plain.log")"

# --- sd_notify: READY=1 once attached, STOPPING=1 when stopping (what Type=notify waits
# for), and a STATUS line for `systemctl status`
cat >"$TMP/notify.pl" <<'PERL'
use IO::Socket::UNIX;
my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $ARGV[0]) or die "bind: $!";
$| = 1;
while (1) { my $m; defined $s->recv($m, 4096) or last; print "$m\n"; }
PERL
perl "$TMP/notify.pl" "$TMP/notify.sock" >"$TMP/notify.log" 2>&1 &
NOTIFY_PID=$!
on_exit "stop_pid $NOTIFY_PID"
wait_for "[ -S $TMP/notify.sock ]" 5 || fail "the notify listener did not start: $(cat "$TMP/notify.log")"
NOTIFY_SOCKET=$TMP/notify.sock "$RD" --iface "$VA" --observe --pin-dir "$PIN" --duration 1 2>"$TMP/notified.log" ||
	fail "reflexd under NOTIFY_SOCKET: $(cat "$TMP/notified.log")"
wait_for "grep -q STOPPING=1 $TMP/notify.log" 3 || fail "no STOPPING=1: $(cat "$TMP/notify.log")"
expect_eq "$(grep -c '^READY=1$' "$TMP/notify.log")" 1 "READY=1 messages"
grep -q "^STATUS=observe on $VA: 0 flows, 0 decisions$" "$TMP/notify.log" || fail "no STATUS line: $(cat "$TMP/notify.log")"
expect_eq "$(grep -n -e '^READY=1$' -e '^STOPPING=1$' "$TMP/notify.log" | cut -d: -f2 | paste -sd,)" "READY=1,STOPPING=1" \
	"notification order"

# --- SIGHUP with --config: knobs change live, the rest is named as needing a restart
printf '[host]\niface = %s\nobserve = true\npin-dir = %s\nsample-interval-ms = 10\n' "$VA" "$PIN" >"$TMP/live.conf"
"$RD" --config "$TMP/live.conf" 2>"$TMP/live.log" &
LIVE_PID=$!
on_exit "stop_pid $LIVE_PID"
wait_for "grep -q 'attached on' $TMP/live.log" 10 || fail "reflexd --config did not attach: $(cat "$TMP/live.log")"
interval() { bpftool -j map dump pinned "$PIN/reflex_config" | jq -r '.[0].formatted.value.sample_interval_ns'; }
expect_eq "$(interval)" 10000000 "sample_interval_ns before the reload"
printf '[host]\niface = %s\nobserve = true\npin-dir = %s\nsample-interval-ms = 20\n[metrics]\nmetrics-listen = 9\n' \
	"$VA" "$PIN" >"$TMP/live.conf"
kill -HUP "$LIVE_PID"
wait_for "grep -q 'reload of' $TMP/live.log" 5 || fail "no reload line: $(cat "$TMP/live.log")"
expect_eq "$(grep 'reload of' "$TMP/live.log")" \
	"reflexd: reload of $TMP/live.conf: applied sample-interval-ms; changed but needs a restart: metrics-listen" \
	"the reload line"
expect_eq "$(interval)" 20000000 "sample_interval_ns after the reload"
printf '[host]\niface = %s\nflush-threshold = 0\n' "$VA" >"$TMP/live.conf"
kill -HUP "$LIVE_PID"
wait_for "grep -q 'reload refused' $TMP/live.log" 5 || fail "a bad file was not refused: $(cat "$TMP/live.log")"
log "$(grep 'reload refused' "$TMP/live.log")"
kill -TERM "$LIVE_PID"
wait "$LIVE_PID" || fail "reflexd exit code $? after the reloads: $(cat "$TMP/live.log")"
log "all checks passed"
