//! ShardLog end to end on real files: append, reopen, roll, reclaim,
//! failed writes.

mod common;

use std::io;

use common::*;
use sluice_storage::log::{Batch, LogOptions, ShardLog};
use sluice_storage::qid::QidGenerator;
use sluice_storage::record::{QueueState, RecipientStatus, Record};
use sluice_storage::StorageError;

fn small_segments() -> LogOptions {
    LogOptions {
        segment_size: 8 << 10,
        preallocate: true,
    }
}

#[test]
fn reopen_after_append_returns_the_same_index() {
    let dir = TempDir::new("reopen");
    let (mut log, report) = ShardLog::open(dir.path(), 3, LogOptions::default()).unwrap();
    assert_eq!((report.segments, report.messages), (0, 0));
    let mut ids = QidGenerator::new(3, report.max_arrival_us);
    let qids = append_messages(&mut log, &mut ids, 5, 1000);
    append(
        &mut log,
        &[
            Record::RcptStatus {
                qid: qids[0].clone(),
                rcpt: 1,
                status: RecipientStatus::Deferred {
                    reason: "connect to example.net: Connection timed out".into(),
                    next_attempt_us: NOW + 300_000_000,
                },
            },
            Record::Hold {
                qid: qids[1].clone(),
            },
            Record::Expire {
                qid: qids[2].clone(),
            },
            Record::Done {
                qid: qids[3].clone(),
            },
        ],
    );
    let before = snapshot(&log);
    let original = log.read_message(&qids[4]).unwrap();
    drop(log);

    let (log, report) = ShardLog::open(dir.path(), 3, LogOptions::default()).unwrap();
    assert_eq!(snapshot(&log), before);
    assert_eq!(report.messages, 4);
    assert_eq!(report.torn_tail_truncated_bytes, 0);
    assert!(report.corrupt.is_empty());
    assert_eq!(report.max_arrival_us, ids.last_us());
    assert_eq!(log.read_message(&qids[4]).unwrap(), original);
    assert_eq!(original, message(qids[4].clone(), 1000).into_message());
    let index = log.index();
    assert_eq!(index.get(&qids[0]).unwrap().state, QueueState::Deferred);
    assert_eq!(index.get(&qids[1]).unwrap().state, QueueState::Hold);
    assert!(index.get(&qids[2]).unwrap().forced_expire);
    assert!(index.get(&qids[3]).is_none());
    assert!(matches!(
        log.read_message(&qids[3]),
        Err(StorageError::NotFound(_))
    ));

    // A read-only open sees the same.
    let (ro, _) = ShardLog::open_readonly(dir.path(), 3).unwrap();
    assert_eq!(snapshot(&ro), before);
}

trait IntoMessage {
    fn into_message(self) -> sluice_storage::record::MessageRecord;
}

impl IntoMessage for Record {
    fn into_message(self) -> sluice_storage::record::MessageRecord {
        match self {
            Record::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }
}

#[test]
fn segments_roll_and_dead_ones_are_deleted_oldest_first() {
    let dir = TempDir::new("roll");
    let (mut log, _) = ShardLog::open(dir.path(), 0, small_segments()).unwrap();
    let shard_dir = log.shard_dir().to_path_buf();
    let mut ids = QidGenerator::new(0, 0);
    // ~1.2 KiB per message, 8 KiB segments: several segments.
    let mut batches = Vec::new();
    for _ in 0..6 {
        batches.push(append_messages(&mut log, &mut ids, 3, 1100));
    }
    let files = segment_files(&shard_dir);
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(files[0], "0000000000000001.seg");

    // Finishing every message except one in the first segment frees
    // nothing: segments are reclaimed as a prefix.
    let (first, rest): (Vec<_>, Vec<_>) = batches
        .concat()
        .into_iter()
        .partition(|q| log.index().get(q).unwrap().location.segment == 1);
    let done: Vec<Record> = first[1..]
        .iter()
        .chain(&rest)
        .map(|q| Record::Done { qid: q.clone() })
        .collect();
    assert!(append(&mut log, &done).is_empty());
    let now = segment_files(&shard_dir);
    assert!(files.iter().all(|f| now.contains(f)), "{files:?} {now:?}");

    // The last one goes: everything but the newest segment is dead.
    let dead = append(
        &mut log,
        &[Record::Delete {
            qid: first[0].clone(),
        }],
    );
    assert!(!dead.is_empty());
    assert!(dead.windows(2).all(|w| w[0] < w[1]));
    let left = segment_files(&shard_dir);
    assert_eq!(left.len(), 1);
    assert!(log.index().is_empty());
}

#[test]
fn the_id_floor_survives_reclamation() {
    let dir = TempDir::new("floor");
    let opts = LogOptions {
        segment_size: 1024,
        preallocate: false,
    };
    let (mut log, _) = ShardLog::open(dir.path(), 0, opts.clone()).unwrap();
    let mut ids = QidGenerator::new(0, 0);
    let m1 = append_messages(&mut log, &mut ids, 1, 2000).remove(0);
    let m2 = append_messages(&mut log, &mut ids, 1, 2000).remove(0);
    append(&mut log, &[Record::Delete { qid: m2.clone() }]);
    let holds: Vec<Record> = (0..30).map(|_| Record::Hold { qid: m1.clone() }).collect();
    append(&mut log, &holds);
    // The newest segment now holds only a record for the older message.
    let dead = append(&mut log, &[Record::Done { qid: m1.clone() }]);
    assert_eq!(dead.len(), 4);
    drop(log);
    let (log, report) = ShardLog::open(dir.path(), 0, opts).unwrap();
    assert!(log.index().is_empty());
    assert_eq!(report.max_arrival_us, m2.time_us().unwrap());
    let mut restarted = QidGenerator::new(0, report.max_arrival_us);
    assert!(restarted.next(NOW - 10_000_000) > m2);
}

#[test]
fn a_failed_write_abandons_the_tail_and_reports_a_full_disk() {
    let dir = TempDir::new("enospc");
    let (mut log, _) = ShardLog::open(dir.path(), 1, LogOptions::default()).unwrap();
    let mut ids = QidGenerator::new(1, 0);
    let kept = append_messages(&mut log, &mut ids, 2, 100);

    let lost = ids.next(NOW);
    let mut batch = Batch::new();
    batch.push(&message(lost.clone(), 100));
    let w = log.prepare(batch);
    assert!(!w.create);
    // Half the batch reached the disk before the error.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&w.path)
            .unwrap();
        f.write_all_at(&w.bytes[..w.bytes.len() / 2], w.offset)
            .unwrap();
    }
    let err = log
        .complete(w, Err(io::Error::from_raw_os_error(libc::ENOSPC)))
        .unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert!(err.to_string().contains("0000000000000001.seg"), "{err}");
    assert!(log.index().get(&lost).is_none());

    // The next batch starts a fresh segment.
    let mut batch = Batch::new();
    let after = ids.next(NOW);
    batch.push(&message(after.clone(), 100));
    let w = log.prepare(batch);
    assert!(w.create);
    assert!(w.path.ends_with("0000000000000002.seg"));
    let other = log
        .complete(w, Err(io::Error::from_raw_os_error(libc::EIO)))
        .unwrap_err();
    assert!(!other.is_no_space());
    let after = append_messages(&mut log, &mut ids, 1, 100);
    drop(log);

    let (log, report) = ShardLog::open(dir.path(), 1, LogOptions::default()).unwrap();
    assert!(report.torn_tail_truncated_bytes > 0);
    assert!(report.corrupt.is_empty());
    for q in kept.iter().chain(&after) {
        assert!(log.index().get(q).is_some(), "{q} lost");
    }
    assert!(log.index().get(&lost).is_none());
}

#[test]
fn the_engine_may_take_the_bytes_and_must_complete_its_own_write() {
    let dir = TempDir::new("engine");
    let (mut log, _) = ShardLog::open(dir.path(), 0, LogOptions::default()).unwrap();
    let (mut other, _) = ShardLog::open(dir.path(), 1, LogOptions::default()).unwrap();
    let mut ids = QidGenerator::new(0, 0);
    let qid = ids.next(NOW);
    let mut batch = Batch::new();
    batch.push(&message(qid.clone(), 10));
    assert_eq!(batch.len(), 1);
    let mut w = log.prepare(batch);
    assert!(log.in_flight());
    assert!(w.create && w.preallocate == LogOptions::default().segment_size);
    let bytes = std::mem::take(&mut w.bytes);
    assert_eq!(w.end(), w.offset + bytes.len() as u64);

    // Another log's write is not ours.
    let stranger = other.prepare(Batch::new());
    assert!(matches!(
        log.complete(stranger, Ok(())),
        Err(StorageError::NotInFlight)
    ));

    // Do what the engine does: create, preallocate, write, sync.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&w.path)
            .unwrap();
        f.set_len(w.preallocate).unwrap();
        f.write_all_at(&bytes, w.offset).unwrap();
        f.sync_data().unwrap();
    }
    let done = log.complete(w, Ok(())).unwrap();
    assert!(done.dead_segments.is_empty());
    assert!(!log.in_flight());
    assert_eq!(log.read_message(&qid).unwrap().content.len(), 10);
}

#[test]
fn a_blank_segment_is_removed_and_an_unreadable_one_left_alone() {
    let dir = TempDir::new("blank");
    let (mut log, _) = ShardLog::open(dir.path(), 0, LogOptions::default()).unwrap();
    let mut ids = QidGenerator::new(0, 0);
    let qids = append_messages(&mut log, &mut ids, 1, 10);
    let shard_dir = log.shard_dir().to_path_buf();
    drop(log);
    // A crash between creating a segment and writing it.
    std::fs::write(shard_dir.join("0000000000000003.seg"), vec![0u8; 4096]).unwrap();
    // Something else entirely.
    std::fs::write(shard_dir.join("0000000000000002.seg"), b"not a segment").unwrap();
    let (mut log, report) = ShardLog::open(dir.path(), 0, LogOptions::default()).unwrap();
    assert_eq!(
        report.unreadable_segments,
        [shard_dir.join("0000000000000002.seg")]
    );
    assert!(log.index().get(&qids[0]).is_some());
    // New appends go to a new segment past both.
    append_messages(&mut log, &mut ids, 1, 10);
    // Everything done: segment 1 is dead, but nothing from the unreadable
    // segment 2 on is reclaimed.
    let done = append(
        &mut log,
        &[Record::Done {
            qid: qids[0].clone(),
        }],
    );
    assert_eq!(done, [shard_dir.join("0000000000000001.seg")]);
    assert_eq!(
        segment_files(&shard_dir),
        ["0000000000000002.seg", "0000000000000004.seg"]
    );
}

#[test]
fn no_space_is_recognised() {
    let e = StorageError::Io {
        path: "/q/0/x.seg".into(),
        source: io::Error::from_raw_os_error(libc::ENOSPC),
    };
    assert!(e.is_no_space());
    let e = StorageError::Io {
        path: "/q/0/x.seg".into(),
        source: io::Error::from_raw_os_error(libc::EIO),
    };
    assert!(!e.is_no_space());
    assert!(e.to_string().starts_with("/q/0/x.seg: "));
}

mod model {
    //! Random histories: whatever the log did (rolls, reclamation), a
    //! reopen rebuilds exactly the index it had.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Arrive { n: usize, size: usize },
        Status { pick: usize, rcpt: u32, kind: u8 },
        Admin { pick: usize, kind: u8 },
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1usize..4, 50usize..700).prop_map(|(n, size)| Op::Arrive { n, size }),
            4 => (any::<usize>(), 0u32..2, 0u8..3).prop_map(|(pick, rcpt, kind)| Op::Status { pick, rcpt, kind }),
            3 => (any::<usize>(), 0u8..6).prop_map(|(pick, kind)| Op::Admin { pick, kind }),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn reopen_rebuilds_the_same_index(ops in proptest::collection::vec(op(), 1..30)) {
            let dir = TempDir::new("model");
            let opts = LogOptions { segment_size: 2048, preallocate: false };
            let (mut log, _) = ShardLog::open(dir.path(), 0, opts.clone()).unwrap();
            let mut ids = QidGenerator::new(0, 0);
            for op in ops {
                let mut live: Vec<_> = log.index().iter().map(|m| m.qid.clone()).collect();
                live.sort();
                let pick = |p: usize| live.get(p % live.len().max(1)).cloned();
                let record = match op {
                    Op::Arrive { n, size } => {
                        append_messages(&mut log, &mut ids, n, size);
                        None
                    }
                    Op::Status { pick: p, rcpt, kind } => pick(p).map(|qid| Record::RcptStatus {
                        qid,
                        rcpt,
                        status: match kind {
                            0 => RecipientStatus::Delivered,
                            1 => RecipientStatus::Deferred { reason: "try later".into(), next_attempt_us: 9 },
                            _ => RecipientStatus::Bounced { reason: "no such user".into() },
                        },
                    }),
                    Op::Admin { pick: p, kind } => pick(p).map(|qid| match kind {
                        0 => Record::Done { qid },
                        1 => Record::Delete { qid },
                        2 => Record::Hold { qid },
                        3 => Record::Release { qid },
                        4 => Record::Requeue { qid },
                        _ => Record::Expire { qid },
                    }),
                    Op::Reopen => {
                        let before = snapshot(&log);
                        drop(log);
                        let (l, report) = ShardLog::open(dir.path(), 0, opts.clone()).unwrap();
                        log = l;
                        prop_assert_eq!(snapshot(&log), before);
                        prop_assert_eq!(report.torn_tail_truncated_bytes, 0);
                        prop_assert!(report.removed_segments.is_empty());
                        None
                    }
                };
                if let Some(r) = record {
                    append(&mut log, &[r]);
                }
                // Every live message can be read back.
                for m in log.index().iter() {
                    prop_assert!(log.read_message(&m.qid).is_ok());
                }
            }
            let before = snapshot(&log);
            drop(log);
            let (log, _) = ShardLog::open(dir.path(), 0, opts).unwrap();
            prop_assert_eq!(snapshot(&log), before);
        }
    }
}
