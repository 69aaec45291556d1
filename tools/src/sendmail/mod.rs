//! `sendmail`: Postfix's sendmail(1) command, in its enqueue role.
//!
//! **Role.** Read a message from standard input (or an SMTP conversation
//! with `-bs`), and deposit it in `queue_directory/maildrop/` for the
//! daemon's pickup service ([`sluice_storage::maildrop`]). It never talks
//! to the daemon, so mail can be submitted while the mail system is down.
//! Options are Postfix's (POSTFIX-FACTS §1, [`options`]); `-bp` lists the
//! queue as `postqueue -p` does.
//!
//! **Trust.** The invoking user and everything they give (arguments,
//! input) are untrusted; the configuration directory is trusted. Nothing
//! is set-uid or set-gid here: a user who may write the maildrop (its
//! owner, root, a private instance's user) deposits directly; anyone else
//! goes through the small setgid `postdrop` program ([`submit`],
//! [`crate::postdrop`]), as with Postfix. NUL, CR and LF in any envelope
//! field (sender, recipients, ENVID, full name) are refused (65) before
//! anything is written.
//!
//! **Touches.** Reads main.cf; creates `maildrop/` if missing and writes
//! one file per message into it, or runs postdrop to.
//!
//! **Limits.** `message_size_limit` bounds what is read from standard
//! input (and each `-bs` message).
//!
//! **Choices that differ from Postfix.**
//! - Exit status: Postfix means to exit with sysexits(3) codes, but its
//!   fatal-error hook exits 75 first, so every failure is 75. We use the
//!   codes it means: 64 usage and no recipients, 65 unreadable or
//!   oversized input, 69 unavailable, 71 no login name, 75 queue write
//!   errors, 77 permission (authorized_submit_users, or a maildrop we may
//!   not write), 78 configuration.
//! - `-t` is done here, not in cleanup: the maildrop file carries final
//!   recipients. Command-line recipients are added to the header ones, as
//!   in Postfix ≥ 2.1.
//! - Without `-t` and without recipients we stop before reading the
//!   message (Postfix reads it first, then fails with the same text).
//! - An argument with no address in it adds no recipient (Postfix adds an
//!   empty one, which fails later).
//! - Not implemented, with a warning: VERP (`-XV`), delivery reports
//!   (`-v`), queue flushes (`-q`, `-qR`, `-qI`: exit 0), alias databases
//!   (`-bi`, `newaliases`: exit 0). Refused: `-bv` (69), `-bd` (69; use
//!   `sluice start`).
//! - `authorized_submit_users`: login names, `!name`, `/file/name`,
//!   `static:…` (matches everyone) and the fixed-key tables
//!   ([`sluice_engine::user_acl`]); a table Sluice cannot read is a fatal
//!   configuration error (78).
//!
//! **Wiring.** `sendmail` / `mailq` / `newaliases` as argv\[0\] call
//! [`main`] with the basename of argv\[0\] and the remaining arguments.

mod addrlist;
mod input;
pub mod options;
mod smtp;
mod submit;
#[cfg(test)]
mod tests;

use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_engine::config::{self, Config};
use sluice_engine::passwd;
use sluice_protocols::envelope::{Envelope, MailParams, Recipient};
use sluice_storage::maildrop::{self, MaildropMessage};

use input::InputError;
use options::{Mode, Options};

/// sysexits(3) codes (see the module docs for which failure gets which).
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 64;
    pub const DATAERR: i32 = 65;
    pub const UNAVAILABLE: i32 = 69;
    pub const OSERR: i32 = 71;
    pub const TEMPFAIL: i32 = 75;
    pub const NOPERM: i32 = 77;
    pub const CONFIG: i32 = 78;
}

/// The environment variable naming the configuration directory.
const MAIL_CONFIG: &str = "MAIL_CONFIG";
/// The environment variable with the sender's full name (before GECOS).
const NAME: &str = "NAME";
/// Read buffer for standard input.
const INPUT_BUFFER: usize = 64 * 1024;

/// Runs sendmail on the process's standard streams. `argv0` selects the
/// mode as in Postfix (`mailq`, `newaliases`, anything else enqueues);
/// `args` excludes it. Returns the exit status.
pub fn main(argv0: &str, args: &[String]) -> i32 {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let stderr = io::stderr();
    main_with_io(
        argv0,
        args,
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// [`main`] with the standard streams given (tests pass buffers). The
/// configuration directory is `-C`, else `$MAIL_CONFIG`, else `.`.
pub fn main_with_io(
    argv0: &str,
    args: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let prog = Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "sendmail".to_owned());
    let mut diag = Diag {
        prog: &prog,
        stderr,
    };
    let opts = match options::parse(&prog, args) {
        Ok(o) => o,
        Err(e) => {
            if let Some(complaint) = &e.getopt {
                diag.line(complaint);
            }
            return diag.fatal(exit::USAGE, &e.message);
        }
    };
    for w in &opts.warnings {
        diag.warn(w);
    }
    let dir = opts
        .config_dir
        .clone()
        .or_else(|| std::env::var_os(MAIL_CONFIG).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let config = match config::load(&dir) {
        Ok(c) => c,
        Err(e) => return diag.fatal(exit::CONFIG, &e.to_string()),
    };
    for w in &config.warnings {
        diag.warn(w);
    }
    if opts.queue_interval.is_some() && opts.mode != Mode::Daemon {
        return exit::OK;
    }
    let needs_no_recipient = |what: &str, diag: &mut Diag<'_>| -> Option<i32> {
        (!opts.recipients.is_empty())
            .then(|| diag.fatal(exit::USAGE, &format!("{what} requires no recipient")))
    };
    match opts.mode {
        Mode::Enqueue if opts.flush_site.is_some() || opts.flush_id.is_some() => {
            let what = if opts.flush_site.is_some() {
                "flush site"
            } else {
                "flush queue_id"
            };
            if let Some(code) = needs_no_recipient(what, &mut diag) {
                return code;
            }
            diag.warn("queue flush is not implemented yet; deferred mail is retried on schedule");
            exit::OK
        }
        Mode::Enqueue => enqueue(&mut diag, &opts, &config, stdin),
        Mode::Mailq => {
            if let Some(code) = needs_no_recipient("display queue mode", &mut diag) {
                return code;
            }
            crate::postqueue::list(&config, false)
        }
        Mode::FlushQueue => {
            if let Some(code) = needs_no_recipient("flush queue mode", &mut diag) {
                return code;
            }
            diag.warn("queue flush is not implemented yet; deferred mail is retried on schedule");
            exit::OK
        }
        Mode::Daemon => {
            if let Some(code) = needs_no_recipient("daemon mode", &mut diag) {
                return code;
            }
            diag.fatal(
                exit::UNAVAILABLE,
                "-bd is not supported: start the mail system with `sluice start`",
            )
        }
        Mode::NewAliases => {
            if let Some(code) = needs_no_recipient("alias initialization mode", &mut diag) {
                return code;
            }
            diag.warn("alias databases are not implemented yet; nothing to rebuild");
            exit::OK
        }
        Mode::StandAlone => {
            if let Some(code) = needs_no_recipient("stand-alone mode", &mut diag) {
                return code;
            }
            let user = User::current();
            if let Err(code) = check_submit_acl(&mut diag, &config, &user) {
                return code;
            }
            if let Err(code) = ensure_maildrop(&mut diag, &config, &user.display()) {
                return code;
            }
            smtp::run(&mut diag, &config, user.uid, stdin, stdout)
        }
        Mode::Ignore => exit::OK,
    }
}

/// Reads one message and deposits it.
fn enqueue(diag: &mut Diag<'_>, opts: &Options, config: &Config, stdin: &mut dyn Read) -> i32 {
    if opts.verify {
        return diag.fatal(exit::UNAVAILABLE, "-bv is not implemented");
    }
    let user = User::current();
    if let Err(code) = check_submit_acl(diag, config, &user) {
        return code;
    }
    let sender = match &opts.sender {
        Some(given) => {
            let addrs = addrlist::parse(given);
            if addrs.len() > 1 {
                diag.warn(&format!("-f option specified malformed sender: {given}"));
            }
            addrs.into_iter().next().unwrap_or_default()
        }
        None => match &user.name {
            Some(name) => name.clone(),
            None => {
                return diag.fatal(
                    exit::OSERR,
                    &format!("no login name found for user ID {}", user.uid),
                )
            }
        },
    };
    // Postfix's prefix for errors about this submission: "sender(uid): ".
    let who = format!("{sender}({})", user.uid);
    if opts.verp.is_some() {
        if sender.is_empty() {
            return diag.fatal(
                exit::USAGE,
                &format!("{who}: -V option requires non-null sender address"),
            );
        }
        diag.warn("VERP (-XV) is not implemented; the message is sent without it");
    }
    if opts.verbose == 1 {
        diag.warn("delivery status reports (-v) are not implemented; none will be mailed");
    }
    let mut recipients: Vec<String> = opts
        .recipients
        .iter()
        .flat_map(|arg| addrlist::parse(arg))
        .filter(|a| !a.is_empty())
        .collect();
    if recipients.is_empty() && !opts.extract_recipients {
        return diag.fatal(
            exit::USAGE,
            "Recipient addresses must be specified on the command line or via the -t option",
        );
    }
    if let Err(code) = ensure_maildrop(diag, config, &who) {
        return code;
    }
    let mut reader = BufReader::with_capacity(INPUT_BUFFER, stdin);
    let limit = config.params.smtpd.message_size_limit;
    let content = match input::read_message(&mut reader, opts.dot_ends_input, limit) {
        Ok(c) => c,
        Err(e @ (InputError::Read(_) | InputError::TooBig { .. })) => {
            return diag.fatal(exit::DATAERR, &format!("{who}: {e}"))
        }
    };
    let mut non_ascii_headers = false;
    if opts.extract_recipients {
        let found = input::header_recipients(&content);
        non_ascii_headers = found.non_ascii_headers;
        recipients.extend(found.addresses.into_iter().filter(|a| !a.is_empty()));
        if recipients.is_empty() {
            return diag.fatal(
                exit::USAGE,
                &format!("{who}: No recipient addresses found in message header"),
            );
        }
    }
    // SMTPUTF8 autodetection (Postfix's smtputf8_autodetect_classes
    // includes sendmail): UTF-8 in the envelope or the headers.
    let smtputf8 =
        non_ascii_headers || !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    let message = MaildropMessage {
        uid: user.uid,
        fullname: opts
            .fullname
            .clone()
            .or_else(|| std::env::var(NAME).ok().filter(|n| !n.is_empty()))
            .or_else(|| user.gecos_name()),
        submitted_us: now_us(),
        envelope: Envelope {
            sender,
            recipients: recipients
                .into_iter()
                .map(|address| Recipient {
                    address,
                    notify: opts.notify,
                    orcpt: None,
                })
                .collect(),
            mail: MailParams {
                size: None,
                body: opts.body,
                smtputf8,
                ret: opts.ret,
                envid: opts.envid.clone(),
            },
        },
        content,
    };
    if let Err(e) = maildrop::check_envelope(&message) {
        return diag.fatal(exit::DATAERR, &format!("{who}: {e}"));
    }
    match submit::submit(config, &message, diag.stderr) {
        Ok(_) => exit::OK,
        Err(e) => submit_failed(diag, &who, e),
    }
}

/// The exit for a message that was not deposited.
fn submit_failed(diag: &mut Diag<'_>, who: &str, e: submit::SubmitError) -> i32 {
    match e {
        submit::SubmitError::Io(e) => diag.fatal(
            exit::TEMPFAIL,
            &format!("{who}: error writing queue file: {e}"),
        ),
        submit::SubmitError::NoPostdrop(why) => diag.fatal(
            exit::NOPERM,
            &format!("{who}: cannot write the maildrop, and {why}"),
        ),
        // postdrop said why on standard error.
        submit::SubmitError::Postdrop(code) => code,
    }
}

/// Creates the maildrop if needed. A permission problem is not fatal here
/// (postdrop will write the file); anything else is (69: the queue is
/// unavailable).
fn ensure_maildrop(diag: &mut Diag<'_>, config: &Config, who: &str) -> Result<(), i32> {
    let queue_dir = &config.params.queue_directory;
    let params = &config.params;
    match maildrop::ensure_dir(queue_dir, &params.mail_owner, &params.setgid_group) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(diag.fatal(
            exit::UNAVAILABLE,
            &format!(
                "{who}: cannot use the maildrop {}: {e}",
                maildrop::maildrop_dir(queue_dir).display()
            ),
        )),
    }
}

/// `authorized_submit_users`: may this user submit mail? (No exception
/// for root, as in Postfix's sendmail.)
fn check_submit_acl(diag: &mut Diag<'_>, config: &Config, user: &User) -> Result<(), i32> {
    let acl = &config.params.authorized_submit_users;
    if acl.allows(user.name.as_deref().unwrap_or("unknown")) {
        Ok(())
    } else {
        Err(diag.fatal(
            exit::NOPERM,
            &format!("User {} is not allowed to submit mail", user.display()),
        ))
    }
}

/// The invoking user.
struct User {
    uid: u32,
    /// Login name, if the uid has a passwd entry.
    name: Option<String>,
    gecos: Option<String>,
}

impl User {
    fn current() -> User {
        // SAFETY: getuid() has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let entry = passwd::by_uid(uid);
        User {
            uid,
            name: entry.as_ref().map(|p| p.name.clone()),
            gecos: entry.and_then(|p| p.gecos),
        }
    }

    /// `name(uid)` for messages before the sender is known.
    fn display(&self) -> String {
        format!(
            "{}({})",
            self.name.as_deref().unwrap_or("unknown"),
            self.uid
        )
    }

    /// The GECOS full name as Postfix's `fullname()` takes it: up to the
    /// first comma, `&` standing for the login name capitalised.
    fn gecos_name(&self) -> Option<String> {
        let gecos = self.gecos.as_deref()?;
        let field = gecos.split(',').next().unwrap_or("");
        let login = self.name.as_deref().unwrap_or("");
        let mut cap = String::new();
        let mut chars = login.chars();
        if let Some(first) = chars.next() {
            cap.extend(first.to_uppercase());
            cap.push_str(chars.as_str());
        }
        let full = field.replace('&', &cap);
        (!full.trim().is_empty()).then_some(full)
    }
}

/// Now, in µs since the Unix epoch.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Diagnostics on standard error, Postfix-style: `prog: warning: …`,
/// `prog: fatal: …`.
struct Diag<'a> {
    prog: &'a str,
    stderr: &'a mut dyn Write,
}

impl Diag<'_> {
    fn line(&mut self, text: &str) {
        // Nothing useful can be done if standard error is gone.
        let _ = writeln!(self.stderr, "{}: {text}", self.prog);
    }

    fn warn(&mut self, text: &str) {
        self.line(&format!("warning: {text}"));
    }

    /// Prints `prog: fatal: text` and returns `code`, for `return`.
    fn fatal(&mut self, code: i32, text: &str) -> i32 {
        self.line(&format!("fatal: {text}"));
        code
    }
}
