//! Outbound TLS end to end: a real `sluice` relays to a STARTTLS next hop
//! (tests/tls_sink.py: Python's ssl module, OpenSSL underneath, so a TLS
//! stack nobody here wrote) at the levels `may`, `encrypt` and `verify`,
//! with certificates from a test CA that `openssl` makes in the test.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A CA and a server certificate for `mx.tls.test` and 127.0.0.1.
struct Certs {
    _dir: TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed for this test");
    assert!(out.status.success(), "openssl {args:?}: {}", show(&out));
}

fn make_certs() -> Certs {
    let dir = TempDir::new("tlscerts");
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Sluice Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=mx.tls.test",
    ]);
    openssl(d, &csr);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:mx.tls.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    Certs {
        ca: d.join("ca.pem"),
        cert: d.join("srv.pem"),
        key: d.join("srv.key"),
        _dir: dir,
    }
}

/// The Python sink, killed on drop.
struct TlsSink {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl TlsSink {
    fn start(certs: &Certs, mode: &str) -> TlsSink {
        Self::start_with_auth(certs, mode, None)
    }

    /// With `creds` (`user:password`) the sink offers and checks AUTH.
    fn start_with_auth(certs: &Certs, mode: &str, creds: Option<&str>) -> TlsSink {
        let dir = TempDir::new("tlssink");
        let log = dir.path().join("sink.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([&certs.cert, &certs.key])
            .arg(mode)
            .arg(&log)
            .args(creds)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed for this test");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the sink prints its port");
        TlsSink {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn messages(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.contains(r#""event": "message""#))
            .collect()
    }

    fn connections(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| e.contains(r#""event": "connect""#))
            .count()
    }
}

impl Drop for TlsSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts sluice relaying to `sink` with `extra` main.cf lines, and sends
/// one message through it.
fn relay_one(tag: &str, sink: &TlsSink, extra: &str) -> Instance {
    let mut inst = Instance::new(tag, &format!("{}{extra}", relay_to(sink.port)));
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let reply = c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: tls\r\n\r\nhi\r\n",
    );
    assert!(queued_as(&reply).is_some(), "{reply}");
    c.cmd("QUIT");
    inst
}

fn delivered(inst: &Instance, sink: &TlsSink) -> String {
    assert!(
        wait_until(Duration::from_secs(20), || !sink.messages().is_empty()),
        "nothing delivered; sink: {:?}\nlog:\n{}",
        sink.events(),
        inst.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .contains("status=sent")),
        "no status=sent; log:\n{}",
        inst.log()
    );
    sink.messages().remove(0)
}

fn deferred_with(inst: &Instance, sink: &TlsSink, reason: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || inst.log().contains(reason)),
        "no {reason:?} in the log:\n{}",
        inst.log()
    );
    assert!(inst.log().contains("status=deferred"), "{}", inst.log());
    assert!(
        sink.messages().is_empty(),
        "delivered anyway: {:?}",
        sink.events()
    );
}

#[test]
fn verify_with_the_right_ca_delivers_over_tls13_and_logs_it() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "starttls");
    let extra = format!(
        "smtp_tls_security_level = verify\nsmtp_tls_CAfile = {}\nsmtp_tls_loglevel = 1\n\
         smtp_tls_servername = mx.tls.test\n",
        certs.ca.display()
    );
    let inst = relay_one("tlsverify", &sink, &extra);
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""tls": "TLSv1.3""#), "{msg}");
    assert!(msg.contains(r#""sni": "mx.tls.test""#), "{msg}");
    let line = format!(
        "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{}: TLSv1.3 with cipher TLS_",
        sink.port
    );
    assert!(
        inst.log().contains(&line),
        "no {line:?} in:\n{}",
        inst.log()
    );
}

#[test]
fn verify_against_a_wrong_name_defers() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "starttls");
    let dir = TempDir::new("tlspolicy");
    let policy = dir.path().join("tls_policy");
    std::fs::write(
        &policy,
        format!("[127.0.0.1]:{} verify match=wrong.example\n", sink.port),
    )
    .unwrap();
    let extra = format!(
        "smtp_tls_CAfile = {}\nsmtp_tls_policy_maps = texthash:{}\n",
        certs.ca.display(),
        policy.display()
    );
    let inst = relay_one("tlswrongname", &sink, &extra);
    deferred_with(
        &inst,
        &sink,
        "dsn=4.7.5, status=deferred (Server certificate not verified)",
    );
}

#[test]
fn encrypt_to_a_server_without_starttls_defers() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "nostarttls");
    let inst = relay_one("tlsnooffer", &sink, "smtp_tls_security_level = encrypt\n");
    deferred_with(
        &inst,
        &sink,
        &format!("relay=127.0.0.1[127.0.0.1]:{}, delay=", sink.port),
    );
    deferred_with(
        &inst,
        &sink,
        "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])",
    );
}

#[test]
fn encrypt_takes_a_certificate_from_an_unknown_ca() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "starttls");
    let inst = relay_one(
        "tlsencrypt",
        &sink,
        "smtp_tls_security_level = encrypt\nsmtp_tls_loglevel = 1\n",
    );
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""tls": "TLSv1.3""#), "{msg}");
    // smtp_tls_servername is empty by default: no SNI.
    assert!(msg.contains(r#""sni": null"#), "{msg}");
    assert!(
        inst.log()
            .contains("Untrusted TLS connection established to"),
        "{}",
        inst.log()
    );
}

#[test]
fn may_is_the_default_and_uses_tls_when_offered() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "starttls");
    let inst = relay_one("tlsmay", &sink, "");
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""tls": "TLSv1.3""#), "{msg}");
}

#[test]
fn may_to_a_server_without_starttls_delivers_in_plaintext() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "nostarttls");
    let inst = relay_one("tlsmayplain", &sink, "smtp_tls_security_level = may\n");
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""tls": null"#), "{msg}");
}

#[test]
fn may_with_a_broken_handshake_delivers_in_plaintext_on_a_new_connection() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "broken");
    let inst = relay_one("tlsbroken", &sink, "smtp_tls_security_level = may\n");
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""tls": null"#), "{msg}");
    assert_eq!(sink.connections(), 2, "{:?}", sink.events());
}

#[test]
fn bytes_pipelined_after_the_220_are_discarded() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "inject");
    // At encrypt, reading the injected bytes as TLS would fail the
    // handshake and defer; discarding them lets it succeed.
    let inst = relay_one("tlsinject", &sink, "smtp_tls_security_level = encrypt\n");
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""tls": "TLSv1.3""#), "{msg}");
    assert!(
        inst.log()
            .contains("bytes the server sent after its reply to STARTTLS"),
        "{}",
        inst.log()
    );
}

/// main.cf lines for SMTP AUTH to the sink as `user:password`.
fn sasl_to(sink: &TlsSink, dir: &TempDir, creds: &str) -> String {
    let maps = dir.path().join("sasl_passwd");
    std::fs::write(&maps, format!("[127.0.0.1]:{} {creds}\n", sink.port)).unwrap();
    format!(
        "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:{}\n",
        maps.display()
    )
}

#[test]
fn auth_plain_inside_tls_with_the_password_from_the_maps() {
    let certs = make_certs();
    let sink = TlsSink::start_with_auth(&certs, "starttls", Some("relayuser:s3cret"));
    let dir = TempDir::new("sasl");
    let inst = relay_one("saslok", &sink, &sasl_to(&sink, &dir, "relayuser:s3cret"));
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""auth": "PLAIN relayuser""#), "{msg}");
    assert!(msg.contains(r#""tls": "TLSv1.3""#), "{msg}");
    assert!(!inst.log().contains("s3cret"), "{}", inst.log());
}

#[test]
fn auth_with_a_wrong_password_defers_with_the_servers_reply() {
    let certs = make_certs();
    let sink = TlsSink::start_with_auth(&certs, "starttls", Some("relayuser:s3cret"));
    let dir = TempDir::new("sasl");
    let inst = relay_one("saslbad", &sink, &sasl_to(&sink, &dir, "relayuser:wrong"));
    deferred_with(
        &inst,
        &sink,
        "dsn=4.7.8, status=deferred (SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: bad password)",
    );
}

#[test]
fn auth_is_not_sent_in_plaintext_by_default_but_login_is_when_allowed() {
    let certs = make_certs();
    let sink = TlsSink::start_with_auth(&certs, "nostarttls", Some("relayuser:s3cret"));
    let dir = TempDir::new("sasl");
    let inst = relay_one(
        "saslplain",
        &sink,
        &sasl_to(&sink, &dir, "relayuser:s3cret"),
    );
    deferred_with(
        &inst,
        &sink,
        "status=deferred (SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: no mechanism available)",
    );
    drop(inst);
    let extra = format!(
        "{}smtp_sasl_security_options = noanonymous\nsmtp_sasl_mechanism_filter = login\n",
        sasl_to(&sink, &dir, "relayuser:s3cret")
    );
    let inst = relay_one("saslplainok", &sink, &extra);
    let msg = delivered(&inst, &sink);
    assert!(msg.contains(r#""auth": "LOGIN relayuser""#), "{msg}");
    assert!(msg.contains(r#""tls": null"#), "{msg}");
}

#[test]
fn a_cached_plaintext_session_is_not_reused_once_tls_is_required() {
    let certs = make_certs();
    let sink = TlsSink::start(&certs, "starttls");
    let inst = relay_one(
        "tlsscache",
        &sink,
        "smtp_tls_security_level = none\nsmtp_connection_cache_time_limit = 30s\n",
    );
    let first = delivered(&inst, &sink);
    assert!(first.contains(r#""tls": null"#), "{first}");
    inst.append_main_cf("smtp_tls_security_level = encrypt\n");
    let out = inst.sluice(&["reload"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        wait_until(Duration::from_secs(10), || inst
            .log()
            .matches("configuration reloaded")
            .count()
            >= 2),
        "{}",
        inst.log()
    );
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let reply = c.send_mail(
        "alice@example.org",
        &["carol@example.net"],
        b"Subject: 2\r\n\r\nx\r\n",
    );
    assert!(queued_as(&reply).is_some(), "{reply}");
    assert!(
        wait_until(Duration::from_secs(20), || sink.messages().len() == 2),
        "{:?}\n{}",
        sink.events(),
        inst.log()
    );
    let second = sink.messages().remove(1);
    assert!(second.contains(r#""tls": "TLSv1.3""#), "{second}");
    assert_eq!(sink.connections(), 2, "{:?}", sink.events());
}
