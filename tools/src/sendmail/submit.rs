//! Handing one message to the maildrop: directly when this user may write
//! there (root, the mail owner, a private instance's user), else through
//! the setgid `postdrop` program ([`crate::postdrop`]), as Postfix's
//! sendmail does.
//!
//! **Which postdrop.** The first that exists of: `postdrop` beside the
//! name sendmail was run as (where `sluice install-links` puts both),
//! `postdrop` and `sluice-postdrop` beside the sluice binary. It is run
//! with an empty environment, `-S -c <config dir>`, the message on its
//! standard input in the maildrop format, and its diagnostics going to our
//! standard error; it prints the file's name.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sluice_engine::config::Config;
use sluice_storage::maildrop::{self, MaildropMessage};

/// Why a message was not deposited.
pub(super) enum SubmitError {
    /// Writing the maildrop ourselves failed (not a permission problem).
    Io(io::Error),
    /// postdrop could not be run.
    NoPostdrop(String),
    /// postdrop ran and failed with this exit status; it said why.
    Postdrop(i32),
}

/// Deposits `m` and returns the maildrop file's name.
pub(super) fn submit(
    config: &Config,
    m: &MaildropMessage,
    stderr: &mut dyn Write,
) -> Result<String, SubmitError> {
    let queue_dir = &config.params.queue_directory;
    let params = &config.params;
    let direct = maildrop::ensure_dir(queue_dir, &params.mail_owner, &params.setgid_group)
        .and_then(|()| maildrop::deposit(queue_dir, m));
    match direct {
        Ok(path) => Ok(file_name(&path)),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            via_postdrop(&config.config_dir, m, stderr)
        }
        Err(e) => Err(SubmitError::Io(e)),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where postdrop may be, in the order tried.
fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(argv0) = std::env::args_os().next() {
        let p = PathBuf::from(&argv0);
        if p.components().count() > 1 {
            if let Some(dir) = p.parent() {
                v.push(dir.join("postdrop"));
            }
        } else if let Some(dir) = on_path(&argv0) {
            v.push(dir.join("postdrop"));
        }
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        v.push(dir.join("postdrop"));
        v.push(dir.join("sluice-postdrop"));
    }
    v
}

/// The `$PATH` directory that holds `name`, as the shell found it.
fn on_path(name: &OsString) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join(name).is_file())
}

fn via_postdrop(
    config_dir: &Path,
    m: &MaildropMessage,
    stderr: &mut dyn Write,
) -> Result<String, SubmitError> {
    let Some(program) = candidates().into_iter().find(|p| p.is_file()) else {
        return Err(SubmitError::NoPostdrop(
            "no postdrop program beside sendmail or the sluice binary (install it with `sluice install-links DIR` as root)".to_string(),
        ));
    };
    let dir = std::fs::canonicalize(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
    let mut child = Command::new(&program)
        .arg(crate::postdrop::FORMAT_FLAG)
        .arg("-c")
        .arg(&dir)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| SubmitError::NoPostdrop(format!("{}: {e}", program.display())))?;
    // postdrop may refuse before reading everything (its exit says why).
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(&maildrop::encode(m));
    }
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(4096).read_to_string(&mut out);
    }
    let status = child
        .wait()
        .map_err(|e| SubmitError::NoPostdrop(format!("{}: {e}", program.display())))?;
    let _ = stderr.flush();
    match status.code() {
        Some(0) => Ok(out.trim().to_string()),
        Some(code) => Err(SubmitError::Postdrop(code)),
        None => Err(SubmitError::NoPostdrop(format!(
            "{}: {status}",
            program.display()
        ))),
    }
}
