//! Any split of the input into reads gives the same session.

use super::*;
use crate::smtp::BareNewline;

/// A session touching every input state: commands, DATA with stuffing,
/// bare line endings and a split-sensitive terminator, BDAT, QUIT.
const SESSION: &[u8] = b"EHLO client.example\r\n\
MAIL FROM:<a@b.example> SIZE=20 BODY=8BITMIME\r\n\
RCPT TO:<c@d.example> NOTIFY=NEVER\r\n\
RCPT TO:<x@relay.invalid>\r\n\
DATA\r\n\
Subject: x\r\n\r\n..stuffed\r\nline\n.\r\nmore\n.\nbare\r.\r\r\n.x\r\n.\r\n\
RSET\r\n\
VRFY x@y\r\n\
MAIL FROM:<e@f>\r\n\
RCPT TO:<g@h>\r\n\
BDAT 7\r\nhel\r\nlo BDAT 0 LAST\r\n\
BOGUS\r\n\
QUIT\r\n";

fn whole(cfg: ServerConfig) -> Outcome {
    drive(cfg, &[SESSION])
}

#[test]
fn the_reference_session() {
    let out = whole(split_cfg());
    assert!(out.closed);
    assert_eq!(out.messages.len(), 2);
    assert_eq!(
        out.messages[0].content,
        b"Subject: x\r\n\r\n.stuffed\r\nline\r\n.\r\nmore\r\n.\r\nbare\r.\r\r\nx\r\n".as_slice()
    );
    assert_eq!(out.messages[1].content, b"hel\r\nlo");
    assert!(out.output.ends_with("250 2.0.0 Ok: 7 bytes queued as QID2\r\n500 5.5.2 Error: command not recognized\r\n221 2.0.0 Bye\r\n"));
}

#[test]
fn byte_by_byte_equals_whole() {
    for mode in [BareNewline::Normalize, BareNewline::Reject, BareNewline::No] {
        let cfg = || ServerConfig {
            bare_newline: mode,
            ..split_cfg()
        };
        let reads: Vec<&[u8]> = SESSION.chunks(1).collect();
        assert_eq!(drive(cfg(), &reads), whole(cfg()), "{mode:?}");
    }
}

#[test]
fn every_two_way_split_equals_whole() {
    for mode in [BareNewline::Normalize, BareNewline::Reject, BareNewline::No] {
        let cfg = || ServerConfig {
            bare_newline: mode,
            ..split_cfg()
        };
        let reference = whole(cfg());
        for cut in 0..=SESSION.len() {
            let (a, b) = SESSION.split_at(cut);
            assert_eq!(drive(cfg(), &[a, b]), reference, "{mode:?} cut at {cut}");
        }
    }
}

#[test]
fn every_three_way_split_of_the_data_terminator() {
    // The interesting part: "\r\n.\r\n" and its neighbours, cut twice.
    let input: &[u8] =
        b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.y\n.\r\n.\r\nNOOP\r\n";
    let reference = drive(split_cfg(), &[input]);
    assert_eq!(reference.messages[0].content, b"x\r\ny\r\n.\r\n");
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let reads = [&input[..i], &input[i..j], &input[j..]];
            assert_eq!(drive(split_cfg(), &reads), reference, "cuts at {i}, {j}");
        }
    }
}
