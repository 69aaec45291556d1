//! Bounded fuzzing on stable: each target gets generated inputs shaped to
//! its alphabet (proptest strategies below), at most `CASES` of them and
//! at most `BUDGET` of wall time, whichever ends first. A failure is shrunk
//! and printed as a byte string to commit under `fuzz/seeds/<target>/`.
//!
//! Longer runs: `SLUICE_FUZZ_CASES=1000000 SLUICE_FUZZ_SECS=600 cargo
//! nextest run -p sluice-fuzz-targets --test generated` (or cargo-fuzz on
//! nightly, see fuzz/README.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use sluice_fuzz_targets::{
    dns_reply, main_cf, master_cf, queue_record, queue_segment, smtp_reply, smtp_server,
};
use sluice_protocols::envelope::{
    Body, ClientInfo, Envelope, MailParams, Notify, Protocol, Recipient, Ret,
};
use sluice_protocols::smtp::client::reply::{ReplyParser, LINE_LENGTH_LIMIT, MAX_REPLY_BYTES};
use sluice_storage::qid::QueueId;
use sluice_storage::record::{self, MessageRecord, RecipientStatus, Record};

/// Cases per target unless `SLUICE_FUZZ_CASES` says otherwise (explicit,
/// not proptest's default or its PROPTEST_CASES).
const CASES: u32 = 2_000;
/// Wall time per target unless `SLUICE_FUZZ_SECS` says otherwise.
const BUDGET: Duration = Duration::from_secs(2);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `target` panics on `input`.
fn fails(target: fn(&[u8]), input: &[u8]) -> Option<String> {
    let err = std::panic::catch_unwind(|| target(input)).err()?;
    Some(
        err.downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    )
}

/// Runs `target` on inputs from `strategy` until `CASES` inputs or
/// `BUDGET` of time have gone by; on failure, shrinks the input (proptest's
/// simplify/complicate walk, itself bounded) and panics with it.
fn fuzz(name: &str, strategy: impl Strategy<Value = Vec<u8>>, target: fn(&[u8])) {
    let cases: u32 = env_or("SLUICE_FUZZ_CASES", CASES);
    let budget = Duration::from_secs(env_or("SLUICE_FUZZ_SECS", BUDGET.as_secs()));
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let start = Instant::now();
    let mut ran = 0u32;
    while ran < cases && start.elapsed() < budget {
        ran += 1;
        let mut tree = strategy.new_tree(&mut runner).expect("strategy");
        let Some(mut why) = fails(target, &tree.current()) else {
            continue;
        };
        let mut smallest = tree.current();
        let shrink_start = Instant::now();
        let mut failing = true;
        for _ in 0..10_000 {
            let moved = if failing {
                tree.simplify()
            } else {
                tree.complicate()
            };
            if !moved || shrink_start.elapsed() > Duration::from_secs(20) {
                break;
            }
            let input = tree.current();
            match fails(target, &input) {
                Some(w) => {
                    (why, smallest, failing) = (w, input, true);
                }
                None => failing = false,
            }
        }
        panic!(
            "{name}: {why}\nshrunk input (save it as fuzz/seeds/{name}/<bug>): b\"{}\"",
            smallest.escape_ascii()
        );
    }
    eprintln!("{name}: {ran} generated inputs in {:.2?}", start.elapsed());
}

/// One of `words`, or raw bytes.
fn word(words: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::sample::select(words).prop_map(|w| w.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..6),
    ]
}

fn concat(parts: Vec<Vec<u8>>) -> Vec<u8> {
    parts.concat()
}

// ---- SMTP server -------------------------------------------------------

#[test]
fn smtp_server_session() {
    // The target maps bytes onto its own alphabet already.
    let strategy = vec(any::<u8>(), 0..400);
    fuzz("smtp_server", strategy, smtp_server::run);
}

// ---- SMTP client reply parser -----------------------------------------

fn reply_line() -> impl Strategy<Value = Vec<u8>> {
    let code = word(&[
        "250", "220", "354", "421", "451", "550", "554", "999", "25", "2500",
    ]);
    let sep = word(&["-", " ", "", "\t", "x"]);
    let text = prop_oneof![
        6 => vec(word(&["2.1.0 ", "5.7.1", "4.3.0 ", "5.1.1234", "Ok", " ", "mx.example", "SIZE 10240000", "\u{e9}", "\u{0}", "\u{7f}", "\r", "\x1b[31m"]), 0..6).prop_map(concat),
        1 => (any::<u8>(), 0usize..3000).prop_map(|(b, n)| vec![b; n]),
    ];
    let end = word(&["\r\n", "\n", "\r", ""]);
    (code, sep, text, end).prop_map(|(a, b, c, d)| [a, b, c, d].concat())
}

#[test]
fn smtp_reply_parser() {
    let strategy = (any::<u8>(), vec(reply_line(), 0..12)).prop_map(|(flags, lines)| {
        let mut out = vec![flags];
        out.extend(lines.concat());
        out
    });
    fuzz("smtp_reply", strategy, smtp_reply::run);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// A well-formed multi-line reply reads back as the lines given.
    #[test]
    fn smtp_reply_round_trip(
        code in 200u16..=599,
        texts in vec("[ -~]{0,40}", 1..8),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut wire = String::new();
        for (i, t) in texts.iter().enumerate() {
            let sep = if i + 1 == texts.len() { ' ' } else { '-' };
            wire.push_str(&format!("{code}{sep}{t}{eol}"));
        }
        let mut p = ReplyParser::new(LINE_LENGTH_LIMIT, MAX_REPLY_BYTES);
        let got = p.feed(wire.as_bytes()).unwrap();
        prop_assert_eq!(got.consumed, wire.len());
        let reply = got.reply.expect("one whole reply");
        prop_assert_eq!(reply.code, code);
        prop_assert_eq!(reply.line_texts().collect::<Vec<_>>(), texts.iter().map(String::as_str).collect::<Vec<_>>());
        let results = smtp_reply::replies(LINE_LENGTH_LIMIT, MAX_REPLY_BYTES, wire.as_bytes(), 3);
        prop_assert_eq!(results.len(), 1);
    }
}

// ---- DNS wire parser ---------------------------------------------------

/// A name: labels from a small set (or hostile ones), ending in the root,
/// a pointer to the question (offset 12) or a pointer anywhere.
fn dns_name() -> impl Strategy<Value = Vec<u8>> {
    let label = prop_oneof![
        4 => proptest::sample::select(&["mx", "mx1", "example", "org", "a", "xn--bcher-kva", "_x"][..])
            .prop_map(|l| { let mut v = vec![l.len() as u8]; v.extend_from_slice(l.as_bytes()); v }),
        1 => vec(any::<u8>(), 0..70).prop_map(|l| { let mut v = vec![l.len() as u8]; v.extend(l); v }),
        1 => vec(any::<u8>(), 1..4),
    ];
    let end = prop_oneof![
        3 => Just(vec![0u8]),
        3 => Just(vec![0xC0, 12]),
        1 => any::<u16>().prop_map(|p| (0xC000 | (p & 0x3FFF)).to_be_bytes().to_vec()),
        1 => Just(Vec::new()),
    ];
    (vec(label, 0..4), end).prop_map(|(labels, end)| [labels.concat(), end].concat())
}

fn dns_record() -> impl Strategy<Value = Vec<u8>> {
    let rtype = prop_oneof![
        4 => Just(15u16), 3 => Just(1u16), 2 => Just(28u16), 2 => Just(5u16), 1 => any::<u16>(),
    ];
    let class = prop_oneof![5 => Just(1u16), 1 => any::<u16>()];
    let owner = prop_oneof![3 => Just(vec![0xC0, 12]), 2 => dns_name()];
    (
        owner,
        rtype,
        class,
        any::<u32>(),
        dns_name(),
        any::<u16>(),
        vec(any::<u8>(), 0..20),
        0u8..4,
    )
        .prop_map(|(owner, rtype, class, ttl, name, pref, junk, shape)| {
            let rdata = match (rtype, shape) {
                (_, 3) => junk,
                (15, _) => [pref.to_be_bytes().to_vec(), name].concat(),
                (5, _) => name,
                (1, _) => junk.iter().copied().chain([192, 0, 2, 1]).take(4).collect(),
                (28, _) => junk
                    .iter()
                    .copied()
                    .chain([0x20, 1, 0xd, 0xb8])
                    .chain([0; 12])
                    .take(16)
                    .collect(),
                _ => junk,
            };
            // Usually the true length; sometimes a lie.
            let rdlen = if shape == 2 { pref } else { rdata.len() as u16 };
            let mut out = owner;
            out.extend(rtype.to_be_bytes());
            out.extend(class.to_be_bytes());
            out.extend(ttl.to_be_bytes());
            out.extend(rdlen.to_be_bytes());
            out.extend(rdata);
            out
        })
}

#[test]
fn dns_wire_parser() {
    let rcode =
        prop_oneof![6 => Just(0u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(5u8), 1 => 0u8..16];
    let strategy = (
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        rcode,
        vec(dns_record(), 0..8),
        any::<u16>(),
        0usize..4,
    )
        .prop_map(|(flags, qr_ok, tc, rcode, records, noise, cut)| {
            let mut msg = vec![0, 0];
            msg.push(if qr_ok { 0x81 } else { (noise >> 8) as u8 } | if tc { 0x02 } else { 0 });
            msg.push(0x80 | rcode);
            msg.extend([0, 1]);
            let ancount = if noise % 7 == 0 {
                noise
            } else {
                records.len() as u16
            };
            msg.extend(ancount.to_be_bytes());
            msg.extend([0, 0, 0, 0]);
            msg.extend(records.concat());
            if cut == 3 && msg.len() > 12 {
                msg.truncate(12 + usize::from(noise) % (msg.len() - 12));
            }
            [vec![flags], msg].concat()
        });
    fuzz("dns_reply", strategy, dns_reply::run);
}

// ---- queue records -------------------------------------------------------

fn qid() -> impl Strategy<Value = QueueId> {
    "[0-9A-Za-z]{1,17}".prop_map(|s| QueueId::parse(&s).expect("a valid queue ID"))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(&["", "a@b.example", "<>", "rfc822;x@y", "b\u{fc}cher@example", "4.4.1 connection refused"][..]).prop_map(String::from),
        1 => ".{0,12}",
    ]
}

fn message() -> impl Strategy<Value = Record> {
    let recipient =
        (text(), any::<u8>(), proptest::option::of(text())).prop_map(|(address, n, orcpt)| {
            Recipient {
                address,
                notify: Notify(n),
                orcpt,
            }
        });
    let mail = (
        proptest::option::of(any::<u64>()),
        0u8..4,
        any::<bool>(),
        0u8..3,
        proptest::option::of(text()),
    )
        .prop_map(|(size, body, smtputf8, ret, envid)| MailParams {
            size,
            body: [
                Body::Unspecified,
                Body::SevenBit,
                Body::EightBitMime,
                Body::BinaryMime,
            ][usize::from(body)],
            smtputf8,
            ret: [None, Some(Ret::Full), Some(Ret::Hdrs)][usize::from(ret)],
            envid,
        });
    let client = (
        text(),
        any::<bool>(),
        any::<u128>(),
        any::<u16>(),
        proptest::option::of(text()),
        0u8..3,
    )
        .prop_map(|(name, v4, a, port, helo, p)| ClientInfo {
            name,
            addr: if v4 {
                IpAddr::V4(Ipv4Addr::from(a as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(a))
            },
            port,
            helo,
            protocol: [Protocol::Smtp, Protocol::Esmtp, Protocol::Local][usize::from(p)],
        });
    (
        qid(),
        any::<u64>(),
        text(),
        vec(recipient, 0..4),
        mail,
        proptest::option::of(client),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(qid, arrival_us, sender, recipients, mail, client, content)| {
                Record::Message(MessageRecord {
                    qid,
                    arrival_us,
                    envelope: Envelope {
                        sender,
                        recipients,
                        mail,
                    },
                    client,
                    content,
                })
            },
        )
}

fn record() -> impl Strategy<Value = Record> {
    let status = prop_oneof![
        Just(RecipientStatus::Delivered),
        (text(), any::<u64>()).prop_map(|(reason, next_attempt_us)| RecipientStatus::Deferred {
            reason,
            next_attempt_us
        }),
        text().prop_map(|reason| RecipientStatus::Bounced { reason }),
    ];
    prop_oneof![
        4 => message(),
        2 => (qid(), any::<u32>(), status).prop_map(|(qid, rcpt, status)| Record::RcptStatus { qid, rcpt, status }),
        1 => (qid(), 0u8..6).prop_map(|(qid, k)| match k {
            0 => Record::Done { qid },
            1 => Record::Delete { qid },
            2 => Record::Hold { qid },
            3 => Record::Release { qid },
            4 => Record::Requeue { qid },
            _ => Record::Expire { qid },
        }),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(segment, from)| Record::Void { segment, from }),
    ]
}

/// Damage: flip a bit, cut, overwrite a u64 (a length field: the payload
/// length at 8, or a string length inside the payload), insert, delete.
#[derive(Clone, Debug)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    Length(usize, u64),
    Insert(usize, u8),
    Delete(usize, usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    let length = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(1 << 40),
        0u64..200,
        any::<u64>()
    ];
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
        1 => any::<usize>().prop_map(Damage::Cut),
        3 => (prop_oneof![Just(8usize), any::<usize>()], length).prop_map(|(at, v)| Damage::Length(at, v)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Insert(at, b)),
        1 => (any::<usize>(), 0usize..50).prop_map(|(at, n)| Damage::Delete(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &[Damage], from: usize) {
    for d in damage {
        let n = bytes.len().saturating_sub(from);
        if n == 0 {
            return;
        }
        match *d {
            Damage::Flip(at, bit) => bytes[from + at % n] ^= 1 << bit,
            Damage::Cut(at) => bytes.truncate(from + at % n),
            Damage::Length(at, v) => {
                let at = from + at % n;
                let end = (at + 8).min(bytes.len());
                bytes[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            }
            Damage::Insert(at, b) => bytes.insert(from + at % n, b),
            Damage::Delete(at, k) => {
                let at = from + at % n;
                let end = (at + k).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
}

#[test]
fn queue_record_decoder() {
    let strategy = (record(), vec(damage(), 0..3), 0u8..4).prop_map(|(rec, damage, flags)| {
        let mut bytes = Vec::new();
        record::encode(&rec, &mut bytes);
        apply(&mut bytes, &damage, 0);
        // Mostly resealed, so the damage reaches the payload decoder.
        let reseal = u8::from(flags != 0);
        [vec![reseal], bytes].concat()
    });
    fuzz("queue_record", strategy, queue_record::run);
}

#[test]
fn queue_record_round_trip() {
    // Undamaged records decode to themselves (the target checks the bytes).
    let strategy = record().prop_map(|rec| {
        let mut bytes = vec![0u8];
        record::encode(&rec, &mut bytes);
        let (back, _) = record::decode(&bytes[1..]).expect("an encoded record decodes");
        assert_eq!(back, rec);
        bytes
    });
    fuzz("queue_record", strategy, queue_record::run);
}

#[test]
fn queue_segment_scanner() {
    let strategy = (
        vec(record(), 0..6),
        vec(damage(), 0..4),
        0usize..64,
        any::<bool>(),
    )
        .prop_map(|(records, damage, zeros, hit_header)| {
            let mut bytes = queue_segment::header().to_vec();
            for r in &records {
                record::encode(r, &mut bytes);
            }
            apply(&mut bytes, &damage, if hit_header { 0 } else { 40 });
            bytes.extend(std::iter::repeat_n(0, zeros));
            [vec![0u8], bytes].concat()
        });
    fuzz("queue_segment", strategy, queue_segment::run);
}

// ---- main.cf and master.cf -------------------------------------------------

fn maincf_value() -> impl Strategy<Value = Vec<u8>> {
    vec(
        word(&[
            "x",
            "example.com",
            " ",
            "\t",
            ",",
            "$p1",
            "$p2$p2",
            "${p3}",
            "$(p4)",
            "$$",
            "$",
            "${",
            "}",
            "{",
            "$myhostname",
            "${p1?{yes}:{no}}",
            "${p2:fallback}",
            "${{$p1} == {x}?{a}:{b}}",
            "${{1} < {$p3}}",
            "${p1?text",
            "$(",
            "\u{e9}",
            "\u{feff}",
            "\u{0}",
            "10m",
            "-1",
            "99999999999999999999",
            "reject_unauth_destination",
            "permit_mynetworks",
            "hash:/etc/x",
        ]),
        0..6,
    )
    .prop_map(concat)
}

#[test]
fn main_cf_parser() {
    let line = (
        word(&["", "", "", " ", "\t", "#"]),
        word(&[
            "p1",
            "p2",
            "p3",
            "p4",
            "myhostname",
            "mydomain",
            "myorigin",
            "mynetworks",
            "message_size_limit",
            "smtpd_banner",
            "smtpd_recipient_restrictions",
            "smtpd_timeout",
            "line_length_limit",
            "queue_directory",
            "soft_bounce",
            "",
        ]),
        word(&[" = ", "=", " ", "==", " =", "= "]),
        maincf_value(),
        word(&["\n", "\r\n", "\n\n", "\\\n"]),
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].concat());
    fuzz("main_cf", vec(line, 0..12).prop_map(concat), main_cf::run);
}

#[test]
fn master_cf_parser() {
    let field = |words: &'static [&'static str]| word(words);
    let arg = word(&[
        "-o",
        "smtpd_banner=hi",
        "-o { smtpd_banner = a b }",
        "{",
        "}",
        "-osmtpd_timeout=5",
        "-o =x",
        "-o x",
        "-v",
        "{ }",
        "-o message_size_limit=${p1}",
        "-o smtpd_relay_restrictions=",
        "-o line_length_limit=1",
    ]);
    let line = (
        field(&["", " ", "#"]),
        field(&[
            "smtp",
            "2525",
            "127.0.0.1:2525",
            "[::1]:submission",
            "[::1]2525",
            "0.0.0.0:0",
            "pickup",
            "x:y",
            ":25",
            "",
        ]),
        field(&["inet", "unix", "fifo", "pass", "unix-dgram", "bogus"]),
        field(&["-", "y", "n", "x"]),
        field(&["-", "y", "n"]),
        field(&["-", "y", "n"]),
        field(&["-", "60", "60?", "??", "x", "1?2"]),
        field(&["-", "0", "100", "99999999999", "-1", "1e3"]),
        field(&["smtpd", "pickup", "cleanup", ""]),
        vec(arg, 0..4),
        field(&["\n", "\r\n", "\n  -o smtpd_banner=cont\n", "\n\n"]),
    )
        .prop_map(|(pre, svc, ty, a, b, c, w, m, cmd, args, end)| {
            let mut out = pre;
            for f in [svc, ty, a, b, c, w, m, cmd] {
                out.extend(f);
                out.push(b' ');
            }
            for a in args {
                out.extend(a);
                out.push(b' ');
            }
            out.extend(end);
            out
        });
    fuzz(
        "master_cf",
        vec(line, 0..6).prop_map(concat),
        master_cf::run,
    );
}
