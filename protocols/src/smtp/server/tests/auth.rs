//! SMTP AUTH transcripts: PLAIN and LOGIN, with Postfix's replies.

use super::*;
use crate::smtp::server::{AuthVerdict, Mechanism};

fn auth_cfg() -> ServerConfig {
    ServerConfig {
        sasl_auth_enable: true,
        ..cfg()
    }
}

fn rows(t: &mut T, rows: &[(&str, &str)]) {
    for (cmd, want) in rows {
        assert_eq!(t.cmd(cmd), *want, "after {cmd:?}");
    }
}

#[test]
fn ehlo_offers_auth_after_etrn_when_enabled() {
    let mut t = T::with(auth_cfg());
    let reply = t.cmd("EHLO c.example");
    assert!(
        reply.contains("250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES"),
        "{reply}"
    );
    let mut t = T::new();
    assert!(!t.cmd("EHLO c.example").contains("AUTH"));
}

#[test]
fn plain_with_initial_response() {
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            (
                "AUTH PLAIN AGphbmUAc2VjcmV0",
                "235 2.7.0 Authentication successful",
            ),
            (
                "AUTH PLAIN AGphbmUAc2VjcmV0",
                "503 5.5.1 Error: already authenticated",
            ),
        ],
    );
    let login = t.s.sasl_login().expect("logged in");
    assert_eq!(
        (login.method, login.username.as_str()),
        (Mechanism::Plain, "jane")
    );
    assert_eq!(t.s.command_stats(), "ehlo=1 auth=1/2 commands=2/3");
}

#[test]
fn plain_after_empty_challenge_and_wrong_password() {
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            ("AUTH PLAIN", "334 "),
            (
                "AGphbmUAd3Jvbmc=",
                "535 5.7.8 Error: authentication failed: bad password",
            ),
            ("AUTH PLAIN", "334 "),
            ("AGphbmUAc2VjcmV0", "235 2.7.0 Authentication successful"),
        ],
    );
    assert_eq!(t.s.error_count(), 1);
    assert_eq!(t.s.command_stats(), "ehlo=1 auth=1/2 commands=2/3");
}

#[test]
fn login_exchange() {
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            ("auth login", "334 VXNlcm5hbWU6"),
            ("amFuZQ==", "334 UGFzc3dvcmQ6"),
            ("c2VjcmV0", "235 2.7.0 Authentication successful"),
        ],
    );
    assert_eq!(t.s.sasl_login().map(|l| l.method), Some(Mechanism::Login));
    // LOGIN with the user name as initial response.
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            ("AUTH LOGIN amFuZQ==", "334 UGFzc3dvcmQ6"),
            (
                "d3Jvbmc=",
                "535 5.7.8 Error: authentication failed: bad password",
            ),
        ],
    );
    assert!(t.s.sasl_login().is_none());
}

#[test]
fn cancel_and_bad_base64() {
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
            ("*", "501 5.7.0 Authentication aborted"),
            ("AUTH PLAIN *", "501 5.7.0 Authentication aborted"),
            (
                "AUTH PLAIN !!!notbase64",
                "501 5.5.2 Cannot decode response",
            ),
            ("AUTH LOGIN", "334 VXNlcm5hbWU6"),
            ("@@@", "501 5.5.2 Cannot decode response"),
            // Not three NUL-separated fields.
            (
                "AUTH PLAIN amFuZQ==",
                "535 5.7.8 Error: authentication failed: Invalid authentication data",
            ),
            (
                "AUTH PLAIN AGphbmUAc2VjcmV0AHg=",
                "535 5.7.8 Error: authentication failed: Invalid authentication data",
            ),
            (
                "AUTH CRAM-MD5",
                "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
            ),
            ("AUTH", "501 5.5.4 Syntax: AUTH mechanism"),
            ("AUTH PLAIN a b", "501 5.5.4 Syntax: AUTH mechanism"),
        ],
    );
    assert_eq!(t.s.take_auth_aborted(), Some(Mechanism::Plain));
    assert_eq!(t.s.error_count(), 9);
}

#[test]
fn authzid_other_than_user_is_the_backends_call() {
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("AUTH PLAIN Ym9iAGphbmUAc2VjcmV0"),
        "535 5.7.8 Error: authentication failed: bad password"
    );
}

#[test]
fn temporary_backend_failure_is_454() {
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("AUTH PLAIN AGRvd24AeA=="),
        "454 4.7.0 Temporary authentication failure: backend unavailable"
    );
    assert!(t.s.sasl_login().is_none());
}

#[test]
fn not_enabled_in_transaction_and_before_tls() {
    let mut t = T::new();
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "503 5.5.1 Error: authentication not enabled"
    );
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            ("MAIL FROM:<s@a.example>", "250 2.1.0 Ok"),
            (
                "AUTH PLAIN AGphbmUAc2VjcmV0",
                "503 5.5.1 Error: MAIL transaction in progress",
            ),
        ],
    );
    // smtpd_tls_auth_only = yes: not offered, refused, until TLS is on.
    let mut t = T::with(ServerConfig {
        tls_auth_only: true,
        starttls: true,
        ..auth_cfg()
    });
    assert!(!t.cmd("EHLO c.example").contains("AUTH"));
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "504 5.5.4 Encryption required for requested authentication mechanism"
    );
    assert_eq!(t.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
    assert!(t.s.is_tls());
    assert!(t.cmd("EHLO c.example").contains("250-AUTH PLAIN LOGIN"));
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "235 2.7.0 Authentication successful"
    );
}

#[test]
fn failures_count_toward_the_error_limits() {
    let mut t = T::with(ServerConfig {
        hard_error_limit: 3,
        soft_error_limit: 2,
        ..auth_cfg()
    });
    t.cmd("EHLO c.example");
    assert!(t
        .cmd("AUTH PLAIN AGphbmUAd3Jvbmc=")
        .starts_with("535 5.7.8"));
    assert_eq!(t.s.reply_delay(), None);
    assert!(t
        .cmd("AUTH PLAIN AGphbmUAd3Jvbmc=")
        .starts_with("535 5.7.8"));
    assert_eq!(t.s.reply_delay(), Some(std::time::Duration::from_secs(1)));
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAd3Jvbmc="),
        "535 5.7.8 Error: authentication failed: bad password\r\n421 4.7.0 mx.example Error: too many errors"
    );
    assert!(t.s.is_closed());
}

#[test]
fn input_waits_for_the_verdict() {
    let mut s = Session::new(Rc::new(split_cfg_auth()));
    s.greet();
    let input = b"EHLO c\r\nAUTH PLAIN AGphbmUAc2VjcmV0\r\nMAIL FROM:<a@b>\r\n";
    let mut policy = TestPolicy::default();
    let p = s.receive(input, &mut policy);
    let auth_end = input.len() - b"MAIL FROM:<a@b>\r\n".len();
    assert_eq!((p.consumed, p.want), (auth_end, Want::Authenticate));
    // Until the owner answers, nothing more is read.
    let again = s.receive(&input[auth_end..], &mut policy);
    assert_eq!((again.consumed, again.want), (0, Want::Authenticate));
    let request = s.take_auth_request().expect("request");
    assert!(!format!("{request:?}").contains("secret"));
    assert_eq!(s.take_auth_request(), None);
    s.auth_done(AuthVerdict::Ok {
        username: "jane".into(),
    });
    let p = s.receive(&input[auth_end..], &mut policy);
    assert_eq!(p.want, Want::More);
    let out = String::from_utf8_lossy(s.output()).into_owned();
    assert!(
        out.ends_with("235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n"),
        "{out}"
    );
}

#[test]
fn mail_auth_parameter() {
    let mut t = T::new();
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("MAIL FROM:<s@a.example> AUTH=<>"),
        "503 5.5.4 Error: authentication disabled"
    );
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    rows(
        &mut t,
        &[
            (
                "MAIL FROM:<s@a.example> AUTH=s+40a.example SIZE=10",
                "250 2.1.0 Ok",
            ),
            ("RSET", "250 2.0.0 Ok"),
            (
                "MAIL FROM:<s@a.example> AUTH=a AUTH=b",
                "503 5.5.4 Error: multiple AUTH= options",
            ),
            ("MAIL FROM:<s@a.example> AUTH=<>", "250 2.1.0 Ok"),
        ],
    );
    assert_eq!(t.s.sasl_sender(), None);
    let mut t = T::with(auth_cfg());
    t.cmd("EHLO c.example");
    t.cmd("MAIL FROM:<s@a.example> AUTH=s+40a.example");
    assert_eq!(t.s.sasl_sender(), Some("s@a.example"));
}

#[test]
fn auth_in_every_split() {
    let input: &[u8] =
        b"EHLO c\r\nAUTH LOGIN\r\namFuZQ==\r\nc2VjcmV0\r\nMAIL FROM:<a@b>\r\nQUIT\r\n";
    let whole = drive(split_cfg_auth(), &[input]);
    assert!(whole.output.contains("235 2.7.0"), "{}", whole.output);
    for cut in 1..input.len() {
        let split = drive(split_cfg_auth(), &[&input[..cut], &input[cut..]]);
        assert_eq!(split, whole, "split at {cut}");
    }
}

fn split_cfg_auth() -> ServerConfig {
    ServerConfig {
        sasl_auth_enable: true,
        ..split_cfg()
    }
}

#[test]
fn tls_start_forgets_a_plaintext_login() {
    let mut t = T::with(ServerConfig {
        starttls: true,
        ..auth_cfg()
    });
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "235 2.7.0 Authentication successful"
    );
    assert!(t.s.sasl_login().is_some());
    assert_eq!(t.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
    assert!(t.s.sasl_login().is_none());
    assert!(t.s.is_tls());
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "235 2.7.0 Authentication successful"
    );
}

/// Postfix's EHLO order: STARTTLS, then AUTH; with
/// `smtpd_tls_security_level = encrypt` (and `smtpd_tls_auth_only = no`)
/// AUTH is offered in clear as Postfix does, but the command is refused
/// like every non-PRE_TLS command until TLS is on.
#[test]
fn encrypt_refuses_auth_before_tls() {
    let mut t = T::with(ServerConfig {
        starttls: true,
        tls_required: true,
        ..auth_cfg()
    });
    let ehlo = t.cmd("EHLO c.example");
    assert!(
        ehlo.contains("250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n"),
        "{ehlo}"
    );
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "530 5.7.0 Must issue a STARTTLS command first"
    );
    assert!(t.s.sasl_login().is_none());
    assert_eq!(t.s.error_count(), 1);
    t.cmd("STARTTLS");
    t.cmd("EHLO c.example");
    assert_eq!(
        t.cmd("AUTH PLAIN AGphbmUAc2VjcmV0"),
        "235 2.7.0 Authentication successful"
    );
    assert!(t
        .s
        .command_stats()
        .starts_with("ehlo=2 starttls=1 auth=1/2"));
}
