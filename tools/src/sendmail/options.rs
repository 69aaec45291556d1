//! sendmail's command line, parsed the way Postfix's `sendmail.c` does it:
//! POSIX `getopt` with Postfix's option string
//! `A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx` (bundling, attached or
//! separate arguments, options end at the first operand or `--`), plus the
//! arguments Postfix rewrites before getopt sees them: a lone `-q`, the
//! old VERP forms `-V xy` and `-Vxy`, and `-XV`.
//!
//! Problems that Postfix only warns about (a bad `-N` or `-V` value) are
//! collected in [`Options::warnings`]; fatal ones are a [`UsageError`]
//! with Postfix's text.

use std::path::{Path, PathBuf};

use sluice_protocols::envelope::{Body, Notify, Ret};

/// Options that take an argument; every other known letter is a flag.
const WITH_ARGUMENT: &[u8] = b"ABCFLNORVXbefhopqr";
const FLAGS: &[u8] = b"GIUcimntvx";
/// Postfix's `verp_delimiter_filter` default: allowed VERP delimiters.
const VERP_FILTER: &str = "-=+";
/// Postfix's `default_verp_delimiters`.
const DEFAULT_VERP_DELIMITERS: &str = "+=";
/// RFC 3461: ENVID is at most 100 characters.
const ENVID_MAX: usize = 100;

/// What the invocation asks for (Postfix's `SM_MODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read a message and queue it (the default, `-bm`).
    Enqueue,
    /// `-bp`, or `mailq`: list the queue.
    Mailq,
    /// A lone `-q`: flush the queue.
    FlushQueue,
    /// `-bd`, or `smtpd`: start the mail system.
    Daemon,
    /// `-bi`, `-I`, or `newaliases`.
    NewAliases,
    /// `-bs`: SMTP on standard input and output.
    StandAlone,
    /// `-bh`, `-bH`: nothing to do.
    Ignore,
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    /// `-C`: the configuration directory (a path ending in `main.cf` names
    /// its directory).
    pub config_dir: Option<PathBuf>,
    /// `-t`: read recipients from the message headers too.
    pub extract_recipients: bool,
    /// Without `-i` / `-oi`, a line with a lone `.` ends the message.
    pub dot_ends_input: bool,
    /// `-f` / `-r`, as given (an address list; the first address is used).
    pub sender: Option<String>,
    /// `-F`.
    pub fullname: Option<String>,
    /// `-N`; [`Notify::NONE_GIVEN`] when absent or ignored.
    pub notify: Notify,
    /// `-R full|hdrs`.
    pub ret: Option<Ret>,
    /// `-V envid`.
    pub envid: Option<String>,
    /// `-B 8BITMIME|7BIT`.
    pub body: Body,
    /// `-XV[xy]` (or the old `-V xy`): the VERP delimiters asked for.
    pub verp: Option<String>,
    /// `-bv`: verify recipients instead of delivering.
    pub verify: bool,
    /// How many `-v`.
    pub verbose: u32,
    /// `-q<time>`: periodic queue runs (a no-op for us, as for Postfix).
    pub queue_interval: Option<String>,
    /// `-qRsite`.
    pub flush_site: Option<String>,
    /// `-qIqueueid`.
    pub flush_id: Option<String>,
    /// The operands: recipient address lists.
    pub recipients: Vec<String>,
    /// Postfix's non-fatal complaints, to print as `warning:`.
    pub warnings: Vec<String>,
}

/// A command line that cannot run (exit 64).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What getopt(3) prints first for an unknown option or a missing
    /// argument (`invalid option -- 'k'`), without the program name.
    pub getopt: Option<String>,
    /// Postfix's fatal text.
    pub message: String,
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError {
        getopt: None,
        message: msg.into(),
    }
}

fn getopt_usage(prog: &str, complaint: String) -> UsageError {
    UsageError {
        getopt: Some(complaint),
        message: format!("usage: {prog} [options]"),
    }
}

impl Options {
    /// The defaults for a program invoked as `prog` (`mailq`, `newaliases`
    /// and `smtpd` select their modes, as in Postfix).
    fn new(prog: &str) -> Options {
        Options {
            mode: match prog {
                "mailq" => Mode::Mailq,
                "newaliases" => Mode::NewAliases,
                "smtpd" => Mode::Daemon,
                _ => Mode::Enqueue,
            },
            config_dir: None,
            extract_recipients: false,
            dot_ends_input: true,
            sender: None,
            fullname: None,
            notify: Notify::NONE_GIVEN,
            ret: None,
            envid: None,
            body: Body::Unspecified,
            verp: None,
            verify: false,
            verbose: 0,
            queue_interval: None,
            flush_site: None,
            flush_id: None,
            recipients: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Parses `args` (without `argv[0]`) for a program named `prog` (the
/// basename of `argv[0]`).
pub fn parse(prog: &str, args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options::new(prog);
    let mut i = 0;
    while i < args.len() {
        let mut arg = args[i].clone();
        i += 1;
        if arg == "-q" {
            // Not getopt compatible: -q takes an optional argument.
            if o.mode == Mode::Daemon {
                o.warnings.push("ignoring -q option in daemon mode".into());
            } else {
                o.mode = Mode::FlushQueue;
            }
            continue;
        }
        if arg == "-V" && args.get(i).is_some_and(|next| next.chars().count() == 2) {
            o.warnings
                .push("option -V is deprecated with Postfix 2.3; specify -XV instead".into());
            arg = format!("-XV{}", args[i]);
            i += 1;
        } else if arg.starts_with("-V") && arg.len() == 4 {
            o.warnings.push(format!(
                "option {arg} is deprecated with Postfix 2.3; specify -X{} instead",
                &arg[1..]
            ));
            arg = format!("-X{}", &arg[1..]);
        }
        if arg == "-XV" {
            o.verp = Some(DEFAULT_VERP_DELIMITERS.into());
            continue;
        }
        if arg == "--" {
            o.recipients.extend(args[i..].iter().cloned());
            break;
        }
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            // The first operand ends the options (Postfix runs getopt with
            // a leading "+": no argument permutation).
            o.recipients.push(arg);
            o.recipients.extend(args[i..].iter().cloned());
            break;
        };
        let mut rest = letters;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            let known_arg = c.is_ascii() && WITH_ARGUMENT.contains(&(c as u8));
            let known_flag = c.is_ascii() && FLAGS.contains(&(c as u8));
            if known_arg {
                let value = if !rest.is_empty() {
                    std::mem::take(&mut rest).to_owned()
                } else if let Some(next) = args.get(i) {
                    i += 1;
                    next.clone()
                } else {
                    return Err(getopt_usage(
                        prog,
                        format!("option requires an argument -- '{c}'"),
                    ));
                };
                option_with_value(&mut o, c, &value)?;
            } else if known_flag {
                flag(&mut o, c)?;
            } else {
                return Err(getopt_usage(prog, format!("invalid option -- '{c}'")));
            }
        }
    }
    check_conflicts(&o)?;
    Ok(o)
}

fn flag(o: &mut Options, c: char) -> Result<(), UsageError> {
    match c {
        'n' => return Err(usage("-n option not supported")),
        'I' => o.mode = Mode::NewAliases,
        'i' => o.dot_ends_input = false,
        't' => o.extract_recipients = true,
        'v' => o.verbose += 1,
        // -G (gateway submission: we have no remote rewrite context), -U,
        // -c, -m, -x: ignored, as in Postfix.
        _ => {}
    }
    Ok(())
}

fn option_with_value(o: &mut Options, c: char, value: &str) -> Result<(), UsageError> {
    let first = value.chars().next();
    match c {
        'B' => {
            o.body = match value {
                "8BITMIME" => Body::EightBitMime,
                "7BIT" => Body::SevenBit,
                _ => return Err(usage("-B option needs 8BITMIME or 7BIT")),
            }
        }
        'C' => o.config_dir = Some(config_dir_of(value)),
        'F' => o.fullname = Some(value.to_owned()),
        'N' => match notify_mask(value) {
            Some(mask) => o.notify = mask,
            None => o.warnings.push("bad -N option value -- ignored".into()),
        },
        'R' => match value.to_ascii_lowercase().as_str() {
            "full" => o.ret = Some(Ret::Full),
            "hdrs" => o.ret = Some(Ret::Hdrs),
            _ => o.warnings.push("bad -R option value -- ignored".into()),
        },
        'V' => {
            if value.chars().count() > ENVID_MAX {
                o.warnings
                    .push("too long -V option value -- ignored".into());
            } else if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                o.warnings
                    .push("bad syntax in -V option value -- ignored".into());
            } else {
                o.envid = Some(value.to_owned());
            }
        }
        'X' => match first {
            Some('V') => {
                let delims = &value[1..];
                let ok =
                    delims.chars().count() == 2 && delims.chars().all(|d| VERP_FILTER.contains(d));
                if !ok {
                    return Err(usage(format!(
                        "-V requires two characters from {VERP_FILTER}"
                    )));
                }
                o.verp = Some(delims.to_owned());
            }
            other => {
                return Err(usage(format!(
                    "unsupported: -X{}",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        },
        'b' => match first {
            Some('d') => {
                if o.mode == Mode::FlushQueue {
                    o.warnings.push("ignoring -q option in daemon mode".into());
                }
                o.mode = Mode::Daemon;
            }
            Some('h' | 'H') => o.mode = Mode::Ignore,
            Some('i') => o.mode = Mode::NewAliases,
            Some('m') => o.mode = Mode::Enqueue,
            Some('p') => o.mode = Mode::Mailq,
            Some('s') => o.mode = Mode::StandAlone,
            Some('v') => o.verify = true,
            other => {
                return Err(usage(format!(
                    "unsupported: -b{}",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        },
        'f' | 'r' => o.sender = Some(value.to_owned()),
        'o' => match first {
            Some('i') => o.dot_ends_input = false,
            Some('A') if value.len() == 1 => return Err(usage("-oA requires pathname")),
            // -oA<path> (alias database for -bi), -o7, -o8, -om, others:
            // ignored.
            _ => {}
        },
        'q' => match first {
            Some(d) if d.is_ascii_digit() => o.queue_interval = Some(value.to_owned()),
            Some('R') => {
                let site = &value[1..];
                if site.is_empty() {
                    return Err(usage("specify: -qRsitename"));
                }
                o.flush_site = Some(site.to_owned());
            }
            Some('I') => {
                let id = &value[1..];
                if id.is_empty() {
                    return Err(usage("specify: -qIqueueid"));
                }
                o.flush_id = Some(id.to_owned());
            }
            other => {
                return Err(usage(format!(
                    "-q{} is not implemented",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        },
        // -A, -L, -O, -e, -h, -p: ignored, with their argument.
        _ => {}
    }
    Ok(())
}

/// Postfix's checks for options that do not go together.
fn check_conflicts(o: &Options) -> Result<(), UsageError> {
    if o.extract_recipients && o.mode != Mode::Enqueue {
        return Err(usage("-t can be used only in delivery mode"));
    }
    if o.flush_site.is_some() && o.mode != Mode::Enqueue {
        return Err(usage("-qR can be used only in delivery mode"));
    }
    if o.flush_id.is_some() && o.mode != Mode::Enqueue {
        return Err(usage("-qI can be used only in delivery mode"));
    }
    if o.verify {
        if o.extract_recipients {
            return Err(usage("-t option cannot be used with -bv"));
        }
        if o.notify != Notify::NONE_GIVEN {
            return Err(usage("-N option cannot be used with -bv"));
        }
        if o.verbose == 1 {
            return Err(usage("-v option cannot be used with -bv"));
        }
    }
    Ok(())
}

/// `-C` names a directory, or a `main.cf` file in it.
fn config_dir_of(value: &str) -> PathBuf {
    let path = Path::new(value);
    if path.file_name().is_some_and(|n| n == "main.cf") {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    } else {
        path.to_path_buf()
    }
}

/// `NEVER` alone, or a comma list of `SUCCESS`, `FAILURE`, `DELAY`, any
/// case (Postfix's `dsn_notify_mask()`); `None` for anything else.
fn notify_mask(value: &str) -> Option<Notify> {
    let mut mask = 0u8;
    for word in value.split(',') {
        mask |= match word.to_ascii_uppercase().as_str() {
            "NEVER" => Notify::NEVER,
            "SUCCESS" => Notify::SUCCESS,
            "FAILURE" => Notify::FAILURE,
            "DELAY" => Notify::DELAY,
            _ => return None,
        };
    }
    if mask & Notify::NEVER != 0 && mask != Notify::NEVER {
        return None;
    }
    Some(Notify(mask))
}
