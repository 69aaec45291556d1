//! The blocking std implementation of the write and read steps, for tools,
//! tests and benchmarks (the engine does the same on its executor).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Batch, Completed, PreparedWrite, ShardLog};
use crate::qid::QueueId;
use crate::record::MessageRecord;
use crate::StorageError;

impl ShardLog {
    /// Blocking convenience: prepare + std `write_at` + fdatasync +
    /// complete, then deletes the dead segments (the returned paths are
    /// already gone).
    ///
    /// # Panics
    ///
    /// As [`ShardLog::prepare`].
    pub fn append_blocking(&mut self, batch: Batch) -> Result<Completed, StorageError> {
        let w = self.prepare(batch);
        let result = self.write_blocking(&w);
        let completed = match self.complete(w, result) {
            Ok(c) => c,
            Err(e) => {
                // A tool usually exits on the error: try once to make the
                // refusal durable, so that a restart cannot bring the
                // batch back.
                if let Err(again) = self.flush_voids_blocking() {
                    tracing::error!("cannot void the refused batch either: {again}");
                }
                return Err(e);
            }
        };
        remove_segments(&completed.dead_segments)?;
        Ok(completed)
    }

    /// Writes the pending voids on their own (see [`ShardLog::voids_pending`]);
    /// nothing to do when there are none.
    pub fn flush_voids_blocking(&mut self) -> Result<(), StorageError> {
        if self.voids_pending() == 0 {
            return Ok(());
        }
        let w = self.prepare(Batch::new());
        let result = self.write_blocking(&w);
        let completed = self.complete(w, result)?;
        remove_segments(&completed.dead_segments)
    }

    /// Reads one message back (content and envelope) from its location,
    /// checking its CRCs.
    pub fn read_message(&self, qid: &QueueId) -> Result<MessageRecord, StorageError> {
        let plan = self.read_plan(qid)?;
        let err = |e| StorageError::io(&plan.path, e);
        let file = File::open(&plan.path).map_err(err)?;
        let len = usize::try_from(plan.len)
            .map_err(|_| err(io::Error::from(io::ErrorKind::InvalidData)))?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, plan.offset).map_err(err)?;
        plan.decode(&buf)
    }

    fn write_blocking(&mut self, w: &PreparedWrite) -> io::Result<()> {
        let Some(seq) = self.in_flight.as_ref().map(|f| f.seq) else {
            return Err(io::Error::other("no write in flight"));
        };
        if w.create {
            self.file = None;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                // Queue files are the mail owner's alone.
                .mode(0o600)
                .open(&w.path)?;
            if w.preallocate > 0 {
                preallocate(&file, w.preallocate)?;
            }
            // The new name must be durable before anything in the file is
            // acknowledged.
            sync_dir(&self.shard_dir)?;
            self.file = Some((seq, file));
        }
        let file = match &self.file {
            Some((s, f)) if *s == seq => f,
            _ => {
                let f = OpenOptions::new().read(true).write(true).open(&w.path)?;
                &self.file.insert((seq, f)).1
            }
        };
        file.write_all_at(&w.bytes, w.offset)?;
        file.sync_data()
    }
}

/// Deletes dead segments in order, syncing the directory after each so
/// that a crash cannot keep a newer one's deletion and lose an older
/// one's (see [`crate::index`]). Already-missing files are fine.
pub fn remove_segments(paths: &[PathBuf]) -> Result<(), StorageError> {
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StorageError::io(path, e)),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Allocates `len` bytes for real (so a full disk shows up here, not at
/// some later write); falls back to a sparse `set_len` where the file
/// system cannot allocate.
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    let off_len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: fallocate on a file descriptor we own, no pointers involved.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, off_len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return file.set_len(len);
    }
    Err(err)
}
