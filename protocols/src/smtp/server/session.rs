//! The session state machine: reads command lines, DATA content and BDAT
//! chunks from the input it is given, and queues replies.
//!
//! Decisions that differ from Postfix, and why:
//! - A command line longer than `line_length_limit` is read to its end and
//!   discarded with `500 5.5.2 Error: line too long`; Postfix instead
//!   truncates it and runs the rest, which could act on a cut-off address.
//!   Either way the caller never buffers more than `line_length_limit` (+2)
//!   bytes of an unfinished command line.
//! - With `BareNewline::Reject`, a bare CR is refused like a bare LF
//!   (`550 5.5.2 Error: bare <CR> received`).
//! - A CR inside a HELO, EHLO, MAIL, RCPT or VRFY line is refused in
//!   every mode (`550 5.5.2 Error: bare <CR> received`); Postfix takes it
//!   for a space, which lets `EHLO name\rX-Header: …` through.
//! - VRFY of a UTF-8 address needs RFC 6531's `SMTPUTF8` argument
//!   (`553 5.6.7`), as MAIL and RCPT need it in MAIL.
//! - ETRN always gets `458 Unable to queue messages`: there is no fast
//!   flush service yet.

mod auth;
mod content;
mod envelope;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use memchr::memchr;

use super::address::{parse_path, valid_hostname};
use super::budget::{Budget, Content, ContentSink, Reservation};
use super::command::{is_forbidden, tokenize, Token, Verb};
use super::data::{DataScanner, Refusal, Scan};
use super::params::{parse_mail_params, parse_rcpt_params, printable};
use super::replies::*;
use super::stats::CommandStats;
use super::{
    Message, Policy, Progress, RateEvent, ServerConfig, Want, SMTPD_RECIPIENT_OVERSHOOT_LIMIT,
};
use crate::envelope::{Envelope, Protocol, Recipient};
use crate::smtp::reply::Reply;
use crate::smtp::BareNewline;

pub use auth::{AuthRequest, AuthVerdict, Mechanism, SaslLogin};
mod starttls;
pub use starttls::TlsInfo;

/// At most this much content buffer is reserved up front from a SIZE=
/// declaration; beyond it the buffer grows as data arrives, so a false SIZE
/// cannot make us allocate.
const CONTENT_RESERVE_MAX: u64 = 256 * 1024;

/// One SMTP server conversation; see the module docs of `smtp::server`.
pub struct Session {
    cfg: Rc<ServerConfig>,
    /// The shard's memory budget for message content.
    budget: Budget,
    /// The finished message's memory, until the owner takes it or reports.
    held: Option<Reservation>,
    out: Vec<u8>,
    input: Input,
    greeted: bool,
    /// The HELO/EHLO argument, sanitised.
    helo: Option<String>,
    /// EHLO was used: the protocol is ESMTP and PIPELINING was announced.
    /// Like Postfix, a later HELO does not downgrade it.
    esmtp: bool,
    /// The mail transaction, from MAIL until end of data or reset.
    txn: Option<Transaction>,
    /// The finished message, until the owner takes it.
    message: Option<Message>,
    /// A message is out with the owner; no input is read until it reports.
    awaiting: Option<Awaiting>,
    error_count: u32,
    junk_cmds: u32,
    stats: CommandStats,
    /// Reused tokenizer output, so commands do not allocate.
    tokens: Vec<Token>,
    /// The command after which the client first pipelined improperly.
    improper_pipelining: Option<&'static str>,
    /// Postfix's `state->where`, for "lost connection after X" logs.
    last_command: &'static str,
    /// A suspended MAIL/RCPT waits for [`Session::decide`].
    asking: Option<RateEvent>,
    /// The owner's answer, for the suspended command when it is fed again.
    decided: Option<(RateEvent, Result<(), Reply>)>,
    /// SMTP AUTH (see `auth`).
    auth: auth::AuthState,
    /// TLS is active: what the handshake negotiated (see `starttls`).
    tls: Option<TlsInfo>,
    /// STARTTLS was accepted; no input is read until the handshake ends.
    starting_tls: bool,
    /// Plaintext bytes dropped after STARTTLS (CVE-2011-0411).
    plaintext_discarded: usize,
}

/// What the next input bytes are.
#[derive(Clone, Debug)]
enum Input {
    Command,
    /// The rest of an over-long command line, to be discarded.
    SkipLongLine,
    Data(DataScanner),
    Bdat(Chunk),
    Closed,
}

/// A BDAT chunk being read.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    size: u64,
    remaining: u64,
    last: bool,
    fate: ChunkFate,
}

/// What happens to a chunk's bytes. The decision is made at the BDAT
/// command, since the chunk must be read either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkFate {
    Store,
    NeedRcpt,
    NoValidRecipients,
    TooBig,
    /// No memory for the chunk in the budget: read and drop it, `451 4.3.0`.
    NoMemory,
}

#[derive(Clone, Copy, Debug)]
enum Awaiting {
    Data,
    Bdat { total: u64 },
}

#[derive(Debug)]
struct Transaction {
    envelope: Envelope,
    content: Content,
    /// Recipients refused for `smtpd_recipient_limit` so far.
    overshoot: u32,
    /// BDAT chunks were received (DATA is then refused).
    bdat: bool,
}

enum Step {
    Continue(usize),
    Stop(usize, Want),
}

/// A command's result, for the error counter and the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
enum Outcome {
    Ok,
    Error,
    /// DATA / BDAT: decided when the content has been read.
    Deferred,
    /// MAIL / RCPT waits for the owner's rate decision; it runs again.
    Suspended,
}

impl Session {
    /// A session whose message content is not budgeted (tests, tools).
    pub fn new(cfg: Rc<ServerConfig>) -> Session {
        Session::with_budget(cfg, Budget::unlimited())
    }

    /// A session whose message content is reserved on `budget` as it
    /// arrives (see [`super::budget`]).
    pub fn with_budget(cfg: Rc<ServerConfig>, budget: Budget) -> Session {
        Session {
            cfg,
            budget,
            held: None,
            out: Vec::with_capacity(512),
            input: Input::Command,
            greeted: false,
            helo: None,
            esmtp: false,
            txn: None,
            message: None,
            awaiting: None,
            error_count: 0,
            junk_cmds: 0,
            stats: CommandStats::default(),
            tokens: Vec::with_capacity(8),
            improper_pipelining: None,
            last_command: "CONNECT",
            asking: None,
            decided: None,
            auth: auth::AuthState::default(),
            tls: None,
            starting_tls: false,
            plaintext_discarded: 0,
        }
    }

    /// Queue the 220 greeting. Input received before this was called is unauthorized pipelining.
    pub fn greet(&mut self) {
        if !self.greeted {
            self.greeted = true;
            Reply::plain(220, self.cfg.banner.as_str()).write_to(&mut self.out);
        }
    }

    /// Feeds input; see [`Progress`] and [`Want`]. Replies are appended to
    /// [`Session::output`]. No I/O, no clock; per-command work allocates
    /// only what the envelope keeps.
    pub fn receive(&mut self, input: &[u8], policy: &mut dyn Policy) -> Progress {
        if let Some(event) = self.asking {
            return Progress {
                consumed: 0,
                want: Want::Decide(event),
            };
        }
        if self.auth_pending() {
            return Progress {
                consumed: 0,
                want: Want::Authenticate,
            };
        }
        if self.awaiting.is_some() {
            return Progress {
                consumed: 0,
                want: Want::Message,
            };
        }
        if self.starting_tls {
            return Progress {
                consumed: 0,
                want: Want::StartTls,
            };
        }
        if matches!(self.input, Input::Closed) {
            return Progress {
                consumed: 0,
                want: Want::Close,
            };
        }
        if !self.greeted && !input.is_empty() {
            // The client talked before our greeting: Postfix's "improper
            // command pipelining after CONNECT".
            self.improper_pipelining.get_or_insert("CONNECT");
            if self.cfg.forbid_unauth_pipelining {
                self.out.extend_from_slice(SYNC_ERROR);
                self.input = Input::Closed;
                return Progress {
                    consumed: 0,
                    want: Want::Close,
                };
            }
            self.greet();
        }
        let mut pos = 0;
        loop {
            let step = match self.input {
                Input::Command => self.command_step(input, pos, policy),
                Input::SkipLongLine => self.skip_step(input, pos),
                Input::Data(_) => self.data_step(input, pos),
                Input::Bdat(_) => self.bdat_step(input, pos),
                Input::Closed => Step::Stop(pos, Want::Close),
            };
            match step {
                Step::Continue(next) => pos = next,
                Step::Stop(consumed, want) => return Progress { consumed, want },
            }
        }
    }

    /// The finished message, once, after `receive` returned `Want::Message`.
    pub fn take_message(&mut self) -> Option<Message> {
        self.message.take()
    }

    /// The reservation covering the finished message's content: the owner
    /// keeps it (and may grow it for its own copies) while it stores the
    /// message. Left here, it is released by [`Session::message_done`].
    pub fn take_reservation(&mut self) -> Reservation {
        self.held
            .take()
            .unwrap_or_else(|| self.budget.reservation())
    }

    /// Queue the reply for the message: Ok(qid) => "250 2.0.0 Ok: queued as QID"
    /// (after BDAT, Postfix's "250 2.0.0 Ok: N bytes queued as QID"); Err(reply) => reply.
    /// A successful queue resets the error counters. Without a message outstanding it does nothing.
    pub fn message_done(&mut self, result: Result<&str, Reply>) {
        let Some(kind) = self.awaiting.take() else {
            return;
        };
        self.message = None;
        self.held = None;
        let verb = match kind {
            Awaiting::Data => Verb::Data,
            Awaiting::Bdat { .. } => Verb::Bdat,
        };
        match result {
            Ok(queue_id) => {
                match kind {
                    Awaiting::Data => self.out.extend_from_slice(b"250 2.0.0 Ok: queued as "),
                    Awaiting::Bdat { total } => {
                        let _ = write!(
                            Writer(&mut self.out),
                            "250 2.0.0 Ok: {total} bytes queued as "
                        );
                    }
                }
                self.out.extend_from_slice(queue_id.as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.error_count = 0;
                self.junk_cmds = 0;
                self.stats.record(verb, true);
            }
            Err(reply) => {
                reply.write_to(&mut self.out);
                self.stats.record(verb, false);
                self.count_error();
            }
        }
        self.check_hard_limit();
    }

    /// The owner's answer to [`Want::Decide`]: `Ok` lets the command go on,
    /// `Err(reply)` refuses it with `reply` (an error, as Postfix counts
    /// it). Without a question outstanding it does nothing.
    pub fn decide(&mut self, result: Result<(), Reply>) {
        if let Some(event) = self.asking.take() {
            self.decided = Some((event, result));
        }
    }

    /// smtpd_timeout expired: queue "421 4.4.2 <host> Error: timeout exceeded"; returns Want::Close.
    pub fn on_timeout(&mut self) -> Want {
        if !matches!(self.input, Input::Closed) {
            let _ = write!(
                Writer(&mut self.out),
                "421 4.4.2 {} Error: timeout exceeded\r\n",
                self.cfg.hostname
            );
            self.input = Input::Closed;
        }
        Want::Close
    }

    /// Queue the shutdown reply "421 4.3.2 <host> Service shutting down"; the session is then closed.
    pub fn shutdown(&mut self) {
        if !matches!(self.input, Input::Closed) {
            let _ = write!(
                Writer(&mut self.out),
                "421 4.3.2 {} Service shutting down\r\n",
                self.cfg.hostname
            );
            self.input = Input::Closed;
        }
    }

    /// Bytes to send. The caller sends them and clears the Vec.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// `Some(smtpd_error_sleep_time)` once the error count reached
    /// `smtpd_soft_error_limit`: wait that long before flushing.
    pub fn reply_delay(&self) -> Option<Duration> {
        (self.error_count >= self.cfg.soft_error_limit && !self.cfg.error_sleep.is_zero())
            .then_some(self.cfg.error_sleep)
    }

    /// Postfix's disconnect statistics: "ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5".
    pub fn command_stats(&self) -> String {
        self.stats.render()
    }

    /// Sender of the current transaction (or of the message not yet taken), for logs.
    pub fn sender(&self) -> Option<&str> {
        match (&self.txn, &self.message) {
            (Some(txn), _) => Some(&txn.envelope.sender),
            (None, Some(msg)) => Some(&msg.envelope.sender),
            (None, None) => None,
        }
    }

    /// The command after which the client first pipelined improperly
    /// ("CONNECT" for input before the greeting), for Postfix's log line
    /// "improper command pipelining after X from client".
    pub fn improper_pipelining(&self) -> Option<&'static str> {
        self.improper_pipelining
    }

    /// Postfix's `where` for "lost connection after X" / "timeout after X":
    /// CONNECT, a command name, UNKNOWN, DATA (while reading content), BDAT
    /// (while reading a chunk) or END-OF-MESSAGE.
    pub fn last_command(&self) -> &'static str {
        self.last_command
    }

    /// The HELO/EHLO argument (sanitised), if any.
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// `Esmtp` once EHLO was used, else `Smtp`.
    pub fn protocol(&self) -> Protocol {
        if self.esmtp {
            Protocol::Esmtp
        } else {
            Protocol::Smtp
        }
    }

    /// The session ended (QUIT, 421, protocol violation); only output remains.
    pub fn is_closed(&self) -> bool {
        matches!(self.input, Input::Closed)
    }

    /// Errors since the last queued message (Postfix's `error_count`).
    pub fn error_count(&self) -> u32 {
        self.error_count
    }

    // ---- input states ----------------------------------------------------

    fn command_step(&mut self, input: &[u8], pos: usize, policy: &mut dyn Policy) -> Step {
        let rest = &input[pos..];
        let Some(n) = memchr(b'\n', rest) else {
            // A full-length line may still be waiting for its "\r\n".
            if rest.len() > self.cfg.line_length_limit.saturating_add(1) {
                self.input = Input::SkipLongLine;
                return Step::Stop(input.len(), Want::More);
            }
            return Step::Stop(pos, Want::More);
        };
        let next = pos + n + 1;
        let (line, crlf) = match rest[..n].split_last() {
            Some((b'\r', line)) => (line, true),
            _ => (&rest[..n], false),
        };
        if line.len() > self.cfg.line_length_limit {
            self.out.extend_from_slice(LINE_TOO_LONG);
            self.count_error();
        } else {
            self.command(line, crlf, next < input.len(), policy);
            if let Some(event) = self.asking {
                return Step::Stop(pos, Want::Decide(event));
            }
            if self.auth_pending() {
                return Step::Stop(next, Want::Authenticate);
            }
            if self.starting_tls {
                let (consumed, want) = self.discard_after_starttls(input, next);
                return Step::Stop(consumed, want);
            }
        }
        self.after_command(next)
    }

    fn skip_step(&mut self, input: &[u8], pos: usize) -> Step {
        match memchr(b'\n', &input[pos..]) {
            None => Step::Stop(input.len(), Want::More),
            Some(n) => {
                self.input = Input::Command;
                self.out.extend_from_slice(LINE_TOO_LONG);
                self.count_error();
                self.after_command(pos + n + 1)
            }
        }
    }

    /// After a command (or the end of its content): close if it asked to,
    /// or if the hard error limit was reached.
    fn after_command(&mut self, next: usize) -> Step {
        self.check_hard_limit();
        if matches!(self.input, Input::Closed) {
            Step::Stop(next, Want::Close)
        } else {
            Step::Continue(next)
        }
    }

    /// Postfix checks `smtpd_hard_error_limit` before reading each command.
    fn check_hard_limit(&mut self) {
        if matches!(self.input, Input::Command) && self.error_count >= self.cfg.hard_error_limit {
            let _ = write!(
                Writer(&mut self.out),
                "421 4.7.0 {} Error: too many errors\r\n",
                self.cfg.hostname
            );
            self.input = Input::Closed;
        }
    }

    fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    fn count_error(&mut self) {
        self.error_count = self.error_count.saturating_add(1);
    }

    // ---- commands ----------------------------------------------------------

    /// One command line, without its line ending.
    fn command(&mut self, line: &[u8], crlf: bool, more_follows: bool, policy: &mut dyn Policy) {
        if self.in_auth_exchange() {
            self.auth_response(line);
            return;
        }
        if self.cfg.bare_newline == BareNewline::Reject {
            let bare = if !crlf {
                Some(BARE_LF)
            } else if memchr(b'\r', line).is_some() {
                Some(BARE_CR)
            } else {
                None
            };
            if let Some(reply) = bare {
                self.out.extend_from_slice(reply);
                self.count_error();
                return;
            }
        }
        let mut tokens = std::mem::take(&mut self.tokens);
        tokenize(line, &mut tokens);
        if memchr(b'\r', line).is_some() && carries_names(line, &tokens) {
            // A CR inside HELO/EHLO/MAIL/RCPT/VRFY: Postfix's tokenizer
            // takes it for a space; we refuse it, in every mode, so that
            // nothing a client put after it can reach a header or a log.
            self.out.extend_from_slice(BARE_CR);
            self.count_error();
            self.tokens = tokens;
            return;
        }
        self.dispatch(line, &tokens, more_follows, policy);
        self.tokens = tokens;
    }

    fn dispatch(
        &mut self,
        line: &[u8],
        tokens: &[Token],
        more_follows: bool,
        policy: &mut dyn Policy,
    ) {
        let Some(first) = tokens.first() else {
            self.out.extend_from_slice(BAD_SYNTAX);
            self.count_error();
            return;
        };
        let word = first.text(line);
        let Some(verb) = Verb::parse(word) else {
            self.last_command = "UNKNOWN";
            if is_forbidden(word) {
                self.out.extend_from_slice(BREAK_RULES);
                self.input = Input::Closed;
                return;
            }
            self.stats.record_unknown();
            self.out.extend_from_slice(NOT_RECOGNIZED);
            self.count_error();
            return;
        };
        self.last_command = verb.name();
        // RFC 2920: without PIPELINING nothing may follow a command, and
        // some commands must end a group. BDAT's chunk follows its command
        // by design. Checked before the command runs, as Postfix does.
        if more_follows
            && verb != Verb::Bdat
            && (!self.esmtp || verb.last_in_group())
            && self.improper_pipelining.is_none()
        {
            self.improper_pipelining = Some(verb.name());
            if self.cfg.forbid_unauth_pipelining {
                self.out.extend_from_slice(SYNC_ERROR);
                self.input = Input::Closed;
                return;
            }
        }
        let args = &tokens[1..];
        let outcome = match self.tls_gate(verb.pre_tls()) {
            Some(refused) => refused,
            None => self.run(verb, line, args, policy),
        };
        if verb == Verb::Auth {
            return self.auth_outcome(outcome);
        }
        match outcome {
            Outcome::Ok => self.stats.record(verb, true),
            Outcome::Error => {
                self.stats.record(verb, false);
                self.count_error();
            }
            Outcome::Deferred => {}
            Outcome::Suspended => return,
        }
        if verb.is_junk() {
            let junk = self.junk_cmds;
            self.junk_cmds = junk.saturating_add(1);
            if junk > self.cfg.junk_command_limit {
                self.count_error();
            }
        }
    }

    /// Runs one command (its state and syntax checks, then its work).
    fn run(&mut self, verb: Verb, line: &[u8], args: &[Token], policy: &mut dyn Policy) -> Outcome {
        match verb {
            Verb::Helo => self.helo_cmd(line, args, false),
            Verb::Ehlo => self.helo_cmd(line, args, true),
            Verb::Starttls => self.starttls_cmd(args),
            Verb::Mail => self.mail_cmd(line, args, policy),
            Verb::Rcpt => self.rcpt_cmd(line, args, policy),
            Verb::Data => self.data_cmd(args),
            Verb::Bdat => self.bdat_cmd(line, args),
            Verb::Rset => self.rset_cmd(args),
            Verb::Noop => self.reply(OK),
            Verb::Vrfy => self.vrfy_cmd(line, args),
            Verb::Etrn => self.etrn_cmd(line, args),
            Verb::Help => self.reply(HELP),
            Verb::Auth => self.auth_cmd(line, args),
            Verb::Quit => {
                self.input = Input::Closed;
                self.reply(BYE)
            }
        }
    }

    /// Postfix's anvil check point for MAIL and RCPT: `None` to go on,
    /// else the command's outcome (refused, or suspended to ask).
    fn rate_gate(&mut self, event: RateEvent, policy: &mut dyn Policy) -> Option<Outcome> {
        match self.decided.take() {
            Some((asked, Ok(()))) if asked == event => None,
            Some((asked, Err(reply))) if asked == event => {
                reply.write_to(&mut self.out);
                Some(Outcome::Error)
            }
            _ if policy.rate_limited(event) => {
                self.asking = Some(event);
                Some(Outcome::Suspended)
            }
            _ => None,
        }
    }

    fn reply(&mut self, line: &[u8]) -> Outcome {
        self.out.extend_from_slice(line);
        Outcome::Ok
    }

    fn fail(&mut self, line: &[u8]) -> Outcome {
        self.out.extend_from_slice(line);
        Outcome::Error
    }

    fn helo_cmd(&mut self, line: &[u8], args: &[Token], ehlo: bool) -> Outcome {
        if args.is_empty() {
            return self.fail(if ehlo { EHLO_SYNTAX } else { HELO_SYNTAX });
        }
        self.helo = Some(helo_name(line, args));
        self.txn = None;
        if !ehlo {
            let _ = write!(Writer(&mut self.out), "250 {}\r\n", self.cfg.hostname);
            return Outcome::Ok;
        }
        self.esmtp = true;
        let starttls = self.offers_starttls();
        let auth = self.auth_offered();
        let cfg = &self.cfg;
        let out = &mut self.out;
        let _ = write!(Writer(out), "250-{}\r\n250-PIPELINING\r\n", cfg.hostname);
        if cfg.message_size_limit > 0 {
            let _ = write!(Writer(out), "250-SIZE {}\r\n", cfg.message_size_limit);
        } else {
            out.extend_from_slice(b"250-SIZE\r\n");
        }
        if !cfg.disable_vrfy {
            out.extend_from_slice(b"250-VRFY\r\n");
        }
        out.extend_from_slice(b"250-ETRN\r\n");
        if starttls {
            out.extend_from_slice(b"250-STARTTLS\r\n");
        }
        if auth {
            out.extend_from_slice(b"250-AUTH PLAIN LOGIN\r\n");
        }
        out.extend_from_slice(
            b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
        );
        Outcome::Ok
    }

    fn rset_cmd(&mut self, args: &[Token]) -> Outcome {
        if !args.is_empty() {
            return self.fail(RSET_SYNTAX);
        }
        self.txn = None;
        self.reply(OK)
    }
}

/// The HELO/EHLO argument as Postfix keeps it: all words joined, with
/// non-printable bytes and `<>()\";@` and spaces neutered to `?`.
fn helo_name(line: &[u8], args: &[Token]) -> String {
    let (first, last) = (args[0], args[args.len() - 1]);
    line[first.start..last.end]
        .iter()
        .map(|&c| {
            if c.is_ascii_graphic()
                && !matches!(c, b'<' | b'>' | b'(' | b')' | b'\\' | b'"' | b';' | b'@')
            {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

/// `fmt::Write` into the output buffer, for the few replies with variable
/// parts.
struct Writer<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Whether `line` is a command whose words may reach a header or a log
/// line as names: HELO, EHLO, MAIL, RCPT, VRFY.
fn carries_names(line: &[u8], tokens: &[Token]) -> bool {
    tokens
        .first()
        .and_then(|t| Verb::parse(t.text(line)))
        .is_some_and(|v| {
            matches!(
                v,
                Verb::Helo | Verb::Ehlo | Verb::Mail | Verb::Rcpt | Verb::Vrfy
            )
        })
}
