use super::*;
use crate::record::MessageRecord;
use sluice_protocols::envelope::{Envelope, Recipient};

fn qid(s: &str) -> QueueId {
    QueueId::parse(s).unwrap()
}

fn at(offset: u64, record: Record) -> ScannedRecord {
    let content_len = match &record {
        Record::Message(m) => m.content.len() as u64,
        _ => 0,
    };
    ScannedRecord {
        offset,
        len: 100,
        record,
        content_len,
    }
}

fn msg(id: &str, rcpts: &[&str]) -> Record {
    Record::Message(MessageRecord {
        qid: qid(id),
        arrival_us: 5,
        envelope: Envelope {
            sender: "s@example.com".into(),
            recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
            ..Envelope::default()
        },
        client: None,
        content: vec![0; 42],
    })
}

fn deferred(id: &str, rcpt: u32) -> Record {
    Record::RcptStatus {
        qid: qid(id),
        rcpt,
        status: RecipientStatus::Deferred {
            reason: "connect to x[192.0.2.1]:25: Connection refused".into(),
            next_attempt_us: 77,
        },
    }
}

/// State and forced-expiry flag, or `None` once the message is gone.
type Outcome = Option<(QueueState, bool)>;

fn state_after(records: Vec<Record>) -> Outcome {
    let mut index = Index::new();
    index.apply(1, &at(0, msg("A1", &["x@example.org"])));
    for r in records {
        index.apply(1, &at(200, r));
    }
    index.get(&qid("A1")).map(|m| (m.state, m.forced_expire))
}

#[test]
fn state_transitions_follow_postfix() {
    use QueueState::*;
    let a = || qid("A1");
    let table: Vec<(Vec<Record>, Outcome)> = vec![
        (vec![], Some((Incoming, false))),
        (vec![deferred("A1", 0)], Some((Deferred, false))),
        (vec![Record::Hold { qid: a() }], Some((Hold, false))),
        (
            vec![Record::Hold { qid: a() }, deferred("A1", 0)],
            Some((Hold, false)),
        ),
        (
            vec![Record::Hold { qid: a() }, Record::Release { qid: a() }],
            Some((Deferred, false)),
        ),
        (vec![Record::Release { qid: a() }], Some((Incoming, false))),
        (vec![Record::Expire { qid: a() }], Some((Incoming, true))),
        (
            vec![
                Record::Hold { qid: a() },
                Record::Expire { qid: a() },
                Record::Requeue { qid: a() },
            ],
            Some((Incoming, false)),
        ),
        (vec![Record::Done { qid: a() }], None),
        (vec![Record::Delete { qid: a() }], None),
        (vec![deferred("A1", 5)], Some((Corrupt, false))),
        (
            vec![deferred("A1", 5), Record::Release { qid: a() }],
            Some((Corrupt, false)),
        ),
    ];
    for (records, want) in table {
        let shown = format!("{records:?}");
        assert_eq!(state_after(records), want, "{shown}");
    }
}

#[test]
fn recipient_outcomes() {
    let mut index = Index::new();
    index.apply(1, &at(0, msg("A1", &["a@x", "b@x", "c@x"])));
    index.apply(1, &at(100, deferred("A1", 1)));
    let status = |rcpt, status| Record::RcptStatus {
        qid: qid("A1"),
        rcpt,
        status,
    };
    index.apply(1, &at(150, status(0, RecipientStatus::Delivered)));
    index.apply(
        1,
        &at(
            160,
            status(
                2,
                RecipientStatus::Bounced {
                    reason: "user unknown".into(),
                },
            ),
        ),
    );
    let m = index.get(&qid("A1")).unwrap();
    assert_eq!(m.size, 42);
    assert_eq!(m.next_attempt_us, Some(77));
    let r: Vec<_> = m
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.done, r.reason.is_some()))
        .collect();
    assert_eq!(
        r,
        [
            ("a@x", true, false),
            ("b@x", false, true),
            ("c@x", true, true)
        ]
    );
    assert_eq!(
        m.pending_recipients().map(|(i, _)| i).collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn corrupt_records_create_or_mark_entries() {
    let mut index = Index::new();
    index.apply(1, &at(0, msg("A1", &["a@x"])));
    let loc = Location {
        segment: 2,
        offset: 40,
        len: 10,
    };
    index.mark_corrupt(&qid("A1"), loc);
    index.mark_corrupt(&qid("B2"), loc);
    assert_eq!(index.get(&qid("A1")).unwrap().state, QueueState::Corrupt);
    assert_eq!(index.get(&qid("B2")).unwrap().state, QueueState::Corrupt);
    assert_eq!(index.get(&qid("B2")).unwrap().location, loc);
    assert_eq!((index.live_in_segment(1), index.live_in_segment(2)), (1, 1));
    index.apply(3, &at(0, Record::Hold { qid: qid("B2") }));
    assert_eq!(index.get(&qid("B2")).unwrap().state, QueueState::Corrupt);
    index.apply(3, &at(0, Record::Delete { qid: qid("B2") }));
    assert_eq!(index.live_in_segment(2), 0);
}

#[test]
fn unknown_ids_are_ignored() {
    let mut index = Index::new();
    index.apply(1, &at(0, deferred("Z9", 0)));
    index.apply(1, &at(0, Record::Done { qid: qid("Z9") }));
    index.apply(1, &at(0, Record::Hold { qid: qid("Z9") }));
    assert!(index.is_empty());
}

#[test]
fn live_counts_and_oldest_live_segment() {
    let mut index = Index::new();
    index.apply(1, &at(0, msg("A1", &["a@x"])));
    index.apply(2, &at(0, msg("B2", &["a@x"])));
    index.apply(2, &at(100, msg("C3", &["a@x"])));
    assert_eq!(index.oldest_live_segment(), Some(1));
    index.apply(3, &at(0, Record::Done { qid: qid("A1") }));
    assert_eq!(index.oldest_live_segment(), Some(2));
    assert_eq!(index.live_in_segment(2), 2);
    // Compaction copies C3 forward: the segment count follows it.
    index.apply(4, &at(0, msg("C3", &["a@x"])));
    index.apply(4, &at(0, Record::Delete { qid: qid("B2") }));
    assert_eq!(index.oldest_live_segment(), Some(4));
    assert_eq!(index.len(), 1);
}

#[test]
fn set_active_only_from_incoming_or_deferred() {
    let mut index = Index::new();
    index.apply(1, &at(0, msg("A1", &["a@x"])));
    index.apply(1, &at(0, msg("B2", &["a@x"])));
    index.apply(1, &at(0, Record::Hold { qid: qid("B2") }));
    assert!(index.set_active(&qid("A1")));
    assert_eq!(index.get(&qid("A1")).unwrap().state, QueueState::Active);
    assert!(!index.set_active(&qid("B2")));
    assert!(!index.set_active(&qid("C3")));
}
