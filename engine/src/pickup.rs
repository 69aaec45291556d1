//! pickup: takes what `sendmail` left in `maildrop/` and queues it.
//!
//! sendmail writes each message as one file (temp name, fsync, rename), so
//! it works while the daemon is down. Shard 0 runs this service: it scans
//! the directory (at start, every `PICKUP_SCAN`, and when poked through
//! the control socket), passes each file through cleanup with
//! `Received: by $myhostname (Sluice, from userid N)`, group-commits it
//! into its own queue log, and deletes the file only after the fsync
//! covering the new queue record returned. A file that does not decode is
//! moved aside to `maildrop-bad/` with a log line: never retried forever,
//! never silently lost.
//!
//! Trust: maildrop files come from local users; everything in them is
//! checked (the file format has a CRC; cleanup enforces header limits).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use sluice_agents::cleanup::{cleanup, CleanupInput, Origin};
use sluice_storage::maildrop;
use sluice_storage::record::{MessageRecord, Record};

use crate::active::Active;
use crate::shard::Shard;

/// How often maildrop/ is scanned when nobody pokes us (Postfix's pickup
/// wakes every 60 s and on each postdrop trigger; we poll more often
/// because a trigger from a stopped-then-started daemon may be missed).
const PICKUP_SCAN: Duration = Duration::from_secs(1);
/// A maildrop temp file older than this belongs to a sendmail that died.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// Files taken per scan (bounded work per round).
const PICKUP_BATCH: usize = 256;
/// Bound on a maildrop file's size: message_size_limit plus room for the
/// envelope.
const ENVELOPE_SLACK: u64 = 1 << 20;

pub struct Pickup {
    queue_dir: PathBuf,
    woken: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Pickup {
    pub fn new(queue_dir: &Path) -> Rc<Pickup> {
        Rc::new(Pickup {
            queue_dir: queue_dir.to_path_buf(),
            woken: Cell::new(false),
            waker: Cell::new(None),
        })
    }

    /// `postqueue -f`, sendmail's poke: scan now.
    pub fn wake(&self) {
        self.woken.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub async fn run(self: Rc<Self>, shard: Rc<Shard>, active: Rc<Active>) {
        if let Err(e) = maildrop::ensure_dir(
            &self.queue_dir,
            &shard.params().mail_owner,
            &shard.params().setgid_group,
        ) {
            tracing::warn!(target: "pickup", "warning: {}: {e}", maildrop::maildrop_dir(&self.queue_dir).display());
        }
        // Temp files of sendmail runs that died mid-write (Postfix's
        // postsuper -p does this too; here it also happens at every start).
        if let Err(e) = maildrop::remove_stale_temps(
            &self.queue_dir,
            STALE_TEMP_AGE,
            std::time::SystemTime::now(),
        ) {
            tracing::warn!(target: "pickup", "warning: cleaning maildrop/: {e}");
        }
        loop {
            if shard.shutdown_requested() {
                break;
            }
            match maildrop::ready_files(&self.queue_dir, PICKUP_BATCH) {
                Ok(files) => {
                    for f in files {
                        if shard.shutdown_requested() {
                            break;
                        }
                        self.take(&shard, &active, &f).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "pickup", "warning: scan {}: {e}", maildrop::maildrop_dir(&self.queue_dir).display());
                }
            }
            let wait = std::future::poll_fn(|cx| {
                if self.woken.replace(false) || shard.shutdown_requested() {
                    return Poll::Ready(());
                }
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            });
            futures_lite::future::or(wait, glommio::timer::sleep(PICKUP_SCAN)).await;
        }
    }

    async fn take(&self, shard: &Shard, active: &Active, path: &Path) {
        // message_size_limit bounds the file (0: no limit, as in Postfix).
        let limit = match shard.params().smtpd.message_size_limit {
            0 => u64::MAX,
            n => n.saturating_add(ENVELOPE_SLACK),
        };
        // load() refuses symlinks and FIFOs (a planted FIFO would block
        // this shard) and files over the limit before reading them.
        let loaded = match maildrop::load(path, limit) {
            Ok(l) => l,
            Err(e) if !e.is_permanent() => {
                // Gone meanwhile, or a transient read error: the next scan decides.
                tracing::debug!(target: "pickup", "{}: {e}", path.display());
                return;
            }
            Err(e) => {
                match maildrop::quarantine(&self.queue_dir, path) {
                    Ok(to) => {
                        tracing::warn!(target: "pickup", "warning: {}: {e}; moved to {}", path.display(), to.display())
                    }
                    Err(q) => {
                        tracing::warn!(target: "pickup", "warning: {}: {e}; cannot move it aside: {q}", path.display())
                    }
                }
                return;
            }
        };
        let mut msg = loaded.message;
        // The uid written in the file is believed only from root or from
        // our own user (Postfix's postdrop); anyone else is who owns it.
        // SAFETY: geteuid has no preconditions.
        let own = unsafe { libc::geteuid() };
        if loaded.file_uid != 0 && loaded.file_uid != own {
            msg.uid = loaded.file_uid;
        }
        let arrival_us = crate::dispatch::now_us();
        let qid = shard.qidgen.borrow_mut().next(arrival_us);
        let mut envelope = msg.envelope;
        let cleaned = cleanup(
            &shard.cleanup(),
            CleanupInput {
                qid: qid.as_str(),
                arrival_secs: (arrival_us / 1_000_000) as i64,
                origin: Origin::Pickup { uid: msg.uid },
                envelope: &mut envelope,
                content: &msg.content,
                authenticated: false,
                authenticated_sender: None,
                tls: None,
                rewrite_client: false,
            },
        );
        let cleaned = match cleaned {
            Ok(c) => c,
            Err(e) => {
                // Postfix bounces such mail to the sender; until bounces
                // of local submissions exist, keep the file aside.
                let _ = maildrop::quarantine(&self.queue_dir, path);
                tracing::warn!(target: "pickup", "warning: {}: rejected by cleanup: {e}", path.display());
                return;
            }
        };
        let sender = envelope.sender.clone();
        let message_id = cleaned.message_id.clone();
        let record = Record::Message(MessageRecord {
            qid: qid.clone(),
            arrival_us,
            envelope,
            client: None,
            content: cleaned.content,
        });
        if let Err(e) = shard.committer.commit(&record).await {
            tracing::warn!(target: "pickup", "warning: {}: queue write failed ({e:?}); will retry", path.display());
            return;
        }
        // Durable in the queue: now the maildrop file may go.
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(target: "pickup", "warning: remove {}: {e}", path.display());
        }
        tracing::info!(target: "pickup", "{qid}: uid={} from=<{sender}>", msg.uid);
        tracing::info!(target: "cleanup", "{qid}: message-id={message_id}");
        if let Record::Message(rec) = record {
            active.accept_new(rec);
        }
    }
}
