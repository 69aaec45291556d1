//! `postconf`: Postfix's postconf(1) for Sluice's main.cf and master.cf.
//!
//! ```text
//! postconf [-dfhHnvx] [-c config_dir] [-C class,...] [-o name=value] [name ...]
//! postconf [-e] [-c config_dir] name=value ...
//! postconf -X|-# [-c config_dir] name ...
//! postconf -M [-fvx] [-c config_dir] [service[/type] ...]
//! ```
//!
//! Output follows Postfix byte for byte: `name = value` sorted by name, the
//! value unexpanded unless `-x`, whitespace runs folded to one space, and an
//! empty value printed as `name =`; `-f` folds lines at 80 columns with a
//! 4-space indent. `-M` prints each master.cf service on one line with the
//! columns at Postfix's positions (0, 11, 17, 25, 33, 41, 49, 57).
//! Diagnostics go to stderr as `postconf: warning: …` / `postconf: fatal:
//! …`; a fatal error exits 1, as Postfix's msg_fatal does, success exits 0.
//!
//! Parameters listed: Sluice's registry (builtin), plus main.cf names that
//! a known parameter refers to (user-defined, as Postfix's "user" class).
//! Other unknown main.cf names are not listed and get Postfix's "unused
//! parameter" warning after the output. Postfix's service-defined names
//! (`<service>_xxx`) do not exist in Sluice.
//!
//! Not implemented (fatal "… is not implemented"): -a -A -b -t (SASL and
//! bounce templates), -F -P (master.cf fields and parameters), -l -m, -T,
//! and master.cf editing (-Me, -MX, -M#).
//!
//! Edits go through [`sluice_engine::config::edit`]: the file is rewritten
//! with comments and other entries untouched, then renamed into place.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sluice_engine::config::edit::{self, ConfigFiles, MainCfEdit};
use sluice_engine::config::{param, HostFacts, MainCf, MasterService, PARAMS};

const PROG: &str = "postconf";

/// Postfix's PCF_LINE_LIMIT: fold output lines before this many columns.
const LINE_LIMIT: usize = 80;
/// Postfix's PCF_INDENT_LEN / PCF_INDENT_TEXT for folded lines.
const INDENT: &str = "    ";

/// The option bits, in the order of Postfix's pcf_compat_names table (the
/// order option names appear in its "specify one of" messages).
mod flag {
    pub const SHOW_SASL_SERV: u32 = 1 << 0; // -a
    pub const SHOW_SASL_CLNT: u32 = 1 << 1; // -A
    pub const EXP_DSN_TEMPL: u32 = 1 << 2; // -b
    pub const PARAM_CLASS: u32 = 1 << 3; // -C
    pub const SHOW_DEFS: u32 = 1 << 4; // -d
    pub const EDIT_CONF: u32 = 1 << 5; // -e
    pub const FOLD_LINE: u32 = 1 << 6; // -f
    pub const MASTER_FLD: u32 = 1 << 7; // -F
    pub const HIDE_NAME: u32 = 1 << 8; // -h
    pub const HIDE_VALUE: u32 = 1 << 9; // -H
    pub const SHOW_LOCKS: u32 = 1 << 10; // -l
    pub const SHOW_MAPS: u32 = 1 << 11; // -m
    pub const MASTER_ENTRY: u32 = 1 << 12; // -M
    pub const SHOW_NONDEF: u32 = 1 << 13; // -n
    pub const MAIN_OVER: u32 = 1 << 14; // -o
    pub const MAIN_PARAM: u32 = 1 << 15; // -p
    pub const MASTER_PARAM: u32 = 1 << 16; // -P
    pub const DUMP_DSN_TEMPL: u32 = 1 << 17; // -t
    pub const SHOW_TLS: u32 = 1 << 18; // -T
    pub const SHOW_EVAL: u32 = 1 << 19; // -x
    pub const EDIT_EXCL: u32 = 1 << 20; // -X
    pub const COMMENT_OUT: u32 = 1 << 21; // -#

    pub const NAMES: [&str; 22] = [
        "-a", "-A", "-b", "-C", "-d", "-e", "-f", "-F", "-h", "-H", "-l", "-m", "-M", "-n", "-o",
        "-p", "-P", "-t", "-T", "-x", "-X", "-#",
    ];

    /// The letter of each bit, for option parsing.
    pub const LETTERS: [u8; 22] = [
        b'a', b'A', b'b', b'C', b'd', b'e', b'f', b'F', b'h', b'H', b'l', b'm', b'M', b'n', b'o',
        b'p', b'P', b't', b'T', b'x', b'X', b'#',
    ];

    pub const MAJOR: u32 = SHOW_SASL_SERV
        | SHOW_SASL_CLNT
        | EXP_DSN_TEMPL
        | SHOW_LOCKS
        | SHOW_MAPS
        | DUMP_DSN_TEMPL
        | MAIN_PARAM
        | MASTER_ENTRY
        | MASTER_FLD
        | MASTER_PARAM
        | SHOW_TLS;
    pub const EDITS: u32 = EDIT_CONF | EDIT_EXCL | COMMENT_OUT;

    /// Postfix's pcf_incompat_options: at most one bit of each set.
    pub const INCOMPATIBLE: [u32; 6] = [
        MAJOR,
        SHOW_DEFS | EDIT_CONF | SHOW_NONDEF | COMMENT_OUT | EDIT_EXCL,
        FOLD_LINE | EDIT_CONF | COMMENT_OUT | EDIT_EXCL,
        SHOW_EVAL | EDIT_CONF | COMMENT_OUT | EDIT_EXCL,
        MAIN_OVER | SHOW_DEFS | EDIT_CONF | COMMENT_OUT | EDIT_EXCL,
        HIDE_NAME | EDIT_CONF | COMMENT_OUT | EDIT_EXCL | HIDE_VALUE,
    ];

    /// Postfix's pcf_compat_options: an option and all it may be used with.
    pub const COMPATIBLE: [(u32, u32); 13] = [
        (SHOW_SASL_SERV, 0),
        (SHOW_SASL_CLNT, 0),
        (EXP_DSN_TEMPL, 0),
        (SHOW_LOCKS, 0),
        (SHOW_MAPS, 0),
        (SHOW_TLS, 0),
        (DUMP_DSN_TEMPL, 0),
        (
            MAIN_PARAM,
            EDIT_CONF
                | EDIT_EXCL
                | COMMENT_OUT
                | FOLD_LINE
                | HIDE_NAME
                | PARAM_CLASS
                | SHOW_EVAL
                | SHOW_DEFS
                | SHOW_NONDEF
                | MAIN_OVER
                | HIDE_VALUE,
        ),
        (
            MASTER_ENTRY,
            EDIT_CONF | EDIT_EXCL | COMMENT_OUT | FOLD_LINE | MAIN_OVER | SHOW_EVAL,
        ),
        (
            MASTER_FLD,
            EDIT_CONF | FOLD_LINE | HIDE_NAME | MAIN_OVER | SHOW_EVAL | HIDE_VALUE,
        ),
        (
            MASTER_PARAM,
            EDIT_CONF | EDIT_EXCL | FOLD_LINE | HIDE_NAME | MAIN_OVER | SHOW_EVAL | HIDE_VALUE,
        ),
        (PARAM_CLASS, MAIN_PARAM | SHOW_DEFS | SHOW_NONDEF),
        (0, 0),
    ];

    /// `-d -n`: the names of the set bits, in table order.
    pub fn names(mask: u32) -> String {
        (0..NAMES.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Postfix's `-C` classes.
const CLASS_BUILTIN: u32 = 1;
const CLASS_SERVICE: u32 = 2;
const CLASS_USER: u32 = 4;
const CLASS_ALL: u32 = CLASS_BUILTIN | CLASS_SERVICE | CLASS_USER;

/// A fatal error: printed as `postconf: fatal: <text>`, exit 1.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

/// The parsed command line.
struct Opts {
    mode: u32,
    config_dir: PathBuf,
    overrides: Vec<String>,
    class: u32,
    operands: Vec<String>,
}

/// Runs `postconf` with `args` (the arguments after the command name).
/// The configuration directory is `-c DIR` when given, else
/// `default_config_dir`. Output to stdout, diagnostics to stderr; returns
/// the exit status.
pub fn main(args: &[String], default_config_dir: &Path) -> i32 {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    run(args, default_config_dir, None, &mut out, &mut err)
}

/// [`main`] with the output streams and (for tests) the machine's facts
/// given; `None` probes the machine when a default needs it.
pub fn run(
    args: &[String],
    default_config_dir: &Path,
    facts: Option<&HostFacts>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let probed;
    let facts = match facts {
        Some(f) => f,
        None => {
            probed = HostFacts::probe();
            &probed
        }
    };
    let mut warnings: Vec<String> = Vec::new();
    let result = parse_args(args, default_config_dir, err)
        .and_then(|opts| execute(&opts, facts, out, &mut warnings));
    // Postfix flushes stdout before its post-output warnings.
    let flushed = out.flush();
    for w in &warnings {
        let _ = writeln!(err, "{PROG}: warning: {w}");
    }
    match (result, flushed) {
        (Err(Fatal(msg)), _) => {
            let _ = writeln!(err, "{PROG}: fatal: {msg}");
            1
        }
        // A reader that went away (`postconf | head`) is not worth a word.
        (Ok(()), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => 1,
        (Ok(()), Err(e)) => {
            let _ = writeln!(err, "{PROG}: fatal: write error: {}", strerror(&e));
            1
        }
        (Ok(()), Ok(())) => 0,
    }
}

fn usage() -> Fatal {
    Fatal(format!(
        "usage: {PROG} [-a (server SASL types)] [-A (client SASL types)] \
         [-b (bounce templates)] [-c config_dir] [-c param_class] \
         [-d (parameter defaults)] [-e (edit configuration)] [-f (fold lines)] \
         [-F (master.cf fields)] [-h (no names)] [-H (no values)] [-l (lock types)] \
         [-m (map types)] [-M (master.cf)] [-n (non-default parameters)] \
         [-o name=value (override parameter value)] [-p (main.cf, default)] \
         [-P (master.cf parameters)] [-t (bounce templates)] \
         [-T compile-version|run-version|public-key-algorithms] [-v (verbose)] \
         [-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]"
    ))
}

/// getopt(3) with Postfix's option string `aAbc:C:deEfFhHlmMno:pPtT:vxX#`,
/// stopping at the first operand (Postfix's GETOPT is `+`-prefixed).
fn parse_args(args: &[String], default_dir: &Path, err: &mut dyn Write) -> Result<Opts, Fatal> {
    let mut opts = Opts {
        mode: 0,
        config_dir: default_dir.to_path_buf(),
        overrides: Vec::new(),
        class: CLASS_ALL,
        operands: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        if arg == b"--" {
            i += 1;
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            break;
        }
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            j += 1;
            if matches!(c, b'c' | b'C' | b'o' | b'T') {
                // The value is the rest of this argument, or the next one.
                let value = if j < arg.len() {
                    String::from_utf8_lossy(&arg[j..]).into_owned()
                } else if let Some(next) = args.get(i + 1) {
                    i += 1;
                    next.clone()
                } else {
                    let _ = writeln!(
                        err,
                        "{PROG}: option requires an argument -- '{}'",
                        c as char
                    );
                    return Err(usage());
                };
                j = arg.len();
                match c {
                    b'c' => opts.config_dir = PathBuf::from(value),
                    b'C' => {
                        opts.mode |= flag::PARAM_CLASS;
                        opts.class = parse_class(&value)?;
                    }
                    b'o' => {
                        opts.mode |= flag::MAIN_OVER;
                        opts.overrides.push(value);
                    }
                    _ => {
                        if opts.mode & flag::SHOW_TLS != 0 {
                            return Err(Fatal(
                                "At most one -T <mode> option may be specified".into(),
                            ));
                        }
                        opts.mode |= flag::SHOW_TLS;
                    }
                }
                continue;
            }
            if c == b'v' {
                continue; // verbose: nothing more to say
            }
            match flag::LETTERS.iter().position(|&l| l == c) {
                Some(bit) => opts.mode |= 1 << bit,
                None => {
                    let shown = String::from_utf8_lossy(&arg[j - 1..j]).into_owned();
                    let _ = writeln!(err, "{PROG}: invalid option -- '{shown}'");
                    return Err(usage());
                }
            }
        }
        i += 1;
    }
    opts.operands = args[i..].to_vec();
    if opts.mode & flag::MAJOR == 0 {
        opts.mode |= flag::MAIN_PARAM;
    }
    let main_or_master =
        flag::MAIN_PARAM | flag::MASTER_ENTRY | flag::MASTER_FLD | flag::MASTER_PARAM;
    if opts.mode & main_or_master != 0 && opts.operands.first().is_some_and(|a| a.contains('=')) {
        opts.mode |= flag::EDIT_CONF;
    }
    check_options(opts.mode)?;
    if opts.mode & flag::EDIT_CONF != 0 && opts.operands.is_empty() {
        return Err(Fatal("-e requires name=value argument".into()));
    }
    Ok(opts)
}

/// `-C builtin,user`: Postfix's name_mask_opt, any case.
fn parse_class(value: &str) -> Result<u32, Fatal> {
    let mut class = 0;
    for word in value
        .split([',', ' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        class |= match word.to_ascii_lowercase().as_str() {
            "builtin" => CLASS_BUILTIN,
            "service" => CLASS_SERVICE,
            "user" => CLASS_USER,
            "all" => CLASS_ALL,
            _ => {
                return Err(Fatal(format!(
                    "unknown -C option value \"{word}\" in \"{value}\""
                )))
            }
        };
    }
    Ok(class)
}

/// Postfix's pcf_check_exclusive_options and pcf_check_compat_options.
fn check_options(mode: u32) -> Result<(), Fatal> {
    for set in flag::INCOMPATIBLE {
        let on = set & mode;
        if on.count_ones() > 1 {
            return Err(Fatal(format!("specify one of {}", flag::names(on))));
        }
    }
    for (option, allowed) in flag::COMPATIBLE {
        if option == 0 {
            break;
        }
        let excess = mode & !(option | allowed);
        if mode & option != 0 && excess != 0 {
            return Err(Fatal(format!(
                "with option {}, do not specify {}",
                flag::names(option),
                flag::names(excess)
            )));
        }
    }
    Ok(())
}

fn execute(
    opts: &Opts,
    facts: &HostFacts,
    out: &mut dyn Write,
    warnings: &mut Vec<String>,
) -> Result<(), Fatal> {
    let mode = opts.mode;
    let unsupported = flag::SHOW_SASL_SERV
        | flag::SHOW_SASL_CLNT
        | flag::EXP_DSN_TEMPL
        | flag::DUMP_DSN_TEMPL
        | flag::SHOW_LOCKS
        | flag::SHOW_MAPS
        | flag::SHOW_TLS
        | flag::MASTER_FLD
        | flag::MASTER_PARAM;
    if mode & unsupported != 0 {
        return Err(Fatal(format!(
            "option {} is not implemented",
            flag::names(mode & unsupported)
        )));
    }
    if mode & flag::EDITS != 0 {
        if opts.operands.is_empty() {
            return Err(Fatal("missing service argument".into()));
        }
        if mode & flag::MASTER_ENTRY != 0 {
            return Err(Fatal("master.cf editing is not implemented".into()));
        }
        return edit_main(opts, warnings);
    }
    let overrides = opts
        .overrides
        .iter()
        .map(|o| {
            split_nameval(o)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .map_err(|e| Fatal(format!("invalid parameter override: {o}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if mode & flag::MASTER_ENTRY != 0 {
        // Postfix's -M reads main.cf (for -x) but does not flag unused
        // parameters; the reader's warnings are dropped with them.
        let files = edit::read_unchecked(&opts.config_dir, facts, &overrides)?;
        return show_master(out, mode, &files, &opts.operands, warnings);
    }
    if mode & flag::SHOW_DEFS != 0 {
        let main = edit::defaults_only(&opts.config_dir, facts, warnings)?;
        return show_params(out, mode, opts.class, &main, &[], &opts.operands, warnings);
    }
    let files = edit::read_unchecked(&opts.config_dir, facts, &overrides)?;
    let user: Vec<&str> = files
        .main
        .raw_entries()
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| param(n).is_none() && !files.unused.contains(*n))
        .collect();
    show_params(
        out,
        mode,
        opts.class,
        &files.main,
        &user,
        &opts.operands,
        warnings,
    )?;
    // The reader's and the "unused parameter" warnings come after the
    // output, as in Postfix.
    warnings.extend(files.warnings.iter().cloned());
    Ok(())
}

/// Prints main.cf parameters: all of them (builtin then user-defined, one
/// sorted list) or the named ones.
fn show_params(
    out: &mut dyn Write,
    mode: u32,
    class: u32,
    main: &MainCf,
    user: &[&str],
    names: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), Fatal> {
    if names.is_empty() {
        let mut all: Vec<&str> = Vec::with_capacity(PARAMS.len() + user.len());
        if class & CLASS_BUILTIN != 0 {
            // push, not extend: each &'static str shortens to `all`'s lifetime.
            for name in MainCf::known_names() {
                all.push(name);
            }
        }
        if class & CLASS_USER != 0 {
            all.extend(user.iter().copied());
        }
        all.sort_unstable();
        all.dedup();
        for name in all {
            print_param(out, mode, main, name)?;
        }
        return Ok(());
    }
    for name in names {
        if param(name).is_some() || user.contains(&name.as_str()) {
            print_param(out, mode, main, name)?;
        } else {
            warnings.push(format!("{name}: unknown parameter"));
        }
    }
    Ok(())
}

/// Postfix's pcf_print_parameter with pcf_lookup_parameter_value: the
/// default with -d; else main.cf's value, else (not with -n) the default.
fn print_param(out: &mut dyn Write, mode: u32, main: &MainCf, name: &str) -> Result<(), Fatal> {
    let value = if mode & flag::SHOW_DEFS != 0 {
        main.default_raw(name)
    } else if let Some(entry) = main.raw(name) {
        Some(entry.value.clone())
    } else if mode & flag::SHOW_NONDEF == 0 {
        main.default_raw(name)
    } else {
        None
    };
    let Some(value) = value else {
        return Ok(());
    };
    if mode & flag::HIDE_VALUE != 0 {
        return print_line(out, mode, name);
    }
    let value = if mode & flag::SHOW_EVAL != 0 {
        main.expand(&value)
            .map_err(|e| Fatal(format!("parameter {name}: {e}")))?
    } else {
        value
    };
    if mode & flag::HIDE_NAME != 0 {
        print_line(out, mode, &value)
    } else {
        print_line(out, mode, &format!("{name} = {value}"))
    }
}

/// Postfix's pcf_print_line: words separated by one space (runs of blanks,
/// tabs and line breaks collapse), folded before column 80 with -f.
fn print_line(out: &mut dyn Write, mode: u32, text: &str) -> Result<(), Fatal> {
    let mut line = String::with_capacity(text.len() + 1);
    let mut line_len = 0;
    for word in text
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        if line_len > 0 {
            if mode & flag::FOLD_LINE == 0 || line_len + word.len() < LINE_LIMIT {
                line.push(' ');
                line_len += 1;
            } else {
                line.push('\n');
                line.push_str(INDENT);
                line_len = INDENT.len();
            }
        }
        line.push_str(word);
        line_len += word.len();
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    Ok(())
}

/// `postconf -M [service[/type] …]`: Postfix's pcf_show_master_entries.
fn show_master(
    out: &mut dyn Write,
    mode: u32,
    files: &ConfigFiles,
    filters: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), Fatal> {
    let patterns = filters
        .iter()
        .map(|f| {
            parse_service_pattern(f)
                .ok_or_else(|| Fatal("-M option requires service_name[/type]".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut matched = vec![0usize; patterns.len()];
    for svc in &files.master {
        if patterns.is_empty() {
            print_master_entry(out, mode, &files.main, svc)?;
            continue;
        }
        // As in Postfix, an entry that two requests match prints twice.
        for (count, (name, kind)) in matched.iter_mut().zip(&patterns) {
            if pattern_matches(name, &svc.service) && pattern_matches(kind, &svc.service_type) {
                *count += 1;
                print_master_entry(out, mode, &files.main, svc)?;
            }
        }
    }
    for (count, raw) in matched.iter().zip(filters) {
        if *count == 0 {
            warnings.push(format!("unmatched request: \"{raw}\""));
        }
    }
    Ok(())
}

/// `name[/type]` → (name, type), `*` for a missing part; `*` only alone.
fn parse_service_pattern(pattern: &str) -> Option<(String, String)> {
    if pattern.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.len() > 2 {
        return None;
    }
    if parts.iter().any(|p| *p != "*" && p.contains('*')) {
        return None;
    }
    Some((
        parts[0].to_string(),
        parts.get(1).unwrap_or(&"*").to_string(),
    ))
}

fn pattern_matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

/// Postfix's pcf_print_master_entry: the eight fields at their columns,
/// then the command's options and arguments; with -f, each `-o` on a line
/// of its own and long lines folded.
fn print_master_entry(
    out: &mut dyn Write,
    mode: u32,
    main: &MainCf,
    svc: &MasterService,
) -> Result<(), Fatal> {
    const COLUMNS: [usize; 8] = [0, 11, 17, 25, 33, 41, 49, 57];
    let yn = |v: Option<bool>| match v {
        None => "-".to_string(),
        Some(true) => "y".to_string(),
        Some(false) => "n".to_string(),
    };
    let fields = [
        svc.service.clone(),
        svc.service_type.clone(),
        yn(svc.private),
        yn(svc.unpriv),
        yn(svc.chroot),
        svc.wakeup.clone().unwrap_or_else(|| "-".into()),
        svc.maxproc.map_or_else(|| "-".into(), |m| m.to_string()),
        svc.command.clone(),
    ];
    let mut line = String::new();
    let mut line_len = 0;
    for (text, column) in fields.iter().zip(COLUMNS) {
        if line_len > 0 {
            loop {
                line.push(' ');
                line_len += 1;
                if line_len >= column {
                    break;
                }
            }
        }
        line.push_str(text);
        line_len += text.len();
    }

    // Postfix's normalized argument order: leading options, then the
    // `-o name=value` pairs, then the other arguments. Sluice keeps the
    // overrides apart from the other arguments, so an option written after
    // an `-o` moves before it.
    let leading = svc
        .args
        .iter()
        .take_while(|a| a.starts_with('-') && a.as_str() != "--")
        .count();
    let local = main.with_overrides(&svc.overrides, &svc.origin);
    let mut items: Vec<(String, bool)> = Vec::new(); // (text, an -o pair)
    for a in &svc.args[..leading] {
        items.push((a.clone(), false));
    }
    for (name, value) in &svc.overrides {
        let value = if mode & flag::SHOW_EVAL != 0 {
            local
                .expand(value)
                .map_err(|e| Fatal(format!("{}: -o {name}: {e}", svc.origin)))?
        } else {
            value.clone()
        };
        let setting = format!("{name}={value}");
        let text = if has_blank(&setting) {
            format!("-o {{{setting}}}")
        } else {
            format!("-o {setting}")
        };
        items.push((text, true));
    }
    for a in &svc.args[leading..] {
        // Postfix skips the braces on the first non-option argument; an
        // argument with blanks needs them to read back as one.
        let text = if has_blank(a) {
            format!("{{{a}}}")
        } else {
            a.clone()
        };
        items.push((text, false));
    }
    let fold = mode & flag::FOLD_LINE != 0;
    for (text, is_override) in items {
        if is_override {
            // Force a line break before an option with a value.
            line_len = LINE_LIMIT;
        }
        if line_len > INDENT.len() {
            if !fold || line_len + 1 + text.len() < LINE_LIMIT {
                line.push(' ');
                line_len += 1;
            } else {
                line.push('\n');
                line.push_str(INDENT);
                line_len = INDENT.len();
            }
        }
        line.push_str(&text);
        line_len += text.len();
        if is_override {
            // ... and after it.
            line_len = LINE_LIMIT;
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    Ok(())
}

fn has_blank(s: &str) -> bool {
    s.contains([' ', '\t', '\r', '\n'])
}

/// `postconf -e`, `-X`, `-#`: Postfix's pcf_edit_main.
fn edit_main(opts: &Opts, warnings: &mut Vec<String>) -> Result<(), Fatal> {
    let mode = opts.mode;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for raw in &opts.operands {
        if raw.contains('\n') {
            return Err(Fatal("-e, -X, or -# accepts no multi-line input".into()));
        }
        let cp = raw.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if cp.starts_with('#') {
            return Err(Fatal("-e, -X, or -# accepts no comment input".into()));
        }
        if mode & flag::EDIT_CONF != 0 {
            let (name, value) = split_nameval(cp).map_err(|e| Fatal(format!("{e}: \"{cp}\"")))?;
            pairs.push((name.to_string(), value.to_string()));
        } else {
            if cp.is_empty() {
                return Err(Fatal("-X or -# requires non-blank parameter names".into()));
            }
            if cp.contains('=') {
                return Err(Fatal(
                    "-X or -# requires parameter names without value".into(),
                ));
            }
            names.push(
                cp.trim_end_matches(|c: char| c.is_ascii_whitespace())
                    .to_string(),
            );
        }
    }
    let edit = if mode & flag::EDIT_CONF != 0 {
        MainCfEdit::Set(pairs)
    } else if mode & flag::EDIT_EXCL != 0 {
        MainCfEdit::Remove(names)
    } else {
        MainCfEdit::CommentOut(names)
    };
    let path = opts.config_dir.join("main.cf");
    let text = std::fs::read(&path).map_err(|e| {
        Fatal(format!(
            "open {} for reading: {}",
            path.display(),
            strerror(&e)
        ))
    })?;
    let outcome = edit::edit_main_cf(&text, &edit);
    for name in &outcome.multiple {
        warnings.push(format!(
            "{}: multiple entries for \"{name}\"",
            path.display()
        ));
    }
    if outcome.text != text {
        edit::write_atomically(&path, &outcome.text)
            .map_err(|e| Fatal(format!("write {}: {}", path.display(), strerror(&e))))?;
    }
    Ok(())
}

/// Postfix's split_nameval: `name = value`, both trimmed; the name must
/// not be empty.
fn split_nameval(s: &str) -> Result<(&str, &str), &'static str> {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() {
        return Err("missing attribute name");
    }
    let end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '=')
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    if name.is_empty() {
        // Postfix accepts "= value" here and writes a line that reads back
        // as a continuation of the one before it.
        return Err("missing attribute name");
    }
    let rest = rest
        .trim_start_matches(|c: char| c.is_ascii_whitespace())
        .strip_prefix('=')
        .ok_or("missing '=' after attribute name")?;
    Ok((name, rest.trim_matches(|c: char| c.is_ascii_whitespace())))
}

/// `%m`: the system's text for an I/O error, without Rust's
/// " (os error N)" suffix.
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests;
