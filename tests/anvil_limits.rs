//! anvil's per-client limits end to end: a real sluice with two shards,
//! Python's smtplib as the client, bound to 127.0.0.5 (loopback /8), so
//! that one client's connections land on both shards.

mod common;
use common::*;

use std::process::Command;

/// Runs a Python script with `PORT` defined; fails the test on error.
fn python(port: u16, body: &str) -> String {
    let script = format!(
        "import smtplib, socket, time\nPORT = {port}\nSRC = ('127.0.0.5', 0)\n{body}\nprint('ok')\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 must be installed for this test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python failed:\n{text}");
    text
}

/// Not exempt: only 127.0.0.1 is in smtpd_client_event_limit_exceptions.
const EXCEPT_LOCALHOST: &str = "smtpd_client_event_limit_exceptions = 127.0.0.1/32\n";

#[test]
fn connection_count_limit_across_shards() {
    let mut inst = Instance::new(
        "anvil-count",
        &format!("{EXCEPT_LOCALHOST}smtpd_client_connection_count_limit = 4\n"),
    );
    inst.start();
    python(
        inst.port,
        r#"
open_ = [smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20) for _ in range(4)]
try:
    smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20)
    raise SystemExit('a fifth connection was let in')
except smtplib.SMTPConnectError as e:
    assert e.smtp_code == 421, e
    assert e.smtp_error == b'4.7.0 mx.example.test Error: too many connections from 127.0.0.5', e
# Another client is not affected, nor is an exempt one.
other = smtplib.SMTP('127.0.0.1', PORT, source_address=('127.0.0.6', 0), timeout=20)
exempt = [smtplib.SMTP('127.0.0.1', PORT, timeout=20) for _ in range(6)]
# A session that ends frees its place (the disconnect reached the owner).
open_.pop().quit()
for _ in range(50):
    try:
        again = smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20)
        break
    except smtplib.SMTPConnectError:
        time.sleep(0.1)
else:
    raise SystemExit('the freed place was never given back')
again.quit()
for s in open_ + exempt + [other]:
    s.quit()
"#,
    );
    assert!(inst.stop().success());
    let log = inst.log();
    let warning = format!(
        "warning: Connection concurrency limit exceeded: 5 from localhost[127.0.0.5] for service 127.0.0.1:{}",
        inst.port
    );
    assert!(log.contains(&warning), "{log}");
}

#[test]
fn connection_rate_limit() {
    let mut inst = Instance::new(
        "anvil-crate",
        &format!("{EXCEPT_LOCALHOST}smtpd_client_connection_rate_limit = 3\n"),
    );
    inst.start();
    python(
        inst.port,
        r#"
for _ in range(3):
    smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20).quit()
try:
    smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20)
    raise SystemExit('a fourth connection in the minute was let in')
except smtplib.SMTPConnectError as e:
    assert e.smtp_code == 421, e
    assert b'Error: too many connections from 127.0.0.5' in e.smtp_error, e
"#,
    );
    assert!(inst.stop().success());
    let log = inst.log();
    assert!(
        log.contains(
            "warning: Connection rate limit exceeded: 4 from localhost[127.0.0.5] for service"
        ),
        "{log}"
    );
}

#[test]
fn message_and_recipient_rate_limits() {
    let mut inst = Instance::new(
        "anvil-mail",
        &format!(
            "{EXCEPT_LOCALHOST}smtpd_client_message_rate_limit = 2\nsmtpd_client_recipient_rate_limit = 3\n"
        ),
    );
    inst.start();
    python(
        inst.port,
        r#"
# Two sessions (and so, likely, two shards) share the client's counts.
a = smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20)
a.ehlo('py.example')
assert a.mail('s@example.org')[0] == 250
assert a.rcpt('r1@example.net')[0] == 250
assert a.rcpt('r2@example.net')[0] == 250
a.rset()
a.quit()
b = smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20)
b.ehlo('py.example')
assert b.mail('s@example.org')[0] == 250
assert b.rcpt('r3@example.net')[0] == 250
code, msg = b.rcpt('r4@example.net')
assert (code, msg) == (450, b'4.7.1 Error: too many recipients from 127.0.0.5'), (code, msg)
b.rset()
code, msg = b.mail('s@example.org')
assert (code, msg) == (450, b'4.7.1 Error: too much mail from 127.0.0.5'), (code, msg)
b.quit()
# The exempt client is neither counted nor limited.
c = smtplib.SMTP('127.0.0.1', PORT, timeout=20)
for i in range(4):
    assert c.mail('s@example.org')[0] == 250
    for j in range(4):
        assert c.rcpt('r%d@example.net' % j)[0] == 250
    c.rset()
c.quit()
"#,
    );
    assert!(inst.stop().success());
    let log = inst.log();
    for line in [
        "warning: Recipient address rate limit exceeded: 4 from localhost[127.0.0.5] for service",
        "warning: Message delivery request rate limit exceeded: 3 from localhost[127.0.0.5] for service",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
}

#[test]
fn mynetworks_is_the_default_exception() {
    // mynetworks = 127.0.0.0/8 in the test main.cf: 127.0.0.5 is exempt.
    let mut inst = Instance::new("anvil-mynet", "smtpd_client_connection_count_limit = 1\n");
    inst.start();
    python(
        inst.port,
        r#"
s = [smtplib.SMTP('127.0.0.1', PORT, source_address=SRC, timeout=20) for _ in range(3)]
for x in s:
    x.quit()
"#,
    );
    assert!(inst.stop().success());
    assert!(!inst.log().contains("limit exceeded"));
}

/// master.cf maxproc = 2 (one shard, so both slots are on it): a third
/// connection is accepted by the kernel but greeted only when one of the
/// first two quits; nothing is accepted and dropped.
#[test]
fn maxproc_holds_extra_connections_in_the_backlog() {
    let mut inst = Instance::new("maxproc", "sluice_shards = 1\n");
    std::fs::write(
        inst.config_dir().join("master.cf"),
        format!("127.0.0.1:{} inet n - n - 2 smtpd\n", inst.port),
    )
    .unwrap();
    inst.start();
    python(
        inst.port,
        r#"
def greeting(sock, limit):
    sock.settimeout(limit)
    try:
        return sock.recv(512)
    except socket.timeout:
        return None

first = smtplib.SMTP('127.0.0.1', PORT, timeout=20)
second = smtplib.SMTP('127.0.0.1', PORT, timeout=20)
third = socket.create_connection(('127.0.0.1', PORT), timeout=5)  # the kernel accepts
assert greeting(third, 1.5) is None, 'a third session was served beyond maxproc'
first.quit()
got = greeting(third, 10)
assert got and got.startswith(b'220 '), got
second.quit()
third.sendall(b'QUIT\r\n')
"#,
    );
    assert!(inst.stop().success());
}

/// Two shards share maxproc = 2 (one slot each): never more than two
/// sessions at once, and every waiting connection is served in the end.
#[test]
fn maxproc_is_a_total_over_shards() {
    let mut inst = Instance::new("maxproc-2", "");
    std::fs::write(
        inst.config_dir().join("master.cf"),
        format!("127.0.0.1:{} inet n - n - 2 smtpd\n", inst.port),
    )
    .unwrap();
    inst.start();
    python(
        inst.port,
        r#"
socks = [socket.create_connection(('127.0.0.1', PORT), timeout=5) for _ in range(6)]
for s in socks:
    s.settimeout(0.2)
served = set()
deadline = time.time() + 30
while len(served) < len(socks) and time.time() < deadline:
    live = []
    for i, s in enumerate(socks):
        if i in served:
            continue
        try:
            got = s.recv(512)
        except socket.timeout:
            continue
        assert got.startswith(b'220 '), got
        live.append(i)
    # Greeted and not yet quit: at most maxproc at any moment.
    assert len(live) <= 2, live
    for i in live:
        socks[i].sendall(b'QUIT\r\n')
        socks[i].settimeout(5)
        assert socks[i].recv(512).startswith(b'221'), i
        socks[i].close()
        served.add(i)
assert len(served) == len(socks), served
"#,
    );
    assert!(inst.stop().success());
}
