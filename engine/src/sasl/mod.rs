//! SASL for smtpd: who may log in with SMTP AUTH (`smtpd_sasl_auth_enable`).
//!
//! **Role.** Answers the session's [`AuthRequest`]s (see
//! `sluice_protocols::smtp::server`, which runs the AUTH dialogue) with an
//! [`AuthVerdict`], through one of two backends (`smtpd_sasl_type`):
//!
//! - `dovecot`: Dovecot's auth socket at `smtpd_sasl_path` ([`dovecot`]),
//!   the way most Postfix sites authenticate;
//! - `sluice`: the built-in backend for sites without Dovecot, a
//!   Dovecot-format passwd-file of hashed passwords at
//!   `sluice_sasl_password_file` ([`passwd_file`]).
//!
//! **Off the shard.** Verifying a password is slow on purpose (argon2,
//! sha512-crypt) and Dovecot's socket is blocking I/O, so both run on the
//! executor's blocking thread ([`glommio::executor().spawn_blocking`]);
//! the session waits (sans-IO: `Want::Authenticate`) while the shard
//! serves everyone else. Per listener and shard at most
//! [`SASL_CONCURRENCY`] verifications are in flight; other sessions queue
//! on a semaphore, so the blocking pool's queue never grows past that.
//!
//! **Password file life.** Read at the first AUTH after start or reload,
//! then kept per shard and re-read (off the shard) whenever its device,
//! inode, size, mtime or ctime (a chmod) changes, so an edit takes effect without a reload.
//! A file that cannot be read or parsed gives `454 4.7.0` and a warning:
//! never an accepted login. `sluice check` and start-up parse it too
//! (`{PLAIN}` entries are refused there with the line number).
//!
//! **Trust.** Passwords live in the request only while it is verified and
//! are never logged.

pub mod dovecot;
pub mod passwd_file;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_protocols::smtp::server::{AuthRequest, AuthVerdict};

pub use dovecot::Peer;
use passwd_file::{FileStamp, PasswdFile};

/// Verifications in flight per listener on one shard. The executor has
/// one blocking thread (glommio's default pool), so more would only queue
/// there.
pub const SASL_CONCURRENCY: u64 = 2;

/// `smtpd_sasl_type` with its location, checked at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslBackend {
    /// `dovecot`: the auth client socket (`smtpd_sasl_path`, relative to
    /// `queue_directory` as in Postfix).
    Dovecot { socket: PathBuf },
    /// `sluice`: `sluice_sasl_password_file`.
    PasswdFile { path: PathBuf },
}

/// A verdict, and what the operator should read about it.
#[derive(Debug)]
pub struct Checked {
    pub verdict: AuthVerdict,
    /// A backend problem for a `warning: SASL: …` line (never the password).
    pub problem: Option<String>,
}

/// One listener's SASL backend on one shard.
pub struct Authenticator {
    backend: SaslBackend,
    /// The password file as last read on this shard.
    cache: RefCell<Option<Arc<PasswdFile>>>,
    gate: glommio::sync::Semaphore,
}

impl Authenticator {
    pub fn new(backend: SaslBackend) -> Authenticator {
        Authenticator {
            backend,
            cache: RefCell::new(None),
            gate: glommio::sync::Semaphore::new(SASL_CONCURRENCY),
        }
    }

    /// Verifies one login off the shard.
    pub async fn authenticate(&self, request: AuthRequest, peer: Peer) -> Checked {
        let Ok(_permit) = self.gate.acquire_permit(1).await else {
            return temp("SASL: authentication gate closed".into());
        };
        match &self.backend {
            SaslBackend::Dovecot { socket } => {
                let socket = socket.clone();
                let result = glommio::executor()
                    .spawn_blocking(move || dovecot::authenticate(&socket, &request, &peer))
                    .await;
                match result {
                    Ok(verdict) => Checked {
                        verdict,
                        problem: None,
                    },
                    Err(problem) => temp(problem),
                }
            }
            SaslBackend::PasswdFile { path } => {
                let path = path.clone();
                let cached = self.cache.borrow().clone();
                let (checked, fresh) = glommio::executor()
                    .spawn_blocking(move || check_file(&path, cached, &request))
                    .await;
                if let Some(fresh) = fresh {
                    *self.cache.borrow_mut() = Some(fresh);
                }
                checked
            }
        }
    }
}

fn temp(problem: String) -> Checked {
    Checked {
        verdict: AuthVerdict::Temp {
            reason: "(reason unavailable)".into(),
        },
        problem: Some(problem),
    }
}

/// Blocking: (re)reads the file when it changed, then verifies. Returns
/// the file when it was read anew, for the shard to keep.
fn check_file(
    path: &std::path::Path,
    cached: Option<Arc<PasswdFile>>,
    request: &AuthRequest,
) -> (Checked, Option<Arc<PasswdFile>>) {
    let stamp = match FileStamp::of(path) {
        Ok(s) => s,
        Err(e) => return (temp(format!("{}: {e}", path.display())), None),
    };
    if let Err(e) = std::fs::File::open(path) {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (the daemon reads it as mail_owner: make it readable by that user)"
        } else {
            ""
        };
        return (temp(format!("{}: {e}{hint}", path.display())), None);
    }
    let (file, fresh) = match cached {
        Some(file) if file.stamp == Some(stamp) => (file, None),
        _ => match PasswdFile::load(path) {
            Ok(file) => {
                let file = Arc::new(file);
                (file.clone(), Some(file))
            }
            Err(e) => return (temp(e), None),
        },
    };
    let verdict = if !request.authzid.is_empty() && request.authzid != request.username {
        AuthVerdict::Fail {
            reason: "authorization identity differs from the user name".into(),
        }
    } else if file.check(&request.username, &request.password) {
        AuthVerdict::Ok {
            username: request.username.clone(),
        }
    } else {
        AuthVerdict::Fail {
            reason: "authentication failure".into(),
        }
    };
    (
        Checked {
            verdict,
            problem: None,
        },
        fresh,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocols::smtp::server::Mechanism;

    const SHA512_SECRET: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

    fn request(user: &str, password: &str) -> AuthRequest {
        AuthRequest {
            mechanism: Mechanism::Plain,
            authzid: String::new(),
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn file_is_read_once_reread_on_change_and_never_accepts_when_broken() {
        let dir = std::env::temp_dir().join(format!("sluice-sasl-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, format!("jane:{{SHA512-CRYPT}}{SHA512_SECRET}\n")).unwrap();
        let (c, fresh) = check_file(&path, None, &request("jane", "secret"));
        assert_eq!(
            c.verdict,
            AuthVerdict::Ok {
                username: "jane".into()
            }
        );
        let cached = fresh.expect("read the first time");
        let (c, fresh) = check_file(&path, Some(cached.clone()), &request("jane", "nope"));
        assert!(matches!(c.verdict, AuthVerdict::Fail { .. }));
        assert!(fresh.is_none(), "unchanged: the cached copy serves");
        let (c, _) = check_file(&path, Some(cached.clone()), &request("bob", "jane"));
        assert!(matches!(c.verdict, AuthVerdict::Fail { .. }));
        let mut other = request("jane", "secret");
        other.authzid = "bob".into();
        assert!(matches!(
            check_file(&path, None, &other).0.verdict,
            AuthVerdict::Fail { .. }
        ));
        // Edited into a clear-text file: refused, never accepted.
        std::fs::write(&path, "jane:{PLAIN}secret\n").unwrap();
        let (c, fresh) = check_file(&path, Some(cached.clone()), &request("jane", "secret"));
        assert!(matches!(c.verdict, AuthVerdict::Temp { .. }), "{c:?}");
        assert!(c.problem.expect("problem").contains("{PLAIN} is refused"));
        assert!(fresh.is_none());
        // Gone: a temporary failure, whatever the cache holds.
        std::fs::remove_file(&path).unwrap();
        let (c, _) = check_file(&path, Some(cached), &request("jane", "secret"));
        assert!(matches!(c.verdict, AuthVerdict::Temp { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
