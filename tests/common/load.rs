//! Continuous SMTP load for the fault suite: clients send until told to
//! stop (or until the daemon dies), each message carrying a unique token,
//! and every final reply is recorded on the client side, so a test knows
//! exactly which messages were acknowledged (250), refused (4xx/5xx), or
//! in flight (data sent, no reply) when a fault struck.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the clients saw.
#[derive(Default, Debug)]
pub struct Outcome {
    /// Tokens of messages answered 250 after the data.
    pub acked: Vec<String>,
    /// Their queue IDs (from `250 2.0.0 Ok: queued as QID`), in step.
    pub acked_qids: Vec<String>,
    /// Tokens refused after the data, with the reply.
    pub refused: Vec<(String, String)>,
    /// Tokens whose data was sent but whose reply never came.
    pub unanswered: Vec<String>,
}

/// The message for `token`: the token in the subject and in every body
/// line, ~2 KB, so a half-written copy cannot pass for the whole.
pub fn message_for(token: &str) -> Vec<u8> {
    let mut b =
        format!("Subject: fault {token}\r\nMessage-ID: <{token}@fault.example.org>\r\n\r\n")
            .into_bytes();
    for i in 0..24 {
        b.extend_from_slice(
            format!("token={token}; line {i} of the fault suite's message body ......\r\n")
                .as_bytes(),
        );
    }
    b
}

/// The token in a received or queued message, if any.
pub fn token_of(content: &[u8]) -> Option<String> {
    let at = content.windows(6).position(|w| w == b"token=")? + 6;
    let end = content[at..].iter().position(|&b| b == b';')?;
    Some(String::from_utf8_lossy(&content[at..at + end]).into_owned())
}

/// Whether `content` (as queued or received, with headers added in front)
/// carries `token`'s whole body.
pub fn intact(token: &str, content: &[u8]) -> bool {
    super::body_of(content) == super::body_of(&message_for(token))
}

/// Clients sending in a loop until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Outcome>>,
}

impl Load {
    /// `clients` connections to `addr`; tokens are `TAG-CLIENT-N`.
    pub fn start(addr: SocketAddr, clients: usize, tag: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|c| {
                let (stop, acks) = (stop.clone(), acks.clone());
                let prefix = format!("{tag}-{c}");
                std::thread::spawn(move || {
                    let mut out = Outcome::default();
                    let _ = client(addr, &prefix, &stop, &acks, &mut out);
                    out
                })
            })
            .collect();
        Load {
            stop,
            acks,
            threads,
        }
    }

    /// Messages acknowledged so far.
    pub fn acks(&self) -> usize {
        self.acks.load(Ordering::SeqCst)
    }

    /// Stop sending (after the transactions under way) and collect.
    pub fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Outcome::default();
        for t in self.threads {
            let o = t.join().expect("load client panicked");
            all.acked.extend(o.acked);
            all.acked_qids.extend(o.acked_qids);
            all.refused.extend(o.refused);
            all.unanswered.extend(o.unanswered);
        }
        all
    }
}

fn reply(r: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line.trim_end().to_string());
        }
    }
}

/// One client's loop; an I/O error (the daemon died) ends it.
fn client(
    addr: SocketAddr,
    prefix: &str,
    stop: &AtomicBool,
    acks: &AtomicUsize,
    out: &mut Outcome,
) -> std::io::Result<()> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    reply(&mut r)?;
    w.write_all(b"EHLO load.example.org\r\n")?;
    reply(&mut r)?;
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let token = format!("{prefix}-{n}");
        w.write_all(format!("MAIL FROM:<{prefix}@example.org>\r\n").as_bytes())?;
        let ok = reply(&mut r)?.starts_with("250");
        w.write_all(format!("RCPT TO:<r{n}@example.net>\r\n").as_bytes())?;
        let ok = reply(&mut r)?.starts_with("250") && ok;
        w.write_all(b"DATA\r\n")?;
        if !reply(&mut r)?.starts_with("354") || !ok {
            w.write_all(b"RSET\r\n")?;
            reply(&mut r)?;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let sent = w
            .write_all(&message_for(&token))
            .and_then(|()| w.write_all(b".\r\n"));
        match sent.and_then(|()| reply(&mut r)) {
            Ok(rep) if rep.starts_with("250") => {
                out.acked_qids
                    .push(super::queued_as(&rep).unwrap_or_default());
                out.acked.push(token);
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok(rep) => out.refused.push((token, rep)),
            Err(e) => {
                out.unanswered.push(token);
                return Err(e);
            }
        }
    }
    w.write_all(b"QUIT\r\n")?;
    let _ = reply(&mut r);
    Ok(())
}
