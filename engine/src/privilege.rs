//! Privileges as Postfix has them: who the daemon runs as, and the drop.
//!
//! **Role.** Started as root, the master resolves `mail_owner` and
//! `setgid_group` with Postfix's checks (`mail_params.c`: the owner must
//! exist and have neither uid 0 nor gid 0, the group must exist and not be
//! gid 0, and the two may not share a gid), prepares the queue directory
//! ([`crate::set_permissions`]), binds every listener, and then calls
//! [`drop_to`] *on the main thread, before any shard thread exists*:
//! `setgroups([gid])`, `setgid(gid)`, `setuid(uid)`. The shards are
//! spawned afterwards and inherit those credentials, so no thread of the
//! process ever reads a byte from the network as root. (glibc's set*id
//! calls also broadcast to every thread of the process; we do not rely
//! on it, since no other thread exists yet.) The drop is irrevocable: it
//! is verified with `getresuid`/`getresgid` (real, effective and saved ids
//! all equal the owner's), the supplementary groups, and a `setuid(0)`
//! that must fail.
//!
//! Without root (the embedded default, a private instance), nothing
//! changes: the daemon runs as the invoking user.
//!
//! **Trust.** main.cf is trusted; the names it gives are resolved once,
//! through the C library (`crate::passwd`), before anything starts.
//!
//! **Not here yet.** Delivery that must stay root (a user's mailbox or
//! command) belongs in a separate small helper process, never in the
//! shards; there is none yet.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::passwd;

/// The ids the daemon runs as after the drop, and the submission group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// `mail_owner`'s login name.
    pub owner: String,
    pub uid: u32,
    /// mail_owner's primary group: the daemon's only group after the drop.
    pub gid: u32,
    /// `setgid_group`'s name and gid (maildrop's group).
    pub setgid_group: String,
    pub setgid_gid: u32,
}

/// A mail_owner or setgid_group that Postfix would refuse, or a drop that
/// did not take. Display: Postfix's text.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("file {main_cf}: parameter mail_owner: unknown user name value: {name}")]
    UnknownOwner { main_cf: String, name: String },
    #[error("file {main_cf}: parameter mail_owner: user {name} has privileged user ID")]
    PrivilegedUid { main_cf: String, name: String },
    #[error("file {main_cf}: parameter mail_owner: user {name} has privileged group ID")]
    PrivilegedGid { main_cf: String, name: String },
    #[error("file {main_cf}: parameter setgid_group: unknown group name: {name}")]
    UnknownGroup { main_cf: String, name: String },
    #[error("file {main_cf}: parameter setgid_group: group {name} has privileged group ID")]
    PrivilegedGroup { main_cf: String, name: String },
    #[error("file {main_cf}: parameters mail_owner and setgid_group: user {owner} and group {group} have the same group ID: {gid}")]
    SharedGid {
        main_cf: String,
        owner: String,
        group: String,
        gid: u32,
    },
    #[error("cannot drop privileges to {owner}: {what}: {source}")]
    Drop {
        owner: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("privileges were not dropped irrevocably to {owner}: {what}")]
    NotIrrevocable { owner: String, what: String },
}

/// Whether this process runs with an effective uid of 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn main_cf_name(config: &Config) -> String {
    main_cf_path(&config.config_dir).display().to_string()
}

fn main_cf_path(dir: &Path) -> PathBuf {
    dir.join("main.cf")
}

/// Who the embedded default configuration runs as when root starts it on
/// a machine without mail_owner or setgid_group (a fresh machine with no
/// Postfix accounts): an account every system has, so that the README's
/// first command works anywhere and still never reads the network as
/// root. With a main.cf, Postfix's rule holds: an unknown name is fatal.
const EMBEDDED_FALLBACK_OWNER: &str = "nobody";

/// mail_owner and setgid_group of `config`, checked as Postfix checks them
/// (see [`EMBEDDED_FALLBACK_OWNER`] for the embedded default).
pub fn resolve(config: &Config) -> Result<Ids, PrivilegeError> {
    match resolve_named(config) {
        Err(PrivilegeError::UnknownOwner { .. } | PrivilegeError::UnknownGroup { .. })
            if config.embedded =>
        {
            embedded_fallback(config)
        }
        r => r,
    }
}

/// nobody, with nobody's own group as maildrop's group (no postdrop: only
/// root and the daemon submit to a trial instance).
fn embedded_fallback(config: &Config) -> Result<Ids, PrivilegeError> {
    let main_cf = main_cf_name(config);
    let name = EMBEDDED_FALLBACK_OWNER.to_string();
    let pw = passwd::by_name(&name).ok_or_else(|| PrivilegeError::UnknownOwner {
        main_cf: main_cf.clone(),
        name: name.clone(),
    })?;
    if pw.uid == 0 || pw.gid == 0 {
        return Err(PrivilegeError::PrivilegedUid { main_cf, name });
    }
    tracing::warn!(
        target: "master",
        "warning: user {} or group {} does not exist; the embedded default configuration runs as {name} (create them, write a main.cf, or start Sluice as an ordinary user)",
        config.params.mail_owner,
        config.params.setgid_group
    );
    Ok(Ids {
        owner: name,
        uid: pw.uid,
        gid: pw.gid,
        setgid_group: format!("gid {}", pw.gid),
        setgid_gid: pw.gid,
    })
}

fn resolve_named(config: &Config) -> Result<Ids, PrivilegeError> {
    let main_cf = main_cf_name(config);
    let owner = config.params.mail_owner.clone();
    let group = config.params.setgid_group.clone();
    let pw = passwd::by_name(&owner).ok_or_else(|| PrivilegeError::UnknownOwner {
        main_cf: main_cf.clone(),
        name: owner.clone(),
    })?;
    if pw.uid == 0 {
        return Err(PrivilegeError::PrivilegedUid {
            main_cf,
            name: owner,
        });
    }
    if pw.gid == 0 {
        return Err(PrivilegeError::PrivilegedGid {
            main_cf,
            name: owner,
        });
    }
    let setgid_gid = passwd::group_gid(&group).ok_or_else(|| PrivilegeError::UnknownGroup {
        main_cf: main_cf.clone(),
        name: group.clone(),
    })?;
    if setgid_gid == 0 {
        return Err(PrivilegeError::PrivilegedGroup {
            main_cf,
            name: group,
        });
    }
    if setgid_gid == pw.gid {
        return Err(PrivilegeError::SharedGid {
            main_cf,
            owner,
            group,
            gid: setgid_gid,
        });
    }
    Ok(Ids {
        owner,
        uid: pw.uid,
        gid: pw.gid,
        setgid_group: group,
        setgid_gid,
    })
}

fn last_error(owner: &str, what: &'static str) -> PrivilegeError {
    PrivilegeError::Drop {
        owner: owner.to_string(),
        what,
        source: std::io::Error::last_os_error(),
    }
}

/// Become mail_owner for good: groups, then gid, then uid (the order that
/// still has the right to change each). Call it from the main thread
/// before spawning any other thread.
pub fn drop_to(ids: &Ids) -> Result<(), PrivilegeError> {
    let gid = ids.gid as libc::gid_t;
    // SAFETY: setgroups reads one gid from a valid pointer.
    if unsafe { libc::setgroups(1, &gid) } != 0 {
        return Err(last_error(&ids.owner, "setgroups"));
    }
    // SAFETY: setgid/setuid have no memory preconditions. As root they set
    // the real, effective and saved ids alike.
    if unsafe { libc::setgid(gid) } != 0 {
        return Err(last_error(&ids.owner, "setgid"));
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(ids.uid as libc::uid_t) } != 0 {
        return Err(last_error(&ids.owner, "setuid"));
    }
    verify_dropped(ids)
}

/// The drop took and cannot be undone.
fn verify_dropped(ids: &Ids) -> Result<(), PrivilegeError> {
    let fail = |what: String| PrivilegeError::NotIrrevocable {
        owner: ids.owner.clone(),
        what,
    };
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid/getresgid write three ids to valid pointers.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    if [r, e, s] != [ids.uid; 3] {
        return Err(fail(format!("uids are {r}/{e}/{s}")));
    }
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    if [r, e, s] != [ids.gid; 3] {
        return Err(fail(format!("gids are {r}/{e}/{s}")));
    }
    let mut groups = [0 as libc::gid_t; 8];
    // SAFETY: getgroups writes at most `groups.len()` gids.
    let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
    if n < 0 || groups[..n as usize].iter().any(|&g| g != ids.gid) {
        return Err(fail("supplementary groups remain".to_string()));
    }
    // SAFETY: a setuid(0) that must fail; if it succeeds we report it.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(fail("setuid(0) succeeded".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(extra: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("sluice-priv-{}", std::process::id()));
        crate::config::from_text(
            &dir,
            (
                &format!("queue_directory = /nonexistent\n{extra}"),
                Path::new("main.cf"),
            ),
            ("", Path::new("master.cf")),
            &crate::config::HostFacts::for_tests(),
            &dir,
        )
        .unwrap()
    }

    #[test]
    fn root_as_mail_owner_is_refused_in_postfix_words() {
        let e = resolve(&config_with("mail_owner = root\n")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.ends_with("main.cf: parameter mail_owner: user root has privileged user ID"),
            "{text}"
        );
    }

    #[test]
    fn unknown_owner_and_group_are_refused() {
        let e = resolve(&config_with("mail_owner = no-such-user-sluice\n")).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("parameter mail_owner: unknown user name value: no-such-user-sluice"),
            "{e}"
        );
        let e = resolve(&config_with(
            "mail_owner = nobody\nsetgid_group = no-such-group-sluice\n",
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("parameter setgid_group: unknown group name: no-such-group-sluice"),
            "{e}"
        );
        let e = resolve(&config_with("mail_owner = nobody\nsetgid_group = root\n")).unwrap_err();
        assert!(e.to_string().contains("has privileged group ID"), "{e}");
    }

    #[test]
    fn the_embedded_default_falls_back_to_nobody_but_a_main_cf_does_not() {
        let nobody = passwd::by_name("nobody").expect("the system has a nobody account");
        let mut config = config_with("mail_owner = no-such-user-sluice\n");
        assert!(resolve(&config).is_err());
        config.embedded = true;
        let ids = resolve(&config).unwrap();
        assert_eq!(
            (ids.owner.as_str(), ids.uid, ids.gid),
            ("nobody", nobody.uid, nobody.gid)
        );
        assert_eq!(ids.setgid_gid, nobody.gid);
        config.params.mail_owner = "root".to_string();
        assert!(matches!(
            resolve(&config),
            Err(PrivilegeError::PrivilegedUid { .. })
        ));
    }
}
