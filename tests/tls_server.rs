//! Inbound TLS end to end: STARTTLS and wrapper mode against a real
//! sluice, with clients nobody here wrote (Python's smtplib and ssl,
//! `openssl s_client`, swaks), the injection defence, `encrypt`, a
//! garbage handshake, and a bad certificate stopping start-up.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A self-signed P-256 certificate for mx.example.test, made now.
fn make_cert(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=mx.example.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TLS tests");
    assert!(out.status.success(), "openssl req: {}", show(&out));
    (cert.display().to_string(), key.display().to_string())
}

/// Listeners: STARTTLS at `may` (the instance's port), wrapper mode, and
/// STARTTLS at `encrypt`.
fn tls_instance(tag: &str) -> (Instance, u16, u16) {
    let inst = Instance::new(tag, "");
    let (cert, key) = make_cert(inst.config_dir());
    inst.append_main_cf(&format!(
        "smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
         smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\nsmtpd_tls_loglevel = 1\n"
    ));
    let (wrapper, encrypt) = (free_port(), free_port());
    std::fs::write(
        inst.config_dir().join("master.cf"),
        format!(
            "127.0.0.1:{} inet n - n - - smtpd\n\
             127.0.0.1:{wrapper} inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n\
             127.0.0.1:{encrypt} inet n - n - - smtpd\n  -o smtpd_tls_security_level=encrypt\n",
            inst.port
        ),
    )
    .unwrap();
    (inst, wrapper, encrypt)
}

fn python(script: &str) -> String {
    let out = run_with_input(
        {
            let mut c = Command::new("python3");
            c.arg("-c").arg(script);
            c
        },
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "python failed: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PY_COMMON: &str = r#"
import smtplib, socket, ssl, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def upto(f, prefix):
    while True:
        line = f.readline()
        assert line, "connection closed while waiting for %r" % prefix
        if line.startswith(prefix):
            return line
def msg(subject):
    return ("From: a@example.org\r\nTo: b@example.net\r\nSubject: %s\r\n\r\nbody\r\n" % subject)
"#;

#[test]
fn starttls_and_wrapper_mode_with_independent_clients() {
    let (mut inst, wrapper, encrypt) = tls_instance("tls-e2e");
    inst.start();
    let port = inst.port;
    let script = format!(
        r#"{PY_COMMON}
# smtplib: STARTTLS offered, taken, not offered again; a message queued.
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    code, ehlo = s.ehlo("py.example.org")
    assert b"STARTTLS" in ehlo, ehlo
    code, text = s.starttls(context=ctx)
    assert (code, text) == (220, b"2.0.0 Ready to start TLS"), (code, text)
    code, ehlo = s.ehlo("py.example.org")
    assert b"STARTTLS" not in ehlo, ehlo
    assert s.sock.version() in ("TLSv1.3", "TLSv1.2")
    s.sendmail("a@example.org", ["b@example.net"], msg("starttls"))
    code, text = s.docmd("STARTTLS")
    assert (code, text) == (554, b"5.5.1 Error: TLS already active"), (code, text)
# Wrapper mode: TLS before the greeting.
with smtplib.SMTP_SSL("127.0.0.1", {wrapper}, context=ctx, timeout=10) as s:
    code, ehlo = s.ehlo("py.example.org")
    assert b"STARTTLS" not in ehlo, ehlo
    s.sendmail("a@example.org", ["b@example.net"], msg("wrapper"))
# encrypt: MAIL before TLS is refused; after TLS it is fine.
with smtplib.SMTP("127.0.0.1", {encrypt}, timeout=10) as s:
    s.ehlo("py.example.org")
    code, text = s.docmd("MAIL FROM:<a@example.org>")
    assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first"), (code, text)
    s.starttls(context=ctx)
    s.ehlo("py.example.org")
    s.sendmail("a@example.org", ["b@example.net"], msg("encrypt"))
# Injection (CVE-2011-0411): STARTTLS and RSET in one write; no answer to
# RSET may come inside TLS.
raw = socket.create_connection(("127.0.0.1", {port}), timeout=10)
f = raw.makefile("rb")
assert f.readline().startswith(b"220 ")
raw.sendall(b"EHLO inj.example\r\n")
upto(f, b"250 ")
raw.sendall(b"STARTTLS\r\nRSET\r\n")
assert f.readline() == b"220 2.0.0 Ready to start TLS\r\n"
tls = ctx.wrap_socket(raw, server_hostname="mx.example.test")
tls.settimeout(10)
tls.sendall(b"NOOP\r\n")
first = tls.recv(4096)
assert first == b"250 2.0.0 Ok\r\n", first
tls.sendall(b"QUIT\r\n")
assert tls.recv(4096).startswith(b"221")
tls.close()
# Garbage instead of a ClientHello: closed, and the shard serves others
# meanwhile.
bad = socket.create_connection(("127.0.0.1", {port}), timeout=10)
bf = bad.makefile("rb")
bf.readline()
bad.sendall(b"EHLO bad.example\r\n")
upto(bf, b"250 ")
bad.sendall(b"STARTTLS\r\n")
assert bf.readline().startswith(b"220 2.0.0")
stalled = socket.create_connection(("127.0.0.1", {port}), timeout=10)
sf = stalled.makefile("rb")
sf.readline()
stalled.sendall(b"EHLO stall.example\r\n")
upto(sf, b"250 ")
stalled.sendall(b"STARTTLS\r\n")
upto(sf, b"220 2.0.0")
stalled.sendall(b"\x16\x03\x01")  # a ClientHello's first bytes, then silence
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.starttls(context=ctx)
    s.ehlo("other.example")
    assert s.noop()[0] == 250
bad.sendall(b"GET / HTTP/1.0\r\n\r\n" * 20)
rest = b""
try:
    while True:
        chunk = bad.recv(4096)
        if not chunk:
            break
        rest += chunk
except ConnectionResetError:
    pass
assert b"250" not in rest, rest
print("ok")
"#
    );
    assert!(python(&script).contains("ok"));

    // openssl s_client, talking SMTP through TLS: each command group is
    // sent after the previous one's replies had time to come, so that
    // the session sees no pipelining violation.
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!(
        "(sleep 1; printf 'EHLO ossl.example\\r\\n'; sleep 1; \
          printf 'MAIL FROM:<o@example.org>\\r\\nRCPT TO:<b@example.net>\\r\\nDATA\\r\\n'; sleep 1; \
          printf 'Subject: openssl\\r\\n\\r\\nhi\\r\\n.\\r\\n'; sleep 1; printf 'QUIT\\r\\n'; sleep 1) \
         | openssl s_client -starttls smtp -quiet -connect 127.0.0.1:{port}"
    ));
    let out = run_with_input(cmd, b"", Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("250 2.0.0 Ok: queued as "), "{}", show(&out));

    // swaks --tls (needs Debian's libnet-ssleay-perl, libio-socket-ssl-perl).
    assert!(have_program("swaks"), "swaks is needed (see .ci/run)");
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--tls",
        ])
        .args([
            "--from",
            "s@example.org",
            "--to",
            "b@example.net",
            "--header",
            "Subject: swaks",
        ])
        .args(["--timeout", "30"])
        .output()
        .expect("swaks");
    assert!(out.status.success(), "swaks --tls: {}", show(&out));
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &wrapper.to_string(),
            "--tlsc",
        ])
        .args([
            "--from",
            "s@example.org",
            "--to",
            "b@example.net",
            "--header",
            "Subject: swakstlsc",
        ])
        .args(["--timeout", "30"])
        .output()
        .expect("swaks");
    assert!(out.status.success(), "swaks --tlsc: {}", show(&out));

    // The stalled handshake ends at smtpd_starttls_timeout at the latest;
    // the log has what happened.
    assert!(inst.stop().success());
    let log = inst.log();
    for want in [
        "Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 with cipher TLS_",
        "warning: localhost[127.0.0.1]: discarding 6 bytes of plaintext pipelined after STARTTLS",
        "improper command pipelining after STARTTLS from localhost[127.0.0.1]",
        "SSL_accept error from localhost[127.0.0.1]: ",
        "lost connection after STARTTLS from localhost[127.0.0.1]",
    ] {
        assert!(log.contains(want), "missing {want:?} in log:\n{log}");
    }
    let q = read_queue(&inst.queue_dir());
    let subjects: Vec<String> = q
        .iter()
        .map(|m| {
            let t = String::from_utf8_lossy(&m.3);
            t.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    for s in [
        "starttls",
        "wrapper",
        "encrypt",
        "openssl",
        "swaks",
        "swakstlsc",
    ] {
        assert!(
            subjects.iter().any(|x| x == s),
            "{s} not queued: {subjects:?}"
        );
    }
    let starttls = q
        .iter()
        .map(|m| String::from_utf8_lossy(&m.3).into_owned())
        .find(|t| t.contains("Subject: starttls\r\n"))
        .unwrap();
    assert!(
        starttls.contains("\t(using TLSv1.3 with cipher TLS_")
            && starttls.contains("\t(No client certificate requested)\r\n")
            && starttls.contains(" with ESMTPS id "),
        "{starttls}"
    );
}

#[test]
fn a_bad_certificate_stops_start_up() {
    let inst = Instance::new("tls-bad", "");
    let bad = inst.config_dir().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    inst.append_main_cf(&format!(
        "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {}\n",
        bad.display()
    ));
    for args in [&["check"][..], &["start-fg"][..]] {
        let out = run_with_input(
            {
                let mut c = Command::new(SLUICE);
                c.arg("-c").arg(inst.config_dir()).args(args);
                c
            },
            b"",
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}: ", bad.display())),
            "{args:?}: {err}"
        );
    }
}
