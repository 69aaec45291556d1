//! What qmgr hands a delivery agent, and what the agent hands back.
//!
//! Plain data shared by `engine` (qmgr, which builds requests and applies
//! results) and the agents (smtp today; lmtp, local, virtual, pipe later).
//! The message content is not in here: the agent gets it as a byte slice
//! read from the owning shard's segment.

use sluice_protocols::envelope::{MailParams, Notify};

/// One recipient of a delivery request. `index` is the recipient's
/// position in the queued message (what the queue log's status records
/// name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRcpt {
    pub index: u32,
    pub address: String,
    /// ORCPT as received (e.g. `rfc822;Jane@Example.org`), if any.
    pub orcpt: Option<String>,
    pub notify: Notify,
}

/// Where a request goes: Postfix's `transport:nexthop`. A nexthop in
/// brackets (`[mx.example.org]:2525`) skips the MX lookup.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub transport: String,
    pub nexthop: String,
}

impl Destination {
    pub fn new(transport: impl Into<String>, nexthop: impl Into<String>) -> Self {
        Destination {
            transport: transport.into(),
            nexthop: nexthop.into(),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transport, self.nexthop)
    }
}

/// One delivery: a message's recipients that share a destination, at
/// most `<transport>_destination_recipient_limit` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRequest {
    pub qid: String,
    /// Envelope sender; empty for the null sender.
    pub sender: String,
    pub mail: MailParams,
    pub arrival_us: u64,
    pub destination: Destination,
    pub recipients: Vec<DeliveryRcpt>,
}

/// The outcome for one recipient. `dsn` is the enhanced status code
/// (`2.0.0`, `4.4.1`, `5.1.1`); `reason` is Postfix's parenthesised text
/// in the log line (`250 2.0.0 Ok: queued as X`, `connect to …: Connection
/// refused`, `host h[ip] said: 550 5.1.1 … (in reply to RCPT TO command)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptOutcome {
    Delivered { dsn: String, reason: String },
    Deferred { dsn: String, reason: String },
    Bounced { dsn: String, reason: String },
}

impl RcptOutcome {
    pub fn dsn(&self) -> &str {
        match self {
            RcptOutcome::Delivered { dsn, .. }
            | RcptOutcome::Deferred { dsn, .. }
            | RcptOutcome::Bounced { dsn, .. } => dsn,
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            RcptOutcome::Delivered { reason, .. }
            | RcptOutcome::Deferred { reason, .. }
            | RcptOutcome::Bounced { reason, .. } => reason,
        }
    }
    /// Postfix's `status=` word.
    pub fn status_word(&self) -> &'static str {
        match self {
            RcptOutcome::Delivered { .. } => "sent",
            RcptOutcome::Deferred { .. } => "deferred",
            RcptOutcome::Bounced { .. } => "bounced",
        }
    }
}

/// How the attempt went for the destination as a whole: qmgr's
/// concurrency feedback. Only a failure to connect or to complete the
/// handshake counts against the destination (Postfix's rule); a server
/// that rejects recipients is a working server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feedback {
    Success,
    /// Connect or greeting/EHLO failure: counts toward the failed cohort.
    Failure,
}

/// What an agent reports after one request.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryReport {
    /// One outcome per request recipient, in the request's order.
    pub outcomes: Vec<(u32, RcptOutcome)>,
    /// `host[ip]:port`, or `none` when no connection was made.
    pub relay: String,
    /// How many times the connection had been used, counting this one
    /// (`conn_use=` is logged when > 1).
    pub conn_use: u32,
    /// Seconds spent on connection set-up (delays `c`) and transmission (`d`).
    pub setup_s: f64,
    pub transmission_s: f64,
    pub feedback: Feedback,
    /// Whether the next hop announced DSN (suppresses NOTIFY=SUCCESS
    /// notices; otherwise they say "relayed").
    pub peer_dsn: bool,
}
