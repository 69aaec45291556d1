//! Message content in the session: DATA (the dot-terminated stream, with
//! smuggling-safe end-of-data scanning) and BDAT chunks (RFC 3030), each
//! counted against the shard's content budget as it arrives, and the
//! hand-off of a finished transaction as a [`Message`].

use super::*;

impl Session {
    pub(super) fn data_step(&mut self, input: &[u8], pos: usize) -> Step {
        let Input::Data(scanner) = &mut self.input else {
            return Step::Continue(pos);
        };
        // Invariant: DATA is accepted only inside a transaction; should it
        // ever be missing, the content goes nowhere.
        let mut nowhere = Vec::new();
        let content: &mut dyn ContentSink = match self.txn.as_mut() {
            Some(txn) => &mut txn.content,
            None => &mut nowhere,
        };
        let (n, scan) = scanner.feed(&input[pos..], content);
        let pos = pos + n;
        if scan == Scan::More {
            return Step::Stop(pos, Want::More);
        }
        let refusal = scanner.refusal();
        self.input = Input::Command;
        self.last_command = "END-OF-MESSAGE";
        if let Some(refusal) = refusal {
            self.out.extend_from_slice(match refusal {
                Refusal::BareLf => BARE_LF,
                Refusal::BareCr => BARE_CR,
                Refusal::TooBig => MESSAGE_TOO_BIG,
                Refusal::NoMemory => NO_MEMORY,
            });
            self.txn = None;
            self.stats.record(Verb::Data, false);
            self.count_error();
            return self.after_command(pos);
        }
        match self.txn.take() {
            Some(txn) => {
                self.message = Some(self.finish(txn));
                self.awaiting = Some(Awaiting::Data);
                Step::Stop(pos, Want::Message)
            }
            None => self.after_command(pos),
        }
    }

    pub(super) fn bdat_step(&mut self, input: &[u8], pos: usize) -> Step {
        let Input::Bdat(chunk) = &mut self.input else {
            return Step::Continue(pos);
        };
        let available = (input.len() - pos) as u64;
        let take = chunk.remaining.min(available) as usize;
        if chunk.fate == ChunkFate::Store {
            if let Some(txn) = self.txn.as_mut() {
                // Room for the whole chunk was reserved at the BDAT command.
                let stored = txn.content.append(&input[pos..pos + take]);
                debug_assert!(stored, "BDAT chunk bytes beyond the reserved room");
            }
        }
        chunk.remaining -= take as u64;
        let pos = pos + take;
        if chunk.remaining > 0 {
            return Step::Stop(pos, Want::More);
        }
        let chunk = *chunk;
        self.input = Input::Command;
        self.end_of_chunk(chunk, pos)
    }

    pub(super) fn end_of_chunk(&mut self, chunk: Chunk, pos: usize) -> Step {
        let refusal = match chunk.fate {
            ChunkFate::NeedRcpt => NEED_RCPT,
            ChunkFate::NoValidRecipients => NO_VALID_RECIPIENTS,
            ChunkFate::TooBig => {
                self.txn = None;
                MESSAGE_TOO_BIG
            }
            ChunkFate::NoMemory => {
                self.txn = None;
                NO_MEMORY
            }
            ChunkFate::Store => {
                let Some(txn) = self.txn.as_mut() else {
                    return self.after_command(pos);
                };
                txn.bdat = true;
                if chunk.last {
                    let total = txn.content.len() as u64;
                    self.last_command = "END-OF-MESSAGE";
                    if let Some(txn) = self.txn.take() {
                        self.message = Some(self.finish(txn));
                        self.awaiting = Some(Awaiting::Bdat { total });
                    }
                    return Step::Stop(pos, Want::Message);
                }
                let _ = write!(
                    Writer(&mut self.out),
                    "250 2.0.0 Ok: {} bytes\r\n",
                    chunk.size
                );
                self.stats.record(Verb::Bdat, true);
                return self.after_command(pos);
            }
        };
        self.out.extend_from_slice(refusal);
        self.stats.record(Verb::Bdat, false);
        self.count_error();
        self.after_command(pos)
    }

    pub(super) fn finish(&mut self, txn: Transaction) -> Message {
        let (content, hold) = txn.content.into_parts();
        self.held = Some(hold);
        Message {
            envelope: txn.envelope,
            content,
            helo: self.helo.clone(),
            protocol: self.protocol(),
        }
    }

    pub(super) fn data_cmd(&mut self, args: &[Token]) -> Outcome {
        let Some(txn) = self.txn.as_mut() else {
            return self.fail(NEED_RCPT);
        };
        if txn.envelope.recipients.is_empty() {
            return self.fail(NO_VALID_RECIPIENTS);
        }
        if !args.is_empty() {
            return self.fail(DATA_SYNTAX);
        }
        if txn.bdat {
            return self.fail(BDAT_IN_PROGRESS);
        }
        let hint = txn.envelope.mail.size.unwrap_or(0).min(CONTENT_RESERVE_MAX);
        // Only a hint: without room now, the content is reserved as it comes.
        let _ = txn.content.try_reserve(hint as usize);
        self.out.extend_from_slice(DATA_GO_AHEAD);
        self.input = Input::Data(DataScanner::new(
            self.cfg.bare_newline,
            self.cfg.message_size_limit,
        ));
        Outcome::Deferred
    }

    pub(super) fn bdat_cmd(&mut self, line: &[u8], args: &[Token]) -> Outcome {
        let (size, last) = match args {
            [size] => (chunk_size(size.text(line)), false),
            [size, last] if last.text(line).eq_ignore_ascii_case(b"LAST") => {
                (chunk_size(size.text(line)), true)
            }
            _ => (None, false),
        };
        let Some(size) = size else {
            // The chunk size is unknown, so the chunk cannot be skipped;
            // Postfix replies and reads on, as do we.
            return self.fail(BDAT_SYNTAX);
        };
        let limit = self.cfg.message_size_limit;
        let fate = match self.txn.as_mut() {
            None => ChunkFate::NeedRcpt,
            Some(txn) if txn.envelope.recipients.is_empty() => ChunkFate::NoValidRecipients,
            Some(txn) if limit > 0 && (txn.content.len() as u64).saturating_add(size) > limit => {
                ChunkFate::TooBig
            }
            // The chunk's size is declared: reserve its room before reading
            // it (a size beyond the address space cannot be reserved).
            Some(txn) => match usize::try_from(size) {
                Ok(size) if txn.content.try_reserve(size) => ChunkFate::Store,
                _ => ChunkFate::NoMemory,
            },
        };
        self.input = Input::Bdat(Chunk {
            size,
            remaining: size,
            last,
            fate,
        });
        Outcome::Deferred
    }
}

/// A BDAT chunk size: decimal digits, at most Postfix's `off_t` range.
pub(super) fn chunk_size(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    u64::try_from(size).ok()
}
