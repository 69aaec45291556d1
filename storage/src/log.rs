//! One shard's queue log: segments on disk, the index in memory, and the
//! group-commit protocol between them.
//!
//! # On disk
//!
//! `queue_directory/<shard>/NNNNNNNNNNNNNNNN.seg` ([`crate::segment`]),
//! each a segment header then records ([`crate::record`]). Appends go to
//! the newest segment until it would pass [`LogOptions::segment_size`];
//! then a new segment is started (preallocated when
//! [`LogOptions::preallocate`] is set: reusing allocated blocks made
//! fdatasync 50–90 % faster on the reference machines).
//!
//! # Group commit, without a runtime
//!
//! The engine owns the executor and the files; this type owns the
//! decisions. Per batch:
//!
//! 1. [`ShardLog::prepare`] (sync): place the batch at the tail, rolling to
//!    a new segment if needed. Returns a [`PreparedWrite`]: path, whether
//!    to create (and preallocate) the file, offset and bytes.
//! 2. The engine writes the bytes at the offset and calls fdatasync. When
//!    it created the file it also fsyncs the shard directory, so that the
//!    new file's name is durable before anything in it is acknowledged.
//! 3. [`ShardLog::complete`] (sync) with the I/O result. On success the
//!    records are applied to the index — only now may the engine answer
//!    `250` — and segments that became dead are returned for deletion (in
//!    the order given: oldest first). On failure the tail's state is
//!    unknown, so the next batch goes to a fresh segment.
//!
//! # Refused batches
//!
//! A failed write or fdatasync leaves bytes of unknown fate behind: some
//! or all of the batch may be on the disk, and its records would verify
//! at the next start — and the client that was answered 451 has already
//! sent the message again. So a failure also makes the log remember a
//! *void*: "segment S from offset X on was never acknowledged"
//! ([`Record::Void`]). The pending voids are written as the first records
//! of the next segment (a failure always rolls, so the next write creates
//! one), in the same write and under the same fdatasync as the next
//! batch: no batch is acknowledged unless the voids before it are
//! durable. If that write fails too, its own segment is voided as well and
//! all of them ride on the next attempt; a batch of nothing but voids
//! ([`ShardLog::voids_pending`], [`ShardLog::prepare`] with an empty
//! batch) lets the engine keep trying while no mail comes in. Recovery
//! reads the leading voids of every segment before it replays anything,
//! and skips every record, and every damaged span, at or after a void's
//! offset: message records and state changes alike (a refused `Done` or
//! "delivered" never happened, and the index never applied it either).
//!
//! Why a record in the next segment rather than a "valid up to" field in
//! the failed segment's header: the header has no room for it (a new
//! format version would make every segment unreadable to older builds),
//! and rewriting it means writing and syncing again the very file whose
//! fdatasync just failed — after such a failure the kernel may already
//! have dropped the dirty pages and reports the file's state unreliably.
//! The next segment is a fresh file that is being written anyway, so the
//! void costs no extra fsync. It stays readable exactly as long as it is
//! needed: segments are deleted oldest first, so the voided segment goes
//! before the one that holds its void.
//!
//! Limits: a void exists only once some later write reaches the disk; if
//! the process dies before that, the refused batch may come back (a
//! duplicate, as with a torn write whose records all reached the disk). A
//! void whose own record is damaged, or whose segment's header is
//! unreadable, is lost the same way. Builds from before voids see a
//! `Void` record as damage (a `corrupt` entry named `VOID`) and replay
//! the refused records.
//!
//! One batch is in flight at a time; sessions that want to commit while
//! one is in flight join the next batch. [`ShardLog::append_blocking`]
//! does all three steps with std I/O for tools, tests and benchmarks.
//!
//! # Recovery
//!
//! [`ShardLog::open`] reads every segment's leading voids, then replays
//! every segment in order, applying the records no void covers to a fresh
//! index. Damaged records put their messages in `corrupt`
//! ([`crate::segment`] says how damage is told apart from a torn tail); a
//! torn tail is zeroed so that appends continue where the valid log ends.
//! [`ShardLog::open_readonly`] replays without writing anything, for tools
//! that run beside the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::index::Index;
use crate::qid::QueueId;
use crate::record::{self, DecodeError, MessageRecord, QueueState, Record, RECORD_HEADER_LEN};
use crate::segment::{self, ScannedRecord, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::StorageError;

mod blocking;
mod recovery;

pub use blocking::remove_segments;

/// Default roll threshold: 64 MiB, large enough that rolling (and its
/// directory fsync) is rare, small enough that one long-deferred message
/// does not pin much disk.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

/// How a shard's log writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Roll to a new segment when a batch would take the current one past
    /// this many bytes (a single batch larger than this gets a segment of
    /// its own).
    pub segment_size: u64,
    /// Allocate `segment_size` bytes when a segment is created.
    pub preallocate: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            preallocate: true,
        }
    }
}

/// What start-up found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments replayed.
    pub segments: usize,
    /// Live messages in the index afterwards (corrupt ones included).
    pub messages: usize,
    /// Bytes of torn tails zeroed (0 for a read-only open, which only
    /// reports them in the log).
    pub torn_tail_truncated_bytes: u64,
    /// Messages put in the `corrupt` queue by damaged records.
    pub corrupt: Vec<QueueId>,
    /// Highest time seen in segment floors, arrival times and this shard's
    /// queue IDs: pass it to [`crate::qid::QidGenerator::new`].
    pub max_arrival_us: u64,
    /// Damaged stretches found between valid records.
    pub corrupt_spans: usize,
    /// Segments whose header is unusable: left alone, never deleted.
    pub unreadable_segments: Vec<PathBuf>,
    /// Dead segments deleted at start-up (a crash came between a commit
    /// and the deletion it allowed).
    pub removed_segments: Vec<PathBuf>,
    /// Records (and damaged spans) skipped because a void covers them:
    /// batches that were refused when they were written.
    pub voided_records: usize,
}

/// Records to commit together: one write, one fdatasync.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// What the index needs, at offsets relative to `bytes`.
    records: Vec<ScannedRecord>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `r` into the batch (its header is sealed for its segment
    /// in [`ShardLog::prepare`]).
    pub fn push(&mut self, r: &Record) {
        let offset = self.bytes.len() as u64;
        let len = record::encode_sealed(r, 0, &mut self.bytes) as u64;
        let (record, content_len) = match r {
            // The index needs the envelope, not the content.
            Record::Message(m) => (
                Record::Message(MessageRecord {
                    qid: m.qid.clone(),
                    arrival_us: m.arrival_us,
                    envelope: m.envelope.clone(),
                    client: m.client.clone(),
                    content: Vec::new(),
                }),
                m.content.len() as u64,
            ),
            other => (other.clone(), 0),
        };
        self.records.push(ScannedRecord {
            offset,
            len,
            record,
            content_len,
        });
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds new mail (a message record).
    pub fn has_message(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r.record, Record::Message(_)))
    }

    /// Encoded bytes in the batch.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Puts `front` before the batch's records (the log's pending voids;
    /// rare, so the copy does not matter).
    fn prepend(&mut self, front: &[Record]) {
        if front.is_empty() {
            return;
        }
        let mut b = Batch::new();
        for r in front {
            b.push(r);
        }
        let shift = b.bytes.len() as u64;
        b.bytes.extend_from_slice(&self.bytes);
        b.records.extend(self.records.drain(..).map(|mut r| {
            r.offset += shift;
            r
        }));
        *self = b;
    }
}

/// A batch placed at the tail, for the engine to write (step 2).
#[derive(Debug)]
#[must_use = "a prepared write must be written and passed to ShardLog::complete"]
pub struct PreparedWrite {
    pub path: PathBuf,
    /// Create the file first (and allocate `preallocate` bytes if that is
    /// non-zero), then fsync the shard directory.
    pub create: bool,
    pub preallocate: u64,
    pub offset: u64,
    /// Write these at `offset` (the engine may take them out of the
    /// struct; `complete` does not need them).
    pub bytes: Vec<u8>,
    ticket: u64,
    len: u64,
}

impl PreparedWrite {
    /// Offset just past the write.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A committed batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Completed {
    /// Segments no live message needs any more, oldest first: delete them
    /// in this order (fsyncing the directory between deletions keeps the
    /// order across a crash; otherwise a crash can at worst bring back a
    /// message that was already delivered).
    pub dead_segments: Vec<PathBuf>,
}

/// A segment this log knows how to read.
#[derive(Debug, Clone, Copy)]
struct SegmentInfo {
    salt: u32,
}

/// Where the next batch goes, if the newest segment can take it.
#[derive(Debug, Clone, Copy)]
struct Tail {
    seq: u64,
    salt: u32,
    end: u64,
}

#[derive(Debug)]
struct InFlight {
    ticket: u64,
    seq: u64,
    salt: u32,
    create: bool,
    /// Where the write starts (0 when it creates the segment).
    offset: u64,
    end: u64,
    /// Pending voids written in front of the batch.
    voids: usize,
    /// At absolute offsets in segment `seq`.
    records: Vec<ScannedRecord>,
}

/// Where a message's record is, to read it with the engine's own I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    qid: QueueId,
    salt: u32,
}

impl ReadPlan {
    /// Checks and decodes the `len` bytes read at `offset`.
    pub fn decode(&self, bytes: &[u8]) -> Result<MessageRecord, StorageError> {
        let corrupt = |source| StorageError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            source,
        };
        match record::decode_sealed(bytes, self.salt) {
            Ok((Record::Message(m), _)) if m.qid == self.qid => Ok(m),
            Ok(_) => Err(corrupt(DecodeError::Malformed {
                qid: self.qid.clone(),
                field: "not this message's record",
            })),
            Err(e) => Err(corrupt(e)),
        }
    }
}

/// One shard's queue log.
#[derive(Debug)]
pub struct ShardLog {
    shard_dir: PathBuf,
    shard: u16,
    opts: LogOptions,
    writable: bool,
    index: Index,
    /// Readable segments on disk, by sequence number.
    segments: BTreeMap<u64, SegmentInfo>,
    /// Segments that exist but cannot be read. Never written or deleted,
    /// and nothing newer is reclaimed while one exists (it may hold the
    /// `Message` records that newer segments' status records refer to).
    unreadable: BTreeSet<u64>,
    next_seq: u64,
    tail: Option<Tail>,
    in_flight: Option<InFlight>,
    max_arrival_us: u64,
    /// Refused batches not yet voided on disk: `Void` records that go in
    /// front of the next write (see "Refused batches").
    voids: Vec<Record>,
    /// Blocking mode: the tail segment's open file.
    file: Option<(u64, File)>,
}

impl ShardLog {
    /// Opens `queue_directory/<shard>/` (`dir` is the queue directory):
    /// creates it if missing, replays every segment in order, zeroes a
    /// torn tail so that the next append continues there, deletes dead
    /// segments, and rebuilds the index.
    pub fn open(
        dir: &Path,
        shard: u16,
        opts: LogOptions,
    ) -> Result<(ShardLog, RecoveryReport), StorageError> {
        recovery::open(dir, shard, opts, true)
    }

    /// Read-only replay (no truncation, no writes) for tools while the
    /// daemon may be running or stopped. A missing shard directory is an
    /// empty queue. [`ShardLog::prepare`] panics on the result.
    pub fn open_readonly(
        dir: &Path,
        shard: u16,
    ) -> Result<(ShardLog, RecoveryReport), StorageError> {
        recovery::open(dir, shard, LogOptions::default(), false)
    }

    fn empty(shard_dir: PathBuf, shard: u16, opts: LogOptions, writable: bool) -> ShardLog {
        ShardLog {
            shard_dir,
            shard,
            opts,
            writable,
            index: Index::new(),
            segments: BTreeMap::new(),
            unreadable: BTreeSet::new(),
            next_seq: 1,
            tail: None,
            in_flight: None,
            max_arrival_us: 0,
            voids: Vec::new(),
            file: None,
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// `queue_directory/<shard>`.
    pub fn shard_dir(&self) -> &Path {
        &self.shard_dir
    }

    /// Highest arrival time seen (see [`RecoveryReport::max_arrival_us`]).
    pub fn max_arrival_us(&self) -> u64 {
        self.max_arrival_us
    }

    /// Is a prepared batch waiting for [`ShardLog::complete`]?
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Refused batches whose void is not durable yet. While this is
    /// non-zero the engine should keep writing (an empty batch carries
    /// the voids alone): a restart before then may bring them back.
    pub fn voids_pending(&self) -> usize {
        self.voids.len()
    }

    /// qmgr took the message into its active window (in memory only).
    pub fn set_active(&mut self, qid: &QueueId) -> bool {
        self.index.set_active(qid)
    }

    pub fn segment_path(&self, seq: u64) -> PathBuf {
        self.shard_dir.join(segment::file_name(seq))
    }

    /// Group commit, step 1: place `batch` at the tail. Rolls to a new
    /// segment when the current one is full (the new segment's header is
    /// then at the start of the write). Pending voids go in front of the
    /// batch, which may then be empty (see "Refused batches"). No I/O.
    ///
    /// # Panics
    ///
    /// If a write is already in flight, or the log was opened read-only:
    /// both are bugs in the caller.
    pub fn prepare(&mut self, batch: Batch) -> PreparedWrite {
        assert!(self.writable, "prepare() on a read-only ShardLog");
        assert!(
            self.in_flight.is_none(),
            "prepare() while a write is in flight: one batch at a time"
        );
        let mut batch = batch;
        // A failure always abandons the tail, so pending voids always open
        // a new segment: they are its first records, where recovery looks.
        assert!(
            self.voids.is_empty() || self.tail.is_none(),
            "voids pending while appending to a tail"
        );
        batch.prepend(&self.voids);
        let Batch {
            mut bytes,
            mut records,
        } = batch;
        let batch_len = bytes.len() as u64;
        let placed = match self.tail {
            // A segment that holds nothing but its header takes any batch.
            Some(t)
                if t.end <= SEGMENT_HEADER_LEN as u64
                    || t.end.saturating_add(batch_len) <= self.opts.segment_size =>
            {
                Placement {
                    seq: t.seq,
                    salt: t.salt,
                    offset: t.end,
                    create: false,
                }
            }
            _ => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let salt = random_salt();
                let header = SegmentHeader {
                    shard: self.shard,
                    seq,
                    salt,
                    floor_us: self.max_arrival_us,
                };
                // Rare (once per segment), so the move is cheaper than
                // reserving header room in every batch.
                bytes.splice(0..0, header.encode());
                Placement {
                    seq,
                    salt,
                    offset: 0,
                    create: true,
                }
            }
        };
        let base = if placed.create { SEGMENT_HEADER_LEN } else { 0 };
        for r in &records {
            let at = base + r.offset as usize;
            record::reseal(&mut bytes[at..at + RECORD_HEADER_LEN], placed.salt);
        }
        verify_framing(&bytes[base..], placed.salt, &records);
        for r in &mut records {
            r.offset += placed.offset + base as u64;
        }
        // Unique across logs in the process, so that a write prepared by
        // one shard's log cannot complete another's.
        static TICKETS: AtomicU64 = AtomicU64::new(0);
        let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
        let len = bytes.len() as u64;
        self.in_flight = Some(InFlight {
            ticket,
            seq: placed.seq,
            salt: placed.salt,
            create: placed.create,
            offset: placed.offset,
            end: placed.offset + len,
            voids: self.voids.len(),
            records,
        });
        PreparedWrite {
            path: self.segment_path(placed.seq),
            create: placed.create,
            preallocate: if placed.create && self.opts.preallocate {
                self.opts.segment_size
            } else {
                0
            },
            offset: placed.offset,
            bytes,
            ticket,
            len,
        }
    }

    /// Group commit, step 3, after the engine's write and fdatasync. On
    /// `Ok` the batch's records are applied to the index and segments that
    /// became dead are returned (delete them after this returns). On `Err`
    /// the tail is abandoned: its state is unknown, so the next batch
    /// starts a fresh segment, and the write is voided (the next write
    /// carries a `Void` record for it); the error names the file and tells a full
    /// disk apart ([`StorageError::is_no_space`]).
    #[must_use = "dead segments must be deleted, and a failed commit must not be acknowledged"]
    pub fn complete(
        &mut self,
        w: PreparedWrite,
        result: io::Result<()>,
    ) -> Result<Completed, StorageError> {
        match &self.in_flight {
            Some(f) if f.ticket == w.ticket => {}
            _ => return Err(StorageError::NotInFlight),
        }
        let Some(f) = self.in_flight.take() else {
            return Err(StorageError::NotInFlight);
        };
        if f.create {
            // Even a failed create may have left a file: know it, so that
            // it is reclaimed and its number never reused.
            self.segments.insert(f.seq, SegmentInfo { salt: f.salt });
        }
        if let Err(source) = result {
            self.tail = None;
            self.file = None;
            // Nothing of this write was acknowledged: void it (a failed
            // create voids the whole segment), with the earlier voids it
            // carried still pending.
            self.voids.push(Record::Void {
                segment: f.seq,
                from: f.offset,
            });
            tracing::error!(
                file = %w.path.display(),
                offset = f.offset,
                "queue write failed; the batch is refused and will be voided by the next write"
            );
            return Err(StorageError::Io {
                path: w.path,
                source,
            });
        }
        self.voids.drain(..f.voids);
        self.tail = Some(Tail {
            seq: f.seq,
            salt: f.salt,
            end: f.end,
        });
        for r in &f.records {
            self.note_arrival(&r.record);
            self.index.apply(f.seq, r);
        }
        Ok(Completed {
            dead_segments: self.reclaim(),
        })
    }

    /// Where `qid`'s message record is, for the engine to read it.
    pub fn read_plan(&self, qid: &QueueId) -> Result<ReadPlan, StorageError> {
        let m = self
            .index
            .get(qid)
            .ok_or_else(|| StorageError::NotFound(qid.clone()))?;
        if m.state == QueueState::Corrupt {
            return Err(StorageError::MessageCorrupt(qid.clone()));
        }
        let info = self
            .segments
            .get(&m.location.segment)
            .ok_or_else(|| StorageError::NotFound(qid.clone()))?;
        Ok(ReadPlan {
            path: self.segment_path(m.location.segment),
            offset: m.location.offset,
            len: m.location.len,
            qid: qid.clone(),
            salt: info.salt,
        })
    }

    /// Raises the arrival floor from a verified record.
    fn note_arrival(&mut self, r: &Record) {
        if let Record::Message(m) = r {
            self.max_arrival_us = self.max_arrival_us.max(m.arrival_us);
        }
        let qid = r.qid();
        if qid.shard() == Some(self.shard) {
            if let Some(t) = qid.time_us() {
                self.max_arrival_us = self.max_arrival_us.max(t);
            }
        }
    }

    /// Forgets and returns the segments older than every live message
    /// (never the newest segment, nor anything from the first unreadable
    /// one on; see [`crate::index`] on why only a prefix may go).
    fn reclaim(&mut self) -> Vec<PathBuf> {
        let Some(&newest) = self.segments.keys().next_back() else {
            return Vec::new();
        };
        let bound = [
            Some(newest),
            self.index.oldest_live_segment(),
            self.unreadable.first().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(newest);
        let dead: Vec<u64> = self.segments.range(..bound).map(|(&s, _)| s).collect();
        for s in &dead {
            self.segments.remove(s);
            if matches!(&self.file, Some((f, _)) if f == s) {
                self.file = None;
            }
        }
        dead.into_iter().map(|s| self.segment_path(s)).collect()
    }
}

struct Placement {
    seq: u64,
    salt: u32,
    offset: u64,
    create: bool,
}

/// The writer's half of the paired assertion: the batch's bytes are
/// exactly its records, each framed as the index will remember it. (The
/// reader checks every record again when it replays or reads.)
fn verify_framing(bytes: &[u8], salt: u32, records: &[ScannedRecord]) {
    let mut at = 0u64;
    for r in records {
        assert_eq!(r.offset, at, "batch records are not contiguous");
        let rest = &bytes[at as usize..];
        let h = record::decode_header(rest, salt);
        assert!(
            matches!(&h, Ok(h) if h.record_len() == r.len && h.qid == *r.record.qid()),
            "batch framing does not verify at {at}: {h:?}"
        );
        if cfg!(debug_assertions) {
            assert!(
                record::decode_sealed(&rest[..r.len as usize], salt).is_ok(),
                "batch record at {at} does not decode"
            );
        }
        at += r.len;
    }
    assert_eq!(at, bytes.len() as u64, "batch bytes beyond its records");
}

/// A salt for a new segment's record headers. `RandomState` is seeded
/// from the OS's random source once per thread and advanced per call, and
/// mixing in the time keeps salts apart across processes too.
fn random_salt() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.finish() as u32
}
