//! Golden files for the listings: each `tools/tests-data/showq/NAME.in`
//! is rendered three ways and compared with `NAME.mailq.ref` (short IDs),
//! `NAME.mailq-long.ref` (long IDs) and `NAME.json.ref`. Times are shown
//! in UTC. `SLUICE_BLESS=1 cargo test -p sluice --lib showq` rewrites the
//! `.ref` files; review the diff before keeping it.
//!
//! `.in` format, one record per line, fields separated by a TAB, escapes
//! `\t \n \r \\ \xHH` inside fields, `#` comments:
//!
//! ```text
//! M  queue_name  queue_id  arrival_time  message_size  forced_expire(0|1)  sender
//! R  address  [orig_address  [reason]]        (empty field = none)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use sluice_agents::datetime::BrokenDownTime;

use super::*;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/tests-data/showq")
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16).expect("bad \\x escape");
                out.push(char::from(byte));
            }
            other => panic!("bad escape \\{other:?} in {field:?}"),
        }
    }
    out
}

fn optional(field: Option<&str>) -> Option<String> {
    field.filter(|f| !f.is_empty()).map(unescape)
}

fn parse_in(text: &str) -> Vec<ShowqEntry> {
    let mut entries: Vec<ShowqEntry> = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[0] {
            "M" => {
                assert_eq!(fields.len(), 7, "M line needs 7 fields: {line:?}");
                entries.push(ShowqEntry {
                    queue_name: unescape(fields[1]),
                    queue_id: unescape(fields[2]),
                    arrival_time: fields[3].parse().expect("arrival_time"),
                    message_size: fields[4].parse().expect("message_size"),
                    forced_expire: fields[5] == "1",
                    sender: unescape(fields[6]),
                    recipients: Vec::new(),
                });
            }
            "R" => {
                let entry = entries.last_mut().expect("R before M");
                entry.recipients.push(ShowqRecipient {
                    address: unescape(fields[1]),
                    orig_address: optional(fields.get(2).copied()),
                    reason: optional(fields.get(3).copied()),
                });
            }
            other => panic!("unknown record {other:?} in {line:?}"),
        }
    }
    entries
}

fn render_mailq(entries: &[ShowqEntry], long_ids: bool) -> String {
    let mut out = Vec::new();
    format_mailq_at(entries, long_ids, BrokenDownTime::utc, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn render_json(entries: &[ShowqEntry]) -> String {
    let mut out = Vec::new();
    format_json(entries, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn golden_files() {
    let bless = std::env::var_os("SLUICE_BLESS").is_some();
    let mut inputs: Vec<PathBuf> = fs::read_dir(data_dir())
        .expect("tools/tests-data/showq")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "in"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 8, "golden inputs missing: {inputs:?}");
    let mut failures = Vec::new();
    for input in &inputs {
        let entries = parse_in(&fs::read_to_string(input).unwrap());
        let outputs = [
            ("mailq.ref", render_mailq(&entries, false)),
            ("mailq-long.ref", render_mailq(&entries, true)),
            ("json.ref", render_json(&entries)),
        ];
        for (suffix, got) in outputs {
            let reference = input.with_extension(suffix);
            if bless {
                fs::write(&reference, &got).unwrap();
                continue;
            }
            let want = fs::read_to_string(&reference).unwrap_or_default();
            if got != want {
                failures.push(format!(
                    "{}:\n--- want\n{want}--- got\n{got}",
                    reference.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The example of POSTFIX-FACTS.md §2, observed on Postfix 3.7.
#[test]
fn facts_example() {
    let entries = parse_in(
        "M\tdeferred\t451ED9948E3\t1795890085\t229\t0\talice@example.com\n\
         R\tcarol@example.net\t\tdeferred transport\n\
         R\tbob@example.org\n\
         M\thold\t2C9EF9948E3\t1795890085\t274\t1\talice@example.com\n",
    );
    let pad = |n: usize| " ".repeat(n);
    let want = format!(
        "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n\
         451ED9948E3     229 Sat Nov 28 18:21:25  alice@example.com\n\
         {}(deferred transport)\n\
         {}carol@example.net\n\
         {}(reason unavailable)\n\
         {}bob@example.org\n\
         \n\
         2C9EF9948E3!#     274 Sat Nov 28 18:21:25  alice@example.com\n\
         \n\
         -- 0 Kbytes in 2 Requests.\n",
        pad(58),
        pad(41),
        pad(58),
        pad(41)
    );
    assert_eq!(render_mailq(&entries, false), want);
}

#[test]
fn reason_lines_end_at_column_78() {
    for reason in [
        "x",
        "connect to mx.example.com[192.0.2.1]:25: Connection refused",
    ] {
        let entries = parse_in(&format!(
            "M\tdeferred\tA1\t0\t1\t0\ts@x\nR\tr@x\t\t{reason}\n"
        ));
        let text = render_mailq(&entries, true);
        let line = text.lines().nth(2).unwrap();
        assert_eq!(line.len(), 78, "{line:?}");
        assert!(line.ends_with(&format!("({reason})")));
    }
    // Longer than 76: no padding, no truncation.
    let long = "y".repeat(100);
    let entries = parse_in(&format!(
        "M\tdeferred\tA1\t0\t1\t0\ts@x\nR\tr@x\t\t{long}\n"
    ));
    let text = render_mailq(&entries, false);
    assert_eq!(text.lines().nth(2).unwrap(), format!("({long})"));
}

#[test]
fn listing_order_groups_reasons_first() {
    let r = |address: &str, reason: Option<&str>| ShowqRecipient {
        address: address.into(),
        orig_address: None,
        reason: reason.map(String::from),
    };
    let recipients = [
        r("a", None),
        r("b", Some("B")),
        r("c", Some("C")),
        r("d", Some("")),
        r("e", Some("B")),
        r("f", Some("C")),
        r("g", None),
    ];
    let mut order = Vec::new();
    listing_order(&recipients, &mut order);
    let names: Vec<&str> = order
        .iter()
        .map(|&i| recipients[i].address.as_str())
        .collect();
    assert_eq!(names, ["b", "e", "c", "f", "a", "d", "g"]);
    listing_order(&[], &mut order);
    assert!(order.is_empty());
}

#[test]
fn streaming_writers_match_the_slice_functions() {
    let entries = parse_in(&fs::read_to_string(data_dir().join("reasons.in")).unwrap());
    let mut writer = MailqWriter::new(Vec::new(), true, BrokenDownTime::utc);
    let mut json = JsonWriter::new(Vec::new());
    for entry in &entries {
        writer.entry(entry).unwrap();
        json.entry(entry).unwrap();
    }
    let text = String::from_utf8(writer.finish().unwrap()).unwrap();
    assert_eq!(text, render_mailq(&entries, true));
    assert_eq!(
        String::from_utf8(json.finish()).unwrap(),
        render_json(&entries)
    );
}

/// 100,000 messages go through one reused writer; the trailer sums every
/// size without overflow.
#[test]
fn large_queue() {
    let mut entry = ShowqEntry {
        queue_name: QUEUE_DEFERRED.into(),
        queue_id: "4jcJb04xz6z1ShQN".into(),
        arrival_time: 1_795_890_085,
        message_size: 4096,
        forced_expire: false,
        sender: "from@example.com".into(),
        recipients: vec![ShowqRecipient {
            address: "to@example.net".into(),
            orig_address: None,
            reason: Some("connect to 127.0.0.1[127.0.0.1]:9: Connection refused".into()),
        }],
    };
    let mut sink = CountingSink::default();
    let mut writer = MailqWriter::new(&mut sink, true, BrokenDownTime::utc);
    for _ in 0..100_000 {
        writer.entry(&entry).unwrap();
    }
    writer.finish().unwrap();
    // heading + 100,000 x (sender, reason, recipient) + 99,999 blank
    // lines + blank line + trailer
    assert_eq!(sink.lines, 1 + 300_000 + 99_999 + 2);
    let tail = String::from_utf8_lossy(&sink.tail);
    assert!(
        tail.ends_with("\n-- 400000 Kbytes in 100000 Requests.\n"),
        "{tail}"
    );

    entry.message_size = u64::MAX;
    let mut writer = MailqWriter::new(Vec::new(), true, BrokenDownTime::utc);
    writer.entry(&entry).unwrap();
    writer.entry(&entry).unwrap();
    let text = String::from_utf8(writer.finish().unwrap()).unwrap();
    assert!(text.ends_with(&format!("-- {} Kbytes in 2 Requests.\n", u64::MAX / 1024)));
}

/// Counts lines and keeps the last few bytes, so 100,000 messages need
/// no memory for the listing.
#[derive(Default)]
struct CountingSink {
    lines: usize,
    tail: Vec<u8>,
}

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lines += buf.iter().filter(|&&b| b == b'\n').count();
        self.tail.extend_from_slice(buf);
        let excess = self.tail.len().saturating_sub(200);
        self.tail.drain(..excess);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
