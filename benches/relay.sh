#!/usr/bin/env bash
# Relay benchmark (issue 3): Sluice against Debian's Postfix, end to end,
# in one run on one machine.
#
# Three programs take the load, each measured from the first message sent
# until the sink has every message:
#   ceiling  the source straight to the sink (no MTA: the load tools'
#            own limit on this machine)
#   postfix  a private Postfix instance relaying to the sink
#            (relayhost = [127.0.0.1]:SINKPORT; benches/postfix/instance.sh)
#   sluice   Sluice relaying to the sink (same relayhost)
# and two families of load tools drive them: Postfix's smtp-source and
# smtp-sink ("postfix"), Sluice's `sluice source` and `sluice sink`
# ("sluice"). A family's source and sink are always used together.
#
# How the end is seen: smtp-sink -c prints a running message counter,
# which a watcher reads as it comes (the time is taken when it reaches
# the count: exact). `sluice sink --count N` prints "N messages received"
# the moment it has N messages (then lets sessions leave and exits); the
# time is when that line appears: exact too.
#
# Each run: a fresh sink and a fresh MTA queue, a warm-up of WARMUP
# messages relayed in full (so that Postfix's processes exist and
# connections are cached before the clock starts), then MESSAGES messages
# timed. CPU per 1,000 messages is of the MTA under test only: user +
# system time from /proc of every process under Postfix's master (with
# the CPU of workers that exited meanwhile, through the master's cutime)
# or of the Sluice daemon, sampled before the timed load and after the
# sink had every message and the MTA's queue was empty again.
#
# Programs are interleaved within each run so that drift in machine load
# hits each alike; the table shows every run and the median; the ratios
# are of medians from this one run.
#
# Usage (as root: Postfix's master starts as root, smtp-sink drops to nobody):
#   benches/relay.sh
#   RUNS=1 TOOLS=postfix BIG_MESSAGES=0 benches/relay.sh
#   PROGRAMS="ceiling sluice" SKIP_BUILD=1 benches/relay.sh
#
# Environment (defaults in brackets):
#   RUNS [3]               timed runs per case
#   SESSIONS [20]          parallel sessions of the source
#   MESSAGES [20000]       messages per timed run, first load
#   SIZE [4096]            message body bytes, first load
#   BIG_MESSAGES [2000]    messages per timed run, second load (0 = none)
#   BIG_SIZE [102400]      message body bytes, second load
#   WARMUP [200]           untimed messages relayed before each timed run
#   CONNECTIONS [new]      new = a connection per message; reuse = one per
#                          session (smtp-source -d); "new reuse" = both
#   TOOLS [postfix sluice] load tool families
#   PROGRAMS [ceiling postfix sluice]
#   SLUICE_BIN [${CARGO_TARGET_DIR:-target}/release/sluice]
#   SLUICE_SHARDS []       sluice_shards for Sluice's main.cf
#   SKIP_BUILD []          1 = do not run cargo build --release
#   RUN_TIMEOUT [600]      seconds allowed for one timed run (and warm-up)
#   KEEP []                1 = keep the temporary directory (logs, queues)
#
# Exit status: 0 all measured; 1 set-up error; 2 something could not be
# measured (the table says n/a; the reasons are printed at the end).
#
# Traps this avoids (see /work/shared/BENCHMARKING.md): a port silently
# shared by two programs through SO_REUSEPORT (ss -ltnp is checked before
# every run, by name and pid), a private Postfix that touches /etc/postfix,
# and a sink that counts mail a previous run left in flight (each run gets
# a fresh sink and fresh queues).

set -euo pipefail

RUNS=${RUNS:-3}
SESSIONS=${SESSIONS:-20}
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-4096}
BIG_MESSAGES=${BIG_MESSAGES:-2000}
BIG_SIZE=${BIG_SIZE:-102400}
WARMUP=${WARMUP:-200}
CONNECTIONS=${CONNECTIONS:-new}
TOOLS=${TOOLS:-postfix sluice}
PROGRAMS=${PROGRAMS:-ceiling postfix sluice}
SKIP_BUILD=${SKIP_BUILD:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
KEEP=${KEEP:-}
SLUICE_SHARDS=${SLUICE_SHARDS:-}
START_TIMEOUT=30
STOP_TIMEOUT=30
# Seconds allowed for an MTA's queue to empty once the sink has every
# message (the last queue-file removals and log lines).
DRAIN_TIMEOUT=60

BENCH=relay.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice}
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
# shellcheck source=benches/postfix/instance.sh
source "$ROOT/benches/postfix/instance.sh"

# ---------------------------------------------------------------- checks

check_number RUNS SESSIONS MESSAGES SIZE BIG_MESSAGES BIG_SIZE WARMUP RUN_TIMEOUT
((RUNS >= 1 && RUNS <= 50)) || die "RUNS must be 1..50"
((MESSAGES >= 1)) || die "MESSAGES must be at least 1"
((SESSIONS >= 1)) || die "SESSIONS must be at least 1"
for c in $CONNECTIONS; do
    [[ $c == new || $c == reuse ]] || die "CONNECTIONS: '$c' is not new or reuse"
done
for t in $TOOLS; do
    [[ $t == postfix || $t == sluice ]] || die "TOOLS: '$t' is not postfix or sluice"
done
for p in $PROGRAMS; do
    [[ $p == ceiling || $p == postfix || $p == sluice ]] ||
        die "PROGRAMS: '$p' is not ceiling, postfix or sluice"
done
[[ $(id -u) == 0 ]] || die "run as root: Postfix's master must start as root"
for cmd in smtp-source smtp-sink postfix postconf ss timeout awk stdbuf tr mkfifo getconf; do
    command -v "$cmd" >/dev/null ||
        die "$cmd not found; install Debian's postfix: echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
done
getent passwd postfix >/dev/null || die "no 'postfix' user: is Debian's postfix package installed?"
[[ -r /usr/share/postfix/master.cf.dist ]] || die "/usr/share/postfix/master.cf.dist missing"

has() { [[ " $1 " == *" $2 "* ]]; }
# Sluice's binary is needed for its program and for its load tools.
NEED_SLUICE=
if has "$PROGRAMS" sluice || has "$TOOLS" sluice; then NEED_SLUICE=1; fi

LOADS="$SIZE:$MESSAGES"
((BIG_MESSAGES > 0)) && LOADS+=" $BIG_SIZE:$BIG_MESSAGES"

# ------------------------------------------------------ temp dir, cleanup

TMP=$(mktemp -d /tmp/sluice-relay.XXXXXX)
# Postfix's daemons and smtp-sink run as postfix/nobody and must reach it.
chmod 755 "$TMP"
PF_DIR=$TMP/postfix
SL_DIR=$TMP/sluice
SINK_PID=
WATCH_PID=
SOURCE_PID=
TICK=$(ticks_per_s)

sink_stop() {
    local i
    if [[ -n $SINK_PID ]]; then
        kill -TERM "$SINK_PID" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
            kill -0 "$SINK_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
        SINK_PID=
    fi
    if [[ -n $WATCH_PID ]]; then
        # The watcher ends when the sink's output does; bounded anyway.
        for ((i = 0; i < 50; i++)); do
            kill -0 "$WATCH_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM "$WATCH_PID" 2>/dev/null || true
        wait "$WATCH_PID" 2>/dev/null || true
        WATCH_PID=
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $SOURCE_PID ]]; then
        kill -TERM "$SOURCE_PID" 2>/dev/null || true
        wait "$SOURCE_PID" 2>/dev/null || true
    fi
    sluice_stop
    pf_stop "$PF_DIR" 2>/dev/null || true
    sink_stop
    if [[ -n $KEEP ]]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sinks report "TAG ok TIME" or "TAG fail WHY" on this FIFO; opened
# read-write so that neither side blocks in open(2).
mkfifo "$TMP/events"
exec 3<>"$TMP/events"

# ----------------------------------------------------------------- ports

PF_PORT=$(free_port) || die "no free port"
SL_PORT=$(free_port) || die "no free port"
SINK_PORT=$(free_port) || die "no free port"

# ------------------------------------------------------------------ sink

# sink_start TOOLS COUNT TAG: a fresh sink on SINK_PORT that reports on fd
# 3 once it has COUNT messages. Sets SINK_PID (the listening process) and
# WATCH_PID.
sink_start() {
    local tools=$1 count=$2 tag=$3 i
    local out=$TMP/sink-$tag
    if [[ $tools == postfix ]]; then
        mkfifo "$out.fifo"
        # -c: a counter line ("sess=… quit=… mesg=N", ended by \r) at every
        # final dot. tr and mawk -W interactive read it line by line as it
        # comes (plain mawk would wait for a full buffer).
        smtp-sink -c -u nobody "127.0.0.1:$SINK_PORT" 1000 >"$out.fifo" 2>"$out.err" 3>&- &
        SINK_PID=$!
        {
            stdbuf -oL tr '\r' '\n' <"$out.fifo" | {
                if mawk -W interactive -v n="$count" '
                    { i = index($0, "mesg=")
                      if (i && substr($0, i + 5) + 0 >= n) { reached = 1; exit 0 } }
                    END { if (!reached) exit 1 }'; then
                    echo "$tag ok $EPOCHREALTIME" >&3
                else
                    echo "$tag fail smtp-sink stopped before $count messages: $(head -c 300 "$out.err")" >&3
                fi
                # Keep reading, so that smtp-sink neither blocks on a full
                # pipe nor dies of SIGPIPE while the MTA closes its sessions.
                cat >/dev/null
            }
        } &
        WATCH_PID=$!
    else
        mkfifo "$out.fifo"
        "$SLUICE_BIN" sink --count "$count" "127.0.0.1:$SINK_PORT" 1000 \
            >"$out.fifo" 2>"$out.err" 3>&- &
        SINK_PID=$!
        # The sink prints "listening on …", then "N messages received" the
        # moment it has the count: the first line after the greeting is
        # the end. Exit without it means failure.
        {
            t=
            while IFS= read -r line; do
                echo "$line" >>"$out.out"
                if [[ -z $t && $line != *"listening on"* ]]; then
                    t=$EPOCHREALTIME
                    echo "$tag ok $t" >&3
                fi
            done <"$out.fifo"
            [[ -n $t ]] || echo "$tag fail sluice sink exited before $count messages: $(tail -n 3 "$out.err" | tr '\n' ' ')" >&3
        } &
        WATCH_PID=$!
    fi
    wait_listening "$SINK_PORT" "$START_TIMEOUT" || {
        echo "the $tools sink did not listen on 127.0.0.1:$SINK_PORT: $(cat "$out.err" 2>/dev/null)" >&2
        return 1
    }
}

# sink_wait TAG SECONDS: the sink's completion time (on stdout), or fail.
sink_wait() {
    local tag=$1 secs=$2 t0 line rest
    t0=$SECONDS
    while ((SECONDS - t0 < secs)); do
        if ! IFS= read -r -t "$((secs - (SECONDS - t0)))" -u 3 line; then
            break
        fi
        [[ $line == "$tag "* ]] || continue # a stale report from an earlier run
        rest=${line#"$tag "}
        if [[ $rest == ok\ * ]]; then
            echo "${rest#ok }"
            return 0
        fi
        echo "sink: ${rest#fail }" >&2
        return 1
    done
    echo "the sink did not have every message within ${secs}s" >&2
    return 1
}

# ---------------------------------------------------------------- source

# source_cmd TOOLS PORT COUNT SIZE CONN: the load command line, in SRC.
source_cmd() {
    local tools=$1 port=$2 count=$3 size=$4 conn=$5
    if [[ $tools == postfix ]]; then
        SRC=(smtp-source -s "$SESSIONS" -m "$count" -l "$size" -f from@example.com -t to@example.net)
    else
        SRC=("$SLUICE_BIN" source -s "$SESSIONS" -m "$count" -l "$size" -f from@example.com -t to@example.net)
    fi
    [[ $conn == reuse ]] && SRC+=(-d)
    SRC+=("127.0.0.1:$port")
}

# ------------------------------------------------------------------- MTAs

sluice_setup() {
    rm -rf "$SL_DIR"
    mkdir -p "$SL_DIR/etc"
    {
        echo "# Private benchmark instance, written by benches/relay.sh."
        echo "myhostname = sluice.bench.test"
        echo "mydomain = bench.test"
        echo "queue_directory = $SL_DIR/queue"
        echo "data_directory = $SL_DIR/data"
        echo "inet_interfaces = 127.0.0.1"
        echo "mynetworks = 127.0.0.0/8"
        echo "mydestination ="
        echo "relayhost = [127.0.0.1]:$SINK_PORT"
        if [[ -n $SLUICE_SHARDS ]]; then echo "sluice_shards = $SLUICE_SHARDS"; fi
    } >"$SL_DIR/etc/main.cf"
    echo "127.0.0.1:$SL_PORT inet n - n - - smtpd" >"$SL_DIR/etc/master.cf"
}

# Is the MTA's queue empty? Sluice: its own mailq over the control socket.
queue_empty() {
    case $1 in
    ceiling) return 0 ;;
    postfix) (($(pf_queued "$PF_DIR") == 0)) ;;
    sluice) "$SLUICE_BIN" -c "$SL_DIR/etc" mailq 2>/dev/null | grep -q '^Mail queue is empty' ;;
    esac
}

# wait_empty PROGRAM SECONDS
wait_empty() {
    local prog=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        queue_empty "$prog" && return 0
        sleep 0.1
    done
    return 1
}

# mta_start PROGRAM: a fresh instance; sets PORT, OWNER, OWNER_PID, ROOT_PID.
mta_start() {
    case $1 in
    ceiling)
        PORT=$SINK_PORT OWNER=$SINK_NAME OWNER_PID=$SINK_PID ROOT_PID=
        ;;
    postfix)
        pf_stop "$PF_DIR"
        rm -rf "$PF_DIR"
        pf_setup "$PF_DIR" "$PF_PORT" "$SINK_PORT" relay
        pf_start "$PF_DIR" "$PF_PORT" || return 1
        PORT=$PF_PORT OWNER=master OWNER_PID=$(pf_master_pid "$PF_DIR") ROOT_PID=$OWNER_PID
        ;;
    sluice)
        sluice_setup
        sluice_start "$SL_DIR/etc" "$SL_PORT" "$SL_DIR/daemon.log" || {
            echo "$SLUICE_WHY" >&2
            return 1
        }
        PORT=$SL_PORT OWNER=sluice OWNER_PID=$SLUICE_PID ROOT_PID=$SLUICE_PID
        ;;
    esac
}

mta_stop() {
    case $1 in
    postfix) pf_stop "$PF_DIR" ;;
    sluice) sluice_stop ;;
    esac
}

mta_log() {
    case $1 in
    postfix) echo "$PF_DIR/maillog" ;;
    sluice) echo "$SL_DIR/daemon.log" ;;
    *) echo "$TMP" ;;
    esac
}

# --------------------------------------------------------------- one run

declare -A RATE=() CPU=()
FAILURES=()
SERIAL=0

# run_case TOOLS SIZE COUNT CONN RUN PROGRAM
run_case() {
    local tools=$1 size=$2 count=$3 conn=$4 run=$5 prog=$6
    local key="$tools,$size,$conn,$prog,$run" tag t0 t1 c0 c1 rc=0 errlog
    SERIAL=$((SERIAL + 1))
    tag="r$SERIAL"
    errlog=$TMP/source-$tag.log
    SINK_NAME=smtp-sink
    [[ $tools == sluice ]] && SINK_NAME=sluice

    sink_start "$tools" "$((WARMUP + count))" "$tag" || return 1
    check_owner "$SINK_PORT" "$SINK_NAME" "$SINK_PID" || return 1
    mta_start "$prog" || return 1
    check_owner "$PORT" "$OWNER" "$OWNER_PID" || return 1

    if ((WARMUP > 0)); then
        source_cmd "$tools" "$PORT" "$WARMUP" "$size" "$conn"
        timeout "$RUN_TIMEOUT" "${SRC[@]}" >"$errlog.warmup" 2>&1 3>&- || {
            echo "warm-up: ${SRC[0]} failed: $(tail -n 3 "$errlog.warmup")" >&2
            return 1
        }
        wait_empty "$prog" "$RUN_TIMEOUT" || {
            echo "warm-up: the $prog queue did not empty within ${RUN_TIMEOUT}s; log: $(mta_log "$prog")" >&2
            return 1
        }
    fi

    source_cmd "$tools" "$PORT" "$count" "$size" "$conn"
    c0=0
    [[ -n $ROOT_PID ]] && c0=$(tree_ticks "$ROOT_PID")
    t0=$(now)
    timeout "$RUN_TIMEOUT" "${SRC[@]}" >"$errlog" 2>&1 3>&- &
    SOURCE_PID=$!
    t1=$(sink_wait "$tag" "$RUN_TIMEOUT") || rc=1
    wait "$SOURCE_PID" || {
        echo "${SRC[0]} failed (status $?): $(tail -n 3 "$errlog")" >&2
        rc=1
    }
    SOURCE_PID=
    ((rc == 0)) || return 1
    if [[ -n $ROOT_PID ]]; then
        wait_empty "$prog" "$DRAIN_TIMEOUT" || {
            echo "the $prog queue did not empty within ${DRAIN_TIMEOUT}s of the sink having every message" >&2
            return 1
        }
        c1=$(tree_ticks "$ROOT_PID")
        CPU[$key]=$(awk -v a="$c0" -v b="$c1" -v hz="$TICK" -v n="$count" \
            'BEGIN { printf "%.2f\n", (b - a) / hz / n * 1000 }')
    fi
    RATE[$key]=$(awk -v a="$t0" -v b="$t1" -v n="$count" 'BEGIN { printf "%.1f\n", n / (b - a) }')
}

# ------------------------------------------------------------------ main

SLUICE_OK=
if [[ -n $NEED_SLUICE ]]; then
    if sluice_build; then
        SLUICE_OK=1
    else
        echo "$BENCH: Sluice will not be measured: $SLUICE_WHY" >&2
        FAILURES+=("sluice: $SLUICE_WHY")
    fi
fi

note "$SESSIONS sessions, loads (size:messages) $LOADS, warm-up $WARMUP, $RUNS runs, connections: $CONNECTIONS"
note "ports: postfix $PF_PORT, sluice $SL_PORT, sink $SINK_PORT; temp $TMP"
for conn in $CONNECTIONS; do
    for load in $LOADS; do
        size=${load%%:*} count=${load##*:}
        for ((run = 1; run <= RUNS; run++)); do
            for tools in $TOOLS; do
                [[ $tools == sluice && -z $SLUICE_OK ]] && continue
                for prog in $PROGRAMS; do
                    [[ $prog == sluice && -z $SLUICE_OK ]] && continue
                    note "$conn, ${size} B x $count, run $run/$RUNS: $tools tools -> $prog (load $(cut -d' ' -f1 /proc/loadavg))"
                    if ! run_case "$tools" "$size" "$count" "$conn" "$run" "$prog" 2>"$TMP/why"; then
                        cat "$TMP/why" >&2
                        FAILURES+=("$tools tools -> $prog, $size B, $conn, run $run: $(head -c 600 "$TMP/why")")
                        if [[ -n $KEEP ]]; then
                            cp -a "$(mta_log "$prog")" "$TMP/failed-$SERIAL.log" 2>/dev/null || true
                        fi
                    fi
                    if [[ -n ${SOURCE_PID:-} ]]; then
                        kill -TERM "$SOURCE_PID" 2>/dev/null || true
                        wait "$SOURCE_PID" 2>/dev/null || true
                        SOURCE_PID=
                    fi
                    mta_stop "$prog"
                    sink_stop
                done
            done
        done
    done
done

# ----------------------------------------------------------------- report

declare -A MED=() MEDCPU=()
printf '\nRelay end to end: msg/s from the first message sent until the sink has all\n'
printf '(%s sessions; Postfix %s; CPU = the MTA'"'"'s user+system seconds per 1,000 messages, median)\n' \
    "$SESSIONS" "$(postconf -dh mail_version 2>/dev/null || echo '?')"
printf '%-6s %-8s %-7s %-7s %-8s' conn size msgs tools program
for ((run = 1; run <= RUNS; run++)); do printf ' %8s' "run $run"; done
printf ' %8s %8s\n' median "CPU/1k"
for conn in $CONNECTIONS; do
    for load in $LOADS; do
        size=${load%%:*} count=${load##*:}
        for tools in $TOOLS; do
            for prog in $PROGRAMS; do
                printf '%-6s %-8s %-7s %-7s %-8s' "$conn" "$size" "$count" "$tools" "$prog"
                rates=() cpus=()
                for ((run = 1; run <= RUNS; run++)); do
                    v=${RATE[$tools,$size,$conn,$prog,$run]:-}
                    printf ' %8s' "${v:-n/a}"
                    [[ -n $v ]] && rates+=("$v")
                    c=${CPU[$tools,$size,$conn,$prog,$run]:-}
                    [[ -n $c ]] && cpus+=("$c")
                done
                m=$(printf '%s\n' "${rates[@]}" | { grep . || true; } | median)
                mc=$(printf '%s\n' "${cpus[@]}" | { grep . || true; } | median %.2f)
                [[ $prog == ceiling ]] && mc=-
                MED[$tools,$size,$conn,$prog]=$m
                MEDCPU[$tools,$size,$conn,$prog]=$mc
                printf ' %8s %8s\n' "$m" "$mc"
            done
        done
    done
done

ratio() {
    local a=$1 b=$2
    [[ $a == n/a || $b == n/a || -z $a || -z $b || $a == - || $b == - ]] && { echo n/a; return; }
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}
echo
echo "Ratios of medians (throughput; CPU per message):"
for conn in $CONNECTIONS; do
    for load in $LOADS; do
        size=${load%%:*}
        for tools in $TOOLS; do
            k="$tools,$size,$conn"
            printf '  %-5s %6s B, %-7s tools: sluice/postfix %5s  sluice/ceiling %5s  postfix/ceiling %5s  CPU sluice/postfix %5s\n' \
                "$conn" "$size" "$tools" \
                "$(ratio "${MED[$k,sluice]:-}" "${MED[$k,postfix]:-}")" \
                "$(ratio "${MED[$k,sluice]:-}" "${MED[$k,ceiling]:-}")" \
                "$(ratio "${MED[$k,postfix]:-}" "${MED[$k,ceiling]:-}")" \
                "$(ratio "${MEDCPU[$k,sluice]:-}" "${MEDCPU[$k,postfix]:-}")"
        done
    done
done


if ((${#FAILURES[@]} > 0)); then
    echo >&2
    echo "$BENCH: not everything was measured:" >&2
    printf '  %s\n' "${FAILURES[@]}" >&2
    exit 2
fi
