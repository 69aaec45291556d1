#!/usr/bin/env bash
# Queue listing benchmark (issue 4): `mailq` and `postqueue -j` over a big
# queue, Sluice beside Debian's Postfix, in the same run.
#
# Each MTA gets a private instance whose mail stays queued
# (defer_transports = smtp; the relayhost does not listen either), MESSAGES
# small messages injected over SMTP (SESSIONS sessions, one connection
# each: Postfix's smtp-source -d into Postfix, `sluice source -d` into
# Sluice), then the listings are timed RUNS times each:
#   daemon running  Postfix: postqueue -c DIR -p / -j ask the showq
#                   service; Sluice: mailq / postqueue -j ask the shards
#                   over their control sockets.
#   daemon stopped  Postfix: postqueue (as root) runs showq itself over
#                   the queue files; Sluice: the same commands replay the
#                   queue log read-only.
# (Postfix's mailq is sendmail -bp, which runs postqueue -p.)
#
# Per listing: wall time, the listing command's user+system CPU and
# maximum RSS (/usr/bin/time -v; with children it waited for, so Postfix's
# stand-alone showq is included), and while the daemon runs, the server's
# side: CPU of every process under Postfix's master (showq does the work)
# or of the Sluice daemon, and its peak RSS (VmHWM of Postfix's showq
# process; of the Sluice daemon, whose peak also covers the injection).
# Every listing is checked: mailq's last line must say MESSAGES Requests,
# postqueue -j must print MESSAGES lines.
#
# Usage (as root: Postfix's master starts as root):
#   benches/mailq.sh
#   MESSAGES=20000 RUNS=1 benches/mailq.sh
#   PROGRAMS=sluice SKIP_BUILD=1 benches/mailq.sh
#
# Environment (defaults in brackets):
#   MESSAGES [100000]      messages queued in each MTA
#   SIZE [1000]            body bytes per message
#   SESSIONS [20]          parallel injection sessions
#   RUNS [3]               timed listings per command and daemon state
#   PROGRAMS [postfix sluice]
#   RUN_TIMEOUT [900]      seconds allowed for filling one queue (Postfix
#                          takes ~4 min for 100,000 at ~400 msg/s)
#   LIST_TIMEOUT [300]     seconds allowed for one listing
#   SLUICE_BIN [${CARGO_TARGET_DIR:-target}/release/sluice]
#   SLUICE_SHARDS []       sluice_shards for Sluice's main.cf
#   SKIP_BUILD []          1 = do not run cargo build --release
#   KEEP []                1 = keep the temporary directory (queues, logs)
#
# Exit status: 0 all measured; 1 set-up error; 2 something could not be
# measured (n/a in the table; the reasons are printed at the end).

set -euo pipefail

MESSAGES=${MESSAGES:-100000}
SIZE=${SIZE:-1000}
SESSIONS=${SESSIONS:-20}
RUNS=${RUNS:-3}
PROGRAMS=${PROGRAMS:-postfix sluice}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
LIST_TIMEOUT=${LIST_TIMEOUT:-300}
SKIP_BUILD=${SKIP_BUILD:-}
KEEP=${KEEP:-}
SLUICE_SHARDS=${SLUICE_SHARDS:-}
START_TIMEOUT=30
STOP_TIMEOUT=60

BENCH=mailq.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice}
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
# shellcheck source=benches/postfix/instance.sh
source "$ROOT/benches/postfix/instance.sh"

# ---------------------------------------------------------------- checks

check_number MESSAGES SIZE SESSIONS RUNS RUN_TIMEOUT LIST_TIMEOUT
((RUNS >= 1 && RUNS <= 50)) || die "RUNS must be 1..50"
((MESSAGES >= 1)) || die "MESSAGES must be at least 1"
((SESSIONS >= 1)) || die "SESSIONS must be at least 1"
for p in $PROGRAMS; do
    [[ $p == postfix || $p == sluice ]] || die "PROGRAMS: '$p' is not postfix or sluice"
done
[[ $(id -u) == 0 ]] || die "run as root: Postfix's master must start as root"
for cmd in smtp-source postfix postqueue postconf ss timeout awk getconf; do
    command -v "$cmd" >/dev/null ||
        die "$cmd not found; install Debian's postfix: echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"
getent passwd postfix >/dev/null || die "no 'postfix' user: is Debian's postfix package installed?"
[[ -r /usr/share/postfix/master.cf.dist ]] || die "/usr/share/postfix/master.cf.dist missing"

has() { [[ " $1 " == *" $2 "* ]]; }

# ------------------------------------------------------ temp dir, cleanup

TMP=$(mktemp -d /tmp/sluice-mailq.XXXXXX)
chmod 755 "$TMP"
PF_DIR=$TMP/postfix
SL_DIR=$TMP/sluice
TICK=$(ticks_per_s)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    sluice_stop
    pf_stop "$PF_DIR" 2>/dev/null || true
    if [[ -n $KEEP ]]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PF_PORT=$(free_port) || die "no free port"
SL_PORT=$(free_port) || die "no free port"
# The relayhost of both: nothing listens there.
DEAD_PORT=$(free_port) || die "no free port"

declare -A WALL=() CCPU=() CRSS=() SCPU=() SRSS=()
declare -A INJECT=()
FAILURES=()

# ---------------------------------------------------------------- helpers

# /proc/PID/status field (kB) → MiB, or n/a.
proc_mib() {
    local pid=$1 field=$2 kb
    kb=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null) || kb=
    [[ -n $kb ]] || { echo n/a; return; }
    awk -v k="$kb" 'BEGIN { printf "%.1f\n", k / 1024 }'
}

# check_listing KIND FILE: the listing holds MESSAGES messages.
check_listing() {
    local kind=$1 file=$2 n
    if [[ $kind == json ]]; then
        n=$(wc -l <"$file")
    else
        n=$(tail -n 1 "$file" | awk '/^-- .* Kbytes in [0-9]+ Requests?\.$/ { print $(NF - 1) }')
    fi
    if [[ $n != "$MESSAGES" ]]; then
        echo "the listing shows ${n:-no count} messages, expected $MESSAGES (last line: $(tail -n 1 "$file" | head -c 200))" >&2
        return 1
    fi
}

# timed_list KEY KIND SERVERPID RSSPID_FN -- CMD…: run CMD RUNS times under
# /usr/bin/time -v; record medians under KEY. SERVERPID (or empty): the
# daemon whose CPU the listing costs. RSSPID_FN: a function printing the
# pid whose VmHWM is the server's peak (or empty).
timed_list() {
    local key=$1 kind=$2 server=$3 rsspid_fn=$4
    shift 5
    local run t0 t1 c0 c1 out=$TMP/list-${key//[^a-z0-9]/_} walls=() ccpus=() crss=() scpus=() pid
    for ((run = 1; run <= RUNS; run++)); do
        c0=0
        [[ -n $server ]] && c0=$(tree_ticks "$server")
        t0=$(now)
        if ! timeout "$LIST_TIMEOUT" /usr/bin/time -v -o "$out.time" "$@" >"$out.txt" 2>"$out.err"; then
            echo "$key: '$*' failed: $(tail -n 3 "$out.err" | tr '\n' ' ') $(grep -m1 'Exit status' "$out.time" 2>/dev/null)" >&2
            return 1
        fi
        t1=$(now)
        [[ -n $server ]] && c1=$(tree_ticks "$server")
        check_listing "$kind" "$out.txt" || return 1
        walls+=("$(elapsed "$t0" "$t1")")
        ccpus+=("$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.3f\n", s }' "$out.time")")
        crss+=("$(awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$out.time")")
        if [[ -n $server ]]; then
            scpus+=("$(awk -v a="$c0" -v b="$c1" -v hz="$TICK" 'BEGIN { printf "%.3f\n", (b - a) / hz }')")
        fi
    done
    WALL[$key]=$(printf '%s\n' "${walls[@]}" | median %.3f)
    CCPU[$key]=$(printf '%s\n' "${ccpus[@]}" | median %.3f)
    CRSS[$key]=$(printf '%s\n' "${crss[@]}" | median %.1f)
    if [[ -n $server ]]; then
        SCPU[$key]=$(printf '%s\n' "${scpus[@]}" | median %.3f)
        pid=$("$rsspid_fn")
        if [[ -n $pid ]]; then SRSS[$key]=$(proc_mib "$pid" VmHWM); fi
    fi
    note "$key: wall ${WALL[$key]} s, client CPU ${CCPU[$key]} s, client max RSS ${CRSS[$key]} MiB, server CPU ${SCPU[$key]:--} s, server peak RSS ${SRSS[$key]:--} MiB"
}

# inject PROGRAM PORT CMD…: fill a queue; records msg/s in INJECT.
inject() {
    local prog=$1 port=$2 t0 t1
    shift 2
    note "$prog: injecting $MESSAGES x $SIZE B over $SESSIONS sessions (load $(cut -d' ' -f1 /proc/loadavg))"
    t0=$(now)
    if ! timeout "$RUN_TIMEOUT" "$@" >"$TMP/inject-$prog.log" 2>&1; then
        echo "$prog: injection failed or took over ${RUN_TIMEOUT}s: $(tail -n 3 "$TMP/inject-$prog.log" | tr '\n' ' ')" >&2
        return 1
    fi
    t1=$(now)
    INJECT[$prog]=$(awk -v a="$t0" -v b="$t1" -v n="$MESSAGES" 'BEGIN { printf "%.1f\n", n / (b - a) }')
    note "$prog: ${INJECT[$prog]} msg/s"
}

# ---------------------------------------------------------------- Postfix

pf_showq_pid() {
    local master
    master=$(pf_master_pid "$PF_DIR") || return 0
    ps -o pid=,comm= --ppid "$master" | awk '$2 == "showq" { print $1; exit }'
}

run_postfix() {
    local master i n
    pf_setup "$PF_DIR" "$PF_PORT" "$DEAD_PORT" defer
    pf_start "$PF_DIR" "$PF_PORT" || return 1
    master=$(pf_master_pid "$PF_DIR")
    check_owner "$PF_PORT" master "$master" || return 1
    inject postfix "$PF_PORT" smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
        -f from@example.com -t to@example.net "127.0.0.1:$PF_PORT" || return 1
    # qmgr moves each message to the deferred queue; wait until it has.
    for ((i = 0; i < RUN_TIMEOUT * 2; i++)); do
        n=$(find "$PF_DIR/spool/deferred" -type f | wc -l)
        ((n >= MESSAGES)) && break
        sleep 0.5
    done
    ((n == MESSAGES)) || {
        echo "postfix: $n messages deferred, expected $MESSAGES (queued: $(pf_queued "$PF_DIR"))" >&2
        return 1
    }
    timed_list "postfix,running,p" text "$master" pf_showq_pid -- \
        postqueue -c "$PF_DIR/etc" -p || return 1
    timed_list "postfix,running,j" json "$master" pf_showq_pid -- \
        postqueue -c "$PF_DIR/etc" -j || return 1
    pf_stop "$PF_DIR"
    timed_list "postfix,stopped,p" text "" "" -- postqueue -c "$PF_DIR/etc" -p || return 1
    timed_list "postfix,stopped,j" json "" "" -- postqueue -c "$PF_DIR/etc" -j || return 1
}

# ----------------------------------------------------------------- Sluice

sluice_setup() {
    rm -rf "$SL_DIR"
    mkdir -p "$SL_DIR/etc"
    {
        echo "# Private benchmark instance, written by benches/mailq.sh."
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

sluice_daemon_pid() { echo "$SLUICE_PID"; }

run_sluice() {
    [[ -n $SLUICE_OK ]] || {
        echo "$SLUICE_WHY" >&2
        return 1
    }
    sluice_setup
    sluice_start "$SL_DIR/etc" "$SL_PORT" "$SL_DIR/daemon.log" || {
        echo "$SLUICE_WHY" >&2
        return 1
    }
    check_owner "$SL_PORT" sluice "$SLUICE_PID" || return 1
    # A 250 to the final dot means the message is in the queue log.
    inject sluice "$SL_PORT" "$SLUICE_BIN" source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
        -f from@example.com -t to@example.net "127.0.0.1:$SL_PORT" || return 1
    note "sluice daemon RSS after injection: $(proc_mib "$SLUICE_PID" VmRSS) MiB"
    timed_list "sluice,running,p" text "$SLUICE_PID" sluice_daemon_pid -- \
        "$SLUICE_BIN" -c "$SL_DIR/etc" mailq || return 1
    timed_list "sluice,running,j" json "$SLUICE_PID" sluice_daemon_pid -- \
        "$SLUICE_BIN" -c "$SL_DIR/etc" postqueue -j || return 1
    sluice_stop
    timed_list "sluice,stopped,p" text "" "" -- "$SLUICE_BIN" -c "$SL_DIR/etc" mailq || return 1
    timed_list "sluice,stopped,j" json "" "" -- "$SLUICE_BIN" -c "$SL_DIR/etc" postqueue -j || return 1
}

# ------------------------------------------------------------------ main

SLUICE_OK=
if has "$PROGRAMS" sluice && sluice_build; then SLUICE_OK=1; fi
note "$MESSAGES messages of $SIZE B, $SESSIONS sessions, $RUNS listings each; temp $TMP"
for prog in $PROGRAMS; do
    # Progress and errors go to the terminal as they come, and to a file
    # for the summary of failures.
    : >"$TMP/why"
    if ! "run_$prog" 2> >(tee -a "$TMP/why" >&2); then
        FAILURES+=("$prog: $(grep -v '^== ' "$TMP/why" | head -c 600)")
    fi
    [[ $prog == postfix ]] && pf_stop "$PF_DIR"
    [[ $prog == sluice ]] && sluice_stop
    # Free the disk (a queue of 100,000 messages) unless asked to keep it.
    if [[ -z $KEEP ]]; then
        rm -rf "${PF_DIR:?}/spool" "${SL_DIR:?}/queue" 2>/dev/null || true
    fi
done

# ----------------------------------------------------------------- report

printf '\nQueue listing over %s queued messages of %s B (Postfix %s; median of %s)\n' \
    "$MESSAGES" "$SIZE" "$(postconf -dh mail_version 2>/dev/null || echo '?')" "$RUNS"
printf 'injection (msg/s, %s sessions, one connection each):' "$SESSIONS"
for prog in $PROGRAMS; do printf ' %s %s' "$prog" "${INJECT[$prog]:-n/a}"; done
printf '\n%-8s %-8s %-13s %9s %12s %12s %12s %12s\n' program daemon command "wall s" "client CPU s" "client MiB" "server CPU s" "server MiB"
for prog in $PROGRAMS; do
    for state in running stopped; do
        for kind in p j; do
            key="$prog,$state,$kind"
            if [[ $prog == postfix ]]; then
                cmd="postqueue -$kind"
            elif [[ $kind == p ]]; then
                cmd="mailq"
            else
                cmd="postqueue -j"
            fi
            printf '%-8s %-8s %-13s %9s %12s %12s %12s %12s\n' "$prog" "$state" "$cmd" \
                "${WALL[$key]:-n/a}" "${CCPU[$key]:-n/a}" "${CRSS[$key]:-n/a}" \
                "${SCPU[$key]:--}" "${SRSS[$key]:--}"
        done
    done
done

ratio() {
    local a=${1:-} b=${2:-}
    [[ -z $a || -z $b || $a == n/a || $b == n/a ]] && { echo n/a; return; }
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}
if has "$PROGRAMS" postfix && has "$PROGRAMS" sluice; then
    echo
    echo "Wall time sluice/postfix:"
    for state in running stopped; do
        printf '  %-8s mailq %s   postqueue -j %s\n' "$state" \
            "$(ratio "${WALL[sluice,$state,p]:-}" "${WALL[postfix,$state,p]:-}")" \
            "$(ratio "${WALL[sluice,$state,j]:-}" "${WALL[postfix,$state,j]:-}")"
    done
fi

if ((${#FAILURES[@]} > 0)); then
    echo >&2
    echo "$BENCH: not everything was measured:" >&2
    printf '  %s\n' "${FAILURES[@]}" >&2
    exit 2
fi
