//! Fault suite: a power cut. The daemon runs under load with the commit
//! path's seam recording, after every completed fdatasync, how far each
//! segment is durable (`SLUICE_FAULT_PLAN=record-syncs:DIR`, compiled only
//! into the binary built for tests). The power goes at a random batch
//! (`power-cut:N`): the daemon has written that batch, its clients wait,
//! and it SIGKILLs itself before the fdatasync. The test then drops what a
//! power cut may drop: each segment's bytes past its
//! durable length are zeroed from a random point on (a torn write keeps
//! some of them), and a segment never synced is zeroed whole. After a
//! restart every acknowledged message is in the queue, intact, and nothing
//! half-written is there.

mod common;

use common::load::{intact, token_of, Load};
use common::*;
use std::os::unix::fs::PermissionsExt;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROUNDS: usize = 3;
const CLIENTS: usize = 8;

/// xorshift64*: enough randomness for kill times and cut points.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

fn segments(queue_dir: &Path) -> HashSet<PathBuf> {
    let mut v = HashSet::new();
    let Ok(shards) = std::fs::read_dir(queue_dir) else {
        return v; // not created yet
    };
    for shard in shards.flatten() {
        if shard
            .file_name()
            .to_str()
            .is_some_and(|s| s.parse::<u32>().is_ok())
        {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                if f.path().extension().is_some_and(|e| e == "seg") {
                    v.insert(f.path());
                }
            }
        }
    }
    v
}

/// The durable length of each segment, from the seam's `*.synced` files.
fn synced(dir: &Path) -> HashMap<PathBuf, u64> {
    let mut m = HashMap::new();
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "synced") {
            for line in std::fs::read_to_string(f.path()).unwrap().lines() {
                let (p, end) = line.rsplit_once(' ').expect("PATH END");
                m.insert(PathBuf::from(p), end.parse().unwrap());
            }
        }
    }
    m
}

/// Zero `path` from `from` to its end; returns the bytes that were not
/// zero already.
fn zero_from(path: &Path, from: u64) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let from = (from as usize).min(bytes.len());
    let dropped = bytes[from..].iter().filter(|&&b| b != 0).count();
    bytes[from..].fill(0);
    std::fs::write(path, &bytes).unwrap();
    dropped
}

/// The power cut: what was not synced is lost, in part or in whole.
fn cut_power(queue_dir: &Path, record: &Path, before: &HashSet<PathBuf>, rng: &mut Rng) -> usize {
    let durable = synced(record);
    let mut dropped = 0;
    for seg in segments(queue_dir) {
        let from = match durable.get(&seg) {
            Some(&end) => {
                let bytes = std::fs::read(&seg).unwrap();
                let written = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1) as u64;
                // Somewhere in the unsynced tail, so that some of it is lost.
                end + rng.next(written.saturating_sub(end))
            }
            // Created in this round and never synced: nothing of it is durable.
            None if !before.contains(&seg) => 0,
            None => continue,
        };
        dropped += zero_from(&seg, from);
    }
    dropped
}

#[test]
fn a_power_cut_keeps_every_acknowledged_message_and_nothing_half_written() {
    let s = seed();
    eprintln!("power cut: seed {s}");
    let mut rng = Rng(s);
    let record = TempDir::new("power-cut-record");
    // Run as root, the daemon drops to mail_owner: let it write its ledger.
    std::fs::set_permissions(record.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut inst = Instance::new("power-cut", "");
    let mut acked: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let before = segments(&inst.queue_dir());
        for f in std::fs::read_dir(record.path()).unwrap().flatten() {
            std::fs::remove_file(f.path()).unwrap();
        }
        let at = 10 + rng.next(60);
        let plan = format!("record-syncs:{},power-cut:{at}", record.path().display());
        inst.start_with(|c| {
            c.env("SLUICE_FAULT_PLAN", plan);
        });
        let load = Load::start(inst.addr(), CLIENTS, &format!("cut{round}"));
        let child = inst.child.as_mut().unwrap();
        let died = wait_timeout(child, Duration::from_secs(30));
        assert!(
            died.is_some(),
            "the power never went (batch {at}); log:\n{}",
            inst.log()
        );
        inst.kill();
        let out = load.finish();
        let dropped = cut_power(&inst.queue_dir(), record.path(), &before, &mut rng);
        eprintln!(
            "power cut round {round}: at batch {at}, {} acknowledged, {} in flight, {dropped} unsynced bytes dropped",
            out.acked.len(),
            out.unanswered.len()
        );
        acked.extend(out.acked);

        inst.start();
        assert!(inst.stop().success());
        let queue = read_queue(&inst.queue_dir());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (qid, _, _, content) in &queue {
            let token = token_of(content)
                .unwrap_or_else(|| panic!("{qid}: a message without its token (half written?)"));
            assert!(intact(&token, content), "{qid} ({token}): content differs");
            *seen.entry(token).or_insert(0) += 1;
        }
        let lost: Vec<&String> = acked.iter().filter(|t| !seen.contains_key(*t)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged messages lost after the power cut, e.g. {:?}; log:\n{}",
            lost.len(),
            &lost[..lost.len().min(5)],
            inst.log()
        );
        let dups: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
        assert!(dups.is_empty(), "queued twice: {dups:?}");
    }
}
