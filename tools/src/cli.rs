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
    pub const SOFTWARE: i32 = 70;
    pub const OSERR: i32 = 71;
    pub const TEMPFAIL: i32 = 75;
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
    /// Check the configuration.
    Check,
    /// List the queue (postqueue -p / -j).
    Postqueue(PostqueueArgs),
    /// List the queue, as `postqueue -p`.
    Mailq,
}

#[derive(clap::Args, Debug)]
pub struct PostqueueArgs {
    /// Print the queue in Postfix's mailq layout.
    #[arg(short = 'p')]
    pub print: bool,
    /// Print the queue as JSON lines.
    #[arg(short = 'j')]
    pub json: bool,
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
    match name.as_str() {
        "mailq" => {
            let mut v: Vec<OsString> = vec!["sluice".into(), "postqueue".into(), "-p".into()];
            v.extend(args.into_iter().skip(1));
            v
        }
        "postqueue" => {
            let mut v: Vec<OsString> = vec!["sluice".into(), "postqueue".into()];
            v.extend(args.into_iter().skip(1));
            v
        }
        _ => args,
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
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
    match cli.command {
        Command::StartFg => {
            sluice_engine::logging::init(&config.params.myhostname);
            match master::run_foreground(config) {
                Ok(()) => exit::OK,
                Err(e) => {
                    tracing::error!(target: "master", "fatal: {e}");
                    fatal(exit::TEMPFAIL, e)
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
                Err(e) => fatal(exit::TEMPFAIL, e),
            }
        }
        Command::Stop => match master::stop(&config.params.queue_directory) {
            Ok(_) => {
                eprintln!("sluice: stopping the mail system");
                exit::OK
            }
            Err(e) => fatal(exit::UNAVAILABLE, e),
        },
        Command::Status => match master::running_pid(&config.params.queue_directory) {
            Some(pid) => {
                eprintln!("sluice: the mail system is running: PID: {pid}");
                exit::OK
            }
            None => {
                eprintln!("sluice: the mail system is not running");
                1
            }
        },
        Command::Check => exit::OK,
        Command::Mailq => crate::postqueue::list(&config, false),
        Command::Postqueue(a) => {
            if a.json == a.print {
                return fatal(exit::USAGE, "usage: postqueue -p | -j");
            }
            crate::postqueue::list(&config, a.json)
        }
    }
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
                json: false
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
