//! cleanup: what Postfix's cleanup(8) does to a message before it is
//! queued, as one pure function over the whole message.
//!
//! **Role.** Given the envelope and the content of a message received by
//! smtpd or picked up from the maildrop, produce the content as it is
//! queued and normalise the envelope:
//!
//! 1. prepend the injector's `Received:` header (`received.rs` has the
//!    exact shapes; in Postfix smtpd and pickup write it);
//! 2. copy the primary header section (`headers.rs`): drop `Bcc:`,
//!    `Content-Length:`, `Resent-Bcc:` and `Return-Path:`, bound each
//!    logical header by `header_size_limit`, end the section with an empty
//!    line where a non-header line ends it;
//! 3. count `Received:` headers, ours included, and reject the message when
//!    there are `hopcount_limit` or more (Postfix's
//!    `++hop_count >= var_hopcount_limit`: with the default of 50, a
//!    message that arrives with 49 `Received:` headers is rejected);
//!    `Delivered-To:` is not counted here, as in Postfix, where it is the
//!    local delivery agent's loop check;
//! 4. rewrite the envelope sender and recipients to standard form
//!    ([`crate::rewrite::standard_form`] with `rewrite`), and remove
//!    duplicate recipients: same original address, same NOTIFY, same ORCPT
//!    (Postfix's `been_here()` key), remembering at most
//!    [`DUPLICATE_FILTER_LIMIT`] of them;
//! 5. add missing `Message-Id:`, `Date:` and `From:` headers at the end of
//!    the header section, or their `Resent-` forms when the message has any
//!    `Resent-` header;
//! 6. copy the body with one `extend_from_slice`, byte for byte (a message
//!    without a final CRLF keeps it that way).
//!
//! **Choices.**
//! - `Message-Id: <QID@myhostname>`: our queue IDs are long IDs, and this
//!   is Postfix's form with `enable_long_queue_ids = yes` (the short-ID
//!   form embeds a GMT time stamp, `<YYYYMMDDhhmmss.QID@host>`).
//! - Missing headers are added when `always_add_missing_headers` is set
//!   (Postfix's default: no), always for mail from pickup, and for an
//!   smtpd client that matched the listener's
//!   `local_header_rewrite_clients` (the engine decides, see
//!   `HeaderRewriteClients`; by default a loopback client).
//! - The null sender's added header is `From: MAILER-DAEMON`, exactly as
//!   Postfix writes it (`MAIL_ADDR_MAIL_DAEMON`, no domain).
//! - `undisclosed_recipients_header` is empty by default (Postfix ≥ 2.8),
//!   so no `To:` is added.
//!
//! **Trust.** The content and the envelope come from the client: any bytes
//! are accepted, nothing panics, and client text copied into headers
//! (HELO, names, addresses) has its control characters replaced by `?`.
//! Parameters come from main.cf.
//!
//! **Disk and I/O.** None. The caller stores the result.
//!
//! **Limits.** `header_size_limit` (default 102400) per logical header,
//! `hopcount_limit` (default 50), [`DUPLICATE_FILTER_LIMIT`] (Postfix's
//! `duplicate_filter_limit`, 1000). The content itself is bounded by the
//! caller (`message_size_limit`). A line longer than `line_length_limit`
//! (2048) is kept whole: Postfix's `cleanup_out()` only stores it as
//! several queue records, which its smtp client joins again; the line is
//! broken on the way out, at `smtp_line_length_limit`, by the smtp agent.
//!
//! **Cost.** One `memchr` per header line, header bytes copied once, the
//! body copied with one `extend_from_slice` into an output allocated once;
//! no per-line allocation.

mod headers;
mod received;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use sluice_protocols::envelope::{ClientInfo, Envelope, Recipient};
use sluice_protocols::smtp::reply::Reply;

use crate::datetime;
use crate::rewrite::{quote_822_local, standard_form, RewriteParams};
use headers::Seen;

/// Postfix's `duplicate_filter_limit` default: how many distinct
/// recipients the duplicate filter remembers. Past it, new recipients are
/// kept without being remembered, so memory stays bounded.
pub const DUPLICATE_FILTER_LIMIT: usize = 1000;

/// Room reserved in the output beyond the content: our Received: header
/// and the added Message-Id:, Date: and From: are a few hundred bytes.
const HEADER_RESERVE: usize = 1024;

/// The main.cf parameters cleanup uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanupParams {
    /// `myhostname`: in Received: and Message-Id:.
    pub myhostname: String,
    /// The standard form's parameters (`myorigin`, `swap_bangpath`,
    /// `allow_percent_hack`, `append_at_myorigin`); the engine hands the
    /// resolver the same value, so smtpd's relay check sees what is queued.
    pub rewrite: RewriteParams,
    /// `mail_name` (`Sluice`): in Received:.
    pub mail_name: String,
    /// `header_size_limit` (102400): the most bytes of one logical header.
    pub header_size_limit: usize,
    /// `hopcount_limit` (50): reject at this many Received: headers.
    pub hopcount_limit: u32,
    /// `always_add_missing_headers`: add Message-Id:, Date:, From: for
    /// every client, not only local ones.
    pub always_add_missing_headers: bool,
}

impl CleanupParams {
    /// Postfix's defaults for the limits, `mail_name = Sluice`, and missing
    /// headers always added.
    pub fn new(myhostname: impl Into<String>, myorigin: impl Into<String>) -> Self {
        CleanupParams {
            myhostname: myhostname.into(),
            rewrite: RewriteParams::new(myorigin),
            mail_name: "Sluice".to_owned(),
            header_size_limit: 102_400,
            hopcount_limit: 50,
            always_add_missing_headers: true,
        }
    }
}

/// Where the message came from: decides the Received: header.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// smtpd: `Received: from <helo> (<name> [<addr>])` … `with ESMTP id`.
    Smtp { client: &'a ClientInfo },
    /// pickup: `Received: by <host> (Sluice, from userid N)`.
    Pickup { uid: u32 },
}

/// One message to clean up.
#[derive(Debug)]
pub struct CleanupInput<'a> {
    pub qid: &'a str,
    /// Arrival time, for the Received: and Date: headers.
    pub arrival_secs: i64,
    pub origin: Origin<'a>,
    /// Rewritten to standard form and de-duplicated in place on success;
    /// left untouched when the message is rejected.
    pub envelope: &'a mut Envelope,
    /// The message as received: CRLF lines, dot-unstuffed.
    pub content: &'a [u8],
    /// The smtpd client logged in with SMTP AUTH: Received: says `with
    /// ESMTPA` (RFC 3848).
    pub authenticated: bool,
    /// smtpd's SASL login, when `smtpd_sasl_authenticated_header = yes`:
    /// Received: then says `(Authenticated sender: <login>)`.
    pub authenticated_sender: Option<&'a str>,
    /// smtpd under TLS: the Received: header says `with ESMTPS`, and with
    /// `smtpd_tls_received_header = yes` names the protocol and cipher.
    pub tls: Option<ReceivedTls<'a>>,
    /// smtpd: the client matched the listener's
    /// `local_header_rewrite_clients`, so its missing headers are added
    /// (pickup's always are).
    pub rewrite_client: bool,
}

/// TLS on the connection a message came in on, for its Received: header.
#[derive(Clone, Copy, Debug)]
pub struct ReceivedTls<'a> {
    pub info: &'a sluice_protocols::smtp::server::TlsInfo,
    /// `smtpd_tls_received_header`: add the `(using …)` clause.
    pub clause: bool,
}

/// The message as it is queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cleaned {
    pub content: Vec<u8>,
    /// What Postfix logs after `message-id=`: the value of the message's
    /// first `Message-Id:` header (unfolded, trimmed, angle brackets
    /// included when it has them), or the one we added, `<QID@host>`; `<>`
    /// when the message has none (Postfix logs `message-id=<>`). See
    /// [`log_message_id`].
    pub message_id: String,
    /// Likewise for `Resent-Message-Id:`, when there is one (logged as
    /// `resent-message-id=`).
    pub resent_message_id: Option<String>,
    /// `Received:` headers in the queued message, ours included.
    pub hops: u32,
}

/// Why cleanup refused a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CleanupError {
    /// `hops` Received: headers (ours included) reached `hopcount_limit`:
    /// the message is probably looping.
    #[error("message rejected: hopcount exceeded")]
    TooManyHops { hops: u32 },
}

impl CleanupError {
    /// The SMTP reply for the client (Postfix's `cleanup_stat_detail()`).
    pub fn reply(&self) -> Reply {
        match self {
            CleanupError::TooManyHops { .. } => Reply::new(554, (5, 4, 0), "Error: too many hops"),
        }
    }
}

/// Cleans up one message (see the module docs), dating it in the local
/// zone as Postfix's `mail_date()`.
pub fn cleanup(params: &CleanupParams, input: CleanupInput<'_>) -> Result<Cleaned, CleanupError> {
    let date = datetime::rfc2822_local(input.arrival_secs);
    cleanup_with_date(params, input, &date)
}

/// [`cleanup`] with the RFC 5322 date of arrival given by the caller, for
/// callers that already have it and for tests that must not depend on the
/// machine's time zone. `input.arrival_secs` is not used.
pub fn cleanup_with_date(
    params: &CleanupParams,
    input: CleanupInput<'_>,
    date: &str,
) -> Result<Cleaned, CleanupError> {
    let CleanupInput {
        qid,
        origin,
        envelope,
        content,
        authenticated,
        authenticated_sender,
        tls,
        rewrite_client,
        ..
    } = input;
    let mut out = Vec::with_capacity(content.len() + HEADER_RESERVE);

    // The "for" clause names the recipient the client gave, before
    // rewriting, and only when it gave exactly one RCPT (duplicates count,
    // as in smtpd's rcpt_count).
    let received = received::Received {
        qid,
        origin: &origin,
        authenticated,
        authenticated_sender,
        tls,
        recipients: &envelope.recipients,
        date,
    };
    received::push_received(&mut out, params, &received);

    let smtp = matches!(origin, Origin::Smtp { .. });
    let mut scan = headers::scan(content, params.header_size_limit, smtp, &mut out);
    let hops = scan.received.saturating_add(1);
    if hops >= params.hopcount_limit {
        return Err(CleanupError::TooManyHops { hops });
    }

    envelope.sender = standard_form(&envelope.sender, &params.rewrite);
    remove_duplicates(&mut envelope.recipients);
    for rcpt in &mut envelope.recipients {
        rcpt.address = standard_form(&rcpt.address, &params.rewrite);
    }

    let mut message_id = scan.message_id.take();
    let mut resent_message_id = scan.resent_message_id.take();
    let pickup = matches!(origin, Origin::Pickup { .. });
    if params.always_add_missing_headers || rewrite_client || pickup {
        let (prefix, id_hdr, date_hdr, from_hdr) = if scan.resent {
            (
                "Resent-",
                Seen::ResentMessageId,
                Seen::ResentDate,
                Seen::ResentFrom,
            )
        } else {
            ("", Seen::MessageId, Seen::Date, Seen::From)
        };
        if !scan.has(id_hdr) {
            let id = format!("<{qid}@{}>", params.myhostname);
            push_header(&mut out, prefix, "Message-Id: ", id.as_bytes());
            if scan.resent {
                resent_message_id = Some(id);
            } else {
                message_id = Some(id);
            }
        }
        if !scan.has(date_hdr) {
            push_header(&mut out, prefix, "Date: ", date.as_bytes());
        }
        if !scan.has(from_hdr) {
            let from = if envelope.sender.is_empty() {
                "MAILER-DAEMON"
            } else {
                envelope.sender.as_str()
            };
            let mut value = Vec::with_capacity(from.len() + 2);
            received::push_sanitized(&mut value, &quote_822_local(from));
            push_header(&mut out, prefix, "From: ", &value);
        }
    }

    if let Some(body_start) = scan.end.body_start() {
        // The empty line that ends the header section: the message's own,
        // or the one Postfix inserts before a non-header line.
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(content.get(body_start..).unwrap_or_default());
    }

    Ok(Cleaned {
        content: out,
        message_id: message_id.unwrap_or_else(|| "<>".to_owned()),
        resent_message_id,
        hops,
    })
}

/// Postfix's cleanup log line for the message ID: `QID: message-id=<…>`.
pub fn log_message_id(qid: &str, cleaned: &Cleaned) -> String {
    format!("{qid}: message-id={}", cleaned.message_id)
}

/// Postfix's log line for a Resent-Message-Id, when the message has one:
/// `QID: resent-message-id=<…>`.
pub fn log_resent_message_id(qid: &str, cleaned: &Cleaned) -> Option<String> {
    cleaned
        .resent_message_id
        .as_ref()
        .map(|id| format!("{qid}: resent-message-id={id}"))
}

fn push_header(out: &mut Vec<u8>, prefix: &str, name: &str, value: &[u8]) {
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Removes exact duplicates, keeping the first of each: same address as
/// given, same NOTIFY, same ORCPT. Runs before rewriting, so the key is
/// Postfix's (ORCPT, NOTIFY, original address, rewritten address), the
/// rewritten address being a function of the original.
fn remove_duplicates(recipients: &mut Vec<Recipient>) {
    if recipients.len() < 2 {
        return;
    }
    let keep: Vec<bool> = {
        let mut seen: HashSet<(&str, u8, Option<&str>)> =
            HashSet::with_capacity(recipients.len().min(DUPLICATE_FILTER_LIMIT));
        recipients
            .iter()
            .map(|r| {
                let key = (r.address.as_str(), r.notify.0, r.orcpt.as_deref());
                if seen.contains(&key) {
                    false
                } else {
                    if seen.len() < DUPLICATE_FILTER_LIMIT {
                        seen.insert(key);
                    }
                    true
                }
            })
            .collect()
    };
    let mut keep = keep.into_iter();
    recipients.retain(|_| keep.next().unwrap_or(true));
}
