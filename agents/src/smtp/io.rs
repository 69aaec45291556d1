//! Reading replies from and writing commands to the stream, each under a
//! time limit, with one fixed-size read buffer.

use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use sluice_protocols::smtp::client::reply::{ReplyError, ReplyParser, ServerReply};

use super::stream::Stream;
use crate::runtime::{with_timeout, Clock};

/// Bytes read from the socket at a time. Unconsumed bytes (the start of a
/// pipelined reply) stay here until parsed, so this is the whole buffer.
const READ_CHUNK: usize = 4096;

/// How an I/O step failed; the caller adds the peer and stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fail {
    Timeout,
    /// End of file, or a read or write error.
    Lost,
    TooLong {
        limit: usize,
    },
}

pub(super) struct Io<S> {
    pub(super) stream: Stream<S>,
    buf: Box<[u8]>,
    /// `buf[start..end]` has been read but not parsed.
    start: usize,
    end: usize,
    parser: ReplyParser,
    line_limit: usize,
    reply_limit: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub(super) fn new(stream: S, line_limit: usize, reply_limit: usize) -> Self {
        Io {
            stream: Stream::Plain(stream),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            parser: ReplyParser::new(line_limit, reply_limit),
            line_limit,
            reply_limit,
        }
    }

    /// Drops whatever the server sent that no command asked for (bytes
    /// pipelined after its 220 to STARTTLS: they must never be read as TLS
    /// or as replies, RFC 3207 §4.2 and CVE-2011-0411). Returns how many
    /// bytes were dropped.
    pub(super) fn discard_unread(&mut self) -> usize {
        let n = self.end - self.start + usize::from(self.parser.in_reply());
        self.start = 0;
        self.end = 0;
        self.parser = ReplyParser::new(self.line_limit, self.reply_limit);
        n
    }

    /// Whether the server sent bytes that no command has asked for yet.
    pub(super) fn has_unread(&self) -> bool {
        self.start < self.end || self.parser.in_reply()
    }

    /// Reads one reply, within `limit` for the whole reply.
    pub(super) async fn read_reply<C: Clock>(
        &mut self,
        clock: &C,
        limit: Duration,
    ) -> Result<ServerReply, Fail> {
        with_timeout(clock, limit, self.read_reply_untimed())
            .await
            .unwrap_or(Err(Fail::Timeout))
    }

    async fn read_reply_untimed(&mut self) -> Result<ServerReply, Fail> {
        loop {
            if self.start < self.end {
                let parsed = self
                    .parser
                    .feed(&self.buf[self.start..self.end])
                    .map_err(|ReplyError::TooLong { limit }| Fail::TooLong { limit })?;
                self.start += parsed.consumed;
                if let Some(reply) = parsed.reply {
                    return Ok(reply);
                }
            }
            self.start = 0;
            self.end = 0;
            match self.stream.read(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(Fail::Lost),
                Ok(n) => self.end = n,
            }
        }
    }

    /// Writes and flushes `bytes`, within `limit`.
    pub(super) async fn write<C: Clock>(
        &mut self,
        clock: &C,
        limit: Duration,
        bytes: &[u8],
    ) -> Result<(), Fail> {
        let stream = &mut self.stream;
        let io = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match with_timeout(clock, limit, io).await {
            None => Err(Fail::Timeout),
            Some(Err(_)) => Err(Fail::Lost),
            Some(Ok(())) => Ok(()),
        }
    }

    /// Closes the stream (for TCP: sends FIN), within `limit`; errors are
    /// of no interest at this point.
    pub(super) async fn close<C: Clock>(&mut self, clock: &C, limit: Duration) {
        let _ = with_timeout(clock, limit, self.stream.close()).await;
    }
}
