//! The maildrop: how `sendmail` hands a message to the daemon, which may
//! not be running.
//!
//! **Role.** Postfix's `postdrop` writes `maildrop/<file>` and its `pickup`
//! daemon reads it. Here `sendmail` (and `sendmail -bs`) writes one file per
//! message with [`deposit`], and the daemon's pickup service finds them with
//! [`ready_files`], reads each with [`load`] (or [`decode`]), queues it, then
//! removes the file; a file that cannot be decoded goes to
//! `queue_directory/maildrop-bad/` through [`quarantine`], so that it is
//! neither retried forever nor silently lost.
//!
//! **The directory protocol.** A file becomes visible under its final name
//! only when complete: [`deposit`] writes `maildrop/.tmp.<pid>.<nanos>`,
//! fsyncs it, renames it to `<secs>.<usec>.<pid>.<seq>` and fsyncs the
//! directory. Names that start with a dot are never picked up, and
//! [`remove_stale_temps`] deletes those a crashed writer left behind. The
//! final name is unique by construction (the process ID is unique among live
//! processes, and `seq` counts deposits within one process), and sorts by
//! submission time, which is how [`ready_files`] orders its answer.
//!
//! **What a file holds.** Recipients are final: `sendmail -t` reads them
//! from the message headers itself before depositing (Postfix leaves that to
//! cleanup), so pickup has nothing to extract. `Bcc:` is still in the
//! content; cleanup removes it. The content has CRLF line endings, as
//! smtpd's messages do.
//!
//! **Trust.** A maildrop file is written by a local user and is untrusted:
//! [`decode`] checks the framing and a CRC32C, never panics, and allocates
//! no more than the bytes it was given. Its `uid` is what the writer
//! *claims*. When the directory is group-writable (`0730`, Postfix's
//! `postdrop` layout), any member of the group can claim any uid, so pickup
//! should believe the claim only when the file's owner is root or
//! mail_owner, and otherwise use the owner ([`Loaded::file_uid`]), as
//! Postfix's pickup does.
//!
//! **Permissions** ([`ensure_dir`]). Run as root, `maildrop/` is created
//! `1730` owned by mail_owner (or by the queue directory's owner, when that
//! is not root) and the `setgid_group` group (postdrop) if it exists, else
//! that owner's primary group: group-writable, not listable, not
//! world-writable, sticky (POSTFIX-FACTS §15). Ordinary users reach it only
//! through the setgid `postdrop` program. Run as another user, it is
//! created `0700` owned by that user (a private instance). An existing
//! directory is left as it is. Files are `0444`, as Postfix's postdrop
//! makes them: the daemon, running as the directory's owner, must read
//! files written by other users, and the directory's mode keeps everyone
//! else from reaching them (they cannot search it).
//!
//! **Envelope text.** No envelope field (sender, recipients, ORCPT, ENVID,
//! full name) may hold a NUL, CR or LF: [`check_envelope`] refuses them,
//! [`decode`] treats them as malformed, and postdrop rejects them (the
//! record-injection fix Postfix made in 2026).
//!
//! # File format
//!
//! A 20-byte header, then the payload. Integers are little-endian.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 4 | magic `A7 53 4C 64` (`\xA7SLd`) |
//! | 4  | 1 | format version, [`FORMAT_VERSION`] |
//! | 5  | 3 | reserved, zero |
//! | 8  | 8 | payload length; the file ends exactly after the payload |
//! | 16 | 4 | CRC32C of bytes 0..16 followed by the payload |
//!
//! Payload (strings and byte strings are a u64 length then the bytes;
//! optional values a 0/1 tag then the value): uid (u32); optional full
//! name; submission time in µs since the epoch (u64); sender; recipient
//! count (u32), each with address, NOTIFY bits (u8) and optional ORCPT;
//! optional SIZE (u64); BODY (u8: 0 none, 1 7BIT, 2 8BITMIME, 3
//! BINARYMIME); SMTPUTF8 (u8); RET (u8: 0 none, 1 FULL, 2 HDRS); optional
//! ENVID; the content, last. The fields from sender to ENVID are the
//! envelope exactly as a queue log `Message` record stores it, and are
//! written and read by the same code ([`crate::record`]).

mod dir;
#[cfg(test)]
mod tests;

use sluice_protocols::envelope::Envelope;

use crate::record;
use crate::wire::{self, Field, Reader};

pub use dir::{
    deposit, ensure_dir, load, maildrop_dir, quarantine, quarantine_dir, ready_files,
    remove_stale_temps, LoadError, Loaded, MAILDROP_DIR, QUARANTINE_DIR,
};

/// First bytes of every maildrop file.
pub const MAGIC: [u8; 4] = [0xA7, b'S', b'L', b'd'];
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 20;
/// Bytes covered by the CRC before the payload (magic to length).
const CRC_AT: usize = 16;

/// One message as `sendmail` submits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildropMessage {
    /// The submitting user's real uid, as the writer claims it (see the
    /// module docs on trust); pickup's `Received: … from userid N`.
    pub uid: u32,
    /// `sendmail -F`, `$NAME` or the GECOS name: for a `From:` header that
    /// cleanup has to add.
    pub fullname: Option<String>,
    /// When `sendmail` was run, µs since the Unix epoch.
    pub submitted_us: u64,
    /// Final recipients (command line and, with `-t`, headers).
    pub envelope: Envelope,
    /// The message, CRLF line endings.
    pub content: Vec<u8>,
}

/// Why bytes are not a maildrop file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaildropError {
    /// Shorter than its header says: a torn write (which [`deposit`] never
    /// leaves under a final name) or a damaged length.
    #[error("maildrop file truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: u64, available: u64 },
    #[error("not a maildrop file (bad magic)")]
    BadMagic,
    #[error("maildrop file format version {0} is not supported (expected {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    #[error("malformed maildrop file header (reserved bytes)")]
    BadHeader,
    /// Bytes after the payload the header announced.
    #[error("maildrop file has {0} bytes after its payload")]
    TrailingBytes(u64),
    #[error("maildrop file checksum mismatch")]
    Checksum,
    /// The checksum matched but a field is out of range.
    #[error("malformed maildrop file ({0})")]
    Malformed(&'static str),
}

/// Refuses NUL, CR and LF in the envelope's text fields: they would let
/// a local submitter forge records or header lines downstream.
pub fn check_envelope(m: &MaildropMessage) -> Result<(), MaildropError> {
    let bad = |s: &str| s.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n'));
    let env = &m.envelope;
    if bad(&env.sender) {
        return Err(MaildropError::Malformed("NUL or line break in the sender"));
    }
    for r in &env.recipients {
        if bad(&r.address) || r.orcpt.as_deref().is_some_and(bad) {
            return Err(MaildropError::Malformed("NUL or line break in a recipient"));
        }
    }
    if env.mail.envid.as_deref().is_some_and(bad) {
        return Err(MaildropError::Malformed("NUL or line break in ENVID"));
    }
    if m.fullname.as_deref().is_some_and(bad) {
        return Err(MaildropError::Malformed(
            "NUL or line break in the full name",
        ));
    }
    Ok(())
}

/// The file image of `m`. Never panics.
pub fn encode(m: &MaildropMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 256 + m.content.len());
    out.resize(HEADER_LEN, 0);
    encode_payload(m, &mut out);
    let payload_len = (out.len() - HEADER_LEN) as u64;
    out[0..4].copy_from_slice(&MAGIC);
    out[4] = FORMAT_VERSION;
    out[8..16].copy_from_slice(&payload_len.to_le_bytes());
    let crc = checksum(&out[..CRC_AT], &out[HEADER_LEN..]);
    out[CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a file image made by [`encode`]. Never panics; allocates at most
/// a copy of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<MaildropMessage, MaildropError> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(MaildropError::Truncated {
            needed: HEADER_LEN as u64,
            available: bytes.len() as u64,
        });
    };
    if header[0..4] != MAGIC {
        return Err(MaildropError::BadMagic);
    }
    if header[4] != FORMAT_VERSION {
        return Err(MaildropError::UnsupportedVersion(header[4]));
    }
    if header[5..8] != [0, 0, 0] {
        return Err(MaildropError::BadHeader);
    }
    let payload_len = le_u64(&header[8..16]);
    let available = (bytes.len() - HEADER_LEN) as u64;
    if payload_len > available {
        return Err(MaildropError::Truncated {
            needed: (HEADER_LEN as u64).saturating_add(payload_len),
            available: bytes.len() as u64,
        });
    }
    if payload_len < available {
        return Err(MaildropError::TrailingBytes(available - payload_len));
    }
    let payload = &bytes[HEADER_LEN..];
    if checksum(&header[..CRC_AT], payload) != le_u32(&header[CRC_AT..HEADER_LEN]) {
        return Err(MaildropError::Checksum);
    }
    let message = decode_payload(payload).map_err(MaildropError::Malformed)?;
    check_envelope(&message)?;
    Ok(message)
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header), payload)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn encode_payload(m: &MaildropMessage, out: &mut Vec<u8>) {
    wire::put_u32(out, m.uid);
    wire::put_opt_str(out, m.fullname.as_deref());
    wire::put_u64(out, m.submitted_us);
    record::encode_envelope(&m.envelope, out);
    wire::put_bytes(out, &m.content);
}

fn decode_payload(payload: &[u8]) -> Result<MaildropMessage, Field> {
    let mut r = Reader::new(payload);
    let uid = r.u32("uid")?;
    let fullname = r.opt_str("full name")?;
    let submitted_us = r.u64("submission time")?;
    let envelope = record::decode_envelope(&mut r)?;
    let content = r.bytes("content")?.to_vec();
    if !r.is_empty() {
        return Err("trailing bytes");
    }
    Ok(MaildropMessage {
        uid,
        fullname,
        submitted_us,
        envelope,
        content,
    })
}
