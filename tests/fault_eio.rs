//! Fault suite: an fdatasync of the queue log that fails with EIO, end to
//! end through the real daemon. The fault comes from the commit path's
//! seam (engine/src/fault.rs, `SLUICE_FAULT_PLAN`, compiled only into the
//! binary built for tests), after the batch's bytes really reached the
//! disk: the worst case. Every client whose message was in that batch gets
//! 451 4.3.0, never 250; none of those messages is ever delivered, before
//! or after a restart; everything acknowledged is; service resumes.

mod common;
use common::load::{token_of, Load};
use common::*;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The batch (counting batches that carry new mail) whose fdatasync fails.
const FAILING_BATCH: u64 = 25;

fn sink_counts(sink: &sluice_tools::load::Sink) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in sink.received() {
        if let Some(t) = token_of(&m.content) {
            *counts.entry(t).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn a_failed_fdatasync_answers_451_and_its_mail_never_appears() {
    let sink = start_sink(|c| c.keep_received = 100_000);
    let mut inst = Instance::new("eio", &relay_to(sink.addr().port()));
    inst.start_with(|c| {
        c.env(
            "SLUICE_FAULT_PLAN",
            format!("fail-fdatasync:{FAILING_BATCH}"),
        );
    });
    let load = Load::start(inst.addr(), 8, "eio");
    let marker = format!("fault injection: fdatasync #{FAILING_BATCH} ");
    assert!(
        wait_until(Duration::from_secs(20), || inst.log().contains(&marker)),
        "the fault never struck; log:\n{}",
        inst.log()
    );
    // The shard refuses mail for a second after the failure, then writes
    // the void into a fresh segment (preallocated: slow on a busy disk);
    // keep the load on until the clients see service resume (bounded).
    let acks_at_fault = load.acks();
    let resumed_in = std::time::Instant::now();
    let resumed = wait_until(Duration::from_secs(15), || load.acks() > acks_at_fault + 5);
    let resumed_in = resumed_in.elapsed();
    let acks_after = load.acks() - acks_at_fault;
    let out = load.finish();
    eprintln!(
        "eio: {} acknowledged ({acks_after} after the fault, resumed in {resumed_in:?}), {} refused, {} unanswered",
        out.acked.len(),
        out.refused.len(),
        out.unanswered.len()
    );
    assert!(out.unanswered.is_empty(), "{:?}", out.unanswered);
    assert!(!out.refused.is_empty(), "no client saw the failed batch");
    for (t, r) in &out.refused {
        assert_eq!(r, "451 4.3.0 Error: queue file write error", "{t}");
    }
    assert!(resumed, "service did not resume within 15 s of the fault");
    let refused: HashSet<&String> = out.refused.iter().map(|(t, _)| t).collect();

    // Everything acknowledged is delivered; nothing refused is.
    assert!(
        wait_until(Duration::from_secs(60), || {
            let c = sink_counts(&sink);
            out.acked.iter().all(|t| c.contains_key(t))
        }),
        "acknowledged mail was not delivered; log:\n{}",
        inst.log()
    );
    let delivered = sink_counts(&sink);
    let leaked: Vec<_> = refused
        .iter()
        .filter(|t| delivered.contains_key(**t))
        .collect();
    assert!(leaked.is_empty(), "refused mail was delivered: {leaked:?}");

    // A restart replays the log: the refused batch is on the disk, and only
    // its void keeps it from coming back.
    assert!(inst.stop().success());
    inst.start();
    assert!(
        wait_until(Duration::from_secs(30), || inst.queue_json().is_empty()),
        "the queue did not drain after the restart: {:?}",
        inst.queue_json()
    );
    let r = inst.submit(
        "after@example.org",
        &["r@example.net"],
        "Subject: after\r\n\r\ntoken=after-the-fault; ok\r\n",
    );
    assert!(!r.is_empty());
    assert!(wait_until(Duration::from_secs(30), || sink_counts(&sink)
        .contains_key("after-the-fault")));
    assert!(inst.stop().success());
    let delivered = sink_counts(&sink);
    let leaked: Vec<_> = refused
        .iter()
        .filter(|t| delivered.contains_key(**t))
        .collect();
    assert!(
        leaked.is_empty(),
        "refused mail came back after a restart: {leaked:?}"
    );
    let in_queue: Vec<String> = read_queue(&inst.queue_dir())
        .iter()
        .filter_map(|(_, _, _, c)| token_of(c))
        .filter(|t| refused.contains(t))
        .collect();
    assert!(
        in_queue.is_empty(),
        "refused mail in the queue: {in_queue:?}"
    );
}
