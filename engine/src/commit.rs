//! Group commit: the one writer of a shard's queue log.
//!
//! Sessions that finish DATA hand their encoded record to the shard's
//! [`Committer`] and wait for a ticket. A single committer task takes every
//! record that is waiting, writes them with one `write_at` and makes them
//! durable with one `fdatasync`, then wakes the waiters whose tickets that
//! fsync covered. While one batch is on its way to the disk the next one
//! fills up, so the number of fsyncs per second stays near the disk's limit
//! (~2,000/s here) however many messages arrive.
//!
//! Nothing here answers a client: a waiter learns `Ok` only after the fsync
//! covering its record returned, and an error otherwise. After a failed
//! write the shard is *degraded* for [`DEGRADED_RETRY`]: new messages are
//! refused at once (451 4.3.0 / 452 4.3.1) instead of piling up behind a
//! disk that cannot write; the first batch after that interval is the probe.
//!
//! A failed batch also leaves the log with a pending *void* (see
//! `sluice_storage::log`, "Refused batches"): the refused records may be
//! on the disk, and only a durable void keeps them from being delivered
//! after a restart. The log puts the voids in front of the next batch, so
//! nothing is acknowledged before they are durable. While voids are
//! pending and no mail comes, the committer writes them on their own once
//! per [`DEGRADED_RETRY`] (the probe), for as long as they keep failing,
//! and once more when it is closed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use glommio::io::{BufferedFile, OpenOptions};
use sluice_storage::log::{remove_segments, Batch, PreparedWrite, ShardLog};
use sluice_storage::record::Record;

/// How long a shard refuses new mail after its log failed to write.
pub const DEGRADED_RETRY: Duration = Duration::from_secs(1);

/// Why a record could not be made durable; each maps to Postfix's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// The disk is full: `452 4.3.1 Insufficient system storage`.
    NoSpace,
    /// Any other write or fsync failure: `451 4.3.0 Error: queue file write error`.
    Io,
}

/// A record's place in the commit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

struct State {
    /// Records waiting for the next batch.
    pending: Batch,
    /// Ticket of the first record in `pending`.
    pending_first: u64,
    next_ticket: u64,
    /// Every ticket below this has been decided (durable or failed).
    decided_below: u64,
    /// Recent failed ticket ranges `[start, end)` with their error; waiters
    /// wake promptly, so a short history is enough (bounded below).
    failures: VecDeque<(u64, u64, CommitError)>,
    degraded_until: Option<(Instant, CommitError)>,
    waiters: Vec<Waker>,
    committer: Option<Waker>,
    closed: bool,
}

/// Bound on the failure history: far more than the waiters that can be
/// woken between two batches.
const FAILURE_HISTORY: usize = 64;

/// The shard's group-commit queue in front of its [`ShardLog`].
pub struct Committer {
    state: RefCell<State>,
    log: Rc<RefCell<ShardLog>>,
    shard_dir: PathBuf,
    preallocate: Cell<bool>,
    batches: Cell<u64>,
    records: Cell<u64>,
    /// Test seam: fail this many fdatasyncs (after the bytes are written
    /// and really synced: the worst case, every refused record on disk).
    #[cfg(test)]
    fail_syncs: Cell<u32>,
    /// The fault suite's seam (`SLUICE_FAULT_PLAN`), never in a release build.
    #[cfg(feature = "fault-injection")]
    faults: RefCell<crate::fault::SyncLedger>,
}

impl Committer {
    pub fn new(log: Rc<RefCell<ShardLog>>) -> Rc<Committer> {
        let shard_dir = log.borrow().shard_dir().to_path_buf();
        Rc::new(Committer {
            state: RefCell::new(State {
                pending: Batch::new(),
                pending_first: 0,
                next_ticket: 0,
                decided_below: 0,
                failures: VecDeque::new(),
                degraded_until: None,
                waiters: Vec::new(),
                committer: None,
                closed: false,
            }),
            log,
            shard_dir,
            preallocate: Cell::new(true),
            batches: Cell::new(0),
            records: Cell::new(0),
            #[cfg(test)]
            fail_syncs: Cell::new(0),
            #[cfg(feature = "fault-injection")]
            faults: RefCell::default(),
        })
    }

    /// Queue a record for the next batch. Fails at once while the shard is
    /// degraded or shutting down.
    pub fn submit(&self, record: &Record) -> Result<Ticket, CommitError> {
        let mut st = self.state.borrow_mut();
        if st.closed {
            return Err(CommitError::Io);
        }
        if let Some((until, err)) = st.degraded_until {
            if Instant::now() < until {
                return Err(err);
            }
            st.degraded_until = None;
        }
        st.pending.push(record);
        let t = st.next_ticket;
        st.next_ticket += 1;
        if let Some(w) = st.committer.take() {
            w.wake();
        }
        Ok(Ticket(t))
    }

    /// Wait until the batch holding `ticket` is durable (or failed).
    pub async fn wait(&self, ticket: Ticket) -> Result<(), CommitError> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if ticket.0 < st.decided_below {
                let failed = st
                    .failures
                    .iter()
                    .find(|(s, e, _)| (*s..*e).contains(&ticket.0))
                    .map(|f| f.2);
                return Poll::Ready(failed.map_or(Ok(()), Err));
            }
            st.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Submit and wait: the record is durable when this returns `Ok`.
    pub async fn commit(&self, record: &Record) -> Result<(), CommitError> {
        let t = self.submit(record)?;
        self.wait(t).await
    }

    /// Submit several records and wait until all are durable. They are
    /// submitted without yielding, so they share one batch: its outcome
    /// is theirs.
    pub async fn commit_all(&self, records: &[Record]) -> Result<(), CommitError> {
        let mut last = None;
        for r in records {
            last = Some(self.submit(r)?);
        }
        match last {
            Some(t) => self.wait(t).await,
            None => Ok(()),
        }
    }

    /// Whether new mail is being refused because the log cannot write.
    pub fn degraded(&self) -> Option<CommitError> {
        let st = self.state.borrow();
        match st.degraded_until {
            Some((until, err)) if Instant::now() < until => Some(err),
            _ => None,
        }
    }

    /// (batches, records) written so far: the group-commit ratio.
    pub fn counters(&self) -> (u64, u64) {
        (self.batches.get(), self.records.get())
    }

    /// Stop taking records; the committer task drains what is pending and
    /// returns.
    pub fn close(&self) {
        let mut st = self.state.borrow_mut();
        st.closed = true;
        if let Some(w) = st.committer.take() {
            w.wake();
        }
    }

    /// The committer task: runs until [`Committer::close`] and the pending
    /// records are written.
    pub async fn run(self: Rc<Self>) {
        let mut file: Option<(PathBuf, BufferedFile)> = None;
        let mut last_try = false;
        loop {
            let taken = if self.log.borrow().voids_pending() > 0 {
                if last_try {
                    self.give_up_voids();
                    break;
                }
                last_try = self.retry_voids_after().await;
                Some(self.take_pending())
            } else {
                self.next_batch().await
            };
            let Some((batch, first, end)) = taken else {
                break;
            };
            let n = batch.len() as u64;
            let outcome = self.write_batch(batch, &mut file).await;
            self.batches.set(self.batches.get() + 1);
            self.records.set(self.records.get() + n);
            let mut st = self.state.borrow_mut();
            if let Err(err) = outcome {
                st.failures.push_back((first, end, err));
                while st.failures.len() > FAILURE_HISTORY {
                    st.failures.pop_front();
                }
                st.degraded_until = Some((Instant::now() + DEGRADED_RETRY, err));
            }
            st.decided_below = end;
            for w in st.waiters.drain(..) {
                w.wake();
            }
        }
        if let Some((_, f)) = file.take() {
            let _ = f.close().await;
        }
    }

    /// Waits for records, or for the close.
    async fn next_batch(&self) -> Option<(Batch, u64, u64)> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if !st.pending.is_empty() {
                drop(st);
                return Poll::Ready(Some(self.take_pending()));
            }
            if st.closed {
                return Poll::Ready(None);
            }
            st.committer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The records waiting (maybe none), with their ticket range.
    fn take_pending(&self) -> (Batch, u64, u64) {
        let mut st = self.state.borrow_mut();
        let batch = std::mem::replace(&mut st.pending, Batch::new());
        let first = st.pending_first;
        st.pending_first = st.next_ticket;
        (batch, first, st.next_ticket)
    }

    /// Voids are pending: wait out the degraded interval (new mail is
    /// refused meanwhile), then the next write carries them, with
    /// whatever records came in since. Returns true when the committer is
    /// closing: that write is the last try.
    async fn retry_voids_after(&self) -> bool {
        let (closed, until) = {
            let st = self.state.borrow();
            (st.closed, st.degraded_until.map(|(t, _)| t))
        };
        if closed {
            return true;
        }
        if let Some(wait) = until.and_then(|t| t.checked_duration_since(Instant::now())) {
            glommio::timer::sleep(wait).await;
        }
        false
    }

    /// Closing with voids that never reached the disk: say what that
    /// means, and fail whatever was still waiting.
    fn give_up_voids(&self) {
        tracing::error!(
            target: "cleanup",
            "fatal: queue log {}: cannot record that {} failed batch(es) were refused; \
             their mail may be delivered after a restart (check the disk, then the queue)",
            self.shard_dir.display(),
            self.log.borrow().voids_pending()
        );
        let mut st = self.state.borrow_mut();
        let (first, end) = (st.pending_first, st.next_ticket);
        st.failures.push_back((first, end, CommitError::Io));
        st.pending = Batch::new();
        st.pending_first = end;
        st.decided_below = end;
        for w in st.waiters.drain(..) {
            w.wake();
        }
    }

    async fn write_batch(
        &self,
        batch: Batch,
        file: &mut Option<(PathBuf, BufferedFile)>,
    ) -> Result<(), CommitError> {
        #[cfg(feature = "fault-injection")]
        self.faults.borrow_mut().begin_batch(batch.has_message());
        let mut prepared = self.log.borrow_mut().prepare(batch);
        let bytes = std::mem::take(&mut prepared.bytes);
        let io = self.write_prepared(&prepared, bytes, file).await;
        let failed = io.as_ref().err().map(classify);
        if io.is_err() {
            // The tail's state is unknown: never append to that file again.
            *file = None;
        }
        let completed = self.log.borrow_mut().complete(prepared, io);
        match completed {
            Ok(done) => {
                // Oldest first, each deletion made durable before the next
                // (storage's rule: a crash must not keep a newer deletion
                // and lose an older one).
                if let Err(e) = remove_segments(&done.dead_segments) {
                    tracing::warn!(target: "qmgr", "warning: {e}");
                }
            }
            Err(e) => {
                tracing::error!(target: "cleanup", "warning: queue log: {e}");
                return Err(failed.unwrap_or(CommitError::Io));
            }
        }
        match failed {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    async fn write_prepared(
        &self,
        w: &PreparedWrite,
        bytes: Vec<u8>,
        file: &mut Option<(PathBuf, BufferedFile)>,
    ) -> std::io::Result<()> {
        let reuse = matches!(file, Some((p, _)) if *p == w.path);
        if !reuse {
            if let Some((_, old)) = file.take() {
                let _ = old.close().await;
            }
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(w.create)
                // Queue files are the mail owner's alone.
                .mode(0o600)
                .buffered_open(&w.path)
                .await
                .map_err(os_error)?;
            if w.create {
                if self.preallocate.get() && w.preallocate > 0 {
                    zero_fill(&f, &self.shard_dir, w.preallocate).await?;
                }
                // The new file's directory entry must be durable too.
                sync_dir(&self.shard_dir)?;
            }
            *file = Some((w.path.clone(), f));
        }
        let Some((_, f)) = file.as_ref() else {
            return Err(std::io::Error::other("segment file not open"));
        };
        #[cfg(feature = "fault-injection")]
        self.faults
            .borrow_mut()
            .before_write(&self.shard_dir, &w.path, w.offset)?;
        write_all_at(f, &self.shard_dir, bytes, w.offset).await?;
        #[cfg(feature = "fault-injection")]
        self.faults.borrow().before_sync();
        f.fdatasync().await.map_err(os_error)?;
        #[cfg(feature = "fault-injection")]
        self.faults
            .borrow_mut()
            .after_sync(&self.shard_dir, &w.path, w.end())?;
        #[cfg(test)]
        if self.fail_syncs.get() > 0 {
            self.fail_syncs.set(self.fail_syncs.get() - 1);
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
}

/// Write zeros over a new segment's whole length. Appends into blocks that
/// are already written need no metadata change, so each later fdatasync
/// flushes data only instead of forcing a journal commit (fallocate leaves
/// "unwritten" extents whose conversion is a metadata change, and plain
/// appends change the file size). Zeros past the written end are what the
/// log reader takes for "end of log".
async fn zero_fill(f: &BufferedFile, dir: &Path, len: u64) -> std::io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at);
        write_all_at(f, dir, vec![0u8; n as usize], at).await?;
        at += n;
    }
    f.fdatasync().await.map_err(os_error)
}

/// One `write_at` of the whole buffer (glommio takes it, so there is no
/// copy kept for a retry). A short write means the file system could not
/// take it all — almost always a full disk: it is reported as ENOSPC when
/// the free space says so (452 4.3.1), else as a short write (451 4.3.0).
/// Either way the tail is abandoned and the batch is not acknowledged.
async fn write_all_at(
    f: &BufferedFile,
    dir: &Path,
    bytes: Vec<u8>,
    pos: u64,
) -> std::io::Result<()> {
    let len = bytes.len();
    let written = f.write_at(bytes, pos).await.map_err(os_error)?;
    if written >= len {
        return Ok(());
    }
    let missing = (len - written) as u64;
    if free_bytes(dir).is_some_and(|free| free < missing) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::WriteZero,
        format!("short write: {written} of {len} bytes"),
    ))
}

/// Bytes an unprivileged writer may still use on `dir`'s file system.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills a struct we own from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// glommio's error with the OS error kept (its `io::Error` conversion turns
/// "enhanced" errors into text and loses the errno we classify by).
fn os_error(e: glommio::GlommioError<()>) -> std::io::Error {
    match e {
        glommio::GlommioError::IoError(e) => e,
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        other => other.into(),
    }
}

fn classify(e: &std::io::Error) -> CommitError {
    if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
    {
        CommitError::NoSpace
    } else {
        CommitError::Io
    }
}

/// fsync a directory so that a file created in it survives a crash.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
