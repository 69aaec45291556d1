//! Segment files and scanning them.
//!
//! A shard's queue is `queue_directory/<shard>/NNNNNNNNNNNNNNNN.seg`: 16
//! zero-padded decimal sequence numbers, written in order, one at a time.
//! A segment is usually preallocated; zeros beyond the written end mean
//! "end of log".
//!
//! # Segment header (40 bytes, little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 8 | magic `SLUICESG` |
//! | 8  | 2 | format version (1) |
//! | 10 | 2 | shard |
//! | 12 | 4 | salt for record header CRCs (random, per segment; see [`crate::record`]) |
//! | 16 | 8 | sequence number |
//! | 24 | 8 | floor µs: the highest arrival time the log had seen when the segment was made |
//! | 32 | 4 | CRC32C of bytes 0..32 |
//! | 36 | 4 | zero |
//!
//! The floor keeps queue IDs unique after a restart even when every
//! message that carried the newest time is gone: the newest segment is
//! never deleted, and its header remembers.
//!
//! # Scanning and the resync rule
//!
//! [`scan`] is a pure function of a segment's bytes. From the end of the
//! header it decodes records one after another. At the first offset `p`
//! where that fails (zeros, a bad magic or header CRC, a payload CRC
//! mismatch, a payload running past the end), it looks for the next
//! offset `q > p` holding a *complete* record: the magic (found with
//! `memmem`), a header that verifies under the segment's salt, and a
//! payload that fits and matches its CRC.
//!
//! - If there is such a `q`, bytes `p..q` are a [`CorruptSpan`]: acknowledged
//!   data was damaged after it was written. Its queue IDs are the one in the
//!   damaged header (verified, or failing that a well-formed best guess) and
//!   those of any verified headers inside the span. Scanning resumes at `q`.
//! - If there is none, `p` is the end of the log and everything after it a
//!   torn tail: a write that never completed its fsync, so nothing in it
//!   was acknowledged. Nothing after `p` is reported, and
//!   [`SegmentScan::dirty_end`] says how far non-zero bytes reach so that
//!   recovery can zero them before appending at `p`.
//!
//! The search is bounded by the segment's length: each candidate costs one
//! 40-byte header CRC, and a payload CRC only when its header verified.
//! Because the rule keeps any record that fully verifies, a lost write in
//! the middle never makes acknowledged records after it disappear; the price
//! is that records of an unacknowledged batch that happen to have reached
//! the disk in full after a torn page are kept too (a possible duplicate
//! delivery, never a loss) — unless the log voided that batch: a failed
//! write is recorded as a `Void` at the start of a later segment
//! ([`leading_voids`]), and recovery skips what it covers ([`crate::log`]).

use memchr::memmem;

use crate::qid::QueueId;
use crate::record::{self, DecodeError, Record, RECORD_HEADER_LEN, RECORD_MAGIC};

pub const SEGMENT_MAGIC: [u8; 8] = *b"SLUICESG";
pub const SEGMENT_VERSION: u16 = 1;
pub const SEGMENT_HEADER_LEN: usize = 40;
const SEGMENT_CRC_AT: usize = 32;

/// File name of segment `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:016}.seg")
}

/// The sequence number in a segment file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header at the start of every segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub shard: u16,
    pub seq: u64,
    pub salt: u32,
    pub floor_us: u64,
}

/// Why a segment's header is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SegmentHeaderError {
    /// The file holds only zeros: created, never written.
    #[error("segment was never written")]
    Blank,
    #[error("segment shorter than its header")]
    Truncated,
    #[error("no segment magic")]
    BadMagic,
    #[error("segment header checksum mismatch")]
    Checksum,
    #[error("segment format version {0} (this build reads version 1)")]
    Version(u16),
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[0..8].copy_from_slice(&SEGMENT_MAGIC);
        h[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&self.shard.to_le_bytes());
        h[12..16].copy_from_slice(&self.salt.to_le_bytes());
        h[16..24].copy_from_slice(&self.seq.to_le_bytes());
        h[24..32].copy_from_slice(&self.floor_us.to_le_bytes());
        let crc = crc32c::crc32c(&h[..SEGMENT_CRC_AT]);
        h[SEGMENT_CRC_AT..SEGMENT_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes the header at the start of a segment's bytes.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, SegmentHeaderError> {
        if nonzero_len(bytes) == 0 {
            return Err(SegmentHeaderError::Blank);
        }
        let h = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or(SegmentHeaderError::Truncated)?;
        if h[0..8] != SEGMENT_MAGIC {
            return Err(SegmentHeaderError::BadMagic);
        }
        let field = |at: usize, n: usize| &h[at..at + n];
        let crc = u32::from_le_bytes(arr(field(SEGMENT_CRC_AT, 4)));
        if crc32c::crc32c(&h[..SEGMENT_CRC_AT]) != crc {
            return Err(SegmentHeaderError::Checksum);
        }
        let version = u16::from_le_bytes(arr(field(8, 2)));
        if version != SEGMENT_VERSION {
            return Err(SegmentHeaderError::Version(version));
        }
        Ok(SegmentHeader {
            shard: u16::from_le_bytes(arr(field(10, 2))),
            salt: u32::from_le_bytes(arr(field(12, 4))),
            seq: u64::from_le_bytes(arr(field(16, 8))),
            floor_us: u64::from_le_bytes(arr(field(24, 8))),
        })
    }
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

/// One record found by [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Offset of the record header in the segment.
    pub offset: u64,
    /// Header plus payload.
    pub len: u64,
    /// The record. A `Message`'s content is checked but not copied: it is
    /// empty here, and its length is `content_len`.
    pub record: Record,
    /// Content bytes of a `Message` record, 0 for the others.
    pub content_len: u64,
}

/// Damaged bytes followed by valid records (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptSpan {
    pub offset: u64,
    pub len: u64,
    /// The messages whose records were in the span, as far as headers
    /// still tell; may be empty.
    pub qids: Vec<QueueId>,
}

/// What a segment holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    pub header: SegmentHeader,
    pub records: Vec<ScannedRecord>,
    pub corrupt: Vec<CorruptSpan>,
    /// End of the valid log: where the next record goes.
    pub end: u64,
    /// Just past the last non-zero byte at or after `end`; equal to `end`
    /// when the segment is clean. `end..dirty_end` is the torn tail.
    pub dirty_end: u64,
}

impl SegmentScan {
    /// Where the torn tail starts, if there is one.
    pub fn torn_tail(&self) -> Option<u64> {
        (self.dirty_end > self.end).then_some(self.end)
    }

    /// Queue IDs named by the corrupt spans.
    pub fn corrupt_qids(&self) -> impl Iterator<Item = &QueueId> {
        self.corrupt.iter().flat_map(|s| s.qids.iter())
    }
}

/// Scans a whole segment (see the module doc for the rules). Fails only
/// when the segment header is unusable. No I/O.
pub fn scan(bytes: &[u8]) -> Result<SegmentScan, SegmentHeaderError> {
    let header = SegmentHeader::decode(bytes)?;
    let salt = header.salt;
    let finder = memmem::Finder::new(&RECORD_MAGIC);
    let mut records = Vec::new();
    let mut corrupt = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < bytes.len() {
        match record::decode_meta(&bytes[pos..], salt) {
            Ok((record, len, content_len)) => {
                records.push(ScannedRecord {
                    offset: pos as u64,
                    len: len as u64,
                    record,
                    content_len,
                });
                pos += len;
            }
            Err(err) => {
                let mut qids: Vec<QueueId> = match err {
                    DecodeError::PayloadChecksum { qid }
                    | DecodeError::UnknownType { qid, .. }
                    | DecodeError::Malformed { qid, .. } => vec![qid],
                    _ => bytes
                        .get(pos..pos + RECORD_HEADER_LEN)
                        .and_then(record::header_qid)
                        .into_iter()
                        .collect(),
                };
                match resync(bytes, pos + 1, salt, &finder, &mut qids) {
                    Some(next) => {
                        qids.dedup();
                        corrupt.push(CorruptSpan {
                            offset: pos as u64,
                            len: (next - pos) as u64,
                            qids,
                        });
                        pos = next;
                    }
                    None => break,
                }
            }
        }
    }
    let end = pos.min(bytes.len());
    Ok(SegmentScan {
        header,
        records,
        corrupt,
        end: end as u64,
        dirty_end: (end + nonzero_len(&bytes[end..])) as u64,
    })
}

/// The first offset at or after `from` holding a complete, verified
/// record. Queue IDs of verified headers passed on the way (their payloads
/// were damaged) are added to `qids`.
fn resync(
    bytes: &[u8],
    from: usize,
    salt: u32,
    finder: &memmem::Finder<'_>,
    qids: &mut Vec<QueueId>,
) -> Option<usize> {
    let mut at = from;
    while let Some(i) = bytes.get(at..).and_then(|rest| finder.find(rest)) {
        let candidate = at + i;
        let rest = &bytes[candidate..];
        if let Ok(h) = record::decode_header(rest, salt) {
            let complete = usize::try_from(h.record_len())
                .ok()
                .and_then(|len| rest.get(RECORD_HEADER_LEN..len))
                .is_some_and(|payload| crc32c::crc32c(payload) == h.payload_crc);
            if complete {
                return Some(candidate);
            }
            qids.push(h.qid);
        }
        at = candidate + 1;
    }
    None
}

/// The `Void` records at the start of a segment, read from a prefix of its
/// bytes (the log writes them nowhere else: see [`crate::log`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadingVoids {
    /// `(segment, from)` of each verified `Void` record, in file order.
    pub voids: Vec<(u64, u64)>,
    /// The prefix ended inside a record: the caller should look again at
    /// more of the file (when there is more).
    pub needs_more: bool,
}

/// Decodes the `Void` records that follow the segment header in `prefix`,
/// stopping at the first other record, damage or end. A segment whose
/// header is unusable has none. No I/O.
pub fn leading_voids(prefix: &[u8]) -> LeadingVoids {
    let mut out = LeadingVoids::default();
    let Ok(header) = SegmentHeader::decode(prefix) else {
        return out;
    };
    let mut pos = SEGMENT_HEADER_LEN;
    loop {
        match record::decode_meta(prefix.get(pos..).unwrap_or_default(), header.salt) {
            Ok((Record::Void { segment, from }, len, _)) => {
                out.voids.push((segment, from));
                pos += len;
            }
            Err(DecodeError::Truncated { .. }) => {
                out.needs_more = true;
                return out;
            }
            Ok(_) | Err(_) => return out,
        }
    }
}

/// Length of `b` up to and including its last non-zero byte. Compares
/// 4 KiB blocks against zeros (a memcmp), walking back from the end.
pub fn nonzero_len(b: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut end = b.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = &b[start..end];
        if block != &ZEROS[..block.len()] {
            return start + block.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
        }
        end = start;
    }
    0
}

#[cfg(test)]
mod tests;
