//! smtpd hot paths: command parsing and DATA scanning, in bytes/s.
//!
//! - `commands`: a pipelined envelope (MAIL, RCPTs with DSN parameters,
//!   RSET) through `Session::receive`, as after EHLO.
//! - `data_scan`: `DataScanner` alone over 4 KiB and 100 KiB messages of
//!   realistic text (CRLF lines, some dot-stuffed).
//! - `transaction`: a whole EHLO … QUIT session with such a message.
//!
//! Run: `cargo bench --bench smtp_parser`.

use std::hint::black_box;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_protocols::smtp::server::data::{DataScanner, Scan};
use sluice_protocols::smtp::server::{AcceptAll, ServerConfig, Session, Want};
use sluice_protocols::smtp::BareNewline;

/// A message body of about `size` bytes, ending in the terminator.
fn message(size: usize) -> Vec<u8> {
    let mut m =
        b"From: Jane <jane@a.example>\r\nTo: joe@b.example\r\nSubject: report\r\n\r\n".to_vec();
    let line =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n";
    let mut n = 0;
    while m.len() + line.len() + 5 < size {
        if n % 16 == 15 {
            m.extend_from_slice(b"..a dot-stuffed line\r\n");
        } else {
            m.extend_from_slice(line);
        }
        n += 1;
    }
    m.extend_from_slice(b".\r\n");
    m
}

fn envelope_commands(rounds: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..rounds {
        v.extend_from_slice(
            format!("MAIL FROM:<sender{i}@a.example> SIZE=4096 BODY=8BITMIME\r\n").as_bytes(),
        );
        for r in 0..4 {
            v.extend_from_slice(
                format!("RCPT TO:<user{r}@b.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;user{r}+40b.example\r\n")
                    .as_bytes(),
            );
        }
        v.extend_from_slice(b"RSET\r\n");
    }
    v
}

fn cfg() -> Rc<ServerConfig> {
    Rc::new(ServerConfig {
        // Benchmarks count errors, not tarpit them.
        junk_command_limit: u32::MAX,
        ..ServerConfig::for_tests("mx.example")
    })
}

fn commands(c: &mut Criterion) {
    let input = envelope_commands(100);
    let cfg = cfg();
    let mut group = c.benchmark_group("commands");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("pipelined_envelopes", |b| {
        b.iter(|| {
            let mut s = Session::new(cfg.clone());
            s.greet();
            let _ = s.receive(b"EHLO client.example\r\n", &mut AcceptAll);
            let p = s.receive(black_box(&input), &mut AcceptAll);
            assert_eq!((p.consumed, p.want), (input.len(), Want::More));
            black_box(s.output().len())
        })
    });
    group.finish();
}

fn data_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_scan");
    for (name, size) in [("4KiB", 4 * 1024), ("100KiB", 100 * 1024)] {
        let msg = message(size);
        group.throughput(Throughput::Bytes(msg.len() as u64));
        group.bench_with_input(BenchmarkId::new("normalize", name), &msg, |b, msg| {
            let mut content = Vec::with_capacity(msg.len());
            b.iter(|| {
                content.clear();
                let mut scanner = DataScanner::new(BareNewline::Normalize, 10_240_000);
                let (n, scan) = scanner.feed(black_box(msg), &mut content);
                assert_eq!((n, scan), (msg.len(), Scan::End));
                black_box(content.len())
            })
        });
    }
    group.finish();
}

fn transaction(c: &mut Criterion) {
    let cfg = cfg();
    let mut group = c.benchmark_group("transaction");
    for (name, size) in [("4KiB", 4 * 1024), ("100KiB", 100 * 1024)] {
        let msg = message(size);
        group.throughput(Throughput::Bytes(msg.len() as u64));
        group.bench_with_input(BenchmarkId::new("ehlo_to_quit", name), &msg, |b, msg| {
            b.iter(|| {
                let mut s = Session::new(cfg.clone());
                s.greet();
                for cmd in [
                    &b"EHLO client.example\r\n"[..],
                    b"MAIL FROM:<jane@a.example>\r\nRCPT TO:<joe@b.example>\r\nDATA\r\n",
                ] {
                    let _ = s.receive(cmd, &mut AcceptAll);
                }
                let p = s.receive(black_box(msg), &mut AcceptAll);
                assert_eq!(p.want, Want::Message);
                let m = s.take_message();
                s.message_done(Ok("4dXYZ1"));
                let _ = s.receive(b"QUIT\r\n", &mut AcceptAll);
                black_box(m.map(|m| m.content.len()))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commands, data_scan, transaction);
criterion_main!(benches);
