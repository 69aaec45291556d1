//! CHUNKING (RFC 3030): BDAT chunks, LAST, errors that still read the chunk.

use super::*;

#[test]
fn chunks_make_a_message() {
    let mut t = T::new();
    t.ready();
    assert_eq!(t.send(b"BDAT 5\r\nhello"), "250 2.0.0 Ok: 5 bytes");
    // Chunk content is binary: no dot handling, no terminator, no commands.
    assert_eq!(
        t.send(b"BDAT 11\r\n\r\n.\r\nQUIT\r\n"),
        "250 2.0.0 Ok: 11 bytes"
    );
    assert_eq!(
        t.send(b"BDAT 0 LAST\r\n"),
        "250 2.0.0 Ok: 16 bytes queued as QID1"
    );
    assert_eq!(t.messages[0].content, b"hello\r\n.\r\nQUIT\r\n");
    assert_eq!(
        t.s.command_stats(),
        "ehlo=1 mail=1 rcpt=1 bdat=3 commands=6"
    );
    assert_eq!(t.cmd("QUIT"), "221 2.0.0 Bye");
}

#[test]
fn a_chunk_may_span_many_reads() {
    let mut t = T::new();
    t.ready();
    assert_eq!(t.send(b"bdat 6 last\r\nab"), "");
    assert_eq!(t.last.want, Want::More);
    assert_eq!(t.send(b"cd"), "");
    assert_eq!(
        t.send(b"efNOOP\r\n"),
        "250 2.0.0 Ok: 6 bytes queued as QID1\r\n250 2.0.0 Ok"
    );
    assert_eq!(t.messages[0].content, b"abcdef");
}

#[test]
fn syntax_errors_leave_the_input_to_the_command_reader() {
    let mut t = T::new();
    for cmd in [
        "BDAT",
        "BDAT x",
        "BDAT 5 FIRST",
        "BDAT -1",
        "BDAT 1 LAST more",
        "BDAT 99999999999999999999",
    ] {
        assert_eq!(t.cmd(cmd), "501 5.5.4 Syntax: BDAT count [LAST]", "{cmd}");
    }
}

#[test]
fn refused_chunks_are_still_read() {
    let mut t = T::new();
    assert_eq!(
        t.send(b"BDAT 6\r\nNOOP\r\n"),
        "503 5.5.1 Error: need RCPT command"
    );
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 2.1.0 Ok");
    assert_eq!(
        t.send(b"BDAT 6 LAST\r\nRSET\r\n"),
        "554 5.5.1 Error: no valid recipients"
    );
    assert_eq!(t.s.error_count(), 2);
    assert_eq!(t.s.command_stats(), "mail=1 bdat=0/2 commands=1/3");
}

#[test]
fn an_oversize_chunk_is_discarded_and_ends_the_transaction() {
    let mut t = T::with(ServerConfig {
        message_size_limit: 10,
        ..cfg()
    });
    t.ready();
    assert_eq!(t.send(b"BDAT 8\r\n12345678"), "250 2.0.0 Ok: 8 bytes");
    assert_eq!(
        t.send(b"BDAT 3\r\n9ab"),
        "552 5.3.4 Error: message file too big"
    );
    assert_eq!(
        t.send(b"BDAT 2 LAST\r\nxx"),
        "503 5.5.1 Error: need RCPT command"
    );
    assert!(t.messages.is_empty());
    assert_eq!(t.s.sender(), None);
}

#[test]
fn data_after_bdat_is_refused() {
    let mut t = T::new();
    t.ready();
    assert_eq!(t.send(b"BDAT 1\r\nx"), "250 2.0.0 Ok: 1 bytes");
    assert_eq!(t.cmd("DATA"), "503 5.5.1 Error: BDAT in progress");
    assert_eq!(
        t.send(b"BDAT 1 LAST\r\ny"),
        "250 2.0.0 Ok: 2 bytes queued as QID1"
    );
}

#[test]
fn pipelined_bdat_after_ehlo_is_legitimate() {
    let mut t = T::new();
    assert!(t.cmd("EHLO c").starts_with("250-"));
    let reply =
        t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nhelloBDAT 3 LAST\r\nabcQUIT\r\n");
    assert_eq!(
        reply,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 5 bytes\r\n250 2.0.0 Ok: 8 bytes queued as QID1\r\n221 2.0.0 Bye"
    );
    assert_eq!(t.s.improper_pipelining(), None);
}
