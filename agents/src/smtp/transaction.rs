//! One mail transaction (Postfix's `smtp_xfer()` / `smtp_loop()`):
//! MAIL FROM, RCPT TO, DATA and the content, with pipelining, and the
//! replies turned into per-recipient outcomes.
//!
//! The rules, as Postfix's:
//! - a non-2xx reply to MAIL FROM decides every recipient (4xx defers,
//!   5xx bounces); replies to RCPTs already pipelined after it are ignored;
//! - a non-2xx reply to RCPT TO decides that recipient;
//! - the replies to DATA and to the final dot decide every recipient the
//!   server accepted;
//! - a transaction that went wrong is ended with RSET, so the session can
//!   be reused;
//! - a session failure (timeout, lost connection) defers every recipient
//!   not yet decided.

use std::collections::VecDeque;

use futures_lite::{AsyncRead, AsyncWrite};
use sluice_protocols::envelope::Body;
use sluice_protocols::smtp::client::{command, data::DotStuffer, reply::ServerReply};

use super::error::{DeliverError, SessionError, Stage};
use super::session::{failure_dsn, Connection};
use super::{BODY_CHUNK, PIPELINING_BUFSIZE};
use crate::delivery::{DeliveryRequest, RcptOutcome};
use crate::runtime::Clock;

/// The command a pending reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Mail,
    Rcpt(usize),
    Data,
}

impl Sent {
    fn stage(self) -> Stage {
        match self {
            Sent::Mail => Stage::Mail,
            Sent::Rcpt(_) => Stage::Rcpt,
            Sent::Data => Stage::Data,
        }
    }
}

/// Commands written or about to be written, whose replies are unread.
#[derive(Default)]
struct Batch {
    /// Commands not yet written (at most about `PIPELINING_BUFSIZE`).
    out: Vec<u8>,
    pending: VecDeque<Sent>,
    data_reply: Option<ServerReply>,
}

/// What the server has decided so far.
struct Tally {
    outcomes: Vec<Option<RcptOutcome>>,
    /// Recipients with a 2xx RCPT reply, in order.
    accepted: Vec<usize>,
    mail_rejected: bool,
}

impl Tally {
    fn new(n: usize) -> Self {
        Tally {
            outcomes: vec![None; n],
            accepted: Vec::new(),
            mail_rejected: false,
        }
    }

    /// Sets the outcome of every recipient still undecided.
    fn decide_open(&mut self, outcome: &RcptOutcome) {
        for o in self.outcomes.iter_mut().filter(|o| o.is_none()) {
            *o = Some(outcome.clone());
        }
    }

    fn decide_accepted(&mut self, outcome: &RcptOutcome) {
        for &i in &self.accepted {
            self.outcomes[i] = Some(outcome.clone());
        }
    }

    /// Whether no recipient can be delivered in this transaction, as far as
    /// the replies read so far tell.
    fn hopeless(&self) -> bool {
        self.mail_rejected || self.outcomes.iter().all(Option::is_some)
    }

    /// One outcome per recipient; `error` decides the undecided.
    fn finish(self, error: Option<&SessionError>) -> Vec<RcptOutcome> {
        self.outcomes
            .into_iter()
            .map(|o| match (o, error) {
                (Some(o), _) => o,
                (None, Some(e)) => e.outcome(),
                // Every path that ends without an error decides everyone;
                // should one not, the mail is kept, not lost.
                (None, None) => RcptOutcome::Deferred {
                    dsn: "4.3.0".into(),
                    reason: "mail transaction ended without a reply for this recipient".into(),
                },
            })
            .collect()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Delivers one message over this session, returning one outcome per
    /// recipient of `req`, in order. `content` is the message as queued
    /// (CRLF line endings); it is dot-stuffed on the way out.
    ///
    /// `Ok`: every recipient decided by the server (or by a check before
    /// MAIL FROM); the session may be reused if
    /// [`is_reusable`](Connection::is_reusable). `Err`: the session failed;
    /// the error still carries an outcome for every recipient, and the
    /// session must not be reused.
    pub async fn deliver<C: Clock>(
        &mut self,
        req: &DeliveryRequest,
        content: &[u8],
        clock: &C,
    ) -> Result<Vec<RcptOutcome>, DeliverError> {
        let n = req.recipients.len();
        if !self.usable {
            let peer = self.namaddr.clone();
            return Err(DeliverError::all(SessionError::Closed { peer }, n));
        }
        self.uses += 1;
        if let Some(refusal) = self.refuse_locally(req, content) {
            return Ok(vec![refusal; n]);
        }
        let mut tally = Tally::new(n);
        match self.transact(req, content, clock, &mut tally).await {
            Ok(()) => Ok(tally.finish(None)),
            Err(error) => {
                self.usable = false;
                Err(DeliverError {
                    outcomes: tally.finish(Some(&error)),
                    error,
                })
            }
        }
    }

    /// Checks made before MAIL FROM (Postfix's `smtp_xfer()` and
    /// `smtp_helo()`): the server's SIZE limit, and SMTPUTF8 when the mail
    /// needs it.
    fn refuse_locally(&self, req: &DeliveryRequest, content: &[u8]) -> Option<RcptOutcome> {
        if let Some(limit) = self.ext.size_limit() {
            if content.len() as u64 > limit {
                return Some(RcptOutcome::Bounced {
                    dsn: "5.3.4".into(),
                    reason: format!(
                        "message size {} exceeds size limit {limit} of server {}",
                        content.len(),
                        self.namaddr
                    ),
                });
            }
        }
        let utf8_envelope =
            !req.sender.is_ascii() || req.recipients.iter().any(|r| !r.address.is_ascii());
        if req.mail.smtputf8 && utf8_envelope && !self.ext.smtputf8 {
            return Some(RcptOutcome::Bounced {
                dsn: "5.6.7".into(),
                reason: format!(
                    "SMTPUTF8 is required, but was not offered by host {}",
                    self.namaddr
                ),
            });
        }
        None
    }

    /// The transaction proper; any error is a session failure.
    async fn transact<C: Clock>(
        &mut self,
        req: &DeliveryRequest,
        content: &[u8],
        clock: &C,
        tally: &mut Tally,
    ) -> Result<(), SessionError> {
        let pipelined = self.ext.pipelining && self.params.pipelining;
        let mut batch = Batch::default();
        let mut cmd = Vec::with_capacity(256);

        // Only a message not declared 8-bit, sent to an 8BITMIME server,
        // needs its content looked at (one vectorised pass).
        let eight_bit = self.ext.eight_bit_mime
            && matches!(req.mail.body, Body::Unspecified | Body::SevenBit)
            && !content.is_ascii();
        let size = content.len() as u64;
        if command::mail_from(&mut cmd, &req.sender, &req.mail, size, eight_bit, &self.ext).is_err()
        {
            tally.decide_open(&RcptOutcome::Bounced {
                dsn: "5.1.7".into(),
                reason: format!("bad sender address syntax: {:?}", req.sender),
            });
            return Ok(());
        }
        self.send(clock, &mut batch, tally, Sent::Mail, &cmd, pipelined)
            .await?;

        for (i, rcpt) in req.recipients.iter().enumerate() {
            if tally.mail_rejected {
                break;
            }
            cmd.clear();
            let orcpt = rcpt.orcpt.as_deref();
            if command::rcpt_to(&mut cmd, &rcpt.address, rcpt.notify, orcpt, &self.ext).is_err() {
                tally.outcomes[i] = Some(RcptOutcome::Bounced {
                    dsn: "5.1.3".into(),
                    reason: format!("bad recipient address syntax: {:?}", rcpt.address),
                });
                continue;
            }
            self.send(clock, &mut batch, tally, Sent::Rcpt(i), &cmd, pipelined)
                .await?;
        }

        // Without pipelining every reply is in and DATA is sent only when a
        // recipient was accepted; with it, DATA follows the RCPTs unread.
        if !tally.hopeless() {
            self.send(
                clock,
                &mut batch,
                tally,
                Sent::Data,
                command::DATA,
                pipelined,
            )
            .await?;
        }
        self.drain(clock, &mut batch, tally).await?;

        match batch.data_reply {
            Some(reply) if reply.is_intermediate() => {
                if tally.accepted.is_empty() || tally.mail_rejected {
                    // A server that says 354 with no valid recipient: end
                    // the (empty) message with a lone dot (RFC 2920 §3.1).
                    self.write(clock, Stage::Dot, b".\r\n").await?;
                    let _ = self.read_reply(clock, Stage::Dot).await?;
                    return Ok(());
                }
                self.send_content(clock, content).await?;
                let reply = self.read_reply(clock, Stage::Dot).await?;
                let outcome = if reply.is_positive_completion() {
                    RcptOutcome::Delivered {
                        dsn: reply.dsn().to_string(),
                        reason: reply.one_line(),
                    }
                } else {
                    self.said(&reply, Stage::Dot)
                };
                tally.decide_accepted(&outcome);
                Ok(())
            }
            Some(reply) => {
                if !tally.mail_rejected {
                    let outcome = self.said(&reply, Stage::Data);
                    tally.decide_accepted(&outcome);
                }
                self.abort(clock).await;
                Ok(())
            }
            None => {
                self.abort(clock).await;
                Ok(())
            }
        }
    }

    /// Queues one command. Without pipelining it is written and its reply
    /// read at once; with pipelining, the burst so far is written and its
    /// replies read first when this command would make it larger than
    /// `PIPELINING_BUFSIZE`.
    async fn send<C: Clock>(
        &mut self,
        clock: &C,
        batch: &mut Batch,
        tally: &mut Tally,
        sent: Sent,
        cmd: &[u8],
        pipelined: bool,
    ) -> Result<(), SessionError> {
        if pipelined
            && !batch.pending.is_empty()
            && batch.out.len() + cmd.len() > PIPELINING_BUFSIZE
        {
            self.drain(clock, batch, tally).await?;
        }
        batch.out.extend_from_slice(cmd);
        batch.pending.push_back(sent);
        if !pipelined {
            self.drain(clock, batch, tally).await?;
        }
        Ok(())
    }

    /// Writes the queued commands and reads a reply for each.
    async fn drain<C: Clock>(
        &mut self,
        clock: &C,
        batch: &mut Batch,
        tally: &mut Tally,
    ) -> Result<(), SessionError> {
        if let Some(first) = batch.pending.front() {
            let stage = first.stage();
            self.write(clock, stage, &batch.out).await?;
            batch.out.clear();
        }
        while let Some(sent) = batch.pending.pop_front() {
            let reply = self.read_reply(clock, sent.stage()).await?;
            match sent {
                Sent::Mail => {
                    if !reply.is_positive_completion() {
                        tally.mail_rejected = true;
                        tally.decide_open(&self.said(&reply, Stage::Mail));
                    }
                }
                Sent::Rcpt(i) => {
                    if tally.mail_rejected {
                        // Everyone was decided by the MAIL FROM reply.
                    } else if reply.is_positive_completion() {
                        tally.accepted.push(i);
                    } else {
                        tally.outcomes[i] = Some(self.said(&reply, Stage::Rcpt));
                    }
                }
                Sent::Data => batch.data_reply = Some(reply),
            }
        }
        Ok(())
    }

    /// Writes the dot-stuffed content, its long lines broken at
    /// `smtp_line_length_limit`, and the end-of-data line, one
    /// `BODY_CHUNK` of content per write, each within
    /// `smtp_data_xfer_timeout`.
    async fn send_content<C: Clock>(
        &mut self,
        clock: &C,
        content: &[u8],
    ) -> Result<(), SessionError> {
        let mut enc = DotStuffer::with_line_limit(self.params.smtp_line_length_limit);
        let mut buf = Vec::with_capacity(2 * BODY_CHUNK.min(content.len()) + 8);
        let mut chunks = content.chunks(BODY_CHUNK).peekable();
        while let Some(chunk) = chunks.next() {
            enc.encode(chunk, &mut buf);
            if chunks.peek().is_some() {
                self.write(clock, Stage::Body, &buf).await?;
                buf.clear();
            }
        }
        enc.finish(&mut buf);
        self.write(clock, Stage::Body, &buf).await
    }

    /// Ends a failed transaction with RSET so that the session stays
    /// reusable. The outcomes are decided already: a failure here only
    /// makes the session unusable.
    async fn abort<C: Clock>(&mut self, clock: &C) {
        let stage = Stage::FinalRset;
        let ok = match self.write(clock, stage, command::RSET).await {
            Ok(()) => self
                .read_reply(clock, stage)
                .await
                .is_ok_and(|r| r.is_positive_completion()),
            Err(_) => false,
        };
        if !ok {
            self.usable = false;
        }
    }

    /// A failure outcome from a server reply, in Postfix's words: "host
    /// h[ip] said: 550 5.1.1 <x>: … (in reply to RCPT TO command)".
    fn said(&self, reply: &ServerReply, stage: Stage) -> RcptOutcome {
        let dsn = failure_dsn(reply);
        let reason = format!(
            "host {} said: {} (in reply to {})",
            self.namaddr,
            reply.one_line(),
            stage.request()
        );
        let dsn_text = dsn.to_string();
        if dsn.0 == 4 {
            RcptOutcome::Deferred {
                dsn: dsn_text,
                reason,
            }
        } else {
            RcptOutcome::Bounced {
                dsn: dsn_text,
                reason,
            }
        }
    }
}
