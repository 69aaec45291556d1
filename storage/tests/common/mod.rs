//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sluice_protocols::envelope::{ClientInfo, Envelope, Protocol, Recipient};
use sluice_storage::log::{Batch, ShardLog};
use sluice_storage::qid::{QidGenerator, QueueId};
use sluice_storage::record::{MessageRecord, Record};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "sluice-storage-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const NOW: u64 = 1_700_000_000_000_000;

pub fn message(qid: QueueId, content_len: usize) -> Record {
    Record::Message(MessageRecord {
        arrival_us: qid.time_us().unwrap_or(NOW),
        qid,
        envelope: Envelope {
            sender: "alice@example.com".into(),
            recipients: vec![
                Recipient::new("bob@example.org"),
                Recipient::new("carol@example.net"),
            ],
            ..Envelope::default()
        },
        client: Some(ClientInfo {
            name: "client.example.com".into(),
            addr: "192.0.2.7".parse().unwrap(),
            port: 2525,
            helo: Some("client.example.com".into()),
            protocol: Protocol::Esmtp,
        }),
        content: (0..content_len).map(|i| b'a' + (i % 26) as u8).collect(),
    })
}

/// Appends `n` messages, one batch, returning their IDs.
pub fn append_messages(
    log: &mut ShardLog,
    ids: &mut QidGenerator,
    n: usize,
    content_len: usize,
) -> Vec<QueueId> {
    let mut batch = Batch::new();
    let qids: Vec<QueueId> = (0..n).map(|_| ids.next(NOW)).collect();
    for q in &qids {
        batch.push(&message(q.clone(), content_len));
    }
    log.append_blocking(batch).unwrap();
    qids
}

pub fn append(log: &mut ShardLog, records: &[Record]) -> Vec<PathBuf> {
    let mut batch = Batch::new();
    for r in records {
        batch.push(r);
    }
    log.append_blocking(batch).unwrap().dead_segments
}

/// The `.seg` files in a shard directory, sorted.
pub fn segment_files(shard_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(shard_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

/// A comparable view of an index.
pub fn snapshot(log: &ShardLog) -> Vec<String> {
    let mut v: Vec<String> = log.index().iter().map(|m| format!("{m:?}")).collect();
    v.sort();
    v
}
