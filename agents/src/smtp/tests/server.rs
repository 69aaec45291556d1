//! A scripted fake SMTP server: answers each command from a [`Script`]
//! and records what it saw, including which read brought each command
//! (to see pipelining) and each message's raw and decoded content.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sluice_protocols::smtp::server::data::{DataScanner, Scan};
use sluice_protocols::smtp::BareNewline;

use super::pipe::End;

/// What the server does in reply to a command.
#[derive(Clone, Debug)]
pub enum Act {
    /// Send these lines (CRLF added to each).
    Say(Vec<String>),
    /// Send nothing, keep reading.
    Silent,
    /// Send `250-…` lines for ever (until the client goes away).
    Endless,
    /// Close the connection without a reply.
    Hangup,
}

pub fn say(lines: &[&str]) -> Act {
    Act::Say(lines.iter().map(|s| s.to_string()).collect())
}

pub struct Script {
    pub greeting: Act,
    pub ehlo: Act,
    pub helo: Act,
    pub mail: Act,
    pub rcpt: Box<dyn Fn(&str) -> Act>,
    pub data: Act,
    pub dot: Act,
    pub rset: Act,
}

/// The EHLO reply of a Postfix server, optionally without some keywords.
pub fn postfix_ehlo(without: &[&str]) -> Act {
    let mut lines = vec!["250-mx.example".to_string()];
    let keywords = [
        "PIPELINING",
        "SIZE 10240000",
        "VRFY",
        "ETRN",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    ];
    for k in keywords {
        if !without.iter().any(|w| k.starts_with(w)) {
            lines.push(format!("250-{k}"));
        }
    }
    if let Some(last) = lines.last_mut() {
        last.replace_range(3..4, " ");
    }
    Act::Say(lines)
}

impl Default for Script {
    fn default() -> Self {
        Script {
            greeting: say(&["220 mx.example ESMTP Postfix"]),
            ehlo: postfix_ehlo(&[]),
            helo: say(&["250 mx.example"]),
            mail: say(&["250 2.1.0 Ok"]),
            rcpt: Box::new(|_| say(&["250 2.1.5 Ok"])),
            data: say(&["354 End data with <CR><LF>.<CR><LF>"]),
            dot: say(&["250 2.0.0 Ok: queued as ABC123"]),
            rset: say(&["250 2.0.0 Ok"]),
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Command lines, without CRLF.
    pub commands: Vec<String>,
    /// For each command, the number of the read that completed it.
    pub read_of: Vec<usize>,
    /// Each message: the raw bytes after 354 (terminator included), and
    /// the content smtpd would store.
    pub messages: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Transcript {
    /// The verbs, e.g. `["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]`.
    pub fn verbs(&self) -> Vec<&str> {
        self.commands
            .iter()
            .map(|c| c.split([' ', ':']).next().unwrap_or(""))
            .collect()
    }

    pub fn command(&self, prefix: &str) -> Option<&str> {
        self.commands
            .iter()
            .find(|c| c.starts_with(prefix))
            .map(String::as_str)
    }
}

/// Runs the server until the client closes or the script hangs up.
pub async fn serve(mut end: End, script: Script) -> Transcript {
    let mut t = Transcript::default();
    if !act(&mut end, &script.greeting).await {
        return t;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut reads = 0;
    let mut in_data: Option<(DataScanner, Vec<u8>, Vec<u8>)> = None;
    let mut chunk = [0u8; 1500];
    loop {
        // Consume what is buffered.
        loop {
            if let Some((scanner, raw, content)) = in_data.as_mut() {
                let (used, scan) = scanner.feed(&buf, content);
                raw.extend_from_slice(&buf[..used]);
                buf.drain(..used);
                if scan == Scan::More {
                    break;
                }
                let (_, raw, content) = in_data.take().expect("in data");
                t.messages.push((raw, content));
                if !act(&mut end, &script.dot).await {
                    return t;
                }
                continue;
            }
            let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line: Vec<u8> = buf.drain(..=lf).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            t.commands.push(line.clone());
            t.read_of.push(reads);
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => script.ehlo.clone(),
                "HELO" => script.helo.clone(),
                "MAIL" => script.mail.clone(),
                "RCPT" => (script.rcpt)(&line),
                "DATA" => script.data.clone(),
                "RSET" => script.rset.clone(),
                "QUIT" => {
                    let _ = act(&mut end, &say(&["221 2.0.0 Bye"])).await;
                    return t;
                }
                _ => say(&["502 5.5.2 Error: command not recognized"]),
            };
            let go_data =
                verb == "DATA" && matches!(&reply, Act::Say(l) if l[0].starts_with("354"));
            if !act(&mut end, &reply).await {
                return t;
            }
            if go_data {
                in_data = Some((
                    DataScanner::new(BareNewline::Normalize, 0),
                    Vec::new(),
                    Vec::new(),
                ));
            }
        }
        match end.read(&mut chunk).await {
            Ok(0) | Err(_) => return t,
            Ok(n) => {
                reads += 1;
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Performs `a`; false when the conversation is over.
async fn act(end: &mut End, a: &Act) -> bool {
    match a {
        Act::Say(lines) => {
            let mut out = Vec::new();
            for l in lines {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            end.write_all(&out).await.is_ok()
        }
        Act::Silent => true,
        Act::Endless => {
            let line = format!("250-{}\r\n", "spam ".repeat(50));
            while end.write_all(line.as_bytes()).await.is_ok() {}
            false
        }
        Act::Hangup => false,
    }
}
