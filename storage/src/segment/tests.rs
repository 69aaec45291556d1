use super::*;
use crate::record::{encode_sealed, MessageRecord, RecipientStatus};
use proptest::prelude::*;
use sluice_protocols::envelope::{Envelope, Recipient};

const SALT: u32 = 0x0bad_cafe;

fn qid(n: u32) -> QueueId {
    QueueId::parse(&format!("Q{n}")).unwrap()
}

fn message(n: u32, content_len: usize) -> Record {
    Record::Message(MessageRecord {
        qid: qid(n),
        arrival_us: u64::from(n),
        envelope: Envelope {
            sender: "a@example.com".into(),
            recipients: vec![Recipient::new("b@example.org")],
            ..Envelope::default()
        },
        client: None,
        content: vec![b'x'; content_len],
    })
}

/// A segment holding `records`, and the offset of each.
fn segment(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let header = SegmentHeader {
        shard: 2,
        seq: 7,
        salt: SALT,
        floor_us: 99,
    };
    let mut bytes = header.encode().to_vec();
    let mut offsets = Vec::new();
    for r in records {
        offsets.push(bytes.len());
        encode_sealed(r, SALT, &mut bytes);
    }
    (bytes, offsets)
}

fn three() -> Vec<Record> {
    vec![
        message(1, 100),
        Record::RcptStatus {
            qid: qid(1),
            rcpt: 0,
            status: RecipientStatus::Delivered,
        },
        message(2, 300),
    ]
}

fn qids_of(scan: &SegmentScan) -> Vec<&str> {
    scan.records
        .iter()
        .map(|r| r.record.qid().as_str())
        .collect()
}

#[test]
fn file_names_are_sixteen_digits() {
    assert_eq!(file_name(42), "0000000000000042.seg");
    assert_eq!(parse_file_name("0000000000000042.seg"), Some(42));
    for bad in ["42.seg", "000000000000004x.seg", "0000000000000042.tmp"] {
        assert_eq!(parse_file_name(bad), None, "{bad}");
    }
}

#[test]
fn header_round_trips_and_rejects_damage() {
    let h = SegmentHeader {
        shard: 5,
        seq: 123,
        salt: 77,
        floor_us: 1 << 50,
    };
    let bytes = h.encode();
    assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
    for i in 0..SEGMENT_CRC_AT + 4 {
        let mut bad = bytes;
        bad[i] ^= 0x10;
        assert!(SegmentHeader::decode(&bad).is_err(), "byte {i}");
    }
    assert_eq!(
        SegmentHeader::decode(&[0u8; 4096]),
        Err(SegmentHeaderError::Blank)
    );
    assert_eq!(SegmentHeader::decode(&[]), Err(SegmentHeaderError::Blank));
}

#[test]
fn clean_segment_with_preallocated_zeros() {
    let (mut bytes, offsets) = segment(&three());
    let end = bytes.len() as u64;
    bytes.resize(bytes.len() + 10_000, 0);
    let scan = scan(&bytes).unwrap();
    assert_eq!(qids_of(&scan), ["Q1", "Q1", "Q2"]);
    assert_eq!(
        scan.records
            .iter()
            .map(|r| r.offset as usize)
            .collect::<Vec<_>>(),
        offsets
    );
    assert_eq!(scan.records[2].content_len, 300);
    assert_eq!(
        (scan.end, scan.dirty_end, scan.torn_tail()),
        (end, end, None)
    );
    assert!(scan.corrupt.is_empty());
}

/// A crash while the last record was being written, cut at every byte,
/// with the file either ending there or preallocated (zeros after), or
/// with stale garbage after the cut.
#[test]
fn torn_tail_at_every_byte_of_the_last_record() {
    let (full, offsets) = segment(&three());
    let last = offsets[2];
    for cut in last..full.len() {
        for filler in [None, Some(0u8), Some(0x5a)] {
            let mut bytes = full[..cut].to_vec();
            if let Some(f) = filler {
                bytes.resize(full.len() + 64, f);
            }
            let scan = scan(&bytes).unwrap();
            assert_eq!(qids_of(&scan), ["Q1", "Q1"], "cut {cut} filler {filler:?}");
            assert_eq!(scan.end, last as u64);
            assert!(scan.corrupt.is_empty());
            let expect_dirty = cut > last || filler == Some(0x5a);
            assert_eq!(scan.torn_tail().is_some(), expect_dirty, "cut {cut}");
            assert_eq!(scan.dirty_end, crate::segment::nonzero_len(&bytes) as u64);
        }
    }
}

#[test]
fn damaged_payload_in_the_middle_names_the_message() {
    let (mut bytes, offsets) = segment(&three());
    bytes[offsets[0] + RECORD_HEADER_LEN + 20] ^= 0x01;
    let scan = scan(&bytes).unwrap();
    assert_eq!(qids_of(&scan), ["Q1", "Q2"]);
    assert_eq!(scan.corrupt.len(), 1);
    assert_eq!(scan.corrupt[0].offset, offsets[0] as u64);
    assert_eq!(scan.corrupt[0].len, (offsets[1] - offsets[0]) as u64);
    assert_eq!(scan.corrupt[0].qids, [qid(1)]);
    assert_eq!(scan.end, bytes.len() as u64);
}

#[test]
fn damaged_header_in_the_middle_is_resynced_past() {
    let (mut bytes, offsets) = segment(&three());
    bytes[offsets[1] + 9] ^= 0x40; // payload length
    let scan = scan(&bytes).unwrap();
    assert_eq!(qids_of(&scan), ["Q1", "Q2"]);
    assert_eq!(scan.corrupt[0].offset, offsets[1] as u64);
    // The queue ID field survived, so it is a good guess.
    assert_eq!(scan.corrupt[0].qids, [qid(1)]);
}

#[test]
fn a_zeroed_block_in_the_middle_keeps_later_records() {
    let mut records = vec![];
    for n in 0..20 {
        records.push(message(n, 500));
    }
    let (mut bytes, offsets) = segment(&records);
    // Lose a whole 4 KiB block: records 5..=12 or so vanish.
    bytes[4096..8192].fill(0);
    let scan = scan(&bytes).unwrap();
    assert!(qids_of(&scan).contains(&"Q19"));
    assert_eq!(scan.corrupt.len(), 1);
    let span = &scan.corrupt[0];
    assert!(span.offset <= 4096 && span.offset + span.len >= 8192);
    // Records whose headers lie in the span but outside the zeros are named.
    let named: Vec<_> = offsets
        .iter()
        .enumerate()
        .filter(|&(_, &o)| o as u64 >= span.offset && (o as u64) < span.offset + span.len)
        .filter(|&(_, &o)| o + RECORD_HEADER_LEN <= 4096 || o >= 8192)
        .map(|(n, _)| qid(n as u32))
        .collect();
    for q in &named {
        assert!(span.qids.contains(q), "{q} not named in {:?}", span.qids);
    }
}

/// A record mailed to us inside a message body does not verify under the
/// segment's salt, so resync after damage does not pick it up.
#[test]
fn records_inside_content_are_not_resynced_to() {
    let mut forged = Vec::new();
    record::encode(&Record::Delete { qid: qid(9) }, &mut forged);
    let mut evil = message(1, 0);
    if let Record::Message(m) = &mut evil {
        m.content = forged.repeat(3);
    }
    let (mut bytes, offsets) = segment(&[evil, message(2, 10)]);
    bytes[offsets[0]] ^= 0xff; // damage the magic of the carrier
    let scan = scan(&bytes).unwrap();
    assert_eq!(qids_of(&scan), ["Q2"]);
    assert_eq!(scan.corrupt[0].len, (offsets[1] - offsets[0]) as u64);
}

#[test]
fn every_single_byte_flip_is_survived() {
    let (bytes, _) = segment(&three());
    for i in SEGMENT_HEADER_LEN..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        let scan = scan(&bad).unwrap();
        // The flipped record is lost (as corrupt, or as the torn tail);
        // the other two survive.
        assert_eq!(scan.records.len(), 2, "byte {i}");
        assert!(scan.end <= bad.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scanning_arbitrary_damage_never_panics(
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (mut bytes, _) = segment(&three());
        bytes.extend_from_slice(&tail);
        for (at, v) in damage {
            let i = SEGMENT_HEADER_LEN + at.index(bytes.len() - SEGMENT_HEADER_LEN);
            bytes[i] = v;
        }
        let scan = scan(&bytes).unwrap();
        let mut last_end = SEGMENT_HEADER_LEN as u64;
        for r in &scan.records {
            prop_assert!(r.offset >= last_end);
            last_end = r.offset + r.len;
        }
        prop_assert!(last_end <= scan.end);
        prop_assert!(scan.end <= scan.dirty_end);
        prop_assert!(scan.dirty_end <= bytes.len() as u64);
    }

    #[test]
    fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = scan(&bytes);
        let mut with_header = SegmentHeader { shard: 0, seq: 1, salt: 0, floor_us: 0 }.encode().to_vec();
        with_header.extend_from_slice(&bytes);
        prop_assert!(scan(&with_header).is_ok());
    }
}

#[test]
fn leading_voids_stop_at_the_first_other_record() {
    use crate::record::Record;
    let header = SegmentHeader {
        shard: 0,
        seq: 3,
        salt: 9,
        floor_us: 0,
    };
    let mut bytes = header.encode().to_vec();
    for (segment, from) in [(1, 40), (2, 0)] {
        crate::record::encode_sealed(&Record::Void { segment, from }, 9, &mut bytes);
    }
    let qid = crate::qid::QueueId::parse("4jcJb04xz60").unwrap();
    crate::record::encode_sealed(&Record::Done { qid: qid.clone() }, 9, &mut bytes);
    // A void after another record is not a leading one.
    crate::record::encode_sealed(
        &Record::Void {
            segment: 9,
            from: 9,
        },
        9,
        &mut bytes,
    );
    let found = leading_voids(&bytes);
    assert_eq!(found.voids, [(1, 40), (2, 0)]);
    assert!(!found.needs_more);
    // A prefix that ends inside the voids asks for more.
    let found = leading_voids(&bytes[..SEGMENT_HEADER_LEN + 80]);
    assert_eq!((found.voids, found.needs_more), (vec![(1, 40)], true));
    // No usable header, no voids.
    assert_eq!(leading_voids(b"SLUICESG"), LeadingVoids::default());
}
