//! SMTP AUTH end to end (issue 9 point 6): a submission-style listener
//! (`-o smtpd_sasl_auth_enable=yes -o
//! smtpd_relay_restrictions=permit_sasl_authenticated,reject`) relays for
//! a client outside mynetworks once it logged in, and only then, over both
//! backends: the built-in passwd-file (`smtpd_sasl_type = sluice`) and
//! Dovecot's auth socket (`smtpd_sasl_type = dovecot`, here a fake Dovecot
//! in the test, see [`FakeDovecot`]).
//!
//! Clients nobody here wrote: Python's smtplib (`login()`, which picks
//! PLAIN, and `starttls()`) and swaks (`--auth LOGIN`). Most listeners run
//! with `smtpd_tls_auth_only = no` (Postfix's default); one test checks
//! that `smtpd_tls_auth_only = yes` hides and refuses AUTH on a plaintext
//! connection, and one logs in inside STARTTLS with it (a certificate made
//! with the openssl command for the test).

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A loopback address outside the instances' mynetworks.
const STRANGER: &str = "127.0.0.5";
/// `crypt.crypt("secret", "$6$saltsalt$")` (Python 3.11's crypt module).
const JANE_SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
/// base64("\0jane\0secret") and base64("\0jane\0wrong").
const PLAIN_GOOD: &str = "AGphbmUAc2VjcmV0";
const PLAIN_BAD: &str = "AGphbmUAd3Jvbmc=";

/// The submission service's `-o` overrides (after our own smtpd line).
fn submission(backend: &str) -> String {
    format!(
        "\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_tls_auth_only=no\n  \
         -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n  \
         -o smtpd_sasl_authenticated_header=yes\n{backend}"
    )
}

/// An instance whose password file holds jane/secret; returns it with the
/// file's path. The file is world-readable: a root-started daemon reads it
/// as mail_owner.
fn builtin(tag: &str, extra_main: &str, extra_master: &str) -> (Instance, PathBuf) {
    let (mut inst, file) = builtin_stopped(tag, extra_main, extra_master);
    inst.start();
    (inst, file)
}

/// [`builtin`], not started yet.
fn builtin_stopped(tag: &str, extra_main: &str, extra_master: &str) -> (Instance, PathBuf) {
    let dir = TempDir::new(&format!("{tag}-pw"));
    let file = dir.path().join("sasl_passwd");
    std::fs::write(
        &file,
        format!("# test users\njane:{{SHA512-CRYPT}}{JANE_SHA512}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let backend = format!(
        "  -o smtpd_sasl_type=sluice\n  -o sluice_sasl_password_file={}\n{extra_master}",
        file.display()
    );
    let inst = Instance::with_master(
        tag,
        &format!("mynetworks = 127.0.0.1/32\nsmtpd_error_sleep_time = 0s\n{extra_main}"),
        &submission(&backend),
    );
    std::mem::forget(dir);
    (inst, file)
}

/// smtplib from 127.0.0.5: EHLO, `login()` when a password is given, one
/// message to far@foreign.example. Prints "AUTH <code>", then "SENT" or
/// "REFUSED <code> <text>".
fn smtplib_send(port: u16, user: &str, password: &str, sender: &str) -> String {
    const SCRIPT: &str = r#"
import smtplib, sys
port, user, password, sender = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=("127.0.0.5", 0)) as s:
    s.ehlo("client.example")
    if password:
        try:
            code, _ = s.login(user, password)
            print("AUTH", code)
        except smtplib.SMTPAuthenticationError as e:
            print("AUTH", e.smtp_code, e.smtp_error.decode())
            sys.exit(0)
    try:
        s.sendmail(sender, ["far@foreign.example"], b"Subject: auth test\r\n\r\nhi\r\n")
        print("SENT")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["far@foreign.example"]
        print("REFUSED", code, text.decode())
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), user, password, sender])
        .output()
        .expect("python3");
    assert!(out.status.success(), "smtplib: {}", show(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn builtin_backend_relays_only_for_a_logged_in_client() {
    let (mut inst, _file) = builtin("auth-builtin", "", "");
    // master.cf.dist's submission restrictions end in a plain `reject`,
    // whose text is Postfix's generic one.
    assert_eq!(
        smtplib_send(inst.port, "", "", "jane@example.com"),
        "REFUSED 554 5.7.1 <far@foreign.example>: Recipient address rejected: Access denied"
    );
    assert_eq!(
        smtplib_send(inst.port, "jane", "wrong", "jane@example.com"),
        "AUTH 535 5.7.8 Error: authentication failed: authentication failure"
    );
    assert_eq!(
        smtplib_send(inst.port, "jane", "secret", "jane@example.com"),
        "AUTH 235\nSENT"
    );
    let log = inst.log();
    assert!(
        log.contains(&format!(
            "warning: localhost[{STRANGER}]: SASL PLAIN authentication failed: authentication failure, sasl_username=jane"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            ": client=localhost[{STRANGER}], sasl_method=PLAIN, sasl_username=jane"
        )),
        "{log}"
    );
    inst.stop();
    let queue = read_queue(&inst.queue_dir());
    assert_eq!(queue.len(), 1, "one message relayed");
    let text = String::from_utf8_lossy(&queue[0].3);
    assert!(
        text.contains(
            "\r\n\t(Authenticated sender: jane)\r\n\tby mx.example.test (Sluice) with ESMTPA id "
        ),
        "{text}"
    );
}

#[test]
fn swaks_logs_in_with_login() {
    assert!(
        have_program("swaks"),
        "swaks is missing (.ci/run installs it)"
    );
    let (inst, _file) = builtin("auth-swaks", "", "");
    let swaks = |password: &str| {
        Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{}", inst.port)])
            .args(["--local-interface", STRANGER, "--helo", "client.example"])
            .args(["--from", "jane@example.com", "--to", "far@foreign.example"])
            .args([
                "--auth",
                "LOGIN",
                "--auth-user",
                "jane",
                "--auth-password",
                password,
            ])
            .args(["--timeout", "20"])
            .output()
            .expect("swaks")
    };
    let ok = swaks("secret");
    let text = show(&ok);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains("235 2.7.0 Authentication successful"),
        "{text}"
    );
    assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    let bad = swaks("wrong");
    let text = show(&bad);
    assert!(!bad.status.success(), "{text}");
    assert!(
        text.contains("535 5.7.8 Error: authentication failed: authentication failure"),
        "{text}"
    );
    assert!(inst
        .log()
        .contains("SASL LOGIN authentication failed: authentication failure, sasl_username=jane"));
}

#[test]
fn sender_login_mismatch_is_refused() {
    let dir = TempDir::new("auth-logins");
    let maps = dir.path().join("sender_logins");
    std::fs::write(&maps, "jane@example.com jane\n@shared.example jane\n").unwrap();
    let (inst, _file) = builtin(
        "auth-mismatch",
        &format!(
            "smtpd_sender_login_maps = texthash:{}\n\
             smtpd_recipient_restrictions = reject_sender_login_mismatch\n",
            maps.display()
        ),
        "",
    );
    assert_eq!(
        smtplib_send(inst.port, "jane", "secret", "jane@example.com"),
        "AUTH 235\nSENT"
    );
    assert_eq!(
        smtplib_send(inst.port, "jane", "secret", "joe@example.com"),
        "AUTH 235\nREFUSED 553 5.7.1 <joe@example.com>: Sender address rejected: not owned by user jane"
    );
}

#[test]
fn password_guessing_is_disconnected_at_the_error_limit() {
    let (inst, _file) = builtin("auth-brute", "", "  -o smtpd_hard_error_limit=3\n");
    let mut c = Client::connect(inst.addr());
    c.reply();
    assert!(c
        .cmd("EHLO client.example")
        .contains("250-AUTH PLAIN LOGIN"));
    for _ in 0..2 {
        assert_eq!(
            c.cmd(&format!("AUTH PLAIN {PLAIN_BAD}")),
            "535 5.7.8 Error: authentication failed: authentication failure"
        );
    }
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {PLAIN_BAD}")),
        "535 5.7.8 Error: authentication failed: authentication failure"
    );
    assert_eq!(
        c.reply(),
        "421 4.7.0 mx.example.test Error: too many errors"
    );
    assert!(c.closed());
    assert!(inst.log().contains("auth=0/3"), "{}", inst.log());
}

#[test]
fn missing_password_file_is_a_temporary_failure() {
    let (inst, file) = builtin("auth-nofile", "", "");
    std::fs::remove_file(&file).unwrap();
    let mut c = Client::connect(inst.addr());
    c.reply();
    c.cmd("EHLO client.example");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {PLAIN_GOOD}")),
        "454 4.7.0 Temporary authentication failure: (reason unavailable)"
    );
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
    let log = inst.log();
    assert!(
        log.contains(&format!("warning: {}: No such file", file.display())),
        "{log}"
    );
}

#[test]
fn tls_auth_only_hides_and_refuses_auth_without_tls() {
    let (inst, _file) = builtin("auth-tlsonly", "", "  -o smtpd_tls_auth_only=yes\n");
    let mut c = Client::connect(inst.addr());
    c.reply();
    assert!(!c.cmd("EHLO client.example").contains("AUTH"));
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {PLAIN_GOOD}")),
        "504 5.5.4 Encryption required for requested authentication mechanism"
    );
}

/// `smtpd_tls_auth_only = yes` on a STARTTLS listener: smtplib sees no
/// AUTH before TLS (and gets 504 if it tries), then `starttls()` and
/// `login()` inside TLS relay its message; Received: says ESMTPSA with the
/// TLS clause and then the login, in Postfix's order.
#[test]
fn auth_inside_starttls_with_tls_auth_only() {
    let (mut inst, _file) = builtin_stopped("auth-starttls", "", "  -o smtpd_tls_auth_only=yes\n");
    let (cert, key) = (
        inst.config_dir().join("cert.pem"),
        inst.config_dir().join("key.pem"),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=mx.example.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TLS tests");
    assert!(out.status.success(), "openssl req: {}", show(&out));
    inst.append_main_cf(&format!(
        "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n\
         smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n",
        cert.display(),
        key.display()
    ));
    inst.start();
    const SCRIPT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30, source_address=("127.0.0.5", 0)) as s:
    code, ehlo = s.ehlo("client.example")
    assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo, ehlo
    code, text = s.docmd("AUTH", "PLAIN " + sys.argv[2])
    assert (code, text) == (504, b"5.5.4 Encryption required for requested authentication mechanism"), (code, text)
    s.starttls(context=ctx)
    code, ehlo = s.ehlo("client.example")
    assert b"AUTH PLAIN LOGIN" in ehlo and b"STARTTLS" not in ehlo, ehlo
    code, _ = s.login("jane", "secret")
    assert code == 235, code
    s.sendmail("jane@example.com", ["far@foreign.example"], b"Subject: tls auth\r\n\r\nhi\r\n")
    print("SENT", s.sock.version())
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &inst.port.to_string(), PLAIN_GOOD])
        .output()
        .expect("python3");
    assert!(out.status.success(), "smtplib: {}", show(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("SENT TLSv1."), "{said}");
    let log = inst.log();
    assert!(
        log.contains(&format!(
            ": client=localhost[{STRANGER}], sasl_method=PLAIN, sasl_username=jane"
        )),
        "{log}"
    );
    inst.stop();
    let queue = read_queue(&inst.queue_dir());
    assert_eq!(queue.len(), 1, "one message relayed");
    let text = String::from_utf8_lossy(&queue[0].3);
    let using = text.find("\r\n\t(using TLSv1.").expect("the TLS clause");
    let login = text
        .find(
            "\r\n\t(Authenticated sender: jane)\r\n\tby mx.example.test (Sluice) with ESMTPSA id ",
        )
        .unwrap_or_else(|| panic!("ESMTPSA and the login: {text}"));
    assert!(using < login, "{text}");
}

#[test]
fn plaintext_password_file_stops_start_up() {
    let dir = TempDir::new("auth-plainfile");
    let file = dir.path().join("sasl_passwd");
    std::fs::write(&file, "jane:{PLAIN}secret\n").unwrap();
    let inst = Instance::with_master(
        "auth-plaincheck",
        "",
        &submission(&format!(
            "  -o smtpd_sasl_type=sluice\n  -o sluice_sasl_password_file={}\n",
            file.display()
        )),
    );
    let out = inst.sluice(&["check"]);
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "{}:1: user jane: scheme {{PLAIN}} is refused",
            file.display()
        )),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

/// A fake Dovecot auth server on a unix socket, answering as Dovecot's
/// auth process does for the client protocol (version 1.2): it waits for
/// the client's `VERSION`/`CPID`, sends `VERSION`, `MECH PLAIN`, `MECH
/// LOGIN`, `SPID`, `CUID`, `COOKIE`, `DONE`, then answers each `AUTH` with
/// `OK <id> user=<name>` when the PLAIN response is jane/secret and `FAIL
/// <id> user=<name>` (no reason, as Dovecot sends for a wrong password)
/// otherwise. It records the AUTH lines it got. Not reproduced: CONT
/// round trips (never used for PLAIN with an initial response), auth
/// delays on failure, `temp` failures, multiple requests per connection.
struct FakeDovecot {
    path: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeDovecot {
    fn start(dir: &Path) -> FakeDovecot {
        let path = dir.join("auth");
        let listener = UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            // Bounded: a test makes a handful of logins.
            for stream in listener.incoming().take(16).flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // The client speaks first: VERSION and CPID.
                for _ in 0..2 {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                }
                let _ = writer.write_all(
                    b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n\
                      SPID\t4242\nCUID\t1\nCOOKIE\t0123456789abcdef\nDONE\n",
                );
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let request = line.trim_end().to_string();
                let id = request.split('\t').nth(1).unwrap_or("0").to_string();
                let reply = if request.ends_with(&format!("resp={PLAIN_GOOD}")) {
                    format!("OK\t{id}\tuser=jane\n")
                } else {
                    format!("FAIL\t{id}\tuser=jane\n")
                };
                seen.lock().unwrap().push(request);
                let _ = writer.write_all(reply.as_bytes());
            }
        });
        FakeDovecot { path, requests }
    }
}

#[test]
fn dovecot_backend_over_its_socket() {
    let dir = TempDir::new("auth-dovecot-sock");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dovecot = FakeDovecot::start(dir.path());
    let mut inst = Instance::with_master(
        "auth-dovecot",
        "mynetworks = 127.0.0.1/32\nsmtpd_error_sleep_time = 0s\n",
        &submission(&format!(
            "  -o smtpd_sasl_type=dovecot\n  -o smtpd_sasl_path={}\n  \
             -o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination\n",
            dovecot.path.display()
        )),
    );
    inst.start();
    assert_eq!(
        smtplib_send(inst.port, "jane", "wrong", "jane@example.com"),
        "AUTH 535 5.7.8 Error: authentication failed: (reason unavailable)"
    );
    assert_eq!(
        smtplib_send(inst.port, "jane", "secret", "jane@example.com"),
        "AUTH 235\nSENT"
    );
    assert_eq!(
        smtplib_send(inst.port, "", "", "jane@example.com"),
        "REFUSED 554 5.7.1 <far@foreign.example>: Relay access denied"
    );
    let requests = dovecot.requests.lock().unwrap().clone();
    // smtplib tries PLAIN, then LOGIN after a 535: Sluice hands Dovecot
    // LOGIN's credentials as one PLAIN request.
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(
        requests[1].ends_with(&format!("\tresp={PLAIN_BAD}")),
        "{requests:?}"
    );
    assert_eq!(
        requests[2],
        format!(
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip={STRANGER}\tresp={PLAIN_GOOD}"
        )
    );
    assert!(inst.log().contains(&format!(
        ": client=localhost[{STRANGER}], sasl_method=PLAIN, sasl_username=jane"
    )));
    inst.stop();
    assert_eq!(read_queue(&inst.queue_dir()).len(), 1);
}

#[test]
fn dovecot_down_is_a_temporary_failure() {
    let dir = TempDir::new("auth-dovecot-down");
    let socket = dir.path().join("no-such-socket");
    let mut inst = Instance::with_master(
        "auth-down",
        "smtpd_error_sleep_time = 0s\n",
        &submission(&format!(
            "  -o smtpd_sasl_type=dovecot\n  -o smtpd_sasl_path={}\n",
            socket.display()
        )),
    );
    inst.start();
    let mut c = Client::connect(inst.addr());
    c.reply();
    c.cmd("EHLO client.example");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {PLAIN_GOOD}")),
        "454 4.7.0 Temporary authentication failure: (reason unavailable)"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<jane@example.com>"),
        "250 2.1.0 Ok",
        "the session goes on, not logged in"
    );
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");
    let log = inst.log();
    assert!(
        log.contains(&format!(
            "warning: SASL: Connect to Dovecot auth socket '{}' failed",
            socket.display()
        )),
        "{log}"
    );
    inst.stop();
}
