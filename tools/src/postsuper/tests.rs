use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::*;
use sluice_engine::config::{self, HostFacts};
use sluice_protocols::envelope::{Envelope, Recipient};
use sluice_storage::log::{Batch, LogOptions};
use sluice_storage::qid::QidGenerator;
use sluice_storage::record::{MessageRecord, Record};

const T0: u64 = 1_795_890_085_000_000;

struct Queue(PathBuf);

impl Queue {
    fn new(name: &str) -> Queue {
        let dir =
            std::env::temp_dir().join(format!("sluice-postsuper-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Queue(dir)
    }

    fn config(&self) -> Config {
        config::from_text(
            Path::new("/etc/sluice"),
            (
                &format!(
                    "queue_directory = {}\nsluice_segment_size = 1m\n",
                    self.0.display()
                ),
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

    /// Queues `n` messages on `shard`, optionally putting them on hold.
    fn add(&self, shard: u16, n: usize, hold: bool) -> Vec<QueueId> {
        let opts = LogOptions {
            segment_size: 1 << 20,
            preallocate: false,
        };
        let (mut log, report) = ShardLog::open(&self.0, shard, opts).unwrap();
        let mut gen = QidGenerator::new(shard, report.max_arrival_us.max(T0));
        let mut batch = Batch::new();
        let mut ids = Vec::new();
        for i in 0..n {
            let qid = gen.next(T0 + i as u64);
            batch.push(&Record::Message(MessageRecord {
                qid: qid.clone(),
                arrival_us: T0 + i as u64,
                envelope: Envelope {
                    sender: "alice@example.com".into(),
                    recipients: vec![Recipient::new("bob@example.org")],
                    ..Envelope::default()
                },
                client: None,
                content: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            }));
            if hold {
                batch.push(&Record::Hold { qid: qid.clone() });
            }
            ids.push(qid);
        }
        log.append_blocking(batch).unwrap();
        ids
    }

    /// Each live message's state and forced-expiry flag, by ID.
    fn states(&self) -> Vec<(String, QueueState, bool)> {
        let mut v = Vec::new();
        for (n, _) in control::shard_dirs(&self.0).unwrap() {
            let (log, _) = ShardLog::open_readonly(&self.0, n as u16).unwrap();
            v.extend(
                log.index()
                    .iter()
                    .map(|m| (m.qid.to_string(), m.state, m.forced_expire)),
            );
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn state(&self, qid: &QueueId) -> Option<(QueueState, bool)> {
        self.states()
            .into_iter()
            .find(|(id, _, _)| id == qid.as_str())
            .map(|(_, s, e)| (s, e))
    }

    fn postsuper(&self, args: &[&str], stdin: &str) -> (i32, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut input = stdin.as_bytes();
        let mut err = Vec::new();
        let code = run(
            &args,
            &self.config(),
            &mut Io {
                stdin: &mut input,
                stderr: &mut err,
            },
        );
        (code, String::from_utf8(err).unwrap())
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn delete_by_id_prints_postfix_lines() {
    let q = Queue::new("delete-id");
    let ids = q.add(0, 2, false);
    let (code, err) = q.postsuper(&["-d", ids[0].as_str()], "");
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "postsuper: {}: removed\npostsuper: Deleted: 1 message\n",
            ids[0]
        )
    );
    assert_eq!(q.state(&ids[0]), None);
    assert_eq!(q.state(&ids[1]), Some((QueueState::Incoming, false)));
    // Again: nothing is said about a message that is not there.
    let (code, err) = q.postsuper(&["-d", ids[0].as_str()], "");
    assert_eq!(
        (code, err.as_str()),
        (0, "postsuper: Deleted: 0 messages\n")
    );
}

#[test]
fn delete_all_across_shards_prints_only_the_summary() {
    let q = Queue::new("delete-all");
    q.add(0, 3, false);
    q.add(1, 2, true);
    let (code, err) = q.postsuper(&["-d", "ALL"], "");
    assert_eq!(
        (code, err.as_str()),
        (0, "postsuper: Deleted: 5 messages\n")
    );
    assert!(q.states().is_empty());
}

#[test]
fn explicit_queue_names_limit_all() {
    let q = Queue::new("delete-all-hold");
    let free = q.add(0, 2, false);
    q.add(1, 1, true);
    let (code, err) = q.postsuper(&["-d", "ALL", "hold"], "");
    assert_eq!((code, err.as_str()), (0, "postsuper: Deleted: 1 message\n"));
    let left: Vec<String> = q.states().into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(left, [free[0].to_string(), free[1].to_string()]);
    // `maildrop` is a queue name Postfix knows; it holds nothing here.
    let (code, err) = q.postsuper(&["-d", "ALL", "maildrop"], "");
    assert_eq!(
        (code, err.as_str()),
        (0, "postsuper: Deleted: 0 messages\n")
    );
    let (code, err) = q.postsuper(&["-d", "ALL", "nosuch"], "");
    assert_eq!(
        (code, err.as_str()),
        (1, "postsuper: fatal: invalid directory name: nosuch\n")
    );
    assert_eq!(q.states().len(), 2);
}

#[test]
fn hold_release_requeue_and_expire() {
    let q = Queue::new("hold-release");
    let ids = q.add(0, 2, false);
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let (code, err) = q.postsuper(&["-h", a], "");
    assert_eq!(
        (code, err),
        (
            0,
            format!("postsuper: {a}: placed on hold\npostsuper: Placed on hold: 1 message\n")
        )
    );
    assert_eq!(q.state(&ids[0]), Some((QueueState::Hold, false)));
    // Holding held mail does nothing.
    let (_, err) = q.postsuper(&["-h", a], "");
    assert_eq!(err, "postsuper: Placed on hold: 0 messages\n");

    let (code, err) = q.postsuper(&["-H", "ALL"], "");
    assert_eq!(
        (code, err.as_str()),
        (0, "postsuper: Released from hold: 1 message\n")
    );
    assert_eq!(q.state(&ids[0]), Some((QueueState::Deferred, false)));

    let (_, err) = q.postsuper(&["-e", b], "");
    assert_eq!(
        err,
        format!("postsuper: {b}: expired\npostsuper: Force-expired: 1 message\n")
    );
    assert_eq!(q.state(&ids[1]), Some((QueueState::Incoming, true)));

    let (_, err) = q.postsuper(&["-r", b], "");
    assert_eq!(
        err,
        format!("postsuper: {b}: requeued\npostsuper: Requeued: 1 message\n")
    );
    assert_eq!(q.state(&ids[1]), Some((QueueState::Incoming, false)));

    // -f on held mail: expired and released, two summaries.
    q.postsuper(&["-h", b], "");
    let (_, err) = q.postsuper(&["-f", b], "");
    assert_eq!(
        err,
        format!(
            "postsuper: {b}: expired\npostsuper: {b}: released from hold\n\
             postsuper: Released from hold: 1 message\npostsuper: Force-expired: 1 message\n"
        )
    );
    assert_eq!(q.state(&ids[1]), Some((QueueState::Deferred, true)));
}

#[test]
fn operations_run_in_command_line_order() {
    let q = Queue::new("order");
    let ids = q.add(0, 1, false);
    let a = ids[0].as_str();
    // Hold first, then delete (which includes hold by default).
    let (code, err) = q.postsuper(&["-h", a, "-d", a], "");
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "postsuper: {a}: placed on hold\npostsuper: {a}: removed\n\
             postsuper: Deleted: 1 message\npostsuper: Placed on hold: 1 message\n"
        )
    );
    assert!(q.states().is_empty());
}

#[test]
fn ids_from_stdin() {
    let q = Queue::new("stdin");
    let ids = q.add(0, 3, false);
    let input = format!(
        "{}\n{}\nbad.id\nnot_ours_but_valid\n{}\n",
        ids[0], ids[2], ids[0]
    );
    let (code, err) = q.postsuper(&["-d", "-"], &input);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "postsuper: warning: invalid mail queue id: bad.id\n\
             postsuper: {}: removed\npostsuper: {}: removed\npostsuper: Deleted: 2 messages\n",
            ids[0], ids[2]
        )
    );
    let left: Vec<String> = q.states().into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(left, [ids[1].to_string()]);
}

#[test]
fn usage_and_missing_queue_are_fatal() {
    let q = Queue::new("usage");
    let (code, err) = q.postsuper(&["-d"], "");
    assert_eq!(code, 1);
    assert!(
        err.starts_with("postsuper: fatal: usage: postsuper"),
        "{err}"
    );
    let (code, _) = q.postsuper(&["-x"], "");
    assert_eq!(code, 1);

    let gone = Queue::new("gone");
    let path = gone.0.clone();
    let cfg = gone.config();
    drop(gone);
    let mut input = &b""[..];
    let mut err = Vec::new();
    let code = run(
        &["-d".to_string(), "ALL".to_string()],
        &cfg,
        &mut Io {
            stdin: &mut input,
            stderr: &mut err,
        },
    );
    assert_eq!(code, 1);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        format!(
            "postsuper: fatal: chdir {}: No such file or directory\n",
            path.display()
        )
    );
}

#[test]
fn options_parse_like_postfix_getopt() {
    let o = parse_options(&[
        "-sp".into(),
        "-dALL".into(),
        "-H".into(),
        "-".into(),
        "deferred".into(),
        "hold".into(),
    ])
    .unwrap();
    assert_eq!(
        o,
        Options {
            ops: vec![
                (AdminOp::Delete, "ALL".into()),
                (AdminOp::Release, "-".into())
            ],
            structure: true,
            purge: true,
            queues: Some(vec![QueueState::Deferred, QueueState::Hold]),
        }
    );
    let none = parse_options(&[]).unwrap();
    assert!(none.structure && none.purge && none.ops.is_empty() && none.queues.is_none());
    let v = parse_options(&["-v".into()]).unwrap();
    assert!(v.structure && v.purge, "-v alone still means -s -p");
    let d = parse_options(&["-d".into(), "X".into()]).unwrap();
    assert!(!d.structure && !d.purge);
    // The first operand ends the options.
    let late = parse_options(&["-d".into(), "X".into(), "hold".into(), "-s".into()]);
    assert!(matches!(late, Err(Fatal(m)) if m == "invalid directory name: -s"));
}

#[test]
fn no_options_checks_the_log_and_purges_stale_sockets() {
    let q = Queue::new("structure");
    let ids = q.add(0, 1, false);
    // A torn write at the tail of the log.
    let seg = q.0.join("0").join("0000000000000001.seg");
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0xA7, b'S', b'L', b'r', 4, 3]).unwrap();
    drop(f);
    let public = control::public_dir(&q.0);
    std::fs::create_dir_all(&public).unwrap();
    let sock = control::showq_socket(&q.0, 0);
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());

    let (code, err) = q.postsuper(&[], "");
    assert_eq!(code, 0);
    assert_eq!(
        err,
        "postsuper: warning: queue log shard 0: truncated an incomplete write of 6 bytes at the end of the log\n"
    );
    assert!(!sock.exists(), "stale control socket removed");
    assert_eq!(q.state(&ids[0]), Some((QueueState::Incoming, false)));
    let (code, err) = q.postsuper(&["-s"], "");
    assert_eq!((code, err.as_str()), (0, ""), "nothing left to repair");
}

/// A stand-in daemon: holds the queue lock and answers one shard's
/// control socket with canned answers, recording the requests.
#[test]
fn running_daemon_gets_the_requests() {
    let q = Queue::new("daemon");
    std::fs::create_dir_all(q.0.join("0")).unwrap();
    std::fs::create_dir_all(q.0.join("1")).unwrap();
    std::fs::create_dir_all(control::public_dir(&q.0)).unwrap();
    let _lock = master::lock(&q.0).unwrap();
    let on_shard_1 = QidGenerator::new(1, 0).next(T0);
    let listeners: Vec<UnixListener> = (0..2)
        .map(|n| UnixListener::bind(control::showq_socket(&q.0, n)).unwrap())
        .collect();
    let servers: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(n, l)| {
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                // Two operations: each shard is asked at most twice.
                for _ in 0..2 {
                    let Ok((s, _)) = l.accept() else { break };
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    let (op, _, targets) = admin::decode_request(&line).unwrap();
                    let answer = match (op, n) {
                        (AdminOp::Hold, 1) => {
                            format!("{}: placed on hold\ncount 1\n.\n", targets[0])
                        }
                        (AdminOp::Hold, _) => "count 0\n.\n".to_string(),
                        _ => "count 3\n.\n".to_string(),
                    };
                    (&s).write_all(answer.as_bytes()).unwrap();
                    seen.push(line);
                    if op == AdminOp::Delete && n == 0 {
                        break;
                    }
                }
                seen
            })
        })
        .collect();
    let (code, err) = q.postsuper(&["-h", on_shard_1.as_str(), "-d", "ALL", "deferred"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        format!(
            "postsuper: {on_shard_1}: placed on hold\n\
             postsuper: Deleted: 6 messages\npostsuper: Placed on hold: 1 message\n"
        )
    );
    let seen: Vec<Vec<String>> = servers.into_iter().map(|h| h.join().unwrap()).collect();
    // The ID went only to the shard it names; ALL to both.
    assert_eq!(seen[0], ["postsuper delete deferred ALL\n"]);
    assert_eq!(
        seen[1],
        [
            format!("postsuper hold deferred {on_shard_1}\n"),
            "postsuper delete deferred ALL\n".to_string()
        ]
    );
}

#[test]
fn a_daemon_that_does_not_answer_is_fatal() {
    let q = Queue::new("daemon-gone");
    std::fs::create_dir_all(q.0.join("0")).unwrap();
    let _lock = master::lock(&q.0).unwrap();
    let (code, err) = q.postsuper(&["-d", "ALL"], "");
    assert_eq!(code, 1);
    assert!(
        err.starts_with("postsuper: fatal: ") && err.contains("does not answer"),
        "{err}"
    );
}

#[test]
fn routing_by_shard() {
    let shards = [0, 1, 2];
    let on1 = Target::Qid(QidGenerator::new(1, 0).next(T0));
    let on9 = Target::Qid(QidGenerator::new(9, 0).next(T0));
    let odd = Target::Qid(QueueId::parse("ABC").unwrap());
    assert!(routes_to(&on1, 1, &shards) && !routes_to(&on1, 0, &shards));
    for t in [&on9, &odd, &Target::All] {
        assert!(shards.iter().all(|&n| routes_to(t, n, &shards)));
    }
}
