//! Durability on the delivery side: SIGKILL the daemon while it relays,
//! restart it, and check that every acknowledged message reaches the next
//! hop at least once, with duplicates only among the deliveries that were
//! in flight when it died.

mod common;
use common::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_tools::load::{Sink, SinkConfig};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 150;
const LOAD_LIMIT: Duration = Duration::from_secs(20);
const KILL_AFTER_ACKS: usize = 400;
/// The destination's concurrency limit: at most this many deliveries can
/// be in flight (delivered but not yet recorded) when the daemon dies.
const CONCURRENCY: usize = 10;

fn token_of(content: &[u8]) -> Option<String> {
    let t = content.windows(6).position(|w| w == b"token-")?;
    let rest = &content[t..];
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_alphanumeric() && *b != b'-')?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[test]
fn acknowledged_mail_is_delivered_after_a_crash_mid_relay() {
    let mut cfg = SinkConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.keep_received = 100_000;
    // A little latency at the next hop keeps deliveries in flight.
    cfg.delay = Duration::from_millis(5);
    let sink = Sink::start(cfg).unwrap();
    let extra = format!(
        "defer_transports =\nrelayhost = [127.0.0.1]:{}\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n\
         default_destination_concurrency_limit = {CONCURRENCY}\n",
        sink.addr().port()
    );
    let mut inst = Instance::new("crash-relay", &extra);
    inst.start();
    let addr = inst.addr();
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let acks = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for client in 0..CLIENTS {
        let acked = acked.clone();
        let acks = acks.clone();
        threads.push(std::thread::spawn(move || {
            let run = || -> Option<()> {
                let mut c = std::panic::catch_unwind(|| Client::connect(addr)).ok()?;
                c.stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
                let greeting = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.reply())).ok()?;
                if !greeting.starts_with("220") {
                    return None;
                }
                {
                    use std::io::Write;
                    // EHLO ends a pipelined group (RFC 2920): alone.
                    c.stream.write_all(b"EHLO crash.example.org\r\n").ok()?;
                }
                let ehlo = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.reply())).ok()?;
                if !ehlo.starts_with("250") {
                    return None;
                }
                for n in 0..PER_CLIENT {
                    if started.elapsed() > LOAD_LIMIT {
                        break;
                    }
                    let token = format!("token-{client}-{n}");
                    let body = format!("Subject: {token}\r\n\r\n{token}\r\n");
                    use std::io::Write;
                    let script = format!(
                        "MAIL FROM:<c{client}@example.org>\r\nRCPT TO:<r{n}@example.net>\r\nDATA\r\n"
                    );
                    c.stream.write_all(script.as_bytes()).ok()?;
                    let mut ok = true;
                    for _ in 0..3 {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.reply())).ok()?;
                        ok &= !r.starts_with('4') && !r.starts_with('5');
                    }
                    if !ok {
                        return None;
                    }
                    c.stream.write_all(body.as_bytes()).ok()?;
                    c.stream.write_all(b".\r\n").ok()?;
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.reply())).ok()?;
                    if queued_as(&r).is_some() {
                        acked.lock().unwrap().push(token);
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Some(())
            };
            let _ = run();
        }));
    }
    while acks.load(Ordering::SeqCst) < KILL_AFTER_ACKS && started.elapsed() < LOAD_LIMIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered_before_kill = sink.messages();
    inst.kill();
    for t in threads {
        let _ = t.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "load did not get going: {} acks; log:\n{}",
        acked.len(),
        inst.log()
    );

    inst.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for m in sink.received() {
            if let Some(t) = token_of(&m.content) {
                *counts.entry(t).or_default() += 1;
            }
        }
        if acked.iter().all(|t| counts.contains_key(t)) || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let missing: Vec<&String> = acked.iter().filter(|t| !counts.contains_key(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages never reached the next hop, e.g. {:?}; log:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        inst.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "crash (relay): {} acknowledged, {} delivered before the kill, all delivered after restart; {} duplicate deliveries",
        acked.len(),
        delivered_before_kill,
        duplicates
    );
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} duplicates: more than the {CONCURRENCY} deliveries that can be in flight"
    );
    assert!(inst.stop().success());
}
