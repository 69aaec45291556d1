#!/usr/bin/env bash
# Side-by-side injection benchmark: Sluice against Debian's Postfix, with
# Postfix's own smtp-source, in the same run.
#
# Injection rate = messages accepted per second, where "accepted" means the
# server answered 250 to the final dot, which both servers send only after
# the message is fsynced. Neither server delivers anything while measured:
# both defer every message without a delivery attempt (defer_transports =
# smtp; the relayhost does not listen either). benches/relay.sh measures
# delivery. A raw smtp-source -> smtp-sink run (no
# queue, no fsync) gives the ceiling of the load tools on this machine.
#
# Each run gets a fresh queue, a warm-up of WARMUP messages (so that
# Postfix's smtpd and cleanup processes exist before the clock starts), then
# the timed load. Only one server runs at a time; runs of the programs are
# interleaved so that drift in machine load hits each alike. The table shows
# every run and the median; the ratios are of medians from this one run.
#
# Usage (as root: Postfix's master starts as root, smtp-sink drops to nobody):
#   benches/injection.sh
#   RUNS=5 CONNECTIONS=reuse benches/injection.sh
#   PROGRAMS="postfix" SKIP_BUILD=1 benches/injection.sh
#
# Environment (defaults in brackets):
#   RUNS [3]               timed runs per program and connection mode
#   SESSIONS [20]          smtp-source -s: parallel sessions
#   MESSAGES [20000]       smtp-source -m: messages per timed run
#   SIZE [4096]            smtp-source -l: message size in bytes
#   WARMUP [200]           untimed messages before each timed run
#   CONNECTIONS [new reuse]  new = a connection per message; reuse = -d
#   PROGRAMS [sink postfix sluice]
#   POSTFIX_QMGR [yes]     no = run Postfix without its queue manager
#                          (pure receive + cleanup + fsync); see
#                          benches/postfix/instance.sh
#   SLUICE_BIN [${CARGO_TARGET_DIR:-target}/release/sluice]
#   SLUICE_SHARDS []       sluice_shards for Sluice's main.cf (default: its own)
#   SKIP_BUILD []          1 = do not run cargo build --release
#   RUN_TIMEOUT [600]      seconds allowed for one smtp-source run
#   KEEP []                1 = keep the temporary directory (logs, queues)
#
# Stop it with Ctrl-C; a SIGTERM to the script alone takes effect when the
# current smtp-source run ends (at most RUN_TIMEOUT). Either way both
# servers are stopped and the temporary directory removed.
#
# Exit status: 0 all measured; 1 set-up error; 2 Postfix (and the ceiling)
# measured but Sluice could not be built, started or driven.
#
# Traps this avoids (see /work/shared/BENCHMARKING.md): a port silently
# shared by two programs through SO_REUSEPORT (ss -ltnp is checked before
# every run), and a private Postfix that touches /etc/postfix or the system
# instance (it has its own config, queue and data directories).

set -euo pipefail

RUNS=${RUNS:-3}
SESSIONS=${SESSIONS:-20}
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-4096}
WARMUP=${WARMUP:-200}
CONNECTIONS=${CONNECTIONS:-new reuse}
PROGRAMS=${PROGRAMS:-sink postfix sluice}
POSTFIX_QMGR=${POSTFIX_QMGR:-yes}
SKIP_BUILD=${SKIP_BUILD:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
KEEP=${KEEP:-}
SLUICE_SHARDS=${SLUICE_SHARDS:-}
# Seconds a server gets to start listening, and to exit after SIGTERM.
START_TIMEOUT=30
STOP_TIMEOUT=30

BENCH=injection.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice}
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
# shellcheck source=benches/postfix/instance.sh
source "$ROOT/benches/postfix/instance.sh"

# ---------------------------------------------------------------- checks

check_number RUNS SESSIONS MESSAGES SIZE WARMUP RUN_TIMEOUT
((RUNS >= 1 && RUNS <= 50)) || die "RUNS must be 1..50"
((MESSAGES >= 1)) || die "MESSAGES must be at least 1"
for c in $CONNECTIONS; do
    [[ $c == new || $c == reuse ]] || die "CONNECTIONS: '$c' is not new or reuse"
done
for p in $PROGRAMS; do
    [[ $p == sink || $p == postfix || $p == sluice ]] ||
        die "PROGRAMS: '$p' is not sink, postfix or sluice"
done
[[ $POSTFIX_QMGR == yes || $POSTFIX_QMGR == no ]] || die "POSTFIX_QMGR must be yes or no"
[[ $(id -u) == 0 ]] || die "run as root: Postfix's master must start as root"
for cmd in smtp-source smtp-sink postfix ss timeout awk; do
    command -v "$cmd" >/dev/null ||
        die "$cmd not found; install Debian's postfix: echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
done
getent passwd postfix >/dev/null || die "no 'postfix' user: is Debian's postfix package installed?"
[[ -r /usr/share/postfix/master.cf.dist ]] || die "/usr/share/postfix/master.cf.dist missing"

has_program() { [[ " $PROGRAMS " == *" $1 "* ]]; }

# ------------------------------------------------------ temp dir, cleanup

TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
# Postfix's daemons and smtp-sink run as postfix/nobody and must reach it.
chmod 755 "$TMP"
SINK_PID=
PF_DIR=$TMP/postfix
SL_DIR=$TMP/sluice

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    sluice_stop
    pf_stop "$PF_DIR" 2>/dev/null || true
    if [[ -n $SINK_PID ]]; then
        kill -TERM "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    if [[ -n $KEEP ]]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----------------------------------------------------------------- ports

PF_PORT=$(free_port) || die "no free port"
SL_PORT=$(free_port) || die "no free port"
SINK_PORT=$(free_port) || die "no free port"
# Postfix's relayhost: a port nobody listens on.
DEAD_PORT=$(free_port) || die "no free port"

# ---------------------------------------------------------------- Sluice

SLUICE_OK=

sluice_setup() {
    rm -rf "$SL_DIR"
    mkdir -p "$SL_DIR/etc"
    {
        echo "# Private benchmark instance, written by benches/injection.sh."
        echo "myhostname = sluice.bench.test"
        echo "mydomain = bench.test"
        echo "queue_directory = $SL_DIR/queue"
        echo "data_directory = $SL_DIR/data"
        echo "inet_interfaces = 127.0.0.1"
        echo "mynetworks = 127.0.0.0/8"
        echo "mydestination ="
        echo "relayhost = [127.0.0.1]:$DEAD_PORT"
        echo "defer_transports = smtp"
        if [[ -n $SLUICE_SHARDS ]]; then echo "sluice_shards = $SLUICE_SHARDS"; fi
    } >"$SL_DIR/etc/main.cf"
    echo "127.0.0.1:$SL_PORT inet n - n - - smtpd" >"$SL_DIR/etc/master.cf"
}

# ------------------------------------------------------------------ load

# load PORT COUNT CONNECTIONS ERRLOG: run smtp-source, print elapsed seconds.
load() {
    local port=$1 count=$2 conn=$3 errlog=$4 t0 t1 rc=0
    local args=(-s "$SESSIONS" -m "$count" -l "$SIZE" -f from@example.com -t to@example.net)
    [[ $conn == reuse ]] && args+=(-d)
    t0=$(date +%s%N)
    timeout "$RUN_TIMEOUT" smtp-source "${args[@]}" "127.0.0.1:$port" 2>>"$errlog" || rc=$?
    t1=$(date +%s%N)
    if ((rc == 124)); then
        echo "smtp-source did not finish within ${RUN_TIMEOUT}s" >>"$errlog"
        return 1
    fi
    ((rc == 0)) || return 1
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }'
}

# measure PROGRAM CONN RUN PORT OWNER: warm-up, timed load; prints msg/s.
measure() {
    local prog=$1 conn=$2 run=$3 port=$4 owner=$5 secs
    local errlog=$TMP/$prog-$conn-$run.err
    check_owner "$port" "$owner" || return 1
    if ((WARMUP > 0)); then
        load "$port" "$WARMUP" "$conn" "$errlog" >/dev/null || {
            echo "$prog: warm-up failed: $(tail -n 3 "$errlog")" >&2
            return 1
        }
    fi
    secs=$(load "$port" "$MESSAGES" "$conn" "$errlog") || {
        echo "$prog: smtp-source failed: $(tail -n 3 "$errlog")" >&2
        return 1
    }
    if [[ -s $errlog ]]; then
        echo "$prog ($conn, run $run): smtp-source complained: $(head -n 3 "$errlog")" >&2
    fi
    awk -v n="$MESSAGES" -v s="$secs" 'BEGIN { printf "%.1f\n", n / s }'
}

declare -A RATE=()

run_sink() {
    local conn=$1 run=$2 r
    r=$(measure sink "$conn" "$run" "$SINK_PORT" smtp-sink) || return 1
    RATE[$conn,sink,$run]=$r
}

run_postfix() {
    local conn=$1 run=$2 r queued
    pf_stop "$PF_DIR"
    rm -rf "$PF_DIR"
    pf_setup "$PF_DIR" "$PF_PORT" "$DEAD_PORT" "$POSTFIX_QMGR"
    pf_start "$PF_DIR" "$PF_PORT" || return 1
    r=$(measure postfix "$conn" "$run" "$PF_PORT" master) || {
        pf_stop "$PF_DIR"
        return 1
    }
    pf_stop "$PF_DIR"
    # Every message must be in the queue: a fast run that lost mail is
    # not a result.
    queued=$(pf_queued "$PF_DIR")
    if ((queued != MESSAGES + WARMUP)); then
        echo "postfix ($conn, run $run): $queued messages queued, expected $((MESSAGES + WARMUP)); log: $PF_DIR/maillog" >&2
        return 1
    fi
    RATE[$conn,postfix,$run]=$r
}

run_sluice() {
    local conn=$1 run=$2 r
    [[ -n $SLUICE_OK ]] || return 1
    sluice_setup
    if ! sluice_start "$SL_DIR/etc" "$SL_PORT" "$SL_DIR/daemon.log"; then
        SLUICE_OK=
        return 1
    fi
    r=$(measure sluice "$conn" "$run" "$SL_PORT" sluice) || {
        SLUICE_WHY="the load against sluice failed (run $run, $conn connections); see $TMP/sluice-$conn-$run.err and $SL_DIR/daemon.log"
        SLUICE_OK=
        sluice_stop
        return 1
    }
    sluice_stop
    RATE[$conn,sluice,$run]=$r
}

# ------------------------------------------------------------------ main

if has_program sluice; then
    if sluice_build; then
        SLUICE_OK=1
    else
        echo "injection.sh: Sluice will not be measured: $SLUICE_WHY" >&2
    fi
fi

if has_program sink; then
    smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1000 >"$TMP/sink.log" 2>&1 &
    SINK_PID=$!
    wait_listening "$SINK_PORT" "$START_TIMEOUT" || die "smtp-sink did not start: $(cat "$TMP/sink.log")"
fi

note "$SESSIONS sessions, $MESSAGES messages of $SIZE bytes, $RUNS runs; ports: postfix $PF_PORT, sluice $SL_PORT, sink $SINK_PORT; temp $TMP"
for conn in $CONNECTIONS; do
    for ((run = 1; run <= RUNS; run++)); do
        for prog in $PROGRAMS; do
            [[ $prog == sluice && -z $SLUICE_OK ]] && continue
            note "$conn connections, run $run/$RUNS: $prog (load $(cut -d' ' -f1 /proc/loadavg))"
            "run_$prog" "$conn" "$run" || echo "injection.sh: $prog run $run ($conn) failed" >&2
        done
    done
done

# ----------------------------------------------------------------- report

declare -A MEDIAN=()
printf '\nInjection rate, msg/s (%s sessions, %s x %s bytes; Postfix %s, qmgr %s)\n' \
    "$SESSIONS" "$MESSAGES" "$SIZE" "$(postconf -dh mail_version 2>/dev/null || echo '?')" "$POSTFIX_QMGR"
printf '%-12s %-8s' connections program
for ((run = 1; run <= RUNS; run++)); do printf ' %9s' "run $run"; done
printf ' %9s\n' median
for conn in $CONNECTIONS; do
    for prog in $PROGRAMS; do
        printf '%-12s %-8s' "$conn" "$prog"
        values=()
        for ((run = 1; run <= RUNS; run++)); do
            v=${RATE[$conn,$prog,$run]:-}
            printf ' %9s' "${v:-n/a}"
            [[ -n $v ]] && values+=("$v")
        done
        m=$(printf '%s\n' "${values[@]}" | { grep . || true; } | median %.1f)
        MEDIAN[$conn,$prog]=$m
        printf ' %9s\n' "$m"
    done
done

ratio() {
    local a=${MEDIAN[$1,$2]:-n/a} b=${MEDIAN[$1,$3]:-n/a}
    [[ $a == n/a || $b == n/a ]] && { echo n/a; return; }
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f\n", a / b }'
}
echo
echo "Ratios of medians:"
for conn in $CONNECTIONS; do
    printf '  %-6s sluice/postfix = %s   sluice/ceiling = %s   postfix/ceiling = %s\n' "$conn" \
        "$(ratio "$conn" sluice postfix)" "$(ratio "$conn" sluice sink)" "$(ratio "$conn" postfix sink)"
done

if has_program sluice && [[ -z $SLUICE_OK ]]; then
    echo >&2
    echo "injection.sh: Sluice was not measured: $SLUICE_WHY" >&2
    exit 2
fi
