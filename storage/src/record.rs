//! Records stored in the queue log, and their framing.
//!
//! # Framing
//!
//! Every record is a 44-byte header followed by its payload. Integers are
//! little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 4  | magic `A7 53 4C 72` (`\xA7SLr`; never zero, so preallocated zeros are never a record) |
//! | 4  | 1  | record type ([`RecordKind`]) |
//! | 5  | 1  | queue ID length, 1..=17 |
//! | 6  | 2  | reserved, zero |
//! | 8  | 8  | payload length |
//! | 16 | 4  | payload CRC32C |
//! | 20 | 20 | queue ID, ASCII, zero-padded |
//! | 40 | 4  | header CRC32C of bytes 0..40, seeded with the segment's salt |
//!
//! The queue ID is in the header, under the header CRC, so that a record
//! whose payload is damaged still names its message (which then goes to
//! the `corrupt` queue instead of vanishing).
//!
//! The header CRC is seeded with a random 32-bit *salt* chosen when a
//! segment is created and kept in the segment header
//! ([`crate::segment::SegmentHeader`]). When the scanner resynchronises
//! after damage it looks for the magic inside arbitrary bytes, message
//! content included; the salt means that a record someone mailed to us
//! inside a message body does not verify. [`encode`] and [`decode`] use
//! salt 0 (stand-alone records); the log re-seals headers with the
//! segment's salt when it places a batch.
//!
//! Payloads (strings and byte strings are a u64 length then the bytes;
//! optional values a 0/1 tag then the value):
//!
//! - `Message`: arrival µs (u64); sender; recipient count (u32), each with
//!   address, NOTIFY bits (u8), optional ORCPT; optional SIZE (u64);
//!   BODY (u8); SMTPUTF8 (u8); RET (u8, 0 none, 1 FULL, 2 HDRS); optional
//!   ENVID; optional client (name; address family 4 or 6 and its bytes;
//!   port u16; optional HELO; protocol u8); the content, last.
//! - `RcptStatus`: recipient index (u32); status (u8: 1 delivered,
//!   2 deferred, 3 bounced); deferred: reason and next attempt µs;
//!   bounced: reason.
//! - `Done`, `Delete`, `Hold`, `Release`, `Requeue`, `Expire`: empty.
//! - `Void`: segment (u64), from (u64); its header's queue ID is the
//!   sentinel [`VOID_QID`] (`VOID`, a shape no generator makes). Written
//!   only by the log itself, at the start of a new segment, to say that a
//!   batch whose fdatasync failed was never acknowledged (see
//!   [`crate::log`], "Refused batches").
//!
//! Decoding is bounded by the buffer it is given and never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sluice_protocols::envelope::{
    Body, ClientInfo, Envelope, MailParams, Notify, Protocol, Recipient, Ret,
};

use std::sync::LazyLock;

use crate::qid::{QueueId, MAX_QUEUE_ID_LEN};
use crate::wire::{self, Field, Reader};

/// The queue ID in a `Void` record's header. Generated IDs always carry a
/// lower-case `z` before the shard, so no message has this one.
pub static VOID_QID: LazyLock<QueueId> =
    LazyLock::new(|| QueueId::parse("VOID").expect("VOID is a valid queue ID"));

/// Bytes before every payload.
pub const RECORD_HEADER_LEN: usize = 44;
/// First bytes of every record header.
pub const RECORD_MAGIC: [u8; 4] = [0xA7, b'S', b'L', b'r'];
/// Header bytes covered by the header CRC.
const HEADER_CRC_AT: usize = 40;
const QID_AT: usize = 20;
const QID_FIELD_LEN: usize = 20;

/// Postfix's queue names, which are states in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueState {
    Incoming,
    Active,
    Deferred,
    Hold,
    Corrupt,
}

impl QueueState {
    /// The queue name `postqueue`, `postsuper` and `postcat` use.
    pub fn name(self) -> &'static str {
        match self {
            QueueState::Incoming => "incoming",
            QueueState::Active => "active",
            QueueState::Deferred => "deferred",
            QueueState::Hold => "hold",
            QueueState::Corrupt => "corrupt",
        }
    }
}

/// One message as stored: envelope, client facts and content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub qid: QueueId,
    pub arrival_us: u64,
    pub envelope: Envelope,
    pub client: Option<ClientInfo>,
    pub content: Vec<u8>,
}

/// The outcome of one delivery attempt for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipientStatus {
    Delivered,
    Deferred {
        reason: String,
        next_attempt_us: u64,
    },
    Bounced {
        reason: String,
    },
}

/// A record in the queue log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Message(MessageRecord),
    /// Outcome for recipient index `rcpt` (its position in the envelope).
    RcptStatus {
        qid: QueueId,
        rcpt: u32,
        status: RecipientStatus,
    },
    /// Every recipient finished: the message leaves the queue.
    Done {
        qid: QueueId,
    },
    /// `postsuper -d`.
    Delete {
        qid: QueueId,
    },
    /// `postsuper -h`.
    Hold {
        qid: QueueId,
    },
    /// `postsuper -H`.
    Release {
        qid: QueueId,
    },
    /// `postsuper -r`.
    Requeue {
        qid: QueueId,
    },
    /// `postsuper -e` (and `-f`, with a `Release`).
    Expire {
        qid: QueueId,
    },
    /// Every record at or after offset `from` in segment `segment` was
    /// written by a batch that was never acknowledged (its write or
    /// fdatasync failed): recovery must not apply it. `from` 0 voids the
    /// whole segment. Written by the log only; it names no message.
    Void {
        segment: u64,
        from: u64,
    },
}

/// Record type byte in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    Message = 1,
    RcptStatus = 2,
    Done = 3,
    Delete = 4,
    Hold = 5,
    Release = 6,
    Requeue = 7,
    Expire = 8,
    Void = 9,
}

impl RecordKind {
    pub fn from_u8(v: u8) -> Option<RecordKind> {
        Some(match v {
            1 => RecordKind::Message,
            2 => RecordKind::RcptStatus,
            3 => RecordKind::Done,
            4 => RecordKind::Delete,
            5 => RecordKind::Hold,
            6 => RecordKind::Release,
            7 => RecordKind::Requeue,
            8 => RecordKind::Expire,
            9 => RecordKind::Void,
            _ => return None,
        })
    }
}

impl Record {
    pub fn qid(&self) -> &QueueId {
        match self {
            Record::Message(m) => &m.qid,
            Record::RcptStatus { qid, .. }
            | Record::Done { qid }
            | Record::Delete { qid }
            | Record::Hold { qid }
            | Record::Release { qid }
            | Record::Requeue { qid }
            | Record::Expire { qid } => qid,
            Record::Void { .. } => &VOID_QID,
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Message(_) => RecordKind::Message,
            Record::RcptStatus { .. } => RecordKind::RcptStatus,
            Record::Done { .. } => RecordKind::Done,
            Record::Delete { .. } => RecordKind::Delete,
            Record::Hold { .. } => RecordKind::Hold,
            Record::Release { .. } => RecordKind::Release,
            Record::Requeue { .. } => RecordKind::Requeue,
            Record::Expire { .. } => RecordKind::Expire,
            Record::Void { .. } => RecordKind::Void,
        }
    }
}

/// Why bytes are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header or payload runs past the end of the bytes given: a torn
    /// write, or a header whose length field is damaged.
    #[error("record truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: u64, available: u64 },
    #[error("no record magic")]
    BadMagic,
    #[error("record header checksum mismatch")]
    HeaderChecksum,
    /// The header checksum matched but a field is out of range.
    #[error("malformed record header ({0})")]
    BadHeader(&'static str),
    #[error("{qid}: record payload checksum mismatch")]
    PayloadChecksum { qid: QueueId },
    #[error("{qid}: unknown record type {kind}")]
    UnknownType { qid: QueueId, kind: u8 },
    #[error("{qid}: malformed record payload ({field})")]
    Malformed { qid: QueueId, field: &'static str },
}

impl DecodeError {
    /// The message the damaged record belongs to, when its header
    /// verified.
    pub fn qid(&self) -> Option<&QueueId> {
        match self {
            DecodeError::PayloadChecksum { qid }
            | DecodeError::UnknownType { qid, .. }
            | DecodeError::Malformed { qid, .. } => Some(qid),
            _ => None,
        }
    }
}

/// A verified record header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The raw type byte (see [`RecordKind::from_u8`]).
    pub kind: u8,
    pub qid: QueueId,
    pub payload_len: u64,
    pub payload_crc: u32,
}

impl RecordHeader {
    /// Header plus payload.
    /// Header plus payload (saturating: a crafted header may claim any
    /// length, and is then simply longer than any buffer).
    pub fn record_len(&self) -> u64 {
        (RECORD_HEADER_LEN as u64).saturating_add(self.payload_len)
    }
}

/// Appends `record`, framed, to `out` (header sealed with salt 0; see the
/// module doc).
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    encode_sealed(record, 0, out);
}

/// Appends `record` framed with its header sealed by `salt`; returns the
/// bytes appended.
pub(crate) fn encode_sealed(record: &Record, salt: u32, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(start + RECORD_HEADER_LEN, 0);
    encode_payload(record, out);
    let payload = &out[start + RECORD_HEADER_LEN..];
    let payload_len = payload.len() as u64;
    let payload_crc = crc32c::crc32c(payload);
    let qid = record.qid().as_str().as_bytes();
    let h = &mut out[start..start + RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&RECORD_MAGIC);
    h[4] = record.kind() as u8;
    h[5] = qid.len() as u8; // QueueId guarantees 1..=17
    h[8..16].copy_from_slice(&payload_len.to_le_bytes());
    h[16..20].copy_from_slice(&payload_crc.to_le_bytes());
    h[QID_AT..QID_AT + qid.len()].copy_from_slice(qid);
    reseal(h, salt);
    // Paired assertion (the reader checks again): what we framed reads
    // back as the same header.
    let check = decode_header(&out[start..], salt);
    assert!(
        matches!(&check, Ok(h) if h.payload_len == payload_len && h.payload_crc == payload_crc && h.qid == *record.qid()),
        "record framing does not verify: {check:?}"
    );
    out.len() - start
}

/// Recomputes the header CRC of a framed record with `salt`.
pub(crate) fn reseal(header: &mut [u8], salt: u32) {
    let crc = crc32c::crc32c_append(salt, &header[..HEADER_CRC_AT]);
    header[HEADER_CRC_AT..RECORD_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Verifies the header at the start of `buf` (magic, CRC with `salt`,
/// fields). Does not look at the payload.
pub fn decode_header(buf: &[u8], salt: u32) -> Result<RecordHeader, DecodeError> {
    let Some(h) = buf.get(..RECORD_HEADER_LEN) else {
        return Err(DecodeError::Truncated {
            needed: RECORD_HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    };
    if h[0..4] != RECORD_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if crc32c::crc32c_append(salt, &h[..HEADER_CRC_AT]) != le_u32(&h[HEADER_CRC_AT..]) {
        return Err(DecodeError::HeaderChecksum);
    }
    if h[6..8] != [0, 0] {
        return Err(DecodeError::BadHeader("reserved bytes"));
    }
    let qid = header_qid(h).ok_or(DecodeError::BadHeader("queue ID"))?;
    Ok(RecordHeader {
        kind: h[4],
        qid,
        payload_len: le_u64(&h[8..16]),
        payload_crc: le_u32(&h[16..20]),
    })
}

/// The queue ID field of a header, if well-formed (zero padding included).
/// Used unverified, as a best guess, on a header that failed its CRC.
pub(crate) fn header_qid(h: &[u8]) -> Option<QueueId> {
    let len = usize::from(*h.get(5)?);
    let field = h.get(QID_AT..QID_AT + QID_FIELD_LEN)?;
    if len == 0 || len > MAX_QUEUE_ID_LEN || field[len..].iter().any(|&b| b != 0) {
        return None;
    }
    let s = std::str::from_utf8(&field[..len]).ok()?;
    QueueId::parse(s).ok()
}

/// Decodes one stand-alone record (salt 0) from the start of `buf`;
/// returns it and its framed length.
pub fn decode(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
    decode_sealed(buf, 0)
}

/// Decodes one record whose header is sealed with `salt`.
pub fn decode_sealed(buf: &[u8], salt: u32) -> Result<(Record, usize), DecodeError> {
    let (record, len, _) = decode_inner(buf, salt, true)?;
    Ok((record, len))
}

/// As [`decode_sealed`] but a `Message`'s content is checked, not copied:
/// the returned record has empty content, and its length is returned
/// separately (for replay, which needs only the envelope).
pub(crate) fn decode_meta(buf: &[u8], salt: u32) -> Result<(Record, usize, u64), DecodeError> {
    decode_inner(buf, salt, false)
}

fn decode_inner(
    buf: &[u8],
    salt: u32,
    copy_content: bool,
) -> Result<(Record, usize, u64), DecodeError> {
    let h = decode_header(buf, salt)?;
    let total = h.record_len();
    if total > buf.len() as u64 {
        return Err(DecodeError::Truncated {
            needed: total,
            available: buf.len() as u64,
        });
    }
    // total <= buf.len(), so it fits in usize.
    let total = total as usize;
    let payload = &buf[RECORD_HEADER_LEN..total];
    if crc32c::crc32c(payload) != h.payload_crc {
        return Err(DecodeError::PayloadChecksum { qid: h.qid });
    }
    let Some(kind) = RecordKind::from_u8(h.kind) else {
        return Err(DecodeError::UnknownType {
            qid: h.qid,
            kind: h.kind,
        });
    };
    match decode_payload(kind, &h.qid, payload, copy_content) {
        Ok((record, content_len)) => Ok((record, total, content_len)),
        Err(field) => Err(DecodeError::Malformed { qid: h.qid, field }),
    }
}

fn encode_payload(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Message(m) => encode_message(m, out),
        Record::RcptStatus { rcpt, status, .. } => {
            wire::put_u32(out, *rcpt);
            match status {
                RecipientStatus::Delivered => wire::put_u8(out, 1),
                RecipientStatus::Deferred {
                    reason,
                    next_attempt_us,
                } => {
                    wire::put_u8(out, 2);
                    wire::put_str(out, reason);
                    wire::put_u64(out, *next_attempt_us);
                }
                RecipientStatus::Bounced { reason } => {
                    wire::put_u8(out, 3);
                    wire::put_str(out, reason);
                }
            }
        }
        Record::Done { .. }
        | Record::Delete { .. }
        | Record::Hold { .. }
        | Record::Release { .. }
        | Record::Requeue { .. }
        | Record::Expire { .. } => {}
        Record::Void { segment, from } => {
            wire::put_u64(out, *segment);
            wire::put_u64(out, *from);
        }
    }
}

fn encode_message(m: &MessageRecord, out: &mut Vec<u8>) {
    wire::put_u64(out, m.arrival_us);
    encode_envelope(&m.envelope, out);
    match &m.client {
        None => wire::put_u8(out, 0),
        Some(c) => {
            wire::put_u8(out, 1);
            wire::put_str(out, &c.name);
            match c.addr {
                IpAddr::V4(a) => {
                    wire::put_u8(out, 4);
                    out.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    wire::put_u8(out, 6);
                    out.extend_from_slice(&a.octets());
                }
            }
            wire::put_u16(out, c.port);
            wire::put_opt_str(out, c.helo.as_deref());
            wire::put_u8(
                out,
                match c.protocol {
                    Protocol::Smtp => 0,
                    Protocol::Esmtp => 1,
                    Protocol::Local => 2,
                },
            );
        }
    }
    wire::put_bytes(out, &m.content);
}

fn decode_payload(
    kind: RecordKind,
    qid: &QueueId,
    payload: &[u8],
    copy_content: bool,
) -> Result<(Record, u64), Field> {
    let mut r = Reader::new(payload);
    let qid = qid.clone();
    let mut content_len = 0;
    let record = match kind {
        RecordKind::Message => {
            let (m, len) = decode_message(qid, &mut r, copy_content)?;
            content_len = len;
            Record::Message(m)
        }
        RecordKind::RcptStatus => {
            let rcpt = r.u32("recipient index")?;
            let status = match r.u8("recipient status")? {
                1 => RecipientStatus::Delivered,
                2 => RecipientStatus::Deferred {
                    reason: r.string("defer reason")?,
                    next_attempt_us: r.u64("next attempt")?,
                },
                3 => RecipientStatus::Bounced {
                    reason: r.string("bounce reason")?,
                },
                _ => return Err("recipient status"),
            };
            Record::RcptStatus { qid, rcpt, status }
        }
        RecordKind::Done => Record::Done { qid },
        RecordKind::Delete => Record::Delete { qid },
        RecordKind::Hold => Record::Hold { qid },
        RecordKind::Release => Record::Release { qid },
        RecordKind::Requeue => Record::Requeue { qid },
        RecordKind::Expire => Record::Expire { qid },
        RecordKind::Void => {
            if qid != *VOID_QID {
                return Err("void record's queue ID");
            }
            Record::Void {
                segment: r.u64("void segment")?,
                from: r.u64("void offset")?,
            }
        }
    };
    if !r.is_empty() {
        return Err("trailing bytes");
    }
    Ok((record, content_len))
}

fn decode_message(
    qid: QueueId,
    r: &mut Reader<'_>,
    copy_content: bool,
) -> Result<(MessageRecord, u64), Field> {
    let arrival_us = r.u64("arrival time")?;
    let envelope = decode_envelope(r)?;
    let client = if r.bool("client")? {
        let name = r.string("client name")?;
        let addr = match r.u8("client address")? {
            4 => {
                let b: [u8; 4] = r
                    .take(4, "client address")?
                    .try_into()
                    .map_err(|_| "client address")?;
                IpAddr::V4(Ipv4Addr::from(b))
            }
            6 => {
                let b: [u8; 16] = r
                    .take(16, "client address")?
                    .try_into()
                    .map_err(|_| "client address")?;
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return Err("client address"),
        };
        let port = r.u16("client port")?;
        let helo = r.opt_str("helo")?;
        let protocol = match r.u8("protocol")? {
            0 => Protocol::Smtp,
            1 => Protocol::Esmtp,
            2 => Protocol::Local,
            _ => return Err("protocol"),
        };
        Some(ClientInfo {
            name,
            addr,
            port,
            helo,
            protocol,
        })
    } else {
        None
    };
    let content = r.bytes("content")?;
    let message = MessageRecord {
        qid,
        arrival_us,
        envelope,
        client,
        content: if copy_content {
            content.to_vec()
        } else {
            Vec::new()
        },
    };
    Ok((message, content.len() as u64))
}

/// Appends the envelope fields shared by `Message` records and maildrop
/// files: sender; recipient count (u32), each with address, NOTIFY bits
/// (u8), optional ORCPT; optional SIZE (u64); BODY (u8); SMTPUTF8 (u8);
/// RET (u8, 0 none, 1 FULL, 2 HDRS); optional ENVID.
///
/// Both on-disk formats embed this sequence, so it lives in one place.
pub(crate) fn encode_envelope(env: &Envelope, out: &mut Vec<u8>) {
    wire::put_str(out, &env.sender);
    // An envelope with more than 4 billion recipients cannot reach us:
    // smtpd_recipient_limit and the content size bound it long before.
    wire::put_u32(out, u32::try_from(env.recipients.len()).unwrap_or(u32::MAX));
    for r in env.recipients.iter().take(u32::MAX as usize) {
        wire::put_str(out, &r.address);
        wire::put_u8(out, r.notify.0);
        wire::put_opt_str(out, r.orcpt.as_deref());
    }
    match env.mail.size {
        None => wire::put_u8(out, 0),
        Some(size) => {
            wire::put_u8(out, 1);
            wire::put_u64(out, size);
        }
    }
    wire::put_u8(
        out,
        match env.mail.body {
            Body::Unspecified => 0,
            Body::SevenBit => 1,
            Body::EightBitMime => 2,
            Body::BinaryMime => 3,
        },
    );
    wire::put_u8(out, u8::from(env.mail.smtputf8));
    wire::put_u8(out, env.mail.ret.map_or(0, |r| r as u8));
    wire::put_opt_str(out, env.mail.envid.as_deref());
}

/// Reads the fields written by [`encode_envelope`].
pub(crate) fn decode_envelope(r: &mut Reader<'_>) -> Result<Envelope, Field> {
    let sender = r.string("sender")?;
    let count = r.u32("recipient count")?;
    // No with_capacity(count): a count is only believed as far as the
    // payload actually holds recipients.
    let mut recipients = Vec::new();
    for _ in 0..count {
        recipients.push(Recipient {
            address: r.string("recipient")?,
            notify: Notify(r.u8("notify")?),
            orcpt: r.opt_str("orcpt")?,
        });
    }
    let size = if r.bool("size")? {
        Some(r.u64("size")?)
    } else {
        None
    };
    let body = match r.u8("body")? {
        0 => Body::Unspecified,
        1 => Body::SevenBit,
        2 => Body::EightBitMime,
        3 => Body::BinaryMime,
        _ => return Err("body"),
    };
    let smtputf8 = r.bool("smtputf8")?;
    let ret = match r.u8("ret")? {
        0 => None,
        1 => Some(Ret::Full),
        2 => Some(Ret::Hdrs),
        _ => return Err("ret"),
    };
    let envid = r.opt_str("envid")?;
    Ok(Envelope {
        sender,
        recipients,
        mail: MailParams {
            size,
            body,
            smtputf8,
            ret,
            envid,
        },
    })
}

#[cfg(test)]
mod tests;
