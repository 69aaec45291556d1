//! Queue-log group commit: 4 KiB messages appended with
//! `ShardLog::append_blocking` (one write + one fdatasync per batch), for
//! batches of 1, 16 and 64 messages.
//!
//! Each batch also carries a `Done` record for every message of the batch
//! before it, the steady state of a relay (arrivals and completions
//! interleaved); that also lets segments be reclaimed, so the bench uses
//! at most a couple of 64 MiB segments of disk.
//!
//! Criterion reports messages/s (`Throughput::Elements`). fsyncs/s is
//! messages/s divided by the batch size; it is also printed after each
//! batch size. On the reference machines an fdatasync costs ~0.5 ms
//! (~2,000/s), so batch 1 is bounded near 2,000 messages/s and larger
//! batches should scale almost linearly until the bytes, not the fsync,
//! cost the time.
//!
//! Files go to a directory under `std::env::temp_dir()` (set `TMPDIR` to
//! bench another disk; tmpfs makes fdatasync free and the numbers
//! meaningless), removed at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_protocols::envelope::{ClientInfo, Envelope, Protocol, Recipient};
use sluice_storage::log::{Batch, LogOptions, ShardLog};
use sluice_storage::qid::{QidGenerator, QueueId};
use sluice_storage::record::{MessageRecord, Record};

const CONTENT_LEN: usize = 4096;
const BATCH_SIZES: [usize; 3] = [1, 16, 64];

/// A scratch queue directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn template() -> MessageRecord {
    MessageRecord {
        qid: QueueId::parse("0").expect("valid queue ID"),
        arrival_us: 0,
        envelope: Envelope {
            sender: "sender@example.com".into(),
            recipients: vec![Recipient::new("rcpt@example.org")],
            ..Envelope::default()
        },
        client: Some(ClientInfo {
            name: "client.example.com".into(),
            addr: "192.0.2.1".parse().expect("valid address"),
            port: 40000,
            helo: Some("client.example.com".into()),
            protocol: Protocol::Esmtp,
        }),
        content: vec![b'x'; CONTENT_LEN],
    }
}

fn queue_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in BATCH_SIZES {
        let scratch = Scratch(std::env::temp_dir().join(format!(
            "sluice-bench-queue-append-{}-{n}",
            std::process::id()
        )));
        let (mut log, report) =
            ShardLog::open(&scratch.0, 0, LogOptions::default()).expect("open the queue log");
        let mut ids = QidGenerator::new(0, report.max_arrival_us);
        let mut message = Record::Message(template());
        let mut previous: Vec<QueueId> = Vec::with_capacity(n);
        let (mut batches, mut spent) = (0u64, Duration::ZERO);

        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("4KiB_messages_per_batch", n), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut batch = Batch::new();
                    for qid in previous.drain(..) {
                        batch.push(&Record::Done { qid });
                    }
                    for _ in 0..n {
                        let (qid, t) = ids.next_with_time(now_us());
                        if let Record::Message(m) = &mut message {
                            m.qid = qid.clone();
                            m.arrival_us = t;
                        }
                        batch.push(&message);
                        previous.push(qid);
                    }
                    log.append_blocking(batch).expect("append");
                }
                let elapsed = start.elapsed();
                batches += iters;
                spent += elapsed;
                elapsed
            })
        });
        let fsyncs_per_s = batches as f64 / spent.as_secs_f64().max(f64::EPSILON);
        eprintln!(
            "queue_append batch {n}: {fsyncs_per_s:.0} fsyncs/s, {:.0} messages/s",
            fsyncs_per_s * n as f64
        );
    }
    group.finish();
}

criterion_group!(benches, queue_append);
criterion_main!(benches);
