//! smtpd's input buffer for one connection: small while the client is
//! idle or chatting, large while it streams content.
//!
//! **Role.** Holds the bytes read from the socket until the sans-IO session
//! has consumed them. Reads land in a read buffer of [`READ_MIN`] (4 KiB);
//! a read that fills it switches the session to a [`READ_MAX`] (64 KiB)
//! buffer from the shard's pool, and a short read gives that one back. The
//! session consumes every byte of DATA and BDAT content and every complete
//! command line, so what is carried from one read to the next is an
//! unfinished command line (at most `line_length_limit` + 2 bytes) or the
//! pipelined commands behind a message being stored; the carry's memory
//! is freed when it empties.
//!
//! **Bound per session**, besides the message content (which is reserved
//! on the shard's `sluice_inflight_memory_limit` budget): 4 KiB while idle,
//! at most 64 KiB of read buffer plus the carry while a client streams.
//!
//! **Trust.** The bytes are the client's; nothing here looks at them.

use std::rc::Rc;

use futures_lite::{AsyncRead, AsyncReadExt};

use crate::shard::Shard;

/// The read buffer of a session that is idle or sends commands.
pub const READ_MIN: usize = 4 * 1024;
/// The read buffer of a session that streams content: takes a 4 KiB
/// message and its pipelined commands in one read, 100 KiB in two.
pub const READ_MAX: usize = 64 * 1024;

/// How one read ended.
pub enum ReadOutcome {
    Data,
    Eof,
    Timeout,
    Shutdown,
    Error(std::io::Error),
}

/// One connection's unconsumed input.
pub struct Input {
    shard: Rc<Shard>,
    /// The read buffer: `READ_MIN` bytes, or a pooled `READ_MAX` one.
    rbuf: Vec<u8>,
    /// Bytes of `rbuf` read and not yet consumed (only while `carry` is empty).
    filled: usize,
    /// Unconsumed bytes kept across reads.
    carry: Vec<u8>,
    /// Bytes the last read returned (sizes the next one).
    last_read: usize,
}

impl Input {
    pub fn new(shard: Rc<Shard>) -> Input {
        Input {
            shard,
            rbuf: vec![0; READ_MIN],
            filled: 0,
            carry: Vec::new(),
            last_read: 0,
        }
    }

    /// Bytes that arrived before the greeting (peeked, then consumed here).
    pub fn push_early(&mut self, bytes: &[u8]) {
        self.carry.extend_from_slice(bytes);
    }

    pub fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }

    /// The bytes waiting for the session.
    pub fn pending(&self) -> &[u8] {
        if self.carry.is_empty() {
            &self.rbuf[..self.filled]
        } else {
            &self.carry
        }
    }

    /// The session used the first `n` pending bytes; the rest is kept.
    pub fn consume(&mut self, n: usize) {
        if self.carry.is_empty() {
            let rest = &self.rbuf[n.min(self.filled)..self.filled];
            self.carry.extend_from_slice(rest);
            self.filled = 0;
        } else {
            self.carry.drain(..n.min(self.carry.len()));
        }
        if self.carry.is_empty() && self.carry.capacity() > 0 {
            self.carry = Vec::new();
        }
    }

    /// One read; the socket's own timeout (smtpd_timeout, set at accept)
    /// ends a silent client's wait. Call only after [`Input::consume`].
    pub async fn read(&mut self, stream: &mut (impl AsyncRead + Unpin)) -> ReadOutcome {
        debug_assert_eq!(self.filled, 0, "read before consume");
        self.resize();
        let outcome = match stream.read(&mut self.rbuf).await {
            // At the drain deadline the shard shuts our read side: say 421.
            Ok(0) if self.shard.shutdown.is_forced() => return ReadOutcome::Shutdown,
            Ok(0) => return ReadOutcome::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return ReadOutcome::Timeout,
            Err(e) => return ReadOutcome::Error(e),
        };
        let n = outcome;
        self.last_read = n;
        if self.carry.is_empty() {
            self.filled = n;
        } else {
            self.carry.extend_from_slice(&self.rbuf[..n]);
        }
        ReadOutcome::Data
    }

    /// A full small buffer means the client is streaming: take a large one
    /// for the next read. A short read in a large one means it stopped:
    /// give it back. Only called with nothing of `rbuf` unconsumed.
    fn resize(&mut self) {
        let n = self.last_read;
        if n == self.rbuf.len() && self.rbuf.len() < READ_MAX {
            self.rbuf = self.shard.take_read_buffer(READ_MAX);
        } else if n < READ_MIN && self.rbuf.len() > READ_MIN {
            let big = std::mem::replace(&mut self.rbuf, vec![0; READ_MIN]);
            self.shard.return_read_buffer(big);
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if self.rbuf.len() == READ_MAX {
            self.shard
                .return_read_buffer(std::mem::take(&mut self.rbuf));
        }
    }
}
