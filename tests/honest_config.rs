//! Honest configuration, end to end: a parameter that is set but not
//! implemented is a warning (the daemon runs) or, when running without it
//! would weaken security or change where mail goes, a refusal: `sluice
//! check`, `start`, `start-fg` and `reload` exit EX_CONFIG (78) naming the
//! parameter and the file line, and nothing listens.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

const EX_CONFIG: i32 = 78;

/// main.cf's first line after the test instance's own (see common).
const EXTRA_LINE: usize = 11;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sluice start-fg`, bounded: its exit status and what it printed.
fn start_fg(inst: &Instance) -> (Option<i32>, String) {
    let mut child = Command::new(SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .arg("start-fg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(inst.log_path()).unwrap())
        .spawn()
        .expect("spawn sluice");
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (status.and_then(|s| s.code()), inst.log())
}

#[test]
fn header_checks_refuses_check_and_start() {
    let inst = Instance::new("honest-hc", "header_checks = regexp:/x\n");
    let want = format!(
        "sluice: fatal: {}:{EXTRA_LINE}: parameter header_checks is not implemented yet; refusing to run without it",
        inst.config_dir().join("main.cf").display()
    );
    let check = inst.sluice(&["check"]);
    assert_eq!(check.status.code(), Some(EX_CONFIG), "{}", stderr(&check));
    assert!(stderr(&check).contains(&want), "{}", stderr(&check));

    let (code, log) = start_fg(&inst);
    assert_eq!(code, Some(EX_CONFIG), "start-fg: {log}");
    assert!(log.contains(&want), "{log}");
    assert!(std::net::TcpStream::connect(inst.addr()).is_err());

    let start = inst.sluice(&["start"]);
    assert_eq!(start.status.code(), Some(EX_CONFIG), "{}", stderr(&start));
    assert!(stderr(&start).contains(&want));
    // Commands that do not run the daemon still work.
    let status = inst.sluice(&["status"]);
    assert!(
        stderr(&status).contains("is not running"),
        "{}",
        stderr(&status)
    );
}

#[test]
fn syslog_name_is_a_warning_and_the_daemon_runs() {
    let mut inst = Instance::new("honest-syslog", "syslog_name = x\n");
    let want = format!(
        "sluice: warning: {}:{EXTRA_LINE}: parameter syslog_name is not implemented; it has no effect",
        inst.config_dir().join("main.cf").display()
    );
    let check = inst.sluice(&["check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stderr(&check).contains(&want), "{}", stderr(&check));
    inst.start();
    assert!(inst.log().contains(&want), "{}", inst.log());
    let mut c = inst.connect();
    assert!(c.reply().starts_with("220 "));
    c.cmd("QUIT");

    // A refused parameter added later: reload refuses and the daemon keeps
    // running on what it had.
    let main_cf = inst.config_dir().join("main.cf");
    let mut text = std::fs::read_to_string(&main_cf).unwrap();
    text.push_str("soft_bounce = yes\n");
    std::fs::write(&main_cf, text).unwrap();
    let reload = inst.sluice(&["reload"]);
    assert_eq!(reload.status.code(), Some(EX_CONFIG), "{}", stderr(&reload));
    assert!(stderr(&reload).contains("parameter soft_bounce is not implemented yet"));
    let mut c = inst.connect();
    assert!(c.reply().starts_with("220 "));
    c.cmd("QUIT");
    assert!(inst.stop().success());
}

/// The example: a submission service with TLS and SASL passed
/// `sluice check` and served plaintext. TLS and SASL are implemented now:
/// a level without a certificate is the error.
#[test]
fn submission_with_tls_and_sasl_is_refused() {
    let port = free_port();
    let inst = Instance::with_master(
        "honest-submission",
        "",
        &format!(
            "\n127.0.0.1:{port} inet n - n - - smtpd\n  -o smtpd_tls_security_level=encrypt\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_sasl_type=dovecot\n  -o smtpd_sasl_path=private/auth"
        ),
    );
    let check = inst.sluice(&["check"]);
    let err = stderr(&check);
    assert_eq!(check.status.code(), Some(EX_CONFIG), "{err}");
    assert!(
        err.contains("TLS needs a certificate: set smtpd_tls_chain_files or smtpd_tls_cert_file: smtpd_tls_security_level = encrypt"),
        "{err}"
    );
    // SMTP AUTH is implemented now (tests/smtp_auth.rs): not refused.
    assert!(!err.contains("smtpd_sasl_auth_enable"), "{err}");
    let (code, log) = start_fg(&inst);
    assert_eq!(code, Some(EX_CONFIG), "start-fg: {log}");
    assert!(std::net::TcpStream::connect(inst.addr()).is_err());
}
