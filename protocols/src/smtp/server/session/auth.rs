//! AUTH (RFC 4954) in the SMTP server session: the PLAIN and LOGIN
//! mechanisms, as Postfix's smtpd offers them with `smtpd_sasl_auth_enable`.
//!
//! **Role.** Reads the AUTH command and the client's base64 responses,
//! and turns them into one [`AuthRequest`] (who, with what password) for
//! the owner to verify; the owner answers with an [`AuthVerdict`] through
//! [`Session::auth_done`]. The session never sees a password database and
//! never verifies anything itself: that is CPU-heavy (argon2,
//! sha512-crypt) or I/O (Dovecot), so it is the owner's, off the shard.
//!
//! **Trust.** Everything here is the client's. Responses are bounded by
//! `line_length_limit` like any command line; a password lives in the
//! request only until the owner takes it, and is never printed (`Debug`
//! hides it).
//!
//! **Replies** (Postfix's `smtpd_sasl_proto.c` / `smtpd_sasl_glue.c`):
//! `503 5.5.1 Error: authentication not enabled`, `504 5.5.4 Encryption
//! required for requested authentication mechanism` (AUTH before TLS with
//! `smtpd_tls_auth_only = yes`), `503 5.5.1 Error: already authenticated`,
//! `503 5.5.1 Error: MAIL transaction in progress`, `501 5.5.4 Syntax: AUTH
//! mechanism`, `501 5.7.0 Authentication aborted` (`*`), `501 5.5.2 Cannot
//! decode response`, `235 2.7.0 Authentication successful`, `535 5.7.8
//! Error: authentication failed: <reason>` and `454 4.7.0 Temporary
//! authentication failure: <reason>` (backend down: RFC 4954 §6's code,
//! and Postfix's). Every refusal and failure counts toward
//! `smtpd_soft_error_limit`/`smtpd_hard_error_limit`, so a password
//! guesser is slowed by `smtpd_error_sleep_time` and then disconnected.
//!
//! MAIL FROM's `AUTH=` parameter (RFC 4954 §5) is taken as Postfix takes
//! it: refused with `503 5.5.4 Error: authentication disabled` when AUTH is
//! off, once per MAIL, and otherwise only logged (`sasl_sender=`).

use std::fmt;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::super::command::{Token, Verb};
use super::super::params::{printable, xtext_decode};
use super::{Outcome, Session, Writer};

/// The SASL mechanisms Sluice's server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// The name as in EHLO and in `sasl_method=`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    fn parse(word: &[u8]) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::Login]
            .into_iter()
            .find(|m| word.eq_ignore_ascii_case(m.name().as_bytes()))
    }
}

/// One login to verify: what the client sent, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub mechanism: Mechanism,
    /// PLAIN's authorization identity (empty: the same as `username`).
    pub authzid: String,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("mechanism", &self.mechanism)
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// The owner's answer to an [`AuthRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVerdict {
    /// The login is good; `username` is the name to log and to match in
    /// `smtpd_sender_login_maps` (a backend may canonicalise it).
    Ok { username: String },
    /// Wrong name or password: `535 5.7.8 Error: authentication failed: reason`.
    Fail { reason: String },
    /// The backend could not decide (password file unreadable, Dovecot
    /// down): `454 4.7.0 Temporary authentication failure: reason`.
    Temp { reason: String },
}

/// A successful login, for restrictions, logs and Received:.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslLogin {
    pub method: Mechanism,
    pub username: String,
}

/// What the client's next line is, inside an AUTH exchange.
#[derive(Clone, Debug)]
enum Exchange {
    /// PLAIN without an initial response: `334 ` was sent.
    PlainResponse,
    /// LOGIN: `334 VXNlcm5hbWU6` ("Username:") was sent.
    LoginUser,
    /// LOGIN: `334 UGFzc3dvcmQ6` ("Password:") was sent.
    LoginPass { username: String },
}

/// The session's AUTH state (one field of [`Session`]).
#[derive(Clone, Debug, Default)]
pub(super) struct AuthState {
    login: Option<SaslLogin>,
    exchange: Option<(Mechanism, Exchange)>,
    /// A request out with the owner; no input is read until it answers.
    pending: Option<AuthRequest>,
    /// The request was taken by the owner and not answered yet.
    asked: Option<Mechanism>,
    /// An exchange the client cancelled with `*`, for the owner's log.
    aborted: Option<Mechanism>,
    /// MAIL FROM's `AUTH=` value of the current transaction.
    mail_sender: Option<String>,
}

const USERNAME_CHALLENGE: &[u8] = b"334 VXNlcm5hbWU6\r\n";
const PASSWORD_CHALLENGE: &[u8] = b"334 UGFzc3dvcmQ6\r\n";
const NOT_ENABLED: &[u8] = b"503 5.5.1 Error: authentication not enabled\r\n";
const NEED_TLS: &[u8] = b"504 5.5.4 Encryption required for requested authentication mechanism\r\n";
const ALREADY: &[u8] = b"503 5.5.1 Error: already authenticated\r\n";
const IN_TRANSACTION: &[u8] = b"503 5.5.1 Error: MAIL transaction in progress\r\n";
const SYNTAX: &[u8] = b"501 5.5.4 Syntax: AUTH mechanism\r\n";
const ABORTED: &[u8] = b"501 5.7.0 Authentication aborted\r\n";
const CANNOT_DECODE: &[u8] = b"501 5.5.2 Cannot decode response\r\n";
const SUCCESS: &[u8] = b"235 2.7.0 Authentication successful\r\n";
const MAIL_AUTH_DISABLED: &[u8] = b"503 5.5.4 Error: authentication disabled\r\n";
const MAIL_AUTH_TWICE: &[u8] = b"503 5.5.4 Error: multiple AUTH= options\r\n";

impl Session {
    /// TLS state changed (see [`Session::tls_established`]): as in Postfix
    /// (RFC 3207 §4.2, RFC 4954 §4), the client is logged out and an
    /// exchange in progress is dropped; what was learnt in clear is
    /// forgotten.
    pub(super) fn auth_logout(&mut self) {
        self.auth.login = None;
        self.auth.exchange = None;
        self.auth.mail_sender = None;
    }

    /// The request behind [`Want::Authenticate`](super::super::Want::Authenticate), once: the owner
    /// verifies it and answers with [`Session::auth_done`].
    pub fn take_auth_request(&mut self) -> Option<AuthRequest> {
        let request = self.auth.pending.take()?;
        self.auth.asked = Some(request.mechanism);
        Some(request)
    }

    /// The owner's verdict on the request it took: queues 235, 535 or 454.
    /// A failure counts as an error, as in Postfix. Without a request
    /// outstanding it does nothing.
    pub fn auth_done(&mut self, verdict: AuthVerdict) {
        let Some(mechanism) = self.auth.asked.take() else {
            return;
        };
        let ok = match verdict {
            AuthVerdict::Ok { username } => {
                self.out.extend_from_slice(SUCCESS);
                self.auth.login = Some(SaslLogin {
                    method: mechanism,
                    username: printable(username.as_bytes()),
                });
                true
            }
            AuthVerdict::Fail { reason } => {
                let _ = write!(
                    Writer(&mut self.out),
                    "535 5.7.8 Error: authentication failed: {}\r\n",
                    printable(reason.as_bytes())
                );
                false
            }
            AuthVerdict::Temp { reason } => {
                let _ = write!(
                    Writer(&mut self.out),
                    "454 4.7.0 Temporary authentication failure: {}\r\n",
                    printable(reason.as_bytes())
                );
                false
            }
        };
        self.stats.record(Verb::Auth, ok);
        if !ok {
            self.count_error();
        }
        self.check_hard_limit();
    }

    /// The client's login, once AUTH succeeded.
    pub fn sasl_login(&self) -> Option<&SaslLogin> {
        self.auth.login.as_ref()
    }

    /// An AUTH exchange the client cancelled with `*` since the last call
    /// (for Postfix's `warning: …: SASL LOGIN authentication aborted`).
    pub fn take_auth_aborted(&mut self) -> Option<Mechanism> {
        self.auth.aborted.take()
    }

    /// MAIL FROM's `AUTH=` value in the current transaction (decoded; not
    /// kept for `<>`), for the `sasl_sender=` log field.
    pub fn sasl_sender(&self) -> Option<&str> {
        self.auth.mail_sender.as_deref()
    }

    /// Whether input waits for the owner's verdict.
    pub(super) fn auth_pending(&self) -> bool {
        self.auth.pending.is_some() || self.auth.asked.is_some()
    }

    /// Whether the next line is a response inside an AUTH exchange.
    pub(super) fn in_auth_exchange(&self) -> bool {
        self.auth.exchange.is_some()
    }

    /// Whether EHLO offers AUTH now: it is on, and TLS is active or not
    /// required (`smtpd_tls_auth_only`).
    pub(super) fn auth_offered(&self) -> bool {
        self.cfg.sasl_auth_enable && (self.is_tls() || !self.cfg.tls_auth_only)
    }

    /// A new MAIL transaction: forget the last one's `AUTH=`.
    pub(super) fn auth_mail_reset(&mut self) {
        self.auth.mail_sender = None;
    }

    /// The AUTH command.
    pub(super) fn auth_cmd(&mut self, line: &[u8], args: &[Token]) -> Outcome {
        if !self.cfg.sasl_auth_enable {
            return self.fail(NOT_ENABLED);
        }
        if !self.auth_offered() {
            return self.fail(NEED_TLS);
        }
        if self.auth.login.is_some() {
            return self.fail(ALREADY);
        }
        if self.in_transaction() {
            return self.fail(IN_TRANSACTION);
        }
        let (mechanism, initial) = match args {
            [m] => (m.text(line), None),
            [m, r] => (m.text(line), Some(r.text(line))),
            _ => return self.fail(SYNTAX),
        };
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return self.auth_failed("Invalid authentication mechanism");
        };
        match (mechanism, initial) {
            (Mechanism::Plain, None) => {
                self.auth.exchange = Some((mechanism, Exchange::PlainResponse));
                self.reply(b"334 \r\n")
            }
            (Mechanism::Login, None) => {
                self.auth.exchange = Some((mechanism, Exchange::LoginUser));
                self.reply(USERNAME_CHALLENGE)
            }
            (_, Some(b"*")) => self.abort(mechanism),
            (Mechanism::Plain, Some(resp)) => self.plain_response(resp),
            (Mechanism::Login, Some(resp)) => match decode_text(resp) {
                Some(username) => {
                    self.auth.exchange = Some((mechanism, Exchange::LoginPass { username }));
                    self.reply(PASSWORD_CHALLENGE)
                }
                None => self.fail(CANNOT_DECODE),
            },
        }
    }

    /// A client response line inside an exchange. Like Postfix, the
    /// response counts as part of the AUTH command: only the exchange's end
    /// is recorded in the statistics.
    pub(super) fn auth_response(&mut self, line: &[u8]) {
        let Some((mechanism, exchange)) = self.auth.exchange.take() else {
            return;
        };
        let outcome = if line == b"*" {
            self.abort(mechanism)
        } else {
            match exchange {
                Exchange::PlainResponse => self.plain_response(line),
                Exchange::LoginUser => match decode_text(line) {
                    Some(username) => {
                        self.auth.exchange = Some((mechanism, Exchange::LoginPass { username }));
                        self.reply(PASSWORD_CHALLENGE)
                    }
                    None => self.fail(CANNOT_DECODE),
                },
                Exchange::LoginPass { username } => match decode_text(line) {
                    Some(password) => self.ask(AuthRequest {
                        mechanism,
                        authzid: String::new(),
                        username,
                        password,
                    }),
                    None => self.fail(CANNOT_DECODE),
                },
            }
        };
        self.auth_outcome(outcome);
    }

    /// Records an AUTH exchange's outcome, as `dispatch` does for commands.
    pub(super) fn auth_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok if self.auth.exchange.is_none() => self.stats.record(Verb::Auth, true),
            Outcome::Error => {
                self.stats.record(Verb::Auth, false);
                self.count_error();
            }
            _ => {}
        }
    }

    /// MAIL FROM's `AUTH=<xtext>` (RFC 4954 §5): `None` to go on, else the
    /// refusal. The parameter is removed from what the caller parses.
    pub(super) fn mail_auth_param(&mut self, value: &[u8]) -> Option<Outcome> {
        if !self.cfg.sasl_auth_enable {
            return Some(self.fail(MAIL_AUTH_DISABLED));
        }
        if self.auth.mail_sender.is_some() {
            return Some(self.fail(MAIL_AUTH_TWICE));
        }
        if value != b"<>" {
            let decoded = xtext_decode(value).unwrap_or_else(|| printable(value));
            self.auth.mail_sender = Some(printable(decoded.as_bytes()));
        }
        None
    }

    fn plain_response(&mut self, resp: &[u8]) -> Outcome {
        let Some(decoded) = decode(resp) else {
            return self.fail(CANNOT_DECODE);
        };
        // RFC 4616: authzid NUL authcid NUL passwd.
        let mut parts = decoded.split(|&b| b == 0);
        let (Some(authzid), Some(username), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.auth_failed("Invalid authentication data");
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        let (Some(authzid), Some(username), Some(password)) =
            (text(authzid), text(username), text(password))
        else {
            return self.auth_failed("Invalid authentication data");
        };
        self.ask(AuthRequest {
            mechanism: Mechanism::Plain,
            authzid,
            username,
            password,
        })
    }

    fn ask(&mut self, request: AuthRequest) -> Outcome {
        if request.username.is_empty() || request.username.bytes().any(|b| b.is_ascii_control()) {
            return self.auth_failed("Invalid authentication data");
        }
        self.auth.pending = Some(request);
        Outcome::Deferred
    }

    fn abort(&mut self, mechanism: Mechanism) -> Outcome {
        self.auth.aborted = Some(mechanism);
        self.fail(ABORTED)
    }

    fn auth_failed(&mut self, reason: &str) -> Outcome {
        let _ = write!(
            Writer(&mut self.out),
            "535 5.7.8 Error: authentication failed: {reason}\r\n"
        );
        Outcome::Error
    }
}

fn decode(resp: &[u8]) -> Option<Vec<u8>> {
    // RFC 4954 §4: "=" is an empty initial response.
    if resp == b"=" {
        return Some(Vec::new());
    }
    B64.decode(resp).ok()
}

fn decode_text(resp: &[u8]) -> Option<String> {
    String::from_utf8(decode(resp)?).ok()
}
