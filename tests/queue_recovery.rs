//! The queue log across restarts: a damaged record is quarantined, never
//! fatal; a full disk answers 452 4.3.1 and loses nothing already queued.

mod common;
use common::*;

use std::process::Command;

fn segments(queue_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for shard in std::fs::read_dir(queue_dir).unwrap().flatten() {
        if shard
            .file_name()
            .to_str()
            .is_some_and(|s| s.parse::<u32>().is_ok())
        {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                if f.path().extension().is_some_and(|e| e == "seg") {
                    v.push(f.path());
                }
            }
        }
    }
    v
}

#[test]
fn a_damaged_record_is_quarantined_and_the_rest_survive() {
    let mut inst = Instance::new("corrupt", "sluice_shards = 1");
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let mut qids = Vec::new();
    for n in 0..3 {
        let body = format!("Subject: m{n}\r\n\r\nUNIQUE-MARKER-{n} some content here\r\n");
        qids.push(
            queued_as(&c.send_mail("a@example.org", &["b@example.net"], body.as_bytes())).unwrap(),
        );
    }
    c.cmd("QUIT");
    assert!(inst.stop().success());

    // Flip one byte inside the second message's content.
    let mut damaged = false;
    for seg in segments(&inst.queue_dir()) {
        let mut bytes = std::fs::read(&seg).unwrap();
        if let Some(p) = bytes.windows(15).position(|w| w == b"UNIQUE-MARKER-1") {
            bytes[p] ^= 0x20;
            std::fs::write(&seg, &bytes).unwrap();
            damaged = true;
        }
    }
    assert!(damaged, "marker not found in the segments");

    inst.start();
    let json = inst.queue_json();
    let line_for = |q: &str| json.iter().find(|l| l.contains(q)).cloned();
    for q in [&qids[0], &qids[2]] {
        let l = line_for(q).unwrap();
        // Intact messages are back in the queue (deferred: tests defer smtp).
        assert!(!l.contains("\"queue_name\": \"corrupt\""), "{l}");
    }
    let bad = line_for(&qids[1]).expect("the damaged message is still listed");
    assert!(bad.contains("\"queue_name\": \"corrupt\""), "{bad}");
    // The daemon still takes mail after recovering.
    let mut c = inst.connect();
    c.reply();
    c.cmd("HELO client.example.org");
    assert!(queued_as(&c.send_mail(
        "a@example.org",
        &["b@example.net"],
        b"Subject: after\r\n\r\nok\r\n"
    ))
    .is_some());
    c.cmd("QUIT");
    assert!(inst.stop().success());
    assert!(
        inst.log()
            .contains(&format!("{}: corrupt queue record", qids[1])),
        "{}",
        inst.log()
    );
    let damaged = inst
        .log()
        .lines()
        .find(|l| l.contains("damaged records"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        damaged.contains("]: warning: ") && damaged.contains(".seg: damaged records"),
        "{damaged}"
    );
}

/// Garbage after the last record (a write cut short) is truncated at the
/// next start, and said so as a Postfix `warning:` naming the segment.
#[test]
fn a_torn_tail_is_truncated_with_a_warning() {
    let mut inst = Instance::new("torn", "sluice_shards = 1");
    inst.start();
    inst.submit(
        "a@example.org",
        &["b@example.net"],
        "Subject: kept\r\n\r\nx\r\n",
    );
    assert!(inst.stop().success());
    let seg = segments(&inst.queue_dir())
        .into_iter()
        .next()
        .expect("a segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let torn = end + 32;
    assert!(torn <= bytes.len(), "segment not preallocated");
    bytes[end..torn].fill(0x5a);
    std::fs::write(&seg, &bytes).unwrap();

    inst.start();
    assert_eq!(inst.queue_json().len(), 1);
    assert!(inst.stop().success());
    let line = format!("]: warning: {}: torn tail of ", seg.display());
    let log = inst.log();
    assert!(
        log.contains(&line) && log.contains("never acknowledged) truncated"),
        "{log}"
    );
}

/// A tiny tmpfs as the queue directory; needs root (CI runs as root).
/// Where mounting is not allowed the test fails: a test that cannot set
/// itself up proves nothing.
#[test]
fn a_full_disk_answers_452_and_keeps_what_it_acknowledged() {
    let dir = TempDir::new("enospc-mnt");
    let mnt = dir.path().join("q");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&mnt)
        .output();
    match &mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "cannot mount a 3 MiB tmpfs for the full-disk test (it needs root, as in CI): {}",
            show(o)
        ),
        Err(e) => panic!("cannot run mount(8) for the full-disk test: {e}"),
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());

    let mut inst = Instance::with_queue_dir(
        "enospc",
        "sluice_shards = 1\nsluice_segment_size = 1m",
        mnt.clone(),
    );
    inst.start();
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    let body = format!("Subject: fill\r\n\r\n{}\r\n", "y".repeat(60_000));
    let mut acked = Vec::new();
    let mut refusal = None;
    for _ in 0..200 {
        let r = c.send_mail("a@example.org", &["b@example.net"], body.as_bytes());
        match queued_as(&r) {
            Some(q) => acked.push(q),
            None => {
                refusal = Some(r);
                break;
            }
        }
    }
    let refusal = refusal.expect("a 3 MiB disk never filled up");
    assert_eq!(refusal, "452 4.3.1 Insufficient system storage");
    assert!(!acked.is_empty());
    // The session is still usable and the daemon still answers.
    assert_eq!(c.cmd("NOOP"), "250 2.0.0 Ok");
    c.cmd("QUIT");
    assert!(inst.stop().success());
    let q = read_queue(&mnt);
    for id in &acked {
        assert!(
            q.iter().any(|(qid, ..)| qid == id),
            "{id} was acknowledged but is gone"
        );
    }
}
