//! Session tests: transcripts, split points, smuggling, limits, properties.
//!
//! Two drivers: [`T`] plays a conversation one line at a time
//! (`t.cmd("RCPT TO:<a@b>")` → `"250 2.1.5 Ok"`), and [`drive`] behaves
//! like the engine — a buffer, arbitrary read sizes, messages stored as
//! `QID1`, `QID2`, … — so any input can be replayed in any split.

mod adversarial;
mod auth;
mod bdat;
mod budget;
mod limits;
mod pipelining;
mod props;
mod rates;
mod smuggling;
mod splits;
mod starttls;
mod transcript;
mod units;

use std::rc::Rc;

use super::{
    Message, Policy, Progress, RateEvent, ServerConfig, Session, Want,
    SMTPD_RECIPIENT_OVERSHOOT_LIMIT,
};
use crate::smtp::reply::Reply;

/// Accepts everything except recipients at `relay.invalid`.
/// With `rate_limits` set it stands in for anvil: MAIL and RCPT wait for
/// a decision, which [`TestPolicy::answer`] gives from its own counts.
#[derive(Default)]
pub(super) struct TestPolicy {
    pub asked: Vec<(String, String)>,
    /// (smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit)
    pub rate_limits: Option<(u32, u32)>,
    /// MAIL and RCPT events counted so far.
    pub rates: (u32, u32),
}

impl TestPolicy {
    /// The owner's side of [`Want::Decide`]: count, compare, reply as
    /// Postfix's smtpd does.
    pub fn answer(&mut self, event: RateEvent) -> Result<(), Reply> {
        let (mail_limit, rcpt_limit) = self.rate_limits.unwrap_or((0, 0));
        match event {
            RateEvent::Mail => {
                self.rates.0 += 1;
                if mail_limit > 0 && self.rates.0 > mail_limit {
                    return Err(Reply::new(
                        450,
                        (4, 7, 1),
                        "Error: too much mail from 127.0.0.5",
                    ));
                }
            }
            RateEvent::Rcpt => {
                self.rates.1 += 1;
                if rcpt_limit > 0 && self.rates.1 > rcpt_limit {
                    return Err(Reply::new(
                        450,
                        (4, 7, 1),
                        "Error: too many recipients from 127.0.0.5",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Policy for TestPolicy {
    fn check_recipient(&mut self, sender: &str, recipient: &str) -> Result<(), Reply> {
        self.asked.push((sender.to_owned(), recipient.to_owned()));
        if recipient.ends_with("@relay.invalid") {
            return Err(Reply::new(
                554,
                (5, 7, 1),
                format!("<{recipient}>: Relay access denied"),
            ));
        }
        Ok(())
    }

    fn rate_limited(&mut self, _event: RateEvent) -> bool {
        self.rate_limits.is_some()
    }
}

/// The test's password backend: jane/secret logs in, user `down` finds
/// the backend unavailable, everything else fails.
pub(super) fn verify(r: &super::AuthRequest) -> super::AuthVerdict {
    use super::AuthVerdict;
    match (r.username.as_str(), r.password.as_str()) {
        ("jane", "secret") if r.authzid.is_empty() || r.authzid == "jane" => AuthVerdict::Ok {
            username: "jane".into(),
        },
        ("down", _) => AuthVerdict::Temp {
            reason: "backend unavailable".into(),
        },
        _ => AuthVerdict::Fail {
            reason: "bad password".into(),
        },
    }
}

/// What a test "handshake" negotiates.
pub(super) fn test_tls() -> super::TlsInfo {
    super::TlsInfo {
        protocol: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
        bits: 256,
        key_exchange: Some("X25519".into()),
        server_signature: Some("ECDSA (P-256)".into()),
        server_digest: Some("SHA256".into()),
    }
}

pub(super) fn cfg() -> ServerConfig {
    ServerConfig::for_tests("mx.example")
}

/// A conversation, one command at a time.
pub(super) struct T {
    pub s: Session,
    pub policy: TestPolicy,
    pub messages: Vec<Message>,
    pub last: Progress,
    /// Queue IDs handed out so far.
    qid: u32,
}

impl T {
    /// Greeted, with the greeting already read.
    pub fn new() -> T {
        T::with(cfg())
    }

    pub fn with(cfg: ServerConfig) -> T {
        T::with_budget(cfg, super::Budget::unlimited())
    }

    /// A session whose content is reserved on `budget`.
    pub fn with_budget(cfg: ServerConfig, budget: super::Budget) -> T {
        let mut s = Session::with_budget(Rc::new(cfg), budget);
        s.greet();
        s.output().clear();
        T {
            s,
            policy: TestPolicy::default(),
            messages: Vec::new(),
            last: Progress {
                consumed: 0,
                want: Want::More,
            },
            qid: 0,
        }
    }

    /// Sends raw bytes (which must be consumed entirely, unless the session
    /// closes) and returns the replies, without the final CRLF. A finished
    /// message is stored and acknowledged as `QIDn`.
    pub fn send(&mut self, bytes: &[u8]) -> String {
        let mut rest = bytes;
        loop {
            let p = self.s.receive(rest, &mut self.policy);
            assert!(p.consumed <= rest.len());
            rest = &rest[p.consumed..];
            self.last = p;
            match p.want {
                Want::Message => {
                    let m = self
                        .s
                        .take_message()
                        .expect("a message after Want::Message");
                    self.messages.push(m);
                    self.qid += 1;
                    let qid = format!("QID{}", self.qid);
                    self.s.message_done(Ok(&qid));
                }
                Want::More => {
                    assert!(rest.is_empty(), "unconsumed input: {rest:?}");
                    break;
                }
                Want::Decide(event) => {
                    let answer = self.policy.answer(event);
                    self.s.decide(answer);
                }
                Want::Authenticate => {
                    let request = self.s.take_auth_request().expect("a request");
                    self.s.auth_done(verify(&request));
                }
                Want::Close => break,
                // The handshake "succeeds"; the rest was discarded.
                Want::StartTls => {
                    self.s.tls_established(test_tls());
                    break;
                }
            }
        }
        self.take_output()
    }

    /// One command line (CRLF added).
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes())
    }

    pub fn take_output(&mut self) -> String {
        let out = std::mem::take(self.s.output());
        let text = String::from_utf8(out).expect("replies are UTF-8");
        text.strip_suffix("\r\n").unwrap_or(&text).to_owned()
    }

    /// EHLO, MAIL, RCPT: ready for DATA/BDAT.
    pub fn ready(&mut self) {
        assert!(self
            .cmd("EHLO client.example")
            .starts_with("250-mx.example"));
        assert_eq!(self.cmd("MAIL FROM:<s@a.example>"), "250 2.1.0 Ok");
        assert_eq!(self.cmd("RCPT TO:<r@b.example>"), "250 2.1.5 Ok");
    }
}

/// What a whole session produced.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    pub output: String,
    pub messages: Vec<Message>,
    pub closed: bool,
    /// Input bytes the session never consumed.
    pub leftover: usize,
}

/// Plays `reads` like the engine does: greet, then append each read to a
/// buffer and call `receive` until it wants more. Checks the buffer bound
/// for command lines on the way.
pub(super) fn drive(cfg: ServerConfig, reads: &[&[u8]]) -> Outcome {
    drive_with(cfg, TestPolicy::default(), reads)
}

/// [`drive`] with a given policy (rate limits).
pub(super) fn drive_with(cfg: ServerConfig, mut policy: TestPolicy, reads: &[&[u8]]) -> Outcome {
    let bound = cfg.line_length_limit + 2;
    let mut s = Session::new(Rc::new(cfg));
    s.greet();
    let mut buf: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    let mut closed = false;
    let mut qid = 0;
    let mut consumed = 0;
    'reads: for read in reads {
        buf.extend_from_slice(read);
        loop {
            let p = s.receive(&buf, &mut policy);
            assert!(p.consumed <= buf.len());
            buf.drain(..p.consumed);
            consumed += p.consumed;
            match p.want {
                Want::Message => {
                    if let Some(m) = s.take_message() {
                        messages.push(m);
                    }
                    qid += 1;
                    s.message_done(Ok(&format!("QID{qid}")));
                }
                Want::Decide(event) => {
                    let answer = policy.answer(event);
                    s.decide(answer);
                }
                Want::Authenticate => {
                    let request = s.take_auth_request().expect("a request");
                    s.auth_done(verify(&request));
                }
                Want::More => {
                    // Only an unfinished command line may be left over.
                    assert!(buf.len() <= bound, "caller must buffer {} bytes", buf.len());
                    break;
                }
                Want::Close => {
                    closed = true;
                    break 'reads;
                }
                Want::StartTls => {
                    s.tls_established(test_tls());
                    break;
                }
            }
        }
    }
    let output = String::from_utf8_lossy(s.output()).into_owned();
    Outcome {
        output,
        messages,
        closed,
        leftover: reads.iter().map(|r| r.len()).sum::<usize>() - consumed,
    }
}

/// The config for split tests: pipelining detection depends on how input
/// is split into reads, so it is tested separately.
pub(super) fn split_cfg() -> ServerConfig {
    ServerConfig {
        forbid_unauth_pipelining: false,
        ..cfg()
    }
}
