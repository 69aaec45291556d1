//! Bounds: sizes, recipients, line length, error and junk counters.

use std::time::Duration;

use super::*;

#[test]
fn recipient_limit_and_overshoot() {
    let mut t = T::with(ServerConfig {
        recipient_limit: 2,
        ..cfg()
    });
    t.cmd("MAIL FROM:<a@b>");
    assert_eq!(t.cmd("RCPT TO:<1@b>"), "250 2.1.5 Ok");
    assert_eq!(t.cmd("RCPT TO:<2@b>"), "250 2.1.5 Ok");
    for _ in 0..SMTPD_RECIPIENT_OVERSHOOT_LIMIT {
        assert_eq!(
            t.cmd("RCPT TO:<3@b>"),
            "452 4.5.3 Error: too many recipients"
        );
    }
    // Within smtpd_recipient_overshoot_limit the 452s are not errors.
    assert_eq!(t.s.error_count(), 0);
    assert_eq!(
        t.cmd("RCPT TO:<4@b>"),
        "452 4.5.3 Error: too many recipients"
    );
    assert_eq!(t.s.error_count(), 1);
    t.cmd("DATA");
    t.send(b".\r\n");
    assert_eq!(t.messages[0].envelope.recipients.len(), 2);
}

#[test]
fn declared_size_over_the_limit() {
    let mut t = T::with(ServerConfig {
        message_size_limit: 1000,
        ..cfg()
    });
    assert_eq!(
        t.cmd("MAIL FROM:<a@b> SIZE=1001"),
        "552 5.3.4 Message size exceeds fixed limit"
    );
    assert_eq!(t.cmd("MAIL FROM:<a@b> SIZE=1000"), "250 2.1.0 Ok");
}

#[test]
fn oversize_data_is_read_to_the_end_then_refused() {
    let mut t = T::with(ServerConfig {
        message_size_limit: 20,
        ..cfg()
    });
    t.ready();
    t.cmd("DATA");
    assert_eq!(t.send(b"0123456789\r\n"), "");
    assert_eq!(t.send(b"0123456789\r\nMAIL FROM:<x@y>\r\n"), "");
    assert_eq!(t.send(b".\r\n"), "552 5.3.4 Error: message file too big");
    assert!(t.messages.is_empty());
    assert_eq!(t.cmd("RCPT TO:<c@d>"), "503 5.5.1 Error: need MAIL command");
    // Exactly at the limit is fine.
    t.cmd("MAIL FROM:<a@b>");
    t.cmd("RCPT TO:<c@d>");
    t.cmd("DATA");
    assert_eq!(
        t.send(b"012345678\r\n0123456\r\n.\r\n"),
        "250 2.0.0 Ok: queued as QID1"
    );
    assert_eq!(t.messages[0].content.len(), 20);
}

#[test]
fn long_command_lines_are_discarded_without_buffering() {
    let mut line = b"NOOP ".to_vec();
    line.resize(2048, b'x');
    line.extend_from_slice(b"\r\n");
    let mut long = b"RCPT TO:<".to_vec();
    long.resize(10_000, b'a');
    long.extend_from_slice(b"@b>\r\nNOOP\r\n");
    let mut input = line.clone();
    input.extend_from_slice(&long);
    let reads: Vec<&[u8]> = input.chunks(100).collect();
    // drive() asserts the caller never holds more than line_length_limit + 2.
    let out = drive(split_cfg(), &reads);
    assert_eq!(
        out.output,
        "220 mx.example ESMTP Postfix\r\n250 2.0.0 Ok\r\n500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"
    );
    assert_eq!(out.leftover, 0);
    // The same, arriving at once.
    assert_eq!(drive(split_cfg(), &[&input]).output, out.output);
}

#[test]
fn hard_error_limit_disconnects() {
    let mut t = T::new();
    for _ in 0..19 {
        assert_eq!(t.cmd("XYZZY"), "500 5.5.2 Error: command not recognized");
    }
    assert_eq!(
        t.cmd("XYZZY"),
        "500 5.5.2 Error: command not recognized\r\n421 4.7.0 mx.example Error: too many errors"
    );
    assert_eq!(t.last.want, Want::Close);
}

#[test]
fn hard_error_limit_after_a_refused_message() {
    let mut t = T::with(ServerConfig {
        hard_error_limit: 1,
        ..cfg()
    });
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
    assert_eq!(t.cmd("RCPT TO:<c@d>"), "250 2.1.5 Ok");
    t.cmd("DATA");
    let p = t.s.receive(b".\r\n", &mut t.policy);
    assert_eq!(p.want, Want::Message);
    t.s.message_done(Err(Reply::new(554, (5, 4, 0), "Error: too many hops")));
    assert_eq!(
        t.take_output(),
        "554 5.4.0 Error: too many hops\r\n421 4.7.0 mx.example Error: too many errors"
    );
    assert!(t.s.is_closed());
}

#[test]
fn junk_commands_past_the_limit_count_as_errors() {
    let mut t = T::with(ServerConfig {
        junk_command_limit: 3,
        ..cfg()
    });
    for _ in 0..5 {
        assert_eq!(t.cmd("NOOP"), "250 2.0.0 Ok");
    }
    // Postfix: `junk_cmds++ > limit`, so the 5th counts.
    assert_eq!(t.s.error_count(), 1);
    t.cmd("RSET");
    t.cmd("VRFY a@b");
    t.cmd("ETRN example.org"); // an error and junk: two
    assert_eq!(t.s.error_count(), 5);
    t.cmd("MAIL FROM:<a@b>"); // not junk
    assert_eq!(t.s.error_count(), 5);
}

#[test]
fn soft_error_limit_delays_replies() {
    let mut t = T::with(ServerConfig {
        soft_error_limit: 2,
        error_sleep: Duration::from_millis(250),
        ..cfg()
    });
    t.cmd("BAD");
    assert_eq!(t.s.reply_delay(), None);
    t.cmd("BAD");
    assert_eq!(t.s.reply_delay(), Some(Duration::from_millis(250)));
}
