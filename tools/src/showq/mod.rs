//! showq: the queue listing, formatted as `postqueue -p` (`mailq`) and
//! `postqueue -j` print it.
//!
//! Role: pure formatting. The engine scans its queue and hands over one
//! [`ShowqEntry`] per message; this module does what Postfix's showq(8)
//! daemon and the postqueue(1) client do together to its text: the null
//! sender becomes `MAILER-DAEMON` (`empty_address_recipient`), local parts
//! that are not RFC 822 dot-strings are quoted (`quote_822_local`), control
//! characters become `?` (`printable`), recipients with a delay reason are
//! listed first, grouped by reason, and the result is laid out byte for
//! byte as Postfix does (see `/work/shared/POSTFIX-FACTS.md` §2 and
//! Postfix's `showq_compat.c` and `showq_json.c`).
//!
//! Trust: none. Addresses and reasons come from SMTP clients and remote
//! servers; nothing in them can break a line, a column or a JSON string.
//!
//! Disk and network: none. Output goes to any [`std::io::Write`]; the
//! streaming writers ([`MailqWriter`], [`JsonWriter`]) take one entry at a
//! time, so a listing of 100,000 messages needs memory for one message,
//! not for the listing. [`format_mailq`] and [`format_json`] buffer their
//! output themselves (64 KiB), so an unbuffered stdout or socket is fine.
//!
//! A write error (including `BrokenPipe` from `mailq | head`) is returned
//! as is: Postfix stops quietly on EPIPE, which is the caller's choice to
//! make.
//!
//! ```
//! use sluice_tools::showq::{format_mailq_at, ShowqEntry, ShowqRecipient};
//! use sluice_agents::datetime::BrokenDownTime;
//!
//! let entry = ShowqEntry {
//!     queue_name: "deferred".into(),
//!     queue_id: "451ED9948E3".into(),
//!     arrival_time: 1_795_890_085,
//!     message_size: 229,
//!     forced_expire: false,
//!     sender: "alice@example.com".into(),
//!     recipients: vec![ShowqRecipient {
//!         address: "bob@example.org".into(),
//!         orig_address: None,
//!         reason: Some("deferred transport".into()),
//!     }],
//! };
//! let mut out = Vec::new();
//! format_mailq_at(&[entry], false, BrokenDownTime::utc, &mut out).unwrap();
//! let text = String::from_utf8(out).unwrap();
//! let lines: Vec<&str> = text.lines().collect();
//! assert_eq!(lines[0], "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------");
//! assert_eq!(lines[1], "451ED9948E3     229 Sat Nov 28 18:21:25  alice@example.com");
//! assert_eq!(lines[2], format!("{}(deferred transport)", " ".repeat(58)));
//! assert_eq!(lines[3], format!("{}bob@example.org", " ".repeat(41)));
//! assert_eq!(lines[4..], ["", "-- 0 Kbytes in 1 Request."]);
//! ```

pub mod address;
mod compat;
mod json;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use compat::{format_mailq, format_mailq_at, MailqWriter};
pub use json::{format_json, JsonWriter};

/// The queue names showq reports, as Postfix spells them.
pub const QUEUE_MAILDROP: &str = "maildrop";
pub const QUEUE_INCOMING: &str = "incoming";
pub const QUEUE_ACTIVE: &str = "active";
pub const QUEUE_DEFERRED: &str = "deferred";
pub const QUEUE_HOLD: &str = "hold";
pub const QUEUE_CORRUPT: &str = "corrupt";

/// Converts a Unix time to the broken-down time shown in the listing.
/// [`sluice_agents::datetime::BrokenDownTime::local`] for real output,
/// `BrokenDownTime::utc` in tests.
pub type LocalTimeFn = fn(i64) -> sluice_agents::datetime::BrokenDownTime;

/// One recipient still to be delivered. Delivered recipients are not
/// listed, so the engine leaves them out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShowqRecipient {
    /// The envelope recipient, in internal (unquoted) form.
    pub address: String,
    /// The original recipient (ORCPT or before aliasing), if different
    /// records exist; `-j` shows `address` when absent.
    pub orig_address: Option<String>,
    /// Why the last delivery attempt was deferred (the defer log text);
    /// `None` or empty when there was no attempt yet.
    pub reason: Option<String>,
}

/// One queued message, as the engine knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShowqEntry {
    /// `maildrop`, `incoming`, `active`, `deferred`, `hold` or `corrupt`.
    pub queue_name: String,
    pub queue_id: String,
    /// Unix seconds.
    pub arrival_time: i64,
    /// Content size in bytes (for maildrop: the file size).
    pub message_size: u64,
    /// `postsuper -e` was applied: bounce at the next attempt.
    pub forced_expire: bool,
    /// The envelope sender in internal form; `""` is the null sender.
    pub sender: String,
    pub recipients: Vec<ShowqRecipient>,
}

impl ShowqRecipient {
    /// The delay reason, with "empty" and "absent" the same thing, as
    /// Postfix treats an empty `why` attribute.
    fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or("")
    }
}

/// Fills `order` with the indices of `recipients` in listing order:
/// recipients with a reason first, grouped by reason in order of first
/// appearance (as the defer log of one delivery attempt lists them), then
/// the rest in envelope order. Allocation-free unless some recipient has
/// a reason; `order` is reused across messages.
fn listing_order(recipients: &[ShowqRecipient], order: &mut Vec<usize>) {
    order.clear();
    order.extend(
        recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.reason().is_empty())
            .map(|(i, _)| i),
    );
    let with_reason = order.len();
    if with_reason > 1 {
        // Rank each reason by where it first appears; a stable sort by
        // rank groups equal reasons and keeps envelope order inside a group.
        let mut rank: HashMap<&str, usize> = HashMap::new();
        for &i in order.iter() {
            let next = rank.len();
            rank.entry(recipients[i].reason()).or_insert(next);
        }
        if rank.len() > 1 {
            order.sort_by_key(|&i| rank.get(recipients[i].reason()).copied());
        }
    }
    order.extend(
        recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| r.reason().is_empty())
            .map(|(i, _)| i),
    );
}
