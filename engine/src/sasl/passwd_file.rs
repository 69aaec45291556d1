//! The built-in SASL backend's password file (`smtpd_sasl_type = sluice`,
//! `sluice_sasl_password_file`), in Dovecot's passwd-file format so that
//! operators can reuse a Dovecot file.
//!
//! **Format.** One user a line, `user:{SCHEME}hash`, optionally followed by
//! Dovecot's further `:`-separated fields (uid, gid, gecos, home, shell,
//! extra), which are ignored. Blank lines and lines starting with `#` are
//! skipped. User names are matched exactly (Dovecot's default).
//!
//! **Schemes**: `{SHA512-CRYPT}` (`$6$…`, glibc crypt, `doveadm pw -s
//! SHA512-CRYPT`), `{SHA256-CRYPT}` (`$5$…`) and `{ARGON2ID}`
//! (`$argon2id$v=19$…`, `doveadm pw -s ARGON2ID`), verified with
//! RustCrypto's `sha-crypt` and `argon2`. Any other scheme is refused when
//! the file is read, `{PLAIN}` and the other clear-text ones included:
//! Sluice never keeps a password it could read back.
//!
//! **Trust.** The file is the operator's; nothing in it can make the reader
//! panic, and a bad line is an error naming its line number. A line's
//! password hash never appears in a message.
//!
//! **Cost.** Verification is deliberately slow (milliseconds to hundreds
//! of them): it runs off the shard, see [`super::Authenticator`].

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use argon2::{Argon2, PasswordHash, PasswordVerifier};

/// A password hash of a supported scheme, checked for shape at load.
#[derive(Clone, PartialEq, Eq)]
pub enum Hash {
    Sha512Crypt(String),
    Sha256Crypt(String),
    Argon2id(String),
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hash::Sha512Crypt(_) => "{SHA512-CRYPT}…",
            Hash::Sha256Crypt(_) => "{SHA256-CRYPT}…",
            Hash::Argon2id(_) => "{ARGON2ID}…",
        })
    }
}

impl Hash {
    /// Parses `{SCHEME}hash`; the error says what is wrong and what to use.
    pub fn parse(text: &str) -> Result<Hash, String> {
        let Some((scheme, hash)) = text.strip_prefix('{').and_then(|rest| rest.split_once('}'))
        else {
            return Err("no {SCHEME} before the password hash (use {SHA512-CRYPT} or {ARGON2ID}, from `doveadm pw`)".into());
        };
        let hash = hash.to_owned();
        match scheme.to_ascii_uppercase().as_str() {
            "SHA512-CRYPT" if hash.starts_with("$6$") => Ok(Hash::Sha512Crypt(hash)),
            "SHA256-CRYPT" if hash.starts_with("$5$") => Ok(Hash::Sha256Crypt(hash)),
            "ARGON2ID" if PasswordHash::new(&hash).is_ok_and(|h| h.algorithm.as_str() == "argon2id") => {
                Ok(Hash::Argon2id(hash))
            }
            s @ ("SHA512-CRYPT" | "SHA256-CRYPT" | "ARGON2ID") => {
                Err(format!("malformed {{{s}}} hash"))
            }
            "PLAIN" | "CLEAR" | "CLEARTEXT" | "PLAIN-TRUNC" | "PLAIN-MD5" | "LDAP-MD5" | "MD5"
            | "PLAIN-MD4" | "SHA" | "SHA1" | "SHA256" | "SHA512" | "SMD5" | "SSHA" => Err(format!(
                "scheme {{{scheme}}} is refused: it stores the password in clear or with a fast unsalted hash; rehash it with `doveadm pw -s SHA512-CRYPT` or ARGON2ID"
            )),
            _ => Err(format!(
                "unsupported password scheme {{{scheme}}} (use {{SHA512-CRYPT}}, {{SHA256-CRYPT}} or {{ARGON2ID}})"
            )),
        }
    }

    /// Whether `password` matches. Slow on purpose: never on a shard.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Hash::Sha512Crypt(h) => sha_crypt::sha512_check(password, h).is_ok(),
            Hash::Sha256Crypt(h) => sha_crypt::sha256_check(password, h).is_ok(),
            Hash::Argon2id(h) => PasswordHash::new(h).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            }),
        }
    }
}

/// Identifies one version of the file: a change of any of these re-reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    /// A chmod changes only this: an unreadable file must be noticed.
    ctime_ns: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let m = std::fs::metadata(path)?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }
}

/// The users of one version of the file.
#[derive(Clone, Debug, Default)]
pub struct PasswdFile {
    pub stamp: Option<FileStamp>,
    users: HashMap<String, Hash>,
}

/// A dummy hash verified for unknown users, so that "no such user" costs
/// the same time as "wrong password" (no user enumeration by timing).
const DUMMY_SHA512: &str =
    "$6$sluicedummysalt$dbsUCrQpehZLQbQ2YXCkreNNNfqOFBbc3.FBD5JH5Vu9b5xJvWPUR7E/X44ObHP/lHNCcExAf1aWOPXUYpVNQ0";

impl PasswdFile {
    /// Reads and checks the whole file. Errors: `path: what is wrong` or
    /// `path:line: what is wrong`.
    pub fn load(path: &Path) -> Result<PasswdFile, String> {
        let stamp = FileStamp::of(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text =
            String::from_utf8(text).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
        let mut file = PasswdFile::parse(&text, &path.display().to_string())?;
        file.stamp = Some(stamp);
        Ok(file)
    }

    /// Parses the file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PasswdFile, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let mut fields = line.split(':');
            let user = fields.next().unwrap_or_default();
            let Some(hash) = fields.next() else {
                return Err(format!("{origin}:{n}: expected user:{{SCHEME}}hash"));
            };
            if user.is_empty() || user.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return Err(format!("{origin}:{n}: bad user name"));
            }
            let hash = Hash::parse(hash).map_err(|e| format!("{origin}:{n}: user {user}: {e}"))?;
            if users.insert(user.to_owned(), hash).is_some() {
                return Err(format!("{origin}:{n}: duplicate user {user}"));
            }
        }
        Ok(PasswdFile { stamp: None, users })
    }

    /// Whether `user` logs in with `password`. Unknown users cost one
    /// verification too.
    pub fn check(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = sha_crypt::sha512_check(password, DUMMY_SHA512);
                false
            }
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with Python 3.11's crypt module:
    // crypt.crypt("secret", "$6$saltsalt$") and "$5$saltsalt$".
    const SHA512_SECRET: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    const SHA256_SECRET: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";

    #[test]
    fn known_vectors() {
        let sha512 = Hash::parse(&format!("{{SHA512-CRYPT}}{SHA512_SECRET}")).expect("parses");
        assert!(sha512.verify("secret"));
        assert!(!sha512.verify("Secret"));
        let sha256 = Hash::parse(&format!("{{SHA256-CRYPT}}{SHA256_SECRET}")).expect("parses");
        assert!(sha256.verify("secret"));
        assert!(!sha256.verify("wrong"));
    }

    #[test]
    fn argon2id_round_trip() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"somesalt12345678").expect("salt");
        let phc = Argon2::default()
            .hash_password(b"secret", &salt)
            .expect("hash")
            .to_string();
        let hash = Hash::parse(&format!("{{ARGON2ID}}{phc}")).expect("parses");
        assert!(hash.verify("secret"));
        assert!(!hash.verify("secreT"));
    }

    #[test]
    fn clear_text_and_unknown_schemes_are_refused() {
        for (line, want) in [
            ("u:{PLAIN}secret", "scheme {PLAIN} is refused"),
            (
                "u:{plain-md5}5ebe2294ecd0e0f08eab7690d2a6ee69",
                "is refused",
            ),
            ("u:secret", "no {SCHEME}"),
            ("u:{CRAM-MD5}x", "unsupported password scheme"),
            ("u:{SHA512-CRYPT}$1$abc", "malformed {SHA512-CRYPT}"),
            (
                "u:{ARGON2ID}$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$abc",
                "malformed",
            ),
            ("justauser", "expected user:{SCHEME}hash"),
        ] {
            let err = PasswdFile::parse(line, "/etc/sluice/sasl_passwd").expect_err(line);
            assert!(err.starts_with("/etc/sluice/sasl_passwd:1: "), "{err}");
            assert!(err.contains(want), "{line}: {err}");
            assert!(
                !err.contains("secret"),
                "the error shows no password: {err}"
            );
        }
    }

    #[test]
    fn dovecot_lines_with_extra_fields() {
        let text = format!(
            "# users\n\njane:{{SHA512-CRYPT}}{SHA512_SECRET}:1000:1000::/home/jane::\r\njoe@example.com:{{SHA256-CRYPT}}{SHA256_SECRET}\n"
        );
        let f = PasswdFile::parse(&text, "f").expect("parses");
        assert_eq!(f.len(), 2);
        assert!(f.check("jane", "secret"));
        assert!(f.check("joe@example.com", "secret"));
        assert!(!f.check("Jane", "secret"));
        assert!(!f.check("nobody", "secret"));
        let dup = format!("a:{{SHA256-CRYPT}}{SHA256_SECRET}\na:{{SHA256-CRYPT}}{SHA256_SECRET}\n");
        assert_eq!(
            PasswdFile::parse(&dup, "f").expect_err("dup"),
            "f:2: duplicate user a"
        );
    }
}
