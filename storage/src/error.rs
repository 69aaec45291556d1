//! The crate's error type.
//!
//! Every error that involves a file names it. A full disk is told apart
//! from other I/O errors ([`StorageError::is_no_space`]) because smtpd
//! answers `452 4.3.1 Insufficient system storage` then, and
//! `451 4.3.0 Error: queue file write error` otherwise.

use std::io;
use std::path::PathBuf;

use crate::qid::QueueId;
use crate::record::DecodeError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A system call on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not a queue ID: IDs are 1 to 17 ASCII letters and digits.
    #[error("invalid queue ID {0:?}: expected 1 to 17 letters and digits")]
    InvalidQueueId(String),
    /// The segment header is missing, damaged, or belongs to another shard
    /// or sequence number. The file is left alone; move it away to silence
    /// this error.
    #[error("{}: not a usable queue segment: {reason}", path.display())]
    BadSegment { path: PathBuf, reason: String },
    /// A record failed its checks when read back.
    #[error("{}: damaged record at offset {offset}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        #[source]
        source: DecodeError,
    },
    /// No live message with this queue ID.
    #[error("{0}: no such message in the queue")]
    NotFound(QueueId),
    /// The message is in the `corrupt` state; its record cannot be read.
    #[error("{0}: message is in the corrupt queue")]
    MessageCorrupt(QueueId),
    /// `complete` was called with a write this log did not prepare, or
    /// twice for the same write.
    #[error("completion does not match the write in flight")]
    NotInFlight,
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the disk (or the mail owner's quota) is full: smtpd
    /// answers `452 4.3.1 Insufficient system storage` rather than
    /// `451 4.3.0`.
    pub fn is_no_space(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
                    || source.kind() == io::ErrorKind::StorageFull
            }
            _ => false,
        }
    }
}
