//! bounce: the delivery status notifications Postfix's bounce(8), defer(8)
//! and trace(8) daemons send — non-delivery, delayed-mail and success
//! reports — built as pure functions, byte for byte in Postfix's layout
//! (RFC 3464 `multipart/report`).
//!
//! **Role.** Given the original message (envelope facts and content) and
//! the per-recipient outcomes, decide whether the sender gets a notice
//! ([`should_notify`]) and produce the notice as it is queued
//! ([`build`]): the `Received:`/`Date:` lines that Postfix's `post_mail`
//! writes, the bounce daemon's headers and three MIME parts, and the
//! `Message-Id:` that cleanup would add, all CRLF.
//!
//! ```text
//! Received: by <myhostname> (<mail_name>)
//!         id <notice qid>; <now>
//! Date: <now>
//! From: MAILER-DAEMON@<myorigin> (Mail Delivery System)
//! Subject: Undelivered Mail Returned to Sender
//! To: <sender>
//! Auto-Submitted: auto-replied
//! MIME-Version: 1.0
//! Content-Type: multipart/report; report-type=delivery-status;
//!         boundary="<original qid>.<now epoch>/<myhostname>"
//! Content-Transfer-Encoding: 8bit
//! Message-Id: <<notice qid>@<myhostname>>
//!
//! This is a MIME-encapsulated message.
//!
//! --<boundary>
//! Content-Description: Notification            template text, then per
//! Content-Type: text/plain; charset=utf-8      recipient "<rcpt>: reason"
//! Content-Transfer-Encoding: 8bit              wrapped at 79 columns
//!
//! --<boundary>
//! Content-Description: Delivery report         Reporting-MTA, queue ID,
//! Content-Type: message/delivery-status        sender, arrival; then one
//!                                              block per recipient
//! --<boundary>
//! Content-Description: Undelivered Message     Return-Path: + the original
//! Content-Type: message/rfc822                 (or its headers only)
//! Content-Transfer-Encoding: 8bit
//!
//! --<boundary>--
//! ```
//!
//! **Choices, each from the Postfix source.**
//! - The boundary names the *original* message's queue ID
//!   (`bounce_mail_alloc()`); the notice's own ID appears only in
//!   `Received:` and `Message-Id:`.
//! - `X-<mail_name>-Queue-ID`, `X-<mail_name>-Sender` and the fallback
//!   `Diagnostic-Code: X-<mail_name>; <reason>` are named after
//!   `mail_name`, made an RFC 822 atom (`X-Sluice-…` with the default
//!   `mail_name`; `X-Postfix-…` when `mail_name = Postfix`).
//! - `From:` is the built-in template's `MAILER-DAEMON (Mail Delivery
//!   System)` as cleanup qualifies it: `MAILER-DAEMON@$myorigin`.
//! - With `smtputf8_enable = yes` (Postfix's default) every part is
//!   declared `8bit` and the notification text `charset=utf-8`; with `no`,
//!   the message is `7bit`/`us-ascii` unless the original has 8-bit bytes.
//!   When the original asked for SMTPUTF8, parts 2 and 3 use the
//!   `message/global-*` types.
//! - Which parts of the original come back: failures honour `RET=` (full
//!   by default); delay and success notices always return headers only;
//!   any notice returns headers only when the original is empty or larger
//!   than `bounce_size_limit`.
//! - `Original-Recipient:` is always present: the ORCPT as received, else
//!   `rfc822;<address>` — the ORCPT that Postfix's smtpd records when the
//!   client gave none.
//! - Only the built-in templates (`bounce_template_file` unsupported), no
//!   postmaster copies (`notify_classes` default `resource, software`
//!   sends none for bounces or delays), no `References:`/`In-Reply-To:`
//!   (`enable_threaded_bounces = no`).
//!
//! **Trust.** Addresses, reasons and diagnostics come from clients and
//! remote servers: control characters in them become `?` (Postfix's
//! `printable()`), and so do non-ASCII characters when the notice is 7bit,
//! so no field can end a header line or forge a MIME boundary line. The
//! original content is copied as queued.
//!
//! **Disk and I/O.** None; the caller queues the result.
//!
//! **Limits.** `bounce_size_limit` (50000 bytes) caps the returned
//! original; the rest of the notice is a few hundred bytes per recipient.

mod render;
mod template;
#[cfg(test)]
mod tests;
mod wrap;

use sluice_protocols::envelope::{Notify, Ret};

use crate::datetime;
use crate::delivery::{DeliveryRcpt, RcptOutcome};

/// Which notice: the built-in template it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// Non-delivery ("Undelivered Mail Returned to Sender"), bounce(8).
    Failure,
    /// Delayed mail ("Delayed Mail (still being retried)"), defer(8).
    Delay,
    /// DSN NOTIFY=SUCCESS ("Successful Mail Delivery Report"), trace(8).
    Success,
}

/// RFC 3464 `Action:` of one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Failed,
    Delayed,
    /// Delivered to a mailbox, file or command.
    Delivered,
    /// Handed to a next hop that does not speak DSN.
    Relayed,
    /// Delivered to an alias or list that expanded it.
    Expanded,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// RFC 3464 `Diagnostic-Code:`: a type (`smtp`, `x-unix`) and its text
/// (for `smtp`, the server's reply with its lines joined by spaces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: String,
    pub text: String,
}

impl Diagnostic {
    /// `smtp; <reply>`.
    pub fn smtp(reply: impl Into<String>) -> Self {
        Diagnostic {
            kind: "smtp".to_owned(),
            text: reply.into(),
        }
    }
}

/// One recipient reported in a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeRcpt {
    /// The final recipient address (internal form, unquoted).
    pub address: String,
    /// The address before aliasing or forwarding, when it differs: shown
    /// as `<address> (expanded from <original>)`.
    pub original: Option<String>,
    /// ORCPT as received (`rfc822;jane@example.org`), if any.
    pub orcpt: Option<String>,
    /// The recipient's NOTIFY=, which decides whether it is reported.
    pub notify: Notify,
    /// `Action:`. Failure notices always say `failed`, as Postfix's do.
    pub action: Action,
    /// Enhanced status code, `5.1.1`.
    pub status: String,
    /// `Remote-MTA: dns; <host>`, when a server answered.
    pub remote_mta: Option<String>,
    /// `Diagnostic-Code:`; without one the notice says
    /// `X-<mail_name>; <reason>`.
    pub diagnostic: Option<Diagnostic>,
    /// The human text of part 1 (Postfix's DSN reason, as logged after
    /// `status=bounced (`).
    pub reason: String,
}

impl NoticeRcpt {
    /// A recipient from a delivery agent's outcome: address, ORCPT and
    /// NOTIFY from the request, status and reason from the outcome, and the
    /// action its variant implies (`success` for a delivery: `Delivered`
    /// for a local mailbox, `Relayed` for a next hop without DSN).
    /// `remote_mta` and `diagnostic` are left for the caller, who knows
    /// whether a server answered.
    pub fn from_outcome(rcpt: &DeliveryRcpt, outcome: &RcptOutcome, success: Action) -> Self {
        let action = match outcome {
            RcptOutcome::Delivered { .. } => success,
            RcptOutcome::Deferred { .. } => Action::Delayed,
            RcptOutcome::Bounced { .. } => Action::Failed,
        };
        NoticeRcpt {
            address: rcpt.address.clone(),
            original: None,
            orcpt: rcpt.orcpt.clone(),
            notify: rcpt.notify,
            action,
            status: outcome.dsn().to_owned(),
            remote_mta: None,
            diagnostic: None,
            reason: outcome.reason().to_owned(),
        }
    }
}

/// The main.cf parameters a notice depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeParams {
    /// `myhostname`: Received:, Reporting-MTA:, the boundary, the text.
    pub myhostname: String,
    /// `myorigin`: the domain of `From: MAILER-DAEMON@…`.
    pub myorigin: String,
    /// `mail_name` (`Sluice`): Received: and the `X-<mail_name>-` fields.
    pub mail_name: String,
    /// `bounce_size_limit` (50000): the largest original returned whole;
    /// 0 means no limit.
    pub bounce_size_limit: usize,
    /// `delay_warning_time` (Postfix default 0h), for the delay text.
    pub delay_warning_time_s: i64,
    /// `maximal_queue_lifetime` (5d): the delay text and
    /// `Will-Retry-Until:`.
    pub maximal_queue_lifetime_s: i64,
    /// `smtputf8_enable` (yes): declare every part 8bit / utf-8.
    pub smtputf8_enable: bool,
}

impl NoticeParams {
    /// Postfix's defaults, `mail_name = Sluice`.
    pub fn new(myhostname: impl Into<String>, myorigin: impl Into<String>) -> Self {
        NoticeParams {
            myhostname: myhostname.into(),
            myorigin: myorigin.into(),
            mail_name: "Sluice".to_owned(),
            bounce_size_limit: 50_000,
            delay_warning_time_s: 0,
            maximal_queue_lifetime_s: 5 * 86_400,
            smtputf8_enable: true,
        }
    }
}

/// One notice to build: what is known about the original message.
#[derive(Clone, Copy, Debug)]
pub struct Notice<'a> {
    pub kind: NoticeKind,
    /// The original message's queue ID.
    pub qid: &'a str,
    /// The original envelope sender: the notice's recipient (`To:`).
    pub sender: &'a str,
    /// When the original arrived (Arrival-Date:, Will-Retry-Until:); 0 or
    /// less leaves Arrival-Date: out, as Postfix does.
    pub arrival_secs: i64,
    /// The original's ENVID=.
    pub envid: Option<&'a str>,
    /// The original's RET=.
    pub ret: Option<Ret>,
    /// The original was sent with SMTPUTF8.
    pub smtputf8: bool,
    /// Everyone the notice may report; those whose NOTIFY= does not ask
    /// for this kind are left out (see [`should_notify`]).
    pub recipients: &'a [NoticeRcpt],
    /// The original content as queued (CRLF lines).
    pub original: &'a [u8],
    /// The queue ID the notice itself will be queued under.
    pub notice_qid: &'a str,
    /// Now: the notice's Date: and its boundary.
    pub now_secs: i64,
}

/// Whether a recipient with `notify` gets reported to `sender` in a notice
/// of `kind`.
///
/// - Never to the null sender: a notice about a notice is a double bounce,
///   which Postfix sends only to the postmaster and only when
///   `notify_classes` asks (by default it does not), so it is dropped.
/// - Failure and delay: when NOTIFY= was not given, or includes
///   FAILURE / DELAY (Postfix's `dsn_notify == 0 || dsn_notify & filter`).
///   NOTIFY=NEVER asks for nothing.
/// - Success: only NOTIFY=SUCCESS. (A handoff to a DSN-capable next hop
///   passes the request on instead; the caller does not ask for a success
///   notice then.)
pub fn should_notify(kind: NoticeKind, notify: Notify, sender: &str) -> bool {
    if sender.is_empty() {
        return false;
    }
    match kind {
        NoticeKind::Failure => notify.0 == 0 || notify.contains(Notify::FAILURE),
        NoticeKind::Delay => notify.0 == 0 || notify.contains(Notify::DELAY),
        NoticeKind::Success => notify.contains(Notify::SUCCESS),
    }
}

/// Builds the notice, dated in the local zone as Postfix's `mail_date()`.
/// `None` when nobody is to be told: the sender is null, or no recipient's
/// NOTIFY= asks for this kind of notice.
///
/// The result is the complete message to queue with the null sender and
/// the original sender as its one recipient, without running it through
/// cleanup (it already has its Received:, Date: and Message-Id:).
#[must_use]
pub fn build(p: &NoticeParams, n: &Notice<'_>) -> Option<Vec<u8>> {
    build_with_dates(p, n, &datetime::rfc2822_local)
}

/// [`build`] with the RFC 5322 date form given by the caller (used for
/// Date:/Received:, Arrival-Date: and Will-Retry-Until:), for tests and
/// simulators that must not depend on the machine's time zone.
#[must_use]
pub fn build_with_dates(
    p: &NoticeParams,
    n: &Notice<'_>,
    date: &dyn Fn(i64) -> String,
) -> Option<Vec<u8>> {
    let reported: Vec<&NoticeRcpt> = n
        .recipients
        .iter()
        .filter(|r| should_notify(n.kind, r.notify, n.sender))
        .collect();
    if reported.is_empty() {
        return None;
    }
    Some(render::render(p, n, &reported, date))
}
