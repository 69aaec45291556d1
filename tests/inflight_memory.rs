//! sluice_inflight_memory_limit end to end: slow clients sending 1 MB
//! messages in parallel through Python's smtplib against a 4 MiB budget
//! (one shard).
//! The ones that fit get 250, the others 451 4.3.0 and nothing of theirs is
//! queued; the daemon's memory stays bounded; a retry afterwards gets 250.

mod common;
use common::*;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `clients` smtplib sessions, each sending a 1 MB body in 64 KiB pieces
/// 30 ms apart once all of them reached DATA; prints one line per client:
/// its final reply.
fn slow_clients(port: u16, clients: usize) -> Vec<String> {
    let script = format!(
        r#"
import smtplib, threading, time
N = {clients}
barrier = threading.Barrier(N, timeout=60)
results = [None] * N
def client(i):
    s = smtplib.SMTP("127.0.0.1", {port}, timeout=60)
    s.ehlo("slow%d.example" % i)
    assert s.mail("s%d@example.org" % i)[0] == 250
    assert s.rcpt("r%d@example.net" % i)[0] == 250
    s.putcmd("data")
    code, msg = s.getreply()
    assert code == 354, (code, msg)
    barrier.wait()
    body = (b"Subject: client %d\r\n\r\n" % i) + (b"x" * 998 + b"\r\n") * 1000
    for k in range(0, len(body), 65536):
        s.sock.sendall(body[k:k + 65536])
        time.sleep(0.03)
    s.sock.sendall(b".\r\n")
    code, msg = s.getreply()
    results[i] = "%d %s" % (code, msg.decode())
    s.quit()
threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in threads: t.start()
for t in threads: t.join()
for r in results: print(r)
"#
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 must be installed for this test");
    assert!(
        out.status.success(),
        "smtplib clients failed: {}",
        show(&out)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn messages_beyond_the_budget_get_451_and_nothing_is_queued() {
    let mut inst = Instance::new(
        "inflight",
        "sluice_shards = 1\nmessage_size_limit = 1100000\nsluice_inflight_memory_limit = 4m\n",
    );
    inst.start();
    let pid = inst.child.as_ref().unwrap().id();
    let baseline = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let replies = slow_clients(inst.port, 12);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(replies.len(), 12, "{replies:?}");
    let grew_kib = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!("RSS baseline {baseline} KiB, grew {grew_kib} KiB; replies {replies:?}");
    let accepted: Vec<String> = replies.iter().filter_map(|r| queued_as(r)).collect();
    let refused = replies
        .iter()
        .filter(|r| *r == "451 4.3.0 Error: insufficient system resources")
        .count();
    assert_eq!(accepted.len() + refused, 12, "only 250 or 451: {replies:?}");
    // 4 MiB holds two 1 MB messages at a time (each counted twice, for the
    // copy made while it is stored); a refused one releases its share at
    // once, so the last ones standing always get through.
    assert!(
        !accepted.is_empty() && refused > 0,
        "some fit, the rest are refused: {replies:?}"
    );
    assert!(
        inst.log()
            .contains("message content refused: in-flight memory limit reached"),
        "the operator is told why:\n{}",
        inst.log()
    );
    // Without the budget the daemon grows by about 60 MB here (twelve
    // 1 MB messages, each with its copies). With it, content is bounded
    // by 4 MiB; the rest is the commit's and qmgr's copies of the one or
    // two accepted messages, read buffers and the allocator's retention.
    assert!(
        grew_kib < 30 * 1024,
        "RSS grew {grew_kib} KiB (baseline {baseline} KiB): content is not bounded"
    );

    // After they finished, the budget is free again: a retry gets 250.
    let retry = slow_clients(inst.port, 1);
    let retried = queued_as(&retry[0]).unwrap_or_else(|| panic!("retry refused: {retry:?}"));

    assert!(inst.stop().success());
    let mut queued: Vec<String> = read_queue(&inst.queue_dir())
        .into_iter()
        .map(|(qid, _, _, content)| {
            assert!(content.len() > 1_000_000, "whole messages only");
            qid
        })
        .collect();
    queued.sort();
    let mut want = accepted;
    want.push(retried);
    want.sort();
    assert_eq!(queued, want, "exactly the acknowledged messages are queued");
}
