//! The smtp client's TLS policy (Postfix's `smtp_tls_policy.c`): the
//! security level for a destination, and the decisions the client takes at
//! each step of STARTTLS — a pure function of the level and what happened,
//! so that every combination is tested without a socket.

use std::fmt;

/// `smtp_tls_security_level` and the level of a policy table entry.
/// DANE, `fingerprint` and the other levels are not implemented (refused
/// at load).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsLevel {
    /// No TLS.
    None,
    /// Opportunistic: TLS when offered, the certificate not checked,
    /// plaintext otherwise.
    May,
    /// Mandatory TLS, no certificate check.
    Encrypt,
    /// Mandatory TLS, the certificate checked against the trust roots and
    /// `smtp_tls_verify_cert_match` (the MX host name by default).
    Verify,
    /// Mandatory TLS, the certificate checked against the trust roots and
    /// `smtp_tls_secure_cert_match` (the nexthop domain and its
    /// subdomains by default).
    Secure,
}

impl TlsLevel {
    /// Reads a level as Postfix spells it; `None` for anything else.
    pub fn parse(text: &str) -> Option<TlsLevel> {
        Some(match text.to_ascii_lowercase().as_str() {
            "none" => TlsLevel::None,
            "may" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            "verify" => TlsLevel::Verify,
            "secure" => TlsLevel::Secure,
            _ => return None,
        })
    }

    /// Whether TLS is mandatory (Postfix's `TLS_REQUIRED()`).
    pub fn is_required(self) -> bool {
        self >= TlsLevel::Encrypt
    }

    /// Whether the certificate must be verified (`TLS_MUST_MATCH()`).
    pub fn must_verify(self) -> bool {
        self >= TlsLevel::Verify
    }
}

impl fmt::Display for TlsLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsLevel::None => "none",
            TlsLevel::May => "may",
            TlsLevel::Encrypt => "encrypt",
            TlsLevel::Verify => "verify",
            TlsLevel::Secure => "secure",
        })
    }
}

/// The TLS protocol versions rustls speaks, as a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocols {
    pub tls12: bool,
    pub tls13: bool,
}

impl Protocols {
    pub const ALL: Protocols = Protocols {
        tls12: true,
        tls13: true,
    };

    /// Reads Postfix's protocol syntax (`smtp_tls_protocols`,
    /// `smtp_tls_mandatory_protocols`, a policy's `protocols=`): either
    /// `>=TLSv1.2` / `<=TLSv1.3` bounds, or a list of `!`-excluded or
    /// included names, separated by spaces, commas or colons. SSLv2,
    /// SSLv3, TLSv1 and TLSv1.1 are known names that rustls never speaks.
    pub fn parse(text: &str) -> Result<Protocols, String> {
        const NAMES: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
        let rank = |name: &str| NAMES.iter().position(|n| n.eq_ignore_ascii_case(name));
        let (mut lo, mut hi) = (0usize, NAMES.len() - 1);
        let mut included: Option<Vec<usize>> = None;
        let mut excluded = Vec::new();
        for word in text.split([' ', ',', ':', '\t']).filter(|w| !w.is_empty()) {
            let bad = || format!("unknown TLS protocol {word:?} in {text:?}");
            if let Some(v) = word.strip_prefix(">=") {
                lo = lo.max(rank(v).ok_or_else(bad)?);
            } else if let Some(v) = word.strip_prefix("<=") {
                hi = hi.min(rank(v).ok_or_else(bad)?);
            } else if let Some(v) = word.strip_prefix('!') {
                excluded.push(rank(v).ok_or_else(bad)?);
            } else {
                included
                    .get_or_insert_with(Vec::new)
                    .push(rank(word).ok_or_else(bad)?);
            }
        }
        let on = |r: usize| {
            r >= lo
                && r <= hi
                && !excluded.contains(&r)
                && included.as_ref().is_none_or(|i| i.contains(&r))
        };
        let p = Protocols {
            tls12: on(4),
            tls13: on(5),
        };
        if !p.tls12 && !p.tls13 {
            return Err(format!(
                "{text:?} leaves no TLS protocol Sluice speaks (TLSv1.2, TLSv1.3)"
            ));
        }
        Ok(p)
    }
}

/// The TLS policy for one destination: its level, and the attributes a
/// policy table entry may carry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsPolicy {
    pub level: TlsLevel,
    /// `match=` (colon-separated), replacing smtp_tls_verify_cert_match /
    /// smtp_tls_secure_cert_match for this destination.
    pub matches: Option<Vec<String>>,
    /// `protocols=`, replacing smtp_tls_(mandatory_)protocols.
    pub protocols: Option<Protocols>,
}

impl TlsPolicy {
    pub fn level(level: TlsLevel) -> TlsPolicy {
        TlsPolicy {
            level,
            matches: None,
            protocols: None,
        }
    }

    /// Reads the value of an `smtp_tls_policy_maps` entry:
    /// `level [name=value ...]`. Attributes Sluice does not implement
    /// (`ciphers=`, `exclude=`, `tafile=`, …) are an error, never ignored.
    pub fn parse(text: &str) -> Result<TlsPolicy, String> {
        let mut words = text.split_whitespace();
        let level_word = words.next().ok_or("empty TLS policy")?;
        let level = TlsLevel::parse(level_word).ok_or_else(|| {
            format!(
                "TLS level {level_word:?} is not implemented (none, may, encrypt, verify, secure)"
            )
        })?;
        let mut policy = TlsPolicy::level(level);
        for word in words {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| format!("malformed TLS policy attribute {word:?}"))?;
            match name.to_ascii_lowercase().as_str() {
                "match" => {
                    policy.matches = Some(value.split(':').map(str::to_string).collect());
                }
                "protocols" => policy.protocols = Some(Protocols::parse(value)?),
                _ => {
                    return Err(format!(
                        "TLS policy attribute {name:?} is not implemented (match=, protocols=)"
                    ))
                }
            }
        }
        Ok(policy)
    }
}

/// The keys `smtp_tls_policy_maps` is searched with for a nexthop, in
/// order (Postfix's `tls_policy_lookup()`): the nexthop as written in the
/// transport (`[mx.example.net]:25`, `example.com`); then, for a domain
/// that is looked up in DNS, the bare domain without a port and each of
/// its parent domains with a leading dot (`.example.com`).
pub fn policy_lookup_keys(nexthop: &str) -> Vec<String> {
    let mut keys = vec![nexthop.to_string()];
    if nexthop.starts_with('[') {
        return keys;
    }
    let domain = match nexthop.rsplit_once(':') {
        Some((d, port)) if port.bytes().all(|b| b.is_ascii_digit()) => d,
        _ => nexthop,
    };
    if domain != nexthop {
        keys.push(domain.to_string());
    }
    let mut rest = domain;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.is_empty() {
            break;
        }
        keys.push(format!(".{parent}"));
        rest = parent;
    }
    keys
}

/// What happened at one step of the TLS negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsEvent {
    /// The EHLO reply did (or did not) offer STARTTLS.
    Ehlo { offered: bool },
    /// The reply to STARTTLS was (not) 2xx.
    StartTlsReply { positive: bool },
    /// The handshake ended.
    Handshake(Handshake),
}

/// How a TLS handshake ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    Done,
    /// It failed (protocol error, lost connection, timeout) before a
    /// certificate was judged.
    Failed,
    /// The certificate was not trusted or did not match.
    NotVerified,
}

/// What the client does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAction {
    /// Go on in plaintext on this connection.
    Plaintext,
    /// Send STARTTLS.
    StartTls,
    /// Do the handshake.
    Handshake,
    /// TLS is up: EHLO again and go on.
    Encrypted,
    /// Drop this connection and connect again to the same server without
    /// TLS (Postfix's `RETRY_AS_PLAINTEXT` at level `may`).
    RetryPlaintext,
    /// Give up on this server: the destination is deferred with the reason.
    Defer(TlsFailure),
}

/// Why mandatory TLS failed, in Postfix's words (see [`TlsFailure::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFailure {
    NotOffered,
    Refused,
    HandshakeFailed,
    NotVerified,
}

impl TlsFailure {
    /// Postfix's reason text (smtp_proto.c); `namaddr` is `host[addr]`,
    /// `reply` the server's reply to STARTTLS when it refused.
    pub fn reason(self, namaddr: &str, reply: &str) -> String {
        match self {
            TlsFailure::NotOffered => {
                format!("TLS is required, but was not offered by host {namaddr}")
            }
            TlsFailure::Refused => {
                format!("TLS is required, but host {namaddr} refused to start TLS: {reply}")
            }
            TlsFailure::HandshakeFailed => "Cannot start TLS: handshake failure".to_string(),
            TlsFailure::NotVerified => "Server certificate not verified".to_string(),
        }
    }

    /// The enhanced status code Postfix gives it.
    pub fn dsn(self) -> (u8, u16, u16) {
        match self {
            TlsFailure::NotOffered | TlsFailure::Refused => (4, 7, 4),
            TlsFailure::HandshakeFailed | TlsFailure::NotVerified => (4, 7, 5),
        }
    }
}

/// The decision at each step, Postfix's `smtp_helo()` / `smtp_start_tls()`.
/// At level `none` nothing is ever tried. At `may`, a server that does not
/// offer STARTTLS or refuses it is talked to in plaintext, and a failed
/// handshake is retried in plaintext on a new connection (the certificate
/// is never judged at `may`). From `encrypt` up, each failure defers.
pub fn decide(level: TlsLevel, event: TlsEvent) -> TlsAction {
    use TlsAction as A;
    if level == TlsLevel::None {
        return A::Plaintext;
    }
    let required = level.is_required();
    match event {
        TlsEvent::Ehlo { offered: true } => A::StartTls,
        TlsEvent::Ehlo { offered: false } if required => A::Defer(TlsFailure::NotOffered),
        TlsEvent::Ehlo { offered: false } => A::Plaintext,
        TlsEvent::StartTlsReply { positive: true } => A::Handshake,
        TlsEvent::StartTlsReply { positive: false } if required => A::Defer(TlsFailure::Refused),
        TlsEvent::StartTlsReply { positive: false } => A::Plaintext,
        TlsEvent::Handshake(Handshake::Done) => A::Encrypted,
        TlsEvent::Handshake(_) if !required => A::RetryPlaintext,
        TlsEvent::Handshake(Handshake::NotVerified) if level.must_verify() => {
            A::Defer(TlsFailure::NotVerified)
        }
        TlsEvent::Handshake(_) => A::Defer(TlsFailure::HandshakeFailed),
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
