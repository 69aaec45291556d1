#!/usr/bin/env bash
# Memory of the daemon while many sessions send big messages at once
# (sluice_inflight_memory_limit): SESSIONS smtplib clients each send a
# SIZE-byte message, paced in 64 KiB pieces so that all of them are in
# DATA together; the daemon's RSS is sampled every 10 ms. Prints the
# replies (250 / 451) and the peak RSS. Loopback only, bounded in count.
#
# Usage: benches/inflight_memory.sh
# Environment (defaults in brackets):
#   SESSIONS [100]  SIZE [10000000]  LIMIT [1g] (sluice_inflight_memory_limit)
#   SHARDS [2]  PACE_MS [20] (pause between 64 KiB pieces)
#   SLUICE_BIN [${CARGO_TARGET_DIR:-target}/release/sluice]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SESSIONS=${SESSIONS:-100} SIZE=${SIZE:-10000000} LIMIT=${LIMIT:-1g}
SHARDS=${SHARDS:-2} PACE_MS=${PACE_MS:-20}
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice}
[[ -x $SLUICE_BIN ]] || { echo "no $SLUICE_BIN (cargo build --release, or set SLUICE_BIN)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/sluice-inflight.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/main.cf" <<CF
myhostname = mx.bench.test
queue_directory = $TMP/queue
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
sluice_shards = $SHARDS
defer_transports = smtp
smtp_host_lookup = native
message_size_limit = $((SIZE + 100000))
sluice_inflight_memory_limit = $LIMIT
CF
echo "127.0.0.1:$PORT inet n - n - - smtpd" >"$TMP/master.cf"
"$SLUICE_BIN" -c "$TMP" start-fg </dev/null >"$TMP/daemon.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 300); do [[ -e $TMP/queue/pid/master.ready ]] && break; sleep 0.1; done
[[ -e $TMP/queue/pid/master.ready ]] || { cat "$TMP/daemon.log"; exit 1; }
python3 - "$PORT" "$PID" "$SESSIONS" "$SIZE" "$PACE_MS" <<'PY'
import smtplib, sys, threading, time, collections
port, pid, n, size, pace = (int(a) for a in sys.argv[1:])
def rss():
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
base = rss(); peak = [base]; done = [False]
def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.01)
barrier = threading.Barrier(n, timeout=300)
replies = [None] * n
line = b"y" * 998 + b"\r\n"
body = b"Subject: big\r\n\r\n" + line * (size // len(line))
def client(i):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=300)
        s.ehlo("bench%d" % i); s.mail("a@example.org"); s.rcpt("b@example.net")
        s.putcmd("data"); s.getreply()
        barrier.wait()
        for k in range(0, len(body), 65536):
            s.sock.sendall(body[k:k + 65536]); time.sleep(pace / 1000)
        s.sock.sendall(b".\r\n")
        code, msg = s.getreply(); replies[i] = "%d %s" % (code, msg.decode()[:40]); s.quit()
    except Exception as e:
        replies[i] = "error %s" % e
t = threading.Thread(target=sample); t.start()
start = time.time()
ths = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for x in ths: x.start()
for x in ths: x.join()
done[0] = True; t.join()
kinds = collections.Counter(r.split(" ")[0] + (" " + r.split(" ")[1] if r[0] == "4" else "") for r in replies)
print("sessions=%d size=%d: %s in %.1fs" % (n, size, dict(kinds), time.time() - start))
print("RSS: baseline %.1f MiB, peak %.1f MiB (+%.1f MiB)" % (base / 1024, peak[0] / 1024, (peak[0] - base) / 1024))
PY
grep -c "in-flight memory limit reached" "$TMP/daemon.log" | sed 's/^/log lines "in-flight memory limit reached": /'
