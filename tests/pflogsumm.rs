//! The daemon's log is Postfix-shaped enough for pflogsumm: a small relay
//! run (mail delivered to one sink, one message bounced by another, one
//! submitted with sendmail) and pflogsumm's Grand Totals count exactly
//! what happened. Fails when pflogsumm is not installed (`.ci/run`
//! installs it).

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

/// pflogsumm's "Grand Totals" numbers by label (`received`, `delivered`,
/// `bounced`, …); `rejected (0%)` is keyed `rejected`.
fn grand_totals(report: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut lines = report.lines().skip_while(|l| l.trim() != "Grand Totals");
    // "Grand Totals", dashes, "messages", blank: then the counts, up to
    // the next blank line.
    let _ = lines
        .by_ref()
        .take_while(|l| l.trim() != "messages")
        .count();
    for l in lines.skip_while(|l| l.trim().is_empty()) {
        let l = l.trim();
        if l.is_empty() {
            break;
        }
        let mut it = l.split_whitespace();
        let (Some(n), Some(label)) = (it.next(), it.next()) else {
            continue;
        };
        if let Ok(n) = n.parse() {
            out.push((label.to_string(), n));
        }
    }
    out
}

fn total(totals: &[(String, u64)], label: &str) -> Option<u64> {
    totals.iter().find(|(l, _)| l == label).map(|(_, n)| *n)
}

/// The relay run: four messages received (three by SMTP, one by
/// sendmail), five recipients delivered to the good sink (four plus the
/// non-delivery notice), one bounced by the bad sink. Returns the stopped
/// instance (its daemon.log complete).
fn relay_run() -> Instance {
    let good = start_sink(|_| {});
    let bad = start_sink(|c| {
        c.reply_perm_fail = 1.0;
        c.fail_at = sluice_tools::load::FailAt::Rcpt;
    });
    let dir = TempDir::new("pflog-maps");
    let transport = dir.path().join("transport");
    std::fs::write(
        &transport,
        format!("bad.example smtp:[127.0.0.1]:{}\n", bad.addr().port()),
    )
    .unwrap();
    let mut inst = Instance::new(
        "pflogsumm",
        &format!(
            "{}transport_maps = texthash:{}\n",
            relay_to(good.addr().port()),
            transport.display()
        ),
    );
    inst.start();

    // Four messages received: three by SMTP, one by sendmail (pickup).
    inst.submit(
        "alice@example.com",
        &["good1@example.org"],
        "Subject: 1\r\n\r\none\r\n",
    );
    inst.submit(
        "alice@example.com",
        &["good2@example.org", "good3@example.org"],
        "Subject: 2\r\n\r\ntwo\r\n",
    );
    inst.submit(
        "alice@example.com",
        &["user@bad.example"],
        "Subject: 3\r\n\r\nthree\r\n",
    );
    let out = inst.sluice_input(
        &["sendmail", "-f", "alice@example.com", "good4@example.org"],
        b"Subject: 4\n\nfour\n",
    );
    assert_eq!(out.status.code(), Some(0), "sendmail: {}", show(&out));
    // Wake pickup now rather than at its next scan.
    let _ = inst.sluice(&["postqueue", "-f"]);

    // Delivered: 1 + 2 + 1 recipients, plus the non-delivery notice to
    // alice (through the good sink); bounced: the bad.example recipient.
    let delivered_rcpts = |s: &sluice_tools::load::Sink| -> usize {
        s.received().iter().map(|m| m.rcpt_to.len()).sum()
    };
    assert!(
        wait_until(Duration::from_secs(60), || delivered_rcpts(&good) >= 5
            && inst.queue_json().is_empty()),
        "good sink has {:?}; bad sink stats {:?}; queue {:?}\nlog:\n{}",
        good.received()
            .iter()
            .map(|m| (&m.mail_from, &m.rcpt_to))
            .collect::<Vec<_>>(),
        bad.stats(),
        inst.queue_json(),
        inst.log()
    );
    let notice = good
        .received()
        .into_iter()
        .find(|m| m.mail_from.is_empty())
        .unwrap_or_else(|| panic!("no bounce notice (null sender) at the good sink"));
    assert_eq!(notice.rcpt_to, ["alice@example.com"]);
    assert_eq!(
        bad.stats().perm_rejects,
        1,
        "one RCPT refused by the bad sink"
    );
    inst.stop();
    inst
}

#[test]
fn pflogsumm_counts_received_delivered_bounced() {
    let Some(pflogsumm) = ["pflogsumm", "/usr/sbin/pflogsumm"]
        .into_iter()
        .find(|p| have_program(p))
    else {
        panic!("pflogsumm is not installed: this test needs it (.ci/run installs it)");
    };
    let inst = relay_run();
    let log = inst.log();
    let out = Command::new(pflogsumm)
        .arg("--syslog-name=sluice")
        .arg(inst.log_path())
        .output()
        .expect("run pflogsumm");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pflogsumm failed: {}", show(&out));
    let totals = grand_totals(&report);
    let want = [
        ("received", 4),
        ("delivered", 5),
        ("deferred", 0),
        ("bounced", 1),
        ("rejected", 0),
    ];
    for (label, n) in want {
        assert_eq!(
            total(&totals, label),
            Some(n),
            "pflogsumm's `{label}`; totals {totals:?}\nreport:\n{report}\nlog:\n{log}"
        );
    }
    // Per-recipient-domain detail: the bounce reason is the sink's reply.
    assert!(
        report.contains("message bounce detail (by relay)"),
        "{report}"
    );
}

/// The per-message lines POSTFIX-FACTS §14 lists, once each, in Postfix's
/// order: smtpd client=, cleanup message-id=, qmgr from= (queue active),
/// one status line per recipient, qmgr removed.
#[test]
fn log_lines_have_postfix_shape() {
    let inst = relay_run();
    let log = inst.log();
    let qids: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("]: ")?.1.split_once(": client="))
        .map(|(q, _)| q)
        .collect();
    assert_eq!(qids.len(), 3, "three smtpd client= lines:\n{log}");
    for qid in qids {
        // What each of this message's lines is about: `client`,
        // `message-id`, `from`, `to`, `removed`.
        let prefix = format!("{qid}: ");
        let mine: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split_once("]: ")?.1.strip_prefix(prefix.as_str()))
            .map(|rest| rest.split(['=', ' ']).next().unwrap_or(""))
            .collect();
        let from_lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("]: {qid}: from=<")))
            .collect();
        assert_eq!(
            from_lines.len(),
            1,
            "BUG (engine/src/smtpd.rs): Postfix's qmgr logs one `QID: from=<…>, size=N, nrcpt=M \
             (queue active)` line per message; Sluice also logs `(queue incoming)` at smtpd \
             time, which log tools count twice:\n{}",
            from_lines.join("\n")
        );
        assert!(
            from_lines[0].ends_with(" (queue active)"),
            "{}",
            from_lines[0]
        );
        let first = |what: &str| mine.iter().position(|w| *w == what);
        let (client, msgid, from, removed) = (
            first("client"),
            first("message-id"),
            first("from"),
            mine.iter().rposition(|w| *w == "removed"),
        );
        assert!(
            client < msgid && msgid < from && from < first("to") && first("to") < removed,
            "{qid}: order client, message-id, from, to, removed: {mine:?}\n{log}"
        );
    }
}
