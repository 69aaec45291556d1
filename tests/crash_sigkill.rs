//! Durability: SIGKILL the daemon under load, restart it, and check that
//! every message that got `250 … queued as QID` is there, intact.

mod common;
use common::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bounds of the load: clients × messages each, and a wall-clock cap.
const CLIENTS: usize = 16;
const MAX_PER_CLIENT: usize = 2_000;
const LOAD_LIMIT: Duration = Duration::from_secs(20);
/// Kill once this many messages were acknowledged (or at the time cap).
const KILL_AFTER_ACKS: usize = 1_500;

fn body_for(client: usize, n: usize) -> Vec<u8> {
    let mut b = format!("Subject: crash test {client}/{n}\r\n\r\n").into_bytes();
    for i in 0..40 {
        b.extend_from_slice(format!("client {client} message {n} line {i} xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n").as_bytes());
    }
    b
}

#[test]
fn acknowledged_mail_survives_sigkill() {
    let mut inst = Instance::new("crash", "");
    inst.start();
    let addr = inst.addr();
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let acks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut threads = Vec::new();
    for client in 0..CLIENTS {
        let acked = acked.clone();
        let acks = acks.clone();
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            // Any I/O error (the daemon died) ends this client's run.
            let run = || -> std::io::Result<()> {
                use std::io::{BufRead, BufReader, Write};
                let s = std::net::TcpStream::connect(addr)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut w = s.try_clone()?;
                let mut r = BufReader::new(s);
                let mut line = String::new();
                let mut reply =
                    |r: &mut BufReader<std::net::TcpStream>| -> std::io::Result<String> {
                        loop {
                            line.clear();
                            if r.read_line(&mut line)? == 0 {
                                return Err(std::io::ErrorKind::UnexpectedEof.into());
                            }
                            if line.as_bytes().get(3) != Some(&b'-') {
                                return Ok(line.trim_end().to_string());
                            }
                        }
                    };
                reply(&mut r)?;
                w.write_all(b"EHLO crash.example.org\r\n")?;
                reply(&mut r)?;
                for n in 0..MAX_PER_CLIENT {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > LOAD_LIMIT {
                        break;
                    }
                    let body = body_for(client, n);
                    w.write_all(
                        format!(
                            "MAIL FROM:<c{client}@example.org>\r\nRCPT TO:<m{n}@example.net>\r\n"
                        )
                        .as_bytes(),
                    )?;
                    reply(&mut r)?;
                    reply(&mut r)?;
                    w.write_all(b"DATA\r\n")?;
                    if !reply(&mut r)?.starts_with("354") {
                        return Ok(());
                    }
                    w.write_all(&body)?;
                    w.write_all(b".\r\n")?;
                    let rep = reply(&mut r)?;
                    if let Some(qid) = queued_as(&rep) {
                        acked.lock().unwrap().insert(qid, fnv(body_of(&body)));
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(())
            };
            let _ = run();
        }));
    }
    while acks.load(Ordering::SeqCst) < KILL_AFTER_ACKS && started.elapsed() < LOAD_LIMIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    inst.kill();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "the load did not get going: {} acks; log:\n{}",
        acked.len(),
        inst.log()
    );

    // Restart: recovery must find every acknowledged message.
    inst.start();
    let listed: Vec<String> = inst.queue_json();
    let listed_ids: std::collections::HashSet<String> = listed
        .iter()
        .filter_map(|l| {
            let i = l.find("\"queue_id\": \"")? + 13;
            Some(l[i..i + l[i..].find('"')?].to_string())
        })
        .collect();
    let missing: Vec<&String> = acked.keys().filter(|q| !listed_ids.contains(*q)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(inst.stop().success());

    // Content intact: compare the body hash of every acknowledged message.
    let queue = read_queue(&inst.queue_dir());
    let by_id: HashMap<&str, &Vec<u8>> = queue.iter().map(|(q, _, _, c)| (q.as_str(), c)).collect();
    for (qid, h) in &acked {
        let content = by_id
            .get(qid.as_str())
            .unwrap_or_else(|| panic!("{qid} missing from the log"));
        assert_eq!(fnv(body_of(content)), *h, "{qid}: content differs");
    }
    let kept_unacked = queue.len() - acked.len();
    eprintln!(
        "crash test: {} acknowledged, all recovered intact; {} unacknowledged messages were kept",
        acked.len(),
        kept_unacked
    );
}
