//! The system password file, through the C library (`getpwuid_r`,
//! `getpwnam_r`): login names for access lists and log lines, and the
//! ids of `mail_owner`.
//!
//! These calls may read `/etc/passwd` or ask NSS, so they block: callers
//! on a shard use them only for rare requests (a control-socket command),
//! never per message. Buffers grow to at most 1 MiB for a huge entry.

use std::ffi::{CStr, CString};

/// What Sluice uses of a password entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The GECOS field, if any.
    pub gecos: Option<String>,
}

/// The entry of a uid, if it has one.
pub fn by_uid(uid: u32) -> Option<Passwd> {
    lookup(|pwd, buf, result| {
        // SAFETY: every pointer is valid for the call and `buf.len()` is the
        // buffer's true size.
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
}

/// The entry of a login name, if it has one.
pub fn by_name(name: &str) -> Option<Passwd> {
    let cname = CString::new(name).ok()?;
    lookup(|pwd, buf, result| {
        // SAFETY: as in `by_uid`; `cname` is NUL-terminated.
        unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
}

/// Runs a `getpw*_r` call with a buffer that grows on ERANGE, and copies
/// the entry out of it.
fn lookup(
    mut call: impl FnMut(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> i32,
) -> Option<Passwd> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, &mut buf, &mut result);
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: the call succeeded, so pw_name (checked non-null) and
        // pw_gecos (checked below) are NUL-terminated strings in `buf`,
        // which outlives these borrows.
        let text =
            |p: *const libc::c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        return Some(Passwd {
            name: text(pwd.pw_name),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            gecos: (!pwd.pw_gecos.is_null()).then(|| text(pwd.pw_gecos)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero_both_ways() {
        let root = by_uid(0).expect("uid 0 has an entry");
        assert_eq!(root.name, "root");
        assert_eq!(by_name("root").map(|p| p.uid), Some(0));
    }

    #[test]
    fn unknown_names_and_ids_have_no_entry() {
        assert_eq!(by_name("no-such-user-sluice-test"), None);
        assert_eq!(by_name("nul\0inside"), None);
        assert_eq!(by_uid(4_000_000_000), None);
    }
}
