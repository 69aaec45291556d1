//! The submission services as a Postfix user writes them (issue 9 point
//! 8): master.cf.dist's `submission` (STARTTLS, port 587) and
//! `submissions` (wrapper mode, port 465) entries, uncommented with every
//! `-o` override as shipped, only the service names changed to loopback
//! test ports. main.cf gives the certificate and the SASL backend (the
//! built-in passwd file); `$mua_*_restrictions` are left undefined, as in
//! a stock main.cf, so they expand to empty (with a warning).
//!
//! The entries are Postfix 3.11's master.cf.dist text as quoted in the
//! issue; Debian's 3.7 on this machine lacks `local_header_rewrite_clients`
//! and uses `smtpd_recipient_restrictions=permit_sasl_authenticated,reject`
//! instead of the relay restrictions.
//!
//! The client is Python's smtplib, from 127.0.0.5 (outside mynetworks).
//! A plain port-25 style listener on the same daemon must still refuse to
//! relay for that client.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

/// `crypt.crypt("secret", "$6$saltsalt$")` (Python 3.11's crypt module).
const JANE_SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

/// master.cf.dist's two entries, uncommented; `{submission}` and
/// `{submissions}` stand for the service names (`submission`,
/// `submissions`), here loopback test ports.
const DIST_ENTRIES: &str = "\
{submission} inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o local_header_rewrite_clients=static:all
  -o smtpd_reject_unlisted_recipient=no
  -o smtpd_client_restrictions=$mua_client_restrictions
  -o smtpd_helo_restrictions=$mua_helo_restrictions
  -o smtpd_sender_restrictions=$mua_sender_restrictions
  -o smtpd_recipient_restrictions=
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
{submissions}     inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o local_header_rewrite_clients=static:all
  -o smtpd_reject_unlisted_recipient=no
  -o smtpd_client_restrictions=$mua_client_restrictions
  -o smtpd_helo_restrictions=$mua_helo_restrictions
  -o smtpd_sender_restrictions=$mua_sender_restrictions
  -o smtpd_recipient_restrictions=
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
";

/// A self-signed P-256 certificate for mx.example.test, made now.
fn make_cert(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=mx.example.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the submission tests");
    assert!(out.status.success(), "openssl req: {}", show(&out));
    // A root-started daemon reads them as mail_owner.
    for f in [&cert, &key] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (cert.display().to_string(), key.display().to_string())
}

/// The daemon: a plain listener on `inst.port`, then the two dist entries;
/// returns it with the submission and submissions ports.
fn submission_instance() -> (Instance, u16, u16) {
    let inst = Instance::new("submission", "");
    let dir = inst.config_dir();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (cert, key) = make_cert(dir);
    let passwd = dir.join("sasl_passwd");
    std::fs::write(&passwd, format!("jane:{{SHA512-CRYPT}}{JANE_SHA512}\n")).unwrap();
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Only the client's address decides for the plain listener: loopback
    // clients would match the default permit_inet_interfaces, so the
    // instance-wide value is narrowed to show static:all at work.
    inst.append_main_cf(&format!(
        "mynetworks = 127.0.0.1/32\nsmtpd_error_sleep_time = 0s\n\
         smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
         smtpd_sasl_type = sluice\nsluice_sasl_password_file = {}\n\
         local_header_rewrite_clients = permit_mynetworks\n",
        passwd.display()
    ));
    let (sub, subs) = (free_port(), free_port());
    let entries = DIST_ENTRIES
        .replace("{submission}", &format!("127.0.0.1:{sub}"))
        .replace("{submissions}", &format!("127.0.0.1:{subs}"));
    std::fs::write(
        dir.join("master.cf"),
        format!("127.0.0.1:{} inet n - n - - smtpd\n{entries}", inst.port),
    )
    .unwrap();
    (inst, sub, subs)
}

fn python(script: &str) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script);
    let out = run_with_input(cmd, b"", Duration::from_secs(60));
    assert!(out.status.success(), "python failed: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn master_cf_dist_submission_services_work_as_shipped() {
    let (mut inst, sub, subs) = submission_instance();
    inst.start();
    let plain = inst.port;
    let out = python(&format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
SRC = ("127.0.0.5", 0)
BARE = b"Subject: no headers\r\n\r\nhi\r\n"
def refused(s, rcpt):
    try:
        s.sendmail("jane@example.com", [rcpt], BARE)
        return "SENT"
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients[rcpt]
        return "REFUSED %d %s" % (code, text.decode())
# submission (587): TLS first, AUTH only inside it, relay after login.
with smtplib.SMTP("127.0.0.1", {sub}, timeout=30, source_address=SRC) as s:
    s.ehlo("client.example")
    assert not s.has_extn("auth"), s.esmtp_features
    print("PLAIN-MAIL", *s.docmd("MAIL FROM:<jane@example.com>"))
    s.starttls(context=ctx)
    s.ehlo("client.example")
    print("AUTH-OFFERED", s.has_extn("auth"))
    print("LOGIN", s.login("jane", "secret")[0])
    print("SUB", refused(s, "far@foreign.example"))
# submission without login: the relay restrictions end in reject.
with smtplib.SMTP("127.0.0.1", {sub}, timeout=30, source_address=SRC) as s:
    s.starttls(context=ctx)
    s.ehlo("client.example")
    print("SUB-ANON", refused(s, "far@foreign.example"))
# submissions (465): TLS from the first byte.
with smtplib.SMTP_SSL("127.0.0.1", {subs}, context=ctx, timeout=30, source_address=SRC) as s:
    s.ehlo("client.example")
    print("SUBS-AUTH-OFFERED", s.has_extn("auth"))
    print("SUBS-LOGIN", s.login("jane", "secret")[0])
    print("SUBS", refused(s, "far@foreign.example"))
with smtplib.SMTP_SSL("127.0.0.1", {subs}, context=ctx, timeout=30, source_address=SRC) as s:
    s.ehlo("client.example")
    print("SUBS-ANON", refused(s, "far@foreign.example"))
# The plain listener on the same daemon: no relay for this client, local
# mail accepted as before.
with smtplib.SMTP("127.0.0.1", {plain}, timeout=30, source_address=SRC) as s:
    s.ehlo("client.example")
    print("PLAIN", refused(s, "far@foreign.example"))
    print("PLAIN-LOCAL", refused(s, "root@mx.example.test"))
"#
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "PLAIN-MAIL 530 b'5.7.0 Must issue a STARTTLS command first'",
            "AUTH-OFFERED True",
            "LOGIN 235",
            "SUB SENT",
            "SUB-ANON REFUSED 554 5.7.1 <far@foreign.example>: Recipient address rejected: Access denied",
            "SUBS-AUTH-OFFERED True",
            "SUBS-LOGIN 235",
            "SUBS SENT",
            "SUBS-ANON REFUSED 554 5.7.1 <far@foreign.example>: Recipient address rejected: Access denied",
            // Postfix's default relay restrictions end in
            // defer_unauth_destination.
            "PLAIN REFUSED 454 4.7.1 <far@foreign.example>: Relay access denied",
            "PLAIN-LOCAL SENT",
        ],
        "{}",
        inst.log()
    );
    let log = inst.log();
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from localhost[127.0.0.5]: 454 4.7.1 <far@foreign.example>: \
             Relay access denied; from=<jane@example.com> to=<far@foreign.example> \
             proto=ESMTP helo=<client.example>"
        ),
        "{log}"
    );
    for warning in [
        "undefined parameter: mua_client_restrictions",
        "parameter syslog_name is not implemented",
        "parameter milter_macro_daemon_name is not implemented",
        "parameter smtpd_reject_unlisted_recipient is not implemented",
    ] {
        assert!(log.contains(warning), "{warning}: {log}");
    }
    inst.stop();
    let queue = read_queue(&inst.queue_dir());
    assert_eq!(queue.len(), 3, "two submissions and one local message");
    for (_, sender, rcpts, content) in &queue {
        let text = String::from_utf8_lossy(content);
        let headers = &text[..text.find("\r\n\r\n").unwrap()];
        if rcpts == &["far@foreign.example"] {
            // static:all: the MUA's missing headers are added.
            assert_eq!(sender, "jane@example.com");
            assert!(text.contains("with ESMTPSA id "), "{text}");
            for h in [
                "\r\nMessage-Id: <",
                "\r\nDate: ",
                "\r\nFrom: jane@example.com",
            ] {
                assert!(headers.contains(h), "{h}: {text}");
            }
        } else {
            // The plain listener's client is outside mynetworks.
            assert_eq!(rcpts, &["root@mx.example.test"]);
            assert!(!headers.contains("\r\nMessage-Id: "), "{text}");
        }
    }
}
