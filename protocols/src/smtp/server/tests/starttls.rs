//! STARTTLS (RFC 3207): replies, EHLO keywords before and after, the
//! `encrypt` gate, the restart, and the CVE-2011-0411 injection defence.

use super::*;
use crate::envelope::Protocol;

const EHLO_TAIL: &str =
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING";

fn tls_cfg() -> ServerConfig {
    ServerConfig {
        starttls: true,
        ..cfg()
    }
}

fn encrypt_cfg() -> ServerConfig {
    ServerConfig {
        tls_required: true,
        ..tls_cfg()
    }
}

#[test]
fn ehlo_offers_starttls_only_before_tls() {
    let mut t = T::with(tls_cfg());
    let before = t.cmd("EHLO c.example");
    assert!(
        before.ends_with(&format!("250-ETRN\r\n250-STARTTLS\r\n{EHLO_TAIL}")),
        "{before}"
    );
    assert_eq!(t.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
    assert_eq!(t.last.want, Want::StartTls);
    assert!(t.s.is_tls());
    let after = t.cmd("EHLO c.example");
    assert!(!after.contains("STARTTLS"), "{after}");
    assert!(
        after.ends_with(&format!("250-ETRN\r\n{EHLO_TAIL}")),
        "{after}"
    );
    // Without a certificate nothing is offered.
    let mut t = T::new();
    assert!(!t.cmd("EHLO c.example").contains("STARTTLS"));
}

#[test]
fn starttls_replies_as_postfix() {
    let cases: &[(ServerConfig, &[&str], &str)] = &[
        (tls_cfg(), &["STARTTLS now"], "501 5.5.4 Syntax: STARTTLS"),
        (
            cfg(),
            &["STARTTLS"],
            "502 5.5.1 Error: command not implemented",
        ),
        (
            tls_cfg(),
            &["STARTTLS", "STARTTLS"],
            "554 5.5.1 Error: TLS already active",
        ),
        (tls_cfg(), &["starttls"], "220 2.0.0 Ready to start TLS"),
    ];
    for (cfg, lines, want) in cases {
        let mut t = T::with(cfg.clone());
        let mut last = String::new();
        for line in *lines {
            last = t.cmd(line);
        }
        assert_eq!(&last, want, "{lines:?}");
    }
}

#[test]
fn the_session_restarts_after_the_handshake() {
    let mut t = T::with(tls_cfg());
    t.cmd("EHLO c.example");
    assert_eq!(t.cmd("MAIL FROM:<s@a.example>"), "250 2.1.0 Ok");
    t.cmd("STARTTLS");
    // The transaction and the EHLO name are forgotten.
    assert_eq!(t.s.helo(), None);
    assert_eq!(t.s.protocol(), Protocol::Smtp);
    assert_eq!(
        t.cmd("RCPT TO:<r@b.example>"),
        "503 5.5.1 Error: need MAIL command"
    );
    t.ready();
    assert_eq!(t.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
    assert_eq!(t.send(b"hi\r\n.\r\n"), "250 2.0.0 Ok: queued as QID1");
    assert!(t
        .s
        .command_stats()
        .starts_with("ehlo=2 starttls=1 mail=2 rcpt=1/2"));
}

#[test]
fn encrypt_refuses_mail_before_tls() {
    let mut t = T::with(encrypt_cfg());
    const MUST: &str = "530 5.7.0 Must issue a STARTTLS command first";
    assert!(t.cmd("EHLO c.example").contains("250-STARTTLS"));
    for cmd in [
        "MAIL FROM:<s@a.example>",
        "RCPT TO:<r@b.example>",
        "DATA",
        "VRFY a@b",
        "ETRN x.example",
        "BDAT 0 LAST",
    ] {
        assert_eq!(t.cmd(cmd), MUST, "{cmd}");
    }
    for (cmd, want) in [("NOOP", "250 2.0.0 Ok"), ("RSET", "250 2.0.0 Ok")] {
        assert_eq!(t.cmd(cmd), want);
    }
    assert_eq!(t.s.error_count(), 6);
    t.cmd("STARTTLS");
    t.ready();
    assert_eq!(t.cmd("QUIT"), "221 2.0.0 Bye");
}

#[test]
fn plaintext_after_starttls_is_discarded_not_answered() {
    let mut t = T::with(tls_cfg());
    t.cmd("EHLO c.example");
    let input = b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x>\r\n";
    let p = t.s.receive(input, &mut t.policy);
    assert_eq!((p.consumed, p.want), (input.len(), Want::StartTls));
    assert_eq!(t.take_output(), "220 2.0.0 Ready to start TLS");
    assert_eq!(t.s.plaintext_discarded(), input.len() - 10);
    assert_eq!(t.s.improper_pipelining(), Some("STARTTLS"));
    // Until the handshake ends, nothing more is read.
    let p = t.s.receive(b"NOOP\r\n", &mut t.policy);
    assert_eq!((p.consumed, p.want), (0, Want::StartTls));
    t.s.tls_established(test_tls());
    // Inside TLS, nothing of the injected commands took effect.
    assert_eq!(
        t.cmd("RCPT TO:<r@b.example>"),
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(
        t.s.tls_info().map(|i| i.cipher.as_str()),
        Some("TLS_AES_256_GCM_SHA384")
    );
}

#[test]
fn a_clean_starttls_discards_nothing() {
    let mut t = T::with(tls_cfg());
    t.cmd("EHLO c.example");
    t.cmd("STARTTLS");
    assert_eq!(t.s.plaintext_discarded(), 0);
    assert_eq!(t.s.improper_pipelining(), None);
}

#[test]
fn tls_info_renders_as_postfix_logs_it() {
    assert_eq!(
        test_tls().to_string(),
        "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256"
    );
}
