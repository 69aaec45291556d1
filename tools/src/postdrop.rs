//! `postdrop`: the setgid submission program (Postfix's postdrop(1)).
//!
//! **Role.** Writes one message into `maildrop/` for a user who may not
//! write there: `sendmail` runs it (`postdrop -S [-c DIR]`) with the
//! message on standard input, in the maildrop file format
//! ([`sluice_storage::maildrop`]), when it cannot deposit the file itself.
//! It does nothing else. On success it prints the new file's name on
//! standard output and exits 0.
//!
//! **Installed** setgid `setgid_group` (postdrop), owned by root, mode
//! 2755, as its own small binary, `sluice-postdrop`, copied to `postdrop`
//! by `sluice install-links` (as root). It is a separate `[[bin]]` rather
//! than the one `sluice` binary under another name: a setgid binary that
//! is also the whole CLI would let any user run the daemon, postconf -e
//! or sendmail with the postdrop group by choosing argv\[0\] (execve takes
//! any argv\[0\]), and would put every option parser in the attack
//! surface. This program's [`main`] is the only entry point of its binary.
//!
//! **Trust.** The invoking user, its environment, arguments and input are
//! hostile. First thing, the environment is emptied (its `MAIL_CONFIG` is
//! kept aside). The configuration directory is `/etc/sluice` (the default
//! `config_directory`), unless `-c DIR` or `$MAIL_CONFIG` names another;
//! as in Postfix, another is accepted only when the default main.cf lists
//! it in `alternate_config_directories` (compared after resolving
//! symlinks), and `queue_directory` must be absolute. The input is
//! decoded with the maildrop decoder, which checks the framing and CRC and
//! refuses NUL, CR and LF in every envelope field; the `uid` in the file
//! is replaced by the caller's real uid; `authorized_submit_users` is
//! checked. The file is written with the caller's uid and the postdrop
//! group, mode 0444, through the usual temp-file-and-rename protocol.
//!
//! **Limits.** Input is read up to `message_size_limit` plus
//! [`ENVELOPE_ROOM`] bytes; more is refused before anything is written.
//!
//! **Exit status** (sysexits, as the other commands; Postfix's postdrop
//! exits 1 on most errors): 64 usage, 65 malformed input, 75 queue write
//! error, 77 not allowed to submit, 78 configuration.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sluice_engine::config;
use sluice_engine::passwd;
use sluice_storage::maildrop;

/// Room for the envelope beyond `message_size_limit` (recipients of a
/// large `sendmail -t`).
pub const ENVELOPE_ROOM: u64 = 16 << 20;
/// The environment variable that names the configuration directory.
const MAIL_CONFIG: &str = "MAIL_CONFIG";
/// The flag sendmail passes: input is Sluice's maildrop format. Postfix's
/// postdrop refuses it (usage), so a sendmail that found Postfix's
/// postdrop by mistake fails without writing anything.
pub const FORMAT_FLAG: &str = "-S";

const USAGE: i32 = 64;
const DATAERR: i32 = 65;
const TEMPFAIL: i32 = 75;
const NOPERM: i32 = 77;
const CONFIG: i32 = 78;

/// The default configuration directory (Postfix's compiled-in
/// `config_directory`).
pub fn default_config_dir() -> PathBuf {
    PathBuf::from(
        config::param("config_directory")
            .map(|p| p.default)
            .unwrap_or("/etc/sluice"),
    )
}

/// Empties the environment, returning `$MAIL_CONFIG` if it was set. Runs
/// first, while the process has one thread.
fn sanitize_environment() -> Option<std::ffi::OsString> {
    let mail_config = std::env::var_os(MAIL_CONFIG);
    for (name, _) in std::env::vars_os() {
        std::env::remove_var(name);
    }
    mail_config
}

/// The entry point of the `sluice-postdrop` binary.
pub fn main() -> i32 {
    let mail_config = sanitize_environment();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let stdin = io::stdin();
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    let code = match run(
        &args,
        mail_config.map(PathBuf::from),
        uid,
        &mut stdin.lock(),
    ) {
        Ok(name) => {
            let _ = writeln!(stdout, "{name}");
            0
        }
        Err((code, text)) => {
            let _ = writeln!(stderr, "postdrop: fatal: {text}");
            code
        }
    };
    let _ = stdout.flush();
    code
}

type Failure = (i32, String);

/// Parses `-S [-c DIR] [-r] [-v]`; returns the `-c` directory.
fn parse_args(args: &[String]) -> Result<Option<PathBuf>, Failure> {
    let usage = || {
        (
            USAGE,
            format!("usage: postdrop {FORMAT_FLAG} [-c config_dir]"),
        )
    };
    let mut dir = None;
    let mut format = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" => dir = Some(PathBuf::from(it.next().ok_or_else(usage)?)),
            // Postfix's flags: record input (always ours), verbose.
            "-r" | "-v" => {}
            f if f == FORMAT_FLAG => format = true,
            _ => return Err(usage()),
        }
    }
    if !format {
        return Err(usage());
    }
    Ok(dir)
}

/// The configuration directory to use: the default, or one the default
/// main.cf authorizes (Postfix's `mail_conf_checkdir`).
fn config_dir(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let default = default_config_dir();
    let Some(given) = given else {
        return Ok(default);
    };
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let wanted = canon(&given);
    if wanted == canon(&default) {
        return Ok(default);
    }
    let unauthorized = || {
        (
            CONFIG,
            format!(
                "unauthorized configuration directory name: {}; specify it in {}/main.cf as alternate_config_directories",
                given.display(),
                default.display()
            ),
        )
    };
    let main_cf = default.join("main.cf");
    if !main_cf.is_file() {
        return Err(unauthorized());
    }
    let defaults = config::load(&default).map_err(|e| (CONFIG, e.to_string()))?;
    let listed = defaults
        .main
        .get_list("alternate_config_directories")
        .map_err(|e| (CONFIG, e.to_string()))?;
    if listed.iter().any(|d| canon(Path::new(d)) == wanted) {
        Ok(wanted)
    } else {
        Err(unauthorized())
    }
}

/// Everything after the environment: returns the deposited file's name.
pub fn run(
    args: &[String],
    mail_config: Option<PathBuf>,
    uid: u32,
    input: &mut dyn Read,
) -> Result<String, Failure> {
    let given = parse_args(args)?.or(mail_config);
    let dir = config_dir(given)?;
    let config = config::load(&dir).map_err(|e| (CONFIG, e.to_string()))?;
    let queue_dir = &config.params.queue_directory;
    if !queue_dir.is_absolute() {
        return Err((
            CONFIG,
            format!(
                "{}/main.cf: queue_directory must be an absolute path",
                dir.display()
            ),
        ));
    }
    let user = passwd::by_uid(uid).map(|p| p.name);
    let name = user.as_deref().unwrap_or("unknown");
    if !config.params.authorized_submit_users.allows(name) {
        return Err((
            NOPERM,
            format!("User {name}({uid}) is not allowed to submit mail"),
        ));
    }
    let limit = config
        .params
        .smtpd
        .message_size_limit
        .saturating_add(ENVELOPE_ROOM);
    let mut bytes = Vec::new();
    input
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| (DATAERR, format!("uid={uid}: read error: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err((DATAERR, format!("uid={uid}: input exceeds {limit} bytes")));
    }
    let mut message = maildrop::decode(&bytes)
        .map_err(|e| (DATAERR, format!("uid={uid}: malformed input: {e}")))?;
    message.uid = uid;
    let path = maildrop::deposit(queue_dir, &message).map_err(|e| {
        let code = if e.kind() == io::ErrorKind::PermissionDenied {
            NOPERM
        } else {
            TEMPFAIL
        };
        (code, format!("uid={uid}: error writing queue file: {e}"))
    })?;
    Ok(path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_flag_is_required() {
        assert_eq!(parse_args(&[]).unwrap_err().0, USAGE);
        assert_eq!(parse_args(&["-r".into()]).unwrap_err().0, USAGE);
        assert_eq!(
            parse_args(&["-S".into(), "-c".into(), "/x".into()]).unwrap(),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            parse_args(&["-S".into(), "-c".into()]).unwrap_err().0,
            USAGE
        );
        assert_eq!(
            parse_args(&["-S".into(), "-x".into()]).unwrap_err().0,
            USAGE
        );
    }

    #[test]
    fn an_unlisted_config_directory_is_unauthorized() {
        let e = config_dir(Some(PathBuf::from("/nonexistent/sluice-test-dir"))).unwrap_err();
        assert_eq!(e.0, CONFIG);
        assert!(
            e.1.starts_with(
                "unauthorized configuration directory name: /nonexistent/sluice-test-dir;"
            ),
            "{}",
            e.1
        );
        assert_eq!(config_dir(None).unwrap(), default_config_dir());
    }
}
