use super::*;

use Handshake::{Done, Failed, NotVerified};
use TlsAction as A;
use TlsLevel::{Encrypt, May, None as Off, Secure, Verify};

#[test]
fn every_level_and_event_has_postfixs_decision() {
    let ehlo = |offered| TlsEvent::Ehlo { offered };
    let reply = |positive| TlsEvent::StartTlsReply { positive };
    let hs = TlsEvent::Handshake;
    #[rustfmt::skip]
    let table: &[(TlsLevel, TlsEvent, TlsAction)] = &[
        (Off, ehlo(true), A::Plaintext),
        (Off, ehlo(false), A::Plaintext),
        (May, ehlo(true), A::StartTls),
        (May, ehlo(false), A::Plaintext),
        (May, reply(true), A::Handshake),
        (May, reply(false), A::Plaintext),
        (May, hs(Done), A::Encrypted),
        (May, hs(Failed), A::RetryPlaintext),
        (May, hs(NotVerified), A::RetryPlaintext),
        (Encrypt, ehlo(true), A::StartTls),
        (Encrypt, ehlo(false), A::Defer(TlsFailure::NotOffered)),
        (Encrypt, reply(false), A::Defer(TlsFailure::Refused)),
        (Encrypt, hs(Done), A::Encrypted),
        (Encrypt, hs(Failed), A::Defer(TlsFailure::HandshakeFailed)),
        (Verify, ehlo(false), A::Defer(TlsFailure::NotOffered)),
        (Verify, hs(Done), A::Encrypted),
        (Verify, hs(Failed), A::Defer(TlsFailure::HandshakeFailed)),
        (Verify, hs(NotVerified), A::Defer(TlsFailure::NotVerified)),
        (Secure, hs(NotVerified), A::Defer(TlsFailure::NotVerified)),
        (Secure, reply(true), A::Handshake),
    ];
    for &(level, event, want) in table {
        assert_eq!(decide(level, event), want, "{level} {event:?}");
    }
}

#[test]
fn reasons_are_postfixs() {
    assert_eq!(
        TlsFailure::NotOffered.reason("mx.example[192.0.2.1]", ""),
        "TLS is required, but was not offered by host mx.example[192.0.2.1]"
    );
    assert_eq!(
        TlsFailure::NotVerified.reason("x", ""),
        "Server certificate not verified"
    );
    assert_eq!(TlsFailure::NotOffered.dsn(), (4, 7, 4));
    assert_eq!(TlsFailure::HandshakeFailed.dsn(), (4, 7, 5));
}

#[test]
fn levels_parse_as_postfix_spells_them() {
    assert_eq!(TlsLevel::parse("MAY"), Some(May));
    assert_eq!(TlsLevel::parse("secure"), Some(Secure));
    assert_eq!(TlsLevel::parse("dane"), None);
    assert_eq!(TlsLevel::parse("fingerprint"), None);
}

#[test]
fn protocols_in_postfix_syntax() {
    let both = Protocols::ALL;
    let only13 = Protocols {
        tls12: false,
        tls13: true,
    };
    let only12 = Protocols {
        tls12: true,
        tls13: false,
    };
    assert_eq!(Protocols::parse(">=TLSv1"), Ok(both));
    assert_eq!(Protocols::parse(""), Ok(both));
    assert_eq!(Protocols::parse(">=TLSv1.3"), Ok(only13));
    assert_eq!(Protocols::parse("<=TLSv1.2"), Ok(only12));
    assert_eq!(Protocols::parse("!SSLv2, !SSLv3, !TLSv1.2"), Ok(only13));
    assert_eq!(Protocols::parse("TLSv1.2:TLSv1.1"), Ok(only12));
    assert!(Protocols::parse("<=TLSv1.1").is_err());
    assert!(Protocols::parse(">=TLSv9").is_err());
}

#[test]
fn policy_entries_and_their_attributes() {
    let p =
        TlsPolicy::parse("verify match=mx.example.net:example.net protocols=>=TLSv1.3").unwrap();
    assert_eq!(p.level, Verify);
    assert_eq!(
        p.matches,
        Some(vec![
            "mx.example.net".to_string(),
            "example.net".to_string()
        ])
    );
    assert!(!p.protocols.unwrap().tls12);
    assert_eq!(TlsPolicy::parse("encrypt"), Ok(TlsPolicy::level(Encrypt)));
    assert!(TlsPolicy::parse("encrypt ciphers=high").is_err());
    assert!(TlsPolicy::parse("dane").is_err());
    assert!(TlsPolicy::parse("").is_err());
}

#[test]
fn lookup_keys_follow_postfix() {
    assert_eq!(
        policy_lookup_keys("[mx.example.net]:25"),
        ["[mx.example.net]:25"]
    );
    assert_eq!(
        policy_lookup_keys("mail.example.com"),
        ["mail.example.com", ".example.com", ".com"]
    );
    assert_eq!(
        policy_lookup_keys("example.com:587"),
        ["example.com:587", "example.com", ".com"]
    );
}
