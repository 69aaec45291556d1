//! `postcat`, `postconf` and the `mailq` symlink end to end, against a
//! real instance.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `postcat -q QID` prints the envelope records, then the content, between
/// Postfix's `*** … ***` markers; an unknown ID is fatal (exit 1).
#[test]
fn postcat_shows_a_queued_message() {
    let mut inst = Instance::new("pc", "");
    inst.start();
    let qid = inst.submit(
        "alice@example.com",
        &["bob@example.org", "carol@example.net"],
        "Subject: for postcat\r\n\r\nthe body line\r\n",
    );
    assert!(wait_until(Duration::from_secs(20), || inst
        .queue_of(&qid)
        .is_some()));

    let check = |inst: &Instance, when: &str| {
        let out = inst.sluice(&["postcat", "-q", &qid]);
        assert_eq!(out.status.code(), Some(0), "{when}: {}", show(&out));
        let s = text(&out.stdout);
        let lines: Vec<&str> = s.lines().collect();
        let pos = |pred: &dyn Fn(&str) -> bool, what: &str| {
            lines
                .iter()
                .position(|l| pred(l))
                .unwrap_or_else(|| panic!("{when}: no {what} in:\n{s}"))
        };
        let env = pos(
            &|l| l.starts_with("*** ENVELOPE RECORDS ") && l.ends_with(&format!("{qid} ***")),
            "envelope marker",
        );
        let sender = pos(&|l| l == "sender: alice@example.com", "sender record");
        let bob = pos(&|l| l == "recipient: bob@example.org", "first recipient");
        let carol = pos(&|l| l == "recipient: carol@example.net", "second recipient");
        pos(&|l| l.starts_with("message_arrival_time: "), "arrival time");
        let contents = pos(
            &|l| l.starts_with("*** MESSAGE CONTENTS "),
            "contents marker",
        );
        let subject = pos(&|l| l == "Subject: for postcat", "Subject header");
        let body = pos(&|l| l == "the body line", "body");
        let end = pos(&|l| l.starts_with("*** MESSAGE FILE END "), "end marker");
        assert!(
            env < sender && sender < bob && bob < carol && carol < contents,
            "{when}: envelope order:\n{s}"
        );
        assert!(
            contents < subject && subject < body && body < end,
            "{when}: {s}"
        );
        assert!(
            lines[contents + 1].starts_with("Received: from "),
            "{when}: smtpd's Received: header first:\n{s}"
        );
        // -b: the body alone, without markers. As in postcat.c, the empty
        // line after the headers is the first body line.
        let out = inst.sluice(&["postcat", "-bq", &qid]);
        assert_eq!(out.status.code(), Some(0), "{when}: {}", show(&out));
        assert_eq!(
            text(&out.stdout),
            "\nthe body line\n",
            "{when}: postcat -bq"
        );
    };
    check(&inst, "daemon running");
    inst.stop();
    check(&inst, "daemon stopped");

    // An ID that is not queued; a string that is no queue ID.
    let out = inst.sluice(&["postcat", "-q", "4jcJb04xz60"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        text(&out.stderr),
        "postcat: fatal: open queue file 4jcJb04xz60: No such file or directory\n"
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));
    let out = inst.sluice(&["postcat", "-q", "no-such-id!"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

/// `postcat -hq QID`: the headers alone. (`-h` is postcat's, not clap's
/// help flag.)
#[test]
fn postcat_dash_h_is_headers_not_help() {
    let mut inst = Instance::new("pc-h", "");
    inst.start();
    let qid = inst.submit(
        "alice@example.com",
        &["bob@example.org"],
        "Subject: headers only\r\n\r\nthe body line\r\n",
    );
    inst.stop();
    let out = inst.sluice(&["postcat", "-h", "-q", &qid]);
    let s = text(&out.stdout);
    assert!(
        out.status.code() == Some(0)
            && s.contains("Subject: headers only")
            && !s.contains("the body line")
            && !s.contains("Usage:"),
        "BUG (tools/src/cli.rs): `sluice postcat -h -q QID` must print the headers, \
         not clap's help: {}",
        show(&out)
    );
}

/// postconf -n (the parameters main.cf sets), -e (edit, comments kept),
/// -h (value only), -d (the default).
#[test]
fn postconf_shows_and_edits_main_cf() {
    let inst = Instance::new(
        "pconf",
        "# a comment the edit must keep\nrelayhost = [old.example]:25",
    );
    let out = inst.sluice(&["postconf", "-n"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    for want in [
        "myhostname = mx.example.test",
        "mydomain = example.test",
        "mynetworks = 127.0.0.0/8",
        "relayhost = [old.example]:25",
        "defer_transports = smtp",
    ] {
        assert!(lines.contains(&want), "postconf -n lacks {want:?}:\n{s}");
    }
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "postconf -n sorts by name");
    assert!(
        !lines.iter().any(|l| l.starts_with("message_size_limit")),
        "only what main.cf sets:\n{s}"
    );

    let out = inst.sluice(&[
        "postconf",
        "-e",
        "relayhost=[new.example]:587",
        "message_size_limit = 2048000",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let cf = std::fs::read_to_string(inst.config_dir().join("main.cf")).unwrap();
    assert!(
        cf.starts_with("# test instance\n"),
        "first comment kept:\n{cf}"
    );
    assert!(
        cf.contains("# a comment the edit must keep\n"),
        "comment kept:\n{cf}"
    );
    assert!(
        cf.contains("relayhost = [new.example]:587\n"),
        "edited in place:\n{cf}"
    );
    assert!(!cf.contains("old.example"), "old value gone:\n{cf}");
    assert!(
        cf.contains("message_size_limit = 2048000\n"),
        "new parameter added:\n{cf}"
    );
    assert!(
        cf.find("# a comment the edit must keep").unwrap() < cf.find("relayhost =").unwrap(),
        "edited where it was:\n{cf}"
    );

    let out = inst.sluice(&["postconf", "-h", "relayhost", "message_size_limit"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(text(&out.stdout), "[new.example]:587\n2048000\n");

    let out = inst.sluice(&["postconf", "-d", "myhostname", "message_size_limit"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2, "{s}");
    assert!(lines[0].starts_with("myhostname = "), "{s}");
    assert_ne!(
        lines[0], "myhostname = mx.example.test",
        "-d ignores main.cf: {s}"
    );
    assert_eq!(
        lines[1], "message_size_limit = 10240000",
        "Postfix's default"
    );

    // An unknown parameter named on the command line: Postfix's warning.
    let out = inst.sluice(&["postconf", "no_such_parameter_here"]);
    assert!(
        text(&out.stderr).contains("postconf: warning: no_such_parameter_here: unknown parameter"),
        "{}",
        show(&out)
    );
}

/// `install-links DIR`, then `DIR/mailq` prints what `postqueue -p` does.
#[test]
fn mailq_symlink_matches_postqueue_p() {
    let mut inst = Instance::new("mailq-link", "");
    let links = TempDir::new("mailq-links");
    let out = inst.sluice(&["install-links", links.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    for name in [
        "sendmail",
        "mailq",
        "postqueue",
        "postsuper",
        "postcat",
        "postconf",
    ] {
        let p = links.path().join(name);
        assert!(
            std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()),
            "{} is a symlink",
            p.display()
        );
    }
    let mailq = |inst: &Instance| {
        let mut cmd = Command::new(links.path().join("mailq"));
        cmd.arg("-c").arg(inst.config_dir());
        let out = run_with_input(cmd, b"", Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0), "mailq: {}", show(&out));
        text(&out.stdout)
    };
    inst.start();
    assert_eq!(mailq(&inst), "Mail queue is empty\n");
    let qid = inst.submit(
        "alice@example.com",
        &["bob@example.org"],
        "Subject: q\r\n\r\nx\r\n",
    );
    assert!(wait_until(Duration::from_secs(20), || inst
        .queue_of(&qid)
        .is_some()));
    let via_link = mailq(&inst);
    assert_eq!(via_link, inst.mailq(), "mailq == postqueue -p");
    assert!(
        via_link.starts_with(
            "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"
        ),
        "the long-ID heading: {via_link}"
    );
    assert!(via_link.contains(&qid), "{via_link}");
    assert!(via_link.contains("alice@example.com"), "{via_link}");
    assert!(via_link.contains("bob@example.org"), "{via_link}");
    assert!(via_link.ends_with(" Kbytes in 1 Request.\n"), "{via_link}");
    inst.stop();
    // The same answer from the log while the daemon is stopped.
    assert_eq!(mailq(&inst), via_link, "stopped: read from the log");
}
