//! Start-up: replay a shard's segments into a fresh index.
//!
//! First the voids (refused batches, see [`crate::log`]) are gathered
//! from the start of every segment, where the log writes them: one short
//! read per segment. Then segments are read whole, one at a time, in
//! sequence order and scanned with [`crate::segment::scan`]; records and
//! damaged spans at or after a void's offset are skipped (their arrival
//! times still raise the queue-ID floor, so a refused ID is never reused).
//! A segment that is void from its start holds nothing that was
//! acknowledged: it is removed even when its header is unusable. A blank segment (created, never
//! written) is removed; a segment with an unusable header is reported and
//! left alone. On a read-write open a torn tail is zeroed (and synced)
//! so that the next append continues exactly where the valid log ends,
//! and dead segments are deleted.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{blocking, LogOptions, RecoveryReport, SegmentInfo, ShardLog, Tail};
use crate::index::Location;
use crate::segment::{self, CorruptSpan, SegmentHeaderError, SEGMENT_HEADER_LEN};
use crate::StorageError;

/// Segment → offset from which its records are void.
type Voids = BTreeMap<u64, u64>;

pub(super) fn open(
    dir: &Path,
    shard: u16,
    opts: LogOptions,
    writable: bool,
) -> Result<(ShardLog, RecoveryReport), StorageError> {
    let shard_dir = dir.join(shard.to_string());
    if writable {
        // Private to the mail owner (the daemon's user).
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
            .create(&shard_dir)
            .map_err(|e| StorageError::io(&shard_dir, e))?;
    }
    let mut log = ShardLog::empty(shard_dir, shard, opts, writable);
    let mut report = RecoveryReport::default();
    let mut newest = None;
    let seqs = list_segments(&log.shard_dir, writable)?;
    let voids = collect_voids(&log, &seqs)?;
    for &seq in &seqs {
        log.next_seq = log.next_seq.max(seq.saturating_add(1));
        let void_from = voids.get(&seq).copied();
        newest = replay_segment(&mut log, seq, void_from, &mut report)?
            // Never append behind a void (the log never voids its newest
            // segment, but a damaged directory might say otherwise).
            .filter(|_| void_from.is_none())
            .map(|end| (seq, end));
    }
    if writable {
        // Append to the newest segment if it is readable and has room.
        if let Some((seq, end)) = newest {
            if let Some(info) = log.segments.get(&seq) {
                if end < log.opts.segment_size {
                    log.tail = Some(Tail {
                        seq,
                        salt: info.salt,
                        end,
                    });
                }
            }
        }
        let dead = log.reclaim();
        blocking::remove_segments(&dead)?;
        report.removed_segments = dead;
    }
    report.corrupt.sort();
    report.corrupt.dedup();
    report.messages = log.index.len();
    report.max_arrival_us = log.max_arrival_us;
    Ok((log, report))
}

/// Sequence numbers of the segment files in `shard_dir`, ascending.
fn list_segments(shard_dir: &Path, writable: bool) -> Result<Vec<u64>, StorageError> {
    let entries = match fs::read_dir(shard_dir) {
        Ok(entries) => entries,
        Err(e) if !writable && e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(shard_dir, e)),
    };
    let mut seqs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(shard_dir, e))?;
        let name = entry.file_name();
        match name.to_str().and_then(segment::parse_file_name) {
            Some(seq) => seqs.push(seq),
            None => tracing::debug!(file = ?entry.path(), "not a segment; ignored"),
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// The voids at the start of every segment, lowest offset per segment.
fn collect_voids(log: &ShardLog, seqs: &[u64]) -> Result<Voids, StorageError> {
    let mut voids = Voids::new();
    for &seq in seqs {
        for (segment, from) in leading_voids(log, seq)? {
            let v = voids.entry(segment).or_insert(from);
            *v = (*v).min(from);
        }
    }
    Ok(voids)
}

/// Reads the start of segment `seq` (all of it if the voids run past
/// that) and decodes its leading voids.
fn leading_voids(log: &ShardLog, seq: u64) -> Result<Vec<(u64, u64)>, StorageError> {
    /// Room for a few hundred voids: more means a disk failing for long.
    const PREFIX: u64 = 16 << 10;
    let path = log.segment_path(seq);
    let err = |e| StorageError::io(&path, e);
    let mut file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if !log.writable && e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut prefix = Vec::new();
    (&mut file)
        .take(PREFIX)
        .read_to_end(&mut prefix)
        .map_err(err)?;
    let mut found = segment::leading_voids(&prefix);
    if found.needs_more && prefix.len() as u64 == PREFIX {
        file.read_to_end(&mut prefix).map_err(err)?;
        found = segment::leading_voids(&prefix);
    }
    Ok(found.voids)
}

/// Replays segment `seq`, skipping what `void_from` covers; returns where
/// its valid log ends, or `None` if it could not be replayed.
fn replay_segment(
    log: &mut ShardLog,
    seq: u64,
    void_from: Option<u64>,
    report: &mut RecoveryReport,
) -> Result<Option<u64>, StorageError> {
    let path = log.segment_path(seq);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        // Deleted by the running daemon while a tool was listing.
        Err(e) if !log.writable && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    let scan = match segment::scan(&bytes) {
        Ok(scan) => scan,
        Err(SegmentHeaderError::Blank) => {
            if log.writable {
                tracing::info!(file = %path.display(), "removing a segment that was never written");
                fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            }
            return Ok(None);
        }
        Err(e) if void_from.is_some_and(|from| from <= SEGMENT_HEADER_LEN as u64) => {
            // Its creation was refused: nothing in it was acknowledged.
            if log.writable {
                tracing::info!(file = %path.display(), reason = %e, "removing a void segment");
                fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            }
            return Ok(None);
        }
        Err(e) => {
            unreadable(log, seq, report, e.to_string());
            return Ok(None);
        }
    };
    if scan.header.seq != seq || scan.header.shard != log.shard {
        let reason = format!(
            "header says shard {} segment {}",
            scan.header.shard, scan.header.seq
        );
        unreadable(log, seq, report, reason);
        return Ok(None);
    }
    log.max_arrival_us = log.max_arrival_us.max(scan.header.floor_us);
    // Records and damage in file order: a `Delete` written after a
    // damaged record must still remove its message.
    let void_from = void_from.unwrap_or(u64::MAX);
    let mut spans = scan.corrupt.iter().peekable();
    for r in &scan.records {
        while let Some(span) = spans.next_if(|s| s.offset < r.offset) {
            apply_corrupt(log, seq, span, void_from, &path, report);
        }
        log.note_arrival(&r.record);
        if r.offset < void_from {
            log.index.apply(seq, r);
        } else {
            report.voided_records += 1;
        }
    }
    for span in spans {
        apply_corrupt(log, seq, span, void_from, &path, report);
    }
    if void_from != u64::MAX {
        tracing::warn!(
            "warning: {}: records from offset {void_from} on belong to a refused batch (its write failed); skipped",
            path.display()
        );
    }
    if let Some(start) = scan.torn_tail() {
        let bytes = scan.dirty_end - start;
        if log.writable {
            zero_range(&path, start, scan.dirty_end)?;
            report.torn_tail_truncated_bytes += bytes;
        }
        tracing::warn!("{}", torn_tail_line(&path, start, bytes, log.writable));
    }
    log.segments.insert(
        seq,
        SegmentInfo {
            salt: scan.header.salt,
        },
    );
    report.segments += 1;
    Ok(Some(scan.end))
}

fn apply_corrupt(
    log: &mut ShardLog,
    seq: u64,
    span: &CorruptSpan,
    void_from: u64,
    path: &Path,
    report: &mut RecoveryReport,
) {
    if span.offset >= void_from {
        // A refused write that reached the disk in part: not damage.
        report.voided_records += 1;
        return;
    }
    tracing::warn!("{}", damaged_line(path, span));
    report.corrupt_spans += 1;
    let location = Location {
        segment: seq,
        offset: span.offset,
        len: span.len,
    };
    for qid in &span.qids {
        log.index.mark_corrupt(qid, location);
        report.corrupt.push(qid.clone());
    }
}

fn unreadable(log: &mut ShardLog, seq: u64, report: &mut RecoveryReport, reason: String) {
    let path = log.segment_path(seq);
    tracing::warn!("{}", unusable_line(&path, &reason));
    log.unreadable.insert(seq);
    report.unreadable_segments.push(path);
}

// The operator-facing lines, in Postfix's `warning: FILE: text` shape.

fn torn_tail_line(path: &Path, start: u64, bytes: u64, truncated: bool) -> String {
    format!(
        "warning: {}: torn tail of {bytes} bytes at offset {start} (a write that was never acknowledged) {}",
        path.display(),
        if truncated {
            "truncated"
        } else {
            "ignored; the daemon truncates it"
        }
    )
}

fn damaged_line(path: &Path, span: &CorruptSpan) -> String {
    let qids: Vec<&str> = span.qids.iter().map(|q| q.as_str()).collect();
    format!(
        "warning: {}: damaged records, {} bytes at offset {}; their messages ({}) are moved to the corrupt queue",
        path.display(),
        span.len,
        span.offset,
        if qids.is_empty() {
            "none named".to_string()
        } else {
            qids.join(" ")
        }
    )
}

fn unusable_line(path: &Path, reason: &str) -> String {
    format!(
        "warning: {}: unusable queue segment left alone ({reason}); move it away once its messages are dealt with",
        path.display()
    )
}

/// Writes zeros over `start..end` and syncs: the torn tail becomes
/// "end of log" again, preallocated blocks kept.
fn zero_range(path: &Path, start: u64, end: u64) -> Result<(), StorageError> {
    const CHUNK: u64 = 64 << 10;
    let err = |e| StorageError::io(path, e);
    let file = fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    let zeros = vec![0u8; CHUNK as usize];
    let mut at = start;
    while at < end {
        let n = (end - at).min(CHUNK);
        file.write_all_at(&zeros[..n as usize], at).map_err(err)?;
        at += n;
    }
    file.sync_data().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_lines_are_postfix_warnings() {
        let path = Path::new("/q/0/00000001.seg");
        let span = CorruptSpan {
            offset: 64,
            len: 100,
            qids: Vec::new(),
        };
        let lines = [
            torn_tail_line(path, 4096, 12, true),
            torn_tail_line(path, 4096, 12, false),
            damaged_line(path, &span),
            unusable_line(path, "header says shard 1 segment 2"),
        ];
        for l in &lines {
            assert!(l.starts_with("warning: /q/0/00000001.seg: "), "{l}");
            assert!(!l.contains('\n'), "{l}");
        }
        assert!(lines[0].ends_with("truncated"), "{}", lines[0]);
        assert!(lines[3].contains("left alone"), "{}", lines[3]);
    }
}
