use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::*;
use sluice_engine::config::{self, HostFacts};
use sluice_protocols::envelope::{Envelope, MailParams, Notify, Recipient};
use sluice_storage::log::{Batch, LogOptions};
use sluice_storage::qid::QidGenerator;
use sluice_storage::record::{RecipientStatus, Record};

/// Sat Nov 28 18:21:25 2026 UTC, and some microseconds.
const ARRIVAL_US: u64 = 1_795_890_085_123_456;

struct Queue(PathBuf);

impl Queue {
    fn new(name: &str) -> Queue {
        let dir =
            std::env::temp_dir().join(format!("sluice-postcat-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Queue(dir)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_for(queue_dir: &Path) -> Config {
    config::from_text(
        Path::new("/etc/sluice"),
        (
            &format!("queue_directory = {}\n", queue_dir.display()),
            Path::new("/etc/sluice/main.cf"),
        ),
        (
            config::EMBEDDED_MASTER_CF,
            Path::new("/etc/sluice/master.cf"),
        ),
        &HostFacts::for_tests(),
        Path::new("/"),
    )
    .unwrap()
}

fn smtp_message(qid: QueueId) -> MessageRecord {
    MessageRecord {
        qid,
        arrival_us: ARRIVAL_US,
        envelope: Envelope {
            sender: "alice@example.com".into(),
            recipients: vec![
                Recipient {
                    address: "bob@example.org".into(),
                    notify: Notify(Notify::FAILURE | Notify::DELAY),
                    orcpt: Some("rfc822;Bob@example.org".into()),
                },
                Recipient::new("carol@example.org"),
            ],
            mail: MailParams {
                body: Body::EightBitMime,
                ret: Some(Ret::Hdrs),
                envid: Some("env-1".into()),
                ..MailParams::default()
            },
        },
        client: Some(ClientInfo {
            name: "client.example".into(),
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            port: 41234,
            helo: Some("helo.example".into()),
            protocol: Protocol::Esmtp,
        }),
        content: b"Received: from helo.example\r\n\tby mx.example;\r\nSubject: hi\r\n\r\nhello\r\nworld\r\n"
            .to_vec(),
    }
}

/// A queue with one deferred message whose first recipient is done.
fn queue_with_message(q: &Queue) -> QueueId {
    let opts = LogOptions {
        segment_size: 1 << 20,
        preallocate: false,
    };
    let (mut log, _) = ShardLog::open(&q.0, 0, opts).unwrap();
    let qid = QidGenerator::new(0, 0).next(ARRIVAL_US);
    let mut batch = Batch::new();
    batch.push(&Record::Message(smtp_message(qid.clone())));
    batch.push(&Record::RcptStatus {
        qid: qid.clone(),
        rcpt: 0,
        status: RecipientStatus::Delivered,
    });
    batch.push(&Record::RcptStatus {
        qid: qid.clone(),
        rcpt: 1,
        status: RecipientStatus::Deferred {
            reason: "connect to x[192.0.2.1]:25: Connection refused".into(),
            next_attempt_us: ARRIVAL_US + 300_000_000,
        },
    });
    log.append_blocking(batch).unwrap();
    qid
}

fn postcat(q: &Queue, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run(
        &args,
        &config_for(&q.0),
        &mut out,
        &mut err,
        &BrokenDownTime::utc,
    );
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn golden_full_output() {
    let q = Queue::new("golden");
    let qid = queue_with_message(&q);
    assert_eq!(qid.as_str(), "4jcJWn0sf8z0");
    // 123456 µs = 0x1E240: the deferred queue is hashed on its first digit.
    let p = "deferred/1/4jcJWn0sf8z0";
    let (code, out, err) = postcat(&q, &["-q", qid.as_str()]);
    assert_eq!((code, err.as_str()), (0, ""));
    let want = format!(
        "\
*** ENVELOPE RECORDS {p} ***
message_size:              75             281               2               0              75               0
message_arrival_time: Sat Nov 28 18:21:25 2026
create_time: Sat Nov 28 18:21:25 2026
named_attribute: rewrite_context=remote
named_attribute: log_client_name=client.example
named_attribute: log_client_address=192.0.2.7
named_attribute: log_client_port=41234
named_attribute: log_message_origin=client.example[192.0.2.7]
named_attribute: log_helo_name=helo.example
named_attribute: log_protocol_name=ESMTP
named_attribute: client_name=client.example
named_attribute: reverse_client_name=client.example
named_attribute: client_address=192.0.2.7
named_attribute: client_port=41234
named_attribute: helo_name=helo.example
named_attribute: protocol_name=ESMTP
named_attribute: client_address_type=2
sender: alice@example.com
named_attribute: envelope_id=env-1
named_attribute: ret_flags=2
named_attribute: dsn_orig_rcpt=rfc822;Bob@example.org
named_attribute: notify_flags=12
original_recipient: bob@example.org
done_recipient: bob@example.org
original_recipient: carol@example.org
recipient: carol@example.org
*** MESSAGE CONTENTS {p} ***
Received: from helo.example
\tby mx.example;
Subject: hi

hello
world
*** HEADER EXTRACTED {p} ***
named_attribute: encoding=8bit
*** MESSAGE FILE END {p} ***
"
    );
    assert_eq!(out, want);
}

/// The golden data offset (281) is where the content really starts.
#[test]
fn content_starts_at_the_data_offset() {
    let q = Queue::new("offset");
    let qid = queue_with_message(&q);
    let (_, out, _) = postcat(&q, &["-eq", qid.as_str()]);
    let off: u64 = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let seg = std::fs::read(q.0.join("0").join("0000000000000001.seg")).unwrap();
    assert!(seg[off as usize..].starts_with(b"Received: from helo.example"));
}

#[test]
fn sections_select_what_is_printed() {
    let q = Queue::new("sections");
    let qid = queue_with_message(&q);
    let id = qid.as_str();
    let (_, headers, _) = postcat(&q, &["-h", "-q", id]);
    assert_eq!(
        headers,
        "Received: from helo.example\n\tby mx.example;\nSubject: hi\n"
    );
    let (_, body, _) = postcat(&q, &["-bq", id]);
    assert_eq!(body, "\nhello\nworld\n", "the empty line opens the body");
    let (_, env, _) = postcat(&q, &["-e", id]);
    assert!(env.starts_with("*** ENVELOPE RECORDS deferred/1/"));
    assert!(env.contains("*** MESSAGE CONTENTS deferred/1/4jcJWn0sf8z0 ***\n*** HEADER EXTRACTED"));
    // A path as postcat prints it names the message too.
    let (code, by_path, _) = postcat(&q, &["-h", "deferred/1/4jcJWn0sf8z0"]);
    assert_eq!((code, by_path), (0, headers));
}

#[test]
fn missing_and_bad_ids_are_fatal() {
    let q = Queue::new("missing");
    let qid = queue_with_message(&q);
    let absent = QidGenerator::new(0, 0).next(ARRIVAL_US + 5);
    let (code, out, err) = postcat(&q, &["-q", qid.as_str(), absent.as_str()]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("*** ENVELOPE RECORDS"),
        "earlier IDs are printed"
    );
    assert_eq!(
        err,
        format!("postcat: fatal: open queue file {absent}: No such file or directory\n")
    );
    for id in ["NOSUCHID", "4xZQ0z2Bb0z7", "long_but_valid_postfix_id"] {
        let (code, _, err) = postcat(&q, &["-q", id]);
        assert_eq!(code, 1, "{id}");
        assert_eq!(
            err,
            format!("postcat: fatal: open queue file {id}: No such file or directory\n")
        );
    }
    let (code, _, err) = postcat(&q, &["-q", "bad.id"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "postcat: fatal: bad mail queue ID: bad.id\n")
    );
    let (code, _, err) = postcat(&q, &["-q"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("postcat: fatal: usage: postcat"));
    let (code, _, _) = postcat(&q, &["-x", "ID"]);
    assert_eq!(code, 1);
}

#[test]
fn header_detection_follows_postfix() {
    for (line, want) in [
        (&b"Subject: x"[..], true),
        (b"Subject : x", true),
        (b"X-Odd\t: x", true),
        (b": x", false),
        (b" Subject: x", false),
        (b"Sub ject: x", false),
        (b"hello", false),
        (b"", false),
        (b"Caf\xc3\xa9: x", false),
    ] {
        assert_eq!(is_header(line), want, "{:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn queue_paths_follow_hash_queue_names() {
    let l = QueueLayout {
        hash_queue_names: vec!["deferred".into(), "defer".into()],
        hash_queue_depth: 2,
    };
    let qid = QueueId::parse("4jcJWn0sf8z0").unwrap();
    assert_eq!(l.path("active", &qid), "active/4jcJWn0sf8z0");
    assert_eq!(l.path("deferred", &qid), "deferred/1/E/4jcJWn0sf8z0");
    let odd = QueueId::parse("ABC").unwrap();
    assert_eq!(l.path("deferred", &odd), "deferred/A/B/ABC");
    let short = QueueId::parse("A").unwrap();
    assert_eq!(l.path("deferred", &short), "deferred/A/_/A");
}
