use super::*;
use crate::index::Location;
use crate::record::{MessageRecord, RecipientStatus};
use crate::segment::ScannedRecord;
use proptest::prelude::*;
use sluice_protocols::envelope::{Envelope, Recipient};

fn qid(s: &str) -> QueueId {
    QueueId::parse(s).unwrap()
}

fn at(record: Record) -> ScannedRecord {
    let content_len = match &record {
        Record::Message(m) => m.content.len() as u64,
        _ => 0,
    };
    ScannedRecord {
        offset: 0,
        len: 100,
        record,
        content_len,
    }
}

fn message(id: &str, arrival_us: u64) -> Record {
    Record::Message(MessageRecord {
        qid: qid(id),
        arrival_us,
        envelope: Envelope {
            sender: "s@example.com".into(),
            recipients: vec![Recipient::new("r@example.org")],
            ..Envelope::default()
        },
        client: None,
        content: vec![b'x'; 10],
    })
}

/// One message per state: `INC` incoming, `ACT` active, `DEF` deferred,
/// `HLD` hold, `COR` corrupt (arrival order as listed).
fn queue() -> Index {
    let mut ix = Index::new();
    for (i, id) in ["INC", "ACT", "DEF", "HLD"].iter().enumerate() {
        ix.apply(1, &at(message(id, 10 + i as u64)));
    }
    assert!(ix.set_active(&qid("ACT")));
    ix.apply(
        1,
        &at(Record::RcptStatus {
            qid: qid("DEF"),
            rcpt: 0,
            status: RecipientStatus::Deferred {
                reason: "connect to x[192.0.2.1]:25: Connection refused".into(),
                next_attempt_us: 99,
            },
        }),
    );
    ix.apply(1, &at(Record::Hold { qid: qid("HLD") }));
    ix.mark_corrupt(
        &qid("COR"),
        Location {
            segment: 1,
            offset: 500,
            len: 44,
        },
    );
    ix
}

fn state_id(s: QueueState) -> &'static str {
    match s {
        QueueState::Incoming => "INC",
        QueueState::Active => "ACT",
        QueueState::Deferred => "DEF",
        QueueState::Hold => "HLD",
        QueueState::Corrupt => "COR",
    }
}

const STATES: [QueueState; 5] = [
    QueueState::Incoming,
    QueueState::Active,
    QueueState::Deferred,
    QueueState::Hold,
    QueueState::Corrupt,
];

/// What an operation prints for one message named by ID, with the
/// default queues; `None` when Postfix prints nothing.
fn expected_line(op: AdminOp, state: QueueState) -> Option<&'static str> {
    use QueueState::*;
    match (op, state) {
        (_, Corrupt) => None,
        (AdminOp::Delete, _) => Some("removed"),
        (AdminOp::Hold, Hold) => None,
        (AdminOp::Hold, _) => Some("placed on hold"),
        (AdminOp::Release, Hold) => Some("released from hold"),
        (AdminOp::Release, _) => None,
        (AdminOp::Requeue, _) => Some("requeued"),
        (AdminOp::Expire | AdminOp::ExpireRelease, _) => Some("expired"),
    }
}

#[test]
fn every_op_on_every_state_with_default_queues() {
    let ix = queue();
    for op in AdminOp::ALL {
        for state in STATES {
            let id = state_id(state);
            assert_eq!(ix.get(&qid(id)).map(|m| m.state), Some(state));
            let p = plan(&ix, op, &[Target::Qid(qid(id))], None);
            let what = format!("{op} on {}", state.name());
            match expected_line(op, state) {
                None => assert_eq!(p, Plan::default(), "{what}"),
                Some(line) => {
                    assert_eq!(p.lines[0], format!("{id}: {line}"), "{what}");
                    assert_eq!(p.counts.get(op.primary_tally()), 1, "{what}");
                    assert_eq!(p.records[0].qid(), &qid(id), "{what}");
                }
            }
        }
    }
}

#[test]
fn records_match_the_operation() {
    let ix = queue();
    let one = |op, id: &str| plan(&ix, op, &[Target::Qid(qid(id))], None).records;
    assert_eq!(
        one(AdminOp::Delete, "DEF"),
        [Record::Delete { qid: qid("DEF") }]
    );
    assert_eq!(
        one(AdminOp::Hold, "INC"),
        [Record::Hold { qid: qid("INC") }]
    );
    assert_eq!(
        one(AdminOp::Release, "HLD"),
        [Record::Release { qid: qid("HLD") }]
    );
    assert_eq!(
        one(AdminOp::Requeue, "HLD"),
        [Record::Requeue { qid: qid("HLD") }]
    );
    assert_eq!(
        one(AdminOp::Expire, "HLD"),
        [Record::Expire { qid: qid("HLD") }]
    );
    // -f on a held message: expire, then release, and say both.
    let p = plan(
        &ix,
        AdminOp::ExpireRelease,
        &[Target::Qid(qid("HLD"))],
        None,
    );
    assert_eq!(
        p.records,
        [
            Record::Expire { qid: qid("HLD") },
            Record::Release { qid: qid("HLD") }
        ]
    );
    assert_eq!(p.lines, ["HLD: expired", "HLD: released from hold"]);
    assert_eq!(
        p.counts,
        Counts {
            expired: 1,
            released: 1,
            ..Counts::default()
        }
    );
    // -f on mail that is not held only expires it.
    assert_eq!(
        one(AdminOp::ExpireRelease, "DEF"),
        [Record::Expire { qid: qid("DEF") }]
    );
}

#[test]
fn all_acts_on_the_default_queues_quietly_in_arrival_order() {
    let ix = queue();
    let p = plan(&ix, AdminOp::Delete, &[Target::All], None);
    let ids: Vec<&str> = p.records.iter().map(|r| r.qid().as_str()).collect();
    assert_eq!(
        ids,
        ["INC", "ACT", "DEF", "HLD"],
        "corrupt is not a default"
    );
    assert!(p.lines.is_empty(), "mass operations print only the summary");
    assert_eq!(p.counts.deleted, 4);

    let held = plan(&ix, AdminOp::Hold, &[Target::All], None);
    assert_eq!(held.counts.held, 3);
    let released = plan(&ix, AdminOp::Release, &[Target::All], None);
    assert_eq!(released.records, [Record::Release { qid: qid("HLD") }]);
}

#[test]
fn explicit_queues_replace_the_defaults() {
    let ix = queue();
    let only =
        |op, qs: &[QueueState], id: &str| plan(&ix, op, &[Target::Qid(qid(id))], Some(qs)).counts;
    // -d DEF hold: DEF is not in hold.
    assert_eq!(only(AdminOp::Delete, &[QueueState::Hold], "DEF").deleted, 0);
    assert_eq!(
        only(AdminOp::Delete, &[QueueState::Deferred], "DEF").deleted,
        1
    );
    // Naming hold does not let -h hold held mail, nor -H release others.
    assert_eq!(only(AdminOp::Hold, &[QueueState::Hold], "HLD").held, 0);
    assert_eq!(
        only(AdminOp::Release, &[QueueState::Deferred], "DEF").released,
        0
    );
    // -d ALL deferred.
    let p = plan(
        &ix,
        AdminOp::Delete,
        &[Target::All],
        Some(&[QueueState::Deferred]),
    );
    assert_eq!(p.records, [Record::Delete { qid: qid("DEF") }]);
}

#[test]
fn corrupt_messages_are_deleted_only_when_corrupt_is_named() {
    let ix = queue();
    let corrupt = [QueueState::Corrupt];
    let p = plan(&ix, AdminOp::Delete, &[Target::All], Some(&corrupt));
    assert_eq!(p.records, [Record::Delete { qid: qid("COR") }]);
    let p = plan(
        &ix,
        AdminOp::Delete,
        &[Target::Qid(qid("COR"))],
        Some(&corrupt),
    );
    assert_eq!(p.lines, ["COR: removed"]);
    for op in AdminOp::ALL.into_iter().filter(|&o| o != AdminOp::Delete) {
        let p = plan(&ix, op, &[Target::All], Some(&corrupt));
        assert_eq!(p, Plan::default(), "{op} must leave corrupt mail alone");
    }
}

#[test]
fn unknown_and_repeated_ids_are_skipped_silently() {
    let ix = queue();
    let targets = [
        Target::Qid(qid("NOPE")),
        Target::Qid(qid("DEF")),
        Target::Qid(qid("DEF")),
        Target::All,
    ];
    let p = plan(&ix, AdminOp::Delete, &targets, None);
    assert_eq!(p.lines, ["DEF: removed"]);
    assert_eq!(p.counts.deleted, 4, "DEF once, then the other three");
    assert_eq!(p.records.len(), 4);
}

#[test]
fn applying_a_plan_gives_the_postfix_state() {
    let cases = [
        (AdminOp::Delete, "DEF", None),
        (AdminOp::Hold, "DEF", Some((QueueState::Hold, false))),
        (AdminOp::Release, "HLD", Some((QueueState::Deferred, false))),
        (AdminOp::Requeue, "HLD", Some((QueueState::Incoming, false))),
        (AdminOp::Expire, "HLD", Some((QueueState::Hold, true))),
        (
            AdminOp::ExpireRelease,
            "HLD",
            Some((QueueState::Deferred, true)),
        ),
    ];
    for (op, id, want) in cases {
        let mut ix = queue();
        let p = plan(&ix, op, &[Target::Qid(qid(id))], None);
        for r in p.records {
            ix.apply(2, &at(r));
        }
        let got = ix.get(&qid(id)).map(|m| (m.state, m.forced_expire));
        assert_eq!(got, want, "{op} {id}");
    }
}

#[test]
fn summaries_singular_plural_and_order() {
    assert_eq!(summary(Tally::Deleted, 0), "Deleted: 0 messages");
    assert_eq!(summary(Tally::Deleted, 1), "Deleted: 1 message");
    assert_eq!(summary(Tally::Deleted, 2), "Deleted: 2 messages");
    assert_eq!(summary(Tally::Held, 1), "Placed on hold: 1 message");
    assert_eq!(
        summary(Tally::Released, 3),
        "Released from hold: 3 messages"
    );
    assert_eq!(summary(Tally::Requeued, 1), "Requeued: 1 message");
    assert_eq!(summary(Tally::Expired, 0), "Force-expired: 0 messages");

    let counts = Counts {
        deleted: 2,
        released: 1,
        ..Counts::default()
    };
    // Options given as -f -d -H -d: Postfix's fixed order, one line each.
    let ops = [
        AdminOp::ExpireRelease,
        AdminOp::Delete,
        AdminOp::Release,
        AdminOp::Delete,
    ];
    assert_eq!(
        summaries(&ops, &counts),
        [
            "Deleted: 2 messages",
            "Released from hold: 1 message",
            "Force-expired: 0 messages"
        ]
    );
    assert!(summaries(&[], &counts).is_empty());
}

#[test]
fn request_golden_and_errors() {
    let r = AdminRequest {
        op: AdminOp::Hold,
        queues: Some(vec![QueueState::Deferred, QueueState::Incoming]),
        targets: vec![Target::Qid(qid("4jcJb04xz60")), Target::All],
    };
    assert_eq!(
        r.encode(),
        "postsuper hold deferred,incoming 4jcJb04xz60 ALL"
    );
    assert_eq!(AdminRequest::decode(&format!("{}\r\n", r.encode())), Ok(r));
    assert_eq!(
        encode_request(AdminOp::ExpireRelease, None, &[Target::All]),
        "postsuper expire-release - ALL"
    );
    let err = |l: &str| decode_request(l).unwrap_err();
    assert_eq!(err("showq"), AdminError::NotARequest);
    assert_eq!(err("postsuper"), AdminError::NotARequest);
    assert_eq!(
        err("postsuper zap - ALL"),
        AdminError::UnknownOp("zap".into())
    );
    assert_eq!(
        err("postsuper delete maildrop ALL"),
        AdminError::UnknownQueue("maildrop".into())
    );
    assert_eq!(
        decode_request("postsuper delete - all").map(|r| r.2),
        Ok(vec![Target::Qid(qid("all"))]),
        "ALL is upper case only; `all` is just an ID that matches nothing"
    );
    assert_eq!(
        err("postsuper delete - bad/id"),
        AdminError::InvalidQueueId("bad/id".into())
    );
    assert_eq!(err("postsuper delete -"), AdminError::NoTargets);
}

#[test]
fn long_target_lists_are_split_under_the_request_limit() {
    let targets: Vec<Target> = (0..500)
        .map(|i| Target::Qid(qid(&format!("4jcJb04xz6{i:04}"))))
        .collect();
    let lines = encode_requests(AdminOp::Delete, Some(&[QueueState::Hold]), &targets);
    assert!(lines.len() > 1);
    let mut back = Vec::new();
    for l in &lines {
        assert!(
            l.len() < MAX_REQUEST_LINE,
            "{} bytes and a newline",
            l.len()
        );
        let (op, queues, targets) = decode_request(l).unwrap();
        assert_eq!(op, AdminOp::Delete);
        assert_eq!(queues, Some(vec![QueueState::Hold]));
        back.extend(targets);
    }
    assert_eq!(back, targets);
    assert!(encode_requests(AdminOp::Delete, None, &[]).is_empty());
}

#[test]
fn answers_round_trip() {
    let ix = queue();
    let p = plan(
        &ix,
        AdminOp::ExpireRelease,
        &[Target::Qid(qid("HLD"))],
        None,
    );
    let a = encode_answer(AdminOp::ExpireRelease, &p);
    assert_eq!(a, "HLD: expired\nHLD: released from hold\ncount 1 1\n.\n");
    let lines: Vec<AnswerLine> = a
        .lines()
        .map(|l| decode_answer_line(AdminOp::ExpireRelease, l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            AnswerLine::Message("HLD: expired".into()),
            AnswerLine::Message("HLD: released from hold".into()),
            AnswerLine::Count(p.counts),
            AnswerLine::End
        ]
    );
    let d = plan(&ix, AdminOp::Delete, &[Target::All], None);
    assert_eq!(encode_answer(AdminOp::Delete, &d), "count 4\n.\n");
    assert_eq!(
        decode_answer_line(AdminOp::Delete, "count 4"),
        Ok(AnswerLine::Count(Counts {
            deleted: 4,
            ..Counts::default()
        }))
    );
    assert_eq!(
        encode_error_answer("queue file write error\nsecond line"),
        "error queue file write error second line\n.\n"
    );
    assert_eq!(
        decode_answer_line(AdminOp::Delete, "error disk full"),
        Ok(AnswerLine::Error("disk full".into()))
    );
    for bad in ["count", "count x", "count 1 2", "?", "", "garbage"] {
        assert!(decode_answer_line(AdminOp::Delete, bad).is_err(), "{bad:?}");
    }
}

fn any_op() -> impl Strategy<Value = AdminOp> {
    prop::sample::select(AdminOp::ALL.to_vec())
}

fn any_state() -> impl Strategy<Value = QueueState> {
    prop::sample::select(STATES.to_vec())
}

fn any_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::All),
        "[0-9A-Za-z]{1,17}".prop_map(|s| Target::Qid(qid(&s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_round_trip(
        op in any_op(),
        queues in prop::option::of(prop::collection::vec(any_state(), 1..5)),
        targets in prop::collection::vec(any_target(), 1..20),
    ) {
        let r = AdminRequest { op, queues, targets };
        prop_assert_eq!(AdminRequest::decode(&r.encode()), Ok(r.clone()));
        prop_assert_eq!(decode_request(&r.encode()), Ok((r.op, r.queues, r.targets)));
    }

    #[test]
    fn decoding_arbitrary_lines_never_panics(line in ".{0,200}") {
        let _ = decode_request(&line);
        let _ = decode_answer_line(AdminOp::Delete, &line);
    }
}
