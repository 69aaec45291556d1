//! The queue directory's owners and modes: Postfix's `postfix-files` and
//! `postfix set-permissions`, for Sluice's layout.
//!
//! **Role.** [`apply`] creates what is missing and repairs what is wrong.
//! The master runs it as root at every start, before it binds and drops
//! privileges ([`crate::privilege`]), so that a queue written by root (an
//! offline `postsuper`, an older version that ran as root) is the mail
//! owner's again; `sluice set-permissions` runs it on demand.
//!
//! **The layout** (as root; `owner` is mail_owner with its primary group):
//!
//! | path | owner | mode | contents |
//! |---|---|---|---|
//! | `queue_directory` | root | 0755 | (Postfix's too: root-owned, so that the private subdirectories below are the only way in) |
//! | `N/` (one per shard) | owner | 0700 | queue-log segments 0600, recursively |
//! | `maildrop-bad/` | owner | 0700 | quarantined files 0600 |
//! | `maildrop/` | owner:`setgid_group` | 1730 | submitted files, left as their writer made them (0444, readable only through the directory) |
//! | `public/` | owner | 0755 | `showq.N` control sockets 0666: anyone may connect, the daemon checks the caller (SO_PEERCRED) |
//! | `pid/` | owner | 0755 | `master.pid`, `master.ready` 0644 |
//! | `maillog` | owner | 0600 | |
//!
//! Ordinary users may list `queue_directory` and reach `public/` (for
//! `mailq`) and `maildrop/` (through the setgid `postdrop` only); mail
//! itself is readable by root and the mail owner alone. Anything else
//! found at the top of `queue_directory` is left alone.
//!
//! **Trust.** Runs as root inside directories the mail owner can write:
//! files and directories are opened with `O_NOFOLLOW` and changed through
//! their descriptor, so a symlink planted there never redirects a chown or
//! chmod; symlinks and other special files are skipped (sockets in
//! `public/` are changed by path, after an `lstat`).
//!
//! Without root nothing here runs: a private instance keeps the invoking
//! user's files (the daemon's umask 077 makes them private).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::control;
use crate::privilege::Ids;

/// Modes of the layout (module docs).
pub const QUEUE_DIR_MODE: u32 = 0o755;
pub const PRIVATE_DIR_MODE: u32 = 0o700;
pub const PRIVATE_FILE_MODE: u32 = 0o600;
pub const MAILDROP_MODE: u32 = 0o1730;
pub const PUBLIC_DIR_MODE: u32 = 0o755;
pub const SOCKET_MODE: u32 = 0o666;
pub const PID_FILE_MODE: u32 = 0o644;
/// Subdirectory depth followed under a shard directory (it has none
/// today; a bound keeps a hostile tree from recursing forever).
const MAX_DEPTH: usize = 4;

/// What one entry should be.
#[derive(Clone, Copy)]
struct Want {
    uid: u32,
    gid: Option<u32>,
    mode: u32,
}

/// Create what is missing and repair owners and modes; `nshards` shard
/// directories are created (existing ones are repaired whatever their
/// number). Returns how many entries were changed.
pub fn apply(queue_dir: &Path, ids: &Ids, nshards: usize) -> io::Result<usize> {
    let mut changed = 0;
    make_dir(queue_dir, QUEUE_DIR_MODE)?;
    changed += fix_dir(
        queue_dir,
        Want {
            uid: 0,
            gid: None,
            mode: QUEUE_DIR_MODE,
        },
    )?;
    let owner = |mode| Want {
        uid: ids.uid,
        gid: Some(ids.gid),
        mode,
    };
    let mut shards: Vec<String> = (0..nshards).map(|n| n.to_string()).collect();
    for (n, _) in control::shard_dirs(queue_dir)? {
        if n >= nshards {
            shards.push(n.to_string());
        }
    }
    for name in &shards {
        let dir = queue_dir.join(name);
        make_dir(&dir, PRIVATE_DIR_MODE)?;
        changed += fix_tree(&dir, owner(PRIVATE_DIR_MODE), owner(PRIVATE_FILE_MODE), 0)?;
    }
    // Made here: pickup, running as the owner, cannot create it in the
    // root-owned queue directory.
    let bad = queue_dir.join("maildrop-bad");
    make_dir(&bad, PRIVATE_DIR_MODE)?;
    changed += fix_tree(&bad, owner(PRIVATE_DIR_MODE), owner(PRIVATE_FILE_MODE), 0)?;
    let maildrop = queue_dir.join("maildrop");
    make_dir(&maildrop, PRIVATE_DIR_MODE)?;
    changed += fix_dir(
        &maildrop,
        Want {
            uid: ids.uid,
            gid: Some(ids.setgid_gid),
            mode: MAILDROP_MODE,
        },
    )?;
    changed += fix_public(&control::public_dir(queue_dir), ids)?;
    let pid = queue_dir.join("pid");
    make_dir(&pid, PUBLIC_DIR_MODE)?;
    changed += fix_tree(
        &pid,
        owner(PUBLIC_DIR_MODE),
        owner(PID_FILE_MODE),
        MAX_DEPTH,
    )?;
    let maillog = queue_dir.join("maillog");
    if fs::symlink_metadata(&maillog).is_ok_and(|m| m.is_file()) {
        changed += fix_file(&maillog, owner(PRIVATE_FILE_MODE))?;
    }
    Ok(changed)
}

/// Creates `dir` (not its parents' modes) if it is missing.
fn make_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_nofollow(path: &Path, dir: bool) -> io::Result<File> {
    let flags = libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_CLOEXEC
        | if dir { libc::O_DIRECTORY } else { 0 };
    OpenOptions::new().read(true).custom_flags(flags).open(path)
}

/// Owner and mode through an open descriptor; 1 if anything changed.
fn fix_fd(file: &File, want: Want) -> io::Result<usize> {
    let meta = file.metadata()?;
    let mut changed = 0;
    let gid_ok = want.gid.is_none_or(|g| g == meta.gid());
    if meta.uid() != want.uid || !gid_ok {
        std::os::unix::fs::fchown(file, Some(want.uid), want.gid)?;
        changed = 1;
    }
    // chown clears set-id bits; compare and set the mode after it.
    if meta.mode() & 0o7777 != want.mode || changed == 1 {
        file.set_permissions(fs::Permissions::from_mode(want.mode))?;
        changed = 1;
    }
    Ok(changed)
}

fn fix_dir(path: &Path, want: Want) -> io::Result<usize> {
    fix_fd(&open_nofollow(path, true)?, want)
}

fn fix_file(path: &Path, want: Want) -> io::Result<usize> {
    let file = open_nofollow(path, false)?;
    if !file.metadata()?.is_file() {
        return Ok(0);
    }
    fix_fd(&file, want)
}

/// A directory and everything under it (to `MAX_DEPTH - depth` levels);
/// symlinks and special files are skipped.
fn fix_tree(dir: &Path, dirs: Want, files: Want, depth: usize) -> io::Result<usize> {
    let mut changed = fix_dir(dir, dirs)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        let done = if ft.is_dir() && depth < MAX_DEPTH {
            fix_tree(&path, dirs, files, depth + 1)
        } else if ft.is_file() {
            fix_file(&path, files)
        } else {
            Ok(0)
        };
        match done {
            Ok(n) => changed += n,
            // Removed meanwhile (a stop's marker, a compacted segment).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// `public/`: the directory, its sockets 0666, anything else private.
fn fix_public(public: &Path, ids: &Ids) -> io::Result<usize> {
    make_dir(public, PUBLIC_DIR_MODE)?;
    let owner = |mode| Want {
        uid: ids.uid,
        gid: Some(ids.gid),
        mode,
    };
    let mut changed = fix_dir(public, owner(PUBLIC_DIR_MODE))?;
    for entry in fs::read_dir(public)? {
        let entry = entry?;
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_socket() {
            if meta.uid() != ids.uid || meta.gid() != ids.gid {
                std::os::unix::fs::lchown(&path, Some(ids.uid), Some(ids.gid))?;
                changed += 1;
            }
            if meta.mode() & 0o7777 != SOCKET_MODE {
                fs::set_permissions(&path, fs::Permissions::from_mode(SOCKET_MODE))?;
                changed += 1;
            }
        } else if meta.is_file() {
            changed += fix_file(&path, owner(PRIVATE_FILE_MODE))?;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_postfix_like() {
        assert_eq!(MAILDROP_MODE, 0o1730);
        assert_eq!(PRIVATE_DIR_MODE & 0o077, 0);
        assert_eq!(PRIVATE_FILE_MODE & 0o077, 0);
    }
}
