//! The Dovecot SASL client (`smtpd_sasl_type = dovecot`): Dovecot's auth
//! client protocol over its unix socket (`smtpd_sasl_path`), as Postfix's
//! `xsasl_dovecot_server.c` speaks it.
//!
//! **Protocol** (lines end with LF, fields with TAB):
//!
//! ```text
//! C: VERSION 1 1          S: VERSION 1 2
//! C: CPID <pid>           S: MECH PLAIN plaintext …
//!                         S: SPID <pid>
//!                         S: CUID <n>
//!                         S: COOKIE <hex>
//!                         S: DONE
//! C: AUTH 1 PLAIN service=smtp nologin lip=<ip> rip=<ip> [secured] resp=<base64>
//!                         S: OK 1 user=<name>        | FAIL 1 [user=…] [reason=…]
//!                                                    | CONT 1 <base64>
//! ```
//!
//! A different major VERSION, or SPID before any MECH (the auth-master
//! socket, not the client one), ends the handshake with a warning, as in
//! Postfix. Unknown lines are ignored.
//!
//! **Differences from Postfix.** Sluice's session collects LOGIN's user
//! name and password itself and hands Dovecot one PLAIN request (the same
//! credentials; Dovecot's PLAIN and LOGIN share one password check), so a
//! `CONT` is never expected and is taken as a protocol error. Sluice opens
//! one connection per AUTH command (Postfix keeps one per smtpd process)
//! and bounds every read and write by [`AUTH_TIMEOUT`] (Postfix's
//! `AUTH_TIMEOUT`, 10 s).
//!
//! **Trust.** The socket is the operator's Dovecot; its replies are still
//! bounded ([`MAX_LINE`]) and sanitised before they reach a log or a reply.
//! The password is sent base64-encoded inside `resp=`, never logged.
//!
//! [`Exchange`] is the sans-IO core (lines in, lines out);
//! [`authenticate`] does the blocking socket I/O and runs off the shard.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sluice_protocols::smtp::server::{AuthRequest, AuthVerdict};

/// Postfix's `AUTH_TIMEOUT` for the auth socket.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest line read from Dovecot; longer ones are a protocol error.
pub const MAX_LINE: usize = 16 * 1024;
/// The handshake ends within this many lines (MECH lines included).
const MAX_HANDSHAKE_LINES: usize = 256;

const REQUEST_ID: u32 = 1;

/// What the request says about the connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub client: IpAddr,
    pub local: Option<IpAddr>,
    /// TLS is active (Dovecot's `secured`).
    pub secured: bool,
}

/// The protocol's state: feed it Dovecot's lines, it says what to do next.
#[derive(Debug, Default)]
pub struct Exchange {
    have_mech: bool,
    plain_offered: bool,
    handshake_done: bool,
    lines: usize,
}

/// What a line from Dovecot means.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Read another line.
    More,
    /// The handshake ended: send [`auth_line`].
    Ready,
    /// The answer to our request.
    Done(AuthVerdict),
}

impl Exchange {
    /// Our handshake lines.
    pub fn hello(pid: u32) -> String {
        format!("VERSION\t1\t1\nCPID\t{pid}\n")
    }

    /// One line from Dovecot (without its LF). `Err` is a temporary
    /// failure's reason, for the log and `454 4.7.0`.
    pub fn line(&mut self, line: &str) -> Result<Step, String> {
        let mut fields = line.split('\t');
        let cmd = fields.next().unwrap_or_default();
        if !self.handshake_done {
            self.lines += 1;
            if self.lines > MAX_HANDSHAKE_LINES {
                return Err("SASL: handshake too long".into());
            }
            return match cmd {
                "VERSION" => match fields.next() {
                    Some("1") => Ok(Step::More),
                    Some(major) => Err(format!(
                        "SASL: Protocol version mismatch ({} vs. 1)",
                        printable(major)
                    )),
                    None => Err("SASL: Protocol version error".into()),
                },
                "MECH" => {
                    self.have_mech = true;
                    if fields
                        .next()
                        .is_some_and(|m| m.eq_ignore_ascii_case("PLAIN"))
                    {
                        self.plain_offered = true;
                    }
                    Ok(Step::More)
                }
                "SPID" if !self.have_mech => Err(
                    "SASL: Connected to wrong auth socket (auth-master instead of auth-client)"
                        .into(),
                ),
                "DONE" if !self.plain_offered => {
                    Err("SASL: Dovecot does not offer the PLAIN mechanism".into())
                }
                "DONE" => {
                    self.handshake_done = true;
                    Ok(Step::Ready)
                }
                _ => Ok(Step::More),
            };
        }
        let id = fields.next();
        if id.and_then(|i| i.parse::<u32>().ok()) != Some(REQUEST_ID) {
            // A reply to another request: Postfix skips it.
            return Ok(Step::More);
        }
        let args: Vec<&str> = fields.collect();
        let field = |name: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(name))
                .map(printable)
        };
        match cmd {
            "OK" => match field("user=") {
                Some(username) => Ok(Step::Done(AuthVerdict::Ok { username })),
                // Postfix: "missing Dovecot server OK username field".
                None => Ok(Step::Done(AuthVerdict::Fail {
                    reason: "Authentication backend error".into(),
                })),
            },
            "FAIL" if args.contains(&"temp") => Ok(Step::Done(AuthVerdict::Temp {
                reason: field("reason=").unwrap_or_else(|| "(reason unavailable)".into()),
            })),
            "FAIL" => Ok(Step::Done(AuthVerdict::Fail {
                reason: field("reason=").unwrap_or_else(|| "(reason unavailable)".into()),
            })),
            "CONT" => Err("SASL: unexpected CONT from Dovecot for PLAIN".into()),
            _ => Ok(Step::More),
        }
    }
}

/// Our AUTH line for `request` (PLAIN, whatever the client's mechanism).
pub fn auth_line(request: &AuthRequest, peer: &Peer) -> String {
    let mut plain = Vec::with_capacity(request.username.len() + request.password.len() + 2);
    plain.extend_from_slice(request.authzid.as_bytes());
    plain.push(0);
    plain.extend_from_slice(request.username.as_bytes());
    plain.push(0);
    plain.extend_from_slice(request.password.as_bytes());
    let mut line = format!("AUTH\t{REQUEST_ID}\tPLAIN\tservice=smtp\tnologin");
    if let Some(local) = peer.local {
        line.push_str(&format!("\tlip={local}"));
    }
    line.push_str(&format!("\trip={}", peer.client));
    if peer.secured {
        line.push_str("\tsecured");
    }
    line.push_str("\tresp=");
    line.push_str(&B64.encode(&plain));
    line.push('\n');
    line
}

/// One login over Dovecot's socket at `path`, blocking (run it off the
/// shard). `Err` is a socket or protocol problem (a temporary failure),
/// worded for the log.
pub fn authenticate(
    path: &Path,
    request: &AuthRequest,
    peer: &Peer,
) -> Result<AuthVerdict, String> {
    let stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "SASL: Connect to Dovecot auth socket '{}' failed: {e}",
            path.display()
        )
    })?;
    let io = |e: std::io::Error| format!("SASL: Dovecot auth socket: {e}");
    stream.set_read_timeout(Some(AUTH_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(AUTH_TIMEOUT)).map_err(io)?;
    let mut writer = stream.try_clone().map_err(io)?;
    writer
        .write_all(Exchange::hello(std::process::id()).as_bytes())
        .map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut exchange = Exchange::default();
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            return Err("Connection lost to authentication server".into());
        }
        if buf.last() != Some(&b'\n') {
            return Err("SASL: line from Dovecot too long".into());
        }
        let line = String::from_utf8_lossy(&buf[..buf.len() - 1]);
        match exchange.line(&line)? {
            Step::More => {}
            Step::Ready => writer
                .write_all(auth_line(request, peer).as_bytes())
                .map_err(io)?,
            Step::Done(verdict) => return Ok(verdict),
        }
    }
}

/// Postfix's `printable()`: control characters become `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocols::smtp::server::Mechanism;

    fn handshake(e: &mut Exchange) -> Result<Step, String> {
        for l in [
            "VERSION\t1\t2",
            "MECH\tPLAIN\tplaintext",
            "MECH\tLOGIN\tplaintext",
            "SPID\t7",
            "CUID\t3",
            "COOKIE\tabcd",
        ] {
            assert_eq!(e.line(l)?, Step::More, "{l}");
        }
        e.line("DONE")
    }

    #[test]
    fn handshake_then_ok_fail_temp() {
        let mut e = Exchange::default();
        assert_eq!(handshake(&mut e), Ok(Step::Ready));
        assert_eq!(
            e.line("OK\t2\tuser=other"),
            Ok(Step::More),
            "another request's reply"
        );
        assert_eq!(
            e.line("OK\t1\tuser=jane@example.com"),
            Ok(Step::Done(AuthVerdict::Ok {
                username: "jane@example.com".into()
            }))
        );
        let mut e = Exchange::default();
        handshake(&mut e).expect("handshake");
        assert_eq!(
            e.line("FAIL\t1\tuser=jane\treason=Password mismatch"),
            Ok(Step::Done(AuthVerdict::Fail {
                reason: "Password mismatch".into()
            }))
        );
        let mut e = Exchange::default();
        handshake(&mut e).expect("handshake");
        assert_eq!(
            e.line("FAIL\t1\ttemp\treason=db down"),
            Ok(Step::Done(AuthVerdict::Temp {
                reason: "db down".into()
            }))
        );
        let mut e = Exchange::default();
        handshake(&mut e).expect("handshake");
        assert_eq!(
            e.line("OK\t1"),
            Ok(Step::Done(AuthVerdict::Fail {
                reason: "Authentication backend error".into()
            }))
        );
    }

    #[test]
    fn wrong_socket_and_version() {
        let mut e = Exchange::default();
        e.line("VERSION\t1\t2").expect("version");
        let err = e.line("SPID\t7").expect_err("master socket");
        assert!(err.contains("auth-master instead of auth-client"), "{err}");
        let mut e = Exchange::default();
        assert!(e
            .line("VERSION\t2\t0")
            .expect_err("major")
            .contains("mismatch (2 vs. 1)"));
        let mut e = Exchange::default();
        e.line("MECH\tLOGIN").expect("mech");
        assert!(e.line("DONE").expect_err("no plain").contains("PLAIN"));
    }

    #[test]
    fn auth_line_is_postfixs_with_plain_resp() {
        let request = AuthRequest {
            mechanism: Mechanism::Login,
            authzid: String::new(),
            username: "jane".into(),
            password: "secret".into(),
        };
        let peer = Peer {
            client: "192.0.2.7".parse().expect("ip"),
            local: Some("127.0.0.1".parse().expect("ip")),
            secured: true,
        };
        assert_eq!(
            auth_line(&request, &peer),
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tsecured\tresp=AGphbmUAc2VjcmV0\n"
        );
    }
}
