//! `postsuper` actions, planned over one shard's index.
//!
//! [`plan`] turns "delete / hold / release / requeue / expire these
//! messages in these queues" into the records to commit and the lines
//! Postfix prints, without touching the disk. Both callers share it: the
//! running daemon applies the plan on the owning shard through its group
//! committer, and the offline `postsuper` appends it with
//! [`crate::log::ShardLog::append_blocking`]. Print the lines only after
//! the records are committed.
//!
//! The daemon is asked over the control socket with one request line
//! ([`AdminRequest`]: `postsuper <op> <queues|-> <target>…`) and answers
//! with [`encode_answer`]; the request and answer codecs live here so
//! that both ends agree.
//!
//! # Postfix semantics (POSTFIX-FACTS §3, postsuper.c)
//!
//! | op | option | default queues | acts on | per-message line |
//! |---|---|---|---|---|
//! | [`AdminOp::Delete`] | `-d` | hold incoming active deferred | any selected queue | `QID: removed` |
//! | [`AdminOp::Hold`] | `-h` | incoming active deferred | never `hold` (nor maildrop) | `QID: placed on hold` |
//! | [`AdminOp::Release`] | `-H` | hold | `hold` only | `QID: released from hold` |
//! | [`AdminOp::Requeue`] | `-r` | hold incoming active deferred | any selected queue | `QID: requeued` |
//! | [`AdminOp::Expire`] | `-e` | hold incoming active deferred | any selected queue | `QID: expired` |
//! | [`AdminOp::ExpireRelease`] | `-f` | hold incoming active deferred | as `-e`, and releases held mail | `QID: expired` (+ `QID: released from hold`) |
//!
//! - Queue names given explicitly replace the defaults. A message that is
//!   not in one of the selected queues — or not in the queue at all — is
//!   skipped silently: Postfix prints nothing for it.
//! - `ALL` (upper case only; the caller parses it) acts on every message
//!   in the selected queues and, as Postfix's mass operations do, prints no
//!   per-message lines: only the summary counts them.
//! - Within one plan a message is acted on at most once, so `-d -` with an
//!   ID listed twice deletes and counts it once (Postfix's second attempt
//!   finds the file gone).
//! - Summaries ([`summaries`]) are printed once per requested kind, even
//!   when the count is 0, in Postfix's fixed report order: `Requeued:`,
//!   `Deleted:`, `Placed on hold:`, `Released from hold:`,
//!   `Force-expired:`; `-f` reports both of its kinds.
//!
//! # The `corrupt` queue
//!
//! Postfix's postsuper does not know `corrupt/` (the administrator moves
//! those files by hand). Sluice keeps damaged messages in the log, where
//! no one can reach them with `rm`, so `-d` may delete them — but only
//! when `corrupt` is named explicitly (`postsuper -d ALL corrupt`,
//! `postsuper -d QID corrupt`): the defaults never include it, so
//! `postsuper -d ALL` does not silently discard quarantined evidence.
//! No other operation acts on a corrupt message (the index ignores state
//! changes for them).
//!
//! `maildrop` has no messages in Sluice (smtpd and pickup write straight to
//! the log); it is accepted as a queue name by the command line and
//! matches nothing.

use std::fmt;

use hashbrown::HashSet;

use crate::index::{Index, MessageMeta};
use crate::qid::QueueId;
use crate::record::{QueueState, Record};

/// The longest request line the daemon reads; the client splits longer
/// target lists into several requests.
pub const MAX_REQUEST_LINE: usize = 1024;

/// The request verb on the control socket.
pub const REQUEST_VERB: &str = "postsuper";

/// One `postsuper` action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminOp {
    /// `-d`: remove the message.
    Delete,
    /// `-h`: put it on hold.
    Hold,
    /// `-H`: release it from hold (to `deferred`).
    Release,
    /// `-r`: send it through cleanup again.
    Requeue,
    /// `-e`: force-expire it (it bounces at its next attempt).
    Expire,
    /// `-f`: force-expire it and release it from hold.
    ExpireRelease,
}

const DEFAULT_ALL: &[QueueState] = &[
    QueueState::Hold,
    QueueState::Incoming,
    QueueState::Active,
    QueueState::Deferred,
];
const DEFAULT_HOLD: &[QueueState] = &[
    QueueState::Incoming,
    QueueState::Active,
    QueueState::Deferred,
];
const DEFAULT_RELEASE: &[QueueState] = &[QueueState::Hold];

impl AdminOp {
    /// Every operation, in option order (`-d -h -H -r -e -f`).
    pub const ALL: [AdminOp; 6] = [
        AdminOp::Delete,
        AdminOp::Hold,
        AdminOp::Release,
        AdminOp::Requeue,
        AdminOp::Expire,
        AdminOp::ExpireRelease,
    ];

    /// The name on the control socket.
    pub fn wire_name(self) -> &'static str {
        match self {
            AdminOp::Delete => "delete",
            AdminOp::Hold => "hold",
            AdminOp::Release => "release",
            AdminOp::Requeue => "requeue",
            AdminOp::Expire => "expire",
            AdminOp::ExpireRelease => "expire-release",
        }
    }

    pub fn from_wire_name(s: &str) -> Option<AdminOp> {
        AdminOp::ALL.into_iter().find(|op| op.wire_name() == s)
    }

    /// The `postsuper` option letter.
    pub fn option(self) -> char {
        match self {
            AdminOp::Delete => 'd',
            AdminOp::Hold => 'h',
            AdminOp::Release => 'H',
            AdminOp::Requeue => 'r',
            AdminOp::Expire => 'e',
            AdminOp::ExpireRelease => 'f',
        }
    }

    pub fn from_option(c: char) -> Option<AdminOp> {
        AdminOp::ALL.into_iter().find(|op| op.option() == c)
    }

    /// The queues the operation applies to when none are named.
    pub fn default_queues(self) -> &'static [QueueState] {
        match self {
            AdminOp::Hold => DEFAULT_HOLD,
            AdminOp::Release => DEFAULT_RELEASE,
            AdminOp::Delete | AdminOp::Requeue | AdminOp::Expire | AdminOp::ExpireRelease => {
                DEFAULT_ALL
            }
        }
    }

    /// The summary kinds this operation reports.
    pub fn tallies(self) -> &'static [Tally] {
        match self {
            AdminOp::Delete => &[Tally::Deleted],
            AdminOp::Hold => &[Tally::Held],
            AdminOp::Release => &[Tally::Released],
            AdminOp::Requeue => &[Tally::Requeued],
            AdminOp::Expire => &[Tally::Expired],
            AdminOp::ExpireRelease => &[Tally::Released, Tally::Expired],
        }
    }

    /// The kind that counts the messages the operation acted on (`-f`
    /// also counts releases, as [`Tally::Released`]).
    pub fn primary_tally(self) -> Tally {
        match self {
            AdminOp::Delete => Tally::Deleted,
            AdminOp::Hold => Tally::Held,
            AdminOp::Release => Tally::Released,
            AdminOp::Requeue => Tally::Requeued,
            AdminOp::Expire | AdminOp::ExpireRelease => Tally::Expired,
        }
    }

    /// Whether the operation can act on a message in `state` at all,
    /// whatever queues were selected (see the module doc's table).
    fn acts_on(self, state: QueueState) -> bool {
        match (self, state) {
            (AdminOp::Delete, _) => true,
            (_, QueueState::Corrupt) => false,
            (AdminOp::Hold, s) => s != QueueState::Hold,
            (AdminOp::Release, s) => s == QueueState::Hold,
            (AdminOp::Requeue | AdminOp::Expire | AdminOp::ExpireRelease, _) => true,
        }
    }
}

impl fmt::Display for AdminOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// The queue state for a queue name (`hold`, `incoming`, `active`,
/// `deferred`, `corrupt`).
pub fn queue_state_from_name(name: &str) -> Option<QueueState> {
    [
        QueueState::Incoming,
        QueueState::Active,
        QueueState::Deferred,
        QueueState::Hold,
        QueueState::Corrupt,
    ]
    .into_iter()
    .find(|s| s.name() == name)
}

/// What a summary line counts, in Postfix's report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tally {
    Requeued,
    Deleted,
    Held,
    Released,
    Expired,
}

impl Tally {
    /// Postfix prints its summaries in this order, whatever the order of
    /// the options.
    pub const REPORT_ORDER: [Tally; 5] = [
        Tally::Requeued,
        Tally::Deleted,
        Tally::Held,
        Tally::Released,
        Tally::Expired,
    ];

    /// The summary's label, as Postfix writes it.
    pub fn label(self) -> &'static str {
        match self {
            Tally::Requeued => "Requeued",
            Tally::Deleted => "Deleted",
            Tally::Held => "Placed on hold",
            Tally::Released => "Released from hold",
            Tally::Expired => "Force-expired",
        }
    }
}

/// Messages acted on, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requeued: usize,
    pub deleted: usize,
    pub held: usize,
    pub released: usize,
    pub expired: usize,
}

impl Counts {
    pub fn get(&self, t: Tally) -> usize {
        match t {
            Tally::Requeued => self.requeued,
            Tally::Deleted => self.deleted,
            Tally::Held => self.held,
            Tally::Released => self.released,
            Tally::Expired => self.expired,
        }
    }

    pub fn slot(&mut self, t: Tally) -> &mut usize {
        match t {
            Tally::Requeued => &mut self.requeued,
            Tally::Deleted => &mut self.deleted,
            Tally::Held => &mut self.held,
            Tally::Released => &mut self.released,
            Tally::Expired => &mut self.expired,
        }
    }

    /// Adds `other` (e.g. another shard's plan) to these counts.
    pub fn add(&mut self, other: &Counts) {
        for t in Tally::REPORT_ORDER {
            *self.slot(t) += other.get(t);
        }
    }
}

/// Which messages an operation names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Qid(QueueId),
    /// Every message in the selected queues (`ALL`).
    All,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Qid(q) => write!(f, "{q}"),
            Target::All => f.write_str("ALL"),
        }
    }
}

/// What an operation will do to one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// To commit as one batch, in order.
    pub records: Vec<Record>,
    /// Per-message lines in Postfix's words, without the `postsuper: `
    /// prefix (`4jcJb04xz60: removed`). Print them after the commit.
    pub lines: Vec<String>,
    pub counts: Counts,
}

impl Plan {
    /// Nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Plans `op` on `targets` over one shard's `index`. `queues`: the queues
/// named on the command line, or `None` for the operation's defaults. See
/// the module doc for the rules.
pub fn plan(index: &Index, op: AdminOp, targets: &[Target], queues: Option<&[QueueState]>) -> Plan {
    let selected = queues.unwrap_or(op.default_queues());
    let eligible = |m: &MessageMeta| selected.contains(&m.state) && op.acts_on(m.state);
    let mut p = Plan::default();
    let mut seen: HashSet<QueueId> = HashSet::new();
    for target in targets {
        match target {
            Target::Qid(qid) => {
                if let Some(m) = index.get(qid).filter(|m| eligible(m)) {
                    if seen.insert(m.qid.clone()) {
                        act(&mut p, op, m, true);
                    }
                }
            }
            Target::All => {
                let mut all: Vec<&MessageMeta> = index.iter().filter(|m| eligible(m)).collect();
                // The index is a hash map: sort for a reproducible log.
                all.sort_unstable_by(|a, b| (a.arrival_us, &a.qid).cmp(&(b.arrival_us, &b.qid)));
                for m in all {
                    if seen.insert(m.qid.clone()) {
                        act(&mut p, op, m, false);
                    }
                }
            }
        }
    }
    p
}

/// Adds one message's records, line (when `named`) and count.
fn act(p: &mut Plan, op: AdminOp, m: &MessageMeta, named: bool) {
    let qid = m.qid.clone();
    let say = |p: &mut Plan, what: &str| {
        if named {
            p.lines.push(format!("{qid}: {what}"));
        }
    };
    match op {
        AdminOp::Delete => {
            p.records.push(Record::Delete { qid: qid.clone() });
            say(p, "removed");
            p.counts.deleted += 1;
        }
        AdminOp::Hold => {
            p.records.push(Record::Hold { qid: qid.clone() });
            say(p, "placed on hold");
            p.counts.held += 1;
        }
        AdminOp::Release => {
            p.records.push(Record::Release { qid: qid.clone() });
            say(p, "released from hold");
            p.counts.released += 1;
        }
        AdminOp::Requeue => {
            p.records.push(Record::Requeue { qid: qid.clone() });
            say(p, "requeued");
            p.counts.requeued += 1;
        }
        AdminOp::Expire | AdminOp::ExpireRelease => {
            p.records.push(Record::Expire { qid: qid.clone() });
            say(p, "expired");
            p.counts.expired += 1;
            if op == AdminOp::ExpireRelease && m.state == QueueState::Hold {
                p.records.push(Record::Release { qid: qid.clone() });
                say(p, "released from hold");
                p.counts.released += 1;
            }
        }
    }
}

/// One summary line without the `postsuper: ` prefix:
/// `Deleted: 1 message`, `Placed on hold: 0 messages`.
pub fn summary(tally: Tally, n: usize) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{}: {n} message{s}", tally.label())
}

/// The summary lines for a run that requested `ops`: one per requested
/// kind, even when 0, in Postfix's report order.
pub fn summaries(ops: &[AdminOp], counts: &Counts) -> Vec<String> {
    Tally::REPORT_ORDER
        .into_iter()
        .filter(|t| ops.iter().any(|op| op.tallies().contains(t)))
        .map(|t| summary(t, counts.get(t)))
        .collect()
}

/// Why a request or answer line is not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("not a postsuper request")]
    NotARequest,
    #[error("unknown postsuper operation {0:?}")]
    UnknownOp(String),
    #[error("invalid queue name {0:?}")]
    UnknownQueue(String),
    #[error("invalid mail queue id: {0}")]
    InvalidQueueId(String),
    #[error("postsuper request without queue IDs")]
    NoTargets,
    #[error("malformed answer line {0:?}")]
    MalformedAnswer(String),
}

/// One operation sent to a running daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    pub op: AdminOp,
    /// `None`: the operation's default queues.
    pub queues: Option<Vec<QueueState>>,
    pub targets: Vec<Target>,
}

impl AdminRequest {
    /// The request line without its `\n`:
    /// `postsuper delete - 4jcJb04xz60 ALL`,
    /// `postsuper hold deferred,incoming ALL`.
    pub fn encode(&self) -> String {
        let mut s = format!("{REQUEST_VERB} {} ", self.op.wire_name());
        match &self.queues {
            None => s.push('-'),
            Some(qs) => {
                let names: Vec<&str> = qs.iter().map(|q| q.name()).collect();
                s.push_str(&names.join(","));
            }
        }
        for t in &self.targets {
            s.push(' ');
            s.push_str(&t.to_string());
        }
        s
    }

    /// Parses a request line (a trailing `\n` or `\r\n` is ignored).
    pub fn decode(line: &str) -> Result<AdminRequest, AdminError> {
        let line = line.trim_end_matches(['\n', '\r']);
        let mut words = line.split(' ').filter(|w| !w.is_empty());
        if words.next() != Some(REQUEST_VERB) {
            return Err(AdminError::NotARequest);
        }
        let op_word = words.next().ok_or(AdminError::NotARequest)?;
        let op = AdminOp::from_wire_name(op_word)
            .ok_or_else(|| AdminError::UnknownOp(op_word.to_string()))?;
        let queues = match words.next().ok_or(AdminError::NotARequest)? {
            "-" => None,
            list => Some(
                list.split(',')
                    .map(|n| {
                        queue_state_from_name(n)
                            .ok_or_else(|| AdminError::UnknownQueue(n.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let targets = words
            .map(|w| match w {
                "ALL" => Ok(Target::All),
                id => QueueId::parse(id)
                    .map(Target::Qid)
                    .map_err(|_| AdminError::InvalidQueueId(id.to_string())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(AdminError::NoTargets);
        }
        Ok(AdminRequest {
            op,
            queues,
            targets,
        })
    }
}

/// [`AdminRequest::encode`] as a function.
pub fn encode_request(op: AdminOp, queues: Option<&[QueueState]>, targets: &[Target]) -> String {
    AdminRequest {
        op,
        queues: queues.map(<[QueueState]>::to_vec),
        targets: targets.to_vec(),
    }
    .encode()
}

/// The operation, queues (`None`: the defaults) and targets of a request
/// line ([`AdminRequest::decode`], as a tuple).
pub fn decode_request(line: &str) -> Result<RequestParts, AdminError> {
    let r = AdminRequest::decode(line)?;
    Ok((r.op, r.queues, r.targets))
}

/// What [`decode_request`] returns: operation, queues, targets.
pub type RequestParts = (AdminOp, Option<Vec<QueueState>>, Vec<Target>);

/// Splits `targets` into request lines of at most [`MAX_REQUEST_LINE`]
/// bytes each, newline included (a long `postsuper -d -` list).
pub fn encode_requests(
    op: AdminOp,
    queues: Option<&[QueueState]>,
    targets: &[Target],
) -> Vec<String> {
    let empty = encode_request(op, queues, &[]);
    let mut out = Vec::new();
    let mut line = empty.clone();
    let mut n = 0;
    for t in targets {
        let word = t.to_string();
        // +1 for the space, +1 for the final newline.
        if n > 0 && line.len() + 1 + word.len() + 1 > MAX_REQUEST_LINE {
            out.push(std::mem::replace(&mut line, empty.clone()));
            n = 0;
        }
        line.push(' ');
        line.push_str(&word);
        n += 1;
    }
    if n > 0 {
        out.push(line);
    }
    out
}

/// The daemon's answer to a request whose plan was committed: the plan's
/// lines, `count N` (`count EXPIRED RELEASED` for `expire-release`), `.`.
pub fn encode_answer(op: AdminOp, plan: &Plan) -> String {
    let mut s = String::new();
    for l in &plan.lines {
        s.push_str(l);
        s.push('\n');
    }
    match op {
        AdminOp::ExpireRelease => s.push_str(&format!(
            "count {} {}\n",
            plan.counts.expired, plan.counts.released
        )),
        _ => s.push_str(&format!("count {}\n", plan.counts.get(op.primary_tally()))),
    }
    s.push_str(".\n");
    s
}

/// The daemon's answer when the request cannot be carried out (a bad
/// request, or a failed commit): `error <text>`, `.`.
pub fn encode_error_answer(text: &str) -> String {
    // One line: the text must not end the answer early.
    let text: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("error {text}\n.\n")
}

/// One line of a daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerLine {
    /// A per-message line (`QID: removed`).
    Message(String),
    /// The counts for the request's operation.
    Count(Counts),
    Error(String),
    /// `.`: the answer is complete.
    End,
}

/// Parses one answer line for a request for `op` (trailing newline
/// ignored).
pub fn decode_answer_line(op: AdminOp, line: &str) -> Result<AnswerLine, AdminError> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line == "." {
        return Ok(AnswerLine::End);
    }
    if let Some(text) = line.strip_prefix("error ") {
        return Ok(AnswerLine::Error(text.to_string()));
    }
    if let Some(rest) = line.strip_prefix("count ") {
        let bad = || AdminError::MalformedAnswer(line.to_string());
        let nums = rest
            .split(' ')
            .map(|w| w.parse::<usize>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut counts = Counts::default();
        match (op, nums.as_slice()) {
            (AdminOp::ExpireRelease, [expired, released]) => {
                counts.expired = *expired;
                counts.released = *released;
            }
            (_, [n]) => *counts.slot(op.primary_tally()) = *n,
            _ => return Err(bad()),
        }
        return Ok(AnswerLine::Count(counts));
    }
    // Per-message lines are `QID: what happened`.
    match line.split_once(": ") {
        Some((id, _)) if QueueId::parse(id).is_ok() => Ok(AnswerLine::Message(line.to_string())),
        _ => Err(AdminError::MalformedAnswer(line.to_string())),
    }
}

#[cfg(test)]
mod tests;
