//! The system password and group files, through the C library
//! (`getpwuid_r`, `getpwnam_r`, `getgrnam_r`, `getgrgid_r`): login names
//! for access lists and log lines, the ids of `mail_owner`, and the gid
//! of `setgid_group`.
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

/// The gid of a group name, if the group exists.
pub fn group_gid(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    group_lookup(|grp, buf, result| {
        // SAFETY: every pointer is valid for the call and `buf.len()` is the
        // buffer's true size; `cname` is NUL-terminated.
        unsafe { libc::getgrnam_r(cname.as_ptr(), grp, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|(_, gid)| gid)
}

/// The name of a gid, if it has a group entry.
pub fn group_name(gid: u32) -> Option<String> {
    group_lookup(|grp, buf, result| {
        // SAFETY: as in `group_gid`.
        unsafe { libc::getgrgid_r(gid, grp, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|(name, _)| name)
}

/// Runs a `getgr*_r` call with a buffer that grows on ERANGE.
fn group_lookup(
    mut call: impl FnMut(&mut libc::group, &mut [libc::c_char], &mut *mut libc::group) -> i32,
) -> Option<(String, u32)> {
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers, zero id).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = call(&mut grp, &mut buf, &mut result);
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: the call succeeded and gr_name (checked non-null) is a
        // NUL-terminated string in `buf`.
        let name = unsafe { CStr::from_ptr(grp.gr_name) }
            .to_string_lossy()
            .into_owned();
        return Some((name, grp.gr_gid));
    }
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
    fn root_group_both_ways() {
        assert_eq!(group_gid("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(group_gid("no-such-group-sluice-test"), None);
    }

    #[test]
    fn unknown_names_and_ids_have_no_entry() {
        assert_eq!(by_name("no-such-user-sluice-test"), None);
        assert_eq!(by_name("nul\0inside"), None);
        assert_eq!(by_uid(4_000_000_000), None);
    }
}
