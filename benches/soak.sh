#!/usr/bin/env bash
# Soak test (issue 7, part 1): one Sluice daemon for hours under light
# load, its control plane checked every minute. Not run in CI.
#
# Sluice once panicked in every shard about 27 minutes after start (a
# leaked waker reference per 50 ms tick overflowed glommio's 16-bit
# counter; third_party/glommio/SLUICE-PATCHES.md). This runs a release
# daemon well past that point with mail flowing and asks it, every
# CHECK_EVERY seconds, for `postqueue -p` and `sluice status` (each must
# answer within CHECK_TIMEOUT seconds), then stops it with `sluice stop`
# and checks that it exited, that the log holds no panic, and that the
# sink got every message.
#
# Load: every ROUND_EVERY seconds, ROUND_MESSAGES messages of SIZE bytes
# over 2 sessions with `sluice source`, relayed to `sluice sink`
# (relayhost = the sink).
#
# Usage:
#   benches/soak.sh                      # 2 hours
#   SOAK_SECONDS=120 CHECK_EVERY=10 SKIP_BUILD=1 benches/soak.sh
#
# Environment (defaults in brackets):
#   SOAK_SECONDS [7200]   how long the daemon runs
#   CHECK_EVERY [60]      seconds between control-plane checks
#   CHECK_TIMEOUT [10]    seconds a check may take
#   ROUND_EVERY [10]      seconds between load rounds
#   ROUND_MESSAGES [20]   messages per round
#   SIZE [4096]           body bytes per message
#   SLUICE_BIN [${CARGO_TARGET_DIR:-target}/release/sluice]
#   SKIP_BUILD []         1 = do not run cargo build --release
#   KEEP []               1 = keep the temporary directory
#
# Exit status: 0 the daemon answered every check, stopped cleanly and
# relayed everything; 1 set-up error; 2 a check failed (listed at the end).

set -euo pipefail

SOAK_SECONDS=${SOAK_SECONDS:-7200}
CHECK_EVERY=${CHECK_EVERY:-60}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-10}
ROUND_EVERY=${ROUND_EVERY:-10}
ROUND_MESSAGES=${ROUND_MESSAGES:-20}
SIZE=${SIZE:-4096}
BENCH=soak
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice}
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
check_number SOAK_SECONDS CHECK_EVERY CHECK_TIMEOUT ROUND_EVERY ROUND_MESSAGES SIZE

TMP=$(mktemp -d)
SINK_PID=
cleanup() {
    sluice_stop
    [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null
    if [[ -n ${KEEP:-} ]]; then note "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

sluice_build || die "$SLUICE_WHY"

ROUNDS=$((SOAK_SECONDS / ROUND_EVERY))
TOTAL=$((ROUNDS * ROUND_MESSAGES))
PORT=$(free_port)
SINK_PORT=$(free_port)
CONF=$TMP/etc
mkdir -p "$CONF"
cat >"$CONF/main.cf" <<CF
queue_directory = $TMP/queue
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
CF
echo "127.0.0.1:$PORT inet n - n - - smtpd" >"$CONF/master.cf"

"$SLUICE_BIN" sink --count "$TOTAL" "127.0.0.1:$SINK_PORT" >"$TMP/sink.out" 2>&1 &
SINK_PID=$!
wait_listening "$SINK_PORT" 10 || die "the sink did not listen"
sluice_start "$CONF" "$PORT" "$TMP/sluice.log" || die "$SLUICE_WHY"
note "daemon $SLUICE_PID on 127.0.0.1:$PORT; $SOAK_SECONDS s, $TOTAL messages, checks every $CHECK_EVERY s"

FAILURES=()
fail() {
    FAILURES+=("$(date -u +%T) $*")
    echo "FAIL $(date -u +%T) $*" >&2
}

check_control_plane() {
    local minute=$1 t0 t1
    t0=$(now)
    timeout "$CHECK_TIMEOUT" "$SLUICE_BIN" -c "$CONF" postqueue -p >/dev/null 2>"$TMP/check.err" ||
        fail "minute $minute: postqueue -p failed or hung: $(head -c 300 "$TMP/check.err")"
    timeout "$CHECK_TIMEOUT" "$SLUICE_BIN" -c "$CONF" status >/dev/null 2>"$TMP/check.err" ||
        fail "minute $minute: sluice status failed or hung: $(head -c 300 "$TMP/check.err")"
    t1=$(now)
    kill -0 "$SLUICE_PID" 2>/dev/null || fail "minute $minute: the daemon is gone"
    printf 'check at %4s min: control plane answered in %.3f s, rss %s kB\n' "$minute" \
        "$(elapsed "$t0" "$t1")" "$(awk '/^VmRSS/ { print $2 }' "/proc/$SLUICE_PID/status" 2>/dev/null || echo n/a)"
}

START=$(date +%s)
next_check=$((START + CHECK_EVERY))
for ((round = 0; round < ROUNDS; round++)); do
    due=$((START + round * ROUND_EVERY))
    while (($(date +%s) < due)); do
        if (($(date +%s) >= next_check)); then
            check_control_plane $(((next_check - START) / 60))
            next_check=$((next_check + CHECK_EVERY))
        fi
        sleep 1
    done
    timeout 120 "$SLUICE_BIN" source -s 2 -m "$ROUND_MESSAGES" -l "$SIZE" -f soak@example.com -t to@example.net \
        "127.0.0.1:$PORT" >/dev/null 2>"$TMP/source.err" ||
        fail "round $round: sluice source failed: $(head -c 300 "$TMP/source.err")"
done
check_control_plane $((($(date +%s) - START) / 60))

# Everything relayed?
for ((i = 0; i < 60; i++)); do
    kill -0 "$SINK_PID" 2>/dev/null || break
    sleep 1
done
grep -q "$TOTAL messages received" "$TMP/sink.out" ||
    fail "the sink did not get all $TOTAL messages: $(tail -n 2 "$TMP/sink.out" | tr '\n' ' ')"

# A clean stop, bounded.
if timeout 60 "$SLUICE_BIN" -c "$CONF" stop >/dev/null 2>&1; then
    for ((i = 0; i < 300; i++)); do
        kill -0 "$SLUICE_PID" 2>/dev/null || break
        sleep 0.1
    done
fi
if kill -0 "$SLUICE_PID" 2>/dev/null; then
    fail "sluice stop did not stop the daemon within 90 s"
else
    wait "$SLUICE_PID" 2>/dev/null && rc=0 || rc=$?
    SLUICE_PID=
    ((rc == 0)) || fail "the daemon exited with status $rc"
fi
if grep -n -m 5 -E 'panicked|Waker invariant' "$TMP/sluice.log" "$TMP/queue/maillog" 2>/dev/null; then
    fail "the log shows a panic"
fi

elapsed_min=$((($(date +%s) - START) / 60))
if ((${#FAILURES[@]} > 0)); then
    echo "soak: $elapsed_min minutes, ${#FAILURES[@]} failures:"
    printf '  %s\n' "${FAILURES[@]}"
    exit 2
fi
echo "soak: $elapsed_min minutes, $TOTAL messages relayed, every check answered, clean stop: PASS"
