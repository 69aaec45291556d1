//! `sluice install-links DIR` and `sluice set-permissions`: putting the
//! commands in place and repairing the queue's owners and modes, as
//! Postfix's `post-install` and `postfix set-permissions` do.
//!
//! - install-links makes a symlink per Postfix name ([`LINK_NAMES`]) to
//!   the running binary, and, as root, installs `DIR/postdrop`: a copy of
//!   the `sluice-postdrop` binary built beside it, owned by root and
//!   `setgid_group`, mode 2755 (Postfix's is 2555 root:postdrop). A copy,
//!   not a link, so that the build output never carries the setgid bit.
//!   It is written under a temporary name, given its owner and mode, then
//!   renamed into place. An existing `postdrop` that is not Sluice's
//!   (Postfix's, say) is never replaced.
//! - set-permissions (root only) resolves mail_owner and setgid_group and
//!   runs [`sluice_engine::set_permissions::apply`] on the queue.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sluice_engine::config::Config;
use sluice_engine::{passwd, privilege, set_permissions};

use crate::cli::exit;

/// The names the binary answers to through a symlink.
pub const LINK_NAMES: &[&str] = &[
    "sendmail",
    "mailq",
    "postqueue",
    "postsuper",
    "postcat",
    "postconf",
];

/// The postdrop binary built beside sluice.
const POSTDROP_BIN: &str = "sluice-postdrop";
/// Text only Sluice's postdrop contains (its usage line).
const POSTDROP_MARK: &[u8] = b"usage: postdrop -S [-c config_dir]";
/// setgid, rwx for root, rx for everyone.
const POSTDROP_MODE: u32 = 0o2755;

fn fatal(code: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("sluice: fatal: {msg}");
    code
}

/// `sluice install-links DIR`.
pub fn install_links(config: &Config, dir: &Path) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fatal(exit::OSERR, format!("cannot find my own executable: {e}")),
    };
    if let Err(e) = fs::create_dir_all(dir) {
        return fatal(exit::CANTCREAT, format!("{}: {e}", dir.display()));
    }
    for name in LINK_NAMES {
        if let Err(msg) = symlink(&exe, &dir.join(name)) {
            return fatal(exit::CANTCREAT, msg);
        }
    }
    if !privilege::is_root() {
        eprintln!("sluice: warning: not root: {}/postdrop not installed; ordinary users' sendmail needs it (setgid {})", dir.display(), config.params.setgid_group);
        return exit::OK;
    }
    let source = exe.with_file_name(POSTDROP_BIN);
    match install_postdrop(&source, &dir.join("postdrop"), &config.params.setgid_group) {
        Ok(target) => {
            println!(
                "{} (setgid {}, mode {POSTDROP_MODE:o})",
                target.display(),
                config.params.setgid_group
            );
            exit::OK
        }
        Err(msg) => fatal(exit::CANTCREAT, msg),
    }
}

fn symlink(exe: &Path, link: &Path) -> Result<(), String> {
    if let Ok(m) = fs::symlink_metadata(link) {
        if !m.file_type().is_symlink() {
            return Err(format!(
                "{}: exists and is not a symlink; not replacing it",
                link.display()
            ));
        }
        let _ = fs::remove_file(link);
    }
    std::os::unix::fs::symlink(exe, link).map_err(|e| format!("{}: {e}", link.display()))?;
    println!("{} -> {}", link.display(), exe.display());
    Ok(())
}

fn install_postdrop(source: &Path, target: &Path, group: &str) -> Result<PathBuf, String> {
    let gid = passwd::group_gid(group)
        .ok_or_else(|| format!("parameter setgid_group: unknown group name: {group}"))?;
    let bytes = fs::read(source).map_err(|e| {
        format!(
            "{}: {e} (build it: cargo build --release --bins)",
            source.display()
        )
    })?;
    if let Ok(existing) = fs::symlink_metadata(target) {
        let ours = existing.is_file()
            && fs::read(target).is_ok_and(|b| memchr::memmem::find(&b, POSTDROP_MARK).is_some());
        if !ours {
            return Err(format!(
                "{}: exists and is not Sluice's postdrop; not replacing it",
                target.display()
            ));
        }
    }
    let tmp = target.with_file_name(format!(".postdrop.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        std::os::unix::fs::fchown(&f, Some(0), Some(gid))?;
        // After the chown, which would clear the setgid bit.
        f.set_permissions(fs::Permissions::from_mode(POSTDROP_MODE))?;
        f.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(format!("{}: {e}", target.display()));
    }
    Ok(target.to_path_buf())
}

/// `sluice set-permissions`: root only, as `postfix set-permissions`.
pub fn set_permissions(config: &Config) -> i32 {
    if !privilege::is_root() {
        eprintln!("sluice: fatal: set-permissions is reserved for the superuser");
        return 1;
    }
    let ids = match privilege::resolve(config) {
        Ok(ids) => ids,
        Err(e) => return fatal(exit::CONFIG, e),
    };
    let queue_dir = &config.params.queue_directory;
    match set_permissions::apply(queue_dir, &ids, 0) {
        Ok(changed) => {
            eprintln!(
                "sluice: {}: owner {}, {changed} entries repaired",
                queue_dir.display(),
                ids.owner
            );
            exit::OK
        }
        Err(e) => fatal(exit::CANTCREAT, format!("{}: {e}", queue_dir.display())),
    }
}
