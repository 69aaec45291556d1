//! Delivery end to end: a real `sluice` relays to in-process sinks on
//! loopback. Retries, bounces, dead destinations, connection reuse, and
//! MX lookups against a DNS server the test runs.

mod common;
use common::*;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sluice_tools::load::{FailAt, Sink, SinkConfig};

/// Retry quickly: the tests wait seconds, not minutes.
const FAST_RETRY: &str =
    "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n";

fn sink(cfg: impl FnOnce(&mut SinkConfig)) -> Sink {
    let mut c = SinkConfig::new("127.0.0.1:0".parse().unwrap());
    cfg(&mut c);
    Sink::start(c).expect("start sink")
}

fn relay_to(port: u16, extra: &str) -> String {
    format!("defer_transports =\nrelayhost = [127.0.0.1]:{port}\n{FAST_RETRY}{extra}")
}

/// Poll `f` until it holds or `limit` passes.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn session(inst: &Instance) -> Client {
    let mut c = inst.connect();
    c.reply();
    c.cmd("EHLO client.example.org");
    c
}

#[test]
fn relays_to_the_next_hop_and_removes_the_message() {
    let s = sink(|_| {});
    let mut inst = Instance::new("relay", &relay_to(s.addr().port(), ""));
    inst.start();
    let mut c = session(&inst);
    let q1 = queued_as(&c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: one\r\n\r\nfirst\r\n..dot\r\n",
    ))
    .unwrap();
    let q2 = queued_as(&c.send_mail(
        "alice@example.org",
        &["carol@example.net", "dave@example.com"],
        b"Subject: two\r\n\r\nsecond\r\n",
    ))
    .unwrap();
    c.cmd("QUIT");
    assert!(
        s.wait_for(2, Duration::from_secs(20)),
        "sink got {} messages; log:\n{}",
        s.messages(),
        inst.log()
    );
    let got = s.received();
    let one = got
        .iter()
        .find(|m| m.rcpt_to == vec!["bob@example.net".to_string()])
        .expect("first message");
    assert_eq!(one.mail_from, "alice@example.org");
    assert!(
        one.content.ends_with(b"\r\nfirst\r\n.dot\r\n"),
        "{:?}",
        String::from_utf8_lossy(&one.content[one.content.len().saturating_sub(30)..])
    );
    assert!(String::from_utf8_lossy(&one.content).contains(&format!("with ESMTP id {q1}")));
    let two = got
        .iter()
        .find(|m| m.rcpt_to.len() == 2)
        .expect("second message, both recipients in one delivery");
    assert_eq!(
        two.rcpt_to,
        vec![
            "carol@example.net".to_string(),
            "dave@example.com".to_string()
        ]
    );
    // Removed from the queue once delivered.
    assert!(
        eventually(Duration::from_secs(10), || inst.queue_json().is_empty()),
        "{:?}",
        inst.queue_json()
    );
    assert!(inst.stop().success());
    let log = inst.log();
    let port = s.addr().port();
    assert!(
        log.contains(&format!(
            "{q1}: to=<bob@example.net>, relay=127.0.0.1[127.0.0.1]:{port}, "
        )),
        "{log}"
    );
    assert!(
        log.contains("dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "),
        "{log}"
    );
    assert!(log.contains(&format!("{q2}: removed")), "{log}");
    assert!(
        log.contains(&format!("{q1}: from=<alice@example.org>, size=")),
        "{log}"
    );
    assert!(read_queue(&inst.queue_dir()).is_empty());
}

#[test]
fn a_temporary_failure_is_retried_until_delivered() {
    // Nothing listens on the next hop at first: connection refused, deferred.
    let port = free_port();
    let mut inst = Instance::new("retry", &relay_to(port, ""));
    inst.start();
    let mut c = session(&inst);
    let qid = queued_as(&c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: retry\r\n\r\nlater\r\n",
    ))
    .unwrap();
    c.cmd("QUIT");
    assert!(
        eventually(Duration::from_secs(10), || inst
            .log()
            .contains(&format!("{qid}: to=<bob@example.net>, relay=none"))),
        "{}",
        inst.log()
    );
    let json = inst.queue_json();
    assert!(
        json[0].contains("\"queue_name\": \"deferred\"") && json[0].contains("Connection refused"),
        "{json:?}"
    );
    let p = inst.sluice(&["postqueue", "-p"]);
    assert!(
        String::from_utf8_lossy(&p.stdout).contains("(connect to 127.0.0.1[127.0.0.1]:"),
        "{}",
        String::from_utf8_lossy(&p.stdout)
    );
    // The next hop comes up; the backoff (1-2 s here) brings the retry.
    let s = sink(|c| c.listen = SocketAddr::from(([127, 0, 0, 1], port)));
    assert!(
        s.wait_for(1, Duration::from_secs(20)),
        "not retried; log:\n{}",
        inst.log()
    );
    assert!(eventually(Duration::from_secs(10), || inst
        .queue_json()
        .is_empty()));
    assert!(inst.stop().success());
    let log = inst.log();
    assert!(
        log.contains("status=deferred (connect to 127.0.0.1[127.0.0.1]:"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{qid}: to=<bob@example.net>, relay=127.0.0.1[127.0.0.1]:{port}"
        )),
        "{log}"
    );
}

#[test]
fn a_4xx_reply_defers_with_the_servers_words() {
    let s = sink(|c| {
        c.reply_temp_fail = 1.0;
        c.fail_at = FailAt::Rcpt;
    });
    let mut inst = Instance::new("fourxx", &relay_to(s.addr().port(), ""));
    inst.start();
    let mut c = session(&inst);
    let qid = queued_as(&c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: x\r\n\r\ny\r\n",
    ))
    .unwrap();
    c.cmd("QUIT");
    assert!(
        eventually(Duration::from_secs(10), || inst
            .log()
            .contains(&format!("{qid}: to=<bob@example.net>"))
            && inst.log().contains("status=deferred")),
        "{}",
        inst.log()
    );
    assert!(inst.stop().success());
    let log = inst.log();
    assert!(
        log.contains("said: 4") && log.contains("(in reply to RCPT TO command)"),
        "{log}"
    );
    assert_eq!(
        read_queue(&inst.queue_dir()).len(),
        1,
        "a deferred message stays queued"
    );
}

/// Recipients at example.net go to a next hop that rejects them; the
/// sender's domain goes to a good one, where the bounce arrives.
fn bounce_setup(tag: &str) -> (Sink, Sink, Instance, TempDir) {
    let good = sink(|_| {});
    let bad = sink(|c| {
        c.reply_perm_fail = 1.0;
        c.fail_at = FailAt::Rcpt;
    });
    let dir = TempDir::new(&format!("{tag}-maps"));
    let map = dir.path().join("transport");
    std::fs::write(
        &map,
        format!("example.net smtp:[127.0.0.1]:{}\n", bad.addr().port()),
    )
    .unwrap();
    let extra = relay_to(
        good.addr().port(),
        &format!("transport_maps = texthash:{}\n", map.display()),
    );
    let inst = Instance::new(tag, &extra);
    // The caller keeps the map's directory as long as the instance.
    (good, bad, inst, dir)
}

#[test]
fn a_5xx_reply_bounces_exactly_once_to_the_sender() {
    let (good, bad, mut inst, _maps) = bounce_setup("bounce");
    inst.start();
    let mut c = session(&inst);
    let qid = queued_as(&c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: doomed\r\n\r\nthe original body\r\n",
    ))
    .unwrap();
    c.cmd("QUIT");
    assert!(
        good.wait_for(1, Duration::from_secs(20)),
        "no bounce arrived; log:\n{}",
        inst.log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let got = good.received();
    assert_eq!(got.len(), 1, "exactly one notice");
    let n = &got[0];
    assert_eq!(n.mail_from, "", "notices have the null sender");
    assert_eq!(n.rcpt_to, vec!["alice@example.org".to_string()]);
    let text = String::from_utf8_lossy(&n.content);
    for needle in [
        "Subject: Undelivered Mail Returned to Sender",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Content-Description: Delivery report",
        "Final-Recipient: rfc822; bob@example.net",
        "Action: failed",
        "Status: 5.",
        "Content-Description: Undelivered Message",
        "the original body",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(bad.messages(), 0);
    assert!(
        eventually(Duration::from_secs(10), || inst.queue_json().is_empty()),
        "{:?}",
        inst.queue_json()
    );
    assert!(inst.stop().success());
    let log = inst.log();
    assert!(
        log.contains(&format!("{qid}: to=<bob@example.net>")) && log.contains("status=bounced ("),
        "{log}"
    );
    assert!(
        log.contains(&format!("{qid}: sender non-delivery notification: ")),
        "{log}"
    );
    assert!(log.contains(&format!("{qid}: removed")), "{log}");
}

#[test]
fn a_failed_null_sender_message_is_not_bounced() {
    let (good, _bad, mut inst, _maps) = bounce_setup("nullsender");
    inst.start();
    let mut c = session(&inst);
    let qid =
        queued_as(&c.send_mail("", &["bob@example.net"], b"Subject: notice\r\n\r\nx\r\n")).unwrap();
    c.cmd("QUIT");
    assert!(
        eventually(Duration::from_secs(15), || inst
            .log()
            .contains(&format!("{qid}: removed"))),
        "{}",
        inst.log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(good.messages(), 0, "no bounce for a null-sender message");
    assert!(inst.stop().success());
    assert!(
        !inst.log().contains("sender non-delivery notification"),
        "{}",
        inst.log()
    );
}

#[test]
fn a_dead_destination_suspends_delivery() {
    // Queue mail while smtp is deferred, then restart relaying to a port
    // where nothing listens: every message is due at once, the first
    // connection failures kill the destination, and the rest are deferred
    // without an attempt.
    let port = free_port();
    let mut inst = Instance::new("dead", FAST_RETRY);
    inst.start();
    let mut c = session(&inst);
    let mut qids = Vec::new();
    for i in 0..12 {
        qids.push(
            queued_as(&c.send_mail(
                "alice@example.org",
                &[&format!("r{i}@example.net")],
                b"Subject: x\r\n\r\ny\r\n",
            ))
            .unwrap(),
        );
    }
    c.cmd("QUIT");
    assert!(inst.stop().success());
    let main_cf = inst.config_dir().join("main.cf");
    let mut text = std::fs::read_to_string(&main_cf).unwrap();
    text.push_str(&relay_to(port, ""));
    std::fs::write(&main_cf, text).unwrap();
    inst.start();
    assert!(
        eventually(Duration::from_secs(15), || inst.log().contains(
            "status=deferred (delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:"
        )),
        "{}",
        inst.log()
    );
    assert!(inst.stop().success());
    assert_eq!(
        read_queue(&inst.queue_dir()).len(),
        qids.len(),
        "nothing lost while suspended"
    );
}

#[test]
fn connections_are_reused() {
    let s = sink(|_| {});
    // One delivery at a time, so that every message takes the cached connection.
    let mut inst = Instance::new(
        "reuse",
        &relay_to(
            s.addr().port(),
            "default_destination_concurrency_limit = 1\ninitial_destination_concurrency = 1\n",
        ),
    );
    inst.start();
    let mut c = session(&inst);
    for i in 0..6 {
        queued_as(&c.send_mail(
            "alice@example.org",
            &[&format!("r{i}@example.net")],
            b"Subject: x\r\n\r\ny\r\n",
        ))
        .unwrap();
    }
    c.cmd("QUIT");
    assert!(s.wait_for(6, Duration::from_secs(20)), "{}", inst.log());
    assert!(inst.stop().success());
    assert!(inst.log().contains(", conn_use=2, "), "{}", inst.log());
    assert!(
        s.connections() < 6,
        "{} connections for 6 messages",
        s.connections()
    );
}

#[test]
fn mx_lookup_against_a_loopback_dns_server() {
    use sluice_agents::dns::testzone::{serve_udp, Zone};
    let s = sink(|_| {});
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    dns.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let dns_addr = dns.local_addr().unwrap();
    let zone = Zone::new()
        .mx("example.net", 10, "mx1.example.net")
        .a("mx1.example.net", std::net::Ipv4Addr::LOCALHOST);
    let server = std::thread::spawn(move || serve_udp(&dns, &zone, 50));
    // No relayhost: the recipient domain's MX decides; the sink listens on
    // the MX's address but not on port 25, so smtp's port is ours too.
    let mut inst = Instance::new(
        "mx",
        &format!(
            "defer_transports =\nsmtp_host_lookup = dns\nsluice_nameservers = {dns_addr}\n{FAST_RETRY}\
             transport_maps = texthash:{{dir}}/transport\n"
        )
        .replace("{dir}", "/nonexistent-placeholder"),
    );
    // The MX host is found by DNS; the port comes from the nexthop form
    // `example.net:PORT` (MX lookup, then that port) in transport_maps.
    let map = inst.config_dir().join("transport");
    std::fs::write(
        &map,
        format!("example.net smtp:example.net:{}\n", s.addr().port()),
    )
    .unwrap();
    let main_cf = std::fs::read_to_string(inst.config_dir().join("main.cf")).unwrap();
    std::fs::write(
        inst.config_dir().join("main.cf"),
        main_cf.replace(
            "/nonexistent-placeholder/transport",
            &map.display().to_string(),
        ),
    )
    .unwrap();
    inst.start();
    let mut c = session(&inst);
    queued_as(&c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: mx\r\n\r\nvia MX\r\n",
    ))
    .unwrap();
    c.cmd("QUIT");
    assert!(
        s.wait_for(1, Duration::from_secs(20)),
        "not delivered via MX; log:\n{}",
        inst.log()
    );
    assert!(inst.stop().success());
    assert!(
        inst.log().contains(&format!(
            "relay=mx1.example.net[127.0.0.1]:{}",
            s.addr().port()
        )),
        "{}",
        inst.log()
    );
    drop(server);
}

#[test]
fn notify_success_through_a_next_hop_without_dsn_gets_a_relayed_notice() {
    let s = sink(|c| c.announce_dsn = false);
    let mut inst = Instance::new("success", &relay_to(s.addr().port(), ""));
    inst.start();
    let mut c = session(&inst);
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250"));
    assert!(c
        .cmd("RCPT TO:<bob@example.net> NOTIFY=SUCCESS")
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: tell me\r\n\r\nbody\r\n.\r\n");
    let qid = queued_as(&c.reply()).unwrap();
    c.cmd("QUIT");
    assert!(s.wait_for(2, Duration::from_secs(20)), "{}", inst.log());
    let got = s.received();
    let notice = got
        .iter()
        .find(|m| m.mail_from.is_empty())
        .expect("a notice from <>");
    assert_eq!(notice.rcpt_to, vec!["alice@example.org".to_string()]);
    let text = String::from_utf8_lossy(&notice.content);
    assert!(
        text.contains("Subject: Successful Mail Delivery Report"),
        "{text}"
    );
    assert!(text.contains("Action: relayed"), "{text}");
    assert!(inst.stop().success());
    assert!(
        inst.log()
            .contains(&format!("{qid}: sender delivery status notification: ")),
        "{}",
        inst.log()
    );
}

#[test]
fn a_delay_warning_is_sent_once_after_delay_warning_time() {
    let good = sink(|_| {});
    let down = free_port();
    let dir = TempDir::new("delay-maps");
    let map = dir.path().join("transport");
    std::fs::write(&map, format!("example.net smtp:[127.0.0.1]:{down}\n")).unwrap();
    let mut inst = Instance::new(
        "delay",
        &relay_to(
            good.addr().port(),
            &format!(
                "transport_maps = texthash:{}\ndelay_warning_time = 1s\n",
                map.display()
            ),
        ),
    );
    inst.start();
    let mut c = session(&inst);
    let qid = queued_as(&c.send_mail(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: slow\r\n\r\nx\r\n",
    ))
    .unwrap();
    c.cmd("QUIT");
    assert!(
        good.wait_for(1, Duration::from_secs(20)),
        "no delay notice; log:\n{}",
        inst.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let got = good.received();
    assert_eq!(got.len(), 1, "one delay notice, not one per retry");
    let text = String::from_utf8_lossy(&got[0].content);
    assert!(
        text.contains("Subject: Delayed Mail (still being retried)"),
        "{text}"
    );
    assert!(text.contains("Action: delayed"), "{text}");
    assert!(inst.stop().success());
    assert!(
        inst.log()
            .contains(&format!("{qid}: sender delay notification: ")),
        "{}",
        inst.log()
    );
    assert_eq!(
        read_queue(&inst.queue_dir()).len(),
        1,
        "the original stays queued"
    );
}
