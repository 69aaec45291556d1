# shellcheck shell=bash
# A private Postfix instance for benchmarks: its own config, queue and data
# directories under one temporary directory, never /etc/postfix. Sourced by
# the scripts in benches/ after benches/lib.sh (wait_listening); see
# /work/shared/BENCHMARKING.md for why each setting is there.
#
#   pf_setup DIR PORT NEXTPORT MODE   write DIR/etc/{main,master}.cf
#   pf_start DIR PORT                 start, wait until PORT listens
#   pf_stop DIR                       stop, wait until the master is gone
#   pf_master_pid DIR                 the master's pid (from its pid file)
#   pf_queued DIR                     number of queue files
#
# The next hop is always relayhost = [127.0.0.1]:NEXTPORT. MODE:
#   relay   deliver there (a relay benchmark: NEXTPORT is a sink).
#   defer   defer_transports = smtp: qmgr moves each message to the
#           deferred queue without a delivery attempt, so the measured
#           work is injection plus Postfix's own queue bookkeeping, as on
#           a relay whose next hop is down (NEXTPORT need not listen).
#   noqmgr  qmgr is not started and in_flow_delay is 0 (without qmgr no
#           flow-control tokens come back, and each message would wait
#           1 s): pure receive, cleanup and fsync; mail stays in incoming.
# The older spellings yes (= defer) and no (= noqmgr) are accepted.

pf_setup() {
    local dir=$1 port=$2 nextport=$3 mode=$4
    case $mode in
    yes) mode=defer ;;
    no) mode=noqmgr ;;
    relay | defer | noqmgr) ;;
    *)
        echo "pf_setup: unknown mode '$mode'" >&2
        return 1
        ;;
    esac
    mkdir -p "$dir/etc" "$dir/spool" "$dir/data"
    chown postfix: "$dir/data"
    cat >"$dir/etc/main.cf" <<EOF
# Private benchmark instance (benches/postfix/instance.sh, mode $mode).
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = postfix.bench.test
mydomain = bench.test
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$nextport
smtp_dns_support_level = disabled
biff = no
EOF
    case $mode in
    defer) echo 'defer_transports = smtp' >>"$dir/etc/main.cf" ;;
    noqmgr)
        printf '%s\n' 'defer_transports = smtp' 'master_service_disable = qmgr.unix' \
            'in_flow_delay = 0' >>"$dir/etc/main.cf"
        ;;
    esac
    # master.cf from Debian's distribution copy: the public smtp service
    # moves to our loopback port, nothing runs chrooted (no copies of
    # /etc files in the spool needed).
    awk -v port="$port" '
        /^smtp[ \t]+inet[ \t]/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
        /^[a-zA-Z0-9]/ && NF >= 8 { $5 = "n"; print; next }
        { print }
    ' /usr/share/postfix/master.cf.dist >"$dir/etc/master.cf"
}

pf_master_pid() {
    local pidfile=$1/spool/pid/master.pid
    [[ -r $pidfile ]] && tr -d ' \n' <"$pidfile"
}

pf_start() {
    local dir=$1 port=$2
    if ! postfix -c "$dir/etc" start >>"$dir/start.log" 2>&1; then
        echo "postfix start failed; see $dir/start.log and $dir/maillog:" >&2
        tail -n 20 "$dir/start.log" "$dir/maillog" >&2 2>/dev/null || true
        return 1
    fi
    wait_listening "$port" 30 || {
        echo "postfix did not listen on 127.0.0.1:$port within 30 s; log:" >&2
        tail -n 20 "$dir/maillog" >&2 2>/dev/null || true
        return 1
    }
}

pf_stop() {
    local dir=$1 pid i
    [[ -d $dir/etc ]] || return 0
    pid=$(pf_master_pid "$dir") || pid=
    timeout 30 postfix -c "$dir/etc" stop >>"$dir/start.log" 2>&1 || true
    # postfix stop returns at once; wait (bounded) for the master to go.
    for ((i = 0; i < 100; i++)); do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

pf_queued() {
    local dir=$1
    find "$dir/spool/maildrop" "$dir/spool/incoming" "$dir/spool/active" \
        "$dir/spool/deferred" "$dir/spool/hold" -type f 2>/dev/null | wc -l
}
