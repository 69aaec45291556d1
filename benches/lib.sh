# shellcheck shell=bash
# Shell functions the benchmark scripts share (benches/injection.sh,
# benches/relay.sh, benches/mailq.sh). Sourced, not run. The private
# Postfix instance lives in benches/postfix/instance.sh.
#
# The caller sets, before calling what needs them:
#   BENCH           the script's name, for messages
#   ROOT            the checkout (for cargo build)
#   TMP             the run's temporary directory
#   SLUICE_BIN      the sluice binary
#   SKIP_BUILD      non-empty: do not run cargo build --release
#   START_TIMEOUT   seconds a server gets to start listening
#   STOP_TIMEOUT    seconds a server gets to exit after SIGTERM
#
#   die MSG… / note MSG…            fatal error (exit 1) / progress line
#   free_port                       a loopback port nothing uses
#   wait_listening PORT SECS        until something listens on PORT
#   check_owner PORT NAME [PID]     only NAME (PID and its children) on PORT
#   descends_from PID ROOT          PID is ROOT or its descendant
#   now                             wall clock, seconds with microseconds
#   elapsed T0 T1                   T1 - T0, seconds
#   sluice_build                    cargo build --release (unless SKIP_BUILD)
#   sluice_start CONFDIR PORT LOG   start-fg in the background: SLUICE_PID
#   sluice_stop                     SIGTERM, wait (bounded), SIGKILL
#   tree_ticks PID                  CPU clock ticks of PID and descendants
#   ticks_per_s                     clock ticks per second
#   median [FMT]                    median of numbers on stdin (or n/a)
#   check_number VAR…               each VAR holds a non-negative integer
#
# sluice_build and sluice_start explain a failure in SLUICE_WHY.

BENCH=${BENCH:-bench}
START_TIMEOUT=${START_TIMEOUT:-30}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

die() {
    echo "$BENCH: $*" >&2
    exit 1
}
note() { echo "== $*" >&2; }

check_number() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
    done
}

# ----------------------------------------------------------------- ports

USED_PORTS=" "
# A loopback TCP port nothing uses now (listening or connected), and that
# this script has not handed out before.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 30000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if [[ -z $(ss -tanH "sport = :$p" 2>/dev/null) ]]; then
            USED_PORTS+="$p "
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_listening PORT SECONDS: until something listens on 127.0.0.1:PORT.
wait_listening() {
    local port=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        [[ -n $(ss -ltnH "sport = :$port" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    return 1
}

# check_owner PORT NAME [PID]: every socket listening on PORT belongs to
# a process called NAME or, given PID, to PID or one of its descendants
# (Postfix's master hands its listening socket to the smtpd processes it
# forks). SO_REUSEPORT lets two programs share a port and split the
# traffic without a word.
check_owner() {
    local port=$1 want=$2 root=${3:-} owners pids p bad=
    owners=$(ss -ltnpH "sport = :$port" | grep -o '"[^"]*",pid=' |
        cut -d'"' -f2 | sort -u | tr '\n' ' ')
    pids=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' |
        cut -d= -f2 | sort -u | tr '\n' ' ')
    if [[ -z $pids ]]; then
        bad="nothing listens"
    elif [[ -n $root ]]; then
        for p in $pids; do
            descends_from "$p" "$root" || bad="pid $p is not $root or its descendant"
        done
    elif [[ $owners != "$want " ]]; then
        bad="expected only '$want'"
    fi
    if [[ -n $bad ]]; then
        echo "port $port is held by '${owners% }' (pids ${pids% }): $bad" >&2
        ss -ltnp "sport = :$port" >&2
        return 1
    fi
}

# descends_from PID ROOT: PID is ROOT or below it in the process tree.
descends_from() {
    local p=$1 root=$2 i stat
    for ((i = 0; i < 64; i++)); do
        [[ $p == "$root" ]] && return 0
        [[ -z $p || $p == 0 || $p == 1 ]] && return 1
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        p=${stat#* }
        p=${p%% *}
    done
    return 1
}

# ------------------------------------------------------------------ time

now() { echo "$EPOCHREALTIME"; }

elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'
}

# ------------------------------------------------------------------- CPU

ticks_per_s() { getconf CLK_TCK; }

# tree_ticks PID: user + system clock ticks of PID and every live
# descendant, each with the ticks of the children it has reaped (cutime,
# cstime). A daemon that forks short-lived workers (Postfix's master) thus
# keeps their CPU after they exit; a child that exited but was not reaped
# yet is missed, which between two samples a few seconds apart is noise.
tree_ticks() {
    local root=$1
    # /proc/PID/stat: "pid (comm) state ppid …", comm may hold spaces and
    # parentheses, so cut at the last ") ". After it, field 2 is ppid and
    # fields 12..15 are utime, stime, cutime, cstime.
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$root" '
        {
            pid = $1
            s = $0
            sub(/^.*\) /, "", s)
            split(s, f, " ")
            parent[pid] = f[2]
            ticks[pid] = f[12] + f[13] + f[14] + f[15]
        }
        END {
            total = 0
            for (p in ticks) {
                q = p
                # Walk up to init; bounded in case of a cycle in a racy read.
                for (i = 0; i < 64 && q != "" && q != 0; i++) {
                    if (q == root) { total += ticks[p]; break }
                    q = parent[q]
                }
            }
            print total
        }'
}

# ---------------------------------------------------------------- Sluice

SLUICE_PID=
SLUICE_WHY=

sluice_build() {
    if [[ -n ${SKIP_BUILD:-} ]]; then
        note "SKIP_BUILD set: using $SLUICE_BIN as is"
    else
        note "cargo build --release (log: $TMP/build.log)"
        if ! (cd "$ROOT" && cargo build --release) >"$TMP/build.log" 2>&1; then
            SLUICE_WHY="cargo build --release failed:"$'\n'$(grep -m 20 -E '^(error|warning: unused)' "$TMP/build.log" || tail -n 20 "$TMP/build.log")
            return 1
        fi
    fi
    if [[ ! -x $SLUICE_BIN ]]; then
        SLUICE_WHY="$SLUICE_BIN does not exist or is not executable (set SLUICE_BIN?)"
        return 1
    fi
}

# sluice_start CONFDIR PORT LOG: run `sluice -c CONFDIR start-fg` in the
# background (SLUICE_PID), until it is ready: every shard started (the
# daemon writes queue_directory/pid/master.ready then) and PORT listens.
# A listening port alone is not enough: each shard has its own listener
# (SO_REUSEPORT), and one shard may accept while another is still
# starting, or never starts.
sluice_start() {
    local conf=$1 port=$2 log=$3 i qdir
    qdir=$(awk -F' *= *' '$1 == "queue_directory" { v = $2 } END { print v }' "$conf/main.cf" 2>/dev/null)
    if [[ -z $qdir ]]; then
        SLUICE_WHY="$conf/main.cf sets no queue_directory (needed to see when Sluice is ready)"
        return 1
    fi
    rm -f "$qdir/pid/master.ready"
    "$SLUICE_BIN" -c "$conf" start-fg </dev/null >>"$log" 2>&1 &
    SLUICE_PID=$!
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
            wait "$SLUICE_PID" 2>/dev/null || true
            SLUICE_PID=
            SLUICE_WHY="'$SLUICE_BIN -c $conf start-fg' exited during start-up; its output:"$'\n'$(tail -n 20 "$log")
            return 1
        fi
        if [[ -e $qdir/pid/master.ready && -n $(ss -ltnH "sport = :$port" 2>/dev/null) ]]; then
            return 0
        fi
        sleep 0.1
    done
    SLUICE_WHY="sluice was not ready (${qdir}/pid/master.ready and 127.0.0.1:$port listening) within ${START_TIMEOUT}s; its output:"$'\n'$(tail -n 20 "$log")
    return 1
}

sluice_stop() {
    [[ -n $SLUICE_PID ]] || return 0
    kill -TERM "$SLUICE_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$SLUICE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SLUICE_PID" 2>/dev/null; then
        echo "sluice did not exit within ${STOP_TIMEOUT}s of SIGTERM; killing it" >&2
        kill -KILL "$SLUICE_PID" 2>/dev/null || true
    fi
    wait "$SLUICE_PID" 2>/dev/null || true
    SLUICE_PID=
}

# ----------------------------------------------------------------- stats

# median [FORMAT]: of the numbers on stdin, printed with FORMAT [%.1f].
median() {
    sort -g | awk -v fmt="${1:-%.1f}" '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) printf fmt "\n", v[(NR + 1) / 2]
        else printf fmt "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
