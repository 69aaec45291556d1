//! Fault injection for the end-to-end fault suite (tests/fault_*.rs).
//!
//! Compiled only with the `fault-injection` cargo feature, which nothing
//! but the root package's dev-dependency turns on: a binary built for the
//! tests carries it, a `cargo build`/`cargo install` of Sluice does not.
//! Trust level: the plan comes from the environment of the daemon's own
//! start (a test harness); it is read once and only when the feature is
//! compiled in.
//!
//! `SLUICE_FAULT_PLAN` holds comma-separated faults:
//!
//! - `fail-fdatasync:N` — the fdatasync of the Nth queue-log batch that
//!   carries new mail in this process (counted over all shards, from 1;
//!   batches of delivery status only are not counted, so that a test knows
//!   clients are waiting on it) reports EIO once, after the bytes were
//!   written and really synced: the worst case, every refused record on
//!   the disk.
//! - `power-cut:N` — the Nth batch with new mail (counted as above) is
//!   written, and then, before its fdatasync, the process SIGKILLs itself:
//!   with `record-syncs`, the test then drops what was not synced.
//! - `record-syncs:DIR` — after every completed fdatasync of a segment,
//!   write `DIR/<shard>.synced` (atomically: temp file and rename) with one
//!   line `PATH END` per segment this process wrote: the length that is
//!   durable. A test SIGKILLs the daemon and drops what lies past those
//!   lengths: a power cut.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The parsed `SLUICE_FAULT_PLAN`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub fail_fdatasync: Option<u64>,
    pub power_cut: Option<u64>,
    pub record_syncs: Option<PathBuf>,
}

impl Plan {
    pub fn parse(s: &str) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once(':') {
                Some(("fail-fdatasync", n)) => {
                    let n = n.parse().map_err(|_| format!("bad count in {item:?}"))?;
                    plan.fail_fdatasync = Some(n);
                }
                Some(("power-cut", n)) => {
                    let n = n.parse().map_err(|_| format!("bad count in {item:?}"))?;
                    plan.power_cut = Some(n);
                }
                Some(("record-syncs", dir)) => plan.record_syncs = Some(PathBuf::from(dir)),
                _ => return Err(format!("unknown fault {item:?}")),
            }
        }
        Ok(plan)
    }
}

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let Ok(s) = std::env::var("SLUICE_FAULT_PLAN") else {
            return Plan::default();
        };
        match Plan::parse(&s) {
            Ok(p) => {
                tracing::warn!(target: "master", "warning: fault injection: SLUICE_FAULT_PLAN={s}");
                p
            }
            Err(e) => panic!("SLUICE_FAULT_PLAN: {e}"),
        }
    })
}

/// Batches with new mail in this process, over all shards.
static SYNCS: AtomicU64 = AtomicU64::new(0);

/// Per shard: the durable length of each segment it wrote.
#[derive(Default)]
pub struct SyncLedger {
    synced: BTreeMap<PathBuf, u64>,
    /// The number of the batch being written among those with new mail
    /// (0: it has none).
    batch: u64,
}

impl SyncLedger {
    /// A batch is about to be written.
    pub fn begin_batch(&mut self, has_message: bool) {
        self.batch = match has_message {
            true => SYNCS.fetch_add(1, Ordering::SeqCst) + 1,
            false => 0,
        };
    }

    /// The batch is written, its fdatasync not yet started.
    pub fn before_sync(&self) {
        if self.batch != 0 && plan().power_cut == Some(self.batch) {
            tracing::warn!(target: "cleanup", "warning: fault injection: power cut before fdatasync #{}", self.batch);
            // SAFETY: kill(2) on our own pid; nothing after it runs.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }

    /// Before a write at `offset` of `path`: what lies before it is durable
    /// (it was written and synced earlier, maybe by an earlier process).
    pub fn before_write(
        &mut self,
        shard_dir: &Path,
        path: &Path,
        offset: u64,
    ) -> std::io::Result<()> {
        if plan().record_syncs.is_none() || self.synced.contains_key(path) {
            return Ok(());
        }
        self.synced.insert(path.to_path_buf(), offset);
        self.persist(shard_dir)
    }

    /// A batch's fdatasync returned: `path` is durable up to `end`. Fails
    /// with EIO when the plan says this sync fails.
    pub fn after_sync(&mut self, shard_dir: &Path, path: &Path, end: u64) -> std::io::Result<()> {
        let n = self.batch;
        if n != 0 && plan().fail_fdatasync == Some(n) {
            tracing::warn!(target: "cleanup", "warning: fault injection: fdatasync #{n} of {} fails with EIO", path.display());
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        if plan().record_syncs.is_none() {
            return Ok(());
        }
        self.synced.insert(path.to_path_buf(), end);
        self.persist(shard_dir)
    }

    fn persist(&self, shard_dir: &Path) -> std::io::Result<()> {
        let Some(dir) = plan().record_syncs.as_ref() else {
            return Ok(());
        };
        let shard = shard_dir.file_name().unwrap_or_default().to_string_lossy();
        let mut text = String::new();
        for (p, e) in &self.synced {
            text.push_str(&format!("{} {e}\n", p.display()));
        }
        let out = dir.join(format!("{shard}.synced"));
        let tmp = dir.join(format!("{shard}.synced.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &out)
    }
}

#[cfg(test)]
mod tests {
    use super::Plan;

    #[test]
    fn plans_parse() {
        assert_eq!(Plan::parse("").unwrap(), Plan::default());
        let p = Plan::parse("fail-fdatasync:3, record-syncs:/tmp/x,power-cut:7").unwrap();
        assert_eq!(p.fail_fdatasync, Some(3));
        assert_eq!(p.power_cut, Some(7));
        assert_eq!(
            p.record_syncs.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        assert!(Plan::parse("fail-fdatasync:x").is_err());
        assert!(Plan::parse("explode").is_err());
    }
}
