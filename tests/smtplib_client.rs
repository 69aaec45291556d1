//! An independent client: Python's smtplib sends through a real sluice.

mod common;
use common::*;

use std::process::Command;

#[test]
fn python_smtplib_sends_mail() {
    let mut inst = Instance::new("smtplib", "");
    inst.start();
    let script = format!(
        r#"
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "alice@example.org"
m["To"] = "bob@example.net, carol@example.net"
m["Subject"] = "smtplib test"
m.set_content("Hello from smtplib.\n.leading dot\n")
with smtplib.SMTP("127.0.0.1", {port}, timeout=30) as s:
    code, msg = s.ehlo("py.example.org")
    assert code == 250 and b"PIPELINING" in msg, msg
    refused = s.send_message(m, from_addr="alice@example.org", to_addrs=["bob@example.net", "carol@example.net"])
    assert refused == {{}}, refused
    code, msg = s.noop()
    assert code == 250, msg
print("ok")
"#,
        port = inst.port
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "smtplib failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inst.stop().success());
    let q = read_queue(&inst.queue_dir());
    assert_eq!(q.len(), 1);
    assert_eq!(
        q[0].2,
        vec![
            "bob@example.net".to_string(),
            "carol@example.net".to_string()
        ]
    );
    let text = String::from_utf8_lossy(&q[0].3);
    assert!(text.contains("Subject: smtplib test\r\n"), "{text}");
    assert!(text.contains("\r\n.leading dot\r\n"), "{text}");
    // Two recipients: Received: has no `for` clause.
    assert!(
        !text.lines().take(3).any(|l| l.contains("\tfor <")),
        "{text}"
    );
}
