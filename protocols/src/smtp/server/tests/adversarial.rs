//! Hostile sessions (issue 8): the transaction state after a rejected end
//! of data or BDAT LAST (Postfix's 2026 desync fix), UTF-8 addresses
//! without SMTPUTF8, and CR inside the commands whose words become names.

use super::{cfg, T};
use crate::smtp::server::ServerConfig;

const BARE_CR: &str = "550 5.5.2 Error: bare <CR> received";
const NEED_MAIL: &str = "503 5.5.1 Error: need MAIL command";
const NEED_RCPT: &str = "503 5.5.1 Error: need RCPT command";
const NEED_UTF8: &str = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
const TOO_BIG: &str = "552 5.3.4 Error: message file too big";

fn small() -> T {
    T::with(ServerConfig {
        message_size_limit: 100,
        ..cfg()
    })
}

#[test]
fn after_a_rejected_end_of_data_the_transaction_is_gone() {
    let big = "x".repeat(200);
    for how in [&b"DATA"[..], b"BDAT"] {
        let mut t = small();
        t.ready();
        let reply = if how == b"DATA" {
            assert!(t.cmd("DATA").starts_with("354"));
            t.send(format!("{big}\r\n.\r\n").as_bytes())
        } else {
            t.send(format!("BDAT {} LAST\r\n{big}", big.len()).as_bytes())
        };
        assert_eq!(reply, TOO_BIG, "{}", String::from_utf8_lossy(how));
        // RCPT and DATA without a new MAIL: refused, nothing stored.
        assert_eq!(t.cmd("RCPT TO:<r2@b.example>"), NEED_MAIL);
        assert_eq!(t.cmd("DATA"), NEED_RCPT);
        assert_eq!(t.send(b"BDAT 3 LAST\r\nabc"), NEED_RCPT);
        assert!(t.messages.is_empty());
        // A new transaction works.
        assert_eq!(t.cmd("MAIL FROM:<s@a.example>"), "250 2.1.0 Ok");
    }
}

#[test]
fn utf8_addresses_need_smtputf8_and_change_nothing() {
    let mut t = T::new();
    assert!(t.cmd("EHLO client.example").starts_with("250-"));
    // (command, reply) in order; each refusal leaves the state as it was.
    let table = [
        ("MAIL FROM:<jös@exämple.org>", NEED_UTF8),
        ("RCPT TO:<r@b.example>", NEED_MAIL),
        ("VRFY <bö@b.example>", NEED_UTF8),
        ("VRFY <bö@b.example> SMTPUTF8", "252 2.0.0 <b??@b.example>"),
        ("VRFY <b@b.example>", "252 2.0.0 <b@b.example>"),
        ("MAIL FROM:<s@a.example>", "250 2.1.0 Ok"),
        ("RCPT TO:<bö@b.example>", NEED_UTF8),
        // Postfix's words once a recipient was refused.
        ("DATA", "554 5.5.1 Error: no valid recipients"),
        ("RCPT TO:<r@b.example>", "250 2.1.5 Ok"),
        ("RSET", "250 2.0.0 Ok"),
        ("MAIL FROM:<jös@exämple.org> SMTPUTF8", "250 2.1.0 Ok"),
        ("RCPT TO:<bö@b.example>", "250 2.1.5 Ok"),
    ];
    for (cmd, want) in table {
        assert_eq!(t.cmd(cmd), want, "{cmd}");
    }
}

#[test]
fn cr_inside_names_is_refused_in_every_mode() {
    let table: [(&[u8], &str); 8] = [
        (b"EHLO a.example\rX-Injected: yes\r\n", BARE_CR),
        (b"HELO a.ex\rample\r\n", BARE_CR),
        (b"EHLO a.example\r\r\n", BARE_CR),
        (b"EHLO a.example\r\n", "250-"),
        (b"MAIL FROM:<a@example.org> ENVID=x\rX-Inj: 1\r\n", BARE_CR),
        (b"MAIL FROM:<a@example.org>\r\r\n", BARE_CR),
        (b"RCPT TO:<b@example.net> NOTIFY=NEVER\r\r\n", BARE_CR),
        (b"VRFY <b@exa\rmple.net>\r\n", BARE_CR),
    ];
    let mut t = T::new();
    for (line, want) in table {
        let got = t.send(line);
        assert!(
            got.starts_with(want),
            "{:?}: {got}",
            String::from_utf8_lossy(line)
        );
    }
    // The refused MAIL left no transaction behind.
    assert_eq!(t.cmd("RCPT TO:<b@example.net>"), NEED_MAIL);
    // The HELO name is the one from the clean EHLO.
    assert_eq!(t.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
    assert_eq!(t.cmd("RCPT TO:<b@example.net>"), "250 2.1.5 Ok");
    t.cmd("DATA");
    t.send(b"x\r\n.\r\n");
    assert_eq!(t.messages[0].helo.as_deref(), Some("a.example"));
}
