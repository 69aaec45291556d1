//! Recovery from crashes and damage, on real files.

mod common;

use std::path::Path;

use common::*;
use sluice_storage::index::Location;
use sluice_storage::log::{LogOptions, ShardLog};
use sluice_storage::qid::{QidGenerator, QueueId};
use sluice_storage::record::{QueueState, Record};
use sluice_storage::StorageError;

fn no_prealloc() -> LogOptions {
    LogOptions {
        segment_size: 1 << 20,
        preallocate: false,
    }
}

/// A shard with three messages (the last one in its own batch), and the
/// bytes of its only segment.
struct Fixture {
    _dir: TempDir,
    qids: Vec<QueueId>,
    last: Location,
    bytes: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = TempDir::new("fixture");
    let (mut log, _) = ShardLog::open(dir.path(), 0, no_prealloc()).unwrap();
    let mut ids = QidGenerator::new(0, 0);
    let mut qids = append_messages(&mut log, &mut ids, 2, 300);
    qids.extend(append_messages(&mut log, &mut ids, 1, 40));
    let last = log.index().get(&qids[2]).unwrap().location;
    let bytes = std::fs::read(log.segment_path(1)).unwrap();
    assert_eq!(last.offset + last.len, bytes.len() as u64);
    Fixture {
        _dir: dir,
        qids,
        last,
        bytes,
    }
}

fn write_segment(queue_dir: &Path, bytes: &[u8]) {
    let shard_dir = queue_dir.join("0");
    std::fs::create_dir_all(&shard_dir).unwrap();
    std::fs::write(shard_dir.join("0000000000000001.seg"), bytes).unwrap();
}

#[test]
fn torn_tail_at_every_byte_offset_of_the_last_record() {
    let f = fixture();
    let start = f.last.offset as usize;
    for cut in start..f.bytes.len() {
        // The file ends at the cut (no preallocation), or the rest of a
        // preallocated file is zeros, or stale bytes follow.
        for tail in [0usize, 1, 2] {
            if tail == 2 && cut % 7 != 0 {
                continue; // a sample is enough for the slow variant
            }
            let dir = TempDir::new("torn");
            let mut bytes = f.bytes[..cut].to_vec();
            match tail {
                0 => {}
                1 => bytes.resize(f.bytes.len() + 4096, 0),
                _ => bytes.extend(std::iter::repeat_n(0x5a, 300)),
            }
            write_segment(dir.path(), &bytes);
            let (mut log, report) = ShardLog::open(dir.path(), 0, no_prealloc()).unwrap();
            let what = format!("cut at {cut}, tail {tail}");
            assert!(log.index().get(&f.qids[0]).is_some(), "{what}");
            assert!(log.index().get(&f.qids[1]).is_some(), "{what}");
            assert!(log.index().get(&f.qids[2]).is_none(), "{what}");
            assert!(report.corrupt.is_empty(), "{what}");
            let dirty = sluice_storage::segment::nonzero_len(&bytes) - start;
            assert_eq!(report.torn_tail_truncated_bytes, dirty as u64, "{what}");

            // Appending continues at the end of the valid log, and a
            // reopen sees everything.
            let mut ids = QidGenerator::new(0, report.max_arrival_us);
            let new = append_messages(&mut log, &mut ids, 1, 50).remove(0);
            assert_eq!(
                log.index().get(&new).unwrap().location.offset,
                f.last.offset
            );
            drop(log);
            let (log, report) = ShardLog::open(dir.path(), 0, no_prealloc()).unwrap();
            assert_eq!(report.torn_tail_truncated_bytes, 0, "{what}");
            assert_eq!(report.messages, 3, "{what}");
            assert_eq!(log.read_message(&new).unwrap().content.len(), 50);
        }
    }
}

#[test]
fn a_damaged_payload_in_the_middle_makes_its_message_corrupt() {
    let f = fixture();
    let dir = TempDir::new("corrupt");
    let mut bytes = f.bytes.clone();
    let (mut log, _) = {
        // Damage the content of the first message.
        let (l, _) = ShardLog::open_readonly(f._dir.path(), 0).unwrap();
        let loc = l.index().get(&f.qids[0]).unwrap().location;
        bytes[(loc.offset + loc.len - 10) as usize] ^= 0x04;
        write_segment(dir.path(), &bytes);
        ShardLog::open(dir.path(), 0, no_prealloc()).unwrap()
    };
    let (_, report) = ShardLog::open_readonly(dir.path(), 0).unwrap();
    assert_eq!(report.corrupt, [f.qids[0].clone()]);
    assert_eq!(report.corrupt_spans, 1);
    assert_eq!(report.torn_tail_truncated_bytes, 0);
    let m = log.index().get(&f.qids[0]).unwrap();
    assert_eq!(m.state, QueueState::Corrupt);
    assert!(matches!(
        log.read_message(&f.qids[0]),
        Err(StorageError::MessageCorrupt(_))
    ));
    // Later records survive.
    for q in &f.qids[1..] {
        assert_eq!(log.index().get(q).unwrap().state, QueueState::Incoming);
        assert!(log.read_message(q).is_ok());
    }
    // postsuper -d removes it for good.
    append(
        &mut log,
        &[Record::Delete {
            qid: f.qids[0].clone(),
        }],
    );
    drop(log);
    let (log, report) = ShardLog::open(dir.path(), 0, no_prealloc()).unwrap();
    assert!(log.index().get(&f.qids[0]).is_none());
    assert_eq!(report.messages, 2);
}

#[test]
fn a_damaged_header_in_the_middle_is_skipped() {
    let f = fixture();
    let (l, _) = ShardLog::open_readonly(f._dir.path(), 0).unwrap();
    let loc = l.index().get(&f.qids[1]).unwrap().location;
    let mut bytes = f.bytes.clone();
    bytes[loc.offset as usize + 10] ^= 0xff; // payload length
    let dir = TempDir::new("header");
    write_segment(dir.path(), &bytes);
    let (log, report) = ShardLog::open(dir.path(), 0, no_prealloc()).unwrap();
    assert_eq!(report.corrupt, [f.qids[1].clone()]);
    assert!(log.read_message(&f.qids[0]).is_ok());
    assert!(log.read_message(&f.qids[2]).is_ok());
}

#[test]
fn a_read_only_open_changes_nothing() {
    let f = fixture();
    let dir = TempDir::new("ro");
    let mut bytes = f.bytes[..f.bytes.len() - 5].to_vec();
    bytes.resize(bytes.len() + 100, 0x77);
    write_segment(dir.path(), &bytes);
    let (log, report) = ShardLog::open_readonly(dir.path(), 0).unwrap();
    assert_eq!(report.torn_tail_truncated_bytes, 0);
    assert_eq!(report.messages, 2);
    assert!(log.read_message(&f.qids[1]).is_ok());
    let after = std::fs::read(dir.path().join("0/0000000000000001.seg")).unwrap();
    assert_eq!(after, bytes);
    // A shard that does not exist is an empty queue.
    let (empty, _) = ShardLog::open_readonly(dir.path(), 9).unwrap();
    assert!(empty.index().is_empty());
    assert!(!dir.path().join("9").exists());
}

#[test]
#[should_panic(expected = "read-only")]
fn a_read_only_log_cannot_prepare() {
    let dir = TempDir::new("ro-prepare");
    let (mut log, _) = ShardLog::open_readonly(dir.path(), 0).unwrap();
    let _ = log.prepare(sluice_storage::log::Batch::new());
}
