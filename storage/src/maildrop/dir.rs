//! The maildrop directory: depositing, listing, loading and quarantining
//! files, and the directory's permissions. See the parent module's docs for
//! the protocol and the trust model.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{decode, encode, MaildropError, MaildropMessage};

/// The maildrop's name under `queue_directory` (Postfix's).
pub const MAILDROP_DIR: &str = "maildrop";
/// Where files that cannot be decoded are moved, under `queue_directory`.
pub const QUARANTINE_DIR: &str = "maildrop-bad";

/// Prefix of files being written; never picked up.
const TEMP_PREFIX: &str = ".tmp.";
/// `maildrop/` as root: owner rwx, group wx (deposit, not list), others
/// nothing, sticky so that a writer can remove only its own files
/// (Postfix's `maildrop:d:$mail_owner:$setgid_group:1730`).
pub const SHARED_DIR_MODE: u32 = 0o1730;
/// `maildrop/` of a private (non-root) instance, and `maildrop-bad/`.
const PRIVATE_DIR_MODE: u32 = 0o700;
/// A new queue directory created by root, as Postfix's.
const ROOT_QUEUE_DIR_MODE: u32 = 0o755;
/// Files: readable by the daemon whoever wrote them (Postfix's postdrop
/// makes them 0444 too); the directory's mode keeps others from reaching
/// them.
pub const FILE_MODE: u32 = 0o444;
/// Attempts at a fresh name before giving up (temp files, quarantine).
const NAME_ATTEMPTS: u32 = 1000;

/// Deposits made by this process, so that two in the same microsecond get
/// different names. Process-wide by nature: the name's uniqueness is a
/// property of the process (its pid), not of any configuration.
static DEPOSIT_SEQ: AtomicU32 = AtomicU32::new(0);

/// `queue_dir/maildrop`.
pub fn maildrop_dir(queue_dir: &Path) -> PathBuf {
    queue_dir.join(MAILDROP_DIR)
}

/// `queue_dir/maildrop-bad`.
pub fn quarantine_dir(queue_dir: &Path) -> PathBuf {
    queue_dir.join(QUARANTINE_DIR)
}

/// Creates `queue_dir` and `maildrop/` if they are missing, with the
/// ownership and modes of the parent module's docs. An existing `maildrop/`
/// is left as it is (it must be a directory, not a symlink). `mail_owner` is
/// main.cf's, and `setgid_group` (postdrop) the group that may deposit;
/// when run as root and no such user exists, the directory stays
/// root-owned `0700`, so that only root can submit.
pub fn ensure_dir(queue_dir: &Path, mail_owner: &str, setgid_group: &str) -> io::Result<()> {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !queue_dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(if root {
                ROOT_QUEUE_DIR_MODE
            } else {
                PRIVATE_DIR_MODE
            })
            .create(queue_dir)?;
    }
    let dir = maildrop_dir(queue_dir);
    match DirBuilder::new().mode(PRIVATE_DIR_MODE).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return if fs::symlink_metadata(&dir)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", dir.display()),
                ))
            };
        }
        Err(e) => return Err(e),
    }
    // Set the mode on the directory we just made, through a descriptor that
    // cannot have been swapped for a symlink; umask does not apply here.
    let handle = open_dir(&dir)?;
    if root {
        if let Some((uid, gid)) = shared_owner(queue_dir, mail_owner, setgid_group)? {
            std::os::unix::fs::fchown(&handle, Some(uid), Some(gid))?;
            return handle.set_permissions(Permissions::from_mode(SHARED_DIR_MODE));
        }
    }
    handle.set_permissions(Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// Who owns a `maildrop/` root creates: the queue directory's owner when
/// that is not root (someone's private instance, with its group), else
/// mail_owner with the `setgid_group` group (or mail_owner's primary group).
/// `None`: mail_owner does not exist.
fn shared_owner(
    queue_dir: &Path,
    mail_owner: &str,
    setgid_group: &str,
) -> io::Result<Option<(u32, u32)>> {
    let q = fs::metadata(queue_dir)?;
    if q.uid() != 0 {
        return Ok(Some((q.uid(), q.gid())));
    }
    let Some((uid, primary_gid)) = lookup_user(mail_owner) else {
        return Ok(None);
    };
    Ok(Some((
        uid,
        lookup_group(setgid_group).unwrap_or(primary_gid),
    )))
}

/// Writes `m` into the maildrop (which must exist; see [`ensure_dir`]) and
/// returns the final path. On success the file is durable and complete;
/// on failure nothing is left under a final name.
pub fn deposit(queue_dir: &Path, m: &MaildropMessage) -> io::Result<PathBuf> {
    let dir = maildrop_dir(queue_dir);
    let bytes = encode(m);
    let pid = std::process::id();
    let (tmp, mut file) = create_temp(&dir, pid)?;
    let written = (|| {
        file.write_all(&bytes)?;
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
        file.sync_all()
    })();
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let final_path = dir.join(final_name(SystemTime::now(), pid));
    if let Err(e) = fs::rename(&tmp, &final_path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = sync_dir(&dir) {
        // We are about to report failure: withdraw the file, so that a
        // retry by the user does not make a duplicate.
        let _ = fs::remove_file(&final_path);
        return Err(e);
    }
    Ok(final_path)
}

/// `<secs>.<usec>.<pid>.<seq>`: sorts by time, unique per process.
fn final_name(now: SystemTime, pid: u32) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seq = DEPOSIT_SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.{:06}.{pid}.{seq}",
        since.as_secs(),
        since.subsec_micros()
    )
}

fn create_temp(dir: &Path, pid: u32) -> io::Result<(PathBuf, File)> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut last = None;
    for attempt in 0..NAME_ATTEMPTS {
        let path = dir.join(format!(
            "{TEMP_PREFIX}{pid}.{}",
            nanos + u128::from(attempt)
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Files ready for pickup, oldest first, at most `limit`: everything in
/// `maildrop/` except directories and names that start with a dot (files
/// being written). Names this module did not make are included, ordered by
/// their modification time, so that pickup meets them and quarantines them.
pub fn ready_files(queue_dir: &Path, limit: usize) -> io::Result<Vec<PathBuf>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let dir = maildrop_dir(queue_dir);
    let mut found: Vec<(SortKey, OsString)> = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let file_type = match entry.file_type() {
            Ok(t) => t,
            // Picked up or removed while we were listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if file_type.is_dir() {
            continue;
        }
        let key = match parse_name(&name) {
            Some(key) => key,
            None => match fs::symlink_metadata(entry.path()) {
                Ok(meta) => SortKey {
                    time_us: mtime_us(&meta),
                    pid: u32::MAX,
                    seq: u32::MAX,
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            },
        };
        found.push((key, name));
    }
    found.sort_unstable();
    found.truncate(limit);
    Ok(found.into_iter().map(|(_, name)| dir.join(name)).collect())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    time_us: u64,
    pid: u32,
    seq: u32,
}

/// The parts of a name [`final_name`] made.
fn parse_name(name: &OsStr) -> Option<SortKey> {
    let mut parts = name.to_str()?.split('.');
    let mut next = || -> Option<u64> {
        let p = parts.next()?;
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (secs, usec, pid, seq) = (next()?, next()?, next()?, next()?);
    if parts.next().is_some() || usec >= 1_000_000 {
        return None;
    }
    Some(SortKey {
        time_us: secs.checked_mul(1_000_000)?.checked_add(usec)?,
        pid: u32::try_from(pid).ok()?,
        seq: u32::try_from(seq).ok()?,
    })
}

fn mtime_us(meta: &fs::Metadata) -> u64 {
    let secs = u64::try_from(meta.mtime()).unwrap_or(0);
    let nsec = u64::try_from(meta.mtime_nsec()).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nsec / 1000)
}

/// A maildrop file read by [`load`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub message: MaildropMessage,
    /// The file's owner: the uid to believe when the owner is neither root
    /// nor mail_owner (see the parent module's docs on trust).
    pub file_uid: u32,
}

/// Why [`load`] could not read a message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Opening or reading failed. Transient (try again later), except
    /// `NotFound`, which means the file is gone (already picked up).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A symlink, directory, FIFO or device: never read.
    #[error("{}: not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: file size {size} exceeds the limit of {limit} bytes", path.display())]
    TooBig {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{}: {source}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: MaildropError,
    },
}

impl LoadError {
    /// The file will never load: quarantine it. Otherwise leave it for the
    /// next scan.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, LoadError::Io { .. })
    }
}

/// Reads and decodes one maildrop file of at most `max_bytes` (pass
/// `message_size_limit` plus room for the envelope; `u64::MAX` for no
/// bound). Symlinks and special files are refused without being read.
pub fn load(path: &Path, max_bytes: u64) -> Result<Loaded, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted here must not hang pickup.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(LoadError::NotRegular {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(LoadError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > max_bytes {
        return Err(LoadError::TooBig {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: max_bytes,
        });
    }
    // Read at most one byte past the bound, in case the file grew.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > max_bytes {
        return Err(LoadError::TooBig {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    let message = decode(&bytes).map_err(|source| LoadError::Malformed {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Loaded {
        message,
        file_uid: meta.uid(),
    })
}

/// Moves a maildrop file that will never load to `maildrop-bad/` (created
/// `0700` if missing), keeping its name (with `.N` appended if taken), and
/// returns its new path.
pub fn quarantine(queue_dir: &Path, path: &Path) -> io::Result<PathBuf> {
    let bad = quarantine_dir(queue_dir);
    match DirBuilder::new().mode(PRIVATE_DIR_MODE).create(&bad) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        )
    })?;
    for n in 0..NAME_ATTEMPTS {
        let target = if n == 0 {
            bad.join(name)
        } else {
            let mut s = name.to_os_string();
            s.push(format!(".{n}"));
            bad.join(s)
        };
        // Only the pickup service quarantines, one file at a time, so
        // checking first does not race with another quarantine.
        match fs::symlink_metadata(&target) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::rename(path, &target)?;
        sync_dir(&bad)?;
        if let Some(from) = path.parent() {
            sync_dir(from)?;
        }
        return Ok(target);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{}: no free name in {}", path.display(), bad.display()),
    ))
}

/// Deletes temporary files (`.tmp.*`) last modified more than `older_than`
/// before `now`: left by a writer that crashed or was killed. Returns how
/// many were removed.
pub fn remove_stale_temps(
    queue_dir: &Path,
    older_than: Duration,
    now: SystemTime,
) -> io::Result<usize> {
    let dir = maildrop_dir(queue_dir);
    let cutoff = now.checked_sub(older_than).unwrap_or(UNIX_EPOCH);
    let mut removed = 0;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            continue;
        }
        let modified = match entry.metadata().and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if modified < cutoff {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

fn open_dir(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
}

/// fsync a directory, so that a rename in it is durable. A member of the
/// maildrop's group may deposit but not read the directory (mode 0730),
/// and so cannot open it: then the rename's durability is the file
/// system's (the file's own data was synced before it).
fn sync_dir(dir: &Path) -> io::Result<()> {
    match open_dir(dir) {
        Ok(d) => d.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(e),
    }
}

/// `(uid, primary gid)` of a user, by name.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is the
        // buffer's true size; `result` is set to `&pwd` or null.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid));
    }
}

/// A group's gid, by name.
fn lookup_group(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid `group`.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in lookup_user.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(grp.gr_gid);
    }
}
