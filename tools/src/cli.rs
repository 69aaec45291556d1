//! Argument parsing and dispatch.
//!
//! `sluice [-c DIR] COMMAND …`, or a Postfix name through a symlink
//! (`mailq` = `postqueue -p`). Errors go to stderr as `sluice: fatal: …`
//! with a sysexits code.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use sluice_engine::config::{self, Config};
use sluice_engine::master;

/// sysexits(3) codes used by the commands.
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 64;
    pub const UNAVAILABLE: i32 = 69;
    pub const NOPERM: i32 = 77;
    pub const SOFTWARE: i32 = 70;
    pub const OSERR: i32 = 71;
    pub const TEMPFAIL: i32 = 75;
    pub const CANTCREAT: i32 = 73;
    pub const CONFIG: i32 = 78;
}

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Postfix-compatible mail transfer agent",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The configuration directory (main.cf, master.cf). Without main.cf
    /// there, Sluice runs on its embedded default (SMTP on 127.0.0.1:2525,
    /// queue in ./sluice-queue).
    #[arg(short = 'c', long = "config-dir", global = true, default_value = ".")]
    pub config_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the mail system in the foreground (stop with SIGTERM or Ctrl-C).
    #[command(name = "start-fg")]
    StartFg,
    /// Start the mail system in the background.
    Start,
    /// Stop the mail system: stop accepting, let sessions finish, exit.
    Stop,
    /// Is the mail system running?
    Status,
    /// Re-read main.cf, master.cf and tables without dropping sessions or mail.
    Reload,
    /// Check the configuration.
    Check,
    /// List the queue (postqueue -p / -j).
    Postqueue(PostqueueArgs),
    /// List the queue, as `postqueue -p`.
    Mailq,
    /// Make every deferred message due now and scan maildrop/ (postqueue -f).
    Flush,
    /// Queue administration: -d -h -H -r -e -f with QID, ALL or - (postsuper).
    #[command(disable_help_flag = true)]
    Postsuper(RawArgs),
    /// Show a queued message: -q QID [-e -h -b] (postcat).
    #[command(disable_help_flag = true)]
    Postcat(RawArgs),
    /// Show or edit parameters (postconf).
    #[command(disable_help_flag = true)]
    Postconf(RawArgs),
    /// Inject mail (sendmail; -C DIR names the config directory).
    #[command(disable_help_flag = true)]
    Sendmail(RawArgs),
    /// Send load to an SMTP server (Sluice's smtp-source).
    #[command(disable_help_flag = true)]
    Source(RawArgs),
    /// An SMTP sink for tests and benchmarks (Sluice's smtp-sink).
    #[command(disable_help_flag = true)]
    Sink(RawArgs),
    /// Make the Postfix-named symlinks (sendmail, mailq, postqueue, …) in DIR,
    /// and (as root) install the setgid postdrop there.
    #[command(name = "install-links")]
    InstallLinks { dir: PathBuf },
    /// Repair the queue directory's owners and modes (root only).
    #[command(name = "set-permissions")]
    SetPermissions,
}

/// Arguments passed through to a command that parses its own (Postfix's
/// getopt conventions rather than clap's).
#[derive(clap::Args, Debug)]
pub struct RawArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub use crate::install::LINK_NAMES;

#[derive(clap::Args, Debug)]
pub struct PostqueueArgs {
    /// Print the queue in Postfix's mailq layout.
    #[arg(short = 'p')]
    pub print: bool,
    /// Print the queue as JSON lines.
    #[arg(short = 'j')]
    pub json: bool,
    /// Flush: every deferred message becomes due now.
    #[arg(short = 'f')]
    pub flush: bool,
    /// Flush the mail for one site (its deferred mail becomes due).
    #[arg(short = 's', value_name = "SITE")]
    pub site: Option<String>,
    /// Deliver one message now.
    #[arg(short = 'i', value_name = "QID")]
    pub qid: Option<String>,
}

fn fatal(code: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("sluice: fatal: {msg}");
    code
}

fn load(dir: &Path) -> Result<Config, i32> {
    match config::load(dir) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("sluice: warning: {w}");
            }
            Ok(c)
        }
        Err(e) => Err(fatal(exit::CONFIG, e)),
    }
}

/// For the commands that run the daemon or judge its configuration
/// (`check`, `start`, `start-fg`, `reload`): every parameter that is set
/// but not implemented, and that Sluice will not run without, is a fatal
/// line; then EX_CONFIG.
fn refuse_unimplemented(config: &Config) -> Result<(), i32> {
    if config.refusals.is_empty() {
        return Ok(());
    }
    for r in &config.refusals {
        eprintln!("sluice: fatal: {r}");
    }
    Err(exit::CONFIG)
}

/// Map `argv[0]` to the arguments `sluice` would take.
fn rewrite_argv0(args: Vec<OsString>) -> Vec<OsString> {
    let name = args
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut v: Vec<OsString> = match name.as_str() {
        "mailq" => vec!["sluice".into(), "postqueue".into(), "-p".into()],
        "postqueue" | "postsuper" | "postcat" | "postconf" | "sendmail" => {
            vec!["sluice".into(), name.as_str().into()]
        }
        _ => return args,
    };
    // Postfix's commands take $MAIL_CONFIG unless told -c.
    let told = args.iter().any(|a| a == "-c" || a == "--config-dir");
    if let (false, Some(dir)) = (told, std::env::var_os("MAIL_CONFIG")) {
        v.push("-c".into());
        v.push(dir);
    }
    v.extend(args.into_iter().skip(1));
    v
}

/// The config directory a Postfix-named command uses when it is not told:
/// `$MAIL_CONFIG`, as Postfix's commands do, else the current directory.
fn default_config_dir() -> PathBuf {
    std::env::var_os("MAIL_CONFIG").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Commands that parse their own options run before clap and before the
/// configuration is loaded (postconf must show a broken config; sendmail
/// takes -C; the load tools need none).
fn self_parsing(args: &[OsString]) -> Option<i32> {
    let argv0 = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let s = |i: usize| {
        args.iter()
            .skip(i)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<String>>()
    };
    match argv0.as_str() {
        "sendmail" => return Some(crate::sendmail::main("sendmail", &s(1))),
        "postconf" => return Some(crate::postconf::main(&s(1), &default_config_dir())),
        _ => {}
    }
    // `sluice [-c DIR] <cmd> …`
    let mut i = 1;
    let mut dir = None;
    while i < args.len() {
        match args[i].to_str() {
            Some("-c") | Some("--config-dir") => {
                dir = args.get(i + 1).map(PathBuf::from);
                i += 2;
            }
            _ => break,
        }
    }
    let cmd = args.get(i)?.to_str()?;
    let rest = s(i + 1);
    match cmd {
        "source" => Some(crate::load::source_main(&rest)),
        "sink" => Some(crate::load::sink_main(&rest)),
        "postconf" => Some(crate::postconf::main(
            &rest,
            &dir.unwrap_or_else(default_config_dir),
        )),
        "sendmail" => {
            // sendmail names its config directory with -C.
            let mut v = Vec::new();
            if let Some(d) = dir {
                v.push("-C".to_string());
                v.push(d.to_string_lossy().into_owned());
            }
            v.extend(rest);
            Some(crate::sendmail::main("sendmail", &v))
        }
        _ => None,
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    if let Some(code) = self_parsing(&args) {
        return code;
    }
    let args = rewrite_argv0(args);
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            };
            let _ = e.print();
            return code;
        }
    };
    run(cli)
}

fn maillog_path(config: &Config) -> PathBuf {
    config.params.queue_directory.join("maillog")
}

pub fn run(cli: Cli) -> i32 {
    let config = match load(&cli.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if matches!(
        cli.command,
        Command::StartFg | Command::Start | Command::Check | Command::Reload
    ) {
        if let Err(code) = refuse_unimplemented(&config) {
            return code;
        }
    }
    match cli.command {
        Command::StartFg => {
            sluice_engine::logging::init(&config.params.myhostname);
            match master::run_foreground(config) {
                Ok(()) => exit::OK,
                Err(e) => {
                    tracing::error!(target: "master", "fatal: {e}");
                    fatal(daemon_exit_code(&e), e)
                }
            }
        }
        Command::Start => {
            let exe = match std::env::current_exe() {
                Ok(e) => e,
                Err(e) => return fatal(exit::OSERR, format!("cannot find my own executable: {e}")),
            };
            let log = maillog_path(&config);
            match master::start_background(&config, &exe, &log) {
                Ok(pid) => {
                    eprintln!(
                        "sluice: starting the mail system (pid {pid}); log: {}",
                        log.display()
                    );
                    exit::OK
                }
                Err(e) => fatal(daemon_exit_code(&e), e),
            }
        }
        Command::Stop => stop(&config),
        Command::Status => status(&config),
        Command::Reload => match master::reload(&config.params.queue_directory) {
            Ok(_) => {
                eprintln!("sluice: refreshing the mail system");
                exit::OK
            }
            Err(e) => fatal(exit::UNAVAILABLE, e),
        },
        Command::Check => check(&config),
        Command::Mailq => crate::postqueue::list(&config, false),
        Command::Flush => crate::postqueue::flush(&config),
        Command::Postqueue(a) => {
            let modes = [a.print, a.json, a.flush, a.site.is_some(), a.qid.is_some()];
            if modes.iter().filter(|m| **m).count() != 1 {
                return fatal(exit::USAGE, "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site");
            }
            if a.flush {
                crate::postqueue::flush(&config)
            } else if let Some(site) = &a.site {
                crate::postqueue::flush_site(&config, site)
            } else if let Some(qid) = &a.qid {
                crate::postqueue::flush_one(&config, qid)
            } else {
                crate::postqueue::list(&config, a.json)
            }
        }
        Command::Postsuper(a) => crate::postsuper::main(&a.args, &config),
        Command::Postcat(a) => crate::postcat::main(&a.args, &config),
        Command::InstallLinks { dir } => crate::install::install_links(&config, &dir),
        Command::SetPermissions => crate::install::set_permissions(&config),
        // Handled before the configuration is loaded (self_parsing).
        Command::Postconf(_) | Command::Sendmail(_) | Command::Source(_) | Command::Sink(_) => {
            fatal(exit::SOFTWARE, "internal dispatch error")
        }
    }
}

/// The exit code for a daemon that could not start or had to stop:
/// EX_CONFIG when the machine's set-up refuses it, else EX_TEMPFAIL.
fn daemon_exit_code(e: &master::MasterError) -> i32 {
    if e.is_config() {
        exit::CONFIG
    } else {
        exit::TEMPFAIL
    }
}

/// `sluice stop`, in `postfix stop`'s words: it waits until the daemon's
/// process has exited. Not running is exit 1, as Postfix has it.
fn stop(config: &Config) -> i32 {
    let queue_dir = &config.params.queue_directory;
    if master::running_pid(queue_dir).is_none() {
        eprintln!("sluice: fatal: the mail system is not running");
        return 1;
    }
    eprintln!("sluice: stopping the mail system");
    let waiting = || eprintln!("sluice: waiting for the mail system to terminate");
    match master::stop(queue_dir, waiting) {
        Ok(pid) => {
            eprintln!("sluice: the mail system has terminated (pid {pid})");
            exit::OK
        }
        Err(master::MasterError::NotRunning) => {
            eprintln!("sluice: fatal: the mail system is not running");
            1
        }
        Err(e) => fatal(exit::TEMPFAIL, e),
    }
}

/// `sluice status`: running or not, pid, shards, and queue counts. As
/// `postfix status`, exit 0 only when the mail system is running (ready:
/// every listener accepts), 1 otherwise.
fn status(config: &Config) -> i32 {
    let queue_dir = &config.params.queue_directory;
    let pid = match master::daemon_state(queue_dir) {
        master::DaemonState::NotRunning => {
            eprintln!("sluice: the mail system is not running");
            return 1;
        }
        master::DaemonState::Starting(pid) => {
            eprintln!("sluice: the mail system is starting: PID: {pid}");
            return 1;
        }
        master::DaemonState::Running(pid) => pid,
    };
    let shards = sluice_engine::control::shard_dirs(queue_dir).map_or(0, |v| v.len());
    let counts = crate::postqueue::collect(config).map(|entries| {
        let mut by: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for e in entries {
            *by.entry(e.queue_name).or_default() += 1;
        }
        by.iter()
            .map(|(q, n)| format!("{q}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let counts = match counts {
        Ok(c) if c.is_empty() => "queue empty".to_string(),
        Ok(c) => c,
        Err(e) => format!("queue unreadable: {e}"),
    };
    eprintln!("sluice: the mail system is running: PID: {pid}, shards: {shards}, {counts}");
    exit::OK
}

/// `sluice check`: the configuration loaded (warnings were printed), the
/// queue directory is usable, and (daemon down) its log replays cleanly.
fn check(config: &Config) -> i32 {
    let queue_dir = &config.params.queue_directory;
    if let Err(e) = std::fs::create_dir_all(queue_dir) {
        return fatal(
            exit::CANTCREAT,
            format!("queue directory {}: {e}", queue_dir.display()),
        );
    }
    let probe = queue_dir.join(format!(".check.{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"") {
        return fatal(
            exit::CANTCREAT,
            format!(
                "queue directory {} is not writable: {e}",
                queue_dir.display()
            ),
        );
    }
    let _ = std::fs::remove_file(&probe);
    if master::running_pid(queue_dir).is_none() {
        if let Err(e) = sluice_engine::control::read_offline(queue_dir) {
            return fatal(exit::SOFTWARE, format!("queue log: {e}"));
        }
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailq_by_argv0() {
        let v = rewrite_argv0(vec!["/usr/bin/mailq".into(), "-c".into(), "/etc/x".into()]);
        let cli = Cli::try_parse_from(v).unwrap();
        assert!(matches!(
            cli.command,
            Command::Postqueue(PostqueueArgs {
                print: true,
                json: false,
                ..
            })
        ));
        assert_eq!(cli.config_dir, PathBuf::from("/etc/x"));
    }

    #[test]
    fn config_dir_before_or_after_the_command() {
        let a = Cli::try_parse_from(["sluice", "-c", "/d", "start-fg"]).unwrap();
        let b = Cli::try_parse_from(["sluice", "start-fg", "-c", "/d"]).unwrap();
        assert_eq!(a.config_dir, b.config_dir);
    }
}
