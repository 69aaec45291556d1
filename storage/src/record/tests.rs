use super::*;
use proptest::prelude::*;
use std::net::SocketAddr;

fn qid_strategy() -> impl Strategy<Value = QueueId> {
    "[0-9A-Za-z]{1,17}".prop_map(|s| QueueId::parse(&s).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn envelope_strategy() -> impl Strategy<Value = Envelope> {
    let rcpt =
        (text(), any::<u8>(), proptest::option::of(text())).prop_map(|(address, notify, orcpt)| {
            Recipient {
                address,
                notify: Notify(notify),
                orcpt,
            }
        });
    let body = prop_oneof![
        Just(Body::Unspecified),
        Just(Body::SevenBit),
        Just(Body::EightBitMime),
        Just(Body::BinaryMime),
    ];
    let ret = proptest::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]);
    (
        text(),
        proptest::collection::vec(rcpt, 0..6),
        proptest::option::of(any::<u64>()),
        body,
        any::<bool>(),
        ret,
        proptest::option::of(text()),
    )
        .prop_map(
            |(sender, recipients, size, body, smtputf8, ret, envid)| Envelope {
                sender,
                recipients,
                mail: MailParams {
                    size,
                    body,
                    smtputf8,
                    ret,
                    envid,
                },
            },
        )
}

fn client_strategy() -> impl Strategy<Value = ClientInfo> {
    let protocol = prop_oneof![
        Just(Protocol::Smtp),
        Just(Protocol::Esmtp),
        Just(Protocol::Local)
    ];
    (
        text(),
        any::<SocketAddr>(),
        proptest::option::of(text()),
        protocol,
    )
        .prop_map(|(name, sa, helo, protocol)| ClientInfo {
            name,
            addr: sa.ip(),
            port: sa.port(),
            helo,
            protocol,
        })
}

pub(crate) fn record_strategy() -> impl Strategy<Value = Record> {
    let message = (
        qid_strategy(),
        any::<u64>(),
        envelope_strategy(),
        proptest::option::of(client_strategy()),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(qid, arrival_us, envelope, client, content)| {
            Record::Message(MessageRecord {
                qid,
                arrival_us,
                envelope,
                client,
                content,
            })
        });
    let status = prop_oneof![
        Just(RecipientStatus::Delivered),
        (text(), any::<u64>()).prop_map(|(reason, next_attempt_us)| RecipientStatus::Deferred {
            reason,
            next_attempt_us
        }),
        text().prop_map(|reason| RecipientStatus::Bounced { reason }),
    ];
    let rcpt_status = (qid_strategy(), any::<u32>(), status)
        .prop_map(|(qid, rcpt, status)| Record::RcptStatus { qid, rcpt, status });
    let small = (qid_strategy(), 0..6u8).prop_map(|(qid, k)| match k {
        0 => Record::Done { qid },
        1 => Record::Delete { qid },
        2 => Record::Hold { qid },
        3 => Record::Release { qid },
        4 => Record::Requeue { qid },
        _ => Record::Expire { qid },
    });
    let void =
        (any::<u64>(), any::<u64>()).prop_map(|(segment, from)| Record::Void { segment, from });
    prop_oneof![message, rcpt_status, small, void]
}

#[test]
fn a_void_names_no_message() {
    let void = Record::Void {
        segment: 7,
        from: 4096,
    };
    assert_eq!(void.qid().as_str(), "VOID");
    assert_eq!((void.qid().time_us(), void.qid().shard()), (None, None));
    let mut buf = Vec::new();
    encode(&void, &mut buf);
    assert_eq!(decode(&buf).unwrap(), (void, buf.len()));
    // The payload of a void under any other queue ID is malformed.
    let mut other = Vec::new();
    encode(
        &Record::Done {
            qid: QueueId::parse("4jcJb04xz60").unwrap(),
        },
        &mut other,
    );
    let mut forged = other[..RECORD_HEADER_LEN].to_vec();
    forged[4] = RecordKind::Void as u8;
    let payload = [7u64.to_le_bytes(), 4096u64.to_le_bytes()].concat();
    forged[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    forged[16..20].copy_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    crate::record::reseal(&mut forged, 0);
    forged.extend_from_slice(&payload);
    assert!(matches!(
        decode(&forged),
        Err(DecodeError::Malformed { .. })
    ));
}

fn sample_message() -> Record {
    Record::Message(MessageRecord {
        qid: QueueId::parse("4jcJb04xz60").unwrap(),
        arrival_us: 1_700_000_000_000_001,
        envelope: Envelope {
            sender: "alice@example.com".into(),
            recipients: vec![
                Recipient {
                    address: "bob@example.org".into(),
                    notify: Notify(Notify::SUCCESS | Notify::FAILURE),
                    orcpt: Some("rfc822;bob@example.org".into()),
                },
                Recipient::new("carol@example.net"),
            ],
            mail: MailParams {
                size: Some(1234),
                body: Body::EightBitMime,
                smtputf8: true,
                ret: Some(Ret::Hdrs),
                envid: Some("QQ314159".into()),
            },
        },
        client: Some(ClientInfo {
            name: "mail.example.com".into(),
            addr: "2001:db8::25".parse().unwrap(),
            port: 49152,
            helo: Some("mail.example.com".into()),
            protocol: Protocol::Esmtp,
        }),
        content: b"Subject: test\r\n\r\nbody\r\n".to_vec(),
    })
}

#[test]
fn sample_round_trips_with_every_envelope_field() {
    let r = sample_message();
    let mut buf = Vec::new();
    encode(&r, &mut buf);
    let (back, len) = decode(&buf).unwrap();
    assert_eq!(len, buf.len());
    assert_eq!(back, r);
}

#[test]
fn every_byte_flip_is_detected() {
    for record in [
        sample_message(),
        Record::RcptStatus {
            qid: QueueId::parse("ABC123").unwrap(),
            rcpt: 1,
            status: RecipientStatus::Deferred {
                reason: "connect to x: Connection refused".into(),
                next_attempt_us: 42,
            },
        },
        Record::Done {
            qid: QueueId::parse("ABC123").unwrap(),
        },
    ] {
        let mut buf = Vec::new();
        encode(&record, &mut buf);
        for i in 0..buf.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = buf.clone();
                bad[i] ^= flip;
                assert!(decode(&bad).is_err(), "flip {flip:#x} at byte {i} accepted");
            }
        }
    }
}

#[test]
fn a_damaged_payload_still_names_its_message() {
    let mut buf = Vec::new();
    encode(&sample_message(), &mut buf);
    let last = buf.len() - 1;
    buf[last] ^= 1;
    let err = decode(&buf).unwrap_err();
    assert_eq!(err.qid().map(QueueId::as_str), Some("4jcJb04xz60"));
}

#[test]
fn every_truncation_is_reported_as_truncated() {
    let mut buf = Vec::new();
    encode(&sample_message(), &mut buf);
    for n in 0..buf.len() {
        assert!(
            matches!(decode(&buf[..n]), Err(DecodeError::Truncated { .. })),
            "prefix of {n} bytes"
        );
    }
}

#[test]
fn a_crafted_huge_length_is_just_truncated() {
    let mut buf = Vec::new();
    encode(
        &Record::Done {
            qid: QueueId::parse("Q1").unwrap(),
        },
        &mut buf,
    );
    buf[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut buf, 0);
    assert!(matches!(decode(&buf), Err(DecodeError::Truncated { .. })));
}

#[test]
fn the_salt_seals_the_header() {
    let mut buf = Vec::new();
    encode_sealed(&sample_message(), 0x5eed_1234, &mut buf);
    assert!(decode_sealed(&buf, 0x5eed_1234).is_ok());
    assert_eq!(decode(&buf).unwrap_err(), DecodeError::HeaderChecksum);
    reseal(&mut buf[..RECORD_HEADER_LEN], 0);
    assert!(decode(&buf).is_ok());
}

#[test]
fn meta_decoding_skips_the_content() {
    let mut buf = Vec::new();
    encode(&sample_message(), &mut buf);
    let (record, len, content_len) = decode_meta(&buf, 0).unwrap();
    assert_eq!(len, buf.len());
    assert_eq!(content_len, 23);
    let Record::Message(m) = record else {
        panic!("not a message")
    };
    assert!(m.content.is_empty());
    assert_eq!(m.envelope.recipients.len(), 2);
}

#[test]
fn queue_state_names_are_postfix_queue_names() {
    let names: Vec<_> = [
        QueueState::Incoming,
        QueueState::Active,
        QueueState::Deferred,
        QueueState::Hold,
        QueueState::Corrupt,
    ]
    .iter()
    .map(|s| s.name())
    .collect();
    assert_eq!(names, ["incoming", "active", "deferred", "hold", "corrupt"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn records_round_trip(records in proptest::collection::vec(record_strategy(), 1..4)) {
        let mut buf = Vec::new();
        for r in &records {
            encode(r, &mut buf);
        }
        let mut at = 0;
        for r in &records {
            let (back, len) = decode(&buf[at..]).unwrap();
            prop_assert_eq!(&back, r);
            at += len;
        }
        prop_assert_eq!(at, buf.len());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
        let mut with_magic = RECORD_MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = decode(&with_magic);
    }

    /// A header that verifies but carries an arbitrary payload (what a
    /// writer bug would produce) is rejected with its queue ID.
    #[test]
    fn arbitrary_payloads_under_a_valid_header_never_panic(kind in 0u8..10, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = vec![0u8; RECORD_HEADER_LEN];
        buf[0..4].copy_from_slice(&RECORD_MAGIC);
        buf[4] = kind;
        buf[5] = 3;
        buf[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        buf[16..20].copy_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        buf[QID_AT..QID_AT + 3].copy_from_slice(b"Q1z");
        reseal(&mut buf, 0);
        buf.extend_from_slice(&payload);
        if let Err(e) = decode(&buf) {
            prop_assert_eq!(e.qid().map(QueueId::as_str), Some("Q1z"));
        }
    }
}
