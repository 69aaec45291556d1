//! The SMTP client's reply parser (`smtp::client::reply::ReplyParser`):
//! what a hostile server's replies do to it.
//!
//! Input layout: the first byte picks the limits (`line_length_limit` 8,
//! 64 or 2048; whole reply 4 or 32 lines' worth) and the size of the reads
//! the wire is cut into (1 to 64 bytes); the rest is the wire.
//!
//! Checked: no panic; `consumed` never exceeds what was fed; a reply's
//! text stays within about twice `line_length_limit` however long the
//! reply; its code has three digits and its enhanced code, if any, is of
//! the code's class; and the replies (and the error, if any) are the same
//! whether the wire comes in one read or in many.

use sluice_protocols::smtp::client::reply::{ReplyError, ReplyParser, ServerReply};

/// Runs `wire` through a parser in reads of `step` bytes; stops at the
/// first error, as the client gives up the connection there.
pub fn replies(
    line_limit: usize,
    reply_limit: usize,
    wire: &[u8],
    step: usize,
) -> Vec<Result<ServerReply, ReplyError>> {
    let mut parser = ReplyParser::new(line_limit, reply_limit);
    let mut out = Vec::new();
    for chunk in wire.chunks(step.max(1)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match parser.feed(rest) {
                Ok(parsed) => {
                    assert!(parsed.consumed <= rest.len(), "consumed past the input");
                    assert!(
                        parsed.consumed > 0 || parsed.reply.is_some(),
                        "no progress on {} bytes",
                        rest.len()
                    );
                    rest = &rest[parsed.consumed..];
                    out.extend(parsed.reply.map(Ok));
                }
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let Some((&flags, wire)) = data.split_first() else {
        return;
    };
    let line_limit = [8, 64, 2048][usize::from(flags % 3)];
    let reply_limit = line_limit * if flags & 4 != 0 { 32 } else { 4 };
    let step = usize::from(flags >> 3) * 2 + 1;
    let whole = replies(line_limit, reply_limit, wire, wire.len());
    for reply in whole.iter().flatten() {
        assert!((0..=999).contains(&reply.code), "code {}", reply.code);
        // Kept text: lines while under the limit, each at most the limit,
        // shown with one `?` per invalid UTF-8 sequence.
        assert!(
            reply.text.len() <= 2 * line_limit + 1,
            "reply text of {} bytes with line_length_limit {line_limit}",
            reply.text.len()
        );
        if let Some(e) = reply.enhanced {
            assert_eq!(u16::from(e.0), reply.class(), "{reply:?}");
        }
        assert!(!reply.text.chars().any(|c| c.is_control() && c != '\n'));
    }
    let split = replies(line_limit, reply_limit, wire, step);
    assert_eq!(whole, split, "replies depend on how the wire was read");
}
