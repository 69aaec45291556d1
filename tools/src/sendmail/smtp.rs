//! `sendmail -bs`: an SMTP conversation on standard input and output
//! (Postfix runs `smtpd -S`), driving the same [`Session`] state machine as
//! the network server. Each message is deposited in the maildrop, like
//! any other sendmail submission, and its maildrop file name is the queue
//! ID in `250 2.0.0 Ok: queued as …`.
//!
//! Differences from the network server, all because the peer is a local
//! user's program on a pipe, not a stranger on a socket:
//! - every recipient is accepted (no relay restrictions; Postfix applies
//!   none either unless run as mail_owner);
//! - no error sleep (`smtpd_error_sleep_time`) and no timeout;
//! - pipelining without EHLO is allowed, and bare LF line endings work
//!   throughout, including `\n.\n` at the end of DATA: scripts write
//!   LF-only SMTP, and there is no upstream MTA to smuggle through.

use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use sluice_engine::config::Config;
use sluice_protocols::smtp::reply::Reply;
use sluice_protocols::smtp::server::{AcceptAll, ServerConfig, Session, Want};
use sluice_protocols::smtp::BareNewline;
use sluice_storage::maildrop::{self, MaildropMessage};

use super::{exit, now_us, submit, Diag};

/// Bytes read from standard input at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The session's parameters: main.cf's smtpd limits, relaxed as the module
/// docs say.
fn server_config(config: &Config) -> ServerConfig {
    let p = &config.params;
    let s = &p.smtpd;
    ServerConfig {
        hostname: p.myhostname.clone(),
        banner: s.smtpd_banner.clone(),
        message_size_limit: s.message_size_limit,
        recipient_limit: s.smtpd_recipient_limit,
        line_length_limit: s.line_length_limit,
        hard_error_limit: s.smtpd_hard_error_limit,
        soft_error_limit: s.smtpd_soft_error_limit,
        junk_command_limit: s.smtpd_junk_command_limit,
        error_sleep: Duration::ZERO,
        bare_newline: BareNewline::No,
        forbid_unauth_pipelining: false,
        disable_vrfy: s.disable_vrfy_command,
        // `sendmail -bs` runs as the submitting user: nothing to log in to.
        sasl_auth_enable: false,
        // `sendmail -bs` talks over a pipe: no TLS to start.
        starttls: false,
        tls_required: false,
        tls_auth_only: false,
    }
}

/// Runs the conversation until QUIT, a fatal session error or end of
/// input. Returns the exit status.
pub(super) fn run(
    diag: &mut Diag<'_>,
    config: &Config,
    uid: u32,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> i32 {
    let mut session = Session::new(Rc::new(server_config(config)));
    session.greet();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let progress = session.receive(&pending, &mut AcceptAll);
        pending.drain(..progress.consumed);
        if progress.want == Want::Message {
            let result = session
                .take_message()
                .ok_or_else(write_error_reply)
                .and_then(|msg| {
                    let m = MaildropMessage {
                        uid,
                        fullname: None,
                        submitted_us: now_us(),
                        envelope: msg.envelope,
                        content: msg.content,
                    };
                    if let Err(e) = maildrop::check_envelope(&m) {
                        diag.warn(&format!("uid={uid}: {e}"));
                        return Err(write_error_reply());
                    }
                    submit::submit(config, &m, diag.stderr).map_err(|e| {
                        match e {
                            submit::SubmitError::Io(e) => {
                                diag.warn(&format!("uid={uid}: error writing queue file: {e}"))
                            }
                            submit::SubmitError::NoPostdrop(why) => diag
                                .warn(&format!("uid={uid}: cannot write the maildrop, and {why}")),
                            submit::SubmitError::Postdrop(code) => {
                                diag.warn(&format!("uid={uid}: postdrop exited with status {code}"))
                            }
                        }
                        write_error_reply()
                    })
                });
            match result {
                Ok(name) => session.message_done(Ok(&name)),
                Err(reply) => session.message_done(Err(reply)),
            }
        }
        if let Err(e) = flush(stdout, session.output()) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return exit::OK;
            }
            return diag.fatal(exit::TEMPFAIL, &format!("write error: {e}"));
        }
        match progress.want {
            Want::Message => continue,
            // Local submission has no per-client rate limits (AcceptAll
            // never asks); an answer keeps the session going regardless.
            Want::Decide(_) => {
                session.decide(Ok(()));
                continue;
            }
            // Never asked (starttls is off): treat it as the end.
            Want::Close | Want::StartTls => return exit::OK,
            // AUTH is never enabled here; should a request come, refuse it.
            Want::Authenticate => {
                if session.take_auth_request().is_some() {
                    session.auth_done(sluice_protocols::smtp::server::AuthVerdict::Fail {
                        reason: "authentication not available".into(),
                    });
                }
                continue;
            }
            Want::More => {}
        }
        let n = loop {
            match stdin.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return diag.fatal(exit::DATAERR, &format!("error reading input: {e}")),
            }
        };
        if n == 0 {
            // The client went away without QUIT, which is not our error.
            return exit::OK;
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// Postfix's reply when the queue file cannot be written.
fn write_error_reply() -> Reply {
    Reply::new(451, (4, 3, 0), "Error: queue file write error")
}

/// The maildrop file name, shown as the queue ID.
fn flush(out: &mut dyn Write, buf: &mut Vec<u8>) -> io::Result<()> {
    if !buf.is_empty() {
        out.write_all(buf)?;
        buf.clear();
    }
    out.flush()
}
